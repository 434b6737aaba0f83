//! Attested sessions: how a client (or another enclave) reaches an enclave through an
//! untrusted host and knows it is talking to the code its policy accepts.
//!
//! # Why HPKE sessions rather than RA-TLS
//! The host terminates the HTTP connection: it must route, authenticate tenants, meter
//! and store, so a TLS session straight into the enclave would either hide everything
//! from it or need a second TLS stack inside. An HPKE session carried inside HTTP bodies
//! keeps the host useful and blind at once. The binding is explicit and small: the
//! evidence's report data is `SHA-512(label || enclave key || client nonce)`
//! ([`veritee_attest::ReportData::binding`]), and the HPKE `info` is a transcript hash
//! that includes the exact evidence bytes, so a swapped key, a swapped evidence or a
//! stale nonce all fail. There is one cipher suite and no negotiation, and no X.509
//! extension parsing on the hot path.
//!
//! # Shape
//! - [`message`]: the one wire format of session messages (header, sequence number,
//!   AES-256-GCM body).
//! - [`client`] / [`enclave`]: the two ends of a client session; each state is a type,
//!   so a session cannot send before it is established.
//! - [`resume`]: tickets, and sessions resumed by them without a new attestation.
//! - [`stored`]: a resumption kept on disk, for the next process of the same client.
//! - [`peer`]: the mutually attested enclave-to-enclave handshake.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod apps;
pub mod client;
pub mod crypto;
pub mod data;
pub mod deploy;
pub mod enclave;
mod error;
mod keys;
pub mod message;
pub mod ops;
pub mod peer;
pub mod resume;
mod secret_cbor;
pub mod stored;

pub use error::ChannelError;

/// Label of the client-session binding and transcript.
pub const SESSION_LABEL: &[u8] = b"veritee session v1";
/// Length of a client nonce.
pub const NONCE_LEN: usize = 32;
/// Length of a session id.
pub const SESSION_ID_LEN: usize = 16;

/// The transcript hash of a client session: what the HPKE `info` and the tenant's
/// signature commit to.
pub fn session_transcript(
    session_id: &[u8],
    nonce: &[u8],
    enclave_public_key: &[u8],
    evidence: &[u8],
) -> [u8; 32] {
    let mut h = veritee_crypto::digest::Sha256::default();
    for part in [
        SESSION_LABEL,
        session_id,
        nonce,
        enclave_public_key,
        &veritee_crypto::digest::sha256(evidence),
    ] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finish()
}

/// Label of the report data binding a node's long-term public keys to a nonce.
pub const NODE_BINDING_LABEL: &[u8] = b"veritee node v2";

/// The public keys a node's attestation binds, in the order they are bound: the audit
/// key (SPKI DER, length-prefixed), then the checkpoint key (Ed25519, 32 bytes).
pub fn node_bound_keys(audit_spki: &[u8], checkpoint_key: &[u8]) -> Vec<u8> {
    let mut out = (audit_spki.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(audit_spki);
    out.extend_from_slice(checkpoint_key);
    out
}
