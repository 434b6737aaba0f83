//! Intel SGX and TDX DCAP quotes: the vectors.json cases on real evidence, and every way
//! a quote or its collateral must be refused.

mod common;

use common::*;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::encoding::decode_evidence;
use veritee_attest::{Claims, ParsedCertificate, TcbStatus, TeeKind, Verifier, VerifyError};
use veritee_verify::dcap::quote::{self, MAX_QUOTE_LEN, QuoteBody};
use veritee_verify::dcap::tcb_info::{TcbInfo, TcbInfoId};
use veritee_verify::dcap::{DcapCollateral, DcapVerifier, Quote};
use veritee_verify::{Verifiers, VerifyRequest};
use veritee_x509::X509Error;

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/dcap/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Evidence as the CLI hands it to verifiers: hex and base64 decoded.
fn evidence(name: &str) -> Vec<u8> {
    decode_evidence(&read(name)).unwrap()
}

/// A real quote, its collateral and a time inside the collateral's window.
#[derive(Clone, Copy)]
struct Fixture {
    quote: &'static str,
    collateral: &'static str,
    at: OffsetDateTime,
    tee: TeeKind,
}

const SGX: Fixture = Fixture {
    quote: "sgx_quote",
    collateral: "sgx_quote_collateral.json",
    at: datetime!(2025-07-01 00:00 UTC),
    tee: TeeKind::Sgx,
};
const TDX: Fixture = Fixture {
    quote: "tdx_quote",
    collateral: "tdx_quote_collateral.json",
    at: datetime!(2025-07-01 00:00 UTC),
    tee: TeeKind::Tdx,
};
const TDX_OUTDATED: Fixture = Fixture {
    quote: "tdx_quote_outdated",
    collateral: "tdx_quote_outdated_collateral.json",
    at: datetime!(2026-03-01 00:00 UTC),
    tee: TeeKind::Tdx,
};
const TDX_00806F: Fixture = Fixture {
    quote: "quote_tdx_00806f050000.dat",
    collateral: "tdx_00806f050000_2025-02_from_dcap-rs.json",
    at: datetime!(2025-02-13 04:00:32 UTC),
    tee: TeeKind::Tdx,
};

fn verify_with(
    quote: &[u8],
    collateral: &[Vec<u8>],
    anchors: &[ParsedCertificate],
    at: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    verify_request(quote, collateral, anchors, None, at)
}

fn verify(quote: &[u8], collateral: &[u8], at: OffsetDateTime) -> Result<Claims, VerifyError> {
    verify_with(quote, &[collateral.to_vec()], &[], at)
}

fn run(f: Fixture) -> Result<Claims, VerifyError> {
    verify(&evidence(f.quote), &read(f.collateral), f.at)
}

#[track_caller]
fn expect_err(
    result: Result<Claims, VerifyError>,
    matches: impl Fn(&VerifyError) -> bool,
    word: &str,
) -> VerifyError {
    let err = result.expect_err("verification must fail");
    assert!(matches(&err), "unexpected error variant: {err:?}");
    assert!(err.to_string().contains(word), "'{word}' not in: {err}");
    err
}

fn detail<'c>(claims: &'c Claims, key: &str) -> &'c str {
    claims
        .details
        .get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no detail {key}: {:?}", claims.details))
}

// ---------------------------------------------------------------------------------------
// vectors.json cases

