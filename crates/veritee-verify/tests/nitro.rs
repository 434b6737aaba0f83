//! AWS Nitro Enclaves attestation documents: every vectors.json case with its expected
//! values, and every way a real document must be refused.

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
use veritee_verify::nitro::document::{CoseSign1, SignedDocument};
use veritee_verify::nitro::{self, NitroVerifier};
use veritee_verify::{Verifiers, VerifyRequest};
use veritee_x509::X509Error;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nitro/");

fn fixture(name: &str) -> Vec<u8> {
    let raw = std::fs::read(format!("{DATA}{name}")).unwrap();
    decode_evidence(&raw).unwrap()
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
    verify_with(evidence, &[], &[], at)
}

const BASE64_DOC: &str = "valid-attestation-doc-base64";
const BASE64_AT: OffsetDateTime = datetime!(2023-09-18 15:03:30.860 UTC);
const BYTES_DOC: &str = "valid-attestation-doc-bytes";
const BYTES_AT: OffsetDateTime = datetime!(2022-10-13 08:58:02.136 UTC);
const DEBUG_DOC: &str = "debug-mode-attestation-doc-bytes";
const DEBUG_AT: OffsetDateTime = datetime!(2022-10-12 13:50:06.081 UTC);
const CERT_PEM: &str = "non-debug-cert-containing-attestation-document-18-1-23.pem";
const CERT_DER: &str = "non-debug-cert-containing-attestation-document-18-1-23-der.crt";
const CERT_AT: OffsetDateTime = datetime!(2023-01-18 13:07:19 UTC);
const DEBUG_CERT_PEM: &str = "debug-mode-cert-containing-attestation-doc-18-1-23.pem";
const DEBUG_CERT_AT: OffsetDateTime = datetime!(2023-01-18 15:10:32 UTC);

const ZERO48: &str = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

fn pcr(claims: &Claims, index: u8) -> String {
    hex::encode(claims.measurement(&format!("pcr{index}")).unwrap())
}

fn assert_common(claims: &Claims, at: OffsetDateTime) {
    assert_eq!(claims.tee, TeeKind::Nitro);
    assert!(!claims.simulated);
    assert_eq!(claims.tcb_status, TcbStatus::NotReported);
    assert_eq!(claims.signer, None);
    assert_eq!(claims.security_version, None);
    assert_eq!(claims.platform_id, None);
    assert!(claims.advisory_ids.is_empty());
    // Nitro reports PCR0..15; the time is the document's, to the millisecond.
    assert_eq!(claims.measurements.len(), 16);
    let skew = (claims.evidence_time.unwrap() - at).abs();
    assert!(
        skew < time::Duration::seconds(1),
        "evidence time {:?} vs {at}",
        claims.evidence_time
    );
}

