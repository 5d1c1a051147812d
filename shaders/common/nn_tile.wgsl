// The tiled GEMM core of the layer kernels (shaders/nn/nn_gemm.wgsl, shaders/nn/nn_conv2d.wgsl):
// a workgroup of 256 threads computes a TILE_M x TILE_N block of C = A B, each thread a 4 x 4
// register block (rows 4 ty.., columns 4 tx.., TILE_N / 4 threads per row), over k in
// [k_begin, k_end). Per step of TILE_K, both operand tiles are staged in workgroup memory;
// consecutive threads load consecutive addresses along the operand's contiguous axis
// (a_k_fast / b_k_fast), and out of range elements are staged as 0, so any M, N, K works. The
// importing kernel defines `tile_load_a(m, k)` and `tile_load_b(k, n)` (called in bounds
// only): plain strided reads for dense layers, the implicit im2col gathers for convolutions.
//
// Tile shape: TILE_M x TILE_N is always 4096 outputs; the launcher (src/nn/gpu.rs,
// `TileShape`) specialises TILE_M (16, 32, 64, 128 or 256) and TILE_K (16, or 8 for the two
// most skewed shapes so the tiles fit 16 KiB of workgroup memory) by replacing the lines
// below, so a GEMM with a small side (a conv layer with 16 output channels) does not run a
// 64-wide tile three quarters empty. Rows of the staged tiles are padded by 2: with k fast,
// the 16 stores of one row of threads then land in distinct banks (stride = 2 mod 32).
// On llvmpipe every loop iteration counts against the 65535-per-invocation cap: one K step
// costs the staging loops (TILE_K (TILE_M + TILE_N) / 256 iterations) + TILE_K + 1.

const TILE_M: u32 = 64u;
const TILE_K: u32 = 16u;
const TILE_N: u32 = 4096u / TILE_M;
const TILE_THREADS: u32 = 256u;
const TILE_TX: u32 = TILE_N / 4u;
const TILE_SA: u32 = TILE_M + 2u;
const TILE_SB: u32 = TILE_N + 2u;

var<workgroup> tile_a: array<f32, TILE_K * TILE_SA>; // [TILE_K][TILE_M (+2)]
var<workgroup> tile_b: array<f32, TILE_K * TILE_SB>; // [TILE_K][TILE_N (+2)]

struct TileJob {
    m: u32,
    n: u32,
    m0: u32,
    n0: u32,
    k_begin: u32,
    k_end: u32,
    a_k_fast: bool,
    b_k_fast: bool,
}

// Stages element e (0 .. TILE_K TILE_M) of the A tile for the K step starting at k0.
fn tile_stage_a(job: TileJob, k0: u32, e: u32) {
    var mm = e / TILE_K;
    var ka = e % TILE_K;
    if !job.a_k_fast {
        mm = e % TILE_M;
        ka = e / TILE_M;
    }
    var va = 0.0;
    if job.m0 + mm < job.m && k0 + ka < job.k_end {
        va = tile_load_a(job.m0 + mm, k0 + ka);
    }
    tile_a[ka * TILE_SA + mm] = va;
}

// Stages element e (0 .. TILE_K TILE_N) of the B tile.
fn tile_stage_b(job: TileJob, k0: u32, e: u32) {
    var nn = e / TILE_K;
    var kb = e % TILE_K;
    if !job.b_k_fast {
        nn = e % TILE_N;
        kb = e / TILE_N;
    }
    var vb = 0.0;
    if job.n0 + nn < job.n && k0 + kb < job.k_end {
        vb = tile_load_b(k0 + kb, job.n0 + nn);
    }
    tile_b[kb * TILE_SB + nn] = vb;
}

