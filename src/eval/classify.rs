//! A classifier's quality from its logits: accuracy, mean negative log-likelihood of the true
//! class, and the expected calibration error (Guo et al. 2017: confidence = the largest
//! softmax probability, equal-width bins on [0, 1], ECE = sum over bins of the bin's share
//! times |accuracy - mean confidence| in it).

use crate::{Error, Result};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassReport {
    pub inputs: usize,
    pub accuracy: f64,
    pub nll: f64,
    pub ece: f64,
    pub bins: usize,
}

/// Scores logits [n, k] against labels [n].
pub fn report(logits: &[f32], k: usize, labels: &[u32], bins: usize) -> Result<ClassReport> {
    let n = labels.len();
    if k < 2 || n == 0 || logits.len() != n * k || bins == 0 {
        return Err(Error::invalid(
            "classifier outputs",
            format!("{} logits for {n} labels of {k} classes in {bins} bins", logits.len()),
        ));
    }
    let (mut correct, mut nll) = (0usize, 0.0f64);
    let (mut bin_n, mut bin_hits, mut bin_conf) = (vec![0usize; bins], vec![0usize; bins], vec![0.0f64; bins]);
    for (f, &y) in logits.chunks_exact(k).zip(labels) {
        if y as usize >= k {
            return Err(Error::invalid("labels", format!("label {y} but the classifier has {k} classes")));
        }
        let m = f.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let s: f64 = f.iter().map(|&v| (v as f64 - m).exp()).sum();
        let (best, top) =
            f.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        let confidence = (top as f64 - m).exp() / s;
        let hit = best == y as usize;
        correct += hit as usize;
        nll += m + s.ln() - f[y as usize] as f64;
        let b = ((confidence * bins as f64) as usize).min(bins - 1);
        bin_n[b] += 1;
        bin_hits[b] += hit as usize;
        bin_conf[b] += confidence;
    }
    let ece = (0..bins)
        .filter(|&b| bin_n[b] > 0)
        .map(|b| {
            bin_n[b] as f64 / n as f64 * (bin_hits[b] as f64 / bin_n[b] as f64 - bin_conf[b] / bin_n[b] as f64).abs()
        })
        .sum();
    Ok(ClassReport { inputs: n, accuracy: correct as f64 / n as f64, nll: nll / n as f64, ece, bins })
}
