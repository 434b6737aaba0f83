//! Deploying a user data key into an enclave, online or offline.
//!
//! The client encrypts its key to the enclave's attested wrapping key with HPKE. Every
//! field of the header is the HPKE associated data, so none of it can be changed in
//! transit: which wrapping key, node and attested audit key the key was wrapped for,
//! which tenant and name it is deployed under, who may receive a replica (the release
//! relation and the appraisal policy a replica's enclave must meet), and a salted,
//! keyed check value of the key, which receipts repeat so the client knows the
//! enclave holds exactly its key without the check value revealing anything.
//!
//! ```text
//! WrappedKey v2
//! offset   size  field
//! 0           4  magic "VTWK"
//! 4           1  version = 2
//! 5           1  release relation: 1 same signer, 2 same measurement, 3 never
//! 6           1  intended use: 1 data encryption
//! 7           1  reserved, zero
//! 8          16  wrapping key id (first 16 bytes of SHA-256 of the wrapping public key)
//! 24         16  tenant id
//! 40          8  node id
//! 48         32  audit key digest: SHA-256 of the attested audit key (SPKI DER)
//! 80         16  check salt (random)
//! 96         32  key check value: HMAC-SHA-256(key, "veritee key check v1" || salt)
//! 128         2  policy length P, big-endian, 1..=MAX_POLICY_LEN
//! 130         P  policy: the appraisal policy (JSON) every enclave holding a replica must meet
//! 130+P       1  key name length N (1..=128)
//! 131+P       N  key name
//! 131+P+N     *  HPKE: encapsulated key (32) || AES-256-GCM(key) || tag; AAD = every byte before
//! ```

use crate::ChannelError;
use crate::ops::check_name;
use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};
use veritee_crypto::{Confidential, SecretBytes};

/// Magic at offset 0.
pub const MAGIC: [u8; 4] = *b"VTWK";
/// Format version.
pub const VERSION: u8 = 2;
/// Length of a user data key.
pub const DATA_KEY_LEN: usize = 32;
/// HPKE `info` of key deployment.
pub const DEPLOY_INFO: &[u8] = b"veritee key deploy v2";
/// Report-data label binding the wrapping key, the node's keys and its id to a nonce.
pub const WRAPPING_KEY_LABEL: &[u8] = b"veritee wrapping key v2";
/// Label of the import receipt signature.
pub const RECEIPT_LABEL: &[u8] = b"veritee key receipt v2";
/// Longest policy a key carries.
pub const MAX_POLICY_LEN: usize = 16 * 1024;
/// Largest wrapped key.
pub const MAX_WRAPPED_LEN: usize = 20 * 1024;
/// Length of a node id.
pub const NODE_ID_LEN: usize = 8;
/// Length of a check salt.
pub const CHECK_SALT_LEN: usize = 16;
const FIXED_HEADER: usize = 130;
const CHECK_LABEL: &[u8] = b"veritee key check v1";

const _: () = assert!(FIXED_HEADER == 8 + 16 + 16 + NODE_ID_LEN + 32 + CHECK_SALT_LEN + 32 + 2);

/// Who may receive a replica of a key, relative to the enclave holding it.
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

/// A salted, keyed check value of a data key: proves which key is meant without
/// revealing anything of it, and differs for every deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCheck {
    /// Random salt.
    pub salt: [u8; CHECK_SALT_LEN],
    /// HMAC-SHA-256(key, label || salt).
    pub value: [u8; 32],
}

impl KeyCheck {
    /// A check value of `key` under a fresh salt.
    pub fn new(key: &Confidential<[u8; DATA_KEY_LEN]>) -> Result<Self, ChannelError> {
        let salt = veritee_crypto::rand::array()?;
        Ok(Self::with_salt(key, salt))
    }

    /// The check value of `key` under `salt`.
    pub fn with_salt(key: &Confidential<[u8; DATA_KEY_LEN]>, salt: [u8; CHECK_SALT_LEN]) -> Self {
        let mut msg = CHECK_LABEL.to_vec();
        msg.extend_from_slice(&salt);
        Self {
            salt,
            value: veritee_crypto::mac::hmac_sha256(key.expose(), &msg),
        }
    }

    /// Whether `key` is the key this checks, in constant time.
    pub fn matches(&self, key: &Confidential<[u8; DATA_KEY_LEN]>) -> bool {
        veritee_crypto::ct_eq(&Self::with_salt(key, self.salt).value, &self.value)
    }

    /// `salt:value`, hex: how receipts and listings name a key.
    pub fn to_hex(&self) -> String {
        format!("{}:{}", hex::encode(self.salt), hex::encode(self.value))
    }
}

