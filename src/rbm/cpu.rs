//! CPU twins of the RBM kernels (`shaders/rbm/rbm.wgsl`, `rbm_update.wgsl`, `rbm_eval.wgsl`): the
//! same formulas with the same Philox draws, equal to the kernels up to f32 summation order (a
//! unit whose probability lies within rounding of its uniform can flip). The layer products
//! exploit what the kernels cannot: binary states are mostly zeros, so each row adds only the
//! weight rows of its active units ([`accumulate_rows`]), falling back to sgemm for dense rows;
//! the weight statistics are GEMMs. Parallel over rows (or hidden units for the update) with
//! rayon. Also the CPU executor's Gibbs sampler and trainer.

use super::train::{Batch, Method, TrainConfig, TrainState, Trainer};
use super::{Rbm, Visible, sigmoid, softplus};
use crate::num::matmul::sgemm;
use crate::rng::{self, Stream};
use crate::{Error, Result};
use rayon::prelude::*;

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

/// W^T ([n_vis, n_hid]) from W ([n_hid, n_vis]): the layout in which the hidden step adds one
/// contiguous row per active visible unit.
pub fn transposed(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::new();
    transpose_into(w, rows, cols, &mut out);
    out
}

/// [`transposed`] into a reused buffer.
pub(crate) fn transpose_into(w: &[f32], rows: usize, cols: usize, out: &mut Vec<f32>) {
    // Tiles of 32 x 32 keep both the reads and the writes within cache lines.
    const TILE: usize = 32;
    out.resize(w.len(), 0.0);
    out.par_chunks_mut((TILE * rows).max(1)).enumerate().for_each(|(t, block)| {
        let c0 = t * TILE;
        for r0 in (0..rows).step_by(TILE) {
            for c in c0..(c0 + TILE).min(cols) {
                for r in r0..(r0 + TILE).min(rows) {
                    block[(c - c0) * rows + r] = w[r * cols + c];
                }
            }
        }
    });
}

/// `acc[r] = sum over k of x[r][k] * m[k]` for every row r of x ([rows, k_dim]), with m a
/// [k_dim, n] row-major matrix and acc [rows, n]. Each nonzero x[r][k] adds row k of m (an axpy
/// over n), in k order: sampled binary states and binarised data are mostly zeros, so this
/// costs nonzeros x n, not rows x k_dim x n. Dense inputs (Gaussian visibles) go through sgemm.
pub(crate) fn accumulate_rows(x: &[f32], k_dim: usize, m: &[f32], n: usize, acc: &mut [f32]) {
    let rows = x.len() / k_dim.max(1);
    let nonzeros = x.iter().filter(|&&v| v != 0.0).count();
    if nonzeros * 2 > x.len() {
        acc.fill(0.0);
        // Rows split over rayon's threads; each call of sgemm is single-threaded.
        let chunk = rows.div_ceil(rayon::current_num_threads()).max(1);
        acc.par_chunks_mut(chunk * n).zip(x.par_chunks(chunk * k_dim)).for_each(|(a, xs)| {
            let r = xs.len() / k_dim;
            sgemm(r, k_dim, n, 1.0, xs, (k_dim, 1), m, (n, 1), 0.0, a, (n, 1));
        });
        return;
    }
    acc.par_chunks_mut(ROW_BLOCK * n)
        .zip(x.par_chunks(ROW_BLOCK * k_dim))
        .for_each(|(a, xs)| add_rows(a, xs, m, k_dim));
}

/// Rows that [`accumulate_rows`] advances together: each row of m is read once per block and
/// reused from L1 by the block's rows (their accumulators fit in L1 too).
const ROW_BLOCK: usize = 8;

crate::simd::vectorized!(
    /// For a block of rows: acc[r] = sum of x[r][k] * (row k of m) over the nonzero x[r][k],
    /// in k order (acc [rows, n], x [rows, k_dim], m [k_dim, n]).
    fn add_rows(acc: &mut [f32], x: &[f32], m: &[f32], k_dim: usize) {
        let n = acc.len() / (x.len() / k_dim);
        acc.fill(0.0);
        for k in 0..k_dim {
            let mk = &m[k * n..(k + 1) * n];
            for (a, xr) in acc.chunks_exact_mut(n).zip(x.chunks_exact(k_dim)) {
                let v = xr[k];
                if v == 1.0 {
                    a.iter_mut().zip(mk).for_each(|(a, &w)| *a += w);
                } else if v != 0.0 {
                    a.iter_mut().zip(mk).for_each(|(a, &w)| *a += w * v);
                }
            }
        }
    }
);

