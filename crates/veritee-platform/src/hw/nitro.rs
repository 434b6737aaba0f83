//! AWS Nitro Enclaves through the Nitro Secure Module, `/dev/nsm`.
//!
//! The NSM speaks CBOR: a request goes in and a response comes out of one ioctl
//! (`_IOWR(0x0A, 0, struct { iovec request; iovec response; })`). The encoding is serde's
//! externally tagged enums, as in aws-nitro-enclaves-nsm-api:
//!
//! ```text
//! request   {"Attestation": {"user_data": null, "nonce": bytes(report data), "public_key": null}}
//! response  {"Attestation": {"document": bytes(COSE_Sign1 attestation document)}}
//!         | {"Error": "InvalidArgument" | "InputTooLarge" | "InternalError" | ...}
//! ```
//!
//! The report data goes into the document's `nonce`. The transport is a trait
//! ([`NsmTransport`]) so the encoding is tested without the device; [`NsmDevice`] is the
//! real one, built on aws-nitro-enclaves-nsm-api behind the `nitro-nsm` feature because
//! the ioctl needs unsafe code, which this crate forbids in its own source.
//!
//! The response is parsed as untrusted input (it is fuzzed): bounded in size, every
//! shape checked. The document is not verified here (that is the verifier's job); the
//! attester only reads its own PCRs from it.

use super::layout::note_report_data;
use crate::{EnclaveIdentity, Platform, PlatformError, SealPolicy};
use ciborium::value::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use veritee_attest::{REPORT_DATA_LEN, ReportData, TeeKind};
use veritee_crypto::aead::AeadKey;

/// The NSM device on a real enclave.
pub const DEFAULT_DEVICE: &str = "/dev/nsm";
/// Largest response accepted (the NSM driver's own buffer is 12 KiB).
pub const RESPONSE_MAX: usize = 64 * 1024;
/// COSE_Sign1's CBOR tag (RFC 9052), optional in front of the document.
pub const COSE_SIGN1_TAG: u64 = 18;
/// Length of a SHA-384 PCR.
pub const PCR_LEN: usize = 48;

/// A channel to the NSM: one CBOR request in, one CBOR response out.
pub trait NsmTransport: Send + Sync {
    /// Sends `request_cbor` and returns the response bytes.
    fn call(&self, request_cbor: &[u8]) -> Result<Vec<u8>, PlatformError>;
}

fn device_error(reason: impl core::fmt::Display) -> PlatformError {
    PlatformError::Device {
        device: DEFAULT_DEVICE.into(),
        reason: reason.to_string(),
    }
}

fn malformed(reason: impl core::fmt::Display) -> PlatformError {
    device_error(format!("malformed NSM response: {reason}"))
}

/// The CBOR attestation request binding `nonce`.
pub fn attestation_request(nonce: &[u8]) -> Result<Vec<u8>, PlatformError> {
    let request = Value::Map(vec![(
        Value::Text("Attestation".into()),
        Value::Map(vec![
            (Value::Text("user_data".into()), Value::Null),
            (Value::Text("nonce".into()), Value::Bytes(nonce.to_vec())),
            (Value::Text("public_key".into()), Value::Null),
        ]),
    )]);
    let mut out = Vec::new();
    ciborium::into_writer(&request, &mut out)
        .map_err(|e| PlatformError::InvalidInput(format!("cannot encode the NSM request: {e}")))?;
    Ok(out)
}

fn decode(bytes: &[u8], what: &str) -> Result<Value, PlatformError> {
    if bytes.len() > RESPONSE_MAX {
        return Err(device_error(format!(
            "{what} is {} bytes, more than the {RESPONSE_MAX} accepted",
            bytes.len()
        )));
    }
    let mut reader = bytes;
    let value: Value = ciborium::from_reader(&mut reader)
        .map_err(|e| malformed(format!("{what} is not CBOR: {e}")))?;
    if !reader.is_empty() {
        return Err(malformed(format!(
            "{} bytes follow the {what}",
            reader.len()
        )));
    }
    Ok(value)
}

fn entry<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

