//! The DBM's PCD training on the GPU, the twin of [`super::train::run_dbm_epoch`] (same batches,
//! learning rates, Gibbs counters and updates; sums in another order, so parameters agree to
//! f32 rounding and the persistent chains bit for bit unless a uniform falls between the two
//! executors' probabilities).
//!
//! Per batch, one submit: the batch's rows are written to the GPU; the mean-field positive
//! phase alternates `dbm.wgsl`'s `h1_step` (mu1 | v, mu2; the first sweep reads an all-zero mu2,
//! as the CPU's first sweep leaves W2^T mu2 out) with `rbm.wgsl`'s `hidden_step` (mu2 | mu1),
//! keeping the probabilities; `visible_step` and `rbm_eval.wgsl`'s `recon_error` give the
//! reported error; [`GpuDbmGibbs`] records the k block Gibbs steps of the persistent chains;
//! `rbm_update.wgsl` updates both layers in place (layer 2 with its visible bias frozen at 0).
//! Nothing is read back until the epoch ends.

use super::gpu::{DbmParams, GpuDbmGibbs, STEPS_PER_SUBMIT};
use super::train::{DbmConfig, DbmState};
use crate::gpu::launch::{ParamSlots, bind_group, dispatch};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::rbm::KernelParams;
use crate::rbm::gpu::kernel;
use crate::rbm::train::{self, EpochReport, Method};
use crate::{Error, Result};
use std::sync::Arc;

/// Batches submitted between waits (bounds the staged uploads in flight).
const BATCHES_PER_WAIT: usize = 32;

struct Kernels {
    h1: Arc<Kernel>,
    hidden: Arc<Kernel>,
    visible: Arc<Kernel>,
    recon: Arc<Kernel>,
    update: Arc<Kernel>,
}

struct Groups {
    /// h1_step reading the all-zero mu2 (the first sweep), then the running one.
    mean_field_first: wgpu::BindGroup,
    mean_field_h1: wgpu::BindGroup,
    mean_field_h2: wgpu::BindGroup,
    recon_visible: wgpu::BindGroup,
    recon_error: wgpu::BindGroup,
    update: [wgpu::BindGroup; 2],
}

/// A DBM in training on the GPU: parameters, momentum and persistent chains stay there
/// between epochs; [`Self::run_epoch`] writes them back into the state it is given.
pub struct GpuDbmTrainer {
    ctx: Arc<GpuContext>,
    config: DbmConfig,
    gibbs: GpuDbmGibbs,
    kernels: Kernels,
    groups: Groups,
    params: ParamSlots,
    batch_rows: wgpu::Buffer,
    velocities: [wgpu::Buffer; 2],
    errors: wgpu::Buffer,
    error_capacity: usize,
    /// n_vis, n1, n2.
    sizes: [usize; 3],
}

