//! The double encryption of an imported key.
//!
//! The customer encrypts the key material to the TEE's key (inner layer), then the
//! inner ciphertext to the provider's key (outer layer). Both are HPKE (RFC 9180,
//! X25519, HKDF-SHA256, AES-256-GCM) with the digest of the signed metadata as
//! associated data, and each has its own `info`, so neither layer opens as the other
//! and neither opens for other metadata. The host peels the outer layer only; the
//! inner opens inside the enclave alone.
//!
//! ```text
//! layer = enc (32 bytes) || AES-256-GCM ciphertext || tag (16)
//! ```

use crate::ImportError;
use crate::payload::MAX_PAYLOAD_LEN;
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};

/// HPKE `info` of the inner layer (to the TEE).
pub const TEE_LAYER_INFO: &[u8] = b"veritee import tee layer v1";
/// HPKE `info` of the outer layer (to the provider).
pub const PROVIDER_LAYER_INFO: &[u8] = b"veritee import provider layer v1";
/// What one HPKE layer adds.
pub const LAYER_OVERHEAD: usize = hpke::ENCAPSULATED_KEY_LEN + hpke::TAG_LEN;
/// Largest inner layer.
pub const MAX_INNER_LEN: usize = MAX_PAYLOAD_LEN + LAYER_OVERHEAD;
/// Largest outer layer.
pub const MAX_OUTER_LEN: usize = MAX_INNER_LEN + LAYER_OVERHEAD;

/// Encrypts `payload` (an encoded [`crate::payload::ImportPayload`]) to the TEE, then
/// to the provider: the outer layer.
pub fn seal(
    tee: &HpkePublicKey,
    provider: &HpkePublicKey,
    metadata_digest: &[u8; 32],
    payload: &SecretBytes,
) -> Result<Vec<u8>, ImportError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(ImportError::Malformed(format!(
            "import payload of {} bytes (at most {MAX_PAYLOAD_LEN})",
            payload.len()
        )));
    }
    let inner = hpke::seal(tee, TEE_LAYER_INFO, metadata_digest, payload.expose())?;
    seal_provider_layer(provider, metadata_digest, &inner)
}

/// Encrypts a TEE layer made already (one of the standard formats of
/// [`crate::formats`]) to the provider: the outer layer.
pub fn seal_provider_layer(
    provider: &HpkePublicKey,
    metadata_digest: &[u8; 32],
    inner: &[u8],
) -> Result<Vec<u8>, ImportError> {
    if inner.len() > MAX_INNER_LEN {
        return Err(ImportError::Malformed(format!(
            "TEE layer of {} bytes (at most {MAX_INNER_LEN})",
            inner.len()
        )));
    }
    Ok(hpke::seal(
        provider,
        PROVIDER_LAYER_INFO,
        metadata_digest,
        inner,
    )?)
}

/// The provider's part: opens the outer layer, giving the inner (still encrypted to
/// the TEE).
pub fn peel_provider_layer(
    provider: &HpkeKeyPair,
    metadata_digest: &[u8; 32],
    outer: &[u8],
) -> Result<Vec<u8>, ImportError> {
    bounded(outer, MAX_OUTER_LEN, "outer layer")?;
    let inner = hpke::open(provider, PROVIDER_LAYER_INFO, metadata_digest, outer).map_err(|_| {
        ImportError::Decrypt(
            "the provider layer does not open with this provider's key for these metadata: it was encrypted to another provider key, or the metadata or ciphertext were changed"
                .into(),
        )
    })?;
    // Not secret: the inner layer is ciphertext to the TEE.
    Ok(inner.expose().clone())
}

/// The enclave's part: opens the inner layer, giving the encoded payload.
pub fn open_tee_layer(
    tee: &HpkeKeyPair,
    metadata_digest: &[u8; 32],
    inner: &[u8],
) -> Result<SecretBytes, ImportError> {
    bounded(inner, MAX_INNER_LEN, "inner layer")?;
    hpke::open(tee, TEE_LAYER_INFO, metadata_digest, inner).map_err(|_| {
        ImportError::Decrypt(
            "the TEE layer does not open with this enclave's import key for these metadata: it was encrypted to another TEE key, or the metadata or ciphertext were changed"
                .into(),
        )
    })
}

fn bounded(bytes: &[u8], max: usize, what: &str) -> Result<(), ImportError> {
    if bytes.len() > max {
        return Err(ImportError::Malformed(format!(
            "{what} of {} bytes (at most {max})",
            bytes.len()
        )));
    }
    if bytes.len() < LAYER_OVERHEAD {
        return Err(ImportError::Malformed(format!(
            "{what} of {} bytes is truncated (at least {LAYER_OVERHEAD})",
            bytes.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layer_opens_only_with_its_key_and_metadata() {
        let tee = HpkeKeyPair::generate();
        let provider = HpkeKeyPair::generate();
        let material = SecretBytes::copy_from(b"canary-key-material-0123456789ab");
        let digest = [5u8; 32];
        let outer = seal(
            &tee.public_key(),
            &provider.public_key(),
            &digest,
            &material,
        )
        .unwrap();
        // The TEE cannot skip the provider layer, nor the provider the TEE's.
        assert!(open_tee_layer(&tee, &digest, &outer).is_err());
        let inner = peel_provider_layer(&provider, &digest, &outer).unwrap();
        assert!(peel_provider_layer(&provider, &digest, &inner).is_err());
        assert!(!inner.windows(10).any(|w| w == b"canary-key"));
        assert_eq!(
            open_tee_layer(&tee, &digest, &inner).unwrap().expose(),
            material.expose()
        );
        // Other metadata, another key, a flipped bit, a truncation: refused.
        assert!(peel_provider_layer(&provider, &[6u8; 32], &outer).is_err());
        assert!(peel_provider_layer(&HpkeKeyPair::generate(), &digest, &outer).is_err());
        assert!(open_tee_layer(&tee, &[6u8; 32], &inner).is_err());
        assert!(open_tee_layer(&HpkeKeyPair::generate(), &digest, &inner).is_err());
        for i in [0, 31, 32, inner.len() - 1] {
            let mut flipped = inner.clone();
            flipped[i] ^= 1;
            assert!(open_tee_layer(&tee, &digest, &flipped).is_err(), "byte {i}");
        }
        let err = open_tee_layer(&tee, &digest, &inner[..20]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = peel_provider_layer(&provider, &digest, &vec![0; MAX_OUTER_LEN + 1]).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }
}
