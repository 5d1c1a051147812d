//! Run directories of `ebm train` and `ebm rbm train`: one trainer at a time (a lock naming its
//! holder), resumes that refuse changed data or settings, byte-reproducible checkpoints, no
//! temporary files left by interrupted writes, metrics without duplicate rows, and finished runs
//! that say so.

mod common;

use common::{ebm, s, temp_dir};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The stderr of a run; for a refusal, checked to hold no Rust Debug text, so every refusal
/// of this suite is read as a user reads it.
fn stderr(o: &Output) -> String {
    let e = common::stderr(o);
    if !o.status.success()
        && let Some(debug) = common::debug_text(&e)
    {
        panic!("a refusal holds Rust Debug text {debug:?}: {e}");
    }
    e
}

/// A tiny `ebm train` (2-8-1 network, a few points) with `extra` flags.
fn train(extra: &[&str]) -> Output {
    let mut a = vec![
        "train",
        "--model",
        "mlp:2,8,1",
        "--batch",
        "16",
        "--train-size",
        "200",
        "--buffer-size",
        "64",
        "--langevin-steps",
        "2",
        "--checkpoint-every",
        "2",
        "--figure-every",
        "4",
        "--backend",
        "cpu",
    ];
    a.extend_from_slice(extra);
    ebm(&a)
}

/// A tiny `ebm rbm train` on the committed digits (8 hidden units) with `extra` flags.
fn rbm_train(data: &Path, extra: &[&str]) -> Output {
    let mut a = vec![
        "rbm",
        "train",
        "--data",
        s(data),
        "--hidden",
        "8",
        "--batch",
        "100",
        "--binarize",
        "threshold",
        "--backend",
        "cpu",
    ];
    a.extend_from_slice(extra);
    ebm(&a)
}

/// Every file under `dir` whose name marks it as a temporary of an atomic write.
fn temps(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for d in [dir.to_path_buf(), dir.join("figures")] {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().contains(".tmp-") {
                found.push(e.path());
            }
        }
    }
    found
}

