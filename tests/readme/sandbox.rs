//! A scratch directory in which the README's command blocks run, with `ebm` on `PATH` as a shim
//! that times and logs every call of the binary under test.

use super::commands::{self, Block, Plan};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shim: runs the binary under test and appends "milliseconds, exit code, arguments" to
/// the log (newlines in an argument, such as a JSON spec's, become spaces).
const SHIM: &str = r#"#!/usr/bin/env bash
start=$(date +%s%N)
"$EBM_README_BIN" "$@"
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf '%s\t%s\t%s\n' "$ms" "$rc" "$(printf '%s' "$*" | tr '\n' ' ')" >> "$EBM_README_LOG"
exit $rc
"#;

/// The `ebm` that runs: `EBM_README_BIN` when set (the timings use the release build), else the
/// binary under test.
pub fn binary() -> PathBuf {
    std::env::var_os("EBM_README_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ebm")), PathBuf::from)
}

/// One `ebm` call as the shim logged it.
#[derive(Clone, Debug)]
pub struct Timed {
    pub heading: String,
    pub seconds: f64,
    pub args: String,
}

pub struct Sandbox {
    pub dir: PathBuf,
    pub work: PathBuf,
    small: bool,
}

impl Sandbox {
    /// A fresh scratch directory: `work/` (the commands' current directory, with `data` linked
    /// to the repository's), `bin/ebm` (the shim) and, at small sizes, `datasets/` for
    /// `EBM_DATA_DIR` with `mnist` and `fashion-mnist` both the committed MNIST slice.
    pub fn new(root: &Path, tag: &str, small: bool) -> Self {
        let dir = match std::env::var_os("EBM_README_DIR") {
            Some(d) if !small => PathBuf::from(d),
            _ => std::env::temp_dir().join(format!("ebm-readme-{tag}-{}", std::process::id())),
        };
        let _ = std::fs::remove_dir_all(&dir);
        let work = dir.join("work");
        for d in [&work, &dir.join("bin"), &dir.join("datasets"), &dir.join("xdg")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(root.join("data"), work.join("data")).unwrap();
        if small {
            for name in ["mnist", "fashion-mnist"] {
                std::os::unix::fs::symlink(root.join("tests/fixtures/mnist"), dir.join("datasets").join(name)).unwrap();
            }
        }
        let shim = dir.join("bin/ebm");
        std::fs::write(&shim, SHIM).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox { dir, work, small }
    }

    fn log(&self) -> PathBuf {
        self.dir.join("calls.tsv")
    }

    /// The logged calls so far: (milliseconds, exit code, arguments).
    fn calls(&self) -> Vec<(u64, i32, String)> {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, '\t');
                Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?, f.next()?.to_string()))
            })
            .collect()
    }

    /// The block as a bash script (rewritten to small sizes if this sandbox is small), the
    /// number of `ebm` commands and loops in it, and what it leaves out.
    pub fn script(&self, block: &Block) -> (String, usize, Vec<String>) {
        let mut script = String::from("set -euo pipefail\n");
        let (mut runs, mut skipped) = (0, Vec::new());
        for (line, cmd) in &block.commands {
            let run = match commands::plan(cmd).unwrap() {
                Plan::Run(run) => run,
                Plan::Download(run) if !self.small => run,
                Plan::Download(_) => {
                    skipped.push(format!("line {line}: {cmd} (the data come from tests/fixtures)"));
                    continue;
                }
                Plan::Skip(why) => {
                    skipped.push(format!("line {line}: {cmd} ({why})"));
                    continue;
                }
            };
            if run.starts_with("ebm ") || run.starts_with("for ") {
                runs += 1;
            }
            script.push_str(&if self.small { commands::small(&run) } else { run });
            script.push('\n');
        }
        (script, runs, skipped)
    }

    /// Runs the blocks `keep` selects, in order, failing on a block that exits non-zero or runs
    /// fewer `ebm` calls than it has commands; returns every call with its time.
    pub fn run_all(&self, blocks: &[Block], keep: impl Fn(&Block) -> bool) -> Vec<Timed> {
        let mut timed = Vec::new();
        let bin_dir = self.dir.join("bin");
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        for block in blocks.iter().filter(|b| keep(b)) {
            let (script, runs, skipped) = self.script(block);
            for s in &skipped {
                println!("README.md {s}: not run");
            }
            if runs == 0 {
                continue;
            }
            let before = self.calls().len();
            let mut cmd = Command::new("bash");
            cmd.arg("-c").arg(&script).current_dir(&self.work);
            cmd.env("PATH", &path)
                .env("EBM_README_BIN", binary())
                .env("EBM_README_LOG", self.log())
                .env("EBM_PROGRESS_SECS", "inf")
                .env("RUST_BACKTRACE", "0");
            if self.small {
                cmd.env("EBM_DATA_DIR", self.dir.join("datasets")).env("XDG_DATA_HOME", self.dir.join("xdg"));
            }
            let out = cmd.output().expect("run bash");
            let calls = self.calls();
            let tail = |b: &[u8]| {
                let s = String::from_utf8_lossy(b);
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            };
            assert!(
                out.status.success(),
                "README.md's block at line {} ({}) failed, {}:\n{script}\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
                block.line,
                block.heading,
                out.status,
                tail(&out.stdout),
                tail(&out.stderr)
            );
            let new = &calls[before..];
            assert!(
                new.len() >= runs,
                "README.md's block at line {}: {runs} commands but {} ebm calls:\n{script}",
                block.line,
                new.len()
            );
            for (ms, _, args) in new {
                println!("{:7.1} s  ebm {args}", *ms as f64 / 1000.0);
                timed.push(Timed { heading: block.heading.clone(), seconds: *ms as f64 / 1000.0, args: args.clone() });
            }
        }
        timed
    }
}
