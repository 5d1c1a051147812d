//! ULA and MALA: GPU against the CPU twin, independence of chains from batching, and
//! statistical checks against targets with known answers.

mod common;

use ebm_gpu::energy::Energy;
use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::rng;
use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};
use ebm_gpu::sampler::{cpu::CpuSampler, gpu::GpuSampler};

const GAUSS10: &str =
    r#"{"type": "gaussian", "mean": [0.5, -1, 2, 0, 1, 0, 0, 3, -2, 1], "std": [1, 2, 0.5, 1, 1, 3, 1, 0.7, 1, 2]}"#;

fn run_cpu(energy: &Energy, config: &SamplerConfig, init: &[f32], steps: u32) -> CpuSampler {
    let mut s = CpuSampler::new(energy, config.clone(), init).unwrap();
    s.run(steps).unwrap();
    s
}

/// Samples on both executors from one seed agree. Rounding differs (GPU log/cos, FMA), so
/// states agree to a tolerance; a MALA accept test can flip when log u lands within rounding
/// of log alpha, after which that chain follows another path. We allow no more than 1% such
/// chains and require every other chain to agree to 2e-3.
#[test]
fn gpu_matches_cpu_for_100_steps() {
    let Some(ctx) = common::gpu() else { return };
    // A group average too: its generated WGSL function inlined into the fused step kernels.
    let group = r#"{"type": "group", "group": "dihedral:3", "energy": {"type": "gaussian", "mean": [1.5, 0.5], "std": [0.5, 0.8]}}"#;
    // Sliced experts too: each term evaluated on its gathered sub-vector in the kernels.
    let sliced = r#"{"type": "sum", "slices": [[2, 0], [1, 3]], "terms": ["ring8", {"type": "gaussian", "mean": [0.5, -1], "precision": [[2, 0.6], [0.6, 1]]}]}"#;
    for spec in ["ring8", GAUSS10, group, sliced] {
        let energy = resolve_energy(spec).unwrap();
        let d = energy.dim();
        let chains = 512;
        let init = rng::initial_states(3, 0, chains, d, 1.0);
        for kind in [SamplerKind::Ula, SamplerKind::Mala] {
            let config = SamplerConfig::new(kind, 0.02, 99);
            let cpu = run_cpu(&energy, &config, &init, 100);
            let mut gpu = GpuSampler::new(ctx.clone(), &energy, config, &init).unwrap();
            gpu.run(100).unwrap();
            let (xs_cpu, xs_gpu) = (cpu.state().unwrap(), gpu.state().unwrap());
            let diverged =
                xs_cpu.chunks(d).zip(xs_gpu.chunks(d)).filter(|(a, b)| common::max_abs_diff(a, b) > 2e-3).count();
            let (st_cpu, st_gpu) = (cpu.stats().unwrap(), gpu.stats().unwrap());
            eprintln!("{kind:?} {spec}: {diverged} of {chains} chains differ by more than 2e-3");
            assert!(diverged * 100 <= chains, "{kind:?} on {spec}: {diverged} chains diverged");
            if kind == SamplerKind::Ula {
                assert_eq!(diverged, 0, "ULA has no accept test, so no chain may diverge");
            }
            let (a_cpu, a_gpu) = (st_cpu.acceptance_rate(100), st_gpu.acceptance_rate(100));
            assert!((a_cpu - a_gpu).abs() < 0.01, "acceptance cpu {a_cpu} gpu {a_gpu}");
            assert_eq!(st_gpu.frozen_count(), 0);
        }
    }
}

