//! Digital signatures: ECDSA and Ed25519 signing keys for veritee's own artefacts, and
//! verification of every scheme that real attestation evidence uses.

use crate::memo::{self, Recent};
use crate::{CryptoError, SecretBytes};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, UnparsedPublicKey, VerificationAlgorithm,
};
use std::sync::OnceLock;

/// A signature verification algorithm: hash, key type and signature encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerificationScheme {
    /// ECDSA P-256 with SHA-256, DER-encoded signature.
    EcdsaP256Sha256Asn1,
    /// ECDSA P-256 with SHA-384, DER-encoded signature.
    EcdsaP256Sha384Asn1,
    /// ECDSA P-384 with SHA-256, DER-encoded signature.
    EcdsaP384Sha256Asn1,
    /// ECDSA P-384 with SHA-384, DER-encoded signature.
    EcdsaP384Sha384Asn1,
    /// ECDSA P-256 with SHA-256, `r || s` (64 bytes).
    EcdsaP256Sha256Fixed,
    /// ECDSA P-384 with SHA-384, `r || s` (96 bytes).
    EcdsaP384Sha384Fixed,
    /// RSA PKCS#1 v1.5 with SHA-256 (2048 to 8192 bits).
    RsaPkcs1Sha256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSA PKCS#1 v1.5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt = hash length.
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384, salt = hash length.
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512, salt = hash length.
    RsaPssSha512,
    /// Ed25519.
    Ed25519,
}

impl VerificationScheme {
    /// A stable byte naming the scheme, for digests that must tell schemes apart.
    fn tag(self) -> u8 {
        match self {
            Self::EcdsaP256Sha256Asn1 => 1,
            Self::EcdsaP256Sha384Asn1 => 2,
            Self::EcdsaP384Sha256Asn1 => 3,
            Self::EcdsaP384Sha384Asn1 => 4,
            Self::EcdsaP256Sha256Fixed => 5,
            Self::EcdsaP384Sha384Fixed => 6,
            Self::RsaPkcs1Sha256 => 7,
            Self::RsaPkcs1Sha384 => 8,
            Self::RsaPkcs1Sha512 => 9,
            Self::RsaPssSha256 => 10,
            Self::RsaPssSha384 => 11,
            Self::RsaPssSha512 => 12,
            Self::Ed25519 => 13,
        }
    }

    fn algorithm(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::EcdsaP256Sha256Asn1 => &signature::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP256Sha384Asn1 => &signature::ECDSA_P256_SHA384_ASN1,
            Self::EcdsaP384Sha256Asn1 => &signature::ECDSA_P384_SHA256_ASN1,
            Self::EcdsaP384Sha384Asn1 => &signature::ECDSA_P384_SHA384_ASN1,
            Self::EcdsaP256Sha256Fixed => &signature::ECDSA_P256_SHA256_FIXED,
            Self::EcdsaP384Sha384Fixed => &signature::ECDSA_P384_SHA384_FIXED,
            Self::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::RsaPkcs1Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::RsaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::RsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
            Self::RsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
            Self::Ed25519 => &signature::ED25519,
        }
    }
}

/// Verifies `sig` over `message` with `public_key`.
///
/// `public_key` is either a DER SubjectPublicKeyInfo or the key as it sits inside one
/// (an EC point, a PKCS#1 RSAPublicKey, 32 Ed25519 bytes).
pub fn verify(
    scheme: VerificationScheme,
    public_key: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    UnparsedPublicKey::new(scheme.algorithm(), public_key)
        .verify(message, sig)
        .map_err(|_| CryptoError::BadSignature)
}

/// Signature verdicts [`verify_collateral`] remembers: at about 100 bytes each, at most
/// a few hundred KiB, and far more than the distinct collateral of the vendors and
/// platforms one process meets.
pub const REMEMBERED_SIGNATURES: usize = 4096;

fn remembered_signatures() -> &'static Recent<()> {
    static VERIFIED: OnceLock<Recent<()>> = OnceLock::new();
    VERIFIED.get_or_init(|| Recent::new(REMEMBERED_SIGNATURES))
}

/// [`verify`] for signatures over collateral (certificates, CRLs, signed TCB and
/// identity documents): the same check, remembered once it has succeeded, so that the
/// same signature over the same bytes by the same key is verified once per process.
///
/// Only a success is remembered, keyed by the digest of scheme, key, message and
/// signature together: a signature that did not verify, or any change to one of the
/// four, is verified afresh. A verdict is timeless, so what the caller decides from
/// time (validity, freshness, revocation) it must still decide at every use, and does.
/// Not for per-evidence signatures (quotes, reports, requests): those are new every
/// time and would only push collateral out of the memory.
pub fn verify_collateral(
    scheme: VerificationScheme,
    public_key: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    let key = memo::digest_of(
        "veritee verified collateral signature v1",
        &[&[scheme.tag()], public_key, message, sig],
    );
    let memory = remembered_signatures();
    if memory.get(&key).is_some() {
        return Ok(());
    }
    verify(scheme, public_key, message, sig)?;
    memory.insert(key, ());
    Ok(())
}

