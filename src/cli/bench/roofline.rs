//! The roofline model of `ebm bench`: FLOPs and bytes moved per unit of work (a chain-step, a
//! kernel call, a training step) of every workload, counted from the shapes and from what each
//! kernel does (the WGSL under shaders/ and its launcher), so that a measured time becomes an
//! achieved GFLOP/s and GB/s and, given a device's peaks, a fraction of the roofline bound
//! min(peak FLOP/s, intensity x peak bytes/s). docs/roofline.md explains the model.
//!
//! What is counted:
//! - FLOPs: f32 +, -, x, / (a fused multiply-add is 2), min/max/clamp, exp/log/sqrt/sin/cos
//!   (1 each); comparisons, selects, finiteness tests, index arithmetic and loop control are
//!   not counted, nor constant expressions a compiler hoists out of a loop. Philox4x32-10's
//!   32-bit integer operations are counted as FLOPs too, one each, and reported apart as `rng`:
//!   the compute roof treats them at the FP32 rate, which flatters RNG-heavy kernels (an H100
//!   SM issues 64 INT32 operations per clock against 128 FP32 FMAs).
//! - Bytes: traffic between the kernels and device memory (DRAM/HBM). Each buffer element a
//!   dispatch reads or writes counts once per dispatch: reuse inside a dispatch (registers,
//!   workgroup memory, and the caches for read-only weights and for per-chain scratch) is taken
//!   as perfect while the dispatch's working set fits in [`L2_BYTES`]; reuse across dispatches
//!   is not counted. Where the working set does not fit, the re-read data count each time the
//!   kernel reads it. Host uploads and readbacks are not counted.

use std::ops::{Add, AddAssign, Mul};

use crate::energy::{Energy, EnergyInternals};
use crate::nn::mlp::{MlpView, TILE_CHAINS, TILE_THREADS};
use crate::nn::{Activation, NetworkInternals};
use crate::nn::{Head, LayerKind, Network};
use crate::sampler::SamplerKind;

pub mod discrete;
pub mod train;

/// Bytes of an f32.
const F: f64 = 4.0;
/// The last-level cache the bytes model assumes a dispatch's re-read data stay in (an H100
/// SXM's L2: 50 MB).
pub const L2_BYTES: f64 = 50e6;
/// 32-bit integer operations of one Philox4x32-10 call in shaders/common/rng.wgsl: 10 rounds
/// of two `mulhilo` (18 each: 2 to split the counter word, 4 partial products, 11 to combine
/// them, the low product) and 4 XORs, plus 9 key bumps of 2 adds.
pub const PHILOX_OPS: f64 = 10.0 * (2.0 * 18.0 + 4.0) + 9.0 * 2.0;

/// Work per unit: FLOPs (with the Philox integer operations), of which RNG, and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    pub flops: f64,
    /// The part of `flops` spent drawing random numbers (Philox, uniforms, Box-Muller).
    pub rng: f64,
    pub bytes: f64,
}

impl Cost {
    pub fn new(flops: f64, bytes: f64) -> Self {
        Cost { flops, rng: 0.0, bytes }
    }
    fn rng(ops: f64) -> Self {
        Cost { flops: ops, rng: ops, bytes: 0.0 }
    }
    /// Arithmetic intensity, FLOPs per byte.
    pub fn intensity(&self) -> f64 {
        self.flops / self.bytes
    }
    /// The roofline bound on units per second on a device with these peaks.
    pub fn bound(&self, peaks: &Peaks) -> Bound {
        let compute = peaks.flops / self.flops;
        let memory = peaks.bytes / self.bytes;
        if compute <= memory {
            Bound { rate: compute, limit: Limit::Compute }
        } else {
            Bound { rate: memory, limit: Limit::Memory }
        }
    }
}

impl Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost { flops: self.flops + o.flops, rng: self.rng + o.rng, bytes: self.bytes + o.bytes }
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        *self = *self + o;
    }
}

impl Mul<f64> for Cost {
    type Output = Cost;
    fn mul(self, k: f64) -> Cost {
        Cost { flops: self.flops * k, rng: self.rng * k, bytes: self.bytes * k }
    }
}

