//! `ebm bench --suite nn`: the layer kernels and the layered samplers on networks.
//!
//! Three groups of rows, one table:
//! - GEMM: Linear 256 -> 64 at 1024 and 8192 rows (the UvA network's dense layer at sampler
//!   batch sizes) and a 1024 x 1024 x 1024 square; GPU `NnKernels::linear_forward` (bias
//!   epilogue) timed with `NnKernels::time`, CPU `ops::linear_forward`, and the executor's
//!   raw sgemm (`num::matmul`) at the same sizes as the reference column.
//! - Conv: forward and input gradient of the UvA MNIST ConvEBM's four convolutions at a batch
//!   of images, GPU (implicit GEMM) and CPU (im2col + sgemm), with raw sgemm at the equivalent
//!   im2col GEMM sizes (forward: out_c x patch x images*pixels; input gradient: patch x out_c x
//!   images*pixels); on the CPU also the weight gradient (out_c x images*pixels x patch), and
//!   the same three at the sizes of a WRN-16-4 backbone on 32x32 images (CPU only).
//! - Samplers: ULA and MALA chain-steps/s on the UvA ConvEBM (weights from `Network::random`
//!   with the bench's seed, so `ebm init-net` writes the same file for bench/torch_nn.py).
//!
//! The CPU kernel rows split the batch over the rayon threads the way the CPU executor's callers
//! do (the ops themselves are single-threaded); the sgemm reference is split the same way, so
//! "of sgemm" compares equal work. CPU timings: one warm-up call, repetitions calibrated to
//! about `min_secs`, the best of three timings.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use crate::energy::Energy;
use crate::gpu::{ContextInternals, GpuContext};
use crate::nn::gpu::{Epilogue, NnKernels, NnOp, Slice};
use crate::nn::ops::{self, ConvGeom, Layout};
use crate::nn::{Architecture, LayerKind, Network, NetworkInternals};
use crate::rng;
use crate::sampler::cpu::CpuSampler;
use crate::sampler::layered::gpu_sampler;
use crate::sampler::{ChainSampler, SamplerConfig, SamplerKind};
use anyhow::{Context, Result};
use rayon::prelude::*;

use super::roofline::{self, Cost, Peaks};
use super::{BenchArgs, SEED, si};

/// The CNNModel of the UvA deep-learning tutorial 8 (E = -f), as bench/torch_nn.py has it.
pub const UVA_SPEC: &str =
    "1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f";

/// Step size of the sampler rows (bench/torch_nn.py's STEP_SIZE).
const STEP_SIZE: f32 = 0.001;

/// One row: a kernel timing (ms per run) or a sampler timing (ms per step).
pub struct NnRow {
    executor: &'static str,
    /// gemm, linear fwd, conv fwd, conv in-grad, conv fwd+in-grad, ULA, MALA.
    case: String,
    /// The operation's shape, or the network.
    size: String,
    /// Rows, images or chains.
    batch: usize,
    /// Repetitions (kernels) or steps (samplers) timed; None for derived rows.
    reps: Option<u32>,
    /// Seconds per repetition or step.
    seconds: f64,
    /// FLOPs per repetition (the GEMM's 2 m n k) or step (all chains, the roofline model's).
    flops: f64,
    /// The roofline model's cost per repetition or step (all chains).
    cost: Cost,
    /// Chain-steps per second (sampler rows).
    chain_steps: Option<f64>,
    /// GPU dispatches per run (kernels) or per step (samplers).
    dispatches: Option<f64>,
    /// Seconds per repetition of raw sgemm on the equivalent GEMM(s) (CPU kernel rows).
    sgemm_seconds: Option<f64>,
}

impl NnRow {
    fn gflops(&self) -> f64 {
        self.flops / self.seconds / 1e9
    }
    fn sgemm_gflops(&self) -> Option<f64> {
        self.sgemm_seconds.map(|s| self.flops / s / 1e9)
    }
    /// Our GFLOP/s over raw sgemm's at the same sizes.
    fn of_sgemm(&self) -> Option<f64> {
        self.sgemm_seconds.map(|s| s / self.seconds)
    }
}

/// Random N(0, 1) data (values do not affect timings; finite, non-zero).
fn randn(stream: u32, len: usize) -> Vec<f32> {
    rng::initial_states(SEED ^ 0x5eed, stream, 1, len, 1.0)
}

