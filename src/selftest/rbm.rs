//! Checks of the RBM kernels: block Gibbs, the CD/PCD update and AIS, GPU against the CPU twin.

use super::{Measure, Size, max_abs_diff};
use crate::Result;
use crate::gpu::GpuContext;
use crate::rbm::ais::{self, AisConfig, Base, BetaSchedule};
use crate::rbm::cpu::{CpuGibbs, CpuTrainer};
use crate::rbm::gpu::{GpuGibbs, GpuTrainer};
use crate::rbm::train::{self, Method, TrainConfig, TrainState, Trainer};
use crate::rbm::{Rbm, Visible};
use crate::rng::{self, Stream};
use std::sync::Arc;

/// An RBM with random weights N(0, w_std^2) and biases N(0, b_std^2) from Philox: a model with
/// no structure to exploit.
pub fn random_rbm(nv: usize, nh: usize, visible: Visible, w_std: f32, b_std: f32, seed: u64) -> Result<Rbm> {
    let mut rbm = Rbm::random(nv, nh, visible, w_std, seed)?;
    let mut biases = vec![0.0f32; nv + nh];
    rng::fill_normals(seed, 1 << 20, 0, Stream::Init, &mut biases);
    rbm.b_mut().iter_mut().zip(&biases).for_each(|(b, x)| *b = x * b_std);
    rbm.c_mut().iter_mut().zip(&biases[nv..]).for_each(|(c, x)| *c = x * b_std);
    Ok(rbm)
}

/// `rows` rows of `nv` fair coin flips from the Philox init stream.
pub fn random_binary(rows: usize, nv: usize, seed: u64) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * nv];
    for (r, row) in out.chunks_mut(nv).enumerate() {
        for (q, block) in row.chunks_mut(4).enumerate() {
            let u = rng::uniform4(seed, r as u32, 0, Stream::Init, q as u32);
            block.iter_mut().zip(u).for_each(|(x, u)| *x = (u < 0.5) as u32 as f32);
        }
    }
    out
}

/// Block Gibbs (rbm.wgsl) on binary units: the same uniforms decide every unit, so states are
/// identical except where a probability sits within rounding of its uniform. Probabilities agree
/// to 1e-5; the units that differ stay within a Poisson bound of the expected number of such
/// ties (the sum of |p_gpu - p_cpu|), and 99 % of chains stay identical. A chain is compared
/// until its first difference.
pub fn gibbs(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let (nv, nh, chains, steps) = (64, 40, size.pick(128, 256), size.pick(3, 6));
    let rbm = random_rbm(nv, nh, Visible::Bernoulli, 0.3, 0.5, 11)?;
    let init = random_binary(chains, nv, 12);
    let mut cpu = CpuGibbs::new(&rbm, &init, 77, 0)?;
    let mut gpu = GpuGibbs::new(ctx.clone(), &rbm, &init, 77, 0)?;
    let mut alive = vec![true; chains];
    let (mut expected_ties, mut max_dp, mut differing) = (0.0f64, 0.0f64, 0usize);
    for _ in 0..steps {
        cpu.run(1);
        gpu.run(1)?;
        let (v, h, ph, pv) = gpu.read()?;
        for r in 0..chains {
            if !alive[r] {
                continue;
            }
            // Hidden half-step first; if it differs, the visible half-step had other inputs.
            let mut diff_here = 0;
            for (x, y, p, q, n) in [(&h, &cpu.h, &ph, &cpu.ph, nh), (&v, &cpu.v, &pv, &cpu.pv, nv)] {
                if diff_here > 0 {
                    break;
                }
                let row = r * n..(r + 1) * n;
                for k in row {
                    let dp = (p[k] - q[k]).abs() as f64;
                    max_dp = if dp.is_nan() { f64::NAN } else { max_dp.max(dp) };
                    expected_ties += dp;
                    diff_here += usize::from(x[k] != y[k]);
                }
            }
            if diff_here > 0 {
                differing += diff_here;
                alive[r] = false;
            }
        }
    }
    let still = alive.iter().filter(|&&a| a).count();
    let bound = expected_ties + 4.0 * expected_ties.sqrt() + 2.0;
    let mut m = Measure::within(
        max_dp,
        1e-5,
        format!(
            "{chains} chains x {steps} steps: max |p_gpu - p_cpu|; {differing} units differ (tie bound {bound:.1}), {still} chains identical"
        ),
    );
    m.passed &= (differing as f64) <= bound && still * 100 >= chains * 99;
    Ok(m)
}

