//! Key versions (flow 3): rotation on demand and on the schedule a key's metadata set,
//! the version every ciphertext and signature names, the minimum the owner raises and
//! never lowers, and versions kept across a restart.

mod common;

use common::import::*;
use common::*;
use std::sync::atomic::{AtomicI64, Ordering};
use veritee_channel::client::TenantKey;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_enclave::EnclaveService;
use veritee_import::keys::{KeyRef, KeyType, Operation};

const CODE: &[u8] = b"the node enclave, version 1";

/// A clock for the enclave that the test moves forward.
static AHEAD_SECS: AtomicI64 = AtomicI64::new(0);
fn moved_clock() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::seconds(AHEAD_SECS.load(Ordering::SeqCst))
}

fn import(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    (id, key_type, ops): (&str, KeyType, &[Operation]),
    material: &SecretBytes,
    rotate_after_secs: Option<u64>,
) {
    let keys = node_keys(service, host);
    let provider = HpkeKeyPair::generate();
    let mut meta = metadata_for(&keys, &provider, tenant, ("p", id), key_type, ops, material);
    meta.rotate_after_secs = rotate_after_secs;
    let import = seal_import(&keys, &provider, tenant, meta, material);
    send_import(service, host, tenant, &import).expect("import");
}

fn ciphertext(outcome: CryptoOutcome) -> Vec<u8> {
    match outcome {
        CryptoOutcome::Ciphertext(ct) => ct,
        other => panic!("no ciphertext: {other:?}"),
    }
}

fn version_of(ct: &[u8]) -> u32 {
    veritee_import::ciphertext::key_version(ct).expect("version")
}

