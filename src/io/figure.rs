//! Quick-look PNG figures drawn pixel by pixel with the `image` crate (no plotting or font
//! dependency): an energy heatmap with samples on top, and per-dimension histograms.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};

use crate::{Error, Result};

/// Refuse figures that would need gigabytes of memory rather than abort on allocation.
const MAX_PIXELS: u64 = 1 << 26;

/// A regular grid of cells over a 2-d box, for evaluating an energy on a picture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid2d {
    pub x_min: f32,
    pub x_max: f32,
    pub y_min: f32,
    pub y_max: f32,
    pub nx: usize,
    pub ny: usize,
}

impl Grid2d {
    fn dx(&self) -> f32 {
        (self.x_max - self.x_min) / self.nx as f32
    }

    fn dy(&self) -> f32 {
        (self.y_max - self.y_min) / self.ny as f32
    }

    /// Cell centres as interleaved `(x, y)` pairs, row-major with row 0 at the top (`y_max`),
    /// i.e. in the order pixels are laid out; `energy_heatmap_png` expects values in this order.
    pub fn points(&self) -> Vec<f32> {
        let (dx, dy) = (self.dx(), self.dy());
        let mut out = Vec::with_capacity(2 * self.nx * self.ny);
        for r in 0..self.ny {
            let y = self.y_max - (r as f32 + 0.5) * dy;
            for c in 0..self.nx {
                out.extend_from_slice(&[self.x_min + (c as f32 + 0.5) * dx, y]);
            }
        }
        out
    }

    /// Area of one cell, e.g. to turn a sum of densities over the grid into an integral.
    pub fn cell_area(&self) -> f64 {
        let w = (self.x_max as f64 - self.x_min as f64) / self.nx as f64;
        let h = (self.y_max as f64 - self.y_min as f64) / self.ny as f64;
        w * h
    }

    /// Checks the grid is non-empty with finite, increasing bounds.
    pub fn validate(&self) -> Result<()> {
        let finite = [self.x_min, self.x_max, self.y_min, self.y_max].iter().all(|v| v.is_finite());
        if self.nx == 0 || self.ny == 0 || !finite || self.x_max <= self.x_min || self.y_max <= self.y_min {
            return Err(Error::invalid("grid", format!("need nx, ny >= 1 and finite min < max bounds, got {self:?}")));
        }
        Ok(())
    }
}

/// Viridis sampled at 9 evenly spaced points: perceptually ordered and readable in greyscale.
const VIRIDIS: [[f32; 3]; 9] = [
    [68.0, 1.0, 84.0],
    [71.0, 45.0, 123.0],
    [59.0, 82.0, 139.0],
    [44.0, 114.0, 142.0],
    [33.0, 145.0, 140.0],
    [40.0, 174.0, 128.0],
    [94.0, 201.0, 98.0],
    [173.0, 220.0, 48.0],
    [253.0, 231.0, 37.0],
];

/// Maps `t` in [0, 1] (clamped; NaN as 0) to a colour by interpolating the anchors.
fn colormap(t: f32) -> Rgb<u8> {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let pos = t * (VIRIDIS.len() - 1) as f32;
    let i = (pos as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f32;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    Rgb(std::array::from_fn(|k| (a[k] + (b[k] - a[k]) * f).round() as u8))
}

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

/// Fills the square of half-width `half` around `(cx, cy)`, clipped to the image.
fn fill_square(img: &mut RgbImage, cx: i64, cy: i64, half: i64, color: Rgb<u8>) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for y in (cy - half).max(0)..=(cy + half).min(h - 1) {
        for x in (cx - half).max(0)..=(cx + half).min(w - 1) {
            img.put_pixel(x as u32, y as u32, color);
        }
    }
}

