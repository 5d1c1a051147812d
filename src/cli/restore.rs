//! `ebm restore`: inpainting and denoising of images with an energy (`crate::restore`),
//! scored against the originals next to four baselines on the same images.

use std::path::PathBuf;

mod dbm;

use crate::cli::backend::{self, Backend};
use crate::cli::settings::{Settings, Source, Stored, anneal_levels, anneal_schedule};
use crate::data::Split;
use crate::energy::{EnergyInternals, spec};
use crate::eval::minimize::Outcome;
use crate::restore::{
    Pixel, RestoreConfig, fill_holes, mse, nearest_fill, psnr, restore, restore_annealed, restore_map,
};
use crate::rng::{self, Stream};
use anyhow::{Context, bail};
use serde::Serialize;

/// Langevin steps (or L-BFGS iterations with --map) when --steps is not given and nothing anneals.
const DEFAULT_STEPS: u32 = 256;

/// Restore damaged images with an energy: Langevin dynamics on the missing pixels with the
/// observed ones held fixed (inpainting), or on noisy pixels pulled toward their observation
/// by the Gaussian data-fidelity term (denoising). Reports MSE and PSNR against the originals
/// for the restoration and four baselines: the damaged input (holes mid-grey), the per-pixel
/// training mean in the holes, the background (the training data's minimum: -1, black, for
/// MNIST) in the holes, and the k nearest training images on the known pixels (--neighbours)
/// filling the holes and the noisy pixels.
#[derive(clap::Args, Debug)]
#[command(
    after_long_help = "Examples:\n  ebm restore --energy net:runs/uva/checkpoint.safetensors --data mnist --mask top-half --png restore.png\n  \
ebm restore --energy net:runs/uva/checkpoint.safetensors --data mnist --mask none --noise 0.3 --steps 100\n\n\
Masks (the pixels to restore): top-half, left-half, random:P (each pixel with probability P, per image), \
box:X,Y,W,H (a rectangle, X and Y from the top-left corner), none, or a .npy/.csv file of H x W values \
(non-zero = missing)."
)]
pub struct RestoreArgs {
    /// The energy: net:CHECKPOINT (its training sampler's settings become the defaults), any
    /// energy spec whose input is an image, or dbm:RUN_DIR (or its checkpoint) of `ebm dbm
    /// train`: block Gibbs on the missing pixels with the observed ones binarised and clamped.
    #[arg(long)]
    pub energy: String,
    /// The images: mnist, fashion-mnist, an MNIST-layout folder or IDX file, a folder of PNGs
    /// (or of train/ and test/ sets), a .npy of [N, C, H, W] images, or a .npy/.csv of rows
    /// (see `ebm data --help`).
    #[arg(long)]
    pub data: String,
    /// The split of a named or folder dataset.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// Which pixels are missing.
    #[arg(long, default_value = "top-half")]
    pub mask: String,
    /// Gaussian noise of this std added to the observed pixels, which are then restored too
    /// (denoising); 0 keeps them exact.
    #[arg(long, default_value_t = 0.0, value_parser = crate::cli::numbers::finite_f32)]
    pub noise: f32,
    /// Weight of the data-fidelity term |x - y|^2 / (2 noise^2) of noisy pixels (with --noise)
    /// [default: 1].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub fidelity: Option<f32>,
    /// Langevin steps (with --map: the most L-BFGS iterations) [default: 256; with --anneal,
    /// steps per level: 100; with dbm:, block Gibbs steps: 1000].
    #[arg(long)]
    pub steps: Option<u32>,
    /// Annealed Langevin over MAX,MIN,L geometric noise levels of a noise-conditional model
    /// E(x)/σ, as `ebm sample --anneal` (--step-size is then ε, the step at the last level);
    /// `off` turns it off [default: the levels of a checkpoint trained with --loss ncsm:].
    #[arg(long, value_name = "MAX,MIN,L|off")]
    pub anneal: Option<String>,
    /// Annealed Langevin: skip the final noise-free step x <- x - σ_L ∇E.
    #[arg(long)]
    pub no_denoise: bool,
    /// The MAP restoration instead of a sample: minimise the energy (plus the fidelity term of
    /// noisy pixels) over the pixels to restore by L-BFGS on the box [-1, 1] (`ebm minimize`'s
    /// descent), from the same starting holes; no step size, noise or averaging.
    #[arg(long)]
    pub map: bool,
    /// Langevin step size [default: the checkpoint's training sampler, else 10].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub step_size: Option<f32>,
    /// Langevin noise standard deviation [default: the checkpoint's training sampler, else 0.005].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub noise_std: Option<f32>,
    /// Gradient clamp per coordinate, 0 off [default: the checkpoint's, else 0.03].
    #[arg(long, value_parser = crate::cli::numbers::finite_f32)]
    pub grad_clamp: Option<f32>,
    /// Average this many restorations of each image (chains with their own noise and starting
    /// holes): the model's posterior mean, which a pixel-wise error rewards more than one sample.
    #[arg(long, default_value_t = 1)]
    pub average: u32,
    /// The nearest-neighbour baseline fills each image's holes and noisy pixels with the mean of
    /// the K training images nearest in Euclidean distance over its known pixels (the noisy
    /// image's, when denoising); an image that is itself in the set searched (--split train,
    /// one-set data) is left out of its own search.
    #[arg(long, default_value_t = 1)]
    pub neighbours: usize,
    /// Restore the first N images.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Grid of (damaged, restored, original) for up to 16 images.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Write the restored images, [N, C*H*W] float32, as .npy.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The report: MSE and PSNR of the restoration and the baselines.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seeds the masks, the observation noise, the holes' starting values and the dynamics.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Executor of the energy and its gradient: auto, gpu or cpu (see `ebm --help`).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
}

