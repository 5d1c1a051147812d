//! Networks in safetensors files, named as PyTorch's nn.Sequential names its state_dict
//! (`{index}.weight`, `{index}.bias`, index = position in the layer list, parameter-free
//! layers included; a residual block is one module, `{index}.body.{i}.weight` and
//! `{index}.proj.weight`, [`super::residual`]), with the architecture's text form in the
//! metadata under `ebm.net`. A
//! PyTorch model's state_dict moves in as it is; the architecture then comes from the caller
//! (`--spec`) unless the file carries it. A common prefix (`cnn_layers.0.weight`) is accepted.

use super::{Activation, Architecture, Head, LayerKind, MlpView, Network, Shape};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key of the architecture's text form.
pub const ARCH_KEY: &str = "ebm.net";

impl Network {
    /// Loads a network from `path`. The architecture is `arch` when given, otherwise the file's
    /// `ebm.net` metadata, otherwise (files written by `ebm init-mlp` before networks had a
    /// text form) an MLP inferred from the Linear shapes and the `activation` / `output`
    /// metadata. An `arch` that disagrees with the file's own `ebm.net` is an error naming both
    /// (neither silently wins). Tensors named `train.*` (a training checkpoint's other state) are
    /// skipped; any other tensor the architecture does not name is an error.
    pub fn load(path: &Path, arch: Option<&Architecture>) -> Result<Self> {
        load_with(path, |tensors, meta| match (arch, meta.get(ARCH_KEY)) {
            (Some(a), Some(text)) => match Architecture::parse(text) {
                Ok(own) if own == *a => Ok(own),
                // (fit_tensors names the file.)
                own => Err(Error::invalid(
                    "architecture",
                    format!(
                        "the file's metadata {ARCH_KEY} says {}, but the architecture given for it (the energy \
                         spec's \"spec\") says {a}: leave \"spec\" out to use the file's own, or make them agree",
                        own.map_or_else(|e| format!("{text:?} (unreadable: {e})"), |o| o.to_string())
                    ),
                )),
            },
            (Some(a), None) => Ok(a.clone()),
            (None, Some(text)) => {
                Architecture::parse(text).map_err(|e| Error::invalid(format!("metadata {ARCH_KEY}"), e.to_string()))
            }
            (None, None) => legacy_mlp(tensors, meta, None, None),
        })
    }
}

/// `NetworkInternals::load_mlp`.
pub(super) fn load_mlp(path: &Path, activation: Option<Activation>, negate: Option<bool>) -> Result<Network> {
    load_with(path, |tensors, meta| match meta.get(ARCH_KEY) {
        Some(text) if activation.is_none() && negate.is_none() => {
            Architecture::parse(text).map_err(|e| Error::invalid(format!("metadata {ARCH_KEY}"), e.to_string()))
        }
        _ => legacy_mlp(tensors, meta, activation, negate),
    })
}

/// Tensors by (canonical stem, is weight): shape, values, name. The stem is the module path of
/// the parameter's layer in an nn.Sequential (`3`, or `3.body.0` and `3.proj` in a residual
/// block), the file's common prefix removed.
type Tensors = HashMap<(String, bool), (Vec<usize>, Vec<f32>, String)>;

/// Splits a parameter name's stem (`name` without `.weight`/`.bias`) into (prefix, canonical
/// stem, whether every index was written canonically): the stem is the longest dotted tail of
/// the form `I(.body.I)*[.proj]`, so `layers.3.body.0` is `layers.` + `3.body.0`.
fn split_stem(stem: &str) -> Option<(String, String, bool)> {
    let parts: Vec<&str> = stem.split('.').collect();
    let index = |s: &str| s.parse::<usize>().ok().map(|i| (i.to_string(), i.to_string() == s));
    let tail = |parts: &[&str]| -> Option<(String, bool)> {
        let (first, mut rest) = parts.split_first()?;
        let (mut out, mut canonical) = index(first)?;
        loop {
            match rest {
                [] => return Some((out, canonical)),
                ["proj"] => return Some((out + ".proj", canonical)),
                ["body", i, more @ ..] => {
                    let (i, ok) = index(i)?;
                    out = format!("{out}.body.{i}");
                    canonical &= ok;
                    rest = more;
                }
                _ => return None,
            }
        }
    };
    (0..parts.len()).find_map(|start| {
        let (stem, canonical) = tail(&parts[start..])?;
        let prefix: String = parts[..start].iter().map(|p| format!("{p}.")).collect();
        Some((prefix, stem, canonical))
    })
}

