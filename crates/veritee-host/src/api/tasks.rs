//! Trusted tasks: initiation, key delivery, encrypted uploads spooled for the enclave,
//! the run and its withdrawal. Tasks are the tenant's: the host keys them by (tenant,
//! task id) and spools each tenant's uploads under its own directory; the enclave
//! checks every request's signature itself.

use super::{
    ApiError, ApiResult, AppState, B64, TenantRequest, check_task_id_format, converse,
    require_content_type, tenant, tenant_payload, unexpected,
};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use veritee_proto::api::auth::stream_piece_payload;
use veritee_proto::api::{TaskList, TaskListEntry};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

/// How long the host remembers who initiated a task that was never run.
const TASK_OWNER_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Largest single task upload.
pub const MAX_TASK_FILE: u64 = 4 * 1024 * 1024 * 1024;

#[derive(Deserialize)]
struct TaskIdOnly {
    task_id: String,
}

/// Where an upload piece goes in its file.
#[derive(Deserialize)]
pub(super) struct UploadOffset {
    #[serde(default)]
    offset: u64,
}

fn task_owner(state: &AppState, tenant_id: &str, task_id: &str) -> ApiResult<()> {
    check_task_id_format(task_id)?;
    let known = state
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key(&(tenant_id.to_string(), task_id.to_string()));
    if known {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "unknown task (task ids belong to the tenant that initiated them)",
        ))
    }
}

fn forget(state: &AppState, signed: &TenantRequest, task_id: &str) {
    state
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(signed.tenant_id.clone(), task_id.to_string()));
}

async fn clear_spool(state: &AppState, tenant_id: &str, task_id: &str) {
    if let Some(spool) = &state.spool {
        let _ = tokio::fs::remove_dir_all(spool.join(tenant_id).join(task_id)).await;
        // The tenant's directory goes too once it holds no task (it fails otherwise).
        let _ = tokio::fs::remove_dir(spool.join(tenant_id)).await;
    }
}