/// Warm-up, repetitions calibrated to about `min_secs`, best of three: (reps, seconds per rep).
fn time_cpu(min_secs: f64, mut f: impl FnMut()) -> (u32, f64) {
    f();
    let start = Instant::now();
    f();
    let one = start.elapsed().as_secs_f64().max(1e-7);
    let reps = ((min_secs / one).ceil() as u32).clamp(1, 100_000);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    (reps, best / reps as f64)
}

/// `NnKernels::time` (its own warm-up run, then one timed submit): one repetition first, and
/// more in one submit only when that took under `min_secs` (a software adapter spends seconds
/// on one run of the larger ops). Returns (reps, seconds per rep).
fn time_gpu(nn: &NnKernels, ops: &[&NnOp], min_secs: f64) -> Result<(u32, f64)> {
    let one = nn.time(ops, 1)?.as_secs_f64().max(1e-7);
    if one >= 0.5 * min_secs {
        return Ok((1, one));
    }
    let reps = ((min_secs / one).ceil() as u32).clamp(1, 10_000);
    let t = nn.time(ops, reps as usize)?.as_secs_f64();
    Ok((reps, t / reps as f64))
}

/// Splits `total` items into one contiguous part per rayon thread: (first, count) pairs.
fn parts(total: usize) -> Vec<(usize, usize)> {
    let p = rayon::current_num_threads().clamp(1, total.max(1));
    let per = total.div_ceil(p);
    (0..p).map(|i| (i * per, per.min(total.saturating_sub(i * per)))).filter(|&(_, c)| c > 0).collect()
}

pub(super) struct Sizes {
    min_secs: f64,
    pub gemms: Vec<(usize, usize, usize)>,
    pub conv_batch: usize,
    /// Images per timing at the WRN sizes.
    wrn_batch: usize,
    pub chains: Vec<usize>,
    /// Chain-steps per sampler timing.
    budget: f64,
    /// Steps clamp.
    steps: (f64, f64),
    /// On a software adapter, skip a GPU sampler timing whose estimate exceeds this (seconds).
    software_cap: f64,
}

pub(super) fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            min_secs: 0.1,
            gemms: vec![(1024, 256, 64), (8192, 256, 64), (1024, 1024, 1024)],
            conv_batch: 64,
            wrn_batch: 4,
            chains: vec![128, 1024, 8192],
            budget: 2.0e3,
            steps: (2.0, 20.0),
            software_cap: 15.0,
        }
    } else {
        Sizes {
            min_secs: 0.4,
            gemms: vec![(1024, 256, 64), (8192, 256, 64), (1024, 1024, 1024)],
            conv_batch: 256,
            wrn_batch: 32,
            chains: vec![128, 1024, 8192],
            budget: 2.0e4,
            steps: (5.0, 10000.0),
            software_cap: 100.0,
        }
    }
}

/// The convolutions of a WRN-16-4 backbone on 32x32 RGB images (Zagoruyko & Komodakis 2016, as
/// JEM trains it): the stem, each group's 3x3 convolution, and the strided ones between groups.
pub(super) fn wrn_convs(batch: usize) -> Vec<(String, ConvGeom)> {
    [(3, 32, 16, 1), (64, 32, 64, 1), (64, 32, 128, 2), (128, 16, 128, 1), (128, 16, 256, 2), (256, 8, 256, 1)]
        .into_iter()
        .map(|(in_c, hw, out_c, stride)| {
            let g = ConvGeom { batch, in_c, in_h: hw, in_w: hw, out_c, kh: 3, kw: 3, stride, pad: 1 };
            (format!("wrn {in_c}->{out_c} k3s{stride}p1 {hw}x{hw}"), g)
        })
        .collect()
}

/// The UvA ConvEBM's convolution layers at `batch` images.
pub(super) fn uva_convs(net: &Network, batch: usize) -> Vec<(String, ConvGeom)> {
    net.layers
        .iter()
        .filter_map(|l| match l.kind {
            LayerKind::Conv2d { out_c, kernel, stride, pad, .. } => {
                let g = l.conv_geom(batch)?;
                Some((format!("{}->{out_c} k{kernel}s{stride}p{pad} {}x{}", g.in_c, g.in_h, g.in_w), g))
            }
            _ => None,
        })
        .collect()
}

