// Hamiltonian Monte Carlo: L leapfrog steps with a diagonal mass matrix in one invocation, then a
// Metropolis test on the Hamiltonian H = beta E(q) + 0.5 sum_i p_i^2 inv_mass_i.
// CPU twin: src/sampler/cpu.rs (`CpuSampler::propose`, `leapfrog`, `log_alpha`).
// Momentum: Philox (chain, step, STREAM_MOMENTUM, i / 4); accept uniform, step jitter and
// leapfrog jitter: lanes x, y, z of (chain, step, STREAM_ACCEPT, 0).
#import common/chain.wgsl

@compute @workgroup_size(64)
fn hmc(@builtin(global_invocation_id) gid: vec3<u32>) {
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
    var q: array<f32, DIM>;
    var gq: array<f32, DIM>;
    var mom: array<f32, DIM>;
    var noise4: vec4<f32>;
    var accepted = 0u;
    var prob_sum = 0.0;
    for (var k = 0u; k < p.n_steps; k++) {
        let step = p.step_base + k;
        let u = uniform4(p.seed, chain, step, STREAM_ACCEPT, 0u);
        let eps = h * (1.0 + p.step_jitter * (2.0 * u.y - 1.0));
        var n_leap = p.leapfrog;
        if p.leapfrog_jitter > 0u {
            let span = 2u * p.leapfrog_jitter + 1u;
            n_leap = p.leapfrog - p.leapfrog_jitter + min(u32(u.z * f32(span)), span - 1u);
        }
        var kinetic0 = 0.0;
        for (var i = 0u; i < DIM; i++) {
            if i % 4u == 0u {
                noise4 = normal4(p.seed, chain, step, STREAM_MOMENTUM, i / 4u);
            }
            // A scale of 0 fixes the dimension: no momentum, no drift.
            mom[i] = select(noise4[i % 4u] / sqrt(dim_scale[i]), 0.0, dim_scale[i] == 0.0);
            kinetic0 += 0.5 * mom[i] * mom[i] * dim_scale[i];
            q[i] = x[i];
            gq[i] = g[i];
        }
        var eq = e;
        var finite = true;
        for (var i = 0u; i < DIM; i++) {
            mom[i] -= 0.5 * eps * gq[i];
        }
        for (var l = 0u; l < n_leap; l++) {
            for (var i = 0u; i < DIM; i++) {
                q[i] += eps * dim_scale[i] * mom[i];
            }
            eq = energy_grad_at(&q, &gq, beta);
            if !state_is_finite(&q, &gq, eq) {
                finite = false;
                break;
            }
            let kick = select(eps, 0.5 * eps, l + 1u == n_leap);
            for (var i = 0u; i < DIM; i++) {
                mom[i] -= kick * gq[i];
            }
        }
        var log_alpha = -1.0e30;
        if finite {
            var kinetic1 = 0.0;
            for (var i = 0u; i < DIM; i++) {
                kinetic1 += 0.5 * mom[i] * mom[i] * dim_scale[i];
            }
            log_alpha = beta * (e - eq) + kinetic0 - kinetic1;
        }
        prob_sum += accept_prob(log_alpha);
        if log(u.x) <= log_alpha {
            x = q;
            g = gq;
            e = eq;
            accepted += 1u;
        }
        record_trace(local, step, &x);
    }
    finish_chain(local, &x, e, accepted, prob_sum);
}
