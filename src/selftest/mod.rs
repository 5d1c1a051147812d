//! `ebm selftest`: every kernel family run on the adapter in use against its CPU twin, from one
//! seed, with the tolerances of the test suite (which runs these same checks: tests/selftest.rs).
//!
//! A check returns a [`Measure`]: the largest difference it saw, the tolerance it allows, and
//! whether the kernel passed (some checks also count chains that an accept decision at rounding
//! level sent down another path, which the test suite allows in small numbers). A check that
//! returns an error (an adapter without a limit a kernel needs, a device lost) or panics fails
//! on its own row; the others still run.
//!
//! `EBM_SELFTEST_BREAK=NAME` breaks one shader module on purpose (see
//! [`crate::gpu::shader::BREAKABLE`]), so a user or the test suite can see a broken kernel fail.

pub mod energies;
pub mod images;
pub mod rbm;
pub mod samplers;
pub mod train;

use crate::Result;
use crate::gpu::GpuContext;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

/// How much work each check does: `Quick` (seconds on a software adapter) or `Full` (the
/// test suite's sizes). Tolerances are the same for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Quick,
    Full,
}

impl Size {
    /// `quick` on a quick run, `full` otherwise.
    pub fn pick<T>(self, quick: T, full: T) -> T {
        match self {
            Size::Quick => quick,
            Size::Full => full,
        }
    }
}

/// What one check measured.
#[derive(Clone, Debug)]
pub struct Measure {
    /// The largest difference between the GPU and the CPU twin (relative where `detail` says).
    pub error: f64,
    /// The largest difference the check allows.
    pub tolerance: f64,
    /// Whether the kernel passed: `error <= tolerance` and the check's other conditions.
    pub passed: bool,
    /// What was compared, in a few words.
    pub detail: String,
}

impl Measure {
    /// A measure that passes when `error <= tolerance` (NaN fails).
    pub fn within(error: f64, tolerance: f64, detail: impl Into<String>) -> Self {
        Measure { error, tolerance, passed: error <= tolerance, detail: detail.into() }
    }

    /// Several measures as one: the worst ratio of error to tolerance, all must pass.
    pub fn all(parts: Vec<Measure>) -> Self {
        let worst = parts
            .iter()
            .max_by(|a, b| ratio(a).partial_cmp(&ratio(b)).unwrap_or(std::cmp::Ordering::Greater))
            .cloned()
            .unwrap_or_else(|| Measure::within(f64::NAN, 0.0, "nothing compared"));
        let passed = !parts.is_empty() && parts.iter().all(|m| m.passed);
        let failed: Vec<&str> = parts.iter().filter(|m| !m.passed).map(|m| m.detail.as_str()).collect();
        let detail = if failed.is_empty() { worst.detail.clone() } else { format!("FAILED: {}", failed.join("; ")) };
        Measure { error: worst.error, tolerance: worst.tolerance, passed, detail }
    }
}

fn ratio(m: &Measure) -> f64 {
    if m.error.is_nan() { f64::INFINITY } else { m.error / m.tolerance.max(f64::MIN_POSITIVE) }
}

/// One kernel family's check.
pub struct Check {
    /// Short name, as `--only` takes it.
    pub name: &'static str,
    /// The WGSL kernels it runs.
    pub kernels: &'static str,
    /// The check itself: an error or a panic fails its row only.
    pub run: fn(&Arc<GpuContext>, Size) -> Result<Measure>,
}

/// Every check, in the order the table lists them.
pub const CHECKS: &[Check] = &[
    Check { name: "rng", kernels: "rng_kat (Philox4x32-10, Box-Muller)", run: energies::rng },
    Check { name: "energy-analytic", kernels: "energy_eval + energy_analytic", run: energies::analytic },
    Check { name: "energy-mlp", kernels: "energy_eval + fused MLP", run: energies::mlp },
    Check { name: "nn-layers", kernels: "nn_gemm, nn_conv2d, nn_elementwise, nn_head", run: energies::layers },
    Check { name: "ula", kernels: "langevin", run: samplers::ula },
    Check { name: "mala", kernels: "langevin", run: samplers::mala },
    Check { name: "hmc", kernels: "hmc", run: samplers::hmc },
    Check { name: "rwmh", kernels: "rwmh", run: samplers::rwmh },
    Check { name: "tempering", kernels: "langevin + tempering swaps", run: samplers::tempering },
    Check { name: "mlp-fused", kernels: "langevin, per-chain MLP", run: samplers::mlp_fused },
    Check { name: "mlp-tiled", kernels: "langevin_tiled + mlp_tiled", run: samplers::mlp_tiled },
    Check { name: "layered", kernels: "langevin_layered + layer kernels", run: samplers::layered },
    Check { name: "rbm-gibbs", kernels: "rbm", run: rbm::gibbs },
    Check { name: "rbm-cd", kernels: "rbm + rbm_update", run: rbm::cd },
    Check { name: "rbm-ais", kernels: "rbm_ais", run: rbm::ais },
    Check { name: "train-mlp", kernels: "train (fused MLP trainer)", run: train::mlp },
    Check { name: "train-layered", kernels: "train_layered + layer kernels", run: train::layered },
    Check { name: "train-dsm", kernels: "train_layered + jets", run: train::dsm },
    Check { name: "restore", kernels: "restore + layer kernels", run: images::restore },
    Check { name: "image-upload", kernels: "image_from_pixels", run: images::upload },
];

