//! Secret import (flow 3) against a hostile host, a man in the middle and other
//! tenants: the host peels the provider's layer (its part) and may then alter, swap,
//! truncate or replay anything it passes on; another tenant may send what it saw as
//! its own. Each attack is made here as they could make it, and each refusal names
//! its reason. Then operations by key id: confined to the tenant, the partition and
//! what the key's signed metadata allow. Last, the placement where the enclave opens
//! the provider's layer too.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::import::*;
use common::*;
use veritee_channel::client::TenantKey;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_import::keys::{HashAlgorithm, KeyCheck, KeyRef, KeyType, Operation};
use veritee_import::metadata::ImportMetadata;
use veritee_proto::api::{ImportRequest, paths};
use veritee_proto::ipc::{
    EnclaveCall, EnclaveFailure, EnclaveReply, FailureKind, ImportCall, ImportReply,
};

const CODE: &[u8] = b"the node enclave, version 1";
const CANARY: &[u8; 32] = b"canary-import-key-0123456789abcd";

fn expect_refused(
    what: &str,
    result: Result<EnclaveReply, EnclaveFailure>,
    kind: FailureKind,
    reason: &str,
) {
    let f = refused(result);
    assert_eq!(f.kind, kind, "{what}: {}", f.message);
    assert!(f.message.contains(reason), "{what}: {}", f.message);
}

