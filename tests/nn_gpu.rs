//! Networks of layer kernels on the GPU against the CPU executor: energies, input gradients
//! and batch-reduced parameter gradients (the UvA ConvEBM among the networks), MALA and ULA
//! trajectories from one seed, and the layered sampler against a target with a known answer.

mod common;

use common::net;

use ebm_gpu::energy::{Energy, EnergyInternals, GaussianDiag};
use ebm_gpu::gpu::ContextInternals;
use ebm_gpu::nn::cpu::Tape;
use ebm_gpu::nn::gpu::{NnKernels, Slice};
use ebm_gpu::nn::gpu_net::{GpuNetwork, NetBuffers};
use ebm_gpu::nn::{Architecture, Network, NetworkInternals};
use ebm_gpu::rng;
use ebm_gpu::sampler::cpu::CpuSampler;
use ebm_gpu::sampler::layered::LayeredSampler;
use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};
use std::sync::Arc;

const UVA: &str = "1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f";

#[test]
fn network_pass_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let nn = NnKernels::new(ctx.clone());
    let specs = [
        (UVA, 5),
        ("2x9x9/6k3s1p1/relu/avgpool:2/5k2s1p0:nobias/elu:0.5/flatten/7/leaky_relu:0.1/10/head:lse", 9),
        ("3x13x11/7k3s2p1/silu/5k5s1p2/tanh/flatten/9/softplus/1", 6),
        ("1x12x12/4k5s2p4/swish/3k3s3p0/flatten/6/head:class:4", 70),
        ("5/17/silu/13/tanh/1/head:-f", 33),
    ];
    for (s, (spec, n)) in specs.into_iter().enumerate() {
        let net = net(spec, 7 + s as u64);
        let xs = rng::initial_states(50 + s as u64, 0, n, net.input_dim(), 1.0);
        let [de, dg, dp] = ebm_gpu::selftest::energies::network_pass_errors(&ctx, &nn, &net, &xs).unwrap();
        assert!(de < 1e-4, "{spec}: energies differ by {de}");
        assert!(dg < 1e-4, "{spec}: input gradients differ by {dg}");
        assert!(dp < 1e-4, "{spec}: parameter gradients differ by {dp}");
    }
}

fn trajectories(kind: SamplerKind, spec: &str, chains: usize, steps: u32, step_size: f32) {
    trajectories_of(kind, &Energy::Net(Arc::new(net(spec, 3))), chains, steps, step_size)
}

fn trajectories_of(kind: SamplerKind, energy: &Energy, chains: usize, steps: u32, step_size: f32) {
    let Some(ctx) = common::gpu() else { return };
    let d = energy.dim();
    let init = rng::initial_states(9, 0, chains, d, 0.5);
    let config = SamplerConfig::new(kind, step_size, 21);
    let mut gpu = LayeredSampler::new(ctx, energy, config.clone(), &init).unwrap();
    let mut cpu = CpuSampler::new(energy, config, &init).unwrap();
    gpu.run(steps).unwrap();
    cpu.run(steps).unwrap();
    follows(&mut gpu, &mut cpu, chains, d, kind.name());
    let sg = gpu.stats().unwrap();
    if kind == SamplerKind::Mala {
        let rate = sg.acceptance_rate(steps);
        assert!(rate > 0.2 && rate < 1.0, "MALA acceptance {rate}: the test should exercise both outcomes");
    }
}

/// Every chain of `gpu` agrees with the CPU's closely, but for at most 1 in 20 whose accept
/// decision sat within rounding of the edge and which then followed another path; no chain
/// froze.
fn follows(gpu: &mut dyn ChainSampler, cpu: &mut CpuSampler, chains: usize, d: usize, what: &str) {
    let (sg, sc) = (gpu.stats().unwrap(), cpu.stats().unwrap());
    let (xg, xc) = (gpu.state().unwrap(), cpu.state().unwrap());
    // Rounding differences can flip an accept decision that sits on the edge; such a chain
    // then follows another path. Every other chain must agree closely.
    let mut diverged = 0;
    for c in 0..chains {
        let (a, b) = (&xg[c * d..(c + 1) * d], &xc[c * d..(c + 1) * d]);
        if sg.accepted[c] != sc.accepted[c] || common::max_abs_diff(a, b) > 1e-3 {
            diverged += 1;
        } else {
            assert!(
                (sg.energies[c] - sc.energies[c]).abs() < 1e-3 * (1.0 + sc.energies[c].abs()),
                "chain {c}: energies"
            );
        }
    }
    assert!(!sg.frozen.iter().any(|&f| f), "no chain may freeze");
    assert!(diverged <= chains / 20, "{diverged} of {chains} {what} chains left the CPU's path");
}

