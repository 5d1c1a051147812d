//! GPU launchers for `shaders/rbm/rbm.wgsl` (Gibbs half-steps), `rbm_update.wgsl` (CD/PCD update)
//! and `rbm_eval.wgsl` (reconstruction error, free energy).
//!
//! Training keeps parameters, momentum, persistent chains and statistics on the device. A call
//! to [`GpuTrainer::run`] uploads its batches into a ring of data slots, records every
//! dispatch of every batch (parameters in 256-byte uniform slots selected by dynamic offset)
//! into one submit, and waits; nothing is read back until the caller asks.

use super::train::{Batch, Method, TrainConfig, TrainState, Trainer};
use super::{KernelParams, Rbm, Visible};
use crate::gpu::launch::{ParamSlots, bind_group, check_fits, dispatch};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::{Error, Result};
use std::sync::Arc;

/// Data slots (batches) per submit during training.
const RING_SLOTS: usize = super::train::BATCHES_PER_CALL;

/// A kernel from one of the RBM shader files (they import only common modules).
pub(crate) fn kernel(ctx: &GpuContext, file: &str, entry: &str) -> Result<Arc<Kernel>> {
    let wgsl = crate::gpu::shader::assemble(file, &[])?;
    ctx.kernel(file, &wgsl, entry)
}