/// The attestation document in an NSM response, or the NSM's error.
pub fn decode_attestation_response(response: &[u8]) -> Result<Vec<u8>, PlatformError> {
    let value = decode(response, "response")?;
    let Value::Map(outer) = value else {
        return Err(malformed("the response is not a map"));
    };
    let [(Value::Text(variant), body)] = outer.as_slice() else {
        return Err(malformed(format!(
            "the response map has {} entries, not one",
            outer.len()
        )));
    };
    match variant.as_str() {
        "Attestation" => {
            let Value::Map(fields) = body else {
                return Err(malformed("Attestation is not a map"));
            };
            match entry(fields, "document") {
                Some(Value::Bytes(document)) if !document.is_empty() => Ok(document.clone()),
                Some(Value::Bytes(_)) => Err(malformed("the attestation document is empty")),
                Some(_) => Err(malformed("the attestation document is not a byte string")),
                None => Err(malformed("Attestation has no document")),
            }
        }
        "Error" => match body {
            Value::Text(code) => Err(device_error(format!(
                "the NSM refused the attestation request: {code}"
            ))),
            _ => Err(malformed("Error does not name an error code")),
        },
        other => Err(malformed(format!(
            "unexpected response '{other}' to an attestation request"
        ))),
    }
}

/// What the attester reads from its own attestation document, without verifying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSummary {
    /// The NSM that issued it.
    pub module_id: String,
    /// PCR index to value.
    pub pcrs: BTreeMap<u64, Vec<u8>>,
    /// The nonce bound into it.
    pub nonce: Option<Vec<u8>>,
}

/// Reads the payload of a COSE_Sign1 attestation document (tagged or not).
pub fn read_document(document: &[u8]) -> Result<DocumentSummary, PlatformError> {
    let mut value = decode(document, "attestation document")?;
    if let Value::Tag(tag, inner) = value {
        if tag != COSE_SIGN1_TAG {
            return Err(malformed(format!(
                "the document has CBOR tag {tag}, not COSE_Sign1's {COSE_SIGN1_TAG}"
            )));
        }
        value = *inner;
    }
    let Value::Array(parts) = value else {
        return Err(malformed("the document is not a COSE_Sign1 array"));
    };
    let [_, _, Value::Bytes(payload), _] = parts.as_slice() else {
        return Err(malformed(
            "the document is not [protected, unprotected, payload, signature]",
        ));
    };
    let Value::Map(fields) = decode(payload, "document payload")? else {
        return Err(malformed("the document payload is not a map"));
    };
    let module_id = match entry(&fields, "module_id") {
        Some(Value::Text(id)) => id.clone(),
        _ => return Err(malformed("the document has no module_id")),
    };
    let mut pcrs = BTreeMap::new();
    match entry(&fields, "pcrs") {
        Some(Value::Map(map)) => {
            for (index, pcr) in map {
                let (Value::Integer(index), Value::Bytes(pcr)) = (index, pcr) else {
                    return Err(malformed("a PCR is not index => bytes"));
                };
                let index = u64::try_from(*index)
                    .map_err(|_| malformed("a PCR index is negative or too large"))?;
                if pcrs.insert(index, pcr.clone()).is_some() {
                    return Err(malformed(format!("PCR{index} appears twice")));
                }
            }
        }
        _ => return Err(malformed("the document has no pcrs map")),
    }
    let nonce = match entry(&fields, "nonce") {
        Some(Value::Bytes(n)) => Some(n.clone()),
        None | Some(Value::Null) => None,
        Some(_) => return Err(malformed("the nonce is not a byte string")),
    };
    Ok(DocumentSummary {
        module_id,
        pcrs,
        nonce,
    })
}

/// A Nitro enclave's identity from its document: PCR0 (the enclave image) is the
/// measurement; PCR8 (the signing certificate of the image), when set, the signer. An
/// enclave started in debug mode has all-zero PCRs, which marks it as debug.
fn identity_from(summary: &DocumentSummary) -> Result<EnclaveIdentity, PlatformError> {
    let pcr0 = summary
        .pcrs
        .get(&0)
        .ok_or_else(|| malformed("the document has no PCR0"))?
        .clone();
    let is_zero = |v: &[u8]| v.iter().all(|&b| b == 0);
    let signer = summary.pcrs.get(&8).filter(|v| !is_zero(v)).cloned();
    Ok(EnclaveIdentity {
        debug: is_zero(&pcr0),
        launch_config: None,
        measurement: pcr0,
        signer,
        product_id: 0,
        security_version: 0,
    })
}

/// An AWS Nitro enclave.
pub struct NitroPlatform {
    transport: Arc<dyn NsmTransport>,
    identity: EnclaveIdentity,
}

impl core::fmt::Debug for NitroPlatform {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NitroPlatform")
            .field("identity", &self.identity)
            .finish()
    }
}

