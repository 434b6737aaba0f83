//! No malleable evidence: every genuine fixture, with any one byte changed (its lowest
//! bit flipped, then its highest), no longer verifies. Every byte is covered by a
//! signature, or is the certificate chain that is verified, or is checked to be what it
//! must be (zero padding, must-be-zero reserved fields, fixed header values, the PEM
//! form of a quote's certificates), so two different evidence files never verify as
//! the same evidence.
//!
//! Two things are allowed on purpose: more zero padding after a DCAP quote (quote
//! buffers are handed over at fixed sizes), and the event log inside a TPM attestation,
//! which the verifier carries but does not replay (the claims say so) and which is
//! therefore left out here.

mod common;

use common::verify_request;
use std::path::Path;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::encoding::decode_evidence;

fn data(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Offsets in `range` of `evidence` whose change (bit 0, then bit 7) still verifies.
fn malleable(
    evidence: &[u8],
    range: core::ops::Range<usize>,
    verifies: impl Fn(&[u8]) -> bool,
) -> Vec<(usize, u8)> {
    assert!(verifies(evidence), "the genuine evidence verifies");
    let mut found = Vec::new();
    let mut changed = evidence.to_vec();
    for i in range {
        for bit in [0x01u8, 0x80] {
            changed[i] ^= bit;
            if verifies(&changed) {
                found.push((i, bit));
            }
            changed[i] ^= bit;
        }
    }
    found
}

#[track_caller]
fn assert_none(what: &str, found: &[(usize, u8)]) {
    assert!(
        found.is_empty(),
        "{what}: {} changed bytes still verify, first at offsets {:?}",
        found.len(),
        &found[..found.len().min(16)]
    );
}

/// Every byte of `evidence`, verified with `collateral` at `at`.
#[track_caller]
fn every_byte(what: &str, evidence: &[u8], collateral: &[Vec<u8>], at: OffsetDateTime) {
    let found = malleable(evidence, 0..evidence.len(), |e| {
        verify_request(e, collateral, &[], None, at).is_ok()
    });
    assert_none(what, &found);
}

#[test]
fn dcap_quotes() {
    for (quote, collateral, at) in [
        (
            "dcap/sgx_quote",
            "dcap/sgx_quote_collateral.json",
            datetime!(2025-07-01 00:00 UTC),
        ),
        (
            "dcap/tdx_quote",
            "dcap/tdx_quote_collateral.json",
            datetime!(2025-07-01 00:00 UTC),
        ),
    ] {
        let evidence = decode_evidence(&data(quote)).expect("quote");
        let collateral = vec![data(collateral)];
        every_byte(quote, &evidence, &collateral, at);
    }
    // What used to pass: a damaged copy of the root the quote carries (the anchor
    // completed the chain), text after the PEM blocks, non-zero padding.
    let evidence = decode_evidence(&data("dcap/tdx_quote")).expect("quote");
    let collateral = vec![data("dcap/tdx_quote_collateral.json")];
    let at = datetime!(2025-07-01 00:00 UTC);
    let verify = |e: &[u8]| verify_request(e, &collateral, &[], None, at);
    let pem_end = evidence
        .windows(25)
        .rposition(|w| w == b"-----END CERTIFICATE-----")
        .expect("PEM")
        + 25;
    let mut root_damaged = evidence.clone();
    root_damaged[pem_end - 60] ^= 0x01;
    assert!(verify(&root_damaged).is_err(), "a damaged root");
    let mut newline = evidence.clone();
    newline[pem_end] = b'\r';
    let err = verify(&newline).expect_err("another line end");
    assert!(err.to_string().contains("PEM text"), "{err}");
    let mut padding = evidence.clone();
    let last = padding.len() - 1;
    padding[last] = 1;
    let err = verify(&padding).expect_err("non-zero padding");
    assert!(err.to_string().contains("must be zero"), "{err}");
}

#[test]
fn snp_reports() {
    for (report, vek, at) in [
        (
            data("snp/test-report.bin"),
            "snp/test-vcek.der",
            datetime!(2026-07-01 00:00 UTC),
        ),
        (
            data("snp/test-vlek-report.bin"),
            "snp/test-vlek.der",
            datetime!(2025-06-01 00:00 UTC),
        ),
        (
            decode_evidence(&data("snp/report_milan.hex")).expect("hex"),
            "snp/vcek_milan.der",
            datetime!(2026-07-01 00:00 UTC),
        ),
    ] {
        every_byte(vek, &report, &[data(vek)], at);
    }
    let mut report = data("snp/test-report.bin");
    report[0x2A0 + 144 + 100] = 1;
    let err = verify_request(
        &report,
        &[data("snp/test-vcek.der")],
        &[],
        None,
        datetime!(2026-07-01 00:00 UTC),
    )
    .expect_err("reserved");
    assert!(
        err.to_string()
            .contains("reserved bytes after the signature must be zero"),
        "{err}"
    );
}

#[test]
fn azure_snp_vtpm_documents() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let at = datetime!(2026-07-01 00:00 UTC);
    for file in ["azure/evidence-v1.json", "azure/evidence-v2.json"] {
        let evidence = data(file);
        every_byte(file, &evidence, &[], at);
        // The HCL report decoded, byte by byte (a change in its base64 text above
        // may also break the encoding rather than the report).
        let document: serde_json::Value = serde_json::from_slice(&evidence).expect("json");
        let hcl = B64
            .decode(
                document["hcl_report"]
                    .as_str()
                    .expect("hcl_report")
                    .trim_end_matches('='),
            )
            .expect("base64");
        let found = malleable(&hcl, 0..hcl.len(), |changed| {
            let mut document = document.clone();
            document["hcl_report"] = serde_json::Value::String(B64.encode(changed));
            let bytes = serde_json::to_vec(&document).expect("json");
            verify_request(&bytes, &[], &[], None, at).is_ok()
        });
        assert_none(&format!("{file}, HCL report"), &found);
    }
}

