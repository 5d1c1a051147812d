// What every MCMC kernel shares: per-dispatch parameters, the chain buffers, state load/store
// and thinned traces. One invocation owns one chain; each chain has its own step size and
// inverse temperature beta (parallel tempering runs replicas as chains with beta < 1).
// Host side: src/sampler/gpu.rs. A chain whose state, energy or gradient becomes non-finite is
// frozen at its last finite state and flagged.
#import common/rng.wgsl
#import common/finite.wgsl
#import common/langevin.wgsl
#import energy

struct StepParams {
    n_chains: u32,
    chain_offset: u32,      // global index of this group's first chain (Philox counter)
    step_base: u32,         // global index of this dispatch's first step
    n_steps: u32,
    seed: vec2<u32>,
    noise_scale: f32,       // ULA: noise std; < 0 means sqrt(2 h)
    grad_clamp: f32,        // ULA: <= 0 means off
    box_lo: f32,
    box_hi: f32,
    use_box: u32,
    leapfrog: u32,          // HMC: leapfrog steps L
    leapfrog_jitter: u32,   // HMC: L drawn uniformly from [L - j, L + j]
    step_jitter: f32,       // HMC: eps scaled uniformly in [1 - j, 1 + j]
    trace_every: u32,
    trace_slots: u32,
    trace_start: u32,       // first global step the trace covers
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read_write> state: array<f32>;        // [chains, DIM]
// [chains, 4]: accepted proposals, frozen flag, sum of accept probabilities (f32 bits), unused
@group(0) @binding(2) var<storage, read_write> stats: array<u32>;
@group(0) @binding(3) var<storage, read> energy_params: array<f32>;
@group(0) @binding(4) var<storage, read_write> energies: array<f32>;     // [chains], untempered E
@group(0) @binding(5) var<storage, read_write> trace: array<f32>;        // [slots, chains, DIM]
@group(0) @binding(6) var<storage, read> chain_params: array<vec2<f32>>; // [chains]: (step size, beta)
@group(0) @binding(7) var<storage, read> dim_scale: array<f32>;          // [DIM]: HMC inverse mass, RWMH scale

// E(x), with g set to beta * grad E(x): the tempered gradient and the untempered energy.
fn energy_grad_at(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, beta: f32) -> f32 {
    let e = energy_grad(x, g);
    for (var i = 0u; i < DIM; i++) {
        (*g)[i] *= beta;
    }
    return e;
}

fn state_is_finite(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, e: f32) -> bool {
    var ok = is_finite(e);
    for (var i = 0u; i < DIM; i++) {
        ok = ok && is_finite((*x)[i]) && is_finite((*g)[i]);
    }
    return ok;
}

fn is_frozen(local: u32) -> bool {
    return stats[4u * local + 1u] != 0u;
}

fn freeze(local: u32) {
    stats[4u * local + 1u] = 1u;
}

// Loads the chain's state with its energy and (tempered) gradient; false, with the chain
// frozen, when they are not finite.
fn begin_chain(local: u32, x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, beta: f32, e: ptr<function, f32>) -> bool {
    for (var i = 0u; i < DIM; i++) {
        (*x)[i] = state[local * DIM + i];
    }
    *e = energy_grad_at(x, g, beta);
    if !state_is_finite(x, g, *e) {
        freeze(local);
        return false;
    }
    return true;
}

// Writes the chain back with its energy and this dispatch's acceptance statistics.
fn finish_chain(local: u32, x: ptr<function, array<f32, DIM>>, e: f32, accepted: u32, accept_prob_sum: f32) {
    for (var i = 0u; i < DIM; i++) {
        state[local * DIM + i] = (*x)[i];
    }
    energies[local] = e;
    stats[4u * local] += accepted;
    stats[4u * local + 2u] = bitcast<u32>(bitcast<f32>(stats[4u * local + 2u]) + accept_prob_sum);
}

// Thinned trace: after global step `step`, slot (step + 1 - start) / every - 1.
fn record_trace(local: u32, step: u32, x: ptr<function, array<f32, DIM>>) {
    if p.trace_every == 0u || step < p.trace_start {
        return;
    }
    let done = step + 1u - p.trace_start;
    if done % p.trace_every != 0u || done / p.trace_every > p.trace_slots {
        return;
    }
    let base = ((done / p.trace_every - 1u) * p.n_chains + local) * DIM;
    for (var i = 0u; i < DIM; i++) {
        trace[base + i] = (*x)[i];
    }
}

// min(1, exp(log_alpha)), the acceptance probability step-size adaptation averages.
fn accept_prob(log_alpha: f32) -> f32 {
    return exp(min(log_alpha, 0.0));
}
