//! Contrastive training ([`Loss::InfoNce`]): the pair energy E(a, b) = −⟨f̂(a), f̂(b)⟩/τ, where
//! f̂ = f/‖f‖ are the network's K outputs scaled to unit length (cosine similarity, as SimCLR),
//! learned by InfoNCE (van den Oord et al. 2018) over in-batch negatives in the symmetric form
//! of CLIP (Radford et al. 2021): each of B data points gives two random views a_i and b_i, and
//! the loss is the mean of the cross-entropies of finding b_i among all b given a_i and a_i
//! among all a given b_i.
//!
//! Draws of batch entry j at step t (Philox, counters as the module docs of [`crate::train`]):
//! the row from [`super::batch_row`]; for view v (0 for a, 1 for b) the shift from words 0
//! and 1 of `(j, t, Views, v·(1 + D))`, the angle from word 2 and the zoom from word 3, and the
//! noise ε_i from `(j, t, Views, v·(1 + D) + 1 + i / 4)` normals, D = ⌈d / 4⌉.

use super::{Loss, TrainConfig, batch_row};
use crate::nn::{NetView, Shape, cpu::Tape};
use crate::num::Real;
use crate::rng::{self, Stream};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a view of a data point is drawn: an image is moved by a whole number of pixels, up to
/// `shift` along each axis, turned about its centre by an angle up to `rotate` degrees either
/// way and magnified by a factor in [1 − zoom, 1 + zoom] (bilinear; pixels from outside copy
/// the nearest edge pixel), then Gaussian noise of standard deviation `noise` is added to every
/// value. Each is drawn uniformly per view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    pub shift: u32,
    #[serde(default)]
    pub rotate: f32,
    #[serde(default)]
    pub zoom: f32,
    pub noise: f32,
}

impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.shift > 0 {
            parts.push(format!("shift:{}", self.shift));
        }
        for (name, v) in [("rotate", self.rotate), ("zoom", self.zoom), ("noise", self.noise)] {
            if v != 0.0 {
                parts.push(format!("{name}:{v}"));
            }
        }
        if parts.is_empty() { write!(f, "none") } else { write!(f, "{}", parts.join(",")) }
    }
}

