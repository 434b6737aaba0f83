//! The kinds of key a customer imports, what each may be used for, the key material
//! itself (secret), and the salted check value that names a key without revealing it.

use crate::ImportError;
use serde::{Deserialize, Serialize};
use veritee_crypto::SecretBytes;
use veritee_crypto::rsa::RsaPrivateKey;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};

/// Largest key material accepted (a PKCS#8 EC key is about 140 bytes, a 4096-bit
/// PKCS#8 RSA key about 2,400).
pub const MAX_MATERIAL_LEN: usize = 4096;
/// Length of a check value's salt.
pub const CHECK_SALT_LEN: usize = 16;
const CHECK_LABEL: &[u8] = b"veritee import key check v1";

/// A key's type: its material's form and the primitive it is used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// A 32-byte AES-256 key, used with AES-256-GCM.
    Aes256Gcm,
    /// An HMAC-SHA-256 key of 32 to 64 bytes.
    HmacSha256,
    /// An ECDSA P-256 private key (PKCS#8 DER), signing SHA-256 digests, `r || s`.
    EcdsaP256,
    /// An RSA private key of 2048 to 4096 bits (PKCS#8 DER): signs with RSASSA-PSS
    /// (SHA-256, MGF1-SHA-256, 32-byte salt) and decrypts RSA-OAEP (SHA-256,
    /// MGF1-SHA-256, empty label) ciphertexts made with its public key.
    Rsa,
}

impl KeyType {
    /// Its name on the command line and in metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::HmacSha256 => "hmac-sha256",
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa => "rsa",
        }
    }

    /// The operations a key of this type can do at all.
    pub fn possible_operations(self) -> &'static [Operation] {
        match self {
            Self::Aes256Gcm => &[Operation::Encrypt, Operation::Decrypt, Operation::Translate],
            Self::HmacSha256 => &[Operation::Hmac, Operation::Verify],
            Self::EcdsaP256 => &[Operation::Sign, Operation::Verify],
            // No Encrypt: encrypting to a public key needs no secret, the customer
            // does it with the public key.
            Self::Rsa => &[Operation::Sign, Operation::Verify, Operation::Decrypt],
        }
    }

    /// Checks that `material` is a key of this type; names what is wrong.
    pub fn check_material(self, material: &SecretBytes) -> Result<(), ImportError> {
        let len = material.len();
        let bad = |what: String| ImportError::Malformed(format!("{} key: {what}", self.as_str()));
        match self {
            Self::Aes256Gcm if len != 32 => Err(bad(format!("32 bytes expected, got {len}"))),
            Self::HmacSha256 if !(32..=64).contains(&len) => {
                Err(bad(format!("32 to 64 bytes expected, got {len}")))
            }
            Self::EcdsaP256 => EcdsaSigningKey::from_pkcs8(EcdsaCurve::P256, material.expose())
                .map(|_| ())
                .map_err(|_| bad("not a PKCS#8 DER P-256 private key".into())),
            // The crypto error names what is wrong (size, algorithm) and never the key.
            Self::Rsa => RsaPrivateKey::from_pkcs8(material.expose())
                .map(|_| ())
                .map_err(|e| {
                    bad(format!(
                        "not a PKCS#8 DER RSA private key of 2048 to 4096 bits: {e}"
                    ))
                }),
            _ => Ok(()),
        }
    }
}

impl core::str::FromStr for KeyType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "aes-256-gcm" => Ok(Self::Aes256Gcm),
            "hmac-sha256" => Ok(Self::HmacSha256),
            "ecdsa-p256" => Ok(Self::EcdsaP256),
            "rsa" => Ok(Self::Rsa),
            other => Err(format!(
                "key type {other:?}: use aes-256-gcm, hmac-sha256, ecdsa-p256 or rsa"
            )),
        }
    }
}

/// What a key may be used for, as its metadata allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Encrypt under the key (also: be the target of a translation).
    Encrypt,
    /// Decrypt, returning the plaintext to the customer.
    Decrypt,
    /// Sign.
    Sign,
    /// Verify a signature or a MAC.
    Verify,
    /// Compute a MAC.
    Hmac,
    /// Be the source of a translation: decrypt inside the enclave only, to re-encrypt
    /// under another key, so the plaintext never leaves.
    Translate,
}

