//! Sample matrices as `.npy` or `.csv`, chosen by the file's extension.

use super::{csv, npy};
use crate::{Error, Result};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Npy,
    Csv,
}

fn format_of(path: &Path) -> Result<Format> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("npy") {
        Ok(Format::Npy)
    } else if ext.eq_ignore_ascii_case("csv") {
        Ok(Format::Csv)
    } else {
        Err(Error::invalid("output path", format!("{} must end in .npy or .csv", path.display())))
    }
}

/// Writes a `rows x cols` row-major matrix of samples, as `.npy` or `.csv` by extension.
pub fn write_samples(path: &Path, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    let format = format_of(path)?;
    if rows.checked_mul(cols) != Some(data.len()) {
        return Err(Error::invalid("samples", format!("{} values do not form a {rows} x {cols} matrix", data.len())));
    }
    match format {
        Format::Npy => npy::write_f32(path, data, &[rows, cols]),
        Format::Csv => csv::write_f32(path, data, cols),
    }
}

/// Reads a sample matrix written by [`write_samples`] (or by numpy / a spreadsheet):
/// returns the row-major values, rows and cols. A 1-d `.npy` array reads as one column.
pub fn read_samples(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    match format_of(path)? {
        Format::Csv => csv::read_f32(path),
        Format::Npy => {
            let (data, shape) = npy::read_f32(path)?;
            match shape[..] {
                [rows, cols] => Ok((data, rows, cols)),
                [rows] => Ok((data, rows, 1)),
                _ => Err(Error::format(path, format!("expected a 1-d or 2-d array of samples, found shape {shape:?}"))),
            }
        }
    }
}