#[test]
fn mala_on_a_conv_energy_follows_the_cpu() {
    trajectories(SamplerKind::Mala, "1x8x8/4k3s1p1/silu/avgpool:2/6k3s2p1/tanh/flatten/5/softplus/1", 64, 20, 2.0);
}

#[test]
fn ula_on_the_uva_convebm_follows_the_cpu() {
    trajectories(SamplerKind::Ula, UVA, 16, 5, 0.01);
}

/// A product of experts through the layer kernels: a convolutional classifier's class-3
/// energy, an MLP-shaped network and a nested sum holding a third network, each weighted.
fn sum_of_networks() -> Energy {
    let classifier = net("1x8x8/4k3s1p1/silu/avgpool:2/flatten/10/head:class:3", 5);
    let nested =
        Energy::Sum { terms: vec![(2.0, Energy::from_network(net("1x8x8/3k3s2p1/tanh/flatten/1/head:-f", 7)))] };
    Energy::Sum {
        terms: vec![
            (0.7, Energy::from_network(classifier)),
            (1.3, Energy::from_network(net("64/16/silu/1", 6))),
            (0.5, nested),
        ],
    }
}

#[test]
fn a_sum_of_networks_evaluates_as_on_the_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let energy = sum_of_networks();
    let n = 37;
    let xs = rng::initial_states(8, 0, n, energy.dim(), 1.0);
    let (e, g) = ebm_gpu::energy::gpu::energy_grad_batch(&ctx, &energy, &xs).unwrap();
    let (mut want_e, mut want_g) = (vec![0.0; n], vec![0.0; xs.len()]);
    energy.energy_grad_batch(&xs, &mut want_g, &mut want_e);
    assert!(common::rel_err(&e, &want_e) < 1e-4, "energies differ by {}", common::rel_err(&e, &want_e));
    assert!(common::rel_err(&g, &want_g) < 1e-4, "gradients differ by {}", common::rel_err(&g, &want_g));
    // Every term counts: dropping the last changes the energies.
    let Energy::Sum { terms } = &energy else { unreachable!() };
    let fewer = Energy::Sum { terms: terms[..2].to_vec() };
    let (e2, _) = ebm_gpu::energy::gpu::energy_grad_batch(&ctx, &fewer, &xs).unwrap();
    assert!(common::rel_err(&e2, &want_e) > 1e-3, "the third term made no difference");
}

#[test]
fn mala_on_a_sum_of_networks_follows_the_cpu() {
    trajectories_of(SamplerKind::Mala, &sum_of_networks(), 64, 20, 2.0);
}

#[test]
fn the_gpu_refuses_a_network_summed_with_an_analytic_term() {
    let Some(ctx) = common::gpu() else { return };
    let gaussian = ebm_gpu::energy::spec::parse_energy(
        r#"{"type": "gaussian", "mean": [0, 0, 0, 0], "std": [1, 1, 1, 1]}"#,
        "test",
    )
    .unwrap();
    let energy =
        Energy::Sum { terms: vec![(1.0, Energy::from_network(net("1x2x2/2k1/silu/flatten/1", 2))), (1.0, gaussian)] };
    let init = rng::initial_states(1, 0, 4, 4, 1.0);
    let err = LayeredSampler::new(ctx, &energy, SamplerConfig::new(SamplerKind::Ula, 0.1, 1), &init).err().unwrap();
    let text = err.to_string();
    assert!(text.contains("energy.terms[1]") && text.contains("gaussian"), "{text}");
}

