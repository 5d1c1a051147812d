//! 2-D toy datasets for training and evaluating EBMs, generated from a seed, and 2-D point sets
//! read from `.npy`/`.csv` files.
//!
//! The shapes follow the toy sets of the EBM/flow literature (FFJORD's `toy_data.py`, Grathwohl
//! et al. 2019; "Your classifier is secretly an energy based model", Grathwohl et al. 2020), with
//! the parameters documented on each [`Toy`] variant; all of them live roughly in [-4, 4]^2.
//! `ring8` and `grid25` are exactly the `ring8` and `grid25` energy presets
//! ([`crate::energy::spec::resolve_energy`]), so [`Toy::true_energy`] gives their normalised
//! density for likelihood comparisons.
//!
//! # Randomness
//! Point `i` depends only on `(seed, i)`: its random numbers come from Philox with counter
//! `(i mod 2^32, u32::MAX - t, Stream::Init, 2 * (i >> 32) + d)`, where `t` is the dataset's
//! position in [`Toy::ALL`] and `d` is 0 (four raw 32-bit words: a categorical choice from the
//! first by multiply-shift, uniforms in (0, 1] from the others) or 1 (four standard normals by
//! Box–Muller, as [`rng::normal4`]). Chain initial states and binarisation use step 0 of the
//! `Init` stream, so data never share random numbers with them; two datasets drawn with one seed
//! do not share them either. So a seed always gives the same points, and the first `k` points do
//! not depend on how many are drawn.

use crate::energy::Energy;
use crate::rng::{self, Stream};
use crate::{Error, Result};
use std::f64::consts::{PI, TAU};
use std::path::Path;

/// Midpoint-rule nodes per curve in [`Toy::log_density`].
pub const CURVE_NODES: usize = 4096;

/// A generated 2-D dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Toy {
    /// 8 Gaussians with std 0.25, equal weights, centred at radius 2 and angles 2 pi k / 8
    /// (k = 0..8, the first on the positive x axis): the `ring8` energy preset.
    Ring8,
    /// 25 Gaussians with std 0.3, equal weights, centred on the 5x5 grid {-4, -2, 0, 2, 4}^2:
    /// the `grid25` energy preset.
    Grid25,
    /// scikit-learn's `make_moons` with noise 0.1, scaled as FFJORD does (x 2, then shifted by
    /// (-1, -0.2)): with t uniform in [0, pi], the upper moon 2 (cos t, sin t) + (-1, -0.2), the
    /// lower moon 2 (1 - cos t, 0.5 - sin t) + (-1, -0.2), each with probability 1/2, plus
    /// N(0, 0.2^2 I). Upper moon: centre (-1, -0.2), radius 2; lower: centre (1, 0.8), radius 2.
    TwoMoons,
    /// scikit-learn's `make_swiss_roll` with noise 1, its (x, z) plane divided by 5 (FFJORD):
    /// t = 1.5 pi (1 + 2 u) with u uniform in [0, 1], the point t (cos t, sin t) / 5 plus
    /// N(0, 0.2^2 I). Radius from 0.94 to 2.83.
    SwissRoll,
    /// FFJORD's checkerboard: uniform on the 8 "on" squares of a 4x4 board of side-2 squares
    /// covering [-4, 4)^2, those where floor(x / 2) + floor(y / 2) is even (including the square
    /// [0, 2) x [0, 2)). No noise: the density is 1/32 on the on squares and 0 elsewhere.
    Checkerboard,
    /// FFJORD's concentric rings: 4 circles of radius 0.75, 1.5, 2.25 and 3 with equal weights
    /// (not proportional to circumference), angle uniform, plus N(0, 0.08^2 I).
    Rings,
    /// FFJORD's pinwheel: 5 arms; with radial std 0.3, tangential std 0.1 and rate 0.25,
    /// f = (1 + 0.3 z0, 0.1 z1), angle a = 2 pi k / 5 + 0.25 exp(f0) for arm k, and the point
    /// 2 (f0 cos a + f1 sin a, -f0 sin a + f1 cos a).
    Pinwheel,
    /// FFJORD's two spirals: s = sqrt(u) 3 pi (540 degrees), the point
    /// (-s cos s + v/2, s sin s + w/2) or its negation (each with probability 1/2), divided by 3,
    /// plus N(0, 0.1^2 I), with u, v, w uniform in [0, 1]. Radius up to about 3.3.
    TwoSpirals,
}

