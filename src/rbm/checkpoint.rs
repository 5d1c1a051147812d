//! Checkpoints as safetensors: W [n_hid, n_vis], b, c, the momentum buffer and the persistent
//! chains as float32 tensors; the visible kind, epoch, Gibbs counter and training configuration
//! in the metadata. Written atomically (temporary file, fsync, rename).

use super::train::{TrainConfig, TrainState};
use super::{Rbm, Visible};
use crate::{Error, Result};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "ebm-gpu rbm 1";

pub fn save(path: &Path, state: &TrainState, config: Option<&TrainConfig>) -> Result<()> {
    let rbm = &state.rbm;
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let bytes = |v: &[f32]| -> Vec<u8> { bytemuck::cast_slice(v).to_vec() };
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = vec![
        ("W".into(), vec![nh, nv], bytes(rbm.w())),
        ("b".into(), vec![nv], bytes(rbm.b())),
        ("c".into(), vec![nh], bytes(rbm.c())),
        ("velocity".into(), vec![state.velocity.len()], bytes(&state.velocity)),
    ];
    if let Some(ch) = &state.chains {
        owned.push(("chains".into(), vec![ch.len() / nv, nv], bytes(ch)));
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, shape, data)| Ok((n.clone(), TensorView::new(Dtype::F32, shape.clone(), data).map_err(|e| Error::invalid("checkpoint", e.to_string()))?)))
        .collect::<Result<_>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("visible".to_string(), rbm.visible.name().to_string());
    meta.insert("epoch".to_string(), state.epoch.to_string());
    meta.insert("step".to_string(), state.step.to_string());
    if let Some(c) = config {
        meta.insert("config".to_string(), serde_json::to_string(c).map_err(|e| Error::invalid("checkpoint config", e.to_string()))?);
    }
    let data = safetensors::serialize(views, Some(meta)).map_err(|e| Error::invalid("checkpoint", e.to_string()))?;
    crate::io::write_atomic(path, &data)
}

/// Loads a checkpoint; every tensor is checked for shape and finiteness.
pub fn load(path: &Path) -> Result<(TrainState, Option<TrainConfig>)> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: String| Error::format(path, m);
    let st = SafeTensors::deserialize(&raw).map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&raw).map_err(|e| bad(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(format!("not an ebm-gpu RBM checkpoint (format {:?})", meta.get("format"))));
    }
    let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let t = st.tensor(name).map_err(|_| bad(format!("missing tensor {name:?}")))?;
        if t.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor {name:?} is {:?}, expected F32", t.dtype())));
        }
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("tensor {name:?} has a non-finite value ({}) at flat index {k}", values[k])));
        }
        Ok((t.shape().to_vec(), values))
    };
    let (ws, w) = tensor("W")?;
    let (_, b) = tensor("b")?;
    let (_, c) = tensor("c")?;
    if ws != [c.len(), b.len()] {
        return Err(bad(format!("W has shape {ws:?} but b has {} and c has {} entries", b.len(), c.len())));
    }
    let visible = Visible::parse(meta.get("visible").map(String::as_str).unwrap_or("bernoulli")).map_err(|e| bad(e.to_string()))?;
    let rbm = Rbm::from_parts(&w, &b, &c, visible).map_err(|e| bad(e.to_string()))?;
    let velocity = match st.tensor("velocity") {
        Ok(_) => tensor("velocity")?.1,
        Err(_) => vec![0.0; rbm.theta.len()],
    };
    let chains = match st.tensor("chains") {
        Ok(_) => Some(tensor("chains")?.1),
        Err(_) => None,
    };
    let number = |k: &str| -> Result<u32> { meta.get(k).map_or(Ok(0), |v| v.parse().map_err(|_| bad(format!("metadata {k:?} = {v:?} is not a number")))) };
    let config = match meta.get("config") {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| bad(format!("metadata config: {e}")))?),
        None => None,
    };
    let state = TrainState { rbm, velocity, chains, step: number("step")?, epoch: number("epoch")? };
    if state.velocity.len() != state.rbm.theta.len() {
        return Err(bad(format!("velocity has {} entries, expected {}", state.velocity.len(), state.rbm.theta.len())));
    }
    if let Some(ch) = &state.chains {
        if ch.len() % state.rbm.n_vis != 0 {
            return Err(bad("chains are not whole rows of the visible layer".into()));
        }
    }
    Ok((state, config))
}
