//! `ebm train` and `ebm eval`: network energies (MLPs, convolutional and multi-output networks)
//! trained with contrastive divergence (persistent replay buffer), NCE, JEM or score matching
//! (DSM, SSM) on 2-D toy data, point files or images, and the exact likelihood of 2-D models by
//! quadrature.

use crate::cli::backend::Backend;
use crate::cli::datasets;
use crate::cli::rundir::Given;
use crate::data::toy::{self, Toy};
use crate::sampler::MlpStrategy;
use crate::train::contrastive::Augment;
use crate::train::run::{self, Event, RunOptions};
use crate::train::{
    Loss, ModelSpec, Optimizer, TrainConfig, TrainState, Trainer, checkpoint, cpu::CpuTrainer, eval, gpu::GpuTrainer,
};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub mod evaluate;
pub use evaluate::EvalArgs;
mod likelihood;
mod recipe;
mod resume;
mod rows;
mod side;
use crate::energy::EnergyInternals;
use crate::nn::NetworkInternals;
pub(super) use recipe::model_deprecation;
use recipe::{DEFAULT_MODEL, IMAGE_RECIPE, TOY_RECIPE};
use resume::resume;
use rows::{append_pairs, data_max, data_min, load_data, load_labels, run_data};

/// What a run directory was started with, beside the checkpoint's training config.
const RUN_FILE: &str = "run.json";

