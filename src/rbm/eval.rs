//! Executor-neutral evaluation: free energies, average log-likelihood (given log Z), the default
//! log Z estimate (AIS from two bases and a reverse check), reconstruction error and
//! pseudo-likelihood, and a factory for trainers.

use super::ais::{self, AisConfig, AisReport, AisResult, Base};
use super::train::{TrainConfig, TrainState, Trainer};
use super::{Rbm, Visible, cpu, gpu, logz};
use crate::gpu::GpuContext;
use crate::rng::{self, Stream};
use crate::{Error, Result};
use std::sync::Arc;

/// Settings of [`Executor::log_z_ais`].
#[derive(Clone, Debug)]
pub struct LogZConfig {
    /// Runs, temperatures and seed of every AIS estimate.
    pub ais: AisConfig,
    /// Gibbs steps of the model's chains that start the reverse check when exact samples are
    /// out of reach; 0 leaves the reverse check out.
    pub chain_steps: u32,
}

/// Where the kernels run.
#[derive(Clone)]
pub enum Executor {
    Cpu,
    Gpu(Arc<GpuContext>),
}

impl Executor {
    pub fn describe(&self) -> String {
        match self {
            Executor::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
            Executor::Gpu(ctx) => format!("gpu: {}", ctx.describe()),
        }
    }

    pub fn trainer(&self, config: &TrainConfig, state: TrainState, data: &[f32]) -> Result<Box<dyn Trainer>> {
        Ok(match self {
            Executor::Cpu => Box::new(cpu::CpuTrainer::new(config, state, data)?),
            Executor::Gpu(ctx) => Box::new(gpu::GpuTrainer::new(ctx.clone(), config, state, data)?),
        })
    }

    /// Free energy of each row (f32).
    pub fn free_energies(&self, rbm: &Rbm, data: &[f32]) -> Result<Vec<f32>> {
        rbm.check_rows(data, "data")?;
        match self {
            Executor::Cpu => {
                rbm.check_finite()?;
                Ok(cpu::free_energies(rbm, data))
            }
            Executor::Gpu(ctx) => Ok(gpu::GpuEval::new(ctx.clone())?.evaluate(rbm, data, None)?.0),
        }
    }

    /// Each row's squared error against E[v | h], h ~ p(h | v) (half-step 0 of `seed`, chain =
    /// row index).
    pub fn recon_errors(&self, rbm: &Rbm, data: &[f32], seed: u64) -> Result<Vec<f32>> {
        let rows = rbm.check_rows(data, "data")?;
        match self {
            Executor::Cpu => {
                rbm.check_finite()?;
                let (mut ph, mut h) = (vec![0.0; rows * rbm.n_hid], vec![0.0; rows * rbm.n_hid]);
                let (mut pv, mut vs) = (vec![0.0; data.len()], vec![0.0; data.len()]);
                cpu::hidden_step(rbm, data, seed, 0, 0, &mut ph, &mut h);
                cpu::visible_step(rbm, &h, seed, 1, 0, &mut pv, &mut vs);
                Ok(cpu::recon_errors(data, &pv, rbm.n_vis))
            }
            Executor::Gpu(ctx) => {
                Ok(gpu::GpuEval::new(ctx.clone())?.evaluate(rbm, data, Some(seed))?.1.unwrap_or_default())
            }
        }
    }

    pub fn log_z_exact(&self, rbm: &Rbm) -> Result<f64> {
        match self {
            Executor::Cpu => logz::log_z_cpu(rbm),
            Executor::Gpu(ctx) => logz::log_z_gpu(ctx, rbm),
        }
    }

    pub fn ais(&self, rbm: &Rbm, base: &[f32], config: &AisConfig) -> Result<AisResult> {
        match self {
            Executor::Cpu => super::ais::ais_cpu(rbm, base, config),
            Executor::Gpu(ctx) => super::ais::ais_gpu(ctx, rbm, base, config),
        }
    }

