//! AIS that cannot silently flatter a model (issue 15): forward AIS from two bases, the reverse
//! check from exact samples and from the model's chains, the report that flags disagreement,
//! exact log Z over a small visible layer, the Gaussian pseudo-likelihood, the GPU kernels
//! against their CPU twin for every variant, and the CLI's refusals.

mod common;

use ebm_gpu::rbm::ais::{self, AisConfig, Base, BetaSchedule, Direction};
use ebm_gpu::rbm::eval::{Executor, LogZConfig};
use ebm_gpu::rbm::{Rbm, Visible, logz, softplus_f64};
use ebm_gpu::rng::{self, Stream};

use common::random_rbm;

/// Rows of `pattern` with each unit flipped with probability `flip` (Philox).
fn noisy_rows(pattern: &[f32], rows: usize, flip: f32, seed: u64) -> Vec<f32> {
    let nv = pattern.len();
    let mut out = Vec::with_capacity(rows * nv);
    for r in 0..rows {
        for (q, block) in pattern.chunks(4).enumerate() {
            let u = rng::uniform4(seed, r as u32, 0, Stream::Init, q as u32);
            out.extend(block.iter().zip(u).map(|(&p, u)| if u < flip { 1.0 - p } else { p }));
        }
    }
    out
}

/// A model with a spurious high-entropy mode, the shape CD training leaves behind. 48 visibles
/// with bias -1 and one hidden unit that, when on, pins the visibles to a pattern P (first half
/// on, second half off; weights +-10, c = 30 - 240, so the unit's input at P is 30): with the
/// hidden unit off the visibles are independent and 27 % on, a mode of mass 48 softplus(-1) =
/// 15.0 nats; the P mode holds about 24 softplus(9) - 210 = 6 nats. The data are P with 0.5 %
/// noise, so the base-rate model sits on P and its runs stay there: they report ~6, not ~15.
fn trap() -> (Rbm, Vec<f32>) {
    let nv = 48;
    let pattern: Vec<f32> = (0..nv).map(|i| (i < nv / 2) as u32 as f32).collect();
    let w: Vec<f32> = pattern.iter().map(|&p| if p > 0.0 { 10.0 } else { -10.0 }).collect();
    let rbm = Rbm::from_parts(&w, &vec![-1.0; nv], &[30.0 - (nv as f32 / 2.0) * 10.0], Visible::Bernoulli).unwrap();
    (rbm, noisy_rows(&pattern, 500, 0.005, 9))
}

fn settings(runs: usize, betas: usize, seed: u64) -> LogZConfig {
    LogZConfig {
        ais: AisConfig { runs, schedule: BetaSchedule::Piecewise(betas), seed, first_run: 0 },
        chain_steps: 500,
    }
}

/// The trap is real (forward AIS from the base-rate model alone is off by more than 5 nats),
/// and the default evaluation either lands within 0.5 nats of the exact log Z or says the
/// estimates disagree and returns the conservative (larger) value — here it must do both.
#[test]
fn default_evaluation_finds_a_spurious_high_entropy_mode() {
    let (rbm, data) = trap();
    let exact = logz::log_z_hidden_f64(&rbm).unwrap();
    let r = Executor::Cpu.log_z_ais(&rbm, &data, &settings(100, 1000, 1)).unwrap();
    for (b, f) in &r.forward {
        eprintln!("{} base: {:.4} +- {:.4}", b.name(), f.log_z, f.std_err);
    }
    let rev = &r.reverse.as_ref().unwrap().1;
    eprintln!(
        "reverse: {:.4} +- {:.4}; exact {exact:.4}; reported {:.4} in {:?}",
        rev.log_z, rev.std_err, r.log_z, r.interval
    );
    eprintln!("warnings: {:#?}", r.warnings);
    let base_rate = &r.forward.iter().find(|(b, _)| *b == Base::BaseRate).unwrap().1;
    assert!(
        base_rate.log_z < exact - 5.0,
        "the trap does not catch the base-rate runs: {} vs exact {exact}",
        base_rate.log_z
    );
    let flagged = r.warnings.iter().any(|w| w.contains("base-rate") && w.contains("uniform") && w.contains("larger"));
    let largest = r.forward.iter().map(|f| f.1.log_z).fold(f64::NEG_INFINITY, f64::max);
    assert!((r.log_z - exact).abs() < 0.5, "log Z {} exact {exact}", r.log_z);
    assert!(flagged && r.log_z == largest, "the disagreement is not reported: {:?}", r.warnings);
    // The reverse check (exact samples: one hidden unit) bounds it from above.
    assert!((rev.log_z - exact).abs() < 0.5, "reverse {} exact {exact}", rev.log_z);
    let (lo, hi) = r.interval.unwrap();
    assert!(lo <= r.log_z && r.log_z <= hi && hi - lo < 0.5, "interval [{lo}, {hi}]");
}

