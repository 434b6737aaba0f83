//! What can be wrong with a stream.

use std::io;

use thiserror::Error;
use veritee_crypto::CryptoError;

/// Why a stream could not be written or read.
///
/// Chunks are numbered from 0. Messages carry no key or plaintext material; the key id
/// they may quote is a name, not a secret, and is printed escaped.
///
/// Inside [`std::io`] (the [`Read`](std::io::Read) and [`Write`](std::io::Write)
/// implementations and the constructors that do I/O) a `StreamError` travels as an
/// [`io::Error`] of kind [`io::ErrorKind::InvalidData`]; [`StreamError::from_io`] gets it
/// back out.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// The input does not start with the stream magic.
    #[error("not a veritee data stream: the first four bytes are not \"VTDX\"")]
    BadMagic,
    /// The header names a format version this code does not read.
    #[error(
        "unsupported veritee data stream version {version} (this reader knows versions 1 and 2)"
    )]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The chunk size is not a power of two in the allowed range.
    #[error(
        "chunk size {size} is not allowed: it must be a power of two from 4096 bytes to 16 MiB"
    )]
    BadChunkSize {
        /// The chunk size given or found.
        size: u32,
    },
    /// A key id is longer than the format allows.
    #[error("key id is {len} bytes long; at most 128 bytes are allowed")]
    KeyIdTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A key id is empty.
    #[error("key id is empty: a stream must name the key it is encrypted under")]
    KeyIdEmpty,
    /// A key id in a header is not UTF-8.
    #[error("key id in the stream header is not UTF-8")]
    KeyIdNotUtf8,
    /// A context is longer than the format allows.
    #[error(
        "stream context is {len} bytes long; at most 255 bytes are allowed (bind a digest of a longer name instead)"
    )]
    ContextTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A version-2 header has a context length of zero.
    #[error(
        "the version-2 stream header has an empty context: a version-2 header always has one (a stream without a context is written as version 1), so it is malformed"
    )]
    ContextEmpty,
    /// The input ends inside the header.
    #[error("the stream ends inside its header: it was truncated")]
    HeaderTruncated,
    /// The header tag does not verify.
    #[error(
        "the stream header failed authentication: it was altered, or the key given is not the key named {key_id:?}"
    )]
    HeaderTampered {
        /// The key id the header claims.
        key_id: String,
    },
    /// The key lookup knows no key by the header's key id.
    #[error("no key is known by the id {key_id:?} that the stream header names")]
    UnknownKey {
        /// The key id the header names.
        key_id: String,
    },
    /// A chunk does not authenticate at its position.
    #[error(
        "chunk {index} failed authentication: it was altered, moved from another position, taken from another stream, or the stream was cut inside it"
    )]
    ChunkTampered {
        /// The chunk's index.
        index: u64,
    },
    /// A chunk is too short to hold even its tag.
    #[error(
        "chunk {index} is {len} bytes, shorter than its 16-byte tag: the stream was cut inside it"
    )]
    ChunkTooShort {
        /// The chunk's index.
        index: u64,
        /// Its length in bytes, tag included.
        len: usize,
    },
    /// A chunk is longer than the stream's chunk size allows.
    #[error("chunk {index} is {len} bytes; this stream's chunks are at most {max} bytes")]
    ChunkTooLarge {
        /// The chunk's index.
        index: u64,
        /// Its length in bytes (plaintext when sealing, with the tag when opening).
        len: usize,
        /// The most allowed, counted the same way.
        max: usize,
    },
    /// A chunk that is not the final one is shorter than a full chunk.
    #[error(
        "chunk {index} is {len} bytes but is not the final chunk; every chunk before the final one is exactly {expected} bytes"
    )]
    ChunkNotFull {
        /// The chunk's index.
        index: u64,
        /// Its length in bytes (plaintext when sealing, with the tag when opening).
        len: usize,
        /// The full length, counted the same way.
        expected: usize,
    },
    /// The stream ended before a chunk flagged final.
    #[error("the stream ends after {after_chunks} chunks without a final chunk: it was truncated")]
    Truncated {
        /// How many whole chunks were read (and authenticated) before the end.
        after_chunks: u64,
    },
    /// Bytes follow the final chunk.
    #[error("data follows the final chunk (chunk {last_index}): the stream was extended")]
    TrailingData {
        /// The index of the final chunk.
        last_index: u64,
    },
    /// A chunk was sealed or opened after the final chunk.
    #[error("chunk {index} comes after the final chunk (chunk {last_index})")]
    ChunkAfterLast {
        /// The index of the offending chunk.
        index: u64,
        /// The index of the final chunk.
        last_index: u64,
    },
    /// The chunk counter would wrap.
    #[error(
        "chunk {index} cannot be followed by another: the chunk counter would overflow, so it must be the final chunk"
    )]
    CounterOverflow {
        /// The index of the chunk that would need a successor.
        index: u64,
    },
    /// An earlier error left the writer or reader unusable.
    #[error("the stream is unusable after an earlier error: {0}")]
    Poisoned(String),
    /// The underlying cryptography failed (not an authentication failure).
    #[error("cryptographic operation failed: {0}")]
    Crypto(#[from] CryptoError),
}

impl StreamError {
    /// The `StreamError` inside an [`io::Error`] returned by this crate, if there is one
    /// (an error of the underlying reader or writer has none).
    pub fn from_io(err: &io::Error) -> Option<&StreamError> {
        err.get_ref()?.downcast_ref::<StreamError>()
    }
}

impl From<StreamError> for io::Error {
    fn from(err: StreamError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}
