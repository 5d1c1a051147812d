//! Restoring damaged inputs with an energy: Langevin dynamics on the pixels that are missing
//! (inpainting, the observed ones held fixed) or noisy (denoising, with the Gaussian
//! data-fidelity term of the known noise level), as the conditional p(x_missing | x_observed)
//! or the posterior p(x | y) ∝ exp(-E(x) - w |x - y|² / (2 σ²)) of the model.
//!
//! One step, for every free pixel i of image j (the training sampler's update):
//! `x_i <- clamp(x_i - h clamp(g_i) + s xi, lo, hi)`, g = dE/dx (+ w (x - y) / σ² on noisy
//! observed pixels), xi from Philox `(j, step, ProposalNoise, i / 4)` lane `i % 4`. The energy
//! and its gradient run on the chosen executor ([`crate::energy::gpu::energy_grad_batch`] on
//! the GPU, the batched CPU path otherwise); the update on the CPU.

use crate::energy::Energy;
use crate::gpu::GpuContext;
use crate::rng::{self, Stream};
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
            if v > 0.0 && v.is_finite() { Ok(()) } else { Err(Error::invalid(what, format!("must be positive and finite, got {v}"))) }
        };
        let non_negative = |what: &str, v: f32| {
            if v >= 0.0 && v.is_finite() { Ok(()) } else { Err(Error::invalid(what, format!("must be >= 0 and finite, got {v}"))) }
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

/// Restores `damaged` ([n, d]: observed values where observed or noisy, the starting state in
/// missing pixels) given each pixel's kind (`pixels`, [n, d]), on the GPU when `ctx` is given.
pub fn restore(
    energy: &Energy,
    damaged: &[f32],
    pixels: &[Pixel],
    config: &RestoreConfig,
    ctx: Option<&Arc<GpuContext>>,
) -> Result<Vec<f32>> {
    config.validate()?;
    let d = energy.dim();
    if d == 0 || !damaged.len().is_multiple_of(d) || pixels.len() != damaged.len() {
        return Err(Error::invalid(
            "images",
            format!("{} values and {} pixel kinds do not form images of {d} values", damaged.len(), pixels.len()),
        ));
    }
    if config.sigma == 0.0 && pixels.contains(&Pixel::Noisy) {
        return Err(Error::invalid("observation noise", "noisy pixels need a noise level above 0"));
    }
    let mut x = damaged.to_vec();
    let fidelity = if config.sigma > 0.0 { config.fidelity / (config.sigma * config.sigma) } else { 0.0 };
    for step in 0..config.steps {
        let (_, mut g) = match ctx {
            Some(ctx) => crate::energy::gpu::energy_grad_batch(ctx, energy, &x)?,
            None => crate::train::eval::energy_grads(energy, &x),
        };
        for (j, ((xj, gj), (yj, kinds))) in
            x.chunks_exact_mut(d).zip(g.chunks_exact_mut(d)).zip(damaged.chunks_exact(d).zip(pixels.chunks_exact(d))).enumerate()
        {
            let mut noise = [0.0f32; 4];
            for i in 0..d {
                if i % 4 == 0 {
                    noise = rng::normal4(config.seed, j as u32, step, Stream::ProposalNoise, i as u32 / 4);
                }
                let mut gi = gj[i];
                match kinds[i] {
                    Pixel::Observed => continue,
                    Pixel::Noisy => gi += fidelity * (xj[i] - yj[i]),
                    Pixel::Missing => {}
                }
                if config.grad_clamp > 0.0 {
                    gi = gi.clamp(-config.grad_clamp, config.grad_clamp);
                }
                xj[i] = (xj[i] - config.step_size * gi + config.noise_std * noise[i % 4]).clamp(config.lo, config.hi);
            }
        }
    }
    Ok(x)
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
