//! Verifiers for Azure confidential VMs on SEV-SNP and TDX, whose paravisor (HCL)
//! exposes a vTPM. The TDX one is in [`tdx`]; what they share (the HCL report, the
//! variable data, the vTPM's quote) is here.
//!
//! SEV-SNP evidence is trustee's `az-snp-vtpm` JSON (versions 1 and 2):
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
mod tdx;

pub use tdx::AzureTdxVtpmVerifier;

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

/// What the vTPM's quote shows, once checked against the attested variable data.
struct VtpmQuote {
    quote: QuoteAttest,
    /// PCR values given with the quote, by index (SHA-256 bank).
    pcrs: Vec<Vec<u8>>,
    /// The attestation key (PKCS#1 DER) from the variable data.
    ak: Vec<u8>,
}

/// Checks the vTPM's quote against the attested variable data (whose digest the
/// hardware report already vouches for): signed by the AK the variable data carry,
/// over SHA-256 PCRs matching the values given, and in `version` 2 with the nonce in
/// the variable data's user-data too.
fn check_vtpm(
    tpm_quote: &TpmQuote,
    var_data: &VarData,
    version: u32,
) -> Result<VtpmQuote, VerifyError> {
    let message = hex_field("tpm_quote.message", &tpm_quote.message)?;
    let signature = hex_field("tpm_quote.signature", &tpm_quote.signature)?;
    if tpm_quote.pcrs.len() > PCR_COUNT {
        return Err(VerifyError::malformed(
            "Azure evidence tpm_quote.pcrs",
            format!(
                "{} PCR values, the SHA-256 bank has {PCR_COUNT}",
                tpm_quote.pcrs.len()
            ),
        ));
    }
    let pcrs = tpm_quote
        .pcrs
        .iter()
        .enumerate()
        .map(|(i, p)| hex_field(&format!("tpm_quote.pcrs[{i}]"), p))
        .collect::<Result<Vec<_>, _>>()?;

    // The quote is signed by the attested AK.
    let ak = ak_public_key(var_data)?;
    sign::verify(VerificationScheme::RsaPkcs1Sha256, &ak, &message, &signature).map_err(|_| {
        VerifyError::Signature(
            "the TPM quote signature does not verify with the HCLAkPub key the hardware report attests".into(),
        )
    })?;

    // A TPM-generated quote over SHA-256 PCRs matching the values given.
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

    // Version 2 also puts the nonce in the variable data's user-data.
    if version == 2 {
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
    Ok(VtpmQuote { quote, pcrs, ak })
}

/// Reads the variable data the hardware report's data field holds the SHA-256 of
/// (`bound`, its first 32 bytes); the digest.
fn attested_var_data(
    hcl: &HclReport<'_>,
    bound: &[u8],
) -> Result<(VarData, [u8; 32]), VerifyError> {
    let var_data_hash = veritee_crypto::digest::sha256(hcl.var_data);
    if bound.get(..32) != Some(&var_data_hash[..]) {
        return Err(VerifyError::Inconsistent(format!(
            "the hardware report's data starts {}, not SHA-256 of the HCL variable data {}",
            hex::encode(&bound[..bound.len().min(32)]),
            hex::encode(var_data_hash)
        )));
    }
    let var_data: VarData = serde_json::from_slice(hcl.var_data)
        .map_err(|e| VerifyError::malformed("HCL variable data JSON", e))?;
    Ok((var_data, var_data_hash))
}

/// The vTPM's part of the claims: the nonce as report data, the quoted PCRs as
/// measurements, and what else the quote and the variable data say.
fn add_vtpm_claims(
    claims: &mut Claims,
    version: u32,
    vtpm: &VtpmQuote,
    var_data: &VarData,
    var_data_hash: &[u8; 32],
) {
    let quote = &vtpm.quote;
    claims.report_data = HexBytes(quote.extra_data.clone());
    for sel in &quote.selections {
        for &index in &sel.pcrs {
            if let Some(v) = vtpm.pcrs.get(index as usize) {
                claims
                    .measurements
                    .insert(format!("pcr{index}"), HexBytes(v.clone()));
            }
        }
    }
    let details = &mut claims.details;
    details.insert("evidence_version".into(), version.to_string());
    details.insert("hcl_var_data_sha256".into(), hex::encode(var_data_hash));
    details.insert(
        "ak_pub_sha256".into(),
        hex::encode(veritee_crypto::digest::sha256(&vtpm.ak)),
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
}

/// Refuses evidence past [`MAX_EVIDENCE_LEN`] before it is parsed.
fn check_size(what: &str, bytes: &[u8]) -> Result<(), VerifyError> {
    if bytes.len() > MAX_EVIDENCE_LEN {
        return Err(VerifyError::TooLarge {
            what: what.into(),
            size: bytes.len(),
            limit: MAX_EVIDENCE_LEN,
        });
    }
    Ok(())
}

/// Refuses document versions other than 1 and 2.
fn check_version(what: &str, version: u32) -> Result<(), VerifyError> {
    match version {
        1 | 2 => Ok(()),
        version => Err(VerifyError::UnsupportedVersion {
            what: what.into(),
            version,
        }),
    }
}

/// Whether `evidence` looks like an Azure vTPM document, and of TDX (it carries a
/// `td_quote`) or not (SEV-SNP). Keys may come in any order, so the whole document
/// (up to [`MAX_EVIDENCE_LEN`]) is looked at.
fn looks_like(evidence: &[u8], tdx: bool) -> bool {
    let whole = &evidence[..evidence.len().min(MAX_EVIDENCE_LEN)];
    let has = |key: &[u8]| whole.windows(key.len()).any(|w| w == key);
    whole.trim_ascii_start().starts_with(b"{")
        && has(b"\"hcl_report\"")
        && has(b"\"tpm_quote\"")
        && has(b"\"td_quote\"") == tdx
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
        looks_like(evidence, false)
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        const WHAT: &str = "Azure SEV-SNP vTPM evidence";
        check_size(WHAT, input.evidence)?;
        let evidence: Evidence = serde_json::from_slice(input.evidence)
            .map_err(|e| VerifyError::malformed("Azure SEV-SNP vTPM evidence JSON", e))?;
        check_version(WHAT, evidence.version)?;
        let hcl_bytes = b64url("hcl_report", &evidence.hcl_report)?;
        let hcl = HclReport::parse(&hcl_bytes, hcl::REPORT_TYPE_SNP)?;

        // 1. The SNP report, with the VCEK the evidence carries (or one in the collateral).
        let vcek_der = b64url("vcek", &evidence.vcek)?;
        let vcek = ParsedCertificate::from_der_or_pem(&vcek_der)?;
        let verified = snp::verify_report(hcl.hardware_report, &[vcek], input)?;
        if verified.report.vmpl != 0 {
            return Err(VerifyError::Inconsistent(format!(
                "the SNP report comes from VMPL {}, but Azure's paravisor runs at VMPL 0",
                verified.report.vmpl
            )));
        }

        // 2. The SNP report binds the HCL variable data; 3. the vTPM's quote.
        let (var_data, var_data_hash) = attested_var_data(&hcl, &verified.report.report_data)?;
        let vtpm = check_vtpm(&evidence.tpm_quote, &var_data, evidence.version)?;

        let mut claims = verified.claims;
        claims.tee = TeeKind::AzureSnpVtpm;
        claims.details.insert(
            "snp_report_data".into(),
            hex::encode(verified.report.report_data),
        );
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
