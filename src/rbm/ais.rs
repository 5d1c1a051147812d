//! Annealed importance sampling of log Z (Neal 2001; Salakhutdinov & Murray 2008): the kernel
//! `shaders/rbm/rbm_ais.wgsl`, its launchers [`ais_gpu`] / [`reverse_ais_gpu`] and CPU twins
//! [`ais_cpu`] / [`reverse_ais_cpu`], which make the same Philox draws (see the shader's header
//! for the counters).
//!
//! One forward run set can flatter a model: from a base-rate model near the data it never
//! reaches a high-entropy mode the data do not visit, and reports a log Z tens of nats too low
//! with a small standard error (issue 15). So the default evaluation ([`report`], run by
//! `eval::Executor::log_z_ais`) anneals from two bases ([`Base`]), takes the larger estimate,
//! and checks it from above with reverse AIS from samples of the model ([`Direction::Reverse`]).

pub use crate::ais::{AisResult, BetaSchedule, Direction, summarize};

/// The report of an RBM's AIS: its forward estimates are named by their [`Base`].
pub type AisReport = crate::ais::AisReport<Base>;

/// [`crate::ais::report`] of an RBM's estimates.
pub fn report(forward: Vec<(Base, AisResult)>, reverse: Option<(String, AisResult)>) -> Result<AisReport> {
    crate::ais::report(forward, reverse)
}

use super::gpu::kernel;
use super::{Rbm, Visible, sigmoid, softplus, softplus_f64};
use crate::gpu::launch::{ParamSlots, bind_group, check_fits, dispatch};
use crate::gpu::{ContextInternals, GpuContext};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use rayon::prelude::*;

/// The base-rate model's visible biases fitted to data: logit of the smoothed pixel means
/// (Bernoulli; (count + 1) / (rows + 2) keeps them finite), or the means (Gaussian).
pub fn base_rate_biases(data: &[f32], n_vis: usize, visible: Visible) -> Result<Vec<f32>> {
    if n_vis == 0 || data.is_empty() || !data.len().is_multiple_of(n_vis) {
        return Err(Error::invalid(
            "AIS base-rate data",
            format!("{} values are not whole rows of {n_vis}", data.len()),
        ));
    }
    let rows = data.len() / n_vis;
    let mut sums = vec![0.0f64; n_vis];
    for row in data.chunks(n_vis) {
        sums.iter_mut().zip(row).for_each(|(s, &x)| *s += x as f64);
    }
    Ok(sums
        .iter()
        .map(|&s| match visible {
            Visible::Bernoulli => {
                let p = (s + 1.0) / (rows as f64 + 2.0);
                (p / (1.0 - p)).ln() as f32
            }
            Visible::Gaussian => (s / rows as f64) as f32,
        })
        .collect())
}

/// Fewest temperature steps an estimate may use: with fewer, neighbouring intermediate
/// distributions are so far apart that a run's weight is one lucky draw and the standard error
/// says nothing (the 20-hidden MNIST model needs thousands).
pub const MIN_INTERVALS: usize = 100;
/// Most runs of one estimate: the GPU's per-dispatch workgroup limit, and far more than an
/// estimate needs. Checked before anything is allocated.
pub const MAX_RUNS: usize = 65535;

#[derive(Clone, Debug)]
pub struct AisConfig {
    /// Runs of this estimate (or of this shard of it).
    pub runs: usize,
    pub schedule: BetaSchedule,
    pub seed: u64,
    /// Index of the first run: runs are first_run.. first_run + runs - 1, each drawing the
    /// random numbers of its index, so shards of a run set join into the whole set.
    pub first_run: u32,
}

impl AisConfig {
    /// The same run set under the k-th seed derived from this one (k = 0: this seed), so that
    /// the estimates of one report (two forward bases, the reverse check and its start states)
    /// each draw their own random numbers.
    pub fn derived(&self, k: u64) -> AisConfig {
        AisConfig { seed: self.seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15)), ..self.clone() }
    }

    /// Checks the run count and the schedule, naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.runs < 2 || self.runs > MAX_RUNS {
            return Err(Error::invalid(
                "AIS runs",
                format!("{} runs: need 2 (for a standard error) to {MAX_RUNS}", self.runs),
            ));
        }
        let n = self.schedule.intervals();
        if n < MIN_INTERVALS {
            return Err(Error::invalid(
                "AIS temperatures",
                format!(
                    "{n} steps from the base to the model are too few to mean anything; use at least {MIN_INTERVALS} (thousands for models trained on real data)"
                ),
            ));
        }
        Ok(())
    }
}

