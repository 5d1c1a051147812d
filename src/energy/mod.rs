//! Energies E(x) with their gradients, on both executors.
//!
//! [`Energy`] is the validated, executor-neutral description. Its CPU twin is
//! [`Energy::energy_grad`] (generic over f32 for the executor and f64 for references); the GPU
//! side is the WGSL in `shaders/energy/energy_analytic.wgsl`, fed by [`Energy::pack_params`] and glued
//! together by [`Energy::wgsl_module`].

pub mod gpu;
pub mod image;
pub mod lanes;
pub mod log_z;
pub mod mlp;
pub mod spec;

use crate::{Error, Result};
use std::sync::Arc;

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

/// How a [`Energy::BoxConstraint`] penalises a coordinate v outside its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BoxPenalty {
    /// v² (v = the distance outside [lo, hi], 0 inside).
    Quadratic,
    /// softplus(s v) / s on each side: smooth everywhere, about 0 inside and about v outside
    /// once s v >> 1, so larger sharpness s makes it closer to a hard wall's linear penalty.
    Softplus { sharpness: f32 },
}

/// One component of a diagonal Gaussian mixture, stored in the form the kernels use.
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureComponent {
    /// log w_k minus the log normaliser of N(m_k, diag(std_k^2)).
    pub log_coef: f32,
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// The finite group of an [`Energy::Group`], acting linearly on points.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupAction {
    /// 2-D points: one row-major 2x2 matrix per element (the rotations by 2πk/n, then for the
    /// dihedral group each rotation times the reflection (x, y) -> (x, -y)), rounded to f32 on
    /// the host so both executors multiply by the same numbers.
    Plane { matrices: Vec<[f32; 4]> },
    /// Images [channels, side, side] (row-major): the 4 quarter turns, and with `flips` each
    /// followed by a left-right mirror: permutations of the pixels, applied to every channel.
    Image { channels: usize, side: usize, flips: bool },
}

impl GroupAction {
    /// |G|.
    pub fn order(&self) -> usize {
        match self {
            GroupAction::Plane { matrices } => matrices.len(),
            GroupAction::Image { flips, .. } => 4 << (*flips as usize),
        }
    }

    /// The dimension of the points the group acts on.
    fn dim(&self) -> usize {
        match self {
            GroupAction::Plane { .. } => 2,
            GroupAction::Image { channels, side, .. } => channels * side * side,
        }
    }

    /// Writes g_k . x into `out`.
    #[inline(always)]
    fn apply<T: Field>(&self, k: usize, x: &[T], out: &mut [T]) {
        match self {
            GroupAction::Plane { matrices } => {
                let m = matrices[k].map(T::from_f32);
                out[0] = m[0] * x[0] + m[1] * x[1];
                out[1] = m[2] * x[0] + m[3] * x[1];
            }
            GroupAction::Image { side, .. } => {
                for (p, o) in out.iter_mut().enumerate() {
                    *o = x[image_source(p, k, *side)];
                }
            }
        }
    }

    /// acc = acc * scale + w * g_k^T gt: the pulled-back gradient of E(g_k . x), accumulated.
    #[inline(always)]
    fn pull_back<T: Field>(&self, k: usize, gt: &[T], acc: &mut [T], scale: T, w: T) {
        match self {
            GroupAction::Plane { matrices } => {
                let m = matrices[k].map(T::from_f32);
                acc[0] = acc[0] * scale + w * (m[0] * gt[0] + m[2] * gt[1]);
                acc[1] = acc[1] * scale + w * (m[1] * gt[0] + m[3] * gt[1]);
            }
            GroupAction::Image { side, .. } => {
                for (p, &v) in gt.iter().enumerate() {
                    let s = image_source(p, k, *side);
                    acc[s] = acc[s] * scale + w * v;
                }
            }
        }
    }
}

/// The pixel that element `k` of an image group moves to pixel `p` ((g_k . x)[p] = x[source]):
/// k % 4 quarter turns (row, col) -> (col, side-1-row), then for k >= 4 a mirror of the column.
/// The twin of `group_image_source` in `shaders/energy/energy_analytic.wgsl`.
#[inline(always)]
pub fn image_source(p: usize, k: usize, side: usize) -> usize {
    let plane = side * side;
    let (c, r) = (p / plane, p % plane);
    let (mut a, mut b) = (r / side, r % side);
    for _ in 0..k % 4 {
        (a, b) = (b, side - 1 - a);
    }
    if k >= 4 {
        b = side - 1 - b;
    }
    c * plane + a * side + b
}

/// How an [`Energy::Group`] averages over the group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GroupMode {
    /// E_G = -log mean_g exp(-E(g.x)): the density is the average of the transformed densities.
    LogMeanExp,
    /// E_G = mean_g E(g.x): the density is their geometric mean.
    Mean,
}

