//! MLP energies: gradients against f64 finite differences for every activation, GPU against
//! the CPU twin (energies, gradients, sampler trajectories), safetensors in PyTorch's layout,
//! and malformed weight files.

mod common;

use ebm_gpu::energy::gpu::energy_grad_batch;
use ebm_gpu::energy::spec::{mlp_energy, resolve_energy};
use ebm_gpu::energy::{Energy, EnergyInternals, GaussianDiag};
use ebm_gpu::gpu::ContextInternals;
use ebm_gpu::nn::{Activation, Architecture, Network, NetworkInternals};
use ebm_gpu::rng;
use ebm_gpu::sampler::cpu::CpuSamplerInternals;
use ebm_gpu::sampler::{
    ChainSampler, MlpStrategy, SamplerConfig, SamplerKind,
    cpu::{CpuSampler, Schedule},
    gpu::GpuSampler,
};
use std::collections::HashMap;
use std::path::PathBuf;

const ACTIVATIONS: [Activation; 6] = [
    Activation::Relu,
    Activation::LeakyRelu(0.1),
    Activation::Silu,
    Activation::Tanh,
    Activation::Softplus,
    Activation::Elu(0.7),
];

fn mlp(dims: &[usize], act: Activation, negate: bool, seed: u64) -> Energy {
    Energy::from_network(Network::random_mlp(dims, act, negate, seed).unwrap())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ebm-mlp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn input_gradients_match_f64_finite_differences_for_every_activation() {
    for act in ACTIVATIONS {
        for (dims, negate) in [(&[3usize, 16, 8, 1][..], false), (&[2, 5, 1], true), (&[4, 1], false)] {
            let energy = mlp(dims, act, negate, 3);
            let d = dims[0];
            for x in rng::initial_states(5, 0, 10, d, 1.5).chunks(d) {
                let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let mut g = vec![0.0; d];
                energy.energy_grad(&x, &mut g);
                for i in 0..d {
                    let h = 1e-6;
                    let (mut xp, mut xm) = (x.clone(), x.clone());
                    xp[i] += h;
                    xm[i] -= h;
                    let fd = (energy.energy(&xp) - energy.energy(&xm)) / (2.0 * h);
                    // ReLU kinks: a finite difference that straddles one is not a derivative.
                    let tol = if matches!(act, Activation::Relu | Activation::LeakyRelu(_) | Activation::Elu(_)) {
                        1e-4
                    } else {
                        1e-6
                    };
                    assert!(
                        (fd - g[i]).abs() <= tol * (1.0 + fd.abs()),
                        "{act:?} {dims:?} dim {i}: analytic {} fd {fd}",
                        g[i]
                    );
                }
            }
        }
    }
}

#[test]
fn gpu_energies_and_gradients_match_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let cases: Vec<(Vec<usize>, Activation)> = vec![
        (vec![2, 128, 128, 1], Activation::Silu),
        (vec![5, 70, 33, 1], Activation::Tanh), // widths that are not multiples of the workgroup
        (vec![3, 1], Activation::Relu),
        (vec![784, 64, 1], Activation::Softplus), // MNIST-sized input
        (vec![784, 256, 1], Activation::Relu),
        (vec![2, 200, 200, 1], Activation::Elu(1.0)),
    ];
    for (dims, act) in cases.into_iter().chain(ACTIVATIONS.iter().map(|&a| (vec![4, 24, 24, 1], a))) {
        let energy = mlp(&dims, act, true, 7);
        let d = dims[0];
        let xs = rng::initial_states(9, 0, 200, d, 1.0);
        let (e_gpu, g_gpu) = energy_grad_batch(&ctx, &energy, &xs).unwrap();
        for (n, x) in xs.chunks(d).enumerate() {
            let mut g = vec![0.0f32; d];
            let e = energy.energy_grad(x, &mut g);
            assert!(
                (e - e_gpu[n]).abs() <= 1e-4 * (1.0 + e.abs()),
                "{dims:?} {act:?} point {n}: cpu {e} gpu {}",
                e_gpu[n]
            );
            let gmax = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let diff = common::max_abs_diff(&g, &g_gpu[n * d..(n + 1) * d]);
            assert!(diff <= 1e-4 * (1.0 + gmax), "{dims:?} {act:?} point {n}: gradient differs by {diff}");
        }
    }
}

