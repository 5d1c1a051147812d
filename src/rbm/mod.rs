//! Restricted Boltzmann machines: Bernoulli-Bernoulli and Gaussian-Bernoulli (unit-variance
//! visibles), with E(v, h) = -b.v - c.h - h.W.v (+ |v|^2 / 2 for Gaussian visibles) and free
//! energy F(v) = -b.v - sum_j softplus(c_j + W_j.v) (+ |v|^2 / 2).
//!
//! Kernels: `shaders/rbm/rbm.wgsl` (Gibbs half-steps), `shaders/rbm/rbm_update.wgsl` (CD/PCD update),
//! `shaders/rbm/rbm_eval.wgsl` (reconstruction error, free energy), `shaders/rbm/rbm_logz.wgsl` (exact
//! log Z), `shaders/rbm/rbm_ais.wgsl` (AIS). Launchers in [`gpu`], [`logz`], [`ais`]; CPU twins in
//! [`cpu`], [`logz`], [`ais`]. Training loop and schedules in [`train`], checkpoints in
//! [`checkpoint`].

pub mod ais;
pub mod checkpoint;
pub mod cpu;
pub mod deep;
pub mod eval;
pub mod gpu;
pub mod logz;
pub mod train;

use crate::rng::{self, Stream};
use crate::{Error, Result};

/// The visible units' distribution given the hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visible {
    /// Binary visibles: p(v_i = 1 | h) = sigmoid(b_i + W_:i . h).
    Bernoulli,
    /// Real visibles: v_i | h ~ N(b_i + W_:i . h, 1). Standardise the data first.
    Gaussian,
}

impl Visible {
    pub fn name(self) -> &'static str {
        match self {
            Visible::Bernoulli => "bernoulli",
            Visible::Gaussian => "gaussian",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "bernoulli" => Ok(Visible::Bernoulli),
            "gaussian" => Ok(Visible::Gaussian),
            _ => Err(Error::invalid("visible kind", format!("{s:?} is neither \"bernoulli\" nor \"gaussian\""))),
        }
    }
}

/// An RBM's parameters, flattened as `theta = [W (n_hid x n_vis) | b (n_vis) | c (n_hid)]`, the
/// layout the kernels bind.
#[derive(Clone, Debug, PartialEq)]
pub struct Rbm {
    pub n_vis: usize,
    pub n_hid: usize,
    pub visible: Visible,
    pub theta: Vec<f32>,
}

/// The largest layers the u32 indexing of the kernels allows.
const MAX_PARAMS: usize = 1 << 30;

impl Rbm {
    /// Zero biases and weights N(0, std^2) from Philox (`Stream::Init`, chain = hidden unit).
    pub fn random(n_vis: usize, n_hid: usize, visible: Visible, std: f32, seed: u64) -> Result<Self> {
        check_sizes(n_vis, n_hid)?;
        let mut theta = vec![0.0f32; n_hid * n_vis + n_vis + n_hid];
        for (j, row) in theta[..n_hid * n_vis].chunks_mut(n_vis).enumerate() {
            rng::fill_normals(seed, j as u32, 0, Stream::Init, row);
            row.iter_mut().for_each(|w| *w *= std);
        }
        Ok(Self { n_vis, n_hid, visible, theta })
    }

    /// Builds an RBM from its parts, checking shapes and finiteness.
    pub fn from_parts(w: &[f32], b: &[f32], c: &[f32], visible: Visible) -> Result<Self> {
        let (n_vis, n_hid) = (b.len(), c.len());
        check_sizes(n_vis, n_hid)?;
        if w.len() != n_vis * n_hid {
            return Err(Error::invalid(
                "W",
                format!("has {} values, expected n_hid x n_vis = {n_hid} x {n_vis}", w.len()),
            ));
        }
        let theta = [w, b, c].concat();
        let rbm = Self { n_vis, n_hid, visible, theta };
        rbm.check_finite()?;
        Ok(rbm)
    }

    pub fn w(&self) -> &[f32] {
        &self.theta[..self.n_hid * self.n_vis]
    }

    pub fn b(&self) -> &[f32] {
        &self.theta[self.n_hid * self.n_vis..self.n_hid * self.n_vis + self.n_vis]
    }

    pub fn c(&self) -> &[f32] {
        &self.theta[self.n_hid * self.n_vis + self.n_vis..]
    }

    pub fn b_mut(&mut self) -> &mut [f32] {
        let o = self.n_hid * self.n_vis;
        &mut self.theta[o..o + self.n_vis]
    }

    pub fn c_mut(&mut self) -> &mut [f32] {
        let o = self.n_hid * self.n_vis + self.n_vis;
        &mut self.theta[o..]
    }

