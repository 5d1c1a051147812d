//! The CPU executor: twin of `shaders/sampler/langevin.wgsl`, `hmc.wgsl`, `rwmh.wgsl` and
//! `tempering.wgsl`. The same steps in the same order with the same Philox draws, parallel over
//! chains with rayon.
//!
//! Three schedules ([`Schedule`]): chain-major (each chain runs all its steps alone, scalar
//! code: the reference), lanes (the default for analytic energies: blocks of 16 chains advance
//! together in SIMD registers, every operation of the scalar step on all lanes at once, so each
//! chain is bit for bit what it is alone) and, for energies with a network term, step-major over
//! blocks of chains, where one batched evaluation per step turns the network's layers into
//! GEMMs. Chain-major and batched share the per-chain arithmetic (`propose`, `verdict`,
//! `log_alpha`); chains depend only on (seed, chain), so the batched schedule differs from the
//! others only by the GEMM's summation order.

mod lanes;

use super::config::{SamplerConfig, SamplerKind, check_initial, segments};
use super::{ChainSampler, ChainStats, langevin};
use crate::Result;
use crate::energy::{Energy, EnergyInternals};
use crate::num::Real;
use crate::num::lanes::{LANES, Lanes};
use crate::rng::{self, Stream};
use rayon::prelude::*;

pub struct CpuSampler {
    /// Settings, dimension, per-chain (step size, beta), steps taken.
    core: super::ChainState,
    energy: Energy,
    /// All sampler chains (base chain n's replica r at n * R + r), [chains, dim].
    state: Vec<f32>,
    dim_scale: Vec<f32>,
    accepted: Vec<u32>,
    frozen: Vec<bool>,
    prob_sums: Vec<f32>,
    energies: Vec<f32>,
    /// [slots, chains, dim]
    trace: Vec<f32>,
    /// [base chains, R - 1] accepted swaps per neighbour pair.
    swaps: Vec<u32>,
    schedule: Schedule,
}

/// How the CPU executor walks chains and steps. Chains depend only on (seed, chain), so all
/// three give the same chains: chain-major and lanes bit for bit, batched up to the GEMM's
/// summation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Each chain runs all its steps alone, in scalar code: the reference the tests hold the
    /// other schedules to (only they choose it, through `CpuSamplerInternals::with_schedule`).
    #[cfg(any(test, feature = "internals"))]
    ChainMajor,
    /// Blocks of [`LANES`] chains advance together, each operation on all lanes at once (SIMD
    /// across chains, with structure-of-arrays states): the default for analytic energies.
    Lanes,
    /// Step-major blocks with one batched evaluation per step, which turns a network's layers
    /// into GEMMs: the default for energies with a network term.
    Batched,
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

impl ChainOutcome {
    /// Keeps x if `step` fills a trace slot.
    fn record(&mut self, cfg: &SamplerConfig, step: u32, x: &[f32]) {
        if let Some(slot) = trace_slot(cfg, step) {
            self.trace.push((slot, x.to_vec()));
        }
    }
}

/// How a step ends for a chain.
enum Verdict {
    Move,
    Stay,
    /// ULA's proposal was not finite: the chain stops at its last finite state.
    Freeze,
}

/// A sampler chain's constants: its Philox chain index, step size and inverse temperature.
#[derive(Clone, Copy)]
struct Chain {
    id: u32,
    h: f32,
    beta: f32,
}

/// HMC's per-proposal draws (unused by the other kinds).
#[derive(Clone, Copy, Default)]
struct Trajectory {
    eps: f32,
    n_leap: u32,
    kinetic0: f32,
}

/// A chain's random draws for a window of steps, made ahead [`rng::LANES`] counters at a time
/// ([`rng::fill_normals_steps`]): the proposal noise (HMC: the momentum) and the accept
/// uniforms, bit-identical to drawing them step by step. Small states thus get vector speed.
struct Draws {
    dim: usize,
    /// [window, dim]
    noise: Vec<f32>,
    /// [window]; empty for ULA, which draws no uniforms.
    accept: Vec<[f32; 4]>,
    first: u32,
    len: u32,
}

impl Draws {
    /// Values per window: enough steps for full lane blocks, few enough for the L1 cache.
    const WINDOW_VALUES: usize = 2048;

