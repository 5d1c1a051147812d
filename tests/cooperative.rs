//! Cooperative learning (`ebm train --generator`, src/train/generator.rs): the GPU executor
//! against its CPU twin, what the generator learns, the command line end to end and its refusals.

mod common;

use ebm_gpu::data::toy::Toy;
use ebm_gpu::nn::NetworkInternals;
use ebm_gpu::train::generator::GeneratorConfig;
use ebm_gpu::train::gpu::GpuTrainer;
use ebm_gpu::train::{Loss, TrainConfig, TrainState, Trainer, cpu::CpuTrainer};

fn config(data: &[f32], loss: Loss, generator: &str) -> TrainConfig {
    let mut c = TrainConfig::for_data(loss, data, 2, 17).unwrap();
    c.batch = 32;
    c.langevin.steps = 5;
    c.langevin.step_size = 0.02;
    c.lr = 3e-3;
    c.generator = Some(GeneratorConfig { spec: generator.into(), lr: 2e-3 });
    c
}

/// Eight steps from one seed on both executors, an MLP and a network of the layer kernels as
/// the EBM: the same losses (the generator's too) and, after eight optimizer steps of both
/// networks, the same parameters and moments up to float rounding.
#[test]
fn generator_training_on_gpu_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let data = Toy::Ring8.sample(512, 3);
    for (ebm, generator, loss) in [
        ("2/16/silu/16/silu/1", "3/16/swish/16/tanh/2", Loss::Cd),
        ("2/12/tanh/12/softplus/1/head:-f", "5/24/relu/2", Loss::Softplus),
    ] {
        let cfg = config(&data, loss, generator);
        let state = TrainState::new(common::net(ebm, 4), &cfg).unwrap();
        assert!(state.replay.is_empty(), "a generator's run keeps no replay buffer");
        let mut cpu = CpuTrainer::new(&cfg, state.clone(), &data).unwrap();
        let mut gpu = GpuTrainer::new(ctx.clone(), &cfg, state.clone(), &data).unwrap();
        assert!(matches!(gpu, GpuTrainer::Layered(_)), "a generator's proposals run through the layer kernels");
        let (mc, mg) = (cpu.run(8).unwrap(), gpu.run(8).unwrap());
        for (a, b) in mc.iter().zip(&mg) {
            let what = format!("{ebm} step {}", a.step);
            for (name, x, y) in [
                ("loss", a.loss, b.loss),
                ("E-", a.e_neg, b.e_neg),
                ("|g|", a.grad_norm, b.grad_norm),
                ("generator loss", a.side_loss, b.side_loss),
                ("negatives' radius", a.neg_radius, b.neg_radius),
            ] {
                assert!((x - y).abs() < 3e-3 * (1.0 + x.abs()), "{what}: {name} {x} (cpu) vs {y} (gpu)");
            }
            assert!(a.side_loss > 0.0, "{what}: the refined negatives moved away from the proposals");
        }
        let (sc, sg) = (cpu.state().unwrap(), gpu.state().unwrap());
        assert!(common::rel_err(&sg.params(), &sc.params()) < 3e-3, "{ebm}: the EBM's parameters differ");
        let (gc, gg) = (sc.side.unwrap(), sg.side.unwrap());
        let err = common::rel_err(&gg.net.pack_params(), &gc.net.pack_params());
        assert!(err < 3e-3, "{generator}: the generator's parameters differ by {err} (relative)");
        assert!(
            common::rel_err(&gg.m, &gc.m) < 3e-3 && common::rel_err(&gg.v, &gc.v) < 3e-3,
            "{generator}: moments differ"
        );
        let before = state.side.unwrap().net.pack_params();
        assert!(gc.net.pack_params() != before, "{generator}: training moved the generator");
    }
}

