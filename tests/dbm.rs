//! Deep Boltzmann machines and deep belief networks: AIS log Z against exact enumeration,
//! samplers against the exact distribution, the GPU Gibbs step against its CPU twin, bounds
//! below the exact likelihood, training that raises the AIS likelihood, checkpoints and bad
//! input.

#![allow(clippy::needless_range_loop)] // formulas over unit indices read as written

mod common;

use ebm_gpu::data::{self, Binarize, Split};
use ebm_gpu::rbm::ais::{AisConfig, BetaSchedule};
use ebm_gpu::rbm::cpu::transposed;
use ebm_gpu::rbm::deep::cpu::{DbmGibbs, noise_rows};
use ebm_gpu::rbm::deep::gpu::GpuDbmGibbs;
use ebm_gpu::rbm::deep::train::{self, ChainStart, DbmConfig, DbmState};
use ebm_gpu::rbm::deep::{Deep, Kind, ais, check_layer_sizes, checkpoint, sample};
use ebm_gpu::rbm::eval::Executor;
use ebm_gpu::rbm::train::{Method, TrainConfig};
use ebm_gpu::rbm::{Rbm, Visible};

/// A DBM (or DBN) with weights N(0, w^2) and biases N(0, b^2); a DBM's layer-2 visible bias 0.
fn random_deep(kind: Kind, sizes: &[usize], w: f32, b: f32, seed: u64) -> Deep {
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(k, s)| {
            let r = common::random_rbm(s[0], s[1], Visible::Bernoulli, w, b, seed + k as u64);
            let vb = if kind == Kind::Dbm && k == 1 { vec![0.0; s[0]] } else { r.b().to_vec() };
            Rbm::from_parts(r.w(), &vb, r.c(), Visible::Bernoulli).unwrap()
        })
        .collect();
    Deep::new(kind, layers).unwrap()
}

fn bits(x: u64, n: usize) -> Vec<f64> {
    (0..n).map(|i| ((x >> i) & 1) as f64).collect()
}

/// -E(v, h1, h2) of a DBM in f64, straight from the definition.
fn neg_energy(d: &Deep, v: &[f64], h1: &[f64], h2: &[f64]) -> f64 {
    let (l1, l2) = (&d.layers[0], &d.layers[1]);
    let (nv, n1) = (l1.n_vis, l1.n_hid);
    let mut s = 0.0;
    for i in 0..nv {
        s += l1.b()[i] as f64 * v[i];
    }
    for j in 0..n1 {
        s += l1.c()[j] as f64 * h1[j];
        for i in 0..nv {
            s += l1.w()[j * nv + i] as f64 * h1[j] * v[i];
        }
    }
    for k in 0..l2.n_hid {
        s += l2.c()[k] as f64 * h2[k];
        for j in 0..n1 {
            s += l2.w()[k * n1 + j] as f64 * h2[k] * h1[j];
        }
    }
    s
}

/// The exact joint distribution of a small DBM over (v, h1, h2), index v | h1 << nv | h2 << (nv + n1).
fn exact_joint(d: &Deep) -> Vec<f64> {
    let s = d.sizes();
    let n = s.iter().sum::<usize>();
    let logp: Vec<f64> = (0..1u64 << n)
        .map(|x| {
            let v = bits(x, s[0]);
            let h1 = bits(x >> s[0], s[1]);
            let h2 = bits(x >> (s[0] + s[1]), s[2]);
            neg_energy(d, &v, &h1, &h2)
        })
        .collect();
    let lz = ais::log_sum_exp(&logp);
    logp.iter().map(|l| (l - lz).exp()).collect()
}

/// Total variation between the histogram of `states` and `p`, and its Monte Carlo floor
/// (the expected TV of n exact draws, sum sqrt(2 p (1 - p) / (pi n)) / 2).
fn tv_and_floor(states: &[usize], p: &[f64]) -> (f64, f64) {
    let n = states.len() as f64;
    let mut hist = vec![0.0f64; p.len()];
    states.iter().for_each(|&s| hist[s] += 1.0 / n);
    let tv = 0.5 * hist.iter().zip(p).map(|(h, p)| (h - p).abs()).sum::<f64>();
    let floor = 0.5 * p.iter().map(|p| (2.0 * p * (1.0 - p) / (std::f64::consts::PI * n)).sqrt()).sum::<f64>();
    (tv, floor)
}

