//! RSA private keys of 2048 to 4096 bits: RSASSA-PSS signatures and RSA-OAEP
//! decryption, both with SHA-256, and RSA-OAEP encryption to a public key.
//!
//! RSA is here for interoperability only: it is what the key-import formats of the
//! cloud key managers (CKM_RSA_AES_KEY_WRAP) and many customers' signing keys use.
//! One parameter set each, no choices to get wrong:
//! - signatures: RSASSA-PSS (RFC 8017 section 8.1), SHA-256, MGF1-SHA-256, a 32-byte
//!   salt; they verify with [`crate::sign::VerificationScheme::RsaPssSha256`];
//! - encryption: RSAES-OAEP (RFC 8017 section 7.1), SHA-256, MGF1-SHA-256, empty label.
//!
//! Keys under 2048 bits are refused (too weak); keys over 4096 bits are refused for
//! private keys only, as they buy nothing here and make every operation slow.

use crate::{CryptoError, SecretBytes};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256};

/// Smallest RSA modulus accepted, in bits.
pub const MIN_BITS: usize = 2048;
/// Largest RSA private key accepted, in bits.
pub const MAX_PRIVATE_BITS: usize = 4096;
/// Largest RSA public key [`encrypt_oaep_sha256`] accepts, in bits (aws-lc's bound).
pub const MAX_PUBLIC_BITS: usize = 8192;

/// An RSA private key of 2048 to 4096 bits, for RSASSA-PSS-SHA256 signatures and
/// RSA-OAEP-SHA256 decryption.
///
/// The same key serves both operations because an imported RSA key may sign and
/// decrypt, as its metadata allow. Neither operation gives out what the other would
/// need: decryption returns only OAEP-valid plaintexts (never the raw RSA inverse), and
/// signing only PSS-encoded digests of messages it hashed itself.
pub struct RsaPrivateKey {
    signing: KeyPair,
    decrypting: OaepPrivateDecryptingKey,
    bits: usize,
}