/// h | v for every row of `src` ([rows, n_vis]): probabilities and samples ([rows, n_hid]).
pub fn hidden_step(
    rbm: &Rbm,
    src: &[f32],
    seed: u64,
    step: u32,
    chain_offset: u32,
    probs: &mut [f32],
    samples: &mut [f32],
) {
    let wt = transposed(rbm.w(), rbm.n_hid, rbm.n_vis);
    hidden_step_with(rbm, &wt, src, seed, step, chain_offset, probs, samples)
}

/// [`hidden_step`] given W^T ([`transposed`]), for callers that step many times per W.
#[allow(clippy::too_many_arguments)]
pub fn hidden_step_with(
    rbm: &Rbm,
    wt: &[f32],
    src: &[f32],
    seed: u64,
    step: u32,
    chain_offset: u32,
    probs: &mut [f32],
    samples: &mut [f32],
) {
    let (nv, nh, c) = (rbm.n_vis, rbm.n_hid, rbm.c());
    accumulate_rows(src, nv, wt, nh, probs);
    probs.par_chunks_mut(nh).zip(samples.par_chunks_mut(nh)).enumerate().for_each(|(r, (pr, sr))| {
        rng::fill_uniforms(seed, chain_offset + r as u32, step, Stream::Gibbs, sr);
        sample_bernoulli(pr, sr, c);
    });
}

crate::simd::vectorized!(
    /// Bernoulli units: `pre` (pre-activations without bias) becomes p = sigmoid(bias + pre),
    /// `sample` (uniforms on entry) becomes 1 where u < p, else 0.
    pub(crate) fn sample_bernoulli(pre: &mut [f32], sample: &mut [f32], bias: &[f32]) {
        for ((a, s), &b) in pre.iter_mut().zip(sample.iter_mut()).zip(bias) {
            let p = sigmoid(b + *a);
            *a = p;
            *s = (*s < p) as u32 as f32;
        }
    }
);

