//! Annealed importance sampling of log Z (Neal 2001; Salakhutdinov & Murray 2008) from a
//! base-rate model: the kernel `shaders/rbm_ais.wgsl`, its launcher [`ais_gpu`] and its CPU twin
//! [`ais_cpu`], which make the same Philox draws (see the shader's header for the counters).

use super::gpu::kernel;
use crate::gpu::launch::{ParamSlots, bind_group, check_fits, dispatch};
use super::{Rbm, Visible, sigmoid, softplus, softplus_f64};
use crate::gpu::{Binding, GpuContext};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use rayon::prelude::*;

/// How the inverse temperatures go from 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BetaSchedule {
    /// n evenly spaced intervals.
    Linear(usize),
    /// Salakhutdinov & Murray's piecewise schedule (1000 steps on [0, 0.5], 4000 on [0.5, 0.9],
    /// 10000 on [0.9, 1]) scaled to n intervals in the same proportions.
    Piecewise(usize),
}

impl BetaSchedule {
    /// beta_0 = 0, ..., beta_n = 1.
    pub fn betas(&self) -> Vec<f32> {
        match *self {
            BetaSchedule::Linear(n) => (0..=n).map(|k| k as f32 / n as f32).collect(),
            BetaSchedule::Piecewise(n) => {
                let n1 = (n * 1000 / 15000).max(1);
                let n2 = (n * 4000 / 15000).max(1);
                let n3 = n.saturating_sub(n1 + n2).max(1);
                let mut out = vec![0.0f32];
                for (lo, hi, m) in [(0.0f64, 0.5, n1), (0.5, 0.9, n2), (0.9, 1.0, n3)] {
                    out.extend((1..=m).map(|k| (lo + (hi - lo) * k as f64 / m as f64) as f32));
                }
                out
            }
        }
    }

    pub fn intervals(&self) -> usize {
        self.betas().len() - 1
    }
}

