// The Langevin step, written once (CPU twin: src/sampler/langevin.rs). Every kernel that takes
// a Langevin step imports it: langevin, langevin_tiled, langevin_layered, train, train_tiled,
// train_layered, restore.
//
// ULA:  x' = x - h clamp(g) + s xi                      (s = sqrt(2h) unless configured)
// MALA: y  = x - h m g(x) + sqrt(2h) sqrt(m) xi, with log q(x|y) - log q(y|x) for
//       q(b|a) = N(b; a - h m g(a), 2h diag(m)) summed from mala_q_terms.

// A gradient coordinate clipped to [-limit, limit]; a limit <= 0 leaves it alone.
fn clamp_grad(g: f32, limit: f32) -> f32 {
    return select(g, clamp(g, -limit, limit), limit > 0.0);
}

// The noise standard deviation of an unadjusted step of size h: noise_scale, or sqrt(2h) when
// it is negative.
fn ula_noise_std(noise_scale: f32, h: f32) -> f32 {
    return select(noise_scale, sqrt(2.0 * h), noise_scale < 0.0);
}

// One coordinate of an unadjusted Langevin step: x - h clamp(g) + noise_std xi.
fn ula_update(x: f32, g: f32, h: f32, noise_std: f32, grad_clamp: f32, xi: f32) -> f32 {
    return x - h * clamp_grad(g, grad_clamp) + noise_std * xi;
}

// One coordinate of the samplers' ULA step: the update, clamped to [lo, hi] when use_box, and
// x itself where the dimension is fixed (a per-dimension scale of 0: conditional sampling).
fn ula_coordinate(x: f32, g: f32, h: f32, noise_std: f32, grad_clamp: f32, xi: f32, use_box: bool, lo: f32, hi: f32, scale: f32) -> f32 {
    var v = ula_update(x, g, h, noise_std, grad_clamp, xi);
    if use_box {
        v = clamp(v, lo, hi);
    }
    return select(v, x, scale == 0.0);
}

// One coordinate of MALA's proposal with inverse mass m.
fn mala_proposal(x: f32, g: f32, h: f32, m: f32, xi: f32) -> f32 {
    return x - h * m * g + sqrt(2.0 * h) * sqrt(m) * xi;
}

// One coordinate's terms (forward, backward) of log q(x|y) - log q(y|x) = (forward -
// backward) / 4h: ((y - x + h m g(x))^2 / m, (x - y + h m g(y))^2 / m); a fixed dimension
// (m = 0) adds nothing.
fn mala_q_terms(x: f32, y: f32, gx: f32, gy: f32, h: f32, m: f32) -> vec2<f32> {
    let f = y - x + h * m * gx;
    let b = x - y + h * m * gy;
    let m_safe = max(m, 1e-30);
    return vec2<f32>(f * f / m_safe, b * b / m_safe);
}

// MALA's log acceptance ratio at inverse temperature beta from the energies at x and y and the
// summed mala_q_terms.
fn mala_log_alpha(beta: f32, e_x: f32, e_y: f32, terms: vec2<f32>, h: f32) -> f32 {
    return beta * (e_x - e_y) + (terms.x - terms.y) / (4.0 * h);
}