/// A device's FP32 peak (FLOP/s) and memory bandwidth (bytes/s).
#[derive(Clone, Copy, Debug)]
pub struct Peaks {
    pub flops: f64,
    pub bytes: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Compute,
    Memory,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::Compute => "compute",
            Limit::Memory => "memory",
        }
    }
}

/// Units per second at the roof, and which roof.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub rate: f64,
    pub limit: Limit,
}

/// Four uniforms (`uniform4`): Philox, then 4 shifts and 4 adds (integer), 4 conversions and 4
/// multiplies.
pub fn uniform4() -> Cost {
    Cost::rng(PHILOX_OPS + 16.0)
}

/// Four normals (`normal4`): `uniform4` and Box-Muller's 2 logs, 2 x -2, 2 square roots, 2 x 2 pi,
/// 2 cosines, 2 sines and 4 products.
pub fn normal4() -> Cost {
    uniform4() + Cost::rng(16.0)
}

/// A d-vector of normals, four per Philox call.
pub fn normals(d: usize) -> Cost {
    normal4() * d.div_ceil(4) as f64
}

/// FLOPs of (act(z), act'(z), both together) as shaders/common/activations.wgsl writes them
/// (sigmoid = negate, exp, add, divide).
pub fn act_flops(a: Activation) -> (f64, f64, f64) {
    match a {
        Activation::Relu => (1.0, 0.0, 1.0),
        Activation::LeakyRelu(_) => (1.0, 0.0, 1.0),
        // z s; s (1 + z (1 - s)); the sigmoid shared.
        Activation::Silu => (5.0, 8.0, 9.0),
        Activation::Tanh => (1.0, 3.0, 3.0),
        // max(z, 0) + log(1 + exp(-|z|)); sigmoid.
        Activation::Softplus => (7.0, 4.0, 11.0),
        Activation::Elu(_) => (3.0, 2.0, 3.0),
    }
}

/// FLOPs of one energy and gradient of an analytic energy at one point (each family's
/// `AnalyticTerm::flops`, per term of a sum); None for the kinds the model leaves out.
pub fn analytic_flops(energy: &Energy) -> Option<f64> {
    Some(match energy {
        Energy::Analytic(t) => t.flops()?,
        Energy::Net(n) => {
            let m = n.as_mlp()?;
            mlp_flops(&m.dims(), m.activation(), true)
        }
        Energy::Sum { terms } => terms.iter().map(|(_, t)| analytic_flops(t)).sum::<Option<f64>>()?,
        _ => return None,
    })
}

/// FLOPs of one energy and input gradient of an MLP with widths `dims` (input, hidden..., 1) at
/// one point, as the fused function (`MlpView::wgsl_function`, `into_g`: adding `weight x dE/dx`
/// into the gradient) and the tiled kernels (shaders/nn/mlp_tiled.wgsl, writing dE/dx) compute it:
/// every layer's dot products (the bias starts each sum), each hidden unit's activation and
/// slope, the output weight times the last slope, then back through the hidden layers
/// (2 in x out + the slope product) to the input (2 d x w1).
pub fn mlp_flops(dims: &[usize], act: Activation, into_g: bool) -> f64 {
    let hidden = dims.len().saturating_sub(2);
    let (_, _, both) = act_flops(act);
    let forward: f64 = dims.windows(2).map(|w| 2.0 * (w[0] * w[1]) as f64).sum();
    let acts: f64 = dims[1..=hidden].iter().map(|&w| both * w as f64).sum();
    let mut backward = 0.0;
    if hidden > 0 {
        backward += dims[hidden] as f64;
        backward += (1..hidden).map(|k| (2 * dims[k] * dims[k + 1] + dims[k]) as f64).sum::<f64>();
        backward += 2.0 * (dims[0] * dims[1]) as f64;
    }
    let into = if into_g { 2.0 * dims[0] as f64 } else { 0.0 };
    forward + acts + backward + into
}

