//! GCE vTPM attestations (go-tpm-tools fixtures): the vectors.json case with and
//! without a nonce, and every broken link (AK chain, AK key, quote signatures, PCR
//! values) refused with its reason named.

mod common;

use common::*;
use std::path::Path;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::{Claims, ParsedCertificate, TcbStatus, TeeKind, VerifyError};
use veritee_verify::Verifiers;

use veritee_x509::X509Error;

const AT: OffsetDateTime = datetime!(2022-01-01 00:00 UTC);
const AK_CERT_NOT_BEFORE: OffsetDateTime = datetime!(2021-08-31 23:11:05 UTC);
const AK_CERT_NOT_AFTER: OffsetDateTime = datetime!(2051-08-24 23:16:05 UTC);

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/tpm")
            .join(name),
    )
    .unwrap()
}

const CASES: [(&str, &[u8]); 2] = [
    ("gce-cos-85-nonce9009.pb", &[0x90, 0x09]),
    ("gce-cos-85-no-nonce.pb", &[]),
];

fn run(
    evidence: &[u8],
    anchors: &[ParsedCertificate],
    nonce: Option<&[u8]>,
    at: OffsetDateTime,
) -> Result<Claims, VerifyError> {
    verify_request(evidence, &[], anchors, nonce, at)
}

fn verify(evidence: &[u8]) -> Result<Claims, VerifyError> {
    run(evidence, &[], None, AT)
}

// A minimal protobuf splitter/joiner for length-delimited fields, to edit fixtures.
fn varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let c = b[*i];
        *i += 1;
        v |= u64::from(c & 0x7f) << shift;
        shift += 7;
        if c < 0x80 {
            return v;
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn split(b: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let key = varint(b, &mut i);
        assert_eq!(key & 7, 2, "only length-delimited fields here");
        let len = varint(b, &mut i) as usize;
        out.push((key >> 3, b[i..i + len].to_vec()));
        i += len;
    }
    out
}

fn join(fields: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (field, value) in fields {
        put_varint(&mut out, field << 3 | 2);
        put_varint(&mut out, value.len() as u64);
        out.extend_from_slice(value);
    }
    out
}

/// Edits the `n`th quote (0-based) of an attestation.
fn edit_quote(evidence: &[u8], n: usize, f: impl FnOnce(&mut Vec<(u64, Vec<u8>)>)) -> Vec<u8> {
    let mut top = split(evidence);
    let (_, quote) = top.iter_mut().filter(|(k, _)| *k == 2).nth(n).unwrap();
    let mut fields = split(quote);
    f(&mut fields);
    *quote = join(&fields);
    join(&top)
}

#[test]
fn vectors_verify_with_expected_values() {
    for (file, nonce) in CASES {
        let evidence = data(file);
        assert_eq!(
            Verifiers::default().detect(&evidence).unwrap(),
            TeeKind::Tpm2,
            "{file}"
        );
        let claims = run(&evidence, &[], Some(nonce), AT).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(claims.tee, TeeKind::Tpm2);
        assert_eq!(claims.report_data.0, nonce.to_vec());
        assert_eq!(claims.tcb_status, TcbStatus::NotReported);
        assert_eq!(claims.details["quoted_banks"], "sha1,sha256,sha384");
        assert_eq!(claims.details["revocation"], "not checked: no CRL given");
        assert!(claims.details["ak_root"].contains("tpm_ek_v1_cloud_host_root"));
        assert_eq!(claims.measurements.len(), 24, "{file}");
        assert_eq!(
            hex::encode(claims.measurement("pcr0").unwrap()),
            "0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf"
        );
        assert_eq!(claims.platform_id.as_ref().map(|p| p.0.len()), Some(34));
        // A different nonce is refused by the registry.
        let err = run(&evidence, &[], Some(&[0x90, 0x0a]), AT).unwrap_err();
        assert!(
            matches!(err, VerifyError::ReportDataMismatch { .. }),
            "{err}"
        );
    }
}

#[test]
fn truncated_and_oversized_attestations_are_unusable() {
    for (file, _) in CASES {
        let evidence = data(file);
        for cut in [1, 2, 5, 100, 300, 2000, evidence.len() - 1] {
            let err = verify(&evidence[..cut]).unwrap_err();
            assert!(err.is_unusable_input(), "{file} cut {cut}: {err}");
        }
        let mut big = evidence.clone();
        big.resize(2 << 20, 0);
        expect_err(verify(&big), file, "accepted", |e| {
            matches!(e, VerifyError::TooLarge { .. })
        });
    }
}