/// The clear header of a wrapped key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKeyHeader {
    /// Release relation.
    pub release: ReleasePolicy,
    /// Wrapping key id, hex.
    pub wrapping_key_id: String,
    /// Tenant id, hex.
    pub tenant_id: String,
    /// The node the key is for, hex.
    pub node_id: String,
    /// SHA-256 of the attested audit key whose receipt the client will accept.
    pub audit_key_digest: [u8; 32],
    /// The key's check value.
    pub check: KeyCheck,
    /// The appraisal policy (JSON) replicas must meet.
    pub policy: Vec<u8>,
    /// Key name.
    pub name: String,
}

fn hex_exact<const N: usize>(s: &str, what: &str) -> Result<[u8; N], ChannelError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| ChannelError::Malformed(format!("{what} must be {} hex digits", 2 * N)))?;
    Ok(out)
}

fn malformed(reason: impl Into<String>) -> ChannelError {
    ChannelError::Malformed(reason.into())
}

impl WrappedKeyHeader {
    /// The header's bytes: exactly what the HPKE associated data covers.
    pub fn encode(&self) -> Result<Vec<u8>, ChannelError> {
        check_name(&self.name).map_err(ChannelError::Malformed)?;
        if self.policy.is_empty() || self.policy.len() > MAX_POLICY_LEN {
            return Err(malformed(format!(
                "a key's policy is 1 to {MAX_POLICY_LEN} bytes, got {}",
                self.policy.len()
            )));
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[VERSION, self.release.code(), 1, 0]);
        out.extend_from_slice(&hex_exact::<16>(&self.wrapping_key_id, "wrapping key id")?);
        out.extend_from_slice(&hex_exact::<16>(&self.tenant_id, "tenant id")?);
        out.extend_from_slice(&hex_exact::<NODE_ID_LEN>(&self.node_id, "node id")?);
        out.extend_from_slice(&self.audit_key_digest);
        out.extend_from_slice(&self.check.salt);
        out.extend_from_slice(&self.check.value);
        out.extend_from_slice(&(self.policy.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.policy);
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
        Ok(out)
    }
}

/// Encrypts `key` to the wrapping key: the result is what travels, online or by hand.
/// Fails unless the header's check value is `key`'s.
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
    if !header.check.matches(key) {
        return Err(ChannelError::Protocol(
            "the header's check value is not this key's".into(),
        ));
    }
    let mut out = header.encode()?;
    let sealed = hpke::seal(wrapping_key, DEPLOY_INFO, &out, key.expose())?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Reads a wrapped key's header without decrypting; returns it and its length.
pub fn parse_header(blob: &[u8]) -> Result<(WrappedKeyHeader, usize), ChannelError> {
    if blob.len() > MAX_WRAPPED_LEN {
        return Err(malformed(format!(
            "a wrapped key of {} bytes is too large (at most {MAX_WRAPPED_LEN})",
            blob.len()
        )));
    }
    if blob.len() < 5 || blob[0..4] != MAGIC {
        return Err(malformed("not a wrapped key (bad magic or truncated)"));
    }
    if blob[4] != VERSION {
        return Err(malformed(format!(
            "unsupported wrapped key version {} (this build reads {VERSION})",
            blob[4]
        )));
    }
    if blob.len() < FIXED_HEADER {
        return Err(malformed("wrapped key truncated in its header"));
    }
    let release = ReleasePolicy::from_code(blob[5])
        .ok_or_else(|| malformed(format!("unknown release relation {}", blob[5])))?;
    if blob[6] != 1 || blob[7] != 0 {
        return Err(malformed("unknown key use or non-zero reserved byte"));
    }
    let array = |range: core::ops::Range<usize>| blob[range].to_vec();
    let mut salt = [0u8; CHECK_SALT_LEN];
    salt.copy_from_slice(&blob[80..96]);
    let mut value = [0u8; 32];
    value.copy_from_slice(&blob[96..128]);
    let mut audit_key_digest = [0u8; 32];
    audit_key_digest.copy_from_slice(&blob[48..80]);
    let policy_len = u16::from_be_bytes([blob[128], blob[129]]) as usize;
    if policy_len == 0 || policy_len > MAX_POLICY_LEN {
        return Err(malformed(format!(
            "a key's policy is 1 to {MAX_POLICY_LEN} bytes, the header says {policy_len}"
        )));
    }
    let name_at = FIXED_HEADER + policy_len;
    let n = *blob
        .get(name_at)
        .ok_or_else(|| malformed("wrapped key truncated in its policy"))? as usize;
    let name = blob
        .get(name_at + 1..name_at + 1 + n)
        .ok_or_else(|| malformed("wrapped key truncated in its name"))?;
    let name = core::str::from_utf8(name)
        .map_err(|_| malformed("key name is not UTF-8"))?
        .to_string();
    check_name(&name).map_err(ChannelError::Malformed)?;
    Ok((
        WrappedKeyHeader {
            release,
            wrapping_key_id: hex::encode(array(8..24)),
            tenant_id: hex::encode(array(24..40)),
            node_id: hex::encode(array(40..48)),
            audit_key_digest,
            check: KeyCheck { salt, value },
            policy: array(FIXED_HEADER..name_at),
            name,
        },
        name_at + 1 + n,
    ))
}

/// Opens a wrapped key with the wrapping key pair; refuses a key whose check value is
/// not the header's.
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
        return Err(malformed(format!(
            "a data key is {DATA_KEY_LEN} bytes, got {}",
            plain.len()
        )));
    }
    let mut key = Confidential::new([0u8; DATA_KEY_LEN]);
    key.expose_mut().copy_from_slice(plain.expose());
    if !header.check.matches(&key) {
        return Err(ChannelError::Rejected(
            "the wrapped key is not the key its check value names".into(),
        ));
    }
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
    /// The node that stored it.
    pub node: String,
    /// The key's check value (`salt:value`, hex).
    pub key_check: String,
    /// The wrapping key it came through.
    pub wrapping_key_id: String,
    /// The audit log's size after the import was recorded.
    pub audit_size: u64,
    /// When, RFC 3339 (enclave time).
    pub time: String,
}

