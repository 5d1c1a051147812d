//! Samplers: many chains at once, on the GPU or the CPU executor, behind one trait.
//!
//! ULA, MALA, HMC and RWMH share one configuration ([`SamplerConfig`]), one GPU launcher
//! ([`gpu::GpuSampler`]) and one CPU twin ([`cpu::CpuSampler`]). Parallel tempering runs each
//! chain as R replicas (sampler chain n * R + r is replica r of chain n); what the trait's
//! `state`/`trace` return is the temperature-1 replica of every chain.

#[cfg(any(feature = "cli", feature = "internals"))]
pub mod adapt;
pub mod anneal;
pub mod config;
pub mod cpu;
pub mod gpu;
pub mod langevin;
pub mod layered;

use crate::{Error, Result};

pub use config::{DispatchTuning, MlpStrategy, SamplerBuilder, SamplerConfig, SamplerKind, Tempering};

/// Per-chain results a sampler keeps on its executor until asked (all sampler chains,
/// replicas included).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainStats {
    /// Accepted proposals per chain (Metropolis-adjusted samplers; 0 for ULA).
    pub accepted: Vec<u32>,
    /// Chains frozen because their state, energy or gradient became non-finite.
    pub frozen: Vec<bool>,
    /// Energy of each chain's current state (untempered).
    pub energies: Vec<f32>,
    /// Sum over steps of each proposal's acceptance probability min(1, alpha).
    pub accept_prob_sums: Vec<f32>,
    /// Parallel tempering: accepted swaps, [chains, R - 1].
    pub swaps: Vec<u32>,
}

impl ChainStats {
    /// Decodes the kernels' per-chain stats rows ([chains, 4] u32: accepted proposals, frozen
    /// flag, sum of accept probabilities as f32 bits, unused; shaders/common/chain.wgsl).
    pub(crate) fn from_kernel_rows(rows: &[u32], energies: Vec<f32>, swaps: Vec<u32>) -> Self {
        ChainStats {
            accepted: rows.chunks(4).map(|s| s[0]).collect(),
            frozen: rows.chunks(4).map(|s| s[1] != 0).collect(),
            accept_prob_sums: rows.chunks(4).map(|s| f32::from_bits(s[2])).collect(),
            energies,
            swaps,
        }
    }

    pub fn frozen_count(&self) -> usize {
        self.frozen.iter().filter(|&&f| f).count()
    }

    /// Chains that are not frozen but accepted fewer than `max_rate` of their `steps` proposals:
    /// chains stuck where the proposal is far too large for the local curvature (they keep the
    /// state they reached and bias every average over chains).
    pub fn stuck_count(&self, steps: u32, max_rate: f64) -> usize {
        self.accepted.iter().zip(&self.frozen).filter(|&(&a, &f)| !f && (a as f64) < max_rate * steps as f64).count()
    }

    /// Mean acceptance rate over chains after `steps` steps.
    pub fn acceptance_rate(&self, steps: u32) -> f64 {
        if steps == 0 || self.accepted.is_empty() {
            return 0.0;
        }
        self.accepted.iter().map(|&a| a as f64).sum::<f64>() / (self.accepted.len() as f64 * steps as f64)
    }

    /// The statistics of replica `r` of every chain.
    pub fn replica(&self, r: usize, replicas: usize) -> ChainStats {
        fn pick<T: Copy>(v: &[T], r: usize, replicas: usize) -> Vec<T> {
            v.iter().skip(r).step_by(replicas).copied().collect()
        }
        ChainStats {
            accepted: pick(&self.accepted, r, replicas),
            frozen: pick(&self.frozen, r, replicas),
            energies: pick(&self.energies, r, replicas),
            accept_prob_sums: pick(&self.accept_prob_sums, r, replicas),
            swaps: Vec::new(),
        }
    }

    /// Difference of two snapshots (e.g. sampling phase = end - end of warm-up).
    pub fn since(&self, earlier: &ChainStats) -> ChainStats {
        ChainStats {
            accepted: self.accepted.iter().zip(&earlier.accepted).map(|(a, b)| a - b).collect(),
            frozen: self.frozen.clone(),
            energies: self.energies.clone(),
            accept_prob_sums: self.accept_prob_sums.iter().zip(&earlier.accept_prob_sums).map(|(a, b)| a - b).collect(),
            swaps: self.swaps.iter().zip(&earlier.swaps).map(|(a, b)| a - b).collect(),
        }
    }
}

/// What every sampler keeps about its chains, whichever executor runs them: the settings, the
/// dimension, each sampler chain's (step size, inverse temperature) and the steps taken. The
/// accessor half of [`ChainSampler`] is written once, on it.
#[derive(Clone, Debug)]
pub struct ChainState {
    pub config: SamplerConfig,
    pub dim: usize,
    /// [chains * R]: (step size, beta) of each sampler chain, replicas included.
    pub chain_params: Vec<[f32; 2]>,
    pub steps_done: u32,
}

impl ChainState {
    pub fn new(config: SamplerConfig, dim: usize, chain_params: Vec<[f32; 2]>) -> Self {
        ChainState { config, dim, chain_params, steps_done: 0 }
    }

