//! Normalized claims: what verified evidence says, whatever TEE produced it.

use crate::{AnchorInfo, TcbStatus, TeeKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Bytes shown as lowercase hex in JSON and `Debug`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct HexBytes(pub Vec<u8>);

impl core::fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl core::fmt::Display for HexBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl From<&[u8]> for HexBytes {
    fn from(b: &[u8]) -> Self {
        Self(b.to_vec())
    }
}

impl From<Vec<u8>> for HexBytes {
    fn from(b: Vec<u8>) -> Self {
        Self(b)
    }
}

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.trim_start_matches("0x"))
            .map(HexBytes)
            .map_err(serde::de::Error::custom)
    }
}

/// What verified evidence establishes about an environment.
///
/// Only a verifier constructs these, after every signature, chain, revocation and TCB
/// check passed; an appraisal policy then decides whether they are acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Which TEE produced the evidence.
    pub tee: TeeKind,
    /// Whether the evidence comes from a simulated TEE. Always true for
    /// [`TeeKind::Simulated`]; no default policy accepts it.
    pub simulated: bool,
    /// Measurements by their vendor name: `measurement` (simulated), `mrenclave`, `mrtd`,
    /// `rtmr0`..`rtmr3`, `pcr0`.., `launch_measurement`...
    pub measurements: BTreeMap<String, HexBytes>,
    /// Identity of whoever signed the code (MRSIGNER, the simulated signer, ...), when the TEE has one.
    pub signer: Option<HexBytes>,
    /// The workload's own security version (ISV SVN, guest SVN), when reported.
    pub security_version: Option<u64>,
    /// The vendor's grading of the platform TCB.
    pub tcb_status: TcbStatus,
    /// Security advisories that apply at this TCB level.
    pub advisory_ids: Vec<String>,
    /// Whether the workload runs in a debug mode that lets the host read its memory.
    pub debug: bool,
    /// The data the workload bound into the evidence (nonce, key digest...).
    pub report_data: HexBytes,
    /// An identifier of the physical platform (machine id, chip id, FMSPC...).
    pub platform_id: Option<HexBytes>,
    /// When the evidence was produced, if the TEE reports a time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub evidence_time: Option<OffsetDateTime>,
    /// Further facts specific to the TEE kind (TCB components, FMSPC, VMPL...).
    pub details: BTreeMap<String, String>,
    /// The trust anchor the evidence chains to, and whether it is a built-in vendor
    /// root or one the caller gave.
    #[serde(default)]
    pub trust_anchor: Option<AnchorInfo>,
}

impl Claims {
    /// The measurement called `name`, if present.
    pub fn measurement(&self, name: &str) -> Option<&[u8]> {
        self.measurements.get(name).map(|m| m.0.as_slice())
    }
}