/// A validated energy. Build it from a JSON spec with `resolve_energy` or directly.
#[derive(Clone, Debug, PartialEq)]
pub enum Energy {
    /// E = 0.5 sum_i (x_i - m_i)^2 / std_i^2.
    GaussianDiag { mean: Vec<f32>, inv_var: Vec<f32> },
    /// E = 0.5 (x - m)^T P (x - m) for a symmetric positive definite precision P (row-major).
    GaussianPrecision { mean: Vec<f32>, precision: Vec<f32> },
    /// E = -log sum_k w_k N(x; m_k, diag(std_k^2)): normalised, so exp(-E) integrates to 1.
    GaussianMixture { dim: usize, components: Vec<MixtureComponent> },
    /// E = barrier * sum_i (x_i^2 - 1)^2.
    DoubleWell { dim: usize, barrier: f32 },
    /// E = sum_{i<d-1} (a - x_i)^2 + b (x_{i+1} - x_i^2)^2.
    Banana { dim: usize, a: f32, b: f32 },
    /// E = MLP(x) or -MLP(x) (`Mlp`); shared, since weights can be large.
    Mlp(Arc<mlp::Mlp>),
    /// E = -log(epsilon + luminance(x)) of a picture on the plane ([`image::ImageDensity`]).
    Image(Arc<image::ImageDensity>),
    /// E = head(f(x)) for any network of layers ([`crate::nn::Network`]) (convolutions, several outputs).
    /// MLP-shaped networks load as [`Energy::Mlp`] instead, whose fused kernels are faster.
    Net(Arc<crate::nn::Network>),
    /// E = sum_t weight_t * E_t (product of experts; a single term with weight 1/T is a
    /// temperature).
    Sum { terms: Vec<(f32, Energy)> },
    /// Constraint lo <= x <= hi: E = weight * sum_i pen(x_i - hi_i) + pen(lo_i - x_i), with pen
    /// as `BoxPenalty` says.
    BoxConstraint { lo: Vec<f32>, hi: Vec<f32>, penalty: BoxPenalty, weight: f32 },
    /// Constraint a.x <= b (E = weight * max(a.x - b, 0)^2) or a.x = b (E = weight * (a.x - b)^2).
    Linear { a: Vec<f32>, b: f32, equality: bool, weight: f32 },
    /// Constraint |x - c| <= r: E = weight * max(|x - c|^2 - r^2, 0)^2. The squared norm keeps
    /// the gradient 4 weight v (x - c) defined everywhere (|x - c| is not differentiable at c).
    NormBall { center: Vec<f32>, radius: f32, weight: f32 },
    /// Constraint sum_i x_i = 1, x_i >= 0: E = weight * ((sum_i x_i - 1)^2 + sum_i max(-x_i, 0)^2).
    Simplex { dim: usize, weight: f32 },
    /// E_G(x) = -log mean_g exp(-E(g.x)) or mean_g E(g.x) (see `GroupMode`) over a finite
    /// group: invariant under it. `inner` may be any energy but a layered network
    /// ([`Energy::Net`]), refused by [`Energy::validate`].
    Group { inner: Box<Energy>, action: GroupAction, mode: GroupMode },
    /// An expert that looks at some dimensions only: E(x) = E_inner(x\[indices\]) (in the order
    /// of `indices`) on points of dimension `dim`, its gradient scattered back into those
    /// dimensions. A term of a sum (the spec's `slices`); `inner.dim()` = `indices.len()`.
    Slice { indices: Vec<usize>, dim: usize, inner: Box<Energy> },
}

impl Energy {
    pub fn dim(&self) -> usize {
        match self {
            Energy::Image(_) => 2,
            Energy::GaussianDiag { mean, .. } | Energy::GaussianPrecision { mean, .. } => mean.len(),
            Energy::GaussianMixture { dim, .. }
            | Energy::DoubleWell { dim, .. }
            | Energy::Banana { dim, .. }
            | Energy::Simplex { dim, .. } => *dim,
            Energy::BoxConstraint { lo, .. } => lo.len(),
            Energy::Linear { a, .. } => a.len(),
            Energy::NormBall { center, .. } => center.len(),
            Energy::Mlp(m) => m.input_dim(),
            Energy::Net(n) => n.input_dim(),
            Energy::Sum { terms } => terms.first().map_or(0, |(_, e)| e.dim()),
            Energy::Group { inner, .. } => inner.dim(),
            Energy::Slice { dim, .. } => *dim,
        }
    }

