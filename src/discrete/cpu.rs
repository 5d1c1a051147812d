//! Single-site chains on the CPU: block Gibbs or Metropolis sweeps over the colour classes, the
//! twin of `shaders/discrete/spins.wgsl` ([`super::gpu::GpuSpins`]).
//!
//! Randomness: in sweep t, the word w of chain c (four sites of one class) draws Philox counter
//! (c, t, Gibbs, w), one 32-bit lane per site; Potts Metropolis draws its accept test at
//! (c, t, Accept, w). Chains are a pure function of (seed, chain index).
//!
//! Table-driven Ising rules run on [`super::lanes`] (16 chains per vector), everything else
//! chain by chain here; both compute the same bits.

use super::SpinModel;
use super::graph::Layout;
use super::lanes::{self, LaneChains};
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
    store: Store,
    sweeps_done: u32,
}

/// Where the states live.
enum Store {
    /// `chains` x `layout.words` words, chain by chain.
    Words(Vec<u32>),
    /// Blocks of 16 chains side by side.
    Lanes(LaneChains),
}

/// Checks initial states (bytes in site order, whole chains, each below q).
pub(crate) fn check_states(model: &SpinModel, states: &[u8]) -> Result<usize> {
    let n = model.sites();
    if states.is_empty() || !states.len().is_multiple_of(n) {
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
        let store = if lanes::eligible(&rules) {
            Store::Lanes(LaneChains::new(&layout, initial, chains))
        } else {
            Store::Words(layout.pack(initial))
        };
        Ok(CpuSpins { rules, layout, chains, seed, first_chain, store, sweeps_done: 0 })
    }

    /// Synchronous zero-temperature dynamics (a Hopfield network's parallel update): every site
    /// takes the sign of its field in the previous state at once. One class holding every site,
    /// updated from a snapshot, is exactly that. Only at zero temperature: at a finite one the
    /// parallel heat bath samples another distribution.
    pub fn synchronous(model: &SpinModel, initial: &[u8]) -> Result<Self> {
        if !model.beta.is_infinite() || model.q != 2 {
            return Err(Error::invalid(
                "sampler",
                "synchronous updates are zero-temperature dynamics of Ising-type models (beta=inf, e.g. a Hopfield network)",
            ));
        }
        let chains = check_states(model, initial)?;
        let layout = Layout::new(&vec![0; model.sites()]);
        let rules = Rules::new(model, &layout, Update::Gibbs);
        let store = Store::Words(layout.pack(initial));
        Ok(CpuSpins { rules, layout, chains, seed: 0, first_chain: 0, store, sweeps_done: 0 })
    }

    /// [`Self::new`] on the chain-by-chain path whatever the rule (to test the paths against
    /// each other).
    #[cfg(any(test, feature = "internals"))]
    pub fn chain_by_chain(
        model: &SpinModel,
        update: Update,
        initial: &[u8],
        seed: u64,
        first_chain: u32,
    ) -> Result<Self> {
        let mut s = Self::new(model, update, initial, seed, first_chain)?;
        s.store = Store::Words(s.layout.pack(initial));
        Ok(s)
    }

    /// `sweeps` sweeps: every colour class once, in colour order.
    pub fn run(&mut self, sweeps: u32) {
        for _ in 0..sweeps {
            let t = self.sweeps_done;
            match &mut self.store {
                Store::Lanes(chains) => chains.sweep(&self.layout, &self.rules, self.seed, self.first_chain, t),
                Store::Words(words) => {
                    sweep_words(words, self.chains, &self.layout, &self.rules, self.seed, self.first_chain, t)
                }
            }
            self.sweeps_done += 1;
        }
    }

    /// Replaces the states (bytes in site order, the same number of chains), keeping the
    /// sweep count (a tempering swap).
    pub fn set_states(&mut self, states: &[u8]) {
        self.store = match self.store {
            Store::Lanes(_) => Store::Lanes(LaneChains::new(&self.layout, states, self.chains)),
            Store::Words(_) => Store::Words(self.layout.pack(states)),
        };
    }

    /// The states, bytes in site order, one chain after another.
    pub fn states(&self) -> Vec<u8> {
        match &self.store {
            Store::Lanes(chains) => chains.states(&self.layout),
            Store::Words(words) => self.layout.unpack(words),
        }
    }
}

/// One sweep (number `t`) of chains stored word by word.
fn sweep_words(words: &mut [u32], chains: usize, layout: &Layout, rules: &Rules, seed: u64, first_chain: u32, t: u32) {
    let w = layout.words;
    for &(first, count, class_sites) in &layout.classes {
        let (first, count) = (first as usize, count as usize);
        // New words of this class, computed from the current state (no site of the
        // class reads another), then written back.
        let current = &*words;
        let fresh: Vec<u32> = (0..chains * count)
            .into_par_iter()
            .with_min_len(256)
            .map(|item| {
                let (c, k) = (item / count, item % count);
                let chain = &current[c * w..(c + 1) * w];
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
            words[c * w + first + k] = value;
        }
    }
}
