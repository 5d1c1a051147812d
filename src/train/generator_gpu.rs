//! The GPU executor of cooperative learning's generator: `shaders/train/generator.wgsl` around
//! the generator's own [`GpuNetwork`] pass, recorded by [`super::layered::LayeredTrainer`] into
//! each step (the proposals before its Langevin steps, the generator's update after its loss).
//! Parameters and moments stay on the device. CPU twin: [`super::generator`].

use super::side::SideNet;
use super::{StepScalars, TrainConfig};
use crate::gpu::launch::{WG, bind_group, check_fits, dispatch, workgroups};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::nn::gpu::{NnKernels, Slice};
use crate::nn::gpu_net::{GpuNetwork, NetBuffers, max_batch};
use crate::nn::{Network, NetworkInternals};
use crate::{Error, Result};
use std::sync::Arc;

/// `GeneratorParams` of shaders/train/generator.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GeneratorParams {
    seed: [u32; 2],
    step: u32,
    batch: u32,
    dim: u32,
    latent: u32,
    n_gen: u32,
    negatives: u32,
    metrics: u32,
    optimizer: u32,
    lr: f32,
    bias1: f32,
    bias2: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    clip_norm: f32,
    _pad: u32,
}

#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        GeneratorParams,
        "train/generator.wgsl",
        "GeneratorParams",
        [
            seed, step, batch, dim, latent, n_gen, negatives, metrics, optimizer, lr, bias1, bias2, beta1, beta2, eps,
            clip_norm
        ]
    )]
}

struct Kernels {
    latents: Arc<Kernel>,
    propose: Arc<Kernel>,
    targets: Arc<Kernel>,
    grad_norm: Arc<Kernel>,
    optimizer: Arc<Kernel>,
}

pub(crate) struct GpuGenerator {
    net_shape: Network,
    batch: u32,
    dim: u32,
    kernels: Kernels,
    buffers: NetBuffers,
    moments: wgpu::Buffer,
    _latents: wgpu::Buffer,
    _energies: wgpu::Buffer,
    pass: GpuNetwork,
    bind: wgpu::BindGroup,
}

impl GpuGenerator {
    /// The generator of `state` for batches of `batch`; `work` is the trainer's scratch (the
    /// negatives and metrics rows), `data` its box, `slots` its parameter slots.
    pub fn new(
        ctx: &Arc<GpuContext>,
        nn: &NnKernels,
        state: &SideNet,
        batch: usize,
        work: &wgpu::Buffer,
        data: &wgpu::Buffer,
        slots: &wgpu::Buffer,
    ) -> Result<Self> {
        let net = &state.net;
        let (latent, dim, n) = (net.input_dim(), net.outputs(), net.param_count());
        if batch > max_batch(ctx, net) {
            return Err(Error::Limit(format!(
                "--batch {batch}: the generator's widest layer does not fit the storage-binding limit here for so many \
                 points (at most {}); use a smaller --batch",
                max_batch(ctx, net)
            )));
        }
        check_fits(ctx, (batch * dim).div_ceil(WG as usize), 1, "generator output workgroups")?;
        check_fits(ctx, n.div_ceil(WG as usize), 1, "generator parameter workgroups")?;
        check_fits(ctx, 1, 2 * n + 1, "generator optimizer moments")?;
        ctx.check_loop_budget("the generator's regression", (batch * dim).div_ceil(256) as u64)?;
        ctx.check_loop_budget("the generator's gradient norm", n.div_ceil(256) as u64)?;
        let wgsl = crate::gpu::shader::assemble("train/generator.wgsl", &[])?;
        let k = |entry: &str| ctx.kernel("train/generator.wgsl", &wgsl, entry);
        let kernels = Kernels {
            latents: k("generator_latents")?,
            propose: k("generator_propose")?,
            targets: k("generator_targets")?,
            grad_norm: k("generator_grad_norm")?,
            optimizer: k("generator_optimizer")?,
        };
        let mut moments = state.m.clone();
        moments.extend(&state.v);
        moments.push(0.0);
        ctx.scoped("allocating the generator's buffers", || -> Result<Self> {
            let buffers = NetBuffers::new(ctx, net, batch)?;
            let latents = ctx.zeroed_storage_buffer("generator latents", 4 * (batch * latent) as u64);
            let energies = ctx.zeroed_storage_buffer("generator head (unused)", 4 * batch as u64);
            let moments = ctx.storage_buffer("generator moments", bytemuck::cast_slice(&moments));
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
                .ok_or_else(|| Error::invalid("generator", "its outputs are its input (only flattens)"))?;
            let bind = bind_group(
                ctx,
                &kernels.latents,
                slots,
                size_of::<GeneratorParams>() as u64,
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
    ) -> GeneratorParams {
        let scalars = StepScalars::new(config, step, lr_scale);
        let lr = super::side::learning_rate(config, config.side_lr(), scalars);
        let (optimizer, beta1, beta2, eps) = config.optimizer.kernel_code();
        GeneratorParams {
            seed: crate::rng::key(config.seed),
            step,
            batch: self.batch,
            dim: self.dim,
            latent: self.net_shape.input_dim() as u32,
            n_gen: self.net_shape.param_count() as u32,
            negatives: negatives as u32,
            metrics: metrics as u32,
            optimizer,
            lr,
            bias1: scalars.bias1,
            bias2: scalars.bias2,
            beta1,
            beta2,
            eps,
            clip_norm: config.clip_norm,
            _pad: 0,
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

    /// Records the generator's update once the negatives are refined: the regression's output
    /// gradient, the backward pass, the gradient norm and the optimizer.
    pub fn record_update(&self, pass: &mut wgpu::ComputePass, slot: u32) {
        let k = &self.kernels;
        workgroups(pass, &k.targets, &self.bind, slot, 1);
        self.pass.record_backward(pass);
        workgroups(pass, &k.grad_norm, &self.bind, slot, 1);
        dispatch(pass, &k.optimizer, &self.bind, slot, self.net_shape.param_count() as u32, 1);
    }

    /// Dispatches per step.
    pub fn dispatches(&self) -> u32 {
        self.pass.dispatches() as u32 + 5
    }

    /// The generator's parameters and moments (a readback).
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
