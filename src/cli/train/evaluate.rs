//! `ebm eval`: a trained 2-D model against its data (quadrature NLL, total variation, figures);
//! image models by AIS ([`super::likelihood`]).

use super::*;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run directory written by `ebm train` (its checkpoint and run.json); eval.json is
    /// written into it.
    #[arg(long, required_unless_present = "energy", conflicts_with = "energy")]
    pub run_dir: Option<PathBuf>,
    /// An image model outside a run dir: net:FILE (a training checkpoint, whose box it uses,
    /// or any network's weights) or an energy spec whose input is an image; needs --data.
    #[arg(long)]
    pub energy: Option<String>,
    /// With --energy: the box the model's density lives on (a training checkpoint's own box
    /// when not given, else -1,1).
    #[arg(id = "box", long = "box", value_parser = crate::cli::numbers::parse_box, value_name = "LO,HI", allow_hyphen_values = true)]
    pub bounds: Option<(f32, f32)>,
    /// With --energy: write the report (as a run's eval.json) here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The data to compare with: the run's toy dataset by default (fresh held-out samples), or
    /// a .npy/.csv file of held-out points.
    #[arg(long)]
    pub data: Option<String>,
    /// Fresh held-out points drawn from a toy dataset (with a seed training never used); for
    /// an image model, the test images (and as many training images) scored.
    #[arg(long, default_value_t = 20_000)]
    pub held_out: usize,
    /// A 2-D run: also the total variation of these samples (a .npy/.csv of [N, 2], e.g.
    /// `ebm sample --out`) to the data's exact density, beside as many fresh data points'.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    #[command(flatten)]
    pub images: likelihood::ImageEvalArgs,
}

