//! Score matching steps: the losses of [`Loss::Dsm`] and [`Loss::Ssm`] on the B positives of a
//! step (rows as [`super::batch_row`] picks them), their parameter gradients through the
//! network's jets ([`crate::nn::jet`]), and the draws both executors share.
//!
//! Draws of positive j at step t (Philox, counters as the module docs of [`crate::train`]):
//! - DSM: the level l = floor(u32 * L / 2^32) from word 1 of `(j, t, Batch, 0)` (word 0 picks
//!   the row), ε_i from `(j, t, Batch, 1 + i / 4)` normals; x̃ = x + σ_l ε.
//! - SSM: v_i from `(j, t, ProposalNoise, i / 4)`: the normal, or for Rademacher projections
//!   +1 where the uniform is at least 0.5 and −1 below.
//!
//! Gradients (mean over the batch):
//! - DSM: ℓ = ½‖σ g − ε‖² with g = ∇ₓE(x̃); ∇θℓ = ∇θ(uᵀ∇ₓE(x̃)) with u = σ(σ g − ε) held
//!   fixed: an input-gradient pass for g, then a jet of order 1 along u (seed E').
//! - SSM: ℓ = −E'' + ½E'² along v: a jet of order 2 (seeds E' on E', −1 on E'').

use super::{Loss, TrainConfig, batch_row};
use crate::nn::NetView;
use crate::nn::jet::JetTape;
use crate::rng::{self, Stream};

/// A step's score-matching inputs: the points the loss is evaluated at, and per point the
/// direction data (DSM: ε and the residual's factor; SSM: the projection v).
pub struct ScoreBatch {
    pub points: Vec<f32>,
    pub directions: Vec<f32>,
    /// DSM: per point, the factor c of the residual c∇ₓE(x̃) − ε (σ, or 1 for a
    /// noise-conditional model: [`Loss::dsm_grad_factor`]); SSM: empty.
    pub grad_factors: Vec<f32>,
}

/// The noise level index of positive j at `step`.
pub fn dsm_level(seed: u64, step: u32, j: usize, levels: u32) -> u32 {
    let bits = rng::philox4x32_10([j as u32, step, Stream::Batch as u32, 0], rng::key(seed))[1];
    ((bits as u64 * levels as u64) >> 32) as u32
}

/// The positives of `step` with their draws (module docs).
pub fn batch(cfg: &TrainConfig, data: &[f32], rows: usize, step: u32) -> ScoreBatch {
    let (d, b) = (cfg.dim(), cfg.batch);
    let mut points = Vec::with_capacity(b * d);
    for j in 0..b {
        let row = batch_row(cfg.seed, step, j, rows);
        points.extend_from_slice(&data[row * d..(row + 1) * d]);
    }
    let mut directions = vec![0.0; b * d];
    let mut grad_factors = Vec::new();
    for (j, dir) in directions.chunks_exact_mut(d).enumerate() {
        let ju = j as u32;
        match cfg.loss {
            Loss::Dsm { sigma_max, sigma_min, levels, .. } => {
                let sigma = Loss::dsm_sigma(sigma_max, sigma_min, levels, dsm_level(cfg.seed, step, j, levels));
                rng::fill_normals_from(cfg.seed, ju, step, Stream::Batch, 1, dir);
                points[j * d..(j + 1) * d].iter_mut().zip(dir.iter()).for_each(|(x, e)| *x += sigma * e);
                grad_factors.push(cfg.loss.dsm_grad_factor(sigma));
            }
            Loss::Ssm { rademacher: false } => rng::fill_normals(cfg.seed, ju, step, Stream::ProposalNoise, dir),
            Loss::Ssm { rademacher: true } => {
                rng::fill_uniforms(cfg.seed, ju, step, Stream::ProposalNoise, dir);
                dir.iter_mut().for_each(|v| *v = if *v >= 0.5 { 1.0 } else { -1.0 });
            }
            _ => unreachable!("score matching losses only"),
        }
    }
    ScoreBatch { points, directions, grad_factors }
}

/// What a score-matching step measured, besides the gradient.
pub struct ScoreStep {
    /// Mean loss over the batch.
    pub loss: f32,
    /// Mean energy of the points the loss is evaluated at.
    pub energy: f32,
    /// dL/dθ, packed as [`crate::nn::NetworkInternals::pack_params`].
    pub grad: Vec<f32>,
}

/// Points per block of [`step_cpu`]: blocks run in parallel and their gradients are summed in
/// block order, so the result does not depend on the number of threads.
const BLOCK_ROWS: usize = 64;

