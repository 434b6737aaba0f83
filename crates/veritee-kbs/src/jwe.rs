//! JWE (RFC 7516, the flattened JSON form of `kbs_types::Response`) to a guest's TEE
//! key: a resource is sealed with A256GCM under a fresh content key, and that key is
//! wrapped to the guest's public key by RSA-OAEP-256 or ECDH-ES+A256KW (P-256, P-521),
//! the algorithms CoCo guests offer.
//!
//! Written here over aws-lc-rs rather than taken from a JOSE crate: the well-kept JWE
//! implementations bind OpenSSL (josekit) or lack ECDH-ES key agreement (biscuit), and
//! RustCrypto's `jose` crates have no JWE yet. Every step below is an aws-lc-rs
//! primitive (AES-GCM, AES-KW, ECDH, the SP 800-56C single-step KDF that JOSE calls
//! Concat KDF, RSA-OAEP); only the JOSE framing is ours, and it is tested against the
//! guest's reading of it (`kbs_types::ProtectedHeader::generate_aad`).

use crate::KbsError;
use aws_lc_rs::agreement::{self, EphemeralPrivateKey, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::kdf::{SskdfDigestAlgorithmId, get_sskdf_digest_algorithm, sskdf_digest};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kbs_types::{ProtectedHeader, Response, TeePubKey};
use veritee_crypto::aead::{AeadKey, NONCE_LEN, TAG_LEN};
use zeroize::Zeroizing;

/// Content encryption: AES-256-GCM.
pub const ENC_A256GCM: &str = "A256GCM";
/// Key encryption by RSA-OAEP with SHA-256 and MGF1-SHA-256.
pub const ALG_RSA_OAEP_256: &str = "RSA-OAEP-256";
/// Key agreement by ephemeral-static ECDH, then AES-256 key wrap (RFC 3394).
pub const ALG_ECDH_ES_A256KW: &str = "ECDH-ES+A256KW";
/// Smallest RSA modulus accepted for a TEE key.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest resource sealed in one response.
pub const MAX_PLAINTEXT_LEN: usize = 16 * 1024 * 1024;

const CEK_LEN: usize = 32;

/// rsaEncryption (PKCS #1).
const RSA_ENCRYPTION_OID: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// An elliptic curve a TEE key may be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-521.
    P521,
}

impl Curve {
    fn from_name(crv: &str) -> Result<Self, KbsError> {
        match crv {
            "P-256" => Ok(Self::P256),
            "P-521" => Ok(Self::P521),
            other => Err(KbsError::TeeKey(format!(
                "curve {other:?} is not offered; use P-256 or P-521"
            ))),
        }
    }

    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P521 => "P-521",
        }
    }

    fn agreement(self) -> &'static agreement::Algorithm {
        match self {
            Self::P256 => &agreement::ECDH_P256,
            Self::P521 => &agreement::ECDH_P521,
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P521 => 66,
        }
    }
}

fn b64(field: &str, value: &str) -> Result<Vec<u8>, KbsError> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|e| KbsError::TeeKey(format!("{field} is not base64url: {e}")))
}