impl core::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The size names the key well enough in logs; the primes never appear.
        f.debug_struct("RsaPrivateKey")
            .field("bits", &self.bits)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl RsaPrivateKey {
    /// A fresh random key of 2048, 3072 or 4096 bits (public exponent 65537).
    pub fn generate(bits: usize) -> Result<Self, CryptoError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => {
                return Err(CryptoError::InvalidKey(
                    "RSA key size to generate: 2048, 3072 or 4096 bits",
                ));
            }
        };
        let signing =
            KeyPair::generate(size).map_err(|_| CryptoError::Operation("RSA key generation"))?;
        // aws-lc-rs keeps signing and decrypting keys apart; the decrypting half is the
        // same key, read back from its PKCS#8 (zeroized when the document drops).
        let der: Pkcs8V1Der<'static> = signing
            .as_der()
            .map_err(|_| CryptoError::Operation("PKCS#8 export"))?;
        let decrypting = decrypting_key(der.as_ref())?;
        Self::assemble(signing, decrypting)
    }

    /// Loads an unencrypted PKCS#8 (RFC 5208) DER RSA private key of 2048 to 4096 bits.
    ///
    /// The DER must be exactly one PrivateKeyInfo: aws-lc ignores bytes after it, and
    /// a key stored with a tail would not be the key its owner checked.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, CryptoError> {
        let damaged =
            CryptoError::InvalidKey("RSA PKCS#8 private key (another algorithm or damaged)");
        if !asn1::is_one_sequence(der) {
            return Err(damaged);
        }
        let signing = KeyPair::from_pkcs8(der).map_err(|_| {
            // aws-lc refuses small keys before saying why; the size is read here only
            // to name it in the error.
            match asn1::pkcs8_modulus_bits(der) {
                Some(bits) if !(MIN_BITS..=MAX_PRIVATE_BITS).contains(&bits) => {
                    CryptoError::KeyBits {
                        what: "RSA private key",
                        bits,
                        minimum: MIN_BITS,
                        maximum: MAX_PRIVATE_BITS,
                    }
                }
                _ => damaged.clone(),
            }
        })?;
        let decrypting = decrypting_key(der)?;
        Self::assemble(signing, decrypting)
    }

    fn assemble(signing: KeyPair, decrypting: PrivateDecryptingKey) -> Result<Self, CryptoError> {
        let bits = decrypting.key_size_bits();
        if !(MIN_BITS..=MAX_PRIVATE_BITS).contains(&bits) {
            return Err(CryptoError::KeyBits {
                what: "RSA private key",
                bits,
                minimum: MIN_BITS,
                maximum: MAX_PRIVATE_BITS,
            });
        }
        let decrypting = OaepPrivateDecryptingKey::new(decrypting)
            .map_err(|_| CryptoError::Operation("RSA-OAEP key setup"))?;
        Ok(Self {
            signing,
            decrypting,
            bits,
        })
    }

    /// The private key as PKCS#8 v1 DER, for storing it in a 0600 file or sealing it.
    pub fn to_pkcs8(&self) -> Result<SecretBytes, CryptoError> {
        let doc: Pkcs8V1Der<'static> = self
            .signing
            .as_der()
            .map_err(|_| CryptoError::Operation("PKCS#8 export"))?;
        Ok(SecretBytes::copy_from(doc.as_ref()))
    }

    /// The public key as a DER SubjectPublicKeyInfo (rsaEncryption).
    pub fn public_key_spki(&self) -> Result<Vec<u8>, CryptoError> {
        let der: PublicKeyX509Der<'static> = self
            .signing
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::Operation("public key encoding"))?;
        Ok(der.as_ref().to_vec())
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The modulus size in bytes: the length of every signature and ciphertext.
    pub fn modulus_len(&self) -> usize {
        self.decrypting.key_size_bytes()
    }

    /// Signs `message` with RSASSA-PSS, SHA-256, MGF1-SHA-256 and a 32-byte random salt.
    pub fn sign_pss_sha256(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // aws-lc-rs copies the signature into a buffer that must be exactly the modulus
        // long, so the buffer takes its length from the key itself.
        let mut sig = vec![0u8; self.signing.public_modulus_len()];
        self.signing
            .sign(&RSA_PSS_SHA256, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| CryptoError::Operation("RSA-PSS signing"))?;
        Ok(sig)
    }

    /// Decrypts an RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) ciphertext, which is
    /// exactly [`Self::modulus_len`] bytes long.
    ///
    /// Every padding failure is the same [`CryptoError::Decrypt`], so that the answer
    /// tells an attacker nothing about which check failed (Manger's attack).
    pub fn decrypt_oaep_sha256(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        let len = self.modulus_len();
        if ciphertext.len() != len {
            return Err(CryptoError::InputLength {
                what: "RSA-OAEP ciphertext",
                minimum: len,
                maximum: len,
                actual: ciphertext.len(),
            });
        }
        let mut out = SecretBytes::new(vec![0u8; self.decrypting.min_output_size()]);
        let plain_len = self
            .decrypting
            .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, out.expose_mut(), None)
            .map_err(|_| CryptoError::Decrypt)?
            .len();
        out.expose_mut().truncate(plain_len);
        Ok(out)
    }
}

fn decrypting_key(der: &[u8]) -> Result<PrivateDecryptingKey, CryptoError> {
    PrivateDecryptingKey::from_pkcs8(der).map_err(|_| {
        CryptoError::InvalidKey("RSA PKCS#8 private key (another algorithm or damaged)")
    })
}

/// Encrypts `plaintext` to an RSA public key (DER SubjectPublicKeyInfo, 2048 to 8192
/// bits) with RSA-OAEP, SHA-256, MGF1-SHA-256 and an empty label. The plaintext is at
/// most the modulus length less 66 bytes (190 for a 2048-bit key); the ciphertext is the
/// modulus length.
pub fn encrypt_oaep_sha256(
    public_key_spki: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    encrypt_oaep(public_key_spki, plaintext, None)
}

/// As [`encrypt_oaep_sha256`], under the OAEP label `label` (a TPM's RSA decryption
/// takes one, as TPM2_RSA_Decrypt's `label`).
pub fn encrypt_oaep_sha256_with_label(
    public_key_spki: &[u8],
    plaintext: &[u8],
    label: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    encrypt_oaep(public_key_spki, plaintext, Some(label))
}

