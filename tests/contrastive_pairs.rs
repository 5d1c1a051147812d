//! Contrastive training on given pairs (`ebm train --loss infonce --pairs FILE`): a synthetic
//! task whose two views share no coordinate, against its Bayes-optimal retrieval and the raw
//! values; the CLI end to end (train, resume, `ebm score --pairs`) with its refusals; and
//! `ebm data halves-mnist`, which makes such pairs from images.

mod common;

use common::net;
use ebm_gpu::eval::contrastive;
use ebm_gpu::nn::NetworkInternals;
use ebm_gpu::train::contrastive::Augment;
use ebm_gpu::train::{Loss, TrainConfig, TrainState, Trainer, cpu::CpuTrainer};

/// Latent width of the synthetic task, and the noise on the second view.
const Z: usize = 4;
const SIGMA: f32 = 0.3;

/// A fixed rotation of the latent: a cyclic shift with one sign flipped.
fn rotate(z: &[f32]) -> [f32; Z] {
    [-z[3], z[0], z[1], z[2]]
}

/// Rows [z, 0] and their second views [0, R z + σ ε], z ~ N(0, I_4): the views share no
/// coordinate, so only a model that learned R pairs them.
fn pairs(seed: u64, rows: usize) -> (Vec<f32>, Vec<f32>) {
    let z = common::randn(seed, rows * Z);
    let eps = common::randn(seed + 1, rows * Z);
    let (mut a, mut b) = (vec![0.0; rows * 2 * Z], vec![0.0; rows * 2 * Z]);
    for i in 0..rows {
        let zi = &z[i * Z..(i + 1) * Z];
        a[i * 2 * Z..i * 2 * Z + Z].copy_from_slice(zi);
        for (m, r) in rotate(zi).iter().enumerate() {
            b[i * 2 * Z + Z + m] = r + SIGMA * eps[i * Z + m];
        }
    }
    (a, b)
}

/// The Bayes-optimal retrieval ranks keys b_j for query a by |R a₁ − b_j₂|; after training on
/// the given pairs, the learned pair energy retrieves at least 85 % as often on held-out pairs,
/// while the raw values (the views are orthogonal) find nothing.
#[test]
fn given_pairs_train_a_retrieval_the_raw_values_cannot_do() {
    let (d, rows) = (2 * Z, 4096);
    let (a, b) = pairs(31, rows);
    let data = [a, b].concat();
    let mut cfg = TrainConfig::for_data(Loss::InfoNce { temperature: 0.1 }, &data, d, 4).unwrap();
    cfg.paired = true;
    cfg.augment = Augment::default();
    cfg.batch = 256;
    cfg.lr = 3e-3;
    let state = TrainState::new(net("8/64/silu/64/silu/16/head:lse", 4), &cfg).unwrap();
    let mut trainer = CpuTrainer::new(&cfg, state, &data).unwrap();
    let metrics = trainer.run(300).unwrap();
    let (first, last) = (metrics[0], metrics[metrics.len() - 1]);
    assert!(last.loss < 0.5 * first.loss, "loss {} -> {}", first.loss, last.loss);
    let network = trainer.state().unwrap().net;

    let n = 256;
    let (va, vb) = pairs(32, n);
    let v = network.view();
    let learned = contrastive::retrieval(&v.outputs_batch(&va), &v.outputs_batch(&vb), 16).unwrap();
    let (ca, cb) = contrastive::centred(&va, &vb, d);
    let raw = contrastive::retrieval(&ca, &cb, d).unwrap();
    let dist = |i: usize, j: usize| {
        let r = rotate(&va[i * d..i * d + Z]);
        (0..Z).map(|m| (r[m] - vb[j * d + Z + m]).powi(2)).sum::<f32>()
    };
    let oracle =
        (0..n).filter(|&i| (0..n).filter(|&j| j != i).all(|j| dist(i, j) > dist(i, i))).count() as f64 / n as f64;
    eprintln!("learned top-1 {} top-5 {}, the optimum's top-1 {oracle}, raw {}", learned.top1, learned.top5, raw.top1);
    assert!(oracle > 0.5 && oracle < 0.99, "the task should be neither trivial nor hopeless: oracle {oracle}");
    assert!(learned.top1 >= 0.85 * oracle, "learned top-1 {} vs the optimum {oracle}", learned.top1);
    assert!(raw.top1 < 0.05, "the raw views are orthogonal: top-1 {}", raw.top1);

    // The views of a paired run come from the two halves of the data, untouched without --augment.
    let (x, y) = ebm_gpu::train::contrastive::views(&cfg, network.view().input, &data, rows, 7);
    let row_of = |v: &[f32]| data.chunks_exact(d).position(|r| r == v).expect("a data row");
    for (p, q) in x.chunks_exact(d).zip(y.chunks_exact(d)) {
        assert_eq!(row_of(q), row_of(p) + rows, "the second view is the first's pair");
    }
    // An odd number of rows, or pairs for another loss, are refused by name.
    let e = CpuTrainer::new(&cfg, trainer.state().unwrap(), &data[..(2 * rows - 1) * d]).err().unwrap();
    assert!(e.to_string().contains("pairs"), "{e}");
    let mut cd = cfg.clone();
    cd.loss = Loss::Cd;
    assert!(cd.validate(rows).unwrap_err().to_string().contains("pairs"));
}

fn write_npy(path: &std::path::Path, values: &[f32], cols: usize) {
    ebm_gpu::io::npy::write_f32(path, values, &[values.len() / cols, cols]).unwrap();
}