#[test]
fn sgx_dcapqvl() {
    let quote = evidence(SGX.quote);
    assert_eq!(Verifiers::default().detect(&quote).unwrap(), TeeKind::Sgx);
    let claims = run(SGX).unwrap();
    assert_eq!(claims.tee, TeeKind::Sgx);
    assert!(!claims.simulated);
    assert_eq!(
        claims.tcb_status,
        TcbStatus::ConfigurationAndSwHardeningNeeded
    );
    assert_eq!(claims.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert_eq!(detail(&claims, "qe_tcb_status"), "UpToDate");
    assert_eq!(detail(&claims, "fmspc"), "00a067110000");
    assert_eq!(detail(&claims, "pck_ca"), "Processor");
    assert_eq!(detail(&claims, "quote_version"), "3");
    assert_eq!(detail(&claims, "qe_isvsvn"), "10");
    assert_eq!(detail(&claims, "tcb_date"), "2024-03-13T00:00:00Z");
    assert_eq!(
        hex::encode(claims.measurement("mrenclave").unwrap()),
        "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
    );
    assert_eq!(
        claims.signer.as_ref().unwrap().to_string(),
        "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"
    );
    let mut hello = b"Hello, world!".to_vec();
    hello.resize(64, 0);
    assert_eq!(claims.report_data.0, hello);
    assert_eq!(
        claims.security_version,
        Some(detail(&claims, "isv_svn").parse().unwrap())
    );
    assert_eq!(
        claims.platform_id.as_ref().map(|p| p.0.len()),
        Some(16),
        "PPID"
    );
    assert_eq!(claims.evidence_time, None);
    assert!(!claims.debug);
    // The registry's report-data check, short expectation zero-padded.
    let collateral = [read(SGX.collateral)];
    let no_anchors = veritee_attest::TrustAnchors::none();
    let request = |expected: &'static [u8]| VerifyRequest {
        evidence: &quote,
        tee: Some(TeeKind::Sgx),
        collateral: &collateral,
        trust_anchors: &no_anchors,
        expected_report_data: Some(expected),
        at: SGX.at,
    };
    Verifiers::default()
        .verify(&request(b"Hello, world!"))
        .unwrap();
    expect_err(
        Verifiers::default().verify(&request(b"Hello, world?")),
        |e| matches!(e, VerifyError::ReportDataMismatch { .. }),
        "report data mismatch",
    );
}

