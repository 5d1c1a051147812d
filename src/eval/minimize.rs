//! Energy minimisation as inference: from many starts at once, descend E to local minima and
//! group the endpoints into distinct minima. Every start advances in lockstep, so each
//! iteration is one batched evaluation through an [`Evaluator`] (either executor); the updates
//! are host code shared by both.
//!
//! L-BFGS (Nocedal & Wright, algorithm 7.4: the two-loop recursion over the last `memory`
//! (s, y) pairs, a backtracking Armijo line search) or Adam. Coordinates a mask holds fixed
//! never move (conditional minimisation), and with a box the iterates are projected onto it
//! and the gradient is projected too (a component pushing out through a wall it sits on
//! counts as zero), so a minimum on the wall converges.

use crate::energy::batch::Evaluator;
use crate::{Error, Result};
use std::collections::VecDeque;

/// The descent method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Lbfgs,
    Adam,
}

impl Method {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "lbfgs" => Ok(Method::Lbfgs),
            "adam" => Ok(Method::Adam),
            other => Err(Error::invalid("method", format!("'{other}' is not one of lbfgs, adam"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Lbfgs => "L-BFGS",
            Method::Adam => "Adam",
        }
    }
}

#[derive(Clone, Debug)]
pub struct MinimizeConfig {
    pub method: Method,
    /// Most iterations (batched evaluations) of the whole set.
    pub max_steps: usize,
    /// Adam's step size.
    pub learning_rate: f32,
    /// A start has converged when its projected gradient's Euclidean norm is at most this.
    pub grad_tol: f32,
    /// The box every coordinate stays in.
    pub bounds: Option<(f32, f32)>,
    /// (s, y) pairs L-BFGS keeps.
    pub memory: usize,
}

impl MinimizeConfig {
    pub fn new(method: Method) -> Self {
        MinimizeConfig { method, max_steps: 1000, learning_rate: 0.01, grad_tol: 1e-3, bounds: None, memory: 10 }
    }

    pub fn validate(&self) -> Result<()> {
        if self.max_steps == 0 {
            return Err(Error::invalid("steps", "must be at least 1"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::invalid(
                "learning rate",
                format!("must be positive and finite, got {}", self.learning_rate),
            ));
        }
        if !(self.grad_tol > 0.0 && self.grad_tol.is_finite()) {
            return Err(Error::invalid(
                "gradient tolerance",
                format!("must be positive and finite, got {}", self.grad_tol),
            ));
        }
        if let Some((lo, hi)) = self.bounds
            && !(lo < hi && lo.is_finite() && hi.is_finite())
        {
            return Err(Error::invalid("box", format!("{lo},{hi}: LO must be below HI, both finite")));
        }
        if self.memory == 0 {
            return Err(Error::invalid("memory", "L-BFGS keeps at least 1 pair"));
        }
        Ok(())
    }
}

/// How a start's descent ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its projected gradient norm reached the tolerance.
    Converged,
    /// The line search found no decrease in f32 (a minimum at float precision, or a ridge).
    Stalled,
    /// The iterations ran out first.
    StepLimit,
    /// Its energy or gradient was not finite (at the start or along the way).
    NonFinite,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Converged => "converged",
            Outcome::Stalled => "stalled",
            Outcome::StepLimit => "step limit",
            Outcome::NonFinite => "non-finite",
        }
    }
}

/// How far an f32 energy may rise by rounding alone, relative to 1 + |E| (a few ulps).
const F32_ROUNDING: f64 = 1e-6;

/// Where every start ended.
#[derive(Clone, Debug)]
pub struct Descent {
    /// Endpoints [starts, dim].
    pub points: Vec<f32>,
    pub energies: Vec<f32>,
    /// Projected gradient norms at the endpoints.
    pub grad_norms: Vec<f32>,
    /// Accepted steps of each start.
    pub steps: Vec<u32>,
    pub outcomes: Vec<Outcome>,
    /// Batched evaluations made.
    pub evaluations: usize,
}

