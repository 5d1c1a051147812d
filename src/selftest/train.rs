//! Checks of the training kernels: whole training steps (the Langevin phase on the replay
//! buffer, forward and backward passes, the loss, the optimizer) from one seed on the GPU and
//! the CPU executor.

use super::{Measure, Size, max_abs_diff, rel_diff};
use crate::Result;
use crate::data::toy::Toy;
use crate::gpu::GpuContext;
use crate::nn::{Architecture, Network, NetworkInternals};
use crate::sampler::MlpStrategy;
use crate::train::cpu::CpuTrainer;
use crate::train::gpu::GpuTrainer;
use crate::train::layered::LayeredTrainer;
use crate::train::{Loss, ModelSpec, Optimizer, StepMetrics, TrainConfig, TrainState, Trainer};
use std::sync::Arc;

const ADAM: Optimizer = Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/// Step by step: losses, E+ and gradient norms within `tol` relative to 1 + |value|, the same
/// replay slots reset; then the parameters (relative to the largest) within `param_tol`.
fn compare_runs(
    name: &str,
    mc: &[StepMetrics],
    mg: &[StepMetrics],
    tol: f64,
    params: (&[f32], &[f32]),
    param_tol: f64,
) -> Vec<Measure> {
    let mut worst = 0.0f64;
    let mut same_resets = mc.len() == mg.len();
    for (a, b) in mc.iter().zip(mg) {
        for (x, y) in [(a.loss, b.loss), (a.e_pos, b.e_pos), (a.grad_norm, b.grad_norm)] {
            let d = ((x - y).abs() / (1.0 + x.abs())) as f64;
            worst = if d.is_nan() { f64::NAN } else { worst.max(d) };
        }
        same_resets &= a.reset_fraction == b.reset_fraction && a.step == b.step;
    }
    let mut steps = Measure::within(worst, tol, format!("{name}: {} steps' loss, E+, |grad| (relative)", mc.len()));
    steps.passed &= same_resets;
    let (pc, pg) = params;
    vec![
        steps,
        Measure::within(rel_diff(pg, pc), param_tol, format!("{name}: parameters after {} steps (relative)", mc.len())),
    ]
}

/// The fused MLP trainer (train.wgsl, the Langevin phase per chain and tiled) against the CPU
/// trainer on two moons: CD with Adam, NCE, and the image recipe's gradient clamp.
pub fn mlp(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let data = Toy::TwoMoons.sample(2000, 4);
    let steps = size.pick(10, 30);
    let mut parts = Vec::new();
    for (loss, clamp) in [(Loss::Cd, false), (Loss::Nce, false), (Loss::Cd, true)] {
        for strategy in [MlpStrategy::PerChain, MlpStrategy::Tiled] {
            let mut cfg = TrainConfig::for_data(loss, &data, 2, 21)?;
            (cfg.batch, cfg.buffer_capacity, cfg.reset_prob) = (48, 512, 0.1);
            (cfg.optimizer, cfg.lr, cfg.alpha, cfg.weight_decay) = (ADAM, 2e-3, 0.1, 1e-4);
            cfg.langevin.steps = 5;
            if clamp {
                cfg.langevin.step_size = 0.1;
                cfg.langevin.grad_clamp = 0.005;
            }
            let state = TrainState::new(ModelSpec::parse("mlp:2,32,32,1:silu")?.build(5)?, &cfg)?;
            let mut cpu = CpuTrainer::new(&cfg, state.clone(), &data)?;
            let mut gpu = GpuTrainer::with_strategy(ctx.clone(), &cfg, state, &data, strategy)?;
            let (mc, mg) = (cpu.run(steps)?, gpu.run(steps)?);
            let name = format!("{loss:?}{} {strategy:?}", if clamp { " clamp" } else { "" });
            let (sc, sg) = (cpu.state()?, gpu.state()?);
            parts.extend(compare_runs(
                &name,
                &mc[..mc.len().min(5)],
                &mg[..mg.len().min(5)],
                1e-3,
                (&sc.params(), &sg.params()),
                2e-3,
            ));
            parts.push(Measure::within(max_abs_diff(&sg.replay, &sc.replay), 2e-2, format!("{name}: replay buffer")));
        }
    }
    Ok(Measure::all(parts))
}

fn images(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let noise = crate::rng::initial_states(seed, 0, rows, dim, 0.1);
    let phases = crate::rng::initial_states(seed + 1, 0, rows, 1, 2.0);
    (0..rows * dim)
        .map(|k| ((k % dim) as f32 * 0.7 + phases[k / dim]).sin() * 0.8 + noise[k])
        .map(|v| v.clamp(-1.0, 1.0))
        .collect()
}

