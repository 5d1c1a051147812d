//! What `ebm train` and `ebm rbm train` share about run directories: the exclusive lock, the
//! clean-up of temporary files an interrupted write left, the fingerprint of the training data,
//! the run description (`run.json`), read with a bound, and the rule that a resume may change
//! only the settings it says it allows.

use anyhow::{Context, bail};
use std::collections::BTreeSet;
use std::fmt::Display;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::outputs::LOCK_FILE;

/// An exclusive advisory lock on a run directory (`flock` on Unix, `LockFileEx` on Windows),
/// held until this value is dropped or the process ends, however it ends: the operating system
/// releases it, so a lock file left by a killed process is stale by construction and is taken
/// over by the next run.
pub struct RunLock {
    file: File,
}

impl RunLock {
    /// Locks `dir` (created with its parents if missing), or refuses naming the directory and
    /// the pid of the process that holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating run dir {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        // The lock is truncated and written: a link (say to the --data file) would destroy its
        // target, and a named pipe would block, so only a regular file in the run dir will do.
        let mut file = crate::plan::open_regular(
            &path,
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false),
            crate::plan::Links::Refuse,
        )
        .with_context(|| format!("the lock file of run dir {} (remove it to train here)", dir.display()))?;
        let mut holder = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                read_pid(&mut file, &mut holder);
                let pid = holder.trim();
                let pid = if pid.is_empty() { "unknown".to_string() } else { pid.to_string() };
                bail!(
                    "run dir {} is in use by another ebm process (pid {pid}); wait for it to finish, \
                     or stop it, before training into this directory",
                    dir.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        read_pid(&mut file, &mut holder);
        if !holder.trim().is_empty() {
            // A clean exit empties the file, so a pid here is a process that died holding it.
            eprintln!("note: taking over the stale lock of pid {} in {}", holder.trim(), dir.display());
        }
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| write!(file, "{}", std::process::id()))
            .and_then(|_| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self { file })
    }
}

/// The pid in a lock file, read with a bound: the file is ours to write, but anything may have
/// been put there.
fn read_pid(file: &mut File, holder: &mut String) {
    let _ = Read::by_ref(file).take(32).read_to_string(holder);
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Emptied, not removed: removing would let a third process lock a new file while a
        // second still waits on this one.
        let _ = self.file.set_len(0);
    }
}

/// Removes the temporary files (`.NAME.tmp-PID-N`, see `crate::io::write_atomic`) that writes
/// interrupted by a kill or a crash left in `dir` and its `figures/`. Only called with the run's
/// lock held, so no live writer owns them. Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let mut removed = 0;
    for d in [dir.to_path_buf(), dir.join("figures")] {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(".tmp-") && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        eprintln!("removed {removed} temporary file(s) left by an interrupted write in {}", dir.display());
    }
    removed
}

/// Refuses a run dir holding a run of another kind, found by `marks` (files only that kind
/// writes), naming it: a start, `--force` or `--resume` acts on a run of its own kind only, so
/// the other run's files are never mixed into this one or left beside it.
pub fn refuse_other_kind(dir: &Path, marks: &[&str], other: &str) -> anyhow::Result<()> {
    if let Some(mark) = marks.iter().find(|m| dir.join(m).exists()) {
        anyhow::bail!(
            "{} holds an `{other}` run (its {mark}); this command starts, replaces (--force) or continues only a run of its own kind: remove that directory or choose another --run-dir",
            dir.display()
        );
    }
    Ok(())
}

/// The fingerprint resume compares: 64-bit FNV-1a over the training values exactly as loaded
/// (after generation, decoding, --limit and binarisation), as 16 hex digits. Any change of the
/// file's contents, or of a setting that changes what is loaded, changes it.
pub fn data_hash(values: &[f32]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// A run description (`run.json`) read through the size plan's bounded reader (at most
/// [`crate::plan::JSON_LIMIT`]), so a run dir whose run.json was replaced by something huge is
/// refused after a bounded read; `None` when there is none.
pub fn read_run_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    read_json(path, "run description")
}

