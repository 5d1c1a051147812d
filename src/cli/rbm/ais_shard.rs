//! `rbm eval --ais-shard I/N` and `--ais-join` ([`crate::cli::ais_shard`]): an RBM's settings
//! and fingerprint, and the join's last check, that each estimate's log Z is one an RBM of these
//! parameters can have.

use anyhow::bail;
use std::path::PathBuf;

use super::{AisArgs, EvalArgs};
use crate::cli::ais_shard::{self, Part, Provenance};
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

/// What every shard of an RBM's join shares: the AIS settings and the model's fingerprint.
fn provenance<'a>(a: &EvalArgs, rbm: &Rbm) -> Provenance<'a> {
    Provenance {
        settings: shard_settings(&a.ais, a.seed),
        flags: &SETTING_FLAGS,
        model: model_fingerprint(rbm),
        model_hint: "join the shards of this --run-dir",
    }
}

/// `rbm eval --ais-shard I/N`: this shard's runs of every estimate, their log weights to --json.
pub(super) fn run(
    a: &EvalArgs,
    exec: &Executor,
    rbm: &Rbm,
    train_rows: &[f32],
    shard: (u32, u32),
) -> anyhow::Result<()> {
    let (first, end) = ais_shard::runs_of(shard, a.ais.ais_runs)?;
    let Some(path) = a.json.as_ref() else { bail!("--ais-shard needs --json FILE for the shard's log weights") };
    let r = exec.log_z_ais(rbm, train_rows, &a.ais.config(a.seed, first as u32, end - first))?;
    let part = |name: &str, e: &ais::AisResult| Part::new(name, e.log_z_base, e.log_weights.clone());
    let forward: Vec<Part> = r.forward.iter().map(|(b, e)| part(b.name(), e)).collect();
    let reverse = r.reverse.as_ref().map(|(from, e)| part(from, e));
    ais_shard::write(path, &provenance(a, rbm), shard, (first, end), &forward, reverse.as_ref())
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
    let (parts, reverse_part) = ais_shard::join(files, &provenance(a, rbm), a.ais.ais_runs)?;
    let mut forward = Vec::new();
    let mut reverse = None;
    for part in parts.into_iter().chain(reverse_part) {
        let result = |direction| ais::summarize(part.log_weights.clone(), part.log_z_base, direction);
        match [ais::Base::BaseRate, ais::Base::Uniform].into_iter().find(|b| b.name() == part.name) {
            Some(base) => forward.push((base, result(ais::Direction::Forward)?)),
            None => reverse = Some((part.name.clone(), result(ais::Direction::Reverse)?)),
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
