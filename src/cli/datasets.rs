//! Named image datasets (MNIST, Fashion-MNIST): where `--data NAME` finds them, and the
//! `ebm data download` / `list` commands and the MNIST variants (colour-, stroke-, halves-mnist).
//!
//! `--data mnist` (or `fashion-mnist`), unless a path of that name exists, is the folder
//! `mnist/` under the first of these that holds it: `$EBM_DATA_DIR` when it is set (then only
//! it); else the per-user data dir (`$XDG_DATA_HOME/ebm-gpu`, else `~/.local/share/ebm-gpu`),
//! which `ebm data download` fills; last `../shared/data` relative to the current directory
//! (beside a clone, where CI keeps its copy). Every command resolves names through [`resolve`].

mod download;
mod http;

pub use download::{FileSpec, Outcome, fetch_files, part_path, sha256_file};

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// A folder holding `mnist/`, `fashion-mnist/`: when set, the only one searched.
pub const DATA_DIR_VAR: &str = "EBM_DATA_DIR";
/// A mirror's root URL (`http://HOST/PATH`, files at `ROOT/NAME/FILE`) used instead of the
/// built-in mirrors.
pub const MIRROR_VAR: &str = "EBM_DATA_MIRROR";
/// The last folder searched, relative to the current directory.
pub const FALLBACK_DIR: &str = "../shared/data";

/// A dataset `ebm data download` knows: its files (the original gzipped IDX files, with the
/// SHA-256 of each) and the mirrors that serve them.
#[derive(Debug)]
pub struct KnownSet {
    pub name: &'static str,
    /// Folder URLs holding the files, tried in order.
    pub mirrors: &'static [&'static str],
    pub files: &'static [FileSpec<'static>],
}

/// MNIST (LeCun et al.), the files torchvision lists (their MD5s match these SHA-256s' files).
pub const MNIST: KnownSet = KnownSet {
    name: "mnist",
    mirrors: &["http://ossci-datasets.s3.amazonaws.com/mnist", "http://yann.lecun.com/exdb/mnist"],
    files: &[
        FileSpec {
            name: "train-images-idx3-ubyte.gz",
            sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            size: 9912422,
        },
        FileSpec {
            name: "train-labels-idx1-ubyte.gz",
            sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            size: 28881,
        },
        FileSpec {
            name: "t10k-images-idx3-ubyte.gz",
            sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            size: 1648877,
        },
        FileSpec {
            name: "t10k-labels-idx1-ubyte.gz",
            sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            size: 4542,
        },
    ],
};

/// Fashion-MNIST (Xiao et al. 2017) from its authors' bucket.
pub const FASHION_MNIST: KnownSet = KnownSet {
    name: "fashion-mnist",
    mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"],
    files: &[
        FileSpec {
            name: "train-images-idx3-ubyte.gz",
            sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            size: 26421880,
        },
        FileSpec {
            name: "train-labels-idx1-ubyte.gz",
            sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            size: 29515,
        },
        FileSpec {
            name: "t10k-images-idx3-ubyte.gz",
            sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            size: 4422102,
        },
        FileSpec {
            name: "t10k-labels-idx1-ubyte.gz",
            sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            size: 5148,
        },
    ],
};

pub const KNOWN: &[KnownSet] = &[MNIST, FASHION_MNIST];

pub fn known(name: &str) -> Option<&'static KnownSet> {
    KNOWN.iter().find(|s| s.name == name)
}

fn var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The per-user data dir: `$XDG_DATA_HOME/ebm-gpu` (an absolute XDG_DATA_HOME, as the XDG
/// spec requires), else `$HOME/.local/share/ebm-gpu`; None without either.
pub fn user_data_dir() -> Option<PathBuf> {
    let base =
        var("XDG_DATA_HOME").filter(|p| p.is_absolute()).or_else(|| var("HOME").map(|h| h.join(".local/share")))?;
    Some(base.join("ebm-gpu"))
}

/// A folder searched for named datasets and why.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchDir {
    pub path: PathBuf,
    pub why: String,
}

