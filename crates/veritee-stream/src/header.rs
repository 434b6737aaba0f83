//! The stream header: its layout, its parsing and its authentication.

use std::io::{self, Read};

use veritee_crypto::aead::AeadKey;
use veritee_crypto::digest::sha256;
use veritee_crypto::hkdf::{HkdfHash, derive_into};
use veritee_crypto::mac::{hmac_sha256, verify_hmac_sha256};
use veritee_crypto::{Confidential, rand};

use crate::StreamError;
use crate::key::StreamKey;

/// The four bytes every stream starts with.
pub const MAGIC: [u8; MAGIC_LEN] = *b"VTDX";
/// Length of [`MAGIC`].
pub const MAGIC_LEN: usize = 4;
/// Length of the version field.
pub const VERSION_LEN: usize = 1;
/// Length of the chunk-size field (big-endian `u32`).
pub const CHUNK_SIZE_LEN: usize = 4;
/// Length of the key-id length field.
pub const KEY_ID_LEN_LEN: usize = 1;
/// Longest key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 128;
/// Length of the context length field (version 2 only).
pub const CONTEXT_LEN_LEN: usize = 1;
/// Longest context, in bytes: all a one-byte length can say.
pub const MAX_CONTEXT_LEN: usize = 255;
/// Length of the random stream id.
pub const STREAM_ID_LEN: usize = 32;
/// Length of the header tag (HMAC-SHA-256).
pub const HEADER_TAG_LEN: usize = 32;
/// Length of the header before the key id: magic, version, chunk size, key-id length.
pub const HEADER_FIXED_LEN: usize = MAGIC_LEN + VERSION_LEN + CHUNK_SIZE_LEN + KEY_ID_LEN_LEN;
/// Shortest header (version 1, a one-byte key id).
pub const MIN_HEADER_LEN: usize = HEADER_FIXED_LEN + 1 + STREAM_ID_LEN + HEADER_TAG_LEN;
/// Longest version-1 header (a [`MAX_KEY_ID_LEN`]-byte key id, no context).
pub const MAX_V1_HEADER_LEN: usize =
    HEADER_FIXED_LEN + MAX_KEY_ID_LEN + STREAM_ID_LEN + HEADER_TAG_LEN;
/// Longest header of any version (version 2, a [`MAX_KEY_ID_LEN`]-byte key id and a
/// [`MAX_CONTEXT_LEN`]-byte context): reading this many bytes, or the whole input if it
/// is shorter, is always enough to parse a header.
pub const MAX_HEADER_LEN: usize = MAX_V1_HEADER_LEN + CONTEXT_LEN_LEN + MAX_CONTEXT_LEN;

/// Smallest chunk size: 4 KiB.
pub const MIN_CHUNK_SIZE: u32 = 4 * 1024;
/// Largest chunk size: 16 MiB.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// The chunk size to use unless there is a reason not to: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 1024 * 1024;

/// HKDF info label of the per-stream payload key; SHA-256 of the header bytes before the
/// tag follows it.
pub(crate) const PAYLOAD_KEY_INFO: &[u8] = b"veritee stream v1";
/// HKDF info of the per-stream header key.
pub(crate) const HEADER_KEY_INFO: &[u8] = b"veritee stream v1 header";

const _: () = assert!(HEADER_FIXED_LEN == 10);
const _: () = assert!(MIN_HEADER_LEN == 75);
const _: () = assert!(MAX_V1_HEADER_LEN == 202);
const _: () = assert!(MAX_HEADER_LEN == 458);
const _: () = assert!(MAX_KEY_ID_LEN <= u8::MAX as usize);
// Exactly what the one-byte length can say: the writer's length cast cannot truncate,
// and the parser needs no upper-bound check.
const _: () = assert!(MAX_CONTEXT_LEN == u8::MAX as usize);
const _: () = assert!(MIN_CHUNK_SIZE.is_power_of_two() && MAX_CHUNK_SIZE.is_power_of_two());
const _: () = assert!(MIN_CHUNK_SIZE <= DEFAULT_CHUNK_SIZE && DEFAULT_CHUNK_SIZE <= MAX_CHUNK_SIZE);
const _: () = assert!(DEFAULT_CHUNK_SIZE.is_power_of_two());
// The two HKDF infos differ in length (24 bytes against 17 + 32), so never collide.
const _: () = assert!(HEADER_KEY_INFO.len() != PAYLOAD_KEY_INFO.len() + 32);

