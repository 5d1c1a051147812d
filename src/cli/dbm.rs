//! `ebm dbm train | eval | sample`: deep Boltzmann machines (two hidden layers) and, with
//! `--deep dbn`, deep belief networks, with the `ebm rbm` flags (--data, --binarize, --batch,
//! --lr, --cd, --pcd, --momentum, --seed, --backend, --run-dir) and one run-dir layout
//! (checkpoint.safetensors, metrics.csv, filters.png).

use crate::cli::backend::Backend;
use crate::cli::rbm::{AisArgs, DataArgs, executor, load};
use crate::data::Split;
use crate::io::figure::{ImageGrid, Scale, image_shape};
use crate::rbm::ais::{AisConfig, BetaSchedule};
use crate::rbm::deep::gpu_train::GpuDbmTrainer;
use crate::rbm::deep::train::{self, ChainStart, DbmConfig, DbmState};
use crate::rbm::deep::{Deep, Kind, ais, checkpoint, sample};
use crate::rbm::eval::Executor;
use crate::rbm::train::{LrSchedule, Method, TrainConfig};
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DbmArgs {
    #[command(subcommand)]
    pub command: DbmCommand,
}

#[derive(Subcommand, Debug)]
pub enum DbmCommand {
    /// Greedy layer-wise pre-training, then (DBM) PCD with a mean-field positive phase; writes
    /// metrics.csv, checkpoint.safetensors and filters.png to --run-dir.
    Train(TrainArgs),
    /// log Z by AIS (or exact for small models) and the test/train log-likelihood lower bounds.
    Eval(EvalArgs),
    /// A PNG grid of samples (DBM: block Gibbs; DBN: top-level Gibbs, then the downward pass).
    Sample(SampleArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum DeepArg {
    /// Deep Boltzmann machine (two hidden layers).
    Dbm,
    /// Deep belief network (stacked RBMs).
    Dbn,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PcdInit {
    Noise,
    Data,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden layer sizes, bottom first, e.g. 500,1000 (a resumed run keeps its own).
    #[arg(long, value_delimiter = ',', required_unless_present = "resume")]
    pub layers: Vec<usize>,
    /// Which deep model.
    #[arg(long, value_enum, default_value = "dbm")]
    pub deep: DeepArg,
    /// Epochs of greedy pre-training per layer (both kinds).
    #[arg(long, default_value_t = 10)]
    pub pretrain_epochs: u32,
    /// CD-k of the pre-training RBMs.
    #[arg(long, default_value_t = 1)]
    pub cd: u32,
    /// Learning rate of the pre-training RBMs.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.05)]
    pub pretrain_lr: f32,
    /// DBM epochs after pre-training (PCD with a mean-field positive phase); a DBN has none.
    #[arg(long, default_value_t = 10)]
    pub epochs: u32,
    /// DBM: block Gibbs steps of the persistent chains (as many as the batch) per batch.
    #[arg(long, default_value_t = 1)]
    pub pcd: u32,
    /// DBM: mean-field fixed-point sweeps of the positive phase.
    #[arg(long, default_value_t = 10)]
    pub mean_field: u32,
    /// DBM: where the persistent chains start: noise (Bernoulli(1/2) h1), or data (h1 drawn from
    /// the mean field of the first batch's training rows, so the chains start in the data's
    /// modes; on colour-mnist it trained the better inpainter, docs/images.md).
    #[arg(long, value_enum, default_value = "noise")]
    pub pcd_init: PcdInit,
    /// DBM learning rate.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.005)]
    pub lr: f32,
    /// DBM learning-rate schedule: constant, linear:FINAL_FRACTION or exp:GAMMA.
    #[arg(long, default_value = "constant")]
    pub lr_schedule: String,
    /// Rows per gradient step (both stages).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// SGD momentum (both stages).
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.5)]
    pub momentum: f32,
    /// L2 weight decay on the weights (both stages).
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Seeds the weights and every random number.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Executor of the pre-training RBMs and the DBM stage: auto, gpu or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// Where metrics.csv, checkpoint.safetensors and filters.png go (optional with `--resume DIR`).
    #[arg(long, required_unless_present = "resume")]
    pub run_dir: Option<PathBuf>,
    /// Replace a run already in --run-dir.
    #[arg(long)]
    pub force: bool,
    /// Continue a DBM run from its checkpoint to --epochs, bit-identical to not stopping: `--resume
    /// DIR`, or `--resume` with --run-dir DIR (as `ebm rbm train`). Its settings come from the
    /// checkpoint; --data must give the rows it trained on.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "", conflicts_with = "force")]
    pub resume: Option<String>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// A run directory written by `ebm dbm train`.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Exact log Z (DBM: h1 enumerated, at most 25 units; DBN: the top RBM's, at most 25 hidden).
    #[arg(long)]
    pub exact: bool,
    #[command(flatten)]
    pub ais: AisArgs,
    /// DBM: mean-field sweeps of the bound's q.
    #[arg(long, default_value_t = 30)]
    pub mean_field: u32,
    /// DBN: samples of q(h1 | v) per image in the bound's estimate.
    #[arg(long, default_value_t = 10)]
    pub draws: u32,
    /// Training rows whose bound is also reported (the first N).
    #[arg(long, default_value_t = 10000)]
    pub train_rows: usize,
    /// Seeds AIS and the bound's draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Executor of the DBN's top-RBM AIS: auto, gpu or cpu (the DBM's AIS runs on the CPU).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// Also write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// A run directory written by `ebm dbm train`.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Chains, one image each.
    #[arg(long, default_value_t = 64)]
    pub chains: usize,
    /// Gibbs steps from Bernoulli(1/2) noise (DBN: of the top RBM).
    #[arg(long, default_value_t = 1000)]
    pub steps: u32,
    /// Seeds the starting noise and every Gibbs step.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output: a PNG grid, or .npy for the pixel means E[v | layer above] as [chains, visible
    /// units] float32 in [0, 1], as `ebm rbm sample` writes them (`ebm quality --unit-samples`
    /// reads them) [default: RUN_DIR/samples.png].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Executor: auto, gpu or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
}

pub fn run(args: &DbmArgs, given: &crate::cli::rundir::Given) -> anyhow::Result<()> {
    match &args.command {
        DbmCommand::Train(a) => run_train(a, given),
        DbmCommand::Eval(a) => run_eval(a),
        DbmCommand::Sample(a) => run_sample(a),
    }
}

const CHECKPOINT: &str = "checkpoint.safetensors";
const METRICS: &str = "metrics.csv";

fn checkpoint_of(dir: &Path) -> anyhow::Result<PathBuf> {
    let ckpt = dir.join(CHECKPOINT);
    if !ckpt.is_file() {
        bail!(
            "--run-dir {}: no checkpoint.safetensors there (write one with `ebm dbm train --run-dir DIR`)",
            dir.display()
        );
    }
    Ok(ckpt)
}

fn run_train(a: &TrainArgs, given: &crate::cli::rundir::Given) -> anyhow::Result<()> {
    let run_dir = crate::cli::rundir::run_dir(a.run_dir.as_deref(), a.resume.as_deref())?;
    if a.resume.is_some() {
        return resume_train(a, &run_dir, given);
    }
    let run_dir = run_dir.as_path();
    if let Some(k) = a.layers.iter().position(|&n| n == 0) {
        bail!("--layers: hidden layer {} has 0 units", k + 1);
    }
    let kind = match a.deep {
        DeepArg::Dbm => Kind::Dbm,
        DeepArg::Dbn => Kind::Dbn,
    };
    if kind == Kind::Dbm && a.layers.len() != 2 {
        bail!(
            "--layers: a DBM here has exactly two hidden layers, got {} (a DBN takes two or more: --deep dbn)",
            a.layers.len()
        );
    }
    if kind == Kind::Dbn && a.layers.len() < 2 {
        bail!("--layers: a DBN needs at least two hidden layers (one is an RBM: `ebm rbm train --hidden N`)");
    }
    if kind == Kind::Dbn {
        for flag in ["--epochs", "--pcd", "--mean-field", "--pcd-init", "--lr", "--lr-schedule"] {
            if given.has(flag) {
                bail!("{flag} sets the DBM stage, which a DBN does not have (its layers train for --pretrain-epochs)");
            }
        }
    }
    let ckpt = run_dir.join(CHECKPOINT);
    if ckpt.exists() && !a.force {
        bail!("{} already holds a run: replace it with --force", run_dir.display());
    }
    std::fs::create_dir_all(run_dir).with_context(|| format!("--run-dir {}", run_dir.display()))?;
    let train_x = load(&a.data, Split::Train)?;
    let mut sizes = vec![train_x.dim()];
    sizes.extend(&a.layers);
    crate::rbm::deep::check_layer_sizes(&sizes)?;
    let mut pre = TrainConfig::new(Method::Cd(a.cd), a.batch, a.pretrain_lr, a.pretrain_epochs, a.seed);
    pre.momentum = a.momentum;
    pre.weight_decay = a.weight_decay;
    pre.validate().context("pre-training settings (--cd, --batch, --pretrain-lr, --momentum, --weight-decay)")?;
    let mut fine = TrainConfig::new(Method::Pcd(a.pcd), a.batch, a.lr, a.epochs, a.seed);
    fine.momentum = a.momentum;
    fine.weight_decay = a.weight_decay;
    fine.schedule = LrSchedule::parse(&a.lr_schedule).context("--lr-schedule")?;
    let dbm_config = DbmConfig { train: fine, mean_field: a.mean_field };
    if kind == Kind::Dbm {
        dbm_config.validate().context("DBM settings (--pcd, --lr, --mean-field)")?;
    }
    let exec = executor(a.backend)?;
    let sizes_text: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    eprintln!(
        "{} {} on {} rows: pre-training {} RBMs with CD-{} for {} epochs each ({})",
        kind.name(),
        sizes_text.join("-"),
        train_x.rows,
        sizes.len() - 1,
        a.cd,
        a.pretrain_epochs,
        exec.describe()
    );
    let metrics_path = run_dir.join(METRICS);
    let mut metrics = String::from("stage,layer,epoch,seconds,recon_error\n");
    let layers = train::pretrain(&exec, &sizes, &train_x.images, &pre, |layer, epoch, r| {
        eprintln!("pre-training layer {layer} epoch {epoch}: {:.2}s, recon error {:.4}", r.seconds, r.recon_error);
        metrics.push_str(&format!("pretrain,{layer},{epoch},{:.4},{:.6}\n", r.seconds, r.recon_error));
        let _ = crate::io::write_atomic(&metrics_path, metrics.as_bytes());
    })?;
    let shape = train_x.shape();
    if kind == Kind::Dbn {
        let model = Deep::new(Kind::Dbn, layers)?;
        write_filters(run_dir, &model, shape)?;
        let config = serde_json::json!({ "pretrain": pre }).to_string();
        let extra = checkpoint::Extra { epoch: a.pretrain_epochs, config: Some(config), ..Default::default() };
        checkpoint::save(&run_dir.join(CHECKPOINT), &model, &extra)?;
        crate::io::write_atomic(&metrics_path, metrics.as_bytes())?;
        eprintln!("wrote {} and {}", metrics_path.display(), ckpt.display());
        return Ok(());
    }
    let start = match a.pcd_init {
        PcdInit::Noise => ChainStart::Noise,
        PcdInit::Data => ChainStart::Data(&train_x.images),
    };
    let mut state = DbmState::new(train::compose_dbm(&layers)?, &dbm_config, start)?;
    let data_hash = crate::cli::rundir::data_hash(&train_x.images);
    let config_json =
        serde_json::json!({ "pretrain": pre, "dbm": dbm_config, "pcd_init": a.pcd_init, "data_hash": data_hash })
            .to_string();
    checkpoint::save_dbm(&ckpt, &state, &config_json)?;
    eprintln!(
        "DBM: PCD-{} ({} persistent chains from {}) with {} mean-field sweeps for {} epochs ({})",
        a.pcd,
        a.batch,
        if a.pcd_init == PcdInit::Data { "the first batch's rows" } else { "noise" },
        a.mean_field,
        a.epochs,
        exec.describe()
    );
    let stage = DbmStage { run_dir, config: &dbm_config, config_json: &config_json, shape, exec: &exec };
    stage.run(&mut state, &train_x.images, a.epochs, &mut metrics)
}

/// The first layer's filters (up to 100) as filters.png, in colour for RGB data.
fn write_filters(run_dir: &Path, model: &Deep, shape: (usize, usize, usize)) -> anyhow::Result<()> {
    let l = &model.layers[0];
    let w = &l.w()[..l.n_hid.min(100) * l.n_vis];
    let title = format!("first layer's filters of {} hidden units (grey is 0)", l.n_hid.min(100));
    ImageGrid::new(title, shape).cols(10).scale(Scale::Symmetric).png(&run_dir.join("filters.png"), w)?;
    Ok(())
}

/// The DBM stage's epochs, each written out (metrics, filters, checkpoint) as it ends.
struct DbmStage<'a> {
    run_dir: &'a Path,
    config: &'a DbmConfig,
    config_json: &'a str,
    /// The images' channels, height and width, for the filters.
    shape: (usize, usize, usize),
    exec: &'a Executor,
}

