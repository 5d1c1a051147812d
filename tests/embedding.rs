//! Embedding the sampler in a host application through `ebm_gpu::prelude` only: the host's
//! device and callbacks, several encodes in one submit, the state as a vertex buffer, and the
//! asynchronous readback.

mod common;

use ebm_gpu::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The host's own device on the adapter the tests use.
fn host_device() -> Option<(wgpu::Adapter, wgpu::Device, wgpu::Queue)> {
    common::gpu()?;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).ok()?;
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default())).ok()?;
    Some((adapter, device, queue))
}

fn sampler(ctx: &Arc<GpuContext>, chains: usize) -> GpuSampler {
    let energy = resolve_energy("ring8").unwrap();
    let init = initial_states(5, 0, chains, energy.dim(), 1.0);
    GpuSampler::new(ctx.clone(), &energy, SamplerConfig::new(SamplerKind::Mala, 0.05, 5), &init).unwrap()
}

/// Two encodes in one encoder and one submit give the chains of one 2k-step run, bit for bit.
#[test]
fn encodes_share_one_submit() {
    let Some((adapter, device, queue)) = host_device() else { return };
    let ctx = Arc::new(GpuContext::from_device(device.clone(), queue.clone(), Some(adapter.get_info())));
    let (mut a, mut b) = (sampler(&ctx, 1000), sampler(&ctx, 1000));
    let k = a.max_steps_per_encode().min(40);
    let mut encoder = device.create_command_encoder(&Default::default());
    a.encode(&mut encoder, k).unwrap();
    a.encode(&mut encoder, k).unwrap();
    queue.submit([encoder.finish()]);
    b.run(2 * k).unwrap();
    assert_eq!(a.state().unwrap(), b.state().unwrap(), "two encodes in one submit differ from one run of 2k steps");
}

/// The asynchronous readback returns what the blocking one does; the state buffer is one
/// vertex-capable buffer; the host's callbacks stay the host's.
#[test]
fn async_readback_vertex_state_and_host_callbacks() {
    let Some((adapter, device, queue)) = host_device() else { return };
    let host_errors = Arc::new(AtomicUsize::new(0));
    let seen = host_errors.clone();
    device.on_uncaptured_error(Arc::new(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    let ctx = Arc::new(GpuContext::from_device(device.clone(), queue.clone(), Some(adapter.get_info())));
    let mut s = sampler(&ctx, 777);
    s.run(25).unwrap();
    let pending = s.read_state_async().unwrap();
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let states = pollster::block_on(pending).unwrap();
    assert_eq!(states, s.state().unwrap());
    let buffer = s.state_buffer().expect("777 chains fit one buffer");
    assert!(buffer.usage().contains(wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::STORAGE));
    // An error outside any scope still reaches the host's handler.
    let _bad = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("invalid on purpose"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE,
        mapped_at_creation: false,
    });
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    assert_eq!(host_errors.load(Ordering::SeqCst), 1, "the host's error handler was replaced");
    // A host buffer that cannot take the copy is refused.
    let small = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("too small"),
        size: 64,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    let err = s.encode_copy_state(&mut encoder, &small, 0).unwrap_err().to_string();
    assert!(err.contains("bytes"), "{err}");
}

/// A host device made with lower limits than the sampler's kernels need is refused with the
/// limit's name before any pipeline is made: no validation error reaches the host, whose
/// device stays usable.
#[test]
fn a_host_device_with_too_low_limits_is_refused_by_name() {
    let Some((adapter, _, _)) = host_device() else { return };
    let small = [
        (
            wgpu::Limits { max_storage_buffers_per_shader_stage: 4, ..wgpu::Limits::downlevel_defaults() },
            "max_storage_buffers_per_shader_stage",
        ),
        (
            wgpu::Limits {
                max_compute_invocations_per_workgroup: 32,
                max_compute_workgroup_size_x: 32,
                ..Default::default()
            },
            "max_compute_",
        ),
    ];
    for (limits, name) in small {
        let descriptor = wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() };
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor)).unwrap();
        let host_errors = Arc::new(AtomicUsize::new(0));
        let seen = host_errors.clone();
        device.on_uncaptured_error(Arc::new(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        let ctx = Arc::new(GpuContext::from_device(device.clone(), queue.clone(), Some(adapter.get_info())));
        let energy = resolve_energy("ring8").unwrap();
        let init = initial_states(5, 0, 64, energy.dim(), 1.0);
        let err = match GpuSampler::new(ctx, &energy, SamplerConfig::new(SamplerKind::Mala, 0.05, 5), &init) {
            Ok(_) => panic!("{name}: a sampler on a device too small for it"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(name) && err.contains("adapter.limits()"), "{err}");
        // The host's device still works and heard of no error.
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 16,
            usage: wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&buffer, 0, &[0u8; 16]);
        queue.submit([]);
        device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        assert_eq!(host_errors.load(Ordering::SeqCst), 0, "{name}: an error reached the host");
    }
}
