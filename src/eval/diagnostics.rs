//! Convergence diagnostics over many chains: rank-normalised split R-hat and bulk / tail
//! effective sample size, as Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021) define them
//! (the algorithm of Stan and ArviZ).

use crate::num::normal_quantile;
use crate::{Error, Result};
use serde::Serialize;

/// Fewest draws per chain the diagnostics accept (each split half needs at least 2).
pub const MIN_DRAWS: usize = 4;

/// Vehtari et al. (2021): trust the draws when every R-hat is below 1.01 and the bulk ESS
/// exceeds 400 (100 for each of their 4 chains).
pub const MAX_RHAT: f64 = 1.01;
pub const MIN_ESS_BULK: f64 = 400.0;

/// What the summaries say against using the draws as samples, as sentences with the remedy;
/// empty when R-hat and bulk ESS pass in every dimension.
pub fn convergence_warnings(summaries: &[Summary]) -> Vec<String> {
    let worst = |pick: fn(&Summary) -> f64, high: bool| {
        summaries.iter().enumerate().map(|(i, s)| (i, pick(s))).fold(None, |best: Option<(usize, f64)>, (i, v)| {
            match best {
                Some((_, b)) if (high && !(v > b)) || (!high && !(v < b)) => best,
                _ => Some((i, v)),
            }
        })
    };
    let mut out = Vec::new();
    let bad_rhat = summaries.iter().filter(|s| !(s.rhat <= MAX_RHAT)).count();
    if let (true, Some((i, r))) = (bad_rhat > 0, worst(|s| s.rhat, true)) {
        out.push(format!(
            "R-hat above {MAX_RHAT} in {bad_rhat} of {} dimensions (worst {r:.3}, dimension {i}): the chains disagree, so the draws are not yet samples of one distribution; run longer (--steps), warm up (--warmup) or, for separated modes, add --tempering",
            summaries.len()
        ));
    }
    let low_ess = summaries.iter().filter(|s| !(s.ess_bulk >= MIN_ESS_BULK)).count();
    if let (true, Some((i, e))) = (low_ess > 0, worst(|s| s.ess_bulk, false)) {
        out.push(format!(
            "bulk ESS below {MIN_ESS_BULK} in {low_ess} of {} dimensions (lowest {e:.0}, dimension {i}): too few effective draws for stable means and quantiles; run more steps or chains",
            summaries.len()
        ));
    }
    out
}

/// Summary of one scalar quantity.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub mean: f64,
    pub sd: f64,
    pub q05: f64,
    pub q50: f64,
    pub q95: f64,
    /// max of bulk and tail (folded) rank-normalised split R-hat.
    pub rhat: f64,
    pub ess_bulk: f64,
    pub ess_tail: f64,
    /// The chains the statistics used (a trace's chains with non-finite draws are left out).
    pub chains: usize,
}

/// `draws[chain][iteration]` of one scalar: chains of equal length.
pub fn summarize(draws: &[Vec<f64>]) -> Result<Summary> {
    let m = draws.len();
    let n = draws.first().map_or(0, |c| c.len());
    if m == 0 || n < MIN_DRAWS || draws.iter().any(|c| c.len() != n) {
        return Err(Error::invalid(
            "draws",
            format!(
                "diagnostics need at least {MIN_DRAWS} draws in each of at least 1 chain, all chains of equal length; got {m} chains of {n}"
            ),
        ));
    }
    if let Some(v) = draws.iter().flatten().find(|v| !v.is_finite()) {
        return Err(Error::invalid("draws", format!("contain a non-finite value ({v})")));
    }
    let all: Vec<f64> = draws.iter().flatten().copied().collect();
    let total = all.len() as f64;
    let mean = all.iter().sum::<f64>() / total;
    let sd = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (total - 1.0)).sqrt();
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let pos = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    };
    let (q05, q50, q95) = (quantile(0.05), quantile(0.5), quantile(0.95));

    let split = split_chains(draws);
    let z = rank_normalize(&split);
    let folded: Vec<Vec<f64>> = split.iter().map(|c| c.iter().map(|v| (v - q50).abs()).collect()).collect();
    let rhat = split_rhat(&z).max(split_rhat(&rank_normalize(&folded)));
    let ess_bulk = ess(&z);
    let indicator = |q: f64| -> Vec<Vec<f64>> {
        split.iter().map(|c| c.iter().map(|&v| (v <= q) as u8 as f64).collect()).collect()
    };
    let ess_tail = ess(&indicator(q05)).min(ess(&indicator(q95)));
    Ok(Summary { mean, sd, q05, q50, q95, rhat, ess_bulk, ess_tail, chains: m })
}

/// Each chain cut into its first and second half (the middle draw dropped when odd).
fn split_chains(draws: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let half = draws[0].len() / 2;
    draws.iter().flat_map(|c| [c[..half].to_vec(), c[c.len() - half..].to_vec()]).collect()
}

/// Replaces every draw by the normal quantile of its fractional rank (average rank for
/// ties): z = Phi^-1((r - 3/8) / (S + 1/4)).
fn rank_normalize(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let flat: Vec<f64> = chains.iter().flatten().copied().collect();
    let s = flat.len();
    let mut order: Vec<usize> = (0..s).collect();
    order.sort_by(|&a, &b| flat[a].total_cmp(&flat[b]));
    let mut ranks = vec![0.0; s];
    let mut i = 0;
    while i < s {
        let mut j = i;
        while j + 1 < s && flat[order[j + 1]] == flat[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = avg;
        }
        i = j + 1;
    }
    let n = chains[0].len();
    ranks.chunks(n).map(|c| c.iter().map(|&r| normal_quantile((r - 0.375) / (s as f64 + 0.25))).collect()).collect()
}

