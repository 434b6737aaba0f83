//! The HTTP API: routes, authentication, limits, errors, metrics and logs.

use crate::auth::{self, HOST_TENANTS_NS};
use crate::enclave_link::EnclaveLink;
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;
use crate::{HostError, openapi};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::{info, warn};
use veritee_proto::api::auth::stream_piece_payload;
use veritee_proto::api::{
    AttestationResponse, AuditLog, AuditRecord, ErrorBody, ErrorDetail, Health, ImportKeyRequest,
    ImportKeyResponse, OpenSessionRequest, OpenSessionResponse, RegisterTenantRequest,
    RegisterTenantResponse, WrappingKeyResponse,
};
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply, FailureKind};
use veritee_store::Store;

/// Largest JSON body.
pub const MAX_JSON_BODY: usize = 64 * 1024;
/// Largest data chunk body: the largest stream chunk (16 MiB) and its tag.
pub const MAX_DATA_CHUNK_BODY: usize = 16 * 1024 * 1024 + 1024;
/// Largest session message body.
pub const MAX_MESSAGE_BODY: usize = 16 * 1024 * 1024;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

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
    /// Which tenant opened which session (for refusing another tenant's messages early).
    sessions: Mutex<HashMap<String, String>>,
    /// Which tenant initiated which task, and when.
    tasks: Mutex<HashMap<String, (String, std::time::Instant)>>,
    /// Where uploads for tasks go (shared with the enclave process).
    spool: Option<std::path::PathBuf>,
}

impl core::fmt::Debug for AppState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.kind())
            .finish()
    }
}

impl AppState {
    /// State over a store and an enclave.
    pub fn new(
        store: Arc<dyn Store>,
        supervisor: Supervisor,
        admin_token_sha256: [u8; 32],
        peers: Vec<String>,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        Self {
            enclave: EnclaveLink::new(
                supervisor.clone(),
                Arc::clone(&store),
                Arc::clone(&metrics),
                peers,
            ),
            store,
            supervisor,
            metrics,
            admin_token_sha256,
            sessions: Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashMap::new()),
            spool: None,
        }
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
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }

    fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
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
        (self.status, Json(body)).into_response()
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::EnclaveUnavailable(m) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            HostError::Store(s) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                s.to_string(),
            ),
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}

impl From<EnclaveFailure> for ApiError {
    fn from(f: EnclaveFailure) -> Self {
        let (status, code) = match f.kind {
            FailureKind::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
            FailureKind::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            FailureKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            FailureKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            FailureKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            FailureKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, f.message)
    }
}

type ApiResult<T> = Result<T, ApiError>;

async fn converse(state: &AppState, call: EnclaveCall) -> ApiResult<EnclaveReply> {
    Ok(state.enclave.call(call).await??)
}

fn unexpected(reply: &EnclaveReply) -> ApiError {
    let name = match reply {
        EnclaveReply::Status(_) => "Status",
        EnclaveReply::Attestation { .. } => "Attestation",
        EnclaveReply::TenantRegistered => "TenantRegistered",
        EnclaveReply::SessionOpened { .. } => "SessionOpened",
        EnclaveReply::Message { .. } => "Message",
        EnclaveReply::WrappingKey { .. } => "WrappingKey",
        EnclaveReply::KeyImported { .. } => "KeyImported",
        EnclaveReply::DataUpload { .. } => "DataUpload",
        EnclaveReply::DataChunkStored { .. } => "DataChunkStored",
        EnclaveReply::DataHeader { .. } => "DataHeader",
        EnclaveReply::DataChunk { .. } => "DataChunk",
        EnclaveReply::TaskSignal { .. } => "TaskSignal",
        EnclaveReply::TaskKeysAccepted => "TaskKeysAccepted",
        EnclaveReply::TaskCancelled { .. } => "TaskCancelled",
        EnclaveReply::TaskResult { .. } => "TaskResult",
    };
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("the enclave answered with an unexpected {name}"),
    )
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

