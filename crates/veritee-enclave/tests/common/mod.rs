//! The hostile host, in process: an enclave service on a simulated machine, and a
//! host that serves its storage from memory and may do anything a real host can (keep
//! copies, put old bytes back, delete, truncate, forge requests, replay them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use veritee_attest::{ParsedCertificate, TrustAnchors};
use veritee_channel::client::TenantKey;
use veritee_enclave::EnclaveService;
use veritee_platform::SealPolicy;
use veritee_platform::sim::{EnclaveImage, SimMachine, SimVendor};
use veritee_proto::api::auth::{self, Audience};
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply, SignedRequest};

pub use veritee_enclave::memory_host::MemoryHost;

pub mod import;
mod session;
pub mod workload;
#[allow(unused_imports)]
pub use session::{Session, open_session, s_ping};

/// A simulated vendor, a machine, a signer, and the code of "this build".
pub struct World {
    pub dir: tempfile::TempDir,
    pub anchors: Vec<ParsedCertificate>,
    pub signer: veritee_crypto::sign::EcdsaSigningKey,
}

impl World {
    pub fn new(machines: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = time::OffsetDateTime::now_utc();
        let mut vendor = SimVendor::init(&dir.path().join("vendor"), now).expect("vendor");
        for m in machines {
            SimMachine::init(&dir.path().join(m), &mut vendor, None, now).expect("machine");
        }
        let anchors =
            ParsedCertificate::from_pem_chain(&vendor.root_pem().expect("root")).expect("anchor");
        let signer =
            veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P384)
                .expect("signer");
        Self {
            dir,
            anchors,
            signer,
        }
    }

    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Starts (or restarts) an enclave of `code` on `machine`.
    pub fn enclave(&self, machine: &str, code: &[u8]) -> EnclaveService {
        self.enclave_with(machine, code, |s| s)
    }

    pub fn enclave_with(
        &self,
        machine: &str,
        code: &[u8],
        configure: impl FnOnce(EnclaveService) -> EnclaveService,
    ) -> EnclaveService {
        configure(self.enclave_at(machine, code, 1))
    }

    /// This world's signer's build of `code` at `security_version`.
    pub fn enclave_at(&self, machine: &str, code: &[u8], security_version: u16) -> EnclaveService {
        let machine = SimMachine::open(&self.dir.path().join(machine)).expect("machine");
        let image =
            EnclaveImage::signed(code, &self.signer, 1, security_version, false).expect("image");
        let platform = machine.launch(&image).expect("launch");
        EnclaveService::new(Box::new(platform), SealPolicy::Signer)
            .with_peer_anchors(TrustAnchors::untyped(self.anchors.clone()))
            .with_spool(self.spool())
    }

    pub fn policy(&self) -> String {
        "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n".into()
    }
}

/// The node id and epoch an enclave answers with.
pub fn audience(service: &EnclaveService, host: &mut MemoryHost) -> Audience {
    match service.handle(EnclaveCall::Status, host).expect("status") {
        EnclaveReply::Status(s) => Audience {
            node: s.node_id,
            epoch: s.epoch,
        },
        other => panic!("{other:?}"),
    }
}

thread_local! {
    /// How far the tenant's clock is from the machine's (a test of a host whose clock
    /// lies keeps the tenant's right).
    static TENANT_CLOCK_OFFSET: std::cell::Cell<time::Duration> =
        const { std::cell::Cell::new(time::Duration::ZERO) };
}

/// Runs `f` with the tenant's clock `offset` from the machine's.
pub fn with_tenant_clock<R>(offset: time::Duration, f: impl FnOnce() -> R) -> R {
    TENANT_CLOCK_OFFSET.with(|o| o.set(offset));
    let r = f();
    TENANT_CLOCK_OFFSET.with(|o| o.set(time::Duration::ZERO));
    r
}

/// `signer`'s signature, claiming `claimed`, over `method path body` for `audience`.
pub fn sign_as(
    audience: &Audience,
    claimed: &TenantKey,
    signer: &TenantKey,
    method: &str,
    path: &str,
    body: &[u8],
) -> SignedRequest {
    let ts =
        (time::OffsetDateTime::now_utc() + TENANT_CLOCK_OFFSET.with(|o| o.get())).unix_timestamp();
    sign_at(audience, claimed, signer, method, path, body, ts)
}

