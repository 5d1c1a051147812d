//! CPU twins of the DBM's block Gibbs step (`shaders/rbm/rbm.wgsl` for v | h1 and h2 | h1,
//! `shaders/rbm/dbm.wgsl` for h1 | v, h2), the mean-field fixed point, and the DBN's
//! top-level Gibbs chain with its downward pass.
//!
//! Colouring: the layers {v, h2} are conditionally independent given h1, so one step is
//! v ~ p(v | h1) at half-step 3t, h2 ~ p(h2 | h1) at 3t + 1 (both from the same h1), then
//! h1 ~ p(h1 | v, h2) at 3t + 2, each unit drawing Philox counter (chain, half-step, Gibbs,
//! unit / 4) as the RBM kernels do.

use super::Deep;
use crate::rbm::cpu::{accumulate_rows, hidden_step_with, sample_bernoulli, transposed, visible_step};
use crate::rbm::{Rbm, sigmoid};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use rayon::prelude::*;

/// h1 | v, h2 for every row: p = sigmoid((c1 + W1 v) + W2^T h2), the twin of `dbm.wgsl`'s
/// `h1_step` (W1 v summed as the RBM hidden step sums it, W2^T h2 in index order).
#[allow(clippy::too_many_arguments)]
pub fn h1_step(
    l1: &Rbm,
    wt1: &[f32],
    l2: &Rbm,
    v: &[f32],
    h2: &[f32],
    seed: u64,
    step: u32,
    chain_offset: u32,
    probs: &mut [f32],
    samples: &mut [f32],
) {
    let n1 = l1.n_hid;
    let mut down = vec![0.0f32; probs.len()];
    accumulate_rows(v, l1.n_vis, wt1, n1, probs);
    accumulate_rows(h2, l2.n_hid, l2.w(), n1, &mut down);
    let c = l1.c();
    probs.par_chunks_mut(n1).zip(samples.par_chunks_mut(n1)).zip(down.par_chunks(n1)).enumerate().for_each(
        |(r, ((pr, sr), dr))| {
            rng::fill_uniforms(seed, chain_offset + r as u32, step, Stream::Gibbs, sr);
            for j in 0..n1 {
                let p = sigmoid((c[j] + pr[j]) + dr[j]);
                pr[j] = p;
                sr[j] = (sr[j] < p) as u32 as f32;
            }
        },
    );
}

/// The states of DBM chains (rows of each layer) and the last conditional probabilities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chains {
    pub v: Vec<f32>,
    pub h1: Vec<f32>,
    pub h2: Vec<f32>,
    pub pv: Vec<f32>,
    pub ph1: Vec<f32>,
    pub ph2: Vec<f32>,
}

impl Chains {
    /// `rows` chains with h1 given and v, h2 zero (the first step draws them from h1).
    pub fn from_h1(h1: &[f32], sizes: [usize; 3]) -> Self {
        let rows = h1.len() / sizes[1];
        let z = |n: usize| vec![0.0f32; rows * n];
        Self { v: z(sizes[0]), h1: h1.to_vec(), h2: z(sizes[2]), pv: z(sizes[0]), ph1: z(sizes[1]), ph2: z(sizes[2]) }
    }
}

/// One block Gibbs step t of every chain (half-steps 3t, 3t + 1, 3t + 2); `wt1`, `wt2` are the
/// layers' transposed weights.
#[allow(clippy::too_many_arguments)]
pub fn gibbs_step(l1: &Rbm, wt1: &[f32], l2: &Rbm, wt2: &[f32], ch: &mut Chains, seed: u64, t: u32, off: u32) {
    visible_step(l1, &ch.h1, seed, 3 * t, off, &mut ch.pv, &mut ch.v);
    hidden_step_with(l2, wt2, &ch.h1, seed, 3 * t + 1, off, &mut ch.ph2, &mut ch.h2);
    h1_step(l1, wt1, l2, &ch.v, &ch.h2, seed, 3 * t + 2, off, &mut ch.ph1, &mut ch.h1);
}

/// Bernoulli(1/2) rows for chains `first..` from the `Init` stream (both executors start here).
pub fn noise_rows(seed: u64, first: u32, rows: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * n];
    out.chunks_mut(n).enumerate().for_each(|(r, row)| {
        rng::fill_uniforms(seed, first + r as u32, 0, Stream::Init, row);
        row.iter_mut().for_each(|u| *u = (*u < 0.5) as u32 as f32);
    });
    out
}

