//! Azure confidential VMs (SEV-SNP behind the paravisor's vTPM), on trustee's evidence:
//! both vectors.json cases, and every broken link of the chain SNP report -> HCL
//! variable data -> attestation key -> TPM quote -> PCRs refused with its reason named.

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;
use std::path::Path;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::{Claims, ParsedCertificate, TcbStatus, TeeKind, VerifyError};
use veritee_verify::Verifiers;

use veritee_x509::X509Error;

const AT: OffsetDateTime = datetime!(2026-07-01 00:00 UTC);
/// The notAfter of the VCEK embedded in the evidence.
const VCEK_EXPIRES: OffsetDateTime = datetime!(2032-01-28 16:26:55 UTC);

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

struct Case {
    id: &'static str,
    file: &'static str,
    nonce: &'static str,
    pcr0: &'static str,
}

const CASES: [Case; 2] = [
    Case {
        id: "az-snp-evidence-v1.json",
        file: "azure/evidence-v1.json",
        nonce: "6368616c6c656e6765",
        pcr0: "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced",
    },
    Case {
        id: "az-snp-evidence-v2.json",
        file: "azure/evidence-v2.json",
        nonce: "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef",
        pcr0: "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7",
    },
];

fn run(
    evidence: &[u8],
    collateral: &[Vec<u8>],
    anchors: &[ParsedCertificate],
    nonce: Option<&[u8]>,
    at: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    verify_request(evidence, collateral, anchors, nonce, at)
}

fn verify(evidence: &[u8], at: OffsetDateTime) -> Result<Claims, VerifyError> {
    run(evidence, &[], &[], None, at)
}

/// Edits the evidence JSON.
fn edit(evidence: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(evidence).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap()
}

/// Edits bytes of the HCL report.
fn edit_hcl(evidence: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(evidence, |v| {
        let mut hcl = unb64(v["hcl_report"].as_str().unwrap());
        f(&mut hcl);
        v["hcl_report"] = Value::String(b64(&hcl));
    })
}

/// Edits a hex field of the TPM quote.
fn edit_quote(evidence: &[u8], field: &str, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(evidence, |v| {
        let mut bytes = hex::decode(v["tpm_quote"][field].as_str().unwrap()).unwrap();
        f(&mut bytes);
        v["tpm_quote"][field] = Value::String(hex::encode(bytes));
    })
}

#[test]
fn vectors_verify_with_expected_values() {
    for case in &CASES {
        let evidence = data(case.file);
        assert_eq!(
            Verifiers::default().detect(&evidence).unwrap(),
            TeeKind::AzureSnpVtpm
        );
        let nonce = hex::decode(case.nonce).unwrap();
        let claims = run(&evidence, &[], &[], Some(&nonce), AT)
            .unwrap_or_else(|e| panic!("{}: {e}", case.id));
        assert_eq!(claims.tee, TeeKind::AzureSnpVtpm);
        assert_eq!(claims.report_data.0, nonce, "{}", case.id);
        assert_eq!(hex::encode(claims.measurement("pcr0").unwrap()), case.pcr0);
        for i in 0..24 {
            assert_eq!(
                claims.measurement(&format!("pcr{i}")).map(<[u8]>::len),
                Some(32),
                "{} pcr{i}",
                case.id
            );
        }
        assert_eq!(
            claims.measurement("launch_measurement").map(<[u8]>::len),
            Some(48)
        );
        assert_eq!(claims.tcb_status, TcbStatus::NotReported);
        assert_eq!(claims.details["product"], "milan");
        assert_eq!(claims.details["vmpl"], "0");
        assert_eq!(claims.details["report_version"], "3");
        assert_eq!(
            claims.details["reported_tcb"],
            "bootloader=4 tee=0 snp=24 microcode=219"
        );
        assert_eq!(claims.details["vm_configuration.secure-boot"], "true");
        assert_eq!(
            claims.details["revocation"],
            "not checked: no AMD CRL given"
        );
        assert!(!claims.debug);
        // The SNP report data is the hash of the variable data, kept in details.
        assert!(
            claims.details["snp_report_data"].starts_with(&claims.details["hcl_var_data_sha256"])
        );
        // Unrelated collateral (another chip's VCEK chain) changes nothing; a wrong nonce is refused.
        assert_eq!(
            run(&evidence, &[data("azure/vcek.pem")], &[], Some(&nonce), AT).unwrap(),
            claims
        );
        let err = run(&evidence, &[], &[], Some(b"another nonce"), AT).unwrap_err();
        assert!(
            matches!(err, VerifyError::ReportDataMismatch { .. }),
            "{err}"
        );
    }
}

