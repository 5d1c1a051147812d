//! Energy minimisation (src/eval/minimize.rs, `ebm minimize`): every mode of ring8 from enough
//! starts, the exact minimum of a quadratic by both methods, the projection onto a box, a
//! conditional minimum with dimensions held fixed, the GPU's minima equal to the CPU's, and
//! the refusals.

mod common;

use ebm_gpu::energy::batch::{CpuEvaluator, GpuEvaluator};
use ebm_gpu::energy::{Energy, GaussianDiag, spec};
use ebm_gpu::eval::minimize::{self, Method, MinimizeConfig, Outcome};

/// `n` starts uniform on [-r, r]^dim.
fn uniform_starts(n: usize, dim: usize, r: f32, seed: u64) -> Vec<f32> {
    (0..n * dim)
        .map(|k| {
            let u = ebm_gpu::rng::uniform4(seed, (k / dim) as u32, 0, ebm_gpu::rng::Stream::Init, (k % dim) as u32 / 4)
                [k % dim % 4];
            r * (2.0 * u - 1.0)
        })
        .collect()
}

fn dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt()
}

/// The 8 centres of ring8 (radius 2, angles k pi / 4).
fn ring8_centres() -> Vec<[f32; 2]> {
    (0..8).map(|k| (k as f32 * std::f32::consts::FRAC_PI_4).sin_cos()).map(|(s, c)| [2.0 * c, 2.0 * s]).collect()
}

/// Each of ring8's 8 modes is found, exactly once, within 1e-3 of its centre (the other
/// components shift the minimum by far less: they are > 1.5 apart at std 0.25).
fn assert_ring8_minima(minima: &[minimize::Minimum], what: &str) {
    assert_eq!(minima.len(), 8, "{what}: {minima:?}");
    for c in ring8_centres() {
        let near: Vec<_> = minima.iter().filter(|m| dist(&m.point, &c) < 1e-3).collect();
        assert_eq!(near.len(), 1, "{what}: centre {c:?} among {minima:?}");
    }
    let lowest = minima.iter().map(|m| m.energy).fold(f32::INFINITY, f32::min);
    assert!(minima.iter().all(|m| m.energy - lowest < 1e-4), "{what}: equal modes, equal energies: {minima:?}");
}

#[test]
fn every_mode_of_ring8_from_enough_starts() {
    let energy = spec::resolve_energy("ring8").unwrap();
    let starts = uniform_starts(64, 2, 3.0, 1);
    for method in [Method::Lbfgs, Method::Adam] {
        let mut config = MinimizeConfig::new(method);
        config.learning_rate = 0.05;
        config.max_steps = 3000;
        let d = minimize::minimize(&mut CpuEvaluator(&energy), &starts, 2, None, &config).unwrap();
        let converged = d.outcomes.iter().filter(|&&o| o == Outcome::Converged).count();
        assert!(converged >= 60, "{method:?}: {converged} of 64 converged: {:?}", d.outcomes);
        assert_ring8_minima(&minimize::distinct_minima(&d, 2, 1e-2), &format!("{method:?}"));
        // Every start is counted once.
        let counted: usize = minimize::distinct_minima(&d, 2, 1e-2).iter().map(|m| m.starts.len()).sum();
        assert_eq!(counted, d.outcomes.iter().filter(|o| matches!(o, Outcome::Converged | Outcome::Stalled)).count());
    }
}

/// A 5-d quadratic with a full, ill-conditioned precision: both methods reach its mean.
#[test]
fn the_exact_minimum_of_a_quadratic() {
    let json = r#"{"type": "gaussian", "mean": [1.5, -2, 0.5, 3, -1],
        "precision": [[10, 3, 0, 0, 1], [3, 5, 1, 0, 0], [0, 1, 2, 0.5, 0], [0, 0, 0.5, 1, 0.2], [1, 0, 0, 0.2, 0.3]]}"#;
    let energy = spec::resolve_energy(json).unwrap();
    let mean = [1.5f32, -2.0, 0.5, 3.0, -1.0];
    let starts = uniform_starts(8, 5, 5.0, 2);
    for (method, steps, tol) in [(Method::Lbfgs, 200, 1e-3), (Method::Adam, 20000, 5e-3)] {
        let mut config = MinimizeConfig::new(method);
        config.max_steps = steps;
        config.grad_tol = 1e-4;
        let d = minimize::minimize(&mut CpuEvaluator(&energy), &starts, 5, None, &config).unwrap();
        for (i, p) in d.points.chunks(5).enumerate() {
            assert!(dist(p, &mean) < tol, "{method:?} start {i}: {p:?} ({:?}), mean {mean:?}", d.outcomes[i]);
            assert!(d.energies[i].abs() < 1e-5, "{method:?}: E at the mean is 0, got {}", d.energies[i]);
        }
    }
}

/// A diagonal Gaussian whose mean lies outside the box: the minimum on the box is the mean
/// clamped to it, and the projected gradient there counts as converged.
#[test]
fn a_minimum_on_the_box_wall() {
    let energy: Energy = GaussianDiag { mean: vec![3.0, -0.25, -5.0], inv_var: vec![1.0, 4.0, 0.5] }.into();
    let mut config = MinimizeConfig::new(Method::Lbfgs);
    config.bounds = Some((-1.0, 1.0));
    let d = minimize::minimize(&mut CpuEvaluator(&energy), &uniform_starts(6, 3, 1.0, 3), 3, None, &config).unwrap();
    for (i, p) in d.points.chunks(3).enumerate() {
        assert_eq!(d.outcomes[i], Outcome::Converged, "start {i} at {p:?}");
        assert!(dist(p, &[1.0, -0.25, -1.0]) < 1e-3, "start {i}: {p:?}");
    }
}

