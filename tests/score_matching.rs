//! Score matching: the activations' higher derivatives, the jets' parameter gradients of the
//! DSM and SSM losses against f64 finite differences for every layer type (residual blocks
//! included) and head, GPU
//! against CPU, and DSM recovering a 2-D Gaussian.

mod common;

use common::net;

use ebm_gpu::gpu::ContextInternals;
use ebm_gpu::nn::Network;
use ebm_gpu::nn::{Activation, NetworkInternals};
use ebm_gpu::train::score::{self, ScoreBatch};
use ebm_gpu::train::{Loss, TrainConfig, Trainer, cpu::CpuTrainer};

/// act, act', act'' and act''' against central differences of the one below, in f64.
#[test]
fn activation_derivatives_match_finite_differences() {
    let acts = ["relu", "leaky_relu:0.2", "silu", "tanh", "softplus", "elu:0.7"];
    let h = 1e-5;
    for name in acts {
        let a = Activation::parse(name).unwrap();
        for &z in &[-2.3f64, -0.7, -0.05, 0.3, 1.1, 2.9] {
            let d = a.derivatives(z);
            assert!((d[0] - a.eval(z).0).abs() < 1e-12 && (d[1] - a.eval(z).1).abs() < 1e-12, "{name} at {z}: {d:?}");
            let (up, down) = (a.derivatives(z + h), a.derivatives(z - h));
            for k in 1..4 {
                let fd = (up[k - 1] - down[k - 1]) / (2.0 * h);
                assert!((d[k] - fd).abs() < 1e-6 * (1.0 + fd.abs()), "{name} derivative {k} at {z}: {} vs {fd}", d[k]);
            }
        }
    }
}

/// Networks with every layer type (Linear with and without bias, Conv2d with stride and
/// padding, AvgPool2d, Flatten, each activation) and every head. ELU keeps alpha 1: with
/// another alpha its slope jumps at 0, and a parameter step that moves a pre-activation across
/// 0 makes the finite difference of a loss on ∇ₓE meaningless (ReLU's kinks are as likely to,
/// and do not here).
const NETS: [&str; 6] = [
    "3/7/silu/6/tanh/1/head:f",
    "1x6x6/3k3s1p1/softplus/avgpool:2/flatten/5/silu/3/head:lse",
    "4/6:nobias/leaky_relu:0.1/5/relu/3/head:class:1",
    "2x5x5/2k3s2p1/elu/flatten/4/tanh/1/head:-f",
    // Residual blocks: identity and projected (1x1 conv, pool) skips, nested, first and last.
    "2x4x4/res(2k3p1,tanh,2k3p1)/res(3k3s2p1,softplus;proj:3k1s2)/res(3k3s2p1;proj:avgpool:2)/flatten/3/silu/1",
    "3/res(5,silu,3)/res(res(4,tanh,3),softplus)/head:lse",
];

fn batch_for(loss: Loss, d: usize, n: usize, seed: u64) -> ScoreBatch {
    let points = ebm_gpu::rng::initial_states(seed, 0, n, d, 0.8);
    let mut directions = ebm_gpu::rng::initial_states(seed + 1, 0, n, d, 1.0);
    if let Loss::Ssm { rademacher: true } = loss {
        directions.iter_mut().for_each(|v| *v = v.signum());
    }
    let grad_factors =
        if let Loss::Dsm { .. } = loss { (0..n).map(|j| 0.2 + 0.3 * j as f32).collect() } else { vec![] };
    ScoreBatch { points, directions, grad_factors }
}