/// A version of the stream format. Both are read; which one is written depends on
/// whether the stream has a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Version {
    /// Version 1: no context. Written for every stream with an empty context, so that
    /// such streams stay byte for byte what they were before version 2 existed.
    V1 = 1,
    /// Version 2: a context after the key id. Written for every stream with a
    /// non-empty context.
    V2 = 2,
}

impl Version {
    /// The newest version this crate writes (for a stream with a context; one without
    /// is written as [`Version::V1`]).
    pub const CURRENT: Version = Version::V2;

    /// The version a stream with `context` is written as: version 1 when it is empty
    /// (readers that know only version 1 still read it), version 2 otherwise.
    fn for_context(context: &[u8]) -> Version {
        if context.is_empty() {
            Version::V1
        } else {
            Version::V2
        }
    }

    /// Its byte in the header.
    pub fn to_byte(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for Version {
    type Error = StreamError;

    fn try_from(version: u8) -> Result<Self, StreamError> {
        match version {
            1 => Ok(Version::V1),
            2 => Ok(Version::V2),
            _ => Err(StreamError::UnsupportedVersion { version }),
        }
    }
}

/// Checks a chunk size against the format's rules.
pub fn check_chunk_size(size: u32) -> Result<(), StreamError> {
    if size.is_power_of_two() && (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(StreamError::BadChunkSize { size })
    }
}

fn check_key_id(key_id: &str) -> Result<(), StreamError> {
    match key_id.len() {
        0 => Err(StreamError::KeyIdEmpty),
        len if len > MAX_KEY_ID_LEN => Err(StreamError::KeyIdTooLong { len }),
        _ => Ok(()),
    }
}

// A context may be empty here (version 1 has none); what a version-2 header must not
// have is an empty one, which the parser refuses and `Version::for_context` never writes.
fn check_context(context: &[u8]) -> Result<(), StreamError> {
    if context.len() > MAX_CONTEXT_LEN {
        return Err(StreamError::ContextTooLong { len: context.len() });
    }
    Ok(())
}

/// A stream header, parsed but not necessarily authenticated: [`read_header`] returns
/// one so that a receiver learns the key id before it has the key; the header tag is
/// checked (and with it the key id and the [context](Header::context)) when a
/// [`ChunkOpener`](crate::ChunkOpener) or [`DecryptReader`](crate::DecryptReader) is
/// made from it. Either version parses into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    version: Version,
    chunk_size: u32,
    key_id: String,
    /// Empty exactly when `version` is [`Version::V1`].
    context: Vec<u8>,
    stream_id: [u8; STREAM_ID_LEN],
    tag: [u8; HEADER_TAG_LEN],
}

impl Header {
    /// The format version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Plaintext bytes in every chunk but the last.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The name of the data key the stream is encrypted under (as claimed: authenticated
    /// only once the header tag is checked).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// What the stream is for, as its writer bound it (an object name and version, a
    /// task slot...); empty for a version-1 stream, which has none.
    ///
    /// Like [`Header::key_id`], this is only a claim until the header tag is checked:
    /// compare it with the context you expect only on a header that authenticated, that
    /// is, the one a [`DecryptReader`](crate::DecryptReader) holds, or one from which a
    /// [`ChunkOpener`](crate::ChunkOpener) was made without error. The format binds the
    /// stream to its context but cannot know which context the reader expects: a reader
    /// that does not compare it accepts a genuine stream made for another purpose under
    /// the same key (another object, an older version, another task slot).
    pub fn context(&self) -> &[u8] {
        &self.context
    }

    /// The stream's random id.
    pub fn stream_id(&self) -> &[u8; STREAM_ID_LEN] {
        &self.stream_id
    }

    /// Length of the encoded header.
    pub fn encoded_len(&self) -> usize {
        let context = match self.version {
            Version::V1 => 0,
            Version::V2 => CONTEXT_LEN_LEN + self.context.len(),
        };
        HEADER_FIXED_LEN + self.key_id.len() + context + STREAM_ID_LEN + HEADER_TAG_LEN
    }

    /// The encoded header, tag included: what precedes the first chunk.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.authenticated_bytes();
        out.extend_from_slice(&self.tag);
        out
    }

    /// Parses a header from the start of `bytes`; returns it and its encoded length.
    pub fn parse(bytes: &[u8]) -> Result<(Header, usize), StreamError> {
        let mut reader = bytes;
        let header = read_header_inner(&mut reader).map_err(|e| match e {
            ReadError::Stream(e) => e,
            // A slice only fails by running out.
            ReadError::Io(_) => StreamError::HeaderTruncated,
        })?;
        let len = header.encoded_len();
        Ok((header, len))
    }

