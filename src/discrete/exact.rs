//! Exact answers for small models by enumerating every configuration: the Boltzmann
//! distribution, log Z and exact expectations, the oracle the samplers' tests compare with.

use super::SpinModel;
use crate::{Error, Result};

/// The most configurations [`boltzmann`] enumerates.
pub const MAX_CONFIGURATIONS: u64 = 1 << 24;

/// The configuration with index `k` (site i's state is digit i of k in base q).
pub fn configuration(k: u64, q: u32, sites: usize) -> Vec<u8> {
    let mut rest = k;
    (0..sites)
        .map(|_| {
            let s = (rest % q as u64) as u8;
            rest /= q as u64;
            s
        })
        .collect()
}

#[cfg(any(test, feature = "internals"))]
/// The index of a configuration (the inverse of [`configuration`]).
pub fn index(state: &[u8], q: u32) -> u64 {
    state.iter().rev().fold(0u64, |k, &s| k * q as u64 + s as u64)
}

/// (probabilities of every configuration by index, log Z) of p(σ) ∝ exp(-beta E(σ)).
pub fn boltzmann(model: &SpinModel) -> Result<(Vec<f64>, f64)> {
    let count = (model.q as u64).checked_pow(model.sites() as u32).filter(|&c| c <= MAX_CONFIGURATIONS);
    let Some(count) = count else {
        return Err(Error::invalid(
            "model",
            format!("{}^{} configurations: exact enumeration stops at {MAX_CONFIGURATIONS}", model.q, model.sites()),
        ));
    };
    if model.beta.is_infinite() {
        return Err(Error::invalid("beta", "exact enumeration needs a finite beta"));
    }
    let beta = model.beta as f64;
    let log_w: Vec<f64> = (0..count).map(|k| -beta * model.energy(&configuration(k, model.q, model.sites()))).collect();
    let top = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = log_w.iter().map(|l| (l - top).exp()).sum();
    Ok((log_w.iter().map(|l| (l - top).exp() / z).collect(), top + z.ln()))
}

/// Exact (energy per site, |m|) expectations, as [`super::observables::measure`] defines
/// them, when the model is small enough to enumerate.
pub fn expectations(model: &SpinModel) -> Result<(f64, f64)> {
    let (p, _) = boltzmann(model)?;
    let (mut e, mut m) = (0.0, 0.0);
    for (k, pk) in p.iter().enumerate() {
        let (ek, mk) = super::observables::measure(model, &configuration(k as u64, model.q, model.sites()));
        e += pk * ek;
        m += pk * mk.abs();
    }
    Ok((e, m))
}

#[cfg(any(test, feature = "internals"))]
/// Total-variation distance between the empirical distribution of `states` (whole chains of
/// bytes) and exact probabilities `p`.
pub fn total_variation(states: &[u8], sites: usize, q: u32, p: &[f64]) -> f64 {
    let mut counts = vec![0u64; p.len()];
    let n = states.len() / sites;
    for row in states.chunks_exact(sites) {
        counts[index(row, q) as usize] += 1;
    }
    0.5 * counts.iter().zip(p).map(|(&c, &pk)| (c as f64 / n as f64 - pk).abs()).sum::<f64>()
}

#[cfg(any(test, feature = "internals"))]
/// The expected total-variation distance of `n` exact draws from `p` (the Monte Carlo floor),
/// from the normal approximation of each cell, E|p̂ - p| ≈ sqrt(2 p (1 - p) / (π n)), capped by
/// 2p (which bounds it for cells too rare for the approximation).
pub fn total_variation_floor(p: &[f64], n: usize) -> f64 {
    let cell = |pk: f64| (2.0 * pk * (1.0 - pk) / (std::f64::consts::PI * n as f64)).sqrt().min(2.0 * pk);
    0.5 * p.iter().map(|&pk| cell(pk)).sum::<f64>()
}
