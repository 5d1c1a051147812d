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