/// The jets' gradient of the mean DSM / SSM loss against central differences of the f64
/// definition (`score::loss_ref`) in every parameter; the loss itself too.
#[test]
fn score_losses_parameter_gradients_match_f64_finite_differences() {
    let dsm = Loss::Dsm { sigma_max: 0.5, sigma_min: 0.5, levels: 1, conditional: false };
    let losses = [dsm, Loss::Ssm { rademacher: false }, Loss::Ssm { rademacher: true }];
    for (k, spec) in NETS.iter().enumerate() {
        let mut network = net(spec, 40 + k as u64);
        for loss in losses {
            let batch = batch_for(loss, network.input_dim(), 3, 7 + k as u64);
            let got = score::step_cpu(loss, &network.view(), &batch);
            let reference = score::loss_ref(loss, &network.view(), &batch, 1e-4);
            assert!(
                (got.loss as f64 - reference).abs() < 2e-3 * (1.0 + reference.abs()),
                "{spec} {loss}: loss {} vs f64 {reference}",
                got.loss
            );
            let params = network.pack_params();
            let scale = 1.0 + got.grad.iter().fold(0.0f32, |m, g| m.max(g.abs())) as f64;
            let mut worst = (0.0f64, 0usize);
            for q in 0..params.len() {
                let h = 1e-3f32;
                let mut p = params.clone();
                p[q] = params[q] + h;
                network.set_params(&p).unwrap();
                let up = score::loss_ref(loss, &network.view(), &batch, 1e-4);
                p[q] = params[q] - h;
                network.set_params(&p).unwrap();
                let down = score::loss_ref(loss, &network.view(), &batch, 1e-4);
                let fd = (up - down) / ((params[q] + h) as f64 - (params[q] - h) as f64);
                let err = (got.grad[q] as f64 - fd).abs() / scale;
                if err > worst.0 {
                    worst = (err, q);
                }
            }
            eprintln!(
                "{spec} {loss}: worst relative error {:.2e} (parameter {} of {})",
                worst.0,
                worst.1,
                params.len()
            );
            assert!(worst.0 < 1e-5, "{spec} {loss}: the jet's gradient differs from the finite differences");
            network.set_params(&params).unwrap();
        }
    }
}

/// A noise-conditional batch (E_σ = E/σ): the points are perturbed by one of the levels as
/// DSM's, and the residual's factor is 1 (σ∇(E/σ) = ∇E) where plain DSM's is σ.
#[test]
fn noise_conditional_batches_perturb_by_a_level_with_factor_one() {
    let data = ebm_gpu::rng::initial_states(5, 0, 50, 3, 1.0);
    for conditional in [false, true] {
        let loss = Loss::Dsm { sigma_max: 1.0, sigma_min: 0.1, levels: 3, conditional };
        let mut config = TrainConfig::for_data(loss, &data, 3, 11).unwrap();
        config.batch = 32;
        let batch = score::batch(&config, &data, 50, 4);
        let mut seen = std::collections::BTreeSet::new();
        for j in 0..32 {
            // The perturbation over the direction (its largest coordinate) recovers the level.
            let row = ebm_gpu::train::batch_row(config.seed, 4, j, 50);
            let dir = &batch.directions[j * 3..j * 3 + 3];
            let i = (0..3).max_by(|&a, &b| dir[a].abs().total_cmp(&dir[b].abs())).unwrap();
            let sigma = (batch.points[j * 3 + i] - data[row * 3 + i]) / dir[i];
            let level = [1.0f32, 0.316_227_8, 0.1].iter().position(|l| (sigma - l).abs() < 2e-3);
            assert!(level.is_some(), "point {j}: perturbation {sigma} is no level");
            seen.insert(level.unwrap());
            let want = if conditional { 1.0 } else { sigma };
            assert!(
                (batch.grad_factors[j] - want).abs() < 2e-3,
                "conditional {conditional}: factor {}",
                batch.grad_factors[j]
            );
        }
        assert_eq!(seen.len(), 3, "every level drawn in 32 points");
    }
}

/// `--loss` spellings and bad noise levels.
#[test]
fn score_loss_spellings_and_bad_levels() {
    assert_eq!(
        Loss::parse("dsm").unwrap(),
        Loss::Dsm { sigma_max: 0.1, sigma_min: 0.1, levels: 1, conditional: false }
    );
    assert_eq!(
        Loss::parse("dsm:0.3").unwrap(),
        Loss::Dsm { sigma_max: 0.3, sigma_min: 0.3, levels: 1, conditional: false }
    );
    assert_eq!(
        Loss::parse("dsm:1,0.01,10").unwrap(),
        Loss::Dsm { sigma_max: 1.0, sigma_min: 0.01, levels: 10, conditional: false }
    );
    assert_eq!(
        Loss::parse("ncsm:1,0.01,10").unwrap(),
        Loss::Dsm { sigma_max: 1.0, sigma_min: 0.01, levels: 10, conditional: true }
    );
    assert_eq!(Loss::parse("ssm:rademacher").unwrap(), Loss::Ssm { rademacher: true });
    for good in ["dsm:0.3", "dsm:1,0.01,10", "ncsm:1,0.01,10", "ssm", "ssm:rademacher"] {
        assert_eq!(Loss::parse(good).unwrap().to_string(), good);
    }
    for bad in [
        "dsm:0",
        "dsm:-1",
        "dsm:nan",
        "dsm:0.01,1,10",
        "dsm:1,0.1,1",
        "dsm:1,0.1,0",
        "dsm:1,0.1",
        "ssm:sobol",
        "dsm:",
        "ncsm:0.01,1,10",
        "ncsm",
    ] {
        let err = Loss::parse(bad).unwrap_err().to_string();
        assert!(err.contains("dsm") || err.contains("loss"), "{bad}: {err}");
    }
    // The geometric levels run from max to min.
    assert_eq!(Loss::dsm_sigma(1.0, 0.01, 3, 0), 1.0);
    assert!((Loss::dsm_sigma(1.0, 0.01, 3, 1) - 0.1).abs() < 1e-6);
    assert!((Loss::dsm_sigma(1.0, 0.01, 3, 2) - 0.01).abs() < 1e-7);
    // Only a noise-conditional model has levels to anneal over, largest first.
    assert_eq!(Loss::parse("dsm:1,0.01,3").unwrap().noise_levels(), None);
    let levels = Loss::parse("ncsm:1,0.01,3").unwrap().noise_levels().unwrap();
    assert!(levels.len() == 3 && levels[0] == 1.0 && (levels[2] - 0.01).abs() < 1e-7, "{levels:?}");
}

