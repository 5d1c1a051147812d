//! Restoring damaged inputs with an energy: Langevin dynamics on the pixels that are missing
//! (inpainting, the observed ones held fixed) or noisy (denoising, with the Gaussian
//! data-fidelity term of the known noise level), as the conditional p(x_missing | x_observed)
//! or the posterior p(x | y) ∝ exp(-E(x) - w |x - y|² / (2 σ²)) of the model.
//!
//! One step, for every free pixel i of image j (the training sampler's update):
//! `x_i <- clamp(x_i - h clamp(g_i) + s xi, lo, hi)`, g = dE/dx (+ w (x - y) / σ² on noisy
//! observed pixels), xi from Philox `(j, step, ProposalNoise, i / 4)` lane `i % 4`. On the GPU
//! (network energies) everything stays on the device: per step one [`GpuNetwork`] pass per
//! chunk of images and one `shaders/sampler/restore.wgsl` dispatch, 16 steps a submit, one readback at
//! the end. Without a context it runs on the CPU executor, for any energy. A noise-conditional
//! model restores by annealed Langevin over its levels ([`restore_annealed`]): the same step,
//! its step size, noise and fidelity weight set level by level.

use crate::energy::batch::Evaluator;
use crate::energy::{Energy, EnergyInternals};
use crate::eval::minimize::{self, Descent, Method, MinimizeConfig};
use crate::gpu::launch::{ParamSlots, WG, bind_group, dispatch};
use crate::gpu::{ContextInternals, GpuContext};
use crate::nn::Network;
use crate::nn::gpu::{NnKernels, Slice};
use crate::nn::gpu_sum::{GpuNetSum, max_chunk};
use crate::rng::{self, Stream};
use crate::sampler::anneal::Schedule;
use crate::sampler::langevin;
use crate::{Error, Result};
use std::sync::Arc;

/// What each pixel of a damaged image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pixel {
    /// Observed exactly: held fixed.
    Observed,
    /// Observed with Gaussian noise of the configured level: free, pulled toward the observation.
    Noisy,
    /// Missing: free.
    Missing,
}

/// The Langevin dynamics of a restoration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RestoreConfig {
    pub steps: u32,
    pub step_size: f32,
    pub noise_std: f32,
    /// Clamp of each gradient coordinate (0: off).
    pub grad_clamp: f32,
    /// States are clamped to [lo, hi].
    pub lo: f32,
    pub hi: f32,
    /// The observation noise σ of `Pixel::Noisy` pixels and the fidelity weight w.
    pub sigma: f32,
    pub fidelity: f32,
    pub seed: u64,
}

impl RestoreConfig {
    pub fn validate(&self) -> Result<()> {
        let positive = |what: &str, v: f32| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(what, format!("must be positive and finite, got {v}")))
            }
        };
        let non_negative = |what: &str, v: f32| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(what, format!("must be >= 0 and finite, got {v}")))
            }
        };
        positive("step size", self.step_size)?;
        non_negative("noise std", self.noise_std)?;
        non_negative("gradient clamp", self.grad_clamp)?;
        non_negative("fidelity weight", self.fidelity)?;
        non_negative("observation noise", self.sigma)?;
        if !(self.lo < self.hi && self.lo.is_finite() && self.hi.is_finite()) {
            return Err(Error::invalid("box", format!("need finite lo < hi, got [{}, {}]", self.lo, self.hi)));
        }
        Ok(())
    }
}

/// One stretch of a restoration's steps with its own step, noise and fidelity scale: one for a
/// plain restoration, one per level (and the denoising step) for an annealed one.
#[derive(Clone, Copy, Debug)]
struct Stretch {
    steps: u32,
    step_size: f32,
    noise_std: f32,
    /// The fidelity weight's factor: a level of E_σ = E/σ runs as h = α/σ on E, so the fidelity
    /// term, whose step is α, is weighted by σ.
    fidelity_scale: f32,
    /// Annealing: observed pixels are the observation plus this σ times a draw fixed for the
    /// level (Song & Ermon 2019's inpainting: the known pixels as noisy as the level), 0 else.
    observed_noise: f32,
    level: u32,
}