/// The customer's import arrives through the host, which holds the provider's key:
/// whatever the host changes, swaps, truncates or replays after peeling its layer is
/// refused, and so is anything another tenant sends as its own.
#[test]
fn an_import_the_host_or_another_tenant_bends_is_refused_with_its_reason() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let mallory = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    register(&service, &mut host, &mallory);
    let keys = node_keys(&service, &mut host);
    let provider = HpkeKeyPair::generate();
    let material = SecretBytes::copy_from(CANARY);
    let aes = |tenant: &TenantKey, id: &str, m: &SecretBytes| {
        metadata_for(
            &keys,
            &provider,
            tenant,
            ("payments", id),
            KeyType::Aes256Gcm,
            &[Operation::Encrypt, Operation::Decrypt],
            m,
        )
    };

    // No partition yet: refused, naming it.
    let genuine = seal_import(
        &keys,
        &provider,
        &alice,
        aes(&alice, "k1", &material),
        &material,
    );
    expect_refused(
        "no partition",
        send_import(&service, &mut host, &alice, &genuine),
        FailureKind::NotFound,
        "no partition payments",
    );
    create_partition(&service, &mut host, &alice, "payments");

    // The host alters the body the tenant signed: each field.
    let aud = audience(&service, &mut host);
    let parsed: ImportRequest = serde_json::from_slice(&genuine.body).expect("json");
    let other = seal_import(
        &keys,
        &provider,
        &alice,
        aes(&alice, "k2", &material),
        &material,
    );
    let other_parsed: ImportRequest = serde_json::from_slice(&other.body).expect("json");
    for (field, altered) in [
        (
            "metadata",
            ImportRequest {
                metadata: other_parsed.metadata.clone(),
                ..parsed.clone()
            },
        ),
        (
            "signature",
            ImportRequest {
                signature: other_parsed.signature.clone(),
                ..parsed.clone()
            },
        ),
        (
            "sealed",
            ImportRequest {
                sealed: other_parsed.sealed.clone(),
                ..parsed.clone()
            },
        ),
    ] {
        let request = sign(&aud, &alice, "POST", &paths::import(), &genuine.body);
        let body = serde_json::to_vec(&altered).expect("json");
        expect_refused(
            &format!("{field} swapped under the tenant's request signature"),
            send(&service, &mut host, request, &body, &genuine.inner),
            FailureKind::Unauthorized,
            "altered or not made by the tenant",
        );
    }

    // The host passes on another layer than the one it peeled: another import's,
    // a flipped byte, a truncation, nothing.
    let mut flipped = genuine.inner.clone();
    flipped[40] ^= 1;
    for (what, inner) in [
        ("another import's inner layer", other.inner.clone()),
        ("a flipped byte", flipped),
    ] {
        let request = sign(&aud, &alice, "POST", &paths::import(), &genuine.body);
        expect_refused(
            what,
            send(&service, &mut host, request, &genuine.body, &inner),
            FailureKind::BadRequest,
            "TEE layer does not open",
        );
    }
    for len in [0, 10, 47] {
        let request = sign(&aud, &alice, "POST", &paths::import(), &genuine.body);
        expect_refused(
            &format!("inner layer truncated to {len}"),
            send(
                &service,
                &mut host,
                request,
                &genuine.body,
                &genuine.inner[..len],
            ),
            FailureKind::BadRequest,
            "truncated",
        );
    }

    // Mallory sends Alice's signed metadata and layers as her own: the metadata are not
    // hers; and her own metadata naming Alice are refused too.
    let request = sign(&aud, &mallory, "POST", &paths::import(), &genuine.body);
    expect_refused(
        "another tenant's import sent as one's own",
        send(&service, &mut host, request, &genuine.body, &genuine.inner),
        FailureKind::Unauthorized,
        "not signed by the tenant's key",
    );
    let mut naming_alice = aes(&mallory, "k1", &material);
    naming_alice.tenant = alice.tenant_id().expect("id");
    let forged = seal_import(&keys, &provider, &mallory, naming_alice, &material);
    expect_refused(
        "metadata naming another tenant",
        send_import(&service, &mut host, &mallory, &forged),
        FailureKind::BadRequest,
        "name another tenant",
    );

    // Metadata the tenant signed but that do not fit this enclave or this key.
    let stale = |edit: &dyn Fn(&mut ImportMetadata)| {
        let mut m = aes(&alice, "k3", &material);
        edit(&mut m);
        seal_import(&keys, &provider, &alice, m, &material)
    };
    for (what, import, kind, reason) in [
        (
            "another node",
            stale(&|m| m.node_id = "00112233aabbccdd".into()),
            FailureKind::BadRequest,
            "it is for node 00112233aabbccdd",
        ),
        (
            "another TEE key (a man in the middle's)",
            stale(&|m| m.tee_key_id = "ab".repeat(16)),
            FailureKind::BadRequest,
            "encrypted to TEE key",
        ),
        (
            "an operation its type cannot do",
            stale(&|m| m.operations = vec![Operation::Sign]),
            FailureKind::BadRequest,
            "cannot sign",
        ),
        (
            "another key's check value",
            stale(&|m| {
                m.key_check = KeyCheck::new(&SecretBytes::copy_from(&[1u8; 32]))
                    .expect("check")
                    .to_hex()
            }),
            FailureKind::BadRequest,
            "check value differs",
        ),
        (
            "a partition it does not have",
            stale(&|m| m.partition = "elsewhere".into()),
            FailureKind::NotFound,
            "no partition elsewhere",
        ),
    ] {
        expect_refused(
            what,
            send_import(&service, &mut host, &alice, &import),
            kind,
            reason,
        );
    }
    // A key of the wrong form for its type.
    let short = SecretBytes::copy_from(&CANARY[..31]);
    let mut m = aes(&alice, "k4", &short);
    m.key_check = KeyCheck::new(&short).expect("check").to_hex();
    let wrong_form = seal_import(&keys, &provider, &alice, m, &short);
    expect_refused(
        "a 31-byte AES key",
        send_import(&service, &mut host, &alice, &wrong_form),
        FailureKind::BadRequest,
        "32 bytes expected, got 31",
    );

    // The genuine import is stored and confirmed; replaying its request is refused, a
    // new request for the same import gets the same confirmation, and another key
    // under the id overwrites nothing.
    let request = sign(&aud, &alice, "POST", &paths::import(), &genuine.body);
    let c = confirmation(
        send(
            &service,
            &mut host,
            request.clone(),
            &genuine.body,
            &genuine.inner,
        )
        .expect("the genuine import"),
        &keys.audit_spki,
    );
    assert_eq!(
        (c.partition.as_str(), c.key_id.as_str(), c.node.as_str()),
        ("payments", "k1", keys.node_id.as_str())
    );
    assert_eq!(c.key_check, genuine.metadata.key_check);
    assert_eq!(c.metadata_digest, hex::encode(genuine.signed.digest()));
    expect_refused(
        "the request replayed",
        send(&service, &mut host, request, &genuine.body, &genuine.inner),
        FailureKind::Unauthorized,
        "seen before",
    );
    let again = confirmation(
        send_import(&service, &mut host, &alice, &genuine).expect("a retried import"),
        &keys.audit_spki,
    );
    assert_eq!(again.key_check, c.key_check);
    let other_material = SecretBytes::copy_from(&[9u8; 32]);
    let clash = seal_import(
        &keys,
        &provider,
        &alice,
        aes(&alice, "k1", &other_material),
        &other_material,
    );
    expect_refused(
        "another key under a taken id",
        send_import(&service, &mut host, &alice, &clash),
        FailureKind::Conflict,
        "nothing was overwritten",
    );

    // The key never reaches the host in the clear: raw, hex or base64.
    let held = everything(&host);
    for canary in [
        CANARY.to_vec(),
        hex::encode(CANARY).into_bytes(),
        B64.encode(CANARY).into_bytes(),
    ] {
        assert!(
            !contains(&held, &canary),
            "the imported key reached the host"
        );
        assert!(!contains(&genuine.inner, &canary));
        assert!(!contains(&genuine.body, &canary));
    }
}

