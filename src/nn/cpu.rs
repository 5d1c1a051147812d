//! The CPU executor of a network on a batch of points: every layer through [`super::ops`]
//! (sgemm, im2col + sgemm), activations with their slopes kept for the backward pass. It serves
//! [`Network`]s and MLP energies alike (both as a [`NetView`]). Single-threaded: callers
//! parallelise over blocks of points.
//!
//! Inside the tape, images are kept channel-major over the batch ([`Layout::Cnhw`]), so each
//! convolution is GEMMs on rows in place. Points come in and gradients go out as
//! [n, c, h, w]; Flatten turns the planes into rows of [n, c h w], as PyTorch's does, and every
//! network ends on such rows.

use super::{Head, LayerKind, LayerView, NetView, Shape, ops, ops::Layout, residual};

/// What a forward pass keeps for the backward pass, and the backward pass's buffers; reused
/// from call to call so that sampler steps do not allocate.
#[derive(Default)]
pub struct Tape {
    /// values[k] = the input of layer k for every point ([n, len], images as the module doc
    /// says: [`NetView::tape_points`] gives them as points); the last is the output f [n, K].
    values: Vec<Vec<f32>>,
    /// slopes[k] = act'(input of layer k) for activation layers, empty otherwise.
    slopes: Vec<Vec<f32>>,
    /// Gradients going down; after `NetView::backward_batch` `grads[0]` holds dL/dx.
    grads: [Vec<f32>; 2],
    /// Valid length of `grads[0]` (the buffers only grow).
    input_len: usize,
    /// Residual blocks: indices in `values` of the saved tensors, and the saved gradients.
    saved: Vec<usize>,
    saved_grads: residual::GradStack<f32>,
    n: usize,
}

impl Tape {
    /// The network outputs f [n, K].
    pub fn outputs(&self) -> &[f32] {
        self.values.last().map_or(&[], Vec::as_slice)
    }

    /// dL/dx [n, d] from the last backward pass that asked for it.
    pub fn input_grad(&self) -> &[f32] {
        &self.grads[0][..self.input_len]
    }
}

thread_local! {
    /// The tape of `NetView::add_energy_grad_batch`, kept per thread.
    static TAPE: std::cell::Cell<Tape> = std::cell::Cell::new(Tape::default());
}

impl LayerView<'_> {
    /// y = layer(x) on n points; `slope` receives act'(x) for activation layers.
    fn forward_batch(&self, x: &[f32], n: usize, y: &mut Vec<f32>, slope: &mut Vec<f32>) {
        let out_len = self.output_shape().len();
        y.resize(n * out_len, 0.0);
        let y = y.as_mut_slice();
        let bias = (!self.bias.is_empty()).then_some(self.bias);
        match (self.kind, self.input) {
            (LayerKind::Linear { outputs, .. }, s) => ops::linear_forward(x, self.weight, bias, n, s.len(), outputs, y),
            (LayerKind::Conv2d { .. }, _) => {
                ops::conv2d_forward(&self.conv_geom(n).expect("conv"), Layout::Cnhw, x, self.weight, bias, y)
            }
            (LayerKind::Act(a), _) => {
                slope.resize(y.len(), 0.0);
                a.eval_batch(x, y, slope);
            }
            (LayerKind::Flatten, s) => to_points(s, n, x, y),
            (LayerKind::AvgPool2d { kernel }, Shape::Image { c, h, w }) => {
                ops::avgpool2d_forward(n * c, h, w, kernel, x, y)
            }
            (LayerKind::AvgPool2d { .. }, Shape::Flat(_)) => unreachable!("rejected by the shape rule"),
            (LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd, _) => {
                unreachable!("markers run in NetView::forward_batch")
            }
        }
    }

    /// dx = dL/dx from dy = dL/dy; adds dL/d(weight, bias) into `dp` when given. `need_dx`
    /// false skips the input gradient (the first layer during training).
    #[allow(clippy::too_many_arguments)]
    fn backward_batch(
        &self,
        x: &[f32],
        slope: &[f32],
        dy: &[f32],
        n: usize,
        dx: &mut Vec<f32>,
        dp: Option<&mut [f32]>,
        need_dx: bool,
    ) -> usize {
        let in_len = self.input.len();
        // The gradient buffers take turns at every layer: grow them only (no refill per call).
        if dx.len() < n * in_len {
            dx.resize(n * in_len, 0.0);
        }
        let dx = &mut dx[..n * in_len];
        let nw = self.weight.len();
        match (self.kind, self.input) {
            (LayerKind::Linear { outputs, .. }, _) => {
                if let Some(dp) = dp {
                    let (dw, db) = dp.split_at_mut(nw);
                    ops::linear_backward_params(x, dy, n, in_len, outputs, dw, (!db.is_empty()).then_some(db));
                }
                if need_dx {
                    ops::linear_backward_input(dy, self.weight, n, in_len, outputs, dx);
                }
            }
            (LayerKind::Conv2d { .. }, _) => {
                let g = self.conv_geom(n).expect("conv");
                if let Some(dp) = dp {
                    let (dw, db) = dp.split_at_mut(nw);
                    ops::conv2d_backward_params(&g, Layout::Cnhw, x, dy, dw, (!db.is_empty()).then_some(db));
                }
                if need_dx {
                    ops::conv2d_backward_input(&g, Layout::Cnhw, dy, self.weight, dx);
                }
            }
            (LayerKind::Act(_), _) => dx.iter_mut().zip(dy).zip(slope).for_each(|((d, g), s)| *d = g * s),
            (LayerKind::Flatten, s) => to_planes(s, n, dy, dx),
            (LayerKind::AvgPool2d { kernel }, Shape::Image { c, h, w }) => {
                ops::avgpool2d_backward(n * c, h, w, kernel, dy, dx)
            }
            (LayerKind::AvgPool2d { .. }, Shape::Flat(_)) => unreachable!("rejected by the shape rule"),
            (LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd, _) => {
                unreachable!("markers run in NetView::backward_batch")
            }
        }
        n * in_len
    }
}

