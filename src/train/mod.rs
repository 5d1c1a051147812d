//! Training network energies (any [`crate::nn`] network: MLPs, convolutions, several outputs): contrastive divergence with a persistent replay buffer (and its
//! softplus and hinge variants), noise-contrastive estimation, Adam / SGD with momentum and
//! global-norm clipping, on the GPU ([`gpu::GpuTrainer`]) or the CPU ([`cpu::CpuTrainer`]).
//!
//! # One training step t (both executors)
//! 1. Negatives, B of them. Contrastive losses: replay slots `(position + j) % capacity`,
//!    `position = t * B % capacity`; slot j is re-initialised uniformly in the box with
//!    probability `reset_prob` (Philox `(j, t, BufferReset, 0)` decides, draws `1 + i / 4` give
//!    the point), then K ULA steps `x <- clamp(x - h grad E(x) + s xi, box)` with
//!    xi from `(j, t, ProposalNoise, k * ceil(D / 4) + i / 4)`, written back to the slot.
//!    NCE: Gaussian noise `mean + std * xi`, xi from `(j, t, Batch, 1 + i / 4)`.
//! 2. Positives: data row `floor(u32 * rows / 2^32)` of Philox `(j, t, Batch, 0)` word 0
//!    (sampling with replacement).
//! 3. Energies of the 2B points, the loss and its derivative w_s = dL/dE(x_s) per point
//!    (see [`Loss`]), and dL/d(log Z) for NCE.
//! 4. The parameter gradient sum_s w_s dE(x_s)/dtheta, its global norm, clipping, the optimizer.
//!
//! With a side network ([`side`]) the step changes in one place each: cooperative learning's
//! generator proposes the negatives instead of the replay buffer ([`generator`]); a latent EBM's
//! positives are (x, z) with z from its encoder, and its chains are joint ([`latent`]). Either
//! network's gradient follows the energy's in a step's shares.
//!
//! So a run is a pure function of (seed, data, config): resuming from a checkpoint at step t
//! continues exactly where an uninterrupted run would be.

pub mod checkpoint;
pub mod contrastive;
pub mod cpu;
pub mod eval;
pub mod generator;
pub mod gpu;
pub mod latent;
pub mod layered;
mod loss;
mod model;
pub mod run;
pub mod score;
pub mod side;
pub mod side_gpu;
mod state;
pub mod submit;
pub mod tape;

pub use loss::Loss;
pub use model::ModelSpec;
pub use state::TrainState;

use crate::nn::Network;
use crate::rng::{self, Stream};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Optimizer {
    /// PyTorch's Adam: weight decay added to the gradient, bias-corrected moments.
    Adam { beta1: f32, beta2: f32, eps: f32 },
    /// PyTorch's SGD with momentum: buf = momentum buf + g; theta -= lr buf.
    Sgd { momentum: f32 },
}

impl Optimizer {
    /// As the kernels take it: (0 Adam or 1 SGD, beta1 or the momentum, beta2, eps).
    pub(crate) fn kernel_code(self) -> (u32, f32, f32, f32) {
        match self {
            Optimizer::Adam { beta1, beta2, eps } => (0, beta1, beta2, eps),
            Optimizer::Sgd { momentum } => (1, momentum, 0.0, 0.0),
        }
    }
}

/// Short-run Langevin dynamics (ULA) that refreshes the replay buffer's negatives.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Langevin {
    pub steps: u32,
    pub step_size: f32,
    /// Noise std as a multiple of sqrt(2 h) (1: exact ULA; < 1 is the usual "cold" EBM sampler).
    pub noise_scale: f32,
    /// Each gradient coordinate is clamped to [-grad_clamp, grad_clamp] before the step (0:
    /// off), as the UvA image recipe does.
    #[serde(default)]
    pub grad_clamp: f32,
}

