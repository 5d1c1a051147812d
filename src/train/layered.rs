//! The GPU executor of training steps for networks that run through the batched layer kernels
//! (convolutions, several outputs, any width): `shaders/train/train_layered.wgsl` around two
//! [`GpuNetwork`] passes that share one set of [`NetBuffers`]: energies and dE/dx of the B
//! negatives at every Langevin step, and the forward, head and parameter-gradient pass over
//! the 2B points of the loss. Parameters, optimizer moments, replay buffer and metrics stay on
//! the device; [`LayeredTrainer::run`] records up to [`STEPS_PER_SUBMIT`] steps per submit and
//! reads back only the metrics rows. Score matching ([`super::score`]) runs no negatives: a
//! network pass for DSM's dE/dx, then a [`GpuJet`] pass for the loss's parameter gradient.
//! CPU twin: [`super::cpu::CpuTrainer`].

use super::side_gpu::{EncoderSlots, GpuSide};
use super::submit::{STEPS_PER_SUBMIT, SubmitSteps, run_in_submits};
use super::{Loss, METRIC_FLOATS, StepMetrics, StepSettings, TrainConfig, TrainState, Trainer};
use crate::gpu::launch::{ParamSlots, WG, bind_group, check_fits, dispatch, workgroups};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::nn::gpu::{NnKernels, Slice};
use crate::nn::gpu_jet::{GpuJet, JetSeeds};
use crate::nn::gpu_net::{GpuNetwork, NetBuffers, max_batch};
use crate::nn::{Network, NetworkInternals};
use crate::{Error, Result};
use std::sync::Arc;

/// `TrainLayeredParams` of shaders/train/train_layered.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct TrainLayeredParams {
    seed: [u32; 2],
    step: u32,
    data_rows: u32,
    capacity: u32,
    position: u32,
    batch: u32,
    dim: u32,
    k: u32,
    loss: u32,
    metrics_row: u32,
    optimizer: u32,
    n_net: u32,
    outputs: u32,
    row_stride: u32,
    blocks: u32,
    levels: u32,
    rademacher: u32,
    /// DSM: 1 for a noise-conditional model (the residual's factor is 1, not σ).
    conditional: u32,
    sigma_max: f32,
    sigma_min: f32,
    /// InfoNCE: given second views, the image shape its views move (height 0: flat points),
    /// the draws of [`super::contrastive::Augment`] (the turn in radians) and T.
    paired: u32,
    channels: u32,
    height: u32,
    width: u32,
    view_shift: u32,
    view_rotate: f32,
    view_zoom: f32,
    view_noise: f32,
    temperature: f32,
    /// reset_prob .. grad_clamp of the WGSL struct.
    settings: StepSettings,
}

#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        TrainLayeredParams,
        "train/train_layered.wgsl",
        "TrainLayeredParams",
        [
            seed,
            step,
            data_rows,
            capacity,
            position,
            batch,
            dim,
            k,
            loss,
            metrics_row,
            optimizer,
            n_net,
            outputs,
            row_stride,
            blocks,
            levels,
            rademacher,
            conditional,
            sigma_max,
            sigma_min,
            paired,
            channels,
            height,
            width,
            view_shift,
            view_rotate,
            view_zoom,
            view_noise,
            temperature,
            settings.reset_prob,
            settings.step_size,
            settings.noise_std,
            settings.alpha,
            settings.margin,
            settings.lr,
            settings.bias1,
            settings.bias2,
            settings.beta1,
            settings.beta2,
            settings.eps,
            settings.weight_decay,
            settings.clip_norm,
            settings.grad_clamp
        ]
    )]
}

/// Where things live in the `work` buffer (floats; the shader derives the same offsets).
struct Layout {
    points: usize,
    dx: usize,
    energies: usize,
    len: usize,
}

