//! log Z of a DBM and likelihood bounds of DBMs and DBNs.
//!
//! - DBM log Z by AIS over {v, h2} with h1 summed out (Salakhutdinov & Hinton 2009): the
//!   unnormalised marginal is p*(v, h2) = exp(b.v + c2.h2) prod_j (1 + exp(a_j)), with
//!   a = c1 + W1 v + W2^T h2. Intermediate distributions scale every DBM parameter by beta and
//!   give v the base biases times (1 - beta): f_beta = (1 - beta) base.v +
//!   beta (b.v + c2.h2) + sum_j softplus(beta a_j). At beta = 0 the units are independent (v by the base biases,
//!   h1 and h2 uniform), so log Z_0 = sum_i softplus(base_i) + (n1 + n2) log 2. The transition
//!   at beta is one block Gibbs step of the scaled DBM (h1 | v, h2 at half-step 3k, then
//!   v | h1 at 3k + 1 and h2 | h1 at 3k + 2, run = Philox chain), which leaves the {v, h2}
//!   marginal invariant. Forward from two bases and reverse from samples of the model
//!   ([`log_z_report`]), combined as the RBM's estimates are ([`crate::rbm::ais::report`]). CPU
//!   executor.
//! - DBM likelihood: the variational lower bound with the factorial mean-field q
//!   ([`dbm_bound`]), log p(v) >= -E_q[E(v, h)] + H(q) - log Z.
//! - DBN likelihood (two hidden layers; Salakhutdinov & Murray 2008): log p(v) >=
//!   E_q[log p*(h1) + log p(v | h1) - log q(h1 | v)] - log Z_top with q(h1 | v) the recognition
//!   model and p*(h1) = exp(-F_top(h1)), estimated with `draws` samples of q per image
//!   ([`dbn_bound`]); log Z_top is the top RBM's, by the RBM's AIS.
//! - Exact log Z and log p*(v) by enumerating h1 for small models ([`log_z_exact_f64`]).

use super::Deep;
use super::cpu::{DbmGibbs, affine, bernoulli_log_prob, mean_field, noise_rows, sample_rows};
use crate::ais::{AisResult, Direction, summarize};
use crate::rbm::ais::{AisConfig, AisReport, Base};
use crate::rbm::cpu::{accumulate_rows, free_energies, transposed};
use crate::rbm::{Rbm, Visible, sigmoid, softplus, softplus_f64};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use rayon::prelude::*;

/// Where the runs start: draws from the base (forward) or states (v, h2) of the model, one row
/// per run (reverse).
#[derive(Clone, Copy)]
enum Start<'a> {
    Base,
    Model { v: &'a [f32], h2: &'a [f32] },
}

/// Forward AIS of a DBM's log Z from independent visibles with biases `base`.
pub fn ais_dbm(dbm: &Deep, base: &[f32], config: &AisConfig) -> Result<AisResult> {
    anneal_dbm(dbm, base, config, Start::Base)
}

/// Reverse AIS of a DBM's log Z (Grosse et al. 2015) from states `v`, `h2` of the model (runs
/// rows each), down the same path to the base: an upper bound in expectation when the states
/// are exact samples, and once Gibbs chains have mixed.
pub fn reverse_ais_dbm(dbm: &Deep, base: &[f32], config: &AisConfig, v: &[f32], h2: &[f32]) -> Result<AisResult> {
    let (l1, l2) = dbm.dbm_layers()?;
    let (nv, n2) = (l1.n_vis, l2.n_hid);
    if v.len() != config.runs * nv || h2.len() != config.runs * n2 {
        return Err(Error::invalid(
            "reverse AIS start states",
            format!(
                "need {} runs of {nv} visible and {n2} h2 units, got {} and {} values",
                config.runs,
                v.len(),
                h2.len()
            ),
        ));
    }
    anneal_dbm(dbm, base, config, Start::Model { v, h2 })
}

