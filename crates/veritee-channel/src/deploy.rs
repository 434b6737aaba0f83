//! Deploying a user data key into an enclave, online or offline.
//!
//! The client encrypts its key to the enclave's attested wrapping key with HPKE; the
//! header (which wrapping key, which tenant, which name, what use, who may receive a
//! replica) is the associated data, so none of it can be changed in transit.
//!
//! ```text
//! WrappedKey v1
//! offset  size  field
//! 0          4  magic "VTWK"
//! 4          1  version = 1
//! 5          1  release policy: 1 same signer, 2 same measurement, 3 never
//! 6          1  intended use: 1 data encryption
//! 7          1  reserved, zero
//! 8         16  wrapping key id (first 16 bytes of SHA-256 of the wrapping public key)
//! 24        16  tenant id
//! 40         1  key name length N (1..=128)
//! 41         N  key name
//! 41+N       *  HPKE: encapsulated key (32) || AES-256-GCM(key) || tag; AAD = bytes 0..41+N
//! ```

use crate::ChannelError;
use crate::ops::check_name;
use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};
use veritee_crypto::{Confidential, SecretBytes};

/// Magic at offset 0.
pub const MAGIC: [u8; 4] = *b"VTWK";
/// Format version.
pub const VERSION: u8 = 1;
/// Length of a user data key.
pub const DATA_KEY_LEN: usize = 32;
/// HPKE `info` of key deployment.
pub const DEPLOY_INFO: &[u8] = b"veritee key deploy v1";
/// Report-data label binding the wrapping key (and the audit key) to a nonce.
pub const WRAPPING_KEY_LABEL: &[u8] = b"veritee wrapping key v1";
/// Label of the import receipt signature.
pub const RECEIPT_LABEL: &[u8] = b"veritee key receipt v1";
const FIXED_HEADER: usize = 41;

/// Who may receive a replica of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleasePolicy {
    /// Enclaves with the same signer and product (the default).
    SameSigner,
    /// Enclaves running exactly the same code.
    SameMeasurement,
    /// No replication.
    Never,
}

impl ReleasePolicy {
    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::SameSigner => 1,
            Self::SameMeasurement => 2,
            Self::Never => 3,
        }
    }

    /// From a wire code.
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Self::SameSigner),
            2 => Some(Self::SameMeasurement),
            3 => Some(Self::Never),
            _ => None,
        }
    }

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SameSigner => "same-signer",
            Self::SameMeasurement => "same-measurement",
            Self::Never => "never",
        }
    }
}

impl core::str::FromStr for ReleasePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "same-signer" => Ok(Self::SameSigner),
            "same-measurement" => Ok(Self::SameMeasurement),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "release policy {other:?}: use same-signer, same-measurement or never"
            )),
        }
    }
}

/// The identifier of a wrapping key: hex of the first 16 bytes of SHA-256 of it.
pub fn wrapping_key_id(public_key: &[u8]) -> String {
    hex::encode(&veritee_crypto::digest::sha256(public_key)[..16])
}

/// The clear header of a wrapped key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKeyHeader {
    /// Release policy.
    pub release: ReleasePolicy,
    /// Wrapping key id, hex.
    pub wrapping_key_id: String,
    /// Tenant id, hex.
    pub tenant_id: String,
    /// Key name.
    pub name: String,
}

fn hex16(s: &str, what: &str) -> Result<[u8; 16], ChannelError> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| ChannelError::Malformed(format!("{what} must be 32 hex digits")))?;
    Ok(out)
}

impl WrappedKeyHeader {
    fn encode(&self) -> Result<Vec<u8>, ChannelError> {
        check_name(&self.name).map_err(ChannelError::Malformed)?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[VERSION, self.release.code(), 1, 0]);
        out.extend_from_slice(&hex16(&self.wrapping_key_id, "wrapping key id")?);
        out.extend_from_slice(&hex16(&self.tenant_id, "tenant id")?);
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
        Ok(out)
    }
}

