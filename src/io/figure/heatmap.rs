//! The energy heatmap: the density exp(-E) of a 2-d energy on a grid, samples drawn over it,
//! constraint boundaries, axes, a colour bar and a legend.

use std::path::Path;

use image::{Rgb, RgbImage};

use super::axes::{self, Axis, DOT, DOT_OUTLINE, Mark, PAD, Rect};
use super::font::line_height;
use crate::{Error, Result};

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
    /// i.e. in the order pixels are laid out; [`Heatmap`] expects energies in this order.
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
pub fn colormap(t: f32) -> Rgb<u8> {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let pos = t * (VIRIDIS.len() - 1) as f32;
    let i = (pos as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f32;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    Rgb(std::array::from_fn(|k| (a[k] + (b[k] - a[k]) * f).round() as u8))
}

/// Constraint boundaries: a warm colour that viridis (blue to yellow) never takes.
pub const BOUNDARY: Rgb<u8> = Rgb([240, 60, 40]);
/// Text scale of labels, ticks and the legend: double on a large plot, where single looks lost.
fn text_scale(plot_w: u32) -> u32 {
    if plot_w >= 600 { 2 } else { 1 }
}

/// The edge of a constraint's feasible set on the plane, drawn over a heatmap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Boundary {
    /// The box lo <= x <= hi; infinite sides are not drawn (a 1-d box on one axis is a band).
    Box { lo: [f32; 2], hi: [f32; 2] },
    /// The line a.x = b (a half-plane's edge or an equality's set).
    Line { a: [f32; 2], b: f32 },
    /// The circle |x - center| = radius.
    Circle { center: [f32; 2], radius: f32 },
    /// The segment between two points (the 2-d simplex).
    Segment([f32; 2], [f32; 2]),
}

impl Boundary {
    /// Straight pieces in data coordinates (f64), long enough to cross `view` where unbounded.
    fn segments(&self, view: &Grid2d) -> Vec<[[f64; 2]; 2]> {
        let f = |p: [f32; 2]| [p[0] as f64, p[1] as f64];
        let (cx, cy) = ((view.x_min as f64 + view.x_max as f64) / 2.0, (view.y_min as f64 + view.y_max as f64) / 2.0);
        let diag = (view.x_max as f64 - view.x_min as f64).hypot(view.y_max as f64 - view.y_min as f64);
        match *self {
            Boundary::Box { lo, hi } => {
                // Infinite sides clamped just past the view; edges at infinity dropped.
                let clamp = |v: f32, c: f64| (v as f64).clamp(c - diag, c + diag);
                let (x0, x1, y0, y1) = (clamp(lo[0], cx), clamp(hi[0], cx), clamp(lo[1], cy), clamp(hi[1], cy));
                let mut out = Vec::new();
                for (x, finite) in [(x0, lo[0].is_finite()), (x1, hi[0].is_finite())] {
                    if finite {
                        out.push([[x, y0], [x, y1]]);
                    }
                }
                for (y, finite) in [(y0, lo[1].is_finite()), (y1, hi[1].is_finite())] {
                    if finite {
                        out.push([[x0, y], [x1, y]]);
                    }
                }
                out
            }
            Boundary::Line { a, b } => {
                let [a0, a1] = f(a);
                let n2 = a0 * a0 + a1 * a1;
                if n2 == 0.0 || !n2.is_finite() {
                    return Vec::new();
                }
                let p = [a0 * b as f64 / n2, a1 * b as f64 / n2];
                // Half-length: from p past the far side of the view.
                let l = ((p[0] - cx).hypot(p[1] - cy) + diag) / n2.sqrt();
                vec![[[p[0] + a1 * l, p[1] - a0 * l], [p[0] - a1 * l, p[1] + a0 * l]]]
            }
            Boundary::Circle { center, radius } => {
                let [x, y] = f(center);
                let pt = |k: usize| {
                    let t = k as f64 / 256.0 * std::f64::consts::TAU;
                    [x + radius as f64 * t.cos(), y + radius as f64 * t.sin()]
                };
                (0..256).map(|k| [pt(k), pt(k + 1)]).collect()
            }
            Boundary::Segment(p, q) => vec![[f(p), f(q)]],
        }
    }
}

