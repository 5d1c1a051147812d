//! Latent-variable EBMs: an energy E(x, z) of the data x (D values) and a continuous latent z
//! (L values), one network taking [x, z]; an encoder q(z | x) = N(μ(x), diag e^ℓ(x)), a
//! network of x with 2L outputs [μ, ℓ] (ℓ the log-variance), for amortised inference. The
//! encoder's outputs pass through [`Posterior::of`] (a bounded mean, a log-variance ≤ 0). The
//! model of the data is the marginal p(x) ∝ ∫ exp(−E(x, z)) dz, whose energy is
//! F(x) = −log ∫ exp(−E(x, z)) dz.
//!
//! Training step t (CPU executor; the module docs of [`crate::train`] for the rest): positive j
//! is (x_j, z_j), x_j a data row, z_j = μ(x_j) + e^{ℓ(x_j)/2} ε_j with ε_j the normals of Philox
//! `(j, t, Latent, i / 4)`; negatives come from the joint replay buffer over (x, z), refreshed
//! by Langevin on both. The energy takes its step of the loss (cd, softplus, hinge): the
//! encoder's samples stand in for p(z | x) in the positive phase. The encoder takes a step on
//! L_q = (1/B) Σ_j [E(x_j, z_j) − ½ Σ_i ℓ_i(x_j)], which is KL(q(z|x) ‖ p(z|x)) up to terms
//! free of q, reparameterised: ∂/∂μ_i = ∂E/∂z_i, ∂/∂ℓ_i = ∂E/∂z_i · ε_i e^{ℓ_i/2} / 2 − ½.
//!
//! F(x) by importance sampling with q as the proposal ([`marginal_energy`]):
//! F̂ = −log (1/S) Σ_s w_s, w_s = exp(−E(x, z_s)) / r(z_s | x), z_s ~ r(· | x), where r is the
//! encoder's q mixed with a uniform draw in the latent box ([`DEFENSIVE`]) (draw s of point k:
//! Philox `(k, s, Latent, ·)`; w_s = 0 outside the latent box, where the model has no mass: its
//! chains and positives are clamped to it), with the delta method's standard error
//! sd(w) / (√S mean(w)). F̂ is biased upwards for finite S (Jensen): a poor encoder overstates
//! the energy, never understates it on average.

use super::TrainConfig;
use super::tape::Tape;
use crate::nn::{Architecture, Network, Shape};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// `--latent L`, `--encoder SPEC`, `--encoder-lr`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentConfig {
    /// The latent width L.
    pub dim: usize,
    /// The encoder in the network text form: the data's shape, then layers ending in 2L outputs.
    pub encoder: String,
    pub lr: f32,
}

/// Where the latent's box ends: z lives in [−LATENT_BOX, LATENT_BOX] for the replay buffer's
/// restarts and the Langevin clamp (a unit-scale latent stays well inside).
pub const LATENT_BOX: f32 = 4.0;

impl LatentConfig {
    /// The encoder's architecture; it must take the data's `data_dim` values and give 2L.
    pub fn encoder_architecture(&self, data_dim: usize) -> Result<Architecture> {
        let arch = Architecture::parse(&self.encoder)
            .map_err(|e| Error::invalid("encoder", format!("{:?}: {e}", self.encoder)))?;
        let shapes = arch.shapes()?;
        if arch.input.len() != data_dim {
            return Err(Error::invalid(
                "encoder",
                format!("{:?} takes {} inputs; the data has {data_dim} columns", self.encoder, arch.input.len()),
            ));
        }
        let out = shapes.last().map_or(0, Shape::len);
        if out != 2 * self.dim {
            return Err(Error::invalid(
                "encoder",
                format!(
                    "{:?} gives {out} outputs; for --latent {} it needs {} (the mean and the log-variance of each latent)",
                    self.encoder,
                    self.dim,
                    2 * self.dim
                ),
            ));
        }
        Ok(arch)
    }

    /// The latent width, the encoder and its learning rate suit the run.
    pub fn validate(&self, config: &TrainConfig) -> Result<()> {
        if self.dim == 0 || self.dim >= config.dim() {
            return Err(Error::invalid(
                "latent",
                format!(
                    "{} latent dimensions: need 1 or more, and the energy's input must hold the data too",
                    self.dim
                ),
            ));
        }
        if !matches!(config.loss, super::Loss::Cd | super::Loss::Softplus | super::Loss::Hinge { .. }) {
            return Err(Error::invalid(
                "latent",
                format!("a latent EBM trains by cd, softplus or hinge on joint chains; not by {}", config.loss),
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid(
                "encoder learning rate",
                format!("must be positive and finite, got {}", self.lr),
            ));
        }
        self.encoder_architecture(config.data_dim()).map(|_| ())
    }
}

/// The encoder's draws for `xs` ([n, D]): z = μ + e^{ℓ/2} ε for the given ε ([n, L]), the
/// encoder's tape (for its gradient) and its outputs split as (μ, ℓ).
pub struct Draws {
    pub z: Vec<f32>,
    pub eps: Vec<f32>,
    pub tape: Tape,
}

impl Draws {
    pub fn new(encoder: &Network, xs: &[f32], eps: Vec<f32>) -> Self {
        let tape = Tape::record(encoder, xs);
        let l = encoder.outputs() / 2;
        let z = tape
            .outputs()
            .chunks_exact(2 * l)
            .zip(eps.chunks_exact(l))
            .flat_map(|(out, e)| {
                (0..l).map(move |i| {
                    let p = Posterior::of(out[i], out[l + i]);
                    (p.mu + (0.5 * p.ell).exp() * e[i]).clamp(-LATENT_BOX, LATENT_BOX)
                })
            })
            .collect();
        Self { z, eps, tape }
    }

