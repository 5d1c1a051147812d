//! Exact likelihoods of 2-D energies by quadrature: log Z = log sum_cells exp(-E) * cell area on
//! a fine grid over a box, the held-out negative log-likelihood E(x) + log Z, and the
//! total-variation distance between the model's density and the data's (the exact density where
//! it is known, otherwise a histogram of many fresh samples).

use crate::energy::Energy;
use crate::io::figure::Grid2d;
use crate::nn::NetworkInternals;
use crate::{Error, Result};

/// Cells per side of the quadrature grid.
pub const QUADRATURE_CELLS: usize = 400;
/// Bins per side of the histogram TV is measured on when the data's density is unknown.
pub const TV_BINS: usize = 50;

/// What the data's density is compared with.
pub enum Reference<'a> {
    /// The data's normalised log density of points [n, 2] (e.g. [`crate::data::toy::Toy::log_density`]).
    LogDensity(&'a dyn Fn(&[f32]) -> Vec<f64>),
    /// Samples, binned on a [`TV_BINS`]^2 histogram.
    Samples(&'a [f32]),
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct DensityReport {
    pub log_z: f64,
    /// Mean -log p_model over the held-out points inside the box (nats): the density is
    /// normalised on the box, so points outside it have none and are counted in `outside_box`
    /// instead (an energy extrapolated there would give any number at all).
    pub nll: f64,
    /// Mean -log p_data over the same points, where the density is known.
    pub true_nll: Option<f64>,
    pub tv: f64,
    /// "exact density" or "histogram of N samples on a BxB grid".
    pub tv_reference: String,
    pub held_out: usize,
    /// Held-out points outside the box the density is normalised on.
    pub outside_box: usize,
    pub box_lo: [f32; 2],
    pub box_hi: [f32; 2],
    pub cells: usize,
}

/// Energies [n] and gradients [n, dim] of many points (CPU, batched; blocks in parallel).
pub fn energy_grads(energy: &Energy, points: &[f32]) -> (Vec<f32>, Vec<f32>) {
    use rayon::prelude::*;
    let d = energy.dim();
    let mut out = vec![0.0; points.len() / d];
    let mut grads = vec![0.0; points.len()];
    out.par_chunks_mut(1024).zip(grads.par_chunks_mut(1024 * d)).zip(points.par_chunks(1024 * d)).for_each(
        |((e, g), x)| {
            energy.energy_grad_batch(x, g, e);
        },
    );
    (out, grads)
}

/// Energies of many points (CPU, batched; blocks in parallel). Networks run forward only.
pub fn energies(energy: &Energy, points: &[f32]) -> Vec<f32> {
    match energy {
        Energy::Net(n) => n.view().energies_batch(points),
        _ => energy_grads(energy, points).0,
    }
}

/// log sum_i exp(-e_i) + log(cell area), accumulated in f64.
pub fn log_integral(energies: &[f32], cell_area: f64) -> f64 {
    let min = energies.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let sum: f64 = energies.iter().map(|&e| (-(e as f64 - min)).exp()).sum();
    -min + sum.ln() + cell_area.ln()
}

/// The quadrature grid over a box.
pub fn grid(box_lo: [f32; 2], box_hi: [f32; 2], cells: usize) -> Grid2d {
    Grid2d { x_min: box_lo[0], x_max: box_hi[0], y_min: box_lo[1], y_max: box_hi[1], nx: cells, ny: cells }
}

/// log Z of a 2-D energy by quadrature on a box ([`QUADRATURE_CELLS`]² cells).
pub struct GridLogZ {
    pub log_z: f64,
    /// Share of the grid's mass in its outermost ring of cells: well above 0 means the density
    /// has not decayed at the box's edge, so mass may fall outside and log Z is too small.
    pub edge_mass: f64,
    /// The energies at the cell centres, row by row as [`Grid2d::points`] lists them.
    pub energies: Vec<f32>,
    pub grid: Grid2d,
}

/// log Z = log sum_cells exp(-E) * cell area of a 2-D energy over the box [lo, hi].
pub fn grid_log_z(model: &Energy, box_lo: [f32; 2], box_hi: [f32; 2]) -> Result<GridLogZ> {
    if model.dim() != 2 {
        return Err(Error::invalid(
            "model",
            format!("quadrature needs a 2-D model, this one takes {} inputs", model.dim()),
        ));
    }
    grid_log_z_of(&|p| energies(model, p), box_lo, box_hi)
}

/// [`grid_log_z`] of any energy of 2-D points (`energies_of` maps points [n, 2] to n energies).
pub fn grid_log_z_of(energies_of: &dyn Fn(&[f32]) -> Vec<f32>, box_lo: [f32; 2], box_hi: [f32; 2]) -> Result<GridLogZ> {
    let grid = grid(box_lo, box_hi, QUADRATURE_CELLS);
    grid.validate()?;
    let energies = energies_of(&grid.points());
    if let Some(k) = energies.iter().position(|e| !e.is_finite()) {
        return Err(Error::invalid("model", format!("its energy is not finite at grid point {k}")));
    }
    let log_z = log_integral(&energies, grid.cell_area());
    let n = QUADRATURE_CELLS;
    let edge_mass = energies
        .iter()
        .enumerate()
        .filter(|(k, _)| [k / n, k % n].iter().any(|&i| i == 0 || i == n - 1))
        .map(|(_, &e)| (-(e as f64) - log_z).exp() * grid.cell_area())
        .sum();
    Ok(GridLogZ { log_z, edge_mass, energies, grid })
}

/// Normalised cell probabilities of a density given by energies on `grid`.
fn cell_probabilities(energies: &[f32], grid: &Grid2d) -> Vec<f64> {
    let log_z = log_integral(energies, grid.cell_area());
    energies.iter().map(|&e| (-(e as f64) - log_z).exp() * grid.cell_area()).collect()
}

/// Cell probabilities of the quadrature grid summed into [`TV_BINS`]² bins (row by row).
fn coarse_bins(cells: &[f64]) -> Vec<f64> {
    let per = QUADRATURE_CELLS / TV_BINS;
    let mut bins = vec![0.0f64; TV_BINS * TV_BINS];
    for (k, p) in cells.iter().enumerate() {
        let (r, c) = (k / QUADRATURE_CELLS, k % QUADRATURE_CELLS);
        bins[(r / per) * TV_BINS + c / per] += p;
    }
    bins
}

/// The total variation between bin probabilities (summing to 1 over the box) and the histogram
/// of 2-D `samples` on the same [`TV_BINS`]² bins; samples outside the box are mass the bins lack.
fn histogram_tv(bins: &[f64], samples: &[f32], box_lo: [f32; 2], box_hi: [f32; 2]) -> f64 {
    let coarse = grid(box_lo, box_hi, TV_BINS);
    let mut counts = vec![0.0f64; TV_BINS * TV_BINS];
    let mut inside = 0usize;
    for p in samples.chunks_exact(2) {
        let c = ((p[0] - coarse.x_min) / (coarse.x_max - coarse.x_min) * TV_BINS as f32).floor();
        let r = ((coarse.y_max - p[1]) / (coarse.y_max - coarse.y_min) * TV_BINS as f32).floor();
        if (0.0..TV_BINS as f32).contains(&c) && (0.0..TV_BINS as f32).contains(&r) {
            counts[r as usize * TV_BINS + c as usize] += 1.0;
            inside += 1;
        }
    }
    let total = (samples.len() / 2).max(1) as f64;
    0.5 * bins.iter().zip(&counts).map(|(m, c)| (m - c / total).abs()).sum::<f64>()
        + 0.5 * (total - inside as f64) / total
}

/// The total variation between the histogram of 2-D `samples` (e.g. a sampler's, or a
/// generator's) and the exact density `log_p` over the box, both on [`TV_BINS`]² bins. A
/// finite sample is never at 0: compare with as many exact draws ([`crate::data::toy::Toy::sample`]).
pub fn samples_tv(samples: &[f32], log_p: &dyn Fn(&[f32]) -> Vec<f64>, box_lo: [f32; 2], box_hi: [f32; 2]) -> f64 {
    let fine = grid(box_lo, box_hi, QUADRATURE_CELLS);
    let cells: Vec<f64> = log_p(&fine.points()).iter().map(|l| l.exp() * fine.cell_area()).collect();
    let mass: f64 = cells.iter().sum();
    let bins: Vec<f64> = coarse_bins(&cells).iter().map(|b| b / mass).collect();
    histogram_tv(&bins, samples, box_lo, box_hi)
}

#[cfg(any(test, feature = "internals"))]
/// Evaluates a 2-D model on held-out points against a reference; the density is normalised
/// over the box.
pub fn evaluate_2d(
    model: &Energy,
    box_lo: [f32; 2],
    box_hi: [f32; 2],
    held_out: &[f32],
    reference: Reference,
) -> Result<DensityReport> {
    evaluate_2d_of(&|p| energies(model, p), box_lo, box_hi, held_out, reference)
}

/// [`evaluate_2d`] of any energy of 2-D points (`energies_of` maps points [n, 2] to n energies):
/// a latent EBM's marginal energy, say.
pub fn evaluate_2d_of(
    energies_of: &dyn Fn(&[f32]) -> Vec<f32>,
    box_lo: [f32; 2],
    box_hi: [f32; 2],
    held_out: &[f32],
    reference: Reference,
) -> Result<DensityReport> {
    if held_out.is_empty() || !held_out.len().is_multiple_of(2) {
        return Err(Error::invalid("held-out data", "need at least one 2-D point"));
    }
    let n = held_out.len() / 2;
    let inside: Vec<f32> = held_out
        .chunks_exact(2)
        .filter(|p| (box_lo[0]..=box_hi[0]).contains(&p[0]) && (box_lo[1]..=box_hi[1]).contains(&p[1]))
        .flatten()
        .copied()
        .collect();
    let outside_box = n - inside.len() / 2;
    if inside.is_empty() {
        return Err(Error::invalid(
            "held-out data",
            format!(
                "all {n} points lie outside the box [{}, {}] x [{}, {}] the model's density is normalised on, \
                 so they have no likelihood under it",
                box_lo[0], box_hi[0], box_lo[1], box_hi[1]
            ),
        ));
    }
    let GridLogZ { log_z, energies: model_grid, grid: fine, .. } = grid_log_z_of(energies_of, box_lo, box_hi)?;
    let inside_energies = energies_of(&inside);
    if let Some(k) = inside_energies.iter().position(|e| !e.is_finite()) {
        return Err(Error::invalid(
            "model",
            format!(
                "its energy is {} at the held-out point ({}, {})",
                inside_energies[k],
                inside[2 * k],
                inside[2 * k + 1]
            ),
        ));
    }
    let nll = inside_energies.iter().map(|&e| e as f64).sum::<f64>() / (inside.len() / 2) as f64 + log_z;
    let model_p = cell_probabilities(&model_grid, &fine);
    let (tv, tv_reference, true_nll) = match reference {
        Reference::LogDensity(log_p) => {
            let cells: Vec<f64> = log_p(&fine.points()).iter().map(|l| l.exp() * fine.cell_area()).collect();
            let mass: f64 = cells.iter().sum();
            let tv = 0.5 * model_p.iter().zip(&cells).map(|(a, b)| (a - b / mass).abs()).sum::<f64>();
            let true_nll = -log_p(&inside).iter().sum::<f64>() / (inside.len() / 2) as f64;
            (tv, "exact density".to_string(), Some(true_nll))
        }
        Reference::Samples(samples) => {
            let tv = histogram_tv(&coarse_bins(&model_p), samples, box_lo, box_hi);
            (tv, format!("histogram of {} samples on a {TV_BINS}x{TV_BINS} grid", samples.len() / 2), None)
        }
    };
    Ok(DensityReport {
        log_z,
        nll,
        true_nll,
        tv,
        tv_reference,
        held_out: n,
        outside_box,
        box_lo,
        box_hi,
        cells: QUADRATURE_CELLS,
    })
}