/// How many collateral signature verdicts this process remembers (for tests and
/// benchmarks).
pub fn remembered_collateral_signatures() -> usize {
    remembered_signatures().len()
}

/// Forgets every remembered collateral signature verdict (for benchmarks that measure
/// the cost of a first verification).
pub fn forget_collateral_signatures() {
    remembered_signatures().clear();
}

/// Checks that `public_key` is a valid key for `scheme` (SPKI DER or raw), without a
/// signature to verify: for rejecting a bad key when it is registered, not when used.
pub fn check_public_key(scheme: VerificationScheme, public_key: &[u8]) -> Result<(), CryptoError> {
    signature::ParsedPublicKey::new(scheme.algorithm(), public_key)
        .map(|_| ())
        .map_err(|_| CryptoError::InvalidKey("public key for this signature scheme"))
}

/// The curve of an ECDSA signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcdsaCurve {
    /// NIST P-256, signatures with SHA-256.
    P256,
    /// NIST P-384, signatures with SHA-384.
    P384,
}

impl EcdsaCurve {
    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Self::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Self::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        }
    }

    /// The verification scheme matching this curve's fixed-size signatures.
    pub fn fixed_scheme(self) -> VerificationScheme {
        match self {
            Self::P256 => VerificationScheme::EcdsaP256Sha256Fixed,
            Self::P384 => VerificationScheme::EcdsaP384Sha384Fixed,
        }
    }

    /// Length of an `r || s` signature.
    pub fn fixed_signature_len(self) -> usize {
        match self {
            Self::P256 => 64,
            Self::P384 => 96,
        }
    }
}

/// An ECDSA private key producing fixed-size (`r || s`) signatures.
pub struct EcdsaSigningKey {
    curve: EcdsaCurve,
    pair: EcdsaKeyPair,
}

impl core::fmt::Debug for EcdsaSigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EcdsaSigningKey")
            .field("curve", &self.curve)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl EcdsaSigningKey {
    /// A fresh random key.
    pub fn generate(curve: EcdsaCurve) -> Result<Self, CryptoError> {
        let pair = EcdsaKeyPair::generate(curve.signing())
            .map_err(|_| CryptoError::Operation("ECDSA key generation"))?;
        Ok(Self { curve, pair })
    }

    /// Loads a PKCS#8 (RFC 5208 or 5958) DER private key of the given curve.
    pub fn from_pkcs8(curve: EcdsaCurve, der: &[u8]) -> Result<Self, CryptoError> {
        let pair = EcdsaKeyPair::from_pkcs8(curve.signing(), der).map_err(|_| {
            CryptoError::InvalidKey("ECDSA PKCS#8 private key (wrong curve or damaged)")
        })?;
        Ok(Self { curve, pair })
    }

    /// The private key as PKCS#8 v1 DER, for storing it in a 0600 file or sealing it.
    pub fn to_pkcs8(&self) -> Result<SecretBytes, CryptoError> {
        let doc = self
            .pair
            .to_pkcs8v1()
            .map_err(|_| CryptoError::Operation("PKCS#8 export"))?;
        Ok(SecretBytes::copy_from(doc.as_ref()))
    }

    /// The curve.
    pub fn curve(&self) -> EcdsaCurve {
        self.curve
    }

    /// The public key as an uncompressed SEC1 point.
    pub fn public_key_point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The public key as a DER SubjectPublicKeyInfo.
    pub fn public_key_spki(&self) -> Result<Vec<u8>, CryptoError> {
        let der: PublicKeyX509Der<'static> = self
            .pair
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::Operation("public key encoding"))?;
        Ok(der.as_ref().to_vec())
    }

    /// Signs `message`; the signature is `r || s`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| CryptoError::Operation("ECDSA signing"))
    }
}

/// Length of an Ed25519 public key (RFC 8032 encoding).
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// An Ed25519 private key (RFC 8032, pure Ed25519), for formats that require it, such
/// as C2SP signed notes. Its signatures verify with [`VerificationScheme::Ed25519`].
///
/// Ed25519 signs the message as given, with no context string: a key used for one
/// format must not be used for another whose messages could be confused with it.
pub struct Ed25519SigningKey {
    pair: Ed25519KeyPair,
}

