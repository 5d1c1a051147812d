//! `ebm rbm train | eval | sample`: restricted Boltzmann machines on MNIST-style IDX folders or
//! the 8x8 digits CSV, on the GPU or the CPU executor.

mod ais_shard;
mod eval_data;
mod resume;
mod sample;

use crate::cli::backend::Backend;
use crate::cli::rundir::Given;
use crate::data::{self, Binarize, Dataset, Split};
use crate::io::figure::{ImageGrid, Scale};
use crate::rbm::ais::{self, AisConfig, BetaSchedule};
use crate::rbm::eval::{Executor, LogZConfig};
use crate::rbm::train::{self, LrSchedule, Method, TrainConfig, TrainState};
use crate::rbm::{Rbm, Visible, checkpoint, cpu, gpu, logz};
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::ProgressStyle;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum BinarizeArg {
    /// Each pixel on with probability equal to its grey level (seeded by --data-seed).
    Stochastic,
    /// On above 0.5.
    Threshold,
    /// Keep grey levels (Gaussian visibles).
    None,
}

impl BinarizeArg {
    /// The value as `--binarize` spells it.
    pub fn name(self) -> &'static str {
        match self {
            BinarizeArg::Stochastic => "stochastic",
            BinarizeArg::Threshold => "threshold",
            BinarizeArg::None => "none",
        }
    }
}

#[derive(Args, Debug)]
pub struct RbmArgs {
    #[command(subcommand)]
    pub command: RbmCommand,
}

#[derive(Subcommand, Debug)]
pub enum RbmCommand {
    /// Train with CD-k or PCD-k; writes metrics.csv, checkpoint.safetensors and filters.png to --run-dir.
    Train(TrainArgs),
    /// Test log-likelihood (exact log Z or AIS), reconstruction error and pseudo-likelihood, on
    /// the data and binarisation of the run (its run.json) unless --data/--binarize say otherwise.
    Eval(EvalArgs),
    /// A PNG grid of samples after k Gibbs steps.
    Sample(SampleArgs),
}

#[derive(Args, Debug)]
pub struct DataArgs {
    /// An MNIST-layout IDX folder (gz or raw), the 8x8 digits CSV (file or folder), e.g.
    /// data/digits in this repository, a folder of PNGs (or of train/ and test/ sets) or a
    /// .npy of images (see `ebm data --help`).
    #[arg(long)]
    pub data: PathBuf,
    /// How grey levels in [0, 1] become visible units.
    #[arg(long, value_enum, default_value = "stochastic")]
    pub binarize: BinarizeArg,
    /// Seed of the stochastic binarisation.
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Use only the first N rows of each split.
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden units.
    #[arg(long, default_value_t = 500)]
    pub hidden: usize,
    /// CD-k: k Gibbs steps from each data batch (the default is CD-1).
    #[arg(long, conflicts_with = "pcd")]
    pub cd: Option<u32>,
    /// PCD-k: k Gibbs steps of persistent chains, as many as the batch.
    #[arg(long)]
    pub pcd: Option<u32>,
    /// Passes over the training rows (a resumed run continues to this many).
    #[arg(long, default_value_t = 10)]
    pub epochs: u32,
    /// Rows per gradient step.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Learning rate of SGD with momentum.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.05)]
    pub lr: f32,
    /// constant, linear:FINAL_FRACTION (to lr x FINAL_FRACTION over the run) or exp:GAMMA
    /// (lr x GAMMA^epoch).
    #[arg(long, default_value = "constant")]
    pub lr_schedule: String,
    /// SGD momentum.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.5)]
    pub momentum: f32,
    /// L2 weight decay on the weights.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Gaussian (unit-variance) visibles instead of binary (use with --binarize none).
    #[arg(long)]
    pub gaussian: bool,
    /// Seeds the initial weights and every Gibbs step's random numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Executor: auto (a hardware GPU if one opens, else the CPU executor), gpu (any adapter,
    /// a software one included) or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// Where metrics.csv, checkpoint.safetensors and filters.png go (optional with `--resume DIR`).
    #[arg(long, required_unless_present = "resume")]
    pub run_dir: Option<PathBuf>,
    /// Continue a run from its checkpoint, bit-identical to not stopping: `--resume DIR`, or
    /// `--resume` with --run-dir DIR.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    /// Start afresh in a run dir that already holds a run, replacing it.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// With --resume: continue with the --lr given instead of the run's (the run then no longer
    /// matches one that was never stopped).
    #[arg(long, requires = "resume")]
    pub change_lr: bool,
}

