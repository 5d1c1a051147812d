//! Image energies: a picture as a density on the plane, E(x) = −log(ε + L(x)) with L the
//! image's luminance, bilinear between pixel centres, on the unit square (or a rectangle of the
//! image's aspect, the longer side 1). Outside the picture the energy rises as
//! `WALL` × (distance outside)², so the density stays normalisable. Sampled, the chains
//! stipple the picture. GPU: [`ImageDensity::wgsl_function`]; CPU twin:
//! [`ImageDensity::energy_grad`], the same formulas.

use crate::gpu::launch::{ParamSlots, bind_group};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::num::Real;
use crate::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// Stiffness of the quadratic wall outside the picture.
pub const WALL: f32 = 1000.0;

/// How a picture's pixels become a density (the spec's optional fields):
/// `ImageOptions::default().invert(true).gamma(2.0)`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct ImageOptions {
    /// Luminance raised to this power (> 0).
    pub gamma: f32,
    /// 1 − luminance: dark ink on light paper becomes the dense part.
    pub invert: bool,
    /// ε of E = −log(ε + L) (> 0): the density of black relative to white.
    pub epsilon: f32,
    /// The picture's aspect ratio (longer side 1) instead of the unit square.
    pub aspect: bool,
}

impl Default for ImageOptions {
    fn default() -> Self {
        Self { gamma: 1.0, invert: false, epsilon: 1e-3, aspect: false }
    }
}

impl ImageOptions {
    /// Luminance raised to this power (> 0; 1 by default).
    pub fn gamma(self, gamma: f32) -> Self {
        Self { gamma, ..self }
    }

    /// Dark is dense (1 − luminance).
    pub fn invert(self, invert: bool) -> Self {
        Self { invert, ..self }
    }

    /// ε of E = −log(ε + L) (> 0; 1e-3 by default).
    pub fn epsilon(self, epsilon: f32) -> Self {
        Self { epsilon, ..self }
    }

    /// The picture's aspect ratio instead of the unit square.
    pub fn aspect(self, aspect: bool) -> Self {
        Self { aspect, ..self }
    }
}

/// A picture's luminance as a density (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageDensity {
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// Luminance in [0, 1] after gamma and inversion, row by row from the top.
    pub(crate) luminance: Vec<f32>,
    /// The picture covers `[0, extent[0]] x [0, extent[1]]` (y up).
    pub(crate) extent: [f32; 2],
    pub(crate) epsilon: f32,
}

/// RGB in [0, 1] of `w` x `h` 8-bit pixels, rows `row` bytes apart, `bytes_per_pixel` each,
/// the red, green and blue bytes of a pixel at offsets `order`.
fn bytes_to_rgb(
    bytes: &[u8],
    w: usize,
    h: usize,
    row: usize,
    bytes_per_pixel: usize,
    order: [usize; 3],
) -> impl Iterator<Item = [f32; 3]> + '_ {
    (0..h).flat_map(move |j| {
        let line = &bytes[j * row..];
        (0..w).map(move |i| {
            let p = &line[i * bytes_per_pixel..];
            order.map(|c| p[c] as f32 / 255.0)
        })
    })
}

/// The density value of one pixel's RGB in [0, 1]: its luminance, raised to `gamma`, inverted
/// when asked. CPU twin of `shaders/energy/image_from_pixels.wgsl`.
fn luminance(rgb: [f32; 3], gamma: f32, invert: bool) -> f32 {
    let l = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]).clamp(0.0, 1.0).powf(gamma);
    if invert { 1.0 - l } else { l }
}

/// How a host texture's pixels lie once copied into a buffer, for the formats an image energy
/// reads: 8-bit RGBA/BGRA (linear or sRGB, the stored values taken as they are) or R8, one 2-D
/// layer with COPY_SRC usage; anything else is refused by name.
pub(crate) struct TextureLayout {
    pub width: u32,
    pub height: u32,
    pub bytes_per_pixel: u32,
    /// Byte offsets of red, green and blue within a pixel.
    pub order: [usize; 3],
    /// Bytes from one row to the next (wgpu's copy alignment).
    pub row_bytes: u32,
}

