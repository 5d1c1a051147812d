//! Group averages (`group`): E_G(x) = -log mean_g exp(-E(g.x)) or mean_g E(g.x) over a finite
//! group acting linearly on the points, which makes any energy invariant under it. The
//! generated WGSL ([`group_wgsl_function`]) follows [`group_energy_grad`] step by step; image
//! groups call `group_image_source` in shaders/energy/group.wgsl.

use super::{Energy, EnergyInternals};
use crate::num::Field;

/// The finite group of an [`Energy::Group`], acting linearly on points.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupAction {
    /// 2-D points: one row-major 2x2 matrix per element (the rotations by 2πk/n, then for the
    /// dihedral group each rotation times the reflection (x, y) -> (x, -y)), rounded to f32 on
    /// the host so both executors multiply by the same numbers.
    Plane { matrices: Vec<[f32; 4]> },
    /// Images [channels, side, side] (row-major): the 4 quarter turns, and with `flips` each
    /// followed by a left-right mirror: permutations of the pixels, applied to every channel.
    Image { channels: usize, side: usize, flips: bool },
}

impl GroupAction {
    /// |G|.
    pub fn order(&self) -> usize {
        match self {
            GroupAction::Plane { matrices } => matrices.len(),
            GroupAction::Image { flips, .. } => 4 << (*flips as usize),
        }
    }

    /// The dimension of the points the group acts on.
    pub(crate) fn dim(&self) -> usize {
        match self {
            GroupAction::Plane { .. } => 2,
            GroupAction::Image { channels, side, .. } => channels * side * side,
        }
    }

    /// Writes g_k . x into `out`.
    #[inline(always)]
    pub(crate) fn apply<T: Field>(&self, k: usize, x: &[T], out: &mut [T]) {
        match self {
            GroupAction::Plane { matrices } => {
                let m = matrices[k].map(T::from_f32);
                out[0] = m[0] * x[0] + m[1] * x[1];
                out[1] = m[2] * x[0] + m[3] * x[1];
            }
            GroupAction::Image { side, .. } => {
                for (p, o) in out.iter_mut().enumerate() {
                    *o = x[image_source(p, k, *side)];
                }
            }
        }
    }

    /// acc = acc * scale + w * g_k^T gt: the pulled-back gradient of E(g_k . x), accumulated.
    #[inline(always)]
    fn pull_back<T: Field>(&self, k: usize, gt: &[T], acc: &mut [T], scale: T, w: T) {
        match self {
            GroupAction::Plane { matrices } => {
                let m = matrices[k].map(T::from_f32);
                acc[0] = acc[0] * scale + w * (m[0] * gt[0] + m[2] * gt[1]);
                acc[1] = acc[1] * scale + w * (m[1] * gt[0] + m[3] * gt[1]);
            }
            GroupAction::Image { side, .. } => {
                for (p, &v) in gt.iter().enumerate() {
                    let s = image_source(p, k, *side);
                    acc[s] = acc[s] * scale + w * v;
                }
            }
        }
    }
}

/// The pixel that element `k` of an image group moves to pixel `p` ((g_k . x)[p] = x[source]):
/// k % 4 quarter turns (row, col) -> (col, side-1-row), then for k >= 4 a mirror of the column.
/// The twin of `group_image_source` in `shaders/energy/group.wgsl`.
#[inline(always)]
pub fn image_source(p: usize, k: usize, side: usize) -> usize {
    let plane = side * side;
    let (c, r) = (p / plane, p % plane);
    let (mut a, mut b) = (r / side, r % side);
    for _ in 0..k % 4 {
        (a, b) = (b, side - 1 - a);
    }
    if k >= 4 {
        b = side - 1 - b;
    }
    c * plane + a * side + b
}

/// How an [`Energy::Group`] averages over the group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GroupMode {
    /// E_G = -log mean_g exp(-E(g.x)): the density is the average of the transformed densities.
    LogMeanExp,
    /// E_G = mean_g E(g.x): the density is their geometric mean.
    Mean,
}

/// E_G at x with weight * dE_G/dx added to g, where `inner(xt, gt)` returns E(xt) and adds
/// dE/dxt to gt: the one formula of [`Energy::Group`] (the WGSL of [`group_wgsl_function`]
/// follows it step by step). Both modes are a weighted average of the pulled-back gradients,
/// sum_g w_g g^T dE(g.x) / sum_g w_g, with w_g = exp(-E(g.x)) (kept relative to the running
/// maximum, as the online log-sum-exp of [`super::GaussianMixture`], so no branch on data) or 1.
#[inline(always)]
pub(crate) fn group_energy_grad<T: Field>(
    action: &GroupAction,
    mode: GroupMode,
    x: &[T],
    g: &mut [T],
    weight: T,
    mut inner: impl FnMut(&[T], &mut [T]) -> T,
) -> T {
    let c = T::from_f32;
    let d = x.len();
    let mut small = [T::zero(); 96];
    let mut large = Vec::new();
    let scratch: &mut [T] = if 3 * d <= small.len() {
        &mut small[..3 * d]
    } else {
        large.resize(3 * d, T::zero());
        &mut large
    };
    let (xt, rest) = scratch.split_at_mut(d);
    let (gt, acc) = rest.split_at_mut(d);
    let (mut run_max, mut run_sum, mut e_sum) = (c(-3.0e38), T::zero(), T::zero());
    for k in 0..action.order() {
        action.apply(k, x, xt);
        gt.iter_mut().for_each(|v| *v = T::zero());
        let e = inner(xt, gt);
        e_sum += e;
        let a = match mode {
            GroupMode::LogMeanExp => -e,
            GroupMode::Mean => T::zero(),
        };
        let m = run_max.max(a);
        let (scale_old, w) = ((run_max - m).exp(), (a - m).exp());
        run_max = m;
        run_sum = run_sum * scale_old + w;
        action.pull_back(k, gt, acc, scale_old, w);
    }
    for i in 0..d {
        g[i] += weight * acc[i] / run_sum;
    }
    weight
        * match mode {
            GroupMode::LogMeanExp => c((action.order() as f32).ln()) - (run_max + run_sum.ln()),
            GroupMode::Mean => e_sum / run_sum,
        }
}

