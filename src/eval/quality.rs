//! Sample quality of an image model against real images, in the features of a classifier this
//! engine trained (not Inception: the figures compare models within this engine only).
//!
//! - Fréchet distance (Heusel et al. 2017) between Gaussians fitted to the two feature sets:
//!   |μa - μb|² + Tr(Ca + Cb - 2 (Ca^½ Cb Ca^½)^½), the square roots by a symmetric
//!   eigendecomposition (cyclic Jacobi) in f64.
//! - Kernel distance (KID, Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial
//!   kernel k(x, y) = (x·y / f + 1)³, averaged over random subsets, with its standard error.
//! - Nearest-neighbour distances to training images (memorisation) and the classifier's class
//!   histogram and confidence (mode coverage) are computed by the caller from [`features`].

use crate::nn::cpu::Tape;
use crate::nn::{Network, NetworkInternals};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use rayon::prelude::*;

/// Points per block of the feature pass (each block on one thread, with its own tape).
const BLOCK: usize = 64;

/// The classifier's penultimate features (the input of its last dense layer, [n, f]) and its
/// outputs ([n, K]) at xs ([n, d]).
pub fn features(net: &Network, xs: &[f32]) -> Result<(Vec<f32>, usize, Vec<f32>)> {
    let view = net.view();
    let d = view.input_dim();
    if d == 0 || !xs.len().is_multiple_of(d) {
        return Err(Error::invalid(
            "images",
            format!("{} values do not form rows of the network's {d} inputs", xs.len()),
        ));
    }
    let Some(last) = net.layers.iter().rposition(|l| matches!(l.kind, crate::nn::LayerKind::Linear { .. })) else {
        return Err(Error::invalid("classifier", "has no dense layer whose input could serve as features"));
    };
    let blocks: Vec<(Vec<f32>, Vec<f32>)> = xs
        .par_chunks(BLOCK * d)
        .map(|block| {
            let mut tape = Tape::default();
            view.forward_batch(block, block.len() / d, &mut tape);
            (view.tape_points(&tape, last), tape.outputs().to_vec())
        })
        .collect();
    let n = xs.len() / d;
    let width = blocks.first().map_or(0, |b| b.0.len() / (b.1.len() / net.outputs).max(1));
    let (mut feats, mut outs) = (Vec::with_capacity(n * width), Vec::with_capacity(n * net.outputs));
    for (f, o) in blocks {
        feats.extend(f);
        outs.extend(o);
    }
    Ok((feats, width, outs))
}

/// Mean [f] and covariance [f, f] (divided by n - 1) of rows [n, f].
fn mean_cov(x: &[f32], f: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / f;
    let mut mean = vec![0.0; f];
    x.chunks_exact(f).for_each(|r| r.iter().zip(&mut mean).for_each(|(v, m)| *m += *v as f64));
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0.0; f * f];
    for r in x.chunks_exact(f) {
        let c: Vec<f64> = r.iter().zip(&mean).map(|(v, m)| *v as f64 - m).collect();
        for i in 0..f {
            for j in 0..=i {
                cov[i * f + j] += c[i] * c[j];
            }
        }
    }
    let div = (n as f64 - 1.0).max(1.0);
    for i in 0..f {
        for j in 0..=i {
            cov[i * f + j] /= div;
            cov[j * f + i] = cov[i * f + j];
        }
    }
    (mean, cov)
}

