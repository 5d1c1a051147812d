//! The engine's side of [`Network`] ([`NetworkInternals`]): borrowed views (the layer view
//! every executor reads, the MLP view the fused kernels inline), the packed parameter vector
//! the kernels and the trainer read and write, the CPU executor's tapes, the f64 references,
//! and the MLP file format and sizes. A crate-private extension trait rather than inherent
//! methods, so an application that holds a `Network` (the prelude's) cannot reach them; the
//! crate's own tests name it through the `internals` feature.

use super::cpu::Tape;
use super::{Activation, Layer, MlpView, NetView, Network, io, mlp};
use crate::num::Real;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// What the engine asks of a [`Network`] beyond its public methods (module docs).
pub trait NetworkInternals: Sized {
    /// The network with borrowed parameters: what the CPU executor and the definitions read.
    fn view(&self) -> NetView<'_>;

    /// The layers with their parameters, for the tests that check them one by one.
    #[cfg(any(test, feature = "internals"))]
    fn layers(&self) -> &[Layer];

    /// The network as an MLP when it is one: a flat input, biased Linear layers with one
    /// activation between them, one output, head f or -f. Such networks take the fused
    /// per-chain kernels; any other runs through the layer kernels.
    fn as_mlp(&self) -> Option<MlpView<'_>>;

    /// The parameters packed layer by layer, weight then bias (the state_dict order): the
    /// layout the kernels and the trainer read.
    fn pack_params(&self) -> Vec<f32>;

    /// Where each layer's parameters start in the packed layout ([`Self::pack_params`]).
    fn param_offsets(&self) -> Vec<usize>;

    /// Replaces the parameters with a packed vector laid out as [`Self::pack_params`].
    fn set_params(&mut self, packed: &[f32]) -> Result<()>;

    /// Multiply-adds of one forward pass for one point.
    fn macs(&self) -> u64;

    /// Model FLOPs of one energy and input gradient (forward plus backward to the input, two
    /// FLOPs per multiply-add each; activations not counted), as the benchmarks count them.
    fn flops_per_energy_grad(&self) -> u64 {
        4 * self.macs()
    }

    /// `NetView::forward_batch`.
    fn forward_batch(&self, xs: &[f32], n: usize, tape: &mut Tape) {
        self.view().forward_batch(xs, n, tape)
    }

    /// `NetView::tape_points`.
    #[cfg(any(test, feature = "internals"))]
    fn tape_points(&self, tape: &Tape, k: usize) -> Vec<f32> {
        self.view().tape_points(tape, k)
    }

    /// `NetView::head_batch`.
    fn head_batch(&self, tape: &Tape, es: &mut [f32], d_out: &mut Vec<f32>) {
        self.view().head_batch(tape, es, d_out)
    }

    /// `NetView::backward_batch`.
    fn backward_batch(&self, tape: &mut Tape, d_out: &[f32], param_grads: Option<&mut [f32]>, need_dx: bool) {
        self.view().backward_batch(tape, d_out, param_grads, need_dx)
    }

    /// `NetView::add_energy_grad_batch`.
    fn add_energy_grad_batch(&self, xs: &[f32], gs: &mut [f32], es: &mut [f32], weight: f32) {
        self.view().add_energy_grad_batch(xs, gs, es, weight)
    }

    /// `NetView::energy_grad_ref`.
    fn energy_grad_ref<T: Real>(&self, x: &[T], g: &mut [T]) -> T {
        self.view().energy_grad_ref(x, g)
    }

    /// `NetView::energy_param_grad_ref`.
    #[cfg(any(test, feature = "internals"))]
    fn energy_param_grad_ref<T: Real>(&self, x: &[T]) -> (T, Vec<T>) {
        self.view().energy_param_grad_ref(x)
    }

    /// The tensors (name, shape, values) and metadata `Network::save` writes, for files that
    /// hold a network among other things (training checkpoints).
    fn safetensors_parts(&self) -> (crate::io::NamedTensors, HashMap<String, String>);

    /// Loads an MLP file: the architecture from `ebm.net` when the file has it and nothing is
    /// overridden, otherwise Linear layers at even indices with `activation` (or the file's
    /// `activation` metadata) between them and the sign `negate` (or the `output` metadata).
    fn load_mlp(path: &Path, activation: Option<Activation>, negate: Option<bool>) -> Result<Self>;

    /// A random MLP with layer widths `dims` (input, hidden..., 1) and PyTorch's default
    /// nn.Linear initialisation (`Network::random`: the weights `ebm init-mlp` writes).
    fn random_mlp(dims: &[usize], activation: Activation, negate: bool, seed: u64) -> Result<Self>;

    /// The parameters (weights and biases) of an MLP with layer widths `dims`, saturating
    /// rather than overflowing, for the size plan.
    fn mlp_parameters(dims: &[usize]) -> u64 {
        mlp::mlp_parameters(dims)
    }
}

impl NetworkInternals for Network {
    fn view(&self) -> NetView<'_> {
        NetView {
            input: self.input,
            layers: self.layers.iter().map(Layer::view).collect(),
            head: self.head,
            outputs: self.outputs,
        }
    }

    #[cfg(any(test, feature = "internals"))]
    fn layers(&self) -> &[Layer] {
        &self.layers
    }

    fn as_mlp(&self) -> Option<MlpView<'_>> {
        mlp::as_mlp(self)
    }

    fn pack_params(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.param_count());
        for l in &self.layers {
            out.extend(&l.weight);
            out.extend(&l.bias);
        }
        out
    }

    fn param_offsets(&self) -> Vec<usize> {
        super::param_offsets(self.layers.iter().map(Layer::param_count))
    }

    fn set_params(&mut self, packed: &[f32]) -> Result<()> {
        if packed.len() != self.param_count() {
            return Err(Error::invalid(
                "network parameters",
                format!("{} values for {} parameters", packed.len(), self.param_count()),
            ));
        }
        let mut at = 0;
        for l in &mut self.layers {
            let (nw, nb) = (l.weight.len(), l.bias.len());
            l.weight.copy_from_slice(&packed[at..at + nw]);
            l.bias.copy_from_slice(&packed[at + nw..at + nw + nb]);
            at += nw + nb;
        }
        Ok(())
    }

    fn macs(&self) -> u64 {
        self.layers.iter().map(Layer::macs).sum()
    }

    fn safetensors_parts(&self) -> (crate::io::NamedTensors, HashMap<String, String>) {
        io::safetensors_parts(self)
    }

    fn load_mlp(path: &Path, activation: Option<Activation>, negate: Option<bool>) -> Result<Self> {
        io::load_mlp(path, activation, negate)
    }

    fn random_mlp(dims: &[usize], activation: Activation, negate: bool, seed: u64) -> Result<Self> {
        mlp::random_mlp(dims, activation, negate, seed)
    }
}
