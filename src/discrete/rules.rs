//! The single-site update rule both executors apply, and the tables that make it exact.
//!
//! When every edge has the same coupling J and every site the same field h (lattice models),
//! a site's update depends only on integer neighbour counts, so the host computes the accept
//! thresholds once, in f64, as 24-bit integers; a site then compares the top 24 bits of its
//! Philox word with a table entry, and the GPU and the CPU agree bit for bit. Potts heat-bath
//! draws from table weights summed in a fixed order (additions only, correctly rounded on both).
//! Otherwise ("float" rules) the local field is a sum of ±J_ij (additions only, so identical),
//! but its probability goes through exp(), which may round differently on the GPU: states can
//! then differ where a uniform falls between the two executors' probabilities (a tie).
//! At zero temperature (beta = inf) a spin takes the sign of its field (kept at a tie): exact.

use super::SpinModel;
use super::graph::{Graph, Layout};

/// Which single-site move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// Heat bath: draw the site from its conditional distribution.
    Gibbs,
    /// Metropolis: propose a flip (Ising) or another label (Potts), accept with min(1, e^-βΔE).
    Metropolis,
}

/// 2^24: thresholds are compared with the top 24 bits of a Philox word.
pub const ONE: f64 = 16_777_216.0;

/// The rule's constants and the position-space graph both executors read.
#[derive(Clone, Debug)]
pub struct Rules {
    pub update: Update,
    pub q: u32,
    /// Table-driven (bit-exact) rather than float.
    pub exact: bool,
    pub zero_temperature: bool,
    pub beta: f32,
    /// Largest degree: count tables are offset by it.
    pub max_degree: u32,
    /// Thresholds (u32) or Potts heat-bath weights (f32 bits).
    pub table: Vec<u32>,
    /// Position-space CSR: `offsets[p]..offsets[p + 1]` into `neighbours` (positions) and
    /// `couplings`, and `field[p]`; padding positions have no neighbours.
    pub offsets: Vec<u32>,
    pub neighbours: Vec<u32>,
    pub couplings: Vec<f32>,
    pub field: Vec<f32>,
}

fn threshold(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * ONE).round() as u32
}

impl Rules {
    pub fn new(model: &SpinModel, layout: &Layout, update: Update) -> Self {
        let g: &Graph = &model.graph;
        let d = g.max_degree() as i64;
        let zero_temperature = model.beta.is_infinite();
        let uniform_field = model.field.iter().all(|h| h.to_bits() == model.field[0].to_bits());
        let j = g.uniform_coupling().or(if g.neighbours.is_empty() { Some(0.0) } else { None });
        let exact = !zero_temperature && uniform_field && j.is_some();
        let (beta, j, h) = (model.beta as f64, j.unwrap_or(0.0) as f64, model.field[0] as f64);
        let table = match (exact, model.q, update) {
            (false, ..) => Vec::new(),
            (true, 2, Update::Gibbs) => {
                (-d..=d).map(|m| threshold(1.0 / (1.0 + (-2.0 * beta * (j * m as f64 + h)).exp()))).collect()
            }
            (true, 2, Update::Metropolis) => [-1.0, 1.0]
                .iter()
                .flat_map(|s| (-d..=d).map(move |m| threshold((-2.0 * beta * s * (j * m as f64 + h)).exp())))
                .collect(),
            // Weights of a label held by n neighbours, scaled so the largest is 1.
            (true, _, Update::Gibbs) => {
                let top = if j >= 0.0 { d } else { 0 } as f64;
                (0..=d).map(|n| ((beta * j * (n as f64 - top)).exp() as f32).to_bits()).collect()
            }
            (true, _, Update::Metropolis) => (-d..=d).map(|dn| threshold((beta * j * dn as f64).exp())).collect(),
        };
        let slots = layout.words * 4;
        let mut site_at = vec![u32::MAX; slots];
        for (site, &p) in layout.position.iter().enumerate() {
            site_at[p as usize] = site as u32;
        }
        let (mut offsets, mut neighbours, mut couplings, mut field) = (
            vec![0u32],
            Vec::with_capacity(g.neighbours.len()),
            Vec::with_capacity(g.neighbours.len()),
            vec![0.0; slots],
        );
        for (p, &site) in site_at.iter().enumerate() {
            if site != u32::MAX {
                for (n, c) in g.edges_of(site as usize) {
                    neighbours.push(layout.position[n]);
                    couplings.push(c);
                }
                field[p] = model.field[site as usize];
            }
            offsets.push(neighbours.len() as u32);
        }
        Rules {
            update,
            q: model.q,
            exact,
            zero_temperature,
            beta: model.beta,
            max_degree: d as u32,
            table,
            offsets,
            neighbours,
            couplings,
            field,
        }
    }

