//! `ebm bench`: sampler throughput on the GPU and CPU executors, side by side in one run.
//!
//! Every case builds a fresh sampler from [`rng::initial_states`], runs a short warm-up (so
//! pipeline creation, shader JIT and first-touch allocation stay out of the timing), then times
//! one `run(steps)`; the GPU `run` returns only once the device has finished the work.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::gpu::GpuContext;
use ebm_gpu::rng;
use ebm_gpu::sampler::cpu::CpuSampler;
use ebm_gpu::sampler::gpu::GpuSampler;
use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};

/// Which executors to benchmark.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The wgpu compute executor only (fails if no adapter can be opened).
    Gpu,
    /// The rayon CPU executor only.
    Cpu,
    /// Both, one after the other for each case (the GPU is skipped with a note if unavailable).
    Both,
}

/// Measures Langevin sampler throughput (ULA and MALA) on the GPU and CPU executors.
///
/// For each energy (ring8: 2-d, 8-component mixture; a 10-d diagonal Gaussian; a 32-d double
/// well), sampler and chain count, each executor gets a fresh sampler, one untimed warm-up run
/// (which also keeps pipeline creation out of the timing), then one timed `run(steps)` that
/// returns once the work is done. The table reports wall seconds, chain-steps per second
/// (chains x steps / seconds) and, on the GPU, kernel dispatches per step. Timings on a
/// software adapter (llvmpipe/lavapipe, SwiftShader) say nothing about a real GPU.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Cases: ring8 (2-d, 8-component mixture), a 10-d diagonal Gaussian and a 32-d double well; \
ULA and MALA; 1024, 16384 and 65536 chains. Each executor gets a fresh sampler and an untimed warm-up run \
(pipeline creation excluded), then one timed run(steps) that returns once the work is done.\n\
Columns: seconds of the timed run, chain-steps/s = chains x steps / seconds, dispatches/step = kernel \
dispatches per step on the GPU (- on the CPU). A software adapter's timings (llvmpipe/lavapipe) say nothing \
about a real GPU.")]
pub struct BenchArgs {
    /// Executors to benchmark: gpu, cpu or both.
    #[arg(long, value_enum, default_value_t = Backend::Both)]
    pub backend: Backend,
    /// Smoke run: 256 and 1024 chains and few steps, done in seconds even on a software adapter.
    #[arg(long)]
    pub quick: bool,
    /// Steps per timed run for every case (default: chosen per case so each timing does a
    /// fixed amount of work).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: Option<u32>,
    /// Also write the table as CSV to this path (raw numbers, one row per timing).
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,
}

/// Seed for initial states and sampler noise (any fixed value: timings don't depend on it).
const SEED: u64 = 20261122;

struct Case {
    /// Short name for the table.
    name: &'static str,
    /// Preset name or inline JSON spec for `resolve_energy`.
    spec: String,
    /// Step size suited to the energy's scale (keeps MALA's acceptance reasonable).
    step_size: f32,
    /// Chain-steps per timing in a full run: 0.5-2 s per timing on the lavapipe adapter and
    /// the CPU executor of a 2-core x86_64 machine (full run about 45 s there), so every
    /// timing stays well above 0.2 s; a fast GPU reads noisier at 1024 chains.
    work: f64,
}

