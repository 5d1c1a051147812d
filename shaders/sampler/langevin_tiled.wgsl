// ULA and MALA on an MLP energy with the tiled strategy (shaders/nn/mlp_tiled.wgsl): a workgroup
// owns T chains and evaluates their networks cooperatively; states, gradients and proposals
// live in the per-chain scratch buffer. The arithmetic of each step is that of
// shaders/sampler/langevin.wgsl (same Philox counters, same accept rule, same frozen-chain policy), so
// both strategies, and the CPU twin (src/sampler/cpu.rs), give the same chains up to rounding.
#import common/chain.wgsl
#import mlp_net
#import nn/mlp_tiled.wgsl

@group(0) @binding(8) var<storage, read_write> scratch: array<f32>;   // [chains, SCR]

var<workgroup> e_x: array<f32, T>;
var<workgroup> e_y: array<f32, T>;
var<workgroup> take: array<u32, T>;
var<workgroup> dead: array<u32, T>;
// Chains this dispatch advances (written back at the end, even if they freeze on the way).
var<workgroup> live: array<u32, T>;

const QUADS: u32 = (DIM + 3u) / 4u;

fn scratch_finite(first: u32, c: u32, x_off: u32, g_off: u32, e: f32) -> bool {
    var ok = is_finite(e);
    for (var i = 0u; i < DIM; i++) {
        ok = ok && is_finite(scratch[scratch_at(first, c, x_off + i)]) && is_finite(scratch[scratch_at(first, c, g_off + i)]);
    }
    return ok;
}

fn run_tiled(tid: u32, group: u32, mala: bool) {
    let first = group * T;
    for (var j = tid; j < T * DIM; j += WG) {
        let c = j / DIM;
        if first + c < p.n_chains {
            scratch[scratch_at(first, c, X_OFF + j % DIM)] = state[(first + c) * DIM + j % DIM];
        }
    }
    if tid < T {
        dead[tid] = 1u;
        if first + tid < p.n_chains {
            dead[tid] = stats[4u * (first + tid) + 1u];
        }
    }
    storageBarrier();
    workgroupBarrier();
    tile_energy_grad(tid, first, X_OFF, GX_OFF);
    if tid < T {
        e_x[tid] = NET_SIGN * out_tile[tid];
        if dead[tid] == 0u && !scratch_finite(first, tid, X_OFF, GX_OFF, e_x[tid]) {
            dead[tid] = 1u;
            freeze(first + tid);
        }
        live[tid] = 1u - dead[tid];
    }
    workgroupBarrier();
    var accepted = 0u;
    var prob_sum = 0.0;
    for (var k = 0u; k < p.n_steps; k++) {
        let step = p.step_base + k;
        // Proposals, four dimensions (one Philox call) per item.
        for (var j = tid; j < T * QUADS; j += WG) {
            let c = j / QUADS;
            let q = j % QUADS;
            if dead[c] == 0u {
                let lc = first + c;
                let h = chain_params[lc].x;
                let beta = chain_params[lc].y;
                let noise4 = normal4(p.seed, p.chain_offset + lc, step, STREAM_PROPOSAL_NOISE, q);
                for (var u = 0u; u < 4u; u++) {
                    let i = 4u * q + u;
                    if i < DIM {
                        let x = scratch[scratch_at(first, c, X_OFF + i)];
                        let g = beta * scratch[scratch_at(first, c, GX_OFF + i)];
                        var y: f32;
                        if mala {
                            y = mala_proposal(x, g, h, dim_scale[i], noise4[u]);
                        } else {
                            let s = ula_noise_std(p.noise_scale, h);
                            y = ula_coordinate(x, g, h, s, p.grad_clamp, noise4[u], p.use_box != 0u, p.box_lo, p.box_hi, dim_scale[i]);
                        }
                        scratch[scratch_at(first, c, Y_OFF + i)] = y;
                    }
                }
            }
        }
        storageBarrier();
        workgroupBarrier();
        tile_energy_grad(tid, first, Y_OFF, GY_OFF);
        if tid < T {
            let lc = first + tid;
            take[tid] = 0u;
            e_y[tid] = NET_SIGN * out_tile[tid];
            if dead[tid] == 0u {
                let finite = scratch_finite(first, tid, Y_OFF, GY_OFF, e_y[tid]);
                if !mala {
                    if finite {
                        take[tid] = 1u;
                    } else {
                        dead[tid] = 1u;
                        freeze(lc);
                    }
                } else {
                    let h = chain_params[lc].x;
                    let beta = chain_params[lc].y;
                    var log_alpha = -1.0e30;
                    if finite {
                        var terms = vec2<f32>(0.0);
                        for (var i = 0u; i < DIM; i++) {
                            let x = scratch[scratch_at(first, tid, X_OFF + i)];
                            let y = scratch[scratch_at(first, tid, Y_OFF + i)];
                            let gx = beta * scratch[scratch_at(first, tid, GX_OFF + i)];
                            let gy = beta * scratch[scratch_at(first, tid, GY_OFF + i)];
                            terms += mala_q_terms(x, y, gx, gy, h, dim_scale[i]);
                        }
                        log_alpha = mala_log_alpha(beta, e_x[tid], e_y[tid], terms, h);
                    }
                    prob_sum += accept_prob(log_alpha);
                    let u = uniform4(p.seed, p.chain_offset + lc, step, STREAM_ACCEPT, 0u).x;
                    if log(u) <= log_alpha {
                        take[tid] = 1u;
                        accepted += 1u;
                    }
                }
                if take[tid] == 1u {
                    e_x[tid] = e_y[tid];
                }
            }
        }
        workgroupBarrier();
        for (var j = tid; j < T * DIM; j += WG) {
            let c = j / DIM;
            let i = j % DIM;
            if take[c] == 1u {
                scratch[scratch_at(first, c, X_OFF + i)] = scratch[scratch_at(first, c, Y_OFF + i)];
                scratch[scratch_at(first, c, GX_OFF + i)] = scratch[scratch_at(first, c, GY_OFF + i)];
            }
            let done = step + 1u - p.trace_start;
            if dead[c] == 0u && p.trace_every > 0u && step >= p.trace_start && done % p.trace_every == 0u
                && done / p.trace_every <= p.trace_slots {
                trace[((done / p.trace_every - 1u) * p.n_chains + first + c) * DIM + i] = scratch[scratch_at(first, c, X_OFF + i)];
            }
        }
        storageBarrier();
        workgroupBarrier();
    }
    for (var j = tid; j < T * DIM; j += WG) {
        let c = j / DIM;
        if live[c] == 1u {
            state[(first + c) * DIM + j % DIM] = scratch[scratch_at(first, c, X_OFF + j % DIM)];
        }
    }
    if tid < T && live[tid] == 1u {
        let lc = first + tid;
        energies[lc] = e_x[tid];
        stats[4u * lc] += accepted;
        stats[4u * lc + 2u] = bitcast<u32>(bitcast<f32>(stats[4u * lc + 2u]) + prob_sum);
    }
}

@compute @workgroup_size(WG)
fn ula_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    run_tiled(lid.x, wid.x, false);
}

@compute @workgroup_size(WG)
fn mala_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    run_tiled(lid.x, wid.x, true);
}