    /// Reverse AIS from `samples` of the model (runs x n_vis), see [`ais::Direction::Reverse`].
    pub fn reverse_ais(&self, rbm: &Rbm, base: &[f32], config: &AisConfig, samples: &[f32]) -> Result<AisResult> {
        match self {
            Executor::Cpu => ais::reverse_ais_cpu(rbm, base, config, samples),
            Executor::Gpu(ctx) => ais::reverse_ais_gpu(ctx, rbm, base, config, samples),
        }
    }

    /// The visible states of `chains` block-Gibbs chains after `steps` steps from noise
    /// (Bernoulli(1/2), or N(0, 1) for Gaussian visibles; `Stream::Init` of `seed`).
    pub fn model_samples(&self, rbm: &Rbm, first: u32, chains: usize, steps: u32, seed: u64) -> Result<Vec<f32>> {
        let mut init = rng::initial_states(seed, first, chains, rbm.n_vis, 1.0);
        if rbm.visible == Visible::Bernoulli {
            init.iter_mut().for_each(|z| *z = (*z > 0.0) as u32 as f32);
        }
        match self {
            Executor::Cpu => {
                let mut g = cpu::CpuGibbs::new(rbm, &init, seed, first)?;
                g.run(steps);
                Ok(g.v)
            }
            Executor::Gpu(ctx) => {
                let mut g = gpu::GpuGibbs::new(ctx.clone(), rbm, &init, seed, first)?;
                g.run(steps)?;
                Ok(g.read()?.0)
            }
        }
    }

    /// The default log Z estimate, which a single AIS run set cannot silently flatter: forward
    /// AIS from the base-rate model of `data` (training rows) and from the uniform base, the
    /// larger estimate kept, and reverse AIS from samples of the model as a check from above —
    /// exact samples when the hidden layer has at most [`logz::MAX_EXACT_SAMPLE_HIDDEN`] units,
    /// else the states of `config.chain_steps`-step Gibbs chains from noise (an upper bound in
    /// expectation only once they have mixed). Each estimate, and the reverse check's start
    /// states, has its own seed derived from `config.ais.seed` (the base-rate one uses it as given).
    pub fn log_z_ais(&self, rbm: &Rbm, data: &[f32], config: &LogZConfig) -> Result<AisReport> {
        config.ais.validate()?;
        let seeded = |k: u64| config.ais.derived(k);
        let mut forward = Vec::new();
        for (k, b) in [Base::BaseRate, Base::Uniform].into_iter().enumerate() {
            forward.push((b, self.ais(rbm, &b.biases(data, rbm.n_vis, rbm.visible)?, &seeded(k as u64))?));
        }
        let reverse = if config.chain_steps == 0 {
            None
        } else {
            // The start states draw from a seed of their own: under the anneal's seed, the
            // anneal's transition k would reuse the uniforms of the chains' step k.
            let (c, start_seed) = (seeded(2), seeded(3).seed);
            let (from, samples) = if rbm.n_hid <= logz::MAX_EXACT_SAMPLE_HIDDEN {
                ("exact samples".to_string(), logz::exact_samples(rbm, c.first_run, c.runs, start_seed)?)
            } else {
                (
                    format!("{}-step Gibbs chains", config.chain_steps),
                    self.model_samples(rbm, c.first_run, c.runs, config.chain_steps, start_seed)?,
                )
            };
            Some((from, self.reverse_ais(rbm, &Base::Uniform.biases(data, rbm.n_vis, rbm.visible)?, &c, &samples)?))
        };
        ais::report(forward, reverse)
    }

    /// Mean log p(v) = -F(v) - log Z over the rows (accumulated in f64).
    pub fn mean_log_likelihood(&self, rbm: &Rbm, data: &[f32], log_z: f64) -> Result<f64> {
        let f = self.free_energies(rbm, data)?;
        if f.is_empty() {
            return Err(Error::invalid("data", "has no rows"));
        }
        Ok(-f.iter().map(|&x| x as f64).sum::<f64>() / f.len() as f64 - log_z)
    }