impl Langevin {
    pub fn noise_std(&self) -> f32 {
        self.noise_scale * (2.0 * self.step_size).sqrt()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub loss: Loss,
    /// Weight of the energy regulariser alpha mean(E(x+)^2 + E(x-)^2).
    pub alpha: f32,
    pub optimizer: Optimizer,
    pub lr: f32,
    /// Linear learning-rate decay: from lr at step 0 to lr * final_lr_fraction at step
    /// decay_steps, constant after (decay_steps 0: no decay).
    pub decay_steps: u32,
    pub final_lr_fraction: f32,
    /// Exponential decay on top: the learning rate is multiplied by epoch_gamma after every
    /// steps_per_epoch steps (steps_per_epoch 0: off), as the UvA recipe's 0.97 per epoch.
    #[serde(default = "one")]
    pub epoch_gamma: f32,
    #[serde(default)]
    pub steps_per_epoch: u32,
    pub weight_decay: f32,
    /// Global-norm gradient clipping threshold (0: off).
    pub clip_norm: f32,
    pub batch: usize,
    pub langevin: Langevin,
    pub buffer_capacity: usize,
    pub reset_prob: f32,
    /// The box negatives live in (re-initialisation and clamping), per dimension.
    pub box_lo: Vec<f32>,
    pub box_hi: Vec<f32>,
    /// NCE's Gaussian noise distribution, per dimension.
    pub noise_mean: Vec<f32>,
    pub noise_std: Vec<f32>,
    pub seed: u64,
    /// How InfoNCE draws the two views of a point (unused by the other losses).
    #[serde(default)]
    pub augment: contrastive::Augment,
    /// InfoNCE with its second views given (`ebm train --pairs`): the training data holds 2N
    /// rows, the N first views then their N second views in the same order.
    #[serde(default)]
    pub paired: bool,
    /// Cooperative learning: a generator proposes the negatives instead of the replay buffer.
    #[serde(default)]
    pub generator: Option<generator::GeneratorConfig>,
    /// A latent-variable EBM: the energy takes [x, z], an encoder infers z.
    #[serde(default)]
    pub latent: Option<latent::LatentConfig>,
}

impl TrainConfig {
    /// Defaults for data `[rows, dim]`: the box is the data's range widened by 10% on each side,
    /// the NCE noise the data's mean and 1.25 times its std per dimension.
    pub fn for_data(loss: Loss, data: &[f32], dim: usize, seed: u64) -> Result<Self> {
        check_data(data, dim)?;
        let rows = data.len() / dim;
        let (mut lo, mut hi) = (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]);
        let (mut mean, mut sq) = (vec![0f64; dim], vec![0f64; dim]);
        for row in data.chunks_exact(dim) {
            for i in 0..dim {
                lo[i] = lo[i].min(row[i]);
                hi[i] = hi[i].max(row[i]);
                mean[i] += row[i] as f64;
                sq[i] += (row[i] as f64).powi(2);
            }
        }
        let mut noise_std = Vec::with_capacity(dim);
        for i in 0..dim {
            let pad = 0.1 * (hi[i] - lo[i]).max(1e-3);
            (lo[i], hi[i]) = (lo[i] - pad, hi[i] + pad);
            mean[i] /= rows as f64;
            let var = (sq[i] / rows as f64 - mean[i] * mean[i]).max(1e-6);
            noise_std.push((1.25 * var.sqrt()) as f32);
        }
        Ok(Self {
            loss,
            alpha: 0.01,
            optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
            lr: 5e-3,
            decay_steps: 0,
            final_lr_fraction: 1.0,
            epoch_gamma: 1.0,
            steps_per_epoch: 0,
            weight_decay: 0.0,
            clip_norm: 10.0,
            batch: 256,
            langevin: Langevin { steps: 20, step_size: 0.01, noise_scale: 1.0, grad_clamp: 0.0 },
            buffer_capacity: 8192,
            reset_prob: 0.05,
            box_lo: lo,
            box_hi: hi,
            noise_mean: mean.iter().map(|&m| m as f32).collect(),
            noise_std,
            seed,
            augment: contrastive::Augment::default(),
            paired: false,
            generator: None,
            latent: None,
        })
    }

    /// The energy's input width: the data's columns, and a latent EBM's latent ones after them.
    pub fn dim(&self) -> usize {
        self.box_lo.len()
    }

    /// The training rows of `data`, checked: a paired run's data holds every row's two views,
    /// so 2N rows of values are N training rows.
    pub fn data_rows(&self, data: &[f32]) -> Result<usize> {
        let rows = check_data(data, self.data_dim())?;
        match self.paired {
            false => Ok(rows),
            true if rows % 2 == 0 => Ok(rows / 2),
            true => Err(Error::invalid(
                "pairs",
                format!("{rows} rows do not split into first and second views of equal length"),
            )),
        }
    }

    /// The data's columns (`dim` less a latent EBM's latent width).
    pub fn data_dim(&self) -> usize {
        self.dim() - self.latent.as_ref().map_or(0, |l| l.dim.min(self.dim()))
    }

