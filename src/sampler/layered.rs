//! ULA and MALA on the GPU for energies whose networks run through the batched layer kernels
//! (convolutions, several outputs, widths no invocation can hold), alone or as a weighted sum
//! of networks (a product of experts): the launcher of shaders/sampler/langevin_layered.wgsl
//! around the networks' passes ([`GpuNetSum`]). Which path runs is decided by the energy:
//! MLP-shaped networks and analytic energies take the fused kernels of
//! [`super::gpu::GpuSampler`]; other networks this one.
//! CPU twin: [`super::cpu::CpuSampler`] (the same proposals, accept tests and Philox counters).

use super::config::{SamplerConfig, SamplerKind, check_initial};
use super::{ChainSampler, ChainStats};
use crate::energy::{Energy, EnergyInternals};
use crate::gpu::launch::{ParamSlots, WG, bind_group, dispatch};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::nn::gpu::{NnKernels, Slice};
use crate::nn::gpu_sum::{GpuNetSum, max_chunk};
use crate::{Error, Result};
use std::sync::Arc;

/// Steps recorded per submit.
const STEPS_PER_SUBMIT: u32 = 16;

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LayeredParams {
    n_chains: u32,
    dim: u32,
    chain_offset: u32,
    step: u32,
    seed: [u32; 2],
    noise_scale: f32,
    grad_clamp: f32,
    box_lo: f32,
    box_hi: f32,
    use_box: u32,
    kind: u32,
    row_stride: u32,
    _pad: [u32; 3],
}

#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        LayeredParams,
        "sampler/langevin_layered.wgsl",
        "LayeredParams",
        [n_chains, dim, chain_offset, step, seed, noise_scale, grad_clamp, box_lo, box_hi, use_box, kind, row_stride]
    )]
}

struct Kernels {
    load_start: Arc<Kernel>,
    start: Arc<Kernel>,
    propose: Arc<Kernel>,
    accept: Arc<Kernel>,
}

pub struct LayeredSampler {
    /// Settings, dimension, per-chain (step size, beta), steps taken.
    core: super::ChainState,
    ctx: Arc<GpuContext>,
    chains: usize,
    kernels: Kernels,
    /// [x | y], [beta grad E(x) | grad E(y)], [E(x) | E(y)], [chains, 4] stats.
    points: wgpu::Buffer,
    _grads: wgpu::Buffer,
    energies: wgpu::Buffer,
    stats: wgpu::Buffer,
    chain_params_buffer: wgpu::Buffer,
    dim_scale: wgpu::Buffer,
    params: ParamSlots,
    /// One bind group per kernel (they share one layout).
    bind: wgpu::BindGroup,
    /// The networks' passes over every chain's proposal.
    networks: GpuNetSum,
    started: bool,
}