/// A 12 x 8 model with no trap: forward AIS from both bases, reverse AIS from exact samples and
/// from 300-step Gibbs chains all agree with the exact log Z within 0.1 nats, and the report
/// raises nothing.
#[test]
fn all_ais_variants_agree_on_a_small_rbm() {
    let rbm = random_rbm(12, 8, Visible::Bernoulli, 1.0, 0.5, 31);
    let exact = logz::log_z_brute_force_f64(&rbm).unwrap();
    let data = noisy_rows(&[0.0; 12], 500, 0.5, 1);
    let r = Executor::Cpu.log_z_ais(&rbm, &data, &settings(200, 1000, 3)).unwrap();
    let config = AisConfig { runs: 200, schedule: BetaSchedule::Piecewise(1000), seed: 8, first_run: 0 };
    let chains = Executor::Cpu.model_samples(&rbm, 0, 200, 300, 5).unwrap();
    let gibbs = Executor::Cpu.reverse_ais(&rbm, &[0.0; 12], &config, &chains).unwrap();
    let mut all: Vec<(String, f64)> = r.forward.iter().map(|(b, f)| (b.name().to_string(), f.log_z)).collect();
    let (from, rev) = r.reverse.clone().unwrap();
    assert_eq!(from, "exact samples");
    assert_eq!(rev.direction, Direction::Reverse);
    all.push((from, rev.log_z));
    all.push(("300-step chains".into(), gibbs.log_z));
    eprintln!("exact {exact:.4}: {all:.4?}; warnings {:?}", r.warnings);
    for (what, z) in &all {
        assert!((z - exact).abs() < 0.1, "{what}: {z} vs exact {exact}");
    }
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let (lo, hi) = r.interval.unwrap();
    assert!(lo <= r.log_z && r.log_z <= hi && hi - lo < 0.2, "interval [{lo}, {hi}]");
}

/// The report's rules on made-up estimates: agreeing bases raise nothing and the more precise
/// is kept; disagreeing ones are named with the larger value kept; a reverse estimate below the forward one is flagged and
/// gives no interval, one just below it within errors a narrow one; a far one widens the interval
/// with a warning.
#[test]
fn report_flags_disagreement_and_keeps_the_larger_log_z() {
    let est = |z: f64, d: Direction| ais::AisResult {
        log_z: z,
        std_err: if z == 10.0 { 0.03 } else { 0.05 },
        log_z_lower: z - 0.15,
        log_z_upper: z + 0.15,
        log_z_base: 0.0,
        direction: d,
        log_weights: vec![],
    };
    let f = |a: f64, b: f64| {
        vec![(Base::BaseRate, est(a, Direction::Forward)), (Base::Uniform, est(b, Direction::Forward))]
    };
    let ok = ais::report(f(10.1, 10.0), Some(("exact samples".into(), est(10.2, Direction::Reverse)))).unwrap();
    assert!(ok.warnings.is_empty() && ok.log_z == 10.0 && ok.interval == Some((10.0, 10.2)), "{ok:?}");
    let split = ais::report(f(217.05, 243.8), None).unwrap();
    assert_eq!(split.log_z, 243.8);
    assert_eq!(split.warnings.len(), 1);
    assert!(split.warnings[0].contains("26.75 nats") && split.warnings[0].contains("--betas"), "{}", split.warnings[0]);
    let low = ais::report(f(10.0, 10.0), Some(("chains".into(), est(8.0, Direction::Reverse)))).unwrap();
    assert!(low.interval.is_none() && low.warnings[0].contains("--reverse-gibbs"), "{low:?}");
    let wide = ais::report(f(10.0, 10.0), Some(("chains".into(), est(13.0, Direction::Reverse)))).unwrap();
    let near = ais::report(f(10.0, 10.0), Some(("chains".into(), est(9.95, Direction::Reverse)))).unwrap();
    assert!(near.warnings.is_empty() && near.interval == Some((9.95, 10.0)), "{near:?}");
    assert!(wide.interval == Some((10.0, 13.0)) && wide.warnings[0].contains("3.00 nats"), "{wide:?}");
    assert!(ais::report(vec![], None).is_err());
}