/// What the wrapping key's evidence binds besides the nonce: the wrapping key, the
/// node's attested keys ([`crate::node_bound_keys`]) and the node id, each
/// length-prefixed.
pub fn wrapping_key_binding(wrapping_key: &[u8], node_keys: &[u8], node_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [wrapping_key, node_keys, node_id.as_bytes()] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kp: &HpkeKeyPair, key: &Confidential<[u8; 32]>) -> WrappedKeyHeader {
        WrappedKeyHeader {
            release: ReleasePolicy::SameSigner,
            wrapping_key_id: wrapping_key_id(kp.public_key().as_bytes()),
            tenant_id: "11".repeat(16),
            node_id: "22".repeat(8),
            audit_key_digest: [3u8; 32],
            check: KeyCheck::new(key).unwrap(),
            policy: br#"{"version":1}"#.to_vec(),
            name: "orders-key".into(),
        }
    }

    #[test]
    fn wrap_unwrap_and_tamper_every_byte() {
        let kp = HpkeKeyPair::generate();
        let key = Confidential::new([9u8; 32]);
        let h0 = header(&kp, &key);
        let blob = wrap_key(&kp.public_key(), &h0, &key).unwrap();
        let (h, k) = unwrap_key(&kp, &blob).unwrap();
        assert_eq!(h, h0);
        assert_eq!(k.expose(), key.expose());
        // Every field is associated data: no single changed byte still opens.
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x02;
            assert!(unwrap_key(&kp, &bad).is_err(), "flip at {i} accepted");
        }
        for cut in 0..blob.len() {
            assert!(unwrap_key(&kp, &blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = blob.clone();
        long.resize(MAX_WRAPPED_LEN + 1, 0);
        assert!(
            unwrap_key(&kp, &long)
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
        // A stale (other) wrapping key is named.
        let other = HpkeKeyPair::generate();
        let err = unwrap_key(&other, &blob).unwrap_err().to_string();
        assert!(err.contains("fetch the current wrapping key"), "{err}");
    }

    #[test]
    fn the_check_value_names_the_key_and_nothing_else() {
        let kp = HpkeKeyPair::generate();
        let key = Confidential::new([9u8; 32]);
        let other = Confidential::new([8u8; 32]);
        let check = KeyCheck::new(&key).unwrap();
        assert!(check.matches(&key));
        assert!(!check.matches(&other));
        // Salted: the same key deployed twice has two unrelated check values, and the
        // value is not a bare hash of the key.
        let again = KeyCheck::new(&key).unwrap();
        assert_ne!(check.value, again.value);
        assert_ne!(check.value, veritee_crypto::digest::sha256(key.expose()));
        // A header naming another key's check value cannot be wrapped.
        let mut h = header(&kp, &other);
        assert!(wrap_key(&kp.public_key(), &h, &key).is_err());
        // Nor can a header whose check value was swapped after wrapping be opened: the
        // enclave recomputes it.
        h.check = KeyCheck::new(&key).unwrap();
        let mut blob = h.encode().unwrap();
        let sealed = hpke::seal(&kp.public_key(), DEPLOY_INFO, &blob, other.expose()).unwrap();
        blob.extend_from_slice(&sealed);
        let err = unwrap_key(&kp, &blob).unwrap_err().to_string();
        assert!(err.contains("check value"), "{err}");
    }

    #[test]
    fn wrong_key_length_is_refused() {
        let kp = HpkeKeyPair::generate();
        let key = Confidential::new([9u8; 32]);
        let mut blob = header(&kp, &key).encode().unwrap();
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