fn gemm_rows(
    ctx: Option<&Arc<GpuContext>>,
    nn: Option<&NnKernels>,
    want_cpu: bool,
    s: &Sizes,
    rows: &mut Vec<NnRow>,
) -> Result<()> {
    for &(n, inputs, outputs) in &s.gemms {
        let size = format!("{n}x{inputs} -> {outputs}");
        let flops = 2.0 * (n * inputs * outputs) as f64;
        let cost = roofline::linear_forward(n, inputs, outputs);
        let (x, w, b) = (randn(1, n * inputs), randn(2, outputs * inputs), randn(3, outputs));
        if let (Some(ctx), Some(nn)) = (ctx, nn) {
            let buf = |label: &str, v: &[f32]| ctx.storage_buffer(label, bytemuck::cast_slice(v));
            let (xb, wb, bb) = (buf("bench x", &x), buf("bench w", &w), buf("bench b", &b));
            let yb = ctx.zeroed_storage_buffer("bench y", (n * outputs * 4) as u64);
            let epi = Epilogue { bias: Some(Slice::whole(&bb)), ..Default::default() };
            let op =
                nn.linear_forward(Slice::whole(&xb), Slice::whole(&wb), Slice::whole(&yb), n, inputs, outputs, epi)?;
            let (reps, seconds) = time_gpu(nn, &[&op], s.min_secs).with_context(|| format!("gpu linear {size}"))?;
            eprintln!("  gpu  linear fwd {size}: {:.2} GFLOP/s", flops / seconds / 1e9);
            rows.push(NnRow {
                executor: "gpu",
                case: "linear fwd".into(),
                size: size.clone(),
                batch: n,
                reps: Some(reps),
                seconds,
                flops,
                cost,
                chain_steps: None,
                dispatches: Some(op.dispatches() as f64),
                sgemm_seconds: None,
            });
        }
        if want_cpu {
            let mut y = vec![0.0f32; n * outputs];
            let per = n.div_ceil(rayon::current_num_threads());
            let (_, sgemm_seconds) = time_cpu(s.min_secs, || {
                y.par_chunks_mut(per * outputs).zip(x.par_chunks(per * inputs)).for_each(|(ys, xs)| {
                    crate::nn::ops::gemm(
                        ys.len() / outputs,
                        inputs,
                        outputs,
                        xs,
                        (inputs, 1),
                        &w,
                        (1, inputs),
                        0.0,
                        ys,
                        (outputs, 1),
                    )
                });
            });
            let (reps, seconds) = time_cpu(s.min_secs, || {
                y.par_chunks_mut(per * outputs).zip(x.par_chunks(per * inputs)).for_each(|(ys, xs)| {
                    ops::linear_forward(xs, &w, Some(&b), ys.len() / outputs, inputs, outputs, ys)
                });
            });
            eprintln!(
                "  cpu  linear fwd {size}: {:.2} GFLOP/s (sgemm {:.2})",
                flops / seconds / 1e9,
                flops / sgemm_seconds / 1e9
            );
            rows.push(NnRow {
                executor: "cpu",
                case: "linear fwd".into(),
                size,
                batch: n,
                reps: Some(reps),
                seconds,
                flops,
                cost,
                chain_steps: None,
                dispatches: None,
                sgemm_seconds: Some(sgemm_seconds),
            });
        }
    }
    Ok(())
}

