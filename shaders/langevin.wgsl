// Langevin samplers, one invocation per chain, `n_steps` steps per dispatch with the chain's
// state, energy and gradient kept in registers. CPU twin: src/sampler/langevin/cpu.rs.
//
// ULA:  x' = x - h * clamp(g(x)) + s * xi            (optionally clamped to a box)
// MALA: y  = x - h * g(x) + sqrt(2h) * xi, accepted with the Metropolis-Hastings ratio.
// xi uses Philox counter (chain, step, STREAM_PROPOSAL_NOISE, i / 4), the accept uniform
// (chain, step, STREAM_ACCEPT, 0). A chain whose state, energy or gradient becomes non-finite is
// frozen at its last finite state and flagged; MALA rejects a non-finite proposal instead.
#import common/rng.wgsl
#import common/finite.wgsl
#import energy

struct StepParams {
    n_chains: u32,
    chain_offset: u32,
    step_base: u32,
    n_steps: u32,
    seed: vec2<u32>,
    step_size: f32,
    noise_scale: f32,
    grad_clamp: f32,
    box_lo: f32,
    box_hi: f32,
    use_box: u32,
    trace_every: u32,
    trace_slots: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read_write> state: array<f32>;     // [chains, DIM]
@group(0) @binding(2) var<storage, read_write> stats: array<u32>;     // [chains, 2]: accepted, frozen
@group(0) @binding(3) var<storage, read> energy_params: array<f32>;
@group(0) @binding(4) var<storage, read_write> energies: array<f32>;  // [chains]
@group(0) @binding(5) var<storage, read_write> trace: array<f32>;     // [slots, chains, DIM]

fn state_is_finite(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, e: f32) -> bool {
    var ok = is_finite(e);
    for (var i = 0u; i < DIM; i++) {
        ok = ok && is_finite((*x)[i]) && is_finite((*g)[i]);
    }
    return ok;
}

// Thinned trace: after global step `step`, slot (step + 1) / every - 1.
fn record_trace(local: u32, step: u32, x: ptr<function, array<f32, DIM>>) {
    if p.trace_every == 0u {
        return;
    }
    let done = step + 1u;
    if done % p.trace_every != 0u || done / p.trace_every > p.trace_slots {
        return;
    }
    let base = ((done / p.trace_every - 1u) * p.n_chains + local) * DIM;
    for (var i = 0u; i < DIM; i++) {
        trace[base + i] = (*x)[i];
    }
}

fn load_state(local: u32, x: ptr<function, array<f32, DIM>>) {
    for (var i = 0u; i < DIM; i++) {
        (*x)[i] = state[local * DIM + i];
    }
}

fn store_state(local: u32, x: ptr<function, array<f32, DIM>>, e: f32) {
    for (var i = 0u; i < DIM; i++) {
        state[local * DIM + i] = (*x)[i];
    }
    energies[local] = e;
}

@compute @workgroup_size(64)
fn ula(@builtin(global_invocation_id) gid: vec3<u32>) {
    let local = gid.x;
    if local >= p.n_chains || stats[2u * local + 1u] != 0u {
        return;
    }
    let chain = p.chain_offset + local;
    var x: array<f32, DIM>;
    var g: array<f32, DIM>;
    load_state(local, &x);
    var e = energy_grad(&x, &g);
    if !state_is_finite(&x, &g, e) {
        stats[2u * local + 1u] = 1u;
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
            let noise = noise4[i % 4u];
            var gi = g[i];
            if p.grad_clamp > 0.0 {
                gi = clamp(gi, -p.grad_clamp, p.grad_clamp);
            }
            var v = x[i] - p.step_size * gi + p.noise_scale * noise;
            if p.use_box != 0u {
                v = clamp(v, p.box_lo, p.box_hi);
            }
            y[i] = v;
        }
        let ey = energy_grad(&y, &gy);
        if !state_is_finite(&y, &gy, ey) {
            stats[2u * local + 1u] = 1u;
            break;
        }
        x = y;
        g = gy;
        e = ey;
        record_trace(local, step, &x);
    }
    store_state(local, &x, e);
}

@compute @workgroup_size(64)
fn mala(@builtin(global_invocation_id) gid: vec3<u32>) {
    let local = gid.x;
    if local >= p.n_chains || stats[2u * local + 1u] != 0u {
        return;
    }
    let chain = p.chain_offset + local;
    let h = p.step_size;
    var x: array<f32, DIM>;
    var g: array<f32, DIM>;
    load_state(local, &x);
    var e = energy_grad(&x, &g);
    if !state_is_finite(&x, &g, e) {
        stats[2u * local + 1u] = 1u;
        return;
    }
    var y: array<f32, DIM>;
    var gy: array<f32, DIM>;
    var accepted = 0u;
    var noise4: vec4<f32>;
    for (var k = 0u; k < p.n_steps; k++) {
        let step = p.step_base + k;
        for (var i = 0u; i < DIM; i++) {
            if i % 4u == 0u {
                noise4 = normal4(p.seed, chain, step, STREAM_PROPOSAL_NOISE, i / 4u);
            }
            let noise = noise4[i % 4u];
            y[i] = x[i] - h * g[i] + p.noise_scale * noise;
        }
        let ey = energy_grad(&y, &gy);
        var log_alpha = -1.0e30;
        if state_is_finite(&y, &gy, ey) {
            // log q(x|y) - log q(y|x) for q(b|a) = N(b; a - h g(a), 2h I).
            var forward = 0.0;
            var backward = 0.0;
            for (var i = 0u; i < DIM; i++) {
                let f = y[i] - x[i] + h * g[i];
                let b = x[i] - y[i] + h * gy[i];
                forward += f * f;
                backward += b * b;
            }
            log_alpha = e - ey + (forward - backward) / (4.0 * h);
        }
        let u = uniform4(p.seed, chain, step, STREAM_ACCEPT, 0u).x;
        if log(u) <= log_alpha {
            x = y;
            g = gy;
            e = ey;
            accepted += 1u;
        }
        record_trace(local, step, &x);
    }
    stats[2u * local] += accepted;
    store_state(local, &x, e);
}
