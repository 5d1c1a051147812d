//! `ebm eval` of an image model: its test and train NLL (nats per image) and bits per
//! dimension, with log Z by AIS, beside the fitted-Gaussian baseline.
//!
//! Convention: 8-bit images k / 255 are dequantised to z = 2 (k + u) / 256 - 1 in [-1, 1]
//! ([`crate::ais::likelihood::dequantise`]), the model's density is that of the box its run
//! sampled in, and bits per dimension are (NLL + d ln 128) / (d ln 2): comparable with
//! published flows on MNIST. log Z from forward AIS errs low, so the NLL errs low too: the
//! report says so and gives the standard error.

use super::*;
use crate::ais::base::{Base, BaseKind};
use crate::ais::likelihood::{bits_per_dim, dequantise};
use crate::cli::likelihood::{self, AnnealArgs};
use crate::data::{self, Split};

/// The flags of `ebm eval` that image models use.
#[derive(Args, Debug, Clone)]
pub struct ImageEvalArgs {
    /// Image models: AIS runs of each base's estimate of log Z.
    #[arg(long, default_value_t = 100)]
    pub ais_runs: usize,
    /// Image models: AIS temperatures (a sigmoid schedule; at least 100).
    #[arg(long, default_value_t = likelihood::DEFAULT_BETAS)]
    pub betas: usize,
    #[command(flatten)]
    pub anneal: AnnealArgs,
    #[command(flatten)]
    pub shard: likelihood::ShardArgs,
    /// Image models: seeds AIS and the dequantisation noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image models: executor of the energies (auto, gpu or cpu; see `ebm --help`).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
}

/// Flags that only image models' evaluation takes.
pub const IMAGE_FLAGS: [&str; 9] = [
    "--ais-runs",
    "--betas",
    "--base",
    "--leapfrog",
    "--reverse-from",
    "--seed",
    "--backend",
    "--ais-shard",
    "--ais-join",
];

/// Mean and standard error of values.
fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// The model's box as one interval (image models share one across pixels).
fn bounds(config: &crate::train::TrainConfig) -> anyhow::Result<(f32, f32)> {
    let (lo, hi) = (config.box_lo[0], config.box_hi[0]);
    if config.box_lo.iter().any(|&v| v != lo) || config.box_hi.iter().any(|&v| v != hi) {
        bail!("ebm eval of an image model needs one box for every pixel; this run's box differs between pixels");
    }
    Ok((lo, hi))
}

/// Images of a split as pixels in [0, 1], the first `n` of them.
fn images(spec: &str, split: Split, n: usize, dim: usize) -> anyhow::Result<Vec<f32>> {
    let path = crate::cli::datasets::resolve(spec)?;
    let set = data::load(&path, split).with_context(|| format!("--data {spec}"))?;
    if set.dim() != dim {
        bail!("--data {spec}: images have {} pixels but the model takes {dim}", set.dim());
    }
    Ok(set.take(n).images)
}

/// `ebm eval --run-dir D` of an image run: its checkpoint on its data and box, into D/eval.json.
pub fn run(
    a: &EvalArgs,
    run_dir: &Path,
    info: &RunInfo,
    state: &crate::train::TrainState,
    config: &crate::train::TrainConfig,
) -> anyhow::Result<()> {
    let spec = a.data.clone().unwrap_or_else(|| info.data.clone());
    let what = format!("model at step {}", state.step);
    image_likelihood(a, &state.energy(), &spec, bounds(config)?, &what, Some(state.step), &run_dir.join("eval.json"))
}

/// `ebm eval --energy SPEC --data DATA`: an image model outside a run dir.
pub fn run_energy(a: &EvalArgs, energy: &str) -> anyhow::Result<()> {
    let Some(spec) = &a.data else {
        bail!("--energy needs --data: the images to score (mnist, fashion-mnist, an MNIST-layout folder or IDX file)");
    };
    let model = crate::energy::spec::resolve_energy(energy).context("--energy")?;
    // A training checkpoint knows its box; any other model lives on --box (default -1,1).
    let checkpoint = energy.strip_prefix("net:").and_then(|p| crate::train::checkpoint::load(Path::new(p)).ok());
    let bounds = match (a.bounds, &checkpoint) {
        (Some(b), _) => b,
        (None, Some((_, config))) => bounds(config)?,
        (None, None) => (-1.0, 1.0),
    };
    if !(bounds.0 < bounds.1) {
        bail!("--box {},{}: LO must be below HI", bounds.0, bounds.1);
    }
    let step = checkpoint.as_ref().map(|(state, _)| state.step);
    let out = a.json.clone().unwrap_or_default();
    image_likelihood(a, &model, spec, bounds, &format!("--energy {energy}"), step, &out)
}

