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

#[cfg(feature = "cli")]
pub mod cli;
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

/// What an application that embeds the sampler on its own wgpu device needs, in one import.
///
/// ```no_run
/// use ebm_gpu::prelude::*;
/// # fn main() -> ebm_gpu::Result<()> {
/// // The host's device (here made on the spot; a renderer passes its own).
/// let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
/// let adapter = pollster::block_on(instance.request_adapter(&Default::default())).expect("an adapter");
/// let (device, queue) = pollster::block_on(adapter.request_device(&Default::default())).expect("a device");
/// // The context shares it and leaves its callbacks alone.
/// let ctx = std::sync::Arc::new(GpuContext::from_device(device.clone(), queue.clone(), Some(adapter.get_info())));
/// let energy = resolve_energy("ring8")?;
/// let init = initial_states(7, 0, 65536, energy.dim(), 1.0);
/// // The algorithm's settings, then (optionally) how the GPU lays the work out.
/// let config = SamplerConfig::builder(SamplerKind::Ula, 0.01, 7).steps_per_dispatch(8).build()?;
/// let mut sampler = GpuSampler::new(ctx, &energy, config, &init)?;
/// // Every frame: sampler steps and the host's own passes in one encoder, one submit.
/// let mut encoder = device.create_command_encoder(&Default::default());
/// sampler.encode(&mut encoder, 8)?;
/// sampler.encode(&mut encoder, 8)?; // as often as wanted
/// let chains = sampler.state_buffer().expect("one buffer"); // STORAGE | VERTEX, [chains, 2] f32
/// // ... a render pass with `chains` as its vertex (instance) buffer ...
/// queue.submit([encoder.finish()]);
/// // Reading the chains back without blocking the frame:
/// let states = sampler.read_state_async()?; // resolves after the host's next device poll
/// # let _ = (chains, states);
/// # Ok(()) }
/// ```
pub mod prelude {
    pub use crate::energy::Energy;
    pub use crate::energy::image::{ImageDensity, ImageOptions};
    pub use crate::energy::spec::resolve_energy;
    pub use crate::gpu::{GpuContext, Readback};
    pub use crate::rng::initial_states;
    pub use crate::sampler::gpu::GpuSampler;
    pub use crate::sampler::{ChainSampler, DispatchTuning, SamplerBuilder, SamplerConfig, SamplerKind};
    pub use crate::{Error, Result};
    pub use wgpu;
}
/// The wgpu this crate is built against, for applications that share their device.
pub use wgpu;