impl GpuDbmTrainer {
    /// Uploads `state` (its model, momentum, h1 chains and Gibbs step) for training with
    /// `config` on data of `rows` rows.
    pub fn new(ctx: Arc<GpuContext>, state: &DbmState, config: &DbmConfig, rows: usize) -> Result<Self> {
        config.validate()?;
        let (l1, l2) = state.dbm.dbm_layers()?;
        let sizes = [l1.n_vis, l1.n_hid, l2.n_hid];
        let batch = config.train.batch;
        let mut gibbs = GpuDbmGibbs::new(ctx.clone(), &state.dbm, &state.chains.h1, config.train.seed, 0)?;
        gibbs.set_step(state.step);
        crate::gpu::launch::check_fits(&ctx, batch, sizes[0].max(sizes[1]), "rows per batch")?;
        let kernels = Kernels {
            h1: kernel(&ctx, "rbm/dbm.wgsl", "h1_step")?,
            hidden: kernel(&ctx, "rbm/rbm.wgsl", "hidden_step")?,
            visible: kernel(&ctx, "rbm/rbm.wgsl", "visible_step")?,
            recon: kernel(&ctx, "rbm/rbm_eval.wgsl", "recon_error")?,
            update: kernel(&ctx, "rbm/rbm_update.wgsl", "update")?,
        };
        let slots = 2 * config.mean_field as u64 + 4;
        let built = ctx.scoped("allocating the DBM trainer", || {
            let z = |label, floats: usize| ctx.zeroed_storage_buffer(label, (floats.max(1) * 4) as u64);
            let [nv, n1, n2] = sizes;
            let batch_rows = z("dbm batch rows", batch * nv);
            let [mu1, mu2, zeros] = [z("dbm mu1", batch * n1), z("dbm mu2", batch * n2), z("dbm zero mu2", batch * n2)];
            let [scratch1, scratch2] =
                [z("dbm mean-field draws h1", batch * n1), z("dbm mean-field draws h2", batch * n2)];
            let [recon_p, recon_s] = [z("dbm recon p(v)", batch * nv), z("dbm recon draws", batch * nv)];
            let velocities = [
                ctx.storage_buffer("dbm velocity 1", bytemuck::cast_slice(&state.velocity[0])),
                ctx.storage_buffer("dbm velocity 2", bytemuck::cast_slice(&state.velocity[1])),
            ];
            let errors = z("dbm recon errors", rows);
            let params = ParamSlots::new(&ctx, slots);
            let [t1, t2] = &gibbs.thetas;
            let [v, h1, h2, ..] = &gibbs.buffers;
            let dbm_size = std::mem::size_of::<DbmParams>() as u64;
            let rbm_size = std::mem::size_of::<KernelParams>() as u64;
            let (k, b) = (&kernels, &params.buffer);
            let groups = Groups {
                mean_field_first: bind_group(&ctx, &k.h1, b, dbm_size, &[t1, t2, &batch_rows, &zeros, &mu1, &scratch1]),
                mean_field_h1: bind_group(&ctx, &k.h1, b, dbm_size, &[t1, t2, &batch_rows, &mu2, &mu1, &scratch1]),
                mean_field_h2: bind_group(&ctx, &k.hidden, b, rbm_size, &[t2, &mu1, &mu2, &scratch2]),
                recon_visible: bind_group(&ctx, &k.visible, b, rbm_size, &[t1, &mu1, &recon_p, &recon_s]),
                recon_error: bind_group(&ctx, &k.recon, b, rbm_size, &[t1, &batch_rows, &recon_p, &errors]),
                update: [
                    bind_group(&ctx, &k.update, b, rbm_size, &[t1, &velocities[0], &batch_rows, &mu1, v, h1]),
                    bind_group(&ctx, &k.update, b, rbm_size, &[t2, &velocities[1], &mu1, &mu2, h1, h2]),
                ],
            };
            (batch_rows, velocities, errors, params, groups)
        })?;
        let (batch_rows, velocities, errors, params, groups) = built;
        Ok(Self {
            ctx,
            config: config.clone(),
            gibbs,
            kernels,
            groups,
            params,
            batch_rows,
            velocities,
            errors,
            error_capacity: rows,
            sizes,
        })
    }

    fn k(&self) -> u32 {
        match self.config.train.method {
            Method::Cd(k) | Method::Pcd(k) => k,
        }
    }

    /// Records the mean-field positive phase and the reconstruction error of `rows` batch rows,
    /// the errors landing at `out_offset`.
    fn record_positive(&mut self, pass: &mut wgpu::ComputePass, rows: u32, out_offset: u32) {
        let [nv, n1, n2] = self.sizes.map(|n| n as u32);
        let seed = crate::rng::key(self.config.train.seed);
        let dbm = DbmParams { rows, n_vis: nv, n1, n2, seed, step: 0, chain_offset: 0 };
        let rbm = |n_vis: u32, n_hid: u32| KernelParams { rows, n_vis, n_hid, seed, ..Default::default() };
        let (k, g) = (&self.kernels, &self.groups);
        for it in 0..self.config.mean_field {
            let off = self.params.push(&dbm);
            let h1_group = if it == 0 { &g.mean_field_first } else { &g.mean_field_h1 };
            dispatch(pass, &k.h1, h1_group, off, n1, rows);
            let off = self.params.push(&rbm(n1, n2));
            dispatch(pass, &k.hidden, &g.mean_field_h2, off, n2, rows);
        }
        let off = self.params.push(&rbm(nv, n1));
        dispatch(pass, &k.visible, &g.recon_visible, off, nv, rows);
        let off = self.params.push(&KernelParams { out_offset, ..rbm(nv, n1) });
        dispatch(pass, &k.recon, &g.recon_error, off, rows, 1);
    }

