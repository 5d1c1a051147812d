// Draws MCMC chains as additive sprites coloured by energy, straight from a sampler's state
// ([x, y] per chain) and energy buffers bound as instance vertex buffers. Shared by
// examples/particles.rs and the browser demo (web/src/lib.rs), which mirror `View` as a
// #[repr(C)] struct.

struct View {
    centre: vec2<f32>,  // the middle of the square drawn
    half_width: f32,    // its half-width
    sprite: f32,        // sprite radius in clip units
    e_low: f32,         // energies mapped onto the palette
    e_high: f32,
    intensity: f32,     // peak brightness one sprite adds
    _pad: f32,
}
@group(0) @binding(0) var<uniform> view: View;

struct Out {
    @builtin(position) position: vec4<f32>,
    @location(0) offset: vec2<f32>,
    @location(1) colour: vec3<f32>,
}

// Six vertices per chain (two triangles of a quad around it).
@vertex
fn vs(@builtin(vertex_index) v: u32, @location(0) x: vec2<f32>, @location(1) energy: f32) -> Out {
    var corners = array<vec2<f32>, 6>(vec2(-1.0, -1.0), vec2(1.0, -1.0), vec2(1.0, 1.0), vec2(-1.0, -1.0), vec2(1.0, 1.0), vec2(-1.0, 1.0));
    let c = corners[v];
    var out: Out;
    out.position = vec4<f32>((x - view.centre) / view.half_width + c * view.sprite, 0.0, 1.0);
    out.offset = c;
    // Low energy warm (yellow), high energy cold (blue).
    let t = clamp((energy - view.e_low) / (view.e_high - view.e_low), 0.0, 1.0);
    out.colour = mix(vec3<f32>(1.0, 0.85, 0.3), vec3<f32>(0.25, 0.45, 1.0), t);
    return out;
}

@fragment
fn fs(in: Out) -> @location(0) vec4<f32> {
    let falloff = exp(-3.0 * dot(in.offset, in.offset));
    return vec4<f32>(in.colour * falloff * view.intensity, 1.0);
}
