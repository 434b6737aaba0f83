//! The shared suite both backends must pass.
//!
//! Every check is a `pub async fn` that takes a [`Fixture`] (a way to open, and reopen,
//! one fresh, empty store of the backend under test) and panics on a failure. The
//! [`conformance_tests!`](crate::conformance_tests) macro expands to one test per
//! check, so every backend runs exactly the same list; a new backend (or a wrapper
//! around a store) passes when its test file runs that macro green.
//!
//! Checks need a multi-threaded tokio runtime (the macro's tests have one), since
//! several of them race tasks against each other.
//!
//! The module also holds the two halves of the crash-durability test,
//! [`crash_writer`] (run in a child process that gets killed) and [`crash_verify`].

use std::fmt::Debug;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::limits::{MAX_KEY_LEN, MAX_LIMIT, MAX_LOG_NAME_LEN, MAX_NS_LEN, MAX_SEQ, MAX_VALUE_LEN};
use crate::{Store, StoreError};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a [`Fixture`] opens its store.
type OpenFn = dyn Fn() -> BoxFuture<'static, Result<Arc<dyn Store>, StoreError>> + Send + Sync;

/// One fresh, empty store of the backend under test, which a check may open several
/// times (one open at a time: it drops a store before it reopens it).
pub struct Fixture {
    open: Box<OpenFn>,
    cleanup: Option<BoxFuture<'static, ()>>,
}

impl Fixture {
    /// A fixture whose store `open` opens (each call opens the same data anew).
    pub fn new<F, Fut>(open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn Store>, StoreError>> + Send + 'static,
    {
        Self {
            open: Box::new(move || Box::pin(open())),
            cleanup: None,
        }
    }

    /// Runs `cleanup` (say, dropping a database schema) once the check has passed.
    /// A failed check leaves its data behind, to look at.
    pub fn with_cleanup(mut self, cleanup: impl Future<Output = ()> + Send + 'static) -> Self {
        self.cleanup = Some(Box::pin(cleanup));
        self
    }

    /// Opens the store; panics if that fails.
    pub async fn open(&self) -> Arc<dyn Store> {
        match (self.open)().await {
            Ok(store) => store,
            Err(e) => panic!("opening the store under test failed: {e}"),
        }
    }

    /// Runs the cleanup, if any.
    pub async fn finish(self) {
        if let Some(cleanup) = self.cleanup {
            cleanup.await;
        }
    }
}

/// Expands to one `#[tokio::test]` per conformance check, each calling
/// `$fixture(test_name).await` for a fresh [`Fixture`]; a fixture of `None` means
/// "skipped" (the fixture prints why) and the test passes.
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
///
/// ```ignore
/// async fn fixture(test: &str) -> Option<veritee_store::conformance::Fixture> { ... }
/// veritee_store::conformance_tests!(fixture);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:path) => {
        $crate::conformance_tests!(@each $fixture;
            basics,
            namespaces_are_isolated,
            put_if_absent_race,
            list_order_and_prefix,
            list_pagination,
            limits,
            large_values,
            binary_values,
            log_basics,
            log_conflicts,
            log_append_with_objects_is_all_or_nothing,
            log_append_entries_is_all_or_nothing,
            concurrent_appenders,
            concurrent_appenders_free_running,
            concurrent_writers,
            reopen_persistence,
        );
    };
    (@each $fixture:path; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some(fixture) = $fixture(stringify!($check)).await else {
                    return;
                };
                $crate::conformance::$check(&fixture).await;
                fixture.finish().await;
            }
        )*
    };
}