/// The uncompressed SEC1 point of a JWK's coordinates, checked for length.
fn ec_point(curve: Curve, x: &str, y: &str) -> Result<Vec<u8>, KbsError> {
    let (x, y) = (b64("x", x)?, b64("y", y)?);
    let len = curve.coordinate_len();
    if x.len() != len || y.len() != len {
        return Err(KbsError::TeeKey(format!(
            "{} coordinates are {len} bytes each, got {} and {}",
            curve.name(),
            x.len(),
            y.len()
        )));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// The key-wrapping key JOSE derives from an ECDH secret for ECDH-ES+A256KW: Concat KDF
/// over SHA-256 with AlgorithmID "ECDH-ES+A256KW", empty PartyU/PartyV info and a
/// key length of 256 bits (RFC 7518 §4.6.2).
fn concat_kdf(z: &[u8]) -> Result<Zeroizing<[u8; 32]>, ()> {
    let alg = ALG_ECDH_ES_A256KW.as_bytes();
    let mut other_info = Vec::with_capacity(16 + alg.len());
    other_info.extend_from_slice(&(alg.len() as u32).to_be_bytes());
    other_info.extend_from_slice(alg);
    other_info.extend_from_slice(&0u32.to_be_bytes());
    other_info.extend_from_slice(&0u32.to_be_bytes());
    other_info.extend_from_slice(&256u32.to_be_bytes());
    let kdf = get_sskdf_digest_algorithm(SskdfDigestAlgorithmId::Sha256).ok_or(())?;
    let mut out = Zeroizing::new([0u8; 32]);
    sskdf_digest(kdf, z, &other_info, out.as_mut()).map_err(|_| ())?;
    Ok(out)
}

/// SubjectPublicKeyInfo DER of an RSA key given by modulus and exponent.
fn rsa_spki(n: &[u8], e: &[u8]) -> Result<Vec<u8>, KbsError> {
    use der::Encode;
    let bad = |e: der::Error| KbsError::TeeKey(format!("the RSA key does not encode: {e}"));
    let pkcs1 = pkcs1::RsaPublicKey {
        modulus: der::asn1::UintRef::new(n).map_err(bad)?,
        public_exponent: der::asn1::UintRef::new(e).map_err(bad)?,
    }
    .to_der()
    .map_err(bad)?;
    spki::SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION_OID,
            parameters: Some(der::asn1::Null.into()),
        },
        subject_public_key: der::asn1::BitString::from_bytes(&pkcs1).map_err(bad)?,
    }
    .to_der()
    .map_err(bad)
}

/// Seals `plaintext` for `tee_key`: what `/kbs/v0/resource` answers.
pub fn seal(tee_key: &TeePubKey, plaintext: &[u8]) -> Result<Response, KbsError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(KbsError::TooLarge {
            what: "resource",
            size: plaintext.len(),
            limit: MAX_PLAINTEXT_LEN,
        });
    }
    let cek = veritee_crypto::rand::secret_array::<CEK_LEN>().map_err(KbsError::crypto)?;
    let (protected, encrypted_key) = match tee_key {
        TeePubKey::EC { crv, alg, x, y } => {
            if alg != ALG_ECDH_ES_A256KW {
                return Err(KbsError::TeeKey(format!(
                    "an EC key must ask for {ALG_ECDH_ES_A256KW}, not {alg:?}"
                )));
            }
            let curve = Curve::from_name(crv)?;
            let peer = UnparsedPublicKey::new(curve.agreement(), ec_point(curve, x, y)?);
            let ephemeral = EphemeralPrivateKey::generate(curve.agreement(), &SystemRandom::new())
                .map_err(|_| KbsError::crypto("ECDH key generation"))?;
            let epk = ephemeral
                .compute_public_key()
                .map_err(|_| KbsError::crypto("ECDH public key"))?;
            let kek =
                agreement::agree_ephemeral(ephemeral, &peer, (), concat_kdf).map_err(|()| {
                    KbsError::TeeKey(format!("the {} key is not a valid point", curve.name()))
                })?;
            let mut wrapped = vec![0u8; CEK_LEN + 8];
            AesKek::new(&AES_256, kek.as_ref())
                .and_then(|k| k.wrap(cek.expose(), &mut wrapped).map(|_| ()))
                .map_err(|_| KbsError::crypto("AES key wrap"))?;
            let coordinates = &epk.as_ref()[1..];
            let (ex, ey) = coordinates.split_at(curve.coordinate_len());
            let mut other_fields = serde_json::Map::new();
            other_fields.insert(
                "epk".into(),
                serde_json::json!({
                    "crv": curve.name(),
                    "kty": "EC",
                    "x": URL_SAFE_NO_PAD.encode(ex),
                    "y": URL_SAFE_NO_PAD.encode(ey),
                }),
            );
            let header = ProtectedHeader {
                alg: ALG_ECDH_ES_A256KW.into(),
                enc: ENC_A256GCM.into(),
                other_fields,
            };
            (header, wrapped)
        }
        TeePubKey::RSA { alg, k_mod, k_exp } => {
            if alg != ALG_RSA_OAEP_256 {
                return Err(KbsError::TeeKey(format!(
                    "an RSA key must ask for {ALG_RSA_OAEP_256}, not {alg:?} (RSA1_5 is refused)"
                )));
            }
            let spki = rsa_spki(&b64("n", k_mod)?, &b64("e", k_exp)?)?;
            let key = PublicEncryptingKey::from_der(&spki)
                .map_err(|e| KbsError::TeeKey(format!("the RSA key is refused: {e}")))?;
            if key.key_size_bits() < MIN_RSA_BITS {
                return Err(KbsError::TeeKey(format!(
                    "the RSA key has {} bits; at least {MIN_RSA_BITS} are needed",
                    key.key_size_bits()
                )));
            }
            let key =
                OaepPublicEncryptingKey::new(key).map_err(|_| KbsError::crypto("RSA-OAEP key"))?;
            let mut out = vec![0u8; key.ciphertext_size()];
            let len = key
                .encrypt(&OAEP_SHA256_MGF1SHA256, cek.expose(), &mut out, None)
                .map_err(|_| KbsError::crypto("RSA-OAEP encryption"))?
                .len();
            out.truncate(len);
            let header = ProtectedHeader {
                alg: ALG_RSA_OAEP_256.into(),
                enc: ENC_A256GCM.into(),
                other_fields: serde_json::Map::new(),
            };
            (header, out)
        }
        TeePubKey::AKP { alg, .. } => {
            return Err(KbsError::TeeKey(format!(
                "AKP keys ({alg}) are experimental in CoCo and not offered here"
            )));
        }
    };
    let aad = protected
        .generate_aad()
        .map_err(|_| KbsError::crypto("JWE header encoding"))?;
    let iv = veritee_crypto::rand::array::<NONCE_LEN>().map_err(KbsError::crypto)?;
    let mut ciphertext = plaintext.to_vec();
    let tag = AeadKey::from_slice(cek.expose())
        .and_then(|k| k.seal_in_place_separate_tag(&iv, &aad, &mut ciphertext))
        .map_err(KbsError::crypto)?;
    Ok(Response {
        protected,
        encrypted_key,
        aad: None,
        iv: iv.to_vec(),
        ciphertext,
        tag: tag.to_vec(),
    })
}

