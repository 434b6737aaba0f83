//! DCAP collateral JSON: TCB info, QE identity, CRLs and issuer chains.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = veritee_verify::dcap::DcapCollateral::parse(data);
    let _ = veritee_verify::dcap::tcb_info::TcbInfo::parse(data);
    let _ = veritee_verify::dcap::qe_identity::QeIdentity::parse(data);
});
