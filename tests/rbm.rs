//! RBM kernels against their CPU twins, exact log Z against brute force, AIS against exact
//! log Z, CD-1 training on the digits, checkpoints, and bad input.

mod common;

use ebm_gpu::data::{self, Binarize, Split};
use ebm_gpu::rbm::ais::{self, AisConfig, BetaSchedule};
use ebm_gpu::rbm::cpu::{CpuGibbs, CpuTrainer};
use ebm_gpu::rbm::eval::Executor;
use ebm_gpu::rbm::gpu::{GpuGibbs, GpuTrainer};
use ebm_gpu::rbm::train::{self, LrSchedule, Method, TrainConfig, TrainState, Trainer};
use ebm_gpu::rbm::{Rbm, Visible, checkpoint, logz};
use ebm_gpu::rng;

use common::random_rbm;

/// Bernoulli(0.5) rows from Philox.
use ebm_gpu::selftest::rbm::random_binary;

fn digits(split: Split) -> Vec<f32> {
    let mut d = data::load(&common::digits_dir(), split).unwrap();
    data::binarize(&mut d, Binarize::Threshold(0.5), 0);
    d.images
}

/// Binary Gibbs states on both executors from one seed. Rule: a unit is on when its Philox
/// uniform u satisfies u < p. Inputs are binary, and both executors sum in the same order (so
/// pre-activations are bit-identical); only exp() may round differently, so a state can differ
/// only where u falls between the two executors' p. We measure |p_gpu - p_cpu| over every unit
/// of every still-identical chain, require it to be at rounding level (< 1e-5), and require
/// the number of differing units to be within a Poisson bound of sum |p_gpu - p_cpu|, the
/// expected number of such ties. A chain is compared only until its first difference.
#[test]
fn gibbs_gpu_matches_cpu_in_binary_states() {
    let Some(ctx) = common::gpu() else { return };
    let (nv, nh, chains, steps) = (64, 40, 256, 6);
    let rbm = random_rbm(nv, nh, Visible::Bernoulli, 0.3, 0.5, 11);
    let init = random_binary(chains, nv, 12);
    let mut cpu = CpuGibbs::new(&rbm, &init, 77, 0).unwrap();
    let mut gpu = GpuGibbs::new(ctx, &rbm, &init, 77, 0).unwrap();
    let mut alive = vec![true; chains];
    let (mut expected_ties, mut max_dp, mut differing, mut compared) = (0.0f64, 0.0f32, 0usize, 0usize);
    for _ in 0..steps {
        cpu.run(1);
        gpu.run(1).unwrap();
        let (v, h, ph, pv) = gpu.read().unwrap();
        for r in 0..chains {
            if !alive[r] {
                continue;
            }
            // Hidden half-step first; if it differs, the visible half-step had different inputs.
            let mut diff_here = 0;
            for (x, y, p, q) in
                [(&h, &cpu.h, &ph, &cpu.ph, nh), (&v, &cpu.v, &pv, &cpu.pv, nv)].map(|(a, b, c, d, n)| {
                    (&a[r * n..(r + 1) * n], &b[r * n..(r + 1) * n], &c[r * n..(r + 1) * n], &d[r * n..(r + 1) * n])
                })
            {
                if diff_here > 0 {
                    break;
                }
                for k in 0..x.len() {
                    let dp = (p[k] - q[k]).abs();
                    max_dp = max_dp.max(dp);
                    expected_ties += dp as f64;
                    compared += 1;
                    if x[k] != y[k] {
                        diff_here += 1;
                    }
                }
            }
            if diff_here > 0 {
                differing += diff_here;
                alive[r] = false;
            }
        }
    }
    let still = alive.iter().filter(|&&a| a).count();
    eprintln!(
        "{compared} unit draws compared: max |p_gpu - p_cpu| = {max_dp:e}, expected ties {expected_ties:.3e}, differing units {differing}, chains identical after {steps} steps: {still}/{chains}"
    );
    assert!(max_dp < 1e-5, "probabilities differ by {max_dp}, more than rounding");
    let bound = expected_ties + 4.0 * expected_ties.sqrt() + 2.0;
    assert!((differing as f64) <= bound, "{differing} differing units, tie bound {bound}");
    assert!(still * 100 >= chains * 99, "only {still} of {chains} chains identical");
}