/// Bytes of run state (visible, hidden and pre-activation rows, weights) that `runs` runs of an
/// n_vis x n_hid model hold: what a refusal of too many runs quotes.
pub fn state_bytes(runs: usize, n_vis: usize, n_hid: usize) -> u64 {
    runs as u64 * ((n_vis as u64 + 2 * n_hid as u64) * 4 + 8)
}

/// The base model AIS starts from (forward direction): independent visibles with the given
/// biases, hidden units free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// Visible biases fitted to the data's pixel means ([`base_rate_biases`]): close to the
    /// data, so it misses modes of the model far from the data.
    BaseRate,
    /// Zero visible biases (Bernoulli(1/2) or N(0, 1) visibles): maximum entropy, so it reaches
    /// high-entropy modes the data never visit.
    Uniform,
}

impl crate::ais::Named for Base {
    fn name(&self) -> &str {
        Base::name(*self)
    }
}

impl Base {
    pub fn name(self) -> &'static str {
        match self {
            Base::BaseRate => "base-rate",
            Base::Uniform => "uniform",
        }
    }

    /// This base's visible biases for an RBM with `n_vis` visibles (`data`: training rows).
    pub fn biases(self, data: &[f32], n_vis: usize, visible: Visible) -> Result<Vec<f32>> {
        match self {
            Base::BaseRate => base_rate_biases(data, n_vis, visible),
            Base::Uniform => Ok(vec![0.0; n_vis]),
        }
    }
}

/// log Z of the base-rate model (with the RBM's hidden units free: + n_hid log 2).
pub fn log_z_base(base: &[f32], n_hid: usize, visible: Visible) -> f64 {
    let hid = n_hid as f64 * std::f64::consts::LN_2;
    match visible {
        Visible::Bernoulli => base.iter().map(|&a| softplus_f64(a as f64)).sum::<f64>() + hid,
        Visible::Gaussian => {
            base.iter().map(|&a| 0.5 * (a as f64).powi(2)).sum::<f64>()
                + 0.5 * base.len() as f64 * (2.0 * std::f64::consts::PI).ln()
                + hid
        }
    }
}

/// Where the runs start: draws from the base (forward) or given samples of the model (reverse).
#[derive(Clone, Copy, Debug)]
enum Start<'a> {
    Base,
    Model(&'a [f32]),
}

/// The temperatures in the order the runs visit them.
fn check(rbm: &Rbm, base: &[f32], config: &AisConfig, start: Start) -> Result<Vec<f32>> {
    rbm.check_finite()?;
    config.validate()?;
    if base.len() != rbm.n_vis || base.iter().any(|b| !b.is_finite()) {
        return Err(Error::invalid("AIS base biases", format!("need {} finite values, got {}", rbm.n_vis, base.len())));
    }
    let mut betas = config.schedule.betas();
    if betas.len() < 2 || betas.windows(2).any(|w| w[1] < w[0]) || betas[0] != 0.0 || betas.last() != Some(&1.0) {
        return Err(Error::invalid("AIS schedule", "betas must increase from 0 to 1 in at least one step"));
    }
    if let Start::Model(states) = start {
        if states.len() != config.runs * rbm.n_vis || states.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(
                "reverse AIS start states",
                format!(
                    "need {} runs x {} visibles of finite values, got {} values",
                    config.runs,
                    rbm.n_vis,
                    states.len()
                ),
            ));
        }
        betas.reverse();
    }
    Ok(betas)
}

/// Forward AIS on the CPU, the twin of the kernels: the same draws, f32 arithmetic,
/// Kahan-summed weights.
pub fn ais_cpu(rbm: &Rbm, base: &[f32], config: &AisConfig) -> Result<AisResult> {
    anneal_cpu(rbm, base, config, Start::Base)
}

/// Reverse AIS on the CPU from `samples` (runs x n_vis visible states of the model): the
/// twin of [`reverse_ais_gpu`].
pub fn reverse_ais_cpu(rbm: &Rbm, base: &[f32], config: &AisConfig, samples: &[f32]) -> Result<AisResult> {
    anneal_cpu(rbm, base, config, Start::Model(samples))
}

