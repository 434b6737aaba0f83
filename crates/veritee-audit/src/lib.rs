//! The audit log: one entry per security-relevant action, signed inside the enclave and
//! chained by hash to the one before, so that a host which drops, reorders, edits or
//! inserts entries is caught by [`verify_log`], which names the first broken entry.
//!
//! ```text
//! entry  = body length (u32, big-endian) || body (JSON) || signature (64 bytes)
//! body   = {"seq": n, "prev": hex SHA-256 of entry n-1 (zeros for n = 0), "time": RFC 3339,
//!           "action": "...", "tenant": "...", "object": "...", "outcome": "..."}
//! signature = ECDSA P-256/SHA-256 r||s over "veritee audit v1" || body
//!
//! checkpoint (a C2SP tlog-checkpoint carried as a C2SP signed note, UTF-8, LF only):
//!   <origin>\n
//!   <size: entries covered, decimal>\n
//!   <head: base64 SHA-256 of entry size-1 (32 zero bytes for size 0)>\n
//!   \n
//!   — <key name> <base64(key ID (4 bytes) || Ed25519 signature over the 3 lines above)>\n
//! ```
//! What the log alone cannot show: a host that truncates the newest entries, or swaps
//! the whole log for another validly signed one (a fork, e.g. after an enclave
//! rollback). A client that kept a signed [`checkpoint`] detects both with
//! [`checkpoint::check_against_checkpoint`]; one that kept nothing cannot.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};
use thiserror::Error;
use veritee_crypto::sign::{self, EcdsaSigningKey, VerificationScheme};

pub mod checkpoint;

pub use checkpoint::CheckpointError;

const SIGNATURE_LABEL: &[u8] = b"veritee audit v1";
const SIGNATURE_LEN: usize = 64;
/// Largest entry accepted.
pub const MAX_ENTRY_LEN: usize = 64 * 1024;

/// The signed content of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditBody {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Hex SHA-256 of the previous entry's bytes (64 zeros for the first).
    pub prev: String,
    /// When the enclave recorded it.
    #[serde(with = "time::serde::rfc3339")]
    pub time: time::OffsetDateTime,
    /// What happened: `tenant.register`, `session.open`, `secret.put`, ...
    pub action: String,
    /// Who acted (tenant id), or `node`.
    pub tenant: String,
    /// What it acted on (an object name; never a secret value).
    pub object: String,
    /// `ok`, or why it was refused.
    pub outcome: String,
}

/// Why a log does not verify.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditError {
    /// An entry is malformed.
    #[error("entry {index}: malformed: {reason}")]
    Malformed {
        /// Position in the list given.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// An entry's signature does not verify with the audit key.
    #[error("entry {seq}: signature does not verify with the audit key")]
    BadSignature {
        /// Its sequence number.
        seq: u64,
    },
    /// An entry's sequence number is not the next one.
    #[error(
        "entry at position {index}: sequence number {found}, expected {expected} (entries missing or reordered)"
    )]
    Sequence {
        /// Position.
        index: usize,
        /// Found.
        found: u64,
        /// Expected.
        expected: u64,
    },
    /// An entry does not chain to the one before.
    #[error("entry {seq}: its prev hash does not match entry {} (entry altered, removed or inserted)", seq.saturating_sub(1))]
    BrokenChain {
        /// Its sequence number.
        seq: u64,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The log is shorter than a checkpoint the enclave signed: its newest entries were
    /// cut off.
    #[error(
        "the log has {log_size} entries but a signed checkpoint covers {checkpoint_size}: entries {log_size}..{checkpoint_size} were removed (log truncated)"
    )]
    Truncated {
        /// Entries in the log given.
        log_size: u64,
        /// Entries the checkpoint covers.
        checkpoint_size: u64,
    },
    /// The log's first `size` entries are not the ones a signed checkpoint covers.
    #[error(
        "the log's first {size} entries do not hash to the head of the signed checkpoint of size {size}: the log was rewritten or replaced (forked) after that checkpoint"
    )]
    Rewritten {
        /// The checkpoint's size.
        size: u64,
    },
    /// A checkpoint note was rejected (malformed, or not signed by the trusted key).
    #[error("checkpoint rejected: {0}")]
    Checkpoint(CheckpointError),
}

// By hand rather than `#[from]`: the message already includes the inner one, and
// `#[from]` would also report it as the source, printing it twice in error chains.
impl From<CheckpointError> for AuditError {
    fn from(e: CheckpointError) -> Self {
        Self::Checkpoint(e)
    }
}

