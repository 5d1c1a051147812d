//! A network on the GPU for a batch of points: energies, input gradients and (for training)
//! parameter gradients reduced over the batch, as a list of prepared layer ops
//! ([`super::gpu::NnKernels`]) plus the head (`shaders/nn/nn_head.wgsl`). A Linear or Conv2d
//! layer followed by an activation runs as one op (bias and activation in the GEMM's
//! epilogue, the pre-activation kept for the backward pass). Residual blocks' markers are
//! copies and sums (`add_copy`), a block start the same memory as its input. CPU twin:
//! [`super::cpu`].

use super::gpu::{Epilogue, NnKernels, NnOp, Slice};
use super::{Head, LayerKind, Network, NetworkInternals, Shape, residual};
use crate::gpu::launch::{ParamSlots, bind_group, dispatch};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::{Error, Result};
use std::sync::Arc;

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct HeadParams {
    n: u32,
    k: u32,
    kind: u32,
    class_index: u32,
    f_off: u32,
    e_off: u32,
    d_off: u32,
    /// `head_jet` only: the jet's order and the loss's seeds.
    pub(super) order: u32,
    pub(super) s1a: f32,
    pub(super) s1b: f32,
    pub(super) s2: f32,
    /// `head` only: E and dE/df are multiplied by it (a term's weight in a sum of networks).
    weight: f32,
}

impl HeadParams {
    /// The head of `net` over n points: outputs at `f`, energies to `energies`, dE/df (or the
    /// jet's adjoints) to `d_out`.
    pub(super) fn new(net: &Network, n: usize, f: Slice, energies: Slice, d_out: Slice) -> Self {
        let (kind, class_index) = match net.head {
            Head::F => (0, 0),
            Head::NegF => (1, 0),
            Head::LogSumExp => (2, 0),
            Head::Class(y) => (3, y as u32),
        };
        HeadParams {
            n: n as u32,
            k: net.outputs as u32,
            kind,
            class_index,
            f_off: f.offset as u32,
            e_off: energies.offset as u32,
            d_off: d_out.offset as u32,
            weight: 1.0,
            ..Default::default()
        }
    }
}

/// A prepared kernel of `nn_head.wgsl` (`head` or `head_jet`) bound to the outputs, the
/// energies and the outputs' gradient, one invocation per point.
pub(super) struct HeadKernel {
    kernel: Arc<Kernel>,
    bind: wgpu::BindGroup,
    /// Owns the uniform buffer the bind group reads.
    _slots: ParamSlots,
}

impl HeadKernel {
    pub(super) fn new(
        ctx: &Arc<GpuContext>,
        entry: &str,
        params: &HeadParams,
        buffers: [&wgpu::Buffer; 3],
    ) -> Result<Self> {
        ctx.scoped(&format!("preparing the network head ({entry})"), || -> Result<_> {
            let wgsl = crate::gpu::shader::assemble("nn/nn_head.wgsl", &[])?;
            let kernel = ctx.kernel("nn/nn_head.wgsl", &wgsl, entry)?;
            let mut slots = ParamSlots::new(ctx, 1);
            slots.push(params);
            slots.flush(ctx);
            let bind = bind_group(ctx, &kernel, &slots.buffer, size_of::<HeadParams>() as u64, &buffers);
            Ok(Self { kernel, bind, _slots: slots })
        })?
    }

    /// Records the kernel over n points.
    pub(super) fn record(&self, pass: &mut wgpu::ComputePass, n: usize) {
        dispatch(pass, &self.kernel, &self.bind, 0, n as u32, 1);
    }
}

/// The device memory a network needs for batches of up to `batch` points: its parameters, one
/// buffer per intermediate value (so each stays within the storage-binding limit), one per
/// intermediate gradient, and the parameter gradients. Several [`GpuNetwork`]s (one per chunk
/// of chains) can share them, since their ops run one after another.
pub struct NetBuffers {
    pub params: wgpu::Buffer,
    /// dE/dθ summed over the batch, laid out as [`super::NetworkInternals::pack_params`].
    pub param_grads: wgpu::Buffer,
    /// values[k] = the input of layer k (None for layer 0, the caller's points, and where a
    /// flatten makes it the same memory as the layer below).
    pub(super) values: Vec<Option<wgpu::Buffer>>,
    pub(super) grads: Vec<Option<wgpu::Buffer>>,
    /// Where dE/dx goes when the caller does not want it (a flatten at the bottom would
    /// otherwise make the layer above write it somewhere that matters).
    pub(super) input_grads: wgpu::Buffer,
    batch: usize,
}

