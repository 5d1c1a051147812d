//! The library's one error type. Every failure a user can cause (bad spec, bad file, bad size)
//! and every GPU failure (validation, out of memory, device lost) ends up here, never in a panic.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user-supplied value is wrong; `what` names the field, flag or argument.
    #[error("invalid {what}: {message}")]
    InvalidInput { what: String, message: String },

    /// A file could not be read or written. The I/O error is part of the message and not
    /// chained as a `source()`, so reporters that print causes (anyhow) say it once.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },

    /// A file was read but its content is malformed.
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },

    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),

    #[error("could not open the GPU device: {0}")]
    RequestDevice(String),

    /// A shader failed to assemble, parse or validate.
    #[error("shader {name}: {message}")]
    Shader { name: String, message: String },

    #[error("GPU validation error during {context}: {message}")]
    GpuValidation { context: String, message: String },

    #[error("GPU out of memory during {context}")]
    GpuOutOfMemory { context: String },

    #[error("GPU device lost: {0}")]
    DeviceLost(String),

    /// The request does not fit the device (buffer sizes, bindings) even after splitting.
    #[error("device limit: {0}")]
    Limit(String),

    /// The call needs something this build cannot do (a blocking wait in a browser).
    #[error("not available in this build: {0}")]
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput { what: what.into(), message: message.into() }
    }

    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io { path: path.into(), error }
    }

    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format { path: path.into(), message: message.into() }
    }
}
