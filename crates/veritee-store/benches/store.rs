//! Put and get of 1 KiB values, per backend: the embedded store on a temporary
//! directory, and PostgreSQL when `VERITEE_TEST_POSTGRES` names a database (in a fresh
//! schema, dropped afterwards).
//!
//! Every put is durable when it returns: for the embedded store that is an fsync of
//! the database file per put; for PostgreSQL, a WAL flush per commit on the server.
//! Puts overwrite a working set of 100 keys; gets read the same keys.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use veritee_store::Store;
use veritee_store::conformance::test_value;

const KEYS: usize = 100;
const VALUE_LEN: usize = 1024;

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
