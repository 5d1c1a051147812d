//! AIS for any continuous energy (Neal 2001): runs start from a normalised base q0
//! ([`Base`]) and pass through p_β ∝ q0^(1-β) exp(-β E) for β from 0 to 1, one HMC transition
//! (L leapfrog steps, reflected at the box's walls, then a Metropolis test) per temperature.
//! Each run's log weight sums -(β_k - β_{k-1}) (E(x) - B(x)) with B = -log q0, so the mean
//! weight estimates Z / Z0 = Z: log Z = log mean w, a stochastic lower bound. Reverse AIS
//! runs the same path from samples of the model down to the base (an upper bound when those
//! samples are exact; Grosse et al. 2015).
//!
//! The step size of each temperature comes from separate pilot runs ([`step_sizes`]) that
//! adapt it to a target acceptance; the estimate's own runs use that fixed schedule, so the
//! adaptation does not bias the weights, and every shard of a run set uses the same one.
//!
//! Runs advance in lockstep: every leapfrog step evaluates all runs' energies in one batch
//! through an [`Evaluator`] (the CPU executor's batched path, or the GPU's energy kernels),
//! and everything else (momenta, leapfrog, tests, weights) is the same host code for both, so
//! the two executors' weights differ only by the rounding of the energies. Each run draws from
//! Philox by its index (momenta: `Momentum` stream, step k; accept uniforms: `Accept`; base
//! draws: `Init`), so runs split into shards join into the same run set.

use super::base::Base;
use super::{AisResult, BetaSchedule, Direction, summarize};
use crate::energy::batch::Evaluator;
use crate::rng::{self, Stream};
use crate::{Error, Result};

/// Fewest temperatures an estimate may use (as for RBMs: with fewer, one lucky run decides).
pub const MIN_TEMPERATURES: usize = 100;
/// Most runs of one estimate (or shard).
pub const MAX_RUNS: usize = 65535;
/// Pilot runs use the run indices counting down from here, which no estimate reaches.
const PILOT_FIRST: u32 = u32::MAX;
/// Each run's step size is uniform in ε (1 ± STEP_JITTER) (the `Accept` stream's second lane).
const STEP_JITTER: f32 = 0.5;
/// How fast the pilot moves the step size: ε ← ε exp(RATE (acceptance - target)).
const ADAPT_RATE: f64 = 1.0;

/// How an estimate anneals.
#[derive(Clone, Debug, PartialEq)]
pub struct AnnealConfig {
    /// Runs of this estimate (or shard), indices first_run ..
    pub runs: usize,
    pub first_run: u32,
    pub seed: u64,
    pub schedule: BetaSchedule,
    /// Leapfrog steps per HMC transition.
    pub leapfrog: u32,
    /// Runs that adapt the step sizes ([`step_sizes`]).
    pub pilot_runs: usize,
    /// Mean acceptance probability the pilot aims for.
    pub target_accept: f64,
}

impl AnnealConfig {
    pub fn new(runs: usize, temperatures: usize, seed: u64) -> Self {
        AnnealConfig {
            runs,
            first_run: 0,
            seed,
            schedule: BetaSchedule::Sigmoid(temperatures),
            leapfrog: 10,
            pilot_runs: 16,
            target_accept: 0.65,
        }
    }

    /// Refuses settings that cannot mean anything, naming them.
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_RUNS).contains(&self.runs) {
            return Err(Error::invalid(
                "AIS runs",
                format!("{} runs: need 2 (for a standard error) to {MAX_RUNS}", self.runs),
            ));
        }
        if self.schedule.intervals() < MIN_TEMPERATURES {
            return Err(Error::invalid(
                "AIS temperatures",
                format!(
                    "{} temperatures are too few to mean anything; use at least {MIN_TEMPERATURES}",
                    self.schedule.intervals()
                ),
            ));
        }
        if self.leapfrog == 0 || self.pilot_runs == 0 {
            return Err(Error::invalid("AIS", "needs at least one leapfrog step and one pilot run"));
        }
        if !(self.target_accept > 0.0 && self.target_accept < 1.0) {
            return Err(Error::invalid("AIS target acceptance", format!("{} is not in (0, 1)", self.target_accept)));
        }
        if (self.first_run as u64 + self.runs as u64) > (PILOT_FIRST as u64 - MAX_RUNS as u64) {
            return Err(Error::invalid(
                "AIS first run",
                format!("{} is beyond the run indices an estimate may use", self.first_run),
            ));
        }
        Ok(())
    }

    /// Energy evaluations per run: the pilot's and the estimate's leapfrog steps.
    pub fn evaluations(&self) -> u64 {
        self.schedule.intervals() as u64 * self.leapfrog as u64
    }
}

