//! Exact log Z by enumerating the hidden layer: the kernel `shaders/rbm/rbm_logz.wgsl`, its launcher
//! [`log_z_gpu`], its CPU twin [`log_z_cpu`] (same partition, Gray-code order and f32
//! arithmetic), and float64 references for tests. A binary model with a small visible layer and
//! a large hidden one is enumerated over its visibles (the layers' roles swapped). Exact samples
//! ([`exact_samples`]) start the reverse AIS check when the hidden layer is small.

use super::gpu::kernel;
use super::{Rbm, Visible, sigmoid, softplus, softplus_f64};
use crate::gpu::launch::{ParamSlots, bind_group, check_fits, dispatch, workgroups};
use crate::gpu::{ContextInternals, GpuContext};
use crate::rng::{self, Stream};
use crate::{Error, Result};
use rayon::prelude::*;
use std::borrow::Cow;

/// 2^25 hidden configurations take seconds on a GPU; beyond that use AIS.
pub const MAX_EXACT_HIDDEN: usize = 25;
/// Exact samples hold the 2^n_hid unnormalised log p(h) in memory (8 MB at 20).
pub const MAX_EXACT_SAMPLE_HIDDEN: usize = 20;
/// Gray-code walk length per invocation when there are enough invocations anyway.
const MIN_LOW_BITS: u32 = 6;
/// At most 2^14 invocations, each with an n_vis scratch row.
const MAX_THREAD_BITS: u32 = 14;

/// Mirrors `Params` in rbm_logz.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct LogzParams {
    n_vis: u32,
    n_hid: u32,
    low_bits: u32,
    threads: u32,
    gaussian: u32,
    _pad: [u32; 3],
}

#[cfg(any(test, feature = "internals"))]
/// The params structs mirrored from the WGSL, for tests/layouts.rs.
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(LogzParams, "rbm/rbm_logz.wgsl", "Params", [n_vis, n_hid, low_bits, threads, gaussian])]
}

/// (low bits walked per invocation, invocations).
fn plan(n_hid: usize) -> (u32, u32) {
    let h = n_hid as u32;
    let low = if h <= MIN_LOW_BITS { h } else { MIN_LOW_BITS.max(h.saturating_sub(MAX_THREAD_BITS)) };
    (low, 1 << (h - low))
}

fn check(rbm: &Rbm) -> Result<()> {
    rbm.check_finite()?;
    if rbm.n_hid > MAX_EXACT_HIDDEN {
        return Err(Error::invalid(
            "exact log Z",
            format!(
                "the model has {} hidden units and {} {} visibles: enumerating 2^{} configurations of either layer is beyond the limit of {MAX_EXACT_HIDDEN} units (a visible layer only counts when binary); estimate log Z with AIS instead (`ebm rbm eval --ais-runs R --betas N`)",
                rbm.n_hid,
                rbm.n_vis,
                rbm.visible.name(),
                rbm.n_hid.min(rbm.n_vis)
            ),
        ));
    }
    Ok(())
}

/// The layer exact log Z enumerates and its size: the hidden one when small enough, else the
/// visible one when binary and small enough; None when neither is.
pub fn enumerated_layer(rbm: &Rbm) -> Option<(&'static str, usize)> {
    if rbm.n_hid <= MAX_EXACT_HIDDEN {
        Some(("hidden", rbm.n_hid))
    } else if rbm.visible == Visible::Bernoulli && rbm.n_vis <= MAX_EXACT_HIDDEN {
        Some(("visible", rbm.n_vis))
    } else {
        None
    }
}

/// The model whose hidden layer the kernels enumerate: the RBM itself, or the same binary RBM
/// with the layers' roles swapped (W transposed, b and c exchanged; Z is symmetric in them)
/// when only its visible layer is small enough.
fn to_enumerate(rbm: &Rbm) -> Result<Cow<'_, Rbm>> {
    if !matches!(enumerated_layer(rbm), Some(("visible", _))) {
        check(rbm)?;
        return Ok(Cow::Borrowed(rbm));
    }
    rbm.check_finite()?;
    let (nv, nh, w) = (rbm.n_vis, rbm.n_hid, rbm.w());
    let wt: Vec<f32> = (0..nv).flat_map(|i| (0..nh).map(move |j| w[j * nv + i])).collect();
    Ok(Cow::Owned(Rbm::from_parts(&wt, rbm.c(), rbm.b(), Visible::Bernoulli)?))
}