#[test]
fn a_second_trainer_into_a_locked_run_dir_refuses_naming_the_holder() {
    let dir = temp_dir("rundir-lock");
    let run = dir.join("run");
    // A long run holds the lock while the second one tries.
    let mut first = Command::new(env!("CARGO_BIN_EXE_ebm"))
        .args([
            "train",
            "--data",
            "ring8",
            "--model",
            "mlp:2,8,1",
            "--batch",
            "16",
            "--train-size",
            "200",
            "--buffer-size",
            "64",
            "--langevin-steps",
            "2",
            "--steps",
            "1000000",
            "--checkpoint-every",
            "100000",
            "--backend",
            "cpu",
            "--run-dir",
            s(&run),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id().to_string();
    let lock = run.join(".lock");
    let start = Instant::now();
    while std::fs::read_to_string(&lock).unwrap_or_default() != pid {
        assert!(start.elapsed() < Duration::from_secs(60), "the first trainer never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    for second in [
        train(&["--data", "ring8", "--steps", "4", "--run-dir", s(&run)]),
        train(&["--steps", "4", "--resume", s(&run)]),
        train(&["--data", "ring8", "--steps", "4", "--force", "--run-dir", s(&run)]),
    ] {
        let e = stderr(&second);
        assert!(!second.status.success() && e.contains(&format!("pid {pid}")) && e.contains(s(&run)), "{e}");
    }
    assert!(first.try_wait().unwrap().is_none(), "the first trainer was disturbed");
    first.kill().unwrap();
    first.wait().unwrap();
    // The killed trainer's lock is stale: the next run takes it over and says whose it was.
    let o = train(&["--data", "ring8", "--steps", "2", "--force", "--run-dir", s(&run)]);
    let e = stderr(&o);
    assert!(o.status.success() && e.contains(&format!("stale lock of pid {pid}")), "{e}");
    // A clean exit leaves the lock file empty (no stale pid).
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "");
}

#[test]
fn rbm_train_refuses_a_run_dir_locked_by_another_process() {
    let dir = temp_dir("rundir-rbm-lock");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    // This test process holds the lock, as another trainer would.
    let mut held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(run.join(".lock"))
        .unwrap();
    held.try_lock().unwrap();
    std::io::Write::write_all(&mut held, b"4242").unwrap();
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&run)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("pid 4242") && e.contains(s(&run)), "{e}");
    assert!(!run.join("checkpoint.safetensors").exists() && !run.join("metrics.csv").exists());
    held.unlock().unwrap();
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn resume_refuses_a_changed_data_file_and_leaves_run_json_alone() {
    let dir = temp_dir("rundir-data");
    let run = dir.join("run");
    let points = dir.join("points.csv");
    let rows: String = (0..200).map(|i| format!("{},{}\n", (i as f32 * 0.37).sin(), (i as f32 * 0.11).cos())).collect();
    std::fs::write(&points, &rows).unwrap();
    let o = train(&["--data", s(&points), "--steps", "4", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run_json = std::fs::read(run.join("run.json")).unwrap();
    // Same size, one value different: a size check alone would miss it.
    std::fs::write(&points, rows.replacen("0,1\n", "0,2\n", 1)).unwrap();
    let o = train(&["--steps", "6", "--resume", s(&run)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("changed since the run started") && e.contains(s(&points)), "{e}");
    assert_eq!(std::fs::read(run.join("run.json")).unwrap(), run_json, "a refused resume rewrote run.json");
    std::fs::write(&points, &rows).unwrap();
    let o = train(&["--steps", "6", "--resume", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The RBM trainer: the digits file with one pixel changed.
    let digits = dir.join("digits.csv");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(common::digits_dir().join("digits.csv.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    std::fs::write(&digits, &text).unwrap();
    let rbm_run = dir.join("rbm");
    let o = rbm_train(&digits, &["--epochs", "1", "--run-dir", s(&rbm_run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&digits, text.replacen("0,0,5,13", "0,16,5,13", 1)).unwrap();
    let o = rbm_train(&digits, &["--epochs", "2", "--resume", s(&rbm_run)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("changed since the run started"), "{e}");
}

#[test]
fn resume_refuses_a_changed_setting_naming_it_and_both_values() {
    let dir = temp_dir("rundir-settings");
    let run = dir.join("run");
    let o = train(&["--data", "ring8", "--steps", "4", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (flag, value, was) in
        [("--batch", "32", "16"), ("--lr", "0.1", "0.005"), ("--langevin-steps", "7", "2"), ("--seed", "3", "0")]
    {
        let o = ebm(&["train", "--steps", "6", "--backend", "cpu", "--resume", s(&run), flag, value]);
        let e = stderr(&o);
        assert!(
            !o.status.success() && e.contains(&format!("{flag} was {was} in this run, not {value}")),
            "{flag}: {e}"
        );
    }
    // Allowed: more steps, the same values spelled out, and a new lr when asked for explicitly.
    let o = train(&["--steps", "6", "--resume", s(&run), "--lr", "0.02", "--change-lr"]);
    assert!(o.status.success() && stderr(&o).contains("learning rate 0.005 -> 0.02"), "{}", stderr(&o));

    let rbm_run = dir.join("rbm");
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&rbm_run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (flag, value, was) in
        [("--hidden", "16", "8"), ("--momentum", "0.9", "0.5"), ("--binarize", "stochastic", "threshold")]
    {
        // Without --binarize: a resume loads the data as the run did.
        let digits = common::digits_dir();
        let o = ebm(&[
            "rbm",
            "train",
            "--data",
            s(&digits),
            "--epochs",
            "2",
            "--backend",
            "cpu",
            "--resume",
            s(&rbm_run),
            flag,
            value,
        ]);
        let e = stderr(&o);
        assert!(
            !o.status.success() && e.contains(&format!("{flag} was {was} in this run, not {value}")),
            "{flag}: {e}"
        );
    }
    let o = rbm_train(&common::digits_dir(), &["--epochs", "2", "--resume", s(&rbm_run), "--pcd", "1"]);
    assert!(!o.status.success() && stderr(&o).contains("the method was CD-1 in this run, not PCD-1"), "{}", stderr(&o));
    let digits = common::digits_dir();
    let o = ebm(&["rbm", "train", "--data", s(&digits), "--epochs", "2", "--backend", "cpu", "--resume", s(&rbm_run)]);
    assert!(o.status.success() && stderr(&o).contains("resuming after epoch 1"), "{}", stderr(&o));
}

#[test]
fn identical_runs_give_identical_checkpoint_bytes() {
    let dir = temp_dir("rundir-bytes");
    let (a, b) = (dir.join("a"), dir.join("b"));
    for run in [&a, &b] {
        let o = train(&["--data", "ring8", "--steps", "4", "--run-dir", s(run)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--pcd", "1", "--run-dir", s(&run.join("rbm"))]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for file in ["checkpoint.safetensors", "rbm/checkpoint.safetensors"] {
        let (x, y) = (std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap());
        assert!(x == y, "{file}: two identical runs wrote different bytes");
    }
}

#[test]
fn temporaries_of_an_interrupted_write_are_gone_after_the_next_run() {
    let dir = temp_dir("rundir-temps");
    let run = dir.join("run");
    let o = train(&["--data", "ring8", "--steps", "4", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // What a kill in the middle of write_atomic leaves (a process that is gone).
    std::fs::write(run.join(".checkpoint.safetensors.tmp-999999-0"), b"half a checkpoint").unwrap();
    std::fs::write(run.join("figures/.energy_000006.png.tmp-999999-1"), b"half a figure").unwrap();
    let o = train(&["--steps", "6", "--resume", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(temps(&run), Vec::<PathBuf>::new());

    let rbm_run = dir.join("rbm");
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&rbm_run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(rbm_run.join(".metrics.csv.tmp-999999-0"), b"epoch,").unwrap();
    let o = rbm_train(&common::digits_dir(), &["--epochs", "2", "--resume", s(&rbm_run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(temps(&rbm_run), Vec::<PathBuf>::new());
}

#[test]
fn rbm_resume_leaves_no_duplicate_epochs_in_metrics() {
    let dir = temp_dir("rundir-metrics");
    let run = dir.join("run");
    let o = rbm_train(&common::digits_dir(), &["--epochs", "2", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A kill after epoch 3's metrics row but before its checkpoint.
    let path = run.join("metrics.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("3,0.1,1.0,-20.0,cpu\n");
    std::fs::write(&path, text).unwrap();
    let o = rbm_train(&common::digits_dir(), &["--epochs", "4", "--resume", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let epochs: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(epochs, ["1", "2", "3", "4"]);
}

#[test]
fn a_finished_run_resumes_as_complete_and_restores_its_final_figure() {
    let dir = temp_dir("rundir-finished");
    let run = dir.join("run");
    let o = train(&["--data", "ring8", "--steps", "4", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let figure = run.join("figures/energy_000004.png");
    std::fs::remove_file(&figure).unwrap();
    let ckpt = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let o = train(&["--resume", s(&run)]);
    assert!(o.status.success() && stderr(&o).contains("is complete at step 4"), "{}", stderr(&o));
    assert!(figure.exists(), "the final figure was not written again");
    assert_eq!(std::fs::read(run.join("checkpoint.safetensors")).unwrap(), ckpt);
    let o = train(&["--resume", s(&run), "--steps", "2"]);
    assert!(!o.status.success() && stderr(&o).contains("--steps 2 is below the checkpoint's step 4"), "{}", stderr(&o));

    let rbm_run = dir.join("rbm");
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&rbm_run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(rbm_run.join("filters.png")).unwrap();
    let o = rbm_train(&common::digits_dir(), &["--resume", s(&rbm_run)]);
    assert!(o.status.success() && stderr(&o).contains("is complete at epoch 1"), "{}", stderr(&o));
    assert!(rbm_run.join("filters.png").exists());
}

/// `ebm` run in `cwd`, for relative paths.
fn ebm_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebm")).current_dir(cwd).args(args).output().expect("run ebm")
}

#[test]
fn resume_compares_data_files_by_canonical_path() {
    let dir = temp_dir("rundir-canonical");
    let rows: String = (0..200).map(|i| format!("{},{}\n", (i as f32 * 0.37).sin(), (i as f32 * 0.11).cos())).collect();
    std::fs::write(dir.join("p.csv"), &rows).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    // Same contents under another name: only the path tells them apart.
    std::fs::write(dir.join("q.csv"), &rows).unwrap();
    let tiny =
        ["--model", "mlp:2,8,1", "--batch", "16", "--buffer-size", "64", "--langevin-steps", "2", "--backend", "cpu"];
    let args =
        |extra: &[&'static str]| -> Vec<&'static str> { ["train"].iter().chain(&tiny).chain(extra).copied().collect() };
    let o = ebm_in(&dir, &args(&["--data", "p.csv", "--steps", "2", "--run-dir", "run"]));
    assert!(o.status.success(), "{}", stderr(&o));
    for same in ["./p.csv", "sub/../p.csv"] {
        let o = ebm_in(&dir, &args(&["--data", same, "--steps", "4", "--resume", "run"]));
        assert!(o.status.success(), "--data {same} was refused: {}", stderr(&o));
    }
    let o = ebm_in(&dir, &args(&["--data", "q.csv", "--steps", "6", "--resume", "run"]));
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("--data was p.csv in this run, not q.csv"), "{e}");
    // The run dir named twice, two spellings of one directory (issue 31, 11: compared as typed).
    let o = ebm_in(&dir, &args(&["--steps", "6", "--run-dir", "./run", "--resume", "sub/../run"]));
    assert!(o.status.success(), "--run-dir ./run --resume sub/../run was refused: {}", stderr(&o));
    let o = ebm_in(&dir, &args(&["--steps", "8", "--run-dir", "sub", "--resume", "run"]));
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("--run-dir sub and --resume run name different runs"), "{e}");

    // The RBM trainer, from a copy of the committed digits.
    std::fs::copy(common::digits_dir().join("digits.csv.gz"), dir.join("digits.csv.gz")).unwrap();
    let rbm = |data: &'static str, extra: &[&'static str]| -> Vec<&'static str> {
        ["rbm", "train", "--data", data, "--hidden", "8", "--binarize", "threshold", "--backend", "cpu"]
            .iter()
            .chain(extra)
            .copied()
            .collect()
    };
    let o = ebm_in(&dir, &rbm("digits.csv.gz", &["--epochs", "1", "--run-dir", "rbm"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ebm_in(&dir, &rbm("./digits.csv.gz", &["--epochs", "2", "--resume", "rbm"]));
    assert!(o.status.success(), "--data ./digits.csv.gz was refused: {}", stderr(&o));
}

#[test]
fn an_oversized_run_json_is_refused_without_reading_it() {
    let dir = temp_dir("rundir-json");
    let run = dir.join("run");
    let o = train(&["--data", "ring8", "--steps", "2", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A sparse 100 MiB run.json: read whole, it would be 100 MiB of memory; the size plan's
    // reader refuses it from its size.
    std::fs::File::options().write(true).open(run.join("run.json")).unwrap().set_len(100 << 20).unwrap();
    for args in [vec!["eval", "--run-dir", s(&run)], vec!["train", "--steps", "4", "--resume", s(&run)]] {
        let o = ebm(&args);
        let e = stderr(&o);
        assert!(
            !o.status.success() && e.contains("run description of 100.00 MiB is larger than the 64.00 MiB allowed"),
            "{args:?}: {e}"
        );
    }
}

/// Issue 31, root cause 1: a run dir's `.lock` that is a symbolic link used to be followed,
/// truncated and written with the pid: `.lock -> the --data file` left the data at 0 bytes.
/// A link to an input is refused by the collision check, any other link (or one to nothing)
/// by the lock's open, for both trainers; the link's target is never touched.
#[test]
fn a_lock_that_is_a_link_is_refused_and_its_target_left_alone() {
    let dir = temp_dir("rundir-lock-link");
    let points = dir.join("points.csv");
    let rows: String = (0..200).map(|i| format!("{},{}\n", (i as f32 * 0.37).sin(), (i as f32 * 0.11).cos())).collect();
    std::fs::write(&points, &rows).unwrap();
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "keep me").unwrap();
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let lock = run.join(".lock");
    let link = |target: &Path| {
        let _ = std::fs::remove_file(&lock);
        std::os::unix::fs::symlink(target, &lock).unwrap();
    };
    link(&points);
    let o = train(&["--data", s(&points), "--steps", "2", "--run-dir", s(&run)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains(".lock") && e.contains("--data"), "{e}");
    assert_eq!(std::fs::read_to_string(&points).unwrap(), rows, "the data file was changed");
    let missing = dir.join("made-by-the-lock.txt");
    for target in [&notes, &missing] {
        link(target);
        let o = train(&["--data", s(&points), "--steps", "2", "--run-dir", s(&run)]);
        let e = stderr(&o);
        assert!(!o.status.success() && e.contains(s(&lock)) && e.contains("symbolic link"), "{e}");
        let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&run)]);
        let e = stderr(&o);
        assert!(!o.status.success() && e.contains(s(&lock)) && e.contains("symbolic link"), "{e}");
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me");
    assert!(!missing.exists(), "the lock created its link's target");
    assert!(!run.join("run.json").exists(), "a refused start wrote run.json");
    // A regular lock file (the link removed) trains.
    std::fs::remove_file(&lock).unwrap();
    let o = train(&["--data", s(&points), "--steps", "2", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The run's log, appended to on resume, is not followed through a link either.
    let log = run.join("train.log");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&notes, &log).unwrap();
    let o = train(&["--data", s(&points), "--steps", "4", "--resume", s(&run)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains(s(&log)) && e.contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me");
}

/// Issue 31, unclear messages: a resume refused over a setting names both values as the flag
/// spells them ("--limit was None in this run, not Some(500)" was Rust Debug text).
#[test]
fn resume_refusals_spell_values_as_the_flags_do() {
    let dir = temp_dir("rundir-spelling");
    let run = dir.join("rbm");
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rbm_train(&common::digits_dir(), &["--epochs", "2", "--limit", "500", "--resume", s(&run)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("--limit was unset (all rows) in this run, not 500"), "{e}");
    let o = rbm_train(&common::digits_dir(), &["--epochs", "2", "--lr-schedule", "linear:0.1", "--resume", s(&run)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("--lr-schedule was constant in this run, not linear:0.1"), "{e}");
}

/// A start killed before its first checkpoint (run.json and a metrics header, no checkpoint)
/// is recognised as never started: a fresh start replaces it without --force, and --resume
/// says what happened instead of failing on the missing checkpoint (issue 31, cause 8).
#[test]
fn a_start_killed_before_its_first_checkpoint_starts_afresh() {
    let dir = temp_dir("rundir-never-started");
    let run = dir.join("run");
    let args = ["--data", "ring8", "--steps", "4", "--run-dir", s(&run)];
    let o = train(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // What a kill in the first milliseconds leaves.
    for f in ["checkpoint.safetensors", "train.log"] {
        let _ = std::fs::remove_file(run.join(f));
    }
    let _ = std::fs::remove_dir_all(run.join("figures"));
    let header = std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().next().unwrap().to_string();
    std::fs::write(run.join("metrics.csv"), format!("{header}\n")).unwrap();
    let o = train(&["--resume", s(&run)]);
    assert!(!o.status.success(), "resumed a run without a checkpoint");
    assert!(stderr(&o).contains("never reached its first checkpoint"), "{}", stderr(&o));
    let o = train(&args);
    assert!(o.status.success(), "a never-started run dir refused a fresh start: {}", stderr(&o));
    assert!(run.join("checkpoint.safetensors").exists());
    // A run that trained keeps its protection when only its checkpoint is gone.
    std::fs::remove_file(run.join("checkpoint.safetensors")).unwrap();
    let o = train(&args);
    assert!(stderr(&o).contains("already holds a run"), "{}", stderr(&o));
}

/// A fresh start refused after its inputs are read leaves no run dir behind: JEM labels that
/// the network cannot hold are refused before the first file (issue 31, cause 8).
#[test]
fn a_failed_jem_start_leaves_no_run_dir() {
    let dir = temp_dir("rundir-jem-labels");
    let run = dir.join("run");
    let mnist = common::mnist_fixture();
    // Two outputs for MNIST's ten classes.
    let o = ebm(&[
        "train",
        "--data",
        s(&mnist),
        "--model",
        "1x28x28/flatten/2/head:lse",
        "--loss",
        "jem",
        "--subset",
        "64",
        "--steps",
        "2",
        "--batch",
        "16",
        "--langevin-steps",
        "1",
        "--buffer-size",
        "32",
        "--backend",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("label") && e.contains("2 outputs"), "{e}");
    assert!(!run.exists(), "the failed start left {}", run.display());
}

/// An `rbm train` start that fails after writing run.json and its first metrics (here: the
/// filters figure cannot be written) takes those files with it, so the next start needs no
/// --force (issue 31, cause 8).
#[test]
fn a_failed_rbm_start_leaves_no_run_files() {
    let dir = temp_dir("rundir-rbm-failed-start");
    let run = dir.join("run");
    std::fs::create_dir_all(run.join("filters.png")).unwrap();
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&run)]);
    assert!(!o.status.success(), "wrote filters.png over a directory");
    for f in ["run.json", "metrics.csv", "checkpoint.safetensors"] {
        assert!(!run.join(f).exists(), "the failed start left {f}: {}", stderr(&o));
    }
}

/// run.json and the checkpoint of one run dir must describe one run (issue 31, cause 7): a
/// run.json edited to another model, or a checkpoint of another run (other optimizer) copied
/// in, is refused on resume naming run.json and the field, and nothing is rewritten.
#[test]
fn resume_refuses_run_files_of_different_runs() {
    let dir = temp_dir("rundir-parts");
    let (a, b) = (dir.join("a"), dir.join("b"));
    let o = train(&["--data", "ring8", "--steps", "4", "--run-dir", s(&a)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train(&["--data", "ring8", "--steps", "4", "--optimizer", "sgd", "--run-dir", s(&b)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json = a.join("run.json");
    let original = std::fs::read_to_string(&json).unwrap();
    let mut info: serde_json::Value = serde_json::from_str(&original).unwrap();
    let model = info["model"].as_str().unwrap().to_string();
    assert!(model.contains("/8/"), "{model}");
    info["model"] = model.replace("/8/", "/16/").into();
    let edited = serde_json::to_string(&info).unwrap();
    std::fs::write(&json, &edited).unwrap();
    let o = train(&["--steps", "8", "--resume", s(&a)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("run.json records model") && e.contains("/16/"), "{e}");
    assert_eq!(std::fs::read_to_string(&json).unwrap(), edited, "a refused resume rewrote run.json");
    std::fs::write(&json, &original).unwrap();
    std::fs::copy(b.join("checkpoint.safetensors"), a.join("checkpoint.safetensors")).unwrap();
    let o = train(&["--steps", "8", "--resume", s(&a)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("optimizer (--optimizer) adam") && e.contains("sgd"), "{e}");
}

/// An RBM run without its run.json does not resume (on whatever --data is given) (issue 31,
/// cause 7).
#[test]
fn an_rbm_run_without_run_json_does_not_resume() {
    let dir = temp_dir("rundir-rbm-no-json");
    let run = dir.join("run");
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(run.join("run.json")).unwrap();
    let o = rbm_train(&common::digits_dir(), &["--epochs", "2", "--resume", s(&run)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("has no run.json"), "{e}");
    assert!(!run.join("run.json").exists(), "a refused resume wrote run.json");
}

/// A run dir holding the other kind's run (issue 31, cause 8): `train --force` into an RBM
/// run and `rbm train --force` into a train run are refused naming the other command, and
/// neither run's files change.
#[test]
fn force_does_not_replace_a_run_of_another_kind() {
    let dir = temp_dir("rundir-other-kind");
    let (rb, tr) = (dir.join("rb"), dir.join("tr"));
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--run-dir", s(&rb)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train(&["--data", "ring8", "--steps", "2", "--run-dir", s(&tr)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let snapshot = |d: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && !p.ends_with(".lock"))
            .collect();
        files.sort();
        files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
    };
    let (rb_before, tr_before) = (snapshot(&rb), snapshot(&tr));
    let o = train(&["--data", "ring8", "--steps", "2", "--force", "--run-dir", s(&rb)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("holds an `ebm rbm train` run"), "{e}");
    let o = rbm_train(&common::digits_dir(), &["--epochs", "1", "--force", "--run-dir", s(&tr)]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("holds an `ebm train` run"), "{e}");
    assert!(snapshot(&rb) == rb_before && snapshot(&tr) == tr_before, "a refused start changed a run's files");
}
