//! Analytic energies: gradients against f64 finite differences, GPU against the CPU twin,
//! normalisation, and spec parsing errors.

mod common;

use ebm_gpu::energy::EnergyInternals;
use ebm_gpu::energy::spec::{parse_energy, resolve_energy};
use ebm_gpu::energy::{BoxConstraint, BoxPenalty, Energy, GaussianDiag, gpu::energy_grad_batch};
use ebm_gpu::nn::NetworkInternals;
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
    // Constraints: the random points (std 1.5) fall both inside and outside each set.
    r#"{"type": "box", "lo": [-1, -0.5, 0], "hi": 1, "weight": 30}"#,
    r#"{"type": "box", "lo": -1, "hi": [1, 0.5, 2, 1], "weight": 3, "penalty": "softplus", "sharpness": 4}"#,
    r#"{"type": "linear_inequality", "a": [1, -2, 0.5], "b": 0.3, "weight": 20}"#,
    r#"{"type": "linear_equality", "a": [0.5, 1], "b": -1, "weight": 7}"#,
    r#"{"type": "norm_ball", "radius": 2, "center": [0.5, 0, -1], "weight": 5}"#,
    r#"{"type": "norm_ball", "radius": 1.5, "dim": 4, "weight": 2}"#,
    r#"{"type": "simplex", "dim": 4, "weight": 10}"#,
    // README's example: the right-hand mode of two_modes.
    r#"{"type": "sum", "terms": [{"type": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[-2, 0], [2, 0]], "stds": [[0.5, 0.5], [0.5, 0.5]]}, {"type": "linear_inequality", "a": [-1, 0], "b": 0, "weight": 1000}]}"#,
    r#"{"type": "sum", "weights": [1, 0.5], "terms": [{"type": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[-2, 0], [2, 0]], "stds": [[0.5, 0.5], [0.5, 0.5]]}, {"type": "box", "lo": [0, -3], "hi": [3, 3], "weight": 100, "penalty": "softplus", "sharpness": 10}]}"#,
    // Group averages: 2-D groups (both modes), image groups, a group of a group, a sum with a
    // group term; [`energies`] adds a group around an MLP (the network path).
    GROUP_ROT4,
    r#"{"type": "group", "group": "dihedral:3", "mode": "mean", "energy": {"type": "gaussian", "mean": [1, 0.5], "precision": [[2, 0.6], [0.6, 1]]}}"#,
    r#"{"type": "group", "group": "rotations:7", "energy": "banana"}"#,
    GROUP_IMAGE,
    r#"{"type": "group", "group": "image_rotations", "image": [2, 3, 3], "mode": "mean", "energy": {"type": "banana", "dim": 18, "a": 0.5, "b": 0.3}}"#,
    r#"{"type": "group", "group": "dihedral:2", "energy": {"type": "group", "group": "rotations:3", "energy": "two_modes"}}"#,
    r#"{"type": "sum", "terms": ["ring8", {"type": "group", "group": "rotations:5", "energy": {"type": "gaussian", "mean": [1.5, 0], "std": [0.5, 1]}}]}"#,
    // Sliced experts: beside an unsliced term, all sliced (dimension from the largest index),
    // nested (a slice of a sum with a slice: two specialisations of the WGSL), with `dim`.
    SLICED,
    r#"{"type": "sum", "terms": ["ring8", {"type": "norm_ball", "radius": 1, "dim": 3, "weight": 2}], "slices": [[4, 0], [1, 2, 3]]}"#,
    r#"{"type": "sum", "slices": [[3, 0, 1], [2, 1]], "terms": [
        {"type": "sum", "terms": ["banana", {"type": "simplex", "dim": 3, "weight": 2}], "slices": [[2, 0], null]},
        {"type": "group", "group": "rotations:3", "energy": "two_modes"}]}"#,
    r#"{"type": "sum", "dim": 6, "terms": [{"type": "box", "lo": -1, "hi": 1, "dim": 6, "weight": 3}, "correlated2"], "slices": [null, [5, 2]]}"#,
];

