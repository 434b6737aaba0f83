//! Talking to a provider node: register a tenant, open attested sessions, use them,
//! fetch and check the audit log. Blocking, for command-line tools and tests.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod import;
pub mod kbs;
pub mod keys;
pub mod session_cache;
pub mod task;
pub mod transport;
pub mod workload;

pub use keys::{
    AttestedWrappingKey, ImportedKey, WrappedKeyFile, WrappingKeyFile, import_wrapped_key,
    wrap_for_node,
};

use base64::Engine;
use std::sync::{Arc, Mutex};
use thiserror::Error;
use veritee_attest::ReportData;
use veritee_channel::ChannelError;
use veritee_channel::client::{
    Appraiser, ClientSession, Offer, Resumption, TenantKey, fresh_nonce,
};
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_proto::api::auth::Audience;
use veritee_proto::api::{
    AttestationResponse, AuditLog, ErrorBody, Health, NodeInfo, OpenSessionRequest,
    OpenSessionResponse, RegisterTenantRequest, RegisterTenantResponse, ResumeSessionRequest,
    ResumeSessionResponse, auth, paths,
};

pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

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
    /// A credential would have gone over plain HTTP to a host other than loopback.
    #[error("{0}")]
    Insecure(String),
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
    /// The client's own checks refused to go on (a key that failed validation, input
    /// that cannot be imported); nothing was sent.
    #[error("{0}; nothing was sent")]
    Refused(String),
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
    /// The enclave tenants' signatures are made for, fetched once (and again when the
    /// enclave restarted); shared by every client of the same node in this process
    /// (see [`shared_audience`]).
    audience: AudienceSlot,
}

/// Where a node's audience is kept once fetched.
type AudienceSlot = Arc<Mutex<Option<Audience>>>;

/// How many nodes' audiences a process remembers; past that the memory starts afresh.
const AUDIENCES_REMEMBERED: usize = 256;

/// How long an idempotent request waits before each new attempt while its node's
/// enclave restarts: about 5 s in all, which a restart takes well within.
pub const IDEMPOTENT_RETRY_WAITS: [std::time::Duration; 7] = [
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(200),
    std::time::Duration::from_millis(400),
    std::time::Duration::from_millis(800),
    std::time::Duration::from_millis(1000),
    std::time::Duration::from_millis(1000),
    std::time::Duration::from_millis(1000),
];

/// Runs `request` (an idempotent one) again while the node answers that its enclave is
/// unavailable (503: restarting), waiting [`IDEMPOTENT_RETRY_WAITS`] between attempts.
/// A node that cannot be reached at all is not waited for.
fn retry_idempotent(
    mut request: impl FnMut() -> Result<Vec<u8>, ClientError>,
) -> Result<Vec<u8>, ClientError> {
    let mut waits = IDEMPOTENT_RETRY_WAITS.iter();
    loop {
        match request() {
            Err(ClientError::Node { status: 503, .. }) if waits.len() > 0 => {
                if let Some(wait) = waits.next() {
                    std::thread::sleep(*wait);
                }
            }
            other => return other,
        }
    }
}

/// The audience slot of the node at `base`, shared by every [`NodeClient`] of it in this
/// process, so that a client made per task (as [`task::run_task`] makes them) does not
/// pay a `GET /v1/node` round trip each time. Only a hint, as the fetched audience is
/// (it is unauthenticated): a stale one costs one refused request, answered with
/// `stale_signature`, after which it is fetched again.
fn shared_audience(base: &str) -> AudienceSlot {
    static AUDIENCES: Mutex<Vec<(String, AudienceSlot)>> = Mutex::new(Vec::new());
    let mut known = AUDIENCES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, slot)) = known.iter().find(|(b, _)| b == base) {
        return Arc::clone(slot);
    }
    if known.len() >= AUDIENCES_REMEMBERED {
        known.clear();
    }
    let slot = Arc::new(Mutex::new(None));
    known.push((base.to_string(), Arc::clone(&slot)));
    slot
}

