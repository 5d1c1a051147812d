//! OOD rank statistics against hand-made score lists with known answers, and against a
//! brute-force pair count; the input-complexity measure orders simple below busy images.

use ebm_gpu::eval::ood::{aupr, auroc, fpr_at_tpr, percentile, png_bits};
use ebm_gpu::nn::NetworkInternals;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn hand_made_lists_give_known_answers() {
    let (low, high) = ([1.0f32, 2.0, 3.0, 4.0], [5.0f32, 6.0, 7.0, 8.0]);
    assert!(close(auroc(&low, &high).unwrap(), 1.0));
    assert!(close(aupr(&low, &high).unwrap(), 1.0));
    assert!(close(fpr_at_tpr(&low, &high, 0.95).unwrap(), 0.0));
    // Reversed: every OOD input looks more typical than every in-distribution one.
    assert!(close(auroc(&high, &low).unwrap(), 0.0));
    let ap = (1.0 / 5.0 + 2.0 / 6.0 + 3.0 / 7.0 + 4.0 / 8.0) / 4.0;
    assert!(close(aupr(&high, &low).unwrap(), ap), "{}", aupr(&high, &low).unwrap());
    assert!(close(fpr_at_tpr(&high, &low, 0.95).unwrap(), 1.0));
    // Ties count half: out 2 beats 1 and ties 2; out 3 beats 1, 2 and ties 3; out 4 beats all.
    assert!(close(auroc(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0]).unwrap(), 7.0 / 9.0));
    // All equal: chance, and precision is the OOD share.
    assert!(close(auroc(&[0.5; 3], &[0.5; 5]).unwrap(), 0.5));
    assert!(close(aupr(&[0.5; 3], &[0.5; 5]).unwrap(), 5.0 / 8.0));
    // The threshold accepting 95 % of 0..=100 is 95: OOD scores 50 and 95 pass it.
    let ind: Vec<f32> = (0..=100).map(|v| v as f32).collect();
    assert!(close(fpr_at_tpr(&ind, &[50.0, 95.0, 96.0, 200.0], 0.95).unwrap(), 0.5));
    assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 50.0).unwrap(), 2.5);
    assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 100.0).unwrap(), 4.0);
}

#[test]
fn auroc_equals_the_pair_count() {
    let a: Vec<f32> = (0..300).map(|i| ((i * 37 % 101) as f32 / 10.0).floor()).collect();
    let b: Vec<f32> = (0..200).map(|i| ((i * 53 % 113) as f32 / 9.0).floor()).collect();
    let mut wins = 0.0;
    for &x in &a {
        for &y in &b {
            wins += if y > x {
                1.0
            } else if y == x {
                0.5
            } else {
                0.0
            };
        }
    }
    let want = wins / (a.len() * b.len()) as f64;
    assert!(close(auroc(&a, &b).unwrap(), want), "{} vs {want}", auroc(&a, &b).unwrap());
}

#[test]
fn bad_scores_are_refused_and_complexity_orders_images() {
    assert!(auroc(&[], &[1.0]).is_err());
    let e = auroc(&[1.0, f32::NAN], &[1.0]).unwrap_err().to_string();
    assert!(e.contains("score 1"), "{e}");
    assert!(percentile(&[1.0], 101.0).is_err());
    let flat = vec![0.0f32; 28 * 28];
    let busy: Vec<f32> = (0..28 * 28).map(|i| ((i * 7919 % 257) as f32 / 128.0) - 1.0).collect();
    let (f, b) = (png_bits(&flat, 28, 28, -1.0, 1.0).unwrap(), png_bits(&busy, 28, 28, -1.0, 1.0).unwrap());
    assert!(f < b, "a flat image compresses better: {f} vs {b} bits");
    assert!(png_bits(&flat, 27, 28, -1.0, 1.0).is_err());
}

mod common;

