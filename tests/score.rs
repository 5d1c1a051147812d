//! `ebm score`: log-densities against closed forms computed here (Gaussian with a full
//! precision, a mixture), quadrature log Z against known integrals, ratios from the energy
//! column, "not available" where no normaliser exists, and bad inputs refused by name.

mod common;

use common::{ebm, s, stderr, temp_dir};
use ebm_gpu::io;
use std::path::Path;

const LOG_2PI: f64 = 1.8378770664093453;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `ebm score` (on the CPU executor unless `extra` names a backend); the rows of the .npy it writes (energy, grad norm,
/// log-density).
fn score_npy(dir: &Path, energy: &str, points: &[f32], dim: usize, extra: &[&str]) -> Vec<[f32; 3]> {
    let input = dir.join("points.npy");
    io::write_samples(&input, points, points.len() / dim, dim).unwrap();
    let out = dir.join("scores.npy");
    let mut args = vec!["score", "--energy", energy, "--points", s(&input), "--out", s(&out)];
    args.extend_from_slice(extra);
    if !extra.contains(&"--backend") {
        args.extend(["--backend", "cpu"]);
    }
    let o = ebm(&args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let (data, shape) = io::npy::read_f32(&out).unwrap();
    assert_eq!(shape, [points.len() / dim, 3]);
    data.chunks_exact(3).map(|r| [r[0], r[1], r[2]]).collect()
}

/// Runs `ebm score --out x.json` and returns the report and stdout.
fn score_json(dir: &Path, energy: &str, points: &[f32], dim: usize, extra: &[&str]) -> (serde_json::Value, String) {
    let input = dir.join("points.csv");
    io::write_samples(&input, points, points.len() / dim, dim).unwrap();
    let out = dir.join("scores.json");
    let mut args = vec!["score", "--backend", "cpu", "--energy", energy, "--points", s(&input), "--out", s(&out)];
    args.extend_from_slice(extra);
    let o = ebm(&args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    (serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap(), stdout(&o))
}

#[test]
fn full_precision_gaussian_log_density_is_the_closed_form() {
    let dir = temp_dir("score-gauss");
    let (m, p) = ([0.5f64, -1.0], [[2.0f64, 0.8], [0.8, 1.5]]);
    let spec = r#"{"type": "gaussian", "mean": [0.5, -1], "precision": [[2, 0.8], [0.8, 1.5]]}"#;
    let points = [0.0f32, 0.0, 1.3, -2.2, -0.7, 0.4, 0.5, -1.0];
    let rows = score_npy(&dir, spec, &points, 2, &[]);
    let log_det = (p[0][0] * p[1][1] - p[0][1] * p[1][0]).ln();
    for (x, row) in points.chunks(2).zip(&rows) {
        let v = [x[0] as f64 - m[0], x[1] as f64 - m[1]];
        let pv = [p[0][0] * v[0] + p[0][1] * v[1], p[1][0] * v[0] + p[1][1] * v[1]];
        let quad = v[0] * pv[0] + v[1] * pv[1];
        let log_p = -0.5 * quad - LOG_2PI + 0.5 * log_det;
        assert!((row[2] as f64 - log_p).abs() < 1e-4, "x {x:?}: log-density {} vs closed form {log_p}", row[2]);
        assert!((row[0] as f64 - 0.5 * quad).abs() < 1e-4, "x {x:?}: energy {} vs {}", row[0], 0.5 * quad);
        let grad_norm = (pv[0] * pv[0] + pv[1] * pv[1]).sqrt();
        assert!((row[1] as f64 - grad_norm).abs() < 1e-4, "x {x:?}: grad norm {} vs {grad_norm}", row[1]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mixture_log_density_is_the_log_of_its_pdf() {
    let dir = temp_dir("score-mixture");
    let spec = r#"{"type": "gaussian_mixture", "weights": [0.3, 0.7], "means": [[-1, 0.5], [2, -1]], "stds": [[0.5, 1.0], [1.5, 0.4]]}"#;
    let (w, means, stds) = ([0.3f64, 0.7], [[-1.0f64, 0.5], [2.0, -1.0]], [[0.5f64, 1.0], [1.5, 0.4]]);
    let points = [0.0f32, 0.0, -1.2, 0.9, 2.5, -0.8, 4.0, 3.0];
    let rows = score_npy(&dir, spec, &points, 2, &[]);
    for (x, row) in points.chunks(2).zip(&rows) {
        let pdf: f64 = (0..2)
            .map(|k| {
                let mut d = w[k];
                for i in 0..2 {
                    let z = (x[i] as f64 - means[k][i]) / stds[k][i];
                    d *= (-0.5 * z * z).exp() / (stds[k][i] * (2.0 * std::f64::consts::PI).sqrt());
                }
                d
            })
            .sum();
        assert!((row[2] as f64 - pdf.ln()).abs() < 1e-4, "x {x:?}: log-density {} vs log pdf {}", row[2], pdf.ln());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Double well: Z = (∫ exp(-2 (x² - 1)²) dx)², the 1-d integral by a fine midpoint rule here.
/// Banana: Z = ∫ exp(-(1 - x)²) dx ∫ exp(-5 u²) du = π / √5; its ridge y = x² leaves the
/// default box, which the report must say.
#[test]
fn quadrature_log_z_matches_known_integrals_and_flags_mass_outside() {
    let dir = temp_dir("score-quad");
    let points = [0.0f32, 0.0, 1.0, 1.0];
    let (report, _) = score_json(&dir, "double_well", &points, 2, &[]);
    let n = 200_000;
    let h = 8.0 / n as f64;
    let one_d: f64 =
        (0..n).map(|i| -4.0 + (i as f64 + 0.5) * h).map(|x| (-2.0 * (x * x - 1.0f64).powi(2)).exp() * h).sum();
    let want = 2.0 * one_d.ln();
    let norm = &report["normaliser"];
    assert_eq!(norm["method"], "quadrature", "{report}");
    let log_z = norm["log_z"].as_f64().unwrap();
    assert!((log_z - want).abs() < 1e-4, "double well log Z {log_z} vs {want}");
    assert_eq!(norm["mass_may_fall_outside"], false, "{report}");
    assert_eq!(norm["box"], serde_json::json!([-8.0, 8.0]));
    // At (1, 1) E = 0, so the log-density is -log Z.
    let at_min = report["records"][1]["log_density"].as_f64().unwrap();
    assert!((at_min + log_z).abs() < 1e-6, "{at_min} vs {}", -log_z);

    let want = (std::f64::consts::PI / 5f64.sqrt()).ln();
    let (report, _) = score_json(&dir, "banana", &points, 2, &["--box", "-6,20"]);
    let log_z = report["normaliser"]["log_z"].as_f64().unwrap();
    assert!((log_z - want).abs() < 1e-4, "banana log Z on [-6, 20]² {log_z} vs {want}");
    assert_eq!(report["normaliser"]["mass_may_fall_outside"], false, "{report}");
    let (report, out) = score_json(&dir, "banana", &points, 2, &[]);
    assert_eq!(report["normaliser"]["mass_may_fall_outside"], true, "{report}");
    assert!(out.contains("mass may fall outside"), "{out}");
    let log_z = report["normaliser"]["log_z"].as_f64().unwrap();
    assert!(log_z < want - 1e-4, "the default box loses mass: {log_z} vs {want}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ratio_is_the_difference_of_the_energy_column() {
    let dir = temp_dir("score-ratio");
    let points = [0.1f32, 0.2, 1.7, -0.4, -2.0, 0.3];
    let (report, out) = score_json(&dir, "ring8", &points, 2, &["--ratio", "2,0"]);
    let e = |i: usize| report["records"][i]["energy"].as_f64().unwrap() as f32 as f64;
    let r = report["ratio"]["log_p_a_over_p_b"].as_f64().unwrap();
    assert_eq!(r, e(0) - e(2), "{report}");
    assert!(out.contains(&format!("= {r}")), "{out}");
    // For the normalised mixture the ratio is also the difference of the log-densities.
    let l = |i: usize| report["records"][i]["log_density"].as_f64().unwrap();
    assert!((r - (l(2) - l(0))).abs() < 1e-5, "{r} vs {}", l(2) - l(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn three_d_double_well_has_no_log_density() {
    let dir = temp_dir("score-3d");
    let spec = r#"{"type": "double_well", "dim": 3, "barrier": 2}"#;
    let points = [0.0f32, 0.5, -1.0, 1.0, 1.0, 1.0];
    let rows = score_npy(&dir, spec, &points, 3, &[]);
    assert!(rows.iter().all(|r| r[2].is_nan() && r[0].is_finite()), "{rows:?}");
    assert_eq!(rows[1][0], 0.0);
    let (report, out) = score_json(&dir, spec, &points, 3, &[]);
    assert_eq!(report["normaliser"]["method"], "not available", "{report}");
    assert_eq!(report["records"][0]["log_density"], "not available", "{report}");
    assert!(out.contains("not available"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_are_refused_by_name() {
    let dir = temp_dir("score-bad");
    let refuse = |args: &[&str], needles: &[&str]| {
        let o = ebm(args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{args:?} was accepted");
        for n in needles {
            assert!(e.contains(n), "{args:?}: {n:?} not in {e}");
        }
    };
    let wide = dir.join("wide.csv");
    std::fs::write(&wide, "0,0,0\n1,1,1\n").unwrap();
    refuse(&["score", "--energy", "ring8", "--points", s(&wide)], &["--points", "wide.csv", "3 columns", "2 inputs"]);
    let nan = dir.join("nan.csv");
    std::fs::write(&nan, "0,0\n1,1\n2,nan\n").unwrap();
    refuse(&["score", "--energy", "ring8", "--points", s(&nan)], &["nan.csv", "row 2"]);
    let ok = dir.join("ok.csv");
    std::fs::write(&ok, "0,0\n1,1\n").unwrap();
    refuse(&["score", "--energy", "ring8", "--points", s(&ok), "--ratio", "0,2"], &["--ratio", "row 2", "ok.csv"]);
    refuse(&["score", "--energy", "ring8", "--points", s(&ok), "--ratio", "1"], &["--ratio"]);
    let txt = dir.join("points.txt");
    std::fs::write(&txt, "0,0\n").unwrap();
    refuse(&["score", "--energy", "ring8", "--points", s(&txt)], &["--points", "points.txt", ".npy or .csv"]);
    let out = dir.join("scores.txt");
    refuse(&["score", "--energy", "ring8", "--points", s(&ok), "--out", s(&out)], &["--out", "scores.txt"]);
    refuse(&["score", "--energy", "ring8", "--points", s(&ok), "--out", s(&ok)], &["--out", "--points"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The GPU path (energy_eval) gives the CPU executor's numbers up to rounding.
#[test]
fn gpu_scores_match_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let dir = temp_dir("score-gpu");
    let points = [0.1f32, 0.2, 1.7, -0.4, -2.0, 0.3, 0.9, 1.1];
    let cpu = score_npy(&dir, "banana", &points, 2, &[]);
    let gpu = score_npy(&dir, "banana", &points, 2, &["--backend", "gpu"]);
    for (c, g) in cpu.iter().zip(&gpu) {
        for k in 0..3 {
            assert!((c[k] - g[k]).abs() <= 1e-4 * c[k].abs().max(1.0), "cpu {c:?} gpu {g:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A random binary RBM (weights N(0, std²) from the seed, biases set from it too) written as
/// an `ebm rbm train` checkpoint.
fn rbm_checkpoint(
    dir: &Path,
    n_vis: usize,
    n_hid: usize,
    std: f32,
    seed: u64,
) -> (ebm_gpu::rbm::Rbm, std::path::PathBuf) {
    use ebm_gpu::rbm::{Rbm, Visible, checkpoint, train::TrainState};
    let mut rbm = Rbm::random(n_vis, n_hid, Visible::Bernoulli, std, seed).unwrap();
    let biases = ebm_gpu::rng::initial_states(seed + 1, 0, 1, n_vis + n_hid, 0.5);
    rbm.b_mut().copy_from_slice(&biases[..n_vis]);
    rbm.c_mut().copy_from_slice(&biases[n_vis..]);
    let path = dir.join(format!("rbm{n_vis}x{n_hid}.safetensors"));
    let velocity = vec![0.0; rbm.theta.len()];
    checkpoint::save(&path, &TrainState { rbm: rbm.clone(), velocity, chains: None, step: 0, epoch: 0 }, None).unwrap();
    (rbm, path)
}

/// E(v, h) = -b.v - c.h - h.W.v in f64.
fn rbm_joint_energy(rbm: &ebm_gpu::rbm::Rbm, v: &[f64], h: &[f64]) -> f64 {
    let (nv, w, b, c) = (rbm.n_vis, rbm.w(), rbm.b(), rbm.c());
    let mut e = 0.0;
    for i in 0..nv {
        e -= b[i] as f64 * v[i];
    }
    for j in 0..rbm.n_hid {
        e -= c[j] as f64 * h[j];
        for i in 0..nv {
            e -= h[j] * w[j * nv + i] as f64 * v[i];
        }
    }
    e
}

fn bits(k: usize, n: usize) -> Vec<f64> {
    (0..n).map(|i| ((k >> i) & 1) as f64).collect()
}

fn log_sum_exp(xs: impl Iterator<Item = f64>) -> f64 {
    let xs: Vec<f64> = xs.collect();
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// log Z of a binary RBM: the visibles enumerated, the hidden units summed in closed form.
fn rbm_log_z_by_visibles(rbm: &ebm_gpu::rbm::Rbm) -> f64 {
    log_sum_exp(
        (0..1usize << rbm.n_vis)
            .map(|k| -(rbm.free_energy_f64(&bits(k, rbm.n_vis).iter().map(|&x| x as f32).collect::<Vec<_>>()))),
    )
}

/// `ebm score --energy rbm:FILE` on a 6x4 binary RBM: the free energy, its gradient norm (F
/// read as a function of real v, against central differences) and log p(v) equal a
/// brute-force enumeration of all 2^10 joint states, and the report says log Z is exact.
#[test]
fn rbm_log_density_matches_brute_force_enumeration() {
    let dir = temp_dir("score-rbm");
    let (rbm, path) = rbm_checkpoint(&dir, 6, 4, 1.0, 3);
    let (nv, nh) = (6, 4);
    let log_z = log_sum_exp(
        (0..1usize << nv)
            .flat_map(|a| (0..1usize << nh).map(move |b| (a, b)))
            .map(|(a, b)| -rbm_joint_energy(&rbm, &bits(a, nv), &bits(b, nh))),
    );
    let rows = [0usize, 63, 5, 42, 17];
    let points: Vec<f32> = rows.iter().flat_map(|&k| bits(k, nv)).map(|x| x as f32).collect();
    let energy = format!("rbm:{}", path.display());
    let (report, out) = score_json(&dir, &energy, &points, nv, &[]);
    assert_eq!(report["normaliser"]["method"], "exact enumeration", "{report}");
    assert!((report["normaliser"]["log_z"].as_f64().unwrap() - log_z).abs() < 1e-4, "{report} vs log Z {log_z}");
    assert!(out.contains("exact"), "{out}");
    for (r, &k) in rows.iter().enumerate() {
        let v = bits(k, nv);
        let free = -log_sum_exp((0..1usize << nh).map(|b| -rbm_joint_energy(&rbm, &v, &bits(b, nh))));
        let rec = &report["records"][r];
        assert!((rec["energy"].as_f64().unwrap() - free).abs() < 1e-4, "row {r}: F {rec} vs {free}");
        let log_p = rec["log_density"].as_f64().unwrap();
        assert!((log_p - (-free - log_z)).abs() < 1e-4, "row {r}: log p {log_p} vs brute force {}", -free - log_z);
        // |dF/dv| by central differences of the f64 free energy at real v.
        let f = |v: &[f64]| -log_sum_exp((0..1usize << nh).map(|b| -rbm_joint_energy(&rbm, v, &bits(b, nh))));
        let grad2: f64 = (0..nv)
            .map(|i| {
                let (mut p, mut m) = (v.clone(), v.clone());
                p[i] += 1e-5;
                m[i] -= 1e-5;
                ((f(&p) - f(&m)) / 2e-5).powi(2)
            })
            .sum();
        let g = rec["grad_norm"].as_f64().unwrap();
        assert!((g - grad2.sqrt()).abs() < 1e-3 * (1.0 + g), "row {r}: grad norm {g} vs {}", grad2.sqrt());
    }
    // The .npy path and a run directory name the same model.
    std::fs::create_dir_all(dir.join("run")).unwrap();
    std::fs::copy(&path, dir.join("run/checkpoint.safetensors")).unwrap();
    let npy = score_npy(&dir, &format!("rbm:{}", dir.join("run").display()), &points, nv, &[]);
    let want = report["records"][2]["log_density"].as_f64().unwrap();
    assert!((npy[2][2] as f64 - want).abs() < 1e-4, "{npy:?} vs {want}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 12x30 RBM: `--log-z ais` agrees with the exact log Z (all 2^12 visible states here, and
/// `auto`'s enumeration of the visible layer) within the report's own uncertainty, and reports
/// every estimate.
#[test]
fn rbm_ais_log_z_agrees_with_the_exact_one_within_its_error() {
    let dir = temp_dir("score-rbm-ais");
    let (rbm, path) = rbm_checkpoint(&dir, 12, 30, 0.3, 5);
    let exact = rbm_log_z_by_visibles(&rbm);
    let energy = format!("rbm:{}", path.display());
    let points: Vec<f32> = [0usize, 4095, 1234, 777].iter().flat_map(|&k| bits(k, 12)).map(|x| x as f32).collect();
    let (auto, _) = score_json(&dir, &energy, &points, 12, &[]);
    assert_eq!(auto["normaliser"]["method"], "exact enumeration", "{auto}");
    assert_eq!(auto["normaliser"]["layer"], "visible", "{auto}");
    assert!((auto["normaliser"]["log_z"].as_f64().unwrap() - exact).abs() < 1e-3, "{auto} vs {exact}");
    let (report, out) = score_json(
        &dir,
        &energy,
        &points,
        12,
        &["--log-z", "ais", "--ais-runs", "64", "--betas", "2000", "--seed", "3"],
    );
    let norm = &report["normaliser"];
    assert_eq!(norm["method"], "AIS", "{report}");
    let (log_z, se) = (norm["log_z"].as_f64().unwrap(), norm["std_err"].as_f64().unwrap());
    assert!(se > 0.0 && se < 0.1, "{norm}");
    assert!((log_z - exact).abs() <= 3.0 * se + ebm_gpu::ais::AGREE_NATS, "AIS log Z {log_z} +- {se} vs exact {exact}");
    for want in ["from the base-rate base", "from the uniform base", "reverse AIS from", "+-"] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let f = report["records"][1]["energy"].as_f64().unwrap();
    assert!((report["records"][1]["log_density"].as_f64().unwrap() - (-f - log_z)).abs() < 1e-9);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 1-visible Gaussian-Bernoulli RBM: exp(log-density) integrates to 1 over the line (the
/// convention of F, with |v|²/2, and of log Z, with its (2π)^(n/2), agree).
#[test]
fn gaussian_rbm_density_integrates_to_one() {
    use ebm_gpu::rbm::{Rbm, Visible, checkpoint, train::TrainState};
    let dir = temp_dir("score-rbm-gauss");
    let rbm = Rbm::from_parts(&[1.5, -0.7, 0.4], &[0.3], &[0.2, -0.5, 0.1], Visible::Gaussian).unwrap();
    let path = dir.join("g.safetensors");
    checkpoint::save(
        &path,
        &TrainState { velocity: vec![0.0; rbm.theta.len()], rbm, chains: None, step: 0, epoch: 0 },
        None,
    )
    .unwrap();
    let (lo, h, n) = (-12.0f64, 0.01f64, 2400);
    let points: Vec<f32> = (0..n).map(|k| (lo + (k as f64 + 0.5) * h) as f32).collect();
    let rows = score_npy(&dir, &format!("rbm:{}", path.display()), &points, 1, &[]);
    let mass: f64 = rows.iter().map(|r| (r[2] as f64).exp() * h).sum();
    assert!((mass - 1.0).abs() < 1e-4, "the density integrates to {mass}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rbm_bad_inputs_are_refused_by_name() {
    let dir = temp_dir("score-rbm-bad");
    let (_, path) = rbm_checkpoint(&dir, 6, 4, 1.0, 3);
    let (_, big) = rbm_checkpoint(&dir, 30, 30, 0.1, 4);
    let energy = format!("rbm:{}", path.display());
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let refuse = |args: &[&str], needles: &[&str]| {
        let o = ebm(args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{args:?} was accepted");
        for n in needles {
            assert!(e.contains(n), "{args:?}: {n:?} not in {e}");
        }
    };
    let narrow = write("narrow.csv", "0,1,0\n");
    refuse(
        &["score", "--energy", &energy, "--points", s(&narrow)],
        &["--points", "narrow.csv", "3 columns", "6 inputs"],
    );
    let grey = write("grey.csv", "0,1,0,1,1,0\n0,1,0.5,1,1,0\n");
    refuse(&["score", "--energy", &energy, "--points", s(&grey)], &["grey.csv", "row 1 column 2", "0.5", "binary"]);
    let ok = write("ok.csv", "0,1,0,1,1,0\n");
    refuse(
        &["score", "--energy", &energy, "--points", s(&ok), "--log-z", "ais", "--betas", "10"],
        &["--betas 10", "at least 100"],
    );
    refuse(&["score", "--energy", &energy, "--points", s(&ok), "--log-z", "ais", "--ais-runs", "1"], &["--ais-runs 1"]);
    refuse(&["score", "--energy", &energy, "--points", s(&ok), "--box", "-1,1"], &["--box", "rbm:"]);
    refuse(
        &["score", "--energy", "ring8", "--points", s(&write("two.csv", "0,0\n")), "--ais-runs", "5"],
        &["--ais-runs", "--log-z ais"],
    );
    let wide = write("wide.csv", &format!("{}\n", vec!["0"; 30].join(",")));
    refuse(
        &["score", "--energy", &format!("rbm:{}", big.display()), "--points", s(&wide), "--log-z", "exact"],
        &["--log-z exact", "30 hidden", "--log-z ais"],
    );
    refuse(
        &["score", "--energy", &format!("rbm:{}", dir.join("missing.safetensors").display()), "--points", s(&ok)],
        &["--energy", "missing.safetensors"],
    );
    refuse(&["score", "--energy", &format!("rbm:{}", dir.display()), "--points", s(&ok)], &["checkpoint.safetensors"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--log-z ais` on a 6-d Gaussian: the log-densities match the closed form to AIS's error,
/// the report names both bases; AIS flags that cannot apply are refused by name.
#[test]
fn ais_log_densities_of_any_energy_match_the_closed_form() {
    let dir = temp_dir("score-ais");
    let d = 6;
    let spec = serde_json::json!({ "type": "gaussian", "mean": vec![1.5; d], "std": vec![0.6; d] }).to_string();
    let points: Vec<f32> = (0..40 * d).map(|k| 1.5 + 0.3 * ((k * 7 % 11) as f32 - 5.0) / 5.0).collect();
    let exact = score_npy(&dir, &spec, &points, d, &[]);
    let extra = ["--log-z", "ais", "--ais-runs", "32", "--betas", "300", "--seed", "2"];
    let (report, out) = score_json(&dir, &spec, &points, d, &extra);
    let norm = &report["normaliser"];
    assert_eq!(norm["method"], "AIS", "{out}");
    let bases: Vec<&str> = norm["forward"].as_array().unwrap().iter().map(|f| f["base"].as_str().unwrap()).collect();
    assert_eq!(bases, ["fitted", "iso:1"]);
    let se = norm["std_err"].as_f64().unwrap();
    for (row, rec) in exact.iter().zip(report["records"].as_array().unwrap()) {
        let ais = rec["log_density"].as_f64().unwrap();
        assert!((ais - row[2] as f64).abs() < 0.05 + 3.0 * se, "AIS log-density {ais} vs closed form {}", row[2]);
    }
    assert!(out.contains("from the fitted base") && out.contains("acceptance"), "{out}");
    // Reverse AIS from exact samples of the model: the other side of log Z = d (ln 0.6 + ln 2 pi / 2).
    let truth = d as f64 * (0.6f64.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln());
    let exact_samples: Vec<f32> = (0..32 * d)
        .map(|k| {
            1.5 + 0.6
                * ebm_gpu::rng::normal4(9, (k / d) as u32, 0, ebm_gpu::rng::Stream::Init, (k % d) as u32 / 4)[k % d % 4]
        })
        .collect();
    let states = dir.join("states.npy");
    ebm_gpu::io::npy::write_f32(&states, &exact_samples, &[32, d]).unwrap();
    let with_reverse = [&extra[..], &["--reverse-from", s(&states)]].concat();
    let (report, out) = score_json(&dir, &spec, &points, d, &with_reverse);
    let reverse = &report["normaliser"]["reverse"];
    let (z, se) = (reverse["log_z"].as_f64().unwrap(), reverse["std_err"].as_f64().unwrap());
    assert!((z - truth).abs() < 0.05 + 3.0 * se, "reverse log Z {z} +- {se} vs {truth}: {out}");
    assert!(reverse["from"].as_str().unwrap().contains("32 states"), "{reverse}");
    assert!(report["normaliser"]["interval"].is_array(), "{}", report["normaliser"]);
    assert!(out.contains("reverse AIS from") && out.contains("log Z within ["), "{out}");
    let input = dir.join("points.csv");
    let refuse = |args: &[&str], want: &[&str]| {
        let mut all = vec!["score", "--backend", "cpu", "--energy", &spec, "--points", s(&input)];
        all.extend_from_slice(args);
        let o = ebm(&all);
        let err = stderr(&o);
        assert!(!o.status.success() && want.iter().all(|w| err.contains(w)), "{args:?}: {err}");
    };
    refuse(&["--log-z", "ais", "--base", "uniform"], &["--base uniform", "box"]);
    refuse(&["--log-z", "ais", "--base", "gauss"], &["--base gauss", "fitted, iso:S"]);
    refuse(&["--log-z", "ais", "--leapfrog", "0"], &["--leapfrog 0"]);
    refuse(&["--log-z", "exact"], &["--log-z exact", "rbm:"]);
    refuse(&["--base", "fitted"], &["--base", "--log-z ais"]);
    refuse(&["--log-z", "ais", "--box", "-1,1"], &["row 0 column 0", "outside --box -1,1"]);
    refuse(&["--reverse-from", s(&states)], &["--reverse-from", "--log-z ais"]);
    let narrow = dir.join("narrow.npy");
    ebm_gpu::io::npy::write_f32(&narrow, &exact_samples, &[64, d / 2]).unwrap();
    refuse(&["--log-z", "ais", "--reverse-from", s(&narrow)], &["--reverse-from", "rows of 3 values", "takes 6"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
