//! The `ebm` command line (feature `cli`): sample, inspect and benchmark energy-based models on
//! the GPU or the CPU executor. The binary is [`main`]; [`run`] runs one command in-process with
//! the same code, which is how the Python package reaches every job the CLI has.

mod ais_shard;
mod backend;
mod bench;
mod classify;
pub mod datasets;
mod dbm;
mod env;
#[cfg(test)]
mod help_tests;
mod likelihood;
mod merge;
mod minimize;
mod net;
mod numbers;
mod ood;
mod outputs;
mod probe;
pub mod progress;
mod quality;
mod rbm;
mod restore;
mod rundir;
mod sample;
mod score;
mod selftest;
mod settings;
mod shard;
mod train;
pub(crate) use train::open_run;

use crate::nn::NetworkInternals;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ebm",
    version,
    about = "Energy-based models on the GPU (WGSL kernels through wgpu) with a fast CPU twin",
    long_about = "Energy-based models on the GPU (WGSL kernels through wgpu) with a fast CPU twin.\n\n\
                  --backend auto (every command's default) runs on a hardware GPU if one opens, \
                  otherwise on the CPU executor; a software adapter (lavapipe, llvmpipe) only with \
                  --backend gpu. The GPU adapter can be chosen with WGPU_BACKEND (vulkan, gl, metal, \
                  dx12) and WGPU_ADAPTER_NAME (a substring of the adapter name); `ebm info` lists \
                  them and says which executor auto picks."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Adapters, the executor --backend auto picks here, limits and CPU threads.
    ///
    /// List GPU adapters, the executor each --backend picks here, the adapter's limits, and the
    /// CPU executor's threads.
    Info,
    /// Run MCMC chains on any energy (continuous or discrete); write samples and a figure.
    ///
    /// Run many MCMC chains on an energy and write the final states (and a figure): continuous
    /// energies (ULA, MALA, HMC, RWMH; a training checkpoint's own sampler unless flags override
    /// it; R-hat and ESS checked) or discrete models (Ising, Potts, Boltzmann machines, Hopfield:
    /// block Gibbs, Metropolis, Swendsen–Wang, Wolff).
    Sample(sample::SampleArgs),
    /// Join the outputs of `ebm sample --shard I/N` runs into one run's.
    ///
    /// Join the outputs of `ebm sample --shard I/N` runs (final states or traces) into what one
    /// run of all the chains writes; joined traces are checked (R-hat, ESS), with --diagnostics
    /// as a table and JSON.
    Merge(merge::MergeArgs),
    /// Chain-steps per second on the GPU and CPU executors side by side.
    ///
    /// Measure chain-steps (discrete models: site updates) per second on the GPU and CPU
    /// executors side by side.
    Bench(bench::BenchArgs),
    /// Check every kernel family on this GPU against the CPU executor.
    ///
    /// Check that every kernel family computes on this GPU what the CPU executor computes (the
    /// first command to run on a new GPU or driver); exits non-zero on any failure.
    Selftest(selftest::SelftestArgs),
    /// Train an energy network (any architecture) on 2-D data, points or images.
    ///
    /// Train an energy network (an MLP or any layer description) on 2-D toy data, a point file or
    /// images (mnist, fashion-mnist): contrastive divergence with a persistent replay buffer
    /// (cd, softplus, hinge), NCE, JEM or score matching; checkpoints, metrics.csv, figures.
    Train(train::TrainArgs),
    /// Likelihood of a trained model: exact for 2-D models, AIS for images.
    ///
    /// Likelihood of a trained model: for a 2-D model exact by quadrature (held-out NLL in nats,
    /// total variation to the data, a density figure); for an image model the test and train
    /// NLL and bits per dimension with log Z by AIS. Writes eval.json to the run dir; an image
    /// model outside a run dir: --energy net:FILE --data mnist [--json report.json].
    Eval(train::EvalArgs),
    /// Energy, gradient norm and log-density of points under an energy.
    ///
    /// Score points under an energy: energy, gradient norm and log-density (closed form for
    /// Gaussians and mixtures, quadrature for 2-D energies, exact or AIS log Z for an RBM's
    /// free energy, otherwise "not available"); --ratio
    /// A,B gives log p(a)/p(b) = E(b) - E(a) without Z. .npy/.csv/.json out.
    Score(score::ScoreArgs),
    /// Out-of-distribution detection by energy: AUROC, AUPR, FPR95, histograms.
    ///
    /// Out-of-distribution detection with an energy: energies of an in-distribution test set
    /// and of other sets (Fashion-MNIST, noise, files), AUROC, AUPR, FPR at 95 % TPR, energy
    /// histograms, a threshold, a JSON report; optionally input-complexity corrected.
    Ood(ood::OodArgs),
    /// Inpaint or denoise images with an energy, against baselines.
    ///
    /// Restore damaged images with an energy: inpainting (Langevin on the missing pixels, the
    /// observed ones fixed) or denoising (with the data-fidelity term); MSE and PSNR against
    /// the originals next to two baselines; a (damaged, restored, original) grid.
    Restore(restore::RestoreArgs),
    /// Find the local minima of an energy from many starts at once.
    ///
    /// Find low-energy states: descend the energy from many starts at once (L-BFGS or Adam, on
    /// the box and with dimensions held fixed if asked) and list the distinct local minima,
    /// their energies and how many starts reached each.
    Minimize(minimize::MinimizeArgs),
    /// Sample quality of an image model: FID, KID, mode coverage, memorisation.
    ///
    /// Sample quality of an image model: Fréchet and kernel distances (KID) to the test images
    /// in a classifier's features, beside real images' own; mode coverage (the classifier's
    /// class histogram and confidence) and memorisation (nearest training images), a figure.
    Quality(quality::QualityArgs),
    /// Classifier accuracy and calibration, or the classes it gives generated images.
    ///
    /// Classify labelled images with a network of K > 1 outputs (e.g. a JEM checkpoint):
    /// accuracy, NLL and expected calibration error; with --samples, the share of generated
    /// images each classifier gives its --want class.
    Classify(classify::ClassifyArgs),
    /// A contrastive model's features judged by retrieval and a linear probe.
    ///
    /// For a network trained with `ebm train --loss infonce`: retrieval of each test image's
    /// second view among N (top-1, top-5) and a linear probe's test accuracy, each beside the
    /// same network with random weights and the raw pixels.
    Probe(probe::ProbeArgs),
    /// Datasets by name: download MNIST or Fashion-MNIST, list them, derive variants of MNIST.
    ///
    /// Datasets by name: `data download mnist|fashion-mnist` fetches one (SHA-256 checked,
    /// resumable) into the per-user data dir that `--data NAME` reads; `data list` says where
    /// each is found; `data colour-mnist` makes Colour MNIST from it, `data stroke-mnist`
    /// relabels it by stroke weight. `ebm data --help` lists
    /// every kind of image data `--data` reads (PNG folders, .npy images, labels files).
    Data(datasets::DataArgs),
    /// Restricted Boltzmann machines: train, evaluate (exact or AIS log Z), sample.
    ///
    /// Restricted Boltzmann machines: train (CD-k, PCD-k), evaluate (exact log Z, AIS), sample.
    Rbm(rbm::RbmArgs),
    /// Deep Boltzmann machines and deep belief networks: train, evaluate, sample.
    ///
    /// Deep Boltzmann machines (two hidden layers) and deep belief networks (--deep dbn):
    /// greedy pre-training, PCD with a mean-field positive phase, AIS log Z and likelihood
    /// bounds, samples.
    Dbm(dbm::DbmArgs),
    /// Write a randomly initialised MLP energy (safetensors).
    ///
    /// Write a randomly initialised MLP energy (PyTorch nn.Sequential layout, safetensors),
    /// usable as `ebm sample --energy mlp:FILE`. `init-net` writes any network, MLPs included.
    InitMlp(InitMlpArgs),
    /// Write a randomly initialised network of any architecture (safetensors).
    ///
    /// Write a randomly initialised network of any architecture (dense, convolutional, pooling,
    /// several outputs; PyTorch nn.Sequential naming), usable as `ebm sample --energy net:FILE`.
    InitNet(net::InitNetArgs),
}

