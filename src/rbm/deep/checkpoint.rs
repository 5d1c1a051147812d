//! Deep-model checkpoints as safetensors: per layer k (1-based) W{k} [n_hid, n_vis], b{k},
//! c{k} and its momentum velocity{k}; a DBM in training adds its persistent chains (chains_v,
//! chains_h1, chains_h2). Metadata: the format, the kind ("dbn" or "dbm"), the layer sizes
//! (visible first, comma-separated), epoch, Gibbs step and the training configuration (JSON).
//! Written atomically (temporary file, fsync, rename).

use super::cpu::Chains;
use super::train::DbmState;
use super::{Deep, Kind};
use crate::rbm::{Rbm, Visible};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "ebm-gpu deep 1";

/// What a checkpoint holds besides the model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra {
    pub velocity: Option<Vec<Vec<f32>>>,
    pub chains: Option<Chains>,
    pub epoch: u32,
    pub step: u32,
    /// The training configuration as JSON, as the trainer wrote it.
    pub config: Option<String>,
}

pub fn save(path: &Path, model: &Deep, extra: &Extra) -> Result<()> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (k, l) in model.layers.iter().enumerate() {
        let n = k + 1;
        tensors.push((format!("W{n}"), vec![l.n_hid, l.n_vis], l.w().to_vec()));
        tensors.push((format!("b{n}"), vec![l.n_vis], l.b().to_vec()));
        tensors.push((format!("c{n}"), vec![l.n_hid], l.c().to_vec()));
        if let Some(v) = &extra.velocity {
            tensors.push((format!("velocity{n}"), vec![v[k].len()], v[k].clone()));
        }
    }
    if let Some(ch) = &extra.chains {
        let s = model.sizes();
        for (name, x, n) in [("chains_v", &ch.v, s[0]), ("chains_h1", &ch.h1, s[1]), ("chains_h2", &ch.h2, s[2])] {
            tensors.push((name.into(), vec![x.len() / n, n], x.clone()));
        }
    }
    let sizes: Vec<String> = model.sizes().iter().map(|s| s.to_string()).collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("kind".to_string(), model.kind.name().to_string());
    meta.insert("sizes".to_string(), sizes.join(","));
    meta.insert("epoch".to_string(), extra.epoch.to_string());
    meta.insert("step".to_string(), extra.step.to_string());
    if let Some(c) = &extra.config {
        meta.insert("config".to_string(), c.clone());
    }
    crate::io::write_safetensors(path, &tensors, meta)
}

/// A DBM's training state in a checkpoint.
pub fn save_dbm(path: &Path, state: &DbmState, config: &str) -> Result<()> {
    let extra = Extra {
        velocity: Some(state.velocity.to_vec()),
        chains: Some(state.chains.clone()),
        epoch: state.epoch,
        step: state.step,
        config: Some(config.to_string()),
    };
    save(path, &state.dbm, &extra)
}

/// Loads a checkpoint, checking every tensor's shape against the sizes in its metadata.
pub fn load(path: &Path) -> Result<(Deep, Extra)> {
    let file = crate::io::SafetensorsFile::open(path, FORMAT, "deep model (DBN/DBM) checkpoint")?;
    let bad = |m: String| Error::format(path, m);
    let meta = &file.meta;
    let kind =
        Kind::parse(meta.get("kind").map_or("", String::as_str)).map_err(|e| bad(format!("metadata kind: {e}")))?;
    let sizes: Vec<usize> = meta
        .get("sizes")
        .ok_or_else(|| bad("no layer sizes in its metadata".into()))?
        .split(',')
        .map(|s| s.trim().parse::<usize>().map_err(|_| bad(format!("metadata sizes: {s:?} is not a number"))))
        .collect::<Result<_>>()?;
    super::check_layer_sizes(&sizes).map_err(|e| bad(format!("metadata sizes: {e}")))?;
    let mut layers = Vec::new();
    let mut velocity = Vec::new();
    for (k, w) in sizes.windows(2).enumerate() {
        let n = k + 1;
        let (ws, wv) = file.required(&format!("W{n}"))?;
        let (_, b) = file.required(&format!("b{n}"))?;
        let (_, c) = file.required(&format!("c{n}"))?;
        if ws != [w[1], w[0]] || b.len() != w[0] || c.len() != w[1] {
            return Err(bad(format!(
                "layer {n}: W{n} has shape {ws:?}, b{n} {} and c{n} {} entries, but the sizes {sizes:?} say W{n} is [{}, {}]",
                b.len(),
                c.len(),
                w[1],
                w[0]
            )));
        }
        let rbm = Rbm::from_parts(&wv, &b, &c, Visible::Bernoulli).map_err(|e| bad(format!("layer {n}: {e}")))?;
        if let Some((_, vel)) = file.tensor(&format!("velocity{n}"))? {
            if vel.len() != rbm.theta.len() {
                return Err(bad(format!("velocity{n} has {} entries, expected {}", vel.len(), rbm.theta.len())));
            }
            velocity.push(vel);
        }
        layers.push(rbm);
    }
    let model = Deep::new(kind, layers).map_err(|e| bad(e.to_string()))?;
    let chains = match file.tensor("chains_h1")? {
        None => None,
        Some((_, h1)) => {
            let (_, v) = file.required("chains_v")?;
            let (_, h2) = file.required("chains_h2")?;
            let rows = h1.len() / sizes[1];
            if h1.len() % sizes[1] != 0 || v.len() != rows * sizes[0] || h2.len() != rows * sizes[2] {
                return Err(bad("the persistent chains are not whole rows of the layers".into()));
            }
            let mut ch = Chains::from_h1(&h1, [sizes[0], sizes[1], sizes[2]]);
            ch.v = v;
            ch.h2 = h2;
            Some(ch)
        }
    };
    let number = |k: &str| -> Result<u32> {
        meta.get(k).map_or(Ok(0), |v| v.parse().map_err(|_| bad(format!("metadata {k:?} = {v:?} is not a number"))))
    };
    let velocity = (velocity.len() == model.layers.len()).then_some(velocity);
    let extra =
        Extra { velocity, chains, epoch: number("epoch")?, step: number("step")?, config: meta.get("config").cloned() };
    Ok((model, extra))
}
