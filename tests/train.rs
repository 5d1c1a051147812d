//! Training: parameter gradients, optimizers and whole training steps on both executors, the
//! replay buffer, checkpoints and resumption, the divergence guard, and a likelihood target.

mod common;

use ebm_gpu::data::toy::Toy;
use ebm_gpu::energy::Energy;
use ebm_gpu::nn::Network;
use ebm_gpu::nn::{Activation, NetworkInternals};
use ebm_gpu::sampler::MlpStrategy;
use ebm_gpu::train::cpu::{CpuTrainer, optimizer_step};
use ebm_gpu::train::gpu::GpuTrainer;
use ebm_gpu::train::run::{self, Event, RunOptions};
use ebm_gpu::train::tape::{Tape, energy_param_grad};
use ebm_gpu::train::{Loss, ModelSpec, Optimizer, StepScalars, TrainConfig, TrainState, Trainer, checkpoint, eval};

fn small_config(loss: Loss, data: &[f32], seed: u64) -> TrainConfig {
    let mut c = TrainConfig::for_data(loss, data, 2, seed).unwrap();
    c.batch = 64;
    c.buffer_capacity = 512;
    c.langevin.steps = 5;
    c.reset_prob = 0.1;
    c
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ebm-train-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn param_grads_match_f64_finite_differences() {
    for act in ["silu", "tanh", "softplus", "elu"] {
        let net = Network::random_mlp(&[3, 7, 5, 1], Activation::parse(act).unwrap(), false, 11).unwrap();
        let mlp = net.as_mlp().unwrap();
        let x = [0.3f64, -1.2, 0.7];
        let (_, grad) = energy_param_grad::<f64>(&net, &x);
        let mut params = Vec::new();
        mlp.pack_into(&mut params);
        assert_eq!(grad.len(), params.len());
        // Central differences in f64 on an f64 copy of the network (weights as f32 perturbed
        // would lose the step): perturb through a closure over the packed vector.
        let energy_at = |p: &[f64]| -> f64 {
            let mut at = 0;
            let mut h: Vec<f64> = x.to_vec();
            let n = mlp.layers().len();
            for (k, l) in mlp.layers().iter().enumerate() {
                let w = &p[at..at + l.inputs * l.outputs];
                let b = &p[at + l.inputs * l.outputs..at + l.inputs * l.outputs + l.outputs];
                at += l.inputs * l.outputs + l.outputs;
                h = (0..l.outputs)
                    .map(|o| {
                        let z = b[o] + (0..l.inputs).map(|i| w[o * l.inputs + i] * h[i]).sum::<f64>();
                        if k + 1 < n { mlp.activation().eval(z).0 } else { z }
                    })
                    .collect();
            }
            h[0]
        };
        let p64: Vec<f64> = params.iter().map(|&v| v as f64).collect();
        for q in 0..p64.len() {
            let (mut up, mut down) = (p64.clone(), p64.clone());
            up[q] += 1e-6;
            down[q] -= 1e-6;
            let fd = (energy_at(&up) - energy_at(&down)) / 2e-6;
            assert!(
                (fd - grad[q]).abs() < 1e-6 * (1.0 + fd.abs()),
                "{act} parameter {q}: analytic {} vs finite difference {fd}",
                grad[q]
            );
        }
    }
}

#[test]
fn batched_tape_matches_per_point_gradients() {
    let net = Network::random_mlp(&[2, 16, 8, 1], Activation::Silu, false, 3).unwrap();
    let xs = ebm_gpu::rng::initial_states(5, 0, 37, 2, 1.5);
    let weights: Vec<f32> = (0..37).map(|s| ((s as f32) * 0.37).sin()).collect();
    let mut tape = Tape::record(&net, &xs);
    let grad = tape.param_grad(&net, &weights, None);
    let mut want = vec![0f64; grad.len()];
    for (s, x) in xs.chunks_exact(2).enumerate() {
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let (e, g) = energy_param_grad::<f64>(&net, &x64);
        assert!((tape.energies[s] as f64 - e).abs() < 1e-4, "energy of point {s}");
        want.iter_mut().zip(&g).for_each(|(w, g)| *w += weights[s] as f64 * g);
    }
    for (q, (a, b)) in grad.iter().zip(&want).enumerate() {
        assert!((*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()), "parameter {q}: tape {a} vs f64 {b}");
    }
}

#[test]
fn optimizers_match_pytorch_formulas() {
    // One Adam step from zero moments moves every parameter by lr * sign(g) (bias-corrected),
    // up to eps; SGD with momentum moves by lr * g.
    let data = Toy::Ring8.sample(500, 1);
    let mut cfg = small_config(Loss::Cd, &data, 1);
    cfg.clip_norm = 0.0;
    let grad = [0.5f32, -2.0, 1e-3, 0.0];
    let mut p = [1.0f32; 4];
    let (mut m, mut v) = ([0.0; 4], [0.0; 4]);
    optimizer_step(&cfg, StepScalars::new(&cfg, 0, 1.0), &mut p, &mut m, &mut v, &grad);
    for q in 0..4 {
        let want = 1.0 - cfg.lr * grad[q].signum() * (grad[q] != 0.0) as i32 as f32;
        assert!((p[q] - want).abs() < 1e-5, "adam parameter {q}: {} vs {want}", p[q]);
    }
    cfg.optimizer = Optimizer::Sgd { momentum: 0.9 };
    cfg.clip_norm = 1.0;
    let mut p = [1.0f32; 4];
    let (mut m, mut v) = ([0.0; 4], [0.0; 4]);
    optimizer_step(&cfg, StepScalars::new(&cfg, 0, 1.0), &mut p, &mut m, &mut v, &grad);
    let norm = grad.iter().map(|g| g * g).sum::<f32>().sqrt();
    for q in 0..4 {
        let want = 1.0 - cfg.lr * grad[q] / norm;
        assert!((p[q] - want).abs() < 1e-6, "clipped sgd parameter {q}: {} vs {want}", p[q]);
    }
}

fn assert_states_close(a: &TrainState, b: &TrainState, tol: f32, what: &str) {
    let (pa, pb) = (a.params(), b.params());
    let scale = pa.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = common::max_abs_diff(&pa, &pb);
    assert!(diff < tol * scale, "{what}: parameters differ by {diff} (scale {scale})");
    let diff = common::max_abs_diff(&a.replay, &b.replay);
    assert!(diff < 10.0 * tol, "{what}: replay buffers differ by {diff}");
    assert_eq!(a.step, b.step);
}

/// The first 50 steps from one seed on both executors, for every loss and both optimizers; and
/// wide networks with many Langevin steps, which llvmpipe's loop cap splits over dispatches;
/// each with the Langevin phase per chain and tiled (a batch that is not a multiple of the tile).
#[test]
fn training_steps_match_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let data = Toy::TwoMoons.sample(2000, 4);
    let adam = Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let cases = [
        (Loss::Cd, adam, 50, "mlp:2,32,32,1:silu", 64, 5),
        (Loss::Softplus, Optimizer::Sgd { momentum: 0.9 }, 20, "mlp:2,32,32,1:silu", 64, 5),
        (
            Loss::Hinge { margin: 0.5 },
            Optimizer::Adam { beta1: 0.9, beta2: 0.99, eps: 1e-6 },
            20,
            "mlp:2,32,32,1:silu",
            64,
            5,
        ),
        (Loss::Nce, adam, 50, "mlp:2,32,32,1:silu", 64, 5),
        (Loss::Cd, adam, 5, "mlp:2,128,128,1:silu", 16, 30),
        (Loss::Cd, adam, 5, "mlp:2,48,24,1:tanh", 40, 30),
        // The image recipe's gradient clamp (K = 7 marks it below).
        (Loss::Cd, adam, 10, "mlp:2,32,32,1:silu", 48, 7),
    ];
    for ((loss, optimizer, steps, model, batch, langevin_steps), strategy) in
        cases.into_iter().flat_map(|c| [(c, MlpStrategy::PerChain), (c, MlpStrategy::Tiled)])
    {
        let mut cfg = small_config(loss, &data, 21);
        cfg.optimizer = optimizer;
        cfg.lr = 2e-3;
        cfg.alpha = 0.1;
        cfg.weight_decay = 1e-4;
        cfg.batch = batch;
        cfg.langevin.steps = langevin_steps;
        if langevin_steps == 7 {
            // Large steps whose gradients the clamp cuts: without it the replay moves far more.
            cfg.langevin.step_size = 0.1;
            cfg.langevin.grad_clamp = 0.005;
        }
        let mlp = ModelSpec::parse(model).unwrap().build(5).unwrap();
        let state = TrainState::new(mlp, &cfg).unwrap();
        let mut cpu = CpuTrainer::new(&cfg, state.clone(), &data).unwrap();
        let mut gpu = GpuTrainer::with_strategy(ctx.clone(), &cfg, state, &data, strategy).unwrap();
        let mc = cpu.run(steps).unwrap();
        let mg = gpu.run(steps).unwrap();
        let what = format!("{loss:?} {model} K={langevin_steps} {strategy:?}");
        for (a, b) in mc.iter().zip(&mg).take(5) {
            assert_eq!(a.step, b.step);
            assert!(
                (a.loss - b.loss).abs() < 1e-3 * (1.0 + a.loss.abs()),
                "{what} step {}: loss {} vs {}",
                a.step,
                a.loss,
                b.loss
            );
            assert!(
                (a.grad_norm - b.grad_norm).abs() < 1e-3 * (1.0 + a.grad_norm),
                "{what} step {}: grad norm {} vs {}",
                a.step,
                a.grad_norm,
                b.grad_norm
            );
            assert_eq!(a.reset_fraction, b.reset_fraction, "{what}: the same slots reset");
        }
        assert_states_close(&cpu.state().unwrap(), &gpu.state().unwrap(), 2e-3, &format!("{what} after {steps} steps"));
    }
}