/// The base-rate model's visible biases fitted to data: logit of the smoothed pixel means
/// (Bernoulli; (count + 1) / (rows + 2) keeps them finite), or the means (Gaussian).
pub fn base_rate_biases(data: &[f32], n_vis: usize, visible: Visible) -> Result<Vec<f32>> {
    if n_vis == 0 || data.is_empty() || data.len() % n_vis != 0 {
        return Err(Error::invalid("AIS base-rate data", format!("{} values are not whole rows of {n_vis}", data.len())));
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

#[derive(Clone, Debug)]
pub struct AisConfig {
    pub runs: usize,
    pub schedule: BetaSchedule,
    pub seed: u64,
}

#[derive(Clone, Debug)]
pub struct AisResult {
    /// log Z estimate: log Z_base + log mean w.
    pub log_z: f64,
    /// Standard error of log_z by the delta method: sd(w) / (sqrt(runs) mean(w)).
    pub std_err: f64,
    /// log(mean w -/+ 3 sd(mean w)) + log Z_base (lower is -inf when the interval reaches 0).
    pub log_z_lower: f64,
    pub log_z_upper: f64,
    pub log_z_base: f64,
    pub log_weights: Vec<f64>,
}

/// log Z of the base-rate model (with the RBM's hidden units free: + n_hid log 2).
pub fn log_z_base(base: &[f32], n_hid: usize, visible: Visible) -> f64 {
    let hid = n_hid as f64 * std::f64::consts::LN_2;
    match visible {
        Visible::Bernoulli => base.iter().map(|&a| softplus_f64(a as f64)).sum::<f64>() + hid,
        Visible::Gaussian => {
            base.iter().map(|&a| 0.5 * (a as f64).powi(2)).sum::<f64>() + 0.5 * base.len() as f64 * (2.0 * std::f64::consts::PI).ln() + hid
        }
    }
}

/// Combines log weights into the estimate and its standard error.
pub fn summarize(log_weights: Vec<f64>, log_z_base: f64) -> Result<AisResult> {
    let n = log_weights.len() as f64;
    if log_weights.iter().any(|w| !w.is_finite()) {
        return Err(Error::invalid("AIS", "a run's log weight is not finite (the model's parameters are extreme)"));
    }
    let m = log_weights.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let r: Vec<f64> = log_weights.iter().map(|w| (w - m).exp()).collect();
    let mean = r.iter().sum::<f64>() / n;
    let sd = if n > 1.0 { (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { f64::NAN };
    let se_mean = sd / n.sqrt();
    let log_z = log_z_base + m + mean.ln();
    let lower = if mean - 3.0 * se_mean > 0.0 { log_z_base + m + (mean - 3.0 * se_mean).ln() } else { f64::NEG_INFINITY };
    Ok(AisResult {
        log_z,
        std_err: se_mean / mean,
        log_z_lower: lower,
        log_z_upper: log_z_base + m + (mean + 3.0 * se_mean).ln(),
        log_z_base,
        log_weights,
    })
}

fn check(rbm: &Rbm, base: &[f32], config: &AisConfig) -> Result<Vec<f32>> {
    rbm.check_finite()?;
    if base.len() != rbm.n_vis || base.iter().any(|b| !b.is_finite()) {
        return Err(Error::invalid("AIS base biases", format!("need {} finite values, got {}", rbm.n_vis, base.len())));
    }
    if config.runs < 2 {
        return Err(Error::invalid("AIS runs", format!("need at least 2 runs for a standard error, got {}", config.runs)));
    }
    let betas = config.schedule.betas();
    if betas.len() < 2 || betas.windows(2).any(|w| w[1] < w[0]) || *betas.last().unwrap() != 1.0 {
        return Err(Error::invalid("AIS schedule", "betas must increase from 0 to 1 in at least one step"));
    }
    Ok(betas)
}

/// AIS on the CPU, the twin of the kernels: the same draws, f32 arithmetic, Kahan-summed weights.
pub fn ais_cpu(rbm: &Rbm, base: &[f32], config: &AisConfig) -> Result<AisResult> {
    let betas = check(rbm, base, config)?;
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (w, b, c) = (rbm.w(), rbm.b(), rbm.c());
    let gaussian = rbm.visible == Visible::Gaussian;
    let seed = config.seed;
    let log_weights: Vec<f64> = (0..config.runs)
        .into_par_iter()
        .map(|r| {
            let chain = r as u32;
            let mut v = vec![0.0f32; nv];
            for (q, block) in v.chunks_mut(4).enumerate() {
                if gaussian {
                    let n = rng::normal4(seed, chain, 0, Stream::Init, q as u32);
                    block.iter_mut().enumerate().for_each(|(k, x)| *x = base[q * 4 + k] + n[k]);
                } else {
                    let u = rng::uniform4(seed, chain, 0, Stream::Init, q as u32);
                    block.iter_mut().enumerate().for_each(|(k, x)| *x = (u[k] < sigmoid(base[q * 4 + k])) as u32 as f32);
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
    summarize(log_weights, log_z_base(base, nh, rbm.visible))
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

/// Temperatures recorded per submit (three dispatches each).
const BETAS_PER_SUBMIT: usize = 128;

/// AIS with all runs in parallel on the GPU; reads back only the final log weights.
pub fn ais_gpu(ctx: &GpuContext, rbm: &Rbm, base: &[f32], config: &AisConfig) -> Result<AisResult> {
    let betas = check(rbm, base, config)?;
    let (nv, nh, runs) = (rbm.n_vis, rbm.n_hid, config.runs);
    check_fits(ctx, runs, nv.max(nh), "AIS runs")?;
    let bindings = [
        Binding::UniformDynamic,
        Binding::StorageRead,
        Binding::StorageRead,
        Binding::StorageReadWrite,
        Binding::StorageReadWrite,
        Binding::StorageReadWrite,
        Binding::StorageReadWrite,
    ];
    let k_init = kernel(ctx, "rbm_ais.wgsl", "ais_init", &bindings)?;
    let k_hidden = kernel(ctx, "rbm_ais.wgsl", "ais_hidden", &bindings)?;
    let k_weights = kernel(ctx, "rbm_ais.wgsl", "ais_weights", &bindings)?;
    let k_visible = kernel(ctx, "rbm_ais.wgsl", "ais_visible", &bindings)?;
    let size = std::mem::size_of::<AisParams>() as u64;
    let base_p = AisParams {
        rows: runs as u32,
        n_vis: nv as u32,
        n_hid: nh as u32,
        seed: rng::key(config.seed),
        gaussian: (rbm.visible == Visible::Gaussian) as u32,
        ..Default::default()
    };
    let mut params = ParamSlots::new(ctx, BETAS_PER_SUBMIT as u64 + 1);
    let (logw, groups) = ctx.scoped("AIS buffers", || {
        let theta = ctx.storage_buffer("rbm theta", bytemuck::cast_slice(&rbm.theta));
        let base_buf = ctx.storage_buffer("AIS base biases", bytemuck::cast_slice(base));
        let vis = ctx.zeroed_storage_buffer("AIS v", (runs * nv * 4) as u64);
        let hid = ctx.zeroed_storage_buffer("AIS h", (runs * nh * 4) as u64);
        let act = ctx.zeroed_storage_buffer("AIS x", (runs * nh * 4) as u64);
        let logw = ctx.zeroed_storage_buffer("AIS log w", (runs * 8) as u64);
        let bufs = [&theta, &base_buf, &vis, &hid, &act, &logw];
        let groups: Vec<wgpu::BindGroup> =
            [&k_init, &k_hidden, &k_weights, &k_visible].iter().map(|k| bind_group(ctx, k, &params.buffer, size, &bufs)).collect();
        (logw, groups)
    })?;
    let last = betas.len() - 1;
    let mut k = 1usize;
    let mut first = true;
    while k <= last {
        ctx.scoped("AIS steps", || {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                if first {
                    let off = params.push(&base_p);
                    dispatch(&mut pass, &k_init, &groups[0], off, nv as u32, runs as u32);
                }
                let end = (k + BETAS_PER_SUBMIT).min(last + 1);
                for kk in k..end {
                    let p = AisParams { step: kk as u32, beta: betas[kk], beta_prev: betas[kk - 1], ..base_p };
                    let off = params.push(&p);
                    dispatch(&mut pass, &k_hidden, &groups[1], off, nh as u32, runs as u32);
                    dispatch(&mut pass, &k_weights, &groups[2], off, runs as u32, 1);
                    if kk < last {
                        dispatch(&mut pass, &k_visible, &groups[3], off, nv as u32, runs as u32);
                    }
                }
                k = end;
            }
            params.flush(ctx);
            ctx.queue().submit([encoder.finish()]);
        })?;
        ctx.wait()?;
        first = false;
    }
    let bytes = ctx.read_buffers(&[(&logw, (runs * 8) as u64)])?;
    let pairs: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes[0]);
    let log_weights = pairs.chunks(2).map(|p| p[0] as f64).collect();
    summarize(log_weights, log_z_base(base, nh, rbm.visible))
}
