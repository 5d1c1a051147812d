//! `ebm bench`: sampler throughput on the GPU and CPU executors, side by side in one run.
//!
//! Every case builds a fresh sampler from [`rng::initial_states`], runs a short warm-up (so
//! pipeline creation, shader JIT and first-touch allocation stay out of the timing), then times
//! one `run(steps)`; the GPU `run` returns only once the device has finished the work.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::energy::spec::resolve_energy;
use crate::energy::{Energy, EnergyInternals};
use crate::eval::diagnostics::summarize_trace;
use crate::gpu::GpuContext;
use crate::nn::{Activation, Network, NetworkInternals};
use crate::rng;
use crate::sampler::cpu::CpuSampler;
use crate::sampler::gpu::GpuSampler;
use crate::sampler::{ChainSampler, SamplerConfig, SamplerKind};
use anyhow::{Context, Result};

mod discrete;
mod nn;
mod roofline;
mod roofline_table;
mod train;

use roofline::{Cost, Peaks};

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

/// Measures sampler throughput on the GPU and CPU executors, side by side.
///
/// Suites: `langevin` (ULA and MALA on ring8, a 10-d Gaussian and a 32-d double well, 1k to
/// 64k chains), `torchebm` (the double-well sizes TorchEBM publishes, ULA and HMC with 10
/// leapfrog steps, with bulk ESS per second), `mlp` (MALA on MLP energies with model
/// GFLOP/s), `rbm`, `train` and `nn` (GEMM and convolution kernels against raw sgemm, and ULA/MALA
/// on the UvA MNIST ConvEBM through the layer kernels; its own table). Each executor gets a fresh sampler, one untimed warm-up run (which keeps pipeline
/// creation out of the timing), then one timed `run(steps)` that returns once the work is done.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Columns: seconds of the timed run; chain-steps/s = chains x steps / seconds; \
dispatches/step = kernel dispatches per step on the GPU (- on the CPU); GFLOP/s and GB/s = the roofline \
model's FLOPs and bytes per chain-step (per training point for the train and CD rows: every FLOP the \
kernels do, network, sampler arithmetic and the Philox RNG; the device-memory traffic of the GPU kernels, \
so GB/s on GPU rows only) times chain-steps/s; % roof = the row's fraction of the roofline bound \
min(peak FLOP/s, FLOPs/byte x peak bytes/s) of the GPU given by --peak-tflops and --peak-gbs (GPU rows \
only), and bound = which roof applies (compute or memory). H100 SXM: --peak-tflops 67 --peak-gbs 3350. \
--roofline-only prints the model of every workload and, with the peaks, its bound, without running \
anything; docs/roofline.md describes the model. ESS/s = the smallest bulk effective sample size over \
dimensions of the timed run, per second. A case the adapter cannot run correctly (llvmpipe's shader loop \
cap) is reported and skipped. A software adapter's timings (llvmpipe/lavapipe) say nothing about a real \
GPU.")]
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
    /// Sampler timings of at least this many seconds: a shorter timed run counts as the warm-up
    /// of the same shape, and the run is timed again with proportionally more steps (for
    /// comparisons with peers whose fixed per-call cost a short run would include; the TorchEBM
    /// sizes keep their steps) [default: 0, the steps as planned].
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    pub min_seconds: Option<f64>,
    /// Which cases: all, langevin, torchebm, mlp, rbm, train, nn or discrete.
    #[arg(long, value_enum, default_value_t = Suite::All)]
    pub suite: Suite,
    /// MNIST directory (IDX files) for the rbm suite's training rows; without it the training
    /// rows are skipped (default: where `--data mnist` finds it; see `ebm data list`).
    #[arg(long, value_name = "DIR")]
    pub mnist: Option<PathBuf>,
    /// MNIST rows one rbm training timing covers; the epoch time is scaled to 60000 rows.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(100..))]
    pub rbm_rows: u32,
    /// Also write the table as CSV to this path (raw numbers, one row per timing).
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,
    /// FP32 peak of the GPU in use, in TFLOP/s (H100 SXM: 67); with --peak-gbs, every GPU row
    /// gets its fraction of the roofline bound.
    #[arg(long, value_name = "TFLOPS", requires = "peak_gbs", value_parser = positive)]
    pub peak_tflops: Option<f64>,
    /// Memory bandwidth of the GPU in use, in GB/s (H100 SXM: 3350).
    #[arg(long, value_name = "GBS", requires = "peak_tflops", value_parser = positive)]
    pub peak_gbs: Option<f64>,
    /// Print the roofline model of every workload of --suite (FLOPs, bytes, intensity, and with
    /// --peak-tflops and --peak-gbs the bound in chain-steps or steps per second on that device)
    /// without running anything.
    #[arg(long, conflicts_with = "csv")]
    pub roofline_only: bool,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

impl BenchArgs {
    /// The device peaks in FLOP/s and bytes/s, when given.
    fn peaks(&self) -> Option<Peaks> {
        Some(Peaks { flops: self.peak_tflops? * 1e12, bytes: self.peak_gbs? * 1e9 })
    }
}

/// Seed for initial states and sampler noise (any fixed value: timings don't depend on it).
const SEED: u64 = 20261122;

/// Which groups of cases to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    All,
    /// ULA and MALA on ring8 (2-d mixture), a 10-d Gaussian and a 32-d double well.
    Langevin,
    /// The sizes TorchEBM publishes (double well; 64 x d=8 x 50 steps, 256 x 32 x 100,
    /// 1024 x 128 x 200), ULA and HMC with 10 leapfrog steps, with ESS per second.
    Torchebm,
    /// MALA on MLP energies: d=2 with 2x128 hidden, d=32 with 2x256, d=784 with 2x512; GFLOP/s.
    Mlp,
    /// A 784x500 RBM: block Gibbs steps per second, and CD-1 / CD-25 training time per MNIST
    /// epoch (extrapolated from --rbm-rows rows; needs --mnist).
    Rbm,
    /// Training steps of 2-d MLP energies on ring8 (`ebm train`'s defaults: batch 256,
    /// CD with 20 Langevin steps per step from the replay buffer, and NCE).
    Train,
    /// Networks through the layer kernels: GEMM and convolution GFLOP/s (GPU, CPU and raw
    /// sgemm at the same sizes), and ULA/MALA on the UvA MNIST ConvEBM at 128, 1024 and 8192
    /// chains; its own table (with --csv and --suite all: written next to PATH as PATH-nn.csv).
    Nn,
    /// Discrete models: site updates per second of block Gibbs / Metropolis sweeps on the
    /// square Ising lattice (256², 1024²), a sparse random graph (65536 vertices, mean degree 4)
    /// and the 3-state Potts lattice, and Swendsen–Wang; its own table, not in --csv.
    Discrete,
}

