//! The CPU executor of a training step (module docs of [`crate::train`]); the twin of
//! `shaders/train/train.wgsl` with the generated `train_net` module (MLPs) and of `shaders/train/train_layered.wgsl`
//! around the layer kernels (other networks). Langevin negatives and the tape run
//! as GEMMs over blocks of points, blocks in parallel (rayon).

use super::tape::Tape;
use super::{
    Loss, StepMetrics, StepScalars, TrainConfig, TrainState, Trainer, batch_row, cross_entropy, generator, latent,
    noise_log_density, pair_weights,
};
use crate::nn::NetworkInternals;
use crate::rng::{self, Stream};
use crate::sampler::langevin;
use crate::{Error, Result};
use rayon::prelude::*;
use std::ops::Range;

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
        let rows = config.data_rows(data)?;
        config.validate(rows)?;
        state.validate(config)?;
        if config.loss == Loss::Jem {
            super::check_jem_network(&state.net)?;
            super::check_labels(labels, rows, state.net.outputs)?;
        }
        if config.loss.uses_views() {
            super::contrastive::check(&state.net.view(), config)?;
        }
        Ok(Self { config: config.clone(), state, data: data.to_vec(), rows, labels: labels.to_vec() })
    }

    /// Step 1: the negatives of batch entries `rows` (and each one's reset flag), not yet
    /// written back to the replay buffer, and with a generator, the tape of its proposals.
    /// Every draw is indexed by the entry's place j in the whole batch, so a share of the rows
    /// gets the numbers it has in the whole step.
    fn negatives(&self, step: u32, rows: Range<usize>) -> (Vec<f32>, Vec<f32>, Option<Tape>) {
        let cfg = &self.config;
        let (d, n) = (cfg.dim(), rows.len());
        if !cfg.loss.samples_negatives() {
            let mut neg = vec![0.0; n * d];
            for (j, row) in rows.clone().zip(neg.chunks_exact_mut(d)) {
                rng::fill_normals_from(cfg.seed, j as u32, step, Stream::Batch, 1, row);
                for (i, x) in row.iter_mut().enumerate() {
                    *x = cfg.noise_mean[i] + cfg.noise_std[i] * *x;
                }
            }
            return (neg, vec![0.0; n], None);
        }
        let mut flags = vec![0.0; n];
        let (mut neg, tape) = match self.state.side.as_ref().filter(|_| cfg.generator.is_some()) {
            Some(g) => {
                let w = generator::latents(cfg.seed, step, rows.clone(), g.net.input_dim());
                let (x, tape) = generator::propose(&g.net, &w, &cfg.box_lo, &cfg.box_hi);
                (x, Some(tape))
            }
            None => (self.replay_negatives(step, rows.clone(), &mut flags), None),
        };
        self.langevin(step, rows.start, &mut neg);
        (neg, flags, tape)
    }

    /// The replay slots of batch entries `rows`, each re-initialised in the box with the reset
    /// probability (its flag set to 1).
    fn replay_negatives(&self, step: u32, rows: Range<usize>, flags: &mut [f32]) -> Vec<f32> {
        let cfg = &self.config;
        let (d, n) = (cfg.dim(), rows.len());
        let cap = cfg.buffer_capacity;
        let position = cfg.replay_position(step);
        let mut neg = Vec::with_capacity(n * d);
        for j in rows.clone() {
            let slot = (position + j) % cap;
            neg.extend_from_slice(&self.state.replay[slot * d..(slot + 1) * d]);
        }
        for (j, (row, flag)) in rows.zip(neg.chunks_exact_mut(d).zip(flags.iter_mut())) {
            if rng::uniform4(cfg.seed, j as u32, step, Stream::BufferReset, 0)[0] < cfg.reset_prob {
                *flag = 1.0;
                for (i, x) in row.iter_mut().enumerate() {
                    let u = rng::uniform4(cfg.seed, j as u32, step, Stream::BufferReset, 1 + i as u32 / 4)[i % 4];
                    *x = cfg.box_lo[i] + (cfg.box_hi[i] - cfg.box_lo[i]) * u;
                }
            }
        }
        neg
    }

    /// The K Langevin steps on the negatives `neg` of batch entries `first..`, in place.
    fn langevin(&self, step: u32, first: usize, neg: &mut [f32]) {
        let cfg = &self.config;
        let (d, n) = (cfg.dim(), neg.len() / cfg.dim());
        let net = &self.state.net;
        let lv = cfg.langevin;
        let noise_std = lv.noise_std();
        let draws = d.div_ceil(4) as u32;
        // One block per thread: the largest GEMMs that still keep every thread busy.
        let rows_per_task = n.div_ceil(rayon::current_num_threads()).max(MIN_ROWS_PER_TASK);
        neg.par_chunks_mut(rows_per_task * d).enumerate().for_each(|(task, block)| {
            let m = block.len() / d;
            let (mut g, mut e, mut noise) = (vec![0.0; block.len()], vec![0.0; m], vec![0.0; d]);
            for k in 0..lv.steps {
                g.fill(0.0);
                net.add_energy_grad_batch(block, &mut g, &mut e, 1.0);
                for (r, (x, g)) in block.chunks_exact_mut(d).zip(g.chunks_exact(d)).enumerate() {
                    let j = (first + task * rows_per_task + r) as u32;
                    rng::fill_normals_from(cfg.seed, j, step, Stream::ProposalNoise, k * draws, &mut noise);
                    for i in 0..d {
                        let v = langevin::ula_update(x[i], g[i], lv.step_size, noise_std, lv.grad_clamp, noise[i]);
                        x[i] = v.clamp(cfg.box_lo[i], cfg.box_hi[i]);
                    }
                }
            }
        });
    }

    /// A score-matching step ([`super::score`]): no negatives, loss and gradient from the jets.
    fn score_matching_step(&mut self) -> Result<StepMetrics> {
        let cfg = &self.config;
        let batch = super::score::batch(cfg, &self.data, self.rows, self.state.step);
        let result = super::score::step_cpu(cfg.loss, &self.state.net.view(), &batch);
        self.apply_network_step(
            StepMetrics { loss: result.loss, e_pos: result.energy, ..StepMetrics::default() },
            result.grad,
        )
    }

    /// A contrastive step ([`super::contrastive`]): two views of the batch, InfoNCE over it.
    fn contrastive_step(&mut self) -> Result<StepMetrics> {
        let cfg = &self.config;
        let net = self.state.net.view();
        let (a, b) = super::contrastive::views(cfg, net.input, &self.data, self.rows, self.state.step);
        let r = super::contrastive::step_cpu(cfg.loss, &net, &a, &b);
        self.apply_network_step(
            StepMetrics { loss: r.loss, e_pos: r.e_pos, e_neg: r.e_neg, ..StepMetrics::default() },
            r.grad,
        )
    }

    /// The optimizer step of a loss without log Z (the network's gradient only), completing
    /// `metrics` (the step, gradient norm, log Z).
    fn apply_network_step(&mut self, metrics: StepMetrics, mut grad: Vec<f32>) -> Result<StepMetrics> {
        grad.push(0.0); // log Z is NCE's alone
        let metrics = StepMetrics {
            step: self.state.step + 1,
            grad_norm: grad.iter().map(|g| g * g).sum::<f32>().sqrt(),
            log_z: self.state.log_z,
            ..metrics
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
        if self.config.loss.uses_views() {
            return self.contrastive_step();
        }
        let share = self.step_share(0..self.config.batch)?;
        self.finish_step(share)
    }

    /// Data-parallel training, first half of a step: the gradient of batch entries `rows`
    /// (positives, negatives and, for JEM, cross-entropy), weighted by 1/B of the whole batch
    /// so that the shares of a partition of 0..B, joined with [`StepShare::join`], sum to the
    /// step's gradient. Changes nothing; every worker holding the same state and data may
    /// compute any share. Contrastive and NCE losses (score matching has no shares yet).
    pub fn step_share(&self, rows: Range<usize>) -> Result<StepShare> {
        let cfg = &self.config;
        let b = cfg.batch;
        if cfg.loss.is_score_matching() || cfg.loss.uses_views() {
            return Err(Error::invalid(
                "data-parallel training",
                format!("the {} loss has no per-share step; use cd, softplus, hinge, nce or jem", cfg.loss),
            ));
        }
        if rows.start >= rows.end || rows.end > b {
            return Err(Error::invalid(
                "data-parallel training",
                format!("batch rows {}..{} are not a non-empty part of 0..{b}", rows.start, rows.end),
            ));
        }
        let step = self.state.step;
        let (d, n) = (cfg.dim(), rows.len());
        let (neg, flags, generator_tape) = self.negatives(step, rows.clone());
        let data_rows: Vec<usize> = rows.clone().map(|j| batch_row(cfg.seed, step, j, self.rows)).collect();
        let data_d = cfg.data_dim();
        let xs: Vec<f32> =
            data_rows.iter().flat_map(|&row| self.data[row * data_d..(row + 1) * data_d].iter().copied()).collect();
        // A latent EBM's positives are (x, z) with z drawn from the encoder.
        let mut draws = match (&cfg.latent, &self.state.side) {
            (Some(l), Some(encoder)) => {
                Some(latent::Draws::new(&encoder.net, &xs, latent::Draws::normals(cfg.seed, step, rows.clone(), l.dim)))
            }
            _ => None,
        };
        let mut points = match &draws {
            Some(dr) => dr.joint(&xs),
            None => xs,
        };
        points.reserve(n * d);
        points.extend_from_slice(&neg);
        let mut tape = Tape::record(&self.state.net, &points);
        // Loss, per-point weights dL/dE and dL/d(log Z).
        let inv_b = 1.0 / b as f32;
        let mut weights = vec![0.0; 2 * n];
        let mut sums = ShareSums::default();
        for j in 0..n {
            let (ep, en) = (tape.energies[j], tape.energies[n + j]);
            let log_q = if cfg.loss.samples_negatives() {
                (0.0, 0.0)
            } else {
                (noise_log_density(cfg, &points[j * d..(j + 1) * d]), noise_log_density(cfg, &neg[j * d..(j + 1) * d]))
            };
            let (wp, wn, l, dz) = pair_weights(cfg, ep, en, self.state.log_z, log_q);
            weights[j] = wp * inv_b;
            weights[n + j] = wn * inv_b;
            sums.loss += l;
            sums.e_pos += ep;
            sums.e_neg += en;
            sums.d_log_z += dz;
            sums.radius += neg[j * d..(j + 1) * d].iter().map(|x| x * x).sum::<f32>().sqrt();
        }
        sums.resets = flags.iter().sum();
        // JEM: the positives' cross-entropy, its gradient on their logits (the mean over B).
        let mut d_logits = None;
        if cfg.loss == Loss::Jem {
            let k = self.state.net.outputs;
            let mut g = vec![0.0; 2 * n * k];
            for (j, &row) in data_rows.iter().enumerate() {
                let f = &tape.outputs()[j * k..(j + 1) * k];
                sums.cross_entropy += cross_entropy(f, self.labels[row] as usize, &mut g[j * k..(j + 1) * k]);
            }
            g[..n * k].iter_mut().for_each(|v| *v *= inv_b);
            d_logits = Some(g);
        }
        let mut grad = tape.param_grad(&self.state.net, &weights, d_logits.as_deref());
        grad.push(sums.d_log_z * inv_b);
        if let (Some(g), Some(mut gen_tape)) = (&self.state.side, generator_tape) {
            let (loss, gen_grad) = generator::regression_grad(&g.net, &mut gen_tape, &neg, b);
            sums.side_loss = loss * b as f32;
            grad.extend(gen_grad);
        }
        if let (Some(encoder), Some(draws)) = (&self.state.side, draws.as_mut()) {
            let positives = &points[..n * d];
            let (mut dx, mut e) = (vec![0.0; n * d], vec![0.0; n]);
            self.state.net.add_energy_grad_batch(positives, &mut dx, &mut e, 1.0);
            let (loss, enc_grad) = draws.encoder_grad(&encoder.net, &e, &dx, b);
            sums.side_loss = loss * b as f32;
            grad.extend(enc_grad);
        }
        Ok(StepShare { rows, grad, negatives: neg, sums })
    }

    /// Data-parallel training, second half of a step: the joined shares of the whole batch
    /// write their negatives to the replay buffer and take the optimizer step. Every worker
    /// finishing the same joined share keeps the same state.
    pub fn finish_step(&mut self, share: StepShare) -> Result<StepMetrics> {
        let cfg = &self.config;
        let (d, b) = (cfg.dim(), cfg.batch);
        let n_net = self.state.net.param_count() + 1;
        let n_side = self.state.side.as_ref().map_or(0, |g| g.net.param_count());
        if share.rows != (0..b) || share.grad.len() != n_net + n_side || share.negatives.len() != b * d {
            return Err(Error::invalid(
                "data-parallel training",
                format!(
                    "a step needs the shares of the whole batch 0..{b} ({} gradient values, {} negative values), got rows {}..{} ({}, {})",
                    n_net + n_side,
                    b * d,
                    share.rows.start,
                    share.rows.end,
                    share.grad.len(),
                    share.negatives.len()
                ),
            ));
        }
        if cfg.uses_replay_buffer() {
            let position = cfg.replay_position(self.state.step);
            let cap = cfg.buffer_capacity;
            for (j, row) in share.negatives.chunks_exact(d).enumerate() {
                let slot = (position + j) % cap;
                self.state.replay[slot * d..(slot + 1) * d].copy_from_slice(row);
            }
        }
        let inv_b = 1.0 / b as f32;
        let s = share.sums;
        let metrics = StepMetrics {
            step: self.state.step + 1,
            loss: (s.loss + s.cross_entropy) * inv_b,
            cross_entropy: s.cross_entropy * inv_b,
            e_pos: s.e_pos * inv_b,
            e_neg: s.e_neg * inv_b,
            grad_norm: share.grad[..n_net].iter().map(|g| g * g).sum::<f32>().sqrt(),
            log_z: self.state.log_z,
            reset_fraction: s.resets * inv_b,
            neg_radius: s.radius * inv_b,
            side_loss: s.side_loss * inv_b,
        };
        let (net_grad, side_grad) = share.grad.split_at(n_net);
        if let Some(side) = &mut self.state.side {
            let scalars = StepScalars::new(cfg, self.state.step, self.state.lr_scale);
            side.apply(cfg, scalars, super::side::learning_rate(cfg, cfg.side_lr(), scalars), side_grad)?;
        }
        self.apply(net_grad)?;
        Ok(metrics)
    }
}

