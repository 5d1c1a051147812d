//! `ebm quality`: how good a set of generated images is, against the dataset's test images, in
//! the features of a classifier this engine trained ([`crate::eval::quality`]): Fréchet and
//! kernel distances beside the same distances between real images, the classifier's class
//! histogram and confidence on the samples (mode coverage), and each sample's nearest training
//! image (memorisation), with a figure of samples beside their nearest training images.

use std::path::PathBuf;

use crate::data::Split;
use crate::energy::{Energy, spec};
use crate::eval::quality::{self, class_histogram, frechet_distance, kid, nearest};
use anyhow::{Context, bail};

#[derive(clap::Args, Debug)]
#[command(after_long_help = "Example:\n  \
ebm sample --energy net:runs/jem/checkpoint.safetensors --init uniform --box -1,1 --chains 1000 --steps 200 --out samples.npy\n  \
ebm quality --samples samples.npy --data mnist --classifier net:runs/jem/checkpoint.safetensors --png nearest.png\n\n\
The distances are in the classifier's penultimate features, not Inception's: they compare models \
scored with the same classifier, not figures published elsewhere.")]
pub struct QualityArgs {
    /// The generated images: rows of a .npy/.csv, each as wide as the classifier's input, on
    /// the engine's image scale [-1, 1] (e.g. `ebm sample --out`; see --unit-samples).
    #[arg(long)]
    pub samples: PathBuf,
    /// The samples are on [0, 1], as `ebm rbm sample` and `ebm dbm sample` write their pixel
    /// means: each value x is read as 2x - 1.
    #[arg(long)]
    pub unit_samples: bool,
    /// The real images (test split, with labels): mnist, fashion-mnist, an MNIST-layout
    /// folder, a folder of PNGs or of train/ and test/ sets, or a .npy of images with its
    /// labels file (see `ebm data --help`).
    #[arg(long)]
    pub data: String,
    /// The classifier whose features the distances use: net:FILE with K > 1 outputs (e.g. a
    /// JEM checkpoint); its accuracy on the test images is reported.
    #[arg(long)]
    pub classifier: String,
    /// Test images compared (the first N).
    #[arg(long, default_value_t = 2000)]
    pub limit: usize,
    /// Training images searched for each sample's nearest neighbour (the first N).
    #[arg(long, default_value_t = 10000)]
    pub train_limit: usize,
    /// KID: random subsets averaged, each of min(1000, both set sizes) rows.
    #[arg(long, default_value_t = 50)]
    pub kid_subsets: usize,
    /// Seeds the KID subsets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Up to 16 samples beside their nearest training images.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// The report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Rows of each KID subset at most.
const KID_SIZE: usize = 1000;

pub fn run(args: &QualityArgs) -> anyhow::Result<()> {
    let mut paths = crate::cli::outputs::Paths::new();
    paths.input("--samples", &args.samples);
    paths.optional_outputs(&[("--png", &args.png, "png"), ("--json", &args.json, "json")])?;
    if args.limit < 2 || args.train_limit == 0 || args.kid_subsets == 0 {
        bail!("--limit must be at least 2, --train-limit and --kid-subsets at least 1");
    }
    let net = match spec::resolve_energy(&args.classifier).context("--classifier")? {
        Energy::Net(net) if net.outputs > 1 => net,
        Energy::Net(net) => bail!("--classifier: the network has {} output; a classifier needs K > 1", net.outputs),
        other => bail!(
            "--classifier: needs a classifier network (net:FILE with K > 1 outputs), not a {} energy",
            other.kind()
        ),
    };
    let (k, d) = (net.outputs, net.input_dim());
    let (mut samples, n, cols) =
        crate::io::read_samples(&args.samples).with_context(|| format!("--samples {}", args.samples.display()))?;
    if cols != d || n < 2 {
        bail!(
            "--samples {}: {n} rows of {cols} values; the classifier takes images of {d} (at least 2)",
            args.samples.display()
        );
    }
    if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
        bail!("--samples {}: row {} column {} is not finite", args.samples.display(), i / d, i % d);
    }
    if args.unit_samples {
        samples.iter_mut().for_each(|x| *x = 2.0 * *x - 1.0);
    } else if samples.iter().all(|x| (0.0..=1.0).contains(x)) {
        eprintln!(
            "warning: every sample value lies in [0, 1]; if these are pixel means (`ebm rbm sample`, `ebm dbm \
             sample`), pass --unit-samples to read them as 2x - 1 on the real images' [-1, 1]"
        );
    }
    let outside = samples.iter().filter(|v| v.abs() > 1.01).count();
    if outside > 0 {
        eprintln!("warning: {outside} sample values lie outside [-1, 1], the scale of the real images here");
    }
    let path = crate::cli::datasets::resolve(&args.data)?;
    let load = |split| crate::data::load(&path, split).with_context(|| format!("--data {}", args.data));
    let test = load(Split::Test)?;
    let net_shape = net.input.image();
    test.check_input(&format!("--data {}", args.data), net_shape, d)?;
    let labels = test.labels.clone().with_context(|| format!("--data {}: no labels file", args.data))?;
    let scale = |v: &[f32]| v.iter().map(|x| 2.0 * x - 1.0).collect::<Vec<f32>>();
    let n_test = args.limit.min(test.rows);
    let real = scale(&test.images[..n_test * d]);
    let train_set = load(Split::Train)?;
    let n_train = args.train_limit.min(train_set.rows);
    let train = scale(&train_set.images[..n_train * d]);
    let start = std::time::Instant::now();
    let (fs, f, ls) = quality::features(&net, &samples)?;
    let (ft, _, lt) = quality::features(&net, &real)?;
    // Real against real: as many training images as samples, for the distances' floor.
    let n_ref = n.min(n_train);
    let (fr, _, _) = quality::features(&net, &train[..n_ref * d])?;
    let accuracy =
        crate::eval::classify::report(&lt, k, &labels[..n_test].iter().map(|&l| l as u32).collect::<Vec<_>>(), 15)?
            .accuracy;
    let fid = frechet_distance(&fs, &ft, f)?;
    let fid_real = frechet_distance(&fr, &ft, f)?;
    let size = KID_SIZE.min(n).min(n_test).min(n_ref);
    let (kid_s, kid_se) = kid(&fs, &ft, f, size, args.kid_subsets, args.seed)?;
    let (kid_r, kid_r_se) = kid(&fr, &ft, f, size, args.kid_subsets, args.seed)?;
    let (hist_s, conf_s) = class_histogram(&ls, k);
    let (hist_t, conf_t) = class_histogram(&lt, k);
    let near_s = nearest(&samples, &train, d);
    let near_t = nearest(&real[..n.min(n_test) * d], &train, d);
    let stats = |v: &[(usize, f32)]| {
        let mut x: Vec<f32> = v.iter().map(|p| p.1).collect();
        x.sort_by(f32::total_cmp);
        (x[0], x[x.len() / 2], x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64)
    };
    let ((min_s, med_s, mean_s), (min_t, med_t, mean_t)) = (stats(&near_s), stats(&near_t));
    println!(
        "{n} samples against {n_test} test images of {} in the {f} features of {} (test accuracy {:.2} %), {:.1} s",
        args.data,
        args.classifier,
        100.0 * accuracy,
        start.elapsed().as_secs_f64()
    );
    println!("(classifier features, not Inception's: comparable only between models scored with this classifier)");
    println!("{:<34} {:>12} {:>22}", "", "samples", "real (training images)");
    println!("{:<34} {:>12.3} {:>22.3}", "Fréchet distance to the test set", fid, fid_real);
    println!(
        "{:<34} {:>12} {:>22}",
        "KID to the test set",
        format!("{kid_s:.4} +- {kid_se:.4}"),
        format!("{kid_r:.4} +- {kid_r_se:.4}")
    );
    println!("{:<34} {:>12.3} {:>22.3}", "classifier's mean confidence", conf_s, conf_t);
    let (sure_s, sure_t) = (quality::confident_share(&ls, k, 0.9), quality::confident_share(&lt, k, 0.9));
    println!("{:<34} {:>12.3} {:>22.3}", "share with confidence >= 0.9", sure_s, sure_t);
    println!(
        "{:<34} {:>12} {:>22}",
        "nearest training image: min/median",
        format!("{min_s:.2}/{med_s:.2}"),
        format!("{min_t:.2}/{med_t:.2}")
    );
    let share = |h: &[usize], total: usize| {
        h.iter().map(|&c| format!("{:.0}", 100.0 * c as f64 / total as f64)).collect::<Vec<_>>().join(" ")
    };
    println!("classes of the samples, % of each: {}", share(&hist_s, n));
    println!("classes of the test images, %:     {}", share(&hist_t, n_test));
    println!(
        "(nearest-neighbour distances are Euclidean over {d} pixels on [-1, 1]; the real column is for test images)"
    );
    let caveat = quality::confidence_caveat(sure_s, sure_t, med_s, med_t);
    if let Some(c) = &caveat {
        eprintln!("warning: {c}");
    }
    if let Some(png) = &args.png {
        let shown = n.min(16);
        let mut tiles = Vec::with_capacity(2 * shown * d);
        for (i, &(j, _)) in near_s.iter().take(shown).enumerate() {
            tiles.extend(samples[i * d..(i + 1) * d].iter().map(|v| 0.5 * (v.clamp(-1.0, 1.0) + 1.0)));
            tiles.extend(train[j * d..(j + 1) * d].iter().map(|v| 0.5 * (v + 1.0)));
        }
        // RGB in colour, other channels stacked vertically, as `ebm restore` draws them.
        let shape = net_shape.unwrap_or((1, 1, d));
        crate::io::figure::ImageGrid::new(
            format!("{}: samples beside their nearest training images", args.samples.display()),
            shape,
        )
        .column_labels(&["sample", "nearest train"])
        .png(png, &tiles)?;
        println!("wrote {} (pairs: sample, its nearest training image)", png.display());
    }
    if let Some(json) = &args.json {
        let report = serde_json::json!({
            "samples": args.samples, "data": args.data, "classifier": args.classifier, "classifier_test_accuracy": accuracy,
            "features": f, "sample_count": n, "test_images": n_test, "training_images_searched": n_train,
            "note": "distances in the classifier's penultimate features (not Inception): comparable only between models scored with this classifier",
            "frechet": { "samples": fid, "real": fid_real },
            "kid": { "subsets": args.kid_subsets, "subset_size": size, "samples": [kid_s, kid_se], "real": [kid_r, kid_r_se] },
            "mean_confidence": { "samples": conf_s, "test": conf_t },
            "share_confidence_at_least_0_9": { "samples": sure_s, "test": sure_t },
            "class_counts": { "samples": hist_s, "test": hist_t },
            "warnings": caveat.into_iter().collect::<Vec<_>>(),
            "nearest_training_distance": {
                "samples": { "min": min_s, "median": med_s, "mean": mean_s },
                "test": { "min": min_t, "median": med_t, "mean": mean_t },
            },
        });
        crate::io::write_atomic(json, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", json.display());
    }
    Ok(())
}