    /// Short name for messages and pipeline labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Energy::Image(_) => "image",
            Energy::GaussianDiag { .. } => "gaussian",
            Energy::GaussianPrecision { .. } => "gaussian_precision",
            Energy::GaussianMixture { .. } => "gaussian_mixture",
            Energy::DoubleWell { .. } => "double_well",
            Energy::Banana { .. } => "banana",
            Energy::Mlp(_) => "mlp",
            Energy::Net(_) => "net",
            Energy::Sum { .. } => "sum",
            Energy::BoxConstraint { .. } => "box",
            Energy::Linear { equality: false, .. } => "linear_inequality",
            Energy::Linear { equality: true, .. } => "linear_equality",
            Energy::NormBall { .. } => "norm_ball",
            Energy::Simplex { .. } => "simplex",
            Energy::Group { .. } => "group",
            Energy::Slice { .. } => "slice",
        }
    }

    /// Energy at `x`; `g` is overwritten with dE/dx. The CPU twin of the WGSL energies: same
    /// formulas in the same order, so f32 results agree with the GPU up to rounding.
    pub fn energy_grad<T: Real>(&self, x: &[T], g: &mut [T]) -> T {
        g.iter_mut().for_each(|v| *v = T::zero());
        self.add_energy_grad(x, g, T::from_f32(1.0))
    }

    /// Energies and gradients of n points at once (xs and gs `[n, dim]` row-major, es `[n]`): the
    /// CPU executor's batched path. Analytic terms run [`Energy::energy_grad`]'s code point by
    /// point; network terms run as GEMMs (`Mlp::add_energy_grad_batch`), so results equal
    /// the per-point ones up to summation order. Single-threaded: callers parallelise over
    /// batches.
    pub fn energy_grad_batch(&self, xs: &[f32], gs: &mut [f32], es: &mut [f32]) {
        assert!(xs.len() == es.len() * self.dim() && gs.len() == xs.len(), "energy_grad_batch: shapes disagree");
        gs.fill(0.0);
        es.fill(0.0);
        self.add_energy_grad_batch(xs, gs, es, 1.0);
    }

    fn add_energy_grad_batch(&self, xs: &[f32], gs: &mut [f32], es: &mut [f32], weight: f32) {
        let d = self.dim();
        match self {
            Energy::Mlp(m) => m.add_energy_grad_batch(xs, gs, es, weight),
            Energy::Net(n) => n.add_energy_grad_batch(xs, gs, es, weight),
            Energy::Sum { terms } => terms.iter().for_each(|(w, t)| t.add_energy_grad_batch(xs, gs, es, weight * w)),
            // A group around a network: each element's transformed batch goes through the
            // network's batched (GEMM) path, then every point is combined by the one formula,
            // which reads the precomputed inner values in element order.
            Energy::Group { inner, action, mode } if !inner.is_analytic() => {
                let (n, len) = (es.len(), xs.len());
                let mut xt = vec![0.0f32; len];
                let (mut gt, mut et) = (vec![0.0f32; action.order() * len], vec![0.0f32; action.order() * n]);
                for k in 0..action.order() {
                    xs.chunks_exact(d).zip(xt.chunks_exact_mut(d)).for_each(|(x, y)| action.apply(k, x, y));
                    inner.energy_grad_batch(&xt, &mut gt[k * len..(k + 1) * len], &mut et[k * n..(k + 1) * n]);
                }
                for (r, ((x, g), e)) in xs.chunks_exact(d).zip(gs.chunks_exact_mut(d)).zip(es.iter_mut()).enumerate() {
                    let mut k = 0;
                    *e += group_energy_grad(action, *mode, x, g, weight, |_, gk| {
                        gk.copy_from_slice(&gt[k * len + r * d..][..d]);
                        k += 1;
                        et[(k - 1) * n + r]
                    });
                }
            }
            // A sliced network: the gathered sub-batch goes through its batched path.
            Energy::Slice { indices, inner, .. } if !inner.is_analytic() => {
                let k = indices.len();
                let gather = |x: &[f32]| indices.iter().map(|&i| x[i]).collect::<Vec<_>>();
                let sub: Vec<f32> = xs.chunks_exact(d).flat_map(gather).collect();
                let (mut gsub, mut esub) = (vec![0.0f32; sub.len()], vec![0.0f32; es.len()]);
                inner.energy_grad_batch(&sub, &mut gsub, &mut esub);
                for ((g, e), (gk, ek)) in gs.chunks_exact_mut(d).zip(es.iter_mut()).zip(gsub.chunks_exact(k).zip(esub)) {
                    indices.iter().zip(gk).for_each(|(&i, &v)| g[i] += weight * v);
                    *e += weight * ek;
                }
            }
            _ => {
                for ((x, g), e) in xs.chunks_exact(d).zip(gs.chunks_exact_mut(d)).zip(es.iter_mut()) {
                    *e += self.add_energy_grad(x, g, weight);
                }
            }
        }
    }

    /// Energy only (the gradient is computed and dropped; energies here are cheap).
    pub fn energy<T: Real>(&self, x: &[T]) -> T {
        let mut g = vec![T::zero(); x.len()];
        self.energy_grad(x, &mut g)
    }

    fn add_energy_grad<T: Real>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        match self {
            Energy::Mlp(m) => m.add_energy_grad(x, g, weight),
            Energy::Image(img) => img.energy_grad(x, g, weight),
            Energy::Net(n) => {
                let mut gn = vec![T::zero(); x.len()];
                let e = n.energy_grad_ref(x, &mut gn);
                g.iter_mut().zip(gn).for_each(|(g, v)| *g += weight * v);
                weight * e
            }
            Energy::Sum { terms } if !self.is_analytic() => {
                let mut e = T::zero();
                for (w, term) in terms {
                    e += term.add_energy_grad(x, g, weight * T::from_f32(*w));
                }
                e
            }
            Energy::Group { inner, action, mode } if !self.is_analytic() => {
                group_energy_grad(action, *mode, x, g, weight, |xt, gt| inner.add_energy_grad(xt, gt, T::from_f32(1.0)))
            }
            Energy::Slice { indices, inner, .. } if !self.is_analytic() => {
                slice_energy_grad(indices, x, g, weight, |xs, gs| inner.add_energy_grad(xs, gs, T::from_f32(1.0)))
            }
            _ => self.add_analytic_energy_grad(x, g, weight),
        }
    }

    /// Whether every term is analytic (no network): such energies also run on `Lanes`.
    #[doc(hidden)]
    pub fn is_analytic(&self) -> bool {
        match self {
            // Images index pixels by the point: per-chain lookups, no lane blocks.
            Energy::Mlp(_) | Energy::Net(_) | Energy::Image(_) => false,
            Energy::Sum { terms } => terms.iter().all(|(_, t)| t.is_analytic()),
            Energy::Group { inner, .. } | Energy::Slice { inner, .. } => inner.is_analytic(),
            _ => true,
        }
    }

    /// E at x for an analytic energy ([`Self::is_analytic`]), with `weight` * dE/dx added to g;
    /// generic over `Field`, so `Lanes` evaluates a block of chains with the same
    /// formulas. Network terms contribute nothing here (callers check `is_analytic`).
    #[inline(always)]
    #[doc(hidden)]
    pub fn add_analytic_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        match self {
            Energy::Sum { terms } => {
                let mut e = T::zero();
                for (w, term) in terms {
                    e += term.add_term_energy_grad(x, g, weight * T::from_f32(*w));
                }
                e
            }
            _ => self.add_term_energy_grad(x, g, weight),
        }
    }

    /// A sum nested in a sum (the recursion, kept out of line so the common cases inline).
    #[inline(never)]
    fn add_nested_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        self.add_analytic_energy_grad(x, g, weight)
    }

    /// A group around an analytic energy (out of line, as [`Self::add_nested_energy_grad`]).
    #[inline(never)]
    fn add_analytic_group_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let Energy::Group { inner, action, mode } = self else { unreachable!("called for groups only") };
        group_energy_grad(action, *mode, x, g, weight, |xt, gt| inner.add_analytic_energy_grad(xt, gt, T::from_f32(1.0)))
    }

    /// A sliced analytic energy (out of line, as [`Self::add_nested_energy_grad`]).
    #[inline(never)]
    fn add_analytic_slice_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let Energy::Slice { indices, inner, .. } = self else { unreachable!("called for slices only") };
        slice_energy_grad(indices, x, g, weight, |xs, gs| inner.add_analytic_energy_grad(xs, gs, T::from_f32(1.0)))
    }

    /// One term of [`Self::add_analytic_energy_grad`].
    #[inline(always)]
    fn add_term_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        match self {
            Energy::GaussianDiag { mean, inv_var } => {
                let mut e = T::zero();
                for i in 0..x.len() {
                    let r = x[i] - c(mean[i]);
                    let p = c(inv_var[i]);
                    e += c(0.5) * r * r * p;
                    g[i] += weight * r * p;
                }
                weight * e
            }
            Energy::GaussianPrecision { mean, precision } => {
                let d = x.len();
                let mut e = T::zero();
                for i in 0..d {
                    let mut pr = T::zero();
                    for j in 0..d {
                        pr += c(precision[i * d + j]) * (x[j] - c(mean[j]));
                    }
                    e += c(0.5) * (x[i] - c(mean[i])) * pr;
                    g[i] += weight * pr;
                }
                weight * e
            }
            Energy::GaussianMixture { components, .. } => {
                // Online log-sum-exp, as the WGSL kernel does it, written without a branch on
                // the data: with m = max(run_max, a) one of the two factors is exp(0) = 1,
                // which is the kernel's arithmetic exactly.
                let d = x.len();
                let mut small = [T::zero(); 32];
                let mut large = Vec::new();
                let acc: &mut [T] = if d <= small.len() {
                    &mut small[..d]
                } else {
                    large.resize(d, T::zero());
                    &mut large
                };
                let mut run_max = c(-3.0e38);
                let mut run_sum = T::zero();
                for comp in components {
                    let mut a = c(comp.log_coef);
                    for i in 0..d {
                        let z = (x[i] - c(comp.mean[i])) * c(comp.inv_std[i]);
                        a -= c(0.5) * z * z;
                    }
                    let m = run_max.max(a);
                    let (scale_old, w) = ((run_max - m).exp(), (a - m).exp());
                    run_max = m;
                    run_sum = run_sum * scale_old + w;
                    for i in 0..d {
                        let s = c(comp.inv_std[i]);
                        acc[i] = acc[i] * scale_old + w * (x[i] - c(comp.mean[i])) * s * s;
                    }
                }
                for i in 0..d {
                    g[i] += weight * acc[i] / run_sum;
                }
                -(weight * (run_max + run_sum.ln()))
            }
            Energy::DoubleWell { barrier, .. } => {
                let h = c(*barrier);
                let mut e = T::zero();
                for i in 0..x.len() {
                    let q = x[i] * x[i] - c(1.0);
                    e += h * q * q;
                    g[i] += weight * c(4.0) * h * x[i] * q;
                }
                weight * e
            }
            Energy::Banana { a, b, .. } => {
                let (a, b) = (c(*a), c(*b));
                let mut e = T::zero();
                for i in 0..x.len().saturating_sub(1) {
                    let d = a - x[i];
                    let q = x[i + 1] - x[i] * x[i];
                    e += d * d + b * q * q;
                    g[i] += weight * (c(-2.0) * d - c(4.0) * b * x[i] * q);
                    g[i + 1] += weight * c(2.0) * b * q;
                }
                weight * e
            }
            Energy::BoxConstraint { lo, hi, penalty, weight: wt } => {
                let w = weight * c(*wt);
                let mut e = T::zero();
                match penalty {
                    BoxPenalty::Quadratic => {
                        for i in 0..x.len() {
                            let above = (x[i] - c(hi[i])).max(T::zero());
                            let below = (c(lo[i]) - x[i]).max(T::zero());
                            e += above * above + below * below;
                            g[i] += w * c(2.0) * (above - below);
                        }
                        w * e
                    }
                    BoxPenalty::Softplus { sharpness } => {
                        let s = c(*sharpness);
                        for i in 0..x.len() {
                            let (za, zb) = (s * (x[i] - c(hi[i])), s * (c(lo[i]) - x[i]));
                            e += softplus(za) + softplus(zb);
                            g[i] += w * (sigmoid(za) - sigmoid(zb));
                        }
                        w * e / s
                    }
                }
            }
            Energy::Linear { a, b, equality, weight: wt } => {
                let w = weight * c(*wt);
                let mut dot = T::zero();
                for i in 0..x.len() {
                    dot += c(a[i]) * x[i];
                }
                let r = dot - c(*b);
                let v = if *equality { r } else { r.max(T::zero()) };
                for i in 0..x.len() {
                    g[i] += w * c(2.0) * v * c(a[i]);
                }
                w * v * v
            }
            Energy::NormBall { center, radius, weight: wt } => {
                let w = weight * c(*wt);
                let mut n2 = T::zero();
                for i in 0..x.len() {
                    let r = x[i] - c(center[i]);
                    n2 += r * r;
                }
                let v = (n2 - c(*radius) * c(*radius)).max(T::zero());
                for i in 0..x.len() {
                    g[i] += w * c(4.0) * v * (x[i] - c(center[i]));
                }
                w * v * v
            }
            Energy::Simplex { weight: wt, .. } => {
                let w = weight * c(*wt);
                let mut total = T::zero();
                for i in 0..x.len() {
                    total += x[i];
                }
                let t = total - c(1.0);
                let mut e = t * t;
                for i in 0..x.len() {
                    let neg = (-x[i]).max(T::zero());
                    e += neg * neg;
                    g[i] += w * c(2.0) * (t - neg);
                }
                w * e
            }
            Energy::Sum { .. } => self.add_nested_energy_grad(x, g, weight),
            Energy::Group { .. } => self.add_analytic_group_energy_grad(x, g, weight),
            Energy::Slice { .. } => self.add_analytic_slice_energy_grad(x, g, weight),
            Energy::Mlp(_) | Energy::Net(_) | Energy::Image(_) => T::zero(),
        }
    }

    /// Loop iterations one `energy_grad` takes in WGSL (an upper bound: small loops may be
    /// unrolled by the driver), to keep invocations within an adapter's loop cap.
    #[doc(hidden)]
    pub fn loop_iterations(&self) -> u64 {
        let d = self.dim() as u64;
        match self {
            Energy::Image(_) => 4,
            Energy::GaussianDiag { .. } | Energy::DoubleWell { .. } | Energy::Banana { .. } | Energy::BoxConstraint { .. } => d,
            Energy::Linear { .. } | Energy::NormBall { .. } | Energy::Simplex { .. } => 2 * d,
            Energy::GaussianPrecision { .. } => 2 * d + d * d,
            Energy::GaussianMixture { components, .. } => components.len() as u64 * (2 * d + 1) + d,
            Energy::Mlp(m) => m.loop_iterations(),
            // Not inlined into the per-chain kernels: networks run through the layer kernels.
            Energy::Net(n) => n.macs(),
            Energy::Sum { terms } => terms.iter().map(|(_, t)| t.loop_iterations()).sum(),
            // Per element: g.x, zeroing gt, the inner energy, the pull-back (image groups also
            // loop over up to 3 quarter turns per pixel, twice).
            Energy::Group { inner, action, .. } => action.order() as u64 * (inner.loop_iterations() + 9 * d + 1),
            // Gather, the inner energy, scatter.
            Energy::Slice { indices, inner, .. } => inner.loop_iterations() + 2 * indices.len() as u64,
        }
    }

    /// The f32 parameter block the WGSL energies read from `energy_params`.
    #[doc(hidden)]
    pub fn pack_params(&self) -> Vec<f32> {
        let mut out = Vec::new();
        self.pack_into(&mut out);
        if out.is_empty() {
            out.push(0.0); // a storage binding may not be empty
        }
        out
    }

    /// The first image term (depth first) and where its luminance starts in
    /// [`Self::pack_params`], for rewriting it on the device.
    #[doc(hidden)]
    pub fn image_term(&self) -> Option<(usize, &image::ImageDensity)> {
        // `at` advances past every term searched without success.
        fn find<'a>(energy: &'a Energy, at: &mut usize) -> Option<(usize, &'a image::ImageDensity)> {
            match energy {
                // The block starts with width, height, extent and epsilon.
                Energy::Image(img) => Some((*at + 5, img)),
                Energy::Sum { terms } => terms.iter().find_map(|(_, t)| find(t, at)),
                Energy::Group { inner, action, .. } => {
                    if let GroupAction::Plane { matrices } = action {
                        *at += 4 * matrices.len();
                    }
                    find(inner, at)
                }
                Energy::Slice { indices, inner, .. } => {
                    *at += indices.len();
                    find(inner, at)
                }
                other => {
                    let mut block = Vec::new();
                    other.pack_into(&mut block);
                    *at += block.len();
                    None
                }
            }
        }
        find(self, &mut 0)
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        match self {
            Energy::Image(img) => img.pack_into(out),
            Energy::GaussianDiag { mean, inv_var } => {
                out.extend(mean);
                out.extend(inv_var);
            }
            Energy::GaussianPrecision { mean, precision } => {
                out.extend(mean);
                out.extend(precision);
            }
            Energy::GaussianMixture { components, .. } => {
                out.push(components.len() as f32);
                for comp in components {
                    out.push(comp.log_coef);
                    out.extend(&comp.mean);
                    out.extend(&comp.inv_std);
                }
            }
            Energy::DoubleWell { barrier, .. } => out.push(*barrier),
            Energy::Banana { a, b, .. } => out.extend([*a, *b]),
            Energy::Mlp(m) => m.pack_into(out),
            Energy::Net(n) => out.extend(n.pack_params()),
            Energy::Sum { terms } => terms.iter().for_each(|(_, t)| t.pack_into(out)),
            Energy::BoxConstraint { lo, hi, penalty, weight } => {
                out.extend(lo);
                out.extend(hi);
                out.push(*weight);
                if let BoxPenalty::Softplus { sharpness } = penalty {
                    out.push(*sharpness);
                }
            }
            Energy::Linear { a, b, weight, .. } => {
                out.extend(a);
                out.extend([*b, *weight]);
            }
            Energy::NormBall { center, radius, weight } => {
                out.extend(center);
                out.extend([*radius, *weight]);
            }
            Energy::Simplex { weight, .. } => out.push(*weight),
            Energy::Group { inner, action, .. } => {
                if let GroupAction::Plane { matrices } = action {
                    matrices.iter().for_each(|m| out.extend(m));
                }
                inner.pack_into(out);
            }
            // f32 holds the indices exactly: validate keeps them below 2^24.
            Energy::Slice { indices, inner, .. } => {
                out.extend(indices.iter().map(|&i| i as f32));
                inner.pack_into(out);
            }
        }
    }

    /// The generated WGSL module imported by kernels as `energy`: `DIM`, the analytic
    /// energies, generated network functions, and `energy_grad(x, g) -> f32`, which zeroes g
    /// and sums the terms.
    #[doc(hidden)]
    pub fn wgsl_module(&self) -> String {
        let (mut calls, mut functions) = (String::new(), String::new());
        let mut base = 0usize;
        self.wgsl_calls(1.0, &mut base, &mut calls, &mut functions);
        format!(
            "const DIM: u32 = {dim}u;\n#import energy/energy_analytic.wgsl\n#import common/activations.wgsl\n\n{functions}\n\
             fn energy_grad(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>) -> f32 {{\n    \
             for (var i = 0u; i < DIM; i++) {{ (*g)[i] = 0.0; }}\n    var e = 0.0;\n{calls}    return e;\n}}\n",
            dim = self.dim()
        )
    }

    fn wgsl_calls(&self, weight: f32, base: &mut usize, out: &mut String, functions: &mut String) {
        let name = match self {
            Energy::Sum { terms } => {
                for (w, term) in terms {
                    term.wgsl_calls(weight * w, base, out, functions);
                }
                return;
            }
            // The layered sampler adds network terms outside this module; their parameters
            // still take their place in the block so the offsets of later terms hold.
            Energy::Net(n) => {
                *base += n.param_count();
                return;
            }
            Energy::Mlp(m) => {
                let name = format!("mlp_energy_{base}");
                functions.push_str(&m.wgsl_function(&name));
                name
            }
            Energy::Image(img) => {
                let name = format!("image_energy_{base}");
                functions.push_str(&img.wgsl_function(&name));
                name
            }
            Energy::Group { inner, action, mode } => {
                let name = format!("group_energy_{base}");
                let function = group_wgsl_function(&name, inner, action, *mode, *base, functions);
                functions.push_str(&function);
                name
            }
            Energy::Slice { indices, inner, .. } => {
                let name = format!("slice_energy_{base}");
                let function = slice_wgsl_function(&name, indices.len(), inner, *base, functions);
                functions.push_str(&function);
                name
            }
            other => format!("{}_energy", other.kind_fn()),
        };
        // `{:?}` prints an f32 so that it parses back to the same value.
        out.push_str(&format!("    e += {name}(x, g, {}u, {:?});\n", base, weight));
        let mut block = Vec::new();
        self.pack_into(&mut block);
        *base += block.len();
    }

    /// (channels, height, width) when the points are images (a network with an image input).
    #[doc(hidden)]
    pub fn image_shape(&self) -> Option<(usize, usize, usize)> {
        match self {
            Energy::Net(n) => match n.input {
                crate::nn::Shape::Image { c, h, w } => Some((c, h, w)),
                crate::nn::Shape::Flat(_) => None,
            },
            Energy::Sum { terms } => terms.iter().find_map(|(_, t)| t.image_shape()),
            Energy::Group { action: GroupAction::Image { channels, side, .. }, .. } => Some((*channels, *side, *side)),
            Energy::Group { inner, .. } => inner.image_shape(),
            // A slice of an image is not the points' image (nor is a sum holding one).
            _ => None,
        }
    }

    /// Whether the energy has a network term that runs through the layer kernels rather than
    /// inlined into the per-chain sampler kernels.
    /// A network as an energy: MLP-shaped networks (one activation, one output, E = ±f) as
    /// [`Energy::Mlp`], whose per-chain fused kernels are the fast path for them; any other as
    /// [`Energy::Net`], run through the layer kernels.
    pub fn from_network(net: crate::nn::Network) -> Energy {
        match net.to_mlp() {
            Some(mlp) => Energy::Mlp(std::sync::Arc::new(mlp)),
            None => Energy::Net(std::sync::Arc::new(net)),
        }
    }

    /// A network energy's architecture in the text form `Architecture::parse` reads; None for
    /// other energies.
    pub fn architecture(&self) -> Option<String> {
        match self {
            Energy::Net(net) => Some(net.architecture().to_string()),
            Energy::Mlp(mlp) => Some(mlp.to_network().architecture().to_string()),
            _ => None,
        }
    }

    /// Writes a network energy as a safetensors file that the spec `net:PATH` loads; other
    /// energies are refused by kind.
    pub fn save_network(&self, path: &std::path::Path) -> Result<()> {
        match self {
            Energy::Net(net) => net.save(path),
            Energy::Mlp(mlp) => mlp.save(path),
            other => Err(Error::invalid("energy", format!("only network energies can be saved, this one is {}", other.kind()))),
        }
    }

    #[doc(hidden)]
    pub fn has_layered_net(&self) -> bool {
        match self {
            Energy::Net(_) => true,
            Energy::Sum { terms } => terms.iter().any(|(_, t)| t.has_layered_net()),
            Energy::Group { inner, .. } | Energy::Slice { inner, .. } => inner.has_layered_net(),
            _ => false,
        }
    }

    fn kind_fn(&self) -> &'static str {
        match self {
            Energy::GaussianDiag { .. } => "gaussian_diag",
            Energy::BoxConstraint { penalty: BoxPenalty::Quadratic, .. } => "box_quadratic",
            Energy::BoxConstraint { penalty: BoxPenalty::Softplus { .. }, .. } => "box_softplus",
            other => other.kind(),
        }
    }

    /// Checks every parameter is finite and shapes agree; the spec parser calls it, and so
    /// should code that builds an `Energy` by hand.
    pub fn validate(&self) -> Result<()> {
        let finite = |what: &str, v: &[f32]| -> Result<()> {
            match v.iter().position(|x| !x.is_finite()) {
                Some(i) => Err(Error::invalid(format!("{what}[{i}]"), "must be a finite number")),
                None => Ok(()),
            }
        };
        if self.dim() == 0 {
            return Err(Error::invalid("energy", "dimension must be at least 1"));
        }
        match self {
            Energy::Image(img) => img.validate()?,
            Energy::GaussianDiag { mean, inv_var } => {
                finite("mean", mean)?;
                finite("std", inv_var)?;
            }
            Energy::GaussianPrecision { mean, precision } => {
                finite("mean", mean)?;
                finite("precision", precision)?;
            }
            Energy::GaussianMixture { components, dim } => {
                for (k, comp) in components.iter().enumerate() {
                    finite(&format!("means[{k}]"), &comp.mean)?;
                    finite(&format!("stds[{k}]"), &comp.inv_std)?;
                    finite("weights", &[comp.log_coef])?;
                    if comp.mean.len() != *dim || comp.inv_std.len() != *dim {
                        return Err(Error::invalid(format!("means[{k}]"), "dimension mismatch"));
                    }
                }
            }
            Energy::DoubleWell { barrier, .. } => finite("barrier", &[*barrier])?,
            Energy::Banana { a, b, .. } => finite("a, b", &[*a, *b])?,
            Energy::BoxConstraint { lo, hi, penalty, weight } => {
                finite("lo", lo)?;
                finite("hi", hi)?;
                finite("weight", &[*weight])?;
                if let BoxPenalty::Softplus { sharpness } = penalty {
                    finite("sharpness", &[*sharpness])?;
                }
                if hi.len() != lo.len() {
                    return Err(Error::invalid("hi", format!("has {} entries but lo has {}", hi.len(), lo.len())));
                }
                // An empty box has no feasible point: the penalty would pull chains to its middle.
                if let Some(i) = (0..lo.len()).find(|&i| !(lo[i] <= hi[i])) {
                    return Err(Error::invalid(format!("lo[{i}]"), format!("{} is above hi[{i}] = {}: the box is empty", lo[i], hi[i])));
                }
            }
            Energy::Linear { a, b, weight, .. } => {
                finite("a", a)?;
                finite("b, weight", &[*b, *weight])?;
            }
            Energy::NormBall { center, radius, weight } => {
                finite("center", center)?;
                finite("radius, weight", &[*radius, *weight])?;
            }
            Energy::Simplex { weight, .. } => finite("weight", &[*weight])?,
            Energy::Mlp(m) => m.validate()?,
            Energy::Net(n) => n.architecture().shapes().map(|_| ())?,
            Energy::Sum { terms } => {
                let d = self.dim();
                for (t, (w, term)) in terms.iter().enumerate() {
                    finite(&format!("weights[{t}]"), &[*w])?;
                    term.validate()?;
                    if term.dim() != d {
                        return Err(Error::invalid(
                            format!("terms[{t}]"),
                            format!("dimension {} differs from the first term's {d}", term.dim()),
                        ));
                    }
                }
            }
            Energy::Group { inner, action, .. } => {
                inner.validate()?;
                if inner.has_layered_net() {
                    // Layered networks run in their own kernels, outside the per-chain energy a
                    // group evaluates |G| times; MLP-shaped networks are inlined and fine.
                    return Err(Error::invalid("energy", "a group cannot wrap a layered network (net: with convolutions or several outputs); MLP-shaped networks are fine"));
                }
                if action.order() == 0 {
                    return Err(Error::invalid("group", "the group has no elements"));
                }
                if action.dim() != inner.dim() {
                    let (field, what) = match action {
                        GroupAction::Plane { .. } => ("group", "2-D groups act on 2-D points"),
                        GroupAction::Image { .. } => ("image", "channels x height x width must equal the energy's dimension"),
                    };
                    return Err(Error::invalid(field, format!("{what}, but the energy has dimension {}", inner.dim())));
                }
                if let GroupAction::Plane { matrices } = action {
                    finite("group matrices", &matrices.concat())?;
                }
            }
            Energy::Slice { indices, dim, inner } => {
                inner.validate()?;
                if let Some(problem) = slice_problem(indices, *dim, inner.dim()) {
                    return Err(Error::invalid("slice", problem));
                }
            }
        }
        Ok(())
    }
}

