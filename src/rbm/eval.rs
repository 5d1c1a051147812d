//! Executor-neutral evaluation: free energies, average log-likelihood (given log Z),
//! reconstruction error and pseudo-likelihood, and a factory for trainers.

use super::ais::{AisConfig, AisResult};
use super::train::{TrainConfig, TrainState, Trainer};
use super::{Rbm, Visible, cpu, gpu, logz};
use crate::gpu::GpuContext;
use crate::rng::{self, Stream};
use crate::{Error, Result};
use std::sync::Arc;

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
            Executor::Gpu(ctx) => Ok(gpu::GpuEval::new(ctx.clone())?.evaluate(rbm, data, Some(seed))?.1.unwrap_or_default()),
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

    /// Stochastic pseudo-likelihood as scikit-learn's `BernoulliRBM.score_samples` defines it:
    /// n_vis * log sigmoid(F(v~) - F(v)) with v~ = v with one unit flipped, the unit of row r
    /// chosen from Philox counter (r, 0, Accept, 0) of `seed`. Mean over rows.
    pub fn pseudo_likelihood(&self, rbm: &Rbm, data: &[f32], seed: u64) -> Result<f64> {
        if rbm.visible != Visible::Bernoulli {
            return Err(Error::invalid("pseudo-likelihood", "is defined here for binary (Bernoulli) visibles only"));
        }
        let nv = rbm.n_vis;
        let rows = rbm.check_rows(data, "data")?;
        let mut flipped = data.to_vec();
        for (r, row) in flipped.chunks_mut(nv).enumerate() {
            let u = rng::uniform4(seed, r as u32, 0, Stream::Accept, 0)[0];
            let i = ((u * nv as f32) as usize).min(nv - 1);
            row[i] = 1.0 - row[i];
        }
        let mut both = data.to_vec();
        both.extend_from_slice(&flipped);
        let f = self.free_energies(rbm, &both)?;
        let total: f64 = (0..rows).map(|r| -super::softplus_f64(f[r] as f64 - f[rows + r] as f64)).sum();
        Ok(nv as f64 * total / rows.max(1) as f64)
    }
}
