//! Data streams: arbitrary bytes to `DecryptReader` under a fixed key, raw (header
//! parsing and authentication) or after a genuine header (chunk framing, look-ahead,
//! truncation and trailing-data diagnosis), read in fuzzer-chosen piece sizes.
#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veritee_crypto::Confidential;
use veritee_stream::{ChunkSealer, DecryptReader, StreamKey};

fn key() -> StreamKey {
    StreamKey::new(&Confidential::new([0x5A; 32]))
}

/// A genuine header under the fixed key, with the smallest chunk size.
fn header() -> &'static [u8] {
    static HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    HEADER.get_or_init(|| {
        ChunkSealer::new(&key(), "fuzz", veritee_stream::MIN_CHUNK_SIZE)
            .expect("sealer")
            .header()
            .to_bytes()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let input: Vec<u8> = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        [header(), rest].concat()
    };
    let piece = usize::from(mode >> 1) * 64 + 1;
    if let Ok(mut reader) = DecryptReader::new(&key(), &input[..]) {
        let mut buf = vec![0u8; piece];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
});
