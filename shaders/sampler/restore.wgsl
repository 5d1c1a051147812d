// Restoration (src/restore.rs): one Langevin step on the free pixels of every image, after a
// network pass wrote dE/dx of all images to `grads`. One invocation per (image, group of 4
// pixels), one Philox draw (image, step, ProposalNoise, group) serving the 4. Observed pixels
// are set to the observation plus observed_noise times the draw (image, level, Observation,
// group): the observation itself outside annealing. CPU twin: `restore::restore` without a
// context.
#import common/rng.wgsl
#import common/langevin.wgsl

struct RestoreParams {
    n: u32,
    dim: u32,
    step: u32,
    row_stride: u32,    // invocations per row of the 2-D dispatch
    seed: vec2<u32>,
    step_size: f32,
    noise_std: f32,
    grad_clamp: f32,    // 0: off
    lo: f32,
    hi: f32,
    fidelity: f32,      // the fidelity weight over sigma^2, for noisy pixels
    observed_noise: f32, // an annealing level's sigma, added to observed pixels (0: none)
    level: u32,
}

@group(0) @binding(0) var<uniform> p: RestoreParams;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;        // [n, dim]
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;    // dE/dx [n, dim]
@group(0) @binding(3) var<storage, read> observed: array<f32>;       // [n, dim]
@group(0) @binding(4) var<storage, read> kinds: array<u32>;          // 0 observed, 1 noisy, 2 missing

@compute @workgroup_size(64)
fn restore_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let draws = (p.dim + 3u) / 4u;
    let idx = gid.y * p.row_stride + gid.x;
    if idx >= p.n * draws {
        return;
    }
    let j = idx / draws;
    let q = idx % draws;
    let noise = normal4(p.seed, j, p.step, STREAM_PROPOSAL_NOISE, q);
    let level_noise = normal4(p.seed, j, p.level, STREAM_OBSERVATION, q);
    for (var lane = 0u; lane < 4u; lane++) {
        let i = 4u * q + lane;
        let k = j * p.dim + i;
        if i >= p.dim {
            continue;
        }
        if kinds[k] == 0u {
            x[k] = observed[k] + p.observed_noise * level_noise[lane];
            continue;
        }
        var g = grads[k];
        if kinds[k] == 1u {
            g += p.fidelity * (x[k] - observed[k]);
        }
        x[k] = clamp(ula_update(x[k], g, p.step_size, p.noise_std, p.grad_clamp, noise[lane]), p.lo, p.hi);
    }
}
