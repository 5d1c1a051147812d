//! A training run in a directory: checkpoints every M steps (atomic), metrics.csv, energy
//! heatmaps of 2-D models with replay-buffer samples (replay-buffer image grids for networks on
//! images), a divergence guard that rolls back to the
//! last checkpoint with half the learning rate, and resumption that continues bit for bit.
//!
//! Files: `checkpoint.safetensors` ([`super::checkpoint`]), `metrics.csv` (one row per step),
//! `train.log` (rollbacks and other events), `figures/energy_STEP.png` or `figures/replay_STEP.png`.

use super::{StepMetrics, TrainConfig, TrainState, Trainer, checkpoint};
use crate::nn::Shape;
use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const METRICS: &str = "metrics.csv";
pub const LOG: &str = "train.log";
const METRICS_HEADER: &str =
    "step,loss,e_pos,e_neg,energy_gap,grad_norm,log_z,reset_fraction,neg_radius,cross_entropy,lr,wall_seconds";

/// The metrics.csv header of a run: with a side network, its loss (`generator_loss`,
/// `encoder_loss`) follows cross_entropy (runs without one keep the header they always had, so
/// they resume).
pub fn metrics_header(config: &TrainConfig) -> String {
    match config.side_name() {
        Some(name) => METRICS_HEADER.replace("cross_entropy,", &format!("cross_entropy,{name}_loss,")),
        None => METRICS_HEADER.to_string(),
    }
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub dir: PathBuf,
    /// Train until this many steps are done.
    pub total_steps: u32,
    pub checkpoint_every: u32,
    /// Heatmap every this many steps (at checkpoints; 0: only at the end), 2-D models only.
    pub figure_every: u32,
    /// Steps per call into the executor (metrics and progress are reported between calls).
    pub chunk: u32,
    /// The guard rolls back when |E(x-) - E(x+)| exceeds this, or anything is non-finite.
    pub max_energy_gap: f32,
    pub max_rollbacks: u32,
}