    fn new(cfg: &SamplerConfig, dim: usize) -> Self {
        let window = (Self::WINDOW_VALUES / dim.max(1)).clamp(1, 64);
        let accept = if cfg.kind == SamplerKind::Ula { 0 } else { window };
        Draws { dim, noise: vec![0.0; window * dim], accept: vec![[0.0; 4]; accept], first: 0, len: 0 }
    }

    /// The noise and accept uniforms of `step` (of a run ending before `end`), refilling the
    /// window from `step` when it is not inside.
    fn at(&mut self, cfg: &SamplerConfig, chain: u32, step: u32, end: u32) -> (&[f32], [f32; 4]) {
        if !(self.first..self.first + self.len).contains(&step) {
            let window = self.noise.len() / self.dim.max(1);
            let len = (end - step).min(window as u32).max(1);
            let noise = &mut self.noise[..len as usize * self.dim];
            let stream = if cfg.kind == SamplerKind::Hmc { Stream::Momentum } else { Stream::ProposalNoise };
            rng::fill_normals_steps(cfg.seed, chain, step, stream, self.dim, noise);
            if !self.accept.is_empty() {
                rng::fill_uniforms_steps(cfg.seed, chain, step, Stream::Accept, &mut self.accept[..len as usize]);
            }
            (self.first, self.len) = (step, len);
        }
        let k = (step - self.first) as usize;
        (&self.noise[k * self.dim..(k + 1) * self.dim], self.accept.get(k).copied().unwrap_or_default())
    }
}

/// A proposal after its evaluation: state y, energy ey, beta-scaled gradient gy, HMC's final
/// momentum p; `finite` is false where y, ey or gy (or an HMC trajectory) stopped being finite.
struct Proposal<'a> {
    y: &'a [f32],
    gy: &'a [f32],
    ey: f32,
    p: &'a [f32],
    traj: Trajectory,
    finite: bool,
}

fn is_finite_state<T: Real>(x: &[T], g: &[T], e: T) -> bool {
    // A fold without early exit, so the check vectorises (non-finite states are rare).
    let all_finite = |v: &[T]| v.iter().fold(true, |ok, v| ok & v.is_finite());
    e.is_finite() && all_finite(x) && all_finite(g)
}