impl TextureLayout {
    pub fn of(texture: &wgpu::Texture) -> Result<Self> {
        use wgpu::TextureFormat as F;
        let what = "texture";
        let (bytes_per_pixel, order) = match texture.format() {
            F::Rgba8Unorm | F::Rgba8UnormSrgb => (4, [0, 1, 2]),
            F::Bgra8Unorm | F::Bgra8UnormSrgb => (4, [2, 1, 0]),
            F::R8Unorm => (1, [0, 0, 0]),
            other => {
                return Err(Error::invalid(
                    what,
                    format!("format {other:?} is not supported: use Rgba8Unorm(Srgb), Bgra8Unorm(Srgb) or R8Unorm"),
                ));
            }
        };
        if !texture.usage().contains(wgpu::TextureUsages::COPY_SRC) {
            return Err(Error::invalid(what, "needs COPY_SRC usage to be read"));
        }
        if texture.depth_or_array_layers() != 1 || texture.dimension() != wgpu::TextureDimension::D2 {
            return Err(Error::invalid(what, "must be one 2-D layer"));
        }
        let (width, height) = (texture.width(), texture.height());
        let row_bytes = (width * bytes_per_pixel).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
        Ok(Self { width, height, bytes_per_pixel, order, row_bytes })
    }

    /// Bytes of the copied pixels.
    pub fn bytes(&self) -> u64 {
        self.row_bytes as u64 * self.height as u64
    }

    /// Records the copy of `texture`'s pixels into `buffer` (at least [`Self::bytes`]).
    pub fn encode_copy(&self, encoder: &mut wgpu::CommandEncoder, texture: &wgpu::Texture, buffer: &wgpu::Buffer) {
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(self.row_bytes),
                    rows_per_image: Some(self.height),
                },
            },
            wgpu::Extent3d { width: self.width, height: self.height, depth_or_array_layers: 1 },
        );
    }
}

/// The parameter block of `shaders/energy/image_from_pixels.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PixelParams {
    width: u32,
    height: u32,
    row_bytes: u32,
    bytes_per_pixel: u32,
    red: u32,
    green: u32,
    blue: u32,
    invert: u32,
    gamma: f32,
    dst: u32,
}

#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        PixelParams,
        "energy/image_from_pixels.wgsl",
        "PixelParams",
        [width, height, row_bytes, bytes_per_pixel, red, green, blue, invert, gamma, dst]
    )]
}

/// What turns a host texture's current pixels into the luminance block of an image energy's
/// parameters on the device: the kernel `shaders/energy/image_from_pixels.wgsl` and a buffer for the
/// copied pixels, made once for a `width` x `height` picture.
pub(crate) struct TextureUpload {
    kernel: Arc<Kernel>,
    params: ParamSlots,
    pixels: wgpu::Buffer,
    size: (usize, usize),
}