/// The folders searched for `--data NAME`, in order.
pub fn search_dirs() -> Vec<SearchDir> {
    if let Some(path) = var(DATA_DIR_VAR) {
        return vec![SearchDir { path, why: "$EBM_DATA_DIR; only it is searched while it is set".into() }];
    }
    let user = user_data_dir()
        .map(|path| SearchDir { path, why: "the per-user data dir, filled by `ebm data download`".into() });
    let cwd = std::env::current_dir().map_or(String::new(), |d| format!(", {}", d.display()));
    let fallback =
        SearchDir { path: PathBuf::from(FALLBACK_DIR), why: format!("relative to the current directory{cwd}") };
    user.into_iter().chain([fallback]).collect()
}

/// Where `ebm data download` writes by default: `$EBM_DATA_DIR`, else the per-user data dir.
pub fn download_root() -> anyhow::Result<PathBuf> {
    var(DATA_DIR_VAR)
        .or_else(user_data_dir)
        .context("no per-user data dir (neither XDG_DATA_HOME nor HOME is set): give --dir DIR")
}

/// Whether `dir` holds a dataset in the MNIST layout (either split's images, raw or gzipped).
pub fn holds_set(dir: &Path) -> bool {
    let names =
        ["train-images-idx3-ubyte", "train-images.idx3-ubyte", "t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"];
    dir.is_dir() && crate::data::find_file(dir, &names).is_some()
}

/// The folder of the named dataset: `<dir>/<name>` in the first search dir that holds it.
pub fn locate(name: &str) -> Option<PathBuf> {
    search_dirs().into_iter().map(|d| d.path.join(name)).find(|p| holds_set(p))
}

/// The error for a named dataset found nowhere: each folder looked in, and the command that
/// fetches it.
pub fn not_found(name: &str) -> anyhow::Error {
    let looked: Vec<String> =
        search_dirs().iter().map(|d| format!("  {} ({})", d.path.join(name).display(), d.why)).collect();
    anyhow::anyhow!(
        "dataset {name} not found; looked in:\n{}\nfetch it with: ebm data download {name}",
        looked.join("\n")
    )
}

/// `--data SPEC` as a path: `mnist` and `fashion-mnist`, unless a path of that name exists,
/// are found through [`search_dirs`] (an error naming each folder when none holds them);
/// anything else is a path, as given.
pub fn resolve(spec: &str) -> anyhow::Result<PathBuf> {
    if known(spec).is_some() && !Path::new(spec).exists() {
        return locate(spec).ok_or_else(|| not_found(spec));
    }
    Ok(PathBuf::from(spec))
}

/// What `--data` reads, for `ebm data --help`.
const DATA_HELP: &str = "What --data reads (every command that takes images):\n  \
mnist, fashion-mnist: the named sets (see `ebm data list`)\n  \
DIR in the MNIST layout: IDX files, gzipped or raw, with their labels files; or holding digits.csv\n  \
DIR of PNGs: every *.png in file-name order (other names skipped); all grayscale or all RGB, one size, \
no alpha; labels: DIR/labels.txt (one integer 0..=255 per line, in the files' order) or DIR/labels.npy\n  \
NAME.npy of images: [N, C, H, W] or [N, H, W]; uint8 0..255, or float32/float64 taken as given (in [-1, 1]); \
labels: NAME.labels.txt or NAME.labels.npy beside it\n  \
DIR holding train/ and test/ (PNG folders) or train.npy and test.npy: the two splits\n\n\
8-bit pixels k become 2 k / 255 - 1 in [-1, 1], as MNIST's do. A flat PNG folder or a single .npy is one set \
serving as both splits. Images whose channels x height x width differ from a network's input are refused.";