/// The sums over one share's batch entries that a step's metrics are made of.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ShareSums {
    pub loss: f32,
    pub cross_entropy: f32,
    pub e_pos: f32,
    pub e_neg: f32,
    pub d_log_z: f32,
    pub resets: f32,
    pub radius: f32,
    /// Cooperative learning: the generator's regression loss (B times its share of L_g).
    pub side_loss: f32,
}

impl ShareSums {
    /// As a list in field order, and back (for passing across processes).
    pub fn to_array(self) -> [f32; 8] {
        [self.loss, self.cross_entropy, self.e_pos, self.e_neg, self.d_log_z, self.resets, self.radius, self.side_loss]
    }

    pub fn from_array(a: [f32; 8]) -> Self {
        Self {
            loss: a[0],
            cross_entropy: a[1],
            e_pos: a[2],
            e_neg: a[3],
            d_log_z: a[4],
            resets: a[5],
            radius: a[6],
            side_loss: a[7],
        }
    }
}

/// One worker's part of a training step (`CpuTrainer::step_share`): batch entries `rows`,
/// their gradient contribution (parameters, log Z, then the generator's parameters if there is
/// one), refreshed negatives and metric sums.
#[derive(Clone, Debug)]
pub struct StepShare {
    pub rows: Range<usize>,
    pub grad: Vec<f32>,
    pub negatives: Vec<f32>,
    pub sums: ShareSums,
}

