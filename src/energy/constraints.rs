//! Constraints as energies: penalties that are 0 on the feasible set and grow outside it (`box`,
//! `linear_inequality`, `linear_equality`, `norm_ball`, `simplex`). Each carries its own weight.
//! WGSL twin: shaders/energy/constraints.wgsl.

use super::term::{AnalyticTerm, check_finite};
use crate::num::{Field, sigmoid, softplus};
use crate::{Error, Result};

/// How a [`BoxConstraint`] penalises a coordinate v outside its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BoxPenalty {
    /// v² (v = the distance outside [lo, hi], 0 inside).
    Quadratic,
    /// softplus(s v) / s on each side: smooth everywhere, about 0 inside and about v outside
    /// once s v >> 1, so larger sharpness s makes it closer to a hard wall's linear penalty.
    Softplus { sharpness: f32 },
}

/// Constraint lo <= x <= hi: E = weight * sum_i pen(x_i - hi_i) + pen(lo_i - x_i), with pen as
/// [`BoxPenalty`] says.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxConstraint {
    pub lo: Vec<f32>,
    pub hi: Vec<f32>,
    pub penalty: BoxPenalty,
    pub weight: f32,
}

impl AnalyticTerm for BoxConstraint {
    const WGSL_FILE: &'static str = "energy/constraints.wgsl";

    fn dim(&self) -> usize {
        self.lo.len()
    }
    fn kind(&self) -> &'static str {
        "box"
    }
    fn wgsl_function(&self) -> &'static str {
        match self.penalty {
            BoxPenalty::Quadratic => "box_quadratic_energy",
            BoxPenalty::Softplus { .. } => "box_softplus_energy",
        }
    }

    #[inline(always)]
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        let (lo, hi) = (&self.lo, &self.hi);
        let w = weight * c(self.weight);
        let mut e = T::zero();
        match self.penalty {
            BoxPenalty::Quadratic => {
                for i in 0..x.len() {
                    let above = (x[i] - c(hi[i])).max(T::zero());
                    let below = (c(lo[i]) - x[i]).max(T::zero());
                    e += above * above + below * below;
                    g[i] += w * c(2.0) * (above - below);
                }
                w * e
            }
            BoxPenalty::Softplus { sharpness } => {
                let s = c(sharpness);
                for i in 0..x.len() {
                    let (za, zb) = (s * (x[i] - c(hi[i])), s * (c(lo[i]) - x[i]));
                    e += softplus(za) + softplus(zb);
                    g[i] += w * (sigmoid(za) - sigmoid(zb));
                }
                w * e / s
            }
        }
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        out.extend(&self.lo);
        out.extend(&self.hi);
        out.push(self.weight);
        if let BoxPenalty::Softplus { sharpness } = self.penalty {
            out.push(sharpness);
        }
    }

    fn loop_iterations(&self) -> u64 {
        self.dim() as u64
    }

    fn validate(&self) -> Result<()> {
        let (lo, hi) = (&self.lo, &self.hi);
        check_finite("lo", lo)?;
        check_finite("hi", hi)?;
        check_finite("weight", &[self.weight])?;
        if let BoxPenalty::Softplus { sharpness } = self.penalty {
            check_finite("sharpness", &[sharpness])?;
        }
        if hi.len() != lo.len() {
            return Err(Error::invalid("hi", format!("has {} entries but lo has {}", hi.len(), lo.len())));
        }
        // An empty box has no feasible point: the penalty would pull chains to its middle.
        if let Some(i) = (0..lo.len()).find(|&i| !(lo[i] <= hi[i])) {
            return Err(Error::invalid(
                format!("lo[{i}]"),
                format!("{} is above hi[{i}] = {}: the box is empty", lo[i], hi[i]),
            ));
        }
        Ok(())
    }
}

/// Constraint a.x <= b (E = weight * max(a.x - b, 0)^2) or a.x = b (E = weight * (a.x - b)^2).
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub a: Vec<f32>,
    pub b: f32,
    pub equality: bool,
    pub weight: f32,
}

impl AnalyticTerm for Linear {
    const WGSL_FILE: &'static str = "energy/constraints.wgsl";

