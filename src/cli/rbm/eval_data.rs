//! The data `ebm rbm eval` evaluates on: each of `--data`, `--binarize` and `--data-seed` from
//! its flag, else from the run directory's `run.json` (the data the RBM was trained on, so the
//! test images are binarised as the training images were), through the same resolution and
//! settings line as a checkpoint's sampler (`crate::cli::settings`). A flag that differs from
//! the run's is used, with a warning.

use super::{BinarizeArg, DataArgs, RUN_FILE, read_run_data};
use crate::cli::settings::{Settings, Source};
use anyhow::bail;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// `ebm rbm eval`'s data flags: every one optional, the run's `run.json` filling the rest.
#[derive(Args, Clone, Debug)]
pub struct EvalDataArgs {
    /// An MNIST-layout IDX folder (gz or raw) or the 8x8 digits CSV (file or folder) [default:
    /// the run's, from RUN_DIR/run.json].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// How grey levels in [0, 1] become visible units: stochastic, threshold or none [default:
    /// the run's, from RUN_DIR/run.json; else stochastic].
    #[arg(long, value_enum)]
    pub binarize: Option<BinarizeArg>,
    /// Seed of the stochastic binarisation [default: the run's; else 0].
    #[arg(long)]
    pub data_seed: Option<u64>,
    /// Use only the first N rows of each split.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// The data to evaluate on, and the settings line saying where each value came from; warns on
/// stderr where a flag differs from the run.
pub(super) fn resolve(a: &EvalDataArgs, run_dir: &Path) -> anyhow::Result<(DataArgs, Settings)> {
    let run = read_run_data(run_dir)?;
    let mut s = Settings::new();
    let from_run = Source::File("run.json");
    let data = match (&a.data, &run) {
        (Some(d), _) => {
            s.record("--data", &d.display(), Source::Flag);
            d.clone()
        }
        (None, Some(r)) => {
            s.record("--data", &r.data.display(), from_run);
            r.data.clone()
        }
        (None, None) => bail!(
            "--data is needed: {} records no training data (a run of an older version); give the data it was trained on",
            run_dir.join(RUN_FILE).display()
        ),
    };
    let run_binarize = match &run {
        Some(r) => Some(
            <BinarizeArg as ValueEnum>::from_str(&r.binarize, true)
                .map_err(|e| anyhow::anyhow!("{}: binarize {:?}: {e}", run_dir.join(RUN_FILE).display(), r.binarize))?,
        ),
        None => None,
    };

    let binarize = s
        .pick_from(
            "--binarize",
            a.binarize.map(Name),
            run_binarize.map(Name),
            from_run,
            (Name(BinarizeArg::Stochastic), Source::Default("")),
        )
        .0;
    let data_seed =
        s.pick_from("--data-seed", a.data_seed, run.as_ref().map(|r| r.data_seed), from_run, (0, Source::Default("")));
    if let Some(r) = &run {
        let run_file = r.data_file.clone().or_else(|| crate::cli::rundir::data_file(&r.data));
        let differs = match (run_file, crate::cli::rundir::data_file(&data)) {
            (Some(x), Some(y)) => x != y,
            _ => r.data != data,
        };
        if a.data.is_some() && differs {
            eprintln!(
                "warning: --data {} is not the data this RBM was trained on ({}, run.json): its test split is evaluated as given",
                data.display(),
                r.data.display()
            );
        }
        if let (Some(given), Some(trained)) = (a.binarize, run_binarize)
            && given != trained
        {
            eprintln!(
                "warning: --binarize {} differs from the run's --binarize {} (run.json): the test images are not \
                 binarised as the training images were, which moves the log-likelihood; drop the flag to use the run's",
                given.name(),
                trained.name()
            );
        }
        if binarize == BinarizeArg::Stochastic
            && let Some(seed) = a.data_seed.filter(|&v| v != r.data_seed)
        {
            eprintln!("warning: --data-seed {seed} differs from the run's {} (run.json)", r.data_seed);
        }
    }
    let limit = a.limit;
    Ok((DataArgs { data, binarize, data_seed, limit }, s))
}

/// A `--binarize` value shown as the flag spells it.
#[derive(Clone, Copy)]
struct Name(BinarizeArg);

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}