#[test]
fn truncated_or_oversized_evidence_is_unusable() {
    for case in &CASES {
        let evidence = data(case.file);
        for cut in [0, 1, 100, evidence.len() / 2, evidence.len() - 2] {
            let err = verify(&evidence[..cut], AT).unwrap_err();
            assert!(err.is_unusable_input(), "{} cut {cut}: {err}", case.id);
        }
        // Truncated inner structures, re-encoded as valid JSON.
        for cut in [10, 0x20 + 100, 0x4C0, 0x4D4 + 10] {
            expect_err(
                verify(&edit_hcl(&evidence, |h| h.truncate(cut)), AT),
                case.id,
                "truncated",
                |e| matches!(e, VerifyError::Malformed { .. }),
            );
        }
        for cut in [3, 40, 100] {
            expect_err(
                verify(&edit_quote(&evidence, "message", |m| m.truncate(cut)), AT),
                case.id,
                "signature",
                |e| matches!(e, VerifyError::Signature(_)),
            );
        }
        let mut big = evidence.clone();
        big.resize(1 << 20, b' ');
        expect_err(verify(&big, AT), case.id, "accepted", |e| {
            matches!(e, VerifyError::TooLarge { .. })
        });
    }
}

#[test]
fn tampered_signatures_and_bindings_are_refused() {
    for case in &CASES {
        let evidence = data(case.file);
        // The SNP report's signature and its report data.
        for offset in [0x20 + 0x2A0 + 1, 0x20 + 0x50, 0x20 + 0x90] {
            expect_err(
                verify(&edit_hcl(&evidence, |h| h[offset] ^= 1), AT),
                case.id,
                "report signature",
                |e| matches!(e, VerifyError::Signature(_)),
            );
        }
        // The variable data (holding the AK) is no longer what the SNP report attests.
        expect_err(
            verify(&edit_hcl(&evidence, |h| h[0x4D4 + 40] ^= 1), AT),
            case.id,
            "variable data",
            |e| matches!(e, VerifyError::Inconsistent(_)),
        );
        // The quote's signature, and a quote message with another nonce.
        expect_err(
            verify(&edit_quote(&evidence, "signature", |s| s[7] ^= 1), AT),
            case.id,
            "HCLAkPub",
            |e| matches!(e, VerifyError::Signature(_)),
        );
        expect_err(
            verify(&edit_quote(&evidence, "message", |m| m[40] ^= 1), AT),
            case.id,
            "quote signature",
            |e| matches!(e, VerifyError::Signature(_)),
        );
        // PCR values that are not the ones quoted.
        let bad_pcrs = edit(&evidence, |v| {
            v["tpm_quote"]["pcrs"][3] = Value::String("00".repeat(32));
        });
        expect_err(verify(&bad_pcrs, AT), case.id, "PCR digest", |e| {
            matches!(e, VerifyError::Inconsistent(_))
        });
        let missing_pcr = edit(&evidence, |v| {
            v["tpm_quote"]["pcrs"].as_array_mut().unwrap().pop();
        });
        expect_err(verify(&missing_pcr, AT), case.id, "PCR 23", |e| {
            matches!(e, VerifyError::Inconsistent(_))
        });
        // Unknown evidence versions.
        let v9 = edit(&evidence, |v| v["version"] = Value::from(9));
        expect_err(verify(&v9, AT), case.id, "version 9", |e| {
            matches!(e, VerifyError::UnsupportedVersion { version: 9, .. })
        });
    }
}

