// Philox4x32-10 (Salmon et al. 2011, Random123), bit-identical to src/rng.rs.
// Counter = (chain, step, stream, draw); key = the run's 64-bit seed as (lo, hi).

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// Streams: what a draw is for (src/rng.rs `Stream`).
const STREAM_PROPOSAL_NOISE: u32 = 0u;
const STREAM_ACCEPT: u32 = 1u;
const STREAM_MOMENTUM: u32 = 2u;
const STREAM_GIBBS: u32 = 3u;
const STREAM_BUFFER_RESET: u32 = 4u;
const STREAM_INIT: u32 = 5u;
const STREAM_SWAP: u32 = 6u;
const STREAM_BATCH: u32 = 7u;
const STREAM_CLUSTER: u32 = 8u;
const STREAM_OBSERVATION: u32 = 9u;
const STREAM_VIEWS: u32 = 10u;
const STREAM_LATENT: u32 = 11u;

const TWO_PI: f32 = 6.283185307179586;

// High and low 32 bits of a 32x32-bit product (WGSL has no 64-bit integers).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let p00 = a_lo * b_lo;
    let p01 = a_lo * b_hi;
    let p10 = a_hi * b_lo;
    let p11 = a_hi * b_hi;
    let mid = (p00 >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if round > 0u {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mulhilo(PHILOX_M0, c.x);
        let p1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// Uniform in (0, 1] from the top 24 bits: exact in f32 and never 0, so log() is finite.
fn uniform_from_bits(bits: vec4<u32>) -> vec4<f32> {
    return vec4<f32>((bits >> vec4<u32>(8u)) + vec4<u32>(1u)) * (1.0 / 16777216.0);
}

fn uniform4(key: vec2<u32>, chain: u32, step: u32, stream: u32, draw: u32) -> vec4<f32> {
    return uniform_from_bits(philox4x32_10(vec4<u32>(chain, step, stream, draw), key));
}

// Four standard normals by Box-Muller; dimension i of a vector draw uses draw i / 4, lane i % 4.
fn normal4(key: vec2<u32>, chain: u32, step: u32, stream: u32, draw: u32) -> vec4<f32> {
    let u = uniform4(key, chain, step, stream, draw);
    let r = sqrt(-2.0 * log(u.xz));
    let theta = TWO_PI * u.yw;
    return vec4<f32>(r.x * cos(theta.x), r.x * sin(theta.x), r.y * cos(theta.y), r.y * sin(theta.y));
}