/// The per-step arithmetic of a sampler other than the energy evaluations and random numbers,
/// for the fused kernels (shaders/sampler/langevin.wgsl, hmc.wgsl), per chain-step, and the energy
/// evaluations per step: ULA x - h g + s xi and the tempering beta g; MALA the preconditioned
/// proposal (7 per dimension), beta g, and the two proposal densities (16 per dimension) and
/// the accept test; HMC L leapfrogs (drift and kick, 5 per dimension, and beta g each), the
/// momentum and the two kinetic energies.
fn sampler_arithmetic(kind: SamplerKind, d: f64, leapfrog: f64) -> (f64, f64) {
    match kind {
        SamplerKind::Ula => (5.0 * d, 1.0),
        SamplerKind::Mala => (24.0 * d + 10.0, 1.0),
        SamplerKind::Hmc => (leapfrog * 6.0 * d + 12.0 * d + 13.0, leapfrog),
        // RWMH: x + s xi and the accept test.
        SamplerKind::Rwmh => (3.0 * d + 8.0, 1.0),
    }
}

/// Random numbers per chain-step: the proposal noise (or momentum) and, for the adjusted
/// samplers, one `uniform4` for the accept test (and HMC's jitters).
fn sampler_rng(kind: SamplerKind, d: usize) -> Cost {
    match kind {
        SamplerKind::Ula => normals(d),
        _ => normals(d) + uniform4(),
    }
}

/// Bytes each fused-kernel dispatch moves per chain: the state in and out (8 d), the stats row
/// (3 words read, 2 written), the chain's (step size, beta) and its energy.
fn chain_bytes(d: f64) -> f64 {
    8.0 * d + 20.0 + 8.0 + 4.0
}

/// How a sampler runs on the GPU, for [`sampler_step`].
#[derive(Clone, Copy, Debug)]
pub struct SamplerRun {
    pub kind: SamplerKind,
    pub chains: usize,
    /// Fused steps per dispatch (the fused and tiled kernels keep the chain on chip between).
    pub steps_per_dispatch: u32,
    /// HMC's leapfrog steps.
    pub leapfrog: u32,
    /// Every step's state written to the trace buffer.
    pub traced: bool,
}

/// Steps per dispatch the fused GPU sampler chooses on a hardware adapter (no loop cap):
/// `GpuSampler::new`'s 2^24 / (chains x (the energy's loop iterations + d) x leapfrogs),
/// clamped to 1..=64.
pub fn default_steps_per_dispatch(energy: &Energy, kind: SamplerKind, chains: usize, leapfrog: u32) -> u32 {
    let iterations = match tiled_mlp(energy) {
        Some(m) => m.wgsl_tiled_module().loop_iterations,
        None => energy.loop_iterations(),
    };
    let cost = if kind == SamplerKind::Hmc { leapfrog as u64 } else { 1 };
    let work = chains as u64 * (iterations + energy.dim() as u64) * cost;
    ((1u64 << 24) / work.max(1)).clamp(1, 64) as u32
}

/// Per chain-step cost of a sampler on `energy` as the GPU runs it: the fused per-chain kernel
/// for analytic energies and narrow MLPs, the tiled kernel for MLPs with a hidden layer of at
/// least `TILED_MIN_WIDTH` (the bench's `Auto` strategy), the layer kernels for other networks.
/// None for energies the model leaves out.
pub fn sampler_step(energy: &Energy, run: &SamplerRun) -> Option<Cost> {
    match energy {
        Energy::Net(net) if net.as_mlp().is_none() => Some(layered_step(net, run.kind, run.chains)),
        _ => match tiled_mlp(energy) {
            Some(m) => Some(tiled_step(&m, run)),
            None => fused_step(energy, run),
        },
    }
}

/// The MLP the tiled kernels run for `energy` (the bench's `Auto` strategy): an MLP-shaped
/// network with a hidden layer of at least `TILED_MIN_WIDTH` neurons.
pub fn tiled_mlp(energy: &Energy) -> Option<MlpView<'_>> {
    match energy {
        Energy::Net(n) => n.as_mlp().filter(|m| m.max_hidden_width() >= crate::sampler::config::TILED_MIN_WIDTH),
        _ => None,
    }
}