#[test]
fn tampered_quotes_are_refused() {
    for (file, _) in CASES {
        let evidence = data(file);
        for n in 0..3 {
            // The signature, and the quoted bytes (extraData, PCR digest).
            let bad_sig = edit_quote(&evidence, n, |q| q[1].1[20] ^= 1);
            expect_err(verify(&bad_sig), file, "does not verify", |e| {
                matches!(e, VerifyError::Signature(_))
            });
            for offset in [44, 60, 100] {
                let bad_quote = edit_quote(&evidence, n, |q| q[0].1[offset] ^= 1);
                expect_err(verify(&bad_quote), file, "quote #", |e| {
                    matches!(e, VerifyError::Signature(_))
                });
            }
        }
        // Quote 1's signature on quote 2.
        let mut top = split(&evidence);
        let quotes: Vec<usize> = (0..top.len()).filter(|i| top[*i].0 == 2).collect();
        let sig0 = split(&top[quotes[0]].1)[1].clone();
        let mut q1 = split(&top[quotes[1]].1);
        q1[1] = sig0;
        top[quotes[1]].1 = join(&q1);
        expect_err(verify(&join(&top)), file, "quote #2", |e| {
            matches!(e, VerifyError::Signature(_))
        });
        // A PCR value that is not the quoted one: the PCR map entry's value is patched
        // in place (same length) inside the SHA-256 bank.
        let pcr0 = hex::decode("0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf")
            .unwrap();
        let at = evidence
            .windows(32)
            .position(|w| w == pcr0.as_slice())
            .unwrap();
        let mut bad_pcr = evidence.clone();
        bad_pcr[at] ^= 1;
        expect_err(verify(&bad_pcr), file, "PCR digest", |e| {
            matches!(e, VerifyError::Inconsistent(_))
        });
    }
}

#[test]
fn wrong_or_missing_attestation_key_certificate_is_refused() {
    for (file, _) in CASES {
        let evidence = data(file);
        let top = split(&evidence);
        let without: Vec<_> = top.iter().filter(|(k, _)| *k != 6).cloned().collect();
        expect_err(verify(&join(&without)), file, "no AK certificate", |e| {
            matches!(e, VerifyError::MissingCollateral(_))
        });
        // A genuine Google certificate, but not of this AK.
        let mut other = without.clone();
        other.push((6, data("tpm_ek_intermediate_3.crt")));
        expect_err(verify(&join(&other)), file, "ak_pub", |e| {
            matches!(e, VerifyError::Inconsistent(_))
        });
        // A damaged AK certificate signature.
        let mut damaged = top.clone();
        let cert = &mut damaged.iter_mut().find(|(k, _)| *k == 6).unwrap().1;
        let last = cert.len() - 5;
        cert[last] ^= 1;
        expect_err(verify(&join(&damaged)), file, "does not verify", |e| {
            matches!(e, VerifyError::Certificate(X509Error::BadSignature { .. }))
        });
    }
}

#[test]
fn wrong_root_and_expiry_are_refused() {
    let new_root = vec![ParsedCertificate::from_der(&data("gcp_ek_ak_ca_root.crt")).unwrap()];
    let old_root = vec![ParsedCertificate::from_der(&data("tpm_ek_root_1.cer")).unwrap()];
    for (file, _) in CASES {
        let evidence = data(file);
        expect_err(
            run(&evidence, &new_root, None, AT),
            file,
            "no issuer found",
            |e| matches!(e, VerifyError::Certificate(X509Error::UnknownIssuer { .. })),
        );
        run(&evidence, &old_root, None, AT).unwrap();
        expect_err(
            verify_at(&evidence, AK_CERT_NOT_AFTER + time::Duration::days(1)),
            file,
            "not valid at",
            |e| {
                matches!(
                    e,
                    VerifyError::Certificate(X509Error::OutsideValidity { .. })
                )
            },
        );
        expect_err(
            verify_at(&evidence, AK_CERT_NOT_BEFORE - time::Duration::days(1)),
            file,
            "not valid at",
            |e| {
                matches!(
                    e,
                    VerifyError::Certificate(X509Error::OutsideValidity { .. })
                )
            },
        );
    }
}

fn verify_at(evidence: &[u8], at: OffsetDateTime) -> Result<Claims, VerifyError> {
    run(evidence, &[], None, at)
}
