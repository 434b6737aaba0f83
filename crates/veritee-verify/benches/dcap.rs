//! DCAP quote verification throughput and the raw aws-lc-rs cost of the ECDSA P-256
//! verifications underneath. A first verification checks 11 (TCB signing certificate,
//! root CA CRL twice for the two chains plus once for the anchor's own revocation, TCB
//! info, QE identity, PCK CA certificate, PCK certificate, PCK CRL, QE report, quote);
//! every later one of a quote from the same platform checks only the quote's own
//! signature, the rest being remembered collateral. Measured: a verification through
//! `Verifier::verify` (collateral files, parsed forms and signatures remembered), the
//! same from nothing remembered, and with collateral parsed by the caller.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::{Verifier, VerifyInput};
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_verify::dcap::{DcapCollateral, DcapVerifier, Quote};

/// ECDSA verifications in one quote verification.
const SIGNATURES_PER_QUOTE: usize = 11;

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/dcap/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bench_kind(
    c: &mut Criterion,
    name: &str,
    verifier: DcapVerifier,
    quote: &str,
    collateral: &str,
    at: OffsetDateTime,
) {
    let quote = read(quote);
    let collateral_bytes = vec![read(collateral)];
    let parsed = DcapCollateral::parse(&collateral_bytes[0]).unwrap();
    verifier
        .verify_with_collateral(&quote, &parsed, &[], at)
        .unwrap();

    c.bench_function(
        &format!("dcap/{name}/verify, collateral parsed once"),
        |b| {
            b.iter(|| {
                verifier
                    .verify_with_collateral(black_box(&quote), &parsed, &[], at)
                    .unwrap()
            })
        },
    );
    let input = VerifyInput {
        evidence: &quote,
        collateral: &collateral_bytes,
        trust_anchors: &[],
        at,
    };
    c.bench_function(&format!("dcap/{name}/verify, collateral remembered"), |b| {
        b.iter(|| verifier.verify(black_box(&input)).unwrap())
    });
    c.bench_function(
        &format!("dcap/{name}/verify, first time (nothing remembered)"),
        |b| {
            b.iter(|| {
                sign::forget_collateral_signatures();
                verifier.verify_with_collateral(
                    black_box(&quote),
                    &DcapCollateral::parse(&collateral_bytes[0]).unwrap(),
                    &[],
                    at,
                )
            })
        },
    );
    c.bench_function(&format!("dcap/{name}/collateral parse"), |b| {
        b.iter(|| DcapCollateral::parse(black_box(&collateral_bytes[0])).unwrap())
    });

    let q = Quote::parse(&quote).unwrap();
    let mut key = vec![0x04];
    key.extend_from_slice(&q.attestation_key);
    let (signed, signature) = (q.signed.to_vec(), q.signature);
    c.bench_function(&format!("dcap/{name}/aws-lc ECDSA P-256 verify x1"), |b| {
        b.iter(|| {
            sign::verify(
                VerificationScheme::EcdsaP256Sha256Fixed,
                &key,
                black_box(&signed),
                &signature,
            )
            .unwrap()
        })
    });
    c.bench_function(
        &format!("dcap/{name}/aws-lc ECDSA P-256 verify x{SIGNATURES_PER_QUOTE}"),
        |b| {
            b.iter(|| {
                for _ in 0..SIGNATURES_PER_QUOTE {
                    sign::verify(
                        VerificationScheme::EcdsaP256Sha256Fixed,
                        &key,
                        black_box(&signed),
                        &signature,
                    )
                    .unwrap();
                }
            })
        },
    );
}

fn dcap(c: &mut Criterion) {
    bench_kind(
        c,
        "sgx",
        DcapVerifier::sgx(),
        "sgx_quote",
        "sgx_quote_collateral.json",
        datetime!(2025-07-01 00:00 UTC),
    );
    bench_kind(
        c,
        "tdx",
        DcapVerifier::tdx(),
        "tdx_quote",
        "tdx_quote_collateral.json",
        datetime!(2025-07-01 00:00 UTC),
    );
}

criterion_group!(benches, dcap);
criterion_main!(benches);