fn base_params(rbm: &Rbm) -> KernelParams {
    KernelParams {
        n_vis: rbm.n_vis as u32,
        n_hid: rbm.n_hid as u32,
        gaussian: (rbm.visible == Visible::Gaussian) as u32,
        ..Default::default()
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(bytes)
}

/// The Gibbs kernels for one context.
struct GibbsKernels {
    hidden: Arc<Kernel>,
    visible: Arc<Kernel>,
}

impl GibbsKernels {
    fn new(ctx: &GpuContext) -> Result<Self> {
        Ok(Self {
            hidden: kernel(ctx, "rbm/rbm.wgsl", "hidden_step")?,
            visible: kernel(ctx, "rbm/rbm.wgsl", "visible_step")?,
        })
    }
}

/// Block Gibbs chains on the GPU; the twin of [`super::cpu::CpuGibbs`] (step t: hidden
/// half-step 2t, visible half-step 2t + 1).
pub struct GpuGibbs {
    ctx: Arc<GpuContext>,
    k: GibbsKernels,
    rbm: Rbm,
    rows: usize,
    seed: u64,
    chain_offset: u32,
    v: wgpu::Buffer,
    h: wgpu::Buffer,
    ph: wgpu::Buffer,
    pv: wgpu::Buffer,
    bg_hidden: wgpu::BindGroup,
    bg_visible: wgpu::BindGroup,
    params: ParamSlots,
    steps_done: u32,
}

const GIBBS_STEPS_PER_SUBMIT: u32 = 32;

impl GpuGibbs {
    pub fn new(ctx: Arc<GpuContext>, rbm: &Rbm, initial: &[f32], seed: u64, chain_offset: u32) -> Result<Self> {
        rbm.check_finite()?;
        let rows = rbm.check_rows(initial, "initial visible states")?;
        if rows == 0 {
            return Err(Error::invalid("chains", "need at least one chain"));
        }
        check_fits(&ctx, rows, rbm.n_vis.max(rbm.n_hid), "chains")?;
        let k = GibbsKernels::new(&ctx)?;
        let (nv, nh) = (rbm.n_vis as u64, rbm.n_hid as u64);
        let (v, h, ph, pv, bg_hidden, bg_visible, params) = ctx.scoped("allocating Gibbs chains", || {
            let theta = ctx.storage_buffer("rbm theta", bytemuck::cast_slice(&rbm.theta));
            let v = ctx.storage_buffer("gibbs v", bytemuck::cast_slice(initial));
            let h = ctx.zeroed_storage_buffer("gibbs h", rows as u64 * nh * 4);
            let ph = ctx.zeroed_storage_buffer("gibbs p(h)", rows as u64 * nh * 4);
            let pv = ctx.zeroed_storage_buffer("gibbs p(v)", rows as u64 * nv * 4);
            let params = ParamSlots::new(&ctx, 2 * GIBBS_STEPS_PER_SUBMIT as u64);
            let size = std::mem::size_of::<KernelParams>() as u64;
            let bg_hidden = bind_group(&ctx, &k.hidden, &params.buffer, size, &[&theta, &v, &ph, &h]);
            let bg_visible = bind_group(&ctx, &k.visible, &params.buffer, size, &[&theta, &h, &pv, &v]);
            (v, h, ph, pv, bg_hidden, bg_visible, params)
        })?;
        Ok(Self {
            ctx,
            k,
            rbm: rbm.clone(),
            rows,
            seed,
            chain_offset,
            v,
            h,
            ph,
            pv,
            bg_hidden,
            bg_visible,
            params,
            steps_done: 0,
        })
    }

    pub fn run(&mut self, steps: u32) -> Result<()> {
        let mut left = steps;
        let ctx = self.ctx.clone();
        while left > 0 {
            let n = left.min(GIBBS_STEPS_PER_SUBMIT);
            ctx.submit_pass("Gibbs steps", |pass| {
                for s in 0..n {
                    let t = self.steps_done + s;
                    let mut p = base_params(&self.rbm);
                    p.rows = self.rows as u32;
                    p.seed = crate::rng::key(self.seed);
                    p.chain_offset = self.chain_offset;
                    p.step = 2 * t;
                    let off_h = self.params.push(&p);
                    p.step = 2 * t + 1;
                    let off_v = self.params.push(&p);
                    dispatch(pass, &self.k.hidden, &self.bg_hidden, off_h, self.rbm.n_hid as u32, self.rows as u32);
                    dispatch(pass, &self.k.visible, &self.bg_visible, off_v, self.rbm.n_vis as u32, self.rows as u32);
                }
                self.params.flush(&ctx);
            })?;
            ctx.wait()?;
            self.steps_done += n;
            left -= n;
        }
        Ok(())
    }

    /// (v, h, p(h), E[v | h]) after the last step.
    #[allow(clippy::type_complexity)] // four arrays named in the doc line above
    pub fn read(&self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>)> {
        let (r, nv, nh) = (self.rows as u64, self.rbm.n_vis as u64, self.rbm.n_hid as u64);
        let out = self.ctx.read_buffers(&[
            (&self.v, r * nv * 4),
            (&self.h, r * nh * 4),
            (&self.ph, r * nh * 4),
            (&self.pv, r * nv * 4),
        ])?;
        Ok((f32s(&out[0]), f32s(&out[1]), f32s(&out[2]), f32s(&out[3])))
    }
}

/// Per-row free energies and reconstruction errors of `data` on the GPU, in chunks that fit
/// the device. Reconstruction: h ~ p(h | v) at half-step 0 of `seed`, error against E[v | h].
pub struct GpuEval {
    ctx: Arc<GpuContext>,
    k: GibbsKernels,
    recon: Arc<Kernel>,
    free: Arc<Kernel>,
}

impl GpuEval {
    pub fn new(ctx: Arc<GpuContext>) -> Result<Self> {
        Ok(Self {
            k: GibbsKernels::new(&ctx)?,
            recon: kernel(&ctx, "rbm/rbm_eval.wgsl", "recon_error")?,
            free: kernel(&ctx, "rbm/rbm_eval.wgsl", "free_energy")?,
            ctx,
        })
    }

    fn chunk_rows(&self, rbm: &Rbm) -> usize {
        let l = self.ctx.limits();
        let binding = l.max_storage_buffer_binding_size as usize / (4 * rbm.n_vis.max(rbm.n_hid));
        binding.min(l.max_compute_workgroups_per_dimension as usize).clamp(1, 16384)
    }

    /// Free energy of each row; with `recon_seed`, also each row's reconstruction error.
    pub fn evaluate(&self, rbm: &Rbm, data: &[f32], recon_seed: Option<u64>) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        rbm.check_finite()?;
        let rows = rbm.check_rows(data, "data")?;
        let (nv, nh) = (rbm.n_vis, rbm.n_hid);
        let ctx = &self.ctx;
        let mut free = Vec::with_capacity(rows);
        let mut recon = recon_seed.map(|_| Vec::with_capacity(rows));
        let chunk = self.chunk_rows(rbm);
        let size = std::mem::size_of::<KernelParams>() as u64;
        let theta = ctx.storage_buffer("rbm theta", bytemuck::cast_slice(&rbm.theta));
        for first in (0..rows).step_by(chunk) {
            let n = chunk.min(rows - first);
            let out = ctx.scoped("evaluating the RBM", || -> Result<wgpu::Buffer> {
                let v = ctx.storage_buffer("eval v", bytemuck::cast_slice(&data[first * nv..(first + n) * nv]));
                let h = ctx.zeroed_storage_buffer("eval h", (n * nh * 4) as u64);
                let ph = ctx.zeroed_storage_buffer("eval p(h)", (n * nh * 4) as u64);
                let pv = ctx.zeroed_storage_buffer("eval p(v)", (n * nv * 4) as u64);
                let vs = ctx.zeroed_storage_buffer("eval v sample", (n * nv * 4) as u64);
                let out = ctx.zeroed_storage_buffer("eval out", (2 * n * 4) as u64);
                let mut params = ParamSlots::new(ctx, 4);
                let bg_free = bind_group(ctx, &self.free, &params.buffer, size, &[&theta, &v, &pv, &out]);
                let mut p = base_params(rbm);
                p.rows = n as u32;
                ctx.submit_pass("evaluating the RBM", |pass| {
                    let off = params.push(&p);
                    dispatch(pass, &self.free, &bg_free, off, n as u32, 1);
                    if let Some(seed) = recon_seed {
                        p.seed = crate::rng::key(seed);
                        p.chain_offset = first as u32;
                        let bg_h = bind_group(ctx, &self.k.hidden, &params.buffer, size, &[&theta, &v, &ph, &h]);
                        let bg_v = bind_group(ctx, &self.k.visible, &params.buffer, size, &[&theta, &h, &pv, &vs]);
                        let bg_r = bind_group(ctx, &self.recon, &params.buffer, size, &[&theta, &v, &pv, &out]);
                        p.step = 0;
                        let off = params.push(&p);
                        dispatch(pass, &self.k.hidden, &bg_h, off, nh as u32, n as u32);
                        p.step = 1;
                        let off = params.push(&p);
                        dispatch(pass, &self.k.visible, &bg_v, off, nv as u32, n as u32);
                        p.out_offset = n as u32;
                        let off = params.push(&p);
                        dispatch(pass, &self.recon, &bg_r, off, n as u32, 1);
                    }
                    params.flush(ctx);
                })?;
                Ok(out)
            })??;
            let values = f32s(&ctx.read_buffers(&[(&out, (2 * n * 4) as u64)])?[0]);
            free.extend_from_slice(&values[..n]);
            if let Some(r) = recon.as_mut() {
                r.extend_from_slice(&values[n..]);
            }
        }
        Ok((free, recon))
    }
}

