//! The Langevin step, written once: the Rust twin of shaders/common/langevin.wgsl, which every
//! kernel that takes a Langevin step imports (langevin, langevin_tiled, langevin_layered, train,
//! train_tiled, train_layered, restore). The CPU sampler (per chain and on lanes of 16 chains),
//! the CPU trainer's replay refresh and restoration call these, so one change here and one
//! there changes every executor.
//!
//! ULA:  x' = x - h clamp(g) + s xi                      (s = sqrt(2h) unless configured)
//! MALA: y  = x - h m g(x) + sqrt(2h) sqrt(m) xi, with log q(x|y) - log q(y|x) for
//!       q(b|a) = N(b; a - h m g(a), 2h diag(m)) summed from [`mala_q_terms`].

use crate::num::Field;
use crate::num::lanes::Lanes;

/// A coordinate of one chain (`f32`) or of a lane block of chains ([`Lanes`]).
pub trait Coord: Field {
    /// Clamped to [lo, hi], NaN kept (as `f32::clamp`: a non-finite proposal must stay one).
    fn clamped(self, lo: f32, hi: f32) -> Self;
}

impl Coord for f32 {
    #[inline(always)]
    fn clamped(self, lo: f32, hi: f32) -> Self {
        self.clamp(lo, hi)
    }
}

impl Coord for Lanes {
    #[inline(always)]
    fn clamped(self, lo: f32, hi: f32) -> Self {
        self.map(|v| v.clamp(lo, hi))
    }
}

/// A gradient coordinate clipped to [-limit, limit]; a limit <= 0 leaves it alone.
#[inline(always)]
pub fn clamp_grad<T: Coord>(g: T, limit: f32) -> T {
    if limit > 0.0 { g.clamped(-limit, limit) } else { g }
}

/// The noise standard deviation of an unadjusted step of size h: `noise_scale`, or sqrt(2h)
/// when it is negative (`None` in the sampler's configuration).
#[inline(always)]
pub fn ula_noise_std(noise_scale: f32, h: f32) -> f32 {
    if noise_scale < 0.0 { (2.0 * h).sqrt() } else { noise_scale }
}

/// One coordinate of an unadjusted Langevin step: x - h clamp(g) + noise_std xi.
#[inline(always)]
pub fn ula_update<T: Coord>(x: T, g: T, h: T, noise_std: T, grad_clamp: f32, xi: T) -> T {
    x - h * clamp_grad(g, grad_clamp) + noise_std * xi
}

/// One coordinate of the samplers' ULA step: the update, clamped to `bounds` where given, and
/// x itself where the dimension is fixed (a per-dimension scale of 0: conditional sampling).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn ula_coordinate<T: Coord>(
    x: T,
    g: T,
    h: T,
    noise_std: T,
    grad_clamp: f32,
    xi: T,
    bounds: Option<(f32, f32)>,
    scale: f32,
) -> T {
    if scale == 0.0 {
        return x;
    }
    let v = ula_update(x, g, h, noise_std, grad_clamp, xi);
    bounds.map_or(v, |(lo, hi)| v.clamped(lo, hi))
}

/// One coordinate of MALA's proposal with inverse mass m (`sqrt_2h` = sqrt(2h)).
#[inline(always)]
pub fn mala_proposal<T: Coord>(x: T, g: T, h: T, m: f32, sqrt_2h: T, xi: T) -> T {
    x - h * T::from_f32(m) * g + sqrt_2h * T::from_f32(m.sqrt()) * xi
}

/// One coordinate's terms (forward, backward) of log q(x|y) - log q(y|x) = (forward -
/// backward) / 4h: ((y - x + h m g(x))^2 / m, (x - y + h m g(y))^2 / m). A fixed dimension
/// (m = 0) adds nothing.
#[inline(always)]
pub fn mala_q_terms<T: Coord>(x: T, y: T, gx: T, gy: T, h: T, m: f32) -> (T, T) {
    let (mt, m_safe) = (T::from_f32(m), T::from_f32(m.max(1e-30)));
    let f = y - x + h * mt * gx;
    let b = x - y + h * mt * gy;
    (f * f / m_safe, b * b / m_safe)
}

/// MALA's log acceptance ratio at inverse temperature beta from the energies at x and y and the
/// summed [`mala_q_terms`].
#[inline(always)]
pub fn mala_log_alpha<T: Coord>(beta: T, e_x: T, e_y: T, forward: T, backward: T, h: T) -> T {
    beta * (e_x - e_y) + (forward - backward) / (T::from_f32(4.0) * h)
}
