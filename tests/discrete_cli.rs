//! `ebm sample` on discrete models: observables against exact enumeration, int8 outputs that
//! read back as `--init`, and the flags that do not apply refused by name.

mod common;

use common::{ebm, s, stderr, temp_dir};

/// The chains, steps and measurements of the small runs below.
const SMALL_RUN: &str = "--chains 64 --steps 400 --warmup 50 --thin 2 --backend cpu";

fn run_ok(args: &[&str]) -> String {
    let out = ebm(args);
    assert!(out.status.success(), "ebm {args:?} failed:\n{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refusal(args: &[&str]) -> String {
    let out = ebm(args);
    assert!(!out.status.success(), "ebm {args:?} should have failed");
    stderr(&out)
}

/// The report at `json`, after checking that its estimates of the energy per site and |m| agree
/// with the exact values it also reports (within 5 standard errors).
fn check_against_exact(json: &std::path::Path, what: &str) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    for name in ["energy_per_site", "abs_magnetisation"] {
        let est = &report["observables"][name];
        let (mean, se) = (est["mean"].as_f64().unwrap(), est["standard_error"].as_f64().unwrap());
        let truth = report["exact"][name].as_f64().unwrap();
        eprintln!("{what} {name}: {mean:.4} ± {se:.4}, exact {truth:.4}");
        assert!((mean - truth).abs() < 5.0 * se + 2e-3, "{what} {name}: {mean} ± {se} vs {truth}");
    }
    report
}

/// Estimates from the JSON report agree with the exact values it also reports.
#[test]
fn sample_reports_observables_that_match_enumeration() {
    let dir = temp_dir("discrete_cli");
    let (json, out, png) = (dir.join("d.json"), dir.join("s.npy"), dir.join("s.png"));
    for sampler in ["gibbs", "metropolis", "wolff"] {
        let line = format!("sample --energy ising:square:4,beta=0.35 --sampler {sampler} {SMALL_RUN}");
        let mut args: Vec<&str> = line.split_whitespace().collect();
        args.extend(["--diagnostics", s(&json), "--out", s(&out), "--png", s(&png)]);
        run_ok(&args);
        check_against_exact(&json, sampler);
    }
    // Parallel tempering: three replicas, the temperature-1 one reported.
    let line = format!("sample --energy ising:square:4,beta=0.6 --tempering 3 --max-temperature 3 {SMALL_RUN}");
    let mut args: Vec<&str> = line.split_whitespace().collect();
    args.extend(["--diagnostics", s(&json)]);
    run_ok(&args);
    let report = check_against_exact(&json, "tempering");
    assert_eq!(report["swap_rates"].as_array().unwrap().len(), 2);
    // int8 spins ±1, [chains, sites].
    let bytes = std::fs::read(&out).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..80]).contains("'descr': '|i1'"));
    assert!(String::from_utf8_lossy(&bytes[..80]).contains("(64, 16)"));
    let body = &bytes[bytes.len() - 64 * 16..];
    assert!(body.iter().all(|&b| b as i8 == 1 || b as i8 == -1));
    assert!(png.exists());
    // The states read back as --init: 0 warm-up and the first sweep starts from them.
    run_ok(&[
        "sample",
        "--energy",
        "ising:square:4,beta=0.35",
        "--init",
        s(&out),
        "--chains",
        "8",
        "--steps",
        "4",
        "--backend",
        "cpu",
    ]);
}

#[test]
fn gpu_and_cpu_runs_write_the_same_states() {
    if common::gpu().is_none() {
        return;
    }
    let dir = temp_dir("discrete_cli_gpu");
    for sampler in ["gibbs", "wolff"] {
        let mut files = Vec::new();
        for backend in ["cpu", "gpu"] {
            let out = dir.join(format!("{sampler}-{backend}.npy"));
            run_ok(&[
                "sample",
                "--energy",
                "potts:3:triangular:6,beta=0.8",
                "--sampler",
                sampler,
                "--chains",
                "32",
                "--steps",
                "30",
                "--backend",
                backend,
                "--out",
                s(&out),
            ]);
            files.push(std::fs::read(out).unwrap());
        }
        assert_eq!(files[0], files[1], "{sampler}");
    }
}

#[test]
fn discrete_runs_refuse_what_does_not_apply() {
    let dir = temp_dir("discrete_cli_bad");
    let e = refusal(&["sample", "--energy", "ising:square:8", "--step-size", "0.1"]);
    assert!(e.contains("--step-size is not used when sampling a discrete model"), "{e}");
    let e = refusal(&["sample", "--energy", "ising:square:8", "--sampler", "mala"]);
    assert!(e.contains("--sampler mala is for continuous energies"), "{e}");
    let e = refusal(&["sample", "--energy", "ring8", "--sampler", "gibbs"]);
    assert!(e.contains("--sampler gibbs is for discrete models"), "{e}");
    let e = refusal(&["sample", "--energy", "ising:square:8,beta=inf", "--sampler", "synchronous", "--backend", "gpu"]);
    assert!(e.contains("CPU executor only"), "{e}");
    let e = refusal(&["sample", "--energy", "ising:square:8,J=-1", "--sampler", "swendsen-wang"]);
    assert!(e.contains("ferromagnetic"), "{e}");
    let bad = dir.join("half.csv");
    std::fs::write(&bad, "1,-1,1,0.5,1,1,1,1,1\n").unwrap();
    let e = refusal(&["sample", "--energy", "ising:square:3", "--init", s(&bad), "--backend", "cpu"]);
    assert!(e.contains("row 0, site 3 holds 0.5"), "{e}");
    let e = refusal(&["sample", "--energy", "ising:square:3", "--out", "x.txt"]);
    assert!(e.contains("--out"), "{e}");
    assert!(common::debug_text(&e).is_none(), "{e}");
    let e = refusal(&["score", "--energy", "ising:square:8", "--points", "x.csv"]);
    assert!(e.contains("is a discrete model"), "{e}");
    let e = refusal(&["sample", "--energy", "ising:square:8,beta=inf", "--tempering", "3"]);
    assert!(e.contains("finite beta"), "{e}");
}

/// `ebm bench --suite discrete` times every case on the CPU executor and prints its own table.
#[test]
fn bench_suite_discrete_prints_site_updates() {
    let out = run_ok(&["bench", "--suite", "discrete", "--quick", "--backend", "cpu"]);
    assert!(out.contains("site updates/s"), "{out}");
    for case in ["ising:square:64,beta=0.3", "potts:3:square:64,beta=1.0", "swendsen-wang"] {
        assert!(out.lines().any(|l| l.starts_with("cpu") && l.contains(case)), "no row for {case}:\n{out}");
    }
    // With a device's peaks, GPU rows get their fraction of the roofline bound: the table
    // sweep's Philox draws make it compute-bound, Swendsen-Wang's parent traffic memory-bound.
    if common::gpu().is_some() {
        let peaks = ["--peak-tflops", "67", "--peak-gbs", "3350"];
        let out = run_ok(&[&["bench", "--suite", "discrete", "--quick", "--backend", "gpu"][..], &peaks].concat());
        for (case, bound) in [("gibbs", "compute"), ("swendsen-wang", "memory")] {
            let row = out.lines().find(|l| l.starts_with("gpu") && l.contains(case)).unwrap_or_else(|| panic!("{out}"));
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells[cells.len() - 1], bound, "{row}");
            assert!(cells[cells.len() - 2].ends_with('%'), "{row}");
        }
    }
}