#[test]
fn vector_base64_document() {
    let evidence = fixture(BASE64_DOC);
    assert_eq!(
        Verifiers::default().detect(&evidence).unwrap(),
        TeeKind::Nitro
    );
    let claims = verify(&evidence, BASE64_AT).unwrap();
    assert_common(&claims, BASE64_AT);
    assert_eq!(claims.evidence_time, Some(BASE64_AT));
    // evervault test-specs/ga/valid_attestation_doc_ga.json: PCR0, 1, 2, 8 all zero.
    let spec: Json = serde_json::from_slice(
        &std::fs::read(format!("{DATA}ga_valid_attestation_doc_ga.json")).unwrap(),
    )
    .unwrap();
    for index in [0, 1, 2, 8] {
        assert_eq!(
            pcr(&claims, index),
            spec["pcrs"][format!("pcr{index}")].as_str().unwrap()
        );
    }
    assert!(claims.debug, "PCR0 all zero is a debug enclave");
    // A 256-byte nonce is the report data; user_data is the SPKI of the paired TLS certificate.
    assert_eq!(claims.report_data.0.len(), 256);
    assert_eq!(claims.details["nonce"], hex::encode(&claims.report_data.0));
    let tls = ParsedCertificate::from_der(
        &std::fs::read(format!("{DATA}valid-certificate.der")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims.details["user_data"],
        hex::encode(tls.spki_der().unwrap())
    );
    assert_eq!(
        claims.details["module_id"],
        "i-0918f6c55e3b61d89-enc018aa8b8e2285d13"
    );
    assert_eq!(
        pcr(&claims, 3),
        "4a9329d69c836267b18abbf9f4a38889124490453419e426818626348d21f989dc930b1562682a9082887454e53425aa"
    );
}

#[test]
fn vector_bytes_document() {
    let evidence = fixture(BYTES_DOC);
    let claims = verify(&evidence, BYTES_AT).unwrap();
    assert_common(&claims, BYTES_AT);
    assert_eq!(
        pcr(&claims, 0),
        "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b"
    );
    assert_eq!(
        pcr(&claims, 8),
        "8790eb3cce6c83d07e84b126dc61ca923333d6f66615c4a79157de48c5ab2418bdc60746ea7b7afbff03a1c6210201cb"
    );
    assert!(!claims.debug);
    assert_eq!(claims.details["report_data_source"], "nonce");
    assert_eq!(
        claims.details["module_id"],
        "i-020b6af9246d90e92-enc0183d09086c24190"
    );
}

#[test]
fn vector_debug_document() {
    let claims = verify(&fixture(DEBUG_DOC), DEBUG_AT).unwrap();
    assert_common(&claims, DEBUG_AT);
    for index in [0, 1, 2, 8] {
        assert_eq!(pcr(&claims, index), ZERO48, "PCR{index}");
    }
    assert!(claims.debug);
    // No nonce: the report data is user_data.
    assert_eq!(claims.report_data.0, b"hello, world!");
    assert_eq!(claims.details["report_data_source"], "user_data");
    assert_eq!(
        claims.details["public_key"],
        hex::encode(b"my super secret key")
    );
}

/// evervault test-specs: (spec file, evidence file, verification time).
const CERT_SPECS: [(&str, &str, OffsetDateTime); 5] = [
    (
        "beta_valid_attestation_doc_in_cert_time_sensitive.json",
        DEBUG_CERT_PEM,
        DEBUG_CERT_AT,
    ),
    (
        "beta_valid_attestation_doc_in_cert_der_encoding_time_sensitive.json",
        CERT_DER,
        CERT_AT,
    ),
    (
        "beta_valid_attestation_doc_check_pcr8_only_time_sensitive.json",
        CERT_DER,
        CERT_AT,
    ),
    (
        "beta_valid_attestation_doc_in_non_debug_mode_with_correct_pcrs_time_sensitive.json",
        CERT_PEM,
        CERT_AT,
    ),
    (
        "beta_valid_attestation_doc_in_cert_incorrect_pcrs_time_sensitive.json",
        CERT_PEM,
        CERT_AT,
    ),
];

#[test]
fn vector_documents_embedded_in_certificates() {
    for (spec_file, evidence_file, at) in CERT_SPECS {
        let spec: Json =
            serde_json::from_slice(&std::fs::read(format!("{DATA}{spec_file}")).unwrap()).unwrap();
        assert!(
            spec["file"].as_str().unwrap().ends_with(evidence_file),
            "{spec_file}"
        );
        let evidence = fixture(evidence_file);
        assert_eq!(
            Verifiers::default().detect(&evidence).unwrap(),
            TeeKind::Nitro,
            "{evidence_file}"
        );
        let claims = verify(&evidence, at).unwrap_or_else(|e| panic!("{evidence_file}: {e}"));
        assert_common(&claims, at);
        assert!(spec["isAttestationDocValid"].as_bool().unwrap());
        let expected = spec["pcrs"].as_object().unwrap();
        let all_match = expected.iter().all(|(name, value)| {
            hex::encode(claims.measurement(name).unwrap()) == value.as_str().unwrap()
        });
        assert_eq!(
            all_match,
            spec["shouldPcrsMatch"].as_bool().unwrap(),
            "{spec_file}"
        );
        // The carrying certificate's key is what the enclave bound in user_data.
        let carrier = nitro::embedded::extract(&evidence).unwrap().carrier;
        assert_eq!(
            claims.details["user_data"],
            hex::encode(carrier.spki_der().unwrap())
        );
        assert_eq!(claims.debug, evidence_file == DEBUG_CERT_PEM);
    }
    // vectors.json values for the non-debug certificate.
    let claims = verify(&fixture(CERT_PEM), CERT_AT).unwrap();
    assert_eq!(
        pcr(&claims, 0),
        "d265a83faa7b4fa0d73b82b6d06253e894445922937d0ee5a74fe4891da9817611a71e71b98e5329232902de3cf419af"
    );
    assert_eq!(
        pcr(&claims, 8),
        "97c5395a83c0d6a04d53ff962663c714c178c24500bf97f78456ed3721d922cf3f940614da4bb90107c439bc4a1443ca"
    );
    assert_eq!(
        claims,
        verify(&fixture(CERT_DER), CERT_AT).unwrap(),
        "PEM and DER carry the same document"
    );
}

#[test]
fn report_data_is_checked_by_the_registry() {
    let evidence = fixture(BYTES_DOC);
    let nonce = verify(&evidence, BYTES_AT).unwrap().report_data.0;
    let request = |expected: &[u8]| {
        Verifiers::default().verify(&VerifyRequest {
            evidence: &evidence,
            tee: Some(TeeKind::Nitro),
            collateral: &[],
            trust_anchors: &veritee_attest::TrustAnchors::none(),
            expected_report_data: Some(expected),
            at: BYTES_AT,
        })
    };
    request(&nonce).unwrap();
    let mut other = nonce.clone();
    other[0] ^= 1;
    assert!(matches!(
        request(&other),
        Err(VerifyError::ReportDataMismatch { .. })
    ));
}

#[test]
fn recognition_is_specific() {
    let v = NitroVerifier;
    for name in [
        BYTES_DOC,
        DEBUG_DOC,
        BASE64_DOC,
        CERT_PEM,
        CERT_DER,
        DEBUG_CERT_PEM,
    ] {
        assert!(v.recognizes(&fixture(name)), "{name}");
    }
    // Not simulated evidence, not a DCAP quote, not an NVIDIA report, not a plain certificate.
    assert!(!v.recognizes(b"VTEV\x01\x00\x02\x00\x01\x00"));
    let mut dcap = vec![0u8; 1024];
    dcap[..8].copy_from_slice(&[3, 0, 2, 0, 0, 0, 0, 0]);
    assert!(!v.recognizes(&dcap));
    dcap[..8].copy_from_slice(&[4, 0, 2, 0, 0x81, 0, 0, 0]);
    assert!(!v.recognizes(&dcap));
    let nvidia = decode_evidence(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/nvidia/hopperAttestationReport.txt"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(!v.recognizes(&nvidia));
    assert!(!v.recognizes(&std::fs::read(format!("{DATA}valid-certificate.der")).unwrap()));
    assert!(!v.recognizes(nitro::AWS_NITRO_ROOT_G1_PEM));
    assert!(!v.recognizes(b""));
}

#[test]
fn simulated_evidence_is_not_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let now = datetime!(2026-01-01 0:00 UTC);
    let mut vendor = veritee_platform::sim::SimVendor::init(&dir.path().join("v"), now).unwrap();
    let machine =
        veritee_platform::sim::SimMachine::init(&dir.path().join("m"), &mut vendor, None, now)
            .unwrap();
    let enclave = machine
        .launch(&veritee_platform::sim::EnclaveImage::unsigned(
            b"code", 1, 1, false,
        ))
        .unwrap();
    let evidence = enclave
        .evidence_at(&veritee_attest::ReportData([0; 64]), now)
        .unwrap();
    assert!(!NitroVerifier.recognizes(&evidence));
    assert_eq!(
        Verifiers::default().detect(&evidence).unwrap(),
        TeeKind::Simulated
    );
}

#[test]
fn embedded_root_is_the_aws_nitro_root_g1() {
    let anchors = nitro::default_anchors().unwrap();
    assert_eq!(anchors.len(), 1);
    assert_eq!(
        hex::encode(anchors[0].fingerprint()),
        "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    );
    // The document's bundle starts with the same root.
    let signed = SignedDocument::parse(&fixture(BYTES_DOC)).unwrap();
    assert_eq!(signed.document.cabundle[0], anchors[0].der());
    // A caller-supplied anchor replaces the default: the same root works...
    let root = ParsedCertificate::from_pem_chain(nitro::AWS_NITRO_ROOT_G1_PEM).unwrap();
    verify_with(&fixture(BYTES_DOC), &[], &root, BYTES_AT).unwrap();
}

// ---- negative matrix on real documents ----

fn is_malformed(err: &VerifyError) -> bool {
    matches!(err, VerifyError::Malformed { .. })
}

#[test]
fn truncated_documents_are_malformed() {
    for name in [BYTES_DOC, DEBUG_DOC, BASE64_DOC] {
        let evidence = fixture(name);
        for cut in [
            1,
            2,
            10,
            100,
            evidence.len() / 2,
            evidence.len() - 97,
            evidence.len() - 1,
        ] {
            let err = NitroVerifier
                .verify(&VerifyInput {
                    evidence: &evidence[..cut],
                    collateral: &[],
                    trust_anchors: &[],
                    at: BYTES_AT,
                })
                .unwrap_err();
            assert!(is_malformed(&err), "{name} cut at {cut}: {err}");
            assert!(
                err.to_string().contains("truncated") || err.to_string().contains("CBOR"),
                "{err}"
            );
        }
        let err = verify(&evidence[..0], BYTES_AT).unwrap_err();
        assert!(matches!(err, VerifyError::UnknownFormat(_)), "{err}");
    }
    let pem = fixture(CERT_PEM);
    for cut in [40, pem.len() / 3, pem.len() - 30] {
        let err = NitroVerifier
            .verify(&VerifyInput {
                evidence: &pem[..cut],
                collateral: &[],
                trust_anchors: &[],
                at: CERT_AT,
            })
            .unwrap_err();
        assert!(is_malformed(&err), "PEM cut at {cut}: {err}");
    }
}

#[test]
fn flipped_signature_byte_fails_the_signature() {
    for (name, at) in [
        (BYTES_DOC, BYTES_AT),
        (DEBUG_DOC, DEBUG_AT),
        (BASE64_DOC, BASE64_AT),
    ] {
        let mut evidence = fixture(name);
        // The signature is the last item: its 96 bytes end the document.
        let last = evidence.len() - 1;
        evidence[last - 40] ^= 0x01;
        let err = verify(&evidence, at).unwrap_err();
        assert!(matches!(err, VerifyError::Signature(_)), "{name}: {err}");
        assert!(err.to_string().contains("does not verify"), "{err}");
    }
}

fn flip_inside(evidence: &mut [u8], needle: &[u8]) {
    let at = evidence
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("field bytes present");
    evidence[at + needle.len() / 2] ^= 0x80;
}

#[test]
fn changed_report_data_fails_the_signature() {
    // The nonce of a document with one, and user_data of one without.
    let mut evidence = fixture(BYTES_DOC);
    let nonce = SignedDocument::parse(&evidence)
        .unwrap()
        .document
        .nonce
        .unwrap();
    flip_inside(&mut evidence, &nonce);
    let err = verify(&evidence, BYTES_AT).unwrap_err();
    assert!(matches!(err, VerifyError::Signature(_)), "{err}");

    let mut evidence = fixture(DEBUG_DOC);
    flip_inside(&mut evidence, b"hello, world!");
    let err = verify(&evidence, DEBUG_AT).unwrap_err();
    assert!(matches!(err, VerifyError::Signature(_)), "{err}");

    // A PCR changed is refused the same way.
    let mut evidence = fixture(BYTES_DOC);
    flip_inside(
        &mut evidence,
        &hex::decode("f4d48b81a460c9916d1e685119074bf2").unwrap(),
    );
    assert!(matches!(
        verify(&evidence, BYTES_AT),
        Err(VerifyError::Signature(_))
    ));
}

#[test]
fn wrong_trust_anchor_or_collateral_is_refused() {
    let evidence = fixture(BYTES_DOC);
    let nvidia =
        ParsedCertificate::from_pem_chain(veritee_verify::nvidia::NVIDIA_DEVICE_IDENTITY_CA_PEM)
            .unwrap();
    let err = verify_with(&evidence, &[], &nvidia, BYTES_AT).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(X509Error::UntrustedRoot { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("aws.nitro-enclaves"), "{err}");
    // Nitro uses no collateral: a file given anyway is named, not silently ignored.
    let err = verify_with(&evidence, &[b"some CRL".to_vec()], &[], BYTES_AT).unwrap_err();
    assert!(matches!(err, VerifyError::Collateral(_)), "{err}");
    assert!(err.to_string().contains("no collateral"), "{err}");
    // A genuine document put in a certificate for another key: the binding fails.
    let genuine = nitro::embedded::extract(&fixture(CERT_PEM))
        .unwrap()
        .document;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let params = rcgen::CertificateParams::new(vec![
        "impostor.example".to_string(),
        format!("{}.impostor.example", hex::encode(&genuine)),
    ])
    .unwrap();
    let impostor = params.self_signed(&key).unwrap();
    assert!(NitroVerifier.recognizes(impostor.der()));
    let err = verify(impostor.der(), CERT_AT).unwrap_err();
    assert!(matches!(err, VerifyError::Inconsistent(_)), "{err}");
    assert!(
        err.to_string().contains("user_data is not the public key"),
        "{err}"
    );
    // The same document split over 63-character DNS labels is found too.
    let labels: Vec<String> = hex::encode(&genuine)
        .as_bytes()
        .chunks(63)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let params =
        rcgen::CertificateParams::new(vec![format!("{}.impostor.example", labels.join("."))])
            .unwrap();
    let split = params.self_signed(&key).unwrap();
    assert_eq!(
        nitro::embedded::extract(split.der()).unwrap().document,
        genuine
    );
    assert!(NitroVerifier.recognizes(split.pem().as_bytes()));
    // A hex-looking label after the document is not taken for part of it.
    let params =
        rcgen::CertificateParams::new(vec![format!("{}.cafe.ab.example", hex::encode(&genuine))])
            .unwrap();
    let hexy = params.self_signed(&key).unwrap();
    assert_eq!(
        nitro::embedded::extract(hexy.der()).unwrap().document,
        genuine
    );
    // Many tiny labels cost linear time and find nothing.
    let params =
        rcgen::CertificateParams::new(vec![format!("{}example", "a.".repeat(20_000))]).unwrap();
    let tiny = params.self_signed(&key).unwrap();
    let started = std::time::Instant::now();
    assert!(nitro::embedded::extract(tiny.der()).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn expired_signing_certificate_is_refused() {
    for (name, at) in [(BYTES_DOC, BYTES_AT), (BASE64_DOC, BASE64_AT)] {
        let evidence = fixture(name);
        let leaf = ParsedCertificate::from_der(
            &SignedDocument::parse(&evidence)
                .unwrap()
                .document
                .certificate,
        )
        .unwrap();
        assert!(
            leaf.not_after() - leaf.not_before() < time::Duration::hours(4),
            "leaves live about three hours"
        );
        let err = verify(&evidence, leaf.not_after() + time::Duration::days(1)).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::Certificate(X509Error::OutsideValidity { .. })
            ),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("not valid at"), "{err}");
        // Verifying at the wall clock would fail the same way: these fixtures are years old.
        assert!(verify(&evidence, at).is_ok());
    }
}

#[test]
fn document_from_the_future_is_refused() {
    let evidence = fixture(BYTES_DOC);
    let err = verify(&evidence, BYTES_AT - time::Duration::hours(1)).unwrap_err();
    assert!(matches!(err, VerifyError::FromTheFuture { .. }), "{err}");
    // Within the clock skew it passes (the leaf was issued 3 s before the document).
    verify(&evidence, BYTES_AT - time::Duration::seconds(1)).unwrap();
}

#[test]
fn oversized_evidence_is_refused() {
    let mut big = fixture(BYTES_DOC);
    big.resize(nitro::MAX_EVIDENCE_LEN + 1, 0);
    let err = NitroVerifier
        .verify(&VerifyInput {
            evidence: &big,
            collateral: &[],
            trust_anchors: &[],
            at: BYTES_AT,
        })
        .unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err}");
    // Trailing bytes after a document are not tolerated either.
    let mut trailing = fixture(BYTES_DOC);
    trailing.push(0);
    let err = verify(&trailing, BYTES_AT).unwrap_err();
    assert!(is_malformed(&err), "{err}");
    assert!(err.to_string().contains("trailing"), "{err}");
}

// ---- synthetic documents: encodings and fields the real fixtures do not exercise ----

struct TestPki {
    anchors: Vec<ParsedCertificate>,
    leaf_der: Vec<u8>,
    bundle: Vec<Vec<u8>>,
    key: EcdsaSigningKey,
}

const SYNTH_AT: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);

fn test_pki() -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "test.nitro-enclaves");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = SYNTH_AT - time::Duration::days(30);
    ca.not_after = SYNTH_AT + time::Duration::days(30);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, "i-test-enc0");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.not_before = SYNTH_AT - time::Duration::hours(1);
    leaf.not_after = SYNTH_AT + time::Duration::hours(2);
    let leaf_cert = leaf
        .signed_by(&leaf_key, &Issuer::new(ca, &ca_key))
        .unwrap();
    TestPki {
        anchors: vec![ParsedCertificate::from_der(ca_cert.der()).unwrap()],
        leaf_der: leaf_cert.der().to_vec(),
        bundle: vec![ca_cert.der().to_vec()],
        key: EcdsaSigningKey::from_pkcs8(EcdsaCurve::P384, &leaf_key.serialize_der()).unwrap(),
    }
}

