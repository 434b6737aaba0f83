//! Verifier for NVIDIA H100 (Hopper) GPU attestation reports.
//!
//! # Evidence and collateral
//!
//! A verifier gets one evidence byte string plus collateral files, so:
//!
//! - **evidence** is the SPDM attestation report the driver returns
//!   (`nvmlDeviceGetConfComputeGpuAttestationReport`): raw bytes, or the hex text
//!   nvtrust stores (`hopperAttestationReport.txt`), which is decoded before the
//!   verifier sees it. Layout: [`report`];
//! - **collateral** is the GPU's certificate chain
//!   (`nvmlDeviceGetConfComputeGpuCertificate`, `hopperCertChain.txt`): PEM (or DER)
//!   certificates, the report's signing certificate ("GSP FMC LF") first. Several
//!   files are read in order;
//! - or, self-contained, the evidence is a JSON object
//!   `{"report": "<hex>", "certificate_chain": "<PEM text>"}` and no collateral is given.
//!
//! The trust anchor is the NVIDIA Device Identity CA embedded here, unless the caller
//! supplies anchors.
//!
//! # Checks
//!
//! 1. The report's layout: SPDM 1.1, GET_MEASUREMENTS with a signature requested, a
//!    MEASUREMENTS response whose slot, blocks and lengths agree, nothing after the
//!    signature.
//! 2. The certificate chain from the first certificate to the trust anchor, at `at`
//!    (validity, CA constraints, key usage, signatures).
//! 3. The ECDSA P-384/SHA-384 signature over request || response-without-signature
//!    with the first certificate's key.
//! 4. The FWID in the report's opaque data equals the FWID in the signing
//!    certificate's `tcg-dice-FwId` extension (OID 2.23.133.5.4.1), binding the
//!    report to the firmware the certificate was issued for.
//!
//! Not possible offline with what a report comes with, and said in `details`:
//! - OCSP: NVIDIA revokes device certificates through its OCSP responder only (no
//!   CRLs), so revocation is not checked (`details.ocsp = "not checked"`);
//! - reference values: the measurements are not compared with NVIDIA's driver and
//!   VBIOS RIMs (signed SWID tags fetched from NVIDIA's RIM service); a policy must
//!   pin `measurement_block_*` values itself (`details.rim = "not compared"`).
//!
//! # Claims
//!
//! - `report_data`: the 32-byte nonce of the request, the verifier's challenge, so
//!   `--report-data` compares it;
//! - `measurements`: `measurement_block_<index>` for each DMTF block (64 on an H100);
//! - `details`: the opaque data by NVIDIA's names (`driver_version`,
//!   `vbios_version`, `fwid`, `chip_sku`, `project`...), the responder nonce, the
//!   signing certificate's subject;
//! - `tcb_status`: `NotReported` (no vendor TCB grading without RIMs and OCSP);
//!   `debug`: false (Hopper reports carry no debug indication: a GPU in CC
//!   "devtools" mode is not distinguishable in the report);
//! - `platform_id`, `signer`, `security_version`, `evidence_time`: `None` (SPDM
//!   measurements carry no time).

pub mod report;

use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Sequence, Tag, Tagged};
use report::{FWID_LEN, SpdmReport};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use time::OffsetDateTime;
use veritee_attest::{
    AnchorInfo, AnchorSource, Claims, HexBytes, ParsedCertificate, TcbStatus, TeeKind, Verifier,
    VerifyError, VerifyInput,
};
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_x509::{RevocationPolicy, X509Error, verify_chain};

/// The NVIDIA Device Identity CA (CN=NVIDIA Device Identity CA, O=NVIDIA), valid
/// 2021-11-05 to 9999-12-31, the root of every H100 device certificate chain.
pub const NVIDIA_DEVICE_IDENTITY_CA_PEM: &[u8] =
    include_bytes!("roots/nvidia_device_identity_ca.pem");

/// TCG DICE extension that carries the firmware identifier (FWID) in the GPU's leaf
/// certificate.
pub const OID_TCG_DICE_FWID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");

/// Largest JSON evidence or collateral file accepted.
pub const MAX_JSON_LEN: usize = 256 * 1024;
/// Most certificates accepted in a chain.
pub const MAX_CHAIN_LEN: usize = 8;

static DEFAULT_ANCHORS: LazyLock<Result<Vec<ParsedCertificate>, X509Error>> =
    LazyLock::new(|| ParsedCertificate::from_pem_chain(NVIDIA_DEVICE_IDENTITY_CA_PEM));

/// The embedded default trust anchor (the NVIDIA Device Identity CA).
pub fn default_anchors() -> Result<&'static [ParsedCertificate], VerifyError> {
    DEFAULT_ANCHORS
        .as_deref()
        .map_err(|e| VerifyError::Certificate(e.clone()))
}