/// Whether values of this shape lie differently in the tape and as points: images of more
/// than one channel.
fn is_planar(shape: Shape) -> bool {
    matches!(shape, Shape::Image { c, .. } if c > 1)
}

/// `n` values of `shape` as the tape keeps them, from points [n, len] (a copy for flat shapes).
fn to_planes(shape: Shape, n: usize, points: &[f32], planes: &mut [f32]) {
    match shape {
        Shape::Image { c, h, w } => Layout::Nchw.convert(Layout::Cnhw, n, c, h * w, points, planes),
        Shape::Flat(len) => planes[..n * len].copy_from_slice(&points[..n * len]),
    }
}

/// The inverse of [`to_planes`].
fn to_points(shape: Shape, n: usize, planes: &[f32], points: &mut [f32]) {
    match shape {
        Shape::Image { c, h, w } => Layout::Cnhw.convert(Layout::Nchw, n, c, h * w, planes, points),
        Shape::Flat(len) => points[..n * len].copy_from_slice(&planes[..n * len]),
    }
}

impl NetView<'_> {
    /// Points per block of `NetView::add_energy_grad_batch`: about 4 MiB of tape.
    fn block_rows(&self) -> usize {
        let per_point: usize = self.layers.iter().map(|l| 2 * l.output_shape().len()).sum::<usize>() + self.input_dim();
        ((1 << 20) / per_point.max(1)).clamp(1, 256)
    }

    /// Forward pass on n points xs [n, d]; the tape keeps what the backward pass needs.
    pub fn forward_batch(&self, xs: &[f32], n: usize, tape: &mut Tape) {
        assert_eq!(xs.len(), n * self.input_dim(), "forward_batch: xs is not [n, input_dim]");
        let layers = self.layers.len();
        tape.values.resize_with(layers + 1, Vec::new);
        tape.slopes.resize_with(layers, Vec::new);
        tape.n = n;
        tape.values[0].resize(xs.len(), 0.0);
        to_planes(self.input, n, xs, &mut tape.values[0]);
        tape.saved.clear();
        for (k, l) in self.layers.iter().enumerate() {
            if residual::is_marker(&l.kind) {
                residual::forward(l.kind, k, &mut tape.values, &mut tape.saved);
                continue;
            }
            let (done, rest) = tape.values.split_at_mut(k + 1);
            l.forward_batch(&done[k], n, &mut rest[0], &mut tape.slopes[k]);
        }
    }

    /// The taped input of layer k (k = layers: the output) as points [n, len].
    pub fn tape_points(&self, tape: &Tape, k: usize) -> Vec<f32> {
        let values = &tape.values[k];
        // The outputs are flat (the shape rule ends every network on a dense layer's rows).
        let Some(layer) = self.layers.get(k) else { return values.clone() };
        let mut points = vec![0.0; values.len()];
        to_points(layer.input, tape.n, values, &mut points);
        points
    }

    /// Energies of the taped points (es [n], overwritten) and dE/df [n, K] from the head, the
    /// batched twin of [`Head::energy_ref`].
    pub fn head_batch(&self, tape: &Tape, es: &mut [f32], d_out: &mut Vec<f32>) {
        let k = self.outputs;
        d_out.resize(tape.n * k, 0.0);
        for ((e, f), d) in es.iter_mut().zip(tape.outputs().chunks_exact(k)).zip(d_out.chunks_exact_mut(k)) {
            match self.head {
                Head::F => (*e, d[0]) = (f[0], 1.0),
                Head::NegF => (*e, d[0]) = (-f[0], -1.0),
                Head::Class(y) => {
                    d.fill(0.0);
                    (*e, d[y]) = (-f[y], -1.0);
                }
                Head::LogSumExp => {
                    let m = f.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    let s: f32 = f.iter().map(|&v| (v - m).exp()).sum();
                    d.iter_mut().zip(f).for_each(|(d, &v)| *d = -((v - m).exp() / s));
                    *e = -(m + s.ln());
                }
            }
        }
    }

    /// Back-propagates d_out = dL/df [n, K] through the tape: dL/dx lands in
    /// [`Tape::input_grad`] when `need_dx`; dL/dθ (packed as [`super::NetworkInternals::pack_params`]) is added
    /// into `param_grads` when given.
    pub fn backward_batch(&self, tape: &mut Tape, d_out: &[f32], param_grads: Option<&mut [f32]>, need_dx: bool) {
        let n = tape.n;
        let [mut dy, mut dx] = std::mem::take(&mut tape.grads);
        if dy.len() < d_out.len() {
            dy.resize(d_out.len(), 0.0);
        }
        dy[..d_out.len()].copy_from_slice(d_out);
        let mut valid = d_out.len();
        tape.saved_grads.clear();
        let offsets = self.param_offsets();
        let mut grads = param_grads;
        // Below the first parameter layer nothing needs an input gradient unless dL/dx does.
        let first_param = self.layers.iter().position(|l| l.param_count() > 0).unwrap_or(0);
        for (k, l) in self.layers.iter().enumerate().rev() {
            let dp = grads
                .as_deref_mut()
                .filter(|_| l.param_count() > 0)
                .map(|g| &mut g[offsets[k]..offsets[k] + l.param_count()]);
            let wants_dx = need_dx || k > first_param;
            if !wants_dx && dp.is_none() {
                break;
            }
            valid = if residual::is_marker(&l.kind) {
                let len = n * l.input.len();
                if dx.len() < len {
                    dx.resize(len, 0.0);
                }
                tape.saved_grads.backward(l.kind, &dy[..valid], &mut dx[..len]);
                len
            } else {
                l.backward_batch(&tape.values[k], &tape.slopes[k], &dy[..valid], n, &mut dx, dp, wants_dx)
            };
            std::mem::swap(&mut dx, &mut dy);
        }
        if need_dx && is_planar(self.input) {
            dx.resize(valid, 0.0);
            to_points(self.input, n, &dy[..valid], &mut dx[..valid]);
            std::mem::swap(&mut dx, &mut dy);
        }
        tape.grads = [dy, dx];
        tape.input_len = valid;
    }

    /// Batched energy and input gradient for n = es.len() points xs [n, d]: adds weight * dE/dx
    /// to gs and weight * E(x) to es, in blocks of points.
    pub fn add_energy_grad_batch(&self, xs: &[f32], gs: &mut [f32], es: &mut [f32], weight: f32) {
        let d = self.input_dim();
        assert!(xs.len() == es.len() * d && gs.len() == xs.len(), "add_energy_grad_batch: shapes disagree");
        let rows = self.block_rows();
        let mut tape = TAPE.take();
        let (mut energies, mut d_out) = (Vec::new(), Vec::new());
        for ((x, g), e) in xs.chunks(rows * d).zip(gs.chunks_mut(rows * d)).zip(es.chunks_mut(rows)) {
            let n = e.len();
            self.forward_batch(x, n, &mut tape);
            energies.resize(n, 0.0);
            self.head_batch(&tape, &mut energies, &mut d_out);
            self.backward_batch(&mut tape, &d_out, None, true);
            e.iter_mut().zip(&energies).for_each(|(e, v)| *e += weight * v);
            g.iter_mut().zip(tape.input_grad()).for_each(|(g, v)| *g += weight * v);
        }
        TAPE.set(tape);
    }
}

