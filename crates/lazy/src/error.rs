//! Error types of lazy resources, of the registry and of preload hints.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The error type a loader may return (anything convertible into it).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why one load attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptError {
    /// The loader returned an error.
    #[error("{0}")]
    Loader(Arc<dyn StdError + Send + Sync + 'static>),
    /// The attempt took longer than the per-attempt timeout and was abandoned.
    #[error("the attempt timed out after {0:?}")]
    TimedOut(Duration),
}

/// What went wrong, in a [`LazyError`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum LazyErrorKind {
    /// Every attempt of the last load failed; the error of the last attempt is the source.
    /// The resource is retried after the retry policy's cooldown.
    #[error("loading `{name}` failed after {attempts} attempt(s)")]
    Failed {
        /// The resource's name.
        name: String,
        /// Attempts made by the failed load.
        attempts: u32,
        /// What went wrong in the last attempt.
        #[source]
        last: AttemptError,
    },
    /// The load task ended without a result: the loader panicked or the runtime shut down.
    /// The next `get` starts a new load.
    #[error(
        "loading `{name}` ended without a result (the loader panicked or the runtime shut down)"
    )]
    Aborted {
        /// The resource's name.
        name: String,
    },
    /// No tokio runtime was available to run the load on.
    #[error(
        "loading `{name}` needs a tokio runtime (call it inside one, or give the builder a runtime handle)"
    )]
    NoRuntime {
        /// The resource's name.
        name: String,
    },
}

/// Why a lazy resource has no value. One pointer wide and cheap to clone: every waiter of a
/// failed load gets the same error, and `Result<&T, LazyError>` stays two words.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct LazyError(Arc<LazyErrorKind>);

impl From<LazyErrorKind> for LazyError {
    fn from(kind: LazyErrorKind) -> Self {
        LazyError(Arc::new(kind))
    }
}

impl LazyError {
    /// What went wrong.
    pub fn kind(&self) -> &LazyErrorKind {
        &self.0
    }

    /// The error with its cause, on one line (`loading `x` failed after 3 attempt(s): disk on fire`).
    pub fn full_message(&self) -> String {
        match self.kind() {
            LazyErrorKind::Failed { last, .. } => format!("{self}: {last}"),
            _ => self.to_string(),
        }
    }
}

/// Errors of [`crate::LazyRegistry`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// No resource of that name is registered.
    #[error("no lazy resource named `{0}` is registered")]
    Unknown(String),
    /// A resource of that name is already registered.
    #[error("a lazy resource named `{0}` is already registered")]
    Duplicate(String),
    /// The resource holds another type than the one asked for.
    #[error("the lazy resource `{name}` does not hold a `{expected}`")]
    WrongType {
        /// The resource's name.
        name: String,
        /// The type asked for.
        expected: &'static str,
    },
    /// The strategy needs a tokio runtime (eager and delayed preloads spawn tasks).
    #[error("registering `{0}` needs a tokio runtime for its preload strategy")]
    NoRuntime(String),
    /// Loading failed.
    #[error(transparent)]
    Load(#[from] LazyError),
}

/// Errors reading bundler output for preload hints.
#[derive(Debug, thiserror::Error)]
pub enum HintError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The document is not valid JSON of the expected shape (the cause names line and column).
    #[error("not a valid {format}")]
    Json {
        /// What it was read as (`Vite manifest`, `esbuild metafile`, `webpack stats`).
        format: &'static str,
        /// The cause, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The entry is not in the document.
    #[error("entry `{entry}` is not in the {format}; entries: {}", available.join(", "))]
    UnknownEntry {
        /// The entry asked for.
        entry: String,
        /// What it was read as.
        format: &'static str,
        /// Entry keys that do exist (at most 20).
        available: Vec<String>,
    },
    /// A chunk imports a chunk the document does not contain.
    #[error("bad {format}: `{from}` imports `{missing}`, which it does not contain")]
    MissingChunk {
        /// What it was read as.
        format: &'static str,
        /// The importing chunk.
        from: String,
        /// The missing chunk.
        missing: String,
    },
}
