//! `ebm eval` of an image model: test and train NLL with log Z by AIS, bits per dimension by
//! the stated convention, the fitted-Gaussian baseline, eval.json; the same checkpoint outside
//! its run dir (--energy); image flags refused for a 2-D model.

mod common;

use common::{ebm, s, stderr, temp_dir};

/// A 4-step DSM run of a tiny conv net on the MNIST fixture, in `run`, seeded by `seed`.
fn train_tiny(run: &std::path::Path, seed: &str) {
    let mnist = common::mnist_fixture();
    let train = [
        "train",
        "--data",
        s(&mnist),
        "--model",
        "1x28x28/4k5s4p0/swish/flatten/8/swish/1/head:-f",
        "--loss",
        "dsm:0.1",
        "--steps",
        "4",
        "--batch",
        "16",
        "--backend",
        "cpu",
        "--seed",
        seed,
        "--run-dir",
        s(run),
    ];
    let o = ebm(&train);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn an_image_model_gets_an_nll_and_bits_per_dimension() {
    let dir = temp_dir("eval-images");
    let run = dir.join("run");
    let mnist = common::mnist_fixture();
    train_tiny(&run, "0");
    let eval = [
        "eval",
        "--run-dir",
        s(&run),
        "--held-out",
        "16",
        "--ais-runs",
        "4",
        "--betas",
        "100",
        "--leapfrog",
        "2",
        "--backend",
        "cpu",
    ];
    let o = ebm(&eval);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("bits/dim") && out.contains("from the fitted base") && out.contains("from the uniform base"),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let d = 784.0f64;
    for part in ["test", "train", "baseline_fitted_gaussian"] {
        let (nll, bpd) = (report[part]["nll"].as_f64().unwrap(), report[part]["bits_per_dim"].as_f64().unwrap());
        assert!(nll.is_finite(), "{part}: {report}");
        let want = (nll + d * 128f64.ln()) / (d * std::f64::consts::LN_2);
        assert!((bpd - want).abs() < 1e-9, "{part}: {bpd} vs {want}");
    }
    assert_eq!(report["test"]["images"], 16);
    assert_eq!(report["log_z"]["forward"].as_array().unwrap().len(), 2);
    // The same checkpoint outside its run dir (--energy, the checkpoint's own box): the same figures.
    let checkpoint = format!("net:{}", run.join("checkpoint.safetensors").display());
    let json = dir.join("outside.json");
    let by_energy =
        [&["eval", "--energy", &checkpoint, "--data", s(&mnist), "--json", s(&json)][..], &eval[3..]].concat();
    let o = ebm(&by_energy);
    assert!(o.status.success(), "{}", stderr(&o));
    let outside: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(outside["test"]["nll"], report["test"]["nll"], "{outside}");
    assert_eq!(outside["box"], report["box"]);
    for (args, says) in [
        (&["eval", "--energy", &checkpoint][..], "--data"),
        (&["eval", "--energy", "ring8", "--data", s(&mnist)][..], "not an image"),
        (&["eval", "--run-dir", s(&run), "--box", "-1,1"][..], "--energy"),
        (&["eval", "--run-dir", s(&run), "--energy", &checkpoint][..], "cannot be used with"),
    ] {
        let o = ebm(args);
        assert!(!o.status.success() && stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    let o = ebm(&["eval", "--run-dir", s(&run), "--held-out", "0", "--backend", "cpu"]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("--held-out 0"), "{err}");
    // A 2-D model's likelihood is exact: the AIS flags do not apply.
    let toy = dir.join("toy");
    let o = ebm(&["train", "--data", "ring8", "--steps", "3", "--backend", "cpu", "--run-dir", s(&toy)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ebm(&["eval", "--run-dir", s(&toy), "--ais-runs", "8", "--held-out", "100"]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("--ais-runs") && err.contains("quadrature"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ebm eval --ais-shard I/N` runs a part of each estimate's AIS runs; `--ais-join` of all the
/// parts reports what one process reports, digit for digit (eval.json and stdout); a missing
/// shard, one of another seed or model, one with a log weight too few, and a shard without
/// --json are refused by name.
#[test]
fn ais_shards_of_an_image_model_join_into_one_run() {
    let dir = temp_dir("eval-images-shards");
    let (run, other) = (dir.join("run"), dir.join("other"));
    train_tiny(&run, "0");
    let eval_with = |run: &std::path::Path, seed: &str, held_out: &str, extra: &[&str]| {
        let mut args = vec!["eval", "--run-dir", s(run), "--held-out", held_out, "--ais-runs", "6", "--betas", "100"];
        args.extend_from_slice(&["--leapfrog", "2", "--seed", seed, "--backend", "cpu"]);
        args.extend_from_slice(extra);
        ebm(&args)
    };
    let eval = |run: &std::path::Path, extra: &[&str]| eval_with(run, "3", "8", extra);
    let one = eval(&run, &[]);
    assert!(one.status.success(), "{}", stderr(&one));
    let whole = std::fs::read_to_string(run.join("eval.json")).unwrap();
    let files: Vec<String> = (0..3).map(|i| dir.join(format!("shard{i}.json")).to_str().unwrap().to_string()).collect();
    for (i, f) in files.iter().enumerate() {
        let o = eval(&run, &["--ais-shard", &format!("{i}/3"), "--json", f]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("shard {i}/3")));
    }
    std::fs::remove_file(run.join("eval.json")).unwrap();
    let joined = eval(&run, &["--ais-join", &files.join(",")]);
    assert!(joined.status.success(), "{}", stderr(&joined));
    assert_eq!(String::from_utf8_lossy(&joined.stdout), String::from_utf8_lossy(&one.stdout));
    // Equal but for the mean acceptance, averaged over shards in another order (last digits).
    let without_acceptance = |text: &str| {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut acceptance = Vec::new();
        for part in v["log_z"]["forward"].as_array_mut().unwrap() {
            acceptance.push(part["acceptance"].take().as_f64().unwrap());
        }
        (v, acceptance)
    };
    let (joined_json, joined_acc) = without_acceptance(&std::fs::read_to_string(run.join("eval.json")).unwrap());
    let (whole_json, whole_acc) = without_acceptance(&whole);
    assert_eq!(joined_json, whole_json);
    assert!(joined_acc.iter().zip(&whole_acc).all(|(a, b)| (a - b).abs() < 1e-12), "{joined_acc:?} {whole_acc:?}");

    let refused = |o: std::process::Output, words: &[&str]| {
        let e = stderr(&o);
        assert!(!o.status.success() && words.iter().all(|w| e.contains(w)), "{words:?}: {e}");
    };
    refused(eval(&run, &["--ais-join", &format!("{},{}", files[0], files[2])]), &["shard2.json", "run 2 comes next"]);
    refused(eval(&run, &["--ais-join", &files[..2].join(",")]), &["a shard is missing"]);
    let join = ["--ais-join", &files.join(",")];
    refused(eval_with(&run, "4", "8", &join), &["made with --seed 3", "--seed 4"]);
    refused(eval_with(&run, "3", "9", &join), &["made with --held-out 8"]);
    refused(eval(&run, &["--ais-shard", "0/3"]), &["--json"]);
    refused(eval(&run, &["--ais-shard", "0/4", "--json", &files[0]]), &["holds 1 runs", "at least 2"]);
    // Another model (a second run, other weights) with the same settings.
    train_tiny(&other, "1");
    let o = eval(&other, &["--ais-shard", "1/3", "--json", &files[1]]);
    assert!(o.status.success(), "{}", stderr(&o));
    refused(eval(&run, &["--ais-join", &files.join(",")]), &["shard1.json", "another model"]);
    // A shard with a log weight too few.
    let o = eval(&run, &["--ais-shard", "1/3", "--json", &files[1]]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut short: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files[1]).unwrap()).unwrap();
    short["forward"][1]["log_weights"].as_array_mut().unwrap().pop();
    std::fs::write(&files[1], serde_json::to_vec(&short).unwrap()).unwrap();
    refused(eval(&run, &["--ais-join", &files.join(",")]), &["shard1.json", "do not match its checksum"]);
    std::fs::write(&files[1], common::reseal_shard(&short)).unwrap();
    refused(eval(&run, &["--ais-join", &files.join(",")]), &["shard1.json", "holds 1 log weights for its 2 runs"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
