//! The PostgreSQL backend, for several nodes that share state.

use std::fmt;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, config::Host};

use crate::postgres_tls::TlsMode;
use crate::{Store, StoreError, StoredObject, limits};

const BACKEND: &str = "postgres";

/// Connections per store (per node).
const POOL_SIZE: usize = 8;
/// How long a new connection may take before the server counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for a free pooled connection.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Serializes schema creation between nodes opening the same database at once
/// (`CREATE TABLE IF NOT EXISTS` alone races). Any constant; this is "veritee".
const SCHEMA_LOCK_ID: i64 = 0x0076_6572_6974_6565;

/// Keys and names sort by their bytes (collation "C"), the same order as the embedded
/// store and as Rust's `str`.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS veritee_objects (
    ns    text COLLATE "C" NOT NULL,
    key   text COLLATE "C" NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (ns, key)
);
CREATE TABLE IF NOT EXISTS veritee_logs (
    log   text COLLATE "C" NOT NULL,
    seq   bigint NOT NULL CHECK (seq >= 0),
    entry bytea NOT NULL,
    PRIMARY KEY (log, seq)
);
"#;

const PUT: &str = "INSERT INTO veritee_objects (ns, key, value) VALUES ($1, $2, $3) \
                   ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value";
const PUT_IF_ABSENT: &str = "INSERT INTO veritee_objects (ns, key, value) VALUES ($1, $2, $3) \
                             ON CONFLICT (ns, key) DO NOTHING";
const GET: &str = "SELECT value FROM veritee_objects WHERE ns = $1 AND key = $2";
const DELETE: &str = "DELETE FROM veritee_objects WHERE ns = $1 AND key = $2";
// list: a lower bound (inclusive: the prefix; exclusive: the cursor) and, unless the
// prefix is empty, an exclusive upper bound (the prefix's successor), so that the
// primary key index serves the whole query.
const LIST_FROM: &str = "SELECT key FROM veritee_objects WHERE ns = $1 AND key >= $2 \
                         ORDER BY key LIMIT $3";
const LIST_AFTER: &str = "SELECT key FROM veritee_objects WHERE ns = $1 AND key > $2 \
                          ORDER BY key LIMIT $3";
const LIST_FROM_TO: &str = "SELECT key FROM veritee_objects WHERE ns = $1 AND key >= $2 \
                            AND key < $4 ORDER BY key LIMIT $3";
const LIST_AFTER_TO: &str = "SELECT key FROM veritee_objects WHERE ns = $1 AND key > $2 \
                             AND key < $4 ORDER BY key LIMIT $3";
// One statement, so one transaction: the row is inserted only if `seq` is the log's
// next number in this statement's snapshot. Two appenders of the same number both
// pass that check, and the primary key then lets only one of them commit; the other
// gets a unique violation. An appender that sees an older state can only fail (its
// number is then ahead of the snapshot's), so no gap can ever be written.
const LOG_APPEND: &str = "INSERT INTO veritee_logs (log, seq, entry) \
                          SELECT $1::text, $2::bigint, $3::bytea \
                          WHERE COALESCE((SELECT max(seq) FROM veritee_logs WHERE log = $1::text), -1) + 1 \
                              = $2::bigint";
// The log append above, and the objects (as three arrays) stored only if it appended.
const LOG_APPEND_WITH_OBJECTS: &str = "WITH appended AS ( \
        INSERT INTO veritee_logs (log, seq, entry) \
        SELECT $1::text, $2::bigint, $3::bytea \
        WHERE COALESCE((SELECT max(seq) FROM veritee_logs WHERE log = $1::text), -1) + 1 \
            = $2::bigint \
        RETURNING 1), \
    stored AS ( \
        INSERT INTO veritee_objects (ns, key, value) \
        SELECT o.ns, o.key, o.value \
        FROM unnest($4::text[], $5::text[], $6::bytea[]) AS o(ns, key, value) \
        WHERE EXISTS (SELECT 1 FROM appended) \
        ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value \
        RETURNING 1) \
    SELECT (SELECT count(*) FROM appended), (SELECT count(*) FROM stored)";
