//! TPM object names, PolicyPCR digests, PCR selections and object attribute bits.
//!
//! ```text
//! Name of an object    = u16 nameAlg || H_nameAlg(TPMT_PUBLIC)
//! PolicyPCR (SHA-256)  = SHA-256(0^32 || u32 TPM_CC_PolicyPCR (0x17F)
//!                                || TPML_PCR_SELECTION || pcrDigest)
//! TPML_PCR_SELECTION   = u32 count = 1 || u16 hash = SHA-256 (0x000B)
//!                        || u8 sizeofSelect = 3 || 3 bytes bitmap (byte i bit j: PCR 8i+j)
//! ```

use crate::TpmError;
use veritee_verify::tpm::structures::{
    TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512, digest_len, hash_name,
};

/// Longest TPMT_PUBLIC accepted (an RSA-4096 key with a SHA-512 policy is about 620
/// bytes).
pub const MAX_PUBLIC_LEN: usize = 1024;
/// TPM_CC_PolicyPCR.
pub const TPM_CC_POLICY_PCR: u32 = 0x0000_017F;
/// PCRs any software may reset (PCR 16, the debug PCR, and 23, the application PCR, at
/// locality 0): a state measured in them is no state at all, so no policy may name them.
pub const RESETTABLE_PCRS: [u32; 2] = [16, 23];
/// sizeofSelect of the selections [`pcr_selection_sha256`] makes (24 PCRs).
pub const PCR_SELECT_SIZE: usize = 3;

/// objectAttributes bit 1: the object cannot be duplicated (its hierarchy is this
/// TPM's).
pub const FIXED_TPM: u32 = 1 << 1;
/// objectAttributes bit 2: saved contexts of the object do not survive a TPM Reset or
/// Restart.
pub const ST_CLEAR: u32 = 1 << 2;
/// objectAttributes bit 4: the object's parent cannot change (no duplication).
pub const FIXED_PARENT: u32 = 1 << 4;
/// objectAttributes bit 5: the TPM generated the sensitive part itself.
pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
/// objectAttributes bit 6: the USER role may be authorized with the authValue (not
/// only the authPolicy).
pub const USER_WITH_AUTH: u32 = 1 << 6;
/// objectAttributes bit 7: the ADMIN role may only be authorized with the authPolicy.
pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
/// objectAttributes bit 10: the object is not subject to dictionary-attack protection.
pub const NO_DA: u32 = 1 << 10;
/// objectAttributes bit 16: the key only operates on TPM-produced or TPM-formatted
/// data.
pub const RESTRICTED: u32 = 1 << 16;
/// objectAttributes bit 17: a decryption key.
pub const DECRYPT: u32 = 1 << 17;
/// objectAttributes bit 18: a signing key.
pub const SIGN: u32 = 1 << 18;

/// The attribute bits above with their TPM names, for messages.
pub const ATTRIBUTE_NAMES: [(u32, &str); 10] = [
    (FIXED_TPM, "fixedTPM"),
    (ST_CLEAR, "stClear"),
    (FIXED_PARENT, "fixedParent"),
    (SENSITIVE_DATA_ORIGIN, "sensitiveDataOrigin"),
    (USER_WITH_AUTH, "userWithAuth"),
    (ADMIN_WITH_POLICY, "adminWithPolicy"),
    (NO_DA, "noDA"),
    (RESTRICTED, "restricted"),
    (DECRYPT, "decrypt"),
    (SIGN, "sign"),
];