/// Gaussian visibles: the same counters give the same normals up to log/cos rounding.
#[test]
fn gaussian_gibbs_gpu_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let (nv, nh, chains) = (20, 12, 128);
    let rbm = random_rbm(nv, nh, Visible::Gaussian, 0.1, 0.3, 5);
    let init = rng::initial_states(3, 0, chains, nv, 1.0);
    let mut cpu = CpuGibbs::new(&rbm, &init, 9, 0).unwrap();
    let mut gpu = GpuGibbs::new(ctx, &rbm, &init, 9, 0).unwrap();
    cpu.run(1);
    gpu.run(1).unwrap();
    let (v, h, _, pv) = gpu.read().unwrap();
    let h_diff = h.iter().zip(&cpu.h).filter(|(a, b)| a != b).count();
    assert!(h_diff <= 1, "{h_diff} hidden units differ");
    let dv = common::max_abs_diff(&pv, &cpu.pv);
    let ds = v.iter().zip(&cpu.v).map(|(a, b)| (a - b).abs()).filter(|d| *d > 1e-4).count();
    eprintln!("gaussian: mean diff {dv:e}, {ds} samples differ by > 1e-4, {h_diff} hidden differ");
    assert!(ds <= nv, "{ds} visible samples differ");
}

fn trainer_pair(
    ctx: std::sync::Arc<ebm_gpu::gpu::GpuContext>,
    cfg: &TrainConfig,
    state: TrainState,
    data: &[f32],
) -> (CpuTrainer, GpuTrainer) {
    (CpuTrainer::new(cfg, state.clone(), data).unwrap(), GpuTrainer::new(ctx, cfg, state, data).unwrap())
}

/// The update kernel (statistics reduced on the GPU, momentum, weight decay) against its twin:
/// two batches of CD-2 and of PCD-2 from one state give the same parameters, chains and
/// reconstruction errors up to f32 rounding.
#[test]
fn training_update_gpu_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let (nv, nh, rows) = (64, 24, 100);
    let data = random_binary(rows, nv, 4);
    for method in [Method::Cd(2), Method::Pcd(2)] {
        let mut cfg = TrainConfig::new(method, 50, 0.1, 1, 21);
        cfg.momentum = 0.5;
        cfg.weight_decay = 1e-3;
        let state = TrainState::new(random_rbm(nv, nh, Visible::Bernoulli, 0.2, 0.2, 8), &cfg, &data).unwrap();
        let (mut cpu, mut gpu) = trainer_pair(ctx.clone(), &cfg, state, &data);
        let order = train::epoch_order(rows, cfg.seed, 0);
        let batches = train::epoch_batches(&cfg, rows, 0);
        for t in [&mut cpu as &mut dyn Trainer, &mut gpu] {
            t.set_order(&order).unwrap();
            t.run(&batches).unwrap();
        }
        let (sc, sg) = (cpu.state().unwrap(), gpu.state().unwrap());
        assert_eq!(sc.step, sg.step);
        let dtheta = common::max_abs_diff(&sc.rbm.theta, &sg.rbm.theta);
        let dvel = common::max_abs_diff(&sc.velocity, &sg.velocity);
        let derr = common::max_abs_diff(&cpu.recon_errors().unwrap(), &gpu.recon_errors().unwrap());
        eprintln!("{method:?}: max |dtheta| {dtheta:e}, |dvelocity| {dvel:e}, |drecon| {derr:e}");
        assert!(dtheta < 1e-5 && dvel < 1e-5, "{method:?}: parameters differ by {dtheta}, velocity by {dvel}");
        assert!(derr < 1e-4, "{method:?}: reconstruction errors differ by {derr}");
        if let (Some(a), Some(b)) = (&sc.chains, &sg.chains) {
            assert_eq!(a, b, "persistent chains");
        }
    }
}

