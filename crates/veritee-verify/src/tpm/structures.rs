//! TPM 2.0 structures that quotes and certifications are made of (TPM 2.0 Library,
//! Part 2: Structures), parsed with every length bounded by the input. All integers are
//! big-endian.
//!
//! ```text
//! TPMS_ATTEST (quote or certify)           TPMT_SIGNATURE
//!   u32    magic = 0xFF544347               u16 sigAlg (RSASSA 0x14, RSAPSS 0x16, ECDSA 0x18)
//!   u16    type  = 0x8018 (ATTEST_QUOTE)    RSASSA/RSAPSS: u16 hash, TPM2B signature
//!               or 0x8017 (ATTEST_CERTIFY)  ECDSA:         u16 hash, TPM2B r, TPM2B s
//!   TPM2B  qualifiedSigner
//!   TPM2B  extraData (the nonce)           TPMT_PUBLIC
//!   TPMS_CLOCK_INFO                          u16 type (RSA 0x01, ECC 0x23), u16 nameAlg
//!     u64 clock, u32 resetCount,             u32 objectAttributes, TPM2B authPolicy
//!     u32 restartCount, u8 safe              TPMT_SYM_DEF_OBJECT: u16 alg, and unless
//!   u64    firmwareVersion                     alg is NULL: u16 keyBits, u16 mode
//!   quote: TPMS_QUOTE_INFO                   RSA: TPMT_RSA_SCHEME (u16 scheme, u16 hash
//!     TPML_PCR_SELECTION (kept raw too)           unless NULL), u16 keyBits,
//!       u32 count, count x                        u32 exponent (0 = 65537), TPM2B modulus
//!         (u16 hash, u8 sizeofSelect,        ECC: TPMT_ECC_SCHEME, u16 curveID,
//!          sizeofSelect bytes bitmap)             TPMT_KDF_SCHEME, TPM2B x, TPM2B y
//!     TPM2B  pcrDigest
//!   certify: TPMS_CERTIFY_INFO
//!     TPM2B_NAME name                      TPM2B_NAME of an object: u16 nameAlg, then
//!     TPM2B_NAME qualifiedName               H_nameAlg(TPMT_PUBLIC)
//!
//! TPM2B = u16 size, then size bytes.    PCR bitmap: byte i bit j selects PCR 8*i+j.
//! ```

use veritee_attest::VerifyError;
use veritee_attest::bytes::Reader;

/// TPM_GENERATED_VALUE: the magic of every TPMS_ATTEST the TPM produced itself.
pub const TPM_GENERATED_VALUE: u32 = 0xFF54_4347;
/// TPM_ST_ATTEST_QUOTE.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
/// TPM_ST_ATTEST_CERTIFY.
pub const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;
/// TPM_ALG_AES.
pub const TPM_ALG_AES: u16 = 0x0006;
/// TPM_ALG_CFB.
pub const TPM_ALG_CFB: u16 = 0x0043;
/// TPM_ALG_OAEP.
pub const TPM_ALG_OAEP: u16 = 0x0017;
/// Longest TPM2B_NAME: a u16 algorithm and a SHA-512 digest.
pub const MAX_NAME_LEN: usize = 2 + 64;
/// TPM_ALG_RSA.
pub const TPM_ALG_RSA: u16 = 0x0001;
/// TPM_ALG_SHA1.
pub const TPM_ALG_SHA1: u16 = 0x0004;
/// TPM_ALG_SHA256.
pub const TPM_ALG_SHA256: u16 = 0x000B;
/// TPM_ALG_SHA384.
pub const TPM_ALG_SHA384: u16 = 0x000C;
/// TPM_ALG_SHA512.
pub const TPM_ALG_SHA512: u16 = 0x000D;
/// TPM_ALG_NULL.
pub const TPM_ALG_NULL: u16 = 0x0010;
/// TPM_ALG_RSASSA (PKCS#1 v1.5).
pub const TPM_ALG_RSASSA: u16 = 0x0014;
/// TPM_ALG_RSAPSS.
pub const TPM_ALG_RSAPSS: u16 = 0x0016;
/// TPM_ALG_ECDSA.
pub const TPM_ALG_ECDSA: u16 = 0x0018;
/// TPM_ALG_ECC.
pub const TPM_ALG_ECC: u16 = 0x0023;
/// Most PCR banks a selection may list (one per hash algorithm).
pub const MAX_PCR_BANKS: u32 = 16;
/// Longest PCR bitmap (PCR_SELECT_MAX for 32 PCRs).
pub const MAX_PCR_SELECT: usize = 4;
/// Size of TPMS_CLOCK_INFO.
pub const CLOCK_INFO_LEN: usize = 8 + 4 + 4 + 1;