// The 4 x 4 block of thread `lid`: acc[i][j] = C[m0 + 4 ty + i, n0 + 4 tx + j] (partial over
// the job's K range). Every thread of the workgroup must call it (barriers).
fn tile_gemm(job: TileJob, lid: u32) -> array<vec4<f32>, 4> {
    let tx = lid % TILE_TX;
    let ty = lid / TILE_TX;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = job.k_begin; k0 < job.k_end; k0 += TILE_K) {
        for (var e = lid; e < TILE_K * TILE_M; e += TILE_THREADS) {
            tile_stage_a(job, k0, e);
        }
        for (var e = lid; e < TILE_K * TILE_N; e += TILE_THREADS) {
            tile_stage_b(job, k0, e);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let ab = kk * TILE_SA + 4u * ty;
            let a = vec4<f32>(tile_a[ab], tile_a[ab + 1u], tile_a[ab + 2u], tile_a[ab + 3u]);
            let bb = kk * TILE_SB + 4u * tx;
            let b = vec4<f32>(tile_b[bb], tile_b[bb + 1u], tile_b[bb + 2u], tile_b[bb + 3u]);
            acc[0] = fma(vec4<f32>(a.x), b, acc[0]);
            acc[1] = fma(vec4<f32>(a.y), b, acc[1]);
            acc[2] = fma(vec4<f32>(a.z), b, acc[2]);
            acc[3] = fma(vec4<f32>(a.w), b, acc[3]);
        }
        workgroupBarrier();
    }
    return acc;
}

// Epilogue flags (src/nn/gpu.rs mirrors them).
const EPI_BIAS_COL: u32 = 1u; // C[m, n] += bias[n]
const EPI_BIAS_ROW: u32 = 2u; // C[m, n] += bias[m]
const EPI_ACCUM: u32 = 4u; // C += result (else overwrite)
const EPI_STORE_Z: u32 = 8u; // also store the pre-activation in nn_z
const EPI_ACT: u32 = 16u; // C = nn_act(result)
const EPI_PARTIAL: u32 = 32u; // split K: raw partial sums of K slice `slice` at slice * split_stride

struct TileOut {
    flags: u32,
    c_off: u32,
    z_off: u32,
    bias_off: u32,
    // Column n is (image n / cols_per_img, pixel n % cols_per_img): C[m, n] lives at
    // (image * M + m) * cols_per_img + pixel, which is NCHW for convolutions and row-major
    // [M, N] when cols_per_img = N.
    cols_per_img: u32,
    split_stride: u32,
}

// Writes the thread's 4 x 4 block; the importing kernel declares nn_c, nn_z and nn_bias.
fn tile_epilogue(job: TileJob, o: TileOut, acc_in: array<vec4<f32>, 4>, lid: u32, slice: u32) {
    var acc = acc_in;
    let tx = lid % TILE_TX;
    let ty = lid / TILE_TX;
    for (var j = 0u; j < 4u; j++) {
        let n = job.n0 + 4u * tx + j;
        if n >= job.n {
            break;
        }
        let img = n / o.cols_per_img;
        let pix = n % o.cols_per_img;
        for (var i = 0u; i < 4u; i++) {
            let m = job.m0 + 4u * ty + i;
            if m >= job.m {
                break;
            }
            let at = (img * job.m + m) * o.cols_per_img + pix;
            var v = acc[i][j];
            if (o.flags & EPI_PARTIAL) != 0u {
                nn_c[o.c_off + slice * o.split_stride + at] = v;
                continue;
            }
            if (o.flags & EPI_BIAS_COL) != 0u {
                v += nn_bias[o.bias_off + n];
            }
            if (o.flags & EPI_BIAS_ROW) != 0u {
                v += nn_bias[o.bias_off + m];
            }
            if (o.flags & EPI_ACCUM) != 0u {
                v += nn_c[o.c_off + at];
            }
            if (o.flags & EPI_STORE_Z) != 0u {
                nn_z[o.z_off + at] = v;
            }
            if (o.flags & EPI_ACT) != 0u {
                v = nn_act(v);
            }
            nn_c[o.c_off + at] = v;
        }
    }
}