    /// Names the first non-finite parameter (a diverged run or a corrupt checkpoint).
    pub fn check_finite(&self) -> Result<()> {
        if let Some(k) = self.theta.iter().position(|v| !v.is_finite()) {
            let hv = self.n_hid * self.n_vis;
            let what = if k < hv {
                format!("W[{}, {}]", k / self.n_vis, k % self.n_vis)
            } else if k < hv + self.n_vis {
                format!("b[{}]", k - hv)
            } else {
                format!("c[{}]", k - hv - self.n_vis)
            };
            return Err(Error::invalid(
                "RBM parameters",
                format!("{what} is {} (training diverged? lower the learning rate)", self.theta[k]),
            ));
        }
        Ok(())
    }

    /// Checks that `values` holds whole rows of this RBM's visible layer and returns the rows.
    pub fn check_rows(&self, values: &[f32], what: &str) -> Result<usize> {
        if !values.len().is_multiple_of(self.n_vis) {
            return Err(Error::invalid(
                what,
                format!("{} values are not whole rows of the model's {} visible units", values.len(), self.n_vis),
            ));
        }
        Ok(values.len() / self.n_vis)
    }

    /// Checks a dataset's image size against the model.
    pub fn check_data(&self, data: &crate::data::Dataset) -> Result<()> {
        if data.dim() != self.n_vis {
            return Err(Error::invalid(
                "data",
                format!(
                    "images are {}x{}x{} = {} values but the model has {} visible units",
                    data.channels,
                    data.height,
                    data.width,
                    data.dim(),
                    self.n_vis
                ),
            ));
        }
        Ok(())
    }

    #[cfg(any(test, feature = "internals"))]
    /// Free energy of one row in f64 (a reference for tests and host-side metrics).
    pub fn free_energy_f64(&self, v: &[f32]) -> f64 {
        let (nv, w, b, c) = (self.n_vis, self.w(), self.b(), self.c());
        let mut f = 0.0f64;
        for i in 0..nv {
            f -= b[i] as f64 * v[i] as f64;
            if self.visible == Visible::Gaussian {
                f += 0.5 * (v[i] as f64).powi(2);
            }
        }
        for j in 0..self.n_hid {
            let a = c[j] as f64 + (0..nv).map(|i| w[j * nv + i] as f64 * v[i] as f64).sum::<f64>();
            f -= softplus_f64(a);
        }
        f
    }
}

pub(crate) fn check_sizes(n_vis: usize, n_hid: usize) -> Result<()> {
    if n_vis == 0 || n_hid == 0 {
        return Err(Error::invalid(
            "RBM size",
            format!("needs at least one visible and one hidden unit, got {n_vis} x {n_hid}"),
        ));
    }
    if n_vis.saturating_mul(n_hid) > MAX_PARAMS || n_hid > 65533 {
        return Err(Error::invalid(
            "RBM size",
            format!("{n_vis} x {n_hid} is too large (at most 2^30 weights and 65533 hidden units)"),
        ));
    }
    Ok(())
}

pub fn softplus_f64(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// log(1 + e^x) in f32 exactly as the kernels write it.
#[inline]
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + (1.0 + (-x.abs()).exp()).ln()
}

/// 1 / (1 + e^-a), with the branch-free exp of the CPU energies so loops over it vectorise.
#[inline(always)]
pub fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + crate::num::lanes::exp(-a))
}

/// Mirrors the `Params` struct of the RBM kernels (rbm.wgsl, rbm_update.wgsl, rbm_eval.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct KernelParams {
    pub rows: u32,
    pub n_vis: u32,
    pub n_hid: u32,
    pub in_offset: u32,
    pub seed: [u32; 2],
    pub step: u32,
    pub chain_offset: u32,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub neg_rows: u32,
    pub out_offset: u32,
    pub gaussian: u32,
    /// 1: `update` leaves the visible bias and its velocity alone (a DBM's layer 2, whose
    /// "visible" bias is h1's, held by layer 1).
    pub frozen_visible_bias: u32,
    pub _pad: u32,
}

#[cfg(any(test, feature = "internals"))]
/// The params structs mirrored from the WGSL, for tests/layouts.rs.
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        KernelParams,
        "rbm/rbm.wgsl",
        "Params",
        [
            rows,
            n_vis,
            n_hid,
            in_offset,
            seed,
            step,
            chain_offset,
            lr,
            momentum,
            weight_decay,
            neg_rows,
            out_offset,
            gaussian,
            frozen_visible_bias
        ]
    )]
}
