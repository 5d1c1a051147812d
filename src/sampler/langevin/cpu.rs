//! CPU twin of `shaders/langevin.wgsl`: the same steps in the same order with the same Philox
//! draws, parallel over chains with rayon.

use super::{LangevinConfig, LangevinKind, check_initial};
use crate::energy::Energy;
use crate::rng::{self, Stream};
use crate::sampler::{ChainSampler, ChainStats};
use crate::Result;
use rayon::prelude::*;

pub struct CpuLangevin {
    energy: Energy,
    config: LangevinConfig,
    dim: usize,
    state: Vec<f32>,
    accepted: Vec<u32>,
    frozen: Vec<bool>,
    energies: Vec<f32>,
    /// [slots, chains, dim]
    trace: Vec<f32>,
    steps_done: u32,
}

/// One chain's mutable view for a run.
struct Chain<'a> {
    index: usize,
    x: &'a mut [f32],
    accepted: &'a mut u32,
    frozen: &'a mut bool,
    energy: &'a mut f32,
}

fn is_finite_state(x: &[f32], g: &[f32], e: f32) -> bool {
    e.is_finite() && x.iter().all(|v| v.is_finite()) && g.iter().all(|v| v.is_finite())
}

impl CpuLangevin {
    pub fn new(energy: &Energy, config: LangevinConfig, initial: &[f32]) -> Result<Self> {
        config.validate()?;
        energy.validate()?;
        let dim = energy.dim();
        let chains = check_initial(initial, dim)?;
        let slots = config.trace_slots() as usize;
        Ok(Self {
            energy: energy.clone(),
            dim,
            state: initial.to_vec(),
            accepted: vec![0; chains],
            frozen: vec![false; chains],
            energies: vec![0.0; chains],
            trace: vec![0.0; slots * chains * dim],
            steps_done: 0,
            config,
        })
    }

    /// Runs `steps` steps of one chain; returns the states to record in the trace as
    /// (slot, state) pairs.
    fn run_chain(&self, c: Chain<'_>, steps: u32) -> Vec<(usize, Vec<f32>)> {
        let cfg = &self.config;
        let d = self.dim;
        let chain = cfg.chain_offset + c.index as u32;
        let (h, noise_scale) = (cfg.step_size, cfg.noise());
        let mut recorded = Vec::new();
        if *c.frozen {
            return recorded;
        }
        let mut g = vec![0.0f32; d];
        let mut e = self.energy.energy_grad(c.x, &mut g);
        if !is_finite_state(c.x, &g, e) {
            *c.frozen = true;
            return recorded;
        }
        let mut y = vec![0.0f32; d];
        let mut gy = vec![0.0f32; d];
        let mut noise = vec![0.0f32; d];
        let mut accepted = 0;
        for k in 0..steps {
            let step = self.steps_done + k;
            rng::fill_normals(cfg.seed, chain, step, Stream::ProposalNoise, &mut noise);
            match cfg.kind {
                LangevinKind::Ula => {
                    for i in 0..d {
                        let gi = match cfg.grad_clamp {
                            Some(cl) => g[i].clamp(-cl, cl),
                            None => g[i],
                        };
                        let v = c.x[i] - h * gi + noise_scale * noise[i];
                        y[i] = match cfg.box_clamp {
                            Some((lo, hi)) => v.clamp(lo, hi),
                            None => v,
                        };
                    }
                    let ey = self.energy.energy_grad(&y, &mut gy);
                    if !is_finite_state(&y, &gy, ey) {
                        *c.frozen = true;
                        break;
                    }
                    c.x.copy_from_slice(&y);
                    std::mem::swap(&mut g, &mut gy);
                    e = ey;
                }
                LangevinKind::Mala => {
                    for i in 0..d {
                        y[i] = c.x[i] - h * g[i] + noise_scale * noise[i];
                    }
                    let ey = self.energy.energy_grad(&y, &mut gy);
                    let mut log_alpha = -1.0e30f32;
                    if is_finite_state(&y, &gy, ey) {
                        let (mut forward, mut backward) = (0.0f32, 0.0f32);
                        for i in 0..d {
                            let f = y[i] - c.x[i] + h * g[i];
                            let b = c.x[i] - y[i] + h * gy[i];
                            forward += f * f;
                            backward += b * b;
                        }
                        log_alpha = e - ey + (forward - backward) / (4.0 * h);
                    }
                    let u = rng::uniform4(cfg.seed, chain, step, Stream::Accept, 0)[0];
                    if u.ln() <= log_alpha {
                        c.x.copy_from_slice(&y);
                        std::mem::swap(&mut g, &mut gy);
                        e = ey;
                        accepted += 1;
                    }
                }
            }
            if let Some(slot) = self.trace_slot(step) {
                recorded.push((slot, c.x.to_vec()));
            }
        }
        *c.accepted += accepted;
        *c.energy = e;
        recorded
    }

    /// The trace slot filled after global step `step`, as in the kernel's `record_trace`.
    fn trace_slot(&self, step: u32) -> Option<usize> {
        let every = self.config.trace_every;
        let done = step + 1;
        (every > 0 && done % every == 0 && done / every <= self.config.trace_slots()).then(|| (done / every - 1) as usize)
    }
}

impl ChainSampler for CpuLangevin {
    fn run(&mut self, steps: u32) -> Result<()> {
        let d = self.dim;
        let mut state = std::mem::take(&mut self.state);
        let mut accepted = std::mem::take(&mut self.accepted);
        let mut frozen = std::mem::take(&mut self.frozen);
        let mut energies = std::mem::take(&mut self.energies);
        let recorded: Vec<(usize, Vec<(usize, Vec<f32>)>)> = state
            .par_chunks_mut(d)
            .zip(accepted.par_iter_mut())
            .zip(frozen.par_iter_mut())
            .zip(energies.par_iter_mut())
            .enumerate()
            .map(|(index, (((x, accepted), frozen), energy))| {
                (index, self.run_chain(Chain { index, x, accepted, frozen, energy }, steps))
            })
            .collect();
        let chains = accepted.len();
        for (chain, slots) in recorded {
            for (slot, x) in slots {
                let at = (slot * chains + chain) * d;
                self.trace[at..at + d].copy_from_slice(&x);
            }
        }
        self.state = state;
        self.accepted = accepted;
        self.frozen = frozen;
        self.energies = energies;
        self.steps_done += steps;
        Ok(())
    }

    fn state(&self) -> Result<Vec<f32>> {
        Ok(self.state.clone())
    }

    fn stats(&self) -> Result<ChainStats> {
        Ok(ChainStats { accepted: self.accepted.clone(), frozen: self.frozen.clone(), energies: self.energies.clone() })
    }

    fn trace(&self) -> Result<Option<Vec<f32>>> {
        Ok((self.config.trace_every > 0).then(|| self.trace.clone()))
    }

    fn chains(&self) -> usize {
        self.accepted.len()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn steps_done(&self) -> u32 {
        self.steps_done
    }

    fn dispatches_per_step(&self) -> f64 {
        0.0
    }

    fn executor(&self) -> String {
        format!("cpu: {} threads", rayon::current_num_threads())
    }
}
