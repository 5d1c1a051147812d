//! The feasible set of an energy's constraints (`--init feasible`): the points where every
//! constraint term (`box`, `linear_inequality`, `linear_equality`, `norm_ball`, `simplex`, in
//! a sum and through slices) is satisfied. Each such set is closed and convex with an exact
//! Euclidean projection; Dykstra's alternating projections take a point to the nearest point of
//! their intersection (plain alternating projections would find some point of it, not the
//! nearest), so chains start where a Gaussian draw lands after the least correction.

use super::{Analytic, Energy};
use crate::{Error, Result};

/// One constraint, on the dimensions `indices` of the point (all of them when None).
struct Constraint<'a> {
    term: &'a Analytic,
    indices: Option<Vec<usize>>,
}

/// Rounds of projections before giving up on an intersection that looks empty.
const MAX_ROUNDS: usize = 10_000;

/// How far outside a constraint a point may lie and count as feasible (relative to its scale).
const TOLERANCE: f64 = 1e-5;

/// The constraint terms of `energy` with the dimensions each looks at.
fn constraints(energy: &Energy) -> Result<Vec<Constraint<'_>>> {
    fn walk<'a>(e: &'a Energy, indices: Option<Vec<usize>>, out: &mut Vec<Constraint<'a>>) -> Result<()> {
        match e {
            Energy::Analytic(
                term
                @ (Analytic::BoxConstraint(_) | Analytic::Linear(_) | Analytic::NormBall(_) | Analytic::Simplex(_)),
            ) => out.push(Constraint { term, indices }),
            Energy::Sum { terms } => terms.iter().try_for_each(|(_, t)| walk(t, indices.clone(), out))?,
            Energy::Slice { indices: own, inner, .. } => {
                let mapped = own.iter().map(|&i| indices.as_ref().map_or(i, |outer| outer[i])).collect();
                walk(inner, Some(mapped), out)?
            }
            Energy::Group { inner, .. } if !constraints(inner)?.is_empty() => {
                return Err(Error::invalid(
                    "--init feasible",
                    "a constraint inside a group has no single feasible set to start in",
                ));
            }
            _ => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(energy, None, &mut out)?;
    Ok(out)
}

/// Moves x onto the term's set (Euclidean projection).
fn project(term: &Analytic, x: &mut [f64]) {
    match term {
        Analytic::BoxConstraint(b) => {
            x.iter_mut().enumerate().for_each(|(i, v)| *v = v.clamp(b.lo[i] as f64, b.hi[i] as f64))
        }
        Analytic::Linear(l) => {
            let dot: f64 = l.a.iter().zip(x.iter()).map(|(&a, v)| a as f64 * v).sum();
            let norm2: f64 = l.a.iter().map(|&a| (a as f64).powi(2)).sum();
            let excess = dot - l.b as f64;
            if norm2 > 0.0 && (l.equality || excess > 0.0) {
                x.iter_mut().zip(&l.a).for_each(|(v, &a)| *v -= excess / norm2 * a as f64);
            }
        }
        Analytic::NormBall(ball) => {
            let norm = x.iter().zip(&ball.center).map(|(v, &c)| (v - c as f64).powi(2)).sum::<f64>().sqrt();
            if norm > ball.radius as f64 {
                let shrink = ball.radius as f64 / norm;
                x.iter_mut().zip(&ball.center).for_each(|(v, &c)| *v = c as f64 + (*v - c as f64) * shrink);
            }
        }
        Analytic::Simplex(_) => {
            // Sort descending; the threshold t makes sum max(x_i - t, 0) = 1 (Held et al. 1974).
            let mut sorted = x.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let (mut cumulative, mut t) = (0.0, 0.0);
            for (k, &v) in sorted.iter().enumerate() {
                cumulative += v;
                let candidate = (cumulative - 1.0) / (k + 1) as f64;
                if v - candidate > 0.0 {
                    t = candidate;
                }
            }
            x.iter_mut().for_each(|v| *v = (*v - t).max(0.0));
        }
        _ => unreachable!("only constraint terms are collected"),
    }
}

/// How far x lies outside the term's set, relative to the set's scale.
fn violation(term: &Analytic, x: &[f64]) -> f64 {
    let mut y = x.to_vec();
    project(term, &mut y);
    let distance = y.iter().zip(x).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    distance / (1.0 + x.iter().map(|v| v * v).sum::<f64>().sqrt())
}

