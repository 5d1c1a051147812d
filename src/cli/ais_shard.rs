//! AIS split over processes (`--ais-shard I/N`, then `--ais-join`), for every model family:
//! a shard runs the runs I*R/N .. (I+1)*R/N - 1 of each estimate with the random numbers they
//! have in the whole set and writes their log weights as JSON, with the settings and the model
//! they came from; the join accepts only the shards of one model and these settings, each
//! once and in order, each holding a finite log weight per run, and gives back every
//! estimate's weights in run order. What the weights mean (their bases, the range a log Z may
//! have) stays with the family: `rbm eval` ([`super::rbm`]) and `ebm eval` of image models
//! ([`super::train::likelihood`]).

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// One estimate's share of a shard (or, after the join, of all of them).
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// The base a forward estimate anneals from, or where a reverse one's states came from.
    pub name: String,
    pub log_z_base: f64,
    /// One per run that finished, in run order.
    pub log_weights: Vec<f64>,
    /// Runs dropped because their start was not finite (never averaged in).
    pub dropped: u64,
    /// Mean acceptance of the transitions, where the family measures one.
    pub acceptance: Option<f64>,
    /// Proposals refused because the energy was not finite.
    pub non_finite: u64,
}

impl Part {
    pub fn new(name: &str, log_z_base: f64, log_weights: Vec<f64>) -> Self {
        Part { name: name.into(), log_z_base, log_weights, dropped: 0, acceptance: None, non_finite: 0 }
    }

    fn to_json(&self) -> Value {
        let mut v = json!({ "base": self.name, "log_z_base": self.log_z_base, "log_weights": self.log_weights });
        if self.dropped > 0 {
            v["dropped_runs"] = self.dropped.into();
        }
        if let Some(a) = self.acceptance {
            v["acceptance"] = a.into();
        }
        if self.non_finite > 0 {
            v["non_finite_proposals"] = self.non_finite.into();
        }
        v
    }

    fn from_json(v: &Value) -> Option<Self> {
        let count = |key: &str| if v[key].is_null() { Some(0) } else { v[key].as_u64() };
        Some(Part {
            name: v["base"].as_str()?.to_string(),
            log_z_base: v["log_z_base"].as_f64()?,
            log_weights: v["log_weights"].as_array()?.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>()?,
            dropped: count("dropped_runs")?,
            acceptance: if v["acceptance"].is_null() { None } else { Some(v["acceptance"].as_f64()?) },
            non_finite: count("non_finite_proposals")?,
        })
    }

    /// The runs this part accounts for.
    fn runs(&self) -> u64 {
        self.log_weights.len() as u64 + self.dropped
    }

    /// Appends the next shard's runs: weights in run order, counts summed, acceptance averaged
    /// over the runs.
    fn extend(&mut self, next: Part) {
        let (a, b) = (self.runs() as f64, next.runs() as f64);
        self.acceptance = match (self.acceptance, next.acceptance) {
            (Some(x), Some(y)) if a + b > 0.0 => Some((x * a + y * b) / (a + b)),
            _ => None,
        };
        self.log_weights.extend(next.log_weights);
        self.dropped += next.dropped;
        self.non_finite += next.non_finite;
    }
}

/// What every shard of a join must share: the settings (field -> value) with the flag that
/// sets each, and a fingerprint of the model.
pub struct Provenance<'a> {
    pub settings: Value,
    pub flags: &'a [(&'a str, &'a str)],
    pub model: String,
    /// What to join instead when the model differs (e.g. "join the shards of this --run-dir").
    pub model_hint: &'a str,
}

/// The runs of shard I of N of `total`, refused when it holds fewer than 2 (no standard error).
pub fn runs_of((i, n): (u32, u32), total: usize) -> anyhow::Result<(usize, usize)> {
    let bound = |k: u32| (k as u64 * total as u64 / n as u64) as usize;
    let (first, end) = (bound(i), bound(i + 1));
    if end - first < 2 {
        bail!(
            "--ais-shard {i}/{n} of --ais-runs {total} holds {} runs; each shard needs at least 2 (use at most {} shards)",
            end - first,
            total / 2
        );
    }
    Ok((first, end))
}

/// Writes a shard's parts with their provenance to `path` (atomically) and says so.
pub fn write(
    path: &Path,
    provenance: &Provenance,
    (i, n): (u32, u32),
    (first, end): (usize, usize),
    forward: &[Part],
    reverse: Option<&Part>,
) -> anyhow::Result<()> {
    let mut shard = json!({
        "settings": provenance.settings,
        "model": provenance.model,
        "shard": [i, n],
        "runs": [first, end],
        "forward": forward.iter().map(Part::to_json).collect::<Vec<_>>(),
        "reverse": reverse.map(Part::to_json),
    });
    // Over the rest as serialised: the join serialises what it read again and compares, which
    // gives the same text because serde_json parses floats exactly (its float_roundtrip).
    shard["checksum"] = crate::io::checksum_text(&serde_json::to_string(&shard)?).into();
    crate::io::write_atomic(path, serde_json::to_string(&shard)?.as_bytes())
        .with_context(|| format!("--json {}", path.display()))?;
    let total = provenance.settings["ais_runs"].as_u64().unwrap_or(end as u64);
    println!("wrote {} (AIS runs {first}..{} of {total}, shard {i}/{n})", path.display(), end - 1);
    Ok(())
}