/// `ebm data`: fetch and list the named datasets, derive others from MNIST; its long help says what
/// `--data` reads.
#[derive(clap::Args, Debug)]
#[command(after_long_help = DATA_HELP)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DataCommand {
    /// Download a dataset's four IDX .gz files into DIR/NAME (default: $EBM_DATA_DIR, else the
    /// per-user data dir, where `--data NAME` finds them), each checked against its SHA-256;
    /// an interrupted download resumes where it stopped when run again.
    Download(DownloadArgs),
    /// The known datasets: where `--data NAME` finds each (the folders searched, in order),
    /// their files and sizes; --verify checks each file's SHA-256.
    List(ListArgs),
    /// Colour MNIST from the MNIST files: each digit in one colour on a background of another,
    /// both drawn from a fixed palette of 8 (black, white, red, green, blue, yellow, magenta,
    /// cyan) by Philox with --seed per image and split, never the same; a pixel of grey level
    /// t in [0, 1] becomes background + t (digit - background) per channel. Writes
    /// OUT/train.npy and OUT/test.npy ([N, 3, 28, 28] uint8) with train.labels.npy and
    /// test.labels.npy (MNIST's labels), which `--data OUT` reads.
    #[command(name = "colour-mnist")]
    ColourMnist(ColourArgs),
    /// MNIST relabelled by stroke weight, a second attribute of the same images: label 1
    /// (heavy) when an image's ink (the sum of its pixels) is above the median of its digit's
    /// images in its split, else 0 (light), so every digit splits about evenly. Writes
    /// OUT/train.npy and OUT/test.npy ([N, 1, 28, 28] uint8, the images unchanged) with
    /// train.labels.npy and test.labels.npy (the stroke labels), which `--data OUT` reads, and
    /// train.digits.npy and test.digits.npy (the digit labels).
    #[command(name = "stroke-mnist")]
    StrokeMnist(DerivedArgs),
    /// Two views of each MNIST image that share no pixel, for `ebm train --loss infonce
    /// --pairs`: the top half (rows 0..14 kept, the rest black) and the bottom half (rows
    /// 14..28). Writes OUT/top and OUT/bottom, each holding train.npy and test.npy ([N, 1,
    /// 28, 28] uint8) with their labels files (MNIST's labels, for `ebm probe`); row i of
    /// each is one image.
    #[command(name = "halves-mnist")]
    HalvesMnist(DerivedArgs),
}