fn encrypt_oaep(
    public_key_spki: &[u8],
    plaintext: &[u8],
    label: Option<&[u8]>,
) -> Result<Vec<u8>, CryptoError> {
    let public = OaepPublicEncryptingKey::new(public_key(public_key_spki)?)
        .map_err(|_| CryptoError::Operation("RSA-OAEP key setup"))?;
    let maximum = public.max_plaintext_size(&OAEP_SHA256_MGF1SHA256);
    if plaintext.len() > maximum {
        return Err(CryptoError::InputLength {
            what: "RSA-OAEP plaintext",
            minimum: 0,
            maximum,
            actual: plaintext.len(),
        });
    }
    let mut out = vec![0u8; public.ciphertext_size()];
    let len = public
        .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, label)
        .map_err(|_| CryptoError::Operation("RSA-OAEP encryption"))?
        .len();
    out.truncate(len);
    Ok(out)
}

/// Checks that `public_key_spki` is an RSA public key (DER SubjectPublicKeyInfo) of
/// 2048 to 8192 bits; returns its size in bits.
pub fn check_public_key(public_key_spki: &[u8]) -> Result<usize, CryptoError> {
    Ok(public_key(public_key_spki)?.key_size_bits())
}

fn public_key(public_key_spki: &[u8]) -> Result<PublicEncryptingKey, CryptoError> {
    let damaged = CryptoError::InvalidKey(
        "RSA public key (not a DER SubjectPublicKeyInfo of an RSA key, or damaged)",
    );
    if !asn1::is_one_sequence(public_key_spki) {
        return Err(damaged);
    }
    PublicEncryptingKey::from_der(public_key_spki).map_err(|_| {
        match asn1::spki_modulus_bits(public_key_spki) {
            Some(bits) if !(MIN_BITS..=MAX_PUBLIC_BITS).contains(&bits) => CryptoError::KeyBits {
                what: "RSA public key",
                bits,
                minimum: MIN_BITS,
                maximum: MAX_PUBLIC_BITS,
            },
            _ => damaged.clone(),
        }
    })
}

/// Just enough DER reading, over the `der`, `spki` and `pkcs1` crates, to check that a
/// key is one whole structure and to name the size of an RSA key aws-lc refused.
/// Nothing here decides whether a key is valid: aws-lc parses every key that is used.
mod asn1 {
    use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
    use der::{Decode, Reader, SliceReader, Tag, Tagged};

    /// rsaEncryption, 1.2.840.113549.1.1.1 (RFC 8017 appendix C).
    const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

    /// Whether `input` is exactly one SEQUENCE, with nothing after it.
    pub(super) fn is_one_sequence(input: &[u8]) -> bool {
        AnyRef::from_der(input).is_ok_and(|any| any.tag() == Tag::Sequence)
    }

    /// The bit length of a big-endian unsigned integer (no leading zero bytes).
    fn bits_of(integer: &[u8]) -> Option<usize> {
        let (&top, rest) = integer.split_first()?;
        (top != 0).then(|| rest.len() * 8 + (8 - top.leading_zeros() as usize))
    }

    /// The modulus size of a PKCS#8 RSA private key (RFC 5208, RFC 8017 appendix A.1.2).
    pub(super) fn pkcs8_modulus_bits(input: &[u8]) -> Option<usize> {
        let mut reader = SliceReader::new(input).ok()?;
        let private = reader
            .sequence(|r| {
                let _version = u8::decode(r)?;
                let algorithm = spki::AlgorithmIdentifierRef::decode(r)?;
                let private = OctetStringRef::decode(r)?;
                // A v2 key (RFC 5958) may carry attributes or its public key after.
                r.read_slice(r.remaining_len())?;
                Ok((algorithm.oid == RSA_ENCRYPTION).then_some(private))
            })
            .ok()??;
        let key = pkcs1::RsaPrivateKey::from_der(private.as_bytes()).ok()?;
        bits_of(key.modulus.as_bytes())
    }

