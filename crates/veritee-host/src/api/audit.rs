//! The audit log (admin) and its signed checkpoints (anyone).

use super::{ApiResult, AppState, B64, admin, converse, unexpected};
use crate::HostError;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use veritee_proto::api::{AuditLog, AuditRecord};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    #[serde(default)]
    from: u64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    1000
}

pub(super) async fn log(
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
        .map_err(|e| super::ApiError::from(HostError::Store(e)))?;
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

/// `GET /v1/audit/checkpoint`: the enclave's signed checkpoint of its log (a C2SP
/// signed note, text/plain), public like the log's head it states.
pub(super) async fn checkpoint(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    match converse(&state, EnclaveCall::AuditCheckpoint).await? {
        EnclaveReply::Checkpoint { note } => {
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
        }
        other => Err(unexpected(&other)),
    }
}
