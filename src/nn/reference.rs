//! Every layer by its definition, one point at a time, generic over f32/f64: the reference the
//! batched CPU executor ([`super::cpu`]) and the GPU kernels are tested against, and the CPU
//! per-point energy (f64 for finite-difference checks). Convolutions loop over kernel offsets.

use super::{Head, LayerKind, LayerView, NetView, Shape, residual};
use crate::num::Real;

impl LayerView<'_> {
    /// The layer's output for one input point.
    pub fn forward_ref<T: Real>(&self, x: &[T]) -> Vec<T> {
        let c = T::from_f32;
        match (self.kind, self.input) {
            (LayerKind::Linear { outputs, .. }, s) => {
                let n = s.len();
                (0..outputs)
                    .map(|o| {
                        let mut z = self.bias.get(o).map_or(T::zero(), |b| c(*b));
                        for (w, &xi) in self.weight[o * n..(o + 1) * n].iter().zip(x) {
                            z += c(*w) * xi;
                        }
                        z
                    })
                    .collect()
            }
            (LayerKind::Conv2d { .. }, _) => {
                let g = self.conv_geom(1).expect("conv layer");
                let (oh, ow) = (g.out_h(), g.out_w());
                let mut y = vec![T::zero(); g.out_len()];
                for oc in 0..g.out_c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut z = self.bias.get(oc).map_or(T::zero(), |b| c(*b));
                            for_taps(&g, oy, ox, |ic, ky, kx, at| {
                                z += c(self.weight[((oc * g.in_c + ic) * g.kh + ky) * g.kw + kx]) * x[at]
                            });
                            y[(oc * oh + oy) * ow + ox] = z;
                        }
                    }
                }
                y
            }
            (LayerKind::Act(a), _) => x.iter().map(|&z| a.eval(z).0).collect(),
            (LayerKind::Flatten, _) => x.to_vec(),
            (LayerKind::AvgPool2d { kernel }, Shape::Image { c: ch, h, w }) => {
                let (oh, ow) = (h / kernel, w / kernel);
                let scale = T::from_f32(1.0 / (kernel * kernel) as f32);
                let mut y = vec![T::zero(); ch * oh * ow];
                for cc in 0..ch {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut s = T::zero();
                            for dy in 0..kernel {
                                for dx in 0..kernel {
                                    s += x[(cc * h + oy * kernel + dy) * w + ox * kernel + dx];
                                }
                            }
                            y[(cc * oh + oy) * ow + ox] = s * scale;
                        }
                    }
                }
                y
            }
            (LayerKind::AvgPool2d { .. }, Shape::Flat(_)) => unreachable!("rejected by the shape rule"),
            (LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd, _) => {
                unreachable!("markers run in NetView::backprop_ref")
            }
        }
    }

    /// Given the input x and dL/dy, returns dL/dx and dL/d(weight, bias) (packed weight then
    /// bias; empty for parameter-free layers).
    pub fn backward_ref<T: Real>(&self, x: &[T], dy: &[T]) -> (Vec<T>, Vec<T>) {
        let c = T::from_f32;
        let mut dx = vec![T::zero(); x.len()];
        let mut dp = vec![T::zero(); self.param_count()];
        let nw = self.weight.len();
        match (self.kind, self.input) {
            (LayerKind::Linear { outputs, .. }, s) => {
                let n = s.len();
                for o in 0..outputs {
                    for i in 0..n {
                        dx[i] += c(self.weight[o * n + i]) * dy[o];
                        dp[o * n + i] += dy[o] * x[i];
                    }
                    if !self.bias.is_empty() {
                        dp[nw + o] += dy[o];
                    }
                }
            }
            (LayerKind::Conv2d { .. }, _) => {
                let g = self.conv_geom(1).expect("conv layer");
                let (oh, ow) = (g.out_h(), g.out_w());
                for oc in 0..g.out_c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let d = dy[(oc * oh + oy) * ow + ox];
                            for_taps(&g, oy, ox, |ic, ky, kx, at| {
                                let wi = ((oc * g.in_c + ic) * g.kh + ky) * g.kw + kx;
                                dx[at] += c(self.weight[wi]) * d;
                                dp[wi] += d * x[at];
                            });
                            if !self.bias.is_empty() {
                                dp[nw + oc] += d;
                            }
                        }
                    }
                }
            }
            (LayerKind::Act(a), _) => {
                for i in 0..x.len() {
                    dx[i] = dy[i] * a.eval(x[i]).1;
                }
            }
            (LayerKind::Flatten, _) => dx.copy_from_slice(dy),
            (LayerKind::AvgPool2d { kernel }, Shape::Image { c: ch, h, w }) => {
                let (oh, ow) = (h / kernel, w / kernel);
                let scale = T::from_f32(1.0 / (kernel * kernel) as f32);
                for cc in 0..ch {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for ky in 0..kernel {
                                for kx in 0..kernel {
                                    dx[(cc * h + oy * kernel + ky) * w + ox * kernel + kx] +=
                                        dy[(cc * oh + oy) * ow + ox] * scale;
                                }
                            }
                        }
                    }
                }
            }
            (LayerKind::AvgPool2d { .. }, Shape::Flat(_)) => unreachable!("rejected by the shape rule"),
            (LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd, _) => {
                unreachable!("markers run in NetView::backprop_ref")
            }
        }
        (dx, dp)
    }
}

