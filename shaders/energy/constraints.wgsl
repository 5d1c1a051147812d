// Constraints (penalties that are 0 on the feasible set): the WGSL twin of src/energy/constraints.rs.
// Parameters live in `energy_params` (declared by the kernel) from `base` on, in the layout
// written by the `pack_into` of the same-named Rust file (src/energy/constraints.rs). DIM comes from
// the assembled prelude; each function adds weight * dE/dx into g and returns weight * E(x).

#import common/activations.wgsl

// Each reads its own weight w from its parameters and scales by the caller's weight too.

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