/// Forward, input gradient and their sum for each convolution of the UvA ConvEBM.
fn conv_rows(
    ctx: Option<&Arc<GpuContext>>,
    nn: Option<&NnKernels>,
    want_cpu: bool,
    convs: &[(String, ConvGeom)],
    s: &Sizes,
    rows: &mut Vec<NnRow>,
) -> Result<f64> {
    // GPU seconds per image of all the layers' forward and input gradient.
    let mut gpu_per_image = 0.0;
    for (k, (name, g)) in convs.iter().enumerate() {
        let (g, batch) = (*g, g.batch);
        let ohw = g.out_h() * g.out_w();
        let flops = 2.0 * (batch as u64 * g.macs()) as f64;
        let size = if name.starts_with("wrn") { name.clone() } else { format!("conv{} {name}", k + 1) };
        let (cost_fwd, cost_bwd) = (roofline::conv_forward(&g), roofline::conv_input_grad(&g));
        let (x, w, b, dy) = (
            randn(10, batch * g.in_len()),
            randn(11, g.out_c * g.patch()),
            randn(12, g.out_c),
            randn(13, batch * g.out_len()),
        );
        let mut push = |executor: &'static str,
                        case: &str,
                        reps: Option<u32>,
                        seconds: f64,
                        flops: f64,
                        cost: Cost,
                        dispatches: Option<f64>,
                        sgemm: Option<f64>| {
            rows.push(NnRow {
                executor,
                case: case.into(),
                size: size.clone(),
                batch,
                reps,
                seconds,
                flops,
                cost,
                chain_steps: None,
                dispatches,
                sgemm_seconds: sgemm,
            });
        };
        if let (Some(ctx), Some(nn)) = (ctx, nn) {
            let buf = |label: &str, v: &[f32]| ctx.storage_buffer(label, bytemuck::cast_slice(v));
            let (xb, wb, bb, dyb) = (buf("bench x", &x), buf("bench w", &w), buf("bench b", &b), buf("bench dy", &dy));
            let yb = ctx.zeroed_storage_buffer("bench y", (batch * g.out_len() * 4) as u64);
            let dxb = ctx.zeroed_storage_buffer("bench dx", (batch * g.in_len() * 4) as u64);
            let epi = Epilogue { bias: Some(Slice::whole(&bb)), ..Default::default() };
            let fwd = nn.conv2d_forward(&g, Slice::whole(&xb), Slice::whole(&wb), Slice::whole(&yb), epi)?;
            let bwd = nn.conv2d_backward_input(&g, Slice::whole(&dyb), Slice::whole(&wb), Slice::whole(&dxb))?;
            let (rf, tf) = time_gpu(nn, &[&fwd], s.min_secs).with_context(|| format!("gpu {size} forward"))?;
            let (rb, tb) = time_gpu(nn, &[&bwd], s.min_secs).with_context(|| format!("gpu {size} input gradient"))?;
            eprintln!("  gpu  {size}: fwd {:.2}, in-grad {:.2} GFLOP/s", flops / tf / 1e9, flops / tb / 1e9);
            gpu_per_image += (tf + tb) / batch as f64;
            push("gpu", "conv fwd", Some(rf), tf, flops, cost_fwd, Some(fwd.dispatches() as f64), None);
            push("gpu", "conv in-grad", Some(rb), tb, flops, cost_bwd, Some(bwd.dispatches() as f64), None);
            push(
                "gpu",
                "conv fwd+in-grad",
                None,
                tf + tb,
                2.0 * flops,
                cost_fwd + cost_bwd,
                Some((fwd.dispatches() + bwd.dispatches()) as f64),
                None,
            );
        }
        if want_cpu {
            let split = parts(batch);
            let per = split[0].1;
            let gp = |count: usize| ConvGeom { batch: count, ..g };
            let patch = g.patch();
            // Raw sgemm at the im2col sizes of each part: forward W [oc, patch] x col [patch, n],
            // input gradient W^T [patch, oc] x dy [oc, n], n = images * output pixels.
            let col = randn(14, patch * per * ohw);
            let dyg = randn(15, g.out_c * per * ohw);
            let mut outs: Vec<Vec<f32>> = split.iter().map(|_| vec![0.0; patch.max(g.out_c) * per * ohw]).collect();
            let (_, sf) = time_cpu(s.min_secs, || {
                outs.par_iter_mut().zip(&split).for_each(|(c, &(_, count))| {
                    crate::nn::ops::gemm(
                        g.out_c,
                        patch,
                        count * ohw,
                        &w,
                        (patch, 1),
                        &col,
                        (count * ohw, 1),
                        0.0,
                        c,
                        (count * ohw, 1),
                    )
                });
            });
            let (_, sb) = time_cpu(s.min_secs, || {
                outs.par_iter_mut().zip(&split).for_each(|(c, &(_, count))| {
                    crate::nn::ops::gemm(
                        patch,
                        g.out_c,
                        count * ohw,
                        &w,
                        (1, patch),
                        &dyg,
                        (count * ohw, 1),
                        0.0,
                        c,
                        (count * ohw, 1),
                    )
                });
            });
            // Weight gradient: dy [oc, n] x col^T [n, patch], into one dW per part.
            let mut dws: Vec<Vec<f32>> = split.iter().map(|_| vec![0.0; g.out_c * patch]).collect();
            let (_, sw) = time_cpu(s.min_secs, || {
                dws.par_iter_mut().zip(&split).for_each(|(dw, &(_, count))| {
                    let n = count * ohw;
                    crate::nn::ops::gemm(g.out_c, n, patch, &dyg, (n, 1), &col, (1, n), 1.0, dw, (patch, 1))
                });
            });
            let mut dbs: Vec<Vec<f32>> = split.iter().map(|_| vec![0.0; g.out_c]).collect();
            let (rw, tw) = time_cpu(s.min_secs, || {
                dws.par_iter_mut()
                    .zip(dbs.par_iter_mut())
                    .zip(x.par_chunks(per * g.in_len()))
                    .zip(dy.par_chunks(per * g.out_len()))
                    .for_each(|(((dw, db), xs), dys)| {
                        ops::conv2d_backward_params(&gp(xs.len() / g.in_len()), Layout::Cnhw, xs, dys, dw, Some(db))
                    });
            });
            let mut y = vec![0.0f32; batch * g.out_len()];
            let mut dx = vec![0.0f32; batch * g.in_len()];
            let (rf, tf) = time_cpu(s.min_secs, || {
                y.par_chunks_mut(per * g.out_len()).zip(x.par_chunks(per * g.in_len())).for_each(|(ys, xs)| {
                    ops::conv2d_forward(&gp(xs.len() / g.in_len()), Layout::Cnhw, xs, &w, Some(&b), ys)
                });
            });
            let (rb, tb) = time_cpu(s.min_secs, || {
                dx.par_chunks_mut(per * g.in_len()).zip(dy.par_chunks(per * g.out_len())).for_each(|(dxs, dys)| {
                    ops::conv2d_backward_input(&gp(dys.len() / g.out_len()), Layout::Cnhw, dys, &w, dxs)
                });
            });
            eprintln!(
                "  cpu  {size}: fwd {:.2} (sgemm {:.2}), in-grad {:.2} (sgemm {:.2}), w-grad {:.2} (sgemm {:.2}) GFLOP/s",
                flops / tf / 1e9,
                flops / sf / 1e9,
                flops / tb / 1e9,
                flops / sb / 1e9,
                flops / tw / 1e9,
                flops / sw / 1e9
            );
            let cost_w = roofline::conv_param_grad(&g);
            push("cpu", "conv fwd", Some(rf), tf, flops, cost_fwd, None, Some(sf));
            push("cpu", "conv in-grad", Some(rb), tb, flops, cost_bwd, None, Some(sb));
            push("cpu", "conv w-grad", Some(rw), tw, flops, cost_w, None, Some(sw));
            push("cpu", "conv fwd+in-grad", None, tf + tb, 2.0 * flops, cost_fwd + cost_bwd, None, Some(sf + sb));
            let all = cost_fwd + cost_bwd + cost_w;
            push("cpu", "conv fwd+in+w", None, tf + tb + tw, 3.0 * flops, all, None, Some(sf + sb + sw));
        }
    }
    Ok(gpu_per_image)
}

