//! The set of verifiers, format detection, and the report-data check.

use crate::simulated::SimulatedVerifier;
use time::OffsetDateTime;
use veritee_attest::simulated::is_simulated_pki;
use veritee_attest::{
    AnchorInfo, AnchorSource, Claims, ParsedCertificate, REPORT_DATA_LEN, TeeKind, TrustAnchors,
    Verifier, VerifyError, VerifyInput,
};

/// One verification request, with every input explicit.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRequest<'a> {
    /// Evidence bytes (decoded from hex/base64 already).
    pub evidence: &'a [u8],
    /// The TEE kind, when the caller knows it; detected otherwise.
    pub tee: Option<TeeKind>,
    /// Collateral files.
    pub collateral: &'a [Vec<u8>],
    /// Trust anchors, each for the kind it was given for (or untyped): only those bound
    /// to the evidence's kind are used (see [`TrustAnchors`]).
    pub trust_anchors: &'a TrustAnchors,
    /// The report data the caller expects (a nonce, a key digest). Shorter values are
    /// compared zero-padded when the evidence carries 64 bytes.
    pub expected_report_data: Option<&'a [u8]>,
    /// Verification time.
    pub at: OffsetDateTime,
}

/// Every verifier veritee has.
pub struct Verifiers {
    verifiers: Vec<Box<dyn Verifier>>,
}

impl Default for Verifiers {
    fn default() -> Self {
        Self {
            verifiers: vec![
                Box::new(SimulatedVerifier),
                Box::new(crate::dcap::DcapVerifier::sgx()),
                Box::new(crate::dcap::DcapVerifier::tdx()),
                Box::new(crate::snp::SnpVerifier),
                Box::new(crate::azure::AzureSnpVtpmVerifier),
                Box::new(crate::azure::AzureTdxVtpmVerifier),
                Box::new(crate::tpm::Tpm2Verifier),
                Box::new(crate::nitro::NitroVerifier),
                Box::new(crate::nvidia::NvidiaVerifier),
                Box::new(crate::coco_sample::CocoSampleVerifier),
            ],
        }
    }
}

impl core::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.verifiers.iter().map(|v| v.tee()))
            .finish()
    }
}

impl Verifiers {
    /// Adds (or replaces) the verifier for its TEE kind.
    pub fn with(mut self, verifier: Box<dyn Verifier>) -> Self {
        self.verifiers.retain(|v| v.tee() != verifier.tee());
        self.verifiers.push(verifier);
        self
    }

    /// The verifier for `tee`.
    pub fn get(&self, tee: TeeKind) -> Option<&dyn Verifier> {
        self.verifiers
            .iter()
            .find(|v| v.tee() == tee)
            .map(|v| v.as_ref())
    }

    /// The TEE kind `evidence` belongs to.
    pub fn detect(&self, evidence: &[u8]) -> Result<TeeKind, VerifyError> {
        self.verifiers
            .iter()
            .find(|v| v.recognizes(evidence))
            .map(|v| v.tee())
            .ok_or_else(|| {
                let known: Vec<&str> = self.verifiers.iter().map(|v| v.tee().as_str()).collect();
                VerifyError::UnknownFormat(format!(
                    "{} bytes starting {} match none of: {}",
                    evidence.len(),
                    hex::encode(&evidence[..evidence.len().min(8)]),
                    known.join(", ")
                ))
            })
    }

    /// The kinds an anchor given without a kind vouches for: simulated evidence only for
    /// a certificate of the simulated vendor's PKI; otherwise the hardware kinds whose
    /// built-in vendor root it is or is issued by, and failing those simulated evidence
    /// only.
    pub fn kinds_of_untyped(&self, anchor: &ParsedCertificate) -> Vec<TeeKind> {
        if is_simulated_pki(anchor) {
            return vec![TeeKind::Simulated];
        }
        let mut kinds = Vec::new();
        for verifier in &self.verifiers {
            let Ok(roots) = verifier.builtin_anchors() else {
                continue;
            };
            let vouched = roots.iter().any(|root| {
                root.fingerprint() == anchor.fingerprint()
                    || (anchor.names_as_issuer(root) && anchor.verify_issued_by(root).is_ok())
            });
            if vouched {
                kinds.push(verifier.tee());
            }
        }
        if kinds.is_empty() {
            kinds.push(TeeKind::Simulated);
        }
        kinds
    }

