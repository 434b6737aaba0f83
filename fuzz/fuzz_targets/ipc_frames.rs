//! Frames between host and enclave: arbitrary bytes read as a framed message in both
//! directions (what the enclave reads from the untrusted host, and what the host reads
//! from the enclave process), and as a bare payload. Every outcome must be a value or
//! an error, never a panic; decoding with a trailing message handed over in place must
//! give what decoding the whole payload gives; and a trailing message found from a
//! payload's first bytes must be the one the whole payload has.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_proto::frame;
use veritee_proto::ipc::{EnclaveToHost, HostToEnclave};

fn same_outcome<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + frame::TrailingBytes + PartialEq + core::fmt::Debug,
{
    match (frame::decode::<T>(data), frame::decode_with_tail::<T>(data.to_vec())) {
        (Ok(whole), Ok(split)) => assert_eq!(whole, split),
        (Err(_), Err(_)) => {}
        (whole, split) => panic!("decode gave {whole:?}, decode_with_tail {split:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = frame::read::<HostToEnclave>(&mut &data[..]);
    let _ = frame::read::<EnclaveToHost>(&mut &data[..]);
    let _ = frame::read_with_tail::<HostToEnclave>(&mut &data[..]);
    same_outcome::<HostToEnclave>(data);
    same_outcome::<EnclaveToHost>(data);
    // A host looks for a relayed message in a frame's first bytes only: what it finds
    // there must be what the whole payload gives.
    let seen = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    if let Some(found) = veritee_proto::cbor::trailing_byte_string(&data[..seen], data.len()) {
        assert_eq!(
            Some(found),
            veritee_proto::cbor::trailing_byte_string(data, data.len())
        );
    }
    // The input as the head of a payload ending in a byte string long enough to be
    // handed over in place (inputs are far shorter than that).
    let mut long = data.to_vec();
    let tail_len = frame::MIN_TRAILING_BYTES as u32;
    long.push(0x5a);
    long.extend_from_slice(&tail_len.to_be_bytes());
    long.resize(long.len() + frame::MIN_TRAILING_BYTES, 0xa5);
    same_outcome::<HostToEnclave>(&long);
    same_outcome::<EnclaveToHost>(&long);
});