/// One start's state.
struct Start {
    x: Vec<f64>,
    e: f64,
    /// The projected gradient.
    g: Vec<f64>,
    outcome: Option<Outcome>,
    steps: u32,
    /// L-BFGS: the last (s, y, 1 / s.y); the current direction and step length.
    pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
    dir: Vec<f64>,
    alpha: f64,
    /// The dimensions the pairs were collected with blocked (projected gradient 0).
    blocked: Vec<bool>,
    /// Adam's moments.
    m: Vec<f64>,
    v: Vec<f64>,
}

/// Descends from `starts` ([n, dim]). `free` holds dimensions where they start: `free[i]`
/// false holds dimension i of every start (length dim), `free[r * dim + i]` false holds it in
/// start r only (length n * dim). The evaluator hears which starts it evaluates
/// ([`Evaluator::energy_grad_rows`]).
pub fn minimize(
    eval: &mut dyn Evaluator,
    starts: &[f32],
    dim: usize,
    free: Option<&[bool]>,
    config: &MinimizeConfig,
) -> Result<Descent> {
    config.validate()?;
    if dim == 0 || starts.is_empty() || !starts.len().is_multiple_of(dim) {
        return Err(Error::invalid("starts", format!("{} values do not form rows of {dim}", starts.len())));
    }
    let n = starts.len() / dim;
    if let Some(f) = free
        && f.len() != dim
        && f.len() != n * dim
    {
        return Err(Error::invalid(
            "free dimensions",
            format!("{} flags for {n} starts of {dim} dimensions (give {dim} or {})", f.len(), n * dim),
        ));
    }
    // Whether dimension i of start r is free.
    let is_free = |r: usize, i: usize| free.is_none_or(|f| if f.len() == dim { f[i] } else { f[r * dim + i] });
    let project = |x: &mut [f64]| {
        if let Some((lo, hi)) = config.bounds {
            x.iter_mut().for_each(|v| *v = v.clamp(lo as f64, hi as f64));
        }
    };
    // Dimensions that cannot move from x along -g: held ones, and those on a wall that the
    // gradient pushes against.
    let blocked = |r: usize, x: &[f64], g: &[f32]| -> Vec<bool> {
        (0..dim)
            .map(|i| {
                let held = !is_free(r, i);
                let at_wall = config
                    .bounds
                    .is_some_and(|(lo, hi)| (x[i] <= lo as f64 && g[i] > 0.0) || (x[i] >= hi as f64 && g[i] < 0.0));
                held || at_wall
            })
            .collect()
    };
    let projected = |r: usize, x: &[f64], g: &[f32]| -> Vec<f64> {
        blocked(r, x, g).iter().zip(g).map(|(&b, &v)| if b { 0.0 } else { v as f64 }).collect()
    };
    let mut es = vec![0.0f32; n];
    let mut gs = vec![0.0f32; n * dim];
    let mut evaluations = 0;
    let mut batch = |eval: &mut dyn Evaluator, rows: &[usize], xs: &[f32]| -> Result<(Vec<f32>, Vec<f32>)> {
        let k = rows.len();
        let (e, g) = (&mut es[..k], &mut gs[..k * dim]);
        eval.energy_grad_rows(rows, xs, e, g)?;
        evaluations += 1;
        Ok((e.to_vec(), g.to_vec()))
    };
    let mut x0: Vec<f64> = starts.iter().map(|&v| v as f64).collect();
    x0.chunks_exact_mut(dim).for_each(&project);
    let first: Vec<f32> = x0.iter().map(|&v| v as f32).collect();
    let (e0, g0) = batch(eval, &(0..n).collect::<Vec<_>>(), &first)?;
    let mut runs: Vec<Start> = (0..n)
        .map(|i| {
            let x = x0[i * dim..(i + 1) * dim].to_vec();
            let g = projected(i, &x, &g0[i * dim..(i + 1) * dim]);
            let finite = e0[i].is_finite() && g.iter().all(|v| v.is_finite());
            Start {
                e: e0[i] as f64,
                outcome: (!finite).then_some(Outcome::NonFinite),
                x,
                g,
                steps: 0,
                pairs: VecDeque::new(),
                dir: Vec::new(),
                alpha: 0.0,
                blocked: Vec::new(),
                m: vec![0.0; dim],
                v: vec![0.0; dim],
            }
        })
        .collect();
    for k in 1..=config.max_steps {
        // Who is still going, and the point each asks to evaluate.
        let mut asking = Vec::new();
        let mut trial = Vec::new();
        for (i, s) in runs.iter_mut().enumerate() {
            if s.outcome.is_some() {
                continue;
            }
            if norm(&s.g) <= config.grad_tol as f64 {
                s.outcome = Some(Outcome::Converged);
                continue;
            }
            let mut next = match config.method {
                Method::Lbfgs => {
                    if s.dir.is_empty() {
                        // The quasi-Newton direction in the free dimensions only: the blocked
                        // ones stay (their projected gradient is 0; their direction is zeroed).
                        let blocked: Vec<bool> = s.g.iter().map(|&v| v == 0.0).collect();
                        if blocked != s.blocked {
                            // The free set changed: the curvature pairs describe another subspace.
                            s.pairs.clear();
                            s.blocked = blocked;
                        }
                        s.dir = lbfgs_direction(&s.g, &s.pairs);
                        s.dir.iter_mut().zip(&s.blocked).filter(|(_, b)| **b).for_each(|(d, _)| *d = 0.0);
                        if dot(&s.g, &s.dir) >= 0.0 {
                            s.pairs.clear();
                            s.dir = s.g.iter().map(|v| -v).collect();
                        }
                        // The first step of a steepest descent is scaled to move about one unit.
                        s.alpha = if s.pairs.is_empty() { (1.0 / norm(&s.g)).min(1.0) } else { 1.0 };
                    }
                    s.x.iter().zip(&s.dir).map(|(x, d)| x + s.alpha * d).collect::<Vec<f64>>()
                }
                Method::Adam => adam_step(s, k, config.learning_rate as f64),
            };
            project(&mut next);
            asking.push(i);
            trial.extend(next.iter().map(|&v| v as f32));
        }
        if asking.is_empty() {
            break;
        }
        let (e, g) = batch(eval, &asking, &trial)?;
        eval.progress(k, config.max_steps);
        for (slot, &i) in asking.iter().enumerate() {
            let s = &mut runs[i];
            let x_t: Vec<f64> = trial[slot * dim..(slot + 1) * dim].iter().map(|&v| v as f64).collect();
            let e_t = e[slot] as f64;
            let g_t = projected(i, &x_t, &g[slot * dim..(slot + 1) * dim]);
            let finite = e_t.is_finite() && g_t.iter().all(|v| v.is_finite());
            match config.method {
                Method::Adam => {
                    if !finite {
                        s.outcome = Some(Outcome::NonFinite);
                        continue;
                    }
                    (s.x, s.e, s.g) = (x_t, e_t, g_t);
                    s.steps += 1;
                }
                Method::Lbfgs => {
                    let step: Vec<f64> = x_t.iter().zip(&s.x).map(|(a, b)| a - b).collect();
                    // Armijo: a sufficient decrease along the step actually taken (the box may
                    // have shortened it). Near a minimum the f32 energy stops resolving the
                    // decrease, so there the slopes decide (Hager & Zhang's approximate Wolfe
                    // conditions): the energy has not risen beyond its rounding, and the slope
                    // along the step went from φ'(0) < 0 to within [0.9 φ'(0), -0.8 φ'(0)].
                    let (slope0, slope) = (dot(&s.g, &step), dot(&g_t, &step));
                    let armijo = e_t <= s.e + 1e-4 * slope0;
                    let approx_wolfe = e_t <= s.e + F32_ROUNDING * (1.0 + s.e.abs())
                        && slope >= 0.9 * slope0
                        && slope <= -0.8 * slope0;
                    if finite && (armijo || approx_wolfe) && norm(&step) > 0.0 {
                        let y: Vec<f64> = g_t.iter().zip(&s.g).map(|(a, b)| a - b).collect();
                        let sy = dot(&step, &y);
                        if sy > 1e-12 * norm(&step) * norm(&y) {
                            if s.pairs.len() == config.memory {
                                s.pairs.pop_front();
                            }
                            s.pairs.push_back((step, y, 1.0 / sy));
                        }
                        (s.x, s.e, s.g) = (x_t, e_t, g_t);
                        s.steps += 1;
                        s.dir.clear();
                    } else {
                        s.alpha *= 0.5;
                        let scale = 1.0 + norm(&s.x);
                        if s.alpha * norm(&s.dir) <= 1e-10 * scale {
                            s.outcome = Some(Outcome::Stalled);
                        }
                    }
                }
            }
        }
    }
    let mut out = Descent {
        points: Vec::with_capacity(n * dim),
        energies: Vec::with_capacity(n),
        grad_norms: Vec::with_capacity(n),
        steps: Vec::with_capacity(n),
        outcomes: Vec::with_capacity(n),
        evaluations,
    };
    for s in runs {
        let gn = norm(&s.g);
        let outcome =
            s.outcome.unwrap_or(if gn <= config.grad_tol as f64 { Outcome::Converged } else { Outcome::StepLimit });
        out.points.extend(s.x.iter().map(|&v| v as f32));
        out.energies.push(s.e as f32);
        out.grad_norms.push(gn as f32);
        out.steps.push(s.steps);
        out.outcomes.push(outcome);
    }
    Ok(out)
}

