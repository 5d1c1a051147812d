//! Diagonal Gaussian mixtures (`gaussian_mixture`, and the ring/grid presets). WGSL twin:
//! shaders/energy/mixture.wgsl.

use super::term::{AnalyticTerm, check_finite};
use crate::num::Field;
use crate::{Error, Result};

/// One component of a diagonal Gaussian mixture, stored in the form the kernels use.
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureComponent {
    /// log w_k minus the log normaliser of N(m_k, diag(std_k^2)).
    pub log_coef: f32,
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// E = -log sum_k w_k N(x; m_k, diag(std_k^2)): normalised, so exp(-E) integrates to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianMixture {
    pub dim: usize,
    pub components: Vec<MixtureComponent>,
}

impl AnalyticTerm for GaussianMixture {
    const WGSL_FILE: &'static str = "energy/mixture.wgsl";

    fn dim(&self) -> usize {
        self.dim
    }
    fn kind(&self) -> &'static str {
        "gaussian_mixture"
    }
    fn wgsl_function(&self) -> &'static str {
        "gaussian_mixture_energy"
    }

    #[inline(always)]
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        // Online log-sum-exp, as the WGSL kernel does it, written without a branch on the data:
        // with m = max(run_max, a) one of the two factors is exp(0) = 1, which is the kernel's
        // arithmetic exactly.
        let c = T::from_f32;
        let d = x.len();
        let mut small = [T::zero(); 32];
        let mut large = Vec::new();
        let acc: &mut [T] = if d <= small.len() {
            &mut small[..d]
        } else {
            large.resize(d, T::zero());
            &mut large
        };
        let mut run_max = c(-3.0e38);
        let mut run_sum = T::zero();
        for comp in &self.components {
            let mut a = c(comp.log_coef);
            for i in 0..d {
                let z = (x[i] - c(comp.mean[i])) * c(comp.inv_std[i]);
                a -= c(0.5) * z * z;
            }
            let m = run_max.max(a);
            let (scale_old, w) = ((run_max - m).exp(), (a - m).exp());
            run_max = m;
            run_sum = run_sum * scale_old + w;
            for i in 0..d {
                let s = c(comp.inv_std[i]);
                acc[i] = acc[i] * scale_old + w * (x[i] - c(comp.mean[i])) * s * s;
            }
        }
        for i in 0..d {
            g[i] += weight * acc[i] / run_sum;
        }
        -(weight * (run_max + run_sum.ln()))
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        out.push(self.components.len() as f32);
        for comp in &self.components {
            out.push(comp.log_coef);
            out.extend(&comp.mean);
            out.extend(&comp.inv_std);
        }
    }

    fn loop_iterations(&self) -> u64 {
        let d = self.dim as u64;
        self.components.len() as u64 * (2 * d + 1) + d
    }

    // Per component: a -= 0.5 ((x - m) s)^2 (5 per dimension), the online log-sum-exp (exp,
    // subtract, rescale the sum: 4), acc = acc c + w (x - m) s s (6 per dimension); then
    // g += w acc / sum (3 per dimension) and -w (max + log sum) (4).
    fn flops(&self) -> Option<f64> {
        let d = self.dim as f64;
        Some(self.components.len() as f64 * (11.0 * d + 4.0) + 3.0 * d + 4.0)
    }

    fn validate(&self) -> Result<()> {
        for (k, comp) in self.components.iter().enumerate() {
            check_finite(&format!("means[{k}]"), &comp.mean)?;
            check_finite(&format!("stds[{k}]"), &comp.inv_std)?;
            check_finite("weights", &[comp.log_coef])?;
            if comp.mean.len() != self.dim || comp.inv_std.len() != self.dim {
                return Err(Error::invalid(format!("means[{k}]"), "dimension mismatch"));
            }
        }
        Ok(())
    }
}
