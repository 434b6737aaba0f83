//! The envelope of what the enclave encrypts under an imported AES key.
//!
//! ```text
//! Ciphertext v1
//! offset  size  field
//! 0          1  version = 1
//! 1          4  key version, big-endian (which version of the key encrypted it)
//! 5         12  nonce (random)
//! 17         *  AES-256-GCM ciphertext || tag (16)
//! AAD: label || partition || key id || key version || customer's AAD, each
//!      length-prefixed, so a ciphertext opens under no other key id or version.
//! ```

use crate::ImportError;
use crate::keys::KeyRef;
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::{AeadKey, NONCE_LEN, TAG_LEN};

/// Ciphertext format version.
pub const CIPHERTEXT_VERSION: u8 = 1;
/// Bytes a ciphertext adds to its plaintext.
pub const CIPHERTEXT_OVERHEAD: usize = 1 + 4 + NONCE_LEN + TAG_LEN;
const CIPHERTEXT_AAD_LABEL: &[u8] = b"veritee crypto ciphertext v1\0";

fn ciphertext_aad(key: &KeyRef, key_version: u32, aad: &[u8]) -> Vec<u8> {
    let mut out = CIPHERTEXT_AAD_LABEL.to_vec();
    for part in [key.partition.as_bytes(), key.key_id.as_bytes()] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&key_version.to_be_bytes());
    out.extend_from_slice(&(aad.len() as u32).to_be_bytes());
    out.extend_from_slice(aad);
    out
}

/// Encrypts `plaintext` under version `key_version` of key `key_ref`.
pub fn seal(
    key: &AeadKey,
    key_ref: &KeyRef,
    key_version: u32,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, ImportError> {
    let nonce: [u8; NONCE_LEN] = veritee_crypto::rand::array()?;
    let mut out = Vec::with_capacity(CIPHERTEXT_OVERHEAD + plaintext.len());
    out.push(CIPHERTEXT_VERSION);
    out.extend_from_slice(&key_version.to_be_bytes());
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    key.seal_in_place(
        &nonce,
        &ciphertext_aad(key_ref, key_version, aad),
        &mut body,
    )?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The key version a ciphertext names (to pick the key before opening it).
pub fn key_version(ciphertext: &[u8]) -> Result<u32, ImportError> {
    if ciphertext.len() < CIPHERTEXT_OVERHEAD {
        return Err(ImportError::Malformed(format!(
            "a ciphertext of {} bytes is truncated (at least {CIPHERTEXT_OVERHEAD})",
            ciphertext.len()
        )));
    }
    if ciphertext[0] != CIPHERTEXT_VERSION {
        return Err(ImportError::Malformed(format!(
            "ciphertext format {} (this build reads {CIPHERTEXT_VERSION})",
            ciphertext[0]
        )));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&ciphertext[1..5]);
    Ok(u32::from_be_bytes(v))
}

/// Opens a ciphertext made by [`seal`] for the same key, version and AAD.
pub fn open(
    key: &AeadKey,
    key_ref: &KeyRef,
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<SecretBytes, ImportError> {
    let version = key_version(ciphertext)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&ciphertext[5..5 + NONCE_LEN]);
    key.open(
        &nonce,
        &ciphertext_aad(key_ref, version, aad),
        &ciphertext[5 + NONCE_LEN..],
    )
    .map_err(|_| {
        ImportError::Decrypt(format!(
            "the ciphertext does not open under key {key_ref} version {version} with this AAD: it was made under another key or AAD, or altered"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ciphertext_opens_only_under_its_key_id_version_and_aad() {
        let key = AeadKey::generate().unwrap();
        let a = KeyRef::new("payments", "k1");
        let ct = seal(&key, &a, 1, b"order-7", b"canary").unwrap();
        assert_eq!(ct.len(), CIPHERTEXT_OVERHEAD + 6);
        assert_eq!(key_version(&ct).unwrap(), 1);
        assert_eq!(open(&key, &a, b"order-7", &ct).unwrap().expose(), b"canary");
        // The same key material under another id, partition or AAD: refused.
        assert!(open(&key, &KeyRef::new("payments", "k2"), b"order-7", &ct).is_err());
        assert!(open(&key, &KeyRef::new("other", "k1"), b"order-7", &ct).is_err());
        assert!(open(&key, &a, b"order-8", &ct).is_err());
        // A version rewritten in the header, any flipped byte, a truncation: refused.
        for i in 0..ct.len() {
            let mut flipped = ct.clone();
            flipped[i] ^= 1;
            assert!(open(&key, &a, b"order-7", &flipped).is_err(), "byte {i}");
        }
        let err = open(&key, &a, b"order-7", &ct[..10]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