/// Draws the unnormalised density `exp(-(E - min E))` of `energies` (one per cell, in
/// [`Grid2d::points`] order), `pixel_size` pixels per cell, with the samples (interleaved
/// `x, y`) inside the grid drawn as light dots with a dark outline, framed by axes with ticks
/// at round coordinates and their values (the plot's top-left pixel is at
/// [`plot_origin`]`(grid)`).
pub fn energy_heatmap_png(
    path: &Path,
    grid: &Grid2d,
    energies: &[f32],
    samples_xy: &[f32],
    pixel_size: u32,
) -> Result<()> {
    let plot = heatmap_image(grid, energies, samples_xy, pixel_size)?;
    save_png(path, &with_axes(&plot, grid))
}

fn heatmap_image(grid: &Grid2d, energies: &[f32], samples_xy: &[f32], pixel_size: u32) -> Result<RgbImage> {
    grid.validate()?;
    if grid.nx.checked_mul(grid.ny) != Some(energies.len()) {
        return Err(Error::invalid(
            "energies",
            format!("{} values for a {} x {} grid", energies.len(), grid.nx, grid.ny),
        ));
    }
    if !samples_xy.len().is_multiple_of(2) {
        return Err(Error::invalid("samples", "interleaved (x, y) pairs need an even length"));
    }
    let (w, h) = image_size(grid.nx, grid.ny, pixel_size, "heatmap size")?;

    // Shift by the minimum so the densest cell is exactly 1 and exp cannot overflow.
    let e_min = energies.iter().copied().filter(|e| e.is_finite()).fold(f32::INFINITY, f32::min);
    let colors: Vec<Rgb<u8>> =
        energies.iter().map(|&e| colormap(if e.is_finite() { (e_min - e).exp() } else { 0.0 })).collect();
    let ps = pixel_size as usize;
    let mut img = RgbImage::from_fn(w, h, |x, y| colors[(y as usize / ps) * grid.nx + x as usize / ps]);

    let inside: Vec<(i64, i64)> = samples_xy
        .chunks_exact(2)
        .filter(|p| (grid.x_min..=grid.x_max).contains(&p[0]) && (grid.y_min..=grid.y_max).contains(&p[1]))
        .map(|p| {
            let fx = (p[0] - grid.x_min) / (grid.x_max - grid.x_min) * w as f32;
            let fy = (grid.y_max - p[1]) / (grid.y_max - grid.y_min) * h as f32;
            ((fx as i64).min(w as i64 - 1), (fy as i64).min(h as i64 - 1))
        })
        .collect();
    // Outlines first, then centres, so clusters of samples read as light blobs.
    for &(x, y) in &inside {
        fill_square(&mut img, x, y, 2, Rgb([20, 20, 20]));
    }
    for &(x, y) in &inside {
        fill_square(&mut img, x, y, 1, Rgb([255, 255, 255]));
    }
    Ok(img)
}

/// Digits, minus and point as 3x5 bitmaps (rows top to bottom, bit 2 = left column).
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '-' => [0, 0, 7, 0, 0],
        '.' => [0, 0, 0, 0, 2],
        _ => return None,
    })
}

/// Pixels per font cell, and a character's advance (3 columns and 1 of space).
const FONT_SCALE: u32 = 2;
const CHAR_W: u32 = 4 * FONT_SCALE;
const CHAR_H: u32 = 5 * FONT_SCALE;
const TICK: u32 = 4;
const AXIS_COLOR: Rgb<u8> = Rgb([60, 60, 60]);