/// How the GPU's Langevin phase evaluates the network.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum StrategyArg {
    /// Tiled for hidden layers of 128+ neurons on a hardware adapter, else per chain.
    Auto,
    /// One invocation per chain, the network inlined.
    PerChain,
    /// A workgroup per 16 chains, each weight read serving all 16.
    Tiled,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum OptimizerArg {
    Adam,
    Sgd,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A toy dataset (ring8, grid25, two_moons, swiss_roll, checkerboard, rings, pinwheel,
    /// two_spirals), a .npy/.csv file of [rows, D] points, or images scaled to [-1, 1]: mnist
    /// or fashion-mnist (found in $EBM_DATA_DIR, else the per-user data dir `ebm data download`
    /// fills, else ../shared/data), an IDX images file, an MNIST-layout folder, a folder of
    /// PNGs or of train/ and test/ sets (training split), or a .npy of [N, C, H, W] images
    /// (uint8 scaled, floats as given; see `ebm data --help`). D, or the images' C x H x W, must
    /// be the model's input. Optional with --resume.
    #[arg(long)]
    pub data: Option<String>,
    /// Network, in the text form of docs/networks.md (e.g. 2/128/silu/128/silu/1, or
    /// 1x28x28/16k5s2p4/swish/32k3s2p1/swish/flatten/64/swish/1 for images) [default:
    /// 2/128/silu/128/silu/1].
    #[arg(long)]
    pub model: Option<String>,
    /// cd (E+ - E- plus alpha-regulariser), softplus, hinge[:margin], nce (learned log Z
    /// against Gaussian noise; no Langevin), jem (a classifier with head:lse trained by
    /// cross-entropy on labelled images plus cd on E = -logsumexp f; defaults as for images
    /// with 20 Langevin steps), or score matching, which needs no sampling: dsm[:SIGMA]
    /// (denoising, one noise level, default 0.1), dsm:MAX,MIN,L (L geometric levels from MAX
    /// down to MIN, one drawn per point, loss weighted by sigma^2), ncsm:MAX,MIN,L (the same
    /// with the noise-conditional energy E/sigma, sampled by annealing), ssm[:gaussian|rademacher]
    /// (sliced, one random projection per point), or infonce[:T] (contrastive: the network's K
    /// outputs are features, the pair energy -cos(f(a), f(b))/T of two --augment views of
    /// each point, the batch's other points the negatives; T 0.1; CPU executor).
    #[arg(long, default_value = "cd")]
    pub loss: String,
    /// --loss infonce: how the two views of a point are drawn: shift:S (images moved by up to S
    /// pixels along each axis), rotate:DEG (turned by up to DEG degrees either way), zoom:Z
    /// (magnified by 1 - Z to 1 + Z) and noise:N (Gaussian noise of std N added),
    /// comma-separated [default: shift:3,rotate:25,zoom:0.25,noise:0.2 for images, noise:0.1
    /// for points; none with --pairs].
    #[arg(long)]
    pub augment: Option<String>,
    /// --loss infonce on given pairs: a file of second views (read as --data is, the same rows
    /// and shape, --subset and --train-size alike), row i of it paired with row i of --data, in
    /// place of two --augment views of one point (which, if given, then alter both).
    #[arg(long, value_name = "FILE")]
    pub pairs: Option<String>,
    /// Train until this many steps are done (a resumed run continues to it) [default: 3000;
    /// images: one epoch].
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u32>,
    /// Train for this many passes over the data: --steps = epochs x ceil(rows / batch).
    #[arg(long)]
    pub epochs: Option<u32>,
    /// Data points (and as many negatives) per step [default: 256; images: 128].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Train on the first N rows of a data file or image set only.
    #[arg(long)]
    pub subset: Option<usize>,
    /// Where the run's files go (optional with `--resume DIR`).
    #[arg(long, required_unless_present = "resume")]
    pub run_dir: Option<PathBuf>,
    /// Learning rate (Adam or SGD) [default: 5e-3; images: 1e-4].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub lr: Option<f32>,
    /// Decay the learning rate linearly to this fraction of --lr over --steps (1: constant)
    /// [default: 0.05; images: 1].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub lr_decay_to: Option<f32>,
    /// Multiply the learning rate by this after every epoch [default: 1; images: 0.97].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub lr_gamma: Option<f32>,
    /// adam, or sgd with momentum --beta1.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerArg,
    /// Adam's beta1, or SGD's momentum [default: 0.9; images: 0].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub beta1: Option<f32>,
    /// Adam's beta2.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.999)]
    pub beta2: f32,
    /// L2 weight decay added to the gradient (not to log Z).
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Global-norm gradient clipping (0: off) [default: 10; images: 0.1].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub clip_norm: Option<f32>,
    /// Energy regulariser weight: alpha * mean(E(x+)^2 + E(x-)^2) [default: 0.01; images: 0.1].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub alpha: Option<f32>,
    /// Langevin steps per training step for the negatives [default: 20; images: 60, with
    /// --loss jem 20].
    #[arg(long)]
    pub langevin_steps: Option<u32>,
    /// Langevin step size h: x <- x - h grad E(x) + noise [default: 0.01; images: 10].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub step_size: Option<f32>,
    /// Langevin noise as a multiple of sqrt(2 * step size) [default: 1].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, conflicts_with = "noise_std")]
    pub noise_scale: Option<f32>,
    /// Langevin noise standard deviation, instead of --noise-scale [images default: 0.005].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub noise_std: Option<f32>,
    /// Clamp each Langevin gradient coordinate to [-C, C] (0: off) [default: 0; images: 0.03].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub grad_clamp: Option<f32>,
    /// Cooperative learning (cd, softplus, hinge, jem): a generator network from a latent width
    /// to the data's (text form, e.g. 8/64/swish/64/swish/2) proposes each step's negatives in
    /// place of the replay buffer, Langevin refines them and the generator regresses onto the
    /// result; `ebm sample --init generator` samples it.
    #[arg(long, value_name = "SPEC")]
    pub generator: Option<String>,
    /// The generator's learning rate, on --lr's schedule [default: --lr].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub generator_lr: Option<f32>,
    /// A latent-variable EBM (cd, softplus, hinge; CPU executor): the energy takes the data's D
    /// values then L latent ones, so --model's input is D + L [default model:
    /// (D+L)/128/silu/128/silu/1], and an encoder infers z from x (docs/latent.md).
    #[arg(long, value_name = "L")]
    pub latent: Option<usize>,
    /// --latent: the encoder q(z|x), text form from the data's width to 2L outputs (each
    /// latent's mean and log-variance) [default: D/64/swish/64/swish/2L].
    #[arg(long, value_name = "SPEC")]
    pub encoder: Option<String>,
    /// --latent: the encoder's learning rate, on --lr's schedule [default: --lr].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub encoder_lr: Option<f32>,
    /// Replay buffer capacity (persistent negatives; a --generator run keeps none).
    #[arg(long, default_value_t = 8192)]
    pub buffer_size: usize,
    /// Probability that a negative restarts from uniform noise in the data's box.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 0.05)]
    pub reset_prob: f32,
    /// Points generated for a toy dataset.
    #[arg(long, default_value_t = 50_000)]
    pub train_size: usize,
    /// Seeds the network, the data, the replay buffer and every step's random numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Executor: auto (a hardware GPU if one opens, else the CPU executor), gpu (any adapter,
    /// a software one included) or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// GPU only, MLP-shaped networks: how the Langevin phase evaluates the network (other
    /// networks run through the layer kernels).
    #[arg(long, value_enum, default_value = "auto")]
    pub mlp_strategy: StrategyArg,
    /// Write checkpoint.safetensors (atomically) every this many steps.
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u32,
    /// Figure every this many steps (at checkpoints): the energy heatmap with replay samples
    /// of a 2-D model; for a network on images, grids of replay-buffer images and of 64 fresh
    /// chains (256 Langevin steps from noise).
    #[arg(long, default_value_t = 1000)]
    pub figure_every: u32,
    /// Roll back to the last checkpoint (halving the learning rate) when |E(x-) - E(x+)|
    /// exceeds this or anything becomes NaN/Inf.
    #[arg(long, value_parser = crate::cli::numbers::finite_f32, default_value_t = 1e4)]
    pub max_energy_gap: f32,
    /// Continue a run from its checkpoint, bit-identical to not stopping: `--resume DIR`, or
    /// `--resume` with --run-dir DIR.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    /// Start afresh in a run dir that already holds a run, deleting it.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Write the run (run.json, the step-0 checkpoint with the learning-rate schedule of
    /// --steps) without training it: for workers that train it elsewhere (data-parallel on Ray).
    #[arg(long, conflicts_with = "resume")]
    pub setup_only: bool,
    /// With --resume: continue with the --lr given instead of the run's (the run then no longer
    /// matches one that was never stopped).
    #[arg(long, requires = "resume")]
    pub change_lr: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunInfo {
    data: String,
    model: ModelSpec,
    train_size: usize,
    data_seed: u64,
    steps: u32,
    /// [`crate::cli::rundir::data_hash`] of the training points; absent in runs of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_hash: Option<String>,
    /// [`crate::cli::rundir::data_file`] of `data` when it names a file; absent for toy datasets and
    /// in runs of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_file: Option<PathBuf>,
    /// `--subset`: the first rows of the data that were trained on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subset: Option<usize>,
    /// `--loss` and `--optimizer`, so resume can tell a checkpoint of another run; absent in
    /// runs of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    loss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    optimizer: Option<String>,
    /// `--pairs`: InfoNCE's second views; `data_hash` covers them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pairs: Option<String>,
}

/// An optimizer's --optimizer name.
fn optimizer_name(o: &Optimizer) -> &'static str {
    match o {
        Optimizer::Adam { .. } => "adam",
        Optimizer::Sgd { .. } => "sgd",
    }
}

/// Seed of the held-out points of a toy dataset trained with data seed `s`.
fn held_out_seed(s: u64) -> u64 {
    s ^ 0x5EED_0F4E_1D00_0075
}

fn read_run(dir: &Path) -> anyhow::Result<RunInfo> {
    let path = dir.join(RUN_FILE);
    crate::cli::rundir::read_run_json(&path)?
        .with_context(|| format!("{} holds no training run (no {})", dir.display(), path.display()))
}

/// A run dir that holds any of these files holds a run.
const RUN_FILES: &[&str] = &[RUN_FILE, run::CHECKPOINT, run::METRICS, run::LOG, "eval.json"];

impl TrainArgs {
    fn resuming(&self) -> bool {
        self.resume.is_some()
    }

    /// The run directory: --run-dir, or the DIR of `--resume DIR` (they must agree if both).
    fn dir(&self) -> anyhow::Result<PathBuf> {
        crate::cli::rundir::run_dir(self.run_dir.as_deref(), self.resume.as_deref())
    }
}

pub fn run_train(a: &TrainArgs, given: &Given) -> anyhow::Result<()> {
    if let Some(warning) = model_deprecation(a.model.as_deref()) {
        eprintln!("{warning}");
    }
    if a.checkpoint_every == 0 {
        bail!("--checkpoint-every 0: a run checkpoints at least every step; give 1 or more");
    }
    if a.optimizer == OptimizerArg::Sgd && given.has("--beta2") {
        bail!("--beta2 is Adam's second-moment decay; --optimizer sgd has none (its momentum is --beta1)");
    }
    // NaN would compare false and switch the divergence guard off without a word.
    if !(a.max_energy_gap > 0.0) {
        bail!(
            "invalid --max-energy-gap {}: must be positive (the |E(x-) - E(x+)| that triggers a rollback)",
            a.max_energy_gap
        );
    }
    let run_dir = a.dir()?;
    let mut paths = crate::cli::outputs::Paths::new();
    if let Some(d) = &a.data {
        paths.input("--data", Path::new(d));
    }
    paths.locked_run_dir("--run-dir", &run_dir, RUN_FILES)?;
    crate::cli::rundir::refuse_other_kind(&run_dir, &["filters.png"], "ebm rbm train")?;
    let figures = run_dir.join("figures");
    if figures.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        bail!("{}: not a folder, but the run writes its figures there; move it away", figures.display());
    }
    crate::cli::rundir::with_lock(&run_dir, || train_locked(a, given, &run_dir))
}

