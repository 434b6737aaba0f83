//! Secret import (flow 3): the two keys a customer encrypts to, the import itself (the
//! host peels the provider's layer, its part, and passes the TEE's layer on), and the
//! customer's partitions. Operations by key id travel in attested sessions.

use super::node::NonceQuery;
use super::{ApiError, ApiResult, AppState, B64, converse, parse_json, tenant, unexpected};
use crate::provider::ProviderLayer;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{delete, get, post};
use base64::Engine;
use std::sync::Arc;
use veritee_crypto::hpke::HpkePublicKey;
use veritee_import::{envelope, metadata};
use veritee_proto::api::{
    CreatePartitionRequest, ImportKeysResponse, ImportRequest, ImportResponse, OfficerList,
    OfficerRole, PartitionEntry, PartitionList, QuorumTokenRequest, QuorumTokenResponse,
    RegisterOfficerRequest, WrappingKeyResponse,
};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply, ImportCall, ImportReply};

/// The routes of flow 3 (JSON bodies, under the node's JSON body limit).
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/import", get(keys).post(import))
        .route(
            "/v1/partitions",
            get(list_partitions).post(create_partition),
        )
        .route("/v1/partitions/{name}", delete(delete_partition))
        .route(
            "/v1/partitions/{name}/keys/{key_id}/disable",
            post(disable_key),
        )
        .route("/v1/officers", get(list_officers).post(register_officer))
        .route("/v1/quorum-tokens", post(quorum_token))
}

fn provider(state: &AppState) -> ApiResult<&crate::provider::ProviderKeys> {
    state.provider.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this node takes no secret imports (it has no provider keys)",
        )
    })
}

/// `GET /v1/import?nonce=HEX`: the TEE's import key with evidence over the nonce, and
/// the provider's statement for the host's key over the same nonce.
async fn keys(
    State(state): State<Arc<AppState>>,
    Query(q): Query<NonceQuery>,
) -> ApiResult<Json<ImportKeysResponse>> {
    let provider = provider(&state)?;
    let nonce = hex::decode(&q.nonce).map_err(|_| ApiError::bad_request("nonce must be hex"))?;
    let tee = match converse(
        &state,
        EnclaveCall::WrappingKey {
            nonce: nonce.clone(),
        },
    )
    .await?
    {
        EnclaveReply::WrappingKey {
            public_key,
            audit_public_key,
            checkpoint_public_key,
            node_id,
            evidence,
        } => WrappingKeyResponse {
            public_key: hex::encode(public_key),
            audit_public_key: B64.encode(audit_public_key),
            checkpoint_public_key: hex::encode(checkpoint_public_key),
            node_id,
            evidence: B64.encode(evidence),
        },
        other => return Err(unexpected(&other)),
    };
    let statement = match provider.layer() {
        ProviderLayer::Host => provider.statement(&tee.node_id, &nonce)?,
        ProviderLayer::Enclave => {
            let key =
                match converse(&state, EnclaveCall::Import(ImportCall::ProviderLayerKey)).await? {
                    EnclaveReply::Import(ImportReply::ProviderLayerKey(k)) => k,
                    other => return Err(unexpected(&other)),
                };
            let key = HpkePublicKey::from_bytes(&key).map_err(|e| {
                ApiError::internal(format!("the enclave's provider-layer key: {e}"))
            })?;
            provider.statement_for(&key, &tee.node_id, &nonce)?
        }
    };
    let tee_rsa_key = match converse(&state, EnclaveCall::Import(ImportCall::TeeRsaKey)).await? {
        EnclaveReply::Import(ImportReply::TeeRsaKey(signed)) => B64.encode(signed),
        other => return Err(unexpected(&other)),
    };
    Ok(Json(ImportKeysResponse {
        tee,
        provider_statement: B64.encode(&statement.statement),
        provider_signature: B64.encode(&statement.signature),
        tee_rsa_key: Some(tee_rsa_key),
    }))
}

