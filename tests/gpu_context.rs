//! The GPU context: errors become `Error` values, and a host application's device can be
//! shared (record into its encoder, bind the chain buffers).

mod common;

use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::gpu::{ContextInternals, GpuContext};
use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind, cpu::CpuSampler, gpu::GpuSampler};
use ebm_gpu::{Error, rng, wgpu};
use std::sync::Arc;

#[test]
fn validation_errors_become_errors_not_panics() {
    let Some(ctx) = common::gpu() else { return };
    let too_big = ctx.limits().max_buffer_size + 1;
    let result = ctx.scoped("a buffer larger than the device allows", || {
        ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("too big"),
            size: too_big,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    });
    match result {
        Err(Error::GpuValidation { context, .. }) | Err(Error::GpuOutOfMemory { context }) => {
            assert!(context.contains("larger than the device allows"))
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("an oversized buffer was accepted"),
    }
    // The context stays usable afterwards.
    ctx.scoped("a small buffer", || ctx.zeroed_storage_buffer("small", 16)).unwrap();
}

#[test]
fn a_broken_kernel_reports_the_shader() {
    let Some(ctx) = common::gpu() else { return };
    let err =
        ctx.kernel("broken", "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }", "main").err().unwrap();
    assert!(matches!(err, Error::Shader { .. }), "{err}");
    assert!(err.to_string().contains("broken"), "{err}");
}

/// An application that owns the device: build the context from its device and queue, record
/// sampler steps into its own encoder and submit them itself, then read the chain states from
/// the buffers it could bind. The result equals the CPU executor's.
#[test]
fn a_host_device_can_be_shared() {
    if common::gpu().is_none() {
        return;
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default())).unwrap();
    let ctx = Arc::new(GpuContext::from_device(device.clone(), queue.clone(), None));
    let energy = resolve_energy("banana").unwrap();
    let init = rng::initial_states(9, 0, 100, 2, 0.5);
    let config = SamplerConfig::new(SamplerKind::Ula, 0.001, 1);
    let mut sampler = GpuSampler::new(ctx.clone(), &energy, config.clone(), &init).unwrap();
    let mut encoder = device.create_command_encoder(&Default::default());
    sampler.encode(&mut encoder, 20).unwrap();
    queue.submit([encoder.finish()]);
    let buffers = sampler.state_buffers();
    assert_eq!(buffers.len(), 1);
    assert_eq!(buffers[0].1.size(), 100 * 2 * 4);
    let states = sampler.state().unwrap();
    let mut cpu = CpuSampler::new(&energy, config, &init).unwrap();
    cpu.run(20).unwrap();
    assert!(common::max_abs_diff(&states, &cpu.state().unwrap()) < 1e-4);
    assert_eq!(sampler.steps_done(), 20);
    assert!(sampler.encode(&mut device.create_command_encoder(&Default::default()), u32::MAX).is_err());
}
