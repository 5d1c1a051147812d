//! The network `--model` names ([`ModelSpec`]) and how run.json records it.

use crate::nn::{Activation, Network};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The network `--model` names: the network text form (docs/networks.md), e.g.
/// "1x28x28/16k5s2p4/swish/flatten/64/swish/1" or "2/128/silu/128/silu/1", or the former MLP
/// spelling "mlp:2,128,128,1:silu" (Linear layers with one activation between them, one
/// output, E = f), which the CLI accepts with a deprecation warning since `mlp:` names a
/// weights file everywhere else. Recorded in run.json as the text form.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub arch: crate::nn::Architecture,
}

impl ModelSpec {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::invalid(
                "model",
                format!(
                    "{s:?}: {why}; expected the network text form (e.g. 2/128/silu/128/silu/1 or \
                     1x28x28/16k5s2p4/swish/flatten/64/swish/1)"
                ),
            )
        };
        let text = match s.strip_prefix("mlp:") {
            None => s.to_string(),
            Some(rest) => {
                let (dims, act) = rest.split_once(':').unwrap_or((rest, "silu"));
                let dims = dims
                    .split(',')
                    .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("layer sizes must be positive integers".into()))?;
                if dims.len() < 2 || dims[dims.len() - 1] != 1 {
                    return Err(bad("need an input size, optional hidden sizes and a final 1".into()));
                }
                let act = Activation::parse(act).map_err(|e| bad(e.to_string()))?.name();
                let layers: Vec<String> = dims[1..].iter().map(|d| d.to_string()).collect();
                format!("{}/{}", dims[0], layers.join(&format!("/{act}/")))
            }
        };
        let arch = crate::nn::Architecture::parse(&text).map_err(|e| bad(e.to_string()))?;
        Ok(Self { arch })
    }

    /// The network with PyTorch's default initialisation drawn from `seed`.
    pub fn build(&self, seed: u64) -> Result<Network> {
        Network::random(&self.arch, seed)
    }

    /// Parameters of the network (saturating), for the size plan, without building it.
    pub fn param_count(&self) -> u64 {
        let Ok(shapes) = self.arch.shapes() else { return 0 };
        self.arch.layers.iter().zip(&shapes).fold(0u64, |n, (kind, input)| {
            let count = kind.param_shapes(*input).map_or(0, |(w, b)| {
                w.iter().product::<usize>() as u64 + b.map_or(0, |b| b.iter().product::<usize>() as u64)
            });
            n.saturating_add(count)
        })
    }

    /// Values one point carries through the network (its input and every layer's output).
    pub fn values_per_point(&self) -> u64 {
        self.arch.shapes().map_or(0, |s| s.iter().map(|s| s.len() as u64).sum())
    }
}

impl std::fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.arch)
    }
}

/// run.json keeps the text form; runs of older versions kept `{"dims": [..], "activation": ..}`.
impl Serialize for ModelSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Text(String),
            Mlp { dims: Vec<usize>, activation: String },
        }
        let text = match Stored::deserialize(d)? {
            Stored::Text(t) => t,
            Stored::Mlp { dims, activation } => {
                let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                format!("mlp:{}:{activation}", dims.join(","))
            }
        };
        ModelSpec::parse(&text).map_err(serde::de::Error::custom)
    }
}
