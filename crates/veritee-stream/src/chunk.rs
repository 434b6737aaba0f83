//! Chunk-level sealing and opening: the STREAM construction, one chunk at a time.
//!
//! [`EncryptWriter`](crate::EncryptWriter) and [`DecryptReader`](crate::DecryptReader)
//! are built on these; a transport that moves one chunk per request (and may verify and
//! re-encrypt it on the way) uses them directly.

use veritee_crypto::SecretBytes;
use veritee_crypto::aead::{self, AeadKey};

use crate::StreamError;
use crate::header::Header;
use crate::key::StreamKey;

/// Length of each chunk's AES-256-GCM tag.
pub const TAG_LEN: usize = aead::TAG_LEN;
/// Length of a chunk nonce.
pub const NONCE_LEN: usize = aead::NONCE_LEN;
/// Length of the big-endian chunk counter at the start of the nonce.
pub const COUNTER_LEN: usize = 11;
/// The nonce's last byte for every chunk but the final one.
pub const NOT_LAST_FLAG: u8 = 0x00;
/// The nonce's last byte for the final chunk.
pub const LAST_FLAG: u8 = 0x01;

const _: () = assert!(TAG_LEN == 16);
const _: () = assert!(COUNTER_LEN + 1 == NONCE_LEN);
// Chunk indexes are `u64`s, which fit the counter; the top bytes stay zero.
const _: () = assert!(COUNTER_LEN >= size_of::<u64>());

/// The nonce of chunk `index`: 11-byte big-endian counter || last-chunk flag.
fn nonce(index: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[COUNTER_LEN - size_of::<u64>()..COUNTER_LEN].copy_from_slice(&index.to_be_bytes());
    nonce[COUNTER_LEN] = if last { LAST_FLAG } else { NOT_LAST_FLAG };
    nonce
}

/// Seals a stream's chunks in order, starting with a fresh header.
///
/// Every chunk but the last holds exactly the chunk size in plaintext; the last holds
/// up to that much, possibly nothing. After the last chunk, nothing more can be sealed.
pub struct ChunkSealer {
    header: Header,
    key: AeadKey,
    chunk_size: usize,
    next: u64,
    last_index: Option<u64>,
}

impl core::fmt::Debug for ChunkSealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChunkSealer")
            .field("key_id", &self.header.key_id())
            .field("chunk_size", &self.chunk_size)
            .field("next", &self.next)
            .field("last_index", &self.last_index)
            .finish_non_exhaustive()
    }
}

impl ChunkSealer {
    /// Starts a stream under `key`, named `key_id`, in chunks of `chunk_size` plaintext
    /// bytes (see [`DEFAULT_CHUNK_SIZE`](crate::DEFAULT_CHUNK_SIZE)); its header (to send
    /// before the chunks) is [`ChunkSealer::header`].
    pub fn new(key: &StreamKey, key_id: &str, chunk_size: u32) -> Result<Self, StreamError> {
        let (header, key) = Header::seal(key, key_id, chunk_size)?;
        Ok(Self::from_parts(header, key))
    }

    /// As [`ChunkSealer::new`], bound to `context`: up to
    /// [`MAX_CONTEXT_LEN`](crate::MAX_CONTEXT_LEN) bytes naming what the stream is for
    /// (an object name and version, a task slot), so that a reader who checks
    /// [`Header::context`] cannot be served another stream under the same key in its
    /// place. A non-empty context makes a version-2 header; an empty one makes the same
    /// version-1 header as [`ChunkSealer::new`].
    pub fn with_context(
        key: &StreamKey,
        key_id: &str,
        context: &[u8],
        chunk_size: u32,
    ) -> Result<Self, StreamError> {
        let (header, key) = Header::seal_with_context(key, key_id, context, chunk_size)?;
        Ok(Self::from_parts(header, key))
    }

    pub(crate) fn from_parts(header: Header, key: AeadKey) -> Self {
        Self {
            chunk_size: header.chunk_size() as usize,
            header,
            key,
            next: 0,
            last_index: None,
        }
    }

    /// The stream's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Plaintext bytes in every chunk but the last.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The index the next chunk will have.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Whether the final chunk has been sealed.
    pub fn is_finished(&self) -> bool {
        self.last_index.is_some()
    }

