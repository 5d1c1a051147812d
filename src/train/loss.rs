//! The training objectives ([`Loss`]): their `--loss` spelling, checks and the codes the
//! kernels switch on.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The training objective; every variant is a mean over the B (positive, negative) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Loss {
    /// E(x+) - E(x-) + alpha (E(x+)^2 + E(x-)^2) (Du & Mordatch 2019).
    Cd,
    /// softplus(E(x+) - E(x-)) + the same regulariser: the logistic variant.
    Softplus,
    /// max(0, margin + E(x+) - E(x-)) + the same regulariser.
    Hinge { margin: f32 },
    /// Noise-contrastive estimation (Gutmann & Hyvarinen 2010) against a Gaussian fitted to the
    /// data, with log p(x) = -E(x) - log Z and log Z learned: softplus(-G(x+)) + softplus(G(x-)),
    /// G = log p - log q. Negatives are noise samples; no replay buffer, no regulariser.
    Nce,
    /// JEM (Grathwohl et al. 2020): a classifier's logits f(x) define E(x) = -logsumexp f(x);
    /// the loss is the cross-entropy of p(y | x) = softmax f(x) on the labelled positives plus
    /// the CD loss on E (replay-buffer negatives). Needs labels and a `head:lse` network.
    Jem,
    /// Denoising score matching (Vincent 2011): data points x become x̃ = x + σε and the loss
    /// is ½‖σ∇ₓE(x̃) − ε‖² (the σ²-weighted ‖∇ₓE(x̃) − (x̃ − x)/σ²‖²/2), σ drawn per point from
    /// `levels` geometric levels between sigma_max and sigma_min. No negatives, no sampling.
    ///
    /// `conditional` (`--loss ncsm:...`): the model is noise-conditional, E_σ(x) = E(x)/σ (Song
    /// & Ermon 2020, "Improved techniques"), so σ∇ₓE_σ = ∇ₓE and the loss is ½‖∇ₓE(x̃) − ε‖²: one
    /// network serves every level, and it is sampled by annealed Langevin over the levels
    /// ([`crate::sampler::anneal`]).
    Dsm {
        sigma_max: f32,
        sigma_min: f32,
        levels: u32,
        #[serde(default)]
        conditional: bool,
    },
    /// Sliced score matching (Song et al. 2019): −vᵀ∇²ₓE(x) v + ½(vᵀ∇ₓE(x))² on the data
    /// points, one projection v per point, standard normal or (rademacher) random signs.
    Ssm { rademacher: bool },
    /// InfoNCE (van den Oord et al. 2018) on two random views of every data point: the pair
    /// energy −⟨f̂(a), f̂(b)⟩/τ of a network's K outputs scaled to unit length, the batch's other
    /// points the negatives ([`super::contrastive`]). Nothing is sampled; no regulariser.
    InfoNce { temperature: f32 },
}

/// The `--loss` spelling: cd, softplus, hinge:M, nce, jem, dsm:S / dsm:MAX,MIN,L (ncsm: the
/// same, noise-conditional), ssm[:rademacher], infonce:T.
impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loss::Cd => write!(f, "cd"),
            Loss::Softplus => write!(f, "softplus"),
            Loss::Hinge { margin } => write!(f, "hinge:{margin}"),
            Loss::Nce => write!(f, "nce"),
            Loss::Jem => write!(f, "jem"),
            Loss::Dsm { sigma_max, sigma_min, levels, conditional } => {
                let name = if *conditional { "ncsm" } else { "dsm" };
                if *levels == 1 && sigma_max == sigma_min {
                    write!(f, "{name}:{sigma_max}")
                } else {
                    write!(f, "{name}:{sigma_max},{sigma_min},{levels}")
                }
            }
            Loss::Ssm { rademacher: false } => write!(f, "ssm"),
            Loss::Ssm { rademacher: true } => write!(f, "ssm:rademacher"),
            Loss::InfoNce { temperature } => write!(f, "infonce:{temperature}"),
        }
    }
}

