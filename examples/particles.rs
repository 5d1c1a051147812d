//! A host application that embeds the sampler on its own device: every frame it encodes K
//! sampler steps and a render pass that draws the chains as additive point sprites, coloured
//! by energy, straight from the sampler's state and energy buffers into an offscreen texture —
//! nothing is read back between frames. It writes some frames as PNGs and all of them as an
//! animated GIF of the chains relaxing from noise onto the target.
//!
//! ```sh
//! cargo run --release --example particles -- --energy ring8 --chains 65536 --frames 60 --steps 4 --size 512 --out particles
//! ```
//! Runs headless (lavapipe included). `--energy` takes any 2-D energy spec or preset; an image
//! energy (a JSON file `{"type": "image", "path": "photo.png"}`) stipples the picture.
//!
//! `--live`: the host renders a scene of its own every frame (a blob going round a circle) into a
//! texture, and the sampler's image energy follows it on the device:
//!
//! ```sh
//! cargo run --release --example particles -- --live --chains 16384 --frames 120 --steps 20 --step 5e-4 --size 256 --out live
//! ```

use ebm_gpu::prelude::*;
use std::sync::Arc;

/// The square of the plane drawn by default: [-VIEW, VIEW]^2.
pub const VIEW: f32 = 3.0;

#[path = "shared/particle_render.rs"]
mod particle_render;
use particle_render::{ParticleRenderer, ViewUniform, clearing_pass};

/// The sampler and what draws it.
pub struct Particles {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub ctx: Arc<GpuContext>,
    pub sampler: GpuSampler,
    renderer: ParticleRenderer,
    target: wgpu::Texture,
    pub size: u32,
    chains: u32,
}

const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// A `size` x `size` texture to render into and copy from.
fn render_target(device: &wgpu::Device, label: &str, size: u32) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d { width: size, height: size, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: FORMAT,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

impl Particles {
    /// A sampler of `energy` (2-D) with `chains` ULA chains of step `step`
    /// from N(0, 1.5^2) (a picture's from around its middle), drawn into a `size` x `size`
    /// texture (size a multiple of 64) on the host's device. `intensity` is the brightness one
    /// sprite adds at its centre.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: Option<wgpu::AdapterInfo>,
        energy: &Energy,
        chains: usize,
        step: f32,
        size: u32,
        intensity: f32,
    ) -> Result<Self> {
        if size == 0 || !size.is_multiple_of(64) {
            return Err(Error::invalid(
                "size",
                format!("{size}: a positive multiple of 64 (texture rows are copied in 256-byte steps)"),
            ));
        }
        let ctx = Arc::new(GpuContext::from_device(device.clone(), queue.clone(), info));
        if energy.dim() != 2 {
            return Err(Error::invalid(
                "energy",
                format!("the particles are points of the plane: a 2-D energy, not {}-D", energy.dim()),
            ));
        }
        let init = initial_states(11, 0, chains, 2, 1.5);
        let init: Vec<f32> = match energy.kind() {
            // A picture's chains start spread over it.
            "image" => init.iter().map(|v| 0.5 + v / 6.0).collect(),
            _ => init,
        };
        let config = SamplerConfig::new(SamplerKind::Ula, step, 11);
        let sampler = GpuSampler::new(ctx.clone(), energy, config, &init)?;
        if sampler.state_buffer().is_none() {
            return Err(Error::invalid("chains", format!("{chains} chains do not fit one buffer on this device")));
        }
        let renderer = ParticleRenderer::new(&device, FORMAT);
        // Pictures (image energies) live on [0, 1]^2; everything else on the default square.
        let (centre, half_width) = match energy.kind() {
            "image" => ([0.5, 0.5], 0.55),
            _ => ([0.0, 0.0], VIEW),
        };
        let uniform = ViewUniform {
            centre,
            half_width,
            sprite: 2.5 / size as f32,
            e_low: 1.0,
            e_high: 5.0,
            intensity,
            _pad: 0.0,
        };
        renderer.set_view(&queue, &uniform);
        let target = render_target(&device, "particles frame", size);
        Ok(Self { device, queue, ctx, sampler, renderer, target, size, chains: chains as u32 })
    }

    /// One frame: `steps` sampler steps and the draw, in one encoder and one submit; with a
    /// live scene, first the scene (its blob at the centre given) and its copy into the
    /// sampler's image energy.
    pub fn frame(&mut self, steps: u32, live: Option<(&LiveScene, [f32; 2])>) -> Result<()> {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        if let Some((scene, centre)) = live {
            scene.render(&self.queue, &mut encoder, centre);
            self.sampler.encode_image_from_texture(&mut encoder, &scene.texture, ImageOptions::default())?;
        }
        let mut left = steps;
        while left > 0 {
            let k = left.min(self.sampler.max_steps_per_encode());
            self.sampler.encode(&mut encoder, k)?;
            left -= k;
        }
        let view = self.target.create_view(&Default::default());
        let (state, energies) = (self.sampler.state_buffer(), self.sampler.energies_buffer());
        let (state, energies) = (state.expect("checked in new"), energies.expect("one group, as the state"));
        self.renderer.draw(&mut encoder, &view, state, energies, self.chains);
        self.queue.submit([encoder.finish()]);
        Ok(())
    }

    /// The last frame's RGBA8 pixels, row by row from the top (the host's own readback of its
    /// render target; the sampler's chains are never read).
    pub fn read_frame(&self) -> Result<Vec<u8>> {
        let bytes = (4 * self.size * self.size) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("frame readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_texture_to_buffer(
            self.target.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(4 * self.size),
                    rows_per_image: Some(self.size),
                },
            },
            wgpu::Extent3d { width: self.size, height: self.size, depth_or_array_layers: 1 },
        );
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::DeviceLost(format!("waiting for the frame: {e}")))?;
        rx.recv()
            .map_err(|_| Error::DeviceLost("frame mapping cancelled".into()))?
            .map_err(|e| Error::GpuValidation { context: "mapping the frame".into(), message: e.to_string() })?;
        let pixels = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::GpuValidation { context: "reading the frame".into(), message: e.to_string() })?
            .to_vec();
        staging.unmap();
        Ok(pixels)
    }
}