const _: () = assert!(CLOCK_INFO_LEN == 17);

/// A big-endian view over [`Reader`].
pub(crate) struct Be<'a>(pub Reader<'a>);

impl<'a> Be<'a> {
    pub(crate) fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Self(Reader::new(what, bytes))
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, VerifyError> {
        Ok(self.0.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &str) -> Result<u16, VerifyError> {
        Ok(u16::from_be_bytes(self.0.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &str) -> Result<u32, VerifyError> {
        Ok(u32::from_be_bytes(self.0.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &str) -> Result<u64, VerifyError> {
        Ok(u64::from_be_bytes(self.0.array(field)?))
    }

    /// A TPM2B: u16 size, then that many bytes (bounded by the input).
    pub(crate) fn tpm2b(&mut self, field: &str) -> Result<&'a [u8], VerifyError> {
        let len = self.u16(field)?;
        self.0.take(usize::from(len), field)
    }
}

/// The digest length of a TPM hash algorithm.
pub fn digest_len(alg: u16) -> Option<usize> {
    match alg {
        TPM_ALG_SHA1 => Some(20),
        TPM_ALG_SHA256 => Some(32),
        TPM_ALG_SHA384 => Some(48),
        TPM_ALG_SHA512 => Some(64),
        _ => None,
    }
}

/// The name of a TPM hash algorithm, for claims and messages.
pub fn hash_name(alg: u16) -> String {
    match alg {
        TPM_ALG_SHA1 => "sha1".into(),
        TPM_ALG_SHA256 => "sha256".into(),
        TPM_ALG_SHA384 => "sha384".into(),
        TPM_ALG_SHA512 => "sha512".into(),
        other => format!("alg {other:#06x}"),
    }
}

/// One bank of a PCR selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    /// The bank's hash algorithm.
    pub hash: u16,
    /// Selected PCR indices, ascending.
    pub pcrs: Vec<u32>,
}

/// A TPMS_ATTEST of type quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteAttest {
    /// qualifiedSigner.
    pub qualified_signer: Vec<u8>,
    /// extraData: the caller's nonce.
    pub extra_data: Vec<u8>,
    /// clockInfo.clock (milliseconds).
    pub clock: u64,
    /// clockInfo.resetCount.
    pub reset_count: u32,
    /// clockInfo.restartCount.
    pub restart_count: u32,
    /// clockInfo.safe.
    pub safe: bool,
    /// firmwareVersion.
    pub firmware_version: u64,
    /// The PCR selection quoted.
    pub selections: Vec<PcrSelection>,
    /// The TPML_PCR_SELECTION exactly as marshalled in the quote (what a PolicyPCR
    /// digest is computed over).
    pub pcr_selection_raw: Vec<u8>,
    /// pcrDigest.
    pub pcr_digest: Vec<u8>,
}

/// The fields every TPMS_ATTEST starts with, after magic and type.
struct AttestHeader {
    qualified_signer: Vec<u8>,
    extra_data: Vec<u8>,
    clock: u64,
    reset_count: u32,
    restart_count: u32,
    safe: bool,
    firmware_version: u64,
}

/// Parses magic, type (which must be `expected`, named `type_name`) and the common
/// fields of a TPMS_ATTEST.
fn attest_header(
    r: &mut Be<'_>,
    expected: u16,
    type_name: &str,
) -> Result<AttestHeader, VerifyError> {
    const WHAT: &str = "TPMS_ATTEST";
    let magic = r.u32("magic")?;
    if magic != TPM_GENERATED_VALUE {
        return Err(VerifyError::malformed(
            WHAT,
            format!(
                "magic {magic:#010x} is not TPM_GENERATED_VALUE (0xff544347): not produced by a TPM"
            ),
        ));
    }
    let kind = r.u16("type")?;
    if kind != expected {
        return Err(VerifyError::malformed(
            WHAT,
            format!("type {kind:#06x} is not {type_name} ({expected:#06x})"),
        ));
    }
    Ok(AttestHeader {
        qualified_signer: r.tpm2b("qualifiedSigner")?.to_vec(),
        extra_data: r.tpm2b("extraData")?.to_vec(),
        clock: r.u64("clock")?,
        reset_count: r.u32("resetCount")?,
        restart_count: r.u32("restartCount")?,
        safe: r.u8("safe")? != 0,
        firmware_version: r.u64("firmwareVersion")?,
    })
}

/// A TPM2B_NAME, bounded by [`MAX_NAME_LEN`].
fn tpm2b_name(r: &mut Be<'_>, field: &str) -> Result<Vec<u8>, VerifyError> {
    let name = r.tpm2b(field)?;
    if name.len() > MAX_NAME_LEN {
        return Err(VerifyError::malformed(
            "TPMS_ATTEST",
            format!(
                "{field} is {} bytes, a TPM name is at most {MAX_NAME_LEN}",
                name.len()
            ),
        ));
    }
    Ok(name.to_vec())
}

impl QuoteAttest {
    /// Parses a TPMS_ATTEST that must be a quote produced by the TPM. Bytes after the
    /// structure are an error: the signature covers exactly what is parsed.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        const WHAT: &str = "TPMS_ATTEST";
        let mut r = Be::new(WHAT, bytes);
        let header = attest_header(&mut r, TPM_ST_ATTEST_QUOTE, "TPM_ST_ATTEST_QUOTE")?;
        let selection_start = r.0.offset();
        let count = r.u32("pcrSelect count")?;
        if count > MAX_PCR_BANKS {
            return Err(VerifyError::malformed(
                WHAT,
                format!("{count} PCR banks selected, at most {MAX_PCR_BANKS} exist"),
            ));
        }
        let mut selections = Vec::new();
        for _ in 0..count {
            let hash = r.u16("pcrSelect hash")?;
            let size = usize::from(r.u8("sizeofSelect")?);
            if size > MAX_PCR_SELECT {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!("PCR bitmap of {size} bytes, at most {MAX_PCR_SELECT}"),
                ));
            }
            let bitmap = r.0.take(size, "pcrSelect bitmap")?;
            let mut pcrs = Vec::new();
            for (byte_index, byte) in bitmap.iter().enumerate() {
                for bit in 0..8u32 {
                    if byte & (1 << bit) != 0 {
                        pcrs.push(byte_index as u32 * 8 + bit);
                    }
                }
            }
            selections.push(PcrSelection { hash, pcrs });
        }
        let pcr_selection_raw = bytes
            .get(selection_start..r.0.offset())
            .unwrap_or_default()
            .to_vec();
        let pcr_digest = r.tpm2b("pcrDigest")?.to_vec();
        r.0.finish()?;
        Ok(Self {
            qualified_signer: header.qualified_signer,
            extra_data: header.extra_data,
            clock: header.clock,
            reset_count: header.reset_count,
            restart_count: header.restart_count,
            safe: header.safe,
            firmware_version: header.firmware_version,
            selections,
            pcr_selection_raw,
            pcr_digest,
        })
    }
}