    /// The new byte of the site at position `p` of one chain (`words`, that chain's layout
    /// words) holding `current`, from its Philox word `bits` (and `accept_bits`, the accept
    /// test's word, for Potts Metropolis). The twin of `update_site` in
    /// shaders/discrete/spins.wgsl, step for step.
    #[inline]
    pub fn update_site(&self, words: &[u32], p: usize, current: u8, bits: u32, accept_bits: u32) -> u8 {
        let state = |n: u32| (words[(n >> 2) as usize] >> (8 * (n & 3))) as u8;
        let range = self.offsets[p] as usize..self.offsets[p + 1] as usize;
        let d = self.max_degree as i32;
        let top24 = bits >> 8;
        if self.q == 2 {
            if self.exact {
                let mut m = 0i32;
                for &n in &self.neighbours[range] {
                    m += 2 * state(n) as i32 - 1;
                }
                return match self.update {
                    Update::Gibbs => (top24 < self.table[(m + d) as usize]) as u8,
                    Update::Metropolis => {
                        let t = self.table[(current as i32 * (2 * d + 1) + m + d) as usize];
                        current ^ (top24 < t) as u8
                    }
                };
            }
            let mut acc = 0.0f32;
            for (&n, &c) in self.neighbours[range.clone()].iter().zip(&self.couplings[range]) {
                acc += if state(n) == 1 { c } else { -c };
            }
            let h = acc + self.field[p];
            if self.zero_temperature {
                return if h > 0.0 {
                    1
                } else if h < 0.0 {
                    0
                } else {
                    current
                };
            }
            let u = top24 as f32 * (1.0 / ONE as f32);
            return match self.update {
                Update::Gibbs => (u < 1.0 / (1.0 + (-2.0 * self.beta * h).exp())) as u8,
                Update::Metropolis => {
                    let s = if current == 1 { 1.0 } else { -1.0 };
                    current ^ (u < (-2.0 * self.beta * s * h).exp()) as u8
                }
            };
        }
        // Potts: scratch arrays sized for q (zeroing 256 labels per site would dominate).
        match self.q {
            0..=8 => self.potts_site::<8>(words, range, current, top24, accept_bits),
            9..=32 => self.potts_site::<32>(words, range, current, top24, accept_bits),
            _ => self.potts_site::<256>(words, range, current, top24, accept_bits),
        }
    }

    /// Potts update with per-label scratch of `N` >= q entries.
    #[inline]
    fn potts_site<const N: usize>(
        &self,
        words: &[u32],
        range: std::ops::Range<usize>,
        current: u8,
        top24: u32,
        accept_bits: u32,
    ) -> u8 {
        let state = |n: u32| (words[(n >> 2) as usize] >> (8 * (n & 3))) as u8;
        let d = self.max_degree as i32;
        // Per-label neighbour counts (exact) or coupling sums (float).
        let q = self.q as usize;
        let mut sums = [0.0f32; N];
        let mut counts = [0u32; N];
        for (&n, &c) in self.neighbours[range.clone()].iter().zip(&self.couplings[range]) {
            let k = state(n) as usize;
            counts[k] += 1;
            sums[k] += c;
        }
        match self.update {
            Update::Gibbs => {
                let mut w = [0.0f32; N];
                if self.exact {
                    for k in 0..q {
                        w[k] = f32::from_bits(self.table[counts[k] as usize]);
                    }
                } else {
                    let top = sums[..q].iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                    for k in 0..q {
                        w[k] = (self.beta * (sums[k] - top)).exp();
                    }
                }
                let mut total = 0.0f32;
                for k in 0..q {
                    total += w[k];
                }
                let x = top24 as f32 * (1.0 / ONE as f32) * total;
                let mut cum = 0.0f32;
                for k in 0..q - 1 {
                    cum += w[k];
                    if x < cum {
                        return k as u8;
                    }
                }
                (q - 1) as u8
            }
            Update::Metropolis => {
                let shift = 1 + ((top24 as u64 * (q as u64 - 1)) >> 24) as usize;
                let proposed = (current as usize + shift) % q;
                let a24 = accept_bits >> 8;
                let accept = if self.exact {
                    let dn = counts[proposed] as i32 - counts[current as usize] as i32;
                    a24 < self.table[(dn + d) as usize]
                } else {
                    let u = a24 as f32 * (1.0 / ONE as f32);
                    u < (self.beta * (sums[proposed] - sums[current as usize])).exp()
                };
                if accept { proposed as u8 } else { current }
            }
        }
    }
}
