//! `ebm sample`: run chains (with optional warm-up adaptation and parallel tempering), write
//! their final states, print acceptance, throughput and diagnostics.

mod anneal;
mod figure;
pub(crate) mod init;
mod report;
mod resolve;
mod shard;
mod spins;

use report::{acceptance_summary, shard_settings, swap_acceptance};
pub(crate) use report::{print_summaries, warn_convergence};
pub(crate) use shard::parse_shard;
use shard::shard_chains;

use crate::cli::backend::{self, Backend};
use crate::cli::numbers::{SAMPLE_FLAGS, with_flag_names};
use crate::cli::rundir::Given;
use crate::energy::{Energy, EnergyInternals, spec};
use crate::eval::diagnostics::{self, MIN_DRAWS};
use crate::io;
use crate::plan::{self, Plan, Work};
use crate::sampler::adapt::{Adaptation, warm_up};
use crate::sampler::cpu::CpuSampler;
use crate::sampler::{ChainSampler, SamplerConfig, SamplerKind, Tempering};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SamplerArg {
    /// Unadjusted Langevin: x' = x - h grad E + s xi (biased by O(h), no rejections).
    Ula,
    /// Metropolis-adjusted Langevin: exact target, reports acceptance.
    Mala,
    /// Hamiltonian Monte Carlo: --leapfrog L steps of size h per proposal.
    Hmc,
    /// Random-walk Metropolis: Gaussian proposals of standard deviation h.
    Rwmh,
    /// Discrete models: heat-bath sweeps over a graph colouring (block Gibbs).
    Gibbs,
    /// Discrete models: single-site Metropolis sweeps over a graph colouring.
    Metropolis,
    /// Discrete models, ferromagnetic without fields: Swendsen–Wang cluster steps.
    SwendsenWang,
    /// Discrete models, ferromagnetic without fields: Wolff single-cluster flips.
    Wolff,
    /// Discrete models at zero temperature (a Hopfield network): every site takes the sign of
    /// its field in the previous state at once (CPU; may cycle with period 2).
    Synchronous,
}