/// The WGSL function `name(x, g, base, weight)` of an [`Energy::Group`] whose parameters start
/// at `base`: [`group_energy_grad`]'s arithmetic, with the inner energy's calls (and any
/// functions they need, added to `functions`) evaluated on the local arrays xt, gt.
pub(crate) fn group_wgsl_function(
    name: &str,
    inner: &Energy,
    action: &GroupAction,
    mode: GroupMode,
    base: usize,
    functions: &mut String,
) -> String {
    let (header, apply, pull_back) = match action {
        GroupAction::Plane { matrices } => (
            4 * matrices.len(),
            "let m = base + 4u * k;\n        \
             xt[0] = energy_params[m] * (*x_in)[0] + energy_params[m + 1u] * (*x_in)[1];\n        \
             xt[1] = energy_params[m + 2u] * (*x_in)[0] + energy_params[m + 3u] * (*x_in)[1];"
                .to_string(),
            "acc[0] = acc[0] * scale_old + w * (energy_params[m] * gt[0] + energy_params[m + 2u] * gt[1]);\n        \
             acc[1] = acc[1] * scale_old + w * (energy_params[m + 1u] * gt[0] + energy_params[m + 3u] * gt[1]);"
                .to_string(),
        ),
        GroupAction::Image { side, .. } => (
            0,
            format!("for (var p = 0u; p < DIM; p++) {{ xt[p] = (*x_in)[group_image_source(p, k, {side}u)]; }}"),
            format!(
                "for (var p = 0u; p < DIM; p++) {{\n            let s = group_image_source(p, k, {side}u);\n            \
                 acc[s] = acc[s] * scale_old + w * gt[p];\n        }}"
            ),
        ),
    };
    let mut inner_base = base + header;
    let mut calls = String::new();
    inner.wgsl_calls(1.0, &mut inner_base, &mut calls, functions);
    let a = match mode {
        GroupMode::LogMeanExp => "-e",
        GroupMode::Mean => "0.0",
    };
    let energy = match mode {
        GroupMode::LogMeanExp => format!("{:?} - (run_max + log(run_sum))", (action.order() as f32).ln()),
        GroupMode::Mean => "e_sum / run_sum".to_string(),
    };
    format!(
        "fn {name}(x_in: ptr<function, array<f32, DIM>>, g_in: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {{\n    \
         var xt: array<f32, DIM>;\n    var gt: array<f32, DIM>;\n    var acc: array<f32, DIM>;\n    \
         var run_max = -3.0e38;\n    var run_sum = 0.0;\n    var e_sum = 0.0;\n    \
         for (var k = 0u; k < {order}u; k++) {{\n        {apply}\n        \
         for (var i = 0u; i < DIM; i++) {{ gt[i] = 0.0; }}\n        var e = 0.0;\n        \
         {{\n            let x = &xt;\n            let g = &gt;\n    {calls}        }}\n        \
         e_sum += e;\n        let a = {a};\n        let mx = max(run_max, a);\n        \
         let scale_old = exp(run_max - mx);\n        let w = exp(a - mx);\n        run_max = mx;\n        \
         run_sum = run_sum * scale_old + w;\n        {pull_back}\n    }}\n    \
         for (var i = 0u; i < DIM; i++) {{ (*g_in)[i] += weight * acc[i] / run_sum; }}\n    \
         return weight * ({energy});\n}}\n",
        order = action.order(),
    )
}

/// Checks a group around `inner`: a non-empty group acting on points of `inner`'s dimension,
/// finite matrices, and no layered network inside.
pub(crate) fn validate_group(inner: &Energy, action: &GroupAction) -> crate::Result<()> {
    use crate::Error;
    inner.validate()?;
    if inner.has_layered_net() {
        // Layered networks run in their own kernels, outside the per-chain energy a group
        // evaluates |G| times; MLP-shaped networks are inlined and fine.
        return Err(Error::invalid(
            "energy",
            "a group cannot wrap a layered network (net: with convolutions or several outputs); MLP-shaped networks are fine",
        ));
    }
    if action.order() == 0 {
        return Err(Error::invalid("group", "the group has no elements"));
    }
    if action.dim() != inner.dim() {
        let (field, what) = match action {
            GroupAction::Plane { .. } => ("group", "2-D groups act on 2-D points"),
            GroupAction::Image { .. } => ("image", "channels x height x width must equal the energy's dimension"),
        };
        return Err(Error::invalid(field, format!("{what}, but the energy has dimension {}", inner.dim())));
    }
    if let GroupAction::Plane { matrices } = action {
        super::term::check_finite("group matrices", &matrices.concat())?;
    }
    Ok(())
}