/// Free energies and reconstruction errors: GPU, CPU twin and a float64 reference.
#[test]
fn free_energy_and_reconstruction_gpu_match_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let rbm = random_rbm(37, 19, Visible::Bernoulli, 0.5, 0.5, 2);
    let data = random_binary(300, 37, 3);
    let (cpu, gpu) = (Executor::Cpu, Executor::Gpu(ctx));
    let (fc, fg) = (cpu.free_energies(&rbm, &data).unwrap(), gpu.free_energies(&rbm, &data).unwrap());
    for (r, (a, b)) in fc.iter().zip(&fg).enumerate() {
        let exact = rbm.free_energy_f64(&data[r * 37..(r + 1) * 37]);
        assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "row {r}: cpu {a} gpu {b}");
        assert!((*a as f64 - exact).abs() <= 1e-4 * (1.0 + exact.abs()), "row {r}: f32 {a} f64 {exact}");
    }
    let (rc, rg) = (cpu.recon_errors(&rbm, &data, 5).unwrap(), gpu.recon_errors(&rbm, &data, 5).unwrap());
    assert!(common::max_abs_diff(&rc, &rg) < 1e-4);
}

/// 12 visible x 8 hidden: log Z by enumerating the hidden layer (f64 reference, CPU twin, GPU)
/// equals brute force over both layers in f64; AIS on both executors agrees within 0.1 nats
/// and within 4 standard errors.
#[test]
fn small_rbm_log_z_exact_and_ais() {
    let rbm = random_rbm(12, 8, Visible::Bernoulli, 1.0, 0.5, 31);
    let brute = logz::log_z_brute_force_f64(&rbm).unwrap();
    let hidden = logz::log_z_hidden_f64(&rbm).unwrap();
    let cpu = logz::log_z_cpu(&rbm).unwrap();
    eprintln!("log Z: brute force {brute:.9}, hidden enumeration f64 {hidden:.9}, f32 cpu {cpu:.6}");
    assert!((brute - hidden).abs() < 1e-9);
    assert!((brute - cpu).abs() < 1e-4);
    let gpu = common::gpu();
    if let Some(ctx) = &gpu {
        let g = logz::log_z_gpu(ctx, &rbm).unwrap();
        eprintln!("log Z gpu {g:.6}");
        assert!((brute - g).abs() < 1e-4);
    }
    let data = random_binary(500, 12, 1);
    let base = ais::base_rate_biases(&data, 12, Visible::Bernoulli).unwrap();
    let config = AisConfig { runs: 200, schedule: BetaSchedule::Piecewise(1000), seed: 3, first_run: 0 };
    let ac = ais::ais_cpu(&rbm, &base, &config).unwrap();
    eprintln!("AIS cpu {:.4} +- {:.4} (exact {brute:.4})", ac.log_z, ac.std_err);
    assert!((ac.log_z - brute).abs() < 0.1 && (ac.log_z - brute).abs() < 4.0 * ac.std_err + 1e-3);
    if let Some(ctx) = &gpu {
        let ag = ais::ais_gpu(ctx, &rbm, &base, &config).unwrap();
        eprintln!("AIS gpu {:.4} +- {:.4}", ag.log_z, ag.std_err);
        assert!((ag.log_z - brute).abs() < 0.1);
        // Same draws: the two executors' estimates differ only by rounding and rare ties.
        assert!((ag.log_z - ac.log_z).abs() < 1e-2, "gpu {} cpu {}", ag.log_z, ac.log_z);
    }
}

