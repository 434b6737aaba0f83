//! verify_enrollment against evidence made by swtpm and tpm2-tools
//! (tests/data/make-fixtures.sh): accepted as made, and refused, with its reason named,
//! when any part is from another TPM, another key, another nonce, or tampered with.

use std::path::PathBuf;
use time::OffsetDateTime;
use time::macros::datetime;
use veritee_attest::{AnchorSource, ParsedCertificate, TeeKind};
use veritee_tpm::TpmError;
use veritee_tpm::enrollment::{TpmEnrollmentEvidence, VerifiedTpmTarget, verify_enrollment};
use veritee_tpm::policy::object_name;

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pem(name: &str) -> Vec<ParsedCertificate> {
    ParsedCertificate::from_pem_chain(&data(name)).unwrap()
}

/// After the fixtures' certificates start (swtpm's local CA issues them from the day
/// it runs, valid until 9999).
const AT: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

fn nonce() -> Vec<u8> {
    data("nonce.bin")
}

fn good() -> TpmEnrollmentEvidence {
    TpmEnrollmentEvidence {
        ek_certificate: data("ek.der"),
        ek_public: data("ek.pub"),
        ak_public: data("ak.pub"),
        storage_public: data("storage.pub"),
        certify_attest: data("certify.attest"),
        certify_signature: data("certify.sig"),
        quote_attest: data("quote.attest"),
        quote_signature: data("quote.sig"),
        pcr_values: data("pcrs.bin").chunks(32).map(<[u8]>::to_vec).collect(),
    }
}

fn verify(evidence: &TpmEnrollmentEvidence) -> Result<VerifiedTpmTarget, TpmError> {
    verify_enrollment(
        evidence,
        &nonce(),
        &pem("ca-root.pem"),
        &pem("ca-intermediate.pem"),
        AT,
    )
}

/// Verifies, expecting a refusal; returns its message.
fn refused(evidence: &TpmEnrollmentEvidence) -> (TpmError, String) {
    match verify(evidence) {
        Ok(_) => panic!("accepted"),
        Err(e) => {
            let message = e.to_string();
            (e, message)
        }
    }
}

#[test]
fn evidence_from_swtpm_is_accepted_with_its_claims() {
    let evidence = good();
    let target = verify(&evidence).unwrap();
    let claims = &target.claims;
    assert_eq!(claims.tee, TeeKind::Tpm2);
    assert!(!claims.simulated);
    assert!(!claims.debug);
    assert_eq!(claims.report_data.0, nonce());
    let names: Vec<&str> = claims.measurements.keys().map(String::as_str).collect();
    assert_eq!(names, ["pcr0", "pcr1", "pcr7", "pcr8"]);
    assert_eq!(
        claims.measurement("pcr8"),
        Some(&evidence.pcr_values[3][..])
    );
    assert_ne!(claims.measurement("pcr8"), Some(&[0u8; 32][..]));
    let ek_cert = ParsedCertificate::from_der(&evidence.ek_certificate).unwrap();
    assert_eq!(
        claims.platform_id.as_ref().unwrap().0,
        veritee_crypto::digest::sha256(&ek_cert.spki_der().unwrap())
    );
    let anchor = claims.trust_anchor.as_ref().unwrap();
    assert_eq!(anchor.kind, TeeKind::Tpm2);
    assert_eq!(anchor.source, AnchorSource::Given);
    assert!(
        anchor.subject.contains("swtpm-localca-rootca"),
        "{anchor:?}"
    );
    assert_eq!(claims.details["ek_certificate_issuer"], ek_cert.issuer());
    assert_eq!(claims.details["pcr_selection"], "sha256:0,1,7,8");
    assert_eq!(
        claims.details["storage_key_name"],
        hex::encode(object_name(&evidence.storage_public).unwrap())
    );
    assert_eq!(target.ak_name, object_name(&evidence.ak_public).unwrap());
    assert_eq!(claims.details["ak_name"], hex::encode(&target.ak_name));
    assert_eq!(target.ek_public, evidence.ek_public);
    assert_eq!(target.storage_public, evidence.storage_public);
    // The storage key takes RSA-OAEP-SHA256 encryption.
    let sealed =
        veritee_crypto::rsa::encrypt_oaep_sha256(&target.storage_key_spki, b"workload seed")
            .unwrap();
    assert_eq!(sealed.len(), 256);
}

#[test]
fn evidence_round_trips_through_cbor() {
    let evidence = good();
    let mut cbor = Vec::new();
    ciborium::into_writer(&evidence, &mut cbor).unwrap();
    let back: TpmEnrollmentEvidence = ciborium::from_reader(&cbor[..]).unwrap();
    assert_eq!(back, evidence);
    // Byte strings, not arrays of integers.
    assert!(cbor.len() < 3300, "{} bytes", cbor.len());
    verify(&back).unwrap();
}

