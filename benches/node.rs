//! Provider-node throughput on loopback: enclave round trips through the host (requests
//! per second, p50/p99 latency) beside a null axum handler measured by the same load
//! generator in the same run, and attested session establishments per second; for the
//! embedded store and, when VERITEE_TEST_POSTGRES is set, for PostgreSQL.
//!
//! Run: `cargo bench --bench node` (prints a Markdown table).

mod support;

use support::{Ctx, session, session_of};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use veritee_channel::client::TenantKey;
use veritee_channel::deploy::ReleasePolicy;
use veritee_channel::ops::{Request, Response};
use veritee_client::{NodeClient, import_wrapped_key, wrap_for_node};
use veritee_crypto::SecretBytes;

const CLIENTS: usize = 8;
const DURATION: Duration = Duration::from_secs(8);

struct Stats {
    rps: f64,
    p50_us: u128,
    p99_us: u128,
}

fn summarize(mut latencies: Vec<Duration>, elapsed: Duration) -> Stats {
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .map_or(0, |d| d.as_micros())
    };
    Stats {
        rps: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pick(0.50),
        p99_us: pick(0.99),
    }
}

/// Runs `op` from CLIENTS threads for DURATION; each thread builds its own state first.
fn load<S: 'static>(
    setup: impl Fn() -> S + Send + Sync + 'static,
    op: impl Fn(&mut S) + Send + Sync + 'static,
) -> Stats {
    summarize(support::run_clients(CLIENTS, DURATION, setup, op), DURATION)
}

fn null_server() -> (String, tokio::runtime::Runtime) {
    let app = axum::Router::new().route(
        "/null",
        axum::routing::post(|body: axum::body::Bytes| async move { body }),
    );
    support::serve(app)
}

/// Keeps a row, and says on stderr that its phase is over (a profiler can wait for the
/// line before the phase it wants: `... 2>&1 | grep -m1 'measured: .*resumed'`).
fn record(out: &mut Vec<(String, Stats)>, name: String, stats: Stats) {
    eprintln!("[bench] measured: {name}");
    out.push((name, stats));
}

