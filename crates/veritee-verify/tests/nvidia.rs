//! NVIDIA H100 SPDM attestation reports: the vectors.json case with the values
//! trustee asserts, and every way the report must be refused.

mod common;

use common::*;
use serde_json::Value as Json;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::encoding::decode_evidence;
use veritee_attest::{
    Claims, ParsedCertificate, TcbStatus, TeeKind, Verifier, VerifyError, VerifyInput,
};
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_verify::nvidia::report::{REQUEST_LEN, SpdmReport};
use veritee_verify::nvidia::{self, NvidiaVerifier};
use veritee_verify::{Verifiers, VerifyRequest};
use veritee_x509::X509Error;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nvidia/");
const AT: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);
const NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
const FWID: &str = "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d";

fn report() -> Vec<u8> {
    decode_evidence(&std::fs::read(format!("{DATA}hopperAttestationReport.txt")).unwrap()).unwrap()
}

fn chain_pem() -> Vec<u8> {
    std::fs::read(format!("{DATA}hopperCertChain.txt")).unwrap()
}

fn verify_with(
    evidence: &[u8],
    collateral: &[Vec<u8>],
    anchors: &[ParsedCertificate],
    at: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    verify_request(evidence, collateral, anchors, None, at)
}

fn verify(evidence: &[u8], at: OffsetDateTime) -> Result<Claims, VerifyError> {
    verify_with(evidence, &[chain_pem()], &[], at)
}

fn direct(evidence: &[u8], collateral: &[Vec<u8>]) -> Result<Claims, VerifyError> {
    NvidiaVerifier.verify(&VerifyInput {
        evidence,
        collateral,
        trust_anchors: &[],
        at: AT,
    })
}

