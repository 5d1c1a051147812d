//! GPU launcher for `shaders/langevin.wgsl`.
//!
//! Chains are split into groups that fit one dispatch and one storage binding; each group owns
//! its buffers. A dispatch advances a group by several steps; a submit holds several dispatches
//! whose parameters sit in 256-byte slots of a uniform buffer selected by dynamic offset. Nothing
//! is read back until the caller asks.

use super::{LangevinConfig, LangevinKind, check_initial};
use crate::energy::Energy;
use crate::gpu::{Binding, GpuContext, Kernel};
use crate::sampler::{ChainSampler, ChainStats};
use crate::{Error, Result};
use std::sync::Arc;

const WORKGROUP: u32 = 64;
/// Dispatches recorded per submit (bounded so a single submit stays short on a desktop GPU).
const DISPATCHES_PER_SUBMIT: u32 = 16;
const BINDINGS: &[Binding] = &[
    Binding::UniformDynamic,
    Binding::StorageReadWrite,
    Binding::StorageReadWrite,
    Binding::StorageRead,
    Binding::StorageReadWrite,
    Binding::StorageReadWrite,
];

/// Mirrors `StepParams` in the kernel.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StepParams {
    n_chains: u32,
    chain_offset: u32,
    step_base: u32,
    n_steps: u32,
    seed: [u32; 2],
    step_size: f32,
    noise_scale: f32,
    grad_clamp: f32,
    box_lo: f32,
    box_hi: f32,
    use_box: u32,
    trace_every: u32,
    trace_slots: u32,
    _pad: [u32; 2],
}