/// A TPMS_ATTEST of type certify: the TPM vouches that an object with `name` is loaded
/// in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifyAttest {
    /// qualifiedSigner.
    pub qualified_signer: Vec<u8>,
    /// extraData: the caller's nonce.
    pub extra_data: Vec<u8>,
    /// clockInfo.clock (milliseconds).
    pub clock: u64,
    /// clockInfo.resetCount.
    pub reset_count: u32,
    /// clockInfo.restartCount.
    pub restart_count: u32,
    /// clockInfo.safe.
    pub safe: bool,
    /// firmwareVersion.
    pub firmware_version: u64,
    /// certifyInfo.name: the certified object's name (nameAlg || H(TPMT_PUBLIC)).
    pub name: Vec<u8>,
    /// certifyInfo.qualifiedName.
    pub qualified_name: Vec<u8>,
}

impl CertifyAttest {
    /// Parses a TPMS_ATTEST that must be a certification (TPM2_Certify) produced by the
    /// TPM; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        let mut r = Be::new("TPMS_ATTEST", bytes);
        let header = attest_header(&mut r, TPM_ST_ATTEST_CERTIFY, "TPM_ST_ATTEST_CERTIFY")?;
        let name = tpm2b_name(&mut r, "certified name")?;
        let qualified_name = tpm2b_name(&mut r, "certified qualifiedName")?;
        r.0.finish()?;
        Ok(Self {
            qualified_signer: header.qualified_signer,
            extra_data: header.extra_data,
            clock: header.clock,
            reset_count: header.reset_count,
            restart_count: header.restart_count,
            safe: header.safe,
            firmware_version: header.firmware_version,
            name,
            qualified_name,
        })
    }
}