impl Layout {
    /// The points region holds [`blocks`] row blocks of B points; InfoNCE's scratch (K
    /// features per point) follows the scalars.
    fn new(config: &TrainConfig, outputs: usize) -> Self {
        let (batch, dim) = (config.batch, config.dim());
        let points = STEPS_PER_SUBMIT as usize * METRIC_FLOATS;
        let dx = points + blocks(config.loss) * batch * dim;
        let energies = dx + batch * dim;
        // unit features and norms (2B (K + 1)), row and column statistics (4B)
        let scratch = if config.loss.uses_views() { 2 * batch * (outputs + 1) + 4 * batch } else { 0 };
        // energies (3B), loss weights (2B), reset flags (B), scalars (4)
        Self { points, dx, energies, len: energies + 6 * batch + 4 + scratch }
    }
}

/// Row blocks of B points a loss's network passes take: positives and negatives, or score
/// matching's jet (order + 1).
fn blocks(loss: Loss) -> usize {
    match loss {
        Loss::Ssm { .. } => 3,
        _ => 2,
    }
}

/// The network passes of a step.
enum Passes {
    /// Energies and dE/dx of the B negatives at every Langevin step, the forward, head and
    /// parameter-gradient pass over the 2B points of the loss, and for a latent EBM the energies
    /// and dE/d[x, z] of the B positives (its encoder's gradient).
    Contrastive { negatives: GpuNetwork, loss: GpuNetwork, positives: Option<GpuNetwork> },
    /// DSM's energies and dE/dx at the noisy points, and the jet pass.
    Score { input: Option<GpuNetwork>, jet: GpuJet },
    /// InfoNCE: the forward and parameter-gradient pass over the 2B views (no negatives).
    Pairs { loss: GpuNetwork },
}

struct Kernels {
    start: Arc<Kernel>,
    noise: Arc<Kernel>,
    langevin: Arc<Kernel>,
    store: Arc<Kernel>,
    positives: Arc<Kernel>,
    loss: Arc<Kernel>,
    scale: Arc<Kernel>,
    grad_norm: Arc<Kernel>,
    optimizer: Arc<Kernel>,
    cross_entropy: Arc<Kernel>,
    score_points: Arc<Kernel>,
    dsm_directions: Arc<Kernel>,
    score_metrics: Arc<Kernel>,
    views: Arc<Kernel>,
    info_nce: Arc<Kernel>,
}

pub struct LayeredTrainer {
    ctx: Arc<GpuContext>,
    config: TrainConfig,
    /// The network's architecture (its parameters live on the device).
    net_shape: Network,
    rows: usize,
    step: u32,
    lr_scale: f32,
    kernels: Kernels,
    slots: ParamSlots,
    work: wgpu::Buffer,
    replay: wgpu::Buffer,
    moments: wgpu::Buffer,
    _data: wgpu::Buffer,
    bind: wgpu::BindGroup,
    net_buffers: NetBuffers,
    passes: Passes,
    /// langevin_step's 2-D dispatch: invocations per row, rows.
    langevin_grid: (u32, u32),
    /// The side network: cooperative learning's generator, or a latent EBM's encoder.
    side: Option<GpuSide>,
}

impl LayeredTrainer {
    pub fn new(ctx: Arc<GpuContext>, config: &TrainConfig, state: TrainState, data: &[f32]) -> Result<Self> {
        Self::with_labels(ctx, config, state, data, &[])
    }

