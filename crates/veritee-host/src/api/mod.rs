//! The HTTP API: shared state, authentication, errors, metrics and logs, and the
//! router. The routes of each flow live in a module of their own.

mod audit;
mod data;
mod import;
mod kbs;
mod keys;
mod node;
mod peers;

pub use peers::{HOST_PEERS_NS, PEER_SCHEME, RegisterPeerRequest};
mod sessions;
mod tasks;
mod workloads;

use crate::auth::{self, HOST_TENANTS_NS};
use crate::enclave_link::EnclaveLink;
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;
use crate::{HostError, openapi};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::{info, warn};
use veritee_proto::api::{ErrorBody, ErrorDetail, Health};
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply, FailureKind, SignedRequest};
use veritee_store::Store;

/// Largest JSON body.
pub const MAX_JSON_BODY: usize = 64 * 1024;
/// Largest data chunk body: the largest stream chunk (16 MiB) and its tag.
pub const MAX_DATA_CHUNK_BODY: usize = 16 * 1024 * 1024 + 1024;
/// Largest session message body.
pub const MAX_MESSAGE_BODY: usize = 16 * 1024 * 1024;
pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Everything the handlers share.
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The enclave process keeper.
    pub supervisor: Supervisor,
    /// Conversations with the enclave.
    pub enclave: EnclaveLink,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    admin_token_sha256: [u8; 32],
    /// Which tenant opened which session, and when it was last used (for refusing
    /// unknown sessions early and charging messages to their owner).
    sessions: Mutex<HashMap<String, (String, Instant)>>,
    /// Which tenant initiated which task, and when, by (tenant, task id).
    tasks: Mutex<HashMap<(String, String), Instant>>,
    /// Tenants' keys as read from the store, by id, so that the host's first check of a
    /// tenant signature does not read the store every time. An id is a digest of its
    /// key (checked before an entry is kept), so an entry never goes stale.
    tenant_keys: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    /// Where uploads for tasks go (shared with the enclave process).
    spool: Option<std::path::PathBuf>,
    /// Peer nodes allowed to call `/v1/peer`, and their rate limits.
    peers: peers::PeerGate,
    /// Each tenant's request budget; `None` when the node sets no limit.
    tenant_rates: Option<crate::limits::TenantRates>,
    /// KBS handshakes per client address (`/kbs/v0/auth` is unauthenticated).
    pub(crate) kbs_auth_rates: Option<crate::limits::TenantRates>,
    /// Lookups of tenants unknown here at the enclave's peers, in all.
    tenant_lookups: crate::limits::TenantRates,
    /// Each tenant's task uploads: pieces at once and bytes spooled.
    spool_quota: Option<Arc<crate::limits::SpoolQuota>>,
    /// Whether Trustee's set-resource (the resource in the clear to the host) is taken.
    kbs_plaintext_resources: bool,
    /// Collateral passed with every KBS attestation (vendor-signed; the enclave checks it).
    kbs_collateral: Arc<Vec<Vec<u8>>>,
    /// The provider's keys for secret import; without them the node takes no imports.
    provider: Option<Arc<crate::provider::ProviderKeys>>,
    /// The TEE the enclave runs on, and the warning `/healthz` carries when the node
    /// fell back to the simulator.
    tee: (String, Option<String>),
}

impl core::fmt::Debug for AppState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.kind())
            .finish()
    }
}

/// Tenant keys the host remembers at most; past it, it starts over.
const MAX_REMEMBERED_TENANT_KEYS: usize = 65_536;

/// Keeps `spki` as tenant `id`'s key if it is that tenant's: its digest is the id. A
/// store entry that is not (altered, or misfiled) is used once and never kept.
fn remember_tenant_key(
    keys: &mut HashMap<String, Arc<Vec<u8>>>,
    id: &str,
    spki: &Arc<Vec<u8>>,
) -> bool {
    if auth::tenant_id(spki) != id {
        return false;
    }
    if keys.len() >= MAX_REMEMBERED_TENANT_KEYS {
        keys.clear();
    }
    keys.insert(id.to_string(), Arc::clone(spki));
    true
}