    /// Seals the next chunk: its ciphertext followed by its tag.
    pub fn seal(&mut self, plaintext: &[u8], last: bool) -> Result<Vec<u8>, StreamError> {
        let mut out = vec![0u8; plaintext.len() + TAG_LEN];
        self.seal_to(plaintext, &mut out, last)?;
        Ok(out)
    }

    /// Seals the next chunk in place: `buffer` holds its plaintext and is left holding
    /// its ciphertext followed by its tag (reserve [`TAG_LEN`] spare bytes to avoid a
    /// reallocation).
    pub fn seal_in_place(&mut self, buffer: &mut Vec<u8>, last: bool) -> Result<(), StreamError> {
        let index = self.check(buffer.len(), last)?;
        self.key.seal_in_place(&nonce(index, last), &[], buffer)?;
        self.advance(index, last);
        Ok(())
    }

    /// Seals the next chunk where it lies at the end of `buffer`: `buffer[start..]`
    /// holds its plaintext and is left holding its ciphertext, with the tag appended.
    /// Lets a caller gather several sealed chunks (and the header) in one buffer without
    /// copying them; a `start` past the end seals an empty chunk.
    pub fn seal_at_end(
        &mut self,
        buffer: &mut Vec<u8>,
        start: usize,
        last: bool,
    ) -> Result<(), StreamError> {
        let plaintext = buffer.get_mut(start..).unwrap_or_default();
        let index = self.check(plaintext.len(), last)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(&nonce(index, last), &[], plaintext)?;
        buffer.extend_from_slice(&tag);
        self.advance(index, last);
        Ok(())
    }

    /// Seals the next chunk from `plaintext` into `out`, which is exactly
    /// `plaintext.len() + TAG_LEN` bytes.
    pub(crate) fn seal_to(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
        last: bool,
    ) -> Result<(), StreamError> {
        let index = self.check(plaintext.len(), last)?;
        self.key.seal_to(&nonce(index, last), &[], plaintext, out)?;
        self.advance(index, last);
        Ok(())
    }

    /// Seals the next chunks in place where they lie in `region`, laid out as a stream
    /// carries them: each chunk's plaintext followed by [`TAG_LEN`] bytes of room for
    /// its tag. Every chunk in `region` is full but its last, which is the stream's
    /// final chunk if `last` (and may then be short, down to an empty chunk: its tag
    /// room alone), and full otherwise. An empty `region` seals nothing unless `last`,
    /// which it cannot be: a final chunk needs its tag.
    ///
    /// With more than one core the chunks are sealed side by side (see
    /// [`sealing_threads`](crate::sealing_threads)); the bytes are the same as sealing
    /// them one by one. On an error nothing counts as sealed, and `region` may hold
    /// some chunks sealed and others not.
    pub fn seal_laid_out(&mut self, region: &mut [u8], last: bool) -> Result<(), StreamError> {
        let stride = self.chunk_size + TAG_LEN;
        let base = self.next;
        let count = self.laid_out_count(region.len(), stride, last)?;
        let key = &self.key;
        crate::parallel::try_for_each_piece(region, stride, |i, chunk| {
            let index = base + i as u64;
            let (plaintext, tag_room) = chunk.split_at_mut(chunk.len() - TAG_LEN);
            let tag = key.seal_in_place_separate_tag(
                &nonce(index, last && i + 1 == count),
                &[],
                plaintext,
            )?;
            tag_room.copy_from_slice(&tag);
            Ok::<_, StreamError>(())
        })?;
        self.advance_by(count, last);
        Ok(())
    }

    /// Seals the next chunks from `plaintext` (every chunk full but the last, as for
    /// [`ChunkSealer::seal_laid_out`]) into `out`, exactly `plaintext` with room for
    /// each chunk's tag.
    pub(crate) fn seal_laid_out_to(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
        last: bool,
    ) -> Result<(), StreamError> {
        let stride = self.chunk_size + TAG_LEN;
        let base = self.next;
        let count = self.laid_out_count(out.len(), stride, last)?;
        let expected = out.len() - count * TAG_LEN;
        if plaintext.len() != expected {
            return Err(StreamError::Crypto(
                veritee_crypto::CryptoError::OutputLength {
                    what: "stream sealing buffer",
                    requested: out.len(),
                    maximum: plaintext.len() + count * TAG_LEN,
                },
            ));
        }
        let key = &self.key;
        crate::parallel::try_for_each_pair(
            plaintext,
            self.chunk_size,
            out,
            stride,
            |i, plaintext, chunk| {
                let index = base + i as u64;
                key.seal_to(&nonce(index, last && i + 1 == count), &[], plaintext, chunk)?;
                Ok::<_, StreamError>(())
            },
        )?;
        self.advance_by(count, last);
        Ok(())
    }

