//! The simulated vendor's signed TCB info document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = veritee_attest::simulated::tcb_info::SignedTcbInfo::parse(data);
});
