//! Talking to a provider node: register a tenant, open attested sessions, use them,
//! fetch and check the audit log. Blocking, for command-line tools and tests.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod task;

use base64::Engine;
use std::sync::{Arc, Mutex};
use thiserror::Error;
use veritee_attest::ReportData;
use veritee_channel::ChannelError;
use veritee_channel::client::{Appraiser, ClientSession, Offer, TenantKey, fresh_nonce};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_proto::api::{
    AttestationResponse, AuditLog, ErrorBody, Health, OpenSessionRequest, OpenSessionResponse,
    RegisterTenantRequest, RegisterTenantResponse, auth,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Label binding the node's audit key in attestation.
pub const NODE_BINDING_LABEL: &[u8] = b"veritee node v1";

/// Why a client operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node answered with an error.
    #[error("node refused the request ({status} {code}): {message}")]
    Node {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Explanation.
        message: String,
    },
    /// The node could not be reached.
    #[error("cannot reach the node: {0}")]
    Transport(String),
    /// The node's answer is not what the protocol allows.
    #[error("unexpected answer from the node: {0}")]
    Protocol(String),
    /// The attested channel failed (evidence, policy, tampering).
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A task step failed its checks (appraisal, key delivery, result verification).
    #[error(transparent)]
    Task(#[from] veritee_task::TaskError),
    /// No candidate provider passed verification and the policy.
    #[error("no provider passed verification and the policy; nothing secret was sent")]
    NoAcceptableProvider,
    /// A local file the task names could not be read, or changed while being sent.
    #[error("{path}: {reason}")]
    TaskFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The enclave refused an operation.
    #[error("the enclave refused: {code}: {message}")]
    Enclave {
        /// Error code.
        code: String,
        /// Explanation.
        message: String,
    },
}

/// One HTTP exchange as the host saw it (for showing what crosses the host).
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Method and path.
    pub request_line: String,
    /// Request body bytes.
    pub request_body: Vec<u8>,
    /// Response body bytes.
    pub response_body: Vec<u8>,
}

/// A client of one node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    http: reqwest::blocking::Client,
    recorder: Option<Arc<Mutex<Vec<Exchange>>>>,
}

