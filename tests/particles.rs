//! The headless render example (examples/particles.rs, included here as a module): chains
//! relax onto ring8 frame by frame, drawn straight from the sampler's buffers, and follow a
//! scene the host renders into a texture, with no readback of chain state between frames.

mod common;

#[path = "../examples/particles.rs"]
#[allow(dead_code)]
mod particles;

/// Share of the frame's brightness within 3 sigma (0.75) of ring8's modes, plus a sprite.
fn mass_near_modes(pixels: &[u8], size: u32) -> f64 {
    let centres: Vec<(f32, f32)> =
        (0..8).map(|k| k as f32 * std::f32::consts::FRAC_PI_4).map(|a| (2.0 * a.cos(), 2.0 * a.sin())).collect();
    let (mut inside, mut total) = (0.0f64, 0.0f64);
    for (i, px) in pixels.chunks_exact(4).enumerate() {
        let (row, col) = ((i as u32 / size) as f32, (i as u32 % size) as f32);
        let x = ((col + 0.5) / size as f32 * 2.0 - 1.0) * particles::VIEW;
        let y = (1.0 - (row + 0.5) / size as f32 * 2.0) * particles::VIEW;
        let brightness = px[..3].iter().map(|&v| v as f64).sum::<f64>();
        total += brightness;
        if centres.iter().any(|(cx, cy)| (x - cx).hypot(y - cy) < 0.8) {
            inside += brightness;
        }
    }
    inside / total.max(1.0)
}

#[test]
fn chains_render_onto_ring8_without_readback() {
    if common::gpu().is_none() {
        return;
    }
    let (device, queue, info) = particles::host_device().unwrap();
    let size = 256;
    // Dim sprites, so that additive blending does not saturate where the chains crowd.
    let ring8 = ebm_gpu::prelude::resolve_energy("ring8").unwrap();
    let mut p = particles::Particles::new(device, queue, Some(info), &ring8, 16384, 0.01, size, 0.02).unwrap();
    p.frame(1, None).unwrap();
    let start = p.ctx.readbacks();
    let first = mass_near_modes(&p.read_frame().unwrap(), size);
    for _ in 0..30 {
        p.frame(8, None).unwrap();
    }
    assert_eq!(p.ctx.readbacks(), start, "the frames read chain state back");
    let pixels = p.read_frame().unwrap();
    assert!(pixels.chunks_exact(4).any(|px| px[0] > 0), "nothing was drawn");
    let last = mass_near_modes(&pixels, size);
    eprintln!("brightness within 3 sigma of the modes: first frame {first:.3}, after 241 steps {last:.3}");
    assert!(last >= 0.9, "only {last:.3} of the rendered mass lies within 3 sigma of ring8's modes");
    // From N(0, 1.5^2) about 0.6 of the first frame is near the modes (much of the plane is).
    assert!(last - first > 0.2, "the chains should relax onto the modes: {first:.3} -> {last:.3}");
    // A bad size is refused before anything is made.
    let (device, queue, info) = particles::host_device().unwrap();
    assert!(particles::Particles::new(device, queue, Some(info), &ring8, 16, 0.01, 100, 0.1).is_err());
}

/// Share of the frame's brightness on the left half of the picture (the image view draws
/// [0, 1]^2 centred, so the frame's left half).
fn share_on_the_left(pixels: &[u8], size: u32) -> f64 {
    let (mut left, mut total) = (0.0f64, 0.0f64);
    for (i, px) in pixels.chunks_exact(4).enumerate() {
        let brightness = px[..3].iter().map(|&v| v as f64).sum::<f64>();
        total += brightness;
        if i as u32 % size < size / 2 {
            left += brightness;
        }
    }
    left / total.max(1.0)
}

/// The live mode: the host renders its scene (a blob) into a texture each frame and the
/// sampler's image energy follows it on the device. With the blob on the left the drawn chains
/// gather there; moved to the right, they follow, and no frame reads anything back.
#[test]
fn chains_follow_a_scene_the_host_renders() {
    if common::gpu().is_none() {
        return;
    }
    let (device, queue, info) = particles::host_device().unwrap();
    let size = 128;
    let energy = particles::LiveScene::energy().unwrap();
    let mut p = particles::Particles::new(device, queue, Some(info), &energy, 4096, 5e-4, size, 0.05).unwrap();
    let scene = particles::LiveScene::new(&p.device);
    let (left, right) = ([0.25, 0.5], [0.75, 0.5]);
    let start = p.ctx.readbacks();
    for _ in 0..20 {
        p.frame(20, Some((&scene, left))).unwrap();
    }
    let on_left = p.read_frame().unwrap();
    for _ in 0..20 {
        p.frame(20, Some((&scene, right))).unwrap();
    }
    assert_eq!(p.ctx.readbacks(), start, "the frames read chain state back");
    let on_right = p.read_frame().unwrap();
    // A blob of spread 0.2 a quarter from the edge holds 0.89 of its mass on its own half.
    let (before, after) = (share_on_the_left(&on_left, size), share_on_the_left(&on_right, size));
    eprintln!("brightness on the left half: {before:.3} with the blob on the left, {after:.3} after it moved right");
    assert!(
        before > 0.8 && after < 0.2,
        "left half's share: {before:.3} with the blob there, {after:.3} after it moved"
    );
}
