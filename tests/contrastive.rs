//! Contrastive energies (`--loss infonce`): the loss and its gradients against f64 finite
//! differences, the views, retrieval on a synthetic pair task against the Bayes-optimal
//! answer, the linear probe on separable data, and `ebm train --loss infonce` / `ebm probe`
//! end to end with their refusals.

mod common;

use common::net;
use ebm_gpu::eval::contrastive::{self, Labelled, ProbeSettings};
use ebm_gpu::nn::{NetworkInternals, Shape};
use ebm_gpu::train::contrastive::{Augment, info_nce, step_cpu};
use ebm_gpu::train::{Loss, TrainConfig, TrainState, Trainer, cpu::CpuTrainer};

/// The analytic gradient of the symmetric InfoNCE loss equals central differences of the
/// loss in f64, and the f32 loss and gradient agree with the f64 ones.
#[test]
fn info_nce_gradient_matches_f64_finite_differences() {
    let (b, k, tau) = (5, 4, 0.3);
    let fa: Vec<f64> = common::randn(1, b * k).iter().map(|&v| v as f64).collect();
    let fb: Vec<f64> = common::randn(2, b * k).iter().map(|&v| v as f64 * 0.5 + 0.1).collect();
    let exact = info_nce(&fa, &fb, k, tau);
    let h = 1e-6;
    for (side, grad) in [(0, &exact.grad_a), (1, &exact.grad_b)] {
        for i in 0..b * k {
            let at = |delta: f64| {
                let (mut a, mut bb) = (fa.clone(), fb.clone());
                if side == 0 {
                    a[i] += delta
                } else {
                    bb[i] += delta
                }
                info_nce(&a, &bb, k, tau).loss
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 1e-7 * (1.0 + numeric.abs()),
                "side {side} [{i}]: {numeric} vs {}",
                grad[i]
            );
        }
    }
    let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    let single = info_nce(&to32(&fa), &to32(&fb), k, tau as f32);
    assert!((single.loss as f64 - exact.loss).abs() < 1e-5, "{} vs {}", single.loss, exact.loss);
    for (s, e) in single.grad_a.iter().zip(&exact.grad_a).chain(single.grad_b.iter().zip(&exact.grad_b)) {
        assert!((*s as f64 - e).abs() < 1e-5, "{s} vs {e}");
    }
    // The known values: features that cannot tell points apart give ln B; a batch whose pairs
    // are far more alike than any other pair drives the loss to 0.
    let same = vec![1.0f64; b * k];
    assert!((info_nce(&same, &same, k, tau).loss - (b as f64).ln()).abs() < 1e-12);
    let one_hot: Vec<f64> = (0..4 * 4).map(|i| (i / 4 == i % 4) as u8 as f64).collect();
    let sharp = info_nce(&one_hot, &one_hot, 4, 0.01);
    assert!(sharp.loss < 1e-30, "{}", sharp.loss);
    assert!((sharp.e_pos + 100.0).abs() < 1e-9 && sharp.e_neg.abs() < 1e-12, "{} {}", sharp.e_pos, sharp.e_neg);
}

/// A training step's parameter gradient (forward and backward passes over blocks, the loss on
/// the whole batch) equals central differences of the loss with the features computed in f64
/// by the layers' definitions.
#[test]
fn step_gradient_matches_finite_differences_through_the_network() {
    let mut network = net("3/8/tanh/8/silu/4/head:lse", 5);
    let (b, d) = (70, 3); // more than one block of 64 rows per view
    let a = common::randn(7, b * d);
    let bv: Vec<f32> = common::randn(8, b * d).iter().zip(&a).map(|(n, x)| x + 0.3 * n).collect();
    let loss = Loss::InfoNce { temperature: 0.5 };
    let step = step_cpu(loss, &network.view(), &a, &bv);
    let loss64 = |network: &ebm_gpu::nn::Network| {
        let v = network.view();
        let feats = |x: &[f32]| -> Vec<f64> {
            x.chunks_exact(d).flat_map(|p| v.outputs_ref(&p.iter().map(|&q| q as f64).collect::<Vec<_>>())).collect()
        };
        info_nce(&feats(&a), &feats(&bv), 4, 0.5).loss
    };
    assert!((loss64(&network) - step.loss as f64).abs() < 1e-5, "{} vs {}", loss64(&network), step.loss);
    let params = network.pack_params();
    let h = 1e-3f32;
    for i in (0..params.len()).step_by(7) {
        let mut at = |delta: f32| {
            let mut p = params.clone();
            p[i] += delta;
            network.set_params(&p).unwrap();
            (loss64(&network), p[i] as f64)
        };
        let ((up, x_up), (down, x_down)) = (at(h), at(-h));
        let numeric = (up - down) / (x_up - x_down);
        let g = step.grad[i] as f64;
        assert!((numeric - g).abs() < 2e-4 * (1.0 + numeric.abs()), "parameter {i}: {numeric} vs {g}");
    }
}

