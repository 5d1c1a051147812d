// Langevin samplers. CPU twin: src/sampler/cpu.rs (`step_ula`, `step_mala`).
//
// ULA:  x' = x - h * clamp(g(x)) + s * xi            (optionally clamped to a box)
// MALA: y  = x - h m g(x) + sqrt(2h m) xi, accepted with the Metropolis-Hastings ratio, where
//       m = dim_scale is a diagonal preconditioner (inverse mass; 1 unless adapted).
// g is the tempered gradient beta * grad E. xi uses Philox counter
// (chain, step, STREAM_PROPOSAL_NOISE, i / 4), the accept uniform (chain, step, STREAM_ACCEPT, 0).
// MALA rejects a non-finite proposal; ULA freezes the chain.
#import common/chain.wgsl

@compute @workgroup_size(64)
fn ula(@builtin(global_invocation_id) gid: vec3<u32>) {
    let local = gid.x;
    if local >= p.n_chains || is_frozen(local) {
        return;
    }
    let chain = p.chain_offset + local;
    let h = chain_params[local].x;
    let beta = chain_params[local].y;
    var noise_scale = p.noise_scale;
    if noise_scale < 0.0 {
        noise_scale = sqrt(2.0 * h);
    }
    var x: array<f32, DIM>;
    var g: array<f32, DIM>;
    var e: f32;
    if !begin_chain(local, &x, &g, beta, &e) {
        return;
    }
    var y: array<f32, DIM>;
    var gy: array<f32, DIM>;
    var noise4: vec4<f32>;
    for (var k = 0u; k < p.n_steps; k++) {
        let step = p.step_base + k;
        for (var i = 0u; i < DIM; i++) {
            if i % 4u == 0u {
                noise4 = normal4(p.seed, chain, step, STREAM_PROPOSAL_NOISE, i / 4u);
            }
            var gi = g[i];
            if p.grad_clamp > 0.0 {
                gi = clamp(gi, -p.grad_clamp, p.grad_clamp);
            }
            var v = x[i] - h * gi + noise_scale * noise4[i % 4u];
            if p.use_box != 0u {
                v = clamp(v, p.box_lo, p.box_hi);
            }
            // A per-dimension scale of 0 fixes the dimension (conditional sampling).
            y[i] = select(v, x[i], dim_scale[i] == 0.0);
        }
        let ey = energy_grad_at(&y, &gy, beta);
        if !state_is_finite(&y, &gy, ey) {
            freeze(local);
            break;
        }
        x = y;
        g = gy;
        e = ey;
        record_trace(local, step, &x);
    }
    finish_chain(local, &x, e, 0u, 0.0);
}

@compute @workgroup_size(64)
fn mala(@builtin(global_invocation_id) gid: vec3<u32>) {
    let local = gid.x;
    if local >= p.n_chains || is_frozen(local) {
        return;
    }
    let chain = p.chain_offset + local;
    let h = chain_params[local].x;
    let beta = chain_params[local].y;
    let noise_scale = sqrt(2.0 * h);
    var x: array<f32, DIM>;
    var g: array<f32, DIM>;
    var e: f32;
    if !begin_chain(local, &x, &g, beta, &e) {
        return;
    }
    var y: array<f32, DIM>;
    var gy: array<f32, DIM>;
    var noise4: vec4<f32>;
    var accepted = 0u;
    var prob_sum = 0.0;
    for (var k = 0u; k < p.n_steps; k++) {
        let step = p.step_base + k;
        for (var i = 0u; i < DIM; i++) {
            if i % 4u == 0u {
                noise4 = normal4(p.seed, chain, step, STREAM_PROPOSAL_NOISE, i / 4u);
            }
            let m = dim_scale[i];
            y[i] = x[i] - h * m * g[i] + noise_scale * sqrt(m) * noise4[i % 4u];
        }
        let ey = energy_grad_at(&y, &gy, beta);
        var log_alpha = -1.0e30;
        if state_is_finite(&y, &gy, ey) {
            // log q(x|y) - log q(y|x) for q(b|a) = N(b; a - h m g(a), 2h diag(m)).
            var forward = 0.0;
            var backward = 0.0;
            for (var i = 0u; i < DIM; i++) {
                let m = dim_scale[i];
                let f = y[i] - x[i] + h * m * g[i];
                let b = x[i] - y[i] + h * m * gy[i];
                forward += f * f / max(m, 1e-30);
                backward += b * b / max(m, 1e-30);
            }
            log_alpha = beta * (e - ey) + (forward - backward) / (4.0 * h);
        }
        prob_sum += accept_prob(log_alpha);
        let u = uniform4(p.seed, chain, step, STREAM_ACCEPT, 0u).x;
        if log(u) <= log_alpha {
            x = y;
            g = gy;
            e = ey;
            accepted += 1u;
        }
        record_trace(local, step, &x);
    }
    finish_chain(local, &x, e, accepted, prob_sum);
}