/// Restores `damaged` ([n, d]: observed values where observed or noisy, the starting state in
/// missing pixels) given each pixel's kind (`pixels`, [n, d]), on the GPU when `ctx` is given.
pub fn restore(
    energy: &Energy,
    damaged: &[f32],
    pixels: &[Pixel],
    config: &RestoreConfig,
    ctx: Option<&Arc<GpuContext>>,
) -> Result<Vec<f32>> {
    let plain = Stretch {
        steps: config.steps,
        step_size: config.step_size,
        noise_std: config.noise_std,
        fidelity_scale: 1.0,
        observed_noise: 0.0,
        level: 0,
    };
    restore_stretches(energy, damaged, pixels, config, &[plain], ctx)
}

/// [`restore`] by annealed Langevin over a noise-conditional model's levels
/// ([`crate::sampler::anneal`]); `config`'s steps, step size and noise are the schedule's. At
/// each level the observed pixels carry that level's noise (a draw fixed for the level, taking
/// effect from the level's second step, as the kernel sets them after the network pass), as in
/// Song & Ermon (2019)'s inpainting, so the model sees images as noisy as the level everywhere;
/// the result has the observed pixels as observed.
pub fn restore_annealed(
    energy: &Energy,
    damaged: &[f32],
    pixels: &[Pixel],
    config: &RestoreConfig,
    schedule: &Schedule,
    ctx: Option<&Arc<GpuContext>>,
) -> Result<Vec<f32>> {
    schedule.check()?;
    let stretches: Vec<Stretch> = schedule
        .levels()
        .iter()
        .enumerate()
        .map(|(i, l)| Stretch {
            steps: l.steps,
            step_size: l.step_on_base(),
            noise_std: l.noise_std(),
            fidelity_scale: l.sigma,
            observed_noise: if l.noise { l.sigma } else { 0.0 },
            level: i as u32,
        })
        .collect();
    let mut x = restore_stretches(energy, damaged, pixels, config, &stretches, ctx)?;
    // The levels noised the observed pixels; the restoration keeps what was observed.
    for ((v, &y), p) in x.iter_mut().zip(damaged).zip(pixels) {
        if *p == Pixel::Observed {
            *v = y;
        }
    }
    Ok(x)
}

fn restore_stretches(
    energy: &Energy,
    damaged: &[f32],
    pixels: &[Pixel],
    config: &RestoreConfig,
    stretches: &[Stretch],
    ctx: Option<&Arc<GpuContext>>,
) -> Result<Vec<f32>> {
    config.validate()?;
    let d = energy.dim();
    check_images(d, damaged, pixels, config)?;
    // Step k of the whole restoration draws its noise at counter k, whichever stretch it is in.
    let steps: Vec<Stretch> = stretches.iter().flat_map(|s| std::iter::repeat_n(*s, s.steps as usize)).collect();
    if let Some(ctx) = ctx {
        let terms = energy.network_terms().map_err(|_| {
            Error::invalid(
                "energy",
                "restoring on the GPU runs a network energy (net:...) or a sum of them; use the CPU executor for other energies",
            )
        })?;
        return restore_gpu(ctx, &terms, damaged, pixels, config, &steps);
    }
    let mut x = damaged.to_vec();
    let fidelity = if config.sigma > 0.0 { config.fidelity / (config.sigma * config.sigma) } else { 0.0 };
    for (step, stretch) in steps.iter().enumerate() {
        let step = step as u32;
        let fidelity = fidelity * stretch.fidelity_scale;
        let (_, mut g) = crate::train::eval::energy_grads(energy, &x);
        for (j, ((xj, gj), (yj, kinds))) in x
            .chunks_exact_mut(d)
            .zip(g.chunks_exact_mut(d))
            .zip(damaged.chunks_exact(d).zip(pixels.chunks_exact(d)))
            .enumerate()
        {
            let (mut noise, mut level_noise) = ([0.0f32; 4], [0.0f32; 4]);
            for i in 0..d {
                if i % 4 == 0 {
                    noise = rng::normal4(config.seed, j as u32, step, Stream::ProposalNoise, i as u32 / 4);
                    level_noise = rng::normal4(config.seed, j as u32, stretch.level, Stream::Observation, i as u32 / 4);
                }
                let mut gi = gj[i];
                match kinds[i] {
                    Pixel::Observed => {
                        xj[i] = yj[i] + stretch.observed_noise * level_noise[i % 4];
                        continue;
                    }
                    Pixel::Noisy => gi += fidelity * (xj[i] - yj[i]),
                    Pixel::Missing => {}
                }
                let v = langevin::ula_update(
                    xj[i],
                    gi,
                    stretch.step_size,
                    stretch.noise_std,
                    config.grad_clamp,
                    noise[i % 4],
                );
                xj[i] = v.clamp(config.lo, config.hi);
            }
        }
    }
    Ok(x)
}