impl TrainArgs {
    /// The run directory: --run-dir, or the DIR of `--resume DIR` (they must agree if both).
    fn dir(&self) -> anyhow::Result<PathBuf> {
        crate::cli::rundir::run_dir(self.run_dir.as_deref(), self.resume.as_deref())
    }
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: eval_data::EvalDataArgs,
    /// A run directory written by `ebm rbm train` (its checkpoint.safetensors).
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Exact log Z by enumerating the hidden layer (at most 25 hidden units), or the visible
    /// layer of a binary model with at most 25 visibles.
    #[arg(long, conflicts_with_all = ["ais_runs", "betas", "reverse_gibbs"])]
    pub exact: bool,
    #[command(flatten)]
    pub ais: AisArgs,
    /// Seeds AIS, the reconstruction and the pseudo-likelihood's random numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Executor: auto (a hardware GPU if one opens, else the CPU executor), gpu (any adapter,
    /// a software one included) or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// Also write the results as JSON: log Z (with its standard error and AIS interval),
    /// test log-likelihood, reconstruction error, pseudo-likelihood.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run only shard I of N (0-based) of every AIS estimate's runs — runs I*R/N to
    /// (I+1)*R/N - 1 of --ais-runs R, each with the random numbers it has in the whole set —
    /// and write their log weights to --json for --ais-join; nothing else is evaluated.
    #[arg(long, value_name = "I/N", value_parser = crate::cli::sample::parse_shard, conflicts_with = "exact", requires = "json")]
    pub ais_shard: Option<(u32, u32)>,
    /// Log Z from the log weights the --ais-shard runs wrote (their --json files, shard 0
    /// first, comma-separated) instead of running AIS: the estimate of one run of all of them.
    #[arg(long, value_name = "FILE,...", value_delimiter = ',', conflicts_with_all = ["exact", "ais_shard"])]
    pub ais_join: Option<Vec<PathBuf>>,
}

/// The AIS estimate of log Z (`rbm eval`, and `score` for rbm: energies).
#[derive(Args, Debug)]
pub struct AisArgs {
    /// AIS runs (in parallel) of each estimate: forward from the data's base-rate model,
    /// forward from the uniform base, and the reverse check.
    #[arg(long, default_value_t = 100)]
    pub ais_runs: usize,
    /// AIS temperatures (Salakhutdinov-Murray piecewise schedule scaled to this many; at least
    /// 100). Continuous energies (`ebm score --log-z ais`) anneal on a sigmoid schedule and
    /// default to 1000.
    #[arg(long, default_value_t = 15000)]
    pub betas: usize,
    /// Gibbs steps of the model's chains (from noise) that start the reverse check when the
    /// hidden layer (a DBM's h1) is too large for exact samples (over 20 units); 0 leaves the
    /// check out.
    #[arg(long, default_value_t = 1000)]
    pub reverse_gibbs: u32,
}

impl AisArgs {
    /// Refuses a temperature count that cannot mean anything or is beyond the ceiling (needs
    /// no model, so commands call it before reading files).
    pub fn check_betas(&self) -> anyhow::Result<()> {
        if self.betas < ais::MIN_INTERVALS {
            bail!(
                "--betas {}: too few temperatures for AIS to mean anything; use at least {} (thousands for models trained on real data)",
                self.betas,
                ais::MIN_INTERVALS
            );
        }
        Ok(crate::plan::per_step("--betas", self.betas as u64, crate::plan::MAX_BETAS, "AIS temperatures")?)
    }

