//! `rbm eval --ais-shard I/N` and `--ais-join`: a shard's log weights written as JSON with what
//! they were computed from (the AIS settings, the runs they are, a fingerprint of the RBM), and
//! the join that accepts only the shards of this model and these settings, each holding as many
//! finite log weights as its runs, and whose log Z an RBM of these parameters can have.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

use super::{AisArgs, EvalArgs};
use crate::rbm::eval::Executor;
use crate::rbm::{Rbm, Visible, ais};

/// The settings a shard's log weights were made with, which every shard of a join must share.
fn shard_settings(ais: &AisArgs, seed: u64) -> serde_json::Value {
    serde_json::json!({ "ais_runs": ais.ais_runs, "betas": ais.betas, "reverse_gibbs": ais.reverse_gibbs, "seed": seed })
}

/// The flags behind each field of [`shard_settings`], for messages.
const SETTING_FLAGS: [(&str, &str); 4] =
    [("ais_runs", "--ais-runs"), ("betas", "--betas"), ("reverse_gibbs", "--reverse-gibbs"), ("seed", "--seed")];

/// A fingerprint of the model a shard's runs sampled: its sizes, visible kind and parameters.
fn model_fingerprint(rbm: &Rbm) -> String {
    let kind = if rbm.visible == Visible::Gaussian { 1.0 } else { 0.0 };
    let mut values = vec![rbm.n_vis as f32, rbm.n_hid as f32, kind];
    values.extend_from_slice(&rbm.theta);
    crate::cli::rundir::data_hash(&values)
}

/// `rbm eval --ais-shard I/N`: this shard's runs of every estimate, their log weights to --json.
pub(super) fn run(
    a: &EvalArgs,
    exec: &Executor,
    rbm: &Rbm,
    train_rows: &[f32],
    (i, n): (u32, u32),
) -> anyhow::Result<()> {
    let total = a.ais.ais_runs;
    let bound = |k: u32| (k as u64 * total as u64 / n as u64) as usize;
    let (first, end) = (bound(i), bound(i + 1));
    if end - first < 2 {
        bail!(
            "--ais-shard {i}/{n} of --ais-runs {total} holds {} runs; each shard needs at least 2 (use at most {} shards)",
            end - first,
            total / 2
        );
    }
    let r = exec.log_z_ais(rbm, train_rows, &a.ais.config(a.seed, first as u32, end - first))?;
    let weights = |base: &str, e: &ais::AisResult| serde_json::json!({ "base": base, "log_z_base": e.log_z_base, "log_weights": e.log_weights });
    let report = serde_json::json!({
        "settings": shard_settings(&a.ais, a.seed),
        "model": model_fingerprint(rbm),
        "shard": [i, n],
        "runs": [first, end],
        "forward": r.forward.iter().map(|(b, e)| weights(b.name(), e)).collect::<Vec<_>>(),
        "reverse": r.reverse.as_ref().map(|(from, e)| weights(from, e)),
    });
    let Some(path) = a.json.as_ref() else { bail!("--ais-shard needs --json FILE for the shard's log weights") };
    crate::io::write_atomic(path, serde_json::to_string(&report)?.as_bytes())?;
    println!("wrote {} (AIS runs {first}..{} of {total}, shard {i}/{n})", path.display(), end - 1);
    Ok(())
}

/// The range log Z of a Bernoulli RBM with these parameters lies in, whatever they are:
/// Z = sum_v exp(b.v + sum_j softplus(c_j + W_j.v)), each softplus in [0, ln 2 + |x|]; none for
/// Gaussian visibles. A joined estimate outside it comes from corrupt log weights.
fn log_z_range(rbm: &Rbm) -> Option<(f64, f64)> {
    if rbm.visible != Visible::Bernoulli {
        return None;
    }
    let ln2 = std::f64::consts::LN_2;
    let l1 = rbm.theta.iter().map(|v| v.abs() as f64).sum::<f64>();
    let l1_b = rbm.b().iter().map(|v| v.abs() as f64).sum::<f64>();
    // One nat of slack for rounding in the runs' sums.
    Some((rbm.n_vis as f64 * ln2 - l1_b - 1.0, (rbm.n_vis + rbm.n_hid) as f64 * ln2 + l1 + 1.0))
}

