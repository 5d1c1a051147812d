//! Output paths, checked before any work starts: every command registers the files it reads and
//! the files (or run directories) it writes with one [`Paths`], which refuses an output whose
//! extension does not name its format, that is a directory, whose folder is missing or not
//! writable, or that is the same file as an input or as another output. Files are compared by
//! canonical path (symbolic links and `..` resolved; a file that does not exist yet by its
//! nearest existing ancestor), so `w.npy` and `./dir/../w.npy` are one file.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The lock file in a run directory (`rundir::RunLock`); it holds the pid of the process that
/// has the lock. Declared here, with the paths a command claims, so the lock is claimed too.
pub const LOCK_FILE: &str = ".lock";

/// The files a command reads and writes, each with the flag that named it.
#[derive(Default)]
pub struct Paths {
    inputs: Vec<(String, PathBuf)>,
    outputs: Vec<(String, PathBuf)>,
}

/// `path` with its longest existing ancestor canonicalised and the rest appended.
pub fn canonical(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    let mut rest = Vec::new();
    let mut head = absolute.as_path();
    loop {
        if let Ok(c) = head.canonicalize() {
            return rest.iter().rev().fold(c, |p: PathBuf, part| p.join(part));
        }
        match (head.parent(), head.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                head = parent;
            }
            _ => return absolute,
        }
    }
}

/// The folder `path` is written into ("." for a bare file name).
fn folder(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

impl Paths {
    pub fn new() -> Self {
        Self::default()
    }

    /// A file or folder the command reads. One that does not exist is not registered (its
    /// reader says so in its own words).
    pub fn input(&mut self, flag: &str, path: &Path) -> &mut Self {
        if path.exists() {
            self.inputs.push((flag.to_string(), canonical(path)));
        }
        self
    }

    /// [`Paths::output`] for each optional output flag given: (flag, path, its one extension).
    pub fn optional_outputs(&mut self, outputs: &[(&str, &Option<PathBuf>, &str)]) -> anyhow::Result<()> {
        for &(flag, path, ext) in outputs {
            if let Some(p) = path {
                self.output(flag, p, &[ext])?;
            }
        }
        Ok(())
    }

    /// An output file named by `flag`: its extension must be one of `extensions` (the format
    /// follows it), it must not be a directory, its folder must exist and be writable, and it
    /// must be neither an input nor another output.
    pub fn output(&mut self, flag: &str, path: &Path, extensions: &[&str]) -> anyhow::Result<()> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        if !extensions.contains(&ext.as_str()) {
            bail!("{flag} {}: the file name must end in .{}", path.display(), extensions.join(" or ."));
        }
        if path.is_dir() {
            bail!("{flag} {}: is a directory; name a file", path.display());
        }
        let dir = folder(path);
        if !dir.is_dir() {
            bail!("{flag} {}: folder {} does not exist", path.display(), dir.display());
        }
        let probe = dir.join(format!(".ebm-write-probe-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .with_context(|| format!("{flag} {}: folder {} is not writable", path.display(), dir.display()))?;
        let _ = std::fs::remove_file(probe);
        self.claim(flag, path)
    }

    /// A run directory named by `flag` that will hold `files`: it may not exist yet (it is
    /// created with its parents), but must not be a file, and none of `files` in it may be an
    /// input.
    pub fn output_dir(&mut self, flag: &str, dir: &Path, files: &[&str]) -> anyhow::Result<()> {
        if dir.exists() && !dir.is_dir() {
            bail!("{flag} {}: is a file, not a directory", dir.display());
        }
        for f in files {
            self.claim(flag, &dir.join(f))?;
        }
        Ok(())
    }

    /// A run directory that a trainer locks: [`Paths::output_dir`] of `files` and of its lock
    /// file, which is written too (a `.lock` that resolves to an input is refused here).
    pub fn locked_run_dir(&mut self, flag: &str, dir: &Path, files: &[&str]) -> anyhow::Result<()> {
        self.output_dir(flag, dir, files)?;
        self.claim(flag, &dir.join(LOCK_FILE))
    }

    /// Registers `path` as written by `flag` unless an input or an earlier output is the same
    /// file.
    fn claim(&mut self, flag: &str, path: &Path) -> anyhow::Result<()> {
        let c = canonical(path);
        if let Some((other, _)) = self.inputs.iter().find(|(_, p)| *p == c) {
            bail!("{flag} {}: is also the input {other}; writing it would destroy that input", path.display());
        }
        if let Some((other, _)) = self.outputs.iter().find(|(_, p)| *p == c) {
            bail!("{flag} {}: is also the output of {other}; give each output its own file", path.display());
        }
        self.outputs.push((flag.to_string(), c));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_under_two_spellings_is_refused() {
        let dir = std::env::temp_dir().join(format!("ebm-outputs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let input = dir.join("w.npy");
        std::fs::write(&input, b"x").unwrap();
        let mut p = Paths::new();
        p.input("--energy", &input);
        let other = dir.join("sub").join("..").join("w.npy");
        let e = p.output("--out", &other, &["npy"]).unwrap_err().to_string();
        assert!(e.contains("--out") && e.contains("--energy"), "{e}");
        // Not yet existing outputs compare by their folder.
        p.output("--out", &dir.join("new.npy"), &["npy"]).unwrap();
        let e = p.output("--trace", &dir.join("sub/../new.npy"), &["npy"]).unwrap_err().to_string();
        assert!(e.contains("--trace") && e.contains("--out"), "{e}");
        // A run dir not created yet still sees an input inside it.
        let e = p.output_dir("--run-dir", &dir, &["w.npy"]).unwrap_err().to_string();
        assert!(e.contains("--run-dir"), "{e}");
        assert!(p.output_dir("--run-dir", &dir.join("a/b"), &["metrics.csv"]).is_ok());
        // A run dir's lock that links to an input is refused before anything opens it.
        #[cfg(unix)]
        {
            let run = dir.join("run");
            std::fs::create_dir_all(&run).unwrap();
            std::os::unix::fs::symlink(&input, run.join(".lock")).unwrap();
            let e = p.locked_run_dir("--run-dir", &run, &["metrics.csv"]).unwrap_err().to_string();
            assert!(e.contains(".lock") && e.contains("--energy"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