    /// How many chunks a laid-out region of `len` bytes holds, checked as `check`
    /// checks each of them.
    fn laid_out_count(&self, len: usize, stride: usize, last: bool) -> Result<usize, StreamError> {
        let (whole, rest) = (len / stride, len % stride);
        let count = whole + usize::from(rest != 0);
        let index_of = |i: usize| self.next.saturating_add(i as u64);
        if count == 0 {
            return match last {
                false => Ok(0),
                true => Err(StreamError::ChunkTooShort {
                    index: self.next,
                    len: 0,
                }),
            };
        }
        if rest != 0 && rest < TAG_LEN {
            return Err(StreamError::ChunkTooShort {
                index: index_of(whole),
                len: rest,
            });
        }
        let final_len = if rest == 0 {
            self.chunk_size
        } else {
            rest - TAG_LEN
        };
        // The first chunk's check finds a stream already finished; the last chunk's, a
        // wrong length, flag or index. Those between are full and below the last.
        let first_len = if count == 1 {
            final_len
        } else {
            self.chunk_size
        };
        self.check_at(self.next, first_len, count == 1 && last)?;
        let last_index = self
            .next
            .checked_add(count as u64 - 1)
            .ok_or(StreamError::CounterOverflow { index: u64::MAX })?;
        self.check_at(last_index, final_len, last)?;
        Ok(count)
    }

    fn check(&self, len: usize, last: bool) -> Result<u64, StreamError> {
        self.check_at(self.next, len, last)
    }

    fn check_at(&self, index: u64, len: usize, last: bool) -> Result<u64, StreamError> {
        if let Some(last_index) = self.last_index {
            return Err(StreamError::ChunkAfterLast {
                index: last_index.saturating_add(1),
                last_index,
            });
        }
        if len > self.chunk_size {
            return Err(StreamError::ChunkTooLarge {
                index,
                len,
                max: self.chunk_size,
            });
        }
        if !last && len != self.chunk_size {
            return Err(StreamError::ChunkNotFull {
                index,
                len,
                expected: self.chunk_size,
            });
        }
        if !last && index == u64::MAX {
            return Err(StreamError::CounterOverflow { index });
        }
        Ok(index)
    }

    /// Past `count` chunks sealed from the next index on (checked by `laid_out_count`).
    fn advance_by(&mut self, count: usize, last: bool) {
        if count > 0 {
            self.advance(self.next + (count as u64 - 1), last);
        }
    }

    fn advance(&mut self, index: u64, last: bool) {
        if last {
            self.last_index = Some(index);
        } else {
            // `check` refused a non-final chunk at u64::MAX.
            self.next = index + 1;
        }
    }

    #[cfg(test)]
    pub(crate) fn set_next_index(&mut self, index: u64) {
        self.next = index;
    }
}

/// Opens a stream's chunks, by index, after checking its header.
///
/// Chunks may be opened in any order and more than once (a transport may verify one
/// chunk per request); each authenticates only at its own index, with its own final
/// flag, in its own stream. Once a final chunk has been opened, no chunk after it
/// opens. Whether the whole stream arrived, the caller learns from
/// [`ChunkOpener::is_complete`] having seen every index up to the final one.
pub struct ChunkOpener {
    key: AeadKey,
    chunk_size: usize,
    last_index: Option<u64>,
    highest: Option<u64>,
}

impl core::fmt::Debug for ChunkOpener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChunkOpener")
            .field("chunk_size", &self.chunk_size)
            .field("last_index", &self.last_index)
            .field("highest", &self.highest)
            .finish_non_exhaustive()
    }
}

