//! The verifier interface every TEE plugs into.

use crate::{Claims, TeeKind, VerifyError};
use time::OffsetDateTime;
use veritee_x509::ParsedCertificate;

/// Everything a verification depends on, explicitly: no wall clock, no network.
#[derive(Debug, Clone, Copy)]
pub struct VerifyInput<'a> {
    /// The evidence, as raw bytes (already decoded from hex or base64).
    pub evidence: &'a [u8],
    /// Collateral documents (CRLs, TCB information, identities, certificate chains), each
    /// as the bytes of one file. A verifier uses what it recognises and names what it
    /// cannot use.
    pub collateral: &'a [Vec<u8>],
    /// The trust anchors for this verifier's TEE kind only (see [`crate::TrustAnchors`]
    /// for how a caller's anchors are bound to kinds). Verifiers of real hardware use
    /// the vendor roots they embed when this is empty; the simulated verifier has no
    /// default.
    pub trust_anchors: &'a [ParsedCertificate],
    /// The instant at which certificates, CRLs and TCB information must be valid.
    pub at: OffsetDateTime,
}

/// Verifies one kind of evidence into normalized [`Claims`].
///
/// Implementations check every signature, chain, revocation list and TCB level, but not
/// the report data: the caller compares it with what it expects (see
/// `veritee_verify::Verifiers::verify`), in one place for every TEE.
pub trait Verifier: Send + Sync {
    /// The TEE this verifier handles.
    fn tee(&self) -> TeeKind;

    /// A cheap check of whether `evidence` looks like this verifier's format.
    fn recognizes(&self, evidence: &[u8]) -> bool;

    /// Verifies `input.evidence` at `input.at`, naming in the claims the anchor the
    /// evidence chains to.
    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError>;

    /// The vendor roots built in for this kind (none for the simulated TEE): an anchor a
    /// caller gives without a kind vouches for this kind only if it is one of these or
    /// is issued by one.
    fn builtin_anchors(&self) -> Result<Vec<ParsedCertificate>, VerifyError> {
        Ok(Vec::new())
    }
}