/// Experts on slices of a 4-d point (one in reversed order) beside an unsliced one.
const SLICED: &str = r#"{"type": "sum", "weights": [1, 0.5, 2], "slices": [[0, 2], [3, 1], null], "terms": [
    {"type": "gaussian", "mean": [0.5, -1], "precision": [[2, 0.6], [0.6, 1]]}, "banana", {"type": "double_well", "dim": 4, "barrier": 0.3}]}"#;

/// The quarter turns of an asymmetric two-Gaussian mixture.
const GROUP_ROT4: &str = r#"{"type": "group", "group": "rotations:4", "energy": {"type": "gaussian_mixture", "weights": [0.3, 0.7], "means": [[1.5, 0.5], [-0.5, 2]], "stds": [[0.5, 0.8], [1, 0.4]]}}"#;
/// The 8 symmetries of a 4x4 image around a Gaussian with an asymmetric mean.
const GROUP_IMAGE: &str = r#"{"type": "group", "group": "image_dihedral", "image": [1, 4, 4], "energy": {"type": "gaussian", "mean": [1, 0.5, 0, -1, 2, 0, 0, 0, -0.5, 0, 1, 0, 0, 0.3, 0, 1.5], "std": [1, 0.5, 1, 2, 1, 1, 0.7, 1, 1, 1, 1, 1.5, 1, 1, 0.6, 1]}}"#;