/// Sample from p(x) ∝ exp(-E(x)) with many chains at once.
#[derive(Args, Clone, Debug)]
#[command(after_help = sample_after_help())]
pub struct SampleArgs {
    /// Energy: a preset name, a JSON spec file, or inline JSON (see the schema in README.md);
    /// or a discrete model: ising:square:L[,beta=B,J=J,h=H] (also triangular:, cubic:,
    /// graph:EDGES.csv), potts:Q:LATTICE[,beta=B,J=J], bm:W.npy[,bias=B.npy], hopfield:PATTERNS.npy.
    #[arg(long, default_value = "ring8")]
    pub energy: String,
    /// Conditional sampling: hold dimensions fixed, `I=V,J=W,...` (0-based dimension I at value
    /// V in every chain), or a .npy/.csv file of one row of the energy's width whose numbers
    /// fix those dimensions and NaNs leave them free. Every sampler; with --warmup only with
    /// --no-adapt-mass.
    #[arg(long, value_name = "I=V,...|FILE", allow_hyphen_values = true)]
    pub fix: Option<String>,
    /// Class-conditional sampling from a classifier network (K > 1 outputs, e.g. a JEM
    /// checkpoint): E(x, Y) = -f(x)[Y] instead of its head.
    #[arg(long, value_name = "Y")]
    pub class: Option<usize>,
    /// MCMC algorithm [default: ula with the training sampler's settings for --energy
    /// net:CHECKPOINT of `ebm train`; mala for other continuous energies; gibbs for discrete models].
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerArg>,
    /// Number of independent chains [default: 4096; 16 for a network of images].
    #[arg(long, default_value_t = 4096, hide_default_value = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub chains: u32,
    /// Steps per chain after warm-up [default: 1000; 256 for a network of images]; 0 with
    /// --init generator or replay writes those states as they are.
    #[arg(long, default_value_t = 1000, hide_default_value = true, value_parser = clap::value_parser!(u32).range(0..))]
    pub steps: u32,
    /// Step size h (> 0); with --warmup, where adaptation starts [default: a training
    /// checkpoint's (ula); else 0.01, and mala and hmc then warm up (see --warmup)].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.01, hide_default_value = true, allow_negative_numbers = true)]
    pub step_size: f32,
    /// Warm-up steps (mala, hmc, rwmh): dual averaging of the step size towards
    /// --target-accept and a diagonal mass matrix from the chains' variances half-way
    /// [default: 0; mala and hmc without --step-size: 200 steps adapting one step size per
    /// chain (--adapt-per-chain --no-adapt-mass), which --shard allows; --warmup 0 turns it off].
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    pub warmup: u32,
    /// Warm-up target acceptance (default: 0.574 MALA, 0.8 HMC, 0.234 RWMH).
    #[arg(long, value_parser = crate::cli::numbers::finite_f64, allow_negative_numbers = true)]
    pub target_accept: Option<f64>,
    /// Warm-up adapts one step size per chain instead of one shared by all chains.
    #[arg(long)]
    pub adapt_per_chain: bool,
    /// Warm-up keeps the mass matrix (proposal scale) at the identity.
    #[arg(long)]
    pub no_adapt_mass: bool,
    /// HMC: leapfrog steps per proposal.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    pub leapfrog: u32,
    /// HMC: draw the number of leapfrog steps uniformly from [L - J, L + J].
    #[arg(long, default_value_t = 0)]
    pub leapfrog_jitter: u32,
    /// HMC: scale each proposal's step uniformly in [1 - J, 1 + J] (0 disables; jitter keeps
    /// trajectories from resonating with the target's periods).
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.2, allow_negative_numbers = true)]
    pub step_jitter: f32,
    /// Parallel tempering with R replicas per chain (1: off); output is the temperature-1 replica.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub tempering: u32,
    /// Parallel tempering: the hottest temperature of the geometric ladder.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 10.0, allow_negative_numbers = true)]
    pub max_temperature: f32,
    /// Parallel tempering: an explicit ladder, e.g. 1,2,4,8 (overrides --tempering and --max-temperature).
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, value_delimiter = ',', allow_negative_numbers = true)]
    pub temperatures: Option<Vec<f32>>,
    /// Parallel tempering: steps between rounds of neighbour swaps.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub swap_every: u32,
    /// Annealed Langevin (ula) over MAX,MIN,L geometric noise levels of a noise-conditional
    /// model E(x)/σ (`--loss ncsm:`): --steps is then per level and --step-size the step ε at
    /// the last level (level i: ε σ_i²/σ_L²), then one denoising step; `off` turns it off
    /// [default: the levels of a checkpoint trained with --loss ncsm:MAX,MIN,L].
    #[arg(long, value_name = "MAX,MIN,L|off")]
    pub anneal: Option<String>,
    /// Annealed Langevin: skip the final noise-free step x <- x - σ_L ∇E (Tweedie's denoising).
    #[arg(long)]
    pub no_denoise: bool,
    /// ULA only: noise standard deviation, as `ebm train --noise-std` and `ebm restore
    /// --noise-std` [default: a training checkpoint's; else sqrt(2h)].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, allow_negative_numbers = true)]
    pub noise_std: Option<f32>,
    /// Set by the settings' resolution, not a flag: an annealing's final states are clamped to
    /// the checkpoint's box (its noisy levels ran outside it).
    #[arg(skip)]
    pub final_box: Option<(f32, f32)>,
    /// The former name of --noise-std, accepted with a warning: `ebm train --noise-scale` is a
    /// multiple of sqrt(2h), so one name had two meanings.
    #[arg(long, hide = true, conflicts_with = "noise_std", value_parser = crate::cli::numbers::finite_f32, allow_negative_numbers = true)]
    pub noise_scale: Option<f32>,
    /// ULA only: clamp each gradient component to [-C, C] [default: a training checkpoint's].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, allow_negative_numbers = true)]
    pub grad_clamp: Option<f32>,
    /// ULA only: clamp states to the box LO,HI after each step [default: a training
    /// checkpoint's box].
    #[arg(long = "box", value_parser = crate::cli::numbers::parse_box, value_name = "LO,HI", allow_hyphen_values = true)]
    pub box_clamp: Option<(f32, f32)>,
    /// Random seed: on one executor chains are a pure function of (seed, chain index); GPU and
    /// CPU draw the same random numbers and agree up to rounding (see README).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run only shard I of N (0-based, e.g. 0/4) of the --chains chains: chains I*C/N to
    /// (I+1)*C/N - 1, each with the random numbers it has in the whole run, so the shards'
    /// outputs joined with `ebm merge` equal one run of all chains bit for bit on one executor.
    /// Not with --warmup (its adaptation pools all chains).
    #[arg(long, value_parser = parse_shard, value_name = "I/N")]
    pub shard: Option<(u32, u32)>,
    /// Standard deviation of the Gaussian the chains start from (with --init uniform, the
    /// half-width of the uniform box).
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 1.0, allow_negative_numbers = true)]
    pub init_std: f32,
    /// Where chains start: gaussian (N(0, init-std^2)), uniform (U[-init-std, init-std], the
    /// image recipe's noise), box:LO,HI (U[LO, HI] in every dimension), feasible (gaussian
    /// draws moved to the nearest point satisfying the energy's constraints), replay (the replay buffer of the training checkpoint named by
    /// --energy net:CHECKPOINT, entry (chain mod capacity)), generator (the samples of that
    /// checkpoint's `--generator`, one latent draw per chain), or a .npy/.csv file of rows (row
    /// chain mod rows) [default: box:LO,HI of a training checkpoint's box; else gaussian].
    #[arg(long, default_value = "gaussian", hide_default_value = true)]
    pub init: String,
    /// Executor: auto (a hardware GPU if one opens, else the CPU executor), gpu (any adapter,
    /// a software one included) or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// Write the final states, [chains, dim] float32, as .npy or .csv.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write a figure: for 2-d energies the density with the samples over it, else histograms.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Write the thinned trace of the sampling phase, [steps / thin, chains, dim] float32, as .npy.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Keep every THIN-th state in the trace (and for --diagnostics).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub thin: u32,
    /// Write diagnostics as JSON: per dimension mean, sd, quantiles, split R-hat, bulk and
    /// tail ESS (Vehtari et al. 2021), ESS per second, acceptance, swap rates, energy trace.
    #[arg(long)]
    pub diagnostics: Option<PathBuf>,
    /// Skip the convergence check of a run without --trace or --diagnostics (which keeps a
    /// thinned trace of up to 64 MiB and reads it back at the end): for timing runs.
    #[arg(long)]
    pub no_check: bool,
}

