//! The crate's error type.

use std::path::{Path, PathBuf};

/// Why an analysis could not be done.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document is malformed or has a field of the wrong type.
    #[error("invalid {what}: {message}")]
    Json {
        /// What was being read (`webpack stats`, `source map`, ...).
        what: String,
        /// serde_json's message, with line and column.
        message: String,
    },
    /// A file in a known format uses a feature this crate does not read.
    #[error("unsupported input: {0}")]
    Unsupported(String),
    /// The input's format could not be recognised.
    #[error("cannot tell the format of {path}: {reason}")]
    UnknownFormat {
        /// The input.
        path: PathBuf,
        /// What was looked for.
        reason: String,
    },
    /// A budget file or a budget in it is invalid.
    #[error("invalid budget: {0}")]
    Budget(String),
}

impl BundleError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        BundleError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A JSON error while reading `what`.
    pub fn json(what: &str, err: serde_json::Error) -> Self {
        BundleError::Json {
            what: what.to_owned(),
            message: err.to_string(),
        }
    }

    /// Names the file in a JSON error.
    pub(crate) fn in_file(self, path: &Path) -> Self {
        match self {
            BundleError::Json { what, message } => BundleError::Json {
                what: format!("{what} {}", path.display()),
                message,
            },
            other => other,
        }
    }
}