#[test]
fn mlp_sampler_trajectories_match_cpu() {
    let Some(ctx) = common::gpu() else { return };
    // A product of experts: the network plus a broad Gaussian that keeps chains bounded.
    let net = mlp(&[2, 32, 32, 1], Activation::Silu, false, 11);
    let energy = Energy::Sum {
        terms: vec![
            (1.0, net),
            (1.0, resolve_energy(r#"{"type": "gaussian", "mean": [0, 0], "std": [2, 2]}"#).unwrap()),
        ],
    };
    let init = rng::initial_states(2, 0, 256, 2, 1.0);
    for kind in [SamplerKind::Ula, SamplerKind::Mala] {
        let config = SamplerConfig::new(kind, 0.01, 5);
        let mut cpu = CpuSampler::new(&energy, config.clone(), &init).unwrap();
        let mut gpu = GpuSampler::new(ctx.clone(), &energy, config, &init).unwrap();
        cpu.run(100).unwrap();
        gpu.run(100).unwrap();
        let (a, b) = (cpu.state().unwrap(), gpu.state().unwrap());
        let diverged = a.chunks(2).zip(b.chunks(2)).filter(|(x, y)| common::max_abs_diff(x, y) > 2e-3).count();
        eprintln!("{kind:?}: {diverged} of 256 chains differ by more than 2e-3");
        assert!(diverged * 100 <= 256, "{kind:?}: {diverged} chains diverged");
    }
}

/// The two GPU strategies (one chain per invocation; a workgroup per tile of chains) agree
/// with each other and with the CPU twin, on widths and chain counts that are not multiples of
/// the tile sizes, for ULA and MALA, including the thinned traces.
#[test]
fn tiled_and_per_chain_strategies_agree() {
    let Some(ctx) = common::gpu() else { return };
    for (dims, act) in [(vec![6usize, 130, 70, 1], Activation::Silu), (vec![3, 20, 1], Activation::Tanh)] {
        let energy = mlp(&dims, act, false, 21);
        let d = dims[0];
        let init = rng::initial_states(6, 0, 100, d, 1.0);
        for kind in [SamplerKind::Ula, SamplerKind::Mala] {
            let mut config = SamplerConfig::new(kind, 0.01, 17);
            config.trace_every = 5;
            config.trace_steps = 30;
            let mut states = Vec::new();
            for strategy in [MlpStrategy::PerChain, MlpStrategy::Tiled] {
                let mut s = GpuSampler::new(
                    ctx.clone(),
                    &energy,
                    {
                        let mut c = config.clone();
                        c.tuning.mlp_strategy = strategy;
                        c
                    },
                    &init,
                )
                .unwrap();
                s.run(18).unwrap();
                s.run(12).unwrap();
                states.push((s.state().unwrap(), s.trace().unwrap().unwrap(), s.stats().unwrap()));
            }
            let mut cpu = CpuSampler::new(&energy, config.clone(), &init).unwrap();
            cpu.run(30).unwrap();
            let (cpu_state, cpu_trace) = (cpu.state().unwrap(), cpu.trace().unwrap().unwrap());
            let close = |a: &[f32], b: &[f32]| {
                a.chunks(d).zip(b.chunks(d)).filter(|(x, y)| common::max_abs_diff(x, y) > 1e-3).count()
            };
            let (per_chain, tiled) = (&states[0], &states[1]);
            let diverged = [close(&per_chain.0, &tiled.0), close(&tiled.0, &cpu_state), close(&tiled.1, &cpu_trace)];
            eprintln!("{dims:?} {kind:?}: chains apart (per-chain vs tiled, tiled vs cpu, traces): {diverged:?}");
            assert!(diverged.iter().all(|&n| n <= 1), "{dims:?} {kind:?}: {diverged:?}");
            assert_eq!(per_chain.2.accepted.len(), tiled.2.accepted.len());
            let (a, b) = (per_chain.2.acceptance_rate(30), tiled.2.acceptance_rate(30));
            assert!((a - b).abs() < 0.02, "acceptance {a} vs {b}");
            let e_diff = common::max_abs_diff(&per_chain.2.energies, &tiled.2.energies);
            assert!(e_diff < 1e-3, "energies differ by {e_diff}");
        }
    }
    // MNIST-sized input through the tiled kernels (few chains and steps: lavapipe is slow here).
    let energy = mlp(&[784, 200, 1], Activation::Softplus, true, 5);
    let init = rng::initial_states(8, 0, 20, 784, 0.5);
    let config = SamplerConfig::builder(SamplerKind::Mala, 0.001, 3).mlp_strategy(MlpStrategy::Tiled).build().unwrap();
    let mut gpu = GpuSampler::new(ctx.clone(), &energy, config.clone(), &init).unwrap();
    let mut cpu = CpuSampler::new(&energy, config, &init).unwrap();
    gpu.run(3).unwrap();
    cpu.run(3).unwrap();
    let diff = common::max_abs_diff(&gpu.state().unwrap(), &cpu.state().unwrap());
    assert!(diff < 1e-3, "d=784 tiled vs cpu: {diff}");
    assert_eq!(gpu.stats().unwrap().accepted, cpu.stats().unwrap().accepted);
    // The tiled kernels only take a plain MLP.
    let sum = Energy::Sum { terms: vec![(1.0, mlp(&[2, 8, 1], Activation::Relu, false, 1))] };
    let config = SamplerConfig::builder(SamplerKind::Mala, 0.1, 1).mlp_strategy(MlpStrategy::Tiled).build().unwrap();
    assert!(GpuSampler::new(ctx, &sum, config, &[0.0, 0.0]).is_err());
}

/// Software adapters that cap shader loops (llvmpipe) refuse work they would silently cut
/// short, naming the limit; other adapters run it.
#[test]
fn networks_beyond_the_adapters_loop_cap_are_refused_not_truncated() {
    let Some(ctx) = common::gpu() else { return };
    let Some(budget) = ctx.loop_budget() else { return };
    let big = mlp(&[1024, 1024, 1024, 1], Activation::Silu, false, 1);
    assert!(big.loop_iterations() > budget);
    let e = energy_grad_batch(&ctx, &big, &vec![0.1; 1024]).unwrap_err().to_string();
    assert!(e.contains("loop iterations") && e.contains("CPU executor"), "{e}");
    let init = rng::initial_states(1, 0, 4, 1024, 1.0);
    let e = GpuSampler::new(ctx.clone(), &big, SamplerConfig::new(SamplerKind::Mala, 0.01, 1), &init)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("loop iterations"), "{e}");
}

#[test]
fn safetensors_round_trip_and_pytorch_layout() {
    let dir = temp_dir("io");
    let net = Network::random_mlp(&[3, 10, 6, 1], Activation::LeakyRelu(0.2), true, 4).unwrap();
    let path = dir.join("w.safetensors");
    net.as_mlp().unwrap().save(&path).unwrap();
    assert_eq!(Network::load_mlp(&path, None, None).unwrap(), net);
    // As PyTorch writes nn.Sequential(Linear, SiLU, Linear, SiLU, Linear): keys 0, 2, 4, here
    // with the middle layer in f16 and no metadata (activation given by the caller).
    let layers = [(3usize, 4usize), (4, 4), (4, 1)];
    let mut raw: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut reference = Vec::new();
    for (k, &(i, o)) in layers.iter().enumerate() {
        let w: Vec<f32> = (0..i * o).map(|j| ((j * 7 + k) % 11) as f32 / 11.0 - 0.5).collect();
        let b: Vec<f32> = (0..o).map(|j| j as f32 * 0.1 - 0.2).collect();
        if k == 1 {
            let to16 = |v: &[f32]| v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect::<Vec<u8>>();
            raw.push((format!("{}.weight", 2 * k), safetensors::Dtype::F16, vec![o, i], to16(&w)));
            raw.push((format!("{}.bias", 2 * k), safetensors::Dtype::F16, vec![o], to16(&b)));
        } else {
            raw.push((
                format!("{}.weight", 2 * k),
                safetensors::Dtype::F32,
                vec![o, i],
                bytemuck::cast_slice(&w).to_vec(),
            ));
            raw.push((format!("{}.bias", 2 * k), safetensors::Dtype::F32, vec![o], bytemuck::cast_slice(&b).to_vec()));
        }
        if k > 0 {
            reference.push((vec![], vec![]));
        }
        reference.push((w, b));
    }
    let torch = dir.join("torch.safetensors");
    write_tensors(&torch, &raw, None);
    let loaded = Network::load_mlp(&torch, Some(Activation::Silu), None).unwrap();
    let want = Network::new(&Architecture::parse("3/4/silu/4/silu/1").unwrap(), reference).unwrap();
    for x in rng::initial_states(1, 0, 20, 3, 1.0).chunks(3) {
        let (a, b) = (Energy::from_network(loaded.clone()).energy(x), Energy::from_network(want.clone()).energy(x));
        // f16 weights round to ~1e-3 relative.
        assert!((a - b).abs() < 1e-2, "{a} vs {b}");
    }
    // Through the JSON spec and the `mlp:` shorthand.
    let spec = format!(r#"{{"type": "mlp", "weights": {:?}, "activation": "silu"}}"#, torch.to_str().unwrap());
    assert_eq!(resolve_energy(&spec).unwrap().dim(), 3);
    assert_eq!(resolve_energy(&format!("mlp:{}", path.display())).unwrap().dim(), 3);
}

fn write_tensors(
    path: &std::path::Path,
    raw: &[(String, safetensors::Dtype, Vec<usize>, Vec<u8>)],
    meta: Option<HashMap<String, String>>,
) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = raw
        .iter()
        .map(|(n, dt, shape, data)| {
            (n.clone(), safetensors::tensor::TensorView::new(*dt, shape.clone(), data).unwrap())
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, meta).unwrap()).unwrap();
}

#[test]
fn malformed_weight_files_are_rejected_with_the_tensor_named() {
    let dir = temp_dir("bad");
    let f32s = |v: Vec<f32>| bytemuck::cast_slice(&v).to_vec();
    let t = |name: &str, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        (name.to_string(), safetensors::Dtype::F32, shape, f32s(vec![0.1; n]))
    };
    let meta = Some(HashMap::from([("activation".to_string(), "silu".to_string())]));
    type Tensor = (String, safetensors::Dtype, Vec<usize>, Vec<u8>);
    let cases: Vec<(&str, Vec<Tensor>, &[&str])> = vec![
        (
            "missing bias",
            vec![t("0.weight", vec![4, 2]), t("2.weight", vec![1, 4]), t("2.bias", vec![1])],
            &["0.bias", "missing"],
        ),
        (
            "extra tensor",
            vec![t("0.weight", vec![1, 2]), t("0.bias", vec![1]), t("norm.scale", vec![2])],
            &["norm.scale"],
        ),
        (
            "shape chain",
            vec![t("0.weight", vec![4, 2]), t("0.bias", vec![4]), t("2.weight", vec![1, 5]), t("2.bias", vec![1])],
            &["2.weight", "5 inputs", "gives 4"],
        ),
        ("output not 1", vec![t("0.weight", vec![3, 2]), t("0.bias", vec![3])], &["output 1 value"]),
        ("bias shape", vec![t("0.weight", vec![1, 2]), t("0.bias", vec![2])], &["0.bias", "needs [1]"]),
        (
            "wrong dtype",
            vec![("0.weight".into(), safetensors::Dtype::I32, vec![1, 2], vec![0; 8]), t("0.bias", vec![1])],
            &["0.weight", "I32"],
        ),
    ];
    for (what, tensors, needles) in cases {
        let path = dir.join(format!("{}.safetensors", what.replace(' ', "_")));
        write_tensors(&path, &tensors, meta.clone());
        let e =
            mlp_energy(&path, None, None).err().map(|e| e.to_string()).unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(e.contains(&path.display().to_string()), "{what}: {e}");
        for n in needles {
            assert!(e.contains(n), "{what}: {e} lacks {n}");
        }
    }
    // No activation anywhere, an unknown one, a truncated file, garbage.
    let ok = dir.join("ok.safetensors");
    write_tensors(&ok, &[t("0.weight", vec![1, 2]), t("0.bias", vec![1])], None);
    assert!(mlp_energy(&ok, None, None).unwrap_err().to_string().contains("no activation"));
    assert!(Activation::parse("gelu").unwrap_err().to_string().contains("unknown activation"));
    let bytes = std::fs::read(&ok).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 3]).unwrap();
    assert!(mlp_energy(&truncated, None, None).unwrap_err().to_string().contains("truncated.safetensors"));
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"\xff\xff\xff\xff\xff\xff\xff\xffnot json").unwrap();
    assert!(mlp_energy(&garbage, None, None).is_err());
    // A network whose input dimension differs from the other term's.
    let spec = format!(
        r#"{{"type": "sum", "terms": [{{"type": "mlp", "weights": {:?}, "activation": "relu"}}, {{"type": "gaussian", "mean": [0, 0, 0], "std": [1, 1, 1]}}]}}"#,
        ok.to_str().unwrap()
    );
    let e = resolve_energy(&spec).unwrap_err().to_string();
    assert!(e.contains("terms[1]") && e.contains("dimension"), "{e}");
}