impl Toy {
    /// Every dataset, in the order that fixes its counter constant (never reorder; append).
    pub const ALL: [Toy; 8] = [
        Toy::Ring8,
        Toy::Grid25,
        Toy::TwoMoons,
        Toy::SwissRoll,
        Toy::Checkerboard,
        Toy::Rings,
        Toy::Pinwheel,
        Toy::TwoSpirals,
    ];

    /// The names `parse` accepts, in [`Toy::ALL`] order.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|t| t.name()).collect()
    }

    /// Parses a dataset name (case-insensitive; `-` may stand for `_`).
    pub fn parse(name: &str) -> Result<Self> {
        let wanted = name.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL.iter().copied().find(|t| t.name() == wanted).ok_or_else(|| {
            Error::invalid("dataset", format!("unknown toy dataset `{name}` (valid: {})", Self::names().join(", ")))
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Toy::Ring8 => "ring8",
            Toy::Grid25 => "grid25",
            Toy::TwoMoons => "two_moons",
            Toy::SwissRoll => "swiss_roll",
            Toy::Checkerboard => "checkerboard",
            Toy::Rings => "rings",
            Toy::Pinwheel => "pinwheel",
            Toy::TwoSpirals => "two_spirals",
        }
    }

    /// Position in [`Toy::ALL`]: the `t` of the counter step `u32::MAX - t`.
    fn index(&self) -> u32 {
        Self::ALL.iter().position(|t| t == self).expect("every variant is in ALL") as u32
    }

    /// The normalised true density as an energy (E = -log p), where it is known in closed form:
    /// the `ring8` and `grid25` presets. `None` for the other datasets.
    pub fn true_energy(&self) -> Option<Energy> {
        match self {
            Toy::Ring8 | Toy::Grid25 => crate::energy::spec::resolve_energy(self.name()).ok(),
            _ => None,
        }
    }

    /// log p(x) of the data distribution for points [n, 2], where it is known: in closed form
    /// (`ring8`, `grid25`, `checkerboard`, which is -inf off its squares) or as a Gaussian
    /// smoothing of a curve, integrated over the curve parameter by the midpoint rule with
    /// [`CURVE_NODES`] nodes (`two_moons`, `swiss_roll`, `rings`). `None` for `pinwheel` and
    /// `two_spirals`.
    pub fn log_density(&self, points: &[f32]) -> Option<Vec<f64>> {
        use rayon::prelude::*;
        let xy: Vec<[f64; 2]> = points.chunks_exact(2).map(|p| [p[0] as f64, p[1] as f64]).collect();
        // Curves as (weight, parameter range, centre at t), all with the same noise std.
        type Curve = (f64, (f64, f64), fn(f64) -> [f64; 2]);
        let (curves, std): (Vec<Curve>, f64) = match self {
            Toy::Ring8 | Toy::Grid25 => {
                let e = self.true_energy()?;
                return Some(xy.par_iter().map(|p| -e.energy::<f64>(p)).collect());
            }
            Toy::Checkerboard => {
                let on = |p: &[f64; 2]| {
                    let inside = p.iter().all(|v| (-4.0..4.0).contains(v));
                    inside && ((p[0] / 2.0).floor() + (p[1] / 2.0).floor()) as i64 % 2 == 0
                };
                return Some(xy.iter().map(|p| if on(p) { -(32f64.ln()) } else { f64::NEG_INFINITY }).collect());
            }
            Toy::TwoMoons => (
                vec![
                    (0.5, (0.0, PI), |t| [2.0 * t.cos() - 1.0, 2.0 * t.sin() - 0.2]),
                    (0.5, (0.0, PI), |t| [2.0 * (1.0 - t.cos()) - 1.0, 2.0 * (0.5 - t.sin()) - 0.2]),
                ],
                0.2,
            ),
            Toy::SwissRoll => (vec![(1.0, (1.5 * PI, 4.5 * PI), |t| [t * t.cos() / 5.0, t * t.sin() / 5.0])], 0.2),
            Toy::Rings => (
                vec![
                    (0.25, (0.0, TAU), |t| [0.75 * t.cos(), 0.75 * t.sin()]),
                    (0.25, (0.0, TAU), |t| [1.5 * t.cos(), 1.5 * t.sin()]),
                    (0.25, (0.0, TAU), |t| [2.25 * t.cos(), 2.25 * t.sin()]),
                    (0.25, (0.0, TAU), |t| [3.0 * t.cos(), 3.0 * t.sin()]),
                ],
                0.08,
            ),
            Toy::Pinwheel | Toy::TwoSpirals => return None,
        };
        let nodes: Vec<(f64, [f64; 2])> = curves
            .iter()
            .flat_map(|&(w, (a, b), centre)| {
                (0..CURVE_NODES)
                    .map(move |k| (w / CURVE_NODES as f64, centre(a + (b - a) * (k as f64 + 0.5) / CURVE_NODES as f64)))
            })
            .collect();
        let (inv_var, log_norm) = (1.0 / (std * std), -(TAU * std * std).ln());
        // Nodes beyond 10 std contribute below e^-50 of the nearest and are skipped.
        let cut = 100.0;
        Some(
            xy.par_iter()
                .map(|p| {
                    let terms: Vec<f64> = nodes
                        .iter()
                        .filter_map(|(w, c)| {
                            let q = ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)) * inv_var;
                            (q < cut).then(|| w.ln() - 0.5 * q)
                        })
                        .collect();
                    let Some(max) = terms.iter().copied().reduce(f64::max) else { return f64::NEG_INFINITY };
                    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln() + log_norm
                })
                .collect(),
        )
    }

    /// `n` points, [n, 2] row-major. Point `i` depends only on `(seed, i)` (see the module
    /// documentation), so `sample(k, s)` is a prefix of `sample(n, s)` for k <= n.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let step = u32::MAX - self.index();
        let mut out = Vec::with_capacity(2 * n);
        for i in 0..n {
            let [x, y] = self.point(&PointRng::new(seed, step, i));
            out.push(x as f32);
            out.push(y as f32);
        }
        out
    }

    fn point(&self, r: &PointRng) -> [f64; 2] {
        let bits = r.bits();
        let u = |j: usize| rng::uniform(bits[j]) as f64; // (0, 1]
        let z = r.normals();
        match self {
            Toy::Ring8 => {
                let t = choose(bits[0], 8) as f64 * TAU / 8.0;
                let s = 0.25;
                [2.0 * t.cos() + s * z[0], 2.0 * t.sin() + s * z[1]]
            }
            Toy::Grid25 => {
                let k = choose(bits[0], 25);
                let s = 0.3;
                [-4.0 + 2.0 * (k % 5) as f64 + s * z[0], -4.0 + 2.0 * (k / 5) as f64 + s * z[1]]
            }
            Toy::TwoMoons => {
                let t = PI * (1.0 - u(1)); // [0, pi)
                let (bx, by) =
                    if choose(bits[0], 2) == 0 { (t.cos(), t.sin()) } else { (1.0 - t.cos(), 0.5 - t.sin()) };
                [2.0 * (bx + 0.1 * z[0]) - 1.0, 2.0 * (by + 0.1 * z[1]) - 0.2]
            }
            Toy::SwissRoll => {
                let t = 1.5 * PI * (1.0 + 2.0 * u(1));
                [(t * t.cos() + z[0]) / 5.0, (t * t.sin() + z[1]) / 5.0]
            }
            Toy::Checkerboard => {
                // On square k of 8: row cy = k / 2, column cx = 2 (k % 2) + cy % 2, so cx + cy is
                // even; square (cx, cy) is [-4 + 2 cx, -2 + 2 cx) x [-4 + 2 cy, -2 + 2 cy).
                let k = choose(bits[0], 8);
                let cy = k / 2;
                let cx = 2 * (k % 2) + cy % 2;
                [in_cell(-4.0 + 2.0 * cx as f64, 1.0 - u(1)), in_cell(-4.0 + 2.0 * cy as f64, 1.0 - u(2))]
            }
            Toy::Rings => {
                let radius = 0.75 * (1 + choose(bits[0], 4)) as f64;
                let t = TAU * u(1);
                [radius * t.cos() + 0.08 * z[0], radius * t.sin() + 0.08 * z[1]]
            }
            Toy::Pinwheel => {
                let arm = choose(bits[0], 5) as f64;
                let (f0, f1) = (1.0 + 0.3 * z[0], 0.1 * z[1]);
                let a = TAU * arm / 5.0 + 0.25 * f0.exp();
                let (s, c) = a.sin_cos();
                [2.0 * (f0 * c + f1 * s), 2.0 * (-f0 * s + f1 * c)]
            }
            Toy::TwoSpirals => {
                let s = u(1).sqrt() * 3.0 * PI;
                let sign = if choose(bits[0], 2) == 0 { 1.0 } else { -1.0 };
                let x = sign * (-s * s.cos() + 0.5 * u(2));
                let y = sign * (s * s.sin() + 0.5 * u(3));
                [x / 3.0 + 0.1 * z[0], y / 3.0 + 0.1 * z[1]]
            }
        }
    }
}

