// 2-D convolution (NCHW, weight [out_c, in_c, kh, kw], stride s, zero padding p) as an
// implicit GEMM: the tiled core (common/nn_tile.wgsl) gathers im2col elements on the fly while
// staging, so no column matrix is materialised. With KHW = kh kw, OHW = oh ow, IHW = ih iw:
//   mode 0 forward      Y[oc, (n, oy, ox)]  = W[oc, (ic, ky, kx)] X~[(ic, ky, kx), (n, oy, ox)]
//                       (+ bias[oc], fused activation, optional pre-activation in Z)
//   mode 1 input grad   DX[ic, (n, iy, ix)] = W~[ic, (oc, ky, kx)] DY~[(oc, ky, kx), (n, iy, ix)]
//                       where DY~ is dy[n, oc, oy, ox] if iy + p - ky = s oy (same for x), else 0
//   mode 2 weight grad  DW[oc, (ic, ky, kx)] (+)= DY[oc, (n, oy, ox)] X~[(n, oy, ox), (ic, ky, kx)]
//                       split over K = batch OHW into partial sums when long
// X~ is x[n, ic, oy s + ky - p, ox s + kx - p], 0 in the padding. Bindings a, b, c are
// (W, X, Y), (W, DY, DX) and (DY, X, DW) in the three modes. Host side: src/nn/gpu.rs; CPU
// twin: src/nn/ops.rs (conv2d_*).
#import common/nn_tile.wgsl
#import common/nn_act.wgsl

const MODE_FORWARD: u32 = 0u;
const MODE_INPUT_GRAD: u32 = 1u;
const MODE_WEIGHT_GRAD: u32 = 2u;

struct ConvParams {
    batch: u32,
    in_c: u32,
    in_h: u32,
    in_w: u32,
    out_c: u32,
    out_h: u32,
    out_w: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    mode: u32,
    m: u32,
    n: u32,
    k: u32,
    k_chunk: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    z_off: u32,
    bias_off: u32,
    flags: u32,
    split_stride: u32,
    cols_per_img: u32,
}

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read_write> nn_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> nn_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> nn_c: array<f32>;
@group(0) @binding(4) var<storage, read_write> nn_bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> nn_z: array<f32>;

// x[img, ic, iy, ix] of the input bound at b, 0 in the padding.
fn conv_input(img: u32, ic: u32, oy: u32, ox: u32, ky: u32, kx: u32) -> f32 {
    let iy = i32(oy * p.stride + ky) - i32(p.pad);
    let ix = i32(ox * p.stride + kx) - i32(p.pad);
    if iy < 0 || ix < 0 || iy >= i32(p.in_h) || ix >= i32(p.in_w) {
        return 0.0;
    }
    return nn_b[p.b_off + ((img * p.in_c + ic) * p.in_h + u32(iy)) * p.in_w + u32(ix)];
}

fn tile_load_a(m: u32, k: u32) -> f32 {
    let khw = p.kh * p.kw;
    switch p.mode {
        case MODE_INPUT_GRAD: {
            // W~[ic = m, (oc, r)] = w[oc, ic, r]
            return nn_a[p.a_off + ((k / khw) * p.in_c + m) * khw + k % khw];
        }
        case MODE_WEIGHT_GRAD: {
            // DY[oc = m, (img, q)]
            let ohw = p.out_h * p.out_w;
            return nn_a[p.a_off + ((k / ohw) * p.out_c + m) * ohw + k % ohw];
        }
        default: {
            return nn_a[p.a_off + m * p.k + k];
        }
    }
}

fn tile_load_b(k: u32, n: u32) -> f32 {
    let khw = p.kh * p.kw;
    switch p.mode {
        case MODE_INPUT_GRAD: {
            let oc = k / khw;
            let ky = (k % khw) / p.kw;
            let kx = k % p.kw;
            let ihw = p.in_h * p.in_w;
            let img = n / ihw;
            let ty = i32((n % ihw) / p.in_w + p.pad) - i32(ky);
            let tx = i32(n % p.in_w + p.pad) - i32(kx);
            if ty < 0 || tx < 0 {
                return 0.0;
            }
            let oy = u32(ty) / p.stride;
            let ox = u32(tx) / p.stride;
            if oy * p.stride != u32(ty) || ox * p.stride != u32(tx) || oy >= p.out_h || ox >= p.out_w {
                return 0.0;
            }
            return nn_b[p.b_off + ((img * p.out_c + oc) * p.out_h + oy) * p.out_w + ox];
        }
        case MODE_WEIGHT_GRAD: {
            // X~[(img, oy, ox) = k, (ic, ky, kx) = n]
            let ohw = p.out_h * p.out_w;
            let q = k % ohw;
            let r = n % khw;
            return conv_input(k / ohw, n / khw, q / p.out_w, q % p.out_w, r / p.kw, r % p.kw);
        }
        default: {
            // X~[(ic, ky, kx) = k, (img, oy, ox) = n]
            let ohw = p.out_h * p.out_w;
            let q = n % ohw;
            let r = k % khw;
            return conv_input(n / ohw, k / khw, q / p.out_w, q % p.out_w, r / p.kw, r % p.kw);
        }
    }
}

@compute @workgroup_size(256)
fn conv2d(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let k_begin = wg.z * p.k_chunk;
    // The operands' contiguous axes: weights and dy rows run along k; the gathered input runs
    // along output pixels (n) in modes 0 and 1 and along k in mode 2.
    let job = TileJob(p.m, p.n, wg.y * TILE_M, wg.x * TILE_N, k_begin, min(p.k, k_begin + p.k_chunk), true, p.mode == MODE_WEIGHT_GRAD);
    let acc = tile_gemm(job, lid);
    tile_epilogue(job, TileOut(p.flags, p.c_off, p.z_off, p.bias_off, p.cols_per_img, p.split_stride), acc, lid, wg.z);
}