/// The images and their pixel kinds agree in size, and noisy pixels have a noise level.
fn check_images(d: usize, damaged: &[f32], pixels: &[Pixel], config: &RestoreConfig) -> Result<()> {
    if d == 0 || !damaged.len().is_multiple_of(d) || pixels.len() != damaged.len() {
        return Err(Error::invalid(
            "images",
            format!("{} values and {} pixel kinds do not form images of {d} values", damaged.len(), pixels.len()),
        ));
    }
    if config.sigma == 0.0 && pixels.contains(&Pixel::Noisy) {
        return Err(Error::invalid("observation noise", "noisy pixels need a noise level above 0"));
    }
    Ok(())
}

/// The MAP restoration: minimises E(x) + w |x - y|² / (2 σ²) (the sum over noisy pixels) over
/// the pixels that are not observed exactly, on [lo, hi], from `damaged`, by L-BFGS
/// ([`crate::eval::minimize`], at most `steps` iterations) with the energies of `eval` (either
/// executor). Returns the restored images and where each descent ended.
pub fn restore_map(
    eval: &mut dyn Evaluator,
    d: usize,
    damaged: &[f32],
    pixels: &[Pixel],
    config: &RestoreConfig,
) -> Result<(Vec<f32>, Descent)> {
    config.validate()?;
    check_images(d, damaged, pixels, config)?;
    let weight = if config.sigma > 0.0 { config.fidelity / (config.sigma * config.sigma) } else { 0.0 };
    let mut posterior = Posterior { prior: eval, observed: damaged, pixels, weight, d };
    let free: Vec<bool> = pixels.iter().map(|p| *p != Pixel::Observed).collect();
    let mut minimize_config = MinimizeConfig::new(Method::Lbfgs);
    minimize_config.max_steps = config.steps as usize;
    minimize_config.bounds = Some((config.lo, config.hi));
    let descent = minimize::minimize(&mut posterior, damaged, d, Some(&free), &minimize_config)?;
    Ok((descent.points.clone(), descent))
}

/// The energy plus the data-fidelity term of each image's noisy pixels.
struct Posterior<'a> {
    prior: &'a mut dyn Evaluator,
    observed: &'a [f32],
    pixels: &'a [Pixel],
    weight: f32,
    d: usize,
}

