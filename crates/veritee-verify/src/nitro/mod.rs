//! Verifier for AWS Nitro Enclaves attestation documents.
//!
//! # Evidence
//!
//! - A COSE_Sign1 attestation document as `/dev/nsm` returns it, tagged (18) or
//!   untagged, raw CBOR (base64 or hex text is decoded before the verifier sees it,
//!   see `veritee_attest::encoding`). Layout: [`document`].
//! - Or an X.509 certificate, PEM or DER, that carries such a document hex-encoded in
//!   a DNS subject alternative name (Evervault Cages). Then the document's
//!   `user_data` must be that certificate's SubjectPublicKeyInfo. See [`embedded`].
//!
//! No collateral is used: Nitro documents carry their whole certificate chain and AWS
//! publishes no CRLs for it. A collateral file given anyway is refused, so that a
//! caller does not believe it was used.
//!
//! # Checks
//!
//! 1. The COSE envelope: protected header `alg` = ES384 (-35), a 96-byte signature;
//!    the payload's fields, types and sizes as AWS's attestation process requires.
//! 2. The document's timestamp is not after `at` (plus [`MAX_CLOCK_SKEW`]).
//! 3. The chain `certificate` <- `cabundle` <- trust anchor, validated at `at`
//!    (validity of every certificate, CA constraints, key usage, signatures). The
//!    anchor is the AWS Nitro Enclaves Root G1 embedded here, unless the caller
//!    supplies anchors. Signing certificates live about three hours, so `at` must be
//!    close to the document's creation.
//! 4. The ECDSA P-384/SHA-384 signature over the COSE `Sig_structure` with the
//!    signing certificate's key.
//! 5. The timestamp lies within the signing certificate's validity.
//! 6. For a document carried in a certificate: `user_data` = that certificate's
//!    SubjectPublicKeyInfo.
//!
//! # Claims
//!
//! - `measurements`: `pcr0`..`pcr31`, each PCR the document reports (PCR8, the hash
//!   of the enclave image's signing certificate, stays a measurement: `signer` is
//!   `None`).
//! - `debug`: true when PCR0 is all zeros, which is how Nitro reports an enclave
//!   started in debug mode (PCR0, 1, 2 and 8 are then zero).
//! - `report_data`: what the requester bound, so that `--report-data` compares it:
//!   the `nonce` when the document has one, otherwise `user_data`, otherwise empty.
//!   Both, with `public_key` and `module_id`, are also in `details` (hex).
//! - `tcb_status`: `NotReported` (AWS grades no TCB); `security_version`,
//!   `platform_id`: `None`; `evidence_time`: the document's timestamp.

pub mod cbor;
pub mod document;
pub mod embedded;

use document::SignedDocument;
use std::sync::LazyLock;
use time::OffsetDateTime;
use veritee_attest::{
    AnchorInfo, AnchorSource, Claims, HexBytes, ParsedCertificate, TcbStatus, TeeKind, Verifier,
    VerifyError, VerifyInput,
};
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_x509::{RevocationPolicy, X509Error, verify_chain};

/// How far a document's timestamp may be ahead of the verification time.
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// The AWS Nitro Enclaves Root G1 (CN=aws.nitro-enclaves), valid 2019-10-28 to
/// 2049-10-28, SHA-256 fingerprint 641a0321...79bb5b.
pub const AWS_NITRO_ROOT_G1_PEM: &[u8] = include_bytes!("roots/aws_nitro_enclaves_root_G1.pem");

static DEFAULT_ANCHORS: LazyLock<Result<Vec<ParsedCertificate>, X509Error>> =
    LazyLock::new(|| ParsedCertificate::from_pem_chain(AWS_NITRO_ROOT_G1_PEM));

/// The embedded default trust anchors (the AWS Nitro Enclaves Root G1).
pub fn default_anchors() -> Result<&'static [ParsedCertificate], VerifyError> {
    DEFAULT_ANCHORS
        .as_deref()
        .map_err(|e| VerifyError::Certificate(e.clone()))
}

/// The Nitro Enclaves verifier.
#[derive(Debug, Default, Clone, Copy)]
pub struct NitroVerifier;

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Largest evidence accepted (a certificate carrying a document, as PEM text).
pub const MAX_EVIDENCE_LEN: usize = embedded::MAX_CARRIER_LEN;

/// Evidence after unwrapping: the signed document, and the certificate that carried it.
#[derive(Debug, Clone)]
pub struct Unwrapped {
    /// The document.
    pub signed: SignedDocument,
    /// The certificate that carried it, for documents found in a certificate.
    pub carrier: Option<ParsedCertificate>,
}

/// Decodes evidence (a COSE_Sign1 document, or a certificate carrying one) without
/// verifying anything.
pub fn unwrap(evidence: &[u8]) -> Result<Unwrapped, VerifyError> {
    if evidence.len() > MAX_EVIDENCE_LEN {
        return Err(VerifyError::TooLarge {
            what: "Nitro evidence".into(),
            size: evidence.len(),
            limit: MAX_EVIDENCE_LEN,
        });
    }
    if embedded::looks_like_certificate(evidence) {
        let found = embedded::extract(evidence)?;
        return Ok(Unwrapped {
            signed: SignedDocument::parse(&found.document)?,
            carrier: Some(found.carrier),
        });
    }
    Ok(Unwrapped {
        signed: SignedDocument::parse(evidence)?,
        carrier: None,
    })
}

impl Verifier for NitroVerifier {
    fn tee(&self) -> TeeKind {
        TeeKind::Nitro
    }

