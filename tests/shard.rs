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
    // Shards of one run, 3 of them (trace and final states), for the merges below.
    let shard = |i: u32, tag: &str, extra: &[&str]| {
        let (out, trace) = (dir.join(format!("{tag}{i}.npy")), dir.join(format!("{tag}t{i}.npy")));
        let sh = format!("{i}/3");
        let mut args = vec!["sample", "--backend", "cpu", "--energy", "ring8", "--chains", "6", "--steps", "20"];
        args.extend(["--thin", "2", "--seed", "7", "--shard", &sh, "--out", s(&out), "--trace", s(&trace)]);
        args.extend_from_slice(extra);
        let o = ebm(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        (out, trace)
    };
    let (s0, t0) = shard(0, "s", &[]);
    let (_, t1) = shard(1, "s", &[]);
    let (s2, t2) = shard(2, "s", &[]);
    let out = dir.join("m.npy");
    refuse(&["merge", "--out", s(&s0), s(&s0)], "--out");
    refuse(&["merge", "--out", s(&out), s(&s0), s(&t1), s(&s2)], "the array (--out or --trace)");
    let diag = dir.join("d.json");
    // Given in any order, the shards are joined in shard order.
    let o = ebm(&["merge", "--out", s(&out), "--diagnostics", s(&diag), s(&t2), s(&t0), s(&t1)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&diag).unwrap()).unwrap();
    assert_eq!(report["chains"], 6);
    assert_eq!(report["dimensions"].as_array().unwrap().len(), 2);
    let in_order = dir.join("in_order.npy");
    let o = ebm(&["merge", "--out", s(&in_order), s(&t0), s(&t1), s(&t2)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&in_order).unwrap(), "shard order was not restored");
}

/// `ebm merge` joins only the shards of one run, each once and all of them, and names the file
/// and the field when a shard is not one (issue 31, cause 6).
#[test]
fn merge_refuses_shards_of_other_runs() {
    let dir = temp_dir("shard-provenance");
    let refuse = |args: &[&str], needles: &[&str]| {
        let o = ebm(args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        for needle in needles {
            assert!(e.contains(needle), "{args:?}: expected {needle:?} in: {e}");
        }
        assert!(common::debug_text(&e).is_none(), "{args:?}: Debug text in: {e}");
    };
    let shard = |i: u32, tag: &str, extra: &[&str]| {
        let out = dir.join(format!("{tag}{i}.npy"));
        let sh = format!("{i}/3");
        let mut args = vec!["sample", "--backend", "cpu", "--chains", "6", "--steps", "10"];
        args.extend(["--shard", &sh, "--out", s(&out)]);
        args.extend_from_slice(extra);
        // The run's settings unless `extra` changes them.
        for (flag, value) in [("--seed", "7"), ("--energy", "ring8")] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        let o = ebm(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        out
    };
    let (a0, a1, a2) = (shard(0, "a", &[]), shard(1, "a", &[]), shard(2, "a", &[]));
    let out = dir.join("m.npy");
    let merge = |inputs: &[&Path]| {
        let mut args = vec!["merge", "--out", s(&out)];
        args.extend(inputs.iter().map(|p| s(p)));
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let refuse_merge = |inputs: &[&Path], needles: &[&str]| {
        let args = merge(inputs);
        refuse(&args.iter().map(String::as_str).collect::<Vec<_>>(), needles);
        assert!(!out.exists(), "a refused merge wrote {}", out.display());
    };
    refuse_merge(&[&a0, &a1], &["shard 2 of 3 is missing"]);
    let dup = dir.join("dup.npy");
    std::fs::copy(&a0, &dup).unwrap();
    std::fs::copy(dir.join("a0.npy.shard.json"), dir.join("dup.npy.shard.json")).unwrap();
    refuse_merge(&[&a0, &dup, &a1, &a2], &["a0.npy", "dup.npy", "both shard 0"]);
    let seed = shard(1, "seed", &["--seed", "8"]);
    refuse_merge(&[&a0, &seed, &a2], &["seed1.npy", "--seed is 8"]);
    let step = shard(1, "step", &["--step-size", "0.02"]);
    refuse_merge(&[&a0, &step, &a2], &["step1.npy", "--step-size is 0.02"]);
    let energy = shard(1, "energy", &["--energy", "two_modes"]);
    refuse_merge(&[&a0, &energy, &a2], &["energy1.npy", "energy's fingerprint"]);
    // A whole run's output carries no record; an array replaced after sampling no longer
    // matches its record.
    let whole = dir.join("whole.npy");
    let o =
        ebm(&["sample", "--backend", "cpu", "--energy", "ring8", "--chains", "2", "--steps", "10", "--out", s(&whole)]);
    assert!(o.status.success(), "{}", stderr(&o));
    refuse_merge(&[&a0, &whole, &a2], &["whole.npy", "no shard record"]);
    std::fs::copy(&seed, &a1).unwrap();
    refuse_merge(&[&a0, &a1, &a2], &["a1.npy", "not those its shard record"]);
}

/// A merge whose --diagnostics fail writes nothing: no joined array without its report
/// (issue 31, cause 8).
#[test]
fn merge_that_fails_its_diagnostics_writes_nothing() {
    let dir = temp_dir("shard-diag-fail");
    let mut traces = vec![];
    for i in 0..2 {
        let t = dir.join(format!("t{i}.npy"));
        let sh = format!("{i}/2");
        // Two draws per chain: fewer than the diagnostics need.
        let o = ebm(&[
            "sample",
            "--backend",
            "cpu",
            "--chains",
            "4",
            "--steps",
            "4",
            "--thin",
            "2",
            "--shard",
            &sh,
            "--trace",
            s(&t),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        traces.push(t);
    }
    let (out, diag) = (dir.join("m.npy"), dir.join("d.json"));
    let o = ebm(&["merge", "--out", s(&out), "--diagnostics", s(&diag), s(&traces[0]), s(&traces[1])]);
    assert!(!o.status.success(), "the diagnostics of 2 draws succeeded");
    assert!(stderr(&o).contains("diagnostics"), "{}", stderr(&o));
    assert!(!out.exists() && !diag.exists(), "a failed merge left its outputs");
}