/// The CPU executor's batched evaluation (network layers as GEMMs) against the per-point twin:
/// every activation, both signs, a network without hidden layers, d=784, weighted sums, and a
/// batch that is not a multiple of the GEMM block.
#[test]
fn cpu_batched_energies_match_per_point() {
    let cases: Vec<(Vec<usize>, Activation)> = ACTIVATIONS
        .iter()
        .map(|&a| (vec![5, 33, 17, 1], a))
        .chain([
            (vec![3, 1], Activation::Relu),
            (vec![784, 64, 1], Activation::Silu),
            (vec![2, 128, 128, 1], Activation::Silu),
        ])
        .collect();
    for (k, (dims, act)) in cases.into_iter().enumerate() {
        let d = dims[0];
        let net = mlp(&dims, act, k % 2 == 1, 13 + k as u64);
        let gauss = Energy::from(GaussianDiag { mean: vec![0.5; d], inv_var: vec![0.25; d] });
        let sum = Energy::Sum { terms: vec![(0.7, net.clone()), (1.0, gauss), (-0.2, net.clone())] };
        for energy in [net, sum] {
            let n = 300;
            let xs = rng::initial_states(17, 0, n, d, 1.5);
            let (mut gs, mut es) = (vec![f32::NAN; n * d], vec![f32::NAN; n]);
            energy.energy_grad_batch(&xs, &mut gs, &mut es);
            for (p, x) in xs.chunks(d).enumerate() {
                let mut g = vec![0.0f32; d];
                let e = energy.energy_grad(x, &mut g);
                assert!(
                    (e - es[p]).abs() <= 1e-5 * (1.0 + e.abs()),
                    "{dims:?} {act:?} {}: point {p}: {e} vs {}",
                    energy.kind(),
                    es[p]
                );
                let gmax = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let diff = common::max_abs_diff(&g, &gs[p * d..(p + 1) * d]);
                assert!(
                    diff <= 1e-5 * (1.0 + gmax),
                    "{dims:?} {act:?} {}: point {p}: gradient differs by {diff}",
                    energy.kind()
                );
            }
        }
    }
}