impl TextureUpload {
    pub fn new(ctx: &GpuContext, (width, height): (usize, usize)) -> Result<Self> {
        let wgsl = crate::gpu::shader::assemble("energy/image_from_pixels.wgsl", &[])?;
        let kernel = ctx.kernel("image_from_pixels", &wgsl, "main")?;
        // Rows of the widest format read (4 bytes a pixel), padded as copies want them.
        let row_bytes = (4 * width as u64).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as u64);
        let pixels = ctx.zeroed_storage_buffer("texture pixels", row_bytes * height as u64);
        Ok(Self { kernel, params: ParamSlots::new(ctx, 1), pixels, size: (width, height) })
    }

    /// Records into `encoder` the copy of `texture` (the picture's size) and the dispatch that
    /// writes its luminance, shaped by `options`' gamma and invert, into `energy_params` from
    /// float `dst`.
    pub fn encode(
        &mut self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        texture: &wgpu::Texture,
        options: ImageOptions,
        energy_params: &wgpu::Buffer,
        dst: usize,
    ) -> Result<()> {
        let layout = TextureLayout::of(texture)?;
        if (layout.width as usize, layout.height as usize) != self.size {
            return Err(Error::invalid(
                "texture",
                format!(
                    "is {}x{} pixels; the sampler's image energy has {}x{}",
                    layout.width, layout.height, self.size.0, self.size.1
                ),
            ));
        }
        if !(options.gamma > 0.0 && options.gamma.is_finite()) {
            return Err(Error::invalid("gamma", format!("must be positive and finite, got {}", options.gamma)));
        }
        let params = PixelParams {
            width: layout.width,
            height: layout.height,
            row_bytes: layout.row_bytes,
            bytes_per_pixel: layout.bytes_per_pixel,
            red: layout.order[0] as u32,
            green: layout.order[1] as u32,
            blue: layout.order[2] as u32,
            invert: options.invert as u32,
            gamma: options.gamma,
            dst: dst as u32,
        };
        ctx.scoped("copying a texture into an image energy", || {
            layout.encode_copy(encoder, texture, &self.pixels);
            // Uploaded in the encoder, so that several updates in one submit keep their own.
            let slot = self.params.push(&params);
            self.params.record_upload(ctx, encoder);
            let bind = bind_group(
                ctx,
                &self.kernel,
                &self.params.buffer,
                size_of::<PixelParams>() as u64,
                &[&self.pixels, energy_params],
            );
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("image_from_pixels"),
                timestamp_writes: None,
            });
            // At most 2^22 pixels (ImageDensity::validate): 16384 workgroups of 256 in one row.
            let grid = [(layout.width * layout.height).div_ceil(256), 1, 1];
            crate::gpu::launch::record(&mut pass, &self.kernel, &bind, Some(slot), grid);
        })
    }
}

impl ImageDensity {
    /// Reads a PNG (any colour type) as luminance 0.2126 R + 0.7152 G + 0.0722 B of its sRGB
    /// values in [0, 1], shaped by `options`.
    pub fn load(path: &Path, options: ImageOptions) -> Result<Self> {
        let what = format!("image {}", path.display());
        let limit = crate::plan::Limit::at_most(256 << 20, "the most an image energy's file may hold")?;
        let bytes = crate::plan::read_file(path, "image", &limit, &mut crate::plan::undeclared)?;
        let picture = image::load_from_memory(&bytes)
            .map_err(|e| Error::invalid(what.clone(), format!("not a readable image: {e}")))?
            .to_rgb32f();
        let (w, h) = (picture.width() as usize, picture.height() as usize);
        Self::from_rgb(&what, w, h, picture.pixels().map(|p| [p[0], p[1], p[2]]), options)
    }

    /// A host's texture as the density (its pixels read back once, here): 8-bit RGBA/BGRA
    /// (linear or sRGB, the stored values taken as they are) or single-channel R8 textures with
    /// COPY_SRC usage; other formats are refused by name.
    pub fn from_texture(ctx: &GpuContext, texture: &wgpu::Texture, options: ImageOptions) -> Result<Self> {
        let layout = TextureLayout::of(texture)?;
        let buffer = ctx.zeroed_storage_buffer("texture pixels", layout.bytes());
        ctx.submit("reading a texture", |encoder| layout.encode_copy(encoder, texture, &buffer))?;
        let bytes = ctx.read_buffers(&[(&buffer, layout.bytes())])?.remove(0);
        let (w, h) = (layout.width as usize, layout.height as usize);
        let pixels =
            bytes_to_rgb(&bytes, w, h, layout.row_bytes as usize, layout.bytes_per_pixel as usize, layout.order);
        Self::from_rgb("texture", w, h, pixels, options)
    }

    /// `width` x `height` 8-bit RGBA pixels, 4 bytes each, row by row from the top (a browser
    /// canvas's `ImageData`, a decoded file), as the density; alpha is ignored (composite a
    /// transparent picture onto its paper first).
    pub fn from_rgba8(width: usize, height: usize, rgba: &[u8], options: ImageOptions) -> Result<Self> {
        let what = "RGBA pixels";
        if width.checked_mul(height).and_then(|n| n.checked_mul(4)) != Some(rgba.len()) {
            return Err(Error::invalid(
                what,
                format!("{} bytes for {width}x{height} pixels: expected 4 per pixel", rgba.len()),
            ));
        }
        Self::from_rgb(what, width, height, bytes_to_rgb(rgba, width, height, 4 * width, 4, [0, 1, 2]), options)
    }

