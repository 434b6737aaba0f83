//! The formats of the TEE layer of an import: veritee's own, and two standard ones
//! that customers' tools already produce.
//!
//! veritee's own format ([`crate::envelope`]) carries a CBOR [`crate::payload`] and
//! binds the metadata as associated data. The two standard formats carry the raw key
//! material only (so no revocation data), and bind nothing: the metadata bind them
//! instead, by carrying the SHA-256 of the wrapped blob ([`wrapped_digest`]).
//!
//! **CKM_RSA_AES_KEY_WRAP** (PKCS#11 v2.40 section 2.1.21; AWS KMS's
//! `RSA_AES_KEY_WRAP_SHA_256`, Azure Key Vault's and Google Cloud KMS's
//! `rsa_oaep_3072_sha256_aes_256`), to the enclave's RSA import key:
//!
//! ```text
//! wrapped = RSA-OAEP(SHA-256, MGF1-SHA-256, empty label)(K)   modulus length (384 for RSA-3072)
//!        || AES-KWP(K, material)                              RFC 5649: 16 to material + 15 bytes
//! K       = a fresh random AES-256 key
//! ```
//!
//! **HPKE** (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! AES-256-GCM), to the enclave's X25519 import key:
//!
//! ```text
//! wrapped = enc (32) || AES-256-GCM ciphertext of the material || tag (16)
//! info    = HPKE_FORMAT_INFO, aad = empty
//! ```
//!
//! The HPKE `info` is a constant and the AAD empty so that any RFC 9180 library can
//! produce the blob; the veritee format's `info` differs, so neither opens as the other.

use crate::ImportError;
use crate::keys::MAX_MATERIAL_LEN;
use serde::{Deserialize, Serialize};
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};
use veritee_crypto::keywrap::KeyEncryptionKey;
use veritee_crypto::rsa::{self, RsaPrivateKey};

/// HPKE `info` of the [`ImportFormat::Hpke`] format.
pub const HPKE_FORMAT_INFO: &[u8] = b"veritee import hpke v1";
/// What the HPKE format adds to the material: the encapsulated key and the tag.
pub const HPKE_OVERHEAD: usize = hpke::ENCAPSULATED_KEY_LEN + hpke::TAG_LEN;
/// Length of the AES-256 key inside the RSA part of CKM_RSA_AES_KEY_WRAP.
pub const RSA_AES_KEY_LEN: usize = 32;
/// Shortest AES-KWP output (RFC 5649: one 8-byte block of key and the 8-byte header).
const KWP_MIN_LEN: usize = 16;
/// What AES-KWP adds at most to its input: the header and up to 7 bytes of padding,
/// rounded to blocks.
const KWP_MAX_OVERHEAD: usize = 16;

/// The format of an import's TEE layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportFormat {
    /// veritee's own: HPKE with the metadata digest as associated data, carrying a
    /// CBOR payload (key material and optional revocation data).
    #[default]
    Veritee,
    /// CKM_RSA_AES_KEY_WRAP (RSA-OAEP-SHA256 and AES-256-KWP) to the enclave's RSA key;
    /// raw key material.
    RsaAesKeyWrap,
    /// RFC 9180 HPKE to the enclave's X25519 key, `info` [`HPKE_FORMAT_INFO`], empty
    /// associated data; raw key material.
    Hpke,
}

impl ImportFormat {
    /// Its name on the command line and in metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Veritee => "veritee",
            Self::RsaAesKeyWrap => "rsa-aes-key-wrap",
            Self::Hpke => "hpke",
        }
    }

    /// Whether it is veritee's own format (left out of metadata, which then read as
    /// they did before the standard formats existed).
    pub fn is_veritee(&self) -> bool {
        *self == Self::Veritee
    }
}

impl core::fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for ImportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "veritee" => Ok(Self::Veritee),
            "rsa-aes-key-wrap" => Ok(Self::RsaAesKeyWrap),
            "hpke" => Ok(Self::Hpke),
            other => Err(format!(
                "import format {other:?}: use veritee, rsa-aes-key-wrap or hpke"
            )),
        }
    }
}

/// The SHA-256 of a wrapped blob, hex: what the metadata carry to bind it.
pub fn wrapped_digest(wrapped: &[u8]) -> String {
    hex::encode(veritee_crypto::digest::sha256(wrapped))
}

fn check_material(material: &SecretBytes) -> Result<(), ImportError> {
    if material.is_empty() || material.len() > MAX_MATERIAL_LEN {
        return Err(ImportError::Malformed(format!(
            "key material of {} bytes (1 to {MAX_MATERIAL_LEN})",
            material.len()
        )));
    }
    Ok(())
}