/// A TPMT_SIGNATURE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmSignature {
    /// RSASSA-PKCS1-v1_5.
    Rsassa {
        /// Hash algorithm.
        hash: u16,
        /// Signature bytes.
        sig: Vec<u8>,
    },
    /// RSASSA-PSS.
    Rsapss {
        /// Hash algorithm.
        hash: u16,
        /// Signature bytes.
        sig: Vec<u8>,
    },
    /// ECDSA, r and s big-endian.
    Ecdsa {
        /// Hash algorithm.
        hash: u16,
        /// r.
        r: Vec<u8>,
        /// s.
        s: Vec<u8>,
    },
}

impl TpmSignature {
    /// Parses a TPMT_SIGNATURE; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        const WHAT: &str = "TPMT_SIGNATURE";
        let mut r = Be::new(WHAT, bytes);
        let alg = r.u16("sigAlg")?;
        let sig = match alg {
            TPM_ALG_RSASSA | TPM_ALG_RSAPSS => {
                let hash = r.u16("hash")?;
                let sig = r.tpm2b("signature")?.to_vec();
                if alg == TPM_ALG_RSASSA {
                    Self::Rsassa { hash, sig }
                } else {
                    Self::Rsapss { hash, sig }
                }
            }
            TPM_ALG_ECDSA => {
                let hash = r.u16("hash")?;
                let r_ = r.tpm2b("signatureR")?.to_vec();
                let s = r.tpm2b("signatureS")?.to_vec();
                Self::Ecdsa { hash, r: r_, s }
            }
            other => {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!("signature algorithm {other:#06x} is not RSASSA, RSAPSS or ECDSA"),
                ));
            }
        };
        r.0.finish()?;
        Ok(sig)
    }

    /// The hash algorithm the signature was made with.
    pub fn hash(&self) -> u16 {
        match self {
            Self::Rsassa { hash, .. } | Self::Rsapss { hash, .. } | Self::Ecdsa { hash, .. } => {
                *hash
            }
        }
    }
}