    fn builtin_anchors(&self) -> Result<Vec<ParsedCertificate>, VerifyError> {
        Ok(default_anchors()?.to_vec())
    }

    fn recognizes(&self, evidence: &[u8]) -> bool {
        // A COSE_Sign1 prefix is enough: a damaged document is then reported as such,
        // not as an unknown format.
        document::CoseSign1::looks_like(evidence) || embedded::recognizes(evidence)
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        if !input.collateral.is_empty() {
            return Err(VerifyError::Collateral(format!(
                "Nitro attestation documents carry their own certificate chain and use no collateral; {} collateral file(s) were given",
                input.collateral.len()
            )));
        }
        let Unwrapped { signed, carrier } = unwrap(input.evidence)?;
        let anchors = if input.trust_anchors.is_empty() {
            default_anchors()?
        } else {
            input.trust_anchors
        };
        self.verify_document(&signed, carrier.as_ref(), anchors, input.at)
    }
}

impl NitroVerifier {
    /// Verifies a decoded document (checks 2 to 6 of the module documentation) against
    /// `anchors` at `at`; `carrier` is the certificate that carried it, if any.
    pub fn verify_document(
        &self,
        signed: &SignedDocument,
        carrier: Option<&ParsedCertificate>,
        anchors: &[ParsedCertificate],
        at: OffsetDateTime,
    ) -> Result<Claims, VerifyError> {
        let doc = &signed.document;
        let timestamp_nanos = i128::from(doc.timestamp_ms) * 1_000_000;
        let evidence_time =
            OffsetDateTime::from_unix_timestamp_nanos(timestamp_nanos).map_err(|_| {
                VerifyError::malformed("Nitro attestation document", "timestamp out of range")
            })?;
        if evidence_time > at + MAX_CLOCK_SKEW {
            return Err(VerifyError::FromTheFuture {
                evidence_time: fmt_time(evidence_time),
                at: fmt_time(at),
            });
        }

        let leaf = ParsedCertificate::from_der(&doc.certificate)?;
        let bundle = doc
            .cabundle
            .iter()
            .map(|der| ParsedCertificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()?;
        // AWS publishes no CRLs for the Nitro PKI: there is no revocation to apply.
        let chain = verify_chain(
            &leaf,
            &bundle,
            anchors,
            &[],
            at,
            RevocationPolicy::CheckIfPresent,
            &[],
        )?;

        sign::verify(
            VerificationScheme::EcdsaP384Sha384Fixed,
            leaf.public_key_bits(),
            &signed.cose.to_be_signed(),
            &signed.cose.signature,
        )
        .map_err(|_| {
            VerifyError::Signature(format!(
                "the attestation document's ES384 signature does not verify with the key of '{}'",
                leaf.subject()
            ))
        })?;

        if evidence_time < leaf.not_before() || evidence_time > leaf.not_after() {
            return Err(VerifyError::Inconsistent(format!(
                "the document is dated {}, outside its signing certificate's validity {} to {}",
                fmt_time(evidence_time),
                fmt_time(leaf.not_before()),
                fmt_time(leaf.not_after())
            )));
        }

        let mut details = std::collections::BTreeMap::new();
        if let Some(carrier) = carrier {
            let spki = carrier.spki_der()?;
            if doc.user_data.as_deref() != Some(spki.as_slice()) {
                return Err(VerifyError::Inconsistent(format!(
                    "the document's user_data is not the public key of the certificate '{}' that carries it",
                    carrier.subject()
                )));
            }
            details.insert(
                "carrier_certificate".to_string(),
                carrier.subject().to_string(),
            );
        }
        let mut claims = claims(signed, evidence_time, leaf.subject(), details);
        claims.trust_anchor = Some(AnchorInfo::of(
            TeeKind::Nitro,
            AnchorSource::BuiltIn,
            chain.anchor(),
        ));
        Ok(claims)
    }
}

fn claims(
    signed: &SignedDocument,
    evidence_time: OffsetDateTime,
    signing_subject: &str,
    mut details: std::collections::BTreeMap<String, String>,
) -> Claims {
    let doc = &signed.document;
    let measurements = doc
        .pcrs
        .iter()
        .map(|(index, value)| (format!("pcr{index}"), HexBytes(value.clone())))
        .collect();
    let debug = doc
        .pcrs
        .get(&0)
        .is_some_and(|pcr0| pcr0.iter().all(|&b| b == 0));
    let report_data = doc
        .nonce
        .clone()
        .or_else(|| doc.user_data.clone())
        .unwrap_or_default();
    details.insert("module_id".into(), doc.module_id.clone());
    details.insert("digest".into(), doc.digest.clone());
    details.insert("signing_certificate".into(), signing_subject.to_string());
    details.insert(
        "report_data_source".into(),
        match (&doc.nonce, &doc.user_data) {
            (Some(_), _) => "nonce",
            (None, Some(_)) => "user_data",
            (None, None) => "none",
        }
        .into(),
    );
    for (name, value) in [
        ("nonce", &doc.nonce),
        ("user_data", &doc.user_data),
        ("public_key", &doc.public_key),
    ] {
        if let Some(value) = value {
            details.insert(name.into(), hex::encode(value));
        }
    }
    details.insert("cose_tagged".into(), signed.cose.tagged.to_string());
    Claims {
        tee: TeeKind::Nitro,
        simulated: false,
        measurements,
        signer: None,
        security_version: None,
        tcb_status: TcbStatus::NotReported,
        advisory_ids: Vec::new(),
        debug,
        report_data: HexBytes(report_data),
        platform_id: None,
        evidence_time: Some(evidence_time),
        details,
        trust_anchor: None,
    }
}