/// Correlated 2-D Gaussian data (mean (0.5, -0.3), covariance [[1, 0.6], [0.6, 0.8]]).
fn gaussian_data(rows: usize, seed: u64) -> Vec<f32> {
    let z = ebm_gpu::rng::initial_states(seed, 0, rows, 2, 1.0);
    // Cholesky factor of the covariance.
    let (l00, l10) = (1.0f32, 0.6f32);
    let l11 = (0.8f32 - 0.36).sqrt();
    z.chunks_exact(2).flat_map(|p| [0.5 + l00 * p[0], -0.3 + l10 * p[0] + l11 * p[1]]).collect()
}

fn gaussian_log_density(points: &[f32]) -> Vec<f64> {
    let (a, b, c) = (1.0f64, 0.6f64, 0.8f64);
    let det = a * c - b * b;
    points
        .chunks_exact(2)
        .map(|p| {
            let (x, y) = (p[0] as f64 - 0.5, p[1] as f64 + 0.3);
            -0.5 * (c * x * x - 2.0 * b * x * y + a * y * y) / det - (2.0 * std::f64::consts::PI).ln() - 0.5 * det.ln()
        })
        .collect()
}

/// Held-out NLL and the true density's NLL of a trained 2-D network (quadrature of `ebm eval`).
fn gaussian_nll(net: Network, held_out: &[f32]) -> (f64, f64) {
    let model = ebm_gpu::energy::Energy::Net(std::sync::Arc::new(net));
    let reference = ebm_gpu::train::eval::Reference::LogDensity(&gaussian_log_density);
    let report = ebm_gpu::train::eval::evaluate_2d(&model, [-4.0, -4.0], [5.0, 4.0], held_out, reference).unwrap();
    (report.nll, report.true_nll.unwrap())
}

/// DSM with a small noise level on a 2-D Gaussian: the held-out NLL of the normalised model is
/// within 0.1 nats of the true density's and of what CD reaches with the same network, data
/// and number of steps.
#[test]
fn dsm_recovers_a_gaussian() {
    let data = gaussian_data(4096, 3);
    let held_out = gaussian_data(2000, 4);
    let mut nlls = Vec::new();
    for loss in [Loss::Dsm { sigma_max: 0.1, sigma_min: 0.1, levels: 1, conditional: false }, Loss::Cd] {
        let mut config = TrainConfig::for_data(loss, &data, 2, 5).unwrap();
        config.batch = 128;
        config.lr = 3e-3;
        let state = ebm_gpu::train::TrainState::new(net("2/32/silu/32/silu/1", 6), &config).unwrap();
        let mut trainer = CpuTrainer::new(&config, state, &data).unwrap();
        let metrics = trainer.run(1500).unwrap();
        if loss.is_score_matching() {
            let first: f32 = metrics[..50].iter().map(|m| m.loss).sum::<f32>() / 50.0;
            let last: f32 = metrics[metrics.len() - 50..].iter().map(|m| m.loss).sum::<f32>() / 50.0;
            assert!(last < first, "the DSM loss should fall: {first} -> {last}");
        }
        let (nll, true_nll) = gaussian_nll(trainer.state().unwrap().net, &held_out);
        eprintln!("{loss}: held-out NLL {nll:.4} (true {true_nll:.4})");
        nlls.push((nll, true_nll));
    }
    let ((dsm, true_nll), (cd, _)) = (nlls[0], nlls[1]);
    assert!((dsm - true_nll).abs() < 0.1, "DSM's held-out NLL {dsm} vs true {true_nll}");
    assert!((dsm - cd).abs() < 0.1, "DSM's held-out NLL {dsm} vs CD's {cd}");
}

