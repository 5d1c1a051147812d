//! AIS of continuous energies for `ebm score --log-z ais` and `ebm eval` of image runs: the
//! flags they share, the bases, the executor, and the lines that report an estimate.

use std::sync::Arc;

use crate::ais::anneal::{AnnealConfig, Estimate};
use crate::ais::base::{Base, BaseKind};
use crate::ais::likelihood::{self, LogZ, ReverseFrom, effective_runs};
use crate::ais::{BetaSchedule, Direction};
use crate::cli::ais_shard::{self, Part, Provenance};
use crate::energy::Energy;
use crate::energy::batch::{Evaluator, evaluator};
use crate::gpu::GpuContext;
use anyhow::{Context, bail};

/// Temperatures of a continuous energy's AIS when --betas is not given (an RBM's default is
/// that of `ebm rbm eval`).
pub const DEFAULT_BETAS: usize = 1000;

/// How a continuous energy's AIS anneals (with --ais-runs and --betas).
#[derive(clap::Args, Debug, Clone)]
pub struct AnnealArgs {
    /// Continuous energies: the bases AIS anneals from, comma-separated, each giving one forward
    /// estimate (the largest is used, with a warning when they disagree): fitted (independent
    /// Gaussians fitted to the data or points), iso:S (N(0, S² I)) or uniform (on the box).
    /// Default: fitted,uniform with a box, fitted,iso:1 without.
    #[arg(long, value_name = "LIST")]
    pub base: Option<String>,
    /// Continuous energies: leapfrog steps of each HMC transition of AIS.
    #[arg(long, default_value_t = 10)]
    pub leapfrog: u32,
    /// Continuous energies: also run reverse AIS (the other side of the bound) from these
    /// states of the model, rows of a .npy/.csv (e.g. `ebm sample --out` after a long run; the
    /// first --ais-runs rows), down to the first base. An upper bound in expectation only when
    /// they are exact samples; from chains that have not mixed it means less, and the report
    /// says which.
    #[arg(long, value_name = "FILE")]
    pub reverse_from: Option<std::path::PathBuf>,
}

impl AnnealArgs {
    /// The bases on `dim` coordinates (within `bounds`), the fitted one fitted to `data`.
    pub fn bases(&self, dim: usize, bounds: Option<(f32, f32)>, data: &[f32]) -> anyhow::Result<Vec<Base>> {
        let default = if bounds.is_some() { "fitted,uniform" } else { "fitted,iso:1" };
        let list = self.base.as_deref().unwrap_or(default);
        let mut bases = Vec::new();
        for item in list.split(',') {
            let kind = BaseKind::parse(item).with_context(|| format!("--base {list}"))?;
            bases.push(Base::new(kind, dim, bounds, Some(data)).with_context(|| format!("--base {item}"))?);
        }
        if bases.is_empty() {
            bail!("--base: name at least one base");
        }
        Ok(bases)
    }

    /// The states of --reverse-from ([rows, dim], finite, within `bounds`) and how the report
    /// names them.
    pub fn reverse_samples(
        &self,
        dim: usize,
        bounds: Option<(f32, f32)>,
    ) -> anyhow::Result<Option<(String, Vec<f32>)>> {
        let Some(path) = &self.reverse_from else { return Ok(None) };
        let (values, rows, cols) =
            crate::io::read_samples(path).with_context(|| format!("--reverse-from {}", path.display()))?;
        if cols != dim || rows == 0 {
            bail!("--reverse-from {}: {rows} rows of {cols} values; the energy takes {dim}", path.display());
        }
        if let Some(k) =
            values.iter().position(|v| !v.is_finite() || bounds.is_some_and(|(lo, hi)| !(lo..=hi).contains(v)))
        {
            let where_ = if values[k].is_finite() { "outside --box" } else { "not finite" };
            bail!("--reverse-from {}: row {} column {} is {} ({where_})", path.display(), k / dim, k % dim, values[k]);
        }
        Ok(Some((format!("the {rows} states in {}", path.display()), values)))
    }