/// A view moves the image by at most the shift (the moved-in pixels copy the edge) and adds
/// noise of the stated size; spellings round-trip and bad ones are refused.
#[test]
fn views_shift_within_bounds_and_add_the_stated_noise() {
    let shape = Shape::Image { c: 1, h: 9, w: 9 };
    let mut x = vec![-1.0f32; 81];
    x[4 * 9 + 4] = 1.0;
    let shift = Augment { shift: 2, noise: 0.0, ..Augment::default() };
    let mut seen = std::collections::HashSet::new();
    for j in 0..200 {
        let mut out = vec![0.0; 81];
        shift.view(shape, 3, (j, 0, 0), &x, &mut out);
        let bright: Vec<usize> = (0..81).filter(|&i| out[i] == 1.0).collect();
        assert_eq!(bright.len(), 1, "one bright pixel after a shift");
        let (r, c) = (bright[0] / 9, bright[0] % 9);
        assert!(r.abs_diff(4) <= 2 && c.abs_diff(4) <= 2, "moved to ({r}, {c})");
        seen.insert((r, c));
    }
    assert_eq!(seen.len(), 25, "every shift in -2..=2 x -2..=2 is drawn");
    // A turn and a zoom about the centre keep a centred disc centred and about its size; the
    // shift moves its centroid by at most the shift.
    let disc: Vec<f32> = (0..81usize)
        .map(|i| if (i / 9).abs_diff(4).pow(2) + (i % 9).abs_diff(4).pow(2) <= 4 { 1.0 } else { 0.0 })
        .collect();
    let mass: f32 = disc.iter().sum();
    for (shift, tolerance) in [(0, 0.2), (2, 2.2)] {
        let warp = Augment { shift, rotate: 30.0, zoom: 0.2, noise: 0.0 };
        for j in 0..50 {
            let mut out = vec![0.0; 81];
            warp.view(shape, 5, (j, 0, 1), &disc, &mut out);
            let total: f32 = out.iter().sum();
            let centroid = |axis: fn(usize) -> usize| (0..81).map(|i| out[i] * axis(i) as f32).sum::<f32>() / total;
            let (cy, cx) = (centroid(|i| i / 9), centroid(|i| i % 9));
            assert!((cy - 4.0).abs() <= tolerance && (cx - 4.0).abs() <= tolerance, "centroid ({cy}, {cx})");
            assert!(total > 0.6 * mass && total < 1.5 * mass, "mass {total} of {mass}");
        }
    }
    let noisy = Augment { shift: 0, noise: 0.5, ..Augment::default() };
    let flat = vec![0.0f32; 4000];
    let mut out = vec![0.0; 4000];
    noisy.view(Shape::Flat(4000), 9, (1, 2, 1), &flat, &mut out);
    let std = (out.iter().map(|v| v * v).sum::<f32>() / 4000.0).sqrt();
    assert!((std - 0.5).abs() < 0.03, "noise std {std}");
    for text in
        ["shift:2,noise:0.1", "noise:0.25", "shift:3", "none", "shift:2,rotate:15,zoom:0.15,noise:0.1", "rotate:10"]
    {
        assert_eq!(Augment::parse(text).unwrap().to_string(), text);
    }
    for bad in ["shift:-1", "noise:-0.1", "noise:nan", "blur:2", "shift", ""] {
        assert!(Augment::parse(bad).is_err(), "{bad:?} accepted");
    }
    assert!(
        Augment { shift: 2, noise: 0.0, ..Augment::default() }.check(Shape::Flat(8), false).is_err(),
        "a shift of flat points"
    );
    assert!(
        Augment { shift: 9, noise: 0.0, ..Augment::default() }.check(shape, false).is_err(),
        "a shift as large as the image"
    );
    assert!(Augment::default().check(shape, false).is_err(), "identical views");
    assert!(Augment::default().check(shape, true).is_ok(), "given pairs need no drawn difference");
    assert!(Augment::parse("rotate:200").unwrap().check(shape, false).is_err(), "a turn past 180 degrees");
    assert!(Augment::parse("zoom:1").unwrap().check(shape, false).is_err(), "a zoom to nothing");
    assert!(Augment::parse("rotate:10").unwrap().check(Shape::Flat(8), false).is_err(), "a turn of flat points");
}