    /// The normals ε of batch entries `rows` at step `step`, [rows, l].
    pub fn normals(seed: u64, step: u32, rows: std::ops::Range<usize>, l: usize) -> Vec<f32> {
        rows.flat_map(|j| (0..l).map(move |i| rng::normal4(seed, j as u32, step, Stream::Latent, i as u32 / 4)[i % 4]))
            .collect()
    }

    /// The joint points [x, z] ([n, D + L]).
    pub fn joint(&self, xs: &[f32]) -> Vec<f32> {
        let l = self.eps.len() / self.tape.n;
        let d = xs.len() / self.tape.n;
        xs.chunks_exact(d).zip(self.z.chunks_exact(l)).flat_map(|(x, z)| x.iter().chain(z).copied()).collect()
    }

    /// L_q's share of these rows (`batch` the whole batch's size) and the encoder's parameter
    /// gradient, from the energies and dE/d[x, z] of the joint points.
    pub fn encoder_grad(
        &mut self,
        encoder: &Network,
        energies: &[f32],
        grads: &[f32],
        batch: usize,
    ) -> (f32, Vec<f32>) {
        let (n, l) = (self.tape.n, self.eps.len() / self.tape.n);
        let width = grads.len() / n;
        let inv_b = 1.0 / batch as f32;
        let outputs = self.tape.outputs().to_vec();
        let mut d_out = vec![0.0; n * 2 * l];
        let mut loss = 0.0;
        for j in 0..n {
            let (out, dz) = (&outputs[j * 2 * l..(j + 1) * 2 * l], &grads[j * width + width - l..(j + 1) * width]);
            loss += energies[j];
            for i in 0..l {
                let p = Posterior::of(out[i], out[l + i]);
                loss -= 0.5 * p.ell;
                d_out[j * 2 * l + i] = dz[i] * p.d_mu * inv_b;
                let d_ell = dz[i] * self.eps[j * l + i] * 0.5 * (0.5 * p.ell).exp() - 0.5;
                d_out[j * 2 * l + l + i] = d_ell * p.d_ell * inv_b;
            }
        }
        let zeros = vec![0.0; n];
        (loss * inv_b, self.tape.param_grad(encoder, &zeros, Some(&d_out)))
    }
}

/// The share of a marginal estimate's draws taken uniformly in the latent box instead of from
/// the encoder (defensive importance sampling, Hesterberg 1995; at least one draw): the weights
/// stay bounded where the encoder is poor, as far from the data, at a cost of at most
/// 1/(1 - a) in variance.
pub const DEFENSIVE: f32 = 0.1;

/// Importance-sampling draws per point of the marginal energy in `ebm eval` and `ebm score`.
pub const MARGINAL_DRAWS: usize = 64;

/// The Philox draw index where a marginal estimate's uniform coordinates start.
const UNIFORM_DRAWS: u32 = 1 << 20;

/// One latent's q(z_i | x) from the encoder's two outputs (f_μ, f_ℓ): μ = M tanh(f_μ / M),
/// M = LATENT_BOX − 1, and ℓ = −softplus(−f_ℓ) ≤ 0, so that q stays on the latent box (|μ| < M,
/// σ ≤ 1); with the derivatives dμ/df_μ and dℓ/df_ℓ.
#[derive(Clone, Copy, Debug)]
pub struct Posterior {
    pub mu: f32,
    pub ell: f32,
    pub d_mu: f32,
    pub d_ell: f32,
}

impl Posterior {
    pub fn of(f_mu: f32, f_ell: f32) -> Self {
        let m = LATENT_BOX - 1.0;
        let t = (f_mu / m).tanh();
        // softplus(-f) computed stably; its derivative is sigmoid(-f).
        let softplus = (-f_ell).max(0.0) + (-f_ell.abs()).exp().ln_1p();
        Self { mu: m * t, ell: -softplus, d_mu: 1.0 - t * t, d_ell: 1.0 / (1.0 + f_ell.exp()) }
    }
}

/// An estimate and its standard error.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub se: f64,
}

