//! The PostgreSQL store: the conformance suite, each test in a fresh schema of the
//! database named by `VERITEE_TEST_POSTGRES` (`bash .ci/postgres.sh` sets one up and
//! prints its URL), plus sharing between nodes, lost connections and crash durability.
//! Without the variable these tests print that they were skipped, and pass (unless
//! `VERITEE_REQUIRE_POSTGRES=1`, as `.ci/run` sets it: then they fail); the tests of an
//! unreachable server run regardless.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Barrier;
use tokio::task::JoinSet;
use veritee_store::conformance::{self, Fixture};
use veritee_store::{PostgresStore, Store, StoreError};

const URL_ENV: &str = "VERITEE_TEST_POSTGRES";

/// The test database's URL, or `None` after saying the test is skipped.
fn database_url(test: &str) -> Option<String> {
    match std::env::var(URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("VERITEE_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("{test}: VERITEE_REQUIRE_POSTGRES=1 but {URL_ENV} is not set")
        }
        _ => {
            // Once per run, and straight to stderr: libtest captures println! of
            // passing tests, and this line should show in every run's log.
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "PostgreSQL tests skipped: {URL_ENV} is not set (run `bash .ci/postgres.sh` \
                     and set {URL_ENV} to the URL it prints to run them)"
                );
            });
            println!("skipped {test}: {URL_ENV} is not set");
            None
        }
    }
}

async fn admin(url: &str) -> tokio_postgres::Client {
    veritee_store::connect_client(url)
        .await
        .expect("connect to the test database")
}

/// A schema name unique to this process and call.
fn unique_schema() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "vt_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with `schema` as the connection's search_path, so the store creates and uses
/// its tables there.
fn scoped_url(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}")
}

/// A fresh, empty schema; returns its name and the URL that uses it.
async fn fresh_schema(url: &str) -> (String, String) {
    let schema = unique_schema();
    admin(url)
        .await
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create the test schema");
    let scoped = scoped_url(url, &schema);
    (schema, scoped)
}

async fn drop_schema(url: &str, schema: &str) {
    admin(url)
        .await
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop the test schema");
}

async fn fixture(test: &str) -> Option<Fixture> {
    let url = database_url(test)?;
    let (schema, scoped) = fresh_schema(&url).await;
    Some(
        Fixture::new(move || {
            let scoped = scoped.clone();
            async move { veritee_store::open(&scoped).await }
        })
        .with_cleanup(async move { drop_schema(&url, &schema).await }),
    )
}

veritee_store::conformance_tests!(fixture);

#[tokio::test]
async fn unreachable_server_is_unavailable_naming_host_and_port() {
    for url in [
        "postgres://veritee:CANARY-password@127.0.0.1:1/veritee",
        "postgresql://veritee:CANARY-password@127.0.0.1:1/veritee?connect_timeout=5",
    ] {
        let err = veritee_store::open(url)
            .await
            .err()
            .expect("nothing listens on port 1");
        let message = err.to_string();
        assert!(
            matches!(&err, StoreError::Unavailable { backend: "postgres", address, .. } if address == "127.0.0.1:1"),
            "{message}"
        );
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(!message.contains("CANARY"), "{message}");
    }
}

#[tokio::test]
async fn malformed_url_is_invalid_input() {
    let err = veritee_store::open("postgres://u:CANARY@host:notaport/db")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    assert!(!err.to_string().contains("CANARY"), "{err}");
}

#[tokio::test]
async fn tables_live_in_the_connection_schema() {
    let Some(url) = database_url("tables_live_in_the_connection_schema") else {
        return;
    };
    let (schema, scoped) = fresh_schema(&url).await;
    // Nodes opening a fresh database at once all succeed (schema creation is serialized).
    let mut opens = JoinSet::new();
    for _ in 0..4 {
        let scoped = scoped.clone();
        opens.spawn(async move { PostgresStore::connect(&scoped).await.map(|_| ()) });
    }
    while let Some(opened) = opens.join_next().await {
        opened.unwrap().unwrap();
    }
    let client = admin(&url).await;
    let row = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 \
             AND table_name IN ('veritee_objects', 'veritee_logs')",
            &[&schema],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    let store = PostgresStore::connect(&scoped).await.unwrap();
    assert_eq!(store.address(), url_address(&url));
    drop_schema(&url, &schema).await;
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let query = path_and_query
        .find('?')
        .map_or("", |at| &path_and_query[at..]);
    format!("{scheme}://{authority}/{database}{query}")
}

