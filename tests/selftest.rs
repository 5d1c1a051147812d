//! `ebm selftest`'s checks (src/selftest/): each kernel family against its CPU twin on the
//! adapter the tests use, at the quick size `ebm selftest --quick` runs; a kernel broken on
//! purpose (EBM_SELFTEST_BREAK) fails its own checks and no others; bad flags are refused.

mod common;

use ebm_gpu::selftest::{self, CHECKS, Size};

/// Runs the check `name` on the test adapter and fails with its row of the table.
fn check(name: &str) {
    let Some(ctx) = common::gpu() else { return };
    let check = selftest::select(&[name.to_string()]).unwrap()[0];
    let outcome = selftest::run_one(check, &ctx, Size::Quick);
    let table = selftest::table(std::slice::from_ref(&outcome));
    eprint!("{table}");
    assert!(outcome.passed(), "{table}");
}

/// One test per check, so they run in parallel and fail by name.
macro_rules! checks {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(#[test] fn $test() { check($name) })*
        /// Every check in src/selftest has its test here.
        #[test]
        fn every_check_has_a_test() {
            let tested = [$($name),*];
            let all: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
            assert_eq!(all, tested, "src/selftest's CHECKS and this file's list differ");
        }
    };
}

checks! {
    rng => "rng",
    energy_analytic => "energy-analytic",
    energy_mlp => "energy-mlp",
    nn_layers => "nn-layers",
    ula => "ula",
    mala => "mala",
    hmc => "hmc",
    rwmh => "rwmh",
    tempering => "tempering",
    mlp_fused => "mlp-fused",
    mlp_tiled => "mlp-tiled",
    layered => "layered",
    rbm_gibbs => "rbm-gibbs",
    rbm_cd => "rbm-cd",
    rbm_ais => "rbm-ais",
    train_mlp => "train-mlp",
    train_layered => "train-layered",
    train_dsm => "train-dsm",
    restore => "restore",
    image_upload => "image-upload",
}

/// The text each EBM_SELFTEST_BREAK name replaces is in its module (else the switch would
/// silently break nothing).
#[test]
fn breakable_text_is_in_its_module() {
    for (key, module, find, _) in ebm_gpu::gpu::shader::BREAKABLE {
        let text = ebm_gpu::gpu::shader::SOURCES.iter().find(|(n, _)| n == module).map(|(_, s)| *s);
        assert!(text.is_some_and(|t| t.contains(find)), "{key}: {find:?} is not in {module}");
    }
}

/// `ebm selftest --quick` with one shader module broken on purpose: exit non-zero, the checks
/// of the kernels that use it FAIL, the others pass.
#[test]
fn broken_kernels_fail_their_checks_and_only_theirs() {
    if common::gpu().is_none() {
        return;
    }
    let cases: [(&str, &[&str], &[&str]); 3] = [
        ("rng", &["rng", "ula", "rbm-gibbs"], &["energy-analytic", "nn-layers"]),
        ("energy_analytic", &["energy-analytic"], &["rng", "nn-layers"]),
        ("activations", &["nn-layers"], &["rng", "energy-analytic"]),
    ];
    for (broken, fail, pass) in cases {
        let only: Vec<&str> = fail.iter().chain(pass).copied().collect();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebm"))
            .args(["selftest", "--backend", "gpu", "--quick", "--only", &only.join(",")])
            .env("EBM_SELFTEST_BREAK", broken)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!("EBM_SELFTEST_BREAK={broken}:\n{stdout}{}", common::stderr(&out));
        assert!(!out.status.success(), "{broken}: the selftest passed with a broken kernel");
        let result = |name: &str| {
            stdout.lines().find(|l| l.split_whitespace().next() == Some(name)).map(|l| l.contains(" FAIL "))
        };
        for name in fail {
            assert_eq!(result(name), Some(true), "{broken}: {name} should fail");
        }
        for name in pass {
            assert_eq!(result(name), Some(false), "{broken}: {name} should pass");
        }
        assert!(
            common::stderr(&out).contains(&format!("{} of {} checks failed", fail.len(), only.len())),
            "{broken}: summary"
        );
    }
}

/// Unknown check names and the CPU backend are refused, saying what is accepted.
#[test]
fn bad_selftest_flags_are_refused() {
    let out = common::ebm(&["selftest", "--only", "mala,nosuch"]);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("--only") && err.contains("\"nosuch\"") && err.contains("rbm-ais"), "{err}");
    let out = common::ebm(&["selftest", "--backend", "cpu"]);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("--backend gpu or auto"), "{}", common::stderr(&out));
}

/// A check that cannot run (an adapter without a limit the kernel needs) or that panics (a
/// driver bug surfacing as a broken invariant) fails its own row with the reason, and the table
/// counts it; the checks after it still run.
#[test]
fn errors_and_panics_fail_their_row_only() {
    let Some(ctx) = common::gpu() else { return };
    let limit = selftest::Check {
        name: "needs-limit",
        kernels: "none",
        run: |_, _| {
            Err(ebm_gpu::Error::Limit("this kernel needs 1 GiB storage bindings; the adapter allows 128 MiB".into()))
        },
    };
    let panics = selftest::Check { name: "panics", kernels: "none", run: |_, _| panic!("a broken invariant") };
    let outcomes: Vec<_> = [&limit, &panics, selftest::select(&["rng".to_string()]).unwrap()[0]]
        .into_iter()
        .map(|c| selftest::run_one(c, &ctx, Size::Quick))
        .collect();
    let table = selftest::table(&outcomes);
    eprint!("{table}");
    assert!(!outcomes[0].passed() && !outcomes[1].passed() && outcomes[2].passed(), "{table}");
    assert!(table.contains("1 GiB storage bindings") && table.contains("panicked: a broken invariant"), "{table}");
    assert!(table.contains("1 passed, 2 failed"), "{table}");
}
