//! Philox4x32-10 (Salmon et al. 2011, Random123): the Rust twin of `shaders/common/rng.wgsl`.
//!
//! Counter-based: every random number is a pure function of (seed, chain, step, stream, draw),
//! so chains do not depend on batch size, dispatch shape, backend or how chains are split.
//! The two implementations are bit-identical on the integer output; the float transforms use
//! the same formulas (the GPU's `log`/`cos` may differ from Rust's by a few ulps).

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// What a draw is for; part of the counter so purposes never share random numbers.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Gaussian noise of a Langevin/MALA proposal.
    ProposalNoise = 0,
    /// The uniform of a Metropolis accept test.
    Accept = 1,
    /// HMC momentum.
    Momentum = 2,
    /// Gibbs sampling uniforms.
    Gibbs = 3,
    /// Replay-buffer resets.
    BufferReset = 4,
    /// Initial chain states.
    Init = 5,
    /// Parallel-tempering swap uniforms (counter: base chain, swap round, stream, pair).
    Swap = 6,
    /// Training minibatches: which data rows a step draws, and noise-contrastive samples.
    Batch = 7,
    /// Cluster updates of discrete models: bond uniforms and new cluster labels.
    Cluster = 8,
    /// Noise an annealed restoration adds to the observed pixels at each level (counter:
    /// image, level, stream, group of 4 pixels).
    Observation = 9,
    /// The random views of contrastive training (counter: batch entry, step, stream, draw).
    Views = 10,
    /// The latent vectors of a generator's proposals (counter: batch entry, step, stream, draw).
    Latent = 11,
}

#[inline]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// The raw generator: 10 rounds of Philox4x32 on `counter` under `key`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Random123's known-answer vectors for Philox4x32-10: (counter, key, output).
pub const KNOWN_ANSWERS: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
    ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

/// The key for a run's 64-bit seed.
pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Uniform in (0, 1] from the top 24 bits: exact in f32, never 0, so `ln` is always finite.
#[inline]
pub fn uniform(bits: u32) -> f32 {
    ((bits >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// Two standard normals from two uniforms (Box–Muller): sqrt(-2 ln u0) (cos, sin)(2 pi u1).
/// The logarithm and the sine/cosine are [`ln_unit`] and [`sincos_turns`], written so that a
/// block of lanes vectorises ([`normals_lanes`]) and every lane equals this scalar result bit for
/// bit; the GPU's `log`/`cos`/`sin` may differ from them by a few ulps.
#[inline(always)]
pub fn box_muller(u0: f32, u1: f32) -> [f32; 2] {
    let r = (-2.0 * ln_unit(u0)).sqrt();
    let (s, c) = sincos_turns(u1);
    [r * c, r * s]
}

/// ln(x) for a positive normal float (Cephes' `logf`: about 1 ulp), branch-free so a loop
/// over lanes vectorises.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants as published
pub fn ln_unit(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = m 2^e with m in [0.5, 1), then m in [sqrt(1/2), sqrt(2)) and m - 1 near 0.
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let low = m < SQRT_HALF;
    e -= low as i32;
    let m = if low { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let mut y = 7.037_683_6e-2;
    for coef in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        y = y * m + coef;
    }
    let ef = e as f32;
    y = y * m * z + ef * -2.121_944_4e-4 - 0.5 * z;
    m + y + ef * 0.693_359_4
}

/// (sin, cos) of 2 pi u for a uniform u of [`uniform`] (a multiple of 2^-24 in (0, 1]): the
/// quadrant comes exactly from u's 24-bit integer, the rest is Cephes' `sinf`/`cosf`
/// polynomials on [-pi/4, pi/4] (about 1 ulp). Branch-free, so lanes vectorise.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants as published
pub fn sincos_turns(u: f32) -> (f32, f32) {
    let k = (u * 16_777_216.0) as i32; // exact: u = k / 2^24
    // k = 2^22 q + r with r in [-2^21, 2^21): the angle is q pi/2 + 2 pi r / 2^24.
    let q = (k + (1 << 21)) >> 22;
    let r = k - (q << 22);
    let a = r as f32 * (std::f32::consts::TAU / 16_777_216.0);
    let z = a * a;
    let sin_a = a + a * z * ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1);
    let cos_a = 1.0 - 0.5 * z + z * z * ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2);
    // Rotate by q quarter turns: (sin, cos) -> (cos, -sin) per quarter.
    let swap = q & 1 != 0;
    let (s, c) = if swap { (cos_a, sin_a) } else { (sin_a, cos_a) };
    let s_neg = (q & 2) != 0;
    let c_neg = ((q + 1) & 2) != 0;
    (f32::from_bits(s.to_bits() ^ ((s_neg as u32) << 31)), f32::from_bits(c.to_bits() ^ ((c_neg as u32) << 31)))
}

/// Four uniforms in (0, 1] for counter (chain, step, stream, draw).
pub fn uniform4(seed: u64, chain: u32, step: u32, stream: Stream, draw: u32) -> [f32; 4] {
    philox4x32_10([chain, step, stream as u32, draw], key(seed)).map(uniform)
}

/// Four standard normals for counter (chain, step, stream, draw). Dimension `i` of a vector
/// draw uses `draw = i / 4`, component `i % 4`.
pub fn normal4(seed: u64, chain: u32, step: u32, stream: Stream, draw: u32) -> [f32; 4] {
    let u = uniform4(seed, chain, step, stream, draw);
    let [a, b] = box_muller(u[0], u[1]);
    let [c, d] = box_muller(u[2], u[3]);
    [a, b, c, d]
}

/// Counters one block of [`normals_lanes`] or [`uniforms_lanes`] evaluates at once: 16 lanes
/// fill an AVX-512 register (two AVX2 ones).
pub const LANES: usize = 16;

/// Philox counters for [`LANES`] lanes, structure of arrays: `ctr[word][lane]`.
pub type LaneCounters = [[u32; LANES]; 4];

/// [`philox4x32_10`] on every lane (the same arithmetic, lane by lane).
#[inline(always)]
fn philox_lanes(ctr: &LaneCounters, key: [u32; 2]) -> LaneCounters {
    let mut c = *ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        for l in 0..LANES {
            let (hi0, lo0) = mulhilo(M0, c[0][l]);
            let (hi1, lo1) = mulhilo(M1, c[2][l]);
            let next = [hi1 ^ c[1][l] ^ k[0], lo1, hi0 ^ c[3][l] ^ k[1], lo0];
            for w in 0..4 {
                c[w][l] = next[w];
            }
        }
    }
    c
}

