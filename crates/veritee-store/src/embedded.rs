//! The embedded backend: one redb database file in a directory of its own.

use std::collections::HashMap;
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};

use crate::log_file::{self, LogDirectory, LogFile};
use crate::{Store, StoreError, StoredObject, limits};

const BACKEND: &str = "embedded";

/// Name of the database file inside the store's directory.
pub const DB_FILE_NAME: &str = "store.redb";

/// `(namespace, key) -> value`.
const OBJECTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("objects");
/// `(log, seq) -> entry`: where logs were kept before they moved to files of their own
/// ([`log_file`]); emptied into those files on open.
const LOGS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("logs");
/// `log -> seq`: the last entry of `log` whose record's objects are in [`OBJECTS`].
const APPLIED: TableDefinition<&str, u64> = TableDefinition::new("log_objects_applied");

/// The embedded store: a redb database, `store.redb`, for objects, and one
/// append-only file per log in `logs/` ([`log_file`]), in a directory of its own.
///
/// Every object write is one redb write transaction committed with
/// [`Durability::Immediate`], so it is on disk when the call returns. redb allows one
/// writer at a time, which makes `put_if_absent` atomic; reads run alongside writes on
/// their own snapshot. A log append is one record written to the log's file and synced,
/// under that log's lock (which makes the check of its number atomic); the objects of
/// [`Store::log_append_with_objects`] go into the record, then into redb, and back
/// into redb on open if a crash came in between. redb and the files are synchronous,
/// so every call runs on tokio's blocking thread pool.
///
/// Only one process may have the store open at a time (redb locks the file); a second
/// [`open`](EmbeddedStore::open) fails with a clear [`StoreError::Backend`].
pub struct EmbeddedStore {
    /// The open database; `None` while it is being reopened after an I/O error (or
    /// when reopening failed: the next operation tries again).
    db: Arc<RwLock<Option<Arc<Database>>>>,
    path: PathBuf,
    logs: Arc<Logs>,
}

/// One log's file: where it is, and the file as scanned; `None` after a write that
/// could not be undone, until it is opened again from there.
struct LogSlot {
    path: PathBuf,
    file: Option<LogFile>,
}

impl LogSlot {
    fn shared(file: LogFile) -> Arc<Mutex<LogSlot>> {
        Arc::new(Mutex::new(LogSlot {
            path: file.path().to_owned(),
            file: Some(file),
        }))
    }
}

/// The store's log files.
struct Logs {
    directory: Mutex<LogDirectory>,
    files: RwLock<HashMap<String, Arc<Mutex<LogSlot>>>>,
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
        txn.open_table(APPLIED).map_err(|e| redb_error("open", e))?;
        txn.commit().map_err(|e| redb_error("open", e))?;
        let logs = Logs::open(&dir.join(log_file::LOGS_DIR), &db)?;
        // Make the new file's directory entry durable too.
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("sync the store directory", e))?;

        tracing::info!(path = %path.display(), "embedded store opened");
        Ok(Self {
            db: Arc::new(RwLock::new(Some(Arc::new(db)))),
            path,
            logs: Arc::new(logs),
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
            if let Err(StoreError::Io { operation, .. }) = &result
                && !log_file::is_log_file_operation(operation)
            {
                drop(db);
                reopen(&shared, &path);
            }
            result
        })
        .await
        .map_err(|e| join_error(operation, e))?
    }

    /// Runs a short read on the calling thread. A lookup in redb is a walk of a few
    /// pages already in memory or in the page cache, cheaper than the hop to the
    /// blocking pool and back (two thread wake-ups), which the node's releases paid on
    /// every request. While the database is closed after an I/O error, and to reopen
    /// it after one, the read goes through [`Self::blocking`] as every other operation.
    async fn read<T, F>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let open = self
            .db
            .read()
            .map_err(|_| lock_error(operation))?
            .as_ref()
            .map(Arc::clone);
        let Some(db) = open else {
            return self.blocking(operation, f).await;
        };
        let result = f(&db);
        drop(db);
        if let Err(StoreError::Io { .. }) = &result {
            let (shared, path) = (Arc::clone(&self.db), self.path.clone());
            let _ = tokio::task::spawn_blocking(move || reopen(&shared, &path)).await;
        }
        result
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

