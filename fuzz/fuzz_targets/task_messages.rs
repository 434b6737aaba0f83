//! Trusted-task messages from the other side: a task initiation (what an enclave parses
//! from a client), a key delivery (sealed to the enclave's SKEK) and a result envelope
//! (what a client opens). None may panic. Two more modes wrap the fuzzed bytes in an
//! authentic outer layer (HPKE to the SKEK; the result MAC), so the parsers behind the
//! authentication are fuzzed as well.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veritee_crypto::Confidential;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_task::fuzzing::{envelope_around, seal_delivery_plaintext};
use veritee_task::keys::open_delivery;
use veritee_task::messages::TaskInitiation;
use veritee_task::results::open_envelope;

fn skek() -> &'static HpkeKeyPair {
    static SKEK: OnceLock<HpkeKeyPair> = OnceLock::new();
    SKEK.get_or_init(HpkeKeyPair::generate)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => {
            let _ = TaskInitiation::parse(rest);
        }
        1 => {
            let _ = open_delivery(skek(), &[7u8; 32], &[9u8; 32], rest);
        }
        2 => {
            if let Ok(delivery) = seal_delivery_plaintext(&skek().public_key(), &[7u8; 32], rest) {
                let _ = open_delivery(skek(), &[7u8; 32], &[9u8; 32], &delivery);
            }
        }
        3 => {
            let body = String::from_utf8_lossy(rest);
            let envelope = envelope_around(&[1u8; 32], &body);
            let _ = open_envelope(
                &envelope,
                &Confidential::new([1u8; 32]),
                &[3u8; 16],
                time::Duration::minutes(10),
                time::OffsetDateTime::now_utc(),
                |_| Some(Confidential::new([2u8; 32])),
            );
        }
        _ => {
            let mac = Confidential::new([1u8; 32]);
            let _ = open_envelope(
                rest,
                &mac,
                &[3u8; 16],
                time::Duration::minutes(10),
                time::OffsetDateTime::now_utc(),
                |_| Some(Confidential::new([2u8; 32])),
            );
        }
    }
});
