//! # ebm-gpu
//!
//! Energy-based models on the GPU: hand-written WGSL compute kernels run through wgpu, with a
//! CPU twin for every kernel that is both its correctness oracle and its benchmark baseline.
//!
//! ```no_run
//! use ebm_gpu::{energy::spec::resolve_energy, gpu::GpuContext, rng, sampler::*};
//! use ebm_gpu::sampler::gpu::GpuSampler;
//! # fn main() -> ebm_gpu::Result<()> {
//! let energy = resolve_energy("ring8")?;
//! let ctx = std::sync::Arc::new(GpuContext::new()?);
//! let init = rng::initial_states(7, 0, 4096, energy.dim(), 1.0);
//! let mut sampler = GpuSampler::new(ctx, &energy, SamplerConfig::new(SamplerKind::Mala, 0.05, 7), &init)?;
//! sampler.run(1000)?;
//! let samples = sampler.state()?; // [4096, 2]
//! # Ok(()) }
//! ```

pub mod data;
pub mod energy;
pub mod error;
pub mod eval;
pub mod gpu;
pub mod io;
pub mod nn;
pub mod plan;
pub mod restore;
pub mod rbm;
pub mod rng;
pub mod sampler;
pub mod simd;
pub mod train;

pub use error::{Error, Result};
/// The wgpu this crate is built against, for applications that share their device.
pub use wgpu;
