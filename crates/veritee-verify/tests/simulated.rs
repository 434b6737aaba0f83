//! The simulated TEE end to end: vendor -> machine -> enclave -> evidence -> verifier,
//! and every way evidence must be refused.

mod common;

use common::*;
use std::path::Path;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::simulated::envelope::SimEvidence;
use veritee_attest::simulated::report::{BODY_LEN, SimReport};
use veritee_attest::{ParsedCertificate, ReportData, TcbStatus, TeeKind, VerifyError};
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_platform::sim::{EnclaveImage, SimEnclave, SimMachine, SimVendor};
use veritee_verify::{Verifiers, VerifyRequest};
use veritee_x509::X509Error;

const NOW: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);
const CODE: &[u8] = b"(module (func (export \"run\")))";

struct World {
    _dir: tempfile::TempDir,
    vendor: SimVendor,
    machine: SimMachine,
    enclave: SimEnclave,
    anchors: Vec<ParsedCertificate>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut vendor = SimVendor::init(&dir.path().join("vendor"), NOW).unwrap();
    let machine = SimMachine::init(&dir.path().join("machine"), &mut vendor, None, NOW).unwrap();
    let enclave = machine
        .launch(&EnclaveImage::unsigned(CODE, 1, 3, false))
        .unwrap();
    let anchors = ParsedCertificate::from_pem_chain(&vendor.root_pem().unwrap()).unwrap();
    World {
        _dir: dir,
        vendor,
        machine,
        enclave,
        anchors,
    }
}

fn nonce() -> ReportData {
    ReportData([0x5a; 64])
}

fn verify(
    w: &World,
    evidence: &[u8],
    collateral: &[Vec<u8>],
    at: OffsetDateTime,
) -> Result<veritee_attest::Claims, VerifyError> {
    verify_request(evidence, collateral, &w.anchors, Some(&nonce().0), at)
}

fn read_collateral(vendor: &SimVendor) -> Vec<Vec<u8>> {
    vendor
        .collateral_paths()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

#[test]
fn genuine_evidence_verifies_into_claims() {
    let w = world();
    let evidence = w.enclave.evidence_at(&nonce(), NOW).unwrap();
    assert_eq!(
        Verifiers::default().detect(&evidence).unwrap(),
        TeeKind::Simulated
    );
    let claims = verify(&w, &evidence, &[], NOW + time::Duration::minutes(1)).unwrap();
    assert_eq!(claims.tee, TeeKind::Simulated);
    assert!(claims.simulated);
    assert_eq!(
        claims.measurement("measurement").unwrap(),
        EnclaveImage::measure(CODE)
    );
    assert_eq!(claims.tcb_status, TcbStatus::UpToDate);
    assert_eq!(claims.security_version, Some(3));
    assert!(!claims.debug);
    assert_eq!(claims.signer, None);
    assert_eq!(claims.report_data.0, nonce().0.to_vec());
    assert_eq!(
        claims.platform_id.unwrap().0,
        w.machine.machine_id().to_vec()
    );
    assert_eq!(claims.evidence_time, Some(NOW));
    // Fresh collateral given explicitly is accepted too.
    verify(&w, &evidence, &read_collateral(&w.vendor), NOW).unwrap();
}

#[test]
fn changed_code_changes_the_measurement() {
    let w = world();
    let other = w
        .machine
        .launch(&EnclaveImage::unsigned(b"different code", 1, 3, false))
        .unwrap();
    let a = verify(&w, &w.enclave.evidence_at(&nonce(), NOW).unwrap(), &[], NOW).unwrap();
    let b = verify(&w, &other.evidence_at(&nonce(), NOW).unwrap(), &[], NOW).unwrap();
    assert_ne!(a.measurements, b.measurements);
}

#[test]
fn signed_images_report_their_signer() {
    let w = world();
    let key = EcdsaSigningKey::generate(EcdsaCurve::P384).unwrap();
    let image = EnclaveImage::signed(CODE, &key, 1, 1, false).unwrap();
    let enclave = w.machine.launch(&image).unwrap();
    let claims = verify(&w, &enclave.evidence_at(&nonce(), NOW).unwrap(), &[], NOW).unwrap();
    assert_eq!(claims.signer.unwrap().0, image.signer().unwrap().to_vec());
    // A tampered image signature is refused at launch.
    let mut bad = image.clone();
    bad.security_version = 9;
    assert!(w.machine.launch(&bad).is_err());
}

#[test]
fn truncated_and_oversized_evidence_is_unusable() {
    let w = world();
    let evidence = w.enclave.evidence_at(&nonce(), NOW).unwrap();
    for cut in [0, 3, 8, 20, evidence.len() / 2, evidence.len() - 1] {
        let err = verify(&w, &evidence[..cut], &[], NOW).unwrap_err();
        assert!(err.is_unusable_input(), "cut {cut}: {err}");
    }
    let mut big = evidence.clone();
    big.resize(2 * 1024 * 1024, 0);
    let err = verify(&w, &big, &[], NOW).unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err}");
}

