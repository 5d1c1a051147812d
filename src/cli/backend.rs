//! `--backend` of every command: one flag, one policy ([`crate::gpu::Backend::open`]).

use crate::gpu::{self, GpuContext};
use clap::ValueEnum;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A hardware GPU if one opens, otherwise the CPU executor (never a software adapter such
    /// as lavapipe, which is 50-100x slower than the CPU executor).
    Auto,
    /// The GPU adapter that opens, a software one included; an error if none does.
    Gpu,
    /// The CPU executor (rayon over all cores; RAYON_NUM_THREADS to change).
    Cpu,
}

impl From<Backend> for gpu::Backend {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Auto => gpu::Backend::Auto,
            Backend::Gpu => gpu::Backend::Gpu,
            Backend::Cpu => gpu::Backend::Cpu,
        }
    }
}

/// Opens the executor `backend` names: the GPU context, or `None` for the CPU executor (with a
/// note on stderr saying why when `auto` fell back to it).
pub fn open(backend: Backend) -> anyhow::Result<Option<Arc<GpuContext>>> {
    let choice = gpu::Backend::from(backend)
        .open()
        .map_err(|e| anyhow::Error::new(e).context(format!("--backend {}", gpu::Backend::from(backend).name())))?;
    if let Some(note) = choice.note {
        eprintln!("note: {note}");
    }
    Ok(choice.gpu)
}

/// The executor a command ran on, for its report: "gpu: <adapter>" or "cpu (N threads)".
pub fn describe(ctx: Option<&Arc<GpuContext>>) -> String {
    match ctx {
        Some(c) => format!("gpu: {}", c.describe()),
        None => format!("cpu ({} threads)", rayon::current_num_threads()),
    }
}