/// Authenticates a tenant-signed request; returns the tenant id.
async fn tenant(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<String> {
    let digest = veritee_crypto::digest::sha256(body);
    tenant_digest(state, method, uri, headers, &digest).await
}

/// Authenticates a tenant request whose body is hashed elsewhere (streamed uploads).
async fn tenant_digest(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    digest: &[u8; 32],
) -> ApiResult<String> {
    tenant_payload(state, method, uri, headers, &hex::encode(digest)).await
}

/// Checks a tenant's signature over a request whose body is represented by `payload`
/// in the signing string; returns the tenant id.
async fn tenant_payload(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    payload: &str,
) -> ApiResult<String> {
    let claim = auth::tenant_claim(authorization(headers)).map_err(ApiError::unauthorized)?;
    let spki = state
        .store
        .get(HOST_TENANTS_NS, &claim.tenant_id)
        .await
        .map_err(|e| ApiError::from(HostError::Store(e)))?
        .ok_or_else(|| ApiError::unauthorized("unknown tenant"))?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    claim
        .verify(&spki, method.as_str(), path, payload, now)
        .map_err(ApiError::unauthorized)?;
    Ok(claim.tenant_id)
}

async fn healthz(State(state): State<Arc<AppState>>) -> Json<Health> {
    let up = state.supervisor.is_up();
    Json(Health {
        status: if up { "ok" } else { "degraded" }.into(),
        enclave: if up { "running" } else { "restarting" }.into(),
        enclave_restarts: state.supervisor.restarts(),
        store: state.store.kind().into(),
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

async fn register_tenant(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RegisterTenantResponse>> {
    admin(&state, &headers)?;
    let req: RegisterTenantRequest = parse_json(&headers, &body)?;
    let spki = auth::decode_spki(&req.public_key).map_err(ApiError::bad_request)?;
    let tenant_id = auth::tenant_id(&spki);
    match converse(
        &state,
        EnclaveCall::RegisterTenant {
            tenant_id: tenant_id.clone(),
            public_key: spki.clone(),
        },
    )
    .await?
    {
        EnclaveReply::TenantRegistered => {}
        other => return Err(unexpected(&other)),
    }
    state
        .store
        .put(HOST_TENANTS_NS, &tenant_id, &spki)
        .await
        .map_err(|e| ApiError::from(HostError::Store(e)))?;
    info!(tenant = tenant_id.as_str(), "tenant registered");
    Ok(Json(RegisterTenantResponse { tenant_id }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NonceQuery {
    nonce: String,
}

async fn attestation(
    State(state): State<Arc<AppState>>,
    Query(q): Query<NonceQuery>,
) -> ApiResult<Json<AttestationResponse>> {
    let nonce = hex::decode(&q.nonce).map_err(|_| ApiError::bad_request("nonce must be hex"))?;
    match converse(&state, EnclaveCall::Attest { nonce }).await? {
        EnclaveReply::Attestation {
            evidence,
            audit_public_key,
        } => Ok(Json(AttestationResponse {
            evidence: B64.encode(evidence),
            audit_public_key: B64.encode(audit_public_key),
        })),
        other => Err(unexpected(&other)),
    }
}

async fn wrapping_key(
    State(state): State<Arc<AppState>>,
    Query(q): Query<NonceQuery>,
) -> ApiResult<Json<WrappingKeyResponse>> {
    let nonce = hex::decode(&q.nonce).map_err(|_| ApiError::bad_request("nonce must be hex"))?;
    match converse(&state, EnclaveCall::WrappingKey { nonce }).await? {
        EnclaveReply::WrappingKey {
            public_key,
            audit_public_key,
            evidence,
        } => Ok(Json(WrappingKeyResponse {
            public_key: hex::encode(public_key),
            audit_public_key: B64.encode(audit_public_key),
            evidence: B64.encode(evidence),
        })),
        other => Err(unexpected(&other)),
    }
}

async fn import_key(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ImportKeyResponse>> {
    let tenant_id = tenant(&state, &method, &uri, &headers, &body).await?;
    let req: ImportKeyRequest = parse_json(&headers, &body)?;
    let blob = B64
        .decode(req.wrapped.trim())
        .map_err(|_| ApiError::bad_request("wrapped must be base64"))?;
    match converse(&state, EnclaveCall::ImportKey { tenant_id, blob }).await? {
        EnclaveReply::KeyImported { receipt } => Ok(Json(ImportKeyResponse {
            receipt: B64.encode(receipt),
        })),
        other => Err(unexpected(&other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LastQuery {
    #[serde(default)]
    last: bool,
}

async fn data_begin(
    State(state): State<Arc<AppState>>,
    Path(object): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant_id = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/octet-stream")?;
    match converse(
        &state,
        EnclaveCall::DataBegin {
            tenant_id,
            object,
            header: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::DataUpload { upload_id } => {
            Ok(Json(serde_json::json!({ "upload_id": upload_id })))
        }
        other => Err(unexpected(&other)),
    }
}

async fn data_chunk(
    State(state): State<Arc<AppState>>,
    Path((_object, upload_id, index)): Path<(String, String, u64)>,
    Query(q): Query<LastQuery>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant_id = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/octet-stream")?;
    match converse(
        &state,
        EnclaveCall::DataChunk {
            tenant_id,
            upload_id,
            index,
            last: q.last,
            chunk: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::DataChunkStored { complete } => {
            Ok(Json(serde_json::json!({ "complete": complete })))
        }
        other => Err(unexpected(&other)),
    }
}

async fn data_open(
    State(state): State<Arc<AppState>>,
    Path(object): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant_id = tenant(&state, &method, &uri, &headers, b"").await?;
    match converse(&state, EnclaveCall::DataOpen { tenant_id, object }).await? {
        EnclaveReply::DataHeader { header, chunks } => Ok(Json(
            serde_json::json!({ "header": B64.encode(header), "chunks": chunks }),
        )),
        other => Err(unexpected(&other)),
    }
}

async fn data_read(
    State(state): State<Arc<AppState>>,
    Path((object, index)): Path<(String, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant_id = tenant(&state, &method, &uri, &headers, b"").await?;
    match converse(
        &state,
        EnclaveCall::DataRead {
            tenant_id,
            object,
            index,
        },
    )
    .await?
    {
        EnclaveReply::DataChunk { chunk, last } => Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::HeaderName::from_static("x-veritee-last"),
                    if last { "1" } else { "0" },
                ),
            ],
            Body::from(chunk),
        )
            .into_response()),
        other => Err(unexpected(&other)),
    }
}

/// How long the host remembers who initiated a task that was never run.
const TASK_OWNER_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Deserialize)]
struct TaskIdOnly {
    task_id: String,
}

fn check_task_id(id: &str) -> ApiResult<()> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::bad_request("a task id is 32 hex digits"))
    }
}

fn task_owner(state: &AppState, task_id: &str, tenant_id: &str) -> ApiResult<()> {
    match state
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(task_id)
    {
        Some((owner, _)) if owner == tenant_id => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this task belongs to another tenant",
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "unknown task",
        )),
    }
}

async fn task_initiate(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant_id = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/json")?;
    let TaskIdOnly { task_id } = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid task initiation: {e}")))?;
    check_task_id(&task_id)?;
    match converse(
        &state,
        EnclaveCall::TaskInitiate {
            tenant_id: tenant_id.clone(),
            initiation: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::TaskSignal {
            skek,
            evidence,
            load,
        } => {
            let mut tasks = state.tasks.lock().unwrap_or_else(|e| e.into_inner());
            // Tasks initiated and never run: the enclave forgets them after half an hour
            // of idleness; the host forgets them after an hour.
            tasks.retain(|_, (_, since)| since.elapsed() < TASK_OWNER_TTL);
            tasks.insert(task_id.clone(), (tenant_id, std::time::Instant::now()));
            Ok(Json(serde_json::json!({
                "task_id": task_id,
                "skek": hex::encode(skek),
                "evidence": B64.encode(evidence),
                "load": load,
            })))
        }
        other => Err(unexpected(&other)),
    }
}

/// Withdraws a task (tenant-signed, empty body): one not yet run is forgotten with its
/// uploads; a running one stops waiting for inputs, and its run answers with the
/// failure.
async fn task_cancel(
    State(state): State<Arc<AppState>>,
    Path(task_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant_id = tenant(&state, &method, &uri, &headers, &body).await?;
    task_owner(&state, &task_id, &tenant_id)?;
    match converse(
        &state,
        EnclaveCall::TaskCancel {
            tenant_id,
            task_id: task_id.clone(),
        },
    )
    .await?
    {
        EnclaveReply::TaskCancelled { was_running } => {
            if !was_running {
                // The run handler cleans up after a running task; this one never ran.
                state
                    .tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&task_id);
                if let Some(spool) = &state.spool {
                    let _ = tokio::fs::remove_dir_all(spool.join(&task_id)).await;
                }
            }
            Ok(Json(
                serde_json::json!({ "cancelled": true, "was_running": was_running }),
            ))
        }
        other => Err(unexpected(&other)),
    }
}

async fn task_keys(
    State(state): State<Arc<AppState>>,
    Path(task_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant_id = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/octet-stream")?;
    task_owner(&state, &task_id, &tenant_id)?;
    match converse(
        &state,
        EnclaveCall::TaskKeys {
            tenant_id,
            task_id,
            delivery: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::TaskKeysAccepted => Ok(Json(serde_json::json!({ "accepted": true }))),
        other => Err(unexpected(&other)),
    }
}

/// Largest single task upload.
pub const MAX_TASK_FILE: u64 = 4 * 1024 * 1024 * 1024;

/// Where an upload piece goes in its file.
#[derive(Deserialize)]
struct UploadOffset {
    #[serde(default)]
    offset: u64,
}

/// Receives a piece of a task file starting at `?offset=N` and appends it to the
/// spool (pieces arrive in order). The tenant signs each piece over its length
/// ([`stream_piece_payload`]), checked before any byte is written; a body of another
/// length is refused and leaves the file as it was.
async fn task_file(
    State(state): State<Arc<AppState>>,
    Path((task_id, compartment, slot)): Path<(String, String, String)>,
    Query(UploadOffset { offset }): Query<UploadOffset>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    require_content_type(&headers, "application/octet-stream")?;
    check_task_id(&task_id)?;
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let slot_ok = slot == "module"
        || slot
            .strip_prefix("input-")
            .is_some_and(|n| n.parse::<u16>().is_ok());
    if !name_ok(&compartment) || !slot_ok {
        return Err(ApiError::bad_request(
            "upload to /v1/tasks/ID/files/COMPARTMENT/(module|input-N)",
        ));
    }
    let spool = state.spool.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this node runs no tasks",
        )
    })?;
    let declared: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "a task file piece needs a Content-Length (its signature covers it)",
            )
        })?;
    if offset.saturating_add(declared) > MAX_TASK_FILE {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "a task file is at most 4 GiB",
        ));
    }
    let tenant_id = tenant_payload(
        &state,
        &method,
        &uri,
        &headers,
        &stream_piece_payload(declared),
    )
    .await?;
    task_owner(&state, &task_id, &tenant_id)?;
    let dir = spool.join(&task_id).join(&compartment);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("spool: {e}"),
        )
    })?;
    let path = dir.join(&slot);
    let io = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("spool: {e}"),
        )
    };
    let file = if offset == 0 {
        tokio::fs::File::create(&path).await.map_err(io)?
    } else {
        let file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .map_err(|_| {
                ApiError::new(StatusCode::CONFLICT, "conflict", "no upload to continue")
            })?;
        let has = file.metadata().await.map_err(io)?.len();
        if has != offset {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("the upload has {has} bytes; a piece at offset {offset} does not follow"),
            ));
        }
        file
    };
    // Buffered: the body arrives in small pieces, and each write to a tokio file is a
    // hop to the blocking pool.
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let undo = |path: std::path::PathBuf| async move {
        // A refused piece leaves the file as it was before it.
        if offset == 0 {
            let _ = tokio::fs::remove_file(&path).await;
        } else if let Ok(f) = tokio::fs::OpenOptions::new().write(true).open(&path).await {
            let _ = f.set_len(offset).await;
        }
    };
    let mut stream = body.into_data_stream();
    let received = async {
        let mut received = 0u64;
        while let Some(piece) = stream.next().await {
            let piece =
                piece.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
            received += piece.len() as u64;
            if received > declared {
                return Err(ApiError::bad_request(format!(
                    "the body is longer than the {declared} bytes its Content-Length and signature say"
                )));
            }
            file.write_all(&piece).await.map_err(io)?;
        }
        if received != declared {
            return Err(ApiError::bad_request(format!(
                "the body is {received} bytes, not the {declared} its Content-Length and signature say"
            )));
        }
        Ok(received)
    }
    .await;
    // Flushed, not synced: a spool file lives only as long as its task, which does not
    // survive a restart of the enclave (its keys are in enclave memory) anyway. Flushed
    // on refusal too: a write still in flight must not land after the truncation.
    let flushed = file.flush().await.map_err(io);
    drop(file);
    match received.and_then(|received| flushed.map(|()| received)) {
        Ok(received) => Ok(Json(serde_json::json!({ "bytes": offset + received }))),
        Err(e) => {
            undo(path).await;
            Err(e)
        }
    }
}