#[test]
fn replay_buffer_resets_at_the_configured_rate_and_persists() {
    let data = Toy::Ring8.sample(1000, 2);
    let mut cfg = small_config(Loss::Cd, &data, 9);
    cfg.reset_prob = 0.3;
    let mlp = ModelSpec::parse("mlp:2,16,1:silu").unwrap().build(1).unwrap();
    let state = TrainState::new(mlp, &cfg).unwrap();
    let mut trainer = CpuTrainer::new(&cfg, state.clone(), &data).unwrap();
    // Entries outside a step's window are untouched; inside they are rewritten.
    let before = trainer.state().unwrap().replay;
    trainer.run(1).unwrap();
    let after = trainer.state().unwrap().replay;
    let window = cfg.batch * 2;
    assert_eq!(&before[window..], &after[window..], "entries outside the batch window persist");
    assert!(
        before[..window].iter().zip(&after[..window]).filter(|(a, b)| a != b).count() > window / 2,
        "the window was refreshed"
    );
    // Reset fraction over 40 steps x 64 slots = 2560 Bernoulli(0.3) draws: within 4 sigma.
    let metrics = trainer.run(40).unwrap();
    let n = (40 * cfg.batch) as f64;
    let resets: f64 = metrics.iter().map(|m| m.reset_fraction as f64 * cfg.batch as f64).sum();
    let sigma = (n * 0.3 * 0.7).sqrt();
    assert!(
        (resets - 0.3 * n).abs() < 4.0 * sigma,
        "{resets} resets in {n} draws, expected {} +- {}",
        0.3 * n,
        4.0 * sigma
    );
    if let Some(ctx) = common::gpu() {
        let mut gpu = GpuTrainer::new(ctx, &cfg, state, &data).unwrap();
        let g: f64 = gpu.run(41).unwrap()[1..].iter().map(|m| m.reset_fraction as f64 * cfg.batch as f64).sum();
        assert_eq!(g, resets, "the GPU resets the same slots");
    }
}

