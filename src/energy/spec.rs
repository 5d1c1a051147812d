//! The JSON energy spec (schema in README.md) and named presets, turned into a validated
//! [`Energy`]. Errors name the field and, for malformed JSON, the line and column.

use super::spec_fields::*;
use super::{
    Banana, BoxConstraint, BoxPenalty, DoubleWell, Energy, GaussianDiag, GaussianMixture, GaussianPrecision,
    GroupAction, GroupMode, Linear, MixtureComponent, NormBall, Simplex,
};
use crate::nn::{Activation, NetworkInternals};
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Spec {
    Gaussian {
        mean: Vec<f64>,
        std: Option<Vec<f64>>,
        precision: Option<Vec<Vec<f64>>>,
    },
    GaussianMixture {
        weights: Vec<f64>,
        means: Vec<Vec<f64>>,
        stds: Vec<Vec<f64>>,
    },
    DoubleWell {
        #[serde(default = "default_dim")]
        dim: usize,
        #[serde(default = "default_barrier")]
        barrier: f64,
    },
    Banana {
        #[serde(default = "default_dim")]
        dim: usize,
        #[serde(default = "default_banana_a")]
        a: f64,
        #[serde(default = "default_banana_b")]
        b: f64,
    },
    /// Terms are specs, or strings naming a preset, `net:FILE` or `mlp:FILE`; `slices[t]` (null
    /// or the dimensions term t looks at) makes term t an expert on x[slice].
    Sum {
        terms: Vec<serde_json::Value>,
        weights: Option<Vec<f64>>,
        slices: Option<Vec<serde_json::Value>>,
        dim: Option<usize>,
    },
    /// Any network of `crate::nn` layers in safetensors; `spec` gives the architecture when
    /// the file does not (a PyTorch state_dict); `head` replaces its head (`class:Y` makes a
    /// classifier the class-conditional E(x, Y), as `--class` does for a lone network).
    Net {
        weights: String,
        spec: Option<String>,
        head: Option<String>,
    },
    /// A network in safetensors (PyTorch nn.Sequential layout).
    Mlp {
        weights: String,
        activation: Option<String>,
        negate: Option<bool>,
    },
    /// lo <= x <= hi; `lo` and `hi` are a number (every coordinate) or one per dimension.
    #[serde(rename = "box")]
    BoxConstraint {
        lo: serde_json::Value,
        hi: serde_json::Value,
        dim: Option<usize>,
        weight: f64,
        penalty: Option<String>,
        sharpness: Option<f64>,
    },
    LinearInequality {
        a: Vec<f64>,
        b: f64,
        weight: f64,
    },
    LinearEquality {
        a: Vec<f64>,
        b: f64,
        weight: f64,
    },
    NormBall {
        radius: f64,
        center: Option<Vec<f64>>,
        dim: Option<usize>,
        weight: f64,
    },
    Simplex {
        #[serde(default = "default_dim")]
        dim: usize,
        weight: f64,
    },
    /// A picture as a density on the plane: E = -log(epsilon + luminance(x)), the PNG at
    /// `path` on the unit square, or with `extent` "aspect" on a rectangle of its aspect.
    Image {
        path: String,
        gamma: Option<f64>,
        invert: Option<bool>,
        epsilon: Option<f64>,
        extent: Option<String>,
    },
    /// `energy` (a spec or a name, as a sum's terms) averaged over `group`.
    Group {
        energy: serde_json::Value,
        group: String,
        image: Option<Vec<usize>>,
        mode: Option<String>,
    },
}

/// The most elements a 2-D group may have: each is a full evaluation of the inner energy.
const MAX_GROUP_ORDER: usize = 1024;

fn default_barrier() -> f64 {
    2.0
}
fn default_banana_a() -> f64 {
    1.0
}
fn default_banana_b() -> f64 {
    100.0
}

/// The `--energy` prefixes that name discrete models (`crate::discrete::spec`), which only
/// `ebm sample` takes.
pub const DISCRETE_PREFIXES: [&str; 4] = ["ising:", "potts:", "bm:", "hopfield:"];

