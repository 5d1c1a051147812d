//! The CPU executor of a training step (module docs of [`crate::train`]); the twin of
//! `shaders/train.wgsl` with the generated `train_net` module (MLPs) and of `shaders/train_layered.wgsl`
//! around the layer kernels (other networks). Langevin negatives and the tape run
//! as GEMMs over blocks of points, blocks in parallel (rayon).

use super::tape::Tape;
use super::{
    Loss, Optimizer, StepMetrics, StepScalars, TrainConfig, TrainState, Trainer, batch_row, cross_entropy,
    noise_log_density, pair_weights,
};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use rayon::prelude::*;

/// Fewest points per parallel task of the Langevin refresh (larger blocks make larger GEMMs).
const MIN_ROWS_PER_TASK: usize = 32;

pub struct CpuTrainer {
    config: TrainConfig,
    state: TrainState,
    data: Vec<f32>,
    rows: usize,
    /// One class per data row (JEM).
    labels: Vec<u32>,
}

impl CpuTrainer {
    pub fn new(config: &TrainConfig, state: TrainState, data: &[f32]) -> Result<Self> {
        Self::with_labels(config, state, data, &[])
    }

    /// A trainer whose data rows carry class labels (needed by, and only used by, JEM).
    pub fn with_labels(config: &TrainConfig, state: TrainState, data: &[f32], labels: &[u32]) -> Result<Self> {
        let rows = super::check_data(data, config.dim())?;
        config.validate(rows)?;
        state.validate(config)?;
        if config.loss == Loss::Jem {
            super::check_jem_network(&state.net)?;
            super::check_labels(labels, rows, state.net.outputs)?;
        }
        Ok(Self { config: config.clone(), state, data: data.to_vec(), rows, labels: labels.to_vec() })
    }

    /// Step 1: the B negatives (and each one's reset flag).
    fn negatives(&mut self, step: u32) -> (Vec<f32>, Vec<f32>) {
        let cfg = &self.config;
        let (d, b) = (cfg.dim(), cfg.batch);
        if !cfg.loss.uses_replay() {
            let mut neg = vec![0.0; b * d];
            for (j, row) in neg.chunks_exact_mut(d).enumerate() {
                for (i, x) in row.iter_mut().enumerate() {
                    let xi = rng::normal4(cfg.seed, j as u32, step, Stream::Batch, 1 + i as u32 / 4)[i % 4];
                    *x = cfg.noise_mean[i] + cfg.noise_std[i] * xi;
                }
            }
            return (neg, vec![0.0; b]);
        }
        let cap = cfg.buffer_capacity;
        let position = cfg.replay_position(step);
        let mut neg = Vec::with_capacity(b * d);
        for j in 0..b {
            let slot = (position + j) % cap;
            neg.extend_from_slice(&self.state.replay[slot * d..(slot + 1) * d]);
        }
        let mut flags = vec![0.0; b];
        for (j, (row, flag)) in neg.chunks_exact_mut(d).zip(flags.iter_mut()).enumerate() {
            if rng::uniform4(cfg.seed, j as u32, step, Stream::BufferReset, 0)[0] < cfg.reset_prob {
                *flag = 1.0;
                for (i, x) in row.iter_mut().enumerate() {
                    let u = rng::uniform4(cfg.seed, j as u32, step, Stream::BufferReset, 1 + i as u32 / 4)[i % 4];
                    *x = cfg.box_lo[i] + (cfg.box_hi[i] - cfg.box_lo[i]) * u;
                }
            }
        }
        let net = &self.state.net;
        let lv = cfg.langevin;
        let noise_std = lv.noise_std();
        let draws = d.div_ceil(4) as u32;
        // One block per thread: the largest GEMMs that still keep every thread busy.
        let rows_per_task = b.div_ceil(rayon::current_num_threads()).max(MIN_ROWS_PER_TASK);
        neg.par_chunks_mut(rows_per_task * d).enumerate().for_each(|(task, block)| {
            let n = block.len() / d;
            let (mut g, mut e) = (vec![0.0; block.len()], vec![0.0; n]);
            for k in 0..lv.steps {
                g.fill(0.0);
                net.add_energy_grad_batch(block, &mut g, &mut e, 1.0);
                for (r, (x, g)) in block.chunks_exact_mut(d).zip(g.chunks_exact(d)).enumerate() {
                    let j = (task * rows_per_task + r) as u32;
                    for i in 0..d {
                        let xi =
                            rng::normal4(cfg.seed, j, step, Stream::ProposalNoise, k * draws + i as u32 / 4)[i % 4];
                        x[i] = (x[i] - lv.step_size * lv.clamp_grad(g[i]) + noise_std * xi).clamp(cfg.box_lo[i], cfg.box_hi[i]);
                    }
                }
            }
        });
        for j in 0..b {
            let slot = (position + j) % cap;
            self.state.replay[slot * d..(slot + 1) * d].copy_from_slice(&neg[j * d..(j + 1) * d]);
        }
        (neg, flags)
    }

