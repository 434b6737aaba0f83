//! Verifier for Azure confidential VMs on SEV-SNP, whose paravisor (HCL) exposes a vTPM.
//!
//! Evidence is trustee's `az-snp-vtpm` JSON (versions 1 and 2):
//!
//! ```text
//! { "version": 1 | 2,
//!   "tpm_quote": { "message": hex TPMS_ATTEST, "signature": hex RSA signature,
//!                  "pcrs": [hex SHA-256 PCR 0, ..., PCR 23] },
//!   "hcl_report": base64url HCL report,
//!   "vcek": base64url DER VCEK certificate }
//!
//! HCL report (little-endian):
//! 0x000     32  header: "HCLA", version, report size, request type, status, 3 reserved
//! 0x020   1184  SEV-SNP ATTESTATION_REPORT (see crate::snp::report)
//! 0x4C0     20  IGVM request data: data size, version, report type (2 = SNP),
//!               report data hash type (1 = SHA-256), variable data size
//! 0x4D4      n  variable data: JSON with the vTPM keys (JWK "HCLAkPub"), the VM
//!               configuration and, in version 2, "user-data" (the nonce, hex)
//! ```
//!
//! The chain of trust: the SNP report is verified as by the SEV-SNP verifier (VCEK from
//! the evidence or collateral, AMD chain, TCB binding) and must come from VMPL 0 (the
//! paravisor); its REPORT_DATA[0..32] is SHA-256 of the variable data, which therefore
//! carries a hardware-attested AK public key; the TPM quote is signed with that AK
//! (RSASSA-PKCS1-v1_5 SHA-256) and carries the caller's nonce in extraData; its PCR
//! digest is SHA-256 over the PCR values given. Claims carry the nonce as report data,
//! PCRs 0-23 and the SNP launch measurement.

mod hcl;

use crate::snp;
use crate::tpm::structures::{
    QuoteAttest, TPM_ALG_SHA256, hash_name, rsa_public_key_der, selected_pcr_values,
};
use base64::Engine;
use hcl::HclReport;
use serde::Deserialize;
use veritee_attest::{
    Claims, HexBytes, ParsedCertificate, TeeKind, Verifier, VerifyError, VerifyInput,
};
use veritee_crypto::sign::{self, VerificationScheme};

/// Largest evidence document accepted.
pub const MAX_EVIDENCE_LEN: usize = 256 * 1024;
/// Number of PCRs in the SHA-256 bank.
pub const PCR_COUNT: usize = 24;
/// The key id of the vTPM attestation key in the HCL variable data.
pub const AK_KEY_ID: &str = "HCLAkPub";

#[derive(Deserialize)]
struct Evidence {
    version: u32,
    tpm_quote: TpmQuote,
    hcl_report: String,
    vcek: String,
}

#[derive(Deserialize)]
struct TpmQuote {
    signature: String,
    message: String,
    pcrs: Vec<String>,
}

#[derive(Deserialize)]
struct VarData {
    keys: Vec<Jwk>,
    #[serde(rename = "vm-configuration", default)]
    vm_configuration: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "user-data", default)]
    user_data: Option<String>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    kty: String,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

fn b64url(field: &str, text: &str) -> Result<Vec<u8>, VerifyError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| VerifyError::malformed(format!("Azure evidence {field}"), e))
}

fn hex_field(field: &str, text: &str) -> Result<Vec<u8>, VerifyError> {
    hex::decode(text).map_err(|e| VerifyError::malformed(format!("Azure evidence {field}"), e))
}

/// The vTPM attestation key from the HCL variable data, as PKCS#1 DER.
fn ak_public_key(var_data: &VarData) -> Result<Vec<u8>, VerifyError> {
    let jwk = var_data
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == Some(AK_KEY_ID))
        .ok_or_else(|| {
            VerifyError::malformed(
                "HCL variable data",
                format!("no key with kid \"{AK_KEY_ID}\""),
            )
        })?;
    if jwk.kty != "RSA" {
        return Err(VerifyError::malformed(
            "HCL variable data",
            format!("{AK_KEY_ID} is a {} key, expected RSA", jwk.kty),
        ));
    }
    let part = |name: &str, v: &Option<String>| {
        v.as_deref()
            .ok_or_else(|| {
                VerifyError::malformed("HCL variable data", format!("{AK_KEY_ID} has no '{name}'"))
            })
            .and_then(|s| b64url(&format!("{AK_KEY_ID}.{name}"), s))
    };
    rsa_public_key_der(&part("n", &jwk.n)?, &part("e", &jwk.e)?)
}

/// The Azure SEV-SNP vTPM verifier.
#[derive(Debug, Default, Clone, Copy)]
pub struct AzureSnpVtpmVerifier;

impl Verifier for AzureSnpVtpmVerifier {
    fn tee(&self) -> TeeKind {
        TeeKind::AzureSnpVtpm
    }

    /// The AMD roots: the report inside is an SEV-SNP report signed by a VCEK.
    fn builtin_anchors(&self) -> Result<Vec<ParsedCertificate>, VerifyError> {
        snp::default_trust_anchors()
    }

