//! Settings from the model: the sampler a training checkpoint stores (the ULA its replay
//! buffer's negatives and its figures' chains ran: step size, noise, gradient clamp, box, and
//! chains that start uniform in the box), resolved setting by setting against the flags a user
//! gave and the defaults, and the one line that says which value each setting took and where it
//! came from. `ebm sample` and `ebm restore` both resolve their settings here.
//!
//! A checkpoint trained with `--loss ncsm:MAX,MIN,L` (a noise-conditional model) is sampled and
//! restored by annealed Langevin over its levels ([`anneal_levels`]); every other one by its ULA.

use crate::train::{Loss, TrainConfig};
use std::fmt::Display;
use std::path::Path;

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    Flag,
    /// The training checkpoint the energy names.
    Checkpoint,
    /// Another record of the model's run (e.g. a run directory's run.json).
    File(&'static str),
    /// The command's default (the text says which, when it depends on the energy or on other
    /// settings, e.g. "default for images").
    Default(&'static str),
}

impl Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => write!(f, "flag"),
            Source::Checkpoint => write!(f, "checkpoint"),
            Source::File(name) => write!(f, "{name}"),
            Source::Default("") => write!(f, "default"),
            Source::Default(why) => write!(f, "default {why}"),
        }
    }
}

/// The sampler a training checkpoint stores: ULA (`x <- clamp(x - h clamp(grad E) + s xi, box)`)
/// with these settings, chains starting uniform in the box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stored {
    pub step_size: f32,
    /// The noise standard deviation s (training stores it as a multiple of sqrt(2h)).
    pub noise_std: f32,
    /// None: off (training stores 0).
    pub grad_clamp: Option<f32>,
    /// The box enclosing training's per-dimension box.
    pub box_clamp: (f32, f32),
    pub loss: Loss,
}

impl Stored {
    pub fn of(config: &TrainConfig) -> Self {
        let lv = config.langevin;
        let lo = config.box_lo.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let hi = config.box_hi.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        Self {
            step_size: lv.step_size,
            noise_std: lv.noise_std(),
            grad_clamp: (lv.grad_clamp > 0.0).then_some(lv.grad_clamp),
            box_clamp: (lo, hi),
            loss: config.loss,
        }
    }

    /// The sampler stored in the training checkpoint an `--energy net:FILE` or `mlp:FILE` names,
    /// or the one every checkpoint of a sum of them stores (a product of experts trained alike);
    /// None for every other energy (presets, other specs, network files without training
    /// settings, checkpoints that store different samplers).
    pub fn from_energy(energy: &str) -> anyhow::Result<Option<Self>> {
        let arg = energy.trim_start();
        let Some(file) = ["net:", "mlp:"].iter().find_map(|p| arg.strip_prefix(p)) else {
            return Ok(Self::of_sum(arg));
        };
        let config = crate::train::checkpoint::stored_config(Path::new(file))
            .map_err(|e| anyhow::anyhow!("--energy {energy}: {e}"))?;
        if let Some(c) = config.as_ref().filter(|c| c.loss.uses_views()) {
            anyhow::bail!(
                "--energy {energy}: a {} checkpoint scores pairs of points, not points: its features are judged by \
                 `ebm probe` and its pair energies by `ebm score --pairs`",
                c.loss
            );
        }
        Ok(config.as_ref().map(Self::of))
    }

    /// The sampler the checkpoints of a sum spec (inline or a JSON file) all store. Anything
    /// unreadable gives None: resolving the energy itself reports it.
    fn of_sum(arg: &str) -> Option<Self> {
        let text = match arg.starts_with('{') {
            true => arg.to_string(),
            false if arg.ends_with(".json") => std::fs::read_to_string(arg).ok()?,
            false => return None,
        };
        let mut files = Vec::new();
        checkpoint_terms(&serde_json::from_str(&text).ok()?, &mut files)?;
        let stored: Vec<Self> = files
            .iter()
            .map(|f| crate::train::checkpoint::stored_config(Path::new(f)).ok().flatten().map(|c| Self::of(&c)))
            .collect::<Option<_>>()?;
        let first = *stored.first()?;
        stored.iter().all(|s| *s == first).then_some(first)
    }

    /// `--init`'s spelling of where the checkpoint's chains start: uniform in its box.
    pub fn init(&self) -> String {
        format!("box:{},{}", self.box_clamp.0, self.box_clamp.1)
    }

    /// A caution when training never ran this sampler (score matching and NCE draw no
    /// negatives; their checkpoints store the recipe's ULA, which only the figures used).
    pub fn caution(&self) -> Option<String> {
        (!self.loss.samples_negatives()).then(|| {
            format!(
                "note: the checkpoint was trained by {} (no Langevin negatives), so its stored sampler is the \
                 training recipe's and was only used for its figures; override with --sampler, --step-size",
                self.loss
            )
        })
    }
}

/// The weights files of a sum spec's terms, each `net:FILE`, `mlp:FILE` or a `net`/`mlp` spec
/// (nested sums included); None when a term is anything else.
fn checkpoint_terms(spec: &serde_json::Value, files: &mut Vec<String>) -> Option<()> {
    if let Some(text) = spec.as_str() {
        files.push(["net:", "mlp:"].iter().find_map(|p| text.trim_start().strip_prefix(p))?.to_string());
        return Some(());
    }
    match spec.get("type")?.as_str()? {
        "sum" => spec.get("terms")?.as_array()?.iter().try_for_each(|t| checkpoint_terms(t, files)),
        "net" | "mlp" => {
            files.push(spec.get("weights")?.as_str()?.to_string());
            Some(())
        }
        _ => None,
    }
}

