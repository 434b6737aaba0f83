//! NVIDIA H100 report verification: whole verifications per second with the report
//! and certificate chain parsed already or parsed each time, beside the cost of the
//! ECDSA P-384 signatures underneath (the report's and its chain's) in aws-lc-rs.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use time::macros::datetime;
use veritee_attest::ParsedCertificate;
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_verify::nvidia::report::SpdmReport;
use veritee_verify::nvidia::{self, NvidiaVerifier};
use veritee_verify::{Verifier, VerifyInput};

const REPORT_HEX: &str = include_str!("../tests/data/nvidia/hopperAttestationReport.txt");
const CHAIN_PEM: &[u8] = include_bytes!("../tests/data/nvidia/hopperCertChain.txt");

fn bench(c: &mut Criterion) {
    let at = datetime!(2025-01-01 0:00 UTC);
    let report_bytes = hex::decode(REPORT_HEX.trim()).unwrap();
    let collateral = vec![CHAIN_PEM.to_vec()];
    let anchors = nvidia::default_anchors().unwrap();
    let report = SpdmReport::parse(&report_bytes).unwrap();
    let chain = ParsedCertificate::from_pem_chain(CHAIN_PEM).unwrap();
    NvidiaVerifier
        .verify_report(&report, &chain, anchors, at)
        .unwrap();

    let mut group = c.benchmark_group("nvidia");
    group.bench_function("verify report, report and chain parsed already", |b| {
        b.iter(|| {
            NvidiaVerifier
                .verify_report(black_box(&report), &chain, anchors, at)
                .unwrap()
        })
    });
    group.bench_function(
        "verify report, report and chain PEM parsed each time",
        |b| {
            b.iter(|| {
                NvidiaVerifier
                    .verify(&VerifyInput {
                        evidence: black_box(&report_bytes),
                        collateral: &collateral,
                        trust_anchors: &[],
                        at,
                    })
                    .unwrap()
            })
        },
    );
    group.bench_function("parse report only", |b| {
        b.iter(|| SpdmReport::parse(black_box(&report_bytes)).unwrap())
    });

    // The signatures underneath: the report's, and the four of the chain (leaf <- BROM
    // <- provisioner ICA <- GH100 identity <- device identity CA).
    group.bench_function(
        "raw ECDSA P-384 verify: report signature (aws-lc-rs)",
        |b| {
            b.iter(|| {
                sign::verify(
                    VerificationScheme::EcdsaP384Sha384Fixed,
                    chain[0].public_key_bits(),
                    black_box(&report.signed_bytes),
                    &report.signature,
                )
                .unwrap()
            })
        },
    );
    group.bench_function("raw ECDSA P-384 verify: report + 4 chain signatures", |b| {
        b.iter(|| {
            sign::verify(
                VerificationScheme::EcdsaP384Sha384Fixed,
                chain[0].public_key_bits(),
                black_box(&report.signed_bytes),
                &report.signature,
            )
            .unwrap();
            for pair in chain.windows(2) {
                pair[0].verify_issued_by(&pair[1]).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
