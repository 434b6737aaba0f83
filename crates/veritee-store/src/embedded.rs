//! The embedded backend: one redb database file in a directory of its own.

use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};

use crate::{Store, StoreError, StoredObject, limits};

const BACKEND: &str = "embedded";

/// Name of the database file inside the store's directory.
pub const DB_FILE_NAME: &str = "store.redb";

/// `(namespace, key) -> value`.
const OBJECTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("objects");
/// `(log, seq) -> entry`.
const LOGS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("logs");

/// The embedded store: a redb database, `store.redb`, in a directory of its own.
///
/// Every write is one redb write transaction committed with
/// [`Durability::Immediate`], so it is on disk when the call returns. redb allows one
/// writer at a time, which makes `put_if_absent` and `log_append` atomic; reads run
/// alongside writes on their own snapshot. redb is synchronous, so every call runs on
/// tokio's blocking thread pool.
///
/// Only one process may have the store open at a time (redb locks the file); a second
/// [`open`](EmbeddedStore::open) fails with a clear [`StoreError::Backend`].
pub struct EmbeddedStore {
    /// The open database; `None` while it is being reopened after an I/O error (or
    /// when reopening failed: the next operation tries again).
    db: Arc<RwLock<Option<Arc<Database>>>>,
    path: PathBuf,
}

/// The database's page cache. redb's default is 1 GiB, which a node's resident memory
/// grows into as its store grows (a soak of 10 minutes took the host from 110 to
/// 600 MiB): a node's reads are small and recent, and the OS page cache holds the file.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Opens (or creates) the database file at `path` with [`CACHE_BYTES`] of cache.
fn create_database(path: &Path) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(CACHE_BYTES).create(path)
}

/// How long a reopen waits for the operations still holding the failed handle.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Maps any redb error to a [`StoreError`] naming the operation (redb's messages hold
/// no keys or values).
fn redb_error(operation: &'static str, error: impl Into<redb::Error>) -> StoreError {
    match error.into() {
        redb::Error::Io(error) => StoreError::Io {
            backend: BACKEND,
            operation,
            error,
        },
        // redb refuses everything after an I/O error until the database is reopened;
        // reported as the I/O error it is, so that the store reopens it.
        redb::Error::PreviousIo => StoreError::Io {
            backend: BACKEND,
            operation,
            error: std::io::Error::other(
                "an earlier write failed (a full disk?); the database is being reopened",
            ),
        },
        redb::Error::DatabaseAlreadyOpen => StoreError::Backend {
            backend: BACKEND,
            operation,
            message: format!(
                "{DB_FILE_NAME} is already open, by this process or another; \
                 only one process at a time may use an embedded store"
            ),
        },
        other => StoreError::Backend {
            backend: BACKEND,
            operation,
            message: other.to_string(),
        },
    }
}

/// [`redb_error`] as a `map_err` argument.
fn err<E: Into<redb::Error>>(operation: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| redb_error(operation, e)
}

fn io_error(operation: &'static str, error: std::io::Error) -> StoreError {
    StoreError::Io {
        backend: BACKEND,
        operation,
        error,
    }
}

/// The number the next entry of `log` must have.
fn next_seq(
    table: &redb::Table<'_, (&'static str, u64), &'static [u8]>,
    log: &str,
) -> Result<u64, redb::StorageError> {
    let last = table
        .range((log, 0)..=(log, u64::MAX))?
        .next_back()
        .transpose()?
        .map(|(k, _)| k.value().1);
    Ok(last.map_or(0, |last| last + 1))
}