fn sample_after_help() -> String {
    let presets: Vec<String> = spec::PRESETS.iter().map(|(n, d)| format!("  {n:<12} {d}")).collect();
    format!(
        "Presets:\n{}\n\nExamples:\n  ebm sample --energy ring8 --sampler mala --chains 4096 --steps 1000 --step-size 0.02 \
         --out samples.npy --png ring8.png\n  ebm sample --energy two_modes --sampler hmc --warmup 200 --tempering 6 \
         --steps 2000 --diagnostics diag.json",
        presets.join("\n")
    )
}

/// The file an `--energy` argument reads (a spec file, the weights of mlp:/net:, an rbm: checkpoint), for
/// [`crate::cli::outputs::Paths::input`]; presets and inline JSON name no file and are not registered.
pub fn energy_file(energy: &str) -> &Path {
    let arg = energy.trim_start();
    Path::new(["mlp:", "net:", "rbm:"].iter().find_map(|p| arg.strip_prefix(p)).unwrap_or(energy))
}

/// Every output checked before any sampling: format by extension, folder, and no output the
/// same file as the energy's file or another output.
fn check_outputs(args: &SampleArgs) -> anyhow::Result<()> {
    let mut paths = crate::cli::outputs::Paths::new();
    paths.input("--energy", energy_file(&args.energy));
    for (path, flag, ext) in [
        (&args.out, "--out", &["npy", "csv"][..]),
        (&args.png, "--png", &["png"]),
        (&args.trace, "--trace", &["npy"]),
        (&args.diagnostics, "--diagnostics", &["json"]),
    ] {
        if let Some(p) = path {
            paths.output(flag, p, ext)?;
        }
    }
    Ok(())
}