impl Operation {
    /// Its name in metadata and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::Hmac => "hmac",
            Self::Translate => "translate",
        }
    }
}

impl core::str::FromStr for Operation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "encrypt" => Ok(Self::Encrypt),
            "decrypt" => Ok(Self::Decrypt),
            "sign" => Ok(Self::Sign),
            "verify" => Ok(Self::Verify),
            "hmac" => Ok(Self::Hmac),
            "translate" => Ok(Self::Translate),
            other => Err(format!(
                "operation {other:?}: use encrypt, decrypt, sign, verify, hmac or translate"
            )),
        }
    }
}

/// A salted, keyed check value of key material: names the key the customer meant
/// without revealing anything of it, and differs for every import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCheck {
    /// Random salt.
    pub salt: [u8; CHECK_SALT_LEN],
    /// HMAC-SHA-256(material, label || salt).
    pub value: [u8; 32],
}

impl KeyCheck {
    /// The check value of `material` under a fresh salt.
    pub fn new(material: &SecretBytes) -> Result<Self, ImportError> {
        Ok(Self::with_salt(material, veritee_crypto::rand::array()?))
    }

    /// The check value of `material` under `salt`.
    pub fn with_salt(material: &SecretBytes, salt: [u8; CHECK_SALT_LEN]) -> Self {
        let mut msg = CHECK_LABEL.to_vec();
        msg.extend_from_slice(&salt);
        Self {
            salt,
            value: veritee_crypto::mac::hmac_sha256(material.expose(), &msg),
        }
    }

    /// Whether `material` is the key this checks, in constant time.
    pub fn matches(&self, material: &SecretBytes) -> bool {
        veritee_crypto::ct_eq(&Self::with_salt(material, self.salt).value, &self.value)
    }

    /// `salt:value`, hex.
    pub fn to_hex(&self) -> String {
        format!("{}:{}", hex::encode(self.salt), hex::encode(self.value))
    }

    /// Reads `salt:value`.
    pub fn from_hex(s: &str) -> Result<Self, ImportError> {
        let bad = || ImportError::Malformed(format!("key check {s:?} is not salt:value in hex"));
        let (salt_hex, value_hex) = s.split_once(':').ok_or_else(bad)?;
        let mut check = Self {
            salt: [0; CHECK_SALT_LEN],
            value: [0; 32],
        };
        hex::decode_to_slice(salt_hex, &mut check.salt).map_err(|_| bad())?;
        hex::decode_to_slice(value_hex, &mut check.value).map_err(|_| bad())?;
        Ok(check)
    }
}

/// A key by partition and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRef {
    /// The partition.
    pub partition: String,
    /// The key id in it.
    pub key_id: String,
}

impl KeyRef {
    /// `partition/key`.
    pub fn new(partition: &str, key_id: &str) -> Self {
        Self {
            partition: partition.into(),
            key_id: key_id.into(),
        }
    }
}

impl core::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.partition, self.key_id)
    }
}

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl core::str::FromStr for HashAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sha256" | "sha-256" => Ok(Self::Sha256),
            "sha384" | "sha-384" => Ok(Self::Sha384),
            "sha512" | "sha-512" => Ok(Self::Sha512),
            other => Err(format!("hash {other:?}: use sha256, sha384 or sha512")),
        }
    }
}

impl HashAlgorithm {
    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => veritee_crypto::digest::sha256(data).to_vec(),
            Self::Sha384 => veritee_crypto::digest::sha384(data).to_vec(),
            Self::Sha512 => veritee_crypto::digest::sha512(data).to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_is_checked_by_type() {
        let aes = SecretBytes::copy_from(&[7u8; 32]);
        assert!(KeyType::Aes256Gcm.check_material(&aes).is_ok());
        let err = KeyType::Aes256Gcm
            .check_material(&SecretBytes::copy_from(&[7u8; 31]))
            .unwrap_err();
        assert!(
            err.to_string().contains("32 bytes expected, got 31"),
            "{err}"
        );
        assert!(KeyType::HmacSha256.check_material(&aes).is_ok());
        assert!(
            KeyType::HmacSha256
                .check_material(&SecretBytes::copy_from(&[1u8; 65]))
                .is_err()
        );
        let ec = EcdsaSigningKey::generate(EcdsaCurve::P256)
            .unwrap()
            .to_pkcs8()
            .unwrap();
        assert!(KeyType::EcdsaP256.check_material(&ec).is_ok());
        assert!(KeyType::EcdsaP256.check_material(&aes).is_err());
    }

