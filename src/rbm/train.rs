//! CD-k and PCD-k training: configuration, learning-rate schedule, the executor-neutral
//! [`Trainer`] interface and the epoch loop.
//!
//! Random numbers: batch updates draw their Gibbs uniforms from one global half-step counter
//! (`TrainState::step`) with the batch row (CD) or persistent chain (PCD) as the Philox chain,
//! so a run is a pure function of its seed, and a resumed run continues the same sequence.

use super::Rbm;
use crate::rng::{self, Stream};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// Contrastive divergence: k Gibbs steps from the data batch.
    Cd(u32),
    /// Persistent CD: k Gibbs steps of persistent chains (as many as the batch size).
    Pcd(u32),
}

/// "CD-k" or "PCD-k".
impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Cd(k) => write!(f, "CD-{k}"),
            Method::Pcd(k) => write!(f, "PCD-{k}"),
        }
    }
}

/// Learning rate as a function of training progress.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LrSchedule {
    Constant,
    /// Linear from lr to lr * final over the whole run (per batch).
    Linear {
        final_fraction: f32,
    },
    /// lr * gamma^epoch.
    Exponential {
        gamma: f32,
    },
}

impl LrSchedule {
    /// "constant", "linear:F" or "exp:G".
    pub fn parse(s: &str) -> Result<Self> {
        let bad =
            || Error::invalid("lr schedule", format!("{s:?}: expected constant, linear:FINAL_FRACTION or exp:GAMMA"));
        let number = |v: &str| v.parse::<f32>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(bad);
        match s.split_once(':') {
            None if s == "constant" => Ok(LrSchedule::Constant),
            Some(("linear", v)) => Ok(LrSchedule::Linear { final_fraction: number(v)? }),
            // gamma 0 would zero the rate after the first epoch: training that silently stops.
            Some(("exp", v)) => {
                let gamma = number(v)?;
                if gamma == 0.0 {
                    return Err(Error::invalid(
                        "lr schedule",
                        format!("{s:?}: exp:GAMMA needs GAMMA > 0 (0 stops learning after the first epoch)"),
                    ));
                }
                Ok(LrSchedule::Exponential { gamma })
            }
            _ => Err(bad()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub method: Method,
    pub batch: usize,
    pub lr: f32,
    pub schedule: LrSchedule,
    pub momentum: f32,
    pub weight_decay: f32,
    pub epochs: u32,
    pub seed: u64,
}

impl TrainConfig {
    pub fn new(method: Method, batch: usize, lr: f32, epochs: u32, seed: u64) -> Self {
        Self { method, batch, lr, schedule: LrSchedule::Constant, momentum: 0.0, weight_decay: 0.0, epochs, seed }
    }

    /// Persistent chains kept by the method (0 for CD).
    pub fn chains(&self) -> usize {
        match self.method {
            Method::Cd(_) => 0,
            Method::Pcd(_) => self.batch,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let k = match self.method {
            Method::Cd(k) | Method::Pcd(k) => k,
        };
        if k == 0 || k > 10_000 {
            return Err(Error::invalid("Gibbs steps", format!("k must be in 1..=10000, got {k}")));
        }
        if self.batch == 0 || self.batch > 65535 {
            return Err(Error::invalid("batch size", format!("must be in 1..=65535, got {}", self.batch)));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid("learning rate", format!("must be positive and finite, got {}", self.lr)));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::invalid("momentum", format!("must be in [0, 1), got {}", self.momentum)));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::invalid("weight decay", format!("must be non-negative, got {}", self.weight_decay)));
        }
        Ok(())
    }

    /// Learning rate of batch `b` of `nb` in epoch `epoch` (0-based).
    pub fn lr_at(&self, epoch: u32, b: usize, nb: usize) -> f32 {
        match self.schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Linear { final_fraction } => {
                let progress = (epoch as f64 + b as f64 / nb.max(1) as f64) / self.epochs.max(1) as f64;
                (self.lr as f64 * (1.0 - (1.0 - final_fraction as f64) * progress.min(1.0))) as f32
            }
            LrSchedule::Exponential { gamma } => self.lr * gamma.powi(epoch as i32),
        }
    }

    /// Gibbs half-steps one batch consumes (both executors advance the counter alike).
    pub fn half_steps_per_batch(&self) -> u32 {
        match self.method {
            Method::Cd(k) => 1 + 2 * k,
            Method::Pcd(k) => 3 + 2 * k,
        }
    }
}

/// Everything a run needs to continue: parameters, optimizer state, persistent chains and the
/// position of the random sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub rbm: Rbm,
    /// Momentum buffer, laid out like `rbm.theta`.
    pub velocity: Vec<f32>,
    /// [chains, n_vis] for PCD.
    pub chains: Option<Vec<f32>>,
    /// Gibbs half-steps consumed so far.
    pub step: u32,
    /// Completed epochs.
    pub epoch: u32,
}

