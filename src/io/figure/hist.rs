//! Histograms: one panel per dimension on a shared range ([`histograms_png`]), and several sets
//! of values overlaid on one axis with a legend ([`overlaid_histograms_png`]).

use std::path::Path;

use image::{Rgb, RgbImage};

use super::axes::{self, Axis, Mark, PAD, Rect};
use super::font::line_height;
use crate::{Error, Result};

const TEXT: u32 = 1;
const PLOT_BG: Rgb<u8> = Rgb([246, 246, 249]);
const BAR: Rgb<u8> = Rgb([70, 110, 180]);
const PANEL_W: u32 = 200;
const PANEL_H: u32 = 120;
const PANEL_COLS: usize = 4;
const BINS: usize = 40;
/// Space between panels, besides each panel's own axis margins.
const PANEL_GAP: u32 = 14;

/// Colours of [`overlaid_histograms_png`]'s sets, in order (sets past the sixth reuse them).
pub const SET_COLORS: [(&str, Rgb<u8>); 6] = [
    ("blue", Rgb([40, 90, 200])),
    ("orange", Rgb([235, 130, 20])),
    ("green", Rgb([40, 160, 70])),
    ("red", Rgb([210, 40, 40])),
    ("purple", Rgb([130, 70, 180])),
    ("brown", Rgb([140, 90, 50])),
];

/// The 0.1th to 99.9th percentile of the finite values (so a few runaway values do not squash
/// the rest into one bin) and 5 % more on each side, widened when degenerate; None without
/// finite values.
fn shared_range(values: impl Iterator<Item = f32>) -> Option<(f32, f32)> {
    let mut all: Vec<f32> = values.filter(|v| v.is_finite()).collect();
    if all.is_empty() {
        return None;
    }
    all.sort_by(f32::total_cmp);
    let q = |p: f64| all[((p * (all.len() - 1) as f64).round() as usize).min(all.len() - 1)];
    let (lo, hi) = (q(0.001), q(0.999));
    let pad = 0.05 * (hi - lo);
    Some(if hi > lo { (lo - pad, hi + pad) } else { (lo - 0.5, hi + 0.5) })
}

/// Densities (share per unit of x) of the finite values in `nbins` bins over `[lo, hi]`, and
/// how many finite values fell outside.
fn densities(values: impl Iterator<Item = f32>, lo: f32, hi: f32, nbins: usize) -> (Vec<f64>, usize) {
    let finite: Vec<f32> = values.filter(|v| v.is_finite()).collect();
    let width = (hi as f64 - lo as f64) / nbins as f64;
    let mut d = vec![0.0; nbins];
    let mut outside = 0;
    for &v in &finite {
        if v < lo || v > hi {
            outside += 1;
            continue;
        }
        let b = (((v - lo) as f64 / width) as usize).min(nbins - 1);
        d[b] += 1.0 / (finite.len() as f64 * width);
    }
    (d, outside)
}

/// `title`, then one 40-bin histogram panel per dimension (the first `dims_to_show` of `dim`),
/// up to 4 a row, all over the same range and the same density scale so panels compare; each
/// panel with its own ticks and axis names (x0, x1, ...; density).
pub fn histograms_png(path: &Path, title: &str, samples: &[f32], dim: usize, dims_to_show: usize) -> Result<()> {
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
    let column = |d: usize| samples.iter().skip(d).step_by(dim).copied();
    let (lo, hi) = shared_range((0..shown).flat_map(column)).unwrap_or((-1.0, 1.0));
    let panels: Vec<(Vec<f64>, usize)> = (0..shown).map(|d| densities(column(d), lo, hi, BINS)).collect();
    let top = panels.iter().flat_map(|p| p.0.iter().copied()).fold(0.0, f64::max);
    let y = Axis::new(0.0, if top > 0.0 { (top * 1.05) as f32 } else { 1.0 }, "density");
    let outside: usize = panels.iter().map(|p| p.1).sum();
    let note = format!("{outside} values outside the range are not drawn");

    let x_axis = |d: usize| Axis::new(lo, hi, format!("x{d}"));
    let (left, bottom, right) = axes::axes_margins(&x_axis(dim - 1), &y, TEXT);
    let (cell_w, cell_h) = (left + PANEL_W + right + PANEL_GAP, PANEL_H + bottom + PANEL_GAP);
    let (cols, rows) = (shown.min(PANEL_COLS) as u32, shown.div_ceil(PANEL_COLS) as u32);
    let note_h = if outside > 0 { line_height(TEXT) } else { 0 };
    let top_y = PAD + axes::title_height() + note_h + 4;
    let width = (2 * PAD + cols * cell_w).max(axes::title_min_width(title));
    let (w, h) = super::image_size(width as usize, (top_y + rows * cell_h + PAD) as usize, 1, "histogram figure")?;
    let mut img = RgbImage::from_pixel(w, h, axes::BACKGROUND);
    axes::draw_title(&mut img, title, PAD);
    if outside > 0 {
        super::font::draw_text(&mut img, &note, (PAD as i64, (PAD + axes::title_height()) as i64), TEXT, axes::INK);
    }
    for (d, (dens, _)) in panels.iter().enumerate() {
        let (c, r) = ((d % PANEL_COLS) as u32, (d / PANEL_COLS) as u32);
        let plot = Rect { x: PAD + c * cell_w + left, y: top_y + r * cell_h, w: PANEL_W, h: PANEL_H };
        plot.fill(&mut img, PLOT_BG);
        for (b, &v) in dens.iter().enumerate().filter(|(_, v)| **v > 0.0) {
            let bar_h = ((v / y.hi as f64 * PANEL_H as f64).round() as u32).clamp(1, PANEL_H);
            let (x0, x1) = (b as u32 * PANEL_W / BINS as u32, (b as u32 + 1) * PANEL_W / BINS as u32);
            Rect { x: plot.x + x0, y: plot.y + PANEL_H - bar_h, w: x1 - x0, h: bar_h }.fill(&mut img, BAR);
        }
        axes::draw_axes(&mut img, plot, &x_axis(d), &y, TEXT);
    }
    super::save_png(path, &img)
}