/// `rbm eval --ais-join`: the report one process would make from all the shards' runs.
pub(super) fn join(a: &EvalArgs, rbm: &Rbm, files: &[PathBuf]) -> anyhow::Result<ais::AisReport> {
    let settings = shard_settings(&a.ais, a.seed);
    let model = model_fingerprint(rbm);
    let mut next_run = 0u64;
    let mut estimates: Vec<(String, f64, Vec<f64>)> = Vec::new();
    for (k, path) in files.iter().enumerate() {
        let shard = read_shard(path)?;
        let named = |m: String| anyhow::anyhow!("--ais-join {}: {m}", path.display());
        for (field, flag) in SETTING_FLAGS {
            if shard["settings"][field] != settings[field] {
                return Err(named(format!(
                    "made with {flag} {}, but this evaluation has {flag} {}; give the shards' --ais-runs, --betas, --reverse-gibbs and --seed",
                    shard["settings"][field], settings[field]
                )));
            }
        }
        match shard["model"].as_str() {
            Some(m) if m == model => {}
            Some(_) => {
                return Err(named(format!(
                    "computed on another model than {}'s checkpoint (its parameters differ); join the shards of this --run-dir",
                    a.run_dir.display()
                )));
            }
            None => {
                return Err(named(
                    "records no model fingerprint (an older --ais-shard run); run the shard again".into(),
                ));
            }
        }
        let runs = shard["runs"].as_array().and_then(|r| Some((r.first()?.as_u64()?, r.get(1)?.as_u64()?)));
        if runs.map(|r| r.0) != Some(next_run) {
            return Err(named(format!(
                "holds runs {} but run {next_run} comes next: give every shard once, shard 0 first",
                shard["runs"]
            )));
        }
        let (first, end) = runs.unwrap_or_default();
        if end <= first || end > a.ais.ais_runs as u64 {
            return Err(named(format!("holds runs {first}..{end}, not a range of --ais-runs {}", a.ais.ais_runs)));
        }
        next_run = end;
        let parts: Vec<&serde_json::Value> = shard["forward"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(shard["reverse"].is_object().then_some(&shard["reverse"]))
            .collect();
        if k > 0 && parts.len() != estimates.len() {
            return Err(named(format!("holds {} estimates, shard 0 holds {}", parts.len(), estimates.len())));
        }
        for (j, part) in parts.into_iter().enumerate() {
            let parsed = (|| {
                Some((
                    part["base"].as_str()?.to_string(),
                    part["log_z_base"].as_f64()?,
                    part["log_weights"].as_array()?.iter().map(|w| w.as_f64()).collect::<Option<Vec<f64>>>()?,
                ))
            })();
            let (name, log_z_base, weights) = parsed.ok_or_else(|| named(format!("estimate {j} is malformed")))?;
            if weights.len() as u64 != end - first {
                return Err(named(format!(
                    "estimate {j} ({name}) holds {} log weights for its {} runs {first}..{end}",
                    weights.len(),
                    end - first
                )));
            }
            if let Some(w) = std::iter::once(log_z_base).chain(weights.iter().copied()).find(|w| !w.is_finite()) {
                return Err(named(format!("estimate {j} ({name}) holds a non-finite number ({w})")));
            }
            match estimates.get_mut(j) {
                Some(e) if e.0 == name && e.1 == log_z_base => e.2.extend(weights),
                Some(e) if e.0 == name => {
                    return Err(named(format!(
                        "estimate {j} ({name}) has base log Z {log_z_base}, shard 0 has {} (another --data?)",
                        e.1
                    )));
                }
                Some(e) => {
                    return Err(named(format!(
                        "estimate {j} is from the {name} base, shard 0's from the {} base",
                        e.0
                    )));
                }
                None => estimates.push((name, log_z_base, weights)),
            }
        }
    }
    if next_run != a.ais.ais_runs as u64 {
        bail!("--ais-join: the shards hold runs 0..{next_run}, --ais-runs is {}: a shard is missing", a.ais.ais_runs);
    }
    let mut forward = Vec::new();
    let mut reverse = None;
    for (name, log_z_base, weights) in estimates {
        let result = |direction| ais::summarize(weights, log_z_base, direction);
        match [ais::Base::BaseRate, ais::Base::Uniform].into_iter().find(|b| b.name() == name) {
            Some(base) => forward.push((base, result(ais::Direction::Forward)?)),
            None => reverse = Some((name, result(ais::Direction::Reverse)?)),
        }
    }
    let range = log_z_range(rbm);
    let estimates =
        forward.iter().map(|(b, r)| (b.name().to_string(), r)).chain(reverse.iter().map(|(n, r)| (n.clone(), r)));
    for (name, r) in estimates {
        let outside = range.is_some_and(|(lo, hi)| !(lo..=hi).contains(&r.log_z));
        if !r.log_z.is_finite() || !r.std_err.is_finite() || outside {
            let (lo, hi) = range.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
            bail!(
                "--ais-join: the shards' {name} log weights give log Z {} +- {}, which no RBM of these parameters has \
                 (it lies in [{lo:.1}, {hi:.1}]); a shard file is corrupt: run its --ais-shard again",
                r.log_z,
                r.std_err
            );
        }
    }
    Ok(ais::report(forward, reverse)?)
}

/// A shard's JSON, read as a regular file with a bound (a named pipe or a huge file is refused).
fn read_shard(path: &Path) -> anyhow::Result<serde_json::Value> {
    let value = crate::cli::rundir::read_json::<serde_json::Value>(path, "--ais-shard JSON")
        .with_context(|| format!("--ais-join {}", path.display()))?;
    let Some(value) = value else { bail!("--ais-join {}: no such file", path.display()) };
    if !value.is_object() {
        bail!("--ais-join {}: not the JSON of an --ais-shard run", path.display());
    }
    Ok(value)
}