/// The batch's mean loss and its parameter gradient on the CPU executor.
pub fn step_cpu(loss: Loss, net: &NetView, batch: &ScoreBatch) -> ScoreStep {
    use rayon::prelude::*;
    let d = net.input_dim();
    let n = batch.points.len() / d;
    let inv_n = 1.0 / n as f32;
    let blocks: Vec<(f32, f32, Vec<f32>)> = (0..n.div_ceil(BLOCK_ROWS))
        .into_par_iter()
        .map(|block| {
            let rows = block * BLOCK_ROWS..((block + 1) * BLOCK_ROWS).min(n);
            let values = rows.start * d..rows.end * d;
            let factors = batch.grad_factors.get(rows).unwrap_or(&[]);
            block_sums(loss, net, &batch.points[values.clone()], &batch.directions[values], factors, inv_n)
        })
        .collect();
    let mut grad = vec![0.0; net.param_count()];
    let (mut total, mut energy) = (0.0, 0.0);
    for (t, e, g) in blocks {
        total += t;
        energy += e;
        grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
    }
    ScoreStep { loss: total * inv_n, energy: energy * inv_n, grad }
}

/// One block's summed loss and energy and its share of the mean loss's gradient (`inv_n` = 1
/// over the whole batch's points); the block's rows of a [`ScoreBatch`].
fn block_sums(
    loss: Loss,
    net: &NetView,
    points: &[f32],
    directions: &[f32],
    grad_factors: &[f32],
    inv_n: f32,
) -> (f32, f32, Vec<f32>) {
    let d = net.input_dim();
    let n = points.len() / d;
    let mut grad = vec![0.0; net.param_count()];
    let mut jet = JetTape::default();
    let (mut total, mut energy) = (0.0, 0.0);
    match loss {
        Loss::Dsm { .. } => {
            // g = ∇ₓE(x̃), then u = c(c g − ε) / n (c = σ, or 1 noise-conditionally) and the jet along u.
            let mut tape = crate::nn::cpu::Tape::default();
            net.forward_batch(points, n, &mut tape);
            let (mut es, mut d_out) = (vec![0.0; n], Vec::new());
            net.head_batch(&tape, &mut es, &mut d_out);
            net.backward_batch(&mut tape, &d_out, None, true);
            let g = tape.input_grad();
            let mut u = vec![0.0; n * d];
            for (j, &e) in es.iter().enumerate() {
                let c = grad_factors[j];
                let mut sq = 0.0;
                for i in j * d..(j + 1) * d {
                    let r = c * g[i] - directions[i];
                    sq += r * r;
                    u[i] = c * r * inv_n;
                }
                total += 0.5 * sq;
                energy += e;
            }
            net.jet_forward(points, &u, 1, &mut jet);
            net.jet_backward(&jet, &vec![[0.0, 1.0, 0.0]; n], &mut grad);
        }
        Loss::Ssm { .. } => {
            net.jet_forward(points, directions, 2, &mut jet);
            let seeds: Vec<[f32; 3]> = jet
                .energies
                .iter()
                .map(|&[e, e1, e2]| {
                    total += 0.5 * e1 * e1 - e2;
                    energy += e;
                    [0.0, e1 * inv_n, -inv_n]
                })
                .collect();
            net.jet_backward(&jet, &seeds, &mut grad);
        }
        _ => unreachable!("score matching losses only"),
    }
    (total, energy, grad)
}

#[cfg(any(test, feature = "internals"))]
/// The batch's mean loss by the per-point definitions in any precision (f64 for finite
/// differences): DSM from [`NetView::energy_grad_ref`], SSM's vᵀ∇²E v by central differences
/// of vᵀ∇E along v with step `h`. The reference the jets are tested against.
pub fn loss_ref(loss: Loss, net: &NetView, batch: &ScoreBatch, h: f64) -> f64 {
    let d = net.input_dim();
    let n = batch.points.len() / d;
    let grad_at = |x: &[f64]| {
        let mut g = vec![0.0; d];
        net.energy_grad_ref(x, &mut g);
        g
    };
    let mut total = 0.0;
    for j in 0..n {
        let x: Vec<f64> = batch.points[j * d..(j + 1) * d].iter().map(|&v| v as f64).collect();
        let dir: Vec<f64> = batch.directions[j * d..(j + 1) * d].iter().map(|&v| v as f64).collect();
        total += match loss {
            Loss::Dsm { .. } => {
                let c = batch.grad_factors[j] as f64;
                let g = grad_at(&x);
                0.5 * g.iter().zip(&dir).map(|(g, e)| (c * g - e).powi(2)).sum::<f64>()
            }
            _ => {
                let along = |t: f64| {
                    let p: Vec<f64> = x.iter().zip(&dir).map(|(x, v)| x + t * v).collect();
                    grad_at(&p).iter().zip(&dir).map(|(g, v)| g * v).sum::<f64>()
                };
                let e1 = along(0.0);
                0.5 * e1 * e1 - (along(h) - along(-h)) / (2.0 * h)
            }
        };
    }
    total / n as f64
}
