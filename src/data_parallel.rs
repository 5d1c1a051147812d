//! Data-parallel training over processes or machines (the Python package's `ebm_gpu.ray.train`
//! drives it): every worker holds a replica of one run (made by `ebm train --setup-only`),
//! computes its share of each step's batch, and finishes the step from the shares joined in a
//! fixed order, so the replicas stay bit-identical.
//!
//! ```no_run
//! use ebm_gpu::data_parallel::{ShardTrainer, StepShare};
//! # fn main() -> anyhow::Result<()> {
//! let run = std::path::Path::new("runs/ring8");
//! let mut workers = [ShardTrainer::open(run)?, ShardTrainer::open(run)?];
//! let half = workers[0].batch() / 2;
//! let shares = vec![workers[0].share(0..half)?, workers[1].share(half..2 * half)?];
//! let joined = StepShare::join(shares)?; // in practice sent to every worker
//! for worker in &mut workers {
//!     worker.finish(joined.clone())?;
//! }
//! workers[0].record(run, 0.5, "on 2 workers")?; // metrics.csv, train.log, checkpoint
//! # Ok(()) }
//! ```

use crate::Result;
pub use crate::train::StepMetrics;
use crate::train::cpu::CpuTrainer;
pub use crate::train::cpu::{ShareSums, StepShare};
use crate::train::{TrainConfig, Trainer};
use std::ops::Range;
use std::path::Path;

/// One data-parallel worker: a run dir's configuration, checkpointed state and data on the CPU
/// executor.
pub struct ShardTrainer {
    trainer: CpuTrainer,
    config: TrainConfig,
    /// Steps finished since the last [`ShardTrainer::record`].
    pending: Vec<StepMetrics>,
}

impl ShardTrainer {
    /// Opens the run in `run_dir` at its checkpoint.
    pub fn open(run_dir: &Path) -> anyhow::Result<Self> {
        let (config, state, data, labels) = crate::cli::open_run(run_dir)?;
        let trainer = CpuTrainer::with_labels(&config, state, &data, &labels)?;
        Ok(Self { trainer, config, pending: Vec::new() })
    }

    /// Steps done.
    pub fn step(&mut self) -> Result<u32> {
        Ok(self.trainer.state()?.step)
    }

    /// Rows in a step's batch.
    pub fn batch(&self) -> usize {
        self.config.batch
    }

    /// This worker's share of the next step: batch rows `rows`.
    pub fn share(&self, rows: Range<usize>) -> Result<StepShare> {
        self.trainer.step_share(rows)
    }

    /// Finishes the step with the joined share of the whole batch; returns its metrics.
    pub fn finish(&mut self, joined: StepShare) -> Result<StepMetrics> {
        let metrics = self.trainer.finish_step(joined)?;
        self.pending.push(metrics);
        Ok(metrics)
    }

    /// The packed parameters, then log Z.
    pub fn params(&mut self) -> Result<Vec<f32>> {
        Ok(self.trainer.state()?.params())
    }

    /// Writes the steps finished since the last call to the run dir: metrics.csv rows, a
    /// train.log line ("steps A..B `how`") and the checkpoint.
    pub fn record(&mut self, run_dir: &Path, wall_seconds: f64, how: &str) -> Result<()> {
        let state = self.trainer.state()?;
        crate::train::run::record_steps(run_dir, &self.config, &state, &self.pending, wall_seconds, how)?;
        self.pending.clear();
        Ok(())
    }
}
