//! `ebm classify`: a classifier network's accuracy, negative log-likelihood and expected
//! calibration error on labelled images (`crate::eval::classify`); or, with `--samples`, how
//! many generated images each classifier gives the class wanted of it, and how many satisfy
//! every classifier at once (composed models' samples judged by each model's own classifier).

use std::path::PathBuf;

use crate::cli::backend::{self, Backend};
use crate::data::Split;
use crate::energy::{Energy, spec};
use crate::nn::NetworkInternals;
use anyhow::{Context, bail};

/// Classify labelled images with a network of K > 1 outputs (e.g. a JEM checkpoint): accuracy,
/// mean negative log-likelihood of the true class, and expected calibration error. With
/// --samples, judge generated images instead: the share each classifier gives its --want class.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:\n  \
ebm classify --energy net:runs/jem/checkpoint.safetensors --data mnist --json classify.json\n  \
ebm classify --samples composed.npy --energy net:runs/jem/checkpoint.safetensors --want 3 \
--energy net:runs/stroke/checkpoint.safetensors --want 1")]
pub struct ClassifyArgs {
    /// The classifier: net:CHECKPOINT or a network file with K > 1 outputs. With --samples,
    /// repeatable: one per --want.
    #[arg(long, required = true)]
    pub energy: Vec<String>,
    /// Labelled images: mnist, fashion-mnist, an MNIST-layout folder (with its labels file), a
    /// folder of PNGs (or of train/ and test/ sets) with labels.txt or labels.npy, or a .npy of
    /// images with NAME.labels.txt/.npy beside it (see `ebm data --help`).
    #[arg(long, required_unless_present = "samples", conflicts_with = "samples")]
    pub data: Option<String>,
    /// Generated images to judge instead (rows of a .npy/.csv on the image scale [-1, 1], e.g.
    /// `ebm sample --out`): each --energy's classifier should give its --want class.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// With --samples: the class the classifier of the same position among the --energy flags
    /// should give (one --want per --energy).
    #[arg(long)]
    pub want: Vec<usize>,
    /// The split to classify.
    #[arg(long, value_enum, default_value = "test")]
    pub split: crate::cli::restore::SplitArg,
    /// Classify the first N images only.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Confidence bins of the calibration error.
    #[arg(long, default_value_t = 15)]
    pub bins: usize,
    /// The report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Executor of the network: auto, gpu or cpu (see `ebm --help`).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
}

pub fn run(args: &ClassifyArgs) -> anyhow::Result<()> {
    crate::cli::outputs::Paths::new().optional_outputs(&[("--json", &args.json, "json")])?;
    let data = match (&args.samples, &args.data, &args.energy[..]) {
        (Some(samples), _, _) => return judge(args, samples),
        (None, _, _) if !args.want.is_empty() => bail!("--want judges generated images: it needs --samples"),
        (None, Some(data), [energy]) => (data, energy),
        _ => bail!("--energy: give one classifier (several only with --samples, one per --want)"),
    };
    if args.bins == 0 {
        bail!("--bins must be at least 1 (the confidence bins of the calibration error)");
    }
    // Each bin holds a count, a count of hits and a sum of confidences (8 bytes each).
    let bins = args.bins as u64;
    crate::plan::Plan::new().add(format!("--bins {bins}"), "the calibration bins", &[bins], 8, 3).check()?;
    let (data, energy) = data;
    let net = classifier(energy)?;
    let split = match args.split {
        crate::cli::restore::SplitArg::Train => Split::Train,
        crate::cli::restore::SplitArg::Test => Split::Test,
    };
    let (xs, labels) = labelled_images(data, split, args.limit, &net.view())?;
    let n = labels.len();
    let ctx = backend::open(args.backend)?;
    let start = std::time::Instant::now();
    let logits = logits(ctx.as_ref(), &net, &xs)?;
    let r = crate::eval::classify::report(&logits, net.outputs, &labels, args.bins)?;
    println!(
        "{n} images of {data} ({:?} split) in {:.1} s: accuracy {:.2} %, NLL {:.4} nats, expected calibration error {:.4} ({} bins)",
        args.split,
        start.elapsed().as_secs_f64(),
        100.0 * r.accuracy,
        r.nll,
        r.ece,
        r.bins
    );
    if let Some(json) = &args.json {
        crate::io::write_atomic(json, serde_json::to_string_pretty(&r)?.as_bytes())?;
        println!("wrote {}", json.display());
    }
    Ok(())
}