#[test]
fn tdx_dcapqvl() {
    let quote = evidence(TDX.quote);
    assert_eq!(Verifiers::default().detect(&quote).unwrap(), TeeKind::Tdx);
    let parsed = Quote::parse(&quote).unwrap();
    assert_eq!(parsed.padding, 70, "zero padding after the signature data");
    let claims = run(TDX).unwrap();
    assert_eq!(claims.tee, TeeKind::Tdx);
    assert_eq!(claims.tcb_status, TcbStatus::UpToDate);
    assert!(claims.advisory_ids.is_empty(), "{:?}", claims.advisory_ids);
    assert_eq!(detail(&claims, "tdx_module"), "TDX_01 isvsvn 6 UpToDate");
    assert_eq!(detail(&claims, "quote_version"), "4");
    assert_eq!(detail(&claims, "fmspc"), "b0c06f000000");
    assert_eq!(detail(&claims, "pck_ca"), "Platform");
    assert_eq!(detail(&claims, "qe_tcb_status"), "UpToDate");
    assert_eq!(detail(&claims, "mrsignerseam"), "00".repeat(48));
    assert_eq!(
        hex::encode(claims.measurement("mrtd").unwrap()),
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    assert_eq!(
        claims.report_data.to_string(),
        "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
    );
    for name in [
        "mrtd",
        "rtmr0",
        "rtmr1",
        "rtmr2",
        "rtmr3",
        "mrconfigid",
        "mrowner",
        "mrownerconfig",
        "mrseam",
    ] {
        assert_eq!(
            claims.measurement(name).map(<[u8]>::len),
            Some(48),
            "{name}"
        );
    }
    assert_eq!(claims.measurements.len(), 9);
    assert_eq!(claims.signer, None);
    assert_eq!(claims.security_version, None);
    assert_eq!(claims.report_data.0.len(), 64);
}

#[test]
fn tdx_dcapqvl_hex_quotes_match_no_tcb_level() {
    for name in ["tdx-quote.hex", "quote-from-tappd.hex"] {
        let quote = evidence(name);
        assert_eq!(
            Verifiers::default().detect(&quote).unwrap(),
            TeeKind::Tdx,
            "{name}"
        );
        let err = expect_err(
            verify(&quote, &read(TDX.collateral), TDX.at),
            |e| matches!(e, VerifyError::NoMatchingTcbLevel(_)),
            "SGX TCB component 8 is 3, every level requires at least 5",
        );
        assert!(err.to_string().contains("b0c06f000000"), "{err}");
    }
}

#[test]
fn tdx_dcapqvl_outdated_matches_no_tcb_level() {
    let quote = evidence(TDX_OUTDATED.quote);
    let parsed = Quote::parse(&quote).unwrap();
    assert_eq!(parsed.header.version, 5);
    assert_eq!(parsed.body_type, Some(quote::BODY_TYPE_TD15));
    assert!(matches!(&parsed.body, QuoteBody::Td(td) if td.tdx15.is_some()));
    let mut report_data =
        hex::decode("d2142b643598eb5fae2bc8529dd79a558b29f868ccbb6531cb28dab9dce47728").unwrap();
    report_data.resize(64, 0);
    assert_eq!(parsed.report_data().to_vec(), report_data);
    expect_err(
        run(TDX_OUTDATED),
        |e| matches!(e, VerifyError::NoMatchingTcbLevel(_)),
        "component 8 is 3",
    );
}

#[test]
fn tdx_00806f050000_is_out_of_date() {
    let claims = run(TDX_00806F).unwrap();
    assert_eq!(claims.tcb_status, TcbStatus::OutOfDate);
    assert_eq!(
        claims.advisory_ids,
        ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"]
    );
    assert_eq!(detail(&claims, "tdx_module"), "TDX_01 isvsvn 4 UpToDate");
    assert_eq!(detail(&claims, "qe_tcb_status"), "UpToDate");
    assert_eq!(detail(&claims, "tcb_date"), "2023-08-09T00:00:00Z");
    assert_eq!(detail(&claims, "fmspc"), "00806f050000");
    assert_eq!(detail(&claims, "platform_tcb_status"), "OutOfDate");
    // 8000-byte buffer: 3065 bytes of padding after the signature data.
    assert_eq!(
        Quote::parse(&evidence(TDX_00806F.quote)).unwrap().padding,
        3065
    );
}

// ---------------------------------------------------------------------------------------
// Formats, padding and the cached-collateral path

#[test]
fn padding_must_be_zero_and_may_be_absent() {
    let reference = run(TDX).unwrap();
    let mut quote = evidence(TDX.quote);
    // More zero padding: the same quote.
    quote.extend_from_slice(&[0u8; 30]);
    assert_eq!(
        verify(&quote, &read(TDX.collateral), TDX.at).unwrap(),
        reference
    );
    // Anything else after the signature data: refused, by its offset.
    let len = quote.len();
    quote[len - 1] = 0xa5;
    expect_err(
        verify(&quote, &read(TDX.collateral), TDX.at),
        VerifyError::is_unusable_input,
        &format!("byte {} of the quote", len - 1),
    );
    let mut quote = evidence(TDX.quote);
    quote.extend_from_slice(b"trailing garbage is not part of the quote");
    expect_err(
        verify(&quote, &read(TDX.collateral), TDX.at),
        VerifyError::is_unusable_input,
        "padding after the signature data must be zero",
    );
    // Without any padding at all.
    let mut quote = evidence(TDX_00806F.quote);
    let padding = Quote::parse(&quote).unwrap().padding;
    quote.truncate(quote.len() - padding);
    assert_eq!(
        verify(&quote, &read(TDX_00806F.collateral), TDX_00806F.at).unwrap(),
        run(TDX_00806F).unwrap()
    );
}

#[test]
fn recognizes_its_own_quotes_only() {
    let (sgx, tdx) = (DcapVerifier::sgx(), DcapVerifier::tdx());
    let sgx_quote = evidence(SGX.quote);
    for name in [
        TDX.quote,
        TDX_OUTDATED.quote,
        TDX_00806F.quote,
        "tdx-quote.hex",
    ] {
        let q = evidence(name);
        assert!(tdx.recognizes(&q) && !sgx.recognizes(&q), "{name}");
    }
    assert!(sgx.recognizes(&sgx_quote) && !tdx.recognizes(&sgx_quote));
    let mut sim = b"VTEV".to_vec();
    sim.extend_from_slice(&sgx_quote[4..]);
    let mut v6 = sgx_quote.clone();
    v6[0] = 6;
    let mut key3 = sgx_quote.clone();
    key3[2] = 3;
    for other in [
        &b"VTEV\x01\x00"[..],
        &sim,
        &v6,
        &key3,
        b"{\"tcb_info\": 1}",
        &sgx_quote[..40],
        b"",
    ] {
        assert!(
            !sgx.recognizes(other) && !tdx.recognizes(other),
            "{:?}",
            &other[..other.len().min(8)]
        );
    }
    // Asking for the wrong kind is refused with both kinds named.
    let err = Verifiers::default()
        .verify(&VerifyRequest {
            evidence: &sgx_quote,
            tee: Some(TeeKind::Tdx),
            collateral: &[read(SGX.collateral)],
            trust_anchors: &veritee_attest::TrustAnchors::none(),
            expected_report_data: None,
            at: SGX.at,
        })
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::UnknownFormat(_)) && err.to_string().contains("SGX quote"),
        "{err}"
    );
}