    /// Sets each sampler chain's step size (the executor then uploads `chain_params` if it
    /// keeps them on a device).
    pub fn set_step_sizes(&mut self, steps: &[f32]) -> Result<()> {
        check_len("step sizes", steps.len(), self.chain_params.len())?;
        self.chain_params.iter_mut().zip(steps).for_each(|(p, &s)| p[0] = s);
        Ok(())
    }

    /// Sets ULA's noise standard deviation for the steps to come (None: sqrt(2h)); every
    /// executor reads it from the configuration when it records a step.
    pub fn set_noise_scale(&mut self, scale: Option<f32>) -> Result<()> {
        let mut config = self.config.clone();
        config.noise_scale = scale;
        config.validate()?;
        self.config = config;
        Ok(())
    }
}

/// What every sampler offers, whichever executor runs it.
pub trait ChainSampler {
    /// Advances every chain by `steps` steps (returns when the work is done).
    fn run(&mut self, steps: u32) -> Result<()>;
    /// States of all sampler chains, replicas included, [chains * R, dim].
    fn all_states(&self) -> Result<Vec<f32>>;
    /// Statistics of all sampler chains, replicas included.
    fn stats(&self) -> Result<ChainStats>;
    /// The thinned trace of all sampler chains, [slots, chains * R, dim], if one was requested.
    fn all_traces(&self) -> Result<Option<Vec<f32>>>;
    /// Sets each sampler chain's step size (adaptation).
    fn set_step_sizes(&mut self, steps: &[f32]) -> Result<()>;
    /// Sets ULA's noise standard deviation (None: sqrt(2h)) for the steps to come (annealing).
    fn set_noise_scale(&mut self, scale: Option<f32>) -> Result<()>;
    /// The settings, dimension, per-chain parameters and steps taken.
    #[doc(hidden)]
    fn chain_state(&self) -> &ChainState;
    fn step_sizes(&self) -> Vec<f32> {
        self.chain_state().chain_params.iter().map(|p| p[0]).collect()
    }
    /// Per-dimension scale: the inverse mass matrix diagonal of HMC and MALA (MALA's
    /// preconditioner), RWMH's proposal scale; ULA uses only its zeros. A scale of 0 fixes the
    /// dimension at its current value in every sampler (conditional sampling).
    fn set_dim_scale(&mut self, scale: &[f32]) -> Result<()>;
    fn config(&self) -> &SamplerConfig {
        &self.chain_state().config
    }
    fn dim(&self) -> usize {
        self.chain_state().dim
    }
    /// Steps taken so far.
    fn steps_done(&self) -> u32 {
        self.chain_state().steps_done
    }
    /// Kernel dispatches per step (GPU); 0 on the CPU executor.
    fn dispatches_per_step(&self) -> f64;
    /// `"gpu: <adapter>"` or `"cpu: N threads"`.
    fn executor(&self) -> String;

    fn replicas(&self) -> usize {
        self.config().replicas()
    }

    /// Number of chains (not counting tempering replicas).
    fn chains(&self) -> usize {
        self.step_sizes().len() / self.replicas()
    }

    /// Current states of the temperature-1 chains, [chains, dim].
    fn state(&self) -> Result<Vec<f32>> {
        Ok(every_rth_row(&self.all_states()?, self.dim(), self.replicas()))
    }

    /// Thinned trace of the temperature-1 chains, [slots, chains, dim]. A chain frozen as
    /// non-finite is NaN in every slot: its draws are not samples (before freezing it was
    /// diverging), and a frozen chain's slots would otherwise hold zeros or its last state.
    fn trace(&self) -> Result<Option<Vec<f32>>> {
        let Some(all) = self.all_traces()? else { return Ok(None) };
        let (dim, replicas) = (self.dim(), self.replicas());
        let mut trace = every_rth_row(&all, dim, replicas);
        let frozen = self.stats()?.replica(0, replicas).frozen;
        if frozen.iter().any(|&f| f) {
            for (row, x) in trace.chunks_mut(dim).enumerate() {
                if frozen[row % frozen.len()] {
                    x.fill(f32::NAN);
                }
            }
        }
        Ok(Some(trace))
    }
}

/// Rows 0, R, 2R, ... of a row-major [rows, dim] array.
fn every_rth_row(data: &[f32], dim: usize, r: usize) -> Vec<f32> {
    data.chunks(dim).step_by(r).flatten().copied().collect()
}

pub(crate) fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::invalid(what, format!("expected {want} values, got {got}")));
    }
    Ok(())
}

pub(crate) fn check_dim_scale(scale: &[f32], dim: usize) -> Result<()> {
    check_len("per-dimension scale", scale.len(), dim)?;
    if let Some(i) = scale.iter().position(|s| !(*s >= 0.0 && s.is_finite())) {
        return Err(Error::invalid(
            format!("per-dimension scale[{i}]"),
            format!("must be >= 0 and finite, got {}", scale[i]),
        ));
    }
    if !scale.iter().any(|&s| s > 0.0) {
        return Err(Error::invalid("per-dimension scale", "every dimension is fixed (scale 0): nothing to sample"));
    }
    Ok(())
}