/// One annealing's outcome.
#[derive(Clone, Debug)]
pub struct Estimate {
    pub result: AisResult,
    /// Runs dropped because their start state's energy was not finite (never averaged in).
    pub dropped: usize,
    /// Mean acceptance probability over all transitions of all runs.
    pub acceptance: f64,
    /// Proposals refused because their energy or gradient was not finite.
    pub non_finite: u64,
}

/// What the pilot learned: the step size and diagonal inverse mass matrix of the transition at
/// every temperature (index k: the transition at β_k of the forward schedule).
#[derive(Clone, Debug, PartialEq)]
pub struct Transitions {
    pub steps: Vec<f32>,
    /// The inverse mass at temperature k is `inv_mass[k / stride]`: the pilot's running
    /// per-coordinate variance, kept at [`MASS_SNAPSHOTS`] points of the schedule at most.
    pub inv_mass: Vec<Vec<f32>>,
    pub stride: usize,
}

/// Most inverse-mass vectors a schedule keeps (memory: this many x the dimension).
pub const MASS_SNAPSHOTS: usize = 256;
/// Weight of the newest pilot variance in the running inverse mass.
const MASS_RATE: f32 = 0.1;

impl Transitions {
    fn at(&self, k: usize) -> (f32, &[f32]) {
        (self.steps[k], &self.inv_mass[k / self.stride])
    }
}

/// Adapts the transitions by `config.pilot_runs` pilot runs from the base to the target: the
/// step size towards the target acceptance, the inverse mass to the runs' variance across
/// runs (a moving average over temperatures), so that scales unlike the base's mix too.
pub fn adapt(eval: &mut dyn Evaluator, base: &Base, config: &AnnealConfig) -> Result<Transitions> {
    config.validate()?;
    let betas = config.schedule.betas();
    let runs: Vec<u32> = (0..config.pilot_runs as u32).map(|j| PILOT_FIRST - j).collect();
    let start = (base.dim() as f64).powf(-0.25) * 0.5;
    let stride = betas.len().div_ceil(MASS_SNAPSHOTS);
    let mut plan = Transitions {
        steps: vec![start as f32; betas.len()],
        inv_mass: vec![base.variances(); betas.len().div_ceil(stride)],
        stride,
    };
    anneal(eval, base, &betas, &mut plan, config, &runs, None, true)?;
    Ok(plan)
}

/// Forward AIS: runs from base draws, β 0 → 1, with the pilot's transitions.
pub fn forward(eval: &mut dyn Evaluator, base: &Base, config: &AnnealConfig, plan: &Transitions) -> Result<Estimate> {
    config.validate()?;
    let betas = config.schedule.betas();
    check_plan(plan, betas.len(), base.dim())?;
    let runs: Vec<u32> = (0..config.runs as u32).map(|r| config.first_run + r).collect();
    let out = anneal(eval, base, &betas, &mut plan.clone(), config, &runs, None, false)?;
    estimate(out, Direction::Forward)
}

