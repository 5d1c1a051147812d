//! Provenance of `ebm sample --shard I/N` outputs. Beside each shard's .npy goes a record,
//! `FILE.shard.json` (written atomically after the array), naming which shard of which run the
//! array is: shard index and count, the run's chains and seed, its sampling settings, a
//! fingerprint of the energy and one of the values written. `ebm merge` joins only arrays whose
//! records say they are the shards of one run, each once, and puts them in shard order; a
//! missing shard, a duplicate, or a shard of another seed, settings or energy is refused naming
//! the file and the field that differs. Without it, "equal to one run" rested on the user.

use anyhow::bail;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

use crate::energy::Energy;

/// Appended to a shard's file name to name its record.
pub const SUFFIX: &str = ".shard.json";
const FORMAT: &str = "ebm-sample-shard";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub format: String,
    /// This shard's index I of `--shard I/N`.
    pub shard: u32,
    /// N of `--shard I/N`.
    pub shards: u32,
    /// --chains of the whole run.
    pub chains: u32,
    /// The run's chains this shard holds: first_chain .. first_chain + count - 1.
    pub first_chain: u32,
    pub count: u32,
    pub seed: u64,
    /// "final states" (--out) or "trace" (--trace).
    pub array: String,
    /// [`energy_fingerprint`] of the sampled energy.
    pub energy: String,
    /// Every other setting that changes the chains, by flag name.
    pub settings: Map<String, Value>,
    /// [`crate::cli::rundir::data_hash`] of the values written to the array.
    pub data: String,
}

impl Record {
    pub fn new(shard: (u32, u32), chains: u32, first_chain: u32, count: usize, seed: u64, energy: &Energy) -> Self {
        Self {
            format: FORMAT.into(),
            shard: shard.0,
            shards: shard.1,
            chains,
            first_chain,
            count: count as u32,
            seed,
            array: String::new(),
            energy: energy_fingerprint(energy),
            settings: Map::new(),
            data: String::new(),
        }
    }

    /// Writes the record of `file`, whose `values` are the `array` ("final states" or "trace").
    pub fn write(&self, file: &Path, array: &str, values: &[f32]) -> anyhow::Result<()> {
        let record = Self { array: array.into(), data: crate::cli::rundir::data_hash(values), ..self.clone() };
        crate::io::write_atomic(&record_path(file), serde_json::to_string_pretty(&record)?.as_bytes())?;
        Ok(())
    }
}

/// Where the record of shard file `file` lives: `FILE.shard.json` beside it.
pub fn record_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(SUFFIX);
    file.with_file_name(name)
}

/// A fingerprint of what an energy computes, not of how it was named: its dimension and its
/// energies at a few fixed points, bits hashed. Two specs of one energy (a preset and its JSON,
/// one file under two names) agree; another energy, another width or another class disagree.
pub fn energy_fingerprint(energy: &Energy) -> String {
    let dim = energy.dim();
    let mut values = vec![dim as f32];
    for k in 0..4 {
        let x: Vec<f32> =
            (0..dim).map(|i| (1.0 + 0.7 * i as f32 + 1.3 * k as f32).sin() * (0.5 + k as f32 * 0.5)).collect();
        values.push(energy.energy(&x));
    }
    crate::cli::rundir::data_hash(&values)
}

/// The records of the arrays `files` (with their values and chain counts), checked to be the
/// shards of one run, each once; returns the order that puts them in shard order.
pub fn check_join(files: &[(&Path, &[f32], usize)]) -> anyhow::Result<Vec<usize>> {
    let mut records = Vec::with_capacity(files.len());
    for &(file, values, chains) in files {
        let path = record_path(file);
        let Some(r) = crate::cli::rundir::read_json::<Record>(&path, "shard record")? else {
            bail!(
                "{}: no shard record {} beside it; ebm merge joins only the outputs of `ebm sample --shard I/N`, \
                 which writes one beside each",
                file.display(),
                path.display()
            );
        };
        if r.format != FORMAT {
            bail!("{}: its format is {:?}, not {FORMAT:?}", path.display(), r.format);
        }
        if r.data != crate::cli::rundir::data_hash(values) || r.count as usize != chains {
            bail!(
                "{}: the values are not those its shard record {} describes (the file was replaced or changed \
                 after sampling); sample the shard again",
                file.display(),
                path.display()
            );
        }
        records.push(r);
    }
    let (first, r0) = (files[0].0, &records[0]);
    for (&(file, ..), r) in files.iter().zip(&records).skip(1) {
        let differs = |field: &str, a: String, b: String| -> anyhow::Result<()> {
            if a != b {
                bail!(
                    "{}: {field} is {a}, but {}'s is {b}: not a shard of the same run (see {})",
                    file.display(),
                    first.display(),
                    record_path(file).display()
                );
            }
            Ok(())
        };
        differs("the shard count (N of --shard I/N)", r.shards.to_string(), r0.shards.to_string())?;
        differs("--chains", r.chains.to_string(), r0.chains.to_string())?;
        differs("--seed", r.seed.to_string(), r0.seed.to_string())?;
        differs("the array (--out or --trace)", r.array.clone(), r0.array.clone())?;
        differs("the energy's fingerprint (--energy)", r.energy.clone(), r0.energy.clone())?;
        // Every setting that differs, in one message (one flag often moves others' defaults).
        let keys: std::collections::BTreeSet<&String> = r.settings.keys().chain(r0.settings.keys()).collect();
        let mut differing = Vec::new();
        for key in keys {
            let show = |m: &Map<String, Value>| match m.get(key) {
                None | Some(Value::Null) => "unset".to_string(),
                Some(Value::String(v)) => v.clone(),
                Some(v) => v.to_string(),
            };
            let (a, b) = (show(&r.settings), show(&r0.settings));
            if a != b {
                differing.push(format!("{key} is {a} (not {b})"));
            }
        }
        if !differing.is_empty() {
            bail!(
                "{}: {}, unlike {}: not a shard of the same run (see {})",
                file.display(),
                differing.join(", "),
                first.display(),
                record_path(file).display()
            );
        }
    }
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&k| records[k].shard);
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if records[a].shard == records[b].shard {
            bail!(
                "{} and {} are both shard {} of {}: give each shard once",
                files[a].0.display(),
                files[b].0.display(),
                records[a].shard,
                r0.shards
            );
        }
    }
    let have: Vec<u32> = order.iter().map(|&k| records[k].shard).collect();
    if let Some(missing) = (0..r0.shards).find(|i| !have.contains(i)) {
        bail!(
            "shard {missing} of {} is missing (given shards {}): ebm merge needs every shard of the run",
            r0.shards,
            have.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        );
    }
    // Shards of one run with a complete set of indices tile its chains; a record whose range
    // disagrees was edited.
    let mut next = 0;
    for &k in &order {
        if records[k].first_chain != next {
            bail!(
                "{}: holds chains from {}, but chain {next} comes next",
                record_path(files[k].0).display(),
                records[k].first_chain
            );
        }
        next += records[k].count;
    }
    if next != r0.chains {
        bail!("the shards hold {next} chains, but their run has --chains {}", r0.chains);
    }
    Ok(order)
}