#[inline(always)]
fn uniforms_lanes_generic(ctr: &LaneCounters, key: [u32; 2]) -> [[f32; LANES]; 4] {
    philox_lanes(ctr, key).map(|w| w.map(uniform))
}

#[inline(always)]
fn normals_lanes_generic(ctr: &LaneCounters, key: [u32; 2]) -> [[f32; LANES]; 4] {
    let u = uniforms_lanes_generic(ctr, key);
    let mut out = [[0.0f32; LANES]; 4];
    for pair in 0..2 {
        for l in 0..LANES {
            let [a, b] = box_muller(u[2 * pair][l], u[2 * pair + 1][l]);
            out[2 * pair][l] = a;
            out[2 * pair + 1][l] = b;
        }
    }
    out
}

crate::simd::vectorized!(
    /// [`normal4`] for [`LANES`] counters at once: `out[component][lane]`, bit-identical to it.
    pub fn normals_lanes(ctr: &LaneCounters, key: [u32; 2]) -> [[f32; LANES]; 4] {
        normals_lanes_generic(ctr, key)
    }
);

crate::simd::vectorized!(
    /// [`philox4x32_10`] for [`LANES`] counters at once: `out[word][lane]`, bit-identical to it.
    pub fn bits_lanes(ctr: &LaneCounters, key: [u32; 2]) -> LaneCounters {
        philox_lanes(ctr, key)
    }
);

crate::simd::vectorized!(
    /// [`uniform4`] for [`LANES`] counters at once: `out[component][lane]`, bit-identical to it.
    pub fn uniforms_lanes(ctr: &LaneCounters, key: [u32; 2]) -> [[f32; LANES]; 4] {
        uniforms_lanes_generic(ctr, key)
    }
);

/// Evaluates `count` counters [`LANES`] at a time with `lanes` ([`normals_lanes`] or
/// [`uniforms_lanes`]): counter j is `counter(j)`, and `emit(j, values)` receives its four
/// outputs. The one loop behind the block fills below.
#[inline(always)]
fn for_each_counter(
    seed: u64,
    count: usize,
    lanes: fn(&LaneCounters, [u32; 2]) -> [[f32; LANES]; 4],
    counter: impl Fn(usize) -> [u32; 4],
    mut emit: impl FnMut(usize, [f32; 4]),
) {
    let key = key(seed);
    let mut ctr: LaneCounters = [[0; LANES]; 4];
    for at in (0..count).step_by(LANES) {
        let n = (count - at).min(LANES);
        for l in 0..LANES {
            let c = counter(at + l.min(n - 1));
            for w in 0..4 {
                ctr[w][l] = c[w];
            }
        }
        let out = lanes(&ctr, key);
        for l in 0..n {
            emit(at + l, [out[0][l], out[1][l], out[2][l], out[3][l]]);
        }
    }
}