/// CD-k / PCD-k training on the GPU.
pub struct GpuTrainer {
    ctx: Arc<GpuContext>,
    config: TrainConfig,
    rbm_shape: Rbm,
    data: Vec<f32>,
    order: Vec<u32>,
    rows: usize,
    step: u32,
    epoch: u32,
    k: GibbsKernels,
    update: Arc<Kernel>,
    recon: Arc<Kernel>,
    params: ParamSlots,
    ring: wgpu::Buffer,
    theta: wgpu::Buffer,
    velocity: wgpu::Buffer,
    chains: Option<wgpu::Buffer>,
    errors: wgpu::Buffer,
    bg_hid_data: wgpu::BindGroup,
    bg_vis_to_vk: wgpu::BindGroup,
    bg_hid_vk: wgpu::BindGroup,
    bg_hid_chains: Option<wgpu::BindGroup>,
    bg_vis_to_chains: Option<wgpu::BindGroup>,
    bg_recon: wgpu::BindGroup,
    bg_update: wgpu::BindGroup,
}

impl GpuTrainer {
    pub fn new(ctx: Arc<GpuContext>, config: &TrainConfig, state: TrainState, data: &[f32]) -> Result<Self> {
        config.validate()?;
        state.validate(config)?;
        let rbm = &state.rbm;
        let rows = rbm.check_rows(data, "training data")?;
        let (nv, nh) = (rbm.n_vis, rbm.n_hid);
        let width = config.batch.max(config.chains());
        check_fits(&ctx, width * RING_SLOTS, nv.max(nh), "batch rows x ring slots")?;
        check_fits(&ctx, 1, rows, "reconstruction errors")?;
        check_fits(&ctx, nh + 2, nv.max(nh), "parameter rows")?;
        let k = GibbsKernels::new(&ctx)?;
        let update = kernel(&ctx, "rbm/rbm_update.wgsl", "update")?;
        let recon = kernel(&ctx, "rbm/rbm_eval.wgsl", "recon_error")?;
        let slots = (RING_SLOTS as u32 * (config.half_steps_per_batch() + 3)) as u64;
        let size = std::mem::size_of::<KernelParams>() as u64;
        let b = |n: usize| (n * 4) as u64;
        let built = ctx.scoped("allocating training buffers", || {
            let params = ParamSlots::new(&ctx, slots);
            let ring = ctx.zeroed_storage_buffer("rbm data ring", b(RING_SLOTS * config.batch * nv));
            let theta = ctx.storage_buffer("rbm theta", bytemuck::cast_slice(&rbm.theta));
            let velocity = ctx.storage_buffer("rbm velocity", bytemuck::cast_slice(&state.velocity));
            let ph0 = ctx.zeroed_storage_buffer("rbm p(h|data)", b(config.batch * nh));
            let h = ctx.zeroed_storage_buffer("rbm h", b(width * nh));
            let phk = ctx.zeroed_storage_buffer("rbm p(h|model)", b(width * nh));
            let pv = ctx.zeroed_storage_buffer("rbm p(v)", b(width * nv));
            let vk = ctx.zeroed_storage_buffer("rbm v model", b(config.batch * nv));
            let errors = ctx.zeroed_storage_buffer("rbm recon errors", b(rows));
            let chains =
                state.chains.as_ref().map(|c| ctx.storage_buffer("rbm persistent chains", bytemuck::cast_slice(c)));
            let bg = |kern: &Kernel, bufs: &[&wgpu::Buffer]| bind_group(&ctx, kern, &params.buffer, size, bufs);
            let bg_hid_data = bg(&k.hidden, &[&theta, &ring, &ph0, &h]);
            let bg_vis_to_vk = bg(&k.visible, &[&theta, &h, &pv, &vk]);
            let bg_hid_vk = bg(&k.hidden, &[&theta, &vk, &phk, &h]);
            let bg_hid_chains = chains.as_ref().map(|c| bg(&k.hidden, &[&theta, c, &phk, &h]));
            let bg_vis_to_chains = chains.as_ref().map(|c| bg(&k.visible, &[&theta, &h, &pv, c]));
            let bg_recon = bg(&recon, &[&theta, &ring, &pv, &errors]);
            let v_neg = chains.as_ref().unwrap_or(&vk);
            let bg_update = bg(&update, &[&theta, &velocity, &ring, &ph0, v_neg, &phk]);
            (
                params,
                ring,
                theta,
                velocity,
                chains,
                errors,
                bg_hid_data,
                bg_vis_to_vk,
                bg_hid_vk,
                bg_hid_chains,
                bg_vis_to_chains,
                bg_recon,
                bg_update,
            )
        })?;
        let (
            params,
            ring,
            theta,
            velocity,
            chains,
            errors,
            bg_hid_data,
            bg_vis_to_vk,
            bg_hid_vk,
            bg_hid_chains,
            bg_vis_to_chains,
            bg_recon,
            bg_update,
        ) = built;
        Ok(Self {
            ctx,
            config: config.clone(),
            rbm_shape: Rbm { theta: Vec::new(), ..rbm.clone() },
            data: data.to_vec(),
            order: (0..rows as u32).collect(),
            rows,
            step: state.step,
            epoch: state.epoch,
            k,
            update,
            recon,
            params,
            ring,
            theta,
            velocity,
            chains,
            errors,
            bg_hid_data,
            bg_vis_to_vk,
            bg_hid_vk,
            bg_hid_chains,
            bg_vis_to_chains,
            bg_recon,
            bg_update,
        })
    }