/// Gaussian-Bernoulli: enumeration (f32 twin, GPU) against the f64 reference; AIS within 0.1.
#[test]
fn gaussian_rbm_log_z_exact_and_ais() {
    let rbm = random_rbm(10, 8, Visible::Gaussian, 0.3, 0.5, 41);
    let reference = logz::log_z_hidden_f64(&rbm).unwrap();
    let cpu = logz::log_z_cpu(&rbm).unwrap();
    assert!((reference - cpu).abs() < 1e-4, "{reference} {cpu}");
    let data = rng::initial_states(2, 0, 500, 10, 1.0);
    let base = ais::base_rate_biases(&data, 10, Visible::Gaussian).unwrap();
    let config = AisConfig { runs: 200, schedule: BetaSchedule::Piecewise(1000), seed: 4, first_run: 0 };
    let ac = ais::ais_cpu(&rbm, &base, &config).unwrap();
    eprintln!("gaussian log Z {reference:.4}, AIS cpu {:.4} +- {:.4}", ac.log_z, ac.std_err);
    assert!((ac.log_z - reference).abs() < 0.1);
    if let Some(ctx) = common::gpu() {
        assert!((logz::log_z_gpu(&ctx, &rbm).unwrap() - reference).abs() < 1e-4);
        let ag = ais::ais_gpu(&ctx, &rbm, &base, &config).unwrap();
        assert!((ag.log_z - reference).abs() < 0.1, "AIS gpu {}", ag.log_z);
    }
}

fn executor() -> Executor {
    common::gpu().map(Executor::Gpu).unwrap_or(Executor::Cpu)
}

/// CD-1 on the 8x8 digits (GPU executor when there is one): reconstruction error falls and the
/// exact test log-likelihood (16 hidden units, enumerated) rises well beyond its noise.
#[test]
fn cd1_on_digits_improves_reconstruction_and_test_likelihood() {
    let exec = executor();
    let (train_x, test_x) = (digits(Split::Train), digits(Split::Test));
    let rbm = Rbm::random(64, 16, Visible::Bernoulli, 0.01, 1).unwrap();
    let mut cfg = TrainConfig::new(Method::Cd(1), 20, 0.05, 8, 7);
    cfg.momentum = 0.5;
    let ll0 = exec.mean_log_likelihood(&rbm, &test_x, exec.log_z_exact(&rbm).unwrap()).unwrap();
    let re0 = exec.mean_recon_error(&rbm, &test_x, 1).unwrap();
    let state = TrainState::new(rbm, &cfg, &train_x).unwrap();
    let mut trainer = exec.trainer(&cfg, state, &train_x).unwrap();
    let rows = train_x.len() / 64;
    let mut recon = Vec::new();
    for epoch in 0..cfg.epochs {
        recon.push(train::run_epoch(trainer.as_mut(), &cfg, rows, epoch, |_, _| {}).unwrap().recon_error);
    }
    let rbm = trainer.state().unwrap().rbm;
    let ll = exec.mean_log_likelihood(&rbm, &test_x, exec.log_z_exact(&rbm).unwrap()).unwrap();
    let re = exec.mean_recon_error(&rbm, &test_x, 1).unwrap();
    eprintln!(
        "{}: test LL {ll0:.3} -> {ll:.3}, test recon {re0:.3} -> {re:.3}, train recon per epoch {recon:.3?}",
        exec.describe()
    );
    // The test split has 297 rows; per-row log-likelihoods spread by a few nats, so the mean's
    // standard error is ~0.3 nats: a 5-nat gain is far outside the noise.
    assert!(ll > ll0 + 5.0, "test log-likelihood {ll0} -> {ll}");
    assert!(re < 0.7 * re0, "test reconstruction error {re0} -> {re}");
    assert!(recon.last().unwrap() < &recon[0], "training reconstruction error {recon:?}");
}

