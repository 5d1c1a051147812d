//! Which executor runs the work: the one policy behind `--backend` of every `ebm` command and
//! behind [`Backend::open`] for library users.
//!
//! `Auto` takes a hardware GPU if one opens, and otherwise the CPU executor. A software adapter
//! (Mesa's lavapipe / llvmpipe, WARP, SwiftShader: wgpu reports them as `DeviceType::Cpu`) runs
//! our kernels 50-100x slower than the CPU executor on the same cores (BENCHMARKS.md), so `Auto`
//! never picks one; `Gpu` uses whatever adapter opens, software included, because it was asked
//! for.

use super::GpuContext;
use crate::Result;
use std::sync::Arc;

/// The executor policy in one sentence, for `--help`, `ebm info` and README.
pub const AUTO_POLICY: &str = "auto: a hardware GPU if one opens, otherwise the CPU executor; a software \
adapter (lavapipe, llvmpipe) only with --backend gpu";

/// Which executor to run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A hardware GPU if one opens, otherwise the CPU executor (never a software adapter).
    #[default]
    Auto,
    /// The GPU adapter that opens (see [`GpuContext::new`]), a software one included; an error
    /// if none does.
    Gpu,
    /// The CPU executor.
    Cpu,
}

/// What [`Backend::open`] chose.
pub struct ExecutorChoice {
    /// The GPU to run on, or `None` for the CPU executor.
    pub gpu: Option<Arc<GpuContext>>,
    /// Why `Auto` fell back to the CPU executor (no adapter, or only a software one), for a note
    /// to the user. `None` when the backend ran as asked.
    pub note: Option<String>,
}

/// Whether an adapter is a software rasteriser (lavapipe, llvmpipe, WARP, SwiftShader).
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu
}

/// The policy on a list of adapters, in wgpu's order of preference: the index of the adapter
/// `Auto` takes, or `None` for the CPU executor.
pub fn auto_choice(adapters: &[wgpu::AdapterInfo]) -> Option<usize> {
    adapters.iter().position(|a| !is_software(a))
}

impl Backend {
    /// Applies the policy: opens the GPU it names (`Gpu`: any adapter, an error if none opens;
    /// `Auto`: a hardware adapter only, else the CPU executor with a note saying why).
    pub fn open(self) -> Result<ExecutorChoice> {
        match self {
            Backend::Cpu => Ok(ExecutorChoice { gpu: None, note: None }),
            Backend::Gpu => Ok(ExecutorChoice { gpu: Some(Arc::new(GpuContext::new()?)), note: None }),
            Backend::Auto => match GpuContext::new_hardware() {
                Ok(ctx) => Ok(ExecutorChoice { gpu: Some(Arc::new(ctx)), note: None }),
                // One short line on every command: `ebm info` gives the adapters and the reasons.
                Err(_) => {
                    let note =
                        "no hardware GPU, so the CPU executor runs this (adapters: ebm info; --backend gpu forces one)";
                    Ok(ExecutorChoice { gpu: None, note: Some(note.to_string()) })
                }
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, device_type: wgpu::DeviceType) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo { name: name.into(), ..wgpu::AdapterInfo::new(device_type, wgpu::Backend::Vulkan) }
    }

    #[test]
    fn auto_never_takes_a_software_adapter() {
        use wgpu::DeviceType::*;
        assert_eq!(auto_choice(&[]), None);
        assert_eq!(auto_choice(&[adapter("llvmpipe (LLVM 19.1.7, 256 bits)", Cpu)]), None);
        assert_eq!(auto_choice(&[adapter("llvmpipe", Cpu), adapter("NVIDIA H200", DiscreteGpu)]), Some(1));
        assert_eq!(auto_choice(&[adapter("Intel UHD", IntegratedGpu), adapter("llvmpipe", Cpu)]), Some(0));
        assert_eq!(auto_choice(&[adapter("virgl", VirtualGpu)]), Some(0));
    }
}
