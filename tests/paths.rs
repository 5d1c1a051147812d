//! Output paths are checked before any work: an output that is an input or another output, a
//! directory, in a missing folder, or whose extension names another format is refused with a
//! message naming the flag, and nothing is written.

mod common;

use common::{ebm, s, stderr, temp_dir};
use std::process::Output;

/// Asserts `o` failed before any work, with a message holding every one of `words`.
fn refused(o: &Output, words: &[&str]) {
    let e = stderr(o);
    assert!(!o.status.success(), "succeeded: {e}");
    for w in words {
        assert!(e.contains(w), "message lacks {w:?}: {e}");
    }
    // `ebm sample` prints acceptance and throughput once it has sampled.
    assert!(!String::from_utf8_lossy(&o.stdout).contains("chain-steps/s"), "it sampled first");
}

#[test]
fn sample_refuses_outputs_that_are_inputs_or_each_other() {
    let dir = temp_dir("paths-sample");
    // An MLP file named w.npy (the loader reads safetensors whatever the name).
    let net = dir.join("w.safetensors");
    let o = ebm(&["init-mlp", "--dims", "2,8,1", "--out", s(&net)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let w = dir.join("w.npy");
    std::fs::copy(&net, &w).unwrap();
    let weights = std::fs::read(&w).unwrap();
    let energy = format!("mlp:{}", s(&w));
    let base = ["sample", "--chains", "16", "--steps", "200", "--backend", "cpu"];
    let run = |extra: &[&str]| ebm(&base.iter().copied().chain(extra.iter().copied()).collect::<Vec<_>>());
    // The same file by another spelling is the same file.
    let other_spelling = dir.join("sub").join("..").join("w.npy");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    refused(&run(&["--energy", &energy, "--out", s(&other_spelling)]), &["--out", "--energy"]);
    assert_eq!(std::fs::read(&w).unwrap(), weights, "the input was overwritten");

    let spec = dir.join("spec.json");
    let spec_text = r#"{"type": "gaussian", "mean": [0, 0], "std": [1, 1]}"#;
    std::fs::write(&spec, spec_text).unwrap();
    refused(&run(&["--energy", s(&spec), "--diagnostics", s(&spec)]), &["--diagnostics", "--energy"]);
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), spec_text);

    let x = dir.join("x.npy");
    refused(&run(&["--energy", "ring8", "--out", s(&x), "--trace", s(&x)]), &["--trace", "--out"]);
    assert!(!x.exists());

    // A directory, a missing folder, a format the extension does not name.
    let folder = dir.join("folder.npy");
    std::fs::create_dir_all(&folder).unwrap();
    refused(&run(&["--energy", "ring8", "--out", s(&folder)]), &["--out", "is a directory"]);
    refused(&run(&["--energy", "ring8", "--out", s(&dir.join("missing/x.npy"))]), &["--out", "does not exist"]);
    refused(&run(&["--energy", "ring8", "--png", s(&dir.join("x.npy"))]), &["--png", ".png"]);
}

#[test]
fn bench_and_init_refuse_unusable_outputs_first() {
    let dir = temp_dir("paths-bench");
    let t = std::time::Instant::now();
    let o = ebm(&["bench", "--csv", s(&dir.join("missing/bench.csv")), "--backend", "cpu"]);
    refused(&o, &["--csv", "does not exist"]);
    // Refused at once, not after the benchmark (which takes minutes).
    assert!(t.elapsed().as_secs() < 20, "refused only after {:?}", t.elapsed());
    refused(&ebm(&["bench", "--csv", s(&dir), "--backend", "cpu"]), &["--csv"]);
    refused(
        &ebm(&["init-mlp", "--dims", "2,4,1", "--out", s(&dir.join("missing/w.safetensors"))]),
        &["--out", "does not exist"],
    );
    refused(&ebm(&["init-net", "2/4/silu/1", "--out", s(&dir.join("w.npy"))]), &["--out", ".safetensors"]);
}

#[test]
fn rbm_sample_refuses_a_wrong_format_and_a_grid_too_large_before_sampling() {
    let dir = temp_dir("paths-rbm");
    let run = dir.join("run");
    let digits = common::digits_dir();
    let o = ebm(&[
        "rbm",
        "train",
        "--data",
        s(&digits),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--binarize",
        "threshold",
        "--backend",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let txt = dir.join("s.txt");
    refused(
        &ebm(&["rbm", "sample", "--run-dir", s(&run), "--out", s(&txt), "--steps", "2", "--backend", "cpu"]),
        &["--out", ".png"],
    );
    assert!(!txt.exists(), "PNG bytes written into a .txt");
    // 10^8 chains of 8x8 images: a grid of ~2.7e9 pixels, refused before 10^8 chains are made.
    let t = std::time::Instant::now();
    let png = dir.join("s.png");
    let o = ebm(&[
        "rbm",
        "sample",
        "--run-dir",
        s(&run),
        "--out",
        s(&png),
        "--chains",
        "100000000",
        "--steps",
        "1",
        "--backend",
        "cpu",
    ]);
    refused(&o, &["--chains 100000000", "pixel limit"]);
    assert!(t.elapsed().as_secs() < 20 && !png.exists(), "after {:?}", t.elapsed());
}
