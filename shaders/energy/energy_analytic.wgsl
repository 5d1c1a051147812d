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

// Constraints (penalties that are 0 on the feasible set). Each reads its own weight w from its
// parameters and scales by the caller's weight too.

// Box, quadratic: E = w * sum_i max(x_i - hi_i, 0)^2 + max(lo_i - x_i, 0)^2.
// params: lo[DIM], hi[DIM], w
fn box_quadratic_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    let w = weight * energy_params[base + 2u * DIM];
    var e = 0.0;
    for (var i = 0u; i < DIM; i++) {
        let above = max((*x)[i] - energy_params[base + DIM + i], 0.0);
        let below = max(energy_params[base + i] - (*x)[i], 0.0);
        e += above * above + below * below;
        (*g)[i] += w * 2.0 * (above - below);
    }
    return w * e;
}

// Box, softplus barrier of sharpness s: E = w / s * sum_i softplus(s (x_i - hi_i)) +
// softplus(s (lo_i - x_i)).   params: lo[DIM], hi[DIM], w, s
fn box_softplus_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    let w = weight * energy_params[base + 2u * DIM];
    let s = energy_params[base + 2u * DIM + 1u];
    var e = 0.0;
    for (var i = 0u; i < DIM; i++) {
        let za = s * ((*x)[i] - energy_params[base + DIM + i]);
        let zb = s * (energy_params[base + i] - (*x)[i]);
        e += softplus(za) + softplus(zb);
        (*g)[i] += w * (sigmoid(za) - sigmoid(zb));
    }
    return w * e / s;
}

// Linear: r = a.x - b; E = w * max(r, 0)^2 (a.x <= b) or w * r^2 (a.x = b, `equality`, which
// the generated call passes as a constant).   params: a[DIM], b, w
fn linear_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32, equality: bool) -> f32 {
    let w = weight * energy_params[base + DIM + 1u];
    var dot = 0.0;
    for (var i = 0u; i < DIM; i++) {
        dot += energy_params[base + i] * (*x)[i];
    }
    let r = dot - energy_params[base + DIM];
    let v = select(max(r, 0.0), r, equality);
    for (var i = 0u; i < DIM; i++) {
        (*g)[i] += w * 2.0 * v * energy_params[base + i];
    }
    return w * v * v;
}

fn linear_inequality_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    return linear_energy(x, g, base, weight, false);
}

fn linear_equality_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    return linear_energy(x, g, base, weight, true);
}

// Norm ball |x - c| <= r on the squared norm (smooth at x = c): v = max(|x - c|^2 - r^2, 0),
// E = w * v^2.   params: c[DIM], r, w
fn norm_ball_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    let w = weight * energy_params[base + DIM + 1u];
    let radius = energy_params[base + DIM];
    var n2 = 0.0;
    for (var i = 0u; i < DIM; i++) {
        let r = (*x)[i] - energy_params[base + i];
        n2 += r * r;
    }
    let v = max(n2 - radius * radius, 0.0);
    for (var i = 0u; i < DIM; i++) {
        (*g)[i] += w * 4.0 * v * ((*x)[i] - energy_params[base + i]);
    }
    return w * v * v;
}

// Simplex: E = w * ((sum_i x_i - 1)^2 + sum_i max(-x_i, 0)^2).   params: w
fn simplex_energy(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {
    let w = weight * energy_params[base];
    var total = 0.0;
    for (var i = 0u; i < DIM; i++) {
        total += (*x)[i];
    }
    let t = total - 1.0;
    var e = t * t;
    for (var i = 0u; i < DIM; i++) {
        let neg = max(-(*x)[i], 0.0);
        e += neg * neg;
        (*g)[i] += w * 2.0 * (t - neg);
    }
    return w * e;
}

// The pixel that element k of an image group moves to pixel p of a [C, side, side] state:
// k % 4 quarter turns (row, col) -> (col, side-1-row), then for k >= 4 a column mirror. The
// twin of `image_source` in src/energy/mod.rs; the generated group functions call it.
fn group_image_source(p: u32, k: u32, side: u32) -> u32 {
    let plane = side * side;
    let c = p / plane;
    let r = p % plane;
    var a = r / side;
    var b = r % side;
    for (var q = 0u; q < k % 4u; q++) {
        let a0 = a;
        a = b;
        b = side - 1u - a0;
    }
    if (k >= 4u) {
        b = side - 1u - b;
    }
    return c * plane + a * side + b;
}
