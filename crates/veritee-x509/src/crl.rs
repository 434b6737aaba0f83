//! Certificate revocation lists.

use crate::{ParsedCertificate, X509Error, algorithm, cert::signed_part, to_datetime};
use const_oid::ObjectIdentifier;
use der::Decode;
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::KeyUsages;

const CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");

/// Largest CRL accepted.
pub const MAX_CRL_LEN: usize = 4 * 1024 * 1024;

/// A parsed CRL.
#[derive(Clone)]
pub struct ParsedCrl {
    der: Vec<u8>,
    tbs: core::ops::Range<usize>,
    crl: CertificateList,
}

impl core::fmt::Debug for ParsedCrl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ParsedCrl")
            .field("issuer", &self.issuer())
            .field("number", &self.number())
            .finish()
    }
}

impl ParsedCrl {
    /// Parses a DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Self, X509Error> {
        if der.len() > MAX_CRL_LEN {
            return Err(X509Error::malformed(
                "CRL",
                format!("{} bytes, more than the {MAX_CRL_LEN} accepted", der.len()),
            ));
        }
        let crl = CertificateList::from_der(der).map_err(|e| X509Error::malformed("CRL", e))?;
        let tbs = signed_part(der).map_err(|e| X509Error::malformed("CRL", e))?;
        // A critical extension changes what the list means (a delta CRL, a CRL of one
        // partition): read as a complete list, it would clear what it does not cover.
        let critical = crl
            .tbs_cert_list
            .crl_extensions
            .iter()
            .flatten()
            .chain(
                crl.tbs_cert_list
                    .revoked_certificates
                    .iter()
                    .flatten()
                    .flat_map(|entry| entry.crl_entry_extensions.iter().flatten()),
            )
            .find(|ext| ext.critical);
        if let Some(ext) = critical {
            return Err(X509Error::malformed(
                "CRL",
                format!(
                    "critical extension {} is not understood (delta and partitioned CRLs are \
                     not supported)",
                    ext.extn_id
                ),
            ));
        }
        Ok(Self {
            der: der.to_vec(),
            tbs,
            crl,
        })
    }

    /// Parses DER or a PEM `X509 CRL` block.
    pub fn from_der_or_pem(bytes: &[u8]) -> Result<Self, X509Error> {
        if crate::pem::looks_like_pem(bytes) {
            let blocks = crate::pem::blocks(bytes)?;
            let mut crls = blocks.iter().filter(|(label, _)| label == "X509 CRL");
            match (crls.next(), crls.next()) {
                (Some((_, der)), None) => Self::from_der(der),
                _ => Err(X509Error::malformed(
                    "PEM",
                    "expected exactly one X509 CRL block",
                )),
            }
        } else {
            Self::from_der(bytes)
        }
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The issuer, RFC 4514 style.
    pub fn issuer(&self) -> String {
        self.crl.tbs_cert_list.issuer.to_string()
    }

    pub(crate) fn issuer_name(&self) -> &x509_cert::name::Name {
        &self.crl.tbs_cert_list.issuer
    }

    /// thisUpdate.
    pub fn this_update(&self) -> OffsetDateTime {
        to_datetime(&self.crl.tbs_cert_list.this_update)
    }

    /// nextUpdate, if given.
    pub fn next_update(&self) -> Option<OffsetDateTime> {
        self.crl.tbs_cert_list.next_update.as_ref().map(to_datetime)
    }

    /// The CRL number extension as big-endian bytes (leading zeros stripped), if present.
    pub fn number(&self) -> Option<Vec<u8>> {
        let ext = self
            .crl
            .tbs_cert_list
            .crl_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == CRL_NUMBER)?;
        let n = der::asn1::Uint::from_der(ext.extn_value.as_bytes()).ok()?;
        Some(n.as_bytes().to_vec())
    }

    /// When `serial` is listed, its revocation date.
    pub fn revocation_of(&self, serial: &[u8]) -> Option<OffsetDateTime> {
        let wanted = strip_zeros(serial);
        self.crl
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .find(|r| strip_zeros(r.serial_number.as_bytes()) == wanted)
            .map(|r| to_datetime(&r.revocation_date))
    }

    /// Number of revoked entries.
    pub fn revoked_count(&self) -> usize {
        self.crl
            .tbs_cert_list
            .revoked_certificates
            .as_ref()
            .map_or(0, Vec::len)
    }

    /// Checks that `issuer` signed this CRL and may sign CRLs.
    pub fn verify_issued_by(&self, issuer: &ParsedCertificate) -> Result<(), X509Error> {
        let bad = || X509Error::CrlBadSignature {
            issuer: self.issuer(),
        };
        if issuer.subject_name() != self.issuer_name() || !issuer.allows(KeyUsages::CRLSign)? {
            return Err(bad());
        }
        let sig_alg = &self.crl.signature_algorithm;
        algorithm::scheme_for(sig_alg, issuer.public_key_algorithm())?;
        let signature = self.crl.signature.as_bytes().ok_or_else(bad)?;
        issuer
            .verify_collateral_signature(sig_alg, &self.der[self.tbs.clone()], signature)
            .map_err(|_| bad())
    }

    /// Whether the CRL is current at `at`.
    pub fn is_current_at(&self, at: OffsetDateTime) -> bool {
        self.this_update() <= at && self.next_update().is_none_or(|next| at <= next)
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}
