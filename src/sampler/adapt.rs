//! Warm-up adaptation, run by the host on either executor: dual averaging of the step size
//! towards a target acceptance (Hoffman & Gelman 2014, section 3.2), shared across chains or
//! per chain, and a diagonal mass matrix (HMC, MALA) or proposal scale (RWMH) from the variances of
//! the chains half-way through warm-up.
//!
//! The sampler runs in windows of a few steps; after each window the host reads the chains'
//! summed acceptance probabilities (4 bytes a chain) and sets new step sizes. Both executors
//! go through the same windows, so they adapt alike.

use super::{ChainSampler, SamplerKind};
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Adaptation {
    /// Target mean acceptance probability, in (0, 1).
    pub target_accept: f64,
    /// One step size per chain instead of one per temperature level.
    pub per_chain: bool,
    /// Learn a diagonal mass matrix (HMC, MALA) or proposal scale (RWMH) from warm-up variances.
    pub adapt_scale: bool,
    /// Steps between step-size updates.
    pub window: u32,
}

impl Adaptation {
    pub fn new(kind: SamplerKind) -> Self {
        Self { target_accept: kind.default_target_accept(), per_chain: false, adapt_scale: true, window: 5 }
    }

    pub fn validate(&self, kind: SamplerKind) -> Result<()> {
        if !(self.target_accept > 0.0 && self.target_accept < 1.0) {
            return Err(Error::invalid("target acceptance", format!("must be in (0, 1), got {}", self.target_accept)));
        }
        if !kind.is_adjusted() {
            return Err(Error::invalid("warm-up", "step-size adaptation needs an adjusted sampler (mala, hmc, rwmh)"));
        }
        if self.window == 0 {
            return Err(Error::invalid("adaptation window", "must be at least 1 step"));
        }
        Ok(())
    }
}

/// Dual-averaging state of one step size.
#[derive(Clone, Debug)]
struct DualAveraging {
    mu: f64,
    h_bar: f64,
    log_step: f64,
    log_step_bar: f64,
    t: f64,
}

impl DualAveraging {
    const GAMMA: f64 = 0.05;
    const T0: f64 = 10.0;
    const KAPPA: f64 = 0.75;

    fn new(step: f64) -> Self {
        Self { mu: (10.0 * step).ln(), h_bar: 0.0, log_step: step.ln(), log_step_bar: 0.0, t: 0.0 }
    }

    fn update(&mut self, accept: f64, target: f64) {
        self.t += 1.0;
        let w = 1.0 / (self.t + Self::T0);
        self.h_bar = (1.0 - w) * self.h_bar + w * (target - accept);
        self.log_step = self.mu - self.t.sqrt() / Self::GAMMA * self.h_bar;
        let eta = self.t.powf(-Self::KAPPA);
        self.log_step_bar = eta * self.log_step + (1.0 - eta) * self.log_step_bar;
    }
}

/// Adapts step sizes (and the per-dimension scale) over `steps` warm-up steps. Returns the
/// final step size of every sampler chain.
pub fn warm_up(sampler: &mut dyn ChainSampler, steps: u32, adapt: &Adaptation) -> Result<Vec<f32>> {
    let kind = sampler.config().kind;
    adapt.validate(kind)?;
    let replicas = sampler.replicas();
    let total = sampler.step_sizes().len();
    // Chains that share a step size: one group per temperature level, or one per chain.
    let group_of = |c: usize| if adapt.per_chain { c } else { c % replicas };
    let groups = if adapt.per_chain { total } else { replicas };
    let learn_scale = adapt.adapt_scale && kind.is_adjusted();
    let phases: Vec<u32> = if learn_scale { vec![steps / 2, steps - steps / 2] } else { vec![steps] };
    for (phase, &phase_steps) in phases.iter().enumerate() {
        if phase == 1 {
            sampler.set_dim_scale(&scale_from_variances(sampler, kind)?)?;
        }
        let steps_now = sampler.step_sizes();
        let mut duals: Vec<DualAveraging> = (0..groups)
            .map(|g| DualAveraging::new(steps_now[(0..total).find(|&c| group_of(c) == g).unwrap_or(0)] as f64))
            .collect();
        let mut before = sampler.stats()?.accept_prob_sums;
        let mut done = 0;
        while done < phase_steps {
            let n = adapt.window.min(phase_steps - done);
            sampler.run(n)?;
            done += n;
            let stats = sampler.stats()?;
            let after = stats.accept_prob_sums;
            let mut sums = vec![(0.0f64, 0usize); groups];
            for c in (0..total).filter(|&c| !stats.frozen[c]) {
                let mean = ((after[c] - before[c]) as f64 / n as f64).clamp(0.0, 1.0);
                sums[group_of(c)].0 += mean;
                sums[group_of(c)].1 += 1;
            }
            for (dual, (sum, count)) in duals.iter_mut().zip(sums) {
                dual.update(sum / count.max(1) as f64, adapt.target_accept);
            }
            let last = done == phase_steps;
            let new: Vec<f32> = (0..total)
                .map(|c| {
                    let d = &duals[group_of(c)];
                    (if last { d.log_step_bar } else { d.log_step }).exp() as f32
                })
                .collect();
            sampler.set_step_sizes(&new)?;
            before = after;
        }
    }
    Ok(sampler.step_sizes())
}

/// Per-dimension variance across the temperature-1 chains: the inverse mass diagonal of HMC
/// and MALA (or, square-rooted, RWMH's proposal scale). Floors keep a collapsed dimension usable; with
/// fewer than 10 chains the estimate is too rough and the scale stays 1.
fn scale_from_variances(sampler: &dyn ChainSampler, kind: SamplerKind) -> Result<Vec<f32>> {
    let (d, xs) = (sampler.dim(), sampler.state()?);
    let n = (xs.len() / d) as f64;
    if n < 10.0 {
        return Ok(vec![1.0; d]);
    }
    let mut out = Vec::with_capacity(d);
    for i in 0..d {
        let col = xs.iter().skip(i).step_by(d).map(|&v| v as f64);
        let mean = col.clone().sum::<f64>() / n;
        let var = (col.map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).max(1e-8);
        out.push(if kind == SamplerKind::Rwmh { var.sqrt() } else { var } as f32);
    }
    Ok(out)
}
