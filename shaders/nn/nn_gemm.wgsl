// Dense layers as one tiled GEMM (core: common/nn_tile.wgsl) with strided operands, so every
// transposition the layers need is the same kernel:
//   forward        Y[n, out] = X[n, in] W[out, in]^T (+ bias[out], then the fused activation,
//                  optionally keeping the pre-activation in Z)
//   input grad     DX[n, in] = DY[n, out] W[out, in]
//   weight grad    DW[out, in] (+)= DY[n, out]^T X[n, in], split over K into partial sums
//                  (reduced by nn_elementwise.wgsl:reduce_parts) when the batch is long.
// A(m, k) = a[a_off + m a_rs + k a_cs], B(k, n) = b[b_off + k b_rs + n b_cs], C row-major.
// Grid: x = N tiles, y = M tiles, z = K slices. Host side: src/nn/gpu.rs; CPU twin:
// src/nn/ops.rs (linear_*). All buffers are read_write so one buffer may hold several
// operands (wgpu forbids read-only and read-write uses of one buffer in a dispatch).
#import common/nn_tile.wgsl
#import common/nn_act.wgsl

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    k_chunk: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    z_off: u32,
    bias_off: u32,
    flags: u32,
    split_stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read_write> nn_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> nn_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> nn_c: array<f32>;
@group(0) @binding(4) var<storage, read_write> nn_bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> nn_z: array<f32>;

fn tile_load_a(m: u32, k: u32) -> f32 {
    return nn_a[p.a_off + m * p.a_rs + k * p.a_cs];
}

fn tile_load_b(k: u32, n: u32) -> f32 {
    return nn_b[p.b_off + k * p.b_rs + n * p.b_cs];
}

@compute @workgroup_size(256)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let k_begin = wg.z * p.k_chunk;
    let job = TileJob(p.m, p.n, wg.y * TILE_M, wg.x * TILE_N, k_begin, min(p.k, k_begin + p.k_chunk), p.a_cs == 1u, p.b_rs == 1u);
    let acc = tile_gemm(job, lid);
    tile_epilogue(job, TileOut(p.flags, p.c_off, p.z_off, p.bias_off, p.n, p.split_stride), acc, lid, wg.z);
}
