//! What the verifier tests share: one verification request through the registry, and
//! the check that a failure is the expected one and says why.
#![allow(dead_code)]

use time::OffsetDateTime;
use veritee_attest::{Claims, ParsedCertificate, TrustAnchors, VerifyError};
use veritee_verify::{Verifiers, VerifyRequest};

/// Verifies `evidence` (kind detected) with the given collateral, anchors and expected
/// report data, at `at`.
pub fn verify_request(
    evidence: &[u8],
    collateral: &[Vec<u8>],
    anchors: &[ParsedCertificate],
    report_data: Option<&[u8]>,
    at: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    // The test PKIs stand in for the vendors: they are given for the evidence's own
    // kind, as `--trust-anchor KIND=FILE` would give them.
    let verifiers = Verifiers::default();
    let anchors = match verifiers.detect(evidence) {
        Ok(kind) => TrustAnchors::for_kind(kind, anchors.to_vec()),
        Err(_) => TrustAnchors::untyped(anchors.to_vec()),
    };
    verifiers.verify(&VerifyRequest {
        evidence,
        tee: None,
        collateral,
        trust_anchors: &anchors,
        expected_report_data: report_data,
        at,
    })
}

/// Asserts that `result` failed with an error `ok` accepts and whose text names `word`.
pub fn expect_err(
    result: Result<Claims, VerifyError>,
    what: &str,
    word: &str,
    ok: impl Fn(&VerifyError) -> bool,
) {
    let err = result.expect_err(what);
    assert!(ok(&err), "{what}: unexpected error variant: {err:?}");
    assert!(
        err.to_string().contains(word),
        "{what}: '{err}' does not mention '{word}'"
    );
}