/// The histogram of `states` is as close to `p` as exact draws would be: TV below 1.5 x the
/// Monte Carlo floor.
fn assert_at_floor(what: &str, states: &[usize], p: &[f64]) {
    let (tv, floor) = tv_and_floor(states, p);
    eprintln!("{what}: TV {tv:.4} (Monte Carlo floor {floor:.4})");
    assert!(tv < 1.5 * floor, "{what}: TV {tv} against a floor of {floor}");
}

fn index(x: &[f32]) -> usize {
    x.iter().enumerate().map(|(i, &b)| (b as usize) << i).sum()
}

/// 6-4-3 units: log Z by enumerating h1 equals brute force over all 2^13 states; AIS over
/// {v, h2} from both bases, and reverse AIS from exact samples and from Gibbs chains, land
/// within 0.05 nats and 4 standard errors of it; log p*(v) by enumerating h1 equals brute
/// force; the exact samples' visibles follow p(v).
#[test]
fn dbm_log_z_ais_matches_exact_enumeration() {
    let d = random_deep(Kind::Dbm, &[6, 4, 3], 1.0, 0.5, 3);
    let p = exact_joint(&d);
    let s = d.sizes();
    let mut logp = Vec::new();
    for x in 0..1u64 << 13 {
        logp.push(neg_energy(&d, &bits(x, 6), &bits(x >> 6, 4), &bits(x >> 10, 3)));
    }
    let brute = ais::log_sum_exp(&logp);
    let exact = ais::log_z_exact_f64(&d).unwrap();
    eprintln!("log Z brute force {brute:.9}, h1 enumeration {exact:.9}");
    assert!((brute - exact).abs() < 1e-9);
    // log p(v) of every v: marginal of the brute-force joint against h1 enumeration.
    let vs: Vec<f32> = (0..64u64).flat_map(|v| bits(v, 6).into_iter().map(|b| b as f32)).collect();
    let lp = ais::log_p_unnormalised_f64(&d, &vs).unwrap();
    for v in 0..64usize {
        let marg: f64 = (0..1usize << 7).map(|h| p[v | h << s[0]]).sum();
        assert!((lp[v] - exact - marg.ln()).abs() < 1e-9, "v {v}: {} vs {}", lp[v] - exact, marg.ln());
    }
    let data = ebm_gpu::selftest::rbm::random_binary(200, 6, 1);
    let config = AisConfig { runs: 200, schedule: BetaSchedule::Piecewise(1000), seed: 5, first_run: 0 };
    let report = ais::log_z_report(&d, &data, &config, 1000).unwrap();
    let (from, reverse) = report.reverse.as_ref().expect("a reverse check");
    assert_eq!(from, "exact samples");
    // Reverse AIS from 1000-step Gibbs chains too (the path a model with a wide h1 takes).
    let h1 = noise_rows(9, 0, config.runs, 4);
    let mut gibbs = DbmGibbs::new(&d, &h1, 9, 0).unwrap();
    gibbs.run(1000);
    let base = vec![0.0; 6];
    let from_gibbs = ais::reverse_ais_dbm(&d, &base, &config, &gibbs.chains.v, &gibbs.chains.h2).unwrap();
    let estimates = report
        .forward
        .iter()
        .map(|(b, f)| (b.name(), f))
        .chain([("reverse", reverse), ("reverse (Gibbs)", &from_gibbs)]);
    for (name, f) in estimates {
        eprintln!("AIS {name}: {:.4} +- {:.4} (exact {exact:.4})", f.log_z, f.std_err);
        assert!((f.log_z - exact).abs() < 0.05 && (f.log_z - exact).abs() < 4.0 * f.std_err + 1e-3, "{name}");
    }
    // The exact samples' visible states follow the exact marginal p(v).
    let (v, _) = ais::exact_samples(&d, 20000, 3, 0).unwrap();
    let states: Vec<usize> = v.chunks(6).map(index).collect();
    let pv: Vec<f64> = (0..64usize).map(|v| (0..1usize << 7).map(|h| p[v | h << s[0]]).sum()).collect();
    assert_at_floor("exact samples", &states, &pv);
}

