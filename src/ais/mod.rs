//! Annealed importance sampling, the estimator that every model's AIS shares: temperature
//! schedules, the combination of run weights into log Z with its standard error, and the
//! report that weighs forward estimates from several bases against the reverse check.
//! The annealing itself is per model family: RBMs by Gibbs sampling
//! ([`crate::rbm::ais`]), any continuous energy by HMC ([`anneal`]).

pub mod anneal;
pub mod base;
pub mod likelihood;

use crate::{Error, Result};

/// What a forward estimate's base is called in reports and shard files.
pub trait Named {
    fn name(&self) -> &str;
}

impl Named for String {
    fn name(&self) -> &str {
        self
    }
}

/// How the inverse temperatures go from 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BetaSchedule {
    /// Salakhutdinov & Murray's piecewise schedule (1000 steps on [0, 0.5], 4000 on [0.5, 0.9],
    /// 10000 on [0.9, 1]) scaled to n intervals in the same proportions.
    Piecewise(usize),
    /// n intervals spaced by a sigmoid (Grosse et al. 2013; Wu et al. 2017):
    /// beta_k ∝ s(4 (2k/n - 1)) - s(-4), denser near both ends, where a continuous model's
    /// intermediate distributions change fastest.
    Sigmoid(usize),
}

impl BetaSchedule {
    /// beta_0 = 0, ..., beta_n = 1.
    pub fn betas(&self) -> Vec<f32> {
        match *self {
            BetaSchedule::Piecewise(n) => {
                let n1 = (n * 1000 / 15000).max(1);
                let n2 = (n * 4000 / 15000).max(1);
                let n3 = n.saturating_sub(n1 + n2).max(1);
                let mut out = vec![0.0f32];
                for (lo, hi, m) in [(0.0f64, 0.5, n1), (0.5, 0.9, n2), (0.9, 1.0, n3)] {
                    out.extend((1..=m).map(|k| (lo + (hi - lo) * k as f64 / m as f64) as f32));
                }
                out
            }
            BetaSchedule::Sigmoid(n) => {
                let s = |k: usize| 1.0 / (1.0 + (-4.0 * (2.0 * k as f64 / n as f64 - 1.0)).exp());
                let (lo, hi) = (s(0), s(n));
                let mut out: Vec<f32> = (0..=n).map(|k| ((s(k) - lo) / (hi - lo)) as f32).collect();
                // The ends exactly, whatever the rounding.
                out[0] = 0.0;
                out[n] = 1.0;
                out
            }
        }
    }

    pub fn intervals(&self) -> usize {
        self.betas().len() - 1
    }
}

/// Which way the temperatures go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Base samples, beta 0 -> 1: log Z_base + log mean w, a stochastic lower bound (Jensen).
    Forward,
    /// Samples of the model, beta 1 -> 0 (reverse AIS; Grosse et al. 2015): each weight's mean
    /// is Z_base / Z, so log Z_base - log mean w is a stochastic upper bound when the start
    /// states are exact samples of the model (approximately so from long chains).
    Reverse,
}

#[derive(Clone, Debug)]
pub struct AisResult {
    /// log Z estimate: log Z_base + log mean w (forward) or log Z_base - log mean w (reverse).
    pub log_z: f64,
    /// Standard error of log_z by the delta method: sd(w) / (sqrt(runs) mean(w)).
    pub std_err: f64,
    /// log Z at mean w -/+ 3 sd(mean w) (an end is -inf or +inf where the interval reaches 0).
    pub log_z_lower: f64,
    pub log_z_upper: f64,
    pub log_z_base: f64,
    pub direction: Direction,
    pub log_weights: Vec<f64>,
}

impl AisResult {
    /// The estimate as JSON: log Z, its standard error, the 3-sd interval of the mean weight
    /// as log Z (an end at infinity is null), which bound it is, and the number of runs.
    pub fn json(&self) -> serde_json::Value {
        let finite = |v: f64| v.is_finite().then_some(v);
        let bound = match self.direction {
            Direction::Forward => "lower, in expectation",
            Direction::Reverse => "upper, in expectation when the start states are exact samples",
        };
        serde_json::json!({
            "log_z": self.log_z, "std_err": self.std_err,
            "interval_3sd": [finite(self.log_z_lower), finite(self.log_z_upper)],
            "bound": bound, "runs": self.log_weights.len(),
        })
    }
}