    /// The name of the side network this run trains beside the energy, if any (without parsing
    /// its architecture: [`TrainConfig::side_network`]).
    pub fn side_name(&self) -> Option<&'static str> {
        match (&self.generator, &self.latent) {
            (Some(_), _) => Some("generator"),
            (None, Some(_)) => Some("encoder"),
            (None, None) => None,
        }
    }

    /// The side network this run trains beside the energy, if any: its name and architecture.
    pub fn side_network(&self) -> Result<Option<(&'static str, crate::nn::Architecture)>> {
        match (&self.generator, &self.latent) {
            (None, None) => Ok(None),
            (Some(g), None) => Ok(Some(("generator", g.architecture(self.dim())?))),
            (None, Some(l)) => Ok(Some(("encoder", l.encoder_architecture(self.data_dim())?))),
            (Some(_), Some(_)) => Err(Error::invalid(
                "generator",
                "a latent EBM's negatives come from its own joint chains: --generator and --latent do not go together",
            )),
        }
    }

    /// The side network's learning rate (before the schedule).
    pub fn side_lr(&self) -> f32 {
        self.generator.as_ref().map(|g| g.lr).or(self.latent.as_ref().map(|l| l.lr)).unwrap_or(self.lr)
    }

    pub fn validate(&self, data_rows: usize) -> Result<()> {
        let positive = |what: &str, v: f32| -> Result<()> {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(what, format!("must be positive and finite, got {v}")))
            }
        };
        let non_negative = |what: &str, v: f32| -> Result<()> {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(what, format!("must be >= 0 and finite, got {v}")))
            }
        };
        positive("learning rate", self.lr)?;
        non_negative("alpha", self.alpha)?;
        if !(0.0..=1.0).contains(&self.final_lr_fraction) {
            return Err(Error::invalid(
                "final learning-rate fraction",
                format!("must be in [0, 1], got {}", self.final_lr_fraction),
            ));
        }
        non_negative("weight decay", self.weight_decay)?;
        if !(self.epoch_gamma > 0.0 && self.epoch_gamma <= 1.0) {
            return Err(Error::invalid("lr gamma per epoch", format!("must be in (0, 1], got {}", self.epoch_gamma)));
        }
        non_negative("clip norm", self.clip_norm)?;
        if self.batch == 0 || self.batch > 16384 {
            return Err(Error::invalid("batch", format!("must be in 1..=16384, got {}", self.batch)));
        }
        if self.batch > data_rows {
            return Err(Error::invalid(
                "batch",
                format!("{} is larger than the dataset ({data_rows} rows)", self.batch),
            ));
        }
        match self.optimizer {
            Optimizer::Adam { beta1, beta2, eps } => {
                if !(0.0..1.0).contains(&beta1) || !(0.0..1.0).contains(&beta2) {
                    return Err(Error::invalid("adam betas", format!("must be in [0, 1), got ({beta1}, {beta2})")));
                }
                positive("adam eps", eps)?;
            }
            Optimizer::Sgd { momentum } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(Error::invalid("momentum", format!("must be in [0, 1), got {momentum}")));
                }
            }
        }
        self.loss.check()?;
        if self.paired && !self.loss.uses_views() {
            return Err(Error::invalid(
                "pairs",
                format!("given second views are InfoNCE's pairs; the {} loss has none", self.loss),
            ));
        }
        if let Some(g) = &self.generator {
            if !self.loss.samples_negatives() {
                return Err(Error::invalid(
                    "generator",
                    format!(
                        "the {} loss samples no negatives for a generator to propose; use cd, softplus, hinge or jem",
                        self.loss
                    ),
                ));
            }
            g.validate(self.dim())?;
        }
        if let Some(l) = &self.latent {
            l.validate(self)?;
        }
        self.side_network()?;
        if self.loss.samples_negatives() {
            if self.langevin.steps == 0 || self.langevin.steps > 10_000 {
                return Err(Error::invalid(
                    "langevin steps",
                    format!("must be in 1..=10000, got {}", self.langevin.steps),
                ));
            }
            positive("langevin step size", self.langevin.step_size)?;
            non_negative("langevin gradient clamp", self.langevin.grad_clamp)?;
            non_negative("langevin noise scale", self.langevin.noise_scale)?;
        }
        if self.uses_replay_buffer() {
            if self.buffer_capacity < self.batch || self.buffer_capacity > 1 << 24 {
                return Err(Error::invalid(
                    "buffer capacity",
                    format!(
                        "must be at least the batch ({}) and at most 2^24, got {}",
                        self.batch, self.buffer_capacity
                    ),
                ));
            }
            if !(0.0..=1.0).contains(&self.reset_prob) {
                return Err(Error::invalid("reset probability", format!("must be in [0, 1], got {}", self.reset_prob)));
            }
        }
        let d = self.dim();
        if d == 0 || [&self.box_hi, &self.noise_mean, &self.noise_std].iter().any(|v| v.len() != d) {
            return Err(Error::invalid("train config", "box and noise vectors must all have the data's dimension"));
        }
        for i in 0..d {
            if !(self.box_lo[i].is_finite() && self.box_hi[i].is_finite() && self.box_lo[i] < self.box_hi[i]) {
                return Err(Error::invalid(
                    "box",
                    format!("dimension {i}: need finite lo < hi, got [{}, {}]", self.box_lo[i], self.box_hi[i]),
                ));
            }
            positive("noise std", self.noise_std[i])?;
        }
        Ok(())
    }

    /// Whether only the GPU's layer-kernel trainer runs this configuration, whatever the network:
    /// score matching (its jets), a side network (its own pass) and InfoNCE (a loss of the whole
    /// batch's features), none of which the MLP trainer has.
    pub fn needs_layer_kernels(&self) -> bool {
        self.loss.is_score_matching() || self.side_name().is_some() || self.loss.uses_views()
    }

    /// Whether negatives start from the replay buffer: a loss that samples negatives, without
    /// a generator proposing them.
    pub fn uses_replay_buffer(&self) -> bool {
        self.loss.samples_negatives() && self.generator.is_none()
    }

    /// Replay slots the negatives of step `step` start at.
    pub fn replay_position(&self, step: u32) -> usize {
        if self.uses_replay_buffer() {
            (step as u64 * self.batch as u64 % self.buffer_capacity as u64) as usize
        } else {
            0
        }
    }

    /// Replay entries kept (0 for NCE, score matching, InfoNCE and a generator's negatives).
    pub fn replay_len(&self) -> usize {
        if self.uses_replay_buffer() { self.buffer_capacity * self.dim() } else { 0 }
    }
}