impl NitroPlatform {
    /// Opens the NSM device at `path` (needs the `nitro-nsm` feature).
    pub fn open(path: &Path) -> Result<Self, PlatformError> {
        Self::new(Arc::new(NsmDevice::open(path)?))
    }

    /// A platform talking through `transport`; requests a document over zero report
    /// data to read PCR0 and PCR8.
    pub fn new(transport: Arc<dyn NsmTransport>) -> Result<Self, PlatformError> {
        let document = request_document(transport.as_ref(), &ReportData([0; REPORT_DATA_LEN]))?;
        let identity = identity_from(&read_document(&document)?)?;
        Ok(Self {
            transport,
            identity,
        })
    }
}

fn request_document(
    transport: &dyn NsmTransport,
    report_data: &ReportData,
) -> Result<Vec<u8>, PlatformError> {
    let response = transport.call(&attestation_request(&report_data.0)?)?;
    decode_attestation_response(&response)
}

impl Platform for NitroPlatform {
    fn tee(&self) -> TeeKind {
        TeeKind::Nitro
    }

    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError> {
        let document = request_document(self.transport.as_ref(), report_data)?;
        let summary = read_document(&document)?;
        note_report_data(
            "Nitro attestation document",
            &report_data.0,
            summary.nonce.as_deref().unwrap_or(&[]),
        );
        Ok(document)
    }

    fn sealing_key_at(
        &self,
        _policy: SealPolicy,
        _security_version: u16,
        _label: &[u8],
    ) -> Result<AeadKey, PlatformError> {
        Err(PlatformError::Unsupported(
            "a Nitro enclave has no sealing key: the NSM offers attestation, PCRs and randomness only. \
             Seal with a key released against the enclave's attestation document, e.g. AWS KMS with a \
             key policy on kms:RecipientAttestation:PCR0"
                .into(),
        ))
    }

    fn identity(&self) -> &EnclaveIdentity {
        &self.identity
    }
}

/// The real `/dev/nsm`, through aws-nitro-enclaves-nsm-api's ioctl.
#[cfg(feature = "nitro-nsm")]
#[derive(Debug)]
pub struct NsmDevice {
    file: std::fs::File,
}

#[cfg(feature = "nitro-nsm")]
impl NsmDevice {
    /// Opens the device at `path`.
    pub fn open(path: &Path) -> Result<Self, PlatformError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(PlatformError::io("cannot open", path))?;
        Ok(Self { file })
    }
}

#[cfg(feature = "nitro-nsm")]
impl NsmTransport for NsmDevice {
    fn call(&self, request_cbor: &[u8]) -> Result<Vec<u8>, PlatformError> {
        use aws_nitro_enclaves_nsm_api::{api, driver};
        use std::os::fd::AsRawFd;
        // The library takes typed requests: decode ours into its type and encode its
        // typed response back, so both paths share the decoder above.
        let request: api::Request = ciborium::from_reader(request_cbor)
            .map_err(|e| PlatformError::InvalidInput(format!("not an NSM request: {e}")))?;
        let response = driver::nsm_process_request(self.file.as_raw_fd(), request);
        let mut out = Vec::new();
        ciborium::into_writer(&response, &mut out)
            .map_err(|e| device_error(format!("cannot encode response: {e}")))?;
        Ok(out)
    }
}

/// The real `/dev/nsm`: unavailable in this build.
#[cfg(not(feature = "nitro-nsm"))]
#[derive(Debug)]
pub struct NsmDevice {
    _private: (),
}

#[cfg(not(feature = "nitro-nsm"))]
impl NsmDevice {
    /// Always fails: the device needs the `nitro-nsm` feature.
    pub fn open(path: &Path) -> Result<Self, PlatformError> {
        Err(PlatformError::Unsupported(format!(
            "{} is present, but talking to the Nitro Secure Module needs an ioctl, which this build \
             leaves out: rebuild veritee with the `nitro-nsm` feature (it uses aws-nitro-enclaves-nsm-api)",
            path.display()
        )))
    }
}

#[cfg(not(feature = "nitro-nsm"))]
impl NsmTransport for NsmDevice {
    fn call(&self, _request_cbor: &[u8]) -> Result<Vec<u8>, PlatformError> {
        Err(PlatformError::Unsupported(
            "this build cannot talk to /dev/nsm: rebuild with the `nitro-nsm` feature".into(),
        ))
    }
}