struct ChainGroup {
    chains: u32,
    /// Index of the group's first chain within this sampler.
    first: u32,
    state: wgpu::Buffer,
    stats: wgpu::Buffer,
    energies: wgpu::Buffer,
    trace: wgpu::Buffer,
    params: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

pub struct GpuLangevin {
    ctx: Arc<GpuContext>,
    kernel: Arc<Kernel>,
    config: LangevinConfig,
    dim: usize,
    chains: usize,
    groups: Vec<ChainGroup>,
    steps_per_dispatch: u32,
    slot_stride: u64,
    steps_done: u32,
}

/// Splits `total` items into consecutive (first, count) pieces of at most `max`.
pub(crate) fn split(total: usize, max: usize) -> Vec<(usize, usize)> {
    (0..total).step_by(max.max(1)).map(|first| (first, max.min(total - first))).collect()
}

impl GpuLangevin {
    pub fn new(ctx: Arc<GpuContext>, energy: &Energy, config: LangevinConfig, initial: &[f32]) -> Result<Self> {
        config.validate()?;
        energy.validate()?;
        let dim = energy.dim();
        let chains = check_initial(initial, dim)?;
        let limits = ctx.limits();
        let row_bytes = (dim * 4) as u64;
        let slots = config.trace_slots() as u64;
        let binding = limits.max_storage_buffer_binding_size as u64;
        let mut max_chains = (binding / row_bytes).min(limits.max_compute_workgroups_per_dimension as u64 * WORKGROUP as u64);
        if slots > 0 {
            max_chains = max_chains.min(binding / (row_bytes * slots));
        }
        if let Some(m) = config.max_chains_per_dispatch {
            max_chains = max_chains.min(m as u64);
        }
        if max_chains == 0 {
            return Err(Error::Limit(format!(
                "one chain's trace ({slots} slots x {dim} floats) exceeds the {binding}-byte storage binding limit; thin more or trace fewer steps"
            )));
        }
        let entry = match config.kind {
            LangevinKind::Ula => "ula",
            LangevinKind::Mala => "mala",
        };
        let energy_module = energy.wgsl_module();
        let wgsl = crate::gpu::shader::assemble("langevin.wgsl", &[("energy", &energy_module)])?;
        let kernel = ctx.kernel(&format!("langevin[{}; d={dim}]", energy.kind()), &wgsl, entry, BINDINGS)?;
        let steps_per_dispatch = config.steps_per_dispatch.unwrap_or_else(|| {
            // Enough fused steps to amortise a dispatch, few enough to keep one short.
            let work = (chains * dim.max(4)) as u64;
            ((1u64 << 22) / work).clamp(1, 64) as u32
        });
        let slot_stride = (limits.min_uniform_buffer_offset_alignment as u64).max(256);
        let params_bytes = energy.pack_params();
        let groups = ctx.scoped("allocating chain buffers", || {
            let energy_params = ctx.storage_buffer("energy params", bytemuck::cast_slice(&params_bytes));
            split(chains, max_chains as usize)
                .into_iter()
                .map(|(first, count)| {
                    let state = ctx.storage_buffer("chain state", bytemuck::cast_slice(&initial[first * dim..(first + count) * dim]));
                    let stats = ctx.zeroed_storage_buffer("chain stats", count as u64 * 8);
                    let energies = ctx.zeroed_storage_buffer("chain energies", count as u64 * 4);
                    let trace = ctx.zeroed_storage_buffer("chain trace", slots * count as u64 * row_bytes);
                    let params = ctx.device().create_buffer(&wgpu::BufferDescriptor {
                        label: Some("langevin step params"),
                        size: slot_stride * DISPATCHES_PER_SUBMIT as u64,
                        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    });
                    let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("langevin bindings"),
                        layout: &kernel.layout,
                        entries: &[
                            wgpu::BindGroupEntry {
                                binding: 0,
                                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                    buffer: &params,
                                    offset: 0,
                                    size: wgpu::BufferSize::new(std::mem::size_of::<StepParams>() as u64),
                                }),
                            },
                            wgpu::BindGroupEntry { binding: 1, resource: state.as_entire_binding() },
                            wgpu::BindGroupEntry { binding: 2, resource: stats.as_entire_binding() },
                            wgpu::BindGroupEntry { binding: 3, resource: energy_params.as_entire_binding() },
                            wgpu::BindGroupEntry { binding: 4, resource: energies.as_entire_binding() },
                            wgpu::BindGroupEntry { binding: 5, resource: trace.as_entire_binding() },
                        ],
                    });
                    ChainGroup { chains: count as u32, first: first as u32, state, stats, energies, trace, params, bind_group }
                })
                .collect::<Vec<_>>()
        })?;
        Ok(Self { ctx, kernel, config, dim, chains, groups, steps_per_dispatch, slot_stride, steps_done: 0 })
    }

    /// The most steps one [`Self::encode`] may record before its command buffer is submitted.
    pub fn max_steps_per_encode(&self) -> u32 {
        self.steps_per_dispatch * DISPATCHES_PER_SUBMIT
    }

    /// Records `steps` steps for all chains into the caller's encoder (for applications that
    /// submit their own command buffers). The caller must submit the encoder before the next
    /// call; `steps` may not exceed [`Self::max_steps_per_encode`].
    pub fn encode(&mut self, encoder: &mut wgpu::CommandEncoder, steps: u32) -> Result<()> {
        if steps > self.max_steps_per_encode() {
            return Err(Error::invalid("steps", format!("at most {} per encode", self.max_steps_per_encode())));
        }
        let cfg = &self.config;
        let seed = crate::rng::key(cfg.seed);
        let (box_lo, box_hi) = cfg.box_clamp.unwrap_or((0.0, 0.0));
        for group in &self.groups {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("langevin"), timestamp_writes: None });
            pass.set_pipeline(&self.kernel.pipeline);
            let mut done = 0;
            let mut slot = 0u64;
            while done < steps {
                let n_steps = self.steps_per_dispatch.min(steps - done);
                let params = StepParams {
                    n_chains: group.chains,
                    chain_offset: cfg.chain_offset + group.first,
                    step_base: self.steps_done + done,
                    n_steps,
                    seed,
                    step_size: cfg.step_size,
                    noise_scale: cfg.noise(),
                    grad_clamp: cfg.grad_clamp.unwrap_or(0.0),
                    box_lo,
                    box_hi,
                    use_box: cfg.box_clamp.is_some() as u32,
                    trace_every: cfg.trace_every,
                    trace_slots: cfg.trace_slots(),
                    _pad: [0; 2],
                };
                let offset = slot * self.slot_stride;
                self.ctx.queue().write_buffer(&group.params, offset, bytemuck::bytes_of(&params));
                pass.set_bind_group(0, &group.bind_group, &[offset as u32]);
                pass.dispatch_workgroups(group.chains.div_ceil(WORKGROUP), 1, 1);
                done += n_steps;
                slot += 1;
            }
        }
        self.steps_done += steps;
        Ok(())
    }

    /// The device buffers holding each group's chain states ([chains, dim] f32), for hosts that
    /// bind them directly, with the index of each group's first chain.
    pub fn state_buffers(&self) -> Vec<(u32, &wgpu::Buffer)> {
        self.groups.iter().map(|g| (g.first, &g.state)).collect()
    }

    fn gather(&self, pick: impl Fn(&ChainGroup) -> (&wgpu::Buffer, u64)) -> Result<Vec<u8>> {
        let parts: Vec<(&wgpu::Buffer, u64)> = self.groups.iter().map(pick).collect();
        Ok(self.ctx.read_buffers(&parts)?.concat())
    }
}