async fn task_run(
    State(state): State<Arc<AppState>>,
    Path(task_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let tenant_id = tenant(&state, &method, &uri, &headers, &body).await?;
    task_owner(&state, &task_id, &tenant_id)?;
    let reply = converse(
        &state,
        EnclaveCall::TaskRun {
            tenant_id,
            task_id: task_id.clone(),
        },
    )
    .await;
    state
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&task_id);
    // Uploads still arriving when the run ended (a guest that stopped early) leave no
    // spool behind; the enclave removes what it read.
    if let Some(spool) = &state.spool {
        let _ = tokio::fs::remove_dir_all(spool.join(&task_id)).await;
    }
    match reply? {
        EnclaveReply::TaskResult { envelope } => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(envelope),
        )
            .into_response()),
        other => Err(unexpected(&other)),
    }
}

/// Enclave-to-enclave messages from peer nodes: authenticated by attestation inside
/// the enclave, not by the host.
async fn peer(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    require_content_type(&headers, "application/octet-stream")?;
    match converse(
        &state,
        EnclaveCall::PeerMessage {
            message: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::Message { message } => Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Body::from(message),
        )
            .into_response()),
        other => Err(unexpected(&other)),
    }
}

async fn open_session(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<OpenSessionResponse>> {
    let tenant_id = tenant(&state, &method, &uri, &headers, &body).await?;
    let req: OpenSessionRequest = parse_json(&headers, &body)?;
    let nonce = hex::decode(&req.nonce)
        .ok()
        .filter(|n| n.len() == 32)
        .ok_or_else(|| ApiError::bad_request("nonce must be 32 bytes of hex"))?;
    match converse(
        &state,
        EnclaveCall::OpenSession {
            tenant_id: tenant_id.clone(),
            nonce,
        },
    )
    .await?
    {
        EnclaveReply::SessionOpened {
            session_id,
            enclave_public_key,
            evidence,
        } => {
            let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.len() > 100_000 {
                sessions.clear();
            }
            sessions.insert(session_id.clone(), tenant_id);
            drop(sessions);
            state.metrics.session_opened();
            Ok(Json(OpenSessionResponse {
                session_id,
                enclave_public_key: hex::encode(enclave_public_key),
                evidence: B64.encode(evidence),
            }))
        }
        other => Err(unexpected(&other)),
    }
}

async fn session_message(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let tenant_id = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/octet-stream")?;
    let owner = state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&session_id)
        .cloned();
    if owner.as_deref().is_some_and(|o| o != tenant_id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this session belongs to another tenant",
        ));
    }
    match converse(
        &state,
        EnclaveCall::SessionMessage {
            session_id,
            message: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::Message { message } => Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Body::from(message),
        )
            .into_response()),
        other => Err(unexpected(&other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    from: u64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    1000
}

async fn audit_log(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditLog>> {
    admin(&state, &headers)?;
    let log = match converse(&state, EnclaveCall::Status).await? {
        EnclaveReply::Status(s) => s.audit_log,
        other => return Err(unexpected(&other)),
    };
    let entries = state
        .store
        .log_read(&log, q.from, q.limit.min(10_000))
        .await
        .map_err(|e| ApiError::from(HostError::Store(e)))?;
    Ok(Json(AuditLog {
        log,
        entries: entries
            .into_iter()
            .map(|(seq, entry)| AuditRecord {
                seq,
                entry: B64.encode(entry),
            })
            .collect(),
    }))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {}", uri.path()),
    )
}

/// Logs and counts every request by its route template; never logs bodies.
async fn observe(
    State(state): State<Arc<AppState>>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route: &'static str = match matched.as_ref().map(|m| m.as_str()) {
        Some("/healthz") => "/healthz",
        Some("/metrics") => "/metrics",
        Some("/openapi.json") => "/openapi.json",
        Some("/v1/tenants") => "/v1/tenants",
        Some("/v1/attestation") => "/v1/attestation",
        Some("/v1/sessions") => "/v1/sessions",
        Some("/v1/sessions/{id}/messages") => "/v1/sessions/{id}/messages",
        Some("/v1/audit") => "/v1/audit",
        Some("/v1/keys") => "/v1/keys",
        Some("/v1/keys/wrapping-key") => "/v1/keys/wrapping-key",
        Some("/v1/peer") => "/v1/peer",
        Some("/v1/data/{object}/uploads") => "/v1/data/{object}/uploads",
        Some("/v1/data/{object}/uploads/{upload}/chunks/{index}") => {
            "/v1/data/{object}/uploads/{upload}/chunks/{index}"
        }
        Some("/v1/data/{object}") => "/v1/data/{object}",
        Some("/v1/data/{object}/chunks/{index}") => "/v1/data/{object}/chunks/{index}",
        Some("/v1/tasks") => "/v1/tasks",
        Some("/v1/tasks/{id}/keys") => "/v1/tasks/{id}/keys",
        Some("/v1/tasks/{id}/files/{compartment}/{slot}") => {
            "/v1/tasks/{id}/files/{compartment}/{slot}"
        }
        Some("/v1/tasks/{id}/run") => "/v1/tasks/{id}/run",
        _ => "other",
    };
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
        .route("/v1/tenants", post(register_tenant))
        .route("/v1/sessions", post(open_session))
        .route("/v1/keys", post(import_key))
        .route("/v1/tasks", post(task_initiate))
        .route("/v1/tasks/{id}/keys", post(task_keys))
        .route("/v1/tasks/{id}/run", post(task_run))
        .route("/v1/tasks/{id}/cancel", post(task_cancel))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    let data_routes = Router::new()
        .route("/v1/data/{object}/uploads", post(data_begin))
        .route(
            "/v1/data/{object}/uploads/{upload}/chunks/{index}",
            axum::routing::put(data_chunk),
        )
        .route("/v1/data/{object}", get(data_open))
        .route("/v1/data/{object}/chunks/{index}", get(data_read))
        .layer(DefaultBodyLimit::max(MAX_DATA_CHUNK_BODY));
    let upload_routes = Router::new()
        .route(
            "/v1/tasks/{id}/files/{compartment}/{slot}",
            axum::routing::put(task_file),
        )
        .layer(DefaultBodyLimit::disable());
    let peer_routes = Router::new()
        .route("/v1/peer", post(peer))
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024));
    let message_routes = Router::new()
        .route("/v1/sessions/{id}/messages", post(session_message))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BODY));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/attestation", get(attestation))
        .route("/v1/audit", get(audit_log))
        .route("/v1/keys/wrapping-key", get(wrapping_key))
        .merge(json_routes)
        .merge(peer_routes)
        .merge(data_routes)
        .merge(upload_routes)
        .merge(message_routes)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            observe,
        ))
        .with_state(state)
}