/// The first `limit` (default all) labelled images of `split` of `--data`, on the network's
/// scale [-1, 1] and checked against its input, and their labels.
pub(super) fn labelled_images(
    data: &str,
    split: Split,
    limit: Option<usize>,
    net: &crate::nn::NetView,
) -> anyhow::Result<(Vec<f32>, Vec<u32>)> {
    let path = crate::cli::datasets::resolve(data)?;
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let set = if path.is_dir() || is_npy {
        crate::data::load(&path, split).with_context(|| format!("--data {data}"))?
    } else {
        bail!("--data {data}: not an image folder or .npy of images with labels")
    };
    let labels = set.labels.clone().with_context(|| format!("--data {data}: no labels file"))?;
    let n = limit.unwrap_or(set.rows).min(set.rows);
    let d = net.input_dim();
    set.check_input(&format!("--data {data}"), net.input.image(), d)?;
    let xs: Vec<f32> = set.images[..n * d].iter().map(|v| 2.0 * v - 1.0).collect();
    Ok((xs, labels[..n].iter().map(|&l| l as u32).collect()))
}

/// The classifier network an `--energy` names (K > 1 outputs).
fn classifier(energy: &str) -> anyhow::Result<std::sync::Arc<crate::nn::Network>> {
    let net = match spec::resolve_energy(energy).with_context(|| format!("--energy {energy}"))? {
        Energy::Net(net) => net,
        other => bail!(
            "--energy {energy}: ebm classify needs a classifier network (net:FILE with K > 1 outputs), not a {} energy",
            other.kind()
        ),
    };
    if net.outputs < 2 {
        bail!("--energy {energy}: the network has {} output; a classifier needs K > 1", net.outputs);
    }
    Ok(net)
}

/// A network's outputs [n, K] on the executor.
pub(super) fn logits(
    ctx: Option<&std::sync::Arc<crate::gpu::GpuContext>>,
    net: &crate::nn::Network,
    xs: &[f32],
) -> anyhow::Result<Vec<f32>> {
    Ok(match ctx {
        Some(ctx) => crate::nn::gpu_net::outputs_batch(ctx, net, xs)?,
        None => net.view().outputs_batch(xs),
    })
}

/// How many generated images each classifier gives its wanted class, and every one at once.
#[derive(serde::Serialize)]
struct Judged {
    samples: usize,
    /// Per classifier: its --energy, the wanted class, the share given it, the mean confidence.
    classifiers: Vec<(String, usize, f64, f64)>,
    /// The share every classifier gives its wanted class.
    all: f64,
}

/// `--samples`: judges generated images by each --energy's classifier against its --want.
fn judge(args: &ClassifyArgs, samples: &std::path::Path) -> anyhow::Result<()> {
    if args.want.len() != args.energy.len() {
        bail!("--want: give one class per --energy ({} --energy, {} --want)", args.energy.len(), args.want.len());
    }
    let (xs, n, cols) = crate::io::read_samples(samples).with_context(|| format!("--samples {}", samples.display()))?;
    if let Some(i) = xs.iter().position(|v| !v.is_finite()) {
        bail!("--samples {}: row {} column {} is not finite", samples.display(), i / cols.max(1), i % cols.max(1));
    }
    let ctx = backend::open(args.backend)?;
    let mut all = vec![true; n];
    let mut classifiers = Vec::new();
    for (energy, &want) in args.energy.iter().zip(&args.want) {
        let net = classifier(energy)?;
        let k = net.outputs;
        if cols != net.input_dim() {
            bail!(
                "--samples {}: rows of {cols} values; --energy {energy} takes {}",
                samples.display(),
                net.input_dim()
            );
        }
        if want >= k {
            bail!("--want {want}: --energy {energy} has {k} classes (0..{})", k - 1);
        }
        let (mut hits, mut confidence) = (0, 0.0);
        for (row, f) in logits(ctx.as_ref(), &net, &xs)?.chunks_exact(k).enumerate() {
            let (best, _) =
                f.iter().enumerate().fold((0, f32::NEG_INFINITY), |m, (y, &v)| if v > m.1 { (y, v) } else { m });
            let z: f64 = f.iter().map(|&v| ((v - f[best]) as f64).exp()).sum();
            confidence += 1.0 / z;
            all[row] &= best == want;
            hits += (best == want) as usize;
        }
        let share = hits as f64 / n as f64;
        println!(
            "--energy {energy}: {:.1} % of {n} samples are class {want} (mean confidence {:.3})",
            100.0 * share,
            confidence / n as f64
        );
        classifiers.push((energy.clone(), want, share, confidence / n as f64));
    }
    let judged = Judged { samples: n, classifiers, all: all.iter().filter(|&&a| a).count() as f64 / n as f64 };
    println!("every classifier's class at once: {:.1} % of {n} samples", 100.0 * judged.all);
    if let Some(json) = &args.json {
        crate::io::write_atomic(json, serde_json::to_string_pretty(&judged)?.as_bytes())?;
        println!("wrote {}", json.display());
    }
    Ok(())
}