pub fn run_eval(a: &EvalArgs, given: &Given) -> anyhow::Result<()> {
    let mut paths = crate::cli::outputs::Paths::new();
    if let Some(d) = &a.data {
        paths.input("--data", Path::new(d));
    }
    if let Some(f) = &a.samples {
        paths.input("--samples", f);
    }
    let Some(run_dir) = &a.run_dir else {
        // clap requires --run-dir or --energy.
        let energy = a.energy.as_deref().unwrap_or_default();
        paths.input("--energy", crate::cli::sample::energy_file(energy));
        if a.samples.is_some() {
            bail!("--samples needs --run-dir (a 2-D run on a toy dataset)");
        }
        if let Some(json) = &a.json {
            paths.output("--json", json, &["json"])?;
        }
        return super::likelihood::run_energy(a, energy);
    };
    // A run dir's shard writes its log weights to --json; everything else goes to eval.json.
    let shard = a.images.shard.ais_shard.is_some();
    if let Some(flag) = ["--box", "--json"].into_iter().find(|&f| given.has(f) && !(shard && f == "--json")) {
        bail!(
            "{flag} applies to a model given by --energy (and --json to --ais-shard); a run dir's model has its own box and writes eval.json"
        );
    }
    if let Some(json) = a.json.as_ref().filter(|_| shard) {
        paths.output("--json", json, &["json"])?;
    }
    let info = read_run(run_dir)?;
    let (state, config) = checkpoint::load(&run_dir.join(run::CHECKPOINT))?;
    if config.loss.uses_views() {
        bail!(
            "{}: a {} run's network scores pairs, not points, so it has no likelihood; judge its features with \
             `ebm probe --energy net:{}`",
            run_dir.display(),
            config.loss,
            run_dir.join(run::CHECKPOINT).display()
        );
    }
    if config.latent.is_some() && config.data_dim() != 2 {
        bail!(
            "{}: a latent EBM's marginal likelihood is measured by quadrature over 2-D data; this run's data has {} columns",
            run_dir.display(),
            config.data_dim()
        );
    }
    // Every output checked before the work (the quadrature or AIS), so that no result is lost
    // to an unwritable folder: eval.json, and a 2-D model's figure in figures/.
    paths.output("--run-dir", &run_dir.join("eval.json"), &["json"])?;
    let figure = run_dir.join("figures").join(format!("density_{:06}.png", state.step));
    if config.data_dim() == 2 {
        let figures = run_dir.join("figures");
        std::fs::create_dir_all(&figures).with_context(|| {
            format!("--run-dir {}: cannot make the figures folder {}", run_dir.display(), figures.display())
        })?;
        paths.output("--run-dir", &figure, &["png"])?;
    }
    if config.data_dim() != 2 {
        if a.samples.is_some() {
            bail!("--samples is for 2-D runs (the total variation of samples to a toy density)");
        }
        return super::likelihood::run(a, run_dir, &info, &state, &config);
    }
    if let Some(flag) = super::likelihood::IMAGE_FLAGS.iter().find(|f| given.has(f)) {
        bail!("{flag} applies to image models (their likelihood by AIS); a 2-D model's is exact by quadrature");
    }
    let spec = a.data.clone().unwrap_or_else(|| info.data.clone());
    let toy = Toy::parse(&spec).ok();
    if toy.is_none() && spec == info.data {
        eprintln!("note: these are the training points; give --data HELD_OUT.npy|csv for a held-out likelihood");
    }
    // Held-out points: fresh samples of a toy dataset (a seed training never used), or a file.
    // The points, their energies and the figure's copy: refused before allocating.
    crate::plan::Plan::new()
        .add(format!("--held-out {}", a.held_out), "the held-out points", &[a.held_out as u64, 2], 4, 3)
        .check()?;
    let held_out = toy::load_points(&spec, a.held_out, held_out_seed(info.data_seed))
        .with_context(|| format!("loading --data {spec}"))?;
    let model = state.energy();
    let (lo, hi) = ([config.box_lo[0], config.box_lo[1]], [config.box_hi[0], config.box_hi[1]]);
    // The exact density where the toy dataset has one, else a histogram of many fresh samples
    // (or of the file's points).
    let log_p = |p: &[f32]| toy.and_then(|t| t.log_density(p)).unwrap_or_default();
    let reference_samples;
    let reference = match toy {
        Some(t) if t.log_density(&[]).is_some() => eval::Reference::LogDensity(&log_p),
        Some(t) => {
            reference_samples = t.sample(1_000_000, held_out_seed(info.data_seed) + 1);
            eval::Reference::Samples(&reference_samples)
        }
        None => eval::Reference::Samples(&held_out),
    };
    let samples = a.samples.as_deref().map(|f| samples_tv(f, toy, info.data_seed, lo, hi)).transpose()?;
    // A latent EBM's model of x is its marginal: F(x) by importance sampling at every point.
    let encoder = config.latent.as_ref().and(state.side.as_ref()).map(|s| &s.net);
    let marginal = |p: &[f32], enc: &crate::nn::Network| {
        crate::train::latent::marginal_energy(
            &|q| eval::energies(&model, q),
            enc,
            p,
            crate::train::latent::MARGINAL_DRAWS,
            info.data_seed,
        )
    };
    // (An estimate that fails is NaN to the quadrature, which refuses it; its reason is kept.)
    let failed = std::cell::RefCell::new(None);
    let energies_of = |p: &[f32]| match encoder.map(|enc| marginal(p, enc)) {
        Some(Ok(v)) => v.iter().map(|e| e.value as f32).collect(),
        Some(Err(e)) => {
            failed.borrow_mut().get_or_insert(e);
            vec![f32::NAN; p.len() / 2]
        }
        None => eval::energies(&model, p),
    };
    let report = eval::evaluate_2d_of(&energies_of, lo, hi, &held_out, reference)
        .map_err(|e| failed.take().map_or_else(|| anyhow::Error::from(e), anyhow::Error::from))?;
    let marginal_se = encoder
        .map(|enc| -> anyhow::Result<f64> {
            let est = marginal(&held_out[..held_out.len().min(2 * 4096)], enc)?;
            Ok(est.iter().map(|e| e.se).sum::<f64>() / est.len().max(1) as f64)
        })
        .transpose()?;
    #[derive(Serialize)]
    struct EvalFile<'a> {
        data: &'a str,
        step: u32,
        #[serde(flatten)]
        report: &'a eval::DensityReport,
        #[serde(skip_serializing_if = "Option::is_none")]
        samples: Option<&'a SamplesTv>,
    }
    let out = run_dir.join("eval.json");
    let file = EvalFile { data: &spec, step: state.step, report: &report, samples: samples.as_ref() };
    crate::io::write_atomic(&out, serde_json::to_string_pretty(&file)?.as_bytes())?;
    let grid = eval::grid(lo, hi, 200);
    let energies = energies_of(&grid.points());
    let shown = &held_out[..held_out.len().min(1000)];
    let what = if encoder.is_some() { "marginal density (importance-sampled)" } else { "model density" };
    crate::io::figure::Heatmap::new(format!("{what} at step {} on {spec}", state.step), grid, &energies)
        .samples(shown, format!("{} held-out points", shown.len() / 2))
        .png(&figure)?;
    println!(
        "model at step {} on {spec} ({} held-out points, {} outside the box)",
        state.step, report.held_out, report.outside_box
    );
    println!(
        "log Z (quadrature, {0}x{0} cells over [{1:.2}, {2:.2}] x [{3:.2}, {4:.2}]): {5:.4}",
        report.cells, lo[0], hi[0], lo[1], hi[1], report.log_z
    );
    // Points outside the box have no density under the model (it is normalised on the box):
    // the NLL is over the others, and says so.
    let over = match report.outside_box {
        0 => String::new(),
        k => format!(" over the {} points inside the box ({k} outside left out)", report.held_out - k),
    };
    match report.true_nll {
        Some(t) => {
            println!("held-out NLL{over}: {:.4} nats (true density: {t:.4}, gap {:.4})", report.nll, report.nll - t)
        }
        None => println!("held-out NLL{over}: {:.4} nats", report.nll),
    }
    println!("total variation to the data ({}): {:.4}", report.tv_reference, report.tv);
    if let Some(se) = marginal_se {
        println!(
            "the marginal energy F(x) = -log of the integral of exp(-E(x, z)) over z, by importance sampling with the \
             encoder ({} draws a point): mean standard error {se:.4} nats over the held-out points; the \
             estimate is biased upwards, so the NLL above errs high",
            crate::train::latent::MARGINAL_DRAWS
        );
    }
    if let Some(s) = &samples {
        println!(
            "total variation of the {} samples of {} to the data ({}x{} bins): {:.4} ({} fresh data points: {:.4})",
            s.count,
            s.file.display(),
            eval::TV_BINS,
            eval::TV_BINS,
            s.tv,
            s.count,
            s.data_tv
        );
    }
    println!("wrote {} and {}", out.display(), figure.display());
    Ok(())
}