    /// A trainer whose data rows carry class labels (needed by, and only used by, JEM).
    pub fn with_labels(
        ctx: Arc<GpuContext>,
        config: &TrainConfig,
        state: TrainState,
        data: &[f32],
        labels: &[u32],
    ) -> Result<Self> {
        let d = config.dim();
        let rows = config.data_rows(data)?;
        config.validate(rows)?;
        state.validate(config)?;
        let jem = config.loss == Loss::Jem;
        if jem {
            super::check_jem_network(&state.net)?;
            super::check_labels(labels, rows, state.net.outputs)?;
        }
        if config.loss.uses_views() {
            super::contrastive::check(&state.net.view(), config)?;
        }
        let net = &state.net;
        let b = config.batch;
        let n_net = net.param_count();
        let fits = max_batch(&ctx, net);
        let blocks = blocks(config.loss);
        if blocks * b > fits {
            return Err(Error::Limit(format!(
                "--batch {b}: the {blocks} x {b} points of a training step do not fit the storage-binding limit \
                 for this network's widest layer here (at most {} points); use --batch {} or less",
                fits,
                fits / blocks
            )));
        }
        let layout = Layout::new(config, net.outputs);
        check_fits(&ctx, 1, layout.len, "training scratch (batch points)")?;
        // One binding (no dispatch runs per row): the box and noise, the rows, JEM's labels.
        check_fits(&ctx, 1, 4 * d + data.len() + rows, "training data and labels")?;
        check_fits(&ctx, config.buffer_capacity, d, "replay buffer")?;
        check_fits(&ctx, 1, 2 * (n_net + 2), "optimizer moments")?;
        check_fits(&ctx, (n_net + 1).div_ceil(WG as usize), 1, "parameter workgroups")?;
        check_fits(&ctx, (2 * b * net.outputs).div_ceil(WG as usize), 1, "output workgroups")?;
        // Per invocation: a row copy or reset (D), the loss reduction's share of the batch with
        // NCE's noise densities and the radius (3 D per point), the norm's share of the parameters.
        ctx.check_loop_budget("a training row copy", 2 * d as u64)?;
        ctx.check_loop_budget("the training loss reduction", (b.div_ceil(256) * (3 * d + 2)) as u64)?;
        ctx.check_loop_budget("the gradient norm", (n_net + 1).div_ceil(256) as u64)?;
        if config.loss.uses_views() {
            // A view (a bilinear read per value), and the loss's similarities per line.
            ctx.check_loop_budget("an InfoNCE view", 8 * d as u64)?;
            ctx.check_loop_budget("the InfoNCE loss", (b.div_ceil(256) * 8 * b * net.outputs) as u64)?;
        }
        let draws = d.div_ceil(4);
        let total = (b * draws) as u32;
        let max_x = ctx.limits().max_compute_workgroups_per_dimension * WG;
        let row = total.min(max_x).div_ceil(WG) * WG;
        let langevin_grid = (row, total.div_ceil(row));

        let wgsl = crate::gpu::shader::assemble("train/train_layered.wgsl", &[])?;
        let k = |entry: &str| ctx.kernel("train/train_layered.wgsl", &wgsl, entry);
        let kernels = Kernels {
            start: k("negatives_start")?,
            noise: k("negatives_noise")?,
            langevin: k("langevin_step")?,
            store: k("negatives_store")?,
            positives: k("positives")?,
            loss: k("loss_weights")?,
            scale: k("scale_output_grads")?,
            grad_norm: k("grad_norm")?,
            optimizer: k("optimizer_step")?,
            cross_entropy: k("cross_entropy")?,
            score_points: k("score_points")?,
            dsm_directions: k("dsm_directions")?,
            score_metrics: k("score_metrics")?,
            views: k("infonce_views")?,
            info_nce: k("infonce_loss")?,
        };
        let mut moments = state.m.clone();
        moments.extend(&state.v);
        moments.extend([state.log_z, 0.0]);
        let mut data_block: Vec<f32> = [&config.box_lo, &config.box_hi, &config.noise_mean, &config.noise_std]
            .iter()
            .flat_map(|v| v.iter().copied())
            .collect();
        data_block.extend_from_slice(data);
        if jem {
            data_block.extend(labels.iter().map(|&l| l as f32));
        }
        let per_step = if config.loss.samples_negatives() { config.langevin.steps as u64 + 1 } else { 1 }
            + state.side.is_some() as u64;
        let nn = NnKernels::new(ctx.clone());
        let bytes = |v: &[f32]| bytemuck::cast_slice::<f32, u8>(v).to_vec();
        let (slots, work, replay, moments, data_buffer, bind, net_buffers, passes, side) =
            ctx.scoped("allocating training buffers", || -> Result<_> {
                let slots = ParamSlots::new(&ctx, STEPS_PER_SUBMIT as u64 * per_step);
                let work = ctx.zeroed_storage_buffer("train work", 4 * layout.len as u64);
                let replay = if state.replay.is_empty() {
                    ctx.zeroed_storage_buffer("replay buffer", 4)
                } else {
                    ctx.storage_buffer("replay buffer", &bytes(&state.replay))
                };
                let moments = ctx.storage_buffer("optimizer moments", &bytes(&moments));
                let data_buffer = ctx.storage_buffer("train data", &bytes(&data_block));
                let net_buffers = NetBuffers::new(&ctx, net, blocks * b)?;
                let points = Slice::new(&work, layout.points);
                let energies = Slice::new(&work, layout.energies);
                let passes = match config.loss {
                    Loss::Dsm { .. } | Loss::Ssm { .. } => {
                        let dsm = matches!(config.loss, Loss::Dsm { .. });
                        let input = dsm
                            .then(|| {
                                let dx = Some(Slice::new(&work, layout.dx));
                                GpuNetwork::new(&nn, net, &net_buffers, b, points, energies, dx, false, 1.0)
                            })
                            .transpose()?;
                        // DSM's directions carry 1 / B already; SSM: (E'²/2 - E'') / B.
                        let inv_b = 1.0 / b as f32;
                        let seeds = match dsm {
                            true => JetSeeds { e1_scale: 0.0, e1_shift: 1.0, e2: 0.0 },
                            false => JetSeeds { e1_scale: inv_b, e1_shift: 0.0, e2: -inv_b },
                        };
                        let jet = GpuJet::new(&nn, net, &net_buffers, b, blocks - 1, points, energies, seeds)?;
                        Passes::Score { input, jet }
                    }
                    Loss::InfoNce { .. } => Passes::Pairs {
                        loss: GpuNetwork::new(&nn, net, &net_buffers, 2 * b, points, energies, None, true, 1.0)?,
                    },
                    _ => Passes::Contrastive {
                        negatives: GpuNetwork::new(
                            &nn,
                            net,
                            &net_buffers,
                            b,
                            Slice::new(&work, layout.points + b * d),
                            Slice::new(&work, layout.energies + b),
                            Some(Slice::new(&work, layout.dx)),
                            false,
                            1.0,
                        )?,
                        loss: GpuNetwork::new(&nn, net, &net_buffers, 2 * b, points, energies, None, true, 1.0)?,
                        positives: config
                            .latent
                            .as_ref()
                            .map(|_| {
                                let e = Slice::new(&work, layout.energies + 2 * b);
                                let dx = Some(Slice::new(&work, layout.dx));
                                GpuNetwork::new(&nn, net, &net_buffers, b, points, e, dx, false, 1.0)
                            })
                            .transpose()?,
                    },
                };
                let outputs = net_buffers.output_values().ok_or_else(|| {
                    Error::invalid("network", "its outputs are its input (only flattens): nothing to train")
                })?;
                let bind = bind_group(
                    &ctx,
                    &kernels.loss,
                    &slots.buffer,
                    size_of::<TrainLayeredParams>() as u64,
                    &[
                        &work,
                        &replay,
                        &data_buffer,
                        &net_buffers.params,
                        &net_buffers.param_grads,
                        net_buffers.output_grads(),
                        &moments,
                        outputs,
                    ],
                );
                let encoder = config.latent.as_ref().map(|_| EncoderSlots {
                    positives: layout.points,
                    dx: layout.dx,
                    energies: layout.energies + 2 * b,
                    data_rows: rows,
                });
                let side = state
                    .side
                    .as_ref()
                    .map(|g| GpuSide::new(&ctx, &nn, g, b, (d, encoder), &work, &data_buffer, &slots.buffer))
                    .transpose()?;
                Ok((slots, work, replay, moments, data_buffer, bind, net_buffers, passes, side))
            })??;
        Ok(Self {
            config: config.clone(),
            net_shape: state.net.clone(),
            rows,
            step: state.step,
            lr_scale: state.lr_scale,
            kernels,
            slots,
            work,
            replay,
            moments,
            _data: data_buffer,
            bind,
            net_buffers,
            passes,
            langevin_grid,
            side,
            ctx,
        })
    }