/// The CPU executor's two schedules for network energies, step-major blocks with batched
/// evaluation (the default) and chain by chain with the per-point twin, give the same chains up
/// to the GEMM's summation order.
#[test]
fn cpu_batched_mala_matches_per_point_path() {
    let net = mlp(&[8, 64, 64, 1], Activation::Silu, false, 21);
    let gauss = Energy::from(GaussianDiag { mean: vec![0.0; 8], inv_var: vec![0.25; 8] });
    let energy = Energy::Sum { terms: vec![(0.5, net), (1.0, gauss)] };
    let init = rng::initial_states(3, 0, 300, 8, 1.0); // blocks that do not divide the chains
    let config = SamplerConfig::new(SamplerKind::Mala, 0.01, 9);
    let mut batched = CpuSampler::new(&energy, config.clone(), &init).unwrap();
    let mut per_point = CpuSampler::new(&energy, config, &init).unwrap().with_schedule(Schedule::ChainMajor).unwrap();
    batched.run(50).unwrap();
    per_point.run(50).unwrap();
    let diff = common::max_abs_diff(&batched.state().unwrap(), &per_point.state().unwrap());
    eprintln!("batched vs per-point after 50 MALA steps: states differ by at most {diff}");
    assert!(diff <= 1e-4, "states differ by {diff}");
    let (a, b) = (batched.stats().unwrap(), per_point.stats().unwrap());
    assert_eq!(a.accepted, b.accepted);
    assert!(a.accepted.iter().sum::<u32>() > 300 * 50 / 2, "acceptance too low to test much");
    assert!(common::max_abs_diff(&a.energies, &b.energies) <= 1e-4);
}

