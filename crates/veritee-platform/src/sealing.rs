//! Sealed blobs: data encrypted under a platform sealing key, openable only by an
//! enclave the seal policy admits, on the same machine, at the sealer's security
//! version or a newer one.
//!
//! ```text
//! SealedBlob v2
//! offset  size  field
//! 0x00       4  magic "VTSB"
//! 0x04       2  format version = 2 (u16 LE)
//! 0x06       1  seal policy: 1 measurement, 2 signer
//! 0x07       1  reserved, zero
//! 0x08       2  security version of the enclave that sealed (u16 LE)
//! 0x0a      16  key id: random, diversifies the sealing key per blob
//! 0x1a      12  AES-GCM nonce
//! 0x26       *  ciphertext || 16-byte tag; associated data = bytes 0x00..0x26 || caller AAD
//! ```
//!
//! The key is [`Platform::sealing_key_at`] the security version in the header, so an
//! enclave older than the sealer (a lower security version) cannot derive it and is
//! refused before any decryption is tried, while newer builds derive the old key and
//! read what their predecessors sealed. The header is authenticated: changing the
//! security version field derives another key and fails authentication.
//!
//! Version 1 (without the security version) is no longer read: no deployment holds
//! such blobs, and reading them would let a downgraded build open them.

use crate::{Platform, PlatformError, SealPolicy};
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::{NONCE_LEN, TAG_LEN};

/// Magic at offset 0.
pub const MAGIC: [u8; 4] = *b"VTSB";
/// The only format version written and read.
pub const VERSION: u16 = 2;
/// Length of the random key id.
pub const KEY_ID_LEN: usize = 16;
/// Largest plaintext sealed in one blob.
pub const MAX_PLAINTEXT: usize = 64 * 1024 * 1024;

const MAGIC_OFFSET: usize = 0x00;
const VERSION_OFFSET: usize = 0x04;
const VERSION_LEN: usize = 2;
const POLICY_OFFSET: usize = 0x06;
const RESERVED_OFFSET: usize = 0x07;
const SVN_OFFSET: usize = 0x08;
const SVN_LEN: usize = 2;
const KEY_ID_OFFSET: usize = 0x0a;
const NONCE_OFFSET: usize = 0x1a;

/// Header length: everything before the ciphertext.
pub const HEADER_LEN: usize = 0x26;
/// Shortest blob: a header and the tag of an empty plaintext.
pub const MIN_BLOB_LEN: usize = HEADER_LEN + TAG_LEN;
/// Longest blob: a header and the ciphertext of [`MAX_PLAINTEXT`] bytes with its tag.
pub const MAX_BLOB_LEN: usize = HEADER_LEN + MAX_PLAINTEXT + TAG_LEN;

// The fields are contiguous, in the order drawn above, and end at HEADER_LEN.
const _: () = assert!(MAGIC_OFFSET + MAGIC.len() == VERSION_OFFSET);
const _: () = assert!(VERSION_OFFSET + VERSION_LEN == POLICY_OFFSET);
const _: () = assert!(POLICY_OFFSET + 1 == RESERVED_OFFSET);
const _: () = assert!(RESERVED_OFFSET + 1 == SVN_OFFSET);
const _: () = assert!(SVN_OFFSET + SVN_LEN == KEY_ID_OFFSET);
const _: () = assert!(KEY_ID_OFFSET + KEY_ID_LEN == NONCE_OFFSET);
const _: () = assert!(NONCE_OFFSET + NONCE_LEN == HEADER_LEN);
const _: () = assert!(VERSION_LEN == size_of::<u16>() && SVN_LEN == size_of::<u16>());

const KEY_LABEL: &[u8] = b"veritee sealed blob v2";

fn key_label(key_id: &[u8; KEY_ID_LEN]) -> Vec<u8> {
    let mut label = KEY_LABEL.to_vec();
    label.extend_from_slice(key_id);
    label
}

