//! Observables of discrete chains (energy per site, magnetisation, susceptibility, specific
//! heat, Hopfield overlaps) with their autocorrelation times, and Onsager's exact values for
//! the 2-D square-lattice Ising model they are tested against.

use super::{SpinModel, spin};
use crate::Result;
use crate::eval::diagnostics::{Summary, summarize};
use serde::Serialize;

/// (energy per site, magnetisation) of one configuration: the Ising mean spin, or for Potts
/// the order parameter (q max_k n_k / N - 1) / (q - 1).
pub fn measure(model: &SpinModel, state: &[u8]) -> (f64, f64) {
    let n = state.len() as f64;
    let e = model.energy(state) / n;
    let m = if model.q == 2 {
        state.iter().map(|&b| spin(b)).sum::<f64>() / n
    } else {
        let mut counts = vec![0usize; model.q as usize];
        state.iter().for_each(|&s| counts[s as usize] += 1);
        let top = *counts.iter().max().unwrap_or(&0) as f64;
        (model.q as f64 * top / n - 1.0) / (model.q as f64 - 1.0)
    };
    (e, m)
}

/// Overlap (1/N) sum_i xi_i s_i of a state with each stored pattern.
pub fn overlaps(patterns: &[Vec<i8>], state: &[u8]) -> Vec<f64> {
    patterns
        .iter()
        .map(|xi| xi.iter().zip(state).map(|(&x, &b)| x as f64 * spin(b)).sum::<f64>() / state.len() as f64)
        .collect()
}

/// One observable's estimate: mean with its Monte Carlo standard error from the bulk ESS, and
/// the integrated autocorrelation time in measurements (draws / ESS per chain).
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub mean: f64,
    pub standard_error: f64,
    pub ess: f64,
    pub autocorrelation_time: f64,
    pub rhat: f64,
}

impl Estimate {
    fn from(series: &[Vec<f64>]) -> Result<Self> {
        let s: Summary = summarize(series)?;
        let draws = series.iter().map(|c| c.len()).sum::<usize>() as f64;
        Ok(Estimate {
            mean: s.mean,
            standard_error: s.sd / s.ess_bulk.max(1.0).sqrt(),
            ess: s.ess_bulk,
            autocorrelation_time: draws / s.ess_bulk.max(f64::MIN_POSITIVE),
            rhat: s.rhat,
        })
    }
}

/// Thermodynamic estimates from per-chain series of (energy per site, magnetisation).
#[derive(Clone, Debug, Serialize)]
pub struct Thermo {
    pub energy_per_site: Estimate,
    /// |m| (Ising) or the Potts order parameter.
    pub abs_magnetisation: Estimate,
    /// beta N (<m^2> - <|m|>^2), per site, pooled over chains and draws.
    pub susceptibility: f64,
    /// beta^2 N (<e^2> - <e>^2), per site.
    pub specific_heat: f64,
}

/// `energy[chain][draw]` and `magnetisation[chain][draw]` of a model with `sites` sites.
pub fn thermo(beta: f64, sites: usize, energy: &[Vec<f64>], magnetisation: &[Vec<f64>]) -> Result<Thermo> {
    let abs: Vec<Vec<f64>> = magnetisation.iter().map(|c| c.iter().map(|m| m.abs()).collect()).collect();
    let pooled_var = |xs: &[Vec<f64>]| {
        let all: Vec<f64> = xs.iter().flatten().copied().collect();
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / all.len() as f64
    };
    let n = sites as f64;
    Ok(Thermo {
        energy_per_site: Estimate::from(energy)?,
        abs_magnetisation: Estimate::from(&abs)?,
        susceptibility: beta * n * pooled_var(&abs),
        specific_heat: beta * beta * n * pooled_var(energy),
    })
}

/// The critical inverse temperature of the square-lattice Ising model, J = 1: ln(1 + √2) / 2.
pub fn onsager_beta_c() -> f64 {
    (1.0 + 2f64.sqrt()).ln() / 2.0
}

/// Spontaneous magnetisation of the infinite square lattice (Onsager, Yang 1952), J = 1.
pub fn onsager_magnetisation(beta: f64) -> f64 {
    if beta <= onsager_beta_c() {
        return 0.0;
    }
    (1.0 - (2.0 * beta).sinh().powi(-4)).powf(0.125)
}

/// Energy per site of the infinite square lattice (Onsager 1944), J = 1:
/// u = -coth(2β) [1 + (2/π)(2 tanh²(2β) - 1) K(k)], k = 2 sinh(2β) / cosh²(2β).
pub fn onsager_energy(beta: f64) -> f64 {
    let t = 2.0 * beta;
    let factor = 2.0 * t.tanh() * t.tanh() - 1.0;
    // K(k) = π / (2 AGM(1, k')) with k' = sqrt(1 - k²) = |cosh²(2β) - 2| / cosh²(2β), written so
    // that it does not cancel near T_c; there k' -> 0, K ~ ln(4/k') and factor·K -> 0.
    let c = t.cosh() * t.cosh();
    let k_prime = (c - 2.0).abs() / c;
    let kk = if factor == 0.0 || k_prime == 0.0 { 0.0 } else { std::f64::consts::PI / (2.0 * agm(1.0, k_prime)) };
    -(1.0 / t.tanh()) * (1.0 + 2.0 / std::f64::consts::PI * factor * kk)
}

fn agm(mut a: f64, mut b: f64) -> f64 {
    for _ in 0..64 {
        let (x, y) = ((a + b) / 2.0, (a * b).sqrt());
        (a, b) = (x, y);
        if (a - b).abs() <= 1e-16 * a {
            break;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onsager_values_match_known_points() {
        // At T_c the energy per site is -sqrt(2); at high temperature u ≈ -2 tanh(β) (series).
        assert!((onsager_energy(onsager_beta_c()) + 2f64.sqrt()).abs() < 1e-9);
        // Continuous through T_c (K diverges only logarithmically against a vanishing factor).
        for db in [-1e-7, 1e-7, 1e-4] {
            assert!((onsager_energy(onsager_beta_c() + db) + 2f64.sqrt()).abs() < 1e-2, "{db}");
        }
        let b = 0.05;
        assert!((onsager_energy(b) + 2.0 * b.tanh()).abs() < 1e-3, "{}", onsager_energy(b));
        // Deep in the ordered phase the energy is near -2 and m near 1.
        assert!((onsager_energy(2.0) + 2.0).abs() < 1e-5);
        assert!((onsager_magnetisation(1.0 / 2.0) - 0.911_319_1).abs() < 1e-6, "{}", onsager_magnetisation(0.5));
    }
}