/// `ebm train --pairs` trains, resumes bit for bit and refuses what does not pair; `ebm score
/// --pairs` retrieves the held-out pairs and reports the raw values beside them.
#[test]
fn train_on_given_pairs_end_to_end() {
    let dir = common::temp_dir("infonce-pairs");
    let (a, b) = pairs(41, 512);
    let (fa, fb) = (dir.join("a.npy"), dir.join("b.npy"));
    write_npy(&fa, &a, 2 * Z);
    write_npy(&fb, &b, 2 * Z);
    let run = |run: &std::path::Path, steps: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", common::s(&fa), "--pairs", common::s(&fb), "--loss", "infonce"];
        args.extend_from_slice(&["--model", "8/32/silu/8/head:lse", "--batch", "64", "--steps", steps]);
        // A constant learning rate, so a run stopped early is the start of a longer one.
        args.extend_from_slice(&["--lr-decay-to", "1"]);
        args.extend_from_slice(&["--run-dir", common::s(run), "--backend", "cpu"]);
        args.extend_from_slice(extra);
        common::ebm(&args)
    };
    let (whole, split) = (dir.join("whole"), dir.join("split"));
    let o = run(&whole, "40", &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("512 pairs with"), "{}", common::stderr(&o));
    assert!(run(&split, "15", &[]).status.success());
    let o = common::ebm(&["train", "--resume", common::s(&split), "--steps", "40", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let state = |r: &std::path::Path| ebm_gpu::train::checkpoint::load(&r.join("checkpoint.safetensors")).unwrap().0;
    let (whole_state, split_state) = (state(&whole), state(&split));
    assert_eq!(split_state.step, 40);
    let same = whole_state.net.pack_params() == split_state.net.pack_params() && whole_state.m == split_state.m;
    assert!(same, "the resumed run equals the uninterrupted one bit for bit");

    // A resume naming other pairs, and pairs that do not pair, are refused by flag.
    let other = dir.join("other.npy");
    write_npy(&other, &b[..256 * 2 * Z], 2 * Z);
    let o = common::ebm(&["train", "--resume", common::s(&split), "--steps", "50", "--pairs", common::s(&other)]);
    assert!(!o.status.success() && common::stderr(&o).contains("--pairs"), "{}", common::stderr(&o));
    let mut args = vec!["train", "--data", common::s(&fa), "--pairs", common::s(&other), "--loss", "infonce"];
    args.extend_from_slice(&["--model", "8/32/silu/8/head:lse", "--steps", "5", "--run-dir"]);
    let short_run = dir.join("short2");
    args.extend_from_slice(&[common::s(&short_run), "--backend", "cpu"]);
    let o = common::ebm(&args);
    let e = common::stderr(&o);
    assert!(!o.status.success() && e.contains("--pairs") && e.contains("256 rows"), "{e}");
    assert!(!short_run.exists(), "a refused start leaves no run dir");
    let cd_run = dir.join("cd");
    let o =
        common::ebm(&["train", "--data", common::s(&fa), "--pairs", common::s(&fb), "--run-dir", common::s(&cd_run)]);
    let e = common::stderr(&o);
    assert!(!o.status.success() && e.contains("--pairs") && e.contains("infonce"), "{e}");

    // Held-out pairs: the trained model finds them where the raw values cannot.
    let (ha, hb) = pairs(42, 200);
    let (ta, tb) = (dir.join("ta.npy"), dir.join("tb.npy"));
    write_npy(&ta, &ha, 2 * Z);
    write_npy(&tb, &hb, 2 * Z);
    let energy = format!("net:{}", whole.join("checkpoint.safetensors").display());
    let out = dir.join("pairs.json");
    let o = common::ebm(&["score", "--energy", &energy, "--points", common::s(&ta), "--pairs", common::s(&tb)]);
    let o2 = common::ebm(&[
        "score",
        "--energy",
        &energy,
        "--points",
        common::s(&ta),
        "--pairs",
        common::s(&tb),
        "--out",
        common::s(&out),
    ]);
    assert!(o.status.success() && o2.status.success(), "{}", common::stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("the raw values"), "{text}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let (learned, raw) =
        (report["retrieval"]["top1"].as_f64().unwrap(), report["raw_retrieval"]["top1"].as_f64().unwrap());
    assert!(learned > 0.1 && raw < 0.05, "learned top-1 {learned}, raw {raw} (chance 0.005)");
}

/// `ebm data halves-mnist` splits every image into two views with no pixel in common that
/// together make the image, with the labels beside both; `--data`/`--pairs` read them.
#[test]
fn halves_mnist_splits_each_image_in_two() {
    let dir = common::temp_dir("halves");
    let out = dir.join("halves");
    let o = common::ebm(&[
        "data",
        "halves-mnist",
        "--data",
        common::s(&common::mnist_fixture()),
        "--out",
        common::s(&out),
        "--limit",
        "20",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let read = |p: &str| ebm_gpu::io::npy::read(&out.join(p)).unwrap();
    let (top, bottom) = (read("top/test.npy"), read("bottom/test.npy"));
    assert_eq!(top.shape, vec![20, 1, 28, 28]);
    assert_eq!(bottom.shape, top.shape);
    let source = ebm_gpu::data::load(&common::mnist_fixture(), ebm_gpu::data::Split::Test).unwrap();
    let (tv, bv) = (top.data, bottom.data);
    for (i, (&t, &b)) in tv.iter().zip(&bv).enumerate() {
        let row = i / 28 % 28;
        assert!(if row < 14 { b == 0.0 } else { t == 0.0 }, "pixel {i}: the halves overlap");
        assert_eq!(t + b, (source.images[i] * 255.0).round(), "pixel {i}: the halves make the image");
    }
    assert!(out.join("bottom/train.labels.npy").exists() && out.join("top/test.labels.npy").exists());
}
