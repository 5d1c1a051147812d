//! Annealed Langevin dynamics (Song & Ermon 2019) for a noise-conditional energy: L noise levels
//! σ_1 > … > σ_L, T unadjusted Langevin steps at each on E_σ, step α_i = ε σ_i² / σ_L², then one
//! denoising step x ← x − σ_L² ∇E_σL(x) (Tweedie's formula, Jolicoeur-Martineau et al. 2021).
//!
//! The engine's noise-conditional models are E_σ(x) = E(x)/σ (`--loss ncsm:…`, "improved
//! techniques", Song & Ermon 2020), so level i is ULA on E itself with step h = α_i/σ_i and noise
//! standard deviation √(2α_i): x ← x − (α_i/σ_i)∇E + √(2α_i) ξ. A schedule is therefore a list
//! of (h, noise) settings for the samplers every executor already runs ([`run`]), and the
//! restorations run the same [`Level`]s (`crate::restore`): one definition of the schedule.

use super::ChainSampler;
use crate::{Error, Result};

/// What the annealing does: the levels, the steps at each, ε and the final denoising step.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// σ_1 > … > σ_L > 0.
    pub sigmas: Vec<f32>,
    /// T: Langevin steps at each level.
    pub steps_per_level: u32,
    /// ε: the Langevin step α at the last level (α_i = ε σ_i² / σ_L²).
    pub step_size: f32,
    /// One noise-free step x ← x − σ_L² ∇E_σL at the end.
    pub denoise: bool,
}

/// One stretch of a schedule: `steps` steps x ← x − α∇E_σ(x) + √(2α) ξ (ξ = 0 without noise).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    pub sigma: f32,
    pub steps: u32,
    /// α.
    pub alpha: f32,
    pub noise: bool,
}

impl Level {
    /// The step h on E of a model E_σ = E/σ: x ← x − h∇E + s ξ with h = α/σ.
    pub fn step_on_base(&self) -> f32 {
        self.alpha / self.sigma
    }

    /// s = √(2α), or 0 for the denoising step.
    pub fn noise_std(&self) -> f32 {
        if self.noise { (2.0 * self.alpha).sqrt() } else { 0.0 }
    }
}

/// ε when none is given: α_L / σ_L² = 0.025 at the last level, so every level's step is a
/// fortieth of its variance. Measured on the 20-epoch noise-conditional MNIST model of README
/// (levels 2..0.02, T = 100, 256 chains, FID/KID in the JEM classifier's features): ratios
/// 0.1, 0.025 and 0.01 gave FID 105 / 39 / 2488 (too small a step leaves the noise in).
pub const DEFAULT_STEP_RATIO: f32 = 0.025;

/// T when none is given (Song & Ermon 2019).
pub const DEFAULT_STEPS_PER_LEVEL: u32 = 100;

impl Schedule {
    /// A checked schedule: levels positive, finite and strictly decreasing; T ≥ 1; ε > 0.
    pub fn new(sigmas: Vec<f32>, steps_per_level: u32, step_size: f32, denoise: bool) -> Result<Self> {
        let schedule = Self { sigmas, steps_per_level, step_size, denoise };
        schedule.check()?;
        Ok(schedule)
    }

    /// [`Self::new`]'s checks, for a schedule built field by field (the fields are public):
    /// [`run`] and the annealed restoration call it before they step.
    pub fn check(&self) -> Result<()> {
        check_levels(&self.sigmas)?;
        if self.steps_per_level == 0 {
            return Err(Error::invalid("steps per level", "must be at least 1"));
        }
        let step = self.step_size;
        if !(step > 0.0 && step.is_finite()) {
            return Err(Error::invalid("anneal step size", format!("must be positive and finite, got {step}")));
        }
        Ok(())
    }

    /// ε = [`DEFAULT_STEP_RATIO`] σ_L².
    pub fn default_step_size(sigmas: &[f32]) -> f32 {
        let last = sigmas.last().copied().unwrap_or(1.0);
        DEFAULT_STEP_RATIO * last * last
    }