/// Names accepted wherever a spec is, with what they mean (for `--help` and errors).
pub const PRESETS: &[(&str, &str)] = &[
    ("ring8", "8 Gaussians (std 0.25) evenly spaced on a circle of radius 2, equal weights"),
    ("grid25", "5x5 grid of Gaussians (std 0.3) at -4,-2,0,2,4 in each coordinate"),
    ("two_modes", "mixture of N((-2,0), 0.5^2 I) and N((2,0), 0.5^2 I), equal weights"),
    ("double_well", "double well in 2-d, E = 2 sum_i (x_i^2 - 1)^2"),
    ("banana", "Rosenbrock banana in 2-d, E = (1 - x0)^2 + 5 (x1 - x0^2)^2"),
    ("correlated2", "2-d Gaussian, mean 0, precision [[2, 1.2], [1.2, 1]]"),
];

/// The JSON spec of a preset (see [`PRESETS`]).
pub fn preset_json(name: &str) -> Option<String> {
    let mixture = |centres: Vec<(f64, f64)>, std: f64| {
        let k = centres.len();
        serde_json::json!({
            "type": "gaussian_mixture",
            "weights": vec![1.0 / k as f64; k],
            "means": centres.iter().map(|&(x, y)| vec![x, y]).collect::<Vec<_>>(),
            "stds": vec![vec![std, std]; k],
        })
        .to_string()
    };
    Some(match name {
        "ring8" => mixture(
            (0..8)
                .map(|k| {
                    let t = k as f64 * std::f64::consts::TAU / 8.0;
                    (2.0 * t.cos(), 2.0 * t.sin())
                })
                .collect(),
            0.25,
        ),
        "grid25" => mixture((0..25).map(|k| (-4.0 + 2.0 * (k % 5) as f64, -4.0 + 2.0 * (k / 5) as f64)).collect(), 0.3),
        "two_modes" => mixture(vec![(-2.0, 0.0), (2.0, 0.0)], 0.5),
        "double_well" => r#"{"type": "double_well", "dim": 2, "barrier": 2.0}"#.into(),
        "banana" => r#"{"type": "banana", "dim": 2, "a": 1.0, "b": 5.0}"#.into(),
        "correlated2" => r#"{"type": "gaussian", "mean": [0, 0], "precision": [[2, 1.2], [1.2, 1]]}"#.into(),
        _ => return None,
    })
}

/// Resolves what a user typed for an energy: a preset name, inline JSON (starts with `{`),
/// `mlp:weights.safetensors`, `net:weights.safetensors` (any network; the architecture from
/// the file's metadata), or the path of a JSON file.
pub fn resolve_energy(arg: &str) -> Result<Energy> {
    let trimmed = arg.trim_start();
    if let Some(path) = trimmed.strip_prefix("net:") {
        return net_energy(Path::new(path), None);
    }
    if let Some(path) = trimmed.strip_prefix("mlp:") {
        return mlp_energy(Path::new(path), None, None);
    }
    if trimmed.starts_with('{') {
        return parse_energy(trimmed, "energy spec");
    }
    if let Some(json) = preset_json(arg) {
        return parse_energy(&json, &format!("preset {arg}"));
    }
    if let Some(prefix) = DISCRETE_PREFIXES.iter().find(|p| trimmed.starts_with(**p)) {
        return Err(Error::invalid(
            "energy",
            format!(
                "`{arg}` is a discrete model ({prefix}...): `ebm sample` samples it; this command takes continuous energies"
            ),
        ));
    }
    let path = Path::new(arg);
    if !path.exists() {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
        return Err(Error::invalid(
            "energy",
            format!("`{arg}` is neither a preset ({}) nor an existing JSON file", names.join(", ")),
        ));
    }
    let limit = crate::plan::Limit::at_most(crate::plan::JSON_LIMIT, "the most an energy spec may hold")?;
    let bytes = crate::plan::read_file(path, "energy spec", &limit, &mut crate::plan::undeclared)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::format(path, format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
    })?;
    parse_energy(&text, &path.display().to_string())
}