    /// Refuses settings that cannot mean anything or would take absurdly long for `rbm`,
    /// naming the flags, before any work.
    pub fn check(&self, rbm: &Rbm) -> anyhow::Result<()> {
        self.check_betas()?;
        if !(2..=ais::MAX_RUNS).contains(&self.ais_runs) {
            bail!(
                "--ais-runs {}: need 2 to {} runs (this many would hold {:.1} GB of AIS state for this {}x{} model)",
                self.ais_runs,
                ais::MAX_RUNS,
                ais::state_bytes(self.ais_runs, rbm.n_vis, rbm.n_hid) as f64 / 1e9,
                rbm.n_vis,
                rbm.n_hid
            );
        }
        // Two forward estimates and the reverse check step through every temperature; the
        // reverse check's chains first take --reverse-gibbs steps. Each step: two products
        // with the weights.
        let (runs, v, h) = (self.ais_runs as u64, rbm.n_vis as u64, rbm.n_hid as u64);
        let flags = format!(
            "--ais-runs {} x (3 x --betas {} + --reverse-gibbs {})",
            self.ais_runs, self.betas, self.reverse_gibbs
        );
        let steps = 3 * self.betas as u64 + self.reverse_gibbs as u64;
        crate::plan::Work::new().add(flags, format!("AIS on this {v}x{h} RBM"), &[runs, steps, 2, v, h]).check()?;
        Ok(())
    }

    /// The default log Z estimate ([`Executor::log_z_ais`], base-rate base fitted to `data`),
    /// with one line per estimate and a `WARNING:` line per disagreement, as printed.
    pub fn log_z(
        &self,
        exec: &Executor,
        rbm: &Rbm,
        data: &[f32],
        seed: u64,
    ) -> anyhow::Result<(ais::AisReport, Vec<String>)> {
        let r = exec.log_z_ais(rbm, data, &self.config(seed, 0, self.ais_runs))?;
        let lines = self.report_lines(&r);
        Ok((r, lines))
    }

    /// The estimates' settings for runs first.. first + runs - 1.
    pub(super) fn config(&self, seed: u64, first_run: u32, runs: usize) -> LogZConfig {
        LogZConfig {
            ais: AisConfig { runs, schedule: BetaSchedule::Piecewise(self.betas), seed, first_run },
            chain_steps: self.reverse_gibbs,
        }
    }

    /// One line per estimate and a `WARNING:` line per disagreement, as printed.
    pub(super) fn report_lines(&self, r: &ais::AisReport) -> Vec<String> {
        let runs = format!("{} runs x {} betas", self.ais_runs, self.betas);
        let mut lines: Vec<String> = r
            .forward
            .iter()
            .map(|(base, f)| {
                format!("AIS from the {} base: log Z = {:.4} +- {:.4} ({runs})", base.name(), f.log_z, f.std_err)
            })
            .collect();
        if let Some((from, rev)) = &r.reverse {
            let exact = from.starts_with("exact");
            let bound = if exact {
                "an upper bound in expectation"
            } else {
                "an upper bound in expectation once the chains have mixed"
            };
            lines.push(format!("reverse AIS from {from}: log Z = {:.4} +- {:.4} ({bound})", rev.log_z, rev.std_err));
        }
        lines.extend(r.warnings.iter().map(|w| format!("WARNING: {w}")));
        lines
    }
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// A run directory written by `ebm rbm train` (its checkpoint.safetensors).
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Chains, one image each in the grid.
    #[arg(long, default_value_t = 64)]
    pub chains: usize,
    /// Block Gibbs steps from Bernoulli(1/2) noise.
    #[arg(long, default_value_t = 1000)]
    pub steps: u32,
    /// Seeds the starting noise and every Gibbs step.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image height (width = visible units / height); default: square.
    #[arg(long)]
    pub height: Option<usize>,
    /// Output: a PNG grid, or .npy for the pixel means E[v | h] as [chains, visible units]
    /// float32 [default: RUN_DIR/samples.png].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Executor: auto (a hardware GPU if one opens, else the CPU executor), gpu (any adapter,
    /// a software one included) or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
}

pub fn run(args: &RbmArgs, given: &Given) -> anyhow::Result<()> {
    match &args.command {
        RbmCommand::Train(a) => run_train(a, given),
        RbmCommand::Eval(a) => run_eval(a),
        RbmCommand::Sample(a) => sample::run_sample(a),
    }
}

pub fn executor(backend: Backend) -> anyhow::Result<Executor> {
    Ok(crate::cli::backend::open(backend)?.map_or(Executor::Cpu, Executor::Gpu))
}

