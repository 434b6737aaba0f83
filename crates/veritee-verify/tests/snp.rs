//! SEV-SNP reports from real hardware (trustee and virtee/sev fixtures): the vectors.json
//! cases verify into the expected claims, and every tampering, wrong collateral and
//! expiry is refused with its reason named.

mod common;

use common::*;
use std::path::Path;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::encoding::decode_evidence;
use veritee_attest::{Claims, ParsedCertificate, TcbStatus, TeeKind, VerifyError};
use veritee_verify::{Verifiers, VerifyRequest};
use veritee_x509::X509Error;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/snp")
            .join(name),
    )
    .unwrap()
}

/// One vectors.json case.
struct Case {
    id: &'static str,
    evidence: Vec<u8>,
    vek: &'static str,
    ca_chain: &'static str,
    at: OffsetDateTime,
    /// The VEK's notAfter.
    vek_expires: OffsetDateTime,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "snp-trustee-milan-vcek",
            evidence: data("test-report.bin"),
            vek: "test-vcek.der",
            ca_chain: "milan_ask_ark_asvk.pem",
            at: datetime!(2026-07-01 00:00 UTC),
            vek_expires: datetime!(2030-01-24 17:58:26 UTC),
        },
        Case {
            id: "snp-trustee-milan-vlek",
            evidence: data("test-vlek-report.bin"),
            vek: "test-vlek.der",
            ca_chain: "milan_ask_ark_asvk.pem",
            at: datetime!(2025-06-01 00:00 UTC),
            vek_expires: datetime!(2025-12-10 22:14:21 UTC),
        },
        Case {
            id: "snp-virtee-milan",
            evidence: decode_evidence(&data("report_milan.hex")).unwrap(),
            vek: "vcek_milan.der",
            ca_chain: "cert_chain_milan",
            at: datetime!(2026-07-01 00:00 UTC),
            vek_expires: datetime!(2030-04-03 19:23:43 UTC),
        },
    ]
}

fn verify_with(
    evidence: &[u8],
    collateral: &[Vec<u8>],
    anchors: &[ParsedCertificate],
    at: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    Verifiers::default().verify(&VerifyRequest {
        evidence,
        tee: Some(TeeKind::SevSnp),
        collateral,
        trust_anchors: &veritee_attest::TrustAnchors::for_kind(TeeKind::SevSnp, anchors.to_vec()),
        expected_report_data: None,
        at,
    })
}

fn verify(case: &Case, evidence: &[u8], at: OffsetDateTime) -> Result<Claims, VerifyError> {
    verify_with(evidence, &[data(case.vek)], &[], at)
}

#[test]
fn vectors_verify_with_expected_values() {
    for case in cases() {
        assert_eq!(
            Verifiers::default().detect(&case.evidence).unwrap(),
            TeeKind::SevSnp,
            "{}",
            case.id
        );
        // With the VEK alone (embedded AMD roots), and with the case's CA chain as well.
        let claims =
            verify(&case, &case.evidence, case.at).unwrap_or_else(|e| panic!("{}: {e}", case.id));
        let with_chain = verify_with(
            &case.evidence,
            &[data(case.vek), data(case.ca_chain)],
            &[],
            case.at,
        )
        .unwrap();
        assert_eq!(claims, with_chain, "{}", case.id);
        assert_eq!(claims.tee, TeeKind::SevSnp);
        assert!(!claims.simulated);
        assert_eq!(claims.tcb_status, TcbStatus::NotReported, "{}", case.id);
        assert!(claims.advisory_ids.is_empty());
        assert_eq!(claims.signer, None);
        assert_eq!(claims.report_data.0.len(), 64);
        assert_eq!(claims.report_data.0, case.evidence[0x50..0x90].to_vec());
        assert_eq!(
            claims.measurement("launch_measurement").unwrap(),
            &case.evidence[0x90..0xC0]
        );
        assert_eq!(claims.details["product"], "milan", "{}", case.id);
        assert_eq!(
            claims.details["revocation"],
            "not checked: no AMD CRL given"
        );
        assert!(
            claims.details.contains_key("committed_tcb")
                && claims.details.contains_key("launch_tcb")
        );
        assert!(!claims.debug, "{}", case.id);
    }
}

