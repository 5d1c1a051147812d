//! The CPU executor: twin of `shaders/langevin.wgsl`, `hmc.wgsl`, `rwmh.wgsl` and
//! `tempering.wgsl`. The same steps in the same order with the same Philox draws, parallel over
//! chains with rayon.

use super::config::{SamplerConfig, SamplerKind, check_initial};
use super::{ChainSampler, ChainStats};
use crate::Result;
use crate::energy::{Energy, Real};
use crate::rng::{self, Stream};
use rayon::prelude::*;

pub struct CpuSampler {
    energy: Energy,
    config: SamplerConfig,
    dim: usize,
    /// All sampler chains (base chain n's replica r at n * R + r), [chains, dim].
    state: Vec<f32>,
    chain_params: Vec<[f32; 2]>,
    dim_scale: Vec<f32>,
    accepted: Vec<u32>,
    frozen: Vec<bool>,
    prob_sums: Vec<f32>,
    energies: Vec<f32>,
    /// [slots, chains, dim]
    trace: Vec<f32>,
    /// [base chains, R - 1] accepted swaps per neighbour pair.
    swaps: Vec<u32>,
    steps_done: u32,
}

/// What one chain's run changed besides its state.
#[derive(Default)]
struct ChainOutcome {
    accepted: u32,
    prob_sum: f32,
    energy: Option<f32>,
    frozen: bool,
    trace: Vec<(usize, Vec<f32>)>,
}

fn is_finite_state(x: &[f32], g: &[f32], e: f32) -> bool {
    e.is_finite() && x.iter().all(|v| v.is_finite()) && g.iter().all(|v| v.is_finite())
}

fn accept_prob(log_alpha: f32) -> f32 {
    log_alpha.min(0.0).exp()
}

impl CpuSampler {
    pub fn new(energy: &Energy, config: SamplerConfig, initial: &[f32]) -> Result<Self> {
        config.validate()?;
        energy.validate()?;
        let dim = energy.dim();
        let base = check_initial(initial, dim, config.replicas())?;
        let r = config.replicas();
        let chains = base * r;
        // Every replica of a base chain starts where the base chain does.
        let state: Vec<f32> = initial.chunks(dim).flat_map(|x| std::iter::repeat_n(x, r).flatten().copied()).collect();
        Ok(Self {
            energy: energy.clone(),
            dim,
            state,
            chain_params: config.chain_params(base),
            dim_scale: vec![1.0; dim],
            accepted: vec![0; chains],
            frozen: vec![false; chains],
            prob_sums: vec![0.0; chains],
            energies: vec![0.0; chains],
            trace: vec![0.0; config.trace_slots() as usize * chains * dim],
            swaps: vec![0; base * (r - 1)],
            steps_done: 0,
            config,
        })
    }

    /// E(x), with g set to beta * grad E(x) (as the kernels' `energy_grad_at`).
    fn energy_grad_at(&self, x: &[f32], g: &mut [f32], beta: f32) -> f32 {
        let e = self.energy.energy_grad(x, g);
        g.iter_mut().for_each(|v| *v *= beta);
        e
    }

