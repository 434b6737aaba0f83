//! Certificates, CRLs and PEM text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = veritee_x509::ParsedCertificate::from_der_or_pem(data);
    let _ = veritee_x509::ParsedCrl::from_der_or_pem(data);
    let _ = veritee_x509::pem::blocks(data);
});