#[test]
fn parsed_collateral_can_be_reused() {
    for f in [SGX, TDX, TDX_00806F] {
        let collateral = DcapCollateral::parse(&read(f.collateral)).unwrap();
        let verifier = if f.tee == TeeKind::Sgx {
            DcapVerifier::sgx()
        } else {
            DcapVerifier::tdx()
        };
        let cached = verifier
            .verify_with_collateral(&evidence(f.quote), &collateral, &[], f.at)
            .unwrap();
        assert_eq!(cached, run(f).unwrap(), "{}", f.quote);
        // An explicit Intel root behaves like the embedded one.
        let root = veritee_verify::dcap::intel_sgx_root_ca().unwrap().clone();
        assert_eq!(
            verifier
                .verify_with_collateral(&evidence(f.quote), &collateral, &[root], f.at)
                .unwrap(),
            cached
        );
    }
}

#[test]
fn tcb_info_version_2_parses_and_its_signature_verifies() {
    let file = String::from_utf8(read("tcbinfov2.json")).unwrap();
    // The PCS response: {"tcbInfo":<signed bytes>,"signature":"<hex>"}.
    let start = file.find('{').unwrap() + 1 + "\"tcbInfo\":".len();
    let end = file.rfind(",\"signature\"").unwrap();
    let signed = &file[start..end];
    let info = TcbInfo::parse(signed.as_bytes()).unwrap();
    assert_eq!(info.version, 2);
    assert_eq!(info.id, TcbInfoId::Sgx);
    assert_eq!(hex::encode(info.fmspc), "00606a000000");
    assert_eq!(info.levels.len(), 11);
    assert_eq!(info.levels[0].sgx_components[..2], [14, 14]);
    assert_eq!(info.levels[0].pce_svn, 13);
    assert_eq!(info.levels[0].status, TcbStatus::SwHardeningNeeded);
    assert!(
        info.levels
            .windows(2)
            .all(|w| (w[0].sgx_components, w[0].pce_svn) >= (w[1].sgx_components, w[1].pce_svn))
    );
    let value: serde_json::Value = serde_json::from_str(&file).unwrap();
    let signature = hex::decode(value["signature"].as_str().unwrap()).unwrap();
    let chain = ParsedCertificate::from_pem_chain(&read("tcb_signing_cert.pem")).unwrap();
    veritee_crypto::sign::verify(
        veritee_crypto::sign::VerificationScheme::EcdsaP256Sha256Fixed,
        chain[0].public_key_bits(),
        signed.as_bytes(),
        &signature,
    )
    .unwrap();
    let at = datetime!(2025-02-20 00:00 UTC);
    veritee_x509::verify_chain(
        &chain[0],
        &chain,
        &[veritee_verify::dcap::intel_sgx_root_ca().unwrap().clone()],
        &[],
        at,
        veritee_x509::RevocationPolicy::CheckIfPresent,
        &[],
    )
    .unwrap();
    assert!(TcbInfo::parse(signed.replace("\"version\":2", "\"version\":4").as_bytes()).is_err());
}

// ---------------------------------------------------------------------------------------
// The negative matrix, for every real fixture

fn json_edit(
    collateral: &[u8],
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(collateral).unwrap();
    edit(value.as_object_mut().unwrap());
    serde_json::to_vec(&value).unwrap()
}

const VERIFIABLE: [Fixture; 4] = [SGX, TDX, TDX_OUTDATED, TDX_00806F];

