//! Checkpoints as safetensors: W [n_hid, n_vis], b, c, the momentum buffer and the persistent
//! chains as float32 tensors; the visible kind, epoch, Gibbs counter and training configuration
//! in the metadata. Written atomically (temporary file, fsync, rename).

use super::train::{TrainConfig, TrainState};
use super::{Rbm, Visible};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "ebm-gpu rbm 1";

pub fn save(path: &Path, state: &TrainState, config: Option<&TrainConfig>) -> Result<()> {
    let rbm = &state.rbm;
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = vec![
        ("W".into(), vec![nh, nv], rbm.w().to_vec()),
        ("b".into(), vec![nv], rbm.b().to_vec()),
        ("c".into(), vec![nh], rbm.c().to_vec()),
        ("velocity".into(), vec![state.velocity.len()], state.velocity.clone()),
    ];
    if let Some(ch) = &state.chains {
        tensors.push(("chains".into(), vec![ch.len() / nv, nv], ch.clone()));
    }
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("visible".to_string(), rbm.visible.name().to_string());
    meta.insert("epoch".to_string(), state.epoch.to_string());
    meta.insert("step".to_string(), state.step.to_string());
    if let Some(c) = config {
        meta.insert(
            "config".to_string(),
            serde_json::to_string(c).map_err(|e| Error::invalid("checkpoint config", e.to_string()))?,
        );
    }
    crate::io::write_safetensors(path, &tensors, meta)
}

/// Loads a checkpoint; every tensor is checked for shape and finiteness.
pub fn load(path: &Path) -> Result<(TrainState, Option<TrainConfig>)> {
    let file = crate::io::SafetensorsFile::open(path, FORMAT, "RBM checkpoint")?;
    let bad = |m: String| Error::format(path, m);
    let meta = &file.meta;
    let tensor = |name: &str| file.required(name);
    let (ws, w) = tensor("W")?;
    let (_, b) = tensor("b")?;
    let (_, c) = tensor("c")?;
    if ws != [c.len(), b.len()] {
        return Err(bad(format!("W has shape {ws:?} but b has {} and c has {} entries", b.len(), c.len())));
    }
    let visible = Visible::parse(meta.get("visible").map(String::as_str).unwrap_or("bernoulli"))
        .map_err(|e| bad(e.to_string()))?;
    let rbm = Rbm::from_parts(&w, &b, &c, visible).map_err(|e| bad(e.to_string()))?;
    let velocity = file.tensor("velocity")?.map_or_else(|| vec![0.0; rbm.theta.len()], |t| t.1);
    let chains = file.tensor("chains")?.map(|t| t.1);
    let number = |k: &str| -> Result<u32> {
        meta.get(k).map_or(Ok(0), |v| v.parse().map_err(|_| bad(format!("metadata {k:?} = {v:?} is not a number"))))
    };
    let config = match meta.get("config") {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| bad(format!("metadata config: {e}")))?),
        None => None,
    };
    let state = TrainState { rbm, velocity, chains, step: number("step")?, epoch: number("epoch")? };
    if state.velocity.len() != state.rbm.theta.len() {
        return Err(bad(format!("velocity has {} entries, expected {}", state.velocity.len(), state.rbm.theta.len())));
    }
    if let Some(ch) = &state.chains
        && ch.len() % state.rbm.n_vis != 0
    {
        return Err(bad("chains are not whole rows of the visible layer".into()));
    }
    Ok((state, config))
}
