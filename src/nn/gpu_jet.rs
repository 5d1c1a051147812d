//! The jets of [`super::jet`] on the GPU: a network's Taylor jet of order 1 or 2 over a batch,
//! the head's jet with the loss's seeds (`head_jet` in `shaders/nn/nn_head.wgsl`), and the reverse pass to
//! the parameter gradient, as prepared layer ops on the stacked rows [y; y'; y''].
//! Linear layers run the ordinary kernels (the bias only on the primal block, its gradient
//! from that block alone); activations the jet kernels of `shaders/nn/nn_elementwise.wgsl`.
//! CPU twin: [`super::jet`].

use super::gpu::{Epilogue, NnKernels, NnOp, Slice};
use super::gpu_net::{HeadKernel, HeadParams, NetBuffers, marker_backward, marker_forward, regions};
use super::{LayerKind, Network, NetworkInternals, Shape, residual};
use crate::{Error, Result};

/// The seeds of the loss c·(E, E', E'') per point: c = (0, e1_scale E' + e1_shift, e2).
/// DSM: (0, 1, 0); SSM: (1 / B, 0, -1 / B).
#[derive(Clone, Copy, Debug)]
pub struct JetSeeds {
    pub e1_scale: f32,
    pub e1_shift: f32,
    pub e2: f32,
}

/// The prepared ops of one jet pass.
pub struct GpuJet {
    forward: Vec<NnOp>,
    head: HeadKernel,
    backward: Vec<NnOp>,
    n: usize,
}

/// `s` moved on by `floats`.
fn at<'a>(s: Slice<'a>, floats: usize) -> Slice<'a> {
    Slice::new(s.buffer, s.offset + floats)
}

