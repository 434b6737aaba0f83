//! A bounds-checked reader for binary evidence layouts.

use crate::VerifyError;

/// Reads little-endian fields from a byte slice; every read names what it was reading,
/// so a truncated input produces an error saying which field is missing.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, a `what` (e.g. "SGX quote") for error messages.
    pub fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Self {
            what,
            bytes,
            offset: 0,
        }
    }

    /// Current offset from the start.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// Reads `len` bytes.
    pub fn take(&mut self, len: usize, field: &str) -> Result<&'a [u8], VerifyError> {
        if self.remaining() < len {
            return Err(VerifyError::malformed(
                self.what,
                format!(
                    "truncated at offset {:#x}: {field} needs {len} bytes, {} left",
                    self.offset,
                    self.remaining()
                ),
            ));
        }
        let out = &self.bytes[self.offset..self.offset + len];
        self.offset += len;
        Ok(out)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], VerifyError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Reads a little-endian u16.
    pub fn u16_le(&mut self, field: &str) -> Result<u16, VerifyError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian u32.
    pub fn u32_le(&mut self, field: &str) -> Result<u32, VerifyError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian u64.
    pub fn u64_le(&mut self, field: &str) -> Result<u64, VerifyError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), VerifyError> {
        if self.remaining() != 0 {
            return Err(VerifyError::malformed(
                self.what,
                format!(
                    "{} unexpected trailing bytes at offset {:#x}",
                    self.remaining(),
                    self.offset
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_names_the_field() {
        let mut r = Reader::new("test layout", &[1, 0, 2]);
        assert_eq!(r.u16_le("version").unwrap(), 1);
        let err = r.u32_le("flags").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed test layout: truncated at offset 0x2: flags needs 4 bytes, 1 left"
        );
        assert!(r.finish().is_err());
    }
}