/// [`is_finite_state`] for each lane.
#[inline(always)]
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
        let chain_params = config.chain_params(base);
        Ok(Self {
            energy: energy.clone(),
            state,
            dim_scale: vec![1.0; dim],
            accepted: vec![0; chains],
            frozen: vec![false; chains],
            prob_sums: vec![0.0; chains],
            energies: vec![0.0; chains],
            trace: vec![0.0; config.trace_slots() as usize * chains * dim],
            swaps: vec![0; base * (r - 1)],
            schedule: if energy.is_analytic() { Schedule::Lanes } else { Schedule::Batched },
            core: super::ChainState::new(config, dim, chain_params),
        })
    }

    fn chain(&self, index: usize) -> Chain {
        let [h, beta] = self.core.chain_params[index];
        Chain { id: self.core.config.chain_offset * self.core.config.replicas() as u32 + index as u32, h, beta }
    }

    /// E(x), with g set to beta * grad E(x) (as the kernels' `energy_grad_at`).
    #[cfg(any(test, feature = "internals"))]
    fn energy_grad_at(&self, x: &[f32], g: &mut [f32], beta: f32) -> f32 {
        let e = self.energy.energy_grad(x, g);
        g.iter_mut().for_each(|v| *v *= beta);
        e
    }

    /// [`Self::energy_grad_at`] for the rows of a block, in one batched evaluation.
    fn energy_grad_block(&self, chains: &[Chain], xs: &[f32], gs: &mut [f32], es: &mut [f32]) {
        self.energy.energy_grad_batch(xs, gs, es);
        for (g, c) in gs.chunks_exact_mut(self.core.dim).zip(chains) {
            g.iter_mut().for_each(|v| *v *= c.beta);
        }
    }

    /// The proposal from x (gradient g) given the step's draws (`noise`: standard normals;
    /// `u`: accept uniforms): y for ULA, MALA and RWMH; for HMC the momentum p and the
    /// trajectory's length and step, with y = x before the first drift.
    // propose, verdict and log_alpha are inlined: on cheap energies their call overhead shows.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn propose(
        &self,
        c: Chain,
        noise: &[f32],
        u: [f32; 4],
        x: &[f32],
        g: &[f32],
        y: &mut [f32],
        p: &mut [f32],
    ) -> Trajectory {
        let cfg = &self.core.config;
        let (h, scale) = (c.h, &self.dim_scale);
        if cfg.kind == SamplerKind::Hmc {
            let mut traj = self.trajectory(h, u);
            for i in 0..x.len() {
                p[i] = if scale[i] > 0.0 { noise[i] / scale[i].sqrt() } else { 0.0 };
                traj.kinetic0 += 0.5 * p[i] * p[i] * scale[i];
            }
            y.copy_from_slice(x);
            return traj;
        }
        match cfg.kind {
            SamplerKind::Ula => {
                let s = langevin::ula_noise_std(cfg.noise_scale.unwrap_or(-1.0), h);
                let clamp = cfg.grad_clamp.unwrap_or(0.0);
                for i in 0..x.len() {
                    y[i] = langevin::ula_coordinate(x[i], g[i], h, s, clamp, noise[i], cfg.box_clamp, scale[i]);
                }
            }
            SamplerKind::Mala => {
                let s = (2.0 * h).sqrt();
                for i in 0..x.len() {
                    y[i] = langevin::mala_proposal(x[i], g[i], h, scale[i], s, noise[i]);
                }
            }
            SamplerKind::Rwmh | SamplerKind::Hmc /* returned above */ => {
                for i in 0..x.len() {
                    y[i] = x[i] + h * scale[i] * noise[i];
                }
            }
        }
        Trajectory::default()
    }

    /// HMC's jittered leapfrog step and length for step size h and the step's accept uniforms
    /// (kinetic0 still 0).
    #[inline(always)]
    fn trajectory(&self, h: f32, u: [f32; 4]) -> Trajectory {
        let cfg = &self.core.config;
        let eps = h * (1.0 + cfg.step_jitter * (2.0 * u[1] - 1.0));
        let mut n_leap = cfg.leapfrog;
        if cfg.leapfrog_jitter > 0 {
            let span = 2 * cfg.leapfrog_jitter + 1;
            n_leap = cfg.leapfrog - cfg.leapfrog_jitter + ((u[2] * span as f32) as u32).min(span - 1);
        }
        Trajectory { eps, n_leap, kinetic0: 0.0 }
    }

    /// The end of `step` for a chain at x (gradient g, energy e) given its evaluated proposal:
    /// ULA moves, or freezes on a non-finite proposal; the others pass the Metropolis test with
    /// the step's accept uniform `u`, counted in `out`. The caller moves the chain.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn verdict(&self, c: Chain, u: f32, x: &[f32], g: &[f32], e: f32, q: &Proposal, out: &mut ChainOutcome) -> Verdict {
        let cfg = &self.core.config;
        if cfg.kind == SamplerKind::Ula {
            out.frozen = !q.finite;
            return if q.finite { Verdict::Move } else { Verdict::Freeze };
        }
        let log_alpha = if q.finite { self.log_alpha(c, x, g, e, q) } else { -1.0e30 };
        out.prob_sum += accept_prob(log_alpha);
        let accept = u.ln() <= log_alpha;
        out.accepted += accept as u32;
        if accept { Verdict::Move } else { Verdict::Stay }
    }

    /// The log acceptance ratio of a finite proposal (Metropolis-adjusted kinds).
    #[inline(always)]
    fn log_alpha(&self, c: Chain, x: &[f32], g: &[f32], e: f32, q: &Proposal) -> f32 {
        let (h, beta, scale) = (c.h, c.beta, &self.dim_scale);
        match self.core.config.kind {
            SamplerKind::Mala => {
                let (mut forward, mut backward) = (0.0f32, 0.0f32);
                for i in 0..x.len() {
                    let (f, b) = langevin::mala_q_terms(x[i], q.y[i], g[i], q.gy[i], h, scale[i]);
                    forward += f;
                    backward += b;
                }
                langevin::mala_log_alpha(beta, e, q.ey, forward, backward, h)
            }
            SamplerKind::Rwmh => beta * (e - q.ey),
            SamplerKind::Hmc => {
                let mut kinetic1 = 0.0f32;
                for i in 0..x.len() {
                    kinetic1 += 0.5 * q.p[i] * q.p[i] * scale[i];
                }
                beta * (e - q.ey) + q.traj.kinetic0 - kinetic1
            }
            SamplerKind::Ula => 0.0,
        }
    }

    /// Runs global steps `first .. first + n` of sampler chain `index` (chain-major).
    #[cfg(any(test, feature = "internals"))]
    fn run_chain(&self, index: usize, x: &mut [f32], first: u32, n: u32) -> ChainOutcome {
        let mut out = ChainOutcome::default();
        let d = self.core.dim;
        let c = self.chain(index);
        let mut g = vec![0.0f32; d];
        let mut e = self.energy_grad_at(x, &mut g, c.beta);
        if !is_finite_state(x, &g, e) {
            out.frozen = true;
            return out;
        }
        let (mut y, mut gy, mut p) = (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]);
        let mut draws = Draws::new(&self.core.config, d);
        for step in first..first + n {
            let (noise, u) = draws.at(&self.core.config, c.id, step, first + n);
            let traj = self.propose(c, noise, u, x, &g, &mut y, &mut p);
            let (ey, finite) = if self.core.config.kind == SamplerKind::Hmc {
                gy.copy_from_slice(&g);
                let grad = |q: &[f32], gq: &mut [f32]| self.energy_grad_at(q, gq, c.beta);
                match leapfrog(grad, &mut y, &mut p, &mut gy, &self.dim_scale, traj.eps, traj.n_leap) {
                    Some(ey) => (ey, true),
                    None => (e, false),
                }
            } else {
                let ey = self.energy_grad_at(&y, &mut gy, c.beta);
                (ey, is_finite_state(&y, &gy, ey))
            };
            let q = Proposal { y: &y, gy: &gy, ey, p: &p, traj, finite };
            match self.verdict(c, u[0], x, &g, e, &q, &mut out) {
                Verdict::Freeze => break,
                Verdict::Move => {
                    x.copy_from_slice(&y);
                    std::mem::swap(&mut g, &mut gy);
                    e = ey;
                }
                Verdict::Stay => {}
            }
            out.record(&self.core.config, step, x);
        }
        out.energy = Some(e);
        out
    }

    /// Runs global steps `first .. first + n` of the chains `start ..` whose states are the rows
    /// of `xs`, step-major: each step draws every live chain's proposal, evaluates the block in
    /// one batched call (HMC: one per leapfrog step), then finishes each chain.
    fn run_block(&self, start: usize, xs: &mut [f32], first: u32, n: u32) -> Vec<ChainOutcome> {
        let d = self.core.dim;
        let rows = xs.len() / d;
        let row = |j: usize| j * d..(j + 1) * d;
        let chains: Vec<Chain> = (start..start + rows).map(|i| self.chain(i)).collect();
        let mut out: Vec<ChainOutcome> = (0..rows).map(|_| ChainOutcome::default()).collect();
        let (mut g, mut e) = (vec![0.0f32; rows * d], vec![0.0f32; rows]);
        self.energy_grad_block(&chains, xs, &mut g, &mut e);
        // Chains that started frozen (or freeze here) stay in the batch, unmoved and ignored.
        let ran: Vec<bool> =
            (0..rows).map(|j| !self.frozen[start + j] && is_finite_state(&xs[row(j)], &g[row(j)], e[j])).collect();
        for (j, o) in out.iter_mut().enumerate() {
            o.frozen = !self.frozen[start + j] && !ran[j];
        }
        let mut live = ran.clone();
        let (mut y, mut gy, mut p) = (vec![0.0f32; rows * d], vec![0.0f32; rows * d], vec![0.0f32; rows * d]);
        let (mut ey, mut finite) = (vec![0.0f32; rows], vec![false; rows]);
        let mut traj = vec![Trajectory::default(); rows];
        let mut draws: Vec<Draws> = (0..rows).map(|_| Draws::new(&self.core.config, d)).collect();
        let mut accept_u = vec![0.0f32; rows];
        for step in first..first + n {
            if !live.contains(&true) {
                break;
            }
            for j in (0..rows).filter(|&j| live[j]) {
                let (noise, u) = draws[j].at(&self.core.config, chains[j].id, step, first + n);
                accept_u[j] = u[0];
                traj[j] = self.propose(chains[j], noise, u, &xs[row(j)], &g[row(j)], &mut y[row(j)], &mut p[row(j)]);
            }
            if self.core.config.kind == SamplerKind::Hmc {
                self.leapfrog_block(&chains, &live, &traj, &g, &mut y, &mut p, &mut gy, &mut ey, &mut finite);
            } else {
                self.energy_grad_block(&chains, &y, &mut gy, &mut ey);
                for j in 0..rows {
                    finite[j] = is_finite_state(&y[row(j)], &gy[row(j)], ey[j]);
                }
            }
            for j in 0..rows {
                if !live[j] {
                    continue;
                }
                let q = Proposal {
                    y: &y[row(j)],
                    gy: &gy[row(j)],
                    ey: ey[j],
                    p: &p[row(j)],
                    traj: traj[j],
                    finite: finite[j],
                };
                match self.verdict(chains[j], accept_u[j], &xs[row(j)], &g[row(j)], e[j], &q, &mut out[j]) {
                    Verdict::Freeze => {
                        live[j] = false;
                        continue;
                    }
                    Verdict::Move => {
                        xs[row(j)].copy_from_slice(&y[row(j)]);
                        g[row(j)].copy_from_slice(&gy[row(j)]);
                        e[j] = ey[j];
                    }
                    Verdict::Stay => {}
                }
                out[j].record(&self.core.config, step, &xs[row(j)]);
            }
        }
        for j in (0..rows).filter(|&j| ran[j]) {
            out[j].energy = Some(e[j]);
        }
        out
    }

    /// The leapfrog trajectories of a block's live chains, interleaved so that each of their
    /// steps is one batched evaluation: [`leapfrog`]'s arithmetic, chain by chain. On return y,
    /// p, gy and ey hold each trajectory's end; `finite` says which stayed finite.
    #[allow(clippy::too_many_arguments)]
    fn leapfrog_block(
        &self,
        chains: &[Chain],
        live: &[bool],
        traj: &[Trajectory],
        g: &[f32],
        y: &mut [f32],
        p: &mut [f32],
        gy: &mut [f32],
        ey: &mut [f32],
        finite: &mut [bool],
    ) {
        let d = self.core.dim;
        let row = |j: usize| j * d..(j + 1) * d;
        let mut moving = live.to_vec();
        for j in (0..chains.len()).filter(|&j| live[j]) {
            finite[j] = true;
            kick(&mut p[row(j)], &g[row(j)], 0.5 * traj[j].eps);
        }
        let longest = (0..chains.len()).filter(|&j| live[j]).map(|j| traj[j].n_leap).max().unwrap_or(0);
        for l in 0..longest {
            for j in (0..chains.len()).filter(|&j| moving[j]) {
                drift(&mut y[row(j)], &p[row(j)], &self.dim_scale, traj[j].eps);
            }
            // Rows whose trajectory ended are evaluated again at the same point, which gives the
            // same values: a row's result depends on that row only.
            self.energy_grad_block(chains, y, gy, ey);
            for j in 0..chains.len() {
                if !moving[j] {
                    continue;
                }
                if !is_finite_state(&y[row(j)], &gy[row(j)], ey[j]) {
                    (finite[j], moving[j]) = (false, false);
                    continue;
                }
                let (eps, last) = (traj[j].eps, l + 1 == traj[j].n_leap);
                kick(&mut p[row(j)], &gy[row(j)], if last { 0.5 * eps } else { eps });
                moving[j] = !last;
            }
        }
    }

    /// Chains per block of the batched schedule: a few blocks per thread for balance, enough
    /// rows for efficient GEMMs, and a block's activations small enough for the cache.
    fn block_rows(&self) -> usize {
        self.frozen.len().div_ceil(2 * rayon::current_num_threads()).clamp(16, 128)
    }

    /// Runs steps `first .. first + n` of every chain (no swaps inside).
    fn run_segment(&mut self, first: u32, n: u32) {
        let d = self.core.dim;
        let mut state = std::mem::take(&mut self.state);
        let outcomes: Vec<ChainOutcome> = match self.schedule {
            Schedule::Batched => {
                let rows = self.block_rows();
                state
                    .par_chunks_mut(rows * d)
                    .enumerate()
                    .flat_map_iter(|(k, xs)| self.run_block(k * rows, xs, first, n))
                    .collect()
            }
            Schedule::Lanes => state
                .par_chunks_mut(LANES * d)
                .enumerate()
                .flat_map_iter(|(k, xs)| self.run_lanes(k * LANES, xs, first, n))
                .collect(),
            #[cfg(any(test, feature = "internals"))]
            Schedule::ChainMajor => {
                let frozen = &self.frozen;
                state
                    .par_chunks_mut(d)
                    .enumerate()
                    .map(|(i, x)| if frozen[i] { ChainOutcome::default() } else { self.run_chain(i, x, first, n) })
                    .collect()
            }
        };
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
        let Some(t) = &self.core.config.tempering else { return };
        let (r_count, d) = (t.replicas(), self.core.dim);
        let parity = (round % 2) as usize;
        for n in 0..self.frozen.len() / r_count {
            for r in (parity..r_count - 1).step_by(2) {
                let (a, b) = (n * r_count + r, n * r_count + r + 1);
                if self.frozen[a] || self.frozen[b] {
                    continue;
                }
                let log_alpha = (self.core.chain_params[a][1] - self.core.chain_params[b][1])
                    * (self.energies[a] - self.energies[b]);
                let u = rng::uniform4(
                    self.core.config.seed,
                    self.core.config.chain_offset + n as u32,
                    round,
                    Stream::Swap,
                    r as u32,
                )[0];
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
/// is the kernel's (shaders/sampler/hmc.wgsl); generic so tests can run it in f64.
#[cfg(any(test, feature = "internals"))]
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
    kick(p, g, half);
    let mut e = T::zero();
    for l in 0..n {
        drift(q, p, inv_mass, eps);
        e = grad(q, g);
        if !is_finite_state(q, g, e) {
            return None;
        }
        kick(p, g, if l + 1 == n { half } else { eps });
    }
    Some(e)
}

/// p -= k dE/dq: a leapfrog kick (shared by [`leapfrog`] and the batched schedule).
fn kick<T: Real>(p: &mut [T], g: &[T], k: T) {
    for i in 0..p.len() {
        p[i] -= k * g[i];
    }
}

/// q += eps M^-1 p: a leapfrog drift.
fn drift<T: Real>(q: &mut [T], p: &[T], inv_mass: &[T], eps: T) {
    for i in 0..q.len() {
        q[i] += eps * inv_mass[i] * p[i];
    }
}

/// The trace slot filled after global step `step`, as in the kernels' `record_trace`.
fn trace_slot(cfg: &SamplerConfig, step: u32) -> Option<usize> {
    let done = (step + 1).checked_sub(cfg.trace_start).filter(|&d| d > 0)?;
    (cfg.trace_every > 0 && done % cfg.trace_every == 0 && done / cfg.trace_every <= cfg.trace_slots())
        .then(|| (done / cfg.trace_every - 1) as usize)
}

/// What the crate's tests ask of a [`CpuSampler`] beyond its public methods (they name it
/// through the `internals` feature).
#[cfg(any(test, feature = "internals"))]
pub trait CpuSamplerInternals: Sized {
    /// Forces a schedule, for tests that compare them; [`Schedule::Lanes`] needs an analytic
    /// energy.
    fn with_schedule(self, schedule: Schedule) -> Result<Self>;
}

#[cfg(any(test, feature = "internals"))]
impl CpuSamplerInternals for CpuSampler {
    fn with_schedule(mut self, schedule: Schedule) -> Result<Self> {
        if schedule == Schedule::Lanes && !self.energy.is_analytic() {
            return Err(crate::Error::invalid("CPU schedule", "the lane schedule runs analytic energies only"));
        }
        self.schedule = schedule;
        Ok(self)
    }
}

impl ChainSampler for CpuSampler {
    fn run(&mut self, steps: u32) -> Result<()> {
        let swap_every = self.core.config.tempering.as_ref().map(|t| t.swap_every);
        for (first, n, swap) in segments(self.core.steps_done, steps, swap_every) {
            self.run_segment(first, n);
            if let Some(round) = swap {
                self.swap_round(round);
            }
        }
        self.core.steps_done += steps;
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
        Ok((self.core.config.trace_every > 0).then(|| self.trace.clone()))
    }

    fn set_step_sizes(&mut self, steps: &[f32]) -> Result<()> {
        self.core.set_step_sizes(steps)
    }

    fn set_noise_scale(&mut self, scale: Option<f32>) -> Result<()> {
        self.core.set_noise_scale(scale)
    }

    fn set_dim_scale(&mut self, scale: &[f32]) -> Result<()> {
        super::check_dim_scale(scale, self.core.dim)?;
        self.dim_scale = scale.to_vec();
        Ok(())
    }

    fn chain_state(&self) -> &super::ChainState {
        &self.core
    }

    fn dispatches_per_step(&self) -> f64 {
        0.0
    }

    fn executor(&self) -> String {
        format!("cpu: {} threads", rayon::current_num_threads())
    }
}