/// One epoch of CD-2 and of PCD-2 with momentum and weight decay (rbm.wgsl + rbm_update.wgsl):
/// parameters and velocity agree to 1e-5, reconstruction errors to 1e-4, persistent chains
/// exactly.
pub fn cd(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let (nv, nh, rows) = (64, 24, size.pick(50, 100));
    let data = random_binary(rows, nv, 4);
    let mut parts = Vec::new();
    for method in [Method::Cd(2), Method::Pcd(2)] {
        let mut cfg = TrainConfig::new(method, 50, 0.1, 1, 21);
        cfg.momentum = 0.5;
        cfg.weight_decay = 1e-3;
        let state = TrainState::new(random_rbm(nv, nh, Visible::Bernoulli, 0.2, 0.2, 8)?, &cfg, &data)?;
        let mut cpu = CpuTrainer::new(&cfg, state.clone(), &data)?;
        let mut gpu = GpuTrainer::new(ctx.clone(), &cfg, state, &data)?;
        let order = train::epoch_order(rows, cfg.seed, 0);
        let batches = train::epoch_batches(&cfg, rows, 0);
        for t in [&mut cpu as &mut dyn Trainer, &mut gpu] {
            t.set_order(&order)?;
            t.run(&batches)?;
        }
        let (sc, sg) = (cpu.state()?, gpu.state()?);
        let dtheta = max_abs_diff(&sc.rbm.theta, &sg.rbm.theta).max(max_abs_diff(&sc.velocity, &sg.velocity));
        parts.push(Measure::within(dtheta, 1e-5, format!("{method:?}: parameters and velocity")));
        let derr = max_abs_diff(&cpu.recon_errors()?, &gpu.recon_errors()?);
        parts.push(Measure::within(derr, 1e-4, format!("{method:?}: reconstruction errors")));
        let chains_equal = sc.chains == sg.chains && sc.step == sg.step;
        parts.push(Measure::within(
            if chains_equal { 0.0 } else { 1.0 },
            0.0,
            format!("{method:?}: persistent chains and step equal"),
        ));
    }
    Ok(Measure::all(parts))
}

/// AIS forward and reverse (rbm_ais.wgsl) from the base-rate base, Bernoulli and Gaussian
/// visibles: the same draws on both executors, so log Z agrees to 1e-2 and all but rare ties of
/// the runs' log weights to 1e-3.
pub fn ais(ctx: &Arc<GpuContext>, size: Size) -> Result<Measure> {
    let mut parts = Vec::new();
    let runs = size.pick(20, 40);
    for visible in [Visible::Bernoulli, Visible::Gaussian] {
        let rbm = random_rbm(21, 9, visible, if visible == Visible::Gaussian { 0.3 } else { 1.0 }, 0.5, 17)?;
        let data = match visible {
            Visible::Bernoulli => random_binary(300, 21, 2),
            Visible::Gaussian => rng::initial_states(2, 0, 300, 21, 1.0),
        };
        let config = AisConfig { runs, schedule: BetaSchedule::Piecewise(size.pick(100, 300)), seed: 6, first_run: 0 };
        let samples = crate::rbm::logz::exact_samples(&rbm, 0, runs, 3)?;
        let biases = Base::BaseRate.biases(&data, 21, visible)?;
        let (g, c) = (ais::ais_gpu(ctx, &rbm, &biases, &config)?, ais::ais_cpu(&rbm, &biases, &config)?);
        let (gr, cr) = (
            ais::reverse_ais_gpu(ctx, &rbm, &biases, &config, &samples)?,
            ais::reverse_ais_cpu(&rbm, &biases, &config, &samples)?,
        );
        for (what, a, b) in [("forward", &g, &c), ("reverse", &gr, &cr)] {
            let close = a.log_weights.iter().zip(&b.log_weights).filter(|(x, y)| (*x - *y).abs() < 1e-3).count();
            let mut m = Measure::within(
                (a.log_z - b.log_z).abs(),
                1e-2,
                format!("{visible:?} {what}: log Z {:.4} vs {:.4}", a.log_z, b.log_z),
            );
            m.passed &= close * 10 >= runs * 9;
            parts.push(m);
        }
    }
    Ok(Measure::all(parts))
}
