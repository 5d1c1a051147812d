//! Checks of the JSON energy spec's numbers, shared by its fields: conversion to the f32 the
//! kernels compute with, positivity, dimensions that must agree, and matrices.

use crate::{Error, Result};

/// The dimension of a spec that gives none.
pub(super) fn default_dim() -> usize {
    2
}

/// The values as the f32 the kernels compute with, refusing any the conversion loses: beyond
/// f32's range, or non-zero but rounding to 0.
pub(super) fn to_f32(field: &str, v: &[f64]) -> Result<Vec<f32>> {
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            let y = x as f32;
            if !y.is_finite() {
                Err(Error::invalid(
                    format!("{field}[{i}]"),
                    format!("{} is outside the range of f32 (about ±3.4e38)", show(x)),
                ))
            } else if y == 0.0 && x != 0.0 {
                Err(Error::invalid(
                    format!("{field}[{i}]"),
                    format!("{} rounds to 0 in f32 (the smallest is about 1.4e-45)", show(x)),
                ))
            } else {
                Ok(y)
            }
        })
        .collect()
}

/// A number as a user would write it: 1e308, not 309 digits.
pub(super) fn show(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e6).contains(&x.abs()) { format!("{x:e}") } else { format!("{x}") }
}

/// `f(v)` of each user value `v` (a scale's inverse or inverse square) as f32, refusing one
/// that is not a positive normal f32: 0 would make the target flat (improper), infinity a point.
pub(super) fn derived_f32(field: &str, v: &[f64], what: &str, f: impl Fn(f64) -> f64) -> Result<Vec<f32>> {
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            let y = f(x) as f32;
            if y.is_finite() && y >= f32::MIN_POSITIVE {
                Ok(y)
            } else {
                Err(Error::invalid(
                    format!("{field}[{i}]"),
                    format!("{} gives {what} {y:e} in f32, which would make the target improper or degenerate; rescale the problem", show(x)),
                ))
            }
        })
        .collect()
}

/// A constraint's dimension: `dim` if given, else that of the per-dimension arrays (`sizes`:
/// (field, length)), else 2 as for the other types; every one given must agree.
pub(super) fn constraint_dim(at: &str, dim: Option<usize>, sizes: &[(&str, usize)]) -> Result<usize> {
    let d = dim.or(sizes.first().map(|s| s.1)).unwrap_or(default_dim());
    if d == 0 {
        return Err(match dim {
            Some(_) => Error::invalid(format!("{at}dim"), "must be at least 1"),
            None => Error::invalid(format!("{at}{}", sizes[0].0), "must have at least one entry"),
        });
    }
    for (name, n) in sizes {
        if *n != d {
            let reference = if dim.is_some() { "dim".to_string() } else { sizes[0].0.to_string() };
            return Err(Error::invalid(format!("{at}{name}"), format!("has {n} entries but {reference} says {d}")));
        }
    }
    Ok(d)
}

/// A number or an array of numbers (`lo`, `hi`): Ok(None) for a number's broadcast, with the
/// number; Ok(Some) for an array.
pub(super) fn scalar_or_array(field: &str, v: &serde_json::Value) -> Result<(f64, Option<Vec<f64>>)> {
    let bad = || Error::invalid(field, format!("must be a number or an array of numbers, got {v}"));
    match v {
        serde_json::Value::Number(n) => Ok((n.as_f64().ok_or_else(bad)?, None)),
        serde_json::Value::Array(items) => {
            let values = items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.as_f64()
                        .ok_or_else(|| Error::invalid(format!("{field}[{i}]"), format!("must be a number, got {x}")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((0.0, Some(values)))
        }
        _ => Err(bad()),
    }
}

/// `d` copies of a number given once for every coordinate, planned against the memory budget
/// first since `d` comes from the spec's `dim`.
pub(super) fn broadcast(at: &str, v: f32, d: usize) -> Result<Vec<f32>> {
    crate::plan::Plan::new().add(format!("{at}dim"), format!("{d} coordinates"), &[d as u64], 4, 1).check()?;
    Ok(vec![v; d])
}

/// One positive number (a barrier, weight, sharpness or radius) as f32.
pub(super) fn positive_f32(field: &str, v: f64) -> Result<f32> {
    positive(field, &[v])?;
    Ok(to_f32(field, &[v])?[0])
}

pub(super) fn positive(field: &str, v: &[f64]) -> Result<()> {
    match v.iter().position(|&x| !(x > 0.0)) {
        Some(i) => Err(Error::invalid(format!("{field}[{i}]"), format!("must be positive, got {}", v[i]))),
        None => Ok(()),
    }
}

pub(super) fn square_matrix(field: &str, rows: &[Vec<f64>], d: usize) -> Result<Vec<f64>> {
    if rows.len() != d {
        return Err(Error::invalid(field, format!("has {} rows but mean has {d} entries", rows.len())));
    }
    let mut flat = Vec::with_capacity(d * d);
    for (i, row) in rows.iter().enumerate() {
        if row.len() != d {
            return Err(Error::invalid(format!("{field}[{i}]"), format!("has {} entries, expected {d}", row.len())));
        }
        flat.extend(row);
    }
    for i in 0..d {
        for j in 0..i {
            let (a, b): (f64, f64) = (flat[i * d + j], flat[j * d + i]);
            if (a - b).abs() > 1e-9 * (1.0 + a.abs().max(b.abs())) {
                return Err(Error::invalid(field, format!("must be symmetric: [{i}][{j}] = {a} but [{j}][{i}] = {b}")));
            }
        }
    }
    Ok(flat)
}

/// Cholesky in f64: succeeds exactly when the (symmetric) matrix is positive definite.
pub(super) fn check_positive_definite(field: &str, p: &[f64], d: usize) -> Result<()> {
    match super::log_z::cholesky(p, d) {
        Some(_) => Ok(()),
        None => Err(Error::invalid(field, "must be positive definite")),
    }
}
