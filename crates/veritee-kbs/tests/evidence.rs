//! Real evidence, as CoCo's attesters send it, read by `primary_evidence` and verified
//! by veritee's verifiers: Azure SNP and TDX vTPM documents (Trustee's own test data) and a
//! TDX quote with its collateral (dcap-qvl's), both from ../shared/evidence, copied
//! into veritee-verify's test data (see its NOTICE files).

use base64::Engine;
use kbs_types::{Attestation, CompositeEvidence, RuntimeData, Tee, TeePubKey};
use time::macros::datetime;
use veritee_attest::{TeeKind, TrustAnchors, VerifyError};
use veritee_kbs::protocol::{primary_evidence, runtime_data_digest};
use veritee_verify::{Verifiers, VerifyRequest};

const AZURE_V2: &[u8] = include_bytes!("../../veritee-verify/tests/data/azure/evidence-v2.json");
/// The nonce the Azure document's TPM quote carries (48 bytes: a real KBS runtime-data
/// digest, SHA-384).
const AZURE_V2_NONCE: &str = "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef";
const AZURE_TDX_V1: &[u8] =
    include_bytes!("../../veritee-verify/tests/data/azure/tdx-evidence-v1.json");
const TDX_00806F050000_COLLATERAL: &[u8] = include_bytes!(
    "../../veritee-verify/tests/data/dcap/tdx_00806f050000_2025-02_from_dcap-rs.json"
);
const TDX_QUOTE: &[u8] = include_bytes!("../../veritee-verify/tests/data/dcap/tdx_quote");
const TDX_COLLATERAL: &[u8] =
    include_bytes!("../../veritee-verify/tests/data/dcap/tdx_quote_collateral.json");

fn attestation(primary: serde_json::Value) -> Attestation {
    Attestation {
        init_data: None,
        runtime_data: RuntimeData {
            nonce: "bm9uY2U=".into(),
            tee_pubkey: TeePubKey::EC {
                crv: "P-256".into(),
                alg: "ECDH-ES+A256KW".into(),
                x: "eA".into(),
                y: "eQ".into(),
            },
        },
        tee_evidence: CompositeEvidence {
            primary_evidence: primary,
            additional_evidence: String::new(),
        },
    }
}

fn verify(
    evidence: &veritee_kbs::protocol::PrimaryEvidence,
    collateral: &[Vec<u8>],
    expected: &[u8],
    at: time::OffsetDateTime,
) -> Result<veritee_attest::Claims, VerifyError> {
    Verifiers::default().verify(&VerifyRequest {
        evidence: &evidence.bytes,
        tee: Some(evidence.kind),
        collateral,
        trust_anchors: &TrustAnchors::none(),
        expected_report_data: Some(expected),
        at,
    })
}

#[test]
fn an_azure_snp_vtpm_document_verifies_and_binds_its_nonce() {
    let document: serde_json::Value = serde_json::from_slice(AZURE_V2).unwrap();
    let attestation = attestation(document);
    let evidence = primary_evidence(Tee::AzSnpVtpm, &attestation).unwrap();
    assert_eq!(evidence.kind, TeeKind::AzureSnpVtpm);
    let at = datetime!(2026-07-01 00:00 UTC);
    let nonce = hex::decode(AZURE_V2_NONCE).unwrap();
    let claims = verify(&evidence, &[], &nonce, at).unwrap();
    assert!(!claims.simulated);
    // Bound to another runtime data (ours), the same document is refused.
    let ours = runtime_data_digest(&attestation).unwrap();
    assert!(matches!(
        verify(&evidence, &[], &ours, at),
        Err(VerifyError::ReportDataMismatch { .. })
    ));
}

#[test]
fn an_azure_tdx_vtpm_document_verifies_with_its_platforms_collateral() {
    let document: serde_json::Value = serde_json::from_slice(AZURE_TDX_V1).unwrap();
    let attestation = attestation(document);
    let evidence = primary_evidence(Tee::AzTdxVtpm, &attestation).unwrap();
    assert_eq!(evidence.kind, TeeKind::AzureTdxVtpm);
    let at = datetime!(2025-02-13 04:00:32 UTC);
    let claims = verify(
        &evidence,
        &[TDX_00806F050000_COLLATERAL.to_vec()],
        b"challenge",
        at,
    )
    .unwrap();
    assert_eq!(claims.tee, TeeKind::AzureTdxVtpm);
    assert!(claims.measurement("pcr8").is_some());
    // As the SNP kind, the same document is not read.
    let as_snp = primary_evidence(Tee::AzSnpVtpm, &attestation).unwrap();
    assert!(
        verify(
            &as_snp,
            &[TDX_00806F050000_COLLATERAL.to_vec()],
            b"challenge",
            at
        )
        .is_err()
    );
}

