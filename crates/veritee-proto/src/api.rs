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

/// `POST /v1/sessions/resume`: resume a session by its ticket, with the first request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeSessionRequest {
    /// The ticket the enclave issued, base64.
    pub ticket: String,
    /// 32 fresh random bytes, hex.
    pub nonce: String,
    /// The first request of the resumed session, sealed, base64.
    pub message: String,
}

/// Response to [`ResumeSessionRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeSessionResponse {
    /// The resumed session's id, hex.
    pub session_id: String,
    /// The sealed reply to the first request, base64.
    pub message: String,
}

/// `GET /v1/tasks` (tenant-signed): the signing tenant's tasks the node holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskList {
    /// Oldest first.
    pub tasks: Vec<TaskListEntry>,
}

/// One task of a [`TaskList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskListEntry {
    /// The task id, hex.
    pub task_id: String,
    /// Seconds since it was initiated.
    pub age_secs: u64,
}

/// `GET /v1/attestation?nonce=HEX`: evidence over the node's long-term keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationResponse {
    /// Evidence, base64.
    pub evidence: String,
    /// The audit signing key, SPKI DER, base64.
    pub audit_public_key: String,
    /// The audit checkpoint signing key, Ed25519, hex.
    pub checkpoint_public_key: String,
}

/// `GET /v1/keys/wrapping-key?nonce=HEX`: the attested wrapping key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappingKeyResponse {
    /// HPKE X25519 public key, hex.
    pub public_key: String,
    /// Audit (receipt) key, SPKI DER, base64.
    pub audit_public_key: String,
    /// Audit checkpoint key, Ed25519, hex.
    pub checkpoint_public_key: String,
    /// The node id.
    pub node_id: String,
    /// Evidence binding the keys, the node id and the nonce, base64.
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
    /// A signed checkpoint of the audit log that records the import (C2SP signed note).
    pub checkpoint: String,
}

/// `GET /v1/import/keys?nonce=HEX`: the two keys a customer encrypts an import to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportKeysResponse {
    /// The TEE's import key with the evidence binding it to the nonce.
    pub tee: WrappingKeyResponse,
    /// The provider's statement for the host's key, over the same nonce (JSON, base64).
    pub provider_statement: String,
    /// The provider's Ed25519 signature over it, base64.
    pub provider_signature: String,
    /// The enclave's RSA import key for the CKM_RSA_AES_KEY_WRAP format: its
    /// statement signed by the audit key `tee` binds, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tee_rsa_key: Option<String>,
}

/// `POST /v1/import` (tenant-signed): a key encrypted to the TEE, then to the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The customer's metadata (JSON), base64.
    pub metadata: String,
    /// The customer's signature over them, base64.
    pub signature: String,
    /// The outer layer (to the provider's key), base64.
    pub sealed: String,
}

/// Response to [`ImportRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportResponse {
    /// The enclave's signed confirmation, base64.
    pub confirmation: String,
    /// A signed checkpoint of the audit log that records the import (C2SP signed note).
    pub checkpoint: String,
}

/// `POST /v1/partitions` (tenant-signed): create a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePartitionRequest {
    /// Its name.
    pub name: String,
    /// The partition officers' approvals, once the tenant has partition officers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumProof>,
}

/// `DELETE /v1/partitions/{name}` (tenant-signed): its body, which may be empty when
/// the tenant has no partition officers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletePartitionRequest {
    /// The partition officers' approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumProof>,
}

/// `POST /v1/partitions/{name}/keys/{key_id}/disable` (tenant-signed): its body, which
/// may be empty when the tenant has no security officers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableKeyRequest {
    /// The security officers' approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumProof>,
}

/// A quorum token and the officers' approvals of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumProof {
    /// The token's exact bytes as the enclave issued them, hex.
    pub token: String,
    /// The approvals.
    pub approvals: Vec<Approval>,
}

/// One officer's approval of a quorum token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The officer's Ed25519 public key, hex.
    pub officer: String,
    /// Ed25519 over "veritee quorum approval v1\0" and the token's bytes, hex.
    pub signature: String,
}

/// `POST /v1/quorum-tokens` (tenant-signed): a token for one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumTokenRequest {
    /// The action: partition.create, partition.delete, officer.register or key.disable.
    pub action: String,
    /// What it acts on: a partition name, or `role:public key hex`.
    pub target: String,
}

