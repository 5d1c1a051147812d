//! Single-site chains on the CPU: block Gibbs or Metropolis sweeps over the colour classes, the
//! twin of `shaders/discrete/spins.wgsl` ([`super::gpu::GpuSpins`]).
//!
//! Randomness: in sweep t, the word w of chain c (four sites of one class) draws Philox counter
//! (c, t, Gibbs, w), one 32-bit lane per site; Potts Metropolis draws its accept test at
//! (c, t, Accept, w). Chains are a pure function of (seed, chain index).

use super::SpinModel;
use super::graph::Layout;
use super::rules::{Rules, Update};
use crate::rng::{Stream, key, philox4x32_10};
use crate::{Error, Result};
use rayon::prelude::*;

/// Many chains of one model, stored in the colour-major layout.
pub struct CpuSpins {
    pub(crate) rules: Rules,
    pub(crate) layout: Layout,
    chains: usize,
    seed: u64,
    first_chain: u32,
    /// `chains` x `layout.words`.
    words: Vec<u32>,
    sweeps_done: u32,
}

/// Checks initial states (bytes in site order, whole chains, each below q).
pub(crate) fn check_states(model: &SpinModel, states: &[u8]) -> Result<usize> {
    let n = model.sites();
    if states.is_empty() || states.len() % n != 0 {
        return Err(Error::invalid(
            "initial states",
            format!("{} values are not whole chains of {n} sites", states.len()),
        ));
    }
    if let Some(i) = states.iter().position(|&s| s as u32 >= model.q) {
        return Err(Error::invalid(
            "initial states",
            format!("chain {}, site {} holds {}: the model has {} states per site", i / n, i % n, states[i], model.q),
        ));
    }
    Ok(states.len() / n)
}

impl CpuSpins {
    /// Chains starting from `initial` (bytes in site order, one chain after another); chain k
    /// is chain `first_chain + k` of the run for its random numbers.
    pub fn new(model: &SpinModel, update: Update, initial: &[u8], seed: u64, first_chain: u32) -> Result<Self> {
        let chains = check_states(model, initial)?;
        let layout = Layout::new(&model.graph.colouring());
        let rules = Rules::new(model, &layout, update);
        let words = layout.pack(initial);
        Ok(CpuSpins { rules, layout, chains, seed, first_chain, words, sweeps_done: 0 })
    }

    /// `sweeps` sweeps: every colour class once, in colour order.
    pub fn run(&mut self, sweeps: u32) {
        let w = self.layout.words;
        for _ in 0..sweeps {
            let t = self.sweeps_done;
            for &(first, count, class_sites) in &self.layout.classes {
                let (first, count) = (first as usize, count as usize);
                // New words of this class, computed from the current state (no site of the
                // class reads another), then written back.
                let rules = &self.rules;
                let (seed, first_chain) = (self.seed, self.first_chain);
                let words = &self.words;
                let fresh: Vec<u32> = (0..self.chains * count)
                    .into_par_iter()
                    .with_min_len(256)
                    .map(|item| {
                        let (c, k) = (item / count, item % count);
                        let chain = &words[c * w..(c + 1) * w];
                        let word = first + k;
                        let ctr = [first_chain + c as u32, t, Stream::Gibbs as u32, word as u32];
                        let bits = philox4x32_10(ctr, key(seed));
                        let accept = if rules.q > 2 && rules.update == Update::Metropolis {
                            philox4x32_10([ctr[0], t, Stream::Accept as u32, word as u32], key(seed))
                        } else {
                            [0; 4]
                        };
                        let mut out = chain[word];
                        for lane in 0..4 {
                            if k * 4 + lane >= class_sites as usize {
                                break;
                            }
                            let current = (out >> (8 * lane)) as u8;
                            let new = rules.update_site(chain, word * 4 + lane, current, bits[lane], accept[lane]);
                            out = (out & !(0xff << (8 * lane))) | ((new as u32) << (8 * lane));
                        }
                        out
                    })
                    .collect();
                for (item, value) in fresh.into_iter().enumerate() {
                    let (c, k) = (item / count, item % count);
                    self.words[c * w + first + k] = value;
                }
            }
            self.sweeps_done += 1;
        }
    }

    /// The states, bytes in site order, one chain after another.
    pub fn states(&self) -> Vec<u8> {
        self.layout.unpack(&self.words)
    }
}
