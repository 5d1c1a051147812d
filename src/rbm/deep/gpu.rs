//! The DBM's block Gibbs step on the GPU: `rbm.wgsl`'s `visible_step` (v | h1, layer 1) and
//! `hidden_step` (h2 | h1, layer 2), then `dbm.wgsl`'s `h1_step` (h1 | v, h2); the twin of
//! [`super::cpu::DbmGibbs`] with the same half-step counters (3t, 3t + 1, 3t + 2). Many
//! steps per submit, nothing read back until [`GpuDbmGibbs::read`].

use super::Deep;
use super::cpu::Chains;
use crate::gpu::launch::{ParamSlots, bind_group, check_fits, dispatch};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::rbm::KernelParams;
use crate::rbm::gpu::kernel;
use crate::{Error, Result};
use std::sync::Arc;

/// Mirrors `DbmParams` in `shaders/rbm/dbm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DbmParams {
    pub rows: u32,
    pub n_vis: u32,
    pub n1: u32,
    pub n2: u32,
    pub seed: [u32; 2],
    pub step: u32,
    pub chain_offset: u32,
}

#[cfg(any(test, feature = "internals"))]
/// The params struct mirrored from the WGSL, for tests/layouts.rs.
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(DbmParams, "rbm/dbm.wgsl", "DbmParams", [rows, n_vis, n1, n2, seed, step, chain_offset])]
}

/// Gibbs steps recorded per submit at most.
pub(super) const STEPS_PER_SUBMIT: u32 = 32;

/// DBM block Gibbs chains on the GPU.
pub struct GpuDbmGibbs {
    ctx: Arc<GpuContext>,
    kernels: [Arc<Kernel>; 3],
    groups: [wgpu::BindGroup; 3],
    sizes: [usize; 3],
    rows: usize,
    seed: u64,
    chain_offset: u32,
    /// v, h1, h2 and their last conditional probabilities.
    pub(super) buffers: [wgpu::Buffer; 6],
    /// The two layers' parameters (the DBM trainer updates them in place).
    pub(super) thetas: [wgpu::Buffer; 2],
    params: ParamSlots,
    steps_done: u32,
}

impl GpuDbmGibbs {
    /// Chains starting from the h1 rows `h1` (as [`super::cpu::DbmGibbs::new`]).
    pub fn new(ctx: Arc<GpuContext>, dbm: &Deep, h1: &[f32], seed: u64, chain_offset: u32) -> Result<Self> {
        let (l1, l2) = dbm.dbm_layers()?;
        let sizes = [l1.n_vis, l1.n_hid, l2.n_hid];
        if h1.is_empty() || !h1.len().is_multiple_of(sizes[1]) {
            return Err(Error::invalid(
                "initial h1 states",
                format!("{} values are not whole rows of {} units", h1.len(), sizes[1]),
            ));
        }
        let rows = h1.len() / sizes[1];
        check_fits(&ctx, rows, *sizes.iter().max().expect("three sizes"), "chains")?;
        let kernels = [
            kernel(&ctx, "rbm/rbm.wgsl", "visible_step")?,
            kernel(&ctx, "rbm/rbm.wgsl", "hidden_step")?,
            kernel(&ctx, "rbm/dbm.wgsl", "h1_step")?,
        ];
        let (buffers, thetas, groups, params) = ctx.scoped("allocating DBM Gibbs chains", || {
            let t1 = ctx.storage_buffer("dbm theta1", bytemuck::cast_slice(&l1.theta));
            let t2 = ctx.storage_buffer("dbm theta2", bytemuck::cast_slice(&l2.theta));
            let z = |label, n: usize| ctx.zeroed_storage_buffer(label, (rows * n * 4) as u64);
            let [v, h1b, h2, pv, ph1, ph2] = [
                z("dbm v", sizes[0]),
                ctx.storage_buffer("dbm h1", bytemuck::cast_slice(h1)),
                z("dbm h2", sizes[2]),
                z("dbm p(v)", sizes[0]),
                z("dbm p(h1)", sizes[1]),
                z("dbm p(h2)", sizes[2]),
            ];
            let params = ParamSlots::new(&ctx, 3 * STEPS_PER_SUBMIT as u64);
            let rbm_size = std::mem::size_of::<KernelParams>() as u64;
            let dbm_size = std::mem::size_of::<DbmParams>() as u64;
            let groups = [
                bind_group(&ctx, &kernels[0], &params.buffer, rbm_size, &[&t1, &h1b, &pv, &v]),
                bind_group(&ctx, &kernels[1], &params.buffer, rbm_size, &[&t2, &h1b, &ph2, &h2]),
                bind_group(&ctx, &kernels[2], &params.buffer, dbm_size, &[&t1, &t2, &v, &h2, &ph1, &h1b]),
            ];
            ([v, h1b, h2, pv, ph1, ph2], [t1, t2], groups, params)
        })?;
        Ok(Self { ctx, kernels, groups, sizes, rows, seed, chain_offset, buffers, thetas, params, steps_done: 0 })
    }