/// Exact samples follow the model: the mean of each visible over 20000 samples matches its
/// exact marginal (enumeration over both layers) within 5 standard errors.
#[test]
fn exact_samples_match_the_exact_marginals() {
    let rbm = random_rbm(6, 5, Visible::Bernoulli, 1.0, 0.5, 7);
    let (nv, nh, w, b, c) = (6, 5, rbm.w(), rbm.b(), rbm.c());
    let mut mean = [0.0f64; 6];
    let mut z = 0.0f64;
    for s in 0u32..1 << (nv + nh) {
        let (v, h) = (|i: usize| ((s >> i) & 1) as f64, |j: usize| ((s >> (nv + j)) & 1) as f64);
        let mut e = (0..nv).map(|i| b[i] as f64 * v(i)).sum::<f64>() + (0..nh).map(|j| c[j] as f64 * h(j)).sum::<f64>();
        e += (0..nh).map(|j| h(j) * (0..nv).map(|i| w[j * nv + i] as f64 * v(i)).sum::<f64>()).sum::<f64>();
        z += e.exp();
        (0..nv).for_each(|i| mean[i] += e.exp() * v(i));
    }
    let n = 20000;
    let samples = logz::exact_samples(&rbm, 0, n, 4).unwrap();
    for (i, m) in mean.iter().enumerate() {
        let p = m / z;
        let got = samples.iter().skip(i).step_by(nv).map(|&x| x as f64).sum::<f64>() / n as f64;
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!((got - p).abs() < 5.0 * se, "visible {i}: sampled {got}, exact {p}");
    }
    let big = Rbm::random(4, 21, Visible::Bernoulli, 0.1, 0).unwrap();
    assert!(logz::exact_samples(&big, 0, 2, 0).unwrap_err().to_string().contains("21 hidden"));
}

/// A binary model with 10 visibles and 40 hidden units: exact log Z enumerates the visibles,
/// on both executors, and equals a float64 sum over visible states.
#[test]
fn exact_log_z_enumerates_a_small_visible_layer() {
    let rbm = random_rbm(10, 40, Visible::Bernoulli, 0.5, 0.5, 12);
    let (nv, w, b, c) = (10, rbm.w(), rbm.b(), rbm.c());
    let terms: Vec<f64> = (0u32..1 << nv)
        .map(|s| {
            let v = |i: usize| ((s >> i) & 1) as f64;
            let bv = (0..nv).map(|i| b[i] as f64 * v(i)).sum::<f64>();
            bv + (0..40)
                .map(|j| softplus_f64(c[j] as f64 + (0..nv).map(|i| w[j * nv + i] as f64 * v(i)).sum::<f64>()))
                .sum::<f64>()
        })
        .collect();
    let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let reference = m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln();
    assert_eq!(logz::enumerated_layer(&rbm), Some(("visible", 10)));
    let cpu = logz::log_z_cpu(&rbm).unwrap();
    assert!((cpu - reference).abs() < 1e-3, "cpu {cpu} reference {reference}");
    if let Some(ctx) = common::gpu() {
        let gpu = logz::log_z_gpu(&ctx, &rbm).unwrap();
        assert!((gpu - reference).abs() < 1e-3, "gpu {gpu} reference {reference}");
    }
    let gaussian = random_rbm(10, 40, Visible::Gaussian, 0.1, 0.5, 12);
    assert_eq!(logz::enumerated_layer(&gaussian), None);
    assert!(logz::log_z_cpu(&gaussian).unwrap_err().to_string().contains("40 hidden units and 10 gaussian visibles"));
}