#[test]
fn a_tdx_quote_in_cocos_json_verifies_with_its_collateral() {
    let document = serde_json::json!({
        "cc_eventlog": null,
        "quote": base64::engine::general_purpose::STANDARD.encode(TDX_QUOTE),
    });
    let attestation = attestation(document);
    let evidence = primary_evidence(Tee::Tdx, &attestation).unwrap();
    assert_eq!(
        (evidence.kind, &evidence.bytes[..]),
        (TeeKind::Tdx, TDX_QUOTE)
    );
    let at = datetime!(2025-07-01 00:00 UTC);
    let collateral = vec![TDX_COLLATERAL.to_vec()];
    // The quote's own report data: what a guest would have bound.
    let bound = Verifiers::default()
        .verify(&VerifyRequest {
            evidence: &evidence.bytes,
            tee: Some(TeeKind::Tdx),
            collateral: &collateral,
            trust_anchors: &TrustAnchors::none(),
            expected_report_data: None,
            at,
        })
        .unwrap()
        .report_data
        .0;
    let claims = verify(&evidence, &collateral, &bound, at).unwrap();
    assert!(claims.measurement("mrconfigid").is_some());
    let ours = runtime_data_digest(&attestation).unwrap();
    assert!(matches!(
        verify(&evidence, &collateral, &ours, at),
        Err(VerifyError::ReportDataMismatch { .. })
    ));
    // Without collateral, a clear refusal.
    assert!(verify(&evidence, &[], &bound, at).is_err());
}

const SNP_REPORT: &[u8] = include_bytes!("../../veritee-verify/tests/data/snp/test-report.bin");
const SNP_VCEK: &[u8] = include_bytes!("../../veritee-verify/tests/data/snp/test-vcek.der");

/// The document CoCo's SNP attester writes for a report and its certificate table:
/// the `sev` crate's serde form of both.
fn coco_snp_document(report: &[u8], vcek: &[u8]) -> serde_json::Value {
    use sev::parser::ByteParser;
    let report = sev::firmware::guest::AttestationReport::from_bytes(report).unwrap();
    let chain = vec![
        sev::firmware::host::CertTableEntry {
            cert_type: sev::firmware::host::CertType::ARK,
            data: b"not read: AMD's roots are built in".to_vec(),
        },
        sev::firmware::host::CertTableEntry {
            cert_type: sev::firmware::host::CertType::VCEK,
            data: vcek.to_vec(),
        },
    ];
    serde_json::json!({ "attestation_report": report, "cert_chain": chain })
}

#[test]
fn an_snp_report_in_cocos_json_is_its_own_bytes_and_verifies_with_its_vcek() {
    let attestation = attestation(coco_snp_document(SNP_REPORT, SNP_VCEK));
    let evidence = primary_evidence(Tee::Snp, &attestation).unwrap();
    assert_eq!(evidence.kind, TeeKind::SevSnp);
    // The fields re-encode to the very bytes the firmware signed.
    assert_eq!(evidence.bytes, SNP_REPORT);
    assert_eq!(evidence.collateral, [SNP_VCEK.to_vec()]);
    let at = datetime!(2026-07-01 00:00 UTC);
    let report_data = &SNP_REPORT[0x50..0x90];
    let claims = verify(&evidence, &evidence.collateral, report_data, at).unwrap();
    assert!(claims.details.contains_key("host_data"));
    let ours = runtime_data_digest(&attestation).unwrap();
    assert!(matches!(
        verify(&evidence, &evidence.collateral, &ours, at),
        Err(VerifyError::ReportDataMismatch { .. })
    ));
    // Without its VCEK the report cannot be checked; a field changed in the JSON
    // changes the signed bytes, and the signature fails.
    assert!(verify(&evidence, &[], report_data, at).is_err());
    let mut tampered = coco_snp_document(SNP_REPORT, SNP_VCEK);
    tampered["attestation_report"]["guest_svn"] = 99.into();
    let evidence = primary_evidence(Tee::Snp, &self::attestation(tampered)).unwrap();
    assert!(verify(&evidence, &evidence.collateral, report_data, at).is_err());
}

