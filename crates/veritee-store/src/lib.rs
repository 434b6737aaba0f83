//! Storage of a veritee provider node, behind one interface, [`Store`], with two
//! backends that pass the same test suite ([`conformance`]):
//!
//! - [`EmbeddedStore`]: the default; one redb file, `store.redb`, for objects and one
//!   append-only file per log in `logs/` ([`log_file`]), in a directory of its own.
//!   Nothing to install, one process at a time.
//! - [`PostgresStore`]: PostgreSQL, for several nodes that share state.
//!
//! [`open`] picks the backend from a location string.
//!
//! # Trust boundary
//!
//! This crate runs in the untrusted host process. Everything an enclave stores is
//! sealed before it gets here, so the store only ever holds opaque bytes; it depends on
//! no crypto, platform or enclave crate, and no error message or log line it produces
//! contains a stored value (nor a key: messages name lengths, limits and positions).
//!
//! # Data model
//!
//! - **Objects**: `(namespace, key) -> value`, upserted, created-if-absent, read,
//!   listed in key order with a prefix and a cursor, deleted.
//! - **Logs**: named append-only sequences of entries numbered `0, 1, 2, ...`; an
//!   append names the sequence number it expects to write, so concurrent appenders
//!   (threads of one node, or several nodes sharing one PostgreSQL database) cannot
//!   both win, and a lost race is a [`StoreError::Conflict`].
//!
//! Namespaces, keys and log names are printable ASCII (`0x20..=0x7E`); keys sort by
//! their bytes. Every argument is checked against the [`limits`] before any I/O.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

pub mod conformance;
mod embedded;
mod error;
pub mod limits;
pub mod log_file;
mod postgres;
mod postgres_tls;

pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use postgres::{PostgresStore, connect_client};

/// An object written together with a log entry ([`Store::log_append_with_objects`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Namespace.
    pub ns: String,
    /// Key.
    pub key: String,
    /// Value.
    pub value: Vec<u8>,
}

/// The storage interface of a provider node: objects in namespaces, and append-only logs.
///
/// Every method checks its arguments against the [`limits`] before any I/O and answers
/// [`StoreError::InvalidInput`] when one is broken. Writes are durable when they return
/// `Ok`: they survive the process being killed (`kill -9`) right after.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// "embedded" or "postgres".
    fn kind(&self) -> &'static str;

    /// Upsert; durable when it returns Ok (survives kill -9 of the process right after).
    async fn put(&self, ns: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Create only: Ok(false) and nothing written if the key exists.
    async fn put_if_absent(&self, ns: &str, key: &str, value: &[u8]) -> Result<bool, StoreError>;

    /// The value stored under `key` in `ns`, if any.
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keys of `ns` starting with `prefix`, sorted ascending, starting strictly after `after` if given, at most `limit`.
    ///
    /// Keys sort by their bytes. To page through a namespace, pass the last key of one
    /// page as `after` for the next; a page shorter than `limit` is the last.
    async fn list(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Deletes `key` from `ns`. Ok(true) if something was deleted.
    async fn delete(&self, ns: &str, key: &str) -> Result<bool, StoreError>;

    /// Appends entry number `seq` to append-only log `log`: seq must be exactly last+1 (0 for an empty log), else StoreError::Conflict naming the expected seq; durable on Ok.
    async fn log_append(&self, log: &str, seq: u64, entry: &[u8]) -> Result<(), StoreError>;

    /// Appends `entries` to `log` as numbers `seq`, `seq + 1`, ... in one transaction:
    /// all of them durable on Ok (one sync for the lot), none of them on a Conflict
    /// (`seq` must be exactly last+1, as for [`Store::log_append`]) or any other error.
    /// For writers that batch their appends (group commit). An empty list is a no-op.
    async fn log_append_entries(
        &self,
        log: &str,
        seq: u64,
        entries: &[Vec<u8>],
    ) -> Result<(), StoreError>;

    /// As [`Store::log_append`], and upserts `objects` (namespace, key, value) in the
    /// same transaction: all of it is durable on Ok, none of it on a Conflict or any
    /// other error. An enclave's journal entry and the records it names land together.
    async fn log_append_with_objects(
        &self,
        log: &str,
        seq: u64,
        entry: &[u8],
        objects: &[StoredObject],
    ) -> Result<(), StoreError>;

    /// Entries with seq >= from, ascending, at most limit.
    async fn log_read(
        &self,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// The last entry, if any.
    async fn log_last(&self, log: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
}

/// Opens the store at `location`.
///
/// `postgres://...` or `postgresql://...` (a libpq-style URL, without TLS: use a local
/// or otherwise protected network) opens a [`PostgresStore`] and creates its tables if
/// absent; anything else is a directory for the [`EmbeddedStore`], created with mode
/// 0700 if missing, holding the database file `store.redb` and the log files in `logs/`.
pub async fn open(location: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(location) {
        Ok(Arc::new(PostgresStore::connect(location).await?))
    } else if location.is_empty() {
        Err(StoreError::InvalidInput(
            "the store location is empty: give a directory or a postgres:// URL".into(),
        ))
    } else {
        Ok(Arc::new(EmbeddedStore::open(location).await?))
    }
}

/// Whether `location` names a PostgreSQL database rather than a directory.
fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_the_backend() {
        assert!(is_postgres_url("postgres://u:p@127.0.0.1:5432/db"));
        assert!(is_postgres_url("postgresql://u@localhost/db"));
        assert!(!is_postgres_url("/var/lib/veritee/store"));
        assert!(!is_postgres_url("postgres"));
        assert!(!is_postgres_url("./postgres://x"));
    }

    #[tokio::test]
    async fn empty_location_is_invalid() {
        let err = open("").await.err().expect("empty location must fail");
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    }
}