/// The key inside a TPMT_PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmPublicKey {
    /// RSA: modulus and public exponent.
    Rsa {
        /// Modulus, big-endian.
        n: Vec<u8>,
        /// Exponent (65537 when the structure says 0).
        e: u32,
        /// keyBits, as the structure states it.
        bits: u16,
    },
    /// ECC: curve and point.
    Ecc {
        /// TPM_ECC_CURVE.
        curve: u16,
        /// x, big-endian.
        x: Vec<u8>,
        /// y, big-endian.
        y: Vec<u8>,
    },
}

/// A TPMT_SYM_DEF_OBJECT that is not NULL: the symmetric algorithm a restricted
/// decryption key (a parent, an EK) protects its children or credentials with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymDefObject {
    /// The algorithm (TPM_ALG_AES...).
    pub alg: u16,
    /// Key size in bits.
    pub key_bits: u16,
    /// Block cipher mode (TPM_ALG_CFB...).
    pub mode: u16,
}

/// A key's signing or encryption scheme (TPMT_RSA_SCHEME, TPMT_ECC_SCHEME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpmScheme {
    /// The scheme (TPM_ALG_NULL, TPM_ALG_RSASSA, TPM_ALG_OAEP...).
    pub alg: u16,
    /// Its hash algorithm; `None` when the scheme is NULL.
    pub hash: Option<u16>,
}

/// A TPMT_PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmPublic {
    /// nameAlg.
    pub name_alg: u16,
    /// objectAttributes.
    pub attributes: u32,
    /// authPolicy: the policy digest that authorizes use of the key (empty for none).
    pub auth_policy: Vec<u8>,
    /// The symmetric definition; `None` when it is TPM_ALG_NULL.
    pub symmetric: Option<SymDefObject>,
    /// The key's scheme.
    pub scheme: TpmScheme,
    /// The key.
    pub key: TpmPublicKey,
}

/// TPM_ALG_RSAES (PKCS#1 v1.5 encryption): a scheme with no parameters.
pub const TPM_ALG_RSAES: u16 = 0x0015;
/// TPM_ALG_ECDAA: a scheme with a hash and a commit count.
pub const TPM_ALG_ECDAA: u16 = 0x001A;

fn scheme(r: &mut Be<'_>, field: &str) -> Result<TpmScheme, VerifyError> {
    let alg = r.u16(field)?;
    let hash = match alg {
        // TPMS_EMPTY: no parameters.
        TPM_ALG_NULL | TPM_ALG_RSAES => None,
        // TPMS_SCHEME_ECDAA: the hash, then the commit count.
        TPM_ALG_ECDAA => {
            let hash = r.u16(field)?;
            r.u16(field)?;
            Some(hash)
        }
        // Every other RSA and ECC scheme, and every KDF, is TPMS_SCHEME_HASH.
        _ => Some(r.u16(field)?),
    };
    Ok(TpmScheme { alg, hash })
}

impl TpmPublic {
    /// Parses a TPMT_PUBLIC of an RSA or ECC key; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        const WHAT: &str = "TPMT_PUBLIC";
        let mut r = Be::new(WHAT, bytes);
        let kind = r.u16("type")?;
        let name_alg = r.u16("nameAlg")?;
        let attributes = r.u32("objectAttributes")?;
        let auth_policy = r.tpm2b("authPolicy")?.to_vec();
        // TPMT_SYM_DEF_OBJECT: algorithm, then key bits and mode unless NULL.
        let symmetric = match r.u16("symmetric")? {
            TPM_ALG_NULL => None,
            alg => Some(SymDefObject {
                alg,
                key_bits: r.u16("symmetric keyBits")?,
                mode: r.u16("symmetric mode")?,
            }),
        };
        let (scheme, key) = match kind {
            TPM_ALG_RSA => {
                let scheme = scheme(&mut r, "RSA scheme")?;
                let bits = r.u16("keyBits")?;
                let e = match r.u32("exponent")? {
                    0 => 65537,
                    e => e,
                };
                let n = r.tpm2b("modulus")?.to_vec();
                (scheme, TpmPublicKey::Rsa { n, e, bits })
            }
            TPM_ALG_ECC => {
                let scheme = scheme(&mut r, "ECC scheme")?;
                let curve = r.u16("curveID")?;
                self::scheme(&mut r, "KDF scheme")?;
                let x = r.tpm2b("x")?.to_vec();
                let y = r.tpm2b("y")?.to_vec();
                (scheme, TpmPublicKey::Ecc { curve, x, y })
            }
            other => {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!("key type {other:#06x} is neither RSA nor ECC"),
                ));
            }
        };
        r.0.finish()?;
        Ok(Self {
            name_alg,
            attributes,
            auth_policy,
            symmetric,
            scheme,
            key,
        })
    }
}