    /// A fresh header with a random stream id, its tag computed under `key`; returns it
    /// with the stream's payload key.
    pub(crate) fn seal(
        key: &StreamKey,
        key_id: &str,
        chunk_size: u32,
    ) -> Result<(Header, AeadKey), StreamError> {
        Self::seal_with_context(key, key_id, &[], chunk_size)
    }

    /// As [`Header::seal`], bound to `context`: a version-2 header if it is non-empty,
    /// a version-1 header (as [`Header::seal`] makes) if it is empty.
    pub(crate) fn seal_with_context(
        key: &StreamKey,
        key_id: &str,
        context: &[u8],
        chunk_size: u32,
    ) -> Result<(Header, AeadKey), StreamError> {
        Self::seal_with_context_and_stream_id(key, key_id, context, chunk_size, rand::array()?)
    }

    /// As [`Header::seal`] with a given stream id. A stream id must never repeat under
    /// one key (the payload key would repeat, and with it every nonce), so this is only
    /// for known-answer tests.
    #[cfg(test)]
    pub(crate) fn seal_with_stream_id(
        key: &StreamKey,
        key_id: &str,
        chunk_size: u32,
        stream_id: [u8; STREAM_ID_LEN],
    ) -> Result<(Header, AeadKey), StreamError> {
        Self::seal_with_context_and_stream_id(key, key_id, &[], chunk_size, stream_id)
    }

    /// As [`Header::seal_with_context`] with a given stream id: only
    /// [`Header::seal_with_context`] and known-answer tests may call it, for the reason
    /// `Header::seal_with_stream_id` gives.
    pub(crate) fn seal_with_context_and_stream_id(
        key: &StreamKey,
        key_id: &str,
        context: &[u8],
        chunk_size: u32,
        stream_id: [u8; STREAM_ID_LEN],
    ) -> Result<(Header, AeadKey), StreamError> {
        check_chunk_size(chunk_size)?;
        check_key_id(key_id)?;
        check_context(context)?;
        let mut header = Header {
            version: Version::for_context(context),
            chunk_size,
            key_id: key_id.to_owned(),
            context: context.to_vec(),
            stream_id,
            tag: [0; HEADER_TAG_LEN],
        };
        let authenticated = header.authenticated_bytes();
        let header_key = derive(key, &stream_id, &[HEADER_KEY_INFO])?;
        header.tag = hmac_sha256(header_key.expose(), &authenticated);
        let payload_key = payload_key(key, &stream_id, &authenticated)?;
        Ok((header, payload_key))
    }

    /// Checks the header tag under `key`; returns the stream's payload key.
    pub(crate) fn open(&self, key: &StreamKey) -> Result<AeadKey, StreamError> {
        let authenticated = self.authenticated_bytes();
        let header_key = derive(key, &self.stream_id, &[HEADER_KEY_INFO])?;
        if !verify_hmac_sha256(header_key.expose(), &authenticated, &self.tag) {
            return Err(StreamError::HeaderTampered {
                key_id: self.key_id.clone(),
            });
        }
        payload_key(key, &self.stream_id, &authenticated)
    }

    /// The header bytes the tag covers: everything before the tag. The payload key is
    /// derived from their hash, so the context (like every other field) selects the
    /// payload key as well as the tag.
    fn authenticated_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(self.version.to_byte());
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        // `check_key_id` or the parser bounded the length by MAX_KEY_ID_LEN.
        out.push(self.key_id.len() as u8);
        out.extend_from_slice(self.key_id.as_bytes());
        if self.version == Version::V2 {
            // `check_context` or the parser (a one-byte length) bounded it by
            // MAX_CONTEXT_LEN.
            out.push(self.context.len() as u8);
            out.extend_from_slice(&self.context);
        }
        out.extend_from_slice(&self.stream_id);
        out
    }
}

/// HKDF-SHA256(ikm = data key, salt = stream id, info) into a 32-byte secret.
fn derive(
    key: &StreamKey,
    stream_id: &[u8; STREAM_ID_LEN],
    info: &[&[u8]],
) -> Result<Confidential<[u8; 32]>, StreamError> {
    let mut out = Confidential::new([0u8; 32]);
    derive_into(
        HkdfHash::Sha256,
        stream_id,
        key.data_key().expose(),
        info,
        out.expose_mut(),
    )?;
    Ok(out)
}

