//! SEV-SNP, Azure SNP vTPM and GCE vTPM verification throughput on the real fixtures,
//! beside the cost of the raw signature checks underneath (aws-lc-rs).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use time::macros::datetime;
use veritee_attest::{ParsedCertificate, Verifier, VerifyInput};
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_verify::azure::AzureSnpVtpmVerifier;
use veritee_verify::snp::report::{SIGNED_LEN, SnpReport};
use veritee_verify::snp::{SnpVerifier, verify_report};
use veritee_verify::tpm::Tpm2Verifier;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let report = data("snp/test-report.bin");
    let vcek_der = data("snp/test-vcek.der");
    let vcek = ParsedCertificate::from_der(&vcek_der).unwrap();
    let chain = ParsedCertificate::from_pem_chain(&data("snp/milan_ask_ark_asvk.pem")).unwrap();
    let ask = chain
        .iter()
        .find(|c| c.subject().contains("CN=SEV-Milan"))
        .unwrap()
        .clone();
    let ark = chain
        .iter()
        .find(|c| c.subject().contains("CN=ARK-Milan"))
        .unwrap()
        .clone();
    let at = datetime!(2026-07-01 00:00 UTC);
    let collateral = vec![vcek_der.clone()];

    let mut g = c.benchmark_group("snp");
    g.bench_function("verify, VCEK parsed each time", |b| {
        b.iter(|| {
            SnpVerifier
                .verify(&VerifyInput {
                    evidence: black_box(&report),
                    collateral: &collateral,
                    trust_anchors: &[],
                    at,
                })
                .unwrap()
        })
    });
    g.bench_function("verify, VCEK already parsed", |b| {
        let input = VerifyInput {
            evidence: &report,
            collateral: &[],
            trust_anchors: &[],
            at,
        };
        b.iter(|| verify_report(black_box(&report), std::slice::from_ref(&vcek), &input).unwrap())
    });
    let parsed = SnpReport::parse(&report).unwrap();
    g.bench_function("raw ECDSA P-384 report signature", |b| {
        b.iter(|| {
            sign::verify(
                VerificationScheme::EcdsaP384Sha384Fixed,
                vcek.public_key_bits(),
                black_box(&report[..SIGNED_LEN]),
                &parsed.signature,
            )
            .unwrap()
        })
    });
    g.bench_function("raw RSA-PSS-4096 VCEK<-ASK", |b| {
        b.iter(|| black_box(&vcek).verify_issued_by(&ask).unwrap())
    });
    g.bench_function("raw RSA-PSS-4096 ASK<-ARK", |b| {
        b.iter(|| black_box(&ask).verify_issued_by(&ark).unwrap())
    });
    g.bench_function("parse VCEK certificate", |b| {
        b.iter(|| ParsedCertificate::from_der(black_box(&vcek_der)).unwrap())
    });
    g.finish();

    let azure = data("azure/evidence-v1.json");
    let mut g = c.benchmark_group("azure-snp-vtpm");
    g.bench_function("verify evidence (VCEK embedded)", |b| {
        b.iter(|| {
            AzureSnpVtpmVerifier
                .verify(&VerifyInput {
                    evidence: black_box(&azure),
                    collateral: &[],
                    trust_anchors: &[],
                    at,
                })
                .unwrap()
        })
    });
    g.finish();

    let gce = data("tpm/gce-cos-85-nonce9009.pb");
    let ak_cert = ParsedCertificate::from_der(&{
        // The AK certificate is the attestation's last field (6).
        let cert_len = 1340;
        gce[gce.len() - cert_len..].to_vec()
    })
    .unwrap();
    let mut g = c.benchmark_group("tpm2-gce");
    g.bench_function("verify attestation (3 quotes)", |b| {
        b.iter(|| {
            Tpm2Verifier
                .verify(&VerifyInput {
                    evidence: black_box(&gce),
                    collateral: &[],
                    trust_anchors: &[],
                    at: datetime!(2022-01-01 00:00 UTC),
                })
                .unwrap()
        })
    });
    let intermediate = ParsedCertificate::from_der(&data("tpm/tpm_ek_intermediate_2.crt")).unwrap();
    g.bench_function("raw RSA PKCS#1 SHA-256 AK cert<-intermediate", |b| {
        b.iter(|| black_box(&ak_cert).verify_issued_by(&intermediate).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
