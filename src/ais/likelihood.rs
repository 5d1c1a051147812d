//! log Z and likelihoods of continuous energies by AIS: forward estimates from several bases
//! weighed against each other ([`super::report`]), and the image convention for bits per
//! dimension.

use super::AisReport;
use super::anneal::{self, AnnealConfig, Estimate};
use super::base::Base;
use crate::Result;
use crate::energy::batch::Evaluator;

/// States of the model to run reverse AIS from, and what they are (for the report).
pub struct ReverseFrom<'a> {
    /// E.g. "the 512 chains in samples.npy".
    pub from: String,
    /// [rows, dim]; the first `runs` rows are used.
    pub samples: &'a [f32],
}

/// What [`log_z`] found: the report, each base's forward estimate, and the reverse one.
pub struct LogZ {
    pub report: AisReport<String>,
    pub forward: Vec<Estimate>,
    pub reverse: Option<Estimate>,
}

/// Forward AIS from every base (each with its own pilot), combined into one report: the
/// conservative (largest) estimate with a warning when they disagree; with `reverse`, also
/// reverse AIS from those states down to the first base (with its transitions), the other side
/// of the bound when they are exact samples. `progress` hears each phase as it starts.
pub fn log_z(
    eval: &mut dyn Evaluator,
    bases: &[Base],
    config: &AnnealConfig,
    reverse: Option<ReverseFrom>,
    progress: &mut dyn FnMut(&str),
) -> Result<LogZ> {
    let mut estimates = Vec::new();
    let mut first_plan = None;
    for base in bases {
        progress(&format!("AIS from the {} base: pilot ({} runs)", base.label(), config.pilot_runs));
        let plan = anneal::adapt(eval, base, config)?;
        progress(&format!(
            "AIS from the {} base: {} runs x {} temperatures",
            base.label(),
            config.runs,
            config.schedule.intervals()
        ));
        estimates.push(anneal::forward(eval, base, config, &plan)?);
        first_plan.get_or_insert(plan);
    }
    let reverse = match (reverse, bases.first(), first_plan) {
        (Some(r), Some(base), Some(plan)) => {
            let runs = (r.samples.len() / base.dim()).min(config.runs);
            let config = AnnealConfig { runs, ..config.clone() };
            progress(&format!("reverse AIS from {} to the {} base: {runs} runs", r.from, base.label()));
            let e = anneal::reverse(eval, base, &config, &plan, &r.samples[..runs * base.dim()])?;
            Some((r.from, e))
        }
        _ => None,
    };
    let forward = bases.iter().map(|b| b.label()).zip(estimates).collect();
    finish(forward, reverse)
}

/// The report of forward estimates (each with its base's label) and a reverse one (with where
/// its states came from), warning where a few runs carry the weights or runs were dropped:
/// what one process's [`log_z`] gives, and what the join of its shards gives.
pub fn finish(forward: Vec<(String, Estimate)>, reverse: Option<(String, Estimate)>) -> Result<LogZ> {
    let results = forward.iter().map(|(b, e)| (b.clone(), e.result.clone())).collect();
    let mut report = super::report(results, reverse.as_ref().map(|(from, e)| (from.clone(), e.result.clone())))?;
    let estimates: Vec<Estimate> = forward.into_iter().map(|(_, e)| e).collect();
    for ((base, r), e) in report.forward.iter().zip(&estimates) {
        let ess = effective_runs(&r.log_weights);
        if ess < (MIN_EFFECTIVE_SHARE * r.log_weights.len() as f64).max(MIN_EFFECTIVE_RUNS) {
            report.warnings.push(format!(
                "from the {base} base the weights' effective sample size is {ess:.1} of {} runs: a few runs decide the estimate, its standard error understates the error, and log Z may be far too low. Use more temperatures (--betas) or leapfrog steps (--leapfrog).",
                r.log_weights.len()
            ));
        }
        if e.dropped > 0 {
            report.warnings.push(format!(
                "from the {base} base {} runs were dropped: the energy is not finite where they started",
                e.dropped
            ));
        }
    }
    Ok(LogZ { report, forward: estimates, reverse: reverse.map(|(_, e)| e) })
}

