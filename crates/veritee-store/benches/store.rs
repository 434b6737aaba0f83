//! Put and get of 1 KiB values, per backend: the embedded store on a temporary
//! directory, and PostgreSQL when `VERITEE_TEST_POSTGRES` names a database (in a fresh
//! schema, dropped afterwards).
//!
//! Every put is durable when it returns: for the embedded store that is an fsync of
//! the database file per put; for PostgreSQL, a WAL flush per commit on the server.
//! Puts overwrite a working set of 100 keys; gets read the same keys.
//!
//! Log appends are batches of 4 entries of 512 bytes, as the enclave's group-committed
//! audit log sends them, each durable when it returns. Beside them, in the same run:
//! the same bytes appended to a plain file with `pwrite` + `fdatasync` (the floor for
//! any durable append), and one durable redb commit of the same 4 entries (what the
//! embedded store's logs cost before they moved to files of their own).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use veritee_store::Store;
use veritee_store::conformance::test_value;

const KEYS: usize = 100;
const VALUE_LEN: usize = 1024;
/// Entries per log append, and their size.
const BATCH: usize = 4;
const ENTRY_LEN: usize = 512;

fn bench_store(c: &mut Criterion, rt: &Runtime, store: &Arc<dyn Store>) {
    let value = test_value(1, VALUE_LEN);
    let keys: Vec<String> = (0..KEYS).map(|i| format!("bench/{i:04}")).collect();
    rt.block_on(async {
        for key in &keys {
            store.put("bench", key, &value).await.expect("populate");
        }
    });
    let mut g = c.benchmark_group(store.kind());
    g.throughput(Throughput::Bytes(VALUE_LEN as u64));
    let mut i = 0;
    g.bench_function("put_1KiB", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            rt.block_on(store.put("bench", &keys[i], black_box(&value)))
                .expect("put")
        })
    });
    g.bench_function("get_1KiB", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            let got = rt.block_on(store.get("bench", &keys[i])).expect("get");
            assert_eq!(got.map(|v| v.len()), Some(VALUE_LEN));
        })
    });
    let entries: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| test_value(i as u64, ENTRY_LEN))
        .collect();
    let mut seq = 0;
    g.throughput(Throughput::Bytes((BATCH * ENTRY_LEN) as u64));
    g.bench_function("log_append_entries_4x512B", |b| {
        b.iter(|| {
            rt.block_on(store.log_append_entries("bench", seq, black_box(&entries)))
                .expect("append");
            seq += BATCH as u64;
        })
    });
    g.finish();
}

/// The baselines of the log appends: a plain file and a redb commit, on this disk.
fn bench_baselines(c: &mut Criterion, dir: &std::path::Path) {
    use std::os::unix::fs::FileExt;
    let entries: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| test_value(i as u64, ENTRY_LEN))
        .collect();
    let bytes: Vec<u8> = entries.concat();
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let file = std::fs::File::create(dir.join("raw-append")).expect("file");
    let mut end = 0u64;
    g.bench_function("raw_pwrite_fdatasync_4x512B", |b| {
        b.iter(|| {
            file.write_all_at(black_box(&bytes), end).expect("pwrite");
            file.sync_data().expect("fdatasync");
            end += bytes.len() as u64;
        })
    });
    const LOGS: redb::TableDefinition<(&str, u64), &[u8]> = redb::TableDefinition::new("logs");
    let db = redb::Database::create(dir.join("raw.redb")).expect("redb");
    let mut seq = 0u64;
    g.bench_function("redb_durable_commit_4x512B", |b| {
        b.iter(|| {
            let mut txn = db.begin_write().expect("begin");
            txn.set_durability(redb::Durability::Immediate)
                .expect("durability");
            {
                let mut table = txn.open_table(LOGS).expect("table");
                for entry in &entries {
                    table
                        .insert(("bench", seq), entry.as_slice())
                        .expect("insert");
                    seq += 1;
                }
            }
            txn.commit().expect("commit");
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let dir = tempfile::tempdir().expect("tempdir");
    let embedded = rt
        .block_on(veritee_store::open(
            dir.path().to_str().expect("UTF-8 path"),
        ))
        .expect("open the embedded store");
    bench_store(c, &rt, &embedded);
    drop(embedded);
    let baselines = tempfile::tempdir().expect("tempdir");
    bench_baselines(c, baselines.path());

    let url = match std::env::var("VERITEE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!(
                "postgres benchmarks skipped: VERITEE_TEST_POSTGRES is not set \
                 (run `bash .ci/postgres.sh` and set it to the URL it prints)"
            );
            return;
        }
    };
    let schema = format!("vt_bench_{}", std::process::id());
    let admin = rt.block_on(async {
        let client = veritee_store::connect_client(&url).await.expect("connect");
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        client
    });
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-csearch_path%3D{schema}");
    let postgres = rt
        .block_on(veritee_store::open(&scoped))
        .expect("open the postgres store");
    bench_store(c, &rt, &postgres);
    drop(postgres);
    rt.block_on(admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")))
        .expect("drop schema");
}

criterion_group!(benches, bench);
criterion_main!(benches);
