//! Reading and writing samples (`.npy`, `.csv`) and drawing PNG figures.
//!
//! Every file is written through [`write_atomic`], so an interrupted run never leaves a
//! half-written output behind: readers see either the old file or the complete new one.

// Sample files and figures: written and read by the commands only.
#[cfg(any(feature = "cli", feature = "internals"))]
pub mod csv;
#[cfg(any(feature = "cli", feature = "internals"))]
pub mod figure;
#[cfg(any(feature = "cli", feature = "internals"))]
pub mod npy;
#[cfg(any(feature = "cli", feature = "internals"))]
mod samples;
#[cfg(any(feature = "cli", feature = "internals"))]
pub use samples::{read_samples, write_samples};

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Writes `bytes` to a temporary file next to `path`, fsyncs it and renames it over `path`.
///
/// The temporary lives in the same directory so the rename stays on one filesystem (and is
/// therefore atomic); on any failure it is removed and the error names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // Distinguishes concurrent writers of the same path within this process.
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let name = path.file_name().ok_or_else(|| {
        Error::io(path, std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"))
    })?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let tmp = dir.join(tmp_name);

    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    // Best effort: persist the directory entry too, so the rename survives a crash.
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Float32 tensors as (name, shape, values), as safetensors files hold them.
pub type NamedTensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// Writes float32 tensors (name, shape, values) and string metadata as a safetensors file,
/// atomically ([`write_atomic`]).
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    meta: std::collections::HashMap<String, String>,
) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, shape, values)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytemuck::cast_slice(values))
                .map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::format(path, e.to_string()))?;
    let mut meta = meta;
    let parts = tensors
        .iter()
        .map(|(name, shape, values)| (name.as_str(), "F32", shape.as_slice(), bytemuck::cast_slice(values)));
    meta.insert(CHECKSUM_KEY.into(), checksum(&meta, parts));
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| Error::format(path, e.to_string()))?;
    write_atomic(path, &sorted_header(&bytes).map_err(|e| Error::format(path, e))?)
}

/// The metadata field of a safetensors file this engine writes that holds [`checksum`].
pub const CHECKSUM_KEY: &str = "checksum";

/// 64-bit FNV-1a of byte strings, each after its length (no two sequences hash alike by
/// shifting a boundary). Not cryptographic: it finds a damaged or edited file, not a forger.
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The checksum of a text (a JSON record this engine writes), as [`checksum`] spells one.
pub fn checksum_text(text: &str) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.write(text.as_bytes());
    format!("fnv1a64:{:016x}", h.0)
}

/// The checksum of a safetensors file's contents: every metadata entry but the checksum and
/// every tensor (name, dtype, shape, bytes), each in name order.
fn checksum<'a>(
    meta: &std::collections::HashMap<String, String>,
    tensors: impl Iterator<Item = (&'a str, &'a str, &'a [usize], &'a [u8])>,
) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    let mut entries: Vec<_> = meta.iter().filter(|(k, _)| k.as_str() != CHECKSUM_KEY).collect();
    entries.sort();
    for (k, v) in entries {
        h.write(k.as_bytes());
        h.write(v.as_bytes());
    }
    let mut tensors: Vec<_> = tensors.collect();
    tensors.sort_by_key(|t| t.0);
    for (name, dtype, shape, bytes) in tensors {
        h.write(name.as_bytes());
        h.write(dtype.as_bytes());
        h.write(&shape.iter().flat_map(|&d| (d as u64).to_le_bytes()).collect::<Vec<u8>>());
        h.write(bytes);
    }
    format!("fnv1a64:{:016x}", h.0)
}

/// Refuses a safetensors file whose metadata holds a checksum its contents do not match (a file
/// this engine wrote, changed or damaged since); files without one (PyTorch's, older runs')
/// pass.
pub fn verify_checksum(
    path: &Path,
    st: &safetensors::SafeTensors,
    meta: &std::collections::HashMap<String, String>,
) -> Result<()> {
    let Some(recorded) = meta.get(CHECKSUM_KEY) else { return Ok(()) };
    let views = st.tensors();
    let dtypes: Vec<String> = views.iter().map(|(_, v)| format!("{:?}", v.dtype())).collect();
    let parts = views.iter().zip(&dtypes).map(|((n, v), d)| (n.as_str(), d.as_str(), v.shape(), v.data()));
    let found = checksum(meta, parts);
    if &found != recorded {
        return Err(Error::format(
            path,
            format!(
                "its contents do not match the checksum in its metadata ({recorded}, found {found}): the file was changed or damaged after it was written; use an intact copy"
            ),
        ));
    }
    Ok(())
}

