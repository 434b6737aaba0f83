//! Officers and quorums: administrative actions on a customer's key service that no
//! single person may take.
//!
//! A customer registers officers by role, each with an Ed25519 key, and a quorum K per
//! role. Once a role has officers, its actions need K of them: the enclave issues a
//! quorum token naming one action on one target (single-use, expiring), each officer
//! signs the token's exact bytes, and the action is taken only with K valid, distinct
//! approvals. Some actions exist for no quorum at all: exporting a plaintext key, and
//! changing a partition's access list.

use crate::ImportError;
use serde::{Deserialize, Serialize};
use veritee_crypto::sign::{self, Ed25519SigningKey, VerificationScheme};
pub use veritee_proto::api::{Approval, QuorumProof};

/// Label of an officer's approval signature.
pub const APPROVAL_LABEL: &[u8] = b"veritee quorum approval v1\0";
/// How long a quorum token is good for.
pub const TOKEN_LIFETIME_SECS: i64 = 15 * 60;
/// Most officers in one role.
pub const MAX_OFFICERS_PER_ROLE: usize = 16;
/// Largest token.
pub const MAX_TOKEN_LEN: usize = 2048;

/// An officer's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Administers the officers themselves.
    Domain,
    /// Creates and deletes partitions.
    Partition,
    /// Disables keys (for good: a compromised or retired key).
    Security,
}

impl Role {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domain => "domain",
            Self::Partition => "partition",
            Self::Security => "security",
        }
    }
}

impl core::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "domain" => Ok(Self::Domain),
            "partition" => Ok(Self::Partition),
            "security" => Ok(Self::Security),
            other => Err(format!("role {other:?}: use domain, partition or security")),
        }
    }
}

/// An action a quorum may approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Create a partition (target: its name).
    #[serde(rename = "partition.create")]
    CreatePartition,
    /// Delete a partition and its keys (target: its name).
    #[serde(rename = "partition.delete")]
    DeletePartition,
    /// Register an officer and set its role's quorum (target: `role:public key hex:quorum`).
    #[serde(rename = "officer.register")]
    RegisterOfficer,
    /// Disable a key for good (target: `partition/key id`).
    #[serde(rename = "key.disable")]
    DisableKey,
}

impl Action {
    /// The role whose quorum approves it.
    pub fn role(self) -> Role {
        match self {
            Self::CreatePartition | Self::DeletePartition => Role::Partition,
            Self::RegisterOfficer => Role::Domain,
            Self::DisableKey => Role::Security,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatePartition => "partition.create",
            Self::DeletePartition => "partition.delete",
            Self::RegisterOfficer => "officer.register",
            Self::DisableKey => "key.disable",
        }
    }
}

impl core::str::FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "partition.create" => Ok(Self::CreatePartition),
            "partition.delete" => Ok(Self::DeletePartition),
            "officer.register" => Ok(Self::RegisterOfficer),
            "key.disable" => Ok(Self::DisableKey),
            "key.export" | "partition.access-list" => Err(format!(
                "no quorum can approve {s}: a plaintext key never leaves the enclave, and a partition's access list never changes"
            )),
            other => Err(format!(
                "action {other:?}: use partition.create, partition.delete, officer.register or key.disable"
            )),
        }
    }
}

/// What the enclave issues for one action (JSON; officers sign its exact bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumToken {
    /// Random id (hex).
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The node whose enclave issued it.
    pub node: String,
    /// The action.
    pub action: Action,
    /// What it acts on.
    pub target: String,
    /// Approvals needed.
    pub quorum: u32,
    /// Unix seconds (enclave time) after which it is refused.
    pub expires: i64,
}

fn signed_bytes(token: &[u8]) -> Vec<u8> {
    let mut out = APPROVAL_LABEL.to_vec();
    out.extend_from_slice(token);
    out
}

/// An officer approves `token` (its exact bytes).
pub fn approve(officer: &Ed25519SigningKey, token: &[u8]) -> Result<Approval, ImportError> {
    Ok(Approval {
        officer: hex::encode(officer.public_key()),
        signature: hex::encode(officer.sign(&signed_bytes(token))?),
    })
}