impl Augment {
    /// The `--augment` spelling: `none`, or a comma list of `shift:S` (pixels), `rotate:DEG`,
    /// `zoom:Z` and `noise:N`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::invalid(
                "augment",
                format!("{text:?}: {why}; expected none or e.g. shift:2,rotate:15,zoom:0.1,noise:0.1"),
            )
        };
        let mut out = Augment::default();
        if text.trim() == "none" {
            return Ok(out);
        }
        for part in text.split(',') {
            let number = |v: &str, what: &str| {
                v.trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| bad(format!("{what} {v:?} is not a finite number >= 0")))
            };
            match part.trim().split_once(':') {
                Some(("shift", v)) => {
                    out.shift =
                        v.trim().parse().map_err(|_| bad(format!("shift {v:?} is not a whole number of pixels")))?
                }
                Some(("rotate", v)) => out.rotate = number(v, "rotate")?,
                Some(("zoom", v)) => out.zoom = number(v, "zoom")?,
                Some(("noise", v)) => out.noise = number(v, "noise")?,
                _ => return Err(bad(format!("unknown part {part:?}"))),
            }
        }
        Ok(out)
    }

    /// `--augment`'s default: for images shift:3,rotate:25,zoom:0.25,noise:0.2 (a digit stays
    /// a digit, but no two views line up pixel for pixel; on MNIST these gave a better linear
    /// probe after one epoch than milder ones, docs/contrastive.md); for points noise:0.1.
    pub fn default_for(input: Shape) -> Self {
        match input.image() {
            Some(_) => Augment { shift: 3, rotate: 25.0, zoom: 0.25, noise: 0.2 },
            None => Augment { noise: 0.1, ..Augment::default() },
        }
    }

    fn moves(&self) -> bool {
        self.shift > 0 || self.rotate > 0.0 || self.zoom > 0.0
    }

    /// The views must differ (else the task is trivial) unless they are given (`paired`);
    /// moves need images larger than the shift, turns up to 180 degrees, zooms below 1.
    pub fn check(&self, input: Shape, paired: bool) -> Result<()> {
        let bad = |m: String| Err(Error::invalid("augment", m));
        if !self.moves() && self.noise == 0.0 && !paired {
            return bad("none: the two views of a point would be equal; give a shift, rotate, zoom or noise".into());
        }
        if self.rotate > 180.0 {
            return bad(format!("rotate:{} is more than 180 degrees", self.rotate));
        }
        if self.zoom >= 1.0 {
            return bad(format!("zoom:{} would magnify by 1 - zoom <= 0", self.zoom));
        }
        match input.image() {
            None if self.moves() => {
                bad(format!("{self} moves images, but the data are flat points of {}; only noise applies", input.len()))
            }
            Some((_, h, w)) if self.shift as usize >= h.min(w) => {
                bad(format!("shift:{} is not smaller than the {h}x{w} image", self.shift))
            }
            _ => Ok(()),
        }
    }

    /// View `v` (0 or 1) of batch entry `j` at `step` of the data row `x`, into `out`.
    pub fn view(&self, input: Shape, seed: u64, (j, step, v): (u32, u32, u32), x: &[f32], out: &mut [f32]) {
        let d = x.len();
        let base = v * (1 + d.div_ceil(4) as u32);
        match input.image().filter(|_| self.moves()) {
            Some((c, h, w)) => {
                let u = rng::uniform4(seed, j, step, Stream::Views, base);
                let span = 2 * self.shift + 1;
                let pick = |u: f32| ((u * span as f32) as u32).min(span - 1) as isize - self.shift as isize;
                let (dy, dx) = (pick(u[0]), pick(u[1]));
                if self.rotate == 0.0 && self.zoom == 0.0 {
                    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
                    for ch in 0..c {
                        for r in 0..h {
                            let src_r = clamp(r as isize - dy, h);
                            for col in 0..w {
                                out[(ch * h + r) * w + col] = x[(ch * h + src_r) * w + clamp(col as isize - dx, w)];
                            }
                        }
                    }
                } else {
                    let angle = (2.0 * u[2] - 1.0) * self.rotate.to_radians();
                    let factor = 1.0 + (2.0 * u[3] - 1.0) * self.zoom;
                    warp(x, (c, h, w), (dy as f32, dx as f32), angle, factor, out);
                }
            }
            None => out.copy_from_slice(x),
        }
        if self.noise > 0.0 {
            for (i, o) in out.iter_mut().enumerate() {
                *o += self.noise * rng::normal4(seed, j, step, Stream::Views, base + 1 + i as u32 / 4)[i % 4];
            }
        }
    }
}

/// The image x [c, h, w] moved by `shift` (rows, columns), turned by `angle` radians and
/// magnified by `factor` about its centre: each output pixel reads its source point bilinearly,
/// coordinates clamped to the image (edge pixels repeat).
fn warp(x: &[f32], (c, h, w): (usize, usize, usize), shift: (f32, f32), angle: f32, factor: f32, out: &mut [f32]) {
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    let (sin, cos) = angle.sin_cos();
    for r in 0..h {
        for col in 0..w {
            let (py, px) = (r as f32 - shift.0 - cy, col as f32 - shift.1 - cx);
            let sy = ((cos * py - sin * px) / factor + cy).clamp(0.0, h as f32 - 1.0);
            let sx = ((sin * py + cos * px) / factor + cx).clamp(0.0, w as f32 - 1.0);
            let (y0, x0) = (sy.floor() as usize, sx.floor() as usize);
            let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
            let (fy, fx) = (sy - y0 as f32, sx - x0 as f32);
            for ch in 0..c {
                let at = |yy: usize, xx: usize| x[(ch * h + yy) * w + xx];
                let top = at(y0, x0) + fx * (at(y0, x1) - at(y0, x0));
                let bottom = at(y1, x0) + fx * (at(y1, x1) - at(y1, x0));
                out[(ch * h + r) * w + col] = top + fy * (bottom - top);
            }
        }
    }
}