/// A JSON file of ours (`what` names it in messages) read as [`read_run_json`] reads run.json:
/// a regular file, at most [`crate::plan::JSON_LIMIT`]; `None` when there is none.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<Option<T>> {
    use crate::plan;
    let limit = plan::Limit::at_most(plan::JSON_LIMIT, "the most a run description may hold")?;
    let file = match plan::open_file(path, what, &limit) {
        Ok(f) => f,
        Err(crate::Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bytes = plan::read_checked(file, path, what, &limit, &mut plan::undeclared)?;
    let value = serde_json::from_slice(&bytes).with_context(|| format!("{}: not a valid {what}", path.display()))?;
    Ok(Some(value))
}

/// The canonical path of a data argument that names an existing file or folder (a toy dataset's
/// name names none), for run.json: resume compares files by it, not by the text typed.
pub fn data_file(arg: &Path) -> Option<PathBuf> {
    arg.exists().then(|| crate::cli::outputs::canonical(arg))
}

/// The flags the user gave on the command line (as `--name`), as opposed to defaults.
#[derive(Clone, Debug, Default)]
pub struct Given(BTreeSet<String>);

impl Given {
    /// The flags of the innermost subcommand of `matches` that came from the command line.
    pub fn from_matches(mut matches: &clap::ArgMatches) -> Self {
        while let Some((_, sub)) = matches.subcommand() {
            matches = sub;
        }
        let flags = matches
            .ids()
            .filter(|id| matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
            .map(|id| format!("--{}", id.as_str().replace('_', "-")))
            .collect();
        Self(flags)
    }

    pub fn has(&self, flag: &str) -> bool {
        self.0.contains(flag)
    }

    /// On resume: refuses when `flag` was given with a value other than the run's.
    /// `allowed` lists what a resume may change, for the message.
    pub fn unchanged<T: PartialEq + Display>(&self, flag: &str, run: T, new: T, allowed: &str) -> anyhow::Result<()> {
        if self.has(flag) && run != new {
            bail!("--resume: {flag} was {run} in this run, not {new}; a resume keeps it ({allowed})");
        }
        Ok(())
    }

    /// On resume: refuses when `flag` was given naming other data than the run's `run` (as typed
    /// then; `run_file` its [`data_file`], when recorded). Files are compared by canonical path,
    /// so `./p.csv` and `p.csv` are one file; the message shows the paths as typed.
    pub fn unchanged_data(
        &self,
        flag: &str,
        run: &str,
        run_file: Option<&Path>,
        new: &str,
        allowed: &str,
    ) -> anyhow::Result<()> {
        let run_file = run_file.map(Path::to_path_buf).or_else(|| data_file(Path::new(run)));
        if run_file.is_some() && run_file == data_file(Path::new(new)) {
            return Ok(());
        }
        self.unchanged(flag, run, new, allowed)
    }
}

/// Runs `work` holding the lock of run dir `dir`, after removing stale temporary files; when the
/// directory did not exist and `work` fails, it is removed again (if nothing else is in it).
pub fn with_lock<T>(dir: &Path, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let created = !dir.exists();
    let lock = RunLock::acquire(dir)?;
    remove_stale_temps(dir);
    let result = work();
    drop(lock);
    if result.is_err() && created {
        let _ = std::fs::remove_file(dir.join(LOCK_FILE));
        let _ = std::fs::remove_dir(dir);
    }
    result
}

/// The run directory of a training command: --run-dir, or the DIR of `--resume DIR` (they
/// must name one directory if both are given; `./tr` and `tr` do, compared canonically).
pub fn run_dir(run_dir: Option<&Path>, resume: Option<&str>) -> anyhow::Result<PathBuf> {
    use crate::cli::outputs::canonical;
    let from_resume = resume.filter(|d| !d.is_empty()).map(PathBuf::from);
    match (run_dir, from_resume) {
        (Some(a), Some(b)) if canonical(a) != canonical(&b) => {
            bail!("--run-dir {} and --resume {} name different runs", a.display(), b.display())
        }
        (Some(d), _) => Ok(d.to_path_buf()),
        (None, Some(d)) => Ok(d),
        (None, None) => bail!("--resume needs the run directory: --resume DIR or --run-dir DIR"),
    }
}

/// Whether run dir `dir` holds a start that never reached its first checkpoint: no
/// `checkpoint`, no `finished` file, and no data row in `metrics` (a start killed or failed
/// after writing run.json, the metrics header or a log). Such a directory neither resumes nor
/// holds anything a fresh start would lose, so a fresh start replaces it without --force.
/// A checkpoint deleted from a run that trained is not this case: its metrics keep rows.
pub fn never_started(dir: &Path, checkpoint: &str, metrics: &str, finished: &[&str]) -> bool {
    if dir.join(checkpoint).exists() || finished.iter().any(|f| dir.join(f).exists()) {
        return false;
    }
    let path = dir.join(metrics);
    let file =
        match crate::plan::open_regular(&path, std::fs::OpenOptions::new().read(true), crate::plan::Links::Refuse) {
            Ok(f) => f,
            Err(crate::Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => return true,
            // Something there that is not our file: not ours to replace.
            Err(_) => return false,
        };
    // The header and one row fit in far less than this.
    let mut head = String::new();
    if file.take(64 << 10).read_to_string(&mut head).is_err() {
        return false;
    }
    head.lines().skip(1).all(|l| l.trim().is_empty())
}

/// Removes `files` and `figures/` from run dir `dir`: a fresh start that failed before its
/// first checkpoint leaves no run that would neither resume nor start again without --force.
pub fn remove_failed_start(dir: &Path, files: &[&str]) {
    for f in files {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let _ = std::fs::remove_dir_all(dir.join("figures"));
}
