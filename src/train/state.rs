//! [`TrainState`]: what a run holds between steps (the network, the optimizer moments, the
//! replay buffer, the step, a side network), checked against its [`TrainConfig`].

use super::{TrainConfig, side};
use crate::nn::{Network, NetworkInternals};
use crate::rng::{self, Stream};
use crate::{Error, Result};

/// Everything a run needs to continue: parameters, optimizer moments, replay buffer, step.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub net: Network,
    /// NCE's learned log normaliser (unused by the other losses).
    pub log_z: f32,
    /// Optimizer moments over [network parameters (packed), log Z]; SGD keeps its momentum in `m`.
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// [capacity, dim] for the contrastive losses, empty for NCE.
    pub replay: Vec<f32>,
    /// Training steps done.
    pub step: u32,
    /// Multiplier of the configured learning rate (halved by each divergence rollback).
    pub lr_scale: f32,
    /// The side network ([`side`]): cooperative learning's generator or a latent EBM's encoder.
    pub side: Option<side::SideNet>,
}

impl TrainState {
    /// A fresh state: the replay buffer uniform in the box (Philox `(slot, 0, Init, 3 + i / 4)`).
    pub fn new(net: Network, config: &TrainConfig) -> Result<Self> {
        let d = config.dim();
        check_input(&net, config)?;
        let n = net.param_count() + 1;
        let slots = config.replay_len() / d;
        let mut replay = vec![0.0; slots * d];
        for (slot, row) in replay.chunks_exact_mut(d).enumerate() {
            for (i, x) in row.iter_mut().enumerate() {
                let u = rng::uniform4(config.seed, slot as u32, 0, Stream::Init, 3 + i as u32 / 4)[i % 4];
                *x = config.box_lo[i] + (config.box_hi[i] - config.box_lo[i]) * u;
            }
        }
        let side = config.side_network()?.map(|(_, arch)| side::SideNet::new(&arch, config.seed)).transpose()?;
        Ok(Self { net, log_z: 0.0, m: vec![0.0; n], v: vec![0.0; n], replay, step: 0, lr_scale: 1.0, side })
    }

    /// Shapes agree with the config and everything is finite.
    pub fn validate(&self, config: &TrainConfig) -> Result<()> {
        check_input(&self.net, config)?;
        let n = self.net.param_count() + 1;
        if self.m.len() != n || self.v.len() != n {
            return Err(Error::invalid(
                "optimizer state",
                format!("has {} / {} moments for {n} parameters", self.m.len(), self.v.len()),
            ));
        }
        if self.replay.len() != config.replay_len() {
            return Err(Error::invalid(
                "replay buffer",
                format!("holds {} values, the config needs {}", self.replay.len(), config.replay_len()),
            ));
        }
        let finite = |what: &str, v: &[f32]| match v.iter().position(|x| !x.is_finite()) {
            Some(k) => Err(Error::invalid(what, format!("entry {k} is not finite"))),
            None => Ok(()),
        };
        finite("network parameters", &self.net.pack_params())?;
        finite("optimizer state", &self.m)?;
        finite("optimizer state", &self.v)?;
        finite("replay buffer", &self.replay)?;
        finite("log Z", &[self.log_z])?;
        match (&self.side, config.side_network()?) {
            (Some(state), Some((what, arch))) => state.validate(&arch, what)?,
            (None, None) => {}
            (state, named) => {
                return Err(Error::invalid(
                    "side network",
                    format!(
                        "the state {} one and the config names {}",
                        if state.is_some() { "holds" } else { "lacks" },
                        named.map_or("none", |(what, _)| what)
                    ),
                ));
            }
        }
        if !(self.lr_scale > 0.0 && self.lr_scale <= 1.0) {
            return Err(Error::invalid("lr scale", format!("must be in (0, 1], got {}", self.lr_scale)));
        }
        Ok(())
    }

    /// [packed network parameters, log Z]: the layout of the optimizer moments.
    pub fn params(&self) -> Vec<f32> {
        let mut p = self.net.pack_params();
        p.push(self.log_z);
        p
    }

    /// Sets the parameters from [`TrainState::params`]' layout (a wrong length is an error).
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        let (last, net) =
            params.split_last().ok_or_else(|| Error::invalid("parameters", "empty: the layout ends in log Z"))?;
        self.net.set_params(net)?;
        self.log_z = *last;
        Ok(())
    }

    /// The trained energy (MLP-shaped networks take the fused kernels, their fast path).
    pub fn energy(&self) -> crate::energy::Energy {
        crate::energy::Energy::from_network(self.net.clone())
    }
}

/// The network takes the data's rows (a latent EBM's: the data's columns and the latent's).
fn check_input(net: &Network, config: &TrainConfig) -> Result<()> {
    let dim = config.dim();
    if net.input_dim() != dim {
        let needs = match &config.latent {
            Some(l) => {
                format!("the data's {} columns and the {} latent values, {dim} in all", config.data_dim(), l.dim)
            }
            None => format!("the data has {dim} columns"),
        };
        return Err(Error::invalid(
            "model",
            format!("takes {}-dimensional input ({}) but {needs}", net.input_dim(), net.input),
        ));
    }
    Ok(())
}
