//! Azure SEV-SNP and TDX vTPM evidence (JSON with an HCL report, a TPM quote and, for
//! TDX, a TD quote).
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_attest::{Verifier, VerifyInput};

fuzz_target!(|data: &[u8]| {
    let verifiers: [&dyn Verifier; 2] = [
        &veritee_verify::azure::AzureSnpVtpmVerifier,
        &veritee_verify::azure::AzureTdxVtpmVerifier,
    ];
    for verifier in verifiers {
        if verifier.recognizes(data) || data.first() == Some(&b'{') {
            let _ = verifier.verify(&VerifyInput {
                evidence: data,
                collateral: &[],
                trust_anchors: &[],
                at: time::OffsetDateTime::UNIX_EPOCH,
            });
        }
    }
    let _ = veritee_verify::tpm::structures::QuoteAttest::parse(data);
});
