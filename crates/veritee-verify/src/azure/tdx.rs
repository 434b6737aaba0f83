//! Verifier for Azure confidential VMs on TDX (trustee's `az-tdx-vtpm` evidence).
//!
//! ```text
//! { "version": 1 | 2,
//!   "tpm_quote": { "message": hex TPMS_ATTEST, "signature": hex RSA signature,
//!                  "pcrs": [hex SHA-256 PCR 0, ..., PCR 23] },
//!   "hcl_report": base64url HCL report (report type 4: a TDREPORT, zero-padded),
//!   "td_quote": base64url DCAP quote (v4 or v5) of that TD report }
//! ```
//!
//! The chain of trust: the TD quote is verified as by the TDX verifier (PCK chain to
//! Intel's root, the operator's collateral, TCB level); its REPORTDATA[0..32] is
//! SHA-256 of the HCL variable data, which therefore carries a hardware-attested AK;
//! the vTPM's quote is signed with it and carries the caller's nonce. The TDREPORT in
//! the HCL report is MACed for the local platform only, so nothing rests on it: its
//! REPORTDATA must be the quote's (the quote is of that report) and its padding zero.
//! Version 1 (the first evidence format with a version) carries the nonce in the TPM
//! quote only; version 2 also in the variable data's user-data. Trustee's unversioned
//! format (bincode) is not read.

use super::hcl::{self, HclReport};
use super::{
    TpmQuote, add_vtpm_claims, attested_var_data, b64url, check_size, check_version, check_vtpm,
    looks_like,
};
use crate::dcap::DcapVerifier;
use serde::Deserialize;
use veritee_attest::{Claims, ParsedCertificate, TeeKind, Verifier, VerifyError, VerifyInput};

/// Where REPORTDATA sits in a TDREPORT (in its REPORTMACSTRUCT).
const TD_REPORT_DATA_OFFSET: usize = 128;
/// Length of REPORTDATA.
const TD_REPORT_DATA_LEN: usize = 64;

const WHAT: &str = "Azure TDX vTPM evidence";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Evidence {
    version: u32,
    tpm_quote: TpmQuote,
    hcl_report: String,
    td_quote: String,
}

/// The Azure TDX vTPM verifier.
#[derive(Debug, Default, Clone, Copy)]
pub struct AzureTdxVtpmVerifier;

impl Verifier for AzureTdxVtpmVerifier {
    fn tee(&self) -> TeeKind {
        TeeKind::AzureTdxVtpm
    }

    /// Intel's SGX root: the TD quote inside chains to it.
    fn builtin_anchors(&self) -> Result<Vec<ParsedCertificate>, VerifyError> {
        DcapVerifier::tdx().builtin_anchors()
    }

    fn recognizes(&self, evidence: &[u8]) -> bool {
        looks_like(evidence, true)
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        check_size(WHAT, input.evidence)?;
        let evidence: Evidence = serde_json::from_slice(input.evidence)
            .map_err(|e| VerifyError::malformed("Azure TDX vTPM evidence JSON", e))?;
        check_version(WHAT, evidence.version)?;
        let hcl_bytes = b64url("hcl_report", &evidence.hcl_report)?;
        let hcl = HclReport::parse(&hcl_bytes, hcl::REPORT_TYPE_TDX)?;
        let td_quote = b64url("td_quote", &evidence.td_quote)?;

        // 1. The TD quote, with the operator's collateral, up to Intel's root.
        let quoted = DcapVerifier::tdx().verify(&VerifyInput {
            evidence: &td_quote,
            ..*input
        })?;
        let report_data = quoted.report_data.0.clone();
        let held = hcl
            .hardware_report
            .get(TD_REPORT_DATA_OFFSET..TD_REPORT_DATA_OFFSET + TD_REPORT_DATA_LEN);
        if held != Some(report_data.as_slice()) {
            return Err(VerifyError::Inconsistent(
                "the TDREPORT in the HCL report is not the one the TD quote is of (their REPORTDATA differ)"
                    .into(),
            ));
        }

        // 2. The quote binds the HCL variable data; 3. the vTPM's quote.
        let (var_data, var_data_hash) = attested_var_data(&hcl, &report_data)?;
        let vtpm = check_vtpm(&evidence.tpm_quote, &var_data, evidence.version)?;

        let mut claims = quoted;
        claims.tee = TeeKind::AzureTdxVtpm;
        claims
            .details
            .insert("td_report_data".into(), hex::encode(&report_data));
        add_vtpm_claims(
            &mut claims,
            evidence.version,
            &vtpm,
            &var_data,
            &var_data_hash,
        );
        Ok(claims)
    }
}