/// Finite data of `dim` columns with at least one row.
pub fn check_data(data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 || data.is_empty() || !data.len().is_multiple_of(dim) {
        return Err(Error::invalid("training data", format!("{} values do not form rows of {dim}", data.len())));
    }
    if let Some(k) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid("training data", format!("row {} has a non-finite value ({})", k / dim, data[k])));
    }
    Ok(data.len() / dim)
}

/// What one step measured.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct StepMetrics {
    /// Steps done after this one (1 for the first).
    pub step: u32,
    pub loss: f32,
    pub e_pos: f32,
    pub e_neg: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    pub log_z: f32,
    /// Fraction of this step's negatives re-initialised from noise.
    pub reset_fraction: f32,
    /// Mean Euclidean norm of this step's negatives.
    pub neg_radius: f32,
    /// JEM: the mean cross-entropy of the positives' labels (also in `loss`); 0 otherwise.
    pub cross_entropy: f32,
    /// The side network's loss: the generator's regression L_g ([`generator`]), the encoder's
    /// L_q ([`latent`]); 0 without one.
    pub side_loss: f32,
}

/// Floats per metrics row on the GPU: the [`StepMetrics`] fields after `step`
/// (`METRIC_FLOATS` of shaders/common/train_step.wgsl).
pub const METRIC_FLOATS: usize = 9;

impl StepMetrics {
    pub fn from_row(step: u32, r: &[f32]) -> Self {
        Self {
            step,
            loss: r[0],
            e_pos: r[1],
            e_neg: r[2],
            grad_norm: r[3],
            log_z: r[4],
            reset_fraction: r[5],
            neg_radius: r[6],
            cross_entropy: r[7],
            side_loss: r[8],
        }
    }

    pub fn gap(&self) -> f32 {
        self.e_neg - self.e_pos
    }

    pub fn is_finite(&self) -> bool {
        [self.loss, self.e_pos, self.e_neg, self.grad_norm, self.log_z, self.neg_radius].iter().all(|v| v.is_finite())
    }
}

