//! Judging a contrastive model ([`crate::train::contrastive`]) by what its features are for:
//! retrieval (is the second view of a point its nearest among N by the pair energy?) and the
//! linear probe (a softmax regression fitted on the features of labelled training points,
//! scored on held-out ones). The CLI reports each beside the same measure on the raw inputs,
//! the baseline learned features have to beat.

use crate::rng::{self, Stream};
use crate::train::contrastive::unit_rows;
use crate::{Error, Result};
use serde::Serialize;

/// Retrieval of each query's own pair among all N keys.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Retrieval {
    pub queries: usize,
    /// The share of queries whose pair is the most similar key, and among the 5 most similar.
    pub top1: f64,
    pub top5: f64,
}

/// Retrieval by cosine similarity of features fa, fb [N, K]: query i is fa_i, its pair fb_i.
/// A key as similar as the pair counts against it (ties are misses).
pub fn retrieval(fa: &[f32], fb: &[f32], k: usize) -> Result<Retrieval> {
    let n = fa.len() / k.max(1);
    if k == 0 || n == 0 || fa.len() != n * k || fb.len() != fa.len() {
        return Err(Error::invalid(
            "retrieval",
            format!("features of {} and {} values in rows of {k}", fa.len(), fb.len()),
        ));
    }
    let (za, _) = unit_rows(fa, k);
    let (zb, _) = unit_rows(fb, k);
    // Similarities of a block of queries to every key at once, by sgemm.
    const BLOCK: usize = 256;
    let (mut top1, mut top5) = (0usize, 0usize);
    let mut sims = vec![0.0f32; BLOCK.min(n) * n];
    for (b, queries) in za.chunks(BLOCK * k).enumerate() {
        let rows = queries.len() / k;
        crate::nn::ops::gemm(rows, k, n, queries, (k, 1), &zb, (1, k), 0.0, &mut sims, (n, 1));
        for (r, row) in sims.chunks_exact(n).take(rows).enumerate() {
            let i = b * BLOCK + r;
            let own = row[i];
            let rank = row.iter().enumerate().filter(|&(j, &s)| j != i && s >= own).count();
            top1 += (rank == 0) as usize;
            top5 += (rank < 5) as usize;
        }
    }
    Ok(Retrieval { queries: n, top1: top1 as f64 / n as f64, top5: top5 as f64 / n as f64 })
}

/// Rows minus the mean row of `a` and `b` together: raw inputs compared by cosine similarity
/// of their deviations from the mean (the baseline retrieval), not of their raw values, which
/// the shared background dominates.
pub fn centred(a: &[f32], b: &[f32], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0.0f64; dim];
    for row in a.chunks_exact(dim).chain(b.chunks_exact(dim)) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
    }
    let rows = (a.len() + b.len()) / dim;
    let mean: Vec<f32> = mean.iter().map(|m| (m / rows as f64) as f32).collect();
    let sub = |x: &[f32]| x.chunks_exact(dim).flat_map(|r| r.iter().zip(&mean).map(|(v, m)| v - m)).collect();
    (sub(a), sub(b))
}

/// The linear probe's settings: epochs of minibatch Adam over the training features.
#[derive(Clone, Copy, Debug)]
pub struct ProbeSettings {
    pub epochs: u32,
    pub batch: usize,
    pub lr: f32,
    pub seed: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self { epochs: 10, batch: 256, lr: 1e-3, seed: 0 }
    }
}

/// A fitted probe's accuracy on its training points and on the held-out ones.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Probe {
    pub features: usize,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
}

/// Labelled points [n, dim] and their classes.
pub struct Labelled<'a> {
    pub x: &'a [f32],
    pub labels: &'a [u32],
}