fn options(dir: &std::path::Path, total: u32) -> RunOptions {
    RunOptions {
        dir: dir.to_path_buf(),
        total_steps: total,
        checkpoint_every: 10,
        figure_every: 0,
        chunk: 5,
        max_energy_gap: 1e4,
        max_rollbacks: 3,
    }
}

#[test]
fn resume_equals_uninterrupted_training() {
    let data = Toy::TwoMoons.sample(1000, 3);
    let cfg = small_config(Loss::Cd, &data, 13);
    let mlp = ModelSpec::parse("mlp:2,16,16,1:silu").unwrap().build(2).unwrap();
    let fresh = TrainState::new(mlp, &cfg).unwrap();
    let make_cpu = |c: &TrainConfig, s: TrainState| -> ebm_gpu::Result<Box<dyn Trainer>> {
        Ok(Box::new(CpuTrainer::new(c, s, &data)?))
    };
    let whole_dir = temp_dir("whole");
    let whole = run::train(&options(&whole_dir, 30), &cfg, fresh.clone(), &make_cpu, &mut |_| {}).unwrap();
    let split_dir = temp_dir("split");
    run::train(&options(&split_dir, 20), &cfg, fresh.clone(), &make_cpu, &mut |_| {}).unwrap();
    let (resumed, saved_cfg) = checkpoint::load(&split_dir.join(run::CHECKPOINT)).unwrap();
    assert_eq!(saved_cfg, cfg);
    assert_eq!(resumed.step, 20);
    let split = run::train(&options(&split_dir, 30), &cfg, resumed, &make_cpu, &mut |_| {}).unwrap();
    assert_eq!(whole, split, "resumed CPU run equals the uninterrupted one bit for bit");
    let rows = |d: &std::path::Path| std::fs::read_to_string(d.join(run::METRICS)).unwrap().lines().count();
    assert_eq!(rows(&whole_dir), 31);
    assert_eq!(rows(&split_dir), 31);
    // The checkpoint is also a network `ebm sample` can load.
    let net = Network::load(&whole_dir.join(run::CHECKPOINT), None).unwrap();
    assert_eq!(net, whole.net);
    if let Some(ctx) = common::gpu() {
        let make_gpu = |c: &TrainConfig, s: TrainState| -> ebm_gpu::Result<Box<dyn Trainer>> {
            Ok(Box::new(GpuTrainer::new(ctx.clone(), c, s, &data)?))
        };
        let gpu_whole =
            run::train(&options(&temp_dir("gpu-whole"), 30), &cfg, fresh.clone(), &make_gpu, &mut |_| {}).unwrap();
        let gdir = temp_dir("gpu-split");
        run::train(&options(&gdir, 20), &cfg, fresh, &make_gpu, &mut |_| {}).unwrap();
        let (resumed, _) = checkpoint::load(&gdir.join(run::CHECKPOINT)).unwrap();
        let gpu_split = run::train(&options(&gdir, 30), &cfg, resumed, &make_gpu, &mut |_| {}).unwrap();
        assert_eq!(gpu_whole, gpu_split, "resumed GPU run equals the uninterrupted one bit for bit");
    }
}