/// `ebm train` with the run dir's lock held.
fn train_locked(a: &TrainArgs, given: &Given, run_dir: &Path) -> anyhow::Result<()> {
    let holds_run = RUN_FILES.iter().any(|f| run_dir.join(f).exists());
    let never_started =
        holds_run && crate::cli::rundir::never_started(run_dir, run::CHECKPOINT, run::METRICS, &["eval.json"]);
    if never_started && a.resuming() {
        bail!(
            "--resume: {} holds a start that never reached its first checkpoint (it failed or was killed); \
             start it again without --resume",
            run_dir.display()
        );
    }
    if never_started {
        eprintln!("note: {} holds a start that never reached its first checkpoint: starting afresh", run_dir.display());
    } else if holds_run && !a.resuming() && !a.force {
        bail!("{} already holds a run: continue it with --resume, or replace it with --force", run_dir.display());
    }
    if a.resuming() && !holds_run {
        bail!("--resume: {} holds no run to continue", run_dir.display());
    }
    let result = train_checked(a, given, run_dir, holds_run && (a.force || never_started));
    // A fresh start that failed before its first checkpoint takes its files with it.
    if result.is_err() && !a.resuming() && !run_dir.join(run::CHECKPOINT).exists() {
        crate::cli::rundir::remove_failed_start(run_dir, RUN_FILES);
    }
    result
}