    /// The kinds an anchor given for `given_for` (or untyped, None) vouches for. A
    /// certificate of the simulated vendor's PKI vouches for simulated evidence only,
    /// whatever kind it was given for: its private keys lie on the host beside a
    /// simulated node, so a caller's "aws-nitro=vendor/root.pem" must not let that host
    /// mint Nitro evidence.
    pub fn kinds_of(&self, given_for: Option<TeeKind>, anchor: &ParsedCertificate) -> Vec<TeeKind> {
        match given_for {
            _ if is_simulated_pki(anchor) => vec![TeeKind::Simulated],
            Some(kind) => vec![kind],
            None => self.kinds_of_untyped(anchor),
        }
    }

    /// The anchors among `given` that may vouch for evidence of `tee`, and the others
    /// with the kinds they are bound to (for error messages); see [`Self::kinds_of`].
    pub fn anchors_for(
        &self,
        tee: TeeKind,
        given: &TrustAnchors,
    ) -> (
        Vec<ParsedCertificate>,
        Vec<(ParsedCertificate, Vec<TeeKind>)>,
    ) {
        let mut bound = Vec::new();
        let mut elsewhere = Vec::new();
        for (kind, anchor) in given.iter() {
            let kinds = self.kinds_of(kind, anchor);
            if kinds.contains(&tee) {
                bound.push(anchor.clone());
            } else {
                elsewhere.push((anchor.clone(), kinds));
            }
        }
        (bound, elsewhere)
    }

    /// Verifies evidence and, when expected report data is given, checks it. Only the
    /// anchors bound to the evidence's kind are used; the claims name the anchor.
    pub fn verify(&self, request: &VerifyRequest<'_>) -> Result<Claims, VerifyError> {
        let tee = match request.tee {
            Some(tee) => tee,
            None => self.detect(request.evidence)?,
        };
        let verifier = self.get(tee).ok_or(VerifyError::NoVerifier(tee))?;
        let (anchors, others) = self.anchors_for(tee, request.trust_anchors);
        let mut elsewhere: Vec<TeeKind> = others.iter().flat_map(|(_, k)| k.clone()).collect();
        elsewhere.sort();
        elsewhere.dedup();
        let kinds = |k: &[TeeKind]| k.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
        if tee == TeeKind::Simulated && anchors.is_empty() && !elsewhere.is_empty() {
            return Err(VerifyError::MissingCollateral(format!(
                "simulated evidence needs the simulated vendor's root as a trust anchor; the anchors given vouch for {} evidence only",
                kinds(&elsewhere)
            )));
        }
        let verified = verifier.verify(&VerifyInput {
            evidence: request.evidence,
            collateral: request.collateral,
            trust_anchors: &anchors,
            at: request.at,
        });
        // A chain that ends at, or needs, an anchor the caller gave for another kind:
        // name why that anchor was not used.
        let refused_anchor = |e: &veritee_x509::X509Error| match e {
            veritee_x509::X509Error::UntrustedRoot { .. } => true,
            veritee_x509::X509Error::UnknownIssuer { issuer, .. } => {
                others.iter().any(|(a, _)| a.subject() == issuer)
            }
            _ => false,
        };
        let mut claims = match verified {
            Ok(claims) => claims,
            Err(VerifyError::Certificate(e))
                if tee != TeeKind::Simulated
                    && (anchors.is_empty() || !elsewhere.is_empty())
                    && refused_anchor(&e) =>
            {
                // Name the anchors that were refused, not "the anchors given": another
                // anchor given may well be bound to this kind (and simply not be the
                // one this chain needs).
                let note = refusal_notes(&others, tee);
                return Err(VerifyError::UntrustedForKind {
                    tee,
                    reason: format!("{e}{note}"),
                });
            }
            Err(e) => return Err(e),
        };
        if let Some(anchor) = &mut claims.trust_anchor {
            anchor.kind = tee;
            // A vendor root is built in whoever also gave it.
            let builtin = verifier
                .builtin_anchors()
                .unwrap_or_default()
                .iter()
                .any(|a| a.fingerprint()[..] == anchor.sha256.0[..]);
            anchor.source = if builtin {
                AnchorSource::BuiltIn
            } else {
                AnchorSource::Given
            };
        }
        if let Some(expected) = request.expected_report_data {
            check_report_data(expected, &claims.report_data.0)?;
        }
        Ok(claims)
    }