impl NodeClient {
    /// A client for the node at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_timeout(base_url, std::time::Duration::from_secs(60))
    }

    /// A client whose requests may each take up to `timeout` (a task runs for minutes).
    pub fn with_timeout(base_url: &str, timeout: std::time::Duration) -> Result<Self, ClientError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_string(),
            http,
            recorder: None,
        })
    }

    /// Records every exchange from now on.
    pub fn recording(mut self) -> (Self, Arc<Mutex<Vec<Exchange>>>) {
        let r = Arc::new(Mutex::new(Vec::new()));
        self.recorder = Some(Arc::clone(&r));
        (self, r)
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        authorization: Option<String>,
    ) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        let request_body = body.as_ref().map(|(_, b)| b.clone()).unwrap_or_default();
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let resp = req
            .send()
            .map_err(|e| ClientError::Transport(format!("{method} {url}: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .map_err(|e| ClientError::Transport(format!("{method} {url}: {e}")))?
            .to_vec();
        if let Some(r) = &self.recorder {
            r.lock().unwrap_or_else(|e| e.into_inner()).push(Exchange {
                request_line: format!("{method} {path}"),
                request_body,
                response_body: bytes.clone(),
            });
        }
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => (e.error.code, e.error.message),
                Err(_) => (
                    "http".into(),
                    String::from_utf8_lossy(&bytes).chars().take(300).collect(),
                ),
            };
            return Err(ClientError::Node {
                status: status.as_u16(),
                code,
                message,
            });
        }
        Ok(bytes)
    }

    fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ClientError::Protocol(format!("invalid JSON: {e}")))
    }

    fn signed(
        &self,
        tenant: &TenantKey,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<String, ClientError> {
        let digest = hex::encode(veritee_crypto::digest::sha256(body));
        self.signed_payload(tenant, method, path, &digest)
    }

    /// The Authorization header for a request whose body `payload` stands for in the
    /// signing string (its hex SHA-256, or a task-file piece's length).
    fn signed_payload(
        &self,
        tenant: &TenantKey,
        method: &str,
        path: &str,
        payload: &str,
    ) -> Result<String, ClientError> {
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let sig = tenant.sign(&auth::signing_string(method, path, ts, payload))?;
        Ok(auth::header_value(
            &tenant.tenant_id()?,
            ts,
            &B64.encode(sig),
        ))
    }

    /// `GET /healthz`.
    pub fn health(&self) -> Result<Health, ClientError> {
        Self::json(&self.send(reqwest::Method::GET, "/healthz", None, None)?)
    }

    /// Registers `tenant` with the node's admin token; returns the tenant id.
    pub fn register_tenant(
        &self,
        admin_token: &str,
        tenant: &TenantKey,
    ) -> Result<String, ClientError> {
        let body = serde_json::to_vec(&RegisterTenantRequest {
            public_key: B64.encode(tenant.public_key_spki()?),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp: RegisterTenantResponse = Self::json(&self.send(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(("application/json", body)),
            Some(format!("Bearer {}", admin_token.trim())),
        )?)?;
        Ok(resp.tenant_id)
    }

    /// Fetches evidence over the node's audit key for `nonce`, verifies and appraises it,
    /// and returns the audit key it vouches for.
    pub fn attested_audit_key(&self, appraiser: &Appraiser<'_>) -> Result<Vec<u8>, ClientError> {
        let nonce = fresh_nonce()?;
        let resp: AttestationResponse = Self::json(&self.send(
            reqwest::Method::GET,
            &format!("/v1/attestation?nonce={}", hex::encode(nonce)),
            None,
            None,
        )?)?;
        let evidence = B64
            .decode(&resp.evidence)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let key = B64
            .decode(&resp.audit_public_key)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        appraiser.appraise(
            &evidence,
            &ReportData::binding(NODE_BINDING_LABEL, &key, &nonce),
        )?;
        Ok(key)
    }

    /// `GET /v1/audit` with the admin token.
    pub fn audit_log(
        &self,
        admin_token: &str,
        from: u64,
        limit: usize,
    ) -> Result<AuditLog, ClientError> {
        Self::json(&self.send(
            reqwest::Method::GET,
            &format!("/v1/audit?from={from}&limit={limit}"),
            None,
            Some(format!("Bearer {}", admin_token.trim())),
        )?)
    }

    /// Opens an attested session: sends a fresh nonce, appraises the evidence that comes
    /// back, and only then derives keys.
    pub fn open_session<'c>(
        &'c self,
        tenant: &'c TenantKey,
        appraiser: &Appraiser<'_>,
    ) -> Result<Session<'c>, ClientError> {
        let nonce = fresh_nonce()?;
        let body = serde_json::to_vec(&OpenSessionRequest {
            nonce: hex::encode(nonce),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let auth = self.signed(tenant, "POST", "/v1/sessions", &body)?;
        let resp: OpenSessionResponse = Self::json(&self.send(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(("application/json", body)),
            Some(auth),
        )?)?;
        let key = hex::decode(&resp.enclave_public_key)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let evidence = B64
            .decode(&resp.evidence)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let inner = ClientSession::establish(
            &nonce,
            Offer {
                session_id: &resp.session_id,
                enclave_public_key: &key,
                evidence: &evidence,
            },
            appraiser,
            tenant,
        )?;
        Ok(Session {
            client: self,
            tenant,
            inner,
        })
    }
}

/// An attested session with the node's enclave.
#[derive(Debug)]
pub struct Session<'c> {
    client: &'c NodeClient,
    tenant: &'c TenantKey,
    inner: ClientSession,
}

impl Session<'_> {
    /// The claims of the enclave this session is bound to.
    pub fn claims(&self) -> &veritee_attest::Claims {
        self.inner.claims()
    }

    /// The session id.
    pub fn id(&self) -> String {
        self.inner.session_id()
    }

    /// Sends one request and returns the enclave's answer; an enclave-side error
    /// becomes [`ClientError::Enclave`].
    pub fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        let plaintext = request.encode()?;
        let message = self.inner.seal_request(plaintext.expose())?;
        let path = format!("/v1/sessions/{}/messages", self.inner.session_id());
        let auth = self.client.signed(self.tenant, "POST", &path, &message)?;
        let reply = self.client.send(
            reqwest::Method::POST,
            &path,
            Some(("application/octet-stream", message)),
            Some(auth),
        )?;
        match Response::decode(&self.inner.open_reply(&reply)?)? {
            Response::Error { code, message } => Err(ClientError::Enclave { code, message }),
            other => Ok(other),
        }
    }

    /// Stores a secret.
    pub fn put_secret(&mut self, name: &str, value: SecretBytes) -> Result<(), ClientError> {
        match self.call(&Request::PutSecret {
            name: name.into(),
            value,
        })? {
            Response::Stored => Ok(()),
            other => Err(ClientError::Protocol(format!(
                "expected Stored, got {other:?}"
            ))),
        }
    }

    /// Fetches a secret.
    pub fn get_secret(&mut self, name: &str) -> Result<SecretBytes, ClientError> {
        match self.call(&Request::GetSecret { name: name.into() })? {
            Response::Secret(v) => Ok(v),
            other => Err(ClientError::Protocol(format!(
                "expected Secret, got {other:?}"
            ))),
        }
    }

    /// HMAC-SHA-256 under a stored secret.
    pub fn hmac(&mut self, name: &str, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        match self.call(&Request::HmacSha256 {
            name: name.into(),
            data: data.to_vec(),
        })? {
            Response::Mac(t) => Ok(t),
            other => Err(ClientError::Protocol(format!(
                "expected Mac, got {other:?}"
            ))),
        }
    }

    /// The tenant's secret names.
    pub fn list(&mut self) -> Result<Vec<String>, ClientError> {
        match self.call(&Request::ListSecrets)? {
            Response::Names(n) => Ok(n),
            other => Err(ClientError::Protocol(format!(
                "expected Names, got {other:?}"
            ))),
        }
    }

    /// Deletes a secret; true if it existed.
    pub fn delete(&mut self, name: &str) -> Result<bool, ClientError> {
        match self.call(&Request::DeleteSecret { name: name.into() })? {
            Response::Deleted(d) => Ok(d),
            other => Err(ClientError::Protocol(format!(
                "expected Deleted, got {other:?}"
            ))),
        }
    }

    /// Liveness inside the session.
    pub fn ping(&mut self) -> Result<(), ClientError> {
        match self.call(&Request::Ping)? {
            Response::Pong => Ok(()),
            other => Err(ClientError::Protocol(format!(
                "expected Pong, got {other:?}"
            ))),
        }
    }
}

