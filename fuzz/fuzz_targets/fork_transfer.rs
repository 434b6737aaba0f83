//! Secure fork transfers (flow 5): what a child reads from the host. The first byte
//! picks the part:
//! 0. a manifest, read as it is (every field check, every length);
//! 1. an offer, opened under a fixed secret (almost always refused by the tag);
//! 2. arbitrary manifest bytes sealed as a parent would (so the checks behind the tag
//!    are reached), then the rest of the input pushed as page frames, cut at a point
//!    the input picks, into a memory of the manifest's length;
//! 3. module bytes prepared as an application (re-encoding, the refused instructions);
//! 4. an application request from a session, read, written and read back the same;
//! 5. an application answer, likewise.
//!
//! None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritee_channel::apps;
use veritee_crypto::{Confidential, SecretBytes};
use veritee_fork::{ForkSecret, Restorer, fuzzing};

/// Memories the fuzzer may make the child allocate (a manifest may say 4 GiB).
const MAX_FUZZ_MEMORY: usize = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let secret = ForkSecret::new(Confidential::new([0x42; 32]));
    match selector % 6 {
        0 => {
            let _ = fuzzing::decode_manifest(rest);
        }
        1 => {
            let _ = Restorer::open(&secret, rest);
        }
        2 => {
            if rest.len() < 4 {
                return;
            }
            let (lengths, rest) = rest.split_at(4);
            let manifest_len = usize::from(u16::from_be_bytes([lengths[0], lengths[1]]));
            let cut = usize::from(u16::from_be_bytes([lengths[2], lengths[3]]));
            let (manifest, frames) = rest.split_at(manifest_len.min(rest.len()));
            // Digest over everything but a trailing key section the input may hold.
            let covered = manifest.len().saturating_sub(usize::from(lengths[3]));
            let Ok(offer) = fuzzing::seal_offer(&secret, manifest, covered) else {
                return;
            };
            let Ok(mut restorer) = Restorer::open(&secret, offer.as_bytes()) else {
                return;
            };
            let len = restorer.state().memory_len;
            if len > MAX_FUZZ_MEMORY {
                return;
            }
            let mut memory = vec![0u8; len];
            let (a, b) = frames.split_at(cut.min(frames.len()));
            if restorer.push(a, &mut memory).is_ok() && restorer.push(b, &mut memory).is_ok() {
                let _ = restorer.finish(&mut memory);
            }
        }
        3 => {
            let _ = veritee_wasm::rewrite::prepare("fuzz", rest);
        }
        4 => {
            if let Ok(request) = apps::decode_request(&SecretBytes::copy_from(rest)) {
                let again = apps::encode_request(&request).expect("a read request encodes");
                assert!(apps::decode_request(&again).is_ok());
            }
        }
        _ => {
            if let Ok(answer) = apps::decode_answer(&SecretBytes::copy_from(rest)) {
                let again = apps::encode_answer(&answer).expect("a read answer encodes");
                assert!(apps::decode_answer(&again).is_ok());
            }
        }
    }
});
