// Training steps for networks that run through the batched layer kernels (convolutions,
// several outputs, any width): the steps of src/train/mod.rs around network passes of
// src/nn/gpu_net.rs. One step:
//   negatives_start | negatives_noise    B negatives: replay slots (reset with reset_prob) or noise
//   K x (network pass on the negatives, langevin_step)
//   negatives_store                      the refreshed negatives back into the replay buffer
//   positives                            B data rows, drawn with replacement
//   network pass on the 2B points (forward and head)
//   loss_weights                         loss, dL/dE per point, dL/d(log Z), metrics
//   scale_output_grads                   dE/df *= dL/dE, so the backward pass sums the loss gradient
//   cross_entropy (JEM)                  + d CE / df of the labelled positives, CE into the metrics
//   network backward pass                dL/dtheta into param_grads
//   grad_norm, optimizer_step
// InfoNCE (loss 7): the views, the network pass, the loss of the batch's features
// (train/infonce.wgsl). Score matching (loss 5 DSM, 6 SSM; src/train/score.rs) has no negatives instead:
//   score_points                         the B positives and their noise / projections
//   DSM: network pass (energies, dE/dx), dsm_directions (u = sigma (sigma g - eps) / B)
//   jet pass (src/nn/gpu_jet.rs)         the jets along the directions, dL/dtheta
//   score_metrics, grad_norm, optimizer_step
// CPU twin: src/train/cpu.rs (same Philox counters, same formulas).
#import common/rng.wgsl
#import common/langevin.wgsl
#import common/train_step.wgsl
#import train/infonce.wgsl

struct TrainLayeredParams {
    seed: vec2<u32>,
    step: u32,
    data_rows: u32,
    capacity: u32,
    position: u32,          // first replay slot of this step
    batch: u32,
    dim: u32,
    k: u32,                 // the Langevin step langevin_step takes
    loss: u32,              // 0 cd, 1 softplus, 2 hinge, 3 nce, 4 jem, 5 dsm, 6 ssm, 7 infonce
    metrics_row: u32,
    optimizer: u32,         // 0 adam, 1 sgd
    n_net: u32,             // network parameters (log Z follows them)
    outputs: u32,           // network outputs K per point
    row_stride: u32,        // invocations per row of langevin_step's 2-D dispatch
    blocks: u32,            // row blocks of B points in the points region (2, or 3 for SSM)
    levels: u32,            // DSM noise levels
    rademacher: u32,        // SSM projections: 1 random signs, 0 normals
    conditional: u32,       // DSM: 1 noise-conditional (E/sigma: the residual's factor is 1)
    sigma_max: f32,
    sigma_min: f32,
    paired: u32,            // InfoNCE: 1 when the second views are given (rows data_rows.. of data)
    channels: u32,          // InfoNCE views: the image's shape (height 0: flat points)
    height: u32,
    width: u32,
    view_shift: u32,        // InfoNCE views (contrastive.rs Augment): pixels, radians, factor, std
    view_rotate: f32,
    view_zoom: f32,
    view_noise: f32,
    temperature: f32,       // InfoNCE's T
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

@group(0) @binding(0) var<uniform> p: TrainLayeredParams;
// [metrics (rows x 8) | points (blocks B x D: positives, then negatives; score matching: the
//  positives, their directions, zeros) | dE/dx of the negatives or DSM's points (B x D)
//  | energies (2B; score matching: (E, E', E'') per point) | loss weights (2B; DSM: sigma and
//  the loss per point) | reset flags (B) | scalars (4) | InfoNCE's scratch (infonce.wgsl)]
@group(0) @binding(1) var<storage, read_write> work: array<f32>;
@group(0) @binding(2) var<storage, read_write> replay: array<f32>;      // [capacity, D]
// [box lo | box hi | noise mean | noise std (D each) | data rows x D | labels (rows, JEM)]
@group(0) @binding(3) var<storage, read> data: array<f32>;
@group(0) @binding(4) var<storage, read_write> params: array<f32>;      // the network's, packed
@group(0) @binding(5) var<storage, read_write> param_grads: array<f32>; // dL/dtheta, packed
@group(0) @binding(6) var<storage, read_write> d_out: array<f32>;       // dE/df of the 2B points [2B, K]
// [first moments (N + 1) | second moments (N + 1) | log Z | dL/d(log Z)]
@group(0) @binding(7) var<storage, read_write> moments: array<f32>;
@group(0) @binding(8) var<storage, read_write> outputs: array<f32>;     // the network's f of the 2B points [2B, K]

const METRIC_ROWS: u32 = 16u;

fn points_off() -> u32 {
    return METRIC_ROWS * METRIC_FLOATS;
}
fn dx_off() -> u32 {
    return points_off() + p.blocks * p.batch * p.dim;
}
fn e_off() -> u32 {
    return dx_off() + p.batch * p.dim;
}
fn w_off() -> u32 {
    return e_off() + 3u * p.batch;
}
fn flag_off() -> u32 {
    return w_off() + 2u * p.batch;
}
fn scalar_off() -> u32 {
    return flag_off() + p.batch;
}
fn neg(j: u32) -> u32 {
    return points_off() + (p.batch + j) * p.dim;
}
fn log_z_at() -> u32 {
    return 2u * (p.n_net + 1u);
}

@compute @workgroup_size(64)
fn negatives_start(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= p.batch {
        return;
    }
    let slot = (p.position + j) % p.capacity;
    let base = neg(j);
    var reset = 0.0;
    if uniform4(p.seed, j, p.step, STREAM_BUFFER_RESET, 0u).x < p.reset_prob {
        reset = 1.0;
        var u: vec4<f32>;
        for (var i = 0u; i < p.dim; i++) {
            if i % 4u == 0u {
                u = uniform4(p.seed, j, p.step, STREAM_BUFFER_RESET, 1u + i / 4u);
            }
            work[base + i] = data[i] + (data[p.dim + i] - data[i]) * u[i % 4u];
        }
    } else {
        for (var i = 0u; i < p.dim; i++) {
            work[base + i] = replay[slot * p.dim + i];
        }
    }
    work[flag_off() + j] = reset;
}

@compute @workgroup_size(64)
fn negatives_noise(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= p.batch {
        return;
    }
    let base = neg(j);
    var noise: vec4<f32>;
    for (var i = 0u; i < p.dim; i++) {
        if i % 4u == 0u {
            noise = normal4(p.seed, j, p.step, STREAM_BATCH, 1u + i / 4u);
        }
        work[base + i] = data[2u * p.dim + i] + data[3u * p.dim + i] * noise[i % 4u];
    }
    work[flag_off() + j] = 0.0;
}

// One invocation per (negative, group of 4 coordinates): one Philox draw serves the 4.
@compute @workgroup_size(64)
fn langevin_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let draws = (p.dim + 3u) / 4u;
    let idx = gid.y * p.row_stride + gid.x;
    if idx >= p.batch * draws {
        return;
    }
    let j = idx / draws;
    let q = idx % draws;
    let noise = normal4(p.seed, j, p.step, STREAM_PROPOSAL_NOISE, p.k * draws + q);
    for (var lane = 0u; lane < 4u; lane++) {
        let i = 4u * q + lane;
        if i < p.dim {
            let x = work[neg(j) + i];
            let g = work[dx_off() + j * p.dim + i];
            work[neg(j) + i] = clamp(ula_update(x, g, p.step_size, p.noise_std, p.grad_clamp, noise[lane]), data[i], data[p.dim + i]);
        }
    }
}