/// The sampler's settings; `check`: keep a thinned trace for the convergence check even without
/// --trace or --diagnostics.
fn sampler_config(args: &SampleArgs, check: bool) -> anyhow::Result<SamplerConfig> {
    let kind = match args.sampler.unwrap_or(SamplerArg::Mala) {
        SamplerArg::Ula => SamplerKind::Ula,
        SamplerArg::Mala => SamplerKind::Mala,
        SamplerArg::Hmc => SamplerKind::Hmc,
        SamplerArg::Rwmh => SamplerKind::Rwmh,
        other => bail!(
            "--sampler {} is for discrete models (ising:, potts:, bm:, hopfield:); continuous energies take ula, mala, hmc or rwmh",
            other.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string())
        ),
    };
    let mut config = SamplerConfig::new(kind, args.step_size, args.seed);
    config.noise_scale = args.noise_std;
    config.grad_clamp = args.grad_clamp;
    config.box_clamp = args.box_clamp;
    if kind == SamplerKind::Hmc {
        config.leapfrog = args.leapfrog;
        config.leapfrog_jitter = args.leapfrog_jitter;
        config.step_jitter = args.step_jitter;
    }
    config.tempering = ladder(args)?;
    if args.trace.is_some() || args.diagnostics.is_some() || check {
        let draws = args.steps / args.thin;
        if args.diagnostics.is_some() && (draws as usize) < MIN_DRAWS {
            bail!(
                "--diagnostics needs at least {MIN_DRAWS} draws per chain, but --steps {} / --thin {} gives {draws}; \
                 raise --steps or lower --thin",
                args.steps,
                args.thin
            );
        }
        config.trace_every = args.thin;
        config.trace_start = args.warmup;
        config.trace_steps = args.steps;
    }
    config.validate().map_err(|e| with_flag_names(e, SAMPLE_FLAGS))?;
    Ok(config)
}

/// The temperature ladder of --tempering / --max-temperature / --temperatures, if any.
fn ladder(args: &SampleArgs) -> anyhow::Result<Option<Tempering>> {
    Ok(match (&args.temperatures, args.tempering) {
        (Some(t), _) => {
            Some(Tempering::from_temperatures(t, args.swap_every).map_err(|e| with_flag_names(e, SAMPLE_FLAGS))?)
        }
        (None, 1) => None,
        (None, r) => {
            if !(args.max_temperature > 1.0 && args.max_temperature.is_finite()) {
                bail!("invalid --max-temperature: must be a finite number above 1, got {}", args.max_temperature);
            }
            Some(Tempering::geometric(r as usize, args.max_temperature, args.swap_every))
        }
    })
}

/// The host memory a run will need (states, replicas, trace, diagnostics, outputs), checked
/// before anything is allocated: an oversized request is refused naming its flag; then the work.
fn plan(args: &SampleArgs, energy: &Energy, check: bool) -> anyhow::Result<()> {
    let dim = energy.dim();
    let (chains, d) = (args.chains as u64, dim as u64);
    let replicas = args.temperatures.as_ref().map_or(args.tempering as u64, |t| t.len() as u64).max(1);
    let mut plan = Plan::new();
    // Initial states, the sampler's states, proposals and gradients, and the read-back copy;
    // per chain, its statistics and step size.
    let chain_bytes = 6 * 4 * d + 64;
    plan.add(format!("--chains {} x dim {dim}", args.chains), "the chain states", &[chains], chain_bytes, 1);
    if replicas > 1 {
        let flag = if args.temperatures.is_some() {
            format!("--temperatures ({replicas} values)")
        } else {
            format!("--tempering {replicas}")
        };
        plan.add(flag, "the tempering replicas' states", &[chains, replicas - 1], chain_bytes, 1);
    }
    if args.trace.is_some() || args.diagnostics.is_some() || check {
        let slots = (args.steps / args.thin) as u64;
        // The sampler's trace of every replica, the temperature-1 copy, and the .npy encoding
        // or the diagnostics' per-dimension f64 draws and their ranks.
        let flag = format!("--steps {} / --thin {} x --chains {} x dim {dim}", args.steps, args.thin, args.chains);
        plan.add(flag, "the trace", &[slots, chains, d], 4, replicas + 3);
        if args.diagnostics.is_some() || check {
            // One dimension at a time: its draws as f64, sorted, split, ranked, folded.
            plan.add(
                format!("--steps {} / --thin {} x --chains {}", args.steps, args.thin, args.chains),
                "the diagnostics' draws",
                &[slots, chains],
                8,
                8,
            );
        }
    }
    if let Some(out) = &args.out {
        // CSV text takes up to ~16 bytes per value.
        plan.add(format!("--out {}", out.display()), "the written samples", &[chains, d], 16, 1);
    }
    plan.check()?;
    work(args, energy)
}

