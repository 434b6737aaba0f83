//! The 64 bytes a workload binds into its evidence.

use crate::VerifyError;
use veritee_crypto::digest::Sha512;

/// Length of report data in every veritee evidence format.
pub const REPORT_DATA_LEN: usize = 64;

/// 64 bytes of report data.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportData(pub [u8; REPORT_DATA_LEN]);

impl core::fmt::Debug for ReportData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ReportData({})", hex::encode(self.0))
    }
}

impl ReportData {
    /// Report data from a slice of at most 64 bytes, zero-padded on the right
    /// (as SGX and TDX tools do with short user data).
    pub fn from_slice_padded(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > REPORT_DATA_LEN {
            return Err(VerifyError::InvalidInput(format!(
                "report data is {} bytes; at most {REPORT_DATA_LEN} fit",
                bytes.len()
            )));
        }
        let mut out = [0u8; REPORT_DATA_LEN];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// Parses hex (with or without `0x`), at most 64 bytes, zero-padded.
    pub fn from_hex(text: &str) -> Result<Self, VerifyError> {
        let bytes = hex::decode(text.trim().trim_start_matches("0x"))
            .map_err(|e| VerifyError::InvalidInput(format!("report data is not hex: {e}")))?;
        Self::from_slice_padded(&bytes)
    }

    /// The binding veritee uses to tie a public key to a fresh exchange:
    /// `SHA-512(label || len(public_key) || public_key || nonce)`, so that neither the key
    /// nor the nonce can be swapped or re-split.
    pub fn binding(label: &[u8], public_key: &[u8], nonce: &[u8]) -> Self {
        let mut h = Sha512::default();
        h.update(label);
        h.update(&(public_key.len() as u64).to_be_bytes());
        h.update(public_key);
        h.update(nonce);
        Self(h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_limits() {
        let rd = ReportData::from_hex("0x0102").unwrap();
        assert_eq!(&rd.0[..3], &[1, 2, 0]);
        assert!(ReportData::from_slice_padded(&[0; 65]).is_err());
        assert!(ReportData::from_hex("zz").is_err());
    }

    #[test]
    fn binding_separates_key_and_nonce() {
        let a = ReportData::binding(b"l", b"ab", b"c");
        let b = ReportData::binding(b"l", b"a", b"bc");
        assert_ne!(a, b);
        assert_ne!(a, ReportData::binding(b"m", b"ab", b"c"));
    }
}
