// Diagonal Gaussian mixtures: the WGSL twin of src/energy/mixture.rs.
// Parameters live in `energy_params` (declared by the kernel) from `base` on, in the layout
// written by the `pack_into` of the same-named Rust file (src/energy/mixture.rs). DIM comes from
// the assembled prelude; each function adds weight * dE/dx into g and returns weight * E(x).

// E = -log sum_k exp(c_k - 0.5 * sum_i ((x_i - m_ki) * s_ki)^2), s = 1/std, c_k = log w_k - log
// normaliser. One pass with an online log-sum-exp; the gradient is the responsibility-weighted
// sum of (x - m_k) * s_k^2.   params: K, then per component: c_k, mean[DIM], inv_std[DIM]
fn gaussian_mixture_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    let k_count = u32(energy_params[base]);
    let stride = 1u + 2u * DIM;
    var acc: array<f32, DIM>;
    var run_max = -3.0e38;
    var run_sum = 0.0;
    for (var k = 0u; k < k_count; k++) {
        let c = base + 1u + k * stride;
        var a = energy_params[c];
        for (var i = 0u; i < DIM; i++) {
            let z = ((*x)[i] - energy_params[c + 1u + i]) * energy_params[c + 1u + DIM + i];
            a -= 0.5 * z * z;
        }
        var scale_old = 1.0;
        var w = 1.0;
        if a > run_max {
            scale_old = exp(run_max - a);
            run_max = a;
        } else {
            w = exp(a - run_max);
        }
        run_sum = run_sum * scale_old + w;
        for (var i = 0u; i < DIM; i++) {
            let s = energy_params[c + 1u + DIM + i];
            acc[i] = acc[i] * scale_old + w * ((*x)[i] - energy_params[c + 1u + i]) * s * s;
        }
    }
    for (var i = 0u; i < DIM; i++) {
        (*g)[i] += weight * acc[i] / run_sum;
    }
    return -weight * (run_max + log(run_sum));
}