#[test]
fn vector_nvtrust_sample() {
    let evidence = report();
    assert_eq!(evidence.len(), 4117);
    assert_eq!(
        Verifiers::default().detect(&evidence).unwrap(),
        TeeKind::NvidiaH100
    );
    let claims = verify(&evidence, AT).unwrap();
    assert_eq!(claims.tee, TeeKind::NvidiaH100);
    assert!(!claims.simulated);
    assert_eq!(hex::encode(&claims.report_data.0), NONCE);
    assert_eq!(claims.tcb_status, TcbStatus::NotReported);
    assert!(!claims.debug);
    assert_eq!(claims.signer, None);
    assert_eq!(claims.evidence_time, None);
    assert_eq!(claims.details["driver_version"], "550.90.07");
    assert_eq!(claims.details["vbios_version"], "96.00.9f.00.01");
    assert_eq!(claims.details["fwid"], FWID);
    assert!(claims.details["ocsp"].starts_with("not checked"));
    assert!(claims.details["rim"].starts_with("not compared"));
    assert!(claims.details["signing_certificate"].contains("GH100 A01 GSP FMC LF"));

    // Every value trustee's local verifier asserts (hopperAttestationReport-claims.txt).
    let expected: Json = serde_json::from_slice(
        &std::fs::read(format!("{DATA}hopperAttestationReport-claims.txt")).unwrap(),
    )
    .unwrap();
    let device = &expected["devices_claims"][0];
    let blocks = device["measurement_blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 64);
    assert_eq!(claims.measurements.len(), 64);
    for block in blocks {
        let name = format!("measurement_block_{}", block["index"]);
        assert_eq!(
            hex::encode(claims.measurement(&name).unwrap()),
            block["measurement_value"].as_str().unwrap(),
            "{name}"
        );
    }
    let opaque = &device["opaque_data"];
    assert_eq!(
        claims.details["fwid"],
        opaque["OPAQUE_FIELD_ID_FWID"].as_str().unwrap()
    );
    assert_eq!(
        claims.details["board_id"],
        opaque["OPAQUE_FIELD_ID_BOARD_ID"].as_str().unwrap()
    );
    assert_eq!(
        claims.details["gpu_info"],
        opaque["OPAQUE_FIELD_ID_GPU_INFO"].as_str().unwrap()
    );
    assert_eq!(
        claims.details["cpr_info"],
        opaque["OPAQUE_FIELD_ID_CPRINFO"].as_str().unwrap()
    );
    for (detail, field) in [
        ("driver_version", "OPAQUE_FIELD_ID_DRIVER_VERSION"),
        ("chip_sku", "OPAQUE_FIELD_ID_CHIP_SKU"),
        ("project", "OPAQUE_FIELD_ID_PROJECT"),
        ("project_sku", "OPAQUE_FIELD_ID_PROJECT_SKU"),
    ] {
        assert_eq!(
            claims.details[detail],
            opaque[field].as_str().unwrap().trim_end_matches('\0'),
            "{detail}"
        );
    }
    let parsed = SpdmReport::parse(&evidence).unwrap();
    let vbios = parsed
        .response
        .opaque_item(nvidia::report::OpaqueType::VBIOS_VERSION)
        .unwrap();
    assert_eq!(
        hex::encode(vbios),
        opaque["OPAQUE_FIELD_ID_VBIOS_VERSION"].as_str().unwrap()
    );
}

#[test]
fn json_evidence_carries_its_chain() {
    let json = serde_json::json!({
        "report": hex::encode(report()),
        "certificate_chain": String::from_utf8(chain_pem()).unwrap(),
    })
    .to_string();
    assert_eq!(
        Verifiers::default().detect(json.as_bytes()).unwrap(),
        TeeKind::NvidiaH100
    );
    let from_json = verify_with(json.as_bytes(), &[], &[], AT).unwrap();
    assert_eq!(from_json, verify(&report(), AT).unwrap());
    // A second chain beside it is refused rather than guessed between.
    let err = verify(json.as_bytes(), AT).unwrap_err();
    assert!(matches!(err, VerifyError::Collateral(_)), "{err}");
    assert!(!NvidiaVerifier.recognizes(br#"{"report": "00", "certificate_chain": ""}"#));
}

#[test]
fn report_data_is_the_request_nonce() {
    let evidence = report();
    let collateral = [chain_pem()];
    let request = |expected: &[u8]| {
        Verifiers::default().verify(&VerifyRequest {
            evidence: &evidence,
            tee: Some(TeeKind::NvidiaH100),
            collateral: &collateral,
            trust_anchors: &veritee_attest::TrustAnchors::none(),
            expected_report_data: Some(expected),
            at: AT,
        })
    };
    request(&hex::decode(NONCE).unwrap()).unwrap();
    let responder_nonce = verify(&evidence, AT).unwrap().details["responder_nonce"].clone();
    let err = request(&hex::decode(responder_nonce).unwrap()).unwrap_err();
    assert!(
        matches!(err, VerifyError::ReportDataMismatch { .. }),
        "{err}"
    );
}

#[test]
fn recognition_is_specific() {
    let v = NvidiaVerifier;
    assert!(v.recognizes(&report()));
    assert!(!v.recognizes(b"VTEV\x01\x00\x02\x00\x01\x00"));
    let mut dcap = vec![0u8; 1024];
    dcap[..8].copy_from_slice(&[3, 0, 2, 0, 0, 0, 0, 0]);
    assert!(!v.recognizes(&dcap));
    let nitro_doc = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/nitro/valid-attestation-doc-bytes"
    ))
    .unwrap();
    assert!(!v.recognizes(&nitro_doc));
    assert!(!v.recognizes(&chain_pem()));
    assert!(!v.recognizes(&report()[..REQUEST_LEN]));
}

#[test]
fn embedded_root_is_the_nvidia_device_identity_ca() {
    let anchors = nvidia::default_anchors().unwrap();
    assert_eq!(anchors.len(), 1);
    assert_eq!(
        anchors[0].subject(),
        "O=NVIDIA,CN=NVIDIA Device Identity CA"
    );
    // The chain's last certificate is the same root; a caller-supplied copy works too.
    let chain = ParsedCertificate::from_pem_chain(&chain_pem()).unwrap();
    assert_eq!(chain.len(), 5);
    assert_eq!(chain[4], anchors[0]);
    verify_with(&report(), &[chain_pem()], &chain[4..], AT).unwrap();
}

// ---- negative matrix on the real report ----

#[test]
fn truncated_reports_are_malformed() {
    let evidence = report();
    for cut in [
        0,
        1,
        36,
        REQUEST_LEN + 1,
        REQUEST_LEN + 8,
        500,
        evidence.len() - 97,
        evidence.len() - 96,
        evidence.len() - 1,
    ] {
        let err = direct(&evidence[..cut], &[chain_pem()]).unwrap_err();
        assert!(
            matches!(err, VerifyError::Malformed { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("truncated"), "cut at {cut}: {err}");
    }
    let mut trailing = evidence.clone();
    trailing.push(0);
    let err = verify(&trailing, AT).unwrap_err();
    assert!(err.to_string().contains("trailing"), "{err}");
}

#[test]
fn flipped_signature_byte_fails_the_signature() {
    let mut evidence = report();
    let last = evidence.len() - 1;
    evidence[last - 10] ^= 0x01;
    let err = verify(&evidence, AT).unwrap_err();
    assert!(matches!(err, VerifyError::Signature(_)), "{err}");
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn changed_nonce_or_measurement_fails_the_signature() {
    // The request nonce (the report data) at offset 4.
    let mut evidence = report();
    evidence[4] ^= 0x01;
    let err = verify(&evidence, AT).unwrap_err();
    assert!(matches!(err, VerifyError::Signature(_)), "{err}");
    // A measurement value byte (block 2's value).
    let mut evidence = report();
    let at = evidence
        .windows(8)
        .position(|w| w == hex::decode("8048dfd18fe229bf").unwrap())
        .unwrap();
    evidence[at] ^= 0x01;
    assert!(matches!(
        verify(&evidence, AT),
        Err(VerifyError::Signature(_))
    ));
    // The FWID in the opaque data.
    let mut evidence = report();
    let at = evidence
        .windows(48)
        .position(|w| w == hex::decode(FWID).unwrap())
        .unwrap();
    evidence[at] ^= 0x01;
    assert!(matches!(
        verify(&evidence, AT),
        Err(VerifyError::Signature(_))
    ));
}

#[test]
fn wrong_or_missing_collateral_is_refused() {
    let evidence = report();
    // No chain.
    let err = verify_with(&evidence, &[], &[], AT).unwrap_err();
    assert!(matches!(err, VerifyError::MissingCollateral(_)), "{err}");
    assert!(err.to_string().contains("certificate chain"), "{err}");
    // Another vendor's root as the anchor.
    let nitro_root = nitro_root();
    let err = verify_with(&evidence, &[chain_pem()], &nitro_root, AT).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(X509Error::UntrustedRoot { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("NVIDIA Device Identity CA"),
        "{err}"
    );
    // A chain missing the provisioner intermediate.
    let certs = ParsedCertificate::from_pem_chain(&chain_pem()).unwrap();
    let gapped: Vec<Vec<u8>> = [0, 1, 3, 4]
        .iter()
        .map(|&i| certs[i].der().to_vec())
        .collect();
    let err = verify_with(&evidence, &gapped, &[], AT).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(X509Error::UnknownIssuer { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Provisioner ICA"), "{err}");
    // The chain in the wrong order: the first certificate is not the signer.
    let reversed: Vec<Vec<u8>> = certs.iter().rev().map(|c| c.der().to_vec()).collect();
    let err = verify_with(&evidence, &reversed, &[], AT).unwrap_err();
    assert!(matches!(err, VerifyError::Signature(_)), "{err}");
    // Something that is not a certificate.
    let err = verify_with(&evidence, &[b"not a chain".to_vec()], &[], AT).unwrap_err();
    assert!(matches!(err, VerifyError::Collateral(_)), "{err}");
}

fn nitro_root() -> Vec<ParsedCertificate> {
    ParsedCertificate::from_pem_chain(veritee_verify::nitro::AWS_NITRO_ROOT_G1_PEM).unwrap()
}

#[test]
fn chain_outside_its_validity_is_refused() {
    // The real chain is valid until 9999-12-31, so "a day after expiry" cannot be
    // expressed; a day before the provisioner CA was issued (2022-03-01) can.
    let err = verify(&report(), datetime!(2022-02-28 0:00 UTC)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(X509Error::OutsideValidity { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Provisioner ICA"), "{err}");
}

#[test]
fn layout_violations_are_named() {
    let evidence = report();
    // SPDM 1.2 is not read.
    let mut v12 = evidence.clone();
    v12[0] = 0x12;
    v12[REQUEST_LEN] = 0x12;
    assert!(NvidiaVerifier.recognizes(&v12));
    let err = verify(&v12, AT).unwrap_err();
    assert!(
        matches!(err, VerifyError::UnsupportedVersion { version: 0x12, .. }),
        "{err}"
    );
    // A request without the signature bit.
    let mut unsigned = evidence.clone();
    unsigned[2] = 0;
    let err = direct(&unsigned, &[chain_pem()]).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
    // A block count that does not match the record.
    let mut count = evidence.clone();
    count[REQUEST_LEN + 4] = 63;
    let err = direct(&count, &[chain_pem()]).unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed { .. }) && err.to_string().contains("trailing"),
        "{err}"
    );
    // Another slot than the one requested.
    let mut slot = evidence.clone();
    slot[REQUEST_LEN + 3] = 1;
    assert!(matches!(
        direct(&slot, &[chain_pem()]),
        Err(VerifyError::Inconsistent(_))
    ));
    // A measurement block that is not in DMTF format.
    let mut spec = evidence.clone();
    spec[REQUEST_LEN + 8 + 1] = 0x02;
    let err = direct(&spec, &[chain_pem()]).unwrap_err();
    assert!(err.to_string().contains("DMTF"), "{err}");
}

#[test]
fn oversized_input_is_refused() {
    let mut big = report();
    big.resize(nvidia::report::MAX_REPORT_LEN + 1, 0);
    let err = verify(&big, AT).unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err}");
    let huge_chain = vec![b'-'; nvidia::MAX_JSON_LEN + 1];
    let err = verify_with(&report(), &[huge_chain], &[], AT).unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err}");
}

// ---- a test PKI: the FWID binding and certificate expiry ----

struct TestChain {
    anchors: Vec<ParsedCertificate>,
    chain: Vec<Vec<u8>>,
    key: EcdsaSigningKey,
    leaf_not_after: OffsetDateTime,
}

/// `SEQUENCE { INTEGER 1, FWID { sha384, OCTET STRING fwid } }` as NVIDIA's leaves
/// carry it (without the SubjectPublicKeyInfo element, which the verifier skips).
fn fwid_extension(fwid: &[u8; 48]) -> Vec<u8> {
    let mut fwid_seq = vec![
        0x30, 0x3d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x04, 0x30,
    ];
    fwid_seq.extend_from_slice(fwid);
    let mut out = vec![0x30, 0x42, 0x02, 0x01, 0x01];
    out.extend_from_slice(&fwid_seq);
    out
}

fn test_chain(fwid: Option<[u8; 48]>) -> TestChain {
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "Test Device Identity CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    ca.not_before = AT - time::Duration::days(365);
    ca.not_after = AT + time::Duration::days(365);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, "Test GSP FMC LF");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.not_before = AT - time::Duration::days(1);
    leaf.not_after = AT + time::Duration::days(1);
    if let Some(fwid) = fwid {
        leaf.custom_extensions = vec![CustomExtension::from_oid_content(
            &[2, 23, 133, 5, 4, 1],
            fwid_extension(&fwid),
        )];
    }
    let leaf_cert = leaf
        .signed_by(&leaf_key, &Issuer::new(ca, &ca_key))
        .unwrap();
    TestChain {
        anchors: vec![ParsedCertificate::from_der(ca_cert.der()).unwrap()],
        chain: vec![leaf_cert.der().to_vec(), ca_cert.der().to_vec()],
        key: EcdsaSigningKey::from_pkcs8(EcdsaCurve::P384, &leaf_key.serialize_der()).unwrap(),
        leaf_not_after: AT + time::Duration::days(1),
    }
}

/// The real report, re-signed by the test leaf.
fn resigned(chain: &TestChain) -> Vec<u8> {
    let parsed = SpdmReport::parse(&report()).unwrap();
    let mut out = parsed.signed_bytes.clone();
    out.extend_from_slice(&chain.key.sign(&parsed.signed_bytes).unwrap());
    out
}

fn real_fwid() -> [u8; 48] {
    hex::decode(FWID).unwrap().try_into().unwrap()
}

#[test]
fn fwid_binding_is_checked() {
    // Matching FWID: the report verifies under the test PKI, with the same claims.
    let good = test_chain(Some(real_fwid()));
    let claims = verify_with(&resigned(&good), &good.chain, &good.anchors, AT).unwrap();
    assert_eq!(hex::encode(&claims.report_data.0), NONCE);
    // Another FWID certified: the report is not from the firmware the key belongs to.
    let mut other = real_fwid();
    other[47] ^= 0xff;
    let wrong = test_chain(Some(other));
    let err = verify_with(&resigned(&wrong), &wrong.chain, &wrong.anchors, AT).unwrap_err();
    assert!(matches!(err, VerifyError::Inconsistent(_)), "{err}");
    assert!(err.to_string().contains("FWID"), "{err}");
    // No FWID extension at all.
    let none = test_chain(None);
    let err = verify_with(&resigned(&none), &none.chain, &none.anchors, AT).unwrap_err();
    assert!(
        matches!(err, VerifyError::Inconsistent(_))
            && err.to_string().contains("no FWID extension"),
        "{err}"
    );
}

#[test]
fn expired_device_certificate_is_refused() {
    let chain = test_chain(Some(real_fwid()));
    let evidence = resigned(&chain);
    verify_with(
        &evidence,
        &chain.chain,
        &chain.anchors,
        chain.leaf_not_after,
    )
    .unwrap();
    let err = verify_with(
        &evidence,
        &chain.chain,
        &chain.anchors,
        chain.leaf_not_after + time::Duration::days(1),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(X509Error::OutsideValidity { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Test GSP FMC LF"), "{err}");
}
