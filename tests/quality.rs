//! Sample quality (src/eval/quality.rs, `ebm quality`): the Fréchet distance against closed
//! forms (a set against itself, shifted and scaled copies), the unbiased KID estimator against
//! a direct O(n²) computation, KID near 0 between two halves of one distribution and far from
//! 0 for a shifted one, the eigendecomposition it rests on, nearest neighbours, and the command.

mod common;

use ebm_gpu::eval::quality::{frechet_distance, kid, mmd2_unbiased, nearest, symmetric_eigen};
use ebm_gpu::rng::{self, Stream};

/// n rows of f correlated Gaussian features: x_i = z_i + 0.5 z_{i+1} + 0.1 i.
fn features(n: usize, f: usize, seed: u64) -> Vec<f32> {
    (0..n)
        .flat_map(|r| {
            let z: Vec<f32> =
                (0..=f).map(|i| rng::normal4(seed, r as u32, 0, Stream::Init, i as u32 / 4)[i % 4]).collect();
            (0..f).map(move |i| z[i] + 0.5 * z[i + 1] + 0.1 * i as f32).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn frechet_distance_matches_closed_forms() {
    let (n, f) = (400, 6);
    let a = features(n, f, 1);
    assert!(frechet_distance(&a, &a, f).unwrap() < 1e-6, "a set against itself");
    // Shifted by c: equal covariances, so the distance is |c|².
    let c: Vec<f32> = (0..f).map(|i| 0.3 * i as f32 - 0.5).collect();
    let shifted: Vec<f32> = a.iter().enumerate().map(|(k, v)| v + c[k % f]).collect();
    let want: f64 = c.iter().map(|v| (*v as f64).powi(2)).sum();
    let got = frechet_distance(&a, &shifted, f).unwrap();
    assert!((got - want).abs() < 1e-4 * want.max(1.0), "shift: {got} vs {want}");
    // Scaled by 2: |μ - 2μ|² + Tr(C + 4C - 2 (4C²)^½) = |μ|² + Tr C.
    let scaled: Vec<f32> = a.iter().map(|v| 2.0 * v).collect();
    let mean: Vec<f64> =
        (0..f).map(|i| a.iter().skip(i).step_by(f).map(|&v| v as f64).sum::<f64>() / n as f64).collect();
    let trace: f64 = (0..f)
        .map(|i| a.iter().skip(i).step_by(f).map(|&v| (v as f64 - mean[i]).powi(2)).sum::<f64>() / (n as f64 - 1.0))
        .sum();
    let want = mean.iter().map(|m| m * m).sum::<f64>() + trace;
    let got = frechet_distance(&a, &scaled, f).unwrap();
    assert!((got - want).abs() < 1e-4 * want, "scale: {got} vs {want}");
    assert!(frechet_distance(&a[..f], &a, f).is_err(), "one row has no covariance");
}

/// The unbiased MMD² written out directly, in f64, from the definition.
fn direct_mmd2(a: &[f32], b: &[f32], f: usize) -> f64 {
    let k = |x: &[f32], y: &[f32]| {
        (x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>() / f as f64 + 1.0).powi(3)
    };
    let (ra, rb): (Vec<&[f32]>, Vec<&[f32]>) = (a.chunks(f).collect(), b.chunks(f).collect());
    let (m, n) = (ra.len() as f64, rb.len() as f64);
    let mut xx = 0.0;
    for (i, x) in ra.iter().enumerate() {
        for (j, y) in ra.iter().enumerate() {
            if i != j {
                xx += k(x, y);
            }
        }
    }
    let mut yy = 0.0;
    for (i, x) in rb.iter().enumerate() {
        for (j, y) in rb.iter().enumerate() {
            if i != j {
                yy += k(x, y);
            }
        }
    }
    let xy: f64 = ra.iter().map(|x| rb.iter().map(|y| k(x, y)).sum::<f64>()).sum();
    xx / (m * (m - 1.0)) + yy / (n * (n - 1.0)) - 2.0 * xy / (m * n)
}

#[test]
fn kid_is_the_unbiased_mmd_and_near_zero_for_one_distribution() {
    let f = 3;
    let (a, b) = (features(7, f, 2), features(5, f, 3));
    let (got, want) = (mmd2_unbiased(&a, &b, f), direct_mmd2(&a, &b, f));
    assert!((got - want).abs() < 1e-9 * want.abs().max(1.0), "{got} vs {want}");
    // One subset of every row is the whole-set estimate (the order does not matter).
    let (whole, _) = kid(&a[..5 * f], &b, f, 5, 1, 0).unwrap();
    let want = direct_mmd2(&a[..5 * f], &b, f);
    assert!((whole - want).abs() < 1e-9 * want.abs().max(1.0), "{whole} vs {want}");
    // Two halves of one distribution: within a few standard errors of 0; a shifted set: far.
    let (f, n) = (8, 1200);
    let pool = features(2 * n, f, 4);
    let (h1, h2) = pool.split_at(n * f);
    let (near, se) = kid(h1, h2, f, 300, 20, 5).unwrap();
    assert!(near.abs() < 4.0 * se + 1e-3, "two halves: {near} +- {se}");
    let shifted: Vec<f32> = h2.iter().map(|v| v + 0.5).collect();
    let (far, se_far) = kid(h1, &shifted, f, 300, 20, 5).unwrap();
    assert!(far > 10.0 * se_far && far > 10.0 * near.abs(), "shifted: {far} +- {se_far} vs {near}");
    assert!(
        kid(h1, h2, f, 1, 5, 0).is_err() && kid(h1, h2, f, n + 1, 5, 0).is_err() && kid(h1, h2, f, 10, 0, 0).is_err()
    );
}

#[test]
fn eigendecomposition_and_nearest_neighbours() {
    let f = 9;
    let g = features(f, f, 6);
    // A = G Gᵀ + I: symmetric positive definite.
    let a: Vec<f64> = (0..f * f)
        .map(|k| {
            let (i, j) = (k / f, k % f);
            (0..f).map(|t| g[i * f + t] as f64 * g[j * f + t] as f64).sum::<f64>() + if i == j { 1.0 } else { 0.0 }
        })
        .collect();
    let (values, v) = symmetric_eigen(&a, f);
    for i in 0..f {
        for j in 0..f {
            let back: f64 = (0..f).map(|k| v[i * f + k] * values[k] * v[j * f + k]).sum();
            assert!(
                (back - a[i * f + j]).abs() < 1e-9 * a[i * f + i].abs().max(1.0),
                "({i}, {j}): {back} vs {}",
                a[i * f + j]
            );
        }
    }
    assert!(values.iter().all(|&l| l >= 1.0 - 1e-9), "{values:?}");
    let reference = [0.0f32, 0.0, 3.0, 4.0, -1.0, 1.0];
    let found = nearest(&[2.9, 4.2, 0.1, -0.1], &reference, 2);
    assert_eq!(found[0].0, 1);
    assert_eq!(found[1].0, 0);
    assert!((found[1].1 - 0.02f32.sqrt()).abs() < 1e-6);
}

/// The share of confident rows: softmax (0.9526, 0.0474) of logits (3, 0) passes 0.9 and (1, 0)'s
/// 0.7311 does not; a row at exactly the threshold counts.
#[test]
fn confident_share_counts_rows_whose_top_class_clears_the_threshold() {
    use ebm_gpu::eval::quality::confident_share;
    let logits = [3.0f32, 0.0, 1.0, 0.0, 0.0, 3.0, 0.0, 0.0];
    assert_eq!(confident_share(&logits, 2, 0.9), 0.5);
    assert_eq!(confident_share(&logits, 2, 0.5), 1.0);
    assert_eq!(confident_share(&[0.0, 0.0], 2, 0.5), 1.0);
    assert_eq!(confident_share(&[0.0, 0.0], 2, 0.51), 0.0);
}

/// The caveat on confident samples far from the data, on figures measured with `ebm quality`:
/// colour-MNIST annealed blotches (all called 2 with confidence 0.999; median nearest-image
/// distance 31.25 against the test images' 11.79) get it; the colour DBM's digits (29 % sure,
/// 11.21) and samples that are training images (distance 0) do not.
#[test]
fn confident_samples_far_from_the_data_get_a_caveat() {
    use ebm_gpu::eval::quality::confidence_caveat;
    let c = confidence_caveat(1.0, 0.75, 31.25, 11.79).expect("blotches the classifier is sure of");
    assert!(c.contains("100.0 %") && c.contains("31.25") && c.contains("Fréchet"), "{c}");
    assert!(confidence_caveat(0.293, 0.75, 11.21, 11.79).is_none());
    assert!(confidence_caveat(0.9, 0.75, 0.0, 11.79).is_none(), "near the data");
    assert!(confidence_caveat(0.5, 0.75, 31.25, 11.79).is_none(), "far, but not surer than of real images");
}

#[test]
fn the_command_scores_samples_against_the_test_images() {
    use ebm_gpu::nn::{Architecture, Network};
    let dir = common::temp_dir("quality");
    let net = Network::random(&Architecture::parse("1x28x28/4k5s4p0/swish/flatten/16/swish/10").unwrap(), 3).unwrap();
    let weights = dir.join("classifier.safetensors");
    net.save(&weights).unwrap();
    let mnist = common::mnist_fixture();
    // "Samples": training images on [-1, 1], which the report should find in the training set.
    let set = ebm_gpu::data::load(&mnist, ebm_gpu::data::Split::Train).unwrap();
    let samples: Vec<f32> = set.images[..60 * 784].iter().map(|v| 2.0 * v - 1.0).collect();
    let path = dir.join("samples.npy");
    ebm_gpu::io::npy::write_f32(&path, &samples, &[60, 784]).unwrap();
    let (json, png) = (dir.join("q.json"), dir.join("q.png"));
    let classifier = format!("net:{}", weights.display());
    let base = ["quality", "--samples", common::s(&path), "--data", common::s(&mnist), "--classifier", &classifier];
    let o = common::ebm(
        &[&base[..], &["--kid-subsets", "5", "--json", common::s(&json), "--png", common::s(&png)]].concat(),
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Fréchet distance") && out.contains("not Inception"), "{out}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // Every sample is a training image: its nearest training image is itself.
    assert_eq!(r["nearest_training_distance"]["samples"]["median"].as_f64().unwrap(), 0.0, "{r}");
    assert_eq!(r["warnings"].as_array().map(Vec::len), Some(0), "training images need no caveat: {r}");
    assert!(r["frechet"]["samples"].as_f64().unwrap().is_finite());
    assert_eq!(r["class_counts"]["samples"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum::<u64>(), 60);
    assert!(png.exists());
    // The same images on [0, 1], as `ebm rbm sample` writes them: a warning naming
    // --unit-samples, and with it the training images are found again.
    let unit = dir.join("unit.npy");
    ebm_gpu::io::npy::write_f32(&unit, &set.images[..60 * 784], &[60, 784]).unwrap();
    let unit_args =
        ["quality", "--samples", common::s(&unit), "--data", common::s(&mnist), "--classifier", &classifier];
    let o = common::ebm(&[&unit_args[..], &["--kid-subsets", "2"]].concat());
    assert!(o.status.success() && common::stderr(&o).contains("--unit-samples"), "{}", common::stderr(&o));
    let o =
        common::ebm(&[&unit_args[..], &["--kid-subsets", "2", "--unit-samples", "--json", common::s(&json)]].concat());
    assert!(o.status.success() && !common::stderr(&o).contains("warning"), "{}", common::stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["nearest_training_distance"]["samples"]["median"].as_f64().unwrap(), 0.0, "{r}");
    let narrow = dir.join("narrow.npy");
    ebm_gpu::io::npy::write_f32(&narrow, &samples[..60 * 392], &[60, 392]).unwrap();
    let one = dir.join("one.safetensors");
    Network::random(&Architecture::parse("1x28x28/flatten/1").unwrap(), 1).unwrap().save(&one).unwrap();
    for (args, says) in [
        (
            vec!["quality", "--samples", common::s(&narrow), "--data", common::s(&mnist), "--classifier", &classifier],
            "392",
        ),
        (
            vec![
                "quality",
                "--samples",
                common::s(&path),
                "--data",
                common::s(&mnist),
                "--classifier",
                &format!("net:{}", one.display()),
            ],
            "K > 1",
        ),
    ] {
        let o = common::ebm(&args);
        assert!(!o.status.success() && common::stderr(&o).contains(says), "{args:?}: {}", common::stderr(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