    fn recognizes(&self, evidence: &[u8]) -> bool {
        let head = &evidence[..evidence.len().min(4096)];
        let text = String::from_utf8_lossy(head);
        text.trim_start().starts_with('{')
            && text.contains("\"hcl_report\"")
            && text.contains("\"tpm_quote\"")
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        if input.evidence.len() > MAX_EVIDENCE_LEN {
            return Err(VerifyError::TooLarge {
                what: "Azure SEV-SNP vTPM evidence".into(),
                size: input.evidence.len(),
                limit: MAX_EVIDENCE_LEN,
            });
        }
        let evidence: Evidence = serde_json::from_slice(input.evidence)
            .map_err(|e| VerifyError::malformed("Azure SEV-SNP vTPM evidence JSON", e))?;
        if !matches!(evidence.version, 1 | 2) {
            return Err(VerifyError::UnsupportedVersion {
                what: "Azure SEV-SNP vTPM evidence".into(),
                version: evidence.version,
            });
        }
        let hcl_bytes = b64url("hcl_report", &evidence.hcl_report)?;
        let hcl = HclReport::parse(&hcl_bytes)?;
        let message = hex_field("tpm_quote.message", &evidence.tpm_quote.message)?;
        let signature = hex_field("tpm_quote.signature", &evidence.tpm_quote.signature)?;
        if evidence.tpm_quote.pcrs.len() > PCR_COUNT {
            return Err(VerifyError::malformed(
                "Azure evidence tpm_quote.pcrs",
                format!(
                    "{} PCR values, the SHA-256 bank has {PCR_COUNT}",
                    evidence.tpm_quote.pcrs.len()
                ),
            ));
        }
        let pcrs = evidence
            .tpm_quote
            .pcrs
            .iter()
            .enumerate()
            .map(|(i, p)| hex_field(&format!("tpm_quote.pcrs[{i}]"), p))
            .collect::<Result<Vec<_>, _>>()?;

        // 1. The SNP report, with the VCEK the evidence carries (or one in the collateral).
        let vcek_der = b64url("vcek", &evidence.vcek)?;
        let vcek = ParsedCertificate::from_der_or_pem(&vcek_der)?;
        let verified = snp::verify_report(hcl.snp_report, &[vcek], input)?;
        if verified.report.vmpl != 0 {
            return Err(VerifyError::Inconsistent(format!(
                "the SNP report comes from VMPL {}, but Azure's paravisor runs at VMPL 0",
                verified.report.vmpl
            )));
        }

        // 2. The SNP report binds the HCL variable data.
        let var_data_hash = veritee_crypto::digest::sha256(hcl.var_data);
        if verified.report.report_data[..32] != var_data_hash {
            return Err(VerifyError::Inconsistent(format!(
                "the SNP REPORT_DATA starts {}, not SHA-256 of the HCL variable data {}",
                hex::encode(&verified.report.report_data[..32]),
                hex::encode(var_data_hash)
            )));
        }
        let var_data: VarData = serde_json::from_slice(hcl.var_data)
            .map_err(|e| VerifyError::malformed("HCL variable data JSON", e))?;

        // 3. The quote is signed by the attested AK.
        let ak = ak_public_key(&var_data)?;
        sign::verify(VerificationScheme::RsaPkcs1Sha256, &ak, &message, &signature).map_err(
            |_| {
                VerifyError::Signature(
                    "the TPM quote signature does not verify with the HCLAkPub key the SNP report attests".into(),
                )
            },
        )?;

        // 4. The quote: a TPM-generated quote over SHA-256 PCRs matching the values given.
        let quote = QuoteAttest::parse(&message)?;
        if let Some(other) = quote.selections.iter().find(|s| s.hash != TPM_ALG_SHA256) {
            return Err(VerifyError::Inconsistent(format!(
                "the quote selects the {} bank, the evidence carries SHA-256 PCRs only",
                hash_name(other.hash)
            )));
        }
        let concatenated = selected_pcr_values(&quote.selections, |_, index| {
            pcrs.get(index as usize).map(Vec::as_slice)
        })?;
        if veritee_crypto::digest::sha256(&concatenated)[..] != quote.pcr_digest[..] {
            return Err(VerifyError::Inconsistent(
                "the PCR values in the evidence do not match the quote's PCR digest".into(),
            ));
        }

        // 5. Version 2 also puts the nonce in the variable data's user-data.
        if evidence.version == 2 {
            let user_data = var_data.user_data.as_deref().ok_or_else(|| {
                VerifyError::malformed("HCL variable data", "version 2 evidence without user-data")
            })?;
            let user_data = hex_field("HCL user-data", user_data)?;
            let mut padded = quote.extra_data.clone();
            padded.resize(user_data.len().max(padded.len()), 0);
            if user_data != padded {
                return Err(VerifyError::Inconsistent(
                    "the HCL user-data does not hold the quote's nonce".into(),
                ));
            }
        }

        let mut claims = verified.claims;
        claims.tee = TeeKind::AzureSnpVtpm;
        claims.report_data = HexBytes(quote.extra_data.clone());
        for sel in &quote.selections {
            for &index in &sel.pcrs {
                if let Some(v) = pcrs.get(index as usize) {
                    claims
                        .measurements
                        .insert(format!("pcr{index}"), HexBytes(v.clone()));
                }
            }
        }
        let details = &mut claims.details;
        details.insert("evidence_version".into(), evidence.version.to_string());
        details.insert(
            "snp_report_data".into(),
            hex::encode(verified.report.report_data),
        );
        details.insert("hcl_var_data_sha256".into(), hex::encode(var_data_hash));
        details.insert(
            "ak_pub_sha256".into(),
            hex::encode(veritee_crypto::digest::sha256(&ak)),
        );
        details.insert("tpm_clock".into(), quote.clock.to_string());
        details.insert("tpm_reset_count".into(), quote.reset_count.to_string());
        details.insert("tpm_restart_count".into(), quote.restart_count.to_string());
        details.insert(
            "tpm_firmware_version".into(),
            format!("{:#018x}", quote.firmware_version),
        );
        if let Some(config) = &var_data.vm_configuration {
            for (key, value) in config {
                let value = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                details.insert(format!("vm_configuration.{key}"), value);
            }
        }
        Ok(claims)
    }
}
