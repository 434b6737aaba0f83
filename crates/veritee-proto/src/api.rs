//! HTTP API bodies (JSON) and the request-signature scheme.
//!
//! Binary values travel as base64 (standard alphabet, padded), hashes and ids as hex.

use serde::{Deserialize, Serialize};

/// API version prefix of every route.
pub const API_PREFIX: &str = "/v1";

/// `POST /v1/tenants` (admin): register a tenant's public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterTenantRequest {
    /// ECDSA P-256 SubjectPublicKeyInfo, DER, base64.
    pub public_key: String,
}

/// Response to [`RegisterTenantRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterTenantResponse {
    /// The tenant id: hex of the first 16 bytes of SHA-256 over the SPKI.
    pub tenant_id: String,
}

/// `POST /v1/sessions` (tenant-signed): start an attested session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSessionRequest {
    /// 32 fresh random bytes, hex.
    pub nonce: String,
}

/// Response to [`OpenSessionRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSessionResponse {
    /// Session id, hex.
    pub session_id: String,
    /// The enclave's session public key (X25519), hex.
    pub enclave_public_key: String,
    /// Evidence binding the key and the nonce, base64.
    pub evidence: String,
}

/// `GET /v1/attestation?nonce=HEX`: evidence over the node's long-term keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationResponse {
    /// Evidence, base64.
    pub evidence: String,
    /// The audit signing key, SPKI DER, base64.
    pub audit_public_key: String,
}

/// `GET /v1/keys/wrapping-key?nonce=HEX`: the attested wrapping key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappingKeyResponse {
    /// HPKE X25519 public key, hex.
    pub public_key: String,
    /// Audit (receipt) key, SPKI DER, base64.
    pub audit_public_key: String,
    /// Evidence binding both keys and the nonce, base64.
    pub evidence: String,
}

/// `POST /v1/keys` (tenant-signed): import a wrapped key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportKeyRequest {
    /// The wrapped key, base64.
    pub wrapped: String,
}

/// Response to [`ImportKeyRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportKeyResponse {
    /// The receipt signed inside the enclave, base64.
    pub receipt: String,
}

/// One audit log entry as served by `GET /v1/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Sequence number.
    pub seq: u64,
    /// The signed entry, base64.
    pub entry: String,
}

/// `GET /v1/audit` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLog {
    /// The log name.
    pub log: String,
    /// Entries in order.
    pub entries: Vec<AuditRecord>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// "ok" or "degraded".
    pub status: String,
    /// "running" or "restarting".
    pub enclave: String,
    /// How often the enclave process was restarted.
    pub enclave_restarts: u64,
    /// "embedded" or "postgres".
    pub store: String,
}

/// Every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code and explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code: bad_request, unauthorized, not_found, conflict,
    /// payload_too_large, unsupported_media_type, unavailable, internal.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// Tenant request signatures.
///
/// `Authorization: Veritee tenant=<id>, ts=<unix seconds>, sig=<base64 ECDSA P-256 r||s>`
/// over [`auth::signing_string`]. The host checks it (no anonymous writes); the enclave
/// separately authenticates the tenant inside each session.
pub mod auth {
    /// The scheme name in the Authorization header.
    pub const SCHEME: &str = "Veritee";
    /// Largest clock difference accepted, seconds.
    pub const MAX_SKEW_SECS: i64 = 300;

    /// The bytes a tenant signs for one request. `payload` stands for the body: its
    /// SHA-256 in hex, or for a piece of a task file [`stream_piece_payload`].
    pub fn signing_string(method: &str, path_and_query: &str, ts: i64, payload: &str) -> Vec<u8> {
        format!("VERITEE-REQUEST-V1\n{method}\n{path_and_query}\n{ts}\n{payload}").into_bytes()
    }

    /// What a tenant signs in place of the body digest for a piece of a task file
    /// (`PUT /v1/tasks/ID/files/...?offset=N`): its length. The body is a
    /// veritee-stream whose every chunk the enclave authenticates under the
    /// compartment's key, at its index and with its final flag, so hashing it at the
    /// host as well would check nothing the enclave does not, at the cost of a
    /// SHA-256 pass over every byte on each side. The signature still binds the
    /// method, the task, file and offset, the time and the length; the host refuses a
    /// body of another length, and pieces only append where the file ends.
    pub fn stream_piece_payload(len: u64) -> String {
        format!("stream-piece:{len}")
    }

    /// Formats the header value.
    pub fn header_value(tenant_id: &str, ts: i64, sig_b64: &str) -> String {
        format!("{SCHEME} tenant={tenant_id}, ts={ts}, sig={sig_b64}")
    }

    /// A parsed Authorization header.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SignedHeader {
        /// Tenant id.
        pub tenant_id: String,
        /// Timestamp.
        pub ts: i64,
        /// Signature bytes.
        pub signature: Vec<u8>,
    }

    /// Parses the header value; the error names what is wrong.
    pub fn parse_header(value: &str) -> Result<SignedHeader, String> {
        use base64::Engine;
        let rest = value
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| format!("Authorization must use the {SCHEME} scheme"))?;
        let (mut tenant, mut ts, mut sig) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or("Authorization parameters are key=value")?;
            match k {
                "tenant" => tenant = Some(v.to_string()),
                "ts" => ts = Some(v.parse::<i64>().map_err(|_| "ts must be an integer")?),
                "sig" => {
                    sig = Some(
                        base64::engine::general_purpose::STANDARD
                            .decode(v)
                            .map_err(|_| "sig must be base64")?,
                    )
                }
                other => return Err(format!("unknown Authorization parameter {other:?}")),
            }
        }
        let tenant_id = tenant.ok_or("Authorization lacks tenant=")?;
        if tenant_id.len() != 32 || !tenant_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("tenant must be 32 hex digits".into());
        }
        Ok(SignedHeader {
            tenant_id,
            ts: ts.ok_or("Authorization lacks ts=")?,
            signature: sig.ok_or("Authorization lacks sig=")?,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn header_round_trip_and_errors() {
            let v = header_value(&"ab".repeat(16), 1700000000, "AAEC");
            let h = parse_header(&v).unwrap();
            assert_eq!(h.ts, 1700000000);
            assert_eq!(h.signature, vec![0, 1, 2]);
            assert!(parse_header("Bearer x").unwrap_err().contains("scheme"));
            assert!(
                parse_header("Veritee tenant=zz, ts=1, sig=AA==")
                    .unwrap_err()
                    .contains("32 hex")
            );
            assert!(
                parse_header(&format!(
                    "Veritee tenant={}, ts=x, sig=AA==",
                    "a".repeat(32)
                ))
                .is_err()
            );
            assert!(
                parse_header(&format!("Veritee tenant={}, ts=1", "a".repeat(32)))
                    .unwrap_err()
                    .contains("sig")
            );
            assert!(
                parse_header(&format!(
                    "Veritee tenant={}, ts=1, sig=AA==, x=1",
                    "a".repeat(32)
                ))
                .is_err()
            );
        }
    }
}