    /// Records both layers' updates from `rows` batch rows at learning rate `lr`.
    fn record_updates(&mut self, pass: &mut wgpu::ComputePass, rows: u32, lr: f32) {
        let cfg = &self.config.train;
        for (layer, [n_vis, n_hid]) in
            [[self.sizes[0], self.sizes[1]], [self.sizes[1], self.sizes[2]]].into_iter().enumerate()
        {
            let p = KernelParams {
                rows,
                n_vis: n_vis as u32,
                n_hid: n_hid as u32,
                neg_rows: cfg.batch as u32,
                lr,
                momentum: cfg.momentum,
                weight_decay: cfg.weight_decay,
                frozen_visible_bias: (layer == 1) as u32,
                ..Default::default()
            };
            let off = self.params.push(&p);
            dispatch(
                pass,
                &self.kernels.update,
                &self.groups.update[layer],
                off,
                n_vis.max(n_hid) as u32,
                n_hid as u32 + 2,
            );
        }
    }

    /// One epoch (0-based `epoch`) on `data`, as [`super::train::run_dbm_epoch`] runs it on the
    /// CPU; `state` receives the parameters, momentum, chains, step and epoch at its end.
    pub fn run_epoch(
        &mut self,
        state: &mut DbmState,
        data: &[f32],
        epoch: u32,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<EpochReport> {
        let start = std::time::Instant::now();
        let nv = self.sizes[0];
        let rows = state.dbm.layers[0].check_rows(data, "training data")?;
        if rows == 0 || rows > self.error_capacity {
            return Err(Error::invalid(
                "training data",
                format!("has {rows} rows; this trainer was made for 1..={}", self.error_capacity),
            ));
        }
        let cfg = self.config.train.clone();
        let order = train::epoch_order(rows, cfg.seed, epoch);
        let batches = train::epoch_batches(&cfg, rows, epoch);
        let ctx = self.ctx.clone();
        let mut v0 = Vec::with_capacity(cfg.batch * nv);
        for (b, batch) in batches.iter().enumerate() {
            v0.clear();
            for &r in &order[batch.start..batch.start + batch.rows] {
                v0.extend_from_slice(&data[r as usize * nv..(r as usize + 1) * nv]);
            }
            ctx.queue().write_buffer(&self.batch_rows, 0, bytemuck::cast_slice(&v0));
            let (n_rows, lr) = (batch.rows as u32, batch.lr);
            let mut left = self.k();
            let mut first = true;
            while first || left > 0 {
                let n = left.min(STEPS_PER_SUBMIT);
                left -= n;
                ctx.submit_pass("DBM training batch", |pass| {
                    if first {
                        self.record_positive(pass, n_rows, batch.start as u32);
                    }
                    self.gibbs.record(pass, n);
                    if left == 0 {
                        self.record_updates(pass, n_rows, lr);
                    }
                    self.params.flush(&ctx);
                    self.gibbs.flush();
                })?;
                first = false;
            }
            if (b + 1) % BATCHES_PER_WAIT == 0 {
                ctx.wait()?;
            }
            progress(b + 1, batches.len());
        }
        self.read_into(state)?;
        let errors: Vec<f32> = bytemuck::pod_collect_to_vec(&ctx.read_buffers(&[(&self.errors, rows as u64 * 4)])?[0]);
        for (k, l) in state.dbm.layers.iter().enumerate() {
            l.check_finite()
                .map_err(|e| Error::invalid("training", format!("epoch {}: layer {}: {e}", epoch + 1, k + 1)))?;
        }
        state.epoch = epoch + 1;
        let err: f64 = errors.iter().map(|&e| e as f64).sum();
        Ok(EpochReport { recon_error: err / rows as f64, seconds: start.elapsed().as_secs_f64() })
    }

    /// Parameters, momentum, chains and the Gibbs step into `state`.
    fn read_into(&self, state: &mut DbmState) -> Result<()> {
        let [t1, t2] = &self.gibbs.thetas;
        let [v1, v2] = &self.velocities;
        let sizes: Vec<u64> = state.dbm.layers.iter().map(|l| l.theta.len() as u64 * 4).collect();
        let out = self.ctx.read_buffers(&[(t1, sizes[0]), (t2, sizes[1]), (v1, sizes[0]), (v2, sizes[1])])?;
        for (k, layer) in state.dbm.layers.iter_mut().enumerate() {
            layer.theta = bytemuck::pod_collect_to_vec(&out[k]);
            state.velocity[k] = bytemuck::pod_collect_to_vec(&out[2 + k]);
        }
        state.chains = self.gibbs.read()?;
        state.step = self.gibbs.step();
        Ok(())
    }
}