/// safetensors writes its `__metadata__` map in hash order, so two identical saves differ in
/// bytes; this rewrites the JSON header with every key sorted (the data is untouched), which
/// makes identical states give identical files.
fn sorted_header(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use std::collections::BTreeMap;
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__", default, skip_serializing_if = "Option::is_none")]
        meta: Option<BTreeMap<String, String>>,
        #[serde(flatten)]
        tensors: BTreeMap<String, serde_json::Value>,
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| "short safetensors buffer")?) as usize;
    let header: Header = serde_json::from_slice(&bytes[8..8 + n]).map_err(|e| e.to_string())?;
    let mut json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    // The data starts 8-byte aligned, as safetensors pads it.
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// The rows of a run's metrics log (a CSV file whose first field is a step or epoch number),
/// none for a missing or empty file. The file must be this run's log: its header `header`,
/// every row as many fields, its step numbers increasing; anything else is refused naming the
/// line (a log of another kind of run, an edited or damaged one). A resume checks it before
/// writing anything.
pub fn metrics_rows(path: &Path, header: &str) -> Result<Vec<(u32, String)>> {
    // A run dir's own file: a link or a named pipe in its place is refused, and the read is
    // bounded by the memory budget.
    let limit = crate::plan::Limit::budget()?;
    let file = match crate::plan::open_regular(path, fs::OpenOptions::new().read(true), crate::plan::Links::Refuse) {
        Ok(f) => f,
        Err(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let bytes = crate::plan::read_checked(file, path, "metrics log", &limit, &mut crate::plan::undeclared)?;
    let text = String::from_utf8(bytes).map_err(|_| Error::format(path, "the metrics log is not UTF-8 text"))?;
    let mut lines = text.lines();
    match lines.next() {
        None => return Ok(Vec::new()),
        Some(first) if first != header => {
            return Err(Error::format(
                path,
                format!(
                    "line 1 is {first:?}, not this run's metrics header {header:?} (a log of another kind of run, or edited); move the file away to resume without it"
                ),
            ));
        }
        Some(_) => {}
    }
    let fields = header.split(',').count();
    let mut rows: Vec<(u32, String)> = Vec::new();
    for (k, line) in lines.enumerate() {
        let bad = |why: String| {
            Error::format(
                path,
                format!(
                    "line {} ({line:?}) {why}; the log was edited or damaged: move it away to resume without it",
                    k + 2
                ),
            )
        };
        let Some(step) = line.split(',').next().and_then(|s| s.parse::<u32>().ok()) else {
            return Err(bad("does not start with a step number".into()));
        };
        if line.split(',').count() != fields {
            return Err(bad(format!("has {} fields, the header {fields}", line.split(',').count())));
        }
        if let Some(&(previous, _)) = rows.last()
            && step <= previous
        {
            return Err(bad(format!("goes back to step {step} after step {previous}")));
        }
        rows.push((step, line.to_string()));
    }
    Ok(rows)
}

/// Keeps the rows of a metrics log ([`metrics_rows`]) of steps at most `last`, under `header`;
/// a missing file becomes the header alone. A resumed or rolled-back run calls it so the rows
/// after its checkpoint are written once, not twice. Returns the kept rows.
pub fn keep_rows_through(path: &Path, header: &str, last: u32) -> Result<Vec<String>> {
    let kept: Vec<String> =
        metrics_rows(path, header)?.into_iter().filter(|(step, _)| *step <= last).map(|(_, l)| l).collect();
    let mut out = String::from(header);
    out.push('\n');
    for line in &kept {
        out.push_str(line);
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())?;
    Ok(kept)
}

/// Reads a safetensors file, no more than its header declares (8 bytes of header length, the
/// JSON header, the data up to the last tensor's end offset); a header declaring more than the
/// memory budget is refused before the data is read.
pub fn read_safetensors(path: &Path, what: &str) -> Result<Vec<u8>> {
    // The safetensors crate's own cap on the JSON header.
    const MAX_HEADER: u64 = 100_000_000;
    let bad = |m: String| Error::format(path, m);
    let mut declared = |b: &[u8]| -> Result<Option<u64>> {
        let Some(&[b0, b1, b2, b3, b4, b5, b6, b7]) = b.get(..8) else { return Ok(None) };
        let n = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
        if n > MAX_HEADER {
            return Err(bad(format!(
                "not a readable safetensors file: header length {n} is over the {MAX_HEADER} allowed"
            )));
        }
        let Some(header) = b.get(8..8 + n as usize) else { return Ok(None) };
        let json: serde_json::Value = serde_json::from_slice(header)
            .map_err(|e| bad(format!("not a readable safetensors file: its header is not JSON ({e})")))?;
        let end = json
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
            .max()
            .unwrap_or(0);
        Ok(Some((8 + n).saturating_add(end)))
    };
    crate::plan::read_file(path, what, &crate::plan::Limit::budget()?, &mut declared)
}

/// A safetensors file of ours, read whole, its metadata's `format` checked.
pub struct SafetensorsFile {
    path: std::path::PathBuf,
    bytes: Vec<u8>,
    pub meta: std::collections::HashMap<String, String>,
}

impl SafetensorsFile {
    /// Reads `path`; an unreadable file, or one whose `format` is not `format`, is an error that
    /// says it is not an ebm-gpu `what`.
    pub fn open(path: &Path, format: &str, what: &str) -> Result<Self> {
        let bytes = read_safetensors(path, what)?;
        let bad = |m: String| Error::format(path, m);
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        verify_checksum(path, &st, &meta)?;
        match meta.get("format") {
            Some(f) if f == format => {}
            Some(f) => {
                return Err(bad(format!("not an ebm-gpu {what} (its metadata says format {f:?}, not {format:?})")));
            }
            None => return Err(bad(format!("not an ebm-gpu {what} (no format {format:?} in its metadata)"))),
        }
        Ok(Self { path: path.to_path_buf(), bytes, meta })
    }

    /// An F32 tensor as (shape, values), all finite; None when the file has no such tensor.
    pub fn tensor(&self, name: &str) -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        let bad = |m: String| Error::format(&self.path, m);
        let st = safetensors::SafeTensors::deserialize(&self.bytes).map_err(|e| bad(e.to_string()))?;
        let Ok(t) = st.tensor(name) else { return Ok(None) };
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(bad(format!("tensor {name:?} is {:?}, expected F32", t.dtype())));
        }
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("tensor {name:?} has a non-finite value ({}) at flat index {k}", values[k])));
        }
        Ok(Some((t.shape().to_vec(), values)))
    }

    /// [`Self::tensor`], missing being an error.
    pub fn required(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        self.tensor(name)?.ok_or_else(|| Error::format(&self.path, format!("missing tensor {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh, empty directory under the system temp dir, unique per test.
    pub(crate) fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ebm-io-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = scratch_dir("atomic");
        let path = dir.join("out.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![OsString::from("out.bin")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_atomic_unwritable_path_is_err() {
        let dir = scratch_dir("atomic-bad");
        let path = dir.join("no-such-dir").join("out.bin");
        match write_atomic(&path, b"x") {
            Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Io error, got {other:?}"),
        }
        // Renaming onto an existing directory fails too; the temporary must be cleaned up.
        let target = dir.join("a-dir");
        fs::create_dir(&target).unwrap();
        assert!(write_atomic(&target, b"x").is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn samples_round_trip_by_extension() {
        let dir = scratch_dir("samples");
        let data = [1.0f32, -2.5, 3.25e-8, 4.0, f32::MAX, 0.1];
        for name in ["s.npy", "s.csv", "S.NPY"] {
            let path = dir.join(name);
            write_samples(&path, &data, 3, 2).unwrap();
            assert_eq!(read_samples(&path).unwrap(), (data.to_vec(), 3, 2));
        }
        assert!(matches!(write_samples(&dir.join("s.txt"), &data, 3, 2), Err(Error::InvalidInput { .. })));
        assert!(write_samples(&dir.join("s.npy"), &data, 4, 2).is_err());
        assert!(read_samples(&dir.join("missing.npy")).is_err());
        npy::write_f32(&dir.join("three.npy"), &[0.0; 8], &[2, 2, 2]).unwrap();
        assert!(matches!(read_samples(&dir.join("three.npy")), Err(Error::Format { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }
}
