// The side network of a layer-kernel training step, recorded by src/train/side_gpu.rs around
// the side network's passes. Cooperative learning's generator (src/train/generator.rs has the
// formulas and the CPU twin):
//   generator_latents       w_j from Philox (j, step, Latent, i / 4)
//   forward pass of the generator on the B latents
//   generator_propose       the negatives: clamp(g(w_j), box), in place of the replay slots
//   ... the trainer's Langevin steps, loss and EBM update ...
//   generator_targets       dL_g/dg = (g(w_j) - x~_j) / B at the generator's outputs, L_g
//   backward pass of the generator
//   side_grad_norm, side_optimizer
// A latent EBM's encoder (src/train/latent.rs):
//   encoder_inputs          the B positives' data rows x_j, the encoder's input
//   forward pass of the encoder
//   encoder_positives       positive j = [x_j, z_j], z_j = clamp(mu + e^(ell/2) eps_j), in place
//                           of the trainer's positives
//   ... the trainer's loss and backward pass, then its pass over the positives (E, dE/d[x, z]) ...
//   encoder_targets         dL_q/df at the encoder's outputs, L_q into the metrics row
//   backward pass of the encoder, side_grad_norm, side_optimizer
#import common/rng.wgsl
#import common/train_step.wgsl

struct SideParams {
    seed: vec2<u32>,
    step: u32,
    batch: u32,
    dim: u32,               // the energy's input width (the generator's outputs; D + L)
    latent: u32,            // the generator's input width; the encoder's latent width L
    n_gen: u32,             // the side network's parameters
    negatives: u32,         // where the B negatives start in work
    metrics: u32,           // where this step's metrics row starts in work
    data_dim: u32,          // encoder: the data's width D, its rows, and where in work the
    data_rows: u32,         // positives, their dE/d[x, z] and their energies are
    positives: u32,
    dx: u32,
    energies: u32,
    optimizer: u32,         // 0 adam, 1 sgd
    lr: f32,
    bias1: f32,
    bias2: f32,
    beta1: f32,             // adam beta1, or sgd momentum
    beta2: f32,
    eps: f32,
    clip_norm: f32,
}

@group(0) @binding(0) var<uniform> p: SideParams;
@group(0) @binding(1) var<storage, read_write> work: array<f32>;         // the trainer's
@group(0) @binding(2) var<storage, read> data: array<f32>;               // [box lo (D) | box hi (D) | ...]
@group(0) @binding(3) var<storage, read_write> latents: array<f32>;      // the side net's input [B, latent or D]
@group(0) @binding(4) var<storage, read_write> outputs: array<f32>;      // g(w) [B, D]; the encoder's [B, 2L]
@group(0) @binding(5) var<storage, read_write> d_out: array<f32>;        // dL/d outputs
@group(0) @binding(6) var<storage, read_write> params: array<f32>;       // the side net's, packed
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

// A latent's posterior q(z_i | x) from the encoder's two outputs (latent.rs `Posterior::of`):
// mu = M tanh(f_mu / M), M = LATENT_BOX - 1, ell = -softplus(-f_ell), and dmu/df_mu, dell/df_ell.
const LATENT_BOX: f32 = 4.0;
struct Posterior {
    mu: f32,
    ell: f32,
    d_mu: f32,
    d_ell: f32,
}
fn posterior(f_mu: f32, f_ell: f32) -> Posterior {
    let m = LATENT_BOX - 1.0;
    let t = tanh(f_mu / m);
    let softplus = max(-f_ell, 0.0) + log(1.0 + exp(-abs(f_ell)));
    return Posterior(m * t, -softplus, 1.0 - t * t, 1.0 / (1.0 + exp(f_ell)));
}

// Latent i of positive j: its eps from Philox (j, step, Latent, i / 4), the encoder's output.
fn latent_eps(j: u32, i: u32) -> f32 {
    return normal4(p.seed, j, p.step, STREAM_LATENT, i / 4u)[i % 4u];
}
fn latent_posterior(j: u32, i: u32) -> Posterior {
    return posterior(outputs[j * 2u * p.latent + i], outputs[j * 2u * p.latent + p.latent + i]);
}

@compute @workgroup_size(64)
fn encoder_inputs(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= p.batch {
        return;
    }
    // The trainer's batch row of entry j (train_layered.wgsl batch_row).
    let draw = philox4x32_10(vec4<u32>(j, p.step, STREAM_BATCH, 0u), p.seed);
    let row = mulhilo(draw.x, p.data_rows).x;
    for (var i = 0u; i < p.data_dim; i++) {
        latents[j * p.data_dim + i] = data[4u * p.dim + row * p.data_dim + i];
    }
}

@compute @workgroup_size(64)
fn encoder_positives(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= p.batch {
        return;
    }
    let at = p.positives + j * p.dim;
    for (var i = 0u; i < p.data_dim; i++) {
        work[at + i] = latents[j * p.data_dim + i];
    }
    for (var i = 0u; i < p.latent; i++) {
        let q = latent_posterior(j, i);
        work[at + p.data_dim + i] = clamp(q.mu + exp(0.5 * q.ell) * latent_eps(j, i), -LATENT_BOX, LATENT_BOX);
    }
}

// One workgroup: L_q = (1/B) sum_j [E(x_j, z_j) - 1/2 sum_i ell_i] into the metrics row, and
// its reparameterised gradient at the encoder's outputs: dE/dz_i dmu/df_mu, and
// (dE/dz_i eps_i e^(ell_i/2) / 2 - 1/2) dell/df_ell, each over B.
@compute @workgroup_size(256)
fn encoder_targets(@builtin(local_invocation_index) t: u32) {
    let inv_b = 1.0 / f32(p.batch);
    var acc = 0.0;
    for (var j = t; j < p.batch; j += REDUCE) {
        acc += work[p.energies + j];
    }
    for (var e = t; e < p.batch * p.latent; e += REDUCE) {
        let j = e / p.latent;
        let i = e % p.latent;
        let q = latent_posterior(j, i);
        let dz = work[p.dx + j * p.dim + p.data_dim + i];
        acc -= 0.5 * q.ell;
        d_out[j * 2u * p.latent + i] = dz * q.d_mu * inv_b;
        let d_ell = dz * latent_eps(j, i) * 0.5 * exp(0.5 * q.ell) - 0.5;
        d_out[j * 2u * p.latent + p.latent + i] = d_ell * q.d_ell * inv_b;
    }
    sums_b[t] = vec2<f32>(acc, 0.0);
    sums_a[t] = vec4<f32>(0.0);
    reduce_sums(t);
    if t == 0u {
        work[p.metrics + 8u] = sums_b[0].x * inv_b;
    }
}

// One workgroup: the global norm of the side network's gradient (before clipping).
@compute @workgroup_size(256)
fn side_grad_norm(@builtin(local_invocation_index) t: u32) {
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

// Clipping and the optimizer over the side network's parameters (no weight decay).
@compute @workgroup_size(64)
fn side_optimizer(@builtin(global_invocation_id) gid: vec3<u32>) {
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
