//! Task initiation and the attestation signal.

use crate::{TASK_ID_LEN, TaskError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use veritee_attest::ReportData;
use veritee_crypto::hpke::HpkePublicKey;

/// Report-data label of the attestation signal.
pub const SIGNAL_LABEL: &[u8] = b"veritee task signal v2";
/// The only task initiation version.
pub const INITIATION_VERSION: u32 = 2;
/// Largest task initiation.
pub const MAX_INITIATION_LEN: usize = 256 * 1024;
/// Largest input a task may declare (a node takes files of at most 4 GiB).
pub const MAX_INPUT_LEN: u64 = 4 << 30;
/// Most stored keys one compartment may name.
pub const MAX_COMPARTMENT_KEYS: usize = 8;

/// One compartment of the compartmentalization context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompartmentContext {
    /// Compartment name.
    pub name: String,
    /// Entry point.
    pub entry: String,
    /// Input names, in the order the guest addresses them.
    pub inputs: Vec<String>,
    /// Each input's plaintext length, in the same order: the enclave may start the task
    /// while inputs are still being uploaded, and knows from this where each must end.
    pub input_lengths: Vec<u64>,
    /// Stored keys the compartment uses by index (its position here), never seeing
    /// their material: `PARTITION/KEY_ID` (the initiating tenant's key, `deployed/NAME`
    /// for a key deployed by key management) or `OWNER_TENANT_ID/PARTITION/KEY_ID`
    /// (another tenant's). The enclave grants each only if the key's metadata name
    /// the initiating tenant among its task signers. At most [`MAX_COMPARTMENT_KEYS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// A stored key a compartment names, as [`CompartmentContext::keys`] spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKey {
    /// The tenant whose key it is; `None`: the initiating tenant's.
    pub owner: Option<String>,
    /// The partition (`deployed` for a key deployed by key management).
    pub partition: String,
    /// The key id in it.
    pub key_id: String,
}

impl NamedKey {
    /// Reads `PARTITION/KEY_ID` or `OWNER_TENANT_ID/PARTITION/KEY_ID`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let (owner, partition, key_id) = match parts.as_slice() {
            [partition, key_id] => (None, *partition, *key_id),
            [owner, partition, key_id] => (Some(*owner), *partition, *key_id),
            _ => {
                return Err(format!(
                    "key {text:?} is neither PARTITION/KEY_ID nor OWNER_TENANT_ID/PARTITION/KEY_ID"
                ));
            }
        };
        if let Some(owner) = owner
            && !veritee_proto::names::is_tenant_id(owner)
        {
            return Err(format!(
                "key {text:?}: owner {owner:?} is not a tenant id (32 lowercase hex digits)"
            ));
        }
        for (what, name) in [("partition", partition), ("key id", key_id)] {
            veritee_channel::ops::check_name(name)
                .map_err(|e| format!("key {text:?}: {what}: {e}"))?;
        }
        Ok(Self {
            owner: owner.map(String::from),
            partition: partition.into(),
            key_id: key_id.into(),
        })
    }

    /// The key's owner: its own, or `initiator` when it names none.
    pub fn owner_or<'a>(&'a self, initiator: &'a str) -> &'a str {
        self.owner.as_deref().unwrap_or(initiator)
    }
}

impl core::fmt::Display for NamedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(owner) = &self.owner {
            write!(f, "{owner}/")?;
        }
        write!(f, "{}/{}", self.partition, self.key_id)
    }
}

impl CompartmentContext {
    /// The keys it names, read and checked: at most [`MAX_COMPARTMENT_KEYS`], each
    /// well formed and named once.
    pub fn named_keys(&self) -> Result<Vec<NamedKey>, TaskError> {
        let bad = |why: String| {
            TaskError::malformed(
                "task initiation",
                format!("compartment {}: {why}", self.name),
            )
        };
        NamedKey::parse_list(&self.keys).map_err(bad)
    }
}