/// The payload key: HKDF-SHA256(ikm = data key, salt = stream id,
/// info = "veritee stream v1" || SHA-256(header bytes before the tag)).
fn payload_key(
    key: &StreamKey,
    stream_id: &[u8; STREAM_ID_LEN],
    authenticated: &[u8],
) -> Result<AeadKey, StreamError> {
    let digest = sha256(authenticated);
    let raw = derive(key, stream_id, &[PAYLOAD_KEY_INFO, &digest])?;
    Ok(AeadKey::from_array(raw))
}

/// Reads a stream header from `reader`, consuming exactly its bytes, without
/// authenticating it: the receiver learns the key id, looks up the key, then makes a
/// [`DecryptReader`](crate::DecryptReader) or [`ChunkOpener`](crate::ChunkOpener) with
/// it, which checks the header tag.
///
/// Format errors come back as [`io::ErrorKind::InvalidData`] holding a [`StreamError`];
/// errors of `reader` itself come back as they are.
pub fn read_header<R: Read>(reader: &mut R) -> io::Result<Header> {
    read_header_inner(reader).map_err(|e| match e {
        ReadError::Stream(e) => e.into(),
        ReadError::Io(e) => e,
    })
}

enum ReadError {
    Stream(StreamError),
    Io(io::Error),
}

impl From<StreamError> for ReadError {
    fn from(e: StreamError) -> Self {
        ReadError::Stream(e)
    }
}

fn read_exact<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<(), ReadError> {
    reader.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadError::Stream(StreamError::HeaderTruncated)
        } else {
            ReadError::Io(e)
        }
    })
}

