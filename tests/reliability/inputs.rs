//! Issue 31, root causes 9-11 through the binary: data silently dropped or reinterpreted,
//! degenerate settings, and outputs checked before the work.

use super::{common, ebm, refused, scratch};
use std::process::Command;

fn ok(args: &[&str]) -> String {
    let (o, _) = ebm(args);
    assert!(o.status.success(), "{args:?}: {}", common::stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Cause 9: a CSV whose first row has a typo is refused (it was skipped as a "header");
/// restore says when its "training mean" is not one; a Bernoulli RBM is not evaluated on grey
/// levels; a `net` spec's `spec` does not silently override the file's own architecture.
#[test]
fn data_is_never_dropped_or_reinterpreted_silently() {
    let dir = scratch("data-rows");
    let typo = dir.join("typo.csv");
    for (text, field) in [("0x1,2\n3,4\n", "'0x1'"), ("1_0,2\n3,4\n", "'1_0'")] {
        std::fs::write(&typo, text).unwrap();
        refused(
            &["score", "--energy", "correlated2", "--points", common::s(&typo)],
            &["typo.csv", "line 1, column 1", field, "not a number"],
        );
    }
    std::fs::write(&typo, "x,y\n0.5,1\n").unwrap();
    assert!(ok(&["score", "--energy", "correlated2", "--points", common::s(&typo)]).contains("1 points"));

    // restore --split test on a folder without a training split: warned, and the baseline
    // labelled as what it is.
    let test_only = dir.join("test-only");
    std::fs::create_dir_all(&test_only).unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(common::mnist_fixture().join(f), test_only.join(f)).unwrap();
    }
    let net = dir.join("image.safetensors");
    ok(&["init-net", "1x28x28/2k7s7/swish/flatten/1", "--out", common::s(&net)]);
    let energy = format!("net:{}", net.display());
    let (o, _) = ebm(&[
        "restore",
        "--energy",
        &energy,
        "--data",
        common::s(&test_only),
        "--limit",
        "2",
        "--steps",
        "1",
        "--backend",
        "cpu",
    ]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), common::stderr(&o));
    assert!(o.status.success(), "{err}");
    assert!(err.contains("warning: --data") && err.contains("training split did not load"), "{err}");
    assert!(out.contains("image mean in holes") && !out.contains("training mean"), "{out}");

    // rbm eval --binarize none under Bernoulli visibles.
    let run = dir.join("rbm");
    let digits = common::digits_dir();
    let rbm = |extra: &[&str]| -> Vec<String> {
        let base = ["--data", common::s(&digits), "--limit", "50", "--backend", "cpu", "--run-dir", common::s(&run)];
        extra.iter().chain(&base).map(|s| s.to_string()).collect()
    };
    let args = rbm(&["rbm", "train", "--hidden", "4", "--epochs", "1", "--batch", "50"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = rbm(&["rbm", "eval", "--exact", "--binarize", "none"]);
    refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), &["--binarize none", "Bernoulli", "grey levels"]);
    let args = rbm(&["rbm", "eval", "--exact", "--binarize", "threshold"]);
    assert!(ok(&args.iter().map(String::as_str).collect::<Vec<_>>()).contains("test log-likelihood"));

    // A net spec whose `spec` disagrees with the file's ebm.net.
    let small = dir.join("small.safetensors");
    ok(&["init-net", "2/8/silu/1", "--out", common::s(&small)]);
    let spec = |arch: &str| format!(r#"{{"type": "net", "weights": {:?}, "spec": "{arch}"}}"#, common::s(&small));
    let sample = |e: &str| -> Vec<String> {
        ["sample", "--energy", e, "--chains", "4", "--steps", "2", "--backend", "cpu"].map(String::from).to_vec()
    };
    let args = sample(&spec("2/8/tanh/1"));
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["small.safetensors", "ebm.net", "2/8/silu/1", "2/8/tanh/1", "\"spec\""],
    );
    let args = sample(&spec("2/8/swish/1"));
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Cause 10: sum weights <= 0, slopes that are ReLU or the identity, repeated conv letters, a
/// box too narrow to resolve, and held-out points outside the box counted, not averaged in.
#[test]
fn degenerate_settings_are_refused_naming_what_to_change() {
    let dir = scratch("degenerate");
    let cpu = |energy: &str| -> Vec<String> {
        ["sample", "--energy", energy, "--chains", "4", "--steps", "2", "--backend", "cpu"].map(String::from).to_vec()
    };
    for (weights, want) in [("[1, -1]", "weights[1]"), ("[0, 1]", "weights[0]")] {
        let e = format!(r#"{{"type": "sum", "terms": ["ring8", "banana"], "weights": {weights}}}"#);
        let args = cpu(&e);
        refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[want, "must be positive"]);
    }
    let out = dir.join("n.safetensors");
    refused(&["init-net", "2/8/leaky_relu:1e-50/1", "--out", common::s(&out)], &["leaky_relu:1e-50", "slope", "relu"]);
    refused(&["init-net", "1x8x8/8k3s2s3p1p0/flatten/1", "--out", common::s(&out)], &["8k3s2s3p1p0", "given twice"]);
    assert!(!out.exists());
    let points = dir.join("p.csv");
    std::fs::write(&points, "0,0\n").unwrap();
    refused(
        &["score", "--energy", "banana", "--points", common::s(&points), "--box", "0,1e-30"],
        &["--box", "1e-30", "narrower than the floor"],
    );

    // eval: held-out points far outside the box are counted and left out of the NLL (they
    // gave -1.8e36 nats); all of them outside is refused.
    let run = dir.join("run");
    ok(&[
        "train",
        "--data",
        "ring8",
        "--model",
        "mlp:2,8,1",
        "--steps",
        "3",
        "--backend",
        "cpu",
        "--run-dir",
        common::s(&run),
    ]);
    let far = dir.join("far.csv");
    std::fs::write(&far, "1e30,-1e30\n0.5,0.5\n1,-1\n").unwrap();
    let out = ok(&["eval", "--run-dir", common::s(&run), "--data", common::s(&far)]);
    assert!(out.contains("held-out NLL over the 2 points inside the box (1 outside left out)"), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let nll = report["nll"].as_f64().unwrap();
    assert!(nll.is_finite() && nll.abs() < 1e3 && report["outside_box"] == 1, "{report}");
    std::fs::write(&far, "1e30,-1e30\n-1e30,1e30\n").unwrap();
    refused(&["eval", "--run-dir", common::s(&run), "--data", common::s(&far)], &["all 2 points", "outside the box"]);

    // Cause 11: eval's outputs are checked before the quadrature (a figures "folder" that is
    // a file failed after eval.json was rewritten).
    let before = std::fs::read(run.join("eval.json")).unwrap();
    std::fs::remove_dir_all(run.join("figures")).unwrap();
    std::fs::write(run.join("figures"), "not a folder").unwrap();
    refused(&["eval", "--run-dir", common::s(&run), "--held-out", "100"], &["--run-dir", "figures"]);
    assert_eq!(std::fs::read(run.join("eval.json")).unwrap(), before, "eval.json was rewritten by a failed eval");
}

/// Cause 11: with TMPDIR unusable, adapter probing stays quiet (the private runtime directory
/// goes elsewhere).
#[test]
fn adapter_probing_is_quiet_without_a_usable_tmpdir() {
    for tmpdir in ["/nonexistent/ebm-tmp", "/dev/null", "relative/dir"] {
        let out = Command::new(env!("CARGO_BIN_EXE_ebm"))
            .arg("info")
            .env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", tmpdir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "TMPDIR={tmpdir}: {err}");
        assert!(!err.contains("XDG_RUNTIME_DIR"), "TMPDIR={tmpdir}: probing printed: {err}");
    }
}
