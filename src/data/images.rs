//! Image sets beyond MNIST: a folder of PNGs and a `.npy` of images, each with an optional
//! labels file found beside it by name, and folders holding a training and a test set.
//!
//! - **A folder of PNGs**: every file whose name ends in `.png` (any case), in file-name order
//!   (byte order of the names); other names are skipped (a labels file, a README). All grayscale
//!   (8 or 16 bit) or all RGB, one size; pixels k / 255 (k / 65535 at 16 bit) in [0, 1], which
//!   the commands scale to [-1, 1] as they do MNIST's. A PNG with an alpha channel, a corrupt
//!   `.png`, mixed sizes or mixed modes are errors naming the file. Labels: `labels.txt` in the
//!   folder (one integer 0..=255 per line, in the files' order) or `labels.npy` (N integers).
//! - **A `.npy` of images**: [N, C, H, W], or [N, H, W] as C = 1. dtype uint8 (`|u1`): pixels
//!   k / 255, scaled as MNIST's; float32/float64: values taken as they are, in the model's
//!   coordinates ([-1, 1] for images: what `ebm sample --out` and `ebm restore --out` write).
//!   Labels: `NAME.labels.txt` or `NAME.labels.npy` beside `NAME.npy`.
//! - **Splits**: a folder holding `train` and `test` sets, each a PNG folder (`train/`) or a
//!   file (`train.npy`), gives them as the two splits; a flat PNG folder or a single `.npy` is
//!   one set that serves as either split ([`separate_splits`] says which).

use super::{Dataset, Split};
use crate::io::npy;
use crate::{Error, Result};
use image::{DynamicImage, ImageFormat};
use std::path::{Path, PathBuf};

/// Image values of a `.npy` ([`read_npy`]): in the model's coordinates ([-1, 1]).
#[derive(Clone, Debug, PartialEq)]
pub struct NpyImages {
    pub values: Vec<f32>,
    pub rows: usize,
    /// [C, H, W].
    pub shape: [usize; 3],
    pub labels: Option<Vec<u8>>,
}

/// Reads a `.npy` of images ([N, C, H, W] or [N, H, W]; uint8 scaled to [-1, 1], floats as
/// given) with its labels file, if any.
#[cfg(any(test, feature = "internals"))]
pub fn read_npy(path: &Path) -> Result<NpyImages> {
    from_array(path, npy::read(path)?)
}

/// [`read_npy`] of an array already read from `path`.
pub fn from_array(path: &Path, a: npy::Array) -> Result<NpyImages> {
    let (set, bytes) = checked(path, a)?;
    let values = match bytes {
        true => set.values.iter().map(|&k| 2.0 * (k / 255.0) - 1.0).collect(),
        false => set.values,
    };
    Ok(NpyImages { values, ..set })
}

/// The images of `a`, their values as stored (0..255 when the second value is true: uint8).
fn checked(path: &Path, a: npy::Array) -> Result<(NpyImages, bool)> {
    let (rows, shape) = match a.shape[..] {
        [n, h, w] => (n, [1, h, w]),
        [n, c, h, w] => (n, [c, h, w]),
        _ => {
            return Err(Error::format(
                path,
                format!("expected images of shape [N, C, H, W] or [N, H, W]; found shape {:?}", a.shape),
            ));
        }
    };
    let bytes = match a.dtype.as_str() {
        "|u1" => true,
        "<f4" | "<f8" => false,
        other => {
            return Err(Error::format(
                path,
                format!(
                    "dtype '{other}' is not an image dtype: uint8 ('|u1', 0..255, scaled to [-1, 1]) or \
                     float32/float64 ('<f4'/'<f8', taken as given, in [-1, 1])"
                ),
            ));
        }
    };
    if rows == 0 || shape.contains(&0) {
        return Err(Error::format(path, format!("no images: shape {:?}", a.shape)));
    }
    let values = a.data;
    if let Some(pos) = values.iter().position(|v: &f32| !v.is_finite()) {
        let d: usize = shape.iter().product();
        return Err(Error::format(path, format!("image {} (counting from 0) has a non-finite value", pos / d)));
    }
    let labels = labels_beside(path, rows)?;
    Ok((NpyImages { values, rows, shape, labels }, bytes))
}

