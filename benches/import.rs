//! Secret import and crypto as a service (flow 3) on loopback: operations by key id
//! through the API (64-byte AES-256-GCM encrypt, ECDSA P-256 sign of 64 bytes, each one
//! `crypto` call with one operation in an attested session) at several concurrencies,
//! beside, in the same run and by the same load generator, a null axum handler
//! answering bodies of the session messages' sizes, the session round trip alone
//! (Ping), and the raw primitive on one thread; then the latency of an import end to
//! end and of its phases. CPU per operation is read from /proc: the bench process (the
//! load generator, and the null handler on its rows), the host and the enclave.
//!
//! Run: `cargo bench --bench import` (prints a Markdown table). Concurrencies are 1, 8
//! and 32 unless VERITEE_BENCH_CLIENTS lists others (`VERITEE_BENCH_CLIENTS=8,16`).

mod support;

use support::{Ctx, session};

use axum::extract::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use veritee_channel::client::TenantKey;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_client::import::{ImportSpec, TeeLayer, prepare_import_as};
use veritee_client::{NodeClient, Session};
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::AeadKey;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_import::formats::ImportFormat;
use veritee_import::keys::{KeyRef, KeyType, Operation};

const CLIENTS: [usize; 3] = [1, 8, 32];
const DURATION: Duration = Duration::from_secs(4);
/// How long each raw primitive runs, on one thread.
const RAW_DURATION: Duration = Duration::from_secs(2);
/// Raw operations per timed batch (one operation is too short to time alone).
const RAW_BATCH: u32 = 1000;
/// Imports timed, each a new key id.
const IMPORTS: usize = 50;
const PARTITION: &str = "bench";
const DATA_LEN: usize = 64;

struct Row {
    name: String,
    clients: String,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// CPU per operation: the bench process, the host, the enclave.
    cpu: Option<[Duration; 3]>,
    /// Operations per second of the null handler at the same concurrency.
    null: Option<f64>,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn clients() -> Vec<usize> {
    std::env::var("VERITEE_BENCH_CLIENTS")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .filter(|n| *n > 0)
                .collect::<Vec<usize>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| CLIENTS.to_vec())
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

/// The processes whose CPU is read: this one, the host, the enclave (0: none).
#[derive(Clone, Copy)]
struct Pids([u32; 3]);

impl Pids {
    fn sample(self) -> [Duration; 3] {
        self.0
            .map(|p| if p == 0 { Duration::ZERO } else { cpu_time(p) })
    }
}

/// Runs `op` from `clients` threads for DURATION, each thread building its state first;
/// CPU is counted from the first operation (every thread's setup is done by then).
fn measure<S: 'static>(
    name: String,
    clients: usize,
    pids: Pids,
    null: Option<f64>,
    setup: impl Fn() -> S + Send + Sync + 'static,
    op: impl Fn(&mut S) + Send + Sync + 'static,
) -> Row {
    let started: Arc<OnceLock<[Duration; 3]>> = Arc::new(OnceLock::new());
    let first = Arc::clone(&started);
    let mut latencies = support::run_clients(clients, DURATION, setup, move |s| {
        first.get_or_init(|| pids.sample());
        op(s);
    });
    let after = pids.sample();
    let before = started.get().copied().unwrap_or(after);
    latencies.sort();
    let n = latencies.len().max(1) as u32;
    eprintln!("[bench] measured: {name} ({clients} clients)");
    Row {
        name,
        clients: clients.to_string(),
        per_second: latencies.len() as f64 / DURATION.as_secs_f64(),
        p50: quantile(&latencies, 0.5),
        p99: quantile(&latencies, 0.99),
        cpu: Some([0, 1, 2].map(|i| after[i].saturating_sub(before[i]) / n)),
        null,
    }
}

/// A null handler: takes a body and answers `len` bytes (the session reply's size).
async fn null_handler(Path(len): Path<usize>, _body: axum::body::Bytes) -> Vec<u8> {
    vec![0u8; len]
}

fn null_server() -> (String, tokio::runtime::Runtime) {
    let app = axum::Router::new().route("/null/{len}", axum::routing::post(null_handler));
    support::serve(app)
}