impl NamedKey {
    /// Reads a workload's list of keys: at most [`MAX_COMPARTMENT_KEYS`], each well
    /// formed and named once.
    pub fn parse_list(keys: &[String]) -> Result<Vec<NamedKey>, String> {
        if keys.len() > MAX_COMPARTMENT_KEYS {
            return Err(format!(
                "names {} keys, at most {MAX_COMPARTMENT_KEYS}",
                keys.len()
            ));
        }
        let mut named: Vec<NamedKey> = Vec::with_capacity(keys.len());
        for text in keys {
            let key = NamedKey::parse(text)?;
            if named.contains(&key) {
                return Err(format!("key {text} is named twice"));
            }
            named.push(key);
        }
        Ok(named)
    }
}

/// The security context of one compartment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessContext {
    /// Compartments whose inputs it may read.
    pub may_read: Vec<String>,
    /// Whether its output leaves the enclave.
    pub releases: bool,
}

/// Resource limits the client asks for (the node may impose lower ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsContext {
    /// Fuel per compartment.
    pub fuel: Option<u64>,
    /// Linear memory bytes per compartment.
    pub memory_bytes: Option<u64>,
    /// Output bytes per compartment.
    pub output_bytes: Option<usize>,
    /// Wall-clock limit, milliseconds.
    pub timeout_ms: Option<u64>,
}

/// TTIS: what the client asks of each candidate provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInitiation {
    /// Format version, [`INITIATION_VERSION`].
    pub version: u32,
    /// Task id, 32 hex digits.
    pub task_id: String,
    /// The client's fresh nonce, 64 hex digits.
    pub nonce: String,
    /// The client's key-exchange key (CKEK) for this task, X25519, 64 hex digits.
    pub client_kx: String,
    /// The appraisal policy the provider must meet (TOML), so a provider that cannot
    /// may decline early; the client appraises regardless.
    pub policy: String,
    /// Who may read what, whose output is released.
    pub security_context: BTreeMap<String, AccessContext>,
    /// How code and data split into compartments.
    pub compartments: Vec<CompartmentContext>,
    /// Requested limits.
    #[serde(default)]
    pub limits: LimitsContext,
}

impl TaskInitiation {
    /// Parses and checks an initiation received as bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, TaskError> {
        if bytes.len() > MAX_INITIATION_LEN {
            return Err(TaskError::malformed(
                "task initiation",
                format!("{} bytes is too large", bytes.len()),
            ));
        }
        let t: Self = serde_json::from_slice(bytes)
            .map_err(|e| TaskError::malformed("task initiation", e))?;
        if t.version != INITIATION_VERSION {
            return Err(TaskError::malformed(
                "task initiation",
                format!(
                    "unsupported version {} (this build speaks {INITIATION_VERSION})",
                    t.version
                ),
            ));
        }
        t.task_id_bytes()?;
        t.client_kx_bytes()?;
        let nonce = hex::decode(&t.nonce)
            .map_err(|_| TaskError::malformed("task initiation", "nonce is not hex"))?;
        if nonce.len() != 32 {
            return Err(TaskError::malformed(
                "task initiation",
                "nonce must be 32 bytes",
            ));
        }
        if t.compartments.is_empty() || t.compartments.len() > 64 {
            return Err(TaskError::malformed(
                "task initiation",
                "1 to 64 compartments",
            ));
        }
        if let Some(c) = t
            .compartments
            .iter()
            .find(|c| c.input_lengths.len() != c.inputs.len())
        {
            return Err(TaskError::malformed(
                "task initiation",
                format!(
                    "compartment {} names {} inputs but gives {} lengths",
                    c.name,
                    c.inputs.len(),
                    c.input_lengths.len()
                ),
            ));
        }
        if let Some(c) = t
            .compartments
            .iter()
            .find(|c| c.input_lengths.iter().any(|&len| len > MAX_INPUT_LEN))
        {
            return Err(TaskError::malformed(
                "task initiation",
                format!(
                    "compartment {} declares an input over {MAX_INPUT_LEN} bytes",
                    c.name
                ),
            ));
        }
        for c in &t.compartments {
            c.named_keys()?;
        }
        Ok(t)
    }

    /// The client's key-exchange public key.
    pub fn client_kx_bytes(&self) -> Result<[u8; 32], TaskError> {
        let mut kx = [0u8; 32];
        hex::decode_to_slice(&self.client_kx, &mut kx).map_err(|_| {
            TaskError::malformed("task initiation", "client_kx must be 64 hex digits")
        })?;
        Ok(kx)
    }

    /// The task id's bytes.
    pub fn task_id_bytes(&self) -> Result<[u8; TASK_ID_LEN], TaskError> {
        let mut id = [0u8; TASK_ID_LEN];
        hex::decode_to_slice(&self.task_id, &mut id).map_err(|_| {
            TaskError::malformed("task initiation", "task id must be 32 hex digits")
        })?;
        Ok(id)
    }
}