/// Begins a write transaction that is durable on commit.
fn begin_write(db: &Database, operation: &'static str) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write().map_err(|e| redb_error(operation, e))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| redb_error(operation, e))?;
    Ok(txn)
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating the directory (mode 0700) and the database
    /// file (mode 0600) if missing. A database left by a killed process is repaired on
    /// open; every write acknowledged before the kill is there.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir))
            .await
            .map_err(|e| join_error("open", e))?
    }

    fn open_blocking(dir: &Path) -> Result<Self, StoreError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| io_error("create the store directory", e))?;

        let path = dir.join(DB_FILE_NAME);
        // Create the file ourselves so that it is private from the start; redb
        // initializes an empty file as a new database.
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        drop(
            options
                .open(&path)
                .map_err(|e| io_error("create the database file", e))?,
        );

        let db = create_database(&path).map_err(|e| redb_error("open", e))?;
        // Create both tables up front, so that readers never meet a missing table.
        let txn = begin_write(&db, "open")?;
        txn.open_table(OBJECTS).map_err(|e| redb_error("open", e))?;
        txn.open_table(LOGS).map_err(|e| redb_error("open", e))?;
        txn.commit().map_err(|e| redb_error("open", e))?;
        // Make the new file's directory entry durable too.
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("sync the store directory", e))?;

        tracing::info!(path = %path.display(), "embedded store opened");
        Ok(Self {
            db: Arc::new(RwLock::new(Some(Arc::new(db)))),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the blocking thread pool with the database. After an I/O error
    /// (a full disk, say) redb refuses every later operation until the database is
    /// reopened: the failed operation reports its error, and the database is reopened
    /// before the next one, so that the node serves again once there is room. What was
    /// committed before is untouched: a failed commit leaves the last committed state.
    async fn blocking<T, F>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.db);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let db = current(&shared, &path, operation)?;
            let result = f(&db);
            if let Err(StoreError::Io { .. }) = &result {
                drop(db);
                reopen(&shared, &path);
            }
            result
        })
        .await
        .map_err(|e| join_error(operation, e))?
    }
}

fn lock_error(operation: &'static str) -> StoreError {
    StoreError::Backend {
        backend: BACKEND,
        operation,
        message: "the database handle's lock is poisoned".into(),
    }
}

/// The open database, opening it again if an earlier reopen failed.
fn current(
    shared: &RwLock<Option<Arc<Database>>>,
    path: &Path,
    operation: &'static str,
) -> Result<Arc<Database>, StoreError> {
    if let Some(db) = shared.read().map_err(|_| lock_error(operation))?.as_ref() {
        return Ok(Arc::clone(db));
    }
    let mut slot = shared.write().map_err(|_| lock_error(operation))?;
    if let Some(db) = slot.as_ref() {
        return Ok(Arc::clone(db));
    }
    let db = Arc::new(create_database(path).map_err(|e| redb_error(operation, e))?);
    tracing::info!(path = %path.display(), "embedded store reopened");
    *slot = Some(Arc::clone(&db));
    Ok(db)
}

