//! Cooperative learning (Xie et al. 2018, "Cooperative learning of energy-based model and latent
//! variable model via MCMC teaching"): a generator network g(w), w ~ N(0, I), proposes each
//! step's negatives in place of the replay buffer; the K Langevin steps on E refine them; the
//! EBM takes its usual step (cd, softplus, hinge or jem) against the refined negatives x̃, and
//! the generator a regression step on L_g = (1/B) Σ_j ½‖g(w_j) − x̃_j‖², so it learns to put its
//! samples where Langevin takes them. Afterwards g(w) alone is a one-pass sampler
//! (`ebm sample --init generator`), and a good start for Langevin.
//!
//! Step t, batch entry j: w_j from the normals of Philox `(j, t, Latent, i / 4)` (word i % 4),
//! x0_j = clamp(g(w_j), box), then the Langevin steps of the module docs of [`crate::train`].
//! The generator's gradient (g(w_j) − x̃_j)/B at its outputs is backpropagated through the pass
//! that made x0 (the generator as it was at the step's start), then clipped to the EBM's clip
//! norm and stepped by the EBM's optimizer at the generator's own learning rate (following the
//! EBM's schedule), without weight decay. Both executors do exactly this.

use super::TrainConfig;
use crate::nn::{Architecture, Network};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// `--generator SPEC` and `--generator-lr`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// The generator's architecture in the network text form: the latent width, then layers
    /// ending in the data's width, e.g. `8/64/swish/64/swish/2`.
    pub spec: String,
    pub lr: f32,
}

/// The counter step of the latents `ebm sample --init generator` draws (chain c: `(c, SAMPLING,
/// Latent, i / 4)`), kept apart from every training step's.
pub const SAMPLING: u32 = u32::MAX;

impl GeneratorConfig {
    /// The generator's architecture; it must map a flat latent to `dim` values.
    pub fn architecture(&self, dim: usize) -> Result<Architecture> {
        let arch = Architecture::parse(&self.spec)
            .map_err(|e| Error::invalid("generator", format!("{:?}: {e}", self.spec)))?;
        let shapes = arch.shapes()?;
        if !matches!(arch.input, crate::nn::Shape::Flat(_)) {
            return Err(Error::invalid(
                "generator",
                format!("{:?}: its input is the latent vector: give its width (e.g. 8/64/swish/{dim})", self.spec),
            ));
        }
        let out = shapes.last().map_or(0, |s| s.len());
        if out != dim {
            return Err(Error::invalid(
                "generator",
                format!(
                    "{:?} outputs {out} values per sample, the data has {dim} columns: its last layer must have {dim} outputs",
                    self.spec
                ),
            ));
        }
        if !arch.layers.iter().zip(&shapes).any(|(l, s)| l.param_shapes(*s).is_some()) {
            return Err(Error::invalid("generator", format!("{:?} has no layers to train", self.spec)));
        }
        Ok(arch)
    }

    pub fn validate(&self, dim: usize) -> Result<()> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid(
                "generator learning rate",
                format!("must be positive and finite, got {}", self.lr),
            ));
        }
        self.architecture(dim).map(|_| ())
    }
}

/// The latents of entries `rows` at counter step `step`, [rows, latent].
pub fn latents(seed: u64, step: u32, rows: std::ops::Range<usize>, latent: usize) -> Vec<f32> {
    let mut w = Vec::with_capacity(rows.len() * latent);
    for j in rows {
        for i in 0..latent {
            w.push(rng::normal4(seed, j as u32, step, Stream::Latent, i as u32 / 4)[i % 4]);
        }
    }
    w
}

/// The generator's samples of `latents`, clamped to the box, and the tape that made them.
pub fn propose(net: &Network, latents: &[f32], lo: &[f32], hi: &[f32]) -> (Vec<f32>, super::tape::Tape) {
    let tape = super::tape::Tape::record(net, latents);
    let mut x = tape.outputs().to_vec();
    for row in x.chunks_exact_mut(lo.len()) {
        for (i, v) in row.iter_mut().enumerate() {
            *v = v.clamp(lo[i], hi[i]);
        }
    }
    (x, tape)
}

/// Samples of a trained generator for chains `first..first + chains` (`--init generator`).
pub fn samples(net: &Network, config: &TrainConfig, seed: u64, first: u32, chains: usize) -> Vec<f32> {
    let start = first as usize;
    let w = latents(seed, SAMPLING, start..start + chains, net.input_dim());
    propose(net, &w, &config.box_lo, &config.box_hi).0
}

/// The regression of the generator's outputs (its tape) onto the refined negatives `targets`:
/// L_g's share of these rows (`batch` the whole batch's size) and its parameter gradient.
pub fn regression_grad(net: &Network, tape: &mut super::tape::Tape, targets: &[f32], batch: usize) -> (f32, Vec<f32>) {
    let inv_b = 1.0 / batch as f32;
    let mut loss = 0.0;
    let d_out: Vec<f32> = tape
        .outputs()
        .iter()
        .zip(targets)
        .map(|(g, x)| {
            let r = g - x;
            loss += 0.5 * r * r;
            r * inv_b
        })
        .collect();
    let zeros = vec![0.0; tape.n];
    (loss * inv_b, tape.param_grad(net, &zeros, Some(&d_out)))
}