const HOPPER_REPORT: &str =
    include_str!("../../veritee-verify/tests/data/nvidia/hopperAttestationReport.txt");
const HOPPER_CHAIN: &str =
    include_str!("../../veritee-verify/tests/data/nvidia/hopperCertChain.txt");
/// The nonce nvtrust's sample report answers.
const HOPPER_NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

#[test]
fn an_nvidia_gpu_in_the_additional_evidence_verifies_as_a_device() {
    let mut attestation = attestation(serde_json::json!({"svn": "1"}));
    attestation.tee_evidence.additional_evidence = serde_json::json!({
        "nvidia": {"device_evidence_list": [{
            "arch": "HOPPER",
            "uuid": "GPU-0",
            "evidence": HOPPER_REPORT.trim(),
            "certificate": base64::engine::general_purpose::STANDARD.encode(HOPPER_CHAIN),
        }]}
    })
    .to_string();
    let devices = veritee_kbs::protocol::additional_evidence(&attestation).unwrap();
    assert_eq!(devices.len(), 1);
    let device = &devices[0];
    assert_eq!(device.kind, TeeKind::NvidiaH100);
    let at = datetime!(2025-01-01 00:00 UTC);
    let check = |expected: &[u8]| {
        Verifiers::default().verify(&VerifyRequest {
            evidence: &device.bytes,
            tee: Some(device.kind),
            collateral: &[],
            trust_anchors: &TrustAnchors::none(),
            expected_report_data: Some(expected),
            at,
        })
    };
    // The report answers nvtrust's nonce, not this guest's runtime data.
    check(&hex::decode(HOPPER_NONCE).unwrap()).unwrap();
    assert!(matches!(
        check(&device.expected_report_data),
        Err(VerifyError::ReportDataMismatch { .. })
    ));
    assert_eq!(device.expected_report_data.len(), 32);
}

/// What Trustee's own kbs-client sent in one handshake (tests/data/NOTICE).
const CLIENT_REQUEST: &[u8] = include_bytes!("data/kbs-client-request.json");
const CLIENT_CHALLENGE: &[u8] = include_bytes!("data/kbs-client-challenge.json");
const CLIENT_ATTESTATION: &[u8] = include_bytes!("data/kbs-client-attestation.json");

#[test]
fn the_real_clients_messages_read_and_bind_as_it_computed_them() {
    let request = veritee_kbs::protocol::parse_request(CLIENT_REQUEST).unwrap();
    assert_eq!(request.tee, Tee::Sample);
    let challenge: kbs_types::Challenge = serde_json::from_slice(CLIENT_CHALLENGE).unwrap();
    let attestation = veritee_kbs::protocol::parse_attestation(CLIENT_ATTESTATION).unwrap();
    veritee_kbs::protocol::check_nonce(&attestation, &challenge).unwrap();
    // The digest computed here is the one the client's attester put in its evidence.
    let digest = runtime_data_digest(&attestation).unwrap();
    let evidence = primary_evidence(request.tee, &attestation).unwrap();
    let claims = verify(&evidence, &[], &digest, datetime!(2026-12-06 00:00 UTC)).unwrap();
    assert_eq!(claims.tee, TeeKind::CocoSample);
    assert!(claims.simulated);
    // Each part of the message is bound: a nonce, a key coordinate or the evidence's
    // report data changed, and the binding fails.
    let mut other_nonce = attestation.clone();
    other_nonce.runtime_data.nonce = "AAAA".into();
    assert!(veritee_kbs::protocol::check_nonce(&other_nonce, &challenge).is_err());
    let mut other_key = attestation.clone();
    if let TeePubKey::EC { x, .. } = &mut other_key.runtime_data.tee_pubkey {
        x.replace_range(0..1, if x.starts_with('A') { "B" } else { "A" });
    }
    assert_ne!(runtime_data_digest(&other_key).unwrap(), digest);
    // Truncated or oversized messages are refused with a reason.
    assert!(veritee_kbs::protocol::parse_attestation(&CLIENT_ATTESTATION[..100]).is_err());
    let mut huge = CLIENT_REQUEST.to_vec();
    huge.extend(std::iter::repeat_n(
        b' ',
        veritee_kbs::protocol::MAX_REQUEST_LEN,
    ));
    assert!(veritee_kbs::protocol::parse_request(&huge).is_err());
}