/// The GPU kernels against the CPU twin on the same seeds, for every variant: forward from a
/// base-rate and from the uniform base, reverse from given samples; Bernoulli and Gaussian.
/// Same draws, so the estimates differ only by rounding and rare ties.
#[test]
fn ais_variants_gpu_match_cpu() {
    let Some(ctx) = common::gpu() else { return };
    for visible in [Visible::Bernoulli, Visible::Gaussian] {
        let rbm = random_rbm(21, 9, visible, if visible == Visible::Gaussian { 0.3 } else { 1.0 }, 0.5, 17);
        let data = match visible {
            Visible::Bernoulli => noisy_rows(&[1.0; 21], 300, 0.3, 2),
            Visible::Gaussian => rng::initial_states(2, 0, 300, 21, 1.0),
        };
        let config = AisConfig { runs: 40, schedule: BetaSchedule::Piecewise(300), seed: 6, first_run: 0 };
        let samples = logz::exact_samples(&rbm, 0, 40, 3).unwrap();
        for base in [Base::BaseRate, Base::Uniform] {
            let biases = base.biases(&data, 21, visible).unwrap();
            let (g, c) =
                (ais::ais_gpu(&ctx, &rbm, &biases, &config).unwrap(), ais::ais_cpu(&rbm, &biases, &config).unwrap());
            let (gr, cr) = (
                ais::reverse_ais_gpu(&ctx, &rbm, &biases, &config, &samples).unwrap(),
                ais::reverse_ais_cpu(&rbm, &biases, &config, &samples).unwrap(),
            );
            eprintln!(
                "{visible:?} {}: forward gpu {:.5} cpu {:.5}; reverse gpu {:.5} cpu {:.5}",
                base.name(),
                g.log_z,
                c.log_z,
                gr.log_z,
                cr.log_z
            );
            assert!(
                (g.log_z - c.log_z).abs() < 1e-2,
                "{visible:?} {} forward: gpu {} cpu {}",
                base.name(),
                g.log_z,
                c.log_z
            );
            assert!(
                (gr.log_z - cr.log_z).abs() < 1e-2,
                "{visible:?} {} reverse: gpu {} cpu {}",
                base.name(),
                gr.log_z,
                cr.log_z
            );
            // Run by run: all but rare ties agree to rounding.
            let close = |a: &[f64], b: &[f64]| a.iter().zip(b).filter(|(x, y)| (*x - *y).abs() < 1e-3).count();
            assert!(close(&g.log_weights, &c.log_weights) >= 36 && close(&gr.log_weights, &cr.log_weights) >= 36);
        }
    }
}

/// Gaussian visibles: the pseudo-likelihood is n_vis x log p(v_i | v_-i), checked against the
/// closed form for 3 hidden units (a mixture of 8 unit-variance Gaussians in v_i).
#[test]
fn gaussian_pseudo_likelihood_matches_the_closed_form() {
    let rbm = random_rbm(7, 3, Visible::Gaussian, 0.8, 0.5, 23);
    let data = rng::initial_states(5, 0, 50, 7, 1.5);
    let got = Executor::Cpu.pseudo_likelihood(&rbm, &data, 11).unwrap();
    let (nv, w, b, c) = (7, rbm.w(), rbm.b(), rbm.c());
    let mut total = 0.0;
    for (r, v) in data.chunks(nv).enumerate() {
        let u = rng::uniform4(11, r as u32, 0, Stream::Accept, 0)[0];
        let i = ((u * nv as f32) as usize).min(nv - 1);
        let a: Vec<f64> = (0..3)
            .map(|j| c[j] as f64 + (0..nv).filter(|&k| k != i).map(|k| w[j * nv + k] as f64 * v[k] as f64).sum::<f64>())
            .collect();
        // p(t) = sum_h exp(h.a + m_h^2/2 - b_i^2/2 ...) N(t; m_h, 1) up to a common factor, m_h = b_i + W_:i.h.
        let (mut num, mut den) = (0.0, 0.0);
        for h in 0..8u32 {
            let hj = |j: usize| ((h >> j) & 1) as f64;
            let m = b[i] as f64 + (0..3).map(|j| hj(j) * w[j * nv + i] as f64).sum::<f64>();
            let weight = ((0..3).map(|j| hj(j) * a[j]).sum::<f64>() + 0.5 * m * m).exp();
            den += weight;
            num += weight * (-0.5 * (v[i] as f64 - m).powi(2)).exp() / (2.0 * std::f64::consts::PI).sqrt();
        }
        total += (num / den).ln();
    }
    let want = nv as f64 * total / 50.0;
    assert!(got.is_finite() && (got - want).abs() < 1e-6, "pseudo-likelihood {got}, closed form {want}");
}

