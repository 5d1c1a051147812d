//! Taylor jets through a network, and back-propagation through them: the exact
//! forward-over-reverse products that score matching trains with.
//!
//! A jet of order r along a direction v carries, for every value y of the forward pass, its
//! derivatives along the input line x + t v: y, y' = dy/dt and (r = 2) y'' = d²y/dt² at t = 0.
//! So the energy's jet is E, E' = vᵀ∇ₓE and E'' = vᵀ∇²ₓE v. A loss c0 E + c1 E' + c2 E''
//! (with c per point, held fixed) then has the parameter gradient of one reverse pass through
//! the jet computation: denoising score matching needs ∇θ(vᵀ∇ₓE) (r = 1), sliced score
//! matching ∇θ(vᵀ∇²ₓE v) (r = 2).
//!
//! Every layer but the activations is linear in its input, so its jet is the layer applied to
//! the stacked rows [y; y'; y''] of the batch — the bias on the primal rows only — and its
//! reverse pass is the layer's usual backward pass over the stacked adjoints (the weight
//! gradient sums over all rows, the bias gradient over the primal rows). Activations a = σ(z):
//! a' = σ'z', a'' = σ''z'² + σ'z''; their reverse pass needs σ'''. The heads have their own
//! jets ([`Head::jet`]). Rows of a stacked tensor: [order + 1 blocks][n points][values].

use super::{Head, LayerKind, LayerView, NetView, Shape, ops, residual};
use crate::num::Real;

/// A jet forward pass kept for the reverse pass.
#[derive(Default)]
pub struct JetTape {
    order: usize,
    n: usize,
    /// values[k] = the stacked input of layer k; the last is the stacked output f.
    values: Vec<Vec<f32>>,
    /// Activation layers: [σ', σ'', σ'''] of the primal input, each [n, len]; empty otherwise.
    derivs: Vec<Vec<f32>>,
    /// (E, E', E'') of every point (E'' is meaningful for order 2 only).
    pub energies: Vec<[f32; 3]>,
}

impl JetTape {
    #[cfg(any(test, feature = "internals"))]
    pub fn order(&self) -> usize {
        self.order
    }
}

impl Head {
    /// The energy's jet [E, E', E''] from the outputs' jet (f, f', f'' of one point; f'' may be
    /// zeros for order 1) and, given seeds c, the adjoints d(c·[E, E', E''])/d(f, f', f'').
    pub fn jet<T: Real>(&self, f: [&[T]; 3], c: [T; 3], adj: [&mut [T]; 3]) -> [T; 3] {
        let [f0, f1, f2] = f;
        let [a0, a1, a2] = adj;
        let single = |k: usize, sign: T, a0: &mut [T], a1: &mut [T], a2: &mut [T]| {
            a0.fill(T::zero());
            a1.fill(T::zero());
            a2.fill(T::zero());
            (a0[k], a1[k], a2[k]) = (sign * c[0], sign * c[1], sign * c[2]);
            [sign * f0[k], sign * f1[k], sign * f2[k]]
        };
        let one = T::from_f32(1.0);
        match *self {
            Head::F => single(0, one, a0, a1, a2),
            Head::NegF => single(0, -one, a0, a1, a2),
            Head::Class(y) => single(y, -one, a0, a1, a2),
            Head::LogSumExp => {
                // p = softmax f; E = -lse f, E' = -p·f', E'' = -(f'ᵀ J f' + p·f'') with
                // J = diag p - p pᵀ the Hessian of lse; J f' = p ⊙ (f' - m), m = p·f'.
                let (e0, dlse) = self.energy_ref(f0);
                let p: Vec<T> = dlse.iter().map(|&d| -d).collect();
                let dot = |u: &[T]| u.iter().zip(&p).fold(T::zero(), |s, (&a, &b)| s + a * b);
                let (m, m2) = (dot(f1), dot(f2));
                let s2 = f1.iter().zip(&p).fold(T::zero(), |s, (&v, &pi)| s + pi * v * v);
                let two = T::from_f32(2.0);
                for k in 0..p.len() {
                    let jf1 = p[k] * (f1[k] - m);
                    let jf2 = p[k] * (f2[k] - m2);
                    // d(f'ᵀ J f')/df_k: the third derivative of lse contracted with f' twice.
                    let d_quad = p[k] * (f1[k] * f1[k] - s2) - two * m * jf1;
                    a2[k] = -c[2] * p[k];
                    a1[k] = -c[1] * p[k] - c[2] * two * jf1;
                    a0[k] = -c[0] * p[k] - c[1] * jf1 - c[2] * (d_quad + jf2);
                }
                [e0, -m, -(s2 - m * m + m2)]
            }
        }
    }
}

