//! PNG grids of greyscale images: samples (values in [0, 1]) and filters (rows of W, each
//! scaled to its own range, mid-grey at zero so the sign shows).

use crate::{Error, Result};
use image::{GrayImage, ImageFormat, Luma};
use std::path::Path;

/// How pixel values map to grey.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// 0 is black, 1 is white (clamped).
    Unit,
    /// Each image symmetric around 0: -max|x| black, 0 grey, +max|x| white.
    Symmetric,
}

/// Draws `images` ([n, height * width]) in a grid `cols` wide with 1-pixel gaps, each pixel
/// magnified `zoom` times, and writes it atomically.
pub fn image_grid_png(path: &Path, images: &[f32], height: usize, width: usize, cols: usize, zoom: usize, scale: Scale) -> Result<()> {
    let d = height * width;
    if d == 0 || images.is_empty() || images.len() % d != 0 || cols == 0 || zoom == 0 {
        return Err(Error::invalid("image grid", format!("{} values are not whole {height}x{width} images", images.len())));
    }
    let n = images.len() / d;
    let cols = cols.min(n);
    let rows = n.div_ceil(cols);
    let (cw, ch) = (width * zoom + 1, height * zoom + 1);
    let (w_px, h_px) = (cols * cw + 1, rows * ch + 1);
    if (w_px as u64) * (h_px as u64) > 1 << 26 {
        return Err(Error::invalid("image grid", format!("{w_px}x{h_px} pixels is too large")));
    }
    let mut img = GrayImage::from_pixel(w_px as u32, h_px as u32, Luma([40]));
    for (k, im) in images.chunks(d).enumerate() {
        let m = im.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
        let (x0, y0) = ((k % cols) * cw + 1, (k / cols) * ch + 1);
        for y in 0..height * zoom {
            for x in 0..width * zoom {
                let v = im[(y / zoom) * width + x / zoom];
                let g = match scale {
                    Scale::Unit => v,
                    Scale::Symmetric => 0.5 + 0.5 * v / m,
                };
                let g = if g.is_finite() { (g.clamp(0.0, 1.0) * 255.0).round() as u8 } else { 0 };
                img.put_pixel((x0 + x) as u32, (y0 + y) as u32, Luma([g]));
            }
        }
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png).map_err(|e| Error::invalid("image grid", e.to_string()))?;
    crate::io::write_atomic(path, &bytes.into_inner())
}
