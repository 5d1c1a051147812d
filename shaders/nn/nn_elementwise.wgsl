// The layer kernels that are not GEMMs: activation forward/backward (the activation comes
// from the assembled common/nn_act.wgsl), average pooling (window k, stride k, output size
// rounded down), the bias gradient (a workgroup per channel, a fixed-order tree reduction),
// the sum of split-K partial products, and the residual blocks' sums and copies. Element
// kernels use 256-wide workgroups on a 2-D grid (index = (wg.y * groups.x + wg.x) * 256 +
// lid) so long tensors fit the per-dimension dispatch limit. Host side: src/nn/gpu.rs; CPU
// twins: src/nn/ops.rs, Activation::eval and src/nn/residual.rs.
#import common/nn_act.wgsl

struct EwParams {
    len: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    // avgpool: h, w, k of the input planes; bias_grad: rows (batch), channels, inner (pixels
    // per channel); reduce_parts: parts and the stride between them.
    h: u32,
    w: u32,
    k: u32,
    accumulate: u32,
    rows: u32,
    channels: u32,
    inner: u32,
    parts: u32,
    part_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: EwParams;
@group(0) @binding(1) var<storage, read_write> ew_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> ew_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> ew_c: array<f32>;

fn flat_index(wg: vec3<u32>, groups: vec3<u32>, lid: u32) -> u32 {
    return (wg.y * groups.x + wg.x) * 256u + lid;
}

// c = act(a)
@compute @workgroup_size(256)
fn act_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, groups, lid);
    if i < p.len {
        ew_c[p.c_off + i] = nn_act(ew_a[p.a_off + i]);
    }
}

// c = b * act'(a): a is the pre-activation z, b the gradient with respect to act(z).
@compute @workgroup_size(256)
fn act_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, groups, lid);
    if i < p.len {
        ew_c[p.c_off + i] = ew_b[p.b_off + i] * nn_act_grad(ew_a[p.a_off + i]);
    }
}

// c = a + b (accumulate = 1) or c = a (accumulate = 0): the residual blocks' sum and copy
// (c may be a or b itself).
@compute @workgroup_size(256)
fn add_copy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, groups, lid);
    if i < p.len {
        var v = ew_a[p.a_off + i];
        if p.accumulate != 0u {
            v += ew_b[p.b_off + i];
        }
        ew_c[p.c_off + i] = v;
    }
}

// c[plane, oy, ox] = mean of a[plane, oy k + dy, ox k + dx]; len = planes * oh * ow.
@compute @workgroup_size(256)
fn avgpool_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, groups, lid);
    if i >= p.len {
        return;
    }
    let oh = p.h / p.k;
    let ow = p.w / p.k;
    let plane = i / (oh * ow);
    let oy = (i % (oh * ow)) / ow;
    let ox = i % ow;
    var s = 0.0;
    for (var dy = 0u; dy < p.k; dy++) {
        let row = p.a_off + (plane * p.h + oy * p.k + dy) * p.w + ox * p.k;
        for (var dx = 0u; dx < p.k; dx++) {
            s += ew_a[row + dx];
        }
    }
    ew_c[p.c_off + i] = s * (1.0 / f32(p.k * p.k));
}

// c[plane, iy, ix] = a[plane, iy / k, ix / k] / k^2, 0 where no window covers; len = planes h w.
@compute @workgroup_size(256)
fn avgpool_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, groups, lid);
    if i >= p.len {
        return;
    }
    let oh = p.h / p.k;
    let ow = p.w / p.k;
    let plane = i / (p.h * p.w);
    let oy = (i % (p.h * p.w)) / p.w / p.k;
    let ox = i % p.w / p.k;
    var v = 0.0;
    if oy < oh && ox < ow {
        v = ew_a[p.a_off + (plane * oh + oy) * ow + ox] * (1.0 / f32(p.k * p.k));
    }
    ew_c[p.c_off + i] = v;
}

// c[i] (+)= sum over parts of a[part * part_stride + i]; len = elements per part.
@compute @workgroup_size(256)
fn reduce_parts(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, groups, lid);
    if i >= p.len {
        return;
    }
    var s = 0.0;
    for (var part = 0u; part < p.parts; part++) {
        s += ew_a[p.a_off + part * p.part_stride + i];
    }
    if p.accumulate != 0u {
        s += ew_c[p.c_off + i];
    }
    ew_c[p.c_off + i] = s;
}

var<workgroup> partial: array<f32, 256>;

// c[ch] (+)= sum over rows r and pixels s of a[(r * channels + ch) * inner + s]: one workgroup
// per channel (2-D grid), a strided sum per thread then a tree.
@compute @workgroup_size(256)
fn bias_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ch = wg.y * groups.x + wg.x;
    let live = ch < p.channels;
    var s = 0.0;
    if live {
        let total = p.rows * p.inner;
        for (var t = lid; t < total; t += 256u) {
            s += ew_a[p.a_off + ((t / p.inner) * p.channels + ch) * p.inner + t % p.inner];
        }
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if lid < half {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    if live && lid == 0u {
        var v = partial[0];
        if p.accumulate != 0u {
            v += ew_c[p.c_off + ch];
        }
        ew_c[p.c_off + ch] = v;
    }
}

// Jets of order k = p.k (1 or 2; src/nn/jet.rs): blocks of p.len values, z at a_off, z' at
// a_off + len, z'' at a_off + 2 len; the outputs likewise from c_off.
// a = act(z), a' = act'(z) z', a'' = act''(z) z'^2 + act'(z) z''.
@compute @workgroup_size(256)
fn act_jet_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, groups, lid);
    if i >= p.len {
        return;
    }
    let d = nn_act_jet(ew_a[p.a_off + i]);
    let z1 = ew_a[p.a_off + p.len + i];
    ew_c[p.c_off + i] = d.x;
    ew_c[p.c_off + p.len + i] = d.y * z1;
    if p.k == 2u {
        ew_c[p.c_off + 2u * p.len + i] = d.z * z1 * z1 + d.y * ew_a[p.a_off + 2u * p.len + i];
    }
}

// The reverse of act_jet_forward: z (its three blocks) at a_off, the outputs' adjoints at
// b_off, the inputs' adjoints written at c_off.
@compute @workgroup_size(256)
fn act_jet_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, groups, lid);
    if i >= p.len {
        return;
    }
    let d = nn_act_jet(ew_a[p.a_off + i]);
    let z1 = ew_a[p.a_off + p.len + i];
    let a0 = ew_b[p.b_off + i];
    let a1 = ew_b[p.b_off + p.len + i];
    var dz0 = a0 * d.y + a1 * d.z * z1;
    var dz1 = a1 * d.y;
    if p.k == 2u {
        let z2 = ew_a[p.a_off + 2u * p.len + i];
        let a2 = ew_b[p.b_off + 2u * p.len + i];
        dz0 += a2 * (d.w * z1 * z1 + d.z * z2);
        dz1 += 2.0 * a2 * d.z * z1;
        ew_c[p.c_off + 2u * p.len + i] = a2 * d.y;
    }
    ew_c[p.c_off + i] = dz0;
    ew_c[p.c_off + p.len + i] = dz1;
}