/// Block Gibbs chains of a DBM on the CPU: the twin of [`super::gpu::GpuDbmGibbs`].
pub struct DbmGibbs {
    l1: Rbm,
    l2: Rbm,
    wt1: Vec<f32>,
    wt2: Vec<f32>,
    seed: u64,
    chain_offset: u32,
    pub chains: Chains,
    steps_done: u32,
}

impl DbmGibbs {
    /// Chains starting from the h1 rows `h1`.
    pub fn new(dbm: &Deep, h1: &[f32], seed: u64, chain_offset: u32) -> Result<Self> {
        let (l1, l2) = dbm.dbm_layers()?;
        let n1 = l1.n_hid;
        if h1.is_empty() || !h1.len().is_multiple_of(n1) {
            return Err(Error::invalid(
                "initial h1 states",
                format!("{} values are not whole rows of {n1} units", h1.len()),
            ));
        }
        Ok(Self {
            wt1: transposed(l1.w(), l1.n_hid, l1.n_vis),
            wt2: transposed(l2.w(), l2.n_hid, l2.n_vis),
            chains: Chains::from_h1(h1, [l1.n_vis, n1, l2.n_hid]),
            l1: l1.clone(),
            l2: l2.clone(),
            seed,
            chain_offset,
            steps_done: 0,
        })
    }

    pub fn run(&mut self, steps: u32) {
        for _ in 0..steps {
            let t = self.steps_done;
            gibbs_step(&self.l1, &self.wt1, &self.l2, &self.wt2, &mut self.chains, self.seed, t, self.chain_offset);
            self.steps_done += 1;
        }
    }
}

/// Inpainting: block Gibbs with the observed visibles clamped. `v` holds each row's start
/// (binary; its observed units keep their values throughout), `observed` marks the clamped
/// units (the layout of `v`). From h2 = 0 it draws h1 | v, h2 (half-step 0), then each of
/// `steps` steps t draws v | h1 on the holes (3t + 1), h2 | h1 (3t + 2) and h1 | v, h2
/// (3t + 3), row r being chain `first + r`. Returns E[v | h1] of the last h1 at the holes and
/// the observed values elsewhere: one chain's restoration, drawn as its conditional means.
pub fn inpaint(dbm: &Deep, v: &[f32], observed: &[bool], steps: u32, seed: u64, first: u32) -> Result<Vec<f32>> {
    let (l1, l2) = dbm.dbm_layers()?;
    let (nv, n1, n2) = (l1.n_vis, l1.n_hid, l2.n_hid);
    if v.len() != observed.len() || !v.len().is_multiple_of(nv) || v.iter().any(|&x| x != 0.0 && x != 1.0) {
        return Err(Error::invalid(
            "inpainting start",
            format!(
                "needs binary rows of {nv} units and a mask of the same length, got {} and {}",
                v.len(),
                observed.len()
            ),
        ));
    }
    let rows = v.len() / nv;
    let (wt1, wt2) = (transposed(l1.w(), n1, nv), transposed(l2.w(), n2, n1));
    let mut v = v.to_vec();
    let (mut h1, mut ph1) = (vec![0.0f32; rows * n1], vec![0.0f32; rows * n1]);
    let (mut h2, mut ph2) = (vec![0.0f32; rows * n2], vec![0.0f32; rows * n2]);
    let (mut pv, mut drawn) = (vec![0.0f32; rows * nv], vec![0.0f32; rows * nv]);
    h1_step(l1, &wt1, l2, &v, &h2, seed, 0, first, &mut ph1, &mut h1);
    for t in 0..steps {
        visible_step(l1, &h1, seed, 3 * t + 1, first, &mut pv, &mut drawn);
        for ((x, &d), &o) in v.iter_mut().zip(&drawn).zip(observed) {
            if !o {
                *x = d;
            }
        }
        hidden_step_with(l2, &wt2, &h1, seed, 3 * t + 2, first, &mut ph2, &mut h2);
        h1_step(l1, &wt1, l2, &v, &h2, seed, 3 * t + 3, first, &mut ph1, &mut h1);
    }
    visible_step(l1, &h1, seed, 3 * steps + 1, first, &mut pv, &mut drawn);
    Ok(pv.iter().zip(&v).zip(observed).map(|((&p, &x), &o)| if o { x } else { p }).collect())
}