/// A dataset derived from MNIST's images (stroke-mnist, halves-mnist).
#[derive(clap::Args, Debug)]
struct DerivedArgs {
    /// The folder to write (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// The labelled source: mnist, or an MNIST-layout folder.
    #[arg(long, default_value = "mnist")]
    data: String,
    /// Write only the first N images of each split.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(clap::Args, Debug)]
struct ColourArgs {
    /// The folder to write (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// The grayscale source: mnist, or an MNIST-layout folder (e.g. fashion-mnist works too).
    #[arg(long, default_value = "mnist")]
    data: String,
    /// Seeds the colour of every image.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write only the first N images of each split.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(clap::Args, Debug)]
struct DownloadArgs {
    /// mnist or fashion-mnist.
    #[arg(value_parser = ["mnist", "fashion-mnist"])]
    name: String,
    /// The data folder: the files go to DIR/NAME (commands read it with EBM_DATA_DIR=DIR).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A mirror's root URL (files at URL/NAME/FILE), used instead of the built-in mirrors
    /// (as is EBM_DATA_MIRROR); repeatable, tried in order.
    #[arg(long, hide = true)]
    mirror: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// Check each file's SHA-256 (reads every file).
    #[arg(long)]
    verify: bool,
}

pub fn run(args: &DataArgs) -> anyhow::Result<()> {
    match &args.command {
        DataCommand::Download(a) => run_download(a),
        DataCommand::List(a) => run_list(a),
        DataCommand::ColourMnist(a) => run_colour(a),
        DataCommand::StrokeMnist(a) => run_stroke(a),
        DataCommand::HalvesMnist(a) => run_halves(a),
    }
}

fn run_colour(args: &ColourArgs) -> anyhow::Result<()> {
    use crate::data::{Split, colour, load};
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let source = resolve(&args.data)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating --out {}", args.out.display()))?;
    for (split, name, index) in [(Split::Train, "train", 0), (Split::Test, "test", 1)] {
        let mut set = load(&source, split).with_context(|| format!("--data {}", args.data))?;
        if let Some(n) = args.limit {
            set = set.take(n);
        }
        if set.channels != 1 {
            bail!(
                "--data {}: {} images have {} channels; colour-mnist colours grayscale images",
                args.data,
                name,
                set.channels
            );
        }
        let images = colour::colourise(&set, args.seed, index);
        write_split(&args.out, name, &images, [set.rows, 3, set.height, set.width], set.labels.as_deref())?;
    }
    println!("--data {} reads them", args.out.display());
    Ok(())
}

fn run_stroke(args: &DerivedArgs) -> anyhow::Result<()> {
    use crate::data::{Split, load, stroke};
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let source = resolve(&args.data)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating --out {}", args.out.display()))?;
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let mut set = load(&source, split).with_context(|| format!("--data {}", args.data))?;
        if let Some(n) = args.limit {
            set = set.take(n);
        }
        let Some(strokes) = stroke::stroke_labels(&set) else {
            bail!("--data {}: the {name} images have no digit labels to split by", args.data);
        };
        let images: Vec<u8> = set.images.iter().map(|&t| (t * 255.0).round().clamp(0.0, 255.0) as u8).collect();
        let (c, h, w) = set.shape();
        write_split(&args.out, name, &images, [set.rows, c, h, w], Some(&strokes))?;
        let digits = set.labels.as_deref().unwrap_or_default();
        let path = args.out.join(format!("{name}.digits.npy"));
        crate::io::write_atomic(&path, &crate::io::npy::encode_u8(digits, &[digits.len()]))?;
        let heavy = strokes.iter().filter(|&&s| s == stroke::HEAVY).count();
        println!("  {heavy} heavy, {} light; digit labels in {}", strokes.len() - heavy, path.display());
    }
    println!("--data {} reads them (labels: 0 light, 1 heavy)", args.out.display());
    Ok(())
}

fn run_halves(args: &DerivedArgs) -> anyhow::Result<()> {
    use crate::data::{Split, halves, load};
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let source = resolve(&args.data)?;
    let dirs = [args.out.join("top"), args.out.join("bottom")];
    for dir in &dirs {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let mut set = load(&source, split).with_context(|| format!("--data {}", args.data))?;
        if let Some(n) = args.limit {
            set = set.take(n);
        }
        let (c, h, w) = set.shape();
        if h < 2 {
            bail!("--data {}: images of height {h} have no two halves", args.data);
        }
        for (dir, images) in dirs.iter().zip(halves::halves(&set)) {
            write_split(dir, name, &images, [set.rows, c, h, w], set.labels.as_deref())?;
        }
    }
    println!("--data {} --pairs {} read them", dirs[0].display(), dirs[1].display());
    Ok(())
}

/// Writes OUT/NAME.npy (uint8 images of `shape`) and, given labels, OUT/NAME.labels.npy.
fn write_split(out: &Path, name: &str, images: &[u8], shape: [usize; 4], labels: Option<&[u8]>) -> anyhow::Result<()> {
    let path = out.join(format!("{name}.npy"));
    crate::io::write_atomic(&path, &crate::io::npy::encode_u8(images, &shape))?;
    if let Some(labels) = labels {
        let lpath = out.join(format!("{name}.labels.npy"));
        crate::io::write_atomic(&lpath, &crate::io::npy::encode_u8(labels, &[labels.len()]))?;
    }
    let [rows, c, h, w] = shape;
    let with = if labels.is_some() { ", with labels" } else { "" };
    println!("wrote {} ({rows} images of {c}x{h}x{w}{with})", path.display());
    Ok(())
}

/// The mirrors' folder URLs for `set`: those of --mirror, else of $EBM_DATA_MIRROR (each a
/// root holding NAME/), else the built-in ones.
fn mirrors(args: &DownloadArgs, set: &KnownSet) -> Vec<String> {
    let env = std::env::var(MIRROR_VAR).ok().map(|m| m.trim().to_string()).filter(|m| !m.is_empty());
    let roots: Vec<String> = if args.mirror.is_empty() { env.into_iter().collect() } else { args.mirror.clone() };
    if roots.is_empty() {
        return set.mirrors.iter().map(|m| m.to_string()).collect();
    }
    roots.iter().map(|root| http::Url::join(root, set.name)).collect()
}

fn run_download(args: &DownloadArgs) -> anyhow::Result<()> {
    let set = known(&args.name).with_context(|| format!("{} is not a known dataset", args.name))?;
    let root = match &args.dir {
        Some(dir) => dir.clone(),
        None => download_root()?,
    };
    let dir = root.join(set.name);
    let mirrors = mirrors(args, set);
    println!("downloading {} into {}", set.name, dir.display());
    let outcomes = fetch_files(set.files, &mirrors, &dir)?;
    for (name, outcome) in outcomes {
        match outcome {
            Outcome::Present => println!("  {name}: already there, SHA-256 verified"),
            Outcome::Downloaded { from, resumed_from: 0 } => println!("  {name}: from {from}, SHA-256 verified"),
            Outcome::Downloaded { from, resumed_from } => {
                println!("  {name}: from {from} (resumed at byte {resumed_from}), SHA-256 verified")
            }
        }
    }
    match locate(set.name) {
        Some(found) if same_dir(&found, &dir) => println!("{} is ready: --data {} reads it", dir.display(), set.name),
        found => {
            let reads = found.map_or("nothing".to_string(), |f| f.display().to_string());
            println!(
                "{} is ready, but --data {} reads {reads} from here: set {DATA_DIR_VAR}={} (or give --data {})",
                dir.display(),
                set.name,
                root.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Lines naming the `.part` files an interrupted download left in the default download folder.
fn partial_downloads(set: &KnownSet) -> String {
    let Ok(root) = download_root() else { return String::new() };
    let mut lines = String::new();
    for spec in set.files {
        let part = part_path(&root.join(set.name).join(spec.name));
        if let Ok(meta) = std::fs::metadata(&part) {
            lines += &format!(
                "\n  {}: an interrupted download, {} of {} bytes (`ebm data download {}` resumes it)",
                part.display(),
                meta.len(),
                spec.size,
                set.name
            );
        }
    }
    lines
}

fn run_list(args: &ListArgs) -> anyhow::Result<()> {
    println!("folders searched for --data NAME, in order:");
    for d in search_dirs() {
        println!("  {} ({})", d.path.display(), d.why);
    }
    let mut bad = 0;
    for set in KNOWN {
        let partial = partial_downloads(set);
        let Some(dir) = locate(set.name) else {
            println!("{}: not downloaded (ebm data download {}){partial}", set.name, set.name);
            continue;
        };
        println!("{}: {}{partial}", set.name, dir.display());
        for spec in set.files {
            let raw = spec.name.trim_end_matches(".gz");
            let Some(path) = crate::data::find_file(&dir, &[raw]) else {
                println!("  {:<28} missing", spec.name);
                continue;
            };
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            let check = if !args.verify {
                String::new()
            } else if name != spec.name {
                "  (not the published .gz: no checksum)".to_string()
            } else if sha256_file(&path).with_context(|| format!("reading {}", path.display()))? == spec.sha256 {
                "  SHA-256 ok".to_string()
            } else {
                bad += 1;
                "  SHA-256 MISMATCH (remove it and run `ebm data download` again)".to_string()
            };
            println!("  {name:<28} {size:>10} bytes{check}");
        }
    }
    if bad > 0 {
        bail!("{bad} file(s) do not match their published SHA-256");
    }
    Ok(())
}