/// Minimal CBOR writing for the tests, with indefinite-length forms on request.
mod w {
    use veritee_verify::nitro::cbor::{encode_bytes, encode_head, encode_text};
    pub fn text(out: &mut Vec<u8>, s: &str) {
        encode_text(out, s)
    }
    pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        encode_bytes(out, b)
    }
    pub fn uint(out: &mut Vec<u8>, n: u64) {
        encode_head(out, 0, n)
    }
    /// (_ first half, second half)
    pub fn bytes_chunked(out: &mut Vec<u8>, b: &[u8]) {
        out.push(0x5f);
        let (a, c) = b.split_at(b.len() / 2);
        encode_bytes(out, a);
        encode_bytes(out, c);
        out.push(0xff);
    }
    pub fn text_chunked(out: &mut Vec<u8>, s: &str) {
        out.push(0x7f);
        let (a, c) = s.split_at(s.len() / 2);
        encode_text(out, a);
        encode_text(out, c);
        out.push(0xff);
    }
}

struct Synth {
    indefinite: bool,
    tagged: bool,
    alg: i64,
    pcr0: [u8; 48],
    nonce: Option<Vec<u8>>,
    timestamp: OffsetDateTime,
    extra_protected: Vec<u8>,
}

impl Default for Synth {
    fn default() -> Self {
        Self {
            indefinite: true,
            tagged: true,
            alg: -35,
            pcr0: [0x11; 48],
            nonce: Some(b"synthetic nonce".to_vec()),
            timestamp: SYNTH_AT,
            extra_protected: Vec::new(),
        }
    }
}

