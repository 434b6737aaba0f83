//! One parsed certificate, with the exact bytes its signature covers.

use crate::{X509Error, algorithm, to_datetime};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Header, Reader, SliceReader};
use time::OffsetDateTime;
use x509_cert::certificate::{CertificateInner, Raw};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};

/// Certificates use the permissive `Raw` profile: hardware vendors issue serial numbers
/// and encodings that the strict RFC 5280 profile refuses, and what matters here is the
/// signature over the exact bytes, which is checked regardless.
type Certificate = CertificateInner<Raw>;

const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");

/// Extensions that may be critical: the verifier acts on, or safely ignores, each.
const UNDERSTOOD_CRITICAL: &[ObjectIdentifier] = &[
    BASIC_CONSTRAINTS,
    KEY_USAGE,
    ObjectIdentifier::new_unwrap("2.5.29.37"), // extended key usage
    ObjectIdentifier::new_unwrap("2.5.29.32"), // certificate policies
    ObjectIdentifier::new_unwrap("2.5.29.17"), // subject alternative name
];

/// Largest certificate accepted; real ones are a few kilobytes.
pub const MAX_CERT_LEN: usize = 64 * 1024;

/// A parsed X.509 certificate.
#[derive(Clone)]
pub struct ParsedCertificate {
    der: Vec<u8>,
    tbs: core::ops::Range<usize>,
    cert: Certificate,
    /// The subject, RFC 4514 style, made on first use: naming each attribute looks its
    /// OID up by name, and most verifications never print a subject.
    subject: std::sync::OnceLock<String>,
}

impl core::fmt::Debug for ParsedCertificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ParsedCertificate")
            .field("subject", &self.subject())
            .finish()
    }
}

impl PartialEq for ParsedCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

/// The range of the first element inside the outer SEQUENCE of `der`: the to-be-signed part.
pub(crate) fn signed_part(der: &[u8]) -> Result<core::ops::Range<usize>, der::Error> {
    let mut outer = SliceReader::new(der)?;
    let header = Header::decode(&mut outer)?;
    let outer_header_len = usize::try_from(header.encoded_len()?)?;
    let mut inner = SliceReader::new(outer.read_slice(header.length)?)?;
    let tbs_header = Header::decode(&mut inner)?;
    let tbs_len = usize::try_from((tbs_header.encoded_len()? + tbs_header.length)?)?;
    Ok(outer_header_len..outer_header_len + tbs_len)
}

/// `veritee_crypto::sign::verify` or its remembering twin `verify_collateral`.
type SignatureCheck = fn(
    veritee_crypto::sign::VerificationScheme,
    &[u8],
    &[u8],
    &[u8],
) -> Result<(), veritee_crypto::CryptoError>;

impl ParsedCertificate {
    /// Parses one DER certificate. Trailing bytes are an error.
    pub fn from_der(der: &[u8]) -> Result<Self, X509Error> {
        if der.len() > MAX_CERT_LEN {
            return Err(X509Error::malformed(
                "certificate",
                format!("{} bytes, more than the {MAX_CERT_LEN} accepted", der.len()),
            ));
        }
        let cert =
            Certificate::from_der(der).map_err(|e| X509Error::malformed("certificate", e))?;
        let tbs = signed_part(der).map_err(|e| X509Error::malformed("certificate", e))?;
        // The outer algorithm is outside the signature: RFC 5280 (4.1.1.2) requires it
        // to be the signed one, and a copy nobody compares is a field an attacker edits
        // freely.
        if cert.signature_algorithm != cert.tbs_certificate.signature {
            return Err(X509Error::malformed(
                "certificate",
                "its signatureAlgorithm differs from the signature algorithm it signed (RFC 5280, 4.1.1.2)",
            ));
        }
        Ok(Self {
            der: der.to_vec(),
            tbs,
            cert,
            subject: std::sync::OnceLock::new(),
        })
    }

    /// Parses every `CERTIFICATE` block of a PEM text, in order.
    pub fn from_pem_chain(pem: &[u8]) -> Result<Vec<Self>, X509Error> {
        crate::pem::blocks(pem)?
            .into_iter()
            .filter(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| Self::from_der(&der))
            .collect()
    }

    /// Parses DER, or PEM holding exactly one certificate.
    pub fn from_der_or_pem(bytes: &[u8]) -> Result<Self, X509Error> {
        if crate::pem::looks_like_pem(bytes) {
            let mut certs = Self::from_pem_chain(bytes)?;
            match certs.len() {
                1 => Ok(certs.remove(0)),
                n => Err(X509Error::malformed(
                    "PEM",
                    format!("expected one certificate, found {n}"),
                )),
            }
        } else {
            Self::from_der(bytes)
        }
    }

    /// The certificate's DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject, RFC 4514 style.
    pub fn subject(&self) -> &str {
        self.subject
            .get_or_init(|| self.cert.tbs_certificate.subject.to_string())
    }

    /// The issuer, RFC 4514 style.
    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    pub(crate) fn subject_name(&self) -> &x509_cert::name::Name {
        &self.cert.tbs_certificate.subject
    }

    pub(crate) fn issuer_name(&self) -> &x509_cert::name::Name {
        &self.cert.tbs_certificate.issuer
    }