impl LayerView<'_> {
    /// Stacked y = layer(x) of (order + 1) blocks of n points.
    fn jet_forward(&self, x: &[f32], n: usize, order: usize, y: &mut Vec<f32>, derivs: &mut Vec<f32>) {
        let (in_len, out_len) = (self.input.len(), self.output_shape().len());
        let rows = (order + 1) * n;
        y.resize(rows * out_len, 0.0);
        let (xp, xt) = x.split_at(n * in_len);
        let (yp, yt) = y.split_at_mut(n * out_len);
        let bias = (!self.bias.is_empty()).then_some(self.bias);
        match (self.kind, self.input) {
            (LayerKind::Linear { outputs, .. }, _) => {
                ops::linear_forward(xp, self.weight, bias, n, in_len, outputs, yp);
                ops::linear_forward(xt, self.weight, None, order * n, in_len, outputs, yt);
            }
            (LayerKind::Conv2d { .. }, _) => {
                ops::conv2d_forward(&self.conv_geom(n).expect("conv"), ops::Layout::Nchw, xp, self.weight, bias, yp);
                ops::conv2d_forward(
                    &self.conv_geom(order * n).expect("conv"),
                    ops::Layout::Nchw,
                    xt,
                    self.weight,
                    None,
                    yt,
                );
            }
            (LayerKind::Act(a), _) => {
                let len = n * in_len;
                derivs.resize(3 * len, 0.0);
                for i in 0..len {
                    let [s0, s1, s2, s3] = a.derivatives(x[i]);
                    (derivs[i], derivs[len + i], derivs[2 * len + i]) = (s1, s2, s3);
                    y[i] = s0;
                    let z1 = x[len + i];
                    y[len + i] = s1 * z1;
                    if order == 2 {
                        y[2 * len + i] = s2 * z1 * z1 + s1 * x[2 * len + i];
                    }
                }
            }
            (LayerKind::Flatten, _) => y.copy_from_slice(x),
            (LayerKind::AvgPool2d { kernel }, Shape::Image { c, h, w }) => {
                ops::avgpool2d_forward(rows * c, h, w, kernel, x, y)
            }
            (LayerKind::AvgPool2d { .. }, Shape::Flat(_)) => unreachable!("rejected by the shape rule"),
            (LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd, _) => {
                unreachable!("markers run in NetView's jet passes")
            }
        }
    }

    /// Stacked dx from the stacked dy; adds the parameter gradient into `dp` (weight then
    /// bias). `need_dx` false skips the input adjoint (the first layer).
    #[allow(clippy::too_many_arguments)]
    fn jet_backward(
        &self,
        x: &[f32],
        derivs: &[f32],
        dy: &[f32],
        n: usize,
        order: usize,
        dx: &mut Vec<f32>,
        dp: &mut [f32],
        need_dx: bool,
    ) {
        let (in_len, out_len) = (self.input.len(), self.output_shape().len());
        let rows = (order + 1) * n;
        dx.resize(rows * in_len, 0.0);
        let (dw, db) = dp.split_at_mut(self.weight.len());
        // The bias only meets the primal rows: its gradient sums their adjoints per channel.
        let add_bias_grad = |db: &mut [f32], per_channel: usize| {
            for point in dy[..n * out_len].chunks_exact(out_len) {
                for (d, block) in db.iter_mut().zip(point.chunks_exact(per_channel)) {
                    *d += block.iter().sum::<f32>();
                }
            }
        };
        match (self.kind, self.input) {
            (LayerKind::Linear { outputs, .. }, _) => {
                ops::linear_backward_params(x, dy, rows, in_len, outputs, dw, None);
                add_bias_grad(db, 1);
                if need_dx {
                    ops::linear_backward_input(dy, self.weight, rows, in_len, outputs, dx);
                }
            }
            (LayerKind::Conv2d { .. }, _) => {
                let g = self.conv_geom(rows).expect("conv");
                ops::conv2d_backward_params(&g, ops::Layout::Nchw, x, dy, dw, None);
                add_bias_grad(db, g.out_h() * g.out_w());
                if need_dx {
                    ops::conv2d_backward_input(&g, ops::Layout::Nchw, dy, self.weight, dx);
                }
            }
            (LayerKind::Act(_), _) => {
                let len = n * in_len;
                for i in 0..len {
                    let (s1, s2, s3) = (derivs[i], derivs[len + i], derivs[2 * len + i]);
                    let (z1, a0, a1) = (x[len + i], dy[i], dy[len + i]);
                    dx[i] = a0 * s1 + a1 * s2 * z1;
                    dx[len + i] = a1 * s1;
                    if order == 2 {
                        let (z2, a2) = (x[2 * len + i], dy[2 * len + i]);
                        dx[i] += a2 * (s3 * z1 * z1 + s2 * z2);
                        dx[len + i] += 2.0 * a2 * s2 * z1;
                        dx[2 * len + i] = a2 * s1;
                    }
                }
            }
            (LayerKind::Flatten, _) => dx.copy_from_slice(dy),
            (LayerKind::AvgPool2d { kernel }, Shape::Image { c, h, w }) => {
                ops::avgpool2d_backward(rows * c, h, w, kernel, dy, dx)
            }
            (LayerKind::AvgPool2d { .. }, Shape::Flat(_)) => unreachable!("rejected by the shape rule"),
            (LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd, _) => {
                unreachable!("markers run in NetView's jet passes")
            }
        }
    }
}