#[test]
fn divergence_rolls_back_with_a_lower_learning_rate() {
    let data = Toy::Ring8.sample(1000, 5);
    let mut cfg = small_config(Loss::Cd, &data, 17);
    cfg.lr = 1.0; // far too high: the energy gap explodes
    cfg.alpha = 0.0;
    cfg.clip_norm = 0.0;
    let mlp = ModelSpec::parse("mlp:2,16,16,1:relu").unwrap().build(2).unwrap();
    let state = TrainState::new(mlp, &cfg).unwrap();
    let make = |c: &TrainConfig, s: TrainState| -> ebm_gpu::Result<Box<dyn Trainer>> {
        Ok(Box::new(CpuTrainer::new(c, s, &data)?))
    };
    let dir = temp_dir("diverge");
    let mut opts = options(&dir, 40);
    opts.max_energy_gap = 50.0;
    opts.max_rollbacks = 20;
    let mut rollbacks = Vec::new();
    let result = run::train(&opts, &cfg, state, &make, &mut |e| {
        if let Event::Rollback { to, lr_scale, .. } = e {
            rollbacks.push((to, lr_scale));
        }
    });
    assert!(!rollbacks.is_empty(), "the guard fired");
    assert_eq!(rollbacks[0].1, 0.5, "the first rollback halves the learning rate");
    let log = std::fs::read_to_string(dir.join(run::LOG)).unwrap();
    assert!(log.contains("rolled back to the checkpoint at step"), "the log says so: {log}");
    if let Ok(final_state) = result {
        assert!(final_state.lr_scale < 1.0);
        // metrics.csv holds exactly one row per kept step.
        let steps: Vec<u32> = std::fs::read_to_string(dir.join(run::METRICS))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(steps, (1..=40).collect::<Vec<_>>());
    }
}

