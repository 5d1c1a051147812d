//! Grids of images (samples with values in [0, 1], filters scaled to their own range with
//! mid-grey at zero so the sign shows): greyscale, or in colour for RGB images; with a title,
//! gutters between cells and optional column labels.

use std::path::Path;

use image::{Rgb, RgbImage};

use super::axes::{self, PAD, Rect};
use super::font::{draw_text, line_height, text_width};
use crate::{Error, Result};

/// How pixel values map to grey.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// 0 is black, 1 is white (clamped).
    Unit,
    /// Each image symmetric around 0: -max|x| black, 0 grey, +max|x| white.
    Symmetric,
}

/// The most pixels an image grid may have (64 Mi).
pub const MAX_GRID_PIXELS: u64 = 1 << 26;

/// Background pixels between cells, and between groups of labelled columns.
const GUTTER: u64 = 4;
/// A 1-pixel grey frame around each cell, so cells stay apart where images are white at their
/// edges (grey: a colour would make every grid look like an RGB one).
const CELL_FRAME: Rgb<u8> = Rgb([165, 165, 165]);
const GROUP_GUTTER: u64 = 14;
const TEXT: u32 = 1;

/// A grid figure: build with [`ImageGrid::new`], write with [`ImageGrid::png`].
#[derive(Clone, Debug, PartialEq)]
pub struct ImageGrid {
    title: String,
    /// (channels, height, width): RGB (3 channels) in colour, any other count greyscale with
    /// the channels stacked vertically.
    shape: (usize, usize, usize),
    cols: usize,
    zoom: usize,
    scale: Scale,
    column_labels: Vec<String>,
}

/// Where everything of a grid of `n` images goes.
struct Layout {
    cols: u64,
    cell: (u64, u64),
    /// Top-left of the first cell.
    origin: (u64, u64),
    /// Columns per group (a wider gutter after each), 0 for none.
    group: u64,
    size: (u64, u64),
}

impl Layout {
    fn cell_x(&self, c: u64) -> u64 {
        let groups = if self.group > 1 { c / self.group } else { 0 };
        self.origin.0 + c * (self.cell.0 + GUTTER) + groups * (GROUP_GUTTER - GUTTER)
    }

    fn cell_y(&self, r: u64) -> u64 {
        self.origin.1 + r * (self.cell.1 + GUTTER)
    }
}

impl ImageGrid {
    /// Images of `shape` (channels, height, width), 8 a row, magnified 3 times, values in [0, 1].
    pub fn new(title: impl Into<String>, shape: (usize, usize, usize)) -> Self {
        ImageGrid { title: title.into(), shape, cols: 8, zoom: 3, scale: Scale::Unit, column_labels: Vec::new() }
    }

    pub fn cols(mut self, cols: usize) -> Self {
        self.cols = cols;
        self
    }

    pub fn zoom(mut self, zoom: usize) -> Self {
        self.zoom = zoom;
        self
    }

    pub fn scale(mut self, scale: Scale) -> Self {
        self.scale = scale;
        self
    }

