//! DCAP collateral: one JSON file with everything a quote needs beyond itself.
//!
//! ```text
//! {
//!   "tcb_info": "<the tcbInfo JSON object, exactly as Intel signed it>",
//!   "tcb_info_signature": "<hex, ECDSA P-256 r || s>",
//!   "tcb_info_issuer_chain": "<PEM: TCB signing certificate, Intel SGX Root CA>",
//!   "qe_identity": "<the enclaveIdentity JSON object, exactly as signed>",
//!   "qe_identity_signature": "<hex>",
//!   "qe_identity_issuer_chain": "<PEM>",
//!   "root_ca_crl": "<hex DER: the Intel SGX Root CA's CRL>",
//!   "pck_crl": "<hex DER: the PCK Processor or Platform CA's CRL>",
//!   "pck_crl_issuer_chain": "<PEM, optional: PCK CA, root>"
//! }
//! ```
//!
//! (dcap-qvl's `QuoteCollateralV3` serialization.) Parsing checks structure only;
//! signatures, chains and dates are checked at verification time against the trust
//! anchors and the verification instant, so a parsed collateral can be cached and
//! reused.

use super::qe_identity::QeIdentity;
use super::quote::ECDSA_SIGNATURE_LEN;
use super::tcb_info::TcbInfo;
use serde::Deserialize;
use veritee_attest::{ParsedCertificate, VerifyError};
use veritee_x509::ParsedCrl;

/// Largest collateral file accepted (a Processor CA CRL can reach a few hundred KiB).
pub const MAX_COLLATERAL_LEN: usize = 8 * 1024 * 1024;

const WHAT: &str = "DCAP collateral";

/// A JSON document and Intel's signature over its exact bytes.
#[derive(Debug, Clone)]
pub(crate) struct Signed<T> {
    pub(crate) text: Vec<u8>,
    pub(crate) signature: [u8; ECDSA_SIGNATURE_LEN],
    pub(crate) parsed: T,
}

/// Parsed DCAP collateral. See the module documentation for the JSON layout.
#[derive(Debug, Clone)]
pub struct DcapCollateral {
    pub(crate) tcb_info: Signed<TcbInfo>,
    pub(crate) qe_identity: Signed<QeIdentity>,
    pub(crate) tcb_info_chain: Vec<ParsedCertificate>,
    pub(crate) qe_identity_chain: Vec<ParsedCertificate>,
    /// The root CA CRL and the PCK CA CRL.
    pub(crate) crls: Vec<ParsedCrl>,
    pub(crate) pck_crl_issuer_chain: Vec<ParsedCertificate>,
}

#[derive(Deserialize)]
struct RawCollateral {
    tcb_info: Option<String>,
    tcb_info_signature: Option<String>,
    tcb_info_issuer_chain: Option<String>,
    qe_identity: Option<String>,
    qe_identity_signature: Option<String>,
    qe_identity_issuer_chain: Option<String>,
    root_ca_crl: Option<String>,
    pck_crl: Option<String>,
    pck_crl_issuer_chain: Option<String>,
}

fn required(field: Option<String>, name: &str) -> Result<String, VerifyError> {
    field.ok_or_else(|| {
        VerifyError::MissingCollateral(format!("the DCAP collateral has no '{name}'"))
    })
}

fn unhex(value: &str, name: &str) -> Result<Vec<u8>, VerifyError> {
    hex::decode(value.trim().trim_start_matches("0x"))
        .map_err(|e| VerifyError::malformed(WHAT, format!("'{name}' is not hex: {e}")))
}

fn signature(value: &str, name: &str) -> Result<[u8; ECDSA_SIGNATURE_LEN], VerifyError> {
    let bytes = unhex(value, name)?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        VerifyError::malformed(
            WHAT,
            format!(
                "'{name}' has {} bytes, expected an {ECDSA_SIGNATURE_LEN}-byte r || s signature",
                b.len()
            ),
        )
    })
}

fn chain(pem: &str, name: &str) -> Result<Vec<ParsedCertificate>, VerifyError> {
    let certs = ParsedCertificate::from_pem_chain(pem.as_bytes())?;
    if certs.is_empty() {
        return Err(VerifyError::malformed(
            WHAT,
            format!("'{name}' holds no certificate"),
        ));
    }
    Ok(certs)
}

fn crl(value: &str, name: &str) -> Result<ParsedCrl, VerifyError> {
    let bytes = unhex(value, name)?;
    Ok(ParsedCrl::from_der(&bytes)?)
}

impl DcapCollateral {
    /// Whether `bytes` looks like DCAP collateral JSON (cheap; no parsing).
    pub fn recognizes(bytes: &[u8]) -> bool {
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
        start.is_some_and(|s| bytes.get(s) == Some(&b'{'))
            && bytes
                .windows(b"\"tcb_info\"".len())
                .any(|w| w == b"\"tcb_info\"")
    }

    /// Parses collateral JSON: certificates, CRLs and both signed documents.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_COLLATERAL_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: bytes.len(),
                limit: MAX_COLLATERAL_LEN,
            });
        }
        let raw: RawCollateral =
            serde_json::from_slice(bytes).map_err(|e| VerifyError::malformed(WHAT, e))?;
        let tcb_text = required(raw.tcb_info, "tcb_info")?.into_bytes();
        let qe_text = required(raw.qe_identity, "qe_identity")?.into_bytes();
        let tcb_info = Signed {
            parsed: TcbInfo::parse(&tcb_text)?,
            signature: signature(
                &required(raw.tcb_info_signature, "tcb_info_signature")?,
                "tcb_info_signature",
            )?,
            text: tcb_text,
        };
        let qe_identity = Signed {
            parsed: QeIdentity::parse(&qe_text)?,
            signature: signature(
                &required(raw.qe_identity_signature, "qe_identity_signature")?,
                "qe_identity_signature",
            )?,
            text: qe_text,
        };
        let tcb_info_chain = chain(
            &required(raw.tcb_info_issuer_chain, "tcb_info_issuer_chain")?,
            "tcb_info_issuer_chain",
        )?;
        let qe_identity_chain = chain(
            &required(raw.qe_identity_issuer_chain, "qe_identity_issuer_chain")?,
            "qe_identity_issuer_chain",
        )?;
        let crls = vec![
            crl(&required(raw.root_ca_crl, "root_ca_crl")?, "root_ca_crl")?,
            crl(&required(raw.pck_crl, "pck_crl")?, "pck_crl")?,
        ];
        let pck_crl_issuer_chain = match raw.pck_crl_issuer_chain {
            Some(pem) => chain(&pem, "pck_crl_issuer_chain")?,
            None => Vec::new(),
        };
        Ok(Self {
            tcb_info,
            qe_identity,
            tcb_info_chain,
            qe_identity_chain,
            crls,
            pck_crl_issuer_chain,
        })
    }

    /// The TCB info (not yet checked: its signature is verified with the quote).
    pub fn tcb_info(&self) -> &TcbInfo {
        &self.tcb_info.parsed
    }

    /// The QE identity (not yet checked).
    pub fn qe_identity(&self) -> &QeIdentity {
        &self.qe_identity.parsed
    }

    /// The root CA CRL.
    pub fn root_ca_crl(&self) -> Option<&ParsedCrl> {
        self.crls.first()
    }

    /// The PCK CA CRL.
    pub fn pck_crl(&self) -> Option<&ParsedCrl> {
        self.crls.get(1)
    }
}
