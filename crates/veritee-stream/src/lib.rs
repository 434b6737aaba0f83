//! The data stream format: how a client and an enclave exchange data encrypted under a
//! deployed 256-bit user data key, in chunks, in constant memory, for data of any size.
//!
//! It is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
//! Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", 2015) as age uses
//! it: each chunk is sealed with AES-256-GCM under a nonce made of the chunk's index and
//! a flag set only on the final chunk, so a reader detects a chunk that was altered,
//! moved, dropped, repeated or taken from another stream, a stream cut short at any
//! point, and data after its end. Every stream has its own payload key, derived from the
//! data key, a random stream id and the header, so chunks of one stream never
//! authenticate in another, even under the same key and key id.
//!
//! The key id says which key a stream is under, not what the stream is. A stream may
//! also carry a **context**: bytes naming what it is for (an object name and version, a
//! task slot). The context is authenticated with the rest of the header and selects the
//! payload key, so a stream made for one purpose cannot be passed off as one made for
//! another under the same key, provided the reader compares [`Header::context`] with the
//! context it expects (the format cannot know it). A stream with a context has a
//! version-2 header; one without keeps the version-1 header, byte for byte.
//!
//! # Layout
//!
//! All integers are big-endian. Sizes are the constants of this crate.
//!
//! Version 1 (no context):
//!
//! ```text
//!  offset   size  field
//!  ------  -----  ------------------------------------------------------------------
//!       0      4  magic "VTDX"                                          MAGIC
//!       4      1  version, 0x01                                         Version::V1
//!       5      4  chunk size C (u32): a power of two, 4 KiB ..= 16 MiB  MIN/MAX_CHUNK_SIZE
//!       9      1  key id length L, 1 ..= 128                            MAX_KEY_ID_LEN
//!      10      L  key id, UTF-8: the name of the deployed data key
//!    10+L     32  stream id: random, fresh for every stream             STREAM_ID_LEN
//!    42+L     32  header tag: HMAC-SHA-256(header key, bytes 0 .. 42+L) HEADER_TAG_LEN
//!    74+L         chunk 0, chunk 1, ..., chunk n (n >= 0) to the end of the input
//! ```
//!
//! Version 2 (a context):
//!
//! ```text
//!  offset   size  field
//!  ------  -----  ------------------------------------------------------------------
//!       0      4  magic "VTDX"                                          MAGIC
//!       4      1  version, 0x02                                         Version::V2
//!       5      4  chunk size C (u32): a power of two, 4 KiB ..= 16 MiB  MIN/MAX_CHUNK_SIZE
//!       9      1  key id length L, 1 ..= 128                            MAX_KEY_ID_LEN
//!      10      L  key id, UTF-8: the name of the deployed data key
//!    10+L      1  context length M, 1 ..= 255                           MAX_CONTEXT_LEN
//!    11+L      M  context: bytes naming what the stream is for
//!  11+L+M     32  stream id: random, fresh for every stream             STREAM_ID_LEN
//!  43+L+M     32  header tag: HMAC-SHA-256(header key, bytes 0 .. 43+L+M)
//!  75+L+M         chunk 0, chunk 1, ..., chunk n (n >= 0) to the end of the input
//! ```
//!
//! Chunks are the same in both versions:
//!
//! ```text
//!  chunk i      = AES-256-GCM(payload key, nonce i, no associated data, plaintext i)
//!               = ciphertext i (|plaintext i| bytes) || tag i (16 bytes)     TAG_LEN
//!  |plaintext i| = C for i < n;  0 ..= C for the final chunk n
//!
//!  nonce i      = +-------------------------------------+------+
//!                 | i, 11-byte big-endian counter       | flag |   NONCE_LEN = 12
//!                 +-------------------------------------+------+
//!                   COUNTER_LEN = 11                       0x01 on chunk n, else 0x00
//! ```
//!
//! Keys, with K the 32-byte data key, S the stream id and H the header bytes before the
//! tag (bytes 0 .. 42+L in version 1, 0 .. 43+L+M in version 2):
//!
//! ```text
//!  header key  = HKDF-SHA256(ikm = K, salt = S, info = "veritee stream v1 header")
//!  payload key = HKDF-SHA256(ikm = K, salt = S, info = "veritee stream v1" || SHA-256(H))
//! ```
//!
//! The labels are the same in both versions: H starts with the version byte, so the
//! tag and the payload key of a version-2 header can never be those of a version-1
//! one.
//!
//! A reader checks the header tag before it reads any chunk, so a wrong key or an
//! altered header (version, chunk size, key id, context, stream id) is found at once.
//! The chunk counter never wraps: a chunk at index `u64::MAX` can only be the final one.
//!
//! # Use
//!
//! ```
//! use std::io::{Read, Write};
//! use veritee_crypto::Confidential;
//! use veritee_stream::{DEFAULT_CHUNK_SIZE, DecryptReader, EncryptWriter, StreamKey, read_header};
//!
//! # fn main() -> std::io::Result<()> {
//! let key = StreamKey::new(&Confidential::new([7u8; 32]));
//!
//! let mut writer = EncryptWriter::new(&key, "orders-2024", DEFAULT_CHUNK_SIZE, Vec::new())?;
//! writer.write_all(b"the data")?;
//! let stream = writer.finish()?; // seals the final chunk: never skip it
//!
//! // The receiver learns which key from the header, then decrypts.
//! assert_eq!(read_header(&mut &stream[..])?.key_id(), "orders-2024");
//! let mut reader = DecryptReader::with_key_lookup(&stream[..], |id| {
//!     (id == "orders-2024").then(|| key.clone())
//! })?;
//! let mut plaintext = Vec::new();
//! reader.read_to_end(&mut plaintext)?;
//! assert_eq!(plaintext, b"the data");
//! # Ok(())
//! # }
//! ```
//!
//! With a context, the receiver checks it once the reader has authenticated the header:
//!
//! ```
//! use std::io::{Read, Write};
//! use veritee_crypto::Confidential;
//! use veritee_stream::{DEFAULT_CHUNK_SIZE, DecryptReader, EncryptWriter, StreamKey};
//!
//! # fn main() -> std::io::Result<()> {
//! let key = StreamKey::new(&Confidential::new([7u8; 32]));
//! let context = b"object orders/2024 version 3";
//!
//! let mut writer =
//!     EncryptWriter::with_context(&key, "orders", context, DEFAULT_CHUNK_SIZE, Vec::new())?;
//! writer.write_all(b"the data")?;
//! let stream = writer.finish()?;
//!
//! let mut reader = DecryptReader::new(&key, &stream[..])?;
//! // Authenticated now: a genuine stream made for anything else is refused here.
//! if reader.header().context() != context {
//!     return Err(std::io::Error::other("a stream for something else"));
//! }
//! let mut plaintext = Vec::new();
//! reader.read_to_end(&mut plaintext)?;
//! assert_eq!(plaintext, b"the data");
//! # Ok(())
//! # }
//! ```
//!
//! [`ChunkSealer`] and [`ChunkOpener`] work one chunk at a time, by index, for a
//! transport that moves (and may verify and re-encrypt) one chunk per request;
//! [`ChunkSealer::seal_laid_out`] seals a run of chunks where they lie, side by side on
//! every core ([`sealing_threads`]), as [`EncryptWriter`] does for large writes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod chunk;
mod error;
mod header;
mod key;
mod parallel;
mod read;
mod write;

