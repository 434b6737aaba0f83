//! What /dev/nsm answers to an attestation request, and the document inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_platform::hw::nitro;

fuzz_target!(|data: &[u8]| {
    if let Ok(document) = nitro::decode_attestation_response(data) {
        let _ = nitro::read_document(&document);
    }
    let _ = nitro::read_document(data);
});
