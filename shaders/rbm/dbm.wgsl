// The DBM's h1 half-step: h1_j | v, h2 with p = sigmoid((c1_j + W1_j . v) + sum_k W2_kj h2_k).
// CPU twin: src/rbm/deep/cpu.rs (`h1_step`). The other two thirds of a block Gibbs step are
// rbm.wgsl's visible_step (v | h1, layer 1) and hidden_step (h2 | h1, layer 2).
//
// theta1 = layer 1 [W1 (n1 rows of n_vis) | b (n_vis) | c1 (n1)],
// theta2 = layer 2 [W2 (n2 rows of n1) | unused visible bias (n1) | c2 (n2)].
// Randomness as in rbm.wgsl: unit j of row r uses Philox counter
// (chain_offset + r, step, STREAM_GIBBS, j / 4), lane j % 4; on when u < p.
// W1 . v uses four partial sums (lane i % 4) combined as (s0 + s1) + (s2 + s3) as
// rbm.wgsl's hidden_step does; W2^T h2 is summed in index order as its visible_step does.
#import common/rng.wgsl
#import common/activations.wgsl

struct DbmParams {
    rows: u32,
    n_vis: u32,
    n1: u32,
    n2: u32,
    seed: vec2<u32>,
    step: u32,
    chain_offset: u32,
}

@group(0) @binding(0) var<uniform> p: DbmParams;
@group(0) @binding(1) var<storage, read> theta1: array<f32>;
@group(0) @binding(2) var<storage, read> theta2: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> h2: array<f32>;
@group(0) @binding(5) var<storage, read_write> probs: array<f32>;
@group(0) @binding(6) var<storage, read_write> samples: array<f32>;

@compute @workgroup_size(64)
fn h1_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let r = gid.y;
    if j >= p.n1 || r >= p.rows {
        return;
    }
    let v0 = r * p.n_vis;
    let w0 = j * p.n_vis;
    var acc = vec4<f32>(0.0);
    let n4 = p.n_vis & ~3u;
    for (var i = 0u; i < n4; i += 4u) {
        let w = vec4<f32>(theta1[w0 + i], theta1[w0 + i + 1u], theta1[w0 + i + 2u], theta1[w0 + i + 3u]);
        let x = vec4<f32>(v[v0 + i], v[v0 + i + 1u], v[v0 + i + 2u], v[v0 + i + 3u]);
        acc += w * x;
    }
    for (var i = n4; i < p.n_vis; i++) {
        acc[i - n4] += theta1[w0 + i] * v[v0 + i];
    }
    let h0 = r * p.n2;
    var down = 0.0;
    for (var k = 0u; k < p.n2; k++) {
        down += theta2[k * p.n1 + j] * h2[h0 + k];
    }
    let a = (theta1[p.n1 * p.n_vis + p.n_vis + j] + ((acc.x + acc.y) + (acc.z + acc.w))) + down;
    let prob = sigmoid(a);
    let u = uniform4(p.seed, p.chain_offset + r, p.step, STREAM_GIBBS, j / 4u)[j % 4u];
    probs[r * p.n1 + j] = prob;
    samples[r * p.n1 + j] = select(0.0, 1.0, u < prob);
}
