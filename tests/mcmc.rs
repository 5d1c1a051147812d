//! HMC, RWMH, step-size adaptation, parallel tempering and diagnostics.

mod common;

use ebm_gpu::energy::Energy;
use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::eval::diagnostics::{self, summarize};
use ebm_gpu::rng::{self, Stream};
use ebm_gpu::sampler::adapt::{Adaptation, warm_up};
use ebm_gpu::sampler::cpu::{CpuSampler, leapfrog};
use ebm_gpu::sampler::gpu::GpuSampler;
use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind, Tempering};

/// A correlated 10-d Gaussian: tridiagonal precision (2 on the diagonal, -0.9 beside it,
/// scaled per dimension), mean 0.5 * i. Returns the spec and the covariance (inverse of P).
fn correlated_gaussian() -> (String, Vec<f64>, Vec<f64>) {
    let d = 10;
    let scale: Vec<f64> = (0..d).map(|i| 0.5 + 0.25 * i as f64).collect();
    let mut p = vec![0.0; d * d];
    for i in 0..d {
        p[i * d + i] = 2.0 / (scale[i] * scale[i]);
        if i + 1 < d {
            let v = -0.9 / (scale[i] * scale[i + 1]);
            p[i * d + i + 1] = v;
            p[(i + 1) * d + i] = v;
        }
    }
    let mean: Vec<f64> = (0..d).map(|i| 0.5 * i as f64).collect();
    let rows: Vec<String> =
        p.chunks(d).map(|r| format!("[{}]", r.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(","))).collect();
    let spec = format!(
        r#"{{"type": "gaussian", "mean": [{}], "precision": [{}]}}"#,
        mean.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","),
        rows.join(",")
    );
    (spec, mean, invert(&p, d))
}

/// Gauss-Jordan inverse in f64.
fn invert(a: &[f64], d: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    let mut inv: Vec<f64> = (0..d * d).map(|k| if k / d == k % d { 1.0 } else { 0.0 }).collect();
    for c in 0..d {
        let piv = m[c * d + c];
        for j in 0..d {
            m[c * d + j] /= piv;
            inv[c * d + j] /= piv;
        }
        for r in 0..d {
            if r != c {
                let f = m[r * d + c];
                for j in 0..d {
                    m[r * d + j] -= f * m[c * d + j];
                    inv[r * d + j] -= f * inv[c * d + j];
                }
            }
        }
    }
    inv
}

fn grad_f64(energy: &Energy) -> impl Fn(&[f64], &mut [f64]) -> f64 + '_ {
    move |q, g| energy.energy_grad(q, g)
}