fn anneal_dbm(dbm: &Deep, base: &[f32], config: &AisConfig, start: Start) -> Result<AisResult> {
    let (l1, l2) = dbm.dbm_layers()?;
    config.validate()?;
    let (nv, n1, n2) = (l1.n_vis, l1.n_hid, l2.n_hid);
    if base.len() != nv || base.iter().any(|b| !b.is_finite()) {
        return Err(Error::invalid("AIS base biases", format!("need {nv} finite values, got {}", base.len())));
    }
    let mut betas = config.schedule.betas();
    let (runs, first, seed) = (config.runs, config.first_run, config.seed);
    let (wt1, wt2) = (transposed(l1.w(), n1, nv), transposed(l2.w(), n2, n1));
    let (b, c1, c2) = (l1.b(), l1.c(), l2.c());
    // Start: v by the base biases, h2 uniform (Init stream, steps 1 and 2).
    let draw = |n: usize, step: u32, bias: &(dyn Fn(usize) -> f32 + Sync)| {
        let mut out = vec![0.0f32; runs * n];
        out.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
            rng::fill_uniforms(seed, first + r as u32, step, Stream::Init, row);
            row.iter_mut().enumerate().for_each(|(i, u)| *u = (*u < sigmoid(bias(i))) as u32 as f32);
        });
        out
    };
    let (mut v, mut h2, direction) = match start {
        Start::Base => (draw(nv, 1, &|i| base[i]), draw(n2, 2, &|_| 0.0), Direction::Forward),
        Start::Model { v, h2 } => {
            // The same path from beta = 1 down: each step's weight is f_next / f_current.
            betas.reverse();
            (v.to_vec(), h2.to_vec(), Direction::Reverse)
        }
    };
    let (mut a, mut down, mut h1) = (vec![0.0f32; runs * n1], vec![0.0f32; runs * n1], vec![0.0f32; runs * n1]);
    let (mut pre_v, mut pre_h2) = (vec![0.0f32; runs * nv], vec![0.0f32; runs * n2]);
    let mut log_w = vec![0.0f64; runs];
    for k in 1..betas.len() {
        let (b0, b1) = (betas[k - 1], betas[k]);
        accumulate_rows(&v, nv, &wt1, n1, &mut a);
        accumulate_rows(&h2, n2, l2.w(), n1, &mut down);
        let step = 3 * k as u32;
        log_w
            .par_iter_mut()
            .zip(a.par_chunks_mut(n1))
            .zip(down.par_chunks(n1))
            .zip(h1.par_chunks_mut(n1))
            .zip(v.par_chunks(nv))
            .zip(h2.par_chunks(n2))
            .enumerate()
            .for_each(|(r, (((((lw, a), d), h1), v), h2))| {
                let mut lin = 0.0f32;
                for i in 0..nv {
                    lin += (b[i] - base[i]) * v[i];
                }
                for (&c, &h) in c2.iter().zip(h2) {
                    lin += c * h;
                }
                let mut sp = 0.0f64;
                for j in 0..n1 {
                    a[j] = (c1[j] + a[j]) + d[j];
                    sp += (softplus(b1 * a[j]) - softplus(b0 * a[j])) as f64;
                }
                *lw += (b1 - b0) as f64 * lin as f64 + sp;
                rng::fill_uniforms(seed, first + r as u32, step, Stream::Gibbs, h1);
                for j in 0..n1 {
                    h1[j] = (h1[j] < sigmoid(b1 * a[j])) as u32 as f32;
                }
            });
        accumulate_rows(&h1, n1, l1.w(), nv, &mut pre_v);
        accumulate_rows(&h1, n1, &wt2, n2, &mut pre_h2);
        v.par_chunks_mut(nv).zip(pre_v.par_chunks(nv)).enumerate().for_each(|(r, (v, p))| {
            rng::fill_uniforms(seed, first + r as u32, step + 1, Stream::Gibbs, v);
            for i in 0..nv {
                v[i] = (v[i] < sigmoid((1.0 - b1) * base[i] + b1 * (b[i] + p[i]))) as u32 as f32;
            }
        });
        h2.par_chunks_mut(n2).zip(pre_h2.par_chunks(n2)).enumerate().for_each(|(r, (h, p))| {
            rng::fill_uniforms(seed, first + r as u32, step + 2, Stream::Gibbs, h);
            for k in 0..n2 {
                h[k] = (h[k] < sigmoid(b1 * (c2[k] + p[k]))) as u32 as f32;
            }
        });
    }
    let log_z0 = base.iter().map(|&x| softplus_f64(x as f64)).sum::<f64>() + (n1 + n2) as f64 * std::f64::consts::LN_2;
    summarize(log_w, log_z0, direction)
}

