//! `ebm sample --shard I/N` and `ebm merge`: shards of a run, joined, equal the whole run bit
//! for bit on one executor (final states and traces), and what cannot shard is refused.

mod common;

use common::{ebm, s, stderr, temp_dir};
use std::path::Path;

/// Runs `sample` whole and in `shards` shards with the same settings, merges the shards, and
/// compares the bytes of the final states and of the traces.
fn sharded_equals_whole(tag: &str, backend: &str, extra: &[&str], chains: u32, shards: u32) {
    let dir = temp_dir(tag);
    let chains = chains.to_string();
    let run = |out: &Path, trace: &Path, shard: Option<String>| {
        let mut args =
            vec!["sample", "--backend", backend, "--chains", &chains, "--steps", "40", "--thin", "4", "--seed", "7"];
        args.extend_from_slice(extra);
        args.extend(["--out", s(out), "--trace", s(trace)]);
        let shard_arg;
        if let Some(sh) = shard {
            shard_arg = sh;
            args.extend(["--shard", &shard_arg]);
        }
        let o = ebm(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    run(&dir.join("whole.npy"), &dir.join("whole_trace.npy"), None);
    let (mut states, mut traces) = (vec![], vec![]);
    for i in 0..shards {
        let (out, trace) = (dir.join(format!("s{i}.npy")), dir.join(format!("t{i}.npy")));
        run(&out, &trace, Some(format!("{i}/{shards}")));
        states.push(out);
        traces.push(trace);
    }
    for (parts, merged, whole) in
        [(&states, "merged.npy", "whole.npy"), (&traces, "merged_trace.npy", "whole_trace.npy")]
    {
        let mut args = vec!["merge", "--out"];
        let out = dir.join(merged);
        args.push(s(&out));
        args.extend(parts.iter().map(|p| s(p)));
        let o = ebm(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let (a, b) = (std::fs::read(dir.join(whole)).unwrap(), std::fs::read(&out).unwrap());
        assert!(a == b, "{tag}: {merged} differs from {whole} ({} vs {} bytes)", a.len(), b.len());
    }
}

#[test]
fn shards_merge_into_the_whole_run_on_the_cpu() {
    sharded_equals_whole("shard-mala", "cpu", &["--energy", "ring8"], 101, 3);
    // HMC with parallel tempering: replicas and swap draws follow the base chain.
    sharded_equals_whole(
        "shard-hmc",
        "cpu",
        &["--energy", "two_modes", "--sampler", "hmc", "--tempering", "3", "--swap-every", "5"],
        37,
        4,
    );
}

#[test]
fn shards_merge_into_the_whole_run_on_the_gpu() {
    if common::gpu().is_none() {
        return;
    }
    sharded_equals_whole("shard-gpu", "gpu", &["--energy", "banana", "--sampler", "ula"], 300, 2);
}

#[test]
fn merge_diagnostics_and_refusals() {
    let dir = temp_dir("shard-refuse");
    let refuse = |args: &[&str], needle: &str| {
        let o = ebm(args);
        let e = stderr(&o);
        assert!(!o.status.success() && e.contains(needle), "{args:?}: expected {needle:?} in: {e}");
    };
    refuse(&["sample", "--backend", "cpu", "--chains", "8", "--shard", "2/2"], "0 <= I < N");
    refuse(&["sample", "--backend", "cpu", "--chains", "8", "--shard", "1/0"], "N >= 1");
    refuse(&["sample", "--backend", "cpu", "--chains", "8", "--shard", "x/2"], "whole number");
    refuse(&["sample", "--backend", "cpu", "--chains", "2", "--shard", "0/3", "--steps", "2"], "holds no chain");
    refuse(&["sample", "--backend", "cpu", "--chains", "8", "--shard", "0/2", "--warmup", "10"], "--warmup");
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    for (path, dim) in [(&a, "2"), (&b, "3")] {
        let spec = format!(r#"{{"type": "double_well", "dim": {dim}}}"#);
        let o = ebm(&[
            "sample",
            "--backend",
            "cpu",
            "--chains",
            "4",
            "--steps",
            "20",
            "--thin",
            "2",
            "--energy",
            &spec,
            "--trace",
            s(path),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let out = dir.join("m.npy");
    refuse(&["merge", "--out", s(&out), s(&a), s(&b)], "does not match");
    refuse(&["merge", "--out", s(&a), s(&a)], "--out");
    let diag = dir.join("d.json");
    let o = ebm(&["merge", "--out", s(&out), "--diagnostics", s(&diag), s(&a), s(&a)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&diag).unwrap()).unwrap();
    assert_eq!(report["chains"], 8);
    assert_eq!(report["dimensions"].as_array().unwrap().len(), 2);
}