/// Wraps `material` with CKM_RSA_AES_KEY_WRAP to an RSA public key (DER
/// SubjectPublicKeyInfo, at least 2048 bits), as a customer's tool would.
pub fn rsa_aes_key_wrap(
    rsa_public_spki: &[u8],
    material: &SecretBytes,
) -> Result<Vec<u8>, ImportError> {
    check_material(material)?;
    // Zeroized on drop, here and inside the key-encryption key.
    let aes_key = veritee_crypto::rand::secret_array::<RSA_AES_KEY_LEN>()?;
    let mut out = rsa::encrypt_oaep_sha256(rsa_public_spki, aes_key.expose())
        .map_err(|e| ImportError::Malformed(format!("the RSA import key: {e}")))?;
    let kwp = KeyEncryptionKey::new(aes_key).wrap(material.expose())?;
    out.extend_from_slice(&kwp);
    Ok(out)
}

/// The enclave's part: opens a CKM_RSA_AES_KEY_WRAP blob with its RSA import key,
/// giving the raw key material.
pub fn rsa_aes_key_unwrap(key: &RsaPrivateKey, wrapped: &[u8]) -> Result<SecretBytes, ImportError> {
    let modulus = key.modulus_len();
    let minimum = modulus + KWP_MIN_LEN;
    let maximum = modulus + MAX_MATERIAL_LEN + KWP_MAX_OVERHEAD;
    if wrapped.len() < minimum {
        return Err(ImportError::Malformed(format!(
            "RSA-AES key wrap of {} bytes is truncated (at least {minimum}: {modulus} of RSA-OAEP for this {}-bit key, and 16 of AES-KWP)",
            wrapped.len(),
            key.bits()
        )));
    }
    if wrapped.len() > maximum {
        return Err(ImportError::Malformed(format!(
            "RSA-AES key wrap of {} bytes (at most {maximum} for this {}-bit key)",
            wrapped.len(),
            key.bits()
        )));
    }
    let (rsa_part, kwp_part) = wrapped.split_at(modulus);
    if !kwp_part.len().is_multiple_of(8) {
        return Err(ImportError::Malformed(format!(
            "the AES-KWP part of the RSA-AES key wrap is {} bytes, not a multiple of 8",
            kwp_part.len()
        )));
    }
    let aes_key = key.decrypt_oaep_sha256(rsa_part).map_err(|_| {
        ImportError::Decrypt(format!(
            "the RSA-OAEP part of the RSA-AES key wrap does not open with this enclave's {}-bit RSA import key: it was encrypted to another key, with other OAEP parameters (SHA-256 and MGF1-SHA-256 expected), or changed",
            key.bits()
        ))
    })?;
    if aes_key.len() != RSA_AES_KEY_LEN {
        return Err(ImportError::Malformed(format!(
            "the RSA-OAEP part of the RSA-AES key wrap holds a {}-byte key, not an AES-256 key of {RSA_AES_KEY_LEN}",
            aes_key.len()
        )));
    }
    let material = KeyEncryptionKey::from_slice(aes_key.expose())?
        .unwrap(kwp_part)
        .map_err(|_| {
            ImportError::Decrypt(
                "the AES-KWP part of the RSA-AES key wrap does not unwrap with the AES key of its RSA part: the two parts were made apart, or the AES-KWP part was changed"
                    .into(),
            )
        })?;
    check_material(&material)?;
    Ok(material)
}

/// Encrypts `material` to the enclave's X25519 import key in the HPKE format, as a
/// customer's RFC 9180 library would.
pub fn hpke_seal(tee: &HpkePublicKey, material: &SecretBytes) -> Result<Vec<u8>, ImportError> {
    check_material(material)?;
    Ok(hpke::seal(tee, HPKE_FORMAT_INFO, b"", material.expose())?)
}

