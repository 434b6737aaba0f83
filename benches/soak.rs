//! Soak: many clients against one node for a long while, with zero errors and a flat
//! memory.
//!
//! `CLIENTS` client threads, each a tenant of its own, cycle through the node's main
//! operations for `--seconds` (default 600):
//! 1. an attested session opened (evidence verified, policy appraised) with a Ping;
//! 2. a secret written and released again in a session the thread keeps;
//! 3. a key deployment end to end (wrapping key fetched and verified, a fresh key
//!    wrapped, imported, receipt and audit checkpoint checked);
//! 4. a 64 KiB data object stored (the enclave vouching for the version) and fetched.
//!
//! Every failed operation counts as an error and is named; the resident memory of the
//! host and the enclave processes is sampled every 10 s. Prints a Markdown summary and
//! exits non-zero if any operation failed.
//!
//! `unset RUST_BACKTRACE; cargo bench --bench soak` (or `-- --seconds 60` for a short run,
//! `-- --ops 1,2,4` for some of the operations)

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Ctx;
use veritee_channel::client::TenantKey;
use veritee_channel::deploy::ReleasePolicy;
use veritee_client::{NodeClient, Session, import_wrapped_key, wrap_for_node};
use veritee_crypto::SecretBytes;

const CLIENTS: usize = 64;
const DEFAULT_SECONDS: u64 = 600;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const OBJECT_LEN: usize = 64 * 1024;
const OPERATIONS: [&str; 4] = [
    "attested session opened, with a Ping",
    "secret written and released",
    "key deployment end to end",
    "64 KiB data object stored and fetched",
];
/// One memory sample: seconds since the start, host RSS, enclave RSS (KiB).
type Sample = (u64, Option<u64>, Option<u64>);

/// Error messages kept for the report (all are counted).
const ERRORS_KEPT: usize = 20;

/// The value after `flag` on the command line.
fn arg<T: std::str::FromStr>(flag: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
}

/// Resident memory of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[derive(Default)]
struct Tally {
    done: [AtomicU64; 4],
    failed: [AtomicU64; 4],
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn record<T>(&self, op: usize, result: Result<T, String>) {
        match result {
            Ok(_) => {
                self.done[op].fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed[op].fetch_add(1, Ordering::Relaxed);
                let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
                if errors.len() < ERRORS_KEPT {
                    errors.push(format!("{}: {e}", OPERATIONS[op]));
                }
            }
        }
    }
}

/// One client thread's own things: its tenant, its kept session, its data key.
struct Client {
    ctx: &'static Ctx,
    node: &'static NodeClient,
    kept: Option<Session<'static>>,
    data_key: veritee_crypto::Confidential<[u8; 32]>,
    index: usize,
    round: u64,
}

impl Client {
    fn new(url: &str, admin_token: &str, root: &[u8], index: usize) -> Client {
        let tenant = TenantKey::generate().expect("tenant");
        let node: &'static NodeClient = Box::leak(Box::new(NodeClient::new(url).expect("client")));
        node.register_tenant(admin_token, &tenant)
            .expect("register");
        let der = tenant.to_pkcs8().expect("pkcs8");
        let ctx: &'static Ctx = Box::leak(Box::new(Ctx::new(url, der.expose(), root)));
        let client = Client {
            ctx,
            node,
            kept: None,
            data_key: veritee_crypto::rand::secret_array::<32>().expect("key"),
            index,
            round: 0,
        };
        // Data objects are encrypted under a key the enclave holds (deployed once).
        client
            .deploy(&client.data_key_name(), &client.data_key)
            .expect("data key deployed");
        client
    }

    fn data_key_name(&self) -> String {
        format!("data-{}", self.index)
    }