pub use chunk::{
    COUNTER_LEN, ChunkOpener, ChunkSealer, LAST_FLAG, NONCE_LEN, NOT_LAST_FLAG, TAG_LEN,
};
pub use error::StreamError;
pub use header::{
    CHUNK_SIZE_LEN, CONTEXT_LEN_LEN, DEFAULT_CHUNK_SIZE, HEADER_FIXED_LEN, HEADER_TAG_LEN, Header,
    KEY_ID_LEN_LEN, MAGIC, MAGIC_LEN, MAX_CHUNK_SIZE, MAX_CONTEXT_LEN, MAX_HEADER_LEN,
    MAX_KEY_ID_LEN, MAX_V1_HEADER_LEN, MIN_CHUNK_SIZE, MIN_HEADER_LEN, STREAM_ID_LEN, VERSION_LEN,
    Version, check_chunk_size, read_header,
};
pub use key::StreamKey;
pub use parallel::sealing_threads;
pub use read::DecryptReader;
pub use write::EncryptWriter;

#[cfg(test)]
mod golden {
    //! Frozen streams, one per version: the format must not drift. `VERITEE_BLESS=1
    //! cargo test` rewrites the files, which is only right when a version is added.

    use std::io::{Read, Write};

    use veritee_crypto::Confidential;

    use super::*;

    const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/v1-golden.bin");

