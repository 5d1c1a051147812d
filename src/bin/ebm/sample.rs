//! `ebm sample`: run chains, write their final states, print acceptance and throughput.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use ebm_gpu::energy::{Energy, spec};
use ebm_gpu::gpu::GpuContext;
use ebm_gpu::io::{self, figure};
use ebm_gpu::sampler::{cpu::CpuSampler, gpu::GpuSampler};
use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SamplerArg {
    /// Unadjusted Langevin: x' = x - h grad E + s xi (biased by O(h), no rejections).
    Ula,
    /// Metropolis-adjusted Langevin: exact target, reports acceptance.
    Mala,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Backend {
    Gpu,
    Cpu,
    /// The GPU if an adapter opens, otherwise the CPU (with a note).
    Auto,
}

/// Sample from p(x) ∝ exp(-E(x)) with many chains at once.
#[derive(Args, Debug)]
#[command(after_help = sample_after_help())]
pub struct SampleArgs {
    /// Energy: a preset name, a JSON spec file, or inline JSON (see the schema in README.md).
    #[arg(long, default_value = "ring8")]
    pub energy: String,
    #[arg(long, value_enum, default_value = "mala")]
    pub sampler: SamplerArg,
    /// Number of independent chains.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub chains: u32,
    /// Steps per chain.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: u32,
    /// Step size h (> 0).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub step_size: f32,
    /// ULA only: noise standard deviation (default sqrt(2h)).
    #[arg(long, allow_negative_numbers = true)]
    pub noise_scale: Option<f32>,
    /// ULA only: clamp each gradient component to [-C, C].
    #[arg(long, allow_negative_numbers = true)]
    pub grad_clamp: Option<f32>,
    /// ULA only: clamp states to the box LO,HI after each step.
    #[arg(long = "box", value_parser = parse_box, value_name = "LO,HI", allow_hyphen_values = true)]
    pub box_clamp: Option<(f32, f32)>,
    /// Random seed: chains are a pure function of (seed, chain index).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Standard deviation of the Gaussian the chains start from.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub init_std: f32,
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// Write the final states, [chains, dim] float32, as .npy or .csv.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write a figure: for 2-d energies the density with the samples over it, else histograms.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Write the thinned trace, [steps / thin, chains, dim] float32, as .npy.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Keep every THIN-th state in the trace.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub thin: u32,
}

fn sample_after_help() -> String {
    let presets: Vec<String> = spec::PRESETS.iter().map(|(n, d)| format!("  {n:<12} {d}")).collect();
    format!(
        "Presets:\n{}\n\nExample:\n  ebm sample --energy ring8 --sampler mala --chains 4096 --steps 1000 --step-size 0.02 \
         --out samples.npy --png ring8.png",
        presets.join("\n")
    )
}

fn parse_box(s: &str) -> Result<(f32, f32), String> {
    let (lo, hi) = s.split_once(',').ok_or("expected LO,HI")?;
    let num = |v: &str| v.trim().parse::<f32>().map_err(|e| format!("{v:?}: {e}"));
    Ok((num(lo)?, num(hi)?))
}

/// Fails early (before any sampling) if `path` cannot be written with one of `extensions`.
fn check_output(path: &Path, flag: &str, extensions: &[&str]) -> anyhow::Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if !extensions.contains(&ext.as_str()) {
        bail!("{flag} {}: the file name must end in .{}", path.display(), extensions.join(" or ."));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!("{flag} {}: directory {} does not exist", path.display(), dir.display());
    }
    let probe = dir.join(format!(".ebm-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| format!("{flag} {}: directory {} is not writable", path.display(), dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn open_gpu(backend: Backend) -> anyhow::Result<Option<Arc<GpuContext>>> {
    match backend {
        Backend::Cpu => Ok(None),
        Backend::Gpu => Ok(Some(Arc::new(GpuContext::new()?))),
        Backend::Auto => match GpuContext::new() {
            Ok(ctx) => Ok(Some(Arc::new(ctx))),
            Err(e) => {
                eprintln!("note: no GPU ({e}); using the CPU executor");
                Ok(None)
            }
        },
    }
}

pub fn run(args: &SampleArgs) -> anyhow::Result<()> {
    let energy = spec::resolve_energy(&args.energy)?;
    let dim = energy.dim();
    if let Some(p) = &args.out {
        check_output(p, "--out", &["npy", "csv"])?;
    }
    if let Some(p) = &args.png {
        check_output(p, "--png", &["png"])?;
    }
    if let Some(p) = &args.trace {
        check_output(p, "--trace", &["npy"])?;
    }
    if !(args.init_std > 0.0 && args.init_std.is_finite()) {
        bail!("invalid --init-std: must be a positive finite number, got {}", args.init_std);
    }
    let kind = match args.sampler {
        SamplerArg::Ula => SamplerKind::Ula,
        SamplerArg::Mala => SamplerKind::Mala,
    };
    let mut config = SamplerConfig::new(kind, args.step_size, args.seed);
    config.noise_scale = args.noise_scale;
    config.grad_clamp = args.grad_clamp;
    config.box_clamp = args.box_clamp;
    if args.trace.is_some() {
        config.trace_every = args.thin;
        config.trace_steps = args.steps;
    }
    config.validate()?;
    let chains = args.chains as usize;
    let init = ebm_gpu::rng::initial_states(args.seed, 0, chains, dim, args.init_std);
    let mut sampler: Box<dyn ChainSampler> = match open_gpu(args.backend)? {
        Some(ctx) => Box::new(GpuSampler::new(ctx, &energy, config.clone(), &init)?),
        None => Box::new(CpuSampler::new(&energy, config.clone(), &init)?),
    };

    let bar = indicatif::ProgressBar::new(args.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {per_sec}  eta {eta}")
            .expect("static progress template"),
    );
    // About 50 progress updates; each chunk is a run that waits for its work.
    let chunk = (args.steps / 50).max(1);
    let start = Instant::now();
    let mut done = 0;
    while done < args.steps {
        let n = chunk.min(args.steps - done);
        sampler.run(n)?;
        done += n;
        bar.set_position(done as u64);
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let states = sampler.state()?;
    let stats = sampler.stats()?;
    println!(
        "energy {} ({}, d={dim}); {:?} step {}; {chains} chains x {} steps on {}",
        args.energy.chars().take(60).collect::<String>(),
        energy.kind(),
        args.sampler,
        args.step_size,
        args.steps,
        sampler.executor()
    );
    let dispatches = sampler.dispatches_per_step();
    println!(
        "time {seconds:.3} s, {:.3e} chain-steps/s{}",
        chains as f64 * args.steps as f64 / seconds,
        if dispatches > 0.0 { format!(", {dispatches:.4} dispatches/step") } else { String::new() }
    );
    if kind == SamplerKind::Mala {
        let rates: Vec<f64> = stats.accepted.iter().map(|&a| a as f64 / args.steps as f64).collect();
        let (lo, hi) = rates.iter().fold((1.0f64, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
        println!("acceptance {:.3} (chains from {lo:.3} to {hi:.3})", stats.acceptance_rate(args.steps));
    }
    let finite: Vec<f64> = stats.energies.iter().zip(&stats.frozen).filter(|(_, f)| !**f).map(|(&e, _)| e as f64).collect();
    if !finite.is_empty() {
        println!("mean energy {:.4}", finite.iter().sum::<f64>() / finite.len() as f64);
    }
    let frozen = stats.frozen_count();
    if frozen > 0 {
        eprintln!(
            "warning: {frozen} of {chains} chains reached a non-finite state, energy or gradient and were frozen at \
             their last finite state; try a smaller --step-size or --grad-clamp"
        );
    }
    if let Some(path) = &args.out {
        io::write_samples(path, &states, chains, dim)?;
        println!("wrote {} [{chains}, {dim}]", path.display());
    }
    if let (Some(path), Some(trace)) = (&args.trace, sampler.trace()?) {
        let slots = trace.len() / (chains * dim);
        io::npy::write_f32(path, &trace, &[slots, chains, dim])?;
        println!("wrote {} [{slots}, {chains}, {dim}]", path.display());
    }
    if let Some(path) = &args.png {
        write_figure(path, &energy, &states)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// 2-d: the density exp(-E) on a grid around the samples, samples drawn over it; otherwise
/// histograms of the first dimensions.
fn write_figure(path: &Path, energy: &Energy, states: &[f32]) -> anyhow::Result<()> {
    let dim = energy.dim();
    if dim != 2 {
        figure::histograms_png(path, states, dim, dim.min(8))?;
        return Ok(());
    }
    let (x_min, x_max, y_min, y_max) = figure::auto_bounds(states, 0.15, 0.002);
    let grid = figure::Grid2d { x_min, x_max, y_min, y_max, nx: 240, ny: 240 };
    let energies: Vec<f32> = grid.points().chunks(2).map(|p| energy.energy(p)).collect();
    let shown = &states[..states.len().min(2 * 3000)];
    figure::energy_heatmap_png(path, &grid, &energies, shown, 3)?;
    Ok(())
}