/// AIS of a DBM's log Z from the base-rate model of `data` (training rows) and from the
/// uniform base (seed derived as the RBM's report derives it); the larger is the estimate, and
/// the report warns when the two disagree. With `reverse_gibbs` > 0, also the reverse check
/// from the uniform base: from exact samples when h1 has at most [`MAX_EXACT_SAMPLE_H1`] units,
/// else from the states of `reverse_gibbs`-step block Gibbs chains started at Bernoulli(1/2) h1.
pub fn log_z_report(dbm: &Deep, data: &[f32], config: &AisConfig, reverse_gibbs: u32) -> Result<AisReport> {
    let seeded = |k: u64| config.derived(k);
    let mut forward = Vec::new();
    for (k, base) in [Base::BaseRate, Base::Uniform].into_iter().enumerate() {
        forward.push((base, ais_dbm(dbm, &base.biases(data, dbm.n_vis(), Visible::Bernoulli)?, &seeded(k as u64))?));
    }
    let reverse = if reverse_gibbs == 0 {
        None
    } else {
        // The start states draw from a seed of their own (as the RBM's reverse check's do).
        let (c, start_seed) = (seeded(2), seeded(3).seed);
        let (from, v, h2) = if dbm.layers[0].n_hid <= MAX_EXACT_SAMPLE_H1 {
            let (v, h2) = exact_samples(dbm, c.runs, start_seed, c.first_run)?;
            ("exact samples".to_string(), v, h2)
        } else {
            let h1 = noise_rows(start_seed, c.first_run, c.runs, dbm.layers[0].n_hid);
            let mut gibbs = DbmGibbs::new(dbm, &h1, start_seed, c.first_run)?;
            gibbs.run(reverse_gibbs);
            (format!("{reverse_gibbs}-step Gibbs chains"), gibbs.chains.v, gibbs.chains.h2)
        };
        let base = Base::Uniform.biases(data, dbm.n_vis(), Visible::Bernoulli)?;
        Some((from, reverse_ais_dbm(dbm, &base, &c, &v, &h2)?))
    };
    crate::rbm::ais::report(forward, reverse)
}

/// Most h1 units [`exact_samples`] enumerates.
pub const MAX_EXACT_SAMPLE_H1: usize = 20;

/// `runs` exact samples (v, h2) of a DBM: h1 from its marginal by enumeration (Philox counter
/// (first + r, 0, Init, 0) of `seed`), then v and h2 given h1 (steps 1 and 2).
pub fn exact_samples(dbm: &Deep, runs: usize, seed: u64, first: u32) -> Result<(Vec<f32>, Vec<f32>)> {
    let (l1, l2) = dbm.dbm_layers()?;
    let (nv, n1, n2) = (l1.n_vis, l1.n_hid, l2.n_hid);
    if n1 > MAX_EXACT_SAMPLE_H1 {
        return Err(Error::invalid(
            "exact samples",
            format!("h1 has {n1} units; enumeration stops at {MAX_EXACT_SAMPLE_H1}"),
        ));
    }
    let terms: Vec<f64> = (0..1u64 << n1).into_par_iter().map(|bits| log_h1_marginal(l1, l2, bits)).collect();
    let log_z = log_sum_exp(&terms);
    let mut cdf = Vec::with_capacity(terms.len());
    let mut total = 0.0f64;
    for t in &terms {
        total += (t - log_z).exp();
        cdf.push(total);
    }
    let mut h1 = vec![0.0f32; runs * n1];
    for (r, row) in h1.chunks_mut(n1).enumerate() {
        let b = rng::philox4x32_10([first + r as u32, 0, Stream::Init as u32, 0], rng::key(seed));
        let u = (b[0] as f64 + b[1] as f64 / 4294967296.0) / 4294967296.0 * total;
        let bits = cdf.partition_point(|&c| c <= u).min(cdf.len() - 1) as u64;
        row.iter_mut().enumerate().for_each(|(j, h)| *h = ((bits >> j) & 1) as f32);
    }
    let mut pre_v = affine(&h1, n1, l1.w(), nv, l1.b());
    let mut pre_h2 = affine(&h1, n1, &transposed(l2.w(), n2, n1), n2, l2.c());
    let v = sample_rows(&mut pre_v, &vec![0.0; nv], seed, first, 1);
    let h2 = sample_rows(&mut pre_h2, &vec![0.0; n2], seed, first, 2);
    Ok((v, h2))
}