fn synthetic_document(pki: &TestPki, s: &Synth) -> Vec<u8> {
    let ind = s.indefinite;
    let bstr = |out: &mut Vec<u8>, b: &[u8]| {
        if ind {
            w::bytes_chunked(out, b)
        } else {
            w::bytes(out, b)
        }
    };
    let mut p = Vec::new();
    p.push(if ind {
        0xbf
    } else {
        0xa9 - u8::from(s.nonce.is_none())
    });
    w::text(&mut p, "module_id");
    if ind {
        w::text_chunked(&mut p, "i-test-enc0")
    } else {
        w::text(&mut p, "i-test-enc0")
    }
    w::text(&mut p, "digest");
    w::text(&mut p, "SHA384");
    w::text(&mut p, "timestamp");
    w::uint(
        &mut p,
        (s.timestamp.unix_timestamp_nanos() / 1_000_000) as u64,
    );
    w::text(&mut p, "pcrs");
    p.push(if ind { 0xbf } else { 0xa3 });
    for (index, value) in [(0u64, s.pcr0), (1, [0x22; 48]), (8, [0x88; 48])] {
        w::uint(&mut p, index);
        bstr(&mut p, &value);
    }
    if ind {
        p.push(0xff);
    }
    w::text(&mut p, "certificate");
    bstr(&mut p, &pki.leaf_der);
    w::text(&mut p, "cabundle");
    p.push(if ind { 0x9f } else { 0x81 });
    bstr(&mut p, &pki.bundle[0]);
    if ind {
        p.push(0xff);
    }
    w::text(&mut p, "public_key");
    p.push(0xf6); // null
    w::text(&mut p, "user_data");
    bstr(&mut p, b"synthetic user data");
    if let Some(nonce) = &s.nonce {
        w::text(&mut p, "nonce");
        bstr(&mut p, nonce);
    }
    if ind {
        p.push(0xff);
    } else {
        assert_eq!(p[0], 0xa9 - u8::from(s.nonce.is_none()));
    }
    // protected: { 1: alg } (+ extra pairs)
    let mut protected = vec![0xa1 + u8::from(!s.extra_protected.is_empty()), 0x01];
    veritee_verify::nitro::cbor::encode_head(&mut protected, 1, (-1 - s.alg) as u64);
    protected.extend_from_slice(&s.extra_protected);
    let cose = CoseSign1 {
        tagged: s.tagged,
        protected: protected.clone(),
        payload: p.clone(),
        signature: vec![],
    };
    let signature = pki.key.sign(&cose.to_be_signed()).unwrap();
    let mut out = Vec::new();
    if s.tagged {
        out.push(0xd2);
    }
    out.push(if ind { 0x9f } else { 0x84 });
    bstr(&mut out, &protected);
    out.push(0xa0);
    bstr(&mut out, &p);
    bstr(&mut out, &signature);
    if ind {
        out.push(0xff);
    }
    out
}