/// Operations by key id: each key does only what its signed metadata allow, under its
/// own partition and tenant; translation never hands the plaintext out; a deleted
/// partition's keys are gone at once.
#[test]
fn operations_stay_within_the_tenant_partition_and_metadata() {
    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    let bob = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    register(&service, &mut host, &bob);
    let keys = node_keys(&service, &mut host);
    let provider = HpkeKeyPair::generate();
    create_partition(&service, &mut host, &alice, "payments");
    create_partition(&service, &mut host, &alice, "archive");
    let mut import =
        |partition: &str, id: &str, key_type: KeyType, ops: &[Operation], m: SecretBytes| {
            let meta = metadata_for(&keys, &provider, &alice, (partition, id), key_type, ops, &m);
            let import = seal_import(&keys, &provider, &alice, meta, &m);
            send_import(&service, &mut host, &alice, &import).expect("import");
        };
    use Operation::*;
    import(
        "payments",
        "enc",
        KeyType::Aes256Gcm,
        &[Encrypt, Translate],
        SecretBytes::copy_from(CANARY),
    );
    import(
        "payments",
        "dec",
        KeyType::Aes256Gcm,
        &[Encrypt, Decrypt],
        SecretBytes::copy_from(&[2u8; 32]),
    );
    import(
        "payments",
        "mac",
        KeyType::HmacSha256,
        &[Hmac],
        SecretBytes::copy_from(&[3u8; 48]),
    );
    let ec =
        veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256)
            .expect("ec");
    import(
        "payments",
        "sig",
        KeyType::EcdsaP256,
        &[Sign, Verify],
        ec.to_pkcs8().expect("pkcs8"),
    );
    import(
        "archive",
        "dec",
        KeyType::Aes256Gcm,
        &[Decrypt],
        SecretBytes::copy_from(&[4u8; 32]),
    );

    let mut session = open_session(&world, &service, &mut host, &alice);
    let k = |p: &str, id: &str| KeyRef::new(p, id);
    let plaintext = || SecretBytes::copy_from(b"card 4111 1111 1111 1111");
    // Encrypt under a key that may not decrypt; translate it to one that may.
    let CryptoOutcome::Ciphertext(ct) = one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Encrypt {
            key: k("payments", "enc"),
            plaintext: plaintext(),
            aad: b"order 7".to_vec(),
        },
    ) else {
        panic!("no ciphertext");
    };
    let (code, message) = refusal(one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Decrypt {
            key: k("payments", "enc"),
            ciphertext: ct.clone(),
            aad: b"order 7".to_vec(),
        },
    ));
    assert_eq!(code, "forbidden");
    assert!(message.contains("may not be used to decrypt"), "{message}");
    let CryptoOutcome::Ciphertext(moved) = one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Translate {
            from: k("payments", "enc"),
            to: k("payments", "dec"),
            ciphertext: ct.clone(),
            aad: b"order 7".to_vec(),
        },
    ) else {
        panic!("no translation");
    };
    let CryptoOutcome::Plaintext(back) = one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Decrypt {
            key: k("payments", "dec"),
            ciphertext: moved.clone(),
            aad: b"order 7".to_vec(),
        },
    ) else {
        panic!("no plaintext");
    };
    assert_eq!(back.expose(), plaintext().expose());
    // The same id in another partition is another key: the ciphertext does not open.
    let (code, message) = refusal(one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Decrypt {
            key: k("archive", "dec"),
            ciphertext: moved.clone(),
            aad: b"order 7".to_vec(),
        },
    ));
    assert_eq!(code, "bad_request", "{message}");
    assert!(
        message.contains("does not open under key archive/dec"),
        "{message}"
    );
    // Wrong AAD, translation from a key that may not translate, names reaching out.
    let (_, message) = refusal(one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Decrypt {
            key: k("payments", "dec"),
            ciphertext: moved.clone(),
            aad: b"order 8".to_vec(),
        },
    ));
    assert!(message.contains("with this AAD"), "{message}");
    let (_, message) = refusal(one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Translate {
            from: k("payments", "dec"),
            to: k("payments", "enc"),
            ciphertext: moved,
            aad: b"order 7".to_vec(),
        },
    ));
    assert!(
        message.contains("may not be used to translate"),
        "{message}"
    );
    for (p, id) in [
        ("payments/../archive", "dec"),
        ("payments", "../dec"),
        ("payments", "missing"),
    ] {
        let (code, message) = refusal(one(
            &mut session,
            &service,
            &mut host,
            CryptoOp::Encrypt {
                key: k(p, id),
                plaintext: plaintext(),
                aad: vec![],
            },
        ));
        assert_eq!(code, "not_found", "{p}/{id}: {message}");
    }
    // MAC, signature, hash; each key only for its own kind of operation.
    let CryptoOutcome::Mac { tag, .. } = one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Hmac {
            key: k("payments", "mac"),
            data: b"message".to_vec(),
        },
    ) else {
        panic!("no mac");
    };
    assert_eq!(
        tag,
        veritee_crypto::mac::hmac_sha256(&[3u8; 48], b"message").to_vec()
    );
    let (_, message) = refusal(one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Verify {
            version: None,
            key: k("payments", "mac"),
            message: b"message".to_vec(),
            signature: tag,
        },
    ));
    assert!(message.contains("may not be used to verify"), "{message}");
    let CryptoOutcome::Signature { signature: sig, .. } = one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Sign {
            key: k("payments", "sig"),
            message: b"pay 10".to_vec(),
        },
    ) else {
        panic!("no signature");
    };
    // The signature verifies outside the enclave with the key's public half.
    veritee_crypto::sign::verify(
        veritee_crypto::sign::VerificationScheme::EcdsaP256Sha256Fixed,
        ec.public_key_point(),
        b"pay 10",
        &sig,
    )
    .expect("a standard ECDSA P-256 signature");
    for (message, expected) in [(b"pay 10".to_vec(), true), (b"pay 99".to_vec(), false)] {
        assert!(matches!(
            one(&mut session, &service, &mut host, CryptoOp::Verify {
                version: None,
                key: k("payments", "sig"),
                message,
                signature: sig.clone(),
            }),
            CryptoOutcome::Verified(v) if v == expected
        ));
    }
    let (_, message) = refusal(one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Sign {
            key: k("payments", "dec"),
            message: vec![],
        },
    ));
    assert!(message.contains("may not be used to sign"), "{message}");
    assert!(matches!(
        one(&mut session, &service, &mut host, CryptoOp::Hash { algorithm: HashAlgorithm::Sha256, data: b"abc".to_vec() }),
        CryptoOutcome::Digest(d) if hex::encode(&d) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    ));
    // One batch: a refusal in it does not stop the rest.
    let Response::Crypto(outcomes) = session.call(
        &service,
        &mut host,
        &Request::Crypto(vec![
            CryptoOp::Hash {
                algorithm: HashAlgorithm::Sha512,
                data: vec![],
            },
            CryptoOp::Sign {
                key: k("payments", "missing"),
                message: vec![],
            },
            CryptoOp::Encrypt {
                key: k("payments", "dec"),
                plaintext: plaintext(),
                aad: vec![],
            },
        ]),
    ) else {
        panic!("no batch");
    };
    assert!(matches!(
        &outcomes[..],
        [
            CryptoOutcome::Digest(_),
            CryptoOutcome::Error { .. },
            CryptoOutcome::Ciphertext(_)
        ]
    ));

    // Bob, in his own session, reaches none of Alice's keys.
    let mut bobs = open_session(&world, &service, &mut host, &bob);
    let (code, _) = refusal(one(
        &mut bobs,
        &service,
        &mut host,
        CryptoOp::Encrypt {
            key: k("payments", "dec"),
            plaintext: plaintext(),
            aad: vec![],
        },
    ));
    assert_eq!(code, "not_found");

    // Deleting the partition destroys its keys at once (the cache included).
    let aud = audience(&service, &mut host);
    let request = sign(&aud, &alice, "DELETE", &paths::partition("payments"), &[]);
    service
        .handle(
            EnclaveCall::Import(ImportCall::DeletePartition {
                request,
                name: "payments".into(),
                body: Vec::new(),
            }),
            &mut host,
        )
        .expect("delete");
    let (code, _) = refusal(one(
        &mut session,
        &service,
        &mut host,
        CryptoOp::Encrypt {
            key: k("payments", "dec"),
            plaintext: plaintext(),
            aad: vec![],
        },
    ));
    assert_eq!(code, "not_found");
    let list = list_partitions(&service, &mut host, &alice);
    assert_eq!(list, vec![("archive".to_string(), vec!["dec".to_string()])]);
    let actions: Vec<String> = audit_bodies(&host)
        .iter()
        .map(|b| b["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        actions.contains(&"partition.delete".to_string()),
        "{actions:?}"
    );
    assert!(
        !contains(&everything(&host), CANARY),
        "a key reached the host"
    );
}