/// Reads the tensors of `path`, asks `architecture` for the architecture, and fits the tensors
/// to its layers.
fn load_with(
    path: &Path,
    architecture: impl FnOnce(&Tensors, &HashMap<String, String>) -> Result<Architecture>,
) -> Result<Network> {
    let bytes = crate::io::read_safetensors(path, "network file")?;
    let bad = |msg: String| Error::format(path, msg);
    let st =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("bad safetensors header: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    crate::io::verify_checksum(path, &st, &meta)?;
    let mut named = Vec::new();
    for (name, view) in st.tensors() {
        if name.starts_with(TRAINING_STATE_PREFIX) {
            continue;
        }
        let values = to_f32(&view).map_err(|e| bad(format!("tensor {name}: {e}")))?;
        named.push((name, view.shape().to_vec(), values));
    }
    fit_tensors(named, |t| architecture(t, &meta), bad)
}

impl Network {
    /// A network from tensors in memory named as a PyTorch nn.Sequential's state_dict
    /// (`{index}.weight`, `{index}.bias`, one common prefix allowed), each (name, shape,
    /// values), for the architecture `arch`: what [`Network::load`] does without a file.
    pub fn from_tensors(arch: &Architecture, tensors: Vec<(String, Vec<usize>, Vec<f32>)>) -> Result<Self> {
        fit_tensors(tensors, |_| Ok(arch.clone()), |msg| Error::invalid("network tensors", msg))
    }
}

/// Fits named tensors to the layers of the architecture `architecture` gives (which may look
/// at the tensors), errors made by `bad`.
fn fit_tensors(
    named: Vec<(String, Vec<usize>, Vec<f32>)>,
    architecture: impl FnOnce(&Tensors) -> Result<Architecture>,
    bad: impl Fn(String) -> Error,
) -> Result<Network> {
    // (index, "weight" | "bias") -> (shape, values), with one common prefix. In name order, so
    // which of two bad names a message cites does not depend on the file's hash order.
    let mut named = named;
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tensors: Tensors = HashMap::new();
    let mut prefix: Option<String> = None;
    // Indices not written as PyTorch writes them (`00`, `+0`), refused after the loop so that
    // two names for one parameter are reported as such first.
    let mut non_canonical: Option<(String, String)> = None;
    for (name, shape, values) in named {
        let unexpected = || {
            bad(format!(
                "unexpected tensor {name:?}: a network holds only INDEX.weight and INDEX.bias (nn.Sequential naming)"
            ))
        };
        let (stem, is_weight) = match (name.strip_suffix(".weight"), name.strip_suffix(".bias")) {
            (Some(s), _) => (s, true),
            (_, Some(s)) => (s, false),
            _ => return Err(unexpected()),
        };
        let Some((pre, index, canonical)) = split_stem(stem) else { return Err(unexpected()) };
        if !canonical && non_canonical.is_none() {
            non_canonical = Some((name.clone(), index.clone()));
        }
        match &prefix {
            None => prefix = Some(pre),
            Some(p) if *p != pre => {
                return Err(bad(format!("tensor {name:?} does not share the prefix {p:?} of the others")));
            }
            _ => {}
        }
        // Two names for one parameter: whichever a map kept would win, so the file is ambiguous.
        if let Some((_, _, other)) = tensors.get(&(index.clone(), is_weight)) {
            let what = if is_weight { "weight" } else { "bias" };
            return Err(bad(format!(
                "tensors {other:?} and {name:?} are both the {what} of layer {index}; keep one (named {}{index}.{what})",
                prefix.as_deref().unwrap_or("")
            )));
        }
        tensors.insert((index, is_weight), (shape, values, name));
    }
    if let Some((name, index)) = non_canonical {
        return Err(bad(format!(
            "tensor {name:?}: write its layer index as nn.Sequential does ({index}, no sign or leading zeros)"
        )));
    }
    let arch = &architecture(&tensors).map_err(|e| bad(e.to_string()))?;
    let shapes = arch.shapes().map_err(|e| bad(e.to_string()))?;
    let mut params = Vec::with_capacity(arch.layers.len());
    let stems = super::residual::param_stems(&arch.layers);
    for (layer, ((kind, input), stem)) in arch.layers.iter().zip(&shapes).zip(stems).enumerate() {
        // Markers have no stem and no parameters.
        let index = stem.unwrap_or_else(|| format!("(marker {layer})"));
        let Some((wshape, bshape)) = kind.param_shapes(*input) else {
            for is_weight in [true, false] {
                if let Some((_, _, name)) = tensors.get(&(index.clone(), is_weight)) {
                    return Err(bad(format!(
                        "tensor {name:?}: layer {index} ({}) has no parameters",
                        super::describe(kind)
                    )));
                }
            }
            params.push((Vec::new(), Vec::new()));
            continue;
        };
        let mut take = |is_weight: bool, shape: Option<Vec<usize>>| -> Result<Vec<f32>> {
            let what = if is_weight { "weight" } else { "bias" };
            let p = prefix.as_deref().unwrap_or("");
            match (tensors.remove(&(index.clone(), is_weight)), shape) {
                (None, None) => Ok(Vec::new()),
                (Some((_, _, name)), None) => {
                    Err(bad(format!("tensor {name:?}: layer {index} ({}) has no bias", super::describe(kind))))
                }
                (None, Some(s)) => Err(bad(format!(
                    "missing tensor {p}{index}.{what} {s:?} for layer {index} ({})",
                    super::describe(kind)
                ))),
                (Some((got, _, name)), Some(s))
                    if got.len() == 2 && s.len() == 2 && got[0] == s[0] && got[1] != s[1] =>
                {
                    Err(bad(format!(
                        "tensor {name:?} has shape {got:?}: layer {index} takes {} inputs but the layer before gives {}",
                        got[1], s[1]
                    )))
                }
                (Some((got, _, name)), Some(s)) if got != s => Err(bad(format!(
                    "tensor {name:?} has shape {got:?}; layer {index} ({}) with input {input} needs {s:?}",
                    super::describe(kind)
                ))),
                (Some((_, values, _)), Some(_)) => Ok(values),
            }
        };
        let weight = take(true, Some(wshape))?;
        let bias = take(false, bshape)?;
        params.push((weight, bias));
    }
    if let Some((_, _, name)) = tensors.values().min_by_key(|t| t.2.clone()) {
        return Err(bad(format!("tensor {name:?} belongs to no layer of {arch}")));
    }
    Network::new(arch, params).map_err(|e| bad(e.to_string()))
}

impl Network {
    /// Writes the network (nn.Sequential naming, architecture in the metadata), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let (tensors, meta) = safetensors_parts(self);
        crate::io::write_safetensors(path, &tensors, meta)
    }
}

