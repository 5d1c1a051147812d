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

/// |sum_x s_x exp(2πi x_a / L)|², averaged over the lattice's axes a: the structure factor at
/// the smallest nonzero wave vector (times N), for the second-moment correlation length. Ising
/// models on lattices with equal sides only.
pub fn structure_factor_min(model: &SpinModel, state: &[u8]) -> Option<f64> {
    let (_, sides) = model.graph.lattice.as_ref()?;
    if model.q != 2 || sides.iter().any(|&s| s != sides[0]) {
        return None;
    }
    let l = sides[0];
    let phase: Vec<(f64, f64)> =
        (0..l).map(|c| (2.0 * std::f64::consts::PI * c as f64 / l as f64).sin_cos()).map(|(s, c)| (c, s)).collect();
    let mut total = 0.0;
    for axis in 0..sides.len() {
        let stride = l.pow(axis as u32);
        let (mut re, mut im) = (0.0, 0.0);
        for (site, &b) in state.iter().enumerate() {
            let (c, s) = phase[site / stride % l];
            re += spin(b) * c;
            im += spin(b) * s;
        }
        total += re * re + im * im;
    }
    Some(total / sides.len() as f64)
}

/// Second-moment correlation length (Cooper, Freedman & Preston 1982) from per-chain series of
/// the magnetisation m and [`structure_factor_min`] F of an L-sided lattice of `sites` sites:
/// ξ = sqrt(<M²> / <F> - 1) / (2 sin(π / L)), M = N m. None when <F> is not positive or
/// <M²> < <F> (no growth of correlations at this size).
pub fn correlation_length(side: usize, sites: usize, magnetisation: &[Vec<f64>], factor: &[Vec<f64>]) -> Option<f64> {
    let mean = |xs: &[Vec<f64>], f: &dyn Fn(f64) -> f64| {
        let n = xs.iter().map(|c| c.len()).sum::<usize>().max(1) as f64;
        xs.iter().flatten().map(|&x| f(x)).sum::<f64>() / n
    };
    let n = sites as f64;
    let m2 = mean(magnetisation, &|m| (m * n) * (m * n));
    let f = mean(factor, &|x| x);
    (f > 0.0 && m2 >= f).then(|| (m2 / f - 1.0).sqrt() / (2.0 * (std::f64::consts::PI / side as f64).sin()))
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
    /// beta N (<m^2> - <|m|>^2), per site, pooled over chains and draws (None at zero
    /// temperature, where the chains descend rather than sample).
    pub susceptibility: Option<f64>,
    /// beta^2 N (<e^2> - <e>^2), per site (None at zero temperature).
    pub specific_heat: Option<f64>,
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
        susceptibility: beta.is_finite().then(|| beta * n * pooled_var(&abs)),
        specific_heat: beta.is_finite().then(|| beta * beta * n * pooled_var(energy)),
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
