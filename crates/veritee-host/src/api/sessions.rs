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
use veritee_proto::api::{OpenSessionRequest, OpenSessionResponse};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

/// Most session owners the host remembers (it only uses them to refuse early).
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
            let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.len() > MAX_SESSION_OWNERS {
                sessions.clear();
            }
            sessions.insert(session_id.clone(), signed.tenant_id);
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

pub(super) async fn message(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    // The session itself authenticates each message inside the enclave (sequence
    // numbers under keys only the tenant and the enclave hold); this check only keeps
    // other tenants' traffic away.
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/octet-stream")?;
    let owner = state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&session_id)
        .cloned();
    if owner.as_deref().is_some_and(|o| o != signed.tenant_id) {
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