/// An estimate whose weights' effective sample size is below this share of its runs (or
/// below [`MIN_EFFECTIVE_RUNS`]) gets a warning: its standard error (the delta method's) is
/// then meaningless.
pub const MIN_EFFECTIVE_SHARE: f64 = 0.1;
pub const MIN_EFFECTIVE_RUNS: f64 = 2.0;

/// The effective sample size of importance weights given as logs, (Σ w)² / Σ w².
pub fn effective_runs(log_weights: &[f64]) -> f64 {
    let m = log_weights.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (s1, s2) = log_weights.iter().fold((0.0, 0.0), |(a, b), w| {
        let r = (w - m).exp();
        (a + r, b + r * r)
    });
    s1 * s1 / s2
}

/// Images in [0, 1] with 256 levels (k / 255) as the continuous points the likelihood is
/// measured on: z = 2 (k + u) / 256 - 1 with u ~ U(0, 1) (Philox `Init` stream of the row),
/// so that a density on [-1, 1]^d gives a probability of each 8-bit image.
pub fn dequantise(pixels: &[f32], dim: usize, seed: u64) -> Vec<f32> {
    let mut out = vec![0.0f32; pixels.len()];
    for (r, (row, z)) in pixels.chunks_exact(dim).zip(out.chunks_exact_mut(dim)).enumerate() {
        crate::rng::fill_uniforms(seed, r as u32, 1, crate::rng::Stream::Init, z);
        for (z, &v) in z.iter_mut().zip(row) {
            let k = (v.clamp(0.0, 1.0) * 255.0).round();
            *z = 2.0 * (k + *z) / 256.0 - 1.0;
        }
    }
    out
}

/// Bits per dimension of an NLL (nats per image) of a density on [-1, 1]^d over 8-bit images
/// dequantised as [`dequantise`]: (NLL + d ln 128) / (d ln 2), the figure published flows on
/// MNIST report.
pub fn bits_per_dim(nll: f64, dim: usize) -> f64 {
    (nll + dim as f64 * 128f64.ln()) / (dim as f64 * std::f64::consts::LN_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The uniform density on [-1, 1]^d is 8 bits per dimension: every 8-bit image equally likely.
    #[test]
    fn effective_runs_count_equal_and_dominated_weights() {
        assert!((effective_runs(&[0.5; 8]) - 8.0).abs() < 1e-12);
        assert!((effective_runs(&[0.0, -50.0, -60.0]) - 1.0).abs() < 1e-9);
    }

    /// Far too few temperatures for a sharp target: one run carries the weights, and the
    /// report says so.
    #[test]
    fn a_few_runs_carrying_the_weights_are_warned_about() {
        use crate::ais::base::BaseKind;
        use crate::energy::batch::CpuEvaluator;
        let d = 20;
        let energy: crate::energy::Energy =
            crate::energy::GaussianDiag { mean: vec![5.0; d], inv_var: vec![400.0; d] }.into();
        let base = Base::new(BaseKind::Isotropic(1.0), d, None, None).unwrap();
        let config = AnnealConfig::new(8, 100, 1);
        let report = log_z(&mut CpuEvaluator(&energy), &[base], &config, None, &mut |_| {}).unwrap().report;
        assert!(report.warnings.iter().any(|w| w.contains("effective sample size")), "{:?}", report.warnings);
    }

    #[test]
    fn the_uniform_density_is_eight_bits_per_dimension() {
        let d = 784;
        let nll = d as f64 * 2f64.ln();
        assert!((bits_per_dim(nll, d) - 8.0).abs() < 1e-12);
        let z = dequantise(&[0.0, 1.0, 128.0 / 255.0], 3, 1);
        assert!(z[0] >= -1.0 && z[0] < -1.0 + 2.0 / 256.0, "{z:?}");
        assert!(z[1] >= 1.0 - 2.0 / 256.0 && z[1] < 1.0, "{z:?}");
        assert!(z[2] >= 0.0 && z[2] < 2.0 / 256.0, "{z:?}");
    }
}