/// A node whose enclave opens the provider's layer too: the host passes the import as
/// the tenant signed it; the enclave peels with its own sealed provider-layer key and
/// refuses an outer layer to any other key, or metadata naming one.
#[test]
fn the_enclave_peels_both_layers_only_under_its_own_provider_layer_key() {
    use veritee_crypto::hpke::HpkePublicKey;
    use veritee_import::envelope;
    use veritee_import::metadata::{METADATA_SIGNATURE_LABEL, SignedMetadata, key_id_of};
    use veritee_import::payload::ImportPayload;

    let world = World::new(&["m1"]);
    let service = world.enclave("m1", CODE);
    let mut host = MemoryHost::default();
    let alice = TenantKey::generate().expect("key");
    register(&service, &mut host, &alice);
    create_partition(&service, &mut host, &alice, "payments");
    let keys = node_keys(&service, &mut host);
    let provider_layer_key = |host: &mut MemoryHost| match service
        .handle(EnclaveCall::Import(ImportCall::ProviderLayerKey), host)
        .expect("provider-layer key")
    {
        EnclaveReply::Import(ImportReply::ProviderLayerKey(k)) => {
            HpkePublicKey::from_bytes(&k).expect("key")
        }
        other => panic!("{other:?}"),
    };
    let enclave_key = provider_layer_key(&mut host);
    assert_eq!(
        provider_layer_key(&mut host).as_bytes(),
        enclave_key.as_bytes(),
        "sealed once, the same key every time"
    );
    // The host's own key: what a host-peeling node states.
    let host_key = HpkeKeyPair::generate();
    let material = SecretBytes::copy_from(CANARY);
    let send_both =
        |host: &mut MemoryHost, id: &str, outer_to: &HpkePublicKey, named: &HpkePublicKey| {
            let mut m = metadata_for(
                &keys,
                &host_key,
                &alice,
                ("payments", id),
                KeyType::Aes256Gcm,
                &[Operation::Encrypt, Operation::Decrypt],
                &material,
            );
            m.provider_key_id = key_id_of(named.as_bytes());
            let bytes = serde_json::to_vec(&m).expect("json");
            let mut to_sign = METADATA_SIGNATURE_LABEL.to_vec();
            to_sign.extend_from_slice(&bytes);
            let signed = SignedMetadata {
                signature: alice.sign(&to_sign).expect("sign"),
                bytes,
            };
            let payload = ImportPayload {
                material: SecretBytes::copy_from(material.expose()),
                revocation: None,
            }
            .encode()
            .expect("payload");
            let outer =
                envelope::seal(&keys.tee, outer_to, &signed.digest(), &payload).expect("seal");
            let body = serde_json::to_vec(&ImportRequest {
                metadata: B64.encode(&signed.bytes),
                signature: B64.encode(&signed.signature),
                sealed: B64.encode(&outer),
            })
            .expect("json");
            let aud = audience(&service, host);
            let request = sign(&aud, &alice, "POST", &paths::import(), &body);
            service.handle(
                EnclaveCall::Import(ImportCall::KeyBothLayers { request, body }),
                host,
            )
        };

    let host_public = host_key.public_key();
    let f = refused(send_both(&mut host, "to-host", &host_public, &host_public));
    assert!(
        f.message.contains("this enclave peels for"),
        "{}",
        f.message
    );
    let f = refused(send_both(
        &mut host,
        "mislabelled",
        &host_public,
        &enclave_key,
    ));
    assert!(f.message.contains("refused"), "{}", f.message);
    let c = confirmation(
        send_both(&mut host, "card-key", &enclave_key, &enclave_key).expect("imported"),
        &keys.audit_spki,
    );
    assert_eq!(c.key_id, "card-key");
    let mut s = open_session(&world, &service, &mut host, &alice);
    assert!(matches!(
        one(
            &mut s,
            &service,
            &mut host,
            CryptoOp::Encrypt {
                key: KeyRef::new("payments", "card-key"),
                plaintext: SecretBytes::copy_from(b"4111"),
                aad: vec![],
            }
        ),
        CryptoOutcome::Ciphertext(_)
    ));
    // Neither refused import left a key behind.
    for id in ["to-host", "mislabelled"] {
        let (_, why) = refusal(one(
            &mut s,
            &service,
            &mut host,
            CryptoOp::Encrypt {
                key: KeyRef::new("payments", id),
                plaintext: SecretBytes::copy_from(b"4111"),
                aad: vec![],
            },
        ));
        assert!(why.contains("no key"), "{why}");
    }
}
