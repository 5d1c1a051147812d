//! # ebm-gpu
//!
//! Energy-based models on the GPU: hand-written WGSL compute kernels run through wgpu, with a
//! CPU twin for every kernel that is both its correctness oracle and its benchmark baseline.
//!
//! ```no_run
//! use ebm_gpu::prelude::*;
//! # fn main() -> ebm_gpu::Result<()> {
//! let energy = resolve_energy("ring8")?;
//! let ctx = std::sync::Arc::new(GpuContext::new()?);
//! let init = initial_states(7, 0, 4096, energy.dim(), 1.0);
//! let config = SamplerConfig::builder(SamplerKind::Mala, 0.05, 7).build()?;
//! let mut sampler = GpuSampler::new(ctx, &energy, config, &init)?;
//! sampler.run(1000)?;
//! let samples = sampler.state()?; // [4096, 2]
//! # Ok(()) }
//! ```
//!
//! The public API is [`prelude`] (energies, networks from PyTorch tensors, the GPU and CPU
//! samplers, a context on the application's own device); with the default `cli` feature, also
//! [`cli`] (every `ebm` command, in-process) and [`data_parallel`]. The Python package and the
//! browser demo (`web/`) are built against exactly this. What the engine itself does with
//! these types (WGSL generation, packing parameters for its kernels, the CPU executor's tapes,
//! pipeline and buffer helpers) is not on them but on crate-private extension traits, which an
//! application cannot import, so it cannot call them ([`prelude`] has the doc-tests that hold
//! this); and the types that must stay valid once built (`Network`, `ImageDensity`) keep their
//! fields private. Settings (`SamplerConfig`, `ImageOptions`, `Architecture`) are plain data.

// An embedding build (no `cli`) leaves out the commands' own modules but compiles the shared
// ones whole; the few items in them that only the commands call (work limits, batched
// evaluation, some random streams) are unused there. The default build allows no dead code.
#![cfg_attr(not(any(feature = "cli", feature = "internals")), allow(dead_code, unused_imports))]
// `!(x > 0.0)` refuses NaN together with the out-of-range values: the engine's idiom for
// validating floats, which clippy's rewrite to partial_cmp would obscure.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
// Numeric loops index several arrays (and lanes) by one index, as their WGSL twins do.
#![allow(clippy::needless_range_loop)]

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod data_parallel;

// The engine's modules. Applications see `prelude` (and, with the `cli` feature, `cli` and
// `data_parallel`); these stay crate-private unless the `internals` feature is on, which the
// crate's own tests, benches and examples enable (a dev-dependency on itself) to test the
// pieces one by one. Nothing outside this repository should enable it.
// Written out rather than by a macro so that `cargo fmt` reaches every module.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod discrete;
#[cfg(all(feature = "cli", not(feature = "internals")))]
mod discrete;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod energy;
#[cfg(not(feature = "internals"))]
mod energy;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod error;
#[cfg(not(feature = "internals"))]
mod error;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod gpu;
#[cfg(not(feature = "internals"))]
mod gpu;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod io;
#[cfg(not(feature = "internals"))]
mod io;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod nn;
#[cfg(not(feature = "internals"))]
mod nn;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod num;
#[cfg(not(feature = "internals"))]
mod num;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod plan;
#[cfg(not(feature = "internals"))]
mod plan;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod rng;
#[cfg(not(feature = "internals"))]
mod rng;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod sampler;
#[cfg(not(feature = "internals"))]
mod sampler;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod simd;
#[cfg(not(feature = "internals"))]
mod simd;
// What only the `ebm` commands use (training, RBMs, likelihoods, data sets, evaluation,
// restoration, the self-test): not compiled into an embedding application's build.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod ais;
#[cfg(all(feature = "cli", not(feature = "internals")))]
mod ais;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod data;
#[cfg(all(feature = "cli", not(feature = "internals")))]
mod data;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod eval;
#[cfg(all(feature = "cli", not(feature = "internals")))]
mod eval;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod rbm;
#[cfg(all(feature = "cli", not(feature = "internals")))]
mod rbm;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod restore;
#[cfg(all(feature = "cli", not(feature = "internals")))]
mod restore;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod selftest;
#[cfg(all(feature = "cli", not(feature = "internals")))]
mod selftest;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod train;
#[cfg(all(feature = "cli", not(feature = "internals")))]
mod train;

pub use error::{Error, Result};

pub mod prelude;
/// The wgpu this crate is built against, for applications that share their device.
pub use wgpu;