/// Inpainting (block Gibbs with visibles 0..3 of a 6-4-3 DBM clamped to 1, 0, 1): the mean
/// over 40000 chains of the holes' E[v | h1] equals the exact conditional mean E[v_hole | v_obs]
/// (the joint enumerated) within 4 Monte Carlo standard errors, and the observed units keep
/// their values.
#[test]
fn dbm_inpainting_matches_the_exact_conditional() {
    let d = random_deep(Kind::Dbm, &[6, 4, 3], 1.0, 0.5, 12);
    let p = exact_joint(&d);
    let observed = [1.0f32, 0.0, 1.0];
    // Exact: p(v_holes | v_obs) from the joint, then the holes' means.
    let mut exact = [0.0f64; 3];
    let mut total = 0.0f64;
    for (x, &px) in p.iter().enumerate() {
        let v = bits(x as u64, 6);
        if (0..3).all(|i| v[i] == observed[i] as f64) {
            total += px;
            (0..3).for_each(|i| exact[i] += px * v[3 + i]);
        }
    }
    exact.iter_mut().for_each(|e| *e /= total);
    let rows = 40000;
    let mut start = Vec::with_capacity(rows * 6);
    let mut mask = Vec::with_capacity(rows * 6);
    for r in 0..rows {
        start.extend(observed.iter().copied().chain((0..3).map(|i| ((r + i) % 2) as f32)));
        mask.extend([true, true, true, false, false, false]);
    }
    let out = ebm_gpu::rbm::deep::cpu::inpaint(&d, &start, &mask, 30, 5, 0).unwrap();
    for i in 0..3 {
        let col: Vec<f64> = out.chunks(6).map(|row| row[3 + i] as f64).collect();
        let mean = col.iter().sum::<f64>() / rows as f64;
        let sd = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (rows - 1) as f64).sqrt();
        let se = sd / (rows as f64).sqrt();
        eprintln!("hole {i}: inpainting {mean:.4} +- {se:.4}, exact {:.4}", exact[i]);
        assert!((mean - exact[i]).abs() < 4.0 * se + 1e-4, "hole {i}: {mean} against {}", exact[i]);
    }
    assert!(out.chunks(6).all(|row| row[..3] == observed), "an observed unit changed");
}

/// 4-3-2 units: the final states of 20000 independent block Gibbs chains (60 steps from
/// noise) against the exact joint over all 512 states: TV within 1.5x the Monte Carlo floor.
#[test]
fn dbm_gibbs_samples_match_exact_joint() {
    let d = random_deep(Kind::Dbm, &[4, 3, 2], 1.2, 0.7, 8);
    let p = exact_joint(&d);
    let chains = 20000;
    let mut g = DbmGibbs::new(&d, &noise_rows(2, 0, chains, 3), 9, 0).unwrap();
    g.run(60);
    let c = &g.chains;
    let states: Vec<usize> = (0..chains)
        .map(|r| {
            index(&c.v[r * 4..r * 4 + 4]) | index(&c.h1[r * 3..r * 3 + 3]) << 4 | index(&c.h2[r * 2..r * 2 + 2]) << 7
        })
        .collect();
    assert_at_floor("DBM Gibbs", &states, &p);
}