/// Normalised histograms of several named sets of values on one shared axis named `x_name`
/// ([`shared_range`] of all of them, 60 bins), each a filled outline in
/// [`SET_COLORS`] order, a legend naming the sets (with their sizes), and an optional vertical
/// dashed line (a threshold) with its legend text.
pub fn overlaid_histograms_png(
    path: &Path,
    title: &str,
    x_name: &str,
    sets: &[(&str, &[f32])],
    threshold: Option<(f32, &str)>,
) -> Result<()> {
    const W: u32 = 640;
    const H: u32 = 280;
    const NBINS: usize = 60;
    let Some((lo, hi)) = shared_range(sets.iter().flat_map(|s| s.1.iter().copied())) else {
        return Err(Error::invalid("histogram", "no finite values to draw"));
    };
    let dens: Vec<Vec<f64>> = sets.iter().map(|s| densities(s.1.iter().copied(), lo, hi, NBINS).0).collect();
    let top = dens.iter().flat_map(|c| c.iter().copied()).fold(0.0, f64::max).max(1e-12);
    let (x, y) = (Axis::new(lo, hi, x_name), Axis::new(0.0, (top * 1.05) as f32, "density"));

    let mut legend: Vec<(Mark, String)> = sets
        .iter()
        .enumerate()
        .map(|(k, (name, v))| (Mark::Swatch(SET_COLORS[k % SET_COLORS.len()].1), format!("{name} ({})", v.len())))
        .collect();
    let threshold = threshold.filter(|(t, _)| *t > lo && *t < hi);
    if let Some((_, text)) = threshold {
        legend.push((Mark::Line(INK_GREY, true), text.to_string()));
    }
    let (left, bottom, right) = axes::axes_margins(&x, &y, TEXT);
    let plot = Rect { x: PAD + left, y: PAD + axes::title_height() + line_height(TEXT) + 6, w: W, h: H };
    let width = (plot.x + W + right + PAD)
        .max(axes::title_min_width(title))
        .max(plot.x + axes::legend_width(&legend, TEXT) + PAD);
    let mut img = RgbImage::from_pixel(width, plot.y + H + bottom + PAD, axes::BACKGROUND);
    plot.fill(&mut img, PLOT_BG);

    let y_of = |d: f64| plot.y + H - 1 - ((d / y.hi as f64) * (H - 1) as f64).round() as u32;
    for (k, c) in dens.iter().enumerate() {
        let color = SET_COLORS[k % SET_COLORS.len()].1;
        // A light fill under the outline, which only paints the background: overlaps stay
        // readable.
        let light = Rgb(color.0.map(|v| ((v as u32 + 3 * PLOT_BG[0] as u32) / 4) as u8));
        let mut prev_y: Option<u32> = None;
        for (b, &d) in c.iter().enumerate() {
            let (x0, x1) = (plot.x + (b as u32 * W) / NBINS as u32, plot.x + ((b as u32 + 1) * W) / NBINS as u32);
            let yb = y_of(d);
            for px in x0..x1 {
                for py in yb..plot.y + H {
                    if *img.get_pixel(px, py) == PLOT_BG {
                        img.put_pixel(px, py, light);
                    }
                }
                img.put_pixel(px, yb, color);
            }
            if let Some(py) = prev_y {
                for yy in py.min(yb)..=py.max(yb) {
                    img.put_pixel(x0, yy, color);
                }
            }
            prev_y = Some(yb);
        }
    }
    if let Some((t, _)) = threshold {
        let px = plot.x + (((t - lo) / (hi - lo)) * W as f32) as u32;
        for py in (plot.y..plot.y + H).filter(|y| y % 6 < 4) {
            img.put_pixel(px.min(plot.x + W - 1), py, INK_GREY);
        }
    }
    axes::draw_title(&mut img, title, PAD);
    axes::draw_legend(&mut img, &legend, (plot.x, PAD + axes::title_height()), TEXT);
    axes::draw_axes(&mut img, plot, &x, &y, TEXT);
    super::save_png(path, &img)
}