impl TrainState {
    /// A fresh state; PCD chains start at the first `batch` training rows (repeated if fewer).
    pub fn new(rbm: Rbm, config: &TrainConfig, data: &[f32]) -> Result<Self> {
        let rows = rbm.check_rows(data, "training data")?;
        if rows == 0 {
            return Err(Error::invalid("training data", "has no rows"));
        }
        let nv = rbm.n_vis;
        let chains = (config.chains() > 0).then(|| {
            (0..config.chains()).flat_map(|k| data[(k % rows) * nv..(k % rows + 1) * nv].iter().copied()).collect()
        });
        Ok(Self { velocity: vec![0.0; rbm.theta.len()], rbm, chains, step: 0, epoch: 0 })
    }

    pub fn validate(&self, config: &TrainConfig) -> Result<()> {
        self.rbm.check_finite()?;
        if self.velocity.len() != self.rbm.theta.len() {
            return Err(Error::invalid(
                "velocity",
                format!("has {} values, expected {}", self.velocity.len(), self.rbm.theta.len()),
            ));
        }
        if let Some(k) = self.velocity.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid("velocity", format!("entry {k} is not finite")));
        }
        match (&self.chains, config.chains()) {
            (None, 0) => Ok(()),
            (Some(c), n) if n > 0 && c.len() == n * self.rbm.n_vis => {
                if c.iter().any(|v| !v.is_finite()) {
                    return Err(Error::invalid("persistent chains", "contain non-finite values"));
                }
                Ok(())
            }
            (c, n) => Err(Error::invalid(
                "persistent chains",
                format!(
                    "the method needs {n} chains of {} units, the state has {}",
                    self.rbm.n_vis,
                    c.as_ref().map_or(0, |c| c.len())
                ),
            )),
        }
    }
}

/// One minibatch: rows `order[start .. start + rows]` of the epoch's permutation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Batch {
    pub start: usize,
    pub rows: usize,
    pub lr: f32,
}

/// A CD/PCD training executor (GPU or CPU).
pub trait Trainer {
    /// The permutation of the training rows for the coming batches.
    fn set_order(&mut self, order: &[u32]) -> Result<()>;
    /// Runs the batches in sequence; returns when the work is done.
    fn run(&mut self, batches: &[Batch]) -> Result<()>;
    /// Each row's reconstruction error from the last time it was in a batch, by position in the order.
    fn recon_errors(&mut self) -> Result<Vec<f32>>;
    /// Parameters, optimizer state and chains (a readback on the GPU).
    fn state(&mut self) -> Result<TrainState>;
}

pub(crate) fn check_order(order: &[u32], rows: usize) -> Result<()> {
    if order.len() != rows || order.iter().any(|&r| r as usize >= rows) {
        return Err(Error::invalid("batch order", format!("must be a permutation of 0..{rows}")));
    }
    Ok(())
}

/// The epoch's permutation: Fisher-Yates driven by Philox (counter (i, epoch, Init, 1)).
pub fn epoch_order(rows: usize, seed: u64, epoch: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..rows as u32).collect();
    let key = rng::key(seed);
    for i in (1..rows).rev() {
        let bits = rng::philox4x32_10([i as u32, epoch, Stream::Init as u32, 1], key)[0];
        let j = ((bits as u64 * (i as u64 + 1)) >> 32) as usize;
        order.swap(i, j);
    }
    order
}

/// The batches of one epoch: full batches, then the remainder as a smaller batch.
pub fn epoch_batches(config: &TrainConfig, rows: usize, epoch: u32) -> Vec<Batch> {
    let nb = rows.div_ceil(config.batch);
    (0..nb)
        .map(|b| {
            let start = b * config.batch;
            Batch { start, rows: config.batch.min(rows - start), lr: config.lr_at(epoch, b, nb) }
        })
        .collect()
}

/// What one epoch did.
#[derive(Clone, Debug)]
pub struct EpochReport {
    /// Mean over rows of the squared reconstruction error (sum over pixels).
    pub recon_error: f64,
    pub seconds: f64,
}

/// Batches handed to the executor per call (the progress display ticks between calls).
pub const BATCHES_PER_CALL: usize = 16;

/// Trains epoch `epoch` (0-based); `progress(done, total)` is called between chunks of batches.
pub fn run_epoch(
    trainer: &mut dyn Trainer,
    config: &TrainConfig,
    rows: usize,
    epoch: u32,
    mut progress: impl FnMut(usize, usize),
) -> Result<EpochReport> {
    let start = std::time::Instant::now();
    trainer.set_order(&epoch_order(rows, config.seed, epoch))?;
    let batches = epoch_batches(config, rows, epoch);
    for (k, chunk) in batches.chunks(BATCHES_PER_CALL).enumerate() {
        trainer.run(chunk)?;
        progress((k * BATCHES_PER_CALL + chunk.len()).min(batches.len()), batches.len());
    }
    let errors = trainer.recon_errors()?;
    let seconds = start.elapsed().as_secs_f64();
    let recon_error = errors.iter().map(|&e| e as f64).sum::<f64>() / rows as f64;
    if !recon_error.is_finite() {
        return Err(Error::invalid(
            "training",
            format!("epoch {} produced a non-finite reconstruction error: lower the learning rate", epoch + 1),
        ));
    }
    Ok(EpochReport { recon_error, seconds })
}
