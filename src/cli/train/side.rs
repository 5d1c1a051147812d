//! `ebm train`'s side network flags: `--generator` (cooperative learning) and `--latent` with
//! its `--encoder` (a latent-variable EBM), into the training configuration.

use super::TrainArgs;
use crate::train::TrainConfig;
use crate::train::generator::GeneratorConfig;
use crate::train::latent::{LATENT_BOX, LatentConfig};
use anyhow::bail;

/// Sets `c.generator` or `c.latent` (and a latent EBM's box and noise over z) from the flags.
pub(super) fn configure(a: &TrainArgs, c: &mut TrainConfig) -> anyhow::Result<()> {
    c.generator = match (&a.generator, a.generator_lr) {
        (Some(spec), lr) => Some(GeneratorConfig { spec: spec.clone(), lr: lr.unwrap_or(c.lr) }),
        (None, Some(_)) => bail!("--generator-lr needs --generator"),
        (None, None) => None,
    };
    let Some(l) = a.latent else {
        if let Some(flag) = [("--encoder", a.encoder.is_some()), ("--encoder-lr", a.encoder_lr.is_some())]
            .iter()
            .find_map(|(flag, given)| given.then_some(flag))
        {
            bail!("{flag} needs --latent L");
        }
        return Ok(());
    };
    if l == 0 {
        bail!("invalid --latent 0: a latent-variable EBM needs at least one latent dimension");
    }
    let d = c.dim();
    let encoder = a.encoder.clone().unwrap_or_else(|| format!("{d}/64/swish/64/swish/{}", 2 * l));
    c.latent = Some(LatentConfig { dim: l, encoder, lr: a.encoder_lr.unwrap_or(c.lr) });
    // z's box (restarts and the Langevin clamp) and its noise (unused by the losses z takes).
    c.box_lo.extend(std::iter::repeat_n(-LATENT_BOX, l));
    c.box_hi.extend(std::iter::repeat_n(LATENT_BOX, l));
    c.noise_mean.extend(std::iter::repeat_n(0.0, l));
    c.noise_std.extend(std::iter::repeat_n(1.0, l));
    Ok(())
}