impl StepShare {
    /// The shares of consecutive row ranges as one: gradients and sums added in the order
    /// given (so every worker joining the same list gets the same bits), negatives in row order.
    pub fn join(shares: Vec<StepShare>) -> Result<StepShare> {
        let mut iter = shares.into_iter();
        let mut joined = iter.next().ok_or_else(|| Error::invalid("data-parallel training", "no shares to join"))?;
        for s in iter {
            if s.rows.start != joined.rows.end || s.grad.len() != joined.grad.len() {
                return Err(Error::invalid(
                    "data-parallel training",
                    format!(
                        "shares must be consecutive and of one network: rows {}..{} cannot follow {}..{}",
                        s.rows.start, s.rows.end, joined.rows.start, joined.rows.end
                    ),
                ));
            }
            joined.grad.iter_mut().zip(&s.grad).for_each(|(a, b)| *a += b);
            joined.negatives.extend_from_slice(&s.negatives);
            let (a, b) = (joined.sums.to_array(), s.sums.to_array());
            joined.sums = ShareSums::from_array(std::array::from_fn(|i| a[i] + b[i]));
            joined.rows.end = s.rows.end;
        }
        Ok(joined)
    }
}

/// Clips `grad` to the configured global norm and applies the optimizer; the last parameter
/// (log Z) gets no weight decay. The twin of `optimizer_step` in shaders/train/train.wgsl.
pub fn optimizer_step(
    cfg: &TrainConfig,
    s: StepScalars,
    params: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
) {
    let decayed = params.len() - 1;
    super::apply_optimizer(cfg.optimizer, cfg.clip_norm, cfg.weight_decay, decayed, s, params, m, v, grad);
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