/// The synthetic pair task: x ~ N(0, I_8), views x + 0.35 ε. The Bayes-optimal retrieval
/// ranks keys b_j for query a by |a − b_j/(1 + σ²)|; after training, the learned pair energy
/// retrieves at least 90 % as often as that optimum on held-out points.
#[test]
fn infonce_retrieval_approaches_the_bayes_optimal_answer() {
    let (d, rows, sigma) = (8, 4096, 0.35f32);
    let data = common::randn(11, rows * d);
    let mut cfg = TrainConfig::for_data(Loss::InfoNce { temperature: 0.1 }, &data, d, 4).unwrap();
    cfg.augment = Augment { shift: 0, noise: sigma, ..Augment::default() };
    cfg.batch = 256;
    cfg.lr = 3e-3;
    let state = TrainState::new(net("8/64/silu/64/silu/16/head:lse", 4), &cfg).unwrap();
    let mut trainer = CpuTrainer::new(&cfg, state, &data).unwrap();
    let metrics = trainer.run(400).unwrap();
    let (first, last) = (metrics[0], metrics[metrics.len() - 1]);
    assert!(
        last.loss < 0.7 * first.loss && last.gap() > 0.0,
        "loss {} -> {}, gap {}",
        first.loss,
        last.loss,
        last.gap()
    );
    let network = trainer.state().unwrap().net;

    // Held-out points and their views, by another seed.
    let n = 256;
    let held = common::randn(12, n * d);
    let (mut va, mut vb) = (vec![0.0; n * d], vec![0.0; n * d]);
    for (i, x) in held.chunks_exact(d).enumerate() {
        cfg.augment.view(Shape::Flat(d), 99, (i as u32, 0, 0), x, &mut va[i * d..(i + 1) * d]);
        cfg.augment.view(Shape::Flat(d), 99, (i as u32, 0, 1), x, &mut vb[i * d..(i + 1) * d]);
    }
    let v = network.view();
    let learned = contrastive::retrieval(&v.outputs_batch(&va), &v.outputs_batch(&vb), 16).unwrap();
    let shrink = 1.0 / (1.0 + sigma * sigma);
    let oracle_hits = (0..n)
        .filter(|&i| {
            let dist = |j: usize| (0..d).map(|m| (va[i * d + m] - shrink * vb[j * d + m]).powi(2)).sum::<f32>();
            (0..n).filter(|&j| j != i).all(|j| dist(j) > dist(i))
        })
        .count();
    let oracle = oracle_hits as f64 / n as f64;
    assert!(oracle > 0.5 && oracle < 0.99, "the task should be neither trivial nor hopeless: oracle {oracle}");
    eprintln!("learned top-1 {} top-5 {}, the optimum's top-1 {oracle}", learned.top1, learned.top5);
    assert!(learned.top1 >= 0.9 * oracle, "learned top-1 {} vs the optimum {oracle}", learned.top1);
    assert!(learned.top5 >= learned.top1);
}

/// The probe separates linearly separable classes and does no better than chance on labels
/// that are independent of the features.
#[test]
fn linear_probe_fits_separable_classes_and_not_noise() {
    let (dim, n) = (5, 600);
    let x = common::randn(21, 2 * n * dim);
    let class_of = |row: &[f32]| (row[0] + 0.5 * row[1] > 0.0) as u32 + 2 * (row[2] > 0.3) as u32;
    let labels: Vec<u32> = x.chunks_exact(dim).map(class_of).collect();
    let (train, test) = x.split_at(n * dim);
    let (ltrain, ltest) = labels.split_at(n);
    let settings = ProbeSettings { epochs: 200, lr: 1e-2, ..ProbeSettings::default() };
    let fit = contrastive::linear_probe(
        Labelled { x: train, labels: ltrain },
        Labelled { x: test, labels: ltest },
        dim,
        4,
        settings,
    )
    .unwrap();
    assert!(fit.test_accuracy > 0.93, "separable classes: test accuracy {}", fit.test_accuracy);
    let noise: Vec<u32> = common::randn(22, 2 * n).iter().map(|&v| (v > 0.0) as u32).collect();
    let fit = contrastive::linear_probe(
        Labelled { x: train, labels: &noise[..n] },
        Labelled { x: test, labels: &noise[n..] },
        dim,
        2,
        settings,
    )
    .unwrap();
    assert!((fit.test_accuracy - 0.5).abs() < 0.08, "independent labels: test accuracy {}", fit.test_accuracy);
    let bad = contrastive::linear_probe(
        Labelled { x: train, labels: ltrain },
        Labelled { x: test, labels: ltest },
        dim,
        3,
        settings,
    );
    assert!(bad.unwrap_err().to_string().contains("label 3"), "a label outside the classes");
}