/// The heatmap figure: build with [`Heatmap::new`], add samples and boundaries, write with
/// [`Heatmap::png`].
#[derive(Clone, Debug)]
pub struct Heatmap<'a> {
    title: String,
    grid: Grid2d,
    energies: &'a [f32],
    samples: &'a [f32],
    samples_name: String,
    axis_names: [String; 2],
    boundaries: Vec<Boundary>,
    pixel_size: u32,
}

impl<'a> Heatmap<'a> {
    /// The density of `energies` (one per cell, in [`Grid2d::points`] order) over `grid`, axes
    /// named x0 and x1, 2 pixels a cell.
    pub fn new(title: impl Into<String>, grid: Grid2d, energies: &'a [f32]) -> Self {
        Heatmap {
            title: title.into(),
            grid,
            energies,
            samples: &[],
            samples_name: String::new(),
            axis_names: ["x0".into(), "x1".into()],
            boundaries: Vec::new(),
            pixel_size: 2,
        }
    }

    /// Points (interleaved `x, y`) drawn as dots, named in the legend; those outside the grid
    /// are left out.
    pub fn samples(mut self, xy: &'a [f32], name: impl Into<String>) -> Self {
        (self.samples, self.samples_name) = (xy, name.into());
        self
    }

    pub fn boundaries(mut self, boundaries: Vec<Boundary>) -> Self {
        self.boundaries = boundaries;
        self
    }

    pub fn pixel_size(mut self, pixel_size: u32) -> Self {
        self.pixel_size = pixel_size;
        self
    }

    /// Draws the figure and writes it atomically.
    pub fn png(&self, path: &Path) -> Result<()> {
        super::save_png(path, &self.image()?)
    }

    fn legend(&self) -> Vec<(Mark, String)> {
        let mut entries = Vec::new();
        if !self.samples.is_empty() {
            entries.push((Mark::Dot, self.samples_name.clone()));
        }
        if !self.boundaries.is_empty() {
            entries.push((Mark::Line(BOUNDARY, false), "constraint boundary".to_string()));
        }
        entries
    }

    fn axes(&self) -> (Axis, Axis, Axis) {
        let g = &self.grid;
        let quantity = Axis::new(0.0, 1.0, "density exp(-E), 1 at its peak");
        let [xn, yn] = &self.axis_names;
        (Axis::new(g.x_min, g.x_max, xn.as_str()), Axis::new(g.y_min, g.y_max, yn.as_str()), quantity)
    }

    /// Where the plot lands in the figure, and the figure's size.
    fn layout(&self, pw: u32, ph: u32) -> (Rect, u32, u32) {
        let text = text_scale(pw);
        let (x, y, quantity) = self.axes();
        let (left, bottom, right) = axes::axes_margins(&x, &y, text);
        let legend_h = if self.legend().is_empty() { 0 } else { line_height(text) + 4 };
        let plot = Rect { x: PAD + left, y: PAD + axes::title_height() + legend_h, w: pw, h: ph };
        let width = (plot.x + pw + right.max(axes::colorbar_width(&quantity, text)) + PAD)
            .max(axes::title_min_width(&self.title))
            .max(plot.x + axes::legend_width(&self.legend(), text) + PAD);
        (plot, width, plot.y + ph + bottom + PAD)
    }

