//! Energies and gradients of a batch of points on an executor: what AIS, the minimiser and
//! other host-driven loops ask of the energy at every step. The executors differ only here;
//! the loops around it are the same host code for both.

use super::{Energy, EnergyInternals};
use crate::Result;
use crate::gpu::GpuContext;
use rayon::prelude::*;
use std::sync::Arc;

/// Energies and gradients of a batch of points.
pub trait Evaluator {
    /// es [n] and gs [n, dim] at xs [n, dim].
    fn energy_grad(&mut self, xs: &[f32], es: &mut [f32], gs: &mut [f32]) -> Result<()>;
    /// The same for the caller's points `rows` (indices into its whole set, one per point of
    /// xs), for evaluators whose energy differs by point (a posterior's data term); those
    /// whose energy is the same everywhere ignore them.
    fn energy_grad_rows(&mut self, _rows: &[usize], xs: &[f32], es: &mut [f32], gs: &mut [f32]) -> Result<()> {
        self.energy_grad(xs, es, gs)
    }
    /// Hears that a long loop has finished step `k` of `of` (for progress lines); nothing by
    /// default.
    fn progress(&mut self, _k: usize, _of: usize) {}
}

/// The CPU executor: [`Energy::energy_grad_batch`] on blocks of points in parallel.
pub struct CpuEvaluator<'a>(pub &'a Energy);

impl Evaluator for CpuEvaluator<'_> {
    fn energy_grad(&mut self, xs: &[f32], es: &mut [f32], gs: &mut [f32]) -> Result<()> {
        let d = self.0.dim();
        let block = es.len().div_ceil(rayon::current_num_threads()).max(1);
        xs.par_chunks(block * d)
            .zip(gs.par_chunks_mut(block * d))
            .zip(es.par_chunks_mut(block))
            .for_each(|((x, g), e)| self.0.energy_grad_batch(x, g, e));
        Ok(())
    }
}

/// The GPU: the energy's kernels ([`super::gpu::energy_grad_batch`]).
pub struct GpuEvaluator<'a> {
    pub ctx: Arc<GpuContext>,
    pub energy: &'a Energy,
}

impl Evaluator for GpuEvaluator<'_> {
    fn energy_grad(&mut self, xs: &[f32], es: &mut [f32], gs: &mut [f32]) -> Result<()> {
        let (e, g) = super::gpu::energy_grad_batch(&self.ctx, self.energy, xs)?;
        es.copy_from_slice(&e);
        gs.copy_from_slice(&g);
        Ok(())
    }
}

/// The executor's batched energies: the GPU's kernels where the energy has them (analytic
/// terms and MLPs inlined, or networks of layer kernels on their own or summed), else the CPU.
pub fn evaluator<'a>(ctx: Option<&Arc<GpuContext>>, energy: &'a Energy) -> Box<dyn Evaluator + 'a> {
    match ctx {
        Some(ctx) if !energy.has_layered_net() || energy.network_terms().is_ok() => {
            Box::new(GpuEvaluator { ctx: ctx.clone(), energy })
        }
        _ => Box::new(CpuEvaluator(energy)),
    }
}
