//! Philox4x32-10 known-answer vectors on both executors, and bit-identical streams.

mod common;

use ebm_gpu::rng::{self, Stream};

const KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = rng::KNOWN_ANSWERS;

/// Runs the `rng_kat` kernel on (counter, key) pairs: (raw outputs, normals).
fn gpu_philox(ctx: &ebm_gpu::gpu::GpuContext, inputs: &[([u32; 4], [u32; 2])]) -> (Vec<u32>, Vec<f32>) {
    ebm_gpu::selftest::energies::gpu_philox(ctx, inputs).unwrap()
}

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