pub(super) fn load(args: &DataArgs, split: Split) -> anyhow::Result<Dataset> {
    let path = crate::cli::datasets::resolve(&args.data.to_string_lossy())?;
    let mut d = data::load(&path, split)?;
    if let Some(n) = args.limit {
        d = d.take(n);
    }
    d.check_finite("data")?;
    let how = match args.binarize {
        BinarizeArg::Stochastic => Binarize::Stochastic(args.data_seed + split as u64),
        BinarizeArg::Threshold => Binarize::Threshold(0.5),
        BinarizeArg::None => Binarize::None,
    };
    data::binarize(&mut d, how, 0);
    Ok(d)
}

/// The checkpoint of an `ebm rbm train` run directory, or an error saying there is none.
pub fn run_checkpoint(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let ckpt = dir.join("checkpoint.safetensors");
    if !ckpt.is_file() {
        bail!(
            "--run-dir {}: no checkpoint.safetensors there (write one with `ebm rbm train --run-dir DIR`)",
            dir.display()
        );
    }
    Ok(ckpt)
}

/// The data a run directory was trained on (`run.json`), which a resume must match.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct RunData {
    data: PathBuf,
    binarize: String,
    data_seed: u64,
    limit: Option<usize>,
    /// [`crate::cli::rundir::data_hash`] of the training rows as loaded and binarised.
    data_hash: String,
    /// [`crate::cli::rundir::data_file`] of `data`; absent in runs of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_file: Option<PathBuf>,
}

const RUN_FILE: &str = "run.json";
const CHECKPOINT: &str = "checkpoint.safetensors";
const METRICS: &str = "metrics.csv";
const FILTERS: &str = "filters.png";
const METRICS_HEADER: &str = "epoch,seconds,recon_error,pseudo_likelihood,executor";

/// What `ebm rbm train --resume` lets change; every other setting given must equal the run's.
const RESUME_MAY_CHANGE: &str = "a resume may change --epochs (upwards), --backend, and --lr together with --change-lr";

fn run_train(a: &TrainArgs, given: &Given) -> anyhow::Result<()> {
    for (flag, k) in [("--cd", a.cd), ("--pcd", a.pcd)] {
        if let Some(k) = k {
            crate::plan::per_step(flag, k as u64, crate::plan::MAX_STEPS_PER_STEP, "Gibbs steps per batch")?;
        }
    }
    let run_dir = a.dir()?;
    let mut paths = crate::cli::outputs::Paths::new();
    paths.input("--data", &a.data.data);
    paths.locked_run_dir("--run-dir", &run_dir, &[RUN_FILE, CHECKPOINT, METRICS, FILTERS])?;
    crate::cli::rundir::refuse_other_kind(&run_dir, &[crate::train::run::LOG, "eval.json", "figures"], "ebm train")?;
    crate::cli::rundir::with_lock(&run_dir, || {
        let result = train_locked(a, given, &run_dir);
        // A fresh start that failed (or was refused) before its first checkpoint takes the
        // files it made with it: run.json, the metrics, the filters.
        if result.is_err() && a.resume.is_none() && !run_dir.join(CHECKPOINT).exists() {
            crate::cli::rundir::remove_failed_start(&run_dir, &[RUN_FILE, METRICS, FILTERS]);
        }
        result
    })
}