impl ChainSampler for GpuLangevin {
    fn run(&mut self, steps: u32) -> Result<()> {
        let mut left = steps;
        while left > 0 {
            let chunk = left.min(self.max_steps_per_encode());
            let ctx = self.ctx.clone();
            ctx.scoped("langevin steps", || -> Result<()> {
                let mut encoder = ctx.device().create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("langevin") });
                self.encode(&mut encoder, chunk)?;
                ctx.queue().submit([encoder.finish()]);
                Ok(())
            })??;
            left -= chunk;
        }
        self.ctx.wait()
    }

    fn state(&self) -> Result<Vec<f32>> {
        let bytes = self.gather(|g| (&g.state, g.chains as u64 * self.dim as u64 * 4))?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn stats(&self) -> Result<ChainStats> {
        let stats: Vec<u32> = bytemuck::pod_collect_to_vec(&self.gather(|g| (&g.stats, g.chains as u64 * 8))?);
        let energies: Vec<f32> = bytemuck::pod_collect_to_vec(&self.gather(|g| (&g.energies, g.chains as u64 * 4))?);
        Ok(ChainStats {
            accepted: stats.chunks(2).map(|s| s[0]).collect(),
            frozen: stats.chunks(2).map(|s| s[1] != 0).collect(),
            energies,
        })
    }

    fn trace(&self) -> Result<Option<Vec<f32>>> {
        let slots = self.config.trace_slots() as usize;
        if slots == 0 {
            return Ok(None);
        }
        let d = self.dim;
        let parts: Vec<Vec<u8>> = {
            let list: Vec<(&wgpu::Buffer, u64)> =
                self.groups.iter().map(|g| (&g.trace, (slots * g.chains as usize * d * 4) as u64)).collect();
            self.ctx.read_buffers(&list)?
        };
        // Each group holds [slots, its chains, dim]; interleave into [slots, all chains, dim].
        let mut out = vec![0.0f32; slots * self.chains * d];
        for (group, bytes) in self.groups.iter().zip(parts) {
            let values: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
            let n = group.chains as usize;
            for s in 0..slots {
                let dst = (s * self.chains + group.first as usize) * d;
                out[dst..dst + n * d].copy_from_slice(&values[s * n * d..(s + 1) * n * d]);
            }
        }
        Ok(Some(out))
    }

    fn chains(&self) -> usize {
        self.chains
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn steps_done(&self) -> u32 {
        self.steps_done
    }

    fn dispatches_per_step(&self) -> f64 {
        self.groups.len() as f64 / self.steps_per_dispatch as f64
    }

    fn executor(&self) -> String {
        format!("gpu: {}", self.ctx.describe())
    }
}