/// A 20-hidden RBM briefly trained on MNIST: AIS (GPU when available) within 0.5 nats of the
/// exact log Z (2^20 hidden configurations enumerated).
#[test]
fn ais_matches_exact_log_z_on_mnist_20_hidden() {
    let exec = executor();
    let mut d = data::load(&common::mnist_fixture(), Split::Train).unwrap();
    data::binarize(&mut d, Binarize::Stochastic(1), 0);
    let rbm = Rbm::random(784, 20, Visible::Bernoulli, 0.01, 2).unwrap();
    let mut cfg = TrainConfig::new(Method::Cd(1), 50, 0.05, 2, 3);
    cfg.momentum = 0.5;
    let state = TrainState::new(rbm, &cfg, &d.images).unwrap();
    // Training is not under test here: the fast CPU executor does it.
    let mut trainer = Executor::Cpu.trainer(&cfg, state, &d.images).unwrap();
    for epoch in 0..cfg.epochs {
        train::run_epoch(trainer.as_mut(), &cfg, d.rows, epoch, |_, _| {}).unwrap();
    }
    let rbm = trainer.state().unwrap().rbm;
    let t = std::time::Instant::now();
    let exact = exec.log_z_exact(&rbm).unwrap();
    let t_exact = t.elapsed().as_secs_f64();
    let base = ais::base_rate_biases(&d.images, 784, Visible::Bernoulli).unwrap();
    // Accuracy: 10000 temperatures x 100 runs on the CPU twin (seconds here; ~40 s on lavapipe).
    let t = std::time::Instant::now();
    let a = Executor::Cpu
        .ais(&rbm, &base, &AisConfig { runs: 100, schedule: BetaSchedule::Piecewise(10000), seed: 5, first_run: 0 })
        .unwrap();
    eprintln!(
        "{}: exact log Z {exact:.4} ({t_exact:.1}s); AIS (cpu, 100 runs x 10000 betas) {:.4} +- {:.4} ({:.1}s), base {:.2}",
        exec.describe(),
        a.log_z,
        a.std_err,
        t.elapsed().as_secs_f64(),
        a.log_z_base
    );
    assert!((a.log_z - exact).abs() < 0.5, "AIS {} exact {exact}", a.log_z);
    // The GPU kernels make the same draws as the twin: a shorter schedule must agree closely.
    if let Executor::Gpu(ctx) = &exec {
        let short = AisConfig { runs: 32, schedule: BetaSchedule::Piecewise(300), seed: 6, first_run: 0 };
        let (g, c) = (ais::ais_gpu(ctx, &rbm, &base, &short).unwrap(), ais::ais_cpu(&rbm, &base, &short).unwrap());
        eprintln!("300 betas: AIS gpu {:.4} cpu {:.4}", g.log_z, c.log_z);
        assert!((g.log_z - c.log_z).abs() < 1e-2, "AIS gpu {} cpu {}", g.log_z, c.log_z);
    }
    let reference = logz::log_z_hidden_f64(&rbm).unwrap();
    assert!((exact - reference).abs() < 1e-3, "f32 enumeration {exact}, f64 {reference}");
}

