//! MLP energies E(x) = MLP(x) (or -MLP(x) for networks that output f = -E), with weights in
//! PyTorch's nn.Sequential layout, loaded from and saved to safetensors.
//!
//! GPU: the generated WGSL in [`Mlp::wgsl_function`] (forward, then backward to the input) is
//! inlined into the sampler kernels, so an MLP sampler step stays one dispatch. CPU twin:
//! [`Mlp::add_energy_grad`], with the same order of operations.

use crate::num::Real;
use crate::nn::{Activation, Head, LayerKind, LayerView, NetView, Network, Shape};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Terms per iteration of the generated dot-product loops.
pub const UNROLL: usize = 8;

/// WGSL that adds `sum_{j < n} term(j)` to `acc`: a loop over blocks of [`UNROLL`] terms, then
/// the remainder written out. `term` receives an index expression.
pub(crate) fn dot_product(acc: &str, n: usize, term: &dyn Fn(&str) -> String) -> String {
    let blocks = n / UNROLL * UNROLL;
    let mut s = String::new();
    if blocks > 0 {
        let terms: Vec<String> = (0..UNROLL).map(|u| term(&format!("j + {u}u"))).collect();
        s += &format!("        for (var j = 0u; j < {blocks}u; j += {UNROLL}u) {{\n            {acc} += {};\n        }}\n", terms.join("\n                + "));
    }
    for j in blocks..n {
        s += &format!("        {acc} += {};\n", term(&format!("{j}u")));
    }
    s
}

/// Chains per workgroup tile, input chunk staged through workgroup memory, and threads per
/// workgroup of the tiled strategy (shaders/nn/mlp_tiled.wgsl).
pub const TILE_CHAINS: usize = 16;
pub const TILE_K: usize = 64;
pub const TILE_THREADS: usize = 64;

