//! `ebm sample`'s settings for a continuous energy, each from its flag, else from the training
//! checkpoint `--energy net:FILE` names ([`crate::cli::settings`]), else a default that may
//! depend on the energy (images) or on other settings (the warm-up when no step size is known).

use super::{SampleArgs, SamplerArg};
use crate::cli::rundir::Given;
use crate::cli::settings::{Settings, Source, Stored};
use crate::energy::Energy;
use clap::ValueEnum;

/// Chains and steps of an image network (a CxHxW input) when not given: a 4x4 grid of chains
/// for as many steps as training's figures run from noise; about 10 s on the 2-core machine's
/// CPU executor for the UvA MNIST network (4096 chain-steps, plus MALA's warm-up).
pub const IMAGE_CHAINS: u32 = 16;
pub const IMAGE_STEPS: u32 = crate::train::run::FRESH_CHAIN_STEPS;

/// Warm-up steps of MALA and HMC when no step size is given (by flag or checkpoint): dual
/// averaging of one step size per chain towards the target acceptance, the mass matrix kept,
/// so that every chain stays a function of (seed, chain) and `--shard` still splits the run.
pub const DEFAULT_WARMUP: u32 = 200;

fn name(s: SamplerArg) -> String {
    s.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string())
}

/// The settings a continuous run uses (a copy of `args` with every resolved value in place) and
/// the record of where each came from.
pub(super) fn resolve(args: &SampleArgs, given: &Given, energy: &Energy) -> anyhow::Result<(SampleArgs, Settings)> {
    let stored = Stored::from_energy(&args.energy)?;
    let mut s = Settings::new();
    let mut r = args.clone();
    let (sampler, source) = match (args.sampler, stored) {
        (Some(k), _) => (k, Source::Flag),
        (None, Some(_)) => (SamplerArg::Ula, Source::Checkpoint),
        (None, None) => (SamplerArg::Mala, Source::Default("")),
    };
    s.record("--sampler", &name(sampler), source);
    r.sampler = Some(sampler);
    let flag_f32 = |flag: &str, v: f32| given.has(flag).then_some(v);
    // The checkpoint's step, noise, clamp and box are its ULA's: another algorithm takes none of them.
    let ula = matches!(sampler, SamplerArg::Ula);
    let ula_stored = stored.filter(|_| ula);
    let annealing = super::anneal::levels(args, stored.as_ref(), sampler)?;
    let annealed = annealing.is_some();
    if let Some(levels) = annealing {
        super::anneal::resolve(levels, given, &mut s, &mut r)?;
        r.final_box = ula_stored.filter(|_| !given.has("--box")).map(|st| st.box_clamp);
    } else {
        r.anneal = None;
        r.step_size = s.pick(
            "--step-size",
            flag_f32("--step-size", args.step_size),
            ula_stored.map(|st| st.step_size),
            (args.step_size, Source::Default("")),
        );
    }
    if ula && !annealed {
        let optional = |s: &mut Settings, flag: &str, given: Option<String>, stored: Option<String>, off: &str| {
            s.pick(flag, given, stored, (off.to_string(), Source::Default("")));
        };
        r.noise_std = args.noise_std.or(ula_stored.map(|st| st.noise_std));
        optional(
            &mut s,
            "--noise-std",
            args.noise_std.map(|v| v.to_string()),
            ula_stored.map(|st| st.noise_std.to_string()),
            "sqrt(2h)",
        );
        r.grad_clamp = args.grad_clamp.or(ula_stored.and_then(|st| st.grad_clamp));
        optional(
            &mut s,
            "--grad-clamp",
            args.grad_clamp.map(|v| v.to_string()),
            ula_stored.map(|st| st.grad_clamp.map_or_else(|| "off".to_string(), |c| c.to_string())),
            "off",
        );
    }
    if ula {
        let show = |b: (f32, f32)| format!("{},{}", b.0, b.1);
        // The noisy levels live outside the data's box: an annealing clamps only when asked.
        let box_stored = ula_stored.filter(|_| !annealed).map(|st| st.box_clamp);
        r.box_clamp = args.box_clamp.or(box_stored);
        let box_default = match r.final_box {
            Some((lo, hi)) => (format!("off (the final states clamped to {lo},{hi})"), Source::Checkpoint),
            None => ("off".to_string(), Source::Default(if annealed { "for annealing" } else { "" })),
        };
        s.pick("--box", args.box_clamp.map(show), box_stored.map(show), box_default);
    }
    // Where the model's density lives, whatever the algorithm.
    r.init = s.pick(
        "--init",
        given.has("--init").then(|| args.init.clone()),
        stored.map(|st| st.init()),
        (args.init.clone(), Source::Default("")),
    );
    if matches!(r.init.as_str(), "gaussian" | "uniform") {
        s.pick("--init-std", flag_f32("--init-std", args.init_std), None, (args.init_std, Source::Default("")));
    }
    let image = energy.image_shape().is_some();
    let by_shape = |image_value: u32, value: u32| {
        if image { (image_value, Source::Default("for images")) } else { (value, Source::Default("")) }
    };
    let flag_u32 = |flag: &str, v: u32| given.has(flag).then_some(v);
    r.chains = s.pick("--chains", flag_u32("--chains", args.chains), None, by_shape(IMAGE_CHAINS, args.chains));
    if !annealed {
        r.steps = s.pick("--steps", flag_u32("--steps", args.steps), None, by_shape(IMAGE_STEPS, args.steps));
    }
    let adapts = matches!(sampler, SamplerArg::Mala | SamplerArg::Hmc);
    if given.has("--warmup") {
        s.record("--warmup", &args.warmup, Source::Flag);
    } else if adapts && s.source("--step-size") == Some(Source::Default("")) {
        r.warmup = DEFAULT_WARMUP;
        r.adapt_per_chain = true;
        r.no_adapt_mass = true;
        s.record(
            "--warmup",
            &format!("{DEFAULT_WARMUP} --adapt-per-chain --no-adapt-mass"),
            Source::Default("without --step-size"),
        );
    } else if adapts {
        s.record("--warmup", &args.warmup, Source::Default(""));
    }
    if let Some(note) = stored.filter(|_| !annealed).and_then(|st| st.caution()) {
        eprintln!("{note}");
    }
    Ok((r, s))
}