/// Standard normals of `steps` consecutive steps of one chain, `[steps, dim]`: row s is
/// [`fill_normals`] for step `first + s`. The (step, draw) counters are evaluated
/// [`LANES`] at a time, so a chain with a small state gets vector speed by drawing ahead.
pub fn fill_normals_steps(seed: u64, chain: u32, first: u32, stream: Stream, dim: usize, out: &mut [f32]) {
    if dim == 0 {
        return;
    }
    let draws = dim.div_ceil(4);
    let steps = out.len() / dim;
    let counter = |j: usize| [chain, first.wrapping_add((j / draws) as u32), stream as u32, (j % draws) as u32];
    for_each_counter(seed, steps * draws, normals_lanes, counter, |j, n| {
        let (s, draw) = (j / draws, j % draws);
        let row = &mut out[s * dim..(s + 1) * dim];
        let comps = 4.min(dim - 4 * draw);
        row[4 * draw..4 * draw + comps].copy_from_slice(&n[..comps]);
    });
}

/// [`uniform4`] (draw 0) of `out.len()` consecutive steps of one chain, [`LANES`] at a time.
pub fn fill_uniforms_steps(seed: u64, chain: u32, first: u32, stream: Stream, out: &mut [[f32; 4]]) {
    let counter = |j: usize| [chain, first.wrapping_add(j as u32), stream as u32, 0];
    for_each_counter(seed, out.len(), uniforms_lanes, counter, |j, u| out[j] = u);
}

/// Uniforms for one chain and step in the kernels' layout (value i from draw i / 4, component
/// i % 4), [`LANES`] draws at a time.
pub fn fill_uniforms(seed: u64, chain: u32, step: u32, stream: Stream, out: &mut [f32]) {
    let counter = |j: usize| [chain, step, stream as u32, j as u32];
    let len = out.len();
    for_each_counter(seed, len.div_ceil(4), uniforms_lanes, counter, |j, u| {
        let comps = 4.min(len - 4 * j);
        out[4 * j..4 * j + comps].copy_from_slice(&u[..comps]);
    });
}

/// Fills `out` with standard normals for one chain and step, in the layout the kernels use.
pub fn fill_normals(seed: u64, chain: u32, step: u32, stream: Stream, out: &mut [f32]) {
    fill_normals_steps(seed, chain, step, stream, out.len(), out);
}

/// Value i of `out` is `normal4(seed, chain, step, stream, first_draw + i / 4)[i % 4]`: the
/// numbers of a loop that draws one normal4 per coordinate, [`LANES`] draws at a time.
pub fn fill_normals_from(seed: u64, chain: u32, step: u32, stream: Stream, first_draw: u32, out: &mut [f32]) {
    let counter = |j: usize| [chain, step, stream as u32, first_draw.wrapping_add(j as u32)];
    let len = out.len();
    for_each_counter(seed, len.div_ceil(4), normals_lanes, counter, |j, n| {
        let comps = 4.min(len - 4 * j);
        out[4 * j..4 * j + comps].copy_from_slice(&n[..comps]);
    });
}

