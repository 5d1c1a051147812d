//! Samplers: many chains at once, on the GPU or the CPU executor, behind one trait.

pub mod langevin;

use crate::Result;

pub use langevin::{LangevinConfig, LangevinKind};

/// Per-chain results a sampler keeps on its executor until asked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainStats {
    /// Accepted proposals per chain (Metropolis-adjusted samplers; 0 for ULA).
    pub accepted: Vec<u32>,
    /// Chains frozen because their state, energy or gradient became non-finite.
    pub frozen: Vec<bool>,
    /// Energy of each chain's current state.
    pub energies: Vec<f32>,
}

impl ChainStats {
    pub fn frozen_count(&self) -> usize {
        self.frozen.iter().filter(|&&f| f).count()
    }

    /// Mean acceptance rate over chains after `steps` steps.
    pub fn acceptance_rate(&self, steps: u32) -> f64 {
        if steps == 0 || self.accepted.is_empty() {
            return 0.0;
        }
        self.accepted.iter().map(|&a| a as f64).sum::<f64>() / (self.accepted.len() as f64 * steps as f64)
    }
}

/// What every sampler offers, whichever executor runs it.
pub trait ChainSampler {
    /// Advances every chain by `steps` steps (returns when the work is done).
    fn run(&mut self, steps: u32) -> Result<()>;
    /// Current states, [chains, dim] row-major.
    fn state(&self) -> Result<Vec<f32>>;
    fn stats(&self) -> Result<ChainStats>;
    /// The thinned trace, [slots, chains, dim], if one was requested.
    fn trace(&self) -> Result<Option<Vec<f32>>>;
    fn chains(&self) -> usize;
    fn dim(&self) -> usize;
    /// Steps taken so far.
    fn steps_done(&self) -> u32;
    /// Kernel dispatches per chain-step batch (GPU); 0 on the CPU executor.
    fn dispatches_per_step(&self) -> f64;
    /// "gpu: <adapter>" or "cpu: N threads".
    fn executor(&self) -> String;
}
