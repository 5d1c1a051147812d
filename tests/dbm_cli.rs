//! `ebm dbm`: training, evaluating, sampling and resuming deep Boltzmann machines and deep
//! belief networks from the command line, and the flags it refuses by name.

mod common;

/// The command line: train a small DBM and DBN on the digits, evaluate and sample them;
/// flags that cannot apply are refused by name.
#[test]
fn cli_trains_evaluates_and_samples_deep_models() {
    let dir = common::temp_dir("dbm_cli");
    let d = common::digits_dir();
    let data = d.to_str().unwrap();
    for deep in ["dbm", "dbn"] {
        let run = dir.join(deep);
        let mut args =
            vec!["dbm", "train", "--data", data, "--binarize", "threshold", "--layers", "16,8", "--deep", deep];
        args.extend(["--pretrain-epochs", "2", "--batch", "20", "--backend", "cpu", "--run-dir", common::s(&run)]);
        if deep == "dbm" {
            args.extend(["--epochs", "1", "--pcd-init", "data"]);
        }
        let o = common::ebm(&args);
        assert!(o.status.success(), "{}", common::stderr(&o));
        assert!(deep == "dbn" || common::stderr(&o).contains("persistent chains from the first batch's rows"));
        let json = dir.join(format!("{deep}.json"));
        let o = common::ebm(&[
            "dbm",
            "eval",
            "--data",
            data,
            "--binarize",
            "threshold",
            "--run-dir",
            common::s(&run),
            "--ais-runs",
            "20",
            "--betas",
            "300",
            "--reverse-gibbs",
            "0",
            "--backend",
            "cpu",
            "--json",
            common::s(&json),
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("test log-likelihood: >="), "{out}");
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let ll = r["test_log_likelihood_bound"].as_f64().unwrap();
        assert!(ll < 0.0 && ll > -64.0 * std::f64::consts::LN_2, "{deep}: bound {ll}");
        let png = dir.join(format!("{deep}.png"));
        let o = common::ebm(&[
            "dbm",
            "sample",
            "--run-dir",
            common::s(&run),
            "--chains",
            "9",
            "--steps",
            "20",
            "--backend",
            "cpu",
            "--out",
            common::s(&png),
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        assert!(png.is_file());
    }
    let refuse = |args: &[&str], want: &str| {
        let o = common::ebm(args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(common::stderr(&o).contains(want), "{args:?}: {}", common::stderr(&o));
    };
    let bad = dir.join("bad");
    let b = common::s(&bad);
    refuse(
        &["dbm", "train", "--data", data, "--layers", "16,0", "--run-dir", b],
        "--layers: hidden layer 2 has 0 units",
    );
    refuse(&["dbm", "train", "--data", data, "--layers", "16,8,4", "--run-dir", b], "exactly two hidden layers");
    refuse(
        &["dbm", "train", "--data", data, "--layers", "16,8", "--deep", "dbn", "--pcd", "2", "--run-dir", b],
        "--pcd sets the DBM stage",
    );
    refuse(&["dbm", "eval", "--data", data, "--run-dir", b], "no checkpoint.safetensors");
    // `ebm restore --energy dbm:RUN` inpaints with the DBM, beside the baselines; flags of the
    // Langevin restoration, the GPU and a DBN are refused by name.
    let json = dir.join("restore.json");
    let dbm_run = format!("dbm:{}", common::s(&dir.join("dbm")));
    let restore = ["restore", "--energy", &dbm_run, "--data", data, "--mask", "top-half", "--limit", "20"];
    let o = common::ebm(&[&restore[..], &["--steps", "50", "--json", common::s(&json)]].concat());
    assert!(o.status.success(), "{}", common::stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let methods: Vec<&str> =
        report["scores"].as_array().unwrap().iter().map(|s| s["method"].as_str().unwrap()).collect();
    assert!(methods.contains(&"restored") && methods.iter().any(|m| m.contains("mean in holes")), "{methods:?}");
    assert!(report["method"].as_str().unwrap().contains("block Gibbs"), "{report}");
    refuse(&[&restore[..], &["--noise", "0.2"]].concat(), "--noise does not apply to --energy dbm:");
    refuse(&[&restore[..], &["--backend", "gpu"]].concat(), "runs on the CPU executor");
    let dbn_run = format!("dbm:{}", common::s(&dir.join("dbn")));
    refuse(&["restore", "--energy", &dbn_run, "--data", data], "not a DBM");
}

/// `ebm dbm train --resume` continues a DBM run bit for bit: one epoch, then a resume to three,
/// writes the checkpoint of three epochs in one go, and the metrics' rows (seconds aside);
/// settings flags, a DBN and other data are refused by name.
#[test]
fn a_resumed_dbm_run_equals_one_run() {
    let dir = common::temp_dir("dbm_resume");
    let d = common::digits_dir();
    let data = d.to_str().unwrap();
    // The rows every run here trains on.
    let rows = ["--data", data, "--binarize", "threshold", "--limit", "200"];
    let train = |run: &std::path::Path, epochs: &str, backend: &str| {
        let mut args = vec!["dbm", "train"];
        args.extend(rows);
        args.extend(["--layers", "16,8", "--pretrain-epochs", "1", "--batch", "20", "--backend", backend]);
        args.extend(["--epochs", epochs, "--run-dir", common::s(run)]);
        common::ebm(&args)
    };
    // The DBM stage runs on the GPU trainer with --backend gpu: resumes there are exact too.
    let backends: &[&str] = if common::gpu().is_some() { &["cpu", "gpu"] } else { &["cpu"] };
    for &backend in backends {
        let (whole, pieces) = (dir.join(format!("whole-{backend}")), dir.join(format!("pieces-{backend}")));
        assert!(train(&whole, "3", backend).status.success());
        assert!(train(&pieces, "1", backend).status.success());
        let resume =
            ["dbm", "train", "--resume", "--epochs", "3", "--backend", backend, "--run-dir", common::s(&pieces)];
        let o = common::ebm(&[&resume[..], &rows[..]].concat());
        assert!(o.status.success() && common::stderr(&o).contains("resuming"), "{}", common::stderr(&o));
        let bytes = |run: &std::path::Path| std::fs::read(run.join("checkpoint.safetensors")).unwrap();
        assert!(bytes(&whole) == bytes(&pieces), "{backend}: the resumed checkpoint differs from one run's");
        let rows = |run: &std::path::Path| -> Vec<String> {
            let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
            text.lines()
                .map(|l| {
                    l.split(',').enumerate().filter(|(k, _)| *k != 3).map(|(_, f)| f).collect::<Vec<_>>().join(",")
                })
                .collect()
        };
        assert_eq!(rows(&whole), rows(&pieces));
        assert_eq!(rows(&pieces).iter().filter(|r| r.starts_with("dbm,")).count(), 3);
    }
    let pieces = dir.join("pieces-cpu");
    let refuse = |args: &[&str], want: &str| {
        let o = common::ebm(args);
        assert!(!o.status.success() && common::stderr(&o).contains(want), "{args:?}: {}", common::stderr(&o));
    };
    let p = common::s(&pieces);
    // A resume with another learning rate, then with other rows than the run's.
    let resume =
        ["dbm", "train", "--resume", "--data", data, "--binarize", "threshold", "--epochs", "4", "--run-dir", p];
    refuse(&[&resume[..], &["--limit", "200", "--lr", "0.1"]].concat(), "--lr: a resumed run keeps");
    refuse(&[&resume[..], &["--limit", "200", "--pcd-init", "data"]].concat(), "--pcd-init: a resumed run keeps");
    refuse(&[&resume[..], &["--limit", "100"]].concat(), "not the rows the run trained on");
    let dbn = dir.join("dbn");
    let dbn_args = ["--layers", "16,8", "--deep", "dbn", "--pretrain-epochs", "1", "--backend", "cpu", "--run-dir"];
    let o = common::ebm(&[&["dbm", "train"][..], &rows[..], &dbn_args[..], &[common::s(&dbn)][..]].concat());
    assert!(o.status.success(), "{}", common::stderr(&o));
    refuse(&["dbm", "train", "--resume", "--data", data, "--epochs", "2", "--run-dir", common::s(&dbn)], "holds a DBN");
}