#[test]
fn wrong_collateral_is_refused() {
    for case in &CASES {
        let evidence = data(case.file);
        // Another chip's VCEK in the evidence.
        let other_vcek = edit(&evidence, |v| {
            v["vcek"] = Value::String(b64(&data("snp/test-vcek.der")));
        });
        expect_err(verify(&other_vcek, AT), case.id, "does not verify", |e| {
            matches!(e, VerifyError::Signature(_))
        });
        // vcek.pem (trustee's older fixture: VCEK, ASK, ARK of another Milan chip) is a
        // wrong VCEK too, whether in the evidence or as collateral.
        let pem_vcek = ParsedCertificate::from_pem_chain(&data("azure/vcek.pem")).unwrap();
        let with_pem_vcek = edit(&evidence, |v| {
            v["vcek"] = Value::String(b64(pem_vcek[0].der()));
        });
        expect_err(
            verify(&with_pem_vcek, AT),
            case.id,
            "does not verify",
            |e| matches!(e, VerifyError::Signature(_)),
        );
        // The right VCEK given as collateral is used when the evidence carries a wrong one.
        let original: Value = serde_json::from_slice(&evidence).unwrap();
        let right_vcek = unb64(original["vcek"].as_str().unwrap());
        let claims = run(&other_vcek, &[right_vcek], &[], None, AT).unwrap();
        assert_eq!(claims.tee, TeeKind::AzureSnpVtpm);
        expect_err(
            run(&other_vcek, &[data("azure/vcek.pem")], &[], None, AT),
            case.id,
            "does not verify",
            |e| matches!(e, VerifyError::Signature(_)),
        );
        // A Genoa root as the only trust anchor.
        let genoa_ark: Vec<ParsedCertificate> =
            ParsedCertificate::from_pem_chain(&data("snp/genoa_ask_ark_asvk.pem"))
                .unwrap()
                .into_iter()
                .filter(|c| c.subject().contains("ARK-Genoa"))
                .collect();
        expect_err(
            run(&evidence, &[], &genoa_ark, None, AT),
            case.id,
            "ARK-Milan",
            |e| matches!(e, VerifyError::Certificate(_)),
        );
        // One day after the VCEK expired.
        expect_err(
            verify(&evidence, VCEK_EXPIRES + time::Duration::days(1)),
            case.id,
            "not valid at",
            |e| {
                matches!(
                    e,
                    VerifyError::Certificate(X509Error::OutsideValidity { .. })
                )
            },
        );
        verify(&evidence, VCEK_EXPIRES - time::Duration::days(1)).unwrap();
    }
}

/// Azure TDX: trustee's az-tdx-vtpm evidence, whose TD quote (FMSPC 00806F050000)
/// verifies with the dcap-rs collateral for that platform, at its time.
mod tdx {
    use super::*;

    const AT: OffsetDateTime = datetime!(2025-02-13 04:00:32 UTC);
    const NONCE: &[u8] = b"challenge";

    fn evidence() -> Vec<u8> {
        data("azure/tdx-evidence-v1.json")
    }

    fn collateral() -> Vec<Vec<u8>> {
        vec![data("dcap/tdx_00806f050000_2025-02_from_dcap-rs.json")]
    }

    fn verify(evidence: &[u8]) -> Result<Claims, VerifyError> {
        run(evidence, &collateral(), &[], Some(NONCE), AT)
    }

    fn edit_td_quote(evidence: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        edit(evidence, |v| {
            let mut quote = unb64(v["td_quote"].as_str().unwrap());
            f(&mut quote);
            v["td_quote"] = Value::String(b64(&quote));
        })
    }

    #[test]
    fn the_vector_verifies_with_its_platforms_collateral() {
        let evidence = evidence();
        assert_eq!(
            Verifiers::default().detect(&evidence).unwrap(),
            TeeKind::AzureTdxVtpm
        );
        let claims = verify(&evidence).unwrap();
        assert_eq!(claims.tee, TeeKind::AzureTdxVtpm);
        assert_eq!(claims.report_data.0, NONCE);
        assert!(!claims.simulated && !claims.debug);
        // The platform's TCB is out of date at that time, as for dcap-rs's own quote.
        assert_eq!(claims.tcb_status, TcbStatus::OutOfDate);
        assert_eq!(claims.details["fmspc"], "00806f050000");
        assert_eq!(claims.measurement("mrtd").map(<[u8]>::len), Some(48));
        for i in 0..24 {
            assert_eq!(
                claims.measurement(&format!("pcr{i}")).map(<[u8]>::len),
                Some(32),
                "pcr{i}"
            );
        }
        assert!(
            claims.details["td_report_data"].starts_with(&claims.details["hcl_var_data_sha256"])
        );
        let err = run(&evidence, &collateral(), &[], Some(b"another"), AT).unwrap_err();
        assert!(
            matches!(err, VerifyError::ReportDataMismatch { .. }),
            "{err}"
        );
        // The SNP verifier does not take it for its own, nor the other way round.
        assert_eq!(
            Verifiers::default()
                .detect(&data("azure/evidence-v2.json"))
                .unwrap(),
            TeeKind::AzureSnpVtpm
        );
    }

