//! Gaussians: diagonal (`gaussian` with `std`) and full precision (`gaussian` with
//! `precision`). WGSL twin: shaders/energy/gaussian.wgsl.

use super::term::{AnalyticTerm, check_finite};
use crate::Result;
use crate::num::Field;

/// E = 0.5 sum_i (x_i - m_i)^2 / std_i^2.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianDiag {
    pub mean: Vec<f32>,
    /// 1 / std_i^2.
    pub inv_var: Vec<f32>,
}

impl AnalyticTerm for GaussianDiag {
    const WGSL_FILE: &'static str = "energy/gaussian.wgsl";

    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn kind(&self) -> &'static str {
        "gaussian"
    }
    fn wgsl_function(&self) -> &'static str {
        "gaussian_diag_energy"
    }

    #[inline(always)]
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        let mut e = T::zero();
        for i in 0..x.len() {
            let r = x[i] - c(self.mean[i]);
            let p = c(self.inv_var[i]);
            e += c(0.5) * r * r * p;
            g[i] += weight * r * p;
        }
        weight * e
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        out.extend(&self.mean);
        out.extend(&self.inv_var);
    }

    fn loop_iterations(&self) -> u64 {
        self.dim() as u64
    }

    // r = x - m; e += 0.5 r r p; g += w r p.
    fn flops(&self) -> Option<f64> {
        Some(8.0 * self.dim() as f64 + 1.0)
    }

    fn validate(&self) -> Result<()> {
        check_finite("mean", &self.mean)?;
        check_finite("std", &self.inv_var)
    }
}

/// E = 0.5 (x - m)^T P (x - m) for a symmetric positive definite precision P (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianPrecision {
    pub mean: Vec<f32>,
    pub precision: Vec<f32>,
}

impl AnalyticTerm for GaussianPrecision {
    const WGSL_FILE: &'static str = "energy/gaussian.wgsl";

    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn kind(&self) -> &'static str {
        "gaussian_precision"
    }
    fn wgsl_function(&self) -> &'static str {
        "gaussian_precision_energy"
    }

    #[inline(always)]
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        let d = x.len();
        let mut e = T::zero();
        for i in 0..d {
            let mut pr = T::zero();
            for j in 0..d {
                pr += c(self.precision[i * d + j]) * (x[j] - c(self.mean[j]));
            }
            e += c(0.5) * (x[i] - c(self.mean[i])) * pr;
            g[i] += weight * pr;
        }
        weight * e
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        out.extend(&self.mean);
        out.extend(&self.precision);
    }

    fn loop_iterations(&self) -> u64 {
        let d = self.dim() as u64;
        2 * d + d * d
    }

    // r, P r (2 d^2), e += 0.5 r (P r), g += w (P r).
    fn flops(&self) -> Option<f64> {
        let d = self.dim() as f64;
        Some(2.0 * d * d + 6.0 * d + 1.0)
    }

    fn validate(&self) -> Result<()> {
        check_finite("mean", &self.mean)?;
        check_finite("precision", &self.precision)
    }
}