fn energies() -> Vec<(String, Energy)> {
    SPECS
        .iter()
        .map(|s| {
            let s = s.replace(
                r#""placeholder""#,
                r#"{"type": "gaussian", "mean": [1, 0], "precision": [[1, 0.3], [0.3, 2]]}"#,
            );
            let e = resolve_energy(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            (s, e)
        })
        .chain([
            ("dihedral:4 of a random 2-16-16-1 silu MLP".to_string(), mlp_group()),
            ("a sliced random MLP".to_string(), common::sliced_mlp()),
        ])
        .collect()
}

/// The dihedral group of order 8 around a random MLP: the network path ([`EnergyInternals::is_analytic`]
/// false), on the CPU per point, batched (GEMMs) and inlined into the GPU kernels.
fn mlp_group() -> Energy {
    use ebm_gpu::nn::{Activation, Network};
    let Energy::Group { action, mode, .. } =
        resolve_energy(r#"{"type": "group", "group": "dihedral:4", "energy": "ring8"}"#).unwrap()
    else {
        panic!("a group spec built something else")
    };
    let mlp = Network::random_mlp(&[2, 16, 16, 1], Activation::Silu, false, 41).unwrap();
    let energy = Energy::Group { inner: Box::new(Energy::from_network(mlp)), action, mode };
    energy.validate().unwrap();
    energy
}

#[test]
fn gradients_match_f64_finite_differences() {
    for (spec, energy) in energies() {
        let d = energy.dim();
        for x in common::points(11, 20, d).chunks(d) {
            let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let mut g = vec![0.0f64; d];
            energy.energy_grad(&x, &mut g);
            for i in 0..d {
                let h = 1e-6 * (1.0 + x[i].abs());
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                let fd = (energy.energy(&xp) - energy.energy(&xm)) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() <= 1e-5 * (1.0 + fd.abs()),
                    "{spec} at {x:?}, dim {i}: analytic {} vs fd {fd}",
                    g[i]
                );
            }
        }
    }
}

#[test]
fn f32_twin_agrees_with_f64() {
    for (spec, energy) in energies() {
        let d = energy.dim();
        for x in common::points(12, 20, d).chunks(d) {
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
        let xs = common::points(13, 300, d);
        let (e_gpu, g_gpu) = energy_grad_batch(&ctx, &energy, &xs).unwrap();
        for (n, x) in xs.chunks(d).enumerate() {
            let mut g = vec![0.0f32; d];
            let e = energy.energy_grad(x, &mut g);
            assert!((e - e_gpu[n]).abs() <= 1e-5 * (1.0 + e.abs()), "{spec} point {n}: cpu {e} gpu {}", e_gpu[n]);
            for i in 0..d {
                let gg = g_gpu[n * d + i];
                assert!(
                    (g[i] - gg).abs() <= 1e-5 * (1.0 + g[i].abs()),
                    "{spec} point {n} dim {i}: cpu {} gpu {gg}",
                    g[i]
                );
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
        (
            r#"{"type": "gaussian_mixture", "weights": [1, -1], "means": [[0], [1]], "stds": [[1], [1]]}"#,
            &["weights[1]"],
        ),
        (
            r#"{"type": "gaussian_mixture", "weights": [1], "means": [[0], [1]], "stds": [[1], [1]]}"#,
            &["1 weights but 2 means"],
        ),
        (r#"{"type": "double_well", "dim": 0}"#, &["dim"]),
        (r#"{"type": "double_well", "barrier": -1}"#, &["barrier", "positive"]),
        (r#"{"type": "banana", "dim": 1}"#, &["dim", "2"]),
        (r#"{"type": "double_well", "dims": 3}"#, &["unknown field", "dims"]),
        (
            r#"{"type": "sum", "terms": [{"type": "double_well", "dim": 2}, {"type": "double_well", "dim": 3}]}"#,
            &["terms[1]", "dimension"],
        ),
        (r#"{"type": "sum", "terms": [{"type": "double_well", "barrier": 0}]}"#, &["terms[0].barrier"]),
        (
            r#"{"type": "sum", "terms": ["ring8", "banana"], "weights": [1, -1]}"#,
            &["weights[1]", "terms[1]", "must be positive, got -1", "no lower bound"],
        ),
        (r#"{"type": "sum", "terms": ["ring8", "banana"], "weights": [0, 1]}"#, &["weights[0]", "terms[0]", "got 0"]),
        ("/nonexistent/spec.json", &["neither a preset"]),
        (r#"{"type": "box", "lo": [0, 0], "hi": [1, 1, 1], "weight": 1}"#, &["hi", "3 entries", "lo says 2"]),
        (r#"{"type": "box", "lo": 0, "hi": [1, 1], "dim": 3, "weight": 1}"#, &["hi", "2 entries", "dim says 3"]),
        (r#"{"type": "box", "lo": [0, 2], "hi": 1, "weight": 1}"#, &["lo[1]", "above hi[1]", "empty"]),
        (r#"{"type": "box", "lo": "a", "hi": 1, "weight": 1}"#, &["lo", "number or an array"]),
        (r#"{"type": "box", "lo": [0, null], "hi": 1, "weight": 1}"#, &["lo[1]", "must be a number"]),
        (r#"{"type": "box", "lo": [], "hi": 1, "weight": 1}"#, &["lo", "at least one"]),
        (r#"{"type": "box", "lo": 0, "hi": 1, "weight": 0}"#, &["weight", "positive"]),
        (r#"{"type": "box", "lo": 0, "hi": 1, "weight": 1e39}"#, &["weight", "range of f32"]),
        (r#"{"type": "box", "lo": 0, "hi": 1}"#, &["missing field", "weight"]),
        (r#"{"type": "box", "lo": 0, "hi": 1, "weight": 1, "penalty": "cubic"}"#, &["penalty", "cubic", "softplus"]),
        (r#"{"type": "box", "lo": 0, "hi": 1, "weight": 1, "penalty": "softplus"}"#, &["sharpness", "required"]),
        (
            r#"{"type": "box", "lo": 0, "hi": 1, "weight": 1, "penalty": "softplus", "sharpness": -2}"#,
            &["sharpness", "positive"],
        ),
        (r#"{"type": "box", "lo": 0, "hi": 1, "weight": 1, "sharpness": 2}"#, &["sharpness", "only applies"]),
        (r#"{"type": "linear_inequality", "a": [0, 0], "b": 1, "weight": 1}"#, &["a", "all 2 entries are 0"]),
        (r#"{"type": "linear_equality", "a": [], "b": 1, "weight": 1}"#, &["a", "at least one"]),
        (r#"{"type": "linear_equality", "a": [1, 2], "b": 1e40, "weight": 1}"#, &["b", "range of f32"]),
        (r#"{"type": "linear_inequality", "a": [1, 2], "b": 1, "weight": -3}"#, &["weight", "positive"]),
        (r#"{"type": "norm_ball", "radius": 0, "weight": 1}"#, &["radius", "positive"]),
        (r#"{"type": "norm_ball", "radius": 1e20, "weight": 1}"#, &["radius", "squared", "range of f32"]),
        (r#"{"type": "norm_ball", "radius": 1, "center": [0, 0], "dim": 3, "weight": 1}"#, &["center", "dim says 3"]),
        (r#"{"type": "simplex", "dim": 0, "weight": 1}"#, &["dim", "at least 1"]),
        (r#"{"type": "box", "lo": 0, "hi": 1, "dim": 0, "weight": 1}"#, &["dim", "at least 1"]),
        (
            r#"{"type": "norm_ball", "radius": 1, "dim": 1000000000000000, "weight": 1}"#,
            &["dim", "more than the", "memory"],
        ),
        (r#"{"type": "simplex", "weight": 1, "sum": 1}"#, &["unknown field", "sum"]),
        (
            r#"{"type": "sum", "terms": [{"type": "double_well", "dim": 3}, {"type": "simplex", "weight": 1}]}"#,
            &["terms[1]", "dimension 2 differs"],
        ),
        (
            r#"{"type": "sum", "terms": [{"type": "double_well"}, {"type": "box", "lo": 1, "hi": 0, "weight": 1}]}"#,
            &["terms[1].lo[0]", "empty"],
        ),
        // Slices.
        (
            r#"{"type": "sum", "terms": ["ring8", "banana"], "slices": [null, [1, 2]]}"#,
            &["slices[1]", "index 2", "out of range", "dimension 2"],
        ),
        (
            r#"{"type": "sum", "dim": 3, "terms": ["ring8", "banana"], "slices": [[0, 3], [1, 2]]}"#,
            &["slices[0]", "index 3", "out of range"],
        ),
        (
            r#"{"type": "sum", "terms": ["ring8", "banana"], "slices": [[0, 1], [2, 2]]}"#,
            &["slices[1]", "index 2 appears twice"],
        ),
        (r#"{"type": "sum", "terms": ["ring8", "banana"], "slices": [[0, 1], []]}"#, &["slices[1]", "empty"]),
        (
            r#"{"type": "sum", "terms": ["ring8", "banana"], "slices": [[0, 1], [2, 3, 4]]}"#,
            &["slices[1]", "3 indices", "dimension 2"],
        ),
        (r#"{"type": "sum", "terms": ["ring8", "banana"], "slices": [[0, 1]]}"#, &["slices", "1 entries", "2 terms"]),
        (r#"{"type": "sum", "terms": ["ring8"], "slices": [[0, -1]]}"#, &["slices[0][1]", "dimension index", "-1"]),
        (r#"{"type": "sum", "terms": ["ring8"], "slices": [[0, 1.5]]}"#, &["slices[0][1]", "dimension index"]),
        (r#"{"type": "sum", "terms": ["ring8"], "slices": [3]}"#, &["slices[0]", "null or an array"]),
        (
            r#"{"type": "sum", "dim": 3, "terms": ["ring8", "banana"], "slices": [null, [0, 2]]}"#,
            &["terms[0]", "dimension 2 differs", "the sum's dim 3"],
        ),
        (r#"{"type": "sum", "dim": 0, "terms": ["ring8"], "slices": [[0, 1]]}"#, &["dim", "at least 1"]),
        (
            r#"{"type": "sum", "terms": [{"type": "sum", "terms": ["ring8"], "slices": [[0, 0]]}]}"#,
            &["terms[0].slices[0]", "appears twice"],
        ),
        (
            r#"{"type": "sum", "terms": ["ring8"], "slices": [[0, 18446744073709551615]]}"#,
            &["slices[0]", "at most 2^24"],
        ),
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
    let e = Energy::from(GaussianDiag { mean: vec![0.0, f32::NAN], inv_var: vec![1.0, 1.0] });
    assert!(e.validate().unwrap_err().to_string().contains("mean[1]"));
    let b = Energy::from(BoxConstraint {
        lo: vec![0.0, 1.0],
        hi: vec![1.0, 0.5],
        penalty: BoxPenalty::Quadratic,
        weight: 1.0,
    });
    assert!(b.validate().unwrap_err().to_string().contains("lo[1]"));
    let b = Energy::from(BoxConstraint {
        lo: vec![0.0],
        hi: vec![1.0],
        penalty: BoxPenalty::Softplus { sharpness: f32::INFINITY },
        weight: 1.0,
    });
    assert!(b.validate().unwrap_err().to_string().contains("sharpness"));
    assert!(parse_energy(r#"{"type": "banana", "a": 1, "b": 2}"#, "t").is_ok());
}

/// MALA on N(0, I) in 2-d times a stiff quadratic box penalty samples the Gaussian truncated to
/// the box: the mass outside is a boundary layer of width ~ 1/sqrt(2 weight) = 0.007, and the
/// mean matches the truncated Gaussian's (by quadrature) within Monte Carlo error.
#[test]
fn mala_with_a_box_penalty_samples_the_truncated_gaussian() {
    use ebm_gpu::sampler::cpu::CpuSampler;
    use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};
    let (lo, hi) = ([-1.0f64, -0.5], [0.5f64, 1.5]);
    let spec = format!(
        r#"{{"type": "sum", "terms": [{{"type": "gaussian", "mean": [0, 0], "std": [1, 1]}},
           {{"type": "box", "lo": [{}, {}], "hi": [{}, {}], "weight": 10000}}]}}"#,
        lo[0], lo[1], hi[0], hi[1]
    );
    let energy = resolve_energy(&spec).unwrap();
    // Independent chains started inside the box (outside, the penalty's gradient is too steep
    // for any step that mixes inside); the last state of each is one draw.
    let chains = 2000;
    let init: Vec<f32> = (0..chains).flat_map(|_| [-0.25f32, 0.5]).collect();
    let mut sampler = CpuSampler::new(&energy, SamplerConfig::new(SamplerKind::Mala, 0.1, 21), &init).unwrap();
    sampler.run(300).unwrap();
    let states = sampler.state().unwrap();
    let margin = 0.03;
    let inside = states
        .chunks(2)
        .filter(|x| (0..2).all(|i| (x[i] as f64) >= lo[i] - margin && (x[i] as f64) <= hi[i] + margin))
        .count();
    assert!(inside as f64 >= 0.999 * chains as f64, "{inside} of {chains} within the box widened by {margin}");
    for i in 0..2 {
        // Truncated standard normal on [lo, hi]: mean and variance by the midpoint rule.
        let n = 20000;
        let h = (hi[i] - lo[i]) / n as f64;
        let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
        for k in 0..n {
            let t = lo[i] + (k as f64 + 0.5) * h;
            let p = (-0.5 * t * t).exp();
            z += p;
            m1 += p * t;
            m2 += p * t * t;
        }
        let (mean, var) = (m1 / z, m2 / z - (m1 / z).powi(2));
        let est = states.iter().skip(i).step_by(2).map(|&v| v as f64).sum::<f64>() / chains as f64;
        let se = (var / chains as f64).sqrt();
        assert!((est - mean).abs() < 4.0 * se, "dim {i}: sample mean {est} vs truncated Gaussian {mean} (se {se})");
    }
}

/// A sum's terms may name presets (and network files): the same energy as writing them out.
#[test]
fn sum_terms_may_name_presets() {
    let box_spec = r#"{"type": "box", "lo": -1, "hi": 3, "weight": 50}"#;
    let named =
        parse_energy(&format!(r#"{{"type": "sum", "weights": [1, 0.5], "terms": ["ring8", {box_spec}]}}"#), "test")
            .unwrap();
    let (ring, boxed) = (resolve_energy("ring8").unwrap(), parse_energy(box_spec, "test").unwrap());
    let points = rng::initial_states(5, 0, 64, 2, 2.0);
    for x in points.chunks(2) {
        let (mut g, mut g1, mut g2) = ([0.0f64; 2], [0.0f64; 2], [0.0f64; 2]);
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let e = named.energy_grad(&x, &mut g);
        let want = ring.energy_grad(&x, &mut g1) + 0.5 * boxed.energy_grad(&x, &mut g2);
        assert!((e - want).abs() <= 1e-9 * (1.0 + want.abs()), "at {x:?}: {e} vs {want}");
        for i in 0..2 {
            assert!((g[i] - (g1[i] + 0.5 * g2[i])).abs() <= 1e-9 * (1.0 + g[i].abs()), "gradient {i} at {x:?}");
        }
    }
    for (spec, needle) in [
        (r#"{"type": "sum", "terms": ["ring9"]}"#, "terms[0]"),
        (r#"{"type": "sum", "terms": [{"type": "double_well"}, "spec.json"]}"#, "neither a preset"),
        (r#"{"type": "sum", "terms": [{"type": "double_well", "dims": 3}]}"#, "unknown field `dims`"),
        (r#"{"type": "sum", "terms": ["ring8", {"type": "double_well", "dim": 3}]}"#, "dimension"),
        (r#"{"type": "sum", "terms": [7]}"#, "terms[0]"),
    ] {
        let message = err(spec);
        assert!(message.contains(needle), "{spec}: expected {needle:?} in {message}");
    }
}

/// E_G(g.x) = E_G(x) for every element g, in f64 (the groups here have exact f32 matrices:
/// quarter turns, their reflections, pixel permutations), and for rotations:8, whose cos/sin
/// are rounded to f32, to f32 rounding.
#[test]
fn group_energies_are_invariant() {
    let image_dihedral =
        |x: &[f64], k: usize| -> Vec<f64> { (0..16).map(|p| x[ebm_gpu::energy::image_source(p, k, 4)]).collect() };
    let plane = |x: &[f64], t: f64, reflect: bool| -> Vec<f64> {
        let y = if reflect { -x[1] } else { x[1] };
        vec![t.cos() * x[0] - t.sin() * y, t.sin() * x[0] + t.cos() * y]
    };
    let quarter = |k: usize| k as f64 * std::f64::consts::FRAC_PI_2;
    let rot8 = r#"{"type": "group", "group": "dihedral:8", "energy": "two_modes"}"#;
    let mixed = r#"{"type": "group", "group": "dihedral:4", "mode": "mean", "energy": "banana"}"#;
    type Act<'a> = Box<dyn Fn(&[f64], usize) -> Vec<f64> + 'a>;
    let cases: Vec<(&str, usize, Act, f64)> = vec![
        (GROUP_ROT4, 4, Box::new(|x, k| plane(x, quarter(k), false)), 1e-9),
        (mixed, 8, Box::new(|x, k| plane(x, quarter(k % 4), k >= 4)), 1e-9),
        (GROUP_IMAGE, 8, Box::new(image_dihedral), 1e-9),
        (rot8, 16, Box::new(|x, k| plane(x, k as f64 * std::f64::consts::TAU / 8.0, k >= 8)), 1e-5),
    ];
    for (spec, order, act, tol) in cases {
        let energy = resolve_energy(spec).unwrap();
        let d = energy.dim();
        for x in common::points(21, 10, d).chunks(d) {
            let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let e = energy.energy(&x);
            for k in 0..order {
                let ek = energy.energy(&act(&x, k));
                assert!((ek - e).abs() <= tol * (1.0 + e.abs()), "{spec}, element {k} at {x:?}: {ek} vs {e}");
            }
        }
    }
    // README's example: the 8 turns of one Gaussian are ring8, normaliser included.
    let turned = resolve_energy(r#"{"type": "group", "group": "rotations:8", "energy": {"type": "gaussian", "mean": [2, 0], "std": [0.25, 0.25]}}"#).unwrap();
    let ring = resolve_energy("ring8").unwrap();
    for x in common::points(24, 20, 2).chunks(2) {
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        // The Gaussian has no normaliser, the mixture's components do: log(2π 0.25²).
        let (e, want) = (turned.energy(&x) + (std::f64::consts::TAU * 0.0625).ln(), ring.energy(&x));
        assert!((e - want).abs() <= 1e-5 * (1.0 + want.abs()), "at {x:?}: group {e} vs ring8 {want}");
    }
    // An energy that is invariant already is unchanged, in both modes.
    let iso = r#"{"type": "gaussian", "mean": [0, 0], "std": [0.7, 0.7]}"#;
    let plain = resolve_energy(iso).unwrap();
    for mode in ["logmeanexp", "mean"] {
        let grouped = resolve_energy(&format!(
            r#"{{"type": "group", "group": "dihedral:6", "mode": "{mode}", "energy": {iso}}}"#
        ))
        .unwrap();
        for x in common::points(22, 10, 2).chunks(2) {
            let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let (mut g1, mut g2) = ([0.0f64; 2], [0.0f64; 2]);
            let (e1, e2) = (plain.energy_grad(&x, &mut g1), grouped.energy_grad(&x, &mut g2));
            // rotations by 2πk/6 are rounded to f32, so the rotated points' norms differ by ~1e-7.
            assert!((e1 - e2).abs() <= 1e-6 * (1.0 + e1.abs()), "{mode} at {x:?}: {e1} vs {e2}");
            for i in 0..2 {
                assert!((g1[i] - g2[i]).abs() <= 1e-6 * (1.0 + g1[i].abs()), "{mode} gradient {i} at {x:?}");
            }
        }
    }
}

/// The CPU batched path (GEMMs for a network inside the group) gives the per-point results.
#[test]
fn group_batch_matches_per_point() {
    for (spec, energy) in [("mlp group", mlp_group()), (GROUP_IMAGE, resolve_energy(GROUP_IMAGE).unwrap())] {
        let d = energy.dim();
        let xs = common::points(23, 40, d);
        let (mut gs, mut es) = (vec![0.0f32; xs.len()], vec![0.0f32; 40]);
        energy.energy_grad_batch(&xs, &mut gs, &mut es);
        for (n, x) in xs.chunks(d).enumerate() {
            let mut g = vec![0.0f32; d];
            let e = energy.energy_grad(x, &mut g);
            assert!((e - es[n]).abs() <= 1e-5 * (1.0 + e.abs()), "{spec} point {n}: {e} vs batched {}", es[n]);
            for i in 0..d {
                assert!((g[i] - gs[n * d + i]).abs() <= 1e-5 * (1.0 + g[i].abs()), "{spec} point {n} dim {i}");
            }
        }
    }
}

#[test]
fn bad_group_specs_are_rejected_with_the_field_named() {
    let g = |rest: &str| format!(r#"{{"type": "group", {rest}}}"#);
    let cases: Vec<(String, &[&str])> = vec![
        (g(r#""group": "rotations:4", "energy": {"type": "double_well", "dim": 3}"#), &["group", "2-D", "dimension 3"]),
        (g(r#""group": "rotations:0", "energy": "ring8""#), &["group", "1 to 1024"]),
        (g(r#""group": "rotations:x", "energy": "ring8""#), &["group", "whole number"]),
        (g(r#""group": "shears:4", "energy": "ring8""#), &["group", "unknown group", "dihedral:N"]),
        (g(r#""group": "rotations:4", "image": [1, 1, 2], "energy": "ring8""#), &["image", "only applies"]),
        (
            g(r#""group": "image_dihedral", "energy": {"type": "double_well", "dim": 16}"#),
            &["image", "needs the image shape"],
        ),
        (
            g(r#""group": "image_dihedral", "image": [1, 4, 2], "energy": {"type": "double_well", "dim": 8}"#),
            &["image", "square"],
        ),
        (
            g(r#""group": "image_rotations", "image": [2, 4, 4], "energy": {"type": "double_well", "dim": 16}"#),
            &["image", "32 values", "dimension 16"],
        ),
        (
            g(
                r#""group": "image_rotations", "image": [1, 4294967296, 4294967296], "energy": {"type": "double_well", "dim": 16}"#,
            ),
            &["image", "values", "dimension 16"],
        ),
        (
            g(r#""group": "image_rotations", "image": [4, 4], "energy": {"type": "double_well", "dim": 16}"#),
            &["image", "[channels, height, width]"],
        ),
        (g(r#""group": "rotations:4", "mode": "max", "energy": "ring8""#), &["mode", "logmeanexp"]),
        (g(r#""group": "rotations:4", "energy": "ring9""#), &["energy", "ring9"]),
        (
            g(r#""group": "rotations:4", "energy": {"type": "gaussian", "mean": [0, 0], "std": [1, 0]}"#),
            &["energy.std[1]", "positive"],
        ),
        (g(r#""group": "rotations:4""#), &["missing field", "energy"]),
        (
            format!(
                r#"{{"type": "sum", "terms": ["ring8", {}]}}"#,
                g(r#""group": "dihedral:2", "energy": {"type": "double_well", "dim": 3}"#)
            ),
            &["terms[1].group", "dimension 3"],
        ),
        (
            g(
                r#""group": "image_rotations", "image": [3, 9, 9], "energy": "net:tests/fixtures/nn/jem_pool.safetensors""#,
            ),
            &["energy", "layered network"],
        ),
    ];
    for (spec, needles) in cases {
        let message = err(&spec);
        for needle in needles {
            assert!(message.contains(needle), "error for {spec} lacks {needle:?}: {message}");
        }
    }
}

/// MALA on the quarter turns of one off-centre Gaussian: four modes of equal mass (each
/// quadrant's share within 4 standard errors of 1/4). Independent chains, one draw each, all
/// started in the first quadrant's mode: the mass can only spread by mixing between modes, so
/// the modes are close enough (centre (1, 1), std 0.6) for MALA to cross in the run.
#[test]
fn mala_on_a_rotation_group_puts_equal_mass_in_each_mode() {
    use ebm_gpu::sampler::cpu::CpuSampler;
    use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};
    let energy = resolve_energy(r#"{"type": "group", "group": "rotations:4", "energy": {"type": "gaussian", "mean": [1, 1], "std": [0.6, 0.6]}}"#).unwrap();
    let chains = 2000;
    let init: Vec<f32> = (0..chains).flat_map(|_| [1.0f32, 1.0]).collect();
    let mut sampler = CpuSampler::new(&energy, SamplerConfig::new(SamplerKind::Mala, 0.3, 31), &init).unwrap();
    sampler.run(400).unwrap();
    let states = sampler.state().unwrap();
    let mut counts = [0usize; 4];
    for x in states.chunks(2) {
        counts[(x[0] < 0.0) as usize + 2 * (x[1] < 0.0) as usize] += 1;
    }
    let se = (0.25f64 * 0.75 / chains as f64).sqrt();
    for (q, &n) in counts.iter().enumerate() {
        let share = n as f64 / chains as f64;
        assert!((share - 0.25).abs() < 4.0 * se, "quadrant {q}: share {share} (counts {counts:?}, se {se})");
    }
}

/// `levels` groups of 1024 rotations around a 2-d Gaussian.
fn nested_groups(levels: usize) -> Energy {
    let spec = (0..levels).fold(r#"{"type": "gaussian", "mean": [1, 0], "std": [1, 1]}"#.to_string(), |s, _| {
        format!(r#"{{"type": "group", "group": "rotations:1024", "energy": {s}}}"#)
    });
    parse_energy(&spec, "test").unwrap()
}

/// The work plans' cost of an evaluation multiplies out nested groups and saturates instead of
/// wrapping; above the limit it is refused naming the flag.
#[test]
fn nested_groups_multiply_their_cost_without_wrapping() {
    let costs: Vec<u64> = (1..=8).map(|levels| nested_groups(levels).evaluation_cost()).collect();
    // Per level: 1024 x (the inner cost + 19 to move a 2-d point and its gradient).
    assert_eq!(costs[..4], [21_504, 22_039_552, 22_568_520_704, 23_110_165_220_352]);
    assert_eq!(costs[7], u64::MAX, "eight levels saturate instead of wrapping");
    assert_eq!(nested_groups(3).checked_evaluation_cost("--energy").unwrap(), costs[2]);
    let message = nested_groups(4).checked_evaluation_cost("--energy").unwrap_err().to_string();
    assert!(message.contains("--energy") && message.contains("2.3e13") && message.contains("nesting"), "{message}");
}
