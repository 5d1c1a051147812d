//! Training networks of any layer list (convolutions, pooling, several outputs): the GPU's
//! layer-kernel trainer against the CPU executor from one seed, bit-identical resumption of a
//! convolutional run, and `ebm train --model SPEC` on image rows end to end.

mod common;

use common::net;

use ebm_gpu::nn::{Network, NetworkInternals};
use ebm_gpu::train::gpu::GpuTrainer;
use ebm_gpu::train::layered::LayeredTrainer;
use ebm_gpu::train::run::{self, RunOptions};
use ebm_gpu::train::{Loss, Optimizer, TrainConfig, TrainState, Trainer, checkpoint, cpu::CpuTrainer};

/// `rows` smooth images of `dim` pixels in [-1, 1] (a random sinusoid each, plus noise).
fn images(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let noise = ebm_gpu::rng::initial_states(seed, 0, rows, dim, 0.1);
    let phases = ebm_gpu::rng::initial_states(seed + 1, 0, rows, 1, 2.0);
    (0..rows * dim)
        .map(|k| ((k % dim) as f32 * 0.7 + phases[k / dim]).sin() * 0.8 + noise[k])
        .map(|v| v.clamp(-1.0, 1.0))
        .collect()
}

fn config(loss: Loss, data: &[f32], dim: usize, optimizer: Optimizer) -> TrainConfig {
    let mut c = TrainConfig::for_data(loss, data, dim, 31).unwrap();
    c.optimizer = optimizer;
    c.batch = 24;
    c.buffer_capacity = 96;
    c.langevin.steps = 4;
    c.langevin.step_size = 0.05;
    c.reset_prob = 0.2;
    c.alpha = 0.1;
    c.lr = 2e-3;
    c.weight_decay = 1e-4;
    c
}

/// Twelve steps from one seed on both executors for networks with every layer type and every
/// head, each loss, both optimizers, with and without the Langevin gradient clamp: the same losses, reset fractions and (after twelve
/// optimizer steps) parameters and replay buffers up to float rounding.
#[test]
fn layer_kernel_training_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let adam = Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let sgd = Optimizer::Sgd { momentum: 0.9 };
    let cases = [
        ("1x6x6/4k3s1p1/silu/avgpool:2/5k2s1p0:nobias/elu:0.5/flatten/8/swish/1", Loss::Cd, adam),
        ("1x5x5/3k3s2p1/tanh/flatten/4/head:lse", Loss::Softplus, sgd),
        ("2x4x4/3k3s1p1/relu/flatten/6/head:class:2", Loss::Hinge { margin: 0.5 }, adam),
        ("1x6x6/2k3s2p0/softplus/flatten/5/leaky_relu:0.1/1/head:-f", Loss::Nce, adam),
        // Residual blocks: a 1x1-conv projection and an identity skip, on the CD path.
        ("1x6x6/res(3k3s2p1,silu,3k3p1;proj:3k1s2)/res(3k3p1,tanh)/flatten/4/swish/1", Loss::Cd, adam),
        // An MLP-shaped network, which GpuTrainer would give to the fused MLP trainer.
        ("5/16/silu/8/silu/1", Loss::Cd, sgd),
    ];
    for (spec, loss, optimizer) in cases {
        let network = net(spec, 3);
        let dim = network.input_dim();
        let data = images(300, dim, 5);
        let mut cfg = config(loss, &data, dim, optimizer);
        if loss == Loss::Cd {
            cfg.langevin.grad_clamp = 0.01; // the image recipe's clamp, small enough to bind here
        }
        let state = TrainState::new(network, &cfg).unwrap();
        let mut cpu = CpuTrainer::new(&cfg, state.clone(), &data).unwrap();
        let mut gpu = LayeredTrainer::new(ctx.clone(), &cfg, state.clone(), &data).unwrap();
        let (mc, mg) = (cpu.run(12).unwrap(), gpu.run(12).unwrap());
        for (a, b) in mc.iter().zip(&mg) {
            assert_eq!(a.step, b.step);
            let what = format!("{spec} {loss:?} step {}", a.step);
            assert!((a.loss - b.loss).abs() < 2e-3 * (1.0 + a.loss.abs()), "{what}: loss {} vs {}", a.loss, b.loss);
            assert!((a.e_pos - b.e_pos).abs() < 2e-3 * (1.0 + a.e_pos.abs()), "{what}: E+ {} vs {}", a.e_pos, b.e_pos);
            assert!(
                (a.grad_norm - b.grad_norm).abs() < 5e-3 * (1.0 + a.grad_norm),
                "{what}: |g| {} vs {}",
                a.grad_norm,
                b.grad_norm
            );
            assert_eq!(a.reset_fraction, b.reset_fraction, "{what}: the same slots reset");
            assert!((a.log_z - b.log_z).abs() < 1e-3, "{what}: log Z {} vs {}", a.log_z, b.log_z);
        }
        let (sc, sg) = (cpu.state().unwrap(), gpu.state().unwrap());
        assert_eq!(sc.step, sg.step);
        let err = common::rel_err(&sg.params(), &sc.params());
        assert!(err < 2e-3, "{spec}: parameters differ by {err} (relative)");
        assert!(
            common::rel_err(&sg.m, &sc.m) < 2e-3 && common::rel_err(&sg.v, &sc.v) < 2e-3,
            "{spec}: optimizer moments differ"
        );
        let err = common::rel_err(&sg.replay, &sc.replay);
        assert!(err < 2e-3, "{spec}: replay buffers differ by {err}");
        assert!(sg.params() != state.params(), "{spec}: training moved the parameters");
        // The dispatcher gives networks that are not MLPs to the layer-kernel trainer.
        let chosen = GpuTrainer::new(ctx.clone(), &cfg, state, &data).unwrap();
        assert_eq!(matches!(chosen, GpuTrainer::Layered(_)), sg.net.as_mlp().is_none(), "{spec}");
    }
}