fn cases() -> Vec<Case> {
    let d = 10;
    let gaussian = serde_json::json!({
        "type": "gaussian",
        "mean": (0..d).map(|i| 0.5 * i as f64 - 2.0).collect::<Vec<_>>(),
        "std": (0..d).map(|i| 0.5 + 0.15 * i as f64).collect::<Vec<_>>(),
    });
    vec![
        Case { name: "ring8", spec: "ring8".into(), step_size: 0.01, work: 6.0e6 },
        Case { name: "gaussian10", spec: gaussian.to_string(), step_size: 0.05, work: 8.0e6 },
        Case { name: "double_well32", spec: r#"{"type":"double_well","dim":32}"#.into(), step_size: 0.005, work: 3.0e6 },
    ]
}

/// Steps for one timing: the case's chain-step budget spread over the chains (a fixed 50k
/// chain-steps, at most 50 steps, with `--quick`).
fn default_steps(case: &Case, quick: bool, chains: usize) -> u32 {
    let (work, lo, hi) = if quick { (5.0e4, 2.0, 50.0) } else { (case.work, 5.0, 10000.0) };
    (work / chains as f64).clamp(lo, hi).round() as u32
}

struct Row {
    executor: &'static str,
    energy: &'static str,
    dim: usize,
    sampler: &'static str,
    chains: usize,
    steps: u32,
    seconds: f64,
    /// None on the CPU executor.
    dispatches_per_step: Option<f64>,
    frozen: usize,
}

impl Row {
    fn rate(&self) -> f64 {
        self.chains as f64 * self.steps as f64 / self.seconds
    }
}

/// Warm-up run (untimed), then one timed `run(steps)`. Shared by both executors.
fn time_run(sampler: &mut dyn ChainSampler, steps: u32) -> Result<f64> {
    sampler.run(steps.div_ceil(10).max(2)).context("warm-up run")?;
    let start = Instant::now();
    sampler.run(steps).context("timed run")?;
    Ok(start.elapsed().as_secs_f64())
}

/// `12.3M`-style formatting with three significant digits.
fn si(x: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    // Thresholds just below each boundary so that rounding never prints "1000k" or "10.00M".
    let (scale, unit) = UNITS.iter().copied().find(|&(s, _)| x >= s * 0.9995).unwrap_or((1.0, ""));
    let v = x / scale;
    let digits = if v >= 99.95 { 0 } else if v >= 9.995 { 1 } else { 2 };
    format!("{v:.digits$}{unit}")
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let want_gpu = matches!(args.backend, Backend::Gpu | Backend::Both);
    let want_cpu = matches!(args.backend, Backend::Cpu | Backend::Both);

    let ctx = if want_gpu {
        match GpuContext::new() {
            Ok(ctx) => Some(Arc::new(ctx)),
            Err(e) if args.backend == Backend::Both => {
                println!("note: no GPU adapter ({e}); benchmarking the CPU executor only");
                None
            }
            Err(e) => return Err(anyhow::Error::new(e).context("opening a GPU adapter for --backend gpu")),
        }
    } else {
        None
    };

    let gpu_desc = ctx.as_ref().map_or_else(|| "not benchmarked".to_string(), |c| c.describe());
    let cpu_desc =
        if want_cpu { format!("{} rayon threads", rayon::current_num_threads()) } else { "not benchmarked".to_string() };
    println!("gpu: {gpu_desc}; cpu: {cpu_desc}");
    if let Some(info) = ctx.as_ref().and_then(|c| c.adapter_info())
        && info.device_type == ebm_gpu::wgpu::DeviceType::Cpu
    {
        println!("note: {} is a software adapter: its timings say nothing about a real GPU", info.name);
    }

    let chain_counts: &[usize] = if args.quick { &[256, 1024] } else { &[1024, 16384, 65536] };
    let mut rows = Vec::new();
    for case in cases() {
        let energy = resolve_energy(&case.spec).with_context(|| format!("energy {}", case.name))?;
        let dim = energy.dim();
        for (kind, sampler_name) in [(SamplerKind::Ula, "ULA"), (SamplerKind::Mala, "MALA")] {
            for &chains in chain_counts {
                let steps = args.steps.unwrap_or_else(|| default_steps(&case, args.quick, chains));
                let init = rng::initial_states(SEED, 0, chains, dim, 1.0);
                let config = SamplerConfig::new(kind, case.step_size, SEED);
                let label = format!("{} {sampler_name} {chains} chains", case.name);
                let mut bench = |executor: &'static str, sampler: &mut dyn ChainSampler| -> Result<()> {
                    let seconds = time_run(sampler, steps).with_context(|| format!("{executor}: {label}"))?;
                    let frozen = sampler.stats()?.frozen_count();
                    let dispatches_per_step = (executor == "gpu").then(|| sampler.dispatches_per_step());
                    let row = Row {
                        executor,
                        energy: case.name,
                        dim,
                        sampler: sampler_name,
                        chains,
                        steps,
                        seconds,
                        dispatches_per_step,
                        frozen,
                    };
                    eprintln!("  {executor:>3}  {label}: {steps} steps in {seconds:.3} s ({}/s)", si(row.rate()));
                    rows.push(row);
                    Ok(())
                };
                if let Some(ctx) = &ctx {
                    let mut s = GpuSampler::new(ctx.clone(), &energy, config.clone(), &init)
                        .with_context(|| format!("building the GPU sampler for {label}"))?;
                    bench("gpu", &mut s)?;
                }
                if want_cpu {
                    let mut s = CpuSampler::new(&energy, config.clone(), &init)
                        .with_context(|| format!("building the CPU sampler for {label}"))?;
                    bench("cpu", &mut s)?;
                }
            }
        }
    }

    println!();
    print!("{}", table(&rows));
    let frozen: usize = rows.iter().map(|r| r.frozen).sum();
    if frozen > 0 {
        println!("note: {frozen} chains froze (non-finite state) during the timings; their cases may read fast");
    }
    if let Some(path) = &args.csv {
        ebm_gpu::io::write_atomic(path, csv(&rows).as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

const HEADERS: [&str; 9] =
    ["executor", "energy", "dim", "sampler", "chains", "steps", "seconds", "chain-steps/s", "dispatches/step"];

fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.executor.to_string(),
                r.energy.to_string(),
                r.dim.to_string(),
                r.sampler.to_string(),
                r.chains.to_string(),
                r.steps.to_string(),
                format!("{:.3}", r.seconds),
                si(r.rate()),
                r.dispatches_per_step.map_or_else(|| "-".to_string(), |d| format!("{d:.3}")),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    // Text columns left-aligned, numbers right-aligned.
    let left = |i: usize| matches!(i, 0 | 1 | 3);
    let line = |row: &[String]| {
        let mut s = String::new();
        for (i, (c, &w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if left(i) {
                let _ = write!(s, "{c:<w$}");
            } else {
                let _ = write!(s, "{c:>w$}");
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&HEADERS.map(String::from));
    out += &line(&widths.map(|w| "-".repeat(w)));
    for row in &cells {
        out += &line(row);
    }
    out
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from("executor,energy,dim,sampler,chains,steps,seconds,chain_steps_per_s,dispatches_per_step\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            r.executor,
            r.energy,
            r.dim,
            r.sampler,
            r.chains,
            r.steps,
            r.seconds,
            r.rate(),
            r.dispatches_per_step.map_or_else(String::new, |d| d.to_string()),
        );
    }
    out
}