@compute @workgroup_size(64)
fn negatives_store(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= p.batch {
        return;
    }
    let slot = (p.position + j) % p.capacity;
    for (var i = 0u; i < p.dim; i++) {
        replay[slot * p.dim + i] = work[neg(j) + i];
    }
}

// Positive j's draw: word 0 picks its data row (with replacement), word 1 DSM's noise level.
fn batch_draw(j: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(j, p.step, STREAM_BATCH, 0u), p.seed);
}

fn batch_row(j: u32) -> u32 {
    return mulhilo(batch_draw(j).x, p.data_rows).x;
}

@compute @workgroup_size(64)
fn positives(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= p.batch {
        return;
    }
    let row = batch_row(j);
    let base = points_off() + j * p.dim;
    for (var i = 0u; i < p.dim; i++) {
        work[base + i] = data[4u * p.dim + row * p.dim + i];
    }
}

const HALF_LOG_TWO_PI: f32 = 0.9189385;

fn noise_log_density(base: u32) -> f32 {
    var acc = 0.0;
    for (var i = 0u; i < p.dim; i++) {
        let z = (work[base + i] - data[2u * p.dim + i]) / data[3u * p.dim + i];
        acc += -0.5 * z * z - log(data[3u * p.dim + i]) - HALF_LOG_TWO_PI;
    }
    return acc;
}


