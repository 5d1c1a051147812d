//! Parallel tempering for discrete models: replicas of every chain at inverse temperatures
//! beta * b_r on the sampler's ladder ([`crate::sampler::Tempering`], b_0 = 1), each advanced by
//! its own sweeps, with neighbour swaps every `swap_every` sweeps. Swap round k tries the pairs
//! (r, r + 1) with r = k mod 2, 4, ...; chain c's pair r accepts with probability
//! min(1, exp((beta_r - beta_{r+1}) (E_r - E_{r+1}))) against the uniform of Philox counter
//! (c, k, Swap, r). Replica r draws its sweeps' numbers under seed + r * 0x9E3779B97F4A7C15
//! (replica 0 under the run's seed, so one replica is the untempered run).

use super::SpinModel;
use super::cluster::ClusterChains;
use super::cluster::gpu::GpuClusterChains;
use super::cpu::CpuSpins;
use super::gpu::GpuSpins;
use crate::Result;
use crate::rng::{Stream, key, philox4x32_10, uniform};
use crate::sampler::Tempering;

/// The chains of one temperature, on whichever executor and move.
pub enum Replica {
    Cpu(CpuSpins),
    Gpu(GpuSpins),
    Cluster(ClusterChains),
    GpuCluster(GpuClusterChains),
}

impl Replica {
    pub fn run(&mut self, sweeps: u32) -> Result<()> {
        match self {
            Replica::Cpu(c) => c.run(sweeps),
            Replica::Gpu(g) => g.run(sweeps)?,
            Replica::Cluster(c) => c.run(sweeps),
            Replica::GpuCluster(g) => g.run(sweeps)?,
        }
        Ok(())
    }

    /// Bytes in site order, one chain after another.
    pub fn states(&self) -> Result<Vec<u8>> {
        Ok(match self {
            Replica::Cpu(c) => c.states(),
            Replica::Gpu(g) => g.states()?,
            Replica::Cluster(c) => c.states().to_vec(),
            Replica::GpuCluster(g) => g.states()?,
        })
    }

    pub fn set_states(&mut self, states: &[u8]) -> Result<()> {
        match self {
            Replica::Cpu(c) => c.set_states(states),
            Replica::Gpu(g) => g.set_states(states)?,
            Replica::Cluster(c) => c.set_states(states),
            Replica::GpuCluster(g) => g.set_states(states)?,
        }
        Ok(())
    }
}

/// The seed of replica `r`'s sweeps.
pub fn replica_seed(seed: u64, r: usize) -> u64 {
    seed.wrapping_add((r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Replicas of every chain on a temperature ladder, swapped between neighbours.
pub struct Tempered {
    replicas: Vec<Replica>,
    models: Vec<SpinModel>,
    swap_every: u32,
    /// The run's seed, for the swap uniforms.
    swap_key: [u32; 2],
    first_chain: u32,
    chains: usize,
    sweeps_done: u32,
    rounds: u32,
    /// Per neighbour pair: (accepted, attempted) swaps.
    pub swaps: Vec<(u64, u64)>,
}

impl Tempered {
    /// `make(model, seed)` builds one replica's chains (all starting from the same states).
    pub fn new(
        model: &SpinModel,
        ladder: &Tempering,
        seed: u64,
        first_chain: u32,
        chains: usize,
        mut make: impl FnMut(&SpinModel, u64) -> Result<Replica>,
    ) -> Result<Self> {
        ladder.validate()?;
        let models: Vec<SpinModel> = ladder
            .betas
            .iter()
            .map(|&b| {
                let mut m = model.clone();
                m.beta = model.beta * b;
                m
            })
            .collect();
        let replicas =
            models.iter().enumerate().map(|(r, m)| make(m, replica_seed(seed, r))).collect::<Result<Vec<_>>>()?;
        Ok(Tempered {
            swaps: vec![(0, 0); replicas.len() - 1],
            replicas,
            models,
            swap_every: ladder.swap_every,
            swap_key: key(seed),
            first_chain,
            chains,
            sweeps_done: 0,
            rounds: 0,
        })
    }

    /// `sweeps` sweeps of every replica, with a swap round after every `swap_every`-th.
    pub fn run(&mut self, sweeps: u32) -> Result<()> {
        let mut left = sweeps;
        while left > 0 {
            let to_swap = self.swap_every - self.sweeps_done % self.swap_every;
            let n = left.min(to_swap);
            for r in &mut self.replicas {
                r.run(n)?;
            }
            self.sweeps_done += n;
            left -= n;
            if n == to_swap {
                self.swap_round()?;
            }
        }
        Ok(())
    }

    fn swap_round(&mut self) -> Result<()> {
        let n = self.models[0].sites();
        let mut states: Vec<Vec<u8>> = self.replicas.iter().map(|r| r.states()).collect::<Result<_>>()?;
        let mut changed = vec![false; self.replicas.len()];
        let k = self.rounds;
        for r in (k as usize % 2..self.replicas.len() - 1).step_by(2) {
            let (b0, b1) = (self.models[r].beta as f64, self.models[r + 1].beta as f64);
            for c in 0..self.chains {
                let (e0, e1) = (
                    self.models[0].energy(&states[r][c * n..][..n]),
                    self.models[0].energy(&states[r + 1][c * n..][..n]),
                );
                let bits =
                    philox4x32_10([self.first_chain + c as u32, k, Stream::Swap as u32, r as u32], self.swap_key);
                self.swaps[r].1 += 1;
                if (uniform(bits[0]) as f64) < ((b0 - b1) * (e0 - e1)).exp() {
                    let (lo, hi) = states.split_at_mut(r + 1);
                    lo[r][c * n..][..n].swap_with_slice(&mut hi[0][c * n..][..n]);
                    changed[r] = true;
                    changed[r + 1] = true;
                    self.swaps[r].0 += 1;
                }
            }
        }
        for (r, s) in states.iter().enumerate() {
            if changed[r] {
                self.replicas[r].set_states(s)?;
            }
        }
        self.rounds += 1;
        Ok(())
    }

    /// The temperature-1 replica's states.
    pub fn states(&self) -> Result<Vec<u8>> {
        self.replicas[0].states()
    }

    /// The swap acceptance rate of each neighbour pair.
    pub fn swap_rates(&self) -> Vec<f64> {
        self.swaps.iter().map(|&(a, n)| a as f64 / n.max(1) as f64).collect()
    }
}
