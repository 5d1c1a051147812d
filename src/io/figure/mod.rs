//! PNG figures that a reader understands alone, drawn pixel by pixel with the `image` crate and a
//! built-in bitmap font (no plotting crate, no font file, no system library): every figure has a
//! title, named axes with round ticks, a colour bar naming its quantity where colour encodes
//! one, and a legend where several sets or marks share a plot.
//!
//! - [`Heatmap`]: the density of a 2-d energy with samples and constraint boundaries on top;
//! - [`histograms_png`]: per-dimension histograms on a shared range, [`overlaid_histograms_png`]:
//!   several sets of values on one axis (OOD energies);
//! - [`ImageGrid`]: images in a grid with gutters, a title and column labels.

mod axes;
mod font;
mod grid;
mod heatmap;
mod hist;

use std::path::Path;

use image::{ImageFormat, RgbImage};

pub use grid::{ImageGrid, Scale, image_shape};
pub use heatmap::{Boundary, Grid2d, Heatmap, auto_bounds};
pub use hist::{SET_COLORS, histograms_png, overlaid_histograms_png};

use crate::{Error, Result};

/// Refuse figures that would need gigabytes of memory rather than abort on allocation.
const MAX_PIXELS: u64 = 1 << 26;

/// Image dimensions for `w x h` units of `scale` pixels, or an error if too large.
fn image_size(w: usize, h: usize, scale: u32, what: &str) -> Result<(u32, u32)> {
    let side = |n: usize| u32::try_from(n).ok().and_then(|n| n.checked_mul(scale));
    match (side(w), side(h)) {
        (Some(w), Some(h)) if w > 0 && h > 0 && (w as u64) * (h as u64) <= MAX_PIXELS => Ok((w, h)),
        _ => Err(Error::invalid(
            what,
            format!("a {w} x {h} figure at {scale} px each is empty or larger than {MAX_PIXELS} pixels"),
        )),
    }
}

fn save_png(path: &Path, img: &RgbImage) -> Result<()> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, ImageFormat::Png).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    super::write_atomic(path, buf.get_ref())
}