    /// What a verification of `tee` evidence would use as its anchors, for display.
    pub fn describe_anchors(&self, tee: TeeKind, given: &TrustAnchors) -> Vec<AnchorInfo> {
        let (anchors, _) = self.anchors_for(tee, given);
        if anchors.is_empty() {
            return self
                .get(tee)
                .and_then(|v| v.builtin_anchors().ok())
                .unwrap_or_default()
                .iter()
                .map(|a| AnchorInfo::of(tee, AnchorSource::BuiltIn, a))
                .collect();
        }
        anchors
            .iter()
            .map(|a| AnchorInfo::of(tee, AnchorSource::Given, a))
            .collect()
    }
}

/// One note per group of refused anchors bound to the same kinds: which anchors, and
/// what they vouch for instead of `tee`. Anchors are named by subject, in the order
/// given; the simulated vendor's are said to be so, since a caller who gave one for
/// `tee` would otherwise wonder why it was not used.
fn refusal_notes(others: &[(ParsedCertificate, Vec<TeeKind>)], tee: TeeKind) -> String {
    let mut groups: Vec<(Vec<String>, &[TeeKind], bool)> = Vec::new();
    for (anchor, bound_to) in others {
        let subject = format!("'{}'", anchor.subject());
        let simulated = is_simulated_pki(anchor);
        match groups
            .iter_mut()
            .find(|(_, k, sim)| *k == bound_to.as_slice() && *sim == simulated)
        {
            Some((subjects, _, _)) => {
                if !subjects.contains(&subject) {
                    subjects.push(subject);
                }
            }
            None => groups.push((vec![subject], bound_to, simulated)),
        }
    }
    groups
        .iter()
        .map(|(subjects, bound_to, simulated)| {
            let kinds = bound_to
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let why = if *simulated {
                " (the simulated vendor's, whatever kind they are given for)"
            } else {
                ""
            };
            format!(
                "; the anchor(s) {} given vouch for {kinds} evidence only{why}, never for {tee}",
                subjects.join(", ")
            )
        })
        .collect()
}

/// Compares report data in constant time; short expectations are zero-padded to the
/// 64 bytes evidence carries.
pub fn check_report_data(expected: &[u8], actual: &[u8]) -> Result<(), VerifyError> {
    let padded;
    let expected = if actual.len() == REPORT_DATA_LEN && expected.len() < REPORT_DATA_LEN {
        let mut p = vec![0u8; REPORT_DATA_LEN];
        p[..expected.len()].copy_from_slice(expected);
        padded = p;
        &padded[..]
    } else {
        expected
    };
    if veritee_crypto::ct_eq(expected, actual) {
        Ok(())
    } else {
        Err(VerifyError::ReportDataMismatch {
            expected: hex::encode(expected),
            actual: hex::encode(actual),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_data_padding() {
        let mut actual = [0u8; 64];
        actual[0] = 0xab;
        check_report_data(&[0xab], &actual).unwrap();
        check_report_data(&actual, &actual).unwrap();
        assert!(check_report_data(&[0xac], &actual).is_err());
        assert!(check_report_data(&[1, 2], &[1, 2, 3]).is_err());
    }

    #[test]
    fn unknown_format_is_named() {
        let err = Verifiers::default().detect(b"\x00\x01garbage").unwrap_err();
        assert!(err.is_unusable_input());
        assert!(err.to_string().contains("simulated"), "{err}");
    }
}