/// The shards' parts joined in run order: the forward estimates and the reverse one, each with
/// `total` runs, after checking each file against `provenance`.
pub fn join(files: &[PathBuf], provenance: &Provenance, total: usize) -> anyhow::Result<(Vec<Part>, Option<Part>)> {
    let mut next_run = 0u64;
    let mut joined: Option<(Vec<Part>, Option<Part>)> = None;
    for path in files {
        let shard = read_shard(path)?;
        let named = |m: String| anyhow::anyhow!("--ais-join {}: {m}", path.display());
        for &(field, flag) in provenance.flags {
            if shard["settings"][field] != provenance.settings[field] {
                let flags = provenance.flags.iter().map(|f| f.1).collect::<Vec<_>>().join(", ");
                return Err(named(format!(
                    "made with {flag} {}, but this evaluation has {flag} {}; give the shards' {flags}",
                    shard["settings"][field], provenance.settings[field]
                )));
            }
        }
        match shard["model"].as_str() {
            Some(m) if m == provenance.model => {}
            Some(_) => {
                return Err(named(format!(
                    "computed on another model than this one (its parameters differ); {}",
                    provenance.model_hint
                )));
            }
            None => {
                return Err(named(
                    "records no model fingerprint (an older --ais-shard run); run the shard again".into(),
                ));
            }
        }
        let runs = shard["runs"].as_array().and_then(|r| Some((r.first()?.as_u64()?, r.get(1)?.as_u64()?)));
        if runs.map(|r| r.0) != Some(next_run) {
            return Err(named(format!(
                "holds runs {} but run {next_run} comes next: give every shard once, shard 0 first",
                shard["runs"]
            )));
        }
        let (first, end) = runs.unwrap_or_default();
        if end <= first || end > total as u64 {
            return Err(named(format!("holds runs {first}..{end}, not a range of --ais-runs {total}")));
        }
        next_run = end;
        let parse = |j: usize, v: &Value| -> anyhow::Result<Part> {
            let part = Part::from_json(v).ok_or_else(|| named(format!("estimate {j} is malformed")))?;
            if part.runs() != end - first {
                return Err(named(format!(
                    "estimate {j} ({}) holds {} log weights for its {} runs {first}..{end}",
                    part.name,
                    part.log_weights.len(),
                    end - first
                )));
            }
            let numbers = std::iter::once(part.log_z_base).chain(part.log_weights.iter().copied());
            if let Some(w) = numbers.chain(part.acceptance).find(|w| !w.is_finite()) {
                return Err(named(format!("estimate {j} ({}) holds a non-finite number ({w})", part.name)));
            }
            Ok(part)
        };
        let forward = shard["forward"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(j, v)| parse(j, v))
            .collect::<Result<Vec<_>, _>>()?;
        let reverse = match &shard["reverse"] {
            Value::Null => None,
            v => Some(parse(forward.len(), v)?),
        };
        let Some((all_forward, all_reverse)) = joined.as_mut() else {
            joined = Some((forward, reverse));
            continue;
        };
        let count = |f: &Vec<Part>, r: &Option<Part>| f.len() + r.is_some() as usize;
        let first = files[0].display();
        if count(&forward, &reverse) != count(all_forward, all_reverse) {
            return Err(named(format!(
                "holds {} estimates, shard 0 ({first}) holds {}",
                count(&forward, &reverse),
                count(all_forward, all_reverse)
            )));
        }
        let pairs = all_forward.iter_mut().zip(forward).chain(all_reverse.iter_mut().zip(reverse));
        for (j, (all, part)) in pairs.enumerate() {
            if part.name != all.name {
                return Err(named(format!(
                    "estimate {j} is from the {} base, shard 0's ({first}) from the {} base",
                    part.name, all.name
                )));
            }
            if part.log_z_base != all.log_z_base {
                return Err(named(format!(
                    "estimate {j} ({}) has base log Z {}, shard 0 ({first}) has {} (another --data, or a damaged file)",
                    part.name, part.log_z_base, all.log_z_base
                )));
            }
            all.extend(part);
        }
    }
    if next_run != total as u64 {
        bail!("--ais-join: the shards hold runs 0..{next_run}, --ais-runs is {total}: a shard is missing");
    }
    joined.ok_or_else(|| anyhow::anyhow!("--ais-join: name at least one shard file"))
}

/// A shard's JSON, read as a regular file with a bound (a named pipe or a huge file is refused).
fn read_shard(path: &Path) -> anyhow::Result<Value> {
    let value = crate::cli::rundir::read_json::<Value>(path, "--ais-shard JSON")
        .with_context(|| format!("--ais-join {}", path.display()))?;
    let Some(mut value) = value else { bail!("--ais-join {}: no such file", path.display()) };
    let Some(recorded) = value.as_object_mut().map(|o| o.remove("checksum")) else {
        bail!("--ais-join {}: not the JSON of an --ais-shard run", path.display());
    };
    let Some(recorded) = recorded.as_ref().and_then(Value::as_str).map(str::to_string) else {
        bail!(
            "--ais-join {}: records no checksum (an older --ais-shard run, or not one); run the shard again",
            path.display()
        );
    };
    if crate::io::checksum_text(&serde_json::to_string(&value)?) != recorded {
        bail!(
            "--ais-join {}: its contents do not match its checksum: the file was changed or damaged after the shard wrote it; run the shard again",
            path.display()
        );
    }
    Ok(value)
}