/// Moves every row of `points` ([rows, dim]) to the nearest point of the feasible set of the
/// energy's constraints; an error when the energy has none, or when they look incompatible.
pub fn project_feasible(energy: &Energy, points: &mut [f32]) -> Result<()> {
    let cs = constraints(energy)?;
    if cs.is_empty() {
        return Err(Error::invalid(
            "--init feasible",
            format!(
                "the {} energy has no constraint term (box, linear_inequality, linear_equality, norm_ball, simplex) to start inside",
                energy.kind()
            ),
        ));
    }
    let dim = energy.dim();
    let gather = |c: &Constraint, x: &[f64]| -> Vec<f64> {
        c.indices.as_ref().map_or_else(|| x.to_vec(), |idx| idx.iter().map(|&i| x[i]).collect())
    };
    for row in points.chunks_exact_mut(dim) {
        let mut x: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        // Dykstra: each set keeps the correction it made last round and adds it back first.
        let mut corrections: Vec<Vec<f64>> = cs.iter().map(|c| vec![0.0; gather(c, &x).len()]).collect();
        let mut feasible = false;
        for _ in 0..MAX_ROUNDS {
            for (c, p) in cs.iter().zip(&mut corrections) {
                let mut y: Vec<f64> = gather(c, &x).iter().zip(p.iter()).map(|(v, q)| v + q).collect();
                let before = y.clone();
                project(c.term, &mut y);
                p.iter_mut().zip(before.iter().zip(&y)).for_each(|(q, (b, a))| *q = b - a);
                match &c.indices {
                    Some(idx) => idx.iter().zip(&y).for_each(|(&i, &v)| x[i] = v),
                    None => x.copy_from_slice(&y),
                }
            }
            if cs.iter().all(|c| violation(c.term, &gather(c, &x)) < TOLERANCE) {
                feasible = true;
                break;
            }
        }
        if !feasible {
            let (worst, c) = cs
                .iter()
                .enumerate()
                .max_by(|a, b| violation(a.1.term, &gather(a.1, &x)).total_cmp(&violation(b.1.term, &gather(b.1, &x))))
                .expect("at least one constraint");
            return Err(Error::invalid(
                "--init feasible",
                format!(
                    "the constraints look incompatible: after {MAX_ROUNDS} rounds of projections a point still lies outside constraint {worst} ({}) by {:.3e}",
                    c.term.kind(),
                    violation(c.term, &gather(c, &x))
                ),
            ));
        }
        row.iter_mut().zip(&x).for_each(|(r, &v)| *r = v as f32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::spec::parse_energy;

    fn energy(terms: &str) -> Energy {
        parse_energy(&format!(r#"{{"type": "sum", "terms": [{terms}]}}"#), "test").unwrap()
    }

    const HALFPLANE: &str = r#"{"type": "linear_inequality", "a": [-1, 0], "b": 0, "weight": 100}"#;
    const BALL: &str = r#"{"type": "norm_ball", "radius": 1, "weight": 100}"#;

    #[test]
    fn a_point_moves_to_the_nearest_point_of_the_intersection() {
        let e = energy(&format!("{HALFPLANE}, {BALL}"));
        let starts = crate::rng::initial_states(3, 0, 50, 2, 2.0);
        let mut moved = starts.clone();
        project_feasible(&e, &mut moved).unwrap();
        // Brute force over a fine grid of the half disc: the nearest feasible grid point.
        let grid: Vec<(f64, f64)> = (0..=400)
            .flat_map(|i| (0..=800).map(move |j| (i as f64 / 400.0, j as f64 / 400.0 - 1.0)))
            .filter(|(a, b)| a * a + b * b <= 1.0)
            .collect();
        for (s, m) in starts.chunks_exact(2).zip(moved.chunks_exact(2)) {
            let (x, y) = (s[0] as f64, s[1] as f64);
            let d = |(a, b): (f64, f64)| ((a - x).powi(2) + (b - y).powi(2)).sqrt();
            let best = grid.iter().map(|&p| d(p)).fold(f64::INFINITY, f64::min);
            assert!(m[0] >= -1e-5 && m[0] * m[0] + m[1] * m[1] <= 1.0 + 1e-4, "{m:?} is outside");
            assert!(
                d((m[0] as f64, m[1] as f64)) <= best + 1e-3,
                "{s:?} -> {m:?}: {} vs {best}",
                d((m[0] as f64, m[1] as f64))
            );
        }
    }

    #[test]
    fn simplex_box_and_slices() {
        let mut x = vec![0.3f32, -0.2, 2.0, 0.5];
        project_feasible(&energy(r#"{"type": "simplex", "dim": 4, "weight": 1}"#), &mut x).unwrap();
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-5 && x.iter().all(|&v| v >= 0.0), "{x:?}");
        let mut on = vec![0.25f32, 0.25, 0.5, 0.0];
        project_feasible(&energy(r#"{"type": "simplex", "dim": 4, "weight": 1}"#), &mut on).unwrap();
        assert_eq!(on, [0.25, 0.25, 0.5, 0.0], "a point of the simplex stays");
        // A ball on dimensions 2 and 3 only, a box on all four.
        let spec = r#"{"type": "sum", "slices": [[2, 3], null], "terms": [{"type": "norm_ball", "radius": 1, "weight": 1},
            {"type": "box", "lo": -3, "hi": 3, "dim": 4, "weight": 1}]}"#;
        let mut y = vec![5.0f32, -1.0, 3.0, 4.0];
        project_feasible(&parse_energy(spec, "test").unwrap(), &mut y).unwrap();
        assert_eq!(&y[..2], &[3.0, -1.0]);
        assert!((y[2] - 0.6).abs() < 1e-5 && (y[3] - 0.8).abs() < 1e-5, "{y:?}");
    }

    #[test]
    fn no_constraint_or_an_empty_intersection_is_refused() {
        let far = r#"{"type": "linear_inequality", "a": [-1, 0], "b": -5, "weight": 1}"#;
        let err = project_feasible(&energy(&format!("{BALL}, {far}")), &mut [0.0, 0.0]).unwrap_err().to_string();
        assert!(err.contains("incompatible"), "{err}");
        let err = project_feasible(
            &parse_energy(r#"{"type": "gaussian", "mean": [0, 0], "std": [1, 1]}"#, "t").unwrap(),
            &mut [0.0, 0.0],
        );
        assert!(err.unwrap_err().to_string().contains("no constraint term"));
    }
}
