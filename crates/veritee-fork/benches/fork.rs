//! Fork latency of an application holding 1, 16, 64 and 256 MiB of state, full (the
//! first snapshot) and incremental (1% of the pages changed since the last), beside the
//! bound of a `memcpy` plus an AES-256-GCM encryption and decryption (raw aws-lc-rs)
//! of the same bytes, measured in the same run.
//!
//! A fork here is everything but the attested exchange and the sockets: the parent's
//! snapshot brought up to date, the offer sealed, the frames cut into 1 MiB chunks as
//! the host would carry them, and the child's instance started, restored from them and
//! checked. The exchange (one peer handshake, independent of the state's size) and the
//! host's copies are the enclave's part, measured with the node.
//!
//! `cargo bench -p veritee-fork --bench fork`; `VERITEE_FORK_BENCH_SIZES=1,16` picks
//! sizes in MiB, `VERITEE_FORK_BENCH_RUNS=5` the runs per figure (medians are shown).

use std::time::{Duration, Instant};

use bound::{bound, median, ms};

use veritee_crypto::Confidential;
use veritee_fork::{AppRuntime, ForkSecret, Restorer, Snapshot};
use veritee_wasm::rewrite::{PreparedModule, prepare};
use veritee_wasm::{App, TaskEngine, TaskLimits};

/// The bound and the medians, shared with the fork bench through the nodes.
#[path = "support/bound.rs"]
mod bound;

/// The application both fork benches fork (`fill`, `touch`).
const WORKLOAD: &str = include_str!("workload.wat");

const CHUNK: usize = 1 << 20;

fn limits() -> TaskLimits {
    TaskLimits {
        memory_bytes: 512 << 20,
        timeout: Duration::from_secs(600),
        ..TaskLimits::default()
    }
}

fn runtime(app: &App) -> AppRuntime {
    AppRuntime {
        counters: app.counters(),
        limits: app.limits().clone(),
    }
}

/// Where a fork's time went.
#[derive(Default, Clone, Copy)]
struct Phases {
    /// Comparing pages with the shadow, encrypting the changed ones.
    update: Duration,
    /// Sealing the offer and cutting the frames into chunks (the host's copy).
    send: Duration,
    /// Opening the offer, starting the child's instance and sizing its memory.
    start: Duration,
    /// Decrypting the pages into the child's memory.
    restore: Duration,
}

impl Phases {
    fn total(&self) -> Duration {
        self.update + self.send + self.start + self.restore
    }
}

/// Brings the snapshot up to date, offers it and restores a child from it; returns
/// the child (so that its memory can be checked outside the timing) and the phases.
fn fork(
    engine: &TaskEngine,
    prepared: &PreparedModule,
    parent: &mut App,
    snapshot: &mut Snapshot,
    secret: &ForkSecret,
) -> (App, Phases) {
    let mut phases = Phases::default();
    let t = Instant::now();
    let globals = parent.globals();
    let rt = runtime(parent);
    snapshot
        .update(parent.memory(), globals, rt)
        .expect("update");
    phases.update = t.elapsed();

    let t = Instant::now();
    let offer = snapshot.offer(secret).expect("offer");
    let mut chunks = Vec::new();
    let mut from = Some(0);
    while let Some(at) = from {
        let (chunk, next) = snapshot.frames(at, CHUNK);
        chunks.push(chunk);
        from = next;
    }
    phases.send = t.elapsed();

    let t = Instant::now();
    let mut restorer = Restorer::open(secret, offer.as_bytes()).expect("open");
    let state = restorer.state().clone();
    let mut child = App::start(engine, "bench", prepared, &state.runtime.limits).expect("start");
    child
        .restore(state.memory_len, &state.globals, state.runtime.counters)
        .expect("restore");
    phases.start = t.elapsed();

    let t = Instant::now();
    for chunk in &chunks {
        restorer.push(chunk, child.memory_mut()).expect("push");
    }
    restorer.finish(child.memory_mut()).expect("finish");
    phases.restore = t.elapsed();
    snapshot.rekey().expect("rekey");
    (child, phases)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("VERITEE_FORK_BENCH_SIZES")
        .unwrap_or_else(|_| "1,16,64,256".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runs: usize = std::env::var("VERITEE_FORK_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let engine = TaskEngine::global().expect("engine");
    let prepared = prepare("bench", WORKLOAD.as_bytes()).expect("prepare");
    let secret = ForkSecret::new(Confidential::new([9; 32]));
    println!(
        "| state | bound: memcpy + AES-GCM enc + dec | full fork | full / bound | incremental fork (1% dirty) | incremental / bound | full: update / send / start / restore |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|");
    for mib in sizes {
        let pages = (mib * 16) as u32;
        let (mut full, mut incremental, mut bounds) = (Vec::new(), Vec::new(), Vec::new());
        let mut breakdowns = Vec::new();
        for _ in 0..runs {
            let mut parent = App::start(engine, "bench", &prepared, &limits()).expect("start");
            let fill = parent.call("fill", &pages.to_le_bytes()).expect("fill");
            assert_eq!(fill.exit_code, 0);
            assert_eq!(parent.memory().len(), mib << 20);
            bounds.push(bound(parent.memory()));
            let mut snapshot = Snapshot::new([1; 16], [2; 32], runtime(&parent)).expect("new");

            let (child, phases) = fork(engine, &prepared, &mut parent, &mut snapshot, &secret);
            full.push(phases.total());
            breakdowns.push(phases);
            assert!(
                child.memory() == parent.memory(),
                "the child's memory differs"
            );
            drop(child);

            parent.call("touch", b"").expect("touch");
            let (child, phases) = fork(engine, &prepared, &mut parent, &mut snapshot, &secret);
            incremental.push(phases.total());
            assert!(
                child.memory() == parent.memory(),
                "the child's memory differs"
            );
        }
        let (b, f, i) = (median(bounds), median(full), median(incremental));
        breakdowns.sort_by_key(Phases::total);
        let p = breakdowns[breakdowns.len() / 2];
        println!(
            "| {mib} MiB | {} ms | {} ms | {:.2}x | {} ms | {:.2}x | {} / {} / {} / {} ms |",
            ms(b),
            ms(f),
            f.as_secs_f64() / b.as_secs_f64(),
            ms(i),
            i.as_secs_f64() / b.as_secs_f64(),
            ms(p.update),
            ms(p.send),
            ms(p.start),
            ms(p.restore),
        );
    }
}
