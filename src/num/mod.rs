//! The numbers the CPU side computes with: [`Field`] (what the analytic energies need, so one
//! formula serves f32, f64 references and [`lanes::Lanes`] blocks of chains) and [`Real`]
//! (what networks need), with the shared activations [`softplus`] and [`sigmoid`].

pub mod lanes;
pub mod matmul;

/// The arithmetic the analytic energies need. f32 and f64 implement it, and so does
/// [`lanes::Lanes`] (the values of [`crate::rng::LANES`] chains at once), so one formula serves
/// the scalar path, the lane-parallel CPU sampler and the f64 references; lane k of a
/// [`lanes::Lanes`] result equals the f32 result for lane k's inputs bit for bit.
pub trait Field:
    Copy
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
{
    fn from_f32(v: f32) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    /// The larger of the two (the other one where one is NaN), as `f32::max`.
    fn max(self, other: Self) -> Self;
    fn zero() -> Self {
        Self::from_f32(0.0)
    }
}

/// The float operations the CPU energies and networks need, so one implementation serves f32
/// and f64.
pub trait Real: Field + PartialOrd {
    fn is_finite(self) -> bool;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn sqrt(self) -> Self;
    fn to_f64(self) -> f64;
}

macro_rules! impl_real {
    ($t:ty, $exp:path) => {
        impl Field for $t {
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
        }
        impl Real for $t {
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    };
}
// f32 uses the branch-free exp that lanes vectorise, so lanes and scalars agree bit for bit.
impl_real!(f32, lanes::exp);
impl_real!(f64, f64::exp);

/// ln(1 + e^z) without overflow, as `softplus` in `shaders/common/activations.wgsl`; |z| is
/// written max(z, -z) so lanes need no branch.
#[inline(always)]
pub fn softplus<T: Field>(z: T) -> T {
    z.max(T::zero()) + (T::from_f32(1.0) + (-(z.max(-z))).exp()).ln()
}

/// 1 / (1 + e^-z), as `sigmoid` in `shaders/common/activations.wgsl` (0 where e^-z overflows).
#[inline(always)]
pub fn sigmoid<T: Field>(z: T) -> T {
    T::from_f32(1.0) / (T::from_f32(1.0) + (-z).exp())
}

/// Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod normal_tests {
    use super::normal_quantile;

    #[test]
    fn normal_quantile_matches_known_values() {
        for (p, z) in [(0.5, 0.0), (0.975, 1.959963984540054), (0.01, -2.326347874040841), (1e-6, -4.753424308822899)] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}: {}", normal_quantile(p));
        }
    }
}
