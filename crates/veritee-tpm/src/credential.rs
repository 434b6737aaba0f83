//! TPM2_MakeCredential in software (TPM 2.0 Library, Part 1, §24 "Credential
//! Protection"): a secret that only the TPM holding an EK can recover, and only while
//! the object of a given name (the AK) is loaded in it (TPM2_ActivateCredential).
//!
//! ```text
//! seed           = 32 random bytes (the EK's nameAlg, SHA-256, digest size)
//! encryptedSecret = RSA-OAEP(EK, SHA-256, label "IDENTITY\0", seed)
//! symKey         = KDFa(SHA-256, seed, "STORAGE", name, "", 128)
//! encIdentity    = AES-128-CFB(symKey, IV = 0, u16 len(secret) || secret)
//! hmacKey        = KDFa(SHA-256, seed, "INTEGRITY", "", "", 256)
//! outerHMAC      = HMAC-SHA-256(hmacKey, encIdentity || name)
//! credentialBlob = u16 32 || outerHMAC || encIdentity      (TPM2B_ID_OBJECT contents)
//!
//! KDFa(H, K, label, U, V, bits): concatenation over i = 1, 2... of
//!   HMAC-H(K, u32 i || label || 0x00 || U || V || u32 bits), truncated to bits
//!   (SP 800-108 counter mode; Part 1 §11.4.10.2)
//! ```

use crate::TpmError;
use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::kdf::{KbkdfCtrHmacAlgorithmId, get_kbkdf_ctr_hmac_algorithm, kbkdf_ctr_hmac};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use veritee_crypto::Confidential;
use veritee_verify::tpm::structures::{
    TPM_ALG_AES, TPM_ALG_CFB, TPM_ALG_SHA256, TpmPublic, TpmPublicKey, rsa_spki_der,
};

/// Length of the seed and of the integrity HMAC: the SHA-256 digest size.
pub const SEED_LEN: usize = 32;
/// Longest credential (the digest size of the EK's nameAlg).
pub const MAX_SECRET_LEN: usize = 32;
/// The OAEP label of a credential seed, with its terminating zero.
pub const IDENTITY_LABEL: &[u8] = b"IDENTITY\0";
/// RSA modulus length of the EKs accepted (RSA-2048).
pub const EK_MODULUS_LEN: usize = 256;
/// Length of a SHA-256 object name: u16 algorithm and 32 bytes of digest.
pub const SHA256_NAME_LEN: usize = 2 + 32;

/// A MakeCredential challenge, in the form tss-esapi's `IdObject::try_from(Vec<u8>)` and
/// `EncryptedSecret::try_from(Vec<u8>)` take it (and TPM2_ActivateCredential consumes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialChallenge {
    /// The contents of a TPM2B_ID_OBJECT: a TPM2B_DIGEST integrityHMAC (with its u16
    /// size), then encIdentity.
    pub credential_blob: Vec<u8>,
    /// The contents of a TPM2B_ENCRYPTED_SECRET: the seed, RSA-OAEP encrypted to the EK.
    pub encrypted_secret: Vec<u8>,
}

/// KDFa with SHA-256 (Part 1 §11.4.10.2): fills `out` (its length in bits is the `bits`
/// parameter) from `key`, `label` (without its terminating zero, which is added) and
/// the two contexts. SP 800-108 counter mode with HMAC-SHA-256, by aws-lc-rs.
pub fn kdfa_sha256(
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    out: &mut [u8],
) -> Result<(), TpmError> {
    let bits = u32::try_from(out.len())
        .ok()
        .and_then(|len| len.checked_mul(8))
        .ok_or_else(|| TpmError::InvalidInput("KDFa output too long".into()))?;
    let mut info = Vec::with_capacity(label.len() + 1 + context_u.len() + context_v.len() + 4);
    info.extend_from_slice(label);
    info.push(0);
    info.extend_from_slice(context_u);
    info.extend_from_slice(context_v);
    info.extend_from_slice(&bits.to_be_bytes());
    let alg = get_kbkdf_ctr_hmac_algorithm(KbkdfCtrHmacAlgorithmId::Sha256)
        .ok_or_else(|| TpmError::Crypto("KBKDF with HMAC-SHA-256 unavailable".into()))?;
    kbkdf_ctr_hmac(alg, key, &info, out).map_err(|_| TpmError::Crypto("KDFa".into()))
}

/// The EK as an RSA-OAEP key, after checking it is the kind of EK MakeCredential is
/// made for here: RSA-2048, nameAlg SHA-256, AES-128-CFB symmetric.
fn ek_encrypting_key(ek_public: &[u8]) -> Result<OaepPublicEncryptingKey, TpmError> {
    if ek_public.len() > crate::policy::MAX_PUBLIC_LEN {
        return Err(TpmError::malformed(
            "EK TPMT_PUBLIC",
            format!(
                "{} bytes, more than the {} accepted",
                ek_public.len(),
                crate::policy::MAX_PUBLIC_LEN
            ),
        ));
    }
    let ek = TpmPublic::parse(ek_public).map_err(|e| TpmError::malformed("EK TPMT_PUBLIC", e))?;
    let bad = |reason: String| TpmError::KeyAttributes { key: "EK", reason };
    let TpmPublicKey::Rsa { n, e, bits } = &ek.key else {
        return Err(bad("not an RSA key".into()));
    };
    if *bits != 2048 || n.len() != EK_MODULUS_LEN {
        return Err(bad(format!(
            "RSA-{bits} with a {}-byte modulus, not RSA-2048",
            n.len()
        )));
    }
    if ek.name_alg != TPM_ALG_SHA256 {
        return Err(bad(format!("nameAlg {:#06x} is not SHA-256", ek.name_alg)));
    }
    match ek.symmetric {
        Some(s) if s.alg == TPM_ALG_AES && s.key_bits == 128 && s.mode == TPM_ALG_CFB => {}
        other => {
            return Err(bad(format!(
                "symmetric definition {other:?} is not AES-128-CFB"
            )));
        }
    }
    let spki = rsa_spki_der(n, *e).map_err(|e| TpmError::malformed("EK TPMT_PUBLIC", e))?;
    let key = PublicEncryptingKey::from_der(&spki)
        .map_err(|e| bad(format!("aws-lc-rs refuses the RSA key: {e}")))?;
    OaepPublicEncryptingKey::new(key).map_err(|_| TpmError::Crypto("RSA-OAEP key setup".into()))
}