/// A 5-3-2 DBN: visible samples (top-level Gibbs, then the downward pass) against the exact
/// p(v) = sum_h1 p_top(h1) p(v | h1) over the 32 visible states.
#[test]
fn dbn_samples_match_exact_visible_distribution() {
    let d = random_deep(Kind::Dbn, &[5, 3, 2], 1.2, 0.7, 21);
    let (l1, top) = (&d.layers[0], &d.layers[1]);
    let sig = |a: f64| 1.0 / (1.0 + (-a).exp());
    let p_top: Vec<f64> = (0..8u64)
        .map(|h| {
            let h = bits(h, 3);
            (0..4u64)
                .map(|t| {
                    let t = bits(t, 2);
                    let mut s: f64 = (0..3).map(|j| top.b()[j] as f64 * h[j]).sum();
                    for k in 0..2 {
                        s += t[k] * (top.c()[k] as f64 + (0..3).map(|j| top.w()[k * 3 + j] as f64 * h[j]).sum::<f64>());
                    }
                    s.exp()
                })
                .sum()
        })
        .collect();
    let zt: f64 = p_top.iter().sum();
    let p: Vec<f64> = (0..32u64)
        .map(|v| {
            let v = bits(v, 5);
            (0..8u64)
                .map(|h| {
                    let hb = bits(h, 3);
                    let pv: f64 = (0..5)
                        .map(|i| {
                            let q =
                                sig(l1.b()[i] as f64 + (0..3).map(|j| l1.w()[j * 5 + i] as f64 * hb[j]).sum::<f64>());
                            if v[i] == 1.0 { q } else { 1.0 - q }
                        })
                        .product();
                    p_top[h as usize] / zt * pv
                })
                .sum()
        })
        .collect();
    let chains = 20000;
    let (_, v) = sample::samples(&Executor::Cpu, &d, 0, chains, 60, 4).unwrap();
    let states: Vec<usize> = v.chunks(5).map(index).collect();
    let (tv, floor) = tv_and_floor(&states, &p);
    // 32 cells, a few of them holding most of the mass: the TV of exact draws spreads by ~25%
    // around its floor, so the decision is Pearson's chi-square (31 degrees of freedom, every
    // expected count above 5) at p = 0.001 (Wilson-Hilferty quantile), with the TV printed.
    let mut counts = vec![0.0f64; 32];
    states.iter().for_each(|&s| counts[s] += 1.0);
    let n = chains as f64;
    assert!(p.iter().all(|&q| q * n > 5.0), "a cell too rare for the chi-square test");
    let chi2: f64 = counts.iter().zip(&p).map(|(c, q)| (c - n * q).powi(2) / (n * q)).sum();
    let df = 31.0f64;
    let quantile = df * (1.0 - 2.0 / (9.0 * df) + 3.09 * (2.0 / (9.0 * df)).sqrt()).powi(3);
    eprintln!(
        "DBN samples: TV {tv:.4} (Monte Carlo floor {floor:.4}), chi-square {chi2:.1} (0.999 quantile {quantile:.1})"
    );
    assert!(chi2 < quantile, "chi-square {chi2} above {quantile}");
}

