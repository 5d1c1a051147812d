// Batched energy and gradient at given points (tests, figures, evaluation).
// CPU twin: `Energy::energy_grad` in src/energy/mod.rs.
#import energy

@group(0) @binding(0) var<storage, read> energy_params: array<f32>;
@group(0) @binding(1) var<storage, read> points: array<f32>;            // [n, DIM]
@group(0) @binding(2) var<storage, read_write> energies_out: array<f32>; // [n]
@group(0) @binding(3) var<storage, read_write> grads_out: array<f32>;    // [n, DIM]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if n >= arrayLength(&energies_out) {
        return;
    }
    var x: array<f32, DIM>;
    var g: array<f32, DIM>;
    for (var i = 0u; i < DIM; i++) {
        x[i] = points[n * DIM + i];
    }
    energies_out[n] = energy_grad(&x, &g);
    for (var i = 0u; i < DIM; i++) {
        grads_out[n * DIM + i] = g[i];
    }
}
