//! Error classes: whether retrying can help.

use serde::{Deserialize, Serialize};

/// Whether a failure can go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// A dependency is unavailable or slow (broker, Milvus, a busy writer):
    /// the same message may succeed later, so it is retried.
    Transient,
    /// The input itself is bad (malformed message, corrupt or empty
    /// document): retrying cannot help, so it goes to the dead-letter queue.
    Permanent,
}

impl ErrorClass {
    /// The class as it appears in headers and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }
}

/// Implemented by every stage error so the worker can route failures
/// without knowing the stage.
pub trait Classify {
    /// Transient or permanent.
    fn class(&self) -> ErrorClass;
    /// A short stable code naming the failure, e.g. `corrupt_pdf`, used in
    /// dead-letter headers and events.
    fn code(&self) -> &'static str;
}