/// `ebm train --generator` end to end: resumed bit for bit, sampled with `--init generator`
/// (as they are and as Langevin starts), judged by `ebm eval --samples`; and the refusals.
#[test]
fn generator_command_line_end_to_end() {
    let dir = common::temp_dir("coop-cli");
    let gen_spec = "3/16/swish/16/swish/2";
    let train = |run: &std::path::Path, steps: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", "ring8", "--train-size", "2000", "--model", "2/16/silu/16/silu/1"];
        args.extend_from_slice(&["--batch", "64", "--langevin-steps", "5", "--lr-decay-to", "1", "--steps", steps]);
        args.extend_from_slice(&["--backend", "cpu"]);
        args.extend_from_slice(&["--run-dir", common::s(run)]);
        args.extend_from_slice(extra);
        common::ebm(&args)
    };
    let run = dir.join("run");
    let o = train(&run, "20", &["--generator", gen_spec, "--generator-lr", "0.002"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = train(&run, "40", &["--resume"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let straight = dir.join("straight");
    let o = train(&straight, "40", &["--generator", gen_spec, "--generator-lr", "0.002"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let load = |d: &std::path::Path| ebm_gpu::train::checkpoint::load(&d.join("checkpoint.safetensors")).unwrap().0;
    let (resumed, whole) = (load(&run), load(&straight));
    assert_eq!(resumed.step, 40);
    assert!(resumed == whole, "a resumed run (the generator and its moments included) equals an uninterrupted one");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.lines().next().unwrap().contains(",generator_loss,"), "{metrics}");
    assert_eq!(metrics.lines().count(), 41, "one row per step, the resumed ones once");

    let energy = format!("net:{}", common::s(&run.join("checkpoint.safetensors")));
    let out = dir.join("gen.npy");
    let o = common::ebm(&["sample", "--energy", &energy, "--init", "generator", "--steps", "0", "--chains", "300"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = common::ebm(&[
        "sample",
        "--energy",
        &energy,
        "--init",
        "generator",
        "--steps",
        "0",
        "--chains",
        "300",
        "--out",
        common::s(&out),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let (states, rows, cols) = ebm_gpu::io::read_samples(&out).unwrap();
    assert_eq!((rows, cols), (300, 2));
    let g = resumed.side.as_ref().unwrap();
    let (_, config) = ebm_gpu::train::checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(states, ebm_gpu::train::generator::samples(&g.net, &config, 0, 0, 300), "g(w) of each chain's latent");
    let o = common::ebm(&["eval", "--run-dir", common::s(&run), "--samples", common::s(&out)]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && text.contains("300 fresh data points"), "{text}{}", common::stderr(&o));
    let o = common::ebm(&["sample", "--energy", &energy, "--init", "generator", "--steps", "5", "--chains", "64"]);
    assert!(o.status.success(), "Langevin from the generator's samples: {}", common::stderr(&o));

    // Refusals, each naming what is wrong.
    let plain = dir.join("plain");
    let refused = |o: std::process::Output, needle: &str| {
        let e = common::stderr(&o);
        assert!(!o.status.success() && e.contains(needle), "expected {needle:?} in: {e}");
    };
    refused(train(&dir.join("wide"), "5", &["--generator", "3/16/swish/5"]), "--generator");
    refused(train(&dir.join("wide2"), "5", &["--generator", "3/16/swish/5"]), "the data has 2 columns");
    refused(train(&dir.join("image"), "5", &["--generator", "1x2x1/flatten/2"]), "latent");
    refused(train(&dir.join("nce"), "5", &["--generator", gen_spec, "--loss", "nce"]), "samples no negatives");
    refused(train(&dir.join("lr"), "5", &["--generator-lr", "0.1"]), "--generator-lr needs --generator");
    refused(train(&run, "60", &["--resume", "--generator", "3/8/swish/2"]), "--generator");
    let o = train(&plain, "5", &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let plain_energy = format!("net:{}", common::s(&plain.join("checkpoint.safetensors")));
    refused(
        common::ebm(&["sample", "--energy", &plain_energy, "--init", "generator", "--chains", "8"]),
        "trained without --generator",
    );
    refused(common::ebm(&["sample", "--energy", &plain_energy, "--steps", "0"]), "--steps 0");
    refused(
        common::ebm(&["sample", "--energy", &energy, "--init", "replay", "--chains", "8"]),
        "no replay buffer (trained with --generator)",
    );
}

/// ring8 (a mixture of eight Gaussians), plain CD and cooperative learning trained alike for
/// equal steps: chains started at the generator's samples are nearer the data after 5 Langevin
/// steps than CD's chains from noise (and than the same model's chains from noise), and the
/// trained generator's samples alone are far nearer than the untrained generator's. (Measured
/// at full size in docs/cooperative.md, where 100 steps from noise on CD's model do better.)
#[test]
fn chains_from_the_generator_reach_the_mixture_before_chains_from_noise() {
    let toy = Toy::Ring8;
    let data = toy.sample(20_000, 1);
    let steps = 3000;
    let train = |generator: Option<&str>| {
        let mut c = TrainConfig::for_data(Loss::Cd, &data, 2, 7).unwrap();
        (c.decay_steps, c.final_lr_fraction) = (steps, 0.05);
        c.generator = generator.map(|spec| GeneratorConfig { spec: spec.into(), lr: c.lr });
        let state = TrainState::new(common::net("2/128/silu/128/silu/1", 7), &c).unwrap();
        let untrained = state.clone();
        let mut trainer = CpuTrainer::new(&c, state, &data).unwrap();
        trainer.run(steps).unwrap();
        (trainer.state().unwrap(), untrained, c)
    };
    let (cd, _, cd_config) = train(None);
    let (coop, untrained, config) = train(Some("4/64/swish/64/swish/2"));
    let log_p = |p: &[f32]| toy.log_density(p).unwrap();
    let (lo, hi) = ([config.box_lo[0], config.box_lo[1]], [config.box_hi[0], config.box_hi[1]]);
    let tv = |x: &[f32]| ebm_gpu::train::eval::samples_tv(x, &log_p, lo, hi);
    let n = 4096;
    let generator =
        |s: &TrainState| ebm_gpu::train::generator::samples(&s.side.as_ref().unwrap().net, &config, 5, 0, n);
    let (from_generator, untrained_generator) = (generator(&coop), generator(&untrained));
    let chains = |s: &TrainState, c: &TrainConfig, init: Option<&[f32]>| match init {
        Some(x) => ebm_gpu::train::run::training_chains(s, c, x, 5).unwrap(),
        None => ebm_gpu::train::run::fresh_samples(s, c, n, 5).unwrap(),
    };
    let generator_5 = tv(&chains(&coop, &config, Some(&from_generator)));
    let (noise_5, cd_noise_5) = (tv(&chains(&coop, &config, None)), tv(&chains(&cd, &cd_config, None)));
    let (trained, untrained) = (tv(&from_generator), tv(&untrained_generator));
    let floor = tv(&toy.sample(n, 99));
    println!(
        "TV to ring8 ({n} samples; {n} data points {floor:.3}): generator {trained:.3} (untrained {untrained:.3}); \
         after 5 steps from the generator {generator_5:.3}, from noise {noise_5:.3}, CD's model from noise {cd_noise_5:.3}"
    );
    assert!(trained < untrained - 0.2, "the generator learned: TV {trained} vs {untrained} untrained");
    assert!(generator_5 < 0.4, "5 steps from the generator: TV {generator_5}");
    assert!(generator_5 < cd_noise_5 - 0.1, "from the generator {generator_5} vs CD's chains from noise {cd_noise_5}");
    assert!(generator_5 < noise_5 - 0.1, "from the generator {generator_5} vs the same model from noise {noise_5}");
}