impl AppState {
    /// Tenant `id`'s key: remembered, stored on this node, or learned from the
    /// enclave's peers.
    async fn tenant_key(&self, id: &str) -> ApiResult<Arc<Vec<u8>>> {
        if let Some(spki) = self
            .tenant_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Ok(Arc::clone(spki));
        }
        let spki = match self
            .store
            .get(HOST_TENANTS_NS, id)
            .await
            .map_err(|e| ApiError::from(HostError::Store(e)))?
        {
            Some(spki) => spki,
            None => learn_tenant(self, id).await?,
        };
        let spki = Arc::new(spki);
        remember_tenant_key(
            &mut self.tenant_keys.lock().unwrap_or_else(|e| e.into_inner()),
            id,
            &spki,
        );
        Ok(spki)
    }

    /// State over a store and an enclave. `peer_token` is what this node presents to
    /// the peers it calls.
    pub fn new(
        store: Arc<dyn Store>,
        supervisor: Supervisor,
        admin_token_sha256: [u8; 32],
        peers: Vec<String>,
        peer_token: String,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        Self {
            enclave: EnclaveLink::new(
                supervisor.clone(),
                Arc::clone(&store),
                Arc::clone(&metrics),
                peers,
                peer_token,
            ),
            store,
            supervisor,
            metrics,
            admin_token_sha256,
            sessions: Mutex::new(HashMap::with_capacity(sessions::MAX_SESSION_OWNERS + 1)),
            tasks: Mutex::new(HashMap::new()),
            tenant_keys: Mutex::new(HashMap::new()),
            spool: None,
            peers: peers::PeerGate::default(),
            tenant_rates: None,
            kbs_auth_rates: None,
            tenant_lookups: crate::limits::TenantRates::new(TENANT_LOOKUPS_PER_SECOND),
            spool_quota: None,
            kbs_plaintext_resources: false,
            kbs_collateral: Arc::new(Vec::new()),
            provider: None,
            tee: ("sim".into(), None),
        }
    }

    /// Names the TEE the enclave runs on in `/healthz`, with `warning` if the node fell
    /// back to the simulator.
    pub fn with_tee(mut self, tee: &str, warning: Option<String>) -> Self {
        self.tee = (tee.to_string(), warning);
        self
    }

    /// Starts child nodes on this machine for forks to `local:NAME`.
    pub fn with_local_children(mut self, children: Arc<crate::children::LocalChildren>) -> Self {
        self.enclave = self.enclave.with_local_children(children);
        self
    }

    /// Takes secret imports, with the provider's `keys`.
    pub fn with_provider(mut self, keys: Arc<crate::provider::ProviderKeys>) -> Self {
        self.provider = Some(keys);
        self
    }

    /// Limits each tenant to `per_second` requests per second (429 past it).
    pub fn with_tenant_rate(mut self, per_second: u32) -> Self {
        self.tenant_rates = Some(crate::limits::TenantRates::new(per_second));
        self
    }

    /// Limits each client address to `per_second` KBS handshakes (`/kbs/v0/auth`) per
    /// second (429 past it): the route takes no credential, so a flood from one
    /// address would otherwise push everyone's pending handshakes out of the enclave's
    /// table.
    pub fn with_kbs_auth_rate(mut self, per_second: u32) -> Self {
        self.kbs_auth_rates = Some(crate::limits::TenantRates::new(per_second));
        self
    }

    /// Limits each tenant's task uploads to `max_uploads` pieces at once and
    /// `max_bytes` in the spool (429 past either).
    pub fn with_spool_quota(mut self, max_bytes: u64, max_uploads: u32) -> Self {
        self.spool_quota = Some(Arc::new(crate::limits::SpoolQuota::new(
            max_bytes,
            max_uploads,
        )));
        self
    }

    /// Charges one request to `tenant`, or refuses it with 429 and `Retry-After`.
    fn charge(&self, tenant: &str) -> ApiResult<()> {
        let Some(rates) = &self.tenant_rates else {
            return Ok(());
        };
        rates.charge(tenant).map_err(|wait| {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this tenant is over its request rate on this node; retry in {} ms",
                    wait.as_millis().max(1)
                ),
            );
            // Retry-After counts whole seconds.
            e.retry_after = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
            e
        })
    }

    /// Accepts Trustee's `set-resource`, whose body is the resource in the clear: the
    /// host sees it on its way to the enclave. Off unless the operator asks.
    pub fn with_kbs_plaintext_resources(mut self) -> Self {
        self.kbs_plaintext_resources = true;
        self
    }

    /// Collateral for hardware evidence sent to the KBS (DCAP collateral JSON, CRLs),
    /// passed to the enclave with every attestation.
    pub fn with_kbs_collateral(mut self, files: Vec<Vec<u8>>) -> Self {
        self.kbs_collateral = Arc::new(files);
        self
    }

    /// Enables tasks, with uploads spooled to `dir`.
    pub fn with_spool(mut self, dir: std::path::PathBuf) -> Self {
        self.spool = Some(dir);
        self
    }
}