/// F(x) = −log ∫ exp(−E(x, z)) dz of each point of `xs` ([n, D]) by importance sampling with
/// the encoder's q(z | x), `samples` draws each (see the module docs); `joint_energies` gives
/// E of joint points [m, D + L].
pub fn marginal_energy(
    joint_energies: &dyn Fn(&[f32]) -> Vec<f32>,
    encoder: &Network,
    xs: &[f32],
    samples: usize,
    seed: u64,
) -> Result<Vec<Estimate>> {
    let d = encoder.input_dim();
    let l = encoder.outputs() / 2;
    if samples == 0 || xs.is_empty() || !xs.len().is_multiple_of(d) {
        return Err(Error::invalid("marginal energy", format!("need points of {d} values and at least one sample")));
    }
    let n = xs.len() / d;
    let out = Tape::record(encoder, xs).outputs().to_vec();
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let mut estimates = Vec::with_capacity(n);
    // A fixed share of the draws uniform (at least one), weighed by the mixture's density (the
    // deterministic mixture of Owen & Zhou 2000).
    let uniform_draws = ((DEFENSIVE * samples as f32).round() as usize).max(1);
    let share = uniform_draws as f64 / samples as f64;
    // Points in chunks: one batched call of the joint energy per chunk of CHUNK x S points.
    const CHUNK: usize = 256;
    for first in (0..n).step_by(CHUNK) {
        let last = (first + CHUNK).min(n);
        let mut points = Vec::with_capacity((last - first) * samples * (d + l));
        let mut log_q = Vec::with_capacity((last - first) * samples);
        for k in first..last {
            let q: Vec<Posterior> = (0..l).map(|i| Posterior::of(out[k * 2 * l + i], out[k * 2 * l + l + i])).collect();
            for s in 0..samples {
                points.extend_from_slice(&xs[k * d..(k + 1) * d]);
                let (k32, s32) = (k as u32, s as u32);
                let uniform = s < uniform_draws;
                let mut lq = 0.0f64;
                for i in 0..l {
                    let z = match uniform {
                        true => {
                            LATENT_BOX
                                * (2.0
                                    * rng::uniform4(seed, k32, s32, Stream::Latent, UNIFORM_DRAWS + i as u32 / 4)
                                        [i % 4]
                                    - 1.0)
                        }
                        false => {
                            q[i].mu
                                + (0.5 * q[i].ell).exp()
                                    * rng::normal4(seed, k32, s32, Stream::Latent, i as u32 / 4)[i % 4]
                        }
                    };
                    let e = (z - q[i].mu) as f64 * (-0.5 * q[i].ell as f64).exp();
                    lq += -0.5 * e * e - 0.5 * q[i].ell as f64 - half_log_2pi;
                    points.push(z);
                }
                // The mixture's density: (1 - a) q(z | x) + a / (2 LATENT_BOX)^L.
                let log_uniform = -(l as f64) * (2.0 * LATENT_BOX as f64).ln();
                let (a, b) = (lq + (1.0 - share).ln(), log_uniform + share.ln());
                let top = a.max(b);
                log_q.push(top + ((a - top).exp() + (b - top).exp()).ln());
            }
        }
        let energies = joint_energies(&points);
        for (k, (es, lqs)) in (first..last).zip(energies.chunks_exact(samples).zip(log_q.chunks_exact(samples))) {
            // The model lives on the latent box (its chains are clamped there): draws outside
            // it weigh nothing.
            let zs = points[(k - first) * samples * (d + l)..].chunks_exact(d + l).take(samples);
            let log_w: Vec<f64> = es
                .iter()
                .zip(lqs)
                .zip(zs)
                .map(|((&e, lq), p)| match p[d..].iter().all(|z| z.abs() <= LATENT_BOX) {
                    true => -(e as f64) - lq,
                    false => f64::NEG_INFINITY,
                })
                .collect();
            if let Some(s) = log_w.iter().position(|v| v.is_nan() || *v == f64::INFINITY) {
                return Err(Error::invalid(
                    "marginal energy",
                    format!("point {k}: the importance weight of draw {s} is not finite (energy {})", es[s]),
                ));
            }
            let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if max == f64::NEG_INFINITY {
                return Err(Error::invalid(
                    "marginal energy",
                    format!(
                        "point {k}: none of the {samples} draws of z fell inside the latent box [-{LATENT_BOX}, {LATENT_BOX}] \
                         the model lives on (take more samples)"
                    ),
                ));
            }
            let w: Vec<f64> = log_w.iter().map(|v| (v - max).exp()).collect();
            let mean = w.iter().sum::<f64>() / samples as f64;
            let var = w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (samples as f64 - 1.0).max(1.0);
            estimates.push(Estimate { value: -(max + mean.ln()), se: var.sqrt() / ((samples as f64).sqrt() * mean) });
        }
    }
    Ok(estimates)
}