/// Largest points per batch whose every intermediate value fits one storage binding.
pub fn max_batch(ctx: &GpuContext, net: &Network) -> usize {
    let widest = net.layers.iter().map(|l| l.output_shape().len()).max().unwrap_or(1).max(net.input_dim());
    (ctx.limits().max_storage_buffer_binding_size as usize / (4 * widest)).max(1)
}

impl NetBuffers {
    pub fn new(ctx: &GpuContext, net: &Network, batch: usize) -> Result<Self> {
        if batch == 0 || batch > max_batch(ctx, net) {
            return Err(Error::Limit(format!(
                "a network batch of {batch} points: between 1 and {} fit the storage-binding limit here",
                max_batch(ctx, net)
            )));
        }
        let layers = net.layers.len();
        let buffer = |label: &str, floats: usize| ctx.zeroed_storage_buffer(label, (floats.max(1) * 4) as u64);
        ctx.scoped("allocating network buffers", || {
            let params = ctx.storage_buffer(
                "network parameters",
                bytemuck::cast_slice(&{
                    let mut p = net.pack_params();
                    if p.is_empty() {
                        p.push(0.0);
                    }
                    p
                }),
            );
            let mut values = vec![None];
            let mut grads = vec![None];
            for (k, l) in net.layers.iter().enumerate() {
                // A flatten's or a block start's output is its input. A block end's input
                // gradient is its output gradient; the block start below reads it in place.
                let aliased = matches!(l.kind, LayerKind::Flatten | LayerKind::ResBegin);
                let grad_aliased = aliased || l.kind == LayerKind::ResEnd;
                let len = batch * l.output_shape().len();
                values.push((!aliased).then(|| buffer(&format!("network value {}", k + 1), len)));
                // The gradient at the output is written by the head, at every other layer by
                // the layer above.
                grads.push(
                    (!grad_aliased || k + 1 == layers).then(|| buffer(&format!("network gradient {}", k + 1), len)),
                );
            }
            NetBuffers {
                params,
                param_grads: buffer("network parameter gradients", net.param_count()),
                values,
                grads,
                input_grads: buffer("network input gradients (discarded)", batch * net.input_dim()),
                batch,
            }
        })
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The network's outputs f, [n, K] from offset 0, as the head reads them (None when the
    /// last layers are flattens of the input itself).
    pub fn output_values(&self) -> Option<&wgpu::Buffer> {
        self.values.iter().rev().find_map(Option::as_ref)
    }

    /// The gradient at the network's outputs, [n, K] from offset 0: dE/df as the head writes it.
    pub fn output_grads(&self) -> &wgpu::Buffer {
        self.grads.last().and_then(Option::as_ref).expect("a network has layers, and its top gradient a buffer")
    }
}

/// Resolves where each layer's input (and its gradient) lives: a buffer of [`NetBuffers`], the
/// caller's slice for layer 0, or (through flatten) the same memory as the layer below.
pub(super) fn regions<'a>(slots: &'a [Option<wgpu::Buffer>], first: Slice<'a>) -> Vec<Slice<'a>> {
    let mut out = vec![first];
    for slot in &slots[1..] {
        let next = slot.as_ref().map_or(*out.last().expect("non-empty"), Slice::whole);
        out.push(next);
    }
    out
}

/// The prepared ops of one network pass over `n` points.
pub struct GpuNetwork {
    ops: Vec<NnOp>,
    head: HeadKernel,
    /// ops[..forward] run before the head, the rest after it.
    forward: usize,
    n: usize,
}

impl GpuNetwork {
    /// A pass over the n points at `x` ([n, d]) that writes their energies to `energies` ([n])
    /// and, when `dx` is given, dE/dx to it ([n, d]) (with neither it nor `param_grads`, only the
    /// forward pass and the head run); with `param_grads`, dE/dθ summed over the
    /// points into `bufs.param_grads`, overwriting it (passes over several chunks of one batch
    /// need summing by the caller). Energies and gradients come multiplied by `weight` (1 for
    /// the network itself; a term's weight in a sum of networks, [`super::gpu_sum`]): the head
    /// scales them, so the backward pass carries it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kernels: &NnKernels,
        net: &Network,
        bufs: &NetBuffers,
        n: usize,
        x: Slice,
        energies: Slice,
        dx: Option<Slice>,
        param_grads: bool,
        weight: f32,
    ) -> Result<Self> {
        let ctx = kernels.context().clone();
        if n == 0 || n > bufs.batch {
            return Err(Error::invalid("network batch", format!("{n} points, buffers made for {}", bufs.batch)));
        }
        let values = regions(&bufs.values, x);
        let grads = regions(&bufs.grads, dx.unwrap_or(Slice::whole(&bufs.input_grads)));
        let offsets = net.param_offsets();
        let mut ops = Vec::new();
        let layers = &net.layers;
        // Forward.
        let mut saved = Vec::new();
        let mut k = 0;
        while k < layers.len() {
            let l = &layers[k];
            if residual::is_marker(&l.kind) {
                ops.extend(marker_forward(kernels, l.kind, k, n * l.output_shape().len(), &values, &mut saved)?);
                k += 1;
                continue;
            }
            let w = Slice::new(&bufs.params, offsets[k]);
            let bias = (!l.bias.is_empty()).then(|| Slice::new(&bufs.params, offsets[k] + l.weight.len()));
            let fused_act = match layers.get(k + 1).map(|n| n.kind) {
                Some(LayerKind::Act(a)) if matches!(l.kind, LayerKind::Linear { .. } | LayerKind::Conv2d { .. }) => {
                    Some(a)
                }
                _ => None,
            };
            let (epi, out) = match fused_act {
                Some(a) => (Epilogue { bias, act: Some(a), pre_act: Some(values[k + 1]) }, values[k + 2]),
                None => (Epilogue { bias, act: None, pre_act: None }, values[k + 1]),
            };
            match (l.kind, l.input) {
                (LayerKind::Linear { outputs, .. }, s) => {
                    ops.push(kernels.linear_forward(values[k], w, out, n, s.len(), outputs, epi)?)
                }
                (LayerKind::Conv2d { .. }, _) => {
                    ops.push(kernels.conv2d_forward(&l.conv_geom(n).expect("conv"), values[k], w, out, epi)?)
                }
                (LayerKind::Act(a), s) => {
                    ops.push(kernels.activation_forward(a, values[k], values[k + 1], n * s.len())?)
                }
                (LayerKind::Flatten, _) => {}
                (LayerKind::AvgPool2d { kernel }, Shape::Image { c, h, w }) => {
                    ops.push(kernels.avgpool2d_forward(n * c, h, w, kernel, values[k], values[k + 1])?)
                }
                (LayerKind::AvgPool2d { .. }, Shape::Flat(_)) => unreachable!("rejected by the shape rule"),
                (LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd, _) => unreachable!("handled above"),
            }
            k += if fused_act.is_some() { 2 } else { 1 };
        }
        let forward = ops.len();
        // Head.
        let f = values[layers.len()];
        let d_out = grads[layers.len()];
        let params = HeadParams { weight, ..HeadParams::new(net, n, f, energies, d_out) };
        let head = HeadKernel::new(&ctx, "head", &params, [f.buffer, energies.buffer, d_out.buffer])?;
        // Backward: parameter gradients, then the input gradient, top layer first. A layer's
        // input gradient is needed for dE/dx, or (above the bottom layer) for the parameter
        // gradients below it; an energies-only pass has no backward at all.
        let needs_dx = |k: usize| dx.is_some() || (param_grads && k > 0);
        let mut saved = Vec::new();
        for (k, l) in layers.iter().enumerate().rev() {
            if residual::is_marker(&l.kind) {
                let len = n * l.input.len();
                ops.extend(marker_backward(kernels, bufs, l.kind, k, len, &grads, &mut saved, needs_dx(k))?);
                continue;
            }
            let w = Slice::new(&bufs.params, offsets[k]);
            let dw = Slice::new(&bufs.param_grads, offsets[k]);
            let db = (!l.bias.is_empty()).then(|| Slice::new(&bufs.param_grads, offsets[k] + l.weight.len()));
            match (l.kind, l.input) {
                (LayerKind::Linear { outputs, .. }, s) => {
                    if param_grads {
                        ops.push(kernels.linear_backward_params(
                            values[k],
                            grads[k + 1],
                            dw,
                            db,
                            n,
                            s.len(),
                            outputs,
                            false,
                        )?);
                    }
                    if needs_dx(k) {
                        ops.push(kernels.linear_backward_input(grads[k + 1], w, grads[k], n, s.len(), outputs)?);
                    }
                }
                (LayerKind::Conv2d { .. }, _) => {
                    let g = l.conv_geom(n).expect("conv");
                    if param_grads {
                        ops.push(kernels.conv2d_backward_params(&g, values[k], grads[k + 1], dw, db, false)?);
                    }
                    if needs_dx(k) {
                        ops.push(kernels.conv2d_backward_input(&g, grads[k + 1], w, grads[k])?);
                    }
                }
                (LayerKind::Act(a), s) if needs_dx(k) => {
                    ops.push(kernels.activation_backward(a, values[k], grads[k + 1], grads[k], n * s.len())?)
                }
                (LayerKind::AvgPool2d { kernel }, Shape::Image { c, h, w }) if needs_dx(k) => {
                    ops.push(kernels.avgpool2d_backward(n * c, h, w, kernel, grads[k + 1], grads[k])?)
                }
                _ => {}
            }
        }
        Ok(Self { ops, head, forward, n })
    }