/// An API error: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }

    fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    }

    fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::EnclaveUnavailable(m) => {
                // The supervisor restarts a dead enclave at once: worth a retry, by
                // whoever knows the request is idempotent (it may have taken effect
                // before the connection was lost).
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    format!("{m} (the enclave is being restarted; retry)"),
                );
                e.retry_after = Some(ENCLAVE_RETRY_AFTER_SECS);
                e
            }
            HostError::BadBody(m) => Self::new(StatusCode::BAD_REQUEST, "bad_request", m),
            HostError::Store(s) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                s.to_string(),
            ),
            other => Self::internal(other.to_string()),
        }
    }
}

/// What `Retry-After` says when the enclave connection was lost (it is restarting).
const ENCLAVE_RETRY_AFTER_SECS: u64 = 1;

/// What `Retry-After` says when the tenant holds as many of something as it may.
const TOO_MANY_RETRY_AFTER_SECS: u64 = 5;

impl From<EnclaveFailure> for ApiError {
    fn from(f: EnclaveFailure) -> Self {
        let (status, code) = match f.kind {
            FailureKind::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
            FailureKind::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            FailureKind::StaleSignature => (StatusCode::UNAUTHORIZED, "stale_signature"),
            FailureKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            FailureKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            FailureKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            FailureKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            FailureKind::TooMany => (StatusCode::TOO_MANY_REQUESTS, "too_many"),
        };
        let mut e = Self::new(status, code, f.message);
        if f.kind == FailureKind::TooMany {
            // Room comes back when one of the tenant's own tasks ends.
            e.retry_after = Some(TOO_MANY_RETRY_AFTER_SECS);
        }
        e
    }
}

type ApiResult<T> = Result<T, ApiError>;

async fn converse(state: &AppState, call: EnclaveCall) -> ApiResult<EnclaveReply> {
    Ok(state.enclave.call(call).await??)
}

fn unexpected(reply: &EnclaveReply) -> ApiError {
    let name = match reply {
        EnclaveReply::Status(_) => "Status",
        EnclaveReply::TenantKey { .. } => "TenantKey",
        EnclaveReply::Attestation { .. } => "Attestation",
        EnclaveReply::TenantRegistered { .. } => "TenantRegistered",
        EnclaveReply::SessionOpened { .. } => "SessionOpened",
        EnclaveReply::Message { .. } => "Message",
        EnclaveReply::SessionResumed { .. } => "SessionResumed",
        EnclaveReply::WrappingKey { .. } => "WrappingKey",
        EnclaveReply::KeyImported { .. } => "KeyImported",
        EnclaveReply::Checkpoint { .. } => "Checkpoint",
        EnclaveReply::DataUpload { .. } => "DataUpload",
        EnclaveReply::DataChunkStored { .. } => "DataChunkStored",
        EnclaveReply::DataHeader { .. } => "DataHeader",
        EnclaveReply::DataChunk { .. } => "DataChunk",
        EnclaveReply::TaskSignal { .. } => "TaskSignal",
        EnclaveReply::TaskKeysAccepted => "TaskKeysAccepted",
        EnclaveReply::TaskCancelled { .. } => "TaskCancelled",
        EnclaveReply::TaskResult { .. } => "TaskResult",
        EnclaveReply::Kbs(_) => "Kbs",
        EnclaveReply::Import(_) => "Import",
        EnclaveReply::Workload(_) => "Workload",
    };
    ApiError::internal(format!("the enclave answered with an unexpected {name}"))
}

fn require_content_type(headers: &HeaderMap, expected: &str) -> ApiResult<()> {
    let got = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if got.split(';').next().map(str::trim) == Some(expected) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("expected Content-Type: {expected}, got {got:?}"),
        ))
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> ApiResult<T> {
    require_content_type(headers, "application/json")?;
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn admin(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    auth::check_admin(authorization(headers), &state.admin_token_sha256)
        .map_err(ApiError::unauthorized)
}

fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |p| p.as_str())
}

/// A tenant-signed request, checked by the host as a first filter: the tenant, and
/// the request to hand on to the enclave, which checks it again itself.
struct TenantRequest {
    tenant_id: String,
    request: SignedRequest,
}