impl AuditError {
    /// The sequence number or position of the first broken entry.
    pub fn position(&self) -> u64 {
        match self {
            Self::Malformed { index, .. } | Self::Sequence { index, .. } => *index as u64,
            Self::BadSignature { seq } | Self::BrokenChain { seq } => *seq,
            Self::Signing(_) | Self::Checkpoint(_) => 0,
            // The first entry missing.
            Self::Truncated { log_size, .. } => *log_size,
            // The entry whose hash is the checkpoint head: it or one before it changed.
            Self::Rewritten { size } => size.saturating_sub(1),
        }
    }
}

/// The hash that the next entry's `prev` must name.
pub fn entry_hash(entry: &[u8]) -> String {
    hex::encode(veritee_crypto::digest::sha256(entry))
}

/// `prev` of the first entry.
pub fn genesis_prev() -> String {
    "0".repeat(64)
}

/// Signs a body into an entry.
pub fn sign_entry(key: &EcdsaSigningKey, body: &AuditBody) -> Result<Vec<u8>, AuditError> {
    let json = serde_json::to_vec(body).map_err(|e| AuditError::Signing(e.to_string()))?;
    let mut signed = SIGNATURE_LABEL.to_vec();
    signed.extend_from_slice(&json);
    let sig = key
        .sign(&signed)
        .map_err(|e| AuditError::Signing(e.to_string()))?;
    let mut out = (json.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&sig);
    Ok(out)
}

/// Parses an entry and checks its signature with `audit_key` (SPKI DER).
pub fn open_entry(index: usize, entry: &[u8], audit_key: &[u8]) -> Result<AuditBody, AuditError> {
    let (body, json, sig) = parse_entry(index, entry)?;
    let mut signed = SIGNATURE_LABEL.to_vec();
    signed.extend_from_slice(json);
    sign::verify(
        VerificationScheme::EcdsaP256Sha256Fixed,
        audit_key,
        &signed,
        sig,
    )
    .map_err(|_| AuditError::BadSignature { seq: body.seq })?;
    Ok(body)
}

/// Splits an entry into its body (parsed, NOT authenticated), the body's JSON and the
/// signature.
fn parse_entry(index: usize, entry: &[u8]) -> Result<(AuditBody, &[u8], &[u8]), AuditError> {
    let malformed = |reason: &str| AuditError::Malformed {
        index,
        reason: reason.to_string(),
    };
    if entry.len() > MAX_ENTRY_LEN {
        return Err(malformed("entry too large"));
    }
    if entry.len() < 4 + SIGNATURE_LEN {
        return Err(malformed("truncated"));
    }
    let len = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]) as usize;
    if entry.len() != 4 + len + SIGNATURE_LEN {
        return Err(malformed("length field does not match the entry size"));
    }
    let json = &entry[4..4 + len];
    let body: AuditBody = serde_json::from_slice(json).map_err(|e| AuditError::Malformed {
        index,
        reason: e.to_string(),
    })?;
    Ok((body, json, &entry[4 + len..]))
}

/// Verifies a whole log from its first entry: signatures, sequence, chain.
/// Returns the bodies; the error names the first broken entry.
pub fn verify_log(
    entries: &[(u64, Vec<u8>)],
    audit_key: &[u8],
) -> Result<Vec<AuditBody>, AuditError> {
    walk_chain(entries, |index, entry| open_entry(index, entry, audit_key))
}

/// Checks sequence numbers and `prev` links from the first entry, opening each entry
/// with `open`; returns the bodies or the first broken entry.
fn walk_chain(
    entries: &[(u64, Vec<u8>)],
    mut open: impl FnMut(usize, &[u8]) -> Result<AuditBody, AuditError>,
) -> Result<Vec<AuditBody>, AuditError> {
    let mut prev = genesis_prev();
    let mut bodies = Vec::with_capacity(entries.len());
    for (index, (stored_seq, entry)) in entries.iter().enumerate() {
        let body = open(index, entry)?;
        let expected = index as u64;
        if body.seq != expected || *stored_seq != expected {
            return Err(AuditError::Sequence {
                index,
                found: body.seq,
                expected,
            });
        }
        if body.prev != prev {
            return Err(AuditError::BrokenChain { seq: body.seq });
        }
        prev = entry_hash(entry);
        bodies.push(body);
    }
    Ok(bodies)
}

