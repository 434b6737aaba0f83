//! What /dev/sev-guest's SNP_GET_DERIVED_KEY takes and answers (the request layout,
//! MSG_KEY_RSP), and the VMPL read from an SEV-SNP report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_platform::hw::{layout, sev_guest};

fuzz_target!(|data: &[u8]| {
    if let Some(request) = data.first_chunk::<{ sev_guest::DERIVED_KEY_REQUEST_LEN }>() {
        if let Ok(parsed) = sev_guest::DerivedKeyRequest::from_bytes(request) {
            assert_eq!(&parsed.to_bytes(), request, "a request survives its bytes");
        }
    }
    if let Some(response) = data.first_chunk::<{ sev_guest::KEY_RESPONSE_LEN }>() {
        let response = veritee_crypto::Confidential::new(*response);
        let _ = sev_guest::read_key_response(std::path::Path::new("/dev/sev-guest"), &response);
    }
    let _ = layout::snp_vmpl(data);
});