/// The GPU block Gibbs step (rbm.wgsl visible/hidden steps, dbm.wgsl h1 step) against the CPU
/// twin from one seed, step by step on 256 chains of a 64-40-24 DBM. Inputs are binary, so the
/// executors' pre-activations differ only by summation order: units may differ only where a
/// uniform falls between the two probabilities. We require |p_gpu - p_cpu| < 1e-5 everywhere
/// compared and the differing units within a Poisson bound of the expected ties; a chain is
/// compared until its first difference, and 99% of chains must stay identical.
#[test]
fn dbm_gibbs_gpu_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let d = random_deep(Kind::Dbm, &[64, 40, 24], 0.3, 0.5, 5);
    let (chains, steps) = (256, 6);
    let h1 = noise_rows(1, 0, chains, 40);
    let mut cpu = DbmGibbs::new(&d, &h1, 77, 0).unwrap();
    let mut gpu = GpuDbmGibbs::new(ctx, &d, &h1, 77, 0).unwrap();
    let mut alive = vec![true; chains];
    let (mut expected, mut max_dp, mut differing, mut compared) = (0.0f64, 0.0f32, 0usize, 0usize);
    for _ in 0..steps {
        cpu.run(1);
        gpu.run(1).unwrap();
        let g = gpu.read().unwrap();
        let c = &cpu.chains;
        for r in 0..chains {
            if !alive[r] {
                continue;
            }
            let mut diff = 0;
            for (x, y, p, q, n) in
                [(&g.v, &c.v, &g.pv, &c.pv, 64), (&g.h2, &c.h2, &g.ph2, &c.ph2, 24), (&g.h1, &c.h1, &g.ph1, &c.ph1, 40)]
            {
                if diff > 0 {
                    break;
                }
                for k in r * n..(r + 1) * n {
                    let dp = (p[k] - q[k]).abs();
                    max_dp = max_dp.max(dp);
                    expected += dp as f64;
                    compared += 1;
                    diff += (x[k] != y[k]) as usize;
                }
            }
            if diff > 0 {
                differing += diff;
                alive[r] = false;
            }
        }
    }
    let still = alive.iter().filter(|&&a| a).count();
    eprintln!(
        "{compared} draws compared: max |dp| {max_dp:e}, expected ties {expected:.3e}, differing {differing}, identical chains {still}/{chains}"
    );
    assert!(max_dp < 1e-5, "probabilities differ by {max_dp}");
    assert!((differing as f64) <= expected + 4.0 * expected.sqrt() + 2.0, "{differing} differing units");
    assert!(still * 100 >= chains * 99, "only {still} of {chains} chains identical");
}

/// The DBM's mean-field bound and the DBN's variational bound lie below the exact
/// log-likelihood of every row (on average for the DBN's sampled estimate), and not far below.
#[test]
fn bounds_lie_below_exact_log_likelihood() {
    let d = random_deep(Kind::Dbm, &[8, 5, 4], 0.8, 0.5, 13);
    let v = ebm_gpu::selftest::rbm::random_binary(50, 8, 2);
    let lz = ais::log_z_exact_f64(&d).unwrap();
    let exact: Vec<f64> = ais::log_p_unnormalised_f64(&d, &v).unwrap().iter().map(|l| l - lz).collect();
    let bound = ais::dbm_bound(&d, &v, 50, lz).unwrap();
    let gap: f64 = exact.iter().zip(&bound).map(|(e, b)| e - b).sum::<f64>() / 50.0;
    eprintln!("DBM: mean exact {:.4}, mean bound gap {gap:.4}", exact.iter().sum::<f64>() / 50.0);
    assert!(exact.iter().zip(&bound).all(|(e, b)| b <= &(e + 1e-6)), "a bound above the exact value");
    assert!(gap < 3.0, "gap {gap}");
    // DBN 8-5-4: exact log p(v) = log sum_h1 p_top(h1) p(v | h1), p_top by the top RBM's free energy.
    let n = random_deep(Kind::Dbn, &[8, 5, 4], 0.8, 0.5, 14);
    let (l1, top) = (&n.layers[0], &n.layers[1]);
    let lzt = ebm_gpu::rbm::logz::log_z_hidden_f64(top).unwrap();
    let exact: Vec<f64> = v
        .chunks(8)
        .map(|x| {
            let terms: Vec<f64> = (0..32u64)
                .map(|h| {
                    let hb: Vec<f32> = bits(h, 5).iter().map(|&b| b as f32).collect();
                    let a: Vec<f64> = (0..8)
                        .map(|i| {
                            l1.b()[i] as f64 + (0..5).map(|j| l1.w()[j * 8 + i] as f64 * hb[j] as f64).sum::<f64>()
                        })
                        .collect();
                    let lpv: f64 = (0..8).map(|i| x[i] as f64 * a[i] - ebm_gpu::rbm::softplus_f64(a[i])).sum();
                    -top.free_energy_f64(&hb) - lzt + lpv
                })
                .collect();
            ais::log_sum_exp(&terms)
        })
        .collect();
    let bound = ais::dbn_bound(&n, &v, 2000, 3, lzt).unwrap();
    let (me, mb) = (exact.iter().sum::<f64>() / 50.0, bound.iter().sum::<f64>() / 50.0);
    eprintln!("DBN: mean exact {me:.4}, mean bound {mb:.4}");
    assert!(mb <= me + 0.02 && mb > me - 3.0, "bound {mb} exact {me}");
}

