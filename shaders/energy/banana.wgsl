// The banana (Rosenbrock-shaped): the WGSL twin of src/energy/banana.rs.
// Parameters live in `energy_params` (declared by the kernel) from `base` on, in the layout
// written by the `pack_into` of the same-named Rust file (src/energy/banana.rs). DIM comes from
// the assembled prelude; each function adds weight * dE/dx into g and returns weight * E(x).

// E = sum_{i < DIM-1} (a - x_i)^2 + b * (x_{i+1} - x_i^2)^2.   params: a, b
fn banana_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    let a = energy_params[base];
    let b = energy_params[base + 1u];
    var e = 0.0;
    for (var i = 0u; i + 1u < DIM; i++) {
        let xi = (*x)[i];
        let d = a - xi;
        let q = (*x)[i + 1u] - xi * xi;
        e += d * d + b * q * q;
        (*g)[i] += weight * (-2.0 * d - 4.0 * b * xi * q);
        (*g)[i + 1u] += weight * 2.0 * b * q;
    }
    return weight * e;
}
