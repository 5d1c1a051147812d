// Parallel tempering swaps. Chains are laid out replica-minor: sampler chain n * R + r is
// replica r (inverse temperature beta_r, beta_0 = 1) of base chain n. One invocation per
// (base chain, neighbour pair); a round swaps the pairs (r, r + 1) with r of one parity,
// accepted with probability min(1, exp((beta_r - beta_{r+1}) (E_r - E_{r+1}))).
// Uniform: Philox (base chain, round, STREAM_SWAP, r). CPU twin: src/sampler/cpu.rs (`swap_round`).
#import common/rng.wgsl

struct SwapParams {
    n_base: u32,          // base chains in this group
    replicas: u32,
    round: u32,
    parity: u32,
    seed: vec2<u32>,
    base_offset: u32,     // global index of the group's first base chain
    dim: u32,
}

@group(0) @binding(0) var<uniform> sp: SwapParams;
@group(0) @binding(1) var<storage, read_write> state: array<f32>;        // [chains, dim]
@group(0) @binding(2) var<storage, read_write> stats: array<u32>;        // [chains, 4], frozen at 1
@group(0) @binding(3) var<storage, read_write> energies: array<f32>;     // [chains]
@group(0) @binding(4) var<storage, read> chain_params: array<vec2<f32>>; // [chains]: (step, beta)
@group(0) @binding(5) var<storage, read_write> swaps: array<u32>;        // [n_base, replicas - 1]

@compute @workgroup_size(64)
fn swap(@builtin(global_invocation_id) gid: vec3<u32>) {
    let pairs = max(sp.replicas / 2u, 1u);
    let n = gid.x / pairs;
    let r = 2u * (gid.x % pairs) + sp.parity;
    if n >= sp.n_base || r + 1u >= sp.replicas {
        return;
    }
    let a = n * sp.replicas + r;
    let b = a + 1u;
    if stats[4u * a + 1u] != 0u || stats[4u * b + 1u] != 0u {
        return;
    }
    let log_alpha = (chain_params[a].y - chain_params[b].y) * (energies[a] - energies[b]);
    let u = uniform4(sp.seed, sp.base_offset + n, sp.round, STREAM_SWAP, r).x;
    if log(u) <= log_alpha {
        for (var i = 0u; i < sp.dim; i++) {
            let t = state[a * sp.dim + i];
            state[a * sp.dim + i] = state[b * sp.dim + i];
            state[b * sp.dim + i] = t;
        }
        let t = energies[a];
        energies[a] = energies[b];
        energies[b] = t;
        swaps[n * (sp.replicas - 1u) + r] += 1u;
    }
}
