//! What an analytic energy term provides ([`AnalyticTerm`]) and the list of them ([`Analytic`]).
//!
//! Each family lives in its own file (src/energy/NAME.rs) with its WGSL function beside it under
//! the same name (shaders/energy/NAME.wgsl). Adding one: write the file and its WGSL, list it in
//! [`analytic_terms!`] below and in `shaders/`'s `SOURCES`, and give the spec parser its syntax.

use crate::num::Field;
use crate::{Error, Result};

/// An analytic energy family: its formula on any [`Field`] (the CPU twin of its WGSL
/// function), the parameter block that function reads, and what the planners need to know.
pub trait AnalyticTerm {
    /// The family's WGSL file, relative to `shaders/`.
    const WGSL_FILE: &'static str;
    /// Dimension of the points.
    fn dim(&self) -> usize;
    /// Short name for messages and pipeline labels.
    fn kind(&self) -> &'static str;
    /// Its WGSL function `NAME(x, g, base, weight) -> f32` in [`Self::WGSL_FILE`].
    fn wgsl_function(&self) -> &'static str;
    /// weight * E(x), with weight * dE/dx added to g: the WGSL function's formula in its order,
    /// so f32 results agree with the GPU up to rounding (and `Lanes` lanes with f32 exactly).
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T;
    /// Appends the parameters in the order the WGSL function reads them from `base`.
    fn pack_into(&self, out: &mut Vec<f32>);
    /// Loop iterations of one WGSL evaluation (an upper bound), to keep invocations within an
    /// adapter's loop cap.
    fn loop_iterations(&self) -> u64;
    /// FLOPs of one energy and gradient at one point as the WGSL computes them (the roofline
    /// model); None where the model leaves the family out.
    fn flops(&self) -> Option<f64> {
        None
    }
    /// Checks every parameter is finite and the shapes agree.
    fn validate(&self) -> Result<()>;
}

/// Refuses the first non-finite value of `values`, naming it `what[i]`.
pub(crate) fn check_finite(what: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::invalid(format!("{what}[{i}]"), "must be a finite number")),
        None => Ok(()),
    }
}

/// The WGSL files the generated energy module imports: every analytic family's (once) and the
/// group helpers.
pub(crate) fn wgsl_files() -> Vec<&'static str> {
    let mut files: Vec<&'static str> = Vec::new();
    for &file in Analytic::WGSL_FILES.iter().chain(&["energy/group.wgsl"]) {
        if !files.contains(&file) {
            files.push(file);
        }
    }
    files
}

/// Declares [`Analytic`] over the families and forwards each [`AnalyticTerm`] method to them.
macro_rules! analytic_terms {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// An analytic energy term: one of the families, each in its own file.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Analytic {
            $($variant($ty)),*
        }

        $(
            impl From<$ty> for Analytic {
                fn from(term: $ty) -> Self {
                    Analytic::$variant(term)
                }
            }
            impl From<$ty> for super::Energy {
                fn from(term: $ty) -> Self {
                    super::Energy::Analytic(Analytic::$variant(term))
                }
            }
        )*

        impl Analytic {
            /// Every family's WGSL file (a file may hold several families).
            pub(crate) const WGSL_FILES: &'static [&'static str] = &[$(<$ty as AnalyticTerm>::WGSL_FILE),*];

            pub fn dim(&self) -> usize {
                match self { $(Analytic::$variant(t) => t.dim()),* }
            }
            pub fn kind(&self) -> &'static str {
                match self { $(Analytic::$variant(t) => t.kind()),* }
            }
            pub(crate) fn wgsl_function(&self) -> &'static str {
                match self { $(Analytic::$variant(t) => t.wgsl_function()),* }
            }
            #[inline(always)]
            pub(crate) fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
                match self { $(Analytic::$variant(t) => t.add_energy_grad(x, g, weight)),* }
            }
            pub(crate) fn pack_into(&self, out: &mut Vec<f32>) {
                match self { $(Analytic::$variant(t) => t.pack_into(out)),* }
            }
            pub(crate) fn loop_iterations(&self) -> u64 {
                match self { $(Analytic::$variant(t) => t.loop_iterations()),* }
            }
            /// See [`AnalyticTerm::flops`].
            pub fn flops(&self) -> Option<f64> {
                match self { $(Analytic::$variant(t) => t.flops()),* }
            }
            pub fn validate(&self) -> Result<()> {
                match self { $(Analytic::$variant(t) => t.validate()),* }
            }
        }
    };
}

use super::{banana, constraints, double_well, gaussian, mixture};

analytic_terms! {
    GaussianDiag(gaussian::GaussianDiag),
    GaussianPrecision(gaussian::GaussianPrecision),
    GaussianMixture(mixture::GaussianMixture),
    DoubleWell(double_well::DoubleWell),
    Banana(banana::Banana),
    BoxConstraint(constraints::BoxConstraint),
    Linear(constraints::Linear),
    NormBall(constraints::NormBall),
    Simplex(constraints::Simplex),
}
