// Random-walk Metropolis: y = x + h * scale_i * xi_i, accepted with probability
// min(1, exp(beta (E(x) - E(y)))). CPU twin: src/sampler/cpu.rs (`CpuSampler::propose`, `log_alpha`).
// xi: Philox (chain, step, STREAM_PROPOSAL_NOISE, i / 4); accept uniform (chain, step, STREAM_ACCEPT, 0).
#import common/chain.wgsl

@compute @workgroup_size(64)
fn rwmh(@builtin(global_invocation_id) gid: vec3<u32>) {
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
            y[i] = x[i] + h * dim_scale[i] * noise4[i % 4u];
        }
        let ey = energy_grad_at(&y, &gy, beta);
        var log_alpha = -1.0e30;
        if state_is_finite(&y, &gy, ey) {
            log_alpha = beta * (e - ey);
        }
        prob_sum += accept_prob(log_alpha);
        let u = uniform4(p.seed, chain, step, STREAM_ACCEPT, 0u).x;
        if log(u) <= log_alpha {
            x = y;
            e = ey;
            accepted += 1u;
        }
        record_trace(local, step, &x);
    }
    finish_chain(local, &x, e, accepted, prob_sum);
}