/// The fused per-chain kernels (shaders/sampler/langevin.wgsl, hmc.wgsl): x, E and g stay in registers
/// for `steps_per_dispatch` steps; the state, energy and stats go through memory once per
/// dispatch, the energy's parameters (and dim_scale) once per dispatch while they fit in L2
/// (else each workgroup of 64 chains reads them at every evaluation), a traced step writes the
/// state. One extra evaluation per dispatch starts the chain.
pub fn fused_step(energy: &Energy, run: &SamplerRun) -> Option<Cost> {
    let d = energy.dim();
    let df = d as f64;
    let eval = analytic_flops(energy)? + df;
    let spd = run.steps_per_dispatch.max(1) as f64;
    let (arith, evals) = sampler_arithmetic(run.kind, df, run.leapfrog as f64);
    let params = F * (energy.pack_params().len() + d) as f64;
    let per_dispatch = chain_bytes(df) + params / run.chains as f64;
    let params_per_eval = if params > L2_BYTES { params / 64.0 } else { 0.0 };
    let trace = if run.traced { F * df } else { 0.0 };
    let flops = arith + evals * eval + eval / spd;
    let bytes = per_dispatch / spd + evals * params_per_eval + trace;
    Some(Cost::new(flops, bytes) + sampler_rng(run.kind, d))
}

/// Floats of the tiled kernels' per-chain scratch (`MlpView::wgsl_tiled_module`): x, y, their
/// gradients, each hidden layer's activation and slope, two delta buffers.
fn tiled_scratch(dims: &[usize]) -> usize {
    let hidden = &dims[1..dims.len() - 1];
    4 * dims[0] + 2 * hidden.iter().sum::<usize>() + 2 * hidden.iter().copied().max().unwrap_or(1)
}

/// Scratch floats one evaluation of shaders/nn/mlp_tiled.wgsl reads and writes per chain: each
/// layer's inputs staged once per block of 64 outputs, activations and slopes written, the
/// output delta, each backward layer's deltas staged once per block of 64 inputs, the slopes
/// read, the deltas written.
fn tiled_eval_traffic(dims: &[usize]) -> f64 {
    let wg = TILE_THREADS;
    let n = dims.len() - 1;
    let mut floats = 0;
    for k in 0..n {
        let (i, o) = (dims[k], dims[k + 1]);
        floats += i * o.div_ceil(wg) + if k + 1 < n { 2 * o } else { 0 };
    }
    floats += 2 * dims[n - 1];
    for k in (0..n - 1).rev() {
        let (i, o) = (dims[k], dims[k + 1]);
        floats += o * i.div_ceil(wg) + i + if k > 0 { i } else { 0 };
    }
    floats as f64
}

/// The tiled MLP kernels (shaders/sampler/langevin_tiled.wgsl): a workgroup evaluates 16 chains
/// together, their states, proposals, activations and deltas in the per-chain scratch buffer.
/// Weights: once per dispatch while they fit in L2, else once per tile per evaluation. Scratch:
/// written back once per dispatch while every chain's scratch and the weights fit in L2, else
/// every access counts (the proposal, the network, the accept test and the copy, per step).
pub fn tiled_step(m: &MlpView<'_>, run: &SamplerRun) -> Cost {
    let dims = m.dims();
    let d = dims[0] as f64;
    let spd = run.steps_per_dispatch.max(1) as f64;
    let eval = mlp_flops(&dims, m.activation(), false);
    let mala = run.kind == SamplerKind::Mala;
    // Proposal (beta g, the step, sqrt(2h) per dimension) and, for MALA, the densities with
    // beta applied to both gradients.
    let arith = if mala { 28.0 * d + 10.0 } else { 7.0 * d };
    let weights = F * m.layers().iter().map(|l| l.weight.len() + l.bias.len()).sum::<usize>() as f64;
    let scratch = F * tiled_scratch(&dims) as f64;
    let chains = run.chains as f64;
    let fits = chains * scratch + weights <= L2_BYTES;
    let scratch_bytes = if fits {
        scratch / spd
    } else {
        // Proposal 3 d, the network, the finiteness test 2 d, MALA's densities 4 d, the copy 4 d.
        F * (tiled_eval_traffic(&dims) + 3.0 * d + 2.0 * d + if mala { 4.0 * d } else { 0.0 } + 4.0 * d)
    };
    let weight_bytes = if weights <= L2_BYTES { weights / (chains * spd) } else { weights / TILE_CHAINS as f64 };
    let per_dispatch = chain_bytes(d) + F * d / chains;
    let flops = arith + eval + eval / spd;
    let bytes = per_dispatch / spd + scratch_bytes + weight_bytes;
    Cost::new(flops, bytes) + sampler_rng(run.kind, dims[0])
}