/// A node's long-term public keys, vouched for by its attested evidence.
#[derive(Debug, Clone)]
pub struct AttestedNodeKeys {
    /// The audit (and receipt) signing key, SPKI DER.
    pub audit_public_key: Vec<u8>,
    /// The audit checkpoint signing key, Ed25519.
    pub checkpoint_public_key: [u8; 32],
}

impl NodeClient {
    /// A client for the node at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_timeout(base_url, std::time::Duration::from_secs(60))
    }

    /// A client whose requests may each take up to `timeout` (a task runs for minutes).
    pub fn with_timeout(base_url: &str, timeout: std::time::Duration) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_string();
        let http = transport::http_client(&base, timeout)?;
        Ok(Self {
            audience: shared_audience(&base),
            base,
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

    /// One request. An unsigned GET is sent again while the enclave restarts (see
    /// [`retry_idempotent`]); a signed one is re-signed for each attempt, by
    /// [`Self::send_signed`].
    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        authorization: Option<String>,
    ) -> Result<Vec<u8>, ClientError> {
        let headers = authorization
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        if method == reqwest::Method::GET && headers.is_empty() {
            return retry_idempotent(|| self.send_headers(method.clone(), path, None, Vec::new()));
        }
        self.send_headers(method, path, body, headers)
    }

    fn send_headers(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        headers: Vec<(&'static str, String)>,
    ) -> Result<Vec<u8>, ClientError> {
        self.exchange(method, path, body, headers)
            .map(|(bytes, _)| bytes)
    }

    /// One request: the answer's body and the session cookie it sets, if any. Refusals
    /// become [`ClientError::Node`], read from veritee's error body or a KBS problem.
    fn exchange(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        headers: Vec<(&'static str, String)>,
    ) -> Result<(Vec<u8>, Option<String>), ClientError> {
        if headers.iter().any(|(name, _)| *name == "authorization") {
            transport::check_credential_transport(&self.base)?;
        }
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        let request_body = match (&self.recorder, &body) {
            (Some(_), Some((_, b))) => b.clone(),
            _ => Vec::new(),
        };
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let resp = req.send().map_err(|e| {
            ClientError::Transport(format!("{method} {url}: {}", transport::error_chain(&e)))
        })?;
        let status = resp.status();
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
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
            /// An RFC 7807 problem, as the KBS routes answer.
            #[derive(serde::Deserialize)]
            struct Problem {
                #[serde(rename = "type")]
                kind: String,
                detail: String,
            }
            let (code, message) = if let Ok(e) = serde_json::from_slice::<ErrorBody>(&bytes) {
                (e.error.code, e.error.message)
            } else if let Ok(p) = serde_json::from_slice::<Problem>(&bytes) {
                let kind = p.kind.rsplit('/').next().unwrap_or_default().to_string();
                (kind, p.detail)
            } else {
                (
                    "http".into(),
                    String::from_utf8_lossy(&bytes).chars().take(300).collect(),
                )
            };
            return Err(ClientError::Node {
                status: status.as_u16(),
                code,
                message,
            });
        }
        Ok((bytes, cookie))
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ClientError::Protocol(format!("invalid JSON: {e}")))
    }

    /// Takes `audience` as the node's, unless one was fetched already (a cached
    /// session names the enclave it was attested with; a stale one costs one refused
    /// signature and a fetch).
    fn remember_audience(&self, audience: Audience) {
        self.audience
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(audience);
    }

    /// The enclave signatures are made for: the node id and enclave epoch, from
    /// `GET /v1/node` (cached; `refresh` fetches it again). Untrusted: a host that
    /// lies about it only gets its own requests refused by the enclave.
    fn audience(&self, refresh: bool) -> Result<Audience, ClientError> {
        let cached = self
            .audience
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let (Some(a), false) = (cached, refresh) {
            return Ok(a);
        }
        // Fetched without the slot's lock: the slot is shared by every client of the
        // node in this process, and a slow answer must not hold the others up.
        let info: NodeInfo =
            Self::json(&self.send(reqwest::Method::GET, "/v1/node", None, None)?)?;
        let audience = Audience {
            node: info.node_id,
            epoch: info.epoch,
        };
        *self.audience.lock().unwrap_or_else(|e| e.into_inner()) = Some(audience.clone());
        Ok(audience)
    }

    /// The Authorization header for a request whose body `payload` stands for in the
    /// signing string (its hex SHA-256, or a task-file piece's length).
    pub(crate) fn signed_payload(
        &self,
        tenant: &TenantKey,
        method: &str,
        path: &str,
        payload: &str,
    ) -> Result<String, ClientError> {
        self.signed_for(&self.audience(false)?, tenant, method, path, payload)
    }

    fn signed_for(
        &self,
        audience: &Audience,
        tenant: &TenantKey,
        method: &str,
        path: &str,
        payload: &str,
    ) -> Result<String, ClientError> {
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let nonce = hex::encode(
            veritee_crypto::rand::array::<{ auth::NONCE_LEN }>().map_err(ChannelError::from)?,
        );
        let sig = tenant.sign(&auth::signing_string(
            audience, method, path, ts, &nonce, payload,
        ))?;
        Ok(auth::header_value(
            &tenant.tenant_id()?,
            audience,
            ts,
            &nonce,
            &B64.encode(sig),
        ))
    }

    /// Sends a tenant-signed request. A signature the enclave calls stale (it
    /// restarted since the node's epoch was fetched) is made again, once. A GET, which
    /// changes nothing, is also sent again while the node answers that its enclave is
    /// restarting (503), for a few seconds at most ([`retry_idempotent`]); other
    /// requests are not, since one may have taken effect before its answer was lost.
    pub(crate) fn send_signed(
        &self,
        tenant: &TenantKey,
        method: reqwest::Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Vec<u8>, ClientError> {
        // Before the audience is fetched: nothing goes out if the signature cannot.
        transport::check_credential_transport(&self.base)?;
        let payload = auth::body_payload(body.as_ref().map_or(&[][..], |(_, b)| b));
        // Each attempt is signed afresh (a new nonce), and after the first a restarted
        // enclave's new epoch is fetched.
        let mut refresh = false;
        let mut attempt = || {
            let audience = self.audience(refresh)?;
            refresh = true;
            let authorization =
                self.signed_for(&audience, tenant, method.as_str(), path, &payload)?;
            self.send(method.clone(), path, body.clone(), Some(authorization))
        };
        let stale_once = |attempt: &mut dyn FnMut() -> Result<Vec<u8>, ClientError>| match attempt()
        {
            Err(ClientError::Node { code, .. }) if code == "stale_signature" => attempt(),
            other => other,
        };
        if method == reqwest::Method::GET {
            retry_idempotent(|| stale_once(&mut attempt))
        } else {
            stale_once(&mut attempt)
        }
    }

    /// `GET /healthz`.
    pub fn health(&self) -> Result<Health, ClientError> {
        Self::json(&self.send(reqwest::Method::GET, "/healthz", None, None)?)
    }

    /// Registers `tenant` with the node's admin token; returns the tenant id, which must
    /// be the one `tenant`'s key names. A proof the enclave calls stale (it restarted
    /// since the node's epoch was fetched) is made again, once.
    pub fn register_tenant(
        &self,
        admin_token: &str,
        tenant: &TenantKey,
    ) -> Result<String, ClientError> {
        let body = serde_json::to_vec(&RegisterTenantRequest {
            public_key: B64.encode(tenant.public_key_spki()?),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        transport::check_credential_transport(&self.base)?;
        let payload = auth::body_payload(&body);
        let mut refresh = false;
        let answer = loop {
            // The admin token says the node's operator agrees; the tenant's own
            // signature proves it holds the key (the enclave checks it).
            let proof = self.signed_for(
                &self.audience(refresh)?,
                tenant,
                "POST",
                &paths::tenants(),
                &payload,
            )?;
            match self.send_headers(
                reqwest::Method::POST,
                &paths::tenants(),
                Some(("application/json", body.clone())),
                vec![
                    ("authorization", format!("Bearer {}", admin_token.trim())),
                    (auth::PROOF_HEADER, proof),
                ],
            ) {
                Err(ClientError::Node { code, .. }) if code == "stale_signature" && !refresh => {
                    refresh = true;
                }
                other => break other?,
            }
        };
        let resp: RegisterTenantResponse = Self::json(&answer)?;
        // The id is the key's own (a digest of it): a node answering with another one
        // registered something else, or is lying about what it registered.
        let expected = tenant.tenant_id()?;
        if resp.tenant_id != expected {
            return Err(ClientError::Protocol(format!(
                "the node registered tenant {:?}, not {expected}, the id of the key sent",
                resp.tenant_id
            )));
        }
        Ok(resp.tenant_id)
    }

    /// Registers a peer node (admin): its name and the SHA-256 of its peer token, so
    /// that its enclave may reach this one's over `/v1/peer`.
    pub fn register_peer(
        &self,
        admin_token: &str,
        name: &str,
        peer_token: &str,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "name": name,
            "token_sha256": hex::encode(veritee_crypto::digest::sha256(peer_token.trim().as_bytes())),
        }))
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send(
            reqwest::Method::POST,
            "/v1/peers",
            Some(("application/json", body)),
            Some(format!("Bearer {}", admin_token.trim())),
        )?;
        Ok(())
    }

    /// Fetches evidence over the node's long-term keys for a fresh nonce, verifies and
    /// appraises it, and returns the keys it vouches for.
    pub fn attested_node_keys(
        &self,
        appraiser: &Appraiser<'_>,
    ) -> Result<AttestedNodeKeys, ClientError> {
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
        let audit_public_key = B64
            .decode(&resp.audit_public_key)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut checkpoint_public_key = [0u8; 32];
        hex::decode_to_slice(&resp.checkpoint_public_key, &mut checkpoint_public_key).map_err(
            |_| ClientError::Protocol("checkpoint_public_key is not 32 bytes of hex".into()),
        )?;
        appraiser.appraise(
            &evidence,
            &ReportData::binding(
                veritee_channel::NODE_BINDING_LABEL,
                &veritee_channel::node_bound_keys(&audit_public_key, &checkpoint_public_key),
                &nonce,
            ),
        )?;
        Ok(AttestedNodeKeys {
            audit_public_key,
            checkpoint_public_key,
        })
    }

    /// The node's current signed audit checkpoint (a C2SP signed note); check it with
    /// [`veritee_audit::checkpoint::open_checkpoint`] and the attested checkpoint key.
    pub fn audit_checkpoint(&self) -> Result<String, ClientError> {
        let bytes = self.send(reqwest::Method::GET, "/v1/audit/checkpoint", None, None)?;
        String::from_utf8(bytes)
            .map_err(|_| ClientError::Protocol("the checkpoint is not UTF-8 text".into()))
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
        let resp: OpenSessionResponse = Self::json(&self.send_signed(
            tenant,
            reqwest::Method::POST,
            &paths::sessions(),
            Some(("application/json", body)),
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
            inner,
        })
    }
}

