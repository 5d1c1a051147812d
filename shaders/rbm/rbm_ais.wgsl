// Annealed importance sampling for RBM log Z (Salakhutdinov & Murray 2008), many runs at once.
// CPU twin: src/rbm/ais.rs `ais_cpu` (forward) and `reverse_ais_cpu`.
// Forward runs start from `ais_init`'s base draws with beta_0 = 0 < ... < beta_K = 1; reverse
// runs (Grosse et al. 2015) start from samples of the model written into `vis` by the host and
// visit the same temperatures from 1 down to 0 (beta < beta_prev): the kernels are the same.
//
// Intermediate k (beta_k from 0 to 1), with base-rate visible biases b_A:
//   log f_k(v) = (1 - beta_k) b_A.v + beta_k b.v + sum_j softplus(beta_k (c_j + W_j.v))
//   (Gaussian visibles also carry -|v|^2/2, which cancels in every ratio).
// Per k: `ais_hidden` computes x_j = c_j + W_j.v and samples h ~ p_k(h | v); `ais_weights`
// adds log f_k(v) - log f_{k-1}(v) to the run's log weight (Kahan-compensated); `ais_visible`
// samples v ~ p_k(v | h) unless k is the last temperature. Counters: init
// (run, 0, STREAM_INIT, i / 4); hidden (run, 2k, STREAM_GIBBS, j / 4); visible
// (run, 2k + 1, STREAM_GIBBS, i / 4); a binary unit is on when u < p.
// (A fused variant with one workgroup per run looping over many temperatures gave wrong
// results on lavapipe 22.3 for long dispatches, so each temperature is three short dispatches.)
#import common/rng.wgsl
#import common/activations.wgsl

struct Params {
    rows: u32,
    n_vis: u32,
    n_hid: u32,
    step: u32,
    seed: vec2<u32>,
    beta: f32,
    beta_prev: f32,
    chain_offset: u32,
    gaussian: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> theta: array<f32>;
@group(0) @binding(2) var<storage, read> base_bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> vis: array<f32>;
@group(0) @binding(4) var<storage, read_write> hid: array<f32>;
@group(0) @binding(5) var<storage, read_write> act: array<f32>;
// [runs] pairs (sum, Kahan compensation).
@group(0) @binding(6) var<storage, read_write> logw: array<vec2<f32>>;




@compute @workgroup_size(64)
fn ais_init(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let r = gid.y;
    if i >= p.n_vis || r >= p.rows {
        return;
    }
    let chain = p.chain_offset + r;
    let a = base_bias[i];
    if p.gaussian != 0u {
        vis[r * p.n_vis + i] = a + normal4(p.seed, chain, 0u, STREAM_INIT, i / 4u)[i % 4u];
    } else {
        let u = uniform4(p.seed, chain, 0u, STREAM_INIT, i / 4u)[i % 4u];
        vis[r * p.n_vis + i] = select(0.0, 1.0, u < sigmoid(a));
    }
    if i == 0u {
        logw[r] = vec2<f32>(0.0, 0.0);
    }
}

@compute @workgroup_size(64)
fn ais_hidden(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let r = gid.y;
    if j >= p.n_hid || r >= p.rows {
        return;
    }
    let nv = p.n_vis;
    let v0 = r * nv;
    let w0 = j * nv;
    var acc = vec4<f32>(0.0);
    let n4 = nv & ~3u;
    for (var i = 0u; i < n4; i += 4u) {
        let w = vec4<f32>(theta[w0 + i], theta[w0 + i + 1u], theta[w0 + i + 2u], theta[w0 + i + 3u]);
        let v = vec4<f32>(vis[v0 + i], vis[v0 + i + 1u], vis[v0 + i + 2u], vis[v0 + i + 3u]);
        acc += w * v;
    }
    for (var i = n4; i < nv; i++) {
        acc[i - n4] += theta[w0 + i] * vis[v0 + i];
    }
    let x = theta[p.n_hid * nv + nv + j] + ((acc.x + acc.y) + (acc.z + acc.w));
    act[r * p.n_hid + j] = x;
    let u = uniform4(p.seed, p.chain_offset + r, 2u * p.step, STREAM_GIBBS, j / 4u)[j % 4u];
    hid[r * p.n_hid + j] = select(0.0, 1.0, u < sigmoid(p.beta * x));
}

@compute @workgroup_size(64)
fn ais_weights(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if r >= p.rows {
        return;
    }
    let nv = p.n_vis;
    let nh = p.n_hid;
    var bv = 0.0;
    for (var i = 0u; i < nv; i++) {
        bv += (theta[nh * nv + i] - base_bias[i]) * vis[r * nv + i];
    }
    var delta = (p.beta - p.beta_prev) * bv;
    for (var j = 0u; j < nh; j++) {
        let x = act[r * nh + j];
        delta += softplus(p.beta * x) - softplus(p.beta_prev * x);
    }
    // Kahan summation: thousands of small increments without losing their low bits.
    let w = logw[r];
    let y = delta - w.y;
    let t = w.x + y;
    logw[r] = vec2<f32>(t, (t - w.x) - y);
}

@compute @workgroup_size(64)
fn ais_visible(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let r = gid.y;
    if i >= p.n_vis || r >= p.rows {
        return;
    }
    let nv = p.n_vis;
    let h0 = r * p.n_hid;
    var a = 0.0;
    for (var j = 0u; j < p.n_hid; j++) {
        a += theta[j * nv + i] * hid[h0 + j];
    }
    let mean = (1.0 - p.beta) * base_bias[i] + p.beta * (theta[p.n_hid * nv + i] + a);
    let chain = p.chain_offset + r;
    if p.gaussian != 0u {
        vis[r * nv + i] = mean + normal4(p.seed, chain, 2u * p.step + 1u, STREAM_GIBBS, i / 4u)[i % 4u];
    } else {
        let u = uniform4(p.seed, chain, 2u * p.step + 1u, STREAM_GIBBS, i / 4u)[i % 4u];
        vis[r * nv + i] = select(0.0, 1.0, u < sigmoid(mean));
    }
}