impl DbmStage<'_> {
    fn run(&self, state: &mut DbmState, data: &[f32], epochs: u32, metrics: &mut String) -> anyhow::Result<()> {
        let (metrics_path, ckpt) = (self.run_dir.join(METRICS), self.run_dir.join(CHECKPOINT));
        let mut gpu = match self.exec {
            Executor::Gpu(ctx) => {
                Some(GpuDbmTrainer::new(ctx.clone(), state, self.config, data.len() / state.dbm.n_vis())?)
            }
            Executor::Cpu => None,
        };
        for epoch in state.epoch..epochs {
            let r = match &mut gpu {
                Some(g) => g.run_epoch(state, data, epoch, |_, _| {})?,
                None => train::run_dbm_epoch(state, self.config, data, epoch, |_, _| {})?,
            };
            eprintln!("DBM epoch {}: {:.2}s, mean-field recon error {:.4}", epoch + 1, r.seconds, r.recon_error);
            metrics.push_str(&format!("dbm,0,{},{:.4},{:.6}\n", epoch + 1, r.seconds, r.recon_error));
            crate::io::write_atomic(&metrics_path, metrics.as_bytes())?;
            write_filters(self.run_dir, &state.dbm, self.shape)?;
            checkpoint::save_dbm(&ckpt, state, self.config_json)?;
        }
        eprintln!("wrote {} and {}", metrics_path.display(), ckpt.display());
        Ok(())
    }
}