impl NodeClient {
    /// Resumes a session by `resumption` (see [`Session::resumption`]) and sends its
    /// first request with it: one round trip, no evidence to verify. Refused once the
    /// resumption expired or the enclave restarted; open a new session then.
    pub fn resume_session<'c>(
        &'c self,
        tenant: &TenantKey,
        resumption: &Resumption,
        first: &Request,
    ) -> Result<(Session<'c>, Response), ClientError> {
        let nonce = fresh_nonce()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut inner = resumption.resume(&nonce, now)?;
        let message = inner.seal_request(first.encode()?.expose())?;
        let body = serde_json::to_vec(&ResumeSessionRequest {
            ticket: B64.encode(resumption.ticket()),
            nonce: hex::encode(nonce),
            message: B64.encode(message),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp: ResumeSessionResponse = Self::json(&self.send_signed(
            tenant,
            reqwest::Method::POST,
            &paths::session_resume(),
            Some(("application/json", body)),
        )?)?;
        if resp.session_id != inner.session_id() {
            return Err(ClientError::Protocol(format!(
                "the node resumed session {} where {} was derived",
                resp.session_id,
                inner.session_id()
            )));
        }
        let reply = B64
            .decode(&resp.message)
            .map_err(|e| ClientError::Protocol(format!("reply: {e}")))?;
        let response = Response::decode(&inner.open_reply(&reply)?)?;
        Ok((
            Session {
                client: self,
                inner,
            },
            response,
        ))
    }
}

/// An attested session with the node's enclave.
#[derive(Debug)]
pub struct Session<'c> {
    client: &'c NodeClient,
    inner: ClientSession,
}

