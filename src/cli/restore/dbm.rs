//! `ebm restore --energy dbm:PATH`: inpainting with a deep Boltzmann machine. Its units are
//! binary, so the observed pixels are binarised at 0 (grey level 0.5) and clamped, block Gibbs
//! runs on the holes ([`crate::rbm::deep::cpu::inpaint`], CPU executor) from all of them off
//! (the background), and each hole shows E[v | h1] of the chain's last h1, mapped back to
//! [-1, 1]. Holes started as noise can hold a long-trained DBM in a mode of grey, undecided
//! holes: the 100-epoch MNIST DBM of docs/rbm.md restored top halves at 10.66 dB that way,
//! 15.5 dB from off.

use super::RestoreArgs;
use crate::cli::backend::Backend;
use crate::rbm::deep::{Deep, Kind, checkpoint, cpu::inpaint};
use anyhow::{Context, bail};
use std::path::Path;

/// Gibbs steps when --steps is not given.
pub(super) const DEFAULT_STEPS: u32 = 1000;

/// The DBM of `dbm:PATH` (a checkpoint, or a run directory holding one), after refusing the
/// flags of energy-based restoration that do not apply.
pub(super) fn load(args: &RestoreArgs, path: &str) -> anyhow::Result<Deep> {
    let refused = [
        ("--map", args.map),
        ("--anneal", args.anneal.is_some()),
        ("--no-denoise", args.no_denoise),
        ("--step-size", args.step_size.is_some()),
        ("--noise-std", args.noise_std.is_some()),
        ("--grad-clamp", args.grad_clamp.is_some()),
        ("--fidelity", args.fidelity.is_some()),
        ("--noise", args.noise != 0.0),
    ];
    if let Some((flag, _)) = refused.iter().find(|(_, given)| *given) {
        bail!("{flag} does not apply to --energy dbm: (block Gibbs on the missing pixels; --steps sets its length)");
    }
    if args.backend == Backend::Gpu {
        bail!("--backend gpu: restoration with a DBM runs on the CPU executor (use --backend cpu or auto)");
    }
    let path = Path::new(path);
    let file = if path.is_dir() { path.join("checkpoint.safetensors") } else { path.to_path_buf() };
    let (model, _) = checkpoint::load(&file).with_context(|| format!("--energy dbm:{}", path.display()))?;
    if model.kind != Kind::Dbm {
        bail!("--energy dbm:{}: holds a {}, not a DBM", path.display(), model.kind.name());
    }
    Ok(model)
}

/// One restoration of every image: `start` on [-1, 1], `holes` its missing pixels (which start
/// off, whatever `start` holds there); chain r of restoration `k` draws as chain r under
/// seed + k.
pub(super) fn restore(model: &Deep, start: &[f32], holes: &[bool], steps: u32, seed: u64) -> anyhow::Result<Vec<f32>> {
    let binary: Vec<f32> = start.iter().zip(holes).map(|(&x, &h)| (!h && x > 0.0) as u32 as f32).collect();
    let observed: Vec<bool> = holes.iter().map(|h| !h).collect();
    let means = inpaint(model, &binary, &observed, steps, seed, 0)?;
    Ok(means.iter().zip(start).zip(holes).map(|((&p, &x), &hole)| if hole { 2.0 * p - 1.0 } else { x }).collect())
}