fn anneal_cpu(rbm: &Rbm, base: &[f32], config: &AisConfig, start: Start) -> Result<AisResult> {
    let betas = check(rbm, base, config, start)?;
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (w, b, c) = (rbm.w(), rbm.b(), rbm.c());
    let gaussian = rbm.visible == Visible::Gaussian;
    let seed = config.seed;
    let log_weights: Vec<f64> = (0..config.runs)
        .into_par_iter()
        .map(|r| {
            let chain = config.first_run + r as u32;
            let mut v = vec![0.0f32; nv];
            match start {
                Start::Model(states) => v.copy_from_slice(&states[r * nv..(r + 1) * nv]),
                Start::Base => {
                    for (q, block) in v.chunks_mut(4).enumerate() {
                        if gaussian {
                            let n = rng::normal4(seed, chain, 0, Stream::Init, q as u32);
                            block.iter_mut().enumerate().for_each(|(k, x)| *x = base[q * 4 + k] + n[k]);
                        } else {
                            let u = rng::uniform4(seed, chain, 0, Stream::Init, q as u32);
                            block
                                .iter_mut()
                                .enumerate()
                                .for_each(|(k, x)| *x = (u[k] < sigmoid(base[q * 4 + k])) as u32 as f32);
                        }
                    }
                }
            }
            let mut h = vec![0.0f32; nh];
            let mut act = vec![0.0f32; nh];
            let (mut sum, mut comp) = (0.0f32, 0.0f32);
            let last = betas.len() - 1;
            for k in 1..=last {
                let (beta, beta_prev) = (betas[k], betas[k - 1]);
                let step = k as u32;
                for j in 0..nh {
                    let x = c[j] + super::cpu::dot4(&w[j * nv..(j + 1) * nv], &v);
                    act[j] = x;
                    let u = super::cpu::gibbs_uniform(seed, chain, 2 * step, j);
                    h[j] = (u < sigmoid(beta * x)) as u32 as f32;
                }
                let mut bv = 0.0f32;
                for i in 0..nv {
                    bv += (b[i] - base[i]) * v[i];
                }
                let mut delta = (beta - beta_prev) * bv;
                for &x in &act {
                    delta += softplus(beta * x) - softplus(beta_prev * x);
                }
                let y = delta - comp;
                let t = sum + y;
                comp = (t - sum) - y;
                sum = t;
                if k < last {
                    let mut a = vec![0.0f32; nv];
                    for (j, &hj) in h.iter().enumerate() {
                        if hj != 0.0 {
                            a.iter_mut().zip(&w[j * nv..(j + 1) * nv]).for_each(|(a, &wji)| *a += wji * hj);
                        }
                    }
                    for (q, block) in v.chunks_mut(4).enumerate() {
                        let vis_step = 2 * step + 1;
                        if gaussian {
                            let n = rng::normal4(seed, chain, vis_step, Stream::Gibbs, q as u32);
                            for (kk, x) in block.iter_mut().enumerate() {
                                let i = q * 4 + kk;
                                *x = (1.0 - beta) * base[i] + beta * (b[i] + a[i]) + n[kk];
                            }
                        } else {
                            let u = rng::uniform4(seed, chain, vis_step, Stream::Gibbs, q as u32);
                            for (kk, x) in block.iter_mut().enumerate() {
                                let i = q * 4 + kk;
                                *x = (u[kk] < sigmoid((1.0 - beta) * base[i] + beta * (b[i] + a[i]))) as u32 as f32;
                            }
                        }
                    }
                }
            }
            sum as f64
        })
        .collect();
    summarize(log_weights, log_z_base(base, nh, rbm.visible), direction(start))
}

fn direction(start: Start) -> Direction {
    match start {
        Start::Base => Direction::Forward,
        Start::Model(_) => Direction::Reverse,
    }
}

/// Mirrors `Params` in rbm_ais.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct AisParams {
    rows: u32,
    n_vis: u32,
    n_hid: u32,
    step: u32,
    seed: [u32; 2],
    beta: f32,
    beta_prev: f32,
    chain_offset: u32,
    gaussian: u32,
    _pad: [u32; 2],
}

#[cfg(any(test, feature = "internals"))]
/// The params structs mirrored from the WGSL, for tests/layouts.rs.
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        AisParams,
        "rbm/rbm_ais.wgsl",
        "Params",
        [rows, n_vis, n_hid, step, seed, beta, beta_prev, chain_offset, gaussian]
    )]
}

/// Temperatures recorded per submit (three dispatches each).
const BETAS_PER_SUBMIT: usize = 128;