/// Reverse AIS from `samples` of the model ([runs, dim]), β 1 → 0, with the forward pilot's
/// transitions (the same temperatures, visited backwards).
pub fn reverse(
    eval: &mut dyn Evaluator,
    base: &Base,
    config: &AnnealConfig,
    plan: &Transitions,
    samples: &[f32],
) -> Result<Estimate> {
    config.validate()?;
    let d = base.dim();
    if samples.len() != config.runs * d || samples.iter().any(|x| !x.is_finite()) {
        return Err(Error::invalid(
            "reverse AIS start states",
            format!("need {} runs x {d} finite values, got {} values", config.runs, samples.len()),
        ));
    }
    let betas = config.schedule.betas();
    check_plan(plan, betas.len(), d)?;
    let runs: Vec<u32> = (0..config.runs as u32).map(|r| config.first_run + r).collect();
    let out = anneal(eval, base, &betas, &mut plan.clone(), config, &runs, Some(samples), false)?;
    estimate(out, Direction::Reverse)
}

fn check_plan(plan: &Transitions, temperatures: usize, d: usize) -> Result<()> {
    let ok = plan.steps.len() == temperatures
        && plan.stride > 0
        && plan.inv_mass.len() == temperatures.div_ceil(plan.stride)
        && plan.inv_mass.iter().all(|v| v.len() == d);
    if !ok {
        return Err(Error::invalid("AIS transitions", "were adapted for another schedule or dimension"));
    }
    Ok(())
}

fn estimate(out: Annealed, direction: Direction) -> Result<Estimate> {
    let kept: Vec<f64> = out.log_weights.iter().copied().filter(|w| w.is_finite()).collect();
    let dropped = out.log_weights.len() - kept.len();
    if kept.len() < 2 {
        return Err(Error::invalid(
            "AIS",
            format!(
                "{dropped} of {} runs started where the energy is not finite; fewer than 2 are left to estimate from",
                out.log_weights.len()
            ),
        ));
    }
    Ok(Estimate {
        result: summarize(kept, 0.0, direction)?,
        dropped,
        acceptance: out.acceptance,
        non_finite: out.non_finite,
    })
}

struct Annealed {
    /// NaN for a dropped run.
    log_weights: Vec<f64>,
    acceptance: f64,
    non_finite: u64,
}

/// The runs' states and what the path needs at them: E and its gradient, B and its gradient.
struct Points {
    x: Vec<f32>,
    e: Vec<f32>,
    ge: Vec<f32>,
    b: Vec<f64>,
    gb: Vec<f32>,
}

impl Points {
    fn new(x: Vec<f32>, n: usize) -> Self {
        let len = x.len();
        Points { x, e: vec![0.0; n], ge: vec![0.0; len], b: vec![0.0; n], gb: vec![0.0; len] }
    }

    fn evaluate(&mut self, eval: &mut dyn Evaluator, base: &Base) -> Result<()> {
        eval.energy_grad(&self.x, &mut self.e, &mut self.ge)?;
        let d = base.dim();
        for ((x, gb), b) in self.x.chunks_exact(d).zip(self.gb.chunks_exact_mut(d)).zip(self.b.iter_mut()) {
            *b = base.energy_grad(x, gb);
        }
        Ok(())
    }

    /// Whether run r's energy, base energy and gradients are all finite.
    fn finite(&self, r: usize, d: usize) -> bool {
        let span = r * d..(r + 1) * d;
        self.e[r].is_finite()
            && self.b[r].is_finite()
            && self.ge[span.clone()].iter().chain(&self.gb[span]).all(|v| v.is_finite())
    }

    /// The path's energy (1 - β) B + β E at run r.
    fn path_energy(&self, r: usize, beta: f64) -> f64 {
        (1.0 - beta) * self.b[r] + beta * self.e[r] as f64
    }

    /// p -= scale * eps_r * grad of the path's energy at β (eps_r: run r's step size).
    fn kick(&self, p: &mut [f32], beta: f32, scale: f32, eps: &[f32], d: usize) {
        for (i, ((p, &ge), &gb)) in p.iter_mut().zip(&self.ge).zip(&self.gb).enumerate() {
            *p -= scale * eps[i / d] * ((1.0 - beta) * gb + beta * ge);
        }
    }
}