/// Keys sort by their bytes even in a database whose default collation is a
/// linguistic one (ICU en-US sorts "_" before "0" before "a" before "A"): the store's
/// columns carry collation "C" themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_order_ignores_the_database_collation() {
    let Some(url) = database_url("key_order_ignores_the_database_collation") else {
        return;
    };
    let database = unique_schema();
    let created = admin(&url)
        .await
        .batch_execute(&format!(
            "CREATE DATABASE {database} TEMPLATE template0 ENCODING 'UTF8' \
             LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        ))
        .await;
    if let Err(e) = created {
        println!(
            "PostgreSQL collation test skipped: cannot create an ICU en-US database here ({})",
            e.as_db_error()
                .map_or(e.to_string(), |db| db.message().to_owned())
        );
        return;
    }
    let icu_url = with_database(&url, &database);
    let fixture = Fixture::new(move || {
        let icu_url = icu_url.clone();
        async move { veritee_store::open(&icu_url).await }
    });
    conformance::list_order_and_prefix(&fixture).await;
    conformance::list_pagination(&fixture).await;
    admin(&url)
        .await
        .batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .await
        .expect("drop the test database");
}

/// `host:port` of a plain `postgres://user:pw@host:port/db` URL.
fn url_address(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split(['/', '?']).next().unwrap();
    let host_port = authority.rsplit('@').next().unwrap();
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// Two nodes (two stores, two pools) on one database: racing appenders and creators
/// across them still have exactly one winner, and each sees the other's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_one_database() {
    let Some(url) = database_url("two_nodes_share_one_database") else {
        return;
    };
    let (schema, scoped) = fresh_schema(&url).await;
    let nodes: [Arc<dyn Store>; 2] = [
        veritee_store::open(&scoped).await.unwrap(),
        veritee_store::open(&scoped).await.unwrap(),
    ];
    const TASKS: u64 = 8;
    for seq in 0..10u64 {
        let barrier = Arc::new(Barrier::new(TASKS as usize));
        let mut tasks = JoinSet::new();
        for task in 0..TASKS {
            let node = Arc::clone(&nodes[(task % 2) as usize]);
            let barrier = Arc::clone(&barrier);
            tasks.spawn(async move {
                barrier.wait().await;
                let appended = node.log_append("shared", seq, &task.to_le_bytes()).await;
                let created = node
                    .put_if_absent("shared", &format!("k{seq}"), &task.to_le_bytes())
                    .await
                    .unwrap();
                (appended, created)
            });
        }
        let (mut appends, mut creates) = (0, 0);
        while let Some(joined) = tasks.join_next().await {
            let (appended, created) = joined.unwrap();
            match appended {
                Ok(()) => appends += 1,
                Err(StoreError::Conflict { expected, .. }) => assert_eq!(expected, seq + 1),
                Err(e) => panic!("{e}"),
            }
            creates += usize::from(created);
        }
        assert_eq!((appends, creates), (1, 1), "seq {seq}");
    }
    nodes[0].put("shared", "from-0", b"hello").await.unwrap();
    assert_eq!(
        nodes[1].get("shared", "from-0").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(nodes[1].log_last("shared").await.unwrap().unwrap().0, 9);
    drop(nodes);
    drop_schema(&url, &schema).await;
}

/// Connections the server drops are errors of kind Unavailable, never panics, and
/// the store recovers on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_unavailable_then_recover() {
    let Some(url) = database_url("dropped_connections_are_unavailable_then_recover") else {
        return;
    };
    let (schema, scoped) = fresh_schema(&url).await;
    let application = format!("{schema}_app");
    let store = veritee_store::open(&format!("{scoped}&application_name={application}"))
        .await
        .unwrap();
    // Use several pooled connections.
    let mut tasks = JoinSet::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.put("ns", &format!("k{i}"), b"v").await.unwrap() });
    }
    while tasks.join_next().await.is_some() {}

    let terminated = admin(&url)
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert!(terminated >= 1, "no connection of the store found");

    let mut unavailable = 0;
    let mut recovered = false;
    for _ in 0..20 {
        match store.get("ns", "k0").await {
            Ok(value) => {
                assert_eq!(value.as_deref(), Some(&b"v"[..]));
                recovered = true;
                break;
            }
            Err(StoreError::Unavailable { address, .. }) => {
                assert_eq!(address, url_address(&url));
                unavailable += 1;
            }
            Err(e) => panic!("expected Unavailable or success, got {e}"),
        }
    }
    assert!(
        recovered,
        "still failing after {unavailable} Unavailable errors"
    );
    println!(
        "{terminated} connections terminated: {unavailable} Unavailable errors, then recovered"
    );
    store.put("ns", "after", b"ok").await.unwrap();
    drop(store);
    drop_schema(&url, &schema).await;
}