/// The GPU's jet pass (layer kernels, head jet, reverse pass) against the CPU twin on the
/// same points and seeds: energies' jets and the parameter gradient, for every test network,
/// both orders.
#[test]
fn gpu_jets_match_cpu() {
    use ebm_gpu::nn::gpu::{NnKernels, Slice};
    use ebm_gpu::nn::gpu_jet::{GpuJet, JetSeeds};
    use ebm_gpu::nn::gpu_net::NetBuffers;
    use ebm_gpu::nn::jet::JetTape;
    let Some(ctx) = common::gpu() else { return };
    let kernels = NnKernels::new(ctx.clone());
    let n = 5;
    for (k, spec) in NETS.iter().enumerate() {
        let network = net(spec, 60 + k as u64);
        let d = network.input_dim();
        for order in [1usize, 2] {
            let xs = ebm_gpu::rng::initial_states(3 + k as u64, 0, n, d, 0.8);
            let vs = ebm_gpu::rng::initial_states(4 + k as u64, 0, n, d, 1.0);
            let seeds = if order == 1 {
                JetSeeds { e1_scale: 0.0, e1_shift: 0.3, e2: 0.0 }
            } else {
                JetSeeds { e1_scale: 0.2, e1_shift: 0.0, e2: -0.2 }
            };
            // CPU.
            let mut tape = JetTape::default();
            network.view().jet_forward(&xs, &vs, order, &mut tape);
            let cpu_seeds: Vec<[f32; 3]> =
                tape.energies.iter().map(|e| [0.0, seeds.e1_scale * e[1] + seeds.e1_shift, seeds.e2]).collect();
            let mut cpu_grad = vec![0.0; network.param_count()];
            network.view().jet_backward(&tape, &cpu_seeds, &mut cpu_grad);
            // GPU.
            let mut stack = xs.clone();
            stack.extend(&vs);
            stack.resize((order + 1) * n * d, 0.0);
            let bufs = NetBuffers::new(&ctx, &network, (order + 1) * n).unwrap();
            let x = ctx.storage_buffer("stack", bytemuck::cast_slice(&stack));
            let e = ctx.zeroed_storage_buffer("jet energies", 4 * 3 * n as u64);
            let jet =
                GpuJet::new(&kernels, &network, &bufs, n, order, Slice::whole(&x), Slice::whole(&e), seeds).unwrap();
            ctx.submit_pass("jet", |p| jet.record(p)).unwrap();
            let out = ctx
                .read_buffers(&[(&e, 4 * 3 * n as u64), (&bufs.param_grads, 4 * network.param_count() as u64)])
                .unwrap();
            let gpu_e: Vec<f32> = bytemuck::pod_collect_to_vec(&out[0]);
            let gpu_grad: Vec<f32> = bytemuck::pod_collect_to_vec(&out[1]);
            let cpu_e: Vec<f32> =
                tape.energies.iter().flat_map(|e| [e[0], e[1], if order == 2 { e[2] } else { 0.0 }]).collect();
            let gpu_e: Vec<f32> =
                gpu_e.chunks_exact(3).flat_map(|e| [e[0], e[1], if order == 2 { e[2] } else { 0.0 }]).collect();
            let scale = |v: &[f32]| 1.0 + v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let e_err = common::max_abs_diff(&gpu_e, &cpu_e) / scale(&cpu_e);
            let g_err = common::max_abs_diff(&gpu_grad, &cpu_grad) / scale(&cpu_grad);
            eprintln!("{spec} order {order}: energies {e_err:.1e}, gradient {g_err:.1e}");
            assert!(e_err < 1e-4 && g_err < 1e-4, "{spec} order {order}: GPU jet differs from the CPU's");
        }
    }
}

