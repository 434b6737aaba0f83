//! Operations by key id (flow 3), asked inside an attested session: the request and
//! its answer are encrypted end to end between customer and enclave, so the host sees
//! neither plaintexts nor results.
//!
//! Every operation names partition and key id; the key is looked up in the asking
//! tenant's namespace only, and used only for what its signed metadata allow.
//! Unsealed keys are cached by the digest of the sealed record they came from: the
//! index (which the enclave keeps fresh) names the current digest, so a key replaced
//! or deleted, here or by another node sharing the store, is never served from the
//! cache once the index has moved on.

use super::{ImportedKeyRecord, key_record, stored_metadata};
use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, internal, lock, tenant_ns};
use std::collections::HashMap;
use std::sync::Arc;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::AeadKey;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey, VerificationScheme};
use veritee_import::ciphertext;
use veritee_import::keys::{KeyRef, KeyType, Operation};
use veritee_import::metadata::ImportMetadata;
use veritee_proto::ipc::{EnclaveFailure, FailureKind};

/// Unsealed keys kept at most; past it the cache starts over.
pub const MAX_CACHED_KEYS: usize = 4096;
/// The only key version until rotation exists: ciphertexts name it.
const KEY_VERSION: u32 = 1;

/// An imported key ready for use.
pub(crate) struct LoadedKey {
    metadata: ImportMetadata,
    material: Material,
}

enum Material {
    Aes(AeadKey),
    Hmac(SecretBytes),
    Ecdsa(EcdsaSigningKey),
}

/// Unsealed keys, by tenant and key, with the digest of the record each came from.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: HashMap<(String, KeyRef), ([u8; 32], Arc<LoadedKey>)>,
}

impl KeyCache {
    /// Drops every cached key of a partition (it was deleted).
    pub(crate) fn forget_partition(&mut self, tenant: &str, partition: &str) {
        self.keys
            .retain(|(t, k), _| !(t == tenant && k.partition == partition));
    }
}

fn outcome_of(f: EnclaveFailure) -> CryptoOutcome {
    let code = match f.kind {
        FailureKind::NotFound => "not_found",
        FailureKind::Unauthorized | FailureKind::StaleSignature => "forbidden",
        FailureKind::BadRequest | FailureKind::Conflict => "bad_request",
        FailureKind::Unavailable | FailureKind::TooMany => "unavailable",
        FailureKind::Internal => "internal",
    };
    CryptoOutcome::error(code, f.message)
}

fn forbidden(key: &KeyRef, op: Operation) -> EnclaveFailure {
    failure(
        FailureKind::Unauthorized,
        format!(
            "key {key} may not be used to {}: its metadata do not allow it",
            op.as_str()
        ),
    )
}

fn bad_input(e: veritee_import::ImportError) -> EnclaveFailure {
    failure(FailureKind::BadRequest, e.to_string())
}

impl LoadedKey {
    fn unseal(bytes: &[u8]) -> Result<Self, EnclaveFailure> {
        let record = ImportedKeyRecord::decode(bytes)?;
        let metadata = stored_metadata(&record)?;
        let material = match metadata.key_type {
            KeyType::Aes256Gcm => {
                Material::Aes(AeadKey::from_slice(&record.material).map_err(internal)?)
            }
            KeyType::HmacSha256 => Material::Hmac(SecretBytes::copy_from(&record.material)),
            KeyType::EcdsaP256 => Material::Ecdsa(
                EcdsaSigningKey::from_pkcs8(EcdsaCurve::P256, &record.material)
                    .map_err(internal)?,
            ),
        };
        Ok(Self { metadata, material })
    }

    /// The key, if its metadata allow `op`.
    fn for_op(&self, key: &KeyRef, op: Operation) -> Result<&Material, EnclaveFailure> {
        if self.metadata.allows(op) {
            Ok(&self.material)
        } else {
            Err(forbidden(key, op))
        }
    }
}

impl EnclaveService {
    /// Answers a batch of operations for `tenant`: one outcome per operation, in order;
    /// one refused operation does not stop the others.
    pub(crate) fn crypto_batch(
        &self,
        tenant: &str,
        ops: Vec<CryptoOp>,
        link: &mut dyn HostLink,
    ) -> Vec<CryptoOutcome> {
        ops.into_iter()
            .map(|op| self.crypto_op(tenant, op, link).unwrap_or_else(outcome_of))
            .collect()
    }

