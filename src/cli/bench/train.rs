//! `ebm bench --suite rbm` and `--suite train`: RBM Gibbs sampling and CD epochs, and training
//! steps of MLP and convolutional energies, each row with its roofline cost
//! ([`super::roofline`]).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use super::roofline::train::{TrainRun, train_step};
use super::roofline::{self, Cost};
use super::{BenchArgs, Row, SEED, nn};
use crate::gpu::GpuContext;
use crate::sampler::MlpStrategy;
use crate::train::{Loss, ModelSpec, TrainConfig, TrainState};

/// The RBM of the rbm suite: 784 visibles, 500 hiddens.
pub(super) const RBM: (usize, usize) = (784, 500);
/// Rows per CD batch.
pub(super) const RBM_BATCH: usize = 100;

/// Chains of the Gibbs timing.
pub(super) fn rbm_chains(quick: bool) -> usize {
    if quick { 64 } else { 1024 }
}

/// RBM rows: Gibbs sampling throughput of a 784x500 RBM, and CD-1 / CD-25 epoch times.
pub(super) fn rbm_rows(
    args: &BenchArgs,
    ctx: Option<&Arc<GpuContext>>,
    want_cpu: bool,
    rows: &mut Vec<Row>,
) -> Result<()> {
    use crate::data::{self, Binarize, Split};
    use crate::rbm::cpu::{CpuGibbs, CpuTrainer};
    use crate::rbm::gpu::{GpuGibbs, GpuTrainer};
    use crate::rbm::train::{Method, TrainConfig, TrainState, Trainer, run_epoch};
    use crate::rbm::{Rbm, Visible};
    let (n_vis, n_hid) = RBM;
    let rbm = Rbm::random(n_vis, n_hid, Visible::Bernoulli, 0.01, SEED)?;
    let chains = rbm_chains(args.quick);
    let steps = args.steps.unwrap_or(if args.quick { 2 } else { 20 });
    let init: Vec<f32> = (0..chains * n_vis).map(|i| ((i * 7919) % 2) as f32).collect();
    let gibbs = roofline::rbm_gibbs(n_vis, n_hid, chains);
    let row =
        |executor: &'static str, sampler: &'static str, chains: usize, steps: u32, seconds: f64, cost: Cost| Row {
            executor,
            energy: format!("rbm{n_vis}x{n_hid}"),
            dim: n_vis,
            sampler,
            chains,
            steps,
            seconds,
            dispatches_per_step: None,
            cost: Some(cost),
            ess_per_s: None,
            frozen: 0,
        };
    if let Some(ctx) = ctx {
        let mut g = GpuGibbs::new(ctx.clone(), &rbm, &init, SEED, 0)?;
        g.run(1)?;
        let start = Instant::now();
        g.run(steps)?;
        rows.push(row("gpu", "gibbs", chains, steps, start.elapsed().as_secs_f64(), gibbs));
    }
    if want_cpu {
        let mut g = CpuGibbs::new(&rbm, &init, SEED, 0)?;
        g.run(1);
        let start = Instant::now();
        g.run(steps);
        rows.push(row("cpu", "gibbs", chains, steps, start.elapsed().as_secs_f64(), gibbs));
    }
    let Some(dir) = args.mnist.clone().or_else(|| crate::cli::datasets::locate("mnist")) else {
        let missing = crate::cli::datasets::not_found("mnist").to_string().replace('\n', "\n  ");
        println!("note: no --mnist directory, so the RBM training rows are skipped: {missing}");
        return Ok(());
    };
    let limit = if args.quick { 200 } else { args.rbm_rows as usize };
    let mut data = data::load(&dir, Split::Train)?.take(limit);
    data::binarize(&mut data, Binarize::Stochastic(SEED), 0);
    let batch = RBM_BATCH;
    for (k, name) in [(1u32, "cd1 epoch"), (25, "cd25 epoch")] {
        let config = TrainConfig::new(Method::Cd(k), batch, 0.01, 1, SEED);
        // Per training row (chain-steps/s reads as rows per second).
        let cost = roofline::rbm_cd_batch(n_vis, n_hid, batch, k) * (1.0 / batch as f64);
        let mut time = |executor: &'static str, trainer: &mut dyn Trainer| -> Result<()> {
            let report = run_epoch(trainer, &config, data.rows, 0, |_, _| {})?;
            // One timing over `limit` rows, scaled to a 60000-row epoch of 600 batches, so
            // chain-steps/s reads as training rows per second.
            rows.push(row(
                executor,
                name,
                batch,
                (60000 / batch) as u32,
                report.seconds * 60000.0 / data.rows as f64,
                cost,
            ));
            Ok(())
        };
        if let Some(ctx) = ctx {
            let state = TrainState::new(rbm.clone(), &config, &data.images)?;
            time("gpu", &mut GpuTrainer::new(ctx.clone(), &config, state, &data.images)?)?;
        }
        if want_cpu {
            let state = TrainState::new(rbm.clone(), &config, &data.images)?;
            time("cpu", &mut CpuTrainer::new(&config, state, &data.images)?)?;
        }
    }
    println!(
        "note: rbm 'cd1 epoch' / 'cd25 epoch' rows: seconds = time for {limit} MNIST rows x 60000 / {limit}, batch {batch}"
    );
    Ok(())
}

