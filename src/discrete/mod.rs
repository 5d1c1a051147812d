//! Discrete energy-based models: Ising and Potts models on lattices and graphs, fully visible
//! Boltzmann machines and Hopfield networks, sampled by block Gibbs over a graph colouring,
//! single-site Metropolis and (on the CPU) Swendsen–Wang and Wolff cluster updates.
//!
//! A state is one byte per site: an Ising spin s = 2b - 1 is stored as b in {0, 1} (a Boltzmann
//! machine's unit x is b itself), a Potts label as 0..q-1. Energies (p ∝ exp(-beta E)):
//! - Ising: E(s) = -sum_{i<j} J_ij s_i s_j - sum_i h_i s_i;
//! - Potts: E(σ) = -sum_{i<j} J_ij [σ_i = σ_j];
//! - Boltzmann machine (units x in {0, 1}): E(x) = -sum_{i<j} W_ij x_i x_j - sum_i b_i x_i,
//!   run as the Ising model with J = W/4, h_i = b_i/2 + sum_j W_ij/4 (E differs by a constant,
//!   added back when energies are reported);
//! - Hopfield: the Ising model with Hebbian couplings J = (1/N) sum_mu xi^mu xi^mu^T, zero
//!   diagonal, retrieval at zero temperature (beta = inf: a site takes the sign of its field).

pub mod cluster;
pub mod cpu;
pub mod exact;
pub mod gpu;
pub mod graph;
pub mod lanes;
pub mod observables;
pub mod rules;
pub mod spec;
pub mod tempering;

use crate::{Error, Result};
pub use graph::{Graph, Lattice, Layout};

/// How stored bytes read as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// Ising spins: byte b is s = 2b - 1.
    Spins,
    /// Boltzmann-machine units: byte b is x = b.
    Bits,
    /// Potts labels 0..q-1.
    Labels,
}

/// A discrete model at inverse temperature `beta`.
#[derive(Clone, Debug)]
pub struct SpinModel {
    /// The spec it was made from (for messages and provenance).
    pub name: String,
    /// States per site: 2 for Ising-type models, q for Potts.
    pub q: u32,
    pub graph: Graph,
    /// Ising fields h_i (all zero for Potts).
    pub field: Vec<f32>,
    /// Inverse temperature; `f32::INFINITY` is zero temperature.
    pub beta: f32,
    pub convention: Convention,
    /// Added to every reported energy (a Boltzmann machine's constant).
    pub energy_offset: f64,
    /// Stored patterns (rows of ±1), for a Hopfield network's overlaps.
    pub patterns: Option<Vec<Vec<i8>>>,
}

impl SpinModel {
    pub fn ising(name: &str, graph: Graph, field: Vec<f32>, beta: f32) -> Result<Self> {
        Self::new(name, 2, graph, field, beta, Convention::Spins)
    }

    pub fn potts(name: &str, q: u32, graph: Graph, beta: f32) -> Result<Self> {
        let field = vec![0.0; graph.sites];
        Self::new(name, q, graph, field, beta, Convention::Labels)
    }

    fn new(name: &str, q: u32, graph: Graph, field: Vec<f32>, beta: f32, convention: Convention) -> Result<Self> {
        if !(2..=256).contains(&q) {
            return Err(Error::invalid("q", format!("{q} states per site: need 2 to 256")));
        }
        if field.len() != graph.sites {
            return Err(Error::invalid("field", format!("{} values for {} sites", field.len(), graph.sites)));
        }
        if let Some(i) = field.iter().position(|h| !h.is_finite()) {
            return Err(Error::invalid("field", format!("site {i} has field {}", field[i])));
        }
        if beta.is_nan() || beta < 0.0 {
            return Err(Error::invalid("beta", format!("{beta}: need a number >= 0 (inf for zero temperature)")));
        }
        if beta.is_infinite() && q != 2 {
            return Err(Error::invalid("beta", "zero temperature (inf) is for Ising-type models only"));
        }
        Ok(SpinModel { name: name.to_string(), q, graph, field, beta, convention, energy_offset: 0.0, patterns: None })
    }

    pub fn sites(&self) -> usize {
        self.graph.sites
    }

    /// E of one configuration (bytes in site order), in f64.
    pub fn energy(&self, state: &[u8]) -> f64 {
        let g = &self.graph;
        let mut e = self.energy_offset;
        for i in 0..g.sites {
            for (j, c) in g.edges_of(i) {
                if j > i {
                    let pair = if self.q == 2 {
                        spin(state[i]) * spin(state[j])
                    } else {
                        (state[i] == state[j]) as i32 as f64
                    };
                    e -= c as f64 * pair;
                }
            }
            if self.q == 2 {
                e -= self.field[i] as f64 * spin(state[i]);
            }
        }
        e
    }

    /// The value a stored byte stands for under the model's convention.
    pub fn value(&self, b: u8) -> i8 {
        match self.convention {
            Convention::Spins => 2 * b as i8 - 1,
            Convention::Bits | Convention::Labels => b as i8,
        }
    }

    /// A stored byte from a value under the model's convention, or an error naming it.
    pub fn byte(&self, v: f32) -> Option<u8> {
        match self.convention {
            Convention::Spins if v == 1.0 => Some(1),
            Convention::Spins if v == -1.0 => Some(0),
            Convention::Bits if v == 0.0 || v == 1.0 => Some(v as u8),
            Convention::Labels if v >= 0.0 && v < self.q as f32 && v.fract() == 0.0 => Some(v as u8),
            _ => None,
        }
    }
}

/// An Ising spin from its byte.
#[inline]
pub fn spin(b: u8) -> f64 {
    2.0 * b as f64 - 1.0
}

/// Uniformly random initial states for `chains` chains (bytes in site order), a pure function
/// of (seed, chain): site i of chain c uses Philox counter (c, 0, Init, i / 4), lane i % 4.
pub fn random_states(seed: u64, first_chain: u32, chains: usize, sites: usize, q: u32) -> Vec<u8> {
    let mut out = vec![0u8; chains * sites];
    for (c, row) in out.chunks_exact_mut(sites).enumerate() {
        let chain = first_chain + c as u32;
        for (w, block) in row.chunks_mut(4).enumerate() {
            let bits =
                crate::rng::philox4x32_10([chain, 0, crate::rng::Stream::Init as u32, w as u32], crate::rng::key(seed));
            for (k, s) in block.iter_mut().enumerate() {
                *s = (((bits[k] >> 8) as u64 * q as u64) >> 24) as u8;
            }
        }
    }
    out
}