/// A node's wrapping key as fetched, with what is needed to check it later (offline).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappingKeyFile {
    /// The node it came from.
    pub node: String,
    /// HPKE X25519 public key, hex.
    pub public_key: String,
    /// The enclave's receipt-signing key, SPKI DER, base64.
    pub audit_public_key: String,
    /// The nonce the evidence is bound to, hex.
    pub nonce: String,
    /// The evidence, base64.
    pub evidence: String,
    /// When it was fetched, RFC 3339.
    pub fetched_at: String,
}

/// A wrapping key whose evidence was verified and appraised.
#[derive(Debug)]
pub struct AttestedWrappingKey {
    /// The key to encrypt to.
    pub public_key: veritee_crypto::hpke::HpkePublicKey,
    /// The key receipts are signed with.
    pub audit_public_key: Vec<u8>,
    /// The enclave's claims.
    pub claims: veritee_attest::Claims,
}

impl WrappingKeyFile {
    /// Verifies the evidence, checks that its report data binds exactly these keys and
    /// this nonce, and applies the policy. Nothing may be encrypted to a key that fails.
    pub fn verify(&self, appraiser: &Appraiser<'_>) -> Result<AttestedWrappingKey, ClientError> {
        let proto = |what: &str| ClientError::Protocol(format!("wrapping key file: {what}"));
        let public = hex::decode(&self.public_key).map_err(|_| proto("public_key is not hex"))?;
        let audit = B64
            .decode(&self.audit_public_key)
            .map_err(|_| proto("audit_public_key is not base64"))?;
        let nonce = hex::decode(&self.nonce).map_err(|_| proto("nonce is not hex"))?;
        let evidence = B64
            .decode(&self.evidence)
            .map_err(|_| proto("evidence is not base64"))?;
        let mut bound = public.clone();
        bound.extend_from_slice(&audit);
        let claims = appraiser.appraise(
            &evidence,
            &ReportData::binding(veritee_channel::deploy::WRAPPING_KEY_LABEL, &bound, &nonce),
        )?;
        Ok(AttestedWrappingKey {
            public_key: veritee_crypto::hpke::HpkePublicKey::from_bytes(&public)
                .map_err(ChannelError::from)?,
            audit_public_key: audit,
            claims,
        })
    }
}