/// `ebm dbm train --resume`: the checkpoint's model, momentum, persistent chains, step and
/// epoch, and its settings; the metrics cut back to its epoch; then the remaining epochs.
fn resume_train(a: &TrainArgs, run_dir: &Path, given: &crate::cli::rundir::Given) -> anyhow::Result<()> {
    let settings = [
        "--deep",
        "--layers",
        "--cd",
        "--pretrain-epochs",
        "--pretrain-lr",
        "--pcd",
        "--mean-field",
        "--pcd-init",
        "--lr",
        "--lr-schedule",
        "--batch",
        "--momentum",
        "--weight-decay",
        "--seed",
    ];
    if let Some(flag) = settings.iter().find(|f| given.has(f)) {
        bail!("{flag}: a resumed run keeps the settings in its checkpoint; give --epochs, --data and --backend only");
    }
    let ckpt = checkpoint_of(run_dir)?;
    let (model, extra) = checkpoint::load(&ckpt)?;
    if model.kind != Kind::Dbm {
        bail!(
            "--resume: {} holds a DBN, which trains in one go (its layers' pre-training is the whole run)",
            ckpt.display()
        );
    }
    let bad = |what: &str| {
        anyhow::anyhow!("--resume: {} has no {what}: it was not written by `ebm dbm train`", ckpt.display())
    };
    let config: serde_json::Value = serde_json::from_str(extra.config.as_deref().ok_or_else(|| bad("settings"))?)
        .with_context(|| format!("--resume: the settings in {}", ckpt.display()))?;
    let mut config = config;
    let mut dbm_config: DbmConfig = serde_json::from_value(config["dbm"].clone())
        .with_context(|| format!("--resume: the DBM settings in {}", ckpt.display()))?;
    // A linear schedule spans the run's epochs: only the same total continues it exactly.
    if matches!(dbm_config.train.schedule, LrSchedule::Linear { .. }) && a.epochs != dbm_config.train.epochs {
        bail!(
            "--epochs {}: the run's linear --lr-schedule spans its {} epochs; resume it to --epochs {}",
            a.epochs,
            dbm_config.train.epochs,
            dbm_config.train.epochs
        );
    }
    dbm_config.train.epochs = a.epochs;
    config["dbm"] = serde_json::to_value(&dbm_config)?;
    let [v1, v2]: [Vec<f32>; 2] =
        extra.velocity.ok_or_else(|| bad("momentum"))?.try_into().map_err(|_| bad("two layers' momentum"))?;
    let chains = extra.chains.ok_or_else(|| bad("persistent chains"))?;
    let mut state = DbmState { dbm: model, velocity: [v1, v2], chains, step: extra.step, epoch: extra.epoch };
    let train_x = load(&a.data, Split::Train)?;
    let hash = crate::cli::rundir::data_hash(&train_x.images);
    if config["data_hash"].as_str().is_some_and(|h| h != hash) {
        bail!(
            "--data {}: not the rows the run trained on (their hash differs from the checkpoint's)",
            a.data.data.display()
        );
    }
    if state.epoch >= a.epochs {
        eprintln!("{} is complete: {} of --epochs {} done", run_dir.display(), state.epoch, a.epochs);
        return Ok(());
    }
    // The metrics up to the checkpoint: every pre-training row, the DBM rows of its epochs.
    let metrics_path = run_dir.join(METRICS);
    let text =
        std::fs::read_to_string(&metrics_path).with_context(|| format!("--resume: {}", metrics_path.display()))?;
    let mut metrics = String::new();
    for (k, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let keep = match fields.as_slice() {
            ["stage", ..] => k == 0,
            ["pretrain", _, _, _, _] => true,
            ["dbm", _, epoch, _, _] => epoch.parse::<u32>().is_ok_and(|e| e <= state.epoch),
            _ => bail!("--resume: {} line {}: {line:?} is not a metrics row", metrics_path.display(), k + 1),
        };
        if keep {
            metrics.push_str(line);
            metrics.push('\n');
        }
    }
    let config_json = config.to_string();
    let exec = executor(a.backend)?;
    eprintln!("DBM: resuming {} at epoch {} of {} ({})", run_dir.display(), state.epoch, a.epochs, exec.describe());
    let stage =
        DbmStage { run_dir, config: &dbm_config, config_json: &config_json, shape: train_x.shape(), exec: &exec };
    stage.run(&mut state, &train_x.images, a.epochs, &mut metrics)
}