/// `--samples`: their total variation to the data's exact density, and that of as many fresh
/// data points (what a perfect sampler would reach with this many).
#[derive(Serialize)]
struct SamplesTv {
    file: PathBuf,
    count: usize,
    tv: f64,
    data_tv: f64,
}

fn samples_tv(file: &Path, toy: Option<Toy>, seed: u64, lo: [f32; 2], hi: [f32; 2]) -> anyhow::Result<SamplesTv> {
    let Some(toy) = toy.filter(|t| t.log_density(&[]).is_some()) else {
        bail!("--samples needs a run on a toy dataset with a known density (e.g. ring8); this run's data has none");
    };
    let (points, width) = toy::read_rows(file).with_context(|| format!("--samples {}", file.display()))?;
    if width != 2 {
        bail!("--samples {}: rows of {width} values; a 2-D run's samples have 2", file.display());
    }
    let count = points.len() / 2;
    let log_p = |p: &[f32]| toy.log_density(p).unwrap_or_default();
    let tv = eval::samples_tv(&points, &log_p, lo, hi);
    // Fresh points: a seed apart from the held-out points' and the reference's.
    let data_tv = eval::samples_tv(&toy.sample(count, held_out_seed(seed) + 2), &log_p, lo, hi);
    Ok(SamplesTv { file: file.to_path_buf(), count, tv, data_tv })
}
