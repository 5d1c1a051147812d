//! The distributions AIS anneals from (forward) or to (reverse) for continuous energies: each
//! is normalised, so its log Z is 0, and has exact samples. With a box (image models live on
//! [-1, 1]^d) every base is restricted to it: a truncated Gaussian per coordinate, or the
//! uniform distribution on the box.

use crate::num::normal_quantile;
use crate::rng::{self, Stream};
use crate::{Error, Result};

/// The smallest standard deviation of a fitted base, as a share of the box's width (or in
/// units without a box): a pixel that is constant in the data would otherwise give a base of
/// zero width, and one the model's chains can never leave.
pub const MIN_FITTED_STD: f64 = 0.02;

/// Which base, before it is fitted to a dimension and a box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BaseKind {
    /// Independent Gaussians with the data's per-coordinate means and standard deviations.
    Fitted,
    /// N(0, s² I).
    Isotropic(f64),
    /// Uniform on the box (needs one).
    Uniform,
}

impl BaseKind {
    /// `fitted`, `iso:S` or `uniform`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: String| Error::invalid("AIS base", why);
        match text.trim() {
            "fitted" => Ok(BaseKind::Fitted),
            "uniform" => Ok(BaseKind::Uniform),
            other => match other.strip_prefix("iso:") {
                Some(s) => match s.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 => Ok(BaseKind::Isotropic(v)),
                    _ => Err(bad(format!("{other:?}: the standard deviation after iso: must be a positive number"))),
                },
                None => Err(bad(format!("{other:?} is not a base; use fitted, iso:S (e.g. iso:1) or uniform"))),
            },
        }
    }
}

/// A normalised base distribution on R^d or on a box.
#[derive(Clone, Debug, PartialEq)]
pub struct Base {
    kind: BaseKind,
    dim: usize,
    /// Per coordinate; unused by the uniform base.
    mean: Vec<f64>,
    std: Vec<f64>,
    bounds: Option<(f32, f32)>,
    /// log of the normaliser of exp(-quadratic) per coordinate, summed: what makes the base's
    /// log Z exactly 0.
    log_norm: f64,
}

impl Base {
    /// The base of `kind` on `dim` coordinates, within `bounds` when given; `data` ([n, dim])
    /// fits the `fitted` base.
    pub fn new(kind: BaseKind, dim: usize, bounds: Option<(f32, f32)>, data: Option<&[f32]>) -> Result<Self> {
        if dim == 0 {
            return Err(Error::invalid("AIS base", "the energy has no dimensions"));
        }
        if let Some((lo, hi)) = bounds
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return Err(Error::invalid("AIS box", format!("{lo},{hi}: need finite LO < HI")));
        }
        let (mean, std) = match kind {
            BaseKind::Isotropic(s) => (vec![0.0; dim], vec![s; dim]),
            BaseKind::Uniform => {
                if bounds.is_none() {
                    return Err(Error::invalid(
                        "AIS base",
                        "uniform needs a box (the model's support); use fitted or iso:S on R^d",
                    ));
                }
                (Vec::new(), Vec::new())
            }
            BaseKind::Fitted => {
                let data =
                    data.ok_or_else(|| Error::invalid("AIS base", "fitted needs data to fit (the points or --data)"))?;
                fit(data, dim, bounds)?
            }
        };
        let log_norm = match bounds {
            None => {
                mean.len() as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln() + std.iter().map(|s| s.ln()).sum::<f64>()
            }
            Some((lo, hi)) if kind == BaseKind::Uniform => dim as f64 * (hi as f64 - lo as f64).ln(),
            Some((lo, hi)) => {
                let mut sum = 0.0;
                for (i, (&m, &s)) in mean.iter().zip(&std).enumerate() {
                    let mass = normal_mass((lo as f64 - m) / s, (hi as f64 - m) / s);
                    if !(mass > 0.0) {
                        return Err(Error::invalid(
                            "AIS base",
                            format!(
                                "coordinate {i}: N({m}, {s}²) puts no mass on the box [{lo}, {hi}]; use a base that covers the box"
                            ),
                        ));
                    }
                    sum += 0.5 * (2.0 * std::f64::consts::PI).ln() + s.ln() + mass.ln();
                }
                sum
            }
        };
        Ok(Base { kind, dim, mean, std, bounds, log_norm })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn bounds(&self) -> Option<(f32, f32)> {
        self.bounds
    }

    /// The name reports use: `fitted`, `iso:S` or `uniform`.
    pub fn label(&self) -> String {
        match self.kind {
            BaseKind::Fitted => "fitted".into(),
            BaseKind::Isotropic(s) => format!("iso:{s}"),
            BaseKind::Uniform => "uniform".into(),
        }
    }

    /// Each coordinate's variance under the base (of the Gaussian before truncation; w²/12
    /// for the uniform base on a box of width w): where the HMC mass matrix starts.
    pub fn variances(&self) -> Vec<f32> {
        match (self.kind, self.bounds) {
            (BaseKind::Uniform, Some((lo, hi))) => vec![(hi - lo).powi(2) / 12.0; self.dim],
            _ => self.std.iter().map(|s| (s * s) as f32).collect(),
        }
    }