fn digits(split: Split) -> Vec<f32> {
    let mut d = data::load(&common::digits_dir(), split).unwrap();
    data::binarize(&mut d, Binarize::Threshold(0.5), 0);
    d.images
}

/// A 64-16-8 DBM on the 8x8 digits: greedy pre-training, composition and 5 epochs of PCD
/// raise the test bound (AIS log Z) by more than 10 nats over the random initial model, and
/// AIS agrees with the exact log Z (h1 enumerated) within 0.2 nats at both ends.
#[test]
fn training_a_tiny_dbm_improves_its_ais_likelihood() {
    let (train_x, test_x) = (digits(Split::Train), digits(Split::Test));
    let config = AisConfig { runs: 100, schedule: BetaSchedule::Piecewise(2000), seed: 1, first_run: 0 };
    let bound = |d: &Deep| {
        let r = ais::log_z_report(d, &train_x, &config, 0).unwrap();
        let exact = ais::log_z_exact_f64(d).unwrap();
        eprintln!("log Z: AIS {:.4} +- {:.4}, exact {exact:.4}", r.log_z, r.std_err);
        assert!((r.log_z - exact).abs() < 0.2, "AIS {} exact {exact}", r.log_z);
        let b = ais::dbm_bound(d, &test_x, 30, r.log_z).unwrap();
        b.iter().sum::<f64>() / b.len() as f64
    };
    let d0 = train::compose_dbm(&Deep::random(Kind::Dbm, &[64, 16, 8], 0.01, 1).unwrap().layers).unwrap();
    let before = bound(&d0);
    let mut pre = TrainConfig::new(Method::Cd(1), 20, 0.05, 5, 2);
    pre.momentum = 0.5;
    let layers = train::pretrain(&Executor::Cpu, &[64, 16, 8], &train_x, &pre, |_, _, _| {}).unwrap();
    let mut fine = TrainConfig::new(Method::Pcd(1), 20, 0.01, 5, 3);
    fine.momentum = 0.5;
    let cfg = DbmConfig { train: fine, mean_field: 10 };
    let mut state = DbmState::new(train::compose_dbm(&layers).unwrap(), &cfg, ChainStart::Noise).unwrap();
    let pretrained = bound(&state.dbm);
    for epoch in 0..5 {
        train::run_dbm_epoch(&mut state, &cfg, &train_x, epoch, |_, _| {}).unwrap();
    }
    let after = bound(&state.dbm);
    eprintln!("test bound: initial {before:.3}, pre-trained {pretrained:.3}, after PCD {after:.3}");
    assert!(after > before + 10.0, "{before} -> {after}");
    assert!(after > pretrained - 1.0, "PCD lost the pre-training: {pretrained} -> {after}");
}

