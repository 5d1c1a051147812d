//! GPU plumbing: the device context, the executor policy, shader assembly, and kernel launchers
//! shared by families.

pub mod context;
pub mod executor;
pub mod launch;
#[cfg(any(test, feature = "internals"))]
pub mod layout;
pub mod shader;

pub use context::{Binding, ContextInternals, GpuContext, Kernel, Readback, list_adapters};
pub use executor::{AUTO_POLICY, Backend, ExecutorChoice};