impl ChunkOpener {
    /// Checks `header`'s tag under `key` and prepares to open the stream's chunks.
    ///
    /// Once this succeeded, `header` (its key id and [`Header::context`] included) is
    /// authenticated: compare its context with the one expected before trusting any
    /// chunk to be what it was asked for.
    pub fn new(key: &StreamKey, header: &Header) -> Result<Self, StreamError> {
        let key = header.open(key)?;
        Ok(Self {
            key,
            chunk_size: header.chunk_size() as usize,
            last_index: None,
            highest: None,
        })
    }

    /// Plaintext bytes in every chunk but the last.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Whether the final chunk has been opened.
    pub fn is_complete(&self) -> bool {
        self.last_index.is_some()
    }

    /// Opens chunk `index` (ciphertext followed by tag), which is the final chunk if
    /// `last`.
    pub fn open(
        &mut self,
        index: u64,
        ciphertext: &[u8],
        last: bool,
    ) -> Result<SecretBytes, StreamError> {
        self.check(index, ciphertext.len(), last)?;
        let mut out = SecretBytes::new(vec![0u8; ciphertext.len() - TAG_LEN]);
        self.open_to(index, ciphertext, out.expose_mut(), last)?;
        Ok(out)
    }

    /// Opens chunk `index` in place: `buffer` holds ciphertext followed by tag; the
    /// plaintext is returned as its prefix. On failure `buffer` is left zeroed.
    pub fn open_in_place<'b>(
        &mut self,
        index: u64,
        buffer: &'b mut [u8],
        last: bool,
    ) -> Result<&'b mut [u8], StreamError> {
        self.check(index, buffer.len(), last)?;
        let plaintext = self
            .key
            .open_in_place(&nonce(index, last), &[], buffer)
            .map_err(|_| StreamError::ChunkTampered { index })?;
        self.record(index, last);
        Ok(plaintext)
    }

    /// Opens chunk `index` into `out`, exactly `ciphertext.len() - TAG_LEN` bytes.
    pub(crate) fn open_to(
        &mut self,
        index: u64,
        ciphertext: &[u8],
        out: &mut [u8],
        last: bool,
    ) -> Result<(), StreamError> {
        self.check(index, ciphertext.len(), last)?;
        if !self.authenticates(index, ciphertext, out, last) {
            return Err(StreamError::ChunkTampered { index });
        }
        self.record(index, last);
        Ok(())
    }

    /// Whether `ciphertext` opens as chunk `index` with flag `last`, into `out`; keeps no
    /// record (for diagnosing a failure). On failure `out` holds no plaintext.
    pub(crate) fn authenticates(
        &self,
        index: u64,
        ciphertext: &[u8],
        out: &mut [u8],
        last: bool,
    ) -> bool {
        self.key
            .open_to(&nonce(index, last), &[], ciphertext, out)
            .is_ok()
    }

    fn check(&self, index: u64, len: usize, last: bool) -> Result<(), StreamError> {
        if let Some(last_index) = self.last_index
            && index > last_index
        {
            return Err(StreamError::ChunkAfterLast { index, last_index });
        }
        if let Some(highest) = self.highest
            && last
            && highest > index
        {
            return Err(StreamError::ChunkAfterLast {
                index: highest,
                last_index: index,
            });
        }
        if len < TAG_LEN {
            return Err(StreamError::ChunkTooShort { index, len });
        }
        let full = self.chunk_size + TAG_LEN;
        if len > full {
            return Err(StreamError::ChunkTooLarge {
                index,
                len,
                max: full,
            });
        }
        if !last && len != full {
            return Err(StreamError::ChunkNotFull {
                index,
                len,
                expected: full,
            });
        }
        if !last && index == u64::MAX {
            return Err(StreamError::CounterOverflow { index });
        }
        Ok(())
    }

    fn record(&mut self, index: u64, last: bool) {
        if last {
            self.last_index = Some(index);
        }
        self.highest = Some(self.highest.map_or(index, |h| h.max(index)));
    }
}

#[cfg(test)]
mod tests {
    use veritee_crypto::Confidential;

    use super::*;

    const CHUNK: usize = 4096;

    fn key() -> StreamKey {
        StreamKey::new(&Confidential::new([0x5A; 32]))
    }

    fn pair() -> (ChunkSealer, ChunkOpener) {
        let sealer = ChunkSealer::new(&key(), "chunks", CHUNK as u32).unwrap();
        let opener = ChunkOpener::new(&key(), sealer.header()).unwrap();
        (sealer, opener)
    }