/// The NVIDIA H100 verifier.
#[derive(Debug, Default, Clone, Copy)]
pub struct NvidiaVerifier;

/// The self-contained JSON form of the evidence.
#[derive(Deserialize)]
struct JsonEvidence {
    /// The report, hex.
    report: String,
    /// The certificate chain, PEM, signing certificate first.
    certificate_chain: String,
}

fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn parse_json(bytes: &[u8]) -> Result<JsonEvidence, VerifyError> {
    if bytes.len() > MAX_JSON_LEN {
        return Err(VerifyError::TooLarge {
            what: "NVIDIA JSON evidence".into(),
            size: bytes.len(),
            limit: MAX_JSON_LEN,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| VerifyError::malformed("NVIDIA JSON evidence", e))
}

/// Certificates from PEM text (any number) or one DER certificate.
fn certificates(bytes: &[u8], what: &str) -> Result<Vec<ParsedCertificate>, VerifyError> {
    if bytes.len() > MAX_JSON_LEN {
        return Err(VerifyError::TooLarge {
            what: what.into(),
            size: bytes.len(),
            limit: MAX_JSON_LEN,
        });
    }
    let certs = if veritee_x509::pem::looks_like_pem(bytes) {
        ParsedCertificate::from_pem_chain(bytes)
    } else {
        ParsedCertificate::from_der(bytes).map(|c| vec![c])
    }
    .map_err(|e| {
        VerifyError::Collateral(format!("{what} is not a PEM or DER certificate chain: {e}"))
    })?;
    Ok(certs)
}

/// One FWID: `SEQUENCE { hashAlg OBJECT IDENTIFIER, digest OCTET STRING }` (TCG DICE).
#[derive(Sequence)]
struct Fwid {
    hash_alg: ObjectIdentifier,
    digest: OctetString,
}

/// The SHA-384 FWID in the certificate's `2.23.133.5.4.1` extension.
///
/// NVIDIA's Hopper leaf encodes the extension as `SEQUENCE { INTEGER, SubjectPublicKeyInfo,
/// FWID }`; the TCG `DiceTcbInfo` puts a list of FWIDs under `[6]`. Both are read: the
/// first SHA-384 FWID found among the direct elements, or inside a `[6]` element.
fn certificate_fwid(cert: &ParsedCertificate) -> Result<Vec<u8>, VerifyError> {
    let (_, value) = cert.extension(&OID_TCG_DICE_FWID).ok_or_else(|| {
        VerifyError::Inconsistent(format!(
            "the signing certificate '{}' has no FWID extension ({OID_TCG_DICE_FWID})",
            cert.subject()
        ))
    })?;
    let bad = |e: der::Error| VerifyError::malformed("NVIDIA certificate FWID extension", e);
    let elements: Vec<der::Any> = Vec::from_der(value).map_err(bad)?;
    for element in elements {
        let candidates: Vec<der::Any> = match element.tag() {
            Tag::Sequence => vec![element],
            Tag::ContextSpecific {
                number,
                constructed: true,
            } if number.value() == 6 => {
                // [6] IMPLICIT SEQUENCE OF FWID: its content is the FWIDs.
                let mut inner = Vec::new();
                let mut reader = der::SliceReader::new(element.value()).map_err(bad)?;
                while !der::Reader::is_finished(&reader) {
                    inner.push(der::Any::decode(&mut reader).map_err(bad)?);
                }
                inner
            }
            _ => continue,
        };
        for candidate in candidates {
            if let Ok(fwid) = candidate.decode_as::<Fwid>()
                && fwid.hash_alg == OID_SHA384
                && fwid.digest.as_bytes().len() == FWID_LEN
            {
                return Ok(fwid.digest.as_bytes().to_vec());
            }
        }
    }
    Err(VerifyError::Inconsistent(format!(
        "the FWID extension of '{}' holds no SHA-384 FWID",
        cert.subject()
    )))
}

impl Verifier for NvidiaVerifier {
    fn tee(&self) -> TeeKind {
        TeeKind::NvidiaH100
    }

    fn builtin_anchors(&self) -> Result<Vec<ParsedCertificate>, VerifyError> {
        Ok(default_anchors()?.to_vec())
    }

    fn recognizes(&self, evidence: &[u8]) -> bool {
        if report::looks_like(evidence) {
            return true;
        }
        looks_like_json(evidence)
            && parse_json(evidence).is_ok_and(|j| {
                hex::decode(
                    j.report
                        .trim()
                        .get(..2 * (report::REQUEST_LEN + 2))
                        .unwrap_or(""),
                )
                .is_ok_and(|head| report::looks_like(&head))
            })
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        let (report_bytes, chain) = if looks_like_json(input.evidence) {
            let json = parse_json(input.evidence)?;
            if !input.collateral.is_empty() {
                return Err(VerifyError::Collateral(
                    "the JSON evidence carries its certificate chain; collateral files would be a second, conflicting one".into(),
                ));
            }
            let report = hex::decode(json.report.trim().trim_start_matches("0x"))
                .map_err(|e| VerifyError::malformed("NVIDIA JSON evidence report (hex)", e))?;
            (
                report,
                certificates(
                    json.certificate_chain.as_bytes(),
                    "the JSON evidence certificate_chain",
                )?,
            )
        } else {
            let mut chain = Vec::new();
            for (index, file) in input.collateral.iter().enumerate() {
                chain.extend(certificates(
                    file,
                    &format!("collateral file #{}", index + 1),
                )?);
            }
            (input.evidence.to_vec(), chain)
        };
        let report = SpdmReport::parse(&report_bytes)?;
        let anchors = if input.trust_anchors.is_empty() {
            default_anchors()?
        } else {
            input.trust_anchors
        };
        self.verify_report(&report, &chain, anchors, input.at)
    }
}

impl NvidiaVerifier {
    /// Verifies a parsed report with its certificate chain (signing certificate first)
    /// against `anchors` at `at`: checks 2 to 4 of the module documentation.
    pub fn verify_report(
        &self,
        report: &SpdmReport,
        chain: &[ParsedCertificate],
        anchors: &[ParsedCertificate],
        at: OffsetDateTime,
    ) -> Result<Claims, VerifyError> {
        if chain.len() > MAX_CHAIN_LEN {
            return Err(VerifyError::TooLarge {
                what: "NVIDIA certificate chain".into(),
                size: chain.len(),
                limit: MAX_CHAIN_LEN,
            });
        }
        let Some((leaf, rest)) = chain.split_first() else {
            return Err(VerifyError::MissingCollateral(
                "an NVIDIA report needs the GPU's certificate chain (PEM, signing certificate first, e.g. hopperCertChain.txt) as collateral".into(),
            ));
        };
        // NVIDIA publishes revocation through OCSP only; nothing to apply offline.
        let path = verify_chain(
            leaf,
            rest,
            anchors,
            &[],
            at,
            RevocationPolicy::CheckIfPresent,
            &[],
        )?;

        sign::verify(
            VerificationScheme::EcdsaP384Sha384Fixed,
            leaf.public_key_bits(),
            &report.signed_bytes,
            &report.signature,
        )
        .map_err(|_| {
            VerifyError::Signature(format!(
                "the SPDM measurements signature does not verify with the key of '{}'",
                leaf.subject()
            ))
        })?;

        let reported = report.response.fwid()?;
        let certified = certificate_fwid(leaf)?;
        if reported != certified.as_slice() {
            return Err(VerifyError::Inconsistent(format!(
                "the report's FWID {} differs from the FWID {} certified in '{}'",
                hex::encode(reported),
                hex::encode(&certified),
                leaf.subject()
            )));
        }
        let mut claims = claims(report, leaf);
        claims.trust_anchor = Some(AnchorInfo::of(
            TeeKind::NvidiaH100,
            AnchorSource::BuiltIn,
            path.anchor(),
        ));
        Ok(claims)
    }
}

fn claims(report: &SpdmReport, leaf: &ParsedCertificate) -> Claims {
    let measurements = report
        .response
        .blocks
        .iter()
        .map(|b| {
            (
                format!("measurement_block_{}", b.index),
                HexBytes(b.value.clone()),
            )
        })
        .collect();
    let mut details: BTreeMap<String, String> = report.response.opaque_details();
    details.insert("responder_nonce".into(), hex::encode(report.response.nonce));
    details.insert("signing_certificate".into(), leaf.subject().to_string());
    details.insert(
        "measurement_block_count".into(),
        report.response.blocks.len().to_string(),
    );
    details.insert(
        "ocsp".into(),
        "not checked: NVIDIA revokes device certificates by OCSP only, which offline verification cannot query".into(),
    );
    details.insert(
        "rim".into(),
        "not compared: the measurements were not checked against NVIDIA's driver and VBIOS reference manifests".into(),
    );
    Claims {
        tee: TeeKind::NvidiaH100,
        simulated: false,
        measurements,
        signer: None,
        security_version: None,
        tcb_status: TcbStatus::NotReported,
        advisory_ids: Vec::new(),
        debug: false,
        report_data: HexBytes(report.request.nonce.to_vec()),
        platform_id: None,
        evidence_time: None,
        details,
        trust_anchor: None,
    }
}