    /// Records the pass: forward, head, backward.
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        self.record_forward(pass);
        self.record_backward(pass);
    }

    /// Records the forward ops and the head: energies, and dE/df in [`NetBuffers::output_grads`]
    /// (which a caller may reweight before [`GpuNetwork::record_backward`]).
    pub fn record_forward(&self, pass: &mut wgpu::ComputePass) {
        for op in &self.ops[..self.forward] {
            op.record(pass);
        }
        self.head.record(pass, self.n);
    }

    /// Records the backward ops, from the gradient at the outputs down.
    pub fn record_backward(&self, pass: &mut wgpu::ComputePass) {
        for op in &self.ops[self.forward..] {
            op.record(pass);
        }
    }

    pub fn dispatches(&self) -> usize {
        1 + self.ops.iter().map(NnOp::dispatches).sum::<usize>()
    }
}

/// The forward op of residual marker `k` ([`residual`]) over `len` output values: `values`
/// are the layers' inputs, `saved` the indices of the saved values. A block start is its
/// input's memory (no op); a projection start copies the skip; a block end adds.
pub(super) fn marker_forward(
    kernels: &NnKernels,
    kind: LayerKind,
    k: usize,
    len: usize,
    values: &[Slice],
    saved: &mut Vec<usize>,
) -> Result<Option<NnOp>> {
    let pop = |saved: &mut Vec<usize>| saved.pop().expect("checked by the shape rule");
    Ok(match kind {
        LayerKind::ResBegin => {
            saved.push(k);
            None
        }
        LayerKind::ResProj => {
            let skip = pop(saved);
            saved.push(k);
            Some(kernels.add_copy(values[skip], None, values[k + 1], len)?)
        }
        LayerKind::ResEnd => {
            let other = pop(saved);
            Some(kernels.add_copy(values[k], Some(values[other]), values[k + 1], len)?)
        }
        _ => unreachable!("not a residual marker"),
    })
}