/// One pass of a network through the layer kernels over `n` rows (`GpuNetwork::new`): the
/// forward ops (Linear or Conv2d with the bias and a following activation in the epilogue, which
/// also stores the pre-activation), the head, and the backward ops: the parameter gradients
/// (with `param_grads`) and the input gradients (with `dx`, or above the bottom layer when
/// there are parameter gradients). Every op reads its inputs and weights and writes its outputs
/// once (split-K partial sums of the weight gradients are left out).
pub fn net_pass(net: &Network, n: usize, dx: bool, param_grads: bool) -> Cost {
    let nf = n as f64;
    let mut cost = Cost::default();
    let layers = &net.layers;
    let mut k = 0;
    while k < layers.len() {
        let l = &layers[k];
        let (inp, out) = (l.input.len() as f64, l.output_shape().len() as f64);
        let params = F * (l.weight.len() + l.bias.len()) as f64;
        let bias = if l.bias.is_empty() { 0.0 } else { 1.0 };
        let act = match layers.get(k + 1).map(|next| next.kind) {
            Some(LayerKind::Act(a)) if matches!(l.kind, LayerKind::Linear { .. } | LayerKind::Conv2d { .. }) => Some(a),
            _ => None,
        };
        let stores = if act.is_some() { 2.0 } else { 1.0 };
        let act_value = act.map_or(0.0, |a| act_flops(a).0);
        match l.kind {
            LayerKind::Linear { .. } | LayerKind::Conv2d { .. } => {
                let macs = l.macs() as f64;
                cost += Cost::new(nf * (2.0 * macs + out * (bias + act_value)), F * nf * (inp + stores * out) + params);
            }
            LayerKind::Act(a) => cost += Cost::new(nf * inp * act_flops(a).0, F * nf * 2.0 * inp),
            LayerKind::Flatten | LayerKind::ResBegin => {}
            LayerKind::AvgPool2d { .. } => cost += Cost::new(nf * (inp + out), F * nf * (inp + out)),
            // A copy (reads and writes `out`) or a sum (reads two, writes one).
            LayerKind::ResProj => cost += Cost::new(0.0, F * nf * 2.0 * out),
            LayerKind::ResEnd => cost += Cost::new(nf * out, F * nf * 3.0 * out),
        }
        k += if act.is_some() { 2 } else { 1 };
    }
    // Head: reads the K outputs, writes the energy and dE/df.
    let outputs = net.outputs as f64;
    let head = match net.head {
        Head::F | Head::NegF => 1.0,
        Head::LogSumExp | Head::Class(_) => 6.0 * outputs,
    };
    cost += Cost::new(nf * head, F * nf * (2.0 * outputs + 1.0));
    for (k, l) in layers.iter().enumerate().rev() {
        let needs_dx = dx || (param_grads && k > 0);
        let (inp, out) = (l.input.len() as f64, l.output_shape().len() as f64);
        let params = F * (l.weight.len() + l.bias.len()) as f64;
        match l.kind {
            LayerKind::Linear { .. } | LayerKind::Conv2d { .. } => {
                let macs = l.macs() as f64;
                if param_grads {
                    let bias = if l.bias.is_empty() { 0.0 } else { nf * out };
                    cost += Cost::new(nf * 2.0 * macs + bias, F * nf * (inp + out) + params);
                }
                if needs_dx {
                    cost += Cost::new(nf * 2.0 * macs, F * nf * (inp + out) + params);
                }
            }
            // dz = act'(z) da: reads z and da, writes dz.
            LayerKind::Act(a) if needs_dx => cost += Cost::new(nf * inp * (act_flops(a).1 + 1.0), F * nf * 3.0 * inp),
            LayerKind::AvgPool2d { .. } if needs_dx => cost += Cost::new(nf * inp, F * nf * (inp + out)),
            LayerKind::ResProj | LayerKind::ResEnd if needs_dx => cost += Cost::new(0.0, F * nf * 2.0 * inp),
            LayerKind::ResBegin if needs_dx => cost += Cost::new(nf * inp, F * nf * 3.0 * inp),
            _ => {}
        }
    }
    cost
}