#[test]
fn nitro_documents() {
    for (file, at) in [
        (
            "nitro/valid-attestation-doc-base64",
            datetime!(2023-09-18 15:03:30.860 UTC),
        ),
        (
            "nitro/valid-attestation-doc-bytes",
            datetime!(2022-10-13 08:58:02.136 UTC),
        ),
    ] {
        let document = decode_evidence(&data(file)).expect("document");
        every_byte(file, &document, &[], at);
    }
}

#[test]
fn nvidia_report() {
    let report = decode_evidence(&data("nvidia/hopperAttestationReport.txt")).expect("report");
    every_byte(
        "nvidia hopper report",
        &report,
        &[data("nvidia/hopperCertChain.txt")],
        datetime!(2025-01-01 0:00 UTC),
    );
}

/// The protobuf's top-level field 3 (the event log): where its value lies.
fn event_log_range(attestation: &[u8]) -> core::ops::Range<usize> {
    let varint = |i: &mut usize| {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = attestation[*i];
            *i += 1;
            value |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                return value;
            }
        }
    };
    let mut i = 0;
    while i < attestation.len() {
        let key = varint(&mut i);
        assert_eq!(key & 7, 2, "the fixtures hold length-delimited fields only");
        let len = usize::try_from(varint(&mut i)).expect("length");
        if key >> 3 == 3 {
            return i..i + len;
        }
        i += len;
    }
    panic!("no event log");
}

#[test]
fn tpm_attestations_apart_from_their_event_logs() {
    let at = datetime!(2022-01-01 00:00 UTC);
    for file in ["tpm/gce-cos-85-nonce9009.pb", "tpm/gce-cos-85-no-nonce.pb"] {
        let evidence = data(file);
        let log = event_log_range(&evidence);
        let verifies = |e: &[u8]| verify_request(e, &[], &[], None, at).is_ok();
        let mut found = malleable(&evidence, 0..log.start, verifies);
        found.extend(malleable(&evidence, log.end..evidence.len(), verifies));
        assert_none(file, &found);
        // The attestation key's attributes are bound now (the quote names its signer).
        let mut changed = evidence.clone();
        changed[8] ^= 0x01;
        let err = verify_request(&changed, &[], &[], None, at).expect_err("attributes");
        assert!(err.to_string().contains("names its signer"), "{err}");
    }
}
