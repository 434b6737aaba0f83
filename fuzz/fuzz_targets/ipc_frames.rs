//! Frames between host and enclave: arbitrary bytes read as a framed message in both
//! directions (what the enclave reads from the untrusted host, and what the host reads
//! from the enclave process), and as a bare payload. Every outcome must be a value or
//! an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_proto::frame;
use veritee_proto::ipc::{EnclaveToHost, HostToEnclave};

fuzz_target!(|data: &[u8]| {
    let _ = frame::read::<HostToEnclave>(&mut &data[..]);
    let _ = frame::read::<EnclaveToHost>(&mut &data[..]);
    let _ = frame::decode::<HostToEnclave>(data);
    let _ = frame::decode::<EnclaveToHost>(data);
});