impl GpuJet {
    /// A jet of `order` over the n points whose stacked rows [x; v; (0)] lie at `x`
    /// ([(order + 1) n, d]): writes (E, E', E'') of every point to `energies` ([n, 3]) and the
    /// parameter gradient of sum_j c_j·(E, E', E'')_j into `bufs.param_grads` (overwriting it).
    /// `bufs` must hold (order + 1) n points.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kernels: &NnKernels,
        net: &Network,
        bufs: &NetBuffers,
        n: usize,
        order: usize,
        x: Slice,
        energies: Slice,
        seeds: JetSeeds,
    ) -> Result<Self> {
        let ctx = kernels.context().clone();
        let rows = (order + 1) * n;
        if !(order == 1 || order == 2) || n == 0 || rows > bufs.batch() {
            return Err(Error::invalid(
                "network jet",
                format!("order {order} over {n} points needs buffers for {rows} rows, made for {}", bufs.batch()),
            ));
        }
        let values = regions(&bufs.values, x);
        let grads = regions(&bufs.grads, Slice::whole(&bufs.input_grads));
        let offsets = net.param_offsets();
        let plain = Epilogue { bias: None, act: None, pre_act: None };
        let mut forward = Vec::new();
        // The markers copy and add: on the stacked rows they are their own jets.
        let mut saved = Vec::new();
        for (k, l) in net.layers.iter().enumerate() {
            if residual::is_marker(&l.kind) {
                forward.extend(marker_forward(kernels, l.kind, k, rows * l.output_shape().len(), &values, &mut saved)?);
                continue;
            }
            let (len_in, len_out) = (l.input.len(), l.output_shape().len());
            let w = Slice::new(&bufs.params, offsets[k]);
            let bias = (!l.bias.is_empty()).then(|| Slice::new(&bufs.params, offsets[k] + l.weight.len()));
            let (x, y) = (values[k], values[k + 1]);
            match (l.kind, l.input) {
                (LayerKind::Linear { outputs, .. }, s) => {
                    forward.push(kernels.linear_forward(x, w, y, n, s.len(), outputs, Epilogue { bias, ..plain })?);
                    forward.push(kernels.linear_forward(
                        at(x, n * len_in),
                        w,
                        at(y, n * len_out),
                        order * n,
                        s.len(),
                        outputs,
                        plain,
                    )?);
                }
                (LayerKind::Conv2d { .. }, _) => {
                    forward.push(kernels.conv2d_forward(
                        &l.conv_geom(n).expect("conv"),
                        x,
                        w,
                        y,
                        Epilogue { bias, ..plain },
                    )?);
                    let tangents = l.conv_geom(order * n).expect("conv");
                    forward.push(kernels.conv2d_forward(&tangents, at(x, n * len_in), w, at(y, n * len_out), plain)?);
                }
                (LayerKind::Act(a), _) => forward.push(kernels.activation_jet_forward(a, x, y, n * len_in, order)?),
                (LayerKind::Flatten, _) => {}
                (LayerKind::AvgPool2d { kernel }, Shape::Image { c, h, w }) => {
                    forward.push(kernels.avgpool2d_forward(rows * c, h, w, kernel, x, y)?)
                }
                (LayerKind::AvgPool2d { .. }, Shape::Flat(_)) => unreachable!("rejected by the shape rule"),
                (LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd, _) => unreachable!("handled above"),
            }
        }
        let (f, d_out) = (values[net.layers.len()], grads[net.layers.len()]);
        let mut params = HeadParams::new(net, n, f, energies, d_out);
        (params.order, params.s1a, params.s1b, params.s2) = (order as u32, seeds.e1_scale, seeds.e1_shift, seeds.e2);
        let head = HeadKernel::new(&ctx, "head_jet", &params, [f.buffer, energies.buffer, d_out.buffer])?;
        // Reverse: no layer below the first with parameters needs its adjoints.
        let first_param = net.layers.iter().position(|l| l.param_count() > 0).unwrap_or(0);
        let mut backward = Vec::new();
        let mut saved = Vec::new();
        for (k, l) in net.layers.iter().enumerate().rev().take_while(|(k, _)| *k >= first_param) {
            let needs_dx = k > first_param;
            if residual::is_marker(&l.kind) {
                let len = rows * l.input.len();
                backward.extend(marker_backward(kernels, bufs, l.kind, k, len, &grads, &mut saved, needs_dx)?);
                continue;
            }
            let w = Slice::new(&bufs.params, offsets[k]);
            let dw = Slice::new(&bufs.param_grads, offsets[k]);
            let db = (!l.bias.is_empty()).then(|| Slice::new(&bufs.param_grads, offsets[k] + l.weight.len()));
            let (x, dy, dx) = (values[k], grads[k + 1], grads[k]);
            match (l.kind, l.input) {
                (LayerKind::Linear { outputs, .. }, s) => {
                    backward.push(kernels.linear_backward_params(x, dy, dw, None, rows, s.len(), outputs, false)?);
                    if let Some(db) = db {
                        backward.push(kernels.bias_grad(dy, db, n, outputs, 1)?);
                    }
                    if needs_dx {
                        backward.push(kernels.linear_backward_input(dy, w, dx, rows, s.len(), outputs)?);
                    }
                }
                (LayerKind::Conv2d { out_c, .. }, _) => {
                    let g = l.conv_geom(rows).expect("conv");
                    backward.push(kernels.conv2d_backward_params(&g, x, dy, dw, None, false)?);
                    if let Some(db) = db {
                        backward.push(kernels.bias_grad(dy, db, n, out_c, g.out_h() * g.out_w())?);
                    }
                    if needs_dx {
                        backward.push(kernels.conv2d_backward_input(&g, dy, w, dx)?);
                    }
                }
                (LayerKind::Act(a), s) if needs_dx => {
                    backward.push(kernels.activation_jet_backward(a, x, dy, dx, n * s.len(), order)?)
                }
                (LayerKind::AvgPool2d { kernel }, Shape::Image { c, h, w }) if needs_dx => {
                    backward.push(kernels.avgpool2d_backward(rows * c, h, w, kernel, dy, dx)?)
                }
                _ => {}
            }
        }
        Ok(Self { forward, head, backward, n })
    }

    /// Records the jet, the head's jet and the reverse pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        self.forward.iter().for_each(|op| op.record(pass));
        self.head.record(pass, self.n);
        self.backward.iter().for_each(|op| op.record(pass));
    }

    pub fn dispatches(&self) -> usize {
        1 + self.forward.iter().chain(&self.backward).map(NnOp::dispatches).sum::<usize>()
    }
}
