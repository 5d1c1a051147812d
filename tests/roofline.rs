//! `ebm bench --roofline-only`: the roofline model of every workload, printed without running
//! anything (the arithmetic itself is checked against hand counts by the unit tests of
//! src/cli/bench/roofline.rs); and `--min-seconds`, which lengthens short timings.

use std::process::{Command, Output};

fn ebm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebm")).args(args).output().expect("run ebm")
}

/// The table's rows split on runs of two or more spaces (cells may hold single spaces).
fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("suite"))
        .skip(2)
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect())
        .collect()
}

#[test]
fn roofline_only_lists_every_suite_with_its_h100_bound() {
    let o = ebm(&["bench", "--roofline-only", "--peak-tflops", "67", "--peak-gbs", "3350"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("ridge 20.0 FLOP/byte"), "{stdout}");
    let rows = rows(&stdout);
    for suite in ["langevin", "torchebm", "mlp", "rbm", "train", "nn"] {
        assert!(rows.iter().any(|r| r[0] == suite), "no {suite} rows:\n{stdout}");
    }
    for r in &rows {
        assert_eq!(r.len(), 11, "{r:?}");
        assert!(r[10] == "compute" || r[10] == "memory", "{r:?}");
    }
    // The UvA ConvEBM's first convolution at 256 images: per image 2 x 102400 + 4096 FLOPs for
    // 4 (784 + 4096) bytes plus the filters' 4 (400 + 16) read once per call: 10.7 FLOP/byte,
    // below the H100's ridge of 20, so memory-bound.
    let conv1 = rows.iter().find(|r| r[1] == "conv fwd" && r[2].starts_with("conv1")).expect("a conv1 row");
    assert_eq!(conv1[7], "10.7", "{conv1:?}");
    assert_eq!(conv1[10], "memory");
}

#[test]
fn roofline_only_without_peaks_prints_the_model_only() {
    let o = ebm(&["bench", "--roofline-only", "--suite", "langevin", "--quick"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    let rows = rows(&stdout);
    assert_eq!(rows.len(), 12, "3 energies x ULA, MALA x 2 chain counts:\n{stdout}");
    assert!(rows.iter().all(|r| r[0] == "langevin" && r[8] == "-"), "{stdout}");
}

#[test]
fn one_peak_without_the_other_is_refused() {
    let o = ebm(&["bench", "--roofline-only", "--peak-tflops", "67"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--peak-gbs"));
    let o = ebm(&["bench", "--roofline-only", "--peak-tflops", "0", "--peak-gbs", "3350"]);
    assert!(!o.status.success());
}

/// `--min-seconds`: a timed run shorter than that is repeated with more steps, so every row of
/// the CSV covers at least that long, with more steps than the quick plan's 50 at most.
#[test]
fn min_seconds_lengthens_short_timings() {
    let csv = std::env::temp_dir().join(format!("ebm-min-seconds-{}.csv", std::process::id()));
    let args = ["bench", "--suite", "langevin", "--quick", "--backend", "cpu", "--min-seconds", "0.05"];
    let o = ebm(&[&args[..], &["--csv", csv.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    let _ = std::fs::remove_file(&csv);
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} column"));
    let (steps, seconds) = (col("steps"), col("seconds"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 12, "{text}");
    for r in &rows {
        assert!(r[seconds].parse::<f64>().unwrap() >= 0.05, "{r:?}");
    }
    assert!(rows.iter().any(|r| r[steps].parse::<u32>().unwrap() > 50), "no timing was lengthened:\n{text}");
    let o = ebm(&["bench", "--min-seconds", "0", "--roofline-only"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("positive"));
}
