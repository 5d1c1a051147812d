//! The CPU executor's lane schedule (SIMD across blocks of chains) against its chain-major
//! scalar schedule: the same chains bit for bit, for every sampler and analytic energy,
//! including block tails (chain counts that are not a multiple of the lane count), frozen
//! chains, traces, per-dimension scales and tempering.

use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::rng;
use ebm_gpu::sampler::config::Tempering;
use ebm_gpu::sampler::cpu::{CpuSampler, CpuSamplerInternals, Schedule};
use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};

const ENERGIES: &[&str] = &[
    "ring8",
    "banana",
    "correlated2",
    r#"{"type": "double_well", "dim": 37, "barrier": 2.0}"#,
    r#"{"type": "gaussian", "mean": [1, -2, 0.5, 3, 0, 0, 1], "std": [1, 2, 0.5, 1, 3, 1, 0.7]}"#,
    r#"{"type": "sum", "weights": [0.5, 1.0], "terms": [{"type": "banana"}, {"type": "gaussian", "mean": [0, 1], "std": [1, 2]}]}"#,
    // Every constraint, as penalties added to a Gaussian.
    r#"{"type": "sum", "terms": [{"type": "gaussian", "mean": [0.5, 0, -1], "std": [1, 2, 1]},
        {"type": "box", "lo": -1, "hi": [1, 0.5, 2], "weight": 20},
        {"type": "box", "lo": -0.5, "hi": 1, "dim": 3, "weight": 2, "penalty": "softplus", "sharpness": 5},
        {"type": "linear_inequality", "a": [1, -2, 0.5], "b": 0.3, "weight": 10},
        {"type": "linear_equality", "a": [0.5, 1, 0], "b": -1, "weight": 3},
        {"type": "norm_ball", "radius": 1.5, "dim": 3, "weight": 4},
        {"type": "simplex", "dim": 3, "weight": 5}]}"#,
    // A group average (its log-mean-exp runs on lanes without branches), around a mixture.
    r#"{"type": "group", "group": "dihedral:3", "energy": {"type": "gaussian_mixture", "weights": [0.3, 0.7], "means": [[1.5, 0.5], [-0.5, 2]], "stds": [[0.5, 0.8], [1, 0.4]]}}"#,
    r#"{"type": "group", "group": "image_rotations", "image": [1, 3, 3], "mode": "mean", "energy": {"type": "banana", "dim": 9, "a": 0.5, "b": 0.3}}"#,
    // Sliced experts: gathered, evaluated and scattered on lanes.
    SLICED,
];

/// Experts on slices of a 4-d point (one in reversed order) beside an unsliced one.
const SLICED: &str = r#"{"type": "sum", "weights": [1, 0.5, 2], "slices": [[0, 2], [3, 1], null], "terms": [
    {"type": "gaussian", "mean": [0.5, -1], "precision": [[2, 0.6], [0.6, 1]]}, "banana", {"type": "double_well", "dim": 4, "barrier": 0.3}]}"#;

/// Runs one configuration under both schedules and compares everything bit for bit.
fn compare(energy_arg: &str, config: SamplerConfig, chains: usize, steps: u32, poison: bool) {
    let energy = resolve_energy(energy_arg).unwrap();
    let dim = energy.dim();
    let r = config.replicas();
    let mut init = rng::initial_states(3, 0, chains, dim, 1.5);
    if poison {
        init[dim * (chains / 2)] = f32::NAN; // a chain that starts non-finite stays frozen
    }
    let mut runs = [Schedule::ChainMajor, Schedule::Lanes].map(|schedule| {
        let mut s = CpuSampler::new(&energy, config.clone(), &init).unwrap().with_schedule(schedule).unwrap();
        s.set_step_sizes(
            &(0..chains * r).map(|i| config.step_size * (1.0 + 0.01 * (i % 5) as f32)).collect::<Vec<_>>(),
        )
        .unwrap();
        s.set_dim_scale(&(0..dim).map(|i| 1.0 + 0.25 * (i % 3) as f32).collect::<Vec<_>>()).unwrap();
        // Two runs: the second starts from the first's saved state mid-window.
        s.run(steps / 3).unwrap();
        s.run(steps - steps / 3).unwrap();
        s
    });
    let [a, b] = &mut runs;
    let what = format!("{} on {energy_arg}, {chains} chains", config.kind.name());
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<u32>>();
    assert_eq!(bits(a.all_states().unwrap()), bits(b.all_states().unwrap()), "states: {what}");
    let (sa, sb) = (a.stats().unwrap(), b.stats().unwrap());
    assert_eq!(sa.accepted, sb.accepted, "accepted: {what}");
    assert_eq!(sa.frozen, sb.frozen, "frozen: {what}");
    assert_eq!(bits(sa.energies), bits(sb.energies), "energies: {what}");
    assert_eq!(bits(sa.accept_prob_sums), bits(sb.accept_prob_sums), "accept probabilities: {what}");
    assert_eq!(sa.swaps, sb.swaps, "swaps: {what}");
    assert_eq!(a.all_traces().unwrap().map(bits), b.all_traces().unwrap().map(bits), "traces: {what}");
    if poison {
        assert!(sa.frozen.iter().any(|&f| f), "the poisoned chain froze: {what}");
    }
}

#[test]
fn every_sampler_and_analytic_energy_matches_the_scalar_schedule_bit_for_bit() {
    for energy in ENERGIES {
        for kind in [SamplerKind::Ula, SamplerKind::Mala, SamplerKind::Rwmh, SamplerKind::Hmc] {
            let mut config = SamplerConfig::new(kind, 0.02, 11);
            config.trace_every = 3;
            config.trace_start = 5;
            config.trace_steps = 30;
            if kind == SamplerKind::Hmc {
                config.leapfrog = 5;
                config.leapfrog_jitter = 2;
                config.step_jitter = 0.2;
            }
            // 37 chains: two full blocks of 16 and a tail of 5.
            compare(energy, config, 37, 40, true);
        }
    }
}

#[test]
fn ula_options_and_diverging_chains_match_the_scalar_schedule() {
    let mut config = SamplerConfig::new(SamplerKind::Ula, 0.02, 5);
    config.grad_clamp = Some(0.5);
    config.box_clamp = Some((-1.0, 1.0));
    config.noise_scale = Some(0.05);
    compare("banana", config, 21, 30, false);
    // A step this large makes most double-well chains overflow and freeze part way.
    let config = SamplerConfig::new(SamplerKind::Ula, 0.6, 5);
    compare(r#"{"type": "double_well", "dim": 5, "barrier": 2.0}"#, config, 33, 30, false);
}

#[test]
fn tempering_matches_the_scalar_schedule() {
    for kind in [SamplerKind::Mala, SamplerKind::Hmc] {
        let mut config = SamplerConfig::new(kind, 0.05, 9);
        config.tempering = Some(Tempering::geometric(4, 8.0, 5));
        compare("ring8", config, 7, 40, false);
    }
}