/// `ebm ood` end to end on small files: a network that prefers dark images tells dark inputs
/// from bright ones (AUROC 1), from uniform noise, reports every set in JSON and draws the
/// histograms; the same numbers on both executors; mismatched inputs are refused by name.
#[test]
fn ood_command_scores_sets_and_refuses_bad_input() {
    use ebm_gpu::nn::{Architecture, Network};
    let dir = common::temp_dir("ood-cli");
    // E(x) = sum of pixels (+ a small conv term so the network has a convolution): dark = typical.
    let arch = Architecture::parse("1x6x6/2k3s1p1/tanh/flatten/1").unwrap();
    let mut net = Network::random(&arch, 1).unwrap();
    let mut params = net.pack_params();
    let n = params.len();
    params[n - 73..n - 1].iter_mut().for_each(|w| *w = 1.0); // the Linear's weights see tanh(conv)
    net.set_params(&params).unwrap();
    let weights = dir.join("net.safetensors");
    net.save(&weights).unwrap();
    let set = |name: &str, base: f32| {
        let rows: Vec<f32> =
            (0..200 * 36).map(|k| (base + 0.2 * (((k * 7919) % 97) as f32 / 97.0 - 0.5)).clamp(-1.0, 1.0)).collect();
        let path = dir.join(name);
        ebm_gpu::io::npy::write_f32(&path, &rows, &[200, 1, 6, 6]).unwrap();
        path
    };
    let (dark, bright) = (set("dark.npy", -0.8), set("bright.npy", 0.8));
    let energy = format!("net:{}", weights.display());
    let mut reports = Vec::new();
    let backends: &[&str] = if common::gpu().is_some() { &["cpu", "gpu"] } else { &["cpu"] };
    for backend in backends {
        let (json, png) = (dir.join(format!("{backend}.json")), dir.join(format!("{backend}.png")));
        let o = common::ebm(&[
            "ood",
            "--energy",
            &energy,
            "--data",
            common::s(&dark),
            "--ood",
            common::s(&bright),
            "--ood",
            "noise",
            "--json",
            common::s(&json),
            "--png",
            common::s(&png),
            "--complexity",
            "0.001",
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        assert!(png.exists());
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let sets = report["sets"].as_array().unwrap();
        assert_eq!(sets.len(), 3);
        assert_eq!(sets[1]["auroc"].as_f64().unwrap(), 1.0, "bright inputs all score higher: {report}");
        assert_eq!(sets[1]["fpr_at_95_tpr"].as_f64().unwrap(), 0.0);
        assert!(sets[2]["auroc"].as_f64().unwrap() > 0.9, "noise is brighter than dark images on average: {report}");
        assert!((sets[0]["above_threshold"].as_f64().unwrap() - 0.05).abs() < 0.011, "{report}");
        assert!(sets[1]["complexity_corrected"].as_array().is_some());
        reports.push(sets[1]["auroc"].as_f64().unwrap());
    }
    // Rows of the wrong width are refused, naming the set.
    let narrow = dir.join("narrow.npy");
    ebm_gpu::io::npy::write_f32(&narrow, &[0.0; 50], &[2, 25]).unwrap();
    let o = common::ebm(&[
        "ood",
        "--energy",
        &energy,
        "--data",
        common::s(&dark),
        "--ood",
        common::s(&narrow),
        "--backend",
        "cpu",
    ]);
    let err = common::stderr(&o);
    assert!(!o.status.success() && err.contains("narrow.npy") && err.contains("25 values"), "{err}");
    let o = common::ebm(&[
        "ood",
        "--energy",
        "ring8",
        "--in",
        common::s(&dark),
        "--out",
        "noise",
        "--complexity",
        "--backend",
        "cpu",
    ]);
    assert!(!o.status.success() && common::stderr(&o).contains("--complexity"), "{}", common::stderr(&o));
    // The former names (--out names an output file in every other command) still run, with a
    // warning; a missing set is refused naming its flag.
    let former = ["ood", "--energy", &energy, "--in", common::s(&dark), "--out", "noise", "--backend", "cpu"];
    let o = common::ebm(&former);
    assert!(
        o.status.success() && common::stderr(&o).contains("now spelled --data and --ood"),
        "{}",
        common::stderr(&o)
    );
    for (args, says) in [
        (&["ood", "--energy", &energy, "--ood", "noise"][..], "--data SET is required"),
        (&["ood", "--energy", &energy, "--data", common::s(&dark)], "--ood SET is required"),
    ] {
        let o = common::ebm(args);
        assert!(!o.status.success() && common::stderr(&o).contains(says), "{args:?}: {}", common::stderr(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn calibration_error_of_hand_made_logits() {
    use ebm_gpu::eval::classify::report;
    // softmax(ln 3, 0) = (0.75, 0.25): confidence 0.75 in class 0 for all four points.
    let logits: Vec<f32> = (0..4).flat_map(|_| [3f32.ln(), 0.0]).collect();
    let calibrated = report(&logits, 2, &[0, 0, 0, 1], 10).unwrap();
    assert!((calibrated.accuracy - 0.75).abs() < 1e-12 && calibrated.ece.abs() < 1e-6, "{calibrated:?}");
    let wrong = report(&logits, 2, &[1, 1, 1, 1], 10).unwrap();
    assert!((wrong.accuracy - 0.0).abs() < 1e-12 && (wrong.ece - 0.75).abs() < 1e-6, "{wrong:?}");
    assert!((wrong.nll - (4f64).ln()).abs() < 1e-6, "NLL of probability 1/4: {}", wrong.nll);
    assert!(report(&logits, 2, &[0, 0, 2, 0], 10).is_err());
    assert!(report(&logits, 2, &[0, 0, 0], 10).is_err());
}