pub(super) async fn initiate(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/json")?;
    let TaskIdOnly { task_id } = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid task initiation: {e}")))?;
    check_task_id_format(&task_id)?;
    match converse(
        &state,
        EnclaveCall::TaskInitiate {
            request: signed.request.clone(),
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
            tasks.retain(|_, since| since.elapsed() < TASK_OWNER_TTL);
            tasks.insert(
                (signed.tenant_id, task_id.clone()),
                std::time::Instant::now(),
            );
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

/// The signing tenant's tasks (tenant-signed, empty body), oldest first: those this
/// host routed and has not forgotten (ended, withdrawn, or idle past the TTL).
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<TaskList>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    let mut tasks = state.tasks.lock().unwrap_or_else(|e| e.into_inner());
    tasks.retain(|_, since| since.elapsed() < TASK_OWNER_TTL);
    let mut mine: Vec<TaskListEntry> = tasks
        .iter()
        .filter(|((owner, _), _)| *owner == signed.tenant_id)
        .map(|((_, task_id), since)| TaskListEntry {
            task_id: task_id.clone(),
            age_secs: since.elapsed().as_secs(),
        })
        .collect();
    mine.sort_by(|a, b| b.age_secs.cmp(&a.age_secs).then(a.task_id.cmp(&b.task_id)));
    Ok(Json(TaskList { tasks: mine }))
}

/// Withdraws a task (tenant-signed, empty body): one not yet run is forgotten with its
/// uploads; a running one stops waiting for inputs, and its run answers with the
/// failure.
pub(super) async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(task_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    task_owner(&state, &signed.tenant_id, &task_id)?;
    match converse(
        &state,
        EnclaveCall::TaskCancel {
            request: signed.request.clone(),
            task_id: task_id.clone(),
        },
    )
    .await?
    {
        EnclaveReply::TaskCancelled { was_running } => {
            if !was_running {
                // The run handler cleans up after a running task; this one never ran.
                forget(&state, &signed, &task_id);
                clear_spool(&state, &signed.tenant_id, &task_id).await;
            }
            Ok(Json(
                serde_json::json!({ "cancelled": true, "was_running": was_running }),
            ))
        }
        other => Err(unexpected(&other)),
    }
}

pub(super) async fn keys(
    State(state): State<Arc<AppState>>,
    Path(task_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/octet-stream")?;
    task_owner(&state, &signed.tenant_id, &task_id)?;
    match converse(
        &state,
        EnclaveCall::TaskKeys {
            request: signed.request,
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

/// Receives a piece of a task file starting at `?offset=N` and appends it to the
/// spool (pieces arrive in order). The tenant signs each piece over its length
/// ([`stream_piece_payload`]), checked before any byte is written; a body of another
/// length is refused and leaves the file as it was.
pub(super) async fn file(
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
    check_task_id_format(&task_id)?;
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
    let signed = tenant_payload(
        &state,
        &method,
        &uri,
        &headers,
        &stream_piece_payload(declared),
    )
    .await?;
    task_owner(&state, &signed.tenant_id, &task_id)?;
    let _permit = reserve_upload(&state, spool, &signed.tenant_id, declared).await?;
    // Under the tenant's own directory: no tenant reaches another's files.
    let dir = spool
        .join(&signed.tenant_id)
        .join(&task_id)
        .join(&compartment);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(format!("spool: {e}")))?;
    let path = dir.join(&slot);
    let io = |e: std::io::Error| ApiError::internal(format!("spool: {e}"));
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

/// How long a tenant over its upload quota is told to wait: an upload in progress
/// ends within seconds, a task that holds spool within its deadline.
const UPLOAD_RETRY_AFTER_SECS: u64 = 1;
const SPOOL_RETRY_AFTER_SECS: u64 = 5;

/// The tenant's place for one piece of `declared` bytes, or 429 with `Retry-After` if
/// it already runs as many uploads as it may or its spool would grow past its size.
async fn reserve_upload(
    state: &AppState,
    spool: &std::path::Path,
    tenant_id: &str,
    declared: u64,
) -> ApiResult<Option<crate::limits::UploadPermit>> {
    let Some(quota) = &state.spool_quota else {
        return Ok(None);
    };
    // What the tenant's spool holds is read from the disk, not kept in a counter: the
    // enclave removes the files it has read, and a run clears the rest.
    let dir = spool.join(tenant_id);
    let stored = tokio::task::spawn_blocking(move || crate::limits::bytes_under(&dir))
        .await
        .map_err(|e| ApiError::internal(format!("spool: {e}")))?
        .map_err(|e| ApiError::internal(format!("spool: {e}")))?;
    quota
        .reserve(tenant_id, stored, declared)
        .map(Some)
        .map_err(|refusal| {
            let (code, wait) = match refusal {
                crate::limits::SpoolRefusal::Uploads { .. } => {
                    ("too_many_uploads", UPLOAD_RETRY_AFTER_SECS)
                }
                crate::limits::SpoolRefusal::Bytes { .. } => ("spool_full", SPOOL_RETRY_AFTER_SECS),
            };
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, refusal.to_string());
            e.retry_after = Some(wait);
            e
        })
}

pub(super) async fn run(
    State(state): State<Arc<AppState>>,
    Path(task_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    task_owner(&state, &signed.tenant_id, &task_id)?;
    let reply = converse(
        &state,
        EnclaveCall::TaskRun {
            request: signed.request.clone(),
            task_id: task_id.clone(),
        },
    )
    .await;
    forget(&state, &signed, &task_id);
    // Uploads still arriving when the run ended (a guest that stopped early) leave no
    // spool behind; the enclave removes what it read.
    clear_spool(&state, &signed.tenant_id, &task_id).await;
    match reply? {
        EnclaveReply::TaskResult { envelope } => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(envelope),
        )
            .into_response()),
        other => Err(unexpected(&other)),
    }
}