    fn step_params(&self, step: u32, row: u32) -> TrainLayeredParams {
        let c = &self.config;
        let (settings, optimizer) = StepSettings::new(c, step, self.lr_scale);
        let (channels, height, width) = self.net_shape.input.image().unwrap_or((0, 0, 0));
        let a = &c.augment;
        TrainLayeredParams {
            seed: crate::rng::key(c.seed),
            step,
            data_rows: self.rows as u32,
            capacity: c.buffer_capacity as u32,
            position: c.replay_position(step) as u32,
            batch: c.batch as u32,
            dim: c.dim() as u32,
            k: 0,
            loss: c.loss.code(),
            metrics_row: row,
            optimizer,
            n_net: self.net_shape.param_count() as u32,
            outputs: self.net_shape.outputs as u32,
            row_stride: self.langevin_grid.0,
            blocks: blocks(c.loss) as u32,
            levels: if let Loss::Dsm { levels, .. } = c.loss { levels } else { 1 },
            rademacher: matches!(c.loss, Loss::Ssm { rademacher: true }) as u32,
            conditional: matches!(c.loss, Loss::Dsm { conditional: true, .. }) as u32,
            sigma_max: if let Loss::Dsm { sigma_max, .. } = c.loss { sigma_max } else { 0.0 },
            sigma_min: if let Loss::Dsm { sigma_min, .. } = c.loss { sigma_min } else { 0.0 },
            paired: c.paired as u32,
            channels: channels as u32,
            height: height as u32,
            width: width as u32,
            view_shift: a.shift,
            view_rotate: a.rotate.to_radians(),
            view_zoom: a.zoom,
            view_noise: a.noise,
            temperature: if let Loss::InfoNce { temperature } = c.loss { temperature } else { 1.0 },
            settings,
        }
    }