/// The constant the kernels leave out: n_vis/2 log(2 pi) for Gaussian visibles.
fn constant(rbm: &Rbm) -> f64 {
    match rbm.visible {
        Visible::Bernoulli => 0.0,
        Visible::Gaussian => 0.5 * rbm.n_vis as f64 * (2.0 * std::f64::consts::PI).ln(),
    }
}

fn merge(parts: impl IntoIterator<Item = (f64, f64)>) -> f64 {
    let parts: Vec<(f64, f64)> = parts.into_iter().filter(|p| p.1 > 0.0).collect();
    let m = parts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    m + parts.iter().map(|(pm, s)| s * (pm - m).exp()).sum::<f64>().ln()
}

/// The CPU twin of `logz_partial`: invocation t's running (max, sum) in f32, merged in f64.
pub fn log_z_cpu(rbm: &Rbm) -> Result<f64> {
    let rbm = &*to_enumerate(rbm)?;
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (low, threads) = plan(nh);
    let (w, b, c) = (rbm.w(), rbm.b(), rbm.c());
    let gaussian = rbm.visible == Visible::Gaussian;
    let parts: Vec<(f64, f64)> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut act = b.to_vec();
            let mut ch = 0.0f32;
            for j in low as usize..nh {
                if (t >> (j as u32 - low)) & 1 != 0 {
                    ch += c[j];
                    for (a, &wji) in act.iter_mut().zip(&w[j * nv..(j + 1) * nv]) {
                        *a += wji;
                    }
                }
            }
            let (mut m, mut s) = (-3.0e38f32, 0.0f32);
            for g in 0u32..(1 << low) {
                if g > 0 {
                    let bit = g.trailing_zeros() as usize;
                    let sign = if ((g ^ (g >> 1)) >> bit) & 1 != 0 { 1.0f32 } else { -1.0 };
                    ch += sign * c[bit];
                    for (a, &wji) in act.iter_mut().zip(&w[bit * nv..(bit + 1) * nv]) {
                        *a += sign * wji;
                    }
                }
                let mut term = ch;
                for &a in &act {
                    term += if gaussian { 0.5 * a * a } else { softplus(a) };
                }
                if term > m {
                    s = s * (m - term).exp() + 1.0;
                    m = term;
                } else {
                    s += (term - m).exp();
                }
            }
            (m as f64, s as f64)
        })
        .collect();
    Ok(merge(parts) + constant(rbm))
}