/// `NetworkInternals::safetensors_parts`.
pub(super) fn safetensors_parts(net: &Network) -> (crate::io::NamedTensors, HashMap<String, String>) {
    let mut tensors = Vec::new();
    let stems = super::residual::param_stems(&net.layers.iter().map(|l| l.kind).collect::<Vec<_>>());
    for (l, stem) in net.layers.iter().zip(stems) {
        if let Some((wshape, bshape)) = l.kind.param_shapes(l.input) {
            let index = stem.unwrap_or_default();
            tensors.push((format!("{index}.weight"), wshape, l.weight.clone()));
            if let Some(b) = bshape {
                tensors.push((format!("{index}.bias"), b, l.bias.clone()));
            }
        }
    }
    let meta = HashMap::from([("format".to_string(), "ebm-net".to_string()), (ARCH_KEY.to_string(), net.spec())]);
    (tensors, meta)
}

impl MlpView<'_> {
    /// Writes the network as PyTorch's nn.Sequential(Linear, act, Linear, ...) would name it,
    /// with the activation and sign in the metadata (the `ebm init-mlp` format, which
    /// `NetworkInternals::load_mlp` reads back); atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let (tensors, meta) = self.safetensors_parts();
        crate::io::write_safetensors(path, &tensors, meta)
    }

    /// The tensors (name, shape, values) and metadata [`MlpView::save`] writes.
    pub fn safetensors_parts(&self) -> (crate::io::NamedTensors, HashMap<String, String>) {
        let tensors = self
            .layers()
            .iter()
            .enumerate()
            .flat_map(|(k, l)| {
                [
                    (format!("{}.weight", 2 * k), vec![l.outputs, l.inputs], l.weight.to_vec()),
                    (format!("{}.bias", 2 * k), vec![l.outputs], l.bias.to_vec()),
                ]
            })
            .collect();
        let meta = HashMap::from([
            ("format".to_string(), "ebm-mlp".to_string()),
            ("activation".to_string(), self.activation().name()),
            ("output".to_string(), if self.negate() { "neg_energy" } else { "energy" }.to_string()),
        ]);
        (tensors, meta)
    }
}