/// One check's row of the table.
pub struct Outcome {
    pub name: &'static str,
    pub kernels: &'static str,
    /// The measure, or why the check could not run (an error or a panic's message).
    pub result: std::result::Result<Measure, String>,
    pub seconds: f64,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.result.as_ref().is_ok_and(|m| m.passed)
    }
}

/// The checks `only` names (all when empty); an unknown name is an error naming the known ones.
pub fn select(only: &[String]) -> std::result::Result<Vec<&'static Check>, String> {
    if only.is_empty() {
        return Ok(CHECKS.iter().collect());
    }
    only.iter()
        .map(|name| {
            CHECKS.iter().find(|c| c.name == name).ok_or_else(|| {
                let names: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
                format!("no check named {name:?}; the checks are {}", names.join(", "))
            })
        })
        .collect()
}

/// Runs one check, catching its errors and panics.
pub fn run_one(check: &Check, ctx: &Arc<GpuContext>, size: Size) -> Outcome {
    let start = Instant::now();
    let result = match catch_unwind(AssertUnwindSafe(|| (check.run)(ctx, size))) {
        Ok(Ok(measure)) => Ok(measure),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    };
    Outcome { name: check.name, kernels: check.kernels, result, seconds: start.elapsed().as_secs_f64() }
}

/// The adapter's name, driver and the limits the kernels depend on, one line each.
pub fn describe_adapter(ctx: &GpuContext) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "adapter: {}", ctx.describe());
    if let Some(info) = ctx.adapter_info() {
        let _ =
            writeln!(out, "driver:  {} {} ({:?}, {:?})", info.driver, info.driver_info, info.backend, info.device_type);
    }
    let l = ctx.limits();
    let _ = writeln!(
        out,
        "limits:  storage binding {} MiB, buffer {} MiB, {} workgroups/dim, {} invocations/group, {} KiB workgroup storage",
        l.max_storage_buffer_binding_size / (1 << 20),
        l.max_buffer_size / (1 << 20),
        l.max_compute_workgroups_per_dimension,
        l.max_compute_invocations_per_workgroup,
        l.max_compute_workgroup_storage_size / 1024
    );
    out
}

/// The table: one row per check (name, kernels, max error, tolerance, result, seconds, detail).
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<44} {:>10} {:>10} {:<6} {:>7}  detail",
        "check", "kernels", "max error", "tolerance", "result", "time"
    );
    for o in outcomes {
        let (error, tolerance, result, detail) = match &o.result {
            Ok(m) => (
                format!("{:.2e}", m.error),
                format!("{:.1e}", m.tolerance),
                if m.passed { "pass" } else { "FAIL" },
                m.detail.clone(),
            ),
            Err(e) => ("-".into(), "-".into(), "FAIL", format!("error: {e}")),
        };
        let _ = writeln!(
            out,
            "{:<16} {:<44} {:>10} {:>10} {:<6} {:>6.1}s  {detail}",
            o.name, o.kernels, error, tolerance, result, o.seconds
        );
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    let _ = writeln!(out, "{} passed, {failed} failed", outcomes.len() - failed);
    out
}

/// The outcomes as JSON (for the device run's report).
pub fn to_json(ctx: &GpuContext, size: Size, outcomes: &[Outcome]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(m) => serde_json::json!({"check": o.name, "kernels": o.kernels, "max_error": finite_or_null(m.error),
                "tolerance": m.tolerance, "passed": m.passed, "seconds": o.seconds, "detail": m.detail}),
            Err(e) => serde_json::json!({"check": o.name, "kernels": o.kernels, "passed": false, "seconds": o.seconds, "error": e}),
        })
        .collect();
    let info = ctx.adapter_info();
    serde_json::json!({
        "adapter": ctx.describe(),
        "driver": info.map(|i| format!("{} {}", i.driver, i.driver_info)),
        "size": if size == Size::Quick { "quick" } else { "full" },
        "passed": outcomes.iter().filter(|o| o.passed()).count(),
        "failed": outcomes.iter().filter(|o| !o.passed()).count(),
        "checks": rows,
    })
}

fn finite_or_null(x: f64) -> serde_json::Value {
    if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null }
}

/// max |a - b|.
pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, |m, d| if d.is_nan() || m.is_nan() { f64::NAN } else { m.max(d) })
}

/// max |a - b| / (1 + max |b|): a difference relative to the reference's scale.
pub(crate) fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    let scale = 1.0 + b.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    max_abs_diff(a, b) / scale
}

/// Chains of `d` coordinates whose states differ by more than `tol`, and the largest
/// difference among the others: chain samplers with an accept test may send a chain down
/// another path when log u lands within rounding of log alpha.
pub(crate) fn chains_apart(a: &[f32], b: &[f32], d: usize, tol: f32) -> (usize, f64) {
    let mut apart = 0;
    let mut worst = 0.0f64;
    for (x, y) in a.chunks(d).zip(b.chunks(d)) {
        let diff = max_abs_diff(x, y);
        if !(diff <= tol as f64) {
            apart += 1;
        } else {
            worst = worst.max(diff);
        }
    }
    (apart + a.len().abs_diff(b.len()) / d.max(1), worst)
}
