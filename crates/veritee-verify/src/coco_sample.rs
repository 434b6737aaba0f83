//! Verifier for the Confidential Containers "sample" TEE.
//!
//! CoCo's sample attester writes `{"svn": "1", "report_data": "<base64>"}` and signs
//! nothing, so anyone can write it. It exists for testing a key broker end to end
//! without hardware. This verifier checks only that the document is well formed and
//! carries the report data the caller expects (the registry does that); its claims are
//! marked simulated, with a TCB status of `NotReported`, so only a policy that names
//! `coco-sample` and allows simulated evidence accepts them.

use serde::Deserialize;
use veritee_attest::{Claims, HexBytes, TcbStatus, TeeKind, Verifier, VerifyError, VerifyInput};

/// Largest sample evidence document accepted: the real one is under 200 bytes.
pub const MAX_SAMPLE_EVIDENCE_LEN: usize = 4096;

/// The sample attester's document, as guest-components' `SampleQuote` writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleQuote {
    svn: String,
    #[serde(default)]
    report_data: String,
}

/// The CoCo sample TEE's verifier.
#[derive(Debug, Default, Clone, Copy)]
pub struct CocoSampleVerifier;

impl CocoSampleVerifier {
    fn parse(evidence: &[u8]) -> Result<SampleQuote, VerifyError> {
        if evidence.len() > MAX_SAMPLE_EVIDENCE_LEN {
            return Err(VerifyError::TooLarge {
                what: "CoCo sample evidence".into(),
                size: evidence.len(),
                limit: MAX_SAMPLE_EVIDENCE_LEN,
            });
        }
        serde_json::from_slice(evidence)
            .map_err(|e| VerifyError::malformed("CoCo sample evidence", e))
    }
}

impl Verifier for CocoSampleVerifier {
    fn tee(&self) -> TeeKind {
        TeeKind::CocoSample
    }

    fn recognizes(&self, evidence: &[u8]) -> bool {
        evidence.len() <= MAX_SAMPLE_EVIDENCE_LEN
            && evidence.trim_ascii_start().starts_with(b"{")
            && Self::parse(evidence).is_ok()
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        use base64::Engine;
        let quote = Self::parse(input.evidence)?;
        let report_data = base64::engine::general_purpose::STANDARD
            .decode(&quote.report_data)
            .map_err(|e| VerifyError::malformed("CoCo sample evidence report_data", e))?;
        if report_data.len() > veritee_attest::REPORT_DATA_LEN {
            return Err(VerifyError::malformed(
                "CoCo sample evidence report_data",
                format!(
                    "{} bytes; report data is at most {}",
                    report_data.len(),
                    veritee_attest::REPORT_DATA_LEN
                ),
            ));
        }
        if quote.svn.len() > 32 {
            return Err(VerifyError::malformed(
                "CoCo sample evidence svn",
                "longer than 32 characters",
            ));
        }
        Ok(Claims {
            tee: TeeKind::CocoSample,
            simulated: true,
            measurements: Default::default(),
            signer: None,
            security_version: quote.svn.parse().ok(),
            tcb_status: TcbStatus::NotReported,
            advisory_ids: Vec::new(),
            debug: false,
            report_data: HexBytes(report_data),
            platform_id: None,
            evidence_time: None,
            details: [("svn".to_string(), quote.svn)].into(),
            trust_anchor: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(evidence: &[u8]) -> Result<Claims, VerifyError> {
        CocoSampleVerifier.verify(&VerifyInput {
            evidence,
            collateral: &[],
            trust_anchors: &[],
            at: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn the_attesters_document_is_read_and_marked_simulated() {
        let doc = br#"{"svn":"1","report_data":"AAECAw=="}"#;
        assert!(CocoSampleVerifier.recognizes(doc));
        let claims = verify(doc).unwrap();
        assert!(claims.simulated);
        assert_eq!(claims.tee, TeeKind::CocoSample);
        assert_eq!(claims.report_data.0, [0, 1, 2, 3]);
        assert_eq!(claims.security_version, Some(1));
        assert_eq!(claims.tcb_status, TcbStatus::NotReported);
    }

    #[test]
    fn tampered_truncated_and_oversized_documents_are_refused() {
        for bad in [
            &br#"{"svn":"1","report_data":"AAECAw==","debug":true}"#[..],
            br#"{"svn":"1","report_data":"not base64!"}"#,
            br#"{"svn":"1","report_data":"AAEC"#,
            br#"{"report_data":"AAECAw=="}"#,
            b"",
        ] {
            assert!(verify(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        // Recognized by shape, refused by content.
        assert!(CocoSampleVerifier.recognizes(br#"{"svn":"1","report_data":"not base64!"}"#));
        assert!(!CocoSampleVerifier.recognizes(br#"{"svn":"1","report_data":"AAEC"#));
        assert!(!CocoSampleVerifier.recognizes(br#"{"svn":"1","debug":true}"#));
        let long = format!(r#"{{"svn":"1","report_data":"{}"}}"#, "A".repeat(5000));
        assert!(matches!(
            verify(long.as_bytes()),
            Err(VerifyError::TooLarge { .. })
        ));
        let wide = format!(
            r#"{{"svn":"1","report_data":"{}"}}"#,
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 65])
        );
        assert!(verify(wide.as_bytes()).is_err());
    }
}
