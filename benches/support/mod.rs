//! What the workspace benches share: a `veritee node` started in the background, a
//! load generator, and attested sessions to the node under a policy that admits the
//! simulated TEE.
// Each bench compiles this module for itself and uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use veritee_attest::ParsedCertificate;
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_client::{NodeClient, Session};
use veritee_policy::AppraisalPolicy;
use veritee_verify::Verifiers;

/// The benches' appraisal policy: the simulated TEE, which every default policy refuses.
pub const DEV_POLICY: &str = "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n";

/// What a load thread needs to open attested sessions: everything owned.
pub struct Ctx {
    pub url: String,
    pub tenant: TenantKey,
    pub anchors: veritee_attest::TrustAnchors,
    pub verifiers: Verifiers,
    pub policy: AppraisalPolicy,
}

impl Ctx {
    /// A context for the node at `url`, as the tenant of `tenant_der` (PKCS#8), trusting
    /// the simulated vendor's root `root` (PEM).
    pub fn new(url: &str, tenant_der: &[u8], root: &[u8]) -> Self {
        Self {
            url: url.to_string(),
            tenant: TenantKey::from_pkcs8(tenant_der).expect("key"),
            anchors: veritee_attest::TrustAnchors::untyped(
                ParsedCertificate::from_pem_chain(root).expect("anchor"),
            ),
            verifiers: Verifiers::default(),
            policy: AppraisalPolicy::parse(DEV_POLICY).expect("policy"),
        }
    }

    /// Appraises now, under the bench policy.
    pub fn appraiser(&self) -> Appraiser<'_> {
        Appraiser {
            verifiers: &self.verifiers,
            policy: &self.policy,
            trust_anchors: &self.anchors,
            collateral: &[],
            at: time::OffsetDateTime::now_utc(),
        }
    }
}

/// A session that owns its client and context (leaked for the bench's lifetime).
pub fn session(ctx: Ctx) -> Session<'static> {
    session_of(Box::leak(Box::new(ctx)))
}

/// A session of its own client, under a context that lives as long as the bench.
pub fn session_of(ctx: &'static Ctx) -> Session<'static> {
    let client: &'static NodeClient =
        Box::leak(Box::new(NodeClient::new(&ctx.url).expect("client")));
    client
        .open_session(&ctx.tenant, &ctx.appraiser())
        .expect("session")
}

/// A node process, killed when dropped.
pub struct Node(pub Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `veritee node` on loopback with its state in `state` (and `store`, else the
/// embedded default); returns it once it serves, with its URL.
/// `extra` are further arguments for `veritee node`.
pub fn start_node(state: &Path, store: Option<&str>, extra: &[&str]) -> (Node, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veritee"));
    command
        // No per-tenant or per-address rate limit: one tenant on one address is the
        // whole load here.
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--tenant-requests-per-second",
            "0",
            "--kbs-auth-per-second",
            "0",
            "--dir",
        ])
        .arg(state);
    if let Some(store) = store {
        command.args(["--store", store]);
    }
    command.args(extra);
    let child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("node");
    let node = Node(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(url) = std::fs::read_to_string(state.join("node.addr")) {
            return (node, url);
        }
        assert!(Instant::now() < deadline, "node did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `op` from `clients` threads for `duration`, each thread building its own state
/// first (outside the timed part); returns every operation's latency.
pub fn run_clients<S: 'static>(
    clients: usize,
    duration: Duration,
    setup: impl Fn() -> S + Send + Sync + 'static,
    op: impl Fn(&mut S) + Send + Sync + 'static,
) -> Vec<Duration> {
    let (setup, op) = (Arc::new(setup), Arc::new(op));
    let barrier = Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (setup, op, barrier) = (Arc::clone(&setup), Arc::clone(&op), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let mut state = setup();
                barrier.wait();
                let start = Instant::now();
                let mut latencies = Vec::new();
                while start.elapsed() < duration {
                    let t = Instant::now();
                    op(&mut state);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("load thread"))
        .collect()
}

/// Serves `app` on a loopback port from a runtime of its own; returns the base URL and
/// the runtime (the server stops when it is dropped).
pub fn serve(app: axum::Router) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rt)
}
