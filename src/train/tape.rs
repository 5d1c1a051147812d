//! Parameter gradients of network energies, CPU side: the network executor's batched
//! forward/backward ([`crate::nn::cpu`]) kept for a weighted backward pass, and the per-point
//! definition (f32 or f64) that tests compare with finite differences.

use crate::nn::{Network, NetworkInternals};

/// The forward pass of n points, kept for weighted parameter gradients.
pub struct Tape {
    pub n: usize,
    pub energies: Vec<f32>,
    /// dE/df of every point (the head's derivative).
    d_head: Vec<f32>,
    tape: crate::nn::cpu::Tape,
}

impl Tape {
    /// Runs the network forward on `xs` [n, input_dim].
    pub fn record(net: &Network, xs: &[f32]) -> Self {
        let n = xs.len() / net.input_dim();
        let mut tape = crate::nn::cpu::Tape::default();
        net.forward_batch(xs, n, &mut tape);
        let (mut energies, mut d_head) = (vec![0.0; n], Vec::new());
        net.head_batch(&tape, &mut energies, &mut d_head);
        Self { n, energies, d_head, tape }
    }

    /// The network outputs f [n, K] of the taped points.
    pub fn outputs(&self) -> &[f32] {
        self.tape.outputs()
    }

    /// sum_s weights[s] dE(x_s)/dtheta (+ the parameter gradient of a loss on the outputs whose
    /// d/df is `d_outputs` [n, K], if given) in the packed parameter layout.
    pub fn param_grad(&mut self, net: &Network, weights: &[f32], d_outputs: Option<&[f32]>) -> Vec<f32> {
        assert_eq!(weights.len(), self.n, "one weight per point");
        let k = net.outputs;
        let mut d_out: Vec<f32> = self.d_head.iter().enumerate().map(|(i, d)| d * weights[i / k]).collect();
        if let Some(extra) = d_outputs {
            d_out.iter_mut().zip(extra).for_each(|(d, e)| *d += e);
        }
        let mut grad = vec![0.0; net.param_count()];
        net.backward_batch(&mut self.tape, &d_out, Some(&mut grad), false);
        grad
    }
}

#[cfg(any(test, feature = "internals"))]
/// E(x) and dE/dtheta (packed layout) of one point, in any precision: the reference the
/// batched tape and the GPU kernels are tested against.
pub fn energy_param_grad<T: crate::num::Real>(net: &Network, x: &[T]) -> (T, Vec<T>) {
    net.energy_param_grad_ref(x)
}