/// The work a run states (chains x replicas x steps x gradients per step x one evaluation's
/// cost), refused when absurd: a long run is fine, one that would outlast the machine is a typo.
fn work(args: &SampleArgs, energy: &Energy) -> anyhow::Result<()> {
    let hmc = matches!(args.sampler, Some(SamplerArg::Hmc));
    if hmc {
        plan::per_step("--leapfrog", args.leapfrog as u64, plan::MAX_STEPS_PER_STEP, "leapfrog steps per proposal")?;
    }
    // The most gradients one step takes: L + J leapfrog steps for HMC, one otherwise.
    let (per_step, per_step_flag) = if hmc {
        (args.leapfrog as u64 + args.leapfrog_jitter as u64, format!(" x --leapfrog {}", args.leapfrog))
    } else {
        (1, String::new())
    };
    let replicas = args.temperatures.as_ref().map_or(args.tempering as u64, |t| t.len() as u64).max(1);
    let tempering = if replicas > 1 { format!(" x {replicas} replicas") } else { String::new() };
    let cost = energy.checked_evaluation_cost("--energy")?;
    let mut work = Work::new();
    for (flag, steps, what) in [("--steps", args.steps, "sampling"), ("--warmup", args.warmup, "the warm-up")] {
        let flags = format!("--chains {} x {flag} {steps}{per_step_flag}{tempering}", args.chains);
        work.add(
            flags,
            format!("{what} ({cost} operations per evaluation of the energy)"),
            &[args.chains as u64, replicas, steps as u64, per_step, cost],
        );
    }
    work.check()?;
    Ok(())
}

/// The most host memory the convergence check of a run without --trace or --diagnostics may
/// take (its thinned trace); a larger run is not checked unless asked, and says so.
const CHECK_BYTES: u64 = 64 << 20;

/// Whether a run keeps a thinned trace to check R-hat and bulk ESS (Ok; without --diagnostics
/// only when the trace is small), or why not.
fn convergence_check(args: &SampleArgs, dim: usize) -> Result<(), String> {
    if args.no_check && args.trace.is_none() && args.diagnostics.is_none() {
        return Err("--no-check".into());
    }
    let draws = (args.steps / args.thin) as u64;
    if draws < MIN_DRAWS as u64 {
        return Err(format!(
            "--steps {} / --thin {} gives {draws} draws per chain, fewer than {MIN_DRAWS}",
            args.steps, args.thin
        ));
    }
    // --diagnostics checks it anyway; a run without it (with or without --trace) only when small.
    if args.diagnostics.is_some() {
        return Ok(());
    }
    let replicas = args.temperatures.as_ref().map_or(args.tempering as u64, |t| t.len() as u64).max(1);
    let bytes = draws * args.chains as u64 * dim as u64 * 4 * (replicas + 3);
    if bytes > CHECK_BYTES {
        return Err(format!(
            "its trace would take {} MiB; --diagnostics FILE (or a larger --thin) checks it",
            bytes >> 20
        ));
    }
    Ok(())
}

/// A chain that accepts fewer than this fraction of its proposals is reported as stuck ...
const STUCK_RATE: f64 = 0.01;
/// ... when it ran at least this many steps (fewer say too little about one chain).
const STUCK_MIN_STEPS: u32 = 100;

