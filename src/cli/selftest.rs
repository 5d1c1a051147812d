//! `ebm selftest`: GPU-against-CPU parity of every kernel family on the adapter in use (the
//! checks live in [`crate::selftest`], which the test suite runs too).

use std::path::PathBuf;

use crate::gpu::GpuContext;
use crate::selftest::{self, Size};
use anyhow::bail;
use std::sync::Arc;

use super::backend::{self, Backend};

/// Check, on the GPU adapter in use, that every kernel family computes what the CPU executor
/// computes: the same seeds on both, compared with the test suite's tolerances. Prints the
/// adapter (name, driver, limits) and a table (check, kernels, max error, tolerance, result,
/// time); exits non-zero if any check fails. The first command to run on a new GPU or driver.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:\n  ebm selftest                      # every check on the hardware GPU\n  \
ebm selftest --backend gpu --quick --json st.json   # a software adapter too\n  ebm selftest --only mala,rbm-ais\n\n\
EBM_SELFTEST_BREAK=rng (or energy_analytic, activations) breaks that shader module on purpose, \
to see a broken kernel fail its check.")]
pub struct SelftestArgs {
    /// Which GPU adapter: auto (a hardware GPU; an error where none opens) or gpu (whichever
    /// opens, a software one such as lavapipe included); cpu is refused (nothing to compare).
    /// WGPU_ADAPTER_NAME and WGPU_BACKEND choose among several.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Smaller chain counts and step counts (seconds on a software adapter); the same
    /// tolerances.
    #[arg(long)]
    pub quick: bool,
    /// Run only these checks (comma-separated names from the table, e.g. mala,rbm-ais).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
    /// Also write the results as JSON (adapter, driver, one object per check).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

pub fn run(args: &SelftestArgs) -> anyhow::Result<()> {
    let checks = selftest::select(&args.only).map_err(|e| anyhow::anyhow!("--only: {e}"))?;
    if let Some(path) = &args.json {
        crate::cli::outputs::Paths::new().output("--json", path, &["json"])?;
    }
    let ctx = match args.backend {
        Backend::Cpu => {
            bail!("--backend cpu: the selftest compares a GPU adapter with the CPU executor; use --backend gpu or auto")
        }
        // Not backend::open: auto's fallback to the CPU executor means nothing to check here.
        Backend::Auto => Arc::new(GpuContext::new_hardware().map_err(|e| {
            anyhow::anyhow!(
                "--backend auto: no hardware GPU opened ({e}); --backend gpu checks a software adapter such as lavapipe"
            )
        })?),
        Backend::Gpu => {
            backend::open(Backend::Gpu)?.ok_or_else(|| anyhow::anyhow!("--backend gpu opened no adapter"))?
        }
    };
    let size = if args.quick { Size::Quick } else { Size::Full };
    print!("{}", selftest::describe_adapter(&ctx));
    if let Ok(broken) = std::env::var("EBM_SELFTEST_BREAK") {
        println!("note: EBM_SELFTEST_BREAK={broken}: that shader module is broken on purpose");
    }
    println!();
    let mut outcomes = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        let outcome = selftest::run_one(check, &ctx, size);
        eprintln!(
            "[{}/{}] {} {} ({:.1} s)",
            i + 1,
            checks.len(),
            check.name,
            if outcome.passed() { "pass" } else { "FAIL" },
            outcome.seconds
        );
        outcomes.push(outcome);
    }
    print!("{}", selftest::table(&outcomes));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&selftest::to_json(&ctx, size, &outcomes))?;
        crate::io::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    let failed: Vec<&str> = outcomes.iter().filter(|o| !o.passed()).map(|o| o.name).collect();
    if !failed.is_empty() {
        bail!("{} of {} checks failed on {}: {}", failed.len(), outcomes.len(), ctx.describe(), failed.join(", "));
    }
    Ok(())
}
