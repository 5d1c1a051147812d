//! Restoration by Langevin dynamics on the free pixels: inpainting samples the exact Gaussian
//! conditional and denoising the exact Gaussian posterior (up to ULA's known O(h) variance
//! bias), observed pixels never move, and the GPU's energies give the CPU's restoration. The
//! MAP restoration (`--map`) reaches the Gaussian conditional's and posterior's modes.

mod common;

use std::path::Path;

use ebm_gpu::energy::batch::CpuEvaluator;
use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::restore::{Pixel, RestoreConfig, mse, psnr, restore, restore_map};

fn config(steps: u32, h: f32) -> RestoreConfig {
    RestoreConfig {
        steps,
        step_size: h,
        noise_std: (2.0 * h).sqrt(),
        grad_clamp: 0.0,
        lo: -20.0,
        hi: 20.0,
        sigma: 0.0,
        fidelity: 1.0,
        seed: 4,
    }
}

fn mean_var(v: impl Iterator<Item = f32> + Clone) -> (f64, f64, usize) {
    let n = v.clone().count();
    let m = v.clone().map(|x| x as f64).sum::<f64>() / n as f64;
    (m, v.map(|x| (x as f64 - m).powi(2)).sum::<f64>() / n as f64, n)
}

/// ULA's stationary variance on a Gaussian of precision a with step h: 1 / (a (1 - h a / 2)).
fn ula_var(a: f64, h: f64) -> f64 {
    1.0 / (a * (1.0 - h * a / 2.0))
}

