//! `ebm score` of a latent EBM's checkpoint on points of the data's width: each point's
//! marginal energy F(x) = −log ∫ exp(−E(x, z)) dz by importance sampling with the checkpoint's
//! encoder ([`crate::train::latent::marginal_energy`]), with its standard error, for data of
//! any width (unnormalised: `ebm eval` normalises it on 2-D data).

use super::ScoreArgs;
use crate::train::{TrainConfig, TrainState, eval, latent};
use anyhow::{Context, bail};
use std::path::Path;

/// The latent EBM `--energy net:CKPT` names, when it is one: its state and configuration.
pub fn latent_checkpoint(energy: &str) -> Option<(TrainState, TrainConfig)> {
    let file = energy.trim_start().strip_prefix("net:")?;
    let (state, config) = crate::train::checkpoint::load(Path::new(file)).ok()?;
    config.latent.is_some().then_some((state, config))
}

/// Scores `points` ([n, D], read from `args.points`) by their marginal energies: a summary,
/// and with `--out` each point's F̂ and standard error.
pub fn score_marginal(
    args: &ScoreArgs,
    points: &[f32],
    state: &TrainState,
    config: &TrainConfig,
) -> anyhow::Result<()> {
    let n = points.len() / config.data_dim();
    let Some(encoder) = state.side.as_ref().map(|s| &s.net) else {
        bail!("--energy {}: a latent EBM's checkpoint without its encoder", args.energy);
    };
    let model = state.energy();
    let estimates =
        latent::marginal_energy(&|q| eval::energies(&model, q), encoder, points, latent::MARGINAL_DRAWS, args.seed)
            .context("the marginal energy")?;
    let mean = |f: &dyn Fn(&latent::Estimate) -> f64| estimates.iter().map(f).sum::<f64>() / n as f64;
    println!(
        "{n} points, the marginal energy F(x) = -log of the integral of exp(-E(x, z)) over z ({} latents), by \
         importance sampling with the encoder ({} draws each): mean {:.4}, mean standard error {:.4} \
         (no log Z: F is unnormalised; `ebm eval` normalises 2-D models)",
        config.latent.as_ref().map_or(0, |l| l.dim),
        latent::MARGINAL_DRAWS,
        mean(&|e| e.value),
        mean(&|e| e.se)
    );
    if let Some(out) = &args.out {
        let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "npy" => {
                let table: Vec<f32> = estimates.iter().flat_map(|e| [e.value as f32, e.se as f32]).collect();
                crate::io::npy::write_f32(out, &table, &[n, 2])?;
            }
            "csv" => {
                let mut text = String::from("marginal_energy,std_err\n");
                estimates.iter().for_each(|e| text.push_str(&format!("{},{}\n", e.value, e.se)));
                crate::io::write_atomic(out, text.as_bytes())?;
            }
            _ => {
                let report = serde_json::json!({
                    "energy": args.energy, "points": args.points.display().to_string(),
                    "draws": latent::MARGINAL_DRAWS, "seed": args.seed,
                    "marginal_energy": estimates.iter().map(|e| e.value).collect::<Vec<_>>(),
                    "std_err": estimates.iter().map(|e| e.se).collect::<Vec<_>>(),
                });
                crate::io::write_atomic(out, serde_json::to_string_pretty(&report)?.as_bytes())?;
            }
        }
        println!("wrote {} ({n} points: marginal energy, standard error)", out.display());
    }
    Ok(())
}
