//! Closed-form normalisers: log Z = log ∫ exp(-E(x)) dx for the energies whose Z is known
//! exactly (Gaussians from their precision or standard deviations; the mixture is normalised).
//! Other energies have no closed form here: 2-D ones by quadrature
//! ([`crate::train::eval::grid_log_z`]), the rest not at all.

use super::{Analytic, Energy, GaussianDiag, GaussianPrecision};

/// Lower-triangular Cholesky factor (row-major) of a symmetric matrix in f64, or `None` when
/// the matrix is not positive definite.
pub fn cholesky(p: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            if i == j {
                let v = p[i * d + i] - s;
                // NaN fails too.
                if !v.is_finite() || v <= 0.0 {
                    return None;
                }
                l[i * d + i] = v.sqrt();
            } else {
                l[i * d + j] = (p[i * d + j] - s) / l[j * d + j];
            }
        }
    }
    Some(l)
}

/// log Z in closed form and how it was obtained, or `None` when the energy has none here.
/// Computed in f64 from the f32 parameters the energy evaluates with, so -E(x) - log Z is the
/// log-density of exactly the model that is sampled.
pub fn closed_form(energy: &Energy) -> Option<(f64, &'static str)> {
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    match energy {
        Energy::Analytic(Analytic::GaussianDiag(GaussianDiag { inv_var, .. })) => {
            // Z = prod_i sqrt(2π / inv_var_i).
            let log_z = inv_var.iter().map(|&p| half_log_2pi - 0.5 * (p as f64).ln()).sum();
            Some((log_z, "closed form: gaussian, log Z = d/2 log 2π - 1/2 sum log(1/std²)"))
        }
        Energy::Analytic(Analytic::GaussianPrecision(GaussianPrecision { mean, precision })) => {
            let d = mean.len();
            let p: Vec<f64> = precision.iter().map(|&v| v as f64).collect();
            // Parsing checked positive definiteness of the f32 matrix; a hand-built one may not be.
            let l = cholesky(&p, d)?;
            let log_det: f64 = (0..d).map(|i| 2.0 * l[i * d + i].ln()).sum();
            Some((d as f64 * half_log_2pi - 0.5 * log_det, "closed form: gaussian, log Z = d/2 log 2π - 1/2 log det P"))
        }
        Energy::Analytic(Analytic::GaussianMixture(_)) => {
            Some((0.0, "closed form: gaussian_mixture is normalised, Z = 1"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A precision with off-diagonal terms: log det from the factor equals the 2x2 determinant.
    #[test]
    fn precision_log_z_matches_the_determinant() {
        let e = GaussianPrecision { mean: vec![0.5, -1.0], precision: vec![2.0, 1.2, 1.2, 1.0] }.into();
        let (log_z, _) = closed_form(&e).unwrap();
        // The f32 entries the energy holds (1.2 is not exact in f32).
        let off = 1.2f32 as f64;
        let det = 2.0 * 1.0 - off * off;
        let want = (2.0 * std::f64::consts::PI).ln() - 0.5 * det.ln();
        assert!((log_z - want).abs() < 1e-12, "{log_z} vs {want}");
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none(), "indefinite accepted");
    }
}