/// What [`Session::call_keeping`] brings back.
#[derive(Debug)]
pub struct Kept {
    /// The answer to the request; a refusal is [`ClientError::Enclave`].
    pub response: Result<Response, ClientError>,
    /// What resuming the session later needs, or why the enclave issued no ticket.
    pub resumption: Result<Resumption, ClientError>,
}

/// An enclave's answer, or its refusal as [`ClientError::Enclave`].
pub(crate) fn enclave_answer(response: Response) -> Result<Response, ClientError> {
    match response {
        Response::Error { code, message } => Err(ClientError::Enclave { code, message }),
        other => Ok(other),
    }
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
        enclave_answer(self.round_trip(&request.encode()?)?)
    }

    /// Sends `request` and, in the same round trip, asks for a ticket to resume this
    /// session by later (what [`Self::resumption`] asks in a round trip of its own).
    /// Gives the answer to the request (a refusal is [`ClientError::Enclave`]) and the
    /// resumption, or why there is none; an error of the whole is the exchange's.
    pub fn call_keeping(&mut self, request: &Request) -> Result<Kept, ClientError> {
        match enclave_answer(self.round_trip(&request.encode_with_ticket()?)?)? {
            Response::WithTicket { response, ticket } => {
                let resumption = enclave_answer(*ticket).and_then(|ticket| match ticket {
                    Response::Ticket { ticket, expires_at } => {
                        Ok(self.inner.resumption(ticket, expires_at))
                    }
                    other => Err(ClientError::Protocol(format!(
                        "expected a ticket, got {other:?}"
                    ))),
                });
                Ok(Kept {
                    response: enclave_answer(*response),
                    resumption,
                })
            }
            other => Err(ClientError::Protocol(format!(
                "expected an answer with a ticket, got {other:?}"
            ))),
        }
    }

    /// Seals an encoded request, sends it, and opens and decodes the reply.
    fn round_trip(&mut self, plaintext: &SecretBytes) -> Result<Response, ClientError> {
        let message = self.inner.seal_request(plaintext.expose())?;
        let path = paths::session_messages(&self.inner.session_id());
        // Not signed: the session authenticates its own messages.
        let reply = self.client.send(
            reqwest::Method::POST,
            &path,
            Some(("application/octet-stream", message)),
            None,
        )?;
        Ok(Response::decode(&self.inner.open_reply(&reply)?)?)
    }

    /// Asks something of the tenant's applications (flow 5): run, call, list, stop,
    /// fork. A refusal is [`ClientError::Enclave`] with the enclave's reason.
    pub fn app(
        &mut self,
        request: veritee_channel::apps::AppRequest,
    ) -> Result<veritee_channel::apps::AppAnswer, ClientError> {
        match self.call(&Request::App(request))? {
            Response::App(answer) => Ok(answer),
            other => Err(ClientError::Protocol(format!(
                "expected an application answer, got {other:?}"
            ))),
        }
    }

    /// Asks a batch of operations by key id (flow 3); one outcome per operation, in
    /// order (a refused operation is an [`CryptoOutcome::Error`], the others go on).
    pub fn crypto(&mut self, ops: Vec<CryptoOp>) -> Result<Vec<CryptoOutcome>, ClientError> {
        let n = ops.len();
        match self.call(&Request::Crypto(ops))? {
            Response::Crypto(outcomes) if outcomes.len() == n => Ok(outcomes),
            other => Err(ClientError::Protocol(format!(
                "expected {n} operation outcomes, got {other:?}"
            ))),
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

    /// A ticket to resume this session by later (from another process too), without a
    /// new attestation, until the earlier of the enclave's ticket expiry and the end of
    /// the appraisal's window (the policy's `max_evidence_age`).
    pub fn resumption(&mut self) -> Result<Resumption, ClientError> {
        match self.call(&Request::Ticket)? {
            Response::Ticket { ticket, expires_at } => {
                Ok(self.inner.resumption(ticket, expires_at))
            }
            other => Err(ClientError::Protocol(format!(
                "expected Ticket, got {other:?}"
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

/// An object as the enclave vouches for it, checked by the client.
#[derive(Debug)]
struct VouchedObject {
    /// The stream header, authenticated under the data key.
    header: veritee_stream::Header,
    /// The header as stored, byte for byte (covered by the vouch).
    header_bytes: Vec<u8>,
    /// Opens the object's chunks; made from the authenticated header.
    opener: veritee_stream::ChunkOpener,
    chunks: u64,
    version: u64,
}

/// What the node holds as an object, as far as the client can tell.
#[derive(Debug)]
enum StoredObject {
    /// The node says it holds no such object (unauthenticated: a host that hides an
    /// object only gets an upload refused as not newer, or a read answered "absent").
    Absent,
    /// The stored stream's header does not authenticate under the key given: the
    /// object is under another key (or the header was altered). Nothing here is
    /// authenticated.
    UnderAnotherKey {
        /// The version the node reports.
        claimed_version: u64,
        /// The key id the stored header names.
        claimed_key: String,
    },
    /// The current version, vouched for by the enclave under the key given (boxed: it
    /// holds the chunk opener's key schedule).
    Current(Box<VouchedObject>),
}

impl NodeClient {
    /// The object's current state: its header checked under the data key `key`, then
    /// its version vouched for by the enclave under a fresh nonce and that key. A vouch
    /// that does not check is a [`ClientError::Protocol`] error (the answer was altered
    /// or replayed), as is every malformed answer; any other failure to ask (other than
    /// the node saying it holds no such object) is returned as it came.
    fn open_object(
        &self,
        tenant: &TenantKey,
        object: &str,
        key: &veritee_crypto::Confidential<[u8; 32]>,
    ) -> Result<StoredObject, ClientError> {
        let nonce = fresh_nonce()?;
        let answer = self.send_signed(
            tenant,
            reqwest::Method::GET,
            &paths::data_object(object, &hex::encode(nonce)),
            None,
        );
        let meta: serde_json::Value = match answer {
            Ok(bytes) => Self::json(&bytes)?,
            Err(ClientError::Node { status: 404, .. }) => return Ok(StoredObject::Absent),
            Err(e) => return Err(e),
        };
        let proto = |what: &str| ClientError::Protocol(format!("object {object}: {what}"));
        let header_bytes = B64
            .decode(meta["header"].as_str().ok_or_else(|| proto("no header"))?)
            .map_err(|_| proto("header is not base64"))?;
        let chunks = meta["chunks"]
            .as_u64()
            .ok_or_else(|| proto("no chunk count"))?;
        let version = meta["version"]
            .as_u64()
            .ok_or_else(|| proto("no version"))?;
        let (header, used) =
            veritee_stream::Header::parse(&header_bytes).map_err(|e| proto(&e.to_string()))?;
        if used != header_bytes.len() {
            return Err(proto("trailing bytes after the stream header"));
        }
        // The header first: the vouch is keyed from the data key too, so under a wrong
        // key it could only fail, and a wrong key would look like an attack.
        let opener =
            match veritee_stream::ChunkOpener::new(&veritee_stream::StreamKey::new(key), &header) {
                Ok(opener) => opener,
                Err(veritee_stream::StreamError::HeaderTampered { key_id }) => {
                    return Ok(StoredObject::UnderAnotherKey {
                        claimed_version: version,
                        claimed_key: key_id,
                    });
                }
                Err(e) => return Err(proto(&e.to_string())),
            };
        let vouch = hex::decode(meta["vouch"].as_str().ok_or_else(|| proto("no vouch"))?)
            .map_err(|_| proto("vouch is not hex"))?;
        let expected = veritee_channel::data::vouch(
            key,
            &veritee_channel::data::ObjectState {
                tenant: &tenant.tenant_id()?,
                object,
                version,
                chunks,
                header: &header_bytes,
            },
            &nonce,
        )
        .map_err(ChannelError::from)?;
        if !veritee_crypto::ct_eq(&expected, &vouch) {
            return Err(proto(
                "the enclave's word on its current version does not check: the answer was altered or replayed",
            ));
        }
        Ok(StoredObject::Current(Box::new(VouchedObject {
            header,
            header_bytes,
            opener,
            chunks,
            version,
        })))
    }

    /// Encrypts `source` under the deployed key `key_id` and stores it as the next
    /// version of `object`, one chunk per request, in constant memory. `progress`
    /// receives plaintext bytes sent. Returns the bytes sent and the version stored.
    ///
    /// Success means the enclave confirmed it: after the final chunk the object is
    /// opened again under a fresh nonce, and the enclave must vouch for exactly the
    /// version and stream header just sent. Anything else (a host that dropped the
    /// upload and answered for the enclave, a concurrent newer upload) is a
    /// [`ClientError::Protocol`] error, as is an answer about the current version that
    /// does not check.
    pub fn put_data(
        &self,
        tenant: &TenantKey,
        object: &str,
        key_id: &str,
        key: &veritee_crypto::Confidential<[u8; 32]>,
        mut source: impl std::io::Read,
        mut progress: impl FnMut(u64),
    ) -> Result<(u64, u64), ClientError> {
        let version = match self.open_object(tenant, object, key)? {
            StoredObject::Absent => 1,
            StoredObject::Current(current) => current.version.saturating_add(1),
            // An object under another key is replaced all the same. Its version is the
            // host's unauthenticated word, but the enclave refuses any version not
            // newer than the stored one, so a host lying here only gets the upload
            // refused.
            StoredObject::UnderAnotherKey {
                claimed_version, ..
            } => claimed_version.saturating_add(1),
        };
        let stream_key = veritee_stream::StreamKey::new(key);
        let mut sealer = veritee_stream::ChunkSealer::with_context(
            &stream_key,
            key_id,
            &veritee_channel::data::object_context(object, version),
            DATA_CHUNK_SIZE,
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let header = sealer.header().to_bytes();
        let resp: serde_json::Value = Self::json(&self.send_signed(
            tenant,
            reqwest::Method::POST,
            &paths::data_uploads(object),
            Some(("application/octet-stream", header.clone())),
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
            self.send_signed(
                tenant,
                reqwest::Method::PUT,
                &paths::data_upload_chunk(object, &upload, index, last),
                Some(("application/octet-stream", chunk)),
            )?;
            total += sent;
            progress(total);
            if last {
                break;
            }
            std::mem::swap(&mut current, &mut next);
            index += 1;
        }
        // The answer to the final chunk comes from the host, unauthenticated: only the
        // enclave's word under a fresh nonce says the upload became the current
        // version. The header embeds a random stream id, so it names this upload.
        let unconfirmed = |found: &str| {
            ClientError::Protocol(format!(
                "the node did not confirm that {object} version {version} was stored: {found}"
            ))
        };
        match self.open_object(tenant, object, key)? {
            StoredObject::Current(stored)
                if stored.version == version && stored.header_bytes == header =>
            {
                Ok((total, version))
            }
            StoredObject::Current(stored) if stored.version == version => Err(unconfirmed(
                "the enclave holds another stream at that version",
            )),
            StoredObject::Current(stored) => Err(unconfirmed(&format!(
                "the enclave vouches for version {}",
                stored.version
            ))),
            StoredObject::Absent => Err(unconfirmed("the node says it holds no such object")),
            StoredObject::UnderAnotherKey { claimed_key, .. } => Err(unconfirmed(&format!(
                "the stored stream does not authenticate under this key (it names key {claimed_key:?})"
            ))),
        }
    }

    /// Fetches the current version of `object`, checks that its stream header
    /// authenticates under `key`, that the enclave vouches for it and that its stream is
    /// bound to this object and that version, checks and decrypts every chunk under
    /// `key`, and writes the plaintext to `sink`. Fails (having written a prefix) on any
    /// tampering, substitution, rollback or truncation; an object stored under another
    /// key is reported as such, not as tampering. Callers write to a temporary file and
    /// rename on success. Returns the bytes written and the version.
    pub fn get_data(
        &self,
        tenant: &TenantKey,
        object: &str,
        key: &veritee_crypto::Confidential<[u8; 32]>,
        mut sink: impl std::io::Write,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(u64, u64), ClientError> {
        let VouchedObject {
            header,
            mut opener,
            chunks,
            version,
            ..
        } = match self.open_object(tenant, object, key)? {
            StoredObject::Current(current) => *current,
            StoredObject::Absent => {
                return Err(ClientError::Node {
                    status: 404,
                    code: "not_found".into(),
                    message: format!("no data object named {object}"),
                });
            }
            StoredObject::UnderAnotherKey { claimed_key, .. } => {
                return Err(ClientError::Protocol(format!(
                    "object {object} is not stored under this key: its stream header does not authenticate under the key given (it names key {claimed_key:?})"
                )));
            }
        };
        // Authenticated now: the stream must be this object's, at the vouched version.
        if header.context() != veritee_channel::data::object_context(object, version) {
            return Err(ClientError::Protocol(format!(
                "the stream served as {object} version {version} is bound to {:?}: another object or an older version was substituted",
                String::from_utf8_lossy(header.context()).replace('\0', "/")
            )));
        }
        let mut total = 0u64;
        for index in 0..chunks {
            let chunk = self.send_signed(
                tenant,
                reqwest::Method::GET,
                &paths::data_chunk(object, index),
                None,
            )?;
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
        Ok((total, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_of_one_node_share_its_audience_and_no_other() {
        let a = NodeClient::new("http://127.0.0.1:1/").expect("client");
        let b = NodeClient::new("http://127.0.0.1:1").expect("client");
        let other = NodeClient::new("http://127.0.0.1:2").expect("client");
        let audience = Audience {
            node: "00112233445566ff".into(),
            epoch: "0123456789abcdef0123456789abcdef".into(),
        };
        *a.audience.lock().expect("lock") = Some(audience.clone());
        // Known without a request: port 1 has no node, so a fetch would fail.
        assert_eq!(b.audience(false).expect("shared"), audience);
        assert!(other.audience.lock().expect("lock").is_none());
        assert!(matches!(
            other.audience(false),
            Err(ClientError::Transport(_))
        ));
    }
}
