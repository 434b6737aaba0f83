//! TPM 2.0 enrollment (flow 2): the TPM structures a target sends (TPMT_PUBLIC,
//! TPMS_ATTEST of a certification or a quote, TPMT_SIGNATURE), the CBOR evidence that
//! carries them into verify_enrollment, and the software MakeCredential over an
//! arbitrary EK public area.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use veritee_attest::ParsedCertificate;
use veritee_tpm::enrollment::{TpmEnrollmentEvidence, verify_enrollment};
use veritee_verify::tpm::structures::{CertifyAttest, QuoteAttest, TpmPublic, TpmSignature};

/// The local CA of the test fixtures, so that evidence built from them gets past the
/// EK chain into the TPM structure checks.
fn anchors() -> &'static (Vec<ParsedCertificate>, Vec<ParsedCertificate>) {
    static CELL: OnceLock<(Vec<ParsedCertificate>, Vec<ParsedCertificate>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let parse = |pem: &[u8]| ParsedCertificate::from_pem_chain(pem).unwrap_or_default();
        (
            parse(include_bytes!(
                "../../crates/veritee-tpm/tests/data/ca-root.pem"
            )),
            parse(include_bytes!(
                "../../crates/veritee-tpm/tests/data/ca-intermediate.pem"
            )),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = TpmPublic::parse(data);
    let _ = CertifyAttest::parse(data);
    let _ = QuoteAttest::parse(data);
    let _ = TpmSignature::parse(data);
    let _ = veritee_tpm::policy::object_name(data);
    if let Some((&split, rest)) = data.split_first() {
        let (name, ek) = rest.split_at(usize::from(split).min(rest.len()));
        let _ = veritee_tpm::credential::make_credential(ek, name, b"fuzz");
    }
    if let Ok(evidence) = ciborium::from_reader::<TpmEnrollmentEvidence, _>(data) {
        let (anchors, intermediates) = anchors();
        let at = time::OffsetDateTime::from_unix_timestamp(1_893_456_000) // 2030-01-01
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let nonce = include_bytes!("../../crates/veritee-tpm/tests/data/nonce.bin");
        let _ = verify_enrollment(&evidence, nonce, anchors, intermediates, at);
    }
});
