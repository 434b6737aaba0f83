//! NVIDIA SPDM attestation reports (raw or in the JSON wrapper), through the verifier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_verify::{Verifier, VerifyInput, nvidia};

fuzz_target!(|data: &[u8]| {
    let _ = nvidia::report::SpdmReport::parse(data);
    if nvidia::NvidiaVerifier.recognizes(data) {
        let _ = nvidia::NvidiaVerifier.verify(&VerifyInput {
            evidence: data,
            collateral: &[],
            trust_anchors: &[],
            at: time::macros::datetime!(2025-01-01 0:00 UTC),
        });
    }
});