    /// The serial number's bytes (big-endian, as encoded).
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate.serial_number.as_bytes()
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        to_datetime(&self.cert.tbs_certificate.validity.not_before)
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        to_datetime(&self.cert.tbs_certificate.validity.not_after)
    }

    /// The SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> Result<Vec<u8>, X509Error> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| X509Error::malformed("certificate", e))
    }

    /// The public key bits inside the SubjectPublicKeyInfo (an EC point, a PKCS#1 RSA key...).
    pub fn public_key_bits(&self) -> &[u8] {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
    }

    /// The SubjectPublicKeyInfo's algorithm.
    pub fn public_key_algorithm(&self) -> &spki::AlgorithmIdentifierOwned {
        &self.cert.tbs_certificate.subject_public_key_info.algorithm
    }

    /// The value of an extension, with its criticality, if present.
    pub fn extension(&self, oid: &ObjectIdentifier) -> Option<(bool, &[u8])> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| &e.extn_id == oid)
            .map(|e| (e.critical, e.extn_value.as_bytes()))
    }

    /// Rejects critical extensions outside `UNDERSTOOD_CRITICAL` and `also_understood`.
    pub fn check_critical_extensions(
        &self,
        also_understood: &[ObjectIdentifier],
    ) -> Result<(), X509Error> {
        for ext in self.cert.tbs_certificate.extensions.iter().flatten() {
            if ext.critical
                && !UNDERSTOOD_CRITICAL.contains(&ext.extn_id)
                && !also_understood.contains(&ext.extn_id)
            {
                return Err(X509Error::UnknownCriticalExtension {
                    subject: self.subject().to_string(),
                    oid: ext.extn_id.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Basic constraints: `Some(path_len)` when this is a CA certificate.
    pub(crate) fn ca_constraint(&self) -> Result<Option<Option<u8>>, X509Error> {
        let Some((_, value)) = self.extension(&BASIC_CONSTRAINTS) else {
            return Ok(None);
        };
        let bc = BasicConstraints::from_der(value)
            .map_err(|e| X509Error::malformed("certificate", e))?;
        Ok(bc.ca.then_some(bc.path_len_constraint))
    }

    /// Whether a key usage extension, if present, allows `usage`.
    pub(crate) fn allows(&self, usage: KeyUsages) -> Result<bool, X509Error> {
        let Some((_, value)) = self.extension(&KEY_USAGE) else {
            return Ok(true);
        };
        let ku = KeyUsage::from_der(value).map_err(|e| X509Error::malformed("certificate", e))?;
        Ok(ku.0.contains(usage))
    }

    /// Whether this certificate names itself as issuer.
    pub fn is_self_issued(&self) -> bool {
        self.subject_name() == self.issuer_name()
    }

    /// Verifies a signature made by this certificate's key over `message`.
    pub fn verify_signature(
        &self,
        sig_alg: &spki::AlgorithmIdentifierOwned,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), veritee_crypto::CryptoError> {
        self.verify_with(sig_alg, message, signature, veritee_crypto::sign::verify)
    }

    /// [`Self::verify_signature`] for a certificate's or CRL's signature: the verdict
    /// is remembered (see `veritee_crypto::sign::verify_collateral`).
    pub(crate) fn verify_collateral_signature(
        &self,
        sig_alg: &spki::AlgorithmIdentifierOwned,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), veritee_crypto::CryptoError> {
        self.verify_with(
            sig_alg,
            message,
            signature,
            veritee_crypto::sign::verify_collateral,
        )
    }

    fn verify_with(
        &self,
        sig_alg: &spki::AlgorithmIdentifierOwned,
        message: &[u8],
        signature: &[u8],
        verify: SignatureCheck,
    ) -> Result<(), veritee_crypto::CryptoError> {
        let scheme = algorithm::scheme_for(sig_alg, self.public_key_algorithm())
            .map_err(|_| veritee_crypto::CryptoError::BadSignature)?;
        verify(scheme, self.public_key_bits(), message, signature)
    }

    /// Checks that `issuer`'s key signed this certificate.
    pub fn verify_issued_by(&self, issuer: &ParsedCertificate) -> Result<(), X509Error> {
        let sig_alg = &self.cert.signature_algorithm;
        // Refuse early, with the algorithm named, rather than as a bad signature.
        algorithm::scheme_for(sig_alg, issuer.public_key_algorithm())?;
        let signature = self.cert.signature.as_bytes().ok_or_else(|| {
            X509Error::malformed("certificate", "signature BIT STRING has unused bits")
        })?;
        issuer
            .verify_collateral_signature(sig_alg, &self.der[self.tbs.clone()], signature)
            .map_err(|_| X509Error::BadSignature {
                subject: self.subject().to_string(),
                issuer: issuer.subject().to_string(),
            })
    }

    /// Whether this certificate names `issuer`'s subject as its issuer (a cheap test
    /// before [`ParsedCertificate::verify_issued_by`]).
    pub fn names_as_issuer(&self, issuer: &ParsedCertificate) -> bool {
        self.issuer_name() == issuer.subject_name()
    }

    /// Whether `self` and `other` are the same key under the same name (for matching a
    /// chain's copy of a root against a trust anchor).
    pub fn same_entity(&self, other: &ParsedCertificate) -> bool {
        self.subject_name() == other.subject_name()
            && self.cert.tbs_certificate.subject_public_key_info
                == other.cert.tbs_certificate.subject_public_key_info
    }

    /// SHA-256 of the DER encoding.
    pub fn fingerprint(&self) -> [u8; 32] {
        veritee_crypto::digest::sha256(&self.der)
    }
}
