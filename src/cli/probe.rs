//! `ebm probe`: what a contrastive model's features (`ebm train --loss infonce`) are worth,
//! by retrieval and by a linear probe ([`crate::eval::contrastive`]), each beside the same
//! measure on the same architecture with random weights and on the raw pixels.

use std::path::PathBuf;

use crate::cli::backend::{self, Backend};
use crate::cli::classify::{labelled_images, logits};
use crate::data::Split;
use crate::energy::{Energy, spec};
use crate::eval::contrastive::{self, Labelled, Probe, ProbeSettings, Retrieval};
use crate::nn::{Network, NetworkInternals};
use crate::train::contrastive::Augment;
use anyhow::{Context, bail};

/// Judge a contrastive model's features: retrieval (each test image's second view found among
/// N by the pair energy, top-1 and top-5) and the linear probe (a softmax regression fitted on
/// the features of the training images, its test accuracy); each beside the same network with
/// random weights and the raw pixels, the baselines the features have to beat.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:\n  \
ebm probe --energy net:runs/contrastive/checkpoint.safetensors --data mnist\n  \
ebm probe --energy net:runs/contrastive/checkpoint.safetensors --data mnist --queries 10000 --json probe.json")]
pub struct ProbeArgs {
    /// The contrastive network: net:CHECKPOINT or a network file whose K >= 2 outputs are the
    /// features.
    #[arg(long)]
    pub energy: String,
    /// Labelled images (as `ebm classify --data`): the train split fits the probe, the test
    /// split scores it and gives the retrieval's queries.
    #[arg(long)]
    pub data: String,
    /// How the two views of a test image are drawn (as `ebm train --augment`) [default: the
    /// checkpoint's own; else (and for a model trained on given --pairs, whose held-out pairs
    /// `ebm score --pairs` retrieves) `ebm train`'s default].
    #[arg(long)]
    pub augment: Option<String>,
    /// Test images whose two views are retrieved among each other (the first N; chance is 1/N).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Training images the probe is fitted on (the first N of the train split) [default: all].
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Test images the probe is scored on (the first N) [default: all].
    #[arg(long)]
    pub limit: Option<usize>,
    /// What the probe reads: backbone, the representation below the network's last layer
    /// (SimCLR's convention: the layer before the projection head), or output, the K features
    /// of the pair energy. Retrieval always uses the pair energy's features.
    #[arg(long, value_enum, default_value = "backbone")]
    pub features: FeaturesArg,
    /// Passes of the probe's minibatch Adam over its training features.
    #[arg(long, default_value_t = 10)]
    pub epochs: u32,
    /// Seed of the views, the random network and the probe's shuffles.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A figure of the retrieval: for the first 8 queries, the first view and the 5 second
    /// views the features find most similar to it.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Executor of the networks: auto, gpu or cpu (see `ebm --help`). The probe's fit runs on
    /// the CPU.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
}

#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum FeaturesArg {
    Backbone,
    Output,
}

/// One measure of the trained features and of its two baselines.
#[derive(serde::Serialize)]
struct Compared<T> {
    network: T,
    random_network: T,
    raw_pixels: T,
}

#[derive(serde::Serialize)]
struct Report {
    energy: String,
    data: String,
    augment: String,
    retrieval: Compared<Retrieval>,
    probe_features: String,
    probe_train_images: usize,
    probe_epochs: u32,
    probe: Compared<Probe>,
}