    /// B(x) = -log q0(x) (normalised, so that exp(-B) integrates to 1 over the support), with
    /// dB/dx written to `g`.
    pub fn energy_grad(&self, x: &[f32], g: &mut [f32]) -> f64 {
        if self.kind == BaseKind::Uniform {
            g.fill(0.0);
            return self.log_norm;
        }
        let mut b = self.log_norm;
        for (((&xi, gi), &m), &s) in x.iter().zip(g.iter_mut()).zip(&self.mean).zip(&self.std) {
            let z = (xi as f64 - m) / s;
            b += 0.5 * z * z;
            *gi = (z / s) as f32;
        }
        b
    }

    /// An exact draw for run `run` (the Philox `Init` stream of that run), written to `out`.
    pub fn sample(&self, seed: u64, run: u32, out: &mut [f32]) {
        let (lo, hi) = self.bounds.map_or((f64::NEG_INFINITY, f64::INFINITY), |(lo, hi)| (lo as f64, hi as f64));
        if self.bounds.is_none() {
            rng::fill_normals(seed, run, 0, Stream::Init, out);
            for ((x, &m), &s) in out.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = (m + s * *x as f64) as f32;
            }
            return;
        }
        rng::fill_uniforms(seed, run, 0, Stream::Init, out);
        for (i, x) in out.iter_mut().enumerate() {
            // Strictly inside (0, 1): the quantiles stay finite.
            let u = (*x as f64).clamp(1e-12, 1.0 - 1e-12);
            let v = match self.kind {
                BaseKind::Uniform => lo + u * (hi - lo),
                _ => {
                    let (m, s) = (self.mean[i], self.std[i]);
                    let (a, b) = (normal_cdf((lo - m) / s), normal_cdf((hi - m) / s));
                    m + s * normal_quantile(a + u * (b - a))
                }
            };
            *x = (v.clamp(lo, hi)) as f32;
        }
    }
}

/// Per-coordinate means and standard deviations of `data` (floored at [`MIN_FITTED_STD`]).
fn fit(data: &[f32], dim: usize, bounds: Option<(f32, f32)>) -> Result<(Vec<f64>, Vec<f64>)> {
    if data.is_empty() || !data.len().is_multiple_of(dim) {
        return Err(Error::invalid("AIS base data", format!("{} values are not whole rows of {dim}", data.len())));
    }
    let rows = data.len() / dim;
    if rows < 2 {
        return Err(Error::invalid("AIS base data", "a fitted base needs at least 2 rows"));
    }
    let floor = MIN_FITTED_STD * bounds.map_or(1.0, |(lo, hi)| hi as f64 - lo as f64);
    let mut mean = vec![0.0f64; dim];
    for row in data.chunks_exact(dim) {
        mean.iter_mut().zip(row).for_each(|(m, &x)| *m += x as f64);
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    let mut var = vec![0.0f64; dim];
    for row in data.chunks_exact(dim) {
        var.iter_mut().zip(row).zip(&mean).for_each(|((v, &x), m)| *v += (x as f64 - m).powi(2));
    }
    if let Some(i) = mean.iter().position(|m| !m.is_finite()) {
        return Err(Error::invalid("AIS base data", format!("column {i} is not finite")));
    }
    let std = var.iter().map(|v| (v / (rows - 1) as f64).sqrt().max(floor)).collect();
    Ok((mean, std))
}

/// The complementary error function, |relative error| < 1.2e-7 (Numerical Recipes' erfcc).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Φ(z), the standard normal CDF.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Φ(b) - Φ(a) for a < b, from the tail nearer to both so that it does not cancel.
fn normal_mass(a: f64, b: f64) -> f64 {
    if a > 0.0 { normal_cdf(-a) - normal_cdf(-b) } else { normal_cdf(b) - normal_cdf(a) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_cdf_and_quantile_invert_each_other() {
        for &p in &[1e-9, 1e-4, 0.01, 0.3, 0.5, 0.8, 0.99, 1.0 - 1e-6] {
            let z = normal_quantile(p);
            assert!((normal_cdf(z) - p).abs() < 2e-7 * p.max(1e-3), "p {p}: z {z}, cdf {}", normal_cdf(z));
        }
        assert!((normal_cdf(1.959963984540054) - 0.975).abs() < 1e-7);
        assert!((normal_mass(5.0, 6.0) - (normal_cdf(-5.0) - normal_cdf(-6.0))).abs() < 1e-12);
    }

    /// The truncated base's normaliser: a 1-D numerical integral of exp(-B) over the box is 1.
    #[test]
    fn a_truncated_base_is_normalised() {
        let data = [-1.0f32, -0.9, -0.2, 0.4, -1.0, -0.95];
        let base = Base::new(BaseKind::Fitted, 1, Some((-1.0, 1.0)), Some(&data)).unwrap();
        let n = 200_000;
        let h = 2.0 / n as f64;
        let mut g = [0.0f32];
        let mass: f64 =
            (0..n).map(|k| (-base.energy_grad(&[(-1.0 + (k as f64 + 0.5) * h) as f32], &mut g)).exp() * h).sum();
        assert!((mass - 1.0).abs() < 1e-5, "{mass}");
        let mut x = [0.0f32; 1];
        for run in 0..100 {
            base.sample(3, run, &mut x);
            assert!((-1.0..=1.0).contains(&x[0]), "{x:?}");
        }
        assert!(Base::new(BaseKind::Uniform, 3, None, None).is_err());
        assert!(BaseKind::parse("iso:0").is_err() && BaseKind::parse("gauss").is_err());
        assert_eq!(BaseKind::parse("iso:2.5").unwrap(), BaseKind::Isotropic(2.5));
    }
}