/// Makes a credential for `secret` (1 to 32 bytes) that only the TPM holding the EK
/// `ek_public` (a marshalled TPMT_PUBLIC of an RSA-2048 EK, nameAlg SHA-256,
/// AES-128-CFB) can recover with TPM2_ActivateCredential, and only with the object
/// named `object_name` (u16 SHA-256 algorithm id and 32 bytes, e.g. the AK's name)
/// loaded. The seed and the keys derived from it are zeroized.
pub fn make_credential(
    ek_public: &[u8],
    object_name: &[u8],
    secret: &[u8],
) -> Result<CredentialChallenge, TpmError> {
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return Err(TpmError::InvalidInput(format!(
            "a credential is 1 to {MAX_SECRET_LEN} bytes, not {}",
            secret.len()
        )));
    }
    if object_name.len() != SHA256_NAME_LEN || object_name[..2] != TPM_ALG_SHA256.to_be_bytes() {
        return Err(TpmError::InvalidInput(format!(
            "the object name ({} bytes) is not a SHA-256 name (000b and 32 bytes)",
            object_name.len()
        )));
    }
    let ek = ek_encrypting_key(ek_public)?;

    let seed = veritee_crypto::rand::secret_array::<SEED_LEN>()
        .map_err(|e| TpmError::Crypto(format!("random seed: {e}")))?;
    let mut encrypted_secret = vec![0u8; ek.ciphertext_size()];
    let len = ek
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            seed.expose(),
            &mut encrypted_secret,
            Some(IDENTITY_LABEL),
        )
        .map_err(|_| TpmError::Crypto("RSA-OAEP encryption of the seed".into()))?
        .len();
    encrypted_secret.truncate(len);

    let mut sym_key = Confidential::new([0u8; 16]);
    kdfa_sha256(
        seed.expose(),
        b"STORAGE",
        object_name,
        &[],
        sym_key.expose_mut(),
    )?;
    let mut hmac_key = Confidential::new([0u8; SEED_LEN]);
    kdfa_sha256(seed.expose(), b"INTEGRITY", &[], &[], hmac_key.expose_mut())?;

    // encIdentity: the marshalled TPM2B_DIGEST of the secret, AES-128-CFB, IV zero.
    let mut enc_identity = Confidential::new(Vec::with_capacity(2 + secret.len()));
    enc_identity
        .expose_mut()
        .extend_from_slice(&(secret.len() as u16).to_be_bytes());
    enc_identity.expose_mut().extend_from_slice(secret);
    let key = UnboundCipherKey::new(&AES_128, sym_key.expose())
        .map_err(|_| TpmError::Crypto("AES-128 key setup".into()))?;
    let key =
        EncryptingKey::cfb128(key).map_err(|_| TpmError::Crypto("AES-128-CFB setup".into()))?;
    key.less_safe_encrypt(
        enc_identity.expose_mut(),
        EncryptionContext::Iv128(FixedLength::from([0u8; 16])),
    )
    .map_err(|_| TpmError::Crypto("AES-128-CFB encryption".into()))?;
    let enc_identity = enc_identity.expose().clone();

    let mut mac_input = enc_identity.clone();
    mac_input.extend_from_slice(object_name);
    let outer_hmac = veritee_crypto::mac::hmac_sha256(hmac_key.expose(), &mac_input);

    let mut credential_blob = Vec::with_capacity(2 + SEED_LEN + enc_identity.len());
    credential_blob.extend_from_slice(&(SEED_LEN as u16).to_be_bytes());
    credential_blob.extend_from_slice(&outer_hmac);
    credential_blob.extend_from_slice(&enc_identity);
    Ok(CredentialChallenge {
        credential_blob,
        encrypted_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The KDFa self-test vector of the TCG reference TPM (KdfTestData.h, the SHA-256
    /// case): 20-byte key, label "KDFSELFTESTLABEL", two 8-byte contexts, 160 bits.
    #[test]
    fn kdfa_matches_the_reference_tpm_self_test() {
        let key = hex::decode("271fa08bbdc5060ec3dfa928ff9b73123a12da0c").unwrap();
        let mut out = [0u8; 20];
        kdfa_sha256(
            &key,
            b"KDFSELFTESTLABEL",
            &hex::decode("ce244f395dca7391").unwrap(),
            &hex::decode("da504031ddf12e83").unwrap(),
            &mut out,
        )
        .unwrap();
        assert_eq!(hex::encode(out), "bb0259e1c8ba607e6a2cd704b69a902e9ade84c4");
    }
}