    /// The modulus size of an RSA SubjectPublicKeyInfo (RFC 5280, RFC 8017 A.1.1).
    pub(super) fn spki_modulus_bits(input: &[u8]) -> Option<usize> {
        let spki = spki::SubjectPublicKeyInfoRef::from_der(input).ok()?;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return None;
        }
        let key = pkcs1::RsaPublicKey::from_der(spki.subject_public_key.as_bytes()?).ok()?;
        bits_of(key.modulus.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{self, EcdsaCurve, EcdsaSigningKey, VerificationScheme};
    use std::sync::OnceLock;

    /// One 2048-bit key for the whole module: generating one costs a noticeable
    /// fraction of a second.
    fn key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::generate(2048).unwrap())
    }

    const RSA1024_PKCS8: &[u8] = include_bytes!("../tests/data/rsa1024_pkcs8.der");
    const RSA1024_SPKI: &[u8] = include_bytes!("../tests/data/rsa1024_spki.der");
    const RSA4608_PKCS8: &[u8] = include_bytes!("../tests/data/rsa4608_pkcs8.der");
    const RSA4608_SPKI: &[u8] = include_bytes!("../tests/data/rsa4608_spki.der");

    #[test]
    fn pkcs8_and_spki_round_trip() {
        let key = key();
        assert_eq!(key.bits(), 2048);
        assert_eq!(key.modulus_len(), 256);
        let der = key.to_pkcs8().unwrap();
        let again = RsaPrivateKey::from_pkcs8(der.expose()).unwrap();
        assert_eq!(again.bits(), 2048);
        assert_eq!(
            again.public_key_spki().unwrap(),
            key.public_key_spki().unwrap()
        );
    }

    #[test]
    fn pss_signatures_verify_with_the_sign_module_and_tamper_is_refused() {
        let key = key();
        let spki = key.public_key_spki().unwrap();
        let sig = key.sign_pss_sha256(b"message").unwrap();
        assert_eq!(sig.len(), 256);
        sign::verify(VerificationScheme::RsaPssSha256, &spki, b"message", &sig).unwrap();
        // Salted: two signatures of one message differ and both verify.
        let sig2 = key.sign_pss_sha256(b"message").unwrap();
        assert_ne!(sig, sig2);
        sign::verify(VerificationScheme::RsaPssSha256, &spki, b"message", &sig2).unwrap();
        assert_eq!(
            sign::verify(VerificationScheme::RsaPssSha256, &spki, b"messagf", &sig),
            Err(CryptoError::BadSignature)
        );
        for i in [0, 100, 255] {
            let mut bad = sig.clone();
            bad[i] ^= 1;
            assert_eq!(
                sign::verify(VerificationScheme::RsaPssSha256, &spki, b"message", &bad),
                Err(CryptoError::BadSignature),
                "flip at {i}"
            );
        }
        assert!(
            sign::verify(
                VerificationScheme::RsaPssSha256,
                &spki,
                b"message",
                &sig[..255]
            )
            .is_err()
        );
        // Not PKCS#1 v1.5, and not another hash.
        assert!(sign::verify(VerificationScheme::RsaPkcs1Sha256, &spki, b"message", &sig).is_err());
        assert!(sign::verify(VerificationScheme::RsaPssSha384, &spki, b"message", &sig).is_err());
    }

    #[test]
    fn oaep_round_trip_and_tamper() {
        let key = key();
        let spki = key.public_key_spki().unwrap();
        for len in [0usize, 1, 32, 190] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ct = encrypt_oaep_sha256(&spki, &pt).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(key.decrypt_oaep_sha256(&ct).unwrap().expose(), &pt);
            for i in [0, 128, 255] {
                let mut bad = ct.clone();
                bad[i] ^= 1;
                assert_eq!(
                    key.decrypt_oaep_sha256(&bad).unwrap_err(),
                    CryptoError::Decrypt,
                    "flip at {i}"
                );
            }
        }
        // Randomized: the same plaintext twice gives two ciphertexts.
        assert_ne!(
            encrypt_oaep_sha256(&spki, b"k").unwrap(),
            encrypt_oaep_sha256(&spki, b"k").unwrap()
        );
        let err = encrypt_oaep_sha256(&spki, &[0; 191]).unwrap_err();
        assert!(err.to_string().contains("191 bytes"), "{err}");
        // Another key does not open it.
        let other = RsaPrivateKey::generate(2048).unwrap();
        let ct = encrypt_oaep_sha256(&spki, b"secret").unwrap();
        assert_eq!(
            other.decrypt_oaep_sha256(&ct).unwrap_err(),
            CryptoError::Decrypt
        );
    }

    #[test]
    fn wrong_length_ciphertexts_are_refused_without_panic() {
        let key = key();
        for len in [0usize, 1, 255, 257, 512, 100_000] {
            let err = key.decrypt_oaep_sha256(&vec![0x5a; len]).unwrap_err();
            assert_eq!(
                err,
                CryptoError::InputLength {
                    what: "RSA-OAEP ciphertext",
                    minimum: 256,
                    maximum: 256,
                    actual: len
                }
            );
        }
        // The right length but not below the modulus, or zero: refused the same way as
        // any other bad ciphertext.
        assert_eq!(
            key.decrypt_oaep_sha256(&[0xff; 256]).unwrap_err(),
            CryptoError::Decrypt
        );
        assert_eq!(
            key.decrypt_oaep_sha256(&[0; 256]).unwrap_err(),
            CryptoError::Decrypt
        );
    }

    #[test]
    fn key_sizes_outside_2048_to_4096_are_refused() {
        let err = RsaPrivateKey::from_pkcs8(RSA1024_PKCS8).unwrap_err();
        assert_eq!(
            err.to_string(),
            "RSA private key of 1024 bits: 2048 to 4096 bits accepted"
        );
        let err = RsaPrivateKey::from_pkcs8(RSA4608_PKCS8).unwrap_err();
        assert_eq!(
            err,
            CryptoError::KeyBits {
                what: "RSA private key",
                bits: 4608,
                minimum: 2048,
                maximum: 4096
            }
        );
        assert!(err.to_string().contains("4608 bits"), "{err}");
        let err = encrypt_oaep_sha256(RSA1024_SPKI, b"k").unwrap_err();
        assert_eq!(
            err.to_string(),
            "RSA public key of 1024 bits: 2048 to 8192 bits accepted"
        );
        // A large public key is fine to encrypt to.
        assert_eq!(encrypt_oaep_sha256(RSA4608_SPKI, b"k").unwrap().len(), 576);
        for bits in [0, 1024, 2047, 2049, 8192] {
            assert!(RsaPrivateKey::generate(bits).is_err(), "{bits}");
        }
    }

    #[test]
    fn non_rsa_and_damaged_keys_are_refused() {
        let ec = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let err = RsaPrivateKey::from_pkcs8(ec.to_pkcs8().unwrap().expose()).unwrap_err();
        assert!(err.to_string().contains("another algorithm"), "{err}");
        assert!(encrypt_oaep_sha256(&ec.public_key_spki().unwrap(), b"k").is_err());
        let der = key().to_pkcs8().unwrap();
        for cut in [0, 1, 20, der.len() / 2, der.len() - 1] {
            assert!(
                RsaPrivateKey::from_pkcs8(&der.expose()[..cut]).is_err(),
                "{cut}"
            );
        }
        let mut long = der.expose().clone();
        long.push(0);
        assert!(RsaPrivateKey::from_pkcs8(&long).is_err());
        let spki = key().public_key_spki().unwrap();
        assert!(encrypt_oaep_sha256(&spki[..spki.len() - 1], b"k").is_err());
        assert!(encrypt_oaep_sha256(&[], b"k").is_err());
    }

    #[test]
    fn debug_redacts() {
        let printed = format!("{:?}", key());
        assert!(
            printed.contains("redacted") && printed.contains("2048"),
            "{printed}"
        );
        let der = hex_of(key().to_pkcs8().unwrap().expose());
        assert!(!printed.contains(&der[200..232]));
    }

    #[test]
    fn der_sizes_are_read_from_real_keys() {
        assert_eq!(asn1::pkcs8_modulus_bits(RSA1024_PKCS8), Some(1024));
        assert_eq!(asn1::spki_modulus_bits(RSA1024_SPKI), Some(1024));
        assert_eq!(asn1::pkcs8_modulus_bits(RSA4608_PKCS8), Some(4608));
        assert_eq!(asn1::spki_modulus_bits(RSA4608_SPKI), Some(4608));
        let der = key().to_pkcs8().unwrap();
        assert_eq!(asn1::pkcs8_modulus_bits(der.expose()), Some(2048));
        assert_eq!(
            asn1::spki_modulus_bits(&key().public_key_spki().unwrap()),
            Some(2048)
        );
        // An EC key is not read as an RSA one, and no cut of a key panics.
        let ec = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        assert_eq!(
            asn1::pkcs8_modulus_bits(ec.to_pkcs8().unwrap().expose()),
            None
        );
        assert_eq!(
            asn1::spki_modulus_bits(&ec.public_key_spki().unwrap()),
            None
        );
        for cut in 0..RSA1024_PKCS8.len() {
            assert_eq!(asn1::pkcs8_modulus_bits(&RSA1024_PKCS8[..cut]), None);
            assert!(!asn1::is_one_sequence(&RSA1024_PKCS8[..cut]));
        }
        assert!(asn1::is_one_sequence(RSA1024_PKCS8));
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
