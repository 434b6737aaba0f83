//! Evaluation: every criterion checked, every failure named.

use crate::AppraisalPolicy;
use serde::Serialize;
use veritee_attest::Claims;

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Every criterion holds.
    Accept,
    /// At least one criterion failed.
    Reject,
}

/// One failed criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The policy field that failed (`tee`, `tcb_status`, `measurements.mrtd`, ...).
    pub criterion: String,
    /// Why, in words.
    pub reason: String,
}

/// The outcome of appraising claims against a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appraisal {
    /// The decision.
    pub decision: Decision,
    /// Every failed criterion (empty when accepted).
    pub failed: Vec<Failure>,
}

impl Appraisal {
    /// Whether the claims were accepted.
    pub fn accepted(&self) -> bool {
        self.decision == Decision::Accept
    }
}

fn list<T: core::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn short_hex(bytes: &[u8]) -> String {
    let h = hex::encode(bytes);
    if h.len() > 24 {
        format!("{}…{}", &h[..12], &h[h.len() - 8..])
    } else {
        h
    }
}

pub(crate) fn evaluate(
    policy: &AppraisalPolicy,
    claims: &Claims,
    at: time::OffsetDateTime,
) -> Appraisal {
    let mut failed = Vec::new();
    let mut fail = |criterion: &str, reason: String| {
        failed.push(Failure {
            criterion: criterion.to_string(),
            reason,
        })
    };

    if !policy.tee.contains(&claims.tee) {
        fail(
            "tee",
            format!(
                "the evidence comes from {}; the policy accepts {}",
                claims.tee,
                list(&policy.tee)
            ),
        );
    }
    if claims.simulated && !policy.allow_simulated {
        fail(
            "allow_simulated",
            "the evidence is simulated, which proves nothing about hardware, and the policy does not allow simulated evidence".into(),
        );
    }
    if claims.debug && !policy.allow_debug {
        fail(
            "allow_debug",
            "the workload runs in debug mode, so the host can read its memory".into(),
        );
    }
    if !policy.tcb_status.contains(&claims.tcb_status) {
        let advisories = if claims.advisory_ids.is_empty() {
            String::new()
        } else {
            format!(" (advisories: {})", claims.advisory_ids.join(", "))
        };
        fail(
            "tcb_status",
            format!(
                "the platform's TCB status is {}{advisories}; the policy accepts {}",
                claims.tcb_status,
                list(&policy.tcb_status)
            ),
        );
    }
    if policy.min_security_version > 0 {
        match claims.security_version {
            None => fail(
                "min_security_version",
                format!(
                    "the evidence reports no security version; the policy requires at least {}",
                    policy.min_security_version
                ),
            ),
            Some(v) if v < policy.min_security_version => fail(
                "min_security_version",
                format!(
                    "security version {v} is below the minimum {}",
                    policy.min_security_version
                ),
            ),
            Some(_) => {}
        }
    }
    if !policy.signers.is_empty() {
        match &claims.signer {
            None => fail(
                "signers",
                "the workload has no signer identity; the policy requires a listed signer".into(),
            ),
            Some(signer) if !policy.signers.contains(signer) => fail(
                "signers",
                format!(
                    "signer {} is not in the policy's allow-list",
                    short_hex(&signer.0)
                ),
            ),
            Some(_) => {}
        }
    }
    for (name, allowed) in &policy.measurements {
        let criterion = format!("measurements.{name}");
        match claims.measurements.get(name) {
            None => {
                let present: Vec<&str> = claims.measurements.keys().map(String::as_str).collect();
                fail(
                    &criterion,
                    format!(
                        "the evidence has no measurement named `{name}` (it has: {})",
                        present.join(", ")
                    ),
                );
            }
            Some(value) if !allowed.contains(value) => fail(
                &criterion,
                format!(
                    "{name} = {} is not in the policy's allow-list",
                    short_hex(&value.0)
                ),
            ),
            Some(_) => {}
        }
    }
    if let Some(max_age) = policy.max_evidence_age {
        match claims.evidence_time {
            None => fail(
                "max_evidence_age",
                format!(
                    "{} evidence carries no time, so its age cannot be checked; bind a fresh nonce in the report data instead",
                    claims.tee
                ),
            ),
            Some(t) => {
                let age = at - t;
                if age > max_age.as_duration() {
                    fail(
                        "max_evidence_age",
                        format!(
                            "the evidence is {}s old; the policy allows at most {max_age}",
                            age.whole_seconds()
                        ),
                    );
                }
            }
        }
    }

    Appraisal {
        decision: if failed.is_empty() {
            Decision::Accept
        } else {
            Decision::Reject
        },
        failed,
    }
}