fn options(dir: &std::path::Path, steps: u32) -> RunOptions {
    RunOptions {
        dir: dir.to_path_buf(),
        total_steps: steps,
        checkpoint_every: 10,
        figure_every: 10,
        chunk: 4,
        max_energy_gap: 1e4,
        max_rollbacks: 3,
    }
}

/// A convolutional JEM-style network trains on the CPU, stops, and resumes bit for bit; the
/// checkpoint is a network file that names its architecture, and the run draws its replay
/// buffer as images.
#[test]
fn convolutional_training_resumes_bit_identically() {
    let spec = "1x6x6/4k3s1p1/swish/avgpool:2/flatten/10/head:lse";
    let data = images(200, 36, 8);
    let cfg = config(Loss::Cd, &data, 36, Optimizer::Adam { beta1: 0.0, beta2: 0.999, eps: 1e-8 });
    let fresh = TrainState::new(net(spec, 4), &cfg).unwrap();
    let make = |c: &TrainConfig, s: TrainState| -> ebm_gpu::Result<Box<dyn Trainer>> {
        Ok(Box::new(CpuTrainer::new(c, s, &data)?))
    };
    let whole_dir = common::temp_dir("conv-whole");
    let whole = run::train(&options(&whole_dir, 30), &cfg, fresh.clone(), &make, &mut |_| {}).unwrap();
    let split_dir = common::temp_dir("conv-split");
    run::train(&options(&split_dir, 20), &cfg, fresh.clone(), &make, &mut |_| {}).unwrap();
    let (resumed, _) = checkpoint::load(&split_dir.join(run::CHECKPOINT)).unwrap();
    assert_eq!(resumed.step, 20);
    let split = run::train(&options(&split_dir, 30), &cfg, resumed, &make, &mut |_| {}).unwrap();
    assert_eq!(whole, split, "the resumed run equals the uninterrupted one bit for bit");
    assert_ne!(whole.params(), fresh.params());
    let loaded = Network::load(&whole_dir.join(run::CHECKPOINT), None).unwrap();
    assert_eq!(loaded, whole.net, "the checkpoint loads as the network, architecture from its metadata");
    for step in [10, 20, 30] {
        let figure = whole_dir.join("figures").join(format!("replay_{step:06}.png"));
        assert!(figure.exists(), "{} was written", figure.display());
    }
}

