//! A second network trained beside the energy, with its own optimizer moments ([`SideNet`]):
//! cooperative learning's generator ([`super::generator`]), a latent EBM's encoder
//! ([`super::latent`]). It takes the energy's optimizer and clip norm, no weight decay, its own
//! learning rate on the energy's schedule; the checkpoint keeps it as `train.NAME`,
//! `train.NAME_m`, `train.NAME_v` (its architecture is in the configuration).

use super::{StepScalars, TrainConfig};
use crate::nn::{Architecture, Network, NetworkInternals};
use crate::{Error, Result};

/// A side network's parameters and optimizer moments (a [`super::TrainState`] part).
#[derive(Clone, Debug, PartialEq)]
pub struct SideNet {
    pub net: Network,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

impl SideNet {
    /// PyTorch's default initialisation from the run's seed (its own stream of it) and zero
    /// moments.
    pub fn new(arch: &Architecture, run_seed: u64) -> Result<Self> {
        let net = Network::random(arch, run_seed ^ 0x9e37_79b9_7f4a_7c15)?;
        let n = net.param_count();
        Ok(Self { net, m: vec![0.0; n], v: vec![0.0; n] })
    }

    /// Stored values for `arch`: the parameters and moments in the packed layout.
    pub fn from_parts(arch: &Architecture, params: &[f32], m: Vec<f32>, v: Vec<f32>) -> Result<Self> {
        let mut net = Network::random(arch, 0)?;
        net.set_params(params)?;
        Ok(Self { net, m, v })
    }

    /// The architecture is `arch`, the moments are of its size, everything is finite; errors
    /// name `what` (the generator, the encoder).
    pub fn validate(&self, arch: &Architecture, what: &str) -> Result<()> {
        if self.net.architecture() != *arch {
            return Err(Error::invalid(
                what,
                format!("the stored network is {}, the config says {arch}", self.net.spec()),
            ));
        }
        let n = self.net.param_count();
        if self.m.len() != n || self.v.len() != n {
            return Err(Error::invalid(
                format!("{what} optimizer state"),
                format!("has {} / {} moments for {n} parameters", self.m.len(), self.v.len()),
            ));
        }
        let params = self.net.pack_params();
        if [&params, &self.m, &self.v].iter().any(|v| v.iter().any(|x| !x.is_finite())) {
            return Err(Error::invalid(what, "a parameter or moment is not finite"));
        }
        Ok(())
    }

    /// The optimizer step on `grad` at learning rate `lr` (already on the energy's schedule).
    pub fn apply(&mut self, config: &TrainConfig, scalars: StepScalars, lr: f32, grad: &[f32]) -> Result<()> {
        let s = StepScalars { lr, ..scalars };
        let mut params = self.net.pack_params();
        super::apply_optimizer(
            config.optimizer,
            config.clip_norm,
            0.0,
            0,
            s,
            &mut params,
            &mut self.m,
            &mut self.v,
            grad,
        );
        self.net.set_params(&params)
    }
}

/// A side network's learning rate at a step: `lr` on the energy's schedule.
pub fn learning_rate(config: &TrainConfig, lr: f32, scalars: StepScalars) -> f32 {
    scalars.lr * (lr / config.lr)
}