/// v | h for every row of `src` ([rows, n_hid]): means (probabilities for Bernoulli visibles)
/// and samples ([rows, n_vis]).
pub fn visible_step(
    rbm: &Rbm,
    src: &[f32],
    seed: u64,
    step: u32,
    chain_offset: u32,
    probs: &mut [f32],
    samples: &mut [f32],
) {
    let (nv, nh, b) = (rbm.n_vis, rbm.n_hid, rbm.b());
    accumulate_rows(src, nh, rbm.w(), nv, probs);
    probs.par_chunks_mut(nv).zip(samples.par_chunks_mut(nv)).enumerate().for_each(|(r, (pr, sr))| {
        let chain = chain_offset + r as u32;
        match rbm.visible {
            Visible::Gaussian => {
                rng::fill_normals(seed, chain, step, Stream::Gibbs, sr);
                for i in 0..nv {
                    let mean = b[i] + pr[i];
                    pr[i] = mean;
                    sr[i] += mean;
                }
            }
            Visible::Bernoulli => {
                rng::fill_uniforms(seed, chain, step, Stream::Gibbs, sr);
                sample_bernoulli(pr, sr, b);
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

/// Free energy of each row of `data`, in f32.
pub fn free_energies(rbm: &Rbm, data: &[f32]) -> Vec<f32> {
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (b, c) = (rbm.b(), rbm.c());
    // The hidden pre-activations W v of every row at once (sparse rows or a GEMM).
    let mut wv = vec![0.0f32; data.len() / nv * nh];
    accumulate_rows(data, nv, &transposed(rbm.w(), nh, nv), nh, &mut wv);
    data.par_chunks(nv)
        .zip(wv.par_chunks(nh))
        .map(|(v, wv)| {
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
                f -= softplus(c[j] + wv[j]);
            }
            f
        })
        .collect()
}

/// dF/dv of each row of `data` ([rows, n_vis]), with the free energy's formula read as a
/// function of real v: -b - W^T sigmoid(c + W v) (+ v for Gaussian visibles), in f32. For
/// binary visibles it is the slope of that smooth extension, not a property of p(v) on {0, 1}.
pub fn free_energy_grads(rbm: &Rbm, data: &[f32]) -> Vec<f32> {
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (b, c) = (rbm.b(), rbm.c());
    let mut p = vec![0.0f32; data.len() / nv * nh];
    accumulate_rows(data, nv, &transposed(rbm.w(), nh, nv), nh, &mut p);
    p.par_chunks_mut(nh).for_each(|p| p.iter_mut().zip(c).for_each(|(a, &cj)| *a = sigmoid(cj + *a)));
    let mut g = vec![0.0f32; data.len()];
    accumulate_rows(&p, nh, rbm.w(), nv, &mut g);
    let gaussian = rbm.visible == Visible::Gaussian;
    g.par_chunks_mut(nv).zip(data.par_chunks(nv)).for_each(|(g, v)| {
        for i in 0..nv {
            g[i] = -b[i] - g[i] + if gaussian { v[i] } else { 0.0 };
        }
    });
    g
}

/// Hyper-parameters of one update, as the kernel's `Params` carries them.
#[derive(Clone, Copy, Debug)]
pub struct UpdateParams {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// The CD/PCD update: positive statistics from (v_pos, h_pos), negative from (v_neg, h_neg),
/// averaged over rows, then momentum and weight decay (W only), in place.
#[allow(clippy::too_many_arguments)]
pub fn update(
    rbm: &mut Rbm,
    velocity: &mut [f32],
    v_pos: &[f32],
    h_pos: &[f32],
    v_neg: &[f32],
    h_neg: &[f32],
    u: UpdateParams,
    grad: &mut Vec<f32>,
) {
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let rows = v_pos.len() / nv;
    let neg_rows = v_neg.len() / nv;
    let (inv_pos, inv_neg) = (rows as f32, neg_rows as f32);
    let apply = |t: &mut f32, vel: &mut f32, grad: f32| {
        let v = u.momentum * *vel + u.lr * grad;
        *vel = v;
        *t += v;
    };
    let (w_theta, rest) = rbm.theta.split_at_mut(nh * nv);
    let (w_vel, rest_vel) = velocity.split_at_mut(nh * nv);
    // The W gradient H_pos^T V_pos / rows - H_neg^T V_neg / neg_rows as two GEMMs per block of
    // hidden units (H^T read through strides), then momentum and decay on the block.
    let block = nh.div_ceil(2 * rayon::current_num_threads()).max(1);
    grad.resize(nh * nv, 0.0);
    let blocks =
        w_theta.par_chunks_mut(block * nv).zip(w_vel.par_chunks_mut(block * nv)).zip(grad.par_chunks_mut(block * nv));
    blocks.enumerate().for_each(|(k, ((wt, wv), grad))| {
        let j0 = k * block;
        let m = wt.len() / nv;
        for (v, h, scale, beta) in [(v_pos, h_pos, 1.0 / inv_pos, 0.0), (v_neg, h_neg, -1.0 / inv_neg, 1.0)] {
            let n_rows = v.len() / nv;
            // H^T's block: rows j0.. of the [nh, n_rows] view of h ([n_rows, nh]).
            sgemm(m, n_rows, nv, scale, &h[j0..], (1, nh), v, (nv, 1), beta, grad, (nv, 1));
        }
        for ((t, vel), g) in wt.iter_mut().zip(wv.iter_mut()).zip(grad.iter()) {
            let decay = u.weight_decay * *t;
            apply(t, vel, g - decay);
        }
    });
    let (b_theta, c_theta) = rest.split_at_mut(nv);
    let (b_vel, c_vel) = rest_vel.split_at_mut(nv);
    for i in 0..nv {
        let pos = (0..rows).fold(0.0f32, |s, n| s + v_pos[n * nv + i]);
        let neg = (0..neg_rows).fold(0.0f32, |s, n| s + v_neg[n * nv + i]);
        apply(&mut b_theta[i], &mut b_vel[i], pos / inv_pos - neg / inv_neg);
    }
    for j in 0..nh {
        let pos = (0..rows).fold(0.0f32, |s, n| s + h_pos[n * nh + j]);
        let neg = (0..neg_rows).fold(0.0f32, |s, n| s + h_neg[n * nh + j]);
        apply(&mut c_theta[j], &mut c_vel[j], pos / inv_pos - neg / inv_neg);
    }
}

/// Block Gibbs chains on the CPU; one step is h ~ p(h | v) at half-step 2t then v ~ p(v | h)
/// at 2t + 1 (t counts steps from the start of the chains).
pub struct CpuGibbs {
    rbm: Rbm,
    /// W^T for the hidden half-steps.
    wt: Vec<f32>,
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
            wt: transposed(rbm.w(), rbm.n_hid, rbm.n_vis),
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
            hidden_step_with(
                &self.rbm,
                &self.wt,
                &self.v,
                self.seed,
                2 * t,
                self.chain_offset,
                &mut self.ph,
                &mut self.h,
            );
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
    scratch: Scratch,
}

/// The buffers of a batch, kept between batches so training does not allocate (megabytes per
/// batch otherwise, most of it fresh pages).
#[derive(Default)]
struct Scratch {
    wt: Vec<f32>,
    v0: Vec<f32>,
    ph0: Vec<f32>,
    h: Vec<f32>,
    pv: Vec<f32>,
    vk: Vec<f32>,
    phk: Vec<f32>,
    grad: Vec<f32>,
}

impl CpuTrainer {
    pub fn new(config: &TrainConfig, state: TrainState, data: &[f32]) -> Result<Self> {
        let rows = state.rbm.check_rows(data, "training data")?;
        config.validate()?;
        state.validate(config)?;
        let (order, errors) = ((0..rows as u32).collect(), vec![0.0; rows]);
        Ok(Self { config: config.clone(), state, data: data.to_vec(), order, errors, scratch: Scratch::default() })
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
        let chains = self.config.chains();
        let sc = &mut self.scratch;
        for batch in batches {
            let rows = batch.rows;
            sc.v0.clear();
            for &r in &self.order[batch.start..batch.start + rows] {
                sc.v0.extend_from_slice(&self.data[r as usize * nv..(r as usize + 1) * nv]);
            }
            let rbm = &self.state.rbm;
            transpose_into(rbm.w(), nh, nv, &mut sc.wt);
            let wt = &sc.wt;
            let hidden_step = |src: &[f32], step, probs: &mut [f32], samples: &mut [f32]| {
                hidden_step_with(rbm, wt, src, seed, step, 0, probs, samples)
            };
            let mut t = self.state.step;
            sc.ph0.resize(rows * nh, 0.0);
            sc.h.resize(rows.max(chains) * nh, 0.0);
            sc.pv.resize(rows.max(chains) * nv, 0.0);
            sc.vk.resize(rows.max(chains) * nv, 0.0);
            sc.phk.resize(rows.max(chains) * nh, 0.0);
            let (h, pv) = (&mut sc.h, &mut sc.pv);
            hidden_step(&sc.v0, t, &mut sc.ph0, &mut h[..rows * nh]);
            t += 1;
            let v_neg: &[f32] = match self.config.method {
                Method::Cd(k) => {
                    let (vk, phk) = (&mut sc.vk[..rows * nv], &mut sc.phk[..rows * nh]);
                    for s in 0..k {
                        visible_step(rbm, &h[..rows * nh], seed, t, 0, &mut pv[..rows * nv], vk);
                        t += 1;
                        if s == 0 {
                            self.errors[batch.start..batch.start + rows].copy_from_slice(&recon_errors(
                                &sc.v0,
                                &pv[..rows * nv],
                                nv,
                            ));
                        }
                        hidden_step(vk, t, phk, &mut h[..rows * nh]);
                        t += 1;
                    }
                    vk
                }
                Method::Pcd(k) => {
                    let persistent = self.state.chains.as_mut().expect("validated: PCD state has chains");
                    let nc = persistent.len() / nv;
                    // The reconstruction's samples are not used; vk is free until the update.
                    visible_step(rbm, &h[..rows * nh], seed, t, 0, &mut pv[..rows * nv], &mut sc.vk[..rows * nv]);
                    t += 1;
                    self.errors[batch.start..batch.start + rows].copy_from_slice(&recon_errors(
                        &sc.v0,
                        &pv[..rows * nv],
                        nv,
                    ));
                    let phk = &mut sc.phk[..nc * nh];
                    for _ in 0..k {
                        hidden_step(persistent, t, phk, &mut h[..nc * nh]);
                        t += 1;
                        visible_step(rbm, &h[..nc * nh], seed, t, 0, &mut pv[..nc * nv], persistent);
                        t += 1;
                    }
                    hidden_step(persistent, t, phk, &mut h[..nc * nh]);
                    t += 1;
                    persistent
                }
            };
            let neg_rows = v_neg.len() / nv;
            let u =
                UpdateParams { lr: batch.lr, momentum: self.config.momentum, weight_decay: self.config.weight_decay };
            update(
                &mut self.state.rbm,
                &mut self.state.velocity,
                &sc.v0,
                &sc.ph0,
                v_neg,
                &sc.phk[..neg_rows * nh],
                u,
                &mut sc.grad,
            );
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
}