/// Checks a receipt's signature and that it names what was deployed.
pub fn verify_receipt(
    receipt: &[u8],
    audit_public_key: &[u8],
    key: &str,
    tenant: &str,
    key_digest: &str,
) -> Result<veritee_channel::deploy::Receipt, ClientError> {
    let body = veritee_audit::open_document(
        receipt,
        audit_public_key,
        veritee_channel::deploy::RECEIPT_LABEL,
    )
    .map_err(|e| ClientError::Protocol(format!("receipt: {e}")))?;
    let r: veritee_channel::deploy::Receipt =
        serde_json::from_slice(body).map_err(|e| ClientError::Protocol(format!("receipt: {e}")))?;
    if r.key != key
        || r.tenant != tenant
        || !veritee_crypto::ct_eq(r.key_digest.as_bytes(), key_digest.as_bytes())
    {
        return Err(ClientError::Protocol(
            "the receipt does not name the key, tenant and key digest that were deployed".into(),
        ));
    }
    Ok(r)
}

impl NodeClient {
    /// Fetches the wrapping key with evidence over a fresh nonce (verify it with
    /// [`WrappingKeyFile::verify`] before using it).
    pub fn fetch_wrapping_key(&self) -> Result<WrappingKeyFile, ClientError> {
        let nonce = fresh_nonce()?;
        let resp: veritee_proto::api::WrappingKeyResponse = Self::json(&self.send(
            reqwest::Method::GET,
            &format!("/v1/keys/wrapping-key?nonce={}", hex::encode(nonce)),
            None,
            None,
        )?)?;
        Ok(WrappingKeyFile {
            node: self.base.clone(),
            public_key: resp.public_key,
            audit_public_key: resp.audit_public_key,
            nonce: hex::encode(nonce),
            evidence: resp.evidence,
            fetched_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        })
    }

    /// Imports a wrapped key; returns the enclave's signed receipt.
    pub fn import_wrapped_key(
        &self,
        tenant: &TenantKey,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let body = serde_json::to_vec(&veritee_proto::api::ImportKeyRequest {
            wrapped: B64.encode(wrapped),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let auth = self.signed(tenant, "POST", "/v1/keys", &body)?;
        let resp: veritee_proto::api::ImportKeyResponse = Self::json(&self.send(
            reqwest::Method::POST,
            "/v1/keys",
            Some(("application/json", body)),
            Some(auth),
        )?)?;
        B64.decode(&resp.receipt)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }
}

impl Session<'_> {
    /// The tenant's deployed key names.
    pub fn list_keys(&mut self) -> Result<Vec<String>, ClientError> {
        match self.call(&Request::ListKeys)? {
            Response::Names(n) => Ok(n),
            other => Err(ClientError::Protocol(format!(
                "expected Names, got {other:?}"
            ))),
        }
    }

    /// Makes the node hold `name` (replicating it from a peer enclave if needed);
    /// returns the key check value.
    pub fn ensure_key(&mut self, name: &str) -> Result<String, ClientError> {
        match self.call(&Request::EnsureKey { name: name.into() })? {
            Response::KeyReady(d) => Ok(d),
            other => Err(ClientError::Protocol(format!(
                "expected KeyReady, got {other:?}"
            ))),
        }
    }
}

/// The default chunk size of data exchange: 1 MiB.
pub const DATA_CHUNK_SIZE: u32 = 1024 * 1024;

impl NodeClient {
    fn signed_get(&self, tenant: &TenantKey, path: &str) -> Result<Vec<u8>, ClientError> {
        let auth = self.signed(tenant, "GET", path, b"")?;
        self.send(reqwest::Method::GET, path, None, Some(auth))
    }