/// Parses and validates a JSON spec; `origin` names it in errors (a file path, "energy spec").
pub fn parse_energy(json: &str, origin: &str) -> Result<Energy> {
    let spec: Spec =
        serde_json::from_str(json).map_err(|e| Error::format(origin, format!("malformed energy spec: {e}")))?;
    let energy = build(&spec, "")?;
    energy.validate()?;
    Ok(energy)
}

fn build(spec: &Spec, at: &str) -> Result<Energy> {
    let field = |name: &str| format!("{at}{name}");
    Ok(match spec {
        Spec::Gaussian { mean, std, precision } => {
            let d = mean.len();
            if d == 0 {
                return Err(Error::invalid(field("mean"), "must have at least one entry"));
            }
            match (std, precision) {
                (Some(std), None) => {
                    if std.len() != d {
                        return Err(Error::invalid(
                            field("std"),
                            format!("has {} entries but mean has {d}", std.len()),
                        ));
                    }
                    positive(&field("std"), std)?;
                    let inv_var = derived_f32(&field("std"), std, "1/std^2 =", |s| 1.0 / (s * s))?;
                    GaussianDiag { mean: to_f32(&field("mean"), mean)?, inv_var }.into()
                }
                (None, Some(rows)) => {
                    let p = square_matrix(&field("precision"), rows, d)?;
                    check_positive_definite(&field("precision"), &p, d)?;
                    let precision = to_f32(&field("precision"), &p)?;
                    // Positive definite as the kernels see it, after rounding to f32.
                    let rounded: Vec<f64> = precision.iter().map(|&v| v as f64).collect();
                    check_positive_definite(&field("precision (rounded to f32)"), &rounded, d)?;
                    GaussianPrecision { mean: to_f32(&field("mean"), mean)?, precision }.into()
                }
                _ => return Err(Error::invalid(field("gaussian"), "give exactly one of `std` and `precision`")),
            }
        }
        Spec::GaussianMixture { weights, means, stds } => {
            let k = weights.len();
            if k == 0 {
                return Err(Error::invalid(field("weights"), "a mixture needs at least one component"));
            }
            if means.len() != k || stds.len() != k {
                return Err(Error::invalid(
                    field("gaussian_mixture"),
                    format!("{k} weights but {} means and {} stds", means.len(), stds.len()),
                ));
            }
            positive(&field("weights"), weights)?;
            let total: f64 = weights.iter().sum();
            let d = means[0].len();
            let mut components = Vec::with_capacity(k);
            for c in 0..k {
                if means[c].len() != d {
                    return Err(Error::invalid(
                        field(&format!("means[{c}]")),
                        format!("has {} entries but means[0] has {d}", means[c].len()),
                    ));
                }
                if stds[c].len() != d {
                    return Err(Error::invalid(
                        field(&format!("stds[{c}]")),
                        format!("has {} entries but means[{c}] has {d}", stds[c].len()),
                    ));
                }
                positive(&field(&format!("stds[{c}]")), &stds[c])?;
                let log_norm: f64 =
                    stds[c].iter().map(|s| s.ln()).sum::<f64>() + 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln();
                let log_coef =
                    to_f32(&field(&format!("weights[{c}] with stds[{c}]")), &[(weights[c] / total).ln() - log_norm])?
                        [0];
                components.push(MixtureComponent {
                    log_coef,
                    mean: to_f32(&field(&format!("means[{c}]")), &means[c])?,
                    inv_std: derived_f32(&field(&format!("stds[{c}]")), &stds[c], "1/std =", |s| 1.0 / s)?,
                });
            }
            if d == 0 {
                return Err(Error::invalid(field("means[0]"), "must have at least one entry"));
            }
            GaussianMixture { dim: d, components }.into()
        }
        Spec::DoubleWell { dim, barrier } => {
            if *dim == 0 {
                return Err(Error::invalid(field("dim"), "must be at least 1"));
            }
            DoubleWell { dim: *dim, barrier: positive_f32(&field("barrier"), *barrier)? }.into()
        }
        Spec::Banana { dim, a, b } => {
            if *dim < 2 {
                return Err(Error::invalid(field("dim"), "the banana needs at least 2 dimensions"));
            }
            if !(*b >= 0.0) {
                return Err(Error::invalid(field("b"), format!("must be non-negative, got {b}")));
            }
            let ab = to_f32(&field("a, b"), &[*a, *b])?;
            Banana { dim: *dim, a: ab[0], b: ab[1] }.into()
        }
        Spec::Net { weights, spec, head } => {
            let arch = spec.as_deref().map(crate::nn::Architecture::parse).transpose()?;
            let energy = net_energy(Path::new(weights), arch.as_ref())?;
            match (head, energy) {
                (Some(h), Energy::Net(net)) => {
                    let with = crate::nn::Head::parse(h).and_then(|h| net.with_head(h));
                    Energy::from_network(with.map_err(|e| Error::invalid(field("head"), e.to_string()))?)
                }
                (_, energy) => energy,
            }
        }
        Spec::Image { path, gamma, invert, epsilon, extent } => {
            let aspect = match extent.as_deref() {
                None | Some("unit") => false,
                Some("aspect") => true,
                Some(other) => {
                    return Err(Error::invalid(field("extent"), format!("{other:?}: expected \"unit\" or \"aspect\"")));
                }
            };
            let defaults = super::image::ImageOptions::default();
            let options = super::image::ImageOptions {
                gamma: gamma.map(|g| positive_f32(&field("gamma"), g)).transpose()?.unwrap_or(defaults.gamma),
                invert: invert.unwrap_or(defaults.invert),
                epsilon: epsilon.map(|e| positive_f32(&field("epsilon"), e)).transpose()?.unwrap_or(defaults.epsilon),
                aspect,
            };
            Energy::Image(std::sync::Arc::new(super::image::ImageDensity::load(Path::new(path), options)?))
        }
        Spec::Mlp { weights, activation, negate } => {
            let activation = activation.as_deref().map(Activation::parse).transpose()?;
            mlp_energy(Path::new(weights), activation, *negate)?
        }
        Spec::BoxConstraint { lo, hi, dim, weight, penalty, sharpness } => {
            let (lo_one, lo_each) = scalar_or_array(&field("lo"), lo)?;
            let (hi_one, hi_each) = scalar_or_array(&field("hi"), hi)?;
            let sizes: Vec<(&str, usize)> = [("lo", &lo_each), ("hi", &hi_each)]
                .into_iter()
                .filter_map(|(n, v)| v.as_ref().map(|v| (n, v.len())))
                .collect();
            let d = constraint_dim(at, *dim, &sizes)?;
            let lo = match lo_each {
                Some(v) => to_f32(&field("lo"), &v)?,
                None => broadcast(at, to_f32(&field("lo"), &[lo_one])?[0], d)?,
            };
            let hi = match hi_each {
                Some(v) => to_f32(&field("hi"), &v)?,
                None => broadcast(at, to_f32(&field("hi"), &[hi_one])?[0], d)?,
            };
            if let Some(i) = (0..d).find(|&i| !(lo[i] <= hi[i])) {
                return Err(Error::invalid(
                    field(&format!("lo[{i}]")),
                    format!("{} is above hi[{i}] = {}: the box is empty", lo[i], hi[i]),
                ));
            }
            let penalty = match (penalty.as_deref().unwrap_or("quadratic"), sharpness) {
                ("quadratic", None) => BoxPenalty::Quadratic,
                ("quadratic", Some(_)) => {
                    return Err(Error::invalid(field("sharpness"), "only applies to \"penalty\": \"softplus\""));
                }
                ("softplus", Some(s)) => BoxPenalty::Softplus { sharpness: positive_f32(&field("sharpness"), *s)? },
                ("softplus", None) => {
                    return Err(Error::invalid(field("sharpness"), "is required with \"penalty\": \"softplus\""));
                }
                (other, _) => {
                    return Err(Error::invalid(
                        field("penalty"),
                        format!("unknown penalty {other:?}; expected \"quadratic\" or \"softplus\""),
                    ));
                }
            };
            BoxConstraint { lo, hi, penalty, weight: positive_f32(&field("weight"), *weight)? }.into()
        }
        Spec::LinearInequality { a, b, weight } | Spec::LinearEquality { a, b, weight } => {
            let d = constraint_dim(at, None, &[("a", a.len())])?;
            let a32 = to_f32(&field("a"), a)?;
            // a = 0 makes the constraint 0 <= b or 0 = b: empty or void, a mistake either way.
            if a32.iter().all(|&v| v == 0.0) {
                return Err(Error::invalid(
                    field("a"),
                    format!("all {d} entries are 0: the constraint does not depend on x"),
                ));
            }
            Linear {
                a: a32,
                b: to_f32(&field("b"), &[*b])?[0],
                equality: matches!(spec, Spec::LinearEquality { .. }),
                weight: positive_f32(&field("weight"), *weight)?,
            }
            .into()
        }
        Spec::NormBall { radius, center, dim, weight } => {
            let sizes: Vec<(&str, usize)> = center.iter().map(|c| ("center", c.len())).collect();
            let d = constraint_dim(at, *dim, &sizes)?;
            let radius32 = positive_f32(&field("radius"), *radius)?;
            if !(radius32 * radius32).is_finite() {
                return Err(Error::invalid(
                    field("radius"),
                    format!("{} squared is outside the range of f32", show(*radius)),
                ));
            }
            NormBall {
                center: match center {
                    Some(c) => to_f32(&field("center"), c)?,
                    None => broadcast(at, 0.0, d)?,
                },
                radius: radius32,
                weight: positive_f32(&field("weight"), *weight)?,
            }
            .into()
        }
        Spec::Simplex { dim, weight } => {
            if *dim == 0 {
                return Err(Error::invalid(field("dim"), "must be at least 1"));
            }
            Simplex { dim: *dim, weight: positive_f32(&field("weight"), *weight)? }.into()
        }
        Spec::Group { energy, group, image, mode } => {
            let inner = build_term(energy, &field("energy"))?;
            let mode = match mode.as_deref().unwrap_or("logmeanexp") {
                "logmeanexp" => GroupMode::LogMeanExp,
                "mean" => GroupMode::Mean,
                other => {
                    return Err(Error::invalid(
                        field("mode"),
                        format!("unknown mode {other:?}; expected \"logmeanexp\" or \"mean\""),
                    ));
                }
            };
            let action = group_action(at, group, image.as_deref(), inner.dim())?;
            Energy::Group { inner: Box::new(inner), action, mode }
        }
        Spec::Sum { terms, weights, slices, dim } => {
            if terms.is_empty() {
                return Err(Error::invalid(field("terms"), "a sum needs at least one term"));
            }
            let weights = match weights {
                Some(w) if w.len() != terms.len() => {
                    return Err(Error::invalid(
                        field("weights"),
                        format!("has {} entries but there are {} terms", w.len(), terms.len()),
                    ));
                }
                Some(w) => {
                    // A term weighted <= 0 is turned upside down (the sum has no lower bound: no
                    // density) or dropped; neither is a model.
                    if let Some(t) = w.iter().position(|&x| !(x > 0.0)) {
                        return Err(Error::invalid(
                            field(&format!("weights[{t}]")),
                            format!(
                                "the weight of terms[{t}] must be positive, got {}: a negative weight turns the term \
                                 upside down (the energy has no lower bound), a zero one drops it",
                                w[t]
                            ),
                        ));
                    }
                    to_f32(&field("weights"), w)?
                }
                None => vec![1.0; terms.len()],
            };
            let built = terms
                .iter()
                .enumerate()
                .map(|(t, term)| build_term(term, &format!("{at}terms[{t}]")))
                .collect::<Result<Vec<_>>>()?;
            let slices = match slices {
                Some(s) if s.len() != terms.len() => {
                    return Err(Error::invalid(
                        field("slices"),
                        format!("has {} entries but there are {} terms", s.len(), terms.len()),
                    ));
                }
                Some(s) => s
                    .iter()
                    .enumerate()
                    .map(|(t, v)| slice_indices(&field(&format!("slices[{t}]")), v))
                    .collect::<Result<Vec<_>>>()?,
                None => vec![None; terms.len()],
            };
            // The sum's dimension: `dim`, else the unsliced terms', else the largest index + 1.
            let unsliced = built.iter().zip(&slices).find(|(_, s)| s.is_none()).map(|(e, _)| e.dim());
            let d = dim
                .or(unsliced)
                .unwrap_or_else(|| slices.iter().flatten().flatten().max().map_or(0, |&i| i.saturating_add(1)));
            if d == 0 {
                return Err(Error::invalid(field("dim"), "must be at least 1"));
            }
            let mut sum = Vec::with_capacity(terms.len());
            for (t, ((w, term), slice)) in weights.into_iter().zip(built).zip(slices).enumerate() {
                let term = match slice {
                    None if term.dim() != d => {
                        let reference = if dim.is_some() { "the sum's dim" } else { "the first unsliced term's" };
                        return Err(Error::invalid(
                            field(&format!("terms[{t}]")),
                            format!("dimension {} differs from {reference} {d}", term.dim()),
                        ));
                    }
                    None => term,
                    Some(indices) => {
                        if let Some(problem) = super::slice_problem(&indices, d, term.dim()) {
                            return Err(Error::invalid(field(&format!("slices[{t}]")), problem));
                        }
                        Energy::Slice { indices, dim: d, inner: Box::new(term) }
                    }
                };
                sum.push((w, term));
            }
            Energy::Sum { terms: sum }
        }
    })
}