// One workgroup: the loss, dL/dE per point, dL/d(log Z) and the step's metrics row, reduced
// in a fixed order.
@compute @workgroup_size(256)
fn loss_weights(@builtin(local_invocation_index) t: u32) {
    let log_z = moments[log_z_at()];
    let b = p.batch;
    var acc = vec4<f32>(0.0);  // loss, E+, E-, dL/dlogZ
    var acc2 = vec2<f32>(0.0); // resets, negative radius
    for (var j = t; j < b; j += REDUCE) {
        let ep = work[e_off() + j];
        let en = work[e_off() + b + j];
        var log_q = vec2<f32>(0.0);
        if p.loss == 3u {
            log_q = vec2<f32>(noise_log_density(points_off() + j * p.dim), noise_log_density(neg(j)));
        }
        let w = pair_weights(p.loss, p.alpha, p.margin, ep, en, log_z, log_q.x, log_q.y);
        work[w_off() + j] = w.wp / f32(b);
        work[w_off() + b + j] = w.wn / f32(b);
        var r2 = 0.0;
        for (var i = 0u; i < p.dim; i++) {
            let v = work[neg(j) + i];
            r2 += v * v;
        }
        acc += vec4<f32>(w.loss, ep, en, w.dz);
        acc2 += vec2<f32>(work[flag_off() + j], sqrt(r2));
    }
    sums_a[t] = acc;
    sums_b[t] = acc2;
    reduce_sums(t);
    if t == 0u {
        let inv_b = 1.0 / f32(b);
        let row = p.metrics_row * METRIC_FLOATS;
        work[row] = sums_a[0].x * inv_b;
        work[row + 1u] = sums_a[0].y * inv_b;
        work[row + 2u] = sums_a[0].z * inv_b;
        work[row + 4u] = log_z;
        work[row + 5u] = sums_b[0].x * inv_b;
        work[row + 6u] = sums_b[0].y * inv_b;
        moments[log_z_at() + 1u] = sums_a[0].w * inv_b;
    }
}

@compute @workgroup_size(64)
fn scale_output_grads(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = gid.x;
    if s >= 2u * p.batch * p.outputs {
        return;
    }
    d_out[s] *= work[w_off() + s / p.outputs];
}

// JEM, one workgroup: for each positive j with label y, CE = logsumexp f - f[y] and
// d_out[j] += (softmax f - onehot y) / B; the mean CE joins the loss in the metrics row.
@compute @workgroup_size(256)
fn cross_entropy(@builtin(local_invocation_index) t: u32) {
    let b = p.batch;
    let k = p.outputs;
    var acc = 0.0;
    for (var j = t; j < b; j += REDUCE) {
        let row = batch_row(j);
        let label = u32(data[4u * p.dim + p.data_rows * p.dim + row]);
        let base = j * k;
        var m = outputs[base];
        for (var y = 1u; y < k; y++) {
            m = max(m, outputs[base + y]);
        }
        var s = 0.0;
        for (var y = 0u; y < k; y++) {
            s += exp(outputs[base + y] - m);
        }
        for (var y = 0u; y < k; y++) {
            let soft = exp(outputs[base + y] - m) / s;
            d_out[base + y] += (soft - select(0.0, 1.0, y == label)) / f32(b);
        }
        acc += m + log(s) - outputs[base + label];
    }
    sums_b[t] = vec2<f32>(acc, 0.0);
    sums_a[t] = vec4<f32>(0.0);
    reduce_sums(t);
    if t == 0u {
        let ce = sums_b[0].x / f32(b);
        work[p.metrics_row * METRIC_FLOATS + 7u] = ce;
        work[p.metrics_row * METRIC_FLOATS] += ce;
    }
}

// Score matching: positive j of the step in block 0 with its direction in block 1 (the draws
// of src/train/score.rs). DSM: x~ = x + sigma eps, eps in block 1, the residual's factor c
// in the weights (sigma, or 1 for a noise-conditional model);
// SSM: x, the projection v, and a zero block (the input line's second derivative).
@compute @workgroup_size(64)
fn score_points(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= p.batch {
        return;
    }
    let bits = batch_draw(j);
    let row = mulhilo(bits.x, p.data_rows).x;
    let x = points_off() + j * p.dim;
    let v = points_off() + (p.batch + j) * p.dim;
    let source = 4u * p.dim + row * p.dim;
    var draw: vec4<f32>;
    if p.loss == 5u {
        let level = mulhilo(bits.y, p.levels).x;
        var sigma = p.sigma_max;
        if p.levels > 1u {
            sigma = p.sigma_max * pow(p.sigma_min / p.sigma_max, f32(level) / f32(p.levels - 1u));
        }
        for (var i = 0u; i < p.dim; i++) {
            if i % 4u == 0u {
                draw = normal4(p.seed, j, p.step, STREAM_BATCH, 1u + i / 4u);
            }
            let eps = draw[i % 4u];
            work[x + i] = data[source + i] + sigma * eps;
            work[v + i] = eps;
        }
        work[w_off() + j] = select(sigma, 1.0, p.conditional == 1u);
        return;
    }
    let zeros = points_off() + (2u * p.batch + j) * p.dim;
    for (var i = 0u; i < p.dim; i++) {
        if i % 4u == 0u {
            if p.rademacher == 1u {
                draw = uniform4(p.seed, j, p.step, STREAM_PROPOSAL_NOISE, i / 4u);
            } else {
                draw = normal4(p.seed, j, p.step, STREAM_PROPOSAL_NOISE, i / 4u);
            }
        }
        var dir = draw[i % 4u];
        if p.rademacher == 1u {
            dir = select(-1.0, 1.0, dir >= 0.5);
        }
        work[x + i] = data[source + i];
        work[v + i] = dir;
        work[zeros + i] = 0.0;
    }
}