    /// The annealing settings, refused when meaningless or when the work (`cost` operations per
    /// evaluation of the energy) is absurd.
    pub fn config(
        &self,
        runs: usize,
        betas: usize,
        seed: u64,
        cost: u64,
        bases: usize,
    ) -> anyhow::Result<AnnealConfig> {
        let config = AnnealConfig {
            leapfrog: self.leapfrog,
            schedule: BetaSchedule::Sigmoid(betas),
            ..AnnealConfig::new(runs, betas, seed)
        };
        config.validate().map_err(|e| match e.to_string() {
            s if s.contains("runs") => anyhow::anyhow!("--ais-runs {runs}: {s}"),
            s if s.contains("temperatures") => anyhow::anyhow!("--betas {betas}: {s}"),
            s => anyhow::anyhow!("--leapfrog {}: {s}", self.leapfrog),
        })?;
        let evaluations = config.evaluations();
        let runs_all = (runs + config.pilot_runs) as u64 * bases as u64;
        crate::plan::Work::new()
            .add(
                format!("--ais-runs {runs} x --betas {betas} x --leapfrog {} x {bases} bases", self.leapfrog),
                format!("AIS ({cost} operations per evaluation of the energy)"),
                &[runs_all, evaluations, cost],
            )
            .check()?;
        Ok(config)
    }
}

/// One AIS split over processes (`ebm eval` of image models).
#[derive(clap::Args, Debug, Clone)]
pub struct ShardArgs {
    /// Run only shard I of N (0-based) of every AIS estimate's runs: runs I*R/N to
    /// (I+1)*R/N - 1 of --ais-runs R, each with the random numbers it has in the whole set
    /// (every shard repeats the short pilot that adapts the step sizes), and write their log
    /// weights to --json for --ais-join; nothing else is evaluated.
    #[arg(long, value_name = "I/N", value_parser = crate::cli::sample::parse_shard, requires = "json")]
    pub ais_shard: Option<(u32, u32)>,
    /// log Z from the log weights the --ais-shard runs wrote (their --json files, shard 0
    /// first, comma-separated) instead of running AIS: the estimate one process would make.
    /// Give the shards' AIS flags and model.
    #[arg(long, value_name = "FILE,...", value_delimiter = ',', conflicts_with = "ais_shard")]
    pub ais_join: Option<Vec<std::path::PathBuf>>,
}

/// The fields of a continuous AIS shard's settings and the flags that set them.
const SHARD_FLAGS: [(&str, &str); 8] = [
    ("ais_runs", "--ais-runs"),
    ("betas", "--betas"),
    ("leapfrog", "--leapfrog"),
    ("base", "--base"),
    ("seed", "--seed"),
    ("box", "--box"),
    ("reverse", "--reverse-from"),
    ("held_out", "--held-out"),
];

