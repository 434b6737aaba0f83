//! Encrypting a stream through [`Write`].

use std::io::{self, Write};

use veritee_crypto::SecretBytes;

use crate::StreamError;
use crate::chunk::{ChunkSealer, TAG_LEN};
use crate::header::Header;
use crate::key::StreamKey;
use crate::parallel::sealing_threads;

/// Most chunks a writer seals at once, whatever the pool's size: its memory is this
/// many chunks at most.
const MAX_BATCH: usize = 32;

/// Encrypts everything written to it into a stream on `W`, holding at most two chunks
/// per sealing thread at a time.
///
/// [`EncryptWriter::finish`] **must** be called when all is written: it seals the final
/// chunk. A writer dropped without it leaves a stream with no final chunk, which every
/// reader rejects as truncated.
///
/// A write of several whole chunks (with more after them) is sealed in batches of two
/// chunks per thread of [`sealing_threads`](crate::sealing_threads) (see
/// [`EncryptWriter::on_threads`]), side by side, straight from the caller's bytes.
/// Smaller writes fill one chunk, sealed on the writing thread once full. The bytes are
/// the same either way.
///
/// `W` is written whole chunks (a batch or one) with `write_all`. An error from
/// `W` is final: the writer is unusable afterwards, since part of a chunk may have
/// been written.
pub struct EncryptWriter<W: Write> {
    inner: W,
    sealer: ChunkSealer,
    /// Chunks sealed per batch: two per thread they are sealed on (one each made every
    /// thread wait for the slowest more often: 1.35-1.48x one thread instead of
    /// 1.14-1.30x on two cores; four each lost the cache), or one on one thread.
    batch: usize,
    /// Room for `batch` sealed chunks laid out as they are written (each
    /// `chunk_size + TAG_LEN` bytes, so no chunk needs a fresh or re-zeroed buffer): the
    /// pending chunk's plaintext in `..pending`, or sealed chunks while they are written
    /// out.
    buffer: SecretBytes,
    pending: usize,
    poisoned: Option<String>,
}

impl<W: Write> core::fmt::Debug for EncryptWriter<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EncryptWriter")
            .field("sealer", &self.sealer)
            .field("batch", &self.batch)
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
        // One chunk to start with; a batch once a write is large enough for one.
        let buffer = SecretBytes::new(vec![0u8; sealer.chunk_size() + TAG_LEN]);
        Self {
            inner,
            sealer,
            batch: 1,
            buffer,
            pending: 0,
            poisoned: None,
        }
        .on_threads(sealing_threads())
    }

    /// Seals on at most `threads` threads (at least one: one seals each chunk on the
    /// writing thread), holding up to two chunks per thread. The default is
    /// [`sealing_threads`](crate::sealing_threads).
    pub fn on_threads(mut self, threads: usize) -> Self {
        self.batch = if threads > 1 {
            (2 * threads).min(MAX_BATCH)
        } else {
            1
        };
        self
    }

    /// The stream's header.
    pub fn header(&self) -> &Header {
        self.sealer.header()
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Bytes of buffer this writer holds, whatever the length of the stream: one chunk
    /// and its tag, or two per sealing thread once a write held several whole chunks.
    pub fn buffer_capacity(&self) -> usize {
        self.buffer.expose().capacity()
    }

    /// Seals and writes the final chunk (holding whatever is pending, possibly nothing),
    /// flushes `inner`, and returns it.
    pub fn finish(mut self) -> io::Result<W> {
        self.check_usable()?;
        self.seal_and_write(self.pending + TAG_LEN, true)?;
        self.inner.flush()?;
        let Self { inner, .. } = self;
        Ok(inner)
    }

    fn stride(&self) -> usize {
        self.sealer.chunk_size() + TAG_LEN
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

    /// Seals the pending chunk in place (its plaintext and room for its tag, the first
    /// `laid_out` bytes of the buffer) and writes it out.
    fn seal_and_write(&mut self, laid_out: usize, last: bool) -> io::Result<()> {
        let region = &mut self.buffer.expose_mut()[..laid_out];
        let result = match self.sealer.seal_laid_out(region, last) {
            Ok(()) => self.inner.write_all(region),
            Err(e) => Err(e.into()),
        };
        self.pending = 0;
        self.poison(result)
    }

    /// Seals whole chunks straight from `plaintext`, at most a batch, side by side,
    /// into the buffer and writes them out.
    fn seal_direct(&mut self, plaintext: &[u8]) -> io::Result<()> {
        let laid_out = plaintext.len() / self.sealer.chunk_size() * self.stride();
        if self.buffer.len() < laid_out {
            // Nothing is pending. The old buffer goes first (zeroized), so the two are
            // never held at once.
            drop(std::mem::replace(
                &mut self.buffer,
                SecretBytes::new(Vec::new()),
            ));
            self.buffer = SecretBytes::new(vec![0u8; self.batch * self.stride()]);
        }
        let out = &mut self.buffer.expose_mut()[..laid_out];
        let result = match self.sealer.seal_laid_out_to(plaintext, out, false) {
            Ok(()) => self.inner.write_all(out),
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
                self.seal_and_write(self.stride(), false)?;
            } else if self.pending == 0 && data.len() > chunk {
                // Whole chunks with more after them: sealed straight from `data`, a
                // batch at a time, side by side.
                let whole = ((data.len() - 1) / chunk).min(self.batch);
                let (run, rest) = data.split_at(whole * chunk);
                self.seal_direct(run)?;
                data = rest;
            } else {
                // Small writes fill one chunk, sealed on this thread once full: it is
                // in this core's cache, and handing it to another costs more than it
                // saves (BENCHMARKS.md, issue 18, third part).
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
