//! `ebm minimize`: inference as energy minimisation. Descends the energy from many starts at
//! once (L-BFGS or Adam, [`crate::eval::minimize`]) and reports the distinct local minima
//! found, their energies and which starts reached each.

use crate::cli::backend::{self, Backend};
use crate::cli::sample::init;
use crate::energy::spec;
use crate::eval::minimize::{self, Method, MinimizeConfig, Outcome};
use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
ebm minimize --energy ring8 --starts 64 --init uniform --init-std 4\n  \
ebm minimize --energy net:runs/dsm/checkpoint.safetensors --starts 16 --init uniform --box -1,1 --out minima.npy\n  \
ebm minimize --energy banana --method adam --lr 0.05 --out minima.json")]
pub struct MinimizeArgs {
    /// Energy: a preset name, a JSON spec file, inline JSON, mlp:FILE or net:FILE (as `ebm sample`).
    #[arg(long, default_value = "ring8")]
    pub energy: String,
    /// Number of starts, descended together.
    #[arg(long, default_value_t = 64)]
    pub starts: usize,
    /// Where the descents start: gaussian (N(0, init-std^2)), uniform (U[-init-std, init-std]),
    /// box:LO,HI (U[LO, HI] in every dimension), feasible (gaussian draws moved to the nearest
    /// point satisfying the energy's constraints), replay (a training checkpoint's replay
    /// buffer), or a .npy/.csv file of rows (as `ebm sample`).
    #[arg(long, default_value = "gaussian")]
    pub init: String,
    /// Standard deviation of the gaussian starts (with --init uniform, the half-width of the box).
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 1.0, allow_negative_numbers = true)]
    pub init_std: f32,
    /// Descent: lbfgs (quasi-Newton with a backtracking line search; the default) or adam.
    #[arg(long, default_value = "lbfgs")]
    pub method: String,
    /// Most iterations (one batched energy-and-gradient evaluation of all starts each).
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Adam's step size (with --method adam only).
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub lr: Option<f32>,
    /// A start has converged when the norm of its gradient (projected onto the box and the free
    /// dimensions) is at most this.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 1e-3)]
    pub grad_tol: f32,
    /// Endpoints closer than this (Euclidean) count as one minimum.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 1e-2)]
    pub merge_within: f32,
    /// Keep every coordinate in LO,HI (e.g. -1,1 for image models): iterates are projected onto
    /// the box, and a minimum on its wall converges.
    #[arg(id = "box", long = "box", value_parser = crate::cli::numbers::parse_box, value_name = "LO,HI", allow_hyphen_values = true)]
    pub bounds: Option<(f32, f32)>,
    /// Conditional minimisation: hold dimensions fixed, `I=V,J=W,...` or a .npy/.csv row with NaN
    /// at the free dimensions (as `ebm sample --fix`).
    #[arg(long, allow_hyphen_values = true)]
    pub fix: Option<String>,
    /// Random seed of the starts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Executor: auto (a hardware GPU if one opens, else the CPU executor), gpu or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// Write the distinct minima (rows, lowest energy first) as .npy or .csv, or the whole
    /// report (minima, and every start's endpoint, energy, outcome and minimum) as .json.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Minima listed on the console (the rest are counted; --out has them all).
const SHOWN: usize = 20;
/// Coordinates of a point shown on the console.
const SHOWN_COORDS: usize = 6;