/// The two views [B, d] of `step`'s batch of `rows` training rows: both drawn from the row of
/// `data` ([rows, d]), or, for a paired run (`data` [2 rows, d]), from the row and from its
/// given second view `rows` rows later.
pub fn views(cfg: &TrainConfig, input: Shape, data: &[f32], rows: usize, step: u32) -> (Vec<f32>, Vec<f32>) {
    let (d, b) = (cfg.dim(), cfg.batch);
    let second = if cfg.paired { rows } else { 0 };
    let (mut a, mut bv) = (vec![0.0; b * d], vec![0.0; b * d]);
    for (j, (va, vb)) in a.chunks_exact_mut(d).zip(bv.chunks_exact_mut(d)).enumerate() {
        let row = batch_row(cfg.seed, step, j, rows);
        let x = |r: usize| &data[r * d..(r + 1) * d];
        cfg.augment.view(input, cfg.seed, (j as u32, step, 0), x(row), va);
        cfg.augment.view(input, cfg.seed, (j as u32, step, 1), x(row + second), vb);
    }
    (a, bv)
}

/// InfoNCE of a batch of feature pairs, with its gradient.
pub struct PairLoss<T> {
    pub loss: T,
    /// The mean pair energy −cos/τ of the B matching pairs, and of the B(B − 1) others.
    pub e_pos: T,
    pub e_neg: T,
    /// dL/dfa and dL/dfb, [B, K] each.
    pub grad_a: Vec<T>,
    pub grad_b: Vec<T>,
}

/// Rows scaled to unit length (a zero row stays zero) and the norms they had.
pub fn unit_rows<T: Real>(f: &[T], k: usize) -> (Vec<T>, Vec<T>) {
    let tiny = T::from_f32(1e-12);
    let mut norms = Vec::with_capacity(f.len() / k);
    let mut z = f.to_vec();
    for row in z.chunks_exact_mut(k) {
        let mut sq = T::zero();
        row.iter().for_each(|&v| sq += v * v);
        let n = sq.sqrt().max(tiny);
        row.iter_mut().for_each(|v| *v = *v / n);
        norms.push(n);
    }
    (z, norms)
}

/// The symmetric InfoNCE loss (module docs) of features fa, fb [B, K] at temperature τ, and
/// its gradient; in f32 for training and f64 for the finite-difference checks.
pub fn info_nce<T: Real>(fa: &[T], fb: &[T], k: usize, tau: T) -> PairLoss<T> {
    let b = fa.len() / k;
    let (za, na) = unit_rows(fa, k);
    let (zb, nb) = unit_rows(fb, k);
    let dot = |x: &[T], y: &[T]| x.iter().zip(y).fold(T::zero(), |s, (&p, &q)| s + p * q);
    // s[i][j] = ⟨za_i, zb_j⟩/τ, row-major.
    let s: Vec<T> = (0..b * b).map(|ij| dot(&za[ij / b * k..][..k], &zb[ij % b * k..][..k]) / tau).collect();
    let one = T::from_f32(1.0);
    let half_mean = one / T::from_f32(2.0 * b as f32);
    // dL/ds[i][j] = (softmax over j of row i − δ_ij + softmax over i of column j − δ_ij) / 2B.
    let mut ds = vec![T::zero(); b * b];
    let mut loss = T::zero();
    for (stride_in, stride_out) in [(1, b), (b, 1)] {
        for line in 0..b {
            let at = |m: usize| line * stride_out + m * stride_in;
            let max = (0..b).fold(s[at(0)], |m, q| m.max(s[at(q)]));
            let mut sum = T::zero();
            (0..b).for_each(|q| sum += (s[at(q)] - max).exp());
            loss += half_mean * (max + sum.ln() - s[at(line)]);
            for q in 0..b {
                let p = (s[at(q)] - max).exp() / sum;
                ds[at(q)] += half_mean * if q == line { p - one } else { p };
            }
        }
    }
    let (mut e_pos, mut e_neg) = (T::zero(), T::zero());
    for i in 0..b {
        for j in 0..b {
            if i == j { e_pos -= s[i * b + j] } else { e_neg -= s[i * b + j] }
        }
    }
    e_pos = e_pos / T::from_f32(b as f32);
    e_neg = if b > 1 { e_neg / T::from_f32((b * (b - 1)) as f32) } else { T::zero() };
    // dL/dza_i = Σ_j ds_ij zb_j / τ (and the same for b), then through the scaling to unit
    // length: dL/df = (g − z⟨z, g⟩)/‖f‖.
    let mut grad_a = vec![T::zero(); b * k];
    let mut grad_b = vec![T::zero(); b * k];
    for i in 0..b {
        for j in 0..b {
            let g = ds[i * b + j] / tau;
            for m in 0..k {
                grad_a[i * k + m] += g * zb[j * k + m];
                grad_b[j * k + m] += g * za[i * k + m];
            }
        }
    }
    for (grad, z, norms) in [(&mut grad_a, &za, &na), (&mut grad_b, &zb, &nb)] {
        for ((g, z), &n) in grad.chunks_exact_mut(k).zip(z.chunks_exact(k)).zip(norms.iter()) {
            let along = dot(g, z);
            g.iter_mut().zip(z).for_each(|(g, &z)| *g = (*g - z * along) / n);
        }
    }
    PairLoss { loss, e_pos, e_neg, grad_a, grad_b }
}