const DSM: Loss = Loss::Dsm { sigma_max: 0.1, sigma_min: 0.1, levels: 1, conditional: false };

/// The training rows' data: 50k ring8 points and 4096 28x28 noise images.
pub(super) struct TrainData {
    ring8: Vec<f32>,
    images: Vec<f32>,
}

impl TrainData {
    pub(super) fn new() -> Self {
        let ring8 = crate::data::toy::Toy::Ring8.sample(50_000, SEED);
        let images = crate::rng::initial_states(SEED, 0, 4096, 784, 1.0).iter().map(|v| v.clamp(-1.0, 1.0)).collect();
        TrainData { ring8, images }
    }
}

/// One model of the train suite with its losses.
pub(super) struct TrainCase<'a> {
    pub label: String,
    pub model: String,
    pub data: &'a [f32],
    pub batch: usize,
    pub losses: Vec<(Loss, &'static str)>,
    /// Widest hidden layer (0: the ConvEBM).
    pub width: usize,
}

/// MLPs on ring8 (batch 256; CD with 20 Langevin steps, NCE, and DSM with sigma 0.1), and the
/// UvA ConvEBM on 28x28 noise images (batch 64, CD with 20 Langevin steps and DSM).
pub(super) fn train_cases(quick: bool, data: &TrainData) -> Vec<TrainCase<'_>> {
    let mut cases = Vec::new();
    let widths: &[usize] = if quick { &[32] } else { &[64, 128] };
    for &width in widths {
        cases.push(TrainCase {
            label: format!("mlp2-{width}-{width}-1"),
            model: format!("2/{width}/silu/{width}/silu/1"),
            data: &data.ring8,
            batch: 256,
            losses: vec![(Loss::Cd, "train cd k=20"), (Loss::Nce, "train nce"), (DSM, "train dsm")],
            width,
        });
    }
    cases.push(TrainCase {
        label: "uva-convebm".into(),
        model: nn::UVA_SPEC.into(),
        data: &data.images,
        batch: 64,
        losses: vec![(Loss::Cd, "train cd k=20"), (DSM, "train dsm")],
        width: 0,
    });
    cases
}