/// DBM training on the GPU (mean field, PCD chains and both layers' updates in kernels)
/// against the CPU trainer from one state: two epochs of PCD-3 on 300 digit rows, and one
/// batch of PCD-35 (more Gibbs steps than one submit holds), give the same persistent chains
/// and Gibbs step, and parameters, momentum and reconstruction errors up to f32 rounding;
/// layer 2's visible bias stays 0 on both.
#[test]
fn dbm_training_gpu_matches_cpu() {
    use ebm_gpu::rbm::deep::gpu_train::GpuDbmTrainer;
    let Some(ctx) = common::gpu() else { return };
    let rows = digits(Split::Train)[..300 * 64].to_vec();
    for (k, epochs, n) in [(3, 2, 300), (35, 1, 50)] {
        let data = &rows[..n * 64];
        let mut fine = TrainConfig::new(Method::Pcd(k), 50, 0.05, epochs, 4);
        fine.momentum = 0.5;
        fine.weight_decay = 1e-3;
        let cfg = DbmConfig { train: fine, mean_field: 5 };
        let mut cpu =
            DbmState::new(random_deep(Kind::Dbm, &[64, 24, 12], 0.3, 0.3, 6), &cfg, ChainStart::Noise).unwrap();
        let mut gpu = cpu.clone();
        let mut trainer = GpuDbmTrainer::new(ctx.clone(), &gpu, &cfg, n).unwrap();
        for epoch in 0..epochs {
            let rc = train::run_dbm_epoch(&mut cpu, &cfg, data, epoch, |_, _| {}).unwrap();
            let rg = trainer.run_epoch(&mut gpu, data, epoch, |_, _| {}).unwrap();
            eprintln!("PCD-{k} epoch {}: recon error cpu {:.6}, gpu {:.6}", epoch + 1, rc.recon_error, rg.recon_error);
            assert!((rc.recon_error - rg.recon_error).abs() < 1e-4 * rc.recon_error, "PCD-{k}: recon errors");
        }
        assert_eq!((cpu.step, cpu.epoch), (gpu.step, gpu.epoch));
        assert_eq!(cpu.chains.h1, gpu.chains.h1, "PCD-{k}: persistent chains");
        for l in 0..2 {
            let dtheta = common::max_abs_diff(&cpu.dbm.layers[l].theta, &gpu.dbm.layers[l].theta);
            let dvel = common::max_abs_diff(&cpu.velocity[l], &gpu.velocity[l]);
            eprintln!("PCD-{k} layer {}: max |dtheta| {dtheta:e}, |dvelocity| {dvel:e}", l + 1);
            assert!(dtheta < 1e-5 && dvel < 1e-5, "PCD-{k} layer {}: {dtheta}, {dvel}", l + 1);
        }
        assert!(gpu.dbm.layers[1].b().iter().all(|&b| b == 0.0), "layer 2's visible bias moved");
        assert_ne!(
            cpu.dbm,
            DbmState::new(random_deep(Kind::Dbm, &[64, 24, 12], 0.3, 0.3, 6), &cfg, ChainStart::Noise).unwrap().dbm
        );
    }
}

/// Persistent chains started from data hold h1 drawn from the mean field of the data rows: over
/// 4000 chains of two alternating rows, each unit's frequency equals its mean-field probability
/// averaged over the two rows (within 4.5 s.e.), and differs from the noise start's 1/2.
#[test]
fn dbm_chains_start_from_the_data_mean_field() {
    let d = random_deep(Kind::Dbm, &[12, 8, 5], 1.5, 0.5, 3);
    let rows: Vec<f32> = (0..2).flat_map(|r| (0..12).map(move |i| ((i + r) % 2) as f32)).collect();
    let data: Vec<f32> = rows.iter().cycle().take(2 * 12 * 50).copied().collect();
    let fine = TrainConfig::new(Method::Pcd(1), 4000, 0.01, 1, 9);
    let config = DbmConfig { train: fine, mean_field: 20 };
    let from_data = DbmState::new(d.clone(), &config, ChainStart::Data(&data)).unwrap();
    let from_noise = DbmState::new(d.clone(), &config, ChainStart::Noise).unwrap();
    let (l1, l2) = (&d.layers[0], &d.layers[1]);
    let (wt1, wt2) = (transposed(l1.w(), 8, 12), transposed(l2.w(), 5, 8));
    let (mu1, _) = ebm_gpu::rbm::deep::cpu::mean_field(l1, &wt1, l2, &wt2, &rows, 20);
    let mut far_from_half = 0;
    for j in 0..8 {
        let want = (mu1[j] + mu1[8 + j]) as f64 / 2.0;
        let freq = |h1: &[f32]| h1.chunks(8).map(|row| row[j] as f64).sum::<f64>() / 4000.0;
        let se = (want * (1.0 - want) / 4000.0).sqrt().max(1e-3);
        let got = freq(&from_data.chains.h1);
        assert!((got - want).abs() < 4.5 * se, "unit {j}: frequency {got} from data, mean field {want}");
        assert!((freq(&from_noise.chains.h1) - 0.5).abs() < 4.5 * 0.5 / 4000f64.sqrt());
        far_from_half += ((want - 0.5).abs() > 0.2) as usize;
    }
    assert!(far_from_half >= 2, "the test needs units the data push away from 1/2");
    let e = DbmState::new(d, &config, ChainStart::Data(&data[..5])).err().unwrap().to_string();
    assert!(e.contains("training data"), "{e}");
}

