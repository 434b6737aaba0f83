//! Simulated evidence through the whole verifier: envelope, report, certificates,
//! collateral. Must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_verify::{Verifiers, VerifyRequest};

fuzz_target!(|data: &[u8]| {
    let _ = veritee_attest::simulated::report::SimReport::parse(data);
    let _ = Verifiers::default().verify(&VerifyRequest {
        evidence: data,
        tee: Some(veritee_attest::TeeKind::Simulated),
        collateral: &[],
        trust_anchors: &veritee_attest::TrustAnchors::none(),
        expected_report_data: None,
        at: time::OffsetDateTime::UNIX_EPOCH,
    });
    let _ = veritee_attest::simulated::envelope::SimEvidence::parse(data);
});