/// Upserts each record's objects into redb and notes the record as applied, in one
/// durable transaction.
fn apply_objects(
    db: &Database,
    log: &str,
    records: &[log_file::RecordObjects],
) -> Result<(), StoreError> {
    let op = "log_append";
    let Some(last) = records.last() else {
        return Ok(());
    };
    let txn = begin_write(db, op)?;
    {
        let mut table = txn.open_table(OBJECTS).map_err(err(op))?;
        for o in records.iter().flat_map(|r| &r.objects) {
            table
                .insert((o.ns.as_str(), o.key.as_str()), o.value.as_slice())
                .map_err(err(op))?;
        }
        let mut applied = txn.open_table(APPLIED).map_err(err(op))?;
        applied.insert(log, last.seq).map_err(err(op))?;
    }
    txn.commit().map_err(err(op))
}

/// Opens `log`'s file again from disk, and applies what a crash left unapplied.
fn load_log(db: &Database, path: &Path, log: &str) -> Result<LogFile, StoreError> {
    let (file, scanned) = LogFile::open(path)?;
    if scanned.name != log {
        return Err(StoreError::Backend {
            backend: BACKEND,
            operation: "open a log file",
            message: format!("{} no longer holds log {log:?}", path.display()),
        });
    }
    apply_pending(db, log, &scanned.objects)?;
    Ok(file)
}

/// Applies the records of `log` whose objects redb does not hold yet.
fn apply_pending(
    db: &Database,
    log: &str,
    records: &[log_file::RecordObjects],
) -> Result<(), StoreError> {
    let op = "open";
    let applied = {
        let txn = db.begin_read().map_err(err(op))?;
        let table = txn.open_table(APPLIED).map_err(err(op))?;
        table.get(log).map_err(err(op))?.map(|v| v.value())
    };
    let pending: Vec<_> = records
        .iter()
        .filter(|r| applied.is_none_or(|applied| r.seq > applied))
        .cloned()
        .collect();
    if !pending.is_empty() {
        tracing::warn!(
            log,
            records = pending.len(),
            "writing the objects of log records a crash left unapplied"
        );
    }
    apply_objects(db, log, &pending)
}

/// Most bytes of entries moved into one record when a log leaves redb.
const MIGRATION_RECORD_BYTES: usize = 16 * 1024 * 1024;

impl Logs {
    /// Opens the log files in `dir`, moves logs still in redb's [`LOGS`] table into
    /// files of their own, and applies what a crash left unapplied.
    fn open(dir: &Path, db: &Database) -> Result<Self, StoreError> {
        let (mut directory, opened) = LogDirectory::open(dir)?;
        let mut files = HashMap::new();
        for (file, scanned) in opened {
            apply_pending(db, &scanned.name, &scanned.objects)?;
            files.insert(scanned.name, file);
        }
        // Logs a store written before the files still holds in redb. A crash part way
        // leaves the rows in place: the file is continued from its last entry.
        let op = "move logs out of the database";
        let in_redb: Vec<String> = {
            let txn = db.begin_read().map_err(err(op))?;
            let table = txn.open_table(LOGS).map_err(err(op))?;
            let mut names = Vec::new();
            let mut next = table.first().map_err(err(op))?;
            while let Some((key, _)) = next {
                let name = key.value().0.to_owned();
                // Numbers stop at MAX_SEQ, so this starts at the next log's first row.
                next = table
                    .range((name.as_str(), u64::MAX)..)
                    .map_err(err(op))?
                    .next()
                    .transpose()
                    .map_err(err(op))?;
                names.push(name);
            }
            names
        };
        for name in in_redb {
            let file = match files.remove(&name) {
                Some(file) => file,
                None => directory.create(&name)?,
            };
            let file = migrate(db, &name, file)?;
            files.insert(name, file);
        }
        Ok(Self {
            directory: Mutex::new(directory),
            files: RwLock::new(
                files
                    .into_iter()
                    .map(|(name, file)| (name, LogSlot::shared(file)))
                    .collect(),
            ),
        })
    }