/// Checkpoints round-trip; an RBM checkpoint is refused by the deep loader and vice versa.
#[test]
fn checkpoints_round_trip_and_wrong_kinds_are_refused() {
    let dir = common::temp_dir("dbm_ckpt");
    let d = random_deep(Kind::Dbm, &[6, 4, 3], 0.5, 0.5, 1);
    let mut fine = TrainConfig::new(Method::Pcd(1), 4, 0.01, 1, 3);
    fine.momentum = 0.5;
    let state = DbmState::new(d.clone(), &DbmConfig { train: fine, mean_field: 3 }, ChainStart::Noise).unwrap();
    let path = dir.join("deep.safetensors");
    checkpoint::save_dbm(&path, &state, "{}").unwrap();
    let (back, extra) = checkpoint::load(&path).unwrap();
    assert_eq!(back, d);
    assert_eq!(extra.chains.as_ref(), Some(&state.chains));
    let rbm_path = dir.join("rbm.safetensors");
    let rs = ebm_gpu::rbm::train::TrainState::new(
        d.layers[0].clone(),
        &TrainConfig::new(Method::Cd(1), 4, 0.1, 1, 0),
        &[0.0; 6],
    )
    .unwrap();
    ebm_gpu::rbm::checkpoint::save(&rbm_path, &rs, None).unwrap();
    let e = checkpoint::load(&rbm_path).unwrap_err().to_string();
    assert!(e.contains("deep model") && e.contains("ebm-gpu rbm 1"), "{e}");
    let e = ebm_gpu::rbm::checkpoint::load(&path).unwrap_err().to_string();
    assert!(e.contains("RBM checkpoint"), "{e}");
}

/// Bad shapes and sizes are refused with the field named.
#[test]
fn bad_input_is_refused_by_name() {
    let e = check_layer_sizes(&[64, 0, 10]).unwrap_err().to_string();
    assert!(e.contains("layers") && e.contains("layer 1"), "{e}");
    let e = check_layer_sizes(&[64, 10]).unwrap_err().to_string();
    assert!(e.contains("at least two hidden"), "{e}");
    let a = common::random_rbm(6, 4, Visible::Bernoulli, 0.1, 0.0, 1);
    let b = common::random_rbm(5, 3, Visible::Bernoulli, 0.1, 0.0, 2);
    let e = Deep::new(Kind::Dbn, vec![a.clone(), b]).unwrap_err().to_string();
    assert!(e.contains("layer 2 has 5 inputs but layer 1 has 4 hidden units"), "{e}");
    let c = common::random_rbm(4, 3, Visible::Bernoulli, 0.1, 0.5, 2);
    let e = Deep::new(Kind::Dbm, vec![a.clone(), c.clone()]).unwrap_err().to_string();
    assert!(e.contains("visible bias"), "{e}");
    let e = Deep::new(Kind::Dbm, vec![a.clone(), c.clone(), common::random_rbm(3, 2, Visible::Bernoulli, 0.1, 0.0, 3)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("exactly two hidden layers"), "{e}");
    let dbn = Deep::new(Kind::Dbn, vec![a, c]).unwrap();
    let e = DbmGibbs::new(&dbn, &[0.0; 4], 0, 0).err().unwrap().to_string();
    assert!(e.contains("not a two-layer DBM"), "{e}");
    let d = random_deep(Kind::Dbm, &[6, 4, 3], 0.5, 0.5, 1);
    let e = DbmGibbs::new(&d, &[0.0; 5], 0, 0).err().unwrap().to_string();
    assert!(e.contains("initial h1 states"), "{e}");
    let e = ais::dbm_bound(&d, &[0.0; 7], 3, 0.0).unwrap_err().to_string();
    assert!(e.contains("data") && e.contains("6 visible units"), "{e}");
}
