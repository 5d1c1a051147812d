//! Shared test helpers.
#![allow(dead_code)]

use ebm_gpu::gpu::GpuContext;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Tests that could not run (all or part of) their checks here: (test name, reason).
static SKIPS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Records that the calling test skips (all or part of) its checks, for the list the test
/// binary prints after libtest's `test result` line (see [`print_skip_summary`]): libtest
/// counts such a test as passed, so without the list a skip would look like a pass.
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("main").to_string();
    let mut skips = SKIPS.lock().unwrap_or_else(|e| e.into_inner());
    if !skips.iter().any(|(t, r)| *t == test && r == reason) {
        skips.push((test, reason.to_string()));
    }
}

/// Runs when the test binary exits (after libtest's summary): lists the skipped tests by
/// reason. Written to the process's stderr directly (libtest's capture is over by then).
extern "C" fn print_skip_summary() {
    let skips = SKIPS.lock().unwrap_or_else(|e| e.into_inner());
    if skips.is_empty() {
        return;
    }
    let mut reasons: Vec<&str> = Vec::new();
    for (_, r) in skips.iter() {
        if !reasons.contains(&r.as_str()) {
            reasons.push(r);
        }
    }
    let mut err = std::io::stderr().lock();
    for reason in reasons {
        let tests: Vec<&str> = skips.iter().filter(|(_, r)| r == reason).map(|(t, _)| t.as_str()).collect();
        let _ = writeln!(err, "SKIPPED in {} of the tests above (counted as passed): {reason}", tests.len());
        for t in tests {
            let _ = writeln!(err, "    {t}");
        }
    }
    let _ =
        writeln!(err, "(CI=true makes a missing GPU adapter a failure; see docs/README.md, \"Where things are\")\n");
}

// The exit hook: an ELF .fini_array / Mach-O __mod_term_func entry runs after main returns and
// after std::process::exit (libtest's exit on failure) alike.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[used]
#[unsafe(link_section = ".fini_array")]
static SKIP_SUMMARY: extern "C" fn() = print_skip_summary;
#[cfg(target_os = "macos")]
#[used]
#[unsafe(link_section = "__DATA,__mod_term_func")]
static SKIP_SUMMARY: extern "C" fn() = print_skip_summary;

/// One GPU context per test binary. Without an adapter the GPU tests skip (saying so), except
/// under CI, where a missing adapter is a failure.
pub fn gpu() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Result<Arc<GpuContext>, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("GPU tests run on {}", ctx.describe());
            Ok(Arc::new(ctx))
        }
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI is set but no GPU adapter is usable: {e}"),
        Err(e) => Err(e.to_string()),
    });
    match ctx {
        Ok(ctx) => Some(ctx.clone()),
        Err(e) => {
            skip(&format!("GPU checks not run: {e}"));
            None
        }
    }
}

/// Largest absolute difference between two equal-length slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// max |a - b| / (1 + max |b|): a difference relative to the reference b's scale.
pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = 1.0 + b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    max_abs_diff(a, b) / scale
}

/// The 8x8 digits shipped in the repository (data/digits).
pub fn digits_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits")
}

/// The MNIST slice committed in the repository (tests/fixtures/mnist: the first 1000 training
/// and 200 test images with their labels, cut from the published IDX files), so a clone anywhere
/// runs the MNIST checks.
pub fn mnist_fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist")
}

/// Rust Debug formatting that must never reach a user's message (an Option, a Result, a
/// struct's braces, as in "--limit was None in this run, not Some(500)"): the first found.
pub fn debug_text(message: &str) -> Option<&'static str> {
    ["Some(", "None", "Ok(", "Err(", "{ "].into_iter().find(|p| message.contains(p))
}

/// Runs the `ebm` binary of this build with `args`.
pub fn ebm(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ebm")).args(args).output().expect("run ebm")
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh, empty directory under the system temp dir, unique to `tag` and this test process.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ebm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `bytes` gzip-compressed (fixtures for the readers of .gz files).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A path as a command-line argument.
pub fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// An RBM with random weights N(0, w_std^2) and biases N(0, b_std^2) from Philox: a model with
/// no structure to exploit (the selftest's, src/selftest/rbm.rs).
pub fn random_rbm(
    nv: usize,
    nh: usize,
    visible: ebm_gpu::rbm::Visible,
    w_std: f32,
    b_std: f32,
    seed: u64,
) -> ebm_gpu::rbm::Rbm {
    ebm_gpu::selftest::rbm::random_rbm(nv, nh, visible, w_std, b_std, seed).unwrap()
}

/// An edited `--ais-shard` JSON with its checksum made anew, as if the shard had written it:
/// what tests of the join's deeper checks give it (an edit left unsealed is refused first).
#[allow(dead_code)]
pub fn reseal_shard(shard: &serde_json::Value) -> Vec<u8> {
    let mut v = shard.clone();
    v.as_object_mut().unwrap().remove("checksum");
    v["checksum"] = ebm_gpu::io::checksum_text(&serde_json::to_string(&v).unwrap()).into();
    serde_json::to_vec(&v).unwrap()
}

/// A network of the text form `spec` with random weights from `seed`.
pub fn net(spec: &str, seed: u64) -> ebm_gpu::nn::Network {
    ebm_gpu::nn::Network::random(&ebm_gpu::nn::Architecture::parse(spec).unwrap(), seed).unwrap()
}

/// `n` standard normal values from `seed`.
pub fn randn(seed: u64, n: usize) -> Vec<f32> {
    ebm_gpu::rng::initial_states(seed, 0, 1, n, 1.0)
}

/// A random 2-16-16-1 MLP on dimensions [2, 0] of a 3-d point plus a Gaussian on all three:
/// a sliced network (batched GEMMs on the CPU, inlined and specialised to 2-d on the GPU).
pub fn sliced_mlp() -> ebm_gpu::energy::Energy {
    use ebm_gpu::energy::{Energy, spec::resolve_energy};
    use ebm_gpu::nn::{Activation, Network, NetworkInternals};
    let mlp = Network::random_mlp(&[2, 16, 16, 1], Activation::Silu, false, 43).unwrap();
    let gauss = resolve_energy(r#"{"type": "gaussian", "mean": [0, 1, -1], "std": [2, 1, 1.5]}"#).unwrap();
    let slice = Energy::Slice { indices: vec![2, 0], dim: 3, inner: Box::new(Energy::from_network(mlp)) };
    let energy = Energy::Sum { terms: vec![(0.7, slice), (1.0, gauss)] };
    energy.validate().unwrap();
    energy
}

/// Random points: N(0, 1.5^2) per coordinate from the Philox init stream.
pub fn points(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    ebm_gpu::rng::initial_states(seed, 0, n, dim, 1.5)
}