/// Checks a tenant's signature over a request whose body `payload` stands for in the
/// signing string (see [`veritee_proto::api::auth`]).
async fn tenant_payload(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    payload: &str,
) -> ApiResult<TenantRequest> {
    let header = authorization(headers).ok_or_else(|| {
        ApiError::unauthorized(
            "this route needs a tenant-signed request (Authorization: Veritee ...)",
        )
    })?;
    let claim = auth::tenant_claim(Some(header)).map_err(ApiError::unauthorized)?;
    let spki = state.tenant_key(&claim.tenant_id).await?;
    let path = path_and_query(uri);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    claim
        .verify(&spki, method.as_str(), path, payload, now)
        .map_err(ApiError::unauthorized)?;
    state.charge(&claim.tenant_id)?;
    Ok(TenantRequest {
        tenant_id: claim.tenant_id,
        request: SignedRequest {
            authorization: header.to_string(),
            method: method.as_str().to_string(),
            path: path.to_string(),
        },
    })
}

/// Lookups of unknown tenants at the enclave's peers a node makes per second, in all.
pub const TENANT_LOOKUPS_PER_SECOND: u32 = 5;

/// A tenant registered at a peer node, not here: its key as the enclave learns it from
/// its attested peers (the id is the key's digest, checked again here), kept for the
/// next request. Without peers there is no one to ask.
async fn learn_tenant(state: &AppState, tenant_id: &str) -> ApiResult<Vec<u8>> {
    if !state.enclave.has_peers() || !veritee_proto::names::is_tenant_id(tenant_id) {
        return Err(ApiError::unauthorized("unknown tenant"));
    }
    // Anyone can name a tenant id, and each lookup costs attested handshakes with the
    // peers: a few a second in all (a tenant is looked up once, then kept).
    if let Err(wait) = state.tenant_lookups.charge("lookups") {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "unknown tenant, and this node looks up at most {TENANT_LOOKUPS_PER_SECOND} tenants a second at its peers"
            ),
        );
        e.retry_after = Some(wait.as_secs().max(1));
        return Err(e);
    }
    let spki = match state
        .enclave
        .call(EnclaveCall::TenantKey {
            tenant: tenant_id.to_string(),
        })
        .await?
    {
        Ok(EnclaveReply::TenantKey { public_key }) => public_key,
        Ok(other) => return Err(unexpected(&other)),
        Err(_) => return Err(ApiError::unauthorized("unknown tenant")),
    };
    if auth::tenant_id(&spki) != tenant_id {
        return Err(ApiError::unauthorized(
            "unknown tenant (the enclave answered with another tenant's key)",
        ));
    }
    state
        .store
        .put(HOST_TENANTS_NS, tenant_id, &spki)
        .await
        .map_err(|e| ApiError::from(HostError::Store(e)))?;
    info!(
        tenant = tenant_id,
        "tenant learned from the enclave's peers"
    );
    Ok(spki)
}

/// Checks a tenant's signature over a request with `body`.
async fn tenant(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<TenantRequest> {
    tenant_payload(
        state,
        method,
        uri,
        headers,
        &veritee_proto::api::auth::body_payload(body),
    )
    .await
}

fn check_task_id_format(id: &str) -> ApiResult<()> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::bad_request("a task id is 32 hex digits"))
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> Json<Health> {
    let up = state.supervisor.is_up();
    Json(Health {
        status: if up { "ok" } else { "degraded" }.into(),
        enclave: if up { "running" } else { "restarting" }.into(),
        enclave_restarts: state.supervisor.restarts(),
        store: state.store.kind().into(),
        tee: state.tee.0.clone(),
        warning: state.tee.1.clone(),
    })
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state
        .metrics
        .render(state.supervisor.is_up(), state.supervisor.restarts());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi::document())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {}", uri.path()),
    )
}

/// Every route template, for metrics labels (a bounded set: never a raw path).
const ROUTES: &[&str] = &[
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/v1/node",
    "/v1/tenants",
    "/v1/attestation",
    "/v1/sessions",
    "/v1/sessions/resume",
    "/v1/sessions/{id}/messages",
    "/v1/audit",
    "/v1/audit/checkpoint",
    "/v1/keys",
    "/v1/keys/wrapping-key",
    "/v1/peer",
    "/v1/peers",
    "/v1/children",
    "/v1/data/{object}/uploads",
    "/v1/data/{object}/uploads/{upload}/chunks/{index}",
    "/v1/data/{object}",
    "/v1/data/{object}/chunks/{index}",
    "/v1/tasks",
    "/v1/tasks/{id}/keys",
    "/v1/tasks/{id}/files/{compartment}/{slot}",
    "/v1/tasks/{id}/run",
    "/v1/tasks/{id}/cancel",
    "/v1/import",
    "/v1/partitions",
    "/v1/partitions/{name}",
    "/v1/partitions/{name}/keys/{key_id}/disable",
    "/v1/officers",
    "/v1/quorum-tokens",
    "/v1/sm/seeds",
    "/v1/sm/enrollments",
    "/v1/sm/enrollments/{id}",
    "/v1/sm/enrollments/{id}/activation",
    "/v1/sm/authorizations",
    "/v1/sm/targets/{target}/forget",
    "/v1/sm/state",
    "/v1/workloads/enrollment",
    "/v1/workloads/activation",
    "/v1/workloads/launch",
    "/v1/workloads/storage-key/rotate",
    "/v1/sm/releases",
    "/v1/sm/releases/{id}",
    "/v1/workloads/pending",
    "/v1/workloads/pending/{id}/measurement",
    "/v1/workloads/pending/{id}/release",
];