/// Encrypts `key` to the wrapping key: the result is what travels, online or by hand.
pub fn wrap_key(
    wrapping_key: &HpkePublicKey,
    header: &WrappedKeyHeader,
    key: &Confidential<[u8; DATA_KEY_LEN]>,
) -> Result<Vec<u8>, ChannelError> {
    if header.wrapping_key_id != wrapping_key_id(wrapping_key.as_bytes()) {
        return Err(ChannelError::Protocol(
            "the header names another wrapping key".into(),
        ));
    }
    let mut out = header.encode()?;
    let sealed = hpke::seal(wrapping_key, DEPLOY_INFO, &out, key.expose())?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Reads a wrapped key's header without decrypting.
pub fn parse_header(blob: &[u8]) -> Result<(WrappedKeyHeader, usize), ChannelError> {
    if blob.len() > 4096 {
        return Err(ChannelError::Malformed(format!(
            "a wrapped key of {} bytes is too large",
            blob.len()
        )));
    }
    if blob.len() < FIXED_HEADER || blob[0..4] != MAGIC {
        return Err(ChannelError::Malformed(
            "not a wrapped key (bad magic or truncated)".into(),
        ));
    }
    if blob[4] != VERSION {
        return Err(ChannelError::Malformed(format!(
            "unsupported wrapped key version {}",
            blob[4]
        )));
    }
    let release = ReleasePolicy::from_code(blob[5])
        .ok_or_else(|| ChannelError::Malformed(format!("unknown release policy {}", blob[5])))?;
    if blob[6] != 1 || blob[7] != 0 {
        return Err(ChannelError::Malformed(
            "unknown key use or non-zero reserved byte".into(),
        ));
    }
    let n = blob[40] as usize;
    if blob.len() < FIXED_HEADER + n {
        return Err(ChannelError::Malformed(
            "wrapped key truncated in its name".into(),
        ));
    }
    let name = core::str::from_utf8(&blob[41..41 + n])
        .map_err(|_| ChannelError::Malformed("key name is not UTF-8".into()))?
        .to_string();
    check_name(&name).map_err(ChannelError::Malformed)?;
    Ok((
        WrappedKeyHeader {
            release,
            wrapping_key_id: hex::encode(&blob[8..24]),
            tenant_id: hex::encode(&blob[24..40]),
            name,
        },
        FIXED_HEADER + n,
    ))
}

/// Opens a wrapped key with the wrapping key pair.
pub fn unwrap_key(
    wrapping: &HpkeKeyPair,
    blob: &[u8],
) -> Result<(WrappedKeyHeader, Confidential<[u8; DATA_KEY_LEN]>), ChannelError> {
    let (header, header_len) = parse_header(blob)?;
    let current = wrapping_key_id(wrapping.public_key().as_bytes());
    if header.wrapping_key_id != current {
        return Err(ChannelError::Rejected(format!(
            "the key was wrapped to wrapping key {}, not to this enclave's {current}; fetch the current wrapping key and wrap again",
            header.wrapping_key_id
        )));
    }
    let plain: SecretBytes = hpke::open(
        wrapping,
        DEPLOY_INFO,
        &blob[..header_len],
        &blob[header_len..],
    )
    .map_err(|_| {
        ChannelError::Rejected(
            "the wrapped key does not decrypt: altered, or not wrapped to this enclave".into(),
        )
    })?;
    if plain.len() != DATA_KEY_LEN {
        return Err(ChannelError::Malformed(format!(
            "a data key is {DATA_KEY_LEN} bytes, got {}",
            plain.len()
        )));
    }
    let mut key = Confidential::new([0u8; DATA_KEY_LEN]);
    key.expose_mut().copy_from_slice(plain.expose());
    Ok((header, key))
}

/// What the enclave signs when it accepts a key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Key name.
    pub key: String,
    /// Tenant.
    pub tenant: String,
    /// Hex SHA-256 of the key (a key check value; the key is 256 random bits).
    pub key_digest: String,
    /// The wrapping key it came through.
    pub wrapping_key_id: String,
    /// When, RFC 3339.
    pub time: String,
}

/// The key check value written into receipts.
pub fn key_digest(key: &Confidential<[u8; DATA_KEY_LEN]>) -> String {
    hex::encode(veritee_crypto::digest::sha256(key.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kp: &HpkeKeyPair) -> WrappedKeyHeader {
        WrappedKeyHeader {
            release: ReleasePolicy::SameSigner,
            wrapping_key_id: wrapping_key_id(kp.public_key().as_bytes()),
            tenant_id: "11".repeat(16),
            name: "orders-key".into(),
        }
    }

    #[test]
    fn wrap_unwrap_and_tamper() {
        let kp = HpkeKeyPair::generate();
        let key = Confidential::new([9u8; 32]);
        let blob = wrap_key(&kp.public_key(), &header(&kp), &key).unwrap();
        let (h, k) = unwrap_key(&kp, &blob).unwrap();
        assert_eq!(h, header(&kp));
        assert_eq!(k.expose(), key.expose());
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x02;
            assert!(unwrap_key(&kp, &bad).is_err(), "flip at {i} accepted");
        }
        for cut in [0, 10, 40, 50, blob.len() - 1] {
            assert!(unwrap_key(&kp, &blob[..cut]).is_err());
        }
        // A stale (other) wrapping key is named.
        let other = HpkeKeyPair::generate();
        let err = unwrap_key(&other, &blob).unwrap_err().to_string();
        assert!(err.contains("fetch the current wrapping key"), "{err}");
    }

    #[test]
    fn wrong_key_length_is_refused() {
        let kp = HpkeKeyPair::generate();
        let mut blob = header(&kp).encode().unwrap();
        let sealed = hpke::seal(&kp.public_key(), DEPLOY_INFO, &blob, &[1u8; 16]).unwrap();
        blob.extend_from_slice(&sealed);
        assert!(
            unwrap_key(&kp, &blob)
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
    }
}