    /// Plaintext chunks laid out with room for their tags, as `seal_laid_out` takes.
    fn laid_out(chunks: &[&[u8]]) -> Vec<u8> {
        let mut region = Vec::new();
        for chunk in chunks {
            region.extend_from_slice(chunk);
            region.extend_from_slice(&[0xEE; TAG_LEN]);
        }
        region
    }

    /// Three sealers of one stream: same header, same payload key.
    fn triplets() -> [ChunkSealer; 3] {
        let (header, payload) = Header::seal(&key(), "chunks", CHUNK as u32).unwrap();
        core::array::from_fn(|_| ChunkSealer::from_parts(header.clone(), payload.clone()))
    }

    #[test]
    fn chunks_sealed_laid_out_are_the_chunks_sealed_one_by_one() {
        let (a, b, c) = ([1u8; CHUNK], [2u8; CHUNK], [3u8; 100]);
        for chunks in [
            vec![&a[..], &b[..], &c[..]],
            vec![&a[..], &b[..]],
            vec![&a[..], &b[..], &[][..]],
            vec![&[][..]],
            vec![&c[..]],
        ] {
            let [mut one_by_one, mut laid_out_sealer, mut from_plaintext] = triplets();
            let mut expected = Vec::new();
            for (i, chunk) in chunks.iter().enumerate() {
                expected.extend(one_by_one.seal(chunk, i + 1 == chunks.len()).unwrap());
            }
            let mut region = laid_out(&chunks);
            laid_out_sealer.seal_laid_out(&mut region, true).unwrap();
            assert!(region == expected, "{} chunks", chunks.len());
            assert!(laid_out_sealer.is_finished());

            let plaintext: Vec<u8> = chunks.concat();
            let mut out = vec![0u8; expected.len()];
            from_plaintext
                .seal_laid_out_to(&plaintext, &mut out, true)
                .unwrap();
            assert!(out == expected, "{} chunks, out of place", chunks.len());
        }
    }

    #[test]
    fn laid_out_runs_continue_the_stream_where_it_stands() {
        let [mut one_by_one, mut runs, _] = triplets();
        let mut expected = Vec::new();
        for (i, fill) in [4u8, 5, 6, 7, 8].into_iter().enumerate() {
            expected.extend(one_by_one.seal(&[fill; CHUNK], i == 4).unwrap());
        }
        let mut first = laid_out(&[&[4; CHUNK], &[5; CHUNK]]);
        runs.seal_laid_out(&mut first, false).unwrap();
        assert_eq!(runs.next_index(), 2);
        let mut nothing = Vec::new();
        runs.seal_laid_out(&mut nothing, false).unwrap();
        assert_eq!(runs.next_index(), 2);
        let mut second = laid_out(&[&[6; CHUNK], &[7; CHUNK], &[8; CHUNK]]);
        runs.seal_laid_out(&mut second, true).unwrap();
        assert!([first, second].concat() == expected);
    }

    #[test]
    fn a_laid_out_region_that_is_not_whole_chunks_is_refused_naming_the_chunk() {
        let (mut sealer, _) = pair();
        // A short chunk that is not the final one.
        let mut short = laid_out(&[&[1; CHUNK], &[2; 10]]);
        assert_eq!(
            sealer.seal_laid_out(&mut short, false).unwrap_err(),
            StreamError::ChunkNotFull {
                index: 1,
                len: 10,
                expected: CHUNK
            }
        );
        // Less than a tag's room after the whole chunks.
        let mut cut = laid_out(&[&[1; CHUNK]]);
        cut.extend_from_slice(&[0; TAG_LEN - 1]);
        assert_eq!(
            sealer.seal_laid_out(&mut cut, true).unwrap_err(),
            StreamError::ChunkTooShort {
                index: 1,
                len: TAG_LEN - 1
            }
        );
        // A final chunk needs at least its tag.
        assert_eq!(
            sealer.seal_laid_out(&mut [], true).unwrap_err(),
            StreamError::ChunkTooShort { index: 0, len: 0 }
        );
        // Plaintext that does not fill the output, out of place.
        let mut out = laid_out(&[&[0; CHUNK]]);
        assert!(matches!(
            sealer.seal_laid_out_to(&[1; CHUNK - 1], &mut out, false),
            Err(StreamError::Crypto(_))
        ));
        // Nothing counted as sealed: the stream still starts at chunk 0.
        assert_eq!(sealer.next_index(), 0);
        let mut end = laid_out(&[b"end"]);
        sealer.seal_laid_out(&mut end, true).unwrap();
        // And nothing after its final chunk.
        let mut more = laid_out(&[&[1; CHUNK]]);
        assert_eq!(
            sealer.seal_laid_out(&mut more, false).unwrap_err(),
            StreamError::ChunkAfterLast {
                index: 1,
                last_index: 0
            }
        );
    }