/// log Z as [`log_z`] finds it, or, with --ais-shard, this shard's runs written to `json`
/// (None: nothing more to do), or, with --ais-join, the shards' runs joined. `held_out` is
/// the number of images the fitted base was fitted to (part of the settings every shard shares).
#[allow(clippy::too_many_arguments)]
pub fn log_z_or_shard(
    ctx: Option<&Arc<GpuContext>>,
    energy: &Energy,
    bases: &[Base],
    config: &AnnealConfig,
    reverse: Option<&(String, Vec<f32>)>,
    shard: &ShardArgs,
    json: Option<&std::path::Path>,
    (bounds, held_out): (Option<(f32, f32)>, usize),
) -> anyhow::Result<Option<LogZ>> {
    let reverse_rows = reverse.map(|(_, s)| s.len() / energy.dim());
    let settings = serde_json::json!({
        "ais_runs": config.runs, "betas": config.schedule.intervals(), "leapfrog": config.leapfrog,
        "base": bases.iter().map(|b| b.label()).collect::<Vec<_>>().join(","), "seed": config.seed,
        "box": bounds.map(|(lo, hi)| [lo, hi]), "reverse": reverse_rows.map(|r| r.min(config.runs)),
        "held_out": held_out,
    });
    // Made for a shard or a join only: the fingerprint evaluates the energy.
    let provenance = || Provenance {
        settings: settings.clone(),
        flags: &SHARD_FLAGS,
        model: crate::cli::shard::energy_fingerprint(energy),
        model_hint: "join the shards of this model",
    };
    if let Some(files) = &shard.ais_join {
        let (forward, reverse) = ais_shard::join(files, &provenance(), config.runs)?;
        let estimate = |p: Part, direction| -> anyhow::Result<(String, Estimate)> {
            let result = crate::ais::summarize(p.log_weights, p.log_z_base, direction)?;
            let acceptance = p.acceptance.unwrap_or(f64::NAN);
            Ok((p.name, Estimate { result, dropped: p.dropped as usize, acceptance, non_finite: p.non_finite }))
        };
        let forward = forward.into_iter().map(|p| estimate(p, Direction::Forward)).collect::<anyhow::Result<_>>()?;
        let reverse = reverse.map(|p| estimate(p, Direction::Reverse)).transpose()?;
        return Ok(Some(likelihood::finish(forward, reverse)?));
    }
    let Some(i_n) = shard.ais_shard else { return log_z(ctx, energy, bases, config, reverse).map(Some) };
    let (first, end) = ais_shard::runs_of(i_n, config.runs)?;
    let Some(json) = json else { bail!("--ais-shard needs --json FILE for the shard's log weights") };
    let own = match (reverse, reverse_rows) {
        (Some((from, states)), Some(rows)) => {
            if rows < config.runs {
                bail!(
                    "--ais-shard with --reverse-from: {from} are {rows} rows, fewer than --ais-runs {}; each shard's reverse runs are its own rows",
                    config.runs
                );
            }
            let d = energy.dim();
            Some((from.clone(), states[first * d..end * d].to_vec()))
        }
        _ => None,
    };
    let config = AnnealConfig { runs: end - first, first_run: first as u32, ..config.clone() };
    let found = log_z(ctx, energy, bases, &config, own.as_ref())?;
    let part = |name: &str, e: &Estimate| Part {
        dropped: e.dropped as u64,
        acceptance: Some(e.acceptance),
        non_finite: e.non_finite,
        ..Part::new(name, e.result.log_z_base, e.result.log_weights.clone())
    };
    let forward: Vec<Part> = found.report.forward.iter().zip(&found.forward).map(|((b, _), e)| part(b, e)).collect();
    let reverse = found.report.reverse.as_ref().zip(found.reverse.as_ref()).map(|((from, _), e)| part(from, e));
    ais_shard::write(json, &provenance(), i_n, (first, end), &forward, reverse.as_ref())?;
    Ok(None)
}

/// An evaluator that prints where a long loop is (an annealing's temperatures, a descent's
/// iterations), every [`PROGRESS_EVERY`] seconds.
pub(crate) struct Reporting<'a> {
    inner: Box<dyn Evaluator + 'a>,
    /// What a step is ("temperature", "iteration").
    step: &'static str,
    /// Whether every step will run ("about N s left") or the loop may stop early ("at most").
    may_stop_early: bool,
    phase_start: std::time::Instant,
    printed: std::time::Instant,
}

/// Seconds between progress lines of a long loop.
const PROGRESS_EVERY: f64 = 30.0;

impl<'a> Reporting<'a> {
    pub(crate) fn new(inner: Box<dyn Evaluator + 'a>, step: &'static str, may_stop_early: bool) -> Self {
        let now = std::time::Instant::now();
        Reporting { inner, step, may_stop_early, phase_start: now, printed: now }
    }
}

impl Evaluator for Reporting<'_> {
    fn energy_grad(&mut self, xs: &[f32], es: &mut [f32], gs: &mut [f32]) -> crate::Result<()> {
        self.inner.energy_grad(xs, es, gs)
    }

    fn energy_grad_rows(&mut self, rows: &[usize], xs: &[f32], es: &mut [f32], gs: &mut [f32]) -> crate::Result<()> {
        self.inner.energy_grad_rows(rows, xs, es, gs)
    }

    fn progress(&mut self, k: usize, of: usize) {
        let now = std::time::Instant::now();
        if k == 1 {
            (self.phase_start, self.printed) = (now, now);
        }
        if now.duration_since(self.printed).as_secs_f64() >= PROGRESS_EVERY {
            self.printed = now;
            let spent = now.duration_since(self.phase_start).as_secs_f64();
            let left = spent * (of - k) as f64 / k as f64;
            let bound = if self.may_stop_early { "at most" } else { "about" };
            eprintln!("          {} {k} of {of}, {bound} {left:.0} s left in this phase", self.step);
        }
    }
}