#[test]
fn truncated_quotes_are_unusable() {
    for f in VERIFIABLE {
        let quote = evidence(f.quote);
        let parsed = Quote::parse(&quote).unwrap();
        let signed = parsed.signed.len();
        let end = quote.len() - parsed.padding;
        for cut in [
            0,
            2,
            20,
            47,
            48,
            52,
            200,
            signed - 1,
            signed,
            signed + 2,
            signed + 100,
            end - 1500,
            end - 1,
        ] {
            let err = verify(&quote[..cut], &read(f.collateral), f.at).unwrap_err();
            assert!(err.is_unusable_input(), "{} cut at {cut}: {err}", f.quote);
            if cut > 48 {
                assert!(
                    err.to_string().contains("truncated"),
                    "{} cut at {cut}: {err}",
                    f.quote
                );
            }
        }
    }
}

#[test]
fn flipped_signatures_and_changed_report_data_are_refused() {
    for f in VERIFIABLE {
        let quote = evidence(f.quote);
        let parsed = Quote::parse(&quote).unwrap();
        let signed = parsed.signed.len();
        let collateral = read(f.collateral);
        // Quote signature (first byte of the signature data).
        let mut bad = quote.clone();
        bad[signed + 4 + 10] ^= 0x01;
        expect_err(
            verify(&bad, &collateral, f.at),
            |e| matches!(e, VerifyError::Signature(_)),
            "quote signature",
        );
        // Report data: the last 64 bytes of the body.
        let mut bad = quote.clone();
        bad[signed - 1] ^= 0x80;
        expect_err(
            verify(&bad, &collateral, f.at),
            |e| matches!(e, VerifyError::Signature(_)),
            "quote signature",
        );
        // A measurement.
        let mut bad = quote.clone();
        bad[signed - 200] ^= 0x01;
        expect_err(
            verify(&bad, &collateral, f.at),
            |e| matches!(e, VerifyError::Signature(_)),
            "quote signature",
        );
        // The QE report signature: v3 after sig, key and report; v4/v5 after the type-6 header too.
        let qe_sig = signed
            + 4
            + 128
            + if parsed.header.version == 3 {
                384
            } else {
                6 + 384
            };
        let mut bad = quote.clone();
        bad[qe_sig + 5] ^= 0x01;
        expect_err(
            verify(&bad, &collateral, f.at),
            |e| matches!(e, VerifyError::Signature(_)),
            "QE report signature",
        );
        // The attestation key: no longer the one the QE report binds.
        let mut bad = quote.clone();
        bad[signed + 4 + 64 + 7] ^= 0x01;
        expect_err(
            verify(&bad, &collateral, f.at),
            |e| matches!(e, VerifyError::Signature(_)),
            "attestation key",
        );
    }
}

#[test]
fn wrong_collateral_is_refused() {
    // Another platform's TCB info names both FMSPCs.
    expect_err(
        verify(
            &evidence(TDX.quote),
            &read(TDX_OUTDATED.collateral),
            TDX_OUTDATED.at,
        ),
        |e| matches!(e, VerifyError::Collateral(_)),
        "the TCB info is for FMSPC 90c06f000000, the PCK certificate is for FMSPC b0c06f000000",
    );
    expect_err(
        verify(&evidence(TDX_00806F.quote), &read(TDX.collateral), TDX.at),
        |e| matches!(e, VerifyError::Collateral(_)),
        "FMSPC b0c06f000000, the PCK certificate is for FMSPC 00806f050000",
    );
    // TDX collateral for an SGX quote, and the reverse.
    expect_err(
        verify(&evidence(SGX.quote), &read(TDX.collateral), TDX.at),
        |e| matches!(e, VerifyError::Collateral(_)),
        "for TDX, the quote is SGX",
    );
    expect_err(
        verify(&evidence(TDX.quote), &read(SGX.collateral), SGX.at),
        |e| matches!(e, VerifyError::Collateral(_)),
        "for SGX, the quote is TDX",
    );
    // Of several collateral files, the one for the quote's FMSPC is used.
    let both = [read(TDX_OUTDATED.collateral), read(TDX.collateral)];
    assert_eq!(
        verify_with(&evidence(TDX.quote), &both, &[], TDX.at).unwrap(),
        run(TDX).unwrap()
    );
}