fn verify_synth(pki: &TestPki, doc: &[u8]) -> Result<Claims, VerifyError> {
    verify_with(doc, &[], &pki.anchors, SYNTH_AT)
}

#[test]
fn indefinite_length_and_tagged_documents_verify() {
    let pki = test_pki();
    for (indefinite, tagged) in [(true, true), (true, false), (false, true), (false, false)] {
        let doc = synthetic_document(
            &pki,
            &Synth {
                indefinite,
                tagged,
                ..Synth::default()
            },
        );
        assert!(
            NitroVerifier.recognizes(&doc),
            "indefinite {indefinite} tagged {tagged}"
        );
        let claims = verify_synth(&pki, &doc)
            .unwrap_or_else(|e| panic!("indefinite {indefinite} tagged {tagged}: {e}"));
        assert_eq!(claims.measurement("pcr0").unwrap(), [0x11; 48]);
        assert_eq!(claims.measurement("pcr8").unwrap(), [0x88; 48]);
        assert_eq!(claims.measurements.len(), 3);
        assert_eq!(claims.report_data.0, b"synthetic nonce");
        assert_eq!(claims.details["module_id"], "i-test-enc0");
        assert_eq!(claims.details["cose_tagged"], tagged.to_string());
        assert!(!claims.debug);
        assert!(
            !claims.details.contains_key("public_key"),
            "null public_key is absent"
        );
        // The default AWS root does not vouch for the test PKI.
        assert!(matches!(
            verify(&doc, SYNTH_AT),
            Err(VerifyError::UntrustedForKind { .. })
        ));
    }
    let without_nonce = synthetic_document(
        &pki,
        &Synth {
            nonce: None,
            indefinite: false,
            ..Synth::default()
        },
    );
    let claims = verify_synth(&pki, &without_nonce).unwrap();
    assert_eq!(claims.report_data.0, b"synthetic user data");
    let debug = synthetic_document(
        &pki,
        &Synth {
            pcr0: [0; 48],
            ..Synth::default()
        },
    );
    assert!(verify_synth(&pki, &debug).unwrap().debug);
}