    fn deploy(
        &self,
        name: &str,
        key: &veritee_crypto::Confidential<[u8; 32]>,
    ) -> Result<(), String> {
        let wk = self.node.fetch_wrapping_key().map_err(|e| e.to_string())?;
        let attested = wk
            .verify(&self.ctx.appraiser())
            .map_err(|e| e.to_string())?;
        let policy = serde_json::to_vec(&self.ctx.policy).map_err(|e| e.to_string())?;
        let file = wrap_for_node(
            &attested,
            &self.ctx.tenant,
            name,
            ReleasePolicy::SameSigner,
            policy,
            key,
        )
        .map_err(|e| e.to_string())?;
        let imported =
            import_wrapped_key(self.node, &self.ctx.tenant, &file).map_err(|e| e.to_string())?;
        (imported.receipt.key_check == file.key_check)
            .then_some(())
            .ok_or_else(|| "the receipt names another key".into())
    }

    fn session(&self) -> Result<(), String> {
        self.node
            .open_session(&self.ctx.tenant, &self.ctx.appraiser())
            .and_then(|mut s| s.ping())
            .map_err(|e| e.to_string())
    }

    fn secret(&mut self) -> Result<(), String> {
        if self.kept.is_none() {
            self.kept = Some(
                self.node
                    .open_session(&self.ctx.tenant, &self.ctx.appraiser())
                    .map_err(|e| format!("opening the kept session: {e}"))?,
            );
        }
        let value = format!("secret {} of client {}", self.round, self.index);
        let outcome = self.kept.as_mut().map_or(Ok(()), |s| {
            s.put_secret("soak", SecretBytes::copy_from(value.as_bytes()))
                .and_then(|()| s.get_secret("soak"))
                .map_err(|e| e.to_string())
                .and_then(|got| {
                    (got.expose() == value.as_bytes())
                        .then_some(())
                        .ok_or_else(|| "released another value than written".to_string())
                })
        });
        if outcome.is_err() {
            self.kept = None;
        }
        outcome
    }

    fn deployment(&self) -> Result<(), String> {
        let key = veritee_crypto::rand::secret_array::<32>().map_err(|e| e.to_string())?;
        self.deploy(&format!("soak-{}-{}", self.index, self.round), &key)
    }

    fn data(&self) -> Result<(), String> {
        let mut object = vec![0u8; OBJECT_LEN];
        object[..8].copy_from_slice(&self.round.to_le_bytes());
        self.node
            .put_data(
                &self.ctx.tenant,
                "soak-object",
                &self.data_key_name(),
                &self.data_key,
                &object[..],
                |_| {},
            )
            .map_err(|e| e.to_string())?;
        let mut back = Vec::with_capacity(OBJECT_LEN);
        self.node
            .get_data(
                &self.ctx.tenant,
                "soak-object",
                &self.data_key,
                &mut back,
                |_, _| {},
            )
            .map_err(|e| e.to_string())?;
        (back == object)
            .then_some(())
            .ok_or_else(|| "fetched another object than stored".into())
    }
}