#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum SplitArg {
    Train,
    Test,
}

/// What restores: an energy (Langevin, annealing or L-BFGS) or a DBM (block Gibbs).
enum Model {
    Energy(crate::energy::Energy),
    Dbm(crate::rbm::deep::Deep),
}

/// Which pixels of an image (h x w, per image `j`) are missing.
fn missing(mask: &str, h: usize, w: usize, j: usize, seed: u64, file: &Option<Vec<bool>>) -> anyhow::Result<Vec<bool>> {
    let at = |f: &dyn Fn(usize, usize) -> bool| (0..h * w).map(|k| f(k / w, k % w)).collect::<Vec<bool>>();
    Ok(match mask {
        "top-half" => at(&|y, _| y < h / 2),
        "left-half" => at(&|_, x| x < w / 2),
        "none" => vec![false; h * w],
        m if m.starts_with("random:") => {
            let p: f32 = m["random:".len()..]
                .parse()
                .ok()
                .filter(|p| (0.0..=1.0).contains(p))
                .with_context(|| format!("--mask {m}: P must be a probability"))?;
            (0..h * w).map(|k| rng::uniform4(seed, j as u32, 1, Stream::Init, k as u32 / 4)[k % 4] < p).collect()
        }
        m if m.starts_with("box:") => {
            let v: Vec<usize> = m["box:".len()..]
                .split(',')
                .map(|s| s.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("--mask {m}: expected box:X,Y,W,H"))?;
            let [x0, y0, bw, bh] = v[..] else { bail!("--mask {m}: expected box:X,Y,W,H (four whole numbers)") };
            if bw == 0 || bh == 0 || x0 + bw > w || y0 + bh > h {
                bail!("--mask {m}: the box must be non-empty and inside the {w}x{h} image");
            }
            at(&|y, x| (y0..y0 + bh).contains(&y) && (x0..x0 + bw).contains(&x))
        }
        _ => file.clone().with_context(|| format!("--mask {mask}: unknown mask"))?,
    })
}

#[derive(Serialize)]
struct Scores {
    method: String,
    mse: f64,
    mse_restored_pixels: f64,
    psnr_db: f64,
}