// DSM after the network pass on x~ (g = dE/dx): r = c g - eps, the jet's direction
// u = c r / B replaces eps, the point's loss |r|^2 / 2 goes to the weights.
@compute @workgroup_size(64)
fn dsm_directions(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if j >= p.batch {
        return;
    }
    let c = work[w_off() + j];
    let v = points_off() + (p.batch + j) * p.dim;
    var sq = 0.0;
    for (var i = 0u; i < p.dim; i++) {
        let r = c * work[dx_off() + j * p.dim + i] - work[v + i];
        sq += r * r;
        work[v + i] = c * r / f32(p.batch);
    }
    work[w_off() + p.batch + j] = 0.5 * sq;
}

// One workgroup after the jet pass: the mean loss and energy into the metrics row (no
// negatives: e_neg, resets and radius 0), log Z's gradient 0.
@compute @workgroup_size(256)
fn score_metrics(@builtin(local_invocation_index) t: u32) {
    let b = p.batch;
    var acc = vec4<f32>(0.0);
    for (var j = t; j < b; j += REDUCE) {
        let e = e_off() + 3u * j;
        var loss = work[w_off() + b + j];
        if p.loss == 6u {
            loss = 0.5 * work[e + 1u] * work[e + 1u] - work[e + 2u];
        }
        acc += vec4<f32>(loss, work[e], 0.0, 0.0);
    }
    sums_a[t] = acc;
    sums_b[t] = vec2<f32>(0.0);
    reduce_sums(t);
    if t == 0u {
        let row = p.metrics_row * METRIC_FLOATS;
        work[row] = sums_a[0].x / f32(b);
        work[row + 1u] = sums_a[0].y / f32(b);
        work[row + 2u] = 0.0;
        work[row + 4u] = moments[log_z_at()];
        work[row + 5u] = 0.0;
        work[row + 6u] = 0.0;
        work[row + 7u] = 0.0;
        moments[log_z_at() + 1u] = 0.0;
    }
}

fn gradient(q: u32) -> f32 {
    if q < p.n_net {
        return param_grads[q];
    }
    return moments[log_z_at() + 1u];
}

// One workgroup: the global gradient norm (before clipping).
@compute @workgroup_size(256)
fn grad_norm(@builtin(local_invocation_index) t: u32) {
    var acc = 0.0;
    for (var q = t; q <= p.n_net; q += REDUCE) {
        let g = gradient(q);
        acc += g * g;
    }
    sums_b[t] = vec2<f32>(acc, 0.0);
    sums_a[t] = vec4<f32>(0.0);
    reduce_sums(t);
    if t == 0u {
        let norm = sqrt(sums_b[0].x);
        work[scalar_off()] = norm;
        work[p.metrics_row * METRIC_FLOATS + 3u] = norm;
    }
}

// Clipping, weight decay (not on log Z) and the optimizer, over the N network parameters and
// log Z.
@compute @workgroup_size(64)
fn optimizer_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    let n = p.n_net + 1u;
    if q >= n {
        return;
    }
    let norm = work[scalar_off()];
    var scale = 1.0;
    if p.clip_norm > 0.0 && norm > p.clip_norm {
        scale = p.clip_norm / norm;
    }
    var g = gradient(q) * scale;
    var theta = moments[log_z_at()];
    if q < p.n_net {
        theta = params[q];
        g += p.weight_decay * theta;
    }
    let o = OptimizerSettings(p.optimizer, p.lr, p.bias1, p.bias2, p.beta1, p.beta2, p.eps);
    let updated = optimizer_update(o, theta, g, moments[q], moments[n + q]);
    if q < p.n_net {
        params[q] = updated.x;
    } else {
        moments[log_z_at()] = updated.x;
    }
    moments[q] = updated.y;
    moments[n + q] = updated.z;
}
