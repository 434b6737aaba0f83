//! Attestation documents carried inside an X.509 certificate, as Evervault Cages
//! (evervault/attestation-doc-validation) present them on their TLS endpoint.
//!
//! The enclave makes a self-signed TLS certificate whose subject alternative names
//! include one DNS name of the form
//!
//! ```text
//! <hex of the COSE_Sign1 document>.<cage name>.<app id>.cages.evervault.com
//! ```
//!
//! and asks for the document with `user_data` = the certificate's
//! SubjectPublicKeyInfo (DER), which binds the TLS key to the attested enclave.
//! Evervault takes, among the DNS names, the longest first label and hex-decodes it.
//! This module does the same, and also accepts the hex split over several leading
//! labels (DNS labels are at most 63 characters): it joins the leading all-hex labels
//! and keeps the longest join that decodes to a COSE_Sign1 document.
//!
//! The certificate itself is not a trust path (whoever runs the TLS endpoint issued
//! it); trust comes from the document's own chain to the AWS root, and the binding
//! is checked by the verifier ([`super::NitroVerifier`]).

use super::cbor;
use super::document::CoseSign1;
use const_oid::ObjectIdentifier;
use der::Decode;
use veritee_attest::{ParsedCertificate, VerifyError};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const CARRIER: &str = "certificate carrying a Nitro attestation document";
/// Largest certificate file (PEM text or DER) accepted as carrier.
pub const MAX_CARRIER_LEN: usize = 128 * 1024;

/// A document found in a certificate, with that certificate.
#[derive(Debug, Clone)]
pub struct EmbeddedDocument {
    /// The certificate that carried the document (the first one of a PEM file).
    pub carrier: ParsedCertificate,
    /// The COSE_Sign1 document's bytes.
    pub document: Vec<u8>,
}

/// Whether `bytes` could be a certificate (PEM text or a DER SEQUENCE).
pub fn looks_like_certificate(bytes: &[u8]) -> bool {
    veritee_x509::pem::looks_like_pem(bytes) || matches!(bytes, [0x30, 0x82, ..])
}

fn parse_carrier(bytes: &[u8]) -> Result<ParsedCertificate, VerifyError> {
    if bytes.len() > MAX_CARRIER_LEN {
        return Err(VerifyError::TooLarge {
            what: CARRIER.into(),
            size: bytes.len(),
            limit: MAX_CARRIER_LEN,
        });
    }
    let bad = |e: veritee_x509::X509Error| VerifyError::malformed(CARRIER, e);
    if veritee_x509::pem::looks_like_pem(bytes) {
        // The first certificate of the file is the carrier; others are its issuers.
        ParsedCertificate::from_pem_chain(bytes)
            .map_err(bad)?
            .into_iter()
            .next()
            .ok_or_else(|| VerifyError::malformed(CARRIER, "no CERTIFICATE block"))
    } else {
        ParsedCertificate::from_der(bytes).map_err(bad)
    }
}

/// The DNS names among the certificate's subject alternative names.
fn dns_names(cert: &ParsedCertificate) -> Result<Vec<String>, VerifyError> {
    let Some((_, value)) = cert.extension(&SUBJECT_ALT_NAME) else {
        return Ok(Vec::new());
    };
    let names = SubjectAltName::from_der(value)
        .map_err(|e| VerifyError::malformed("subject alternative name extension", e))?;
    Ok(names
        .0
        .into_iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(dns) => Some(dns.to_string()),
            _ => None,
        })
        .collect())
}

/// The document hex-encoded in `name`'s leading labels, if any.
///
/// The leading all-hex labels are joined and decoded once; the document is the first
/// CBOR item of the result (COSE_Sign1 is self-delimiting), and it must end exactly at
/// a label boundary, so a hex-looking cage name after it is neither swallowed nor
/// mistaken for part of it. Linear in the name's length, whatever its labels.
fn document_in_name(name: &str) -> Option<Vec<u8>> {
    let mut joined = String::new();
    let mut boundaries = Vec::new();
    for label in name.split('.') {
        if label.is_empty() || !label.bytes().all(|b| b.is_ascii_hexdigit()) {
            break;
        }
        joined.push_str(label);
        boundaries.push(joined.len());
    }
    let bytes = hex::decode(joined.get(..joined.len() & !1)?).ok()?;
    if !CoseSign1::looks_like(&bytes) {
        return None;
    }
    let (_, consumed) = cbor::decode_prefix("embedded Nitro attestation document", &bytes).ok()?;
    if !boundaries.contains(&(2 * consumed)) {
        return None;
    }
    let document = bytes.get(..consumed)?.to_vec();
    CoseSign1::parse(&document).is_ok().then_some(document)
}

/// Finds the attestation document in a certificate's DNS names.
pub fn extract(bytes: &[u8]) -> Result<EmbeddedDocument, VerifyError> {
    let carrier = parse_carrier(bytes)?;
    let mut names = dns_names(&carrier)?;
    // Evervault's rule first: the DNS name with the longest first label.
    names.sort_by_key(|n| core::cmp::Reverse(n.split('.').next().map_or(0, str::len)));
    let document = names.iter().find_map(|n| document_in_name(n)).ok_or_else(|| {
        VerifyError::malformed(
            CARRIER,
            format!(
                "certificate '{}' has no DNS subject alternative name holding a hex-encoded COSE_Sign1 document",
                carrier.subject()
            ),
        )
    })?;
    Ok(EmbeddedDocument { carrier, document })
}

/// The leading all-hex labels of a DNS name, joined.
fn leading_hex(name: &str) -> String {
    name.split('.')
        .take_while(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

/// Cheap recognition: a certificate with a DNS name whose leading labels are long hex
/// starting like a COSE_Sign1 (`8444a1013822...` untagged, `d28444a1013822...` tagged).
pub fn recognizes(bytes: &[u8]) -> bool {
    if !looks_like_certificate(bytes) {
        return false;
    }
    let Ok(carrier) = parse_carrier(bytes) else {
        return false;
    };
    dns_names(&carrier).unwrap_or_default().iter().any(|name| {
        let hex_text = leading_hex(name);
        hex_text.len() >= 128
            && hex::decode(&hex_text[..16]).is_ok_and(|head| CoseSign1::looks_like(&head))
    })
}
