//! The banana (`banana`: Rosenbrock-shaped). WGSL twin: shaders/energy/banana.wgsl.

use super::term::{AnalyticTerm, check_finite};
use crate::Result;
use crate::num::Field;

/// E = sum_{i<d-1} (a - x_i)^2 + b (x_{i+1} - x_i^2)^2.
#[derive(Clone, Debug, PartialEq)]
pub struct Banana {
    pub dim: usize,
    pub a: f32,
    pub b: f32,
}

impl AnalyticTerm for Banana {
    const WGSL_FILE: &'static str = "energy/banana.wgsl";

    fn dim(&self) -> usize {
        self.dim
    }
    fn kind(&self) -> &'static str {
        "banana"
    }
    fn wgsl_function(&self) -> &'static str {
        "banana_energy"
    }

    #[inline(always)]
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        let (a, b) = (c(self.a), c(self.b));
        let mut e = T::zero();
        for i in 0..x.len().saturating_sub(1) {
            let d = a - x[i];
            let q = x[i + 1] - x[i] * x[i];
            e += d * d + b * q * q;
            g[i] += weight * (c(-2.0) * d - c(4.0) * b * x[i] * q);
            g[i + 1] += weight * c(2.0) * b * q;
        }
        weight * e
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        out.extend([self.a, self.b]);
    }

    fn loop_iterations(&self) -> u64 {
        self.dim as u64
    }

    // Per i < d - 1: a - x, x' - x^2, e, both gradient terms.
    fn flops(&self) -> Option<f64> {
        Some(16.0 * (self.dim as f64 - 1.0) + 1.0)
    }

    fn validate(&self) -> Result<()> {
        check_finite("a, b", &[self.a, self.b])
    }
}