/// `NAME.labels.txt` or `NAME.labels.npy` beside `NAME.npy`, checked to hold `rows` labels.
fn labels_beside(path: &Path, rows: usize) -> Result<Option<Vec<u8>>> {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let dir = path.parent().unwrap_or(Path::new(""));
    labels_file(dir, &format!("{stem}.labels"), rows, path)
}

/// The labels file `DIR/BASE.txt` or `DIR/BASE.npy` (both: an error), for the `rows` images of
/// `images`.
fn labels_file(dir: &Path, base: &str, rows: usize, images: &Path) -> Result<Option<Vec<u8>>> {
    let (txt, npy_file) = (dir.join(format!("{base}.txt")), dir.join(format!("{base}.npy")));
    let labels = match (txt.is_file(), npy_file.is_file()) {
        (false, false) => return Ok(None),
        (true, true) => {
            return Err(Error::format(
                &txt,
                format!("both {} and {} exist: keep one labels file", txt.display(), npy_file.display()),
            ));
        }
        (true, false) => (read_labels_txt(&txt)?, txt),
        (false, true) => (read_labels_npy(&npy_file)?, npy_file),
    };
    if labels.0.len() != rows {
        return Err(Error::format(
            &labels.1,
            format!("{} labels, but {} holds {rows} images", labels.0.len(), images.display()),
        ));
    }
    Ok(Some(labels.0))
}

fn label_limit() -> Result<crate::plan::Limit> {
    crate::plan::Limit::budget_over(5, "labels are decoded into a copy")
}

/// One integer 0..=255 per line (blank lines skipped).
pub fn read_labels_txt(path: &Path) -> Result<Vec<u8>> {
    let bytes = crate::plan::read_file(path, "labels file", &label_limit()?, &mut crate::plan::undeclared)?;
    let text = String::from_utf8(bytes).map_err(|_| Error::format(path, "not UTF-8 text"))?;
    let mut labels = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let v = t
            .parse::<u8>()
            .map_err(|_| Error::format(path, format!("line {}: {t:?} is not an integer label in 0..=255", n + 1)))?;
        labels.push(v);
    }
    Ok(labels)
}

/// A 1-d `.npy` of integers 0..=255 (any integer or float dtype holding whole numbers).
pub fn read_labels_npy(path: &Path) -> Result<Vec<u8>> {
    let a = npy::read(path)?;
    if a.shape.len() != 1 {
        return Err(Error::format(
            path,
            format!("labels must be a 1-d array of N integers; found shape {:?}", a.shape),
        ));
    }
    a.data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
                Ok(v as u8)
            } else {
                Err(Error::format(path, format!("label {i} (counting from 0) is {v}, not an integer in 0..=255")))
            }
        })
        .collect()
}

/// The `.png` files of `dir` (any case of the extension) in file-name order.
pub fn png_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Grayscale or RGB, as the first PNG of a folder sets it.
fn mode_name(c: usize) -> &'static str {
    if c == 1 { "grayscale" } else { "RGB" }
}