/// The reverse op of residual marker `k` over `len` input values (`grads`: the layers' input
/// gradients, `saved`: the indices of the saved gradients), as `residual::GradStack` does it.
/// A block end's input gradient is its output's memory ([`NetBuffers`]) unless it is the top
/// layer; a block start adds the saved gradient in place.
#[allow(clippy::too_many_arguments)]
pub(super) fn marker_backward(
    kernels: &NnKernels,
    bufs: &NetBuffers,
    kind: LayerKind,
    k: usize,
    len: usize,
    grads: &[Slice],
    saved: &mut Vec<usize>,
    needs_dx: bool,
) -> Result<Option<NnOp>> {
    Ok(match kind {
        LayerKind::ResEnd => {
            saved.push(k + 1);
            let own = bufs.grads[k + 1].is_some();
            (own && needs_dx).then(|| kernels.add_copy(grads[k + 1], None, grads[k], len)).transpose()?
        }
        LayerKind::ResProj => {
            let top = saved.last_mut().expect("checked by the shape rule");
            let body = std::mem::replace(top, k + 1);
            needs_dx.then(|| kernels.add_copy(grads[body], None, grads[k], len)).transpose()?
        }
        LayerKind::ResBegin => {
            let other = saved.pop().expect("checked by the shape rule");
            needs_dx.then(|| kernels.add_copy(grads[k + 1], Some(grads[other]), grads[k], len)).transpose()?
        }
        _ => unreachable!("not a residual marker"),
    })
}