#[test]
fn ek_certificate_of_another_ca_is_refused() {
    let mut evidence = good();
    evidence.ek_certificate = data("other-ca-ek.der");
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::EkCertificate(_)), "{message}");

    // And the genuine evidence against the other CA only.
    let e = verify_enrollment(&good(), &nonce(), &pem("other-ca-root.pem"), &[], AT).unwrap_err();
    assert!(matches!(e, TpmError::EkCertificate(_)), "{e}");
    // Without the intermediate, the chain does not reach the root either.
    let e = verify_enrollment(&good(), &nonce(), &pem("ca-root.pem"), &[], AT).unwrap_err();
    assert!(matches!(e, TpmError::EkCertificate(_)), "{e}");
    // Before the certificates were issued.
    let e = verify_enrollment(
        &good(),
        &nonce(),
        &pem("ca-root.pem"),
        &pem("ca-intermediate.pem"),
        datetime!(2000-01-01 0:00 UTC),
    )
    .unwrap_err();
    assert!(matches!(e, TpmError::EkCertificate(_)), "{e}");
}

#[test]
fn ek_public_must_be_the_certified_key_and_template() {
    let mut evidence = good();
    evidence.ek_public = data("storage.pub");
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::EkNotCertified), "{message}");

    // Same key, other attributes (noDA added): not the template.
    let mut evidence = good();
    evidence.ek_public[7] |= 0x04;
    let (e, message) = refused(&evidence);
    assert!(
        matches!(e, TpmError::KeyAttributes { key: "EK", .. }),
        "{message}"
    );
    assert!(message.contains("template"), "{message}");
}

#[test]
fn exportable_storage_key_is_refused() {
    let mut evidence = good();
    evidence.storage_public = data("exportable.pub");
    evidence.certify_attest = data("exportable.attest");
    evidence.certify_signature = data("exportable.sig");
    let (e, message) = refused(&evidence);
    assert!(
        matches!(
            e,
            TpmError::KeyAttributes {
                key: "storage key",
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("exportable"), "{message}");
}

#[test]
fn storage_key_with_user_with_auth_is_refused() {
    let mut evidence = good();
    evidence.storage_public = data("userwithauth.pub");
    evidence.certify_attest = data("userwithauth.attest");
    evidence.certify_signature = data("userwithauth.sig");
    let (_, message) = refused(&evidence);
    assert!(message.contains("userWithAuth"), "{message}");
}

#[test]
fn storage_key_policy_over_other_pcrs_is_refused() {
    let mut evidence = good();
    evidence.storage_public = data("otherpolicy.pub");
    evidence.certify_attest = data("otherpolicy.attest");
    evidence.certify_signature = data("otherpolicy.sig");
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::PolicyMismatch { .. }), "{message}");
}

#[test]
fn certification_of_another_key_is_refused() {
    let mut evidence = good();
    evidence.certify_attest = data("exportable.attest");
    evidence.certify_signature = data("exportable.sig");
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::CertifiedOtherKey { .. }), "{message}");
}

#[test]
fn wrong_nonce_is_refused() {
    for other in [&b"another nonce"[..], &[0u8; 32][..]] {
        let e = verify_enrollment(
            &good(),
            other,
            &pem("ca-root.pem"),
            &pem("ca-intermediate.pem"),
            AT,
        )
        .unwrap_err();
        assert!(
            matches!(e, TpmError::WrongNonce { what: "quote", .. }),
            "{e}"
        );
    }
    let e = verify_enrollment(
        &good(),
        &[],
        &pem("ca-root.pem"),
        &pem("ca-intermediate.pem"),
        AT,
    )
    .unwrap_err();
    assert!(matches!(e, TpmError::InvalidInput(_)), "{e}");
    let e = verify_enrollment(
        &good(),
        &[7; 65],
        &pem("ca-root.pem"),
        &pem("ca-intermediate.pem"),
        AT,
    )
    .unwrap_err();
    assert!(
        matches!(e, TpmError::Malformed { what: "nonce", .. }),
        "{e}"
    );
}

#[test]
fn pcr_values_not_matching_the_digest_are_refused() {
    let mut evidence = good();
    evidence.pcr_values[3][0] ^= 1;
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::PcrValues(_)), "{message}");

    let mut evidence = good();
    evidence.pcr_values.pop();
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::PcrValues(_)), "{message}");

    let mut evidence = good();
    evidence.pcr_values.swap(0, 3);
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::PcrValues(_)), "{message}");

    let mut evidence = good();
    evidence.pcr_values[0].push(0);
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::PcrValues(_)), "{message}");
}

