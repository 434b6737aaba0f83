//! Shared harness of the node-level tests: start real `veritee node` processes on
//! loopback, talk to them, scan what they touched.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use veritee_attest::ParsedCertificate;
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_client::NodeClient;
use veritee_policy::AppraisalPolicy;
use veritee_verify::Verifiers;

#[allow(unused_macros)]
/// Runs a test body once per store: `embedded` always, `postgres` when configured.
macro_rules! both_stores {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn embedded() {
                super::$body("embedded");
            }
            #[test]
            fn postgres() {
                super::$body("postgres");
            }
        }
    };
}

pub const DEV_POLICY: &str = "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n";

pub struct Node {
    pub child: Child,
    pub state: PathBuf,
    pub url: String,
    pub log: PathBuf,
    pub store: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn postgres_url() -> Option<String> {
    std::env::var("VERITEE_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

pub fn start(state: &Path, store: &str) -> Node {
    start_with(state, store, &[])
}

/// Starts a node with extra `veritee node` arguments.
pub fn start_with(state: &Path, store: &str, extra: &[&str]) -> Node {
    let _ = std::fs::remove_file(state.join("node.addr"));
    let log = state.with_extension("log");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veritee"));
    cmd.args([
        "node",
        "--dir",
        state.to_str().expect("utf-8 path"),
        "--listen",
        "127.0.0.1:0",
        "--store",
        store,
    ])
    .args(extra)
    .env("RUST_LOG", "debug")
    .stdout(Stdio::null())
    .stderr(log_file);
    let child = cmd.spawn().expect("start node");
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = loop {
        if let Ok(url) = std::fs::read_to_string(state.join("node.addr")) {
            break url;
        }
        assert!(
            Instant::now() < deadline,
            "node did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    Node {
        child,
        state: state.to_path_buf(),
        url,
        log,
        store: store.to_string(),
    }
}

/// A node on store `kind` with its state in `dir/node`; `None` when that store is not
/// configured here.
pub fn node_on(kind: &str, dir: &Path) -> Option<Node> {
    let store = store_location(kind, dir)?;
    Some(start(&dir.join("node"), &store))
}

pub fn store_location(kind: &str, dir: &Path) -> Option<String> {
    match kind {
        "embedded" => Some(dir.join("store").display().to_string()),
        "postgres" => {
            let url = postgres_url();
            if url.is_none() && std::env::var("VERITEE_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("VERITEE_REQUIRE_POSTGRES=1 but VERITEE_TEST_POSTGRES is not set");
            }
            if url.is_none() {
                eprintln!(
                    "PostgreSQL node tests skipped: VERITEE_TEST_POSTGRES is not set (.ci/run sets it)"
                );
            }
            url
        }
        other => panic!("unknown store {other}"),
    }
}

pub struct Tenant {
    pub key: TenantKey,
}

impl Node {
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.state.join("admin.token")).expect("admin token")
    }

    pub fn client(&self) -> NodeClient {
        NodeClient::new(&self.url).expect("client")
    }

    pub fn tenant(&self) -> Tenant {
        let key = TenantKey::generate().expect("tenant key");
        self.client()
            .register_tenant(&self.admin_token(), &key)
            .expect("register tenant");
        Tenant { key }
    }

    /// The file clients verify this node against: the anchor it was given, else the
    /// root of the simulated vendor it created.
    pub fn anchor_path(&self) -> PathBuf {
        let given = self.state.join("trust-anchor.pem");
        if given.exists() {
            given
        } else {
            self.state.join("vendor/root.pem")
        }
    }

    pub fn anchors(&self) -> Vec<ParsedCertificate> {
        ParsedCertificate::from_pem_chain(&std::fs::read(self.anchor_path()).expect("anchor"))
            .expect("anchor")
    }

    pub fn enclave_pid(&self) -> u32 {
        std::fs::read_to_string(self.state.join("run/enclave.pid"))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    }

    /// Entries in the node's audit log so far.
    pub fn audit_len(&self) -> usize {
        self.client()
            .audit_log(&self.admin_token(), 0, 100_000)
            .expect("audit")
            .entries
            .len()
    }

    pub fn health(&self) -> serde_json::Value {
        let body = reqwest::blocking::get(format!("{}/healthz", self.url))
            .and_then(|r| r.text())
            .unwrap_or_default();
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
    }
}

pub struct Appraisal {
    pub verifiers: Verifiers,
    pub policy: AppraisalPolicy,
    pub anchors: veritee_attest::TrustAnchors,
}

impl Appraisal {
    pub fn new(node: &Node) -> Self {
        Self {
            verifiers: Verifiers::default(),
            policy: AppraisalPolicy::parse(DEV_POLICY).expect("policy"),
            anchors: veritee_attest::TrustAnchors::untyped(node.anchors()),
        }
    }

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

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether any file under `dir` holds `needle`.
pub fn tree_contains(dir: &Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            tree_contains(&path, needle)
        } else {
            std::fs::read(&path).is_ok_and(|bytes| contains(&bytes, needle))
        }
    })
}