pub fn run(args: &MinimizeArgs) -> anyhow::Result<()> {
    let mut paths = crate::cli::outputs::Paths::new();
    paths.input("--energy", crate::cli::sample::energy_file(&args.energy));
    if let Some(out) = &args.out {
        paths.output("--out", out, &["npy", "csv", "json"])?;
    }
    let method = Method::parse(&args.method).context("--method")?;
    if args.lr.is_some() && method != Method::Adam {
        bail!("--lr is Adam's step size; add --method adam (L-BFGS chooses its steps by line search)");
    }
    if args.starts == 0 {
        bail!("--starts must be at least 1");
    }
    if !(args.merge_within >= 0.0) {
        bail!("--merge-within must be at least 0, got {}", args.merge_within);
    }
    let mut config = MinimizeConfig::new(method);
    config.max_steps = args.steps;
    config.grad_tol = args.grad_tol;
    config.bounds = args.bounds;
    if let Some(lr) = args.lr {
        config.learning_rate = lr;
    }
    config.validate().map_err(|e| anyhow::anyhow!("{e} (--steps, --lr, --grad-tol, --box)"))?;
    let energy = spec::resolve_energy(&args.energy)?;
    let dim = energy.dim();
    crate::plan::Plan::new()
        .add(
            "--starts",
            format!("{} starts of {dim} coordinates", args.starts),
            &[args.starts as u64, dim as u64],
            4,
            6,
        )
        .check()?;
    let start = init::Init::new(&args.init, args.init_std, args.seed, &args.energy, &energy);
    let mut starts = init::initial_states(&start, 0, args.starts, dim)?;
    let fixed = args.fix.as_deref().map(|f| init::parse_fix(f, dim)).transpose()?;
    if let Some(fixed) = &fixed {
        init::apply_fix(&mut starts, fixed);
    }
    let free: Option<Vec<bool>> = fixed.as_ref().map(|f| f.iter().map(Option::is_none).collect());
    let ctx = backend::open(args.backend)?;
    let mut eval = crate::cli::likelihood::Reporting::new(
        crate::energy::batch::evaluator(ctx.as_ref(), &energy),
        "iteration",
        true,
    );
    eprintln!(
        "minimising {} ({dim}-d) from {} starts (--init {}) with {} on {}",
        energy.kind(),
        args.starts,
        args.init,
        method.name(),
        backend::describe(ctx.as_ref())
    );
    let t = std::time::Instant::now();
    let descent = minimize::minimize(&mut eval, &starts, dim, free.as_deref(), &config)?;
    let minima = minimize::distinct_minima(&descent, dim, args.merge_within);
    let count = |o: Outcome| descent.outcomes.iter().filter(|&&x| x == o).count();
    println!(
        "{} iterations in {:.1} s: {} of {} starts converged (|grad| <= {}), {} stalled at float precision, {} hit the step limit, {} non-finite",
        descent.evaluations - 1,
        t.elapsed().as_secs_f64(),
        count(Outcome::Converged),
        args.starts,
        args.grad_tol,
        count(Outcome::Stalled),
        count(Outcome::StepLimit),
        count(Outcome::NonFinite)
    );
    println!(
        "{} distinct minima (endpoints within {} merged; stalled ones included), lowest energy first:",
        minima.len(),
        args.merge_within
    );
    println!("{:>4}  {:>12}  {:>6}  point", "#", "energy", "starts");
    for (k, m) in minima.iter().take(SHOWN).enumerate() {
        let coords: Vec<String> = m.point.iter().take(SHOWN_COORDS).map(|v| format!("{v:.4}")).collect();
        let more = if dim > SHOWN_COORDS { format!(", ... ({dim} coordinates)") } else { String::new() };
        println!("{:>4}  {:>12.5}  {:>6}  [{}{more}]", k + 1, m.energy, m.starts.len(), coords.join(", "));
    }
    if minima.len() > SHOWN {
        println!("({} more minima: --out writes them all)", minima.len() - SHOWN);
    }
    if let Some(out) = &args.out {
        write(out, args, &descent, &minima, dim)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn write(
    out: &std::path::Path,
    args: &MinimizeArgs,
    descent: &minimize::Descent,
    minima: &[minimize::Minimum],
    dim: usize,
) -> anyhow::Result<()> {
    let is_json = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !is_json {
        let rows: Vec<f32> = minima.iter().flat_map(|m| m.point.iter().copied()).collect();
        if rows.is_empty() {
            bail!(
                "--out {}: no start converged, so there are no minima to write (a .json report lists every start)",
                out.display()
            );
        }
        return Ok(crate::io::write_samples(out, &rows, minima.len(), dim)?);
    }
    let mut minimum_of = vec![None; descent.energies.len()];
    for (k, m) in minima.iter().enumerate() {
        m.starts.iter().for_each(|&s| minimum_of[s] = Some(k));
    }
    let finite = |v: f32| v.is_finite().then_some(v);
    let report = serde_json::json!({
        "energy": args.energy, "method": args.method, "starts": args.starts, "init": args.init,
        "init_std": args.init_std, "seed": args.seed, "grad_tol": args.grad_tol, "merge_within": args.merge_within,
        "box": args.bounds.map(|(lo, hi)| [lo, hi]), "iterations": descent.evaluations - 1,
        "minima": minima.iter().map(|m| serde_json::json!({
            "energy": m.energy, "point": m.point, "starts": m.starts,
        })).collect::<Vec<_>>(),
        "endpoints": (0..descent.energies.len()).map(|i| serde_json::json!({
            "point": descent.points[i * dim..(i + 1) * dim].iter().map(|&v| finite(v)).collect::<Vec<_>>(),
            "energy": finite(descent.energies[i]), "grad_norm": finite(descent.grad_norms[i]),
            "steps": descent.steps[i], "outcome": descent.outcomes[i].name(), "minimum": minimum_of[i],
        })).collect::<Vec<_>>(),
    });
    crate::io::write_atomic(out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(())
}