    fn image(&self) -> Result<RgbImage> {
        let plot_img = heatmap_image(&self.grid, self.energies, self.samples, self.pixel_size, &self.boundaries)?;
        let (plot, w, h) = self.layout(plot_img.width(), plot_img.height());
        super::image_size(w as usize, h as usize, 1, "heatmap size")?;
        let mut img = RgbImage::from_pixel(w, h, axes::BACKGROUND);
        image::imageops::replace(&mut img, &plot_img, plot.x as i64, plot.y as i64);
        let (x, y, quantity) = self.axes();
        let text = text_scale(plot.w);
        axes::draw_title(&mut img, &self.title, PAD);
        axes::draw_legend(&mut img, &self.legend(), (plot.x, PAD + axes::title_height()), text);
        axes::draw_axes(&mut img, plot, &x, &y, text);
        axes::draw_colorbar(&mut img, plot, &quantity, colormap, text);
        Ok(img)
    }
}

/// The plot alone: `pixel_size` pixels per cell coloured by exp(-(E - min E)), the samples,
/// then the boundaries on top.
fn heatmap_image(
    grid: &Grid2d,
    energies: &[f32],
    samples_xy: &[f32],
    pixel_size: u32,
    boundaries: &[Boundary],
) -> Result<RgbImage> {
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
    let (w, h) = super::image_size(grid.nx, grid.ny, pixel_size, "heatmap size")?;

    // Shift by the minimum so the densest cell is exactly 1 and exp cannot overflow.
    let e_min = energies.iter().copied().filter(|e| e.is_finite()).fold(f32::INFINITY, f32::min);
    let colors: Vec<Rgb<u8>> =
        energies.iter().map(|&e| colormap(if e.is_finite() { (e_min - e).exp() } else { 0.0 })).collect();
    let ps = pixel_size as usize;
    let mut img = RgbImage::from_fn(w, h, |x, y| colors[(y as usize / ps) * grid.nx + x as usize / ps]);

    let to_px = |p: [f64; 2]| {
        let fx = (p[0] - grid.x_min as f64) / (grid.x_max as f64 - grid.x_min as f64) * w as f64;
        let fy = (grid.y_max as f64 - p[1]) / (grid.y_max as f64 - grid.y_min as f64) * h as f64;
        [fx, fy]
    };
    let inside: Vec<(i64, i64)> = samples_xy
        .chunks_exact(2)
        .filter(|p| (grid.x_min..=grid.x_max).contains(&p[0]) && (grid.y_min..=grid.y_max).contains(&p[1]))
        .map(|p| {
            let [fx, fy] = to_px([p[0] as f64, p[1] as f64]);
            ((fx as i64).min(w as i64 - 1), (fy as i64).min(h as i64 - 1))
        })
        .collect();
    // Outlines first, then centres, so clusters of samples read as light blobs.
    for &(x, y) in &inside {
        fill_square(&mut img, x, y, 2, DOT_OUTLINE);
    }
    for &(x, y) in &inside {
        fill_square(&mut img, x, y, 1, DOT);
    }
    // The boundary last: one unbroken line over the samples.
    for seg in boundaries.iter().flat_map(|b| b.segments(grid)) {
        let (p, q) = (to_px(seg[0]), to_px(seg[1]));
        let Some((p, q)) = clip(p, q, w as f64, h as f64) else { continue };
        let steps = ((q[0] - p[0]).hypot(q[1] - p[1]) * 2.0).ceil().max(1.0) as usize;
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            let (x, y) = (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]));
            // A 2-pixel-wide line.
            Rect { x: (x - 0.5).max(0.0) as u32, y: (y - 0.5).max(0.0) as u32, w: 2, h: 2 }.fill(&mut img, BOUNDARY);
        }
    }
    Ok(img)
}