/// The enclave's part: opens an HPKE-format blob with its X25519 import key, giving
/// the raw key material.
pub fn hpke_open(tee: &HpkeKeyPair, wrapped: &[u8]) -> Result<SecretBytes, ImportError> {
    let minimum = HPKE_OVERHEAD + 1;
    let maximum = HPKE_OVERHEAD + MAX_MATERIAL_LEN;
    if wrapped.len() < minimum {
        return Err(ImportError::Malformed(format!(
            "HPKE import of {} bytes is truncated (at least {minimum})",
            wrapped.len()
        )));
    }
    if wrapped.len() > maximum {
        return Err(ImportError::Malformed(format!(
            "HPKE import of {} bytes (at most {maximum})",
            wrapped.len()
        )));
    }
    hpke::open(tee, HPKE_FORMAT_INFO, b"", wrapped).map_err(|_| {
        ImportError::Decrypt(
            "the HPKE import does not open with this enclave's import key: it was encrypted to another key, with another info than \"veritee import hpke v1\" or with associated data, or changed"
                .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// One RSA-3072 key, the size the enclave holds, for the whole module: generating
    /// one takes about a second.
    fn rsa_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::generate(3072).unwrap())
    }

    fn material() -> SecretBytes {
        SecretBytes::copy_from(b"canary-key-material-0123456789ab")
    }

    fn malformed(err: ImportError, words: &str) {
        match &err {
            ImportError::Malformed(m) if m.contains(words) => {}
            _ => panic!("expected Malformed naming {words:?}, got {err:?}"),
        }
    }

    fn decrypt(err: ImportError, words: &str) {
        match &err {
            ImportError::Decrypt(m) if m.contains(words) => {}
            _ => panic!("expected Decrypt naming {words:?}, got {err:?}"),
        }
    }

    #[test]
    fn format_names_read_back() {
        for f in [
            ImportFormat::Veritee,
            ImportFormat::RsaAesKeyWrap,
            ImportFormat::Hpke,
        ] {
            assert_eq!(f.as_str().parse::<ImportFormat>().unwrap(), f);
            assert_eq!(f.to_string(), f.as_str());
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
        assert_eq!(ImportFormat::default(), ImportFormat::Veritee);
        let err = "pkcs11".parse::<ImportFormat>().unwrap_err();
        assert!(err.contains("veritee, rsa-aes-key-wrap or hpke"), "{err}");
    }

    #[test]
    fn wrapped_digest_is_hex_sha256() {
        assert_eq!(
            wrapped_digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn rsa_aes_key_wrap_round_trip_and_layout() {
        let key = rsa_key();
        let spki = key.public_key_spki().unwrap();
        for len in [1usize, 8, 32, 33, 2400, MAX_MATERIAL_LEN] {
            let m = SecretBytes::new((0..len).map(|i| i as u8).collect());
            let wrapped = rsa_aes_key_wrap(&spki, &m).unwrap();
            // RSA part of the modulus length, then RFC 5649's rounded-up output.
            assert_eq!(wrapped.len(), 384 + len.div_ceil(8) * 8 + 8, "{len}");
            assert_eq!(rsa_aes_key_unwrap(key, &wrapped).unwrap(), m);
        }
        let wrapped = rsa_aes_key_wrap(&spki, &material()).unwrap();
        assert!(!wrapped.windows(10).any(|w| w == b"canary-key"));
        // Randomized: a fresh AES key every time.
        assert_ne!(wrapped, rsa_aes_key_wrap(&spki, &material()).unwrap());
        malformed(
            rsa_aes_key_wrap(&spki, &SecretBytes::copy_from(&[])).unwrap_err(),
            "0 bytes",
        );
        malformed(
            rsa_aes_key_wrap(&spki, &SecretBytes::new(vec![1; MAX_MATERIAL_LEN + 1])).unwrap_err(),
            "4097 bytes",
        );
        malformed(
            rsa_aes_key_wrap(&spki[..100], &material()).unwrap_err(),
            "RSA import key",
        );
    }

    #[test]
    fn rsa_aes_key_unwrap_refuses_tampering_at_each_part() {
        let key = rsa_key();
        let wrapped = rsa_aes_key_wrap(&key.public_key_spki().unwrap(), &material()).unwrap();
        for i in [0, 200, 383] {
            let mut bad = wrapped.clone();
            bad[i] ^= 1;
            decrypt(rsa_aes_key_unwrap(key, &bad).unwrap_err(), "RSA-OAEP part");
        }
        for i in [384, 390, wrapped.len() - 1] {
            let mut bad = wrapped.clone();
            bad[i] ^= 1;
            decrypt(rsa_aes_key_unwrap(key, &bad).unwrap_err(), "AES-KWP part");
        }
        // The parts of two wraps do not mix.
        let other = rsa_aes_key_wrap(&key.public_key_spki().unwrap(), &material()).unwrap();
        let mut mixed = wrapped[..384].to_vec();
        mixed.extend_from_slice(&other[384..]);
        decrypt(rsa_aes_key_unwrap(key, &mixed).unwrap_err(), "AES-KWP part");
        // A wrong RSA key.
        let stranger = RsaPrivateKey::generate(3072).unwrap();
        decrypt(
            rsa_aes_key_unwrap(&stranger, &wrapped).unwrap_err(),
            "RSA-OAEP part",
        );
    }

    #[test]
    fn rsa_aes_key_unwrap_refuses_wrong_sizes_without_panic() {
        let key = rsa_key();
        let wrapped = rsa_aes_key_wrap(&key.public_key_spki().unwrap(), &material()).unwrap();
        for len in [0usize, 1, 383, 384, 399] {
            malformed(
                rsa_aes_key_unwrap(key, &wrapped[..len.min(wrapped.len())]).unwrap_err(),
                "truncated (at least 400",
            );
        }
        // Cut inside the AES-KWP part, on and off its 8-byte blocks.
        malformed(
            rsa_aes_key_unwrap(key, &wrapped[..wrapped.len() - 1]).unwrap_err(),
            "not a multiple of 8",
        );
        decrypt(
            rsa_aes_key_unwrap(key, &wrapped[..wrapped.len() - 8]).unwrap_err(),
            "AES-KWP part",
        );
        let mut long = wrapped.clone();
        long.resize(384 + MAX_MATERIAL_LEN + 17, 0);
        malformed(rsa_aes_key_unwrap(key, &long).unwrap_err(), "at most 4496");
        long.truncate(384 + MAX_MATERIAL_LEN + 16);
        decrypt(rsa_aes_key_unwrap(key, &long).unwrap_err(), "AES-KWP part");
        // A blob for a 2048-bit key, given to the 3072-bit one: its RSA part is read
        // at the wrong length and does not open.
        let small = RsaPrivateKey::generate(2048).unwrap();
        let for_small = rsa_aes_key_wrap(&small.public_key_spki().unwrap(), &material()).unwrap();
        assert_eq!(rsa_aes_key_unwrap(&small, &for_small).unwrap(), material());
        assert!(rsa_aes_key_unwrap(key, &for_small).is_err());
    }

    #[test]
    fn an_rsa_part_that_is_not_an_aes_256_key_is_refused() {
        let key = rsa_key();
        let spki = key.public_key_spki().unwrap();
        let kwp = KeyEncryptionKey::from_slice(&[3; 16 + 16])
            .unwrap()
            .wrap(b"material")
            .unwrap();
        for k in [&[3u8; 16][..], &[3u8; 33][..], &[][..]] {
            let mut wrapped = rsa::encrypt_oaep_sha256(&spki, k).unwrap();
            wrapped.extend_from_slice(&kwp);
            malformed(
                rsa_aes_key_unwrap(key, &wrapped).unwrap_err(),
                &format!("holds a {}-byte key", k.len()),
            );
        }
    }

    #[test]
    fn hpke_round_trip_and_refusals() {
        let tee = HpkeKeyPair::generate();
        let sealed = hpke_seal(&tee.public_key(), &material()).unwrap();
        assert_eq!(sealed.len(), HPKE_OVERHEAD + 32);
        assert!(!sealed.windows(10).any(|w| w == b"canary-key"));
        assert_eq!(hpke_open(&tee, &sealed).unwrap(), material());
        // It is plain RFC 9180 with the published info and empty associated data.
        assert_eq!(
            hpke::open(&tee, HPKE_FORMAT_INFO, b"", &sealed).unwrap(),
            material()
        );
        // The veritee format's info does not open it, nor the reverse.
        assert!(hpke::open(&tee, crate::envelope::TEE_LAYER_INFO, b"", &sealed).is_err());
        let veritee = hpke::seal(
            &tee.public_key(),
            crate::envelope::TEE_LAYER_INFO,
            b"",
            material().expose(),
        )
        .unwrap();
        decrypt(hpke_open(&tee, &veritee).unwrap_err(), "does not open");
        // Another key, a flipped byte anywhere.
        decrypt(
            hpke_open(&HpkeKeyPair::generate(), &sealed).unwrap_err(),
            "another key",
        );
        for i in [0, 31, 32, 50, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(
                matches!(hpke_open(&tee, &bad), Err(ImportError::Decrypt(_))),
                "byte {i}"
            );
        }
        // Sizes.
        for len in [0usize, 1, 32, HPKE_OVERHEAD] {
            malformed(
                hpke_open(&tee, &sealed[..len]).unwrap_err(),
                "truncated (at least 49)",
            );
        }
        decrypt(
            hpke_open(&tee, &sealed[..sealed.len() - 1]).unwrap_err(),
            "does not open",
        );
        malformed(
            hpke_open(&tee, &vec![0; HPKE_OVERHEAD + MAX_MATERIAL_LEN + 1]).unwrap_err(),
            "at most 4144",
        );
        malformed(
            hpke_seal(&tee.public_key(), &SecretBytes::copy_from(&[])).unwrap_err(),
            "0 bytes",
        );
        malformed(
            hpke_seal(
                &tee.public_key(),
                &SecretBytes::new(vec![0; MAX_MATERIAL_LEN + 1]),
            )
            .unwrap_err(),
            "4097 bytes",
        );
        let max = SecretBytes::new(vec![7; MAX_MATERIAL_LEN]);
        let sealed = hpke_seal(&tee.public_key(), &max).unwrap();
        assert_eq!(hpke_open(&tee, &sealed).unwrap(), max);
    }

    /// The interoperability that matters: the openssl command line, which is what the
    /// cloud key managers' own instructions use, makes and opens the same blobs.
    mod openssl {
        use super::*;
        use std::path::Path;
        use std::process::Command;

        /// Runs openssl; `None` if it is not installed, so that the tests say so and
        /// pass rather than fail on a machine without it.
        fn openssl(dir: &Path, args: &[&str]) -> Option<()> {
            match Command::new("openssl").current_dir(dir).args(args).output() {
                Err(e) => {
                    eprintln!("openssl not runnable ({e}): interoperability not checked");
                    None
                }
                Ok(out) => {
                    assert!(
                        out.status.success(),
                        "openssl {args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    Some(())
                }
            }
        }

        const OAEP: [&str; 6] = [
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ];

        #[test]
        fn openssl_wrap_opens_with_rsa_aes_key_unwrap() {
            let key = rsa_key();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path();
            std::fs::write(p.join("pub.der"), key.public_key_spki().unwrap()).unwrap();
            let aes: [u8; 32] = veritee_crypto::rand::array().unwrap();
            let material: [u8; 32] = veritee_crypto::rand::array().unwrap();
            std::fs::write(p.join("aes.bin"), aes).unwrap();
            std::fs::write(p.join("key.bin"), material).unwrap();
            let mut args = vec![
                "pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER",
            ];
            args.extend(OAEP);
            args.extend(["-in", "aes.bin", "-out", "rsa.bin"]);
            if openssl(p, &args).is_none() {
                return;
            }
            let aes_hex = hex::encode(aes);
            // RFC 5649's alternative initial value; openssl wants it spelled out.
            openssl(
                p,
                &[
                    "enc",
                    "-id-aes256-wrap-pad",
                    "-K",
                    &aes_hex,
                    "-iv",
                    "A65959A6",
                    "-in",
                    "key.bin",
                    "-out",
                    "kwp.bin",
                ],
            )
            .unwrap();
            let mut wrapped = std::fs::read(p.join("rsa.bin")).unwrap();
            assert_eq!(wrapped.len(), 384);
            wrapped.extend(std::fs::read(p.join("kwp.bin")).unwrap());
            assert_eq!(wrapped.len(), 384 + 40);
            assert_eq!(
                rsa_aes_key_unwrap(key, &wrapped).unwrap().expose(),
                &material
            );
        }

        #[test]
        fn rsa_aes_key_wrap_opens_with_openssl() {
            let key = rsa_key();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path();
            std::fs::write(p.join("priv.der"), key.to_pkcs8().unwrap().expose()).unwrap();
            // 45 bytes: not a whole number of blocks, so the padding is exercised too.
            let material = SecretBytes::new((0..45).collect());
            let wrapped = rsa_aes_key_wrap(&key.public_key_spki().unwrap(), &material).unwrap();
            let (rsa_part, kwp_part) = wrapped.split_at(key.modulus_len());
            std::fs::write(p.join("rsa.bin"), rsa_part).unwrap();
            std::fs::write(p.join("kwp.bin"), kwp_part).unwrap();
            let mut args = vec![
                "pkeyutl", "-decrypt", "-inkey", "priv.der", "-keyform", "DER",
            ];
            args.extend(OAEP);
            args.extend(["-in", "rsa.bin", "-out", "aes.bin"]);
            if openssl(p, &args).is_none() {
                return;
            }
            let aes = std::fs::read(p.join("aes.bin")).unwrap();
            assert_eq!(aes.len(), 32);
            openssl(
                p,
                &[
                    "enc",
                    "-d",
                    "-id-aes256-wrap-pad",
                    "-K",
                    &hex::encode(&aes),
                    "-iv",
                    "A65959A6",
                    "-in",
                    "kwp.bin",
                    "-out",
                    "key.bin",
                ],
            )
            .unwrap();
            assert_eq!(
                std::fs::read(p.join("key.bin")).unwrap(),
                material.expose().as_slice()
            );
        }
    }
}