#[test]
fn every_flipped_report_bit_is_refused() {
    let w = world();
    let evidence = w.enclave.evidence_at(&nonce(), NOW).unwrap();
    let envelope = SimEvidence::parse(&evidence).unwrap();
    for byte in 0..envelope.report.len() {
        let mut tampered = envelope.clone();
        tampered.report[byte] ^= 0x04;
        let err = verify(&w, &tampered.encode().unwrap(), &[], NOW).unwrap_err();
        // Either the layout check or the signature check catches it, never a pass.
        assert!(
            matches!(
                err,
                VerifyError::Signature(_)
                    | VerifyError::Malformed { .. }
                    | VerifyError::UnsupportedVersion { .. }
            ),
            "byte {byte}: {err}"
        );
    }
}

#[test]
fn flipped_certificate_or_collateral_bytes_are_refused() {
    let w = world();
    let evidence = w.enclave.evidence_at(&nonce(), NOW).unwrap();
    let envelope = SimEvidence::parse(&evidence).unwrap();
    let cert_len = envelope.machine_certificate.len();
    for byte in (0..cert_len).step_by(7) {
        let mut tampered = envelope.clone();
        tampered.machine_certificate[byte] ^= 0x01;
        assert!(
            verify(&w, &tampered.encode().unwrap(), &[], NOW).is_err(),
            "certificate byte {byte} accepted"
        );
    }
    // The TCB info carries its signer's chain as PEM text, and text between PEM blocks
    // is not part of any certificate (RFC 7468 lets it be anything): a flip there may
    // pass. Every other byte is refused.
    let tcb = &envelope.tcb_infos[0];
    let text = String::from_utf8_lossy(tcb);
    let end_marker = "-----END CERTIFICATE-----";
    let pem_blocks: Vec<(usize, usize)> = text
        .match_indices("-----BEGIN CERTIFICATE-----")
        .filter_map(|(begin, _)| {
            text[begin..]
                .find(end_marker)
                .map(|end| (begin, begin + end + end_marker.len()))
        })
        .collect();
    assert!(!pem_blocks.is_empty(), "the TCB info carries its chain");
    let between_pem_blocks = |byte: usize| {
        let first = pem_blocks.first().map_or(0, |b| b.0);
        let last = pem_blocks.last().map_or(0, |b| b.1);
        byte >= first && byte < last + 4 && !pem_blocks.iter().any(|&(b, e)| (b..e).contains(&byte))
    };
    for byte in (0..tcb.len()).step_by(11) {
        let mut tampered = envelope.clone();
        tampered.tcb_infos[0][byte] ^= 0x01;
        assert!(
            verify(&w, &tampered.encode().unwrap(), &[], NOW).is_err() || between_pem_blocks(byte),
            "TCB info byte {byte} accepted"
        );
    }
}

#[test]
fn report_resigned_with_another_key_is_refused() {
    let w = world();
    let envelope = SimEvidence::parse(&w.enclave.evidence_at(&nonce(), NOW).unwrap()).unwrap();
    let report = SimReport::parse(&envelope.report).unwrap();
    let body: [u8; BODY_LEN] = report.signed_bytes.try_into().unwrap();
    let attacker = EcdsaSigningKey::generate(EcdsaCurve::P384).unwrap();
    let mut forged = envelope.clone();
    forged.report = SimReport::assemble(&body, &attacker.sign(&body).unwrap()).unwrap();
    let err = verify(&w, &forged.encode().unwrap(), &[], NOW).unwrap_err();
    assert!(matches!(err, VerifyError::Signature(_)), "{err}");
    assert!(err.to_string().contains("machine certificate"), "{err}");
}