const INK_GREY: Rgb<u8> = Rgb([90, 90, 90]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_share_range_and_density_scale() {
        let dir = crate::io::tests::scratch_dir("hist");
        let path = dir.join("h.png");
        let dim = 6;
        let samples: Vec<f32> = (0..600).map(|i| ((i * 37) % 101) as f32 / (1 + i % dim) as f32).collect();
        histograms_png(&path, "marginals", &samples, dim, 5).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert!(img.pixels().any(|p| *p == BAR), "bars drawn");
        // Plot areas: runs of the plot background along a row through the first panels.
        let top = (0..img.height()).find(|&y| (0..img.width()).any(|x| img.get_pixel(x, y) == &PLOT_BG)).unwrap();
        let starts: Vec<u32> = (1..img.width())
            .filter(|&x| img.get_pixel(x, top) == &PLOT_BG && img.get_pixel(x - 1, top) != &PLOT_BG)
            .collect();
        assert_eq!(starts.len(), 4, "four panels in the first row");
        let second_row = (top + PANEL_H..img.height()).find(|&y| img.get_pixel(starts[0], y) == &PLOT_BG);
        assert!(second_row.is_some(), "the fifth panel under the first");
        // The same range on every panel: the tick-label rows under the panels (and the y
        // labels left of them) are pixel for pixel the same.
        let strip = |x0: u32, y0: u32, w: u32, h: u32| image::imageops::crop_imm(&img, x0, y0, w, h).to_image();
        let labels_y = top + PANEL_H + 1 + axes::TICK;
        let under = |x: u32| strip(x - 8, labels_y, PANEL_W + 16, line_height(TEXT));
        assert!(under(starts[0]).pixels().any(|p| *p == axes::INK), "x tick labels drawn");
        for &x in &starts[1..] {
            assert!(under(x) == under(starts[0]), "x tick labels differ between panels");
        }
        let left = |x: u32| strip(x - 40, top, 40 - axes::TICK - 2, PANEL_H);
        assert!(left(starts[1]).pixels().any(|p| *p == axes::INK), "y tick labels drawn");
        assert!(left(starts[1]) == left(starts[2]), "y tick labels differ between panels");

        histograms_png(&path, "t", &[1.0, f32::NAN, 1.0, f32::INFINITY], 2, 9).unwrap();
        histograms_png(&path, "t", &[], 3, 3).unwrap();
        assert!(histograms_png(&path, "t", &[1.0; 5], 2, 2).is_err());
        assert!(histograms_png(&path, "t", &[1.0; 4], 0, 2).is_err());
        assert!(histograms_png(&path, "t", &[1.0; 4], 2, 0).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn densities_integrate_to_the_share_inside() {
        let v: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let (d, outside) = densities(v.iter().copied().chain([5.0, f32::NAN]), 0.0, 1.0, 10);
        assert_eq!(outside, 1);
        let mass: f64 = d.iter().map(|x| x * 0.1).sum();
        assert!((mass - 1000.0 / 1001.0).abs() < 1e-9, "{mass}");
        assert_eq!(shared_range([3.0f32, 3.0].into_iter()), Some((2.5, 3.5)));
        assert_eq!(shared_range([0.0f32, 10.0].into_iter()), Some((-0.5, 10.5)));
        assert_eq!(shared_range([f32::NAN].into_iter()), None);
    }

    #[test]
    fn overlaid_histograms_draw_a_legend_in_the_image() {
        let dir = crate::io::tests::scratch_dir("overlaid");
        let path = dir.join("o.png");
        let a: Vec<f32> = (0..500).map(|i| (i % 50) as f32 / 50.0).collect();
        let b: Vec<f32> = (0..500).map(|i| 1.5 + (i % 40) as f32 / 40.0).collect();
        overlaid_histograms_png(&path, "energies", "energy", &[("in", &a), ("out", &b)], Some((1.2, "threshold")))
            .unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        // The legend row between the title and the plot holds both sets' swatches.
        let band = PAD + axes::title_height()..PAD + axes::title_height() + line_height(TEXT);
        for (_, color) in &SET_COLORS[..2] {
            let n = band
                .clone()
                .flat_map(|y| (0..img.width()).map(move |x| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y) == color)
                .count();
            assert!(n >= 14 * 5, "swatch of {color:?}: {n} pixels");
        }
        assert!(overlaid_histograms_png(&path, "t", "e", &[("x", &[f32::NAN])], None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
