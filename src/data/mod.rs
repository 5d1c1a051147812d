//! Image datasets: IDX files (MNIST, Fashion-MNIST, gzipped or raw), the 8x8 digits CSV, folders
//! of PNGs and `.npy` images ([`images`]), and binarisation. Pixels are scaled to [0, 1]; an
//! image is one row of a row-major matrix, channel-major (C, H, W).

pub mod colour;
pub mod digits;
pub mod halves;
pub mod idx;
pub mod images;
pub mod stroke;
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
    /// Channels (1 grayscale, 3 RGB), image height and width: dim = channels * height * width.
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Dataset {
    pub fn dim(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// (channels, height, width).
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// Refuses images whose shape differs from a network's input (`net`, when image-shaped),
    /// else whose size differs from `dim`; `what` names the data (`--data mnist`).
    pub fn check_input(&self, what: &str, net: Option<(usize, usize, usize)>, dim: usize) -> Result<()> {
        check_shape(what, Some(self.shape()), self.dim(), net, dim)
    }

    /// The first `n` rows (all when `n >= rows`).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.rows);
        Dataset {
            images: self.images[..n * self.dim()].to_vec(),
            labels: self.labels.as_ref().map(|l| l[..n].to_vec()),
            rows: n,
            channels: self.channels,
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
            channels: self.channels,
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

/// Refuses data whose image shape (`data`, C x H x W, when known) differs from a network's
/// image input (`net`), or whose row width differs from `dim`: a clear error naming both.
pub fn check_shape(
    what: &str,
    data: Option<(usize, usize, usize)>,
    width: usize,
    net: Option<(usize, usize, usize)>,
    dim: usize,
) -> Result<()> {
    let show = |(c, h, w): (usize, usize, usize)| format!("{c}x{h}x{w}");
    match (data, net) {
        (Some(d), Some(n)) if d != n => Err(Error::invalid(
            what,
            format!("images of {} (channels x height x width), the network takes {}", show(d), show(n)),
        )),
        _ if width != dim => Err(Error::invalid(what, format!("rows of {width} values, the energy takes {dim}"))),
        _ => Ok(()),
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

/// Whether `path` names a `.npy` file.
fn is_npy(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Whether the data at `path` has a test split apart from its training split: an MNIST-layout
/// folder, the digits CSV, a folder of `train` and `test` sets. A flat folder of PNGs or a
/// single `.npy` is one set serving as both (the caller then says so, and a nearest-neighbour
/// search leaves each image out of its own).
pub fn separate_splits(path: &Path) -> bool {
    if path.is_file() {
        return !is_npy(path);
    }
    path.is_dir() && (find_file(path, &["digits.csv"]).is_some() || idx_images(path, Split::Train).is_some())
        || images::has_split_sets(path)
}

fn idx_images(path: &Path, split: Split) -> Option<PathBuf> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    find_file(path, &[&format!("{prefix}-images-idx3-ubyte"), &format!("{prefix}-images.idx3-ubyte")])
}

/// Loads a split from a data directory or file: an IDX folder (MNIST layout, `train-images-idx3-ubyte[.gz]`
/// and labels, or `t10k-*` for the test split), the digits CSV (a file, or a folder holding
/// `digits.csv[.gz]`), whose 1797 rows are split as the first 1500 for training and the rest
/// for test, or images ([`images`]): a `.npy` file, a folder of PNGs, or a folder of `train`
/// and `test` sets.
pub fn load(path: &Path, split: Split) -> Result<Dataset> {
    if path.is_file() && is_npy(path) {
        return images::load_npy(path);
    }
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
    if idx_images(path, Split::Train).or_else(|| idx_images(path, Split::Test)).is_some() {
        return Err(Error::invalid(
            "data",
            format!("{} holds MNIST-layout files but not {prefix}-images-idx3-ubyte[.gz]", path.display()),
        ));
    }
    images::load_dir(path, split)
}
