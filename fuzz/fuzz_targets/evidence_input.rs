//! Evidence files as users hand them over: raw, hex or base64, then format detection.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = veritee_attest::encoding::decode_evidence(data) {
        let _ = veritee_verify::Verifiers::default().detect(&decoded);
    }
});
