//! Checks of the chain samplers: the same seed on the GPU and the CPU executor, states after a
//! number of steps. Rounding differs (GPU log/cos, FMA), so an accept decision whose log u lands
//! within rounding of log alpha can flip and send that chain down another path; the test
//! suite's allowance for such chains applies (none for ULA, which has no accept test), and every
//! other chain must agree closely.

use super::{Measure, Size, chains_apart};
use crate::Result;
use crate::energy::Energy;
use crate::energy::spec::resolve_energy;
use crate::gpu::GpuContext;
use crate::nn::{Activation, NetworkInternals};
use crate::nn::{Architecture, Network};
use crate::rng;
use crate::sampler::cpu::CpuSampler;
use crate::sampler::gpu::GpuSampler;
use crate::sampler::layered::LayeredSampler;
use crate::sampler::{ChainSampler, MlpStrategy, SamplerConfig, SamplerKind, Tempering};
use std::sync::Arc;

const GAUSS10: &str =
    r#"{"type": "gaussian", "mean": [0.5, -1, 2, 0, 1, 0, 0, 3, -2, 1], "std": [1, 2, 0.5, 1, 1, 3, 1, 0.7, 1, 2]}"#;

/// A GPU sampler of `energy` (the layered one for networks of layer kernels).
type MakeGpu = fn(Arc<GpuContext>, &Energy, SamplerConfig, &[f32]) -> Result<Box<dyn ChainSampler>>;

fn fused(ctx: Arc<GpuContext>, energy: &Energy, config: SamplerConfig, init: &[f32]) -> Result<Box<dyn ChainSampler>> {
    Ok(Box::new(GpuSampler::new(ctx, energy, config, init)?))
}

fn through_layers(
    ctx: Arc<GpuContext>,
    energy: &Energy,
    config: SamplerConfig,
    init: &[f32],
) -> Result<Box<dyn ChainSampler>> {
    Ok(Box::new(LayeredSampler::new(ctx, energy, config, init)?))
}

/// Runs `steps` steps of `config` on both executors from the same initial states and compares
/// the final states: at most `allowed` (a fraction of the chains) may be further apart than
/// `tol`; the acceptance rates agree within 0.01 (2 % of chains with tempering's swaps).
#[allow(clippy::too_many_arguments)]
fn compare(
    ctx: &Arc<GpuContext>,
    name: &str,
    energy: &Energy,
    config: SamplerConfig,
    chains: usize,
    steps: u32,
    tol: f32,
    allowed: f64,
    make: MakeGpu,
) -> Result<Measure> {
    let d = energy.dim();
    let init = rng::initial_states(3, 0, chains, d, 1.0);
    let mut cpu = CpuSampler::new(energy, config.clone(), &init)?;
    let mut gpu = make(ctx.clone(), energy, config, &init)?;
    cpu.run(steps)?;
    gpu.run(steps)?;
    let (a, b) = (cpu.state()?, gpu.state()?);
    let (apart, worst) = chains_apart(&a, &b, d, tol);
    let (sa, sb) = (cpu.stats()?, gpu.stats()?);
    let (ra, rb) = (sa.acceptance_rate(steps), sb.acceptance_rate(steps));
    let most = (allowed * chains as f64).floor() as usize;
    let mut m = Measure::within(
        worst,
        tol as f64,
        format!(
            "{name}: {chains} chains x {steps} steps, {apart} left the CPU's path (<= {most} allowed), acceptance {rb:.3} vs {ra:.3}"
        ),
    );
    m.passed &= apart <= most && (ra - rb).abs() < 0.01 && sb.frozen_count() == 0;
    Ok(m)
}

fn langevin(ctx: &Arc<GpuContext>, size: Size, kind: SamplerKind, allowed: f64) -> Result<Measure> {
    let group = r#"{"type": "group", "group": "dihedral:3", "energy": {"type": "gaussian", "mean": [1.5, 0.5], "std": [0.5, 0.8]}}"#;
    let mut parts = Vec::new();
    for (name, spec) in [("ring8", "ring8"), ("gaussian10", GAUSS10), ("dihedral:3 group", group)] {
        let energy = resolve_energy(spec)?;
        let config = SamplerConfig::new(kind, 0.02, 99);
        parts.push(compare(ctx, name, &energy, config, size.pick(256, 512), size.pick(50, 100), 2e-3, allowed, fused)?);
    }
    Ok(Measure::all(parts))
}

/// ULA (langevin.wgsl): no accept test, so every chain must stay on the CPU's path.
pub fn ula(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    langevin(ctx, size, SamplerKind::Ula, 0.0)
}

/// MALA (langevin.wgsl): at most 1 % of chains off the CPU's path.
pub fn mala(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    langevin(ctx, size, SamplerKind::Mala, 0.01)
}

fn hmc_or_rwmh(ctx: &Arc<GpuContext>, size: Size, kind: SamplerKind, step: f32) -> Result<Measure> {
    let mut parts = Vec::new();
    for (name, spec) in [("ring8", "ring8"), ("gaussian10", GAUSS10)] {
        let energy = resolve_energy(spec)?;
        let mut config = SamplerConfig::new(kind, step, 99);
        config.step_jitter = 0.2;
        config.leapfrog_jitter = 3;
        parts.push(compare(ctx, name, &energy, config, size.pick(128, 256), size.pick(40, 100), 2e-3, 0.02, fused)?);
    }
    Ok(Measure::all(parts))
}

/// HMC (hmc.wgsl, jittered step and path length): at most 2 % of chains off the CPU's path.
pub fn hmc(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    hmc_or_rwmh(ctx, size, SamplerKind::Hmc, 0.05)
}

