//! Sizes and fixed fields of the version 1 file (see the crate documentation for the
//! picture), and the cursor that reads them and refuses what does not fit.

use crate::error::WorkloadError;

/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// magic, version, reserved, workload id, payload nonce, payload length.
pub const HEADER_LEN: usize = 4 + 2 + 2 + 16 + 12 + 8;
/// The HMAC after the payload.
pub const HMAC_LEN: usize = 32;
/// The largest payload (ciphertext and tag) a file may carry.
pub const MAX_PAYLOAD_LEN: u64 = 1 << 30;
/// Most authorizations one file carries.
pub const MAX_SLOTS: usize = 1024;
/// Most components one workload holds.
pub const MAX_COMPONENTS: usize = 64;
/// The longest component name.
pub const MAX_NAME_LEN: usize = 64;

pub(crate) const MAGIC: &[u8; 4] = b"VTWL";
pub(crate) const SLOT_MAGIC: &[u8; 4] = b"VTSL";
/// Slot area magic and count.
pub(crate) const SLOT_AREA_HEADER_LEN: usize = 4 + 2;
const _: () = assert!(HEADER_LEN == 44);

/// Reads fields front to back, naming the part that is cut short.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WorkloadError> {
        if self.bytes.len() < n {
            return Err(WorkloadError::Truncated {
                what: self.what,
                needed: n - self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], WorkloadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WorkloadError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, WorkloadError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, WorkloadError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn finish(self) -> Result<(), WorkloadError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(WorkloadError::TrailingBytes(n)),
        }
    }
}