/// Eigenvalues and eigenvectors (columns of v, row-major [f, f]) of a symmetric matrix, by
/// cyclic Jacobi rotations until the off-diagonal mass is negligible.
pub fn symmetric_eigen(a: &[f64], f: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; f * f];
    (0..f).for_each(|i| v[i * f + i] = 1.0);
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..f)
            .flat_map(|i| (0..f).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * f + j].powi(2))
            .sum();
        if off <= 1e-30 * total {
            break;
        }
        for p in 0..f {
            for q in p + 1..f {
                let apq = a[p * f + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * f + q] - a[p * f + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..f {
                    let (akp, akq) = (a[k * f + p], a[k * f + q]);
                    a[k * f + p] = c * akp - s * akq;
                    a[k * f + q] = s * akp + c * akq;
                }
                for k in 0..f {
                    let (apk, aqk) = (a[p * f + k], a[q * f + k]);
                    a[p * f + k] = c * apk - s * aqk;
                    a[q * f + k] = s * apk + c * aqk;
                }
                for k in 0..f {
                    let (vkp, vkq) = (v[k * f + p], v[k * f + q]);
                    v[k * f + p] = c * vkp - s * vkq;
                    v[k * f + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..f).map(|i| a[i * f + i]).collect(), v)
}

/// The symmetric square root of a symmetric positive semi-definite matrix (negative
/// eigenvalues from rounding count as 0).
fn sqrt_psd(a: &[f64], f: usize) -> Vec<f64> {
    let (values, v) = symmetric_eigen(a, f);
    let roots: Vec<f64> = values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let mut out = vec![0.0; f * f];
    for i in 0..f {
        for j in 0..f {
            out[i * f + j] = (0..f).map(|k| v[i * f + k] * roots[k] * v[j * f + k]).sum();
        }
    }
    out
}

fn matmul(a: &[f64], b: &[f64], f: usize) -> Vec<f64> {
    let mut out = vec![0.0; f * f];
    for i in 0..f {
        for k in 0..f {
            let aik = a[i * f + k];
            for j in 0..f {
                out[i * f + j] += aik * b[k * f + j];
            }
        }
    }
    out
}

/// The Fréchet distance between Gaussians fitted to the rows of `a` and `b` ([n, f] each).
pub fn frechet_distance(a: &[f32], b: &[f32], f: usize) -> Result<f64> {
    if f == 0 || a.len() < 2 * f || b.len() < 2 * f || !a.len().is_multiple_of(f) || !b.len().is_multiple_of(f) {
        return Err(Error::invalid("features", format!("need at least 2 rows of {f} in each set")));
    }
    let ((ma, ca), (mb, cb)) = (mean_cov(a, f), mean_cov(b, f));
    let root_a = sqrt_psd(&ca, f);
    let middle = matmul(&matmul(&root_a, &cb, f), &root_a, f);
    // Symmetrise against rounding before the eigendecomposition.
    let middle: Vec<f64> = (0..f * f).map(|k| 0.5 * (middle[k] + middle[(k % f) * f + k / f])).collect();
    let (values, _) = symmetric_eigen(&middle, f);
    let trace_root: f64 = values.iter().map(|&l| l.max(0.0).sqrt()).sum();
    let diff: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y).powi(2)).sum();
    let traces: f64 = (0..f).map(|i| ca[i * f + i] + cb[i * f + i]).sum();
    Ok((diff + traces - 2.0 * trace_root).max(0.0))
}

/// The cubic polynomial kernel of KID on f-dimensional features.
fn kernel(x: &[f32], y: &[f32], f: usize) -> f64 {
    let dot: f64 = x.iter().zip(y).map(|(a, b)| *a as f64 * *b as f64).sum();
    (dot / f as f64 + 1.0).powi(3)
}

/// The unbiased estimate of MMD² between the rows of `a` and `b` (Gretton et al. 2012, eq. 3):
/// the within-set sums leave out the diagonal.
pub fn mmd2_unbiased(a: &[f32], b: &[f32], f: usize) -> f64 {
    let (m, n) = (a.len() / f, b.len() / f);
    let within = |x: &[f32], k: usize| -> f64 {
        let rows: Vec<&[f32]> = x.chunks_exact(f).collect();
        let s: f64 = (0..k)
            .into_par_iter()
            .map(|i| (0..k).filter(|&j| j != i).map(|j| kernel(rows[i], rows[j], f)).sum::<f64>())
            .sum();
        s / (k as f64 * (k as f64 - 1.0))
    };
    let (ra, rb): (Vec<&[f32]>, Vec<&[f32]>) = (a.chunks_exact(f).collect(), b.chunks_exact(f).collect());
    let cross: f64 = (0..m).into_par_iter().map(|i| rb.iter().map(|y| kernel(ra[i], y, f)).sum::<f64>()).sum();
    within(a, m) + within(b, n) - 2.0 * cross / (m as f64 * n as f64)
}

