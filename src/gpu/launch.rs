//! Launch helpers shared by the kernel families: 256-byte uniform parameter slots selected by
//! dynamic offset, bind groups laid out as (params, buffers...), 1-D/2-D dispatches of 64-wide
//! workgroups, and the dispatch/binding limit check.

use super::{GpuContext, Kernel};
use crate::{Error, Result};

/// Workgroup width of the kernels launched through [`dispatch`].
pub const WG: u32 = 64;

/// A uniform buffer of 256-byte parameter slots, filled per submit.
pub struct ParamSlots {
    pub buffer: wgpu::Buffer,
    stride: u64,
    slots: u64,
    staged: Vec<u8>,
}

impl ParamSlots {
    pub fn new(ctx: &GpuContext, slots: u64) -> Self {
        let stride = (ctx.limits().min_uniform_buffer_offset_alignment as u64).max(256);
        let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel params"),
            size: stride * slots.max(1),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self { buffer, stride, slots: slots.max(1), staged: Vec::new() }
    }

    /// Stages `params` in the next slot and returns its dynamic offset.
    pub fn push<T: bytemuck::Pod>(&mut self, params: &T) -> u32 {
        let offset = self.staged.len() as u64;
        assert!(offset / self.stride < self.slots, "parameter slots sized by the caller");
        self.staged.extend_from_slice(bytemuck::bytes_of(params));
        self.staged.resize((offset + self.stride) as usize, 0);
        offset as u32
    }

    /// Uploads the staged slots (before the submit that uses them) and starts over.
    pub fn flush(&mut self, ctx: &GpuContext) {
        if !self.staged.is_empty() {
            ctx.queue().write_buffer(&self.buffer, 0, &self.staged);
        }
        self.staged.clear();
    }
}

pub fn bind_group(
    ctx: &GpuContext,
    kernel: &Kernel,
    params: &wgpu::Buffer,
    params_size: u64,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: params,
            offset: 0,
            size: wgpu::BufferSize::new(params_size),
        }),
    }];
    for (k, b) in buffers.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry { binding: k as u32 + 1, resource: b.as_entire_binding() });
    }
    ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("kernel bindings"),
        layout: &kernel.layout,
        entries: &entries,
    })
}

pub fn dispatch(pass: &mut wgpu::ComputePass, kernel: &Kernel, bg: &wgpu::BindGroup, offset: u32, x: u32, y: u32) {
    pass.set_pipeline(&kernel.pipeline);
    pass.set_bind_group(0, bg, &[offset]);
    pass.dispatch_workgroups(x.div_ceil(WG), y, 1);
}

/// `n` workgroups of a kernel that sizes its own workgroups (reductions, tiles).
pub fn workgroups(pass: &mut wgpu::ComputePass, kernel: &Kernel, group: &wgpu::BindGroup, offset: u32, n: u32) {
    pass.set_pipeline(&kernel.pipeline);
    pass.set_bind_group(0, group, &[offset]);
    pass.dispatch_workgroups(n, 1, 1);
}

/// Refuses work that does not fit one dispatch or binding, naming the limit.
pub fn check_fits(ctx: &GpuContext, rows: usize, row_floats: usize, what: &str) -> Result<()> {
    let l = ctx.limits();
    if rows > l.max_compute_workgroups_per_dimension as usize {
        return Err(Error::Limit(format!(
            "{rows} {what} exceed {} per dispatch",
            l.max_compute_workgroups_per_dimension
        )));
    }
    let bytes = rows as u64 * row_floats as u64 * 4;
    if bytes > l.max_storage_buffer_binding_size {
        return Err(Error::Limit(format!(
            "{what}: {bytes} bytes exceed the {}-byte storage binding limit",
            l.max_storage_buffer_binding_size
        )));
    }
    Ok(())
}

/// Splits `total` items into consecutive (first, count) pieces of at most `max`: chains or points
/// over dispatches, steps over dispatches.
pub(crate) fn split(total: usize, max: usize) -> Vec<(usize, usize)> {
    (0..total).step_by(max.max(1)).map(|first| (first, max.min(total - first))).collect()
}
