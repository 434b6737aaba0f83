//! The verification steps, in Intel QVL's order (see the module documentation).

use super::collateral::{DcapCollateral, Signed};
use super::fmt_time;
use super::pck::{OID_SGX_EXTENSIONS, PckExtensions};
use super::qe_identity::{QeId, QeIdentity};
use super::quote::{INTEL_QE_VENDOR_ID, Quote, QuoteBody, SgxReport, TdReport};
use super::tcb::{self, Appraisal};
use super::tcb_info::{TcbInfo, TcbInfoId};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use time::OffsetDateTime;
use veritee_attest::{
    AnchorInfo, AnchorSource, Claims, HexBytes, ParsedCertificate, TeeKind, VerifyError,
};
use veritee_crypto::memo::{Recent, digest_of};
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_x509::{ParsedCrl, RevocationPolicy, X509Error, verify_chain};

/// A chain failure: an expired CRL is expired collateral, anything else a certificate
/// failure.
fn chain_error(e: X509Error) -> VerifyError {
    match e {
        X509Error::CrlOutsideValidity { .. } => {
            VerifyError::CollateralOutsideValidity(e.to_string())
        }
        other => VerifyError::Certificate(other),
    }
}

/// ECDSA P-256/SHA-256 over `message`, `r || s` signature; `key` is an SEC1 point.
fn ecdsa_p256(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    sign::verify(
        VerificationScheme::EcdsaP256Sha256Fixed,
        key,
        message,
        signature,
    )
    .is_ok()
}

/// [`ecdsa_p256`] for signatures that recur from quote to quote (Intel's over TCB info
/// and QE identity, the PCK key's over the QE report): remembered once verified.
fn ecdsa_p256_collateral(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    sign::verify_collateral(
        VerificationScheme::EcdsaP256Sha256Fixed,
        key,
        message,
        signature,
    )
    .is_ok()
}

fn check_dates(
    doc: &str,
    issue: OffsetDateTime,
    next: OffsetDateTime,
    at: OffsetDateTime,
) -> Result<(), VerifyError> {
    if at < issue || at > next {
        return Err(VerifyError::CollateralOutsideValidity(format!(
            "{doc} issued {} with next update {} is not valid at {}",
            fmt_time(issue),
            fmt_time(next),
            fmt_time(at)
        )));
    }
    Ok(())
}

/// Checks the signing chain of a collateral document and Intel's signature over it.
fn check_signed<T>(
    doc: &str,
    signed: &Signed<T>,
    chain: &[ParsedCertificate],
    anchors: &[ParsedCertificate],
    crls: &[ParsedCrl],
    at: OffsetDateTime,
    chain_checked: bool,
) -> Result<(), VerifyError> {
    let signer = chain.first().ok_or_else(|| {
        VerifyError::MissingCollateral(format!("the {doc} issuer chain is empty"))
    })?;
    if !chain_checked {
        let path = verify_chain(
            signer,
            chain,
            anchors,
            crls,
            at,
            RevocationPolicy::RequireForEveryIssuer,
            &[],
        )
        .map_err(chain_error)?;
        // QVL's TCBSigningChain: the signing certificate is issued by the root itself.
        if path.path.len() != 2 {
            return Err(VerifyError::Collateral(format!(
                "the {doc} signing certificate '{}' is {} certificates away from the root, not issued by it directly",
                signer.subject(),
                path.path.len() - 1
            )));
        }
    }
    if !ecdsa_p256_collateral(signer.public_key_bits(), &signed.text, &signed.signature) {
        return Err(VerifyError::Signature(format!(
            "the {doc} signature does not verify with the key of '{}'",
            signer.subject()
        )));
    }
    Ok(())
}

/// PCK certificate chains whose parsed form is remembered: one per platform a verifier
/// meets. A chain is remembered once it parses, before it is validated, so a sender of
/// made-up chains can fill this (at about 12 KiB each, 3 MiB), never more.
const REMEMBERED_PCK_CHAINS: usize = 256;

