//! How every kernel is launched: 256-byte uniform parameter slots selected by dynamic offset
//! (uploaded by a queue write before a submit of one's own, or by a copy recorded in the
//! caller's encoder), bind groups laid out as (params, buffers...) or (buffers...), one
//! recording of a dispatch ([`record`], with [`dispatch`] and [`workgroups`] for the common
//! grids), and the dispatch/binding limit check.

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

    /// Uploads the staged slots by a queue write and starts over: for work submitted on its
    /// own, since a queue write lands before every command buffer of the next submit.
    pub fn flush(&mut self, ctx: &GpuContext) {
        if !self.staged.is_empty() {
            ctx.queue().write_buffer(&self.buffer, 0, &self.staged);
        }
        self.staged.clear();
    }

    /// Records the upload of the staged slots into `encoder`, as a copy ordered before the
    /// dispatches recorded after it, and starts over: for work recorded into a caller's encoder,
    /// where several recordings may share one submit and each must read its own parameters.
    pub fn record_upload(&mut self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder) {
        use wgpu::util::DeviceExt;
        if !self.staged.is_empty() {
            let staging = ctx.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("kernel params upload"),
                contents: &self.staged,
                usage: wgpu::BufferUsages::COPY_SRC,
            });
            encoder.copy_buffer_to_buffer(&staging, 0, &self.buffer, 0, self.staged.len() as u64);
        }
        self.staged.clear();
    }
}

/// The bind group of a kernel whose binding 0 is one `params_size`-byte parameter slot of
/// `params` (picked by the dynamic offset, or the whole struct of a storage buffer) and whose
/// bindings 1.. are `buffers`, whole.
pub fn bind_group(
    ctx: &GpuContext,
    kernel: &Kernel,
    params: &wgpu::Buffer,
    params_size: u64,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let slot = wgpu::BufferBinding { buffer: params, offset: 0, size: wgpu::BufferSize::new(params_size) };
    let resources =
        std::iter::once(wgpu::BindingResource::Buffer(slot)).chain(buffers.iter().map(|b| b.as_entire_binding()));
    bind(ctx, kernel, resources)
}

/// The bind group of a kernel without a parameter slot: bindings 0.. are `buffers`, whole.
pub fn bind_buffers(ctx: &GpuContext, kernel: &Kernel, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
    bind(ctx, kernel, buffers.iter().map(|b| b.as_entire_binding()))
}

fn bind<'a>(
    ctx: &GpuContext,
    kernel: &Kernel,
    resources: impl Iterator<Item = wgpu::BindingResource<'a>>,
) -> wgpu::BindGroup {
    let entries: Vec<_> =
        resources.enumerate().map(|(k, resource)| wgpu::BindGroupEntry { binding: k as u32, resource }).collect();
    ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("kernel bindings"),
        layout: &kernel.layout,
        entries: &entries,
    })
}

/// Records one dispatch of `kernel` with `group` as bind group 0: `slot` is the dynamic offset
/// of its parameter slot (None for a kernel without one), `grid` the workgroup counts.
pub fn record(
    pass: &mut wgpu::ComputePass,
    kernel: &Kernel,
    group: &wgpu::BindGroup,
    slot: Option<u32>,
    grid: [u32; 3],
) {
    pass.set_pipeline(&kernel.pipeline);
    pass.set_bind_group(0, group, slot.as_slice());
    pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
}

/// `x` by `y` invocations of a kernel with [`WG`]-wide workgroups.
pub fn dispatch(pass: &mut wgpu::ComputePass, kernel: &Kernel, group: &wgpu::BindGroup, slot: u32, x: u32, y: u32) {
    record(pass, kernel, group, Some(slot), [x.div_ceil(WG), y, 1]);
}

/// `n` workgroups of a kernel that sizes its own workgroups (reductions, tiles).
pub fn workgroups(pass: &mut wgpu::ComputePass, kernel: &Kernel, group: &wgpu::BindGroup, slot: u32, n: u32) {
    record(pass, kernel, group, Some(slot), [n, 1, 1]);
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
