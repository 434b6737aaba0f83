//! The set of verifiers, format detection, and the report-data check.

use crate::simulated::SimulatedVerifier;
use time::OffsetDateTime;
use veritee_attest::{
    Claims, ParsedCertificate, REPORT_DATA_LEN, TeeKind, Verifier, VerifyError, VerifyInput,
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
    /// Trust anchors.
    pub trust_anchors: &'a [ParsedCertificate],
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
                Box::new(crate::tpm::Tpm2Verifier),
                Box::new(crate::nitro::NitroVerifier),
                Box::new(crate::nvidia::NvidiaVerifier),
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

    /// Verifies evidence and, when expected report data is given, checks it.
    pub fn verify(&self, request: &VerifyRequest<'_>) -> Result<Claims, VerifyError> {
        let tee = match request.tee {
            Some(tee) => tee,
            None => self.detect(request.evidence)?,
        };
        let verifier = self.get(tee).ok_or(VerifyError::NoVerifier(tee))?;
        let claims = verifier.verify(&VerifyInput {
            evidence: request.evidence,
            collateral: request.collateral,
            trust_anchors: request.trust_anchors,
            at: request.at,
        })?;
        if let Some(expected) = request.expected_report_data {
            check_report_data(expected, &claims.report_data.0)?;
        }
        Ok(claims)
    }
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