/// Holding x0 = a, the minimum over x1 of 0.5 (x-m)^T P (x-m) is m1 - P10 / P11 (a - m0).
#[test]
fn a_conditional_minimum_with_a_dimension_held() {
    let energy =
        spec::resolve_energy(r#"{"type": "gaussian", "mean": [1, 2], "precision": [[2, 0.8], [0.8, 1]]}"#).unwrap();
    let mut starts = uniform_starts(4, 2, 3.0, 4);
    starts.chunks_mut(2).for_each(|r| r[0] = -1.0);
    let d = minimize::minimize(
        &mut CpuEvaluator(&energy),
        &starts,
        2,
        Some(&[false, true]),
        &MinimizeConfig::new(Method::Lbfgs),
    )
    .unwrap();
    let want = 2.0 - 0.8 / 1.0 * (-1.0 - 1.0);
    for p in d.points.chunks(2) {
        assert_eq!(p[0], -1.0, "the held dimension does not move");
        assert!((p[1] - want).abs() < 1e-3, "{p:?}: x1 should be {want}");
    }
}

/// The GPU evaluates the same energies: the same 8 minima, the same assignment of starts.
#[test]
fn gpu_minima_match_the_cpu() {
    let Some(ctx) = common::gpu() else { return common::skip("no GPU adapter") };
    let energy = spec::resolve_energy("ring8").unwrap();
    let starts = uniform_starts(32, 2, 3.0, 5);
    let config = MinimizeConfig::new(Method::Lbfgs);
    let cpu = minimize::minimize(&mut CpuEvaluator(&energy), &starts, 2, None, &config).unwrap();
    let gpu = minimize::minimize(&mut GpuEvaluator { ctx, energy: &energy }, &starts, 2, None, &config).unwrap();
    let (mc, mg) = (minimize::distinct_minima(&cpu, 2, 1e-2), minimize::distinct_minima(&gpu, 2, 1e-2));
    assert_eq!(mc.len(), mg.len(), "cpu {mc:?}\ngpu {mg:?}");
    for a in &mc {
        let b = mg
            .iter()
            .find(|b| dist(&a.point, &b.point) < 1e-3)
            .unwrap_or_else(|| panic!("{a:?} not on the GPU: {mg:?}"));
        let (mut sa, mut sb) = (a.starts.clone(), b.starts.clone());
        sa.sort();
        sb.sort();
        assert_eq!(sa, sb, "the same starts reach the minimum at {:?}", a.point);
    }
}

#[test]
fn bad_settings_are_refused() {
    let energy = spec::resolve_energy("ring8").unwrap();
    let mut eval = CpuEvaluator(&energy);
    let ok = MinimizeConfig::new(Method::Lbfgs);
    let refuse = |config: MinimizeConfig, starts: &[f32], free: Option<&[bool]>, what: &str| {
        let e = minimize::minimize(&mut CpuEvaluator(&energy), starts, 2, free, &config).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    };
    refuse(MinimizeConfig { max_steps: 0, ..ok.clone() }, &[0.0, 0.0], None, "steps");
    refuse(MinimizeConfig { grad_tol: f32::NAN, ..ok.clone() }, &[0.0, 0.0], None, "gradient tolerance");
    refuse(MinimizeConfig { bounds: Some((1.0, -1.0)), ..ok.clone() }, &[0.0, 0.0], None, "box");
    refuse(ok.clone(), &[0.0, 0.0, 1.0], None, "rows of 2");
    refuse(ok.clone(), &[0.0, 0.0], Some(&[true]), "free dimensions");
    assert!(Method::parse("newton").unwrap_err().to_string().contains("lbfgs, adam"));
    // A start where the energy is not finite is reported as such, not descended.
    let d = minimize::minimize(&mut eval, &[f32::NAN, 0.0, 1.0, 0.0], 2, None, &ok).unwrap();
    assert_eq!(d.outcomes[0], Outcome::NonFinite);
    assert_eq!(d.outcomes[1], Outcome::Converged);
}

#[test]
fn the_command_lists_the_minima_and_writes_the_report() {
    let dir = common::temp_dir("minimize");
    let json = dir.join("m.json");
    // ring8 from 48 starts on the CPU, plus `extra` flags.
    let run = |extra: &[&str]| {
        let base: Vec<&str> = "minimize --energy ring8 --starts 48 --backend cpu".split(' ').collect();
        common::ebm(&[&base[..], extra].concat())
    };
    let o = run(&["--init", "uniform", "--init-std", "3", "--out", json.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(out.contains("8 distinct minima"), "{out}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["minima"].as_array().unwrap().len(), 8);
    assert_eq!(r["endpoints"].as_array().unwrap().len(), 48);
    let npy = dir.join("m.npy");
    let o = run(&["--out", npy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let (rows, n, d) = ebm_gpu::io::read_samples(&npy).unwrap();
    assert_eq!((d, rows.len()), (2, n * 2));
    for (args, says) in [
        (&["minimize", "--lr", "0.1"][..], "--method adam"),
        (&["minimize", "--method", "newton"][..], "--method"),
        (&["minimize", "--starts", "0"][..], "--starts"),
        (&["minimize", "--box", "1,-1"][..], "LO must be below HI"),
        (&["minimize", "--fix", "5=1"][..], "--fix"),
    ] {
        let o = common::ebm(args);
        assert!(!o.status.success() && common::stderr(&o).contains(says), "{args:?}: {}", common::stderr(&o));
    }
}
