//! Nitro attestation documents: the bounded CBOR/COSE decoder, the payload checks, and
//! documents carried in X.509 certificates, through the whole verifier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_verify::{Verifier, VerifyInput, nitro};

fuzz_target!(|data: &[u8]| {
    let _ = nitro::unwrap(data);
    if nitro::NitroVerifier.recognizes(data) {
        let _ = nitro::NitroVerifier.verify(&VerifyInput {
            evidence: data,
            collateral: &[],
            trust_anchors: &[],
            at: time::macros::datetime!(2023-01-18 13:07:19 UTC),
        });
    }
});
