//! What `ebm sample` reports besides its states: acceptance, swap rates, the diagnostics'
//! table and the convergence check it shares with `ebm merge`, and a shard's settings.

use super::{SampleArgs, SamplerArg};
use crate::eval::diagnostics::{self, Summary};
use crate::sampler::ChainStats;
use clap::ValueEnum;

/// The settings a shard's chains depend on besides --chains, --seed and the energy, by flag,
/// for its provenance record (`crate::cli::shard`): shards that differ in any are not one run.
pub(super) fn shard_settings(args: &SampleArgs, executor: &str) -> serde_json::Map<String, serde_json::Value> {
    // The CPU executor's chains do not depend on its thread count; a GPU's rounding may depend
    // on the adapter.
    let executor = if executor.starts_with("cpu") { "cpu" } else { executor };
    // Numbers as the user would type them (an f32 widened to JSON's f64 would not be).
    let f = |v: f32| v.to_string();
    let json = serde_json::json!({
        "--sampler": args.sampler.unwrap_or(SamplerArg::Mala).to_possible_value().map(|v| v.get_name().to_string()),
        "--steps": args.steps,
        "--step-size": f(args.step_size),
        "--leapfrog": args.leapfrog,
        "--leapfrog-jitter": args.leapfrog_jitter,
        "--step-jitter": f(args.step_jitter),
        "--warmup": args.warmup,
        "--adapt-per-chain": args.adapt_per_chain,
        "--no-adapt-mass": args.no_adapt_mass,
        "--target-accept": args.target_accept.map(|v| v.to_string()),
        "--tempering": args.tempering,
        "--max-temperature": f(args.max_temperature),
        "--temperatures": args.temperatures.as_ref().map(|t| t.iter().map(|&v| f(v)).collect::<Vec<_>>().join(",")),
        "--swap-every": args.swap_every,
        "--noise-std": args.noise_std.map(f),
        "--anneal": args.anneal,
        "--no-denoise": args.no_denoise,
        "--grad-clamp": args.grad_clamp.map(f),
        "--box": args.box_clamp.map(|(lo, hi)| format!("{lo},{hi}")),
        "--init": args.init,
        "--init-std": f(args.init_std),
        "--fix": args.fix,
        "--class": args.class,
        "--thin": args.thin,
        "--backend": executor,
    });
    match json {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// (mean, min, max) acceptance rate over chains.
pub(super) fn acceptance_summary(stats: &ChainStats, steps: u32) -> (f64, f64, f64) {
    let rates: Vec<f64> = stats.accepted.iter().map(|&a| a as f64 / steps as f64).collect();
    let (lo, hi) = rates.iter().fold((1.0f64, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
    (stats.acceptance_rate(steps), lo, hi)
}

/// Accepted / attempted swaps per neighbour pair over the sampling phase (pair r is tried in
/// the rounds of parity r % 2; rounds are counted from global step 0).
pub(super) fn swap_acceptance(
    phase: &ChainStats,
    replicas: usize,
    swap_every: u32,
    steps_done: u32,
    warmup: u32,
) -> Option<Vec<f64>> {
    if replicas < 2 {
        return None;
    }
    let pairs = replicas - 1;
    let chains = phase.swaps.len() / pairs;
    let rounds_by_parity = |steps: u32, parity: u32| {
        let rounds = steps / swap_every;
        if parity == 0 { rounds.div_ceil(2) } else { rounds / 2 }
    };
    Some(
        (0..pairs)
            .map(|r| {
                let parity = (r % 2) as u32;
                let attempts =
                    (rounds_by_parity(steps_done, parity) - rounds_by_parity(warmup, parity)) as f64 * chains as f64;
                let accepted: f64 = phase.swaps.iter().skip(r).step_by(pairs).map(|&v| v as f64).sum();
                if attempts > 0.0 { accepted / attempts } else { 0.0 }
            })
            .collect(),
    )
}

pub(crate) fn print_summaries(summaries: &[Summary]) {
    println!(
        "{:>4} {:>10} {:>10} {:>10} {:>10} {:>7} {:>9} {:>9} {:>7}",
        "dim", "mean", "sd", "q05", "q95", "R-hat", "ESS bulk", "ESS tail", "chains"
    );
    for (i, s) in summaries.iter().enumerate().take(8) {
        println!(
            "{i:>4} {:>10.4} {:>10.4} {:>10.4} {:>10.4} {:>7.3} {:>9.0} {:>9.0} {:>7}",
            s.mean, s.sd, s.q05, s.q95, s.rhat, s.ess_bulk, s.ess_tail, s.chains
        );
    }
    if summaries.len() > 8 {
        println!("     ({} more dimensions in the JSON)", summaries.len() - 8);
    }
    warn_convergence(summaries);
}

/// The one convergence check of `ebm sample` and `ebm merge`: a warning on stderr for every
/// way the draws fail it (R-hat above [`diagnostics::MAX_RHAT`], bulk ESS below
/// [`diagnostics::MIN_ESS_BULK`]), each saying what to do; returns the warnings.
pub(crate) fn warn_convergence(summaries: &[Summary]) -> Vec<String> {
    let warnings = diagnostics::convergence_warnings(summaries);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    warnings
}

/// The one-line convergence summary of a run checked without --diagnostics: the worst R-hat
/// and the lowest bulk ESS over the dimensions, then the warnings.
pub(crate) fn print_convergence(summaries: &[Summary], thin: u32) {
    let worst_rhat =
        summaries.iter().map(|s| s.rhat).fold(f64::NEG_INFINITY, |a, b| if b > a || b.is_nan() { b } else { a });
    let lowest_ess =
        summaries.iter().map(|s| s.ess_bulk).fold(f64::INFINITY, |a, b| if b < a || b.is_nan() { b } else { a });
    println!(
        "convergence: worst R-hat {worst_rhat:.3}, lowest bulk ESS {lowest_ess:.0} over {} dimensions (a draw every \
         {thin} steps after warm-up; --diagnostics FILE writes the table)",
        summaries.len()
    );
    warn_convergence(summaries);
}
