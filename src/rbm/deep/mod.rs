//! Deep belief networks and deep Boltzmann machines over binary units, built from RBM layers
//! ([`Rbm`]): layer k couples the units of size `sizes[k]` (its visible side) with those of
//! size `sizes[k + 1]` (its hidden side), so `layers[0]` is the RBM on the data.
//!
//! - DBN (Hinton, Osindero & Teh 2006): the top layer is an RBM over (h_{L-1}, h_L); below it
//!   every layer is directed, p(h_{k-1} | h_k) = sigmoid(b + W^T h_k) with that layer's W and
//!   visible bias b; the recognition model q(h_k | h_{k-1}) = sigmoid(c + W h_{k-1}) uses its
//!   hidden bias c. Trained greedily ([`train::pretrain`]).
//! - DBM (Salakhutdinov & Hinton 2009), two hidden layers: E(v, h1, h2) =
//!   -b.v - c1.h1 - c2.h2 - h1.W1 v - h2.W2 h1, with (W1, b, c1) in `layers[0]` and (W2, c2) in `layers[1]`, whose
//!   visible bias is not a parameter and stays 0 (h1's bias is c1). Pre-trained as stacked RBMs
//!   whose weights are then halved ([`train::compose_dbm`]), trained by PCD with a mean-field
//!   positive phase ([`train::run_dbm_epoch`]; on the GPU [`gpu_train::GpuDbmTrainer`]).
//!
//! Kernels: the DBM's block Gibbs step is `rbm.wgsl`'s `visible_step` (v | h1) and
//! `hidden_step` (h2 | h1) and `dbm.wgsl`'s `h1_step` (h1 | v, h2); launcher [`gpu`], CPU twin
//! [`cpu`]. log Z and likelihood bounds in [`ais`], checkpoints in [`checkpoint`].

pub mod ais;
pub mod checkpoint;
pub mod cpu;
pub mod gpu;
pub mod gpu_train;
pub mod sample;
pub mod train;

use super::{Rbm, Visible};
use crate::{Error, Result};

/// Which deep model a stack of RBM layers is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dbn,
    Dbm,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dbn => "dbn",
            Kind::Dbm => "dbm",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "dbn" => Ok(Kind::Dbn),
            "dbm" => Ok(Kind::Dbm),
            _ => Err(Error::invalid("deep model kind", format!("{s:?} is neither \"dbn\" nor \"dbm\""))),
        }
    }
}

/// A DBN or DBM: its layers, bottom first.
#[derive(Clone, Debug, PartialEq)]
pub struct Deep {
    pub kind: Kind,
    pub layers: Vec<Rbm>,
}

impl Deep {
    /// Checks that the layers chain (each layer's hidden size is the next one's visible size),
    /// are binary and finite, and, for a DBM, that there are two with layer 2's visible bias 0.
    pub fn new(kind: Kind, layers: Vec<Rbm>) -> Result<Self> {
        if layers.len() < 2 {
            return Err(Error::invalid(
                "layers",
                format!("a deep model needs at least two hidden layers, got {}", layers.len()),
            ));
        }
        if kind == Kind::Dbm && layers.len() != 2 {
            return Err(Error::invalid(
                "layers",
                format!("a DBM here has exactly two hidden layers, got {}", layers.len()),
            ));
        }
        for (k, l) in layers.iter().enumerate() {
            if l.visible != Visible::Bernoulli {
                return Err(Error::invalid(
                    "layers",
                    format!("layer {} has Gaussian visibles; deep models are binary", k + 1),
                ));
            }
            if k > 0 && l.n_vis != layers[k - 1].n_hid {
                return Err(Error::invalid(
                    "layers",
                    format!(
                        "layer {} has {} inputs but layer {} has {} hidden units",
                        k + 1,
                        l.n_vis,
                        k,
                        layers[k - 1].n_hid
                    ),
                ));
            }
            l.check_finite().map_err(|e| Error::invalid("layers", format!("layer {}: {e}", k + 1)))?;
        }
        if kind == Kind::Dbm && layers[1].b().iter().any(|&b| b != 0.0) {
            return Err(Error::invalid(
                "layers",
                "a DBM's layer 2 has no visible bias of its own (h1's bias is layer 1's c)",
            ));
        }
        Ok(Self { kind, layers })
    }

    /// Weights N(0, std^2) (layer k seeded by seed + k) and zero biases.
    // Used by tests/dbm.rs (through the internals feature).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn random(kind: Kind, sizes: &[usize], std: f32, seed: u64) -> Result<Self> {
        check_layer_sizes(sizes)?;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(k, w)| Rbm::random(w[0], w[1], Visible::Bernoulli, std, seed.wrapping_add(k as u64)))
            .collect::<Result<Vec<_>>>()?;
        Self::new(kind, layers)
    }

    /// Unit counts, visible layer first.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.layers[0].n_vis).chain(self.layers.iter().map(|l| l.n_hid)).collect()
    }

    pub fn n_vis(&self) -> usize {
        self.layers[0].n_vis
    }

    /// The DBM's two layers, or an error naming the kind.
    pub fn dbm_layers(&self) -> Result<(&Rbm, &Rbm)> {
        match (self.kind, self.layers.as_slice()) {
            (Kind::Dbm, [a, b]) => Ok((a, b)),
            _ => Err(Error::invalid(
                "model",
                format!("is a {} with {} layers, not a two-layer DBM", self.kind.name(), self.layers.len()),
            )),
        }
    }

    pub fn check_data(&self, data: &crate::data::Dataset) -> Result<()> {
        self.layers[0].check_data(data)
    }
}

/// Refuses layer sizes (visible first) with fewer than three layers or a layer of 0 units.
pub fn check_layer_sizes(sizes: &[usize]) -> Result<()> {
    if sizes.len() < 3 {
        return Err(Error::invalid(
            "layers",
            format!("need the visible size and at least two hidden sizes, got {sizes:?}"),
        ));
    }
    for (k, w) in sizes.windows(2).enumerate() {
        super::check_sizes(w[0], w[1]).map_err(|e| Error::invalid("layers", format!("layer {}: {e}", k + 1)))?;
    }
    Ok(())
}
