//! Analytic energies: gradients against f64 finite differences, GPU against the CPU twin,
//! normalisation, and spec parsing errors.

mod common;

use ebm_gpu::energy::spec::{parse_energy, resolve_energy};
use ebm_gpu::energy::{Energy, gpu::energy_grad_batch};
use ebm_gpu::rng;

const SPECS: &[&str] = &[
    "ring8",
    "grid25",
    "double_well",
    "banana",
    "correlated2",
    r#"{"type": "gaussian", "mean": [0.5, -1, 2, 0, 1, 0, 0, 3, -2, 1], "std": [1, 2, 0.5, 1, 1, 3, 1, 0.7, 1, 2]}"#,
    r#"{"type": "gaussian_mixture", "weights": [0.2, 0.5, 0.3], "means": [[0, 0, 1], [1, -1, 0], [-2, 0, 0]], "stds": [[1, 0.5, 0.7], [0.4, 1, 1], [1, 1, 2]]}"#,
    r#"{"type": "double_well", "dim": 5, "barrier": 1.5}"#,
    r#"{"type": "banana", "dim": 4, "a": 0.5, "b": 3}"#,
    r#"{"type": "sum", "terms": [{"type": "double_well"}, "placeholder"]}"#,
];

fn energies() -> Vec<(String, Energy)> {
    SPECS
        .iter()
        .map(|s| {
            let s = s.replace(r#""placeholder""#, r#"{"type": "gaussian", "mean": [1, 0], "precision": [[1, 0.3], [0.3, 2]]}"#);
            let e = resolve_energy(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            (s, e)
        })
        .collect()
}

/// Random points: N(0, 1.5^2) per coordinate from the Philox init stream.
fn points(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    rng::initial_states(seed, 0, n, dim, 1.5)
}

#[test]
fn gradients_match_f64_finite_differences() {
    for (spec, energy) in energies() {
        let d = energy.dim();
        for x in points(11, 20, d).chunks(d) {
            let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let mut g = vec![0.0f64; d];
            energy.energy_grad(&x, &mut g);
            for i in 0..d {
                let h = 1e-6 * (1.0 + x[i].abs());
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                let fd = (energy.energy(&xp) - energy.energy(&xm)) / (2.0 * h);
                assert!((fd - g[i]).abs() <= 1e-5 * (1.0 + fd.abs()), "{spec} at {x:?}, dim {i}: analytic {} vs fd {fd}", g[i]);
            }
        }
    }
}

#[test]
fn f32_twin_agrees_with_f64() {
    for (spec, energy) in energies() {
        let d = energy.dim();
        for x in points(12, 20, d).chunks(d) {
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let (e32, e64) = (energy.energy(x), energy.energy(&x64));
            assert!((e32 as f64 - e64).abs() <= 1e-4 * (1.0 + e64.abs()), "{spec}: f32 {e32} vs f64 {e64}");
        }
    }
}

#[test]
fn gpu_energies_and_gradients_match_cpu() {
    let Some(ctx) = common::gpu() else { return };
    for (spec, energy) in energies() {
        let d = energy.dim();
        let xs = points(13, 300, d);
        let (e_gpu, g_gpu) = energy_grad_batch(&ctx, &energy, &xs).unwrap();
        for (n, x) in xs.chunks(d).enumerate() {
            let mut g = vec![0.0f32; d];
            let e = energy.energy_grad(x, &mut g);
            assert!((e - e_gpu[n]).abs() <= 1e-5 * (1.0 + e.abs()), "{spec} point {n}: cpu {e} gpu {}", e_gpu[n]);
            for i in 0..d {
                let gg = g_gpu[n * d + i];
                assert!((g[i] - gg).abs() <= 1e-5 * (1.0 + g[i].abs()), "{spec} point {n} dim {i}: cpu {} gpu {gg}", g[i]);
            }
        }
    }
}

#[test]
fn mixture_density_integrates_to_one() {
    // Midpoint rule on [-8, 8]^2 with 400^2 cells: the ring8 density is normalised.
    let energy = resolve_energy("ring8").unwrap();
    let (n, lo, hi) = (400, -8.0f64, 8.0f64);
    let h = (hi - lo) / n as f64;
    let mut total = 0.0;
    for i in 0..n {
        for j in 0..n {
            let x = [lo + (i as f64 + 0.5) * h, lo + (j as f64 + 0.5) * h];
            total += (-energy.energy(&x)).exp() * h * h;
        }
    }
    assert!((total - 1.0).abs() < 1e-3, "integral {total}");
}

fn err(spec: &str) -> String {
    match resolve_energy(spec) {
        Ok(e) => panic!("{spec} was accepted as {e:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_specs_are_rejected_with_the_field_named() {
    let cases: &[(&str, &[&str])] = &[
        ("ring9", &["ring9", "preset", "ring8"]),
        (r#"{"type": "gaussian_mixtur", "weights": [1]}"#, &["unknown variant", "gaussian_mixture"]),
        ("{\"type\": \"gaussian\",\n \"mean\": [0, 1,]}", &["line 2", "column"]),
        (r#"{"type": "gaussian", "mean": [0, 1], "std": [1]}"#, &["std", "1 entries", "2"]),
        (r#"{"type": "gaussian", "mean": [0, 1], "std": [1, 0]}"#, &["std[1]", "positive"]),
        (r#"{"type": "gaussian", "mean": [0, 1], "std": [1, -2]}"#, &["std[1]", "positive"]),
        (r#"{"type": "gaussian", "mean": [0, 1]}"#, &["exactly one of"]),
        (r#"{"type": "gaussian", "mean": [0, 1], "precision": [[1, 2], [0, 1]]}"#, &["precision", "symmetric"]),
        (r#"{"type": "gaussian", "mean": [0, 1], "precision": [[1, 2], [2, 1]]}"#, &["precision", "positive definite"]),
        (r#"{"type": "gaussian", "mean": [0, 1], "precision": [[1, 0]]}"#, &["precision", "rows"]),
        (r#"{"type": "gaussian", "mean": [], "std": []}"#, &["mean", "at least one"]),
        (r#"{"type": "gaussian", "mean": [1e60], "std": [1]}"#, &["mean[0]", "1e60", "range of f32"]),
        (
            r#"{"type": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[0, 0], [1]], "stds": [[1, 1], [1, 1]]}"#,
            &["means[1]", "1 entries"],
        ),
        (
            r#"{"type": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[0, 0], [1, 1]], "stds": [[1, 1], [1]]}"#,
            &["stds[1]"],
        ),
        (
            r#"{"type": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[0, 0], [1, 1]], "stds": [[1, 1], [1, 0]]}"#,
            &["stds[1][1]", "positive"],
        ),
        (r#"{"type": "gaussian_mixture", "weights": [1, -1], "means": [[0], [1]], "stds": [[1], [1]]}"#, &["weights[1]"]),
        (r#"{"type": "gaussian_mixture", "weights": [1], "means": [[0], [1]], "stds": [[1], [1]]}"#, &["1 weights but 2 means"]),
        (r#"{"type": "double_well", "dim": 0}"#, &["dim"]),
        (r#"{"type": "double_well", "barrier": -1}"#, &["barrier", "positive"]),
        (r#"{"type": "banana", "dim": 1}"#, &["dim", "2"]),
        (r#"{"type": "double_well", "dims": 3}"#, &["unknown field", "dims"]),
        (r#"{"type": "sum", "terms": [{"type": "double_well", "dim": 2}, {"type": "double_well", "dim": 3}]}"#, &["terms[1]", "dimension"]),
        (r#"{"type": "sum", "terms": [{"type": "double_well", "barrier": 0}]}"#, &["terms[0].barrier"]),
        ("/nonexistent/spec.json", &["neither a preset"]),
    ];
    for (spec, needles) in cases {
        let message = err(spec);
        for needle in *needles {
            assert!(message.contains(needle), "error for {spec} lacks {needle:?}: {message}");
        }
    }
}

#[test]
fn spec_file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("ebm-energy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(&path, "{\"type\": \"gaussian\", \"mean\": [0,\n\n  oops]}").unwrap();
    let message = err(path.to_str().unwrap());
    assert!(message.contains("bad.json") && message.contains("line 3"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hand_built_energies_with_nan_are_rejected() {
    let e = Energy::GaussianDiag { mean: vec![0.0, f32::NAN], inv_var: vec![1.0, 1.0] };
    assert!(e.validate().unwrap_err().to_string().contains("mean[1]"));
    assert!(parse_energy(r#"{"type": "banana", "a": 1, "b": 2}"#, "t").is_ok());
}