/// As [`sign_as`], dated `ts` (unix seconds, any value a header can carry).
pub fn sign_at(
    audience: &Audience,
    claimed: &TenantKey,
    signer: &TenantKey,
    method: &str,
    path: &str,
    body: &[u8],
    ts: i64,
) -> SignedRequest {
    use base64::Engine;
    let nonce = hex::encode(veritee_crypto::rand::array::<16>().expect("nonce"));
    let sig = signer
        .sign(&auth::signing_string(
            audience,
            method,
            path,
            ts,
            &nonce,
            &auth::body_payload(body),
        ))
        .expect("sign");
    SignedRequest {
        authorization: auth::header_value(
            &claimed.tenant_id().expect("id"),
            audience,
            ts,
            &nonce,
            &base64::engine::general_purpose::STANDARD.encode(sig),
        ),
        method: method.into(),
        path: path.into(),
    }
}

pub fn sign(
    audience: &Audience,
    tenant: &TenantKey,
    method: &str,
    path: &str,
    body: &[u8],
) -> SignedRequest {
    sign_as(audience, tenant, tenant, method, path, body)
}

/// Registers `tenant` with the enclave, with its proof of possession.
pub fn register(service: &EnclaveService, host: &mut MemoryHost, tenant: &TenantKey) {
    use base64::Engine;
    let aud = audience(service, host);
    let body = serde_json::to_vec(&veritee_proto::api::RegisterTenantRequest {
        public_key: base64::engine::general_purpose::STANDARD
            .encode(tenant.public_key_spki().expect("spki")),
    })
    .expect("json");
    let request = sign(&aud, tenant, "POST", "/v1/tenants", &body);
    service
        .handle(EnclaveCall::RegisterTenant { request, body }, host)
        .expect("register");
}

/// The message of a failed call.
pub fn refused(result: Result<EnclaveReply, EnclaveFailure>) -> EnclaveFailure {
    match result {
        Ok(reply) => panic!("accepted: {reply:?}"),
        Err(f) => f,
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte the host holds.
pub fn everything(host: &MemoryHost) -> Vec<u8> {
    let st = host.storage.lock().expect("storage");
    let mut out = Vec::new();
    for ((ns, key), v) in &st.objects {
        out.extend_from_slice(ns.as_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(v);
    }
    for entries in st.logs.values() {
        for e in entries {
            out.extend_from_slice(e);
        }
    }
    out
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// The bodies of the audit log's entries (length-prefixed JSON), oldest first.
pub fn audit_bodies(host: &MemoryHost) -> Vec<serde_json::Value> {
    let st = host.storage.lock().expect("storage");
    st.logs
        .iter()
        .filter(|(name, _)| name.starts_with("audit/"))
        .flat_map(|(_, entries)| entries.iter())
        .map(|entry| {
            let len = u32::from_be_bytes(entry[..4].try_into().expect("len")) as usize;
            serde_json::from_slice(&entry[4..4 + len]).expect("entry")
        })
        .collect()
}

/// One node of several in process: its enclave, its host, the URL its peers know it by.
pub struct Node {
    pub url: String,
    pub service: std::sync::Arc<EnclaveService>,
    pub host: MemoryHost,
}

impl Node {
    /// A node running `code` on `machine`, with an empty store.
    pub fn new(world: &World, machine: &str, code: &[u8], url: &str) -> Self {
        Self::of(world.enclave(machine, code), url)
    }

    /// A node of an enclave started otherwise.
    pub fn of(service: EnclaveService, url: &str) -> Self {
        Self {
            url: url.into(),
            service: std::sync::Arc::new(service),
            host: MemoryHost::default(),
        }
    }
}

/// Lets the enclave behind `from` reach `to`'s as a peer.
pub fn peer(from: &MemoryHost, to: &Node) {
    from.peers.lock().expect("peers").insert(
        to.url.clone(),
        (std::sync::Arc::clone(&to.service), to.host.clone()),
    );
}

/// Input 0 is a 4-byte little-endian key index and a `key_op` request; the module
/// makes the request, writes the answer to its output and exits with what `key_op`
/// returned (the answer's length, or the refusal code).
pub const KEY_OP: &str = r#"(module
  (import "veritee" "self_id" (func $self_id (result i32)))
  (import "veritee" "input_read" (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "veritee" "key_op" (func $key_op (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "run") (result i32)
    (local $n i32) (local $r i32)
    (local.set $n (call $input_read (call $self_id) (i32.const 0) (i64.const 0)
                                    (i32.const 0) (i32.const 65536)))
    (local.set $r (call $key_op (i32.load (i32.const 0)) (i32.const 4)
                                (i32.sub (local.get $n) (i32.const 4))
                                (i32.const 65536) (i32.const 65536)))
    (if (i32.ge_s (local.get $r) (i32.const 0))
      (then (drop (call $output_write (i32.const 65536) (local.get $r)))))
    (local.get $r)))"#;