    /// Width of the picture in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height of the picture in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Luminance in [0, 1] after gamma and inversion, row by row from the top.
    pub fn luminance(&self) -> &[f32] {
        &self.luminance
    }

    /// The picture covers `[0, extent[0]] x [0, extent[1]]` (y up).
    pub fn extent(&self) -> [f32; 2] {
        self.extent
    }

    /// ε of E = −log(ε + L).
    pub fn epsilon(&self) -> f32 {
        self.epsilon
    }

    /// The density of `w` x `h` RGB pixels in [0, 1], row by row from the top.
    fn from_rgb(
        what: &str,
        w: usize,
        h: usize,
        pixels: impl Iterator<Item = [f32; 3]>,
        options: ImageOptions,
    ) -> Result<Self> {
        let ImageOptions { gamma, invert, epsilon, aspect } = options;
        let luminance = pixels.map(|p| luminance(p, gamma, invert)).collect();
        let longest = w.max(h).max(1) as f32;
        let extent = if aspect { [w as f32 / longest, h as f32 / longest] } else { [1.0, 1.0] };
        let density = Self { width: w, height: h, luminance, extent, epsilon };
        density.validate().map_err(|e| Error::invalid(what, e.to_string()))?;
        Ok(density)
    }

    /// Checks the pixel count, epsilon and luminance range.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 || self.luminance.len() != self.width * self.height {
            return Err(Error::invalid(
                "image",
                format!("{}x{} pixels: empty or inconsistent", self.width, self.height),
            ));
        }
        if self.width * self.height > 1 << 22 {
            return Err(Error::invalid(
                "image",
                format!("{}x{} pixels: more than 2^22; scale it down", self.width, self.height),
            ));
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::invalid("epsilon", format!("must be positive and finite, got {}", self.epsilon)));
        }
        if self.luminance.iter().any(|l| !(0.0..=1.0).contains(l)) {
            return Err(Error::invalid("image", "luminance outside [0, 1]"));
        }
        if self.luminance.iter().all(|&l| l == 0.0) {
            return Err(Error::invalid("image", "is black everywhere (after gamma and invert): it defines no density"));
        }
        Ok(())
    }

    /// The parameter block: width, height, extent, epsilon, then the luminance.
    pub(crate) fn pack_into(&self, out: &mut Vec<f32>) {
        out.extend([self.width as f32, self.height as f32, self.extent[0], self.extent[1], self.epsilon]);
        out.extend(&self.luminance);
    }

    /// Adds weight * dE/dx to g and returns weight * E at the 2-D point x.
    pub(crate) fn energy_grad<T: Real>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        let (w, h) = (self.width, self.height);
        // Pixel coordinates: u across, v down, pixel centres at integers; clamped to the
        // picture, where the density is constant along the clamped axis.
        let mut e = T::zero();
        let mut grad = [T::zero(); 2];
        let mut at = [T::zero(); 2];
        let scale = [c(w as f32 / self.extent[0]), -c(h as f32 / self.extent[1])];
        for k in 0..2 {
            let (lo, hi) = (T::zero(), c(self.extent[k]));
            let inside = x[k].max(lo);
            let inside = if inside > hi { hi } else { inside };
            let out = x[k] - inside;
            e += c(WALL) * out * out;
            grad[k] += c(2.0 * WALL) * out;
            at[k] = inside;
        }
        let clamp_axis = |t: T, n: usize| -> (usize, T, bool) {
            let top = c((n - 1) as f32);
            if t > T::zero() && t < top {
                let i = (t.to_f64().floor() as usize).min(n - 2);
                (i, t - c(i as f32), true)
            } else if t > T::zero() {
                (n.saturating_sub(2), if n > 1 { c(1.0) } else { T::zero() }, false)
            } else {
                (0, T::zero(), false)
            }
        };
        let u = at[0] * scale[0] - c(0.5);
        let v = c(h as f32) + at[1] * scale[1] - c(0.5);
        let (i, fu, free_u) = clamp_axis(u, w);
        let (j, fv, free_v) = clamp_axis(v, h);
        let px = |di: usize, dj: usize| c(self.luminance[(j + dj).min(h - 1) * w + (i + di).min(w - 1)]);
        let (l00, l10, l01, l11) = (px(0, 0), px(1, 0), px(0, 1), px(1, 1));
        let one = c(1.0);
        let top = l00 + fu * (l10 - l00);
        let bottom = l01 + fu * (l11 - l01);
        let l = top + fv * (bottom - top);
        let dl_du = if free_u { (one - fv) * (l10 - l00) + fv * (l11 - l01) } else { T::zero() };
        let dl_dv = if free_v { bottom - top } else { T::zero() };
        let denom = c(self.epsilon) + l;
        e += -denom.ln();
        grad[0] += -(dl_du * scale[0]) / denom;
        grad[1] += -(dl_dv * scale[1]) / denom;
        g[0] += weight * grad[0];
        g[1] += weight * grad[1];
        weight * e
    }

    /// The WGSL function `name(x, g, base, weight)` of [`Self::energy_grad`], reading the block
    /// [`Self::pack_into`] writes at `base` of `energy_params`.
    pub(crate) fn wgsl_function(&self, name: &str) -> String {
        format!(
            "fn {name}(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {{
    let w = u32(energy_params[base]);
    let h = u32(energy_params[base + 1u]);
    let extent = vec2<f32>(energy_params[base + 2u], energy_params[base + 3u]);
    let eps = energy_params[base + 4u];
    let lum = base + 5u;
    var e = 0.0;
    var grad = vec2<f32>(0.0);
    let p = vec2<f32>((*x)[0], (*x)[1]);
    let inside = clamp(p, vec2<f32>(0.0), extent);
    let out = p - inside;
    e += {wall:?} * dot(out, out);
    grad += {wall2:?} * out;
    let scale = vec2<f32>(f32(w) / extent.x, -f32(h) / extent.y);
    let u = inside.x * scale.x - 0.5;
    let v = f32(h) + inside.y * scale.y - 0.5;
    var i = 0u; var fu = 0.0; var free_u = false;
    if u > 0.0 {{
        if u < f32(w - 1u) {{ i = min(u32(floor(u)), w - 2u); fu = u - f32(i); free_u = true; }}
        else if w > 1u {{ i = w - 2u; fu = 1.0; }}
    }}
    var j = 0u; var fv = 0.0; var free_v = false;
    if v > 0.0 {{
        if v < f32(h - 1u) {{ j = min(u32(floor(v)), h - 2u); fv = v - f32(j); free_v = true; }}
        else if h > 1u {{ j = h - 2u; fv = 1.0; }}
    }}
    let i1 = min(i + 1u, w - 1u);
    let j1 = min(j + 1u, h - 1u);
    let l00 = energy_params[lum + j * w + i];
    let l10 = energy_params[lum + j * w + i1];
    let l01 = energy_params[lum + j1 * w + i];
    let l11 = energy_params[lum + j1 * w + i1];
    let top = l00 + fu * (l10 - l00);
    let bottom = l01 + fu * (l11 - l01);
    let l = top + fv * (bottom - top);
    var dl = vec2<f32>(0.0);
    if free_u {{ dl.x = (1.0 - fv) * (l10 - l00) + fv * (l11 - l01); }}
    if free_v {{ dl.y = bottom - top; }}
    let denom = eps + l;
    e += -log(denom);
    grad += -(dl * scale) / denom;
    (*g)[0] += weight * grad.x;
    (*g)[1] += weight * grad.y;
    return weight * e;
}}
",
            wall = WALL,
            wall2 = 2.0 * WALL
        )
    }
}
