//! The 8x8 digits CSV (scikit-learn's `digits.csv.gz`, UCI optdigits): 64 pixel counts in
//! 0..=16 then the label, one image per line, no header.

use super::{Dataset, Split, read_maybe_gz};
use crate::{Error, Result};
use std::path::Path;

/// Rows of the digits file used for training; the rest form the test split.
pub const TRAIN_ROWS: usize = 1500;

/// Reads every row, pixels scaled to [0, 1].
pub fn load(path: &Path) -> Result<Dataset> {
    // The text, then 4 bytes of f32 per pixel of at least 2 bytes of text ("0,").
    let limit = crate::plan::Limit::budget_over(3, "the text is decoded into f32 pixels")?;
    parse(&read_maybe_gz(path, "digits CSV", &limit, &mut crate::plan::undeclared)?, path)
}

/// Parses the (decompressed) bytes of a digits CSV; `path` only names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Dataset> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Error::format(path, "not UTF-8 text (expected a CSV of integers)"))?;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 65 {
            return Err(Error::format(
                path,
                format!("line {}: expected 65 values (64 pixels and a label), found {}", n + 1, fields.len()),
            ));
        }
        for (k, f) in fields.iter().enumerate() {
            let v: f32 = f
                .trim()
                .parse()
                .map_err(|_| Error::format(path, format!("line {}, column {}: {f:?} is not a number", n + 1, k + 1)))?;
            let limit = if k < 64 { 16.0 } else { 9.0 };
            if !(0.0..=limit).contains(&v) {
                return Err(Error::format(
                    path,
                    format!("line {}, column {}: {v} is outside 0..={limit}", n + 1, k + 1),
                ));
            }
            if k < 64 {
                images.push(v / 16.0);
            } else {
                labels.push(v as u8);
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::format(path, "no rows"));
    }
    Ok(Dataset { rows: labels.len(), images, labels: Some(labels), channels: 1, height: 8, width: 8 })
}

/// The train split (first [`TRAIN_ROWS`] rows) or the test split (the rest).
pub fn load_split(path: &Path, split: Split) -> Result<Dataset> {
    let all = load(path)?;
    if all.rows <= TRAIN_ROWS {
        return Err(Error::format(
            path,
            format!("{} rows: need more than {TRAIN_ROWS} to split into train and test", all.rows),
        ));
    }
    Ok(match split {
        Split::Train => all.slice(0..TRAIN_ROWS),
        Split::Test => all.slice(TRAIN_ROWS..all.rows),
    })
}