/// The digest both sides compute over the exact initiation bytes.
pub fn initiation_digest(bytes: &[u8]) -> [u8; 32] {
    veritee_crypto::digest::sha256(bytes)
}

/// The attestation signal: the enclave's key-exchange key with evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationSignal {
    /// The task id.
    pub task_id: String,
    /// SKEK, X25519 public key, hex.
    pub skek: String,
    /// Evidence, base64.
    pub evidence: String,
    /// Tasks the provider is running or holding (for least-loaded selection).
    pub load: u32,
}

/// The report data binding an SKEK to the client's nonce and initiation, and the load
/// the provider reports (so a host cannot make a provider look idler than it is).
pub fn signal_binding(skek: &[u8], nonce: &[u8], ttis_digest: &[u8; 32], load: u32) -> ReportData {
    let mut bound = nonce.to_vec();
    bound.extend_from_slice(ttis_digest);
    bound.extend_from_slice(&load.to_be_bytes());
    ReportData::binding(SIGNAL_LABEL, skek, &bound)
}

/// The stream context of a task file: which task, compartment and slot (`module`,
/// `input-N`) it fills. The enclave refuses a file whose authenticated context names
/// another slot, so a host cannot swap, duplicate or reorder inputs.
pub fn slot_context(task_id: &str, compartment: &str, slot: &str) -> Vec<u8> {
    format!("veritee task file v1\0{task_id}\0{compartment}\0{slot}").into_bytes()
}