/// The officers among `registered` whose approvals of `token` verify, each counted
/// once; names the first approval that does not.
pub fn approving_officers(
    token: &[u8],
    approvals: &[Approval],
    registered: &[[u8; 32]],
) -> Result<Vec<[u8; 32]>, ImportError> {
    // Each officer approves once: more approvals than a role has officers is no proof.
    if approvals.len() > MAX_OFFICERS_PER_ROLE {
        return Err(ImportError::Malformed(format!(
            "{} approvals (a role has at most {MAX_OFFICERS_PER_ROLE} officers)",
            approvals.len()
        )));
    }
    let mut approving: Vec<[u8; 32]> = Vec::new();
    for a in approvals {
        let mut officer = [0u8; 32];
        hex::decode_to_slice(&a.officer, &mut officer).map_err(|_| {
            ImportError::Malformed(format!("approval by {:?}: not an Ed25519 key", a.officer))
        })?;
        if !registered.contains(&officer) {
            return Err(ImportError::Forbidden(format!(
                "approval by {}: not a registered officer of this role",
                a.officer
            )));
        }
        let signature = hex::decode(&a.signature).map_err(|_| {
            ImportError::Malformed(format!("approval by {}: signature is not hex", a.officer))
        })?;
        sign::verify(
            VerificationScheme::Ed25519,
            &officer,
            &signed_bytes(token),
            &signature,
        )
        .map_err(|_| {
            ImportError::BadSignature(format!(
                "approval by {}: its signature is not over this token",
                a.officer
            ))
        })?;
        if !approving.contains(&officer) {
            approving.push(officer);
        }
    }
    Ok(approving)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvals_count_once_per_registered_officer_over_these_bytes() {
        let officers: Vec<Ed25519SigningKey> = (0..3)
            .map(|_| Ed25519SigningKey::generate().unwrap())
            .collect();
        let registered: Vec<[u8; 32]> = officers.iter().map(|o| o.public_key()).collect();
        let token = br#"{"id":"01"}"#;
        let a0 = approve(&officers[0], token).unwrap();
        let a1 = approve(&officers[1], token).unwrap();
        let got =
            approving_officers(token, &[a0.clone(), a1.clone(), a0.clone()], &registered).unwrap();
        assert_eq!(got.len(), 2, "the same officer twice counts once");
        // Another token's approval; a stranger's; a garbled one.
        let other = approve(&officers[2], br#"{"id":"02"}"#).unwrap();
        assert!(
            approving_officers(token, &[other], &registered)
                .unwrap_err()
                .to_string()
                .contains("not over this token")
        );
        let stranger = approve(&Ed25519SigningKey::generate().unwrap(), token).unwrap();
        assert!(
            approving_officers(token, &[stranger], &registered)
                .unwrap_err()
                .to_string()
                .contains("not a registered officer")
        );
        let mut garbled = a1;
        garbled.signature = "zz".into();
        assert!(approving_officers(token, &[garbled], &registered).is_err());
        // Oversized: more approvals than any role has officers.
        let many = vec![a0; MAX_OFFICERS_PER_ROLE + 1];
        assert!(
            approving_officers(token, &many, &registered)
                .unwrap_err()
                .to_string()
                .contains("approvals")
        );
    }

    #[test]
    fn no_action_exports_a_key_or_changes_an_access_list() {
        for name in ["key.export", "partition.access-list"] {
            assert!(
                name.parse::<Action>()
                    .unwrap_err()
                    .contains("no quorum can approve")
            );
        }
        assert_eq!(
            "partition.delete".parse::<Action>().unwrap().role(),
            Role::Partition
        );
        assert_eq!(
            "officer.register".parse::<Action>().unwrap().role(),
            Role::Domain
        );
        assert_eq!(
            "key.disable".parse::<Action>().unwrap().role(),
            Role::Security
        );
    }
}