/// `ebm rbm train` with the run dir's lock held.
fn train_locked(a: &TrainArgs, given: &Given, run_dir: &Path) -> anyhow::Result<()> {
    let resume = a.resume.is_some();
    let ckpt = run_dir.join(CHECKPOINT);
    if ckpt.exists() && !resume && !a.force {
        bail!("{} already holds a run: continue it with --resume, or replace it with --force", run_dir.display());
    }
    if resume && !ckpt.exists() {
        bail!("--resume: {} holds no run to continue (no checkpoint.safetensors)", run_dir.display());
    }
    let recorded = if resume { read_run_data(run_dir)? } else { None };
    // A resume loads the data as the run did, unless a flag given says otherwise (and is refused).
    let data_args = DataArgs {
        data: a.data.data.clone(),
        binarize: match &recorded {
            Some(r) if !given.has("--binarize") => {
                <BinarizeArg as ValueEnum>::from_str(&r.binarize, true).map_err(anyhow::Error::msg)?
            }
            _ => a.data.binarize,
        },
        data_seed: recorded.as_ref().filter(|_| !given.has("--data-seed")).map_or(a.data.data_seed, |r| r.data_seed),
        limit: recorded.as_ref().filter(|_| !given.has("--limit")).map_or(a.data.limit, |r| r.limit),
    };
    let train_x = load(&data_args, Split::Train)?;
    let run_data = RunData {
        data: data_args.data.clone(),
        binarize: format!("{:?}", data_args.binarize).to_lowercase(),
        data_seed: data_args.data_seed,
        limit: data_args.limit,
        data_hash: crate::cli::rundir::data_hash(&train_x.images),
        data_file: crate::cli::rundir::data_file(&data_args.data),
    };
    if !resume {
        plan(a, &train_x)?;
    }
    let method = match (a.cd, a.pcd) {
        (_, Some(k)) => Method::Pcd(k),
        (Some(k), None) => Method::Cd(k),
        (None, None) => Method::Cd(1),
    };
    let mut config = TrainConfig::new(method, a.batch, a.lr, a.epochs, a.seed);
    let flags = |e| crate::cli::numbers::with_flag_names(e, crate::cli::numbers::RBM_TRAIN_FLAGS);
    config.schedule = LrSchedule::parse(&a.lr_schedule).map_err(flags)?;
    config.momentum = a.momentum;
    config.weight_decay = a.weight_decay;
    config.validate().map_err(flags)?;
    let visible = if a.gaussian { Visible::Gaussian } else { Visible::Bernoulli };
    let shape = train_x.shape();
    let state = if resume {
        let (state, saved) = checkpoint::load(&ckpt)?;
        let saved = saved
            .with_context(|| format!("--resume: {} records no training settings to continue with", ckpt.display()))?;
        resume::check_resume(a, given, recorded.as_ref(), &run_data, &state, &saved, &config)?;
        state.rbm.check_data(&train_x)?;
        let lr = if a.change_lr { config.lr } else { saved.lr };
        let epochs = if given.has("--epochs") { config.epochs } else { saved.epochs };
        config = TrainConfig { lr, epochs, ..saved };
        config.validate()?;
        if state.epoch > config.epochs {
            bail!(
                "--resume: --epochs {} is below the checkpoint's epoch {}; a run cannot go back",
                config.epochs,
                state.epoch
            );
        }
        if state.epoch == config.epochs {
            // Complete; the filters are written before each checkpoint, so only a deleted
            // figure can be missing.
            if !run_dir.join(FILTERS).exists() {
                write_filters(run_dir, &state.rbm, shape)?;
                eprintln!("wrote the missing {}", run_dir.join(FILTERS).display());
            }
            eprintln!(
                "{} is complete at epoch {} (--epochs {}); give a larger --epochs to train on",
                run_dir.display(),
                state.epoch,
                config.epochs
            );
            return Ok(());
        }
        eprintln!("resuming after epoch {}", state.epoch);
        state
    } else {
        let rbm = Rbm::random(train_x.dim(), a.hidden, visible, 0.01, a.seed)?;
        TrainState::new(rbm, &config, &train_x.images)?
    };
    work(&config, state.epoch, train_x.rows, train_x.dim(), state.rbm.n_hid)?;
    // The metrics log this run appends to, checked before anything is written.
    crate::io::metrics_rows(&run_dir.join(METRICS), METRICS_HEADER).context("--resume")?;
    // Written once the resume is known to be sound (a resume keeps the data, so the file too).
    crate::io::write_atomic(&run_dir.join(RUN_FILE), serde_json::to_string_pretty(&run_data)?.as_bytes())?;
    let first_epoch = state.epoch;
    let exec = executor(a.backend)?;
    eprintln!(
        "training {}x{} with {} on {} rows ({})",
        train_x.dim(),
        state.rbm.n_hid,
        config.method,
        train_x.rows,
        exec.describe()
    );
    let mut trainer = exec.trainer(&config, state, &train_x.images)?;
    let metrics_path = run_dir.join(METRICS);
    // Rows after the checkpoint's epoch (a run killed between its metrics and its checkpoint)
    // are dropped: they are trained again.
    let mut metrics = format!("{METRICS_HEADER}\n");
    for row in crate::io::keep_rows_through(&metrics_path, METRICS_HEADER, first_epoch)? {
        metrics.push_str(&row);
        metrics.push('\n');
    }
    for epoch in first_epoch..config.epochs {
        let bar = crate::cli::progress::bar(train_x.rows.div_ceil(config.batch) as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {msg} [{bar:30}] {pos}/{len} batches {elapsed}")
                .expect("static progress template")
                .progress_chars("=> "),
        );
        bar.set_message(format!("{}/{}", epoch + 1, config.epochs));
        let report =
            train::run_epoch(trainer.as_mut(), &config, train_x.rows, epoch, |done, _| bar.set_position(done as u64))?;
        bar.finish_and_clear();
        let mut state = trainer.state()?;
        state.epoch = epoch + 1;
        state.rbm.check_finite()?;
        let sub = &train_x.images[..train_x.dim() * train_x.rows.min(1000)];
        let pl = exec.pseudo_likelihood(&state.rbm, sub, epoch as u64)?;
        eprintln!(
            "epoch {}: {:.2}s, recon error {:.4}, pseudo-likelihood {pl:.3}",
            epoch + 1,
            report.seconds,
            report.recon_error
        );
        metrics.push_str(&format!(
            "{},{:.4},{:.6},{:.6},{}\n",
            epoch + 1,
            report.seconds,
            report.recon_error,
            pl,
            exec.describe().replace(',', ";")
        ));
        crate::io::write_atomic(&metrics_path, metrics.as_bytes())?;
        // The figure before the checkpoint: a checkpoint at an epoch promises its outputs.
        write_filters(run_dir, &state.rbm, shape)?;
        checkpoint::save(&ckpt, &state, Some(&config))?;
    }
    eprintln!("wrote {}, {} and {FILTERS}", metrics_path.display(), ckpt.display());
    Ok(())
}