    pub fn mean_recon_error(&self, rbm: &Rbm, data: &[f32], seed: u64) -> Result<f64> {
        let e = self.recon_errors(rbm, data, seed)?;
        Ok(e.iter().map(|&x| x as f64).sum::<f64>() / e.len().max(1) as f64)
    }

    /// Stochastic pseudo-likelihood: n_vis x log p(v_i | v_-i) for one unit i per row, chosen
    /// from Philox counter (r, 0, Accept, 0) of `seed`; mean over rows. Binary visibles: as
    /// scikit-learn's `BernoulliRBM.score_samples`, log sigmoid(F(v~) - F(v)) with v~ = v with
    /// unit i flipped. Gaussian visibles: the log density of v_i given the rest (a mixture of
    /// unit-variance Gaussians over h, normalised by quadrature): a density, so it can be
    /// positive, and it is comparable between models of the same standardised data only.
    pub fn pseudo_likelihood(&self, rbm: &Rbm, data: &[f32], seed: u64) -> Result<f64> {
        let nv = rbm.n_vis;
        let rows = rbm.check_rows(data, "data")?;
        if rows == 0 {
            return Err(Error::invalid("data", "has no rows"));
        }
        let unit = |r: usize| {
            let u = rng::uniform4(seed, r as u32, 0, Stream::Accept, 0)[0];
            ((u * nv as f32) as usize).min(nv - 1)
        };
        let total: f64 = match rbm.visible {
            Visible::Bernoulli => {
                let mut flipped = data.to_vec();
                for (r, row) in flipped.chunks_mut(nv).enumerate() {
                    let i = unit(r);
                    row[i] = 1.0 - row[i];
                }
                let mut both = data.to_vec();
                both.extend_from_slice(&flipped);
                let f = self.free_energies(rbm, &both)?;
                (0..rows).map(|r| -super::softplus_f64(f[r] as f64 - f[rows + r] as f64)).sum()
            }
            Visible::Gaussian => {
                rbm.check_finite()?;
                use rayon::prelude::*;
                data.par_chunks(nv).enumerate().map(|(r, v)| gaussian_conditional_log_density(rbm, v, unit(r))).sum()
            }
        };
        Ok(nv as f64 * total / rows as f64)
    }
}

/// log p(v_i | v_-i) of a Gaussian-Bernoulli RBM in float64. As a function of t = v_i, exp(-F)
/// is exp(-t^2/2 + b_i t) prod_j (1 + exp(a_j + W_ji t)) with a_j the rest of unit j's input: a
/// mixture of N(b_i + W_:i.h, 1) over h. Its normaliser by the trapezoid rule with step 1/4 over
/// the span of the mixture's means +- 8 (for unit-variance components the rule's error is far
/// below f64 rounding).
fn gaussian_conditional_log_density(rbm: &Rbm, v: &[f32], i: usize) -> f64 {
    let (nv, w, b, c) = (rbm.n_vis, rbm.w(), rbm.b(), rbm.c());
    let col: Vec<f64> = (0..rbm.n_hid).map(|j| w[j * nv + i] as f64).collect();
    let rest: Vec<f64> = (0..rbm.n_hid)
        .map(|j| c[j] as f64 + (0..nv).filter(|&k| k != i).map(|k| w[j * nv + k] as f64 * v[k] as f64).sum::<f64>())
        .collect();
    let bi = b[i] as f64;
    let g = |t: f64| {
        -0.5 * t * t + bi * t + rest.iter().zip(&col).map(|(a, wj)| super::softplus_f64(a + wj * t)).sum::<f64>()
    };
    let lo = bi + col.iter().map(|x| x.min(0.0)).sum::<f64>() - 8.0;
    let hi = bi + col.iter().map(|x| x.max(0.0)).sum::<f64>() + 8.0;
    const STEP: f64 = 0.25;
    let grid: Vec<f64> = (0..=((hi - lo) / STEP).ceil() as usize).map(|k| g(lo + k as f64 * STEP)).collect();
    let m = grid.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let log_norm = m + (grid.iter().map(|x| (x - m).exp()).sum::<f64>() * STEP).ln();
    g(v[i] as f64) - log_norm
}
