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

/// Parses IDX bytes; `path` only names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(Error::format(path, format!("truncated IDX header: {} bytes, need at least 4", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::format(
            path,
            format!(
                "not an IDX file: magic {:02x}{:02x}{:02x}{:02x} does not start with two zero bytes",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(Error::format(path, format!("IDX element type 0x{:02x} is not supported (only 0x08, unsigned byte)", bytes[2])));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(Error::format(path, "IDX header declares 0 dimensions"));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(Error::format(path, format!("truncated IDX header: {} bytes, need {header} for {ndim} dimensions", bytes.len())));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|k| u32::from_be_bytes(bytes[4 + 4 * k..8 + 4 * k].try_into().unwrap()) as usize)
        .collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let count = count.ok_or_else(|| Error::format(path, format!("IDX dimensions {dims:?} overflow")))?;
    let have = bytes.len() - header;
    if have < count {
        return Err(Error::format(path, format!("truncated IDX data: dimensions {dims:?} need {count} bytes, file has {have}")));
    }
    if have > count {
        return Err(Error::format(path, format!("IDX file has {} trailing bytes after the {count} declared by {dims:?}", have - count)));
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Reads an IDX file, gzipped or raw (detected from the content, not the name).
pub fn read(path: &Path) -> Result<IdxArray> {
    parse(&read_maybe_gz(path)?, path)
}

/// Images (3-d IDX: count, rows, cols) scaled to [0, 1], with optional labels (1-d IDX) whose
/// count must match.
pub fn load_images(images: &Path, labels: Option<&Path>) -> Result<Dataset> {
    let img = read(images)?;
    let [n, h, w] = img.dims[..] else {
        return Err(Error::format(images, format!("expected a 3-d image array (count, rows, cols), found dimensions {:?}", img.dims)));
    };
    let labels = match labels {
        None => None,
        Some(path) => {
            let lab = read(path)?;
            let [m] = lab.dims[..] else {
                return Err(Error::format(path, format!("expected a 1-d label array, found dimensions {:?}", lab.dims)));
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
    Ok(Dataset { images: img.data.iter().map(|&b| b as f32 / 255.0).collect(), labels, rows: n, height: h, width: w })
}

/// Encodes a u8 array as IDX (for tests and for writing small fixtures).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend((d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