fn read_header_inner<R: Read>(reader: &mut R) -> Result<Header, ReadError> {
    let mut fixed = [0u8; HEADER_FIXED_LEN];
    read_exact(reader, &mut fixed[..MAGIC_LEN])?;
    if fixed[..MAGIC_LEN] != MAGIC {
        return Err(StreamError::BadMagic.into());
    }
    read_exact(reader, &mut fixed[MAGIC_LEN..])?;
    let version = Version::try_from(fixed[MAGIC_LEN])?;
    let size_at = MAGIC_LEN + VERSION_LEN;
    let mut size = [0u8; CHUNK_SIZE_LEN];
    size.copy_from_slice(&fixed[size_at..size_at + CHUNK_SIZE_LEN]);
    let chunk_size = u32::from_be_bytes(size);
    check_chunk_size(chunk_size)?;
    let key_id_len = usize::from(fixed[HEADER_FIXED_LEN - 1]);
    if key_id_len > MAX_KEY_ID_LEN {
        return Err(StreamError::KeyIdTooLong { len: key_id_len }.into());
    }
    if key_id_len == 0 {
        return Err(StreamError::KeyIdEmpty.into());
    }
    let mut key_id = vec![0u8; key_id_len];
    read_exact(reader, &mut key_id)?;
    let key_id = String::from_utf8(key_id).map_err(|_| StreamError::KeyIdNotUtf8)?;
    let context = match version {
        Version::V1 => Vec::new(),
        Version::V2 => {
            let mut len = [0u8; CONTEXT_LEN_LEN];
            read_exact(reader, &mut len)?;
            // One byte cannot exceed MAX_CONTEXT_LEN (see its assertion); a zero length
            // would make a second encoding of "no context", which is version 1's.
            let len = usize::from(len[0]);
            if len == 0 {
                return Err(StreamError::ContextEmpty.into());
            }
            let mut context = vec![0u8; len];
            read_exact(reader, &mut context)?;
            context
        }
    };
    let mut stream_id = [0u8; STREAM_ID_LEN];
    read_exact(reader, &mut stream_id)?;
    let mut tag = [0u8; HEADER_TAG_LEN];
    read_exact(reader, &mut tag)?;
    Ok(Header {
        version,
        chunk_size,
        key_id,
        context,
        stream_id,
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StreamKey {
        StreamKey::new(&Confidential::new([0x11; 32]))
    }

    #[test]
    fn layout_offsets() {
        let (header, _) = Header::seal_with_stream_id(&key(), "k1", 4096, [0xAB; 32]).unwrap();
        let bytes = header.to_bytes();
        assert_eq!(bytes.len(), header.encoded_len());
        assert_eq!(
            bytes.len(),
            HEADER_FIXED_LEN + 2 + STREAM_ID_LEN + HEADER_TAG_LEN
        );
        assert_eq!(&bytes[0..4], b"VTDX");
        assert_eq!(bytes[4], 1);
        assert_eq!(&bytes[5..9], &[0, 0, 0x10, 0]);
        assert_eq!(bytes[9], 2);
        assert_eq!(&bytes[10..12], b"k1");
        assert_eq!(&bytes[12..44], &[0xAB; 32]);
        assert_eq!(&bytes[44..76], &header.tag);
        let (parsed, len) = Header::parse(&bytes).unwrap();
        assert_eq!(parsed, header);
        assert_eq!(len, bytes.len());
    }

    #[test]
    fn chunk_size_rules() {
        for ok in [4096, 8192, 1 << 20, 16 << 20] {
            check_chunk_size(ok).unwrap();
        }
        for bad in [0, 1, 2048, 4095, 4097, 12288, 32 << 20, u32::MAX] {
            assert_eq!(
                check_chunk_size(bad),
                Err(StreamError::BadChunkSize { size: bad })
            );
        }
    }

    #[test]
    fn key_id_rules() {
        assert_eq!(
            Header::seal(&key(), "", 4096).unwrap_err(),
            StreamError::KeyIdEmpty
        );
        let long = "x".repeat(MAX_KEY_ID_LEN + 1);
        assert_eq!(
            Header::seal(&key(), &long, 4096).unwrap_err(),
            StreamError::KeyIdTooLong { len: 129 }
        );
        let longest = "é".repeat(MAX_KEY_ID_LEN / 2);
        let (header, _) = Header::seal(&key(), &longest, 4096).unwrap();
        assert_eq!(header.encoded_len(), MAX_V1_HEADER_LEN);
        assert_eq!(Header::parse(&header.to_bytes()).unwrap().0, header);
    }

    #[test]
    fn every_prefix_is_truncated() {
        let (header, _) = Header::seal(&key(), "key-1", 4096).unwrap();
        let bytes = header.to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(
                Header::parse(&bytes[..cut]).unwrap_err(),
                if cut >= MAGIC_LEN || bytes[..cut] == MAGIC[..cut] {
                    StreamError::HeaderTruncated
                } else {
                    StreamError::BadMagic
                },
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn open_checks_the_tag_and_derives_the_same_key() {
        let (header, sealing) = Header::seal(&key(), "key-1", 4096).unwrap();
        let opening = header.open(&key()).unwrap();
        assert_eq!(sealing.expose(), opening.expose());
        let other = StreamKey::new(&Confidential::new([0x22; 32]));
        assert_eq!(
            header.open(&other).unwrap_err(),
            StreamError::HeaderTampered {
                key_id: "key-1".into()
            }
        );
        // A second stream under the same key gets another payload key.
        let (_, second) = Header::seal(&key(), "key-1", 4096).unwrap();
        assert_ne!(sealing.expose(), second.expose());
    }

    #[test]
    fn header_key_and_payload_key_differ() {
        let stream_id = [3u8; 32];
        let (header, payload) = Header::seal_with_stream_id(&key(), "k", 4096, stream_id).unwrap();
        let header_key = derive(&key(), &stream_id, &[HEADER_KEY_INFO]).unwrap();
        assert_ne!(header_key.expose(), payload.expose().expose());
        assert_eq!(
            header.tag,
            hmac_sha256(header_key.expose(), &header.authenticated_bytes())
        );
    }

    #[test]
    fn v2_layout_offsets() {
        let context = b"object-7";
        let (header, _) =
            Header::seal_with_context_and_stream_id(&key(), "k1", context, 4096, [0xCD; 32])
                .unwrap();
        assert_eq!(header.version(), Version::V2);
        assert_eq!(header.context(), context);
        let bytes = header.to_bytes();
        let (l, m) = (2, context.len());
        assert_eq!(bytes.len(), header.encoded_len());
        assert_eq!(bytes.len(), 75 + l + m);
        assert_eq!(&bytes[0..4], b"VTDX");
        assert_eq!(bytes[4], 2);
        assert_eq!(&bytes[5..9], &[0, 0, 0x10, 0]);
        assert_eq!(bytes[9], l as u8);
        assert_eq!(&bytes[10..10 + l], b"k1");
        assert_eq!(bytes[10 + l], m as u8);
        assert_eq!(&bytes[11 + l..11 + l + m], context);
        assert_eq!(&bytes[11 + l + m..43 + l + m], &[0xCD; 32]);
        assert_eq!(&bytes[43 + l + m..], &header.tag);
        // The tag covers every byte before it, the context included.
        let header_key = derive(&key(), &[0xCD; 32], &[HEADER_KEY_INFO]).unwrap();
        assert_eq!(
            header.tag,
            hmac_sha256(header_key.expose(), &bytes[..43 + l + m])
        );
        let (parsed, len) = Header::parse(&bytes).unwrap();
        assert_eq!(parsed, header);
        assert_eq!(len, bytes.len());
        assert_eq!(parsed.context(), context);
    }

    #[test]
    fn an_empty_context_is_version_1_byte_for_byte() {
        let (v1, v1_key) = Header::seal_with_stream_id(&key(), "k1", 4096, [0xAB; 32]).unwrap();
        let (empty, empty_key) =
            Header::seal_with_context_and_stream_id(&key(), "k1", b"", 4096, [0xAB; 32]).unwrap();
        assert_eq!(empty.version(), Version::V1);
        assert_eq!(empty.context(), b"");
        assert_eq!(empty.to_bytes(), v1.to_bytes());
        assert_eq!(empty_key.expose(), v1_key.expose());
        assert_eq!(Header::parse(&v1.to_bytes()).unwrap().0.context(), b"");
    }

    #[test]
    fn context_rules() {
        let long = [7u8; MAX_CONTEXT_LEN + 1];
        assert_eq!(
            Header::seal_with_context(&key(), "k", &long, 4096).unwrap_err(),
            StreamError::ContextTooLong { len: 256 }
        );
        let longest_id = "é".repeat(MAX_KEY_ID_LEN / 2);
        let (header, _) =
            Header::seal_with_context(&key(), &longest_id, &long[..MAX_CONTEXT_LEN], 4096).unwrap();
        assert_eq!(header.encoded_len(), MAX_HEADER_LEN);
        assert_eq!(header.to_bytes().len(), MAX_HEADER_LEN);
        assert_eq!(Header::parse(&header.to_bytes()).unwrap().0, header);
        let (header, _) = Header::seal_with_context(&key(), "k", &[0], 4096).unwrap();
        assert_eq!(header.encoded_len(), MIN_HEADER_LEN + 2);
        assert_eq!(Header::parse(&header.to_bytes()).unwrap().0.context(), [0]);
    }

    #[test]
    fn a_version_2_header_with_an_empty_context_is_refused() {
        let (header, _) = Header::seal_with_context(&key(), "k", b"c", 4096).unwrap();
        let mut bytes = header.to_bytes();
        let at = HEADER_FIXED_LEN + 1;
        assert_eq!(bytes[at], 1);
        bytes[at] = 0;
        bytes.remove(at + 1);
        assert_eq!(
            Header::parse(&bytes).unwrap_err(),
            StreamError::ContextEmpty
        );
        // Even with nothing after it: the length alone is wrong.
        assert_eq!(
            Header::parse(&bytes[..=at]).unwrap_err(),
            StreamError::ContextEmpty
        );
    }

    #[test]
    fn every_prefix_of_a_version_2_header_is_truncated() {
        for context in [&b"c"[..], &[0xEE; MAX_CONTEXT_LEN]] {
            let (header, _) = Header::seal_with_context(&key(), "key-1", context, 4096).unwrap();
            let bytes = header.to_bytes();
            for cut in 0..bytes.len() {
                assert_eq!(
                    Header::parse(&bytes[..cut]).unwrap_err(),
                    StreamError::HeaderTruncated,
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn the_context_selects_the_tag_and_the_payload_key() {
        let stream_id = [9u8; 32];
        let seal = |context: &[u8]| {
            Header::seal_with_context_and_stream_id(&key(), "k", context, 4096, stream_id).unwrap()
        };
        let (v1, v1_key) = seal(b"");
        let (a, a_key) = seal(b"slot a");
        let (b, b_key) = seal(b"slot b");
        assert_ne!(a.tag, b.tag);
        assert_ne!(a.tag, v1.tag);
        assert_ne!(a_key.expose(), b_key.expose());
        assert_ne!(a_key.expose(), v1_key.expose());
        assert_eq!(a.open(&key()).unwrap().expose(), a_key.expose());
        // One context's tag on the other's bytes does not verify.
        let mut forged = b.clone();
        forged.tag = a.tag;
        assert_eq!(
            forged.open(&key()).unwrap_err(),
            StreamError::HeaderTampered { key_id: "k".into() }
        );
    }
}