fn ebm(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ebm")).args(args).output().expect("run ebm")
}

/// `rbm eval` refuses too few temperatures and too many runs (before allocating), naming the
/// flag; with a small model it says the exact log Z is available and prints both forward
/// estimates and the reverse check.
#[test]
fn rbm_eval_cli_refuses_bad_ais_flags_and_reports_every_estimate() {
    let dir = std::env::temp_dir().join(format!("ebm-ais-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (d, run) = (common::digits_dir(), dir.to_str().unwrap().to_string());
    let data = d.to_str().unwrap();
    let o = ebm(&[
        "rbm",
        "train",
        "--data",
        data,
        "--binarize",
        "threshold",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--backend",
        "cpu",
        "--run-dir",
        &run,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eval = |extra: &[&str]| {
        let mut args =
            vec!["rbm", "eval", "--run-dir", &run, "--data", data, "--binarize", "threshold", "--backend", "cpu"];
        args.extend_from_slice(extra);
        ebm(&args)
    };
    let o = eval(&["--betas", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--betas 1") && err.contains("at least 100"), "{err}");
    let o = eval(&["--ais-runs", "4000000000"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && o.status.code().is_some() && err.contains("--ais-runs 4000000000") && err.contains("GB"),
        "{err}"
    );
    let o = eval(&["--ais-runs", "20", "--betas", "200"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for want in [
        "from the base-rate base",
        "from the uniform base",
        "reverse AIS from exact samples",
        "exact log Z is available",
        "test pseudo-likelihood",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rbm eval --ais-shard I/N` runs a part of every estimate's runs; `--ais-join` of all parts
/// reports what one process reports, digit for digit, on both executors; a missing shard, a
/// shard of other settings or a shard too small are refused by name.
#[test]
fn ais_shards_joined_equal_one_run() {
    let dir = std::env::temp_dir().join(format!("ebm-ais-shards-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (d, run) = (common::digits_dir(), dir.join("run").to_str().unwrap().to_string());
    let data = d.to_str().unwrap();
    // 24 hidden units: the reverse check starts from Gibbs chains (more than 20 for exact samples).
    let o = ebm(&[
        "rbm",
        "train",
        "--data",
        data,
        "--binarize",
        "threshold",
        "--hidden",
        "24",
        "--epochs",
        "1",
        "--backend",
        "cpu",
        "--run-dir",
        &run,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let backends: &[&str] = if common::gpu().is_some() { &["cpu", "gpu"] } else { &["cpu"] };
    for backend in backends {
        let eval = |extra: &[&str]| {
            let mut args = vec![
                "rbm",
                "eval",
                "--run-dir",
                &run,
                "--data",
                data,
                "--binarize",
                "threshold",
                "--backend",
                backend,
                "--ais-runs",
                "30",
                "--betas",
                "300",
                "--reverse-gibbs",
                "50",
                "--seed",
                "5",
            ];
            args.extend_from_slice(extra);
            ebm(&args)
        };
        let one = eval(&[]);
        assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
        let files: Vec<String> =
            (0..3).map(|i| dir.join(format!("{backend}{i}.json")).to_str().unwrap().to_string()).collect();
        for (i, f) in files.iter().enumerate() {
            let o = eval(&["--ais-shard", &format!("{i}/3"), "--json", f]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let joined = eval(&["--ais-join", &files.join(",")]);
        assert!(joined.status.success(), "{}", String::from_utf8_lossy(&joined.stderr));
        // Everything but the timing line is the same.
        let report = |o: &std::process::Output| -> Vec<String> {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.starts_with("executor:"))
                .map(str::to_string)
                .collect()
        };
        assert!(report(&one).iter().any(|l| l.contains("reverse AIS from 50-step Gibbs chains")), "{:?}", report(&one));
        assert_eq!(report(&joined), report(&one), "{backend}");

        let refused = |o: std::process::Output, words: &[&str]| {
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success() && words.iter().all(|w| e.contains(w)), "{words:?}: {e}");
        };
        refused(
            eval(&["--ais-join", &format!("{},{}", files[0], files[2])]),
            &["holds runs [20,30]", "run 10 comes next"],
        );
        refused(eval(&["--ais-join", &files[..2].join(",")]), &["a shard is missing"]);
        let mut other =
            vec!["rbm", "eval", "--run-dir", &run, "--data", data, "--binarize", "threshold", "--backend", backend];
        other.extend([
            "--ais-runs",
            "30",
            "--betas",
            "300",
            "--reverse-gibbs",
            "50",
            "--seed",
            "6",
            "--ais-join",
            &files[0],
        ]);
        refused(ebm(&other), &["made with", "--seed"]);
        refused(eval(&["--ais-shard", "0/20", "--json", &files[0]]), &["holds 1 runs", "at least 2"]);
        if *backend == "cpu" {
            corrupt_shards_are_refused(&dir, &files, &eval);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--ais-join` of shards whose log weights are not this model's runs (issue 31, cause 6): a
/// shard computed on another model, one holding fewer log weights than its runs (none at all
/// gave `log Z: -inf +- NaN`), one with an absurd weight (1e300 gave a 300-digit log Z), and a
/// named pipe in place of a shard are refused, naming the file.
fn corrupt_shards_are_refused(dir: &std::path::Path, files: &[String], eval: &dyn Fn(&[&str]) -> std::process::Output) {
    let refused = |o: std::process::Output, words: &[&str]| {
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && words.iter().all(|w| e.contains(w)), "{words:?}: {e}");
        assert!(common::debug_text(&e).is_none(), "Debug text in: {e}");
    };
    let shard1: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[1]).unwrap()).unwrap();
    let bad = dir.join("bad1.json").to_str().unwrap().to_string();
    let join = || eval(&["--ais-join", &format!("{},{bad},{}", files[0], files[2])]);
    let write = |v: &serde_json::Value| std::fs::write(&bad, common::reseal_shard(v)).unwrap();
    // An edit left unsealed is refused before anything else is read from it.
    let mut unsealed = shard1.clone();
    unsealed["runs"][0] = 11.into();
    std::fs::write(&bad, serde_json::to_vec(&unsealed).unwrap()).unwrap();
    refused(join(), &["bad1.json", "do not match its checksum"]);
    // The same shard with another model's fingerprint: what another run dir's shard records.
    let mut other = shard1.clone();
    other["model"] = "0123456789abcdef".into();
    write(&other);
    refused(join(), &["bad1.json", "another model"]);
    for kept in [0, 9] {
        let mut short = shard1.clone();
        short["forward"][0]["log_weights"].as_array_mut().unwrap().truncate(kept);
        write(&short);
        refused(join(), &["bad1.json", &format!("holds {kept} log weights for its 10 runs")]);
    }
    let mut absurd = shard1.clone();
    absurd["forward"][0]["log_weights"][3] = 1e300.into();
    write(&absurd);
    refused(join(), &["base-rate log weights", "which no RBM of these parameters has"]);
    #[cfg(unix)]
    {
        std::fs::remove_file(&bad).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&bad).status();
        if made.is_ok_and(|s| s.success()) {
            refused(join(), &["bad1.json", "named pipe"]);
        }
    }
}