fn draw_text(img: &mut RgbImage, text: &str, x0: i64, y0: i64) {
    for (i, c) in text.chars().enumerate() {
        let Some(rows) = glyph(c) else { continue };
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    for dy in 0..FONT_SCALE as i64 {
                        for dx in 0..FONT_SCALE as i64 {
                            let x = x0 + (i as i64 * CHAR_W as i64) + col as i64 * FONT_SCALE as i64 + dx;
                            let y = y0 + r as i64 * FONT_SCALE as i64 + dy;
                            if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
                                img.put_pixel(x as u32, y as u32, AXIS_COLOR);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Round tick values (1, 2 or 5 times a power of ten apart, about 5 of them) in `[lo, hi]`,
/// and the decimals their labels need.
pub fn ticks(lo: f32, hi: f32) -> (Vec<f64>, usize) {
    let (lo, hi) = (lo as f64, hi as f64);
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return (Vec::new(), 0);
    }
    let raw = (hi - lo) / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|&s| s >= raw).unwrap_or(10.0 * power);
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    ((first..=last).map(|k| k as f64 * step).collect(), decimals)
}

fn tick_label(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    // No "-0" or "-0.0".
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// Where [`energy_heatmap_png`] puts the plot's top-left pixel: (left margin, top margin).
pub fn plot_origin(grid: &Grid2d) -> (u32, u32) {
    let (yt, decimals) = ticks(grid.y_min, grid.y_max);
    let widest = yt.iter().map(|&v| tick_label(v, decimals).len() as u32).max().unwrap_or(0);
    (widest * CHAR_W + TICK + 6, 8)
}

/// The plot in a white frame with x ticks and labels below and y ticks and labels on the left.
fn with_axes(plot: &RgbImage, grid: &Grid2d) -> RgbImage {
    let (left, top) = plot_origin(grid);
    let (right, bottom) = (3 * CHAR_W, TICK + CHAR_H + 8);
    let (pw, ph) = plot.dimensions();
    let mut img = RgbImage::from_pixel(left + pw + right, top + ph + bottom, Rgb([255, 255, 255]));
    image::imageops::replace(&mut img, plot, left as i64, top as i64);
    let to_px =
        |v: f64, lo: f32, hi: f32, n: u32| ((v - lo as f64) / (hi as f64 - lo as f64) * n as f64).round() as i64;
    let (xt, xd) = ticks(grid.x_min, grid.x_max);
    for v in xt {
        let x = left as i64 + to_px(v, grid.x_min, grid.x_max, pw).min(pw as i64 - 1);
        for y in top + ph..top + ph + TICK {
            img.put_pixel(x as u32, y, AXIS_COLOR);
        }
        let label = tick_label(v, xd);
        let width = label.len() as i64 * CHAR_W as i64 - FONT_SCALE as i64;
        draw_text(&mut img, &label, x - width / 2, (top + ph + TICK + 3) as i64);
    }
    let (yt, yd) = ticks(grid.y_min, grid.y_max);
    for v in yt {
        let y = top as i64 + (ph as i64 - 1 - to_px(v, grid.y_min, grid.y_max, ph)).max(0);
        for x in left - TICK..left {
            img.put_pixel(x, y as u32, AXIS_COLOR);
        }
        let label = tick_label(v, yd);
        let width = label.len() as i64 * CHAR_W as i64 - FONT_SCALE as i64;
        draw_text(&mut img, &label, left as i64 - TICK as i64 - 3 - width, y - CHAR_H as i64 / 2);
    }
    img
}

const PANEL_W: u32 = 200;
const PANEL_H: u32 = 150;
const PANEL_COLS: usize = 4;
const BINS: usize = 40;

/// Draws one 40-bin histogram panel per dimension (the first `dims_to_show` of `dim`), up to
/// 4 panels per row, each spanning that dimension's finite min..max.
pub fn histograms_png(path: &Path, samples: &[f32], dim: usize, dims_to_show: usize) -> Result<()> {
    if dim == 0 || !samples.len().is_multiple_of(dim) {
        return Err(Error::invalid(
            "samples",
            format!("{} values do not split into samples of dimension {dim}", samples.len()),
        ));
    }
    let shown = dims_to_show.min(dim);
    if shown == 0 {
        return Err(Error::invalid("dims_to_show", "must be at least 1"));
    }
    let (cols, rows) = (shown.min(PANEL_COLS), shown.div_ceil(PANEL_COLS));
    let (pw, ph) = (PANEL_W as usize, PANEL_H as usize);
    let (w, h) = image_size(cols * pw, rows * ph, 1, "histogram figure")?;
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));

    for d in 0..shown {
        let (x0, y0) = ((d % PANEL_COLS * pw) as u32, (d / PANEL_COLS * ph) as u32);
        // Light panel background with a white gutter between panels.
        for y in y0 + 3..y0 + PANEL_H - 3 {
            for x in x0 + 3..x0 + PANEL_W - 3 {
                img.put_pixel(x, y, Rgb([238, 238, 242]));
            }
        }
        // Plot area inside the panel, framed.
        let (left, top, right, bottom) = (x0 + 12, y0 + 12, x0 + PANEL_W - 12, y0 + PANEL_H - 12);
        let counts = histogram(samples.iter().skip(d).step_by(dim).copied());
        let max = counts.iter().copied().max().unwrap_or(0);
        let (plot_w, plot_h) = ((right - left) as usize, (bottom - top) as usize);
        for (b, &count) in counts.iter().enumerate().filter(|&(_, &c)| c > 0) {
            let bar_h = ((count as f64 / max as f64 * plot_h as f64).round() as u32).max(1);
            let (bx0, bx1) = (left + (b * plot_w / BINS) as u32, left + ((b + 1) * plot_w / BINS) as u32);
            for y in bottom - bar_h..bottom {
                for x in bx0..bx1 {
                    img.put_pixel(x, y, Rgb([70, 110, 180]));
                }
            }
        }
        let frame = Rgb([110, 110, 110]);
        for x in left..=right {
            img.put_pixel(x, top, frame);
            img.put_pixel(x, bottom, frame);
        }
        for y in top..=bottom {
            img.put_pixel(left, y, frame);
            img.put_pixel(right, y, frame);
        }
    }
    save_png(path, &img)
}

/// Bin counts of the finite values over their own min..max (a degenerate range is widened).
fn histogram(values: impl Iterator<Item = f32> + Clone) -> [usize; BINS] {
    let mut counts = [0; BINS];
    let finite = values.filter(|v| v.is_finite()).map(f64::from);
    let (lo, hi) = finite.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        return counts;
    }
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
    for v in finite {
        counts[(((v - lo) / (hi - lo) * BINS as f64) as usize).min(BINS - 1)] += 1;
    }
    counts
}

