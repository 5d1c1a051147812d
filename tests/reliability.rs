//! The reliability classes of issue 16 through the binary: oversized requests refused by the
//! size plan (with a small budget set by EBM_MEMORY_BUDGET) naming the flag, frozen chains
//! kept out of the diagnostics and marked NaN in the trace, numbers that f32 loses refused with
//! the user's value, the kernel-size guard, and the work plan (absurdly long requests refused).

mod common;
#[path = "reliability/inputs.rs"]
mod inputs;

use ebm_gpu::nn::NetworkInternals;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ebm-reliability-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `ebm` with a 64 MiB memory budget; returns the output and how long it took. A run
/// past two minutes is killed and fails the test (a hang is a failure, not a stuck suite).
fn ebm(args: &[&str]) -> (Output, Duration) {
    ebm_env(args, &[])
}

/// [`ebm`] with environment variables `env` set (after the budget, so they may override it).
fn ebm_env(args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_ebm"))
        .args(args)
        .env("EBM_MEMORY_BUDGET", "64M")
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ebm");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => (out.expect("run ebm"), start.elapsed()),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{args:?} was still running after {:?} (killed)", start.elapsed());
        }
    }
}

/// Runs `ebm` expecting a refusal: exit status 1 (not a signal), quickly, stderr holding every
/// one of `want`.
fn refused(args: &[&str], want: &[&str]) {
    refused_env(args, &[], want)
}

/// [`refused`] with environment variables `env` set.
fn refused_env(args: &[&str], env: &[(&str, &str)], want: &[&str]) {
    let (out, took) = ebm_env(args, env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), None, "{args:?} was killed by a signal: {err}");
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(took < Duration::from_secs(10), "{args:?} took {took:?} to refuse");
    for w in want {
        assert!(err.contains(w), "{args:?}: {w:?} missing from: {err}");
    }
    // Every refusal of this suite is read as a user reads it.
    if let Some(debug) = common::debug_text(&err) {
        panic!("{args:?}: the refusal holds Rust Debug text {debug:?}: {err}");
    }
}

/// Runs `ebm` expecting success (no signal), returning its stderr.
fn succeeds_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let (out, _) = ebm_env(args, env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.signal(), None, "{args:?} {env:?} was killed by a signal: {err}");
    assert!(out.status.success(), "{args:?} {env:?} failed: {err}");
    err
}

/// A named pipe at `path` (no process ever writes to it: opening it for reading would block).
fn fifo(path: &std::path::Path) -> String {
    let made = Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
    path.to_str().unwrap().to_string()
}

