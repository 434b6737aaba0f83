//! Nitro attestation document verification: whole verifications per second, with the
//! trust anchor parsed once or for every verification, beside the cost of the ECDSA
//! P-384 signatures underneath (the document's and its chain's) in aws-lc-rs.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use time::macros::datetime;
use veritee_attest::ParsedCertificate;
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_verify::nitro::{self, NitroVerifier};
use veritee_verify::{Verifier, VerifyInput};

const DOC: &[u8] = include_bytes!("../tests/data/nitro/valid-attestation-doc-bytes");
const CERT_PEM: &[u8] = include_bytes!(
    "../tests/data/nitro/non-debug-cert-containing-attestation-document-18-1-23.pem"
);

fn bench(c: &mut Criterion) {
    let at = datetime!(2022-10-13 08:58:02.136 UTC);
    let anchors = ParsedCertificate::from_pem_chain(nitro::AWS_NITRO_ROOT_G1_PEM).unwrap();
    fn input<'a>(
        evidence: &'a [u8],
        anchors: &'a [ParsedCertificate],
        at: time::OffsetDateTime,
    ) -> VerifyInput<'a> {
        VerifyInput {
            evidence,
            collateral: &[],
            trust_anchors: anchors,
            at,
        }
    }
    NitroVerifier.verify(&input(DOC, &anchors, at)).unwrap();

    let mut group = c.benchmark_group("nitro");
    group.bench_function("verify document, root parsed already", |b| {
        b.iter(|| {
            NitroVerifier
                .verify(&input(black_box(DOC), &anchors, at))
                .unwrap()
        })
    });
    group.bench_function("verify document, root parsed each time", |b| {
        b.iter(|| {
            let anchors =
                ParsedCertificate::from_pem_chain(black_box(nitro::AWS_NITRO_ROOT_G1_PEM)).unwrap();
            NitroVerifier
                .verify(&input(black_box(DOC), &anchors, at))
                .unwrap()
        })
    });
    let cert_at = datetime!(2023-01-18 13:07:19 UTC);
    group.bench_function(
        "verify document in a PEM certificate, root parsed already",
        |b| {
            b.iter(|| {
                NitroVerifier
                    .verify(&VerifyInput {
                        evidence: black_box(CERT_PEM),
                        collateral: &[],
                        trust_anchors: &anchors,
                        at: cert_at,
                    })
                    .unwrap()
            })
        },
    );
    group.bench_function("decode only (CBOR, COSE, payload)", |b| {
        b.iter(|| nitro::unwrap(black_box(DOC)).unwrap())
    });

    // The signatures underneath: the document's ES384 over its Sig_structure, and the
    // four certificate signatures of its chain (leaf <- 3 intermediates <- root).
    let signed = nitro::unwrap(DOC).unwrap().signed;
    let leaf = ParsedCertificate::from_der(&signed.document.certificate).unwrap();
    let to_be_signed = signed.cose.to_be_signed();
    group.bench_function(
        "raw ECDSA P-384 verify: document signature (aws-lc-rs)",
        |b| {
            b.iter(|| {
                sign::verify(
                    VerificationScheme::EcdsaP384Sha384Fixed,
                    leaf.public_key_bits(),
                    black_box(&to_be_signed),
                    &signed.cose.signature,
                )
                .unwrap()
            })
        },
    );
    let mut path: Vec<ParsedCertificate> = vec![leaf.clone()];
    path.extend(
        signed
            .document
            .cabundle
            .iter()
            .rev()
            .map(|d| ParsedCertificate::from_der(d).unwrap()),
    );
    group.bench_function(
        "raw ECDSA P-384 verify: document + 4 chain signatures",
        |b| {
            b.iter(|| {
                sign::verify(
                    VerificationScheme::EcdsaP384Sha384Fixed,
                    leaf.public_key_bits(),
                    black_box(&to_be_signed),
                    &signed.cose.signature,
                )
                .unwrap();
                for pair in path.windows(2) {
                    pair[0].verify_issued_by(&pair[1]).unwrap();
                }
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