/// Folds q back into [lo, hi] as a ball reflected by the walls, flipping p once per wall hit
/// (an odd number of reflections reverses the momentum): volume-preserving and reversible, so
/// HMC stays exact for a density on the box.
fn reflect(q: &mut f32, p: &mut f32, lo: f32, hi: f32) {
    if *q >= lo && *q <= hi {
        return;
    }
    let w = hi - lo;
    let t = (*q - lo) / w;
    let n = t.floor();
    let frac = t - n;
    if (n as i64).rem_euclid(2) == 0 {
        *q = lo + frac * w;
    } else {
        *q = hi - frac * w;
        *p = -*p;
    }
    *q = q.clamp(lo, hi);
}

/// Anneals `runs` along `betas` (forward order; `start` given: from β = 1 down). With
/// `adapting`, the runs are the pilot's and write what they learn into `plan`.
#[allow(clippy::too_many_arguments)]
fn anneal(
    eval: &mut dyn Evaluator,
    base: &Base,
    betas: &[f32],
    plan: &mut Transitions,
    config: &AnnealConfig,
    runs: &[u32],
    start: Option<&[f32]>,
    adapting: bool,
) -> Result<Annealed> {
    let (n, d, seed) = (runs.len(), base.dim(), config.seed);
    let x = match start {
        Some(samples) => samples.to_vec(),
        None => {
            let mut x = vec![0.0f32; n * d];
            x.chunks_exact_mut(d).zip(runs).for_each(|(row, &r)| base.sample(seed, r, row));
            x
        }
    };
    let mut at = Points::new(x, n);
    at.evaluate(eval, base)?;
    let mut log_w: Vec<f64> = (0..n).map(|r| if at.finite(r, d) { 0.0 } else { f64::NAN }).collect();
    let mut proposal = Points::new(vec![0.0; n * d], n);
    let mut momentum = vec![0.0f32; n * d];
    let mut running_mass = base.variances();
    let (mut accept_sum, mut transitions, mut non_finite) = (0.0f64, 0u64, 0u64);
    let last = betas.len() - 1;
    // Visit k = 1..=last; the forward index of the temperature visited.
    let index = |k: usize| if start.is_some() { last - k } else { k };
    for k in 1..=last {
        let (beta, beta_prev) = (betas[index(k)] as f64, betas[index(k - 1)] as f64);
        for (r, w) in log_w.iter_mut().enumerate() {
            *w -= (beta - beta_prev) * (at.e[r] as f64 - at.b[r]);
        }
        if k == last {
            break;
        }
        let t = index(k);
        if adapting && t.is_multiple_of(plan.stride) {
            plan.inv_mass[t / plan.stride] = running_mass.clone();
        }
        let (eps, inv_mass) = plan.at(t);
        let inv_mass = inv_mass.to_vec();
        // One HMC transition at β for every run, in lockstep. Momentum p ~ N(0, M) with
        // M = diag(1 / inv_mass): p = z / sqrt(inv_mass), kinetic ½ Σ z².
        let mut h0 = vec![0.0f64; n];
        for ((p, &r), h) in momentum.chunks_exact_mut(d).zip(runs).zip(h0.iter_mut()) {
            rng::fill_normals(seed, r, t as u32, Stream::Momentum, p);
            *h = p.iter().map(|&z| 0.5 * (z as f64).powi(2)).sum::<f64>();
            p.iter_mut().zip(&inv_mass).for_each(|(p, &m)| *p /= m.sqrt());
        }
        for (r, h) in h0.iter_mut().enumerate() {
            *h += at.path_energy(r, beta);
        }
        // Each run's step jittered by ±STEP_JITTER: a fixed trajectory length can be a whole
        // period of some direction, where HMC returns to where it started.
        let run_eps: Vec<f32> = runs
            .iter()
            .map(|&r| eps * (1.0 + STEP_JITTER * (2.0 * rng::uniform4(seed, r, t as u32, Stream::Accept, 0)[1] - 1.0)))
            .collect();
        proposal.x.copy_from_slice(&at.x);
        at.kick(&mut momentum, beta as f32, 0.5, &run_eps, d);
        for l in 0..config.leapfrog {
            for (i, (q, p)) in proposal.x.iter_mut().zip(momentum.iter_mut()).enumerate() {
                *q += run_eps[i / d] * inv_mass[i % d] * *p;
                if let Some((lo, hi)) = base.bounds() {
                    reflect(q, p, lo, hi);
                }
            }
            proposal.evaluate(eval, base)?;
            let scale = if l + 1 == config.leapfrog { 0.5 } else { 1.0 };
            proposal.kick(&mut momentum, beta as f32, scale, &run_eps, d);
        }
        let (mut accepted_prob, mut alive) = (0.0f64, 0usize);
        for r in 0..n {
            if !log_w[r].is_finite() {
                continue;
            }
            alive += 1;
            let kinetic: f64 = momentum[r * d..(r + 1) * d]
                .iter()
                .zip(&inv_mass)
                .map(|(&p, &m)| 0.5 * m as f64 * (p as f64).powi(2))
                .sum();
            let ok = proposal.finite(r, d);
            let log_alpha = if ok { h0[r] - (proposal.path_energy(r, beta) + kinetic) } else { f64::NEG_INFINITY };
            non_finite += !ok as u64;
            accepted_prob += if log_alpha.is_nan() { 0.0 } else { log_alpha.min(0.0).exp() };
            let u = rng::uniform4(seed, runs[r], t as u32, Stream::Accept, 0)[0] as f64;
            if u.ln() <= log_alpha {
                let span = r * d..(r + 1) * d;
                at.x[span.clone()].copy_from_slice(&proposal.x[span.clone()]);
                at.ge[span.clone()].copy_from_slice(&proposal.ge[span.clone()]);
                at.gb[span.clone()].copy_from_slice(&proposal.gb[span]);
                at.e[r] = proposal.e[r];
                at.b[r] = proposal.b[r];
            }
        }
        accept_sum += accepted_prob;
        transitions += alive as u64;
        eval.progress(k, last);
        if adapting && alive > 0 {
            let rate = accepted_prob / alive as f64;
            plan.steps[t + 1] =
                (eps as f64 * (ADAPT_RATE * (rate - config.target_accept)).exp()).clamp(1e-7, 10.0) as f32;
            if alive > 1 {
                update_mass(&mut running_mass, &at.x, &log_w, d);
            }
        }
    }
    Ok(Annealed { log_weights: log_w, acceptance: accept_sum / transitions.max(1) as f64, non_finite })
}