#[derive(clap::Args, Debug)]
struct InitMlpArgs {
    /// Layer widths from the input to the output, which must be 1, e.g. 2,128,128,1.
    #[arg(long, value_delimiter = ',', required = true)]
    dims: Vec<usize>,
    /// Hidden activation: relu, leaky_relu[:slope], silu, tanh, softplus, elu[:alpha].
    #[arg(long, default_value = "silu")]
    act: String,
    /// The network outputs f = -E (the UvA / IGEBM convention).
    #[arg(long)]
    negate: bool,
    /// Weights follow PyTorch's default initialisation, drawn from this seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output .safetensors file.
    #[arg(long)]
    out: std::path::PathBuf,
}

/// The private runtime directory set for adapter probing, when XDG_RUNTIME_DIR was unset.
static QUIET_RUNTIME_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Without XDG_RUNTIME_DIR, probing GPU adapters makes the Wayland client library (loaded by
/// the Vulkan and GL drivers' window-system code) print "error: XDG_RUNTIME_DIR is invalid or
/// not set in the environment." several times, which reads as a failure. Point it at a
/// private directory (0700, owned by this user) instead; no socket is there, so nothing
/// connects. The directory goes in the first usable of the temp dir (TMPDIR), /tmp, /var/tmp,
/// /dev/shm and ~/.cache, so an unusable TMPDIR does not bring the noise back. Called first
/// thing in main, while the process has one thread.
#[cfg(unix)]
fn quiet_adapter_probing() {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else { return };
    let home_cache = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache"));
    let parents =
        [Some(std::env::temp_dir()), Some("/tmp".into()), Some("/var/tmp".into()), Some("/dev/shm".into()), home_cache];
    for parent in parents.into_iter().flatten().filter(|p| p.is_absolute()) {
        let dir = parent.join(format!("ebm-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Only a directory this user owns and no one else can enter (as the spec requires).
        let private = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
        if private {
            // SAFETY: main calls this before any other thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
            let _ = QUIET_RUNTIME_DIR.set(dir);
            return;
        }
    }
}

#[cfg(not(unix))]
fn quiet_adapter_probing() {}

/// The `ebm` binary: parses the process's arguments (printing help or a usage error and exiting
/// as clap does) and runs the command.
pub fn main() -> anyhow::Result<()> {
    quiet_adapter_probing();
    dispatch(Cli::command().get_matches())
}

/// Runs one `ebm` command in this process: `args` as on the command line, the program name
/// first (`["ebm", "sample", "--chains", "64"]`). A usage error (or `--help`) is returned as an
/// error holding clap's text instead of exiting the process.
pub fn run<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args).map_err(usage_error)?;
    dispatch(matches)
}

/// clap's message without its "try --help" tip, which names no command a caller of [`run`] has.
fn usage_error(e: clap::Error) -> anyhow::Error {
    let text = e.render().to_string();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("For more information, try")).collect();
    anyhow::anyhow!(lines.join("\n").trim_end().to_string())
}