    #[test]
    fn check_values_name_one_key_and_read_back() {
        let k = SecretBytes::copy_from(&[9u8; 32]);
        let check = KeyCheck::new(&k).unwrap();
        assert!(check.matches(&k));
        assert!(!check.matches(&SecretBytes::copy_from(&[8u8; 32])));
        assert_eq!(KeyCheck::from_hex(&check.to_hex()).unwrap(), check);
        assert!(KeyCheck::from_hex("zz:00").is_err());
        assert!(KeyCheck::from_hex(&check.to_hex()[1..]).is_err());
        // A second import of the same key has another check value.
        assert_ne!(KeyCheck::new(&k).unwrap(), check);
    }

    #[test]
    fn names_read_back() {
        for t in [
            KeyType::Aes256Gcm,
            KeyType::HmacSha256,
            KeyType::EcdsaP256,
            KeyType::Rsa,
        ] {
            assert_eq!(t.as_str().parse::<KeyType>().unwrap(), t);
            for op in t.possible_operations() {
                assert_eq!(op.as_str().parse::<Operation>().unwrap(), *op);
            }
        }
        assert!("rsa-2048".parse::<KeyType>().is_err());
        let err = "dsa".parse::<KeyType>().unwrap_err();
        assert!(err.contains("ecdsa-p256 or rsa"), "{err}");
        // serde's name is the command line's.
        assert_eq!(serde_json::to_string(&KeyType::Rsa).unwrap(), "\"rsa\"");
        assert_eq!(
            serde_json::from_str::<KeyType>("\"rsa\"").unwrap(),
            KeyType::Rsa
        );
    }

    #[test]
    fn rsa_material_is_a_pkcs8_key_of_2048_to_4096_bits() {
        let rsa = RsaPrivateKey::generate(2048).unwrap().to_pkcs8().unwrap();
        assert!(KeyType::Rsa.check_material(&rsa).is_ok());
        assert!(rsa.len() <= MAX_MATERIAL_LEN);
        assert_eq!(
            KeyType::Rsa.possible_operations(),
            &[Operation::Sign, Operation::Verify, Operation::Decrypt]
        );
        // Another algorithm, a cut key, raw bytes: refused, naming the type.
        let ec = EcdsaSigningKey::generate(EcdsaCurve::P256)
            .unwrap()
            .to_pkcs8()
            .unwrap();
        for bad in [
            ec,
            SecretBytes::copy_from(&rsa.expose()[..rsa.len() - 1]),
            SecretBytes::copy_from(&[7u8; 32]),
            SecretBytes::copy_from(&[]),
        ] {
            let err = KeyType::Rsa.check_material(&bad).unwrap_err();
            assert!(err.to_string().starts_with("rsa key: "), "{err}");
        }
        // A small key is refused with its size.
        let small = SecretBytes::copy_from(include_bytes!(
            "../../veritee-crypto/tests/data/rsa1024_pkcs8.der"
        ));
        let err = KeyType::Rsa.check_material(&small).unwrap_err();
        assert!(err.to_string().contains("1024 bits"), "{err}");
        // And an RSA key is no EC key.
        assert!(KeyType::EcdsaP256.check_material(&rsa).is_err());
    }

    #[test]
    fn a_4096_bit_rsa_key_fits_the_material_bound() {
        let rsa = RsaPrivateKey::generate(4096).unwrap().to_pkcs8().unwrap();
        assert!(
            rsa.len() <= MAX_MATERIAL_LEN,
            "{} bytes > {MAX_MATERIAL_LEN}",
            rsa.len()
        );
        assert!(KeyType::Rsa.check_material(&rsa).is_ok());
    }
}