/// 1000 chains in one run equal the same chains made as two runs of 500 (chain offsets), on
/// each executor; on the GPU also when the chains are split across dispatches and when the
/// steps are fused differently. These are bit-exact: same executor, same arithmetic.
#[test]
fn chains_do_not_depend_on_batching() {
    let energy = resolve_energy("ring8").unwrap();
    let init = rng::initial_states(5, 0, 1000, 2, 1.0);
    let config = SamplerConfig::new(SamplerKind::Mala, 0.05, 42);
    type Make<'a> = &'a dyn Fn(SamplerConfig, &[f32]) -> Box<dyn ChainSampler>;
    let halves = |make: Make| -> (Vec<f32>, Vec<f32>) {
        let mut whole = make(config.clone(), &init);
        whole.run(60).unwrap();
        let mut parts = Vec::new();
        for (offset, range) in [(0u32, 0..1000), (500, 1000..2000)] {
            let mut c = config.clone();
            c.chain_offset = offset;
            let mut s = make(c, &init[range]);
            s.run(60).unwrap();
            parts.extend(s.state().unwrap());
        }
        (whole.state().unwrap(), parts)
    };
    let (whole, parts) = halves(&|c, init| Box::new(CpuSampler::new(&energy, c, init).unwrap()));
    assert_eq!(whole, parts, "CPU executor");
    let Some(ctx) = common::gpu() else { return };
    let (whole_gpu, parts_gpu) = halves(&|c, init| Box::new(GpuSampler::new(ctx.clone(), &energy, c, init).unwrap()));
    assert_eq!(whole_gpu, parts_gpu, "GPU executor");
    let mut c = config.clone();
    c.tuning.max_chains_per_dispatch = Some(300); // four groups, the last partial
    c.tuning.steps_per_dispatch = Some(7); // dispatches that do not divide the step count
    let mut split = GpuSampler::new(ctx.clone(), &energy, c, &init).unwrap();
    assert_eq!(split.dispatches_per_step(), 4.0 / 7.0);
    split.run(25).unwrap();
    split.run(35).unwrap();
    assert_eq!(split.state().unwrap(), whole_gpu, "GPU executor, split dispatches");
}

