//! MLP-shaped networks (Linear, activation, Linear, ..., Linear to 1, head f or -f) as a
//! borrowed view of a [`Network`]: [`super::NetworkInternals::as_mlp`]. The view is what the fused kernels
//! need: the generated WGSL (mlp/wgsl.rs: [`MlpView::wgsl_function`], forward then backward to
//! the input, inlined into the sampler and training kernels so a step stays one dispatch) and
//! its sizes. CPU twin: [`MlpView::add_energy_grad`], the layers' own definitions in the order
//! the WGSL computes them.

mod wgsl;

pub(crate) use wgsl::{Loops, Places, emit_pass};
pub use wgsl::{TILE_CHAINS, TILE_THREADS, TiledNet, UNROLL};

use super::{Activation, Architecture, Head, LayerKind, Network, Shape};
use crate::{Error, Result};

/// One Linear layer of an [`MlpView`], parameters borrowed in PyTorch's layout: `weight` is
/// [outputs, inputs] row-major.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseView<'a> {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: &'a [f32],
    pub bias: &'a [f32],
}

/// A network read as an MLP: its Linear layers, the one activation between them and the sign
/// of the head. Borrowed, so the network stays the one owner of the parameters.
#[derive(Clone, Debug)]
pub struct MlpView<'a> {
    net: &'a Network,
    layers: Vec<DenseView<'a>>,
    activation: Activation,
    negate: bool,
}

/// `NetworkInternals::as_mlp`.
pub(super) fn as_mlp(net: &Network) -> Option<MlpView<'_>> {
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
    if net.layers.len().is_multiple_of(2) || !matches!(net.input, Shape::Flat(_)) {
        return None;
    }
    let mut layers = Vec::with_capacity(net.layers.len() / 2 + 1);
    for (k, l) in net.layers.iter().enumerate() {
        match (k % 2, l.kind) {
            (0, LayerKind::Linear { outputs, bias: true }) => {
                layers.push(DenseView { inputs: l.input.len(), outputs, weight: &l.weight, bias: &l.bias })
            }
            (1, LayerKind::Act(a)) if Some(a) == activation => {}
            _ => return None,
        }
    }
    Some(MlpView { net, layers, activation: activation.unwrap_or(Activation::Relu), negate })
}

/// `NetworkInternals::random_mlp`.
pub(super) fn random_mlp(dims: &[usize], activation: Activation, negate: bool, seed: u64) -> Result<Network> {
    if dims.len() < 2 || dims.contains(&0) || dims[dims.len() - 1] != 1 {
        return Err(Error::invalid(
            "dims",
            format!("need at least an input and an output, all positive, ending in 1; got {dims:?}"),
        ));
    }
    // The weights, then the copy a save or an executor makes.
    let params = mlp_parameters(dims);
    crate::plan::Plan::new()
        .add(format!("dims {dims:?}"), format!("the network's {params} parameters"), &[params], 4, 2)
        .check()?;
    let mut layers = Vec::with_capacity(2 * dims.len());
    for (k, &outputs) in dims[1..].iter().enumerate() {
        if k > 0 {
            layers.push(LayerKind::Act(activation));
        }
        layers.push(LayerKind::Linear { outputs, bias: true });
    }
    let arch = Architecture { input: Shape::Flat(dims[0]), layers, head: if negate { Head::NegF } else { Head::F } };
    Network::random(&arch, seed)
}

/// `NetworkInternals::mlp_parameters`.
pub(super) fn mlp_parameters(dims: &[usize]) -> u64 {
    dims.windows(2).fold(0u64, |n, w| n.saturating_add((w[0] as u64).saturating_add(1).saturating_mul(w[1] as u64)))
}

impl<'a> MlpView<'a> {
    /// The network viewed.
    pub fn network(&self) -> &'a Network {
        self.net
    }

    /// The Linear layers, input first.
    pub fn layers(&self) -> &[DenseView<'a>] {
        &self.layers
    }

    /// The activation between the Linear layers (ReLU, unused, without hidden layers).
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The network outputs f = -E (the UvA / IGEBM convention): E = -MLP(x).
    pub fn negate(&self) -> bool {
        self.negate
    }

    pub fn input_dim(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// The layer widths: input, hidden..., 1.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.input_dim()];
        d.extend(self.layers.iter().map(|l| l.outputs));
        d
    }

    /// Shapes chain, the last layer outputs one number, and every parameter is finite (the
    /// network's fields are public, so a view re-checks what the kernels rely on).
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::invalid("mlp", "has no layers"));
        }
        for (k, l) in self.layers.iter().enumerate() {
            if l.weight.len() != l.inputs * l.outputs || l.bias.len() != l.outputs || l.inputs == 0 || l.outputs == 0 {
                return Err(Error::invalid(
                    format!("mlp layer {k}"),
                    format!("weight must be [{}, {}] and bias [{}]", l.outputs, l.inputs, l.outputs),
                ));
            }
            if k > 0 && self.layers[k - 1].outputs != l.inputs {
                return Err(Error::invalid(
                    format!("mlp layer {k}"),
                    format!("takes {} inputs but layer {} gives {}", l.inputs, k - 1, self.layers[k - 1].outputs),
                ));
            }
            if let Some(i) = l.weight.iter().chain(l.bias).position(|v| !v.is_finite()) {
                return Err(Error::invalid(format!("mlp layer {k}"), format!("parameter {i} is not finite")));
            }
        }
        let last = self.layers.len() - 1;
        if self.layers[last].outputs != 1 {
            return Err(Error::invalid(
                format!("mlp layer {last}"),
                format!("the last layer must output 1 value, not {}", self.layers[last].outputs),
            ));
        }
        Ok(())
    }

    /// Adds `weight * dE/dx` to `g` and returns `weight * E(x)`: the layers' definitions
    /// ([`super::NetView::energy_grad_ref`]), in the order the generated WGSL computes them.
    #[cfg(any(test, feature = "internals"))]
    pub fn add_energy_grad<T: crate::num::Real>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        use super::NetworkInternals;
        let mut gx = vec![T::zero(); x.len()];
        let e = self.net.energy_grad_ref(x, &mut gx);
        g.iter_mut().zip(gx).for_each(|(g, v)| *g += weight * v);
        weight * e
    }

    /// The parameter block the fused kernels read: each Linear layer's weight then bias (the
    /// network's packed layout, [`super::NetworkInternals::pack_params`]).
    #[cfg(any(test, feature = "internals"))]
    pub fn pack_into(&self, out: &mut Vec<f32>) {
        for l in &self.layers {
            out.extend(l.weight);
            out.extend(l.bias);
        }
    }

    /// Loop iterations one evaluation of the generated WGSL takes per invocation (dot products
    /// count once per `UNROLL` terms).
    pub fn loop_iterations(&self) -> u64 {
        let dot = |n: usize| (n / UNROLL) as u64 + 1;
        let layers = &self.layers;
        let forward: u64 = layers.iter().map(|l| l.outputs as u64 * dot(l.inputs)).sum();
        let backward: u64 =
            layers[..layers.len() - 1].iter().map(|l| l.inputs as u64 * dot(l.outputs) + l.outputs as u64).sum();
        forward + backward + self.input_dim() as u64
    }

    /// Widest hidden layer (0 without hidden layers).
    pub fn max_hidden_width(&self) -> usize {
        self.layers[..self.layers.len() - 1].iter().map(|l| l.outputs).max().unwrap_or(0)
    }
}