    /// Records steps `self.step .. self.step + n` (n <= STEPS_PER_SUBMIT), metrics in rows 0..n.
    fn submit(&mut self, n: u32) -> Result<()> {
        let b = self.config.batch as u32;
        let sampled = self.config.loss.samples_negatives();
        let jem = self.config.loss == Loss::Jem;
        let langevin_steps = if sampled { self.config.langevin.steps } else { 0 };
        // Per step: the base parameters, one slot per Langevin step, the side network's.
        let mut offsets = Vec::with_capacity(n as usize);
        let negatives = self.negatives_offset();
        for r in 0..n {
            let base = self.step_params(self.step + r, r);
            let first = self.slots.push(&base);
            let langevin: Vec<u32> =
                (0..langevin_steps).map(|k| self.slots.push(&TrainLayeredParams { k, ..base })).collect();
            let side = self.side.as_ref().map(|g| {
                let metrics = r as usize * METRIC_FLOATS;
                self.slots.push(&g.params(&self.config, self.step + r, self.lr_scale, negatives, metrics))
            });
            offsets.push((first, langevin, side));
        }
        self.slots.flush(&self.ctx);
        let Self { kernels: k, bind, passes, langevin_grid: (row, rows), net_shape, side, .. } = &*self;
        let generator = side.as_ref().filter(|g| !g.is_encoder());
        let encoder = side.as_ref().filter(|g| g.is_encoder());
        let n_net = net_shape.param_count() as u32;
        let outputs = 2 * b * net_shape.outputs as u32;
        self.ctx.submit_pass("training steps", |pass| {
            for (off, langevin, side_slot) in &offsets {
                let off = *off;
                match passes {
                    Passes::Contrastive { negatives, loss, positives } => {
                        if sampled {
                            match (generator, side_slot) {
                                (Some(g), Some(slot)) => g.record_propose(pass, *slot),
                                _ => dispatch(pass, &k.start, bind, off, b, 1),
                            }
                            for &lk in langevin {
                                negatives.record(pass);
                                dispatch(pass, &k.langevin, bind, lk, *row, *rows);
                            }
                            if generator.is_none() {
                                dispatch(pass, &k.store, bind, off, b, 1);
                            }
                        } else {
                            dispatch(pass, &k.noise, bind, off, b, 1);
                        }
                        match (encoder, side_slot) {
                            (Some(e), Some(slot)) => e.record_encode(pass, *slot),
                            _ => dispatch(pass, &k.positives, bind, off, b, 1),
                        }
                        loss.record_forward(pass);
                        workgroups(pass, &k.loss, bind, off, 1);
                        dispatch(pass, &k.scale, bind, off, outputs, 1);
                        if jem {
                            workgroups(pass, &k.cross_entropy, bind, off, 1);
                        }
                        loss.record_backward(pass);
                        // The encoder's step reads dE/d[x, z] of the positives before the
                        // energy's parameters move.
                        if let (Some(e), Some(p), Some(slot)) = (encoder, positives, side_slot) {
                            p.record(pass);
                            e.record_update(pass, *slot);
                        }
                    }
                    Passes::Score { input, jet } => {
                        dispatch(pass, &k.score_points, bind, off, b, 1);
                        if let Some(input) = input {
                            input.record(pass);
                            dispatch(pass, &k.dsm_directions, bind, off, b, 1);
                        }
                        jet.record(pass);
                        workgroups(pass, &k.score_metrics, bind, off, 1);
                    }
                    Passes::Pairs { loss } => {
                        dispatch(pass, &k.views, bind, off, 2 * b, 1);
                        loss.record_forward(pass);
                        workgroups(pass, &k.info_nce, bind, off, 1);
                        loss.record_backward(pass);
                    }
                }
                workgroups(pass, &k.grad_norm, bind, off, 1);
                dispatch(pass, &k.optimizer, bind, off, n_net + 1, 1);
                if let (Some(g), Some(slot)) = (generator, side_slot) {
                    g.record_update(pass, *slot);
                }
            }
        })?;
        self.step += n;
        Ok(())
    }