/// One entry of a sum's `slices`: null (the term sees every dimension) or an array of
/// dimension indices.
fn slice_indices(field: &str, v: &serde_json::Value) -> Result<Option<Vec<usize>>> {
    let items = match v {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Array(items) => items,
        _ => return Err(Error::invalid(field, format!("must be null or an array of dimension indices, got {v}"))),
    };
    let index = |(i, x): (usize, &serde_json::Value)| {
        let n = x.as_u64().and_then(|n| usize::try_from(n).ok());
        n.ok_or_else(|| {
            Error::invalid(
                format!("{field}[{i}]"),
                format!("must be a dimension index (a whole number from 0), got {x}"),
            )
        })
    };
    Ok(Some(items.iter().enumerate().map(index).collect::<Result<Vec<_>>>()?))
}

/// The `group` (and `image`) of a group spec, checked against the inner energy's dimension `d`.
fn group_action(at: &str, group: &str, image: Option<&[usize]>, d: usize) -> Result<GroupAction> {
    let field = |name: &str| format!("{at}{name}");
    let expected = "expected \"rotations:N\", \"dihedral:N\", \"image_rotations\" or \"image_dihedral\"";
    let plane = |n: &str, flips: bool| -> Result<GroupAction> {
        let n: usize = n.parse().map_err(|_| {
            Error::invalid(field("group"), format!("{group:?}: the order after ':' must be a whole number"))
        })?;
        if n == 0 || n > MAX_GROUP_ORDER {
            return Err(Error::invalid(field("group"), format!("{group:?}: the order must be 1 to {MAX_GROUP_ORDER}")));
        }
        if image.is_some() {
            return Err(Error::invalid(field("image"), format!("only applies to the image groups, not {group:?}")));
        }
        if d != 2 {
            return Err(Error::invalid(
                field("group"),
                format!("{group:?} acts on 2-D points, but the energy has dimension {d}"),
            ));
        }
        // cos and sin of 2πk/n in f64, then f32; values within rounding of 0 or ±1 (the quarter
        // turns) are made exact so that those groups are exact groups in every precision.
        let exact = |v: f64| if (v - v.round()).abs() < 1e-12 { v.round() } else { v };
        let mut matrices = Vec::with_capacity(n << flips as usize);
        for reflect in [1.0, -1.0].into_iter().take(1 + flips as usize) {
            for k in 0..n {
                let (s, c) = (std::f64::consts::TAU * k as f64 / n as f64).sin_cos();
                let (s, c) = (exact(s), exact(c));
                // The rotation [[c, -s], [s, c]] times diag(1, reflect).
                matrices.push([c as f32, (-s * reflect) as f32, s as f32, (c * reflect) as f32]);
            }
        }
        Ok(GroupAction::Plane { matrices })
    };
    let images = |flips: bool| -> Result<GroupAction> {
        let Some(shape) = image else {
            return Err(Error::invalid(
                field("image"),
                format!("{group:?} needs the image shape [channels, height, width]"),
            ));
        };
        let &[channels, height, width] = shape else {
            return Err(Error::invalid(
                field("image"),
                format!("must be [channels, height, width], got {} numbers", shape.len()),
            ));
        };
        if height != width || height == 0 || channels == 0 {
            return Err(Error::invalid(
                field("image"),
                format!("{shape:?}: the image must be square and non-empty (quarter turns map it onto itself)"),
            ));
        }
        if height.checked_mul(width).and_then(|p| p.checked_mul(channels)) != Some(d) {
            return Err(Error::invalid(
                field("image"),
                format!(
                    "{shape:?} holds {} values, but the energy has dimension {d}",
                    channels as u128 * height as u128 * width as u128
                ),
            ));
        }
        Ok(GroupAction::Image { channels, side: height, flips })
    };
    match group.split_once(':') {
        Some(("rotations", n)) => plane(n, false),
        Some(("dihedral", n)) => plane(n, true),
        None if group == "image_rotations" => images(false),
        None if group == "image_dihedral" => images(true),
        _ => Err(Error::invalid(field("group"), format!("unknown group {group:?}; {expected}"))),
    }
}