/// Exact log Z on the GPU (one submit, one 8-byte readback).
pub fn log_z_gpu(ctx: &GpuContext, rbm: &Rbm) -> Result<f64> {
    let rbm = &*to_enumerate(rbm)?;
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (low, threads) = plan(nh);
    check_fits(ctx, threads as usize, nv, "log Z scratch rows")?;
    let partial = kernel(ctx, "rbm/rbm_logz.wgsl", "logz_partial")?;
    let reduce = kernel(ctx, "rbm/rbm_logz.wgsl", "logz_reduce")?;
    let p = LogzParams {
        n_vis: nv as u32,
        n_hid: nh as u32,
        low_bits: low,
        threads,
        gaussian: (rbm.visible == Visible::Gaussian) as u32,
        _pad: [0; 3],
    };
    let partials = ctx.scoped("exact log Z", || -> Result<wgpu::Buffer> {
        let theta = ctx.storage_buffer("rbm theta", bytemuck::cast_slice(&rbm.theta));
        let act = ctx.zeroed_storage_buffer("log Z scratch", threads as u64 * nv as u64 * 4);
        let partials = ctx.zeroed_storage_buffer("log Z partials", (threads as u64 + 1) * 8);
        let mut params = ParamSlots::new(ctx, 1);
        let size = std::mem::size_of::<LogzParams>() as u64;
        let bg = bind_group(ctx, &partial, &params.buffer, size, &[&theta, &act, &partials]);
        // Each kernel owns its layout, so each gets its own bind group.
        let bg_reduce = bind_group(ctx, &reduce, &params.buffer, size, &[&theta, &act, &partials]);
        let off = params.push(&p);
        params.flush(ctx);
        ctx.submit_pass("exact log Z", |pass| {
            dispatch(pass, &partial, &bg, off, threads, 1);
            workgroups(pass, &reduce, &bg_reduce, off, 1);
        })?;
        Ok(partials)
    })??;
    let bytes = ctx.read_buffers(&[(&partials, (threads as u64 + 1) * 8)])?;
    let v: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes[0]);
    let (m, s) = (v[2 * threads as usize] as f64, v[2 * threads as usize + 1] as f64);
    if !(s > 0.0 && m.is_finite() && s.is_finite()) {
        return Err(Error::invalid("exact log Z", format!("the GPU sum is not finite (max {m}, sum {s})")));
    }
    Ok(m + s.ln() + constant(rbm))
}

/// Calls `f(h, term)` for the hidden configurations of invocation `t` of [`plan`] (low bits by
/// Gray code), term = log of the unnormalised p(h) in float64: c.h + sum_i softplus(b_i +
/// W_:i.h), or c.h + |b + W^T h|^2 / 2 for Gaussian visibles (the constant left out).
fn walk_hidden_f64(rbm: &Rbm, w: &[f64], c: &[f64], low: u32, t: u32, mut f: impl FnMut(u32, f64)) {
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let gaussian = rbm.visible == Visible::Gaussian;
    let mut act: Vec<f64> = rbm.b().iter().map(|&x| x as f64).collect();
    let mut ch = 0.0f64;
    for j in low as usize..nh {
        if (t >> (j as u32 - low)) & 1 != 0 {
            ch += c[j];
            act.iter_mut().zip(&w[j * nv..(j + 1) * nv]).for_each(|(a, wji)| *a += wji);
        }
    }
    for g in 0u32..(1 << low) {
        if g > 0 {
            let bit = g.trailing_zeros() as usize;
            let sign = if ((g ^ (g >> 1)) >> bit) & 1 != 0 { 1.0 } else { -1.0 };
            ch += sign * c[bit];
            act.iter_mut().zip(&w[bit * nv..(bit + 1) * nv]).for_each(|(a, wji)| *a += sign * wji);
        }
        let term = ch + act.iter().map(|&a| if gaussian { 0.5 * a * a } else { softplus_f64(a) }).sum::<f64>();
        f(((t as u64) << low) as u32 | (g ^ (g >> 1)), term);
    }
}

fn weights_f64(rbm: &Rbm) -> (Vec<f64>, Vec<f64>) {
    (rbm.w().iter().map(|&x| x as f64).collect(), rbm.c().iter().map(|&x| x as f64).collect())
}

#[cfg(any(test, feature = "internals"))]
/// Reference: the same enumeration in float64, a configuration at a time by Gray code.
pub fn log_z_hidden_f64(rbm: &Rbm) -> Result<f64> {
    check(rbm)?;
    let (low, threads) = plan(rbm.n_hid);
    let (w, c) = weights_f64(rbm);
    let parts: Vec<(f64, f64)> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut terms = Vec::with_capacity(1 << low);
            walk_hidden_f64(rbm, &w, &c, low, t, |_, term| terms.push(term));
            let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            (m, terms.iter().map(|x| (x - m).exp()).sum::<f64>())
        })
        .collect();
    Ok(merge(parts) + constant(rbm))
}