#[test]
fn bad_training_input_is_refused() {
    let data = Toy::Ring8.sample(100, 1);
    let cfg = small_config(Loss::Cd, &data, 1);
    let mlp3 = ModelSpec::parse("mlp:3,8,1").unwrap().build(1).unwrap();
    let err = TrainState::new(mlp3, &cfg).unwrap_err().to_string();
    assert!(err.contains("3-dimensional input") && err.contains("2 columns"), "{err}");
    let mlp = ModelSpec::parse("mlp:2,8,1").unwrap().build(1).unwrap();
    let mut big = cfg.clone();
    big.batch = 101;
    let err = CpuTrainer::new(&big, TrainState::new(mlp.clone(), &big).unwrap(), &data).err().unwrap().to_string();
    assert!(err.contains("larger than the dataset"), "{err}");
    let mut nan = data.clone();
    nan[7] = f32::NAN;
    assert!(TrainConfig::for_data(Loss::Cd, &nan, 2, 1).unwrap_err().to_string().contains("row 3"));
    assert!(Loss::parse("wasserstein").unwrap_err().to_string().contains("unknown loss"));
    assert!(ModelSpec::parse("mlp:2,8,2").is_err());
    assert!(ModelSpec::parse("conv:2,8,1").is_err());
    // A file that is not a training checkpoint.
    let dir = temp_dir("badckpt");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.safetensors");
    mlp.save(&path).unwrap();
    assert!(checkpoint::load(&path).unwrap_err().to_string().contains("not an ebm-gpu training checkpoint"));
    std::fs::write(&path, b"garbage").unwrap();
    assert!(checkpoint::load(&path).is_err());
}

/// Contrastive divergence on the ring of 8 Gaussians (known density) gets within 0.25 nats of
/// the true density's own held-out NLL, on the CPU executor.
#[test]
fn ring8_training_reaches_the_true_likelihood() {
    let toy = Toy::Ring8;
    let data = toy.sample(20_000, 1);
    let mut cfg = TrainConfig::for_data(Loss::Cd, &data, 2, 7).unwrap();
    cfg.batch = 128;
    cfg.lr = 0.01;
    cfg.decay_steps = 3000;
    cfg.final_lr_fraction = 0.05;
    let mlp = ModelSpec::parse("mlp:2,64,64,1:silu").unwrap().build(7).unwrap();
    let mut trainer = CpuTrainer::new(&cfg, TrainState::new(mlp, &cfg).unwrap(), &data).unwrap();
    trainer.run(3000).unwrap();
    let state = trainer.state().unwrap();
    let held_out = toy.sample(5000, 99);
    let model = state.energy();
    let truth = |p: &[f32]| toy.log_density(p).unwrap();
    let r = eval::evaluate_2d(
        &model,
        [cfg.box_lo[0], cfg.box_lo[1]],
        [cfg.box_hi[0], cfg.box_hi[1]],
        &held_out,
        eval::Reference::LogDensity(&truth),
    )
    .unwrap();
    let true_nll = r.true_nll.unwrap();
    assert!(r.nll < true_nll + 0.25, "model NLL {:.3} vs true {:.3} (TV {:.3})", r.nll, true_nll, r.tv);
}

#[test]
fn quadrature_recovers_known_densities() {
    // The ring8 preset is normalised: its quadrature log Z is 0 and its TV to itself 0.
    let truth = Toy::Ring8.true_energy().unwrap();
    let held_out = Toy::Ring8.sample(2000, 8);
    let log_p = |p: &[f32]| Toy::Ring8.log_density(p).unwrap();
    let r =
        eval::evaluate_2d(&truth, [-4.0, -4.0], [4.0, 4.0], &held_out, eval::Reference::LogDensity(&log_p)).unwrap();
    assert!(r.log_z.abs() < 1e-3, "log Z {}", r.log_z);
    assert!(r.tv < 1e-6 && (r.nll - r.true_nll.unwrap()).abs() < 1e-3, "{r:?}");
    // The known densities integrate to 1 over a box holding the data, and their exact density
    // agrees with a histogram of fresh samples up to Monte Carlo and binning error.
    for toy in [Toy::TwoMoons, Toy::SwissRoll, Toy::Rings, Toy::Checkerboard] {
        let grid = eval::grid([-4.0, -4.0], [4.0, 4.0], 400);
        let log_p = toy.log_density(&grid.points()).unwrap();
        let mass: f64 = log_p.iter().map(|l| l.exp()).sum::<f64>() * grid.cell_area();
        assert!((mass - 1.0).abs() < 2e-3, "{toy:?}: density integrates to {mass}");
        let samples = toy.sample(200_000, 3);
        let bins = 40;
        let mut counts = vec![0.0; bins * bins];
        for p in samples.chunks_exact(2) {
            let c = ((p[0] + 4.0) / 8.0 * bins as f32).floor();
            let r = ((4.0 - p[1]) / 8.0 * bins as f32).floor();
            if (0.0..bins as f32).contains(&c) && (0.0..bins as f32).contains(&r) {
                counts[r as usize * bins + c as usize] += 1.0 / 200_000.0;
            }
        }
        let mut exact = vec![0.0; bins * bins];
        for (k, l) in log_p.iter().enumerate() {
            exact[(k / 400) / 10 * bins + (k % 400) / 10] += l.exp() * grid.cell_area();
        }
        let tv = 0.5 * exact.iter().zip(&counts).map(|(a, b)| (a - b).abs()).sum::<f64>();
        // E|count/N - p| = sqrt(2 p (1 - p) / (pi N)) per bin for large N: the TV a perfect
        // density shows against a finite sample. Allow twice that.
        let noise: f64 =
            exact.iter().map(|p| (2.0 * p * (1.0 - p) / (std::f64::consts::PI * 200_000.0)).sqrt()).sum::<f64>() * 0.5;
        assert!(tv < 2.0 * noise, "{toy:?}: exact density vs histogram TV {tv}, Monte Carlo level {noise}");
    }
}

