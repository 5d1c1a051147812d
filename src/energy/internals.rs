//! The engine's side of [`Energy`] ([`EnergyInternals`]): the generated WGSL module and the
//! parameter block its kernels read, the lane evaluation of analytic energies, and the loop and
//! cost counts that size kernels and work plans. A crate-private extension trait rather than
//! inherent methods, so an application that holds an `Energy` (the prelude's) cannot reach
//! them; the crate's own tests name it through the `internals` feature.

use super::group::{group_energy_grad, group_wgsl_function};
use super::image::ImageDensity;
use super::slice::{slice_energy_grad, slice_wgsl_function};
use super::{Energy, GroupAction, MAX_EVALUATION_COST, term};
use crate::nn::NetworkInternals;
use crate::num::Field;
use crate::{Error, Result};

/// What the engine asks of an [`Energy`] beyond its public methods (module docs).
pub trait EnergyInternals {
    /// Whether every term is analytic (no network): such energies also run on `Lanes`.
    fn is_analytic(&self) -> bool;

    /// Whether the energy has a network term that runs through the layer kernels rather than
    /// inlined into the per-chain sampler kernels (any network but an MLP-shaped one).
    fn has_layered_net(&self) -> bool;

    /// A lone network, or a (nested) sum of networks, as its networks with their weights: what
    /// the GPU's layer kernels compose ([`crate::nn::gpu_sum`]). Any other term is refused,
    /// named by its place in the sum.
    fn network_terms(&self) -> Result<Vec<(f32, &crate::nn::Network)>>;

    /// E at x for an analytic energy ([`Self::is_analytic`]), with `weight` * dE/dx added to g;
    /// generic over `Field`, so `Lanes` evaluates a block of chains with the same
    /// formulas. Network terms contribute nothing here (callers check `is_analytic`).
    fn add_analytic_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T;

    /// Loop iterations one `energy_grad` takes in WGSL (an upper bound: small loops may be
    /// unrolled by the driver), to keep invocations within an adapter's loop cap; also the
    /// work plans' cost of one evaluation. Nested groups multiply out, so it saturates rather
    /// than wrap.
    fn loop_iterations(&self) -> u64;

    /// Operations of one evaluation and its gradient, for the work plans: the loop count (a
    /// sum's terms added, at each level of a group |G| evaluations of its energy, so nested
    /// compositions multiply out), at least one per dimension.
    fn evaluation_cost(&self) -> u64;

    /// [`Self::evaluation_cost`], refused above [`MAX_EVALUATION_COST`] naming `flag` (the
    /// energy's flag): an energy that costs that much per evaluation makes any command a hang.
    fn checked_evaluation_cost(&self, flag: &str) -> Result<u64>;

    /// The f32 parameter block the WGSL energies read from `energy_params`.
    fn pack_params(&self) -> Vec<f32>;

    /// The first image term (depth first) and where its luminance starts in
    /// [`Self::pack_params`], for rewriting it on the device.
    fn image_term(&self) -> Option<(usize, &ImageDensity)>;

    /// The generated WGSL module imported by kernels as `energy`: `DIM`, the analytic
    /// energies, generated network functions, and `energy_grad(x, g) -> f32`, which zeroes g
    /// and sums the terms.
    fn wgsl_module(&self) -> String;
}

impl EnergyInternals for Energy {
    fn is_analytic(&self) -> bool {
        match self {
            // Images index pixels by the point: per-chain lookups, no lane blocks.
            Energy::Net(_) | Energy::Image(_) => false,
            Energy::Sum { terms } => terms.iter().all(|(_, t)| t.is_analytic()),
            Energy::Group { inner, .. } | Energy::Slice { inner, .. } => inner.is_analytic(),
            _ => true,
        }
    }

