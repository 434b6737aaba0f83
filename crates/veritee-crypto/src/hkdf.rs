//! HKDF (RFC 5869) with SHA-256 and SHA-384.

use crate::{CryptoError, SecretBytes};
use aws_lc_rs::hkdf;

/// The hash underneath HKDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HkdfHash {
    /// HKDF-SHA256.
    Sha256,
    /// HKDF-SHA384.
    Sha384,
}

impl HkdfHash {
    fn algorithm(self) -> hkdf::Algorithm {
        match self {
            Self::Sha256 => hkdf::HKDF_SHA256,
            Self::Sha384 => hkdf::HKDF_SHA384,
        }
    }

    fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }
}

struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// Derives `out.len()` bytes: HKDF-Expand(HKDF-Extract(salt, ikm), info pieces concatenated).
pub fn derive_into(
    hash: HkdfHash,
    salt: &[u8],
    ikm: &[u8],
    info: &[&[u8]],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let maximum = 255 * hash.output_len();
    if out.len() > maximum || out.is_empty() {
        return Err(CryptoError::OutputLength {
            what: "HKDF",
            requested: out.len(),
            maximum,
        });
    }
    let prk = hkdf::Salt::new(hash.algorithm(), salt).extract(ikm);
    prk.expand(info, OutLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CryptoError::Operation("HKDF expansion"))
}

/// Derives `len` secret bytes.
pub fn derive(
    hash: HkdfHash,
    salt: &[u8],
    ikm: &[u8],
    info: &[&[u8]],
    len: usize,
) -> Result<SecretBytes, CryptoError> {
    let mut out = SecretBytes::new(vec![0u8; len]);
    derive_into(hash, salt, ikm, info, out.expose_mut())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc5869_case_1() {
        let ikm = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
        let salt = unhex("000102030405060708090a0b0c");
        let info = unhex("f0f1f2f3f4f5f6f7f8f9");
        let okm = derive(HkdfHash::Sha256, &salt, &ikm, &[&info[..5], &info[5..]], 42).unwrap();
        assert_eq!(
            okm.expose(),
            &unhex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
    }

    #[test]
    fn output_length_is_bounded() {
        assert!(matches!(
            derive(HkdfHash::Sha256, b"", b"k", &[], 255 * 32 + 1),
            Err(CryptoError::OutputLength { .. })
        ));
        assert!(derive(HkdfHash::Sha384, b"", b"k", &[], 255 * 48).is_ok());
    }
}
