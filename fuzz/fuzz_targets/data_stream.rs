//! Data streams: arbitrary bytes to `DecryptReader` under a fixed key, raw (header
//! parsing and authentication) or after a genuine header (chunk framing, look-ahead,
//! truncation and trailing-data diagnosis), read in fuzzer-chosen piece sizes; and the
//! same through `new_buffered` (chunks opened in the source's buffer), which must give
//! the same plaintext or the same error.
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
    let copying = DecryptReader::new(&key(), &input[..]).map(|r| drain(r, piece));
    let buffered = DecryptReader::new_buffered(&key(), &input[..])
        .map(|r| drain(r, veritee_stream::MIN_CHUNK_SIZE as usize));
    match (copying, buffered) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the two readers disagree"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("the two readers disagree on the header: {a:?} / {b:?}"),
    }
});

/// Reads to the end in `piece`-byte reads: the plaintext, or the first error's text.
fn drain(mut reader: DecryptReader<&[u8]>, piece: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; piece];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}