/// Bounds `(x_min, x_max, y_min, y_max)` enclosing the finite sample coordinates between the
/// `trim` and `1 - trim` quantiles (so a few runaway chains do not shrink the picture to a
/// dot), widened by `margin` times the range on each side (by 1 when there is no spread).
pub fn auto_bounds(samples_xy: &[f32], margin: f32, trim: f32) -> (f32, f32, f32, f32) {
    let margin = margin.max(0.0); // also maps NaN to 0
    let range = |axis: usize| {
        let mut v: Vec<f32> = samples_xy.chunks_exact(2).map(|p| p[axis]).filter(|v| v.is_finite()).collect();
        if v.is_empty() {
            return (-1.0, 1.0);
        }
        v.sort_by(f32::total_cmp);
        let k = ((v.len() - 1) as f32 * trim.clamp(0.0, 0.5)).round() as usize;
        let (lo, hi) = (v[k], v[v.len() - 1 - k]);
        if hi == lo {
            (lo - 1.0, hi + 1.0)
        } else {
            let pad = (hi - lo) * margin;
            if pad.is_finite() { (lo - pad, hi + pad) } else { (lo, hi) }
        }
    };
    let ((x0, x1), (y0, y1)) = (range(0), range(1));
    (x0, x1, y0, y1)
}

/// Line colours of [`overlaid_histograms_png`], in the order of its sets.
pub const SET_COLORS: [(&str, Rgb<u8>); 6] = [
    ("blue", Rgb([40, 90, 200])),
    ("orange", Rgb([235, 130, 20])),
    ("green", Rgb([40, 160, 70])),
    ("red", Rgb([210, 40, 40])),
    ("purple", Rgb([130, 70, 180])),
    ("brown", Rgb([140, 90, 50])),
];

