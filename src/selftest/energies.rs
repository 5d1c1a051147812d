//! Checks of the kernels that evaluate energies and their gradients: Philox, the analytic
//! energies, fused MLPs and networks of layer kernels (convolutions included).

use super::{Measure, Size, max_abs_diff, rel_diff};
use crate::Result;
use crate::energy::Energy;
use crate::energy::gpu::energy_grad_batch;
use crate::energy::spec::resolve_energy;
use crate::gpu::{ContextInternals, GpuContext, launch};
use crate::nn::cpu::Tape;
use crate::nn::gpu::{NnKernels, Slice};
use crate::nn::gpu_net::{GpuNetwork, NetBuffers};
use crate::nn::{Activation, NetworkInternals};
use crate::nn::{Architecture, Network};
use crate::rng::{self, Stream};
use std::sync::Arc;

/// Runs the `rng_kat` kernel on (counter, key) pairs: (raw outputs, normals).
pub fn gpu_philox(ctx: &GpuContext, inputs: &[([u32; 4], [u32; 2])]) -> Result<(Vec<u32>, Vec<f32>)> {
    let packed: Vec<u32> = inputs.iter().flat_map(|(c, k)| [c[0], c[1], c[2], c[3], k[0], k[1], 0, 0]).collect();
    let wgsl = crate::gpu::shader::assemble("common/rng_kat.wgsl", &[])?;
    let kernel = ctx.kernel("rng_kat", &wgsl, "main")?;
    let bytes = inputs.len() as u64 * 16;
    let input = ctx.storage_buffer("kat input", bytemuck::cast_slice(&packed));
    let bits = ctx.zeroed_storage_buffer("kat bits", bytes);
    let normals = ctx.zeroed_storage_buffer("kat normals", bytes);
    let group = launch::bind_buffers(ctx, &kernel, &[&input, &bits, &normals]);
    ctx.submit_pass("philox known answers", |pass| {
        launch::record(pass, &kernel, &group, None, [(inputs.len() as u32).div_ceil(launch::WG), 1, 1])
    })?;
    let out = ctx.read_buffers(&[(&bits, bytes), (&normals, bytes)])?;
    Ok((bytemuck::pod_collect_to_vec(&out[0]), bytemuck::pod_collect_to_vec(&out[1])))
}

/// Philox4x32-10 on the GPU equals the Rust twin bit for bit (the Random123 known answers and
/// a stream of counters); its normals agree up to log/cos/sin rounding (1e-5 relative).
pub fn rng(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let seed = 0x1234_5678_9abc_def0u64;
    let key = rng::key(seed);
    let mut inputs: Vec<([u32; 4], [u32; 2])> = rng::KNOWN_ANSWERS.iter().map(|(c, k, _)| (*c, *k)).collect();
    let n = size.pick(1024u32, 4096);
    inputs.extend((0..n).map(|i| ([i * 7919, i / 3, Stream::ProposalNoise as u32, i % 5], key)));
    let (bits, normals) = gpu_philox(ctx, &inputs)?;
    let mut wrong_bits = 0;
    for (i, (_, _, want)) in rng::KNOWN_ANSWERS.iter().enumerate() {
        wrong_bits += usize::from(bits[i * 4..i * 4 + 4] != want[..]);
    }
    let mut worst = 0.0f64;
    for (i, (ctr, k)) in inputs.iter().enumerate().skip(rng::KNOWN_ANSWERS.len()) {
        wrong_bits += usize::from(bits[i * 4..i * 4 + 4] != rng::philox4x32_10(*ctr, *k));
        let want = rng::normal4(seed, ctr[0], ctr[1], Stream::ProposalNoise, ctr[3]);
        for lane in 0..4 {
            let (g, c) = (normals[i * 4 + lane], want[lane]);
            worst = worst.max(((g - c).abs() / (1.0 + c.abs())) as f64);
        }
    }
    let mut m = Measure::within(
        worst,
        1e-5,
        format!("{} counters: {wrong_bits} outputs not bit-identical; normals (relative)", inputs.len()),
    );
    m.passed &= wrong_bits == 0;
    Ok(m)
}