/// Forward AIS with all runs in parallel on the GPU; reads back only the final log weights.
pub fn ais_gpu(ctx: &GpuContext, rbm: &Rbm, base: &[f32], config: &AisConfig) -> Result<AisResult> {
    anneal_gpu(ctx, rbm, base, config, Start::Base)
}

/// Reverse AIS on the GPU from `samples` (runs x n_vis visible states of the model), which
/// become the runs' first states in place of `ais_init`'s base draws.
pub fn reverse_ais_gpu(
    ctx: &GpuContext,
    rbm: &Rbm,
    base: &[f32],
    config: &AisConfig,
    samples: &[f32],
) -> Result<AisResult> {
    anneal_gpu(ctx, rbm, base, config, Start::Model(samples))
}

fn anneal_gpu(ctx: &GpuContext, rbm: &Rbm, base: &[f32], config: &AisConfig, start: Start) -> Result<AisResult> {
    let betas = check(rbm, base, config, start)?;
    let (nv, nh, runs) = (rbm.n_vis, rbm.n_hid, config.runs);
    check_fits(ctx, runs, nv.max(nh), "AIS runs")?;
    let k_init = kernel(ctx, "rbm/rbm_ais.wgsl", "ais_init")?;
    let k_hidden = kernel(ctx, "rbm/rbm_ais.wgsl", "ais_hidden")?;
    let k_weights = kernel(ctx, "rbm/rbm_ais.wgsl", "ais_weights")?;
    let k_visible = kernel(ctx, "rbm/rbm_ais.wgsl", "ais_visible")?;
    let size = std::mem::size_of::<AisParams>() as u64;
    let base_p = AisParams {
        rows: runs as u32,
        n_vis: nv as u32,
        n_hid: nh as u32,
        seed: rng::key(config.seed),
        gaussian: (rbm.visible == Visible::Gaussian) as u32,
        chain_offset: config.first_run,
        ..Default::default()
    };
    let mut params = ParamSlots::new(ctx, BETAS_PER_SUBMIT as u64 + 1);
    let (logw, groups) = ctx.scoped("AIS buffers", || {
        let theta = ctx.storage_buffer("rbm theta", bytemuck::cast_slice(&rbm.theta));
        let base_buf = ctx.storage_buffer("AIS base biases", bytemuck::cast_slice(base));
        let vis = match start {
            Start::Model(states) => ctx.storage_buffer("AIS v", bytemuck::cast_slice(states)),
            Start::Base => ctx.zeroed_storage_buffer("AIS v", (runs * nv * 4) as u64),
        };
        let hid = ctx.zeroed_storage_buffer("AIS h", (runs * nh * 4) as u64);
        let act = ctx.zeroed_storage_buffer("AIS x", (runs * nh * 4) as u64);
        let logw = ctx.zeroed_storage_buffer("AIS log w", (runs * 8) as u64);
        let bufs = [&theta, &base_buf, &vis, &hid, &act, &logw];
        let groups: Vec<wgpu::BindGroup> = [&k_init, &k_hidden, &k_weights, &k_visible]
            .iter()
            .map(|k| bind_group(ctx, k, &params.buffer, size, &bufs))
            .collect();
        (logw, groups)
    })?;
    let last = betas.len() - 1;
    let mut k = 1usize;
    // Forward runs draw their first states from the base; reverse runs were given theirs.
    let mut first = matches!(start, Start::Base);
    while k <= last {
        ctx.submit_pass("AIS steps", |pass| {
            if first {
                let off = params.push(&base_p);
                dispatch(pass, &k_init, &groups[0], off, nv as u32, runs as u32);
            }
            let end = (k + BETAS_PER_SUBMIT).min(last + 1);
            for kk in k..end {
                let p = AisParams { step: kk as u32, beta: betas[kk], beta_prev: betas[kk - 1], ..base_p };
                let off = params.push(&p);
                dispatch(pass, &k_hidden, &groups[1], off, nh as u32, runs as u32);
                dispatch(pass, &k_weights, &groups[2], off, runs as u32, 1);
                if kk < last {
                    dispatch(pass, &k_visible, &groups[3], off, nv as u32, runs as u32);
                }
            }
            k = end;
            params.flush(ctx);
        })?;
        ctx.wait()?;
        first = false;
    }
    let bytes = ctx.read_buffers(&[(&logw, (runs * 8) as u64)])?;
    let pairs: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes[0]);
    let log_weights = pairs.chunks(2).map(|p| p[0] as f64).collect();
    summarize(log_weights, log_z_base(base, nh, rbm.visible), direction(start))
}
