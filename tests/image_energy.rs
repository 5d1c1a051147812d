//! Image energies: a picture's luminance as a density. Gradients against f64 finite
//! differences, GPU against CPU, MALA's samples against the picture's normalised density on
//! both executors, and bad pictures refused.

mod common;

use ebm_gpu::energy::spec::parse_energy;
use ebm_gpu::energy::{Energy, EnergyInternals};
use ebm_gpu::sampler::gpu::GpuSamplerInternals;
use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind, cpu::CpuSampler, gpu::GpuSampler};

/// A 16x12 picture: a bright disc off centre, a dim band, black elsewhere.
fn picture(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("picture.png");
    let img = image::RgbImage::from_fn(16, 12, |i, j| {
        let (x, y) = (i as f32 - 10.0, j as f32 - 4.0);
        let v = if x * x + y * y < 9.0 {
            250
        } else if j >= 9 {
            90
        } else {
            0
        };
        image::Rgb([v, v, (v as f32 * 0.9) as u8])
    });
    img.save(&path).unwrap();
    path
}

fn energy(path: &std::path::Path, extra: &str) -> Energy {
    parse_energy(&format!(r#"{{"type": "image", "path": {:?}{extra}}}"#, path.to_str().unwrap()), "test").unwrap()
}

#[test]
fn image_gradients_match_finite_differences_and_gpu() {
    let dir = common::temp_dir("image_energy_grad");
    let path = picture(&dir);
    for extra in ["", r#", "extent": "aspect", "gamma": 2.2"#, r#", "invert": true, "epsilon": 0.05"#] {
        let e = energy(&path, extra);
        let points: Vec<f32> = ebm_gpu::rng::initial_states(3, 0, 200, 2, 0.6).iter().map(|v| v + 0.5).collect();
        for p in points.chunks_exact(2) {
            let x = [p[0] as f64, p[1] as f64];
            let mut g = [0.0f64; 2];
            e.energy_grad(&x, &mut g);
            for k in 0..2 {
                let h = 1e-7;
                let (mut up, mut down) = (x, x);
                up[k] += h;
                down[k] -= h;
                let fd = (e.energy(&up) - e.energy(&down)) / (2.0 * h);
                assert!((g[k] - fd).abs() < 1e-4 * (1.0 + fd.abs()), "{extra} at {x:?}: gradient {k} {} vs {fd}", g[k]);
            }
        }
        if let Some(ctx) = common::gpu() {
            let (gpu_e, gpu_g) = ebm_gpu::energy::gpu::energy_grad_batch(&ctx, &e, &points).unwrap();
            let (mut cpu_g, mut cpu_e) = (vec![0.0; points.len()], vec![0.0; points.len() / 2]);
            e.energy_grad_batch(&points, &mut cpu_g, &mut cpu_e);
            let scale = |v: &[f32]| 1.0 + v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(common::max_abs_diff(&gpu_e, &cpu_e) < 1e-4 * scale(&cpu_e), "{extra}: energies GPU vs CPU");
            assert!(common::max_abs_diff(&gpu_g, &cpu_g) < 1e-3 * scale(&cpu_g), "{extra}: gradients GPU vs CPU");
        }
    }
}

/// MALA on the picture: the chains' histogram over 8x6 cells (and one bin for outside the
/// picture) against exp(-E) integrated over each, on both executors; TV below 0.06 for 6000
/// independent chains (the sampling error alone is about 0.03).
#[test]
fn mala_stipples_the_picture() {
    let dir = common::temp_dir("image_energy_mala");
    let e = energy(&picture(&dir), r#", "extent": "aspect", "epsilon": 0.05"#);
    let (w, h) = (1.0f32, 0.75f32);
    let (bx, by) = (8usize, 6usize);
    // Expected masses by a fine midpoint rule over the picture and a margin of 0.1 around
    // it; the last bin is everything outside the picture (the wall lets a little mass out).
    let fine = 20;
    let cell = (w as f64 / (bx * fine) as f64, h as f64 / (by * fine) as f64);
    let bin = |x: f64, y: f64| -> usize {
        let (c, r) = ((x / w as f64 * bx as f64).floor(), (y / h as f64 * by as f64).floor());
        if (0.0..bx as f64).contains(&c) && (0.0..by as f64).contains(&r) {
            r as usize * bx + c as usize
        } else {
            bx * by
        }
    };
    let mut expected = vec![0.0f64; bx * by + 1];
    let margin = (0.1 / cell.0).ceil() as i64;
    for r in -margin..(by * fine) as i64 + margin {
        for c in -margin..(bx * fine) as i64 + margin {
            let x = [(c as f64 + 0.5) * cell.0, (r as f64 + 0.5) * cell.1];
            expected[bin(x[0], x[1])] += (-e.energy(&x)).exp();
        }
    }
    let total: f64 = expected.iter().sum();
    expected.iter_mut().for_each(|v| *v /= total);
    let chains = 6000;
    // Uniform over the picture.
    let init: Vec<f32> = (0..chains)
        .flat_map(|j| {
            let u = ebm_gpu::rng::uniform4(9, j as u32, 0, ebm_gpu::rng::Stream::Init, 0);
            [u[0] * w, u[1] * h]
        })
        .collect();
    let config = SamplerConfig::new(SamplerKind::Mala, 0.002, 9);
    let mut samplers: Vec<(&str, Box<dyn ChainSampler>)> =
        vec![("cpu", Box::new(CpuSampler::new(&e, config.clone(), &init).unwrap()))];
    if let Some(ctx) = common::gpu() {
        samplers.push(("gpu", Box::new(GpuSampler::new(ctx, &e, config, &init).unwrap())));
    }
    for (name, mut s) in samplers {
        s.run(3000).unwrap();
        let states = s.state().unwrap();
        let mut counts = vec![0.0f64; bx * by + 1];
        for p in states.chunks_exact(2) {
            counts[bin(p[0] as f64, p[1] as f64)] += 1.0 / chains as f64;
        }
        let tv = 0.5 * counts.iter().zip(&expected).map(|(a, b)| (a - b).abs()).sum::<f64>();
        eprintln!(
            "{name}: TV to the picture's density {tv:.4}, acceptance {:.3}",
            s.stats().unwrap().acceptance_rate(3000)
        );
        assert!(tv < 0.06, "{name}: TV {tv}");
    }
}

#[test]
fn bad_pictures_are_refused() {
    let dir = common::temp_dir("image_energy_bad");
    let black = dir.join("black.png");
    image::RgbImage::new(8, 8).save(&black).unwrap();
    let not_png = dir.join("text.png");
    std::fs::write(&not_png, "hello").unwrap();
    let good = picture(&dir);
    let cases = [
        (format!(r#"{{"type": "image", "path": {:?}}}"#, black), "black everywhere"),
        (format!(r#"{{"type": "image", "path": {:?}}}"#, not_png), "not a readable image"),
        (format!(r#"{{"type": "image", "path": {:?}}}"#, dir.join("missing.png")), "missing.png"),
        (format!(r#"{{"type": "image", "path": {:?}, "extent": "square"}}"#, good), "extent"),
        (format!(r#"{{"type": "image", "path": {:?}, "gamma": 0}}"#, good), "gamma"),
        (format!(r#"{{"type": "image", "path": {:?}, "epsilon": -1}}"#, good), "epsilon"),
    ];
    for (spec, says) in cases {
        let err = parse_energy(&spec, "test").unwrap_err().to_string();
        assert!(err.contains(says), "{spec}: {err}");
    }
}

/// A host's texture as the density: the same luminance as the PNG of the same pixels; other
/// formats and textures that cannot be copied are refused by name.
#[test]
fn host_texture_density_equals_the_png() {
    use ebm_gpu::energy::image::{ImageDensity, ImageOptions};
    let Some(ctx) = common::gpu() else { return };
    let dir = common::temp_dir("image_energy_texture");
    let png = picture(&dir);
    let rgba = image::open(&png).unwrap().to_rgba8();
    let (w, h) = rgba.dimensions();
    let make = |format: wgpu::TextureFormat, usage: wgpu::TextureUsages| {
        ctx.device().create_texture(&wgpu::TextureDescriptor {
            label: Some("host picture"),
            size: wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage,
            view_formats: &[],
        })
    };
    let usage = wgpu::TextureUsages::COPY_SRC | wgpu::TextureUsages::COPY_DST;
    let texture = make(wgpu::TextureFormat::Rgba8Unorm, usage);
    ctx.queue().write_texture(
        texture.as_image_copy(),
        rgba.as_raw(),
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(4 * w), rows_per_image: Some(h) },
        wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
    );
    let options = ImageOptions::default().gamma(2.0).invert(true).epsilon(0.01).aspect(true);
    let from_texture = ImageDensity::from_texture(&ctx, &texture, options).unwrap();
    let from_png = ImageDensity::load(&png, options).unwrap();
    assert_eq!(
        (from_texture.width(), from_texture.height(), from_texture.extent()),
        (from_png.width(), from_png.height(), from_png.extent())
    );
    assert!(common::max_abs_diff(from_texture.luminance(), from_png.luminance()) < 1e-6);
    let float = make(wgpu::TextureFormat::Rgba32Float, usage);
    let err = ImageDensity::from_texture(&ctx, &float, ImageOptions::default()).unwrap_err().to_string();
    assert!(err.contains("Rgba32Float"), "{err}");
    let hidden = make(wgpu::TextureFormat::Rgba8Unorm, wgpu::TextureUsages::COPY_DST);
    let err = ImageDensity::from_texture(&ctx, &hidden, ImageOptions::default()).unwrap_err().to_string();
    assert!(err.contains("COPY_SRC"), "{err}");
}

#[test]
fn rgba_pixels_density_equals_the_png() {
    use ebm_gpu::energy::image::{ImageDensity, ImageOptions};
    let dir = common::temp_dir("image_energy_rgba");
    let png = picture(&dir);
    let rgba = image::open(&png).unwrap().to_rgba8();
    let (w, h) = (rgba.width() as usize, rgba.height() as usize);
    let options = ImageOptions::default().gamma(2.0).invert(true).epsilon(0.01).aspect(true);
    // What a browser's canvas gives (web/): RGBA bytes row by row.
    let from_pixels = ImageDensity::from_rgba8(w, h, rgba.as_raw(), options).unwrap();
    let from_png = ImageDensity::load(&png, options).unwrap();
    assert_eq!(
        (from_pixels.width(), from_pixels.height(), from_pixels.extent()),
        (from_png.width(), from_png.height(), from_png.extent())
    );
    assert!(common::max_abs_diff(from_pixels.luminance(), from_png.luminance()) < 1e-6);
    let err = ImageDensity::from_rgba8(w, h + 1, rgba.as_raw(), options).unwrap_err().to_string();
    assert!(err.contains("4 per pixel"), "{err}");
    let err = ImageDensity::from_rgba8(usize::MAX, 2, &[], options).unwrap_err().to_string();
    assert!(err.contains("4 per pixel"), "{err}");
    let black = vec![0u8; 4 * w * h];
    let err = ImageDensity::from_rgba8(w, h, &black, ImageOptions::default()).unwrap_err().to_string();
    assert!(err.contains("black everywhere"), "{err}");
}

use ebm_gpu::selftest::images::host_texture;

/// A picture bright on its left half (`left`) or right half, dark elsewhere, as RGBA bytes.
fn half_bright(side: u32, left: bool) -> Vec<u8> {
    (0..side * side)
        .flat_map(|p| if ((p % side) < side / 2) == left { [240, 240, 240, 255] } else { [0, 0, 0, 255] })
        .collect()
}

/// The live texture path (image_from_pixels.wgsl) against its CPU twin (`from_rgba8`'s
/// luminance), for every format it reads, an odd size (padded rows) and an image term inside a
/// sum (its block found past the other term's); the rest of the parameters left alone.
#[test]
fn live_texture_luminance_equals_the_cpu_twin() {
    use ebm_gpu::energy::image::{ImageDensity, ImageOptions};
    let Some(ctx) = common::gpu() else { return };
    let dir = common::temp_dir("image_energy_live");
    let (w, h) = (37u32, 23u32);
    let start = dir.join("start.png");
    image::RgbImage::from_fn(w, h, |i, j| image::Rgb([(i * 6) as u8, (j * 11) as u8, 99])).save(&start).unwrap();
    let e = parse_energy(
        &format!(r#"{{"type": "sum", "terms": [{{"type": "norm_ball", "center": [0.5, 0.5], "radius": 1, "weight": 3}}, {{"type": "image", "path": {start:?}}}]}}"#),
        "test",
    )
    .unwrap();
    let (at, _) = e.image_term().unwrap();
    let mut seed = 12345u32;
    let mut byte = move || {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        (seed >> 24) as u8
    };
    let options = ImageOptions::default().gamma(2.2).invert(true);
    let init = ebm_gpu::rng::initial_states(3, 0, 64, 2, 0.5);
    for format in [wgpu::TextureFormat::Rgba8Unorm, wgpu::TextureFormat::Bgra8UnormSrgb, wgpu::TextureFormat::R8Unorm] {
        let rgba: Vec<u8> = (0..w * h).flat_map(|_| [byte(), byte(), byte(), 255]).collect();
        let stored: Vec<u8> = match format {
            wgpu::TextureFormat::R8Unorm => rgba.chunks(4).map(|p| p[0]).collect(),
            wgpu::TextureFormat::Bgra8UnormSrgb => rgba.chunks(4).flat_map(|p| [p[2], p[1], p[0], p[3]]).collect(),
            _ => rgba.clone(),
        };
        let seen: Vec<u8> = match format {
            wgpu::TextureFormat::R8Unorm => rgba.chunks(4).flat_map(|p| [p[0], p[0], p[0], 255]).collect(),
            _ => rgba.clone(),
        };
        let texture = host_texture(&ctx, format, (w, h), &stored);
        let mut sampler =
            GpuSampler::new(ctx.clone(), &e, SamplerConfig::new(SamplerKind::Ula, 0.001, 3), &init).unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        sampler.encode_image_from_texture(&mut encoder, &texture, options).unwrap();
        ctx.queue().submit([encoder.finish()]);
        let params = sampler.read_energy_params().unwrap();
        let expected = ImageDensity::from_rgba8(w as usize, h as usize, &seen, options).unwrap().luminance().to_vec();
        let n = (w * h) as usize;
        let diff = common::max_abs_diff(&params[at..at + n], &expected);
        assert!(diff < 2e-6, "{format:?}: GPU luminance differs from the CPU twin by {diff}");
        let mut before = e.pack_params();
        before[at..at + n].copy_from_slice(&params[at..at + n]);
        assert_eq!(params[..before.len()], before[..], "{format:?}: only the luminance block changes");
    }
}

/// A sampler built on one picture follows the host's texture once it is copied in, within the
/// same submit as the steps and with no readback: the chains move from the left half to the
/// right. Bad textures and energies without an image term are refused, the device still usable.
#[test]
fn live_texture_moves_the_chains() {
    use ebm_gpu::energy::image::ImageOptions;
    let Some(ctx) = common::gpu() else { return };
    let dir = common::temp_dir("image_energy_live_move");
    let side = 16u32;
    let left = dir.join("left.png");
    let rgb: Vec<u8> = half_bright(side, true).chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    image::RgbImage::from_raw(side, side, rgb).unwrap().save(&left).unwrap();
    let e = energy(&left, "");
    let chains = 2000;
    let init: Vec<f32> = (0..chains)
        .flat_map(|j| {
            let u = ebm_gpu::rng::uniform4(5, j as u32, 0, ebm_gpu::rng::Stream::Init, 0);
            [u[0], u[1]]
        })
        .collect();
    let mut sampler = GpuSampler::new(ctx.clone(), &e, SamplerConfig::new(SamplerKind::Mala, 0.002, 5), &init).unwrap();
    let right_fraction = |s: &GpuSampler| {
        let states = s.state().unwrap();
        states.chunks_exact(2).filter(|p| p[0] > 0.5).count() as f64 / chains as f64
    };
    sampler.run(1000).unwrap();
    let before = right_fraction(&sampler);
    let texture = host_texture(&ctx, wgpu::TextureFormat::Rgba8Unorm, (side, side), &half_bright(side, false));
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    sampler.encode_image_from_texture(&mut encoder, &texture, ImageOptions::default()).unwrap();
    let steps = sampler.max_steps_per_encode().min(1000);
    sampler.encode(&mut encoder, steps).unwrap();
    ctx.queue().submit([encoder.finish()]);
    sampler.run(1000 - steps).unwrap();
    let after = right_fraction(&sampler);
    eprintln!(
        "chains on the right half: {before:.3} on the left picture, {after:.3} after 1000 steps on the right texture"
    );
    assert!(before < 0.05 && after > 0.9, "before {before}, after {after}");

    let small = host_texture(&ctx, wgpu::TextureFormat::Rgba8Unorm, (8, 8), &half_bright(8, false));
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let err = sampler.encode_image_from_texture(&mut encoder, &small, ImageOptions::default()).unwrap_err().to_string();
    assert!(err.contains("8x8") && err.contains("16x16"), "{err}");
    let float =
        host_texture(&ctx, wgpu::TextureFormat::Rgba32Float, (side, side), &vec![0; (16 * side * side) as usize]);
    let err = sampler.encode_image_from_texture(&mut encoder, &float, ImageOptions::default()).unwrap_err().to_string();
    assert!(err.contains("Rgba32Float"), "{err}");
    let err = sampler
        .encode_image_from_texture(&mut encoder, &texture, ImageOptions::default().gamma(0.0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("gamma"), "{err}");
    let ring = ebm_gpu::energy::spec::resolve_energy("ring8").unwrap();
    let mut ring_sampler =
        GpuSampler::new(ctx.clone(), &ring, SamplerConfig::new(SamplerKind::Mala, 0.01, 5), &init).unwrap();
    let err = ring_sampler
        .encode_image_from_texture(&mut encoder, &texture, ImageOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no image term"), "{err}");
    ctx.queue().submit([encoder.finish()]);
    sampler.run(10).unwrap();
    ctx.check("after refused texture updates").unwrap();
}