/// E_G at x with weight * dE_G/dx added to g, where `inner(xt, gt)` returns E(xt) and adds
/// dE/dxt to gt: the one formula of [`Energy::Group`] (the WGSL of [`group_wgsl_function`]
/// follows it step by step). Both modes are a weighted average of the pulled-back gradients,
/// sum_g w_g g^T dE(g.x) / sum_g w_g, with w_g = exp(-E(g.x)) (kept relative to the running
/// maximum, as the online log-sum-exp of [`Energy::GaussianMixture`], so no branch on data) or 1.
#[inline(always)]
fn group_energy_grad<T: Field>(
    action: &GroupAction,
    mode: GroupMode,
    x: &[T],
    g: &mut [T],
    weight: T,
    mut inner: impl FnMut(&[T], &mut [T]) -> T,
) -> T {
    let c = T::from_f32;
    let d = x.len();
    let mut small = [T::zero(); 96];
    let mut large = Vec::new();
    let scratch: &mut [T] = if 3 * d <= small.len() {
        &mut small[..3 * d]
    } else {
        large.resize(3 * d, T::zero());
        &mut large
    };
    let (xt, rest) = scratch.split_at_mut(d);
    let (gt, acc) = rest.split_at_mut(d);
    let (mut run_max, mut run_sum, mut e_sum) = (c(-3.0e38), T::zero(), T::zero());
    for k in 0..action.order() {
        action.apply(k, x, xt);
        gt.iter_mut().for_each(|v| *v = T::zero());
        let e = inner(xt, gt);
        e_sum += e;
        let a = match mode {
            GroupMode::LogMeanExp => -e,
            GroupMode::Mean => T::zero(),
        };
        let m = run_max.max(a);
        let (scale_old, w) = ((run_max - m).exp(), (a - m).exp());
        run_max = m;
        run_sum = run_sum * scale_old + w;
        action.pull_back(k, gt, acc, scale_old, w);
    }
    for i in 0..d {
        g[i] += weight * acc[i] / run_sum;
    }
    weight
        * match mode {
            GroupMode::LogMeanExp => c((action.order() as f32).ln()) - (run_max + run_sum.ln()),
            GroupMode::Mean => e_sum / run_sum,
        }
}

