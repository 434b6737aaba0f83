//! The embedded (redb) store: the conformance suite on a fresh temporary directory per
//! test, its own behaviour on open, and crash durability.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use veritee_store::conformance::{self, Fixture};
use veritee_store::{EmbeddedStore, StoreError};

/// A fresh store in a directory that does not exist yet (the store creates it).
async fn fixture(_test: &str) -> Option<Fixture> {
    let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
    let location = dir
        .path()
        .join("store")
        .to_str()
        .expect("UTF-8 path")
        .to_owned();
    Some(Fixture::new(move || {
        let _keep_the_directory = &dir;
        let location = location.clone();
        async move { veritee_store::open(&location).await }
    }))
}

veritee_store::conformance_tests!(fixture);

#[tokio::test]
async fn directory_and_file_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("a/b/store");
    let store = veritee_store::open(location.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(store.kind(), "embedded");
    for (path, mode) in [
        (dir.path().join("a"), 0o700),
        (location.clone(), 0o700),
        (location.join("store.redb"), 0o600),
    ] {
        let actual = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(actual, mode, "{}: {actual:o}", path.display());
    }
    let typed = {
        drop(store);
        EmbeddedStore::open(&location).await.unwrap()
    };
    assert_eq!(typed.path(), location.join("store.redb"));
}

#[tokio::test]
async fn second_open_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    let first = veritee_store::open(location).await.unwrap();
    first.put("ns", "k", b"v").await.unwrap();
    let err = veritee_store::open(location)
        .await
        .err()
        .expect("a second open fails");
    assert!(
        matches!(
            err,
            StoreError::Backend {
                backend: "embedded",
                ..
            }
        ) && err.to_string().contains("already open"),
        "{err}"
    );
    drop(first);
    let again = veritee_store::open(location).await.unwrap();
    assert_eq!(
        again.get("ns", "k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

#[tokio::test]
async fn a_file_in_the_way_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let err = veritee_store::open(file.to_str().unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            StoreError::Io {
                backend: "embedded",
                ..
            }
        ),
        "{err}"
    );
}

/// Set in the child process of [`crash_durability`]: the store directory.
const CRASH_CHILD_ENV: &str = "VERITEE_STORE_CRASH_CHILD_DIR";

/// Child half of [`crash_durability`]; does nothing in a normal test run.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CRASH_CHILD_ENV) else {
        return;
    };
    common::runtime().block_on(async {
        let store = veritee_store::open(&dir).await.unwrap();
        conformance::crash_writer(&*store, 100_000).await;
    });
}

/// A writer killed with SIGKILL after a few hundred acknowledged writes loses none.
#[test]
fn crash_durability() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("store");
    let location = location.to_str().unwrap();
    let acked = common::run_and_kill("crash_child_writer", &[(CRASH_CHILD_ENV, location)], 300);
    assert!(acked >= 300);
    common::runtime().block_on(async {
        let store = veritee_store::open(location).await.unwrap();
        conformance::crash_verify(&*store, acked).await;
    });
    println!("embedded crash test: {acked} acknowledged writes, all present after SIGKILL");
}