/// The fields of a blob's header.
struct Header {
    policy: SealPolicy,
    security_version: u16,
    key_id: [u8; KEY_ID_LEN],
    nonce: [u8; NONCE_LEN],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(&MAGIC);
        out[VERSION_OFFSET..POLICY_OFFSET].copy_from_slice(&VERSION.to_le_bytes());
        out[POLICY_OFFSET] = self.policy.code();
        out[RESERVED_OFFSET] = 0;
        out[SVN_OFFSET..KEY_ID_OFFSET].copy_from_slice(&self.security_version.to_le_bytes());
        out[KEY_ID_OFFSET..NONCE_OFFSET].copy_from_slice(&self.key_id);
        out[NONCE_OFFSET..HEADER_LEN].copy_from_slice(&self.nonce);
        out
    }

    fn decode(header: &[u8; HEADER_LEN]) -> Result<Self, PlatformError> {
        if header[MAGIC_OFFSET..VERSION_OFFSET] != MAGIC {
            return Err(PlatformError::Unseal(
                "not a sealed blob (bad magic)".into(),
            ));
        }
        let version = u16::from_le_bytes([header[VERSION_OFFSET], header[VERSION_OFFSET + 1]]);
        if version == 1 {
            return Err(PlatformError::Unseal(
                "unsupported sealed blob version 1: it predates binding sealed data to the \
                 sealer's security version, and this build reads only version 2"
                    .into(),
            ));
        }
        if version != VERSION {
            return Err(PlatformError::Unseal(format!(
                "unsupported sealed blob version {version}; this build reads only version {VERSION}"
            )));
        }
        let policy = SealPolicy::from_code(header[POLICY_OFFSET]).ok_or_else(|| {
            PlatformError::Unseal(format!("unknown seal policy {}", header[POLICY_OFFSET]))
        })?;
        if header[RESERVED_OFFSET] != 0 {
            return Err(PlatformError::Unseal(
                "reserved header byte is not zero".into(),
            ));
        }
        let security_version = u16::from_le_bytes([header[SVN_OFFSET], header[SVN_OFFSET + 1]]);
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&header[KEY_ID_OFFSET..NONCE_OFFSET]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[NONCE_OFFSET..HEADER_LEN]);
        Ok(Self {
            policy,
            security_version,
            key_id,
            nonce,
        })
    }
}

/// Seals `plaintext` so that only an enclave admitted by `policy` on this machine, at
/// this enclave's security version or a newer one, opens it.
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
    let header = Header {
        policy,
        security_version: platform.identity().security_version,
        key_id: veritee_crypto::rand::array()?,
        nonce: veritee_crypto::rand::array()?,
    };
    let header_bytes = header.encode();
    let key =
        platform.sealing_key_at(policy, header.security_version, &key_label(&header.key_id))?;
    let mut full_aad = header_bytes.to_vec();
    full_aad.extend_from_slice(aad);
    let ciphertext = key.seal(&header.nonce, &full_aad, plaintext)?;
    let mut blob = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    blob.extend_from_slice(&header_bytes);
    blob.extend_from_slice(&ciphertext);
    Ok(blob)
}

/// Opens a blob made by [`seal`] with the same `aad`.
///
/// A blob sealed by a newer build (a security version above this enclave's) is refused
/// with a [`PlatformError::Unseal`] naming both versions; an older build's blob is
/// opened with the key of its version.
pub fn unseal(
    platform: &dyn Platform,
    aad: &[u8],
    blob: &[u8],
) -> Result<SecretBytes, PlatformError> {
    if blob.len() < MIN_BLOB_LEN {
        return Err(PlatformError::Unseal(format!(
            "{} bytes is shorter than the {MIN_BLOB_LEN} of an empty sealed blob",
            blob.len()
        )));
    }
    if blob.len() > MAX_BLOB_LEN {
        return Err(PlatformError::Unseal(format!(
            "{} bytes is longer than the {MAX_BLOB_LEN} of the largest sealed blob",
            blob.len()
        )));
    }
    let (header_bytes, ciphertext) = blob.split_at(HEADER_LEN);
    let header_array: &[u8; HEADER_LEN] = header_bytes
        .try_into()
        .map_err(|_| PlatformError::Unseal("truncated header".into()))?;
    let header = Header::decode(header_array)?;
    let own = platform.identity().security_version;
    if header.security_version > own {
        return Err(PlatformError::Unseal(format!(
            "sealed by a newer build (security version {}); this build is version {own} and \
             cannot open it",
            header.security_version
        )));
    }
    let key = platform.sealing_key_at(
        header.policy,
        header.security_version,
        &key_label(&header.key_id),
    )?;
    let mut full_aad = header_bytes.to_vec();
    full_aad.extend_from_slice(aad);
    key.open(&header.nonce, &full_aad, ciphertext).map_err(|_| {
        PlatformError::Unseal(
            "authentication failed: sealed by another enclave or machine, for other associated \
             data, or altered"
                .into(),
        )
    })
}
