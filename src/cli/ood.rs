//! `ebm ood`: out-of-distribution detection with an energy: the energy of every input of an
//! in-distribution test set and of one or more other sets, AUROC, AUPR and FPR at 95 % TPR per
//! other set (library: `crate::eval::ood`), overlaid energy histograms, a threshold at a
//! chosen percentile of the in-distribution energies, and a JSON report.

use std::path::PathBuf;

use crate::cli::backend::{self, Backend};
use crate::data::{self, Split};
use crate::energy::{Energy, EnergyInternals, spec};
use crate::eval::ood;
use crate::nn::NetworkInternals;
use crate::train::eval;
use anyhow::{Context, bail};
use serde::Serialize;

/// Out-of-distribution detection: energies of the in-distribution test set and of other sets;
/// AUROC, AUPR (OOD positive) and FPR at 95 % TPR (the share of OOD inputs accepted when 95 % of
/// in-distribution inputs are); higher energy means more unusual.
#[derive(clap::Args, Debug)]
#[command(
    after_long_help = "Examples:\n  ebm ood --energy net:runs/uva/checkpoint.safetensors --in mnist --out fashion-mnist --out noise \
--png ood.png --json ood.json\n  ebm ood --energy net:runs/uva/checkpoint.safetensors --in mnist --out fashion-mnist --complexity\n\n\
Sets: mnist, fashion-mnist (their test split, found as `ebm data list` shows; `ebm data download NAME` fetches them), an MNIST-layout folder \
(test split) or IDX images file, pixels scaled to [-1, 1]; a .npy/.csv file of rows; or noise (uniform in [-1, 1], \
as many rows as the in-distribution set)."
)]
pub struct OodArgs {
    /// The energy: net:CHECKPOINT, a network file or any energy spec whose input is an image.
    #[arg(long)]
    pub energy: String,
    /// The in-distribution set (its test split): a dataset name, folder or file, as --data of
    /// the other commands.
    #[arg(long = "data", value_name = "SET")]
    pub in_set: Option<String>,
    /// An out-of-distribution set (repeat for several): a dataset name, folder or file, or
    /// `noise` (uniform in [-1, 1]).
    #[arg(long = "ood", value_name = "SET")]
    pub out_sets: Vec<String>,
    /// The former name of --data, accepted with a warning.
    #[arg(long = "in", value_name = "SET", hide = true, conflicts_with = "in_set")]
    pub in_set_former: Option<String>,
    /// The former name of --ood, accepted with a warning (--out names an output file elsewhere).
    #[arg(long = "out", value_name = "SET", hide = true, conflicts_with = "out_sets")]
    pub out_sets_former: Vec<String>,
    /// Use the first N inputs of each set only.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Percentile of the in-distribution energies reported as the decision threshold.
    #[arg(long, default_value_t = 95.0, value_parser = crate::cli::numbers::finite_f64)]
    pub percentile: f64,
    /// Also score with the input-complexity correction (Serra et al. 2020): energy minus
    /// WEIGHT x ln 2 x the input's length in bits as a PNG, which discounts simple inputs.
    /// WEIGHT 1 is the published form for energies on the scale of a negative log-likelihood in
    /// nats; energies trained with a regulariser are usually much smaller, so try a smaller one.
    #[arg(long, value_name = "WEIGHT", num_args = 0..=1, default_missing_value = "1", value_parser = crate::cli::numbers::finite_f32)]
    pub complexity: Option<f32>,
    /// Overlaid energy histograms (in-distribution blue, then orange, green, red, purple, brown)
    /// with the threshold as a dashed line.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// The report: every set's size, mean energy and metrics, and the threshold.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seeds the noise set.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Executor of the energies: auto, gpu or cpu (see `ebm --help`).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
}

/// The rows of a set, as wide as `dim`: `noise` (`rows_for_noise` rows uniform in [-1, 1]),
/// images (the `split` of a folder or a name, a `.npy` of [N, C, H, W] or [N, H, W] images;
/// pixels in [-1, 1]) or a .npy/.csv file of rows. Images whose shape differs from `shape`
/// (the energy's C x H x W input, when it has one) are refused, naming both.
pub fn load_set(
    spec: &str,
    (dim, shape): (usize, Option<(usize, usize, usize)>),
    rows_for_noise: usize,
    seed: u64,
    limit: Option<usize>,
    split: Split,
) -> anyhow::Result<Vec<f32>> {
    let mut rows = if spec == "noise" {
        let n = limit.unwrap_or(rows_for_noise).min(rows_for_noise.max(1));
        (0..n * dim)
            .map(|k| {
                let u = crate::rng::uniform4(seed, (k / dim) as u32, 0, crate::rng::Stream::Init, (k % dim) as u32 / 4);
                2.0 * u[k % dim % 4] - 1.0
            })
            .collect()
    } else {
        let path = crate::cli::datasets::resolve(spec)?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let (values, width, image) = if path.is_dir() || ext == "gz" || path.to_string_lossy().contains("idx") {
            let set = if path.is_dir() { data::load(&path, split)? } else { data::idx::load_images(&path, None)? };
            let d = set.dim();
            (set.images.iter().map(|v| 2.0 * v - 1.0).collect::<Vec<f32>>(), d, Some(set.shape()))
        } else if ext == "npy" || ext == "csv" {
            let (values, width, image) = crate::data::toy::read_rows_shaped(&path)?;
            (values, width, image.map(|[c, h, w]| (c, h, w)))
        } else {
            bail!("{spec:?} is neither mnist, fashion-mnist, noise, an image folder or IDX file, nor a .npy/.csv file");
        };
        data::check_shape(spec, image, width, shape, dim)?;
        values
    };
    if let Some(n) = limit {
        rows.truncate(n.saturating_mul(dim));
    }
    if rows.is_empty() {
        bail!("{spec}: no inputs");
    }
    Ok(rows)
}