#[test]
fn a_wrong_root_is_refused() {
    let amd = ParsedCertificate::from_pem_chain(&read("amd_milan_ark.pem")).unwrap();
    for f in VERIFIABLE {
        let err = verify_with(&evidence(f.quote), &[read(f.collateral)], &amd, f.at).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::Certificate(X509Error::UntrustedRoot { .. })
            ),
            "{}: {err}",
            f.quote
        );
        assert!(err.to_string().contains("Intel SGX Root CA"), "{err}");
    }
}

#[test]
fn tampered_collateral_is_refused() {
    for f in VERIFIABLE {
        let collateral = read(f.collateral);
        let quote = evidence(f.quote);
        // A TCB level edited: Intel's signature no longer covers it.
        let edited = json_edit(&collateral, |c| {
            let text = c["tcb_info"]
                .as_str()
                .unwrap()
                .replacen("\"pcesvn\":", "\"pcesvn\": ", 1);
            c.insert("tcb_info".into(), text.into());
        });
        expect_err(
            verify(&quote, &edited, f.at),
            |e| matches!(e, VerifyError::Signature(_)),
            "TCB info signature",
        );
        let edited = json_edit(&collateral, |c| {
            let text = c["qe_identity"]
                .as_str()
                .unwrap()
                .replacen("UpToDate", "OutOfDate", 1);
            c.insert("qe_identity".into(), text.into());
        });
        expect_err(
            verify(&quote, &edited, f.at),
            |e| matches!(e, VerifyError::Signature(_)),
            "QE identity signature",
        );
        // Swapped signatures.
        let edited = json_edit(&collateral, |c| {
            let qe = c["qe_identity_signature"].clone();
            c.insert("tcb_info_signature".into(), qe);
        });
        expect_err(
            verify(&quote, &edited, f.at),
            |e| matches!(e, VerifyError::Signature(_)),
            "TCB info signature",
        );
        // The PCK CA's CRL replaced by the root's: revocation of the PCK cannot be checked.
        let edited = json_edit(&collateral, |c| {
            let root = c["root_ca_crl"].clone();
            c.insert("pck_crl".into(), root);
        });
        let err = verify(&quote, &edited, f.at).unwrap_err();
        assert!(
            matches!(err, VerifyError::Certificate(X509Error::MissingCrl { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("PCK"), "{err}");
        // A missing piece.
        let edited = json_edit(&collateral, |c| {
            c.remove("root_ca_crl");
        });
        expect_err(
            verify(&quote, &edited, f.at),
            |e| matches!(e, VerifyError::MissingCollateral(_)),
            "root_ca_crl",
        );
    }
    expect_err(
        verify_with(&evidence(SGX.quote), &[], &[], SGX.at),
        |e| matches!(e, VerifyError::MissingCollateral(_)),
        "tcb_info",
    );
    expect_err(
        verify_with(
            &evidence(SGX.quote),
            &[b"-----BEGIN X509 CRL-----".to_vec()],
            &[],
            SGX.at,
        ),
        |e| matches!(e, VerifyError::Collateral(_)),
        "not DCAP collateral",
    );
}

#[test]
fn expired_and_not_yet_valid_collateral_is_refused() {
    let day = time::Duration::days(1);
    // One day after each fixture's TCB info expired, one hour before it was issued.
    for (f, issued, next_update) in [
        (
            SGX,
            datetime!(2025-06-19 10:56:11 UTC),
            datetime!(2025-07-19 10:56:11 UTC),
        ),
        (
            TDX,
            datetime!(2025-06-19 10:16:03 UTC),
            datetime!(2025-07-19 10:16:03 UTC),
        ),
        (
            TDX_OUTDATED,
            datetime!(2026-02-18 10:58:51 UTC),
            datetime!(2026-03-20 10:58:51 UTC),
        ),
        (
            TDX_00806F,
            datetime!(2025-02-13 03:50:41 UTC),
            datetime!(2025-03-15 03:50:41 UTC),
        ),
    ] {
        let quote = evidence(f.quote);
        let collateral = read(f.collateral);
        expect_err(
            verify(&quote, &collateral, next_update + day),
            |e| matches!(e, VerifyError::CollateralOutsideValidity(_)),
            "TCB info",
        );
        expect_err(
            verify(&quote, &collateral, issued - time::Duration::hours(1)),
            |e| matches!(e, VerifyError::CollateralOutsideValidity(_)),
            "TCB info",
        );
    }
    // The QE identity alone has expired (10:01:18; the PCK CRL lasts until 10:23:18).
    expect_err(
        verify(
            &evidence(SGX.quote),
            &read(SGX.collateral),
            datetime!(2025-07-19 10:10 UTC),
        ),
        |e| matches!(e, VerifyError::CollateralOutsideValidity(_)),
        "QE identity issued 2025-06-19T10:01:18Z",
    );
    // The PCK Platform CA's CRL alone has expired (10:00:35).
    expect_err(
        verify(
            &evidence(TDX.quote),
            &read(TDX.collateral),
            datetime!(2025-07-19 10:05 UTC),
        ),
        |e| matches!(e, VerifyError::CollateralOutsideValidity(_)),
        "CN=Intel SGX PCK Platform CA' is not valid at 2025-07-19T10:05:00Z",
    );
    // One day after the TCB signing certificate of 2018 expired (2025-05-21T10:50:10).
    let err = verify(
        &evidence(TDX_00806F.quote),
        &read(TDX_00806F.collateral),
        datetime!(2025-05-22 10:50:11 UTC),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(X509Error::OutsideValidity { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Intel SGX TCB Signing"), "{err}");
}

#[test]
fn remembered_collateral_still_decides_at_each_verification_time() {
    for f in [SGX, TDX] {
        let quote = evidence(f.quote);
        let collateral = read(f.collateral);
        run(f).unwrap();
        run(f).unwrap();
        // The parsed file and its signatures are remembered; its window is not: a
        // month on, the same bytes are refused.
        expect_err(
            verify(&quote, &collateral, f.at + time::Duration::days(30)),
            |e| matches!(e, VerifyError::CollateralOutsideValidity(_)),
            "is not valid at",
        );
        // One byte of Intel's TCB info signature changed, after the success: refused.
        let tampered = json_edit(&collateral, |doc| {
            let signature = doc["tcb_info_signature"].as_str().unwrap().to_string();
            let flipped = if signature.starts_with('0') { "1" } else { "0" };
            doc.insert(
                "tcb_info_signature".into(),
                format!("{flipped}{}", &signature[1..]).into(),
            );
        });
        expect_err(
            verify(&quote, &tampered, f.at),
            |e| matches!(e, VerifyError::Signature(_)),
            "TCB info signature",
        );
        run(f).unwrap();
    }
}

#[test]
fn oversized_input_is_refused() {
    let mut quote = evidence(TDX.quote);
    quote.resize(MAX_QUOTE_LEN + 1, 0);
    let err = verify(&quote, &read(TDX.collateral), TDX.at).unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err}");
    let err = Quote::parse(&quote).unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err}");
    let mut collateral = read(TDX.collateral);
    collateral.resize(
        veritee_verify::dcap::collateral::MAX_COLLATERAL_LEN + 1,
        b' ',
    );
    let err = DcapCollateral::parse(&collateral).unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err}");
    // A signature data length that runs past the end is truncation, not an allocation.
    let mut quote = evidence(SGX.quote);
    let at = quote::HEADER_LEN + quote::SGX_REPORT_LEN;
    quote[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = verify(&quote, &read(SGX.collateral), SGX.at).unwrap_err();
    assert!(
        err.is_unusable_input() && err.to_string().contains("signature data"),
        "{err}"
    );
}

#[test]
fn unsupported_layouts_are_named() {
    let quote = evidence(TDX_OUTDATED.quote);
    let mut bad = quote.clone();
    bad[quote::HEADER_LEN] = 4; // body type TDX 1.5ex
    assert!(matches!(
        Quote::parse(&bad),
        Err(VerifyError::UnsupportedVersion { version: 4, .. })
    ));
    let mut bad = quote.clone();
    bad[quote::HEADER_LEN + 2] = 0x49; // body size
    assert!(
        Quote::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("body size")
    );
    let mut bad = quote;
    bad[2] = 3; // ECDSA-384 attestation key
    assert!(matches!(
        Quote::parse(&bad),
        Err(VerifyError::UnsupportedVersion { version: 3, .. })
    ));
    let mut bad = evidence(SGX.quote);
    bad[4] = 0x81; // a TDX TEE type in a v3 quote
    assert!(Quote::parse(&bad).is_err());
}