impl std::str::FromStr for Toy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Toy::parse(s)
    }
}

impl std::fmt::Display for Toy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The Philox counters of one point.
struct PointRng {
    seed: u64,
    chain: u32,
    step: u32,
    draw_base: u32,
}

impl PointRng {
    fn new(seed: u64, step: u32, i: usize) -> Self {
        let i = i as u64;
        PointRng { seed, chain: i as u32, step, draw_base: ((i >> 32) as u32).wrapping_mul(2) }
    }

    /// Four raw words (draw 0).
    fn bits(&self) -> [u32; 4] {
        rng::philox4x32_10([self.chain, self.step, Stream::Init as u32, self.draw_base], rng::key(self.seed))
    }

    /// Four standard normals (draw 1).
    fn normals(&self) -> [f64; 4] {
        rng::normal4(self.seed, self.chain, self.step, Stream::Init, self.draw_base + 1).map(f64::from)
    }
}

/// A uniform choice in 0..k from 32 random bits (multiply-shift; bias below k / 2^32).
fn choose(bits: u32, k: u32) -> u32 {
    ((bits as u64 * k as u64) >> 32) as u32
}

/// `lo + 2 f` for f in [0, 1), as an f32 value that stays below `lo + 2` after rounding.
fn in_cell(lo: f64, f: f64) -> f64 {
    let hi = (lo + 2.0) as f32;
    let v = (lo + 2.0 * f) as f32;
    (if v < hi { v } else { hi.next_down() }) as f64
}