/// Reads every readable mapping of a live process (root may read any process's memory).
pub fn process_memory(pid: u32) -> Vec<u8> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("mem");
    let mut out = Vec::new();
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.contains("[vvar]") || line.contains("[vsyscall]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        if b - a > 1 << 30 {
            continue;
        }
        use std::io::Seek;
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.seek(std::io::SeekFrom::Start(a)).is_ok() && mem.read_exact(&mut buf).is_ok() {
            out.extend_from_slice(&buf);
        }
    }
    out
}

pub fn all_files(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_files(&p));
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.extend(bytes);
            }
        }
    }
    out
}

pub fn veritee(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veritee"))
        .args(args)
        .env("VERITEE_SESSION_CACHE", session_cache())
        .output()
        .expect("run veritee")
}

/// Where this test process's commands keep their sessions (not the user's cache):
/// one command resumes what an earlier one of the same test attested.
pub fn session_cache() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("session cache"))
        .path()
        .join("sessions")
}

pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A simulated vendor, machines it certified, and an enclave signer shared by nodes.
pub struct Fleet {
    pub dir: tempfile::TempDir,
}

impl Fleet {
    pub fn new(machines: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let fleet = Self { dir };
        assert!(
            veritee(&["vendor", "init", "--dir", &s(&fleet.p("vendor"))])
                .status
                .success()
        );
        for m in machines {
            assert!(
                veritee(&[
                    "platform",
                    "init",
                    "--dir",
                    &s(&fleet.p(m)),
                    "--vendor",
                    &s(&fleet.p("vendor"))
                ])
                .status
                .success()
            );
        }
        for signer in ["signer", "other-signer"] {
            let key = veritee_crypto::sign::EcdsaSigningKey::generate(
                veritee_crypto::sign::EcdsaCurve::P384,
            )
            .expect("key");
            let pem =
                veritee_x509::pem::encode("PRIVATE KEY", key.to_pkcs8().expect("pkcs8").expose());
            std::fs::write(fleet.p(&format!("{signer}.pem")), pem).expect("write signer");
        }
        std::fs::write(fleet.p("dev.toml"), DEV_POLICY).expect("policy");
        fleet
    }

    pub fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A node on `machine`, signed by `signer`, replicating from `peers`.
    pub fn node(
        &self,
        name: &str,
        machine: &str,
        signer: &str,
        store: &str,
        peers: &[&str],
    ) -> Node {
        self.node_with_anchors(
            name,
            machine,
            signer,
            store,
            peers,
            &self.p("vendor/root.pem"),
            &[],
        )
    }

    /// As [`Fleet::node`], with the enclave's (measured) peer trust anchors from
    /// `anchors`, and `more` arguments for `veritee node`.
    #[allow(clippy::too_many_arguments)]
    pub fn node_with_anchors(
        &self,
        name: &str,
        machine: &str,
        signer: &str,
        store: &str,
        peers: &[&str],
        anchors: &Path,
        more: &[&str],
    ) -> Node {
        let state = self.p(name);
        std::fs::create_dir_all(&state).expect("state dir");
        std::fs::copy(self.p("vendor/root.pem"), state.join("trust-anchor.pem")).expect("anchor");
        let (platform, key, anchors) = (
            s(&self.p(machine)),
            s(&self.p(&format!("{signer}.pem"))),
            s(anchors),
        );
        let mut extra = vec![
            "--platform",
            &platform,
            "--enclave-signer-key",
            &key,
            "--peer-trust-anchors",
            &anchors,
        ];
        for p in peers {
            extra.extend(["--peer", p]);
        }
        extra.extend(more);
        let node = start_with(&state, store, &extra);
        // Each peer accepts this node's enclave traffic, as an operator would allow it.
        let token = std::fs::read_to_string(state.join("peer.token")).expect("peer token");
        for peer in peers {
            let peer_state = self.state_of(peer);
            let admin = std::fs::read_to_string(peer_state.join("admin.token")).expect("admin");
            NodeClient::new(peer)
                .expect("client")
                .register_peer(&admin, name, &token)
                .expect("register peer");
        }
        node
    }