    #[test]
    fn a_laid_out_run_past_the_counter_is_refused() {
        let (mut sealer, _) = pair();
        sealer.set_next_index(u64::MAX - 1);
        let mut two = laid_out(&[&[1; CHUNK], &[2; CHUNK]]);
        assert_eq!(
            sealer.seal_laid_out(&mut two, false).unwrap_err(),
            StreamError::CounterOverflow { index: u64::MAX }
        );
        // As the last chunk, index u64::MAX is allowed.
        sealer.seal_laid_out(&mut two, true).unwrap();
        assert!(sealer.is_finished());
    }

    #[test]
    fn nonce_layout_is_age_stream() {
        assert_eq!(nonce(0, false), [0; 12]);
        assert_eq!(nonce(1, true), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(
            nonce(0x0102_0304_0506_0708, false),
            [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0]
        );
        assert_eq!(
            nonce(u64::MAX, true),
            [0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1]
        );
    }

    #[test]
    fn seal_and_open_by_index_in_any_order() {
        let (mut sealer, mut opener) = pair();
        let a = sealer.seal(&[1; CHUNK], false).unwrap();
        let b = sealer.seal(&[2; CHUNK], false).unwrap();
        let c = sealer.seal(b"end", true).unwrap();
        assert!(sealer.is_finished());
        assert_eq!(opener.open(1, &b, false).unwrap().expose(), &vec![2; CHUNK]);
        assert_eq!(opener.open(0, &a, false).unwrap().expose(), &vec![1; CHUNK]);
        assert!(!opener.is_complete());
        assert_eq!(opener.open(2, &c, true).unwrap().expose(), b"end");
        assert!(opener.is_complete());
        // Opening again (a retried request) is fine.
        assert_eq!(opener.open(2, &c, true).unwrap().expose(), b"end");
        // Wrong index, wrong flag: refused.
        assert_eq!(
            opener.open(1, &a, false).unwrap_err(),
            StreamError::ChunkTampered { index: 1 }
        );
        assert_eq!(
            opener.open(2, &c, false).unwrap_err(),
            StreamError::ChunkNotFull {
                index: 2,
                len: 3 + TAG_LEN,
                expected: CHUNK + TAG_LEN
            }
        );
        assert_eq!(
            opener.open(3, &c, true).unwrap_err(),
            StreamError::ChunkAfterLast {
                index: 3,
                last_index: 2
            }
        );
    }

    #[test]
    fn in_place_round_trip() {
        let (mut sealer, mut opener) = pair();
        let mut buffer = Vec::with_capacity(CHUNK + TAG_LEN);
        buffer.extend_from_slice(b"in place");
        sealer.seal_in_place(&mut buffer, true).unwrap();
        assert_eq!(buffer.len(), 8 + TAG_LEN);
        assert_eq!(buffer.capacity(), CHUNK + TAG_LEN, "no reallocation");
        assert_eq!(
            opener.open_in_place(0, &mut buffer, true).unwrap(),
            b"in place"
        );
    }

    #[test]
    fn sealed_at_the_end_of_a_gathering_buffer() {
        let (mut sealer, mut opener) = pair();
        let mut gathered = b"header".to_vec();
        gathered.extend_from_slice(&[7; CHUNK]);
        sealer.seal_at_end(&mut gathered, 6, false).unwrap();
        gathered.extend_from_slice(b"tail");
        sealer
            .seal_at_end(&mut gathered, 6 + CHUNK + TAG_LEN, true)
            .unwrap();
        assert_eq!(
            &gathered[..6],
            b"header",
            "what precedes start is untouched"
        );
        assert_eq!(gathered.len(), 6 + CHUNK + TAG_LEN + 4 + TAG_LEN);
        let (first, second) = gathered[6..].split_at(CHUNK + TAG_LEN);
        assert_eq!(
            opener.open(0, first, false).unwrap().expose(),
            &vec![7; CHUNK]
        );
        assert_eq!(opener.open(1, second, true).unwrap().expose(), b"tail");
        // The same rules as any other sealing: a short non-final chunk is refused.
        let (mut sealer, _) = pair();
        let mut short = vec![1; 10];
        assert_eq!(
            sealer.seal_at_end(&mut short, 0, false).unwrap_err(),
            StreamError::ChunkNotFull {
                index: 0,
                len: 10,
                expected: CHUNK
            }
        );
        // Nothing after start: an empty final chunk.
        let mut empty = b"header".to_vec();
        sealer.seal_at_end(&mut empty, 99, true).unwrap();
        assert_eq!(empty.len(), 6 + TAG_LEN);
    }

    #[test]
    fn sizes_are_enforced() {
        let (mut sealer, mut opener) = pair();
        assert_eq!(
            sealer.seal(&[0; CHUNK + 1], true).unwrap_err(),
            StreamError::ChunkTooLarge {
                index: 0,
                len: CHUNK + 1,
                max: CHUNK
            }
        );
        assert_eq!(
            sealer.seal(&[0; 10], false).unwrap_err(),
            StreamError::ChunkNotFull {
                index: 0,
                len: 10,
                expected: CHUNK
            }
        );
        assert_eq!(
            opener.open(0, &[0; TAG_LEN - 1], true).unwrap_err(),
            StreamError::ChunkTooShort {
                index: 0,
                len: TAG_LEN - 1
            }
        );
        assert_eq!(
            opener.open(0, &[0; CHUNK + TAG_LEN + 1], true).unwrap_err(),
            StreamError::ChunkTooLarge {
                index: 0,
                len: CHUNK + TAG_LEN + 1,
                max: CHUNK + TAG_LEN
            }
        );
    }

    #[test]
    fn nothing_after_the_last() {
        let (mut sealer, mut opener) = pair();
        let chunks: Vec<Vec<u8>> = (0..6)
            .map(|i| sealer.seal(&[i; CHUNK], false).unwrap())
            .collect();
        let last = sealer.seal(&[], true).unwrap();
        assert_eq!(
            sealer.seal(&[], true).unwrap_err(),
            StreamError::ChunkAfterLast {
                index: 7,
                last_index: 6
            }
        );
        // A final chunk cannot come before a chunk already opened.
        opener.open(5, &chunks[5], false).unwrap();
        assert_eq!(
            opener.open(1, &last, true).unwrap_err(),
            StreamError::ChunkAfterLast {
                index: 5,
                last_index: 1
            }
        );
        assert_eq!(opener.open(6, &last, true).unwrap().expose(), b"");
    }

    #[test]
    fn counter_never_wraps() {
        let (mut sealer, mut opener) = pair();
        sealer.set_next_index(u64::MAX - 1);
        let penultimate = sealer.seal(&[9; CHUNK], false).unwrap();
        assert_eq!(sealer.next_index(), u64::MAX);
        assert_eq!(
            sealer.seal(&[9; CHUNK], false).unwrap_err(),
            StreamError::CounterOverflow { index: u64::MAX }
        );
        let last = sealer.seal(b"at the end of the counter", true).unwrap();
        assert_eq!(
            opener
                .open(u64::MAX - 1, &penultimate, false)
                .unwrap()
                .expose(),
            &vec![9; CHUNK]
        );
        assert_eq!(
            opener.open(u64::MAX, &last, true).unwrap().expose(),
            b"at the end of the counter"
        );
        assert_eq!(
            opener
                .open(u64::MAX, &[0; CHUNK + TAG_LEN], false)
                .unwrap_err(),
            StreamError::CounterOverflow { index: u64::MAX }
        );
    }

    #[test]
    fn other_stream_same_key_same_id_does_not_open() {
        let (mut sealer, mut opener) = pair();
        let (mut other, _) = pair();
        let _ = sealer.seal(&[1; CHUNK], false).unwrap();
        let foreign = other.seal(&[1; CHUNK], false).unwrap();
        assert_eq!(
            opener.open(0, &foreign, false).unwrap_err(),
            StreamError::ChunkTampered { index: 0 }
        );
    }
}
