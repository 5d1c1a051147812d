//! Energies E(x) with their gradients, on both executors.
//!
//! [`Energy`] is the validated, executor-neutral description: analytic terms ([`Analytic`], one
//! file per family: gaussian, mixture, double_well, banana, constraints; each with its WGSL
//! function under the same name in `shaders/energy/`), networks and images, and the composites
//! (sum, [`group`], [`slice`]). Its CPU twin is [`Energy::energy_grad`] (generic over f32 for
//! the executor and f64 for references); the GPU side is the generated module of
//! [`EnergyInternals::wgsl_module`], fed by [`EnergyInternals::pack_params`] (module `internals`: the
//! engine's methods on `Energy`, out of the public API).

mod banana;
pub mod batch;
mod constraints;
mod double_well;
pub mod feasible;
mod gaussian;
pub mod gpu;
mod group;
pub mod image;
mod internals;
pub mod log_z;
mod mixture;
mod slice;
pub mod spec;
mod spec_fields;
mod term;

pub use banana::Banana;
pub use constraints::{BoxConstraint, BoxPenalty, Linear, NormBall, Simplex};
pub use double_well::DoubleWell;
pub use gaussian::{GaussianDiag, GaussianPrecision};
#[cfg(feature = "internals")]
pub use group::image_source;
pub use group::{GroupAction, GroupMode};
pub use internals::EnergyInternals;
pub use mixture::{GaussianMixture, MixtureComponent};
pub use slice::slice_problem;
pub use term::{Analytic, AnalyticTerm};

use crate::nn::NetworkInternals;
use crate::num::Real;
use crate::{Error, Result};
use group::group_energy_grad;
use slice::slice_energy_grad;
use std::sync::Arc;

/// The most operations one evaluation of an energy (with its gradient) may take: far above
/// any useful energy (a large network's pass is about 1e10), far below a composition that
/// multiplies out (4 nested groups of 1024 elements: 2.3e13 per evaluation).
pub const MAX_EVALUATION_COST: u64 = 1_000_000_000_000;

/// A validated energy. Build it from a JSON spec with `resolve_energy` or directly.
#[derive(Clone, Debug, PartialEq)]
pub enum Energy {
    /// An analytic term: Gaussians, mixtures, the double well, the banana, constraints.
    Analytic(Analytic),
    /// E = -log(epsilon + luminance(x)) of a picture on the plane ([`image::ImageDensity`]).
    Image(Arc<image::ImageDensity>),
    /// E = head(f(x)) for a network ([`crate::nn::Network`]); shared, since weights can be
    /// large. MLP-shaped networks (a flat input, biased Linear layers with one activation
    /// between them, one output, head f or -f) are inlined into the fused per-chain kernels
    /// (kind `mlp`); any other (convolutions, several outputs) runs through the layer kernels
    /// (kind `net`).
    Net(Arc<crate::nn::Network>),
    /// E = sum_t weight_t * E_t (product of experts; a single term with weight 1/T is a
    /// temperature).
    Sum { terms: Vec<(f32, Energy)> },
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
            Energy::Analytic(t) => t.dim(),
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
            Energy::Analytic(t) => t.kind(),
            Energy::Net(n) if n.as_mlp().is_some() => "mlp",
            Energy::Net(_) => "net",
            Energy::Sum { .. } => "sum",
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
    /// point; network terms run as GEMMs (`NetView::add_energy_grad_batch`), so results equal
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
                for ((g, e), (gk, ek)) in gs.chunks_exact_mut(d).zip(es.iter_mut()).zip(gsub.chunks_exact(k).zip(esub))
                {
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

    /// (channels, height, width) when the points are images (a network with an image input).
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

    /// A network as an energy ([`Energy::Net`]): MLP-shaped networks take the per-chain fused
    /// kernels, any other the layer kernels.
    pub fn from_network(net: crate::nn::Network) -> Energy {
        Energy::Net(Arc::new(net))
    }

    /// A network energy's architecture in the text form `Architecture::parse` reads; None for
    /// other energies.
    pub fn architecture(&self) -> Option<String> {
        match self {
            Energy::Net(net) => Some(net.architecture().to_string()),
            _ => None,
        }
    }

    /// Writes a network energy as a safetensors file that the spec `net:PATH` loads (MLPs in
    /// the `ebm init-mlp` format, which `mlp:PATH` loads too); other energies are refused by
    /// kind.
    pub fn save_network(&self, path: &std::path::Path) -> Result<()> {
        match self {
            Energy::Net(net) => match net.as_mlp() {
                Some(mlp) => mlp.save(path),
                None => net.save(path),
            },
            other => Err(Error::invalid(
                "energy",
                format!("only network energies can be saved, this one is {}", other.kind()),
            )),
        }
    }

    /// Checks every parameter is finite and shapes agree; the spec parser calls it, and so
    /// should code that builds an `Energy` by hand.
    pub fn validate(&self) -> Result<()> {
        if self.dim() == 0 {
            return Err(Error::invalid("energy", "dimension must be at least 1"));
        }
        match self {
            Energy::Image(img) => img.validate()?,
            Energy::Analytic(t) => t.validate()?,
            Energy::Net(n) => match n.as_mlp() {
                Some(m) => m.validate()?,
                None => n.architecture().shapes().map(|_| ())?,
            },
            Energy::Sum { terms } => {
                let d = self.dim();
                for (t, (w, term)) in terms.iter().enumerate() {
                    term::check_finite(&format!("weights[{t}]"), &[*w])?;
                    term.validate()?;
                    if term.dim() != d {
                        return Err(Error::invalid(
                            format!("terms[{t}]"),
                            format!("dimension {} differs from the first term's {d}", term.dim()),
                        ));
                    }
                }
            }
            Energy::Group { inner, action, .. } => group::validate_group(inner, action)?,
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