#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        HeadParams,
        "nn/nn_head.wgsl",
        "HeadParams",
        [n, k, kind, class_index, f_off, e_off, d_off, order, s1a, s1b, s2, weight]
    )]
}

/// Energies [n] and input gradients [n, d] of the points `xs` ([n, d]) through the layer
/// kernels, in chunks that fit the device; the GPU twin of [`Network::add_energy_grad_batch`].
pub fn energy_grad_batch(ctx: &Arc<GpuContext>, net: &Network, xs: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
    let (e, g, _) = evaluate_batch(ctx, net, xs, true, false)?;
    Ok((e, g))
}

/// Energies [n] of the points `xs`: forward passes and the head only.
pub fn energies_batch(ctx: &Arc<GpuContext>, net: &Network, xs: &[f32]) -> Result<Vec<f32>> {
    Ok(evaluate_batch(ctx, net, xs, false, false)?.0)
}

/// The network outputs f [n, K] of the points `xs` (a classifier's logits): forward only.
pub fn outputs_batch(ctx: &Arc<GpuContext>, net: &Network, xs: &[f32]) -> Result<Vec<f32>> {
    Ok(evaluate_batch(ctx, net, xs, false, true)?.2)
}

/// Energies, (if asked) input gradients and (if asked) outputs of `xs`, chunk by chunk.
fn evaluate_batch(
    ctx: &Arc<GpuContext>,
    net: &Network,
    xs: &[f32],
    want_grads: bool,
    want_outputs: bool,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let d = net.input_dim();
    if d == 0 || !xs.len().is_multiple_of(d) {
        return Err(Error::invalid(
            "points",
            format!("{} values do not form rows of the network's {d} inputs", xs.len()),
        ));
    }
    let (n, k) = (xs.len() / d, net.outputs);
    let binding = ctx.limits().max_storage_buffer_binding_size as usize / (4 * d);
    let chunk = max_batch(ctx, net).min(binding).clamp(1, 4096);
    let kernels = NnKernels::new(ctx.clone());
    let bufs = NetBuffers::new(ctx, net, chunk.min(n.max(1)))?;
    let outputs_buffer = match want_outputs {
        true => Some(bufs.output_values().ok_or_else(|| Error::invalid("network", "has no layer output to read"))?),
        false => None,
    };
    let (mut energies, mut grads, mut outputs) = (Vec::with_capacity(n), Vec::with_capacity(n * d), Vec::new());
    for first in (0..n).step_by(chunk) {
        let m = chunk.min(n - first);
        let grad_len = if want_grads { m * d } else { 0 };
        let (x, e, g) = ctx.scoped("network energies", || {
            let x = ctx.storage_buffer("points", bytemuck::cast_slice(&xs[first * d..(first + m) * d]));
            (
                x,
                ctx.zeroed_storage_buffer("energies", 4 * m as u64),
                ctx.zeroed_storage_buffer("gradients", 4 * grad_len as u64),
            )
        })?;
        let dx = want_grads.then(|| Slice::whole(&g));
        let pass = GpuNetwork::new(&kernels, net, &bufs, m, Slice::whole(&x), Slice::whole(&e), dx, false, 1.0)?;
        ctx.submit_pass("network energies", |p| pass.record(p))?;
        let mut parts = vec![(&e, 4 * m as u64), (&g, 4 * grad_len as u64)];
        if let Some(o) = outputs_buffer {
            parts.push((o, (4 * m * k) as u64));
        }
        let out = ctx.read_buffers(&parts)?;
        energies.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&out[0]));
        grads.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&out[1]));
        if let Some(o) = out.get(2) {
            outputs.extend(bytemuck::pod_collect_to_vec::<u8, f32>(o));
        }
    }
    Ok((energies, grads, outputs))
}
