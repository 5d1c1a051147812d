//! Train an MLP energy on the ring of 8 Gaussians from a program (the `ebm train` command run
//! in-process, as the Python package does), then use the trained network through the public
//! API: sample it on the executor `--backend auto` would pick and count the samples near the
//! ring's 8 modes. Uses the public API only.
//!
//! `cargo run --release --example train_ring8 [RUN_DIR]`

use ebm_gpu::prelude::*;

fn main() -> anyhow::Result<()> {
    let run_dir = std::env::args().nth(1).unwrap_or_else(|| "runs/train_ring8_example".into());
    // Contrastive divergence from a persistent replay buffer; metrics.csv, train.log, figures
    // and checkpoint.safetensors land in the run dir, and `ebm eval` reports the held-out
    // likelihood by quadrature.
    ebm_gpu::cli::run([
        "ebm",
        "train",
        "--data",
        "ring8",
        "--steps",
        "3000",
        "--seed",
        "7",
        "--run-dir",
        &run_dir,
        "--force",
    ])?;
    ebm_gpu::cli::run(["ebm", "eval", "--run-dir", &run_dir])?;

    let energy = resolve_energy(&format!("mlp:{run_dir}/checkpoint.safetensors"))?;
    let init = initial_states(3, 0, 16_384, energy.dim(), 2.0);
    let config = SamplerConfig::builder(SamplerKind::Mala, 0.01, 3).build()?;
    // The executor policy of `--backend auto`: a hardware GPU if one opens, else the CPU.
    let choice = Backend::Auto.open()?;
    let mut sampler: Box<dyn ChainSampler> = match choice.gpu {
        Some(ctx) => Box::new(GpuSampler::new(ctx, &energy, config, &init)?),
        None => Box::new(CpuSampler::new(&energy, config, &init)?),
    };
    sampler.run(2000)?;
    // ring8: modes on the circle of radius 2, standard deviation 0.25.
    let states = sampler.state()?;
    let near = states
        .chunks_exact(2)
        .filter(|p| {
            let angle = p[1].atan2(p[0]);
            let k = (angle / (std::f32::consts::PI / 4.0)).round();
            let (mx, my) = (2.0 * (k * std::f32::consts::PI / 4.0).cos(), 2.0 * (k * std::f32::consts::PI / 4.0).sin());
            ((p[0] - mx).powi(2) + (p[1] - my).powi(2)).sqrt() < 0.75
        })
        .count();
    println!(
        "{}: {near} of {} samples of the trained model lie within 3 sigma of a mode",
        sampler.executor(),
        states.len() / 2
    );
    Ok(())
}