/// The host memory a fresh `rbm train` needs, refused before the model is made, naming
/// --hidden or --batch and the size. (Resume reads the sizes from a checkpoint the plan's
/// bounded reader already checked.)
fn plan(a: &TrainArgs, train_x: &Dataset) -> anyhow::Result<()> {
    let (v, h, b) = (train_x.dim() as u64, a.hidden as u64, a.batch as u64);
    let mut plan = crate::plan::Plan::new();
    // Weights, their gradient and momentum, the executor's copy, the checkpoint's copy and its
    // encoding.
    plan.add(format!("--hidden {} x {v} visible units", a.hidden), "the weights", &[v, h], 4, 6);
    // The batch's data, reconstructions, hidden probabilities and samples at both ends of the
    // chain, and PCD's persistent chains.
    plan.add(
        format!("--batch {} x (--hidden {} + {v} visible units)", a.batch, a.hidden),
        "a batch of Gibbs chains",
        &[b, v + h],
        4,
        8,
    );
    // The executor's copy of the training rows.
    plan.add(
        format!("--data {} ({} rows)", a.data.data.display(), train_x.rows),
        "the training rows",
        &[train_x.rows as u64, v],
        4,
        1,
    );
    plan.check()?;
    Ok(())
}

/// Refuses training whose stated work is absurd (see `crate::plan::Work`): each row of each
/// remaining epoch takes k Gibbs steps (two products with the weights each) and the gradient.
fn work(config: &TrainConfig, from_epoch: u32, rows: usize, v: usize, h: usize) -> anyhow::Result<()> {
    let k = match config.method {
        Method::Cd(k) | Method::Pcd(k) => k as u64,
    };
    let epochs = config.epochs.saturating_sub(from_epoch) as u64;
    let flags = format!("--epochs {} x {rows} rows x {} (--cd/--pcd)", config.epochs, config.method);
    let what = format!("training a {v}x{h} RBM");
    crate::plan::Work::new().add(flags, what, &[epochs, rows as u64, 2 * k + 3, v as u64, h as u64]).check()?;
    Ok(())
}

/// The run's `run.json`, or None for a run of an older version, which wrote none.
fn read_run_data(run_dir: &Path) -> anyhow::Result<Option<RunData>> {
    crate::cli::rundir::read_run_json(&run_dir.join(RUN_FILE))
}

/// The first 100 hidden units' filters as `filters.png` in the run dir (of RGB images, in
/// colour).
fn write_filters(run_dir: &Path, rbm: &Rbm, shape: (usize, usize, usize)) -> anyhow::Result<()> {
    let filters = &rbm.w()[..rbm.n_hid.min(100) * rbm.n_vis];
    let title = format!("filters of the first {} hidden units (grey is 0)", rbm.n_hid.min(100));
    ImageGrid::new(title, shape).cols(10).scale(Scale::Symmetric).png(&run_dir.join(FILTERS), filters)?;
    Ok(())
}