/// ULA or MALA through the layer kernels (shaders/sampler/langevin_layered.wgsl around a network pass,
/// src/sampler/layered.rs), per chain-step: `propose` (one invocation and one `normal4` per
/// coordinate: reads x and g, writes y), the network's energy and input gradient at y in chunks
/// of up to 4096 chains (the weights read once per op and chunk), `accept` (reads y and its
/// gradient, MALA also x and its gradient; writes x and beta g).
pub fn layered_step(net: &Network, kind: SamplerKind, chains: usize) -> Cost {
    let d = net.input_dim() as f64;
    let chunk = chains.min(4096);
    let pass = net_pass(net, chunk, true, false) * (1.0 / chunk as f64);
    let mala = kind == SamplerKind::Mala;
    let propose = Cost::new(if mala { 9.0 * d } else { 6.0 * d }, F * 3.0 * d + 12.0) + normal4() * d;
    let accept = if mala {
        Cost::new(18.0 * d + 10.0, F * 6.0 * d + 44.0) + uniform4()
    } else {
        Cost::new(d, F * 4.0 * d + 16.0)
    };
    propose + pass + accept
}

/// A tiled GEMM `y = x W^T + b` of n rows (`NnKernels::linear_forward`, bias in the epilogue):
/// x, W and b read once, y written once.
pub fn linear_forward(n: usize, inputs: usize, outputs: usize) -> Cost {
    let (n, i, o) = (n as f64, inputs as f64, outputs as f64);
    Cost::new(2.0 * n * i * o + n * o, F * (n * i + o * i + o + n * o))
}

/// An implicit-GEMM convolution with bias (`NnKernels::conv2d_forward`): the images and the
/// filters read once, the output written once.
pub fn conv_forward(g: &crate::nn::ops::ConvGeom) -> Cost {
    let (b, macs) = (g.batch as f64, g.macs() as f64);
    let params = (g.out_c * g.patch() + g.out_c) as f64;
    Cost::new(b * (2.0 * macs + g.out_len() as f64), F * (b * (g.in_len() + g.out_len()) as f64 + params))
}

/// The input gradient of a convolution (`NnKernels::conv2d_backward_input`): dy and the
/// filters read once, dx written once.
pub fn conv_input_grad(g: &crate::nn::ops::ConvGeom) -> Cost {
    let (b, macs) = (g.batch as f64, g.macs() as f64);
    Cost::new(b * 2.0 * macs, F * (b * (g.in_len() + g.out_len()) as f64 + (g.out_c * g.patch()) as f64))
}

/// The weight gradient of a convolution (`conv2d_backward_params`): the images and dy read
/// once, dW and db written once.
pub fn conv_param_grad(g: &crate::nn::ops::ConvGeom) -> Cost {
    let (b, macs) = (g.batch as f64, g.macs() as f64);
    let params = (g.out_c * g.patch() + g.out_c) as f64;
    Cost::new(b * (2.0 * macs + g.out_len() as f64), F * (b * (g.in_len() + g.out_len()) as f64 + params))
}

/// Half a block-Gibbs step of an RBM over `rows` rows (shaders/rbm/rbm.wgsl `hidden_step`, or
/// `visible_step` with `to` the visibles): per unit a dot product over the other layer, `extra`
/// FLOPs (the bias, the sigmoid, and for hidden units the partial sums' combination), one
/// `uniform4` (each invocation draws its own); reads the other layer, writes the probabilities
/// and samples. theta (W, b, c) is read once per dispatch (it fits in L2).
fn rbm_half(from: usize, to: usize, extra: f64, rows: usize, theta: f64) -> Cost {
    let (f, t, r) = (from as f64, to as f64, rows as f64);
    (Cost::new(t * (2.0 * f + extra), F * (f + 2.0 * t)) + uniform4() * t) * r + Cost::new(0.0, theta)
}