/// `gpu_estimate`: GPU seconds per chain-step estimated from the kernel rows, the start of the
/// software-adapter cap (each timed GPU row then replaces it with its own figure).
fn sampler_rows(
    args: &BenchArgs,
    ctx: Option<&Arc<GpuContext>>,
    want_cpu: bool,
    net: &Arc<Network>,
    s: &Sizes,
    gpu_estimate: f64,
    rows: &mut Vec<NnRow>,
) -> Result<()> {
    let energy = Energy::Net(net.clone());
    let dim = net.input_dim();
    let software = ctx.and_then(|c| c.adapter_info()).is_some_and(crate::gpu::executor::is_software);
    for kind in [SamplerKind::Ula, SamplerKind::Mala] {
        let name = kind.name().to_uppercase();
        // Seconds per chain-step of the GPU, for the software-adapter cap.
        let mut gpu_per_chain_step = gpu_estimate;
        for &chains in &s.chains {
            let planned =
                args.steps.unwrap_or_else(|| (s.budget / chains as f64).clamp(s.steps.0, s.steps.1).round() as u32);
            let warm_for = |steps: u32| steps.div_ceil(10).max(2);
            let label = format!("uva-convebm {name} {chains} chains");
            // On a software adapter, fewer GPU steps (at least 2) when the planned ones would run
            // past the cap, and no GPU row when even those would.
            let gpu_steps = if software {
                let cost = |steps: u32| gpu_per_chain_step * chains as f64 * (warm_for(steps) + steps) as f64;
                let fit = (1..=planned).rev().find(|&k| cost(k) <= s.software_cap);
                match fit {
                    Some(k) if k >= 2 || planned < 2 => {
                        if k < planned {
                            println!(
                                "note: gpu runs {label} for {k} steps instead of {planned} on the software adapter (the {:.0} s cap)",
                                s.software_cap
                            );
                        }
                        Some(k)
                    }
                    _ => {
                        println!(
                            "note: gpu skips {label} on the software adapter (about {:.0} s for 2 steps and the warm-up, estimated at {:.1} ms per chain-step, over the {:.0} s cap)",
                            cost(2),
                            gpu_per_chain_step * 1e3,
                            s.software_cap
                        );
                        None
                    }
                }
            } else {
                Some(planned)
            };
            let init = rng::initial_states(SEED, 0, chains, dim, 1.0);
            let config = SamplerConfig::new(kind, STEP_SIZE, SEED);
            // Per step of all chains, as the layer kernels run it.
            let cost = roofline::layered_step(net, kind, chains) * chains as f64;
            let mut bench = |executor: &'static str, sampler: &mut dyn ChainSampler, steps: u32| -> Result<f64> {
                let warm = warm_for(steps);
                let seconds = super::time_run(sampler, warm, steps).with_context(|| format!("{executor}: {label}"))?;
                let stats = sampler.stats()?;
                let rate = chains as f64 * steps as f64 / seconds;
                let accept =
                    stats.accepted.iter().map(|&a| a as f64).sum::<f64>() / (chains as f64 * (warm + steps) as f64);
                let frozen = stats.frozen_count();
                let mut line = format!("  {executor:>3}  {label}: {steps} steps in {seconds:.3} s ({}/s)", si(rate));
                if kind == SamplerKind::Mala {
                    let _ = write!(line, ", acceptance {accept:.3}");
                }
                if frozen > 0 {
                    let _ = write!(line, ", {frozen} chains froze");
                }
                eprintln!("{line}");
                rows.push(NnRow {
                    executor,
                    case: name.clone(),
                    size: "uva-convebm".into(),
                    batch: chains,
                    reps: Some(steps),
                    seconds: seconds / steps as f64,
                    flops: cost.flops,
                    cost,
                    chain_steps: Some(rate),
                    dispatches: (executor == "gpu").then(|| sampler.dispatches_per_step()),
                    sgemm_seconds: None,
                });
                Ok(seconds / (chains as f64 * steps as f64))
            };
            if let (Some(ctx), Some(steps)) = (ctx, gpu_steps) {
                let mut sampler = gpu_sampler(ctx.clone(), &energy, config.clone(), &init)
                    .with_context(|| format!("building the GPU sampler for {label}"))?;
                gpu_per_chain_step = bench("gpu", sampler.as_mut(), steps)?;
            }
            if want_cpu {
                let mut sampler = CpuSampler::new(&energy, config.clone(), &init)
                    .with_context(|| format!("building the CPU sampler for {label}"))?;
                bench("cpu", &mut sampler, planned)?;
            }
        }
    }
    Ok(())
}

