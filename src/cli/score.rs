//! `ebm score`: per point the energy, the gradient norm and, where the model's normaliser is
//! known, the log-density -E(x) - log Z; and log p(a)/p(b) = E(b) - E(a), which needs no Z.
//! An RBM checkpoint (`rbm:FILE`) is scored by its free energy F(v), with log Z exact or by AIS.

mod marginal;

use std::path::{Path, PathBuf};

use crate::cli::backend::{self, Backend};
use crate::cli::rundir::Given;
use crate::energy::{Energy, EnergyInternals, log_z, spec};
use crate::io;
use crate::rbm::{self, Rbm, Visible, ais::AisReport, logz};
use crate::train::eval;
use anyhow::{Context, bail};

/// Share of the quadrature grid's mass in its outermost ring of cells above which the density
/// has not decayed at the box's edge, so mass beyond the box may be missing from log Z.
const EDGE_MASS_WARNING: f64 = 1e-6;

/// Score points under an energy: energy, gradient norm and log-density, where the model
/// defines one: exact for gaussian (log Z from the precision or stds) and gaussian_mixture
/// (normalised, Z = 1); by quadrature on a grid over --box for any other 2-D energy; for an RBM
/// (rbm:FILE) the free energy F(v), |dF/dv| (F read as a function of real v) and -F(v) - log Z
/// with log Z exact when a layer of at most 25 units can be enumerated, else by AIS; otherwise
/// "not available". --ratio A,B gives log p(a)/p(b) = E(b) - E(a), which needs no Z.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:\n  ebm score --energy correlated2 --points x.npy --out scores.csv\n  \
ebm score --energy mlp:runs/ring8/checkpoint.safetensors --points x.csv --box -5,5 --out scores.json\n  \
ebm score --energy banana --points x.npy --ratio 0,3\n  \
ebm score --energy rbm:runs/digits --points digits.csv --log-z ais --ais-runs 200 --betas 20000\n  \
ebm score --energy net:runs/dsm/checkpoint.safetensors --points x.npy --log-z ais --box -1,1 --ais-runs 50\n  \
ebm score --energy net:runs/contrastive/checkpoint.safetensors --points a.npy --pairs b.npy --out pairs.csv")]
pub struct ScoreArgs {
    /// The energy: preset, JSON spec (inline or file), mlp:W.safetensors, net:W.safetensors, or
    /// rbm:FILE (an `ebm rbm train` checkpoint.safetensors or its run directory).
    #[arg(long)]
    pub energy: String,
    /// The points, [n, dim] as .npy or .csv (one point a row), dim the energy's.
    #[arg(long)]
    pub points: PathBuf,
    /// Also print log p(a)/p(b) = E(b) - E(a) for rows A and B of the points file (0-based).
    #[arg(long, value_name = "A,B", value_parser = parse_ratio)]
    pub ratio: Option<(usize, usize)>,
    /// 2-D energies without a closed-form normaliser: the square box LO,HI (both axes) that
    /// the quadrature grid of log Z covers; mass outside it is not counted (a warning says
    /// when the density has not decayed at the box's edge). With --log-z ais: the model's
    /// support [LO, HI]^d (image models: -1,1), when given.
    #[arg(id = "box", long = "box", value_parser = crate::cli::numbers::parse_box, value_name = "LO,HI", allow_hyphen_values = true, default_value = "-8,8")]
    pub quad_box: (f32, f32),
    /// Write the scores to a .npy ([n, 3] float32: energy, grad norm, log-density with NaN
    /// where not available), .csv (the same with a header) or .json (per point records plus how
    /// log Z was obtained). Without it a short summary goes to stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Executor of the energies and gradients: auto, gpu or cpu (see `ebm --help`). The
    /// quadrature grid runs on the CPU executor.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// How log Z is obtained. rbm: energies: auto: exact when the hidden layer (or a binary
    /// visible layer) has at most 25 units, else AIS; exact; ais (forward AIS from two bases,
    /// the base-rate one fitted to the points, and the reverse check, as `ebm rbm eval`).
    /// Other energies: auto: the closed form (Gaussians, mixtures) or quadrature (2-D), else
    /// not available; ais: AIS with HMC transitions from each base of --base (fitted to the
    /// points), on --box when it is given (the chains reflect at its walls; without it on R^d),
    /// 1000 temperatures unless --betas says otherwise.
    #[arg(long, value_enum, default_value = "auto")]
    pub log_z: LogZMethod,
    #[command(flatten)]
    pub ais: crate::cli::rbm::AisArgs,
    #[command(flatten)]
    pub anneal: crate::cli::likelihood::AnnealArgs,
    /// Seeds AIS (rbm: energies, and others with --log-z ais).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Pair energies of a contrastive network (`ebm train --loss infonce`): row i of this file
    /// (.npy/.csv) is the second view of row i of --points. Prints the pair energies
    /// E(a_i, b_i) = -cos(f(a_i), f(b_i))/T and how often each row's pair is the most similar of
    /// all the file's rows (retrieval top-1, top-5); --out gets [n, 2]: energy, cosine.
    #[arg(long, conflicts_with_all = ["ratio", "log_z"])]
    pub pairs: Option<PathBuf>,
    /// --pairs: the temperature T of the pair energy [default: the checkpoint's infonce:T].
    #[arg(long, requires = "pairs", value_parser = crate::cli::numbers::finite_f32)]
    pub temperature: Option<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum LogZMethod {
    Auto,
    Exact,
    Ais,
}

/// Flags that only an RBM's log Z uses.
const RBM_FLAGS: [&str; 1] = ["--reverse-gibbs"];
/// Flags of AIS, which other energies use with --log-z ais only.
const AIS_FLAGS: [&str; 6] = ["--ais-runs", "--betas", "--seed", "--base", "--leapfrog", "--reverse-from"];
/// Flags of a continuous energy's AIS that an RBM's does not take.
const ENERGY_AIS_FLAGS: [&str; 3] = ["--base", "--leapfrog", "--reverse-from"];

fn parse_ratio(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once(',').ok_or("expected A,B (two row indices)")?;
    let row = |v: &str| v.trim().parse::<usize>().map_err(|_| format!("{v:?} is not a row index (0, 1, ...)"));
    Ok((row(a)?, row(b)?))
}

/// How log Z was obtained, for the report.
enum Normaliser {
    Closed {
        log_z: f64,
        how: &'static str,
    },
    Quadrature {
        log_z: f64,
        lo: f32,
        hi: f32,
        cells: usize,
        edge_mass: f64,
    },
    /// An RBM's exact log Z, enumerating the 2^units states of `layer`.
    Enumerated {
        log_z: f64,
        layer: &'static str,
        units: usize,
    },
    /// An RBM's AIS report (its log Z: the conservative estimate when they disagree) and the
    /// lines `ebm rbm eval` prints for it (estimates, warnings).
    Ais {
        report: AisReport,
        lines: Vec<String>,
    },
    /// A continuous energy's AIS (forward from each base), with the lines that report it.
    EnergyAis {
        log_z: f64,
        std_err: f64,
        lines: Vec<String>,
        json: serde_json::Value,
    },
    NotAvailable(String),
}

impl Normaliser {
    fn log_z(&self) -> Option<f64> {
        match self {
            Normaliser::Closed { log_z, .. }
            | Normaliser::Quadrature { log_z, .. }
            | Normaliser::Enumerated { log_z, .. } => Some(*log_z),
            Normaliser::Ais { report, .. } => Some(report.log_z),
            Normaliser::EnergyAis { log_z, .. } => Some(*log_z),
            Normaliser::NotAvailable(_) => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Normaliser::Closed { log_z, how } => format!("log Z = {log_z:.6} ({how})"),
            Normaliser::Enumerated { log_z, layer, units } => {
                format!("log Z = {log_z:.6} (exact: the 2^{units} states of the {layer} layer enumerated)")
            }
            Normaliser::Ais { report: r, lines } => {
                let mut s = lines.join("\n");
                s.push_str(&format!(
                    "\nlog Z = {:.6} +- {:.6} (AIS; the log-densities share this standard error)",
                    r.log_z, r.std_err
                ));
                match r.interval {
                    Some((lo, hi)) => s.push_str(&format!(
                        ", within [{lo:.6}, {hi:.6}] by forward and reverse AIS: the log-densities may be up to {:.6} lower",
                        (hi - r.log_z).max(0.0)
                    )),
                    None => s.push_str(", no interval (no reverse check, or it contradicts the forward estimate)"),
                }
                s
            }
            Normaliser::Quadrature { log_z, lo, hi, cells, edge_mass } => {
                let mut s = format!("log Z = {log_z:.6} (quadrature over [{lo}, {hi}]² on a {cells}x{cells} grid)");
                if *edge_mass > EDGE_MASS_WARNING {
                    s.push_str(&format!(
                        "; warning: {edge_mass:.2e} of the mass lies in the grid's edge cells, so mass may fall outside the box (widen --box)"
                    ));
                }
                s
            }
            Normaliser::EnergyAis { lines, std_err, .. } => {
                format!(
                    "{}\n(the log-densities share the standard error {std_err:.4} of log Z and are too high by as much as AIS underestimates it)",
                    lines.join("\n")
                )
            }
            Normaliser::NotAvailable(why) => format!("log-density not available ({why})"),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Normaliser::Closed { log_z, how } => {
                serde_json::json!({ "method": "closed form", "log_z": log_z, "detail": how })
            }
            Normaliser::Quadrature { log_z, lo, hi, cells, edge_mass } => serde_json::json!({
                "method": "quadrature", "log_z": log_z, "box": [lo, hi], "cells_per_side": cells,
                "edge_mass": edge_mass, "mass_may_fall_outside": *edge_mass > EDGE_MASS_WARNING,
            }),
            Normaliser::Enumerated { log_z, layer, units } => {
                serde_json::json!({ "method": "exact enumeration", "log_z": log_z, "layer": layer, "units": units })
            }
            Normaliser::Ais { report: r, .. } => serde_json::json!({
                "method": "AIS", "log_z": r.log_z, "std_err": r.std_err, "interval": r.interval.map(|(lo, hi)| [lo, hi]),
                "forward": r.forward.iter().map(|(b, f)| named(f, "base", b.name())).collect::<Vec<_>>(),
                "reverse": r.reverse.as_ref().map(|(from, f)| named(f, "from", from)),
                "warnings": r.warnings,
            }),
            Normaliser::EnergyAis { json, .. } => json.clone(),
            Normaliser::NotAvailable(why) => {
                serde_json::json!({ "method": "not available", "log_z": null, "detail": why })
            }
        }
    }
}

/// An RBM checkpoint named by `rbm:PATH`: the file, or `checkpoint.safetensors` of a run
/// directory.
fn load_rbm(path: &str) -> anyhow::Result<Rbm> {
    let path = Path::new(path);
    let file = if path.is_dir() { crate::cli::rbm::run_checkpoint(path)? } else { path.to_path_buf() };
    Ok(rbm::checkpoint::load(&file).with_context(|| format!("--energy rbm:{}", path.display()))?.0.rbm)
}

/// The RBM's free energies, gradient norms and log Z for the points (rows of n_vis).
fn score_rbm(
    args: &ScoreArgs,
    given: &Given,
    model: &Rbm,
    points: &[f32],
) -> anyhow::Result<(Vec<f32>, Vec<f32>, Normaliser)> {
    let exec = crate::cli::rbm::executor(args.backend)?;
    let energies = exec.free_energies(model, points)?;
    let grads = rbm::cpu::free_energy_grads(model, points);
    let enumerable = logz::enumerated_layer(model);
    let exact = match args.log_z {
        LogZMethod::Auto => enumerable,
        LogZMethod::Exact => Some(enumerable.ok_or_else(|| {
            anyhow::anyhow!(
                "--log-z exact: this RBM has {} hidden and {} {} visible units; exact log Z enumerates a layer of at most {} units (a visible one only when binary); use --log-z ais",
                model.n_hid, model.n_vis, model.visible.name(), logz::MAX_EXACT_HIDDEN
            )
        })?),
        LogZMethod::Ais => None,
    };
    let norm = match exact {
        Some((layer, units)) => {
            if let Some(flag) = RBM_FLAGS[1..].iter().find(|f| given.has(f)) {
                eprintln!(
                    "note: the exact log Z is available for this RBM, so {flag} and the other AIS flags are not used (--log-z ais forces AIS)"
                );
            }
            Normaliser::Enumerated { log_z: exec.log_z_exact(model)?, layer, units }
        }
        None => {
            args.ais.check(model)?;
            let (report, lines) = args.ais.log_z(&exec, model, points, args.seed)?;
            Normaliser::Ais { report, lines }
        }
    };
    Ok((energies, norms(&grads, model.n_vis), norm))
}

/// The Euclidean norm of each row of `grads`, accumulated in f64.
fn norms(grads: &[f32], dim: usize) -> Vec<f32> {
    grads.chunks_exact(dim).map(|g| g.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt() as f32).collect()
}

fn normaliser(
    energy: &Energy,
    args: &ScoreArgs,
    given: &Given,
    points: &[f32],
    ctx: Option<&std::sync::Arc<crate::gpu::GpuContext>>,
) -> anyhow::Result<Normaliser> {
    if args.log_z == LogZMethod::Ais {
        return energy_ais(energy, args, given, points, ctx);
    }
    if let Some((log_z, how)) = log_z::closed_form(energy) {
        return Ok(Normaliser::Closed { log_z, how });
    }
    if energy.dim() == 2 {
        let (lo, hi) = args.quad_box;
        if lo >= hi {
            bail!("--box {lo},{hi}: LO must be below HI");
        }
        let q = eval::grid_log_z(energy, [lo, lo], [hi, hi]).context("quadrature of log Z")?;
        return Ok(Normaliser::Quadrature {
            log_z: q.log_z,
            lo,
            hi,
            cells: eval::QUADRATURE_CELLS,
            edge_mass: q.edge_mass,
        });
    }
    Ok(Normaliser::NotAvailable(format!(
        "a {}-d {} energy has no closed-form normaliser here and quadrature covers 2-d energies only; --log-z ais estimates it",
        energy.dim(),
        energy.kind()
    )))
}

/// log Z by AIS from the bases of --base (the fitted one fitted to the points), within --box
/// when it is given.
fn energy_ais(
    energy: &Energy,
    args: &ScoreArgs,
    given: &Given,
    points: &[f32],
    ctx: Option<&std::sync::Arc<crate::gpu::GpuContext>>,
) -> anyhow::Result<Normaliser> {
    use crate::cli::likelihood;
    let bounds = given.has("--box").then_some(args.quad_box);
    if let Some((lo, hi)) = bounds
        && let Some(k) = points.iter().position(|v| !(lo..=hi).contains(v))
    {
        let d = energy.dim();
        bail!(
            "--points {}: row {} column {} is {}, outside --box {lo},{hi}, where the model (on the box) has no mass",
            args.points.display(),
            k / d,
            k % d,
            points[k]
        );
    }
    let betas = if given.has("--betas") { args.ais.betas } else { likelihood::DEFAULT_BETAS };
    let bases = args.anneal.bases(energy.dim(), bounds, points)?;
    let cost = energy.checked_evaluation_cost("--energy")?;
    let config = args.anneal.config(args.ais.ais_runs, betas, args.seed, cost, bases.len())?;
    let reverse = args.anneal.reverse_samples(energy.dim(), bounds)?;
    let found = likelihood::log_z(ctx, energy, &bases, &config, reverse.as_ref())?;
    Ok(Normaliser::EnergyAis {
        log_z: found.report.log_z,
        std_err: found.report.std_err,
        lines: likelihood::report_lines(&found, &config),
        json: likelihood::json(&found, &config),
    })
}

/// Reads the points and refuses a width other than the energy's and non-finite values.
pub(super) fn read_points(path: &Path, dim: usize) -> anyhow::Result<(Vec<f32>, usize)> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext != "npy" && ext != "csv" {
        bail!("--points {}: the file name must end in .npy or .csv", path.display());
    }
    // Rows of values, or images as `--data` reads them (uint8 scaled to [-1, 1]); finite.
    let (data, cols, _) =
        crate::data::toy::read_rows_shaped(path).with_context(|| format!("--points {}", path.display()))?;
    if cols != dim {
        bail!("--points {}: points have {cols} columns but the energy takes {dim} inputs", path.display());
    }
    let rows = data.len() / dim;
    Ok((data, rows))
}