/// The replay buffer's Langevin chains sample exp(-E) of a fixed network: with a learning rate
/// of 1e-20 the model does not move, and the buffer's second moments match the quadrature
/// values of E(x) = a sum_k softplus(s <u_k, x>), u_k = +-e1, +-e2 (a confining energy), within
/// Monte Carlo error plus ULA's O(h) bias.
#[test]
fn replay_langevin_samples_the_model_density() {
    let (a, s) = (3.0f32, 2.0f32);
    let mlp = Network::new(
        &ebm_gpu::nn::Architecture::parse("2/4/softplus/1").unwrap(),
        vec![(vec![s, 0.0, -s, 0.0, 0.0, s, 0.0, -s], vec![0.0; 4]), (vec![], vec![]), (vec![a; 4], vec![0.0])],
    )
    .unwrap();
    // Data only fixes the box ([-3.3, 3.3]^2: the energy's mass outside it is below 1e-7).
    let data = vec![-3.0, -3.0, 3.0, 3.0, 0.0, 0.0, 1.0, -1.0];
    let mut cfg = TrainConfig::for_data(Loss::Cd, &data, 2, 5).unwrap();
    cfg.lr = 1e-20;
    cfg.batch = 4;
    cfg.buffer_capacity = 4096;
    cfg.reset_prob = 0.0;
    cfg.langevin.steps = 250;
    cfg.langevin.step_size = 0.01;
    let steps = 2048; // every slot refreshed twice: 500 Langevin steps from its uniform start
    let energy = Energy::from_network(mlp.clone());
    let grid = eval::grid([cfg.box_lo[0], cfg.box_lo[1]], [cfg.box_hi[0], cfg.box_hi[1]], 400);
    let e = eval::energies(&energy, &grid.points());
    let log_z = eval::log_integral(&e, grid.cell_area());
    let pts = grid.points();
    let moment = |f: &dyn Fn(f64, f64) -> f64| -> f64 {
        pts.chunks_exact(2)
            .zip(&e)
            .map(|(p, &e)| f(p[0] as f64, p[1] as f64) * (-(e as f64) - log_z).exp() * grid.cell_area())
            .sum()
    };
    let (want_xx, want_x4) = (moment(&|x, _| x * x), moment(&|x, _| x.powi(4)));
    let check = |replay: &[f32], executor: &str| {
        let n = replay.len() / 2;
        let xx: Vec<f64> = replay.iter().map(|&v| (v as f64).powi(2)).collect(); // both coordinates
        let mean = xx.iter().sum::<f64>() / xx.len() as f64;
        let sd = ((want_x4 - want_xx * want_xx) / (2 * n) as f64).sqrt() * 2f64.sqrt();
        assert!(
            (mean - want_xx).abs() < 4.0 * sd + 0.05 * want_xx,
            "{executor}: E[x^2] {mean:.4} vs {want_xx:.4} (sd {sd:.4})"
        );
    };
    let state = TrainState::new(mlp, &cfg).unwrap();
    let mut cpu = CpuTrainer::new(&cfg, state.clone(), &data).unwrap();
    cpu.run(steps).unwrap();
    check(&cpu.state().unwrap().replay, "cpu");
    if let Some(ctx) = common::gpu() {
        let mut gpu = GpuTrainer::new(ctx, &cfg, state, &data).unwrap();
        gpu.run(steps).unwrap();
        check(&gpu.state().unwrap().replay, "gpu");
    }
}
