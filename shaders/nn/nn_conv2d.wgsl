// 2-D convolution (NCHW, weight [out_c, in_c, kh, kw], stride s, zero padding p) as an
// implicit GEMM: the tiled core (common/nn_tile.wgsl) gathers im2col elements on the fly while
// staging, so no column matrix is materialised. With KHW = kh kw, OHW = oh ow, IHW = ih iw:
//   mode 0 forward      Y[oc, (n, oy, ox)]  = W[oc, (ic, ky, kx)] X~[(ic, ky, kx), (n, oy, ox)]
//                       (+ bias[oc], fused activation, optional pre-activation in Z)
//   mode 2 weight grad  DW[oc, (ic, ky, kx)] (+)= DY[oc, (n, oy, ox)] X~[(n, oy, ox), (ic, ky, kx)]
//                       split over K = batch OHW into partial sums when long
// X~ is x[n, ic, oy s + ky - p, ox s + kx - p], 0 in the padding. Bindings a, b, c are
// (W, X, Y) and (DY, X, DW) in the two modes. The input gradient has its own entry point,
// conv2d_input_grad (below), with bindings (W, DY, DX). Host side: src/nn/gpu.rs; CPU twin:
// src/nn/ops.rs (conv2d_*).
#import common/nn_tile.wgsl
#import common/nn_act.wgsl

const MODE_FORWARD: u32 = 0u;
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

// ---------------------------------------------------------------------------------------------
// Input gradient, gather form split by stride phase (the transposed convolution as s x s dense
// stride-1 sub-convolutions, no zeros gathered):
//   dx[n, ic, iy, ix] = sum over oc, ky, kx of w[oc, ic, ky, kx] dy[n, oc, oy, ox]
//   with iy + p - ky = s oy. Only ky = (iy + p) mod s + s ty contribute, ty < ceil((kh - ry) / s)
//   (ry = (iy + p) mod s), and then oy = (iy + p - ry) / s - ty: for the input pixels of one
// phase (ry, rx) the taps are fixed and dy is read as a stride-1 window, tested only for
// bounds. Grid: x = blocks of IG_WG x 4 pixels of the phase (over the batch), y = groups of
// IG_CB input channels, z = phase ry s + rx. A thread computes 4 pixels (lid + IG_WG j) x IG_CB
// channels: per tap, 4 dy reads straight from memory (consecutive threads read consecutive
// pixels) and IG_CB weights broadcast from workgroup memory, 4 IG_CB multiply-adds. The big
// dimension (pixels) is the one spread over threads, so a layer with 1 input channel wastes
// nothing; the launcher specialises IG_CB (1, 2, 4, 8 or 16) to in_c, the loop budget and the
// workgroup array, by replacing the line below.
const IG_CB: u32 = 16u;
const IG_WG: u32 = 64u;
// Weights of a chunk of output channels: [oc][tap][IG_CB] (8 KiB).
const IG_WLEN: u32 = 2048u;
var<workgroup> ig_w: array<f32, IG_WLEN>;

// dy[., ., oy, ox] at element `base` of image/channel plane start, 0 outside the output.
fn ig_dy(base: u32, oy: i32, ox: i32) -> f32 {
    if oy < 0 || ox < 0 || oy >= i32(p.out_h) || ox >= i32(p.out_w) {
        return 0.0;
    }
    return nn_b[base + u32(oy) * p.out_w + u32(ox)];
}

