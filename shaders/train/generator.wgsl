// Cooperative learning's generator in a layer-kernel training step (src/train/generator.rs
// has the formulas and the CPU twin; src/train/generator_gpu.rs records these around the
// generator's network passes):
//   generator_latents       w_j from Philox (j, step, Latent, i / 4)
//   forward pass of the generator on the B latents
//   generator_propose       the negatives: clamp(g(w_j), box), in place of the replay slots
//   ... the trainer's Langevin steps, loss and EBM update ...
//   generator_targets       dL_g/dg = (g(w_j) - x~_j) / B at the generator's outputs, L_g
//   backward pass of the generator
//   generator_grad_norm, generator_optimizer
#import common/rng.wgsl
#import common/train_step.wgsl

struct GeneratorParams {
    seed: vec2<u32>,
    step: u32,
    batch: u32,
    dim: u32,
    latent: u32,
    n_gen: u32,             // generator parameters
    negatives: u32,         // where the B negatives start in work
    metrics: u32,           // where this step's metrics row starts in work
    optimizer: u32,         // 0 adam, 1 sgd
    lr: f32,
    bias1: f32,
    bias2: f32,
    beta1: f32,             // adam beta1, or sgd momentum
    beta2: f32,
    eps: f32,
    clip_norm: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: GeneratorParams;
@group(0) @binding(1) var<storage, read_write> work: array<f32>;         // the trainer's
@group(0) @binding(2) var<storage, read> data: array<f32>;               // [box lo (D) | box hi (D) | ...]
@group(0) @binding(3) var<storage, read_write> latents: array<f32>;      // [B, latent]
@group(0) @binding(4) var<storage, read_write> outputs: array<f32>;      // g(w) [B, D]
@group(0) @binding(5) var<storage, read_write> d_out: array<f32>;        // dL_g/dg [B, D]
@group(0) @binding(6) var<storage, read_write> params: array<f32>;       // the generator's, packed
@group(0) @binding(7) var<storage, read_write> param_grads: array<f32>;
// [first moments (N) | second moments (N) | gradient norm]
@group(0) @binding(8) var<storage, read_write> moments: array<f32>;

@compute @workgroup_size(64)
fn generator_latents(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= p.batch {
        return;
    }
    var noise: vec4<f32>;
    for (var i = 0u; i < p.latent; i++) {
        if i % 4u == 0u {
            noise = normal4(p.seed, j, p.step, STREAM_LATENT, i / 4u);
        }
        latents[j * p.latent + i] = noise[i % 4u];
    }
}

// One invocation per value of the B x D proposals.
@compute @workgroup_size(64)
fn generator_propose(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if e >= p.batch * p.dim {
        return;
    }
    let i = e % p.dim;
    work[p.negatives + e] = clamp(outputs[e], data[i], data[p.dim + i]);
}

// One workgroup: the regression's output gradient and L_g into the metrics row.
@compute @workgroup_size(256)
fn generator_targets(@builtin(local_invocation_index) t: u32) {
    let inv_b = 1.0 / f32(p.batch);
    var acc = 0.0;
    for (var e = t; e < p.batch * p.dim; e += REDUCE) {
        let r = outputs[e] - work[p.negatives + e];
        acc += 0.5 * r * r;
        d_out[e] = r * inv_b;
    }
    sums_b[t] = vec2<f32>(acc, 0.0);
    sums_a[t] = vec4<f32>(0.0);
    reduce_sums(t);
    if t == 0u {
        work[p.metrics + 8u] = sums_b[0].x * inv_b;
    }
}

// One workgroup: the global norm of the generator's gradient (before clipping).
@compute @workgroup_size(256)
fn generator_grad_norm(@builtin(local_invocation_index) t: u32) {
    var acc = 0.0;
    for (var q = t; q < p.n_gen; q += REDUCE) {
        acc += param_grads[q] * param_grads[q];
    }
    sums_b[t] = vec2<f32>(acc, 0.0);
    sums_a[t] = vec4<f32>(0.0);
    reduce_sums(t);
    if t == 0u {
        moments[2u * p.n_gen] = sqrt(sums_b[0].x);
    }
}

// Clipping and the optimizer over the generator's parameters (no weight decay).
@compute @workgroup_size(64)
fn generator_optimizer(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    if q >= p.n_gen {
        return;
    }
    let norm = moments[2u * p.n_gen];
    var scale = 1.0;
    if p.clip_norm > 0.0 && norm > p.clip_norm {
        scale = p.clip_norm / norm;
    }
    let o = OptimizerSettings(p.optimizer, p.lr, p.bias1, p.bias2, p.beta1, p.beta2, p.eps);
    let updated = optimizer_update(o, params[q], param_grads[q] * scale, moments[q], moments[p.n_gen + q]);
    params[q] = updated.x;
    moments[q] = updated.y;
    moments[p.n_gen + q] = updated.z;
}