/// The work a restoration states (images x --average x --steps x one evaluation's cost),
/// refused when absurd, with --average's own ceiling (it multiplies every step).
fn work(args: &RestoreArgs, steps: u32, model: &Model, images: usize) -> anyhow::Result<()> {
    use crate::plan;
    if args.average == 0 {
        bail!("--average must be at least 1");
    }
    plan::per_step("--average", args.average as u64, plan::MAX_STEPS_PER_STEP, "restorations of each image")?;
    let cost = match model {
        Model::Energy(e) => e.checked_evaluation_cost("--energy")?,
        // A Gibbs step multiplies by each weight matrix twice.
        Model::Dbm(d) => d.layers.iter().map(|l| 4 * (l.n_vis * l.n_hid) as u64).sum(),
    };
    plan::Work::new()
        .add(
            format!("--steps {steps} x --average {} x {images} images", args.average),
            format!("the restoration ({cost} operations per evaluation of the energy)"),
            &[images as u64, args.average as u64, steps as u64, cost],
        )
        .check()?;
    Ok(())
}

pub fn run(args: &RestoreArgs) -> anyhow::Result<()> {
    crate::cli::outputs::Paths::new().optional_outputs(&[
        ("--png", &args.png, "png"),
        ("--json", &args.json, "json"),
        ("--out", &args.out, "npy"),
    ])?;
    if !(args.noise >= 0.0) {
        bail!("--noise must be >= 0, got {}", args.noise);
    }
    if args.limit == 0 {
        bail!("--limit must be at least 1");
    }
    if args.neighbours == 0 {
        bail!("--neighbours must be at least 1");
    }
    let steps_given = args.steps;
    if args.steps == Some(0) {
        bail!(
            "--steps 0: nothing would be restored (the damaged images would be reported as restorations); give 1 or more"
        );
    }
    if args.noise == 0.0 && args.fidelity.is_some() {
        bail!("--fidelity weighs the data-fidelity term of noisy pixels; it applies with --noise SIGMA only");
    }
    if let Some(f) = args.fidelity.filter(|f| !(*f > 0.0)) {
        bail!("--fidelity {f}: the data-fidelity weight must be positive");
    }
    if args.map {
        let sampling =
            [("--step-size", args.step_size), ("--noise-std", args.noise_std), ("--grad-clamp", args.grad_clamp)];
        if let Some((flag, _)) = sampling.iter().find(|(_, v)| v.is_some()) {
            bail!("{flag} sets the Langevin sampler; --map minimises by L-BFGS, which chooses its own steps");
        }
        if args.average != 1 {
            bail!("--average averages samples; --map gives one deterministic restoration per image");
        }
    }
    // A DBM restores by block Gibbs; every other model is an energy with Langevin or L-BFGS.
    let model = match args.energy.strip_prefix("dbm:") {
        Some(path) => Model::Dbm(dbm::load(args, path)?),
        None => Model::Energy(spec::resolve_energy(&args.energy).context("--energy")?),
    };
    let (dim, (channels, h, w)) = match &model {
        Model::Dbm(d) => (d.n_vis(), crate::io::figure::image_shape(d.n_vis())),
        Model::Energy(e) => match e.image_shape() {
            Some(shape) => (e.dim(), shape),
            None => bail!("--energy: ebm restore needs an energy of images (a network with a CxHxW input)"),
        },
    };
    let gibbs = matches!(model, Model::Dbm(_));
    // The checkpoint's training sampler, if the energy is one (`crate::cli::settings`).
    let stored = if args.map || gibbs { None } else { Stored::from_energy(&args.energy)? };
    let mut settings = Settings::new();
    let default = |v: f32| (v, Source::Default("for images"));
    let levels = if args.map || gibbs { None } else { anneal_levels(args.anneal.as_deref(), stored.as_ref())? };
    let (schedule, step_size, noise_std, grad_clamp) = match levels {
        Some(levels) => {
            if args.noise_std.is_some() {
                bail!("--noise-std does not apply with --anneal: each level's noise is sqrt(2 x its step)");
            }
            let schedule = anneal_schedule(levels, args.step_size, steps_given, !args.no_denoise, &mut settings)?;
            let clamp = settings.pick("--grad-clamp", args.grad_clamp, None, (0.0, Source::Default("for annealing")));
            let step = schedule.step_size;
            (Some(schedule), step, 0.0, clamp)
        }
        None => {
            let step_size = settings.pick("--step-size", args.step_size, stored.map(|s| s.step_size), default(10.0));
            let noise_std = settings.pick("--noise-std", args.noise_std, stored.map(|s| s.noise_std), default(0.005));
            let stored_clamp = stored.map(|s| s.grad_clamp.unwrap_or(0.0));
            (None, step_size, noise_std, settings.pick("--grad-clamp", args.grad_clamp, stored_clamp, default(0.03)))
        }
    };
    if !args.map && !gibbs {
        println!("{}", settings.line());
        if let Some(note) = stored.filter(|_| schedule.is_none()).and_then(|s| s.caution()) {
            eprintln!("{note}");
        }
    }
    let split = match args.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    };
    let shape = Some((channels, h, w));
    let originals = crate::cli::ood::load_set(&args.data, (dim, shape), 0, args.seed, Some(args.limit), split)
        .with_context(|| format!("--data {}", args.data))?;
    let n = originals.len() / dim;
    // Every step of every level (the MAP's iterations are bounded by --steps alike).
    let default_steps = if gibbs { dbm::DEFAULT_STEPS } else { DEFAULT_STEPS };
    let steps = schedule.as_ref().map_or(steps_given.unwrap_or(default_steps), |s| s.total_steps());
    work(args, steps, &model, n)?;
    // The per-pixel training mean, background and nearest neighbours come from the training
    // split of a named or folder dataset. A single set (a file, a flat folder of PNGs) is its
    // own training split: said so and labelled so, each image left out of its own neighbour
    // search. Without a training split the baselines use the images being restored, said so
    // and labelled so: never test images passed off as training's.
    // (`load_set` reads any file, .npy, .csv or IDX, as one set: only a folder has two.)
    let path = crate::cli::datasets::resolve(&args.data)?;
    let separate = path.is_dir() && crate::data::separate_splits(&path);
    let (train, source) = match crate::cli::ood::load_set(&args.data, (dim, shape), 0, args.seed, None, Split::Train) {
        Ok(train) if separate => (train, "training"),
        Ok(train) => {
            eprintln!(
                "note: --data {} is one set with no separate training split: the baselines use all its images \
                 (the nearest-neighbour search leaves each image out)",
                args.data
            );
            (train, "data")
        }
        Err(e) => {
            eprintln!(
                "warning: --data {}: its training split did not load ({e:#}); the baselines use the {n} images \
                 being restored instead of training images (the nearest-neighbour search leaves each image out)",
                args.data
            );
            (originals.clone(), "image")
        }
    };
    // The images restored are the first rows of the set searched: leave each out of its own.
    let leave_out_self = source != "training" || split == Split::Train;
    let mean_label = format!("{source} mean in holes");
    let candidates = train.len() / dim - leave_out_self as usize;
    if args.neighbours > candidates {
        bail!(
            "--neighbours {}: the nearest-neighbour baseline has {candidates} {source} images to choose from",
            args.neighbours
        );
    }
    let rows = train.len() / dim;
    let mean: Vec<f32> = (0..dim)
        .map(|i| train.iter().skip(i).step_by(dim).map(|&v| v as f64).sum::<f64>() as f32 / rows as f32)
        .collect();
    let file_mask = match args.mask.as_str() {
        m if ["top-half", "left-half", "none"].contains(&m) || m.starts_with("random:") || m.starts_with("box:") => {
            None
        }
        path if !std::path::Path::new(path).exists() => {
            bail!(
                "--mask {path}: unknown mask and no such file; expected top-half, left-half, random:P, box:X,Y,W,H, none or a .npy/.csv mask"
            )
        }
        path => {
            let (values, cols) =
                crate::data::toy::read_rows(std::path::Path::new(path)).with_context(|| format!("--mask {path}"))?;
            if values.len() != h * w {
                bail!("--mask {path}: holds {} values ({} columns), the images are {h}x{w}", values.len(), cols);
            }
            Some(values.iter().map(|&v| v != 0.0).collect())
        }
    };
    let (lo, hi) = (-1.0f32, 1.0f32);
    let mut damaged = originals.clone();
    let mut pixels = Vec::with_capacity(n * dim);
    let mut holes = Vec::with_capacity(n * dim);
    for j in 0..n {
        let miss = missing(&args.mask, h, w, j, args.seed, &file_mask)?;
        for i in 0..dim {
            let k = j * dim + i;
            let hole = miss[i % (h * w)];
            holes.push(hole);
            if hole {
                pixels.push(Pixel::Missing);
                let u = rng::uniform4(args.seed, j as u32, 2, Stream::Init, i as u32 / 4)[i % 4];
                damaged[k] = lo + (hi - lo) * u;
            } else if args.noise > 0.0 {
                pixels.push(Pixel::Noisy);
                damaged[k] = (damaged[k]
                    + args.noise * rng::normal4(args.seed, j as u32, 3, Stream::Init, i as u32 / 4)[i % 4])
                    .clamp(lo, hi);
            } else {
                pixels.push(Pixel::Observed);
            }
        }
    }
    if !pixels.iter().any(|p| *p != Pixel::Observed) {
        bail!("nothing to restore: --mask none needs --noise above 0");
    }
    // An annealing's noisy levels live outside the pixels' box: it clamps only its result.
    let (step_lo, step_hi) = if schedule.is_some() { (-f32::MAX, f32::MAX) } else { (lo, hi) };
    let config = RestoreConfig {
        steps,
        step_size,
        noise_std,
        grad_clamp,
        lo: step_lo,
        hi: step_hi,
        sigma: args.noise,
        fidelity: args.fidelity.unwrap_or(1.0),
        seed: args.seed,
    };
    let ctx = if gibbs { None } else { backend::open(args.backend)? };
    let start = std::time::Instant::now();
    let mut restored = vec![0.0f32; damaged.len()];
    let mut how = match (&model, &schedule) {
        (Model::Dbm(_), _) => format!(
            "{} x {steps} block Gibbs steps of the DBM (observed pixels binarised at 0 and clamped, holes from off; E[v | h1])",
            args.average
        ),
        (_, Some(s)) => format!("{} x {} ({steps} steps, gradient clamp {grad_clamp})", args.average, s.describe()),
        (_, None) => format!(
            "{} x {steps} Langevin steps (step {step_size}, noise std {noise_std}, gradient clamp {grad_clamp})",
            args.average
        ),
    };
    if let (true, Model::Energy(energy)) = (args.map, &model) {
        let mut eval = crate::energy::batch::evaluator(ctx.as_ref(), energy);
        let (map, descent) = restore_map(eval.as_mut(), dim, &damaged, &pixels, &config)?;
        restored = map;
        let converged = descent.outcomes.iter().filter(|&&o| o == Outcome::Converged).count();
        how = format!(
            "MAP by L-BFGS, {} iterations, {converged} of {n} descents converged (|grad| <= 1e-3)",
            descent.evaluations - 1
        );
    }
    for k in 0..if args.map { 0 } else { args.average } {
        // Each restoration starts its holes from its own noise and draws its own dynamics.
        let mut start = damaged.clone();
        if k > 0 {
            for (i, (v, &hole)) in start.iter_mut().zip(&holes).enumerate() {
                if hole {
                    let u = rng::uniform4(args.seed, (i / dim) as u32, 4 + k, Stream::Init, (i % dim) as u32 / 4)
                        [i % dim % 4];
                    *v = lo + (hi - lo) * u;
                }
            }
        }
        let config = RestoreConfig { seed: args.seed.wrapping_add(k as u64), ..config };
        let one = match (&model, &schedule) {
            (Model::Dbm(d), _) => dbm::restore(d, &start, &holes, steps, config.seed)?,
            (Model::Energy(e), Some(s)) => restore_annealed(e, &start, &pixels, &config, s, ctx.as_ref())?,
            (Model::Energy(e), None) => restore(e, &start, &pixels, &config, ctx.as_ref())?,
        };
        restored.iter_mut().zip(one).for_each(|(r, v)| *r += v.clamp(lo, hi) / args.average as f32);
    }
    let seconds = start.elapsed().as_secs_f64();
    // Baselines: the damaged input with mid-grey holes; the training (or image) mean in the holes.
    let shown: Vec<f32> = damaged.iter().zip(&holes).map(|(&v, &hole)| if hole { 0.0 } else { v }).collect();
    let with_mean: Vec<f32> =
        damaged.iter().zip(&holes).enumerate().map(|(k, (&v, &hole))| if hole { mean[k % dim] } else { v }).collect();
    let changed: Vec<bool> = pixels.iter().map(|p| *p != Pixel::Observed).collect();
    let background = train.iter().copied().fold(f32::INFINITY, f32::min);
    let with_background = fill_holes(&damaged, &holes, background);
    let k = args.neighbours;
    let nearest = nearest_fill(&damaged, &holes, &changed, &train, dim, k, leave_out_self)
        .with_context(|| format!("--neighbours {k}"))?;
    let knn_label = match (k, leave_out_self) {
        (1, false) => "nearest training image".to_string(),
        (1, true) => format!("nearest {source} image (leave-one-out)"),
        (k, false) => format!("mean of {k} nearest training images"),
        (k, true) => format!("mean of {k} nearest {source} images (leave-one-out)"),
    };
    let score = |method: String, x: &[f32]| {
        let m = mse(x, &originals, None);
        Scores {
            method,
            mse: m,
            mse_restored_pixels: mse(x, &originals, Some(&changed)),
            psnr_db: psnr(m, (hi - lo) as f64),
        }
    };
    let scores = [
        score("damaged input".into(), &shown),
        score(mean_label, &with_mean),
        score(format!("background {background} in holes"), &with_background),
        score(knn_label, &nearest),
        score("restored".into(), &restored),
    ];
    println!(
        "{n} images, mask {}, noise {}: {how} in {seconds:.1} s on {}",
        args.mask,
        args.noise,
        backend::describe(ctx.as_ref())
    );
    let width = scores.iter().map(|s| s.method.len()).max().unwrap_or(6);
    println!("{:<width$} {:>9} {:>16} {:>9}", "method", "MSE", "MSE restored px", "PSNR dB");
    for s in &scores {
        println!("{:<width$} {:>9.5} {:>16.5} {:>9.2}", s.method, s.mse, s.mse_restored_pixels, s.psnr_db);
    }
    if let Some(png) = &args.png {
        let shown_n = n.min(16);
        let mut tiles = Vec::with_capacity(3 * shown_n * dim);
        for j in 0..shown_n {
            for img in [&shown, &restored, &originals] {
                tiles.extend(img[j * dim..(j + 1) * dim].iter().map(|v| 0.5 * (v + 1.0)));
            }
        }
        let title = format!("{} with mask {}, noise {}", args.energy, args.mask, args.noise);
        crate::io::figure::ImageGrid::new(title, (channels, h, w))
            .cols(12)
            .column_labels(&["damaged", "restored", "original"])
            .png(png, &tiles)?;
        println!("wrote {} (columns: damaged, restored, original; 4 images a row)", png.display());
    }
    if let Some(out) = &args.out {
        crate::io::npy::write_f32(out, &restored, &[n, dim])?;
        println!("wrote {}", out.display());
    }
    if let Some(json) = &args.json {
        #[derive(Serialize)]
        struct Report<'a> {
            energy: &'a str,
            data: &'a str,
            mask: &'a str,
            noise: f32,
            images: usize,
            method: &'a str,
            config: String,
            scores: &'a [Scores],
        }
        let report = Report {
            energy: &args.energy,
            data: &args.data,
            mask: &args.mask,
            noise: args.noise,
            images: n,
            method: &how,
            config: format!("{config:?}"),
            scores: &scores,
        };
        crate::io::write_atomic(json, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", json.display());
    }
    Ok(())
}