/// The PCK certificates of the quote's certification data, leaf first. A platform's
/// quotes all carry the same chain, so its parsed form is remembered by the digest of
/// its PEM bytes; it is validated afresh at every verification.
fn pck_chain(quote: &Quote<'_>) -> Result<Arc<Vec<ParsedCertificate>>, VerifyError> {
    static PARSED: OnceLock<Recent<Arc<Vec<ParsedCertificate>>>> = OnceLock::new();
    let pem = quote.pck_chain_pem;
    PARSED
        .get_or_init(|| Recent::new(REMEMBERED_PCK_CHAINS))
        .get_or_try_insert(digest_of("veritee DCAP PCK chain v1", &[pem]), || {
            let certs = ParsedCertificate::from_pem_chain(pem)
                .map_err(|e| VerifyError::malformed("PCK certificate chain in the quote", e))?;
            if certs.is_empty() {
                return Err(VerifyError::malformed(
                    "PCK certificate chain in the quote",
                    "no certificate",
                ));
            }
            check_canonical_pem(pem, &certs)?;
            Ok(Arc::new(certs))
        })
}

/// The certification data must be the chain's certificates in PEM exactly as Intel's
/// quoting library writes them (64-column base64, LF or CRLF line ends, each block
/// ended by a line end), then zero or more NUL bytes: the PEM text is outside every
/// signature, so any other form (text between blocks, other line breaks, bytes after
/// the last block) would let two different quotes verify as the same one.
fn check_canonical_pem(pem: &[u8], certs: &[ParsedCertificate]) -> Result<(), VerifyError> {
    let text_len = pem.len() - pem.iter().rev().take_while(|b| **b == 0).count();
    let text = &pem[..text_len];
    let canonical = |ending: der::pem::LineEnding, eol: &str| {
        certs
            .iter()
            .map(|c| {
                let mut block =
                    der::pem::encode_string("CERTIFICATE", ending, c.der()).unwrap_or_default();
                // encode_string ends the END line with the line ending already.
                if !block.ends_with(eol) {
                    block.push_str(eol);
                }
                block
            })
            .collect::<String>()
    };
    let lf = canonical(der::pem::LineEnding::LF, "\n");
    let crlf = canonical(der::pem::LineEnding::CRLF, "\r\n");
    if text == lf.as_bytes() || text == crlf.as_bytes() {
        return Ok(());
    }
    let expected = if text.contains(&b'\r') { &crlf } else { &lf };
    let at = text
        .iter()
        .zip(expected.as_bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(text.len().min(expected.len()));
    Err(VerifyError::malformed(
        "PCK certificate chain in the quote",
        format!(
            "its PEM text is not in the form the quoting library writes (64-column base64, one line end after each line, NUL padding only): it departs from it at byte {at} of the certification data"
        ),
    ))
}

/// The SGX extensions of the quote's PCK certificate (not yet validated).
pub(crate) fn pck_extensions(quote: &Quote<'_>) -> Result<PckExtensions, VerifyError> {
    let certs = pck_chain(quote)?;
    let leaf = certs
        .first()
        .ok_or_else(|| VerifyError::malformed("PCK certificate chain", "empty"))?;
    PckExtensions::from_certificate(leaf)
}

/// Fails if the root CA CRL revokes the trust anchor itself.
fn check_anchor_not_revoked(
    anchor: &ParsedCertificate,
    crls: &[ParsedCrl],
    at: OffsetDateTime,
) -> Result<(), VerifyError> {
    for crl in crls
        .iter()
        .filter(|c| c.is_current_at(at) && c.verify_issued_by(anchor).is_ok())
    {
        if let Some(revoked_at) = crl.revocation_of(anchor.serial()) {
            return Err(VerifyError::Certificate(X509Error::Revoked {
                subject: anchor.subject().to_string(),
                serial: hex::encode_upper(anchor.serial()),
                revoked_at: fmt_time(revoked_at),
            }));
        }
    }
    Ok(())
}

fn check_tcb_info(
    info: &TcbInfo,
    quote: &Quote<'_>,
    at: OffsetDateTime,
) -> Result<(), VerifyError> {
    let fmspc = hex::encode(info.fmspc);
    check_dates(
        &format!("TCB info for FMSPC {fmspc}"),
        info.issue_date,
        info.next_update,
        at,
    )?;
    match (info.id, quote.is_tdx()) {
        (TcbInfoId::Sgx, false) => Ok(()),
        (TcbInfoId::Tdx, true) if info.version >= 3 => Ok(()),
        (id, tdx) => Err(VerifyError::Collateral(format!(
            "the TCB info (FMSPC {fmspc}) is version {} for {}, the quote is {}",
            info.version,
            if id == TcbInfoId::Tdx { "TDX" } else { "SGX" },
            if tdx { "TDX" } else { "SGX" }
        ))),
    }
}

fn check_qe_identity(
    identity: &QeIdentity,
    quote: &Quote<'_>,
    at: OffsetDateTime,
) -> Result<(), VerifyError> {
    check_dates("QE identity", identity.issue_date, identity.next_update, at)?;
    let expected = if quote.is_tdx() { QeId::TdQe } else { QeId::Qe };
    if identity.id != expected {
        return Err(VerifyError::Collateral(format!(
            "the QE identity is for {:?}, the quote needs {expected:?}",
            identity.id
        )));
    }
    Ok(())
}

/// QE report against the QE identity (QVL `EnclaveReportVerifier`).
fn check_qe_report(report: &SgxReport, identity: &QeIdentity) -> Result<(), VerifyError> {
    let masked = |value: &[u8], mask: &[u8]| -> Vec<u8> {
        value.iter().zip(mask).map(|(v, m)| v & m).collect()
    };
    if masked(&report.misc_select, &identity.miscselect_mask) != identity.miscselect {
        return Err(VerifyError::Inconsistent(format!(
            "QE report MISCSELECT {} does not match the QE identity ({} under mask {})",
            hex::encode(report.misc_select),
            hex::encode(identity.miscselect),
            hex::encode(identity.miscselect_mask)
        )));
    }
    if masked(&report.attributes, &identity.attributes_mask) != identity.attributes {
        return Err(VerifyError::Inconsistent(format!(
            "QE report ATTRIBUTES {} do not match the QE identity ({} under mask {})",
            hex::encode(report.attributes),
            hex::encode(identity.attributes),
            hex::encode(identity.attributes_mask)
        )));
    }
    if report.mr_signer != identity.mrsigner {
        return Err(VerifyError::Inconsistent(format!(
            "QE report MRSIGNER {} is not the QE identity's {}",
            hex::encode(report.mr_signer),
            hex::encode(identity.mrsigner)
        )));
    }
    if report.isv_prod_id != identity.isvprodid {
        return Err(VerifyError::Inconsistent(format!(
            "QE report ISVPRODID {} is not the QE identity's {}",
            report.isv_prod_id, identity.isvprodid
        )));
    }
    Ok(())
}

/// MRSIGNERSEAM and SEAMATTRIBUTES against the TCB info (QVL 4.1.2.5.12).
fn check_tdx_module(info: &TcbInfo, td: &TdReport) -> Result<(), VerifyError> {
    let version = td.tee_tcb_svn[1];
    let (name, module) = if version > 0 {
        let identity = tcb::module_identity(info, version)?;
        (identity.id.as_str(), &identity.module)
    } else {
        let module = info
            .tdx_module
            .as_ref()
            .ok_or_else(|| VerifyError::Collateral("the TDX TCB info has no tdxModule".into()))?;
        ("tdxModule", module)
    };
    if td.mr_signer_seam != module.mrsigner {
        return Err(VerifyError::Inconsistent(format!(
            "MRSIGNERSEAM {} is not the signer of TDX module {name} ({})",
            hex::encode(td.mr_signer_seam),
            hex::encode(module.mrsigner)
        )));
    }
    // QVL requires SEAMATTRIBUTES to be zero and equal to the expected attributes.
    if td.seam_attributes != [0u8; 8] || td.seam_attributes != module.attributes {
        return Err(VerifyError::Inconsistent(format!(
            "SEAMATTRIBUTES {} are not the zero attributes of TDX module {name} ({})",
            hex::encode(td.seam_attributes),
            hex::encode(module.attributes)
        )));
    }
    Ok(())
}

/// Verifies a parsed quote with parsed collateral against `anchors` at `at`.
pub(crate) fn verify_quote(
    quote: &Quote<'_>,
    collateral: &DcapCollateral,
    anchors: &[ParsedCertificate],
    at: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    if quote.header.qe_vendor_id != INTEL_QE_VENDOR_ID {
        return Err(VerifyError::Inconsistent(format!(
            "QE vendor id {} is not Intel's",
            hex::encode(quote.header.qe_vendor_id)
        )));
    }
    let crls = &collateral.crls;

    // 1. TCB info and QE identity, signed by Intel's TCB signing key.
    check_signed(
        "TCB info",
        &collateral.tcb_info,
        &collateral.tcb_info_chain,
        anchors,
        crls,
        at,
        false,
    )?;
    let info = &collateral.tcb_info.parsed;
    check_tcb_info(info, quote, at)?;
    let same_chain = collateral.qe_identity_chain == collateral.tcb_info_chain;
    check_signed(
        "QE identity",
        &collateral.qe_identity,
        &collateral.qe_identity_chain,
        anchors,
        crls,
        at,
        same_chain,
    )?;
    let identity = &collateral.qe_identity.parsed;
    check_qe_identity(identity, quote, at)?;

    // 2. The PCK certificate chain, with both CRLs required.
    let certs = pck_chain(quote)?;
    let (leaf, rest) = certs
        .split_first()
        .ok_or_else(|| VerifyError::malformed("PCK certificate chain", "empty"))?;
    if !leaf.subject().contains("SGX PCK Certificate") {
        return Err(VerifyError::Inconsistent(format!(
            "the quote's leaf certificate '{}' is not an SGX PCK certificate",
            leaf.subject()
        )));
    }
    let mut intermediates = rest.to_vec();
    intermediates.extend(collateral.pck_crl_issuer_chain.iter().cloned());
    let path = verify_chain(
        leaf,
        &intermediates,
        anchors,
        crls,
        at,
        RevocationPolicy::RequireForEveryIssuer,
        &[OID_SGX_EXTENSIONS],
    )
    .map_err(chain_error)?;
    // Every certificate the quote carries is on the verified path, byte for byte (the
    // root as the anchor itself): a damaged copy of an intermediate or of the root
    // must not pass because the collateral's copy completed the chain instead.
    if certs.len() > path.path.len()
        || certs
            .iter()
            .zip(&path.path)
            .any(|(carried, verified)| carried.der() != verified.der())
    {
        return Err(VerifyError::Inconsistent(
            "the quote's PCK certificate chain is not the chain that verified: a certificate it carries differs from the one on the path to the root".into(),
        ));
    }
    // QVL's PckCertVerifier: PCK certificate, PCK Processor/Platform CA, root.
    if path.path.len() != 3 {
        return Err(VerifyError::Inconsistent(format!(
            "the PCK certificate chain has {} certificates up to the root, expected 3 (PCK, PCK CA, root)",
            path.path.len()
        )));
    }
    check_anchor_not_revoked(path.anchor(), crls, at)?;
    let issuer = leaf.issuer();
    let pck_ca = if issuer.contains("Processor") {
        "Processor"
    } else if issuer.contains("Platform") {
        "Platform"
    } else {
        "unknown"
    };

    // 3. The platform the PCK certificate describes is the one the TCB info grades.
    let pck = PckExtensions::from_certificate(leaf)?;
    if pck.fmspc != info.fmspc {
        return Err(VerifyError::Collateral(format!(
            "the TCB info is for FMSPC {}, the PCK certificate is for FMSPC {}",
            hex::encode(info.fmspc),
            hex::encode(pck.fmspc)
        )));
    }
    if pck.pce_id != info.pce_id {
        return Err(VerifyError::Collateral(format!(
            "the TCB info is for PCE ID {}, the PCK certificate has PCE ID {}",
            hex::encode(info.pce_id),
            hex::encode(pck.pce_id)
        )));
    }

    // 4. The TDX module.
    if let QuoteBody::Td(td) = &quote.body {
        check_tdx_module(info, td)?;
    }

    // 5. The QE report, signed by the PCK key, binds the attestation key. The QE
    // signs it once per attestation key, so it recurs in every quote of a platform.
    if !ecdsa_p256_collateral(
        leaf.public_key_bits(),
        quote.qe_report_bytes,
        &quote.qe_report_signature,
    ) {
        return Err(VerifyError::Signature(
            "the QE report signature does not verify with the PCK certificate's key".into(),
        ));
    }
    let mut bound = Vec::with_capacity(quote.attestation_key.len() + quote.qe_auth_data.len());
    bound.extend_from_slice(&quote.attestation_key);
    bound.extend_from_slice(quote.qe_auth_data);
    let digest = veritee_crypto::digest::sha256(&bound);
    if quote.qe_report.report_data.get(..32) != Some(&digest[..]) {
        return Err(VerifyError::Signature(
            "the QE report data is not SHA-256(attestation key || QE authentication data): the attestation key is not the QE's"
                .into(),
        ));
    }

    // 6. The QE is Intel's.
    check_qe_report(&quote.qe_report, identity)?;

    // 7. The quote signature.
    let mut key = Vec::with_capacity(1 + quote.attestation_key.len());
    key.push(0x04);
    key.extend_from_slice(&quote.attestation_key);
    if !ecdsa_p256(&key, quote.signed, &quote.signature) {
        return Err(VerifyError::Signature(
            "the quote signature over header and report body does not verify with the attestation key".into(),
        ));
    }

    // 8. TCB levels.
    let td = match &quote.body {
        QuoteBody::Td(td) => Some((&td.tee_tcb_svn, td.tdx15.as_ref().map(|(svn2, _)| svn2))),
        QuoteBody::Sgx(_) => None,
    };
    let appraisal = tcb::appraise(info, identity, &pck, quote.qe_report.isv_svn, td)?;

    let mut claims = claims(quote, info, &pck, pck_ca, &appraisal);
    claims.trust_anchor = Some(AnchorInfo::of(
        claims.tee,
        AnchorSource::BuiltIn,
        path.anchor(),
    ));
    Ok(claims)
}

fn hexb(bytes: &[u8]) -> HexBytes {
    HexBytes(bytes.to_vec())
}

fn claims(
    quote: &Quote<'_>,
    info: &TcbInfo,
    pck: &PckExtensions,
    pck_ca: &str,
    appraisal: &Appraisal,
) -> Claims {
    let mut details = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        details.insert(k.to_string(), v);
    };
    put("fmspc", hex::encode(pck.fmspc));
    put("pce_id", hex::encode(pck.pce_id));
    put("pck_ca", pck_ca.to_string());
    put("pck_pce_svn", pck.pce_svn.to_string());
    put("pck_sgx_tcb_components", hex::encode(pck.sgx_components));
    put("platform_tcb_status", appraisal.platform_status.to_string());
    put("qe_tcb_status", appraisal.qe_status.to_string());
    put("qe_isvsvn", quote.qe_report.isv_svn.to_string());
    put("tcb_date", fmt_time(appraisal.tcb_date));
    put(
        "tcb_evaluation_data_number",
        info.tcb_evaluation_data_number.to_string(),
    );
    put("quote_version", quote.header.version.to_string());
    if let Some(body_type) = quote.body_type {
        put("body_type", body_type.to_string());
    }
    if let Some(module) = &appraisal.tdx_module {
        put("tdx_module", module.clone());
    }
    if let Some((current, relaunch)) = appraisal.current_tcb {
        put("current_tcb_status", current.to_string());
        put("td_relaunch_advised", relaunch.to_string());
    }
    let mut measurements = BTreeMap::new();
    let (tee, signer, security_version, debug) = match &quote.body {
        QuoteBody::Sgx(report) => {
            measurements.insert("mrenclave".to_string(), hexb(&report.mr_enclave));
            put("mrsigner", hex::encode(report.mr_signer));
            put("isv_prod_id", report.isv_prod_id.to_string());
            put("isv_svn", report.isv_svn.to_string());
            put("attributes", hex::encode(report.attributes));
            put("miscselect", hex::encode(report.misc_select));
            put("cpu_svn", hex::encode(report.cpu_svn));
            put("config_svn", report.config_svn.to_string());
            put("config_id", hex::encode(report.config_id));
            (
                TeeKind::Sgx,
                Some(hexb(&report.mr_signer)),
                Some(u64::from(report.isv_svn)),
                report.debug(),
            )
        }
        QuoteBody::Td(td) => {
            for (name, value) in [
                ("mrtd", &td.mr_td),
                ("rtmr0", &td.rtmr[0]),
                ("rtmr1", &td.rtmr[1]),
                ("rtmr2", &td.rtmr[2]),
                ("rtmr3", &td.rtmr[3]),
                ("mrconfigid", &td.mr_config_id),
                ("mrowner", &td.mr_owner),
                ("mrownerconfig", &td.mr_owner_config),
                ("mrseam", &td.mr_seam),
            ] {
                measurements.insert(name.to_string(), hexb(value));
            }
            put("mrsignerseam", hex::encode(td.mr_signer_seam));
            put("td_attributes", hex::encode(td.td_attributes));
            put("seam_attributes", hex::encode(td.seam_attributes));
            put("xfam", hex::encode(td.xfam));
            put("tee_tcb_svn", hex::encode(td.tee_tcb_svn));
            if let Some((svn2, service_td)) = &td.tdx15 {
                put("tee_tcb_svn2", hex::encode(svn2));
                put("mrservicetd", hex::encode(service_td));
            }
            (TeeKind::Tdx, None, None, td.debug())
        }
    };
    Claims {
        tee,
        simulated: false,
        measurements,
        signer,
        security_version,
        tcb_status: appraisal.status,
        advisory_ids: appraisal.advisory_ids.clone(),
        debug,
        report_data: hexb(quote.report_data()),
        platform_id: (!pck.ppid.is_empty()).then(|| hexb(&pck.ppid)),
        evidence_time: None,
        details,
        trust_anchor: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcap::tcb_info::TdxModuleLevel;
    use veritee_attest::TcbStatus;

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/data/dcap/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn qe_identity_mismatches_are_named() {
        let bytes = read("sgx_quote");
        let quote = Quote::parse(&bytes).unwrap();
        let collateral = DcapCollateral::parse(&read("sgx_quote_collateral.json")).unwrap();
        let identity = collateral.qe_identity().clone();
        check_qe_report(&quote.qe_report, &identity).unwrap();
        type Edit = fn(&mut QeIdentity);
        let cases: [(&str, Edit); 4] = [
            ("MRSIGNER", |i| i.mrsigner[0] ^= 1),
            ("ISVPRODID", |i| i.isvprodid += 1),
            ("ATTRIBUTES", |i| i.attributes[1] |= 0x80),
            ("MISCSELECT", |i| i.miscselect[0] |= 1),
        ];
        for (word, edit) in cases {
            let mut bad = identity.clone();
            edit(&mut bad);
            let err = check_qe_report(&quote.qe_report, &bad).unwrap_err();
            assert!(
                matches!(err, VerifyError::Inconsistent(_)) && err.to_string().contains(word),
                "{err}"
            );
        }
    }

    #[test]
    fn tdx_module_mismatches_are_named() {
        let bytes = read("tdx_quote");
        let quote = Quote::parse(&bytes).unwrap();
        let collateral = DcapCollateral::parse(&read("tdx_quote_collateral.json")).unwrap();
        let info = collateral.tcb_info();
        let QuoteBody::Td(td) = &quote.body else {
            panic!("not a TD quote")
        };
        check_tdx_module(info, td).unwrap();
        let mut bad = td.clone();
        bad.mr_signer_seam[5] = 1;
        assert!(
            check_tdx_module(info, &bad)
                .unwrap_err()
                .to_string()
                .contains("MRSIGNERSEAM")
        );
        let mut bad = td.clone();
        bad.seam_attributes[0] = 1;
        assert!(
            check_tdx_module(info, &bad)
                .unwrap_err()
                .to_string()
                .contains("SEAMATTRIBUTES")
        );
        let mut bad = td.clone();
        bad.tee_tcb_svn[1] = 2;
        let err = check_tdx_module(info, &bad).unwrap_err();
        assert!(
            matches!(err, VerifyError::Inconsistent(_)) && err.to_string().contains("TDX_02"),
            "{err}"
        );
        // Module version 0: the tdxModule family identity applies, no module level.
        let mut v0 = td.clone();
        v0.tee_tcb_svn[1] = 0;
        check_tdx_module(info, &v0).unwrap();
    }

    #[test]
    fn component_statuses_converge_like_qvl() {
        let bytes = read("sgx_quote");
        let quote = Quote::parse(&bytes).unwrap();
        let collateral = DcapCollateral::parse(&read("sgx_quote_collateral.json")).unwrap();
        let pck = pck_extensions(&quote).unwrap();
        let info = collateral.tcb_info();
        let svn = quote.qe_report.isv_svn;
        let appraise = |identity: &QeIdentity| tcb::appraise(info, identity, &pck, svn, None);
        let base = appraise(collateral.qe_identity()).unwrap();
        assert_eq!(base.status, TcbStatus::ConfigurationAndSwHardeningNeeded);
        // The QE falls to an OutOfDate level: configuration statuses become
        // OutOfDateConfigurationNeeded, and the QE's advisories join the platform's.
        let mut identity = collateral.qe_identity().clone();
        identity.levels.retain(|l| l.status != TcbStatus::UpToDate);
        identity.levels[0].advisory_ids = vec!["INTEL-SA-99999".into(), "INTEL-SA-00615".into()];
        let outdated = appraise(&identity).unwrap();
        assert_eq!(outdated.status, TcbStatus::OutOfDateConfigurationNeeded);
        assert_eq!(outdated.qe_status, TcbStatus::OutOfDate);
        assert_eq!(
            outdated.advisory_ids,
            ["INTEL-SA-00289", "INTEL-SA-00615", "INTEL-SA-99999"]
        );
        identity.levels[0].status = TcbStatus::Revoked;
        assert_eq!(appraise(&identity).unwrap().status, TcbStatus::Revoked);
        // Below every QE level.
        let mut identity = collateral.qe_identity().clone();
        identity.levels.retain(|l| l.isvsvn > svn);
        let err = appraise(&identity).unwrap_err();
        assert!(
            matches!(err, VerifyError::NoMatchingTcbLevel(_))
                && err.to_string().contains("QE ISV SVN"),
            "{err}"
        );

        // TDX: an OutOfDate module makes an UpToDate platform OutOfDate.
        let bytes = read("tdx_quote");
        let quote = Quote::parse(&bytes).unwrap();
        let collateral = DcapCollateral::parse(&read("tdx_quote_collateral.json")).unwrap();
        let pck = pck_extensions(&quote).unwrap();
        let QuoteBody::Td(td) = &quote.body else {
            panic!("not a TD quote")
        };
        let mut info = collateral.tcb_info().clone();
        let appraise = |info: &TcbInfo, tee: &[u8; 16]| {
            tcb::appraise(
                info,
                collateral.qe_identity(),
                &pck,
                quote.qe_report.isv_svn,
                Some((tee, None)),
            )
        };
        assert_eq!(
            appraise(&info, &td.tee_tcb_svn).unwrap().status,
            TcbStatus::UpToDate
        );
        let module = info
            .tdx_module_identities
            .iter_mut()
            .find(|m| m.id == "TDX_01")
            .unwrap();
        module.levels.insert(
            0,
            TdxModuleLevel {
                isvsvn: 9,
                tcb_date: module.levels[0].tcb_date,
                status: TcbStatus::UpToDate,
                advisory_ids: Vec::new(),
            },
        );
        module.levels[1].status = TcbStatus::OutOfDate;
        module.levels[1].advisory_ids = vec!["INTEL-SA-01234".into()];
        let appraisal = appraise(&info, &td.tee_tcb_svn).unwrap();
        assert_eq!(appraisal.status, TcbStatus::OutOfDate);
        assert_eq!(
            appraisal.tdx_module.as_deref(),
            Some("TDX_01 isvsvn 6 OutOfDate")
        );
        assert_eq!(appraisal.advisory_ids, ["INTEL-SA-01234"]);
        // TDX 1.5 whose current TCB (TEE_TCB_SVN2) is up to date: relaunch advised.
        let mut current = td.tee_tcb_svn;
        current[0] = 9;
        let appraisal = tcb::appraise(
            &info,
            collateral.qe_identity(),
            &pck,
            quote.qe_report.isv_svn,
            Some((&td.tee_tcb_svn, Some(&current))),
        )
        .unwrap();
        assert_eq!(appraisal.status, TcbStatus::OutOfDate);
        assert_eq!(appraisal.current_tcb, Some((TcbStatus::UpToDate, true)));
        // A module ISV SVN below every module level.
        let mut low = td.tee_tcb_svn;
        low[0] = 1;
        let err = appraise(&info, &low).unwrap_err();
        assert!(
            matches!(err, VerifyError::NoMatchingTcbLevel(_)) && err.to_string().contains("TDX_01"),
            "{err}"
        );
    }
}