/// A logistic expert on the plane, E(x) = sum_i softplus(s (x_i - m)) + softplus(-s (x_i - m)):
/// a convolutional network, or an MLP-shaped one.
fn logistic_expert(s: f32, m: f32, conv: bool) -> Network {
    let (spec, first) = match conv {
        true => ("1x2x1/2k1/softplus/flatten/1", (vec![s, -s], vec![-s * m, s * m])),
        false => ("2/4/softplus/1", (vec![s, 0.0, -s, 0.0, 0.0, s, 0.0, -s], vec![-s * m, s * m, -s * m, s * m])),
    };
    let mut params = vec![first, (vec![], vec![])];
    if conv {
        params.push((vec![], vec![]));
    }
    params.push((vec![1.0; 4], vec![0.0]));
    Network::new(&Architecture::parse(spec).unwrap(), params).unwrap()
}

/// The product of two logistic experts weighted 1 and 0.5: each coordinate independent with
/// density proportional to exp(-E_1 - E_2 / 2); its mean, variance and fourth moment by
/// quadrature, against MALA on both executors.
#[test]
fn mala_samples_the_product_of_two_network_experts() {
    let (a, b) = ((1.0f32, -1.0f32), (2.0f32, 1.5f32));
    let energy = Energy::Sum {
        terms: vec![
            (1.0, Energy::from_network(logistic_expert(a.0, a.1, true))),
            (0.5, Energy::from_network(logistic_expert(b.0, b.1, false))),
        ],
    };
    let softplus = |v: f64| if v > 30.0 { v } else { v.exp().ln_1p() };
    let expert =
        |(s, m): (f32, f32), x: f64| softplus(s as f64 * (x - m as f64)) + softplus(-s as f64 * (x - m as f64));
    let (h, mut mass, mut first, mut second) = (1e-3, 0.0, 0.0, 0.0);
    let grid: Vec<f64> = (0..80_000).map(|i| -40.0 + h * i as f64).collect();
    for &x in &grid {
        let p = (-expert(a, x) - 0.5 * expert(b, x)).exp();
        (mass, first, second) = (mass + p, first + p * x, second + p * x * x);
    }
    let want_mean = first / mass;
    let want_var = second / mass - want_mean * want_mean;
    let m4 =
        grid.iter().map(|&x| (-expert(a, x) - 0.5 * expert(b, x)).exp() * (x - want_mean).powi(4)).sum::<f64>() / mass;
    for (name, n, mean, var, _) in mala_moments(&energy, 0.5, 23) {
        let (se_mean, se_var) = ((want_var / n).sqrt(), ((m4 - want_var * want_var) / n).sqrt());
        assert!((mean - want_mean).abs() < 4.0 * se_mean, "{name}: mean {mean}, want {want_mean} ± {se_mean}");
        assert!((var - want_var).abs() < 4.0 * se_var, "{name}: variance {var}, want {want_var} ± {se_var}");
    }
}

/// E(x) = sum over pixels of softplus(x) + softplus(-x): each pixel independent with the
/// logistic density e^x / (1 + e^x)^2 (mean 0, variance pi^2 / 3), written as a conv network.
fn logistic_net() -> Network {
    let arch = Architecture::parse("1x2x1/2k1:nobias/softplus/flatten/1:nobias").unwrap();
    Network::new(&arch, vec![(vec![1.0, -1.0], vec![]), (vec![], vec![]), (vec![], vec![]), (vec![1.0; 4], vec![])])
        .unwrap()
}

/// 4096 chains of 2-d MALA (300 steps of `step` from N(0, I)) on each executor: per executor,
/// its name, the draws' count, mean and variance over both coordinates, and the acceptance.
fn mala_moments(energy: &Energy, step: f32, seed: u64) -> Vec<(String, f64, f64, f64, f64)> {
    let chains = 4096;
    let init = rng::initial_states(4, 0, chains, 2, 1.0);
    let config = SamplerConfig::new(SamplerKind::Mala, step, seed);
    let mut samplers: Vec<(String, Box<dyn ChainSampler>)> =
        vec![("cpu".into(), Box::new(CpuSampler::new(energy, config.clone(), &init).unwrap()))];
    if let Some(ctx) = common::gpu() {
        samplers.push(("gpu".into(), Box::new(LayeredSampler::new(ctx, energy, config, &init).unwrap())));
    }
    let moments = |(name, mut s): (String, Box<dyn ChainSampler>)| {
        s.run(300).unwrap();
        let x = s.state().unwrap();
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        (name, n, mean, var, s.stats().unwrap().acceptance_rate(300))
    };
    samplers.into_iter().map(moments).collect()
}

