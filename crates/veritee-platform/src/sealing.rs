//! Sealed blobs: data encrypted under a platform sealing key, openable only by an
//! enclave the seal policy admits, on the same machine.
//!
//! ```text
//! SealedBlob v1
//! offset  size  field
//! 0x00       4  magic "VTSB"
//! 0x04       2  version = 1
//! 0x06       1  seal policy: 1 measurement, 2 signer
//! 0x07       1  reserved, zero
//! 0x08      16  key id: random, diversifies the sealing key per blob
//! 0x18      12  AES-GCM nonce
//! 0x24       *  ciphertext || 16-byte tag; associated data = bytes 0x00..0x24 || caller AAD
//! ```

use crate::{Platform, PlatformError, SealPolicy};
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::{NONCE_LEN, TAG_LEN};

/// Magic at offset 0.
pub const MAGIC: [u8; 4] = *b"VTSB";
/// The only version written and read.
pub const VERSION: u16 = 1;
/// Header length.
pub const HEADER_LEN: usize = 0x24;
/// Largest plaintext sealed in one blob.
pub const MAX_PLAINTEXT: usize = 64 * 1024 * 1024;

const KEY_LABEL: &[u8] = b"veritee sealed blob v1";

fn key_label(key_id: &[u8; 16]) -> Vec<u8> {
    let mut label = KEY_LABEL.to_vec();
    label.extend_from_slice(key_id);
    label
}

/// Seals `plaintext` so that only an enclave admitted by `policy` on this machine opens it.
pub fn seal(
    platform: &dyn Platform,
    policy: SealPolicy,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, PlatformError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(PlatformError::InvalidInput(format!(
            "cannot seal {} bytes in one blob; at most {MAX_PLAINTEXT}",
            plaintext.len()
        )));
    }
    let key_id: [u8; 16] = veritee_crypto::rand::array()?;
    let nonce: [u8; NONCE_LEN] = veritee_crypto::rand::array()?;
    let mut blob = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    blob.extend_from_slice(&MAGIC);
    blob.extend_from_slice(&VERSION.to_le_bytes());
    blob.push(policy.code());
    blob.push(0);
    blob.extend_from_slice(&key_id);
    blob.extend_from_slice(&nonce);
    let mut full_aad = blob.clone();
    full_aad.extend_from_slice(aad);
    let key = platform.sealing_key(policy, &key_label(&key_id))?;
    let ciphertext = key.seal(&nonce, &full_aad, plaintext)?;
    blob.extend_from_slice(&ciphertext);
    Ok(blob)
}

/// Opens a blob made by [`seal`] with the same `aad`.
pub fn unseal(
    platform: &dyn Platform,
    aad: &[u8],
    blob: &[u8],
) -> Result<SecretBytes, PlatformError> {
    if blob.len() < HEADER_LEN + TAG_LEN {
        return Err(PlatformError::Unseal(format!(
            "{} bytes is shorter than the {} of an empty sealed blob",
            blob.len(),
            HEADER_LEN + TAG_LEN
        )));
    }
    if blob[0..4] != MAGIC {
        return Err(PlatformError::Unseal(
            "not a sealed blob (bad magic)".into(),
        ));
    }
    let version = u16::from_le_bytes([blob[4], blob[5]]);
    if version != VERSION {
        return Err(PlatformError::Unseal(format!(
            "unsupported sealed blob version {version}"
        )));
    }
    let policy = SealPolicy::from_code(blob[6])
        .ok_or_else(|| PlatformError::Unseal(format!("unknown seal policy {}", blob[6])))?;
    if blob[7] != 0 {
        return Err(PlatformError::Unseal(
            "reserved header byte is not zero".into(),
        ));
    }
    let mut key_id = [0u8; 16];
    key_id.copy_from_slice(&blob[8..24]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&blob[24..36]);
    let mut full_aad = blob[..HEADER_LEN].to_vec();
    full_aad.extend_from_slice(aad);
    let key = platform.sealing_key(policy, &key_label(&key_id))?;
    key.open(&nonce, &full_aad, &blob[HEADER_LEN..]).map_err(|_| {
        PlatformError::Unseal(
            "authentication failed: sealed by another enclave or machine, for other associated data, or altered".into(),
        )
    })
}
