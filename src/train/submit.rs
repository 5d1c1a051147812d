//! How both GPU trainers (the fused MLP trainer, train/gpu.rs, and the layer-kernel trainer,
//! train/layered.rs) run: up to [`STEPS_PER_SUBMIT`] steps recorded per submit, only the metrics
//! rows read back.

use super::{METRIC_FLOATS, StepMetrics};
use crate::gpu::GpuContext;
use crate::{Error, Result};

/// Training steps recorded per submit.
pub const STEPS_PER_SUBMIT: u32 = 16;

/// A GPU trainer as [`run_in_submits`] drives it.
pub(super) trait SubmitSteps {
    /// Steps done.
    fn steps_done(&self) -> u32;
    /// Records and submits the next `n` (<= [`STEPS_PER_SUBMIT`]) steps, metrics in rows 0..n.
    fn submit(&mut self, n: u32) -> Result<()>;
    /// The buffer whose first rows are the metrics, and its context.
    fn metrics(&self) -> (&GpuContext, &wgpu::Buffer);
}

/// `steps` steps as submits of up to [`STEPS_PER_SUBMIT`], reading back only the metrics rows.
pub(super) fn run_in_submits(t: &mut impl SubmitSteps, steps: u32) -> Result<Vec<StepMetrics>> {
    if t.steps_done().checked_add(steps).is_none() {
        return Err(Error::invalid("steps", "the step counter would pass 2^32"));
    }
    let mut out = Vec::with_capacity(steps as usize);
    let mut left = steps;
    while left > 0 {
        let n = left.min(STEPS_PER_SUBMIT);
        let first = t.steps_done();
        t.submit(n)?;
        let (ctx, metrics) = t.metrics();
        let rows = ctx.read_buffers(&[(metrics, (4 * METRIC_FLOATS as u32 * n) as u64)])?;
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(&rows[0]);
        out.extend(
            values
                .chunks_exact(METRIC_FLOATS)
                .enumerate()
                .map(|(r, row)| StepMetrics::from_row(first + r as u32 + 1, row)),
        );
        left -= n;
    }
    Ok(out)
}