fn rbm_theta(n_vis: usize, n_hid: usize) -> f64 {
    F * (n_vis * n_hid + n_vis + n_hid) as f64
}

/// One block-Gibbs step of an RBM per chain, over `chains` chains.
pub fn rbm_gibbs(n_vis: usize, n_hid: usize, chains: usize) -> Cost {
    let theta = rbm_theta(n_vis, n_hid);
    (rbm_half(n_vis, n_hid, 8.0, chains, theta) + rbm_half(n_hid, n_vis, 5.0, chains, theta)) * (1.0 / chains as f64)
}

/// One CD-k batch of `batch` rows (src/rbm/gpu.rs `encode_batch`): the data's hidden step, k
/// visible and hidden steps, the reconstruction error (3 FLOPs per visible), and `update`
/// (shaders/rbm/rbm_update.wgsl: per weight the positive and negative products summed over the rows
/// (4 per row), the gradient with decay, momentum and the step (9); reads the four statistics
/// blocks once, reads and writes theta and the velocity). Host uploads of the data not counted.
pub fn rbm_cd_batch(n_vis: usize, n_hid: usize, batch: usize, k: u32) -> Cost {
    let (v, h, b) = (n_vis as f64, n_hid as f64, batch as f64);
    let theta = rbm_theta(n_vis, n_hid);
    let hidden = rbm_half(n_vis, n_hid, 8.0, batch, theta);
    let visible = rbm_half(n_hid, n_vis, 5.0, batch, theta);
    let recon = Cost::new(b * 3.0 * v, F * b * (2.0 * v + 1.0));
    let update = Cost::new(v * h * (4.0 * b + 9.0) + (v + h) * (2.0 * b + 9.0), 4.0 * theta + F * 2.0 * b * (v + h));
    hidden * (k + 1) as f64 + visible * k as f64 + recon + update
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ops::ConvGeom;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    /// MALA on the 2-128-128-1 SiLU MLP (the bench's mlp2x128x128x1), counted by hand.
    #[test]
    fn mlp_2_128_128_1_by_hand() {
        let dims = [2, 128, 128, 1];
        // Forward: 2 x (2*128 + 128*128 + 128*1) = 2 x 16768.
        let forward = 33536.0;
        // SiLU and its slope at 256 hidden units: 9 each (sigmoid 4, z s 1, s (1 + z (1 - s)) 4).
        let acts = 2304.0;
        // dE/dz of the last hidden layer: w_out[i] s[i], 128 products.
        let delta = 128.0;
        // Back through the 128 x 128 layer: 2 x 16384 multiply-adds + 128 slope products.
        let hidden = 32896.0;
        // To the input: 2 x 2 x 128.
        let input = 512.0;
        let eval = forward + acts + delta + hidden + input;
        assert_eq!(eval, 69376.0);
        assert!(close(mlp_flops(&dims, Activation::Silu, false), eval));
        // The fused function also adds weight * dE/dx into g: 2 per input.
        assert!(close(mlp_flops(&dims, Activation::Silu, true), eval + 4.0));

        let net = Network::random_mlp(&dims, Activation::Silu, false, 1).unwrap();
        let m = net.as_mlp().unwrap();
        let run =
            SamplerRun { kind: SamplerKind::Mala, chains: 1024, steps_per_dispatch: 8, leapfrog: 0, traced: false };
        let cost = tiled_step(&m, &run);
        // Per chain-step: the step's evaluation, the start evaluation of each dispatch / 8, the
        // proposal and the two densities (28 per dimension + 10), one normal4 (Philox 418 + 8
        // integer + 8 float for the uniforms + 16 for Box-Muller) and one uniform4 (434).
        let philox = 10.0 * (2.0 * 18.0 + 4.0) + 9.0 * 2.0;
        assert_eq!(philox, 418.0);
        let rng = (philox + 32.0) + (philox + 16.0);
        let flops = eval + eval / 8.0 + 28.0 * 2.0 + 10.0 + rng;
        assert!(close(cost.flops, flops), "{} vs {flops}", cost.flops);
        assert!(close(cost.rng, rng));
        // Bytes: scratch 4*2 + 2*(128+128) + 2*128 = 776 floats, written back once per dispatch
        // (1024 chains x 3104 B fit in L2); weights 2*128+128 + 128*128+128 + 128+1 = 17025
        // floats once per dispatch over 1024 chains; the state in and out (16 B), stats (20 B),
        // step size and beta (8 B) and the energy (4 B) once per dispatch, dim_scale (8 B) once
        // per dispatch over 1024 chains.
        let bytes = 776.0 * 4.0 / 8.0 + 17025.0 * 4.0 / (1024.0 * 8.0) + (48.0 + 8.0 / 1024.0) / 8.0;
        assert!(close(cost.bytes, bytes), "{} vs {bytes}", cost.bytes);
    }

    /// The UvA ConvEBM's first layer, 16 filters 5x5 stride 2 pad 4 on one 1x28x28 image.
    #[test]
    fn conv_16k5s2p4_by_hand() {
        let g = ConvGeom { batch: 1, in_c: 1, in_h: 28, in_w: 28, out_c: 16, kh: 5, kw: 5, stride: 2, pad: 4 };
        // (28 + 2*4 - 5) / 2 + 1 = 16: the output is 16 x 16 x 16.
        assert_eq!((g.out_h(), g.out_w()), (16, 16));
        // Multiply-adds: 16 * 16 * 16 outputs x 1 * 5 * 5 taps.
        let macs = 16.0 * 16.0 * 16.0 * 25.0;
        assert_eq!(macs, 102400.0);
        let fwd = conv_forward(&g);
        // 2 FLOPs per multiply-add and the bias on 4096 outputs.
        assert!(close(fwd.flops, 2.0 * 102400.0 + 4096.0));
        // Reads the 784 inputs, the 400 weights and 16 biases, writes the 4096 outputs.
        assert!(close(fwd.bytes, 4.0 * (784.0 + 400.0 + 16.0 + 4096.0)));
        let back = conv_input_grad(&g);
        assert!(close(back.flops, 2.0 * 102400.0));
        assert!(close(back.bytes, 4.0 * (4096.0 + 400.0 + 784.0)));
        // H100 (67 TFLOP/s, 3.35 TB/s): intensity 208896 / 21184 = 9.86 < 20, memory-bound at
        // 3.35e12 / 21184 images per second.
        let peaks = Peaks { flops: 67e12, bytes: 3.35e12 };
        let bound = fwd.bound(&peaks);
        assert_eq!(bound.limit, Limit::Memory);
        assert!(close(bound.rate, 3.35e12 / 21184.0));
    }

    #[test]
    fn analytic_energies_by_hand() {
        let well = crate::energy::spec::resolve_energy(r#"{"type":"double_well","dim":32}"#).unwrap();
        // Per dimension: x x - 1 (2), e += h q q (3), g += (4 w h) x q (3).
        assert_eq!(analytic_flops(&well), Some(8.0 * 32.0 + 1.0));
        let ring = crate::energy::spec::resolve_energy("ring8").unwrap();
        // 8 components in 2-d: 8 x (11 x 2 + 4) + 3 x 2 + 4.
        assert_eq!(analytic_flops(&ring), Some(218.0));
        // ULA, 4 steps per dispatch: the step (5 per dimension), one evaluation and beta g
        // (257 + 32), the start evaluation / 4, eight normal4; the state (8 x 32 + 32 B) / 4.
        let run =
            SamplerRun { kind: SamplerKind::Ula, chains: 1000, steps_per_dispatch: 4, leapfrog: 0, traced: false };
        let cost = fused_step(&well, &run).unwrap();
        let params = 4.0 * (1.0 + 32.0);
        assert!(close(cost.flops, 5.0 * 32.0 + 289.0 + 289.0 / 4.0 + 8.0 * 450.0));
        assert!(close(cost.bytes, (8.0 * 32.0 + 32.0 + params / 1000.0) / 4.0));
    }
}
