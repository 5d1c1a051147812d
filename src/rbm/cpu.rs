//! CPU twins of the RBM kernels (`shaders/rbm.wgsl`, `rbm_update.wgsl`, `rbm_eval.wgsl`): the
//! same arithmetic in the same order with the same Philox draws, parallel over rows (or over
//! hidden units for the update) with rayon. Also the CPU executor's Gibbs sampler and trainer.

use super::train::{Batch, Method, TrainConfig, TrainState, Trainer};
use super::{Rbm, Visible, sigmoid, softplus};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use rayon::prelude::*;

/// Rows processed together so a row of W is read once per block (the per-dot order is unchanged).
const ROW_BLOCK: usize = 8;

/// Dot product with four partial sums (lane i % 4) combined as (s0 + s1) + (s2 + s3): the
/// kernels' order.
#[inline]
pub fn dot4(w: &[f32], v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 4];
    let n4 = w.len() & !3;
    for (wc, vc) in w[..n4].chunks_exact(4).zip(v[..n4].chunks_exact(4)) {
        for k in 0..4 {
            acc[k] += wc[k] * vc[k];
        }
    }
    for i in n4..w.len() {
        acc[i - n4] += w[i] * v[i];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// The Gibbs uniform of unit `unit` of chain `chain` at half-step `step`.
#[inline]
pub fn gibbs_uniform(seed: u64, chain: u32, step: u32, unit: usize) -> f32 {
    rng::uniform4(seed, chain, step, Stream::Gibbs, (unit / 4) as u32)[unit % 4]
}

/// h | v for every row of `src` ([rows, n_vis]): probabilities and samples ([rows, n_hid]).
pub fn hidden_step(rbm: &Rbm, src: &[f32], seed: u64, step: u32, chain_offset: u32, probs: &mut [f32], samples: &mut [f32]) {
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (w, c) = (rbm.w(), rbm.c());
    probs
        .par_chunks_mut(nh * ROW_BLOCK)
        .zip(samples.par_chunks_mut(nh * ROW_BLOCK))
        .zip(src.par_chunks(nv * ROW_BLOCK))
        .enumerate()
        .for_each(|(block, ((pb, sb), vb))| {
            let rows = vb.len() / nv;
            let mut a = [0.0f32; ROW_BLOCK];
            for j in 0..nh {
                let wj = &w[j * nv..(j + 1) * nv];
                for r in 0..rows {
                    a[r] = c[j] + dot4(wj, &vb[r * nv..(r + 1) * nv]);
                }
                for r in 0..rows {
                    let p = sigmoid(a[r]);
                    let chain = chain_offset + (block * ROW_BLOCK + r) as u32;
                    pb[r * nh + j] = p;
                    sb[r * nh + j] = (gibbs_uniform(seed, chain, step, j) < p) as u32 as f32;
                }
            }
        });
}

/// v | h for every row of `src` ([rows, n_hid]): means (probabilities for Bernoulli visibles)
/// and samples ([rows, n_vis]).
pub fn visible_step(rbm: &Rbm, src: &[f32], seed: u64, step: u32, chain_offset: u32, probs: &mut [f32], samples: &mut [f32]) {
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (w, b) = (rbm.w(), rbm.b());
    probs
        .par_chunks_mut(nv)
        .zip(samples.par_chunks_mut(nv))
        .zip(src.par_chunks(nh))
        .enumerate()
        .for_each(|(r, ((pr, sr), h))| {
            // a_i accumulates W_ji h_j in j order, as the kernel does; a zero h_j adds exactly 0.
            pr.fill(0.0);
            for (j, &hj) in h.iter().enumerate() {
                if hj != 0.0 {
                    for (a, &wji) in pr.iter_mut().zip(&w[j * nv..(j + 1) * nv]) {
                        *a += wji * hj;
                    }
                }
            }
            let chain = chain_offset + r as u32;
            for (q, (pi, si)) in pr.chunks_mut(4).zip(sr.chunks_mut(4)).enumerate() {
                let i0 = q * 4;
                match rbm.visible {
                    Visible::Gaussian => {
                        let n = rng::normal4(seed, chain, step, Stream::Gibbs, q as u32);
                        for k in 0..pi.len() {
                            let mean = b[i0 + k] + pi[k];
                            pi[k] = mean;
                            si[k] = mean + n[k];
                        }
                    }
                    Visible::Bernoulli => {
                        let u = rng::uniform4(seed, chain, step, Stream::Gibbs, q as u32);
                        for k in 0..pi.len() {
                            let p = sigmoid(b[i0 + k] + pi[k]);
                            pi[k] = p;
                            si[k] = (u[k] < p) as u32 as f32;
                        }
                    }
                }
            }
        });
}

/// Squared error of each data row against its reconstruction mean.
pub fn recon_errors(data: &[f32], recon: &[f32], n_vis: usize) -> Vec<f32> {
    data.par_chunks(n_vis)
        .zip(recon.par_chunks(n_vis))
        .map(|(v, r)| {
            let mut err = 0.0f32;
            for i in 0..n_vis {
                let d = v[i] - r[i];
                err += d * d;
            }
            err
        })
        .collect()
}

/// Free energy of each row of `data`, in f32 as the kernel computes it.
pub fn free_energies(rbm: &Rbm, data: &[f32]) -> Vec<f32> {
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (w, b, c) = (rbm.w(), rbm.b(), rbm.c());
    data.par_chunks(nv)
        .map(|v| {
            let mut bv = 0.0f32;
            let mut vv = 0.0f32;
            for i in 0..nv {
                bv += b[i] * v[i];
                vv += v[i] * v[i];
            }
            let mut f = -bv;
            if rbm.visible == Visible::Gaussian {
                f += 0.5 * vv;
            }
            for j in 0..nh {
                f -= softplus(c[j] + dot4(&w[j * nv..(j + 1) * nv], v));
            }
            f
        })
        .collect()
}

/// Hyper-parameters of one update, as the kernel's `Params` carries them.
#[derive(Clone, Copy, Debug)]
pub struct UpdateParams {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// The CD/PCD update: positive statistics from (v_pos, h_pos), negative from (v_neg, h_neg),
/// sums over rows in index order, then momentum and weight decay (W only), in place.
pub fn update(rbm: &mut Rbm, velocity: &mut [f32], v_pos: &[f32], h_pos: &[f32], v_neg: &[f32], h_neg: &[f32], u: UpdateParams) {
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let rows = v_pos.len() / nv;
    let neg_rows = v_neg.len() / nv;
    let (inv_pos, inv_neg) = (rows as f32, neg_rows as f32);
    let apply = |t: &mut f32, vel: &mut f32, pos: f32, neg: f32, decay: f32| {
        let grad = pos / inv_pos - neg / inv_neg - decay * *t;
        let v = u.momentum * *vel + u.lr * grad;
        *vel = v;
        *t += v;
    };
    let (w_theta, rest) = rbm.theta.split_at_mut(nh * nv);
    let (w_vel, rest_vel) = velocity.split_at_mut(nh * nv);
    w_theta
        .par_chunks_mut(nv)
        .zip(w_vel.par_chunks_mut(nv))
        .enumerate()
        .for_each(|(j, (wt, wv))| {
            let mut pos = vec![0.0f32; nv];
            let mut neg = vec![0.0f32; nv];
            for n in 0..rows {
                let h = h_pos[n * nh + j];
                for (p, &v) in pos.iter_mut().zip(&v_pos[n * nv..(n + 1) * nv]) {
                    *p += h * v;
                }
            }
            for n in 0..neg_rows {
                let h = h_neg[n * nh + j];
                for (q, &v) in neg.iter_mut().zip(&v_neg[n * nv..(n + 1) * nv]) {
                    *q += h * v;
                }
            }
            for i in 0..nv {
                apply(&mut wt[i], &mut wv[i], pos[i], neg[i], u.weight_decay);
            }
        });
    let (b_theta, c_theta) = rest.split_at_mut(nv);
    let (b_vel, c_vel) = rest_vel.split_at_mut(nv);
    for i in 0..nv {
        let pos = (0..rows).fold(0.0f32, |s, n| s + v_pos[n * nv + i]);
        let neg = (0..neg_rows).fold(0.0f32, |s, n| s + v_neg[n * nv + i]);
        apply(&mut b_theta[i], &mut b_vel[i], pos, neg, 0.0);
    }
    for j in 0..nh {
        let pos = (0..rows).fold(0.0f32, |s, n| s + h_pos[n * nh + j]);
        let neg = (0..neg_rows).fold(0.0f32, |s, n| s + h_neg[n * nh + j]);
        apply(&mut c_theta[j], &mut c_vel[j], pos, neg, 0.0);
    }
}

/// Block Gibbs chains on the CPU; one step is h ~ p(h | v) at half-step 2t then v ~ p(v | h)
/// at 2t + 1 (t counts steps from the start of the chains).
pub struct CpuGibbs {
    rbm: Rbm,
    seed: u64,
    chain_offset: u32,
    pub v: Vec<f32>,
    pub h: Vec<f32>,
    pub ph: Vec<f32>,
    pub pv: Vec<f32>,
    steps_done: u32,
}

impl CpuGibbs {
    pub fn new(rbm: &Rbm, initial: &[f32], seed: u64, chain_offset: u32) -> Result<Self> {
        rbm.check_finite()?;
        let rows = rbm.check_rows(initial, "initial visible states")?;
        if rows == 0 {
            return Err(Error::invalid("chains", "need at least one chain"));
        }
        Ok(Self {
            rbm: rbm.clone(),
            seed,
            chain_offset,
            v: initial.to_vec(),
            h: vec![0.0; rows * rbm.n_hid],
            ph: vec![0.0; rows * rbm.n_hid],
            pv: vec![0.0; rows * rbm.n_vis],
            steps_done: 0,
        })
    }

    pub fn run(&mut self, steps: u32) {
        for _ in 0..steps {
            let t = self.steps_done;
            hidden_step(&self.rbm, &self.v, self.seed, 2 * t, self.chain_offset, &mut self.ph, &mut self.h);
            visible_step(&self.rbm, &self.h, self.seed, 2 * t + 1, self.chain_offset, &mut self.pv, &mut self.v);
            self.steps_done += 1;
        }
    }
}

/// CD-k / PCD-k training on the CPU executor.
pub struct CpuTrainer {
    config: TrainConfig,
    state: TrainState,
    data: Vec<f32>,
    order: Vec<u32>,
    errors: Vec<f32>,
}

impl CpuTrainer {
    pub fn new(config: &TrainConfig, state: TrainState, data: &[f32]) -> Result<Self> {
        let rows = state.rbm.check_rows(data, "training data")?;
        config.validate()?;
        state.validate(config)?;
        Ok(Self { config: config.clone(), state, data: data.to_vec(), order: (0..rows as u32).collect(), errors: vec![0.0; rows] })
    }
}

impl Trainer for CpuTrainer {
    fn set_order(&mut self, order: &[u32]) -> Result<()> {
        super::train::check_order(order, self.errors.len())?;
        self.order = order.to_vec();
        Ok(())
    }

    fn run(&mut self, batches: &[Batch]) -> Result<()> {
        let (nv, nh) = (self.state.rbm.n_vis, self.state.rbm.n_hid);
        let seed = self.config.seed;
        for batch in batches {
            let rows = batch.rows;
            let mut v0 = Vec::with_capacity(rows * nv);
            for &r in &self.order[batch.start..batch.start + rows] {
                v0.extend_from_slice(&self.data[r as usize * nv..(r as usize + 1) * nv]);
            }
            let rbm = &self.state.rbm;
            let mut t = self.state.step;
            let mut ph0 = vec![0.0; rows * nh];
            let mut h = vec![0.0; rows.max(self.config.chains()) * nh];
            let mut pv = vec![0.0; rows.max(self.config.chains()) * nv];
            hidden_step(rbm, &v0, seed, t, 0, &mut ph0, &mut h[..rows * nh]);
            t += 1;
            let (v_neg, ph_neg) = match self.config.method {
                Method::Cd(k) => {
                    let mut vk = vec![0.0; rows * nv];
                    let mut phk = vec![0.0; rows * nh];
                    for s in 0..k {
                        visible_step(rbm, &h[..rows * nh], seed, t, 0, &mut pv[..rows * nv], &mut vk);
                        t += 1;
                        if s == 0 {
                            self.errors[batch.start..batch.start + rows].copy_from_slice(&recon_errors(&v0, &pv[..rows * nv], nv));
                        }
                        hidden_step(rbm, &vk, seed, t, 0, &mut phk, &mut h[..rows * nh]);
                        t += 1;
                    }
                    (vk, phk)
                }
                Method::Pcd(k) => {
                    let chains = self.state.chains.as_mut().expect("validated: PCD state has chains");
                    let nc = chains.len() / nv;
                    let mut scratch = vec![0.0; rows * nv];
                    visible_step(rbm, &h[..rows * nh], seed, t, 0, &mut pv[..rows * nv], &mut scratch);
                    t += 1;
                    self.errors[batch.start..batch.start + rows].copy_from_slice(&recon_errors(&v0, &pv[..rows * nv], nv));
                    let mut phk = vec![0.0; nc * nh];
                    for _ in 0..k {
                        hidden_step(rbm, chains, seed, t, 0, &mut phk, &mut h[..nc * nh]);
                        t += 1;
                        visible_step(rbm, &h[..nc * nh], seed, t, 0, &mut pv[..nc * nv], chains);
                        t += 1;
                    }
                    hidden_step(rbm, chains, seed, t, 0, &mut phk, &mut h[..nc * nh]);
                    t += 1;
                    (chains.clone(), phk)
                }
            };
            let u = UpdateParams { lr: batch.lr, momentum: self.config.momentum, weight_decay: self.config.weight_decay };
            update(&mut self.state.rbm, &mut self.state.velocity, &v0, &ph0, &v_neg, &ph_neg, u);
            self.state.step = t;
        }
        Ok(())
    }

    fn recon_errors(&mut self) -> Result<Vec<f32>> {
        Ok(self.errors.clone())
    }

    fn state(&mut self) -> Result<TrainState> {
        Ok(self.state.clone())
    }

    fn executor(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }
}