#[test]
fn leapfrog_is_reversible_and_second_order() {
    let energy = resolve_energy("banana").unwrap();
    let q0 = vec![0.3f64, 0.5];
    let p0 = vec![0.7f64, -0.4];
    let inv_mass = vec![1.0f64, 0.5];
    // L steps forward, negate the momentum, L steps back: the start again.
    let (mut q, mut p, mut g) = (q0.clone(), p0.clone(), vec![0.0; 2]);
    energy.energy_grad(&q, &mut g);
    leapfrog(grad_f64(&energy), &mut q, &mut p, &mut g, &inv_mass, 0.01, 50).unwrap();
    p.iter_mut().for_each(|v| *v = -*v);
    leapfrog(grad_f64(&energy), &mut q, &mut p, &mut g, &inv_mass, 0.01, 50).unwrap();
    for i in 0..2 {
        assert!((q[i] - q0[i]).abs() < 1e-12 && (p[i] + p0[i]).abs() < 1e-12, "q {q:?} p {p:?}");
    }
    // The energy error over a fixed time shrinks as eps^2 on a Gaussian.
    let gauss = resolve_energy(r#"{"type": "gaussian", "mean": [0, 0], "precision": [[2, 0.6], [0.6, 1]]}"#).unwrap();
    let h_error = |eps: f64| {
        let (mut q, mut p, mut g) = (q0.clone(), p0.clone(), vec![0.0; 2]);
        let kinetic = |p: &[f64]| 0.5 * (p[0] * p[0] * inv_mass[0] + p[1] * p[1] * inv_mass[1]);
        let h0 = gauss.energy_grad(&q, &mut g) + kinetic(&p);
        let e = leapfrog(grad_f64(&gauss), &mut q, &mut p, &mut g, &inv_mass, eps, (1.0 / eps).round() as u32).unwrap();
        (e + kinetic(&p) - h0).abs()
    };
    let (e1, e2) = (h_error(0.1), h_error(0.05));
    let ratio = e1 / e2;
    assert!((3.6..4.4).contains(&ratio), "energy errors {e1:e} {e2:e}: ratio {ratio}, expected ~4");
}

#[test]
fn one_leapfrog_step_matches_hand_computed_values() {
    // E = 0.5 x^T P x with P = [[2, 0.5], [0.5, 1]], inverse mass diag(1, 0.5), eps = 1/8:
    // dyadic numbers throughout, so the f64 arithmetic below is exact.
    let gauss = resolve_energy(r#"{"type": "gaussian", "mean": [0, 0], "precision": [[2, 0.5], [0.5, 1]]}"#).unwrap();
    let (mut q, mut p, mut g) = (vec![0.25f64, -0.25], vec![0.75f64, 0.5], vec![0.0; 2]);
    gauss.energy_grad(&q, &mut g);
    let e = leapfrog(grad_f64(&gauss), &mut q, &mut p, &mut g, &[1.0, 0.5], 0.125, 1).unwrap();
    // g0 = P q0 = (0.375, -0.125); p_half = p0 - g0 / 16 = (0.7265625, 0.5078125);
    // q1 = q0 + (1, 0.5) * p_half / 8 = (0.3408203125, -0.21826171875);
    // g1 = P q1 = (0.572509765625, -0.0478515625); p1 = p_half - g1 / 16;
    let want_q = [0.3408203125, -0.21826171875];
    let want_p = [0.7265625 - 0.572509765625 / 16.0, 0.5078125 + 0.0478515625 / 16.0];
    let want_e = 0.5 * (0.3408203125 * 0.572509765625 + 0.21826171875 * 0.0478515625);
    for i in 0..2 {
        assert!((q[i] - want_q[i]).abs() < 1e-12, "q {q:?}");
        assert!((p[i] - want_p[i]).abs() < 1e-12, "p {p:?}");
    }
    assert!((e - want_e).abs() < 1e-12, "E {e} vs {want_e}");
}

#[test]
fn gpu_matches_cpu_for_hmc_and_rwmh() {
    let Some(ctx) = common::gpu() else { return };
    let (spec, _, _) = correlated_gaussian();
    for spec in ["ring8", spec.as_str()] {
        let energy = resolve_energy(spec).unwrap();
        let d = energy.dim();
        let chains = 256;
        let init = rng::initial_states(3, 0, chains, d, 1.0);
        for (kind, step) in [(SamplerKind::Hmc, 0.05), (SamplerKind::Rwmh, 0.3)] {
            let mut config = SamplerConfig::new(kind, step, 99);
            config.step_jitter = 0.2;
            config.leapfrog_jitter = 3;
            let mut cpu = CpuSampler::new(&energy, config.clone(), &init).unwrap();
            let mut gpu = GpuSampler::new(ctx.clone(), &energy, config, &init).unwrap();
            let scale: Vec<f32> = (0..d).map(|i| 0.5 + 0.1 * i as f32).collect();
            cpu.set_dim_scale(&scale).unwrap();
            gpu.set_dim_scale(&scale).unwrap();
            cpu.run(100).unwrap();
            gpu.run(100).unwrap();
            let (a, b) = (cpu.state().unwrap(), gpu.state().unwrap());
            let diverged = a.chunks(d).zip(b.chunks(d)).filter(|(x, y)| common::max_abs_diff(x, y) > 2e-3).count();
            eprintln!(
                "{kind:?} {}: {diverged} of {chains} chains differ by more than 2e-3",
                &spec[..spec.len().min(20)]
            );
            assert!(diverged * 100 <= chains * 2, "{kind:?}: {diverged} chains diverged");
            let (sa, sb) = (cpu.stats().unwrap(), gpu.stats().unwrap());
            assert!((sa.acceptance_rate(100) - sb.acceptance_rate(100)).abs() < 0.01);
        }
    }
}

/// Means and covariances of a correlated 10-d Gaussian from HMC, RWMH and MALA (after
/// warm-up adaptation), within 4.5 Monte Carlo standard errors computed from the bulk ESS:
/// se(mean_i) = sqrt(S_ii / ESS_i), se(cov_ij) = sqrt((S_ii S_jj + S_ij^2) / min ESS).
#[test]
fn samplers_recover_a_correlated_gaussian() {
    let (spec, mean, cov) = correlated_gaussian();
    let energy = resolve_energy(&spec).unwrap();
    let d = 10;
    // Chains long next to their autocorrelation time, or split R-hat says "not converged".
    let chains = 500;
    let init = rng::initial_states(31, 0, chains, d, 2.0);
    let gpu = common::gpu();
    for (kind, step, warm, draws, thin) in [
        (SamplerKind::Hmc, 0.2, 400, 100, 5),
        (SamplerKind::Mala, 0.05, 400, 100, 10),
        (SamplerKind::Rwmh, 0.3, 1000, 100, 50),
    ] {
        let mut config = SamplerConfig::new(kind, step, 5);
        // Without jitter, HMC on a Gaussian with a fitted mass matrix falls into near-periodic
        // trajectories: some dimensions barely move (R-hat > 1.05 here).
        config.step_jitter = 0.5;
        config.trace_every = thin;
        config.trace_start = warm;
        config.trace_steps = draws * thin;
        let mut sampler: Box<dyn ChainSampler> = match (&gpu, kind) {
            (Some(ctx), SamplerKind::Hmc) => Box::new(GpuSampler::new(ctx.clone(), &energy, config, &init).unwrap()),
            _ => Box::new(CpuSampler::new(&energy, config, &init).unwrap()),
        };
        warm_up(sampler.as_mut(), warm, &Adaptation::new(kind)).unwrap();
        sampler.run(draws * thin).unwrap();
        let trace = sampler.trace().unwrap().unwrap();
        let summaries = diagnostics::summarize_trace(&trace, chains, d).unwrap();
        let n = (trace.len() / d) as f64;
        let est_mean: Vec<f64> =
            (0..d).map(|i| trace.iter().skip(i).step_by(d).map(|&v| v as f64).sum::<f64>() / n).collect();
        let min_ess = summaries.iter().map(|s| s.ess_bulk).fold(f64::INFINITY, f64::min);
        let max_rhat = summaries.iter().map(|s| s.rhat).fold(0.0, f64::max);
        eprintln!(
            "{kind:?} on {}: min bulk ESS {min_ess:.0} of {n} draws, max R-hat {max_rhat:.4}",
            sampler.executor()
        );
        assert!(max_rhat < 1.05, "{kind:?}: R-hat {max_rhat}: not converged");
        assert!(min_ess > 0.05 * n, "{kind:?}: ESS {min_ess} is too low to test anything");
        for i in 0..d {
            let se = (cov[i * d + i] / summaries[i].ess_bulk).sqrt();
            assert!(
                (est_mean[i] - mean[i]).abs() < 4.5 * se,
                "{kind:?} mean[{i}] {} vs {} (se {se})",
                est_mean[i],
                mean[i]
            );
            for j in 0..=i {
                let c = trace.chunks(d).map(|x| (x[i] as f64 - est_mean[i]) * (x[j] as f64 - est_mean[j])).sum::<f64>()
                    / (n - 1.0);
                let want = cov[i * d + j];
                let se = ((cov[i * d + i] * cov[j * d + j] + want * want) / min_ess).sqrt();
                assert!((c - want).abs() < 4.5 * se, "{kind:?} cov[{i}][{j}] {c} vs {want} (se {se})");
            }
        }
    }
}

/// Dual averaging brings the acceptance rate within 0.05 of its target, shared and per chain.
#[test]
fn dual_averaging_reaches_the_target_acceptance() {
    let energy = resolve_energy(r#"{"type": "gaussian", "mean": [0, 0, 0, 0], "std": [1, 2, 0.5, 3]}"#).unwrap();
    let init = rng::initial_states(2, 0, 500, 4, 1.0);
    for (kind, per_chain) in
        [(SamplerKind::Mala, false), (SamplerKind::Hmc, false), (SamplerKind::Hmc, true), (SamplerKind::Rwmh, false)]
    {
        // Start far from a good step size, in both directions.
        for start in [1e-3f32, 3.0] {
            let mut config = SamplerConfig::new(kind, start, 8);
            config.leapfrog = 5;
            let mut s = CpuSampler::new(&energy, config, &init).unwrap();
            // Per-chain adaptation sees one chain's acceptance: update after every step.
            let window = if per_chain { 1 } else { 5 };
            let adapt = Adaptation { per_chain, adapt_scale: false, window, ..Adaptation::new(kind) };
            warm_up(&mut s, 600, &adapt).unwrap();
            let before = s.stats().unwrap();
            s.run(400).unwrap();
            let rate = s.stats().unwrap().since(&before).acceptance_rate(400);
            eprintln!(
                "{kind:?} per_chain={per_chain} from {start}: step {:.3}, acceptance {rate:.3} (target {})",
                s.step_sizes()[0],
                adapt.target_accept
            );
            assert!((rate - adapt.target_accept).abs() < 0.05, "{kind:?} from {start}: acceptance {rate}");
        }
    }
}

/// ESS of AR(1) chains x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t is N (1 - rho) / (1 + rho).
#[test]
fn ess_of_an_ar1_process_matches_theory() {
    let (m, n) = (8, 5000);
    for rho in [0.5f64, 0.9] {
        let chains: Vec<Vec<f64>> = (0..m)
            .map(|c| {
                let mut x = rng::normal4(1, c, 0, Stream::Init, 0)[0] as f64;
                (0..n)
                    .map(|t| {
                        x = rho * x
                            + (1.0 - rho * rho).sqrt() * rng::normal4(1, c, t + 1, Stream::ProposalNoise, 0)[0] as f64;
                        x
                    })
                    .collect()
            })
            .collect();
        let s = summarize(&chains).unwrap();
        let want = (m * n) as f64 * (1.0 - rho) / (1.0 + rho);
        eprintln!("rho {rho}: bulk ESS {:.0}, theory {want:.0}, R-hat {:.4}", s.ess_bulk, s.rhat);
        assert!((s.ess_bulk / want - 1.0).abs() < 0.1, "rho {rho}: ESS {} vs {want}", s.ess_bulk);
        assert!(s.rhat < 1.01);
    }
}

/// A 1-d mixture with modes at -4 and +4 (weights 0.3, 0.7) and every chain started in the
/// left mode. Plain MALA stays there; parallel tempering recovers the right mode's weight
/// within 4 standard errors of sqrt(p (1 - p) / chains) (the final states of independent
/// chains).
#[test]
fn parallel_tempering_recovers_mode_weights_where_mala_does_not() {
    let energy = resolve_energy(
        r#"{"type": "gaussian_mixture", "weights": [0.3, 0.7], "means": [[-4], [4]], "stds": [[0.6], [0.6]]}"#,
    )
    .unwrap();
    let chains = 1000;
    let init = vec![-4.0f32; chains];
    let right = |xs: &[f32]| xs.iter().filter(|&&x| x > 0.0).count() as f64 / xs.len() as f64;
    let se = (0.7f64 * 0.3 / chains as f64).sqrt();
    let mut runs: Vec<(String, Box<dyn ChainSampler>)> = Vec::new();
    let mut pt = SamplerConfig::new(SamplerKind::Mala, 0.1, 4);
    pt.tempering = Some(Tempering::geometric(8, 60.0, 5));
    runs.push(("cpu".into(), Box::new(CpuSampler::new(&energy, pt.clone(), &init).unwrap())));
    if let Some(ctx) = common::gpu() {
        runs.push(("gpu".into(), Box::new(GpuSampler::new(ctx, &energy, pt.clone(), &init).unwrap())));
    }
    let mut plain = CpuSampler::new(&energy, SamplerConfig::new(SamplerKind::Mala, 0.1, 4), &init).unwrap();
    plain.run(3000).unwrap();
    let plain_right = right(&plain.state().unwrap());
    eprintln!("plain MALA: right-mode fraction {plain_right:.3}");
    assert!((plain_right - 0.7).abs() > 10.0 * se, "plain MALA mixed: {plain_right}");
    for (name, mut s) in runs {
        s.run(3000).unwrap();
        let frac = right(&s.state().unwrap());
        let stats = s.stats().unwrap();
        let rounds: u32 = 3000 / 5;
        let swap_rates: Vec<f64> = (0..7)
            .map(|r| {
                let attempts = if r % 2 == 0 { rounds.div_ceil(2) } else { rounds / 2 } as f64;
                stats.swaps.iter().skip(r).step_by(7).map(|&v| v as f64).sum::<f64>() / (attempts * chains as f64)
            })
            .collect();
        eprintln!("PT on {name}: right-mode fraction {frac:.3} (se {se:.3}), swap acceptance {swap_rates:.2?}");
        assert!((frac - 0.7).abs() < 4.0 * se, "{name}: PT right-mode fraction {frac}");
    }
}

#[test]
fn bad_sampler_settings_are_rejected() {
    let energy = resolve_energy("ring8").unwrap();
    let init = rng::initial_states(4, 0, 10, 2, 1.0);
    let err = |config: SamplerConfig| {
        CpuSampler::new(&energy, config, &init).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let hmc = SamplerConfig::new(SamplerKind::Hmc, 0.1, 1);
    let with = |change: &dyn Fn(&mut SamplerConfig)| {
        let mut c = hmc.clone();
        change(&mut c);
        c
    };
    assert!(err(with(&|c| c.leapfrog = 0)).contains("leapfrog"));
    assert!(err(with(&|c| c.leapfrog_jitter = 10)).contains("jitter"));
    assert!(err(with(&|c| c.step_size = -0.1)).contains("step size"));
    let ladder = |t: &[f32]| Tempering::from_temperatures(t, 5).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(ladder(&[2.0, 4.0]).contains("start at temperature 1"));
    assert!(ladder(&[1.0, 3.0, 2.0]).contains("increase"));
    assert!(ladder(&[1.0]).contains("at least 2"));
    assert!(Tempering::from_temperatures(&[1.0, 2.0, 4.0], 5).is_ok());
    let mut s = CpuSampler::new(&energy, SamplerConfig::new(SamplerKind::Mala, 0.1, 1), &init).unwrap();
    for target in [0.0, 1.0, 1.5] {
        let e = warm_up(&mut s, 10, &Adaptation { target_accept: target, ..Adaptation::new(SamplerKind::Mala) })
            .unwrap_err();
        assert!(e.to_string().contains("target acceptance"), "{e}");
    }
    let mut ula = CpuSampler::new(&energy, SamplerConfig::new(SamplerKind::Ula, 0.1, 1), &init).unwrap();
    assert!(warm_up(&mut ula, 10, &Adaptation::new(SamplerKind::Ula)).is_err());
}

/// The diagnostics warn when the chains have not converged (R-hat above 1.01, bulk ESS below
/// 400): a ring8 run with a tiny step stays in its starting modes; a warmed-up run on a
/// Gaussian passes without a word.
#[test]
fn sample_diagnostics_warn_on_unconverged_chains() {
    let dir = common::temp_dir("rhat-warning");
    // `ebm sample` with `args` and --diagnostics: (stderr, the report's warnings).
    let sample = |args: &str, report: &std::path::Path| {
        let mut all: Vec<&str> = format!("sample --backend cpu {args}").leak().split(' ').collect();
        all.extend(["--diagnostics", report.to_str().unwrap()]);
        let o = common::ebm(&all);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        (common::stderr(&o), json["warnings"].as_array().unwrap().len())
    };
    let (err, warnings) = sample("--energy ring8 --chains 64 --steps 200 --step-size 0.01", &dir.join("stuck.json"));
    assert!(err.contains("warning: R-hat above 1.01") && warnings > 0, "{err}");
    let mixed = "--energy correlated2 --chains 256 --steps 2000 --warmup 500 --sampler mala --step-size 0.3";
    let (err, warnings) = sample(mixed, &dir.join("mixed.json"));
    assert!(!err.contains("warning:") && warnings == 0, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--init box:LO,HI` starts every coordinate uniformly in [LO, HI] (here checked after one
/// RWMH step of 1e-6), and a box with LO >= HI is refused.
#[test]
fn chains_start_inside_an_init_box() {
    let dir = common::temp_dir("init-box");
    let out = dir.join("s.npy");
    let args =
        "sample --backend cpu --energy ring8 --chains 512 --steps 1 --sampler rwmh --step-size 1e-6 --init box:2,3";
    let o = common::ebm(&[&args.split(' ').collect::<Vec<_>>()[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", common::stderr(&o));
    let (states, _) = ebm_gpu::io::npy::read_f32(&out).unwrap();
    let (lo, hi) = states.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo >= 2.0 - 1e-4 && hi <= 3.0 + 1e-4 && lo < 2.05 && hi > 2.95, "[{lo}, {hi}]");
    let o = common::ebm(&["sample", "--backend", "cpu", "--init", "box:3,2"]);
    assert!(!o.status.success() && common::stderr(&o).contains("LO must be below HI"), "{}", common::stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--init feasible` starts every chain inside the energy's constraints (a half disc here,
/// checked after one RWMH step of 1e-6), where a Gaussian start leaves many outside; an energy
/// without constraints is refused.
#[test]
fn chains_start_inside_the_constraints_with_init_feasible() {
    let dir = common::temp_dir("init-feasible");
    let out = dir.join("s.npy");
    let energy = r#"{"type": "sum", "terms": [{"type": "gaussian", "mean": [0, 0], "std": [2, 2]},
        {"type": "linear_inequality", "a": [-1, 0], "b": 0, "weight": 1000}, {"type": "norm_ball", "radius": 1, "weight": 1000}]}"#;
    let run = |init: &str| {
        let args = ["sample", "--backend", "cpu", "--chains", "512", "--steps", "1", "--sampler", "rwmh"];
        let more = ["--step-size", "1e-6", "--energy", energy, "--init", init, "--out", out.to_str().unwrap()];
        let o = common::ebm(&[&args[..], &more].concat());
        assert!(o.status.success(), "{}", common::stderr(&o));
        let (states, _) = ebm_gpu::io::npy::read_f32(&out).unwrap();
        states.chunks_exact(2).filter(|p| p[0] < -1e-4 || p[0] * p[0] + p[1] * p[1] > 1.0 + 1e-3).count()
    };
    assert_eq!(run("feasible"), 0, "chains outside the half disc");
    assert!(run("gaussian") > 200, "a Gaussian start should leave many chains outside");
    let o = common::ebm(&["sample", "--backend", "cpu", "--energy", "ring8", "--init", "feasible"]);
    assert!(!o.status.success() && common::stderr(&o).contains("no constraint term"), "{}", common::stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