/// `n` exact, independent samples of the model's visible layer (rows of n_vis): h from p(h) by
/// enumerating the hidden layer (float64, at most [`MAX_EXACT_SAMPLE_HIDDEN`] units), then v
/// from p(v | h). Sample s draws from Philox counters (s, 0, Init, 0) for h and (s, 1, Init,
/// i / 4) for v_i, so the samples depend on (seed, s) only.
pub fn exact_samples(rbm: &Rbm, first: u32, n: usize, seed: u64) -> Result<Vec<f32>> {
    rbm.check_finite()?;
    if rbm.n_hid > MAX_EXACT_SAMPLE_HIDDEN {
        return Err(Error::invalid(
            "exact samples",
            format!(
                "the model has {} hidden units; drawing exact samples enumerates at most {MAX_EXACT_SAMPLE_HIDDEN}",
                rbm.n_hid
            ),
        ));
    }
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    let (low, _) = plan(nh);
    let (w, c) = weights_f64(rbm);
    let mut terms = vec![0.0f64; 1 << nh];
    terms.par_chunks_mut(1 << low).enumerate().for_each(|(t, chunk)| {
        walk_hidden_f64(rbm, &w, &c, low, t as u32, |h, term| chunk[(h & ((1 << low) - 1)) as usize] = term);
    });
    let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut cdf = Vec::with_capacity(terms.len());
    let mut total = 0.0f64;
    for &x in &terms {
        total += (x - m).exp();
        cdf.push(total);
    }
    let gaussian = rbm.visible == Visible::Gaussian;
    let mut out = vec![0.0f32; n * nv];
    out.par_chunks_mut(nv).enumerate().for_each(|(s, row)| {
        // 48 random bits (uniform on (0, 1]): the cdf's steps can be far below 2^-24.
        let u = rng::uniform4(seed, first + s as u32, 0, Stream::Init, 0);
        let x = ((u[0] as f64 + (u[1] as f64 - 1.0) / 16_777_216.0) * total).min(total);
        let h = cdf.partition_point(|&p| p < x).min(cdf.len() - 1);
        row.copy_from_slice(rbm.b());
        for j in (0..nh).filter(|j| (h >> j) & 1 != 0) {
            row.iter_mut().zip(&rbm.w()[j * nv..(j + 1) * nv]).for_each(|(a, &wji)| *a += wji);
        }
        for (q, block) in row.chunks_mut(4).enumerate() {
            if gaussian {
                let z = rng::normal4(seed, first + s as u32, 1, Stream::Init, q as u32);
                block.iter_mut().zip(z).for_each(|(x, z)| *x += z);
            } else {
                let u = rng::uniform4(seed, first + s as u32, 1, Stream::Init, q as u32);
                block.iter_mut().zip(u).for_each(|(x, u)| *x = (u < sigmoid(*x)) as u32 as f32);
            }
        }
    });
    Ok(out)
}

#[cfg(any(test, feature = "internals"))]
/// Reference: log sum over both layers of exp(-E(v, h)) in float64 (Bernoulli visibles,
/// n_vis + n_hid <= 30).
pub fn log_z_brute_force_f64(rbm: &Rbm) -> Result<f64> {
    let (nv, nh) = (rbm.n_vis, rbm.n_hid);
    if rbm.visible != Visible::Bernoulli || nv + nh > 30 {
        return Err(Error::invalid("brute-force log Z", "needs Bernoulli visibles and at most 30 units"));
    }
    let (w, b, c) = (rbm.w(), rbm.b(), rbm.c());
    let neg_energies: Vec<f64> = (0u64..1 << (nv + nh))
        .into_par_iter()
        .map(|s| {
            let v = |i: usize| ((s >> i) & 1) as f64;
            let h = |j: usize| ((s >> (nv + j)) & 1) as f64;
            let mut e = 0.0;
            for i in 0..nv {
                e += b[i] as f64 * v(i);
            }
            for j in 0..nh {
                if h(j) != 0.0 {
                    e += c[j] as f64;
                    for i in 0..nv {
                        e += w[j * nv + i] as f64 * v(i);
                    }
                }
            }
            e
        })
        .collect();
    let m = neg_energies.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    Ok(m + neg_energies.iter().map(|x| (x - m).exp()).sum::<f64>().ln())
}