    /// Labels over the columns, repeated across a row when there are fewer of them than
    /// columns: several labels make groups of that many columns, set apart by wider gutters
    /// (e.g. damaged, restored, original).
    pub fn column_labels(mut self, labels: &[&str]) -> Self {
        self.column_labels = labels.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Width and height in pixels of the figure of `n` images; an error when it exceeds
    /// [`MAX_GRID_PIXELS`]. Callers check this before the work that makes the images.
    pub fn size(&self, n: usize) -> Result<(usize, usize)> {
        let l = self.layout(n)?;
        Ok((l.size.0 as usize, l.size.1 as usize))
    }

    fn layout(&self, n: usize) -> Result<Layout> {
        let (c, h, w) = self.shape;
        let too_big = || {
            Error::invalid(
                "image grid",
                format!(
                    "{n} images of {c}x{h}x{w} ({} per row, x{}) exceed the {MAX_GRID_PIXELS}-pixel limit",
                    self.cols, self.zoom
                ),
            )
        };
        let cols = self.cols.min(n).max(1) as u64;
        let rows = (n as u64).div_ceil(cols);
        let stacked = if c == 3 { 1 } else { c as u64 };
        let cell = (w as u64)
            .checked_mul(self.zoom as u64)
            .zip((h as u64).checked_mul(stacked).and_then(|v| v.checked_mul(self.zoom as u64)));
        let Some(cell) = cell.filter(|&(cw, ch)| cw < 1 << 24 && ch < 1 << 24) else { return Err(too_big()) };
        let group = if self.column_labels.len() > 1 { self.column_labels.len() as u64 } else { 0 };
        let header = if self.column_labels.is_empty() { 0 } else { line_height(TEXT) as u64 + 2 };
        let origin = (PAD as u64, PAD as u64 + axes::title_height() as u64 + header);
        let mut l = Layout { cols, cell, origin, group, size: (0, 0) };
        let (Some(right), Some(bottom)) = (
            cols.checked_sub(1).map(|c| l.cell_x(c) + cell.0 + PAD as u64),
            rows.checked_mul(cell.1 + GUTTER).map(|v| origin.1 + v + PAD as u64),
        ) else {
            return Err(too_big());
        };
        l.size = (right.max(axes::title_min_width(&self.title) as u64), bottom);
        if l.size.0.checked_mul(l.size.1).is_none_or(|p| p > MAX_GRID_PIXELS) {
            return Err(too_big());
        }
        Ok(l)
    }

    /// Draws `images` ([n, channels * height * width], channel-major) and writes the figure
    /// atomically.
    pub fn png(&self, path: &Path, images: &[f32]) -> Result<()> {
        super::save_png(path, &self.image(images)?)
    }

    fn image(&self, images: &[f32]) -> Result<RgbImage> {
        let (c, h, w) = self.shape;
        let d = c * h * w;
        if d == 0 || images.is_empty() || !images.len().is_multiple_of(d) || self.cols == 0 || self.zoom == 0 {
            return Err(Error::invalid(
                "image grid",
                format!("{} values are not whole {c}x{h}x{w} images (or cols/zoom is 0)", images.len()),
            ));
        }
        let n = images.len() / d;
        let l = self.layout(n)?;
        let mut img = RgbImage::from_pixel(l.size.0 as u32, l.size.1 as u32, axes::BACKGROUND);
        axes::draw_title(&mut img, &self.title, PAD);
        let (cw, ch) = (l.cell.0 as usize, l.cell.1 as usize);
        let zoom = self.zoom;
        let plane = h * w;
        for (k, im) in images.chunks(d).enumerate() {
            let m = im.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
            let (x0, y0) = (l.cell_x(k as u64 % l.cols) as u32, l.cell_y(k as u64 / l.cols) as u32);
            Rect { x: x0, y: y0, w: cw as u32, h: ch as u32 }.frame(&mut img, CELL_FRAME);
            for y in 0..ch {
                for x in 0..cw {
                    let (row, col) = (y / zoom, x / zoom);
                    let rgb = if c == 3 {
                        let p = row * w + col;
                        Rgb([0, 1, 2].map(|ci| level(im[ci * plane + p], self.scale, m)))
                    } else {
                        // Channels stacked: row runs over channels * height.
                        let g = level(im[row * w + col], self.scale, m);
                        Rgb([g, g, g])
                    };
                    img.put_pixel(x0 + x as u32, y0 + y as u32, rgb);
                }
            }
        }
        self.draw_column_labels(&mut img, &l);
        Ok(img)
    }

    fn draw_column_labels(&self, img: &mut RgbImage, l: &Layout) {
        let y = (l.origin.1 - line_height(TEXT) as u64 - 2) as i64;
        for col in 0..l.cols {
            let Some(label) = self.column_labels.get(col as usize % self.column_labels.len().max(1)) else { break };
            let label = fit(label, l.cell.0 as u32);
            let x = l.cell_x(col) as i64 + (l.cell.0 as i64 - text_width(&label, TEXT) as i64) / 2;
            draw_text(img, &label, (x, y), TEXT, axes::INK);
        }
    }
}

/// `label` cut to fit `width` pixels.
fn fit(label: &str, width: u32) -> String {
    let mut s: String = label.to_string();
    while text_width(&s, TEXT) > width && !s.is_empty() {
        s.pop();
    }
    s
}

/// A value as an 8-bit level under `scale` (`m`: the image's largest magnitude).
fn level(v: f32, scale: Scale, m: f32) -> u8 {
    let g = match scale {
        Scale::Unit => v,
        Scale::Symmetric => 0.5 + 0.5 * v / m,
    };
    if g.is_finite() { (g.clamp(0.0, 1.0) * 255.0).round() as u8 } else { 0 }
}

/// The picture of `n` visible units: a square grey image, three square channels of side 4 or
/// more (RGB, as colour data binarised per channel), else one row.
pub fn image_shape(n: usize) -> (usize, usize, usize) {
    let square = |m: usize| {
        let s = (m as f64).sqrt().round() as usize;
        (s * s == m).then_some(s)
    };
    match (square(n), square(n / 3)) {
        (Some(s), _) => (1, s, s),
        (None, Some(s)) if n.is_multiple_of(3) && s >= 4 => (3, s, s),
        _ => (1, 1, n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_sit_between_background_gutters() {
        let dir = crate::io::tests::scratch_dir("grid");
        let path = dir.join("g.png");
        // 6 grey 2x3 images (value 0.5 -> level 128), zoom 2, 3 a row: two rows.
        let grid = ImageGrid::new("six", (1, 2, 3)).cols(3).zoom(2);
        grid.png(&path, &[0.5; 36]).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let l = grid.layout(6).unwrap();
        assert_eq!((img.width() as u64, img.height() as u64), l.size);
        let grey = Rgb([128, 128, 128]);
        for r in 0..2 {
            for c in 0..3 {
                let (x, y) = (l.cell_x(c) as u32, l.cell_y(r) as u32);
                assert_eq!(*img.get_pixel(x, y), grey);
                assert_eq!(*img.get_pixel(x + 5, y + 3), grey, "a 6x4 cell");
                // Framed, then background up to the next cell's frame.
                assert_eq!(*img.get_pixel(x + 6, y), CELL_FRAME, "frame right of the cell");
                assert_eq!(*img.get_pixel(x - 1, y + 2), CELL_FRAME, "frame left of the cell");
                assert_eq!(*img.get_pixel(x + 7, y), axes::BACKGROUND, "gutter right of the cell");
                assert_eq!(*img.get_pixel(x + 3, y + 5), axes::BACKGROUND, "gutter under the cell");
            }
        }
        assert_eq!(l.cell_x(1) - l.cell_x(0), 6 + GUTTER);
        let title_ink = (0..img.width()).flat_map(|x| (PAD..PAD + 14).map(move |y| (x, y)));
        assert!(title_ink.filter(|&(x, y)| *img.get_pixel(x, y) == axes::INK).count() > 10, "title drawn");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn labelled_groups_get_wider_gutters_and_labels() {
        let grid =
            ImageGrid::new("restore", (3, 4, 4)).cols(6).zoom(10).column_labels(&["damaged", "restored", "original"]);
        let l = grid.layout(12).unwrap();
        assert_eq!(l.cell_x(1) - l.cell_x(0), 40 + GUTTER);
        assert_eq!(l.cell_x(3) - l.cell_x(2), 40 + GROUP_GUTTER, "a group gutter after 3 columns");
        let img = grid.image(&vec![0.0; 12 * 48]).unwrap();
        assert_eq!(*img.get_pixel(l.cell_x(0) as u32, l.cell_y(0) as u32), Rgb([0, 0, 0]), "RGB cell");
        // Each column's label is drawn in the band above it.
        let band = l.origin.1 as u32 - line_height(TEXT) - 2..l.origin.1 as u32;
        for c in 0..6 {
            let xs = l.cell_x(c) as u32..(l.cell_x(c) + l.cell.0) as u32;
            let ink =
                xs.flat_map(|x| band.clone().map(move |y| (x, y))).filter(|&(x, y)| *img.get_pixel(x, y) == axes::INK);
            assert!(ink.count() > 20, "label over column {c}");
        }
    }

    #[test]
    fn sizes_are_refused_before_drawing() {
        assert!(ImageGrid::new("t", (1, 28, 28)).size(64).is_ok());
        assert!(ImageGrid::new("t", (1, 28, 28)).cols(1).zoom(100).size(1_000_000).is_err());
        assert!(ImageGrid::new("t", (1, usize::MAX, 2)).size(1).is_err());
        let dir = crate::io::tests::scratch_dir("grid-err");
        let path = dir.join("g.png");
        assert!(ImageGrid::new("t", (1, 2, 2)).png(&path, &[0.0; 3]).is_err());
        assert!(ImageGrid::new("t", (1, 2, 2)).cols(0).png(&path, &[0.0; 4]).is_err());
        assert!(ImageGrid::new("t", (1, 2, 2)).zoom(0).png(&path, &[0.0; 4]).is_err());
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symmetric_scale_puts_zero_at_grey() {
        assert_eq!(level(0.0, Scale::Symmetric, 2.0), 128);
        assert_eq!(level(-2.0, Scale::Symmetric, 2.0), 0);
        assert_eq!(level(2.0, Scale::Unit, 1.0), 255);
        assert_eq!(level(f32::NAN, Scale::Unit, 1.0), 0);
    }

    #[test]
    fn visible_layers_are_drawn_as_grey_rgb_or_a_row() {
        assert_eq!(super::image_shape(784), (1, 28, 28));
        assert_eq!(super::image_shape(3 * 784), (3, 28, 28));
        assert_eq!(super::image_shape(64), (1, 8, 8));
        assert_eq!(super::image_shape(12), (1, 1, 12));
        assert_eq!(super::image_shape(10), (1, 1, 10));
    }
}