#[test]
fn trustee_vcek_values() {
    let case = &cases()[0];
    let claims = verify(case, &case.evidence, case.at).unwrap();
    assert_eq!(
        claims
            .measurement("launch_measurement")
            .map(hex::encode)
            .unwrap(),
        "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
    );
    assert_eq!(
        hex::encode(&claims.report_data.0[..32]),
        "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2"
    );
    assert_eq!(claims.security_version, Some(4));
    assert_eq!(claims.details["report_version"], "2");
    assert_eq!(claims.details["signing_key"], "vcek");
    assert_eq!(claims.details["vmpl"], "0");
    assert_eq!(claims.details["policy"], "0x000000000003001f");
    assert_eq!(
        claims.details["reported_tcb"],
        "bootloader=3 tee=0 snp=8 microcode=115"
    );
    assert_eq!(
        claims.details["current_tcb"],
        "bootloader=3 tee=0 snp=8 microcode=206"
    );
    assert!(claims.details["id_key_digest"].starts_with("0356215882a825279a85"));
    assert!(!claims.details.contains_key("author_key_digest"));
    assert!(hex::encode(&claims.platform_id.unwrap().0).starts_with("c38427a30d4c7af9"));
}

#[test]
fn trustee_vlek_values() {
    let case = &cases()[1];
    let claims = verify(case, &case.evidence, case.at).unwrap();
    assert_eq!(claims.details["report_version"], "3");
    assert_eq!(claims.details["signing_key"], "vlek");
    assert_eq!(claims.details["vmpl"], "1");
    assert_eq!(
        claims.details["cpuid"],
        "family=0x19 model=0x01 stepping=0x01"
    );
    assert_eq!(
        claims.details["reported_tcb"],
        "bootloader=4 tee=0 snp=24 microcode=217"
    );
    // MASK_CHIP_ID: no platform identity.
    assert_eq!(claims.platform_id, None);
    assert!(hex::encode(&claims.report_data.0).starts_with("819770b7e6ea6df8"));
}

#[test]
fn virtee_values_and_report_data_check() {
    let case = &cases()[2];
    let expected = hex::decode(
        "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd",
    )
    .unwrap();
    let request = |rd: &[u8]| {
        Verifiers::default().verify(&VerifyRequest {
            evidence: &case.evidence,
            tee: None,
            collateral: &[data(case.vek)],
            trust_anchors: &veritee_attest::TrustAnchors::none(),
            expected_report_data: Some(rd),
            at: case.at,
        })
    };
    let claims = request(&expected).unwrap();
    assert!(
        hex::encode(claims.measurement("launch_measurement").unwrap())
            .starts_with("7a1e5c266c0108db")
    );
    let err = request(&[0u8; 64]).unwrap_err();
    assert!(
        matches!(err, VerifyError::ReportDataMismatch { .. }),
        "{err}"
    );
}

#[test]
fn truncated_and_oversized_reports_are_unusable() {
    for case in cases() {
        for cut in [0, 4, 0x50, 0x2A0, 0x2A0 + 72, case.evidence.len() - 1] {
            expect_err(
                verify(&case, &case.evidence[..cut], case.at),
                case.id,
                "expected 1184",
                |e| matches!(e, VerifyError::Malformed { .. }),
            );
        }
        for extra in [1usize, 1 << 20] {
            let mut big = case.evidence.clone();
            big.resize(big.len() + extra, 0);
            expect_err(verify(&case, &big, case.at), case.id, "1184", |e| {
                matches!(e, VerifyError::TooLarge { .. })
            });
        }
    }
}

#[test]
fn tampered_signature_or_report_data_fails_the_signature() {
    for case in cases() {
        for offset in [0x2A0, 0x2A0 + 20, 0x2E8 + 3] {
            let mut bad = case.evidence.clone();
            bad[offset] ^= 0x01;
            expect_err(verify(&case, &bad, case.at), case.id, "signature", |e| {
                matches!(e, VerifyError::Signature(_))
            });
        }
        // The high bytes of R must stay zero: a non-zero byte there is refused as such.
        let mut bad = case.evidence.clone();
        bad[0x2A0 + 60] = 1;
        expect_err(verify(&case, &bad, case.at), case.id, "P-384", |e| {
            matches!(e, VerifyError::Signature(_))
        });
        for offset in [0x50, 0x8F, 0x90, 0x180, 0x1A0] {
            let mut bad = case.evidence.clone();
            bad[offset] ^= 0x80;
            expect_err(
                verify(&case, &bad, case.at),
                case.id,
                "does not verify",
                |e| matches!(e, VerifyError::Signature(_)),
            );
        }
    }
}

