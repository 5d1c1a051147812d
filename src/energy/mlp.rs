//! MLP energies E(x) = MLP(x) (or -MLP(x) for networks that output f = -E), with weights in
//! PyTorch's nn.Sequential layout, loaded from and saved to safetensors.
//!
//! GPU: the generated WGSL (mlp/wgsl.rs: [`Mlp::wgsl_function`], forward then backward to the
//! input) is inlined into the sampler kernels, so an MLP sampler step stays one dispatch. CPU
//! twin: [`Mlp::add_energy_grad`], with the same order of operations.

mod wgsl;

pub(crate) use wgsl::{Places, emit_pass};
pub use wgsl::{TILE_CHAINS, TILE_K, TILE_THREADS, TiledNet, UNROLL};

use crate::num::Real;
use crate::nn::{Activation, Head, LayerKind, LayerView, NetView, Network, Shape};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// A dense layer in PyTorch's layout: `weight` is [out, in] row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Linear, activation, Linear, activation, ..., Linear to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub layers: Vec<Dense>,
    pub activation: Activation,
    /// The network outputs f = -E (the UvA / IGEBM convention): E = -MLP(x).
    pub negate: bool,
}

impl Mlp {
    pub fn input_dim(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.input_dim()];
        d.extend(self.layers.iter().map(|l| l.outputs));
        d
    }

    /// Multiply-adds of one forward pass plus one backward pass to the input.
    pub fn flops_per_energy_grad(&self) -> u64 {
        self.layers.iter().map(|l| 4 * (l.inputs * l.outputs) as u64).sum()
    }

    /// Shapes chain, the last layer outputs one number, and every parameter is finite.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::invalid("mlp", "has no layers"));
        }
        for (k, l) in self.layers.iter().enumerate() {
            if l.weight.len() != l.inputs * l.outputs || l.bias.len() != l.outputs || l.inputs == 0 || l.outputs == 0 {
                return Err(Error::invalid(format!("mlp layer {k}"), format!("weight must be [{}, {}] and bias [{}]", l.outputs, l.inputs, l.outputs)));
            }
            if k > 0 && self.layers[k - 1].outputs != l.inputs {
                return Err(Error::invalid(
                    format!("mlp layer {k}"),
                    format!("takes {} inputs but layer {} gives {}", l.inputs, k - 1, self.layers[k - 1].outputs),
                ));
            }
            if let Some(i) = l.weight.iter().chain(&l.bias).position(|v| !v.is_finite()) {
                return Err(Error::invalid(format!("mlp layer {k}"), format!("parameter {i} is not finite")));
            }
        }
        let last = self.layers.len() - 1;
        if self.layers[last].outputs != 1 {
            return Err(Error::invalid(format!("mlp layer {last}"), format!("the last layer must output 1 value, not {}", self.layers[last].outputs)));
        }
        Ok(())
    }

    /// The parameters (weights and biases) of an MLP with layer widths `dims`, saturating
    /// rather than overflowing, for the size plan.
    pub fn parameters_of(dims: &[usize]) -> u64 {
        dims.windows(2).fold(0u64, |n, w| n.saturating_add((w[0] as u64).saturating_add(1).saturating_mul(w[1] as u64)))
    }

    /// Random network with PyTorch's default nn.Linear initialisation, U(-1/sqrt(in), 1/sqrt(in)),
    /// drawn from Philox so a seed always gives the same weights.
    pub fn random(dims: &[usize], activation: Activation, negate: bool, seed: u64) -> Result<Self> {
        if dims.len() < 2 || dims.contains(&0) || dims[dims.len() - 1] != 1 {
            return Err(Error::invalid("dims", format!("need at least an input and an output, all positive, ending in 1; got {dims:?}")));
        }
        // The weights, then the copy a save or an executor makes.
        let params = Self::parameters_of(dims);
        crate::plan::Plan::new().add(format!("dims {dims:?}"), format!("the network's {params} parameters"), &[params], 4, 2).check()?;
        let mut counter = 0u32;
        let mut uniform = |bound: f32| {
            let u = crate::rng::uniform4(seed, counter, 0, crate::rng::Stream::Init, u32::MAX)[0];
            counter += 1;
            (2.0 * u - 1.0) * bound
        };
        let layers = dims
            .windows(2)
            .map(|w| {
                let bound = 1.0 / (w[0] as f32).sqrt();
                Dense { inputs: w[0], outputs: w[1], weight: (0..w[0] * w[1]).map(|_| uniform(bound)).collect(), bias: (0..w[1]).map(|_| uniform(bound)).collect() }
            })
            .collect();
        let mlp = Mlp { layers, activation, negate };
        mlp.validate()?;
        Ok(mlp)
    }

    /// The network as the layer description reads it (Linear, activation, ..., Linear to 1,
    /// head f or -f), parameters borrowed: the CPU arithmetic of an MLP energy is that of
    /// [`crate::nn`].
    pub fn view(&self) -> NetView<'_> {
        let mut layers = Vec::with_capacity(2 * self.layers.len());
        for (k, l) in self.layers.iter().enumerate() {
            if k > 0 {
                layers.push(LayerView { kind: LayerKind::Act(self.activation), input: Shape::Flat(l.inputs), weight: &[], bias: &[] });
            }
            layers.push(LayerView { kind: LayerKind::Linear { outputs: l.outputs, bias: true }, input: Shape::Flat(l.inputs), weight: &l.weight, bias: &l.bias });
        }
        NetView { input: Shape::Flat(self.input_dim()), layers, head: if self.negate { Head::NegF } else { Head::F }, outputs: 1 }
    }

    /// The same network as a [`crate::nn::Network`] (parameters copied).
    pub fn to_network(&self) -> crate::nn::Network {
        let v = self.view();
        let arch = crate::nn::Architecture { input: v.input, layers: v.layers.iter().map(|l| l.kind).collect(), head: v.head };
        let params = v.layers.iter().map(|l| (l.weight.to_vec(), l.bias.to_vec())).collect();
        crate::nn::Network::new(&arch, params).expect("an MLP's view is a valid network")
    }

    /// Adds `weight * dE/dx` to `g` and returns `weight * E(x)`: the layers' definitions
    /// ([`NetView::energy_grad_ref`]), in the order the generated WGSL computes them.
    pub fn add_energy_grad<T: Real>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let mut gx = vec![T::zero(); x.len()];
        let e = self.view().energy_grad_ref(x, &mut gx);
        g.iter_mut().zip(gx).for_each(|(g, v)| *g += weight * v);
        weight * e
    }

    pub fn pack_into(&self, out: &mut Vec<f32>) {
        for l in &self.layers {
            out.extend(&l.weight);
            out.extend(&l.bias);
        }
    }

    /// Loop iterations one evaluation of the generated WGSL takes per invocation (dot products
    /// count once per `UNROLL` terms).
    pub fn loop_iterations(&self) -> u64 {
        let dot = |n: usize| (n / UNROLL) as u64 + 1;
        let layers = &self.layers;
        let forward: u64 = layers.iter().map(|l| l.outputs as u64 * dot(l.inputs)).sum();
        let backward: u64 = layers[..layers.len() - 1].iter().map(|l| l.inputs as u64 * dot(l.outputs) + l.outputs as u64).sum();
        forward + backward + self.input_dim() as u64
    }

    /// Widest hidden layer (0 without hidden layers).
    pub fn max_hidden_width(&self) -> usize {
        self.layers[..self.layers.len() - 1].iter().map(|l| l.outputs).max().unwrap_or(0)
    }


    /// The network as an `Mlp` when it is one: a flat input,
    /// biased Linear layers with one activation between them, one output, head f or -f.
    pub fn from_network(net: &Network) -> Option<Mlp> {
        let negate = match net.head {
            Head::F => false,
            Head::NegF => true,
            _ => return None,
        };
        let activation = match net.layers.get(1).map(|l| l.kind) {
            Some(LayerKind::Act(a)) => Some(a),
            None => None,
            _ => return None,
        };
        let mut dense = Vec::new();
        for (k, l) in net.layers.iter().enumerate() {
            match (k % 2, l.kind) {
                (0, LayerKind::Linear { outputs, bias: true }) => {
                    dense.push(Dense { inputs: l.input.len(), outputs, weight: l.weight.clone(), bias: l.bias.clone() })
                }
                (1, LayerKind::Act(a)) if Some(a) == activation => {}
                _ => return None,
            }
        }
        if net.layers.len().is_multiple_of(2) || !matches!(net.input, Shape::Flat(_)) {
            return None;
        }
        Some(Mlp { layers: dense, activation: activation.unwrap_or(Activation::Relu), negate })
    }

    /// Loads weights written by PyTorch (`safetensors.torch.save_file(model.state_dict())` of an
    /// nn.Sequential) or by `ebm`: keys `N.weight` [out, in] and `N.bias` [out] for the Linear
    /// layers in index order. The activation and sign come from the file's architecture or
    /// metadata (`activation`, `output` = "energy" | "neg_energy") unless given here. Tensors
    /// named `train.*` (a training checkpoint's other state) are skipped. One loader serves
    /// every network: [`crate::nn::Network::load_mlp`].
    pub fn load(path: &Path, activation: Option<Activation>, negate: Option<bool>) -> Result<Self> {
        let net = crate::nn::Network::load_mlp(path, activation, negate)?;
        Mlp::from_network(&net).ok_or_else(|| {
            Error::format(path, format!("holds the network {}, not an MLP energy: load it as net:{}", net.spec(), path.display()))
        })
    }

    /// Writes the network as PyTorch's nn.Sequential(Linear, act, Linear, ...) would name it,
    /// with the activation and sign in the metadata; atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let (tensors, meta) = self.safetensors_parts();
        crate::io::write_safetensors(path, &tensors, meta)
    }

    /// The tensors (name, shape, values) and metadata [`Mlp::save`] writes, for files that hold
    /// a network among other things (training checkpoints).
    pub fn safetensors_parts(&self) -> (crate::io::NamedTensors, HashMap<String, String>) {
        let tensors = self
            .layers
            .iter()
            .enumerate()
            .flat_map(|(k, l)| {
                [(format!("{}.weight", 2 * k), vec![l.outputs, l.inputs], l.weight.clone()), (format!("{}.bias", 2 * k), vec![l.outputs], l.bias.clone())]
            })
            .collect();
        let meta = HashMap::from([
            ("format".to_string(), "ebm-mlp".to_string()),
            ("activation".to_string(), self.activation.name()),
            ("output".to_string(), if self.negate { "neg_energy" } else { "energy" }.to_string()),
        ]);
        (tensors, meta)
    }
}

impl Mlp {
    /// Batched [`Mlp::add_energy_grad`] for n = es.len() points xs [n, input_dim] (row-major):
    /// adds weight * dE/dx to gs and weight * E(x) to es, through the network executor's GEMMs
    /// ([`NetView::add_energy_grad_batch`]). Single-threaded: callers parallelise over blocks.
    pub fn add_energy_grad_batch(&self, xs: &[f32], gs: &mut [f32], es: &mut [f32], weight: f32) {
        self.view().add_energy_grad_batch(xs, gs, es, weight)
    }
}