    fn rbm_params(&self, l: [usize; 2], step: u32) -> KernelParams {
        KernelParams {
            rows: self.rows as u32,
            n_vis: l[0] as u32,
            n_hid: l[1] as u32,
            seed: crate::rng::key(self.seed),
            step,
            chain_offset: self.chain_offset,
            ..Default::default()
        }
    }

    pub fn run(&mut self, steps: u32) -> Result<()> {
        let ctx = self.ctx.clone();
        let mut left = steps;
        while left > 0 {
            let n = left.min(STEPS_PER_SUBMIT);
            ctx.submit_pass("DBM Gibbs steps", |pass| {
                self.record(pass, n);
                self.params.flush(&ctx);
            })?;
            ctx.wait()?;
            left -= n;
        }
        Ok(())
    }

    /// Records the next `n` (at most [`STEPS_PER_SUBMIT`]) steps into `pass`; the caller
    /// flushes the parameter slots before submitting.
    pub(super) fn record(&mut self, pass: &mut wgpu::ComputePass, n: u32) {
        let [nv, n1, n2] = self.sizes;
        for s in 0..n {
            let t = self.steps_done + s;
            let off_v = self.params.push(&self.rbm_params([nv, n1], 3 * t));
            let off_h2 = self.params.push(&self.rbm_params([n1, n2], 3 * t + 1));
            let p = DbmParams {
                rows: self.rows as u32,
                n_vis: nv as u32,
                n1: n1 as u32,
                n2: n2 as u32,
                seed: crate::rng::key(self.seed),
                step: 3 * t + 2,
                chain_offset: self.chain_offset,
            };
            let off_h1 = self.params.push(&p);
            let rows = self.rows as u32;
            dispatch(pass, &self.kernels[0], &self.groups[0], off_v, nv as u32, rows);
            dispatch(pass, &self.kernels[1], &self.groups[1], off_h2, n2 as u32, rows);
            dispatch(pass, &self.kernels[2], &self.groups[2], off_h1, n1 as u32, rows);
        }
        self.steps_done += n;
    }

    /// Continues the Gibbs counter from step `t` (a resumed training run).
    pub(super) fn set_step(&mut self, t: u32) {
        self.steps_done = t;
    }

    /// The next step's counter.
    pub(super) fn step(&self) -> u32 {
        self.steps_done
    }

    /// Flushes the parameter slots [`Self::record`] staged.
    pub(super) fn flush(&mut self) {
        self.params.flush(&self.ctx);
    }

    /// The chains' states and last conditional probabilities.
    pub fn read(&self) -> Result<Chains> {
        let r = self.rows as u64;
        let [nv, n1, n2] = self.sizes.map(|n| n as u64 * r * 4);
        let b = &self.buffers;
        let out =
            self.ctx.read_buffers(&[(&b[0], nv), (&b[1], n1), (&b[2], n2), (&b[3], nv), (&b[4], n1), (&b[5], n2)])?;
        let f = |k: usize| -> Vec<f32> { bytemuck::pod_collect_to_vec(&out[k]) };
        Ok(Chains { v: f(0), h1: f(1), h2: f(2), pv: f(3), ph1: f(4), ph2: f(5) })
    }
}