/// Closes the database after an I/O error and opens it again. Operations that still
/// hold the failed handle are short; they are waited for, then the file is reopened
/// (redb recovers to the last commit). A reopen that fails leaves the slot empty, and
/// the next operation tries again.
fn reopen(shared: &RwLock<Option<Arc<Database>>>, path: &Path) {
    let Ok(mut slot) = shared.write() else {
        return;
    };
    let Some(mut old) = slot.take() else {
        return;
    };
    let deadline = std::time::Instant::now() + REOPEN_WAIT;
    loop {
        match Arc::try_unwrap(old) {
            Ok(db) => {
                drop(db);
                break;
            }
            Err(still_held) if std::time::Instant::now() < deadline => {
                old = still_held;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => {
                tracing::warn!("the embedded store's failed handle is still held; reopening later");
                return;
            }
        }
    }
    match create_database(path) {
        Ok(db) => {
            tracing::warn!(path = %path.display(), "embedded store reopened after an I/O error");
            *slot = Some(Arc::new(db));
        }
        Err(e) => tracing::warn!(
            "reopening the embedded store failed: {e}; trying again at the next operation"
        ),
    }
}

fn join_error(operation: &'static str, error: tokio::task::JoinError) -> StoreError {
    StoreError::Backend {
        backend: BACKEND,
        operation,
        message: if error.is_panic() {
            "the storage task panicked".into()
        } else {
            "the storage task was cancelled".into()
        },
    }
}

impl EmbeddedStore {
    /// Appends `entries` to `log` from `seq` and upserts `objects`, in one durable
    /// transaction; a `seq` other than the log's next one writes nothing. Arguments
    /// are checked against the limits by the caller.
    async fn append(
        &self,
        log: &str,
        seq: u64,
        entries: Vec<Vec<u8>>,
        objects: Vec<StoredObject>,
    ) -> Result<(), StoreError> {
        let log = log.to_owned();
        self.blocking("log_append", move |db| {
            let op = "log_append";
            // One writer at a time: reading the last seq and inserting are atomic.
            let txn = begin_write(db, op)?;
            if !objects.is_empty() {
                let mut table = txn.open_table(OBJECTS).map_err(err(op))?;
                for o in &objects {
                    table
                        .insert((o.ns.as_str(), o.key.as_str()), o.value.as_slice())
                        .map_err(err(op))?;
                }
            }
            {
                let mut table = txn.open_table(LOGS).map_err(err(op))?;
                let expected = next_seq(&table, &log).map_err(err(op))?;
                if seq != expected {
                    drop(table);
                    txn.abort().map_err(err(op))?;
                    return Err(StoreError::Conflict {
                        log,
                        expected,
                        attempted: seq,
                    });
                }
                for (n, entry) in (seq..).zip(&entries) {
                    table
                        .insert((log.as_str(), n), entry.as_slice())
                        .map_err(err(op))?;
                }
            }
            txn.commit().map_err(err(op))
        })
        .await
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> &'static str {
        BACKEND
    }

    async fn put(&self, ns: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        limits::check_ns(ns)?;
        limits::check_key(key)?;
        limits::check_value(value)?;
        let (ns, key, value) = (ns.to_owned(), key.to_owned(), value.to_vec());
        self.blocking("put", move |db| {
            let op = "put";
            let txn = begin_write(db, "put")?;
            {
                let mut table = txn.open_table(OBJECTS).map_err(err(op))?;
                table
                    .insert((ns.as_str(), key.as_str()), value.as_slice())
                    .map_err(err(op))?;
            }
            txn.commit().map_err(err(op))
        })
        .await
    }

    async fn put_if_absent(&self, ns: &str, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        limits::check_ns(ns)?;
        limits::check_key(key)?;
        limits::check_value(value)?;
        let (ns, key, value) = (ns.to_owned(), key.to_owned(), value.to_vec());
        self.blocking("put_if_absent", move |db| {
            let op = "put_if_absent";
            // One writer at a time: the check and the insert are atomic.
            let txn = begin_write(db, "put_if_absent")?;
            {
                let mut table = txn.open_table(OBJECTS).map_err(err(op))?;
                if table
                    .get((ns.as_str(), key.as_str()))
                    .map_err(err(op))?
                    .is_some()
                {
                    drop(table);
                    txn.abort().map_err(err(op))?;
                    return Ok(false);
                }
                table
                    .insert((ns.as_str(), key.as_str()), value.as_slice())
                    .map_err(err(op))?;
            }
            txn.commit().map_err(err(op))?;
            Ok(true)
        })
        .await
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        limits::check_ns(ns)?;
        limits::check_key(key)?;
        let (ns, key) = (ns.to_owned(), key.to_owned());
        self.blocking("get", move |db| {
            let op = "get";
            let txn = db.begin_read().map_err(err(op))?;
            let table = txn.open_table(OBJECTS).map_err(err(op))?;
            let value = table.get((ns.as_str(), key.as_str())).map_err(err(op))?;
            Ok(value.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn list(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        limits::check_ns(ns)?;
        limits::check_prefix(prefix)?;
        limits::check_after(after)?;
        limits::check_limit(limit)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (ns, prefix, after) = (ns.to_owned(), prefix.to_owned(), after.map(str::to_owned));
        self.blocking("list", move |db| {
            let op = "list";
            let txn = db.begin_read().map_err(err(op))?;
            let table = txn.open_table(OBJECTS).map_err(err(op))?;
            // Keys starting with `prefix` form one contiguous run in byte order; start at
            // its beginning or just after the cursor, whichever is later.
            let start = match after.as_deref() {
                Some(after) if after >= prefix.as_str() => Bound::Excluded((ns.as_str(), after)),
                _ => Bound::Included((ns.as_str(), prefix.as_str())),
            };
            let mut keys = Vec::new();
            for item in table.range((start, Bound::Unbounded)).map_err(err(op))? {
                let (k, _) = item.map_err(err(op))?;
                let (k_ns, k_key) = k.value();
                if k_ns != ns || !k_key.starts_with(prefix.as_str()) {
                    break;
                }
                keys.push(k_key.to_owned());
                if keys.len() == limit {
                    break;
                }
            }
            Ok(keys)
        })
        .await
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool, StoreError> {
        limits::check_ns(ns)?;
        limits::check_key(key)?;
        let (ns, key) = (ns.to_owned(), key.to_owned());
        self.blocking("delete", move |db| {
            let op = "delete";
            let txn = begin_write(db, "delete")?;
            let removed = {
                let mut table = txn.open_table(OBJECTS).map_err(err(op))?;
                let removed = table.remove((ns.as_str(), key.as_str())).map_err(err(op))?;
                removed.is_some()
            };
            if removed {
                txn.commit().map_err(err(op))?;
            } else {
                txn.abort().map_err(err(op))?;
            }
            Ok(removed)
        })
        .await
    }

    async fn log_append(&self, log: &str, seq: u64, entry: &[u8]) -> Result<(), StoreError> {
        self.log_append_with_objects(log, seq, entry, &[]).await
    }

    async fn log_append_with_objects(
        &self,
        log: &str,
        seq: u64,
        entry: &[u8],
        objects: &[StoredObject],
    ) -> Result<(), StoreError> {
        limits::check_log_name(log)?;
        limits::check_seq(seq)?;
        limits::check_value(entry)?;
        for o in objects {
            limits::check_ns(&o.ns)?;
            limits::check_key(&o.key)?;
            limits::check_value(&o.value)?;
        }
        self.append(log, seq, vec![entry.to_vec()], objects.to_vec())
            .await
    }

    async fn log_append_entries(
        &self,
        log: &str,
        seq: u64,
        entries: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        limits::check_log_name(log)?;
        limits::check_entries(seq, entries)?;
        if entries.is_empty() {
            return Ok(());
        }
        self.append(log, seq, entries.to_vec(), Vec::new()).await
    }

    async fn log_read(
        &self,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        limits::check_log_name(log)?;
        limits::check_limit(limit)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let log = log.to_owned();
        self.blocking("log_read", move |db| {
            let op = "log_read";
            let txn = db.begin_read().map_err(err(op))?;
            let table = txn.open_table(LOGS).map_err(err(op))?;
            let mut entries = Vec::new();
            for item in table
                .range((log.as_str(), from)..=(log.as_str(), u64::MAX))
                .map_err(err(op))?
                .take(limit)
            {
                let (k, v) = item.map_err(err(op))?;
                entries.push((k.value().1, v.value().to_vec()));
            }
            Ok(entries)
        })
        .await
    }

    async fn log_last(&self, log: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        limits::check_log_name(log)?;
        let log = log.to_owned();
        self.blocking("log_last", move |db| {
            let op = "log_last";
            let txn = db.begin_read().map_err(err(op))?;
            let table = txn.open_table(LOGS).map_err(err(op))?;
            let last = table
                .range((log.as_str(), 0)..=(log.as_str(), u64::MAX))
                .map_err(err(op))?
                .next_back()
                .transpose()
                .map_err(err(op))?;
            Ok(last.map(|(k, v)| (k.value().1, v.value().to_vec())))
        })
        .await
    }
}
