//! The device kit's script (bench/device/run.sh) at its smallest size, as a dry run: every ebm
//! workload on the software adapter, the peers that are installed on the CPU, one table and one
//! JSON. PyTorch is hidden on purpose (a `torch` module that fails to import comes first on
//! PYTHONPATH), so its columns must read "not installed" and the run must go on past them.
//! No timings are checked: a software adapter's figures say nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("ebm-device-kit-test-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn available(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn device_script_dry_run_writes_the_table_and_goes_on_past_a_missing_peer() {
    if common::gpu().is_none() {
        return;
    }
    for program in ["bash", "python3", "timeout"] {
        if !available(program) {
            // CI's Debian machine has all three; say so rather than fail elsewhere.
            assert!(std::env::var_os("CI").is_none(), "CI is set but {program} is not available");
            common::skip(&format!("device script not run: no {program}"));
            return;
        }
    }
    let dir = scratch_dir();
    let out = dir.join("out");
    // A torch that cannot be imported, whatever this machine has installed.
    let shadow = dir.join("shadow");
    std::fs::create_dir_all(&shadow).unwrap();
    std::fs::write(shadow.join("torch.py"), "raise ImportError('hidden by tests/device_kit.rs')\n").unwrap();
    let pythonpath = match std::env::var_os("PYTHONPATH") {
        Some(p) if !p.is_empty() => {
            let mut s = shadow.clone().into_os_string();
            s.push(":");
            s.push(p);
            s
        }
        _ => shadow.clone().into_os_string(),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(root.join("bench/device/run.sh"))
        // A generous budget: this checks the script's output, and a loaded machine's timings vary.
        .args([
            "run",
            "--dry-run",
            "--smallest",
            "--budget",
            "400",
            "--ebm",
            env!("CARGO_BIN_EXE_ebm"),
            "--python",
            "python3",
            "--out",
        ])
        .arg(&out)
        .env("PYTHONPATH", &pythonpath)
        .env("TMPDIR", &dir)
        .current_dir(root)
        .output()
        .expect("run bash bench/device/run.sh");
    let log = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the dry run failed ({}):\n{log}", output.status);

    let md = std::fs::read_to_string(out.join("device.md")).unwrap_or_else(|e| panic!("device.md: {e}\n{log}"));
    assert!(md.contains("| workload | size | unit | ebm (gpu) | torch |"), "device.md has no table:\n{md}");
    let json = std::fs::read_to_string(out.join("device.json")).unwrap_or_else(|e| panic!("device.json: {e}\n{log}"));
    let doc: serde_json::Value = serde_json::from_str(&json).expect("device.json parses");

    // At least one workload measured on ebm's GPU executor.
    let rows = doc["rows"].as_array().expect("rows");
    let ebm_rows =
        rows.iter().filter(|r| r["column"] == "ebm" && r["figure"].as_f64().is_some_and(|f| f > 0.0)).count();
    assert!(ebm_rows >= 1, "no ebm row was measured:\n{md}\n{log}");
    assert!(doc["adapter"]["name"].is_string(), "no adapter name in device.json");

    // Every peer has an entry, measured or not installed; torch is the missing one.
    for peer in ["torch", "jax", "blackjax", "sklearn", "thrml"] {
        let status = doc["peers"][peer]["status"].as_str().unwrap_or("");
        assert!(status == "installed" || status == "not installed", "peer {peer}: status {status:?}");
    }
    assert_eq!(doc["peers"]["torch"]["status"], "not installed", "the shadowed torch imported");
    let table = doc["table"].as_array().expect("table");
    assert!(!table.is_empty(), "empty table:\n{md}");
    // Discrete models and the DBM have no PyTorch implementation ('—').
    let torch_cells: Vec<&serde_json::Value> = table.iter().map(|t| &t["cells"]["torch"]).collect();
    assert!(torch_cells.iter().all(|c| *c == "not installed" || *c == "—"), "a torch cell is wrong:\n{md}");
    assert!(torch_cells.iter().any(|c| *c == "not installed"), "no torch cell reads 'not installed':\n{md}");
    // The discrete models' rows (issue 30) are in the table.
    assert!(md.contains("Ising 64x64, gibbs") && md.contains("swendsen-wang"), "no discrete rows:\n{md}");

    // The run went on past the missing peer: the steps after torch's were recorded too.
    let steps: Vec<&str> = doc["steps"].as_array().expect("steps").iter().filter_map(|s| s["name"].as_str()).collect();
    let torch = steps.iter().position(|s| *s == "peer.torch.langevin").expect("a torch step");
    assert!(
        steps.len() > torch + 1 && steps[torch + 1..].contains(&"peer.sklearn.rbm"),
        "the run stopped at torch: {steps:?}"
    );
    for s in doc["steps"].as_array().unwrap() {
        assert!(s["exit_code"].is_null() || s["exit_code"].is_i64(), "step without an exit code: {s}");
        assert!(s["seconds"].as_f64().is_some(), "step without a duration: {s}");
    }
    assert!(out.join("raw.tar.gz").is_file(), "no raw.tar.gz");
    let _ = std::fs::remove_dir_all(&dir);
}