/// `ebm train` once the run dir's state is known: `replace` removes the run there first.
fn train_checked(a: &TrainArgs, given: &Given, run_dir: &Path, replace: bool) -> anyhow::Result<()> {
    let (info, config, state, data, labels) = if a.resuming() {
        match resume(a, given, run_dir)? {
            Some(r) => r,
            None => return Ok(()),
        }
    } else {
        fresh(a)?
    };
    if replace {
        for f in RUN_FILES {
            let _ = std::fs::remove_file(run_dir.join(f));
        }
        let _ = std::fs::remove_dir_all(run_dir.join("figures"));
    }
    work(&info, &config, state.step)?;
    // Only now, with the resume checked and the data loaded and verified.
    crate::io::write_atomic(&run_dir.join(RUN_FILE), serde_json::to_string_pretty(&info)?.as_bytes())?;
    let target = info.steps;
    let ctx = crate::cli::backend::open(a.backend)?;
    let strategy = match a.mlp_strategy {
        StrategyArg::Auto => MlpStrategy::Auto,
        StrategyArg::PerChain => MlpStrategy::PerChain,
        StrategyArg::Tiled => MlpStrategy::Tiled,
    };
    let make = |c: &TrainConfig, s: TrainState| -> crate::Result<Box<dyn Trainer>> {
        Ok(match &ctx {
            Some(ctx) if c.loss == Loss::Jem => Box::new(GpuTrainer::with_labels(ctx.clone(), c, s, &data, &labels)?),
            Some(ctx) => Box::new(GpuTrainer::with_strategy(ctx.clone(), c, s, &data, strategy)?),
            None => Box::new(CpuTrainer::with_labels(c, s, &data, &labels)?),
        })
    };
    let mut bar = crate::cli::progress::Progress::new(
        "training",
        "steps",
        target as u64,
        "[{bar:30}] {pos}/{len} steps {per_sec} {elapsed}/{eta} {msg}",
    );
    let opts = RunOptions {
        dir: run_dir.to_path_buf(),
        total_steps: if a.setup_only { state.step } else { target },
        checkpoint_every: a.checkpoint_every,
        figure_every: a.figure_every,
        chunk: 16,
        max_energy_gap: a.max_energy_gap,
        max_rollbacks: 5,
    };
    let first = state.step;
    bar.start_at(first as u64);
    let start = std::time::Instant::now();
    let mut figures = Vec::new();
    let mut executor = String::new();
    let mut saved = first;
    let model = &info.model;
    let points = match &info.pairs {
        Some(pairs) => format!("{} pairs with {pairs}", data.len() / config.data_dim() / 2),
        None => format!("{} points", data.len() / config.data_dim()),
    };
    let images = matches!(model.arch.input, crate::nn::Shape::Image { .. });
    let result = run::train(&opts, &config, state, &make, &mut |e| match e {
        Event::Started { executor: name, step } => {
            executor = name.to_string();
            // suspend + eprintln, not println: indicatif drops println when stderr is no terminal.
            bar.suspend(|| {
                eprintln!(
                    "training {model} on {} ({points}) with {} loss, batch {}, steps {step}..{} on {name}",
                    info.data, config.loss, config.batch, target
                )
            });
        }
        Event::Steps(m) => {
            if let Some(last) = m.last() {
                let mut message = match config.loss.is_score_matching() {
                    // No negatives, so no gap: the mean energy of the data instead.
                    true => format!("loss {:.4} E {:.3} |g| {:.3}", last.loss, last.e_pos, last.grad_norm),
                    false => format!("loss {:.4} gap {:.3} |g| {:.3}", last.loss, last.gap(), last.grad_norm),
                };
                if images {
                    let per_epoch = config.steps_per_epoch.max(1);
                    let rate =
                        (last.step - first) as f64 * config.batch as f64 / start.elapsed().as_secs_f64().max(1e-9);
                    message = format!(
                        "epoch {}/{} {message} {rate:.0} img/s",
                        last.step.div_ceil(per_epoch),
                        target.div_ceil(per_epoch)
                    );
                }
                if saved > first {
                    message = format!("{message} (saved at step {saved})");
                }
                bar.set_message(message);
                bar.set_position(last.step as u64);
            }
        }
        Event::Rollback { to, lr_scale, reason } => bar.suspend(|| {
            eprintln!(
                "divergence guard: {reason}; rolled back to the checkpoint at step {to} with learning rate x{lr_scale}"
            )
        }),
        Event::Figure(p) => figures.push(p.to_path_buf()),
        Event::Checkpoint { step } => saved = step,
    });
    bar.finish_and_clear();
    let state = result?;
    let seconds = start.elapsed().as_secs_f64();
    let done = state.step - first;
    eprintln!("{done} steps in {seconds:.1} s: {:.1} steps/s on {executor}", done as f64 / seconds.max(1e-9));
    eprintln!("wrote {} and {}", run_dir.join(run::CHECKPOINT).display(), run_dir.join(run::METRICS).display());
    if let Some(last) = figures.last() {
        eprintln!("figure: {}", last.display());
    }
    Ok(())
}