    /// `log`'s slot; with `create`, a new file for it if it has none.
    fn slot(&self, log: &str, create: bool) -> Result<Option<Arc<Mutex<LogSlot>>>, StoreError> {
        let poisoned = || lock_error("log");
        if let Some(slot) = self.files.read().map_err(|_| poisoned())?.get(log) {
            return Ok(Some(Arc::clone(slot)));
        }
        if !create {
            return Ok(None);
        }
        let mut directory = self.directory.lock().map_err(|_| poisoned())?;
        if let Some(slot) = self.files.read().map_err(|_| poisoned())?.get(log) {
            return Ok(Some(Arc::clone(slot)));
        }
        let slot = LogSlot::shared(directory.create(log)?);
        self.files
            .write()
            .map_err(|_| poisoned())?
            .insert(log.to_owned(), Arc::clone(&slot));
        Ok(Some(slot))
    }

    /// Runs `f` on `log`'s file (`None`: the log has no entries), opening it again
    /// first if a failed write left it unusable.
    fn with<T>(
        &self,
        db: &Database,
        log: &str,
        create: bool,
        f: impl FnOnce(Option<&mut LogFile>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(slot) = self.slot(log, create)? else {
            return f(None);
        };
        let mut slot = slot.lock().map_err(|_| lock_error("log"))?;
        if slot.file.is_none() {
            slot.file = Some(load_log(db, &slot.path, log)?);
        }
        let result = f(slot.file.as_mut());
        if slot.file.as_ref().is_some_and(LogFile::broken) {
            slot.file = None;
        }
        result
    }
}

/// Appends the rows redb still holds for `log` after what `file` holds, a record of at
/// most [`MIGRATION_RECORD_BYTES`] at a time, then removes them (and notes their
/// objects, written with them in the old layout, as applied).
fn migrate(db: &Database, log: &str, mut file: LogFile) -> Result<LogFile, StoreError> {
    let op = "move logs out of the database";
    loop {
        let first = file.next_seq();
        let mut rows: Vec<Vec<u8>> = Vec::new();
        {
            let txn = db.begin_read().map_err(err(op))?;
            let table = txn.open_table(LOGS).map_err(err(op))?;
            let mut bytes = 0;
            for item in table
                .range((log, first)..=(log, u64::MAX))
                .map_err(err(op))?
            {
                let (key, value) = item.map_err(err(op))?;
                let expected = first + rows.len() as u64;
                if key.value().1 != expected {
                    return Err(StoreError::Backend {
                        backend: BACKEND,
                        operation: op,
                        message: format!(
                            "log {log:?} in the database skips from {expected} to {}",
                            key.value().1
                        ),
                    });
                }
                bytes += value.value().len();
                rows.push(value.value().to_vec());
                if bytes >= MIGRATION_RECORD_BYTES || rows.len() == limits::MAX_BATCH_ENTRIES {
                    break;
                }
            }
        }
        if rows.is_empty() {
            break;
        }
        let views: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
        file.append(&views, &[])?;
    }
    let txn = begin_write(db, op)?;
    {
        let mut table = txn.open_table(LOGS).map_err(err(op))?;
        table
            .retain_in((log, 0)..=(log, u64::MAX), |_, _| false)
            .map_err(err(op))?;
        if let Some(last) = file.next_seq().checked_sub(1) {
            let mut applied = txn.open_table(APPLIED).map_err(err(op))?;
            applied.insert(log, last).map_err(err(op))?;
        }
    }
    txn.commit().map_err(err(op))?;
    tracing::info!(
        log,
        entries = file.next_seq(),
        "log moved out of the database into its own file"
    );
    Ok(file)
}

impl EmbeddedStore {
    /// Appends `entries` to `log` from `seq` and upserts `objects` (only with one
    /// entry), durable together; a `seq` other than the log's next one writes nothing.
    /// Arguments are checked against the limits by the caller.
    async fn append(
        &self,
        log: &str,
        seq: u64,
        entries: Vec<Vec<u8>>,
        objects: Vec<StoredObject>,
    ) -> Result<(), StoreError> {
        let log = log.to_owned();
        let logs = Arc::clone(&self.logs);
        self.blocking("log_append", move |db| {
            logs.with(db, &log, seq == 0, |file| {
                let expected = file.as_ref().map_or(0, |f| f.next_seq());
                let Some(file) = file.filter(|_| seq == expected) else {
                    return Err(StoreError::Conflict {
                        log: log.clone(),
                        expected,
                        attempted: seq,
                    });
                };
                let views: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
                file.append(&views, &objects)?;
                if objects.is_empty() {
                    return Ok(());
                }
                let record = [log_file::RecordObjects { seq, objects }];
                if let Err(e) = apply_objects(db, &log, &record) {
                    // Not acknowledged: the record goes too, or the file is opened
                    // again (and the record applied) before the log is used again.
                    file.undo_last()?;
                    return Err(e);
                }
                Ok(())
            })
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
        self.read("get", move |db| {
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
        let logs = Arc::clone(&self.logs);
        self.blocking("log_read", move |db| {
            logs.with(db, &log, false, |file| {
                file.map_or(Ok(Vec::new()), |f| f.read(from, limit))
            })
        })
        .await
    }

    async fn log_last(&self, log: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        limits::check_log_name(log)?;
        let log = log.to_owned();
        let logs = Arc::clone(&self.logs);
        self.blocking("log_last", move |db| {
            logs.with(db, &log, false, |file| file.map_or(Ok(None), |f| f.last()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A store written in the old layout: `rows` entries of `log` in redb.
    fn old_layout(dir: &Path, log: &str, rows: u64) {
        std::fs::create_dir_all(dir).unwrap();
        let db = create_database(&dir.join(DB_FILE_NAME)).unwrap();
        let txn = begin_write(&db, "test").unwrap();
        {
            txn.open_table(OBJECTS).unwrap();
            let mut table = txn.open_table(LOGS).unwrap();
            for seq in 0..rows {
                table
                    .insert((log, seq), format!("entry {seq}").as_bytes())
                    .unwrap();
            }
            // Another log's rows around it, which must not be mixed in.
            table.insert(("a", 0), &b"other"[..]).unwrap();
            table.insert(("z", 0), &b"other"[..]).unwrap();
        }
        txn.commit().unwrap();
    }

    fn entries(n: u64) -> Vec<(u64, Vec<u8>)> {
        (0..n)
            .map(|s| (s, format!("entry {s}").into_bytes()))
            .collect()
    }

    #[test]
    fn logs_kept_in_the_database_move_to_files_and_go_on() {
        let dir = tempfile::tempdir().unwrap();
        old_layout(dir.path(), "audit", 5000);
        runtime().block_on(async {
            let store = EmbeddedStore::open(dir.path()).await.unwrap();
            assert_eq!(
                store.log_read("audit", 0, 10_000).await.unwrap(),
                entries(5000)
            );
            assert_eq!(
                store.log_read("a", 0, 10).await.unwrap(),
                [(0, b"other".to_vec())]
            );
            assert_eq!(
                store.log_read("z", 0, 10).await.unwrap(),
                [(0, b"other".to_vec())]
            );
            store
                .log_append("audit", 5000, b"entry 5000")
                .await
                .unwrap();
            drop(store);
            let store = EmbeddedStore::open(dir.path()).await.unwrap();
            assert_eq!(
                store.log_read("audit", 0, 10_000).await.unwrap(),
                entries(5001)
            );
        });
        let db = create_database(&dir.path().join(DB_FILE_NAME)).unwrap();
        let txn = db.begin_read().unwrap();
        assert!(txn.open_table(LOGS).unwrap().first().unwrap().is_none());
    }

    #[test]
    fn a_move_cut_short_by_a_crash_is_finished_on_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        old_layout(dir.path(), "audit", 10);
        // The crash: the file holds the first four entries, the rows are still there.
        let (mut logs, _) = LogDirectory::open(&dir.path().join(log_file::LOGS_DIR)).unwrap();
        let mut file = logs.create("audit").unwrap();
        let first: Vec<Vec<u8>> = (0..4).map(|s| format!("entry {s}").into_bytes()).collect();
        let views: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
        file.append(&views, &[]).unwrap();
        drop(file);
        runtime().block_on(async {
            let store = EmbeddedStore::open(dir.path()).await.unwrap();
            assert_eq!(store.log_read("audit", 0, 100).await.unwrap(), entries(10));
            assert_eq!(
                store.log_last("audit").await.unwrap(),
                Some((9, b"entry 9".to_vec()))
            );
        });
    }

    #[test]
    fn objects_a_crash_left_unapplied_are_written_on_open_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let store = EmbeddedStore::open(dir.path()).await.unwrap();
            let object = |key: &str, value: &[u8]| StoredObject {
                ns: "records".into(),
                key: key.into(),
                value: value.to_vec(),
            };
            store
                .log_append_with_objects("journal", 0, b"j0", &[object("x", b"1")])
                .await
                .unwrap();
            // A later write of the same key wins over the record on every open.
            store.put("records", "x", b"2").await.unwrap();
            drop(store);
            // The crash: a record with objects made durable, redb never told.
            let path = dir.path().join(log_file::LOGS_DIR).join("00000001.vlog");
            let raw = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let end = log_file::scan(&raw).unwrap().end;
            std::os::unix::fs::FileExt::write_all_at(
                &raw,
                &log_file::encode_record(1, &[b"j1"], &[object("y", b"3")]),
                end,
            )
            .unwrap();
            drop(raw);
            let store = EmbeddedStore::open(dir.path()).await.unwrap();
            assert_eq!(
                store.get("records", "x").await.unwrap(),
                Some(b"2".to_vec())
            );
            assert_eq!(
                store.get("records", "y").await.unwrap(),
                Some(b"3".to_vec())
            );
            assert_eq!(
                store.log_last("journal").await.unwrap(),
                Some((1, b"j1".to_vec()))
            );
            store.put("records", "y", b"4").await.unwrap();
            drop(store);
            let store = EmbeddedStore::open(dir.path()).await.unwrap();
            assert_eq!(
                store.get("records", "y").await.unwrap(),
                Some(b"4".to_vec())
            );
        });
    }

    #[test]
    fn a_damaged_log_file_stops_the_open_with_its_name_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let store = EmbeddedStore::open(dir.path()).await.unwrap();
            for seq in 0..3 {
                store.log_append("audit", seq, b"entry").await.unwrap();
            }
            drop(store);
            let path = dir.path().join(log_file::LOGS_DIR).join("00000001.vlog");
            let mut bytes = std::fs::read(&path).unwrap();
            let header = log_file::encode_header("audit").len();
            bytes[header + log_file::RECORD_HEADER_LEN + 20] ^= 1;
            std::fs::write(&path, &bytes).unwrap();
            let err = EmbeddedStore::open(dir.path()).await.unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains("00000001.vlog") && message.contains(&format!("offset {header}")),
                "{message}"
            );
            // Nothing was cut: the bytes are as they were.
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        });
    }
}
