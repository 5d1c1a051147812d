//! `ebm train`'s defaults: the recipes for 2-D toys and for images, and the default model.

use crate::train::ModelSpec;

/// Defaults of the flags that differ between 2-D toys and images (a model whose input is
/// CxHxW): for images the UvA MNIST recipe (Lippe, UvA DL tutorial 8).
pub(super) struct Recipe {
    pub(super) steps: u32,
    pub(super) batch: usize,
    pub(super) lr: f32,
    pub(super) lr_decay_to: f32,
    pub(super) lr_gamma: f32,
    pub(super) beta1: f32,
    pub(super) clip_norm: f32,
    pub(super) alpha: f32,
    pub(super) langevin_steps: u32,
    pub(super) step_size: f32,
    pub(super) noise_std: Option<f32>,
    pub(super) grad_clamp: f32,
}

pub(super) const TOY_RECIPE: Recipe = Recipe {
    steps: 3000,
    batch: 256,
    lr: 5e-3,
    lr_decay_to: 0.05,
    lr_gamma: 1.0,
    beta1: 0.9,
    clip_norm: 10.0,
    alpha: 0.01,
    langevin_steps: 20,
    step_size: 0.01,
    noise_std: None,
    grad_clamp: 0.0,
};

pub(super) const IMAGE_RECIPE: Recipe = Recipe {
    steps: 0, // one epoch
    batch: 128,
    lr: 1e-4,
    lr_decay_to: 1.0,
    lr_gamma: 0.97,
    beta1: 0.0,
    clip_norm: 0.1,
    alpha: 0.1,
    langevin_steps: 60,
    step_size: 10.0,
    noise_std: Some(0.005),
    grad_clamp: 0.03,
};

pub(super) const DEFAULT_MODEL: &str = "2/128/silu/128/silu/1";

/// The one-line deprecation for `--model mlp:WIDTHS[:ACT]`, the former spelling of an MLP's
/// text form: `mlp:` names a weights file everywhere else (`--energy mlp:FILE`), so the widths
/// spelling is kept, hidden from --help, only for old scripts.
pub(in crate::cli) fn model_deprecation(model: Option<&str>) -> Option<String> {
    let m = model.filter(|m| m.starts_with("mlp:"))?;
    let now = ModelSpec::parse(m).map_or("a network in the text form of docs/networks.md".into(), |s| s.to_string());
    Some(format!(
        "warning: --model {m} is now spelled --model {now} (mlp: names a weights file, as in --energy mlp:FILE)"
    ))
}