/// The work of scoring `n` points (and of the quadrature of log Z, for a 2-d energy without a
/// closed form), refused when absurd: an energy that multiplies out is refused per evaluation.
fn work(energy: &Energy, n: usize, args: &ScoreArgs) -> anyhow::Result<()> {
    let cost = energy.checked_evaluation_cost("--energy")?;
    let mut work = crate::plan::Work::new();
    let what = format!("scoring ({cost} operations per evaluation of the energy)");
    work.add(format!("--points {} ({n} points)", args.points.display()), what, &[n as u64, cost]);
    if energy.dim() == 2 && log_z::closed_form(energy).is_none() {
        let cells = eval::QUADRATURE_CELLS as u64;
        let (lo, hi) = args.quad_box;
        work.add(
            format!("--box {lo},{hi}"),
            format!("the quadrature of log Z on {cells}x{cells} cells"),
            &[cells, cells, cost],
        );
    }
    work.check()?;
    Ok(())
}

pub fn run(args: &ScoreArgs, given: &Given) -> anyhow::Result<()> {
    let mut paths = crate::cli::outputs::Paths::new();
    paths.input("--energy", crate::cli::sample::energy_file(&args.energy));
    paths.input("--points", &args.points);
    if let Some(states) = &args.anneal.reverse_from {
        paths.input("--reverse-from", states);
    }
    if let Some(out) = &args.out {
        paths.output("--out", out, &["npy", "csv", "json"])?;
    }
    if let Some(pairs) = &args.pairs {
        paths.input("--pairs", pairs);
        if let Some(flag) = RBM_FLAGS.iter().chain(&AIS_FLAGS).chain(["--box"].iter()).find(|f| given.has(f)) {
            bail!("{flag} sets how log Z is found; --pairs scores pair energies, which need no log Z");
        }
        return score_pairs(args, pairs);
    }
    // A latent EBM on points of the data's width: their marginal energies (no log Z).
    if let Some((state, config)) = marginal::latent_checkpoint(&args.energy)
        && let Ok((points, cols, _)) = crate::data::toy::read_rows_shaped(&args.points)
        && cols == config.data_dim()
    {
        // (--seed seeds the importance sampling here.)
        let flags = RBM_FLAGS.iter().chain(&AIS_FLAGS).chain(&["--box", "--log-z", "--ratio"]);
        if let Some(flag) = flags.into_iter().find(|f| **f != "--seed" && given.has(f)) {
            bail!(
                "{flag} sets how log Z is found; a latent EBM's points are scored by their unnormalised marginal energy"
            );
        }
        return marginal::score_marginal(args, &points, &state, &config);
    }
    let rbm_path = args.energy.trim_start().strip_prefix("rbm:");
    match rbm_path {
        Some(_) if given.has("--box") => {
            bail!("--box sets the quadrature of 2-d energies; an rbm: energy's log Z is exact or by AIS (--log-z)")
        }
        Some(_) => {
            if let Some(flag) = ENERGY_AIS_FLAGS.iter().find(|f| given.has(f)) {
                bail!(
                    "{flag} applies to the AIS of continuous energies; an rbm: energy's AIS anneals by Gibbs sampling from its own bases"
                );
            }
        }
        None => {
            if let Some(flag) = RBM_FLAGS.iter().find(|f| given.has(f)) {
                bail!("{flag} applies to rbm: energies (their log Z), not to --energy {}", args.energy);
            }
            if args.log_z == LogZMethod::Exact {
                bail!(
                    "--log-z exact applies to rbm: energies; other energies use their closed form or quadrature (the default, auto) or --log-z ais"
                );
            }
            if args.log_z != LogZMethod::Ais
                && let Some(flag) = AIS_FLAGS.iter().find(|f| given.has(f))
            {
                bail!("{flag} sets the AIS of log Z, which this energy runs with --log-z ais only");
            }
        }
    }
    let (energy, model) = match rbm_path {
        Some(path) => (None, Some(load_rbm(path)?)),
        None => (Some(spec::resolve_energy(&args.energy).context("--energy")?), None),
    };
    let (dim, kind) = match (&energy, &model) {
        (Some(e), _) => (e.dim(), e.kind().to_string()),
        (_, Some(m)) => (m.n_vis, format!("rbm {}x{} {}", m.n_vis, m.n_hid, m.visible.name())),
        _ => unreachable!("one of the two is loaded"),
    };
    let (points, n) = read_points(&args.points, dim)?;
    if let Some(e) = &energy {
        work(e, n, args)?;
    }
    if let Some(m) = &model
        && m.visible == Visible::Bernoulli
        && let Some(k) = points.iter().position(|&v| v != 0.0 && v != 1.0)
    {
        bail!(
            "--points {}: row {} column {} is {}; a binary RBM scores binary points (0 or 1) only",
            args.points.display(),
            k / dim,
            k % dim,
            points[k]
        );
    }
    if let Some((a, b)) = args.ratio
        && let Some(r) = [a, b].into_iter().find(|&r| r >= n)
    {
        bail!("--ratio {a},{b}: row {r} is out of range; {} has {n} rows (0..{})", args.points.display(), n - 1);
    }
    let (energies, grad_norms, norm) = match (&energy, &model) {
        (Some(energy), _) => {
            let ctx = backend::open(args.backend)?;
            let (energies, grads) = match &ctx {
                // A sum holding a layered network has no GPU evaluation (energy_eval compiles
                // the others; a lone network runs through the layer kernels).
                Some(ctx) if !energy.has_layered_net() || matches!(energy, Energy::Net(_)) => {
                    crate::energy::gpu::energy_grad_batch(ctx, energy, &points)?
                }
                Some(_) => {
                    eprintln!("note: a sum holding a layered network is evaluated on the CPU executor");
                    eval::energy_grads(energy, &points)
                }
                None => eval::energy_grads(energy, &points),
            };
            (energies, norms(&grads, dim), normaliser(energy, args, given, &points, ctx.as_ref())?)
        }
        (_, Some(m)) => score_rbm(args, given, m, &points)?,
        _ => unreachable!("one of the two is loaded"),
    };
    let log_densities: Vec<Option<f64>> = energies.iter().map(|&e| norm.log_z().map(|z| -(e as f64) - z)).collect();
    // Both energies as the energy column holds them (f32), subtracted in f64.
    let ratio = args.ratio.map(|(a, b)| (a, b, energies[b] as f64 - energies[a] as f64));

    let name = if args.energy.trim_start().starts_with('{') { "inline JSON".to_string() } else { args.energy.clone() };
    println!("energy {name} ({kind}, d={dim}); {n} points from {}", args.points.display());
    println!("{}", norm.describe());
    if model.is_some() {
        println!("energy: the free energy F(v); grad norm: |dF/dv| with F read as a function of real v");
    }
    if let Some((a, b, r)) = ratio {
        println!("log p(row {a})/p(row {b}) = E({b}) - E({a}) = {r}");
    }
    match &args.out {
        None => summary(&energies, &grad_norms, &log_densities),
        Some(out) => {
            let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
            let column = |l: &Option<f64>| l.map_or(f32::NAN, |v| v as f32);
            match ext.as_str() {
                "npy" => {
                    let table: Vec<f32> =
                        (0..n).flat_map(|i| [energies[i], grad_norms[i], column(&log_densities[i])]).collect();
                    io::npy::write_f32(out, &table, &[n, 3])?;
                }
                "csv" => {
                    let mut text = String::from("energy,grad_norm,log_density\n");
                    for i in 0..n {
                        let l = log_densities[i].map_or("NaN".to_string(), |v| (v as f32).to_string());
                        text.push_str(&format!("{},{},{l}\n", energies[i], grad_norms[i]));
                    }
                    io::write_atomic(out, text.as_bytes())?;
                }
                _ => {
                    let records: Vec<_> = (0..n)
                        .map(|i| serde_json::json!({
                            "row": i, "energy": energies[i], "grad_norm": grad_norms[i],
                            "log_density": log_densities[i].map_or(serde_json::json!("not available"), |v| serde_json::json!(v)),
                        }))
                        .collect();
                    let report = serde_json::json!({
                        "energy": args.energy, "kind": kind, "dim": dim,
                        "points": args.points.display().to_string(),
                        "normaliser": norm.json(),
                        "ratio": ratio.map(|(a, b, r)| serde_json::json!({ "a": a, "b": b, "log_p_a_over_p_b": r })),
                        "records": records,
                    });
                    io::write_atomic(out, serde_json::to_string_pretty(&report)?.as_bytes())?;
                }
            }
            println!("wrote {} ({n} points)", out.display());
        }
    }
    Ok(())
}