    fn crypto_op(
        &self,
        tenant: &str,
        op: CryptoOp,
        link: &mut dyn HostLink,
    ) -> Result<CryptoOutcome, EnclaveFailure> {
        Ok(match op {
            CryptoOp::Hash { algorithm, data } => CryptoOutcome::Digest(algorithm.digest(&data)),
            CryptoOp::Encrypt {
                key,
                plaintext,
                aad,
            } => {
                let loaded = self.loaded_key(tenant, &key, link)?;
                let aes = aes_key(&key, loaded.for_op(&key, Operation::Encrypt)?)?;
                CryptoOutcome::Ciphertext(
                    ciphertext::seal(aes, &key, KEY_VERSION, &aad, plaintext.expose())
                        .map_err(internal)?,
                )
            }
            CryptoOp::Decrypt {
                key,
                ciphertext,
                aad,
            } => {
                let loaded = self.loaded_key(tenant, &key, link)?;
                let aes = aes_key(&key, loaded.for_op(&key, Operation::Decrypt)?)?;
                CryptoOutcome::Plaintext(open(aes, &key, &aad, &ciphertext)?)
            }
            CryptoOp::Translate {
                from,
                to,
                ciphertext,
                aad,
            } => {
                let source = self.loaded_key(tenant, &from, link)?;
                let target = self.loaded_key(tenant, &to, link)?;
                let source_aes = aes_key(&from, source.for_op(&from, Operation::Translate)?)?;
                let target_aes = aes_key(&to, target.for_op(&to, Operation::Encrypt)?)?;
                let plaintext = open(source_aes, &from, &aad, &ciphertext)?;
                CryptoOutcome::Ciphertext(
                    ciphertext::seal(target_aes, &to, KEY_VERSION, &aad, plaintext.expose())
                        .map_err(internal)?,
                )
            }
            CryptoOp::Sign { key, message } => {
                let loaded = self.loaded_key(tenant, &key, link)?;
                match loaded.for_op(&key, Operation::Sign)? {
                    Material::Ecdsa(signing) => {
                        CryptoOutcome::Signature(signing.sign(&message).map_err(internal)?)
                    }
                    _ => return Err(wrong_type(&key, &loaded.metadata, "sign")),
                }
            }
            CryptoOp::Hmac { key, data } => {
                let loaded = self.loaded_key(tenant, &key, link)?;
                match loaded.for_op(&key, Operation::Hmac)? {
                    Material::Hmac(k) => CryptoOutcome::Mac(
                        veritee_crypto::mac::hmac_sha256(k.expose(), &data).to_vec(),
                    ),
                    _ => return Err(wrong_type(&key, &loaded.metadata, "compute an HMAC")),
                }
            }
            CryptoOp::Verify {
                key,
                message,
                signature,
            } => {
                let loaded = self.loaded_key(tenant, &key, link)?;
                CryptoOutcome::Verified(match loaded.for_op(&key, Operation::Verify)? {
                    Material::Ecdsa(signing) => veritee_crypto::sign::verify(
                        VerificationScheme::EcdsaP256Sha256Fixed,
                        signing.public_key_point(),
                        &message,
                        &signature,
                    )
                    .is_ok(),
                    Material::Hmac(k) => {
                        veritee_crypto::mac::verify_hmac_sha256(k.expose(), &message, &signature)
                    }
                    Material::Aes(_) => {
                        return Err(wrong_type(&key, &loaded.metadata, "verify"));
                    }
                })
            }
        })
    }

    /// The tenant's key, from the cache if its sealed record has not changed since.
    fn loaded_key(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
    ) -> Result<Arc<LoadedKey>, EnclaveFailure> {
        let not_found = || {
            failure(
                FailureKind::NotFound,
                format!("no key {key} (in this tenant's partitions)"),
            )
        };
        // Names with '/' would reach outside the partition's records.
        if veritee_channel::ops::check_name(&key.partition).is_err()
            || veritee_channel::ops::check_name(&key.key_id).is_err()
        {
            return Err(not_found());
        }
        let ns = tenant_ns(tenant);
        let record = key_record(&key.partition, &key.key_id);
        let Some(digest) = self.record_digest(link, &ns, &record)? else {
            return Err(not_found());
        };
        let cache_key = (tenant.to_string(), key.clone());
        if let Some((d, loaded)) = lock(&self.import_keys).keys.get(&cache_key)
            && *d == digest
        {
            return Ok(Arc::clone(loaded));
        }
        let bytes = self.record_get(link, &ns, &record)?.ok_or_else(not_found)?;
        let loaded = Arc::new(LoadedKey::unseal(bytes.expose())?);
        let mut cache = lock(&self.import_keys);
        if cache.keys.len() >= MAX_CACHED_KEYS {
            cache.keys.clear();
        }
        // The digest read before the record: if it moved on meanwhile, the next use
        // finds the index's newer digest and unseals again.
        cache.keys.insert(cache_key, (digest, Arc::clone(&loaded)));
        Ok(loaded)
    }
}

fn aes_key<'m>(key: &KeyRef, material: &'m Material) -> Result<&'m AeadKey, EnclaveFailure> {
    match material {
        Material::Aes(k) => Ok(k),
        _ => Err(failure(
            FailureKind::BadRequest,
            format!("key {key} is not an AES key: it cannot encrypt or decrypt"),
        )),
    }
}

fn wrong_type(key: &KeyRef, metadata: &ImportMetadata, what: &str) -> EnclaveFailure {
    failure(
        FailureKind::BadRequest,
        format!(
            "key {key} is a {} key: it cannot {what}",
            metadata.key_type.as_str()
        ),
    )
}

fn open(
    key: &AeadKey,
    key_ref: &KeyRef,
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<SecretBytes, EnclaveFailure> {
    let version = ciphertext::key_version(ciphertext).map_err(bad_input)?;
    if version != KEY_VERSION {
        return Err(failure(
            FailureKind::NotFound,
            format!("key {key_ref} has no version {version}"),
        ));
    }
    ciphertext::open(key, key_ref, aad, ciphertext).map_err(bad_input)
}
