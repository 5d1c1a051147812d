//! What makes a figure readable on its own, shared by every figure: the title, axes with round
//! ticks and names, a colour bar naming its quantity, and legends.

use image::{Rgb, RgbImage};

use super::font::{cap_height, draw_text, draw_text_up, line_height, text_width};

/// Samples: a light dot with a dark outline, so clusters read as light blobs on any colour.
pub const DOT: Rgb<u8> = Rgb([255, 255, 255]);
pub const DOT_OUTLINE: Rgb<u8> = Rgb([20, 20, 20]);

pub const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
pub const INK: Rgb<u8> = Rgb([40, 40, 40]);
/// Length of a tick mark in pixels.
pub const TICK: u32 = 4;
/// Space between a tick and its label (and between labels and names), per unit of text scale.
const GAP: u32 = 3;
/// Empty border around a whole figure.
pub const PAD: u32 = 8;

/// A pixel rectangle: top-left corner, width, height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    pub fn fill(&self, img: &mut RgbImage, color: Rgb<u8>) {
        for y in self.y..(self.y + self.h).min(img.height()) {
            for x in self.x..(self.x + self.w).min(img.width()) {
                img.put_pixel(x, y, color);
            }
        }
    }

    /// A 1-pixel frame just outside the rectangle.
    pub fn frame(&self, img: &mut RgbImage, color: Rgb<u8>) {
        let (x0, y0, x1, y1) =
            (self.x as i64 - 1, self.y as i64 - 1, (self.x + self.w) as i64, (self.y + self.h) as i64);
        for x in x0..=x1 {
            put(img, x, y0, color);
            put(img, x, y1, color);
        }
        for y in y0..=y1 {
            put(img, x0, y, color);
            put(img, x1, y, color);
        }
    }
}

pub fn put(img: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, color);
    }
}

/// One axis of a plot: its data range and its name.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub lo: f32,
    pub hi: f32,
    pub name: String,
}

impl Axis {
    pub fn new(lo: f32, hi: f32, name: impl Into<String>) -> Axis {
        Axis { lo, hi, name: name.into() }
    }

    /// Pixel offset of `v` along `n` pixels (0 at `lo`).
    fn offset(&self, v: f64, n: u32) -> i64 {
        ((v - self.lo as f64) / (self.hi as f64 - self.lo as f64) * n as f64).round() as i64
    }

    /// The tick values and their labels.
    pub fn tick_labels(&self) -> Vec<(f64, String)> {
        let (values, decimals) = ticks(self.lo, self.hi);
        values.into_iter().map(|v| (v, tick_label(v, decimals))).collect()
    }

