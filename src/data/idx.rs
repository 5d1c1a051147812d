//! The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a big-endian header
//! `0 0 type ndim` + ndim u32 sizes, then the values. Only unsigned bytes (type 0x08) occur in
//! these datasets and only they are accepted.

use super::{Dataset, read_maybe_gz};
use crate::{Error, Result};
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// The whole size (header and data) an IDX header declares, once `bytes` hold the header;
/// an error for a header that is not IDX of unsigned bytes.
fn declared(bytes: &[u8], path: &Path) -> Result<Option<u64>> {
    if bytes.len() >= 2 && (bytes[0] != 0 || bytes[1] != 0) {
        let magic: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(Error::format(
            path,
            format!("not an IDX file: magic {} does not start with two zero bytes", magic.concat()),
        ));
    }
    if bytes.len() < 4 {
        return Ok(None);
    }
    if bytes[2] != 0x08 {
        return Err(Error::format(
            path,
            format!("IDX element type 0x{:02x} is not supported (only 0x08, unsigned byte)", bytes[2]),
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(Error::format(path, "IDX header declares 0 dimensions"));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Ok(None);
    }
    let dims: Vec<u64> =
        bytes[4..header].chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64).collect();
    // 255 dimensions of up to 2^32 can overflow even u64: saturate, the plan refuses it.
    let count = dims.iter().fold(1u64, |a, &d| a.saturating_mul(d));
    Ok(Some(count.saturating_add(header as u64)))
}

/// Parses IDX bytes; `path` only names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let total = declared(bytes, path)?;
    let ndim = bytes.get(3).map_or(0, |&n| n as usize);
    let header = 4 + 4 * ndim;
    let Some(total) = total else {
        let need = if bytes.len() < 4 { "at least 4".to_string() } else { format!("{header} for {ndim} dimensions") };
        return Err(Error::format(path, format!("truncated IDX header: {} bytes, need {need}", bytes.len())));
    };
    let dims: Vec<usize> =
        bytes[4..header].chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let count = total - header as u64;
    let have = (bytes.len() - header) as u64;
    if have < count {
        return Err(Error::format(
            path,
            format!("truncated IDX data: dimensions {dims:?} need {count} bytes, file has {have}"),
        ));
    }
    if have > count {
        return Err(Error::format(path, format!("IDX file has trailing bytes after the {count} declared by {dims:?}")));
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Reads an IDX file, gzipped or raw (detected from the content, not the name), reading (and
/// decompressing) no more than its header declares, and refusing a header that declares more
/// than the memory budget before reading the data.
pub fn read(path: &Path) -> Result<IdxArray> {
    // Each byte read becomes a byte kept and a 4-byte f32 pixel (load_images).
    let limit = crate::plan::Limit::budget_over(5, "each byte becomes an f32 pixel")?;
    parse(&read_maybe_gz(path, "IDX file", &limit, &mut |b| declared(b, path))?, path)
}

/// Images (3-d IDX: count, rows, cols) scaled to [0, 1], with optional labels (1-d IDX) whose
/// count must match.
pub fn load_images(images: &Path, labels: Option<&Path>) -> Result<Dataset> {
    let img = read(images)?;
    let [n, h, w] = img.dims[..] else {
        return Err(Error::format(
            images,
            format!("expected a 3-d image array (count, rows, cols), found dimensions {:?}", img.dims),
        ));
    };
    let labels = match labels {
        None => None,
        Some(path) => {
            let lab = read(path)?;
            let [m] = lab.dims[..] else {
                return Err(Error::format(
                    path,
                    format!("expected a 1-d label array, found dimensions {:?}", lab.dims),
                ));
            };
            if m != n {
                return Err(Error::invalid(
                    "data",
                    format!("{} has {n} images but {} has {m} labels", images.display(), path.display()),
                ));
            }
            Some(lab.data)
        }
    };
    Ok(Dataset {
        images: img.data.iter().map(|&b| b as f32 / 255.0).collect(),
        labels,
        rows: n,
        channels: 1,
        height: h,
        width: w,
    })
}

#[cfg(any(test, feature = "internals"))]
/// Encodes a u8 array as IDX (for tests and for writing small fixtures).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend((d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