#[test]
fn inpainting_samples_the_gaussian_conditional() {
    // Precision [[2, 0.8], [0.8, 1]], mean (0.5, -0.3): x1 | x0 = 1 ~ N(-0.3 - 0.8 (1 - 0.5), 1).
    let energy =
        resolve_energy(r#"{"type": "gaussian", "mean": [0.5, -0.3], "precision": [[2, 0.8], [0.8, 1]]}"#).unwrap();
    let n = 20_000;
    let damaged: Vec<f32> = (0..n).flat_map(|_| [1.0, 0.0]).collect();
    let pixels: Vec<Pixel> = (0..n).flat_map(|_| [Pixel::Observed, Pixel::Missing]).collect();
    let h = 0.05;
    let out = restore(&energy, &damaged, &pixels, &config(300, h), None).unwrap();
    assert!(out.iter().step_by(2).all(|&v| v == 1.0), "observed pixels never move");
    let (m, v, n) = mean_var(out.iter().skip(1).step_by(2).copied());
    let (want_m, want_v) = (-0.7, ula_var(1.0, h as f64));
    let (se_m, se_v) = ((want_v / n as f64).sqrt(), want_v * (2.0 / n as f64).sqrt());
    assert!((m - want_m).abs() < 4.0 * se_m, "conditional mean {m} vs {want_m}");
    assert!((v - want_v).abs() < 4.0 * se_v, "conditional variance {v} vs {want_v}");
}

#[test]
fn denoising_samples_the_gaussian_posterior() {
    // Prior N(0, I), observation y = 1 with noise 0.5: posterior precision 1 + 4 = 5, mean 0.8.
    let energy = resolve_energy(r#"{"type": "gaussian", "mean": [0, 0], "std": [1, 1]}"#).unwrap();
    let n = 10_000;
    let damaged = vec![1.0f32; 2 * n];
    let pixels = vec![Pixel::Noisy; 2 * n];
    let h = 0.05;
    let cfg = RestoreConfig { sigma: 0.5, ..config(300, h) };
    let out = restore(&energy, &damaged, &pixels, &cfg, None).unwrap();
    let (m, v, n) = mean_var(out.iter().copied());
    let want_v = ula_var(5.0, h as f64);
    assert!((m - 0.8).abs() < 4.0 * (want_v / n as f64).sqrt(), "posterior mean {m} vs 0.8");
    assert!((v - want_v).abs() < 4.0 * want_v * (2.0 / n as f64).sqrt(), "posterior variance {v} vs {want_v}");
    // Noisy pixels need a noise level; shapes must agree.
    assert!(restore(&energy, &damaged, &pixels, &config(1, h), None).is_err());
    assert!(restore(&energy, &damaged[..3], &pixels[..3], &config(1, h), None).is_err());
}

#[test]
fn gpu_energies_give_the_cpu_restoration_and_psnr_is_defined() {
    assert!((psnr(mse(&[0.0, 0.0], &[1.0, -1.0], None), 2.0) - 10.0 * 4f64.log10()).abs() < 1e-12);
    assert_eq!(mse(&[0.0, 5.0], &[1.0, 5.0], Some(&[false, true])), 0.0);
    let Some(ctx) = common::gpu() else { return };
    use ebm_gpu::nn::{Architecture, Network};
    let dir = common::temp_dir("restore-gpu");
    // A plain conv net, one with residual blocks (an identity and a 1x1-conv skip), and their
    // weighted sum (a product of experts: one pass per term).
    let mut files = Vec::new();
    for (k, spec) in [
        "1x6x6/3k3s1p1/swish/flatten/8/swish/1",
        "1x6x6/3k3p1/swish/res(3k3p1,swish)/res(4k3s2p1;proj:4k1s2)/flatten/1",
    ]
    .iter()
    .enumerate()
    {
        let path = dir.join(format!("net{k}.safetensors"));
        Network::random(&Architecture::parse(spec).unwrap(), 2).unwrap().save(&path).unwrap();
        files.push(format!("net:{}", path.display()));
    }
    let sum = format!(r#"{{"type": "sum", "weights": [0.6, 1.4], "terms": ["{}", "{}"]}}"#, files[0], files[1]);
    for spec in [&files[0], &files[1], &sum] {
        let energy = resolve_energy(spec).unwrap();
        let n = 9;
        let damaged = ebm_gpu::rng::initial_states(1, 0, n, 36, 0.5);
        let pixels: Vec<Pixel> =
            (0..n * 36).map(|k| if k % 36 < 18 { Pixel::Missing } else { Pixel::Observed }).collect();
        let cfg = RestoreConfig { grad_clamp: 0.03, lo: -1.0, hi: 1.0, ..config(20, 0.5) };
        let cpu = restore(&energy, &damaged, &pixels, &cfg, None).unwrap();
        let gpu = restore(&energy, &damaged, &pixels, &cfg, Some(&ctx)).unwrap();
        assert!(
            common::max_abs_diff(&cpu, &gpu) < 1e-3,
            "{spec}: GPU vs CPU differ by {}",
            common::max_abs_diff(&cpu, &gpu)
        );
        assert!(cpu != damaged, "the missing pixels moved");
    }
    // Other energies restore on the CPU executor; the GPU path says so.
    let gauss = resolve_energy(r#"{"type": "gaussian", "mean": [0, 0], "std": [1, 1]}"#).unwrap();
    let e = restore(&gauss, &[0.0, 0.0], &[Pixel::Observed, Pixel::Missing], &config(1, 0.1), Some(&ctx)).unwrap_err();
    assert!(e.to_string().contains("network energy"), "{e}");
}

/// `ebm restore` on a .npy of images with a tiny network: writes the grid, the restored
/// images and the report (five methods); every kind of bad mask is refused by name.
/// For a Gaussian the MAP is the mean: of x1 | x0 = 1 for inpainting (image 0), of the posterior
/// for denoising (image 1, prior N(0, I), y = 1, noise 0.5: 0.8); observed pixels stay, and a
/// box bounds the mode (image 2: the conditional mode -0.7 clamped to [-0.5, 20]).
#[test]
fn map_restoration_reaches_the_gaussian_modes() {
    let conditional =
        resolve_energy(r#"{"type": "gaussian", "mean": [0.5, -0.3], "precision": [[2, 0.8], [0.8, 1]]}"#).unwrap();
    let damaged = [1.0, 3.0, 1.0, -2.0];
    let pixels = [Pixel::Observed, Pixel::Missing, Pixel::Observed, Pixel::Missing];
    let (x, d) = restore_map(&mut CpuEvaluator(&conditional), 2, &damaged, &pixels, &config(100, 0.1)).unwrap();
    assert_eq!((x[0], x[2]), (1.0, 1.0), "observed pixels never move");
    assert!((x[1] + 0.7).abs() < 1e-3 && (x[3] + 0.7).abs() < 1e-3, "{x:?}: {:?}", d.outcomes);
    let boxed = RestoreConfig { lo: -0.5, ..config(100, 0.1) };
    let (x, _) = restore_map(&mut CpuEvaluator(&conditional), 2, &damaged, &pixels, &boxed).unwrap();
    assert!((x[1] + 0.5).abs() < 1e-6, "{x:?}");
    let prior = resolve_energy(r#"{"type": "gaussian", "mean": [0, 0], "std": [1, 1]}"#).unwrap();
    let cfg = RestoreConfig { sigma: 0.5, ..config(100, 0.1) };
    let (x, _) = restore_map(&mut CpuEvaluator(&prior), 2, &[1.0, 1.0], &[Pixel::Noisy; 2], &cfg).unwrap();
    assert!(x.iter().all(|v| (v - 0.8).abs() < 1e-3), "posterior mode 0.8: {x:?}");
    // Noisy pixels need a noise level; shapes must agree.
    assert!(restore_map(&mut CpuEvaluator(&prior), 2, &[1.0, 1.0], &[Pixel::Noisy; 2], &config(100, 0.1)).is_err());
    assert!(restore_map(&mut CpuEvaluator(&prior), 2, &[1.0; 3], &[Pixel::Noisy; 3], &cfg).is_err());
}

#[test]
fn restore_command_reports_and_refuses_bad_masks() {
    use ebm_gpu::nn::{Architecture, Network};
    let dir = common::temp_dir("restore-cli");
    let net = Network::random(&Architecture::parse("1x6x6/3k3s1p1/swish/flatten/1").unwrap(), 3).unwrap();
    let weights = dir.join("net.safetensors");
    net.save(&weights).unwrap();
    let images: Vec<f32> = (0..20 * 36).map(|k| (k % 36) as f32 / 18.0 - 1.0).collect();
    let data = dir.join("images.npy");
    ebm_gpu::io::npy::write_f32(&data, &images, &[20, 1, 6, 6]).unwrap();
    let energy = format!("net:{}", weights.display());
    let (png, out, json) = (dir.join("r.png"), dir.join("r.npy"), dir.join("r.json"));
    let base = ["restore", "--energy", &energy, "--data", common::s(&data), "--steps", "5", "--backend", "cpu"];
    let o = common::ebm(
        &[
            &base[..],
            &[
                "--mask",
                "box:1,2,3,2",
                "--noise",
                "0.1",
                "--average",
                "2",
                "--png",
                common::s(&png),
                "--out",
                common::s(&out),
                "--json",
                common::s(&json),
            ],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // One .npy is its own training split, and the report says so.
    assert!(stdout.contains("data mean in holes") && stdout.contains("PSNR"), "{stdout}");
    assert!(stdout.contains("nearest data image (leave-one-out)"), "{stdout}");
    let (restored, shape) = ebm_gpu::io::npy::read_f32(&out).unwrap();
    assert_eq!(shape, vec![20, 36]);
    assert!(restored.iter().all(|v| (-1.0..=1.0).contains(v)));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["scores"].as_array().unwrap().len(), 5);
    assert!(png.exists());
    let mask_file = dir.join("mask.csv");
    std::fs::write(&mask_file, "a,b,c\n1,0,1\n0,0,0\n").unwrap();
    for (mask, says) in [
        ("box:4,4,3,3", "inside"),
        ("box:1,2", "X,Y,W,H"),
        ("random:1.5", "probability"),
        ("sideways", "unknown mask"),
        (common::s(&mask_file), "6x6"),
        ("none", "nothing to restore"),
    ] {
        let o = common::ebm(&[&base[..], &["--mask", mask]].concat());
        let err = common::stderr(&o);
        assert!(!o.status.success() && err.contains(says), "--mask {mask}: {err}");
    }
    let o = common::ebm(&[&base[..], &["--map", "--json", common::s(&json)]].concat());
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("MAP by L-BFGS"), "{}", String::from_utf8_lossy(&o.stdout));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["method"].as_str().unwrap().starts_with("MAP"), "{report}");
    for (flag, says) in
        [(&["--map", "--step-size", "1"][..], "--step-size"), (&["--map", "--average", "3"][..], "--average")]
    {
        let o = common::ebm(&[&base[..], flag].concat());
        let err = common::stderr(&o);
        assert!(!o.status.success() && err.contains(says), "{flag:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The baselines of `ebm restore` on 4x4 images whose answers are known (top half missing):
/// each test image's observed bottom half matches one training image exactly, so the nearest
/// training image fills its holes; the background (the training minimum, -1) fills the black
/// holes exactly and the white ones at error 4 per pixel; the mean of 2 neighbours and the
/// training mean give the errors worked out below. A single .npy is its own training split:
/// the nearest-neighbour search leaves each image out of its own.
#[test]
fn restore_baselines_give_the_known_answers() {
    use ebm_gpu::nn::{Architecture, Network};
    let dir = common::temp_dir("restore-baselines");
    let net = Network::random(&Architecture::parse("1x4x4/flatten/1").unwrap(), 3).unwrap();
    let weights = dir.join("net.safetensors");
    net.save(&weights).unwrap();
    let energy = format!("net:{}", weights.display());
    // Top half (8 pixels) then bottom half (8 pixels) of each image.
    let image = |top: f32, bottom: f32| [[top; 8], [bottom; 8]].concat();
    let train = [image(-1.0, 0.5), image(1.0, -0.5), image(0.2, 0.9)].concat();
    let test = [image(1.0, -0.5), image(-1.0, 0.45)].concat();
    std::fs::create_dir(dir.join("set")).unwrap();
    ebm_gpu::io::npy::write_f32(&dir.join("set/train.npy"), &train, &[3, 1, 4, 4]).unwrap();
    ebm_gpu::io::npy::write_f32(&dir.join("set/test.npy"), &test, &[2, 1, 4, 4]).unwrap();
    let json = dir.join("r.json");
    let scores = |data: &Path, extra: &[&str]| -> Vec<(String, f64)> {
        let args = ["restore", "--energy", &energy, "--data", common::s(data), "--steps", "1", "--backend", "cpu"];
        let o = common::ebm(&[&args[..], &["--json", common::s(&json)], extra].concat());
        assert!(o.status.success(), "{}", common::stderr(&o));
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let rows = report["scores"].as_array().unwrap().iter();
        rows.map(|s| (s["method"].as_str().unwrap().to_string(), s["mse_restored_pixels"].as_f64().unwrap())).collect()
    };
    let close = |got: &(String, f64), name: &str, want: f64| {
        assert!(got.0 == name && (got.1 - want).abs() < 1e-6, "{got:?}: want {name} {want}");
    };
    let s = scores(&dir.join("set"), &[]);
    let m = (-1.0f64 + 1.0 + 0.2) / 3.0;
    close(&s[1], "training mean in holes", ((1.0 - m).powi(2) + (-1.0 - m).powi(2)) / 2.0);
    close(&s[2], "background -1 in holes", (4.0 + 0.0) / 2.0);
    close(&s[3], "nearest training image", 0.0);
    // 2 neighbours: image 0 gets training images 1 and 0 (holes 0, error 1), image 1 gets 0 and
    // 2 (holes -0.4, error 0.36).
    let s = scores(&dir.join("set"), &["--neighbours", "2"]);
    close(&s[3], "mean of 2 nearest training images", (1.0 + 0.36) / 2.0);
    // Restoring training images: each left out of its own search (image 0 finds training
    // image 2, holes 0.2, error 1.44; image 1 finds image 0, holes -1, error 4).
    let s = scores(&dir.join("set"), &["--split", "train", "--limit", "2"]);
    close(&s[3], "nearest training image (leave-one-out)", (1.44 + 4.0) / 2.0);
    // One .npy: image 1 finds its copy (row 3), not itself; image 0 finds row 2 (holes 0.2).
    let one = dir.join("one.npy");
    let rows = [image(-1.0, 0.5), image(1.0, -0.5), image(0.2, 0.9), image(1.0, -0.5)].concat();
    ebm_gpu::io::npy::write_f32(&one, &rows, &[4, 1, 4, 4]).unwrap();
    let s = scores(&one, &["--limit", "2"]);
    close(&s[3], "nearest data image (leave-one-out)", (1.2f64.powi(2) + 0.0) / 2.0);
    // So is a .csv of rows.
    let csv = dir.join("one.csv");
    let lines: Vec<String> =
        rows.chunks(16).map(|r| r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")).collect();
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let s = scores(&csv, &["--limit", "2"]);
    close(&s[3], "nearest data image (leave-one-out)", (1.2f64.powi(2) + 0.0) / 2.0);
    let o = common::ebm(&["restore", "--energy", &energy, "--data", common::s(&one), "--neighbours", "4"]);
    let e = common::stderr(&o);
    assert!(!o.status.success() && e.contains("--neighbours 4") && e.contains("3 data images"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
