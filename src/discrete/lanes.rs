//! The CPU executor's fast path for table-driven Ising rules (lattices and uniform graphs):
//! 16 chains side by side, so that one site's update for all of them is a few vector
//! instructions and one Philox block ([`crate::rng::bits_lanes`]) draws a word's uniforms for
//! 16 chains at once. It computes exactly what [`super::rules::Rules::update_site`] computes
//! (the same counts, table entries and counters), so its chains equal the scalar path's and the
//! GPU's bit for bit; only the memory layout differs: `[block of 16 chains][position][lane]`.

use super::graph::Layout;
use super::rules::{Rules, Update};
use crate::rng::{LANES, LaneCounters, Stream, bits_lanes, key};
use rayon::prelude::*;

/// Entries a rule table may have for this path (its own copy lives on the stack).
pub const MAX_TABLE: usize = 128;

/// Whether `rules` can run on the lane path.
pub fn eligible(rules: &Rules) -> bool {
    rules.q == 2 && rules.exact && rules.table.len() <= MAX_TABLE
}

/// Chains in blocks of [`LANES`]; lanes past the last chain run too and are never read.
pub struct LaneChains {
    chains: usize,
    /// `blocks x positions x LANES` bytes.
    states: Vec<u8>,
    positions: usize,
}

impl LaneChains {
    pub fn new(layout: &Layout, initial: &[u8], chains: usize) -> Self {
        let positions = layout.words * 4;
        let blocks = chains.div_ceil(LANES);
        let sites = layout.position.len();
        let mut states = vec![0u8; blocks * positions * LANES];
        for c in 0..blocks * LANES {
            // Idle lanes copy the last chain (any valid state would do).
            let row = &initial[c.min(chains - 1) * sites..][..sites];
            for (site, &p) in layout.position.iter().enumerate() {
                states[(c / LANES * positions + p as usize) * LANES + c % LANES] = row[site];
            }
        }
        LaneChains { chains, states, positions }
    }

    /// Bytes in site order, one chain after another.
    pub fn states(&self, layout: &Layout) -> Vec<u8> {
        let sites = layout.position.len();
        let mut out = vec![0u8; self.chains * sites];
        for c in 0..self.chains {
            for (site, &p) in layout.position.iter().enumerate() {
                out[c * sites + site] = self.states[(c / LANES * self.positions + p as usize) * LANES + c % LANES];
            }
        }
        out
    }

    /// One sweep (sweep number `t`) of every block: the classes in order, each class's words
    /// split over threads (a class never reads itself, so its bytes are updated in place).
    pub fn sweep(&mut self, layout: &Layout, rules: &Rules, seed: u64, first_chain: u32, t: u32) {
        let mut table = [0u32; MAX_TABLE];
        table[..rules.table.len()].copy_from_slice(&rules.table);
        let row = self.positions * LANES;
        for &(first, count, class_sites) in &layout.classes {
            let (lo, hi) = (first as usize * 4 * LANES, (first + count) as usize * 4 * LANES);
            self.states.par_chunks_mut(row).enumerate().for_each(|(b, block)| {
                let (before, rest) = block.split_at_mut(lo);
                let (class, after) = rest.split_at_mut(hi - lo);
                let ctx = Context { before: &*before, after: &*after, lo, hi, rules, table: &table };
                class.par_chunks_mut(4 * LANES * 16).enumerate().for_each(|(chunk, words)| {
                    let chain0 = first_chain + (b * LANES) as u32;
                    for (k, word) in words.chunks_mut(4 * LANES).enumerate() {
                        let index = chunk * 16 + k;
                        let w = first + index as u32;
                        let mut ctr: LaneCounters = [[0; LANES]; 4];
                        for l in 0..LANES {
                            ctr[0][l] = chain0 + l as u32;
                            ctr[1][l] = t;
                            ctr[2][l] = Stream::Gibbs as u32;
                            ctr[3][l] = w;
                        }
                        let bits = bits_lanes(&ctr, key(seed));
                        let live = (class_sites as usize - 4 * index).min(4);
                        update_word(&ctx, w as usize * 4, live, &bits, word);
                    }
                });
            });
        }
    }
}

/// What one word's update reads: the block's bytes outside the class being updated.
struct Context<'a> {
    before: &'a [u8],
    after: &'a [u8],
    lo: usize,
    hi: usize,
    rules: &'a Rules,
    table: &'a [u32; MAX_TABLE],
}

impl Context<'_> {
    /// The 16 lanes of position `n` (a neighbour: never in the class being updated).
    #[inline(always)]
    fn lanes(&self, n: usize) -> &[u8] {
        let at = n * LANES;
        if at < self.lo { &self.before[at..at + LANES] } else { &self.after[at - self.hi..at - self.hi + LANES] }
    }
}

crate::simd::vectorized!(
    /// The `live` sites of one word (positions `pos0..`) for 16 chains: `word` holds their
    /// bytes, `[site][lane]`, and is updated in place.
    fn update_word(ctx: &Context, pos0: usize, live: usize, bits: &LaneCounters, word: &mut [u8]) {
        let d = ctx.rules.max_degree as i32;
        let metropolis = ctx.rules.update == Update::Metropolis;
        for s in 0..live {
            let p = pos0 + s;
            let mut m = [0i32; LANES];
            for &n in &ctx.rules.neighbours[ctx.rules.offsets[p] as usize..ctx.rules.offsets[p + 1] as usize] {
                let row = ctx.lanes(n as usize);
                for l in 0..LANES {
                    m[l] += 2 * row[l] as i32 - 1;
                }
            }
            let cur = &mut word[s * LANES..(s + 1) * LANES];
            for l in 0..LANES {
                let top24 = bits[s][l] >> 8;
                let current = cur[l] as i32;
                let index = if metropolis { current * (2 * d + 1) + m[l] + d } else { m[l] + d };
                let t = ctx.table[index as usize & (MAX_TABLE - 1)];
                let hit = (top24 < t) as u8;
                cur[l] = if metropolis { cur[l] ^ hit } else { hit };
            }
        }
    }
);
