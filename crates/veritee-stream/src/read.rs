//! Decrypting a stream through [`Read`].

use std::io::{self, BufRead, Read};

use veritee_crypto::SecretBytes;
use zeroize::Zeroize;

use crate::StreamError;
use crate::chunk::{ChunkOpener, TAG_LEN};
use crate::header::{Header, read_header};
use crate::key::StreamKey;

/// Decrypts a stream read from `R`, holding at most two chunks at a time.
///
/// Reads return plaintext only once its chunk has authenticated. Any tampering, and an
/// end of input before the final chunk, is an error of kind
/// [`io::ErrorKind::InvalidData`] holding a [`StreamError`] (see
/// [`StreamError::from_io`]) that names the chunk; after one, every read fails the same
/// way. A read returns `Ok(0)` only after the final chunk has authenticated.
///
/// The stream must run to the end of `R`: the format has no length field, and what
/// follows the final chunk is an error.
///
/// Both format versions are read. The reader does not know which context the caller
/// expects: check [`Header::context`] on [`DecryptReader::header`] (authenticated once
/// the reader is made) before using the plaintext.
pub struct DecryptReader<R: Read> {
    inner: R,
    header: Header,
    opener: ChunkOpener,
    /// The next chunk's ciphertext, plus one byte of look-ahead that tells whether the
    /// input ends with it: `chunk_size + TAG_LEN + 1` long, `..filled` read.
    ciphertext: Vec<u8>,
    filled: usize,
    inner_done: bool,
    /// Plaintext of the current chunk not yet returned: `plaintext[pos..end]`. Allocated
    /// (once, `chunk_size` long) only if a read is too small to take a whole chunk.
    plaintext: SecretBytes,
    pos: usize,
    end: usize,
    next: u64,
    state: State,
    /// For a source that buffers (`BufRead`): its `fill_buf` and `consume`, so that a
    /// chunk wholly inside the source's buffer is opened from there, without copying.
    borrowed: Option<Borrowed<R>>,
}

/// `BufRead` methods of the source, kept as function pointers because `Read` for
/// [`DecryptReader`] is implemented for every `R: Read`.
struct Borrowed<R> {
    fill_buf: fn(&mut R) -> io::Result<&[u8]>,
    consume: fn(&mut R, usize),
}

enum State {
    Reading,
    Done,
    Failed(StreamError),
}