/// ULA on N(0, s^2) is an AR(1) chain x' = (1 - h/s^2) x + sqrt(2h) xi whose stationary
/// variance is s^2 / (1 - h / (2 s^2)), not s^2. With n independent chains the sample variance
/// has standard error var * sqrt(2 / (n - 1)); we allow 4 standard errors. At h = 0.1 the
/// biased variance is 1.053 s^2, 7 standard errors from s^2, so a sampler without the bias
/// (or with the wrong one) fails.
#[test]
fn ula_stationary_variance_matches_theory() {
    let s = 1.5f64;
    let energy = resolve_energy(&format!(r#"{{"type": "gaussian", "mean": [0], "std": [{s}]}}"#)).unwrap();
    let chains = 40_000;
    let init = rng::initial_states(8, 0, chains, 1, s as f32);
    let ctx = common::gpu();
    for h in [0.1 * s * s, 0.5 * s * s] {
        let config = SamplerConfig::new(SamplerKind::Ula, h as f32, 2024);
        let mut samplers: Vec<Box<dyn ChainSampler>> =
            vec![Box::new(CpuSampler::new(&energy, config.clone(), &init).unwrap())];
        if let Some(ctx) = &ctx {
            samplers.push(Box::new(GpuSampler::new(ctx.clone(), &energy, config.clone(), &init).unwrap()));
        }
        for mut sampler in samplers {
            sampler.run(300).unwrap();
            let xs = sampler.state().unwrap();
            let n = xs.len() as f64;
            let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let want = s * s / (1.0 - h / (2.0 * s * s));
            let se = want * (2.0 / (n - 1.0)).sqrt();
            eprintln!("{}: h = {h}: variance {var:.4}, theory {want:.4}, se {se:.4}", sampler.executor());
            assert!(
                (var - want).abs() < 4.0 * se,
                "{}: h = {h}: variance {var} vs {want} (se {se})",
                sampler.executor()
            );
            assert!(mean.abs() < 4.0 * (want / n).sqrt(), "mean {mean}");
        }
    }
}

/// Bin probabilities of `energy`'s (normalised) density on a grid over [lo, hi]^2, by the
/// midpoint rule with `sub` x `sub` points per bin; the last entry is the mass outside.
fn exact_bin_probabilities(energy: &Energy, bins: usize, lo: f64, hi: f64, sub: usize) -> Vec<f64> {
    let w = (hi - lo) / bins as f64;
    let hs = w / sub as f64;
    let mut p = vec![0.0; bins * bins + 1];
    for bx in 0..bins {
        for by in 0..bins {
            let mut mass = 0.0;
            for i in 0..sub {
                for j in 0..sub {
                    let x = [lo + bx as f64 * w + (i as f64 + 0.5) * hs, lo + by as f64 * w + (j as f64 + 0.5) * hs];
                    mass += (-energy.energy(&x)).exp() * hs * hs;
                }
            }
            p[bx * bins + by] = mass;
        }
    }
    let inside: f64 = p.iter().sum();
    p[bins * bins] = (1.0 - inside).max(0.0);
    p
}

fn histogram(xs: &[f32], bins: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut counts = vec![0.0; bins * bins + 1];
    let n = (xs.len() / 2) as f64;
    for p in xs.chunks(2) {
        let (bx, by) = (
            ((p[0] as f64 - lo) / (hi - lo) * bins as f64).floor(),
            ((p[1] as f64 - lo) / (hi - lo) * bins as f64).floor(),
        );
        let inside = (0.0..bins as f64).contains(&bx) && (0.0..bins as f64).contains(&by);
        let k = if inside { bx as usize * bins + by as usize } else { bins * bins };
        counts[k] += 1.0 / n;
    }
    counts
}

/// MALA on a 2-d Gaussian mixture against its exact density: the total-variation distance
/// between the histogram of n independent chains' final states and the exact bin masses.
/// For exact sampling E[TV] = 1/2 sum_i E|p_i_hat - p_i| ~ 1/2 sum_i sqrt(2 p_i (1 - p_i) / (pi n));
/// we allow 1.5 times that (TV concentrates: its standard deviation is far below its mean at
/// this n). ULA at a coarse step, whose bias is known, must exceed the bound: the test can
/// tell an exact sampler from a biased one.
#[test]
fn mala_matches_mixture_density_in_total_variation() {
    let energy = resolve_energy(
        r#"{"type": "gaussian_mixture", "weights": [0.3, 0.7], "means": [[-1, 0], [1, 0.5]], "stds": [[0.7, 0.5], [0.6, 0.9]]}"#,
    )
    .unwrap();
    let (bins, lo, hi) = (24, -4.0, 4.0);
    let exact = exact_bin_probabilities(&energy, bins, lo, hi, 6);
    let chains = 40_000;
    let expected_tv: f64 =
        0.5 * exact.iter().map(|&p| (2.0 * p * (1.0 - p) / (std::f64::consts::PI * chains as f64)).sqrt()).sum::<f64>();
    let bound = 1.5 * expected_tv;
    let init = rng::initial_states(21, 0, chains, 2, 1.5);
    let ctx = common::gpu();
    let tv_of = |sampler: &mut dyn ChainSampler| {
        sampler.run(400).unwrap();
        let hist = histogram(&sampler.state().unwrap(), bins, lo, hi);
        0.5 * hist.iter().zip(&exact).map(|(a, b)| (a - b).abs()).sum::<f64>()
    };
    let mala = SamplerConfig::new(SamplerKind::Mala, 0.15, 77);
    let mut runs: Vec<Box<dyn ChainSampler>> = vec![Box::new(CpuSampler::new(&energy, mala.clone(), &init).unwrap())];
    if let Some(ctx) = &ctx {
        runs.push(Box::new(GpuSampler::new(ctx.clone(), &energy, mala.clone(), &init).unwrap()));
    }
    for mut sampler in runs {
        let tv = tv_of(sampler.as_mut());
        let acc = sampler.stats().unwrap().acceptance_rate(400);
        eprintln!(
            "MALA {}: TV {tv:.4}, bound {bound:.4} (expected {expected_tv:.4}), acceptance {acc:.3}",
            sampler.executor()
        );
        assert!(tv < bound, "{}: TV {tv} >= {bound}", sampler.executor());
    }
    let ula = SamplerConfig::new(SamplerKind::Ula, 0.15, 77);
    let tv_ula = tv_of(&mut CpuSampler::new(&energy, ula, &init).unwrap());
    eprintln!("ULA at the same step: TV {tv_ula:.4}");
    assert!(tv_ula > bound, "biased ULA passed the bound: TV {tv_ula} < {bound}");
}

/// A chain that overflows is frozen at its last finite state and counted, on both executors.
#[test]
fn non_finite_chains_are_frozen_and_counted() {
    let energy = resolve_energy(r#"{"type": "double_well", "dim": 2, "barrier": 1}"#).unwrap();
    let mut init = rng::initial_states(1, 0, 64, 2, 1.0);
    init[0] = 30.0; // gradient 4 x^3 ~ 1e5: each step cubes the distance until it overflows
    let config = SamplerConfig::new(SamplerKind::Ula, 0.01, 5);
    let mut runs: Vec<Box<dyn ChainSampler>> = vec![Box::new(CpuSampler::new(&energy, config.clone(), &init).unwrap())];
    if let Some(ctx) = common::gpu() {
        runs.push(Box::new(GpuSampler::new(ctx, &energy, config.clone(), &init).unwrap()));
    }
    for mut sampler in runs {
        sampler.run(20).unwrap();
        let stats = sampler.stats().unwrap();
        let xs = sampler.state().unwrap();
        assert!(stats.frozen[0], "{}", sampler.executor());
        assert_eq!(stats.frozen_count(), 1, "{}", sampler.executor());
        assert!(xs.iter().all(|v| v.is_finite()), "{}: a non-finite state was stored", sampler.executor());
    }
}

/// The thinned trace holds every k-th state; its last slot is the final state, and the GPU
/// trace agrees with the CPU one.
#[test]
fn thinned_traces_agree() {
    let energy = resolve_energy("banana").unwrap();
    let init = rng::initial_states(4, 0, 100, 2, 1.0);
    let mut config = SamplerConfig::new(SamplerKind::Ula, 0.01, 3);
    config.trace_every = 10;
    config.trace_steps = 50;
    let mut cpu = CpuSampler::new(&energy, config.clone(), &init).unwrap();
    cpu.run(30).unwrap();
    cpu.run(20).unwrap();
    let trace = cpu.trace().unwrap().unwrap();
    assert_eq!(trace.len(), 5 * 100 * 2);
    assert_eq!(&trace[4 * 200..], &cpu.state().unwrap()[..]);
    let Some(ctx) = common::gpu() else { return };
    config.tuning.max_chains_per_dispatch = Some(64);
    let mut gpu = GpuSampler::new(ctx, &energy, config, &init).unwrap();
    gpu.run(50).unwrap();
    let trace_gpu = gpu.trace().unwrap().unwrap();
    assert!(common::max_abs_diff(&trace, &trace_gpu) < 2e-3, "{}", common::max_abs_diff(&trace, &trace_gpu));
}

#[test]
fn bad_configurations_are_rejected() {
    let energy = resolve_energy("ring8").unwrap();
    let init = rng::initial_states(4, 0, 10, 2, 1.0);
    let check = |config: SamplerConfig, init: &[f32], needle: &str| {
        let message = match CpuSampler::new(&energy, config, init) {
            Ok(_) => panic!("accepted; expected an error about {needle}"),
            Err(e) => e.to_string(),
        };
        assert!(message.contains(needle), "{message} lacks {needle}");
    };
    let base = SamplerConfig::new(SamplerKind::Ula, 0.1, 1);
    let with = |change: &dyn Fn(&mut SamplerConfig)| {
        let mut c = base.clone();
        change(&mut c);
        c
    };
    check(with(&|c| c.step_size = 0.0), &init, "step size");
    check(with(&|c| c.step_size = -1.0), &init, "step size");
    check(with(&|c| c.step_size = f32::NAN), &init, "step size");
    check(with(&|c| c.noise_scale = Some(f32::INFINITY)), &init, "noise scale");
    check(with(&|c| c.box_clamp = Some((1.0, -1.0))), &init, "box clamp");
    check(with(&|c| (c.kind, c.grad_clamp) = (SamplerKind::Mala, Some(1.0))), &init, "ULA only");
    check(base.clone(), &[], "initial state");
    check(base.clone(), &init[..3], "initial state");
    check(with(&|c| (c.trace_every, c.trace_steps) = (10, 5)), &init, "trace");
    check(with(&|c| c.tuning.steps_per_dispatch = Some(0)), &init, "dispatch shape");
    // The builder validates the same settings.
    let built = |b: ebm_gpu::sampler::SamplerBuilder| b.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(built(SamplerConfig::builder(SamplerKind::Ula, 0.1, 1).box_clamp(1.0, -1.0)).contains("box clamp"));
    assert!(built(SamplerConfig::builder(SamplerKind::Mala, 0.1, 1).noise_scale(0.3)).contains("ULA only"));
    assert!(
        built(SamplerConfig::builder(SamplerKind::Ula, 0.1, 1).max_chains_per_dispatch(0)).contains("dispatch shape")
    );
    let ok = SamplerConfig::builder(SamplerKind::Hmc, 0.1, 1)
        .leapfrog(4)
        .leapfrog_jitter(1)
        .trace(2, 0, 10)
        .steps_per_dispatch(3)
        .build()
        .unwrap();
    assert_eq!(
        (ok.leapfrog, ok.leapfrog_jitter, ok.trace_every, ok.trace_steps, ok.tuning.steps_per_dispatch),
        (4, 1, 2, 10, Some(3))
    );
}