#[test]
fn swapped_parts_are_refused() {
    // Each signature on the other attestation.
    let mut evidence = good();
    evidence.certify_signature = evidence.quote_signature.clone();
    let (e, message) = refused(&evidence);
    assert!(
        matches!(
            e,
            TpmError::Signature {
                what: "certification",
                ..
            }
        ),
        "{message}"
    );
    let mut evidence = good();
    evidence.quote_signature = evidence.certify_signature.clone();
    let (e, message) = refused(&evidence);
    assert!(
        matches!(e, TpmError::Signature { what: "quote", .. }),
        "{message}"
    );

    // The attestations exchanged with their signatures: genuine, but of the wrong type.
    let mut evidence = good();
    std::mem::swap(&mut evidence.quote_attest, &mut evidence.certify_attest);
    std::mem::swap(
        &mut evidence.quote_signature,
        &mut evidence.certify_signature,
    );
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::Malformed { .. }), "{message}");
    assert!(message.contains("TPM_ST_ATTEST_QUOTE"), "{message}");

    // The EK as AK.
    let mut evidence = good();
    evidence.ak_public = evidence.ek_public.clone();
    let (e, message) = refused(&evidence);
    assert!(
        matches!(e, TpmError::KeyAttributes { key: "AK", .. }),
        "{message}"
    );

    // The storage key as AK.
    let mut evidence = good();
    evidence.ak_public = evidence.storage_public.clone();
    let (e, message) = refused(&evidence);
    assert!(
        matches!(e, TpmError::KeyAttributes { key: "AK", .. }),
        "{message}"
    );

    // The AK as storage key.
    let mut evidence = good();
    evidence.storage_public = evidence.ak_public.clone();
    let (e, message) = refused(&evidence);
    assert!(matches!(e, TpmError::CertifiedOtherKey { .. }), "{message}");
}

/// Every byte of every part, flipped: refused, or (for the AK's public area, which only
/// the MakeCredential challenge binds to the TPM) accepted under another AK name, which
/// that challenge then fails.
#[test]
fn every_byte_tampered_is_refused() {
    let original = good();
    let original_ak_name = object_name(&original.ak_public).unwrap();
    type Field = fn(&mut TpmEnrollmentEvidence) -> &mut Vec<u8>;
    let fields: [(&str, Field); 8] = [
        ("ek_certificate", |e| &mut e.ek_certificate),
        ("ek_public", |e| &mut e.ek_public),
        ("ak_public", |e| &mut e.ak_public),
        ("storage_public", |e| &mut e.storage_public),
        ("certify_attest", |e| &mut e.certify_attest),
        ("certify_signature", |e| &mut e.certify_signature),
        ("quote_attest", |e| &mut e.quote_attest),
        ("quote_signature", |e| &mut e.quote_signature),
    ];
    let anchors = pem("ca-root.pem");
    let intermediates = pem("ca-intermediate.pem");
    let nonce = nonce();
    let mut accepted = Vec::new();
    for (name, field) in fields {
        let len = field(&mut good()).len();
        for i in 0..len {
            let mut evidence = original.clone();
            field(&mut evidence)[i] ^= 0x01;
            match verify_enrollment(&evidence, &nonce, &anchors, &intermediates, AT) {
                Err(_) => {}
                Ok(target) if name == "ak_public" => {
                    assert_ne!(target.ak_name, original_ak_name, "{name}[{i}]")
                }
                Ok(_) => accepted.push(format!("{name}[{i}]")),
            }
        }
    }
    assert!(accepted.is_empty(), "flipped, still accepted: {accepted:?}");
    for pcr in 0..original.pcr_values.len() {
        for i in 0..32 {
            let mut evidence = original.clone();
            evidence.pcr_values[pcr][i] ^= 0x80;
            assert!(
                matches!(verify(&evidence), Err(TpmError::PcrValues(_))),
                "PCR value {pcr} byte {i}"
            );
        }
    }
}

#[test]
fn truncated_and_oversized_parts_are_refused_by_name() {
    type Field = fn(&mut TpmEnrollmentEvidence) -> &mut Vec<u8>;
    let fields: [Field; 8] = [
        |e| &mut e.ek_certificate,
        |e| &mut e.ek_public,
        |e| &mut e.ak_public,
        |e| &mut e.storage_public,
        |e| &mut e.certify_attest,
        |e| &mut e.certify_signature,
        |e| &mut e.quote_attest,
        |e| &mut e.quote_signature,
    ];
    for field in fields {
        let len = field(&mut good()).len();
        for cut in [0, 1, 2, 4, 10, len / 2, len - 1] {
            let mut evidence = good();
            field(&mut evidence).truncate(cut);
            let (_, message) = refused(&evidence);
            assert!(!message.is_empty());
        }
        // One byte more: trailing data.
        let mut evidence = good();
        field(&mut evidence).push(0);
        refused(&evidence);
        // Far too long.
        let mut evidence = good();
        field(&mut evidence).resize(100_000, 0xff);
        let (e, message) = refused(&evidence);
        assert!(matches!(e, TpmError::Malformed { .. }), "{message}");
    }
    let mut evidence = good();
    evidence.pcr_values = vec![vec![0; 32]; 1000];
    let (e, message) = refused(&evidence);
    assert!(
        matches!(
            e,
            TpmError::Malformed {
                what: "PCR values",
                ..
            }
        ),
        "{message}"
    );
}

