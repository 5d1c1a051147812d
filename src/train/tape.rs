//! Parameter gradients of MLP energies, CPU side: a batched forward/backward "tape" (GEMMs) that
//! is the twin of `tape_pass` + `param_grad` in the generated GPU module, and a per-point generic
//! version (f32 or f64) that tests compare with finite differences.

use crate::energy::Real;
use crate::energy::mlp::{Mlp, sgemm};

/// The batched forward/backward of n points with unit output weight.
pub struct Tape {
    pub n: usize,
    /// Input of each layer: [n, inputs] (the points themselves for layer 0).
    pub inputs: Vec<Vec<f32>>,
    /// dE/dz of each hidden layer's pre-activations: [n, outputs].
    pub deltas: Vec<Vec<f32>>,
    pub energies: Vec<f32>,
    sign: f32,
}

impl Tape {
    /// Runs the network forward on `xs` [n, input_dim] and back to every hidden layer.
    pub fn record(mlp: &Mlp, xs: &[f32]) -> Self {
        let d = mlp.input_dim();
        let n = xs.len() / d;
        let hidden = mlp.layers.len() - 1;
        let sign = if mlp.negate { -1.0 } else { 1.0 };
        let mut inputs = vec![xs.to_vec()];
        let mut slopes = Vec::with_capacity(hidden);
        for (k, l) in mlp.layers[..hidden].iter().enumerate() {
            let mut z = vec![0.0; n * l.outputs];
            z.chunks_exact_mut(l.outputs).for_each(|row| row.copy_from_slice(&l.bias));
            sgemm(1.0, (&inputs[k], l.inputs, 1), (&l.weight, 1, l.inputs), 1.0, &mut z, (n, l.inputs, l.outputs));
            let mut s = vec![0.0; n * l.outputs];
            mlp.activation.eval_batch(&mut z, &mut s);
            inputs.push(z);
            slopes.push(s);
        }
        let last = &mlp.layers[hidden];
        let energies = inputs[hidden]
            .chunks_exact(last.inputs)
            .map(|h| sign * (last.bias[0] + crate::energy::mlp::dot(&last.weight, h)))
            .collect();
        // Backward: delta of the top hidden layer, then down through the weights.
        let mut deltas: Vec<Vec<f32>> = vec![Vec::new(); hidden];
        if hidden > 0 {
            let mut top = std::mem::take(&mut slopes[hidden - 1]);
            for row in top.chunks_exact_mut(last.inputs) {
                row.iter_mut().zip(&last.weight).for_each(|(s, w)| *s *= sign * w);
            }
            deltas[hidden - 1] = top;
            for k in (1..hidden).rev() {
                let l = &mlp.layers[k];
                let mut below = vec![0.0; n * l.inputs];
                sgemm(
                    1.0,
                    (&deltas[k], l.outputs, 1),
                    (&l.weight, l.inputs, 1),
                    0.0,
                    &mut below,
                    (n, l.outputs, l.inputs),
                );
                below.iter_mut().zip(&slopes[k - 1]).for_each(|(d, s)| *d *= s);
                deltas[k - 1] = below;
            }
        }
        Self { n, inputs, deltas, energies, sign }
    }

    /// sum_s weights[s] dE(x_s)/dtheta in the packed parameter layout.
    pub fn param_grad(&self, mlp: &Mlp, weights: &[f32]) -> Vec<f32> {
        assert_eq!(weights.len(), self.n, "one weight per point");
        let mut grad = Vec::with_capacity(crate::train::param_count(mlp));
        let hidden = mlp.layers.len() - 1;
        for (k, l) in mlp.layers.iter().enumerate() {
            // Weighted deltas [n, outputs]; the output layer's delta is the sign.
            let dz: Vec<f32> = if k == hidden {
                weights.iter().map(|w| w * self.sign).collect()
            } else {
                self.deltas[k]
                    .chunks_exact(l.outputs)
                    .zip(weights)
                    .flat_map(|(row, w)| row.iter().map(move |d| w * d))
                    .collect()
            };
            let mut dw = vec![0.0; l.outputs * l.inputs];
            sgemm(
                1.0,
                (&dz, 1, l.outputs),
                (&self.inputs[k], l.inputs, 1),
                0.0,
                &mut dw,
                (l.outputs, self.n, l.inputs),
            );
            let mut db = vec![0.0; l.outputs];
            for row in dz.chunks_exact(l.outputs) {
                db.iter_mut().zip(row).for_each(|(b, d)| *b += d);
            }
            grad.extend(dw);
            grad.extend(db);
        }
        grad
    }
}

/// E(x) and dE/dtheta (packed layout) of one point, in any precision: the reference the
/// batched tape and the GPU kernels are tested against.
pub fn energy_param_grad<T: Real>(mlp: &Mlp, x: &[T]) -> (T, Vec<T>) {
    let c = T::from_f32;
    let hidden = mlp.layers.len() - 1;
    let mut inputs: Vec<Vec<T>> = vec![x.to_vec()];
    let mut slopes: Vec<Vec<T>> = Vec::new();
    for (k, l) in mlp.layers[..hidden].iter().enumerate() {
        let h = &inputs[k];
        let (mut a, mut s) = (Vec::with_capacity(l.outputs), Vec::with_capacity(l.outputs));
        for o in 0..l.outputs {
            let mut z = c(l.bias[o]);
            for i in 0..l.inputs {
                z += c(l.weight[o * l.inputs + i]) * h[i];
            }
            let (act, slope) = mlp.activation.eval(z);
            a.push(act);
            s.push(slope);
        }
        inputs.push(a);
        slopes.push(s);
    }
    let last = &mlp.layers[hidden];
    let sign = if mlp.negate { c(-1.0) } else { c(1.0) };
    let h = &inputs[hidden];
    let mut out = c(last.bias[0]);
    for i in 0..last.inputs {
        out += c(last.weight[i]) * h[i];
    }
    // Gradients layer by layer from the top; delta = dE/dz of the current layer's outputs.
    let mut per_layer: Vec<Vec<T>> = vec![Vec::new(); mlp.layers.len()];
    let mut delta = vec![sign];
    for k in (0..mlp.layers.len()).rev() {
        let l = &mlp.layers[k];
        let input = &inputs[k];
        let mut g = Vec::with_capacity(l.weight.len() + l.bias.len());
        for o in 0..l.outputs {
            for i in 0..l.inputs {
                g.push(delta[o] * input[i]);
            }
        }
        g.extend(delta.iter().copied());
        per_layer[k] = g;
        if k > 0 {
            let mut below = vec![T::zero(); l.inputs];
            for o in 0..l.outputs {
                for i in 0..l.inputs {
                    below[i] += c(l.weight[o * l.inputs + i]) * delta[o];
                }
            }
            delta = below.iter().zip(&slopes[k - 1]).map(|(&d, &s)| d * s).collect();
        }
    }
    (sign * out, per_layer.concat())
}
