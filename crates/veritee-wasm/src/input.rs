//! Task inputs: named byte sources a compartment reads through `veritee.input_read`.
//!
//! Inputs are never copied into the engine as a whole: the guest pulls the bytes it
//! asks for, chunk by chunk, straight from the [`InputSource`] into its own linear
//! memory. An input held in memory ([`Arc<[u8]>`]) is shared, not cloned, by every
//! compartment allowed to read it; an input backed by a file ([`FileInput`]) or by a
//! decrypting reader written by the caller costs only that reader's buffers, so a
//! 1 GB input does not need 1 GB of engine memory.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Random-access source of an input's plaintext bytes.
///
/// Implementations must be cheap to call with small buffers (guests typically read
/// 64 KiB at a time) and must return the same bytes for the same offset every time.
pub trait InputSource: Send + Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Whether the input is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies bytes starting at `offset` into `buf`, returning how many were copied:
    /// `min(buf.len(), len() - offset)`, and 0 when `offset >= len()`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl InputSource for Arc<[u8]> {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(copy_from_slice(self, offset, buf))
    }
}

/// A secret input (an application call's), wiped when the last handle goes.
impl InputSource for veritee_crypto::SecretBytes {
    fn len(&self) -> u64 {
        veritee_crypto::SecretBytes::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(copy_from_slice(self.expose(), offset, buf))
    }
}

impl InputSource for Vec<u8> {
    fn len(&self) -> u64 {
        Vec::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(copy_from_slice(self, offset, buf))
    }
}

fn copy_from_slice(data: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let Ok(start) = usize::try_from(offset) else {
        return 0;
    };
    if start >= data.len() {
        return 0;
    }
    let n = buf.len().min(data.len() - start);
    buf[..n].copy_from_slice(&data[start..start + n]);
    n
}

/// An input read from a file on demand (the file is opened once; nothing is
/// buffered beyond what each read asks for).
pub struct FileInput {
    file: Mutex<File>,
    len: u64,
}

impl FileInput {
    /// Opens `path` and records its length.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileInput {
            file: Mutex::new(file),
            len,
        })
    }
}

impl InputSource for FileInput {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        let mut file = self
            .file
            .lock()
            .map_err(|_| io::Error::other("input file lock poisoned"))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut done = 0;
        while done < want {
            match file.read(&mut buf[done..want])? {
                0 => break,
                n => done += n,
            }
        }
        Ok(done)
    }
}

/// One named input of a compartment.
#[derive(Clone)]
pub struct Input {
    /// Name the task gives the input (for results and manifests; guests address
    /// inputs by index, in declaration order).
    pub name: String,
    /// Where the plaintext bytes come from.
    pub source: Arc<dyn InputSource>,
}

impl Input {
    /// An input held in memory. `Arc<[u8]>`, `Vec<u8>` and `&[u8]` all fit;
    /// pass an `Arc<[u8]>` to share one copy between tasks.
    pub fn from_bytes(name: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        Input {
            name: name.into(),
            source: Arc::new(bytes.into()),
        }
    }

    /// An input backed by any [`InputSource`].
    pub fn from_source(name: impl Into<String>, source: Arc<dyn InputSource>) -> Self {
        Input {
            name: name.into(),
            source,
        }
    }

    /// Length of the input in bytes.
    pub fn len(&self) -> u64 {
        self.source.len()
    }

    /// Whether the input is empty.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }
}

impl fmt::Debug for Input {
    // Never prints the bytes: inputs are the client's plaintext.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_are_clamped() {
        let src: Arc<[u8]> = Arc::from(&b"hello"[..]);
        let mut buf = [0u8; 4];
        assert_eq!(src.read_at(0, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"hell");
        assert_eq!(src.read_at(3, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"lo");
        assert_eq!(src.read_at(5, &mut buf).unwrap(), 0);
        assert_eq!(src.read_at(u64::MAX, &mut buf).unwrap(), 0);
    }

    #[test]
    fn file_input_reads_at_offsets() {
        let dir = std::env::temp_dir().join(format!("veritee-wasm-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.txt");
        std::fs::write(&path, b"0123456789").unwrap();
        let f = FileInput::open(&path).unwrap();
        assert_eq!(InputSource::len(&f), 10);
        let mut buf = [0u8; 4];
        assert_eq!(f.read_at(8, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"89");
        assert_eq!(f.read_at(2, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"2345");
        assert_eq!(f.read_at(10, &mut buf).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_hides_bytes() {
        let i = Input::from_bytes("secret", &b"canary-bytes"[..]);
        let s = format!("{i:?}");
        assert!(!s.contains("canary"), "{s}");
        assert!(s.contains("len: 12"));
    }
}
