// The double well: the WGSL twin of src/energy/double_well.rs.
// Parameters live in `energy_params` (declared by the kernel) from `base` on, in the layout
// written by the `pack_into` of the same-named Rust file (src/energy/double_well.rs). DIM comes from
// the assembled prelude; each function adds weight * dE/dx into g and returns weight * E(x).

// E = h * sum_i (x_i^2 - 1)^2.   params: h
fn double_well_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    let h = energy_params[base];
    var e = 0.0;
    for (var i = 0u; i < DIM; i++) {
        let xi = (*x)[i];
        let q = xi * xi - 1.0;
        e += h * q * q;
        (*g)[i] += weight * 4.0 * h * xi * q;
    }
    return weight * e;
}