/// The WGSL function `name(x, g, base, weight)` of an [`Energy::Group`] whose parameters start
/// at `base`: [`group_energy_grad`]'s arithmetic, with the inner energy's calls (and any
/// functions they need, added to `functions`) evaluated on the local arrays xt, gt.
fn group_wgsl_function(name: &str, inner: &Energy, action: &GroupAction, mode: GroupMode, base: usize, functions: &mut String) -> String {
    let (header, apply, pull_back) = match action {
        GroupAction::Plane { matrices } => (
            4 * matrices.len(),
            "let m = base + 4u * k;\n        \
             xt[0] = energy_params[m] * (*x_in)[0] + energy_params[m + 1u] * (*x_in)[1];\n        \
             xt[1] = energy_params[m + 2u] * (*x_in)[0] + energy_params[m + 3u] * (*x_in)[1];"
                .to_string(),
            "acc[0] = acc[0] * scale_old + w * (energy_params[m] * gt[0] + energy_params[m + 2u] * gt[1]);\n        \
             acc[1] = acc[1] * scale_old + w * (energy_params[m + 1u] * gt[0] + energy_params[m + 3u] * gt[1]);"
                .to_string(),
        ),
        GroupAction::Image { side, .. } => (
            0,
            format!("for (var p = 0u; p < DIM; p++) {{ xt[p] = (*x_in)[group_image_source(p, k, {side}u)]; }}"),
            format!(
                "for (var p = 0u; p < DIM; p++) {{\n            let s = group_image_source(p, k, {side}u);\n            \
                 acc[s] = acc[s] * scale_old + w * gt[p];\n        }}"
            ),
        ),
    };
    let mut inner_base = base + header;
    let mut calls = String::new();
    inner.wgsl_calls(1.0, &mut inner_base, &mut calls, functions);
    let a = match mode {
        GroupMode::LogMeanExp => "-e",
        GroupMode::Mean => "0.0",
    };
    let energy = match mode {
        GroupMode::LogMeanExp => format!("{:?} - (run_max + log(run_sum))", (action.order() as f32).ln()),
        GroupMode::Mean => "e_sum / run_sum".to_string(),
    };
    format!(
        "fn {name}(x_in: ptr<function, array<f32, DIM>>, g_in: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {{\n    \
         var xt: array<f32, DIM>;\n    var gt: array<f32, DIM>;\n    var acc: array<f32, DIM>;\n    \
         var run_max = -3.0e38;\n    var run_sum = 0.0;\n    var e_sum = 0.0;\n    \
         for (var k = 0u; k < {order}u; k++) {{\n        {apply}\n        \
         for (var i = 0u; i < DIM; i++) {{ gt[i] = 0.0; }}\n        var e = 0.0;\n        \
         {{\n            let x = &xt;\n            let g = &gt;\n    {calls}        }}\n        \
         e_sum += e;\n        let a = {a};\n        let mx = max(run_max, a);\n        \
         let scale_old = exp(run_max - mx);\n        let w = exp(a - mx);\n        run_max = mx;\n        \
         run_sum = run_sum * scale_old + w;\n        {pull_back}\n    }}\n    \
         for (var i = 0u; i < DIM; i++) {{ (*g_in)[i] += weight * acc[i] / run_sum; }}\n    \
         return weight * ({energy});\n}}\n",
        order = action.order(),
    )
}