fn dispatch(matches: clap::ArgMatches) -> anyhow::Result<()> {
    // Which flags the user gave, not defaulted: a resume compares only those with its run.
    let given = rundir::Given::from_matches(&matches);
    let cli = Cli::from_arg_matches(&matches).map_err(usage_error)?;
    // Before any command reads a variable, and before any file is made.
    env::check()?;
    match cli.command {
        Command::Info => info(),
        Command::Sample(args) => sample::run(&args, &given),
        Command::Merge(args) => merge::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Selftest(args) => selftest::run(&args),
        Command::Train(args) => train::run_train(&args, &given),
        Command::Eval(args) => train::evaluate::run_eval(&args, &given),
        Command::Score(args) => score::run(&args, &given),
        Command::Ood(args) => ood::run(&args),
        Command::Restore(args) => restore::run(&args),
        Command::Minimize(args) => minimize::run(&args),
        Command::Quality(args) => quality::run(&args),
        Command::Classify(args) => classify::run(&args),
        Command::Probe(args) => probe::run(&args),
        Command::Data(args) => datasets::run(&args),
        Command::Rbm(args) => rbm::run(&args, &given),
        Command::Dbm(args) => dbm::run(&args, &given),
        Command::InitMlp(args) => init_mlp(&args),
        Command::InitNet(args) => net::init_net(&args),
    }
}

