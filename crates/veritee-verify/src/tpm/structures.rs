//! TPM 2.0 structures that quotes are made of (TPM 2.0 Library, Part 2: Structures),
//! parsed with every length bounded by the input. All integers are big-endian.
//!
//! ```text
//! TPMS_ATTEST (quote)                      TPMT_SIGNATURE
//!   u32    magic = 0xFF544347               u16 sigAlg (RSASSA 0x14, RSAPSS 0x16, ECDSA 0x18)
//!   u16    type  = 0x8018 (ATTEST_QUOTE)    RSASSA/RSAPSS: u16 hash, TPM2B signature
//!   TPM2B  qualifiedSigner                  ECDSA:         u16 hash, TPM2B r, TPM2B s
//!   TPM2B  extraData (the nonce)
//!   TPMS_CLOCK_INFO                        TPMT_PUBLIC
//!     u64 clock, u32 resetCount,             u16 type (RSA 0x01, ECC 0x23), u16 nameAlg
//!     u32 restartCount, u8 safe              u32 objectAttributes, TPM2B authPolicy
//!   u64    firmwareVersion                   RSA: TPMT_SYM_DEF_OBJECT, TPMT_RSA_SCHEME,
//!   TPMS_QUOTE_INFO                               u16 keyBits, u32 exponent (0 = 65537),
//!     TPML_PCR_SELECTION                          TPM2B modulus
//!       u32 count, count x                   ECC: TPMT_SYM_DEF_OBJECT, TPMT_ECC_SCHEME,
//!         (u16 hash, u8 sizeofSelect,             u16 curveID, TPMT_KDF_SCHEME,
//!          sizeofSelect bytes bitmap)             TPM2B x, TPM2B y
//!     TPM2B  pcrDigest
//!
//! TPM2B = u16 size, then size bytes.    PCR bitmap: byte i bit j selects PCR 8*i+j.
//! ```

use veritee_attest::VerifyError;
use veritee_attest::bytes::Reader;

/// TPM_GENERATED_VALUE: the magic of every TPMS_ATTEST the TPM produced itself.
pub const TPM_GENERATED_VALUE: u32 = 0xFF54_4347;
/// TPM_ST_ATTEST_QUOTE.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
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
    /// pcrDigest.
    pub pcr_digest: Vec<u8>,
}

impl QuoteAttest {
    /// Parses a TPMS_ATTEST that must be a quote produced by the TPM. Bytes after the
    /// structure are an error: the signature covers exactly what is parsed.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        const WHAT: &str = "TPMS_ATTEST";
        let mut r = Be::new(WHAT, bytes);
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
        if kind != TPM_ST_ATTEST_QUOTE {
            return Err(VerifyError::malformed(
                WHAT,
                format!("type {kind:#06x} is not TPM_ST_ATTEST_QUOTE (0x8018)"),
            ));
        }
        let qualified_signer = r.tpm2b("qualifiedSigner")?.to_vec();
        let extra_data = r.tpm2b("extraData")?.to_vec();
        let clock = r.u64("clock")?;
        let reset_count = r.u32("resetCount")?;
        let restart_count = r.u32("restartCount")?;
        let safe = r.u8("safe")? != 0;
        let firmware_version = r.u64("firmwareVersion")?;
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
        let pcr_digest = r.tpm2b("pcrDigest")?.to_vec();
        r.0.finish()?;
        Ok(Self {
            qualified_signer,
            extra_data,
            clock,
            reset_count,
            restart_count,
            safe,
            firmware_version,
            selections,
            pcr_digest,
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

/// A TPMT_PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmPublic {
    /// nameAlg.
    pub name_alg: u16,
    /// objectAttributes.
    pub attributes: u32,
    /// The key.
    pub key: TpmPublicKey,
}

fn skip_scheme(r: &mut Be<'_>, field: &str) -> Result<(), VerifyError> {
    if r.u16(field)? != TPM_ALG_NULL {
        r.u16(field)?; // the scheme's hash algorithm
    }
    Ok(())
}

impl TpmPublic {
    /// Parses a TPMT_PUBLIC of an RSA or ECC key; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        const WHAT: &str = "TPMT_PUBLIC";
        let mut r = Be::new(WHAT, bytes);
        let kind = r.u16("type")?;
        let name_alg = r.u16("nameAlg")?;
        let attributes = r.u32("objectAttributes")?;
        r.tpm2b("authPolicy")?;
        // TPMT_SYM_DEF_OBJECT: algorithm, then key bits and mode unless NULL.
        if r.u16("symmetric")? != TPM_ALG_NULL {
            r.u16("symmetric keyBits")?;
            r.u16("symmetric mode")?;
        }
        let key = match kind {
            TPM_ALG_RSA => {
                skip_scheme(&mut r, "RSA scheme")?;
                r.u16("keyBits")?;
                let e = match r.u32("exponent")? {
                    0 => 65537,
                    e => e,
                };
                let n = r.tpm2b("modulus")?.to_vec();
                TpmPublicKey::Rsa { n, e }
            }
            TPM_ALG_ECC => {
                skip_scheme(&mut r, "ECC scheme")?;
                let curve = r.u16("curveID")?;
                skip_scheme(&mut r, "KDF scheme")?;
                let x = r.tpm2b("x")?.to_vec();
                let y = r.tpm2b("y")?.to_vec();
                TpmPublicKey::Ecc { curve, x, y }
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
