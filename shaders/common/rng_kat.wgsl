// Runs Philox4x32-10 on given (counter, key) pairs and the Box-Muller normals, so tests can
// compare the WGSL generator with src/rng.rs bit for bit.
#import common/rng.wgsl

struct KatInput {
    counter: vec4<u32>,
    key: vec2<u32>,
    _pad: vec2<u32>,
}

@group(0) @binding(0) var<storage, read> inputs: array<KatInput>;
@group(0) @binding(1) var<storage, read_write> bits_out: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> normals_out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= arrayLength(&inputs) {
        return;
    }
    let input = inputs[i];
    bits_out[i] = philox4x32_10(input.counter, input.key);
    let c = input.counter;
    normals_out[i] = normal4(input.key, c.x, c.y, c.z, c.w);
}