pub fn run(a: &ProbeArgs) -> anyhow::Result<()> {
    crate::cli::outputs::Paths::new().optional_outputs(&[("--json", &a.json, "json"), ("--png", &a.png, "png")])?;
    if a.queries < 2 {
        bail!("--queries must be at least 2 (a query's pair is found among the others)");
    }
    if a.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    for (flag, value) in [("--train-limit", a.train_limit), ("--limit", a.limit)] {
        if value == Some(0) {
            bail!("{flag} must be at least 1 image (leave it out for all of them)");
        }
    }
    let net = features_network(&a.energy)?;
    let augment = match &a.augment {
        Some(text) => Augment::parse(text).context("--augment")?,
        None => stored_augment(&a.energy).unwrap_or(Augment::default_for(net.input)),
    };
    augment.check(net.input, false).context("--augment")?;
    let random = Network::random(&net.architecture(), a.seed ^ 0x5EED_0F0A)?;
    let ctx = backend::open(a.backend)?;
    let start = std::time::Instant::now();

    let view = net.view();
    let (test, test_labels) = labelled_images(&a.data, Split::Test, None, &view)?;
    let d = view.input_dim();
    let queries = a.queries.min(test_labels.len());
    let (mut va, mut vb) = (vec![0.0; queries * d], vec![0.0; queries * d]);
    for (i, x) in test.chunks_exact(d).take(queries).enumerate() {
        augment.view(view.input, a.seed, (i as u32, 0, 0), x, &mut va[i * d..(i + 1) * d]);
        augment.view(view.input, a.seed, (i as u32, 0, 1), x, &mut vb[i * d..(i + 1) * d]);
    }
    let k = net.outputs;
    let retrieve = |n: &Network| -> anyhow::Result<Retrieval> {
        Ok(contrastive::retrieval(&logits(ctx.as_ref(), n, &va)?, &logits(ctx.as_ref(), n, &vb)?, n.outputs)?)
    };
    let (ca, cb) = contrastive::centred(&va, &vb, d);
    let (fa, fb) = (logits(ctx.as_ref(), &net, &va)?, logits(ctx.as_ref(), &net, &vb)?);
    let retrieval = Compared {
        network: contrastive::retrieval(&fa, &fb, k)?,
        random_network: retrieve(&random)?,
        raw_pixels: contrastive::retrieval(&ca, &cb, d)?,
    };
    if let Some(png) = &a.png {
        retrieval_figure(png, (&fa, &fb, k), (&va, &vb), view.input)?;
    }

    let (train, train_labels) = labelled_images(&a.data, Split::Train, a.train_limit, &view)?;
    let limit = a.limit.unwrap_or(test_labels.len()).min(test_labels.len());
    let (test, test_labels) = (&test[..limit * d], &test_labels[..limit]);
    let classes = train_labels.iter().chain(test_labels).max().map_or(0, |&y| y as usize + 1);
    let settings = ProbeSettings { epochs: a.epochs, seed: a.seed, ..ProbeSettings::default() };
    let probe = |xtr: &[f32], xte: &[f32], dim: usize| {
        contrastive::linear_probe(
            Labelled { x: xtr, labels: &train_labels },
            Labelled { x: xte, labels: test_labels },
            dim,
            classes,
            settings,
        )
    };
    let probed = |n: &Network| match a.features {
        FeaturesArg::Output => Ok(n.clone()),
        FeaturesArg::Backbone => backbone(n),
    };
    let probe_of = |n: &Network| -> anyhow::Result<Probe> {
        let n = probed(n)?;
        Ok(probe(&logits(ctx.as_ref(), &n, &train)?, &logits(ctx.as_ref(), &n, test)?, n.outputs)?)
    };
    let probes =
        Compared { network: probe_of(&net)?, random_network: probe_of(&random)?, raw_pixels: probe(&train, test, d)? };
    let probe_features = match a.features {
        FeaturesArg::Output => format!("the {k} output features"),
        FeaturesArg::Backbone => format!("the {} backbone features (below the last layer)", probes.network.features),
    };

    println!(
        "retrieval: {queries} test images of {}, two views each (--augment {augment}); each first view's own second \
         view among all {queries} by cosine similarity of the {k} output features (chance {:.2} %)",
        a.data,
        100.0 / queries as f64
    );
    println!("  {:<38} {:>8} {:>8}", "", "top-1", "top-5");
    let rows = [
        ("the trained network".to_string(), &retrieval.network),
        ("the same network with random weights".into(), &retrieval.random_network),
        (format!("the {d} raw pixels (centred)"), &retrieval.raw_pixels),
    ];
    for (name, r) in rows {
        println!("  {name:<38} {:>7.2}% {:>7.2}%", 100.0 * r.top1, 100.0 * r.top5);
    }
    println!(
        "linear probe on {probe_features}: softmax regression fitted on {} training images ({} epochs)",
        train_labels.len(),
        a.epochs,
    );
    println!("  {:<38} {:>8} {:>8}", "", "test", "train");
    let rows = [
        ("the trained network".to_string(), &probes.network),
        ("the same network with random weights".into(), &probes.random_network),
        (format!("the {d} raw pixels"), &probes.raw_pixels),
    ];
    for (name, p) in rows {
        println!("  {name:<38} {:>7.2}% {:>7.2}%", 100.0 * p.test_accuracy, 100.0 * p.train_accuracy);
    }
    println!("(test accuracy on {} test images)", test_labels.len());
    println!("in {:.1} s", start.elapsed().as_secs_f64());
    if let Some(json) = &a.json {
        let report = Report {
            energy: a.energy.clone(),
            data: a.data.clone(),
            augment: augment.to_string(),
            retrieval,
            probe_features,
            probe_train_images: train_labels.len(),
            probe_epochs: a.epochs,
            probe: probes,
        };
        crate::io::write_atomic(json, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", json.display());
    }
    Ok(())
}

/// The network below its last parameter layer (the projection head), with its outputs.
fn backbone(net: &Network) -> anyhow::Result<Network> {
    let last = net.layers.iter().rposition(|l| !l.weight.is_empty()).unwrap_or(0);
    if last == 0 {
        bail!(
            "--features backbone: the network's only parameter layer is its first; probe its outputs with --features output"
        );
    }
    Ok(net.truncated(last)?)
}

/// The network an `--energy` names, with K >= 2 outputs (its features).
pub(super) fn features_network(energy: &str) -> anyhow::Result<std::sync::Arc<Network>> {
    let net = match spec::resolve_energy(energy).with_context(|| format!("--energy {energy}"))? {
        Energy::Net(net) => net,
        other => bail!(
            "--energy {energy}: ebm probe needs a network whose outputs are features (net:FILE with K >= 2 outputs), \
             not a {} energy",
            other.kind()
        ),
    };
    if net.outputs < 2 {
        bail!("--energy {energy}: the network has {} output; features need K >= 2", net.outputs);
    }
    Ok(net)
}

/// The training configuration of `--energy` when it names a training checkpoint.
fn stored_config(energy: &str) -> Option<crate::train::TrainConfig> {
    let file = energy.trim_start().strip_prefix("net:")?;
    crate::train::checkpoint::stored_config(std::path::Path::new(file)).ok()?
}

/// The views a contrastive checkpoint drew in training, when `--energy` is one that drew them.
fn stored_augment(energy: &str) -> Option<Augment> {
    stored_config(energy).filter(|c| c.loss.uses_views() && !c.paired).map(|c| c.augment)
}

/// The loss `--energy` was trained with, when it is a training checkpoint.
pub(super) fn stored_loss(energy: &str) -> Option<crate::train::Loss> {
    stored_config(energy).map(|c| c.loss)
}

/// Rows of the retrieval figure.
const FIGURE_QUERIES: usize = 8;
/// Retrieved views shown per row.
const FIGURE_RANKS: usize = 5;

/// For the first queries, the first view and the second views most similar to it by the
/// features, best first.
fn retrieval_figure(
    png: &std::path::Path,
    (fa, fb, k): (&[f32], &[f32], usize),
    (va, vb): (&[f32], &[f32]),
    input: crate::nn::Shape,
) -> anyhow::Result<()> {
    let Some(shape) = input.image() else { bail!("--png draws images; this network takes flat points") };
    let d = input.len();
    let (za, _) = crate::train::contrastive::unit_rows(fa, k);
    let (zb, _) = crate::train::contrastive::unit_rows(fb, k);
    let n = za.len() / k;
    let rows = FIGURE_QUERIES.min(n);
    let (mut tiles, mut found) = (Vec::new(), 0);
    for i in 0..rows {
        let q = &za[i * k..(i + 1) * k];
        let mut order: Vec<(f32, usize)> = zb
            .chunks_exact(k)
            .enumerate()
            .map(|(j, key)| (-q.iter().zip(key).map(|(x, y)| x * y).sum::<f32>(), j))
            .collect();
        order.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        found += (order[0].1 == i) as usize;
        tiles.extend(va[i * d..(i + 1) * d].iter().map(|v| 0.5 * (v + 1.0)));
        for &(_, j) in order.iter().take(FIGURE_RANKS) {
            tiles.extend(vb[j * d..(j + 1) * d].iter().map(|v| 0.5 * (v + 1.0)));
        }
    }
    let title = format!(
        "retrieval among {n}: a first view, then the {FIGURE_RANKS} most similar second views (own pair first in {found} of {rows})"
    );
    crate::io::figure::ImageGrid::new(title, shape)
        .cols(1 + FIGURE_RANKS)
        .column_labels(&["first view", "1st", "2nd", "3rd", "4th", "5th"])
        .png(png, &tiles)?;
    println!("figure: {}", png.display());
    Ok(())
}
