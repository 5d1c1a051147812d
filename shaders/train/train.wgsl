// Training kernels for MLP energies: one training step is negatives_langevin (or
// negatives_noise), forward_backward, loss_weights, param_grads, grad_norm, optimizer_step.
// CPU twin: src/train/cpu.rs; the algorithm and its random numbers: src/train/mod.rs.
// The generated `energy` module gives DIM and energy_grad (the network, reading energy_params);
// the generated `train_net` module gives the sizes and offsets below, tape_pass and param_grad.
#import common/rng.wgsl
#import common/langevin.wgsl
#import common/train_step.wgsl
#import energy
#import train_net

struct TrainParams {
    seed: vec2<u32>,
    step: u32,
    data_rows: u32,
    capacity: u32,
    position: u32,          // first replay slot of this step
    k_first: u32,           // Langevin steps [k_first, k_first + k_count) in this dispatch
    k_count: u32,
    loss: u32,              // 0 cd, 1 softplus, 2 hinge, 3 nce
    metrics_row: u32,
    optimizer: u32,         // 0 adam, 1 sgd
    n_chains: u32,          // = BATCH (the name shaders/nn/mlp_tiled.wgsl reads)
    reset_prob: f32,
    step_size: f32,
    noise_std: f32,
    alpha: f32,
    margin: f32,
    lr: f32,
    bias1: f32,
    bias2: f32,
    beta1: f32,             // adam beta1, or sgd momentum
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    clip_norm: f32,
    grad_clamp: f32,        // Langevin gradient clamp (0: off)
}

@group(0) @binding(0) var<uniform> p: TrainParams;
// [theta (N_MLP) | log Z | first moments (N_PARAMS) | second moments (N_PARAMS) | gradient (N_PARAMS)]
@group(0) @binding(1) var<storage, read_write> energy_params: array<f32>;
@group(0) @binding(2) var<storage, read_write> replay: array<f32>;      // [capacity, DIM]
// [tape (2B x TAPE_STRIDE) | negatives (B x DIM) | loss weights (2B) | energies (2B) | reset flags (B) | scalars]
@group(0) @binding(3) var<storage, read_write> work: array<f32>;
// [box lo | box hi | noise mean | noise std (DIM each) | data rows x DIM]
@group(0) @binding(4) var<storage, read> data: array<f32>;
@group(0) @binding(5) var<storage, read_write> metrics: array<f32>;    // [rows, 8]

const DATA_OFF: u32 = 4u * DIM;

@compute @workgroup_size(64)
fn negatives_langevin(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= BATCH {
        return;
    }
    let slot = (p.position + j) % p.capacity;
    var x: array<f32, DIM>;
    var g: array<f32, DIM>;
    for (var i = 0u; i < DIM; i++) {
        x[i] = replay[slot * DIM + i];
    }
    if p.k_first == 0u {
        var reset = 0.0;
        if uniform4(p.seed, j, p.step, STREAM_BUFFER_RESET, 0u).x < p.reset_prob {
            reset = 1.0;
            var u: vec4<f32>;
            for (var i = 0u; i < DIM; i++) {
                if i % 4u == 0u {
                    u = uniform4(p.seed, j, p.step, STREAM_BUFFER_RESET, 1u + i / 4u);
                }
                x[i] = data[i] + (data[DIM + i] - data[i]) * u[i % 4u];
            }
        }
        work[FLAG_OFF + j] = reset;
    }
    var noise: vec4<f32>;
    for (var k = p.k_first; k < p.k_first + p.k_count; k++) {
        energy_grad(&x, &g);
        for (var i = 0u; i < DIM; i++) {
            if i % 4u == 0u {
                noise = normal4(p.seed, j, p.step, STREAM_PROPOSAL_NOISE, k * DRAWS + i / 4u);
            }
            x[i] = clamp(ula_update(x[i], g[i], p.step_size, p.noise_std, p.grad_clamp, noise[i % 4u]), data[i], data[DIM + i]);
        }
    }
    for (var i = 0u; i < DIM; i++) {
        replay[slot * DIM + i] = x[i];
        work[NEG_OFF + j * DIM + i] = x[i];
    }
}

@compute @workgroup_size(64)
fn negatives_noise(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= BATCH {
        return;
    }
    var noise: vec4<f32>;
    for (var i = 0u; i < DIM; i++) {
        if i % 4u == 0u {
            noise = normal4(p.seed, j, p.step, STREAM_BATCH, 1u + i / 4u);
        }
        work[NEG_OFF + j * DIM + i] = data[2u * DIM + i] + data[3u * DIM + i] * noise[i % 4u];
    }
    work[FLAG_OFF + j] = 0.0;
}