    fn dim(&self) -> usize {
        self.a.len()
    }
    fn kind(&self) -> &'static str {
        if self.equality { "linear_equality" } else { "linear_inequality" }
    }
    fn wgsl_function(&self) -> &'static str {
        if self.equality { "linear_equality_energy" } else { "linear_inequality_energy" }
    }

    #[inline(always)]
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        let w = weight * c(self.weight);
        let mut dot = T::zero();
        for i in 0..x.len() {
            dot += c(self.a[i]) * x[i];
        }
        let r = dot - c(self.b);
        let v = if self.equality { r } else { r.max(T::zero()) };
        for i in 0..x.len() {
            g[i] += w * c(2.0) * v * c(self.a[i]);
        }
        w * v * v
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        out.extend(&self.a);
        out.extend([self.b, self.weight]);
    }

    fn loop_iterations(&self) -> u64 {
        2 * self.dim() as u64
    }

    fn validate(&self) -> Result<()> {
        check_finite("a", &self.a)?;
        check_finite("b, weight", &[self.b, self.weight])
    }
}

/// Constraint |x - c| <= r: E = weight * max(|x - c|^2 - r^2, 0)^2. The squared norm keeps the
/// gradient 4 weight v (x - c) defined everywhere (|x - c| is not differentiable at c).
#[derive(Clone, Debug, PartialEq)]
pub struct NormBall {
    pub center: Vec<f32>,
    pub radius: f32,
    pub weight: f32,
}

impl AnalyticTerm for NormBall {
    const WGSL_FILE: &'static str = "energy/constraints.wgsl";

    fn dim(&self) -> usize {
        self.center.len()
    }
    fn kind(&self) -> &'static str {
        "norm_ball"
    }
    fn wgsl_function(&self) -> &'static str {
        "norm_ball_energy"
    }

    #[inline(always)]
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        let w = weight * c(self.weight);
        let mut n2 = T::zero();
        for i in 0..x.len() {
            let r = x[i] - c(self.center[i]);
            n2 += r * r;
        }
        let v = (n2 - c(self.radius) * c(self.radius)).max(T::zero());
        for i in 0..x.len() {
            g[i] += w * c(4.0) * v * (x[i] - c(self.center[i]));
        }
        w * v * v
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        out.extend(&self.center);
        out.extend([self.radius, self.weight]);
    }

    fn loop_iterations(&self) -> u64 {
        2 * self.dim() as u64
    }

    fn validate(&self) -> Result<()> {
        check_finite("center", &self.center)?;
        check_finite("radius, weight", &[self.radius, self.weight])
    }
}

/// Constraint sum_i x_i = 1, x_i >= 0: E = weight * ((sum_i x_i - 1)^2 + sum_i max(-x_i, 0)^2).
#[derive(Clone, Debug, PartialEq)]
pub struct Simplex {
    pub dim: usize,
    pub weight: f32,
}

impl AnalyticTerm for Simplex {
    const WGSL_FILE: &'static str = "energy/constraints.wgsl";

    fn dim(&self) -> usize {
        self.dim
    }
    fn kind(&self) -> &'static str {
        "simplex"
    }
    fn wgsl_function(&self) -> &'static str {
        "simplex_energy"
    }

    #[inline(always)]
    fn add_energy_grad<T: Field>(&self, x: &[T], g: &mut [T], weight: T) -> T {
        let c = T::from_f32;
        let w = weight * c(self.weight);
        let mut total = T::zero();
        for i in 0..x.len() {
            total += x[i];
        }
        let t = total - c(1.0);
        let mut e = t * t;
        for i in 0..x.len() {
            let neg = (-x[i]).max(T::zero());
            e += neg * neg;
            g[i] += w * c(2.0) * (t - neg);
        }
        w * e
    }

    fn pack_into(&self, out: &mut Vec<f32>) {
        out.push(self.weight);
    }

    fn loop_iterations(&self) -> u64 {
        2 * self.dim as u64
    }

    fn validate(&self) -> Result<()> {
        check_finite("weight", &[self.weight])
    }
}