#[test]
fn garbage_cbor_does_not_decode_to_evidence() {
    for bytes in [&b""[..], &[0xa0], &[0xbf, 0xff], &[0x9f; 100]] {
        assert!(ciborium::from_reader::<TpmEnrollmentEvidence, _>(bytes).is_err());
    }
}

/// What tpm2-tools' trial session (PolicyPCR) made for the storage key is what
/// policy.rs computes from the PCR list and values.
#[test]
fn policy_pcr_digest_matches_tpm2_tools() {
    use veritee_tpm::policy::{pcr_selection_sha256, policy_pcr_digest};
    use veritee_verify::tpm::structures::{QuoteAttest, TpmPublic};
    let selection = pcr_selection_sha256(&[0, 1, 7, 8]);
    let quote = QuoteAttest::parse(&data("quote.attest")).unwrap();
    assert_eq!(quote.pcr_selection_raw, selection);
    let digest = veritee_crypto::digest::sha256(&data("pcrs.bin"));
    assert_eq!(quote.pcr_digest, digest);
    let storage = TpmPublic::parse(&data("storage.pub")).unwrap();
    assert_eq!(storage.auth_policy, policy_pcr_digest(&selection, &digest));
}

#[test]
fn a_verified_ek_is_remembered_until_it_turns_invalid() {
    use veritee_tpm::cache::VerifiedEkCache;
    use veritee_tpm::enrollment::verify_enrollment_cached;
    let mut cache = VerifiedEkCache::default();
    let anchors = pem("ca-root.pem");
    let intermediates = pem("ca-intermediate.pem");
    let check = |cache: &mut VerifiedEkCache,
                 evidence: &TpmEnrollmentEvidence,
                 anchors: &[ParsedCertificate],
                 intermediates: &[ParsedCertificate],
                 at: OffsetDateTime| {
        verify_enrollment_cached(evidence, &nonce(), anchors, intermediates, &[], at, cache)
    };
    let first = check(&mut cache, &good(), &anchors, &intermediates, AT).unwrap();
    assert_eq!((cache.len(), cache.hits()), (1, 0));
    // Again: the chain is not walked (no intermediates given), the claims are the same.
    let again = check(&mut cache, &good(), &anchors, &[], AT).unwrap();
    assert_eq!(cache.hits(), 1);
    assert_eq!(again.claims, first.claims);
    // A cached EK does not excuse the rest: a quote for another nonce is refused.
    let mut tampered = good();
    tampered.quote_attest[40] ^= 1;
    assert!(check(&mut cache, &tampered, &anchors, &[], AT).is_err());
    // Its anchor no longer given: the entry is purged, and the chain (to the other CA)
    // is refused by name.
    let refused = check(&mut cache, &good(), &pem("other-ca-root.pem"), &[], AT).unwrap_err();
    assert!(matches!(refused, TpmError::EkCertificate(_)), "{refused}");
    assert_eq!((cache.len(), cache.purged()), (0, 1));
    // Remembered again, then asked about a time before the chain is valid: purged, and
    // the fresh verification says why.
    check(&mut cache, &good(), &anchors, &intermediates, AT).unwrap();
    let early = datetime!(2020-01-01 0:00 UTC);
    let refused = check(&mut cache, &good(), &anchors, &intermediates, early).unwrap_err();
    assert!(matches!(refused, TpmError::EkCertificate(_)), "{refused}");
    assert_eq!((cache.len(), cache.purged()), (0, 2));
}

#[test]
fn a_quote_over_a_resettable_pcr_is_refused() {
    let mut evidence = good();
    evidence.quote_attest = data("quote16.attest");
    evidence.quote_signature = data("quote16.sig");
    evidence.pcr_values = data("pcrs16.bin").chunks(32).map(<[u8]>::to_vec).collect();
    let refused = verify(&evidence).unwrap_err();
    assert!(
        matches!(&refused, TpmError::PcrSelection(reason) if reason.contains("PCR 16")),
        "{refused}"
    );
}
