//! Why evidence was not verified.

use crate::TeeKind;
use thiserror::Error;
use veritee_x509::X509Error;

/// Why evidence did not verify. Every variant names what was wrong in words a user can
/// act on; [`VerifyError::is_unusable_input`] separates "could not even read it" from
/// "read it and it failed".
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bytes match no known evidence format.
    #[error("evidence format not recognised: {0}")]
    UnknownFormat(String),
    /// No verifier for this TEE kind is available.
    #[error("no verifier for {0} evidence is available")]
    NoVerifier(TeeKind),
    /// The evidence (or a part of it) is not well-formed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A structure version this verifier does not know.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// Which structure.
        what: String,
        /// Version found.
        version: u32,
    },
    /// Input larger than any legitimate instance.
    #[error("{what} is {size} bytes, more than the {limit} accepted")]
    TooLarge {
        /// Which input.
        what: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A caller-provided argument is unusable (bad hex, wrong length...).
    #[error("{0}")]
    InvalidInput(String),
    /// A signature over the evidence or its collateral did not verify.
    #[error("signature check failed: {0}")]
    Signature(String),
    /// A certificate chain failed validation.
    #[error("certificate check failed: {0}")]
    Certificate(#[from] X509Error),
    /// Hardware evidence that does not chain to an anchor for its own kind (a built-in
    /// vendor root, or an anchor given for that kind).
    #[error("{tee} evidence is not vouched for by an anchor of its kind: {reason}")]
    UntrustedForKind {
        /// The evidence's kind.
        tee: TeeKind,
        /// The chain failure, and which kinds the given anchors vouch for.
        reason: String,
    },
    /// Collateral (TCB information, CRLs, identities) needed for verification is missing.
    #[error("missing collateral: {0}")]
    MissingCollateral(String),
    /// Collateral is present but unusable (wrong format, wrong signer, wrong platform).
    #[error("collateral rejected: {0}")]
    Collateral(String),
    /// Collateral outside its validity period at the verification time.
    #[error("collateral expired or not yet valid: {0}")]
    CollateralOutsideValidity(String),
    /// The platform's TCB matches no level the vendor publishes.
    #[error("no matching TCB level: {0}")]
    NoMatchingTcbLevel(String),
    /// Evidence fields contradict each other or their certificate.
    #[error("inconsistent evidence: {0}")]
    Inconsistent(String),
    /// The report data is not what the caller expected (stale or swapped evidence).
    #[error("report data mismatch: expected {expected}, evidence has {actual}")]
    ReportDataMismatch {
        /// Expected, hex.
        expected: String,
        /// Found, hex.
        actual: String,
    },
    /// Evidence claims to come from after the verification time.
    #[error("evidence is dated {evidence_time}, after the verification time {at}")]
    FromTheFuture {
        /// Evidence time.
        evidence_time: String,
        /// Verification time.
        at: String,
    },
}

impl VerifyError {
    /// Whether the input could not be read at all (as opposed to read and rejected).
    pub fn is_unusable_input(&self) -> bool {
        matches!(
            self,
            Self::UnknownFormat(_)
                | Self::Malformed { .. }
                | Self::TooLarge { .. }
                | Self::InvalidInput(_)
        )
    }

    /// Shorthand for [`VerifyError::Malformed`].
    pub fn malformed(what: impl Into<String>, reason: impl core::fmt::Display) -> Self {
        Self::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