fn init_mlp(args: &InitMlpArgs) -> anyhow::Result<()> {
    use crate::nn::{Activation, Network};
    outputs::Paths::new().output("--out", &args.out, &["safetensors"])?;
    let params = Network::mlp_parameters(&args.dims);
    let dims: Vec<String> = args.dims.iter().map(|d| d.to_string()).collect();
    // The weights, their safetensors encoding and the file's bytes.
    let what = format!("the network's {params} parameters");
    crate::plan::Plan::new().add(format!("--dims {}", dims.join(",")), what, &[params], 4, 3).check()?;
    let net = Network::random_mlp(&args.dims, Activation::parse(&args.act)?, args.negate, args.seed)?;
    let mlp = net.as_mlp().expect("random_mlp builds an MLP");
    mlp.save(&args.out)?;
    println!(
        "wrote {} ({} layers, {} parameters, {})",
        args.out.display(),
        mlp.layers().len(),
        net.param_count(),
        mlp.activation().name()
    );
    Ok(())
}

fn info() -> anyhow::Result<()> {
    let adapters = crate::gpu::list_adapters();
    println!("adapters ({}):", adapters.len());
    if let Some(dir) = QUIET_RUNTIME_DIR.get() {
        println!("  (XDG_RUNTIME_DIR was unset: probing used {} so the display libraries stay quiet)", dir.display());
    }
    for a in &adapters {
        println!("  {} [{:?}, {:?}] driver: {} {}", a.name, a.backend, a.device_type, a.driver, a.driver_info);
    }
    match crate::gpu::GpuContext::new() {
        Ok(ctx) => {
            let l = ctx.limits();
            let software = ctx.adapter_info().is_some_and(crate::gpu::executor::is_software);
            println!("--backend gpu opens: {}{}", ctx.describe(), if software { " (a software adapter)" } else { "" });
            println!("  max storage binding:        {} MiB", l.max_storage_buffer_binding_size / (1 << 20));
            println!("  max buffer size:            {} MiB", l.max_buffer_size / (1 << 20));
            println!("  max workgroups / dimension: {}", l.max_compute_workgroups_per_dimension);
            println!("  max invocations / group:    {}", l.max_compute_invocations_per_workgroup);
            println!("  max workgroup storage:      {} KiB", l.max_compute_workgroup_storage_size / 1024);
        }
        Err(e) => println!("--backend gpu opens: none ({e})"),
    }
    println!("cpu executor: {} threads (RAYON_NUM_THREADS to change)", rayon::current_num_threads());
    println!("--backend {} (the default of every command)", crate::gpu::AUTO_POLICY);
    match crate::gpu::GpuContext::new_hardware() {
        Ok(ctx) => println!("--backend auto runs on: {}", ctx.describe()),
        Err(e) => println!("--backend auto runs on: the CPU executor ({e})"),
    }
    Ok(())
}