    /// Runs global steps `first .. first + n` of sampler chain `index`.
    fn run_chain(&self, index: usize, x: &mut [f32], first: u32, n: u32) -> ChainOutcome {
        let mut out = ChainOutcome::default();
        let d = self.dim;
        let cfg = &self.config;
        let chain = cfg.chain_offset * cfg.replicas() as u32 + index as u32;
        let [h, beta] = self.chain_params[index];
        let mut g = vec![0.0f32; d];
        let mut e = self.energy_grad_at(x, &mut g, beta);
        if !is_finite_state(x, &g, e) {
            out.frozen = true;
            return out;
        }
        let (mut y, mut gy, mut noise) = (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]);
        let mut mom = vec![0.0f32; d];
        for k in 0..n {
            let step = first + k;
            // Each arm leaves the proposal's log acceptance ratio (None: ULA, always moves).
            let log_alpha = match cfg.kind {
                SamplerKind::Ula => {
                    rng::fill_normals(cfg.seed, chain, step, Stream::ProposalNoise, &mut noise);
                    let s = cfg.noise_scale.unwrap_or((2.0 * h).sqrt());
                    for i in 0..d {
                        let gi = cfg.grad_clamp.map_or(g[i], |c| g[i].clamp(-c, c));
                        let v = x[i] - h * gi + s * noise[i];
                        y[i] = cfg.box_clamp.map_or(v, |(lo, hi)| v.clamp(lo, hi));
                    }
                    let ey = self.energy_grad_at(&y, &mut gy, beta);
                    if !is_finite_state(&y, &gy, ey) {
                        out.frozen = true;
                        break;
                    }
                    x.copy_from_slice(&y);
                    std::mem::swap(&mut g, &mut gy);
                    e = ey;
                    None
                }
                SamplerKind::Mala => {
                    rng::fill_normals(cfg.seed, chain, step, Stream::ProposalNoise, &mut noise);
                    let s = (2.0 * h).sqrt();
                    for i in 0..d {
                        let m = self.dim_scale[i];
                        y[i] = x[i] - h * m * g[i] + s * m.sqrt() * noise[i];
                    }
                    let ey = self.energy_grad_at(&y, &mut gy, beta);
                    let mut log_alpha = -1.0e30f32;
                    if is_finite_state(&y, &gy, ey) {
                        let (mut forward, mut backward) = (0.0f32, 0.0f32);
                        for i in 0..d {
                            let m = self.dim_scale[i];
                            let f = y[i] - x[i] + h * m * g[i];
                            let b = x[i] - y[i] + h * m * gy[i];
                            forward += f * f / m;
                            backward += b * b / m;
                        }
                        log_alpha = beta * (e - ey) + (forward - backward) / (4.0 * h);
                    }
                    Some((log_alpha, ey))
                }
                SamplerKind::Rwmh => {
                    rng::fill_normals(cfg.seed, chain, step, Stream::ProposalNoise, &mut noise);
                    for i in 0..d {
                        y[i] = x[i] + h * self.dim_scale[i] * noise[i];
                    }
                    let ey = self.energy_grad_at(&y, &mut gy, beta);
                    let log_alpha = if is_finite_state(&y, &gy, ey) { beta * (e - ey) } else { -1.0e30 };
                    Some((log_alpha, ey))
                }
                SamplerKind::Hmc => {
                    let u = rng::uniform4(cfg.seed, chain, step, Stream::Accept, 0);
                    let eps = h * (1.0 + cfg.step_jitter * (2.0 * u[1] - 1.0));
                    let mut n_leap = cfg.leapfrog;
                    if cfg.leapfrog_jitter > 0 {
                        let span = 2 * cfg.leapfrog_jitter + 1;
                        n_leap = cfg.leapfrog - cfg.leapfrog_jitter + ((u[2] * span as f32) as u32).min(span - 1);
                    }
                    rng::fill_normals(cfg.seed, chain, step, Stream::Momentum, &mut noise);
                    let mut kinetic0 = 0.0f32;
                    for i in 0..d {
                        mom[i] = noise[i] / self.dim_scale[i].sqrt();
                        kinetic0 += 0.5 * mom[i] * mom[i] * self.dim_scale[i];
                    }
                    y.copy_from_slice(x);
                    gy.copy_from_slice(&g);
                    let end = leapfrog(
                        |q: &[f32], gq: &mut [f32]| self.energy_grad_at(q, gq, beta),
                        &mut y,
                        &mut mom,
                        &mut gy,
                        &self.dim_scale,
                        eps,
                        n_leap,
                    );
                    match end {
                        Some(ey) => {
                            let kinetic1: f32 = (0..d).map(|i| 0.5 * mom[i] * mom[i] * self.dim_scale[i]).sum();
                            Some((beta * (e - ey) + kinetic0 - kinetic1, ey))
                        }
                        None => Some((-1.0e30, e)),
                    }
                }
            };
            if let Some((log_alpha, ey)) = log_alpha {
                out.prob_sum += accept_prob(log_alpha);
                let u = rng::uniform4(cfg.seed, chain, step, Stream::Accept, 0)[0];
                if u.ln() <= log_alpha {
                    x.copy_from_slice(&y);
                    std::mem::swap(&mut g, &mut gy);
                    e = ey;
                    out.accepted += 1;
                }
            }
            if let Some(slot) = trace_slot(cfg, step) {
                out.trace.push((slot, x.to_vec()));
            }
        }
        out.energy = Some(e);
        out
    }

    /// Runs steps `first .. first + n` of every chain (no swaps inside).
    fn run_segment(&mut self, first: u32, n: u32) {
        let d = self.dim;
        let mut state = std::mem::take(&mut self.state);
        let frozen = &self.frozen;
        let outcomes: Vec<ChainOutcome> = state
            .par_chunks_mut(d)
            .enumerate()
            .map(|(i, x)| if frozen[i] { ChainOutcome::default() } else { self.run_chain(i, x, first, n) })
            .collect();
        self.state = state;
        let chains = self.frozen.len();
        for (i, o) in outcomes.into_iter().enumerate() {
            self.accepted[i] += o.accepted;
            self.prob_sums[i] += o.prob_sum;
            self.frozen[i] |= o.frozen;
            if let Some(e) = o.energy {
                self.energies[i] = e;
            }
            for (slot, x) in o.trace {
                let at = (slot * chains + i) * d;
                self.trace[at..at + d].copy_from_slice(&x);
            }
        }
    }

    /// One round of neighbour swaps (twin of `tempering.wgsl`).
    fn swap_round(&mut self, round: u32) {
        let Some(t) = &self.config.tempering else { return };
        let (r_count, d) = (t.replicas(), self.dim);
        let parity = (round % 2) as usize;
        for n in 0..self.frozen.len() / r_count {
            for r in (parity..r_count - 1).step_by(2) {
                let (a, b) = (n * r_count + r, n * r_count + r + 1);
                if self.frozen[a] || self.frozen[b] {
                    continue;
                }
                let log_alpha = (self.chain_params[a][1] - self.chain_params[b][1]) * (self.energies[a] - self.energies[b]);
                let u = rng::uniform4(self.config.seed, self.config.chain_offset + n as u32, round, Stream::Swap, r as u32)[0];
                if u.ln() <= log_alpha {
                    for i in 0..d {
                        self.state.swap(a * d + i, b * d + i);
                    }
                    self.energies.swap(a, b);
                    self.swaps[n * (r_count - 1) + r] += 1;
                }
            }
        }
    }
}