/// Deterministic bytes for tests: `len` bytes from a generator seeded with `seed`
/// (SplitMix64), so every byte value occurs and no two seeds agree.
pub fn test_value(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Summarizes a result without printing a (possibly huge) value.
fn summary<T: Debug>(result: &Result<T, StoreError>) -> String {
    match result {
        Ok(v) => {
            let text = format!("{v:?}");
            if text.len() > 200 {
                format!("Ok({}...)", &text[..200])
            } else {
                format!("Ok({text})")
            }
        }
        Err(e) => format!("Err({e})"),
    }
}

#[track_caller]
fn assert_invalid<T: Debug>(result: Result<T, StoreError>, what: &str) {
    match &result {
        Err(StoreError::InvalidInput(message)) => {
            assert!(
                !message.contains("CANARY"),
                "{what}: the message quotes the input: {message}"
            );
        }
        _ => panic!("{what}: expected InvalidInput, got {}", summary(&result)),
    }
}

#[track_caller]
fn assert_conflict<T: Debug>(
    result: Result<T, StoreError>,
    log: &str,
    expected: u64,
    attempted: u64,
) {
    match &result {
        Err(
            e @ StoreError::Conflict {
                log: l,
                expected: x,
                attempted: a,
            },
        ) => {
            assert_eq!(
                (l.as_str(), *x, *a),
                (log, expected, attempted),
                "conflict fields"
            );
            let message = e.to_string();
            assert!(
                message.contains(&format!("expects seq {expected}")),
                "the conflict names the expected seq: {message}"
            );
        }
        _ => panic!(
            "append of seq {attempted} to {log:?}: expected Conflict (expected {expected}), got {}",
            summary(&result)
        ),
    }
}

/// `kind`, and put / put_if_absent / get / delete on one namespace, empty values
/// included.
pub async fn basics(fixture: &Fixture) {
    let s = fixture.open().await;
    assert!(
        matches!(s.kind(), "embedded" | "postgres"),
        "kind {:?}",
        s.kind()
    );
    let ns = "basics";
    assert_eq!(s.get(ns, "missing").await.unwrap(), None);
    assert!(!s.delete(ns, "missing").await.unwrap());
    assert!(s.list(ns, "", None, 10).await.unwrap().is_empty());

    s.put(ns, "k", b"one").await.unwrap();
    assert_eq!(s.get(ns, "k").await.unwrap().as_deref(), Some(&b"one"[..]));
    s.put(ns, "k", b"two").await.unwrap();
    assert_eq!(s.get(ns, "k").await.unwrap().as_deref(), Some(&b"two"[..]));

    // An empty value is a value, not an absence.
    s.put(ns, "empty", b"").await.unwrap();
    assert_eq!(s.get(ns, "empty").await.unwrap(), Some(Vec::new()));

    assert!(!s.put_if_absent(ns, "k", b"three").await.unwrap());
    assert_eq!(s.get(ns, "k").await.unwrap().as_deref(), Some(&b"two"[..]));
    assert!(s.put_if_absent(ns, "new", b"fresh").await.unwrap());
    assert_eq!(
        s.get(ns, "new").await.unwrap().as_deref(),
        Some(&b"fresh"[..])
    );
    assert!(!s.put_if_absent(ns, "empty", b"x").await.unwrap());
    assert_eq!(s.get(ns, "empty").await.unwrap(), Some(Vec::new()));

    assert_eq!(
        s.list(ns, "", None, 10).await.unwrap(),
        ["empty", "k", "new"]
    );
    assert!(s.delete(ns, "k").await.unwrap());
    assert_eq!(s.get(ns, "k").await.unwrap(), None);
    assert!(!s.delete(ns, "k").await.unwrap());
    assert!(s.put_if_absent(ns, "k", b"again").await.unwrap());
    assert_eq!(
        s.get(ns, "k").await.unwrap().as_deref(),
        Some(&b"again"[..])
    );
    assert!(s.delete(ns, "empty").await.unwrap());
    assert_eq!(s.list(ns, "", None, 10).await.unwrap(), ["k", "new"]);
}

/// Namespaces, and objects and logs, never see each other's data, whatever the
/// characters in the names (no separator can be forged).
pub async fn namespaces_are_isolated(fixture: &Fixture) {
    let s = fixture.open().await;
    let pairs = [
        ("ns", "k"),
        ("ns2", "k"),
        ("n", "sk"),
        ("a", "b/c"),
        ("a/b", "c"),
        ("a b", "c"),
        ("a", "b c"),
        ("a:", "b"),
        ("a", ":b"),
    ];
    for (i, (ns, key)) in pairs.iter().enumerate() {
        s.put(ns, key, &test_value(i as u64, 16)).await.unwrap();
    }
    for (i, (ns, key)) in pairs.iter().enumerate() {
        assert_eq!(
            s.get(ns, key).await.unwrap(),
            Some(test_value(i as u64, 16)),
            "({ns:?}, {key:?})"
        );
    }
    assert_eq!(s.get("ns", "sk").await.unwrap(), None);
    assert_eq!(s.get("n", "k").await.unwrap(), None);
    assert_eq!(s.list("ns", "", None, 10).await.unwrap(), ["k"]);
    assert_eq!(s.list("n", "", None, 10).await.unwrap(), ["sk"]);
    assert_eq!(
        s.list("a", "", None, 10).await.unwrap(),
        [":b", "b c", "b/c"]
    );
    assert_eq!(s.list("a/b", "", None, 10).await.unwrap(), ["c"]);
    assert!(s.list("nothing", "", None, 10).await.unwrap().is_empty());

    assert!(s.delete("ns", "k").await.unwrap());
    assert_eq!(s.get("ns2", "k").await.unwrap(), Some(test_value(1, 16)));

    // A log named like a namespace is another thing.
    s.log_append("ns2", 0, b"log entry").await.unwrap();
    assert_eq!(s.list("ns2", "", None, 10).await.unwrap(), ["k"]);
    assert_eq!(s.log_last("ns").await.unwrap(), None);
    assert!(!s.put_if_absent("ns2", "k", b"x").await.unwrap());
    assert!(s.put_if_absent("ns", "k", b"x").await.unwrap());
}

/// Many tasks race `put_if_absent` on one key: exactly one wins, and its value is the
/// one stored.
pub async fn put_if_absent_race(fixture: &Fixture) {
    const TASKS: usize = 16;
    let s = fixture.open().await;
    for round in 0..5u64 {
        let key = format!("race-{round}");
        let barrier = Arc::new(Barrier::new(TASKS));
        let mut tasks = JoinSet::new();
        for task in 0..TASKS as u64 {
            let (s, key, barrier) = (Arc::clone(&s), key.clone(), Arc::clone(&barrier));
            tasks.spawn(async move {
                let value = test_value(round * 100 + task, 64);
                barrier.wait().await;
                (task, s.put_if_absent("race", &key, &value).await.unwrap())
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (task, won) = joined.expect("task panicked");
            if won {
                winners.push(task);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(
            s.get("race", &key).await.unwrap(),
            Some(test_value(round * 100 + winners[0], 64)),
            "round {round}: the stored value is the winner's"
        );
    }
}

/// `list` sorts keys by their bytes (not by a locale) and filters by prefix, the key
/// equal to the prefix included.
pub async fn list_order_and_prefix(fixture: &Fixture) {
    let s = fixture.open().await;
    let ns = "order";
    let keys = [
        "b", "a", "B", "A", "_", "a b", "a-", "aB", "a_", "ab", "~", " ", "a~", "a~~", "b~", "Z9",
        "0", "x~", "x~a", "x}", "y", "a", "a.b", "a/b", "A-", "$", "!",
    ];
    for (i, key) in keys.iter().enumerate() {
        s.put(ns, key, &test_value(i as u64, 8)).await.unwrap();
    }
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        s.list(ns, "", None, 100).await.unwrap(),
        sorted,
        "byte order"
    );
    for prefix in [
        "", "a", "a ", "a~", "x~", "x", "A", "zz", " ", "~", "b", "a/", "!",
    ] {
        let expected: Vec<String> = sorted
            .iter()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        assert_eq!(
            s.list(ns, prefix, None, 100).await.unwrap(),
            expected,
            "prefix {prefix:?}"
        );
    }
    assert!(s.list("order2", "", None, 100).await.unwrap().is_empty());
}

/// Paging with `after` walks every key of a prefix exactly once, whatever the page
/// size, and `after` may be any string, present or not.
pub async fn list_pagination(fixture: &Fixture) {
    let s = fixture.open().await;
    let ns = "pages";
    const N: usize = 250;
    for i in 0..N {
        // Inserted out of order.
        let i = (i * 97) % N;
        s.put(ns, &format!("item/{i:04}"), &test_value(i as u64, 4))
            .await
            .unwrap();
    }
    // Neighbours of the prefix's run, on both sides.
    for key in ["item.", "item0", "itel", "iteml", "item"] {
        s.put(ns, key, b"outside").await.unwrap();
    }
    let expected: Vec<String> = (0..N).map(|i| format!("item/{i:04}")).collect();

    for page_size in [1usize, 37, 50, 250, 10_000] {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = s
                .list(ns, "item/", after.as_deref(), page_size)
                .await
                .unwrap();
            pages += 1;
            assert!(page.len() <= page_size);
            all.extend(page.iter().cloned());
            if page.len() < page_size {
                break;
            }
            after = page.last().cloned();
        }
        assert_eq!(all, expected, "page size {page_size}");
        assert_eq!(pages, N / page_size + 1, "page size {page_size}");
    }

    let list = |prefix: &'static str, after: Option<&'static str>, limit: usize| {
        let s = Arc::clone(&s);
        async move { s.list(ns, prefix, after, limit).await.unwrap() }
    };
    // A cursor that is not a key.
    assert_eq!(
        list("item/", Some("item/0100x"), 3).await,
        ["item/0101", "item/0102", "item/0103"]
    );
    // Cursors before the prefix's run start at its beginning.
    assert_eq!(
        list("item/", Some("a"), 2).await,
        ["item/0000", "item/0001"]
    );
    assert_eq!(list("item/", Some("item."), 1).await, ["item/0000"]);
    assert_eq!(list("item/", Some("item"), 1).await, ["item/0000"]);
    // Cursors at or past its end give nothing.
    assert!(list("item/", Some("item/0249"), 10).await.is_empty());
    assert!(list("item/", Some("item/9"), 10).await.is_empty());
    assert!(list("item/", Some("item0"), 10).await.is_empty());
    assert!(list("item/", Some("~"), 10).await.is_empty());
    // Limits.
    assert!(list("item/", None, 0).await.is_empty());
    assert_eq!(list("item/", None, 1).await, ["item/0000"]);
    // The whole namespace, paged without a prefix.
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.list(ns, "", after.as_deref(), 100).await.unwrap();
        all.extend(page.iter().cloned());
        if page.len() < 100 {
            break;
        }
        after = page.last().cloned();
    }
    let mut everything = expected.clone();
    everything.extend(["item.", "item0", "itel", "iteml", "item"].map(String::from));
    everything.sort();
    assert_eq!(all, everything);
}

/// Every limit is enforced with [`StoreError::InvalidInput`] (whose message does not
/// quote the input), nothing is written by a rejected call, and values at the limits
/// are accepted.
pub async fn limits(fixture: &Fixture) {
    let s = fixture.open().await;
    let ok_ns = "limits";
    let long_ns = "n".repeat(MAX_NS_LEN + 1);
    let long_key = "k".repeat(MAX_KEY_LEN + 1);
    let long_log = "l".repeat(MAX_LOG_NAME_LEN + 1);
    let bad_names: Vec<(&str, &str)> = vec![
        ("", "empty"),
        ("CANARY\n", "newline"),
        ("CANARY\t", "tab"),
        ("CANARY\0", "NUL"),
        ("CANARY\u{7f}", "DEL"),
        ("CANARY\u{e9}", "non-ASCII"),
    ];

    let too_big = vec![b'V'; MAX_VALUE_LEN + 1];
    for (bad, why) in bad_names
        .iter()
        .copied()
        .chain([(long_ns.as_str(), "129-byte namespace")])
    {
        let what = format!("namespace: {why}");
        assert_invalid(s.put(bad, "k", b"v").await, &what);
        assert_invalid(s.put_if_absent(bad, "k", b"v").await, &what);
        assert_invalid(s.get(bad, "k").await, &what);
        assert_invalid(s.delete(bad, "k").await, &what);
        assert_invalid(s.list(bad, "", None, 10).await, &what);
    }
    for (bad, why) in bad_names
        .iter()
        .copied()
        .chain([(long_key.as_str(), "1025-byte key")])
    {
        let what = format!("key: {why}");
        assert_invalid(s.put(ok_ns, bad, b"v").await, &what);
        assert_invalid(s.put_if_absent(ok_ns, bad, b"v").await, &what);
        assert_invalid(s.get(ok_ns, bad).await, &what);
        assert_invalid(s.delete(ok_ns, bad).await, &what);
        assert_invalid(s.list(ok_ns, "", Some(bad), 10).await, &what);
        if !bad.is_empty() {
            assert_invalid(
                s.list(ok_ns, bad, None, 10).await,
                &format!("prefix: {why}"),
            );
        }
    }
    for (bad, why) in bad_names
        .iter()
        .copied()
        .chain([(long_log.as_str(), "129-byte log name")])
    {
        let what = format!("log name: {why}");
        assert_invalid(s.log_append(bad, 0, b"e").await, &what);
        assert_invalid(s.log_read(bad, 0, 10).await, &what);
        assert_invalid(s.log_last(bad).await, &what);
    }
    assert_invalid(s.put(ok_ns, "big", &too_big).await, "value over 64 MiB");
    assert_invalid(
        s.put_if_absent(ok_ns, "big", &too_big).await,
        "value over 64 MiB",
    );
    assert_invalid(
        s.log_append("limits", 0, &too_big).await,
        "entry over 64 MiB",
    );
    let message = s.put(ok_ns, "big", &too_big).await.unwrap_err();
    assert!(message.to_string().contains("MAX_VALUE_LEN"), "{message}");
    drop(too_big);
    assert_invalid(s.list(ok_ns, "", None, MAX_LIMIT + 1).await, "list limit");
    assert_invalid(
        s.log_read("limits", 0, MAX_LIMIT + 1).await,
        "log_read limit",
    );
    assert_invalid(s.log_append("limits", MAX_SEQ + 1, b"e").await, "seq");
    assert_invalid(s.log_append("limits", u64::MAX, b"e").await, "seq");

    // Nothing was written.
    assert!(s.list(ok_ns, "", None, 10).await.unwrap().is_empty());
    assert_eq!(s.log_last("limits").await.unwrap(), None);

    // At the limits, everything is accepted.
    let ns = "n".repeat(MAX_NS_LEN);
    let key = "k".repeat(MAX_KEY_LEN);
    let log = "l".repeat(MAX_LOG_NAME_LEN);
    s.put(&ns, &key, b"v").await.unwrap();
    assert_eq!(s.get(&ns, &key).await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        s.list(&ns, &key, None, MAX_LIMIT).await.unwrap(),
        std::slice::from_ref(&key)
    );
    assert!(
        s.list(&ns, "", Some(&key), MAX_LIMIT)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.delete(&ns, &key).await.unwrap());
    s.put(ok_ns, " ~printable !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", b"v")
        .await
        .unwrap();
    s.log_append(&log, 0, b"e").await.unwrap();
    assert_eq!(s.log_read(&log, 0, MAX_LIMIT).await.unwrap().len(), 1);
    // The largest seq is a valid argument; the log is just not there yet.
    assert_conflict(s.log_append(&log, MAX_SEQ, b"e").await, &log, 1, MAX_SEQ);
    assert!(s.log_read(&log, u64::MAX, 10).await.unwrap().is_empty());
    assert!(s.log_read(&log, MAX_SEQ, 10).await.unwrap().is_empty());

    let biggest = test_value(64, MAX_VALUE_LEN);
    s.put(ok_ns, "biggest", &biggest).await.unwrap();
    assert!(
        s.get(ok_ns, "biggest").await.unwrap() == Some(biggest),
        "a 64 MiB value reads back intact"
    );
    assert!(s.delete(ok_ns, "biggest").await.unwrap());
}

/// Values and log entries of 8 MiB.
pub async fn large_values(fixture: &Fixture) {
    const LEN: usize = 8 * 1024 * 1024;
    let s = fixture.open().await;
    let ns = "large";
    let big = test_value(8, LEN);
    let other = test_value(9, LEN);
    s.put(ns, "big", &big).await.unwrap();
    assert!(s.get(ns, "big").await.unwrap().as_ref() == Some(&big));
    assert!(!s.put_if_absent(ns, "big", &other).await.unwrap());
    assert!(s.put_if_absent(ns, "other", &other).await.unwrap());
    assert!(s.get(ns, "big").await.unwrap().as_ref() == Some(&big));
    assert!(s.get(ns, "other").await.unwrap().as_ref() == Some(&other));
    s.put(ns, "big", b"small now").await.unwrap();
    assert_eq!(
        s.get(ns, "big").await.unwrap().as_deref(),
        Some(&b"small now"[..])
    );
    s.put(ns, "big", &big).await.unwrap();
    assert!(s.get(ns, "big").await.unwrap().as_ref() == Some(&big));
    assert_eq!(s.list(ns, "", None, 10).await.unwrap(), ["big", "other"]);

    s.log_append("large", 0, &big).await.unwrap();
    s.log_append("large", 1, &other).await.unwrap();
    let entries = s.log_read("large", 0, 10).await.unwrap();
    assert!(entries == vec![(0, big.clone()), (1, other.clone())]);
    assert!(s.log_last("large").await.unwrap() == Some((1, other)));
    assert!(s.delete(ns, "big").await.unwrap());
}

/// Values and entries hold any bytes: every byte value, NULs at either end, all zeros.
pub async fn binary_values(fixture: &Fixture) {
    let s = fixture.open().await;
    let every: Vec<u8> = (0..=255u8).collect();
    let mut reversed = every.clone();
    reversed.reverse();
    let values = vec![
        every.clone(),
        reversed,
        every.repeat(1024),
        vec![0],
        vec![0; 1000],
        vec![0xff],
        b"\0tail".to_vec(),
        b"head\0".to_vec(),
        b"\\x00'\"; DROP TABLE veritee_objects; --".to_vec(),
        "not ascii: \u{e9}\u{1f512}".as_bytes().to_vec(),
        vec![0xc3, 0x28, 0xa0, 0xa1], // invalid UTF-8
    ];
    for (i, value) in values.iter().enumerate() {
        s.put("binary", &format!("v{i:02}"), value).await.unwrap();
        s.log_append("binary", i as u64, value).await.unwrap();
    }
    for (i, value) in values.iter().enumerate() {
        assert_eq!(
            s.get("binary", &format!("v{i:02}")).await.unwrap().as_ref(),
            Some(value),
            "value {i}"
        );
    }
    let entries = s.log_read("binary", 0, 100).await.unwrap();
    let expected: Vec<(u64, Vec<u8>)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v.clone()))
        .collect();
    assert_eq!(entries, expected);
}