/// Runs the nn suite: kernel rows, then sampler rows; prints the targets summary.
pub fn run(args: &BenchArgs, ctx: Option<&Arc<GpuContext>>, want_cpu: bool) -> Result<Vec<NnRow>> {
    let s = sizes(args.quick);
    let net = Arc::new(Network::random(&Architecture::parse(UVA_SPEC)?, SEED)?);
    println!(
        "nn: UvA ConvEBM {UVA_SPEC}, weights Network::random(seed {SEED}) = `ebm init-net '{UVA_SPEC}' --seed {SEED} --out uva.safetensors`; \
{:.2} MFLOP per energy and input gradient; CPU kernel rows split the batch over {} rayon threads",
        net.flops_per_energy_grad() as f64 / 1e6,
        rayon::current_num_threads()
    );
    let nn = ctx.map(|c| NnKernels::new(c.clone()));
    let mut rows = Vec::new();
    gemm_rows(ctx, nn.as_ref(), want_cpu, &s, &mut rows)?;
    let gpu_per_image = conv_rows(ctx, nn.as_ref(), want_cpu, &uva_convs(&net, s.conv_batch), &s, &mut rows)?;
    if want_cpu {
        conv_rows(None, None, true, &wrn_convs(s.wrn_batch), &s, &mut rows)?;
    }
    sampler_rows(args, ctx, want_cpu, &net, &s, gpu_per_image, &mut rows)?;
    Ok(rows)
}

