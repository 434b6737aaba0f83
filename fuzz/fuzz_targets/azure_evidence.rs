//! Azure SEV-SNP vTPM evidence (JSON with an HCL report and a TPM quote).
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_attest::{Verifier, VerifyInput};

fuzz_target!(|data: &[u8]| {
    let verifier = veritee_verify::azure::AzureSnpVtpmVerifier;
    if verifier.recognizes(data) || data.first() == Some(&b'{') {
        let _ = verifier.verify(&VerifyInput {
            evidence: data,
            collateral: &[],
            trust_anchors: &[],
            at: time::OffsetDateTime::UNIX_EPOCH,
        });
    }
    let _ = veritee_verify::tpm::structures::QuoteAttest::parse(data);
});