    /// The stretches in order: each level's T steps, then the denoising step (noise 0).
    pub fn levels(&self) -> Vec<Level> {
        // An unchecked schedule without levels has no stretches ([`Self::check`] refuses it).
        let Some(&last) = self.sigmas.last() else { return Vec::new() };
        let mut levels: Vec<Level> = self
            .sigmas
            .iter()
            .map(|&sigma| Level {
                sigma,
                steps: self.steps_per_level,
                alpha: self.step_size * (sigma / last).powi(2),
                noise: true,
            })
            .collect();
        if self.denoise {
            levels.push(Level { sigma: last, steps: 1, alpha: last * last, noise: false });
        }
        levels
    }

    /// Steps over all levels, the denoising step included.
    pub fn total_steps(&self) -> u32 {
        self.levels().iter().map(|l| l.steps).sum()
    }

    /// One line: "annealed ula over L levels σ MAX..MIN, T steps each, ε E[, then a denoising step]".
    pub fn describe(&self) -> String {
        let s = &self.sigmas;
        format!(
            "annealed ula over {} levels σ {}..{}, {} steps each, ε {}{}",
            s.len(),
            s[0],
            s[s.len() - 1],
            self.steps_per_level,
            self.step_size,
            if self.denoise { ", then a denoising step" } else { "" }
        )
    }

    /// `--anneal`'s spelling: "MAX,MIN,L" (L geometric levels from MAX down to MIN).
    pub fn parse_levels(text: &str) -> Result<Vec<f32>> {
        let bad = |why: String| Error::invalid("anneal levels", format!("{text:?}: {why}; expected MAX,MIN,L"));
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [max, min, count] = parts.as_slice() else { return Err(bad("not three values".into())) };
        let number = |v: &str| v.parse::<f32>().map_err(|_| bad(format!("{v:?} is not a number")));
        let (max, min) = (number(max)?, number(min)?);
        let count: u32 = count.parse().map_err(|_| bad(format!("{count:?} is not a count")))?;
        if !(2..=1000).contains(&count) {
            return Err(bad(format!("{count} levels; need 2..=1000")));
        }
        if !(max > min) {
            return Err(bad(format!("MAX {max} must be above MIN {min}")));
        }
        let sigmas: Vec<f32> = (0..count).map(|l| geometric_level(max, min, count, l)).collect();
        check_levels(&sigmas)?;
        Ok(sigmas)
    }
}

/// Level l of `count` geometric noise levels from `max` down to `min` (`max` for one level):
/// the levels DSM draws from and annealing runs over.
pub fn geometric_level(max: f32, min: f32, count: u32, l: u32) -> f32 {
    if count <= 1 {
        return max;
    }
    max * (min / max).powf(l as f32 / (count - 1) as f32)
}

fn check_levels(sigmas: &[f32]) -> Result<()> {
    if sigmas.is_empty() {
        return Err(Error::invalid("anneal levels", "no noise levels"));
    }
    for (i, &s) in sigmas.iter().enumerate() {
        if !(s > 0.0 && s.is_finite()) {
            return Err(Error::invalid(
                format!("anneal level {}", i + 1),
                format!("σ must be positive and finite, got {s}"),
            ));
        }
        if i > 0 && !(s < sigmas[i - 1]) {
            return Err(Error::invalid(
                format!("anneal level {}", i + 1),
                format!("σ {s} does not decrease from level {}'s {}", i, sigmas[i - 1]),
            ));
        }
    }
    Ok(())
}

/// Runs `schedule` on a ULA sampler of E (step sizes and noise set level by level; the sampler's
/// own step size and noise are replaced). `progress` hears (stretch index, steps done so far).
pub fn run(sampler: &mut dyn ChainSampler, schedule: &Schedule, mut progress: impl FnMut(usize, u32)) -> Result<()> {
    schedule.check()?;
    if sampler.config().kind != super::SamplerKind::Ula || sampler.replicas() != 1 {
        return Err(Error::invalid("sampler", "annealed Langevin runs unadjusted Langevin (ula) without tempering"));
    }
    let chains = sampler.step_sizes().len();
    let mut done = 0;
    for (i, level) in schedule.levels().iter().enumerate() {
        sampler.set_step_sizes(&vec![level.step_on_base(); chains])?;
        sampler.set_noise_scale(Some(level.noise_std()))?;
        sampler.run(level.steps)?;
        done += level.steps;
        progress(i, done);
    }
    Ok(())
}