/// `POST /v1/import` (tenant-signed).
async fn import(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ImportResponse>> {
    let provider = provider(&state)?;
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    let parsed: ImportRequest = parse_json(&headers, &body)?;
    let call = match provider.layer() {
        // The enclave opens both layers of the body as the tenant signed it.
        ProviderLayer::Enclave => ImportCall::KeyBothLayers {
            request: signed.request,
            body: body.to_vec(),
        },
        ProviderLayer::Host => {
            let decode = |field: &str, value: &str| {
                B64.decode(value.trim())
                    .map_err(|_| ApiError::bad_request(format!("{field} must be base64")))
            };
            let metadata_bytes = decode("metadata", &parsed.metadata)?;
            let sealed = decode("sealed", &parsed.sealed)?;
            let inner = envelope::peel_provider_layer(
                provider.host_key(),
                &metadata::digest(&metadata_bytes),
                &sealed,
            )
            .map_err(|e| ApiError::bad_request(format!("import refused by the provider: {e}")))?;
            ImportCall::Key {
                request: signed.request,
                body: body.to_vec(),
                inner,
            }
        }
    };
    match converse(&state, EnclaveCall::Import(call)).await? {
        EnclaveReply::Import(ImportReply::Imported {
            confirmation,
            checkpoint,
        }) => Ok(Json(ImportResponse {
            confirmation: B64.encode(confirmation),
            checkpoint,
        })),
        other => Err(unexpected(&other)),
    }
}

async fn create_partition(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    let parsed: CreatePartitionRequest = parse_json(&headers, &body)?;
    act(
        &state,
        ImportCall::CreatePartition {
            request: signed.request,
            body: body.to_vec(),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "partition": parsed.name })),
    ))
}

async fn delete_partition(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    act(
        &state,
        ImportCall::DeletePartition {
            request: signed.request,
            name: name.clone(),
            body: body.to_vec(),
        },
    )
    .await?;
    Ok(Json(serde_json::json!({ "deleted": name })))
}

async fn disable_key(
    State(state): State<Arc<AppState>>,
    Path((partition, key_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    act(
        &state,
        ImportCall::DisableKey {
            request: signed.request,
            partition: partition.clone(),
            key_id: key_id.clone(),
            body: body.to_vec(),
        },
    )
    .await?;
    Ok(Json(
        serde_json::json!({ "disabled": format!("{partition}/{key_id}") }),
    ))
}

async fn list_partitions(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<PartitionList>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    match converse(
        &state,
        EnclaveCall::Import(ImportCall::ListPartitions {
            request: signed.request,
        }),
    )
    .await?
    {
        EnclaveReply::Import(ImportReply::Partitions(list)) => Ok(Json(PartitionList {
            partitions: list
                .into_iter()
                .map(|(name, keys)| PartitionEntry { name, keys })
                .collect(),
        })),
        other => Err(unexpected(&other)),
    }
}

async fn register_officer(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    let parsed: RegisterOfficerRequest = parse_json(&headers, &body)?;
    act(
        &state,
        ImportCall::RegisterOfficer {
            request: signed.request,
            body: body.to_vec(),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "role": parsed.role, "officer": parsed.public_key })),
    ))
}

async fn list_officers(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<OfficerList>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    match converse(
        &state,
        EnclaveCall::Import(ImportCall::ListOfficers {
            request: signed.request,
        }),
    )
    .await?
    {
        EnclaveReply::Import(ImportReply::Officers(roles)) => Ok(Json(OfficerList {
            roles: roles
                .into_iter()
                .map(|(role, quorum, officers)| OfficerRole {
                    role,
                    quorum,
                    officers: officers.iter().map(hex::encode).collect(),
                })
                .collect(),
        })),
        other => Err(unexpected(&other)),
    }
}

async fn quorum_token(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<QuorumTokenResponse>> {
    let signed = tenant(&state, &method, &uri, &headers, &body).await?;
    let _: QuorumTokenRequest = parse_json(&headers, &body)?;
    match converse(
        &state,
        EnclaveCall::Import(ImportCall::QuorumToken {
            request: signed.request,
            body: body.to_vec(),
        }),
    )
    .await?
    {
        EnclaveReply::Import(ImportReply::QuorumToken(token)) => Ok(Json(QuorumTokenResponse {
            token: hex::encode(token),
        })),
        other => Err(unexpected(&other)),
    }
}

/// Asks the enclave for an action it answers with `Done`.
async fn act(state: &AppState, call: ImportCall) -> ApiResult<()> {
    match converse(state, EnclaveCall::Import(call)).await? {
        EnclaveReply::Import(ImportReply::Done) => Ok(()),
        other => Err(unexpected(&other)),
    }
}