/// Most h1 units [`log_z_exact_f64`] enumerates.
pub const MAX_EXACT_H1: usize = 25;

/// Exact log Z of a DBM by enumerating h1 (v and h2 summed in closed form), in f64.
pub fn log_z_exact_f64(dbm: &Deep) -> Result<f64> {
    let (l1, l2) = dbm.dbm_layers()?;
    let n1 = l1.n_hid;
    if n1 > MAX_EXACT_H1 {
        return Err(Error::invalid("exact log Z", format!("h1 has {n1} units; enumeration stops at {MAX_EXACT_H1}")));
    }
    let terms: Vec<f64> = (0..1u64 << n1).into_par_iter().map(|bits| log_h1_marginal(l1, l2, bits)).collect();
    Ok(log_sum_exp(&terms))
}

/// log sum_{v, h2} exp(-E(v, h1, h2)) for the h1 given by the bits of `bits`.
fn log_h1_marginal(l1: &Rbm, l2: &Rbm, bits: u64) -> f64 {
    let (nv, n1) = (l1.n_vis, l1.n_hid);
    let h = |j: usize| (bits >> j) & 1 == 1;
    let mut s: f64 = (0..n1).filter(|&j| h(j)).map(|j| l1.c()[j] as f64).sum();
    for i in 0..nv {
        let a = l1.b()[i] as f64 + (0..n1).filter(|&j| h(j)).map(|j| l1.w()[j * nv + i] as f64).sum::<f64>();
        s += softplus_f64(a);
    }
    for k in 0..l2.n_hid {
        let a = l2.c()[k] as f64 + (0..n1).filter(|&j| h(j)).map(|j| l2.w()[k * n1 + j] as f64).sum::<f64>();
        s += softplus_f64(a);
    }
    s
}

/// log sum_{h1, h2} exp(-E(v, h1, h2)) for each row of `v`, by enumerating h1 (f64).
// Used by tests/dbm.rs (through the internals feature).
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn log_p_unnormalised_f64(dbm: &Deep, v: &[f32]) -> Result<Vec<f64>> {
    let (l1, l2) = dbm.dbm_layers()?;
    let (nv, n1) = (l1.n_vis, l1.n_hid);
    if n1 > MAX_EXACT_H1 {
        return Err(Error::invalid(
            "exact log p(v)",
            format!("h1 has {n1} units; enumeration stops at {MAX_EXACT_H1}"),
        ));
    }
    Ok(v.par_chunks(nv)
        .map(|v| {
            let terms: Vec<f64> = (0..1u64 << n1)
                .map(|bits| {
                    let h = |j: usize| (bits >> j) & 1 == 1;
                    let mut s: f64 = (0..nv).map(|i| l1.b()[i] as f64 * v[i] as f64).sum();
                    for j in (0..n1).filter(|&j| h(j)) {
                        s += l1.c()[j] as f64 + (0..nv).map(|i| l1.w()[j * nv + i] as f64 * v[i] as f64).sum::<f64>();
                    }
                    for k in 0..l2.n_hid {
                        let a = l2.c()[k] as f64
                            + (0..n1).filter(|&j| h(j)).map(|j| l2.w()[k * n1 + j] as f64).sum::<f64>();
                        s += softplus_f64(a);
                    }
                    s
                })
                .collect();
            log_sum_exp(&terms)
        })
        .collect())
}

pub fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|&t| (t - m).exp()).sum::<f64>().ln()
}

fn entropy(m: &[f32]) -> f64 {
    m.iter()
        .map(|&p| {
            let p = p as f64;
            let t = |x: f64| if x > 0.0 { -x * x.ln() } else { 0.0 };
            t(p) + t(1.0 - p)
        })
        .sum()
}

