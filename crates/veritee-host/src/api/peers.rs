//! Enclave-to-enclave traffic from peer nodes (`/v1/peer`), and their registration.
//!
//! The enclaves authenticate each other by mutual attestation, so the host decides
//! nothing about what passes. It only keeps strangers out: a peer node presents its
//! peer token (`Authorization: VeriteePeer TOKEN`), which the admin registered here by
//! its SHA-256 (`POST /v1/peers`), and each registered peer is rate-limited, so no one
//! can fill the enclave's table of handshakes in progress.

use super::{ApiError, ApiResult, AppState, admin, parse_json, require_content_type, unexpected};
use crate::HostError;
use crate::enclave_link::Tail;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::info;
use veritee_proto::ipc::{EnclaveCall, EnclaveReply};

/// Where registered peers are kept: key = SHA-256 of the token (hex), value = name.
pub const HOST_PEERS_NS: &str = "host-peers";
/// The Authorization scheme of peer nodes.
pub const PEER_SCHEME: &str = "VeriteePeer";
/// Sustained peer messages per second, per peer (a handshake is two).
pub const PEER_RATE: f64 = 20.0;
/// Messages a peer may send at once before the rate applies.
pub const PEER_BURST: f64 = 40.0;

/// `POST /v1/peers` (admin).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterPeerRequest {
    /// A name for the peer (for logs and limits).
    pub name: String,
    /// SHA-256 of the peer's token, hex.
    pub token_sha256: String,
}

/// The rate limits of registered peers.
#[derive(Default)]
pub(super) struct PeerGate {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl PeerGate {
    /// Takes one message from `peer`'s bucket; the seconds to wait if it is empty.
    fn admit(&self, peer: &str) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = buckets.entry(peer.to_string()).or_insert((PEER_BURST, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * PEER_RATE).min(PEER_BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / PEER_RATE).ceil().max(1.0) as u64)
        }
    }
}

pub(super) async fn register_peer(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&state, &headers)?;
    let req: RegisterPeerRequest = parse_json(&headers, &body)?;
    if !crate::children::valid_name(&req.name) {
        return Err(ApiError::bad_request(
            "a peer name is 1 to 64 characters of A-Z a-z 0-9 . _ -",
        ));
    }
    if req.token_sha256.len() != 64 || !req.token_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("token_sha256 must be 64 hex digits"));
    }
    state
        .store
        .put(
            HOST_PEERS_NS,
            &req.token_sha256.to_ascii_lowercase(),
            req.name.as_bytes(),
        )
        .await
        .map_err(|e| ApiError::from(HostError::Store(e)))?;
    info!(peer = req.name.as_str(), "peer registered");
    Ok(Json(serde_json::json!({ "registered": req.name })))
}

/// The registered peer presenting `headers`, by name.
async fn calling_peer(state: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(PEER_SCHEME))
        .and_then(|v| v.strip_prefix(' '))
        .ok_or_else(|| {
            ApiError::unauthorized(format!(
                "only registered peer nodes may call this route (Authorization: {PEER_SCHEME} TOKEN)"
            ))
        })?;
    let digest = hex::encode(veritee_crypto::digest::sha256(token.trim().as_bytes()));
    let name = state
        .store
        .get(HOST_PEERS_NS, &digest)
        .await
        .map_err(|e| ApiError::from(HostError::Store(e)))?
        .ok_or_else(|| {
            ApiError::unauthorized("unknown peer token: register it with POST /v1/peers")
        })?;
    Ok(String::from_utf8_lossy(&name).into_owned())
}

/// Enclave-to-enclave messages from registered peer nodes: authenticated by
/// attestation inside the enclave, admitted and rate-limited here.
pub(super) async fn relay(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let peer = calling_peer(&state, &headers).await?;
    if let Err(retry_after) = state.peers.admit(&peer) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("peer {peer} sends more than {PEER_RATE} messages per second"),
        );
        e.retry_after = Some(retry_after);
        return Err(e);
    }
    require_content_type(&headers, "application/octet-stream")?;
    // The message (a fork's 8 MiB of pages) goes to the enclave as it arrives, behind
    // a frame head that needs its length first.
    let len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "a peer message needs a Content-Length",
            )
        })?;
    if len > veritee_proto::ipc::MAX_PEER_MESSAGE {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "a peer message of {len} bytes exceeds the {} allowed",
                veritee_proto::ipc::MAX_PEER_MESSAGE
            ),
        ));
    }
    let chunks = body
        .into_data_stream()
        .map(|c| c.map_err(|e| e.to_string()));
    let chunks = std::pin::pin!(chunks);
    let call = EnclaveCall::PeerMessage {
        message: Vec::new(),
    };
    match state
        .enclave
        .call_with_tail(call, Tail::Streamed { len, chunks })
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

/// `GET /v1/children` (admin): the child nodes this node started on this machine for
/// forks to `local:NAME` (see [`crate::children`]), where their tenants reach them.
pub(super) async fn children(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&state, &headers)?;
    let children = match state.enclave.local_children() {
        Some(children) => children.list().await,
        None => Vec::new(),
    };
    Ok(Json(serde_json::json!({
        "children": children
            .into_iter()
            .map(|(name, url)| serde_json::json!({ "name": name, "url": url }))
            .collect::<Vec<_>>(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_peer_is_slowed_and_others_are_not() {
        let gate = PeerGate::default();
        for _ in 0..PEER_BURST as usize {
            assert!(gate.admit("noisy").is_ok());
        }
        let wait = gate.admit("noisy").expect_err("over the burst");
        assert!(wait >= 1);
        assert!(gate.admit("quiet").is_ok());
    }
}
