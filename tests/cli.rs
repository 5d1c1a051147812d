//! The `ebm` binary end to end: successful runs write what they promise; bad input exits
//! non-zero with a message naming the problem and leaves no output behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ebm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebm")).args(args).output().expect("run ebm")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ebm-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sample_writes_npy_csv_and_png_on_both_backends() {
    let dir = temp_dir("ok");
    let backends: &[&str] = if common::gpu().is_some() { &["cpu", "gpu"] } else { &["cpu"] };
    let mut results = Vec::new();
    for backend in backends {
        let (npy, csv, png) = (
            dir.join(format!("{backend}.npy")),
            dir.join(format!("{backend}.csv")),
            dir.join(format!("{backend}.png")),
        );
        let spec = r#"{"type": "gaussian_mixture", "weights": [0.5, 0.5], "means": [[-2, 0], [2, 0]], "stds": [[0.5, 0.5], [0.5, 0.5]]}"#;
        let o = ebm(&[
            "sample",
            "--energy",
            spec,
            "--chains",
            "300",
            "--steps",
            "200",
            "--step-size",
            "0.05",
            "--backend",
            backend,
            "--out",
            s(&npy),
            "--png",
            s(&png),
            "--seed",
            "9",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("acceptance") && stdout.contains("chain-steps/s"), "{stdout}");
        // Inline JSON is named as such in the header, not cut mid-JSON.
        assert!(stdout.contains("energy inline JSON (gaussian_mixture, d=2)"), "{stdout}");
        let (data, shape) = ebm_gpu::io::npy::read_f32(&npy).unwrap();
        assert_eq!(shape, vec![300, 2]);
        // Both modes are populated and the samples sit near +-2.
        let right = data.chunks(2).filter(|p| p[0] > 0.0).count();
        assert!((60..240).contains(&right), "{right} of 300 chains in the right mode");
        let mean_abs_x = data.chunks(2).map(|p| p[0].abs() as f64).sum::<f64>() / 300.0;
        assert!((mean_abs_x - 2.0).abs() < 0.2, "mean |x| {mean_abs_x}");
        let img = image::open(&png).unwrap();
        assert!(img.width() >= 200 && img.height() >= 200);
        let o = ebm(&[
            "sample",
            "--energy",
            spec,
            "--chains",
            "300",
            "--steps",
            "200",
            "--step-size",
            "0.05",
            "--backend",
            backend,
            "--out",
            s(&csv),
            "--seed",
            "9",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let (from_csv, rows, cols) = ebm_gpu::io::csv::read_f32(&csv).unwrap();
        assert_eq!((rows, cols), (300, 2));
        assert_eq!(from_csv, data, "the csv and npy outputs of one seed differ");
        results.push(data);
    }
    if let [cpu, gpu] = &results[..] {
        assert!(
            common::max_abs_diff(cpu, gpu) < 1e-3,
            "cpu and gpu samples differ by {}",
            common::max_abs_diff(cpu, gpu)
        );
    }
}

#[test]
fn sample_writes_traces_and_histograms_for_higher_dimensions() {
    let dir = temp_dir("trace");
    let (trace, png) = (dir.join("trace.npy"), dir.join("hist.png"));
    let o = ebm(&[
        "sample",
        "--energy",
        r#"{"type": "double_well", "dim": 5}"#,
        "--sampler",
        "ula",
        "--chains",
        "64",
        "--steps",
        "100",
        "--thin",
        "20",
        "--backend",
        "cpu",
        "--trace",
        s(&trace),
        "--png",
        s(&png),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, shape) = ebm_gpu::io::npy::read_f32(&trace).unwrap();
    assert_eq!(shape, vec![5, 64, 5]);
    assert!(image::open(&png).is_ok());
}

#[test]
fn bad_input_fails_with_a_message_and_writes_nothing() {
    let dir = temp_dir("bad");
    let out = dir.join("out.npy");
    let bad_json = dir.join("spec.json");
    std::fs::write(&bad_json, "{\"type\": \"gaussian\",\n  \"mean\": [0, 1],\n  \"std\": [1, 2,]\n}").unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--energy", "ring7"], &["ring7", "preset"]),
        (&["--energy", "{\"type\": \"cauchy\"}"], &["unknown variant", "cauchy"]),
        (&["--energy", s(&bad_json)], &["spec.json", "line 3"]),
        (
            &["--energy", r#"{"type": "gaussian_mixture", "weights": [1], "means": [[0, 0]], "stds": [[1]]}"#],
            &["stds[0]"],
        ),
        (&["--energy", r#"{"type": "gaussian", "mean": [0], "std": [-1]}"#], &["std[0]", "positive"]),
        (&["--step-size", "0"], &["--step-size"]),
        (&["--step-size", "-0.1"], &["--step-size"]),
        (&["--step-size", "NaN"], &["--step-size"]),
        (&["--chains", "0"], &["--chains", "0"]),
        (&["--steps", "0"], &["--steps", "0"]),
        (&["--sampler", "mala", "--grad-clamp", "1"], &["ULA only"]),
        (&["--box", "3,1", "--sampler", "ula"], &["box"]),
        (&["--box", "-1,x", "--sampler", "ula"], &["--box", "\"x\""]),
        (&["--sampler", "ula", "--grad-clamp", "-1"], &["--grad-clamp"]),
        (&["--init-std", "0"], &["init-std"]),
        (&["--sampler", "hmc", "--leapfrog", "0"], &["leapfrog"]),
        (&["--sampler", "hmc", "--step-size", "0"], &["--step-size"]),
        (&["--temperatures", "2,4"], &["start at temperature 1"]),
        (&["--temperatures", "1,4,2"], &["increase"]),
        (&["--tempering", "4", "--max-temperature", "0.5"], &["max-temperature"]),
        (&["--warmup", "10", "--target-accept", "1.2"], &["--target-accept", "(0, 1)"]),
        (&["--warmup", "10", "--target-accept", "0"], &["--target-accept"]),
        // With a step size there is no default warm-up for --target-accept to tune.
        (&["--step-size", "0.1", "--target-accept", "0.5"], &["needs --warmup"]),
        (&["--warmup", "10", "--sampler", "ula"], &["adjusted sampler"]),
        (&["--steps", "20", "--thin", "10", "--diagnostics", "d.json"], &["at least 4 draws", "gives 2"]),
    ];
    for (args, needles) in cases {
        let mut full = vec!["sample", "--backend", "cpu", "--out", s(&out)];
        for (flag, default) in [("--chains", "8"), ("--steps", "5")] {
            if !args.contains(&flag) {
                full.extend([flag, default]);
            }
        }
        full.extend_from_slice(args);
        let o = ebm(&full);
        let message = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        for needle in *needles {
            assert!(message.contains(needle), "{args:?}: message lacks {needle:?}: {message}");
        }
        assert!(!message.contains("panicked"), "{args:?} panicked: {message}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // Unwritable or unsupported output paths are refused before any sampling.
    for (path, needle) in
        [(dir.join("missing-dir").join("x.npy"), "does not exist"), (dir.join("x.txt"), ".npy or .csv")]
    {
        let o = ebm(&["sample", "--chains", "8", "--steps", "5", "--backend", "cpu", "--out", s(&path)]);
        assert!(!o.status.success() && stderr(&o).contains(needle), "{}", stderr(&o));
        assert!(!path.exists());
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "only spec.json may be in {}", dir.display());
}

#[test]
fn hmc_with_warmup_and_tempering_writes_diagnostics() {
    let dir = temp_dir("pt");
    let diag = dir.join("diag.json");
    let o = ebm(&[
        "sample",
        "--energy",
        "two_modes",
        "--sampler",
        "hmc",
        "--step-size",
        "0.1",
        "--warmup",
        "50",
        "--tempering",
        "4",
        "--chains",
        "64",
        "--steps",
        "200",
        "--thin",
        "5",
        "--backend",
        "cpu",
        "--diagnostics",
        s(&diag),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("swap acceptance") && stdout.contains("R-hat"), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&diag).unwrap()).unwrap();
    assert_eq!(json["draws_per_chain"], 40);
    assert_eq!(json["replicas"], 4);
    assert_eq!(json["dimensions"].as_array().unwrap().len(), 2);
    assert_eq!(json["swap_acceptance"].as_array().unwrap().len(), 3);
    assert_eq!(json["energy_trace"].as_array().unwrap().len(), 40);
    let rhat = json["dimensions"][1]["rhat"].as_f64().unwrap();
    assert!(rhat > 0.99 && rhat < 1.1, "R-hat {rhat}");
}

#[test]
fn init_mlp_writes_a_network_that_sample_can_use() {
    let dir = temp_dir("mlp");
    let w = dir.join("w.safetensors");
    let o = ebm(&["init-mlp", "--dims", "2,16,16,1", "--act", "tanh", "--seed", "3", "--out", s(&w)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A product of experts: the network plus a Gaussian that keeps the density normalisable.
    let spec = format!(
        r#"{{"type": "sum", "terms": [{{"type": "mlp", "weights": {:?}}}, {{"type": "gaussian", "mean": [0, 0], "std": [2, 2]}}]}}"#,
        s(&w)
    );
    let out = dir.join("x.npy");
    let o =
        ebm(&["sample", "--energy", &spec, "--chains", "64", "--steps", "50", "--backend", "cpu", "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ebm_gpu::io::npy::read_f32(&out).unwrap().1, vec![64, 2]);
    for (args, needle) in [
        (vec!["init-mlp", "--dims", "2,16,3", "--out", s(&dir.join("a.safetensors"))], "ending in 1"),
        (
            vec!["init-mlp", "--dims", "2,1", "--act", "gelu", "--out", s(&dir.join("b.safetensors"))],
            "unknown activation",
        ),
        (vec!["init-mlp", "--dims", "2,1", "--out", s(&dir.join("c.bin"))], ".safetensors"),
    ] {
        let o = ebm(&args);
        assert!(!o.status.success() && stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn rbm_train_eval_sample_on_digits() {
    let dir = temp_dir("rbm");
    let run = dir.join("run");
    let digits = common::digits_dir();
    let o = ebm(&[
        "rbm",
        "train",
        "--data",
        s(&digits),
        "--hidden",
        "8",
        "--cd",
        "1",
        "--epochs",
        "2",
        "--batch",
        "50",
        "--lr",
        "0.05",
        "--binarize",
        "threshold",
        "--backend",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["metrics.csv", "checkpoint.safetensors", "filters.png"] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let json = dir.join("eval.json");
    let o = ebm(&[
        "rbm",
        "eval",
        "--run-dir",
        s(&run),
        "--data",
        s(&digits),
        "--binarize",
        "threshold",
        "--exact",
        "--backend",
        "cpu",
        "--json",
        s(&json),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // --json holds what was printed.
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let ll = report["test_log_likelihood"].as_f64().unwrap();
    assert!(
        stdout.contains(&format!("test log-likelihood: {ll:.4} nats")) && report["exact"] == true,
        "{report} / {stdout}"
    );
    assert!(
        stdout.contains(&format!("log Z: {:.4} (exact)", report["log_z"].as_f64().unwrap())),
        "{report} / {stdout}"
    );
    let png = dir.join("samples.png");
    let o = ebm(&["rbm", "sample", "--run-dir", s(&run), "--out", s(&png), "--backend", "cpu"]);
    assert!(o.status.success() && png.exists(), "{}", stderr(&o));
    // .npy: the pixel means [chains, visible units], probabilities.
    let npy = dir.join("samples.npy");
    let o = ebm(&["rbm", "sample", "--run-dir", s(&run), "--out", s(&npy), "--chains", "5", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (means, shape) = ebm_gpu::io::npy::read_f32(&npy).unwrap();
    assert_eq!(shape, vec![5, 64]);
    assert!(means.iter().all(|p| (0.0..=1.0).contains(p)));
    // `--resume DIR` (as for `ebm train`) continues the run to more epochs.
    let o = ebm(&[
        "rbm",
        "train",
        "--data",
        s(&digits),
        "--cd",
        "1",
        "--epochs",
        "3",
        "--batch",
        "50",
        "--binarize",
        "threshold",
        "--backend",
        "cpu",
        "--resume",
        s(&run),
    ]);
    assert!(o.status.success() && stderr(&o).contains("resuming after epoch 2"), "{}", stderr(&o));
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 1 + 3, "{metrics}");
    assert!(stderr(&o).contains("with CD-1 on"), "method named, not debug-printed: {}", stderr(&o));
    // Training into a run dir that holds another run is refused without --resume.
    let o = ebm(&[
        "rbm",
        "train",
        "--data",
        s(&digits),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--backend",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    assert!(!o.status.success() && stderr(&o).contains("--resume"), "overwrote a run: {}", stderr(&o));
    // A truncated IDX file is an error naming it, not a panic.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("train-images-idx3-ubyte"), [0u8, 0, 8, 3, 0, 0, 0, 9]).unwrap();
    let o = ebm(&[
        "rbm",
        "train",
        "--data",
        s(&bad),
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--backend",
        "cpu",
        "--run-dir",
        s(&dir.join("r2")),
    ]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("train-images-idx3-ubyte") && !e.contains("panicked"), "{e}");
}

#[test]
fn help_lists_presets_and_info_runs() {
    let o = ebm(&["sample", "--help"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && text.contains("ring8") && text.contains("--step-size"), "{text}");
    let o = ebm(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("cpu executor"));
}

#[test]
fn train_and_eval_a_small_model_then_resume_and_refuse_bad_input() {
    let dir = temp_dir("train");
    let run = dir.join("run");
    let base = [
        "train",
        "--data",
        "two_moons",
        "--model",
        "2/16/silu/16/silu/1",
        "--batch",
        "64",
        "--buffer-size",
        "256",
        "--langevin-steps",
        "5",
        "--train-size",
        "2000",
        "--checkpoint-every",
        "10",
        "--figure-every",
        "10",
        "--backend",
        "cpu",
    ];
    let with = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };
    let args = with(&["--steps", "20", "--run-dir", s(&run)]);
    let o = ebm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("steps/s"), "{}", stderr(&o));
    for f in ["checkpoint.safetensors", "metrics.csv", "run.json", "train.log", "figures/energy_000020.png"] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 21, "{metrics}");
    assert!(metrics.starts_with("step,loss,e_pos,e_neg,energy_gap,grad_norm"));
    // --setup-only writes the run at step 0 with the schedule of its --steps; resumed, it
    // trains exactly the run above.
    let setup = dir.join("setup");
    let o = ebm(&with(&["--steps", "20", "--run-dir", s(&setup), "--setup-only"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(setup.join("metrics.csv")).unwrap().lines().count(), 1, "no step trained");
    let o = ebm(&["train", "--resume", s(&setup), "--backend", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read(setup.join("checkpoint.safetensors")).unwrap()
            == std::fs::read(run.join("checkpoint.safetensors")).unwrap(),
        "set up, then resumed: not the run trained in one go"
    );
    // The checkpoint is a network `ebm sample` loads.
    let out = dir.join("samples.npy");
    let energy = format!("mlp:{}", s(&run.join("checkpoint.safetensors")));
    let o = ebm(&[
        "sample",
        "--energy",
        &energy,
        "--chains",
        "64",
        "--steps",
        "20",
        "--step-size",
        "0.01",
        "--backend",
        "cpu",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Refuses to overwrite the run; resumes to more steps; refuses another model on resume.
    let before = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let o = ebm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success() && stderr(&o).contains("already holds a run"), "{}", stderr(&o));
    assert_eq!(std::fs::read(run.join("checkpoint.safetensors")).unwrap(), before, "the existing run is untouched");
    // (in the former spelling `mlp:WIDTHS`, which still parses, with a one-line deprecation)
    let o = ebm(&["train", "--resume", "--model", "mlp:2,8,1", "--steps", "30", "--run-dir", s(&run)]);
    assert!(!o.status.success() && stderr(&o).contains("not mlp:2,8,1"), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: --model mlp:2,8,1 is now spelled --model 2/8/silu/1"), "{}", stderr(&o));
    let o = ebm(&["train", "--resume", s(&run), "--steps", "30", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().count(), 31);
    // Exact likelihood by quadrature.
    let o = ebm(&["eval", "--run-dir", s(&run), "--held-out", "2000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("held-out NLL") && stdout.contains("total variation"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert!(report["nll"].as_f64().unwrap().is_finite() && report["tv"].as_f64().unwrap() <= 1.0);
    // Bad input: unknown dataset and loss, wrong input dimension, batch beyond the data.
    let fresh = dir.join("fresh");
    let cases: [(&[&str], &str); 4] = [
        (&["--data", "three_moons"], "neither a toy dataset"),
        (&["--data", "ring8", "--loss", "wasserstein"], "unknown loss"),
        (&["--data", "ring8", "--model", "3/8/silu/1"], "3-dimensional input"),
        (&["--data", "ring8", "--train-size", "100", "--batch", "200"], "larger than the dataset"),
    ];
    for (extra, want) in cases {
        let mut a = vec!["train", "--steps", "5", "--backend", "cpu", "--run-dir", s(&fresh)];
        a.extend_from_slice(extra);
        let o = ebm(&a);
        assert!(!o.status.success() && stderr(&o).contains(want), "{extra:?}: {}", stderr(&o));
        assert!(!fresh.join("checkpoint.safetensors").exists(), "{extra:?} left a run behind");
    }
    let nan_file = dir.join("nan.csv");
    std::fs::write(&nan_file, "0.5,1.0\nnan,2.0\n").unwrap();
    let o = ebm(&["train", "--data", s(&nan_file), "--steps", "5", "--backend", "cpu", "--run-dir", s(&fresh)]);
    assert!(!o.status.success() && stderr(&o).contains("non-finite"), "{}", stderr(&o));
}

/// `--backend auto` (every command's default) never runs on a software adapter: a hardware GPU
/// if one opens, else the CPU executor. Each command says which executor it ran on; where no
/// hardware adapter opens that must be the CPU, and no command may name a software adapter
/// (lavapipe in CI) as its executor.
#[test]
fn auto_backend_never_picks_a_software_adapter_in_any_command() {
    let hardware = ebm_gpu::gpu::GpuContext::new_hardware().ok().map(|c| c.describe());
    let software: Vec<String> =
        ebm_gpu::gpu::list_adapters().into_iter().filter(ebm_gpu::gpu::executor::is_software).map(|a| a.name).collect();
    let dir = temp_dir("auto");
    let digits = common::digits_dir();
    let run = dir.join("rbm");
    let train_run = dir.join("mlp");
    let commands: Vec<Vec<String>> = [
        vec!["sample", "--energy", "banana", "--chains", "64", "--steps", "20"],
        vec![
            "train",
            "--data",
            "ring8",
            "--model",
            "2/8/silu/1",
            "--steps",
            "4",
            "--batch",
            "16",
            "--train-size",
            "256",
            "--buffer-size",
            "64",
            "--langevin-steps",
            "2",
            "--checkpoint-every",
            "4",
            "--run-dir",
            s(&train_run),
        ],
        vec![
            "rbm",
            "train",
            "--data",
            s(&digits),
            "--limit",
            "100",
            "--hidden",
            "4",
            "--epochs",
            "1",
            "--batch",
            "50",
            "--run-dir",
            s(&run),
        ],
        vec!["rbm", "eval", "--data", s(&digits), "--limit", "50", "--run-dir", s(&run), "--exact"],
        vec!["rbm", "sample", "--run-dir", s(&run), "--chains", "4", "--steps", "10", "--out", s(&dir.join("rbm.png"))],
    ]
    .iter()
    .map(|c| c.iter().map(|a| a.to_string()).collect())
    .collect();
    for args in &commands {
        let o = Command::new(env!("CARGO_BIN_EXE_ebm")).args(args).output().unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert!(o.status.success(), "{args:?}: {all}");
        // The note explaining the choice may name the adapters it passed over; nothing else may.
        let reports: Vec<&str> = all.lines().filter(|l| !l.starts_with("note:")).collect();
        for name in &software {
            assert!(
                !reports.iter().any(|l| l.contains(name.as_str())),
                "{args:?} ran on the software adapter {name}: {all}"
            );
        }
        match &hardware {
            Some(gpu) => {
                assert!(reports.iter().any(|l| l.contains(gpu.as_str())), "{args:?} did not run on {gpu}: {all}")
            }
            None => assert!(
                reports.iter().any(|l| l.contains("cpu: ") || l.contains("cpu (")),
                "{args:?} does not say it ran on the CPU executor: {all}"
            ),
        }
    }
}

/// A step far too large for the banana's curved valley leaves chains that never accept: the
/// command warns with their count; a well-sized step does not.
#[test]
fn sample_warns_about_stuck_chains() {
    let o = ebm(&[
        "sample",
        "--energy",
        "banana",
        "--step-size",
        "0.05",
        "--chains",
        "512",
        "--steps",
        "1000",
        "--backend",
        "cpu",
    ]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    let line = e.lines().find(|l| l.contains("stuck")).unwrap_or_else(|| panic!("no stuck-chain warning: {e}"));
    let count: usize = line.trim_start_matches("warning: ").split(' ').next().unwrap().parse().unwrap();
    assert!((10..512).contains(&count), "{line}");
    assert!(line.contains("--step-size") && line.contains("--warmup") && line.contains("--tempering"), "{line}");
    let o = ebm(&[
        "sample",
        "--energy",
        "banana",
        "--step-size",
        "0.005",
        "--chains",
        "512",
        "--steps",
        "1000",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success() && !stderr(&o).contains("stuck"), "{}", stderr(&o));
}

/// With stderr not a terminal (here a pipe) a run prints plain progress lines instead of a bar.
#[test]
fn sample_prints_progress_lines_into_a_pipe() {
    let o = Command::new(env!("CARGO_BIN_EXE_ebm"))
        .args(["sample", "--energy", "ring8", "--chains", "64", "--steps", "500", "--backend", "cpu"])
        .env("EBM_PROGRESS_SECS", "0")
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.lines().filter(|l| l.starts_with("sampling: ") && l.contains("/500 steps")).count() >= 10, "{e}");
}

/// The trainers' settings are refused by the flags that set them, not by internal names.
#[test]
fn training_settings_are_refused_by_their_flags() {
    let dir = common::temp_dir("train-flags");
    let digits = common::digits_dir();
    let cases: &[(&[&str], &str)] = &[
        (&["rbm", "train", "--data", s(&digits), "--batch", "70000"], "invalid --batch"),
        (&["rbm", "train", "--data", s(&digits), "--momentum", "1.5"], "invalid --momentum"),
        (&["rbm", "train", "--data", s(&digits), "--lr-schedule", "cosine"], "invalid --lr-schedule"),
        (&["train", "--data", "ring8", "--langevin-steps", "20000", "--steps", "2"], "invalid --langevin-steps"),
        (&["train", "--data", "ring8", "--reset-prob", "2", "--steps", "2"], "invalid --reset-prob"),
    ];
    for (k, (args, needle)) in cases.iter().enumerate() {
        let run_dir = dir.join(format!("run{k}"));
        let mut full = args.to_vec();
        full.extend(["--backend", "cpu", "--run-dir", s(&run_dir)]);
        let o = ebm(&full);
        let message = stderr(&o);
        assert!(!o.status.success() && message.contains(needle), "{args:?}: expected {needle:?} in: {message}");
        assert!(!run_dir.exists(), "{args:?} left a run dir behind");
    }
}