#[test]
fn layered_mala_samples_the_logistic_density() {
    let energy = Energy::Net(Arc::new(logistic_net()));
    for (name, n, mean, var, rate) in mala_moments(&energy, 0.8, 17) {
        let want_var = std::f64::consts::PI.powi(2) / 3.0;
        // Standard errors over n independent draws: sqrt(var / n) for the mean; for the
        // variance var * sqrt((kurtosis - 1) / n) with the logistic's kurtosis 4.2.
        let (se_mean, se_var) = ((want_var / n).sqrt(), want_var * (3.2 / n).sqrt());
        assert!(mean.abs() < 4.0 * se_mean, "{name}: mean {mean} (sd of the estimate {se_mean})");
        assert!((var - want_var).abs() < 4.0 * se_var, "{name}: variance {var}, want {want_var} ± {se_var}");
        assert!(rate > 0.3, "{name}: acceptance {rate}");
    }
}

/// Parameter gradients alone (training's use: no dE/dx), on a network whose first layer is a
/// flatten, so the input gradient's memory is shared with the layer above it, and on one whose
/// first layer opens a residual block (the same sharing, plus the block's in-place sum).
#[test]
fn parameter_gradients_without_input_gradients_match_cpu() {
    for spec in ["1x4x4/flatten/5/tanh/3/head:lse", "1x4x4/res(1k3p1,tanh)/res(2k3s2p1;proj:2k1s2)/flatten/3"] {
        let Some(ctx) = common::gpu() else { return };
        let nn = NnKernels::new(ctx.clone());
        let net = net(spec, 12);
        let n = 9;
        let xs = rng::initial_states(77, 0, n, net.input_dim(), 1.0);
        let mut tape = Tape::default();
        net.forward_batch(&xs, n, &mut tape);
        let (mut e_cpu, mut d_out) = (vec![0.0f32; n], Vec::new());
        net.head_batch(&tape, &mut e_cpu, &mut d_out);
        let mut p_cpu = vec![0.0f32; net.param_count()];
        net.backward_batch(&mut tape, &d_out, Some(&mut p_cpu), false);
        let x = ctx.storage_buffer("x", bytemuck::cast_slice(&xs));
        let e = ctx.zeroed_storage_buffer("e", 4 * n as u64);
        let bufs = NetBuffers::new(&ctx, &net, n).unwrap();
        let pass = GpuNetwork::new(&nn, &net, &bufs, n, Slice::whole(&x), Slice::whole(&e), None, true, 1.0).unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        {
            let mut cp = encoder.begin_compute_pass(&Default::default());
            pass.record(&mut cp);
        }
        ctx.queue().submit([encoder.finish()]);
        let out = ctx.read_buffers(&[(&bufs.param_grads, 4 * net.param_count() as u64)]).unwrap();
        let p_gpu: Vec<f32> = bytemuck::pod_collect_to_vec(&out[0]);
        assert!(
            common::rel_err(&p_gpu, &p_cpu) < 1e-4,
            "{spec}: parameter gradients differ by {}",
            common::rel_err(&p_gpu, &p_cpu)
        );
    }
}

