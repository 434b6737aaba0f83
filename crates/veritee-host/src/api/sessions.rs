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
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use veritee_proto::api::{
    OpenSessionRequest, OpenSessionResponse, ResumeSessionRequest, ResumeSessionResponse,
};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

/// Most session owners the host remembers (it uses them to refuse unknown sessions
/// early and to know whose traffic a message is): four times the sessions an enclave
/// holds (`veritee_enclave::session_table::MAX_OPEN_SESSIONS`, 4096), so a session the
/// enclave still holds is never forgotten here, and the table stops growing within
/// minutes of a busy start (it held up to 100,000, and grew through a 20-minute soak).
pub(super) const MAX_SESSION_OWNERS: usize = 4 * 4096;
/// How long the enclave keeps an unused session (`veritee_enclave`'s `SESSION_IDLE`; the
/// host does not depend on the enclave crate).
const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);

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
    let now = Instant::now();
    let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
    sessions.insert(session_id.to_string(), (tenant_id, now));
    if sessions.len() > MAX_SESSION_OWNERS {
        forget_least_recently_used(&mut sessions, now);
    }
}

/// Makes room in the owners' table: first what the enclave has let expire, then, if
/// still full, the least recently used tenth. A session still live in the enclave is
/// never among them: the enclave holds a few thousand sessions at most, so a session
/// used less recently than this many others has been evicted there already.
fn forget_least_recently_used(sessions: &mut HashMap<String, (String, Instant)>, now: Instant) {
    sessions.retain(|_, (_, used)| now.duration_since(*used) < SESSION_IDLE);
    if sessions.len() > MAX_SESSION_OWNERS * 9 / 10 {
        let mut by_use: Vec<(Instant, String)> = sessions
            .iter()
            .map(|(id, (_, used))| (*used, id.clone()))
            .collect();
        by_use.sort_unstable();
        let excess = sessions.len() - MAX_SESSION_OWNERS * 9 / 10;
        for (_, id) in by_use.into_iter().take(excess) {
            sessions.remove(&id);
        }
    }
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
        .get_mut(&session_id)
        .map(|(owner, used)| {
            *used = Instant::now();
            owner.clone()
        });
    let Some(owner) = owner else {
        // Refused here without an enclave round trip; the enclave would say the same.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "unknown or expired session",
        ));
    };
    state.charge(&owner)?;
    let call = EnclaveCall::SessionMessage {
        session_id,
        message: Vec::new(),
    };
    match state
        .enclave
        .call_with_tail(call, crate::enclave_link::Tail::Bytes(&body))
        .await??
    {
        EnclaveReply::Message { message } => Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Body::from(message),
        )
            .into_response()),
        other => Err(unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_owners_table_forgets_expired_then_least_recently_used_sessions() {
        // Instants in the future, so that going back never underflows.
        let now = Instant::now() + Duration::from_secs(3600);
        let mut sessions = HashMap::new();
        for i in 0..MAX_SESSION_OWNERS {
            // Session 0 is the oldest opened; each later one was used later.
            let used = now - Duration::from_secs(600) + Duration::from_millis(i as u64);
            sessions.insert(format!("s{i}"), ("t".to_string(), used));
        }
        sessions.insert("expired".into(), ("t".into(), now - SESSION_IDLE));
        // The oldest session, used a moment ago, is kept.
        sessions.insert("s0".into(), ("t".into(), now));
        forget_least_recently_used(&mut sessions, now);
        assert!(!sessions.contains_key("expired"));
        assert!(
            sessions.contains_key("s0"),
            "a session in use was forgotten"
        );
        assert_eq!(sessions.len(), MAX_SESSION_OWNERS * 9 / 10);
        assert!(
            !sessions.contains_key("s1"),
            "the least recently used stayed"
        );
        assert!(sessions.contains_key(&format!("s{}", MAX_SESSION_OWNERS - 1)));
    }
}
