//! The AWS Nitro Enclaves attestation document: a COSE_Sign1 (RFC 9052) whose
//! payload is a CBOR map, as AWS specifies it in aws-nitro-enclaves-nsm-api
//! `docs/attestation_process.md`.
//!
//! ```text
//! COSE_Sign1 = #6.18([                       ; the tag is optional
//!     protected:   bstr .cbor { 1 => -35 },  ; alg: ES384, required
//!     unprotected: { * label => any },       ; not covered by the signature: unused
//!     payload:     bstr .cbor AttestationDocument,  ; 1..=16384 bytes
//!     signature:   bstr .size 96,            ; ECDSA P-384, r || s (48 + 48)
//! ])
//!
//! signed with SHA-384 over
//! Sig_structure = [ "Signature1", protected (bstr), external_aad h'', payload (bstr) ]
//!
//! AttestationDocument = {
//!     module_id:    tstr, non-empty        ; issuing Nitro hypervisor module
//!     digest:       "SHA384"               ; the PCR hash function
//!     timestamp:    uint, > 0              ; milliseconds since the Unix epoch
//!     pcrs:         { 1*32 uint(0..=31) => bstr .size (32 / 48 / 64) }
//!     certificate:  bstr .size (1..=1024)  ; DER, the document's signing certificate
//!     cabundle:     [ + bstr .size (1..=1024) ]  ; DER, root first
//!     ? public_key: bstr .size (1..=1024) / null
//!     ? user_data:  bstr .size (0..=512) / null
//!     ? nonce:      bstr .size (0..=512) / null
//! }
//! ```
//!
//! Any CBOR encoding is accepted, including indefinite-length items (see
//! [`super::cbor`]). Unknown payload keys are ignored; a key given twice is an error.

use super::cbor::{self, Value};
use std::collections::BTreeMap;
use veritee_attest::VerifyError;

/// COSE_Sign1's CBOR tag.
pub const COSE_SIGN1_TAG: u64 = 18;
/// COSE algorithm identifier of ES384 (ECDSA P-384 with SHA-384).
pub const ALG_ES384: i64 = -35;
/// COSE header label of `alg`.
const HEADER_ALG: i64 = 1;
/// Length of an ES384 signature: r and s, 48 bytes each.
pub const SIGNATURE_LEN: usize = 96;
/// Largest signed document accepted (AWS bounds the payload at 16 KiB).
pub const MAX_DOCUMENT_LEN: usize = 32 * 1024;
/// Largest payload AWS allows.
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024;
/// Largest DER certificate AWS allows in `certificate` and `cabundle`.
pub const MAX_CERT_LEN: usize = 1024;
/// Largest `public_key`.
pub const MAX_PUBLIC_KEY_LEN: usize = 1024;
/// Largest `user_data` and `nonce`.
pub const MAX_USER_DATA_LEN: usize = 512;
/// Number of PCR indices (0..=31).
pub const PCR_COUNT: u64 = 32;
/// The only PCR digest AWS uses.
pub const DIGEST_SHA384: &str = "SHA384";

const WHAT: &str = "Nitro attestation document";

/// A decoded COSE_Sign1 envelope (signature not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoseSign1 {
    /// Whether the envelope carried CBOR tag 18.
    pub tagged: bool,
    /// The protected header's bytes as transported (the content of its bstr).
    pub protected: Vec<u8>,
    /// The payload's bytes (the content of its bstr).
    pub payload: Vec<u8>,
    /// The signature, `r || s`.
    pub signature: Vec<u8>,
}

fn malformed(reason: impl core::fmt::Display) -> VerifyError {
    VerifyError::malformed(WHAT, reason)
}

fn into_bytes(value: Value<'_>, field: &str) -> Result<Vec<u8>, VerifyError> {
    match value {
        Value::Bytes(b) => Ok(b.into_owned()),
        other => Err(malformed(format!(
            "{field} is a {}, not a byte string",
            other.kind()
        ))),
    }
}

impl CoseSign1 {
    /// Whether `bytes` starts like a COSE_Sign1: optional tag 18, an array of four
    /// (or of indefinite length), then a byte string which, when short and definite,
    /// holds a map (the protected header, `a1 01 38 22` for ES384). Cheap, and
    /// disjoint from every other evidence format veritee reads (DCAP quotes start
    /// `03 00`/`04 00`/`05 00`, SNP reports `02 00 00 00`, simulated evidence "VTEV",
    /// NVIDIA reports `11 e0`); [`CoseSign1::parse`] decides.
    pub fn looks_like(bytes: &[u8]) -> bool {
        let rest = match bytes {
            [0xd2, rest @ ..] => rest,
            _ => bytes,
        };
        match rest {
            // array(4) or array(_), then bstr(0..=23) holding a map or nothing.
            [0x84 | 0x9f, 0x40, ..] => true,
            [0x84 | 0x9f, 0x41..=0x57, first, ..] => first >> 5 == 5,
            // A longer or indefinite-length protected header.
            [0x84 | 0x9f, 0x58..=0x5b | 0x5f, ..] => true,
            _ => false,
        }
    }

