//! `ebm eval` of an image model: test and train NLL with log Z by AIS, bits per dimension by
//! the stated convention, the fitted-Gaussian baseline, eval.json; the same checkpoint outside
//! its run dir (--energy); image flags refused for a 2-D model.

mod common;

use common::{ebm, s, stderr, temp_dir};

#[test]
fn an_image_model_gets_an_nll_and_bits_per_dimension() {
    let dir = temp_dir("eval-images");
    let run = dir.join("run");
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
        "--run-dir",
        s(&run),
    ];
    let o = ebm(&train);
    assert!(o.status.success(), "{}", stderr(&o));
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