/// Refuses training whose stated work is absurd (see `crate::plan::Work`): each step from
/// `from` to the run's target evaluates the network (forward and backward, about 3 operations
/// per parameter) on the batch's positives and, with a replay loss, on its negatives at every
/// Langevin step.
fn work(info: &RunInfo, config: &TrainConfig, from: u32) -> anyhow::Result<()> {
    let params = info.model.param_count();
    let langevin = if config.loss.samples_negatives() { config.langevin.steps as u64 } else { 0 };
    let flags = format!("--steps {} x --batch {} x (--langevin-steps {langevin} + 2)", info.steps, config.batch);
    let what = format!("training a network of {params} parameters");
    let steps = info.steps.saturating_sub(from) as u64;
    crate::plan::Work::new().add(flags, what, &[steps, config.batch as u64, langevin + 2, params, 3]).check()?;
    Ok(())
}

/// The run, its training configuration, its state, its training points and (JEM) their labels.
type Run = (RunInfo, TrainConfig, TrainState, Vec<f32>, Vec<u32>);

fn fresh(a: &TrainArgs) -> anyhow::Result<Run> {
    let data_spec = a.data.clone().context("--data is required (a toy dataset name, a .npy/.csv file or images)")?;
    let latent_model = a.latent.filter(|_| a.model.is_none()).map(|l| format!("{}/128/silu/128/silu/1", 2 + l));
    let model = ModelSpec::parse(a.model.as_deref().or(latent_model.as_deref()).unwrap_or(DEFAULT_MODEL))?;
    let images = matches!(model.arch.input, crate::nn::Shape::Image { .. });
    let r = if images { &IMAGE_RECIPE } else { &TOY_RECIPE };
    let batch = a.batch.unwrap_or(r.batch);
    let loss = Loss::parse(&a.loss)?;
    let mut plan = crate::plan::Plan::new();
    // The points (generated, then copied to the executor), the replay buffer and its
    // Langevin negatives, and a batch of positives, negatives and their gradients.
    let width = model.arch.input.len() as u64;
    plan.add(format!("--train-size {}", a.train_size), "the training points", &[a.train_size as u64, 2], 4, 3);
    // Only a loss that samples negatives keeps a replay buffer, and not when a generator proposes them.
    if loss.samples_negatives() && a.generator.is_none() {
        plan.add(format!("--buffer-size {}", a.buffer_size), "the replay buffer", &[a.buffer_size as u64, width], 4, 3);
    }
    let params = model.param_count();
    // Weights, gradients, Adam's two moments, the checkpoint's copy and its encoding.
    plan.add(
        format!("--model {}", a.model.as_deref().unwrap_or(DEFAULT_MODEL)),
        format!("the network's {params} parameters"),
        &[params],
        4,
        8,
    );
    plan.add(
        format!("--batch {batch}"),
        "a batch of points, negatives and their activations and gradients",
        &[batch as u64, model.values_per_point()],
        4,
        8,
    );
    if loss.uses_views() {
        // InfoNCE's B x B pair energies and their gradients.
        plan.add(format!("--batch {batch}"), "the batch's pair energies", &[batch as u64, batch as u64], 4, 2);
    }
    plan.check()?;
    let (mut data, dim, shape) = load_data(&data_spec, a.train_size, a.seed, a.subset)?;
    if let (Some([c, h, w]), Some(net)) = (shape, model.arch.input.image()) {
        // (A width that differs otherwise is the trainer's error, naming the columns.)
        crate::data::check_shape(&format!("--data {data_spec}"), Some((c, h, w)), dim, Some(net), dim)
            .map_err(|e| anyhow::anyhow!("{e} (--model sets the network's input)"))?;
    }
    let rows = data.len() / dim;
    if let Some(pairs) = &a.pairs {
        if !loss.uses_views() {
            bail!("--pairs gives InfoNCE's second views; the {loss} loss has none (use --loss infonce)");
        }
        append_pairs(&mut data, dim, pairs, &data_spec, (a.train_size, a.seed, a.subset))?;
    }
    let steps_per_epoch = rows.div_ceil(batch.max(1)) as u32;
    let steps = match (a.steps, a.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => e.checked_mul(steps_per_epoch).context("--epochs x steps per epoch passes 2^32 steps")?,
        (None, None) if images => steps_per_epoch,
        (None, None) => r.steps,
    };
    let info = RunInfo {
        data_file: crate::cli::rundir::data_file(&datasets::resolve(&data_spec)?),
        data: data_spec,
        model,
        train_size: a.train_size,
        data_seed: a.seed,
        steps,
        data_hash: Some(crate::cli::rundir::data_hash(&data)),
        subset: a.subset,
        loss: Some(loss.to_string()),
        optimizer: Some(
            match a.optimizer {
                OptimizerArg::Adam => "adam",
                OptimizerArg::Sgd => "sgd",
            }
            .to_string(),
        ),
        pairs: a.pairs.clone(),
    };
    let mut c = TrainConfig::for_data(loss, &data, dim, a.seed)?;
    if images {
        // States live where images do: [-1, 1] (or the data's range, if wider).
        for i in 0..dim {
            c.box_lo[i] = data_min(&data, dim, i).min(-1.0);
            c.box_hi[i] = data_max(&data, dim, i).max(1.0);
        }
    }
    c.alpha = a.alpha.unwrap_or(r.alpha);
    let beta1 = a.beta1.unwrap_or(r.beta1);
    c.optimizer = match a.optimizer {
        OptimizerArg::Adam => Optimizer::Adam { beta1, beta2: a.beta2, eps: 1e-8 },
        OptimizerArg::Sgd => Optimizer::Sgd { momentum: beta1 },
    };
    c.lr = a.lr.unwrap_or(r.lr);
    c.decay_steps = steps;
    c.final_lr_fraction = a.lr_decay_to.unwrap_or(r.lr_decay_to);
    c.epoch_gamma = a.lr_gamma.unwrap_or(r.lr_gamma);
    c.steps_per_epoch = steps_per_epoch;
    c.weight_decay = a.weight_decay;
    c.clip_norm = a.clip_norm.unwrap_or(r.clip_norm);
    c.batch = batch;
    c.langevin.steps = a.langevin_steps.unwrap_or(if loss == Loss::Jem { 20 } else { r.langevin_steps });
    c.langevin.step_size = a.step_size.unwrap_or(r.step_size);
    c.langevin.noise_scale = match (a.noise_scale, a.noise_std.or(r.noise_std)) {
        (Some(scale), _) => scale,
        (None, Some(std)) => std / (2.0 * c.langevin.step_size).sqrt(),
        (None, None) => 1.0,
    };
    c.langevin.grad_clamp = a.grad_clamp.unwrap_or(r.grad_clamp);
    c.buffer_capacity = a.buffer_size;
    c.reset_prob = a.reset_prob;
    c.paired = a.pairs.is_some();
    c.augment = match (a.augment.as_deref(), loss.uses_views()) {
        (Some(text), true) => Augment::parse(text)?,
        (None, true) if c.paired => Augment::default(),
        (None, true) => Augment::default_for(info.model.arch.input),
        (Some(_), false) => bail!("--augment draws the two views of --loss infonce; the {loss} loss has none"),
        (None, false) => Augment::default(),
    };
    side::configure(a, &mut c)?;
    c.validate(rows).map_err(|e| crate::cli::numbers::with_flag_names(e, crate::cli::numbers::TRAIN_FLAGS))?;
    let state = TrainState::new(info.model.build(a.seed)?, &c).with_context(|| {
        format!("--model {:?} with --data {}", a.model.as_deref().unwrap_or(DEFAULT_MODEL), info.data)
    })?;
    if loss == Loss::Jem {
        crate::train::check_jem_network(&state.net).context("--model")?;
    }
    if loss.uses_views() {
        crate::train::contrastive::check(&state.net.view(), &c)
            .map_err(|e| crate::cli::numbers::with_flag_names(e, crate::cli::numbers::TRAIN_FLAGS))
            .context("--loss infonce with --model")?;
    }
    let labels = load_labels(loss, &info.data, rows)?;
    // Checked here, before the run's first file, not when the trainer is built.
    if loss == Loss::Jem {
        crate::train::check_labels(&labels, rows, state.net.outputs)
            .with_context(|| format!("--loss jem on --data {} with --model", info.data))?;
    }
    Ok((info, c, state, data, labels))
}

/// What `ebm train --resume` lets change; every other setting given must equal the run's.
const RESUME_MAY_CHANGE: &str = "a resume may change --steps or --epochs (upwards), --backend, --mlp-strategy, \
    --checkpoint-every, --figure-every, --max-energy-gap, and --lr together with --change-lr";

/// A run dir's training configuration, checkpointed state, points and labels, as a resume
/// reads them; for workers that train the run outside `ebm train` (data-parallel on Ray).
pub fn open_run(run_dir: &Path) -> anyhow::Result<(TrainConfig, TrainState, Vec<f32>, Vec<u32>)> {
    let mut info = read_run(run_dir)?;
    let (state, config) = checkpoint::load(&run_dir.join(run::CHECKPOINT))?;
    let (data, labels) = run_data(&mut info, &config)?;
    Ok((config, state, data, labels))
}