/// Initial states for chains `chain_offset ..`: N(0, init_std^2) per coordinate, from the
/// `Init` stream, so both executors and any split of the chains start from the same points.
pub fn initial_states(seed: u64, chain_offset: u32, chains: usize, dim: usize, init_std: f32) -> Vec<f32> {
    let mut states = vec![0.0f32; chains * dim];
    for (i, row) in states.chunks_mut(dim.max(1)).enumerate() {
        fill_normals(seed, chain_offset + i as u32, 0, Stream::Init, row);
        row.iter_mut().for_each(|v| *v *= init_std);
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for philox4x32-10 (see DESIGN.md).
    pub const KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
        ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];

    #[test]
    fn philox_known_answers() {
        for (ctr, key, want) in KAT {
            assert_eq!(philox4x32_10(ctr, key), want, "ctr {ctr:08x?} key {key:08x?}");
        }
    }

    #[test]
    fn uniform_is_in_half_open_unit_interval() {
        assert_eq!(uniform(0), 1.0 / 16_777_216.0);
        assert_eq!(uniform(u32::MAX), 1.0);
    }

    #[test]
    fn lane_blocks_equal_the_scalar_generator_bit_for_bit() {
        let key = key(0xdead_beef_0123_4567);
        for block in 0..64u32 {
            let mut ctr: LaneCounters = [[0; LANES]; 4];
            for l in 0..LANES {
                let i = block * LANES as u32 + l as u32;
                ctr[0][l] = i.wrapping_mul(0x9E37_79B9);
                ctr[1][l] = i / 7;
                ctr[2][l] = i % 8;
                ctr[3][l] = i.wrapping_mul(31) ^ 0xffff_0000;
            }
            let (normals, uniforms) = (normals_lanes(&ctr, key), uniforms_lanes(&ctr, key));
            for l in 0..LANES {
                let c = [ctr[0][l], ctr[1][l], ctr[2][l], ctr[3][l]];
                let u = philox4x32_10(c, key).map(uniform);
                let n = [box_muller(u[0], u[1]), box_muller(u[2], u[3])].concat();
                for w in 0..4 {
                    assert_eq!(uniforms[w][l].to_bits(), u[w].to_bits(), "counter {c:?}");
                    assert_eq!(normals[w][l].to_bits(), n[w].to_bits(), "counter {c:?}");
                }
            }
        }
    }

    #[test]
    fn steps_ahead_equal_step_by_step_draws() {
        for dim in [1usize, 2, 3, 5, 8, 17, 130] {
            let steps = 37;
            let mut ahead = vec![0.0f32; steps * dim];
            fill_normals_steps(11, 42, 1000, Stream::ProposalNoise, dim, &mut ahead);
            let mut quads = vec![[0.0f32; 4]; steps];
            fill_uniforms_steps(11, 42, 1000, Stream::Accept, &mut quads);
            for s in 0..steps {
                let step = 1000 + s as u32;
                for (i, &v) in ahead[s * dim..(s + 1) * dim].iter().enumerate() {
                    let want = normal4(11, 42, step, Stream::ProposalNoise, (i / 4) as u32)[i % 4];
                    assert_eq!(v.to_bits(), want.to_bits(), "dim {dim} step {s} coordinate {i}");
                }
                assert_eq!(quads[s], uniform4(11, 42, step, Stream::Accept, 0), "step {s}");
            }
            let mut flat = vec![0.0f32; dim];
            fill_uniforms(11, 42, 7, Stream::Gibbs, &mut flat);
            for (i, &u) in flat.iter().enumerate() {
                assert_eq!(u, uniform4(11, 42, 7, Stream::Gibbs, (i / 4) as u32)[i % 4], "dim {dim} value {i}");
            }
        }
    }

    #[test]
    fn fills_from_a_draw_equal_one_normal4_per_coordinate() {
        for (dim, first) in [(1usize, 0u32), (3, 5), (17, 60), (784, 196 * 59), (130, u32::MAX - 3)] {
            let mut fill = vec![0.0f32; dim];
            fill_normals_from(5, 9, 77, Stream::ProposalNoise, first, &mut fill);
            for (i, &v) in fill.iter().enumerate() {
                let want = normal4(5, 9, 77, Stream::ProposalNoise, first.wrapping_add(i as u32 / 4))[i % 4];
                assert_eq!(v.to_bits(), want.to_bits(), "dim {dim} first draw {first} coordinate {i}");
            }
        }
    }

    #[test]
    fn ln_and_sincos_are_accurate_to_a_few_ulps() {
        let mut worst = [0.0f64; 3];
        for k in (1u32..=1 << 24).step_by(97).chain([1, 2, (1 << 22) - 1, 1 << 22, 1 << 23, (1 << 24) - 1, 1 << 24]) {
            let u = k as f32 / 16_777_216.0;
            // Distance in units in the last place from the correctly rounded value.
            let ulps = |got: f32, want: f64| {
                let w = want as f32;
                if got.is_sign_negative() != w.is_sign_negative() {
                    f64::INFINITY
                } else {
                    (got.to_bits() as f64 - w.to_bits() as f64).abs()
                }
            };
            let theta = std::f64::consts::TAU * u as f64;
            let (s, c) = sincos_turns(u);
            // Near the zeros of sin/cos an absolute error of 2^-24 is what f32 can promise.
            let abs_ok = |got: f32, want: f64| (got as f64 - want).abs() < 2.0f64.powi(-24);
            if !abs_ok(s, theta.sin()) {
                worst[0] = worst[0].max(ulps(s, theta.sin()));
            }
            if !abs_ok(c, theta.cos()) {
                worst[1] = worst[1].max(ulps(c, theta.cos()));
            }
            if u < 1.0 {
                worst[2] = worst[2].max(ulps(ln_unit(u), (u as f64).ln()));
            }
        }
        assert!(worst.iter().all(|&w| w <= 4.0), "worst ulps (sin, cos, ln): {worst:?}");
        assert_eq!(ln_unit(1.0), 0.0);
    }

    #[test]
    fn normals_have_unit_moments() {
        let n = 40_000;
        let mut xs = vec![0.0f32; n];
        for (i, chunk) in xs.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&normal4(7, i as u32, 3, Stream::ProposalNoise, 0));
        }
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: 1/sqrt(n) = 0.005 for the mean, sqrt(2/n) = 0.007 for the variance.
        assert!(mean.abs() < 4.0 * 0.005, "mean {mean}");
        assert!((var - 1.0).abs() < 4.0 * 0.0071, "var {var}");
    }
}
