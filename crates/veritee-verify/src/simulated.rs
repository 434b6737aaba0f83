//! Verifier for veritee's simulated TEE.
//!
//! Same discipline as for hardware: the machine certificate must chain to a trust
//! anchor the caller supplies (the vendor's `root.pem`), every issuer needs a current
//! CRL, the report's TCB SVN must be the one the vendor certified, and the freshest
//! vendor-signed TCB info grades it. Claims are always marked simulated.

use time::OffsetDateTime;
use veritee_attest::simulated::envelope::SimEvidence;
use veritee_attest::simulated::report::SimReport;
use veritee_attest::simulated::tcb_info::SignedTcbInfo;
use veritee_attest::simulated::{OID_MACHINE_ID, OID_TCB_SVN};
use veritee_attest::{
    AnchorInfo, AnchorSource, Claims, HexBytes, ParsedCertificate, TeeKind, Verifier, VerifyError,
    VerifyInput,
};
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_x509::{ParsedCrl, RevocationPolicy, VerifiedChain, verify_chain};

/// How far ahead of the verification time a report's timestamp may be (clock skew).
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// The simulated TEE's verifier.
#[derive(Debug, Default, Clone, Copy)]
pub struct SimulatedVerifier;

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Collateral sorted by kind.
#[derive(Default)]
struct Collateral {
    crls: Vec<ParsedCrl>,
    tcb_infos: Vec<SignedTcbInfo>,
}

impl Collateral {
    fn gather(envelope: &SimEvidence, extra: &[Vec<u8>]) -> Result<Self, VerifyError> {
        let mut out = Self::default();
        for der in &envelope.crls {
            out.crls.push(ParsedCrl::from_der(der)?);
        }
        for doc in &envelope.tcb_infos {
            out.tcb_infos.push(SignedTcbInfo::parse(doc)?);
        }
        for (index, file) in extra.iter().enumerate() {
            if SignedTcbInfo::recognizes(file) {
                out.tcb_infos.push(SignedTcbInfo::parse(file)?);
            } else if let Ok(crl) = ParsedCrl::from_der_or_pem(file) {
                out.crls.push(crl);
            } else {
                return Err(VerifyError::Collateral(format!(
                    "collateral file #{} is neither a CRL nor a simulated TCB info document",
                    index + 1
                )));
            }
        }
        Ok(out)
    }
}

fn extension<'a>(
    cert: &'a ParsedCertificate,
    oid: &const_oid::ObjectIdentifier,
    name: &str,
) -> Result<&'a [u8], VerifyError> {
    cert.extension(oid).map(|(_, value)| value).ok_or_else(|| {
        VerifyError::Inconsistent(format!("the machine certificate has no {name} extension"))
    })
}

impl SimulatedVerifier {
    /// Picks the newest TCB info whose signature chains to the trust anchors and that is
    /// current at `at`; returns it with its signer's validated chain.
    fn tcb_info<'c>(
        collateral: &'c Collateral,
        anchors: &[ParsedCertificate],
        at: OffsetDateTime,
    ) -> Result<(&'c SignedTcbInfo, VerifiedChain), VerifyError> {
        let mut last_error = None;
        let mut current: Option<(&SignedTcbInfo, VerifiedChain)> = None;
        for doc in &collateral.tcb_infos {
            let Some(signer) = doc.signing_chain.first() else {
                last_error = Some(VerifyError::Collateral(
                    "TCB info has an empty signing chain".into(),
                ));
                continue;
            };
            let checked = verify_chain(
                signer,
                &doc.signing_chain[1..],
                anchors,
                &collateral.crls,
                at,
                RevocationPolicy::RequireForEveryIssuer,
                &[],
            )
            .map_err(|e| VerifyError::Collateral(format!("TCB info signing certificate: {e}")))
            .and_then(|chain| {
                sign::verify_collateral(
                    VerificationScheme::EcdsaP384Sha384Fixed,
                    signer.public_key_bits(),
                    &doc.signed_bytes,
                    &doc.signature,
                )
                .map_err(|_| {
                    VerifyError::Signature("the TCB info signature does not verify".into())
                })
                .map(|()| chain)
            });
            let chain = match checked {
                Ok(chain) => chain,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            if !doc.tcb_info.is_current_at(at) {
                last_error = Some(VerifyError::CollateralOutsideValidity(format!(
                    "TCB info issued {} with next update {} is not valid at {}",
                    fmt_time(doc.tcb_info.issue_date),
                    fmt_time(doc.tcb_info.next_update),
                    fmt_time(at)
                )));
                continue;
            }
            if current
                .as_ref()
                .is_none_or(|(c, _)| doc.tcb_info.issue_date > c.tcb_info.issue_date)
            {
                current = Some((doc, chain));
            }
        }
        current.ok_or_else(|| {
            last_error.unwrap_or_else(|| {
                VerifyError::MissingCollateral("no simulated TCB info document".into())
            })
        })
    }
}

impl Verifier for SimulatedVerifier {
    fn tee(&self) -> TeeKind {
        TeeKind::Simulated
    }