/// `ebm score --pairs`: the pair energies of rows of --points and --pairs, and the retrieval of
/// each row's pair among all of them.
fn score_pairs(args: &ScoreArgs, pairs: &Path) -> anyhow::Result<()> {
    let net = crate::cli::probe::features_network(&args.energy)?;
    let stored = crate::cli::probe::stored_loss(&args.energy);
    let temperature = match (args.temperature, stored) {
        (Some(t), _) if t > 0.0 => t,
        (Some(t), _) => bail!("--temperature must be positive, got {t}"),
        (None, Some(crate::train::Loss::InfoNce { temperature })) => temperature,
        (None, _) => bail!(
            "--temperature: --energy {} is not a checkpoint of --loss infonce, so give the pair energy's temperature",
            args.energy
        ),
    };
    let d = net.input_dim();
    let (a, n) = read_points(&args.points, d)?;
    let (b, m) = read_points(pairs, d).map_err(|e| anyhow::anyhow!("{e}").context("--pairs"))?;
    if m != n {
        bail!("--pairs {}: {m} rows, --points has {n}: row i of each is one pair", pairs.display());
    }
    let ctx = backend::open(args.backend)?;
    let (fa, fb) =
        (crate::cli::classify::logits(ctx.as_ref(), &net, &a)?, crate::cli::classify::logits(ctx.as_ref(), &net, &b)?);
    let k = net.outputs;
    let (za, _) = crate::train::contrastive::unit_rows(&fa, k);
    let (zb, _) = crate::train::contrastive::unit_rows(&fb, k);
    let cosines: Vec<f32> =
        za.chunks_exact(k).zip(zb.chunks_exact(k)).map(|(p, q)| p.iter().zip(q).map(|(x, y)| x * y).sum()).collect();
    let energies: Vec<f32> = cosines.iter().map(|c| -c / temperature).collect();
    let found = crate::eval::contrastive::retrieval(&fa, &fb, k)?;
    // The baseline: the raw values compared by the cosine of their deviations from the mean.
    let (ca, cb) = crate::eval::contrastive::centred(&a, &b, d);
    let raw = crate::eval::contrastive::retrieval(&ca, &cb, d)?;
    let mean = energies.iter().map(|&e| e as f64).sum::<f64>() / n as f64;
    println!(
        "{n} pairs, E(a, b) = -cos(f(a), f(b))/{temperature}: mean pair energy {mean:.4} (lowest possible {:.4})",
        -1.0 / temperature
    );
    println!(
        "retrieval of each row's pair among all {n}: top-1 {:.2} %, top-5 {:.2} % (chance {:.2} %; \
         the raw values, by the cosine of their deviations from the mean: {:.2} %, {:.2} %)",
        100.0 * found.top1,
        100.0 * found.top5,
        100.0 / n as f64,
        100.0 * raw.top1,
        100.0 * raw.top5
    );
    if let Some(out) = &args.out {
        let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "npy" => {
                let table: Vec<f32> = energies.iter().zip(&cosines).flat_map(|(&e, &c)| [e, c]).collect();
                crate::io::npy::write_f32(out, &table, &[n, 2])?;
            }
            "csv" => {
                let mut text = String::from("energy,cosine\n");
                energies.iter().zip(&cosines).for_each(|(e, c)| text.push_str(&format!("{e},{c}\n")));
                crate::io::write_atomic(out, text.as_bytes())?;
            }
            _ => {
                let report = serde_json::json!({
                    "energy": args.energy, "points": args.points.display().to_string(),
                    "pairs": pairs.display().to_string(), "temperature": temperature,
                    "retrieval": found, "raw_retrieval": raw, "pair_energies": energies, "cosines": cosines,
                });
                crate::io::write_atomic(out, serde_json::to_string_pretty(&report)?.as_bytes())?;
            }
        }
        println!("wrote {} ({n} pairs)", out.display());
    }
    Ok(())
}

