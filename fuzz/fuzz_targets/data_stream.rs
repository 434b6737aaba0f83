//! Data streams: arbitrary bytes to `DecryptReader` under a fixed key, raw (header
//! parsing and authentication, both versions) or after a genuine version-1 or
//! version-2 (with a context) header (chunk framing, look-ahead, truncation and
//! trailing-data diagnosis), read in fuzzer-chosen piece sizes; and the same through
//! `new_buffered` (chunks opened in the source's buffer), which must give the same
//! plaintext or the same error. A header that authenticates must carry the context it
//! was made with.
#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veritee_crypto::Confidential;
use veritee_stream::{ChunkSealer, DecryptReader, Header, StreamKey};

fn key() -> StreamKey {
    StreamKey::new(&Confidential::new([0x5A; 32]))
}

/// The context of the genuine version-2 header.
const CONTEXT: &[u8] = b"fuzz object v1";

/// A genuine version-1 header under the fixed key, with the smallest chunk size.
fn header_v1() -> &'static [u8] {
    static HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    HEADER.get_or_init(|| {
        ChunkSealer::new(&key(), "fuzz", veritee_stream::MIN_CHUNK_SIZE)
            .expect("sealer")
            .header()
            .to_bytes()
    })
}

/// As [`header_v1`], version 2, bound to [`CONTEXT`].
fn header_v2() -> &'static [u8] {
    static HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    HEADER.get_or_init(|| {
        ChunkSealer::with_context(&key(), "fuzz", CONTEXT, veritee_stream::MIN_CHUNK_SIZE)
            .expect("sealer")
            .header()
            .to_bytes()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Mode: the input's start (raw, a v1 header, a v2 header), then the piece size.
    let (input, expected_context): (Vec<u8>, Option<&[u8]>) = match mode % 3 {
        0 => (rest.to_vec(), None),
        1 => ([header_v1(), rest].concat(), Some(b"")),
        _ => ([header_v2(), rest].concat(), Some(CONTEXT)),
    };
    let piece = usize::from(mode / 3) * 64 + 1;
    // Parsing a slice and reading from it agree; what parses re-encodes as it was.
    let parsed = Header::parse(&input);
    if let Ok((header, len)) = &parsed {
        assert_eq!(header.to_bytes(), input[..*len], "parsing is not canonical");
        assert_eq!(header.context().is_empty(), input[4] == 1);
    }
    let copying = DecryptReader::new(&key(), &input[..]).map(|r| {
        if let Some(context) = expected_context {
            assert_eq!(r.header().context(), context, "a genuine header's context");
        }
        drain(r, piece)
    });
    if copying.is_ok() {
        assert!(
            parsed.is_ok(),
            "the reader took a header the parser refused"
        );
    }
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