    fn network_terms(&self) -> Result<Vec<(f32, &crate::nn::Network)>> {
        fn collect<'a>(
            e: &'a Energy,
            weight: f32,
            at: &str,
            out: &mut Vec<(f32, &'a crate::nn::Network)>,
        ) -> Result<()> {
            match e {
                Energy::Net(n) => out.push((weight, n)),
                Energy::Sum { terms } => {
                    for (t, (w, term)) in terms.iter().enumerate() {
                        collect(term, weight * w, &format!("{at}terms[{t}]."), out)?;
                    }
                }
                other => {
                    return Err(Error::invalid(
                        at.trim_end_matches('.').to_string(),
                        format!(
                            "a {} term: the GPU composes network terms only (a sum with a convolutional or multi-output network); the CPU executor (--backend cpu) runs sums that mix networks with other terms",
                            other.kind()
                        ),
                    ));
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        collect(self, 1.0, "energy.", &mut out)?;
        Ok(out)
    }

    fn has_layered_net(&self) -> bool {
        match self {
            Energy::Net(n) => n.as_mlp().is_none(),
            Energy::Sum { terms } => terms.iter().any(|(_, t)| t.has_layered_net()),
            Energy::Group { inner, .. } | Energy::Slice { inner, .. } => inner.has_layered_net(),
            _ => false,
        }
    }

    #[inline(always)]
    fn add_analytic_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
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

    fn loop_iterations(&self) -> u64 {
        let d = self.dim() as u64;
        match self {
            Energy::Image(_) => 4,
            Energy::Analytic(t) => t.loop_iterations(),
            // Other networks are not inlined into the per-chain kernels: they run through the
            // layer kernels.
            Energy::Net(n) => n.as_mlp().map_or_else(|| n.macs(), |m| m.loop_iterations()),
            Energy::Sum { terms } => terms.iter().fold(0u64, |a, (_, t)| a.saturating_add(t.loop_iterations())),
            // Per element: g.x, zeroing gt, the inner energy, the pull-back (image groups also
            // loop over up to 3 quarter turns per pixel, twice).
            Energy::Group { inner, action, .. } => {
                (action.order() as u64).saturating_mul(inner.loop_iterations().saturating_add(9 * d + 1))
            }
            // Gather, the inner energy, scatter.
            Energy::Slice { indices, inner, .. } => inner.loop_iterations().saturating_add(2 * indices.len() as u64),
        }
    }

    fn evaluation_cost(&self) -> u64 {
        self.loop_iterations().max(self.dim() as u64).max(1)
    }

    fn checked_evaluation_cost(&self, flag: &str) -> Result<u64> {
        let cost = self.evaluation_cost();
        if cost > MAX_EVALUATION_COST {
            let nested = if matches!(self, Energy::Group { .. } | Energy::Sum { .. } | Energy::Slice { .. }) {
                " (a group evaluates its energy once per element, at every level of nesting)"
            } else {
                ""
            };
            return Err(Error::invalid(
                flag,
                format!(
                    "one evaluation of this {} energy would take about {:.1e} operations{nested}, more than the {:.1e} allowed; \
                     use a smaller energy (fewer or smaller nested groups)",
                    self.kind(),
                    cost as f64,
                    MAX_EVALUATION_COST as f64
                ),
            ));
        }
        Ok(cost)
    }

    fn pack_params(&self) -> Vec<f32> {
        let mut out = Vec::new();
        self.pack_into(&mut out);
        if out.is_empty() {
            out.push(0.0); // a storage binding may not be empty
        }
        out
    }

    fn image_term(&self) -> Option<(usize, &ImageDensity)> {
        // `at` advances past every term searched without success.
        fn find<'a>(energy: &'a Energy, at: &mut usize) -> Option<(usize, &'a ImageDensity)> {
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

    fn wgsl_module(&self) -> String {
        let (mut calls, mut functions) = (String::new(), String::new());
        let mut base = 0usize;
        self.wgsl_calls(1.0, &mut base, &mut calls, &mut functions);
        let imports: String = term::wgsl_files().iter().map(|file| format!("#import {file}\n")).collect();
        format!(
            "const DIM: u32 = {dim}u;\n{imports}#import common/activations.wgsl\n\n{functions}\n\
             fn energy_grad(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>) -> f32 {{\n    \
             for (var i = 0u; i < DIM; i++) {{ (*g)[i] = 0.0; }}\n    var e = 0.0;\n{calls}    return e;\n}}\n",
            dim = self.dim()
        )
    }
}

impl Energy {
    /// A sum nested in a sum (the recursion, kept out of line so the common cases inline).
    #[inline(never)]
    fn add_nested_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        self.add_analytic_energy_grad(x, g, weight)
    }

    /// A group around an analytic energy (out of line, as [`Self::add_nested_energy_grad`]).
    #[inline(never)]
    fn add_analytic_group_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let Energy::Group { inner, action, mode } = self else { unreachable!("called for groups only") };
        group_energy_grad(action, *mode, x, g, weight, |xt, gt| {
            inner.add_analytic_energy_grad(xt, gt, T::from_f32(1.0))
        })
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
        match self {
            Energy::Analytic(t) => t.add_energy_grad(x, g, weight),
            Energy::Sum { .. } => self.add_nested_energy_grad(x, g, weight),
            Energy::Group { .. } => self.add_analytic_group_energy_grad(x, g, weight),
            Energy::Slice { .. } => self.add_analytic_slice_energy_grad(x, g, weight),
            Energy::Net(_) | Energy::Image(_) => T::zero(),
        }
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        match self {
            Energy::Image(img) => img.pack_into(out),
            Energy::Analytic(t) => t.pack_into(out),
            Energy::Net(n) => out.extend(n.pack_params()),
            Energy::Sum { terms } => terms.iter().for_each(|(_, t)| t.pack_into(out)),
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

    pub(super) fn wgsl_calls(&self, weight: f32, base: &mut usize, out: &mut String, functions: &mut String) {
        let name = match self {
            Energy::Sum { terms } => {
                for (w, term) in terms {
                    term.wgsl_calls(weight * w, base, out, functions);
                }
                return;
            }
            Energy::Net(n) => match n.as_mlp() {
                Some(m) => {
                    let name = format!("mlp_energy_{base}");
                    functions.push_str(&m.wgsl_function(&name));
                    name
                }
                // The layered sampler adds other network terms outside this module; their
                // parameters still take their place in the block so the offsets of later
                // terms hold.
                None => {
                    *base += n.param_count();
                    return;
                }
            },
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
            Energy::Analytic(t) => t.wgsl_function().to_string(),
        };
        // `{:?}` prints an f32 so that it parses back to the same value.
        out.push_str(&format!("    e += {name}(x, g, {}u, {:?});\n", base, weight));
        let mut block = Vec::new();
        self.pack_into(&mut block);
        *base += block.len();
    }
}
