//! The numbers the CPU side computes with: [`Field`] (what the analytic energies need, so one
//! formula serves f32, f64 references and [`lanes::Lanes`] blocks of chains) and [`Real`]
//! (what networks need), with the shared activations [`softplus`] and [`sigmoid`].

pub mod lanes;

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