/// `n` leapfrog steps of size `eps` for H = E(q) + 0.5 sum_i p_i^2 inv_mass_i, where `grad`
/// returns E(q) and writes dE/dq; `g` holds dE/dq at the start and is kept current. Returns the
/// energy at the end, or None once q, E or dE/dq stops being finite. The order of operations
/// is the kernel's (shaders/hmc.wgsl); generic so tests can run it in f64.
pub fn leapfrog<T: Real>(
    grad: impl Fn(&[T], &mut [T]) -> T,
    q: &mut [T],
    p: &mut [T],
    g: &mut [T],
    inv_mass: &[T],
    eps: T,
    n: u32,
) -> Option<T> {
    let half = T::from_f32(0.5) * eps;
    for i in 0..q.len() {
        p[i] -= half * g[i];
    }
    let mut e = T::zero();
    for l in 0..n {
        for i in 0..q.len() {
            q[i] += eps * inv_mass[i] * p[i];
        }
        e = grad(q, g);
        if !(e.is_finite() && q.iter().all(|v| v.is_finite()) && g.iter().all(|v| v.is_finite())) {
            return None;
        }
        let kick = if l + 1 == n { half } else { eps };
        for i in 0..q.len() {
            p[i] -= kick * g[i];
        }
    }
    Some(e)
}

/// The trace slot filled after global step `step`, as in the kernels' `record_trace`.
fn trace_slot(cfg: &SamplerConfig, step: u32) -> Option<usize> {
    let done = (step + 1).checked_sub(cfg.trace_start).filter(|&d| d > 0)?;
    (cfg.trace_every > 0 && done % cfg.trace_every == 0 && done / cfg.trace_every <= cfg.trace_slots())
        .then(|| (done / cfg.trace_every - 1) as usize)
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

impl ChainSampler for CpuSampler {
    fn run(&mut self, steps: u32) -> Result<()> {
        let swap_every = self.config.tempering.as_ref().map(|t| t.swap_every);
        for (first, n, swap) in segments(self.steps_done, steps, swap_every) {
            self.run_segment(first, n);
            if let Some(round) = swap {
                self.swap_round(round);
            }
        }
        self.steps_done += steps;
        Ok(())
    }

    fn all_states(&self) -> Result<Vec<f32>> {
        Ok(self.state.clone())
    }

    fn stats(&self) -> Result<ChainStats> {
        Ok(ChainStats {
            accepted: self.accepted.clone(),
            frozen: self.frozen.clone(),
            energies: self.energies.clone(),
            accept_prob_sums: self.prob_sums.clone(),
            swaps: self.swaps.clone(),
        })
    }

    fn all_traces(&self) -> Result<Option<Vec<f32>>> {
        Ok((self.config.trace_every > 0).then(|| self.trace.clone()))
    }

    fn set_step_sizes(&mut self, steps: &[f32]) -> Result<()> {
        super::check_len("step sizes", steps.len(), self.chain_params.len())?;
        self.chain_params.iter_mut().zip(steps).for_each(|(p, &s)| p[0] = s);
        Ok(())
    }

    fn step_sizes(&self) -> Vec<f32> {
        self.chain_params.iter().map(|p| p[0]).collect()
    }

    fn set_dim_scale(&mut self, scale: &[f32]) -> Result<()> {
        super::check_dim_scale(scale, self.dim)?;
        self.dim_scale = scale.to_vec();
        Ok(())
    }

    fn config(&self) -> &SamplerConfig {
        &self.config
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn steps_done(&self) -> u32 {
        self.steps_done
    }

    fn dispatches_per_step(&self) -> f64 {
        0.0
    }

    fn executor(&self) -> String {
        format!("cpu: {} threads", rayon::current_num_threads())
    }
}