    /// The state directory of the fleet's node serving `url`.
    pub fn state_of(&self, url: &str) -> PathBuf {
        std::fs::read_dir(self.dir.path())
            .expect("fleet dir")
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::read_to_string(p.join("node.addr")).is_ok_and(|a| a == url))
            .expect("a fleet node at that URL")
    }

    pub fn anchor(&self) -> String {
        s(&self.p("vendor/root.pem"))
    }
}

pub fn tenant_file(node: &Node, dir: &Path) -> PathBuf {
    let path = dir.join(format!(
        "tenant-{}.key",
        hex::encode(veritee_crypto::rand::array::<4>().expect("rand"))
    ));
    let o = veritee(&[
        "tenant",
        "create",
        "--node",
        &node.url,
        "--admin-token",
        &s(&node.state.join("admin.token")),
        "--out",
        &s(&path),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    path
}

pub fn load_tenant(path: &Path) -> veritee_channel::client::TenantKey {
    let (_, der) = veritee_x509::pem::blocks(&std::fs::read(path).expect("read"))
        .expect("pem")
        .remove(0);
    veritee_channel::client::TenantKey::from_pkcs8(&der).expect("tenant")
}

/// The enclave a node's tenants sign for (`GET /v1/node`).
pub fn audience(url: &str) -> veritee_proto::api::auth::Audience {
    let info: veritee_proto::api::NodeInfo = reqwest::blocking::get(format!("{url}/v1/node"))
        .and_then(|r| r.json())
        .expect("node info");
    veritee_proto::api::auth::Audience {
        node: info.node_id,
        epoch: info.epoch,
    }
}

pub fn signed_header(url: &str, key: &TenantKey, method: &str, path: &str, body: &[u8]) -> String {
    header_claiming(url, key, key, method, path, body)
}

pub fn header_claiming(
    url: &str,
    claimed: &TenantKey,
    signer: &TenantKey,
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    let digest = hex::encode(veritee_crypto::digest::sha256(body));
    header_over(url, claimed, signer, method, path, &digest)
}

/// An Authorization header claiming `claimed`, signed by `signer` for the node at `url`
/// over a request whose body `payload` stands for (its hex digest, or a task-file
/// piece's length).
pub fn header_over(
    url: &str,
    claimed: &TenantKey,
    signer: &TenantKey,
    method: &str,
    path: &str,
    payload: &str,
) -> String {
    header_for(&audience(url), claimed, signer, method, path, payload)
}

/// As [`header_over`], for a given audience (to sign for another node or epoch).
pub fn header_for(
    audience: &veritee_proto::api::auth::Audience,
    claimed: &TenantKey,
    signer: &TenantKey,
    method: &str,
    path: &str,
    payload: &str,
) -> String {
    use base64::Engine;
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let nonce = hex::encode(veritee_crypto::rand::array::<16>().expect("nonce"));
    let sig = signer
        .sign(&veritee_proto::api::auth::signing_string(
            audience, method, path, ts, &nonce, payload,
        ))
        .expect("sign");
    veritee_proto::api::auth::header_value(
        &claimed.tenant_id().expect("id"),
        audience,
        ts,
        &nonce,
        &base64::engine::general_purpose::STANDARD.encode(sig),
    )
}

/// Every object a tenant has in a PostgreSQL store, and the shared namespaces: what
/// the host's store holds that concerns it.
pub fn dump_postgres(url: &str, tenant: &str) -> Vec<u8> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = veritee_store::open(url).await.expect("postgres");
        let mut out = Vec::new();
        for ns in [
            "tenants",
            "host-tenants",
            "kms-status",
            &format!("t/{tenant}"),
        ] {
            for key in store.list(ns, "", None, 10_000).await.expect("list") {
                out.extend(store.get(ns, &key).await.expect("get").unwrap_or_default());
            }
        }
        out
    })
}
