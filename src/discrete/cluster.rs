//! Cluster updates for ferromagnetic Ising and Potts models (CPU): Swendsen–Wang (Swendsen &
//! Wang 1987) and Wolff (1989), through the Fortuin–Kasteleyn bonds: an edge joining two sites
//! in the same state is bonded with probability 1 - exp(-beta J') (J' = 2J for Ising spins, J
//! for Potts labels), and a cluster of bonded sites takes a new state as a whole.
//!
//! Valid for couplings J >= 0 without fields (a field or a negative coupling makes the bond
//! rule wrong), so [`check`] refuses other models.
//!
//! Randomness in step t of chain c: edge k (the k-th edge i < j in site order, [`Bonds`])
//! draws Philox counter (c, 2t, Cluster, k / 4), lane k % 4, for both moves (Wolff tests an
//! edge at most once: from the cluster's side, while the other end still has the old label);
//! Swendsen–Wang's cluster with smallest site r draws its label at (c, 2t + 1, Cluster, r / 4),
//! lane r % 4; Wolff's seed site and new label at (c, 2t + 1, Cluster, 2^32 - 1). Which sites
//! form a cluster therefore does not depend on the order they are found in, and the GPU twin
//! (`shaders/discrete/cluster.wgsl`, [`gpu`]) gives the same states bit for bit.

pub mod gpu;

use super::SpinModel;
use super::rules::ONE;
use crate::rng::{Stream, key, philox4x32_10};
use crate::{Error, Result};
use rayon::prelude::*;

/// Which cluster move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cluster {
    /// Every cluster of the bond configuration gets a uniformly random label.
    SwendsenWang,
    /// One cluster grown from a random site changes to another label.
    Wolff,
}

/// Refuses models cluster updates would sample wrongly, naming why.
pub fn check(model: &SpinModel) -> Result<()> {
    if let Some(c) = model.graph.couplings.iter().find(|&&c| c < 0.0) {
        return Err(Error::invalid(
            "sampler",
            format!(
                "cluster updates need ferromagnetic couplings (J >= 0); this model has J = {c}: use gibbs or metropolis"
            ),
        ));
    }
    if model.field.iter().any(|&h| h != 0.0) {
        return Err(Error::invalid("sampler", "cluster updates need zero fields; use gibbs or metropolis"));
    }
    if model.beta.is_infinite() {
        return Err(Error::invalid("sampler", "cluster updates need a finite beta"));
    }
    Ok(())
}

/// The undirected edges of a model's graph, numbered as the random draws are.
pub struct Bonds {
    /// Edge k's sites (i < j): the edges of site 0 in adjacency order, then site 1's, ...
    pub ends: Vec<[u32; 2]>,
    /// Edge k is bonded (its sites sharing a label) when its 24-bit draw is below this.
    pub thresholds: Vec<u32>,
    /// The edge of every adjacency entry (both directions of an edge name the same one).
    pub of_entry: Vec<u32>,
}

impl Bonds {
    pub fn new(model: &SpinModel) -> Bonds {
        let g = &model.graph;
        let scale = if model.q == 2 { 2.0 } else { 1.0 };
        let threshold = |c: f32| ((1.0 - (-(scale * model.beta as f64 * c as f64)).exp()) * ONE).round() as u32;
        let (mut ends, mut thresholds) = (Vec::new(), Vec::new());
        let mut of_entry = vec![u32::MAX; g.neighbours.len()];
        let mut numbered = std::collections::HashMap::new();
        for i in 0..g.sites {
            for k in g.offsets[i] as usize..g.offsets[i + 1] as usize {
                let j = g.neighbours[k];
                if j as usize > i {
                    numbered.insert((i as u32, j), ends.len() as u32);
                    of_entry[k] = ends.len() as u32;
                    ends.push([i as u32, j]);
                    thresholds.push(threshold(g.couplings[k]));
                } else {
                    // The edge was numbered when its smaller site was.
                    of_entry[k] = numbered[&(j, i as u32)];
                }
            }
        }
        Bonds { ends, thresholds, of_entry }
    }
}

fn lane(seed: u64, chain: u32, step: u32, draw: u32) -> [u32; 4] {
    philox4x32_10([chain, step, Stream::Cluster as u32, draw], key(seed))
}

/// Edge `e`'s 24-bit bond draw in step t of `chain`.
fn bond_draw(seed: u64, chain: u32, t: u32, e: u32) -> u32 {
    lane(seed, chain, 2 * t, e / 4)[(e % 4) as usize] >> 8
}

