//! Encrypted data objects: uploads chunk by chunk, reads chunk by chunk, every request
//! signed by the tenant and checked again by the enclave.

use super::{ApiResult, AppState, B64, converse, require_content_type, tenant, unexpected};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LastQuery {
    #[serde(default)]
    last: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenQuery {
    nonce: String,
}

pub(super) async fn begin(
    State(state): State<Arc<AppState>>,
    Path(object): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/octet-stream")?;
    match converse(
        &state,
        EnclaveCall::DataBegin {
            request: signed.request,
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

pub(super) async fn chunk(
    State(state): State<Arc<AppState>>,
    Path((object, upload_id, index)): Path<(String, String, u64)>,
    Query(q): Query<LastQuery>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    require_content_type(&headers, "application/octet-stream")?;
    match converse(
        &state,
        EnclaveCall::DataChunk {
            request: signed.request,
            object,
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

pub(super) async fn open(
    State(state): State<Arc<AppState>>,
    Path(object): Path<String>,
    Query(q): Query<OpenQuery>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let signed = tenant(&state, &method, &uri, &headers, b"").await?;
    match converse(
        &state,
        EnclaveCall::DataOpen {
            request: signed.request,
            object,
            nonce: q.nonce,
        },
    )
    .await?
    {
        EnclaveReply::DataHeader {
            header,
            chunks,
            version,
            vouch,
        } => Ok(Json(serde_json::json!({
            "header": B64.encode(header),
            "chunks": chunks,
            "version": version,
            "vouch": hex::encode(vouch),
        }))),
        other => Err(unexpected(&other)),
    }
}

pub(super) async fn read(
    State(state): State<Arc<AppState>>,
    Path((object, index)): Path<(String, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let signed = tenant(&state, &method, &uri, &headers, b"").await?;
    match converse(
        &state,
        EnclaveCall::DataRead {
            request: signed.request,
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
