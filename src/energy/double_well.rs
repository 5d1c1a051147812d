//! The double well (`double_well`). WGSL twin: shaders/energy/double_well.wgsl.

use super::term::{AnalyticTerm, check_finite};
use crate::Result;
use crate::num::Field;

/// E = barrier * sum_i (x_i^2 - 1)^2.
#[derive(Clone, Debug, PartialEq)]
pub struct DoubleWell {
    pub dim: usize,
    pub barrier: f32,
}

impl AnalyticTerm for DoubleWell {
    const WGSL_FILE: &'static str = "energy/double_well.wgsl";

    fn dim(&self) -> usize {
        self.dim
    }
    fn kind(&self) -> &'static str {
        "double_well"
    }
    fn wgsl_function(&self) -> &'static str {
        "double_well_energy"
    }

    #[inline(always)]
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        let h = c(self.barrier);
        let mut e = T::zero();
        for i in 0..x.len() {
            let q = x[i] * x[i] - c(1.0);
            e += h * q * q;
            g[i] += weight * c(4.0) * h * x[i] * q;
        }
        weight * e
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        out.push(self.barrier);
    }

    fn loop_iterations(&self) -> u64 {
        self.dim as u64
    }

    // q = x x - 1; e += h q q; g += (4 w h) x q.
    fn flops(&self) -> Option<f64> {
        Some(8.0 * self.dim as f64 + 1.0)
    }

    fn validate(&self) -> Result<()> {
        check_finite("barrier", &[self.barrier])
    }
}
