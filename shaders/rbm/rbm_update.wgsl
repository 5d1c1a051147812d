// CD / PCD parameter update with momentum and weight decay; the positive and negative
// statistics are reduced here, one invocation per parameter. CPU twin: src/rbm/cpu.rs `update`.
//
// grad = <v h>_data - <v h>_model (W), <v>_data - <v>_model (b), <h>_data - <h>_model (c),
// each sum over rows in index order. W only: grad -= weight_decay * W.
// vel = momentum * vel + lr * grad; theta += vel. With p.frozen_visible_bias, b stays as it is.
// Dispatch: x over columns (visible index, or hidden index for c), y over W rows 0..n_hid-1,
// then y = n_hid for b and y = n_hid + 1 for c.
#import common/rbm_params.wgsl

@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read_write> velocity: array<f32>;
// Data rows start at p.in_offset; model rows at 0.
@group(0) @binding(3) var<storage, read> v_pos: array<f32>;
@group(0) @binding(4) var<storage, read> h_pos: array<f32>;
@group(0) @binding(5) var<storage, read> v_neg: array<f32>;
@group(0) @binding(6) var<storage, read> h_neg: array<f32>;

@compute @workgroup_size(64)
fn update(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    let nv = p.n_vis;
    let nh = p.n_hid;
    var pos = 0.0;
    var neg = 0.0;
    var index = 0u;
    var decay = 0.0;
    if row < nh {
        if col >= nv {
            return;
        }
        for (var n = 0u; n < p.rows; n++) {
            pos += h_pos[n * nh + row] * v_pos[(p.in_offset + n) * nv + col];
        }
        for (var n = 0u; n < p.neg_rows; n++) {
            neg += h_neg[n * nh + row] * v_neg[n * nv + col];
        }
        index = row * nv + col;
        decay = p.weight_decay;
    } else if row == nh {
        if col >= nv || p.frozen_visible_bias != 0u {
            return;
        }
        for (var n = 0u; n < p.rows; n++) {
            pos += v_pos[(p.in_offset + n) * nv + col];
        }
        for (var n = 0u; n < p.neg_rows; n++) {
            neg += v_neg[n * nv + col];
        }
        index = nh * nv + col;
    } else {
        if col >= nh {
            return;
        }
        for (var n = 0u; n < p.rows; n++) {
            pos += h_pos[n * nh + col];
        }
        for (var n = 0u; n < p.neg_rows; n++) {
            neg += h_neg[n * nh + col];
        }
        index = nh * nv + nv + col;
    }
    let t = theta[index];
    let grad = pos / f32(p.rows) - neg / f32(p.neg_rows) - decay * t;
    let vel = p.momentum * velocity[index] + p.lr * grad;
    velocity[index] = vel;
    theta[index] = t + vel;
}