    /// Records one batch whose rows sit in ring slot `slot`.
    fn encode_batch(&mut self, pass: &mut wgpu::ComputePass, batch: &Batch, slot: usize) {
        let (nv, nh) = (self.rbm_shape.n_vis as u32, self.rbm_shape.n_hid as u32);
        let rows = batch.rows as u32;
        let cfg = self.config.clone();
        let mut p = base_params(&self.rbm_shape);
        p.seed = crate::rng::key(cfg.seed);
        p.rows = rows;
        p.in_offset = (slot * cfg.batch) as u32;
        p.step = self.step;
        let off = self.params.push(&p);
        dispatch(pass, &self.k.hidden, &self.bg_hid_data, off, nh, rows);
        self.step += 1;
        p.in_offset = 0;
        let p_recon = p;
        let recon = move |this: &mut Self, pass: &mut wgpu::ComputePass| {
            let mut q = p_recon;
            q.in_offset = (slot * this.config.batch) as u32;
            q.out_offset = batch.start as u32;
            let off = this.params.push(&q);
            dispatch(pass, &this.recon, &this.bg_recon, off, rows, 1);
        };
        let neg_rows = match cfg.method {
            Method::Cd(k) => {
                for s in 0..k {
                    p.step = self.step;
                    let off = self.params.push(&p);
                    dispatch(pass, &self.k.visible, &self.bg_vis_to_vk, off, nv, rows);
                    self.step += 1;
                    if s == 0 {
                        recon(self, pass);
                    }
                    p.step = self.step;
                    let off = self.params.push(&p);
                    dispatch(pass, &self.k.hidden, &self.bg_hid_vk, off, nh, rows);
                    self.step += 1;
                }
                rows
            }
            Method::Pcd(k) => {
                p.step = self.step;
                let off = self.params.push(&p);
                dispatch(pass, &self.k.visible, &self.bg_vis_to_vk, off, nv, rows);
                self.step += 1;
                recon(self, pass);
                let nc = cfg.chains() as u32;
                p.rows = nc;
                // Made in `new` whenever the method is PCD (the validated state then has chains).
                let pcd_groups = "PCD bind groups exist for a PCD trainer";
                let (bg_h, bg_v) =
                    (self.bg_hid_chains.as_ref().expect(pcd_groups), self.bg_vis_to_chains.as_ref().expect(pcd_groups));
                for _ in 0..k {
                    p.step = self.step;
                    let off = self.params.push(&p);
                    dispatch(pass, &self.k.hidden, bg_h, off, nh, nc);
                    self.step += 1;
                    p.step = self.step;
                    let off = self.params.push(&p);
                    dispatch(pass, &self.k.visible, bg_v, off, nv, nc);
                    self.step += 1;
                }
                p.step = self.step;
                let off = self.params.push(&p);
                dispatch(pass, &self.k.hidden, bg_h, off, nh, nc);
                self.step += 1;
                nc
            }
        };
        let mut u = base_params(&self.rbm_shape);
        u.rows = rows;
        u.neg_rows = neg_rows;
        u.in_offset = (slot * cfg.batch) as u32;
        u.lr = batch.lr;
        u.momentum = cfg.momentum;
        u.weight_decay = cfg.weight_decay;
        let off = self.params.push(&u);
        dispatch(pass, &self.update, &self.bg_update, off, nv.max(nh), nh + 2);
    }
}