/// The layer-kernel trainer (train_layered.wgsl around network passes) on convolutional networks
/// with every head: CD with the gradient clamp, softplus, NCE; twelve steps (four quick).
pub fn layered(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let mut cases = vec![
        ("1x6x6/4k3s1p1/silu/avgpool:2/5k2s1p0:nobias/elu:0.5/flatten/8/swish/1", Loss::Cd),
        ("1x6x6/2k3s2p0/softplus/flatten/5/leaky_relu:0.1/1/head:-f", Loss::Nce),
    ];
    if size == Size::Full {
        cases.push(("1x5x5/3k3s2p1/tanh/flatten/4/head:lse", Loss::Softplus));
    }
    let steps = size.pick(4, 12);
    let mut parts = Vec::new();
    for (spec, loss) in cases {
        let network = Network::random(&Architecture::parse(spec)?, 3)?;
        let dim = network.input_dim();
        let data = images(300, dim, 5);
        let mut cfg = TrainConfig::for_data(loss, &data, dim, 31)?;
        (cfg.optimizer, cfg.batch, cfg.buffer_capacity, cfg.reset_prob) = (ADAM, 24, 96, 0.2);
        (cfg.alpha, cfg.lr, cfg.weight_decay) = (0.1, 2e-3, 1e-4);
        (cfg.langevin.steps, cfg.langevin.step_size) = (4, 0.05);
        if loss == Loss::Cd {
            cfg.langevin.grad_clamp = 0.01;
        }
        let state = TrainState::new(network, &cfg)?;
        let mut cpu = CpuTrainer::new(&cfg, state.clone(), &data)?;
        let mut gpu = LayeredTrainer::new(ctx.clone(), &cfg, state, &data)?;
        let (mc, mg) = (cpu.run(steps)?, gpu.run(steps)?);
        let (sc, sg) = (cpu.state()?, gpu.state()?);
        let name: String = format!("{loss:?} {}", spec.chars().take(16).collect::<String>());
        parts.extend(compare_runs(&name, &mc, &mg, 5e-3, (&sc.params(), &sg.params()), 2e-3));
        parts.push(Measure::within(
            rel_diff(&sg.replay, &sc.replay),
            2e-3,
            format!("{name}: replay buffer (relative)"),
        ));
    }
    Ok(Measure::all(parts))
}

/// Score matching through the jets (train_layered.wgsl, activations' higher derivatives): DSM
/// over several noise levels and SSM, twelve Adam steps (four quick).
pub fn dsm(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let mut cases = vec![
        ("3/16/silu/8/silu/1", Loss::Dsm { sigma_max: 0.5, sigma_min: 0.05, levels: 4, conditional: false }),
        ("2x5x5/2k3s2p1/elu/flatten/4/tanh/1/head:-f", Loss::Ssm { rademacher: true }),
    ];
    if size == Size::Full {
        cases.push(("1x6x6/3k3s1p1/softplus/avgpool:2/flatten/5/silu/3/head:lse", Loss::Ssm { rademacher: false }));
    }
    let steps = size.pick(4, 12);
    let mut parts = Vec::new();
    for (k, (spec, loss)) in cases.into_iter().enumerate() {
        let network = Network::random(&Architecture::parse(spec)?, 80 + k as u64)?;
        let d = network.input_dim();
        let data = crate::rng::initial_states(90 + k as u64, 0, 64, d, 1.0);
        let mut config = TrainConfig::for_data(loss, &data, d, 17)?;
        (config.batch, config.lr) = (16, 1e-3);
        let state = TrainState::new(network, &config)?;
        let mut cpu = CpuTrainer::new(&config, state.clone(), &data)?;
        let mut gpu = GpuTrainer::new(ctx.clone(), &config, state, &data)?;
        let (mc, mg) = (cpu.run(steps)?, gpu.run(steps)?);
        let (pc, pg) = (cpu.state()?.net.pack_params(), gpu.state()?.net.pack_params());
        let name = format!("{loss} {}", spec.chars().take(16).collect::<String>());
        let mut measures = compare_runs(&name, &mc, &mg, 2e-3, (&pc, &pg), 1e-3);
        // tests/score_matching.rs bounds the absolute difference of the parameters.
        measures[1] = Measure::within(max_abs_diff(&pc, &pg), 1e-3, format!("{name}: parameters after {steps} steps"));
        parts.extend(measures);
    }
    Ok(Measure::all(parts))
}