/// `ebm train --loss infonce` on the MNIST fixture, batch 32, CPU executor, into `run`.
fn train_infonce(model: &str, steps: &str, run: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let data = common::mnist_fixture();
    let mut args = vec!["train", "--data", common::s(&data), "--model", model, "--loss", "infonce", "--batch", "32"];
    args.extend_from_slice(&["--steps", steps, "--run-dir", common::s(run), "--backend", "cpu"]);
    args.extend_from_slice(extra);
    common::ebm(&args)
}

/// `ebm train --loss infonce` on the MNIST fixture, resumed bit for bit, then `ebm probe` on
/// its checkpoint; and the refusals naming the flag.
#[test]
fn train_infonce_and_probe_end_to_end() {
    let dir = common::temp_dir("infonce-cli");
    let data = common::mnist_fixture();
    let run = dir.join("run");
    let model = "1x28x28/8k5s2p2/silu/16k3s2p1/silu/flatten/16";
    let train = |steps: &str, extra: &[&str]| train_infonce(model, steps, &run, extra);
    let o = train("6", &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("with infonce:0.1 loss"), "{}", common::stderr(&o));
    let o = train("12", &["--resume"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let state =
        |dir: &std::path::Path| ebm_gpu::train::checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap().0;
    let resumed = state(&run);
    let straight = dir.join("straight");
    let o = train_infonce(model, "12", &straight, &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let straight = state(&straight);
    assert_eq!(resumed.step, 12);
    let same =
        resumed.net.pack_params() == straight.net.pack_params() && resumed.m == straight.m && resumed.v == straight.v;
    assert!(same, "a resumed run's parameters and optimizer moments equal an uninterrupted run's bit for bit");

    let ckpt = format!("net:{}", common::s(&run.join("checkpoint.safetensors")));
    for args in [vec!["sample", "--energy", &ckpt], vec!["restore", "--energy", &ckpt, "--data", common::s(&data)]] {
        let o = common::ebm(&args);
        assert!(
            !o.status.success() && common::stderr(&o).contains("scores pairs of points"),
            "{args:?}: {}",
            common::stderr(&o)
        );
    }
    let o = common::ebm(&["eval", "--run-dir", common::s(&run)]);
    assert!(!o.status.success() && common::stderr(&o).contains("ebm probe --energy net:"), "{}", common::stderr(&o));
    let energy = format!("net:{}", common::s(&run.join("checkpoint.safetensors")));
    let json = dir.join("probe.json");
    let o = common::ebm(&[
        "probe",
        "--energy",
        &energy,
        "--data",
        common::s(&data),
        "--queries",
        "50",
        "--epochs",
        "2",
        "--json",
        common::s(&json),
        "--backend",
        "cpu",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", common::stderr(&o));
    // The views the checkpoint was trained on: `ebm train`'s default for images.
    let trained_on = Augment::default_for(Shape::Image { c: 1, h: 28, w: 28 }).to_string();
    assert!(out.contains(&format!("(--augment {trained_on})")) && out.contains("random weights"), "{out}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["retrieval"]["network"]["queries"], 50);
    assert_eq!(report["probe_train_images"], 1000);
    for part in ["network", "random_network", "raw_pixels"] {
        let acc = report["probe"][part]["test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{part}: {acc}");
    }

    // Pair energies of two files of views: a and a slightly noisier copy.
    let a = common::randn(40, 30 * 784).iter().map(|v| v.clamp(-1.0, 1.0)).collect::<Vec<f32>>();
    let b: Vec<f32> = a.iter().zip(common::randn(41, 30 * 784)).map(|(x, n)| x + 0.05 * n).collect();
    let (pa, pb, pout) = (dir.join("a.npy"), dir.join("b.npy"), dir.join("pairs.csv"));
    ebm_gpu::io::write_samples(&pa, &a, 30, 784).unwrap();
    ebm_gpu::io::write_samples(&pb, &b, 30, 784).unwrap();
    let score = |extra: &[&str]| {
        let mut args = vec!["score", "--energy", &energy, "--points", common::s(&pa), "--backend", "cpu"];
        args.extend_from_slice(extra);
        common::ebm(&args)
    };
    let o = score(&["--pairs", common::s(&pb), "--out", common::s(&pout)]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(out.contains("30 pairs, E(a, b) = -cos(f(a), f(b))/0.1") && out.contains("top-1"), "{out}");
    let csv = std::fs::read_to_string(&pout).unwrap();
    assert_eq!(csv.lines().count(), 31, "a header and 30 pairs");
    for line in csv.lines().skip(1) {
        let (e, c) = line.split_once(',').unwrap();
        let (e, c): (f32, f32) = (e.parse().unwrap(), c.parse().unwrap());
        assert!((e + c / 0.1).abs() < 1e-4 && (-1.0..=1.0).contains(&c), "{line}");
    }
    let o = score(&["--pairs", common::s(&pa), "--temperature", "0.5", "--log-z", "ais"]);
    assert!(!o.status.success(), "--log-z with --pairs");
    let short = dir.join("short.npy");
    ebm_gpu::io::write_samples(&short, &a[..10 * 784], 10, 784).unwrap();
    let o = score(&["--pairs", common::s(&short)]);
    assert!(!o.status.success() && common::stderr(&o).contains("10 rows, --points has 30"), "{}", common::stderr(&o));

    let refused_dir = dir.join("refused");
    let refused = |extra: &[&str], wanted: &str| {
        let mut args = vec!["train", "--data", common::s(&data), "--steps", "2", "--backend", "cpu"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--run-dir", common::s(&refused_dir)]);
        let o = common::ebm(&args);
        assert!(!o.status.success() && common::stderr(&o).contains(wanted), "{extra:?}: {}", common::stderr(&o));
    };
    refused(&["--model", model, "--loss", "infonce", "--batch", "1"], "--batch");
    refused(&["--model", "1x28x28/flatten/8/silu/1", "--loss", "infonce"], "K >= 2 outputs");
    refused(&["--model", model, "--loss", "infonce:0"], "infonce temperature");
    refused(&["--model", model, "--loss", "infonce", "--augment", "none"], "--augment");
    refused(&["--model", model, "--loss", "infonce", "--augment", "shift:30"], "not smaller than the 28x28 image");
    refused(&["--model", model, "--augment", "noise:0.1"], "--augment draws the two views of --loss infonce");
    assert!(!refused_dir.join("checkpoint.safetensors").exists());
    let o = common::ebm(&["probe", "--energy", "banana", "--data", common::s(&data)]);
    assert!(!o.status.success() && common::stderr(&o).contains("needs a network whose outputs are features"));
}

/// `ebm probe` on the GPU executor (the network passes through the layer kernels) reports what
/// the CPU executor reports, to rounding: the retrievals and the probe.
#[test]
fn probe_on_the_gpu_matches_the_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let dir = common::temp_dir("infonce-gpu-probe");
    let data = common::mnist_fixture();
    let run = dir.join("run");
    let o = train_infonce("1x28x28/4k5s4p0/swish/flatten/16/swish/8", "10", &run, &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let energy = format!("net:{}", common::s(&run.join("checkpoint.safetensors")));
    let report = |backend: &str| {
        let json = dir.join(format!("{backend}.json"));
        let o = common::ebm(&[
            "probe",
            "--energy",
            &energy,
            "--data",
            common::s(&data),
            "--queries",
            "60",
            "--epochs",
            "2",
            "--json",
            common::s(&json),
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "{backend}: {}", common::stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&json).unwrap()).unwrap()
    };
    let (gpu, cpu) = (report("gpu"), report("cpu"));
    // Float rounding may reorder a near-tie: at most one query of 60 may differ.
    for part in ["network", "random_network", "raw_pixels"] {
        for top in ["top1", "top5"] {
            let share = |r: &serde_json::Value| r["retrieval"][part][top].as_f64().unwrap();
            assert!(
                (share(&gpu) - share(&cpu)).abs() <= 1.0 / 60.0 + 1e-9,
                "{part} {top}: gpu {} cpu {}",
                share(&gpu),
                share(&cpu)
            );
        }
    }
    for part in ["network", "random_network", "raw_pixels"] {
        let acc = |r: &serde_json::Value| r["probe"][part]["test_accuracy"].as_f64().unwrap();
        assert!((acc(&gpu) - acc(&cpu)).abs() <= 0.011, "{part}: gpu {} cpu {}", acc(&gpu), acc(&cpu));
    }
}
