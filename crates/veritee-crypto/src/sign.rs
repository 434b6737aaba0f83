//! Digital signatures: ECDSA signing keys for veritee's own artefacts, and
//! verification of every scheme that real attestation evidence uses.

use crate::{CryptoError, SecretBytes};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey, VerificationAlgorithm};

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
}
