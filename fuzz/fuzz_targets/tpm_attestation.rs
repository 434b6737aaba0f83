//! go-tpm-tools attest.Attestation protobufs and the TPM 2.0 structures inside them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_attest::{Verifier, VerifyInput};
use veritee_verify::tpm::structures::{QuoteAttest, TpmPublic, TpmSignature};

fuzz_target!(|data: &[u8]| {
    let _ = veritee_verify::tpm::proto::Attestation::parse(data);
    let _ = TpmPublic::parse(data);
    let _ = TpmSignature::parse(data);
    let _ = QuoteAttest::parse(data);
    let _ = veritee_verify::tpm::Tpm2Verifier.verify(&VerifyInput {
        evidence: data,
        collateral: &[],
        trust_anchors: &[],
        at: time::OffsetDateTime::UNIX_EPOCH,
    });
});
