//! What an application that embeds the sampler on its own wgpu device needs, in one import.
//!
//! ```no_run
//! use ebm_gpu::prelude::*;
//! # fn main() -> ebm_gpu::Result<()> {
//! // The host's device (here made on the spot; a renderer passes its own).
//! let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
//! let adapter = pollster::block_on(instance.request_adapter(&Default::default())).expect("an adapter");
//! let (device, queue) = pollster::block_on(adapter.request_device(&Default::default())).expect("a device");
//! // The context shares it and leaves its callbacks alone.
//! let ctx = std::sync::Arc::new(GpuContext::from_device(device.clone(), queue.clone(), Some(adapter.get_info())));
//! let energy = resolve_energy("ring8")?;
//! let init = initial_states(7, 0, 65536, energy.dim(), 1.0);
//! // The algorithm's settings, then (optionally) how the GPU lays the work out.
//! let config = SamplerConfig::builder(SamplerKind::Ula, 0.01, 7).steps_per_dispatch(8).build()?;
//! let mut sampler = GpuSampler::new(ctx, &energy, config, &init)?;
//! // Every frame: sampler steps and the host's own passes in one encoder, one submit.
//! let mut encoder = device.create_command_encoder(&Default::default());
//! sampler.encode(&mut encoder, 8)?;
//! sampler.encode(&mut encoder, 8)?; // as often as wanted
//! let chains = sampler.state_buffer().expect("one buffer"); // STORAGE | VERTEX, [chains, 2] f32
//! // ... a render pass with `chains` as its vertex (instance) buffer ...
//! queue.submit([encoder.finish()]);
//! // Reading the chains back without blocking the frame:
//! let states = sampler.read_state_async()?; // resolves after the host's next device poll
//! # let _ = (chains, states);
//! # Ok(()) }
//! ```
//!
//! These types carry what an application calls and no more: the engine's own use of them
//! (WGSL generation, parameter packing, the CPU executor's tapes, pipeline and buffer helpers)
//! is on crate-private traits, and validated types keep their fields private. Each of these
//! therefore fails to compile outside the crate:
//!
//! ```compile_fail
//! use ebm_gpu::prelude::*;
//! let energy = resolve_energy("ring8").unwrap();
//! let _wgsl: String = energy.wgsl_module(); // the generated WGSL module
//! ```
//!
//! ```compile_fail
//! use ebm_gpu::prelude::*;
//! let energy = resolve_energy("ring8").unwrap();
//! let _block: Vec<f32> = energy.pack_params(); // the kernels' parameter block
//! ```
//!
//! ```compile_fail
//! use ebm_gpu::prelude::*;
//! let net = Network::random(&Architecture::parse("2/8/silu/1").unwrap(), 7).unwrap();
//! let _packed: Vec<f32> = net.pack_params(); // the packed parameters
//! ```
//!
//! ```compile_fail
//! use ebm_gpu::prelude::*;
//! let net = Network::random(&Architecture::parse("2/8/silu/1").unwrap(), 7).unwrap();
//! let _view = net.view(); // the layer view the CPU tapes run on
//! ```
//!
//! ```compile_fail
//! use ebm_gpu::prelude::*;
//! let net = Network::random(&Architecture::parse("2/8/silu/1").unwrap(), 7).unwrap();
//! let _count = net.layers.len(); // fields are private
//! ```
//!
//! ```compile_fail
//! use ebm_gpu::prelude::*;
//! let ctx = GpuContext::new().unwrap();
//! let _kernel = ctx.kernel("k", "@compute @workgroup_size(1) fn main() {}", "main"); // pipelines
//! ```
//!
//! ```compile_fail
//! use ebm_gpu::prelude::*;
//! let density = ImageDensity::from_rgba8(1, 1, &[255; 4], ImageOptions::default()).unwrap();
//! let _wgsl: String = density.wgsl_function("image"); // the image energy's WGSL
//! ```

pub use crate::energy::Energy;
pub use crate::energy::image::{ImageDensity, ImageOptions};
pub use crate::energy::spec::resolve_energy;
pub use crate::gpu::{Backend, ExecutorChoice, GpuContext, Readback};
pub use crate::nn::{Architecture, Network};
pub use crate::rng::initial_states;
pub use crate::sampler::cpu::CpuSampler;
pub use crate::sampler::gpu::GpuSampler;
pub use crate::sampler::layered::{LayeredSampler, gpu_sampler};
pub use crate::sampler::{
    ChainSampler, DispatchTuning, MlpStrategy, SamplerBuilder, SamplerConfig, SamplerKind, Tempering,
};
pub use crate::{Error, Result};
pub use wgpu;
