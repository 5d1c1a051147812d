//! `ebm sample --anneal`: annealed Langevin over a noise-conditional model's levels
//! ([`crate::sampler::anneal`]), from the flag or from a checkpoint trained with `--loss ncsm:`;
//! its settings resolved as the other ones are ([`crate::cli::settings`]).

use super::{SampleArgs, SamplerArg};
use crate::cli::rundir::Given;
use crate::cli::settings::{Settings, Source, Stored, anneal_levels, anneal_schedule};
use crate::sampler::anneal::Schedule;
use anyhow::bail;

/// The levels to anneal over and their source ([`crate::cli::settings::anneal_levels`]); a
/// checkpoint's only when the sampler is ULA.
pub(super) fn levels(
    args: &SampleArgs,
    stored: Option<&Stored>,
    sampler: SamplerArg,
) -> anyhow::Result<Option<(String, Source)>> {
    let ula = matches!(sampler, SamplerArg::Ula);
    if !ula && args.anneal.as_deref().is_some_and(|t| t.trim() != "off") {
        bail!("--anneal runs unadjusted Langevin: it takes --sampler ula (or no --sampler)");
    }
    anneal_levels(args.anneal.as_deref(), stored.filter(|_| ula))
}

/// Records the annealing's settings and puts them in `r` ([`anneal_schedule`]); the noise is
/// the schedule's, so --noise-std is refused; a gradient clamp only when given (a training
/// recipe's would change the levels' targets).
pub(super) fn resolve(
    levels: (String, Source),
    given: &Given,
    s: &mut Settings,
    r: &mut SampleArgs,
) -> anyhow::Result<()> {
    if r.noise_std.is_some() {
        bail!("--noise-std does not apply with --anneal: each level's noise is sqrt(2 x its step)");
    }
    if r.trace.is_some() || r.diagnostics.is_some() {
        bail!(
            "--trace and --diagnostics need one target, and annealed Langevin changes it level by level; use --anneal off"
        );
    }
    r.anneal = Some(levels.0.clone());
    let step_size = given.has("--step-size").then_some(r.step_size);
    let steps = given.has("--steps").then_some(r.steps);
    let schedule = anneal_schedule(levels, step_size, steps, !r.no_denoise, s)?;
    (r.step_size, r.steps) = (schedule.step_size, schedule.steps_per_level);
    if !given.has("--grad-clamp") {
        r.grad_clamp = None;
    }
    let clamp = r.grad_clamp.map_or_else(|| "off".to_string(), |c| c.to_string());
    s.record(
        "--grad-clamp",
        &clamp,
        if given.has("--grad-clamp") { Source::Flag } else { Source::Default("for annealing") },
    );
    Ok(())
}

/// The schedule a resolved run anneals by, if any.
pub(super) fn schedule(args: &SampleArgs) -> anyhow::Result<Option<Schedule>> {
    let Some(text) = args.anneal.as_deref().filter(|t| t.trim() != "off") else { return Ok(None) };
    let sigmas = Schedule::parse_levels(text).map_err(|e| anyhow::anyhow!("--anneal: {e}"))?;
    let schedule = Schedule::new(sigmas, args.steps, args.step_size, !args.no_denoise)
        .map_err(|e| anyhow::anyhow!("--anneal {text}: {e}"))?;
    Ok(Some(schedule))
}