fn main() {
    let seconds = arg("--seconds").unwrap_or(DEFAULT_SECONDS);
    // `--ops 1,2,4` runs only those operations (numbered as above): to find which one
    // a change in memory comes from.
    let ops: Vec<usize> = arg::<String>("--ops")
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse::<usize>().ok())
                .filter(|n| (1..=OPERATIONS.len()).contains(n))
                .map(|n| n - 1)
                .collect()
        })
        .filter(|ops: &Vec<usize>| !ops.is_empty())
        .unwrap_or_else(|| (0..OPERATIONS.len()).collect());
    let ops = Arc::new(ops);
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("node");
    let (node, url) = support::start_node(&state, None, &[]);
    let host_pid = node.0.id();
    let enclave_pid: u32 = std::fs::read_to_string(state.join("run/enclave.pid"))
        .expect("enclave pid")
        .trim()
        .parse()
        .expect("pid");
    let token = std::fs::read_to_string(state.join("admin.token")).expect("token");
    let root = std::fs::read(state.join("vendor/root.pem")).expect("root");

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(std::sync::Barrier::new(CLIENTS + 1));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|index| {
            let (url, token, root) = (url.clone(), token.clone(), root.clone());
            let (tally, stop, ready) = (Arc::clone(&tally), Arc::clone(&stop), Arc::clone(&ready));
            let ops = Arc::clone(&ops);
            std::thread::spawn(move || {
                let mut client = Client::new(&url, &token, &root, index);
                ready.wait();
                // Threads start at different operations, so that all four run at once.
                let mut next = index % ops.len();
                while !stop.load(Ordering::Relaxed) {
                    let op = ops[next];
                    let result = match op {
                        0 => client.session(),
                        1 => client.secret(),
                        2 => client.deployment(),
                        _ => client.data(),
                    };
                    tally.record(op, result);
                    next = (next + 1) % ops.len();
                    client.round += 1;
                }
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let sample = |samples: &mut Vec<_>| {
        samples.push((
            started.elapsed().as_secs(),
            rss_kib(host_pid),
            rss_kib(enclave_pid),
        ));
    };
    sample(&mut samples);
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(
            SAMPLE_EVERY.min(Duration::from_secs(seconds).saturating_sub(started.elapsed())),
        );
        sample(&mut samples);
        let done: u64 = tally.done.iter().map(|d| d.load(Ordering::Relaxed)).sum();
        let failed: u64 = tally.failed.iter().map(|d| d.load(Ordering::Relaxed)).sum();
        eprintln!(
            "[soak] {:>4} s: {done} operations, {failed} errors",
            started.elapsed().as_secs()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    let elapsed = started.elapsed();

    println!(
        "| operation ({CLIENTS} clients, {} s) | completed | errors | per second |",
        elapsed.as_secs()
    );
    println!("|---|---:|---:|---:|");
    let mut errors = 0;
    for (i, name) in OPERATIONS.iter().enumerate() {
        let done = tally.done[i].load(Ordering::Relaxed);
        let failed = tally.failed[i].load(Ordering::Relaxed);
        errors += failed;
        println!(
            "| {name} | {done} | {failed} | {:.1} |",
            done as f64 / elapsed.as_secs_f64()
        );
    }
    let kib =
        |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{:.1} MiB", v as f64 / 1024.0));
    // After the first minute the caches and pools are warm: growth from there on is
    // what a flat memory must not show.
    let warm = samples
        .iter()
        .find(|(t, _, _)| *t >= 60)
        .or(samples.first())
        .copied()
        .unwrap_or((0, None, None));
    let last = samples.last().copied().unwrap_or((0, None, None));
    let max_of = |f: fn(&Sample) -> Option<u64>| samples.iter().filter_map(f).max();
    println!();
    println!(
        "| process | RSS at start | RSS at {} s | RSS at end ({} s) | max |",
        warm.0, last.0
    );
    println!("|---|---:|---:|---:|---:|");
    let first = samples.first().copied().unwrap_or((0, None, None));
    println!(
        "| host | {} | {} | {} | {} |",
        kib(first.1),
        kib(warm.1),
        kib(last.1),
        kib(max_of(|s| s.1))
    );
    println!(
        "| enclave | {} | {} | {} | {} |",
        kib(first.2),
        kib(warm.2),
        kib(last.2),
        kib(max_of(|s| s.2))
    );
    // The whole curve, a row every 5 minutes (and the last sample).
    println!();
    println!("| seconds | host RSS | enclave RSS |");
    println!("|---:|---:|---:|");
    for (i, s) in samples.iter().enumerate() {
        if s.0 % 300 < SAMPLE_EVERY.as_secs() || i + 1 == samples.len() {
            println!("| {} | {} | {} |", s.0, kib(s.1), kib(s.2));
        }
    }
    let kept = tally.errors.lock().unwrap_or_else(|e| e.into_inner());
    for e in kept.iter() {
        println!("error: {e}");
    }
    drop(node);
    if errors > 0 {
        eprintln!("{errors} operations failed");
        std::process::exit(1);
    }
}
