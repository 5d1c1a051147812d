//! Sampler configuration shared by both executors, and its validation.

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SamplerKind {
    /// Unadjusted Langevin: cheap, biased by O(step).
    Ula,
    /// Metropolis-adjusted Langevin: exact stationary distribution.
    Mala,
    /// Hamiltonian Monte Carlo with L leapfrog steps and a diagonal mass matrix.
    Hmc,
    /// Random-walk Metropolis with Gaussian proposals (per-dimension scale).
    Rwmh,
}

impl SamplerKind {
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ula => "ula",
            SamplerKind::Mala => "mala",
            SamplerKind::Hmc => "hmc",
            SamplerKind::Rwmh => "rwmh",
        }
    }

    /// Whether proposals pass a Metropolis test (and acceptance means something).
    pub fn is_adjusted(self) -> bool {
        self != SamplerKind::Ula
    }

    /// The acceptance rate step-size adaptation aims for by default.
    pub fn default_target_accept(self) -> f64 {
        match self {
            SamplerKind::Mala => 0.574,
            SamplerKind::Hmc => 0.8,
            SamplerKind::Rwmh | SamplerKind::Ula => 0.234,
        }
    }

    /// How a replica's step size grows with its temperature T: the width of exp(-E/T) grows
    /// as sqrt(T), and a Langevin step size is a squared length.
    pub fn step_at_temperature(self, step: f32, temperature: f32) -> f32 {
        match self {
            SamplerKind::Ula | SamplerKind::Mala => step * temperature,
            SamplerKind::Hmc | SamplerKind::Rwmh => step * temperature.sqrt(),
        }
    }
}

/// How the GPU evaluates an MLP energy inside ULA and MALA steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MlpStrategy {
    /// Tiled when the widest hidden layer has at least `TILED_MIN_WIDTH` neurons.
    #[default]
    Auto,
    /// One invocation per chain, the network inlined (narrow networks).
    PerChain,
    /// A workgroup per tile of chains, each layer a small GEMM (wide layers).
    Tiled,
}

/// Hidden width from which `MlpStrategy::Auto` picks the tiled kernels.
pub const TILED_MIN_WIDTH: usize = 128;

/// Parallel tempering: each chain runs as R replicas at inverse temperatures `betas`
/// (`betas[0]` = 1, decreasing); neighbours try to swap every `swap_every` steps.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Tempering {
    pub betas: Vec<f32>,
    pub swap_every: u32,
}

impl Tempering {
    /// A geometric temperature ladder 1, r, r^2, ... up to `max_temperature`.
    pub fn geometric(replicas: usize, max_temperature: f32, swap_every: u32) -> Self {
        let betas = (0..replicas)
            .map(|r| if replicas == 1 { 1.0 } else { max_temperature.powf(-(r as f32) / (replicas - 1) as f32) })
            .collect();
        Self { betas, swap_every }
    }

    /// From temperatures as a user gives them: must start at 1 and increase.
    pub fn from_temperatures(temperatures: &[f32], swap_every: u32) -> Result<Self> {
        let t = Self { betas: temperatures.iter().map(|t| 1.0 / t).collect(), swap_every };
        t.validate()?;
        Ok(t)
    }

    pub fn replicas(&self) -> usize {
        self.betas.len()
    }

    pub fn validate(&self) -> Result<()> {
        if self.betas.len() < 2 {
            return Err(Error::invalid("temperature ladder", "needs at least 2 temperatures"));
        }
        if self.betas[0] != 1.0 {
            return Err(Error::invalid(
                "temperature ladder",
                format!("must start at temperature 1, got {}", 1.0 / self.betas[0]),
            ));
        }
        if let Some(i) = self.betas.windows(2).position(|w| !(w[1] < w[0] && w[1] > 0.0 && w[1].is_finite())) {
            return Err(Error::invalid(
                "temperature ladder",
                format!(
                    "temperatures must increase and be finite: T[{}] = {} then T[{}] = {}",
                    i,
                    1.0 / self.betas[i],
                    i + 1,
                    1.0 / self.betas[i + 1]
                ),
            ));
        }
        if self.swap_every == 0 {
            return Err(Error::invalid("swap interval", "must be at least 1 step"));
        }
        Ok(())
    }
}