/// The test and train NLL and bits/dim of `model` on `spec`'s images, with log Z by AIS on
/// [lo, hi]^d, beside the fitted-Gaussian baseline; the JSON report to `out` (none when empty).
fn image_likelihood(
    a: &EvalArgs,
    model: &crate::energy::Energy,
    spec: &str,
    bounds: (f32, f32),
    what: &str,
    step: Option<u32>,
    out: &Path,
) -> anyhow::Result<()> {
    let i = &a.images;
    let dim = model.dim();
    if model.image_shape().is_none() {
        bail!(
            "ebm eval computes exact likelihoods of 2-D models by quadrature and of image models by AIS; this model takes {dim} inputs that are not an image"
        );
    }
    let spec = spec.to_string();
    let n = a.held_out;
    if n < 2 {
        bail!("--held-out {n}: an image model's NLL needs at least 2 test images (for its standard error)");
    }
    let test = dequantise(&images(&spec, Split::Test, n, dim)?, dim, i.seed);
    let train = dequantise(&images(&spec, Split::Train, n, dim)?, dim, i.seed.wrapping_add(1));
    let ctx = crate::cli::backend::open(i.backend)?;
    let bases = i.anneal.bases(dim, Some(bounds), &train)?;
    let cost = model.checked_evaluation_cost("the model")?;
    let cfg = i.anneal.config(i.ais_runs, i.betas, i.seed, cost, bases.len())?;
    println!(
        "{what} on {spec}: {} test and {} training images, dequantised to [-1, 1], on the box [{}, {}]; {}",
        test.len() / dim,
        train.len() / dim,
        bounds.0,
        bounds.1,
        crate::cli::backend::describe(ctx.as_ref())
    );
    let reverse = i.anneal.reverse_samples(dim, Some(bounds))?;
    let json = a.json.as_deref();
    let shard = (Some(bounds), n);
    let Some(found) =
        likelihood::log_z_or_shard(ctx.as_ref(), model, &bases, &cfg, reverse.as_ref(), &i.shard, json, shard)?
    else {
        return Ok(());
    };
    let report = &found.report;
    let mut eval = crate::energy::batch::evaluator(ctx.as_ref(), model);
    let mut nll = |points: &[f32]| -> anyhow::Result<(f64, f64)> {
        let rows = points.len() / dim;
        let (mut e, mut g) = (vec![0.0f32; rows], vec![0.0f32; points.len()]);
        eval.energy_grad(points, &mut e, &mut g)?;
        if let Some(k) = e.iter().position(|v| !v.is_finite()) {
            bail!("the model's energy of image {k} is not finite");
        }
        let (mean, se) = mean_se(&e.iter().map(|&v| v as f64).collect::<Vec<_>>());
        Ok((mean + report.log_z, se.hypot(report.std_err)))
    };
    let (test_nll, test_se) = nll(&test)?;
    let (train_nll, train_se) = nll(&train)?;
    // The skeptic's baseline: independent Gaussians fitted to the training images, on the box.
    let gauss = Base::new(BaseKind::Fitted, dim, Some(bounds), Some(&train))?;
    let mut gb = vec![0.0f32; dim];
    let (gauss_nll, _) = mean_se(&test.chunks_exact(dim).map(|z| gauss.energy_grad(z, &mut gb)).collect::<Vec<_>>());
    for line in likelihood::report_lines(&found, &cfg) {
        println!("{line}");
    }
    let bpd = |v: f64| bits_per_dim(v, dim);
    println!("test NLL:  {test_nll:.2} +- {test_se:.2} nats per image, {:.4} bits/dim", bpd(test_nll));
    println!("train NLL: {train_nll:.2} +- {train_se:.2} nats per image, {:.4} bits/dim", bpd(train_nll));
    println!(
        "baseline, independent Gaussians fitted to the training images (truncated to the box): test NLL {gauss_nll:.2} nats, {:.4} bits/dim; uniform noise: 8 bits/dim",
        bpd(gauss_nll)
    );
    println!("(forward AIS underestimates log Z in expectation, so these NLLs err low by as much)");
    if let Some((_, hi)) = report.interval.filter(|&(_, hi)| hi > report.log_z) {
        let test_hi = test_nll + hi - report.log_z;
        println!(
            "with log Z at the reverse estimate, {hi:.4}: test NLL {test_hi:.2} nats per image, {:.4} bits/dim (the NLL lies between the two when the reverse states are exact samples)",
            bpd(test_hi)
        );
    }
    let report_json = serde_json::json!({
        "data": spec, "model": what, "step": step,
        "convention": "8-bit images dequantised to z = 2 (k + u) / 256 - 1; bits/dim = (NLL + d ln 128) / (d ln 2)",
        "box": [bounds.0, bounds.1],
        "log_z": likelihood::json(&found, &cfg),
        "test": { "images": test.len() / dim, "nll": test_nll, "std_err": test_se, "bits_per_dim": bpd(test_nll) },
        "train": { "images": train.len() / dim, "nll": train_nll, "std_err": train_se, "bits_per_dim": bpd(train_nll) },
        "baseline_fitted_gaussian": { "nll": gauss_nll, "bits_per_dim": bpd(gauss_nll) },
        "executor": crate::cli::backend::describe(ctx.as_ref()),
    });
    if !out.as_os_str().is_empty() {
        crate::io::write_atomic(out, serde_json::to_string_pretty(&report_json)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
