//! The enclave's signed confirmation that an imported key is stored.

use serde::{Deserialize, Serialize};

/// Label of the confirmation signature (by the enclave's attested audit key).
pub const CONFIRMATION_LABEL: &[u8] = b"veritee import confirmation v1";

/// What the enclave confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// The key id.
    pub key_id: String,
    /// Its partition.
    pub partition: String,
    /// The tenant.
    pub tenant: String,
    /// The node whose enclave stores it.
    pub node: String,
    /// Its type.
    pub key_type: String,
    /// Its check value, as the metadata named it.
    pub key_check: String,
    /// What it may be used for.
    pub operations: Vec<String>,
    /// Hex of the metadata digest: exactly which signed import this confirms.
    pub metadata_digest: String,
    /// The audit log's size once the import was recorded.
    pub audit_size: u64,
    /// The enclave's time, RFC 3339.
    pub time: String,
}
