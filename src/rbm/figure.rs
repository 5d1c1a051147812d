//! PNG grids of images: samples (values in [0, 1]) and filters (rows of W, each scaled to its
//! own range, mid-grey at zero so the sign shows); greyscale, or in colour for RGB images
//! ([`channel_grid_png`]).

use crate::{Error, Result};
use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage};
use std::path::Path;

/// How pixel values map to grey.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// 0 is black, 1 is white (clamped).
    Unit,
    /// Each image symmetric around 0: -max|x| black, 0 grey, +max|x| white.
    Symmetric,
}

/// The most pixels an image grid may have (64 Mi: a 64 MiB greyscale image).
pub const MAX_GRID_PIXELS: u64 = 1 << 26;

/// Width and height in pixels of a grid of `n` images of `height` x `width`, `cols` wide
/// (at most `n`), magnified `zoom` times with 1-pixel gaps; an error when it exceeds
/// [`MAX_GRID_PIXELS`]. Callers check this before the work that makes the images.
pub fn grid_pixels(n: usize, height: usize, width: usize, cols: usize, zoom: usize) -> Result<(usize, usize)> {
    let cols = cols.min(n).max(1) as u64;
    let rows = (n as u64).div_ceil(cols);
    let cell = |side: usize| (side as u64).checked_mul(zoom as u64).and_then(|s| s.checked_add(1));
    let px = |count: u64, side: usize| cell(side).and_then(|c| c.checked_mul(count)).and_then(|p| p.checked_add(1));
    match (px(cols, width), px(rows, height)) {
        (Some(w), Some(h)) if w.checked_mul(h).is_some_and(|p| p <= MAX_GRID_PIXELS) => Ok((w as usize, h as usize)),
        _ => Err(Error::invalid(
            "image grid",
            format!(
                "{n} images of {height}x{width} pixels ({cols} per row, x{zoom}) exceed the {MAX_GRID_PIXELS}-pixel limit"
            ),
        )),
    }
}

/// Draws `images` ([n, height * width]) in a grid `cols` wide with 1-pixel gaps, each pixel
/// magnified `zoom` times, and writes it atomically.
pub fn image_grid_png(
    path: &Path,
    images: &[f32],
    height: usize,
    width: usize,
    cols: usize,
    zoom: usize,
    scale: Scale,
) -> Result<()> {
    let d = height * width;
    if d == 0 || images.is_empty() || !images.len().is_multiple_of(d) || cols == 0 || zoom == 0 {
        return Err(Error::invalid(
            "image grid",
            format!("{} values are not whole {height}x{width} images", images.len()),
        ));
    }
    let n = images.len() / d;
    let cols = cols.min(n);
    let (w_px, h_px) = grid_pixels(n, height, width, cols, zoom)?;
    let (cw, ch) = (width * zoom + 1, height * zoom + 1);
    let mut img = GrayImage::from_pixel(w_px as u32, h_px as u32, Luma([40]));
    for (k, im) in images.chunks(d).enumerate() {
        let m = im.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
        let (x0, y0) = ((k % cols) * cw + 1, (k / cols) * ch + 1);
        for y in 0..height * zoom {
            for x in 0..width * zoom {
                let v = im[(y / zoom) * width + x / zoom];
                img.put_pixel((x0 + x) as u32, (y0 + y) as u32, Luma([level(v, scale, m)]));
            }
        }
    }
    write_png(path, image::DynamicImage::ImageLuma8(img))
}

/// A value as an 8-bit level under `scale` (`m`: the image's largest magnitude).
fn level(v: f32, scale: Scale, m: f32) -> u8 {
    let g = match scale {
        Scale::Unit => v,
        Scale::Symmetric => 0.5 + 0.5 * v / m,
    };
    if g.is_finite() { (g.clamp(0.0, 1.0) * 255.0).round() as u8 } else { 0 }
}

fn write_png(path: &Path, img: image::DynamicImage) -> Result<()> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png).map_err(|e| Error::invalid("image grid", e.to_string()))?;
    crate::io::write_atomic(path, &bytes.into_inner())
}

/// Draws `images` ([n, channels * height * width], channel-major) as [`image_grid_png`] does:
/// RGB images (3 channels) in colour, any other count greyscale with the channels stacked
/// vertically.
pub fn channel_grid_png(
    path: &Path,
    images: &[f32],
    (channels, height, width): (usize, usize, usize),
    cols: usize,
    zoom: usize,
    scale: Scale,
) -> Result<()> {
    if channels != 3 {
        return image_grid_png(path, images, channels * height, width, cols, zoom, scale);
    }
    let plane = height * width;
    let d = 3 * plane;
    if d == 0 || images.is_empty() || !images.len().is_multiple_of(d) || cols == 0 || zoom == 0 {
        return Err(Error::invalid(
            "image grid",
            format!("{} values are not whole 3x{height}x{width} images", images.len()),
        ));
    }
    let n = images.len() / d;
    let cols = cols.min(n);
    let (w_px, h_px) = grid_pixels(n, height, width, cols, zoom)?;
    let (cw, ch) = (width * zoom + 1, height * zoom + 1);
    let mut img = RgbImage::from_pixel(w_px as u32, h_px as u32, Rgb([40, 40, 40]));
    for (k, im) in images.chunks(d).enumerate() {
        let m = im.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
        let (x0, y0) = ((k % cols) * cw + 1, (k / cols) * ch + 1);
        for y in 0..height * zoom {
            for x in 0..width * zoom {
                let p = (y / zoom) * width + x / zoom;
                let rgb = Rgb([0, 1, 2].map(|c| level(im[c * plane + p], scale, m)));
                img.put_pixel((x0 + x) as u32, (y0 + y) as u32, rgb);
            }
        }
    }
    write_png(path, image::DynamicImage::ImageRgb8(img))
}