    fn plaintext() -> Vec<u8> {
        (0..MIN_CHUNK_SIZE as usize + 10)
            .map(|i| (i % 251) as u8)
            .collect()
    }

    fn key() -> StreamKey {
        StreamKey::new(&Confidential::new(core::array::from_fn(|i| i as u8)))
    }

    /// The golden plaintext sealed under a fixed header.
    fn write_fixed(header: header::Header, payload: veritee_crypto::aead::AeadKey) -> Vec<u8> {
        let mut out = header.to_bytes();
        let sealer = ChunkSealer::from_parts(header, payload);
        let mut writer = EncryptWriter::from_sealer(sealer, &mut out);
        writer.write_all(&plaintext()).unwrap();
        writer.finish().unwrap();
        out
    }

    fn encrypt_fixed() -> Vec<u8> {
        let stream_id = core::array::from_fn(|i| 0xA0 ^ i as u8);
        let (header, payload) =
            header::Header::seal_with_stream_id(&key(), "golden-key", MIN_CHUNK_SIZE, stream_id)
                .unwrap();
        write_fixed(header, payload)
    }

    #[test]
    fn v1_golden_stream() {
        let fresh = encrypt_fixed();
        if std::env::var_os("VERITEE_BLESS").is_some() {
            std::fs::write(PATH, &fresh).unwrap();
        }
        let golden = std::fs::read(PATH).unwrap();
        assert_eq!(fresh, golden, "the v1 encoding changed");
        let mut reader = DecryptReader::new(&key(), &golden[..]).unwrap();
        assert_eq!(reader.header().key_id(), "golden-key");
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, plaintext());
    }

    /// Sealed on any number of threads, in writes of any size, a stream is the same
    /// bytes as its chunks sealed one by one.
    #[test]
    fn every_thread_count_writes_the_same_bytes() {
        let chunk = MIN_CHUNK_SIZE as usize;
        let fixed = || {
            header::Header::seal_with_stream_id(&key(), "any-threads", MIN_CHUNK_SIZE, [0x5A; 32])
                .unwrap()
        };
        for len in [0, 10, chunk, 8 * chunk, 19 * chunk / 2] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let (header, payload) = fixed();
            let mut expected = header.to_bytes();
            let mut sealer = ChunkSealer::from_parts(header, payload);
            let chunks: Vec<&[u8]> = match len {
                0 => vec![&[]],
                _ => data.chunks(chunk).collect(),
            };
            for (i, c) in chunks.iter().enumerate() {
                expected.extend(sealer.seal(c, i + 1 == chunks.len()).unwrap());
            }
            for threads in [1, 2, 3, 16] {
                for piece in [len.max(1), chunk, 1000, 3 * chunk + 7] {
                    let (header, payload) = fixed();
                    let mut out = header.to_bytes();
                    let sealer = ChunkSealer::from_parts(header, payload);
                    let mut writer =
                        EncryptWriter::from_sealer(sealer, &mut out).on_threads(threads);
                    for part in data.chunks(piece) {
                        writer.write_all(part).unwrap();
                    }
                    writer.finish().unwrap();
                    assert!(
                        out == expected,
                        "{len} bytes on {threads} threads in {piece}-byte writes"
                    );
                }
            }
        }
    }

    const V2_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/v2-golden.bin");
    const V2_CONTEXT: &[u8] = b"golden object v7";

    fn encrypt_fixed_v2() -> Vec<u8> {
        let stream_id = core::array::from_fn(|i| 0xB0 ^ i as u8);
        let (header, payload) = header::Header::seal_with_context_and_stream_id(
            &key(),
            "golden-key",
            V2_CONTEXT,
            MIN_CHUNK_SIZE,
            stream_id,
        )
        .unwrap();
        write_fixed(header, payload)
    }

    #[test]
    fn v2_golden_stream() {
        let fresh = encrypt_fixed_v2();
        if std::env::var_os("VERITEE_BLESS").is_some() {
            std::fs::write(V2_PATH, &fresh).unwrap();
        }
        let golden = std::fs::read(V2_PATH).unwrap();
        assert_eq!(fresh, golden, "the v2 encoding changed");
        let mut reader = DecryptReader::new(&key(), &golden[..]).unwrap();
        assert_eq!(reader.header().version(), Version::V2);
        assert_eq!(reader.header().key_id(), "golden-key");
        assert_eq!(reader.header().context(), V2_CONTEXT);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, plaintext());
    }
}