/// The part of segment p-q inside [0, w] x [0, h] (Liang-Barsky), if any.
fn clip(p: [f64; 2], q: [f64; 2], w: f64, h: f64) -> Option<([f64; 2], [f64; 2])> {
    let d = [q[0] - p[0], q[1] - p[1]];
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (num, den) in [(p[0], -d[0]), (w - p[0], d[0]), (p[1], -d[1]), (h - p[1], d[1])] {
        if den == 0.0 {
            if num < 0.0 {
                return None;
            }
        } else {
            let t = num / den;
            if den < 0.0 { t0 = t0.max(t) } else { t1 = t1.min(t) }
        }
    }
    (t0 <= t1 && t0.is_finite() && t1.is_finite())
        .then(|| ([p[0] + t0 * d[0], p[1] + t0 * d[1]], [p[0] + t1 * d[0], p[1] + t1 * d[1]]))
}

/// Fills the square of half-width `half` around `(cx, cy)`, clipped to the image.
fn fill_square(img: &mut RgbImage, cx: i64, cy: i64, half: i64, color: Rgb<u8>) {
    for y in cy - half..=cy + half {
        for x in cx - half..=cx + half {
            axes::put(img, x, y, color);
        }
    }
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

    /// The figure and where its plot is.
    fn draw(fig: &Heatmap) -> (RgbImage, Rect) {
        let img = fig.image().unwrap();
        let plot = heatmap_image(&fig.grid, fig.energies, &[], fig.pixel_size, &[]).unwrap();
        (img, fig.layout(plot.width(), plot.height()).0)
    }

    #[test]
    fn heatmap_orientation_dims_and_dots() {
        // E = y, so the density is highest in the bottom row; one cell is non-finite.
        let mut energies: Vec<f32> = GRID.points().chunks(2).map(|p| p[1]).collect();
        energies[0] = f32::NAN;
        let (full, r) = draw(&Heatmap::new("t", GRID, &energies).pixel_size(10));
        assert_eq!((r.w, r.h), (40, 30));
        let img = image::imageops::crop_imm(&full, r.x, r.y, 40, 30).to_image();
        assert_eq!(*img.get_pixel(15, 25), colormap(1.0), "bottom row is the density peak");
        assert_eq!(*img.get_pixel(3, 3), colormap(0.0), "NaN energy draws as zero density");
        assert!(img.get_pixel(15, 5)[1] < img.get_pixel(15, 15)[1]);

        // Sample at the centre of cell (row 2, col 1); outside samples are ignored.
        let samples = [-0.5, -0.5, 50.0, 0.0, f32::NAN, 1.0, 2.0, 2.0];
        let (dotted, r2) = draw(&Heatmap::new("t", GRID, &energies).pixel_size(10).samples(&samples, "samples"));
        let dotted = image::imageops::crop_imm(&dotted, r2.x, r2.y, 40, 30).to_image();
        assert_eq!(*dotted.get_pixel(15, 25), DOT);
        assert_eq!(*dotted.get_pixel(17, 25), DOT_OUTLINE);
        assert_eq!(*dotted.get_pixel(39, 0), DOT, "corner sample clipped, not lost");
        let changed = img.pixels().zip(dotted.pixels()).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 25 + 9, "one full dot plus a clipped corner dot");

        fn fig<'a>(e: &'a [f32], s: &'a [f32], ps: u32) -> Heatmap<'a> {
            Heatmap::new("t", GRID, e).samples(s, "s").pixel_size(ps)
        }
        let e = &energies;
        assert!(fig(&e[1..], &[], 10).image().is_err());
        assert!(fig(e, &[1.0], 10).image().is_err());
        assert!(fig(e, &[], 0).image().is_err());
        assert!(fig(e, &[], u32::MAX).image().is_err());
        fig(&[f32::NAN; 12], &[], 1).image().unwrap();
    }

    #[test]
    fn heatmap_has_title_axes_colorbar_and_legend() {
        let grid = Grid2d { x_min: -3.0, x_max: 3.0, y_min: -3.0, y_max: 3.0, nx: 60, ny: 60 };
        let energies: Vec<f32> = grid.points().chunks(2).map(|p| p[0] * p[0] + p[1] * p[1]).collect();
        let samples = [0.0, 0.0];
        let fig = Heatmap::new("a Gaussian", grid, &energies).samples(&samples, "one sample");
        let (img, r) = draw(&fig);
        let ink = |xs: std::ops::Range<u32>, ys: std::ops::Range<u32>| {
            xs.flat_map(|x| ys.clone().map(move |y| (x, y))).filter(|&(x, y)| *img.get_pixel(x, y) == axes::INK).count()
        };
        assert!(ink(0..img.width(), PAD..PAD + axes::title_height()) > 50, "title drawn in its band");
        // A y tick mark just left of the plot at y = 0 (the middle row).
        let mid = r.y + 60;
        assert!((mid - 1..=mid + 1).any(|y| *img.get_pixel(r.x - 2, y) == axes::INK), "y tick at 0");
        assert!(ink(r.x..r.x + r.w, r.y + r.h + 1 + axes::TICK..img.height()) > 20, "x labels and name");
        assert!(ink(0..r.x - axes::TICK - 1, r.y..r.y + r.h) > 20, "y labels and name");
        // The colour bar: viridis' peak colour at its top, its floor at its bottom, right of the plot.
        let right = r.x + r.w..img.width();
        let row_has = |y: u32, c: Rgb<u8>| right.clone().any(|x| *img.get_pixel(x, y) == c);
        assert!(row_has(r.y, colormap(1.0)) && row_has(r.y + r.h - 1, colormap(0.0)), "colour bar");
        assert!(ink(right.clone(), r.y..r.y + r.h) > 40, "colour bar ticks and name");
        // The legend between title and plot shows the sample mark.
        let legend = PAD + axes::title_height()..r.y;
        assert!(legend.clone().any(|y| (r.x..r.x + 20).any(|x| *img.get_pixel(x, y) == DOT_OUTLINE)), "legend mark");
        assert!(ink(r.x + 14..r.x + 120, legend) > 20, "legend text");
    }

    #[test]
    fn boundaries_are_drawn_where_they_cross_the_view() {
        let grid = Grid2d { x_min: -2.0, x_max: 2.0, y_min: -2.0, y_max: 2.0, nx: 40, ny: 40 };
        let energies = vec![0.0; 1600];
        let at = |b: Boundary, x: u32, y: u32| {
            let img = heatmap_image(&grid, &energies, &[], 2, &[b]).unwrap();
            let near = |v: u32| v.saturating_sub(1)..=(v + 1).min(79);
            near(x).any(|x| near(y).any(|y| *img.get_pixel(x, y) == BOUNDARY))
        };
        // 80 x 80 pixels, 20 a unit, y up: data (x, y) -> pixel (40 + 20x, 40 - 20y).
        let half_plane = Boundary::Line { a: [-1.0, -1.0], b: 0.0 };
        assert!(at(half_plane, 40, 40) && at(half_plane, 60, 60) && !at(half_plane, 60, 20));
        let ball = Boundary::Circle { center: [0.0, 0.0], radius: 1.0 };
        assert!(at(ball, 60, 40) && at(ball, 40, 20) && !at(ball, 40, 40));
        let band = Boundary::Box { lo: [-1.0, f32::NEG_INFINITY], hi: [1.0, f32::INFINITY] };
        assert!(at(band, 20, 5) && at(band, 60, 75) && !at(band, 40, 0));
        let square = Boundary::Box { lo: [-1.0, -1.0], hi: [1.0, 1.0] };
        assert!(at(square, 40, 20) && at(square, 20, 40) && !at(square, 40, 40) && !at(square, 10, 10));
        let simplex = Boundary::Segment([1.0, 0.0], [0.0, 1.0]);
        assert!(at(simplex, 50, 30) && !at(simplex, 70, 50));
        assert!(!at(Boundary::Line { a: [0.0, 0.0], b: 1.0 }, 40, 40), "a = 0 draws nothing");
        assert!(!at(Boundary::Box { lo: [5.0, 5.0], hi: [6.0, 6.0] }, 79, 0), "outside the view");
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