    #[test]
    fn every_broken_link_is_refused_with_its_reason() {
        let evidence = evidence();
        let id = "az-tdx-evidence-v1.json";
        // No collateral: the TD quote cannot be judged.
        expect_err(
            run(&evidence, &[], &[], Some(NONCE), AT),
            id,
            "collateral",
            |e| matches!(e, VerifyError::MissingCollateral(_)),
        );
        // The TD quote: its signature, its report data (which binds the variable data).
        let quote_len = unb64(
            serde_json::from_slice::<Value>(&evidence).unwrap()["td_quote"]
                .as_str()
                .unwrap(),
        )
        .len();
        for offset in [48 + 520, 48 + 200] {
            expect_err(
                verify(&edit_td_quote(&evidence, |q| q[offset] ^= 1)),
                id,
                "signature",
                |e| matches!(e, VerifyError::Signature(_)),
            );
        }
        expect_err(
            verify(&edit_td_quote(&evidence, |q| q.truncate(quote_len / 2))),
            id,
            "truncated",
            |e| e.is_unusable_input(),
        );
        // The TDREPORT in the HCL report is not the quoted one.
        expect_err(
            verify(&edit_hcl(&evidence, |h| h[0x20 + 128] ^= 1)),
            id,
            "REPORTDATA",
            |e| matches!(e, VerifyError::Inconsistent(_)),
        );
        // Its padding, the header, the report type.
        for (offset, word) in [
            (0x20 + 1024 + 5, "padding"),
            (0x10, "status"),
            (0x4C8, "TDX"),
        ] {
            expect_err(
                verify(&edit_hcl(&evidence, |h| h[offset] ^= 1)),
                id,
                word,
                |e| matches!(e, VerifyError::Malformed { .. }),
            );
        }
        // The variable data (holding the AK) is no longer what the quote attests.
        expect_err(
            verify(&edit_hcl(&evidence, |h| h[0x4D4 + 40] ^= 1)),
            id,
            "variable data",
            |e| matches!(e, VerifyError::Inconsistent(_)),
        );
        // The vTPM's quote: its signature, its PCRs.
        expect_err(
            verify(&edit_quote(&evidence, "signature", |s| s[7] ^= 1)),
            id,
            "HCLAkPub",
            |e| matches!(e, VerifyError::Signature(_)),
        );
        let bad_pcrs = edit(&evidence, |v| {
            v["tpm_quote"]["pcrs"][3] = Value::String("00".repeat(32));
        });
        expect_err(verify(&bad_pcrs), id, "PCR digest", |e| {
            matches!(e, VerifyError::Inconsistent(_))
        });
        // Another version, a field too many, one missing, too much.
        let v9 = edit(&evidence, |v| v["version"] = Value::from(9));
        expect_err(verify(&v9), id, "version 9", |e| {
            matches!(e, VerifyError::UnsupportedVersion { version: 9, .. })
        });
        let extra = edit(&evidence, |v| v["vcek"] = Value::String(String::new()));
        expect_err(verify(&extra), id, "vcek", |e| e.is_unusable_input());
        let missing = edit(&evidence, |v| {
            v.as_object_mut().unwrap().remove("td_quote");
        });
        // Without its TD quote it reads as an SNP document, and lacks that one's VCEK.
        expect_err(verify(&missing), id, "vcek", |e| {
            matches!(e, VerifyError::Malformed { .. })
        });
        for cut in [0, 1, 100, evidence.len() / 2, evidence.len() - 2] {
            let err = verify(&evidence[..cut]).unwrap_err();
            assert!(err.is_unusable_input(), "cut {cut}: {err}");
        }
        let mut big = evidence.clone();
        big.resize(1 << 20, b' ');
        expect_err(verify(&big), id, "accepted", |e| {
            matches!(e, VerifyError::TooLarge { .. })
        });
    }
}
