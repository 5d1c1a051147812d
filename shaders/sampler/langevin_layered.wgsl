// ULA and MALA for energies that run through the batched layer kernels (networks too large to
// inline into one invocation per chain). A step is three stages: `propose` (one invocation per
// coordinate) writes every chain's proposal y, the network pass evaluates E(y) and dE/dy for
// all chains at once, `accept` (one invocation per chain) finishes the step. Same formulas
// and Philox counters as langevin.wgsl and its CPU twin (src/sampler/cpu.rs), so chains
// depend on (seed, chain) only.
//
// points = [x (n x d) | y (n x d)], grads = [beta * dE/dx | dE/dy (untempered)],
// energies = [E(x) | E(y)].
#import common/rng.wgsl
#import common/finite.wgsl
#import common/langevin.wgsl

struct LayeredParams {
    n_chains: u32,
    dim: u32,
    chain_offset: u32,
    step: u32,
    seed: vec2<u32>,
    noise_scale: f32,   // ULA: noise std; < 0 means sqrt(2 h)
    grad_clamp: f32,    // ULA: <= 0 means off
    box_lo: f32,
    box_hi: f32,
    use_box: u32,
    kind: u32,          // 0 ULA, 1 MALA
    row_stride: u32,    // invocations per row of a 2-D dispatch
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: LayeredParams;
@group(0) @binding(1) var<storage, read_write> points: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> energies: array<f32>;
// [chains, 4]: accepted proposals, frozen flag, sum of accept probabilities (f32 bits), unused
@group(0) @binding(4) var<storage, read_write> stats: array<u32>;
@group(0) @binding(5) var<storage, read> chain_params: array<vec2<f32>>;  // (step size, beta)
@group(0) @binding(6) var<storage, read> dim_scale: array<f32>;

fn frozen(local: u32) -> bool {
    return stats[4u * local + 1u] != 0u;
}

// y = x, so that the first network pass evaluates the starting states.
@compute @workgroup_size(64)
fn load_start(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.y * p.row_stride + gid.x;
    let nd = p.n_chains * p.dim;
    if idx < nd {
        points[nd + idx] = points[idx];
    }
}

// Takes the evaluated starting states: g = beta * grad E, E; freezes non-finite chains.
@compute @workgroup_size(64)
fn start(@builtin(global_invocation_id) gid: vec3<u32>) {
    let local = gid.x;
    if local >= p.n_chains {
        return;
    }
    let nd = p.n_chains * p.dim;
    let beta = chain_params[local].y;
    let e = energies[p.n_chains + local];
    var ok = is_finite(e);
    for (var i = 0u; i < p.dim; i++) {
        let at = local * p.dim + i;
        let g = beta * grads[nd + at];
        grads[at] = g;
        ok = ok && is_finite(g) && is_finite(points[at]);
    }
    energies[local] = e;
    if !ok {
        stats[4u * local + 1u] = 1u;
    }
}

@compute @workgroup_size(64)
fn propose(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.y * p.row_stride + gid.x;
    let nd = p.n_chains * p.dim;
    if idx >= nd {
        return;
    }
    let local = idx / p.dim;
    let i = idx % p.dim;
    let x = points[idx];
    if frozen(local) {
        points[nd + idx] = x;
        return;
    }
    let chain = p.chain_offset + local;
    let h = chain_params[local].x;
    let noise = normal4(p.seed, chain, p.step, STREAM_PROPOSAL_NOISE, i / 4u)[i % 4u];
    var y: f32;
    if p.kind == 0u {
        let s = ula_noise_std(p.noise_scale, h);
        y = ula_coordinate(x, grads[idx], h, s, p.grad_clamp, noise, p.use_box != 0u, p.box_lo, p.box_hi, dim_scale[i]);
    } else {
        y = mala_proposal(x, grads[idx], h, dim_scale[i], noise);
    }
    points[nd + idx] = y;
}

@compute @workgroup_size(64)
fn accept(@builtin(global_invocation_id) gid: vec3<u32>) {
    let local = gid.x;
    if local >= p.n_chains || frozen(local) {
        return;
    }
    let nd = p.n_chains * p.dim;
    let base = local * p.dim;
    let h = chain_params[local].x;
    let beta = chain_params[local].y;
    let ey = energies[p.n_chains + local];
    var finite = is_finite(ey);
    for (var i = 0u; i < p.dim; i++) {
        finite = finite && is_finite(points[nd + base + i]) && is_finite(grads[nd + base + i]);
    }
    var take = finite;
    if p.kind == 0u {
        if !finite {
            stats[4u * local + 1u] = 1u;
            return;
        }
    } else {
        var log_alpha = -1.0e30;
        if finite {
            var terms = vec2<f32>(0.0);
            for (var i = 0u; i < p.dim; i++) {
                // grads holds beta grad E at x, and the untempered gradient at the proposal.
                terms += mala_q_terms(points[base + i], points[nd + base + i], grads[base + i], beta * grads[nd + base + i], h, dim_scale[i]);
            }
            log_alpha = mala_log_alpha(beta, energies[local], ey, terms, h);
        }
        stats[4u * local + 2u] = bitcast<u32>(bitcast<f32>(stats[4u * local + 2u]) + exp(min(log_alpha, 0.0)));
        let u = uniform4(p.seed, p.chain_offset + local, p.step, STREAM_ACCEPT, 0u).x;
        take = log(u) <= log_alpha;
        if take {
            stats[4u * local] += 1u;
        }
    }
    if take {
        for (var i = 0u; i < p.dim; i++) {
            points[base + i] = points[nd + base + i];
            grads[base + i] = beta * grads[nd + base + i];
        }
        energies[local] = ey;
    }
}