/// One PNG's channels, height, width and values in [0, 1] (channel-major).
fn decode_png(path: &Path, limit: &crate::plan::Limit) -> Result<(usize, usize, usize, Vec<f32>)> {
    let bytes = crate::plan::read_file(path, "PNG file", limit, &mut crate::plan::undeclared)?;
    let img = image::load_from_memory_with_format(&bytes, ImageFormat::Png)
        .map_err(|e| Error::format(path, format!("not a readable PNG: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (c, values): (usize, Vec<f32>) = match img {
        DynamicImage::ImageLuma8(g) => (1, g.into_raw().iter().map(|&k| k as f32 / 255.0).collect()),
        DynamicImage::ImageLuma16(g) => (1, g.into_raw().iter().map(|&k| k as f32 / 65535.0).collect()),
        DynamicImage::ImageRgb8(g) => (3, planar(&g.into_raw(), h * w, 255.0)),
        DynamicImage::ImageRgb16(g) => (3, planar(&g.into_raw(), h * w, 65535.0)),
        other => {
            return Err(Error::format(
                path,
                format!("{:?} PNG: only grayscale or RGB without alpha is read (save it as L or RGB)", other.color()),
            ));
        }
    };
    Ok((c, h, w, values))
}

/// Interleaved RGB to channel-major planes, scaled by `max`.
fn planar<T: Copy + Into<f32>>(rgb: &[T], pixels: usize, max: f32) -> Vec<f32> {
    (0..3).flat_map(|ch| (0..pixels).map(move |p| rgb[3 * p + ch].into() / max)).collect()
}

/// A folder of PNGs (see the module notes) with `labels.txt`/`labels.npy`, if any.
pub fn load_png_dir(dir: &Path) -> Result<Dataset> {
    let files = png_files(dir)?;
    let Some(first) = files.first() else {
        return Err(Error::format(
            dir,
            "holds no .png files (nor MNIST IDX files, digits.csv, or train and test sets): nothing to read",
        ));
    };
    // Every pixel becomes an f32: bound the whole set by the memory budget, per file by it too.
    let limit = crate::plan::Limit::budget_over(5, "each PNG's pixels become f32 values")?;
    let (c, h, w, mut images) = decode_png(first, &limit)?;
    let budget = limit.bytes / 4;
    for path in &files[1..] {
        let (c2, h2, w2, values) = decode_png(path, &limit)?;
        if c2 != c {
            return Err(Error::format(
                path,
                format!("{} PNG, but {} is {}: a folder holds one mode", mode_name(c2), first.display(), mode_name(c)),
            ));
        }
        if (h2, w2) != (h, w) {
            return Err(Error::format(
                path,
                format!("{w2}x{h2} pixels, but {} is {w}x{h}: a folder holds one size", first.display()),
            ));
        }
        if (images.len() + values.len()) as u64 > budget {
            return Err(Error::format(path, format!("the folder's images pass the memory budget ({})", limit.why)));
        }
        images.extend(values);
    }
    let labels = labels_file(dir, "labels", files.len(), dir)?;
    Ok(Dataset { images, labels, rows: files.len(), channels: c, height: h, width: w })
}

/// A `.npy` of images as a [`Dataset`] (values in [0, 1]: k / 255 of uint8, (v + 1) / 2 of
/// floats).
pub fn load_npy(path: &Path) -> Result<Dataset> {
    let (set, bytes) = checked(path, npy::read(path)?)?;
    let [c, h, w] = set.shape;
    let images = match bytes {
        true => set.values.iter().map(|k| k / 255.0).collect(),
        false => set.values.iter().map(|v| 0.5 * (v + 1.0)).collect(),
    };
    Ok(Dataset { images, labels: set.labels, rows: set.rows, channels: c, height: h, width: w })
}

/// The set `DIR/NAME/` (PNGs) or `DIR/NAME.npy`, if either exists.
fn split_set(dir: &Path, name: &str) -> Option<PathBuf> {
    let folder = dir.join(name);
    let file = dir.join(format!("{name}.npy"));
    if folder.is_dir() { Some(folder) } else { file.is_file().then_some(file) }
}

/// Whether `dir` holds both a training and a test set (`train/` or `train.npy`, and `test/`
/// or `test.npy`).
pub fn has_split_sets(dir: &Path) -> bool {
    split_set(dir, "train").is_some() && split_set(dir, "test").is_some()
}

/// A split of an image folder: its `train`/`test` set when it holds one, else the folder's
/// PNGs as either split.
pub fn load_dir(dir: &Path, split: Split) -> Result<Dataset> {
    let (name, other) = match split {
        Split::Train => ("train", "test"),
        Split::Test => ("test", "train"),
    };
    match (split_set(dir, name), split_set(dir, other)) {
        (Some(set), _) if set.is_dir() => load_png_dir(&set),
        (Some(set), _) => load_npy(&set),
        (None, Some(found)) => Err(Error::format(
            dir,
            format!("holds {} but no {name} set ({name}/ of PNGs or {name}.npy)", found.display()),
        )),
        (None, None) => load_png_dir(dir),
    }
}
