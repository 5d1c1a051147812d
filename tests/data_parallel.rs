//! Data-parallel training on the CPU executor: the shares of a step computed by separate
//! trainers (as Ray workers do), joined and finished on each, give every worker the same state
//! and match single-process training (a generator's too, for cooperative learning).

use ebm_gpu::data::toy::Toy;
use ebm_gpu::nn::NetworkInternals;
use ebm_gpu::train::cpu::{CpuTrainer, StepShare};
use ebm_gpu::train::generator::GeneratorConfig;
use ebm_gpu::train::{Loss, ModelSpec, TrainConfig, TrainState, Trainer};

fn config(loss: Loss, data: &[f32]) -> TrainConfig {
    let mut c = TrainConfig::for_data(loss, data, 2, 4).unwrap();
    c.batch = 60;
    // Not a multiple of the batch: slots move between shares from step to step.
    c.buffer_capacity = 250;
    c.langevin.steps = 5;
    c.reset_prob = 0.1;
    c
}

/// `steps` data-parallel steps with one trainer per part of `bounds` (batch rows
/// bounds[k]..bounds[k+1]); returns every worker's final parameters and the metrics.
fn data_parallel(
    cfg: &TrainConfig,
    state: &TrainState,
    data: &[f32],
    bounds: &[usize],
    steps: u32,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let mut workers: Vec<CpuTrainer> =
        (1..bounds.len()).map(|_| CpuTrainer::new(cfg, state.clone(), data).unwrap()).collect();
    let mut losses = Vec::new();
    for _ in 0..steps {
        let shares: Vec<StepShare> =
            workers.iter().enumerate().map(|(k, w)| w.step_share(bounds[k]..bounds[k + 1]).unwrap()).collect();
        let joined = StepShare::join(shares).unwrap();
        for w in &mut workers {
            let m = w.finish_step(joined.clone()).unwrap();
            losses.push(m.loss);
        }
    }
    (workers.iter_mut().map(|w| all_params(&w.state().unwrap())).collect(), losses)
}

/// The energy's parameters (and log Z), then the generator's if there is one.
fn all_params(state: &TrainState) -> Vec<f32> {
    let mut p = state.params();
    if let Some(g) = &state.side {
        p.extend(g.net.pack_params());
    }
    p
}

#[test]
fn shares_joined_match_single_process_training() {
    let data = Toy::Ring8.sample(500, 1);
    let generator = GeneratorConfig { spec: "3/16/swish/2".into(), lr: 2e-3 };
    for (loss, generator) in [(Loss::Cd, None), (Loss::Nce, None), (Loss::Cd, Some(generator))] {
        let mut cfg = config(loss, &data);
        cfg.generator = generator;
        let state = TrainState::new(ModelSpec::parse("mlp:2,16,16,1:silu").unwrap().build(3).unwrap(), &cfg).unwrap();
        let mut single = CpuTrainer::new(&cfg, state.clone(), &data).unwrap();
        let single_losses: Vec<f32> = single.run(20).unwrap().iter().map(|m| m.loss).collect();
        let reference = all_params(&single.state().unwrap());

        // One share of the whole batch is the single-process step, bit for bit.
        let (one, _) = data_parallel(&cfg, &state, &data, &[0, 60], 20);
        assert_eq!(one[0], reference, "{loss}: one share");

        // Three uneven shares: the workers agree bit for bit, and with the single process up to
        // the order of the gradient sums.
        let (params, losses) = data_parallel(&cfg, &state, &data, &[0, 7, 31, 60], 20);
        assert!(params.iter().all(|p| *p == params[0]), "{loss}: every worker holds the same parameters");
        let scale = reference.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let worst = params[0].iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4 * scale, "{loss}: parameters differ by {worst} (scale {scale}) after 20 steps");
        for (step, (a, b)) in losses.chunks(3).map(|c| c[0]).zip(&single_losses).enumerate() {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{loss} step {step}: loss {a} vs {b}");
        }
    }
}

#[test]
fn bad_shares_are_refused() {
    let data = Toy::Ring8.sample(200, 1);
    let cfg = config(Loss::Cd, &data);
    let state = TrainState::new(ModelSpec::parse("mlp:2,8,1:silu").unwrap().build(3).unwrap(), &cfg).unwrap();
    let mut w = CpuTrainer::new(&cfg, state, &data).unwrap();
    for rows in [0..0, 50..61, 70..80] {
        let e = w.step_share(rows.clone()).unwrap_err().to_string();
        assert!(e.contains("not a non-empty part of 0..60"), "{rows:?}: {e}");
    }
    let (a, c) = (w.step_share(0..20).unwrap(), w.step_share(30..60).unwrap());
    let e = StepShare::join(vec![a.clone(), c]).unwrap_err().to_string();
    assert!(e.contains("cannot follow"), "{e}");
    let e = w.finish_step(a).unwrap_err().to_string();
    assert!(e.contains("the whole batch 0..60"), "{e}");
    let mut dsm = config(Loss::parse("dsm").unwrap(), &data);
    dsm.buffer_capacity = 0;
    let state = TrainState::new(ModelSpec::parse("mlp:2,8,1:silu").unwrap().build(3).unwrap(), &dsm).unwrap();
    let e = CpuTrainer::new(&dsm, state, &data).unwrap().step_share(0..10).unwrap_err().to_string();
    assert!(e.contains("no per-share step"), "{e}");
}