/// What the run reports as it goes.
pub enum Event<'a> {
    /// The executor is built and the run starts at `step`.
    Started {
        executor: &'a str,
        step: u32,
    },
    Steps(&'a [StepMetrics]),
    /// The checkpoint was saved at `step`.
    Checkpoint {
        step: u32,
    },
    Figure(&'a Path),
    /// The guard found `reason` and went back to the checkpoint at step `to`, with the learning
    /// rate scaled by `lr_scale`.
    Rollback {
        to: u32,
        lr_scale: f32,
        reason: &'a str,
    },
}

pub type MakeTrainer<'a> = dyn Fn(&TrainConfig, TrainState) -> Result<Box<dyn Trainer>> + 'a;

/// Why a chunk of steps is not trusted, if it is not.
fn divergence(metrics: &[StepMetrics], max_gap: f32) -> Option<String> {
    for m in metrics {
        if !m.is_finite() {
            return Some(format!("non-finite loss, energies or gradient at step {}", m.step));
        }
        if m.gap().abs() > max_gap {
            return Some(format!("energy gap {:.3e} beyond {max_gap:.3e} at step {}", m.gap(), m.step));
        }
    }
    None
}

/// Keeps the rows of steps <= `step` ([`crate::io::keep_rows_through`]); returns the wall time
/// of the last kept row.
fn truncate_metrics(path: &Path, config: &TrainConfig, step: u32) -> Result<f64> {
    let kept = crate::io::keep_rows_through(path, &metrics_header(config), step)?;
    Ok(kept.last().and_then(|l| l.rsplit(',').next()).and_then(|w| w.parse::<f64>().ok()).unwrap_or(0.0))
}

fn append(path: &Path, text: &str) -> Result<()> {
    // A run dir's file: never through a link out of the directory (see plan::open_regular).
    let mut f = crate::plan::open_regular(
        path,
        std::fs::OpenOptions::new().create(true).append(true),
        crate::plan::Links::Refuse,
    )?;
    f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

/// The figure of `step` in run dir `dir`, if the model has one: the energy heatmap of a 2-D
/// model (`energy_STEP.png`), the replay buffer of a network on images (`replay_STEP.png`) or
/// its generator's samples (`generator_STEP.png`), or
/// for image networks trained without one (NCE, score matching) its fresh chains
/// (`samples_STEP.png`). None for a contrastive model, whose outputs are features, not an energy.
pub fn figure_path(dir: &Path, step: u32, state: &TrainState, config: &TrainConfig) -> Option<PathBuf> {
    if config.loss.uses_views() {
        return None;
    }
    let name = match state.net.input {
        Shape::Flat(2) => "energy",
        Shape::Image { .. } if config.generator.is_some() => "generator",
        Shape::Image { .. } if !state.replay.is_empty() => "replay",
        Shape::Image { .. } => "samples",
        _ => return None,
    };
    Some(dir.join("figures").join(format!("{name}_{step:06}.png")))
}

/// Writes the figures of `step` ([`figure_path`] first) and returns their paths: for a 2-D
/// model the energy heatmap over the config's box with up to 2000 replay samples (or generator
/// samples) on top; for an image-shaped network the first 64 replay-buffer entries (or generator
/// samples) as images (RGB in colour, else channels stacked, the box's range black to white;
/// when it has either) and `samples_STEP.png`, 64 fresh chains after
/// [`FRESH_CHAIN_STEPS`] steps of the training sampler from uniform noise ([`fresh_samples`]).
pub fn write_figures(dir: &Path, step: u32, state: &TrainState, config: &TrainConfig) -> Result<Vec<PathBuf>> {
    let Some(path) = figure_path(dir, step, state, config) else { return Ok(Vec::new()) };
    let figures = dir.join("figures");
    std::fs::create_dir_all(&figures).map_err(|e| Error::io(&figures, e))?;
    match state.net.input {
        Shape::Image { c, h, w } => {
            let grid = |path: &Path, rows: &[f32], title: String| {
                let d = config.dim();
                let unit: Vec<f32> = rows[..rows.len().min(64 * d)]
                    .chunks_exact(d)
                    .flat_map(|row| {
                        row.iter()
                            .enumerate()
                            .map(|(i, v)| (v - config.box_lo[i]) / (config.box_hi[i] - config.box_lo[i]))
                    })
                    .collect();
                crate::io::figure::ImageGrid::new(title, (c, h, w)).png(path, &unit)
            };
            let samples = figures.join(format!("samples_{step:06}.png"));
            let mut written = Vec::new();
            if samples != path {
                let (rows, what) = shown(state, config, 64);
                grid(&path, &rows, format!("{what} at step {step}"))?;
                written.push(path);
            }
            let title = format!("fresh chains at step {step} ({FRESH_CHAIN_STEPS} steps from noise)");
            grid(&samples, &fresh_samples(state, config, 64, FRESH_CHAIN_STEPS)?, title)?;
            written.push(samples);
            Ok(written)
        }
        _ => {
            let grid =
                super::eval::grid([config.box_lo[0], config.box_lo[1]], [config.box_hi[0], config.box_hi[1]], 200);
            let energies = super::eval::energies(&state.energy(), &grid.points());
            let (rows, what) = shown(state, config, 2000);
            crate::io::figure::Heatmap::new(format!("model density at step {step}"), grid, &energies)
                .samples(&rows, what)
                .png(&path)?;
            Ok(vec![path])
        }
    }
}

/// Up to `n` of the run's own negatives a figure shows, and what they are: the replay buffer's
/// first entries, or the generator's samples.
fn shown(state: &TrainState, config: &TrainConfig, n: usize) -> (Vec<f32>, String) {
    match state.side.as_ref().filter(|_| config.generator.is_some()) {
        Some(g) => (super::generator::samples(&g.net, config, config.seed, 0, n), format!("{n} generator samples")),
        None => {
            let rows = &state.replay[..state.replay.len().min(n * config.dim())];
            (rows.to_vec(), format!("{} replay-buffer samples", rows.len() / config.dim()))
        }
    }
}

/// Steps of the fresh chains drawn in `samples_STEP.png`.
pub const FRESH_CHAIN_STEPS: u32 = 256;

/// Mixed into the config's seed for the figures' chains (apart from every training draw).
const CHAIN_SEED: u64 = 0xF4E5_C4A1_0000_0001;

/// `chains` chains of the model from uniform noise in the box after `steps` steps of the
/// training sampler (ULA with its step, noise, gradient clamp and box), on the CPU executor;
/// seeded by the config's seed, so a step's figure is reproducible.
pub fn fresh_samples(state: &TrainState, config: &TrainConfig, chains: usize, steps: u32) -> Result<Vec<f32>> {
    let seed = config.seed ^ CHAIN_SEED;
    let d = config.dim();
    let initial: Vec<f32> = (0..chains * d)
        .map(|k| {
            let (j, i) = (k / d, k % d);
            let u = crate::rng::uniform4(seed, j as u32, 0, crate::rng::Stream::Init, i as u32 / 4)[i % 4];
            config.box_lo[i] + (config.box_hi[i] - config.box_lo[i]) * u
        })
        .collect();
    training_chains(state, config, &initial, steps)
}

/// Chains from `initial` ([chains, dim]) after `steps` steps of the training sampler (ULA with
/// its step, noise, gradient clamp and box), on the CPU executor, seeded by the config's seed.
pub fn training_chains(state: &TrainState, config: &TrainConfig, initial: &[f32], steps: u32) -> Result<Vec<f32>> {
    use crate::sampler::{ChainSampler, SamplerConfig, SamplerKind, cpu::CpuSampler};
    let lv = config.langevin;
    let seed = config.seed ^ CHAIN_SEED;
    let mut sc = SamplerConfig::new(SamplerKind::Ula, lv.step_size, seed);
    sc.noise_scale = Some(lv.noise_std());
    sc.grad_clamp = (lv.grad_clamp > 0.0).then_some(lv.grad_clamp);
    let lo = config.box_lo.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    let hi = config.box_hi.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    sc.box_clamp = Some((lo, hi));
    let mut sampler = CpuSampler::new(&state.energy(), sc, initial)?;
    sampler.run(steps)?;
    sampler.state()
}

/// The metrics.csv rows of `metrics` (steps run at learning-rate scale `lr_scale`, `wall`
/// seconds into the run).
fn metrics_rows(config: &TrainConfig, metrics: &[StepMetrics], lr_scale: f32, wall: f64) -> String {
    metrics
        .iter()
        .map(|m| {
            format!(
                "{},{},{},{},{},{},{},{},{},{},{}{},{:.3}\n",
                m.step,
                m.loss,
                m.e_pos,
                m.e_neg,
                m.gap(),
                m.grad_norm,
                m.log_z,
                m.reset_fraction,
                m.neg_radius,
                m.cross_entropy,
                if config.side_name().is_some() { format!("{},", m.side_loss) } else { String::new() },
                super::StepScalars::new(config, m.step - 1, lr_scale).lr,
                wall
            )
        })
        .collect()
}

/// Records steps run outside [`train`] (by data-parallel workers) in run dir `dir`: their
/// metrics.csv rows (`wall` seconds into the run), a train.log line saying `how` they ran, and
/// the checkpoint of `state`, the state after them.
pub fn record_steps(
    dir: &Path,
    config: &TrainConfig,
    state: &TrainState,
    metrics: &[StepMetrics],
    wall: f64,
    how: &str,
) -> Result<()> {
    let first = metrics.first().map_or(state.step, |m| m.step - 1);
    append(&dir.join(METRICS), &metrics_rows(config, metrics, state.lr_scale, wall))?;
    append(&dir.join(LOG), &format!("steps {first}..{} {how}\n", state.step))?;
    checkpoint::save(&dir.join(CHECKPOINT), state, config)
}

/// Trains from `state` to `opts.total_steps`, checkpointing, logging and guarding as described
/// in the module docs. A fresh state (step 0) is checkpointed before the first step, so the
/// guard always has something to roll back to. Returns the final state (as checkpointed).
pub fn train(
    opts: &RunOptions,
    config: &TrainConfig,
    mut state: TrainState,
    make: &MakeTrainer,
    on_event: &mut dyn FnMut(Event),
) -> Result<TrainState> {
    if opts.checkpoint_every == 0 || opts.chunk == 0 {
        return Err(Error::invalid("run options", "checkpoint interval and chunk must be at least 1 step"));
    }
    std::fs::create_dir_all(&opts.dir).map_err(|e| Error::io(&opts.dir, e))?;
    let ckpt = opts.dir.join(CHECKPOINT);
    let metrics_path = opts.dir.join(METRICS);
    let log_path = opts.dir.join(LOG);
    if state.step == 0 || !ckpt.exists() {
        checkpoint::save(&ckpt, &state, config)?;
    }
    let mut wall_offset = truncate_metrics(&metrics_path, config, state.step)?;
    let start = std::time::Instant::now();
    append(&log_path, &format!("start at step {} of {}, lr scale {}\n", state.step, opts.total_steps, state.lr_scale))?;
    let mut trainer = make(config, state.clone())?;
    on_event(Event::Started { executor: &trainer.executor(), step: state.step });
    let mut step = state.step;
    let mut rollbacks = 0;
    while step < opts.total_steps {
        let next_checkpoint = (step / opts.checkpoint_every + 1) * opts.checkpoint_every;
        let n = opts.chunk.min(opts.total_steps - step).min(next_checkpoint - step);
        let metrics = trainer.run(n)?;
        if let Some(reason) = divergence(&metrics, opts.max_energy_gap) {
            rollbacks += 1;
            if rollbacks > opts.max_rollbacks {
                append(
                    &log_path,
                    &format!("step {step}: {reason}; giving up after {} rollbacks\n", opts.max_rollbacks),
                )?;
                return Err(Error::invalid(
                    "training",
                    format!("diverged ({reason}) {} times; the last good checkpoint is {}", rollbacks, ckpt.display()),
                ));
            }
            let (good, _) = checkpoint::load(&ckpt)?;
            state = TrainState { lr_scale: state.lr_scale * 0.5, ..good };
            append(
                &log_path,
                &format!(
                    "{reason}; rolled back to the checkpoint at step {} with learning rate x{}\n",
                    state.step, state.lr_scale
                ),
            )?;
            on_event(Event::Rollback { to: state.step, lr_scale: state.lr_scale, reason: &reason });
            checkpoint::save(&ckpt, &state, config)?;
            wall_offset = truncate_metrics(&metrics_path, config, state.step)? - start.elapsed().as_secs_f64();
            step = state.step;
            trainer = make(config, state.clone())?;
            continue;
        }
        let wall = wall_offset + start.elapsed().as_secs_f64();
        let rows = metrics_rows(config, &metrics, state.lr_scale, wall);
        append(&metrics_path, &rows)?;
        on_event(Event::Steps(&metrics));
        step += n;
        if step.is_multiple_of(opts.checkpoint_every) || step == opts.total_steps {
            state = trainer.state()?;
            let figure_due = if opts.figure_every == 0 {
                step == opts.total_steps
            } else {
                step.is_multiple_of(opts.figure_every) || step == opts.total_steps
            };
            // The figure first: a checkpoint at a step promises that step's outputs exist, so a
            // kill between the two leaves a run that resumes and redoes both.
            if figure_due {
                for path in write_figures(&opts.dir, step, &state, config)? {
                    on_event(Event::Figure(&path));
                }
            }
            checkpoint::save(&ckpt, &state, config)?;
            on_event(Event::Checkpoint { step });
        }
    }
    append(&log_path, &format!("done at step {step}\n"))?;
    // Every run ends on a checkpoint, whose state is the final one.
    Ok(state)
}