/// Analytic energies, constraints, sums, group averages and sliced experts: energies and
/// gradients of random points, GPU against the CPU twin (1e-5 relative).
pub fn analytic(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let specs: &[(&str, &str)] = &[
        ("ring8", "ring8"),
        ("banana", "banana"),
        (
            "gaussian10",
            r#"{"type": "gaussian", "mean": [0.5, -1, 2, 0, 1, 0, 0, 3, -2, 1], "std": [1, 2, 0.5, 1, 1, 3, 1, 0.7, 1, 2]}"#,
        ),
        (
            "mixture3",
            r#"{"type": "gaussian_mixture", "weights": [0.2, 0.5, 0.3], "means": [[0, 0, 1], [1, -1, 0], [-2, 0, 0]], "stds": [[1, 0.5, 0.7], [0.4, 1, 1], [1, 1, 2]]}"#,
        ),
        ("double_well5", r#"{"type": "double_well", "dim": 5, "barrier": 1.5}"#),
        (
            "sum",
            r#"{"type": "sum", "terms": [{"type": "double_well"}, {"type": "gaussian", "mean": [1, 0], "precision": [[1, 0.3], [0.3, 2]]}]}"#,
        ),
        (
            "box",
            r#"{"type": "box", "lo": -1, "hi": [1, 0.5, 2, 1], "weight": 3, "penalty": "softplus", "sharpness": 4}"#,
        ),
        ("norm_ball", r#"{"type": "norm_ball", "radius": 2, "center": [0.5, 0, -1], "weight": 5}"#),
        ("simplex", r#"{"type": "simplex", "dim": 4, "weight": 10}"#),
        ("rotations:7 group", r#"{"type": "group", "group": "rotations:7", "energy": "banana"}"#),
        (
            "sliced sum",
            r#"{"type": "sum", "weights": [1, 0.5, 2], "slices": [[0, 2], [3, 1], null], "terms": [{"type": "gaussian", "mean": [0.5, -1], "precision": [[2, 0.6], [0.6, 1]]}, "banana", {"type": "double_well", "dim": 4, "barrier": 0.3}]}"#,
        ),
    ];
    let specs = &specs[..size.pick(6, specs.len())];
    let energies: Vec<(String, Energy)> =
        specs.iter().map(|(name, s)| Ok((name.to_string(), resolve_energy(s)?))).collect::<Result<_>>()?;
    compare_energies(ctx, &energies, size.pick(100, 300), 1e-5)
}

/// MLP energies (the fused per-point network WGSL): widths that are not multiples of the
/// workgroup, MNIST-sized input, several activations (1e-4 relative).
pub fn mlp(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let mut cases = vec![
        (vec![2, 128, 128, 1], Activation::Silu),
        (vec![5, 70, 33, 1], Activation::Tanh),
        (vec![784, 64, 1], Activation::Softplus),
        (vec![4, 24, 24, 1], Activation::Elu(0.7)),
    ];
    if size == Size::Full {
        cases.extend([(vec![2, 200, 200, 1], Activation::Elu(1.0)), (vec![4, 24, 24, 1], Activation::LeakyRelu(0.1))]);
    }
    let energies: Vec<(String, Energy)> = cases
        .into_iter()
        .map(|(dims, act)| {
            Ok((format!("{dims:?} {}", act.name()), Energy::from_network(Network::random_mlp(&dims, act, true, 7)?)))
        })
        .collect::<Result<_>>()?;
    compare_energies(ctx, &energies, size.pick(64, 200), 1e-4)
}

/// Energies and gradients of `points` random points per energy, GPU against CPU, relative to
/// 1 + |E| (energies) and 1 + max |grad| (gradients).
fn compare_energies(
    ctx: &Arc<GpuContext>,
    energies: &[(String, Energy)],
    points: usize,
    tolerance: f64,
) -> Result<Measure> {
    let mut parts = Vec::new();
    for (name, energy) in energies {
        let d = energy.dim();
        let xs = rng::initial_states(13, 0, points, d, 1.5);
        let (e_gpu, g_gpu) = energy_grad_batch(ctx, energy, &xs)?;
        let mut worst = 0.0f64;
        for (n, x) in xs.chunks(d).enumerate() {
            let mut g = vec![0.0f32; d];
            let e = energy.energy_grad(x, &mut g);
            let gmax = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let de = ((e - e_gpu[n]).abs() / (1.0 + e.abs())) as f64;
            let dg = max_abs_diff(&g, &g_gpu[n * d..(n + 1) * d]) / (1.0 + gmax as f64);
            worst = worst.max(de).max(dg);
            if worst.is_nan() || de.is_nan() || dg.is_nan() {
                worst = f64::NAN;
                break;
            }
        }
        parts.push(Measure::within(
            worst,
            tolerance,
            format!("{} energies, {points} points each (relative); worst: {name}", energies.len()),
        ));
    }
    Ok(Measure::all(parts))
}

/// Networks of layer kernels (the UvA ConvEBM among them; every layer type, residual blocks and
/// every head): energies,
/// input gradients and batch-reduced parameter gradients, GPU against the CPU executor (1e-4
/// relative to the largest value).
pub fn layers(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let mut specs = vec![
        ("2x9x9/6k3s1p1/relu/avgpool:2/5k2s1p0:nobias/elu:0.5/flatten/7/leaky_relu:0.1/10/head:lse", 9),
        ("3x13x11/7k3s2p1/silu/5k5s1p2/tanh/flatten/9/softplus/1", 6),
        ("1x12x12/4k5s2p4/swish/3k3s3p0/flatten/6/head:class:4", 7),
        ("5/17/silu/13/tanh/1/head:-f", 33),
        // Residual blocks: an identity and a 1x1-conv skip (the spec's first 28 characters name it).
        ("2x6x6/res(2k3p1,silu,2k3p1)/res(4k3s2p1,tanh;proj:4k1s2)/flatten/3/head:lse", 8),
    ];
    if size == Size::Full {
        specs.push((
            "1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f",
            5,
        ));
    }
    let nn = NnKernels::new(ctx.clone());
    let mut parts = Vec::new();
    for (s, (spec, n)) in specs.into_iter().enumerate() {
        let net = Network::random(&Architecture::parse(spec)?, 7 + s as u64)?;
        let xs = rng::initial_states(50 + s as u64, 0, n, net.input_dim(), 1.0);
        let [de, dg, dp] = network_pass_errors(ctx, &nn, &net, &xs)?;
        let short: String = spec.chars().take(28).collect();
        parts.push(Measure::within(de, 1e-4, format!("{short}: energies")));
        parts.push(Measure::within(dg, 1e-4, format!("{short}: input gradients")));
        parts.push(Measure::within(dp, 1e-4, format!("{short}: parameter gradients")));
    }
    Ok(Measure::all(parts))
}

/// One pass of `net` over the points `xs` through the layer kernels (energies, input gradients,
/// batch-reduced parameter gradients) against the CPU executor's: the differences of the three,
/// each relative to 1 + the CPU's largest value.
pub fn network_pass_errors(ctx: &Arc<GpuContext>, nn: &NnKernels, net: &Network, xs: &[f32]) -> Result<[f64; 3]> {
    let d = net.input_dim();
    let n = xs.len() / d;
    let mut tape = Tape::default();
    net.forward_batch(xs, n, &mut tape);
    let (mut e_cpu, mut d_out) = (vec![0.0f32; n], Vec::new());
    net.head_batch(&tape, &mut e_cpu, &mut d_out);
    let mut p_cpu = vec![0.0f32; net.param_count()];
    net.backward_batch(&mut tape, &d_out, Some(&mut p_cpu), true);
    let g_cpu = tape.input_grad().to_vec();
    let x = ctx.storage_buffer("x", bytemuck::cast_slice(xs));
    let e = ctx.zeroed_storage_buffer("e", 4 * n as u64);
    let g = ctx.zeroed_storage_buffer("g", 4 * (n * d) as u64);
    let bufs = NetBuffers::new(ctx, net, n)?;
    let pass =
        GpuNetwork::new(nn, net, &bufs, n, Slice::whole(&x), Slice::whole(&e), Some(Slice::whole(&g)), true, 1.0)?;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    {
        let mut cp = encoder.begin_compute_pass(&Default::default());
        pass.record(&mut cp);
    }
    ctx.queue().submit([encoder.finish()]);
    let out = ctx.read_buffers(&[
        (&e, 4 * n as u64),
        (&g, 4 * (n * d) as u64),
        (&bufs.param_grads, 4 * net.param_count() as u64),
    ])?;
    let (e_gpu, g_gpu, p_gpu): (Vec<f32>, Vec<f32>, Vec<f32>) = (
        bytemuck::pod_collect_to_vec(&out[0]),
        bytemuck::pod_collect_to_vec(&out[1]),
        bytemuck::pod_collect_to_vec(&out[2]),
    );
    Ok([rel_diff(&e_gpu, &e_cpu), rel_diff(&g_gpu, &g_cpu), rel_diff(&p_gpu, &p_cpu)])
}
