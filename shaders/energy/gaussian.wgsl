// Gaussians with diagonal or full precision: the WGSL twin of src/energy/gaussian.rs.
// Parameters live in `energy_params` (declared by the kernel) from `base` on, in the layout
// written by the `pack_into` of the same-named Rust file (src/energy/gaussian.rs). DIM comes from
// the assembled prelude; each function adds weight * dE/dx into g and returns weight * E(x).

// E = 0.5 * sum_i (x_i - m_i)^2 * inv_var_i.   params: mean[DIM], inv_var[DIM]
fn gaussian_diag_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    var e = 0.0;
    for (var i = 0u; i < DIM; i++) {
        let r = (*x)[i] - energy_params[base + i];
        let p = energy_params[base + DIM + i];
        e += 0.5 * r * r * p;
        (*g)[i] += weight * r * p;
    }
    return weight * e;
}

// E = 0.5 * (x - m)^T P (x - m).   params: mean[DIM], P[DIM * DIM] row-major
fn gaussian_precision_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    var r: array<f32, DIM>;
    for (var i = 0u; i < DIM; i++) {
        r[i] = (*x)[i] - energy_params[base + i];
    }
    var e = 0.0;
    for (var i = 0u; i < DIM; i++) {
        var pr = 0.0;
        for (var j = 0u; j < DIM; j++) {
            pr += energy_params[base + DIM + i * DIM + j] * r[j];
        }
        e += 0.5 * r[i] * pr;
        (*g)[i] += weight * pr;
    }
    return weight * e;
}