/// Response to [`QuorumTokenRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumTokenResponse {
    /// The token's bytes (JSON), hex: what each officer signs.
    pub token: String,
}

/// `POST /v1/officers` (tenant-signed): register an officer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterOfficerRequest {
    /// domain or partition.
    pub role: String,
    /// The officer's Ed25519 public key, hex.
    pub public_key: String,
    /// Approvals the role's actions need from now on.
    pub quorum: u32,
    /// The domain officers' approvals, once the domain role can reach its quorum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<QuorumProof>,
}

/// `GET /v1/officers` (tenant-signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficerList {
    /// Each role with officers.
    pub roles: Vec<OfficerRole>,
}

/// One role's officers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficerRole {
    /// The role.
    pub role: String,
    /// Approvals its actions need.
    pub quorum: u32,
    /// Its officers' public keys, hex.
    pub officers: Vec<String>,
}

/// `GET /v1/partitions` (tenant-signed): the tenant's partitions and their keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionList {
    /// Partitions, by name.
    pub partitions: Vec<PartitionEntry>,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionEntry {
    /// Its name.
    pub name: String,
    /// The ids of the keys in it.
    pub keys: Vec<String>,
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
    /// The TEE the enclave runs on: "sim" (the simulator), "sgx", "tdx", "snp", "nitro".
    #[serde(default)]
    pub tee: String,
    /// Set when the node runs on the simulator because it found no TEE (`--tee auto`):
    /// its evidence proves nothing, and every default policy refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
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

/// `GET /v1/node`: the enclave answering at this node, which tenants sign requests for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// The node id (16 hex digits): names the enclave's sealing identity on its machine.
    pub node_id: String,
    /// The running enclave process's epoch (32 hex digits), new at every start.
    pub epoch: String,
}

/// The paths of tenant-signed routes, written once: the client signs them, the host
/// routes them, and the enclave rebuilds them from the fields of the call it receives
/// and refuses a signature over any other path.
pub mod paths {
    /// `POST`: open an attested session.
    pub fn sessions() -> String {
        "/v1/sessions".into()
    }

    /// `POST`: resume a session by its ticket.
    pub fn session_resume() -> String {
        "/v1/sessions/resume".into()
    }

    /// `POST`: a message of a session.
    pub fn session_messages(session_id: &str) -> String {
        format!("/v1/sessions/{session_id}/messages")
    }

    /// `POST`: import a wrapped key.
    pub fn keys() -> String {
        "/v1/keys".into()
    }

    /// `POST`: begin storing a data object.
    pub fn data_uploads(object: &str) -> String {
        format!("/v1/data/{object}/uploads")
    }

    /// `PUT`: one chunk of an upload.
    pub fn data_upload_chunk(object: &str, upload: &str, index: u64, last: bool) -> String {
        format!("/v1/data/{object}/uploads/{upload}/chunks/{index}?last={last}")
    }

    /// `GET`: a data object's header, its version vouched for under the client's `nonce`.
    pub fn data_object(object: &str, nonce: &str) -> String {
        format!("/v1/data/{object}?nonce={nonce}")
    }

    /// `GET`: one stored chunk.
    pub fn data_chunk(object: &str, index: u64) -> String {
        format!("/v1/data/{object}/chunks/{index}")
    }

    /// `POST`: a task initiation.
    pub fn tasks() -> String {
        "/v1/tasks".into()
    }

    /// `POST`: a task's key delivery.
    pub fn task_keys(task_id: &str) -> String {
        format!("/v1/tasks/{task_id}/keys")
    }

    /// `POST`: run a task.
    pub fn task_run(task_id: &str) -> String {
        format!("/v1/tasks/{task_id}/run")
    }

    /// `POST`: withdraw a task.
    pub fn task_cancel(task_id: &str) -> String {
        format!("/v1/tasks/{task_id}/cancel")
    }

    /// `PUT`: a piece of a task file, at `offset`.
    pub fn task_file(task_id: &str, compartment: &str, slot: &str, offset: u64) -> String {
        format!("/v1/tasks/{task_id}/files/{compartment}/{slot}?offset={offset}")
    }

    /// `GET` the import keys; `POST` an import.
    pub fn import() -> String {
        "/v1/import".into()
    }

    /// `POST` a partition, `GET` the list.
    pub fn partitions() -> String {
        "/v1/partitions".into()
    }