/// A sampler's settings: the algorithm (what the chains compute) and, in `tuning`, how the
/// GPU executor lays the work out. Made with [`SamplerConfig::new`] and adjusted field by field,
/// or with [`SamplerConfig::builder`]; `#[non_exhaustive]`, so settings can be added without
/// breaking code that builds one.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SamplerConfig {
    pub kind: SamplerKind,
    /// h (Langevin: x' = x - h grad E + noise; HMC: leapfrog step; RWMH: proposal std).
    pub step_size: f32,
    pub seed: u64,
    /// Global index of the first chain: chains are a function of (seed, global index), so a
    /// run can be split into pieces that reproduce the whole.
    pub chain_offset: u32,
    /// ULA only: noise standard deviation (default sqrt(2h), the exact Langevin discretisation).
    pub noise_scale: Option<f32>,
    /// ULA only: clamp each gradient component to [-c, c].
    pub grad_clamp: Option<f32>,
    /// ULA only: clamp states to [lo, hi] after each step.
    pub box_clamp: Option<(f32, f32)>,
    /// HMC: leapfrog steps per proposal.
    pub leapfrog: u32,
    /// HMC: draw L uniformly from [L - j, L + j] each proposal (0: fixed).
    pub leapfrog_jitter: u32,
    /// HMC: scale the step uniformly in [1 - j, 1 + j] each proposal (0: fixed).
    pub step_jitter: f32,
    pub tempering: Option<Tempering>,
    /// Keep every `trace_every`-th state (0: no trace) ...
    pub trace_every: u32,
    /// ... for `trace_steps` steps from global step `trace_start` on (e.g. after warm-up).
    pub trace_steps: u32,
    pub trace_start: u32,
    /// How the GPU executor lays the run out (speed only).
    pub tuning: DispatchTuning,
}

/// How the GPU executor lays a run out: speed only. The chains are a function of the
/// algorithm's settings and the seed whatever these say (up to rounding where the MLP strategy
/// changes the order of a network's sums).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct DispatchTuning {
    /// Upper bound on chains per dispatch; None: as the device limits allow.
    pub max_chains_per_dispatch: Option<u32>,
    /// Steps fused into one dispatch; None: chosen from the work size.
    pub steps_per_dispatch: Option<u32>,
    /// Strategy for MLP energies (ULA and MALA).
    pub mlp_strategy: MlpStrategy,
}

/// Builds a [`SamplerConfig`]: the algorithm's settings, then, optionally, the dispatch tuning;
/// [`SamplerBuilder::build`] validates the whole.
///
/// ```
/// use ebm_gpu::sampler::{SamplerConfig, SamplerKind};
/// let config = SamplerConfig::builder(SamplerKind::Hmc, 0.1, 7).leapfrog(20).step_jitter(0.1).steps_per_dispatch(8).build()?;
/// assert_eq!(config.leapfrog, 20);
/// assert!(SamplerConfig::builder(SamplerKind::Mala, 0.1, 7).grad_clamp(1.0).build().is_err()); // ULA only
/// # Ok::<(), ebm_gpu::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SamplerBuilder {
    config: SamplerConfig,
}

impl SamplerBuilder {
    /// Global index of the first chain (runs split into pieces that reproduce the whole).
    pub fn chain_offset(mut self, first: u32) -> Self {
        self.config.chain_offset = first;
        self
    }

    /// ULA: the noise's standard deviation (default sqrt(2h)).
    pub fn noise_scale(mut self, scale: f32) -> Self {
        self.config.noise_scale = Some(scale);
        self
    }