/// The architecture of an MLP file without `ebm.net` (or with its activation or sign
/// overridden): biased Linear layers at even indices, the activation between them, one output.
fn legacy_mlp(
    tensors: &Tensors,
    meta: &HashMap<String, String>,
    activation: Option<Activation>,
    negate: Option<bool>,
) -> Result<Architecture> {
    let activation = match activation {
        Some(a) => a,
        None => Activation::parse(meta.get("activation").ok_or_else(|| {
            Error::invalid(
                "architecture",
                format!(
                    "no activation in the file's metadata and no {ARCH_KEY} architecture: give one (e.g. {{\"type\": \"mlp\", \"activation\": \"silu\"}}, \
                     or {{\"type\": \"net\", \"spec\": \"...\"}} for other networks)"
                ),
            )
        })?)?,
    };
    let negate = match negate {
        Some(n) => n,
        None => match meta.get("output").map(String::as_str) {
            None | Some("energy") => false,
            Some("neg_energy") => true,
            Some(other) => {
                return Err(Error::invalid(
                    "metadata output",
                    format!("{other:?}; expected \"energy\" or \"neg_energy\""),
                ));
            }
        },
    };
    let mut indices: Vec<usize> = Vec::new();
    for (stem, is_weight) in tensors.keys() {
        match stem.parse() {
            Ok(i) if *is_weight => indices.push(i),
            Ok(_) => {}
            Err(_) => {
                return Err(Error::invalid(
                    "network file",
                    format!(
                        "tensor of layer {stem}: residual blocks load only with {ARCH_KEY} metadata or an architecture"
                    ),
                ));
            }
        }
    }
    indices.sort_unstable();
    let first = indices
        .first()
        .and_then(|i| tensors.get(&(i.to_string(), true)))
        .ok_or_else(|| Error::invalid("network file", "holds no weights"))?;
    if first.0.len() != 2 {
        return Err(Error::invalid(
            first.2.clone(),
            format!("has shape {:?}; without {ARCH_KEY} metadata only MLPs ([out, in] weights) load", first.0),
        ));
    }
    let mut layers = Vec::new();
    for (k, i) in indices.iter().enumerate() {
        if *i != 2 * k {
            return Err(Error::invalid(
                "network file",
                format!(
                    "weights at index {i}: an MLP without {ARCH_KEY} metadata has its Linear layers at 0, 2, 4, ..."
                ),
            ));
        }
        if k > 0 {
            layers.push(LayerKind::Act(activation));
        }
        let (shape, _, _) = &tensors[&(i.to_string(), true)];
        layers.push(LayerKind::Linear { outputs: shape.first().copied().unwrap_or(0), bias: true });
    }
    if let Some(LayerKind::Linear { outputs, .. }) = layers.last()
        && *outputs != 1
    {
        return Err(Error::invalid(
            format!("layer {}", layers.len() - 1),
            format!("the last layer must output 1 value, not {outputs}"),
        ));
    }
    Ok(Architecture { input: Shape::Flat(first.0[1]), layers, head: if negate { Head::NegF } else { Head::F } })
}

/// Tensors whose names start with this hold a training checkpoint's optimizer and replay state
/// (`src/train/checkpoint.rs`); the loaders skip them, so a checkpoint loads as a network.
pub const TRAINING_STATE_PREFIX: &str = "train.";

/// f32, f16, bf16 or f64 tensor data as f32.
pub(crate) fn to_f32(view: &safetensors::tensor::TensorView<'_>) -> std::result::Result<Vec<f32>, String> {
    let data = view.data();
    Ok(match view.dtype() {
        safetensors::Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        safetensors::Dtype::F16 => {
            data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        safetensors::Dtype::BF16 => {
            data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        safetensors::Dtype::F64 => {
            data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32).collect()
        }
        other => return Err(format!("dtype {other:?} is not a float type (expected F32, F16, BF16 or F64)")),
    })
}
