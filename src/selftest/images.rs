//! Checks of the image kernels: restoration (Langevin on the missing pixels through the layer
//! kernels) and a host texture turned into a sampler's density on the device.

use super::{Measure, Size, max_abs_diff};
use crate::Result;
use crate::energy::image::{ImageDensity, ImageOptions};
use crate::energy::{Energy, EnergyInternals};
use crate::gpu::GpuContext;
use crate::nn::{Architecture, Network};
use crate::restore::{Pixel, RestoreConfig, restore as restore_images};
use crate::sampler::gpu::{GpuSampler, GpuSamplerInternals};
use crate::sampler::{SamplerConfig, SamplerKind};
use std::sync::Arc;

/// Inpainting the top half of 6x6 images with a small convolutional energy (restore.wgsl with
/// the layer kernels), the gradient clamp and the pixel box: GPU against CPU, 1e-3.
pub fn restore(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let net = Network::random(&Architecture::parse("1x6x6/3k3s1p1/swish/flatten/8/swish/1")?, 2)?;
    let energy = Energy::Net(Arc::new(net));
    let n = size.pick(4, 9);
    let damaged = crate::rng::initial_states(1, 0, n, 36, 0.5);
    let pixels: Vec<Pixel> = (0..n * 36).map(|k| if k % 36 < 18 { Pixel::Missing } else { Pixel::Observed }).collect();
    let steps = size.pick(10, 20);
    let config = RestoreConfig {
        steps,
        step_size: 0.5,
        noise_std: 1.0,
        grad_clamp: 0.03,
        lo: -1.0,
        hi: 1.0,
        sigma: 0.0,
        fidelity: 1.0,
        seed: 4,
    };
    let cpu = restore_images(&energy, &damaged, &pixels, &config, None)?;
    let gpu = restore_images(&energy, &damaged, &pixels, &config, Some(ctx))?;
    let mut m = Measure::within(max_abs_diff(&cpu, &gpu), 1e-3, format!("{n} images, {steps} steps: restored pixels"));
    m.passed &= cpu != damaged;
    Ok(m)
}

/// `GpuSampler::encode_image_from_texture` (image_from_pixels.wgsl) against the CPU twin's
/// luminance, for RGBA, BGRA-sRGB and R8 textures of an odd size (padded rows): 2e-6.
pub fn upload(ctx: &Arc<GpuContext>, _size: Size) -> Result<Measure> {
    let (w, h) = (37usize, 23usize);
    let start: Vec<u8> = (0..w * h).flat_map(|p| [(p % w * 6) as u8, (p / w * 11) as u8, 99, 255]).collect();
    let options = ImageOptions::default().gamma(2.2).invert(true);
    let energy = Energy::Image(Arc::new(ImageDensity::from_rgba8(w, h, &start, ImageOptions::default())?));
    let mut seed = 12345u32;
    let mut byte = move || {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        (seed >> 24) as u8
    };
    let init = crate::rng::initial_states(3, 0, 64, 2, 0.5);
    let mut parts = Vec::new();
    for format in [wgpu::TextureFormat::Rgba8Unorm, wgpu::TextureFormat::Bgra8UnormSrgb, wgpu::TextureFormat::R8Unorm] {
        let rgba: Vec<u8> = (0..w * h).flat_map(|_| [byte(), byte(), byte(), 255]).collect();
        let (stored, seen): (Vec<u8>, Vec<u8>) = match format {
            wgpu::TextureFormat::R8Unorm => {
                (rgba.chunks(4).map(|p| p[0]).collect(), rgba.chunks(4).flat_map(|p| [p[0], p[0], p[0], 255]).collect())
            }
            wgpu::TextureFormat::Bgra8UnormSrgb => {
                (rgba.chunks(4).flat_map(|p| [p[2], p[1], p[0], p[3]]).collect(), rgba.clone())
            }
            _ => (rgba.clone(), rgba.clone()),
        };
        let texture = host_texture(ctx, format, (w as u32, h as u32), &stored);
        let mut sampler = GpuSampler::new(ctx.clone(), &energy, SamplerConfig::new(SamplerKind::Ula, 0.001, 3), &init)?;
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        sampler.encode_image_from_texture(&mut encoder, &texture, options)?;
        ctx.queue().submit([encoder.finish()]);
        let params = sampler.read_energy_params()?;
        let expected = ImageDensity::from_rgba8(w, h, &seen, options)?.luminance;
        let (at, _) = energy
            .image_term()
            .ok_or_else(|| crate::Error::invalid("selftest", "the check's energy has no image term"))?;
        let got = params.get(at..at + w * h).unwrap_or(&[]);
        parts.push(Measure::within(max_abs_diff(got, &expected), 2e-6, format!("{format:?} {w}x{h}: luminance")));
    }
    Ok(Measure::all(parts))
}

/// A `width` x `height` texture of `format` holding `bytes` (rows packed), COPY_SRC | COPY_DST.
pub fn host_texture(
    ctx: &GpuContext,
    format: wgpu::TextureFormat,
    (width, height): (u32, u32),
    bytes: &[u8],
) -> wgpu::Texture {
    let texture = ctx.device().create_texture(&wgpu::TextureDescriptor {
        label: Some("host picture"),
        size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::COPY_SRC | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let bytes_per_pixel = bytes.len() as u32 / (width * height);
    ctx.queue().write_texture(
        texture.as_image_copy(),
        bytes,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(bytes_per_pixel * width),
            rows_per_image: Some(height),
        },
        wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
    );
    texture
}
