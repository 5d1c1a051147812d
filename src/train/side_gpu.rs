//! The GPU executor of the side network ([`super::side`]): `shaders/train/side.wgsl` around
//! the side network's own [`GpuNetwork`] pass, recorded by [`super::layered::LayeredTrainer`]
//! into each step. Cooperative learning's generator proposes the negatives before the Langevin
//! steps and regresses onto them after the loss; a latent EBM's encoder draws the positives'
//! latents, and steps on L_q once the trainer has dE/d[x, z] of the positives. Parameters and
//! moments stay on the device. CPU twins: [`super::generator`], [`super::latent`].

use super::side::SideNet;
use super::{StepScalars, TrainConfig};
use crate::gpu::launch::{WG, bind_group, check_fits, dispatch, workgroups};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::nn::gpu::{NnKernels, Slice};
use crate::nn::gpu_net::{GpuNetwork, NetBuffers, max_batch};
use crate::nn::{Network, NetworkInternals};
use crate::{Error, Result};
use std::sync::Arc;

/// `SideParams` of shaders/train/side.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct SideParams {
    seed: [u32; 2],
    step: u32,
    batch: u32,
    dim: u32,
    latent: u32,
    n_gen: u32,
    negatives: u32,
    metrics: u32,
    data_dim: u32,
    data_rows: u32,
    positives: u32,
    dx: u32,
    energies: u32,
    optimizer: u32,
    lr: f32,
    bias1: f32,
    bias2: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    clip_norm: f32,
}

#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        SideParams,
        "train/side.wgsl",
        "SideParams",
        [
            seed, step, batch, dim, latent, n_gen, negatives, metrics, data_dim, data_rows, positives, dx, energies,
            optimizer, lr, bias1, bias2, beta1, beta2, eps, clip_norm
        ]
    )]
}

struct Kernels {
    latents: Arc<Kernel>,
    propose: Arc<Kernel>,
    targets: Arc<Kernel>,
    encoder_inputs: Arc<Kernel>,
    encoder_positives: Arc<Kernel>,
    encoder_targets: Arc<Kernel>,
    grad_norm: Arc<Kernel>,
    optimizer: Arc<Kernel>,
}

/// Where the trainer keeps what the encoder reads and writes (floats into its work buffer): the
/// B positives, their dE/d[x, z] and their energies; and its data rows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EncoderSlots {
    pub positives: usize,
    pub dx: usize,
    pub energies: usize,
    pub data_rows: usize,
}

pub(crate) struct GpuSide {
    net_shape: Network,
    batch: u32,
    /// The energy's input width: the generator's outputs, or the encoder's [x, z].
    dim: u32,
    /// Some for a latent EBM's encoder.
    encoder: Option<EncoderSlots>,
    kernels: Kernels,
    buffers: NetBuffers,
    moments: wgpu::Buffer,
    _latents: wgpu::Buffer,
    _energies: wgpu::Buffer,
    pass: GpuNetwork,
    bind: wgpu::BindGroup,
}