/// A training executor (GPU or CPU).
pub trait Trainer {
    /// Runs `steps` training steps and returns what each measured.
    fn run(&mut self, steps: u32) -> Result<Vec<StepMetrics>>;
    /// Parameters, optimizer state, replay buffer and step (a readback on the GPU).
    fn state(&mut self) -> Result<TrainState>;
    fn executor(&self) -> String;
}

fn one() -> f32 {
    1.0
}

/// Per-step scalars both executors derive alike from the config and the step.
#[derive(Clone, Copy, Debug)]
pub struct StepScalars {
    pub lr: f32,
    /// Adam's bias corrections 1 - beta^t for t = step + 1 (computed in f64).
    pub bias1: f32,
    pub bias2: f32,
}

impl StepScalars {
    pub fn new(config: &TrainConfig, step: u32, lr_scale: f32) -> Self {
        let t = step as f64 + 1.0;
        let (bias1, bias2) = match config.optimizer {
            Optimizer::Adam { beta1, beta2, .. } => {
                ((1.0 - (beta1 as f64).powf(t)) as f32, (1.0 - (beta2 as f64).powf(t)) as f32)
            }
            Optimizer::Sgd { .. } => (1.0, 1.0),
        };
        let progress = if config.decay_steps == 0 { 0.0 } else { (step as f64 / config.decay_steps as f64).min(1.0) };
        let mut decay = 1.0 - (1.0 - config.final_lr_fraction as f64) * progress;
        if let Some(epochs) = step.checked_div(config.steps_per_epoch) {
            decay *= (config.epoch_gamma as f64).powi(epochs as i32);
        }
        Self { lr: (config.lr as f64 * decay) as f32 * lr_scale, bias1, bias2 }
    }
}

/// Clips `grad` to the global norm `clip_norm` (0: off), adds weight decay to the first
/// `decayed` parameters' gradients and applies `optimizer`.
#[allow(clippy::too_many_arguments)]
pub fn apply_optimizer(
    optimizer: Optimizer,
    clip_norm: f32,
    weight_decay: f32,
    decayed: usize,
    s: StepScalars,
    params: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
) {
    let norm = grad.iter().map(|g| g * g).sum::<f32>().sqrt();
    let scale = if clip_norm > 0.0 && norm > clip_norm { clip_norm / norm } else { 1.0 };
    for q in 0..params.len() {
        let mut g = grad[q] * scale;
        if q < decayed {
            g += weight_decay * params[q];
        }
        match optimizer {
            Optimizer::Adam { beta1, beta2, eps } => {
                m[q] = beta1 * m[q] + (1.0 - beta1) * g;
                v[q] = beta2 * v[q] + (1.0 - beta2) * g * g;
                params[q] -= s.lr * (m[q] / s.bias1) / ((v[q] / s.bias2).sqrt() + eps);
            }
            Optimizer::Sgd { momentum } => {
                m[q] = momentum * m[q] + g;
                params[q] -= s.lr * m[q];
            }
        }
    }
}

/// The loss, Langevin and optimizer settings of one step, the tail both GPU trainers' uniform
/// structs share (`TrainParams` in shaders/train/train.wgsl, `TrainLayeredParams` in
/// shaders/train/train_layered.wgsl, field for field).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StepSettings {
    reset_prob: f32,
    step_size: f32,
    noise_std: f32,
    alpha: f32,
    margin: f32,
    lr: f32,
    bias1: f32,
    bias2: f32,
    /// Adam's beta1, or SGD's momentum.
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    clip_norm: f32,
    grad_clamp: f32,
}

impl StepSettings {
    /// The settings of step `step` and the optimizer's code (0 Adam, 1 SGD).
    pub(crate) fn new(c: &TrainConfig, step: u32, lr_scale: f32) -> (Self, u32) {
        let s = StepScalars::new(c, step, lr_scale);
        let (optimizer, beta1, beta2, eps) = c.optimizer.kernel_code();
        let settings = Self {
            reset_prob: c.reset_prob,
            step_size: c.langevin.step_size,
            noise_std: c.langevin.noise_std(),
            alpha: c.alpha,
            margin: if let Loss::Hinge { margin } = c.loss { margin } else { 0.0 },
            lr: s.lr,
            bias1: s.bias1,
            bias2: s.bias2,
            beta1,
            beta2,
            eps,
            weight_decay: c.weight_decay,
            clip_norm: c.clip_norm,
            grad_clamp: c.langevin.grad_clamp,
        };
        (settings, optimizer)
    }
}

