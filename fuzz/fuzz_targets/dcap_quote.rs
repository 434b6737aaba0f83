//! The DCAP quote parser (header, body, signature data, padding) and the verifier's
//! format detection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_attest::Verifier;

fuzz_target!(|data: &[u8]| {
    let _ = veritee_verify::dcap::Quote::parse(data);
    let _ = veritee_verify::dcap::DcapVerifier::tdx().recognizes(data);
    let _ = veritee_verify::dcap::DcapVerifier::sgx().recognizes(data);
});