/// -H g by the two-loop recursion, H0 = (s.y / y.y) I from the newest pair.
fn lbfgs_direction(g: &[f64], pairs: &VecDeque<(Vec<f64>, Vec<f64>, f64)>) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = Vec::with_capacity(pairs.len());
    for (s, y, rho) in pairs.iter().rev() {
        let a = rho * dot(s, &q);
        q.iter_mut().zip(y).for_each(|(q, y)| *q -= a * y);
        alphas.push(a);
    }
    if let Some((s, y, _)) = pairs.back() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|q| *q *= gamma);
    }
    for ((s, y, rho), a) in pairs.iter().zip(alphas.into_iter().rev()) {
        let b = rho * dot(y, &q);
        q.iter_mut().zip(s).for_each(|(q, s)| *q += (a - b) * s);
    }
    q.iter().map(|v| -v).collect()
}

/// Adam's next point from the projected gradient (Kingma & Ba 2015, β = 0.9, 0.999).
fn adam_step(s: &mut Start, k: usize, lr: f64) -> Vec<f64> {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let (c1, c2) = (1.0 - b1.powi(k as i32), 1.0 - b2.powi(k as i32));
    s.x.iter()
        .zip(&s.g)
        .zip(s.m.iter_mut().zip(s.v.iter_mut()))
        .map(|((x, g), (m, v))| {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            x - lr * (*m / c1) / ((*v / c2).sqrt() + eps)
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// A local minimum reached from one or more starts.
#[derive(Clone, Debug)]
pub struct Minimum {
    /// The lowest-energy endpoint of the group.
    pub point: Vec<f32>,
    pub energy: f32,
    /// The starts (indices) that reached it.
    pub starts: Vec<usize>,
}

/// Groups the converged and stalled endpoints into distinct minima: in order of energy, an
/// endpoint within `radius` (Euclidean) of a group's lowest point joins that group, else it
/// starts one. Returns the minima by energy, lowest first.
pub fn distinct_minima(descent: &Descent, dim: usize, radius: f32) -> Vec<Minimum> {
    let mut order: Vec<usize> = (0..descent.energies.len())
        .filter(|&i| matches!(descent.outcomes[i], Outcome::Converged | Outcome::Stalled))
        .collect();
    order.sort_by(|&a, &b| descent.energies[a].total_cmp(&descent.energies[b]));
    let mut minima: Vec<Minimum> = Vec::new();
    for i in order {
        let p = &descent.points[i * dim..(i + 1) * dim];
        let near = |m: &Minimum| m.point.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt() <= radius;
        match minima.iter_mut().find(|m| near(m)) {
            Some(m) => m.starts.push(i),
            None => minima.push(Minimum { point: p.to_vec(), energy: descent.energies[i], starts: vec![i] }),
        }
    }
    minima
}