#[test]
fn oversized_requests_are_refused_naming_the_flag() {
    let dir = scratch("oversized");
    let trace = dir.join("t.npy");
    let trace = trace.to_str().unwrap();
    let cpu = ["sample", "--backend", "cpu", "--steps", "10"];
    let with = |extra: &[&'static str]| -> Vec<&str> { cpu.iter().copied().chain(extra.iter().copied()).collect() };
    refused(&with(&["--chains", "4000000000"]), &["--chains 4000000000", "64.00 MiB", "EBM_MEMORY_BUDGET"]);
    refused(&with(&["--tempering", "100000"]), &["--tempering 100000", "GiB"]);
    refused(
        &["sample", "--backend", "cpu", "--steps", "4000000000", "--thin", "1", "--trace", trace],
        &["--steps 4000000000 / --thin 1", "the trace"],
    );
    refused(
        &with(&["--energy", r#"{"type": "double_well", "dim": 1000000000}"#]),
        &["dim 1000000000", "the chain states"],
    );
    refused(&with(&["--energy", "/dev/zero"]), &["/dev/zero", "is a device, not a regular file"]);
    let out = dir.join("w.safetensors");
    refused(
        &["init-mlp", "--dims", "2,100000,100000,1", "--out", out.to_str().unwrap()],
        &["--dims 2,100000,100000,1", "parameters"],
    );
    refused(
        &["train", "--data", "ring8", "--run-dir", dir.join("run").to_str().unwrap(), "--buffer-size", "100000000"],
        &["--buffer-size 100000000"],
    );
    // The same request within the budget runs.
    let (ok, _) = ebm(&with(&["--chains", "64"]));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[test]
fn rbm_train_sizes_are_in_the_size_plan() {
    let dir = scratch("rbm-plan");
    let digits = env!("CARGO_MANIFEST_DIR").to_string() + "/data/digits";
    let run = dir.join("run");
    let train = |extra: &[&'static str]| -> Vec<String> {
        let base = [
            "rbm",
            "train",
            "--data",
            &digits,
            "--run-dir",
            run.to_str().unwrap(),
            "--backend",
            "cpu",
            "--epochs",
            "1",
        ];
        base.iter().map(|a| a.to_string()).chain(extra.iter().map(|a| a.to_string())).collect()
    };
    let refuse = |extra: &[&'static str], want: &[&str]| {
        let args = train(extra);
        refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), want);
        assert!(!run.exists(), "a refused run left {}", run.display());
    };
    // 64 x 60000 weights are within the RBM's own limits (2^30 weights, 65533 hidden units) but
    // their copies are not within 64 MiB.
    refuse(
        &["--hidden", "60000", "--batch", "1"],
        &["--hidden 60000 x 64 visible units", "the weights", "MiB", "EBM_MEMORY_BUDGET"],
    );
    refuse(&["--batch", "60000"], &["--batch 60000", "a batch of Gibbs chains", "EBM_MEMORY_BUDGET"]);
    refuse(&["--hidden", "4000000000"], &["--hidden 4000000000", "TiB"]);
    // The same command at a size that fits trains.
    let args = train(&["--hidden", "16"]);
    let (ok, _) = ebm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[test]
fn absurd_work_is_refused_quickly_naming_the_flags() {
    let dir = scratch("work");
    // Once a hang: 4e9 leapfrog steps per proposal.
    refused(
        &["sample", "--backend", "cpu", "--sampler", "hmc", "--leapfrog", "4000000000"],
        &["--leapfrog", "4000000000", "at most 10000"],
    );
    // Each multiplier within its ceiling, their product not.
    refused(
        &[
            "sample",
            "--backend",
            "cpu",
            "--sampler",
            "hmc",
            "--leapfrog",
            "10000",
            "--chains",
            "4096",
            "--steps",
            "4000000000",
        ],
        &["--chains 4096 x --steps 4000000000 x --leapfrog 10000", "operations", "EBM_WORK_LIMIT"],
    );
    refused(
        &[
            "sample",
            "--backend",
            "cpu",
            "--sampler",
            "hmc",
            "--leapfrog",
            "1000",
            "--warmup",
            "4000000000",
            "--tempering",
            "4",
        ],
        &["--warmup 4000000000 x --leapfrog 1000 x 4 replicas", "the warm-up"],
    );
    let run = dir.join("run");
    let run = run.to_str().unwrap();
    refused(
        &["train", "--data", "ring8", "--run-dir", run, "--steps", "4000000000"],
        &["--steps 4000000000", "--langevin-steps 20", "operations"],
    );
    let digits = env!("CARGO_MANIFEST_DIR").to_string() + "/data/digits";
    refused(
        &["rbm", "train", "--data", &digits, "--run-dir", run, "--cd", "4000000000"],
        &["--cd", "4000000000", "at most 10000"],
    );
    refused(
        &["rbm", "train", "--data", &digits, "--run-dir", run, "--epochs", "4000000000"],
        &["--epochs 4000000000", "operations"],
    );
    refused(
        &["rbm", "eval", "--data", &digits, "--run-dir", run, "--betas", "4000000000000"],
        &["--betas", "at most 10000000"],
    );
    assert!(!std::path::Path::new(run).exists(), "a refused run left {run}");
    // At the ceiling, one short chain runs.
    let (ok, _) = ebm(&[
        "sample",
        "--backend",
        "cpu",
        "--sampler",
        "hmc",
        "--leapfrog",
        "10000",
        "--chains",
        "1",
        "--steps",
        "1",
        "--step-size",
        "0.001",
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[test]
fn frozen_chains_are_nan_in_the_trace_and_left_out_of_the_diagnostics() {
    let dir = scratch("frozen");
    let (diag, trace) = (dir.join("d.json"), dir.join("t.npy"));
    // ULA with a step too large for the double well's steep walls: some chains blow up.
    let (out, _) = ebm(&[
        "sample",
        "--backend",
        "cpu",
        "--energy",
        "double_well",
        "--sampler",
        "ula",
        "--step-size",
        "0.05",
        "--init-std",
        "1.5",
        "--chains",
        "64",
        "--steps",
        "40",
        "--thin",
        "2",
        "--seed",
        "0",
        "--diagnostics",
        diag.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&diag).unwrap()).unwrap();
    let frozen = report["frozen_chains"].as_u64().unwrap() as usize;
    assert!(frozen > 0 && frozen < 64, "the test needs some frozen chains, got {frozen}");
    for d in report["dimensions"].as_array().unwrap() {
        assert_eq!(d["chains_used"].as_u64().unwrap() as usize, 64 - frozen, "{d}");
        assert!(d["sd"].as_f64().unwrap() > 0.0, "{d}");
    }
    assert!(report["energy_trace"].as_array().unwrap().iter().all(|e| e.as_f64().is_some_and(f64::is_finite)));
    let (values, shape) = ebm_gpu::io::npy::read_f32(&trace).unwrap();
    assert_eq!(shape, [20, 64, 2]);
    let nan_chains = (0..64)
        .filter(|&c| (0..20).all(|s| values[(s * 64 + c) * 2..(s * 64 + c) * 2 + 2].iter().all(|v| v.is_nan())))
        .count();
    assert_eq!(nan_chains, frozen, "every frozen chain, and only those, is NaN in the trace");
    assert!(values.iter().filter(|v| v.is_finite()).all(|&v| v != 0.0), "a trace slot left at zero");
}

#[test]
fn numbers_that_f32_loses_are_refused_with_the_users_value() {
    let dir = scratch("numbers");
    let run = dir.join("run");
    let run = run.to_str().unwrap();
    refused(&["sample", "--step-size", "nan"], &["'nan'", "--step-size"]);
    refused(&["sample", "--step-size", "1e39"], &["'1e39'", "--step-size", "range of a 32-bit float"]);
    refused(&["sample", "--init-std", "1e-50"], &["'1e-50'", "--init-std", "rounds to 0"]);
    refused(&["sample", "--sampler", "ula", "--box", "0,1e39"], &["--box", "1e39"]);
    refused(&["sample", "--step-size", "-0.1"], &["--step-size", "-0.1"]);
    refused(&["train", "--data", "ring8", "--run-dir", run, "--max-energy-gap", "nan"], &["--max-energy-gap", "'nan'"]);
    refused(
        &["train", "--data", "ring8", "--run-dir", run, "--max-energy-gap", "0"],
        &["--max-energy-gap 0", "positive"],
    );
    refused(&["train", "--data", "ring8", "--run-dir", run, "--lr", "inf"], &["--lr", "'inf'"]);
    let cpu = |spec: &'static str| ["sample", "--backend", "cpu", "--energy", spec];
    refused(&cpu(r#"{"type": "gaussian", "mean": [0], "std": [1e308]}"#), &["std[0]", "1e308", "improper"]);
    refused(
        &cpu(r#"{"type": "gaussian", "mean": [0], "precision": [[1e-300]]}"#),
        &["precision[0]", "1e-300", "rounds to 0"],
    );
    refused(
        &cpu(r#"{"type": "gaussian_mixture", "weights": [1], "means": [[0]], "stds": [[1e-300]]}"#),
        &["stds[0][0]", "1e-300"],
    );
    refused(&cpu(r#"{"type": "double_well", "barrier": 1e-60}"#), &["barrier", "1e-60"]);
}

#[test]
fn adapter_probing_is_quiet() {
    let out = Command::new(env!("CARGO_BIN_EXE_ebm")).arg("info").env_remove("XDG_RUNTIME_DIR").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("XDG_RUNTIME_DIR"), "probing printed: {err}");
}

/// The fused per-chain kernel of a 512-d energy is refused on a software adapter (lavapipe
/// took minutes to compile it) and an MLP too large for it switches to the tiled kernels.
#[test]
fn oversized_fused_kernels_are_refused_or_tiled() {
    use ebm_gpu::energy::spec::parse_energy;
    use ebm_gpu::sampler::gpu::{FUSED_LIMIT_HARDWARE, FUSED_LIMIT_SOFTWARE, GpuSampler, fused_kernel_size};
    use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};
    let wide = parse_energy(r#"{"type": "double_well", "dim": 512}"#, "test").unwrap();
    assert!(fused_kernel_size(&wide).0 > FUSED_LIMIT_SOFTWARE.0 && fused_kernel_size(&wide).0 < FUSED_LIMIT_HARDWARE.0);
    let Ok(ctx) = ebm_gpu::gpu::GpuContext::new() else {
        assert!(std::env::var_os("CI").is_none(), "CI needs a GPU adapter (lavapipe)");
        eprintln!("SKIPPED: no GPU adapter");
        return;
    };
    let ctx = std::sync::Arc::new(ctx);
    let software = ctx.adapter_info().is_some_and(ebm_gpu::gpu::executor::is_software);
    let init = ebm_gpu::rng::initial_states(1, 0, 32, 512, 1.0);
    let start = Instant::now();
    let result = GpuSampler::new(ctx.clone(), &wide, SamplerConfig::new(SamplerKind::Mala, 0.01, 1), &init);
    if software {
        let e = result.err().expect("a 512-d fused kernel on a software adapter is refused").to_string();
        assert!(e.contains("fused mala kernel") && e.contains("d=512") && e.contains("--backend cpu"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5), "refusing took {:?}", start.elapsed());
    }
    // An MLP whose activations exceed the limit runs on the tiled kernels instead.
    let dir = scratch("kernel");
    let weights = dir.join("w.safetensors");
    let net = ebm_gpu::nn::Network::random_mlp(&[4, 512, 512, 1], ebm_gpu::nn::Activation::Silu, false, 3).unwrap();
    net.as_mlp().unwrap().save(&weights).unwrap();
    let mlp = ebm_gpu::energy::spec::resolve_energy(&format!("mlp:{}", weights.display())).unwrap();
    let limit = if software { FUSED_LIMIT_SOFTWARE } else { FUSED_LIMIT_HARDWARE };
    if fused_kernel_size(&mlp).0 > limit.0 {
        let init = ebm_gpu::rng::initial_states(1, 0, 32, 4, 1.0);
        let mut s = GpuSampler::new(ctx, &mlp, SamplerConfig::new(SamplerKind::Ula, 0.01, 1), &init).unwrap();
        s.run(2).unwrap();
        assert!(s.state().unwrap().iter().all(|v| v.is_finite()));
    }
}

/// Issue 31, root cause 5: a named pipe given as an input, or found in a run dir on resume, is
/// refused naming it (it used to block forever on the open).
#[test]
fn named_pipes_are_refused_naming_the_path_instead_of_blocking() {
    let dir = scratch("fifo");
    let cpu = ["sample", "--backend", "cpu", "--chains", "4", "--steps", "2"];
    let energy = fifo(&dir.join("energy.json"));
    refused(&["sample", "--backend", "cpu", "--energy", &energy], &[&energy, "named pipe", "not a regular file"]);
    let points = fifo(&dir.join("points.csv"));
    refused(&["score", "--energy", "ring8", "--points", &points], &["--points", &points, "named pipe"]);
    let init = fifo(&dir.join("init.npy"));
    refused(&[&cpu[..], &["--init", &init]].concat(), &[&init, "named pipe"]);
    // The run dir's metrics log on resume, for both trainers.
    let run = dir.join("run");
    let train = |extra: &[&str]| -> Vec<String> {
        let base = ["train", "--data", "ring8", "--model", "mlp:2,8,1", "--batch", "16", "--train-size", "200"];
        let rest = ["--buffer-size", "64", "--langevin-steps", "2", "--backend", "cpu"];
        base.iter().chain(&rest).chain(extra).map(|a| a.to_string()).collect()
    };
    let args = train(&["--steps", "2", "--run-dir", run.to_str().unwrap()]);
    succeeds_env(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    std::fs::remove_file(run.join("metrics.csv")).unwrap();
    let metrics = fifo(&run.join("metrics.csv"));
    let args = train(&["--steps", "4", "--resume", run.to_str().unwrap()]);
    refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[&metrics, "named pipe"]);
    let digits = env!("CARGO_MANIFEST_DIR").to_string() + "/data/digits";
    let rbm = dir.join("rbm");
    let rbm_train = |epochs: &'static str, flag: &'static str| {
        [
            "rbm",
            "train",
            "--data",
            digits.as_str(),
            "--hidden",
            "8",
            "--backend",
            "cpu",
            "--epochs",
            epochs,
            flag,
            rbm.to_str().unwrap(),
        ]
    };
    succeeds_env(&rbm_train("1", "--run-dir"), &[]);
    std::fs::remove_file(rbm.join("metrics.csv")).unwrap();
    let metrics = fifo(&rbm.join("metrics.csv"));
    refused(&rbm_train("2", "--resume"), &[&metrics, "named pipe"]);
}

/// Issue 31, root cause 3: every environment variable the engine reads is converted with
/// bounds and checked before the command starts: `EBM_PROGRESS_SECS=inf` (once a panic on a
/// Duration from an unbounded float) means never, a value that is no number of seconds is
/// refused naming the variable before a run dir is made, and `RAYON_NUM_THREADS` is capped.
#[test]
fn environment_variables_are_bounded_and_checked_before_any_file() {
    let dir = scratch("env");
    let sample = ["sample", "--backend", "cpu", "--chains", "4", "--steps", "20"];
    for secs in ["inf", "1e30", "0"] {
        succeeds_env(&sample, &[("EBM_PROGRESS_SECS", secs)]);
    }
    let run = dir.join("run");
    let train = ["train", "--data", "ring8", "--model", "mlp:2,8,1", "--steps", "2", "--backend", "cpu", "--run-dir"];
    let train: Vec<&str> = train.iter().copied().chain([run.to_str().unwrap()]).collect();
    succeeds_env(&train, &[("EBM_PROGRESS_SECS", "inf")]);
    std::fs::remove_dir_all(&run).unwrap();
    for secs in ["abc", "-1", "nan", ""] {
        refused_env(&train, &[("EBM_PROGRESS_SECS", secs)], &["EBM_PROGRESS_SECS", "not a number of seconds"]);
        assert!(!run.exists(), "a refused start (EBM_PROGRESS_SECS={secs}) left {}", run.display());
    }
    refused_env(&train, &[("EBM_MEMORY_BUDGET", "inf")], &["EBM_MEMORY_BUDGET", "not a size"]);
    refused_env(&train, &[("EBM_WORK_LIMIT", "nan")], &["EBM_WORK_LIMIT", "not a number of operations"]);
    refused_env(&train, &[("RAYON_NUM_THREADS", "lots")], &["RAYON_NUM_THREADS=lots", "not a whole number"]);
    assert!(!run.exists(), "a refused start left {}", run.display());
    // Thousands of threads for a 4-chain sample: capped, with a note, and the sample runs.
    let err = succeeds_env(&sample, &[("RAYON_NUM_THREADS", "20000")]);
    assert!(err.contains("RAYON_NUM_THREADS=20000") && err.contains("threads per core"), "{err}");
    let (out, _) = ebm_env(&["info"], &[("RAYON_NUM_THREADS", "20000")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let threads: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("cpu executor: ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no thread count in: {text}"));
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(threads <= 4 * cores, "{threads} threads on {cores} cores");
}

/// Issue 31, root cause 4: work the plans did not see. Nested groups multiply their energy's
/// cost per level; restore and classify had no plan for their loops and bins.
#[test]
fn nested_groups_restore_and_classify_are_in_the_plans() {
    let dir = scratch("plans");
    let mut spec = r#"{"type": "gaussian", "mean": [1, 0], "std": [1, 1]}"#.to_string();
    for _ in 0..4 {
        spec = format!(r#"{{"type": "group", "group": "rotations:1024", "energy": {spec}}}"#);
    }
    let nested = dir.join("nested.json");
    std::fs::write(&nested, &spec).unwrap();
    let nested = nested.to_str().unwrap();
    let want = ["--energy", "2.3e13 operations", "nesting"];
    refused(&["sample", "--backend", "cpu", "--energy", nested, "--chains", "4", "--steps", "10"], &want);
    let points = dir.join("p.csv");
    std::fs::write(&points, "0.5,0.5\n1,1\n").unwrap();
    refused(&["score", "--energy", nested, "--points", points.to_str().unwrap()], &want);
    // Six levels no longer overflow the count (a panic in a debug build, a wrapped number in
    // a release build).
    let deeper = format!(
        r#"{{"type": "group", "group": "rotations:1024", "energy": {{"type": "group", "group": "rotations:1024", "energy": {spec}}}}}"#
    );
    refused(
        &["sample", "--backend", "cpu", "--energy", &deeper, "--chains", "1", "--steps", "1"],
        &["--energy", "operations"],
    );
    // Restore: an MNIST-sized network on the committed MNIST slice.
    let net = dir.join("net.safetensors");
    let (out, _) = ebm(&["init-net", "1x28x28/32k5p2/swish/flatten/1", "--out", net.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let energy = format!("net:{}", net.display());
    let mnist = env!("CARGO_MANIFEST_DIR").to_string() + "/tests/fixtures/mnist";
    let restore = |extra: &[&'static str]| -> Vec<String> {
        let base = ["restore", "--energy", energy.as_str(), "--data", mnist.as_str(), "--backend", "cpu"];
        base.iter().copied().chain(extra.iter().copied()).map(String::from).collect()
    };
    let refuse = |extra: &[&'static str], want: &[&str]| {
        let args = restore(extra);
        refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), want);
    };
    refuse(
        &["--steps", "4294967295"],
        &["--steps 4294967295 x --average 1 x 100 images", "operations", "EBM_WORK_LIMIT"],
    );
    refuse(&["--average", "4294967295"], &["--average", "4294967295", "at most 10000"]);
    let args = restore(&["--steps", "2", "--limit", "2"]);
    let (ok, _) = ebm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // Classify: the bins are in the size plan (an 800 GB allocation aborted the process).
    let classify = ["classify", "--energy", energy.as_str(), "--data", mnist.as_str(), "--backend", "cpu", "--bins"];
    refused(&[&classify[..], &["100000000000"]].concat(), &["--bins 100000000000", "the calibration bins", "TiB"]);
    refused(&[&classify[..], &["0"]].concat(), &["--bins", "at least 1"]);
    // Not a classifier: an analytic energy by kind, a one-output network by its output count.
    refused(&["classify", "--energy", "ring8", "--data", mnist.as_str()], &["classifier network", "gaussian_mixture"]);
}

/// Issue 31, root cause 2: two tensor names for one parameter (`0.weight` and `00.weight` or
/// `+0.weight`) made a network file load differently from run to run (whichever name a hash
/// map kept won); they are refused naming the file and both names, as is a lone index not
/// written as nn.Sequential writes it.
#[test]
fn one_parameter_under_two_tensor_names_is_refused() {
    use ebm_gpu::nn::{Architecture, Network};
    let dir = scratch("names");
    let net = Network::random(&Architecture::parse("2/8/swish/1").unwrap(), 1).unwrap();
    let (tensors, meta) = net.safetensors_parts();
    let path = dir.join("net.safetensors");
    for alias in ["00.weight", "+0.weight", "0000.weight"] {
        let mut with_alias = tensors.clone();
        let (_, shape, values) = with_alias.iter().find(|t| t.0 == "0.weight").unwrap().clone();
        with_alias.push((alias.to_string(), shape, values.iter().map(|v| v + 1.0).collect()));
        ebm_gpu::io::write_safetensors(&path, &with_alias, meta.clone()).unwrap();
        let e = Network::load(&path, None).unwrap_err().to_string();
        assert!(
            e.contains(path.to_str().unwrap()) && e.contains("\"0.weight\"") && e.contains(&format!("\"{alias}\"")),
            "{e}"
        );
        assert!(e.contains("both the weight of layer 0"), "{e}");
        // Alone, the alias is refused too: a name nn.Sequential never writes.
        let renamed: Vec<_> = with_alias.into_iter().filter(|t| t.0 != "0.weight").collect();
        ebm_gpu::io::write_safetensors(&path, &renamed, meta.clone()).unwrap();
        let e = Network::load(&path, None).unwrap_err().to_string();
        assert!(e.contains(&format!("\"{alias}\"")) && e.contains("no sign or leading zeros"), "{e}");
    }
    // The file as written loads.
    net.save(&path).unwrap();
    assert_eq!(Network::load(&path, None).unwrap(), net);
}

/// Issue 31, unclear messages: a safetensors file of another kind used to be refused with its
/// format as Rust Debug text ("format Some(\"ebm-net\")", "format None").
#[test]
fn a_file_of_another_kind_is_refused_in_plain_words() {
    use ebm_gpu::nn::{Architecture, Network};
    let dir = scratch("kind");
    let path = dir.join("net.safetensors");
    Network::random(&Architecture::parse("2/8/swish/1").unwrap(), 1).unwrap().save(&path).unwrap();
    let e = ebm_gpu::train::checkpoint::load(&path).unwrap_err().to_string();
    assert!(e.contains("not an ebm-gpu training checkpoint") && e.contains("format \"ebm-net\""), "{e}");
    assert_eq!(common::debug_text(&e), None, "{e}");
    ebm_gpu::io::write_safetensors(&path, &[("0.weight".into(), vec![1, 2], vec![0.5, 0.5])], Default::default())
        .unwrap();
    let e = ebm_gpu::train::checkpoint::load(&path).unwrap_err().to_string();
    assert!(e.contains("no format"), "{e}");
    assert_eq!(common::debug_text(&e), None, "{e}");
}

/// `rbm sample --out x.NPY` writes the .npy array its extension names, not a PNG under that
/// name: the extension is read case-blind, as the --out check reads it (issue 31, cause 9).
#[test]
fn rbm_sample_reads_the_out_extension_case_blind() {
    let dir = scratch("rbm-npy-case");
    let run = dir.join("run");
    let digits = common::digits_dir();
    let (o, _) = ebm(&[
        "rbm",
        "train",
        "--data",
        common::s(&digits),
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--binarize",
        "threshold",
        "--backend",
        "cpu",
        "--run-dir",
        common::s(&run),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let out = dir.join("x.NPY");
    let (o, _) = ebm(&[
        "rbm",
        "sample",
        "--run-dir",
        common::s(&run),
        "--chains",
        "3",
        "--steps",
        "2",
        "--backend",
        "cpu",
        "--out",
        common::s(&out),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"\x93NUMPY"), "x.NPY is not an .npy file (starts {:?})", &bytes[..8.min(bytes.len())]);
}