/// Pixels on a side of the live scene (the resolution of the density the chains follow).
pub const LIVE_SIZE: u32 = 64;
/// The live scene's blob: its standard deviation in units of the square.
pub const LIVE_SPREAD: f32 = 0.2;

/// The host's own scene in the live mode: a texture it renders every frame (a soft blob where
/// it chooses), which the sampler's image energy follows through
/// `GpuSampler::encode_image_from_texture` — drawn, copied and sampled on the device.
pub struct LiveScene {
    pub texture: wgpu::Texture,
    pipeline: wgpu::RenderPipeline,
    uniform: wgpu::Buffer,
    bind: wgpu::BindGroup,
}

impl LiveScene {
    pub fn new(device: &wgpu::Device) -> Self {
        let texture = render_target(device, "live scene", LIVE_SIZE);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("live scene"),
            source: wgpu::ShaderSource::Wgsl(include_str!("live_scene.wgsl").into()),
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("live scene"),
            layout: None,
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: Default::default(),
            depth_stencil: None,
            multisample: Default::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(FORMAT.into())],
            }),
            multiview_mask: None,
            cache: None,
        });
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("live scene"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("live scene"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }],
        });
        Self { texture, pipeline, uniform, bind }
    }

    /// The image energy the sampler starts from: a flat density of the scene's size (the
    /// first frame's copy replaces it).
    pub fn energy() -> Result<Energy> {
        let grey = vec![128u8; (4 * LIVE_SIZE * LIVE_SIZE) as usize];
        let density = ImageDensity::from_rgba8(LIVE_SIZE as usize, LIVE_SIZE as usize, &grey, ImageOptions::default())?;
        Ok(Energy::Image(Arc::new(density)))
    }

    /// Records the scene with the blob at `centre` (in [0, 1]^2, y up) into its texture.
    pub fn render(&self, queue: &wgpu::Queue, encoder: &mut wgpu::CommandEncoder, centre: [f32; 2]) {
        // One scene per submit: the uniform write lands before the submit's commands.
        queue.write_buffer(
            &self.uniform,
            0,
            bytemuck::cast_slice(&[centre[0], centre[1], LIVE_SPREAD, LIVE_SIZE as f32]),
        );
        let view = self.texture.create_view(&Default::default());
        let mut pass = clearing_pass(encoder, &view, "live scene");
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.draw(0..3, 0..1);
    }
}

