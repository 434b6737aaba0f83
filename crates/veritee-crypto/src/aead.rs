//! AES-256-GCM authenticated encryption.
//!
//! Nonces are the caller's responsibility where they are structured (streams use a
//! counter); [`AeadKey::seal_with_random_nonce`] is for single messages.

use crate::{Confidential, CryptoError, SecretBytes};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// Length of an AES-256-GCM key.
pub const KEY_LEN: usize = 32;
/// Length of a GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of a GCM tag.
pub const TAG_LEN: usize = 16;

/// An AES-256-GCM key. Zeroized on drop, never printed.
pub struct AeadKey {
    raw: Confidential<[u8; KEY_LEN]>,
    key: LessSafeKey,
}

impl core::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

impl Clone for AeadKey {
    fn clone(&self) -> Self {
        Self::from_array(self.raw.clone())
    }
}

impl AeadKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self::from_array(crate::rand::secret_array()?))
    }

    /// A key from 32 secret bytes.
    pub fn from_array(raw: Confidential<[u8; KEY_LEN]>) -> Self {
        // A 32-byte key is always accepted by AES-256-GCM.
        let unbound = UnboundKey::new(&AES_256_GCM, raw.expose())
            .unwrap_or_else(|_| unreachable!("AES-256-GCM accepts every 32-byte key"));
        Self {
            raw,
            key: LessSafeKey::new(unbound),
        }
    }

    /// A key from a byte slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::KeyLength {
            what: "AES-256-GCM key",
            expected: KEY_LEN,
            actual: bytes.len(),
        })?;
        Ok(Self::from_array(Confidential::new(arr)))
    }

    /// The raw key, for wrapping or sealing it.
    pub fn expose(&self) -> &Confidential<[u8; KEY_LEN]> {
        &self.raw
    }

    /// Encrypts `buffer` in place and appends the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buffer)
            .map_err(|_| CryptoError::Operation("AES-GCM encryption"))
    }

    /// Encrypts `in_out` in place and returns its tag, for callers that place the tag
    /// themselves (several sealed records gathered in one buffer).
    pub fn seal_in_place_separate_tag(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                in_out,
            )
            .map_err(|_| CryptoError::Operation("AES-GCM encryption"))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Encrypts `plaintext` into `out`, which must be exactly `plaintext.len() + TAG_LEN`
    /// bytes: ciphertext followed by the tag. `plaintext` is left untouched.
    pub fn seal_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if out.len() != plaintext.len() + TAG_LEN {
            return Err(CryptoError::OutputLength {
                what: "AES-GCM sealing buffer",
                requested: out.len(),
                maximum: plaintext.len() + TAG_LEN,
            });
        }
        let (ciphertext, tag) = out.split_at_mut(plaintext.len());
        self.key
            .seal_out_of_place_scatter(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                plaintext,
                ciphertext,
                &[],
                tag,
            )
            .map_err(|_| CryptoError::Operation("AES-GCM encryption"))
    }

    /// Decrypts ciphertext-with-tag into `out`, which must be exactly
    /// `ciphertext_and_tag.len() - TAG_LEN` bytes. The input is left untouched, so a
    /// caller can try it again; on failure `out` holds no plaintext.
    pub fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let Some(len) = ciphertext_and_tag.len().checked_sub(TAG_LEN) else {
            return Err(CryptoError::CiphertextTooShort {
                minimum: TAG_LEN,
                actual: ciphertext_and_tag.len(),
            });
        };
        if out.len() != len {
            return Err(CryptoError::OutputLength {
                what: "AES-GCM opening buffer",
                requested: out.len(),
                maximum: len,
            });
        }
        let (ciphertext, tag) = ciphertext_and_tag.split_at(len);
        self.key
            .open_separate_gather(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                ciphertext,
                tag,
                out,
            )
            .map_err(|_| {
                zeroize::Zeroize::zeroize(out);
                CryptoError::Decrypt
            })
    }

    /// Encrypts `plaintext`, returning ciphertext followed by the tag.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut buffer = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buffer.extend_from_slice(plaintext);
        self.seal_in_place(nonce, aad, &mut buffer)?;
        Ok(buffer)
    }

    /// Decrypts ciphertext-with-tag in place; returns the plaintext prefix of `buffer`.
    pub fn open_in_place<'b>(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &'b mut [u8],
    ) -> Result<&'b mut [u8], CryptoError> {
        if buffer.len() < TAG_LEN {
            return Err(CryptoError::CiphertextTooShort {
                minimum: TAG_LEN,
                actual: buffer.len(),
            });
        }
        self.key
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buffer)
            .map_err(|_| CryptoError::Decrypt)
    }

    /// Decrypts ciphertext-with-tag into a secret buffer.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let mut buffer = SecretBytes::copy_from(ciphertext);
        let len = self.open_in_place(nonce, aad, buffer.expose_mut())?.len();
        buffer.expose_mut().truncate(len);
        Ok(buffer)
    }

    /// Encrypts one message under a fresh random nonce: output is `nonce || ciphertext || tag`.
    pub fn seal_with_random_nonce(
        &self,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce: [u8; NONCE_LEN] = crate::rand::array()?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(NONCE_LEN);
        self.seal_in_place(&nonce, aad, &mut body)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens the output of [`AeadKey::seal_with_random_nonce`].
    pub fn open_with_nonce_prefix(
        &self,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::CiphertextTooShort {
                minimum: NONCE_LEN + TAG_LEN,
                actual: sealed.len(),
            });
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Decrypt)?;
        self.open(&nonce, aad, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = AeadKey::generate().unwrap();
        let sealed = key.seal_with_random_nonce(b"aad", b"hello").unwrap();
        assert_eq!(
            key.open_with_nonce_prefix(b"aad", &sealed)
                .unwrap()
                .expose(),
            b"hello"
        );
        assert_eq!(
            key.open_with_nonce_prefix(b"aaX", &sealed),
            Err(CryptoError::Decrypt)
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(
                key.open_with_nonce_prefix(b"aad", &bad),
                Err(CryptoError::Decrypt)
            );
        }
        assert!(matches!(
            key.open_with_nonce_prefix(b"aad", &sealed[..10]),
            Err(CryptoError::CiphertextTooShort { .. })
        ));
        let other = AeadKey::generate().unwrap();
        assert_eq!(
            other.open_with_nonce_prefix(b"aad", &sealed),
            Err(CryptoError::Decrypt)
        );
    }

    #[test]
    fn out_of_place_matches_in_place() {
        let key = AeadKey::generate().unwrap();
        let nonce = [9u8; NONCE_LEN];
        let plaintext = b"out of place, same bytes";
        let in_place = key.seal(&nonce, b"aad", plaintext).unwrap();
        let mut out = vec![0u8; plaintext.len() + TAG_LEN];
        key.seal_to(&nonce, b"aad", plaintext, &mut out).unwrap();
        assert_eq!(out, in_place);
        assert!(matches!(
            key.seal_to(&nonce, b"aad", plaintext, &mut out[1..]),
            Err(CryptoError::OutputLength { .. })
        ));

        let mut opened = vec![0u8; plaintext.len()];
        key.open_to(&nonce, b"aad", &in_place, &mut opened).unwrap();
        assert_eq!(opened, plaintext);
        let mut bad = in_place.clone();
        bad[0] ^= 1;
        assert_eq!(
            key.open_to(&nonce, b"aad", &bad, &mut opened),
            Err(CryptoError::Decrypt)
        );
        assert!(opened.iter().all(|&b| b == 0), "no plaintext after failure");
        // The input survives a failed attempt and opens once repaired.
        bad[0] ^= 1;
        key.open_to(&nonce, b"aad", &bad, &mut opened).unwrap();
        assert_eq!(opened, plaintext);
        assert!(matches!(
            key.open_to(&nonce, b"aad", &in_place[..TAG_LEN - 1], &mut []),
            Err(CryptoError::CiphertextTooShort { .. })
        ));
        assert!(matches!(
            key.open_to(&nonce, b"aad", &in_place, &mut opened[1..]),
            Err(CryptoError::OutputLength { .. })
        ));
    }

    #[test]
    fn wrong_key_length_is_named() {
        let err = AeadKey::from_slice(&[0u8; 16]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AES-256-GCM key must be 32 bytes long, got 16"
        );
    }

    #[test]
    fn debug_redacts() {
        let key = AeadKey::from_slice(&[0x41; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "AeadKey(<redacted>)");
    }
}
