//! Encrypting a stream through [`Write`].

use std::io::{self, Write};

use veritee_crypto::SecretBytes;

use crate::StreamError;
use crate::chunk::{ChunkSealer, TAG_LEN};
use crate::header::Header;
use crate::key::StreamKey;

/// Encrypts everything written to it into a stream on `W`, holding one chunk at a time.
///
/// [`EncryptWriter::finish`] **must** be called when all is written: it seals the final
/// chunk. A writer dropped without it leaves a stream with no final chunk, which every
/// reader rejects as truncated.
///
/// `W` is written whole chunks at a time with `write_all`. An error from `W` is final:
/// the writer is unusable afterwards, since part of a chunk may have been written.
pub struct EncryptWriter<W: Write> {
    inner: W,
    sealer: ChunkSealer,
    /// Always `chunk_size + TAG_LEN` long (so no chunk needs a fresh or re-zeroed
    /// buffer): plaintext of the pending chunk in `..pending`, or a sealed chunk while it
    /// is being written out.
    buffer: SecretBytes,
    pending: usize,
    poisoned: Option<String>,
}

impl<W: Write> core::fmt::Debug for EncryptWriter<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EncryptWriter")
            .field("sealer", &self.sealer)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl<W: Write> EncryptWriter<W> {
    /// Starts a stream under `key`, named `key_id`, in chunks of `chunk_size` plaintext
    /// bytes (see [`DEFAULT_CHUNK_SIZE`](crate::DEFAULT_CHUNK_SIZE)), and writes its
    /// header to `inner`.
    pub fn new(key: &StreamKey, key_id: &str, chunk_size: u32, mut inner: W) -> io::Result<Self> {
        let sealer = ChunkSealer::new(key, key_id, chunk_size)?;
        inner.write_all(&sealer.header().to_bytes())?;
        Ok(Self::from_sealer(sealer, inner))
    }

    /// As [`EncryptWriter::new`], bound to `context`: up to
    /// [`MAX_CONTEXT_LEN`](crate::MAX_CONTEXT_LEN) bytes naming what the stream is for
    /// (see [`ChunkSealer::with_context`]). A non-empty context makes a version-2
    /// stream; an empty one, the same version-1 stream as [`EncryptWriter::new`].
    pub fn with_context(
        key: &StreamKey,
        key_id: &str,
        context: &[u8],
        chunk_size: u32,
        mut inner: W,
    ) -> io::Result<Self> {
        let sealer = ChunkSealer::with_context(key, key_id, context, chunk_size)?;
        inner.write_all(&sealer.header().to_bytes())?;
        Ok(Self::from_sealer(sealer, inner))
    }

    /// A writer that goes on from a sealer whose header has already been written.
    pub(crate) fn from_sealer(sealer: ChunkSealer, inner: W) -> Self {
        let buffer = SecretBytes::new(vec![0u8; sealer.chunk_size() + TAG_LEN]);
        Self {
            inner,
            sealer,
            buffer,
            pending: 0,
            poisoned: None,
        }
    }

    /// The stream's header.
    pub fn header(&self) -> &Header {
        self.sealer.header()
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Bytes of buffer this writer holds: one chunk and its tag, whatever the length of
    /// the stream.
    pub fn buffer_capacity(&self) -> usize {
        self.buffer.expose().capacity()
    }

    /// Seals and writes the final chunk (holding whatever is pending, possibly nothing),
    /// flushes `inner`, and returns it.
    pub fn finish(mut self) -> io::Result<W> {
        self.check_usable()?;
        self.seal_pending(true)?;
        self.inner.flush()?;
        let Self { inner, .. } = self;
        Ok(inner)
    }

    fn check_usable(&self) -> io::Result<()> {
        match &self.poisoned {
            None => Ok(()),
            Some(reason) => Err(StreamError::Poisoned(reason.clone()).into()),
        }
    }

    fn poison<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            self.poisoned = Some(e.to_string());
        }
        result
    }

    /// Seals the pending plaintext in place and writes it out.
    fn seal_pending(&mut self, last: bool) -> io::Result<()> {
        let full = self.buffer.len();
        let buffer = self.buffer.expose_mut();
        buffer.truncate(self.pending);
        let sealed = self.sealer.seal_in_place(buffer, last);
        let result = match sealed {
            Ok(()) => self.inner.write_all(buffer),
            Err(e) => Err(e.into()),
        };
        // For a full chunk this only restores the length: sealing appended the tag.
        buffer.resize(full, 0);
        self.pending = 0;
        self.poison(result)
    }

    /// Seals one whole chunk straight from `plaintext` and writes it out.
    fn seal_direct(&mut self, plaintext: &[u8]) -> io::Result<()> {
        let result = match self
            .sealer
            .seal_to(plaintext, self.buffer.expose_mut(), false)
        {
            Ok(()) => self.inner.write_all(self.buffer.expose()),
            Err(e) => Err(e.into()),
        };
        self.poison(result)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        self.check_usable()?;
        let chunk = self.sealer.chunk_size();
        let accepted = data.len();
        while !data.is_empty() {
            if self.pending == chunk {
                // More data follows this full chunk, so it is not the final one.
                self.seal_pending(false)?;
            } else if self.pending == 0 && data.len() > chunk {
                // A whole chunk with more after it: no need to copy it first.
                let (whole, rest) = data.split_at(chunk);
                self.seal_direct(whole)?;
                data = rest;
            } else {
                let take = (chunk - self.pending).min(data.len());
                let (part, rest) = data.split_at(take);
                self.buffer.expose_mut()[self.pending..self.pending + take].copy_from_slice(part);
                self.pending += take;
                data = rest;
            }
        }
        Ok(accepted)
    }

    /// Flushes `inner`. Pending plaintext stays pending: a chunk is sealed only once it
    /// is full and more follows, or by [`EncryptWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.check_usable()?;
        self.inner.flush()
    }
}