/// What is wrong with `indices` as the slice of a term of dimension `inner_dim` in a sum of
/// dimension `dim`, if anything (the spec parser names the field, [`Energy::validate`] checks
/// hand-built energies).
pub fn slice_problem(indices: &[usize], dim: usize, inner_dim: usize) -> Option<String> {
    if indices.is_empty() {
        return Some("is empty: a sliced term looks at one dimension or more".into());
    }
    // The kernels read the indices as f32 from the parameter block, exact below 2^24.
    if dim > 1 << 24 {
        return Some(format!("slices need a dimension of at most 2^24, not {dim}"));
    }
    if let Some(&i) = indices.iter().find(|&&i| i >= dim) {
        return Some(format!("index {i} is out of range for dimension {dim}"));
    }
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Some(format!("index {} appears twice", w[0]));
    }
    (indices.len() != inner_dim).then(|| format!("has {} indices but the term has dimension {inner_dim}", indices.len()))
}

/// E_inner(x[indices]) with weight * its gradient scattered into g, where `inner(xs, gs)`
/// returns E(xs) and adds dE/dxs to gs (zeroed): the one formula of [`Energy::Slice`], which
/// the WGSL of [`slice_wgsl_function`] follows.
#[inline(always)]
fn slice_energy_grad<T: Field>(indices: &[usize], x: &[T], g: &mut [T], weight: T, inner: impl FnOnce(&[T], &mut [T]) -> T) -> T {
    let k = indices.len();
    let mut small = [T::zero(); 64];
    let mut large = Vec::new();
    let scratch: &mut [T] = if 2 * k <= small.len() {
        &mut small[..2 * k]
    } else {
        large.resize(2 * k, T::zero());
        &mut large
    };
    let (xs, gs) = scratch.split_at_mut(k);
    for (v, &i) in xs.iter_mut().zip(indices) {
        *v = x[i];
    }
    let e = inner(xs, gs);
    for (&v, &i) in gs.iter().zip(indices) {
        g[i] += weight * v;
    }
    weight * e
}