// Points 0..B are positives (data rows drawn with replacement), B..2B the negatives.
@compute @workgroup_size(64)
fn forward_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = gid.x;
    if s >= 2u * BATCH {
        return;
    }
    let base = s * TAPE_STRIDE;
    if s < BATCH {
        let bits = philox4x32_10(vec4<u32>(s, p.step, STREAM_BATCH, 0u), p.seed);
        let row = mulhilo(bits.x, p.data_rows).x;
        for (var i = 0u; i < DIM; i++) {
            work[base + i] = data[DATA_OFF + row * DIM + i];
        }
    } else {
        for (var i = 0u; i < DIM; i++) {
            work[base + i] = work[NEG_OFF + (s - BATCH) * DIM + i];
        }
    }
    work[E_OFF + s] = tape_pass(base);
}

const HALF_LOG_TWO_PI: f32 = 0.9189385;

fn noise_log_density(base: u32) -> f32 {
    var acc = 0.0;
    for (var i = 0u; i < DIM; i++) {
        let z = (work[base + i] - data[2u * DIM + i]) / data[3u * DIM + i];
        acc += -0.5 * z * z - log(data[3u * DIM + i]) - HALF_LOG_TWO_PI;
    }
    return acc;
}


// One workgroup: the loss, dL/dE per point (src/train/mod.rs `pair_weights`), dL/d(log Z) and
// the step's metrics row, reduced in a fixed order.
@compute @workgroup_size(256)
fn loss_weights(@builtin(local_invocation_index) t: u32) {
    let log_z = energy_params[N_MLP];
    var acc = vec4<f32>(0.0);  // loss, E+, E-, dL/dlogZ
    var acc2 = vec2<f32>(0.0); // resets, negative radius
    for (var j = t; j < BATCH; j += REDUCE) {
        let ep = work[E_OFF + j];
        let en = work[E_OFF + BATCH + j];
        var log_q = vec2<f32>(0.0);
        if p.loss == 3u {
            log_q = vec2<f32>(noise_log_density(j * TAPE_STRIDE), noise_log_density((BATCH + j) * TAPE_STRIDE));
        }
        let w = pair_weights(p.loss, p.alpha, p.margin, ep, en, log_z, log_q.x, log_q.y);
        work[W_OFF + j] = w.wp / f32(BATCH);
        work[W_OFF + BATCH + j] = w.wn / f32(BATCH);
        var r2 = 0.0;
        for (var i = 0u; i < DIM; i++) {
            let v = work[NEG_OFF + j * DIM + i];
            r2 += v * v;
        }
        acc += vec4<f32>(w.loss, ep, en, w.dz);
        acc2 += vec2<f32>(work[FLAG_OFF + j], sqrt(r2));
    }
    sums_a[t] = acc;
    sums_b[t] = acc2;
    reduce_sums(t);
    if t == 0u {
        let inv_b = 1.0 / f32(BATCH);
        let row = p.metrics_row * METRIC_FLOATS;
        metrics[row] = sums_a[0].x * inv_b;
        metrics[row + 1u] = sums_a[0].y * inv_b;
        metrics[row + 2u] = sums_a[0].z * inv_b;
        metrics[row + 4u] = log_z;
        metrics[row + 5u] = sums_b[0].x * inv_b;
        metrics[row + 6u] = sums_b[0].y * inv_b;
        energy_params[G_OFF + N_MLP] = sums_a[0].w * inv_b;
    }
}

@compute @workgroup_size(64)
fn param_grads(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < N_MLP {
        energy_params[G_OFF + gid.x] = param_grad(gid.x);
    }
}

// One workgroup: the global gradient norm (before clipping).
@compute @workgroup_size(256)
fn grad_norm(@builtin(local_invocation_index) t: u32) {
    var acc = 0.0;
    for (var q = t; q < N_PARAMS; q += REDUCE) {
        let g = energy_params[G_OFF + q];
        acc += g * g;
    }
    sums_b[t] = vec2<f32>(acc, 0.0);
    sums_a[t] = vec4<f32>(0.0);
    reduce_sums(t);
    if t == 0u {
        let norm = sqrt(sums_b[0].x);
        work[SCALAR_OFF] = norm;
        metrics[p.metrics_row * METRIC_FLOATS + 3u] = norm;
    }
}

// Clipping, weight decay (not on log Z) and Adam or SGD with momentum (src/train/cpu.rs
// `optimizer_step`).
@compute @workgroup_size(64)
fn optimizer_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    if q >= N_PARAMS {
        return;
    }
    let norm = work[SCALAR_OFF];
    var scale = 1.0;
    if p.clip_norm > 0.0 && norm > p.clip_norm {
        scale = p.clip_norm / norm;
    }
    let theta = energy_params[q];
    var g = energy_params[G_OFF + q] * scale;
    if q < N_MLP {
        g += p.weight_decay * theta;
    }
    let o = OptimizerSettings(p.optimizer, p.lr, p.bias1, p.bias2, p.beta1, p.beta2, p.eps);
    let updated = optimizer_update(o, theta, g, energy_params[M_OFF + q], energy_params[V_OFF + q]);
    energy_params[q] = updated.x;
    energy_params[M_OFF + q] = updated.y;
    energy_params[V_OFF + q] = updated.z;
}
