//! [`Lanes`]: the values of [`LANES`] chains in one SIMD-friendly array, so the CPU sampler can
//! run the analytic energies (written once, generic over [`Field`]) for a block of chains at a
//! time. Every operation works lane by lane in the order the scalar code uses, so lane k equals
//! the f32 result for lane k bit for bit; the loops are what the compiler turns into vector
//! instructions.

use super::Field;
pub use crate::rng::LANES;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(transparent)]
pub struct Lanes(pub [f32; LANES]);

impl Lanes {
    #[inline(always)]
    pub fn splat(v: f32) -> Self {
        Lanes([v; LANES])
    }

    // Loops rather than `array::map`, which does not inline into the vectorised callers.
    #[inline(always)]
    pub fn map(self, f: impl Fn(f32) -> f32) -> Self {
        let mut out = self;
        for l in 0..LANES {
            out.0[l] = f(self.0[l]);
        }
        out
    }

    #[inline(always)]
    pub fn zip(self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut out = self;
        for l in 0..LANES {
            out.0[l] = f(self.0[l], other.0[l]);
        }
        out
    }

    /// Lane by lane: `self` where `mask` is set, else `other`.
    #[inline(always)]
    pub fn select(self, mask: &[bool; LANES], other: Self) -> Self {
        let mut out = other;
        for l in 0..LANES {
            if mask[l] {
                out.0[l] = self.0[l];
            }
        }
        out
    }

    /// Lanes whose value is finite.
    #[inline(always)]
    pub fn finite(self) -> [bool; LANES] {
        let mut out = [false; LANES];
        for l in 0..LANES {
            out[l] = self.0[l].is_finite();
        }
        out
    }
}

macro_rules! lane_op {
    ($trait:ident, $method:ident, $op:tt, $assign_trait:ident, $assign:ident) => {
        impl $trait for Lanes {
            type Output = Lanes;
            #[inline(always)]
            fn $method(self, rhs: Lanes) -> Lanes {
                let mut out = self;
                for l in 0..LANES {
                    out.0[l] = self.0[l] $op rhs.0[l];
                }
                out
            }
        }
        impl $assign_trait for Lanes {
            #[inline(always)]
            fn $assign(&mut self, rhs: Lanes) {
                *self = *self $op rhs;
            }
        }
    };
}
lane_op!(Add, add, +, AddAssign, add_assign);
lane_op!(Sub, sub, -, SubAssign, sub_assign);
lane_op!(Mul, mul, *, MulAssign, mul_assign);
lane_op!(Div, div, /, DivAssign, div_assign);

impl Neg for Lanes {
    type Output = Lanes;
    #[inline(always)]
    fn neg(self) -> Lanes {
        self.map(|v| -v)
    }
}

impl Field for Lanes {
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        Lanes::splat(v)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        self.map(exp)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        self.map(f32::ln)
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        self.zip(other, f32::max)
    }
}

/// e^x in f32 (Cephes' `expf` polynomial, within 2 ulps), branch-free so that lanes vectorise:
/// the f32 [`Field::exp`] of the CPU energies and networks. Overflows to +inf above 88.72,
/// goes through the subnormals to 0 below -87.3, and keeps NaN.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants as published
pub fn exp(x: f32) -> f32 {
    // Beyond these e^x is inf or 0 (clamp keeps NaN).
    let x = x.clamp(-104.0, 89.0);
    // n = round(x / ln 2) by the 1.5 * 2^23 trick (no floor: baseline SSE2 has none).
    const SHIFTER: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + SHIFTER;
    let n = t.to_bits() as i32 - SHIFTER.to_bits() as i32;
    let fx = t - SHIFTER;
    // r = x - n ln 2 in two parts (Cody–Waite), |r| <= ln(2) / 2.
    let r = x - fx * 0.693_359_4 - fx * -2.121_944_4e-4;
    let z = r * r;
    let mut p = 1.987_569_1e-4;
    for coef in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1] {
        p = p * r + coef;
    }
    let y = p * z + r + 1.0;
    // y 2^n as y 2^a 2^b with both factors normal floats, so large |n| over- or underflows
    // correctly (n is in [-150, 129]).
    let a = n >> 1;
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    y * pow2(a) * pow2(n - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulps_and_handles_the_edges() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.5 {
            let want = (x as f64).exp() as f32;
            worst = worst.max((exp(x).to_bits() as f64 - want.to_bits() as f64).abs());
            x += 0.000_71;
        }
        assert!(worst <= 2.0, "worst {worst} ulps");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-200.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        let sub = exp(-95.0);
        assert!(sub > 0.0 && !sub.is_normal() && ((sub as f64) / (-95.0f64).exp() - 1.0).abs() < 1e-3, "{sub}");
    }
}