/// Means and ranges of the columns, and the first rows.
fn summary(energies: &[f32], grad_norms: &[f32], log_densities: &[Option<f64>]) {
    let n = energies.len();
    let stats = |v: &mut dyn Iterator<Item = f64>| {
        let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        for x in v {
            (lo, hi, sum) = (lo.min(x), hi.max(x), sum + x);
        }
        format!("mean {:.6}, min {lo:.6}, max {hi:.6}", sum / n as f64)
    };
    println!("energy:      {}", stats(&mut energies.iter().map(|&v| v as f64)));
    println!("grad norm:   {}", stats(&mut grad_norms.iter().map(|&v| v as f64)));
    if log_densities.iter().all(Option::is_some) {
        println!("log-density: {}", stats(&mut log_densities.iter().flatten().copied()));
    }
    println!("{:>6} {:>14} {:>14} {:>14}", "row", "energy", "grad norm", "log-density");
    for i in 0..n.min(10) {
        let l = log_densities[i].map_or("not available".to_string(), |v| format!("{v:.6}"));
        println!("{i:>6} {:>14.6} {:>14.6} {l:>14}", energies[i], grad_norms[i]);
    }
    if n > 10 {
        println!("({} more rows: --out scores.npy|csv|json writes them all)", n - 10);
    }
}

/// An AIS estimate's JSON with what it is named by.
fn named(estimate: &crate::ais::AisResult, key: &str, name: &str) -> serde_json::Value {
    let mut v = estimate.json();
    v[key] = name.into();
    v
}