pub fn run(args: &SampleArgs, given: &Given) -> anyhow::Result<()> {
    let renamed;
    let args = match args.noise_scale {
        Some(v) => {
            eprintln!(
                "warning: ebm sample's --noise-scale is now spelled --noise-std (the noise's standard deviation, as \
                 in train and restore; train's --noise-scale is a multiple of sqrt(2h))"
            );
            renamed = SampleArgs { noise_std: Some(v), noise_scale: None, ..args.clone() };
            &renamed
        }
        None => args,
    };
    if crate::discrete::spec::is_discrete(&args.energy) {
        return spins::run(args);
    }
    if args.steps == 0 && !matches!(args.init.as_str(), "generator" | "replay") {
        bail!(
            "--steps 0 samples nothing; it is for --init generator or replay (a checkpoint's generator samples or \
             replay buffer as they are)"
        );
    }
    let energy = with_class(spec::resolve_energy(&args.energy)?, args.class)?;
    let (resolved, settings) = resolve::resolve(args, given, &energy)?;
    let args = &resolved;
    let dim = energy.dim();
    check_outputs(args)?;
    let schedule = anneal::schedule(args)?;
    let check = match &schedule {
        Some(_) => Err("annealed Langevin: the target changes level by level".to_string()),
        None => convergence_check(args, dim),
    };
    // The work and memory of every step, all the levels' included.
    let steps = schedule.as_ref().map_or(args.steps, |s| s.total_steps());
    plan(&SampleArgs { steps, ..args.clone() }, &energy, check.is_ok())?;
    let ctx = backend::open(args.backend)?;
    // Traces are not yet kept on the GPU for networks of layer kernels.
    let check = match check {
        Ok(()) if ctx.is_some() && energy.has_layered_net() => {
            Err("the GPU executor keeps no trace for networks of layer kernels; --backend cpu checks it".to_string())
        }
        other => other,
    };
    let mut config = sampler_config(args, check.is_ok())?;
    let (first_chain, chains) = shard_chains(args)?;
    config.chain_offset = first_chain;
    let kind = config.kind;
    let adaptation = (args.warmup > 0).then(|| Adaptation {
        target_accept: args.target_accept.unwrap_or(kind.default_target_accept()),
        per_chain: args.adapt_per_chain,
        adapt_scale: !args.no_adapt_mass,
        ..Adaptation::new(kind)
    });
    if let Some(a) = &adaptation {
        a.validate(kind).map_err(|e| with_flag_names(e, SAMPLE_FLAGS))?;
    } else if args.target_accept.is_some() {
        bail!("--target-accept needs --warmup");
    }
    let start = init::Init::new(&args.init, args.init_std, args.seed, &args.energy, &energy);
    let init = init::initial_states(&start, first_chain, chains, dim)?;
    let fixed = args.fix.as_deref().map(|f| init::parse_fix(f, dim)).transpose()?;
    let mut init = init;
    if let Some(fixed) = &fixed {
        if adaptation.as_ref().is_some_and(|a| a.adapt_scale) {
            bail!("--fix with --warmup needs --no-adapt-mass (the mass adaptation would free the fixed dimensions)");
        }
        init::apply_fix(&mut init, fixed);
    }
    if steps == 0 {
        return init::write_as_samples(args, &energy, &init, chains);
    }
    let mut sampler: Box<dyn ChainSampler> = match ctx {
        Some(ctx) => crate::sampler::layered::gpu_sampler(ctx, &energy, config.clone(), &init)?,
        None => Box::new(CpuSampler::new(&energy, config.clone(), &init)?),
    };
    if let Some(fixed) = &fixed {
        let scale: Vec<f32> = fixed.iter().map(|v| if v.is_some() { 0.0 } else { 1.0 }).collect();
        sampler.set_dim_scale(&scale).context("--fix")?;
    }

    // Inline JSON would make an unreadable (and cut) name: say where the spec came from instead.
    let name = if args.energy.trim_start().starts_with('{') { "inline JSON".to_string() } else { args.energy.clone() };
    let shard = args.shard.map_or_else(String::new, |(i, n)| {
        format!(" (shard {i}/{n}: chains {first_chain}..{})", first_chain as usize + chains - 1)
    });
    let dynamics =
        schedule.as_ref().map_or_else(|| format!("{} step {}", kind.name(), args.step_size), |s| s.describe());
    println!(
        "energy {name} ({}, d={dim}); {dynamics}; {chains} chains{shard} x {steps} steps{} on {}",
        energy.kind(),
        if sampler.replicas() > 1 { format!(" x {} replicas", sampler.replicas()) } else { String::new() },
        sampler.executor()
    );
    println!("{}", settings.line());
    // The header goes out before the work, so a log shows what runs while it runs.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let warmup_start = Instant::now();
    if let Some(a) = &adaptation {
        let spinner = crate::cli::progress::bar(0)
            .with_style(indicatif::ProgressStyle::default_spinner())
            .with_message(format!("warm-up: {} steps", args.warmup));
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        warm_up(sampler.as_mut(), args.warmup, a)?;
        spinner.finish_and_clear();
    }
    let warmup_seconds = warmup_start.elapsed().as_secs_f64();
    let after_warmup = sampler.stats()?;

    let mut bar = crate::cli::progress::Progress::new(
        "sampling",
        "steps",
        steps as u64,
        "{bar:40} {pos}/{len} steps  {per_sec}  eta {eta}",
    );
    let start = Instant::now();
    if let Some(schedule) = &schedule {
        crate::sampler::anneal::run(sampler.as_mut(), schedule, |_, done| bar.set_position(done as u64))?;
    } else {
        // About 50 progress updates; each chunk is a run that waits for its work.
        let chunk = (steps / 50).max(1);
        let mut done = 0;
        while done < steps {
            let n = chunk.min(steps - done);
            sampler.run(n)?;
            done += n;
            bar.set_position(done as u64);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let mut states = sampler.state()?;
    if let Some((lo, hi)) = args.final_box {
        states.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
    }
    let all_stats = sampler.stats()?;
    let replicas = sampler.replicas();
    let phase = all_stats.since(&after_warmup);
    let stats = phase.replica(0, replicas);
    if adaptation.is_some() {
        let steps = sampler.step_sizes();
        println!(
            "warm-up {} steps in {warmup_seconds:.3} s; adapted step size {:.4} (temperature 1)",
            args.warmup, steps[0]
        );
    }
    let dispatches = sampler.dispatches_per_step();
    println!(
        "time {seconds:.3} s, {:.3e} chain-steps/s{}",
        (chains * replicas) as f64 * steps as f64 / seconds,
        if dispatches > 0.0 { format!(", {dispatches:.4} dispatches/step") } else { String::new() }
    );
    let acceptance = acceptance_summary(&stats, args.steps);
    if kind.is_adjusted() {
        println!("acceptance {:.3} (chains from {:.3} to {:.3})", acceptance.0, acceptance.1, acceptance.2);
    }
    let swap_rates = swap_acceptance(&phase, replicas, args.swap_every, sampler.steps_done(), args.warmup);
    if let Some(rates) = &swap_rates {
        println!(
            "swap acceptance per neighbour pair: {}",
            rates.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ")
        );
    }
    let finite: Vec<f64> =
        stats.energies.iter().zip(&stats.frozen).filter(|(_, f)| !**f).map(|(&e, _)| e as f64).collect();
    if !finite.is_empty() {
        println!("mean energy {:.4}", finite.iter().sum::<f64>() / finite.len() as f64);
    }
    // A chain that accepts (almost) nothing keeps the state it reached; over 100+ steps a
    // healthy chain with even 5 % acceptance accepts at least one proposal in 99.4 % of cases.
    let stuck =
        if kind.is_adjusted() && args.steps >= STUCK_MIN_STEPS { stats.stuck_count(args.steps, STUCK_RATE) } else { 0 };
    if stuck > 0 {
        eprintln!(
            "warning: {stuck} of {chains} chains accepted fewer than {:.0} % of their proposals: they are stuck \
             and their states are not samples; try a smaller --step-size, --warmup N (adapts the step size; \
             --adapt-per-chain gives each chain its own) or --tempering R",
            STUCK_RATE * 100.0
        );
    }
    let frozen = all_stats.frozen_count();
    if frozen > 0 {
        eprintln!(
            "warning: {frozen} of {} chains reached a non-finite state, energy or gradient and were frozen at \
             their last finite state; try a smaller --step-size or --grad-clamp",
            chains * replicas
        );
    }
    let record = args.shard.map(|shard| {
        let mut r = crate::cli::shard::Record::new(shard, args.chains, first_chain, chains, args.seed, &energy);
        r.settings = shard_settings(args, &sampler.executor());
        r
    });
    if let Some(path) = &args.out {
        io::write_samples(path, &states, chains, dim)?;
        if let Some(r) = &record {
            r.write(path, "final states", &states)?;
        }
        println!("wrote {} [{chains}, {dim}]", path.display());
    }
    let trace = sampler.trace()?;
    if let (Some(path), Some(trace)) = (&args.trace, &trace) {
        let slots = trace.len() / (chains * dim);
        io::npy::write_f32(path, trace, &[slots, chains, dim])?;
        if let Some(r) = &record {
            r.write(path, "trace", trace)?;
        }
        println!("wrote {} [{slots}, {chains}, {dim}]", path.display());
    }
    if let (Some(path), Some(trace)) = (&args.diagnostics, &trace) {
        let summaries = diagnostics::summarize_trace(trace, chains, dim)?;
        print_summaries(&summaries);
        let energy_trace: Vec<f64> = trace
            .chunks(chains * dim)
            .map(|slot| {
                // Frozen chains are NaN in the trace: the mean is over the others.
                let live: Vec<f64> = slot
                    .chunks(dim)
                    .filter(|x| x.iter().all(|v| v.is_finite()))
                    .map(|x| energy.energy(x) as f64)
                    .collect();
                live.iter().sum::<f64>() / live.len().max(1) as f64
            })
            .collect();
        let report = serde_json::json!({
            "energy": args.energy,
            "sampler": kind.name(),
            "executor": sampler.executor(),
            "chains": chains,
            "first_chain": first_chain,
            "replicas": replicas,
            "temperatures": config.tempering.as_ref().map(|t| t.betas.iter().map(|b| 1.0 / b).collect::<Vec<f32>>()),
            "warmup_steps": args.warmup,
            "steps": args.steps,
            "thin": args.thin,
            "draws_per_chain": trace.len() / (chains * dim),
            "step_size": sampler.step_sizes()[0],
            "sampling_seconds": seconds,
            "acceptance": {"mean": acceptance.0, "min": acceptance.1, "max": acceptance.2},
            "swap_acceptance": swap_rates,
            "frozen_chains": frozen,
            "stuck_chains": stuck,
            "dimensions": summaries.iter().enumerate().map(|(i, s)| serde_json::json!({
                "dim": i, "mean": s.mean, "sd": s.sd, "q05": s.q05, "q50": s.q50, "q95": s.q95,
                "rhat": s.rhat, "ess_bulk": s.ess_bulk, "ess_tail": s.ess_tail, "chains_used": s.chains,
                "ess_bulk_per_second": s.ess_bulk / seconds,
            })).collect::<Vec<_>>(),
            "warnings": diagnostics::convergence_warnings(&summaries),
            "energy_trace": energy_trace,
        });
        io::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    // --diagnostics printed its table and warnings above.
    match (&check, &trace) {
        _ if args.diagnostics.is_some() => {}
        (Ok(()), Some(trace)) => match diagnostics::summarize_trace(trace, chains, dim) {
            Ok(summaries) => report::print_convergence(&summaries, args.thin),
            Err(e) => println!("convergence: not checked ({e})"),
        },
        (Err(why), _) => println!("convergence: not checked ({why})"),
        _ => {}
    }
    if let Some(path) = &args.png {
        let title = format!("{name}: {chains} chains, {dynamics}, {steps} steps");
        figure::write(path, &title, &energy, &states)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The energy with a network's head replaced by the class-conditional one, E(x, Y) = -f(x)[Y].
fn with_class(energy: Energy, class: Option<usize>) -> anyhow::Result<Energy> {
    let Some(y) = class else { return Ok(energy) };
    match energy {
        Energy::Net(net) if net.outputs > 1 => {
            if y >= net.outputs {
                anyhow::bail!("--class {y}: the network has {} classes (0..{})", net.outputs, net.outputs - 1);
            }
            Ok(Energy::from_network(net.with_head(crate::nn::Head::Class(y))?))
        }
        Energy::Sum { .. } => anyhow::bail!(
            "--class takes a lone classifier network; in a sum, give each classifier term its class: {{\"type\": \"net\", \"weights\": FILE, \"head\": \"class:{y}\"}}"
        ),
        _ => anyhow::bail!("--class needs a classifier network (K > 1 outputs, e.g. net:JEM_CHECKPOINT)"),
    }
}
