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

/// The key for a run's 64-bit seed.
pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Uniform in (0, 1] from the top 24 bits: exact in f32, never 0, so `ln` is always finite.
#[inline]
pub fn uniform(bits: u32) -> f32 {
    ((bits >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// Two standard normals from two uniforms (Box–Muller).
#[inline]
pub fn box_muller(u0: f32, u1: f32) -> [f32; 2] {
    let r = (-2.0 * u0.ln()).sqrt();
    let theta = std::f32::consts::TAU * u1;
    [r * theta.cos(), r * theta.sin()]
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

/// Fills `out` with standard normals for one chain and step, in the layout the kernels use.
pub fn fill_normals(seed: u64, chain: u32, step: u32, stream: Stream, out: &mut [f32]) {
    for (draw, block) in out.chunks_mut(4).enumerate() {
        let n = normal4(seed, chain, step, stream, draw as u32);
        block.copy_from_slice(&n[..block.len()]);
    }
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