/// Combines log weights into the estimate and its standard error.
pub fn summarize(log_weights: Vec<f64>, log_z_base: f64, direction: Direction) -> Result<AisResult> {
    let n = log_weights.len() as f64;
    if log_weights.iter().any(|w| !w.is_finite()) {
        return Err(Error::invalid("AIS", "a run's log weight is not finite (the model's parameters are extreme)"));
    }
    let m = log_weights.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let r: Vec<f64> = log_weights.iter().map(|w| (w - m).exp()).collect();
    let mean = r.iter().sum::<f64>() / n;
    let sd = if n > 1.0 { (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { f64::NAN };
    let se_mean = sd / n.sqrt();
    // log mean w at the interval's ends (-inf where it reaches 0).
    let log_mean = |x: f64| if x > 0.0 { m + x.ln() } else { f64::NEG_INFINITY };
    let (lw, lo, hi) = (log_mean(mean), log_mean(mean - 3.0 * se_mean), log_mean(mean + 3.0 * se_mean));
    let (log_z, log_z_lower, log_z_upper) = match direction {
        Direction::Forward => (log_z_base + lw, log_z_base + lo, log_z_base + hi),
        Direction::Reverse => (log_z_base - lw, log_z_base - hi, log_z_base - lo),
    };
    Ok(AisResult { log_z, std_err: se_mean / mean, log_z_lower, log_z_upper, log_z_base, direction, log_weights })
}

/// Two estimates agree when they differ by at most 3 combined standard errors plus this many
/// nats (the delta-method error understates the spread of heavy-tailed weights).
pub const AGREE_NATS: f64 = 0.05;
/// Forward and reverse estimates further apart than this leave log Z too loosely bounded to
/// trust the likelihood to a nat: the report says so.
pub const WIDE_NATS: f64 = 1.0;

/// The default evaluation's findings: forward estimates from several bases, the reverse
/// check, the log Z to use and what disagrees.
#[derive(Clone, Debug)]
pub struct AisReport<B> {
    pub forward: Vec<(B, AisResult)>,
    /// Reverse AIS and where its start states came from (e.g. "exact samples").
    pub reverse: Option<(String, AisResult)>,
    /// The log Z to use: the most precise forward estimate (smallest standard error) when they
    /// all agree, else the largest (the conservative one: forward AIS errs low, and a larger
    /// log Z gives a lower likelihood).
    pub log_z: f64,
    pub std_err: f64,
    /// log Z as an interval, (forward, reverse) in increasing order, when the reverse check
    /// does not contradict the forward estimate (a reverse estimate below it but within their
    /// errors gives a narrow interval around both).
    pub interval: Option<(f64, f64)>,
    /// Each disagreement found, as a sentence with its remedy; empty when all agree.
    pub warnings: Vec<String>,
}

fn disagree(a: &AisResult, b: &AisResult) -> bool {
    (a.log_z - b.log_z).abs() > 3.0 * a.std_err.hypot(b.std_err) + AGREE_NATS
}

/// Combines forward estimates (at least one) and an optional reverse check into a report.
pub fn report<B: Named + Clone>(
    forward: Vec<(B, AisResult)>,
    reverse: Option<(String, AisResult)>,
) -> Result<AisReport<B>> {
    let Some((top_base, top)) = forward.iter().max_by(|a, b| a.1.log_z.total_cmp(&b.1.log_z)).cloned() else {
        return Err(Error::invalid("AIS report", "needs at least one forward estimate"));
    };
    let split = forward.iter().enumerate().any(|(i, (_, a))| forward[i + 1..].iter().any(|(_, b)| disagree(a, b)));
    // Agreeing estimates: a heavy-tailed run set can land high by chance, so the precise one.
    let best = if split {
        top.clone()
    } else {
        forward.iter().min_by(|a, b| a.1.std_err.total_cmp(&b.1.std_err)).map_or(top.clone(), |b| b.1.clone())
    };
    let mut warnings = Vec::new();
    for (i, (ba, a)) in forward.iter().enumerate() {
        for (bb, b) in &forward[i + 1..] {
            if disagree(a, b) {
                warnings.push(format!(
                    "AIS from the {} base gives log Z {:.4} +- {:.4} but from the {} base {:.4} +- {:.4}: they differ by {:.2} nats, far beyond their standard errors, so at least one run set misses part of the model's mass. Using the larger, {:.4} (from the {} base: the conservative choice, it gives the lower likelihood). Confirm with more temperatures (--betas) or runs (--ais-runs).",
                    ba.name(), a.log_z, a.std_err, bb.name(), b.log_z, b.std_err, (a.log_z - b.log_z).abs(), top.log_z, top_base.name()
                ));
            }
        }
    }
    let mut interval = None;
    if let Some((from, r)) = &reverse {
        if r.log_z < best.log_z && disagree(r, &best) {
            warnings.push(format!(
                "the reverse check (AIS from {from}) gives log Z {:.4} +- {:.4}, below the forward estimate {:.4}: an upper bound cannot lie below a lower one, so its start states are not yet samples of the model (longer chains: --reverse-gibbs for an RBM, a longer `ebm sample` run for --reverse-from) or the temperatures are too few (--betas). No interval reported.",
                r.log_z, r.std_err, best.log_z
            ));
        } else {
            let (lo, hi) = (r.log_z.min(best.log_z), r.log_z.max(best.log_z));
            if hi - best.log_z > WIDE_NATS {
                warnings.push(format!(
                    "log Z lies between {:.4} (forward) and {:.4} (reverse, from {from}): {:.2} nats apart, so the forward runs may miss mass the model's own samples reach and the likelihood may be that much lower. Use more temperatures (--betas) or runs (--ais-runs).",
                    best.log_z, hi, hi - best.log_z
                ));
            }
            interval = Some((lo, hi));
        }
    }
    Ok(AisReport { log_z: best.log_z, std_err: best.std_err, interval, forward, reverse, warnings })
}