/// Residual blocks through the layer kernels (identity, 1x1-conv and pooled skips, nested
/// blocks, a block first and one last, whose input gradient is then a copy): energies, input
/// gradients and parameter gradients as the CPU's, and forward-only energies.
#[test]
fn residual_network_pass_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let nn = NnKernels::new(ctx.clone());
    let specs = [
        (
            "3x8x8/4k3p1/silu/res(4k3p1,silu,4k3p1)/silu/res(6k3s2p1,tanh,6k3p1;proj:6k1s2)/res(6k3s2p1,swish;proj:avgpool:2)/flatten/5/softplus/1",
            7,
        ),
        ("2x6x6/res(2k3p1,silu,2k3p1)/res(res(2k3p1,tanh),3k1;proj:3k1:nobias)/flatten/3/head:class:1", 11),
        ("4/res(7,tanh,4)/head:lse", 33),
        ("5/res(9,elu:0.5,5)/silu/res(res(6,tanh,5),softplus)/1/head:-f", 5),
        ("4/res(flatten)/res(res(3,tanh,4))/2", 6),
    ];
    for (s, (spec, n)) in specs.into_iter().enumerate() {
        let net = net(spec, 17 + s as u64);
        assert!(net.as_mlp().is_none(), "{spec}: residual nets take the layer kernels");
        let xs = rng::initial_states(60 + s as u64, 0, n, net.input_dim(), 1.0);
        let [de, dg, dp] = ebm_gpu::selftest::energies::network_pass_errors(&ctx, &nn, &net, &xs).unwrap();
        assert!(de < 1e-4, "{spec}: energies differ by {de}");
        assert!(dg < 1e-4, "{spec}: input gradients differ by {dg}");
        assert!(dp < 1e-4, "{spec}: parameter gradients differ by {dp}");
        let e_gpu = ebm_gpu::nn::gpu_net::energies_batch(&ctx, &net, &xs).unwrap();
        assert!(common::rel_err(&e_gpu, &net.view().energies_batch(&xs)) < 1e-4, "{spec}: forward-only energies");
    }
}

#[test]
fn mala_on_a_residual_conv_energy_follows_the_cpu() {
    let spec = "1x8x8/4k3p1/silu/res(4k3p1,silu,4k3p1)/res(6k3s2p1,tanh;proj:6k1s2)/flatten/5/softplus/1";
    trajectories(SamplerKind::Mala, spec, 64, 20, 2.0);
}

/// `energy::gpu::energy_grad_batch` (what `ebm score` and `ebm ood` use) runs a lone network
/// through the layer kernels, in chunks, matching the CPU (also forward-only energies and the
/// logits); a sum holding one is refused.
#[test]
fn energy_evaluation_of_a_network_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let net = net("1x8x8/3k3s2p1/swish/flatten/5/tanh/4/head:lse", 21);
    let n = 37;
    let xs = rng::initial_states(3, 0, n, 64, 1.0);
    let energy = Energy::Net(Arc::new(net.clone()));
    let (e_gpu, g_gpu) = ebm_gpu::energy::gpu::energy_grad_batch(&ctx, &energy, &xs).unwrap();
    let (e_cpu, g_cpu) = ebm_gpu::train::eval::energy_grads(&energy, &xs);
    assert!(
        common::rel_err(&e_gpu, &e_cpu) < 1e-4 && common::rel_err(&g_gpu, &g_cpu) < 1e-4,
        "GPU vs CPU energies/gradients"
    );
    // Forward-only energies (no backward pass) on both executors, and the logits.
    let e_fwd_gpu = ebm_gpu::nn::gpu_net::energies_batch(&ctx, &net, &xs).unwrap();
    let e_fwd_cpu = ebm_gpu::train::eval::energies(&energy, &xs);
    assert!(
        common::rel_err(&e_fwd_gpu, &e_cpu) < 1e-4 && common::rel_err(&e_fwd_cpu, &e_cpu) < 1e-5,
        "forward-only energies"
    );
    let (f_gpu, f_cpu) = (ebm_gpu::nn::gpu_net::outputs_batch(&ctx, &net, &xs).unwrap(), net.view().outputs_batch(&xs));
    assert_eq!(f_cpu.len(), n * 4);
    assert!(common::rel_err(&f_gpu, &f_cpu) < 1e-4, "logits");
    let sum = Energy::Sum {
        terms: vec![
            (1.0, energy.clone()),
            (1.0, Energy::from(GaussianDiag { mean: vec![0.0; 64], inv_var: vec![1.0; 64] })),
        ],
    };
    assert!(ebm_gpu::energy::gpu::energy_grad_batch(&ctx, &sum, &xs).is_err());
}

