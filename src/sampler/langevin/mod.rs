//! Langevin samplers: ULA and MALA. Kernel `shaders/langevin.wgsl`, launcher [`gpu`], CPU twin
//! [`cpu`]; both consume the same Philox streams, so one seed gives the same chains.

pub mod cpu;
pub mod gpu;

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LangevinKind {
    /// Unadjusted Langevin: cheap, biased by O(step).
    Ula,
    /// Metropolis-adjusted Langevin: exact stationary distribution.
    Mala,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LangevinConfig {
    pub kind: LangevinKind,
    /// h in x' = x - h grad E(x) + noise.
    pub step_size: f32,
    /// ULA only: noise standard deviation (default sqrt(2h), the exact Langevin discretisation).
    pub noise_scale: Option<f32>,
    /// ULA only: clamp each gradient component to [-c, c].
    pub grad_clamp: Option<f32>,
    /// ULA only: clamp states to [lo, hi] after each step.
    pub box_clamp: Option<(f32, f32)>,
    pub seed: u64,
    /// Global index of the first chain: chains are a function of (seed, global index), so a
    /// run can be split into pieces that reproduce the whole.
    pub chain_offset: u32,
    /// Keep every `trace_every`-th state (0: no trace) ...
    pub trace_every: u32,
    /// ... for the first `trace_steps` steps.
    pub trace_steps: u32,
    /// Upper bound on chains per dispatch (GPU); None: as the device limits allow.
    pub max_chains_per_dispatch: Option<u32>,
    /// Steps fused into one dispatch (GPU); None: chosen from the work size.
    pub steps_per_dispatch: Option<u32>,
}

impl LangevinConfig {
    pub fn new(kind: LangevinKind, step_size: f32, seed: u64) -> Self {
        Self {
            kind,
            step_size,
            noise_scale: None,
            grad_clamp: None,
            box_clamp: None,
            seed,
            chain_offset: 0,
            trace_every: 0,
            trace_steps: 0,
            max_chains_per_dispatch: None,
            steps_per_dispatch: None,
        }
    }

    /// The noise standard deviation actually used (both executors take it from here).
    pub fn noise(&self) -> f32 {
        match (self.kind, self.noise_scale) {
            (LangevinKind::Ula, Some(s)) => s,
            _ => (2.0 * self.step_size).sqrt(),
        }
    }

    pub fn trace_slots(&self) -> u32 {
        if self.trace_every == 0 { 0 } else { self.trace_steps / self.trace_every }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.step_size > 0.0 && self.step_size.is_finite()) {
            return Err(Error::invalid("step size", format!("must be a positive finite number, got {}", self.step_size)));
        }
        if let Some(s) = self.noise_scale {
            if !(s >= 0.0 && s.is_finite()) {
                return Err(Error::invalid("noise scale", format!("must be a non-negative finite number, got {s}")));
            }
        }
        if let Some(c) = self.grad_clamp {
            if !(c > 0.0) {
                return Err(Error::invalid("gradient clamp", format!("must be positive, got {c}")));
            }
        }
        if let Some((lo, hi)) = self.box_clamp {
            if !(lo < hi && lo.is_finite() && hi.is_finite()) {
                return Err(Error::invalid("box clamp", format!("needs finite lo < hi, got [{lo}, {hi}]")));
            }
        }
        if self.kind == LangevinKind::Mala {
            for (set, what) in [
                (self.noise_scale.is_some(), "noise scale"),
                (self.grad_clamp.is_some(), "gradient clamp"),
                (self.box_clamp.is_some(), "box clamp"),
            ] {
                if set {
                    return Err(Error::invalid(what, "applies to ULA only (MALA would lose its exact target)"));
                }
            }
        }
        if self.trace_every > 0 && self.trace_slots() == 0 {
            return Err(Error::invalid("trace", "trace_steps must be at least trace_every"));
        }
        if self.max_chains_per_dispatch == Some(0) || self.steps_per_dispatch == Some(0) {
            return Err(Error::invalid("dispatch shape", "chains and steps per dispatch must be at least 1"));
        }
        Ok(())
    }
}

/// Checks the initial state against the energy and returns the chain count.
pub(crate) fn check_initial(initial: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 || initial.is_empty() || initial.len() % dim != 0 {
        return Err(Error::invalid(
            "initial state",
            format!("needs a positive multiple of the energy's dimension {dim} values, got {}", initial.len()),
        ));
    }
    let chains = initial.len() / dim;
    if chains > u32::MAX as usize {
        return Err(Error::invalid("chains", format!("{chains} exceeds 2^32 - 1")));
    }
    Ok(chains)
}