/// Points per parallel task of the forward and backward passes.
const BLOCK_ROWS: usize = 64;

/// One contrastive step's loss, pair energies and parameter gradient (mean over the batch).
pub struct PairStep {
    pub loss: f32,
    pub e_pos: f32,
    pub e_neg: f32,
    pub grad: Vec<f32>,
}

/// InfoNCE of the views `a`, `b` ([B, d] each) and its parameter gradient on the CPU executor:
/// forward passes over blocks in parallel, the loss on the whole batch's features, then the
/// backward passes of the same blocks in parallel.
pub fn step_cpu(loss: Loss, net: &NetView, a: &[f32], b: &[f32]) -> PairStep {
    use rayon::prelude::*;
    let Loss::InfoNce { temperature } = loss else { unreachable!("contrastive losses only") };
    let (d, k) = (net.input_dim(), net.outputs);
    let points = [a, b].concat();
    let mut tapes: Vec<Tape> = points
        .par_chunks(BLOCK_ROWS * d)
        .map(|block| {
            let mut tape = Tape::default();
            net.forward_batch(block, block.len() / d, &mut tape);
            tape
        })
        .collect();
    let features: Vec<f32> = tapes.iter().flat_map(|t| t.outputs().iter().copied()).collect();
    let half = features.len() / 2;
    let pair = info_nce(&features[..half], &features[half..], k, temperature);
    let d_out = [pair.grad_a, pair.grad_b].concat();
    // Collected, then summed in block order: the same sum whatever the threads did.
    let grads: Vec<Vec<f32>> = tapes
        .par_iter_mut()
        .zip(d_out.par_chunks(BLOCK_ROWS * k))
        .map(|(tape, d_out)| {
            let mut grad = vec![0.0; net.param_count()];
            net.backward_batch(tape, d_out, Some(&mut grad), false);
            grad
        })
        .collect();
    let mut grad = vec![0.0; net.param_count()];
    for g in grads {
        grad.iter_mut().zip(&g).for_each(|(x, y)| *x += y);
    }
    PairStep { loss: pair.loss, e_pos: pair.e_pos, e_neg: pair.e_neg, grad }
}

/// What InfoNCE needs of a network and a batch: K ≥ 2 features, B ≥ 2 (a batch of one has no
/// negatives), views that differ (drawn, or given).
pub fn check(net: &NetView, config: &TrainConfig) -> Result<()> {
    if net.outputs < 2 {
        return Err(Error::invalid(
            "loss infonce",
            format!("needs a network of K >= 2 outputs (the features); this one has {}", net.outputs),
        ));
    }
    if config.batch < 2 {
        return Err(Error::invalid(
            "batch",
            "infonce contrasts each pair with the batch's other points: it needs a batch of at least 2",
        ));
    }
    config.augment.check(net.input, config.paired)
}