#[derive(Clone, Copy)]
enum Call {
    Ping,
    Encrypt,
    Sign,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Self::Ping => "session round trip, no operation (Ping)",
            Self::Encrypt => "API: AES-256-GCM encrypt, 64 bytes, by key id",
            Self::Sign => "API: ECDSA P-256 sign, 64 bytes, by key id",
        }
    }

    fn run(self, s: &mut Session<'_>) {
        let op = match self {
            Self::Ping => return s.ping().expect("ping"),
            Self::Encrypt => CryptoOp::Encrypt {
                key: KeyRef::new(PARTITION, "aes"),
                plaintext: SecretBytes::copy_from(&[0x42; DATA_LEN]),
                aad: Vec::new(),
            },
            Self::Sign => CryptoOp::Sign {
                key: KeyRef::new(PARTITION, "ecdsa"),
                message: vec![0x42; DATA_LEN],
            },
        };
        let outcomes = s.crypto(vec![op]).expect("crypto");
        let expected = match (self, &outcomes[..]) {
            (Self::Encrypt, [CryptoOutcome::Ciphertext(c)]) => c.len() > DATA_LEN,
            (Self::Sign, [CryptoOutcome::Signature { signature, .. }]) => signature.len() == 64,
            _ => false,
        };
        assert!(expected, "unexpected outcome {outcomes:?}");
    }
}

/// One primitive on one thread for RAW_DURATION, timed by batches.
fn raw(name: &str, op: impl Fn()) -> Row {
    let mut batches = Vec::new();
    let start = Instant::now();
    while start.elapsed() < RAW_DURATION {
        let t = Instant::now();
        for _ in 0..RAW_BATCH {
            op();
        }
        batches.push(t.elapsed() / RAW_BATCH);
    }
    let elapsed = start.elapsed();
    batches.sort();
    eprintln!("[bench] measured: {name}");
    Row {
        name: name.into(),
        clients: "1 thread".into(),
        per_second: (batches.len() as f64 * f64::from(RAW_BATCH)) / elapsed.as_secs_f64(),
        p50: quantile(&batches, 0.5),
        p99: quantile(&batches, 0.99),
        cpu: None,
        null: None,
    }
}

/// A row of latencies measured one after another by one client.
fn sequential(name: &str, mut latencies: Vec<Duration>) -> Row {
    let total: Duration = latencies.iter().sum();
    latencies.sort();
    Row {
        name: name.into(),
        clients: "1".into(),
        per_second: latencies.len() as f64 / total.as_secs_f64(),
        p50: quantile(&latencies, 0.5),
        p99: quantile(&latencies, 0.99),
        cpu: None,
        null: None,
    }
}

/// Imports `material` as `key_id` end to end; returns the time of each phase: fetch,
/// validate, prepare, send.
#[allow(clippy::too_many_arguments)]
fn import(
    client: &NodeClient,
    ctx: &Ctx,
    pin: &[u8; 32],
    key_id: &str,
    key_type: KeyType,
    operations: Vec<Operation>,
    material: &SecretBytes,
    format: ImportFormat,
) -> [Duration; 4] {
    let t = Instant::now();
    let fetched = client.fetch_import_keys().expect("import keys");
    let fetch = t.elapsed();
    let t = Instant::now();
    let keys = fetched
        .validate(&ctx.appraiser(), pin, time::OffsetDateTime::now_utc())
        .expect("validated");
    let validate = t.elapsed();
    let t = Instant::now();
    let spec = ImportSpec {
        partition: PARTITION.into(),
        key_id: key_id.into(),
        key_type,
        operations,
        rotate_after_secs: None,
        release: None,
        task_signers: vec![],
    };
    let layer = if format.is_veritee() {
        TeeLayer::Veritee {
            material,
            revocation: None,
        }
    } else {
        TeeLayer::Wrap { format, material }
    };
    let prepared = prepare_import_as(&keys, &ctx.tenant, &spec, layer).expect("prepare");
    let prepare = t.elapsed();
    let t = Instant::now();
    let imported = client
        .send_import(&ctx.tenant, &keys, &prepared)
        .expect("import");
    let send = t.elapsed();
    assert_eq!(imported.confirmation.key_id, key_id);
    [fetch, validate, prepare, send]
}

