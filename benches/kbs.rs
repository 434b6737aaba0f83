//! KBS resource releases end to end on loopback: each release is a new session (auth,
//! attest with CoCo's sample TEE, resource), as a CoCo guest makes it, by a light
//! keep-alive client. Beside it, in the same run and by the same load generator: a null
//! axum handler answering the same three requests, and, when one is given, Trustee's
//! KBS. Server CPU per release is read from /proc (host and enclave processes for
//! veritee).
//!
//! Run: `cargo bench --bench kbs` (prints a Markdown table). For Trustee's KBS beside
//! it, start one with the sample TEE allowed and the resource `default/bench/key`
//! stored, then set `VERITEE_BENCH_TRUSTEE_URL=http://127.0.0.1:PORT` and
//! `VERITEE_BENCH_TRUSTEE_PID=PID`.

mod support;

use std::path::Path;
use std::time::Duration;
use veritee_client::NodeClient;
use veritee_kbs::jwe::{Curve, TeeKeyPair};

/// Client threads, unless VERITEE_BENCH_CLIENTS says otherwise.
const CLIENTS: usize = 4;
const DURATION: Duration = Duration::from_secs(8);
const RESOURCE: &str = "default/bench/key";
const SAMPLE_POLICY: &str = "version = 1\ntee = [\"coco-sample\"]\nallow_simulated = true\ntcb_status = [\"NotReported\"]\n";

struct Row {
    name: String,
    per_second: f64,
    p50_us: u128,
    cpu_us_per_op: Option<f64>,
}

/// Runs `op` from CLIENTS threads for DURATION; returns operations per second, the
/// median latency and the count.
fn load<S: 'static>(
    setup: impl Fn() -> S + Send + Sync + 'static,
    op: impl Fn(&mut S) + Send + Sync + 'static,
) -> (f64, u128, usize) {
    let mut all = support::run_clients(clients(), DURATION, setup, op);
    all.sort();
    let p50 = all.get(all.len() / 2).map_or(0, |d| d.as_micros());
    (all.len() as f64 / DURATION.as_secs_f64(), p50, all.len())
}

fn clients() -> usize {
    std::env::var("VERITEE_BENCH_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(CLIENTS)
}

/// CPU time (user + system) a process has used, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is parenthesized and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let clock_ticks = 100; // USER_HZ on Linux
    Duration::from_micros((ticks(11) + ticks(12)) * 1_000_000 / clock_ticks)
}

fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter().map(|p| cpu_time(*p)).sum()
}

/// Releases against `url`, with the CPU the server processes `pids` spent on them.
fn releases(name: &str, url: &str, pids: &[u32]) -> Row {
    let url = url.to_string();
    let before = cpu_of(pids);
    let (per_second, p50_us, count) = load(
        move || NodeClient::new(&url).expect("client"),
        |client| {
            let key = TeeKeyPair::generate_ec(Curve::P256).expect("key");
            let session = client.kbs_attest_sample(&key).expect("attest");
            let value = client
                .kbs_get_resource(&session, &key, RESOURCE)
                .expect("resource");
            assert_eq!(value.len(), 32);
        },
    );
    let cpu = cpu_of(pids).saturating_sub(before);
    eprintln!("[bench] measured: {name}");
    Row {
        name: name.into(),
        per_second,
        p50_us,
        cpu_us_per_op: (!pids.is_empty()).then(|| cpu.as_micros() as f64 / count as f64),
    }
}

/// A null handler that answers a release's three requests (auth, attest, resource).
fn null_server() -> (String, tokio::runtime::Runtime) {
    let echo = |body: axum::body::Bytes| async move { body };
    let app = axum::Router::new()
        .route("/kbs/v0/auth", axum::routing::post(echo))
        .route("/kbs/v0/attest", axum::routing::post(echo))
        .route(
            "/kbs/v0/resource/{*path}",
            axum::routing::get(|| async { "{}" }),
        );
    support::serve(app)
}

fn veritee_broker(dir: &Path) -> (support::Node, String, Vec<u32>) {
    let admin = veritee_crypto::sign::Ed25519SigningKey::generate().expect("admin key");
    let pem = veritee_kbs::token::admin_public_key_to_pem(&admin.public_key()).expect("pem");
    let key_file = dir.join("admin.pub");
    std::fs::write(&key_file, pem).expect("admin.pub");
    let state = dir.join("node");
    let (node, url) = support::start_node(
        &state,
        None,
        &[
            "--kbs-admin-key",
            key_file.to_str().expect("utf-8"),
            "--kbs-plaintext-resources",
        ],
    );
    let token = veritee_kbs::token::mint_admin_token(
        &admin,
        time::OffsetDateTime::now_utc(),
        time::Duration::hours(1),
    )
    .expect("token");
    let client = NodeClient::new(&url).expect("client");
    client
        .kbs_set_policy(&token, SAMPLE_POLICY)
        .expect("policy");
    client
        .kbs_put_resource(&token, RESOURCE, &[0x5a; 32])
        .expect("resource");
    let enclave: u32 = std::fs::read_to_string(state.join("run").join("enclave.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("enclave pid");
    let pids = vec![node.0.id(), enclave];
    (node, url, pids)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rows = Vec::new();

    let (null_url, _rt) = null_server();
    let (null_per_second, null_p50, _) = load(
        move || (reqwest::blocking::Client::new(), null_url.clone()),
        |(client, url)| {
            for (method, path) in [
                (reqwest::Method::POST, "auth"),
                (reqwest::Method::POST, "attest"),
                (reqwest::Method::GET, "resource/default/bench/key"),
            ] {
                client
                    .request(method, format!("{url}/kbs/v0/{path}"))
                    .body(vec![0u8; 256])
                    .send()
                    .and_then(|r| r.bytes())
                    .expect("null");
            }
        },
    );
    eprintln!("[bench] measured: null");
    rows.push(Row {
        name: "baseline: null axum handler, the same three requests".into(),
        per_second: null_per_second,
        p50_us: null_p50,
        cpu_us_per_op: None,
    });

    let (_node, url, pids) = veritee_broker(dir.path());
    rows.push(releases("veritee node (embedded store)", &url, &pids));

    match (
        std::env::var("VERITEE_BENCH_TRUSTEE_URL"),
        std::env::var("VERITEE_BENCH_TRUSTEE_PID"),
    ) {
        (Ok(url), Ok(pid)) => {
            let pid: u32 = pid.trim().parse().expect("VERITEE_BENCH_TRUSTEE_PID");
            rows.push(releases(
                "Trustee KBS (built-in AS, sample TEE)",
                &url,
                &[pid],
            ));
        }
        _ => eprintln!(
            "Trustee row skipped: set VERITEE_BENCH_TRUSTEE_URL and VERITEE_BENCH_TRUSTEE_PID"
        ),
    }

    println!(
        "| measurement ({} client threads, {} s each) | releases/s | p50 | server CPU per release | ratio to null |",
        clients(),
        DURATION.as_secs()
    );
    println!("|---|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {:.0} | {} µs | {} | {:.3} |",
            row.name,
            row.per_second,
            row.p50_us,
            row.cpu_us_per_op
                .map_or("-".to_string(), |us| format!("{us:.0} µs")),
            row.per_second / null_per_second,
        );
    }
}