/// The names of the attribute bits set in `attributes` (of those this module names),
/// joined by `|`.
pub fn attribute_names(attributes: u32) -> String {
    let names: Vec<&str> = ATTRIBUTE_NAMES
        .iter()
        .filter(|(bit, _)| attributes & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    names.join("|")
}

/// The TPM name of an object: its nameAlg (u16, big-endian) followed by the nameAlg
/// digest of its marshalled TPMT_PUBLIC. SHA-256, SHA-384 and SHA-512 name algorithms
/// are supported.
pub fn object_name(tpmt_public: &[u8]) -> Result<Vec<u8>, TpmError> {
    const WHAT: &str = "TPMT_PUBLIC";
    if tpmt_public.len() > MAX_PUBLIC_LEN {
        return Err(TpmError::malformed(
            WHAT,
            format!(
                "{} bytes, more than the {MAX_PUBLIC_LEN} accepted",
                tpmt_public.len()
            ),
        ));
    }
    let Some(&[hi, lo]) = tpmt_public.get(2..4) else {
        return Err(TpmError::malformed(WHAT, "too short to hold a nameAlg"));
    };
    let alg = u16::from_be_bytes([hi, lo]);
    let digest = match alg {
        TPM_ALG_SHA256 => veritee_crypto::digest::sha256(tpmt_public).to_vec(),
        TPM_ALG_SHA384 => veritee_crypto::digest::sha384(tpmt_public).to_vec(),
        TPM_ALG_SHA512 => veritee_crypto::digest::sha512(tpmt_public).to_vec(),
        other => {
            return Err(TpmError::malformed(
                WHAT,
                format!(
                    "nameAlg {} is not SHA-256, SHA-384 or SHA-512",
                    hash_name(other)
                ),
            ));
        }
    };
    let mut name = alg.to_be_bytes().to_vec();
    name.extend_from_slice(&digest);
    debug_assert_eq!(Some(name.len() - 2), digest_len(alg));
    Ok(name)
}

/// The digest of a SHA-256 policy session, started from the all-zero digest, after one
/// TPM2_PolicyPCR with `pcr_selection` (a marshalled TPML_PCR_SELECTION, exactly as the
/// TPM hashes it) and `pcr_digest` (the SHA-256 of the selected PCR values, in selection
/// order): what tpm2_createpolicy --policy-pcr computes, and an object's authPolicy must
/// equal for the object to be usable only in that PCR state.
pub fn policy_pcr_digest(pcr_selection: &[u8], pcr_digest: &[u8]) -> [u8; 32] {
    let mut h = veritee_crypto::digest::Sha256::default();
    h.update(&[0u8; 32]);
    h.update(&TPM_CC_POLICY_PCR.to_be_bytes());
    h.update(pcr_selection);
    h.update(pcr_digest);
    h.finish()
}

/// A marshalled TPML_PCR_SELECTION of one SHA-256 bank selecting `pcrs` (sizeofSelect
/// 3: PCRs 0 to 23, the PC client TPM's; indices above 23 are ignored, duplicates are
/// harmless).
pub fn pcr_selection_sha256(pcrs: &[u32]) -> Vec<u8> {
    let mut bitmap = [0u8; PCR_SELECT_SIZE];
    for &pcr in pcrs {
        if let Some(byte) = bitmap.get_mut((pcr / 8) as usize) {
            *byte |= 1 << (pcr % 8);
        }
    }
    let mut out = 1u32.to_be_bytes().to_vec();
    out.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    out.push(PCR_SELECT_SIZE as u8);
    out.extend_from_slice(&bitmap);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_of_pcrs_0_1_7_16() {
        assert_eq!(
            hex::encode(pcr_selection_sha256(&[0, 1, 7, 16, 99])),
            "00000001000b03830001"
        );
    }

    #[test]
    fn names_are_algorithm_then_digest() {
        let mut public = vec![0, 1, 0, 0x0b];
        public.extend_from_slice(&[0; 10]);
        let name = object_name(&public).unwrap();
        assert_eq!(&name[..2], &[0, 0x0b]);
        assert_eq!(&name[2..], &veritee_crypto::digest::sha256(&public));
        assert!(object_name(&[0, 1, 0]).is_err());
        assert!(object_name(&[0, 1, 0, 4]).is_err());
        assert!(object_name(&vec![0u8; MAX_PUBLIC_LEN + 1]).is_err());
    }

    #[test]
    fn attribute_names_list_set_bits() {
        assert_eq!(
            attribute_names(FIXED_TPM | FIXED_PARENT | DECRYPT),
            "fixedTPM|fixedParent|decrypt"
        );
    }
}