impl AttestationSignal {
    /// Client side: verifies and appraises the signal for `initiation` (sent as
    /// `ttis_bytes`); returns the SKEK it vouches for and the provider's claims.
    pub fn appraise(
        &self,
        initiation: &TaskInitiation,
        ttis_bytes: &[u8],
        appraiser: &veritee_channel::client::Appraiser<'_>,
    ) -> Result<(HpkePublicKey, veritee_attest::Claims), TaskError> {
        use base64::Engine;
        if self.task_id != initiation.task_id {
            return Err(TaskError::malformed(
                "attestation signal",
                "it answers another task",
            ));
        }
        let skek = hex::decode(&self.skek)
            .map_err(|_| TaskError::malformed("attestation signal", "skek is not hex"))?;
        let evidence = base64::engine::general_purpose::STANDARD
            .decode(&self.evidence)
            .map_err(|_| TaskError::malformed("attestation signal", "evidence is not base64"))?;
        let nonce = hex::decode(&initiation.nonce)
            .map_err(|_| TaskError::malformed("task initiation", "nonce is not hex"))?;
        let claims = appraiser.appraise(
            &evidence,
            &signal_binding(&skek, &nonce, &initiation_digest(ttis_bytes), self.load),
        )?;
        Ok((HpkePublicKey::from_bytes(&skek)?, claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genuine() -> TaskInitiation {
        TaskInitiation {
            version: INITIATION_VERSION,
            task_id: "00".repeat(TASK_ID_LEN),
            nonce: "11".repeat(32),
            client_kx: "22".repeat(32),
            policy: "version = 1".into(),
            security_context: [(
                "main".to_string(),
                AccessContext {
                    may_read: Vec::new(),
                    releases: true,
                },
            )]
            .into(),
            compartments: vec![CompartmentContext {
                name: "main".into(),
                entry: "run".into(),
                inputs: vec!["text".into()],
                input_lengths: vec![1000],
                keys: vec![
                    "payments/card-key".into(),
                    format!("{}/shared/signing", "ab".repeat(16)),
                ],
            }],
            limits: LimitsContext::default(),
        }
    }

    fn bytes(t: &TaskInitiation) -> Vec<u8> {
        serde_json::to_vec(t).unwrap()
    }

    fn refused(bytes: &[u8], word: &str) {
        let err = TaskInitiation::parse(bytes).expect_err(word);
        assert!(err.to_string().contains(word), "'{word}' not in: {err}");
    }

    #[test]
    fn a_genuine_initiation_parses_back() {
        let t = genuine();
        assert_eq!(TaskInitiation::parse(&bytes(&t)).unwrap(), t);
    }

    #[test]
    fn truncated_oversized_and_altered_initiations_are_refused() {
        let good = bytes(&genuine());
        for cut in [0, 1, good.len() / 2, good.len() - 1] {
            assert!(TaskInitiation::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        refused(&vec![b' '; MAX_INITIATION_LEN + 1], "too large");
        let text = String::from_utf8(good).unwrap();
        refused(
            text.replace("\"version\":2", "\"version\":1").as_bytes(),
            "unsupported version 1",
        );
        let mut t = genuine();
        t.client_kx = "22".repeat(31);
        refused(&bytes(&t), "client_kx");
        refused(
            text.replace("\"policy\"", "\"extra\":1,\"policy\"")
                .as_bytes(),
            "unknown field",
        );
        let mut t = genuine();
        t.task_id = "zz".repeat(TASK_ID_LEN);
        refused(&bytes(&t), "task id");
        let mut t = genuine();
        t.nonce = "11".repeat(31);
        refused(&bytes(&t), "nonce");
        let mut t = genuine();
        t.compartments.clear();
        refused(&bytes(&t), "1 to 64 compartments");
        let mut t = genuine();
        t.compartments[0].input_lengths.clear();
        refused(&bytes(&t), "names 1 inputs but gives 0 lengths");
        let mut t = genuine();
        t.compartments[0].input_lengths[0] = u64::MAX;
        refused(&bytes(&t), "declares an input over");
    }

    #[test]
    fn named_keys_are_well_formed_few_and_each_once() {
        let with_keys = |keys: Vec<String>| {
            let mut t = genuine();
            t.compartments[0].keys = keys;
            bytes(&t)
        };
        let parsed = TaskInitiation::parse(&bytes(&genuine())).unwrap();
        let named = parsed.compartments[0].named_keys().unwrap();
        assert_eq!(named[0].owner_or("me"), "me");
        assert_eq!(named[1].owner.as_deref(), Some("ab".repeat(16).as_str()));
        assert_eq!(
            named[1].to_string(),
            format!("{}/shared/signing", "ab".repeat(16))
        );
        for (key, word) in [
            ("card-key", "neither PARTITION/KEY_ID"),
            ("a/b/c/d", "neither PARTITION/KEY_ID"),
            ("payments/", "key id"),
            ("pay ments/k", "partition"),
            ("ABAB/payments/k", "not a tenant id"),
        ] {
            refused(&with_keys(vec![key.into()]), word);
        }
        refused(
            &with_keys(vec!["p/k".into(), "p/k".into()]),
            "key p/k is named twice",
        );
        refused(
            &with_keys(
                (0..=MAX_COMPARTMENT_KEYS)
                    .map(|i| format!("p/k{i}"))
                    .collect(),
            ),
            "names 9 keys, at most 8",
        );
        // An initiation without keys is written as before this field existed.
        let mut t = genuine();
        t.compartments[0].keys.clear();
        assert!(!String::from_utf8(bytes(&t)).unwrap().contains("\"keys\""));
    }
}