/// The mean-field variational lower bound on log p(v) of each row of `v` (f64), with
/// `iters` fixed-point sweeps: b.v + mu1.(c1 + W1 v) + mu2.(c2 + W2 mu1) + H(mu1) + H(mu2)
/// - log Z.
pub fn dbm_bound(dbm: &Deep, v: &[f32], iters: u32, log_z: f64) -> Result<Vec<f64>> {
    let (l1, l2) = dbm.dbm_layers()?;
    let (nv, n1, n2) = (l1.n_vis, l1.n_hid, l2.n_hid);
    l1.check_rows(v, "data")?;
    let (wt1, wt2) = (transposed(l1.w(), n1, nv), transposed(l2.w(), n2, n1));
    let (mu1, mu2) = mean_field(l1, &wt1, l2, &wt2, v, iters);
    let a1 = affine(v, nv, &wt1, n1, l1.c());
    let a2 = affine(&mu1, n1, &wt2, n2, l2.c());
    Ok((0..v.len() / nv)
        .into_par_iter()
        .map(|r| {
            let (m1, m2) = (&mu1[r * n1..(r + 1) * n1], &mu2[r * n2..(r + 1) * n2]);
            let vb: f64 = v[r * nv..(r + 1) * nv].iter().zip(l1.b()).map(|(&x, &b)| x as f64 * b as f64).sum();
            let e1: f64 = m1.iter().zip(&a1[r * n1..(r + 1) * n1]).map(|(&m, &a)| m as f64 * a as f64).sum();
            let e2: f64 = m2.iter().zip(&a2[r * n2..(r + 1) * n2]).map(|(&m, &a)| m as f64 * a as f64).sum();
            vb + e1 + e2 + entropy(m1) + entropy(m2) - log_z
        })
        .collect())
}

/// The DBN's variational lower bound on log p(v) of each row (two hidden layers), estimated
/// with `draws` samples h1 ~ q(h1 | v) per row (seeded, Philox chain = row x draws + draw):
/// the mean of log p*(h1) - log_z_top + log p(v | h1) - log q(h1 | v).
pub fn dbn_bound(dbn: &Deep, v: &[f32], draws: u32, seed: u64, log_z_top: f64) -> Result<Vec<f64>> {
    let [l1, top] = dbn.layers.as_slice() else {
        return Err(Error::invalid(
            "model",
            format!("the DBN bound needs two hidden layers, this DBN has {}", dbn.layers.len()),
        ));
    };
    if draws == 0 {
        return Err(Error::invalid("draws", "need at least one sample of q(h1 | v) per image"));
    }
    let (nv, n1) = (l1.n_vis, l1.n_hid);
    let rows = l1.check_rows(v, "data")?;
    let d = draws as usize;
    let a1 = affine(v, nv, &transposed(l1.w(), n1, nv), n1, l1.c());
    let mut h1 = vec![0.0f32; rows * d * n1];
    h1.par_chunks_mut(n1).enumerate().for_each(|(k, h)| {
        rng::fill_uniforms(seed, k as u32, 0, Stream::Gibbs, h);
        let a = &a1[(k / d) * n1..(k / d + 1) * n1];
        h.iter_mut().zip(a).for_each(|(u, &a)| *u = (*u < sigmoid(a)) as u32 as f32);
    });
    let f_top = free_energies(top, &h1);
    let av = affine(&h1, n1, l1.w(), nv, l1.b());
    Ok((0..rows)
        .into_par_iter()
        .map(|r| {
            let x = &v[r * nv..(r + 1) * nv];
            let a = &a1[r * n1..(r + 1) * n1];
            (0..d)
                .map(|s| {
                    let k = r * d + s;
                    let h = &h1[k * n1..(k + 1) * n1];
                    -(f_top[k] as f64) + bernoulli_log_prob(x, &av[k * nv..(k + 1) * nv]) - bernoulli_log_prob(h, a)
                })
                .sum::<f64>()
                / d as f64
                - log_z_top
        })
        .collect())
}

/// One draw of q(h1 | v) for each row of `v` (Philox chain = row, half-step 1): the data of
/// the DBN's top RBM, whose base-rate AIS base is fitted to them.
pub fn recognition_draws(dbn: &Deep, v: &[f32], seed: u64) -> Result<Vec<f32>> {
    let l1 = &dbn.layers[0];
    l1.check_rows(v, "data")?;
    let mut a = vec![0.0f32; v.len() / l1.n_vis * l1.n_hid];
    accumulate_rows(v, l1.n_vis, &transposed(l1.w(), l1.n_hid, l1.n_vis), l1.n_hid, &mut a);
    Ok(super::cpu::sample_rows(&mut a, l1.c(), seed, 0, 1))
}