/// `ebm train --model SPEC` on a .npy of [rows, 1, 6, 6] images on the CPU executor with the
/// image recipe's defaults, then `ebm sample` from the checkpoint; bad pairings of model and
/// data are refused by name.
#[test]
fn cli_trains_a_convolutional_network_on_image_rows() {
    let dir = common::temp_dir("cli-conv");
    let data = images(120, 36, 2);
    let npy = dir.join("images.npy");
    ebm_gpu::io::npy::write_f32(&npy, &data, &[120, 1, 6, 6]).unwrap();
    let run_dir = dir.join("run");
    let model = "1x6x6/4k3s2p1/swish/flatten/8/swish/1";
    let args = [
        "train",
        "--data",
        common::s(&npy),
        "--model",
        model,
        "--epochs",
        "2",
        "--batch",
        "16",
        "--buffer-size",
        "64",
        "--langevin-steps",
        "3",
        "--checkpoint-every",
        "8",
        "--figure-every",
        "8",
        "--backend",
        "cpu",
        "--run-dir",
        common::s(&run_dir),
    ];
    let o = common::ebm(&args);
    assert!(o.status.success(), "{}", common::stderr(&o));
    for figure in ["replay_000008.png", "samples_000008.png", "replay_000016.png", "samples_000016.png"] {
        assert!(run_dir.join("figures").join(figure).exists(), "{figure}");
    }
    let metrics = std::fs::read_to_string(run_dir.join(run::METRICS)).unwrap();
    assert_eq!(metrics.lines().count(), 17, "a header and 2 epochs of ceil(120 / 16) = 8 steps");
    // The flags not given take the image recipe's values (the model's input is an image).
    let (_, c) = checkpoint::load(&run_dir.join(run::CHECKPOINT)).unwrap();
    let lv = c.langevin;
    assert_eq!((lv.steps, lv.step_size, lv.grad_clamp, c.batch), (3, 10.0, 0.03, 16));
    assert!((lv.noise_std() - 0.005).abs() < 1e-6, "noise std {}", lv.noise_std());
    assert_eq!(
        (c.alpha, c.lr, c.clip_norm, c.epoch_gamma, c.steps_per_epoch, c.final_lr_fraction),
        (0.1, 1e-4, 0.1, 0.97, 8, 1.0)
    );
    assert!(matches!(c.optimizer, Optimizer::Adam { beta1, .. } if beta1 == 0.0));
    assert!(c.box_lo.iter().all(|&v| v == -1.0) && c.box_hi.iter().all(|&v| v == 1.0), "images live in [-1, 1]");
    let lr = |step: usize| metrics.lines().nth(step).unwrap().split(',').nth(10).unwrap().parse::<f32>().unwrap();
    assert!((lr(9) / lr(8) - 0.97).abs() < 1e-5, "x0.97 after the first epoch: {} then {}", lr(8), lr(9));
    // A resume to a third epoch keeps the recipe (flags not given are not compared) and refuses
    // a changed one.
    let o = common::ebm(&["train", "--resume", common::s(&run_dir), "--epochs", "3", "--step-size", "5"]);
    assert!(!o.status.success() && common::stderr(&o).contains("--step-size was 10"), "{}", common::stderr(&o));
    let o = common::ebm(&["train", "--resume", common::s(&run_dir), "--epochs", "3", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let metrics = std::fs::read_to_string(run_dir.join(run::METRICS)).unwrap();
    assert_eq!(metrics.lines().count(), 25, "three epochs of 8 steps");
    let samples = dir.join("samples.npy");
    let png = dir.join("samples.png");
    let energy = format!("net:{}", run_dir.join(run::CHECKPOINT).display());
    let o = common::ebm(&[
        "sample",
        "--energy",
        &energy,
        "--chains",
        "8",
        "--steps",
        "5",
        "--step-size",
        "0.01",
        "--backend",
        "cpu",
        "--out",
        common::s(&samples),
        "--png",
        common::s(&png),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let (values, shape) = ebm_gpu::io::npy::read_f32(&samples).unwrap();
    assert_eq!(shape, vec![8, 36]);
    assert!(values.iter().all(|v| v.is_finite()));
    // Chains from the checkpoint's replay buffer, or uniform noise; replay needs a checkpoint.
    for init in ["replay", "uniform"] {
        let o = common::ebm(&[
            "sample",
            "--energy",
            &energy,
            "--init",
            init,
            "--chains",
            "8",
            "--steps",
            "2",
            "--sampler",
            "ula",
            "--step-size",
            "0.001",
            "--backend",
            "cpu",
            "--out",
            common::s(&samples),
        ]);
        assert!(o.status.success(), "--init {init}: {}", common::stderr(&o));
    }
    let (state, _) = checkpoint::load(&run_dir.join(run::CHECKPOINT)).unwrap();
    let (from_replay, _) = ebm_gpu::io::npy::read_f32(&samples).unwrap();
    assert!(
        from_replay.iter().all(|v| (-1.3..=1.3).contains(v)),
        "uniform starts stay near [-1, 1] after two tiny steps"
    );
    let plain = dir.join("plain.safetensors");
    state.net.save(&plain).unwrap();
    let o = common::ebm(&[
        "sample",
        "--energy",
        &format!("net:{}", plain.display()),
        "--init",
        "replay",
        "--chains",
        "4",
        "--steps",
        "1",
        "--backend",
        "cpu",
    ]);
    assert!(!o.status.success() && common::stderr(&o).contains("not a training checkpoint"), "{}", common::stderr(&o));
    // A model whose input is not the data's image shape.
    let o = common::ebm(&[
        "train",
        "--data",
        common::s(&npy),
        "--model",
        "1x5x5/2k3/flatten/1",
        "--steps",
        "2",
        "--batch",
        "16",
        "--backend",
        "cpu",
        "--run-dir",
        common::s(&dir.join("bad")),
    ]);
    let err = common::stderr(&o);
    // The images' shape reaches the check: both shapes named.
    assert!(!o.status.success() && err.contains("images of 1x6x6") && err.contains("takes 1x5x5"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// JEM's classifier term: the cross-entropy's logit gradient against central differences, and
/// through the network (the tape's parameter gradient of CE) against the f64 definition
/// CE = E_class(y) - E_lse, both heads' parameter gradients by the layers' definitions.
#[test]
fn jem_cross_entropy_gradients_match_their_definitions() {
    use ebm_gpu::nn::Head;
    use ebm_gpu::train::{cross_entropy, tape::Tape};
    let f = [0.3f32, -1.2, 2.0, 0.5];
    let mut g = [0.0f32; 4];
    let ce = cross_entropy(&f, 2, &mut g);
    let lse = f.iter().map(|v| (*v as f64).exp()).sum::<f64>().ln();
    assert!((ce as f64 - (lse - 2.0)).abs() < 1e-5);
    for y in 0..4 {
        let (mut up, mut down) = (f, f);
        up[y] += 1e-2;
        down[y] -= 1e-2;
        let fd = (cross_entropy(&up, 2, &mut [0.0; 4]) - cross_entropy(&down, 2, &mut [0.0; 4])) / 2e-2;
        assert!((fd - g[y]).abs() < 1e-3, "logit {y}: {} vs {fd}", g[y]);
    }
    let lse_net = net("1x5x5/3k3s2p1/tanh/avgpool:1/flatten/6/swish/4/head:lse", 8);
    let x = ebm_gpu::rng::initial_states(2, 0, 1, 25, 1.0);
    let label = 3;
    let mut tape = Tape::record(&lse_net, &x);
    let mut d_logits = vec![0.0f32; 4];
    cross_entropy(tape.outputs(), label, &mut d_logits);
    let got = tape.param_grad(&lse_net, &[0.0], Some(&d_logits));
    let mut arch = lse_net.architecture();
    arch.head = Head::Class(label);
    let class_net =
        Network::new(&arch, lse_net.layers().iter().map(|l| (l.weight.clone(), l.bias.clone())).collect()).unwrap();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let (_, d_class) = class_net.energy_param_grad_ref::<f64>(&x64);
    let (_, d_lse) = lse_net.energy_param_grad_ref::<f64>(&x64);
    for (q, (a, (c, l))) in got.iter().zip(d_class.iter().zip(&d_lse)).enumerate() {
        let want = c - l;
        assert!((*a as f64 - want).abs() < 1e-4 * (1.0 + want.abs()), "parameter {q}: {a} vs {want}");
    }
}

/// JEM steps on both executors from one seed: the same cross-entropy, losses and parameters.
#[test]
fn jem_training_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let spec = "1x6x6/4k3s2p1/swish/flatten/8/swish/3/head:lse";
    let data = images(150, 36, 9);
    let labels: Vec<u32> = (0..150).map(|i| (i * 7 % 3) as u32).collect();
    let cfg = config(Loss::Jem, &data, 36, Optimizer::Adam { beta1: 0.0, beta2: 0.999, eps: 1e-8 });
    let state = TrainState::new(net(spec, 6), &cfg).unwrap();
    let mut cpu = CpuTrainer::with_labels(&cfg, state.clone(), &data, &labels).unwrap();
    let mut gpu = GpuTrainer::with_labels(ctx, &cfg, state, &data, &labels).unwrap();
    let (mc, mg) = (cpu.run(10).unwrap(), gpu.run(10).unwrap());
    for (a, b) in mc.iter().zip(&mg) {
        assert!(a.cross_entropy > 0.5, "step {}: a cross-entropy near log 3 at the start: {}", a.step, a.cross_entropy);
        assert!(
            (a.cross_entropy - b.cross_entropy).abs() < 1e-3,
            "step {}: CE {} vs {}",
            a.step,
            a.cross_entropy,
            b.cross_entropy
        );
        assert!(
            (a.loss - b.loss).abs() < 2e-3 * (1.0 + a.loss.abs()),
            "step {}: loss {} vs {}",
            a.step,
            a.loss,
            b.loss
        );
    }
    let err = common::rel_err(&gpu.state().unwrap().params(), &cpu.state().unwrap().params());
    assert!(err < 2e-3, "parameters differ by {err}");
    // Labels are required, must be in range, and the network must be a classifier.
    let fresh = TrainState::new(net(spec, 6), &cfg).unwrap();
    assert!(CpuTrainer::new(&cfg, fresh.clone(), &data).is_err());
    let bad: Vec<u32> = vec![3; 150];
    assert!(CpuTrainer::with_labels(&cfg, fresh, &data, &bad).err().unwrap().to_string().contains("label 3"));
    let one = TrainState::new(net("1x6x6/4k3s2p1/swish/flatten/1", 6), &cfg).unwrap();
    assert!(CpuTrainer::with_labels(&cfg, one, &data, &labels).err().unwrap().to_string().contains("head:lse"));
}

/// `ebm train --loss jem` on the committed MNIST slice, then `ebm classify` (both executors
/// agree) and class-conditional `ebm sample --class`; JEM without labels is refused.
#[test]
fn cli_trains_jem_then_classifies_and_samples_a_class() {
    let dir = common::temp_dir("cli-jem");
    let run_dir = dir.join("run");
    let mnist = common::mnist_fixture();
    let model = "1x28x28/4k5s3p0/swish/flatten/10/head:lse";
    let o = common::ebm(&[
        "train",
        "--data",
        common::s(&mnist),
        "--model",
        model,
        "--loss",
        "jem",
        "--subset",
        "512",
        "--steps",
        "40",
        "--batch",
        "32",
        "--langevin-steps",
        "2",
        "--buffer-size",
        "64",
        "--lr",
        "0.01",
        "--clip-norm",
        "10",
        "--backend",
        "cpu",
        "--run-dir",
        common::s(&run_dir),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let metrics = std::fs::read_to_string(run_dir.join(run::METRICS)).unwrap();
    let ce = |line: &str| line.split(',').nth(9).unwrap().parse::<f32>().unwrap();
    let lines: Vec<&str> = metrics.lines().collect();
    let (first, last) = (ce(lines[1]), lines[lines.len() - 5..].iter().map(|l| ce(l)).sum::<f32>() / 5.0);
    assert!(first > 1.5 && last < first - 0.5, "cross-entropy {first} -> {last}");
    let ckpt = format!("net:{}", run_dir.join(run::CHECKPOINT).display());
    let mut accuracies = Vec::new();
    let backends: &[&str] = if common::gpu().is_some() { &["cpu", "gpu"] } else { &["cpu"] };
    for backend in backends {
        let json = dir.join(format!("classify-{backend}.json"));
        let o = common::ebm(&[
            "classify",
            "--energy",
            &ckpt,
            "--data",
            common::s(&mnist),
            "--json",
            common::s(&json),
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(r["inputs"].as_u64().unwrap(), 200, "the fixture's test split");
        accuracies.push(r["accuracy"].as_f64().unwrap());
    }
    assert!(accuracies[0] > 0.4, "40 steps beat chance (0.1) by far: {}", accuracies[0]);
    assert!(accuracies.iter().all(|a| (a - accuracies[0]).abs() <= 0.01), "executors agree: {accuracies:?}");
    let out = dir.join("three.npy");
    let o = common::ebm(&[
        "sample",
        "--energy",
        &ckpt,
        "--class",
        "3",
        "--sampler",
        "ula",
        "--chains",
        "4",
        "--steps",
        "3",
        "--step-size",
        "0.01",
        "--backend",
        "cpu",
        "--out",
        common::s(&out),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = common::ebm(&[
        "sample",
        "--energy",
        &ckpt,
        "--class",
        "10",
        "--chains",
        "4",
        "--steps",
        "3",
        "--backend",
        "cpu",
    ]);
    assert!(!o.status.success() && common::stderr(&o).contains("10 classes"), "{}", common::stderr(&o));
    let npy = dir.join("rows.npy");
    ebm_gpu::io::npy::write_f32(&npy, &images(64, 784, 1), &[64, 784]).unwrap();
    let o = common::ebm(&[
        "train",
        "--data",
        common::s(&npy),
        "--model",
        model,
        "--loss",
        "jem",
        "--steps",
        "2",
        "--batch",
        "16",
        "--backend",
        "cpu",
        "--run-dir",
        common::s(&dir.join("nolabels")),
    ]);
    assert!(!o.status.success() && common::stderr(&o).contains("needs labels"), "{}", common::stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A short MNIST run (the committed slice, a small ConvEBM, the image recipe's sampler) on
/// both executors: step by step the same losses and gaps (tolerance 2e-3 relative), and the
/// energy gap E(x-) - E(x+) grows as the model learns to tell data from its negatives.
#[test]
fn short_mnist_run_agrees_across_executors_and_opens_the_gap() {
    let set = ebm_gpu::data::load(&common::mnist_fixture(), ebm_gpu::data::Split::Train).unwrap();
    let data: Vec<f32> = set.images[..256 * 784].iter().map(|v| 2.0 * v - 1.0).collect();
    let mut cfg = TrainConfig::for_data(Loss::Cd, &data, 784, 12).unwrap();
    (cfg.box_lo, cfg.box_hi) = (vec![-1.0; 784], vec![1.0; 784]);
    cfg.batch = 32;
    cfg.buffer_capacity = 256;
    cfg.alpha = 0.1;
    cfg.lr = 1e-3;
    cfg.optimizer = Optimizer::Adam { beta1: 0.0, beta2: 0.999, eps: 1e-8 };
    cfg.langevin.steps = 5;
    cfg.langevin.step_size = 10.0;
    cfg.langevin.noise_scale = 0.005 / 20f32.sqrt();
    cfg.langevin.grad_clamp = 0.03;
    let state = TrainState::new(net("1x28x28/4k5s3p0/swish/flatten/8/swish/1/head:-f", 2), &cfg).unwrap();
    let steps = 24;
    let cpu = CpuTrainer::new(&cfg, state.clone(), &data).unwrap().run(steps).unwrap();
    let gap = |m: &[ebm_gpu::train::StepMetrics], r: std::ops::Range<usize>| {
        m[r.clone()].iter().map(|m| m.gap()).sum::<f32>() / r.len() as f32
    };
    let (early, late) = (gap(&cpu, 0..4), gap(&cpu, steps as usize - 4..steps as usize));
    assert!(late > early + 0.05, "the energy gap grows: {early} -> {late}");
    let Some(ctx) = common::gpu() else { return };
    let gpu = GpuTrainer::new(ctx, &cfg, state, &data).unwrap().run(steps).unwrap();
    for (a, b) in cpu.iter().zip(&gpu) {
        assert!(
            (a.loss - b.loss).abs() < 2e-3 * (1.0 + a.loss.abs()),
            "step {}: loss {} vs {}",
            a.step,
            a.loss,
            b.loss
        );
        assert!(
            (a.gap() - b.gap()).abs() < 2e-3 * (1.0 + a.gap().abs()),
            "step {}: gap {} vs {}",
            a.step,
            a.gap(),
            b.gap()
        );
    }
}