impl NetView<'_> {
    /// `read(tape)` of forward passes over blocks of points of `xs` ([n, d]), in parallel,
    /// concatenated in point order.
    fn forward_blocks(&self, xs: &[f32], read: impl Fn(&Tape) -> Vec<f32> + Sync) -> Vec<f32> {
        use rayon::prelude::*;
        let d = self.input_dim();
        let blocks: Vec<Vec<f32>> = xs
            .par_chunks(256 * d)
            .map(|block| {
                let mut tape = Tape::default();
                self.forward_batch(block, block.len() / d, &mut tape);
                read(&tape)
            })
            .collect();
        blocks.concat()
    }

    /// The outputs f [n, K] of the points `xs` (a classifier's logits); the CPU twin of
    /// [`super::gpu_net::outputs_batch`].
    pub fn outputs_batch(&self, xs: &[f32]) -> Vec<f32> {
        let k = self.outputs;
        self.forward_blocks(xs, |tape| tape.outputs()[..tape.n * k].to_vec())
    }

    /// The energies [n] of the points `xs`, forward passes and the head only; the CPU twin of
    /// [`super::gpu_net::energies_batch`].
    pub fn energies_batch(&self, xs: &[f32]) -> Vec<f32> {
        self.forward_blocks(xs, |tape| {
            let (mut es, mut d_out) = (vec![0.0; tape.n], Vec::new());
            self.head_batch(tape, &mut es, &mut d_out);
            es
        })
    }
}
