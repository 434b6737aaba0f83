//! Appraisal policies: an owner's declarative statement of an acceptable environment,
//! and its evaluation over verified [`Claims`].
//!
//! A policy is a small TOML (or JSON) document; see [`starter_policy`] for a commented
//! example. Evaluation never stops at the first failure: the [`Appraisal`] names every
//! criterion that failed, in plain words.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod duration;
mod evaluate;
mod template;

pub use duration::PolicyDuration;
pub use evaluate::{Appraisal, Decision, Failure};
pub use template::starter_policy;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;
use veritee_attest::{Claims, HexBytes, TcbStatus, TeeKind};

/// The only policy format version.
pub const POLICY_VERSION: u32 = 1;
/// Largest policy document accepted.
pub const MAX_POLICY_LEN: usize = 1024 * 1024;

/// Why a policy document is unusable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The document does not parse; the message carries line and column.
    #[error("the policy does not parse: {0}")]
    Syntax(String),
    /// The document parses but says something impossible or self-contradictory.
    #[error("the policy is invalid: {0}")]
    Invalid(String),
}

/// Criteria for an acceptable environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppraisalPolicy {
    /// Format version, 1.
    pub version: u32,
    /// TEE kinds accepted.
    pub tee: Vec<TeeKind>,
    /// Whether simulated evidence is accepted. Default: no.
    #[serde(default)]
    pub allow_simulated: bool,
    /// Whether debug-mode workloads are accepted. Default: no.
    #[serde(default)]
    pub allow_debug: bool,
    /// TCB statuses accepted. Default: UpToDate only.
    #[serde(default = "default_tcb_status")]
    pub tcb_status: Vec<TcbStatus>,
    /// Lowest workload security version accepted. Default: 0 (any).
    #[serde(default)]
    pub min_security_version: u64,
    /// Oldest evidence accepted, measured from the evidence's own time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_evidence_age: Option<PolicyDuration>,
    /// Signers accepted (hex); empty accepts any signer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<HexBytes>,
    /// Measurements accepted, by name; each named measurement must equal one of its values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measurements: BTreeMap<String, Vec<HexBytes>>,
}

fn default_tcb_status() -> Vec<TcbStatus> {
    vec![TcbStatus::UpToDate]
}

/// A remark from [`AppraisalPolicy::check`] about a valid but permissive policy.
pub type Warning = String;

impl AppraisalPolicy {
    /// The policy used when none is given: any hardware TEE, up-to-date TCB, no debug,
    /// no simulated evidence.
    pub fn default_hardware() -> Self {
        Self {
            version: POLICY_VERSION,
            tee: TeeKind::ALL
                .into_iter()
                .filter(|k| k.is_hardware())
                .collect(),
            allow_simulated: false,
            allow_debug: false,
            tcb_status: default_tcb_status(),
            min_security_version: 0,
            max_evidence_age: None,
            signers: Vec::new(),
            measurements: BTreeMap::new(),
        }
    }

    /// Parses a TOML or JSON policy (JSON when the first non-blank character is `{`)
    /// and validates it.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_LEN {
            return Err(PolicyError::Invalid(format!(
                "{} bytes; a policy is at most {MAX_POLICY_LEN}",
                text.len()
            )));
        }
        let policy: Self = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?
        } else {
            toml::from_str(text)
                .map_err(|e| PolicyError::Syntax(e.to_string().trim_end().to_string()))?
        };
        policy.check()?;
        Ok(policy)
    }

    /// Validates the policy; returns warnings about permissive choices.
    pub fn check(&self) -> Result<Vec<Warning>, PolicyError> {
        if self.version != POLICY_VERSION {
            return Err(PolicyError::Invalid(format!(
                "version {} is unknown; this veritee reads version {POLICY_VERSION}",
                self.version
            )));
        }
        if self.tee.is_empty() {
            return Err(PolicyError::Invalid(
                "`tee` is empty, so no evidence could ever be accepted".into(),
            ));
        }
        if self.tcb_status.is_empty() {
            return Err(PolicyError::Invalid(
                "`tcb_status` is empty, so no evidence could ever be accepted".into(),
            ));
        }
        if let Some(kind) = self.tee.iter().find(|k| !k.is_hardware())
            && !self.allow_simulated
        {
            return Err(PolicyError::Invalid(format!(
                "`tee` lists \"{kind}\" but `allow_simulated` is false; set allow_simulated = true to accept evidence that proves nothing about hardware"
            )));
        }
        for (name, values) in &self.measurements {
            if values.is_empty() {
                return Err(PolicyError::Invalid(format!(
                    "measurement `{name}` has an empty allow-list, which accepts nothing; remove it or list values"
                )));
            }
            if values.iter().any(|v| v.0.is_empty()) {
                return Err(PolicyError::Invalid(format!(
                    "measurement `{name}` lists an empty value"
                )));
            }
        }
        let mut warnings = Vec::new();
        if self.measurements.is_empty() && self.signers.is_empty() {
            warnings.push(
                "no `measurements` or `signers`: any code in an acceptable TEE is accepted".into(),
            );
        }
        if self.allow_debug {
            warnings
                .push("`allow_debug = true`: the host can read a debug workload's memory".into());
        }
        if self.allow_simulated {
            warnings.push("`allow_simulated = true`: simulated evidence proves nothing about hardware; use it for development only".into());
        }
        if self.allow_simulated && self.tee.iter().all(|k| k.is_hardware()) {
            warnings.push(
                "`allow_simulated = true` has no effect unless `tee` lists \"simulated\" or \"coco-sample\"".into(),
            );
        }
        Ok(warnings)
    }

    /// Renders the policy as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Appraises `claims` at time `at`.
    pub fn evaluate(&self, claims: &Claims, at: time::OffsetDateTime) -> Appraisal {
        evaluate::evaluate(self, claims, at)
    }
}

impl core::str::FromStr for AppraisalPolicy {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
