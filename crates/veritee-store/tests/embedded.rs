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

/// A log appended until the disk is full: the append that does not fit is refused
/// with the cause named and leaves nothing behind, every acknowledged entry reads
/// back, and once there is room the log goes on from where it stopped, also after a
/// reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_on_a_full_disk_refuses_the_append_that_does_not_fit_and_goes_on_later() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = conformance::SmallDisk::mount(dir.path(), "4m") else {
        return;
    };
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
    let location = disk.path().join("store");
    let location = location.to_str().unwrap();
    let store = veritee_store::open(location).await.unwrap();
    let entry = |seq: u64| conformance::test_value(seq, 48 * 1024);
    let mut acknowledged = 0u64;
    let refusal = loop {
        assert!(acknowledged < 200, "4 MiB never filled up");
        match store
            .log_append("audit", acknowledged, &entry(acknowledged))
            .await
        {
            Ok(()) => acknowledged += 1,
            Err(e) => break e,
        }
    };
    assert!(acknowledged > 0);
    assert!(
        matches!(refusal, StoreError::Io { .. }) && refusal.to_string().contains("No space left"),
        "{refusal}"
    );
    let expected: Vec<(u64, Vec<u8>)> = (0..acknowledged).map(|s| (s, entry(s))).collect();
    assert_eq!(store.log_read("audit", 0, 1000).await.unwrap(), expected);
    std::fs::remove_file(&filler).unwrap();
    store
        .log_append("audit", acknowledged, b"room again")
        .await
        .unwrap();
    drop(store);
    let store = veritee_store::open(location).await.unwrap();
    let read = store.log_read("audit", 0, 1000).await.unwrap();
    assert_eq!(read[..expected.len()], expected[..]);
    assert_eq!(read.last(), Some(&(acknowledged, b"room again".to_vec())));
}