/// Moves the running inverse mass towards the live runs' variance per coordinate.
fn update_mass(mass: &mut [f32], x: &[f32], log_w: &[f64], d: usize) {
    let live: Vec<&[f32]> = x.chunks_exact(d).zip(log_w).filter(|(_, w)| w.is_finite()).map(|(row, _)| row).collect();
    let m = live.len() as f64;
    for (i, v) in mass.iter_mut().enumerate() {
        let mean = live.iter().map(|row| row[i] as f64).sum::<f64>() / m;
        let var = live.iter().map(|row| (row[i] as f64 - mean).powi(2)).sum::<f64>() / (m - 1.0);
        // A coordinate every run agrees on keeps a little room to move.
        let var = (var as f32).max(1e-4 * *v);
        *v = (1.0 - MASS_RATE) * *v + MASS_RATE * var;
    }
}

#[cfg(test)]
mod tests {
    use super::reflect;

    #[test]
    fn reflection_folds_into_the_box_and_flips_momentum_per_wall() {
        let fold = |q: f32| {
            let (mut q, mut p) = (q, 1.0f32);
            reflect(&mut q, &mut p, -1.0, 1.0);
            (q, p)
        };
        assert_eq!(fold(0.5), (0.5, 1.0));
        let (q, p) = fold(1.25);
        assert!((q - 0.75).abs() < 1e-6 && p == -1.0);
        let (q, p) = fold(-1.5);
        assert!((q + 0.5).abs() < 1e-6 && p == -1.0);
        // Past both walls: two reflections, momentum as it was.
        let (q, p) = fold(3.5);
        assert!((q + 0.5).abs() < 1e-6 && p == 1.0, "{q} {p}");
    }
}
