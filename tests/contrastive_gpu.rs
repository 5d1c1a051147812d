//! InfoNCE on the GPU executor (`shaders/train/infonce.wgsl` in the layer-kernel trainer)
//! against its CPU twin on one seed: views drawn by every kind of move and noise, given
//! pairs, a batch past one workgroup, and `ebm train --backend gpu` end to end.

mod common;

use common::net;
use ebm_gpu::train::contrastive::Augment;
use ebm_gpu::train::gpu::GpuTrainer;
use ebm_gpu::train::layered::LayeredTrainer;
use ebm_gpu::train::{Loss, Optimizer, TrainConfig, TrainState, Trainer, cpu::CpuTrainer};

/// `rows` smooth images of `dim` pixels in [-1, 1], or points when the caller reads them so.
fn rows(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let noise = ebm_gpu::rng::initial_states(seed, 0, rows, dim, 0.1);
    let phases = ebm_gpu::rng::initial_states(seed + 1, 0, rows, 1, 2.0);
    (0..rows * dim).map(|k| ((k % dim) as f32 * 0.7 + phases[k / dim]).sin() * 0.8 + noise[k]).collect()
}

/// Eight steps from one seed on both executors: the same losses, pair energies and gradient
/// norms at every step, and the same parameters and moments after them, up to float rounding.
#[test]
fn infonce_on_the_gpu_matches_the_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let adam = Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let sgd = Optimizer::Sgd { momentum: 0.9 };
    let moves = Augment { shift: 2, rotate: 20.0, zoom: 0.2, noise: 0.1 };
    let shifts = Augment { shift: 2, ..Augment::default() };
    let noise = Augment { noise: 0.1, ..Augment::default() };
    // (network, views, given pairs, batch, optimizer)
    let cases = [
        ("1x8x8/4k3s2p1/silu/flatten/6/head:lse", moves, false, 24, adam),
        ("2x6x6/3k3s1p1/tanh/flatten/5", shifts, false, 16, sgd),
        // MLP-shaped: GpuTrainer would otherwise give it to the fused MLP trainer.
        ("6/16/silu/8/head:lse", noise, false, 300, adam),
        ("6/16/silu/8/head:lse", Augment::default(), true, 32, adam),
    ];
    for (spec, augment, paired, batch, optimizer) in cases {
        let network = net(spec, 3);
        let dim = network.input_dim();
        let data = rows(if paired { 2 * 320 } else { 400 }, dim, 5);
        let mut cfg = TrainConfig::for_data(Loss::InfoNce { temperature: 0.2 }, &data, dim, 31).unwrap();
        (cfg.augment, cfg.paired, cfg.batch, cfg.optimizer) = (augment, paired, batch, optimizer);
        cfg.lr = 2e-3;
        cfg.weight_decay = 1e-4;
        let state = TrainState::new(network, &cfg).unwrap();
        let mut cpu = CpuTrainer::new(&cfg, state.clone(), &data).unwrap();
        let chosen = GpuTrainer::new(ctx.clone(), &cfg, state.clone(), &data).unwrap();
        assert!(matches!(chosen, GpuTrainer::Layered(_)), "{spec}: InfoNCE runs through the layer kernels");
        let mut gpu = LayeredTrainer::new(ctx.clone(), &cfg, state.clone(), &data).unwrap();
        let (mc, mg) = (cpu.run(8).unwrap(), gpu.run(8).unwrap());
        for (a, b) in mc.iter().zip(&mg) {
            let what = format!("{spec} {augment} step {}", a.step);
            assert_eq!(a.step, b.step);
            let close = |x: f32, y: f32, tol: f32| (x - y).abs() < tol * (1.0 + x.abs());
            assert!(close(a.loss, b.loss, 2e-3), "{what}: loss {} vs {}", a.loss, b.loss);
            assert!(close(a.e_pos, b.e_pos, 2e-3), "{what}: E+ {} vs {}", a.e_pos, b.e_pos);
            assert!(close(a.e_neg, b.e_neg, 2e-3), "{what}: E- {} vs {}", a.e_neg, b.e_neg);
            assert!(close(a.grad_norm, b.grad_norm, 5e-3), "{what}: |g| {} vs {}", a.grad_norm, b.grad_norm);
            assert_eq!((b.log_z, b.reset_fraction, b.cross_entropy), (0.0, 0.0, 0.0), "{what}: {b:?}");
        }
        let (sc, sg) = (cpu.state().unwrap(), gpu.state().unwrap());
        assert_eq!(sc.step, sg.step);
        let err = common::rel_err(&sg.params(), &sc.params());
        assert!(err < 2e-3, "{spec}: parameters differ by {err} (relative)");
        assert!(
            common::rel_err(&sg.m, &sc.m) < 2e-3 && common::rel_err(&sg.v, &sc.v) < 2e-3,
            "{spec}: optimizer moments differ"
        );
        assert!(sg.params() != state.params(), "{spec}: training moved the parameters");
        assert!(mg[7].loss < mg[0].loss, "{spec}: the loss falls: {} -> {}", mg[0].loss, mg[7].loss);
    }
}

/// `ebm train --loss infonce --backend gpu` trains on the GPU executor, and its checkpoint is
/// the CPU executor's up to float rounding.
#[test]
fn cli_trains_infonce_on_the_gpu() {
    if common::gpu().is_none() {
        return;
    }
    let dir = common::temp_dir("infonce-gpu");
    let data = common::mnist_fixture();
    let train = |backend: &str| {
        let run = dir.join(backend);
        let o = common::ebm(&[
            "train",
            "--data",
            common::s(&data),
            "--model",
            "1x28x28/8k5s2p2/silu/16k3s2p1/silu/flatten/16",
            "--loss",
            "infonce",
            "--batch",
            "32",
            "--steps",
            "6",
            "--run-dir",
            common::s(&run),
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "{backend}: {}", common::stderr(&o));
        let log = std::fs::read_to_string(run.join("train.log")).unwrap_or_default() + &common::stderr(&o);
        assert!(log.contains(&format!("on {backend}")), "{backend}: {log}");
        ebm_gpu::train::checkpoint::load(&run.join("checkpoint.safetensors")).unwrap().0
    };
    let (gpu, cpu) = (train("gpu"), train("cpu"));
    let err = common::rel_err(&gpu.params(), &cpu.params());
    assert!(err < 2e-3, "parameters differ by {err} (relative)");
}
