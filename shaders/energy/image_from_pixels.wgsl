// A host texture's pixels (copied into `pixels` as their bytes, rows `row_bytes` apart) become
// the luminance block of an image energy's parameters, on the device: no readback, so a host
// can change the density every frame. CPU twin: `luminance` in src/energy/image.rs (what
// `ImageDensity::from_rgba8` and `from_texture` compute).

struct PixelParams {
    width: u32,
    height: u32,
    row_bytes: u32,
    bytes_per_pixel: u32,
    // Byte offsets of red, green and blue within a pixel.
    red: u32,
    green: u32,
    blue: u32,
    // 1: dark is dense.
    invert: u32,
    gamma: f32,
    // Where the luminance block starts in `energy_params`.
    dst: u32,
}

@group(0) @binding(0) var<uniform> params: PixelParams;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read_write> energy_params: array<f32>;

fn channel(byte_index: u32) -> f32 {
    let word = pixels[byte_index / 4u];
    return f32((word >> (8u * (byte_index % 4u))) & 0xffu) / 255.0;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    if p >= params.width * params.height {
        return;
    }
    let at = (p / params.width) * params.row_bytes + (p % params.width) * params.bytes_per_pixel;
    let r = channel(at + params.red);
    let g = channel(at + params.green);
    let b = channel(at + params.blue);
    let l = clamp(0.2126 * r + 0.7152 * g + 0.0722 * b, 0.0, 1.0);
    // pow(0, gamma) is undefined in WGSL; the CPU's powf gives 0.
    var shaped = select(0.0, pow(l, params.gamma), l > 0.0);
    if params.invert != 0u {
        shaped = 1.0 - shaped;
    }
    energy_params[params.dst + p] = shaped;
}
