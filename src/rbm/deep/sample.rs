//! Samples of a deep model on either executor: a DBN by top-level Gibbs of its top RBM (the
//! RBM's Gibbs kernels) from Bernoulli(1/2) noise, then the downward pass; a DBM by its block
//! Gibbs chains ([`super::gpu::GpuDbmGibbs`] or [`super::cpu::DbmGibbs`]) from Bernoulli(1/2)
//! h1 states.

use super::cpu::{DbmGibbs, downward, noise_rows};
use super::gpu::GpuDbmGibbs;
use super::{Deep, Kind};
use crate::Result;
use crate::rbm::eval::Executor;

/// `chains` samples after `steps` Gibbs steps (chains first.., seeded): the visible means
/// E[v | the layer above] and binary visible states, each [chains, n_vis].
pub fn samples(
    exec: &Executor,
    model: &Deep,
    first: u32,
    chains: usize,
    steps: u32,
    seed: u64,
) -> Result<(Vec<f32>, Vec<f32>)> {
    match model.kind {
        Kind::Dbn => {
            let top = model.layers.last().expect("a deep model has layers");
            let h = exec.model_samples(top, first, chains, steps, seed)?;
            downward(model, h, seed, first, steps)
        }
        Kind::Dbm => {
            let h1 = noise_rows(seed, first, chains, model.layers[0].n_hid);
            match exec {
                Executor::Cpu => {
                    let mut g = DbmGibbs::new(model, &h1, seed, first)?;
                    g.run(steps);
                    Ok((g.chains.pv, g.chains.v))
                }
                Executor::Gpu(ctx) => {
                    let mut g = GpuDbmGibbs::new(ctx.clone(), model, &h1, seed, first)?;
                    g.run(steps)?;
                    let c = g.read()?;
                    Ok((c.pv, c.v))
                }
            }
        }
    }
}