/// KID: the mean of [`mmd2_unbiased`] over `subsets` random subsets of `size` rows of each set
/// (drawn without replacement within a subset, by Philox from `seed`), and its standard error
/// (the subsets' standard deviation over √subsets).
pub fn kid(a: &[f32], b: &[f32], f: usize, size: usize, subsets: usize, seed: u64) -> Result<(f64, f64)> {
    let (m, n) = (a.len() / f, b.len() / f);
    if size < 2 || subsets == 0 || size > m || size > n {
        return Err(Error::invalid(
            "KID subsets",
            format!("{subsets} subsets of {size} rows from sets of {m} and {n} (at least 2, at most the smaller set)"),
        ));
    }
    let pick = |rows: usize, set: &[f32], s: usize, which: u32| -> Vec<f32> {
        let mut order: Vec<usize> = (0..rows).collect();
        for i in 0..size {
            let u = rng::uniform4(seed, s as u32, which, Stream::Init, i as u32)[0];
            let j = i + ((u as f64 * (rows - i) as f64) as usize).min(rows - i - 1);
            order.swap(i, j);
        }
        order[..size].iter().flat_map(|&r| set[r * f..(r + 1) * f].iter().copied()).collect()
    };
    let values: Vec<f64> = (0..subsets).map(|s| mmd2_unbiased(&pick(m, a, s, 0), &pick(n, b, s, 1), f)).collect();
    let mean = values.iter().sum::<f64>() / subsets as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (subsets as f64 - 1.0).max(1.0);
    Ok((mean, (var / subsets as f64).sqrt()))
}

/// For each row of `queries` ([n, d]), the index of its nearest row of `reference` ([m, d]) and
/// the Euclidean distance to it.
pub fn nearest(queries: &[f32], reference: &[f32], d: usize) -> Vec<(usize, f32)> {
    queries
        .par_chunks_exact(d)
        .map(|q| {
            reference
                .chunks_exact(d)
                .enumerate()
                .map(|(j, r)| (j, q.iter().zip(r).map(|(a, b)| (a - b) * (a - b)).sum::<f32>()))
                .fold((0, f32::INFINITY), |best, c| if c.1 < best.1 { c } else { best })
        })
        .map(|(j, d2)| (j, d2.sqrt()))
        .collect()
}

/// The classifier's verdict on a set: how many rows it puts in each class, and its mean
/// confidence (the largest softmax probability).
/// The share of rows whose top class has a softmax probability of at least `threshold`: how
/// many samples a classifier calls recognisable (issue 27's target: ≥ 0.8 at 0.9).
pub fn confident_share(logits: &[f32], k: usize, threshold: f64) -> f64 {
    let rows = logits.len() / k;
    let confident = logits
        .chunks_exact(k)
        .filter(|f| {
            let m = f.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            1.0 / f.iter().map(|&v| ((v - m) as f64).exp()).sum::<f64>() >= threshold
        })
        .count();
    confident as f64 / rows.max(1) as f64
}

/// A caveat for samples the classifier is surer of than of real test images (share with
/// confidence >= 0.9) although they lie farther from the training images (median distance to
/// the nearest one, more than 1.5 times the test images'): classifiers are confident far from
/// their data, so then the share says nothing about recognisable samples.
pub fn confidence_caveat(sure_samples: f64, sure_test: f64, near_samples: f32, near_test: f32) -> Option<String> {
    (sure_samples > sure_test && near_samples > 1.5 * near_test).then(|| {
        format!(
            "the classifier is surer of the samples ({:.1} % with confidence >= 0.9) than of the test images \
             ({:.1} %), yet the samples lie farther from the training images (median distance {near_samples:.2} \
             against {near_test:.2}): confidence on inputs unlike the classifier's data is no evidence that they \
             are recognisable; judge them by the Fréchet distance and the pictures",
            100.0 * sure_samples,
            100.0 * sure_test
        )
    })
}

pub fn class_histogram(logits: &[f32], k: usize) -> (Vec<usize>, f64) {
    let mut counts = vec![0; k];
    let mut confidence = 0.0;
    for f in logits.chunks_exact(k) {
        let m = f.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let s: f64 = f.iter().map(|&v| ((v - m) as f64).exp()).sum();
        let best = f.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0;
        counts[best] += 1;
        confidence += 1.0 / s;
    }
    (counts, confidence / (logits.len() / k).max(1) as f64)
}