fn run_eval(a: &EvalArgs) -> anyhow::Result<()> {
    if let Some(path) = &a.json {
        crate::cli::outputs::Paths::new().output("--json", path, &["json"])?;
    }
    if !a.exact {
        a.ais.check_betas()?;
    }
    let (state, _) = checkpoint::load(&run_checkpoint(&a.run_dir)?)?;
    let rbm = state.rbm;
    if !a.exact {
        a.ais.check(&rbm)?;
    }
    let (data, settings) = eval_data::resolve(&a.data, &a.run_dir)?;
    println!("{}", settings.line());
    let test = load(&data, Split::Test)?;
    rbm.check_data(&test)?;
    // A likelihood under Bernoulli visibles is defined on 0/1 pixels only.
    if let (Visible::Bernoulli, Some(v)) = (rbm.visible, test.images.iter().find(|&&v| v != 0.0 && v != 1.0)) {
        bail!(
            "--binarize {}: the test images keep grey levels (such as {v}), but this RBM's visible units are \
             Bernoulli (0 or 1), under which a grey level has no likelihood; evaluate with --binarize stochastic \
             or threshold (an RBM for grey levels is trained with --gaussian)",
            data.binarize.name()
        );
    }
    let exec = executor(a.backend)?;
    if let Some(shard) = a.ais_shard {
        return ais_shard::run(a, &exec, &rbm, &load(&data, Split::Train)?.images, shard);
    }
    let t = std::time::Instant::now();
    let (log_z, se, interval) = if a.exact {
        (exec.log_z_exact(&rbm)?, 0.0, None)
    } else {
        let r = match &a.ais_join {
            Some(files) => ais_shard::join(a, &rbm, files)?,
            None => a.ais.log_z(&exec, &rbm, &load(&data, Split::Train)?.images, a.seed)?.0,
        };
        a.ais.report_lines(&r).iter().for_each(|l| println!("{l}"));
        (r.log_z, r.std_err, r.interval)
    };
    let ll = exec.mean_log_likelihood(&rbm, &test.images, log_z)?;
    let recon = exec.mean_recon_error(&rbm, &test.images, a.seed)?;
    println!("executor: {} ({:.1}s for log Z)", exec.describe(), t.elapsed().as_secs_f64());
    match (a.exact, interval) {
        (true, _) => println!("log Z: {log_z:.4} (exact)"),
        (false, Some((lo, hi))) => {
            println!("log Z: {log_z:.4} +- {se:.4}, within [{lo:.4}, {hi:.4}] (forward and reverse AIS)")
        }
        (false, None) => println!("log Z: {log_z:.4} +- {se:.4}"),
    }
    match interval {
        Some((_, hi)) if hi > log_z => println!(
            "test log-likelihood: {ll:.4} nats per image ({} images; at least {:.4} by the reverse check)",
            test.rows,
            ll - (hi - log_z)
        ),
        _ => println!("test log-likelihood: {ll:.4} nats per image ({} images)", test.rows),
    }
    println!("test reconstruction error: {recon:.4}");
    let pl = exec.pseudo_likelihood(&rbm, &test.images, a.seed)?;
    match rbm.visible {
        Visible::Bernoulli => println!("test pseudo-likelihood: {pl:.4}"),
        Visible::Gaussian => println!(
            "test pseudo-likelihood: {pl:.4} (Gaussian visibles: n_vis x log density of one visible given the rest)"
        ),
    }
    if let (false, Some((layer, n))) = (a.exact, logz::enumerated_layer(&rbm)) {
        println!(
            "note: the {layer} layer has {n} units, so the exact log Z is available: add --exact (2^{n} configurations enumerated)"
        );
    }
    if let Some(path) = &a.json {
        let report = serde_json::json!({
            "log_z": log_z,
            "log_z_std_err": se,
            "log_z_interval": interval.map(|(lo, hi)| [lo, hi]),
            "exact": a.exact,
            "test_images": test.rows,
            "test_log_likelihood": ll,
            "test_recon_error": recon,
            "test_pseudo_likelihood": pl,
            "executor": exec.describe(),
        });
        crate::io::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