impl LayeredSampler {
    pub fn new(ctx: Arc<GpuContext>, energy: &Energy, config: SamplerConfig, initial: &[f32]) -> Result<Self> {
        config.validate()?;
        energy.validate()?;
        let terms = energy.network_terms()?;
        if !matches!(config.kind, SamplerKind::Ula | SamplerKind::Mala) {
            return Err(Error::invalid(
                "sampler",
                format!(
                    "{} is not yet on the GPU for networks of layer kernels: use ula or mala, or --backend cpu",
                    config.kind.name()
                ),
            ));
        }
        if config.tempering.is_some() || config.trace_slots() > 0 {
            return Err(Error::invalid(
                "sampler",
                "tempering and traces are not yet on the GPU for networks of layer kernels: use --backend cpu",
            ));
        }
        let dim = energy.dim();
        let chains = check_initial(initial, dim, 1)?;
        let limits = ctx.limits();
        let binding = limits.max_storage_buffer_binding_size;
        let points_bytes = 2 * (chains * dim) as u64 * 4;
        if points_bytes > binding || 2 * (chains * dim) as u64 > u32::MAX as u64 {
            return Err(Error::Limit(format!(
                "{chains} chains of {dim} values need {points_bytes} bytes of states and proposals, over the {binding}-byte storage binding limit; use fewer chains"
            )));
        }
        let chunk = max_chunk(&ctx, &terms, 4096);
        let source = crate::gpu::shader::assemble("sampler/langevin_layered.wgsl", &[])?;
        let kernel = |entry: &str| ctx.kernel("sampler/langevin_layered.wgsl", &source, entry);
        let kernels = Kernels {
            load_start: kernel("load_start")?,
            start: kernel("start")?,
            propose: kernel("propose")?,
            accept: kernel("accept")?,
        };
        let chain_params = config.chain_params(chains);
        let nn = NnKernels::new(ctx.clone());
        let (points, grads, energies, stats, chain_params_buffer, dim_scale, networks, params, bind) =
            ctx.scoped("creating the layered sampler", || -> Result<_> {
                let mut pts = initial.to_vec();
                pts.resize(2 * chains * dim, 0.0);
                let points = ctx.storage_buffer("chain states and proposals", bytemuck::cast_slice(&pts));
                let grads = ctx.zeroed_storage_buffer("chain gradients", points_bytes);
                let energies = ctx.zeroed_storage_buffer("chain energies", 2 * chains as u64 * 4);
                let stats = ctx.zeroed_storage_buffer("chain stats", chains as u64 * 16);
                let chain_params_buffer = ctx.storage_buffer("chain params", bytemuck::cast_slice(&chain_params));
                let dim_scale = ctx.storage_buffer("dim scale", bytemuck::cast_slice(&vec![1.0f32; dim]));
                let nd = chains * dim;
                let (y, ey, gy) = (Slice::new(&points, nd), Slice::new(&energies, chains), Slice::new(&grads, nd));
                let networks = GpuNetSum::new(&nn, &terms, chunk, chains, y, ey, gy)?;
                let params = ParamSlots::new(&ctx, STEPS_PER_SUBMIT as u64 + 1);
                let bind = bind_group(
                    &ctx,
                    &kernels.propose,
                    &params.buffer,
                    size_of::<LayeredParams>() as u64,
                    &[&points, &grads, &energies, &stats, &chain_params_buffer, &dim_scale],
                );
                Ok((points, grads, energies, stats, chain_params_buffer, dim_scale, networks, params, bind))
            })??;
        Ok(Self {
            ctx,
            core: super::ChainState::new(config, dim, chain_params),
            chains,
            kernels,
            points,
            _grads: grads,
            energies,
            stats,
            chain_params_buffer,
            dim_scale,
            params,
            bind,
            networks,
            started: false,
        })
    }

    fn step_params(&self, step: u32) -> (LayeredParams, u32, u32) {
        let cfg = &self.core.config;
        let total = (self.chains * self.core.dim) as u32;
        let max_x = self.ctx.limits().max_compute_workgroups_per_dimension * WG;
        let row = total.min(max_x).div_ceil(WG) * WG;
        let rows = total.div_ceil(row);
        let (lo, hi) = cfg.box_clamp.unwrap_or((0.0, 0.0));
        let key = crate::rng::key(cfg.seed);
        let p = LayeredParams {
            n_chains: self.chains as u32,
            dim: self.core.dim as u32,
            chain_offset: cfg.chain_offset,
            step,
            seed: key,
            noise_scale: cfg.noise_scale.unwrap_or(-1.0),
            grad_clamp: cfg.grad_clamp.unwrap_or(0.0),
            box_lo: lo,
            box_hi: hi,
            use_box: cfg.box_clamp.is_some() as u32,
            kind: (cfg.kind == SamplerKind::Mala) as u32,
            row_stride: row,
            _pad: [0; 3],
        };
        (p, row, rows)
    }