// The log append above for several entries, numbered from $2 in the array's order.
const LOG_APPEND_ENTRIES: &str = "INSERT INTO veritee_logs (log, seq, entry) \
                          SELECT $1::text, $2::bigint + e.n - 1, e.entry \
                          FROM unnest($3::bytea[]) WITH ORDINALITY AS e(entry, n) \
                          WHERE COALESCE((SELECT max(seq) FROM veritee_logs WHERE log = $1::text), -1) + 1 \
                              = $2::bigint";
const LOG_MAX: &str = "SELECT max(seq) FROM veritee_logs WHERE log = $1";
const LOG_READ: &str = "SELECT seq, entry FROM veritee_logs WHERE log = $1 AND seq >= $2 \
                        ORDER BY seq LIMIT $3";
const LOG_LAST: &str = "SELECT seq, entry FROM veritee_logs WHERE log = $1 \
                        ORDER BY seq DESC LIMIT 1";

/// The PostgreSQL store: tables `veritee_objects` and `veritee_logs` (created at
/// [`connect`](PostgresStore::connect) if absent, in the first schema of the
/// connection's `search_path`), reached through a small connection pool.
///
/// Several nodes may share one database: `put_if_absent` and `log_append` are single
/// atomic statements, so exactly one of several racing callers wins. Writes are durable
/// on `Ok` as far as the server's configuration makes commits durable (the default,
/// `synchronous_commit = on`, does).
///
/// Connections are made without TLS (this crate takes no TLS dependency): use a
/// Unix socket, the loopback interface or an otherwise protected network. The stored
/// values are sealed by the enclave, so the wire carries no plaintext secret either way.
pub struct PostgresStore {
    pool: Pool,
    address: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// `host:port` of every host in `config`, comma-separated; never the password.
fn describe_address(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            // libpq rules: one port for every host, or one port per host.
            let port = match ports.len() {
                0 => 5432,
                1 => ports[0],
                _ => ports.get(i).copied().unwrap_or(5432),
            };
            match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect();
    if hosts.is_empty() {
        "(no host in the URL)".into()
    } else {
        hosts.join(",")
    }
}

/// Whether a server-reported error means the connection or server is going away.
fn is_unavailable_state(code: &SqlState) -> bool {
    code.code().starts_with("08") // connection exception
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
}

/// One plain client of the database at `url`, over the TLS the URL asks for, exactly
/// as the store connects: for tools and tests that need SQL the store does not offer.
/// Its connection runs on the current tokio runtime.
pub async fn connect_client(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let (url, tls) = crate::postgres_tls::split_tls_params(url)?;
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| StoreError::InvalidInput(e.to_string()))?;
    let address = describe_address(&config);
    let failed = |e: tokio_postgres::Error| StoreError::Unavailable {
        backend: BACKEND,
        address: address.clone(),
        operation: "connect",
        message: e.to_string(),
    };
    match tls {
        TlsMode::Disable => {
            let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
            tokio::spawn(connection);
            Ok(client)
        }
        TlsMode::VerifyFull { root_cert } => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let connector = crate::postgres_tls::connector(&root_cert)?;
            let (client, connection) = config.connect(connector).await.map_err(failed)?;
            tokio::spawn(connection);
            Ok(client)
        }
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or
    /// `postgresql://...`, with libpq-style parameters), creates the tables if absent,
    /// and keeps a pool of up to 8 connections. `sslmode=verify-full&sslrootcert=FILE`
    /// connects over TLS, checking the server against that CA
    /// (other TLS modes are refused, saying why: none of them checks who answers).
    ///
    /// A server that cannot be reached is [`StoreError::Unavailable`], naming its
    /// `host:port`; a malformed URL is [`StoreError::InvalidInput`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (url, tls) = crate::postgres_tls::split_tls_params(url)?;
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| {
                let cause = std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                StoreError::InvalidInput(format!("the PostgreSQL URL does not parse{cause}"))
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("veritee-store");
        }
        let address = describe_address(&config);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            TlsMode::Disable => Manager::from_config(config, NoTls, manager_config),
            TlsMode::VerifyFull { root_cert } => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let connector = crate::postgres_tls::connector(&root_cert)?;
                Manager::from_config(config, connector, manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Backend {
                backend: BACKEND,
                operation: "open",
                message: format!("cannot build the connection pool: {e}"),
            })?;
        let store = Self { pool, address };
        store.create_schema().await?;
        tracing::info!(address = %store.address, "postgres store opened");
        Ok(store)
    }

    async fn create_schema(&self) -> Result<(), StoreError> {
        let op = "open (create tables)";
        let mut client = self.client(op).await?;
        let txn = client.transaction().await.map_err(|e| self.error(op, e))?;
        txn.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_ID])
            .await
            .map_err(|e| self.error(op, e))?;
        txn.batch_execute(SCHEMA)
            .await
            .map_err(|e| self.error(op, e))?;
        txn.commit().await.map_err(|e| self.error(op, e))
    }

    /// Where the server is, as `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    async fn client(
        &self,
        operation: &'static str,
    ) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => self.error(operation, e),
            PoolError::Timeout(kind) => self.unavailable(
                operation,
                format!("timed out ({kind:?}) waiting for a database connection"),
            ),
            other => StoreError::Backend {
                backend: BACKEND,
                operation,
                message: format!("connection pool: {other}"),
            },
        })
    }

    fn unavailable(&self, operation: &'static str, message: String) -> StoreError {
        StoreError::Unavailable {
            backend: BACKEND,
            address: self.address.clone(),
            operation,
            message,
        }
    }

    /// Maps a driver error. Server errors keep only their message and SQLSTATE: their
    /// DETAIL may quote a row, and so a key or value.
    /// A pooled connection and its cached statement for `sql`.
    async fn prepared(
        &self,
        operation: &'static str,
        sql: &str,
    ) -> Result<(deadpool_postgres::Object, tokio_postgres::Statement), StoreError> {
        let client = self.client(operation).await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.error(operation, e))?;
        Ok((client, stmt))
    }

    fn error(&self, operation: &'static str, error: tokio_postgres::Error) -> StoreError {
        if let Some(db) = error.as_db_error() {
            let message = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            return if is_unavailable_state(db.code()) {
                self.unavailable(operation, message)
            } else {
                StoreError::Backend {
                    backend: BACKEND,
                    operation,
                    message,
                }
            };
        }
        let source = std::error::Error::source(&error);
        let message = match source {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        };
        let lost = error.is_closed()
            || source.is_some_and(|s| s.is::<std::io::Error>())
            || message.starts_with("timeout");
        if lost {
            self.unavailable(operation, message)
        } else {
            StoreError::Backend {
                backend: BACKEND,
                operation,
                message,
            }
        }
    }

    /// The log's next sequence number, for a [`StoreError::Conflict`].
    async fn expected_seq(
        &self,
        client: &deadpool_postgres::Object,
        log: &str,
    ) -> Result<u64, StoreError> {
        let op = "log_append";
        let stmt = client
            .prepare_cached(LOG_MAX)
            .await
            .map_err(|e| self.error(op, e))?;
        let row = client
            .query_one(&stmt, &[&log])
            .await
            .map_err(|e| self.error(op, e))?;
        let max: Option<i64> = row.try_get(0).map_err(|e| self.error(op, e))?;
        Ok(max.map_or(0, |m| m as u64 + 1))
    }
}