/// log Z of `energy` by forward AIS from each base (and reverse AIS from `reverse`'s states),
/// with progress on stderr.
pub fn log_z(
    ctx: Option<&Arc<GpuContext>>,
    energy: &Energy,
    bases: &[Base],
    config: &AnnealConfig,
    reverse: Option<&(String, Vec<f32>)>,
) -> anyhow::Result<LogZ> {
    let start = std::time::Instant::now();
    let mut eval = Reporting::new(evaluator(ctx, energy), "temperature", false);
    let mut progress = |what: &str| eprintln!("[{:>7.1} s] {what}", start.elapsed().as_secs_f64());
    let reverse = reverse.map(|(from, samples)| ReverseFrom { from: from.clone(), samples });
    Ok(likelihood::log_z(&mut eval, bases, config, reverse, &mut progress)?)
}

/// The report's lines: each base's estimate, its acceptance and dropped runs, the reverse
/// estimate and the interval, the warnings.
pub fn report_lines(found: &LogZ, config: &AnnealConfig) -> Vec<String> {
    let (report, estimates) = (&found.report, &found.forward);
    let mut lines = vec![format!(
        "log Z = {:.4} +- {:.4} (AIS, HMC transitions: {} runs x {} temperatures x {} leapfrog steps per base; a stochastic lower bound)",
        report.log_z,
        report.std_err,
        config.runs,
        config.schedule.intervals(),
        config.leapfrog
    )];
    for ((base, r), e) in report.forward.iter().zip(estimates) {
        let mut line = format!(
            "  from the {base} base: {:.4} +- {:.4}, mean acceptance {:.2}, effective runs {:.1}",
            r.log_z,
            r.std_err,
            e.acceptance,
            effective_runs(&r.log_weights)
        );
        if e.non_finite > 0 {
            line.push_str(&format!(", {} proposals refused (energy not finite)", e.non_finite));
        }
        lines.push(line);
    }
    if let (Some((from, r)), Some(e)) = (&report.reverse, &found.reverse) {
        lines.push(format!(
            "  reverse AIS from {from}: {:.4} +- {:.4}, mean acceptance {:.2}, effective runs {:.1} (an upper bound in expectation only if those are exact samples of the model)",
            r.log_z,
            r.std_err,
            e.acceptance,
            effective_runs(&r.log_weights)
        ));
    }
    if let Some((lo, hi)) = report.interval {
        lines.push(format!("  log Z within [{lo:.4}, {hi:.4}] (forward and reverse)"));
    }
    lines.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
    lines
}

/// The report as JSON.
pub fn json(found: &LogZ, config: &AnnealConfig) -> serde_json::Value {
    let (report, estimates) = (&found.report, &found.forward);
    serde_json::json!({
        "method": "AIS", "log_z": report.log_z, "std_err": report.std_err,
        "runs": config.runs, "temperatures": config.schedule.intervals(), "leapfrog": config.leapfrog, "seed": config.seed,
        "forward": report.forward.iter().zip(estimates).map(|((b, r), e)| {
            let mut v = r.json();
            v["base"] = b.as_str().into();
            v["acceptance"] = e.acceptance.into();
            v["effective_runs"] = effective_runs(&r.log_weights).into();
            v["dropped_runs"] = e.dropped.into();
            v["non_finite_proposals"] = e.non_finite.into();
            v
        }).collect::<Vec<_>>(),
        "reverse": report.reverse.as_ref().zip(found.reverse.as_ref()).map(|((from, r), e)| {
            let mut v = r.json();
            v["from"] = from.as_str().into();
            v["acceptance"] = e.acceptance.into();
            v["effective_runs"] = effective_runs(&r.log_weights).into();
            v
        }),
        "interval": report.interval.map(|(lo, hi)| [lo, hi]),
        "warnings": report.warnings,
    })
}