fn mean_var(c: &[f64]) -> (f64, f64) {
    let n = c.len() as f64;
    let mean = c.iter().sum::<f64>() / n;
    (mean, c.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0))
}

/// Potential scale reduction of (already split) chains.
fn split_rhat(chains: &[Vec<f64>]) -> f64 {
    let n = chains[0].len() as f64;
    let stats: Vec<(f64, f64)> = chains.iter().map(|c| mean_var(c)).collect();
    let w = stats.iter().map(|s| s.1).sum::<f64>() / stats.len() as f64;
    let means: Vec<f64> = stats.iter().map(|s| s.0).collect();
    let b = n * mean_var(&means).1;
    if w == 0.0 {
        return if b == 0.0 { 1.0 } else { f64::INFINITY };
    }
    (((n - 1.0) / n * w + b / n) / w).sqrt()
}

/// Multi-chain effective sample size with Geyer's initial monotone sequence (Stan's
/// algorithm): autocorrelations combine the chains' autocovariances with the between-chain
/// variance, summed in pairs while positive and forced non-increasing.
fn ess(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len();
    let n = chains[0].len();
    let stats: Vec<(f64, f64)> = chains.iter().map(|c| mean_var(c)).collect();
    let w = stats.iter().map(|s| s.1).sum::<f64>() / m as f64;
    let means: Vec<f64> = stats.iter().map(|s| s.0).collect();
    let b_over_n = if m > 1 { mean_var(&means).1 } else { 0.0 };
    let var_plus = w * (n as f64 - 1.0) / n as f64 + b_over_n;
    if !(var_plus > 0.0) {
        return (m * n) as f64; // constant draws: nothing to correlate
    }
    // Mean over chains of the biased autocovariance at lag t.
    let acov = |t: usize| -> f64 {
        chains
            .iter()
            .zip(&means)
            .map(|(c, &mu)| (0..n - t).map(|i| (c[i] - mu) * (c[i + t] - mu)).sum::<f64>() / n as f64)
            .sum::<f64>()
            / m as f64
    };
    let rho = |t: usize| 1.0 - (w - acov(t)) / var_plus;
    let mut rho_hat = vec![1.0, rho(1)];
    let mut t = 0;
    while t + 4 < n {
        let (even, odd) = (rho(t + 2), rho(t + 3));
        if !(rho_hat[t] + rho_hat[t + 1] > 0.0) || !(even + odd > 0.0) {
            break;
        }
        rho_hat.push(even);
        rho_hat.push(odd);
        t += 2;
    }
    // Keep only the positive pairs, then make the pair sums non-increasing.
    let mut pairs: Vec<f64> = rho_hat.chunks(2).map(|p| p.iter().sum()).take_while(|&s: &f64| s > 0.0).collect();
    for k in 1..pairs.len() {
        pairs[k] = pairs[k].min(pairs[k - 1]);
    }
    let tau = (-1.0 + 2.0 * pairs.iter().sum::<f64>()).max(1.0 / ((m * n) as f64).log10());
    (m * n) as f64 / tau
}

/// Summaries of every dimension of a trace `[draws, chains, dim]`. A chain with a non-finite
/// draw in a dimension (a chain frozen as non-finite, whose trace the samplers mark NaN) is
/// left out of that dimension's statistics, and each summary says how many chains it used; a
/// dimension no chain has finite draws of is an error naming it.
pub fn summarize_trace(trace: &[f32], chains: usize, dim: usize) -> Result<Vec<Summary>> {
    let draws = trace.len() / (chains * dim).max(1);
    (0..dim)
        .map(|i| {
            let per_chain: Vec<Vec<f64>> = (0..chains)
                .map(|c| (0..draws).map(|s| trace[(s * chains + c) * dim + i] as f64).collect::<Vec<f64>>())
                .filter(|chain| chain.iter().all(|v| v.is_finite()))
                .collect();
            if per_chain.is_empty() && chains > 0 {
                return Err(Error::invalid(
                    "draws",
                    format!("none of the {chains} chains has finite draws of dimension {i}"),
                ));
            }
            summarize(&per_chain)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_with_non_finite_draws_are_left_out_and_counted() {
        // [draws 8, chains 3, dim 1]; chain 1 froze (NaN), chains 0 and 2 alternate 0 and 1.
        let trace: Vec<f32> = (0..8).flat_map(|s| [(s % 2) as f32, f32::NAN, ((s + 1) % 2) as f32]).collect();
        let s = &summarize_trace(&trace, 3, 1).unwrap()[0];
        assert_eq!(s.chains, 2);
        assert!((s.mean - 0.5).abs() < 1e-12 && s.sd > 0.4, "{s:?}");
        let all_frozen = vec![f32::NAN; 8 * 3];
        assert!(summarize_trace(&all_frozen, 3, 1).unwrap_err().to_string().contains("none of the 3 chains"));
    }

    #[test]
    fn rhat_flags_chains_that_disagree() {
        let chain = |shift: f64| -> Vec<f64> { (0..200).map(|i| ((i * 7919) % 200) as f64 / 200.0 + shift).collect() };
        let good = summarize(&[chain(0.0), chain(0.0), chain(0.0)]).unwrap();
        let bad = summarize(&[chain(0.0), chain(0.0), chain(3.0)]).unwrap();
        assert!(good.rhat < 1.01, "{}", good.rhat);
        assert!(bad.rhat > 1.5, "{}", bad.rhat);
    }

    #[test]
    fn too_few_draws_say_how_many_are_needed() {
        let e = summarize(&[vec![1.0, 2.0, 3.0]]).unwrap_err().to_string();
        assert!(e.contains(&format!("at least {MIN_DRAWS}")), "{e}");
    }
}
