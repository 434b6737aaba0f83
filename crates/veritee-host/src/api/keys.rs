//! Key management: the attested wrapping key and key import.

use super::node::NonceQuery;
use super::{ApiError, ApiResult, AppState, B64, converse, parse_json, tenant, unexpected};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use base64::Engine;
use std::sync::Arc;
use veritee_proto::api::{ImportKeyRequest, ImportKeyResponse, WrappingKeyResponse};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

pub(super) async fn wrapping_key(
    State(state): State<Arc<AppState>>,
    Query(q): Query<NonceQuery>,
) -> ApiResult<Json<WrappingKeyResponse>> {
    let nonce = hex::decode(&q.nonce).map_err(|_| ApiError::bad_request("nonce must be hex"))?;
    match converse(&state, EnclaveCall::WrappingKey { nonce }).await? {
        EnclaveReply::WrappingKey {
            public_key,
            audit_public_key,
            checkpoint_public_key,
            node_id,
            evidence,
        } => Ok(Json(WrappingKeyResponse {
            public_key: hex::encode(public_key),
            audit_public_key: B64.encode(audit_public_key),
            checkpoint_public_key: hex::encode(checkpoint_public_key),
            node_id,
            evidence: B64.encode(evidence),
        })),
        other => Err(unexpected(&other)),
    }
}

pub(super) async fn import_key(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ImportKeyResponse>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    // Parsed here only to refuse garbage early: the enclave parses the body it was
    // signed over, not the host's reading of it.
    let _: ImportKeyRequest = parse_json(&headers, &body)?;
    match converse(
        &state,
        EnclaveCall::ImportKey {
            request: signed.request,
            body: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::KeyImported {
            receipt,
            checkpoint,
        } => Ok(Json(ImportKeyResponse {
            receipt: B64.encode(receipt),
            checkpoint,
        })),
        other => Err(unexpected(&other)),
    }
}