/// The mean-field posterior q(h1) q(h2) of each row of `v` after `iters` fixed-point sweeps,
/// starting from mu2 = 0: mu1 = sigmoid(c1 + W1 v + W2^T mu2), then mu2 = sigmoid(c2 + W2 mu1).
pub fn mean_field(l1: &Rbm, wt1: &[f32], l2: &Rbm, wt2: &[f32], v: &[f32], iters: u32) -> (Vec<f32>, Vec<f32>) {
    let (nv, n1, n2) = (l1.n_vis, l1.n_hid, l2.n_hid);
    let rows = v.len() / nv;
    let mut w1v = vec![0.0f32; rows * n1];
    accumulate_rows(v, nv, wt1, n1, &mut w1v);
    let (mut mu1, mut mu2) = (vec![0.0f32; rows * n1], vec![0.0f32; rows * n2]);
    let mut down = vec![0.0f32; rows * n1];
    for it in 0..iters.max(1) {
        if it > 0 {
            accumulate_rows(&mu2, n2, l2.w(), n1, &mut down);
        }
        let c1 = l1.c();
        mu1.par_chunks_mut(n1).zip(w1v.par_chunks(n1)).zip(down.par_chunks(n1)).for_each(|((m, a), d)| {
            for j in 0..n1 {
                m[j] = sigmoid((c1[j] + a[j]) + d[j]);
            }
        });
        accumulate_rows(&mu1, n1, wt2, n2, &mut mu2);
        let c2 = l2.c();
        mu2.par_chunks_mut(n2).for_each(|m| m.iter_mut().zip(c2).for_each(|(x, &c)| *x = sigmoid(c + *x)));
    }
    (mu1, mu2)
}

/// The DBN's downward pass from top-RBM visible states `h` (rows of the layer below the top);
/// draws use half-steps `2 * steps + k` (after the top chain's), k counting layers down.
pub fn downward(dbn: &Deep, mut h: Vec<f32>, seed: u64, first: u32, steps: u32) -> Result<(Vec<f32>, Vec<f32>)> {
    let n_top = dbn.layers.len() - 1;
    let mut means = Vec::new();
    for (k, l) in dbn.layers[..n_top].iter().rev().enumerate() {
        let rows = h.len() / l.n_hid;
        let (mut p, mut s) = (vec![0.0f32; rows * l.n_vis], vec![0.0f32; rows * l.n_vis]);
        visible_step(l, &h, seed, 2 * steps + k as u32, first, &mut p, &mut s);
        h = s;
        means = p;
    }
    Ok((means, h))
}

/// Per-row factors for likelihood bounds: sum_j [x_j log p_j + (1 - x_j) log(1 - p_j)] with
/// p_j = sigmoid(a_j), i.e. x.a - softplus(a), in f64.
pub fn bernoulli_log_prob(x: &[f32], a: &[f32]) -> f64 {
    x.iter().zip(a).map(|(&x, &a)| x as f64 * a as f64 - crate::rbm::softplus_f64(a as f64)).sum()
}

/// Bias plus product for each row: out[r] = bias + rows of `m` ([k, n]) weighted by x[r].
pub fn affine(x: &[f32], k: usize, m: &[f32], n: usize, bias: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len() / k * n];
    accumulate_rows(x, k, m, n, &mut out);
    out.par_chunks_mut(n).for_each(|o| o.iter_mut().zip(bias).for_each(|(a, &b)| *a += b));
    out
}

/// Bernoulli draws for each row of probabilities-to-be (`pre`, pre-activations without bias;
/// becomes probabilities), chain `first + r`, half-step `step`.
pub fn sample_rows(pre: &mut [f32], bias: &[f32], seed: u64, first: u32, step: u32) -> Vec<f32> {
    let n = bias.len();
    let mut s = vec![0.0f32; pre.len()];
    pre.par_chunks_mut(n).zip(s.par_chunks_mut(n)).enumerate().for_each(|(r, (p, s))| {
        rng::fill_uniforms(seed, first + r as u32, step, Stream::Gibbs, s);
        sample_bernoulli(p, s, bias);
    });
    s
}
