use std::path::Path;

use infragraph_core::{SinkError, StateError};
use rusqlite::ErrorCode;

/// What went wrong with a store. The message names the store's path and, where the
/// operator can act, says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// The kind of an [`Error`], for callers that react differently (exit codes, retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened or created.
    Open,
    /// The file is not an infragraph store (another SQLite database, or not SQLite).
    NotAStore,
    /// The store was written by a newer infragraph with a layout this one does not know.
    NewerLayout,
    /// Another process holds the store's write lock for too long; trying again may work.
    Busy,
    /// A statement failed.
    Database,
    /// A node named in a query does not exist, or the store file does not exist.
    NotFound,
    /// Reading an import or writing an export failed.
    Io,
    /// A line of an import file is malformed; nothing of the import was stored.
    Import,
    /// A query argument is malformed or a search went past its bound.
    Invalid,
    /// A plugin wrote a record, or declared a label, that belongs to another plugin.
    NotOwner,
    /// Another run of the same plugin and scope holds the lease.
    Leased,
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether trying again may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Busy
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// A failed statement while doing `what` on the store at `path`.
    pub(crate) fn db(path: &Path, what: &str, e: rusqlite::Error) -> Error {
        let code = e.sqlite_error_code();
        let (kind, hint) = match code {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => (
                ErrorKind::Busy,
                " (another process holds the store's write lock; try again when it is done)",
            ),
            Some(ErrorCode::DiskFull) => (ErrorKind::Database, " (is the disk full?)"),
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => (
                ErrorKind::Database,
                " (can this user write the store and its directory?)",
            ),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => (
                ErrorKind::NotAStore,
                " (is it an infragraph store? pass --store PATH)",
            ),
            _ => (ErrorKind::Database, ""),
        };
        Error::new(kind, format!("store {}: {what}: {e}{hint}", path.display()))
    }
}

impl From<Error> for SinkError {
    fn from(e: Error) -> SinkError {
        if e.kind == ErrorKind::Leased {
            SinkError::held(e.message)
        } else if e.is_transient() {
            SinkError::transient(e.message)
        } else {
            SinkError::new(e.message)
        }
    }
}

impl From<Error> for StateError {
    fn from(e: Error) -> StateError {
        StateError(e.message)
    }
}

/// Failures inside a multi-step operation, given their context once at the API edge.
#[derive(Debug)]
pub(crate) enum Fail {
    Sql(rusqlite::Error),
    Io(std::io::Error),
    Json(serde_json::Error),
    Done(Error),
}

impl Fail {
    /// Names the store and the operation.
    pub(crate) fn at(self, path: &Path, what: &str) -> Error {
        match self {
            Fail::Sql(e) => Error::db(path, what, e),
            Fail::Io(e) => Error::new(
                ErrorKind::Io,
                format!("store {}: {what}: {e}", path.display()),
            ),
            Fail::Json(e) => Error::new(
                ErrorKind::Database,
                format!(
                    "store {}: {what}: a stored property map is not valid JSON: {e}",
                    path.display()
                ),
            ),
            Fail::Done(e) => e,
        }
    }
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Fail {
        Fail::Sql(e)
    }
}

impl From<rusqlite::types::FromSqlError> for Fail {
    fn from(e: rusqlite::types::FromSqlError) -> Fail {
        Fail::Sql(rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(e),
        ))
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        Fail::Io(e)
    }
}

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Fail {
        Fail::Json(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Done(e)
    }
}
