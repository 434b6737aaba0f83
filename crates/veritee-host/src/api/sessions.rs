//! Attested sessions (secrets over an end-to-end encrypted channel).

use super::{
    ApiError, ApiResult, AppState, B64, converse, parse_json, require_content_type, tenant,
    unexpected,
};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::sync::Arc;
use veritee_proto::api::{
    OpenSessionRequest, OpenSessionResponse, ResumeSessionRequest, ResumeSessionResponse,
};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

/// Most session owners the host remembers (it uses them to refuse unknown sessions
/// early and to know whose traffic a message is).
const MAX_SESSION_OWNERS: usize = 100_000;

pub(super) async fn open_session(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<OpenSessionResponse>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    let req: OpenSessionRequest = parse_json(&headers, &body)?;
    if hex::decode(&req.nonce).ok().is_none_or(|n| n.len() != 32) {
        return Err(ApiError::bad_request("nonce must be 32 bytes of hex"));
    }
    match converse(
        &state,
        EnclaveCall::OpenSession {
            request: signed.request,
            body: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::SessionOpened {
            session_id,
            enclave_public_key,
            evidence,
        } => {
            remember_owner(&state, &session_id, signed.tenant_id);
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

pub(super) async fn resume(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ResumeSessionResponse>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    // Parsed only to refuse a malformed body early; the enclave reads the exact bytes.
    let _: ResumeSessionRequest = parse_json(&headers, &body)?;
    match converse(
        &state,
        EnclaveCall::ResumeSession {
            request: signed.request,
            body: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::SessionResumed {
            session_id,
            message,
        } => {
            remember_owner(&state, &session_id, signed.tenant_id);
            state.metrics.session_resumed();
            Ok(Json(ResumeSessionResponse {
                session_id,
                message: B64.encode(message),
            }))
        }
        other => Err(unexpected(&other)),
    }
}

fn remember_owner(state: &AppState, session_id: &str, tenant_id: String) {
    let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
    if sessions.len() > MAX_SESSION_OWNERS {
        sessions.clear();
    }
    sessions.insert(session_id.to_string(), tenant_id);
}

pub(super) async fn message(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    // No tenant signature: the session authenticates each message inside the enclave
    // (sequence numbers under keys only the tenant and the enclave hold), and a message
    // that does not authenticate changes nothing there. A signature checked here would
    // keep nothing out that the enclave lets in, at the price of a P-256 verification
    // and a store read on every message.
    if session_id.len() != 32 || !session_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("a session id is 32 hex digits"));
    }
    require_content_type(&headers, "application/octet-stream")?;
    let owner = state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&session_id)
        .cloned();
    let Some(owner) = owner else {
        // Refused here without an enclave round trip; the enclave would say the same.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "unknown or expired session",
        ));
    };
    state.charge(&owner)?;
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