    fn recognizes(&self, evidence: &[u8]) -> bool {
        SimEvidence::recognizes(evidence)
    }

    fn verify(&self, input: &VerifyInput<'_>) -> Result<Claims, VerifyError> {
        let envelope = SimEvidence::parse(input.evidence)?;
        let report = SimReport::parse(&envelope.report)?;
        let machine = ParsedCertificate::from_der(&envelope.machine_certificate)?;
        let cas = envelope
            .ca_certificates
            .iter()
            .map(|der| ParsedCertificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()?;
        let collateral = Collateral::gather(&envelope, input.collateral)?;
        if input.trust_anchors.is_empty() {
            return Err(VerifyError::MissingCollateral(
                "simulated evidence needs the simulated vendor's root certificate as a trust anchor (--trust-anchor VENDOR/root.pem)"
                    .into(),
            ));
        }

        let chain = verify_chain(
            &machine,
            &cas,
            input.trust_anchors,
            &collateral.crls,
            input.at,
            RevocationPolicy::RequireForEveryIssuer,
            &[OID_MACHINE_ID, OID_TCB_SVN],
        )?;
        sign::verify(
            VerificationScheme::EcdsaP384Sha384Fixed,
            machine.public_key_bits(),
            &report.signed_bytes,
            &report.signature,
        )
        .map_err(|_| {
            VerifyError::Signature(
                "the report signature does not verify with the machine certificate's key".into(),
            )
        })?;

        let body = &report.body;
        let certified_id = octet_string(extension(&machine, &OID_MACHINE_ID, "machine id")?)?;
        if certified_id != body.machine_id {
            return Err(VerifyError::Inconsistent(format!(
                "the report names machine {}, its certificate machine {}",
                hex::encode(body.machine_id),
                hex::encode(&certified_id)
            )));
        }
        let certified_svn: u32 =
            der::Decode::from_der(extension(&machine, &OID_TCB_SVN, "TCB SVN")?)
                .map_err(|e| VerifyError::malformed("machine certificate TCB SVN extension", e))?;
        if certified_svn != body.tcb_svn {
            return Err(VerifyError::Inconsistent(format!(
                "the report claims platform TCB SVN {}, the machine is certified for {certified_svn}",
                body.tcb_svn
            )));
        }

        let (tcb, tcb_chain) = Self::tcb_info(&collateral, input.trust_anchors, input.at)?;
        let level = tcb.tcb_info.status_for(body.tcb_svn)?;
        // The oldest collateral the verdict rests on: the TCB info that graded the
        // platform and the CRLs that cleared each certificate on the two paths. CRLs
        // that were supplied but decided nothing (older ones, other issuers') do not
        // count: a stale extra file must not make fresh collateral look old.
        let collateral_issued = chain
            .crls_issued
            .iter()
            .chain(&tcb_chain.crls_issued)
            .copied()
            .chain([tcb.tcb_info.issue_date])
            .min()
            .unwrap_or(tcb.tcb_info.issue_date);

        let evidence_time =
            OffsetDateTime::from_unix_timestamp(i64::try_from(body.timestamp).unwrap_or(i64::MAX))
                .map_err(|_| {
                    VerifyError::malformed("simulated report", "timestamp out of range")
                })?;
        if evidence_time > input.at + MAX_CLOCK_SKEW {
            return Err(VerifyError::FromTheFuture {
                evidence_time: fmt_time(evidence_time),
                at: fmt_time(input.at),
            });
        }

        let signed = body.signer != [0u8; 48];
        Ok(Claims {
            tee: TeeKind::Simulated,
            simulated: true,
            measurements: [(
                "measurement".to_string(),
                HexBytes(body.measurement.to_vec()),
            )]
            .into(),
            signer: signed.then(|| HexBytes(body.signer.to_vec())),
            security_version: Some(body.security_version.into()),
            tcb_status: level.status,
            advisory_ids: level.advisory_ids.clone(),
            debug: body.debug,
            report_data: HexBytes(body.report_data.0.to_vec()),
            platform_id: Some(HexBytes(body.machine_id.to_vec())),
            evidence_time: Some(evidence_time),
            details: [
                // How stale the collateral may be is the verifier's caller's to judge
                // (an enclave bounds it).
                ("collateral_issued".to_string(), fmt_time(collateral_issued)),
                ("tcb_svn".to_string(), body.tcb_svn.to_string()),
                ("product_id".to_string(), body.product_id.to_string()),
                (
                    "machine_certificate_serial".to_string(),
                    hex::encode(machine.serial()),
                ),
            ]
            .into(),
            trust_anchor: Some(AnchorInfo::of(
                TeeKind::Simulated,
                AnchorSource::Given,
                chain.anchor(),
            )),
        })
    }
}

fn octet_string(bytes: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let os: der::asn1::OctetString = der::Decode::from_der(bytes)
        .map_err(|e| VerifyError::malformed("machine certificate machine id extension", e))?;
    Ok(os.into_bytes())
}
