// Analytic energies. Each term adds weight * dE/dx into g and returns weight * E(x).
// Parameters live in `energy_params` (declared by the kernel) from `base` on, in the layout
// written by src/energy/mod.rs `Energy::pack_params`. DIM comes from the assembled prelude.

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

// Rosenbrock-shaped banana: E = sum_{i < DIM-1} (a - x_i)^2 + b * (x_{i+1} - x_i^2)^2.
// params: a, b
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