    /// Evaluates the starting states (once, before the first step).
    fn start(&mut self) -> Result<()> {
        let (p, row, rows) = self.step_params(0);
        let offset = self.params.push(&p);
        self.params.flush(&self.ctx);
        self.ctx.submit_pass("layered sampler start", |pass| {
            dispatch(pass, &self.kernels.load_start, &self.bind, offset, row, rows);
            self.networks.record(pass);
            dispatch(pass, &self.kernels.start, &self.bind, offset, self.chains as u32, 1);
        })?;
        self.started = true;
        Ok(())
    }
}

impl ChainSampler for LayeredSampler {
    fn run(&mut self, steps: u32) -> Result<()> {
        if !self.started {
            self.start()?;
        }
        let mut done = 0;
        while done < steps {
            let batch = STEPS_PER_SUBMIT.min(steps - done);
            let mut slots = Vec::new();
            for k in 0..batch {
                let (p, row, rows) = self.step_params(self.core.steps_done + done + k);
                slots.push((self.params.push(&p), row, rows));
            }
            self.params.flush(&self.ctx);
            self.ctx.submit_pass("layered sampler steps", |pass| {
                for &(offset, row, rows) in &slots {
                    dispatch(pass, &self.kernels.propose, &self.bind, offset, row, rows);
                    self.networks.record(pass);
                    dispatch(pass, &self.kernels.accept, &self.bind, offset, self.chains as u32, 1);
                }
            })?;
            done += batch;
        }
        self.core.steps_done += steps;
        self.ctx.wait()
    }

    fn all_states(&self) -> Result<Vec<f32>> {
        let bytes = self.ctx.read_buffers(&[(&self.points, (self.chains * self.core.dim * 4) as u64)])?;
        Ok(bytemuck::pod_collect_to_vec(&bytes[0]))
    }

    fn stats(&self) -> Result<ChainStats> {
        let parts = self
            .ctx
            .read_buffers(&[(&self.stats, self.chains as u64 * 16), (&self.energies, self.chains as u64 * 4)])?;
        let stats: Vec<u32> = bytemuck::pod_collect_to_vec(&parts[0]);
        Ok(ChainStats::from_kernel_rows(&stats, bytemuck::pod_collect_to_vec(&parts[1]), Vec::new()))
    }

    fn all_traces(&self) -> Result<Option<Vec<f32>>> {
        Ok(None)
    }

    fn set_step_sizes(&mut self, steps: &[f32]) -> Result<()> {
        self.core.set_step_sizes(steps)?;
        self.ctx.queue().write_buffer(&self.chain_params_buffer, 0, bytemuck::cast_slice(&self.core.chain_params));
        Ok(())
    }

    fn set_noise_scale(&mut self, scale: Option<f32>) -> Result<()> {
        self.core.set_noise_scale(scale)
    }

    fn set_dim_scale(&mut self, scale: &[f32]) -> Result<()> {
        super::check_dim_scale(scale, self.core.dim)?;
        self.ctx.queue().write_buffer(&self.dim_scale, 0, bytemuck::cast_slice(scale));
        Ok(())
    }

    fn chain_state(&self) -> &super::ChainState {
        &self.core
    }

    fn dispatches_per_step(&self) -> f64 {
        (2 + self.networks.dispatches()) as f64
    }

    fn executor(&self) -> String {
        format!("gpu: {} (layer kernels)", self.ctx.describe())
    }
}

/// The GPU sampler for an energy: the fused per-chain kernels ([`super::gpu::GpuSampler`]) for
/// analytic energies and MLPs, the layer kernels ([`LayeredSampler`]) for other networks and
/// sums of networks holding one.
pub fn gpu_sampler(
    ctx: Arc<GpuContext>,
    energy: &Energy,
    config: SamplerConfig,
    initial: &[f32],
) -> Result<Box<dyn ChainSampler>> {
    Ok(if energy.has_layered_net() {
        Box::new(LayeredSampler::new(ctx, energy, config, initial)?)
    } else {
        Box::new(super::gpu::GpuSampler::new(ctx, energy, config, initial)?)
    })
}
