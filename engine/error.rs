//! The engine's error type. Every variant names what was wrong: the file, the tensor, the field.

use std::path::PathBuf;

/// What a caught panic said: its `&str` or `String` payload, else "unknown panic" (for errors
/// and warnings that replace it).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// A checkpoint file is malformed (truncated, bad header, unknown dtype...).
    #[error("{path}: {what}")]
    Format { path: PathBuf, what: String },

    /// A tensor is missing from a checkpoint or has the wrong shape or dtype.
    #[error("{path}: tensor `{name}`: {what}")]
    Tensor { path: PathBuf, name: String, what: String },

    /// A configuration field is missing or invalid.
    #[error("{path}: config field `{field}`: {what}")]
    Config { path: PathBuf, field: String, what: String },

    /// Audio could not be read or decoded.
    #[error("{path}: {what}")]
    Audio { path: PathBuf, what: String },

    /// Shapes passed to an op do not agree (a bug in model code, reported instead of panicking).
    #[error("shape mismatch in {op}: {what}")]
    Shape { op: &'static str, what: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("hub: {0}")]
    Hub(String),

    /// A GPU call failed (the op or kernel is named in the message).
    #[error("cuda: {0}")]
    Cuda(String),

    /// The GPU ran out of memory: callers that batch may halve the batch and retry.
    #[error("cuda: out of GPU memory in {0}")]
    DeviceOutOfMemory(String),

    /// The run was cancelled (a [`crate::cancel::Cancel`] token) before it finished.
    #[error("cancelled")]
    Cancelled,

    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn format(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Format { path: path.into(), what: what.into() }
    }
    pub fn tensor(path: impl Into<PathBuf>, name: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Tensor { path: path.into(), name: name.into(), what: what.into() }
    }
    pub fn config(path: impl Into<PathBuf>, field: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Config { path: path.into(), field: field.into(), what: what.into() }
    }
    pub fn audio(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Audio { path: path.into(), what: what.into() }
    }
    pub fn shape(op: &'static str, what: impl Into<String>) -> Self {
        Error::Shape { op, what: what.into() }
    }
}
