//! The training rows of a run: the points of --data (and --pairs), JEM's labels, and a
//! resumed run's rows checked against its fingerprint.

use super::*;

/// The training rows (the first `subset` of them, if given), their width and, for images,
/// their [C, H, W] shape.
pub(super) type Rows = (Vec<f32>, usize, Option<[usize; 3]>);

pub(super) fn load_data(spec: &str, n: usize, seed: u64, subset: Option<usize>) -> anyhow::Result<Rows> {
    let (mut data, dim, shape) = toy::load_rows_shaped(&datasets::resolve(spec)?.to_string_lossy(), n, seed)
        .with_context(|| format!("loading --data {spec}"))?;
    if let Some(rows) = subset {
        if rows == 0 {
            bail!("--subset must be at least 1 row");
        }
        data.truncate(rows.saturating_mul(dim));
    }
    Ok((data, dim, shape))
}

/// JEM's labels of the training rows (the first `subset`): the labels file of an image folder
/// or of mnist / fashion-mnist; empty for the other losses.
pub(super) fn load_labels(loss: Loss, spec: &str, rows: usize) -> anyhow::Result<Vec<u32>> {
    if loss != Loss::Jem {
        return Ok(Vec::new());
    }
    let path = datasets::resolve(spec)?;
    let labels = path
        .is_dir()
        .then(|| crate::data::load(&path, crate::data::Split::Train))
        .transpose()?
        .and_then(|d| d.labels)
        .with_context(|| {
            format!("--loss jem needs labels: --data {spec} is not mnist, fashion-mnist or an MNIST-layout folder with its labels file")
        })?;
    Ok(labels.iter().take(rows).map(|&l| l as u32).collect())
}

/// Appends the second views of `--pairs FILE` to the first views `data` (rows of `dim`),
/// loaded as `--data` was (`load`: its train size, seed and subset); they must match it.
pub(super) fn append_pairs(
    data: &mut Vec<f32>,
    dim: usize,
    file: &str,
    data_spec: &str,
    (n, seed, subset): (usize, u64, Option<usize>),
) -> anyhow::Result<()> {
    let (pairs, pair_dim, _) = load_data(file, n, seed, subset).context("--pairs")?;
    let (rows, pair_rows) = (data.len() / dim, pairs.len() / pair_dim.max(1));
    if (pair_rows, pair_dim) != (rows, dim) {
        bail!(
            "--pairs {file}: {pair_rows} rows of {pair_dim} values, --data {data_spec} has {rows} of {dim}: \
             row i of each is one pair"
        );
    }
    data.extend(pairs);
    Ok(())
}

/// The smallest and largest value of column `i`.
pub(super) fn data_min(data: &[f32], dim: usize, i: usize) -> f32 {
    data.iter().skip(i).step_by(dim).fold(f32::INFINITY, |m, &v| m.min(v))
}

pub(super) fn data_max(data: &[f32], dim: usize, i: usize) -> f32 {
    data.iter().skip(i).step_by(dim).fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// The training points of a run (regenerated toy data or the file re-read, checked against
/// the run's fingerprint) and, for JEM, their labels.
pub(super) fn run_data(info: &mut RunInfo, config: &TrainConfig) -> anyhow::Result<(Vec<f32>, Vec<u32>)> {
    let (mut data, dim, _) = load_data(&info.data, info.train_size, info.data_seed, info.subset)?;
    let rows = data.len() / dim.max(1);
    if let Some(pairs) = &info.pairs {
        append_pairs(&mut data, dim, pairs, &info.data, (info.train_size, info.data_seed, info.subset))?;
    }
    if dim != config.data_dim() {
        bail!(
            "the training data {} now has {dim} columns, the run {} was trained on {}",
            info.data,
            RUN_FILE,
            config.data_dim()
        );
    }
    let hash = crate::cli::rundir::data_hash(&data);
    match &info.data_hash {
        Some(h) if *h != hash => bail!(
            "the training data {} changed since the run started (fingerprint {h}, now {hash}); \
             resume with the original data, or start a new run",
            info.data
        ),
        Some(_) => {}
        None => {
            eprintln!("note: {RUN_FILE} records no data fingerprint (an older run): the data is not verified");
            info.data_hash = Some(hash);
        }
    }
    let labels = load_labels(config.loss, &info.data, rows)?;
    Ok((data, labels))
}