fn run_eval(a: &EvalArgs) -> anyhow::Result<()> {
    if !a.exact {
        a.ais.check_betas()?;
    }
    let (model, _) = checkpoint::load(&checkpoint_of(&a.run_dir)?)?;
    let test = load(&a.data, Split::Test)?;
    model.check_data(&test)?;
    if let Some(x) = test.images.iter().find(|&&x| x != 0.0 && x != 1.0) {
        bail!(
            "--binarize {}: the test images keep grey levels (such as {x}); a deep model's units are binary",
            a.data.binarize.name()
        );
    }
    let train_x = load(&a.data, Split::Train)?;
    let n_train = a.train_rows.min(train_x.rows);
    let train_rows = &train_x.images[..n_train * model.n_vis()];
    let t = std::time::Instant::now();
    let config =
        AisConfig { runs: a.ais.ais_runs, schedule: BetaSchedule::Piecewise(a.ais.betas), seed: a.seed, first_run: 0 };
    // How far the reverse check puts log Z above the estimate used (the DBM's, the DBN's top RBM's).
    let mut reverse_gap = 0.0f64;
    let (log_z, se, bound_test, bound_train, what) = match model.kind {
        Kind::Dbm => {
            let (log_z, se) = if a.exact {
                (ais::log_z_exact_f64(&model).context("--exact")?, 0.0)
            } else {
                let r = ais::log_z_report(&model, &train_x.images, &config, a.ais.reverse_gibbs)?;
                a.ais.report_lines(&r).iter().for_each(|l| println!("{l}"));
                reverse_gap = r.interval.map_or(0.0, |(_, hi)| (hi - r.log_z).max(0.0));
                (r.log_z, r.std_err)
            };
            let mean = |x: &[f32]| -> anyhow::Result<f64> {
                let b = ais::dbm_bound(&model, x, a.mean_field, log_z)?;
                Ok(b.iter().sum::<f64>() / b.len() as f64)
            };
            (log_z, se, mean(&test.images)?, mean(train_rows)?, format!("mean-field bound, {} sweeps", a.mean_field))
        }
        Kind::Dbn => {
            let [_, top] = model.layers.as_slice() else {
                bail!("the DBN bound is implemented for two hidden layers; this DBN has {}", model.layers.len());
            };
            let exec = executor(a.backend)?;
            let (log_z, se) = if a.exact {
                (exec.log_z_exact(top).context("--exact")?, 0.0)
            } else {
                // The top RBM's base rates come from the recognition model's draws of h1.
                let h1 = ais::recognition_draws(&model, &train_x.images, a.seed)?;
                a.ais.check(top)?;
                let (r, lines) = a.ais.log_z(&exec, top, &h1, a.seed)?;
                lines.iter().for_each(|l| println!("top RBM {l}"));
                reverse_gap = r.interval.map_or(0.0, |(_, hi)| (hi - r.log_z).max(0.0));
                (r.log_z, r.std_err)
            };
            let mean = |x: &[f32]| -> anyhow::Result<f64> {
                let b = ais::dbn_bound(&model, x, a.draws, a.seed, log_z)?;
                Ok(b.iter().sum::<f64>() / b.len() as f64)
            };
            (
                log_z,
                se,
                mean(&test.images)?,
                mean(train_rows)?,
                format!("variational bound, {} draws of q(h1 | v)", a.draws),
            )
        }
    };
    let sizes: Vec<String> = model.sizes().iter().map(|s| s.to_string()).collect();
    println!("model: {} {}", model.kind.name(), sizes.join("-"));
    if a.exact {
        println!("log Z: {log_z:.4} (exact) ({:.1}s)", t.elapsed().as_secs_f64());
    } else {
        println!(
            "log Z: {log_z:.4} +- {se:.4} (AIS; an underestimate in expectation) ({:.1}s)",
            t.elapsed().as_secs_f64()
        );
    }
    println!("test log-likelihood: >= {bound_test:.4} nats per image ({} images; {what})", test.rows);
    if reverse_gap > 0.0 {
        println!(
            "test log-likelihood: >= {:.4} with log Z at the reverse check's end (an upper bound on log Z once its chains mixed)",
            bound_test - reverse_gap
        );
    }
    println!("train log-likelihood: >= {bound_train:.4} nats per image (first {n_train} rows; {what})");
    if !a.exact {
        println!("note: AIS underestimates log Z in expectation, so these bounds can overstate by the AIS error");
    }
    if let Some(path) = &a.json {
        let report = serde_json::json!({
            "kind": model.kind.name(), "sizes": model.sizes(), "log_z": log_z, "log_z_std_err": se, "exact": a.exact,
            "test_log_likelihood_bound": bound_test, "train_log_likelihood_bound": bound_train,
            "test_images": test.rows, "train_rows": n_train, "bound": what,
            "test_log_likelihood_bound_at_reverse_log_z": (reverse_gap > 0.0).then_some(bound_test - reverse_gap),
        });
        crate::io::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn run_sample(a: &SampleArgs) -> anyhow::Result<()> {
    let ckpt = checkpoint_of(&a.run_dir)?;
    let out = a.out.clone().unwrap_or_else(|| a.run_dir.join("samples.png"));
    crate::cli::outputs::Paths::new().output("--out", &out, &["png", "npy"])?;
    // As the --out check reads it: x.NPY is an .npy file.
    let npy = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let (model, _) = checkpoint::load(&ckpt)?;
    if a.chains == 0 {
        bail!("--chains must be at least 1");
    }
    let shape = image_shape(model.n_vis());
    let cols = (a.chains as f64).sqrt().ceil() as usize;
    let title = format!("{} Gibbs chains after {} steps: E[v | layer above]", a.chains, a.steps);
    let grid = ImageGrid::new(title, shape).cols(cols);
    if !npy {
        grid.size(a.chains).with_context(|| format!("--chains {}: the --out grid", a.chains))?;
    }
    let units: u64 = model.sizes().iter().map(|&s| s as u64).sum();
    crate::plan::Plan::new()
        .add(format!("--chains {}", a.chains), "the chains' units", &[a.chains as u64, units], 4, 6)
        .check()?;
    let exec = executor(a.backend)?;
    let (means, _) = sample::samples(&exec, &model, 0, a.chains, a.steps, a.seed)?;
    if npy {
        crate::io::npy::write_f32(&out, &means, &[a.chains, model.n_vis()])?;
    } else {
        grid.png(&out, &means)?;
    }
    println!(
        "wrote {} ({} chains, {} Gibbs steps, {}; pixels are E[v | layer above])",
        out.display(),
        a.chains,
        a.steps,
        exec.describe()
    );
    Ok(())
}
