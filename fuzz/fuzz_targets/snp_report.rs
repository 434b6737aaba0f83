//! SEV-SNP attestation reports, and the SNP verifier on them with no collateral.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_attest::{Verifier, VerifyInput};

fuzz_target!(|data: &[u8]| {
    let _ = veritee_verify::snp::report::SnpReport::parse(data);
    let _ = veritee_verify::snp::SnpCollateral::gather(&[data.to_vec()]);
    let _ = veritee_verify::snp::SnpVerifier.verify(&VerifyInput {
        evidence: data,
        collateral: &[],
        trust_anchors: &[],
        at: time::OffsetDateTime::UNIX_EPOCH,
    });
});
