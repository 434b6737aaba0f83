//! What a node and its enclave parse from tenants and couriers: the Authorization
//! header of a signed request, a wrapped key (header, and opening it with a fixed
//! wrapping key), and a data object's stream context. None may panic, whatever the
//! bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veritee_channel::data::parse_object_context;
use veritee_channel::deploy::{parse_header, unwrap_key};
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_proto::api::auth;

fn wrapping() -> &'static HpkeKeyPair {
    static KEY: OnceLock<HpkeKeyPair> = OnceLock::new();
    KEY.get_or_init(HpkeKeyPair::generate)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(h) = auth::parse_header(text) {
            // A parsed header re-encodes to a signing string without panicking.
            let _ = h.signing_string("POST", "/v1/keys", "p");
        }
    }
    let _ = parse_header(data);
    let _ = unwrap_key(wrapping(), data);
    let _ = parse_object_context(data);
});
