//! Path validation: leaf to trust anchor, at an explicit time, with CRLs.

use crate::{ParsedCertificate, ParsedCrl, X509Error, fmt_time};
use const_oid::ObjectIdentifier;
use time::OffsetDateTime;
use x509_cert::ext::pkix::KeyUsages;

/// Longest path accepted, anchor included.
pub const MAX_PATH_LEN: usize = 8;

/// What to do when no CRL is given for an issuer on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationPolicy {
    /// Every issuer on the path must have a current, correctly signed CRL.
    RequireForEveryIssuer,
    /// Apply the CRLs that were given; an issuer without one is not checked.
    CheckIfPresent,
}

/// A validated path, leaf first, trust anchor last.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// The certificates from the leaf to the anchor.
    pub path: Vec<ParsedCertificate>,
    /// When each CRL that cleared a certificate on the path was issued (`thisUpdate`):
    /// the revocation collateral the verdict rests on, for callers that bound its age.
    pub crls_issued: Vec<OffsetDateTime>,
}

impl VerifiedChain {
    /// The leaf certificate.
    pub fn leaf(&self) -> &ParsedCertificate {
        &self.path[0]
    }

    /// The trust anchor the path ends at.
    pub fn anchor(&self) -> &ParsedCertificate {
        &self.path[self.path.len() - 1]
    }
}

fn check_validity(cert: &ParsedCertificate, at: OffsetDateTime) -> Result<(), X509Error> {
    if at < cert.not_before() || at > cert.not_after() {
        return Err(X509Error::OutsideValidity {
            subject: cert.subject().to_string(),
            not_before: fmt_time(cert.not_before()),
            not_after: fmt_time(cert.not_after()),
            at: fmt_time(at),
        });
    }
    Ok(())
}

/// Finds a trust anchor for `cert`: same name, same key, valid at `at`.
fn matching_anchor<'a>(
    cert: &ParsedCertificate,
    anchors: &'a [ParsedCertificate],
    at: OffsetDateTime,
) -> Result<Option<&'a ParsedCertificate>, X509Error> {
    let mut expired = None;
    for anchor in anchors.iter().filter(|a| a.same_entity(cert)) {
        match check_validity(anchor, at) {
            Ok(()) => return Ok(Some(anchor)),
            Err(e) => expired = Some(e),
        }
    }
    expired.map_or(Ok(None), Err)
}

/// Checks `cert` against the CRLs from `issuer`; the issue time of the CRL that
/// decided, if one did.
fn check_revocation(
    cert: &ParsedCertificate,
    issuer: &ParsedCertificate,
    crls: &[ParsedCrl],
    at: OffsetDateTime,
    policy: RevocationPolicy,
) -> Result<Option<OffsetDateTime>, X509Error> {
    let from_issuer: Vec<&ParsedCrl> = crls
        .iter()
        .filter(|c| c.issuer_name() == issuer.subject_name())
        .collect();
    let mut signed = Vec::new();
    let mut signature_error = None;
    for crl in from_issuer {
        match crl.verify_issued_by(issuer) {
            Ok(()) => signed.push(crl),
            Err(e) => signature_error = Some(e),
        }
    }
    // Every current CRL is applied: an older one may predate a revocation, and which
    // one is newer is not worth trusting a number for when any listing is enough.
    let current: Vec<&&ParsedCrl> = signed.iter().filter(|c| c.is_current_at(at)).collect();
    if let Some(revoked_at) = current
        .iter()
        .find_map(|crl| crl.revocation_of(cert.serial()))
    {
        return Err(X509Error::Revoked {
            subject: cert.subject().to_string(),
            serial: hex_upper(cert.serial()),
            revoked_at: fmt_time(revoked_at),
        });
    }
    let Some(newest) = current.iter().max_by_key(|c| c.this_update()) else {
        if let Some(stale) = signed.iter().max_by_key(|c| c.this_update()) {
            return Err(X509Error::CrlOutsideValidity {
                issuer: stale.issuer(),
                this_update: fmt_time(stale.this_update()),
                next_update: stale
                    .next_update()
                    .map(fmt_time)
                    .unwrap_or_else(|| "none".into()),
                at: fmt_time(at),
            });
        }
        if let Some(e) = signature_error {
            return Err(e);
        }
        return match policy {
            RevocationPolicy::RequireForEveryIssuer => Err(X509Error::MissingCrl {
                issuer: issuer.subject().to_string(),
                subject: cert.subject().to_string(),
            }),
            RevocationPolicy::CheckIfPresent => Ok(None),
        };
    };
    Ok(Some(newest.this_update()))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Validates `leaf` up to one of `anchors` at time `at`.
///
/// `intermediates` may contain the anchor's own copy and unrelated certificates; path
/// building picks what it needs. `leaf_critical` lists vendor extensions the caller
/// handles itself and which may therefore be critical in the leaf.
pub fn verify_chain(
    leaf: &ParsedCertificate,
    intermediates: &[ParsedCertificate],
    anchors: &[ParsedCertificate],
    crls: &[ParsedCrl],
    at: OffsetDateTime,
    revocation: RevocationPolicy,
    leaf_critical: &[ObjectIdentifier],
) -> Result<VerifiedChain, X509Error> {
    check_validity(leaf, at)?;
    leaf.check_critical_extensions(leaf_critical)?;
    let mut path = vec![leaf.clone()];
    let mut crls_issued = Vec::new();
    loop {
        let current = &path[path.len() - 1];
        if let Some(anchor) = matching_anchor(current, anchors, at)? {
            let last = path.len() - 1;
            path[last] = anchor.clone();
            return Ok(VerifiedChain { path, crls_issued });
        }
        if path.len() >= MAX_PATH_LEN {
            return Err(X509Error::ChainTooLong(MAX_PATH_LEN));
        }
        if current.is_self_issued() {
            return Err(X509Error::UntrustedRoot {
                subject: current.subject().to_string(),
            });
        }
        let mut name_match = None;
        let mut chosen = None;
        for candidate in intermediates.iter().chain(anchors) {
            if candidate.subject_name() != current.issuer_name() || candidate == current {
                continue;
            }
            match current.verify_issued_by(candidate) {
                Ok(()) => {
                    chosen = Some(candidate);
                    break;
                }
                Err(e) => name_match = Some(e),
            }
        }
        let issuer = match (chosen, name_match) {
            (Some(issuer), _) => issuer.clone(),
            (None, Some(e)) => return Err(e),
            (None, None) => {
                return Err(X509Error::UnknownIssuer {
                    subject: current.subject().to_string(),
                    issuer: current.issuer(),
                });
            }
        };
        let intermediate_cas_below = path.len() - 1;
        match issuer.ca_constraint()? {
            None => {
                return Err(X509Error::NotACa {
                    subject: issuer.subject().to_string(),
                    reason: "basicConstraints cA is not set",
                });
            }
            Some(Some(allowed)) if intermediate_cas_below > usize::from(allowed) => {
                return Err(X509Error::PathLength {
                    subject: issuer.subject().to_string(),
                    allowed,
                });
            }
            Some(_) => {}
        }
        if !issuer.allows(KeyUsages::KeyCertSign)? {
            return Err(X509Error::NotACa {
                subject: issuer.subject().to_string(),
                reason: "key usage does not include keyCertSign",
            });
        }
        crls_issued.extend(check_revocation(current, &issuer, crls, at, revocation)?);
        // An anchor's validity is checked when it is matched above.
        if matching_anchor(&issuer, anchors, at)?.is_none() {
            check_validity(&issuer, at)?;
            issuer.check_critical_extensions(&[])?;
        }
        path.push(issuer);
    }
}