    /// Decodes the envelope and checks that the protected header says ES384.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_DOCUMENT_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: bytes.len(),
                limit: MAX_DOCUMENT_LEN,
            });
        }
        let (tagged, array) = match cbor::decode_exact(WHAT, bytes)? {
            Value::Tag(COSE_SIGN1_TAG, inner) => (true, *inner),
            Value::Tag(tag, _) => {
                return Err(malformed(format!(
                    "CBOR tag {tag} where COSE_Sign1 (18) was expected"
                )));
            }
            other => (false, other),
        };
        let Value::Array(items) = array else {
            return Err(malformed(format!(
                "COSE_Sign1 is a {}, not an array",
                array.kind()
            )));
        };
        let Ok([protected, unprotected, payload, signature]) = <[Value<'_>; 4]>::try_from(items)
        else {
            return Err(malformed("COSE_Sign1 must be an array of four items"));
        };
        let protected = into_bytes(protected, "the COSE protected header")?;
        if !matches!(unprotected, Value::Map(_)) {
            return Err(malformed(format!(
                "the COSE unprotected header is a {}, not a map",
                unprotected.kind()
            )));
        }
        let payload = match payload {
            Value::Null => {
                return Err(malformed(
                    "the COSE payload is detached (null); the document must carry it",
                ));
            }
            other => into_bytes(other, "the COSE payload")?,
        };
        if payload.is_empty() || payload.len() > MAX_PAYLOAD_LEN {
            return Err(malformed(format!(
                "the payload is {} bytes, not 1..={MAX_PAYLOAD_LEN}",
                payload.len()
            )));
        }
        let signature = into_bytes(signature, "the COSE signature")?;
        let out = Self {
            tagged,
            protected,
            payload,
            signature,
        };
        out.check_algorithm()?;
        if out.signature.len() != SIGNATURE_LEN {
            return Err(malformed(format!(
                "the ES384 signature is {} bytes, not {SIGNATURE_LEN}",
                out.signature.len()
            )));
        }
        Ok(out)
    }

    /// The protected header must be a map naming ES384 as `alg`. Other parameters are
    /// tolerated, except `crit`, which would name parameters this verifier does not know.
    fn check_algorithm(&self) -> Result<(), VerifyError> {
        let Value::Map(pairs) = cbor::decode_exact("Nitro COSE protected header", &self.protected)?
        else {
            return Err(malformed("the COSE protected header is not a map"));
        };
        let mut alg = None;
        for (key, value) in &pairs {
            match key.as_i64() {
                Some(HEADER_ALG) if alg.is_some() => {
                    return Err(malformed("the protected header names alg twice"));
                }
                Some(HEADER_ALG) => alg = Some(value.as_i64()),
                Some(2) => {
                    return Err(malformed(
                        "the protected header has critical parameters (crit), none are understood",
                    ));
                }
                _ => {}
            }
        }
        match alg {
            Some(Some(ALG_ES384)) => Ok(()),
            Some(Some(other)) => Err(VerifyError::Signature(format!(
                "the document is signed with COSE algorithm {other}, only ES384 ({ALG_ES384}) is accepted"
            ))),
            Some(None) => Err(malformed("the protected header's alg is not an integer")),
            None => Err(malformed(
                "the protected header does not name an algorithm (alg)",
            )),
        }
    }

    /// The bytes the signature covers: the CBOR encoding of
    /// `["Signature1", protected, h'', payload]`.
    pub fn to_be_signed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.protected.len() + self.payload.len() + 32);
        cbor::encode_array_head(&mut out, 4);
        cbor::encode_text(&mut out, "Signature1");
        cbor::encode_bytes(&mut out, &self.protected);
        cbor::encode_bytes(&mut out, &[]);
        cbor::encode_bytes(&mut out, &self.payload);
        out
    }
}

/// The attestation document inside the COSE payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationDocument {
    /// The issuing Nitro hypervisor module.
    pub module_id: String,
    /// The PCR hash function (always "SHA384").
    pub digest: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// PCR values by index.
    pub pcrs: BTreeMap<u8, Vec<u8>>,
    /// The signing certificate, DER.
    pub certificate: Vec<u8>,
    /// The issuing CA bundle, DER, root first.
    pub cabundle: Vec<Vec<u8>>,
    /// A public key the enclave asked to include.
    pub public_key: Option<Vec<u8>>,
    /// Data the enclave asked to include.
    pub user_data: Option<Vec<u8>>,
    /// The verifier's nonce.
    pub nonce: Option<Vec<u8>>,
}

