//! Shared test helpers.
#![allow(dead_code)]

use ebm_gpu::gpu::GpuContext;
use std::sync::{Arc, OnceLock};

/// One GPU context per test binary. Without an adapter the GPU tests skip (saying so), except
/// under CI, where a missing adapter is a failure.
pub fn gpu() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("GPU tests run on {}", ctx.describe());
            Some(Arc::new(ctx))
        }
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI is set but no GPU adapter is usable: {e}"),
        Err(e) => {
            eprintln!("SKIPPING GPU test: {e}");
            None
        }
    })
    .clone()
}

/// Largest absolute difference between two equal-length slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The datasets in `shared/data` beside the repository (or `EBM_DATA_DIR`). Tests that need
/// them skip, saying so, when they are absent, except under CI, where that is a failure.
pub fn shared_data() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("EBM_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("digits").is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but the shared datasets are not at {}", dir.display());
    }
    eprintln!("SKIPPING: no shared datasets at {} (set EBM_DATA_DIR)", dir.display());
    None
}
