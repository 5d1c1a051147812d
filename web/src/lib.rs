//! ebm-gpu in the browser: ULA chains of a 2-D energy (a preset or an uploaded picture) sampled
//! with WebGPU and drawn on a canvas. Every animation frame encodes K sampler steps and a render
//! pass into the canvas texture in one submit, drawing each chain as an additive sprite
//! straight from the sampler's state and energy buffers (the render shader is
//! examples/particles.wgsl, shared with the native example). Nothing here blocks: the device is
//! requested with `.await`, and the library's error scopes report through `GpuContext::check`.
//!
//! The JavaScript side (web/index.js) owns the page: it decodes uploaded pictures into RGBA
//! pixels, draws the live scene on a 2-D canvas and calls [`Demo::frame`] from
//! requestAnimationFrame.

use ebm_gpu::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wasm_bindgen::prelude::*;

/// The renderer of examples/particles.rs (the same file).
#[path = "../../examples/shared/particle_render.rs"]
mod particle_render;
use particle_render::{ParticleRenderer, ViewUniform};

/// The 2-D presets the page offers, with the half-width of the square drawn around 0.
const PRESETS: &[(&str, f32)] =
    &[("ring8", 3.0), ("grid25", 5.5), ("two_modes", 3.5), ("banana", 3.0), ("double_well", 2.0)];

/// The most chains the page starts (16 MiB of state, far more than it can draw smoothly).
const MAX_CHAINS: u32 = 1 << 21;

/// The most sampler steps one animation frame records.
const MAX_STEPS_PER_FRAME: u32 = 10_000;

/// Refuses chain counts and step sizes the page cannot use, before anything is allocated.
fn check_settings(chains: u32, step: f32) -> Result<(), JsValue> {
    if !(1..=MAX_CHAINS).contains(&chains) {
        return Err(js(format!("chains: {chains}; between 1 and {MAX_CHAINS}")));
    }
    if !(step > 0.0 && step.is_finite()) {
        return Err(js(format!("step size: {step}; a positive number")));
    }
    Ok(())
}