/// On analytic energies the batched schedule evaluates point by point, so it must reproduce the
/// chain-major one bit for bit: every kind, HMC trajectories of different lengths in one block,
/// tempering swaps, traces, and a chain whose proposals overflow (frozen by ULA, rejected by the
/// others).
#[test]
fn cpu_schedules_agree_bit_for_bit() {
    let energy = resolve_energy(r#"{"type": "double_well", "dim": 3, "barrier": 1}"#).unwrap();
    let mut init = rng::initial_states(6, 0, 100, 3, 1.0);
    init[3] = 30.0;
    for (kind, step) in
        [(SamplerKind::Ula, 0.01), (SamplerKind::Mala, 0.05), (SamplerKind::Hmc, 0.1), (SamplerKind::Rwmh, 0.5)]
    {
        let mut config = SamplerConfig::new(kind, step, 7);
        (config.leapfrog, config.leapfrog_jitter, config.step_jitter) = (5, 2, 0.3);
        (config.trace_every, config.trace_steps, config.trace_start) = (3, 30, 5);
        config.tempering = Some(ebm_gpu::sampler::Tempering::geometric(3, 4.0, 4));
        let mut a = CpuSampler::new(&energy, config.clone(), &init).unwrap().with_schedule(Schedule::Batched).unwrap();
        let mut b = CpuSampler::new(&energy, config, &init).unwrap().with_schedule(Schedule::ChainMajor).unwrap();
        for s in [&mut a, &mut b] {
            s.run(17).unwrap();
            s.run(23).unwrap();
        }
        assert_eq!(a.all_states().unwrap(), b.all_states().unwrap(), "{kind:?}");
        assert_eq!(a.stats().unwrap(), b.stats().unwrap(), "{kind:?}");
        assert_eq!(a.all_traces().unwrap(), b.all_traces().unwrap(), "{kind:?}");
        assert_eq!(a.stats().unwrap().frozen[3], kind == SamplerKind::Ula, "{kind:?}");
    }
}
