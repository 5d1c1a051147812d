//! Where chains (`ebm sample`) or descents (`ebm minimize`) start (`--init`: gaussian,
//! uniform, a box, inside the energy's constraints, a checkpoint's replay buffer or generator,
//! or a file of rows) and which dimensions `--fix` holds.

use anyhow::{Context, bail};

/// What `--init`, `--init-std`, `--seed` and `--energy` say about the starting states.
pub struct Init<'a> {
    pub init: &'a str,
    pub init_std: f32,
    pub seed: u64,
    pub energy: &'a str,
    /// The energy `energy` resolved to (for `feasible`).
    pub resolved: &'a crate::energy::Energy,
}

impl<'a> Init<'a> {
    /// `--init`, `--init-std`, `--seed`, the `--energy` text and the energy it resolved to.
    pub fn new(init: &'a str, init_std: f32, seed: u64, energy: &'a str, resolved: &'a crate::energy::Energy) -> Self {
        Self { init, init_std, seed, energy, resolved }
    }
}

/// The starting states, [chains, dim], for chains first.. (see `--init`).
pub fn initial_states(args: &Init, first: u32, chains: usize, dim: usize) -> anyhow::Result<Vec<f32>> {
    if !(args.init_std > 0.0 && args.init_std.is_finite()) {
        bail!("invalid --init-std: must be a positive finite number, got {}", args.init_std);
    }
    let rows = |source: &str, values: Vec<f32>, width: usize| -> anyhow::Result<Vec<f32>> {
        if width != dim || values.is_empty() {
            bail!("--init {source}: rows of {width} values, the energy takes {dim}");
        }
        let n = values.len() / dim;
        Ok((0..chains).flat_map(|c| values[(first as usize + c) % n * dim..][..dim].to_vec()).collect())
    };
    // U[lo, hi] in every coordinate, chain c's draws from Philox (c, 0, Init, i / 4).
    let uniform = |lo: f32, hi: f32| -> Vec<f32> {
        (0..chains * dim)
            .map(|k| {
                let (c, i) = (first + (k / dim) as u32, k % dim);
                let u = crate::rng::uniform4(args.seed, c, 0, crate::rng::Stream::Init, i as u32 / 4)[i % 4];
                lo + (hi - lo) * u
            })
            .collect()
    };
    match args.init {
        "gaussian" => Ok(crate::rng::initial_states(args.seed, first, chains, dim, args.init_std)),
        "uniform" => Ok(uniform(-args.init_std, args.init_std)),
        "feasible" => {
            let mut states = crate::rng::initial_states(args.seed, first, chains, dim, args.init_std);
            crate::energy::feasible::project_feasible(args.resolved, &mut states)?;
            Ok(states)
        }
        b if b.starts_with("box:") => {
            let (lo, hi) =
                crate::cli::numbers::parse_box(&b["box:".len()..]).map_err(|e| anyhow::anyhow!("--init {b}: {e}"))?;
            if !(lo < hi) {
                bail!("--init {b}: LO must be below HI");
            }
            Ok(uniform(lo, hi))
        }
        source @ ("replay" | "generator") => {
            let Some(path) = args.energy.strip_prefix("net:").or_else(|| args.energy.strip_prefix("mlp:")) else {
                bail!("--init {source} needs --energy net:CHECKPOINT (a training checkpoint with its {source})");
            };
            let (state, config) = crate::train::checkpoint::load(std::path::Path::new(path))
                .with_context(|| format!("--init {source}: {path} is not a training checkpoint"))?;
            if source == "generator" {
                let Some(g) = state.side.filter(|_| config.generator.is_some()) else {
                    bail!("--init generator: {path} was trained without --generator");
                };
                if config.dim() != dim {
                    bail!("--init generator: rows of {} values, the energy takes {dim}", config.dim());
                }
                return Ok(crate::train::generator::samples(&g.net, &config, args.seed, first, chains));
            }
            if state.replay.is_empty() {
                bail!(
                    "--init replay: {path} has no replay buffer (trained with {})",
                    match config.generator {
                        Some(_) => "--generator".to_string(),
                        None => config.loss.to_string(),
                    }
                );
            }
            rows("replay", state.replay, config.dim())
        }
        file => {
            let (values, width) =
                crate::data::toy::read_rows(std::path::Path::new(file)).with_context(|| format!("--init {file}"))?;
            rows(file, values, width)
        }
    }
}

/// `--steps 0` (`--init generator` or `replay`): the starting states are the samples (`--out`, `--png`).
pub(super) fn write_as_samples(
    args: &super::SampleArgs,
    energy: &crate::energy::Energy,
    states: &[f32],
    chains: usize,
) -> anyhow::Result<()> {
    let dim = energy.dim();
    println!("energy {} (d={dim}); {chains} chains of --init {}, no sampling steps", args.energy, args.init);
    if let Some(path) = &args.out {
        crate::io::write_samples(path, states, chains, dim)?;
        println!("wrote {} [{chains}, {dim}]", path.display());
    }
    if let Some(path) = &args.png {
        let title = format!("{}: {chains} samples of --init {}", args.energy, args.init);
        super::figure::write(path, &title, energy, states)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `--fix`: per dimension, the value it is held at (None: free).
pub fn parse_fix(text: &str, dim: usize) -> anyhow::Result<Vec<Option<f32>>> {
    let mut fixed = vec![None; dim];
    let path = std::path::Path::new(text);
    if !text.contains('=') {
        let (values, width) = crate::data::toy::read_rows(path)
            .or_else(|_| {
                // read_rows refuses NaN: NaN marks free dimensions here, so read the raw array.
                crate::io::read_samples(path).map(|(v, _, cols)| (v, cols))
            })
            .with_context(|| format!("--fix {text}: neither I=V pairs nor a readable .npy/.csv file"))?;
        if values.len() != dim || width != dim {
            bail!("--fix {text}: holds {} values in rows of {width}; the energy takes one row of {dim}", values.len());
        }
        for (i, v) in values.into_iter().enumerate() {
            if v.is_infinite() {
                bail!("--fix {text}: dimension {i} is infinite");
            }
            fixed[i] = v.is_finite().then_some(v);
        }
    } else {
        for pair in text.split(',') {
            let (i, v) = pair.split_once('=').with_context(|| format!("--fix {text}: {pair:?} is not I=V"))?;
            let i: usize = i.trim().parse().with_context(|| format!("--fix {text}: {i:?} is not a dimension index"))?;
            let v: f32 = v
                .trim()
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .with_context(|| format!("--fix {text}: {v:?} is not a finite number"))?;
            if i >= dim {
                bail!("--fix {text}: dimension {i} is outside the energy's {dim} dimensions (0..{})", dim - 1);
            }
            // Two values for one dimension: whichever came last would win without a word.
            if let Some(before) = fixed[i] {
                bail!("--fix {text}: dimension {i} is fixed twice (at {before} and at {v}); give each dimension once");
            }
            fixed[i] = Some(v);
        }
    }
    if fixed.iter().all(Option::is_some) {
        bail!("--fix {text}: every dimension is fixed; nothing is left to sample");
    }
    Ok(fixed)
}

/// Sets every row of `states` ([rows, fixed.len()]) to the values `--fix` holds.
pub fn apply_fix(states: &mut [f32], fixed: &[Option<f32>]) {
    for row in states.chunks_exact_mut(fixed.len()) {
        row.iter_mut().zip(fixed).for_each(|(x, v)| *x = v.unwrap_or(*x));
    }
}