/// The WGSL function `name(x, g, base, weight)` of an [`Energy::Slice`] of `k` indices whose
/// parameters (the indices, then the inner energy's) start at `base`: gathers x[indices] into
/// an `array<f32, DIM_k>`, evaluates the inner energy's calls on it and scatters the gradient.
/// The inner energy's code is written for `DIM` and then specialised to k
/// ([`specialise_wgsl`]), with a copy of the analytic energies for k added once to `functions`.
fn slice_wgsl_function(name: &str, k: usize, inner: &Energy, base: usize, functions: &mut String) -> String {
    let start = functions.len();
    let (mut inner_base, mut calls) = (base + k, String::new());
    inner.wgsl_calls(1.0, &mut inner_base, &mut calls, functions);
    let generated = specialise_wgsl(&functions[start..], k);
    functions.truncate(start);
    // Module-scope declarations may come in any order, so the copy can follow its users.
    if !functions.contains(&format!("const DIM_{k}: u32")) {
        let analytic = crate::gpu::shader::SOURCES.iter().find(|(n, _)| *n == "energy/energy_analytic.wgsl").expect("bundled").1;
        functions.push_str(&format!("const DIM_{k}: u32 = {k}u;\n{}\n", specialise_wgsl(analytic, k)));
    }
    functions.push_str(&generated);
    let calls = specialise_wgsl(&calls, k);
    format!(
        "fn {name}(x_in: ptr<function, array<f32, DIM>>, g_in: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {{\n    \
         var xs: array<f32, DIM_{k}>;\n    var gs: array<f32, DIM_{k}>;\n    \
         for (var i = 0u; i < DIM_{k}; i++) {{ xs[i] = (*x_in)[u32(energy_params[base + i])]; }}\n    var e = 0.0;\n    \
         {{\n        let x = &xs;\n        let g = &gs;\n    {calls}    }}\n    \
         for (var i = 0u; i < DIM_{k}; i++) {{ (*g_in)[u32(energy_params[base + i])] += weight * gs[i]; }}\n    \
         return weight * e;\n}}\n"
    )
}

/// WGSL written for points of dimension `DIM`, rewritten for dimension k: the identifier `DIM`
/// becomes `DIM_k` and the functions of `shaders/energy/energy_analytic.wgsl` their `_dk` copies
/// (WGSL has no generics; this is the same code specialised, as pipelines specialise sizes).
fn specialise_wgsl(text: &str, k: usize) -> String {
    let analytic = crate::gpu::shader::SOURCES.iter().find(|(n, _)| *n == "energy/energy_analytic.wgsl").expect("bundled").1;
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let analytic_fns: Vec<&str> = analytic.lines().filter_map(|l| l.strip_prefix("fn ")?.split('(').next()).collect();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_ident) {
        out.push_str(&rest[..start]);
        let end = rest[start..].find(|c: char| !is_ident(c)).map_or(rest.len(), |e| start + e);
        let word = &rest[start..end];
        match word {
            "DIM" => out.push_str(&format!("DIM_{k}")),
            w if analytic_fns.contains(&w) => out.push_str(&format!("{w}_d{k}")),
            w => out.push_str(w),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