/// Set in the child process of [`crash_durability`]: the scoped database URL.
const CRASH_CHILD_ENV: &str = "VERITEE_STORE_CRASH_CHILD_URL";

/// Child half of [`crash_durability`]; does nothing in a normal test run.
#[test]
fn crash_child_writer() {
    let Ok(url) = std::env::var(CRASH_CHILD_ENV) else {
        return;
    };
    common::runtime().block_on(async {
        let store = veritee_store::open(&url).await.unwrap();
        conformance::crash_writer(&*store, 100_000).await;
    });
}

/// A client killed with SIGKILL after a few hundred acknowledged writes loses none.
#[test]
fn crash_durability() {
    let Some(url) = database_url("crash_durability") else {
        return;
    };
    let runtime = common::runtime();
    let (schema, scoped) = runtime.block_on(fresh_schema(&url));
    let acked = common::run_and_kill("crash_child_writer", &[(CRASH_CHILD_ENV, &scoped)], 300);
    assert!(acked >= 300);
    runtime.block_on(async {
        let store = veritee_store::open(&scoped).await.unwrap();
        conformance::crash_verify(&*store, acked).await;
        drop(store);
        drop_schema(&url, &schema).await;
    });
    println!("postgres crash test: {acked} acknowledged writes, all present after SIGKILL");
}

/// The URL with its `sslrootcert` replaced.
fn with_root_cert(url: &str, root_cert: &std::path::Path) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslrootcert="))
        .map(str::to_string)
        .collect();
    pairs.push(format!("sslrootcert={}", root_cert.display()));
    format!("{base}?{}", pairs.join("&"))
}

/// When the test database is reached with `sslmode=verify-full` (as `.ci/postgres.sh`
/// sets it up), the connection is TLS, and a server whose certificate another CA
/// issued is refused, naming why.
#[tokio::test]
async fn verify_full_connects_over_tls_and_refuses_a_server_of_another_ca() {
    let Some(url) =
        database_url("verify_full_connects_over_tls_and_refuses_a_server_of_another_ca")
    else {
        return;
    };
    if !url.contains("sslmode=verify-full") {
        println!("skipped: {URL_ENV} does not ask for sslmode=verify-full");
        return;
    }
    let client = admin(&url).await;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    assert!(row.get::<_, bool>(0), "the connection is not TLS");
    let (schema, scoped) = fresh_schema(&url).await;
    let store = PostgresStore::connect(&scoped)
        .await
        .expect("the store over TLS");
    store.put("tls", "k", b"v").await.expect("put");
    assert_eq!(
        store.get("tls", "k").await.expect("get").as_deref(),
        Some(&b"v"[..])
    );
    drop(store);
    drop_schema(&url, &schema).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let other_ca = dir.path().join("other-ca.pem");
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
    std::fs::write(&other_ca, other.cert.pem()).expect("write");
    let refused = PostgresStore::connect(&with_root_cert(&url, &other_ca))
        .await
        .expect_err("a server another CA vouches for");
    let message = refused.to_string();
    assert!(
        message.contains("certificate") || message.contains("UnknownIssuer"),
        "{message}"
    );
}