impl Evaluator for Posterior<'_> {
    fn energy_grad(&mut self, xs: &[f32], es: &mut [f32], gs: &mut [f32]) -> Result<()> {
        let rows: Vec<usize> = (0..es.len()).collect();
        self.energy_grad_rows(&rows, xs, es, gs)
    }

    fn energy_grad_rows(&mut self, rows: &[usize], xs: &[f32], es: &mut [f32], gs: &mut [f32]) -> Result<()> {
        self.prior.energy_grad_rows(rows, xs, es, gs)?;
        let d = self.d;
        for (k, &r) in rows.iter().enumerate() {
            let (y, kinds) = (&self.observed[r * d..(r + 1) * d], &self.pixels[r * d..(r + 1) * d]);
            for i in (0..d).filter(|&i| kinds[i] == Pixel::Noisy) {
                let diff = xs[k * d + i] - y[i];
                es[k] += 0.5 * self.weight * diff * diff;
                gs[k * d + i] += self.weight * diff;
            }
        }
        Ok(())
    }
}

/// `RestoreParams` of shaders/sampler/restore.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct RestoreParams {
    n: u32,
    dim: u32,
    step: u32,
    row_stride: u32,
    seed: [u32; 2],
    step_size: f32,
    noise_std: f32,
    grad_clamp: f32,
    lo: f32,
    hi: f32,
    fidelity: f32,
    observed_noise: f32,
    level: u32,
}

#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        RestoreParams,
        "sampler/restore.wgsl",
        "RestoreParams",
        [n, dim, step, row_stride, seed, step_size, noise_std, grad_clamp, lo, hi, fidelity, observed_noise, level]
    )]
}

/// Steps recorded per submit.
const STEPS_PER_SUBMIT: u32 = 16;

/// [`restore`] of a network energy (or a weighted sum of networks) with everything on the device.
fn restore_gpu(
    ctx: &Arc<GpuContext>,
    terms: &[(f32, &Network)],
    damaged: &[f32],
    pixels: &[Pixel],
    c: &RestoreConfig,
    steps: &[Stretch],
) -> Result<Vec<f32>> {
    let d = terms[0].1.input_dim();
    let n = damaged.len() / d;
    crate::gpu::launch::check_fits(ctx, n, d, "images")?;
    let chunk = max_chunk(ctx, terms, 4096);
    let kinds: Vec<u32> = pixels
        .iter()
        .map(|p| match p {
            Pixel::Observed => 0,
            Pixel::Noisy => 1,
            Pixel::Missing => 2,
        })
        .collect();
    let wgsl = crate::gpu::shader::assemble("sampler/restore.wgsl", &[])?;
    let kernel = ctx.kernel("sampler/restore.wgsl", &wgsl, "restore_step")?;
    let nn = NnKernels::new(ctx.clone());
    let total = (n * d.div_ceil(4)) as u32;
    let row = total.min(ctx.limits().max_compute_workgroups_per_dimension * WG).div_ceil(WG) * WG;
    let rows = total.div_ceil(row);
    let fidelity = if c.sigma > 0.0 { c.fidelity / (c.sigma * c.sigma) } else { 0.0 };
    let (x, bind, mut slots, networks) = ctx.scoped("restoration buffers", || -> Result<_> {
        let x = ctx.storage_buffer("restored images", bytemuck::cast_slice(damaged));
        let grads = ctx.zeroed_storage_buffer("restoration gradients", (4 * n * d) as u64);
        let energies = ctx.zeroed_storage_buffer("restoration energies", (4 * n) as u64);
        let observed = ctx.storage_buffer("observed images", bytemuck::cast_slice(damaged));
        let kinds = ctx.storage_buffer("pixel kinds", bytemuck::cast_slice(&kinds));
        let (xs, es, gs) = (Slice::whole(&x), Slice::whole(&energies), Slice::whole(&grads));
        let networks = GpuNetSum::new(&nn, terms, chunk, n, xs, es, gs)?;
        let slots = ParamSlots::new(ctx, STEPS_PER_SUBMIT as u64);
        let bind = bind_group(
            ctx,
            &kernel,
            &slots.buffer,
            size_of::<RestoreParams>() as u64,
            &[&x, &grads, &observed, &kinds],
        );
        Ok((x, bind, slots, networks))
    })??;
    for (submit, batch) in steps.chunks(STEPS_PER_SUBMIT as usize).enumerate() {
        let first = submit * STEPS_PER_SUBMIT as usize;
        let offsets: Vec<u32> = batch
            .iter()
            .enumerate()
            .map(|(k, stretch)| {
                slots.push(&RestoreParams {
                    n: n as u32,
                    dim: d as u32,
                    step: (first + k) as u32,
                    row_stride: row,
                    seed: rng::key(c.seed),
                    step_size: stretch.step_size,
                    noise_std: stretch.noise_std,
                    grad_clamp: c.grad_clamp,
                    lo: c.lo,
                    hi: c.hi,
                    fidelity: fidelity * stretch.fidelity_scale,
                    observed_noise: stretch.observed_noise,
                    level: stretch.level,
                })
            })
            .collect();
        slots.flush(ctx);
        ctx.submit_pass("restoration steps", |pass| {
            for &off in &offsets {
                networks.record(pass);
                dispatch(pass, &kernel, &bind, off, row, rows);
            }
        })?;
    }
    Ok(bytemuck::pod_collect_to_vec(&ctx.read_buffers(&[(&x, (4 * n * d) as u64)])?[0]))
}