/// The points of a dataset spec: a toy name ([`Toy::parse`]), giving `n` points drawn with
/// `seed`; or the path of a `.npy`/`.csv` file holding an [rows, 2] matrix, giving all its rows
/// in file order (`n` and `seed` are then unused: the caller compares its batch with the rows).
/// A file with other than 2 columns, no rows, or a NaN/Inf value is an error naming the file (and
/// the row).
pub fn load_points(spec: &str, n: usize, seed: u64) -> Result<Vec<f32>> {
    if let Ok(toy) = Toy::parse(spec) {
        return Ok(toy.sample(n, seed));
    }
    let path = Path::new(spec);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !(ext.eq_ignore_ascii_case("npy") || ext.eq_ignore_ascii_case("csv")) {
        let what = if path.exists() { "an existing file but not .npy/.csv" } else { "no such file" };
        return Err(Error::invalid(
            "dataset",
            format!(
                "`{spec}` is neither a toy dataset ({}) nor a .npy/.csv file of 2-D points ({what})",
                Toy::names().join(", ")
            ),
        ));
    }
    read_points(path)
}

/// Reads an [rows, 2] matrix of finite points with at least one row from a `.npy`/`.csv` file.
pub fn read_points(path: &Path) -> Result<Vec<f32>> {
    let (data, cols) = read_rows(path)?;
    if cols != 2 {
        return Err(Error::format(
            path,
            format!(
                "expected 2-D points, an array of shape [rows, 2]; found shape [{}, {cols}]",
                data.len() / cols.max(1)
            ),
        ));
    }
    Ok(data)
}