    /// ULA: clamp each gradient component to [-c, c].
    pub fn grad_clamp(mut self, c: f32) -> Self {
        self.config.grad_clamp = Some(c);
        self
    }

    /// ULA: clamp states to [lo, hi] after each step.
    pub fn box_clamp(mut self, lo: f32, hi: f32) -> Self {
        self.config.box_clamp = Some((lo, hi));
        self
    }

    /// HMC: leapfrog steps per proposal.
    pub fn leapfrog(mut self, steps: u32) -> Self {
        self.config.leapfrog = steps;
        self
    }

    /// HMC: draw L uniformly from [L - j, L + j] each proposal.
    pub fn leapfrog_jitter(mut self, j: u32) -> Self {
        self.config.leapfrog_jitter = j;
        self
    }

    /// HMC: scale the step uniformly in [1 - j, 1 + j] each proposal.
    pub fn step_jitter(mut self, j: f32) -> Self {
        self.config.step_jitter = j;
        self
    }

    /// Parallel tempering over this ladder.
    pub fn tempering(mut self, tempering: Tempering) -> Self {
        self.config.tempering = Some(tempering);
        self
    }

    /// Keep every `every`-th state for `steps` steps from global step `start` on.
    pub fn trace(mut self, every: u32, start: u32, steps: u32) -> Self {
        (self.config.trace_every, self.config.trace_start, self.config.trace_steps) = (every, start, steps);
        self
    }

    /// The whole dispatch tuning at once.
    pub fn tuning(mut self, tuning: DispatchTuning) -> Self {
        self.config.tuning = tuning;
        self
    }

    /// Tuning: at most this many chains per dispatch.
    pub fn max_chains_per_dispatch(mut self, chains: u32) -> Self {
        self.config.tuning.max_chains_per_dispatch = Some(chains);
        self
    }

    /// Tuning: fuse this many steps into one dispatch.
    pub fn steps_per_dispatch(mut self, steps: u32) -> Self {
        self.config.tuning.steps_per_dispatch = Some(steps);
        self
    }

    /// Tuning: how MLP energies are evaluated.
    pub fn mlp_strategy(mut self, strategy: MlpStrategy) -> Self {
        self.config.tuning.mlp_strategy = strategy;
        self
    }

    /// The configuration, validated.
    pub fn build(self) -> Result<SamplerConfig> {
        self.config.validate()?;
        Ok(self.config)
    }
}

impl SamplerConfig {
    pub fn new(kind: SamplerKind, step_size: f32, seed: u64) -> Self {
        Self {
            kind,
            step_size,
            seed,
            chain_offset: 0,
            noise_scale: None,
            grad_clamp: None,
            box_clamp: None,
            leapfrog: 10,
            leapfrog_jitter: 0,
            step_jitter: 0.0,
            tempering: None,
            trace_every: 0,
            trace_steps: 0,
            trace_start: 0,
            tuning: DispatchTuning::default(),
        }
    }

    /// A [`SamplerBuilder`] starting from [`SamplerConfig::new`]'s defaults.
    pub fn builder(kind: SamplerKind, step_size: f32, seed: u64) -> SamplerBuilder {
        SamplerBuilder { config: Self::new(kind, step_size, seed) }
    }

    pub fn replicas(&self) -> usize {
        self.tempering.as_ref().map_or(1, |t| t.replicas())
    }

    pub fn trace_slots(&self) -> u32 {
        self.trace_steps.checked_div(self.trace_every).unwrap_or(0)
    }

