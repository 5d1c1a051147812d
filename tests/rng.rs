//! Philox4x32-10 known-answer vectors on both executors, and bit-identical streams.

mod common;

use ebm_gpu::gpu::Binding;
use ebm_gpu::rng::{self, Stream};

const KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
    ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

/// Runs the `rng_kat` kernel on (counter, key) pairs: (raw outputs, normals).
fn gpu_philox(ctx: &ebm_gpu::gpu::GpuContext, inputs: &[([u32; 4], [u32; 2])]) -> (Vec<u32>, Vec<f32>) {
    let packed: Vec<u32> = inputs.iter().flat_map(|(c, k)| [c[0], c[1], c[2], c[3], k[0], k[1], 0, 0]).collect();
    let wgsl = ebm_gpu::gpu::shader::assemble("rng_kat.wgsl", &[]).unwrap();
    let kernel = ctx
        .kernel("rng_kat", &wgsl, "main", &[Binding::StorageRead, Binding::StorageReadWrite, Binding::StorageReadWrite])
        .unwrap();
    let input = ctx.storage_buffer("kat input", bytemuck::cast_slice(&packed));
    let bits = ctx.zeroed_storage_buffer("kat bits", inputs.len() as u64 * 16);
    let normals = ctx.zeroed_storage_buffer("kat normals", inputs.len() as u64 * 16);
    let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &kernel.layout,
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: input.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: bits.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 2, resource: normals.as_entire_binding() },
        ],
    });
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups((inputs.len() as u32).div_ceil(64), 1, 1);
    }
    ctx.queue().submit([encoder.finish()]);
    let out = ctx.read_buffers(&[(&bits, inputs.len() as u64 * 16), (&normals, inputs.len() as u64 * 16)]).unwrap();
    (bytemuck::pod_collect_to_vec(&out[0]), bytemuck::pod_collect_to_vec(&out[1]))
}

use ebm_gpu::wgpu;

#[test]
fn philox_known_answers_cpu() {
    for (ctr, key, want) in KAT {
        assert_eq!(rng::philox4x32_10(ctr, key), want);
    }
}

#[test]
fn philox_known_answers_gpu() {
    let Some(ctx) = common::gpu() else { return };
    let inputs: Vec<_> = KAT.iter().map(|(c, k, _)| (*c, *k)).collect();
    let (bits, _) = gpu_philox(&ctx, &inputs);
    for (i, (_, _, want)) in KAT.iter().enumerate() {
        assert_eq!(&bits[i * 4..i * 4 + 4], want, "vector {i}");
    }
}

#[test]
fn gpu_stream_matches_cpu_bit_for_bit_and_normals_to_rounding() {
    let Some(ctx) = common::gpu() else { return };
    let seed = 0x1234_5678_9abc_def0u64;
    let key = rng::key(seed);
    let inputs: Vec<([u32; 4], [u32; 2])> =
        (0..4096u32).map(|i| ([i * 7919, i / 3, Stream::ProposalNoise as u32, i % 5], key)).collect();
    let (bits, normals) = gpu_philox(&ctx, &inputs);
    for (i, (ctr, k)) in inputs.iter().enumerate() {
        assert_eq!(&bits[i * 4..i * 4 + 4], &rng::philox4x32_10(*ctr, *k), "counter {ctr:?}");
        let want = rng::normal4(seed, ctr[0], ctr[1], Stream::ProposalNoise, ctr[3]);
        for lane in 0..4 {
            let (g, c) = (normals[i * 4 + lane], want[lane]);
            // Same uniforms; only log/cos/sin rounding differs between executors.
            assert!((g - c).abs() <= 1e-5 * (1.0 + c.abs()), "counter {ctr:?} lane {lane}: gpu {g} cpu {c}");
        }
    }
}
