//! Train an MLP energy on the ring of 8 Gaussians with the library API (contrastive divergence
//! from a persistent replay buffer), on the GPU when a hardware adapter opens and otherwise on the
//! CPU executor, then measure its exact held-out likelihood by quadrature.
//!
//! `cargo run --release --example train_ring8`

use ebm_gpu::data::toy::Toy;
use ebm_gpu::gpu::Backend;
use ebm_gpu::train::{Loss, ModelSpec, TrainConfig, TrainState, Trainer, cpu::CpuTrainer, eval, gpu::GpuTrainer};

fn main() -> ebm_gpu::Result<()> {
    let toy = Toy::Ring8;
    let data = toy.sample(20_000, 1);
    let mut config = TrainConfig::for_data(Loss::Cd, &data, 2, 7)?;
    config.decay_steps = 3000;
    config.final_lr_fraction = 0.05;
    let mlp = ModelSpec::parse("mlp:2,128,128,1:silu")?.build(7)?;
    let state = TrainState::new(mlp, &config)?;
    // The executor policy of `--backend auto`: a hardware GPU if one opens, else the CPU.
    let mut trainer: Box<dyn Trainer> = match Backend::Auto.open()?.gpu {
        Some(ctx) => Box::new(GpuTrainer::new(ctx, &config, state, &data)?),
        None => Box::new(CpuTrainer::new(&config, state, &data)?),
    };
    println!("training on {}", trainer.executor());
    for _ in 0..6 {
        let metrics = trainer.run(500)?;
        let last = metrics.last().expect("500 steps ran");
        println!("step {:5}: loss {:+.4}, E(x+) {:+.3}, E(x-) {:+.3}, |grad| {:.3}", last.step, last.loss, last.e_pos, last.e_neg, last.grad_norm);
    }
    let state = trainer.state()?;
    let model = state.energy();
    let held_out = toy.sample(20_000, 99);
    let truth = |p: &[f32]| toy.log_density(p).unwrap_or_default();
    let lo = [config.box_lo[0], config.box_lo[1]];
    let hi = [config.box_hi[0], config.box_hi[1]];
    let report = eval::evaluate_2d(&model, lo, hi, &held_out, eval::Reference::LogDensity(&truth))?;
    println!(
        "held-out NLL {:.4} nats (true density {:.4}), total variation {:.4}",
        report.nll,
        report.true_nll.unwrap_or(f64::NAN),
        report.tv
    );
    Ok(())
}
