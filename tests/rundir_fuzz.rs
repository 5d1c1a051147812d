//! A seeded mutation fuzzer for what a run leaves behind and a later command trusts (issue 31):
//! the files of `ebm train` and `ebm rbm train` run directories (run.json, metrics.csv, the
//! checkpoint's header, .lock) before a resume, and the shard files of an `rbm eval --ais-join`.
//! Each mutated case must end one of two ways: refused, with a message and no Rust panic or
//! Debug text, leaving the run's files as they were; or accepted with the result an unmutated
//! run gives (the same checkpoint bytes, the same new metrics rows, the same log Z report). A
//! mutated file that silently changes the result fails the test, and so does a hang.
//!
//! `EBM_RUNDIR_FUZZ_CASES=400 cargo test --release --test rundir_fuzz` runs longer (the default
//! is a few dozen cases per target); `EBM_FUZZ_SEED` changes the seed.

mod common;

use common::{s, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cases() -> usize {
    std::env::var("EBM_RUNDIR_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

/// splitmix64, seeded from EBM_FUZZ_SEED (default 1).
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Self {
        let seed = std::env::var("EBM_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1u64);
        Rng(seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `bytes` within `range` (the part of the file worth mutating): a bit
/// flipped, a byte deleted or inserted, a digit changed, the file cut short, a line repeated
/// or removed. Returns the mutated bytes and what was done.
fn mutate(bytes: &[u8], range: std::ops::Range<usize>, rng: &mut Rng) -> (Vec<u8>, String) {
    if bytes.is_empty() {
        // An empty file (a released lock): something a lock holder or a stray write leaves.
        let text = ["1", "0", "4294967295", "-1", "999999999999", "pid", "1\n2\n", "\0"][rng.below(8)];
        return (text.as_bytes().to_vec(), format!("{text:?} written"));
    }
    let mut out = bytes.to_vec();
    let at = range.start + rng.below(range.len());
    let lines: Vec<usize> = std::iter::once(0)
        .chain(bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1))
        .filter(|&i| i < bytes.len())
        .collect();
    let line_end =
        |start: usize| bytes[start..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| start + p + 1);
    match rng.below(7) {
        0 => {
            let bit = rng.below(8);
            out[at] ^= 1 << bit;
            (out, format!("bit {bit} of byte {at} flipped"))
        }
        1 => {
            out.remove(at);
            (out, format!("byte {at} deleted"))
        }
        2 => {
            let b = b" ,.0123456789-e\"{}[]:\nx"[rng.below(23)];
            out.insert(at, b);
            (out, format!("{:?} inserted at {at}", b as char))
        }
        3 => {
            let digits: Vec<usize> = range.clone().filter(|&i| bytes[i].is_ascii_digit()).collect();
            let Some(&i) = digits.get(rng.below(digits.len())) else { return (out, "unchanged".into()) };
            out[i] = b'0' + ((bytes[i] - b'0' + 1 + rng.below(9) as u8) % 10);
            let what = format!("digit at {i} changed to {}", out[i] as char);
            (out, what)
        }
        4 => {
            out.truncate(at);
            (out, format!("cut at {at}"))
        }
        5 if lines.len() > 1 => {
            let start = lines[rng.below(lines.len())];
            let line = bytes[start..line_end(start)].to_vec();
            out.splice(start..start, line);
            (out, format!("line at {start} repeated"))
        }
        _ if lines.len() > 1 => {
            let start = lines[rng.below(lines.len())];
            out.drain(start..line_end(start));
            (out, format!("line at {start} removed"))
        }
        _ => {
            out.remove(at);
            (out, format!("byte {at} deleted"))
        }
    }
}

/// Runs `ebm args`, killed (and the test failed) after 120 s.
fn ebm(args: &[&str], case: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ebm"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{case}: still running after 120 s: ebm {}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Whether the case was accepted; a refusal must be an ordinary one (exit status 1 or 2, a
/// message, no panic, no Debug text).
fn accepted(o: &Output, case: &str) -> bool {
    let e = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        return true;
    }
    let code = o.status.code();
    assert!(matches!(code, Some(1) | Some(2)), "{case}: ended by {:?}: {e}", o.status);
    assert!(!e.contains("panicked"), "{case}: a panic: {e}");
    assert!(common::debug_text(&e).is_none(), "{case}: Debug text in: {e}");
    assert!(e.lines().any(|l| l.starts_with("Error") || l.starts_with("error")), "{case}: no message: {e}");
    false
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The part of a file worth mutating: a safetensors file's JSON header, all of anything else.
fn mutable_range(name: &str, bytes: &[u8]) -> std::ops::Range<usize> {
    if name.ends_with(".safetensors") {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        return 0..(8 + n).min(bytes.len());
    }
    0..bytes.len().max(1)
}

/// Metrics rows after step `from`, without the columns of wall-clock time and executor (which
/// no two runs share).
fn new_rows(dir: &Path, metrics: &str, from: u32) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(metrics)).unwrap_or_default();
    let header: Vec<&str> = text.lines().next().unwrap_or_default().split(',').collect();
    let keep = |i: usize| !matches!(header.get(i), Some(&"seconds") | Some(&"wall_seconds") | Some(&"executor"));
    text.lines()
        .skip(1)
        .filter(|l| l.split(',').next().and_then(|v| v.parse::<u32>().ok()).is_some_and(|k| k > from))
        .map(|l| l.split(',').enumerate().filter(|(i, _)| keep(*i)).map(|(_, v)| v).collect::<Vec<_>>().join(","))
        .collect()
}

/// Mutates each of `files` of the run in `base` (which stopped at step/epoch `from`), resumes
/// a copy with `resume` (the copy's path appended) and judges each case against the
/// unmutated resume.
fn fuzz_run_dir(
    tag: &str,
    base: &Path,
    files: &[&str],
    metrics: &str,
    from: u32,
    resume: &dyn Fn(&Path) -> Vec<String>,
) {
    let work = base.parent().unwrap();
    let reference = work.join(format!("{tag}-reference"));
    copy_dir(base, &reference);
    let args = resume(&reference);
    let o = ebm(&args.iter().map(String::as_str).collect::<Vec<_>>(), "reference");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let checkpoint = std::fs::read(reference.join("checkpoint.safetensors")).unwrap();
    let rows = new_rows(&reference, metrics, from);
    assert!(!rows.is_empty());
    let mut rng = Rng::new(tag.len() as u64);
    let (mut refused, mut same) = (0, 0);
    for k in 0..cases() {
        let name = files[k % files.len()];
        let case_dir = work.join(format!("{tag}-case"));
        copy_dir(base, &case_dir);
        let path = case_dir.join(name);
        let original = std::fs::read(&path).unwrap_or_default();
        let (bytes, what) = mutate(&original, mutable_range(name, &original), &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        let case = format!("{tag} case {k}: {name}, {what}");
        let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(case_dir.join(f)).unwrap_or_default()).collect();
        let args = resume(&case_dir);
        let o = ebm(&args.iter().map(String::as_str).collect::<Vec<_>>(), &case);
        if accepted(&o, &case) {
            same += 1;
            let got = std::fs::read(case_dir.join("checkpoint.safetensors")).unwrap();
            assert!(got == checkpoint, "{case}: accepted, and the checkpoint differs from an unmutated resume's");
            assert_eq!(new_rows(&case_dir, metrics, from), rows, "{case}: accepted, and the new metrics rows differ");
        } else {
            refused += 1;
            for (f, b) in files.iter().zip(&before).filter(|(f, _)| **f != ".lock") {
                let now = std::fs::read(case_dir.join(f)).unwrap_or_default();
                assert!(&now == b, "{case}: refused, and {f} was rewritten");
            }
        }
    }
    eprintln!("{tag}: {} cases, {refused} refused, {same} accepted with the unmutated result", cases());
}

#[test]
fn mutated_train_run_dirs_resume_identically_or_are_refused() {
    let dir = temp_dir("fuzz-train-rundir");
    let base = dir.join("base");
    let tiny = ["--model", "mlp:2,8,1", "--batch", "16", "--train-size", "200", "--buffer-size", "64"];
    let more = ["--langevin-steps", "2", "--checkpoint-every", "2", "--figure-every", "100", "--backend", "cpu"];
    let mut args = vec!["train", "--data", "ring8", "--steps", "4", "--run-dir", s(&base)];
    args.extend_from_slice(&tiny);
    args.extend_from_slice(&more);
    let o = ebm(&args, "base run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(base.join(".lock"), b"").unwrap();
    let resume = |d: &Path| -> Vec<String> {
        let mut a: Vec<String> = ["train", "--steps", "8", "--resume", s(d)].map(String::from).to_vec();
        a.extend(tiny.iter().chain(&more).map(|v| v.to_string()));
        a
    };
    let files = ["run.json", "metrics.csv", "checkpoint.safetensors", ".lock"];
    fuzz_run_dir("train", &base, &files, "metrics.csv", 4, &resume);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mutated_rbm_run_dirs_resume_identically_or_are_refused() {
    let dir = temp_dir("fuzz-rbm-rundir");
    let base = dir.join("base");
    let digits = common::digits_dir();
    let train = |epochs: &str, run: &str, d: &Path| -> Vec<String> {
        let a = ["rbm", "train", "--data", s(&digits), "--hidden", "8", "--batch", "100", "--binarize", "threshold"];
        let mut a: Vec<String> = a.map(String::from).to_vec();
        a.extend(["--backend", "cpu", "--epochs", epochs, run, s(d)].map(String::from));
        a
    };
    let args = train("1", "--run-dir", &base);
    let o = ebm(&args.iter().map(String::as_str).collect::<Vec<_>>(), "base run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let resume = |d: &Path| train("2", "--resume", d);
    let files = ["run.json", "metrics.csv", "checkpoint.safetensors"];
    fuzz_run_dir("rbm", &base, &files, "metrics.csv", 1, &resume);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Shard files of `rbm eval --ais-shard`, mutated one at a time: the join refuses naming the
/// file, or reports what the unmutated join reports.
#[test]
fn mutated_ais_shards_join_identically_or_are_refused() {
    let dir = temp_dir("fuzz-ais-join");
    let run = dir.join("run");
    let digits = common::digits_dir();
    let o = ebm(
        &["rbm", "train", "--data", s(&digits), "--binarize", "threshold", "--hidden", "24", "--epochs", "1"]
            .into_iter()
            .chain(["--backend", "cpu", "--run-dir", s(&run)])
            .collect::<Vec<_>>(),
        "rbm run",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eval = |extra: &[&str], case: &str| {
        let mut a = vec!["rbm", "eval", "--run-dir", s(&run), "--data", s(&digits), "--binarize", "threshold"];
        a.extend_from_slice(&["--backend", "cpu", "--ais-runs", "12", "--betas", "200", "--reverse-gibbs", "20"]);
        a.extend_from_slice(extra);
        ebm(&a, case)
    };
    let files: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("shard{i}.json"))).collect();
    for (i, f) in files.iter().enumerate() {
        let o = eval(&["--ais-shard", &format!("{i}/3"), "--json", s(f)], "shard");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let list = files.iter().map(|f| s(f)).collect::<Vec<_>>().join(",");
    let report = |o: &Output| -> Vec<String> {
        let out = String::from_utf8_lossy(&o.stdout);
        out.lines().filter(|l| !l.starts_with("executor:")).map(str::to_string).collect()
    };
    let whole = eval(&["--ais-join", &list], "unmutated join");
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut rng = Rng::new(3);
    let (mut refused, mut same) = (0, 0);
    for k in 0..cases() {
        let j = k % files.len();
        let (bytes, what) = mutate(&originals[j], 0..originals[j].len(), &mut rng);
        std::fs::write(&files[j], &bytes).unwrap();
        let case = format!("join case {k}: shard{j}.json, {what}");
        let o = eval(&["--ais-join", &list], &case);
        if accepted(&o, &case) {
            same += 1;
            assert_eq!(report(&o), report(&whole), "{case}: accepted with another report");
        } else {
            refused += 1;
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(e.contains(&format!("shard{j}.json")) || e.contains("a shard is missing"), "{case}: {e}");
        }
        std::fs::write(&files[j], &originals[j]).unwrap();
    }
    eprintln!("ais join: {} cases, {refused} refused, {same} accepted with the unmutated report", cases());
    let _ = std::fs::remove_dir_all(&dir);
}
