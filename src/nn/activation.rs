//! The activations of networks: their CPU definitions (value, slope and the jets' higher
//! derivatives, generic over [`Real`]), a vectorised batch form, and the WGSL expressions the
//! generated kernels inline.

use crate::num::Real;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    Silu,
    Tanh,
    Softplus,
    Elu(f32),
}

impl Activation {
    /// Parses "relu", "leaky_relu" (slope 0.01) or "leaky_relu:0.2", "silu" / "swish", "tanh",
    /// "softplus", "elu" or "elu:0.5". PyTorch takes any float for both; here a leaky slope must
    /// lie in (0, 1) and an ELU alpha be positive, each a normal f32 (a slope such as 1e-50 that
    /// f32 rounds to 0, or to a subnormal a GPU may flush to 0, is ReLU under another name).
    pub fn parse(s: &str) -> Result<Self> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let param = |default: f32| -> Result<f32> {
            match arg {
                None => Ok(default),
                Some(a) => a
                    .parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| Error::invalid("activation", format!("{s:?}: {a:?} is not a finite number"))),
            }
        };
        let meaningful = |v: f32, what: &str, below_one: bool| -> Result<f32> {
            let relu = if below_one { "; for no slope at all use relu" } else { "" };
            let problem = if v < f32::MIN_POSITIVE {
                format!(
                    "the {what} must be positive and at least {:e} (f32's smallest normal){relu}",
                    f32::MIN_POSITIVE
                )
            } else if below_one && v >= 1.0 {
                format!("the {what} must be below 1 (at 1 the layer is the identity, above it not a leaky ReLU)")
            } else {
                return Ok(v);
            };
            Err(Error::invalid("activation", format!("{s:?}: {problem}")))
        };
        Ok(match name.to_ascii_lowercase().as_str() {
            "relu" => Activation::Relu,
            "leaky_relu" | "leakyrelu" => Activation::LeakyRelu(meaningful(param(0.01)?, "slope", true)?),
            "silu" | "swish" => Activation::Silu,
            "tanh" => Activation::Tanh,
            "softplus" => Activation::Softplus,
            "elu" => Activation::Elu(meaningful(param(1.0)?, "alpha", false)?),
            _ => {
                return Err(Error::invalid(
                    "activation",
                    format!(
                        "unknown activation {s:?}; expected relu, leaky_relu[:slope], silu, tanh, softplus or elu[:alpha]"
                    ),
                ));
            }
        })
    }

    /// Whether `s` (with or without a `:parameter`) names an activation.
    pub fn is_name(s: &str) -> bool {
        let name = s.split_once(':').map_or(s, |(n, _)| n).to_ascii_lowercase();
        ["relu", "leaky_relu", "leakyrelu", "silu", "swish", "tanh", "softplus", "elu"].contains(&name.as_str())
    }

    pub fn name(&self) -> String {
        match self {
            Activation::Relu => "relu".into(),
            Activation::LeakyRelu(a) => format!("leaky_relu:{a}"),
            Activation::Silu => "silu".into(),
            Activation::Tanh => "tanh".into(),
            Activation::Softplus => "softplus".into(),
            Activation::Elu(a) => format!("elu:{a}"),
        }
    }

    /// (act(z), act'(z)), the formulas of `shaders/common/activations.wgsl`.
    pub fn eval<T: Real>(&self, z: T) -> (T, T) {
        let (zero, one) = (T::zero(), T::from_f32(1.0));
        let sigmoid = crate::num::sigmoid::<T>;
        match *self {
            Activation::Relu => {
                if z > zero {
                    (z, one)
                } else {
                    (zero, zero)
                }
            }
            Activation::LeakyRelu(a) => {
                if z > zero {
                    (z, one)
                } else {
                    (T::from_f32(a) * z, T::from_f32(a))
                }
            }
            Activation::Silu => {
                let s = sigmoid(z);
                (z * s, s * (one + z * (one - s)))
            }
            Activation::Tanh => {
                let t = z.tanh();
                (t, one - t * t)
            }
            Activation::Softplus => (crate::num::softplus(z), sigmoid(z)),
            Activation::Elu(a) => {
                if z > zero {
                    (z, one)
                } else {
                    let e = z.exp();
                    (T::from_f32(a) * (e - one), T::from_f32(a) * e)
                }
            }
        }
    }

    /// [act(z), act'(z), act''(z), act'''(z)]: the jets of score matching
    /// ([`crate::nn::jet`]) carry second derivatives through the network and back-propagate
    /// through them, which needs the third.
    pub fn derivatives<T: Real>(&self, z: T) -> [T; 4] {
        let (zero, one, two) = (T::zero(), T::from_f32(1.0), T::from_f32(2.0));
        match *self {
            Activation::Relu | Activation::LeakyRelu(_) | Activation::Elu(_) if z > zero => [z, one, zero, zero],
            Activation::Relu => [zero; 4],
            Activation::LeakyRelu(a) => [T::from_f32(a) * z, T::from_f32(a), zero, zero],
            Activation::Elu(a) => {
                let ae = T::from_f32(a) * z.exp();
                [ae - T::from_f32(a), ae, ae, ae]
            }
            Activation::Silu => {
                // s' = s(1 - s) = q; act = z s, act' = s(1 + z(1 - s)), act'' = q(2 + z(1 - 2s)).
                let s = crate::num::sigmoid(z);
                let (q, u) = (s * (one - s), one - two * s);
                [
                    z * s,
                    s * (one + z * (one - s)),
                    q * (two + z * u),
                    q * (u * (T::from_f32(3.0) + z * u) - two * z * q),
                ]
            }
            Activation::Tanh => {
                let t = z.tanh();
                let d = one - t * t;
                [t, d, -two * t * d, d * (T::from_f32(6.0) * t * t - two)]
            }
            Activation::Softplus => {
                let s = crate::num::sigmoid(z);
                let q = s * (one - s);
                [crate::num::softplus(z), s, q, q * (one - two * s)]
            }
        }
    }

    /// A WGSL vec4 expression of [`Activation::derivatives`] for a variable named `z`.
    pub(crate) fn wgsl_jet(&self) -> String {
        let f = |v: f32| format!("{v:?}");
        let linear = "vec4<f32>(z, 1.0, 0.0, 0.0)";
        match *self {
            Activation::Relu => format!("select(vec4<f32>(0.0), {linear}, z > 0.0)"),
            Activation::LeakyRelu(a) => {
                format!("select(vec4<f32>({a} * z, {a}, 0.0, 0.0), {linear}, z > 0.0)", a = f(a))
            }
            Activation::Elu(a) => {
                format!("select(vec4<f32>({a} * (exp(z) - 1.0), vec3<f32>({a} * exp(z))), {linear}, z > 0.0)", a = f(a))
            }
            Activation::Silu => "silu_jet(z)".into(),
            Activation::Tanh => "tanh_jet(z)".into(),
            Activation::Softplus => "softplus_jet(z)".into(),
        }
    }

    /// WGSL expression pair (act, act') for a variable named `z`.
    pub(crate) fn wgsl(&self) -> (String, String) {
        let f = |v: f32| format!("{v:?}");
        match *self {
            Activation::Relu => ("max(z, 0.0)".into(), "select(0.0, 1.0, z > 0.0)".into()),
            Activation::LeakyRelu(a) => {
                (format!("select({} * z, z, z > 0.0)", f(a)), format!("select({}, 1.0, z > 0.0)", f(a)))
            }
            Activation::Silu => ("silu(z)".into(), "silu_grad(z)".into()),
            Activation::Tanh => ("tanh(z)".into(), "(1.0 - tanh(z) * tanh(z))".into()),
            Activation::Softplus => ("softplus(z)".into(), "sigmoid(z)".into()),
            Activation::Elu(a) => (
                format!("select({} * (exp(z) - 1.0), z, z > 0.0)", f(a)),
                format!("select({} * exp(z), 1.0, z > 0.0)", f(a)),
            ),
        }
    }
}

impl Activation {
    /// [`Activation::eval`] over a slice: z = act(x) and s = act'(x). SiLU, the usual choice
    /// and otherwise most of the non-GEMM time, uses [`crate::num::lanes::exp`], which
    /// vectorises.
    pub(crate) fn eval_batch(&self, x: &[f32], z: &mut [f32], s: &mut [f32]) {
        if *self != Activation::Silu {
            return z.iter_mut().zip(s.iter_mut()).zip(x).for_each(|((z, s), &x)| (*z, *s) = self.eval(x));
        }
        silu(x, z, s)
    }
}

crate::simd::vectorized!(
    fn silu(x: &[f32], z: &mut [f32], s: &mut [f32]) {
        for ((z, s), &x) in z.iter_mut().zip(s.iter_mut()).zip(x) {
            let sig = 1.0 / (1.0 + crate::num::lanes::exp(-x));
            *s = sig * (1.0 + x * (1.0 - sig));
            *z = x * sig;
        }
    }
);