#[test]
fn unsupported_versions_are_named() {
    for case in cases() {
        for version in [1u32, 6] {
            let mut bad = case.evidence.clone();
            bad[..4].copy_from_slice(&version.to_le_bytes());
            expect_err(
                verify(&case, &bad, case.at),
                case.id,
                "version",
                |e| matches!(e, VerifyError::UnsupportedVersion { version: v, .. } if *v == version),
            );
        }
        // Versions 4 and 5 are read (5 with its mitigation vectors); the version is
        // signed, so a report claiming another fails the signature.
        for version in [4u32, 5] {
            let mut other = case.evidence.clone();
            other[..4].copy_from_slice(&version.to_le_bytes());
            expect_err(verify(&case, &other, case.at), case.id, "signature", |e| {
                matches!(e, VerifyError::Signature(_))
            });
        }
    }
}

#[test]
fn wrong_endorsement_key_is_refused() {
    let [vcek, vlek, virtee] = <[Case; 3]>::try_from(cases()).ok().unwrap();
    // Another chip's VCEK: the chain is fine, the report signature is not.
    expect_err(
        verify_with(&vcek.evidence, &[data("vcek_milan.der")], &[], vcek.at),
        vcek.id,
        "does not verify",
        |e| matches!(e, VerifyError::Signature(_)),
    );
    expect_err(
        verify_with(&virtee.evidence, &[data("test-vcek.der")], &[], virtee.at),
        virtee.id,
        "VCEK",
        |e| matches!(e, VerifyError::Signature(_)),
    );
    // A Turin VCEK for a Milan report.
    expect_err(
        verify_with(&vcek.evidence, &[data("vcek_turin.der")], &[], vcek.at),
        vcek.id,
        "signature",
        |e| matches!(e, VerifyError::Signature(_)),
    );
    // A VCEK for a VLEK-signed report, and the other way round.
    expect_err(
        verify_with(&vlek.evidence, &[data("test-vcek.der")], &[], vlek.at),
        vlek.id,
        "signed by a VLEK",
        |e| matches!(e, VerifyError::Collateral(_)),
    );
    expect_err(
        verify_with(&vcek.evidence, &[data("test-vlek.der")], &[], vcek.at),
        vcek.id,
        "signed by a VCEK",
        |e| matches!(e, VerifyError::Collateral(_)),
    );
    // No VEK at all.
    for case in [&vcek, &vlek, &virtee] {
        expect_err(
            verify_with(&case.evidence, &[], &[], case.at),
            case.id,
            "VEK certificate",
            |e| matches!(e, VerifyError::MissingCollateral(_)),
        );
    }
    // Collateral that is neither a certificate nor a CRL is named.
    expect_err(
        verify_with(
            &vcek.evidence,
            &[data("test-vcek.der"), b"not a certificate".to_vec()],
            &[],
            vcek.at,
        ),
        vcek.id,
        "collateral file #2",
        |e| matches!(e, VerifyError::Collateral(_)),
    );
}

#[test]
fn wrong_root_is_refused() {
    let genoa = ParsedCertificate::from_pem_chain(&data("genoa_ask_ark_asvk.pem")).unwrap();
    let genoa_ark: Vec<ParsedCertificate> = genoa
        .into_iter()
        .filter(|c| c.subject().contains("ARK-Genoa"))
        .collect();
    assert_eq!(genoa_ark.len(), 1);
    for case in cases() {
        expect_err(
            verify_with(&case.evidence, &[data(case.vek)], &genoa_ark, case.at),
            case.id,
            "ARK-Milan",
            |e| matches!(e, VerifyError::Certificate(X509Error::UnknownIssuer { .. })),
        );
        // The Milan ARK from the chain file is a copy, not a trust anchor.
        expect_err(
            verify_with(
                &case.evidence,
                &[data(case.vek), data(case.ca_chain)],
                &genoa_ark,
                case.at,
            ),
            case.id,
            "not a trusted root",
            |e| matches!(e, VerifyError::Certificate(X509Error::UntrustedRoot { .. })),
        );
        // A caller-supplied Milan ARK works as well as the embedded one.
        let milan_ark: Vec<ParsedCertificate> =
            ParsedCertificate::from_pem_chain(&data("milan_ask_ark_asvk.pem"))
                .unwrap()
                .into_iter()
                .filter(|c| c.subject().contains("ARK-Milan"))
                .collect();
        verify_with(&case.evidence, &[data(case.vek)], &milan_ark, case.at).unwrap();
    }
}