    /// Encrypts `source` under the deployed key `key_id` and stores it as `object`,
    /// one chunk per request, in constant memory. `progress` receives plaintext bytes sent.
    pub fn put_data(
        &self,
        tenant: &TenantKey,
        object: &str,
        key_id: &str,
        key: &veritee_crypto::Confidential<[u8; 32]>,
        mut source: impl std::io::Read,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, ClientError> {
        let stream_key = veritee_stream::StreamKey::new(key);
        let mut sealer = veritee_stream::ChunkSealer::new(&stream_key, key_id, DATA_CHUNK_SIZE)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let path = format!("/v1/data/{object}/uploads");
        let header = sealer.header().to_bytes();
        let auth = self.signed(tenant, "POST", &path, &header)?;
        let resp: serde_json::Value = Self::json(&self.send(
            reqwest::Method::POST,
            &path,
            Some(("application/octet-stream", header)),
            Some(auth),
        )?)?;
        let upload = resp["upload_id"]
            .as_str()
            .ok_or_else(|| ClientError::Protocol("no upload_id".into()))?
            .to_string();
        let size = DATA_CHUNK_SIZE as usize;
        let read_full =
            |src: &mut dyn std::io::Read, buf: &mut Vec<u8>| -> Result<(), ClientError> {
                buf.clear();
                buf.resize(size, 0);
                let mut filled = 0;
                while filled < size {
                    match src.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            return Err(ClientError::Transport(format!("reading the input: {e}")));
                        }
                    }
                }
                buf.truncate(filled);
                Ok(())
            };
        let mut current = Vec::with_capacity(size);
        let mut next = Vec::with_capacity(size);
        read_full(&mut source, &mut current)?;
        let mut total = 0u64;
        let mut index = 0u64;
        loop {
            // Read ahead one chunk to know whether this one is the last.
            let last = if current.len() < size {
                true
            } else {
                read_full(&mut source, &mut next)?;
                next.is_empty()
            };
            let sent = current.len() as u64;
            let chunk = sealer
                .seal(&current, last)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            let cpath = format!("/v1/data/{object}/uploads/{upload}/chunks/{index}?last={last}");
            let auth = self.signed(tenant, "PUT", &cpath, &chunk)?;
            self.send(
                reqwest::Method::PUT,
                &cpath,
                Some(("application/octet-stream", chunk)),
                Some(auth),
            )?;
            total += sent;
            progress(total);
            if last {
                return Ok(total);
            }
            std::mem::swap(&mut current, &mut next);
            index += 1;
        }
    }

    /// Fetches `object`, checks and decrypts every chunk under `key`, and writes the
    /// plaintext to `sink`. Fails (having written a prefix) on any tampering or
    /// truncation; callers write to a temporary file and rename on success.
    pub fn get_data(
        &self,
        tenant: &TenantKey,
        object: &str,
        key: &veritee_crypto::Confidential<[u8; 32]>,
        mut sink: impl std::io::Write,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, ClientError> {
        let meta: serde_json::Value =
            Self::json(&self.signed_get(tenant, &format!("/v1/data/{object}"))?)?;
        let header = B64
            .decode(meta["header"].as_str().unwrap_or_default())
            .map_err(|_| ClientError::Protocol("header is not base64".into()))?;
        let chunks = meta["chunks"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("no chunk count".into()))?;
        let (header, _) = veritee_stream::Header::parse(&header)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut opener =
            veritee_stream::ChunkOpener::new(&veritee_stream::StreamKey::new(key), &header)
                .map_err(|e| {
                    ClientError::Protocol(format!("the object is not under this key: {e}"))
                })?;
        let mut total = 0u64;
        for index in 0..chunks {
            let chunk = self.signed_get(tenant, &format!("/v1/data/{object}/chunks/{index}"))?;
            let plain = opener
                .open(index, &chunk, index + 1 == chunks)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            sink.write_all(plain.expose())
                .map_err(|e| ClientError::Transport(format!("writing the output: {e}")))?;
            total += plain.len() as u64;
            progress(index + 1, chunks);
        }
        if !opener.is_complete() {
            return Err(ClientError::Protocol(
                "the object ended before its final chunk".into(),
            ));
        }
        Ok(total)
    }
}
