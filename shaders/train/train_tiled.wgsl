// The training negatives with the tiled MLP strategy (shaders/nn/mlp_tiled.wgsl): a workgroup owns
// T replay slots and evaluates their networks cooperatively, so every weight read serves T
// chains. The arithmetic and random numbers are those of `negatives_langevin` in
// shaders/train/train.wgsl (CPU twin: src/train/cpu.rs); positions, gradients live in `scratch`.
#import train/train.wgsl
#import mlp_net
#import nn/mlp_tiled.wgsl

@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;   // [BATCH, SCR]

@compute @workgroup_size(WG)
fn negatives_langevin_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.x;
    let first = wid.x * T;
    for (var j = tid; j < T * DIM; j += WG) {
        let c = j / DIM;
        let i = j % DIM;
        let chain = first + c;
        if chain < BATCH {
            let slot = (p.position + chain) % p.capacity;
            var x = replay[slot * DIM + i];
            if p.k_first == 0u && uniform4(p.seed, chain, p.step, STREAM_BUFFER_RESET, 0u).x < p.reset_prob {
                let u = uniform4(p.seed, chain, p.step, STREAM_BUFFER_RESET, 1u + i / 4u);
                x = data[i] + (data[DIM + i] - data[i]) * u[i % 4u];
            }
            scratch[scratch_at(first, c, X_OFF + i)] = x;
        }
    }
    if p.k_first == 0u && tid < T && first + tid < BATCH {
        work[FLAG_OFF + first + tid] = select(0.0, 1.0, uniform4(p.seed, first + tid, p.step, STREAM_BUFFER_RESET, 0u).x < p.reset_prob);
    }
    storageBarrier();
    workgroupBarrier();
    for (var k = p.k_first; k < p.k_first + p.k_count; k++) {
        tile_energy_grad(tid, first, X_OFF, GX_OFF);
        storageBarrier();
        workgroupBarrier();
        for (var j = tid; j < T * DIM; j += WG) {
            let c = j / DIM;
            let i = j % DIM;
            let chain = first + c;
            if chain < BATCH {
                let noise = normal4(p.seed, chain, p.step, STREAM_PROPOSAL_NOISE, k * DRAWS + i / 4u)[i % 4u];
                let at = scratch_at(first, c, X_OFF + i);
                let g = scratch[scratch_at(first, c, GX_OFF + i)];
                scratch[at] = clamp(ula_update(scratch[at], g, p.step_size, p.noise_std, p.grad_clamp, noise), data[i], data[DIM + i]);
            }
        }
        storageBarrier();
        workgroupBarrier();
    }
    for (var j = tid; j < T * DIM; j += WG) {
        let c = j / DIM;
        let i = j % DIM;
        let chain = first + c;
        if chain < BATCH {
            let x = scratch[scratch_at(first, c, X_OFF + i)];
            replay[((p.position + chain) % p.capacity) * DIM + i] = x;
            work[NEG_OFF + chain * DIM + i] = x;
        }
    }
}