impl<R: Read> core::fmt::Debug for DecryptReader<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DecryptReader")
            .field("header", &self.header)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<R: Read> DecryptReader<R> {
    /// Reads the header from `inner` and checks it under `key`.
    pub fn new(key: &StreamKey, mut inner: R) -> io::Result<Self> {
        let header = read_header(&mut inner)?;
        Self::with_header(key, header, inner)
    }

    /// Reads the header from `inner`, asks `lookup` for the key it names, and checks it
    /// under that key.
    pub fn with_key_lookup<F>(mut inner: R, lookup: F) -> io::Result<Self>
    where
        F: FnOnce(&str) -> Option<StreamKey>,
    {
        let header = read_header(&mut inner)?;
        let Some(key) = lookup(header.key_id()) else {
            return Err(StreamError::UnknownKey {
                key_id: header.key_id().to_owned(),
            }
            .into());
        };
        Self::with_header(&key, header, inner)
    }

    /// Checks `header` (already read from `inner` with [`read_header`]) under `key`, and
    /// goes on to read the chunks that follow it.
    pub fn with_header(key: &StreamKey, header: Header, inner: R) -> io::Result<Self> {
        let opener = ChunkOpener::new(key, &header)?;
        // Allocated only once the header has authenticated.
        let ciphertext = vec![0u8; opener.chunk_size() + TAG_LEN + 1];
        Ok(Self {
            inner,
            header,
            opener,
            ciphertext,
            filled: 0,
            inner_done: false,
            plaintext: SecretBytes::new(Vec::new()),
            pos: 0,
            end: 0,
            next: 0,
            state: State::Reading,
            borrowed: None,
        })
    }

    /// As [`DecryptReader::new`] over a source that buffers (a byte slice, a
    /// `BufReader` with room for a chunk): a chunk found whole in the source's buffer
    /// is opened straight from there into the caller's buffer, skipping the copy into
    /// this reader's own. Every check is the same.
    pub fn new_buffered(key: &StreamKey, mut inner: R) -> io::Result<Self>
    where
        R: BufRead,
    {
        let header = read_header(&mut inner)?;
        let mut reader = Self::with_header(key, header, inner)?;
        reader.borrowed = Some(Borrowed {
            fill_buf: <R as BufRead>::fill_buf,
            consume: <R as BufRead>::consume,
        });
        Ok(reader)
    }

    /// The stream's header (authenticated): compare its
    /// [`context`](Header::context) with the one expected before using what is read.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Whether the final chunk has authenticated (its plaintext may not all have been
    /// read yet).
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Bytes of buffer this reader holds: at most two chunks, whatever the length of the
    /// stream.
    pub fn buffer_capacity(&self) -> usize {
        self.ciphertext.capacity() + self.plaintext.expose().capacity()
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Opens the next chunk straight from the source's buffer into `out`, when the
    /// source buffers, nothing is held back in this reader's own buffer, `out` takes a
    /// whole chunk, and the source's buffer holds the chunk and at least one byte more
    /// (so it is not the final one). Otherwise `None`: the copying path takes over.
    fn open_borrowed(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(Borrowed { fill_buf, consume }) = &self.borrowed else {
            return Ok(None);
        };
        let (fill_buf, consume) = (*fill_buf, *consume);
        let chunk = self.opener.chunk_size();
        let full = chunk + TAG_LEN;
        if self.filled != 0 || self.inner_done || out.len() < chunk {
            return Ok(None);
        }
        let index = self.next;
        let available = fill_buf(&mut self.inner)?;
        if available.len() <= full {
            return Ok(None);
        }
        let opened = self
            .opener
            .open_to(index, &available[..full], &mut out[..chunk], false);
        match opened {
            Ok(()) => {
                consume(&mut self.inner, full);
                self.next = index + 1;
                Ok(Some(chunk))
            }
            Err(e) => {
                // The same diagnosis as the copying path (it cannot be the final chunk:
                // more input follows).
                let e = match e {
                    StreamError::ChunkTampered { .. } => diagnose(
                        &self.opener,
                        index,
                        &available[..full],
                        &mut out[..chunk],
                        false,
                        full,
                    ),
                    other => other,
                };
                self.state = State::Failed(e.clone());
                Err(e.into())
            }
        }
    }

    /// Reads until the look-ahead buffer is full or the input ends.
    fn fill(&mut self) -> io::Result<()> {
        while self.filled < self.ciphertext.len() && !self.inner_done {
            match self.inner.read(&mut self.ciphertext[self.filled..]) {
                Ok(0) => self.inner_done = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Opens the chunk in the look-ahead buffer into `out` if it takes a whole chunk
    /// (returning its length), else into the plaintext buffer (returning `None`).
    fn open_next(&mut self, out: &mut [u8]) -> Result<Option<usize>, StreamError> {
        let index = self.next;
        let full = self.opener.chunk_size() + TAG_LEN;
        // With the look-ahead byte read, more input follows this chunk.
        let last = self.filled <= full;
        let len = self.filled.min(full);
        if len == 0 {
            return Err(StreamError::Truncated {
                after_chunks: index,
            });
        }
        if len < TAG_LEN {
            return Err(StreamError::ChunkTooShort { index, len });
        }
        let plaintext_len = len - TAG_LEN;
        let direct = out.len() >= plaintext_len;
        let target = if direct {
            &mut out[..plaintext_len]
        } else {
            let buffer = self.plaintext.expose_mut();
            if buffer.is_empty() {
                buffer.resize(self.opener.chunk_size(), 0);
            }
            &mut buffer[..plaintext_len]
        };
        let ciphertext = &self.ciphertext[..len];
        match self.opener.open_to(index, ciphertext, target, last) {
            Ok(()) => {}
            Err(StreamError::ChunkTampered { .. }) => {
                return Err(diagnose(
                    &self.opener,
                    index,
                    ciphertext,
                    target,
                    last,
                    full,
                ));
            }
            Err(e) => return Err(e),
        }
        if last {
            self.state = State::Done;
        } else {
            self.next = index + 1;
            self.ciphertext[0] = self.ciphertext[full];
            self.filled = 1;
        }
        if direct {
            Ok(Some(plaintext_len))
        } else {
            self.pos = 0;
            self.end = plaintext_len;
            Ok(None)
        }
    }
}

/// Names what is wrong with a chunk that failed to open as chunk `index` with flag
/// `last`: one that opens with the other flag was cut after (truncation at a chunk
/// boundary) or extended after (trailing data); anything else is tampering.
fn diagnose(
    opener: &ChunkOpener,
    index: u64,
    ciphertext: &[u8],
    scratch: &mut [u8],
    last: bool,
    full: usize,
) -> StreamError {
    let error = if last
        && ciphertext.len() == full
        && opener.authenticates(index, ciphertext, scratch, false)
    {
        StreamError::Truncated {
            after_chunks: index + 1,
        }
    } else if !last && opener.authenticates(index, ciphertext, scratch, true) {
        StreamError::TrailingData { last_index: index }
    } else {
        StreamError::ChunkTampered { index }
    };
    scratch.zeroize();
    error
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.end {
                let n = (self.end - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.plaintext.expose()[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match &self.state {
                State::Reading => {}
                State::Done => return Ok(0),
                State::Failed(e) => return Err(e.clone().into()),
            }
            if let Some(n) = self.open_borrowed(out)? {
                return Ok(n);
            }
            // An error of `inner` leaves the look-ahead buffer consistent: retrying
            // goes on where it stopped.
            self.fill()?;
            match self.open_next(out) {
                Ok(Some(n)) => return Ok(n),
                Ok(None) => {}
                Err(e) => {
                    self.state = State::Failed(e.clone());
                    return Err(e.into());
                }
            }
        }
    }
}
