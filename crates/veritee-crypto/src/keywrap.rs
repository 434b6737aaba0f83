//! AES key wrap with padding (RFC 5649 / NIST SP 800-38F KWP).
//!
//! Used where a key encrypts another key and the result must be deterministic and
//! nonce-free (wrapped data keys inside tasks and workloads).

use crate::{Confidential, CryptoError, SecretBytes};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};

/// Largest key this module wraps; anything bigger is not a key.
pub const MAX_WRAPPED_KEY_LEN: usize = 4096;

/// A 256-bit key-encryption key.
pub struct KeyEncryptionKey(Confidential<[u8; 32]>);

impl core::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

impl KeyEncryptionKey {
    /// A key-encryption key from 32 secret bytes.
    pub fn new(raw: Confidential<[u8; 32]>) -> Self {
        Self(raw)
    }

    /// A key-encryption key from a slice that must be 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::KeyLength {
            what: "key-encryption key",
            expected: 32,
            actual: bytes.len(),
        })?;
        Ok(Self(Confidential::new(arr)))
    }

    fn kek(&self) -> Result<AesKek, CryptoError> {
        AesKek::new(&AES_256, self.0.expose()).map_err(|_| CryptoError::InvalidKey("key-encryption key"))
    }

    /// Wraps `key` (1 to 4096 bytes). The output is 8 to 15 bytes longer than the input.
    pub fn wrap(&self, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if key.is_empty() || key.len() > MAX_WRAPPED_KEY_LEN {
            return Err(CryptoError::OutputLength {
                what: "key wrap input",
                requested: key.len(),
                maximum: MAX_WRAPPED_KEY_LEN,
            });
        }
        let mut out = vec![0u8; key.len() + 16];
        let len = self
            .kek()?
            .wrap_with_padding(key, &mut out)
            .map_err(|_| CryptoError::Operation("AES key wrap"))?
            .len();
        out.truncate(len);
        Ok(out)
    }

    /// Unwraps a key wrapped by [`KeyEncryptionKey::wrap`].
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
        if wrapped.len() < 16 || !wrapped.len().is_multiple_of(8) || wrapped.len() > MAX_WRAPPED_KEY_LEN + 16 {
            return Err(CryptoError::Unwrap);
        }
        let mut out = SecretBytes::new(vec![0u8; wrapped.len()]);
        let len = self
            .kek()?
            .unwrap_with_padding(wrapped, out.expose_mut())
            .map_err(|_| CryptoError::Unwrap)?
            .len();
        out.expose_mut().truncate(len);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_tamper() {
        let kek = KeyEncryptionKey::from_slice(&[9u8; 32]).unwrap();
        for len in [1usize, 7, 8, 16, 32, 33, 64] {
            let key: Vec<u8> = (0..len as u8).collect();
            let wrapped = kek.wrap(&key).unwrap();
            assert_eq!(kek.unwrap(&wrapped).unwrap().expose(), &key);
            let mut bad = wrapped.clone();
            bad[3] ^= 0x80;
            assert_eq!(kek.unwrap(&bad).unwrap_err(), CryptoError::Unwrap);
            assert_eq!(kek.unwrap(&wrapped[..wrapped.len() - 8]).unwrap_err(), CryptoError::Unwrap);
        }
        let other = KeyEncryptionKey::from_slice(&[8u8; 32]).unwrap();
        assert_eq!(other.unwrap(&kek.wrap(b"k").unwrap()).unwrap_err(), CryptoError::Unwrap);
        assert!(kek.wrap(&[]).is_err());
        assert!(kek.wrap(&vec![0; MAX_WRAPPED_KEY_LEN + 1]).is_err());
    }
}