/// Appends, reads from any point with any limit, the last entry, and logs kept apart.
pub async fn log_basics(fixture: &Fixture) {
    let s = fixture.open().await;
    let log = "events";
    assert_eq!(s.log_last(log).await.unwrap(), None);
    assert!(s.log_read(log, 0, 100).await.unwrap().is_empty());

    let entry = |seq: u64| test_value(seq, (seq as usize * 37) % 300);
    for seq in 0..100 {
        s.log_append(log, seq, &entry(seq)).await.unwrap();
    }
    let all: Vec<(u64, Vec<u8>)> = (0..100).map(|seq| (seq, entry(seq))).collect();
    assert_eq!(s.log_read(log, 0, 1000).await.unwrap(), all);
    assert_eq!(s.log_read(log, 0, 100).await.unwrap(), all);
    assert_eq!(s.log_read(log, 50, 10).await.unwrap(), &all[50..60]);
    assert_eq!(s.log_read(log, 95, 10).await.unwrap(), &all[95..]);
    assert_eq!(s.log_read(log, 0, 1).await.unwrap(), &all[..1]);
    assert!(s.log_read(log, 100, 10).await.unwrap().is_empty());
    assert!(s.log_read(log, u64::MAX, 10).await.unwrap().is_empty());
    assert!(s.log_read(log, 0, 0).await.unwrap().is_empty());
    assert_eq!(s.log_last(log).await.unwrap(), Some((99, entry(99))));
    assert_eq!(
        s.log_read(log, 0, 100).await.unwrap()[0].1,
        Vec::<u8>::new()
    );

    // Logs whose names extend each other are separate.
    for other in ["event", "events2", "events ", "Events"] {
        assert_eq!(s.log_last(other).await.unwrap(), None, "{other:?}");
        assert!(s.log_read(other, 0, 10).await.unwrap().is_empty());
    }
    s.log_append("event", 0, b"other log").await.unwrap();
    s.log_append("events2", 0, b"another log").await.unwrap();
    assert_eq!(s.log_last(log).await.unwrap(), Some((99, entry(99))));
    assert_eq!(s.log_read(log, 0, 1000).await.unwrap(), all);
    assert_eq!(
        s.log_read("event", 0, 10).await.unwrap(),
        [(0, b"other log".to_vec())]
    );
}

