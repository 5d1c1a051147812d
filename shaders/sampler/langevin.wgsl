// Langevin samplers. CPU twin: src/sampler/cpu.rs (`CpuSampler::propose`, `verdict`, `log_alpha`;
// the step itself: common/langevin.wgsl and its twin src/sampler/langevin.rs).
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
    let noise_scale = ula_noise_std(p.noise_scale, h);
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
            y[i] = ula_coordinate(x[i], g[i], h, noise_scale, p.grad_clamp, noise4[i % 4u], p.use_box != 0u, p.box_lo, p.box_hi, dim_scale[i]);
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
            y[i] = mala_proposal(x[i], g[i], h, dim_scale[i], noise4[i % 4u]);
        }
        let ey = energy_grad_at(&y, &gy, beta);
        var log_alpha = -1.0e30;
        if state_is_finite(&y, &gy, ey) {
            var terms = vec2<f32>(0.0);
            for (var i = 0u; i < DIM; i++) {
                terms += mala_q_terms(x[i], y[i], g[i], gy[i], h, dim_scale[i]);
            }
            log_alpha = mala_log_alpha(beta, e, ey, terms, h);
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