/// Where the live scene's blob is at frame `f` of `frames`: once round a circle of radius 0.3
/// about the square's centre.
pub fn live_centre(f: u32, frames: u32) -> [f32; 2] {
    let angle = std::f32::consts::TAU * f as f32 / frames.max(1) as f32;
    [0.5 + 0.3 * angle.cos(), 0.5 + 0.3 * angle.sin()]
}

/// The host's device: the first adapter wgpu offers (WGPU_ADAPTER_NAME picks another).
pub fn host_device() -> Result<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).map_err(|e| {
        Error::NoAdapter(format!("{e} (on Debian/Ubuntu, `apt-get install mesa-vulkan-drivers` provides lavapipe)"))
    })?;
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))
        .map_err(|e| Error::RequestDevice(e.to_string()))?;
    Ok((device, queue, adapter.get_info()))
}

#[allow(dead_code)]
fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut energy, mut chains, mut frames, mut steps, mut out) =
        ("ring8".to_string(), 65536usize, 60u32, 4u32, "particles".to_string());
    let (mut size, mut step, mut live) = (512u32, 0.01f32, false);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--energy" => energy = value()?,
            "--chains" => chains = value()?.parse()?,
            "--frames" => frames = value()?.parse()?,
            "--steps" => steps = value()?.parse()?,
            "--out" => out = value()?,
            "--size" => size = value()?.parse()?,
            "--step" => step = value()?.parse()?,
            "--live" => live = true,
            _ => {
                return Err(format!("unknown flag {flag}; flags: --energy SPEC | --live, --chains N --frames F --steps K --size PX --step H --out DIR").into());
            }
        }
    }
    let (device, queue, info) = host_device()?;
    println!("adapter: {} ({:?})", info.name, info.backend);
    let energy = if live { LiveScene::energy()? } else { resolve_energy(&energy)? };
    let mut particles = Particles::new(device, queue, Some(info), &energy, chains, step, size, 0.15)?;
    let scene = live.then(|| LiveScene::new(&particles.device));
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    let mut gif = image::codecs::gif::GifEncoder::new_with_speed(std::fs::File::create(out.join("particles.gif"))?, 10);
    gif.set_repeat(image::codecs::gif::Repeat::Infinite)?;
    let mut drawing = std::time::Duration::ZERO;
    for f in 0..frames {
        let start = std::time::Instant::now();
        particles.frame(steps, scene.as_ref().map(|s| (s, live_centre(f, frames))))?;
        particles.device.poll(wgpu::PollType::wait_indefinitely())?;
        drawing += start.elapsed();
        // Reading frames back for the files is the example's output, not part of a frame.
        let image = image::RgbaImage::from_raw(size, size, particles.read_frame()?).ok_or("frame size")?;
        if f % 10 == 0 || f + 1 == frames {
            image.save(out.join(format!("frame_{f:04}.png")))?;
        }
        gif.encode_frame(image::Frame::from_parts(image, 0, 0, image::Delay::from_numer_denom_ms(50, 1)))?;
    }
    println!(
        "{frames} frames of {chains} chains, {steps} ULA steps each: {:.1} frames/s (sampling and drawing{}, without the file output); \
         readbacks of chain state: {}; wrote {}",
        frames as f64 / drawing.as_secs_f64(),
        if live { ", the scene and its copy" } else { "" },
        particles.ctx.readbacks(),
        out.display()
    );
    Ok(())
}