/// Gaps and duplicates are [`StoreError::Conflict`] naming the expected seq, and write
/// nothing.
pub async fn log_conflicts(fixture: &Fixture) {
    let s = fixture.open().await;
    let log = "conflicts";
    assert_conflict(s.log_append(log, 1, b"gap").await, log, 0, 1);
    assert_eq!(s.log_last(log).await.unwrap(), None);
    s.log_append(log, 0, b"first").await.unwrap();
    assert_conflict(s.log_append(log, 0, b"duplicate").await, log, 1, 0);
    assert_conflict(s.log_append(log, 5, b"gap").await, log, 1, 5);
    assert_conflict(s.log_append(log, 2, b"gap").await, log, 1, 2);
    assert_eq!(
        s.log_read(log, 0, 10).await.unwrap(),
        [(0, b"first".to_vec())]
    );
    s.log_append(log, 1, b"second").await.unwrap();
    assert_conflict(s.log_append(log, 0, b"old").await, log, 2, 0);
    assert_conflict(s.log_append(log, 1, b"old").await, log, 2, 1);
    assert_conflict(s.log_append(log, MAX_SEQ, b"far").await, log, 2, MAX_SEQ);
    assert_eq!(
        s.log_read(log, 0, 10).await.unwrap(),
        [(0, b"first".to_vec()), (1, b"second".to_vec())]
    );
    assert_eq!(
        s.log_last(log).await.unwrap(),
        Some((1, b"second".to_vec()))
    );
}