fn us(d: Duration) -> String {
    format!("{} µs", d.as_micros())
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("node");
    let (node, url) = support::start_node(&state, None, &[]);
    let token = std::fs::read_to_string(state.join("admin.token")).expect("token");
    let root = Arc::new(std::fs::read(state.join("vendor/root.pem")).expect("root"));
    let mut pin = [0u8; 32];
    let pin_hex = std::fs::read_to_string(state.join("provider/provider.pub")).expect("pin");
    hex::decode_to_slice(pin_hex.trim(), &mut pin).expect("provider.pub is hex");
    let enclave: u32 = std::fs::read_to_string(state.join("run").join("enclave.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("enclave pid");
    let node_pids = Pids([std::process::id(), node.0.id(), enclave]);
    let self_pid = Pids([std::process::id(), 0, 0]);

    // One tenant for every client (the node runs without a per-tenant rate limit).
    let tenant = TenantKey::generate().expect("key");
    let der = Arc::new(tenant.to_pkcs8().expect("pkcs8").expose().clone());
    let ctx = Ctx::new(&url, &der, &root);
    let client = NodeClient::new(&url).expect("client");
    client
        .register_tenant(&token, &ctx.tenant)
        .expect("register");
    client
        .create_partition(&ctx.tenant, PARTITION, None)
        .expect("partition");

    // The two keys the load uses (also the imports' warm-up), then timed imports.
    let aes = SecretBytes::copy_from(AeadKey::generate().expect("key").expose().expose());
    import(
        &client,
        &ctx,
        &pin,
        "aes",
        KeyType::Aes256Gcm,
        vec![Operation::Encrypt],
        &aes,
        ImportFormat::Veritee,
    );
    let ecdsa = EcdsaSigningKey::generate(EcdsaCurve::P256)
        .expect("key")
        .to_pkcs8()
        .expect("pkcs8");
    import(
        &client,
        &ctx,
        &pin,
        "ecdsa",
        KeyType::EcdsaP256,
        vec![Operation::Sign],
        &ecdsa,
        ImportFormat::Veritee,
    );
    let mut phases: [Vec<Duration>; 5] = Default::default();
    for i in 0..IMPORTS {
        let material = SecretBytes::copy_from(AeadKey::generate().expect("key").expose().expose());
        let times = import(
            &client,
            &ctx,
            &pin,
            &format!("import-{i}"),
            KeyType::Aes256Gcm,
            vec![Operation::Encrypt, Operation::Decrypt],
            &material,
            ImportFormat::Veritee,
        );
        phases[0].push(times.iter().sum());
        for (all, t) in phases[1..].iter_mut().zip(times) {
            all.push(t);
        }
    }
    eprintln!("[bench] measured: {IMPORTS} imports");
    // The standard formats, end to end and the enclave's part (send), on the same node.
    let mut standard = Vec::new();
    for format in [ImportFormat::RsaAesKeyWrap, ImportFormat::Hpke] {
        let (mut whole, mut sends) = (Vec::new(), Vec::new());
        for i in 0..IMPORTS {
            let material =
                SecretBytes::copy_from(AeadKey::generate().expect("key").expose().expose());
            let times = import(
                &client,
                &ctx,
                &pin,
                &format!("{format}-{i}"),
                KeyType::Aes256Gcm,
                vec![Operation::Encrypt],
                &material,
                format,
            );
            whole.push(times.iter().sum());
            sends.push(times[3]);
        }
        standard.push(sequential(
            &format!("import end to end, AES-256 key in the {format} format"),
            whole,
        ));
        standard.push(sequential(
            &format!("import phase: send only, {format} format"),
            sends,
        ));
    }
    let [end_to_end, fetch, validate, prepare, send] = phases;
    let mut rows = vec![
        sequential(
            "import end to end (fetch keys, validate, prepare, send), AES-256 key",
            end_to_end,
        ),
        sequential(
            "import phase: fetch keys (GET: fresh evidence, provider statement)",
            fetch,
        ),
        sequential(
            "import phase: validate (evidence verified and appraised, provider statement checked)",
            validate,
        ),
        sequential(
            "import phase: prepare (metadata signed, key encrypted twice)",
            prepare,
        ),
        sequential(
            "import phase: send only (POST: opened, stored, audited, confirmation checked)",
            send,
        ),
    ];
    rows.extend(standard);

    // The session messages' sizes, for the null handler's bodies.
    let (recording, exchanges) = NodeClient::new(&url).expect("client").recording();
    let mut probe = recording
        .open_session(&ctx.tenant, &ctx.appraiser())
        .expect("session");
    let mut sizes = Vec::new();
    for call in [Call::Ping, Call::Encrypt, Call::Sign] {
        call.run(&mut probe);
        let x = exchanges.lock().expect("lock");
        let last = x.last().expect("an exchange");
        sizes.push((
            call.name(),
            last.request_body.len(),
            last.response_body.len(),
        ));
    }
    drop(probe);
    for (name, request, response) in &sizes {
        eprintln!("[bench] {name}: request {request} bytes, reply {response} bytes");
    }
    let (_, request_len, reply_len) = sizes[1];

    // The raw primitives, on one thread.
    let aead = AeadKey::generate().expect("key");
    let signing = EcdsaSigningKey::generate(EcdsaCurve::P256).expect("key");
    let data = [0x42u8; DATA_LEN];
    rows.push(raw(
        "raw primitive: AES-256-GCM seal of 64 bytes (AeadKey, random nonce)",
        || {
            std::hint::black_box(aead.seal_with_random_nonce(&[], &data).expect("seal"));
        },
    ));
    rows.push(raw(
        "raw primitive: ECDSA P-256 sign of 64 bytes (EcdsaSigningKey)",
        || {
            std::hint::black_box(signing.sign(&data).expect("sign"));
        },
    ));

    let (null_url, _rt) = null_server();
    let null_url = Arc::new(format!("{null_url}/null/{reply_len}"));
    let url = Arc::new(url);
    for c in clients() {
        let u = Arc::clone(&null_url);
        let null = measure(
            format!("baseline: null axum handler, {request_len}-byte POST, {reply_len}-byte reply"),
            c,
            self_pid,
            None,
            move || (reqwest::blocking::Client::new(), Arc::clone(&u)),
            move |(http, url)| {
                let body = http
                    .post(url.as_str())
                    .body(vec![0u8; request_len])
                    .send()
                    .and_then(|r| r.bytes())
                    .expect("null");
                assert_eq!(body.len(), reply_len);
            },
        );
        let null_rate = null.per_second;
        rows.push(null);
        for call in [Call::Ping, Call::Encrypt, Call::Sign] {
            let (u, d, r) = (Arc::clone(&url), Arc::clone(&der), Arc::clone(&root));
            rows.push(measure(
                call.name().into(),
                c,
                node_pids,
                Some(null_rate),
                move || session(Ctx::new(&u, &d, &r)),
                move |s| call.run(s),
            ));
        }
    }

    println!(
        "| measurement ({} s per loaded row; {IMPORTS} imports) | clients | ops/s | p50 | p99 | CPU per op: bench process / host / enclave | ratio to null (same clients) |",
        DURATION.as_secs()
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} |",
            row.name,
            row.clients,
            row.per_second,
            us(row.p50),
            us(row.p99),
            row.cpu.map_or("-".to_string(), |[b, h, e]| {
                if h.is_zero() && e.is_zero() {
                    format!("{} (load and handler)", us(b))
                } else {
                    format!("{} / {} / {}", us(b), us(h), us(e))
                }
            }),
            row.null
                .map_or("-".to_string(), |n| format!("{:.2}", row.per_second / n)),
        );
    }
    let import_p50 = rows[0].p50;
    println!();
    println!(
        "Goal, import end to end under 5 ms median: {:.2} ms, {}",
        import_p50.as_secs_f64() * 1e3,
        if import_p50 < Duration::from_millis(5) {
            "met"
        } else {
            "not met"
        }
    );
    for row in rows
        .iter()
        .filter(|r| r.clients == "8" && r.name.starts_with("API"))
    {
        let ratio = row.null.map_or(0.0, |n| row.per_second / n);
        println!(
            "Goal, at least 0.5x the null handler at 8 clients: {}: {ratio:.2}x, {}",
            row.name,
            if ratio >= 0.5 { "met" } else { "not met" }
        );
    }
}