/// A new label for a cluster now labelled `old`: Ising flips; Potts draws uniformly among the
/// others (Wolff) or among all (Swendsen–Wang).
fn relabel(q: u32, old: u8, bits: u32, others_only: bool) -> u8 {
    let top = (bits >> 8) as u64;
    if others_only {
        ((old as u64 + 1 + ((top * (q as u64 - 1)) >> 24)) % q as u64) as u8
    } else {
        ((top * q as u64) >> 24) as u8
    }
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        let up = parent[parent[i as usize] as usize];
        parent[i as usize] = up;
        i = up;
    }
    i
}

/// One Swendsen–Wang step of one chain (bytes in site order).
fn swendsen_wang(model: &SpinModel, bonds: &Bonds, state: &mut [u8], seed: u64, chain: u32, t: u32) {
    let mut parent: Vec<u32> = (0..model.sites() as u32).collect();
    let mut bits = [0u32; 4];
    for (e, (&[i, j], &thr)) in bonds.ends.iter().zip(&bonds.thresholds).enumerate() {
        if e % 4 == 0 {
            bits = lane(seed, chain, 2 * t, e as u32 / 4);
        }
        if state[i as usize] == state[j as usize] && bits[e % 4] >> 8 < thr {
            let (a, b) = (find(&mut parent, i), find(&mut parent, j));
            // The smaller index is the root, so a cluster's root is its smallest site.
            let (lo, hi) = (a.min(b), a.max(b));
            parent[hi as usize] = lo;
        }
    }
    for i in 0..model.sites() as u32 {
        let root = find(&mut parent, i);
        if root == i {
            let b = lane(seed, chain, 2 * t + 1, i / 4)[(i % 4) as usize];
            state[i as usize] = relabel(model.q, state[i as usize], b, false);
        } else {
            state[i as usize] = state[root as usize];
        }
    }
}

/// One Wolff step of one chain; returns the cluster's size.
fn wolff(model: &SpinModel, bonds: &Bonds, state: &mut [u8], seed: u64, chain: u32, t: u32) -> usize {
    let g = &model.graph;
    let pick = lane(seed, chain, 2 * t + 1, u32::MAX);
    let start = ((pick[0] as u64 * g.sites as u64) >> 32) as usize;
    let old = state[start];
    let new = relabel(model.q, old, pick[1], true);
    let mut stack = vec![start];
    state[start] = new;
    let mut size = 1;
    while let Some(i) = stack.pop() {
        for k in g.offsets[i] as usize..g.offsets[i + 1] as usize {
            let j = g.neighbours[k] as usize;
            if state[j] != old {
                continue;
            }
            let e = bonds.of_entry[k];
            if bond_draw(seed, chain, t, e) < bonds.thresholds[e as usize] {
                state[j] = new;
                stack.push(j);
                size += 1;
            }
        }
    }
    size
}

/// Cluster steps for many chains (bytes in site order, one chain after another), chain k
/// being chain `first_chain + k` of the run.
pub struct ClusterChains {
    model: SpinModel,
    kind: Cluster,
    bonds: Bonds,
    seed: u64,
    first_chain: u32,
    states: Vec<u8>,
    steps_done: u32,
    /// Sites flipped over all Wolff steps (for the mean cluster size).
    pub flipped: u64,
}

impl ClusterChains {
    pub fn new(model: &SpinModel, kind: Cluster, initial: &[u8], seed: u64, first_chain: u32) -> Result<Self> {
        check(model)?;
        super::cpu::check_states(model, initial)?;
        Ok(ClusterChains {
            model: model.clone(),
            kind,
            bonds: Bonds::new(model),
            seed,
            first_chain,
            states: initial.to_vec(),
            steps_done: 0,
            flipped: 0,
        })
    }

    pub fn run(&mut self, steps: u32) {
        let n = self.model.sites();
        let (model, bonds, seed, first) = (&self.model, &self.bonds, self.seed, self.first_chain);
        let (t0, kind) = (self.steps_done, self.kind);
        let flipped: u64 = self
            .states
            .par_chunks_mut(n)
            .enumerate()
            .map(|(c, state)| {
                let mut flipped = 0;
                for t in t0..t0 + steps {
                    match kind {
                        Cluster::SwendsenWang => swendsen_wang(model, bonds, state, seed, first + c as u32, t),
                        Cluster::Wolff => flipped += wolff(model, bonds, state, seed, first + c as u32, t) as u64,
                    }
                }
                flipped
            })
            .sum();
        self.flipped += flipped;
        self.steps_done += steps;
    }

    pub fn states(&self) -> &[u8] {
        &self.states
    }

    /// Replaces the states (the same number of chains), keeping the step count.
    pub fn set_states(&mut self, states: &[u8]) {
        self.states.copy_from_slice(states);
    }
}
