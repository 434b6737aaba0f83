//! From X.509 algorithm identifiers to aws-lc-rs verification schemes.

use crate::X509Error;
use const_oid::ObjectIdentifier;
use der::{Decode, Sequence, asn1::AnyRef};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef};
use veritee_crypto::sign::VerificationScheme;

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// RSASSA-PSS-params (RFC 4055). Only the fields that choose the scheme are read.
#[derive(Sequence)]
struct PssParams<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierRef<'a>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierRef<'a>>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

fn unsupported(what: impl core::fmt::Display) -> X509Error {
    X509Error::UnsupportedAlgorithm(what.to_string())
}

fn pss_scheme(params: Option<&der::asn1::Any>) -> Result<VerificationScheme, X509Error> {
    let params =
        params.ok_or_else(|| unsupported("RSASSA-PSS without parameters (SHA-1 default)"))?;
    let encoded = params.to_der_vec()?;
    let p = PssParams::from_der(&encoded)
        .map_err(|e| X509Error::malformed("RSASSA-PSS parameters", e))?;
    let hash = p
        .hash
        .map(|h| h.oid)
        .ok_or_else(|| unsupported("RSASSA-PSS with SHA-1"))?;
    // aws-lc-rs verifies PSS with MGF1 over the same hash and salt = hash length, the
    // only profile attestation vendors use; anything else is refused, not guessed.
    let (scheme, salt) = match hash {
        SHA256 => (VerificationScheme::RsaPssSha256, 32),
        SHA384 => (VerificationScheme::RsaPssSha384, 48),
        SHA512 => (VerificationScheme::RsaPssSha512, 64),
        other => return Err(unsupported(format!("RSASSA-PSS with hash {other}"))),
    };
    if let Some(mgf) = p.mask_gen {
        let mgf_hash = mgf
            .parameters
            .and_then(|a: AnyRef<'_>| a.decode_as::<AlgorithmIdentifierRef<'_>>().ok())
            .map(|a| a.oid);
        if mgf_hash != Some(hash) {
            return Err(unsupported(
                "RSASSA-PSS with a mask generation hash that differs from the message hash",
            ));
        }
    }
    if p.salt_len.unwrap_or(20) != salt {
        return Err(unsupported(
            "RSASSA-PSS with a salt length other than the hash length",
        ));
    }
    if p.trailer.unwrap_or(1) != 1 {
        return Err(unsupported("RSASSA-PSS with a trailer field other than 1"));
    }
    Ok(scheme)
}

trait ToDerVec {
    fn to_der_vec(&self) -> Result<Vec<u8>, X509Error>;
}

impl ToDerVec for der::asn1::Any {
    fn to_der_vec(&self) -> Result<Vec<u8>, X509Error> {
        der::Encode::to_der(self).map_err(|e| X509Error::malformed("algorithm parameters", e))
    }
}

/// The curve OID of an EC SubjectPublicKeyInfo, if it is one.
fn ec_curve(spki_alg: &AlgorithmIdentifierOwned) -> Option<ObjectIdentifier> {
    if spki_alg.oid != EC_PUBLIC_KEY {
        return None;
    }
    spki_alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
}

/// Chooses the verification scheme for a signature made with `sig_alg` by a key
/// described by `key_alg`.
pub(crate) fn scheme_for(
    sig_alg: &AlgorithmIdentifierOwned,
    key_alg: &AlgorithmIdentifierOwned,
) -> Result<VerificationScheme, X509Error> {
    let curve = ec_curve(key_alg);
    Ok(match (sig_alg.oid, curve) {
        (ECDSA_SHA256, Some(P256)) => VerificationScheme::EcdsaP256Sha256Asn1,
        (ECDSA_SHA384, Some(P256)) => VerificationScheme::EcdsaP256Sha384Asn1,
        (ECDSA_SHA256, Some(P384)) => VerificationScheme::EcdsaP384Sha256Asn1,
        (ECDSA_SHA384, Some(P384)) => VerificationScheme::EcdsaP384Sha384Asn1,
        (ECDSA_SHA256 | ECDSA_SHA384, other) => {
            return Err(unsupported(format!(
                "ECDSA key on curve {}",
                other
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "unknown".into())
            )));
        }
        (RSA_SHA256, _) => VerificationScheme::RsaPkcs1Sha256,
        (RSA_SHA384, _) => VerificationScheme::RsaPkcs1Sha384,
        (RSA_SHA512, _) => VerificationScheme::RsaPkcs1Sha512,
        (RSA_PSS, _) => pss_scheme(sig_alg.parameters.as_ref())?,
        (ED25519, _) => VerificationScheme::Ed25519,
        (other, _) => return Err(unsupported(format!("signature algorithm {other}"))),
    })
}