fn bounded(bytes: Vec<u8>, field: &str, min: usize, max: usize) -> Result<Vec<u8>, VerifyError> {
    if bytes.len() < min || bytes.len() > max {
        return Err(malformed(format!(
            "{field} is {} bytes, not {min}..={max}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn optional(
    value: Value<'_>,
    field: &str,
    min: usize,
    max: usize,
) -> Result<Option<Vec<u8>>, VerifyError> {
    match value {
        Value::Null => Ok(None),
        other => bounded(into_bytes(other, field)?, field, min, max).map(Some),
    }
}

impl AttestationDocument {
    /// Decodes and checks the payload map (section 3.2.2 of AWS's attestation process).
    pub fn parse(payload: &[u8]) -> Result<Self, VerifyError> {
        let Value::Map(pairs) = cbor::decode_exact(WHAT, payload)? else {
            return Err(malformed("the payload is not a CBOR map"));
        };
        let mut fields: BTreeMap<String, Value<'_>> = BTreeMap::new();
        for (key, value) in pairs {
            let Value::Text(key) = key else {
                return Err(malformed(format!(
                    "a payload key is a {}, not a text string",
                    key.kind()
                )));
            };
            if fields.insert(key.clone().into_owned(), value).is_some() {
                return Err(malformed(format!("the payload has the key '{key}' twice")));
            }
        }
        let mut required = |name: &str| {
            fields
                .remove(name)
                .ok_or_else(|| malformed(format!("the payload has no '{name}'")))
        };
        let module_id = match required("module_id")? {
            Value::Text(t) if !t.is_empty() => t.into_owned(),
            Value::Text(_) => return Err(malformed("module_id is empty")),
            other => {
                return Err(malformed(format!(
                    "module_id is a {}, not a text string",
                    other.kind()
                )));
            }
        };
        let digest = match required("digest")? {
            Value::Text(t) if t == DIGEST_SHA384 => t.into_owned(),
            Value::Text(t) => {
                return Err(malformed(format!(
                    "digest is '{t}', only {DIGEST_SHA384} is defined"
                )));
            }
            other => {
                return Err(malformed(format!(
                    "digest is a {}, not a text string",
                    other.kind()
                )));
            }
        };
        let timestamp_ms = match required("timestamp")? {
            Value::Unsigned(ms) if ms > 0 => ms,
            other => {
                return Err(malformed(format!(
                    "timestamp is a {} (or zero), not a positive integer",
                    other.kind()
                )));
            }
        };
        let pcrs = Self::parse_pcrs(required("pcrs")?)?;
        let certificate = bounded(
            into_bytes(required("certificate")?, "certificate")?,
            "certificate",
            1,
            MAX_CERT_LEN,
        )?;
        let cabundle = match required("cabundle")? {
            Value::Array(items) if !items.is_empty() => items
                .into_iter()
                .map(|c| {
                    bounded(
                        into_bytes(c, "a cabundle entry")?,
                        "a cabundle entry",
                        1,
                        MAX_CERT_LEN,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?,
            Value::Array(_) => return Err(malformed("cabundle is empty")),
            other => {
                return Err(malformed(format!(
                    "cabundle is a {}, not an array",
                    other.kind()
                )));
            }
        };
        let mut optional_field = |name: &str, min, max| match fields.remove(name) {
            Some(value) => optional(value, name, min, max),
            None => Ok(None),
        };
        let public_key = optional_field("public_key", 1, MAX_PUBLIC_KEY_LEN)?;
        let user_data = optional_field("user_data", 0, MAX_USER_DATA_LEN)?;
        let nonce = optional_field("nonce", 0, MAX_USER_DATA_LEN)?;
        Ok(Self {
            module_id,
            digest,
            timestamp_ms,
            pcrs,
            certificate,
            cabundle,
            public_key,
            user_data,
            nonce,
        })
    }

    fn parse_pcrs(value: Value<'_>) -> Result<BTreeMap<u8, Vec<u8>>, VerifyError> {
        let Value::Map(pairs) = value else {
            return Err(malformed(format!("pcrs is a {}, not a map", value.kind())));
        };
        if pairs.is_empty() || pairs.len() > PCR_COUNT as usize {
            return Err(malformed(format!(
                "pcrs has {} entries, not 1..={PCR_COUNT}",
                pairs.len()
            )));
        }
        let mut pcrs = BTreeMap::new();
        for (index, value) in pairs {
            let index = match index {
                Value::Unsigned(i) if i < PCR_COUNT => i as u8,
                Value::Unsigned(i) => {
                    return Err(malformed(format!(
                        "PCR index {i} is out of range 0..{PCR_COUNT}"
                    )));
                }
                other => {
                    return Err(malformed(format!(
                        "a PCR index is a {}, not an unsigned integer",
                        other.kind()
                    )));
                }
            };
            let value = into_bytes(value, "a PCR value")?;
            if ![32, 48, 64].contains(&value.len()) {
                return Err(malformed(format!(
                    "PCR{index} is {} bytes, not 32, 48 or 64",
                    value.len()
                )));
            }
            if pcrs.insert(index, value).is_some() {
                return Err(malformed(format!("PCR{index} is given twice")));
            }
        }
        Ok(pcrs)
    }
}

/// A COSE_Sign1 envelope and the document it carries (signature not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDocument {
    /// The envelope.
    pub cose: CoseSign1,
    /// The decoded payload.
    pub document: AttestationDocument,
}

impl SignedDocument {
    /// Decodes the envelope and its payload.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        let cose = CoseSign1::parse(bytes)?;
        let document = AttestationDocument::parse(&cose.payload)?;
        Ok(Self { cose, document })
    }
}
