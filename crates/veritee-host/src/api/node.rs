//! The node itself: which enclave answers (`/v1/node`), its attestation, and tenant
//! registration (admin, with the tenant's proof of possession).

use super::{
    ApiError, ApiResult, AppState, B64, TenantRequest, admin, converse, parse_json, path_and_query,
    unexpected,
};
use crate::HostError;
use crate::auth::{self, HOST_TENANTS_NS};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use tracing::info;
use veritee_proto::api::auth::PROOF_HEADER;
use veritee_proto::api::{
    AttestationResponse, NodeInfo, RegisterTenantRequest, RegisterTenantResponse,
};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply, SignedRequest};

/// `GET /v1/node`: the node id and enclave epoch tenants sign requests for.
pub(super) async fn info(State(state): State<Arc<AppState>>) -> ApiResult<Json<NodeInfo>> {
    match converse(&state, EnclaveCall::Status).await? {
        EnclaveReply::Status(s) => Ok(Json(NodeInfo {
            node_id: s.node_id,
            epoch: s.epoch,
        })),
        other => Err(unexpected(&other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NonceQuery {
    pub(super) nonce: String,
}

pub(super) async fn attestation(
    State(state): State<Arc<AppState>>,
    Query(q): Query<NonceQuery>,
) -> ApiResult<Json<AttestationResponse>> {
    let nonce = hex::decode(&q.nonce).map_err(|_| ApiError::bad_request("nonce must be hex"))?;
    match converse(&state, EnclaveCall::Attest { nonce }).await? {
        EnclaveReply::Attestation {
            evidence,
            audit_public_key,
            checkpoint_public_key,
        } => Ok(Json(AttestationResponse {
            evidence: B64.encode(evidence),
            audit_public_key: B64.encode(audit_public_key),
            checkpoint_public_key: hex::encode(checkpoint_public_key),
        })),
        other => Err(unexpected(&other)),
    }
}

/// `POST /v1/tenants` (admin): the admin token in Authorization, and in
/// `Veritee-Tenant-Proof` the tenant's own signature over the request with the key
/// being registered, which the enclave checks.
pub(super) async fn register_tenant(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RegisterTenantResponse>> {
    admin(&state, &headers)?;
    let req: RegisterTenantRequest = parse_json(&headers, &body)?;
    let spki = auth::decode_spki(&req.public_key).map_err(ApiError::bad_request)?;
    let proof = headers
        .get(PROOF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::unauthorized(format!(
                "registering a tenant needs the tenant's own signature in {PROOF_HEADER}"
            ))
        })?;
    let registered = TenantRequest {
        tenant_id: auth::tenant_id(&spki),
        request: SignedRequest {
            authorization: proof.to_string(),
            method: method.as_str().to_string(),
            path: path_and_query(&uri).to_string(),
        },
    };
    let tenant_id = match converse(
        &state,
        EnclaveCall::RegisterTenant {
            request: registered.request,
            body: body.to_vec(),
        },
    )
    .await?
    {
        EnclaveReply::TenantRegistered { tenant_id } if tenant_id == registered.tenant_id => {
            tenant_id
        }
        EnclaveReply::TenantRegistered { .. } => {
            return Err(ApiError::internal(
                "the enclave registered the tenant under another id",
            ));
        }
        other => return Err(unexpected(&other)),
    };
    state
        .store
        .put(HOST_TENANTS_NS, &tenant_id, &spki)
        .await
        .map_err(|e| ApiError::from(HostError::Store(e)))?;
    info!(tenant = tenant_id.as_str(), "tenant registered");
    Ok(Json(RegisterTenantResponse { tenant_id }))
}
