//! Simulated TEE: evidence generation and verification per second, policy evaluation,
//! beside the raw aws-lc-rs ECDSA P-384 operations underneath, in the same run.
//!
//! A first verification checks 7 ECDSA P-384 signatures (report; machine and
//! platform-CA certificates; two CRLs; TCB signing certificate; TCB info), so its floor
//! is about 7x the raw verify below. The six over collateral are remembered once
//! verified (`sign::verify_collateral`), so every later verification of the same
//! machine's evidence pays for the report's signature and for parsing: its floor is 1x.
//! Generation signs once.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use time::OffsetDateTime;
use veritee_attest::{ParsedCertificate, ReportData};
use veritee_platform::sim::{EnclaveImage, SimMachine, SimVendor};
use veritee_policy::AppraisalPolicy;
use veritee_verify::{Verifiers, VerifyRequest};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = OffsetDateTime::now_utc();
    let mut vendor = SimVendor::init(&dir.path().join("vendor"), now).expect("vendor");
    let machine =
        SimMachine::init(&dir.path().join("machine"), &mut vendor, None, now).expect("machine");
    let enclave = machine
        .launch(&EnclaveImage::unsigned(b"bench enclave", 1, 1, false))
        .expect("launch");
    let anchors = veritee_attest::TrustAnchors::untyped(
        ParsedCertificate::from_pem_chain(&vendor.root_pem().expect("root")).expect("anchor"),
    );
    let report_data = ReportData([7; 64]);
    let evidence = enclave.evidence_at(&report_data, now).expect("evidence");
    let verifiers = Verifiers::default();
    let request = VerifyRequest {
        evidence: &evidence,
        tee: None,
        collateral: &[],
        trust_anchors: &anchors,
        expected_report_data: Some(&report_data.0),
        at: now,
    };
    let claims = verifiers.verify(&request).expect("verifies");
    let policy = AppraisalPolicy::parse(&format!(
        "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\nmax_evidence_age = \"10m\"\n[measurements]\nmeasurement = [\"{}\"]\n",
        hex::encode(claims.measurement("measurement").unwrap_or_default())
    ))
    .expect("policy");

    let mut g = c.benchmark_group("simulated");
    g.bench_function("generate_evidence", |b| {
        b.iter(|| enclave.evidence_at(black_box(&report_data), now))
    });
    g.bench_function("verify_evidence, collateral remembered", |b| {
        b.iter(|| verifiers.verify(black_box(&request)))
    });
    g.bench_function("verify_evidence, first time", |b| {
        b.iter(|| {
            veritee_crypto::sign::forget_collateral_signatures();
            verifiers.verify(black_box(&request))
        })
    });
    g.bench_function("evaluate_policy", |b| {
        b.iter(|| policy.evaluate(black_box(&claims), now))
    });
    g.finish();

    // Baseline: the raw primitive, straight from aws-lc-rs.
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).expect("key");
    let message = [0u8; 256];
    let sig = pair.sign(&rng, &message).expect("sign");
    let public = UnparsedPublicKey::new(
        &signature::ECDSA_P384_SHA384_FIXED,
        pair.public_key().as_ref().to_vec(),
    );
    let mut g = c.benchmark_group("baseline_aws_lc_rs");
    g.bench_function("ecdsa_p384_sign", |b| {
        b.iter(|| pair.sign(&rng, black_box(&message)))
    });
    g.bench_function("ecdsa_p384_verify", |b| {
        b.iter(|| public.verify(black_box(&message), sig.as_ref()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