/// Random-walk Metropolis (rwmh.wgsl): at most 2 % of chains off the CPU's path.
pub fn rwmh(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    hmc_or_rwmh(ctx, size, SamplerKind::Rwmh, 0.3)
}

/// Parallel tempering (MALA within replicas, tempering.wgsl swaps every 5 steps) on a bimodal
/// mixture: states and swap counts against the CPU twin.
pub fn tempering(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let energy = resolve_energy(
        r#"{"type": "gaussian_mixture", "weights": [0.3, 0.7], "means": [[-4], [4]], "stds": [[0.6], [0.6]]}"#,
    )?;
    let mut config = SamplerConfig::new(SamplerKind::Mala, 0.1, 4);
    config.tempering = Some(Tempering::geometric(8, 60.0, 5));
    let (chains, steps) = (size.pick(64, 200), size.pick(60, 200));
    let init = vec![-4.0f32; chains];
    let mut cpu = CpuSampler::new(&energy, config.clone(), &init)?;
    let mut gpu = GpuSampler::new(ctx.clone(), &energy, config, &init)?;
    cpu.run(steps)?;
    gpu.run(steps)?;
    let (apart, worst) = chains_apart(&cpu.state()?, &gpu.state()?, 1, 2e-3);
    let (sa, sb) = (cpu.stats()?, gpu.stats()?);
    let (swaps_cpu, swaps_gpu): (u64, u64) =
        (sa.swaps.iter().map(|&v| v as u64).sum(), sb.swaps.iter().map(|&v| v as u64).sum());
    let swap_gap = swaps_cpu.abs_diff(swaps_gpu) as f64 / swaps_cpu.max(1) as f64;
    let most = chains / 50 + 1;
    let mut m = Measure::within(
        worst,
        2e-3,
        format!(
            "{chains} chains x 8 replicas x {steps} steps: {apart} apart (<= {most}), swaps {swaps_gpu} vs {swaps_cpu}"
        ),
    );
    m.passed &= apart <= most && swap_gap <= 0.02 && swaps_cpu > 0;
    Ok(m)
}

/// A product of experts: an MLP plus a broad Gaussian that keeps chains bounded.
fn mlp_energy(dims: &[usize], act: Activation, seed: u64) -> Result<Energy> {
    let net = Energy::from_network(Network::random_mlp(dims, act, false, seed)?);
    let d = dims[0];
    let gauss =
        resolve_energy(&format!(r#"{{"type": "gaussian", "mean": {:?}, "std": {:?}}}"#, vec![0.0; d], vec![2.0; d]))?;
    Ok(Energy::Sum { terms: vec![(1.0, net), (1.0, gauss)] })
}

/// MALA with the network evaluated per chain in registers (MlpStrategy::PerChain).
pub fn mlp_fused(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let energy = mlp_energy(&[2, 32, 32, 1], Activation::Silu, 11)?;
    let mut parts = Vec::new();
    for kind in [SamplerKind::Ula, SamplerKind::Mala] {
        let config = SamplerConfig::builder(kind, 0.01, 5).mlp_strategy(MlpStrategy::PerChain).build()?;
        // tests/mlp.rs allows 1 % of chains apart for both (rounding through the network).
        parts.push(compare(
            ctx,
            kind.name(),
            &energy,
            config,
            size.pick(128, 256),
            size.pick(40, 100),
            2e-3,
            0.01,
            fused,
        )?);
    }
    Ok(Measure::all(parts))
}

/// MALA with a workgroup per tile of chains (langevin_tiled.wgsl), widths that are not
/// multiples of the tiles, and an MNIST-sized input.
pub fn mlp_tiled(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let mut parts = Vec::new();
    let cases: Vec<(Vec<usize>, Activation, usize, u32)> = vec![
        (vec![6, 130, 70, 1], Activation::Silu, 100, size.pick(15, 30)),
        (vec![784, 200, 1], Activation::Softplus, 20, 3),
    ];
    for (dims, act, chains, steps) in cases {
        let energy = Energy::from_network(Network::random_mlp(&dims, act, dims[0] == 784, 21)?);
        for kind in [SamplerKind::Ula, SamplerKind::Mala] {
            let h = if dims[0] == 784 { 0.001 } else { 0.01 };
            let config = SamplerConfig::builder(kind, h, 17).mlp_strategy(MlpStrategy::Tiled).build()?;
            let name = format!("{dims:?} {}", kind.name());
            // One chain in a hundred may flip an accept decision (tests/mlp.rs allows one).
            parts.push(compare(ctx, &name, &energy, config, chains, steps, 1e-3, 0.01, fused)?);
        }
    }
    Ok(Measure::all(parts))
}

/// ULA and MALA on convolutional networks through the layer kernels (langevin_layered.wgsl
/// around batched network passes): at most 5 % of chains off the CPU's path.
pub fn layered(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let mut parts = Vec::new();
    let mut cases =
        vec![(SamplerKind::Mala, "1x8x8/4k3s1p1/silu/avgpool:2/6k3s2p1/tanh/flatten/5/softplus/1", 64, 20, 2.0)];
    if size == Size::Full {
        cases.push((
            SamplerKind::Ula,
            "1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f",
            16,
            5,
            0.001,
        ));
    }
    for (kind, spec, chains, steps, h) in cases {
        let energy = Energy::Net(Arc::new(Network::random(&Architecture::parse(spec)?, 3)?));
        let config = SamplerConfig::new(kind, h, 21);
        let name: String = format!("{} {}", kind.name(), spec.chars().take(16).collect::<String>());
        parts.push(compare(ctx, &name, &energy, config, chains, steps, 1e-3, 0.05, through_layers)?);
    }
    Ok(Measure::all(parts))
}
