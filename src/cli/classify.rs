//! `ebm classify`: a classifier network's accuracy, negative log-likelihood and expected
//! calibration error on labelled images (`crate::eval::classify`).

use std::path::PathBuf;

use crate::cli::backend::{self, Backend};
use crate::data::Split;
use crate::energy::{Energy, spec};
use crate::nn::NetworkInternals;
use anyhow::{Context, bail};

/// Classify labelled images with a network of K > 1 outputs (e.g. a JEM checkpoint): accuracy,
/// mean negative log-likelihood of the true class, and expected calibration error.
#[derive(clap::Args, Debug)]
#[command(
    after_long_help = "Example:\n  ebm classify --energy net:runs/jem/checkpoint.safetensors --data mnist --json classify.json"
)]
pub struct ClassifyArgs {
    /// The classifier: net:CHECKPOINT or a network file with K > 1 outputs.
    #[arg(long)]
    pub energy: String,
    /// Labelled images: mnist, fashion-mnist, an MNIST-layout folder (with its labels file), a
    /// folder of PNGs (or of train/ and test/ sets) with labels.txt or labels.npy, or a .npy of
    /// images with NAME.labels.txt/.npy beside it (see `ebm data --help`).
    #[arg(long)]
    pub data: String,
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
    if args.bins == 0 {
        bail!("--bins must be at least 1 (the confidence bins of the calibration error)");
    }
    // Each bin holds a count, a count of hits and a sum of confidences (8 bytes each).
    let bins = args.bins as u64;
    crate::plan::Plan::new().add(format!("--bins {bins}"), "the calibration bins", &[bins], 8, 3).check()?;
    let net = match spec::resolve_energy(&args.energy).context("--energy")? {
        Energy::Net(net) => net,
        other => bail!(
            "--energy: ebm classify needs a classifier network (net:FILE with K > 1 outputs), not a {} energy",
            other.kind()
        ),
    };
    if net.outputs < 2 {
        bail!("--energy: the network has {} output; a classifier needs K > 1", net.outputs);
    }
    let split = match args.split {
        crate::cli::restore::SplitArg::Train => Split::Train,
        crate::cli::restore::SplitArg::Test => Split::Test,
    };
    let path = crate::cli::datasets::resolve(&args.data)?;
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let set = if path.is_dir() || is_npy {
        crate::data::load(&path, split).with_context(|| format!("--data {}", args.data))?
    } else {
        bail!("--data {}: not an image folder or .npy of images with labels", args.data)
    };
    let labels = set.labels.clone().with_context(|| format!("--data {}: no labels file", args.data))?;
    let n = args.limit.unwrap_or(set.rows).min(set.rows);
    let d = net.input_dim();
    let net_shape = net.input.image();
    set.check_input(&format!("--data {}", args.data), net_shape, d)?;
    let xs: Vec<f32> = set.images[..n * d].iter().map(|v| 2.0 * v - 1.0).collect();
    let labels: Vec<u32> = labels[..n].iter().map(|&l| l as u32).collect();
    let ctx = backend::open(args.backend)?;
    let start = std::time::Instant::now();
    let logits = match &ctx {
        Some(ctx) => crate::nn::gpu_net::outputs_batch(ctx, &net, &xs)?,
        None => net.view().outputs_batch(&xs),
    };
    let r = crate::eval::classify::report(&logits, net.outputs, &labels, args.bins)?;
    println!(
        "{n} images of {} ({:?} split) in {:.1} s: accuracy {:.2} %, NLL {:.4} nats, expected calibration error {:.4} ({} bins)",
        args.data,
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