/// Several entries appended at once land together, numbered in order, or none does.
pub async fn log_append_entries_is_all_or_nothing(fixture: &Fixture) {
    let s = fixture.open().await;
    let log = "batched";
    let batch = |from: u64, n: u64| -> Vec<Vec<u8>> {
        (from..from + n)
            .map(|seq| format!("entry {seq}").into_bytes())
            .collect()
    };
    s.log_append_entries(log, 0, &[]).await.unwrap();
    assert_eq!(s.log_last(log).await.unwrap(), None);
    s.log_append_entries(log, 0, &batch(0, 3)).await.unwrap();
    s.log_append(log, 3, b"entry 3").await.unwrap();
    s.log_append_entries(log, 4, &batch(4, 5)).await.unwrap();
    let all: Vec<(u64, Vec<u8>)> = (0..9).zip(batch(0, 9)).collect();
    assert_eq!(s.log_read(log, 0, 100).await.unwrap(), all);
    // Overlapping the end, leaving a gap, or reaching past MAX_SEQ: nothing is written.
    assert_conflict(s.log_append_entries(log, 8, &batch(8, 3)).await, log, 9, 8);
    assert_conflict(
        s.log_append_entries(log, 10, &batch(10, 2)).await,
        log,
        9,
        10,
    );
    assert!(matches!(
        s.log_append_entries(log, MAX_SEQ, &batch(0, 2)).await,
        Err(StoreError::InvalidInput(_))
    ));
    let too_many = vec![Vec::new(); crate::limits::MAX_BATCH_ENTRIES + 1];
    assert!(matches!(
        s.log_append_entries(log, 9, &too_many).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(s.log_read(log, 0, 100).await.unwrap(), all);
    // Racing batches: exactly one wins each number.
    let (first, second) = (batch(9, 4), batch(9, 4));
    let (a, b) = tokio::join!(
        s.log_append_entries(log, 9, &first),
        s.log_append_entries(log, 9, &second),
    );
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    assert_eq!(
        s.log_last(log).await.unwrap(),
        Some((12, b"entry 12".to_vec()))
    );
}

/// A log entry and the objects written with it land together, or neither does.
pub async fn log_append_with_objects_is_all_or_nothing(fixture: &Fixture) {
    let s = fixture.open().await;
    let log = "journal";
    let object = |key: &str, value: &[u8]| crate::StoredObject {
        ns: "records".into(),
        key: key.into(),
        value: value.to_vec(),
    };
    s.log_append_with_objects(log, 0, b"first", &[object("a", b"1"), object("b", b"2")])
        .await
        .unwrap();
    assert_eq!(s.get("records", "a").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.get("records", "b").await.unwrap(), Some(b"2".to_vec()));
    // A conflicting append writes none of its objects.
    assert_conflict(
        s.log_append_with_objects(log, 0, b"again", &[object("c", b"3"), object("a", b"x")])
            .await,
        log,
        1,
        0,
    );
    assert_eq!(s.get("records", "c").await.unwrap(), None);
    assert_eq!(s.get("records", "a").await.unwrap(), Some(b"1".to_vec()));
    // Nor does one with an object over the limits.
    let bad = crate::StoredObject {
        ns: String::new(),
        key: "d".into(),
        value: b"4".to_vec(),
    };
    assert_invalid(
        s.log_append_with_objects(log, 1, b"second", &[object("d", b"4"), bad])
            .await,
        "ns",
    );
    assert_eq!(s.get("records", "d").await.unwrap(), None);
    assert_eq!(s.log_last(log).await.unwrap(), Some((0, b"first".to_vec())));
    // Without objects it is a plain append; objects overwrite.
    s.log_append_with_objects(log, 1, b"second", &[])
        .await
        .unwrap();
    s.log_append_with_objects(log, 2, b"third", &[object("a", b"new")])
        .await
        .unwrap();
    assert_eq!(s.get("records", "a").await.unwrap(), Some(b"new".to_vec()));
    // The same name twice in one append: the last one wins, as written in turn.
    s.log_append_with_objects(
        log,
        3,
        b"fourth",
        &[object("e", b"one"), object("f", b"x"), object("e", b"two")],
    )
    .await
    .unwrap();
    assert_eq!(s.get("records", "e").await.unwrap(), Some(b"two".to_vec()));
    assert_eq!(s.get("records", "f").await.unwrap(), Some(b"x".to_vec()));
    assert_eq!(s.log_read(log, 0, 10).await.unwrap().len(), 4);
}

/// Many tasks race to append the same seq, round after round: exactly one wins each
/// round, the others get a Conflict naming the next seq, and the log holds the
/// winners' entries.
pub async fn concurrent_appenders(fixture: &Fixture) {
    const TASKS: u64 = 8;
    const ROUNDS: u64 = 20;
    let s = fixture.open().await;
    let log = "contended";
    let mut winners = Vec::new();
    for seq in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(TASKS as usize));
        let mut tasks = JoinSet::new();
        for task in 0..TASKS {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            tasks.spawn(async move {
                let entry = test_value(seq * 1000 + task, 32);
                barrier.wait().await;
                (task, s.log_append(log, seq, &entry).await)
            });
        }
        let mut won = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (task, result) = joined.expect("task panicked");
            match result {
                Ok(()) => won.push(task),
                other => assert_conflict(other, log, seq + 1, seq),
            }
        }
        assert_eq!(won.len(), 1, "seq {seq}: winners {won:?}");
        winners.push(won[0]);
    }
    let entries = s.log_read(log, 0, 1000).await.unwrap();
    let expected: Vec<(u64, Vec<u8>)> = winners
        .iter()
        .enumerate()
        .map(|(seq, task)| (seq as u64, test_value(seq as u64 * 1000 + task, 32)))
        .collect();
    assert_eq!(entries, expected);
}