/// Twelve DSM (several levels) and SSM (both projections) steps from one seed on the GPU's
/// layer-kernel trainer and on the CPU: the same losses and, after twelve Adam steps, the same
/// parameters up to float rounding. The MLP-shaped network is one the fused trainer takes for
/// contrastive losses.
#[test]
fn score_matching_training_gpu_matches_cpu() {
    use ebm_gpu::train::gpu::GpuTrainer;
    let Some(ctx) = common::gpu() else { return };
    let cases = [
        ("3/16/silu/8/silu/1", Loss::Dsm { sigma_max: 0.5, sigma_min: 0.05, levels: 4, conditional: false }),
        ("1x6x6/3k3s1p1/softplus/avgpool:2/flatten/5/silu/3/head:lse", Loss::Ssm { rademacher: false }),
        ("2x5x5/2k3s2p1/elu/flatten/4/tanh/1/head:-f", Loss::Ssm { rademacher: true }),
        (
            "4/6:nobias/leaky_relu:0.1/5/relu/3/head:class:1",
            Loss::Dsm { sigma_max: 0.2, sigma_min: 0.2, levels: 1, conditional: false },
        ),
        (
            "1x4x4/2k3s1p1/silu/flatten/6/silu/1/head:f",
            Loss::Dsm { sigma_max: 1.0, sigma_min: 0.1, levels: 3, conditional: true },
        ),
        ("2x4x4/res(2k3p1,tanh,2k3p1)/res(3k3s2p1,softplus;proj:3k1s2)/flatten/1", Loss::Ssm { rademacher: false }),
        (
            "3/res(5,silu,3)/res(res(4,tanh,3),softplus)/head:lse",
            Loss::Dsm { sigma_max: 0.5, sigma_min: 0.1, levels: 2, conditional: true },
        ),
    ];
    for (k, (spec, loss)) in cases.into_iter().enumerate() {
        let network = net(spec, 80 + k as u64);
        let d = network.input_dim();
        let data = ebm_gpu::rng::initial_states(90 + k as u64, 0, 64, d, 1.0);
        let mut config = TrainConfig::for_data(loss, &data, d, 17).unwrap();
        config.batch = 16;
        config.lr = 1e-3;
        let state = ebm_gpu::train::TrainState::new(network, &config).unwrap();
        let mut cpu = CpuTrainer::new(&config, state.clone(), &data).unwrap();
        let mut gpu = GpuTrainer::new(ctx.clone(), &config, state, &data).unwrap();
        let (mc, mg) = (cpu.run(12).unwrap(), gpu.run(12).unwrap());
        for (a, b) in mc.iter().zip(&mg) {
            for (what, x, y) in
                [("loss", a.loss, b.loss), ("energy", a.e_pos, b.e_pos), ("grad norm", a.grad_norm, b.grad_norm)]
            {
                assert!(
                    (x - y).abs() < 2e-3 * (1.0 + x.abs()),
                    "{spec} {loss} step {}: {what} {x} (cpu) vs {y} (gpu)",
                    a.step
                );
            }
        }
        let (pc, pg) = (cpu.state().unwrap().net.pack_params(), gpu.state().unwrap().net.pack_params());
        let err = common::max_abs_diff(&pc, &pg);
        eprintln!("{spec} {loss}: final loss {} / {}, parameters differ by {err:.1e}", mc[11].loss, mg[11].loss);
        assert!(err < 1e-3, "{spec} {loss}: parameters after 12 steps differ by {err}");
    }
}

/// `ebm train --loss dsm` and `ssm` end to end on both executors, then `ebm eval` on the run;
/// bad noise levels refused naming the flag.
#[test]
fn cli_trains_by_score_matching() {
    let dir = common::temp_dir("score_matching_cli");
    let backends: &[&str] = if common::gpu().is_some() { &["cpu", "gpu"] } else { &["cpu"] };
    for backend in backends {
        for loss in ["dsm:0.3,0.1,3", "ssm:rademacher"] {
            let run = dir.join(format!("{backend}_{loss}").replace([':', ','], "_"));
            let args = ["train", "--data", "ring8", "--loss", loss, "--model", "2/16/silu/16/silu/1", "--steps", "40"];
            let out = common::ebm(&[&args[..], &["--run-dir", common::s(&run), "--backend", backend]].concat());
            assert!(out.status.success(), "{backend} {loss}: {}", common::stderr(&out));
            assert!(common::stderr(&out).contains(&format!("with {loss} loss")), "{}", common::stderr(&out));
            let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
            assert_eq!(metrics.lines().count(), 41, "a header and 40 rows");
            assert!(run.join("figures/energy_000040.png").exists());
            let eval = common::ebm(&["eval", "--run-dir", common::s(&run), "--held-out", "2000"]);
            assert!(eval.status.success(), "{}", common::stderr(&eval));
            assert!(String::from_utf8_lossy(&eval.stdout).contains("held-out NLL"));
        }
    }
    for (bad, says) in
        [("dsm:0", "dsm noise levels"), ("dsm:0.1,0.5,4", "dsm noise levels"), ("ssm:sobol", "unknown loss")]
    {
        let out = common::ebm(&[
            "train",
            "--data",
            "ring8",
            "--loss",
            bad,
            "--steps",
            "5",
            "--run-dir",
            common::s(&dir.join("bad")),
        ]);
        assert!(!out.status.success() && common::stderr(&out).contains(says), "{bad}: {}", common::stderr(&out));
    }
}
