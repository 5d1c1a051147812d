// Per-row RBM evaluation: reconstruction error and free energy. CPU twin: src/rbm/cpu.rs
// (`recon_errors`, `free_energies`).
//
// F(v) = -b.v - sum_j softplus(c_j + W_j.v)          (Bernoulli visibles)
//        + |v|^2 / 2                                   (Gaussian visibles, unit variance)
// softplus(x) = max(x, 0) + log(1 + exp(-|x|)) never overflows.
#import common/rbm_params.wgsl
#import common/activations.wgsl

@group(0) @binding(1) var<storage, read> theta: array<f32>;
// Rows start at p.in_offset.
@group(0) @binding(2) var<storage, read> data: array<f32>;
@group(0) @binding(3) var<storage, read> recon: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;


// Squared error between a data row and its mean reconstruction E[v | h ~ p(h | v)].
@compute @workgroup_size(64)
fn recon_error(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if r >= p.rows {
        return;
    }
    let v0 = (p.in_offset + r) * p.n_vis;
    var err = 0.0;
    for (var i = 0u; i < p.n_vis; i++) {
        let d = data[v0 + i] - recon[r * p.n_vis + i];
        err += d * d;
    }
    out[p.out_offset + r] = err;
}

@compute @workgroup_size(64)
fn free_energy(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if r >= p.rows {
        return;
    }
    let nv = p.n_vis;
    let nh = p.n_hid;
    let v0 = (p.in_offset + r) * nv;
    var bv = 0.0;
    var vv = 0.0;
    for (var i = 0u; i < nv; i++) {
        let x = data[v0 + i];
        bv += theta[nh * nv + i] * x;
        vv += x * x;
    }
    var f = -bv;
    if p.gaussian != 0u {
        f += 0.5 * vv;
    }
    let n4 = nv & ~3u;
    for (var j = 0u; j < nh; j++) {
        let w0 = j * nv;
        var acc = vec4<f32>(0.0);
        for (var i = 0u; i < n4; i += 4u) {
            let w = vec4<f32>(theta[w0 + i], theta[w0 + i + 1u], theta[w0 + i + 2u], theta[w0 + i + 3u]);
            let x = vec4<f32>(data[v0 + i], data[v0 + i + 1u], data[v0 + i + 2u], data[v0 + i + 3u]);
            acc += w * x;
        }
        for (var i = n4; i < nv; i++) {
            acc[i - n4] += theta[w0 + i] * data[v0 + i];
        }
        f -= softplus(theta[nh * nv + nv + j] + ((acc.x + acc.y) + (acc.z + acc.w)));
    }
    out[p.out_offset + r] = f;
}