/// The GPU trainers a row runs: both MLP strategies of the Langevin phase where the tiled one
/// applies, the layer kernels for the ConvEBM and score matching, else per chain.
pub(super) fn strategies(width: usize, loss: Loss) -> &'static [MlpStrategy] {
    use crate::sampler::config::TILED_MIN_WIDTH;
    if width >= TILED_MIN_WIDTH && loss.samples_negatives() {
        &[MlpStrategy::PerChain, MlpStrategy::Tiled]
    } else if width == 0 || loss.is_score_matching() {
        &[MlpStrategy::Auto]
    } else {
        &[MlpStrategy::PerChain]
    }
}

/// A case's configuration and initial state for one loss.
pub(super) fn build(case: &TrainCase, loss: Loss) -> Result<(TrainConfig, TrainState)> {
    let spec = ModelSpec::parse(&case.model)?;
    let mut config = TrainConfig::for_data(loss, case.data, spec.arch.input.len(), SEED)?;
    config.batch = case.batch;
    let state = TrainState::new(spec.build(SEED)?, &config)?;
    Ok((config, state))
}

/// The roofline cost of one training step of `state`'s network under `config`.
pub(super) fn step_cost(config: &TrainConfig, state: &TrainState, tiled: bool) -> Cost {
    train_step(&TrainRun {
        net: &state.net,
        batch: config.batch,
        langevin_steps: config.langevin.steps,
        loss: config.loss,
        tiled,
    })
}

/// Training rows: steps of `ebm train` after two untimed warm-up steps (the layer-kernel trainer
/// on the GPU for the ConvEBM and DSM). chains = batch, so chain-steps/s reads as training
/// points per second; the training steps per second are printed below the table.
pub(super) fn train_rows(
    args: &BenchArgs,
    ctx: Option<&Arc<GpuContext>>,
    want_cpu: bool,
    rows: &mut Vec<Row>,
) -> Result<()> {
    use crate::train::{Trainer, cpu::CpuTrainer, gpu::GpuTrainer};
    let data = TrainData::new();
    for case in train_cases(args.quick, &data) {
        let conv = case.width == 0;
        for &(loss, name) in &case.losses {
            let (config, state) = build(&case, loss)?;
            let dim = config.dim();
            let mut time = |executor: &'static str,
                            trainer: &mut dyn Trainer,
                            dispatches: Option<f64>,
                            cost: Cost|
             -> Result<()> {
                let gpu = executor.starts_with("gpu");
                let steps = args.steps.unwrap_or(match (args.quick, gpu, loss.samples_negatives(), conv) {
                    (true, _, _, _) => 4,
                    (false, _, _, true) => {
                        if gpu {
                            4
                        } else {
                            16
                        }
                    }
                    (false, true, true, false) => 16 * 128 / case.width as u32,
                    (false, _, _, false) => 64,
                });
                trainer.run(2)?;
                let start = Instant::now();
                trainer.run(steps)?;
                let seconds = start.elapsed().as_secs_f64();
                println!("{executor} {name} {}: {:.1} training steps/s", case.label, steps as f64 / seconds);
                rows.push(Row {
                    executor,
                    energy: case.label.clone(),
                    dim,
                    sampler: name,
                    chains: config.batch,
                    steps,
                    seconds,
                    dispatches_per_step: dispatches,
                    // Per training point.
                    cost: Some(cost * (1.0 / config.batch as f64)),
                    ess_per_s: None,
                    frozen: 0,
                });
                Ok(())
            };
            if let Some(ctx) = ctx {
                for &strategy in strategies(case.width, loss) {
                    let mut t = GpuTrainer::with_strategy(ctx.clone(), &config, state.clone(), case.data, strategy)?;
                    let dispatches = t.dispatches_per_step() as f64;
                    let executor = if t.is_tiled() { "gpu tiled" } else { "gpu" };
                    let cost = step_cost(&config, &state, t.is_tiled());
                    time(executor, &mut t, Some(dispatches), cost)?;
                }
            }
            if want_cpu {
                let cost = step_cost(&config, &state, false);
                time("cpu", &mut CpuTrainer::new(&config, state, case.data)?, None, cost)?;
            }
        }
    }
    Ok(())
}