/// Mean squared error between `a` and `b`, over the entries where `only` holds (all if None).
pub fn mse(a: &[f32], b: &[f32], only: Option<&[bool]>) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        if only.is_none_or(|m| m[k]) {
            sum += ((x - y) as f64).powi(2);
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Peak signal-to-noise ratio in dB for values spanning `range` (2 for images in [-1, 1]).
pub fn psnr(mse: f64, range: f64) -> f64 {
    10.0 * (range * range / mse).log10()
}

/// The skeptic's completion by nearest neighbours: for each image of `damaged` ([n, d]), the
/// `k` rows of `train` ([m, d]) nearest in Euclidean distance over its known pixels (those not
/// `missing`: observed exactly, or noisy for denoising), ties to the lower row; the pixels to
/// restore (`changed`: missing, and noisy ones) become the mean of those rows' pixels, the
/// others stay as they are. `leave_out_self` skips training row j for image j (when the images
/// are the first rows of the training set itself, so an image never finds its own copy).
pub fn nearest_fill(
    damaged: &[f32],
    missing: &[bool],
    changed: &[bool],
    train: &[f32],
    d: usize,
    k: usize,
    leave_out_self: bool,
) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    let m = train.len() / d.max(1);
    let usable = if leave_out_self { m.saturating_sub(1) } else { m };
    if d == 0 || k == 0 || k > usable {
        return Err(Error::invalid("neighbours", format!("k = {k} of {usable} training images (need 1..={usable})")));
    }
    let mut out = damaged.to_vec();
    out.par_chunks_mut(d).enumerate().for_each(|(j, row)| {
        let known: Vec<f32> = missing[j * d..(j + 1) * d].iter().map(|&h| if h { 0.0 } else { 1.0 }).collect();
        let x = &damaged[j * d..(j + 1) * d];
        // The k best (distance, row), sorted ascending.
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (r, t) in train.chunks_exact(d).enumerate() {
            if leave_out_self && r == j {
                continue;
            }
            let dist: f32 = x.iter().zip(t).zip(&known).map(|((a, b), w)| w * (a - b) * (a - b)).sum();
            if best.len() < k || dist < best[k - 1].0 {
                let at = best.partition_point(|&(e, _)| e <= dist);
                best.insert(at, (dist, r));
                best.truncate(k);
            }
        }
        for (i, v) in row.iter_mut().enumerate() {
            if changed[j * d + i] {
                *v = best.iter().map(|&(_, r)| train[r * d + i]).sum::<f32>() / k as f32;
            }
        }
    });
    Ok(out)
}

/// `damaged` with its `missing` pixels set to `value` (the background: the data's minimum).
pub fn fill_holes(damaged: &[f32], missing: &[bool], value: f32) -> Vec<f32> {
    damaged.iter().zip(missing).map(|(&v, &hole)| if hole { value } else { v }).collect()
}