#[test]
fn versions_rotate_on_demand_and_on_schedule_and_the_minimum_only_rises() {
    let world = World::new(&["m1"]);
    let service = world.enclave_with("m1", CODE, |s| s.with_host_clock(moved_clock));
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    create_partition(&service, &mut host, &alice, "p");
    use Operation::*;
    let aes_ops = [Encrypt, Decrypt];
    import(
        &service,
        &mut host,
        &alice,
        ("aes", KeyType::Aes256Gcm, &aes_ops),
        &SecretBytes::copy_from(&[1u8; 32]),
        None,
    );
    import(
        &service,
        &mut host,
        &alice,
        ("hourly", KeyType::Aes256Gcm, &aes_ops),
        &SecretBytes::copy_from(&[2u8; 32]),
        Some(3600),
    );
    let signer =
        veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256)
            .expect("key");
    let ec = signer.to_pkcs8().expect("pkcs8");
    import(
        &service,
        &mut host,
        &alice,
        ("signer", KeyType::EcdsaP256, &[Sign, Verify]),
        &ec,
        None,
    );
    let mut s = open_session(&world, &service, &mut host, &alice);
    let aes = KeyRef::new("p", "aes");
    let encrypt = |key: &KeyRef| CryptoOp::Encrypt {
        key: key.clone(),
        plaintext: SecretBytes::copy_from(b"payload"),
        aad: vec![],
    };
    let decrypt = |key: &KeyRef, ct: &[u8]| CryptoOp::Decrypt {
        key: key.clone(),
        ciphertext: ct.to_vec(),
        aad: vec![],
    };

    // On demand: a new version; new ciphertexts name it, old ones still open.
    let v1 = ciphertext(one(&mut s, &service, &mut host, encrypt(&aes)));
    assert_eq!(version_of(&v1), 1);
    assert!(matches!(
        one(
            &mut s,
            &service,
            &mut host,
            CryptoOp::Rotate { key: aes.clone() }
        ),
        CryptoOutcome::Rotated {
            version: 2,
            public_key: None
        }
    ));
    let v2 = ciphertext(one(&mut s, &service, &mut host, encrypt(&aes)));
    assert_eq!(version_of(&v2), 2);
    for ct in [&v1, &v2] {
        assert!(
            matches!(one(&mut s, &service, &mut host, decrypt(&aes, ct)), CryptoOutcome::Plaintext(p) if p.expose() == b"payload")
        );
    }
    // A ciphertext whose header names a version the key does not have.
    let mut v7 = v2.clone();
    v7[1..5].copy_from_slice(&7u32.to_be_bytes());
    let (code, message) = refusal(one(&mut s, &service, &mut host, decrypt(&aes, &v7)));
    assert_eq!(code, "not_found", "{message}");
    assert!(message.contains("has no version 7"), "{message}");

    // The minimum rises; it never passes the newest and never goes back down.
    let minimum = |version| CryptoOp::SetMinimumVersion {
        key: aes.clone(),
        version,
    };
    let (_, message) = refusal(one(&mut s, &service, &mut host, minimum(5)));
    assert!(message.contains("cannot pass the newest"), "{message}");
    assert!(matches!(
        one(&mut s, &service, &mut host, minimum(2)),
        CryptoOutcome::Done
    ));
    let (code, message) = refusal(one(&mut s, &service, &mut host, decrypt(&aes, &v1)));
    assert_eq!(code, "forbidden", "{message}");
    assert!(
        message.contains("version 1 is below the minimum version 2"),
        "{message}"
    );
    let (_, message) = refusal(one(&mut s, &service, &mut host, minimum(1)));
    assert!(message.contains("never goes back down"), "{message}");

    // A signing key: the rotation answers the new public key; each signature names the
    // version that made it, and verifies under that version only.
    let signer_ref = KeyRef::new("p", "signer");
    let sign = |s: &mut Session, host: &mut MemoryHost| match one(
        s,
        &service,
        host,
        CryptoOp::Sign {
            key: signer_ref.clone(),
            message: b"m".to_vec(),
        },
    ) {
        CryptoOutcome::Signature { signature, version } => (signature, version),
        other => panic!("{other:?}"),
    };
    let (old_sig, old_version) = sign(&mut s, &mut host);
    assert_eq!(old_version, 1);
    let CryptoOutcome::Rotated {
        version: 2,
        public_key: Some(spki),
    } = one(
        &mut s,
        &service,
        &mut host,
        CryptoOp::Rotate {
            key: signer_ref.clone(),
        },
    )
    else {
        panic!("no new public key");
    };
    let (new_sig, new_version) = sign(&mut s, &mut host);
    assert_eq!(new_version, 2);
    veritee_crypto::sign::verify(
        veritee_crypto::sign::VerificationScheme::EcdsaP256Sha256Fixed,
        &spki,
        b"m",
        &new_sig,
    )
    .expect("the new version's public key verifies its signatures");
    let verify = |s: &mut Session, host: &mut MemoryHost, sig: &[u8], version| {
        one(
            s,
            &service,
            host,
            CryptoOp::Verify {
                key: signer_ref.clone(),
                version,
                message: b"m".to_vec(),
                signature: sig.to_vec(),
            },
        )
    };
    assert!(matches!(
        verify(&mut s, &mut host, &old_sig, Some(1)),
        CryptoOutcome::Verified(true)
    ));
    assert!(matches!(
        verify(&mut s, &mut host, &old_sig, None),
        CryptoOutcome::Verified(false)
    ));
    assert!(matches!(
        verify(&mut s, &mut host, &new_sig, None),
        CryptoOutcome::Verified(true)
    ));

    // On schedule: the first use past the period makes a version, once.
    let hourly = KeyRef::new("p", "hourly");
    assert_eq!(
        version_of(&ciphertext(one(
            &mut s,
            &service,
            &mut host,
            encrypt(&hourly)
        ))),
        1
    );
    AHEAD_SECS.store(3601, Ordering::SeqCst);
    let after = ciphertext(one(&mut s, &service, &mut host, encrypt(&hourly)));
    assert_eq!(version_of(&after), 2);
    assert_eq!(
        version_of(&ciphertext(one(
            &mut s,
            &service,
            &mut host,
            encrypt(&hourly)
        ))),
        2
    );
    let rotations: Vec<String> = audit_bodies(&host)
        .iter()
        .filter(|b| b["action"] == "import.rotate")
        .map(|b| {
            format!(
                "{} {}",
                b["object"].as_str().unwrap_or(""),
                b["outcome"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        rotations,
        vec![
            "p/aes ok: version 2, on demand".to_string(),
            "p/signer ok: version 2, on demand".to_string(),
            "p/hourly ok: version 2, scheduled".to_string(),
        ]
    );

    // Restarted, the enclave keeps every version and the minimum.
    drop(s);
    drop(service);
    let service = world.enclave_with("m1", CODE, |s| s.with_host_clock(moved_clock));
    // The tenant's clock agrees with the enclave's, moved ahead.
    let mut s = with_tenant_clock(time::Duration::seconds(3601), || {
        open_session(&world, &service, &mut host, &alice)
    });
    assert!(matches!(
        one(&mut s, &service, &mut host, decrypt(&aes, &v2)),
        CryptoOutcome::Plaintext(_)
    ));
    let (_, message) = refusal(one(&mut s, &service, &mut host, decrypt(&aes, &v1)));
    assert!(message.contains("below the minimum"), "{message}");
    assert!(matches!(
        one(&mut s, &service, &mut host, decrypt(&hourly, &after)),
        CryptoOutcome::Plaintext(_)
    ));
}