    /// `DELETE` a partition.
    pub fn partition(name: &str) -> String {
        format!("/v1/partitions/{name}")
    }

    /// `POST` an officer, `GET` the list.
    pub fn officers() -> String {
        "/v1/officers".into()
    }

    /// `POST`: disable a key for good.
    pub fn disable_key(partition: &str, key_id: &str) -> String {
        format!("/v1/partitions/{partition}/keys/{key_id}/disable")
    }

    /// `POST`: a quorum token for one action.
    pub fn quorum_tokens() -> String {
        "/v1/quorum-tokens".into()
    }

    /// `POST` (admin): register a tenant.
    pub fn tenants() -> String {
        "/v1/tenants".into()
    }
}

/// Tenant request signatures.
///
/// `Authorization: Veritee tenant=<id>, node=<node id>, epoch=<hex>, ts=<unix seconds>,
/// nonce=<hex>, sig=<base64 ECDSA P-256 r||s>` over [`auth::signing_string`].
///
/// The host checks it as a first filter (no anonymous writes), then hands the header,
/// method and path to the enclave with the body, and the enclave checks it again with
/// its own sealed copy of the tenant's key: the tenant, not the host, is who asks. The
/// signature names the node and the enclave instance (`epoch`, random per start of the
/// enclave process) it is for, so it is no good at another node or after a restart,
/// and a fresh `nonce` that the enclave remembers for the time window, so it is no good
/// twice.
pub mod auth {
    /// The scheme name in the Authorization header.
    pub const SCHEME: &str = "Veritee";
    /// Largest clock difference accepted, seconds.
    pub const MAX_SKEW_SECS: i64 = 300;
    /// Bytes of a request nonce.
    pub const NONCE_LEN: usize = 16;
    /// Header the tenant's proof of possession travels in when the Authorization header
    /// carries the admin token (tenant registration).
    pub const PROOF_HEADER: &str = "veritee-tenant-proof";