impl Loss {
    /// "cd", "softplus", "hinge" (margin 1), "hinge:M", "nce", "jem", "dsm" (σ = 0.1), "dsm:S",
    /// "dsm:MAX,MIN,L" (L geometric levels), "ncsm:MAX,MIN,L" (noise-conditional, E/σ), "ssm",
    /// "ssm:gaussian", "ssm:rademacher", "infonce" (τ = 0.1) or "infonce:T".
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "loss",
                format!(
                    "unknown loss {s:?}; expected cd, softplus, hinge[:margin], nce, jem, dsm[:sigma | :max,min,levels], \
                     ncsm:max,min,levels, ssm[:gaussian|rademacher] or infonce[:temperature]"
                ),
            )
        };
        let number = |v: &str| v.trim().parse::<f32>().ok().filter(|m| m.is_finite()).ok_or_else(bad);
        let loss = match s.split_once(':') {
            None => match s {
                "cd" => Loss::Cd,
                "softplus" => Loss::Softplus,
                "hinge" => Loss::Hinge { margin: 1.0 },
                "nce" => Loss::Nce,
                "jem" => Loss::Jem,
                "dsm" => Loss::Dsm { sigma_max: 0.1, sigma_min: 0.1, levels: 1, conditional: false },
                "ssm" => Loss::Ssm { rademacher: false },
                "infonce" => Loss::InfoNce { temperature: 0.1 },
                _ => return Err(bad()),
            },
            Some(("hinge", m)) => Loss::Hinge { margin: number(m)? },
            Some((name @ ("dsm" | "ncsm"), v)) => {
                let conditional = name == "ncsm";
                match v.split(',').collect::<Vec<_>>().as_slice() {
                    [sigma] => {
                        Loss::Dsm { sigma_max: number(sigma)?, sigma_min: number(sigma)?, levels: 1, conditional }
                    }
                    [max, min, levels] => Loss::Dsm {
                        sigma_max: number(max)?,
                        sigma_min: number(min)?,
                        levels: levels.trim().parse().map_err(|_| bad())?,
                        conditional,
                    },
                    _ => return Err(bad()),
                }
            }
            Some(("ssm", "gaussian")) => Loss::Ssm { rademacher: false },
            Some(("ssm", "rademacher")) => Loss::Ssm { rademacher: true },
            Some(("infonce", t)) => Loss::InfoNce { temperature: number(t)? },
            _ => return Err(bad()),
        };
        loss.check()?;
        Ok(loss)
    }

    /// The loss's own values: noise levels positive, max >= min, 1..=1000 levels (one level
    /// exactly when max = min).
    pub fn check(&self) -> Result<()> {
        if let Loss::Dsm { sigma_max, sigma_min, levels, .. } = *self {
            if !(sigma_min > 0.0 && sigma_max >= sigma_min && sigma_max.is_finite()) {
                return Err(Error::invalid(
                    "dsm noise levels",
                    format!("need finite 0 < sigma_min <= sigma_max, got max {sigma_max}, min {sigma_min}"),
                ));
            }
            if !(1..=1000).contains(&levels) || (levels == 1) != (sigma_max == sigma_min) {
                return Err(Error::invalid(
                    "dsm noise levels",
                    format!(
                        "{levels} levels from {sigma_max} to {sigma_min}: need 1 level for one sigma, 2..=1000 for a range"
                    ),
                ));
            }
        }
        if let Loss::Hinge { margin } = *self
            && !(margin >= 0.0)
        {
            return Err(Error::invalid("hinge margin", format!("must be >= 0 and finite, got {margin}")));
        }
        if let Loss::InfoNce { temperature } = *self
            && !(temperature > 0.0)
        {
            return Err(Error::invalid(
                "infonce temperature",
                format!("must be positive and finite, got {temperature}"),
            ));
        }
        Ok(())
    }

    /// Whether the loss takes negatives sampled by Langevin dynamics (from the replay buffer,
    /// or from a generator's proposals: [`super::TrainConfig::uses_replay_buffer`]).
    pub fn samples_negatives(&self) -> bool {
        !matches!(self, Loss::Nce | Loss::Dsm { .. } | Loss::Ssm { .. } | Loss::InfoNce { .. })
    }

    /// Whether the loss trains on two random views of every point ([`super::contrastive`]).
    pub fn uses_views(&self) -> bool {
        matches!(self, Loss::InfoNce { .. })
    }

    /// Score matching: no negatives at all, the loss is a function of ∇ₓE.
    pub fn is_score_matching(&self) -> bool {
        matches!(self, Loss::Dsm { .. } | Loss::Ssm { .. })
    }

    /// The noise levels of a noise-conditional model (`ncsm:`), largest first: what annealed
    /// Langevin samples it over. None for every other loss.
    pub fn noise_levels(&self) -> Option<Vec<f32>> {
        match *self {
            Loss::Dsm { sigma_max, sigma_min, levels, conditional: true } => {
                Some((0..levels).map(|l| Self::dsm_sigma(sigma_max, sigma_min, levels, l)).collect())
            }
            _ => None,
        }
    }

    /// The factor c of DSM's residual c∇ₓE(x̃) − ε at noise level σ: σ, or 1 for a
    /// noise-conditional model (σ∇ₓ(E/σ) = ∇ₓE).
    pub fn dsm_grad_factor(&self, sigma: f32) -> f32 {
        if matches!(self, Loss::Dsm { conditional: true, .. }) { 1.0 } else { sigma }
    }

    /// DSM's noise level l of `levels` (geometric from sigma_max down to sigma_min).
    pub fn dsm_sigma(sigma_max: f32, sigma_min: f32, levels: u32, l: u32) -> f32 {
        crate::sampler::anneal::geometric_level(sigma_max, sigma_min, levels, l)
    }

    pub(crate) fn code(&self) -> u32 {
        match self {
            Loss::Cd => 0,
            Loss::Softplus => 1,
            Loss::Hinge { .. } => 2,
            Loss::Nce => 3,
            Loss::Jem => 4,
            Loss::Dsm { .. } => 5,
            Loss::Ssm { .. } => 6,
            Loss::InfoNce { .. } => 7,
        }
    }
}
