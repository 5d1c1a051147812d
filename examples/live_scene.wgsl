// The host's own scene in the live mode of examples/particles.rs: a soft bright blob on a dark
// ground, drawn every frame into the texture the sampler's image energy follows. Plane
// coordinates are those of an image energy: [0, 1]^2, y up, row 0 of the texture at the top.

struct Scene {
    centre: vec2<f32>,
    // The blob's standard deviation, in units of the square.
    spread: f32,
    // The texture's side in pixels.
    size: f32,
}

@group(0) @binding(0) var<uniform> scene: Scene;

// One triangle covering the target.
@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let corner = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4<f32>(corner * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) pixel: vec4<f32>) -> @location(0) vec4<f32> {
    let p = vec2<f32>(pixel.x / scene.size, 1.0 - pixel.y / scene.size);
    let d = p - scene.centre;
    let l = exp(-dot(d, d) / (2.0 * scene.spread * scene.spread));
    return vec4<f32>(l, l, l, 1.0);
}