/// What the tiled strategy's launcher needs from a network.
pub struct TiledNet {
    /// The `mlp_net` WGSL module.
    pub source: String,
    /// Scratch floats per chain.
    pub scratch_floats: usize,
    /// Loop iterations of one evaluation per invocation (see `GpuContext::loop_budget`).
    pub loop_iterations: u64,
}

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

    /// A WGSL function `name(x, g, base, weight) -> f32` with the analytic energies'
    /// signature: sizes are compile-time constants, parameters read from `energy_params`.
    /// Dot products are unrolled by [`UNROLL`]: fewer loop iterations per invocation (software
    /// adapters cap those, see `GpuContext::loop_budget`) and more independent multiply-adds.
    pub fn wgsl_function(&self, name: &str) -> String {
        let (act, dact) = self.activation.wgsl();
        let hidden = self.layers.len() - 1;
        let mut s = format!(
            "fn {name}_act(z: f32) -> f32 {{ return {act}; }}\nfn {name}_dact(z: f32) -> f32 {{ return {dact}; }}\n\
             fn {name}(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {{\n"
        );
        let mut offset = 0usize;
        let mut offsets = Vec::new();
        for l in &self.layers {
            offsets.push(offset);
            offset += l.inputs * l.outputs + l.outputs;
        }
        let input_of = |k: usize| if k == 0 { "(*x)".to_string() } else { format!("h{}", k - 1) };
        // Forward: h{k} = act(z{k}); s{k} = act'(z{k}).
        for (k, l) in self.layers[..hidden].iter().enumerate() {
            let (w, b) = (offsets[k], offsets[k] + l.inputs * l.outputs);
            let input = input_of(k);
            let dot = dot_product("z", l.inputs, &|i| format!("energy_params[row + {i}] * {input}[{i}]"));
            s += &format!(
                "    var h{k}: array<f32, {o}>;\n    var s{k}: array<f32, {o}>;\n    for (var o = 0u; o < {o}u; o++) {{\n        \
                 var z = energy_params[base + {b}u + o];\n        let row = base + {w}u + o * {i}u;\n{dot}        \
                 h{k}[o] = {name}_act(z);\n        s{k}[o] = {name}_dact(z);\n    }}\n",
                o = l.outputs,
                i = l.inputs
            );
        }
        let last = &self.layers[hidden];
        let (w, b) = (offsets[hidden], offsets[hidden] + last.inputs);
        let input = input_of(hidden);
        let sign = if self.negate { "-1.0" } else { "1.0" };
        let dot = dot_product("out", last.inputs, &|i| format!("energy_params[base + {w}u + {i}] * {input}[{i}]"));
        s += &format!("    var out = energy_params[base + {b}u];\n{dot}    let sign = {sign};\n");
        // Backward: d{k} = dE/dz{k}.
        if hidden == 0 {
            s += &format!("    for (var i = 0u; i < DIM; i++) {{ (*g)[i] += weight * sign * energy_params[base + {w}u + i]; }}\n");
        } else {
            let k = hidden - 1;
            s += &format!(
                "    var d{k}: array<f32, {n}>;\n    for (var i = 0u; i < {n}u; i++) {{ d{k}[i] = sign * energy_params[base + {w}u + i] * s{k}[i]; }}\n",
                n = last.inputs
            );
            for k in (0..hidden).rev() {
                let l = &self.layers[k];
                let w = offsets[k];
                let target = if k == 0 { String::new() } else { format!("    var d{}: array<f32, {}>;\n", k - 1, l.inputs) };
                let store = if k == 0 { "(*g)[i] += weight * acc;".to_string() } else { format!("d{}[i] = acc * s{}[i];", k - 1, k - 1) };
                let dot = dot_product("acc", l.outputs, &|o| format!("energy_params[base + {w}u + ({o}) * {}u + i] * d{k}[{o}]", l.inputs));
                s += &format!("{target}    for (var i = 0u; i < {}u; i++) {{\n        var acc = 0.0;\n{dot}        {store}\n    }}\n", l.inputs);
            }
        }
        s += "    return weight * sign * out;\n}\n";
        s
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

    /// The generated `mlp_net` module of the tiled strategy (shaders/nn/mlp_tiled.wgsl): tile
    /// constants, the per-chain scratch layout, the activation, and `tile_energy_grad`, which
    /// runs the layers for a tile of chains. Needs at least one hidden layer.
    pub fn wgsl_tiled_module(&self) -> TiledNet {
        let (act, dact) = self.activation.wgsl();
        let dim = self.input_dim();
        let hidden = self.layers.len() - 1;
        let widths: Vec<usize> = self.layers[..hidden].iter().map(|l| l.outputs).collect();
        // Scratch per chain: x, y, grad x, grad y, then h and act'(z) per hidden layer, then two
        // delta buffers for the backward pass.
        let mut at = 4 * dim;
        let mut h_off = Vec::new();
        let mut s_off = Vec::new();
        for &w in &widths {
            h_off.push(at);
            s_off.push(at + w);
            at += 2 * w;
        }
        let max_w = widths.iter().copied().max().unwrap_or(1);
        let (delta_a, delta_b) = (at, at + max_w);
        let scratch = at + 2 * max_w;
        let mut w_off = Vec::new();
        let mut off = 0;
        for l in &self.layers {
            w_off.push(off);
            off += l.inputs * l.outputs + l.outputs;
        }
        let mut body = String::new();
        for k in 0..=hidden {
            let l = &self.layers[k];
            let input = if k == 0 { "in_off".to_string() } else { format!("{}u", h_off[k - 1]) };
            let (h, sl, out) = if k < hidden { (h_off[k], s_off[k], "false") } else { (0, 0, "true") };
            body += &format!("    dense_forward(tid, first, {input}, {}u, {}u, {}u, {h}u, {sl}u, {out});\n", l.inputs, l.outputs, w_off[k]);
        }
        body += &format!(
            "    output_delta(tid, first, {}u, {}u, {}u, {delta_a}u, NET_SIGN);\n",
            self.layers[hidden].inputs,
            w_off[hidden],
            s_off[hidden - 1]
        );
        let (mut src, mut dst) = (delta_a, delta_b);
        for k in (0..hidden).rev() {
            let l = &self.layers[k];
            if k > 0 {
                body += &format!(
                    "    dense_backward(tid, first, {src}u, {}u, {}u, {}u, {dst}u, {}u, true);\n",
                    l.inputs, l.outputs, w_off[k], s_off[k - 1]
                );
                std::mem::swap(&mut src, &mut dst);
            } else {
                body += &format!("    dense_backward(tid, first, {src}u, {}u, {}u, {}u, g_off, 0u, false);\n", l.inputs, l.outputs, w_off[k]);
            }
        }
        let source = format!(
            "const T: u32 = {TILE_CHAINS}u;\nconst KC: u32 = {TILE_K}u;\nconst WG: u32 = {TILE_THREADS}u;\n\
             const TILE_ELEMS: u32 = {}u;\nconst SCR: u32 = {scratch}u;\nconst X_OFF: u32 = 0u;\nconst Y_OFF: u32 = {dim}u;\n\
             const GX_OFF: u32 = {}u;\nconst GY_OFF: u32 = {}u;\nconst NET_SIGN: f32 = {};\n\
             fn net_act(z: f32) -> f32 {{ return {act}; }}\nfn net_dact(z: f32) -> f32 {{ return {dact}; }}\n\
             fn tile_energy_grad(tid: u32, first: u32, in_off: u32, g_off: u32) {{\n{body}}}\n",
            TILE_CHAINS * TILE_K,
            2 * dim,
            3 * dim,
            if self.negate { "-1.0" } else { "1.0" },
        );
        // Loop iterations per thread: per layer, neuron blocks x input chunks x (staging +
        // the chunk's multiply-adds; the loop over the T chains is short and unrolled).
        let chunks = |n: usize, by: usize| n.div_ceil(by) as u64;
        let staging = (TILE_CHAINS * TILE_K / TILE_THREADS + TILE_K) as u64;
        let layers: u64 = self
            .layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let forward = chunks(l.outputs, TILE_THREADS) * chunks(l.inputs, TILE_K) * staging;
                let backward = if k < hidden { chunks(l.inputs, TILE_THREADS) * chunks(l.outputs, TILE_K) * staging } else { 0 };
                forward + backward
            })
            .sum();
        TiledNet { source, scratch_floats: scratch, loop_iterations: layers + (TILE_CHAINS * dim / TILE_THREADS) as u64 }
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
