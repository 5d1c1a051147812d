// RBM block Gibbs half-steps (Bernoulli or unit-variance Gaussian visibles, Bernoulli hiddens).
// CPU twin: src/rbm/cpu.rs (`hidden_step`, `visible_step`).
//
// theta = [W (n_hid rows of n_vis: row j is hidden unit j's filter) | b (n_vis) | c (n_hid)].
// Randomness: unit u of row r at half-step `step` uses Philox counter
// (chain_offset + r, step, STREAM_GIBBS, u / 4), lane u % 4. A binary unit is on when its
// uniform u in (0, 1] satisfies u < p. Gaussian visibles add normal4 at the same counter.
// Dot products over the visible layer use four partial sums (lane i % 4) combined as
// (s0 + s1) + (s2 + s3), and sums over the hidden layer run in index order, exactly as the
// CPU twin does, so with binary inputs both executors form bit-identical pre-activations.
#import common/rng.wgsl
#import common/rbm_params.wgsl
#import common/activations.wgsl

@group(0) @binding(1) var<storage, read> theta: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> samples: array<f32>;


// h_j | v for row r: p = sigmoid(c_j + W_j . v).
@compute @workgroup_size(64)
fn hidden_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let r = gid.y;
    if j >= p.n_hid || r >= p.rows {
        return;
    }
    let v0 = (p.in_offset + r) * p.n_vis;
    let w0 = j * p.n_vis;
    var acc = vec4<f32>(0.0);
    let n4 = p.n_vis & ~3u;
    for (var i = 0u; i < n4; i += 4u) {
        let w = vec4<f32>(theta[w0 + i], theta[w0 + i + 1u], theta[w0 + i + 2u], theta[w0 + i + 3u]);
        let v = vec4<f32>(src[v0 + i], src[v0 + i + 1u], src[v0 + i + 2u], src[v0 + i + 3u]);
        acc += w * v;
    }
    for (var i = n4; i < p.n_vis; i++) {
        acc[i - n4] += theta[w0 + i] * src[v0 + i];
    }
    let a = theta[p.n_hid * p.n_vis + p.n_vis + j] + ((acc.x + acc.y) + (acc.z + acc.w));
    let prob = sigmoid(a);
    let u = uniform4(p.seed, p.chain_offset + r, p.step, STREAM_GIBBS, j / 4u)[j % 4u];
    probs[r * p.n_hid + j] = prob;
    samples[r * p.n_hid + j] = select(0.0, 1.0, u < prob);
}

// v_i | h for row r: mean b_i + sum_j W_ji h_j; Bernoulli: p = sigmoid(mean), Gaussian: N(mean, 1).
@compute @workgroup_size(64)
fn visible_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let r = gid.y;
    if i >= p.n_vis || r >= p.rows {
        return;
    }
    let h0 = (p.in_offset + r) * p.n_hid;
    var a = 0.0;
    for (var j = 0u; j < p.n_hid; j++) {
        a += theta[j * p.n_vis + i] * src[h0 + j];
    }
    a = theta[p.n_hid * p.n_vis + i] + a;
    let out = r * p.n_vis + i;
    if p.gaussian != 0u {
        probs[out] = a;
        samples[out] = a + normal4(p.seed, p.chain_offset + r, p.step, STREAM_GIBBS, i / 4u)[i % 4u];
    } else {
        let prob = sigmoid(a);
        let u = uniform4(p.seed, p.chain_offset + r, p.step, STREAM_GIBBS, i / 4u)[i % 4u];
        probs[out] = prob;
        samples[out] = select(0.0, 1.0, u < prob);
    }
}