    /// Initial (step size, beta) of every sampler chain: base chain n's replica r is chain
    /// n * R + r.
    pub(crate) fn chain_params(&self, base_chains: usize) -> Vec<[f32; 2]> {
        let betas = self.tempering.as_ref().map_or(vec![1.0], |t| t.betas.clone());
        let per_replica: Vec<[f32; 2]> =
            betas.iter().map(|&b| [self.kind.step_at_temperature(self.step_size, 1.0 / b), b]).collect();
        (0..base_chains).flat_map(|_| per_replica.iter().copied()).collect()
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.step_size > 0.0 && self.step_size.is_finite()) {
            return Err(Error::invalid(
                "step size",
                format!("must be a positive finite number, got {}", self.step_size),
            ));
        }
        if let Some(s) = self.noise_scale
            && !(s >= 0.0 && s.is_finite())
        {
            return Err(Error::invalid("noise scale", format!("must be a non-negative finite number, got {s}")));
        }
        if let Some(c) = self.grad_clamp
            && !(c > 0.0)
        {
            return Err(Error::invalid("gradient clamp", format!("must be positive, got {c}")));
        }
        if let Some((lo, hi)) = self.box_clamp
            && !(lo < hi && lo.is_finite() && hi.is_finite())
        {
            return Err(Error::invalid("box clamp", format!("needs finite lo < hi, got [{lo}, {hi}]")));
        }
        if self.kind != SamplerKind::Ula {
            for (set, what) in [
                (self.noise_scale.is_some(), "noise scale"),
                (self.grad_clamp.is_some(), "gradient clamp"),
                (self.box_clamp.is_some(), "box clamp"),
            ] {
                if set {
                    return Err(Error::invalid(
                        what,
                        "applies to ULA only (an adjusted sampler would lose its exact target)",
                    ));
                }
            }
        }
        if self.kind == SamplerKind::Hmc {
            if self.leapfrog == 0 {
                return Err(Error::invalid("leapfrog steps", "must be at least 1"));
            }
            if self.leapfrog_jitter >= self.leapfrog {
                return Err(Error::invalid(
                    "leapfrog jitter",
                    format!("must be below L = {}, got {}", self.leapfrog, self.leapfrog_jitter),
                ));
            }
            if !(0.0..1.0).contains(&self.step_jitter) {
                return Err(Error::invalid("step jitter", format!("must be in [0, 1), got {}", self.step_jitter)));
            }
        }
        if let Some(t) = &self.tempering {
            t.validate()?;
        }
        if self.trace_every > 0 && self.trace_slots() == 0 {
            return Err(Error::invalid("trace", "trace_steps must be at least trace_every"));
        }
        if self.tuning.max_chains_per_dispatch == Some(0) || self.tuning.steps_per_dispatch == Some(0) {
            return Err(Error::invalid("dispatch shape", "chains and steps per dispatch must be at least 1"));
        }
        Ok(())
    }
}

/// Checks the initial state against the energy and returns the chain count.
pub(crate) fn check_initial(initial: &[f32], dim: usize, replicas: usize) -> Result<usize> {
    if dim == 0 || initial.is_empty() || !initial.len().is_multiple_of(dim) {
        return Err(Error::invalid(
            "initial state",
            format!("needs a positive multiple of the energy's dimension {dim} values, got {}", initial.len()),
        ));
    }
    let chains = initial.len() / dim;
    if (chains as u64) * (replicas as u64) > u32::MAX as u64 {
        return Err(Error::invalid("chains", format!("{chains} chains x {replicas} replicas exceeds 2^32 - 1")));
    }
    Ok(chains)
}

/// Splits `steps` steps starting at global step `done` into segments that end on swap
/// boundaries (multiples of `swap_every`); each segment says whether a swap round follows.
pub(crate) fn segments(done: u32, steps: u32, swap_every: Option<u32>) -> Vec<(u32, u32, Option<u32>)> {
    let Some(every) = swap_every else { return vec![(done, steps, None)] };
    let mut out = Vec::new();
    let (mut at, end) = (done, done + steps);
    while at < end {
        let next = ((at / every) + 1) * every;
        let stop = next.min(end);
        out.push((at, stop - at, (stop == next).then(|| stop / every - 1)));
        at = stop;
    }
    out
}