/// The data row positive j of step `step` uses.
pub fn batch_row(seed: u64, step: u32, j: usize, rows: usize) -> usize {
    let bits = rng::philox4x32_10([j as u32, step, Stream::Batch as u32, 0], rng::key(seed))[0];
    ((bits as u64 * rows as u64) >> 32) as usize
}

/// dL/dE for a (positive, negative) pair, and the pair's loss and dL/d(log Z), before the 1/B
/// of the mean. `log_q` are NCE's noise log densities of the pair (ignored otherwise).
pub fn pair_weights(
    config: &TrainConfig,
    e_pos: f32,
    e_neg: f32,
    log_z: f32,
    log_q: (f32, f32),
) -> (f32, f32, f32, f32) {
    let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
    let softplus = |z: f32| z.max(0.0) + (1.0 + (-z.abs()).exp()).ln();
    let a = config.alpha;
    let reg = a * (e_pos * e_pos + e_neg * e_neg);
    let (rp, rn) = (2.0 * a * e_pos, 2.0 * a * e_neg);
    match config.loss {
        Loss::Cd | Loss::Jem => (1.0 + rp, -1.0 + rn, e_pos - e_neg + reg, 0.0),
        Loss::Softplus => {
            let z = e_pos - e_neg;
            let s = sigmoid(z);
            (s + rp, -s + rn, softplus(z) + reg, 0.0)
        }
        Loss::Hinge { margin } => {
            let z = margin + e_pos - e_neg;
            let on = if z > 0.0 { 1.0 } else { 0.0 };
            (on + rp, -on + rn, z.max(0.0) + reg, 0.0)
        }
        Loss::Nce => {
            let g_pos = -e_pos - log_z - log_q.0;
            let g_neg = -e_neg - log_z - log_q.1;
            let (sp, sn) = (sigmoid(-g_pos), sigmoid(g_neg));
            (sp, -sn, softplus(-g_pos) + softplus(g_neg), sp - sn)
        }
        Loss::Dsm { .. } | Loss::Ssm { .. } => unreachable!("score matching has no pairs (train::score)"),
        Loss::InfoNce { .. } => unreachable!("infonce weighs the whole batch at once (train::contrastive)"),
    }
}

/// log N(x; mean, diag std^2), NCE's noise density.
pub fn noise_log_density(config: &TrainConfig, x: &[f32]) -> f32 {
    const HALF_LOG_TWO_PI: f32 = 0.918_938_5;
    let mut acc = 0.0f32;
    for i in 0..x.len() {
        let z = (x[i] - config.noise_mean[i]) / config.noise_std[i];
        acc += -0.5 * z * z - config.noise_std[i].ln() - HALF_LOG_TWO_PI;
    }
    acc
}

/// JEM's classifier term for one labelled point with logits `f`: its cross-entropy
/// logsumexp f - f[label], and (written to `grad`) d/df = softmax(f) - onehot(label).
pub fn cross_entropy(f: &[f32], label: usize, grad: &mut [f32]) -> f32 {
    let m = f.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let s: f32 = f.iter().map(|&v| (v - m).exp()).sum();
    for (y, (g, &v)) in grad.iter_mut().zip(f).enumerate() {
        *g = (v - m).exp() / s - if y == label { 1.0 } else { 0.0 };
    }
    m + s.ln() - f[label]
}

/// Labels for JEM: one per data row, each below the network's output count.
pub fn check_labels(labels: &[u32], rows: usize, classes: usize) -> Result<()> {
    if labels.len() != rows {
        return Err(Error::invalid("labels", format!("{} labels for {rows} data rows", labels.len())));
    }
    if let Some(i) = labels.iter().position(|&l| l as usize >= classes) {
        return Err(Error::invalid(
            "labels",
            format!("row {i} has label {} but the network has {classes} outputs", labels[i]),
        ));
    }
    Ok(())
}

/// JEM's requirements on the network: several outputs and the logsumexp head.
pub fn check_jem_network(net: &Network) -> Result<()> {
    if net.outputs < 2 || net.head != crate::nn::Head::LogSumExp {
        return Err(Error::invalid(
            "loss jem",
            format!(
                "needs a classifier network with K > 1 outputs and head:lse; this one has {} output(s)",
                net.outputs
            ),
        ));
    }
    Ok(())
}