/// A guest's TEE key pair: what a CoCo guest generates to receive resources. veritee
/// uses it in `veritee kbs get-resource`, in its benches and in tests.
pub enum TeeKeyPair {
    /// ECDH-ES+A256KW on a NIST curve.
    Ec(Curve, PrivateKey),
    /// RSA-OAEP-256.
    Rsa(PrivateDecryptingKey),
}

impl core::fmt::Debug for TeeKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ec(curve, _) => write!(f, "TeeKeyPair::Ec({})", curve.name()),
            Self::Rsa(_) => f.write_str("TeeKeyPair::Rsa"),
        }
    }
}

impl TeeKeyPair {
    /// A fresh EC key pair on `curve` (P-256 is CoCo's default).
    pub fn generate_ec(curve: Curve) -> Result<Self, KbsError> {
        PrivateKey::generate(curve.agreement())
            .map(|k| Self::Ec(curve, k))
            .map_err(|_| KbsError::crypto("EC key generation"))
    }

    /// A fresh 2048-bit RSA key pair.
    pub fn generate_rsa() -> Result<Self, KbsError> {
        PrivateDecryptingKey::generate(KeySize::Rsa2048)
            .map(Self::Rsa)
            .map_err(|_| KbsError::crypto("RSA key generation"))
    }

    /// The public key as the guest sends it in its runtime data.
    pub fn public_jwk(&self) -> Result<TeePubKey, KbsError> {
        match self {
            Self::Ec(curve, key) => {
                let public = key
                    .compute_public_key()
                    .map_err(|_| KbsError::crypto("EC public key"))?;
                let (x, y) = public.as_ref()[1..].split_at(curve.coordinate_len());
                Ok(TeePubKey::EC {
                    crv: curve.name().into(),
                    alg: ALG_ECDH_ES_A256KW.into(),
                    x: URL_SAFE_NO_PAD.encode(x),
                    y: URL_SAFE_NO_PAD.encode(y),
                })
            }
            Self::Rsa(key) => {
                use aws_lc_rs::encoding::AsDer;
                let der = key
                    .public_key()
                    .as_der()
                    .map_err(|_| KbsError::crypto("RSA public key"))?;
                let spki = <spki::SubjectPublicKeyInfoRef as der::Decode>::from_der(der.as_ref())
                    .map_err(|e| KbsError::TeeKey(format!("RSA public key: {e}")))?;
                let pkcs1 = <pkcs1::RsaPublicKey as der::Decode>::from_der(
                    spki.subject_public_key.raw_bytes(),
                )
                .map_err(|e| KbsError::TeeKey(format!("RSA public key: {e}")))?;
                Ok(TeePubKey::RSA {
                    alg: ALG_RSA_OAEP_256.into(),
                    k_mod: URL_SAFE_NO_PAD.encode(pkcs1.modulus.as_bytes()),
                    k_exp: URL_SAFE_NO_PAD.encode(pkcs1.public_exponent.as_bytes()),
                })
            }
        }
    }