impl Trainer for GpuTrainer {
    fn set_order(&mut self, order: &[u32]) -> Result<()> {
        super::train::check_order(order, self.rows)?;
        self.order = order.to_vec();
        Ok(())
    }

    fn run(&mut self, batches: &[Batch]) -> Result<()> {
        let nv = self.rbm_shape.n_vis;
        for b in batches {
            if b.rows == 0 || b.rows > self.config.batch || b.start + b.rows > self.rows {
                return Err(Error::invalid(
                    "batch",
                    format!("{b:?} does not fit {} rows in batches of {}", self.rows, self.config.batch),
                ));
            }
        }
        let ctx = self.ctx.clone();
        for chunk in batches.chunks(RING_SLOTS) {
            ctx.scoped("RBM training batches", || -> Result<()> {
                for (slot, b) in chunk.iter().enumerate() {
                    let mut rows = Vec::with_capacity(b.rows * nv);
                    for &r in &self.order[b.start..b.start + b.rows] {
                        rows.extend_from_slice(&self.data[r as usize * nv..(r as usize + 1) * nv]);
                    }
                    ctx.queue().write_buffer(
                        &self.ring,
                        (slot * self.config.batch * nv * 4) as u64,
                        bytemuck::cast_slice(&rows),
                    );
                }
                ctx.submit_pass("RBM training batches", |pass| {
                    for (slot, b) in chunk.iter().enumerate() {
                        self.encode_batch(pass, b, slot);
                    }
                    self.params.flush(&ctx);
                })
            })??;
            ctx.wait()?;
        }
        Ok(())
    }

    fn recon_errors(&mut self) -> Result<Vec<f32>> {
        Ok(f32s(&self.ctx.read_buffers(&[(&self.errors, (self.rows * 4) as u64)])?[0]))
    }

    fn state(&mut self) -> Result<TrainState> {
        let n = (self.rbm_shape.n_vis * self.rbm_shape.n_hid + self.rbm_shape.n_vis + self.rbm_shape.n_hid) as u64 * 4;
        let mut parts = vec![(&self.theta, n), (&self.velocity, n)];
        let chain_bytes = (self.config.chains() * self.rbm_shape.n_vis * 4) as u64;
        if let Some(c) = &self.chains {
            parts.push((c, chain_bytes));
        }
        let out = self.ctx.read_buffers(&parts)?;
        let rbm = Rbm { theta: f32s(&out[0]), ..self.rbm_shape.clone() };
        Ok(TrainState {
            rbm,
            velocity: f32s(&out[1]),
            chains: out.get(2).map(|c| f32s(c)),
            step: self.step,
            epoch: self.epoch,
        })
    }
}