    fn widest_label(&self, scale: u32) -> u32 {
        self.tick_labels().iter().map(|(_, l)| text_width(l, scale)).max().unwrap_or(0)
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

pub fn tick_label(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    // No "-0" or "-0.0".
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// Room that [`draw_axes`] needs around a plot at text `scale`: left (y tick labels and the y
/// name), bottom (x tick labels and the x name) and right (half the last x label).
pub fn axes_margins(x: &Axis, y: &Axis, scale: u32) -> (u32, u32, u32) {
    let gap = GAP * scale;
    // The 1s: the frame drawn just outside the plot.
    let left = 1 + line_height(scale) + gap + y.widest_label(scale) + gap + TICK;
    let bottom = 1 + TICK + gap + 2 * line_height(scale);
    (left, bottom, x.widest_label(scale) / 2 + 1)
}

/// A frame around `plot`, ticks and their labels below it (x) and left of it (y), and the
/// axes' names centred on them (the y name read bottom to top).
pub fn draw_axes(img: &mut RgbImage, plot: Rect, x: &Axis, y: &Axis, scale: u32) {
    let gap = GAP * scale;
    plot.frame(img, INK);
    let below = (plot.y + plot.h + 1) as i64;
    for (v, label) in x.tick_labels() {
        let px = plot.x as i64 + x.offset(v, plot.w).min(plot.w as i64 - 1);
        for t in 0..TICK as i64 {
            put(img, px, below + t, INK);
        }
        let w = text_width(&label, scale) as i64;
        draw_text(img, &label, (px - w / 2, below + (TICK + gap) as i64), scale, INK);
    }
    let name_w = text_width(&x.name, scale) as i64;
    let name_y = below + (TICK + gap + line_height(scale)) as i64;
    draw_text(img, &x.name, (plot.x as i64 + (plot.w as i64 - name_w) / 2, name_y), scale, INK);

    let left = plot.x as i64 - 1;
    for (v, label) in y.tick_labels() {
        let py = plot.y as i64 + (plot.h as i64 - 1 - y.offset(v, plot.h)).max(0);
        for t in 1..=TICK as i64 {
            put(img, left - t, py, INK);
        }
        let w = text_width(&label, scale) as i64;
        let at = (left - (TICK + gap) as i64 - w, py - cap_height(scale) as i64 / 2);
        draw_text(img, &label, at, scale, INK);
    }
    let name_h = text_width(&y.name, scale) as i64;
    let name_x = left - (TICK + gap + gap) as i64 - y.widest_label(scale) as i64 - line_height(scale) as i64;
    draw_text_up(img, &y.name, (name_x, plot.y as i64 + (plot.h as i64 - name_h) / 2), scale, INK);
}

/// Height of the band [`draw_title`] fills.
pub fn title_height() -> u32 {
    line_height(2) + 4
}

/// The most characters of a title: a long energy spec is cut rather than widen the figure.
const TITLE_CHARS: usize = 110;

fn shorten(title: &str) -> String {
    if title.chars().count() <= TITLE_CHARS {
        return title.to_string();
    }
    title.chars().take(TITLE_CHARS - 3).chain("...".chars()).collect()
}

/// `title` centred across the image at `y`, at double size where it fits, else single.
pub fn draw_title(img: &mut RgbImage, title: &str, y: u32) {
    let title = &shorten(title);
    let width = img.width() as i64;
    let scale = if text_width(title, 2) as i64 + 2 * PAD as i64 <= width { 2 } else { 1 };
    let w = text_width(title, scale) as i64;
    // Bold: the strokes twice, a pixel apart, so the title stands out from the labels.
    for dx in 0..=1 {
        draw_text(img, title, ((width - w).max(0) / 2 + dx, y as i64), scale, INK);
    }
}

/// The narrowest canvas on which `title` still fits at single size.
pub fn title_min_width(title: &str) -> u32 {
    text_width(&shorten(title), 1) + 2 * PAD
}

/// Width of a colour bar of `quantity` (bar, ticks, labels, name) beside a plot.
pub fn colorbar_width(quantity: &Axis, scale: u32) -> u32 {
    let gap = GAP * scale;
    COLORBAR_GAP + COLORBAR_W + TICK + gap + quantity.widest_label(scale) + gap + line_height(scale)
}

const COLORBAR_GAP: u32 = 14;
const COLORBAR_W: u32 = 16;

/// A vertical colour bar beside (right of) `plot`, as tall as it: `quantity.lo` at the bottom,
/// `hi` at the top, coloured by `colormap` of the fraction of the way, with ticks and the
/// quantity's name (read bottom to top) on its right.
pub fn draw_colorbar(img: &mut RgbImage, plot: Rect, quantity: &Axis, colormap: fn(f32) -> Rgb<u8>, scale: u32) {
    let gap = GAP * scale;
    let bar = Rect { x: plot.x + plot.w + COLORBAR_GAP, y: plot.y, w: COLORBAR_W, h: plot.h };
    for r in 0..bar.h {
        // Exact ends: the top row is hi's colour, the bottom row lo's.
        let t = 1.0 - r as f32 / (bar.h - 1).max(1) as f32;
        Rect { y: bar.y + r, h: 1, ..bar }.fill(img, colormap(t));
    }
    bar.frame(img, INK);
    let right = (bar.x + bar.w) as i64;
    for (v, label) in quantity.tick_labels() {
        let py = bar.y as i64 + (bar.h as i64 - 1 - quantity.offset(v, bar.h)).max(0);
        for t in 1..=TICK as i64 {
            put(img, right + t, py, INK);
        }
        draw_text(img, &label, (right + (TICK + gap) as i64, py - cap_height(scale) as i64 / 2), scale, INK);
    }
    let name_h = text_width(&quantity.name, scale) as i64;
    let name_x = right + (TICK + 2 * gap + quantity.widest_label(scale)) as i64;
    draw_text_up(img, &quantity.name, (name_x, bar.y as i64 + (bar.h as i64 - name_h) / 2), scale, INK);
}

/// How a legend entry shows its set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mark {
    /// A filled square in the colour.
    Swatch(Rgb<u8>),
    /// A light dot with a dark outline, as samples are drawn on a heatmap.
    Dot,
    /// A short line; dashed or solid.
    Line(Rgb<u8>, bool),
}

const MARK_W: u32 = 14;

/// Width of a one-row legend of `entries`.
pub fn legend_width(entries: &[(Mark, String)], scale: u32) -> u32 {
    entries.iter().map(|(_, t)| MARK_W + 4 * scale + text_width(t, scale) + 16).sum::<u32>().saturating_sub(16)
}

/// A one-row legend with its top-left at `(x, y)`: each entry's mark, then its text.
pub fn draw_legend(img: &mut RgbImage, entries: &[(Mark, String)], (x, y): (u32, u32), scale: u32) {
    let mut x = x;
    let mid = y + cap_height(scale) / 2;
    for (mark, text) in entries {
        match *mark {
            Mark::Swatch(c) => Rect { x, y, w: MARK_W, h: cap_height(scale) }.fill(img, c),
            Mark::Dot => {
                Rect { x: x + MARK_W / 2 - 2, y: mid - 2, w: 5, h: 5 }.fill(img, DOT_OUTLINE);
                Rect { x: x + MARK_W / 2 - 1, y: mid - 1, w: 3, h: 3 }.fill(img, DOT);
            }
            Mark::Line(c, dashed) => {
                for dx in (0..MARK_W).filter(|dx| !dashed || dx % 6 < 4) {
                    Rect { x: x + dx, y: mid - 1, w: 1, h: 2 }.fill(img, c);
                }
            }
        }
        draw_text(img, text, ((x + MARK_W + 4 * scale) as i64, y as i64), scale, INK);
        x += MARK_W + 4 * scale + text_width(text, scale) + 16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn axes_draw_ticks_labels_and_names_in_their_margins() {
        let (x, y) = (Axis::new(-3.0, 3.0, "x0"), Axis::new(0.0, 1.0, "density"));
        let (left, bottom, right) = axes_margins(&x, &y, 1);
        let plot = Rect { x: left, y: 10, w: 120, h: 80 };
        let mut img = RgbImage::from_pixel(left + 120 + right, 10 + 80 + bottom, BACKGROUND);
        draw_axes(&mut img, plot, &x, &y, 1);
        let inked = |xs: std::ops::Range<u32>, ys: std::ops::Range<u32>| {
            xs.flat_map(|x| ys.clone().map(move |y| (x, y))).filter(|&(x, y)| *img.get_pixel(x, y) == INK).count()
        };
        // The y name's column, the y labels' column, the x labels' row, the x name's row.
        assert!(inked(0..line_height(1), 10..90) > 10, "y name drawn");
        assert!(inked(line_height(1)..left - TICK, 10..90) > 10, "y tick labels drawn");
        let below = 10 + 80 + 1 + TICK;
        assert!(inked(left..left + 120, below..below + line_height(1)) > 10, "x tick labels drawn");
        assert!(inked(left..left + 120, below + line_height(1)..img.height()) > 5, "x name drawn");
        assert_eq!(inked(left..left + 120, 10..90), 0, "nothing drawn over the plot");
    }
}
