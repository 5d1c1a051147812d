//! The environment variables the engine reads, each converted with bounds and checked once
//! before any command runs ([`check`]), so a bad value is refused naming the variable before a
//! file is written, never a panic halfway through a run.
//!
//! `EBM_MEMORY_BUDGET` and `EBM_WORK_LIMIT` are parsed by [`crate::plan`]; `EBM_DATA_DIR`,
//! `EBM_DATA_MIRROR`, `XDG_DATA_HOME` (all read by `cli::datasets`),
//! `WGPU_ADAPTER_NAME` and `EBM_SELFTEST_BREAK` are names, taken as they are.

use anyhow::{Context, bail};
use std::time::Duration;

/// Seconds between plain progress lines when stderr is not a terminal.
pub const PROGRESS_VAR: &str = "EBM_PROGRESS_SECS";

/// The CPU executor's thread count (read by rayon itself, when its pool starts).
pub const THREADS_VAR: &str = "RAYON_NUM_THREADS";

/// How many threads per available core `RAYON_NUM_THREADS` may ask for: more only adds
/// switching (the CPU executor's work is compute-bound), and thousands of threads outlive any
/// timeout when a 4-chain sample starts them all.
pub const THREADS_PER_CORE: usize = 4;

/// Checks every variable the engine reads as a number, and caps the CPU executor's threads.
pub fn check() -> anyhow::Result<()> {
    progress_interval()?;
    crate::plan::budget()?;
    crate::plan::work_limit()?;
    cap_threads()
}

/// `EBM_PROGRESS_SECS` (default 10): a number of seconds, 0 or more; `inf` (or anything past
/// what a `Duration` holds) means never.
pub fn progress_interval() -> anyhow::Result<Duration> {
    let Ok(text) = std::env::var(PROGRESS_VAR) else { return Ok(Duration::from_secs(10)) };
    let secs = text.trim().parse::<f64>().ok().filter(|s| *s >= 0.0).with_context(|| {
        format!("{PROGRESS_VAR}={text} is not a number of seconds (0 or more, e.g. 10; inf for never)")
    })?;
    // Saturates instead of panicking (Duration::from_secs_f64 panics past u64 seconds).
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// The thread count `RAYON_NUM_THREADS` asks for (None when unset, empty or 0, which rayon
/// takes as one per core), refused when it is not a whole number.
fn threads_asked() -> anyhow::Result<Option<usize>> {
    let Ok(text) = std::env::var(THREADS_VAR) else { return Ok(None) };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        Err(_) => bail!("{THREADS_VAR}={text} is not a whole number of threads (0 or unset: one per core)"),
    }
}

/// The most threads the CPU executor starts here: [`THREADS_PER_CORE`] per available core.
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_mul(THREADS_PER_CORE)
}

/// Starts the CPU executor's pool with at most [`max_threads`] threads when `RAYON_NUM_THREADS`
/// asks for more, saying so. A pool already started (an earlier command in this process) is
/// left as it is: it was capped then.
fn cap_threads() -> anyhow::Result<()> {
    let Some(asked) = threads_asked()? else { return Ok(()) };
    let max = max_threads();
    if asked > max && rayon::ThreadPoolBuilder::new().num_threads(max).build_global().is_ok() {
        eprintln!(
            "note: {THREADS_VAR}={asked} is more than {THREADS_PER_CORE} threads per core; the CPU executor uses {max} \
             (more threads only add switching)"
        );
    }
    Ok(())
}
