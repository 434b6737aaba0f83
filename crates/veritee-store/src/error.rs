//! The one error type of every store.

/// What went wrong in a [`Store`](crate::Store) call.
///
/// Messages name the backend, the operation and the limit or cause; they never contain
/// a stored value, a key or a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An argument broke one of the [`limits`](crate::limits); nothing was read or written.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// [`log_append`](crate::Store::log_append) named a sequence number other than the
    /// log's next one: a gap, a duplicate, or a lost race with another appender.
    /// Nothing was written.
    #[error("conflict: log {log:?} expects seq {expected} next, not {attempted}")]
    Conflict {
        /// The log appended to.
        log: String,
        /// The sequence number the log expects next (the last one plus 1, or 0 when empty).
        expected: u64,
        /// The sequence number the caller tried to append.
        attempted: u64,
    },

    /// An I/O error of the backend's storage (for the embedded store, its directory or
    /// database file).
    #[error("{backend} store: {operation}: I/O error: {error}")]
    Io {
        /// "embedded" or "postgres".
        backend: &'static str,
        /// The operation that failed, such as "open" or "put".
        operation: &'static str,
        /// The underlying error.
        error: std::io::Error,
    },

    /// Any other failure the backend reported.
    #[error("{backend} store: {operation}: {message}")]
    Backend {
        /// "embedded" or "postgres".
        backend: &'static str,
        /// The operation that failed.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },

    /// The backend cannot be reached: the PostgreSQL server is down, refuses
    /// connections, or dropped the connection. Retrying later may succeed.
    #[error("{backend} store unavailable at {address} ({operation}): {message}")]
    Unavailable {
        /// "postgres".
        backend: &'static str,
        /// Where the server was expected, as `host:port` (comma-separated if several).
        address: String,
        /// The operation that failed.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
}