#[test]
fn wrong_report_data_is_refused() {
    let w = world();
    let evidence = w.enclave.evidence_at(&ReportData([1; 64]), NOW).unwrap();
    let err = verify(&w, &evidence, &[], NOW).unwrap_err();
    assert!(
        matches!(err, VerifyError::ReportDataMismatch { .. }),
        "{err}"
    );
}

#[test]
fn revoked_machine_is_refused_with_fresh_crl() {
    let mut w = world();
    let evidence = w.enclave.evidence_at(&nonce(), NOW).unwrap();
    // Verified twice first: the revocation must win over collateral remembered from a
    // success (`sign::verify_collateral`).
    for _ in 0..2 {
        verify(&w, &evidence, &read_collateral(&w.vendor), NOW).unwrap();
    }
    assert!(veritee_crypto::sign::remembered_collateral_signatures() > 0);
    let later = NOW + time::Duration::hours(1);
    assert_eq!(
        w.vendor
            .revoke_machine(&w.machine.machine_id(), later)
            .unwrap(),
        1
    );
    let err = verify(
        &w,
        &evidence,
        &read_collateral(&w.vendor),
        later + time::Duration::minutes(1),
    )
    .unwrap_err();
    assert!(
        matches!(err, VerifyError::Certificate(X509Error::Revoked { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("revoked"), "{err}");
    // The machine's own refreshed collateral carries the revocation too.
    let mut machine = SimMachine::open(w.machine.dir()).unwrap();
    machine.refresh_collateral(&w.vendor).unwrap();
    let fresh = machine
        .launch(&EnclaveImage::unsigned(CODE, 1, 3, false))
        .unwrap()
        .evidence_at(&nonce(), later)
        .unwrap();
    assert!(verify(&w, &fresh, &[], later + time::Duration::minutes(1)).is_err());
}

#[test]
fn expired_certificate_and_collateral_are_named() {
    let w = world();
    let evidence = w.enclave.evidence_at(&nonce(), NOW).unwrap();
    // Verified first: everything about these bytes is remembered, and their windows
    // are still decided at each verification's time.
    verify(&w, &evidence, &[], NOW).unwrap();
    // 31 days on, the cached CRLs and TCB info have expired.
    let err = verify(&w, &evidence, &[], NOW + time::Duration::days(31)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(X509Error::CrlOutsideValidity { .. })
        ),
        "{err}"
    );
    // Six years on, the machine certificate itself has expired.
    let err = verify(&w, &evidence, &[], NOW + time::Duration::days(6 * 365)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(X509Error::OutsideValidity { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Simulated Machine"), "{err}");
    // Before the machine was certified.
    let err = verify(&w, &evidence, &[], NOW - time::Duration::days(1)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(X509Error::OutsideValidity { .. })
                | VerifyError::Certificate(X509Error::CrlOutsideValidity { .. })
        ),
        "{err}"
    );
    verify(&w, &evidence, &[], NOW).unwrap();
}

#[test]
fn evidence_from_the_future_is_refused() {
    let w = world();
    let evidence = w
        .enclave
        .evidence_at(&nonce(), NOW + time::Duration::hours(2))
        .unwrap();
    let err = verify(&w, &evidence, &[], NOW).unwrap_err();
    assert!(matches!(err, VerifyError::FromTheFuture { .. }), "{err}");
}

#[test]
fn outdated_machine_and_tcb_recovery() {
    let mut w = world();
    let dir = tempfile::tempdir().unwrap();
    let old = SimMachine::init(&dir.path().join("old"), &mut w.vendor, Some(1), NOW).unwrap();
    let old_enclave = old
        .launch(&EnclaveImage::unsigned(CODE, 1, 3, false))
        .unwrap();
    let claims = verify(
        &w,
        &old_enclave.evidence_at(&nonce(), NOW).unwrap(),
        &[],
        NOW,
    )
    .unwrap();
    assert_eq!(claims.tcb_status, TcbStatus::OutOfDate);
    assert_eq!(claims.advisory_ids, vec!["VSIM-SA-2026-0001".to_string()]);

    // The vendor publishes a TCB recovery: SVN 2 machines become out of date, but only
    // for a verifier that is given the new TCB info.
    let later = NOW + time::Duration::days(1);
    let advisory = w.vendor.set_latest_tcb_svn(3, later).unwrap();
    let evidence = w.enclave.evidence_at(&nonce(), later).unwrap();
    assert_eq!(
        verify(&w, &evidence, &[], later).unwrap().tcb_status,
        TcbStatus::UpToDate
    );
    let claims = verify(&w, &evidence, &read_collateral(&w.vendor), later).unwrap();
    assert_eq!(claims.tcb_status, TcbStatus::OutOfDate);
    assert_eq!(claims.advisory_ids, vec![advisory]);
}

#[test]
fn report_claiming_another_tcb_svn_is_inconsistent() {
    let w = world();
    let envelope = SimEvidence::parse(&w.enclave.evidence_at(&nonce(), NOW).unwrap()).unwrap();
    let mut body = SimReport::parse(&envelope.report).unwrap().body;
    body.tcb_svn = 9;
    let bytes = body.encode();
    let key = machine_key(w.machine.dir());
    let mut forged = envelope.clone();
    forged.report = SimReport::assemble(&bytes, &key.sign(&bytes).unwrap()).unwrap();
    let err = verify(&w, &forged.encode().unwrap(), &[], NOW).unwrap_err();
    assert!(matches!(err, VerifyError::Inconsistent(_)), "{err}");
    assert!(err.to_string().contains("certified for 2"), "{err}");
}

#[test]
fn wrong_trust_anchor_and_missing_anchor() {
    let w = world();
    let other = world();
    let evidence = w.enclave.evidence_at(&nonce(), NOW).unwrap();
    let err = Verifiers::default()
        .verify(&VerifyRequest {
            evidence: &evidence,
            tee: None,
            collateral: &[],
            trust_anchors: &veritee_attest::TrustAnchors::untyped(other.anchors.clone()),
            expected_report_data: None,
            at: NOW,
        })
        .unwrap_err();
    assert!(matches!(err, VerifyError::Certificate(_)), "{err}");
    let err = Verifiers::default()
        .verify(&VerifyRequest {
            evidence: &evidence,
            tee: None,
            collateral: &[],
            trust_anchors: &veritee_attest::TrustAnchors::none(),
            expected_report_data: None,
            at: NOW,
        })
        .unwrap_err();
    assert!(err.to_string().contains("--trust-anchor"), "{err}");
}

#[test]
fn evidence_from_one_machine_with_anothers_certificate_is_refused() {
    let mut w = world();
    let dir = tempfile::tempdir().unwrap();
    let second = SimMachine::init(&dir.path().join("second"), &mut w.vendor, None, NOW).unwrap();
    let second_evidence = SimEvidence::parse(
        &second
            .launch(&EnclaveImage::unsigned(CODE, 1, 3, false))
            .unwrap()
            .evidence_at(&nonce(), NOW)
            .unwrap(),
    )
    .unwrap();
    let mut swapped = SimEvidence::parse(&w.enclave.evidence_at(&nonce(), NOW).unwrap()).unwrap();
    swapped.machine_certificate = second_evidence.machine_certificate;
    let err = verify(&w, &swapped.encode().unwrap(), &[], NOW).unwrap_err();
    assert!(matches!(err, VerifyError::Signature(_)), "{err}");
}

#[test]
fn unrelated_collateral_is_named() {
    let w = world();
    let evidence = w.enclave.evidence_at(&nonce(), NOW).unwrap();
    let err = verify(&w, &evidence, &[b"hello".to_vec()], NOW).unwrap_err();
    assert!(err.to_string().contains("collateral file #1"), "{err}");
}

fn machine_key(dir: &Path) -> EcdsaSigningKey {
    let pem = std::fs::read(dir.join("attestation.key")).unwrap();
    let (_, der) = veritee_x509::pem::blocks(&pem).unwrap().remove(0);
    EcdsaSigningKey::from_pkcs8(EcdsaCurve::P384, &der).unwrap()
}