/// Signs an arbitrary JSON document (a receipt, say) with the audit key, in the entry
/// layout: body length || body || signature over `label || body`.
pub fn sign_document(
    key: &EcdsaSigningKey,
    label: &[u8],
    body: &[u8],
) -> Result<Vec<u8>, AuditError> {
    let mut signed = label.to_vec();
    signed.extend_from_slice(body);
    let sig = key
        .sign(&signed)
        .map_err(|e| AuditError::Signing(e.to_string()))?;
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out.extend_from_slice(&sig);
    Ok(out)
}

/// Checks a document made by [`sign_document`] and returns its body.
pub fn open_document<'a>(doc: &'a [u8], key: &[u8], label: &[u8]) -> Result<&'a [u8], AuditError> {
    let malformed = |reason: &str| AuditError::Malformed {
        index: 0,
        reason: reason.to_string(),
    };
    if doc.len() < 4 + SIGNATURE_LEN || doc.len() > MAX_ENTRY_LEN {
        return Err(malformed("signed document has the wrong size"));
    }
    let len = u32::from_be_bytes([doc[0], doc[1], doc[2], doc[3]]) as usize;
    if doc.len() != 4 + len + SIGNATURE_LEN {
        return Err(malformed("length field does not match the document size"));
    }
    let body = &doc[4..4 + len];
    let mut signed = label.to_vec();
    signed.extend_from_slice(body);
    sign::verify(
        VerificationScheme::EcdsaP256Sha256Fixed,
        key,
        &signed,
        &doc[4 + len..],
    )
    .map_err(|_| AuditError::BadSignature { seq: 0 })?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_crypto::sign::EcdsaCurve;

    fn log(n: u64) -> (EcdsaSigningKey, Vec<(u64, Vec<u8>)>) {
        let key = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let mut prev = genesis_prev();
        let mut out = Vec::new();
        for seq in 0..n {
            let entry = sign_entry(
                &key,
                &AuditBody {
                    seq,
                    prev: prev.clone(),
                    time: time::OffsetDateTime::UNIX_EPOCH,
                    action: "secret.put".into(),
                    tenant: "t".into(),
                    object: format!("o{seq}"),
                    outcome: "ok".into(),
                },
            )
            .unwrap();
            prev = entry_hash(&entry);
            out.push((seq, entry));
        }
        (key, out)
    }

    #[test]
    fn signed_documents() {
        let key = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let spki = key.public_key_spki().unwrap();
        let doc = sign_document(&key, b"label", b"{\"a\":1}").unwrap();
        assert_eq!(open_document(&doc, &spki, b"label").unwrap(), b"{\"a\":1}");
        assert!(open_document(&doc, &spki, b"other").is_err());
        let mut bad = doc.clone();
        bad[5] ^= 1;
        assert!(open_document(&bad, &spki, b"label").is_err());
        assert!(open_document(&doc[..doc.len() - 1], &spki, b"label").is_err());
    }

    #[test]
    fn good_log_verifies() {
        let (key, entries) = log(5);
        let bodies = verify_log(&entries, &key.public_key_spki().unwrap()).unwrap();
        assert_eq!(bodies.len(), 5);
        assert_eq!(bodies[4].object, "o4");
    }

    #[test]
    fn first_broken_entry_is_named() {
        let (key, entries) = log(6);
        let spki = key.public_key_spki().unwrap();
        // Edited: signature fails at 3.
        let mut edited = entries.clone();
        let pos = edited[3].1.len() / 2;
        edited[3].1[pos] ^= 1;
        assert_eq!(verify_log(&edited, &spki).unwrap_err().position(), 3);
        // Removed: sequence breaks at position 2.
        let mut removed = entries.clone();
        removed.remove(2);
        let err = verify_log(&removed, &spki).unwrap_err();
        assert!(
            matches!(err, AuditError::Sequence { index: 2, .. }),
            "{err}"
        );
        // Re-signed by another key: signature fails at 0.
        let (other, forged) = log(2);
        let _ = other;
        assert!(matches!(
            verify_log(&forged, &spki),
            Err(AuditError::BadSignature { seq: 0 })
        ));
        // Swapped: entries 1 and 2 exchanged.
        let mut swapped = entries.clone();
        swapped.swap(1, 2);
        assert_eq!(verify_log(&swapped, &spki).unwrap_err().position(), 1);
        // Truncated bytes.
        let mut cut = entries.clone();
        cut[4].1.truncate(10);
        assert!(matches!(
            verify_log(&cut, &spki),
            Err(AuditError::Malformed { index: 4, .. })
        ));
    }
}