#[test]
fn other_algorithms_and_critical_headers_are_refused() {
    let pki = test_pki();
    let es256 = synthetic_document(
        &pki,
        &Synth {
            alg: -7,
            ..Synth::default()
        },
    );
    let err = verify_synth(&pki, &es256).unwrap_err();
    assert!(
        matches!(err, VerifyError::Signature(_)) && err.to_string().contains("only ES384"),
        "{err}"
    );
    // crit (label 2) naming label 99.
    let crit = synthetic_document(
        &pki,
        &Synth {
            extra_protected: vec![0x02, 0x81, 0x18, 99],
            ..Synth::default()
        },
    );
    let err = verify_synth(&pki, &crit).unwrap_err();
    assert!(
        is_malformed(&err) && err.to_string().contains("crit"),
        "{err}"
    );
}

#[test]
fn timestamp_outside_the_leaf_validity_is_inconsistent() {
    let pki = test_pki();
    // Dated before the leaf was issued, verified while the leaf is valid.
    let early = synthetic_document(
        &pki,
        &Synth {
            timestamp: SYNTH_AT - time::Duration::hours(3),
            ..Synth::default()
        },
    );
    let err = verify_synth(&pki, &early).unwrap_err();
    assert!(
        matches!(err, VerifyError::Inconsistent(_))
            && err.to_string().contains("outside its signing certificate"),
        "{err}"
    );
}