    /// The enclave a request is meant for: the node's id and the running enclave's
    /// epoch, both from `GET /v1/node`.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct Audience {
        /// The node id (16 hex digits).
        pub node: String,
        /// The enclave instance (32 hex digits).
        pub epoch: String,
    }

    /// The bytes a tenant signs for one request. `payload` stands for the body: its
    /// SHA-256 in hex, or for a piece of a task file [`stream_piece_payload`].
    pub fn signing_string(
        audience: &Audience,
        method: &str,
        path_and_query: &str,
        ts: i64,
        nonce: &str,
        payload: &str,
    ) -> Vec<u8> {
        format!(
            "VERITEE-REQUEST-V2\n{}\n{}\n{method}\n{path_and_query}\n{ts}\n{nonce}\n{payload}",
            audience.node, audience.epoch
        )
        .into_bytes()
    }

    /// The payload of a request body: its SHA-256, hex.
    pub fn body_payload(body: &[u8]) -> String {
        hex::encode(veritee_crypto::digest::sha256(body))
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
    pub fn header_value(
        tenant_id: &str,
        audience: &Audience,
        ts: i64,
        nonce: &str,
        sig_b64: &str,
    ) -> String {
        format!(
            "{SCHEME} tenant={tenant_id}, node={}, epoch={}, ts={ts}, nonce={nonce}, sig={sig_b64}",
            audience.node, audience.epoch
        )
    }

    /// A parsed Authorization header.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SignedHeader {
        /// Tenant id.
        pub tenant_id: String,
        /// The enclave it is for.
        pub audience: Audience,
        /// Timestamp.
        pub ts: i64,
        /// The request's nonce, hex.
        pub nonce: String,
        /// Signature bytes.
        pub signature: Vec<u8>,
    }

    impl SignedHeader {
        /// The signed bytes of this request.
        pub fn signing_string(&self, method: &str, path_and_query: &str, payload: &str) -> Vec<u8> {
            signing_string(
                &self.audience,
                method,
                path_and_query,
                self.ts,
                &self.nonce,
                payload,
            )
        }
    }

    fn hex_field(v: &str, len: usize, name: &str) -> Result<String, String> {
        if v.len() == 2 * len && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(v.to_ascii_lowercase())
        } else {
            Err(format!("{name} must be {} hex digits", 2 * len))
        }
    }

    /// Parses the header value; the error names what is wrong.
    pub fn parse_header(value: &str) -> Result<SignedHeader, String> {
        use base64::Engine;
        if value.len() > 1024 {
            return Err("Authorization header is too long".into());
        }
        let rest = value
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| format!("Authorization must use the {SCHEME} scheme"))?;
        let (mut tenant, mut node, mut epoch, mut ts, mut nonce, mut sig) =
            (None, None, None, None, None, None);
        for part in rest.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or("Authorization parameters are key=value")?;
            let slot = match k {
                "tenant" => &mut tenant,
                "node" => &mut node,
                "epoch" => &mut epoch,
                "ts" => &mut ts,
                "nonce" => &mut nonce,
                "sig" => &mut sig,
                other => return Err(format!("unknown Authorization parameter {other:?}")),
            };
            if slot.replace(v.to_string()).is_some() {
                return Err(format!("Authorization parameter {k} appears twice"));
            }
        }
        let tenant_id = hex_field(&tenant.ok_or("Authorization lacks tenant=")?, 16, "tenant")?;
        let node = hex_field(&node.ok_or("Authorization lacks node=")?, 8, "node")?;
        let epoch = hex_field(&epoch.ok_or("Authorization lacks epoch=")?, 16, "epoch")?;
        let nonce = hex_field(
            &nonce.ok_or("Authorization lacks nonce=")?,
            NONCE_LEN,
            "nonce",
        )?;
        let ts = ts
            .ok_or("Authorization lacks ts=")?
            .parse::<i64>()
            .map_err(|_| "ts must be an integer")?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(sig.ok_or("Authorization lacks sig=")?)
            .map_err(|_| "sig must be base64")?;
        Ok(SignedHeader {
            tenant_id,
            audience: Audience { node, epoch },
            ts,
            nonce,
            signature,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn audience() -> Audience {
            Audience {
                node: "0a".repeat(8),
                epoch: "0b".repeat(16),
            }
        }

        #[test]
        fn header_round_trip_and_errors() {
            let v = header_value(
                &"ab".repeat(16),
                &audience(),
                1700000000,
                &"cd".repeat(16),
                "AAEC",
            );
            let h = parse_header(&v).unwrap();
            assert_eq!(h.ts, 1700000000);
            assert_eq!(h.signature, vec![0, 1, 2]);
            assert_eq!(h.audience, audience());
            assert!(parse_header("Bearer x").unwrap_err().contains("scheme"));
            for (from, to, word) in [
                ("tenant=abab", "tenant=zzab", "tenant"),
                ("ts=1700000000", "ts=x", "ts"),
                ("nonce=cdcd", "nonce=cd", "nonce"),
                ("node=0a0a", "node=0a", "node"),
                ("epoch=0b0b", "epoch=0b", "epoch"),
                (", sig=AAEC", "", "sig"),
                ("sig=AAEC", "sig=AAEC, x=1", "unknown"),
                ("sig=AAEC", "sig=AAEC, ts=1", "twice"),
            ] {
                let bad = v.replacen(from, to, 1);
                assert_ne!(bad, v, "{from}");
                let err = parse_header(&bad).unwrap_err();
                assert!(err.contains(word), "{from}: {err}");
            }
            assert!(parse_header(&format!("{v}{}", " ".repeat(2000))).is_err());
        }

        #[test]
        fn every_field_is_signed() {
            let a = audience();
            let base = signing_string(&a, "POST", "/v1/keys", 1, "n", "p");
            let mut other = a.clone();
            other.node = "0c".repeat(8);
            assert_ne!(
                base,
                signing_string(&other, "POST", "/v1/keys", 1, "n", "p")
            );
            let mut other = a.clone();
            other.epoch = "0c".repeat(16);
            assert_ne!(
                base,
                signing_string(&other, "POST", "/v1/keys", 1, "n", "p")
            );
            assert_ne!(base, signing_string(&a, "PUT", "/v1/keys", 1, "n", "p"));
            assert_ne!(base, signing_string(&a, "POST", "/v1/key", 1, "n", "p"));
            assert_ne!(base, signing_string(&a, "POST", "/v1/keys", 2, "n", "p"));
            assert_ne!(base, signing_string(&a, "POST", "/v1/keys", 1, "m", "p"));
            assert_ne!(base, signing_string(&a, "POST", "/v1/keys", 1, "n", "q"));
        }
    }
}