#[derive(Serialize)]
struct SetReport {
    set: String,
    inputs: usize,
    mean_energy: f64,
    std_energy: f64,
    /// Share of the set above the threshold (flagged as OOD).
    above_threshold: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    auroc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aupr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fpr_at_95_tpr: Option<f64>,
    /// The same three with the complexity-corrected score.
    #[serde(skip_serializing_if = "Option::is_none")]
    complexity_corrected: Option<[f64; 3]>,
}

#[derive(Serialize)]
struct Report<'a> {
    energy: &'a str,
    percentile: f64,
    threshold: f32,
    executor: String,
    sets: Vec<SetReport>,
}

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The sets to score, under their names or their former ones (`--in`, `--out`, with a warning:
/// `--out` names an output file in every other command).
fn sets(args: &OodArgs) -> anyhow::Result<(String, Vec<String>)> {
    if args.in_set_former.is_some() || !args.out_sets_former.is_empty() {
        eprintln!(
            "warning: ebm ood's --in and --out are now spelled --data and --ood (--out names an output file elsewhere)"
        );
    }
    let Some(in_set) = args.in_set.clone().or_else(|| args.in_set_former.clone()) else {
        bail!("--data SET is required: the in-distribution set (a dataset name, folder or file)");
    };
    let out_sets = if args.out_sets.is_empty() { args.out_sets_former.clone() } else { args.out_sets.clone() };
    if out_sets.is_empty() {
        bail!("--ood SET is required (repeat for several): an out-of-distribution set, e.g. fashion-mnist or noise");
    }
    Ok((in_set, out_sets))
}

pub fn run(args: &OodArgs) -> anyhow::Result<()> {
    let (in_set, out_sets) = sets(args)?;
    if !(0.0..=100.0).contains(&args.percentile) {
        bail!("--percentile must be in [0, 100], got {}", args.percentile);
    }
    crate::cli::outputs::Paths::new()
        .optional_outputs(&[("--png", &args.png, "png"), ("--json", &args.json, "json")])?;
    let energy = spec::resolve_energy(&args.energy).context("--energy")?;
    energy.checked_evaluation_cost("--energy")?;
    let dim = energy.dim();
    let shape = energy.image_shape();
    if args.complexity.is_some() && shape.is_none_or(|(c, _, _)| c != 1) {
        bail!("--complexity needs an energy of single-channel images (CxHxW with C = 1)");
    }
    let ctx = backend::open(args.backend)?;
    let executor = backend::describe(ctx.as_ref());
    let energies_of = |rows: &[f32]| -> anyhow::Result<Vec<f32>> {
        Ok(match &ctx {
            Some(c) => match &energy {
                Energy::Net(net) if net.as_mlp().is_none() => crate::nn::gpu_net::energies_batch(c, net, rows)?,
                _ => crate::energy::gpu::energy_grad_batch(c, &energy, rows)?.0,
            },
            None => eval::energies(&energy, rows),
        })
    };
    let complexity = |rows: &[f32], weight: f32| -> anyhow::Result<Vec<f32>> {
        let (_, h, w) = shape.expect("checked above");
        rows.chunks_exact(dim)
            .map(|img| Ok(weight * ood::png_bits(img, h, w, -1.0, 1.0)? as f32 * std::f32::consts::LN_2))
            .collect()
    };
    let start = std::time::Instant::now();
    let in_rows = load_set(&in_set, (dim, shape), 0, args.seed, args.limit, Split::Test)
        .with_context(|| format!("--data {in_set}"))?;
    let n_in = in_rows.len() / dim;
    let in_e = energies_of(&in_rows)?;
    check_finite(&in_set, &in_e)?;
    let in_c = args.complexity.map(|w| complexity(&in_rows, w)).transpose()?;
    let threshold = ood::percentile(&in_e, args.percentile)?;
    let mut sets = vec![(in_set.clone(), in_e.clone())];
    let (mean, std) = mean_std(&in_e);
    let mut reports = vec![SetReport {
        set: in_set.clone(),
        inputs: n_in,
        mean_energy: mean,
        std_energy: std,
        above_threshold: in_e.iter().filter(|&&e| e > threshold).count() as f64 / n_in as f64,
        auroc: None,
        aupr: None,
        fpr_at_95_tpr: None,
        complexity_corrected: None,
    }];
    for (k, out_set) in out_sets.iter().enumerate() {
        let rows = load_set(out_set, (dim, shape), n_in, args.seed.wrapping_add(k as u64 + 1), args.limit, Split::Test)
            .with_context(|| format!("--ood {out_set}"))?;
        let e = energies_of(&rows)?;
        check_finite(out_set, &e)?;
        let corrected = match &in_c {
            Some(in_c) => {
                let out_c = complexity(&rows, args.complexity.unwrap_or(1.0))?;
                let score = |e: &[f32], c: &[f32]| -> Vec<f32> { e.iter().zip(c).map(|(e, c)| e - c).collect() };
                let (si, so) = (score(&in_e, in_c), score(&e, &out_c));
                Some([ood::auroc(&si, &so)?, ood::aupr(&si, &so)?, ood::fpr_at_tpr(&si, &so, 0.95)?])
            }
            None => None,
        };
        let (mean, std) = mean_std(&e);
        reports.push(SetReport {
            set: out_set.clone(),
            inputs: e.len(),
            mean_energy: mean,
            std_energy: std,
            above_threshold: e.iter().filter(|&&v| v > threshold).count() as f64 / e.len() as f64,
            auroc: Some(ood::auroc(&in_e, &e)?),
            aupr: Some(ood::aupr(&in_e, &e)?),
            fpr_at_95_tpr: Some(ood::fpr_at_tpr(&in_e, &e, 0.95)?),
            complexity_corrected: corrected,
        });
        sets.push((out_set.clone(), e));
    }
    println!("energies of {} sets in {:.1} s on {executor}", sets.len(), start.elapsed().as_secs_f64());
    println!(
        "threshold: energy {threshold:.4} ({} percentile of {}); AUROC, AUPR with the other set positive",
        args.percentile, in_set
    );
    println!(
        "{:<16} {:>7} {:>11} {:>9} {:>7} {:>7} {:>7}{}",
        "set",
        "inputs",
        "mean E",
        "above t",
        "AUROC",
        "AUPR",
        "FPR95",
        if args.complexity.is_some() { "   corrected AUROC/AUPR/FPR95" } else { "" }
    );
    for r in &reports {
        let m = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        let corrected =
            r.complexity_corrected.map_or(String::new(), |c| format!("   {:.4} / {:.4} / {:.4}", c[0], c[1], c[2]));
        println!(
            "{:<16} {:>7} {:>11.4} {:>8.1}% {:>7} {:>7} {:>7}{corrected}",
            r.set,
            r.inputs,
            r.mean_energy,
            100.0 * r.above_threshold,
            m(r.auroc),
            m(r.aupr),
            m(r.fpr_at_95_tpr)
        );
    }
    if let Some(png) = &args.png {
        let names: Vec<String> = sets
            .iter()
            .enumerate()
            .map(|(k, (name, _))| format!("{name}, {}", if k == 0 { "in" } else { "OOD" }))
            .collect();
        let values: Vec<(&str, &[f32])> =
            names.iter().zip(&sets).map(|(n, (_, e))| (n.as_str(), e.as_slice())).collect();
        let line = format!("threshold {threshold:.4} ({} percentile of {in_set})", args.percentile);
        let title = format!("energies of {}: in-distribution vs OOD inputs", args.energy);
        crate::io::figure::overlaid_histograms_png(png, &title, "energy E(x)", &values, Some((threshold, &line)))?;
        let legend: Vec<String> = sets
            .iter()
            .enumerate()
            .map(|(k, (name, _))| format!("{} {name}", crate::io::figure::SET_COLORS[k % 6].0))
            .collect();
        println!("wrote {} ({})", png.display(), legend.join(", "));
    }
    if let Some(json) = &args.json {
        let report = Report { energy: &args.energy, percentile: args.percentile, threshold, executor, sets: reports };
        crate::io::write_atomic(json, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", json.display());
    }
    Ok(())
}

/// Energies must be finite to rank; a NaN names its set and input.
fn check_finite(set: &str, e: &[f32]) -> anyhow::Result<()> {
    if let Some(i) = e.iter().position(|v| !v.is_finite()) {
        bail!("{set}: the energy of input {i} is not finite ({}); the model may have diverged", e[i]);
    }
    Ok(())
}
