//! Fetching a dataset's files: each is written to `NAME.part` (continued with a Range request
//! when a `.part` is already there), checked against its size and SHA-256, and only then
//! renamed to `NAME`, so the final name never holds a partial or unverified file. A file that
//! fails its check is removed; an interrupted one is kept as `.part` for the next run.

use super::http;
use crate::cli::progress::Progress;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One file of a dataset: its name on the mirror and on disk, its SHA-256 (lower-case hex)
/// and its size in bytes.
#[derive(Clone, Copy, Debug)]
pub struct FileSpec<'a> {
    pub name: &'a str,
    pub sha256: &'a str,
    pub size: u64,
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Already in place, and it verifies.
    Present,
    /// Downloaded (continuing a `.part` of `resumed_from` bytes when that is above 0).
    Downloaded { from: String, resumed_from: u64 },
}

/// The SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `NAME.part` beside `dest`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Fetches every file of `files` into `dir` (made if missing), each from the first of
/// `mirrors` (folder URLs) that serves it whole and correct. Files already in `dir` that
/// verify are kept; one in `dir` that does not verify is an error (it is not ours to delete).
pub fn fetch_files(files: &[FileSpec], mirrors: &[String], dir: &Path) -> anyhow::Result<Vec<(String, Outcome)>> {
    if mirrors.is_empty() {
        bail!("no mirror to download from");
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut outcomes = Vec::new();
    for spec in files {
        let outcome = fetch_file(spec, mirrors, dir)?;
        outcomes.push((spec.name.to_string(), outcome));
    }
    Ok(outcomes)
}

fn fetch_file(spec: &FileSpec, mirrors: &[String], dir: &Path) -> anyhow::Result<Outcome> {
    let dest = dir.join(spec.name);
    if dest.exists() {
        let sha = sha256_file(&dest).with_context(|| format!("reading {}", dest.display()))?;
        if sha == spec.sha256 {
            return Ok(Outcome::Present);
        }
        bail!(
            "{} is already there but its SHA-256 is {sha}, not {}: remove it and run the command again",
            dest.display(),
            spec.sha256
        );
    }
    let part = part_path(&dest);
    let mut failures = Vec::new();
    for mirror in mirrors {
        let url = http::Url::join(mirror, spec.name);
        let resumed_from = fs::metadata(&part).map_or(0, |m| m.len());
        match fetch_part(&url, spec, &part) {
            Ok(()) => {
                fs::rename(&part, &dest)
                    .with_context(|| format!("renaming {} to {}", part.display(), dest.display()))?;
                #[cfg(unix)]
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
                return Ok(Outcome::Downloaded { from: url, resumed_from: resumed_from.min(spec.size) });
            }
            Err(e) => failures.push(format!("{url}: {e:#}")),
        }
    }
    let kept = fs::metadata(&part).map_or(0, |m| m.len());
    let resume = if kept > 0 {
        format!("\n{kept} bytes are kept in {}: run the command again to resume", part.display())
    } else {
        String::new()
    };
    bail!("could not download {}:\n  {}{resume}", spec.name, failures.join("\n  "))
}

/// Brings `part` to the whole file from `url` and verifies it; a file that fails its check is
/// removed, an interrupted one kept.
fn fetch_part(url: &str, spec: &FileSpec, part: &Path) -> anyhow::Result<()> {
    let mut have = fs::metadata(part).map_or(0, |m| m.len());
    if have > spec.size {
        remove(part)?;
        have = 0;
    }
    if have < spec.size {
        let response = http::get(url, have)?;
        let append = match response.status {
            206 if have > 0 => true,
            200 => {
                if let Some(n) = response.length.filter(|&n| n != spec.size) {
                    bail!("the server offers {n} bytes, not the {} expected: refused", spec.size);
                }
                have = 0;
                false
            }
            416 => {
                remove(part)?;
                bail!("the server refused to continue from byte {have} (HTTP 416); the partial file was removed");
            }
            s => bail!("HTTP status {s}"),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(part)
            .with_context(|| format!("opening {}", part.display()))?;
        let written = copy_body(response.body(), &mut file, spec, have);
        file.sync_all().ok();
        drop(file);
        let total = written?;
        if total > spec.size {
            remove(part)?;
            bail!("the server sent more than the {} bytes expected: refused and removed", spec.size);
        }
        if total < spec.size {
            bail!("the server closed the connection after {total} of {} bytes", spec.size);
        }
    }
    let sha = sha256_file(part).with_context(|| format!("reading {}", part.display()))?;
    if sha != spec.sha256 {
        remove(part)?;
        bail!("SHA-256 mismatch: the download hashes to {sha}, expected {}; refused and removed", spec.sha256);
    }
    Ok(())
}

/// Copies the body after the `have` bytes already in the file, with progress; returns the
/// file's length. Reads at most one byte past the expected size (a longer body is refused).
fn copy_body(body: Box<dyn Read>, file: &mut File, spec: &FileSpec, have: u64) -> anyhow::Result<u64> {
    let template = "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
    let mut progress = Progress::new(spec.name, "bytes", spec.size, template);
    progress.set_message(spec.name.to_string());
    progress.start_at(have);
    let mut body = body.take(spec.size - have + 1);
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = have;
    let result = loop {
        match body.read(&mut buf) {
            Ok(0) => break Ok(pos),
            Ok(n) => {
                if let Err(e) = file.write_all(&buf[..n]) {
                    break Err(anyhow::Error::new(e).context("writing the download"));
                }
                pos += n as u64;
                progress.set_position(pos.min(spec.size));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(anyhow::Error::new(e).context(format!("interrupted after {pos} bytes"))),
        }
    };
    progress.finish_and_clear();
    result
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}