/// Turns a library error into the exception the page shows.
fn js(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// The page's sampler and renderer.
#[wasm_bindgen]
pub struct Demo {
    device: wgpu::Device,
    queue: wgpu::Queue,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    ctx: Arc<GpuContext>,
    renderer: ParticleRenderer,
    sampler: Option<GpuSampler>,
    chains: u32,
    /// The square drawn: centre x, centre y, half-width.
    view: [f32; 3],
    /// Errors wgpu reported outside the library's error scopes (the render pass, the surface).
    uncaptured: Arc<Mutex<Vec<String>>>,
    adapter: String,
    /// A copy of the canvas texture on its way back ([`Demo::take_pixels`]).
    pending: Option<PendingRead>,
    /// The last frame's work is still on the GPU: the next frame waits (is skipped).
    busy: Arc<AtomicBool>,
    /// The live scene: a canvas of the page copied every frame into `texture`, which the
    /// sampler's image energy follows ([`Demo::set_live`]).
    live: Option<(web_sys::HtmlCanvasElement, wgpu::Texture)>,
}

/// The canvas texture of one frame, copied into a buffer being mapped.
struct PendingRead {
    buffer: wgpu::Buffer,
    bytes_per_row: u32,
    mapped: Arc<Mutex<Option<Result<(), String>>>>,
}

#[wasm_bindgen]
impl Demo {
    /// Opens WebGPU on `canvas` (its width and height attributes set the drawing size).
    /// Rejects with a message when the browser has no WebGPU adapter.
    pub async fn create(canvas: web_sys::HtmlCanvasElement) -> Result<Demo, JsValue> {
        console_error_panic_hook::set_once();
        let (width, height) = (canvas.width().max(1), canvas.height().max(1));
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::BROWSER_WEBGPU,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let surface = instance
            .create_surface(wgpu::SurfaceTarget::Canvas(canvas))
            .map_err(|e| js(format!("cannot draw on the canvas with WebGPU: {e}")))?;
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                compatible_surface: Some(&surface),
                ..Default::default()
            })
            .await
            .map_err(|e| js(format!("this browser offers no WebGPU adapter ({e})")))?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor { label: Some("ebm-gpu web"), ..Default::default() })
            .await
            .map_err(|e| js(format!("could not open the WebGPU device: {e}")))?;
        // wgpu's default handler panics; the page shows these instead.
        let uncaptured: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        // After a loss wgpu's calls may panic (mapped buffer creation throws): stop frames first.
        let sink = uncaptured.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut v) = sink.lock() {
                v.insert(0, format!("the device was lost ({reason:?}): {message}"));
            }
        });
        let mut config = surface
            .get_default_config(&adapter, width, height)
            .ok_or_else(|| js("the WebGPU adapter cannot present to this canvas"))?;
        config.format = config.format.remove_srgb_suffix();
        // COPY_SRC: the page may read frames back (Demo::take_pixels).
        config.usage |= wgpu::TextureUsages::COPY_SRC;
        surface.configure(&device, &config);

        let renderer = ParticleRenderer::new(&device, config.format);
        let adapter = [info.name.as_str(), info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        // The library shares its context by Arc (Send on native); the page has one thread.
        #[allow(clippy::arc_with_non_send_sync)]
        let ctx = Arc::new(GpuContext::from_device(device.clone(), queue.clone(), Some(info)));
        Ok(Demo {
            device,
            queue,
            surface,
            config,
            ctx,
            renderer,
            sampler: None,
            chains: 0,
            view: [0.0, 0.0, 3.0],
            uncaptured,
            adapter: if adapter.is_empty() { "WebGPU adapter".into() } else { adapter },
            pending: None,
            busy: Arc::default(),
            live: None,
        })
    }

    /// The names of the presets the page offers.
    pub fn presets() -> Vec<String> {
        PRESETS.iter().map(|p| p.0.to_string()).collect()
    }

    /// What the browser says about its adapter.
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    /// The square drawn, as [centre x, centre y, half-width] (y up), so the page can map
    /// canvas pixels back onto the plane.
    pub fn view(&self) -> Vec<f32> {
        self.view.to_vec()
    }

    /// Starts `chains` ULA chains of step `step` on preset `name`, from N(0, 1.5^2).
    pub fn set_preset(&mut self, name: &str, chains: u32, step: f32) -> Result<(), JsValue> {
        let half_width =
            PRESETS.iter().find(|p| p.0 == name).map(|p| p.1).ok_or_else(|| js(format!("unknown preset {name:?}")))?;
        check_settings(chains, step)?;
        let energy = resolve_energy(name).map_err(js)?;
        let init = initial_states(11, 0, chains as usize, 2, 1.5);
        self.start(&energy, chains, step, init, [0.0, 0.0, half_width])
    }

    /// Starts `chains` ULA chains of step `step` stippling a `width` x `height` picture given
    /// as RGBA bytes (row by row from the top); `invert`: dark ink is dense.
    pub fn set_image(
        &mut self,
        width: u32,
        height: u32,
        rgba: &[u8],
        invert: bool,
        chains: u32,
        step: f32,
    ) -> Result<(), JsValue> {
        check_settings(chains, step)?;
        let options = ImageOptions::default().invert(invert).aspect(true);
        let density = ImageDensity::from_rgba8(width as usize, height as usize, rgba, options).map_err(js)?;
        self.start_picture(density, chains, step)
    }

    /// Starts the chains on a picture's density, spread over it as in examples/particles.rs,
    /// with the view on the picture.
    fn start_picture(&mut self, density: ImageDensity, chains: u32, step: f32) -> Result<(), JsValue> {
        let [ex, ey] = density.extent();
        let init = initial_states(11, 0, chains as usize, 2, 1.5)
            .chunks_exact(2)
            .flat_map(|p| [ex / 2.0 + p[0] * ex / 6.0, ey / 2.0 + p[1] * ey / 6.0])
            .collect();
        self.start(&Energy::Image(Arc::new(density)), chains, step, init, [ex / 2.0, ey / 2.0, 0.55 * ex.max(ey)])
    }

    /// Starts `chains` ULA chains of step `step` on a picture that follows the canvas `scene`
    /// live: every frame copies what the page has drawn there into a texture and the sampler's
    /// image energy takes it from there on the GPU (`GpuSampler::encode_image_from_texture`).
    pub fn set_live(&mut self, scene: web_sys::HtmlCanvasElement, chains: u32, step: f32) -> Result<(), JsValue> {
        check_settings(chains, step)?;
        let (width, height) = (scene.width(), scene.height());
        // Flat until the first frame's copy replaces it.
        let grey = vec![128u8; 4 * width as usize * height as usize];
        let density =
            ImageDensity::from_rgba8(width as usize, height as usize, &grey, ImageOptions::default().aspect(true))
                .map_err(|e| js(format!("the live scene canvas: {e}")))?;
        self.start_picture(density, chains, step)?;
        let texture = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("live scene"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            // What a copy from the page needs, and what the sampler's copy needs.
            usage: wgpu::TextureUsages::COPY_DST
                | wgpu::TextureUsages::RENDER_ATTACHMENT
                | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        self.live = Some((scene, texture));
        Ok(())
    }

    fn start(
        &mut self,
        energy: &Energy,
        chains: u32,
        step: f32,
        init: Vec<f32>,
        view: [f32; 3],
    ) -> Result<(), JsValue> {
        let config = SamplerConfig::new(SamplerKind::Ula, step, 11);
        let sampler = GpuSampler::new(self.ctx.clone(), energy, config, &init).map_err(js)?;
        if sampler.state_buffer().is_none() || sampler.energies_buffer().is_none() {
            return Err(js(format!("{chains} chains do not fit one buffer on this device")));
        }
        let size = self.config.width.min(self.config.height) as f32;
        let uniform = ViewUniform {
            centre: [view[0], view[1]],
            half_width: view[2],
            sprite: 2.5 / size,
            e_low: 1.0,
            e_high: 5.0,
            // Dimmer sprites for more chains, so additive blending does not saturate.
            intensity: (0.25 * (16384.0 / chains as f32).sqrt()).clamp(0.02, 0.6),
            _pad: 0.0,
        };
        self.renderer.set_view(&self.queue, &uniform);
        self.live = None;
        self.sampler = Some(sampler);
        self.chains = chains;
        self.view = view;
        Ok(())
    }

    /// One animation frame: `steps` sampler steps and the draw, in one submit. Rejects with the
    /// first GPU error reported since the last frame. `read`: also copy the canvas texture back
    /// (for checks where the browser cannot show or read WebGPU canvases; see
    /// [`Self::take_pixels`]); ignored while an earlier copy is on its way. Returns false, and
    /// does nothing, while the last frame's work is still on the GPU: animation frames can come
    /// faster than a slow adapter draws, and queued frames would only add latency.
    pub fn frame(&mut self, steps: u32, read: bool) -> Result<bool, JsValue> {
        self.ctx.check("the last frame").map_err(js)?;
        if let Some(e) = self.uncaptured.lock().ok().and_then(|mut v| (!v.is_empty()).then(|| v.remove(0))) {
            return Err(js(format!("WebGPU error: {e}")));
        }
        if steps > MAX_STEPS_PER_FRAME {
            return Err(js(format!("steps per frame: {steps}; at most {MAX_STEPS_PER_FRAME}")));
        }
        let Some(sampler) = self.sampler.as_mut() else { return Ok(false) };
        if self.busy.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let texture = match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t) | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                self.surface.configure(&self.device, &self.config);
                return Ok(false);
            }
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => return Ok(false),
            wgpu::CurrentSurfaceTexture::Validation => return Err(js("the canvas texture could not be acquired")),
        };
        let mut encoder = self.device.create_command_encoder(&Default::default());
        if let Some((scene, live)) = &self.live {
            // The page's drawing as it is now, then into the density, ahead of the steps.
            let size = live.size();
            self.queue.copy_external_image_to_texture(
                &wgpu::CopyExternalImageSourceInfo {
                    source: wgpu::ExternalImageSource::HTMLCanvasElement(scene.clone()),
                    origin: wgpu::Origin2d::ZERO,
                    flip_y: false,
                },
                wgpu::CopyExternalImageDestInfo {
                    texture: live,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                    color_space: wgpu::PredefinedColorSpace::Srgb,
                    premultiplied_alpha: false,
                },
                size,
            );
            sampler.encode_image_from_texture(&mut encoder, live, ImageOptions::default()).map_err(js)?;
        }
        let mut left = steps;
        while left > 0 {
            let k = left.min(sampler.max_steps_per_encode());
            sampler.encode(&mut encoder, k).map_err(js)?;
            left -= k;
        }
        let view = texture.texture.create_view(&Default::default());
        // Checked in `start`.
        let (Some(state), Some(energies)) = (sampler.state_buffer(), sampler.energies_buffer()) else {
            return Ok(false);
        };
        self.renderer.draw(&mut encoder, &view, state, energies, self.chains);
        let read = (read && self.pending.is_none()).then(|| {
            let (width, height) = (self.config.width, self.config.height);
            let bytes_per_row = (4 * width).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("canvas readback"),
                size: bytes_per_row as u64 * height as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.copy_texture_to_buffer(
                texture.texture.as_image_copy(),
                wgpu::TexelCopyBufferInfo {
                    buffer: &buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(bytes_per_row),
                        rows_per_image: Some(height),
                    },
                },
                wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            );
            PendingRead { buffer, bytes_per_row, mapped: Arc::default() }
        });
        self.queue.submit([encoder.finish()]);
        self.queue.present(texture);
        self.busy.store(true, Ordering::Relaxed);
        let busy = self.busy.clone();
        self.queue.on_submitted_work_done(move || busy.store(false, Ordering::Relaxed));
        if let Some(read) = read {
            let sink = read.mapped.clone();
            read.buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                if let Ok(mut m) = sink.lock() {
                    *m = Some(r.map_err(|e| e.to_string()));
                }
            });
            self.pending = Some(read);
        }
        Ok(true)
    }

    /// The canvas texture of the last frame drawn with `read`, as RGBA bytes row by row from
    /// the top, once the browser has mapped its copy; `undefined` until then. A copy of the
    /// picture drawn, not of chain state.
    pub fn take_pixels(&mut self) -> Result<Option<Vec<u8>>, JsValue> {
        let Some(read) = &self.pending else { return Ok(None) };
        let mapped = read.mapped.lock().ok().and_then(|mut m| m.take());
        let result = match mapped {
            None => return Ok(None),
            Some(r) => r,
        };
        let read = self.pending.take().expect("checked above");
        result.map_err(|e| js(format!("reading the canvas back: {e}")))?;
        let (width, height) = (self.config.width as usize, self.config.height as usize);
        let bgra = matches!(self.config.format, wgpu::TextureFormat::Bgra8Unorm);
        let mut pixels = Vec::with_capacity(4 * width * height);
        {
            let view = read.buffer.slice(..).get_mapped_range().map_err(js)?;
            for row in view.chunks_exact(read.bytes_per_row as usize).take(height) {
                for p in row[..4 * width].chunks_exact(4) {
                    pixels.extend(if bgra { [p[2], p[1], p[0], p[3]] } else { [p[0], p[1], p[2], p[3]] });
                }
            }
        }
        read.buffer.unmap();
        Ok(Some(pixels))
    }

    /// The canvas size in pixels, [width, height].
    pub fn size(&self) -> Vec<u32> {
        vec![self.config.width, self.config.height]
    }

    /// The chains' states, [x0, y0, x1, y1, ...], read without blocking: a promise that the
    /// browser's event loop resolves once the GPU has copied them (a readback, counted).
    pub fn read_state(&self) -> Result<js_sys::Promise, JsValue> {
        let sampler = self.sampler.as_ref().ok_or_else(|| js("no sampler yet"))?;
        let state = sampler.read_state_async().map_err(js)?;
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let state = state.await.map_err(js)?;
            Ok(js_sys::Float32Array::from(&state[..]).into())
        }))
    }

    /// What the blocking readback (`ChainSampler::state`) says in a browser: an error, where a
    /// wait would hang the page (the check asserts it).
    pub fn blocking_state_error(&self) -> String {
        match self.sampler.as_ref().map(|s| s.state()) {
            None => "no sampler yet".into(),
            Some(Ok(_)) => "the blocking readback returned".into(),
            Some(Err(e)) => e.to_string(),
        }
    }

    /// Readbacks of chain state so far (the frames make none).
    pub fn readbacks(&self) -> f64 {
        self.ctx.readbacks() as f64
    }
}
