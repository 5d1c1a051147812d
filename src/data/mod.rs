//! Datasets for the RBM: IDX files (MNIST, Fashion-MNIST, gzipped or raw), the 8x8 digits CSV,
//! and binarisation. Pixels are scaled to [0, 1]; an image is one row of a row-major matrix.

pub mod digits;
pub mod idx;
pub mod toy;

use crate::plan;
use crate::rng::{self, Stream};
use crate::{Error, Result};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// A row-major matrix of images with optional labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// [rows, dim], values in [0, 1] (or {0, 1} after binarisation).
    pub images: Vec<f32>,
    pub labels: Option<Vec<u8>>,
    pub rows: usize,
    /// Image height and width: dim = height * width.
    pub height: usize,
    pub width: usize,
}

impl Dataset {
    pub fn dim(&self) -> usize {
        self.height * self.width
    }

    /// The first `n` rows (all when `n >= rows`).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.rows);
        Dataset {
            images: self.images[..n * self.dim()].to_vec(),
            labels: self.labels.as_ref().map(|l| l[..n].to_vec()),
            rows: n,
            height: self.height,
            width: self.width,
        }
    }

    /// Rows `range` as a new dataset.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        let d = self.dim();
        Dataset {
            images: self.images[range.start * d..range.end * d].to_vec(),
            labels: self.labels.as_ref().map(|l| l[range.clone()].to_vec()),
            rows: range.len(),
            height: self.height,
            width: self.width,
        }
    }

    /// Rejects NaN/Inf pixels (a corrupt or hand-made file), naming the first bad row.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        if let Some(pos) = self.images.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(what, format!("row {} has a non-finite value", pos / self.dim().max(1))));
        }
        Ok(())
    }
}

/// How to turn grey levels into {0, 1}.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Binarize {
    /// Keep grey levels (for Gaussian visibles or probabilities as data).
    None,
    /// 1 where the value is above the threshold.
    Threshold(f32),
    /// 1 with probability equal to the value, from Philox with this seed: pixel i of row r uses
    /// counter (r, 0, Stream::Init, i / 4), lane i % 4, and is on when u < value (the same rule
    /// the Gibbs kernels use), so the result depends only on the seed and the row index.
    Stochastic(u64),
}

/// Binarises `data` in place; `first_row` is the global index of its first row.
pub fn binarize(data: &mut Dataset, how: Binarize, first_row: u32) {
    let d = data.dim();
    match how {
        Binarize::None => {}
        Binarize::Threshold(t) => data.images.iter_mut().for_each(|v| *v = (*v > t) as u32 as f32),
        Binarize::Stochastic(seed) => {
            for (r, row) in data.images.chunks_mut(d.max(1)).enumerate() {
                for (draw, block) in row.chunks_mut(4).enumerate() {
                    let u = rng::uniform4(seed, first_row + r as u32, 0, Stream::Init, draw as u32);
                    for (v, u) in block.iter_mut().zip(u) {
                        *v = (u < *v) as u32 as f32;
                    }
                }
            }
        }
    }
}

/// Reads a whole file, transparently gunzipping it when it starts with the gzip magic. The
/// decompressed bytes are bounded like any file ([`plan::read_checked`]): by the size the
/// format's header declares (`declared`), else by the memory budget, so a small archive that
/// inflates to gigabytes is refused after a bounded read.
pub(crate) fn read_maybe_gz(path: &Path, what: &str, limit: &plan::Limit, declared: plan::Declared) -> Result<Vec<u8>> {
    let mut file = std::io::BufReader::new(plan::open_file(path, what, limit)?);
    let gz = file.fill_buf().map_err(|e| Error::io(path, e))?.starts_with(&[0x1f, 0x8b]);
    if !gz {
        return plan::read_checked(file, path, what, limit, declared);
    }
    plan::read_checked(flate2::read::MultiGzDecoder::new(file), path, what, limit, declared).map_err(|e| match e {
        // The decoder's own failures surface as read errors: say they are the archive's.
        Error::Format { path, message } if message.starts_with("reading ") => {
            Error::format(path, format!("gzip stream is corrupt or truncated: {message}"))
        }
        other => other,
    })
}

/// The first of `names` (also tried with `.gz`) that exists in `dir`.
pub(crate) fn find_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    for name in names {
        for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Which part of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Loads a split from a data directory or file: an IDX folder (MNIST layout, `train-images-idx3-ubyte[.gz]`
/// and labels, or `t10k-*` for the test split), or the digits CSV (a file, or a folder holding
/// `digits.csv[.gz]`), whose 1797 rows are split as the first 1500 for training and the rest for test.
pub fn load(path: &Path, split: Split) -> Result<Dataset> {
    if path.is_file() {
        return digits::load_split(path, split);
    }
    if !path.is_dir() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such data file or folder")));
    }
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images = find_file(path, &[&format!("{prefix}-images-idx3-ubyte"), &format!("{prefix}-images.idx3-ubyte")]);
    if let Some(images) = images {
        let labels = find_file(path, &[&format!("{prefix}-labels-idx1-ubyte"), &format!("{prefix}-labels.idx1-ubyte")]);
        return idx::load_images(&images, labels.as_deref());
    }
    if let Some(csv) = find_file(path, &["digits.csv"]) {
        return digits::load_split(&csv, split);
    }
    Err(Error::invalid(
        "data",
        format!("{} holds neither {prefix}-images-idx3-ubyte[.gz] (MNIST layout) nor digits.csv[.gz]", path.display()),
    ))
}