    /// A score-matching step ([`super::score`]): no negatives, loss and gradient from the jets.
    fn score_matching_step(&mut self) -> Result<StepMetrics> {
        let cfg = &self.config;
        let step = self.state.step;
        let batch = super::score::batch(cfg, &self.data, self.rows, step);
        let result = super::score::step_cpu(cfg.loss, &self.state.net.view(), &batch);
        let mut grad = result.grad;
        grad.push(0.0); // log Z is NCE's alone
        let metrics = StepMetrics {
            step: step + 1,
            loss: result.loss,
            e_pos: result.energy,
            grad_norm: grad.iter().map(|g| g * g).sum::<f32>().sqrt(),
            log_z: self.state.log_z,
            ..StepMetrics::default()
        };
        self.apply(&grad)?;
        Ok(metrics)
    }

    /// The optimizer step on `grad` (packed parameters then log Z); advances the step counter.
    fn apply(&mut self, grad: &[f32]) -> Result<()> {
        let cfg = &self.config;
        let step = self.state.step;
        let mut params = self.state.params();
        optimizer_step(
            cfg,
            StepScalars::new(cfg, step, self.state.lr_scale),
            &mut params,
            &mut self.state.m,
            &mut self.state.v,
            grad,
        );
        self.state.set_params(&params)?;
        self.state.step += 1;
        Ok(())
    }

    fn step(&mut self) -> Result<StepMetrics> {
        if self.config.loss.is_score_matching() {
            return self.score_matching_step();
        }
        let step = self.state.step;
        let (d, b) = (self.config.dim(), self.config.batch);
        let (neg, flags) = self.negatives(step);
        let cfg = &self.config;
        let mut points = Vec::with_capacity(2 * b * d);
        let rows: Vec<usize> = (0..b).map(|j| batch_row(cfg.seed, step, j, self.rows)).collect();
        for &row in &rows {
            points.extend_from_slice(&self.data[row * d..(row + 1) * d]);
        }
        points.extend_from_slice(&neg);
        let mut tape = Tape::record(&self.state.net, &points);
        // Loss, per-point weights dL/dE and dL/d(log Z).
        let inv_b = 1.0 / b as f32;
        let mut weights = vec![0.0; 2 * b];
        let (mut loss, mut e_pos, mut e_neg, mut d_log_z, mut radius) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for j in 0..b {
            let (ep, en) = (tape.energies[j], tape.energies[b + j]);
            let log_q = if cfg.loss.uses_replay() {
                (0.0, 0.0)
            } else {
                (noise_log_density(cfg, &points[j * d..(j + 1) * d]), noise_log_density(cfg, &neg[j * d..(j + 1) * d]))
            };
            let (wp, wn, l, dz) = pair_weights(cfg, ep, en, self.state.log_z, log_q);
            weights[j] = wp * inv_b;
            weights[b + j] = wn * inv_b;
            loss += l;
            e_pos += ep;
            e_neg += en;
            d_log_z += dz;
            radius += neg[j * d..(j + 1) * d].iter().map(|x| x * x).sum::<f32>().sqrt();
        }
        // JEM: the positives' cross-entropy, its gradient on their logits (the mean over B).
        let (mut ce, mut d_logits) = (0.0, None);
        if cfg.loss == Loss::Jem {
            let k = self.state.net.outputs;
            let mut g = vec![0.0; 2 * b * k];
            for (j, &row) in rows.iter().enumerate() {
                let f = &tape.outputs()[j * k..(j + 1) * k];
                ce += cross_entropy(f, self.labels[row] as usize, &mut g[j * k..(j + 1) * k]);
            }
            g[..b * k].iter_mut().for_each(|v| *v *= inv_b);
            d_logits = Some(g);
        }
        let mut grad = tape.param_grad(&self.state.net, &weights, d_logits.as_deref());
        grad.push(d_log_z * inv_b);
        let grad_norm = grad.iter().map(|g| g * g).sum::<f32>().sqrt();
        let metrics = StepMetrics {
            step: step + 1,
            loss: (loss + ce) * inv_b,
            cross_entropy: ce * inv_b,
            e_pos: e_pos * inv_b,
            e_neg: e_neg * inv_b,
            grad_norm,
            log_z: self.state.log_z,
            reset_fraction: flags.iter().sum::<f32>() * inv_b,
            neg_radius: radius * inv_b,
        };
        self.apply(&grad)?;
        Ok(metrics)
    }
}

/// Clips `grad` to the configured global norm and applies the optimizer; the last parameter
/// (log Z) gets no weight decay. The twin of `optimizer_step` in shaders/train.wgsl.
pub fn optimizer_step(
    cfg: &TrainConfig,
    s: StepScalars,
    params: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
) {
    let norm = grad.iter().map(|g| g * g).sum::<f32>().sqrt();
    let scale = if cfg.clip_norm > 0.0 && norm > cfg.clip_norm { cfg.clip_norm / norm } else { 1.0 };
    let last = params.len() - 1;
    for q in 0..params.len() {
        let mut g = grad[q] * scale;
        if q < last {
            g += cfg.weight_decay * params[q];
        }
        match cfg.optimizer {
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

impl Trainer for CpuTrainer {
    fn run(&mut self, steps: u32) -> Result<Vec<StepMetrics>> {
        if self.state.step.checked_add(steps).is_none() {
            return Err(Error::invalid("steps", "the step counter would pass 2^32"));
        }
        (0..steps).map(|_| self.step()).collect()
    }

    fn state(&mut self) -> Result<TrainState> {
        Ok(self.state.clone())
    }

    fn executor(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }
}
