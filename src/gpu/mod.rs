//! GPU plumbing: the device context, shader assembly, and kernel launchers shared by families.

pub mod context;
pub mod launch;
pub mod shader;

pub use context::{Binding, GpuContext, Kernel, list_adapters};