/// Reads finite rows, at least one, from a `.npy` file ([rows, ...], each row flattened in C
/// order: [rows, C, H, W] images give rows of C·H·W) or a `.csv` file; returns the values and
/// the row length.
pub fn read_rows(path: &Path) -> Result<(Vec<f32>, usize)> {
    let is_npy = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let array = if is_npy { Some(crate::io::npy::read(path)?) } else { None };
    rows_of(path, array)
}

/// [`read_rows`] of an array read from `path` (None: read the `.csv` file).
fn rows_of(path: &Path, array: Option<crate::io::npy::Array>) -> Result<(Vec<f32>, usize)> {
    let (data, rows, cols) = match array {
        Some(crate::io::npy::Array { data, shape, .. }) => match shape[..] {
            [rows] => (data, rows, 1),
            [rows, ref rest @ ..] => (data, rows, rest.iter().product()),
            [] => return Err(Error::format(path, "expected an array of rows, found a scalar")),
        },
        None => crate::io::read_samples(path)?,
    };
    if rows == 0 {
        return Err(Error::format(path, "no points: the array has 0 rows"));
    }
    if let Some(pos) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(
            path,
            format!("row {} (counting from 0) has a non-finite value ({})", pos / cols.max(1), data[pos]),
        ));
    }
    Ok((data, cols))
}

/// Data rows as [`read_rows`] gives them, except that a `.npy` of rank 3 or 4 is images
/// ([`super::images::read_npy`]: uint8 scaled to [-1, 1], floats as given, labels beside it),
/// returned with their [C, H, W] shape.
pub fn read_rows_shaped(path: &Path) -> Result<(Vec<f32>, usize, Option<[usize; 3]>)> {
    let is_npy = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let array = if is_npy { Some(crate::io::npy::read(path)?) } else { None };
    match array {
        Some(array) if matches!(array.shape.len(), 3 | 4) => {
            let set = super::images::from_array(path, array)?;
            Ok((set.values, set.shape.iter().product(), Some(set.shape)))
        }
        other => rows_of(path, other).map(|(values, cols)| (values, cols, None)),
    }
}

/// Training rows of any width and their width: a toy dataset ([`load_points`], 2 columns), a
/// `.npy`/`.csv` file ([`read_rows_shaped`]), or images, scaled from [0, 1] to [-1, 1]: an IDX
/// images file (`*idx3-ubyte[.gz]`) or an image folder ([`super::load`], its training split).
/// With the images' [C, H, W] shape, when the rows are images (a folder, an IDX file or a
/// `.npy` of rank 3 or 4).
pub fn load_rows_shaped(spec: &str, n: usize, seed: u64) -> Result<(Vec<f32>, usize, Option<[usize; 3]>)> {
    let path = Path::new(spec);
    let is_idx = path.file_name().and_then(|f| f.to_str()).is_some_and(|f| f.contains("idx"));
    if Toy::parse(spec).is_err() && (path.is_dir() || is_idx) {
        let images = match path.is_dir() {
            true => super::load(path, super::Split::Train)?,
            false => super::idx::load_images(path, None)?,
        };
        let d = images.dim();
        let (c, h, w) = images.shape();
        return Ok((images.images.iter().map(|v| 2.0 * v - 1.0).collect(), d, Some([c, h, w])));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if Toy::parse(spec).is_err() && (ext.eq_ignore_ascii_case("npy") || ext.eq_ignore_ascii_case("csv")) {
        return read_rows_shaped(path);
    }
    Ok((load_points(spec, n, seed)?, 2, None))
}
