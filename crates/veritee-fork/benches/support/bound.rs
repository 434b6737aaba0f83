//! What both fork benches measure beside a fork: the bound of one `memcpy` plus a raw
//! aws-lc-rs AES-256-GCM encryption and decryption of the same bytes, and the medians
//! they print.

use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// memcpy + AES-256-GCM seal + open of `bytes`, with raw aws-lc-rs.
pub fn bound(bytes: &[u8]) -> Duration {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).expect("key"));
    let mut copy = vec![0u8; bytes.len()];
    let start = Instant::now();
    copy.copy_from_slice(bytes);
    let nonce = || Nonce::assume_unique_for_key([1; 12]);
    let tag = key
        .seal_in_place_separate_tag(nonce(), Aad::empty(), &mut copy)
        .expect("seal");
    copy.extend_from_slice(tag.as_ref());
    let opened = key
        .open_in_place(nonce(), Aad::empty(), &mut copy)
        .expect("open")
        .len();
    let elapsed = start.elapsed();
    assert_eq!(opened, bytes.len());
    elapsed
}

/// The median of `xs`.
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Milliseconds, two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}