impl NetView<'_> {
    /// The jet of order 1 or 2 of n points xs [n, d] along the directions vs [n, d] (second
    /// derivative of the input line zero): fills `tape` and its energies (E, E', E'').
    pub fn jet_forward(&self, xs: &[f32], vs: &[f32], order: usize, tape: &mut JetTape) {
        assert!(order == 1 || order == 2, "jets of order 1 or 2");
        let d = self.input_dim();
        assert!(xs.len() == vs.len() && xs.len().is_multiple_of(d), "jet_forward: xs and vs are not [n, d]");
        let n = xs.len() / d;
        let layers = self.layers.len();
        (tape.order, tape.n) = (order, n);
        tape.values.resize_with(layers + 1, Vec::new);
        tape.derivs.resize_with(layers, Vec::new);
        let input = &mut tape.values[0];
        input.clear();
        input.extend_from_slice(xs);
        input.extend_from_slice(vs);
        input.resize((order + 1) * n * d, 0.0);
        // The markers copy and add, linear maps: on the stacked rows they are their own jets.
        let mut saved = Vec::new();
        for (k, l) in self.layers.iter().enumerate() {
            if residual::is_marker(&l.kind) {
                residual::forward(l.kind, k, &mut tape.values, &mut saved);
                continue;
            }
            let (done, rest) = tape.values.split_at_mut(k + 1);
            l.jet_forward(&done[k], n, order, &mut rest[0], &mut tape.derivs[k]);
        }
        let kk = self.outputs;
        let f = tape.values.last().expect("layers");
        let zeros = vec![0.0; kk];
        let mut sink = [vec![0.0; kk], vec![0.0; kk], vec![0.0; kk]];
        tape.energies = (0..n)
            .map(|j| {
                let row = |b: usize| if b <= order { &f[(b * n + j) * kk..(b * n + j + 1) * kk] } else { &zeros[..] };
                let [s0, s1, s2] = &mut sink;
                self.head.jet([row(0), row(1), row(2)], [0.0; 3], [s0, s1, s2])
            })
            .collect();
    }

    /// Adds the parameter gradient of sum_j seeds[j]·(E_j, E'_j, E''_j) over the taped points
    /// into `param_grads` (packed as [`super::NetworkInternals::pack_params`]).
    pub fn jet_backward(&self, tape: &JetTape, seeds: &[[f32; 3]], param_grads: &mut [f32]) {
        let (n, order, kk) = (tape.n, tape.order, self.outputs);
        assert_eq!(seeds.len(), n, "one seed triple per point");
        let f = tape.values.last().expect("layers");
        let zeros = vec![0.0; kk];
        let mut dy = vec![0.0; (order + 1) * n * kk];
        let mut a2 = vec![0.0; kk];
        for j in 0..n {
            let row = |b: usize| if b <= order { &f[(b * n + j) * kk..(b * n + j + 1) * kk] } else { &zeros[..] };
            let (d0, rest) = dy.split_at_mut(n * kk);
            let (d1, d2) = rest.split_at_mut(n * kk);
            let at = j * kk..(j + 1) * kk;
            let adj2 = if order == 2 { &mut d2[at.clone()] } else { &mut a2[..] };
            self.head.jet([row(0), row(1), row(2)], seeds[j], [&mut d0[at.clone()], &mut d1[at], adj2]);
        }
        let offsets = self.param_offsets();
        let first_param = self.layers.iter().position(|l| l.param_count() > 0).unwrap_or(0);
        let mut dx = Vec::new();
        let mut saved_grads = residual::GradStack::default();
        for (k, l) in self.layers.iter().enumerate().rev() {
            if k < first_param {
                break;
            }
            if residual::is_marker(&l.kind) {
                dx.resize((order + 1) * n * l.input.len(), 0.0);
                saved_grads.backward(l.kind, &dy, &mut dx);
                std::mem::swap(&mut dx, &mut dy);
                continue;
            }
            let dp = &mut param_grads[offsets[k]..offsets[k] + l.param_count()];
            l.jet_backward(&tape.values[k], &tape.derivs[k], &dy, n, order, &mut dx, dp, k > first_param);
            std::mem::swap(&mut dx, &mut dy);
        }
    }
}