    /// Opens a response sealed to this key, as the guest does.
    pub fn open(&self, response: &Response) -> Result<Zeroizing<Vec<u8>>, KbsError> {
        let refused = || KbsError::Jwe("the response does not open with this key".into());
        if response.protected.enc != ENC_A256GCM {
            return Err(KbsError::Jwe(format!(
                "content encryption {:?} is not {ENC_A256GCM}",
                response.protected.enc
            )));
        }
        let mut cek = Zeroizing::new([0u8; CEK_LEN]);
        match self {
            Self::Ec(curve, key) => {
                if response.protected.alg != ALG_ECDH_ES_A256KW {
                    return Err(refused());
                }
                let epk = response
                    .protected
                    .other_fields
                    .get("epk")
                    .ok_or_else(|| KbsError::Jwe("the header has no epk".into()))?;
                let field = |name: &str| {
                    epk.get(name)
                        .and_then(|v| v.as_str())
                        .ok_or_else(|| KbsError::Jwe(format!("epk has no {name}")))
                };
                if Curve::from_name(field("crv")?)? != *curve {
                    return Err(refused());
                }
                let peer = UnparsedPublicKey::new(
                    curve.agreement(),
                    ec_point(*curve, field("x")?, field("y")?)?,
                );
                let kek = agreement::agree(key, &peer, (), concat_kdf).map_err(|()| refused())?;
                let unwrapped = AesKek::new(&AES_256, kek.as_ref())
                    .and_then(|k| {
                        k.unwrap(&response.encrypted_key, cek.as_mut())
                            .map(|o| o.len())
                    })
                    .map_err(|_| refused())?;
                if unwrapped != CEK_LEN {
                    return Err(refused());
                }
            }
            Self::Rsa(key) => {
                if response.protected.alg != ALG_RSA_OAEP_256 {
                    return Err(refused());
                }
                let key = OaepPrivateDecryptingKey::new(key.clone()).map_err(|_| refused())?;
                let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
                let opened = key
                    .decrypt(
                        &OAEP_SHA256_MGF1SHA256,
                        &response.encrypted_key,
                        &mut out,
                        None,
                    )
                    .map_err(|_| refused())?;
                if opened.len() != CEK_LEN {
                    return Err(refused());
                }
                cek.copy_from_slice(opened);
            }
        }
        let iv: [u8; NONCE_LEN] =
            response.iv.as_slice().try_into().map_err(|_| {
                KbsError::Jwe(format!("the IV is {} bytes, not 12", response.iv.len()))
            })?;
        if response.tag.len() != TAG_LEN {
            return Err(KbsError::Jwe(format!(
                "the tag is {} bytes, not {TAG_LEN}",
                response.tag.len()
            )));
        }
        let aad = response
            .protected
            .generate_aad()
            .map_err(|_| KbsError::Jwe("the header does not encode".into()))?;
        let mut sealed = Zeroizing::new(Vec::with_capacity(response.ciphertext.len() + TAG_LEN));
        sealed.extend_from_slice(&response.ciphertext);
        sealed.extend_from_slice(&response.tag);
        let key = AeadKey::from_slice(cek.as_ref()).map_err(KbsError::crypto)?;
        let len = key
            .open_in_place(&iv, &aad, sealed.as_mut_slice())
            .map_err(|_| refused())?
            .len();
        sealed.truncate(len);
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<TeeKeyPair> {
        vec![
            TeeKeyPair::generate_ec(Curve::P256).unwrap(),
            TeeKeyPair::generate_ec(Curve::P521).unwrap(),
            TeeKeyPair::generate_rsa().unwrap(),
        ]
    }

    #[test]
    fn each_offered_key_type_round_trips_through_json() {
        for pair in keys() {
            let sealed = seal(&pair.public_jwk().unwrap(), b"the resource").unwrap();
            // Through the wire form, as the guest reads it.
            let wire = serde_json::to_string(&sealed).unwrap();
            let read: Response = serde_json::from_str(&wire).unwrap();
            assert_eq!(&pair.open(&read).unwrap()[..], b"the resource", "{pair:?}");
        }
    }

    #[test]
    fn a_response_for_another_key_does_not_open() {
        let (a, b) = (
            TeeKeyPair::generate_ec(Curve::P256).unwrap(),
            TeeKeyPair::generate_ec(Curve::P256).unwrap(),
        );
        let sealed = seal(&a.public_jwk().unwrap(), b"x").unwrap();
        assert!(b.open(&sealed).is_err());
    }

    #[test]
    fn every_field_of_a_response_is_authenticated() {
        for pair in keys() {
            let sealed = seal(&pair.public_jwk().unwrap(), b"payload bytes").unwrap();
            let mut tampered = Vec::new();
            let mut r = sealed.clone();
            r.ciphertext[0] ^= 1;
            tampered.push(r);
            let mut r = sealed.clone();
            r.tag[3] ^= 1;
            tampered.push(r);
            let mut r = sealed.clone();
            r.iv[0] ^= 1;
            tampered.push(r);
            let mut r = sealed.clone();
            r.encrypted_key[5] ^= 1;
            tampered.push(r);
            let mut r = sealed.clone();
            r.encrypted_key.pop();
            tampered.push(r);
            let mut r = sealed.clone();
            r.protected
                .other_fields
                .insert("kid".into(), serde_json::json!("added"));
            tampered.push(r);
            let mut r = sealed.clone();
            r.ciphertext.pop();
            tampered.push(r);
            for (i, r) in tampered.iter().enumerate() {
                assert!(pair.open(r).is_err(), "{pair:?} tampering #{i}");
            }
        }
    }

    #[test]
    fn weak_or_malformed_keys_are_refused_with_a_reason() {
        let good = TeeKeyPair::generate_ec(Curve::P256)
            .unwrap()
            .public_jwk()
            .unwrap();
        let TeePubKey::EC { x, y, .. } = good.clone() else {
            unreachable!()
        };
        let cases = [
            TeePubKey::EC {
                crv: "P-384".into(),
                alg: ALG_ECDH_ES_A256KW.into(),
                x: x.clone(),
                y: y.clone(),
            },
            TeePubKey::EC {
                crv: "P-256".into(),
                alg: "ECDH-ES".into(),
                x: x.clone(),
                y: y.clone(),
            },
            TeePubKey::EC {
                crv: "P-256".into(),
                alg: ALG_ECDH_ES_A256KW.into(),
                x: x[..10].into(),
                y: y.clone(),
            },
            // A point off the curve.
            TeePubKey::EC {
                crv: "P-256".into(),
                alg: ALG_ECDH_ES_A256KW.into(),
                x: URL_SAFE_NO_PAD.encode([1u8; 32]),
                y: URL_SAFE_NO_PAD.encode([2u8; 32]),
            },
            TeePubKey::RSA {
                alg: "RSA1_5".into(),
                k_mod: URL_SAFE_NO_PAD.encode([0xC5u8; 256]),
                k_exp: "AQAB".into(),
            },
            TeePubKey::RSA {
                alg: ALG_RSA_OAEP_256.into(),
                k_mod: URL_SAFE_NO_PAD.encode([0xC5u8; 128]),
                k_exp: "AQAB".into(),
            },
            TeePubKey::AKP {
                alg: "ML-KEM-768+A192KW".into(),
                public_key: "AAAA".into(),
            },
        ];
        for key in cases {
            let err = seal(&key, b"x").unwrap_err();
            assert!(matches!(err, KbsError::TeeKey(_)), "{key:?}: {err}");
        }
    }
}
