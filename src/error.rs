//! One error type for the whole toolkit.
//!
//! Every message names what was wrong (a file, a field, a parameter) and what was expected, so the
//! CLI can print it as a single line and exit with status 2.

use std::path::Path;

/// What went wrong, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value, field or argument failed validation.
    #[error("{what}: {expected}")]
    Invalid { what: String, expected: String },
    /// A file could not be read, parsed or written.
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// Result alias used across the library.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// `what` failed validation; `expected` says what would have been accepted.
    pub fn invalid(what: impl Into<String>, expected: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            expected: expected.into(),
        }
    }

    /// A problem with the file at `path`.
    pub fn file(path: &Path, message: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }

    /// Attributes an error to the file it came from, keeping the original message.
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            Error::File { .. } => self,
            Error::Invalid { what, expected } => Error::file(path, format!("{what}: {expected}")),
        }
    }
}