    /// Where the B negatives start in the work buffer (floats).
    fn negatives_offset(&self) -> usize {
        Layout::new(&self.config, self.net_shape.outputs).points + self.config.batch * self.config.dim()
    }

    /// Dispatches per training step (for reports).
    pub fn dispatches_per_step(&self) -> u32 {
        let passes = match &self.passes {
            Passes::Contrastive { negatives, loss, positives } => {
                let langevin = if self.config.loss.samples_negatives() {
                    self.config.langevin.steps * (negatives.dispatches() as u32 + 1) + 2
                } else {
                    1
                };
                langevin + 4 + loss.dispatches() as u32 + positives.as_ref().map_or(0, |p| p.dispatches() as u32)
            }
            Passes::Score { input, jet } => {
                2 + jet.dispatches() as u32 + input.as_ref().map_or(0, |p| p.dispatches() as u32 + 1)
            }
            Passes::Pairs { loss } => 2 + loss.dispatches() as u32,
        };
        // A generator's pass and kernels replace the replay buffer's two copies, an encoder's
        // the positives' copy.
        let side = self.side.as_ref().map_or(0, |g| g.dispatches() as i64 - if g.is_encoder() { 1 } else { 2 });
        (passes as i64 + 2 + side) as u32
    }
}

impl SubmitSteps for LayeredTrainer {
    fn steps_done(&self) -> u32 {
        self.step
    }

    fn submit(&mut self, n: u32) -> Result<()> {
        LayeredTrainer::submit(self, n)
    }

    fn metrics(&self) -> (&GpuContext, &wgpu::Buffer) {
        (&self.ctx, &self.work)
    }
}

impl Trainer for LayeredTrainer {
    fn run(&mut self, steps: u32) -> Result<Vec<StepMetrics>> {
        run_in_submits(self, steps)
    }

    fn state(&mut self) -> Result<TrainState> {
        let n = self.net_shape.param_count() as u64;
        let replay_bytes = 4 * self.config.replay_len() as u64;
        let parts = self.ctx.read_buffers(&[
            (&self.net_buffers.params, 4 * n),
            (&self.moments, 4 * (2 * (n + 1) + 1)),
            (&self.replay, replay_bytes),
        ])?;
        let params: Vec<f32> = bytemuck::pod_collect_to_vec(&parts[0]);
        let moments: Vec<f32> = bytemuck::pod_collect_to_vec(&parts[1]);
        let n = n as usize;
        let mut net = self.net_shape.clone();
        net.set_params(&params)?;
        Ok(TrainState {
            net,
            log_z: moments[2 * (n + 1)],
            m: moments[..n + 1].to_vec(),
            v: moments[n + 1..2 * (n + 1)].to_vec(),
            replay: bytemuck::pod_collect_to_vec(&parts[2]),
            step: self.step,
            lr_scale: self.lr_scale,
            side: self.side.as_ref().map(|g| g.state(&self.ctx)).transpose()?,
        })
    }

    fn executor(&self) -> String {
        format!("gpu: {} (layer kernels)", self.ctx.describe())
    }
}