/// A softmax regression on features standardised by the training set's mean and standard
/// deviation, fitted by minibatch Adam (rows shuffled per epoch by the seed), then scored.
pub fn linear_probe(train: Labelled, test: Labelled, dim: usize, classes: usize, s: ProbeSettings) -> Result<Probe> {
    let n = train.labels.len();
    let bad = |m: String| Error::invalid("linear probe", m);
    if dim == 0 || classes < 2 || n == 0 || train.x.len() != n * dim || test.x.len() != test.labels.len() * dim {
        return Err(bad(format!("{} training values for {n} labels of {dim} features", train.x.len())));
    }
    if let Some(&y) = train.labels.iter().chain(test.labels).find(|&&y| y as usize >= classes) {
        return Err(bad(format!("label {y} is not one of the {classes} classes")));
    }
    if s.batch == 0 || s.epochs == 0 {
        return Err(bad(format!("batch {} and epochs {} must be positive", s.batch, s.epochs)));
    }
    let (mut mean, mut sq) = (vec![0.0f64; dim], vec![0.0f64; dim]);
    for row in train.x.chunks_exact(dim) {
        for (i, &v) in row.iter().enumerate() {
            mean[i] += v as f64;
            sq[i] += (v as f64).powi(2);
        }
    }
    let scale: Vec<(f32, f32)> = (0..dim)
        .map(|i| {
            let m = mean[i] / n as f64;
            let std = (sq[i] / n as f64 - m * m).max(0.0).sqrt().max(1e-3);
            (m as f32, (1.0 / std) as f32)
        })
        .collect();
    let standard = |x: &[f32]| -> Vec<f32> {
        x.chunks_exact(dim).flat_map(|r| r.iter().zip(&scale).map(|(v, (m, inv))| (v - m) * inv)).collect()
    };
    let (xtr, xte) = (standard(train.x), standard(test.x));
    // Parameters: W [classes, dim] then the bias [classes]; Adam's moments alike.
    let np = classes * (dim + 1);
    let (mut p, mut m, mut v) = (vec![0.0f32; np], vec![0.0f32; np], vec![0.0f32; np]);
    let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut order: Vec<usize> = (0..n).collect();
    let mut t = 0i32;
    let (mut xb, mut logits, mut grad) = (Vec::new(), Vec::new(), vec![0.0f32; np]);
    for epoch in 0..s.epochs {
        // Fisher–Yates with counter-based uniforms: the same shuffle on every machine.
        for i in (1..n).rev() {
            let u = rng::uniform4(s.seed, i as u32, epoch, Stream::Batch, 0)[0];
            order.swap(i, ((u * (i + 1) as f32) as usize).min(i));
        }
        for rows in order.chunks(s.batch) {
            let b = rows.len();
            xb.clear();
            rows.iter().for_each(|&r| xb.extend_from_slice(&xtr[r * dim..(r + 1) * dim]));
            logits.resize(b * classes, 0.0);
            let (w, bias) = p.split_at(classes * dim);
            crate::nn::ops::linear_forward(&xb, w, Some(bias), b, dim, classes, &mut logits);
            for (f, &r) in logits.chunks_exact_mut(classes).zip(rows) {
                softmax_in_place(f);
                f[train.labels[r] as usize] -= 1.0;
                f.iter_mut().for_each(|g| *g /= b as f32);
            }
            grad.fill(0.0);
            let (dw, db) = grad.split_at_mut(classes * dim);
            crate::nn::ops::linear_backward_params(&xb, &logits, b, dim, classes, dw, Some(db));
            t += 1;
            let (c1, c2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
            for i in 0..np {
                m[i] = beta1 * m[i] + (1.0 - beta1) * grad[i];
                v[i] = beta2 * v[i] + (1.0 - beta2) * grad[i] * grad[i];
                p[i] -= s.lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            }
        }
    }
    let accuracy = |x: &[f32], labels: &[u32]| -> f64 {
        if labels.is_empty() {
            return f64::NAN;
        }
        let mut out = vec![0.0; labels.len() * classes];
        let (w, bias) = p.split_at(classes * dim);
        crate::nn::ops::linear_forward(x, w, Some(bias), labels.len(), dim, classes, &mut out);
        let hits = out.chunks_exact(classes).zip(labels).filter(|(f, y)| argmax(f) == **y as usize).count();
        hits as f64 / labels.len() as f64
    };
    Ok(Probe {
        features: dim,
        train_accuracy: accuracy(&xtr, train.labels),
        test_accuracy: accuracy(&xte, test.labels),
    })
}

fn softmax_in_place(f: &mut [f32]) {
    let max = f.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    f.iter_mut().for_each(|v| {
        *v = (*v - max).exp();
        sum += *v;
    });
    f.iter_mut().for_each(|v| *v /= sum);
}

/// The index of the largest value (the first one on ties).
fn argmax(f: &[f32]) -> usize {
    f.iter().enumerate().fold((0, f32::NEG_INFINITY), |m, (i, &v)| if v > m.1 { (i, v) } else { m }).0
}