impl core::fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The public key identifies the key in logs; the seed never appears.
        let public: String = self
            .public_key()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        f.debug_struct("Ed25519SigningKey")
            .field("public_key", &public)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl Ed25519SigningKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let pair = Ed25519KeyPair::generate()
            .map_err(|_| CryptoError::Operation("Ed25519 key generation"))?;
        Ok(Self { pair })
    }

    /// Loads an unencrypted PKCS#8 DER Ed25519 private key, v1 (RFC 5208) or v2
    /// (RFC 5958); a v2 key's embedded public key must match its private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, CryptoError> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| {
            CryptoError::InvalidKey("Ed25519 PKCS#8 private key (another algorithm or damaged)")
        })?;
        Ok(Self { pair })
    }

    /// The private key as PKCS#8 v2 DER (RFC 5958, with the public key), for storing it
    /// in a 0600 file or sealing it. v2 rather than v1 so that [`Self::from_pkcs8`]
    /// checks on loading that the stored key pair is consistent.
    pub fn to_pkcs8(&self) -> Result<SecretBytes, CryptoError> {
        let doc = self
            .pair
            .to_pkcs8()
            .map_err(|_| CryptoError::Operation("PKCS#8 export"))?;
        Ok(SecretBytes::copy_from(doc.as_ref()))
    }

    /// The public key, 32 bytes as encoded by RFC 8032.
    pub fn public_key(&self) -> [u8; ED25519_PUBLIC_KEY_LEN] {
        let mut out = [0u8; ED25519_PUBLIC_KEY_LEN];
        // aws-lc-rs always holds an Ed25519 public key as exactly 32 bytes.
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// Signs `message` (deterministic: the same key and message give the same signature).
    pub fn sign(&self, message: &[u8]) -> Result<[u8; ED25519_SIGNATURE_LEN], CryptoError> {
        // `try_sign`, not `sign`: the latter panics if the library fails.
        let sig = self
            .pair
            .try_sign(message)
            .map_err(|_| CryptoError::Operation("Ed25519 signing"))?;
        let mut out = [0u8; ED25519_SIGNATURE_LEN];
        out.copy_from_slice(sig.as_ref());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject() {
        for curve in [EcdsaCurve::P256, EcdsaCurve::P384] {
            let key = EcdsaSigningKey::generate(curve).unwrap();
            let sig = key.sign(b"message").unwrap();
            assert_eq!(sig.len(), curve.fixed_signature_len());
            let scheme = curve.fixed_scheme();
            verify(scheme, key.public_key_point(), b"message", &sig).unwrap();
            verify(scheme, &key.public_key_spki().unwrap(), b"message", &sig).unwrap();
            assert_eq!(
                verify(scheme, key.public_key_point(), b"messagE", &sig),
                Err(CryptoError::BadSignature)
            );
            let mut bad = sig.clone();
            bad[5] ^= 1;
            assert_eq!(
                verify(scheme, key.public_key_point(), b"message", &bad),
                Err(CryptoError::BadSignature)
            );
            let reloaded =
                EcdsaSigningKey::from_pkcs8(curve, key.to_pkcs8().unwrap().expose()).unwrap();
            assert_eq!(reloaded.public_key_point(), key.public_key_point());
        }
    }

    #[test]
    fn a_remembered_collateral_signature_vouches_for_exactly_its_inputs() {
        let key = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let other = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let scheme = EcdsaCurve::P256.fixed_scheme();
        let point = key.public_key_point();
        let sig = key.sign(b"collateral").unwrap();
        let mut bad = sig.clone();
        bad[3] ^= 1;
        // A failure is not remembered: it fails again, and does not stop the good
        // signature from verifying afterwards.
        for _ in 0..2 {
            assert_eq!(
                verify_collateral(scheme, point, b"collateral", &bad),
                Err(CryptoError::BadSignature)
            );
        }
        for _ in 0..2 {
            verify_collateral(scheme, point, b"collateral", &sig).unwrap();
        }
        assert!(remembered_collateral_signatures() >= 1);
        // Every other input, changed, is verified afresh and refused.
        assert_eq!(
            verify_collateral(scheme, point, b"collateraL", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            verify_collateral(scheme, other.public_key_point(), b"collateral", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            verify_collateral(
                VerificationScheme::EcdsaP256Sha256Asn1,
                point,
                b"collateral",
                &sig
            ),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            verify_collateral(scheme, point, b"collateral", &bad),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn public_keys_are_checked() {
        let key = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let spki = key.public_key_spki().unwrap();
        check_public_key(VerificationScheme::EcdsaP256Sha256Fixed, &spki).unwrap();
        assert!(check_public_key(VerificationScheme::EcdsaP384Sha384Fixed, &spki).is_err());
        assert!(check_public_key(VerificationScheme::EcdsaP256Sha256Fixed, &spki[..20]).is_err());
    }

    #[test]
    fn wrong_curve_pkcs8_is_rejected() {
        let key = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let der = key.to_pkcs8().unwrap();
        assert!(EcdsaSigningKey::from_pkcs8(EcdsaCurve::P384, der.expose()).is_err());
        assert!(EcdsaSigningKey::from_pkcs8(EcdsaCurve::P256, &der.expose()[..20]).is_err());
    }

    #[test]
    fn debug_redacts() {
        let key = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains("redacted"));
    }
    /// An RFC 8032 key from its 32-byte seed: only tests need this (keys are
    /// generated or loaded from PKCS#8 otherwise).
    fn ed25519_from_seed(seed_hex: &str) -> Ed25519SigningKey {
        let seed = hex::decode(seed_hex).unwrap();
        Ed25519SigningKey {
            pair: Ed25519KeyPair::from_seed_unchecked(&seed).unwrap(),
        }
    }

    #[test]
    fn ed25519_rfc8032_known_answers() {
        // RFC 8032 section 7.1, tests 1 to 3 (seed, public key, message, signature).
        let vectors = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
        ];
        for (seed, public, message, expected) in vectors {
            let key = ed25519_from_seed(seed);
            assert_eq!(hex::encode(key.public_key()), public);
            let message = hex::decode(message).unwrap();
            let sig = key.sign(&message).unwrap();
            assert_eq!(hex::encode(sig), expected);
            verify(
                VerificationScheme::Ed25519,
                &key.public_key(),
                &message,
                &sig,
            )
            .unwrap();
            // The same key through PKCS#8 v2 and back signs identically.
            let reloaded = Ed25519SigningKey::from_pkcs8(key.to_pkcs8().unwrap().expose()).unwrap();
            assert_eq!(reloaded.sign(&message).unwrap(), sig);
        }
    }

    #[test]
    fn ed25519_pkcs8_v1_is_accepted() {
        // RFC 8410 PrivateKeyInfo (v1) around the RFC 8032 test 1 seed.
        let der = hex::decode(
            "302e020100300506032b6570042204209d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        )
        .unwrap();
        let key = Ed25519SigningKey::from_pkcs8(&der).unwrap();
        assert_eq!(
            hex::encode(key.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn ed25519_round_trip_and_tamper() {
        let key = Ed25519SigningKey::generate().unwrap();
        let public = key.public_key();
        let sig = key.sign(b"message").unwrap();
        verify(VerificationScheme::Ed25519, &public, b"message", &sig).unwrap();
        assert_eq!(
            verify(VerificationScheme::Ed25519, &public, b"messagE", &sig),
            Err(CryptoError::BadSignature)
        );
        for i in 0..sig.len() {
            let mut bad = sig;
            bad[i] ^= 0x01;
            assert_eq!(
                verify(VerificationScheme::Ed25519, &public, b"message", &bad),
                Err(CryptoError::BadSignature),
                "byte {i}"
            );
        }
        let other = Ed25519SigningKey::generate().unwrap();
        assert_eq!(
            verify(
                VerificationScheme::Ed25519,
                &other.public_key(),
                b"message",
                &sig
            ),
            Err(CryptoError::BadSignature)
        );
        let der = key.to_pkcs8().unwrap();
        let reloaded = Ed25519SigningKey::from_pkcs8(der.expose()).unwrap();
        assert_eq!(reloaded.public_key(), public);
        assert_eq!(reloaded.sign(b"message").unwrap(), sig);
    }

    #[test]
    fn ed25519_bad_pkcs8_is_rejected() {
        let der = Ed25519SigningKey::generate().unwrap().to_pkcs8().unwrap();
        assert!(Ed25519SigningKey::from_pkcs8(&der.expose()[..20]).is_err());
        assert!(Ed25519SigningKey::from_pkcs8(&[]).is_err());
        // A v2 document whose public key does not match its seed.
        let mut inconsistent = der.expose().clone();
        let last = inconsistent.len() - 1;
        inconsistent[last] ^= 0x01;
        assert!(Ed25519SigningKey::from_pkcs8(&inconsistent).is_err());
        // An ECDSA key is not an Ed25519 key.
        let ecdsa = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        assert!(Ed25519SigningKey::from_pkcs8(ecdsa.to_pkcs8().unwrap().expose()).is_err());
    }

    #[test]
    fn ed25519_debug_redacts() {
        let key =
            ed25519_from_seed("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let printed = format!("{key:?} {key:#?}");
        assert!(printed.contains("redacted"), "{printed}");
        assert!(printed.contains("d75a980182b10ab7"), "{printed}");
        assert!(!printed.contains("9d61b19d"), "{printed}");
    }
}