fn bench_store(label: &str, store: String, dir: &Path) -> Vec<(String, Stats)> {
    let state = dir.join(label);
    let (_node, url) = support::start_node(&state, Some(&store), &[]);
    let token = std::fs::read_to_string(state.join("admin.token")).expect("token");
    let root = Arc::new(std::fs::read(state.join("vendor/root.pem")).expect("root"));
    let tenant = TenantKey::generate().expect("key");
    NodeClient::new(&url)
        .expect("client")
        .register_tenant(&token, &tenant)
        .expect("register");
    let der = Arc::new(tenant.to_pkcs8().expect("pkcs8").expose().clone());
    let url = Arc::new(url);

    let mut out = Vec::new();
    let (u, d, r) = (Arc::clone(&url), Arc::clone(&der), Arc::clone(&root));
    let stats = load(
        move || (Ctx::new(&u, &d, &r), NodeClient::new(&u).expect("client")),
        |(ctx, client)| {
            client
                .open_session(&ctx.tenant, &ctx.appraiser())
                .expect("session");
        },
    );
    record(
        &mut out,
        format!("{label} store: attested session establishment (evidence + verify + HPKE)"),
        stats,
    );

    // The same, with the hello and a first request (Ping), as a resumption has.
    let (u, d, r) = (Arc::clone(&url), Arc::clone(&der), Arc::clone(&root));
    let stats = load(
        move || (Ctx::new(&u, &d, &r), NodeClient::new(&u).expect("client")),
        |(ctx, client)| {
            client
                .open_session(&ctx.tenant, &ctx.appraiser())
                .expect("session")
                .ping()
                .expect("ping");
        },
    );
    record(
        &mut out,
        format!("{label} store: attested session establishment with its first request (Ping)"),
        stats,
    );

    // A returning client: a ticket from an attested session, then each resumption
    // carries its first request (a Ping) and needs no evidence verified.
    let (u, d, r) = (Arc::clone(&url), Arc::clone(&der), Arc::clone(&root));
    let stats = load(
        move || {
            let ctx: &'static Ctx = Box::leak(Box::new(Ctx::new(&u, &d, &r)));
            let resumption = session_of(ctx).resumption().expect("ticket");
            (ctx, NodeClient::new(&ctx.url).expect("client"), resumption)
        },
        |(ctx, client, resumption)| {
            let (_, reply) = client
                .resume_session(&ctx.tenant, resumption, &Request::Ping)
                .expect("resume");
            assert!(matches!(reply, Response::Pong), "{reply:?}");
        },
    );
    record(
        &mut out,
        format!("{label} store: session resumed by ticket, with its first request (Ping)"),
        stats,
    );

    let (u, d, r) = (Arc::clone(&url), Arc::clone(&der), Arc::clone(&root));
    let stats = load(
        move || session(Ctx::new(&u, &d, &r)),
        |s| s.ping().expect("ping"),
    );
    record(
        &mut out,
        format!("{label} store: enclave round trip through the host (Ping)"),
        stats,
    );

    let (u, d, r) = (Arc::clone(&url), Arc::clone(&der), Arc::clone(&root));
    let stats = load(
        move || {
            let mut s = session(Ctx::new(&u, &d, &r));
            s.put_secret("bench", SecretBytes::copy_from(&[7u8; 32]))
                .expect("put");
            s
        },
        |s| {
            s.get_secret("bench").expect("get");
        },
    );
    record(
        &mut out,
        format!("{label} store: secret release (store read, unseal, durable audit append)"),
        stats,
    );

    // Key deployment end to end: fetch the attested wrapping key, verify its evidence
    // and appraise it (timed apart), wrap a fresh key and sign the file, import it,
    // check the receipt and the audit checkpoint that comes with it.
    let verifying = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let (u, d, r, v) = (
        Arc::clone(&url),
        Arc::clone(&der),
        Arc::clone(&root),
        Arc::clone(&verifying),
    );
    let stats = load(
        move || (Ctx::new(&u, &d, &r), NodeClient::new(&u).expect("client")),
        move |(ctx, client)| {
            let wk = client.fetch_wrapping_key().expect("wrapping key");
            let t = Instant::now();
            let attested = wk.verify(&ctx.appraiser()).expect("attested");
            v.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let name = format!("bench-{}", counter.fetch_add(1, Ordering::Relaxed));
            let key = veritee_crypto::rand::secret_array::<32>().expect("key");
            // Replicas must meet the policy this node's enclave was appraised under.
            let policy = serde_json::to_vec(&ctx.policy).expect("policy");
            let file = wrap_for_node(
                &attested,
                &ctx.tenant,
                &name,
                ReleasePolicy::SameSigner,
                policy,
                &key,
            )
            .expect("wrap");
            // Checks the file, imports, and checks the receipt and its checkpoint.
            let imported = import_wrapped_key(client, &ctx.tenant, &file).expect("import");
            assert_eq!(imported.receipt.key_check, file.key_check);
        },
    );
    // The load threads are busy for the whole run, so their total time is CLIENTS x DURATION.
    let share = verifying.load(Ordering::Relaxed) as f64
        / (CLIENTS as f64 * DURATION.as_nanos() as f64)
        * 100.0;
    record(
        &mut out,
        format!(
            "{label} store: key deployment end to end ({share:.0}% of it verifying and appraising evidence)"
        ),
        stats,
    );
    out
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rows = Vec::new();
    let (null_url, _rt) = null_server();
    let null = load(
        move || (reqwest::blocking::Client::new(), format!("{null_url}/null")),
        |(c, url)| {
            c.post(url.as_str())
                .body(vec![0u8; 64])
                .send()
                .and_then(|r| r.bytes())
                .expect("null");
        },
    );
    rows.push((
        "baseline: null axum handler, same load generator".to_string(),
        null,
    ));
    rows.extend(bench_store(
        "embedded",
        dir.path().join("store").display().to_string(),
        dir.path(),
    ));
    match std::env::var("VERITEE_TEST_POSTGRES") {
        Ok(url) => rows.extend(bench_store("postgres", url, dir.path())),
        Err(_) => eprintln!("PostgreSQL rows skipped: set VERITEE_TEST_POSTGRES"),
    }
    println!(
        "| measurement ({CLIENTS} client threads, {} s each) | req/s | p50 | p99 |",
        DURATION.as_secs()
    );
    println!("|---|---:|---:|---:|");
    for (name, s) in &rows {
        println!(
            "| {name} | {:.0} | {} µs | {} µs |",
            s.rps, s.p50_us, s.p99_us
        );
    }
}
