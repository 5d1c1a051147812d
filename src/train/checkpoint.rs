//! Training checkpoints: one safetensors file holding the network under PyTorch's names (so
//! `ebm sample --energy net:checkpoint.safetensors` loads it, the architecture in the metadata;
//! [`Network::load`] skips the rest),
//! `train.log_z`, the optimizer moments `train.m` / `train.v`, the replay buffer
//! `train.replay` and a side network's packed parameters and moments (`train.generator`,
//! `train.generator_m`, `train.generator_v`, or `train.encoder...`; its architecture is in the
//! configuration), with the step (which is also the random numbers' position: they are Philox
//! counters), learning-rate scale, replay position and the training
//! configuration in the metadata. Written atomically.

use super::side::SideNet;
use super::{TrainConfig, TrainState};
use crate::nn::io::TRAINING_STATE_PREFIX;
use crate::nn::{Network, NetworkInternals};
use crate::{Error, Result};
use std::path::Path;

const FORMAT: &str = "ebm-gpu train 1";

pub fn save(path: &Path, state: &TrainState, config: &TrainConfig) -> Result<()> {
    let (mut tensors, mut meta) = state.net.safetensors_parts();
    let n = state.m.len();
    let t = |name: &str| format!("{TRAINING_STATE_PREFIX}{name}");
    tensors.push((t("log_z"), vec![1], vec![state.log_z]));
    tensors.push((t("m"), vec![n], state.m.clone()));
    tensors.push((t("v"), vec![n], state.v.clone()));
    if !state.replay.is_empty() {
        tensors.push((t("replay"), vec![state.replay.len() / config.dim(), config.dim()], state.replay.clone()));
    }
    if let (Some(side), Some((name, _))) = (&state.side, config.side_network()?) {
        let n = side.m.len();
        tensors.push((t(name), vec![n], side.net.pack_params()));
        tensors.push((t(&format!("{name}_m")), vec![n], side.m.clone()));
        tensors.push((t(&format!("{name}_v")), vec![n], side.v.clone()));
    }
    meta.insert("format".into(), FORMAT.into());
    meta.insert("step".into(), state.step.to_string());
    meta.insert("lr_scale".into(), format!("{:?}", state.lr_scale));
    meta.insert("replay_position".into(), config.replay_position(state.step).to_string());
    // The random numbers are Philox counters keyed by the seed: the step is their position.
    meta.insert("rng".into(), format!("philox4x32-10 seed {} next step {}", config.seed, state.step));
    meta.insert(
        "config".into(),
        serde_json::to_string(config).map_err(|e| Error::invalid("checkpoint config", e.to_string()))?,
    );
    crate::io::write_safetensors(path, &tensors, meta)
}

/// The training configuration stored in `path` when it is a training checkpoint (its metadata
/// says so), read without its tensors; None for any other safetensors file (a network saved by
/// `ebm init-net`, a PyTorch export), an error when the file cannot be read or its stored
/// configuration does not parse.
pub fn stored_config(path: &Path) -> Result<Option<TrainConfig>> {
    let bytes = crate::io::read_safetensors(path, "network")?;
    let bad = |m: String| Error::format(path, m);
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Ok(None);
    }
    let config = meta.get("config").ok_or_else(|| bad("metadata field \"config\" is missing".into()))?;
    Ok(Some(serde_json::from_str(config).map_err(|e| bad(format!("metadata config: {e}")))?))
}

/// Loads a checkpoint and its configuration; shapes and finiteness are checked.
pub fn load(path: &Path) -> Result<(TrainState, TrainConfig)> {
    let file = crate::io::SafetensorsFile::open(path, FORMAT, "training checkpoint")?;
    let bad = |m: String| Error::format(path, m);
    let meta = &file.meta;
    let field = |name: &str| meta.get(name).ok_or_else(|| bad(format!("metadata field {name:?} is missing")));
    let config: TrainConfig =
        serde_json::from_str(field("config")?).map_err(|e| bad(format!("metadata config: {e}")))?;
    let step = field("step")?.parse::<u32>().map_err(|e| bad(format!("metadata step: {e}")))?;
    let lr_scale = field("lr_scale")?.parse::<f32>().map_err(|e| bad(format!("metadata lr_scale: {e}")))?;
    let net = Network::load(path, None)?;
    let tensor = |name: &str, len: usize| -> Result<Vec<f32>> {
        let full = format!("{TRAINING_STATE_PREFIX}{name}");
        let (_, values) = file.required(&full)?;
        if values.len() != len {
            return Err(bad(format!("tensor {full:?} has {} values, expected {len}", values.len())));
        }
        Ok(values)
    };
    let n = net.param_count() + 1;
    let replay = if config.replay_len() > 0 { tensor("replay", config.replay_len())? } else { Vec::new() };
    let side = match config.side_network().map_err(|e| bad(format!("metadata config: {e}")))? {
        None => None,
        Some((name, arch)) => {
            let n = Network::random(&arch, 0)?.param_count();
            let (params, m, v) = (tensor(name, n)?, tensor(&format!("{name}_m"), n)?, tensor(&format!("{name}_v"), n)?);
            Some(SideNet::from_parts(&arch, &params, m, v)?)
        }
    };
    let state = TrainState {
        log_z: tensor("log_z", 1)?[0],
        m: tensor("m", n)?,
        v: tensor("v", n)?,
        replay,
        step,
        lr_scale,
        net,
        side,
    };
    state.validate(&config).map_err(|e| bad(e.to_string()))?;
    Ok((state, config))
}