/// Normalised histograms of several sets of values on one shared axis (the 0.5th to 99.5th
/// percentile of all of them, 60 bins), each a filled outline in [`SET_COLORS`] order (sets past
/// the sixth reuse them), with x ticks and an optional vertical threshold line (grey).
pub fn overlaid_histograms_png(path: &Path, sets: &[&[f32]], threshold: Option<f32>) -> Result<()> {
    const W: u32 = 640;
    const H: u32 = 280;
    const NBINS: usize = 60;
    let mut all: Vec<f32> = sets.iter().flat_map(|s| s.iter().copied()).filter(|v| v.is_finite()).collect();
    if all.is_empty() {
        return Err(Error::invalid("histogram", "no finite values to draw"));
    }
    all.sort_by(f32::total_cmp);
    let q = |p: f64| all[((p * (all.len() - 1) as f64).round() as usize).min(all.len() - 1)];
    let (mut lo, mut hi) = (q(0.005), q(0.995));
    if hi <= lo {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let mut plot = RgbImage::from_pixel(W, H, Rgb([248, 248, 250]));
    let bin = |v: f32| (((v - lo) / (hi - lo) * NBINS as f32).floor() as i64).clamp(0, NBINS as i64 - 1) as usize;
    let densities: Vec<[f64; NBINS]> = sets
        .iter()
        .map(|s| {
            let mut c = [0.0; NBINS];
            let finite: Vec<f32> = s.iter().copied().filter(|v| v.is_finite()).collect();
            for &v in &finite {
                c[bin(v)] += 1.0 / finite.len().max(1) as f64;
            }
            c
        })
        .collect();
    let top = densities.iter().flat_map(|c| c.iter().copied()).fold(0.0, f64::max).max(1e-12);
    for (k, c) in densities.iter().enumerate() {
        let color = SET_COLORS[k % SET_COLORS.len()].1;
        let light = Rgb(color.0.map(|v| ((v as u32 + 3 * 248) / 4) as u8));
        let mut prev_y: Option<u32> = None;
        for (b, &d) in c.iter().enumerate() {
            let (x0, x1) = ((b as u32 * W) / NBINS as u32, ((b as u32 + 1) * W) / NBINS as u32);
            let y = H - 1 - ((d / top) * (H - 10) as f64).round() as u32;
            for x in x0..x1 {
                for yy in y..H {
                    let p = plot.get_pixel_mut(x, yy);
                    if *p == Rgb([248, 248, 250]) {
                        *p = light;
                    }
                }
                plot.put_pixel(x, y, color);
            }
            if let Some(py) = prev_y {
                for yy in py.min(y)..=py.max(y) {
                    plot.put_pixel(x0, yy, color);
                }
            }
            prev_y = Some(y);
        }
    }
    if let Some(t) = threshold.filter(|t| *t > lo && *t < hi) {
        let x = (((t - lo) / (hi - lo)) * W as f32) as u32;
        for y in (0..H).filter(|y| y % 6 < 4) {
            plot.put_pixel(x.min(W - 1), y, Rgb([90, 90, 90]));
        }
    }
    let grid = Grid2d { x_min: lo, x_max: hi, y_min: 0.0, y_max: 0.0, nx: 1, ny: 1 };
    save_png(path, &with_axes(&plot, &grid))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: Grid2d = Grid2d { x_min: -2.0, x_max: 2.0, y_min: -1.0, y_max: 2.0, nx: 4, ny: 3 };

    #[test]
    fn grid_points_start_top_left() {
        let pts = GRID.points();
        assert_eq!(pts.len(), 24);
        assert_eq!(&pts[..4], &[-1.5, 1.5, -0.5, 1.5]);
        assert_eq!(&pts[22..], &[1.5, -0.5]);
        assert_eq!(GRID.cell_area(), 1.0);
        assert!(Grid2d { nx: 0, ..GRID }.validate().is_err());
        assert!(Grid2d { y_max: -1.0, ..GRID }.validate().is_err());
        assert!(Grid2d { x_min: f32::NAN, ..GRID }.validate().is_err());
    }

    #[test]
    fn colormap_is_ordered_and_clamped() {
        assert_eq!(colormap(0.0), Rgb([68, 1, 84]));
        assert_eq!(colormap(1.0), Rgb([253, 231, 37]));
        assert_eq!(colormap(f32::NAN), colormap(-3.0));
        assert_eq!(colormap(7.0), colormap(1.0));
        let lum = |c: Rgb<u8>| 0.3 * c[0] as f32 + 0.59 * c[1] as f32 + 0.11 * c[2] as f32;
        assert!((1..=100).all(|i| lum(colormap(i as f32 / 100.0)) > lum(colormap((i - 1) as f32 / 100.0))));
    }

    #[test]
    fn heatmap_orientation_dims_and_dots() {
        let dir = crate::io::tests::scratch_dir("heatmap");
        // E = y, so the density is highest in the bottom row; one cell is non-finite.
        let mut energies: Vec<f32> = GRID.points().chunks(2).map(|p| p[1]).collect();
        energies[0] = f32::NAN;
        let plain = dir.join("plain.png");
        energy_heatmap_png(&plain, &GRID, &energies, &[], 10).unwrap();
        let full = image::open(&plain).unwrap().to_rgb8();
        let (ox, oy) = plot_origin(&GRID);
        assert!(full.width() > 40 + ox && full.height() > 30 + oy, "axes around the plot");
        let img = image::imageops::crop_imm(&full, ox, oy, 40, 30).to_image();
        assert_eq!(*img.get_pixel(15, 25), colormap(1.0), "bottom row is the density peak");
        assert_eq!(*img.get_pixel(3, 3), colormap(0.0), "NaN energy draws as zero density");
        assert!(img.get_pixel(15, 5)[1] < img.get_pixel(15, 15)[1]);

        // Sample at the centre of cell (row 2, col 1); outside samples are ignored.
        let dots = dir.join("dots.png");
        let samples = [-0.5, -0.5, 50.0, 0.0, f32::NAN, 1.0, 2.0, 2.0];
        energy_heatmap_png(&dots, &GRID, &energies, &samples, 10).unwrap();
        let dotted = image::open(&dots).unwrap().to_rgb8();
        let dotted = image::imageops::crop_imm(&dotted, ox, oy, 40, 30).to_image();
        assert_eq!(*dotted.get_pixel(15, 25), Rgb([255, 255, 255]));
        assert_eq!(*dotted.get_pixel(17, 25), Rgb([20, 20, 20]));
        assert_eq!(*dotted.get_pixel(39, 0), Rgb([255, 255, 255]), "corner sample clipped, not lost");
        let changed = img.pixels().zip(dotted.pixels()).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 25 + 9, "one full dot plus a clipped corner dot");

        assert!(energy_heatmap_png(&plain, &GRID, &energies[1..], &[], 10).is_err());
        assert!(energy_heatmap_png(&plain, &GRID, &energies, &[1.0], 10).is_err());
        assert!(energy_heatmap_png(&plain, &GRID, &energies, &[], 0).is_err());
        assert!(energy_heatmap_png(&plain, &GRID, &energies, &[], u32::MAX).is_err());
        let all_nan = vec![f32::NAN; 12];
        energy_heatmap_png(&plain, &GRID, &all_nan, &[], 1).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(ticks(-2.3, 2.3), (vec![-2.0, -1.0, 0.0, 1.0, 2.0], 0));
        let (t, d) = ticks(0.05, 0.61);
        assert_eq!(d, 1);
        assert_eq!(t.len(), 3, "{t:?}");
        assert!((t[0] - 0.2).abs() < 1e-9 && (t[2] - 0.6).abs() < 1e-9, "{t:?}");
        assert_eq!(ticks(1.0, 1.0).0, Vec::<f64>::new());
        assert_eq!(tick_label(-0.0, 1), "0.0");
        assert_eq!(tick_label(-1.5, 1), "-1.5");
    }

    #[test]
    fn heatmap_axes_carry_tick_labels() {
        let dir = crate::io::tests::scratch_dir("axes");
        let grid = Grid2d { x_min: -3.0, x_max: 3.0, y_min: -3.0, y_max: 3.0, nx: 60, ny: 60 };
        let energies: Vec<f32> = grid.points().chunks(2).map(|p| p[0] * p[0] + p[1] * p[1]).collect();
        let path = dir.join("axes.png");
        energy_heatmap_png(&path, &grid, &energies, &[], 2).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let (ox, oy) = plot_origin(&grid);
        // Ticks at -3..3 step 1 (or 2): a tick mark just left of the plot at y = 0 (the middle row).
        let mid = oy + 60;
        assert!((mid - 1..=mid + 1).any(|y| *img.get_pixel(ox - 1, y) == AXIS_COLOR), "y tick at 0");
        let dark_below = (0..img.width()).filter(|&x| *img.get_pixel(x, oy + 120 + TICK + 3 + 4) == AXIS_COLOR).count();
        assert!(dark_below >= 5, "x labels drawn under the plot ({dark_below} pixels)");
        let dark_left = (0..ox).filter(|&x| (oy..oy + 120).any(|y| *img.get_pixel(x, y) == AXIS_COLOR)).count();
        assert!(dark_left >= 5, "y labels drawn left of the plot");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn histograms_layout_and_errors() {
        let dir = crate::io::tests::scratch_dir("hist");
        let path = dir.join("h.png");
        let dim = 6;
        let samples: Vec<f32> = (0..600).map(|i| ((i * 37) % 101) as f32 / (1 + i % dim) as f32).collect();
        histograms_png(&path, &samples, dim, 5).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (800, 300));
        assert!(img.pixels().any(|p| *p == Rgb([70, 110, 180])), "bars drawn");
        assert_eq!(*img.get_pixel(205, 20), Rgb([238, 238, 242]), "panel background");
        assert_eq!(*img.get_pixel(500, 250), Rgb([255, 255, 255]), "no sixth panel");

        histograms_png(&path, &[1.0, f32::NAN, 1.0, f32::INFINITY], 2, 9).unwrap();
        assert_eq!(image::open(&path).unwrap().to_rgb8().dimensions(), (400, 150));
        histograms_png(&path, &[], 3, 3).unwrap();
        assert!(histograms_png(&path, &[1.0; 5], 2, 2).is_err());
        assert!(histograms_png(&path, &[1.0; 4], 0, 2).is_err());
        assert!(histograms_png(&path, &[1.0; 4], 2, 0).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn auto_bounds_widens() {
        assert_eq!(auto_bounds(&[0.0, 10.0, 4.0, 20.0], 0.25, 0.0), (-1.0, 5.0, 7.5, 22.5));
        assert_eq!(auto_bounds(&[], 0.1, 0.0), (-1.0, 1.0, -1.0, 1.0));
        assert_eq!(auto_bounds(&[3.0, f32::NAN, 3.0, f32::INFINITY], 0.1, 0.0), (2.0, 4.0, -1.0, 1.0));
        // One runaway point among 1000 is trimmed away.
        let mut pts: Vec<f32> = (0..1000).flat_map(|i| [i as f32 / 1000.0, 0.5]).collect();
        pts[0] = 1e12;
        let (x0, x1, _, _) = auto_bounds(&pts, 0.0, 0.005);
        assert!(x0 < 0.01 && x1 < 1.0, "{x0} {x1}");
    }
}