/// The noise levels to anneal over, as `--anneal` spells them (MAX,MIN,L), and where they came
/// from: the flag (`off`: none), else the levels of a noise-conditional checkpoint (two or more).
pub fn anneal_levels(flag: Option<&str>, stored: Option<&Stored>) -> anyhow::Result<Option<(String, Source)>> {
    match flag.map(str::trim) {
        Some("off") => Ok(None),
        Some(text) => {
            crate::sampler::anneal::Schedule::parse_levels(text).map_err(|e| anyhow::anyhow!("--anneal: {e}"))?;
            Ok(Some((text.to_string(), Source::Flag)))
        }
        None => Ok(stored
            .and_then(|st| st.loss.noise_levels())
            .filter(|l| l.len() > 1)
            .map(|l| (format!("{},{},{}", l[0], l[l.len() - 1], l.len()), Source::Checkpoint))),
    }
}

/// An annealing's schedule from its levels and the flags: ε (--step-size) [default 0.025 σ_L²]
/// and T (--steps) [default 100 per level], each recorded with its source.
pub fn anneal_schedule(
    (text, source): (String, Source),
    step_size: Option<f32>,
    steps: Option<u32>,
    denoise: bool,
    s: &mut Settings,
) -> anyhow::Result<crate::sampler::anneal::Schedule> {
    use crate::sampler::anneal::{DEFAULT_STEPS_PER_LEVEL, Schedule};
    let sigmas = Schedule::parse_levels(&text).map_err(|e| anyhow::anyhow!("--anneal: {e}"))?;
    s.record("--anneal", &text, source);
    let default_step = (Schedule::default_step_size(&sigmas), Source::Default("for annealing: 0.025 σ_L²"));
    let step_size = s.pick("--step-size", step_size, None, default_step);
    let steps = s.pick("--steps", steps, None, (DEFAULT_STEPS_PER_LEVEL, Source::Default("per level")));
    if !denoise {
        s.record("--no-denoise", &"", Source::Flag);
    }
    Schedule::new(sigmas, steps, step_size, denoise).map_err(|e| anyhow::anyhow!("--anneal {text}: {e}"))
}

/// The settings a command resolved, in order, each with its source; printed as one line.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    items: Vec<(String, String, Source)>,
}

impl Settings {
    pub fn new() -> Self {
        Self::default()
    }

    /// The flag's value when given, else the checkpoint's, else `default`; recorded under `flag`.
    pub fn pick<T: Display>(&mut self, flag: &str, given: Option<T>, stored: Option<T>, default: (T, Source)) -> T {
        self.pick_from(flag, given, stored, Source::Checkpoint, default)
    }

    /// [`Self::pick`] with the stored value from `stored_in` (a checkpoint, a run's run.json).
    pub fn pick_from<T: Display>(
        &mut self,
        flag: &str,
        given: Option<T>,
        stored: Option<T>,
        stored_in: Source,
        default: (T, Source),
    ) -> T {
        let (value, source) = match (given, stored) {
            (Some(v), _) => (v, Source::Flag),
            (None, Some(v)) => (v, stored_in),
            (None, None) => default,
        };
        self.record(flag, &value, source);
        value
    }

    /// Records a setting resolved elsewhere.
    pub fn record(&mut self, flag: &str, value: &dyn Display, source: Source) {
        self.items.push((flag.to_string(), value.to_string(), source));
    }

    /// The source recorded for `flag`, if it was.
    pub fn source(&self, flag: &str) -> Option<Source> {
        self.items.iter().find(|(f, ..)| f == flag).map(|(.., s)| *s)
    }

    /// `settings: --sampler ula (checkpoint), --step-size 10 (checkpoint), ... --chains 64
    /// (default for images)`: as flags, so that the line pasted back runs the same settings.
    pub fn line(&self) -> String {
        let items: Vec<String> = self
            .items
            .iter()
            .map(
                |(flag, value, source)| {
                    if value.is_empty() { format!("{flag} ({source})") } else { format!("{flag} {value} ({source})") }
                },
            )
            .collect();
        format!("settings: {}", items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_beats_the_checkpoint_which_beats_the_default() {
        let mut s = Settings::new();
        assert_eq!(s.pick("--a", Some(1), Some(2), (3, Source::Default(""))), 1);
        assert_eq!(s.pick("--b", None, Some(2), (3, Source::Default(""))), 2);
        assert_eq!(s.pick("--c", None::<i32>, None, (3, Source::Default("for images"))), 3);
        assert_eq!(s.source("--b"), Some(Source::Checkpoint));
        assert_eq!(s.line(), "settings: --a 1 (flag), --b 2 (checkpoint), --c 3 (default for images)");
    }

    #[test]
    fn the_stored_sampler_is_the_training_ula() {
        let data: Vec<f32> = (0..40).map(|k| (k % 7) as f32 - 3.0).collect();
        let mut config = TrainConfig::for_data(Loss::Cd, &data, 2, 0).unwrap();
        config.langevin.step_size = 0.5;
        config.langevin.noise_scale = 0.25;
        config.langevin.grad_clamp = 0.0;
        let s = Stored::of(&config);
        assert_eq!(s.step_size, 0.5);
        assert_eq!(s.noise_std, 0.25 * 1.0f32.sqrt());
        assert_eq!(s.grad_clamp, None);
        let lo = config.box_lo.iter().cloned().fold(f32::INFINITY, f32::min);
        assert_eq!(s.box_clamp.0, lo);
        assert!(s.caution().is_none());
        config.loss = Loss::Ssm { rademacher: false };
        assert!(Stored::of(&config).caution().unwrap().contains("ssm"));
    }
}