/// The CPU conv target, read off the rows: forward + input gradient + weight gradient
/// GFLOP/s over raw sgemm's at the same sizes, for the UvA and the WRN layers.
pub fn summary(rows: &[NnRow]) -> String {
    let mut out = String::new();
    for (set, wrn) in [("the UvA ConvEBM's four", false), ("the WRN-16-4", true)] {
        let conv: Vec<&NnRow> = rows
            .iter()
            .filter(|r| r.executor == "cpu" && r.case == "conv fwd+in+w" && r.size.starts_with("wrn") == wrn)
            .collect();
        if conv.is_empty() {
            continue;
        }
        let ours: f64 = conv.iter().map(|r| r.seconds).sum();
        let raw: f64 = conv.iter().filter_map(|r| r.sgemm_seconds).sum();
        let each: Vec<String> = conv.iter().map(|r| format!("{:.0}%", 100.0 * r.of_sgemm().unwrap_or(0.0))).collect();
        let ratio = raw / ours;
        let _ = writeln!(
            out,
            "target: CPU conv fwd+input-grad+weight-grad >= 70% of raw sgemm GFLOP/s at the same sizes: per layer {}; {set} layers {:.1}% ({})",
            each.join(", "),
            100.0 * ratio,
            if ratio >= 0.7 { "met" } else { "not met" }
        );
    }
    let ula: Vec<String> = rows
        .iter()
        .filter(|r| r.executor == "cpu" && r.case == "ULA")
        .map(|r| format!("{} chains {}/s", r.batch, si(r.chain_steps.unwrap_or(0.0))))
        .collect();
    if !ula.is_empty() {
        let _ = writeln!(
            out,
            "target: CPU ULA >= 1.5x the PyTorch CPU eager loop: compare {} with `python3 bench/torch_nn.py --device cpu --threads N --weights uva.safetensors`",
            ula.join(", ")
        );
    }
    out
}

const HEADERS: [&str; 14] = [
    "executor",
    "case",
    "size",
    "batch",
    "reps",
    "ms/rep",
    "chain-steps/s",
    "dispatches",
    "GFLOP/s",
    "GB/s",
    "% roof",
    "bound",
    "sgemm GFLOP/s",
    "of sgemm",
];

/// The roofline columns of a row: its cost per repetition (or step) at 1 / seconds of them per
/// second.
fn roof(r: &NnRow, peaks: Option<Peaks>) -> super::roofline_table::Roof {
    super::roofline_table::roof(Some(r.cost), 1.0 / r.seconds, r.executor == "gpu", peaks)
}

pub fn table(rows: &[NnRow], peaks: Option<Peaks>) -> String {
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "-".to_string(), f);
    let cells: Vec<[String; 14]> = rows
        .iter()
        .map(|r| {
            let [_, gbs, fraction, bound] = roof(r, peaks).cells();
            [
                r.executor.to_string(),
                r.case.clone(),
                r.size.clone(),
                r.batch.to_string(),
                r.reps.map_or_else(|| "-".to_string(), |n| n.to_string()),
                format!("{:.3}", r.seconds * 1e3),
                opt(r.chain_steps, &si),
                opt(r.dispatches, &|d| format!("{d:.0}")),
                format!("{:.2}", r.gflops()),
                gbs,
                fraction,
                bound,
                opt(r.sgemm_gflops(), &|g| format!("{g:.2}")),
                opt(r.of_sgemm(), &|x| format!("{:.0}%", 100.0 * x)),
            ]
        })
        .collect();
    super::align_table(HEADERS, &cells, &[0, 1, 2, 11])
}

pub fn csv(rows: &[NnRow], peaks: Option<Peaks>) -> String {
    let mut out = format!(
        "executor,case,size,batch,reps,seconds_per_rep,flops_per_rep,gflops,chain_steps_per_s,dispatches,sgemm_gflops,of_sgemm,{}\n",
        super::roofline_table::CSV_COLUMNS
    );
    let opt = |v: Option<f64>| v.map_or_else(String::new, |d| d.to_string());
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.executor,
            r.case,
            r.size,
            r.batch,
            r.reps.map_or_else(String::new, |n| n.to_string()),
            r.seconds,
            r.flops,
            r.gflops(),
            opt(r.chain_steps),
            opt(r.dispatches),
            opt(r.sgemm_gflops()),
            opt(r.of_sgemm()),
            roof(r, peaks).csv(Some(r.cost)),
        );
    }
    out
}