/// Calls `f(in_channel, ky, kx, input index)` for every kernel tap of output pixel (oy, ox)
/// that lands inside the (unpadded) input.
pub(super) fn for_taps(g: &super::ops::ConvGeom, oy: usize, ox: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    for ic in 0..g.in_c {
        for ky in 0..g.kh {
            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
            if iy < 0 || iy >= g.in_h as isize {
                continue;
            }
            for kx in 0..g.kw {
                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                if ix >= 0 && ix < g.in_w as isize {
                    f(ic, ky, kx, (ic * g.in_h + iy as usize) * g.in_w + ix as usize);
                }
            }
        }
    }
}

impl Head {
    /// E from the network outputs f, and dE/df.
    pub fn energy_ref<T: Real>(&self, f: &[T]) -> (T, Vec<T>) {
        let one = T::from_f32(1.0);
        let mut d = vec![T::zero(); f.len()];
        let e = match *self {
            Head::F => {
                d[0] = one;
                f[0]
            }
            Head::NegF => {
                d[0] = -one;
                -f[0]
            }
            Head::Class(y) => {
                d[y] = -one;
                -f[y]
            }
            Head::LogSumExp => {
                let mut m = f[0];
                for &v in f {
                    if v > m {
                        m = v;
                    }
                }
                let mut s = T::zero();
                for &v in f {
                    s += (v - m).exp();
                }
                for (di, &v) in d.iter_mut().zip(f) {
                    *di = -((v - m).exp() / s);
                }
                -(m + s.ln())
            }
        };
        (e, d)
    }
}

impl NetView<'_> {
    /// E(x) by the layers' definitions; `g` gets dE/dx. The per-point CPU energy.
    pub fn energy_grad_ref<T: Real>(&self, x: &[T], g: &mut [T]) -> T {
        let (e, dx, _) = self.backprop_ref(x, false);
        g.copy_from_slice(&dx);
        e
    }

    /// E(x) and dE/dθ, packed as [`super::NetworkInternals::pack_params`].
    #[cfg(any(test, feature = "internals"))]
    pub fn energy_param_grad_ref<T: Real>(&self, x: &[T]) -> (T, Vec<T>) {
        let (e, _, dp) = self.backprop_ref(x, true);
        (e, dp)
    }

    /// The outputs f(x) [K] of one point by the layers' definitions (f64 for finite differences).
    #[cfg(any(test, feature = "internals"))]
    pub fn outputs_ref<T: Real>(&self, x: &[T]) -> Vec<T> {
        self.inputs_ref(x).pop().expect("non-empty")
    }

    /// Every layer's input for one point, and last the outputs.
    fn inputs_ref<T: Real>(&self, x: &[T]) -> Vec<Vec<T>> {
        let mut inputs = vec![x.to_vec()];
        let mut saved = Vec::new();
        for (k, l) in self.layers.iter().enumerate() {
            if residual::is_marker(&l.kind) {
                inputs.push(Vec::new());
                residual::forward(l.kind, k, &mut inputs, &mut saved);
                continue;
            }
            let next = l.forward_ref(inputs.last().expect("non-empty"));
            inputs.push(next);
        }
        inputs
    }

    fn backprop_ref<T: Real>(&self, x: &[T], params: bool) -> (T, Vec<T>, Vec<T>) {
        let inputs = self.inputs_ref(x);
        let (e, mut d) = self.head.energy_ref(inputs.last().expect("non-empty"));
        let mut grads: Vec<Vec<T>> = Vec::new();
        let mut saved_grads = residual::GradStack::default();
        for (l, input) in self.layers.iter().zip(&inputs).rev() {
            if residual::is_marker(&l.kind) {
                let mut dx = vec![T::zero(); input.len()];
                saved_grads.backward(l.kind, &d, &mut dx);
                d = dx;
                continue;
            }
            let (dx, dp) = l.backward_ref(input, &d);
            if params {
                grads.push(dp);
            }
            d = dx;
        }
        let dp = grads.into_iter().rev().flatten().collect();
        (e, d, dp)
    }
}