impl GpuSide {
    /// The side network of `state` for batches of `batch`: a generator, or (given `encoder`)
    /// an encoder for an energy of `dim` inputs; `work` is the trainer's scratch (the points
    /// and metrics rows), `data` its box and data rows, `slots` its parameter slots.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &Arc<GpuContext>,
        nn: &NnKernels,
        state: &SideNet,
        batch: usize,
        (dim, encoder): (usize, Option<EncoderSlots>),
        work: &wgpu::Buffer,
        data: &wgpu::Buffer,
        slots: &wgpu::Buffer,
    ) -> Result<Self> {
        let net = &state.net;
        let name = if encoder.is_some() { "encoder" } else { "generator" };
        let (inputs, n) = (net.input_dim(), net.param_count());
        let outputs = net.outputs();
        if batch > max_batch(ctx, net) {
            return Err(Error::Limit(format!(
                "--batch {batch}: the {name}'s widest layer does not fit the storage-binding limit here for so many \
                 points (at most {}); use a smaller --batch",
                max_batch(ctx, net)
            )));
        }
        check_fits(ctx, (batch * outputs).div_ceil(WG as usize), 1, "side network output workgroups")?;
        check_fits(ctx, n.div_ceil(WG as usize), 1, &format!("{name} parameter workgroups"))?;
        check_fits(ctx, 1, 2 * n + 1, &format!("{name} optimizer moments"))?;
        ctx.check_loop_budget("the generator's regression", (batch * outputs).div_ceil(256) as u64)?;
        ctx.check_loop_budget("an encoder's row", dim as u64)?;
        ctx.check_loop_budget(&format!("the {name}'s gradient norm"), n.div_ceil(256) as u64)?;
        let wgsl = crate::gpu::shader::assemble("train/side.wgsl", &[])?;
        let k = |entry: &str| ctx.kernel("train/side.wgsl", &wgsl, entry);
        let kernels = Kernels {
            latents: k("generator_latents")?,
            propose: k("generator_propose")?,
            targets: k("generator_targets")?,
            encoder_inputs: k("encoder_inputs")?,
            encoder_positives: k("encoder_positives")?,
            encoder_targets: k("encoder_targets")?,
            grad_norm: k("side_grad_norm")?,
            optimizer: k("side_optimizer")?,
        };
        let mut moments = state.m.clone();
        moments.extend(&state.v);
        moments.push(0.0);
        ctx.scoped(&format!("allocating the {name}'s buffers"), || -> Result<Self> {
            let buffers = NetBuffers::new(ctx, net, batch)?;
            let latents = ctx.zeroed_storage_buffer("side network inputs", 4 * (batch * inputs) as u64);
            let energies = ctx.zeroed_storage_buffer("side network head (unused)", 4 * batch as u64);
            let moments = ctx.storage_buffer("side network moments", bytemuck::cast_slice(&moments));
            let pass = GpuNetwork::new(
                nn,
                net,
                &buffers,
                batch,
                Slice::whole(&latents),
                Slice::whole(&energies),
                None,
                true,
                1.0,
            )?;
            let outputs = buffers
                .output_values()
                .ok_or_else(|| Error::invalid(name, "its outputs are its input (only flattens)"))?;
            let bind = bind_group(
                ctx,
                &kernels.latents,
                slots,
                size_of::<SideParams>() as u64,
                &[
                    work,
                    data,
                    &latents,
                    outputs,
                    buffers.output_grads(),
                    &buffers.params,
                    &buffers.param_grads,
                    &moments,
                ],
            );
            Ok(Self {
                net_shape: net.clone(),
                batch: batch as u32,
                dim: dim as u32,
                encoder,
                kernels,
                buffers,
                moments,
                _latents: latents,
                _energies: energies,
                pass,
                bind,
            })
        })?
    }

    /// The parameters of training step `step`: the negatives start at float `negatives` of the
    /// trainer's work buffer, the step's metrics row at `metrics`.
    pub fn params(
        &self,
        config: &TrainConfig,
        step: u32,
        lr_scale: f32,
        negatives: usize,
        metrics: usize,
    ) -> SideParams {
        let scalars = StepScalars::new(config, step, lr_scale);
        let lr = super::side::learning_rate(config, config.side_lr(), scalars);
        let (optimizer, beta1, beta2, eps) = config.optimizer.kernel_code();
        SideParams {
            seed: crate::rng::key(config.seed),
            step,
            batch: self.batch,
            dim: self.dim,
            latent: match self.encoder {
                Some(_) => self.net_shape.outputs() / 2,
                None => self.net_shape.input_dim(),
            } as u32,
            n_gen: self.net_shape.param_count() as u32,
            negatives: negatives as u32,
            metrics: metrics as u32,
            data_dim: self.net_shape.input_dim() as u32,
            data_rows: self.encoder.map_or(0, |e| e.data_rows) as u32,
            positives: self.encoder.map_or(0, |e| e.positives) as u32,
            dx: self.encoder.map_or(0, |e| e.dx) as u32,
            energies: self.encoder.map_or(0, |e| e.energies) as u32,
            optimizer,
            lr,
            bias1: scalars.bias1,
            bias2: scalars.bias2,
            beta1,
            beta2,
            eps,
            clip_norm: config.clip_norm,
        }
    }

    /// Records the step's proposals into the trainer's negatives: latents, the generator's
    /// forward pass, the clamp to the box.
    pub fn record_propose(&self, pass: &mut wgpu::ComputePass, slot: u32) {
        let k = &self.kernels;
        dispatch(pass, &k.latents, &self.bind, slot, self.batch, 1);
        self.pass.record_forward(pass);
        dispatch(pass, &k.propose, &self.bind, slot, self.batch * self.dim, 1);
    }

    /// Records the encoder's draw of the step's positives [x_j, z_j]: their data rows, the
    /// encoder's forward pass, the reparameterised latents.
    pub fn record_encode(&self, pass: &mut wgpu::ComputePass, slot: u32) {
        let k = &self.kernels;
        dispatch(pass, &k.encoder_inputs, &self.bind, slot, self.batch, 1);
        self.pass.record_forward(pass);
        dispatch(pass, &k.encoder_positives, &self.bind, slot, self.batch, 1);
    }

    /// Whether this is a latent EBM's encoder (else a generator).
    pub fn is_encoder(&self) -> bool {
        self.encoder.is_some()
    }

    /// Records the side network's update: the generator's once the negatives are refined (the
    /// regression's output gradient), the encoder's once dE/d[x, z] of the positives is in work
    /// (L_q's); then the backward pass, the gradient norm and the optimizer.
    pub fn record_update(&self, pass: &mut wgpu::ComputePass, slot: u32) {
        let k = &self.kernels;
        let targets = if self.is_encoder() { &k.encoder_targets } else { &k.targets };
        workgroups(pass, targets, &self.bind, slot, 1);
        self.pass.record_backward(pass);
        workgroups(pass, &k.grad_norm, &self.bind, slot, 1);
        dispatch(pass, &k.optimizer, &self.bind, slot, self.net_shape.param_count() as u32, 1);
    }

    /// Dispatches per step (the forward pass and its two kernels, the update's three and the
    /// backward pass).
    pub fn dispatches(&self) -> u32 {
        self.pass.dispatches() as u32 + 5
    }

    /// The side network's parameters and moments (a readback).
    pub fn state(&self, ctx: &GpuContext) -> Result<SideNet> {
        let n = self.net_shape.param_count();
        let parts = ctx.read_buffers(&[(&self.buffers.params, 4 * n as u64), (&self.moments, 4 * 2 * n as u64)])?;
        let params: Vec<f32> = bytemuck::pod_collect_to_vec(&parts[0]);
        let moments: Vec<f32> = bytemuck::pod_collect_to_vec(&parts[1]);
        let mut net = self.net_shape.clone();
        net.set_params(&params)?;
        Ok(SideNet { net, m: moments[..n].to_vec(), v: moments[n..].to_vec() })
    }
}