#[test]
fn expired_or_not_yet_valid_endorsement_key_is_refused() {
    for case in cases() {
        let after = case.vek_expires + time::Duration::days(1);
        expect_err(
            verify(&case, &case.evidence, after),
            case.id,
            "not valid at",
            |e| {
                matches!(
                    e,
                    VerifyError::Certificate(X509Error::OutsideValidity { .. })
                )
            },
        );
        // Still valid the second before it expires.
        verify(
            &case,
            &case.evidence,
            case.vek_expires - time::Duration::seconds(1),
        )
        .unwrap();
        expect_err(
            verify(&case, &case.evidence, datetime!(2020-01-01 00:00 UTC)),
            case.id,
            "SEV-V",
            |e| {
                matches!(
                    e,
                    VerifyError::Certificate(X509Error::OutsideValidity { .. })
                )
            },
        );
    }
}

#[test]
fn turin_vcek_chains_to_the_embedded_turin_root() {
    // No Turin report is public; the Turin VCEK and chain still exercise the Turin
    // anchors: a Milan report with a Turin VCEK gets past the chain and fails only at the
    // signature, which proves the VCEK <- ASK-Turin <- ARK-Turin path was accepted.
    let case = &cases()[0];
    let err = verify_with(
        &case.evidence,
        &[data("vcek_turin.der"), data("cert_chain_turin")],
        &[],
        case.at,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::Signature(_)), "{err}");
    let milan_only: Vec<ParsedCertificate> =
        ParsedCertificate::from_pem_chain(&data("cert_chain_milan"))
            .unwrap()
            .into_iter()
            .filter(|c| c.subject().contains("ARK"))
            .collect();
    let err = verify_with(
        &case.evidence,
        &[data("vcek_turin.der")],
        &milan_only,
        case.at,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::Certificate(_)), "{err}");
}

/// A CRL naming the Milan ARK as issuer but not signed by it: no AMD CRL is public in
/// the corpus, so this forged one shows that CRLs given as collateral are applied
/// (checked against their issuer) rather than ignored.
fn forged_ark_crl(this_update: OffsetDateTime) -> Vec<u8> {
    use der::{Decode, Encode};
    use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
    use x509_cert::time::Time;
    let chain = data("milan_ask_ark_asvk.pem");
    let certs = ParsedCertificate::from_pem_chain(&chain).unwrap();
    let find = |cn: &str| {
        certs
            .iter()
            .find(|c| c.subject().contains(cn))
            .map(|c| {
                x509_cert::certificate::CertificateInner::<x509_cert::certificate::Raw>::from_der(
                    c.der(),
                )
                .unwrap()
            })
            .unwrap()
    };
    let ark = find("CN=ARK-Milan");
    let ask = find("CN=SEV-Milan");
    let time = |t: OffsetDateTime| {
        Time::UtcTime(
            der::asn1::UtcTime::from_unix_duration(core::time::Duration::from_secs(
                t.unix_timestamp() as u64,
            ))
            .unwrap(),
        )
    };
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: ark.signature_algorithm.clone(),
        issuer: ark.tbs_certificate.subject.clone(),
        this_update: time(this_update),
        next_update: Some(time(this_update + time::Duration::days(30))),
        revoked_certificates: Some(vec![RevokedCert {
            serial_number: x509_cert::serial_number::SerialNumber::new(
                ask.tbs_certificate.serial_number.as_bytes(),
            )
            .unwrap(),
            revocation_date: time(this_update),
            crl_entry_extensions: None,
        }]),
        crl_extensions: None,
    };
    CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: ark.signature_algorithm.clone(),
        signature: der::asn1::BitString::from_bytes(&[0x5a; 512]).unwrap(),
    }
    .to_der()
    .unwrap()
}

#[test]
fn crls_given_as_collateral_are_checked() {
    for case in cases() {
        let crl = forged_ark_crl(case.at - time::Duration::days(1));
        expect_err(
            verify_with(&case.evidence, &[data(case.vek), crl.clone()], &[], case.at),
            case.id,
            "CRL",
            |e| {
                matches!(
                    e,
                    VerifyError::Certificate(X509Error::CrlBadSignature { .. })
                )
            },
        );
        // As PEM too.
        let pem = veritee_x509::pem::encode("X509 CRL", &crl);
        expect_err(
            verify_with(
                &case.evidence,
                &[data(case.vek), pem.into_bytes()],
                &[],
                case.at,
            ),
            case.id,
            "ARK-Milan",
            |e| {
                matches!(
                    e,
                    VerifyError::Certificate(X509Error::CrlBadSignature { .. })
                )
            },
        );
    }
}