/// Writers that each read the last seq and append the next, retrying on Conflict,
/// build one gap-free log holding every writer's entries exactly once, in each
/// writer's order.
pub async fn concurrent_appenders_free_running(fixture: &Fixture) {
    const WRITERS: u64 = 4;
    const EACH: u64 = 25;
    let s = fixture.open().await;
    let log = "free-running";
    let mut tasks = JoinSet::new();
    for writer in 0..WRITERS {
        let s = Arc::clone(&s);
        tasks.spawn(async move {
            let mut conflicts = 0u64;
            for n in 0..EACH {
                let entry = format!("w{writer}-{n:03}").into_bytes();
                loop {
                    let next = s.log_last(log).await.unwrap().map_or(0, |(seq, _)| seq + 1);
                    match s.log_append(log, next, &entry).await {
                        Ok(()) => break,
                        Err(StoreError::Conflict { expected, .. }) => {
                            assert!(expected > next, "a conflict means someone got ahead");
                            conflicts += 1;
                        }
                        Err(e) => panic!("writer {writer}: {e}"),
                    }
                }
            }
            conflicts
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("writer panicked");
    }
    let entries = s.log_read(log, 0, 1000).await.unwrap();
    assert_eq!(entries.len() as u64, WRITERS * EACH);
    for (i, (seq, _)) in entries.iter().enumerate() {
        assert_eq!(*seq, i as u64, "no gaps");
    }
    for writer in 0..WRITERS {
        let own: Vec<String> = entries
            .iter()
            .map(|(_, e)| String::from_utf8(e.clone()).unwrap())
            .filter(|e| e.starts_with(&format!("w{writer}-")))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|n| format!("w{writer}-{n:03}")).collect();
        assert_eq!(
            own, expected,
            "writer {writer}'s entries, once each, in order"
        );
    }
}

/// Many tasks writing and reading distinct keys at once lose nothing.
pub async fn concurrent_writers(fixture: &Fixture) {
    const TASKS: u64 = 16;
    const EACH: u64 = 25;
    let s = fixture.open().await;
    let ns = "many";
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        let s = Arc::clone(&s);
        tasks.spawn(async move {
            for i in 0..EACH {
                let key = format!("t{task:02}/{i:03}");
                let value = test_value(task * 1000 + i, 100 + i as usize);
                s.put(ns, &key, &value).await.unwrap();
                assert_eq!(s.get(ns, &key).await.unwrap(), Some(value));
                if i % 5 == 0 {
                    assert!(
                        s.put_if_absent(ns, &format!("{key}/x"), b"x")
                            .await
                            .unwrap()
                    );
                    assert!(s.delete(ns, &format!("{key}/x")).await.unwrap());
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task panicked");
    }
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.list(ns, "t", after.as_deref(), 100).await.unwrap();
        keys.extend(page.iter().cloned());
        if page.len() < 100 {
            break;
        }
        after = page.last().cloned();
    }
    let mut expected = Vec::new();
    for task in 0..TASKS {
        for i in 0..EACH {
            expected.push(format!("t{task:02}/{i:03}"));
        }
    }
    assert_eq!(keys, expected);
    for task in 0..TASKS {
        for i in 0..EACH {
            let value = s.get(ns, &format!("t{task:02}/{i:03}")).await.unwrap();
            assert_eq!(value, Some(test_value(task * 1000 + i, 100 + i as usize)));
        }
    }
}

/// Everything written (and deleted) is there after the store is closed and opened
/// again, and the log goes on from where it was.
pub async fn reopen_persistence(fixture: &Fixture) {
    let mib = test_value(1, 1024 * 1024);
    {
        let s = fixture.open().await;
        s.put("persist", "a", b"alpha").await.unwrap();
        s.put("persist", "b", b"beta").await.unwrap();
        s.put("persist", "gone", b"deleted").await.unwrap();
        s.put("persist", "mib", &mib).await.unwrap();
        s.put("persist", "a", b"alpha 2").await.unwrap();
        assert!(s.put_if_absent("persist", "c", b"gamma").await.unwrap());
        assert!(s.delete("persist", "gone").await.unwrap());
        s.put("other", "a", b"other alpha").await.unwrap();
        for seq in 0..10 {
            s.log_append("persist", seq, &test_value(seq, 10))
                .await
                .unwrap();
        }
    }
    {
        let s = fixture.open().await;
        assert_eq!(
            s.list("persist", "", None, 100).await.unwrap(),
            ["a", "b", "c", "mib"]
        );
        assert_eq!(
            s.get("persist", "a").await.unwrap().as_deref(),
            Some(&b"alpha 2"[..])
        );
        assert_eq!(
            s.get("persist", "b").await.unwrap().as_deref(),
            Some(&b"beta"[..])
        );
        assert_eq!(
            s.get("persist", "c").await.unwrap().as_deref(),
            Some(&b"gamma"[..])
        );
        assert_eq!(s.get("persist", "gone").await.unwrap(), None);
        assert!(s.get("persist", "mib").await.unwrap() == Some(mib.clone()));
        assert_eq!(
            s.get("other", "a").await.unwrap().as_deref(),
            Some(&b"other alpha"[..])
        );
        assert!(!s.put_if_absent("persist", "b", b"no").await.unwrap());
        let expected: Vec<(u64, Vec<u8>)> = (0..10).map(|seq| (seq, test_value(seq, 10))).collect();
        assert_eq!(s.log_read("persist", 0, 100).await.unwrap(), expected);
        assert_eq!(
            s.log_last("persist").await.unwrap(),
            Some((9, test_value(9, 10)))
        );
        assert_conflict(s.log_append("persist", 5, b"old").await, "persist", 10, 5);
        s.log_append("persist", 10, b"after reopen").await.unwrap();
    }
    let s = fixture.open().await;
    assert_eq!(
        s.log_last("persist").await.unwrap(),
        Some((10, b"after reopen".to_vec()))
    );
    assert_eq!(s.log_read("persist", 0, 100).await.unwrap().len(), 11);
}

/// Namespace of the crash-durability test's objects.
pub const CRASH_NS: &str = "crash";
/// Log of the crash-durability test.
pub const CRASH_LOG: &str = "crash";

/// Key of the crash-durability test's write number `i`.
pub fn crash_key(i: u64) -> String {
    format!("k{i:08}")
}

/// Value (and log entry) of the crash-durability test's write number `i`: 1 to 4 KiB.
pub fn crash_value(i: u64) -> Vec<u8> {
    test_value(i, 1024 + (i as usize % 7) * 512)
}

/// Child side of the crash-durability test: for `i` in `0..max`, puts
/// [`crash_key`]`(i)` in [`CRASH_NS`] and appends entry `i` to [`CRASH_LOG`], both
/// [`crash_value`]`(i)`, then prints `acked {i}` on stdout and flushes. Meant to be
/// killed part way through.
pub async fn crash_writer(store: &dyn Store, max: u64) {
    for i in 0..max {
        let value = crash_value(i);
        store.put(CRASH_NS, &crash_key(i), &value).await.unwrap();
        store.log_append(CRASH_LOG, i, &value).await.unwrap();
        let mut out = std::io::stdout().lock();
        writeln!(out, "acked {i}").unwrap();
        out.flush().unwrap();
    }
}

/// Parent side of the crash-durability test, after the writer was killed having
/// acknowledged writes `0..acked`: every acknowledged key and log entry is present and
/// intact. The one write in flight when the writer died, number `acked`, may be there
/// or not (intact if there); nothing beyond it is.
pub async fn crash_verify(store: &dyn Store, acked: u64) {
    for i in 0..acked {
        let value = store.get(CRASH_NS, &crash_key(i)).await.unwrap();
        assert!(
            value == Some(crash_value(i)),
            "acknowledged key {i} of {acked} is {}",
            if value.is_some() {
                "corrupt"
            } else {
                "missing"
            }
        );
    }
    if let Some(value) = store.get(CRASH_NS, &crash_key(acked)).await.unwrap() {
        assert!(
            value == crash_value(acked),
            "in-flight key {acked} is corrupt"
        );
    }
    let keys = store
        .list(CRASH_NS, "", Some(&crash_key(acked)), 10)
        .await
        .unwrap();
    assert!(keys.is_empty(), "keys past the in-flight write: {keys:?}");

    let mut seq = 0;
    loop {
        let entries = store.log_read(CRASH_LOG, seq, 1000).await.unwrap();
        if entries.is_empty() {
            break;
        }
        for (s, entry) in entries {
            assert_eq!(s, seq, "log entries are contiguous");
            assert!(s <= acked, "log entry {s} past the in-flight write {acked}");
            assert!(entry == crash_value(s), "log entry {s} is corrupt");
            seq += 1;
        }
    }
    assert!(
        seq >= acked,
        "the log has {seq} entries but {acked} were acknowledged"
    );
}

/// A tmpfs of a given size mounted on a directory for a test, and unmounted when
/// dropped: a disk that fills up. Mount it on a fresh temporary directory, and drop it
/// before that directory.
pub struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`mount -o size=`, say `4m`) on `dir`. `None` (the test
    /// says why on stderr) where tmpfs cannot be mounted (not root, a container),
    /// unless `VERITEE_REQUIRE_TMPFS` is set, as CI sets it: then it panics.
    pub fn mount(dir: &std::path::Path, size: &str) -> Option<SmallDisk> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            assert!(
                std::env::var_os("VERITEE_REQUIRE_TMPFS").is_none(),
                "VERITEE_REQUIRE_TMPFS is set but a tmpfs cannot be mounted here"
            );
            eprintln!("skipped: a tmpfs cannot be mounted here (root needed)");
            return None;
        }
        Some(SmallDisk {
            path: dir.to_owned(),
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}