struct Case {
    suite: Suite,
    /// Short name for the table.
    name: String,
    energy: Energy,
    samplers: Vec<SamplerKind>,
    /// (chains, steps) of each timing; steps None: spread `work` chain-steps over the chains.
    sizes: Vec<(usize, Option<u32>)>,
    /// Step size suited to the energy's scale (keeps acceptance reasonable).
    step_size: f32,
    /// Chain-steps per timing when `sizes` leaves steps open: 0.5-2 s per timing on the
    /// lavapipe adapter and the CPU executor of a 2-core x86_64 machine.
    work: f64,
    /// Trace the timed run and report bulk ESS (min over dimensions) per second.
    ess: bool,
}

fn mlp_energy(dims: &[usize]) -> Result<Energy> {
    Ok(Energy::from_network(Network::random_mlp(dims, Activation::Silu, false, SEED)?))
}

fn cases(suite: Suite, quick: bool) -> Result<Vec<Case>> {
    let d = 10;
    let gaussian = serde_json::json!({
        "type": "gaussian",
        "mean": (0..d).map(|i| 0.5 * i as f64 - 2.0).collect::<Vec<_>>(),
        "std": (0..d).map(|i| 0.5 + 0.15 * i as f64).collect::<Vec<_>>(),
    });
    let langevin = [SamplerKind::Ula, SamplerKind::Mala];
    let open = |counts: &[usize]| counts.iter().map(|&c| (c, None)).collect::<Vec<_>>();
    let counts: &[usize] = if quick { &[256, 1024] } else { &[1024, 16384, 65536] };
    let mut all = vec![
        Case {
            suite: Suite::Langevin,
            name: "ring8".into(),
            energy: resolve_energy("ring8")?,
            samplers: langevin.to_vec(),
            sizes: open(counts),
            step_size: 0.01,
            work: 6.0e6,
            ess: false,
        },
        Case {
            suite: Suite::Langevin,
            name: "gaussian10".into(),
            energy: resolve_energy(&gaussian.to_string())?,
            samplers: langevin.to_vec(),
            sizes: open(counts),
            step_size: 0.05,
            work: 8.0e6,
            ess: false,
        },
        Case {
            suite: Suite::Langevin,
            name: "double_well32".into(),
            energy: resolve_energy(r#"{"type":"double_well","dim":32}"#)?,
            samplers: langevin.to_vec(),
            sizes: open(counts),
            step_size: 0.005,
            work: 3.0e6,
            ess: false,
        },
    ];
    let torchebm: &[(usize, usize, u32)] =
        if quick { &[(64, 8, 50)] } else { &[(64, 8, 50), (256, 32, 100), (1024, 128, 200)] };
    for &(chains, dim, steps) in torchebm {
        all.push(Case {
            suite: Suite::Torchebm,
            name: format!("double_well{dim}"),
            energy: resolve_energy(&format!(r#"{{"type": "double_well", "dim": {dim}, "barrier": 2.0}}"#))?,
            samplers: vec![SamplerKind::Ula, SamplerKind::Hmc],
            sizes: vec![(chains, Some(steps))],
            step_size: 0.01,
            work: 0.0,
            ess: true,
        });
    }
    let mlps: &[(&[usize], &[usize], f64)] = if quick {
        &[(&[2, 128, 128, 1], &[256], 5.0e3)]
    } else {
        &[
            (&[2, 128, 128, 1], &[1024, 16384, 65536], 2.0e5),
            (&[32, 256, 256, 1], &[1024, 16384], 5.0e4),
            (&[784, 512, 512, 1], &[1024, 4096], 1.0e4),
        ]
    };
    for &(dims, chain_counts, work) in mlps {
        all.push(Case {
            suite: Suite::Mlp,
            name: format!("mlp{}", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")),
            energy: mlp_energy(dims)?,
            samplers: vec![SamplerKind::Mala],
            sizes: open(chain_counts),
            step_size: 0.001,
            work,
            ess: false,
        });
    }
    Ok(all.into_iter().filter(|c| suite == Suite::All || c.suite == suite).collect())
}

/// Steps for one timing: the case's chain-step budget spread over the chains (a fixed 50k
/// chain-steps, at most 50 steps, with `--quick`).
fn default_steps(case: &Case, quick: bool, chains: usize) -> u32 {
    let (work, lo, hi) = if quick { (case.work.min(5.0e4), 2.0, 50.0) } else { (case.work, 5.0, 10000.0) };
    (work / chains as f64).clamp(lo, hi).round() as u32
}

struct Row {
    executor: &'static str,
    energy: String,
    dim: usize,
    sampler: &'static str,
    chains: usize,
    steps: u32,
    seconds: f64,
    /// None on the CPU executor.
    dispatches_per_step: Option<f64>,
    /// The roofline model's FLOPs and bytes per chain-step (per training point for the train
    /// and CD rows), when the model covers the workload.
    cost: Option<Cost>,
    /// Bulk ESS (min over dimensions) of the timed run per second.
    ess_per_s: Option<f64>,
    frozen: usize,
}

impl Row {
    fn rate(&self) -> f64 {
        self.chains as f64 * self.steps as f64 / self.seconds
    }
}

/// Warm-up run (untimed), then one timed `run(steps)`. Shared by both executors.
fn time_run(sampler: &mut dyn ChainSampler, warm: u32, steps: u32) -> Result<f64> {
    sampler.run(warm).context("warm-up run")?;
    let start = Instant::now();
    sampler.run(steps).context("timed run")?;
    Ok(start.elapsed().as_secs_f64())
}

/// [`time_run`], then while the timing is under `min_seconds`, again with the steps scaled to
/// about 1.2 `min_seconds` (the previous timed run serves as the warm-up): (steps, seconds).
fn time_run_at_least(sampler: &mut dyn ChainSampler, warm: u32, steps: u32, min_seconds: f64) -> Result<(u32, f64)> {
    let (mut steps, mut seconds) = (steps, time_run(sampler, warm, steps)?);
    while seconds < min_seconds && steps < MAX_TIMED_STEPS {
        let scale = 1.2 * min_seconds / seconds.max(1e-4);
        steps = ((steps as f64 * scale).ceil() as u32).clamp(steps + 1, MAX_TIMED_STEPS);
        let start = Instant::now();
        sampler.run(steps).context("timed run")?;
        seconds = start.elapsed().as_secs_f64();
    }
    Ok((steps, seconds))
}

/// Steps of one timed run at most, however fast the case.
const MAX_TIMED_STEPS: u32 = 1_000_000;

/// `12.3M`-style formatting with three significant digits.
fn si(x: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    // Thresholds just below each boundary so that rounding never prints "1000k" or "10.00M".
    let (scale, unit) = UNITS.iter().copied().find(|&(s, _)| x >= s * 0.9995).unwrap_or((1.0, ""));
    let v = x / scale;
    let digits = if v >= 99.95 {
        0
    } else if v >= 9.995 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{unit}")
}

/// `--steps` applies to every case: the ESS cases' traces (memory) and every case's work are
/// planned before anything runs (see `crate::plan`). The default steps are fixed and small.
fn plan(args: &BenchArgs) -> Result<()> {
    let Some(steps) = args.steps else { return Ok(()) };
    let mut memory = crate::plan::Plan::new();
    let mut work = crate::plan::Work::new();
    for case in cases(args.suite, args.quick)? {
        let (dim, steps) = (case.energy.dim() as u64, steps as u64);
        let cost = case.energy.evaluation_cost();
        for &(chains, _) in &case.sizes {
            let flag = format!("--steps {steps} x {chains} chains ({})", case.name);
            for &kind in &case.samplers {
                // The torchebm cases' HMC takes 10 leapfrog steps.
                let gradients = if kind == SamplerKind::Hmc { 10 } else { 1 };
                work.add(
                    flag.clone(),
                    format!("the {} benchmark", kind.name()),
                    &[steps, chains as u64, gradients, cost],
                );
            }
            if case.ess {
                memory.add(format!("{flag} x dim {dim}"), "a benchmark's trace", &[steps, chains as u64, dim], 4, 3);
            }
        }
    }
    if matches!(args.suite, Suite::All | Suite::Discrete) {
        // The largest discrete case: 4 chains of a 1024 x 1024 lattice, 4 couplings per site.
        work.add(format!("--steps {steps} (discrete)"), "the discrete benchmark", &[steps as u64, 4, 1 << 20, 4]);
    }
    if matches!(args.suite, Suite::All | Suite::Rbm) {
        // 1024 chains of block Gibbs on a 784x500 RBM.
        work.add(
            format!("--steps {steps} x 1024 chains (rbm)"),
            "the rbm benchmark",
            &[steps as u64, 1024, 2, 784, 500],
        );
    }
    memory.check()?;
    work.check()?;
    Ok(())
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(path) = &args.csv {
        let mut paths = crate::cli::outputs::Paths::new();
        paths.output("--csv", path, &["csv"])?;
        if args.suite == Suite::All {
            paths.output("--csv", &nn_csv_path(path), &["csv"])?;
        }
    }
    if args.roofline_only {
        return roofline_table::print(args);
    }
    plan(args)?;
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
    let cpu_desc = if want_cpu {
        format!("{} rayon threads", rayon::current_num_threads())
    } else {
        "not benchmarked".to_string()
    };
    println!("gpu: {gpu_desc}; cpu: {cpu_desc}");
    if let Some(info) = ctx.as_ref().and_then(|c| c.adapter_info())
        && info.device_type == crate::wgpu::DeviceType::Cpu
    {
        println!("note: {} is a software adapter: its timings say nothing about a real GPU", info.name);
    }

    let mut rows = Vec::new();
    for case in cases(args.suite, args.quick)? {
        let dim = case.energy.dim();
        for &kind in &case.samplers {
            for &(chains, fixed_steps) in &case.sizes {
                let steps = args.steps.or(fixed_steps).unwrap_or_else(|| default_steps(&case, args.quick, chains));
                let warm = steps.div_ceil(10).max(2);
                let init = rng::initial_states(SEED, 0, chains, dim, 1.0);
                let mut config = SamplerConfig::new(kind, case.step_size, SEED);
                if case.ess {
                    config.trace_every = 1;
                    config.trace_start = warm;
                    config.trace_steps = steps;
                }
                if kind == SamplerKind::Hmc {
                    config.step_jitter = 0.2;
                }
                let name = kind.name().to_uppercase();
                let label = format!("{} {name} {chains} chains", case.name);
                let min_seconds = if case.ess { 0.0 } else { args.min_seconds.unwrap_or(0.0) };
                let mut bench = |executor: &'static str, sampler: &mut dyn ChainSampler| -> Result<()> {
                    let (steps, seconds) = time_run_at_least(sampler, warm, steps, min_seconds)
                        .with_context(|| format!("{executor}: {label}"))?;
                    let frozen = sampler.stats()?.frozen_count();
                    let ess_per_s = match sampler.trace()? {
                        Some(trace) => Some(
                            summarize_trace(&trace, chains, dim)?
                                .iter()
                                .map(|s| s.ess_bulk)
                                .fold(f64::INFINITY, f64::min)
                                / seconds,
                        ),
                        None => None,
                    };
                    // Steps per dispatch: the GPU sampler's own (one group of chains); the CPU
                    // executor evaluates each chain's start once per run.
                    let steps_per_dispatch = match executor {
                        "gpu" => (1.0 / sampler.dispatches_per_step()).round().max(1.0) as u32,
                        _ => steps,
                    };
                    let run = roofline::SamplerRun {
                        kind,
                        chains,
                        steps_per_dispatch,
                        leapfrog: config.leapfrog,
                        traced: case.ess,
                    };
                    let row = Row {
                        executor,
                        energy: case.name.clone(),
                        dim,
                        sampler: kind.name(),
                        chains,
                        steps,
                        seconds,
                        dispatches_per_step: (executor == "gpu").then(|| sampler.dispatches_per_step()),
                        cost: roofline::sampler_step(&case.energy, &run),
                        ess_per_s,
                        frozen,
                    };
                    eprintln!("  {executor:>3}  {label}: {steps} steps in {seconds:.3} s ({}/s)", si(row.rate()));
                    rows.push(row);
                    Ok(())
                };
                if let Some(ctx) = &ctx {
                    match GpuSampler::new(ctx.clone(), &case.energy, config.clone(), &init) {
                        Ok(mut s) => bench("gpu", &mut s)?,
                        // A case this adapter cannot run correctly (e.g. llvmpipe's loop cap) is
                        // reported and skipped, not timed wrong.
                        Err(e @ crate::Error::Limit(_)) => println!("note: gpu skips {label}: {e}"),
                        Err(e) => {
                            return Err(anyhow::Error::new(e).context(format!("building the GPU sampler for {label}")));
                        }
                    }
                }
                if want_cpu {
                    let mut s = CpuSampler::new(&case.energy, config.clone(), &init)
                        .with_context(|| format!("building the CPU sampler for {label}"))?;
                    bench("cpu", &mut s)?;
                }
            }
        }
    }

    if matches!(args.suite, Suite::All | Suite::Rbm) {
        train::rbm_rows(args, ctx.as_ref(), want_cpu, &mut rows)?;
    }
    if matches!(args.suite, Suite::All | Suite::Train) {
        train::train_rows(args, ctx.as_ref(), want_cpu, &mut rows)?;
    }

    let peaks = args.peaks();
    let nn_rows =
        if matches!(args.suite, Suite::All | Suite::Nn) { nn::run(args, ctx.as_ref(), want_cpu)? } else { Vec::new() };
    let discrete_rows = if matches!(args.suite, Suite::All | Suite::Discrete) {
        discrete::run(args, ctx.as_ref(), want_cpu)?
    } else {
        Vec::new()
    };

    if !rows.is_empty() || (nn_rows.is_empty() && discrete_rows.is_empty()) {
        println!();
        print!("{}", table(&rows, peaks));
    }
    let frozen: usize = rows.iter().map(|r| r.frozen).sum();
    if frozen > 0 {
        println!("note: {frozen} chains froze (non-finite state) during the timings; their cases may read fast");
    }
    if !nn_rows.is_empty() {
        println!();
        print!("{}", nn::table(&nn_rows, peaks));
        print!("{}", nn::summary(&nn_rows));
    }
    if !discrete_rows.is_empty() {
        println!();
        print!("{}", discrete::table(&discrete_rows, peaks));
    }
    if let Some(path) = &args.csv {
        if !rows.is_empty() || (nn_rows.is_empty() && discrete_rows.is_empty()) {
            crate::io::write_atomic(path, csv(&rows, peaks).as_bytes())?;
            println!("wrote {}", path.display());
        }
        if !nn_rows.is_empty() {
            // The nn table has its own columns: PATH itself for --suite nn, PATH-nn.csv beside
            // the sampler table otherwise.
            let nn_path = if rows.is_empty() { path.clone() } else { nn_csv_path(path) };
            crate::io::write_atomic(&nn_path, nn::csv(&nn_rows, peaks).as_bytes())?;
            println!("wrote {}", nn_path.display());
        }
    }
    Ok(())
}

/// `bench.csv` -> `bench-nn.csv`.
fn nn_csv_path(path: &std::path::Path) -> PathBuf {
    let stem = path.file_stem().map_or_else(|| "bench".into(), |s| s.to_string_lossy().into_owned());
    let ext = path.extension().map_or_else(|| "csv".into(), |e| e.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-nn.{ext}"))
}

const HEADERS: [&str; 14] = [
    "executor",
    "energy",
    "dim",
    "sampler",
    "chains",
    "steps",
    "seconds",
    "chain-steps/s",
    "dispatches/step",
    "GFLOP/s",
    "GB/s",
    "% roof",
    "bound",
    "ESS/s",
];

fn table(rows: &[Row], peaks: Option<Peaks>) -> String {
    let cells: Vec<[String; 14]> = rows
        .iter()
        .map(|r| {
            let [gflops, gbs, roof, bound] =
                roofline_table::roof(r.cost, r.rate(), r.executor.starts_with("gpu"), peaks).cells();
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
                gflops,
                gbs,
                roof,
                bound,
                r.ess_per_s.map_or_else(|| "-".to_string(), si),
            ]
        })
        .collect();
    // Text columns left-aligned, numbers right-aligned.
    align_table(HEADERS, &cells, &[0, 1, 3, 12])
}

/// A plain-text table: columns padded to their widest cell, those in `left` left-aligned, the
/// others right-aligned, a rule under the header.
pub(crate) fn align_table<const N: usize>(headers: [&str; N], cells: &[[String; N]], left: &[usize]) -> String {
    let mut widths = headers.map(str::len);
    for row in cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::new();
        for (i, (c, &w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if left.contains(&i) {
                let _ = write!(s, "{c:<w$}");
            } else {
                let _ = write!(s, "{c:>w$}");
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&headers.map(String::from));
    out += &line(&widths.map(|w| "-".repeat(w)));
    for row in cells {
        out += &line(row);
    }
    out
}

fn csv(rows: &[Row], peaks: Option<Peaks>) -> String {
    let mut out = format!(
        "executor,energy,dim,sampler,chains,steps,seconds,chain_steps_per_s,dispatches_per_step,gflops,ess_per_s,{}\n",
        roofline_table::CSV_COLUMNS
    );
    let opt = |v: Option<f64>| v.map_or_else(String::new, |d| d.to_string());
    for r in rows {
        let roof = roofline_table::roof(r.cost, r.rate(), r.executor.starts_with("gpu"), peaks);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            r.executor,
            r.energy,
            r.dim,
            r.sampler,
            r.chains,
            r.steps,
            r.seconds,
            r.rate(),
            opt(r.dispatches_per_step),
            opt(roof.gflops),
            opt(r.ess_per_s),
            roof.csv(r.cost),
        );
    }
    out
}