/// Encodes an RSA public key as a PKCS#1 `RSAPublicKey` (what aws-lc-rs verifies with).
pub fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>, VerifyError> {
    use der::{Encode, Header, Tag, asn1::UintRef};
    let bad = |e: der::Error| VerifyError::malformed("RSA public key", e);
    let n = UintRef::new(n).map_err(bad)?;
    let e = UintRef::new(e).map_err(bad)?;
    let body = (n.encoded_len().map_err(bad)? + e.encoded_len().map_err(bad)?).map_err(bad)?;
    let mut out = Vec::new();
    Header::new(Tag::Sequence, body)
        .map_err(bad)?
        .encode_to_vec(&mut out)
        .map_err(bad)?;
    n.encode_to_vec(&mut out).map_err(bad)?;
    e.encode_to_vec(&mut out).map_err(bad)?;
    Ok(out)
}

/// Encodes an RSA public key as a DER SubjectPublicKeyInfo (rsaEncryption), the form
/// RSA-OAEP encryption takes a public key in.
pub fn rsa_spki_der(n: &[u8], e: u32) -> Result<Vec<u8>, VerifyError> {
    use der::{Any, Encode, asn1::BitString};
    use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    const RSA_ENCRYPTION: der::asn1::ObjectIdentifier =
        der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    let bad = |e: der::Error| VerifyError::malformed("RSA public key", e);
    let e = e.to_be_bytes();
    let start = e.iter().position(|b| *b != 0).unwrap_or(3);
    let pkcs1 = rsa_public_key_der(n, &e[start..])?;
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        subject_public_key: BitString::from_bytes(&pkcs1).map_err(bad)?,
    }
    .to_der()
    .map_err(bad)
}

/// Concatenates the PCR values a selection names, in selection order, looking each up
/// with `value(bank_hash, index)`, and checks each has its bank's digest length.
pub fn selected_pcr_values<'v>(
    selections: &[PcrSelection],
    mut value: impl FnMut(u16, u32) -> Option<&'v [u8]>,
) -> Result<Vec<u8>, VerifyError> {
    let mut out = Vec::new();
    for sel in selections {
        let len = digest_len(sel.hash).ok_or_else(|| {
            VerifyError::malformed(
                "TPM quote",
                format!("PCR bank {} is not a known hash", hash_name(sel.hash)),
            )
        })?;
        for &index in &sel.pcrs {
            let v = value(sel.hash, index).ok_or_else(|| {
                VerifyError::Inconsistent(format!(
                    "the quote selects {} PCR {index}, whose value is not in the evidence",
                    hash_name(sel.hash)
                ))
            })?;
            if v.len() != len {
                return Err(VerifyError::malformed(
                    "PCR value",
                    format!(
                        "{} PCR {index} has {} bytes, expected {len}",
                        hash_name(sel.hash),
                        v.len()
                    ),
                ));
            }
            out.extend_from_slice(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_encoding_round_trips_through_der() {
        let der = rsa_public_key_der(&[0x80, 1, 2], &[1, 0, 1]).unwrap();
        // SEQUENCE { INTEGER 0x00800102, INTEGER 0x010001 }
        assert_eq!(hex::encode(der), "300b0204008001020203010001");
    }
}