/// The smallest string greater than every string starting with `prefix`, or `None` for
/// the empty prefix. Keys are printable ASCII, so the last byte is at most 0x7E and
/// incrementing it stays ASCII.
fn prefix_successor(prefix: &str) -> Option<String> {
    let last = *prefix.as_bytes().last()?;
    let mut successor = prefix[..prefix.len() - 1].to_owned();
    successor.push(char::from(last + 1));
    Some(successor)
}

fn sql_limit(limit: usize) -> i64 {
    // At most MAX_LIMIT, checked before.
    limit as i64
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn kind(&self) -> &'static str {
        BACKEND
    }

    async fn put(&self, ns: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        limits::check_ns(ns)?;
        limits::check_key(key)?;
        limits::check_value(value)?;
        let op = "put";
        let (client, stmt) = self.prepared(op, PUT).await?;
        client
            .execute(&stmt, &[&ns, &key, &value])
            .await
            .map_err(|e| self.error(op, e))?;
        Ok(())
    }

    async fn put_if_absent(&self, ns: &str, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        limits::check_ns(ns)?;
        limits::check_key(key)?;
        limits::check_value(value)?;
        let op = "put_if_absent";
        let (client, stmt) = self.prepared(op, PUT_IF_ABSENT).await?;
        let inserted = client
            .execute(&stmt, &[&ns, &key, &value])
            .await
            .map_err(|e| self.error(op, e))?;
        Ok(inserted == 1)
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        limits::check_ns(ns)?;
        limits::check_key(key)?;
        let op = "get";
        let (client, stmt) = self.prepared(op, GET).await?;
        let row = client
            .query_opt(&stmt, &[&ns, &key])
            .await
            .map_err(|e| self.error(op, e))?;
        row.map(|row| row.try_get::<_, Vec<u8>>(0))
            .transpose()
            .map_err(|e| self.error(op, e))
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
        let op = "list";
        // Start at the prefix, or just after the cursor if that is later.
        let (lower, exclusive) = match after {
            Some(after) if after >= prefix => (after, true),
            _ => (prefix, false),
        };
        let upper = prefix_successor(prefix);
        let sql = match (exclusive, upper.is_some()) {
            (false, false) => LIST_FROM,
            (true, false) => LIST_AFTER,
            (false, true) => LIST_FROM_TO,
            (true, true) => LIST_AFTER_TO,
        };
        let limit = sql_limit(limit);
        let (client, stmt) = self.prepared(op, sql).await?;
        let rows = match &upper {
            Some(upper) => client.query(&stmt, &[&ns, &lower, &limit, upper]).await,
            None => client.query(&stmt, &[&ns, &lower, &limit]).await,
        }
        .map_err(|e| self.error(op, e))?;
        rows.iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(op, e))
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool, StoreError> {
        limits::check_ns(ns)?;
        limits::check_key(key)?;
        let op = "delete";
        let (client, stmt) = self.prepared(op, DELETE).await?;
        let deleted = client
            .execute(&stmt, &[&ns, &key])
            .await
            .map_err(|e| self.error(op, e))?;
        Ok(deleted > 0)
    }

    async fn log_append_with_objects(
        &self,
        log: &str,
        seq: u64,
        entry: &[u8],
        objects: &[StoredObject],
    ) -> Result<(), StoreError> {
        if objects.is_empty() {
            return self.log_append(log, seq, entry).await;
        }
        limits::check_log_name(log)?;
        limits::check_seq(seq)?;
        limits::check_value(entry)?;
        for o in objects {
            limits::check_ns(&o.ns)?;
            limits::check_key(&o.key)?;
            limits::check_value(&o.value)?;
        }
        let op = "log_append";
        let seq_sql = seq as i64; // at most MAX_SEQ = i64::MAX, checked above
        // One statement, so one round trip and its own transaction. Within a statement
        // a row can be written once: of objects under the same name, the last one wins
        // (as it would written in turn).
        let mut last = std::collections::HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            last.insert((o.ns.as_str(), o.key.as_str()), i);
        }
        let kept: Vec<&StoredObject> = objects
            .iter()
            .enumerate()
            .filter(|(i, o)| last.get(&(o.ns.as_str(), o.key.as_str())) == Some(i))
            .map(|(_, o)| o)
            .collect();
        let ns: Vec<&str> = kept.iter().map(|o| o.ns.as_str()).collect();
        let keys: Vec<&str> = kept.iter().map(|o| o.key.as_str()).collect();
        let values: Vec<&[u8]> = kept.iter().map(|o| o.value.as_slice()).collect();
        let (client, stmt) = self.prepared(op, LOG_APPEND_WITH_OBJECTS).await?;
        let appended = match client
            .query_one(&stmt, &[&log, &seq_sql, &entry, &ns, &keys, &values])
            .await
        {
            Ok(row) => row.try_get::<_, i64>(0).map_err(|e| self.error(op, e))? == 1,
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => false,
            Err(e) => return Err(self.error(op, e)),
        };
        if appended {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                log: log.to_owned(),
                expected: self.expected_seq(&client, log).await?,
                attempted: seq,
            })
        }
    }

    async fn log_append(&self, log: &str, seq: u64, entry: &[u8]) -> Result<(), StoreError> {
        limits::check_log_name(log)?;
        limits::check_seq(seq)?;
        limits::check_value(entry)?;
        let op = "log_append";
        let seq_sql = seq as i64; // at most MAX_SEQ = i64::MAX, checked above
        let (client, stmt) = self.prepared(op, LOG_APPEND).await?;
        match client.execute(&stmt, &[&log, &seq_sql, &entry]).await {
            Ok(1) => Ok(()),
            Ok(_) => Err(StoreError::Conflict {
                log: log.to_owned(),
                expected: self.expected_seq(&client, log).await?,
                attempted: seq,
            }),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Conflict {
                log: log.to_owned(),
                expected: self.expected_seq(&client, log).await?,
                attempted: seq,
            }),
            Err(e) => Err(self.error(op, e)),
        }
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
        let op = "log_append";
        let seq_sql = seq as i64; // at most MAX_SEQ = i64::MAX, checked above
        let (client, stmt) = self.prepared(op, LOG_APPEND_ENTRIES).await?;
        match client.execute(&stmt, &[&log, &seq_sql, &entries]).await {
            Ok(n) if n == entries.len() as u64 => return Ok(()),
            // One statement: it inserted all its rows or none, so this is a conflict.
            Ok(_) => {}
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
            Err(e) => return Err(self.error(op, e)),
        }
        Err(StoreError::Conflict {
            log: log.to_owned(),
            expected: self.expected_seq(&client, log).await?,
            attempted: seq,
        })
    }

    async fn log_read(
        &self,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        limits::check_log_name(log)?;
        limits::check_limit(limit)?;
        // No entry has a number above MAX_SEQ.
        let Ok(from) = i64::try_from(from) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let op = "log_read";
        let limit = sql_limit(limit);
        let (client, stmt) = self.prepared(op, LOG_READ).await?;
        let rows = client
            .query(&stmt, &[&log, &from, &limit])
            .await
            .map_err(|e| self.error(op, e))?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<_, i64>(0)? as u64,
                    row.try_get::<_, Vec<u8>>(1)?,
                ))
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.error(op, e))
    }

    async fn log_last(&self, log: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        limits::check_log_name(log)?;
        let op = "log_last";
        let (client, stmt) = self.prepared(op, LOG_LAST).await?;
        let row = client
            .query_opt(&stmt, &[&log])
            .await
            .map_err(|e| self.error(op, e))?;
        row.map(|row| {
            Ok((
                row.try_get::<_, i64>(0)? as u64,
                row.try_get::<_, Vec<u8>>(1)?,
            ))
        })
        .transpose()
        .map_err(|e: tokio_postgres::Error| self.error(op, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_the_prefix() {
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a").as_deref(), Some("b"));
        assert_eq!(prefix_successor("x~").as_deref(), Some("x\u{7f}"));
        assert_eq!(prefix_successor("ab ").as_deref(), Some("ab!"));
    }

    #[test]
    fn address_names_host_and_port_but_not_the_password() {
        let config: tokio_postgres::Config =
            "postgres://u:CANARY@db.example:6543/x".parse().unwrap();
        let address = describe_address(&config);
        assert_eq!(address, "db.example:6543");
        let config: tokio_postgres::Config = "postgresql://u@127.0.0.1/x".parse().unwrap();
        assert_eq!(describe_address(&config), "127.0.0.1:5432");
        let config: tokio_postgres::Config = "postgres://u@a:1,b:2/x".parse().unwrap();
        assert_eq!(describe_address(&config), "a:1,b:2");
    }
}