/// A term of a sum: a nested spec, or a string naming a preset, `net:FILE` or `mlp:FILE` (not a
/// spec file: a file naming itself would never end).
fn build_term(term: &serde_json::Value, at: &str) -> Result<Energy> {
    let Some(name) = term.as_str() else {
        let spec: Spec = serde_json::from_value(term.clone())
            .map_err(|e| Error::invalid(at.to_string(), format!("malformed term: {e}")))?;
        return build(&spec, &format!("{at}."));
    };
    let trimmed = name.trim_start();
    if let Some(json) = preset_json(name) {
        parse_energy(&json, &format!("preset {name} ({at})"))
    } else if trimmed.starts_with("net:") || trimmed.starts_with("mlp:") {
        resolve_energy(trimmed)
    } else {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
        Err(Error::invalid(
            at.to_string(),
            format!("`{name}` is neither a preset ({}) nor net:FILE / mlp:FILE", names.join(", ")),
        ))
    }
}

/// An MLP file as an energy (`mlp:FILE`, the spec's `"type": "mlp"`): weights written by
/// PyTorch (`safetensors.torch.save_file(model.state_dict())` of an nn.Sequential) or by
/// `ebm`, read by [`crate::nn::NetworkInternals::load_mlp`] with the activation and sign given here or
/// from the file. The network must be MLP-shaped; other networks load with `net:FILE`.
pub fn mlp_energy(path: &Path, activation: Option<Activation>, negate: Option<bool>) -> Result<Energy> {
    let net = crate::nn::Network::load_mlp(path, activation, negate)?;
    if net.as_mlp().is_none() {
        return Err(Error::format(
            path,
            format!("holds the network {}, not an MLP energy: load it as net:{}", net.spec(), path.display()),
        ));
    }
    Ok(Energy::from_network(net))
}

/// A network file as an energy ([`Energy::from_network`]).
pub fn net_energy(path: &Path, arch: Option<&crate::nn::Architecture>) -> Result<Energy> {
    Ok(Energy::from_network(crate::nn::Network::load(path, arch)?))
}