/// Checkpoint round trip, and resuming from one reproduces an uninterrupted run bit for bit
/// (CPU executor: PCD-1 with momentum and a linear schedule).
#[test]
fn checkpoint_resume_is_bit_exact() {
    let dir = std::env::temp_dir().join(format!("ebm-rbm-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = random_binary(120, 16, 9);
    let mut cfg = TrainConfig::new(Method::Pcd(1), 30, 0.1, 2, 5);
    cfg.momentum = 0.5;
    cfg.schedule = LrSchedule::Linear { final_fraction: 0.1 };
    let start = TrainState::new(Rbm::random(16, 6, Visible::Bernoulli, 0.1, 1).unwrap(), &cfg, &data).unwrap();
    let run = |state: TrainState, epochs: std::ops::Range<u32>| {
        let mut t = CpuTrainer::new(&cfg, state, &data).unwrap();
        for e in epochs.clone() {
            train::run_epoch(&mut t, &cfg, 120, e, |_, _| {}).unwrap();
        }
        let mut s = t.state().unwrap();
        s.epoch = epochs.end;
        s
    };
    let whole = run(start.clone(), 0..2);
    let half = run(start, 0..1);
    let path = dir.join("ckpt.safetensors");
    checkpoint::save(&path, &half, Some(&cfg)).unwrap();
    let (loaded, loaded_cfg) = checkpoint::load(&path).unwrap();
    assert_eq!(loaded, half);
    assert_eq!(loaded_cfg.as_ref(), Some(&cfg));
    let resumed = run(loaded, 1..2);
    assert_eq!(resumed, whole);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Bad input: errors that say what is wrong, never panics.
#[test]
fn bad_model_input_gives_clear_errors() {
    let dir = std::env::temp_dir().join(format!("ebm-rbm-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Both layers too large for enumeration: the message suggests AIS.
    let big = Rbm::random(30, 26, Visible::Bernoulli, 0.1, 1).unwrap();
    let e = logz::log_z_cpu(&big).unwrap_err().to_string();
    assert!(e.contains("26 hidden units") && e.contains("AIS"), "{e}");
    if let Some(ctx) = common::gpu() {
        let e = logz::log_z_gpu(&ctx, &big).unwrap_err().to_string();
        assert!(e.contains("AIS"), "{e}");
    }
    // Non-finite parameters in a checkpoint.
    let mut rbm = Rbm::random(4, 3, Visible::Bernoulli, 0.1, 1).unwrap();
    rbm.theta[5] = f32::NAN;
    let cfg = TrainConfig::new(Method::Cd(1), 2, 0.1, 1, 0);
    let state = TrainState { velocity: vec![0.0; rbm.theta.len()], rbm, chains: None, step: 0, epoch: 0 };
    let path = dir.join("nan.safetensors");
    checkpoint::save(&path, &state, Some(&cfg)).unwrap();
    let e = checkpoint::load(&path).unwrap_err().to_string();
    assert!(e.contains("non-finite") && e.contains("\"W\""), "{e}");
    // Not a checkpoint at all.
    std::fs::write(dir.join("junk.safetensors"), b"hello").unwrap();
    assert!(checkpoint::load(&dir.join("junk.safetensors")).is_err());
    // Data whose width does not match the model.
    let rbm = Rbm::random(64, 8, Visible::Bernoulli, 0.1, 1).unwrap();
    let mut mnist_like =
        data::Dataset { images: vec![0.0; 784], labels: None, rows: 1, channels: 1, height: 28, width: 28 };
    let e = rbm.check_data(&mnist_like).unwrap_err().to_string();
    assert!(e.contains("784") && e.contains("64 visible"), "{e}");
    mnist_like.images.truncate(100);
    let e = Executor::Cpu.free_energies(&rbm, &mnist_like.images).unwrap_err().to_string();
    assert!(e.contains("64 visible"), "{e}");
    let state = TrainState::new(rbm.clone(), &cfg, &vec![0.0; 64]).unwrap();
    assert!(CpuTrainer::new(&cfg, state.clone(), &vec![0.0; 100]).is_err());
    if let Some(ctx) = common::gpu() {
        assert!(GpuTrainer::new(ctx, &cfg, state, &vec![0.0; 100]).is_err());
    }
    // Invalid hyper-parameters.
    let mut bad = cfg.clone();
    bad.lr = f32::NAN;
    assert!(bad.validate().unwrap_err().to_string().contains("learning rate"));
    assert!(LrSchedule::parse("cosine").is_err());
    // A rate of 0 from the second epoch on is training that silently stops (issue 31, cause 10).
    assert!(LrSchedule::parse("exp:0").unwrap_err().to_string().contains("GAMMA > 0"));
    assert_eq!(LrSchedule::parse("exp:0.5").unwrap(), LrSchedule::Exponential { gamma: 0.5 });
    std::fs::remove_dir_all(&dir).unwrap();
}