/// Logs and counts every request by its route template; never logs bodies.
async fn observe(
    State(state): State<Arc<AppState>>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route: &'static str = matched
        .as_ref()
        .and_then(|m| ROUTES.iter().find(|r| **r == m.as_str()).copied())
        .unwrap_or("other");
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let latency = started.elapsed();
    state.metrics.request(route, status, latency);
    if status >= 500 {
        warn!(%method, route, status, latency_us = latency.as_micros() as u64, "request failed");
    } else {
        info!(%method, route, status, latency_us = latency.as_micros() as u64, "request");
    }
    response
}

/// The node's router.
pub fn router(state: Arc<AppState>) -> Router {
    let json_routes = Router::new()
        .route("/v1/tenants", post(node::register_tenant))
        .route("/v1/peers", post(peers::register_peer))
        .route("/v1/children", get(peers::children))
        .route("/v1/sessions", post(sessions::open_session))
        .route("/v1/keys", post(keys::import_key))
        .route("/v1/tasks", post(tasks::initiate).get(tasks::list))
        .route("/v1/tasks/{id}/keys", post(tasks::keys))
        .route("/v1/tasks/{id}/run", post(tasks::run))
        .route("/v1/tasks/{id}/cancel", post(tasks::cancel))
        .merge(import::routes())
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    let data_routes = Router::new()
        .route("/v1/data/{object}/uploads", post(data::begin))
        .route(
            "/v1/data/{object}/uploads/{upload}/chunks/{index}",
            put(data::chunk),
        )
        .route("/v1/data/{object}", get(data::open))
        .route("/v1/data/{object}/chunks/{index}", get(data::read))
        .layer(DefaultBodyLimit::max(MAX_DATA_CHUNK_BODY));
    let upload_routes = Router::new()
        .route(
            "/v1/tasks/{id}/files/{compartment}/{slot}",
            put(tasks::file),
        )
        .layer(DefaultBodyLimit::disable());
    let peer_routes = Router::new()
        .route("/v1/peer", post(peers::relay))
        .layer(DefaultBodyLimit::max(veritee_proto::ipc::MAX_PEER_MESSAGE));
    let message_routes = Router::new()
        .route("/v1/sessions/resume", post(sessions::resume))
        .route("/v1/sessions/{id}/messages", post(sessions::message))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BODY));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/node", get(node::info))
        .route("/v1/attestation", get(node::attestation))
        .route("/v1/audit", get(audit::log))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
        .route("/v1/keys/wrapping-key", get(keys::wrapping_key))
        .merge(json_routes)
        .merge(peer_routes)
        .merge(data_routes)
        .merge(upload_routes)
        .merge(message_routes)
        .merge(kbs::routes())
        .merge(workloads::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            observe,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_key_whose_digest_is_the_tenant_id_is_remembered() {
        let spki = Arc::new(b"a tenant's public key".to_vec());
        let id = auth::tenant_id(&spki);
        let other = Arc::new(b"another tenant's public key".to_vec());
        let mut keys = HashMap::new();
        // A store entry filed under this id that is another key: not kept.
        assert!(!remember_tenant_key(&mut keys, &id, &other));
        assert!(keys.is_empty());
        assert!(remember_tenant_key(&mut keys, &id, &spki));
        assert_eq!(keys.get(&id), Some(&spki));
    }

    #[test]
    fn a_full_table_of_tenant_keys_starts_over() {
        let mut keys = HashMap::new();
        for i in 0..MAX_REMEMBERED_TENANT_KEYS {
            let spki = Arc::new(i.to_be_bytes().to_vec());
            assert!(remember_tenant_key(
                &mut keys,
                &auth::tenant_id(&spki),
                &spki
            ));
        }
        assert_eq!(keys.len(), MAX_REMEMBERED_TENANT_KEYS);
        let newest = Arc::new(b"one more".to_vec());
        assert!(remember_tenant_key(
            &mut keys,
            &auth::tenant_id(&newest),
            &newest
        ));
        assert_eq!(keys.len(), 1);
    }
}