/// An MLP-shaped network evaluated both ways the engine has: through the layer kernels (on
/// the GPU `nn::gpu_net`, on the CPU the network executor's batched GEMMs) and as the MLP view
/// the fused kernels inline (`Network::as_mlp`: `MlpView::wgsl_function` in the energy kernel,
/// on the CPU its twin `MlpView::add_energy_grad`): the same energies and input gradients on
/// both executors.
#[test]
fn mlp_view_and_layer_kernels_give_the_same_energies() {
    for (spec, seed) in
        [("5/17/silu/13/silu/1", 4u64), ("3/32/softplus/1/head:-f", 5), ("2/24/elu:0.5/24/elu:0.5/1", 6)]
    {
        let network = net(spec, seed);
        let mlp = network.as_mlp().unwrap_or_else(|| panic!("{spec} is MLP-shaped"));
        let energy = Energy::from_network(network.clone());
        assert!(energy.kind() == "mlp" && !energy.has_layered_net(), "{spec}: an MLP takes the fused path");
        let (d, n) = (network.input_dim(), 40);
        let xs = rng::initial_states(seed, 0, n, d, 1.5);
        let (mut e_net, mut g_net) = (vec![0.0f32; n], vec![0.0f32; n * d]);
        network.add_energy_grad_batch(&xs, &mut g_net, &mut e_net, 1.0);
        let mut g_mlp = vec![0.0f32; n * d];
        let e_mlp: Vec<f32> =
            xs.chunks_exact(d).zip(g_mlp.chunks_exact_mut(d)).map(|(x, g)| mlp.add_energy_grad(x, g, 1.0)).collect();
        assert!(
            common::rel_err(&e_mlp, &e_net) < 1e-5 && common::rel_err(&g_mlp, &g_net) < 1e-5,
            "{spec}: CPU, MLP view vs network"
        );
        let Some(ctx) = common::gpu() else { continue };
        let (e_gnet, g_gnet) = ebm_gpu::nn::gpu_net::energy_grad_batch(&ctx, &network, &xs).unwrap();
        let (e_gmlp, g_gmlp) = ebm_gpu::energy::gpu::energy_grad_batch(&ctx, &energy, &xs).unwrap();
        assert!(
            common::rel_err(&e_gnet, &e_net) < 1e-4 && common::rel_err(&g_gnet, &g_net) < 1e-4,
            "{spec}: GPU layer kernels vs CPU"
        );
        assert!(
            common::rel_err(&e_gmlp, &e_net) < 1e-4 && common::rel_err(&g_gmlp, &g_net) < 1e-4,
            "{spec}: GPU fused MLP vs CPU"
        );
    }
}

/// The samplers of both paths on one MLP-shaped network: the fused kernels (the network per
/// chain in registers, and per workgroup tile) and the layered sampler around the layer
/// kernels follow the CPU executor's chains from one seed.
#[test]
fn mlp_view_and_layer_kernel_samplers_follow_the_cpu() {
    use ebm_gpu::sampler::MlpStrategy;
    use ebm_gpu::sampler::gpu::GpuSampler;
    let Some(ctx) = common::gpu() else { return };
    let energy = Energy::from_network(net("3/40/silu/24/silu/1", 8));
    let (chains, steps, d) = (64, 20, 3);
    let init = rng::initial_states(9, 0, chains, d, 0.5);
    for kind in [SamplerKind::Ula, SamplerKind::Mala] {
        let base = SamplerConfig::new(kind, 0.05, 21);
        let mut cpu = CpuSampler::new(&energy, base.clone(), &init).unwrap();
        cpu.run(steps).unwrap();
        let per_chain = SamplerConfig::builder(kind, 0.05, 21).mlp_strategy(MlpStrategy::PerChain).build().unwrap();
        let tiled = SamplerConfig::builder(kind, 0.05, 21).mlp_strategy(MlpStrategy::Tiled).build().unwrap();
        let gpus: Vec<(&str, Box<dyn ChainSampler>)> = vec![
            ("fused per chain", Box::new(GpuSampler::new(ctx.clone(), &energy, per_chain, &init).unwrap())),
            ("fused tiled", Box::new(GpuSampler::new(ctx.clone(), &energy, tiled, &init).unwrap())),
            ("layer kernels", Box::new(LayeredSampler::new(ctx.clone(), &energy, base.clone(), &init).unwrap())),
        ];
        for (what, mut gpu) in gpus {
            gpu.run(steps).unwrap();
            let what = format!("{} {what}", kind.name());
            follows(gpu.as_mut(), &mut cpu, chains, d, &what);
        }
    }
}