@compute @workgroup_size(64)
fn conv2d_input_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = p.stride;
    let ry = wg.z / s;
    let rx = wg.z % s;
    // The phase's first input row and column: (iy0 + pad) mod s = ry.
    let iy0 = (ry + s - p.pad % s) % s;
    let ix0 = (rx + s - p.pad % s) % s;
    let ph = select(0u, (p.in_h - iy0 + s - 1u) / s, iy0 < p.in_h);
    let pw = select(0u, (p.in_w - ix0 + s - 1u) / s, ix0 < p.in_w);
    let phw = ph * pw;
    let total = p.batch * phw;
    let m0 = wg.x * IG_WG * 4u;
    if m0 >= total {
        return;
    }
    let ty_n = select(0u, (p.kh - ry + s - 1u) / s, ry < p.kh);
    let tx_n = select(0u, (p.kw - rx + s - 1u) / s, rx < p.kw);
    let taps = ty_n * tx_n;
    let base_y = i32((iy0 + p.pad - ry) / s);
    let base_x = i32((ix0 + p.pad - rx) / s);
    let ic0 = wg.y * IG_CB;
    let ohw = p.out_h * p.out_w;

    // Per pixel j: the window origin in dy and the image's dy offset; pixels past the end get
    // an origin that fails every bounds test.
    var y0 = vec4<i32>(-0x1000000);
    var x0 = vec4<i32>(-0x1000000);
    var dbase = vec4<u32>(0u);
    for (var j = 0u; j < 4u; j++) {
        let m = m0 + lid + j * IG_WG;
        if m < total {
            let q = m % phw;
            y0[j] = base_y + i32(q / pw);
            x0[j] = base_x + i32(q % pw);
            dbase[j] = p.b_off + (m / phw) * p.out_c * ohw;
        }
    }

    var acc: array<vec4<f32>, IG_CB>;
    if taps > 0u {
        let per_chunk = max(IG_WLEN / (taps * IG_CB), 1u);
        for (var oc0 = 0u; oc0 < p.out_c; oc0 += per_chunk) {
            let n_oc = min(per_chunk, p.out_c - oc0);
            let n_el = n_oc * taps * IG_CB;
            workgroupBarrier();
            for (var e = lid; e < n_el; e += IG_WG) {
                let c = e % IG_CB;
                let t = (e / IG_CB) % taps;
                let oc = oc0 + e / (IG_CB * taps);
                let ky = ry + s * (t / tx_n);
                let kx = rx + s * (t % tx_n);
                let ic = ic0 + c;
                var v = 0.0;
                if ic < p.in_c {
                    v = nn_a[p.a_off + ((oc * p.in_c + ic) * p.kh + ky) * p.kw + kx];
                }
                ig_w[e] = v;
            }
            workgroupBarrier();
            var wb = 0u;
            for (var o = 0u; o < n_oc; o++) {
                let plane = dbase + vec4<u32>((oc0 + o) * ohw);
                for (var ty = 0u; ty < ty_n; ty++) {
                    let oy = y0 - vec4<i32>(i32(ty));
                    for (var tx = 0u; tx < tx_n; tx++) {
                        let ox = x0 - vec4<i32>(i32(tx));
                        let v = vec4<f32>(ig_dy(plane.x, oy.x, ox.x), ig_dy(plane.y, oy.y, ox.y), ig_dy(plane.z, oy.z, ox.z), ig_dy(plane.w, oy.w, ox.w));
                        for (var c = 0u; c < IG_CB; c++) {
                            acc[c] = fma(vec4<f32>(ig_w[wb + c]), v, acc[c]);
                        }
                        wb += IG_CB;
                    }
                }
            }
        }
    }

    // dx[img, ic, iy0 + s qy, ix0 + s qx] for every pixel and channel in range (0 where no tap
    // reaches).
    for (var j = 0u; j < 4u; j++) {
        let m = m0 + lid + j * IG_WG;
        if m >= total {
            break;
        }
        let img = m / phw;
        let q = m % phw;
        let iy = iy0 + s * (q / pw);
        let ix = ix0 + s * (q % pw);
        let ihw = p.in_h * p.in_w;
        let at = p.c_off + (img * p.in_c + ic0) * ihw + iy * p.in_w + ix;
        for (var c = 0u; c < IG_CB; c++) {
            if ic0 + c >= p.in_c {
                break;
            }
            nn_c[at + c * ihw] = acc[c][j];
        }
    }
}
