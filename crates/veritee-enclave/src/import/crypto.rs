//! Operations by key id (flow 3), asked inside an attested session: the request and
//! its answer are encrypted end to end between customer and enclave, so the host sees
//! neither plaintexts nor results.
//!
//! Every operation names partition and key id; the key is looked up in the asking
//! tenant's namespace only, and used only for what its signed metadata allow.
//! Keys have versions: encryption and signing use the newest, decryption and
//! verification the one the ciphertext or the request names, down to the minimum the
//! owner set. A key whose metadata set a rotation period gets a new version, made
//! here, at its first use past it.
//!
//! Unsealed keys are cached by the digest of the sealed record they came from: the
//! index (which the enclave keeps fresh) names the current digest, so a key rotated,
//! replaced or deleted is never served from the cache once the index has moved on.

use super::{ImportedKeyRecord, VersionRecord, key_record, stored_metadata};
use crate::audit::{MAX_USAGE_ROWS, Usage};
use crate::host::HostLinkExt;
use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, internal, lock, tenant_ns};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tracing::warn;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_crypto::Confidential;
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::AeadKey;
use veritee_crypto::rsa::RsaPrivateKey;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey, VerificationScheme};
use veritee_import::ciphertext;
use veritee_import::keys::{KeyRef, KeyType, Operation};
use veritee_import::metadata::ImportMetadata;
use veritee_import::quorum::{Action, QuorumProof};
use veritee_import::revocation::{
    MAX_INTERVAL_SECS, MIN_INTERVAL_SECS, RevocationData, RevocationStatus, TOKEN_LEN,
};
use veritee_proto::ipc::{EnclaveFailure, FailureKind};

/// Unsealed keys kept at most; past it the cache starts over.
pub const MAX_CACHED_KEYS: usize = 4096;
/// The partition name under which the key-management flow's deployed data keys are
/// used by id (`deployed/NAME`); no imported partition may take it.
pub const DEPLOYED_PARTITION: &str = "deployed";
/// Versions one key may have.
pub const MAX_KEY_VERSIONS: u32 = 1000;

/// Which tenants' trusted tasks may use a key.
enum TaskUse {
    /// Those its signed metadata name (none: no task).
    Signers(Vec<String>),
    /// Its owner's only: a key deployed by key management has no metadata to say more.
    OwnerOnly,
}

impl TaskUse {
    fn permits(&self, owner: &str, signer: &str) -> bool {
        match self {
            Self::Signers(signers) => signers.iter().any(|s| s == signer),
            Self::OwnerOnly => owner == signer,
        }
    }
}

/// An imported key ready for use.
pub(crate) struct LoadedKey {
    key_type: KeyType,
    /// What its metadata allow.
    operations: Vec<Operation>,
    task_use: TaskUse,
    rotate_after_secs: Option<u64>,
    versions: BTreeMap<u32, Version>,
    minimum: u32,
    revocation: Option<Gate>,
    /// When a `key.disable` action disabled it.
    disabled_at: Option<i64>,
    /// For a key its metadata let other nodes hold: the key of its status notes.
    status: Option<StatusKey>,
}

/// Authenticates the notes by which nodes sharing a store tell each other that a key
/// they all hold was disabled. Derived from the key's first version, which only the
/// enclaves holding the key (and its owner) know: the host can withhold a note, never
/// forge one.
type StatusKey = Confidential<[u8; 32]>;

/// Namespace of the status notes, in the store the nodes share (not in any node's
/// sealed state: each node reads the others' notes).
const STATUS_NS: &str = "kms-status";
const STATUS_LABEL: &[u8] = b"veritee import key status v1";

fn status_key_of(first_version: &[u8]) -> Result<StatusKey, EnclaveFailure> {
    let mut out = Confidential::new([0u8; 32]);
    veritee_crypto::hkdf::derive_into(
        veritee_crypto::hkdf::HkdfHash::Sha256,
        STATUS_LABEL,
        first_version,
        &[b"status"],
        out.expose_mut(),
    )
    .map_err(internal)?;
    Ok(out)
}

fn status_name(tenant: &str, key: &KeyRef) -> String {
    format!("{tenant}/{}/{}", key.partition, key.key_id)
}

/// What a note's tag covers: its name and the time the key was disabled.
fn status_tag(status: &StatusKey, name: &str, at: i64) -> [u8; 32] {
    let mut signed = STATUS_LABEL.to_vec();
    signed.extend_from_slice(name.as_bytes());
    signed.push(0);
    signed.extend_from_slice(&at.to_be_bytes());
    veritee_crypto::mac::hmac_sha256(status.expose(), &signed)
}

/// A key's revocation endpoint and its last verdicts.
struct Gate {
    data: RevocationData,
    last_active: Option<i64>,
    revoked_at: Option<i64>,
}

struct Version {
    material: Material,
    created: i64,
}

enum Material {
    Aes(AeadKey),
    Hmac(SecretBytes),
    Ecdsa(EcdsaSigningKey),
    Rsa(RsaPrivateKey),
}

impl Material {
    /// The public key (SPKI DER) of a signing or decryption key pair.
    fn public_key(&self) -> Result<Option<Vec<u8>>, EnclaveFailure> {
        Ok(match self {
            Self::Ecdsa(k) => Some(k.public_key_spki().map_err(internal)?),
            Self::Rsa(k) => Some(k.public_key_spki().map_err(internal)?),
            Self::Aes(_) | Self::Hmac(_) => None,
        })
    }
}

/// Unsealed keys, by tenant and key, with the digest of the record each came from;
/// and when each key's revocation endpoint last failed to answer.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: HashMap<(String, KeyRef), ([u8; 32], Arc<LoadedKey>)>,
    silent: HashMap<(String, KeyRef), i64>,
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

/// How an operation is counted in the audit log: its action, what it names, and
/// whether its success has an entry of its own.
fn usage_of(op: &CryptoOp) -> (&'static str, String, bool) {
    match op {
        CryptoOp::Encrypt { key, .. } => ("crypto.encrypt", key.to_string(), false),
        CryptoOp::Decrypt { key, .. } => ("crypto.decrypt", key.to_string(), false),
        CryptoOp::Translate { from, to, .. } => {
            ("crypto.translate", format!("{from} -> {to}"), false)
        }
        CryptoOp::Sign { key, .. } => ("crypto.sign", key.to_string(), false),
        CryptoOp::Verify { key, .. } => ("crypto.verify", key.to_string(), false),
        CryptoOp::Hmac { key, .. } => ("crypto.hmac", key.to_string(), false),
        CryptoOp::Hash { algorithm, .. } => ("crypto.hash", algorithm.as_str().to_string(), false),
        CryptoOp::Rotate { key } => ("crypto.rotate", key.to_string(), true),
        CryptoOp::SetMinimumVersion { key, .. } => {
            ("crypto.minimum-version", key.to_string(), true)
        }
    }
}

fn bad_input(e: veritee_import::ImportError) -> EnclaveFailure {
    failure(FailureKind::BadRequest, e.to_string())
}

fn material_of(key_type: KeyType, bytes: &[u8]) -> Result<Material, EnclaveFailure> {
    Ok(match key_type {
        KeyType::Aes256Gcm => Material::Aes(AeadKey::from_slice(bytes).map_err(internal)?),
        KeyType::HmacSha256 => Material::Hmac(SecretBytes::copy_from(bytes)),
        KeyType::EcdsaP256 => {
            Material::Ecdsa(EcdsaSigningKey::from_pkcs8(EcdsaCurve::P256, bytes).map_err(internal)?)
        }
        KeyType::Rsa => Material::Rsa(RsaPrivateKey::from_pkcs8(bytes).map_err(internal)?),
    })
}

/// What a new version must match: an HMAC key's length, an RSA key's size in bits.
fn size_of(key_type: KeyType, material: &[u8]) -> Result<usize, EnclaveFailure> {
    match key_type {
        KeyType::Rsa => Ok(RsaPrivateKey::from_pkcs8(material)
            .map_err(internal)?
            .bits()),
        _ => Ok(material.len()),
    }
}

/// New material for a rotation, made here: the type's own form, and the size (see
/// [`size_of`]) of the version before.
fn fresh_material(key_type: KeyType, like: usize) -> Result<SecretBytes, EnclaveFailure> {
    match key_type {
        KeyType::Aes256Gcm => Ok(SecretBytes::copy_from(
            veritee_crypto::rand::secret_array::<32>()
                .map_err(internal)?
                .expose(),
        )),
        KeyType::HmacSha256 => {
            let mut m = SecretBytes::new(vec![0u8; like.clamp(32, 64)]);
            veritee_crypto::rand::fill(m.expose_mut()).map_err(internal)?;
            Ok(m)
        }
        KeyType::EcdsaP256 => EcdsaSigningKey::generate(EcdsaCurve::P256)
            .and_then(|k| k.to_pkcs8())
            .map_err(internal),
        KeyType::Rsa => RsaPrivateKey::generate(like)
            .and_then(|k| k.to_pkcs8())
            .map_err(internal),
    }
}

impl LoadedKey {
    fn unseal(bytes: &[u8]) -> Result<Self, EnclaveFailure> {
        let record = ImportedKeyRecord::decode(bytes)?;
        let metadata = stored_metadata(&record)?;
        let mut versions = BTreeMap::new();
        for v in &record.versions {
            versions.insert(
                v.version,
                Version {
                    material: material_of(metadata.key_type, &v.material)?,
                    created: v.created,
                },
            );
        }
        if versions.is_empty() {
            return Err(internal("a stored key has no version"));
        }
        let revocation =
            match &record.revocation {
                None => None,
                Some(r) => {
                    let mut token = Confidential::new([0u8; TOKEN_LEN]);
                    if r.token.len() != TOKEN_LEN {
                        return Err(internal("a stored revocation token has the wrong length"));
                    }
                    token.expose_mut().copy_from_slice(&r.token);
                    Some(Gate {
                        data: RevocationData {
                            endpoint: r.endpoint.clone(),
                            endpoint_key: r.endpoint_key.as_slice().try_into().map_err(|_| {
                                internal("a stored endpoint key has the wrong length")
                            })?,
                            token,
                            interval_secs: r.interval_secs,
                        },
                        last_active: r.last_active,
                        revoked_at: r.revoked_at,
                    })
                }
            };
        Ok(Self {
            key_type: metadata.key_type,
            operations: metadata.operations,
            task_use: TaskUse::Signers(metadata.task_signers),
            rotate_after_secs: metadata.rotate_after_secs,
            versions,
            minimum: record.minimum_version,
            revocation,
            disabled_at: record.disabled_at,
            status: match (&metadata.release, record.versions.first()) {
                (Some(_), Some(first)) => Some(status_key_of(&first.material)?),
                _ => None,
            },
        })
    }

    /// Refuses `op` unless the key's metadata allow it.
    fn allow(&self, key: &KeyRef, op: Operation) -> Result<(), EnclaveFailure> {
        if self.operations.contains(&op) {
            return Ok(());
        }
        Err(failure(
            FailureKind::Unauthorized,
            format!(
                "key {key} may not be used to {}: its metadata do not allow it",
                op.as_str()
            ),
        ))
    }

    /// The newest version, for new ciphertexts, signatures and tags.
    fn newest(&self) -> Result<(u32, &Material), EnclaveFailure> {
        self.versions
            .last_key_value()
            .map(|(n, v)| (*n, &v.material))
            .ok_or_else(|| internal("a loaded key has no version"))
    }

    /// Version `n`, if it exists and is not below the minimum.
    fn version(&self, key: &KeyRef, n: u32) -> Result<&Material, EnclaveFailure> {
        if n < self.minimum {
            return Err(failure(
                FailureKind::Unauthorized,
                format!(
                    "key {key} version {n} is below the minimum version {} its owner set",
                    self.minimum
                ),
            ));
        }
        self.versions.get(&n).map(|v| &v.material).ok_or_else(|| {
            failure(
                FailureKind::NotFound,
                format!("key {key} has no version {n}"),
            )
        })
    }

    /// A signature by the newest version, and that version.
    fn sign(&self, key: &KeyRef, message: &[u8]) -> Result<(u32, Vec<u8>), EnclaveFailure> {
        match self.newest()? {
            (version, Material::Ecdsa(signing)) => {
                Ok((version, signing.sign(message).map_err(internal)?))
            }
            (version, Material::Rsa(signing)) => {
                Ok((version, signing.sign_pss_sha256(message).map_err(internal)?))
            }
            _ => Err(self.wrong_type(key, "sign")),
        }
    }

    /// An HMAC tag by the newest version, and that version.
    fn mac(&self, key: &KeyRef, data: &[u8]) -> Result<(u32, Vec<u8>), EnclaveFailure> {
        match self.newest()? {
            (version, Material::Hmac(k)) => Ok((
                version,
                veritee_crypto::mac::hmac_sha256(k.expose(), data).to_vec(),
            )),
            _ => Err(self.wrong_type(key, "compute an HMAC")),
        }
    }

    /// Whether `signature` (or tag) over `message` holds under `version` (or the newest).
    fn verify(
        &self,
        key: &KeyRef,
        version: Option<u32>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, EnclaveFailure> {
        let material = match version {
            Some(n) => self.version(key, n)?,
            None => self.newest()?.1,
        };
        Ok(match material {
            Material::Ecdsa(signing) => veritee_crypto::sign::verify(
                VerificationScheme::EcdsaP256Sha256Fixed,
                signing.public_key_point(),
                message,
                signature,
            )
            .is_ok(),
            Material::Rsa(signing) => veritee_crypto::sign::verify(
                VerificationScheme::RsaPssSha256,
                &signing.public_key_spki().map_err(internal)?,
                message,
                signature,
            )
            .is_ok(),
            Material::Hmac(k) => {
                veritee_crypto::mac::verify_hmac_sha256(k.expose(), message, signature)
            }
            Material::Aes(_) => return Err(self.wrong_type(key, "verify")),
        })
    }

    fn wrong_type(&self, key: &KeyRef, what: &str) -> EnclaveFailure {
        failure(
            FailureKind::BadRequest,
            format!(
                "key {key} is a {} key: it cannot {what}",
                self.key_type.as_str()
            ),
        )
    }
}

impl EnclaveService {
    /// Answers a batch of operations for `tenant`: one outcome per operation, in order;
    /// one refused operation does not stop the others.
    ///
    /// Every operation is counted in the audit log (see [`crate::audit`]): by key,
    /// operation and outcome. If the log cannot take the counts when this batch finds
    /// them due, the batch is refused as a whole: its results do not leave without
    /// their counts (those of the window's earlier batches are lost with them, as a
    /// crash would lose them).
    pub(crate) fn crypto_batch(
        &self,
        tenant: &str,
        ops: Vec<CryptoOp>,
        link: &mut dyn HostLink,
    ) -> Result<Vec<CryptoOutcome>, EnclaveFailure> {
        let mut used = Vec::with_capacity(ops.len());
        let outcomes = ops
            .into_iter()
            .map(|op| {
                let (action, object, own_entry) = usage_of(&op);
                let outcome = self.crypto_op(tenant, op, link).unwrap_or_else(outcome_of);
                let result = match &outcome {
                    CryptoOutcome::Error { code, message } => {
                        format!("refused ({code}): {message}")
                    }
                    // Rotation and a new minimum have entries of their own.
                    _ if own_entry => return outcome,
                    _ => "ok".to_string(),
                };
                used.push((
                    Usage {
                        action,
                        tenant: tenant.to_string(),
                        object,
                        outcome: result,
                    },
                    1,
                ));
                outcome
            })
            .collect();
        self.audit_usage(link, used)?;
        Ok(outcomes)
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
                let loaded = self.key_for_new_output(tenant, &key, link)?;
                loaded.allow(&key, Operation::Encrypt)?;
                CryptoOutcome::Ciphertext(seal(&loaded, &key, &aad, plaintext.expose())?)
            }
            CryptoOp::Decrypt {
                key,
                ciphertext,
                aad,
            } => {
                let loaded = self.loaded_key(tenant, &key, link)?;
                loaded.allow(&key, Operation::Decrypt)?;
                CryptoOutcome::Plaintext(open(&loaded, &key, &aad, &ciphertext)?)
            }
            CryptoOp::Translate {
                from,
                to,
                ciphertext,
                aad,
            } => {
                let source = self.loaded_key(tenant, &from, link)?;
                source.allow(&from, Operation::Translate)?;
                let target = self.key_for_new_output(tenant, &to, link)?;
                target.allow(&to, Operation::Encrypt)?;
                let plaintext = open(&source, &from, &aad, &ciphertext)?;
                CryptoOutcome::Ciphertext(seal(&target, &to, &aad, plaintext.expose())?)
            }
            CryptoOp::Sign { key, message } => {
                let loaded = self.key_for_new_output(tenant, &key, link)?;
                loaded.allow(&key, Operation::Sign)?;
                let (version, signature) = loaded.sign(&key, &message)?;
                CryptoOutcome::Signature { signature, version }
            }
            CryptoOp::Hmac { key, data } => {
                let loaded = self.key_for_new_output(tenant, &key, link)?;
                loaded.allow(&key, Operation::Hmac)?;
                let (version, tag) = loaded.mac(&key, &data)?;
                CryptoOutcome::Mac { tag, version }
            }
            CryptoOp::Verify {
                key,
                version,
                message,
                signature,
            } => {
                let loaded = self.loaded_key(tenant, &key, link)?;
                loaded.allow(&key, Operation::Verify)?;
                CryptoOutcome::Verified(loaded.verify(&key, version, &message, &signature)?)
            }
            // Owner actions, still only on a key its revocation endpoint lets be used.
            CryptoOp::Rotate { key } => {
                self.loaded_key(tenant, &key, link)?;
                match self.rotate(tenant, &key, None, link)? {
                    Some((version, public_key)) => CryptoOutcome::Rotated {
                        version,
                        public_key,
                    },
                    None => return Err(internal("a rotation on demand made no version")),
                }
            }
            CryptoOp::SetMinimumVersion { key, version } => {
                self.loaded_key(tenant, &key, link)?;
                self.set_minimum_version(tenant, &key, version, link)?;
                CryptoOutcome::Done
            }
        })
    }

    /// The key for a new ciphertext, signature or tag: rotated first if its metadata
    /// set a period and its newest version is older than that.
    fn key_for_new_output(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
    ) -> Result<Arc<LoadedKey>, EnclaveFailure> {
        let loaded = self.loaded_key(tenant, key, link)?;
        self.rotated_if_due(tenant, key, loaded, link)
    }

    /// `loaded` (which passed the revocation gate), or, when its metadata set a rotation
    /// period its newest version has outlived, the key with the version made now.
    fn rotated_if_due(
        &self,
        tenant: &str,
        key: &KeyRef,
        loaded: Arc<LoadedKey>,
        link: &mut dyn HostLink,
    ) -> Result<Arc<LoadedKey>, EnclaveFailure> {
        let Some(period) = loaded.rotate_after_secs else {
            return Ok(loaded);
        };
        let newest_created = loaded
            .versions
            .last_key_value()
            .map_or(i64::MIN, |(_, v)| v.created);
        if !due(newest_created, period, self.clock().now().unix_timestamp()) {
            return Ok(loaded);
        }
        self.rotate(tenant, key, Some(period), link)?;
        self.loaded_key(tenant, key, link)
    }

    /// Adds a version made here; returns it, and for a signing key its public key.
    /// A scheduled rotation (`due_after` its period) that another has made meanwhile
    /// makes none, and answers `None`.
    fn rotate(
        &self,
        tenant: &str,
        key: &KeyRef,
        due_after: Option<u64>,
        link: &mut dyn HostLink,
    ) -> Result<Option<NewVersion>, EnclaveFailure> {
        let mut made = None;
        self.update_key(tenant, key, link, |record, metadata, now| {
            let newest = record.versions.last().map_or(0, |v| v.version);
            if let (Some(period), Some(last)) = (due_after, record.versions.last())
                && !due(last.created, period, now)
            {
                return Ok(false);
            }
            if newest >= MAX_KEY_VERSIONS {
                return Err(failure(
                    FailureKind::TooMany,
                    format!("key {key} has {MAX_KEY_VERSIONS} versions already"),
                ));
            }
            if metadata.release.is_some() {
                return Err(shared_versions(key));
            }
            let like = match record.versions.last() {
                Some(v) => size_of(metadata.key_type, &v.material)?,
                None => return Err(internal("a stored key has no version")),
            };
            let material = fresh_material(metadata.key_type, like)?;
            let public_key = material_of(metadata.key_type, material.expose())?.public_key()?;
            record.versions.push(VersionRecord {
                version: newest + 1,
                material: material.expose().clone(),
                created: now,
            });
            made = Some((newest + 1, public_key));
            Ok(true)
        })?;
        if let Some((version, _)) = &made {
            let why = if due_after.is_some() {
                "scheduled"
            } else {
                "on demand"
            };
            self.audit(
                link,
                "import.rotate",
                tenant,
                &key.to_string(),
                &format!("ok: version {version}, {why}"),
            )?;
        }
        Ok(made)
    }

    fn set_minimum_version(
        &self,
        tenant: &str,
        key: &KeyRef,
        version: u32,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        self.update_key(tenant, key, link, |record, metadata, _| {
            if metadata.release.is_some() {
                return Err(shared_versions(key));
            }
            let newest = record.versions.last().map_or(0, |v| v.version);
            if version > newest {
                return Err(failure(
                    FailureKind::BadRequest,
                    format!(
                        "key {key} has no version {version} (newest {newest}): the minimum cannot pass the newest"
                    ),
                ));
            }
            if version < record.minimum_version {
                return Err(failure(
                    FailureKind::BadRequest,
                    format!(
                        "key {key}'s minimum version is {} already: it never goes back down",
                        record.minimum_version
                    ),
                ));
            }
            record.minimum_version = version;
            Ok(true)
        })?;
        self.audit(
            link,
            "import.minimum-version",
            tenant,
            &key.to_string(),
            &format!("ok: {version}"),
        )
    }

    /// Disables an imported key for good: by the tenant alone while it has no
    /// security officers, else with K of their approvals on a token for exactly this
    /// key. Every later use, rotation or change of minimum is refused.
    pub(super) fn disable_key(
        &self,
        tenant: &str,
        key: &KeyRef,
        proof: Option<&QuorumProof>,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        check_ref(key)?;
        let ns = tenant_ns(tenant);
        // Looked up before the quorum is spent on it.
        if self
            .record_digest(link, &ns, &key_record(&key.partition, &key.key_id))?
            .is_none()
        {
            return Err(not_found(key));
        }
        let how = self.authorize(tenant, Action::DisableKey, &key.to_string(), proof, link)?;
        self.disable_for_good(tenant, key, link, |record, now| {
            record.disabled_at = Some(now)
        })?;
        self.audit(
            link,
            "import.disable",
            tenant,
            &key.to_string(),
            &format!("ok: disabled for good, {how}"),
        )
    }

    /// Marks a key disabled for good (`mark` says how: a disable, a revocation), and
    /// tells the other nodes that may hold it.
    fn disable_for_good(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
        mark: impl FnOnce(&mut ImportedKeyRecord, i64),
    ) -> Result<(), EnclaveFailure> {
        let mut shared = None;
        self.update_key(tenant, key, link, |record, metadata, now| {
            mark(record, now);
            shared = shared_status(record, metadata, now)?;
            Ok(true)
        })?;
        self.disabled_keys.insert(tenant, key);
        if let Some((status, at)) = shared {
            self.publish_disabled(tenant, key, &status, at, link);
        }
        Ok(())
    }

    /// Reads, changes and writes back a key's record, one change at a time.
    fn update_key(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
        change: impl FnOnce(
            &mut ImportedKeyRecord,
            &ImportMetadata,
            i64,
        ) -> Result<bool, EnclaveFailure>,
    ) -> Result<(), EnclaveFailure> {
        check_ref(key)?;
        let _one_at_a_time = lock(&self.import_writes);
        let ns = tenant_ns(tenant);
        let record_key = key_record(&key.partition, &key.key_id);
        let bytes = self
            .record_get(link, &ns, &record_key)?
            .ok_or_else(|| not_found(key))?;
        let mut record = ImportedKeyRecord::decode(bytes.expose())?;
        let metadata = stored_metadata(&record)?;
        if record
            .revocation
            .as_ref()
            .is_some_and(|r| r.revoked_at.is_some())
        {
            return Err(failure(
                FailureKind::Unauthorized,
                format!("key {key} was revoked by its owner: it is disabled for good"),
            ));
        }
        if let Some(at) = record.disabled_at {
            return Err(disabled(key, at));
        }
        if change(&mut record, &metadata, self.clock().now().unix_timestamp())? {
            self.record_put(link, &ns, &record_key, &record.encode()?)?;
        }
        Ok(())
    }

    /// The tenant's key, from the cache if its sealed record has not changed since,
    /// as its revocation gate lets it be used.
    fn loaded_key(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
    ) -> Result<Arc<LoadedKey>, EnclaveFailure> {
        let stored = self.stored_key(tenant, key, link)?;
        self.shared_status_gate(tenant, key, &stored, link)?;
        self.revocation_gate(tenant, key, stored, link)
    }

    /// The tenant's key as stored, before its revocation gate: what [`Self::loaded_key`]
    /// gates, and what a task's grant looks at first (whether the key's metadata allow
    /// the task's signer) so that another tenant learns nothing of its state.
    fn stored_key(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
    ) -> Result<Arc<LoadedKey>, EnclaveFailure> {
        check_ref(key)?;
        if key.partition == DEPLOYED_PARTITION {
            return self.deployed_key(tenant, key, link);
        }
        let ns = tenant_ns(tenant);
        let record = key_record(&key.partition, &key.key_id);
        let digest = match self.record_digest(link, &ns, &record)? {
            Some(digest) => digest,
            None => {
                self.replicate_imported(tenant, key, link)?;
                self.record_digest(link, &ns, &record)?
                    .ok_or_else(|| not_found(key))?
            }
        };
        let cache_key = (tenant.to_string(), key.clone());
        let cached = lock(&self.import_keys)
            .keys
            .get(&cache_key)
            .filter(|(d, _)| *d == digest)
            .map(|(_, loaded)| Arc::clone(loaded));
        if let Some(loaded) = cached {
            return Ok(loaded);
        }
        let bytes = self
            .record_get(link, &ns, &record)?
            .ok_or_else(|| not_found(key))?;
        let loaded = Arc::new(LoadedKey::unseal(bytes.expose())?);
        {
            let mut cache = lock(&self.import_keys);
            if cache.keys.len() >= MAX_CACHED_KEYS {
                cache.keys.clear();
            }
            // The digest read before the record: if it moved on meanwhile, the next
            // use finds the index's newer digest and unseals again.
            cache.keys.insert(cache_key, (digest, Arc::clone(&loaded)));
        }
        Ok(loaded)
    }

    /// `owner`'s key for a trusted task that `signer` initiated: loaded as the session
    /// operations load it (the same namespace, revocation gate and disabled check),
    /// and only if the key's metadata name `signer` among its task signers (a deployed
    /// key: only if `signer` is its owner). Whether another tenant's key exists, or is
    /// disabled, is not told to a signer it does not allow.
    pub(crate) fn task_key(
        &self,
        owner: &str,
        key: &KeyRef,
        signer: &str,
        link: &mut dyn HostLink,
    ) -> Result<Arc<LoadedKey>, EnclaveFailure> {
        let not_theirs = || {
            failure(
                FailureKind::Unauthorized,
                format!(
                    "key {owner}/{key} is not usable by tasks of tenant {signer}: there is no such key, or its metadata do not name that tenant among its task_signers"
                ),
            )
        };
        // A deployed key's replica may be fetched from a peer: not for another tenant.
        if key.partition == DEPLOYED_PARTITION && owner != signer {
            return Err(not_theirs());
        }
        let stored = match self.stored_key(owner, key, link) {
            Ok(stored) => stored,
            Err(f) if f.kind == FailureKind::NotFound && owner != signer => {
                return Err(not_theirs());
            }
            Err(f) => return Err(f),
        };
        if !stored.task_use.permits(owner, signer) {
            if owner != signer {
                return Err(not_theirs());
            }
            return Err(failure(
                FailureKind::Unauthorized,
                format!(
                    "key {key} may not be used by this tenant's tasks: its metadata do not name tenant {signer} among its task_signers (import it with --task-signer {signer})"
                ),
            ));
        }
        self.shared_status_gate(owner, key, &stored, link)?;
        let gated = self.revocation_gate(owner, key, stored, link)?;
        self.rotated_if_due(owner, key, gated, link)
    }

    /// The keys a long-running workload of `signer` names, each loaded as a task's
    /// are (see [`Self::task_key`]); one refused now keeps its place, withheld with
    /// the reason, so the workload's other keys keep their indices.
    pub(crate) fn workload_keys(
        &self,
        signer: &str,
        named: &[veritee_task::messages::NamedKey],
        link: &mut dyn HostLink,
    ) -> Vec<Granted> {
        named
            .iter()
            .map(|n| {
                let owner = n.owner_or(signer).to_string();
                let key = KeyRef::new(&n.partition, &n.key_id);
                let loaded = self
                    .task_key(&owner, &key, signer, link)
                    .map_err(|f| f.message);
                Granted { owner, key, loaded }
            })
            .collect()
    }

    /// A key another node imported, fetched from the first peer that releases it (its
    /// metadata must allow replicas), and kept sealed here.
    fn replicate_imported(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        if link.peers()?.is_empty() {
            return Err(not_found(key));
        }
        let record = self.fetch_imported_replica(tenant, key, link)?;
        let home = record.replica_of.clone().unwrap_or_default();
        let _one_at_a_time = lock(&self.import_writes);
        self.record_put_if_absent(
            link,
            &tenant_ns(tenant),
            &key_record(&key.partition, &key.key_id),
            &record.encode()?,
        )?;
        self.audit(
            link,
            "import.replicate",
            tenant,
            &key.to_string(),
            &format!("ok: from node {home}"),
        )
    }

    /// For a key several nodes hold: refuses it once any of them disabled it (its note
    /// in the shared store), and makes that permanent here.
    fn shared_status_gate(
        &self,
        tenant: &str,
        key: &KeyRef,
        loaded: &LoadedKey,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        let Some(status) = &loaded.status else {
            return Ok(());
        };
        if let Some(at) = loaded.disabled_at {
            return Err(disabled(key, at));
        }
        let name = status_name(tenant, key);
        let Some(note) = link.get(STATUS_NS, &name)? else {
            return Ok(());
        };
        let at = match note.get(..8).map(<[u8; 8]>::try_from) {
            Some(Ok(at)) if note.len() == 40 => i64::from_be_bytes(at),
            _ => {
                warn!(tenant, key = %key, "a key status note of the wrong size: ignored");
                return Ok(());
            }
        };
        if !veritee_crypto::ct_eq(&status_tag(status, &name, at), &note[8..]) {
            // Not made by an enclave holding the key: the host's, and worth nothing.
            warn!(tenant, key = %key, "a key status note that does not authenticate: ignored");
            return Ok(());
        }
        // Recorded here too, so that withholding the note later changes nothing.
        let result = self.update_key(tenant, key, link, |record, _, _| {
            record.disabled_at = Some(at);
            Ok(true)
        });
        if let Err(f) = result
            && f.kind != FailureKind::Unauthorized
        {
            return Err(f);
        }
        self.disabled_keys.insert(tenant, key);
        self.audit(
            link,
            "import.disable",
            tenant,
            &key.to_string(),
            "ok: disabled for good, as another node sharing the key said",
        )?;
        Err(disabled(key, at))
    }

    /// Tells the other nodes holding a key that it is disabled. A note that fails to be
    /// written leaves this node's refusal as it is; the owner's revocation endpoint,
    /// which every node asks, remains.
    pub(super) fn publish_disabled(
        &self,
        tenant: &str,
        key: &KeyRef,
        status: &StatusKey,
        at: i64,
        link: &mut dyn HostLink,
    ) {
        let name = status_name(tenant, key);
        let mut note = at.to_be_bytes().to_vec();
        note.extend_from_slice(&status_tag(status, &name, at));
        if let Err(e) = link.put(STATUS_NS, &name, note) {
            warn!(tenant, key = %key, "cannot publish that the key is disabled: {}", e.message);
        }
    }

    /// A data key deployed by the key-management flow, as an AES key of one version
    /// for encryption, decryption and translation (this node's copy, or a replica
    /// fetched from a peer enclave under the key's release policy).
    fn deployed_key(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
    ) -> Result<Arc<LoadedKey>, EnclaveFailure> {
        let deployed = self.user_key(tenant, &key.key_id, link).map_err(|f| {
            if f.kind == FailureKind::NotFound {
                not_found(key)
            } else {
                f
            }
        })?;
        let mut versions = BTreeMap::new();
        versions.insert(
            1,
            Version {
                material: material_of(KeyType::Aes256Gcm, deployed.key.expose())?,
                created: 0,
            },
        );
        Ok(Arc::new(LoadedKey {
            key_type: KeyType::Aes256Gcm,
            operations: vec![Operation::Encrypt, Operation::Decrypt, Operation::Translate],
            task_use: TaskUse::OwnerOnly,
            rotate_after_secs: None,
            versions,
            minimum: 1,
            revocation: None,
            disabled_at: None,
            status: None,
        }))
    }

    /// Lets a key be used only if no `key.disable` action disabled it, and as its
    /// owner's revocation endpoint allows: never once revoked; after an "active"
    /// answer no older than the key's interval; and, while the endpoint is silent,
    /// until [`MAX_INTERVAL_SECS`] after its last good answer.
    fn revocation_gate(
        &self,
        tenant: &str,
        key: &KeyRef,
        loaded: Arc<LoadedKey>,
        link: &mut dyn HostLink,
    ) -> Result<Arc<LoadedKey>, EnclaveFailure> {
        if let Some(at) = loaded.disabled_at {
            return Err(disabled(key, at));
        }
        let Some(gate) = &loaded.revocation else {
            return Ok(loaded);
        };
        let revoked = |at: i64| {
            failure(
                FailureKind::Unauthorized,
                format!(
                    "key {key} was revoked by its owner (its endpoint said so at {}): it is disabled for good",
                    rfc3339_secs(at)
                ),
            )
        };
        if let Some(at) = gate.revoked_at {
            return Err(revoked(at));
        }
        let now = self.clock().now().unix_timestamp();
        let interval = i64::try_from(gate.data.interval_secs).unwrap_or(i64::MAX);
        if gate
            .last_active
            .is_some_and(|t| now.saturating_sub(t) < interval)
        {
            return Ok(loaded);
        }
        let cache_key = (tenant.to_string(), key.clone());
        // An endpoint that just failed is asked again only after the shortest interval,
        // so a silent one does not cost every use a round trip.
        let recently_silent = lock(&self.import_keys)
            .silent
            .get(&cache_key)
            .is_some_and(|t| now.saturating_sub(*t) < MIN_INTERVAL_SECS as i64);
        let verdict = if recently_silent {
            Err("it failed to answer less than a minute ago".to_string())
        } else {
            self.ask_endpoint(&gate.data, link)
        };
        match verdict {
            Ok(RevocationStatus::Active) => {
                lock(&self.import_keys).silent.remove(&cache_key);
                self.update_key(tenant, key, link, |record, _, now| {
                    if let Some(r) = &mut record.revocation {
                        r.last_active = Some(now);
                    }
                    Ok(true)
                })?;
                self.loaded_key_unchecked(tenant, key, link)
            }
            Ok(RevocationStatus::Revoked) => {
                self.disable_for_good(tenant, key, link, |record, now| {
                    if let Some(r) = &mut record.revocation {
                        r.revoked_at.get_or_insert(now);
                    }
                })?;
                self.audit(
                    link,
                    "import.revoked",
                    tenant,
                    &key.to_string(),
                    "ok: disabled for good",
                )?;
                Err(revoked(now))
            }
            Err(why) => {
                lock(&self.import_keys).silent.insert(cache_key, now);
                warn!(tenant, key = %key, "revocation endpoint: {why}");
                match gate.last_active {
                    Some(t) if now.saturating_sub(t) <= MAX_INTERVAL_SECS as i64 => Ok(loaded),
                    Some(t) => Err(failure(
                        FailureKind::Unavailable,
                        format!(
                            "key {key} is suspended: its revocation endpoint has not answered since {} ({why}), more than {MAX_INTERVAL_SECS} s; it is usable again once the endpoint answers",
                            rfc3339_secs(t)
                        ),
                    )),
                    None => Err(failure(
                        FailureKind::Unavailable,
                        format!(
                            "key {key} is not usable yet: its revocation endpoint has not answered once ({why})"
                        ),
                    )),
                }
            }
        }
    }

    /// One question to a revocation endpoint, through the host; the answer checked.
    fn ask_endpoint(
        &self,
        data: &RevocationData,
        link: &mut dyn HostLink,
    ) -> Result<RevocationStatus, String> {
        let nonce = veritee_crypto::rand::array::<32>().map_err(|e| e.to_string())?;
        let answer = link
            .revocation_query(&data.endpoint, data.query(&nonce))
            .map_err(|f| f.message)?;
        data.read_answer(&nonce, &answer).map_err(|e| e.to_string())
    }

    /// The key as stored now, without asking its endpoint again (it just answered).
    fn loaded_key_unchecked(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
    ) -> Result<Arc<LoadedKey>, EnclaveFailure> {
        let ns = tenant_ns(tenant);
        let bytes = self
            .record_get(link, &ns, &key_record(&key.partition, &key.key_id))?
            .ok_or_else(|| not_found(key))?;
        Ok(Arc::new(LoadedKey::unseal(bytes.expose())?))
    }
}

/// Versions of a key several nodes hold stay as imported: a version made or retired
/// on one node would be unknown to the others.
fn shared_versions(key: &KeyRef) -> EnclaveFailure {
    failure(
        FailureKind::BadRequest,
        format!(
            "key {key} may be held by other nodes (its metadata allow replicas): its versions are not changed"
        ),
    )
}

/// For a key other nodes may hold, disabled at `at`: its status key and the time.
pub(super) fn shared_status(
    record: &ImportedKeyRecord,
    metadata: &ImportMetadata,
    at: i64,
) -> Result<Option<(StatusKey, i64)>, EnclaveFailure> {
    match (&metadata.release, record.versions.first()) {
        (Some(_), Some(first)) => Ok(Some((status_key_of(&first.material)?, at))),
        _ => Ok(None),
    }
}

/// A version a rotation made, and for a signing key its public key (SPKI DER).
type NewVersion = (u32, Option<Vec<u8>>);

/// Whether a version made at `created` is `period` seconds old at `now`.
fn due(created: i64, period: u64, now: i64) -> bool {
    now.saturating_sub(created) >= i64::try_from(period).unwrap_or(i64::MAX)
}

fn rfc3339_secs(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(crate::clock::rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn not_found(key: &KeyRef) -> EnclaveFailure {
    failure(
        FailureKind::NotFound,
        format!("no key {key} (in this tenant's partitions)"),
    )
}

/// The refusal of a key a `key.disable` action disabled at `at`.
fn disabled(key: &KeyRef, at: i64) -> EnclaveFailure {
    failure(
        FailureKind::Unauthorized,
        format!(
            "key {key} was disabled at {} (key.disable): it is disabled for good",
            rfc3339_secs(at)
        ),
    )
}

/// Names with '/' would reach outside the partition's records.
pub(crate) fn check_ref(key: &KeyRef) -> Result<(), EnclaveFailure> {
    if veritee_proto::names::check_name(&key.partition).is_err()
        || veritee_proto::names::check_name(&key.key_id).is_err()
    {
        return Err(not_found(key));
    }
    Ok(())
}

fn seal(
    loaded: &LoadedKey,
    key: &KeyRef,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, EnclaveFailure> {
    match loaded.newest()? {
        (version, Material::Aes(aes)) => {
            ciphertext::seal(aes, key, version, aad, plaintext).map_err(internal)
        }
        _ => Err(loaded.wrong_type(key, "encrypt")),
    }
}

fn open(
    loaded: &LoadedKey,
    key: &KeyRef,
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<SecretBytes, EnclaveFailure> {
    if let (_, Material::Rsa(rsa)) = loaded.newest()? {
        // RSA-OAEP ciphertexts made with the key's public half outside carry no
        // envelope: the newest version decrypts, and OAEP's label stays empty.
        if !aad.is_empty() {
            return Err(failure(
                FailureKind::BadRequest,
                format!("key {key} is an RSA key: RSA-OAEP decryption takes no associated data"),
            ));
        }
        return rsa.decrypt_oaep_sha256(ciphertext).map_err(|e| {
            failure(
                FailureKind::BadRequest,
                format!("key {key}: the ciphertext does not decrypt with RSA-OAEP-SHA256 ({e})"),
            )
        });
    }
    let version = ciphertext::key_version(ciphertext).map_err(bad_input)?;
    match loaded.version(key, version)? {
        Material::Aes(aes) => ciphertext::open(aes, key, aad, ciphertext).map_err(bad_input),
        _ => Err(loaded.wrong_type(key, "decrypt")),
    }
}

/// Keys disabled for good since this enclave started: what a running task's grant
/// looks at before each use, so that a disable takes effect at the task's next
/// `key_op`, not at its next run. (Grants, and every other use, read the sealed record.)
#[derive(Default)]
pub(crate) struct DisabledKeys(std::sync::RwLock<std::collections::HashSet<(String, KeyRef)>>);

impl DisabledKeys {
    fn insert(&self, tenant: &str, key: &KeyRef) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((tenant.to_string(), key.clone()));
    }

    fn contains(&self, tenant: &str, key: &KeyRef) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(tenant.to_string(), key.clone()))
    }
}

/// One key granted to a workload: whose it is, its name, and the key, or why it is
/// withheld for now (an application's keys are granted again at every call, and keep
/// their places when one is refused).
pub(crate) struct Granted {
    pub owner: String,
    pub key: KeyRef,
    pub loaded: Result<Arc<LoadedKey>, String>,
}

/// The stored keys one compartment of a trusted task was granted, in the order its
/// `keys` name them. The guest reaches them only through `veritee.key_op`: answers are
/// what an operation makes, never the material, which stays here. Each use is
/// counted, for the audit log once the task ends.
pub(crate) struct GrantedKeys {
    keys: Vec<Granted>,
    disabled: Arc<DisabledKeys>,
    /// Who used them, as the audit log's counts name it.
    user: String,
    /// Uses by key index, translation target, action and refusal (`None`: done);
    /// made into audit rows only when taken, so a `key_op` formats nothing.
    used: std::sync::Mutex<BTreeMap<KeyUse, u64>>,
}

/// One row of a grant's tally: key index, translation target, action, refusal.
type KeyUse = (usize, Option<u32>, &'static str, Option<String>);

impl GrantedKeys {
    /// `user` names the task and compartment in the audit log.
    pub(crate) fn new(keys: Vec<Granted>, disabled: Arc<DisabledKeys>, user: String) -> Self {
        Self {
            keys,
            disabled,
            user,
            used: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The uses counted so far, by key, operation and outcome; the count starts over.
    pub(crate) fn take_usage(&self) -> Vec<(Usage, u64)> {
        let used = std::mem::take(&mut *lock(&self.used));
        let name = |index: usize| {
            self.keys
                .get(index)
                .map(|g| (g.owner.clone(), format!("{}/{}", g.owner, g.key)))
        };
        used.into_iter()
            .filter_map(|((index, to, action, refusal), count)| {
                let (tenant, key) = name(index)?;
                let to = to
                    .and_then(|t| name(usize::try_from(t).ok()?))
                    .map(|(_, target)| format!(" -> {target}"))
                    .unwrap_or_default();
                let usage = Usage {
                    action,
                    tenant,
                    object: format!("{key}{to} by {}", self.user),
                    outcome: refusal.unwrap_or_else(|| "ok".into()),
                };
                Some((usage, count))
            })
            .collect()
    }

    fn granted(
        &self,
        index: usize,
    ) -> Result<(&KeyRef, &Arc<LoadedKey>), veritee_wasm::KeyOpError> {
        use veritee_wasm::KeyOpError;
        let granted = self.keys.get(index).ok_or_else(|| {
            KeyOpError::NoSuchKey(format!(
                "there is no key {index}: {} keys were granted",
                self.keys.len()
            ))
        })?;
        let name = || format!("{}/{}", granted.owner, granted.key);
        let loaded = granted.loaded.as_ref().map_err(|why| {
            KeyOpError::Forbidden(format!("key {} is not usable now: {why}", name()))
        })?;
        if self.disabled.contains(&granted.owner, &granted.key) {
            return Err(KeyOpError::Forbidden(format!(
                "key {} was disabled for good while {} ran",
                name(),
                self.user
            )));
        }
        Ok((&granted.key, loaded))
    }

    fn answer(
        &self,
        key_index: usize,
        request: veritee_wasm::KeyRequest<'_>,
    ) -> Result<SecretBytes, veritee_wasm::KeyOpError> {
        use veritee_wasm::{KeyOpError, KeyRequest};
        let (key, loaded) = self.granted(key_index)?;
        let allow = |op: Operation| {
            loaded
                .allow(key, op)
                .map_err(|f| KeyOpError::Forbidden(f.message))
        };
        let failed = |f: EnclaveFailure| KeyOpError::Failed(f.message);
        match request {
            KeyRequest::Encrypt { aad, plaintext } => {
                allow(Operation::Encrypt)?;
                seal(loaded, key, aad, plaintext)
                    .map(SecretBytes::new)
                    .map_err(failed)
            }
            KeyRequest::Decrypt { aad, ciphertext } => {
                allow(Operation::Decrypt)?;
                open(loaded, key, aad, ciphertext).map_err(failed)
            }
            KeyRequest::Sign { message } => {
                allow(Operation::Sign)?;
                let (version, signature) = loaded.sign(key, message).map_err(failed)?;
                Ok(versioned(version, &signature))
            }
            KeyRequest::Verify {
                version,
                signature,
                message,
            } => {
                allow(Operation::Verify)?;
                let valid = loaded
                    .verify(key, version, message, signature)
                    .map_err(failed)?;
                Ok(SecretBytes::new(vec![u8::from(valid)]))
            }
            KeyRequest::Hmac { data } => {
                allow(Operation::Hmac)?;
                let (version, tag) = loaded.mac(key, data).map_err(failed)?;
                Ok(versioned(version, &tag))
            }
            KeyRequest::Translate {
                to,
                aad,
                ciphertext,
            } => {
                allow(Operation::Translate)?;
                let (target_key, target) =
                    self.granted(usize::try_from(to).unwrap_or(usize::MAX))?;
                target
                    .allow(target_key, Operation::Encrypt)
                    .map_err(|f| KeyOpError::Forbidden(f.message))?;
                let plaintext = open(loaded, key, aad, ciphertext).map_err(failed)?;
                seal(target, target_key, aad, plaintext.expose())
                    .map(SecretBytes::new)
                    .map_err(failed)
            }
        }
    }
}

/// The audit action of a `key_op` (a task's or an application's: the entry's object
/// names which).
fn key_op_action(request: &veritee_wasm::KeyRequest<'_>) -> &'static str {
    use veritee_wasm::KeyRequest;
    match request {
        KeyRequest::Encrypt { .. } => "key_op.encrypt",
        KeyRequest::Decrypt { .. } => "key_op.decrypt",
        KeyRequest::Sign { .. } => "key_op.sign",
        KeyRequest::Verify { .. } => "key_op.verify",
        KeyRequest::Hmac { .. } => "key_op.hmac",
        KeyRequest::Translate { .. } => "key_op.translate",
    }
}

/// A version number and what it made, as `key_op` answers a signature or tag.
fn versioned(version: u32, made: &[u8]) -> SecretBytes {
    let mut out = Vec::with_capacity(4 + made.len());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(made);
    SecretBytes::new(out)
}

impl veritee_wasm::KeyService for GrantedKeys {
    fn count(&self) -> usize {
        self.keys.len()
    }

    fn call(
        &self,
        key_index: usize,
        request: veritee_wasm::KeyRequest<'_>,
    ) -> Result<SecretBytes, veritee_wasm::KeyOpError> {
        let action = key_op_action(&request);
        let to = match request {
            veritee_wasm::KeyRequest::Translate { to, .. } => Some(to),
            _ => None,
        };
        let answer = self.answer(key_index, request);
        if key_index < self.keys.len() {
            let mut used = lock(&self.used);
            let refusal = answer.as_ref().err().map(|e| {
                // Refusals name what the guest asked (a version, a length): past the
                // bound, new ones are counted by code alone, so a loop cannot grow this.
                let full = (
                    key_index,
                    to,
                    action,
                    Some(format!("refused ({}): {e}", e.code())),
                );
                if used.len() >= MAX_USAGE_ROWS && !used.contains_key(&full) {
                    format!("refused ({})", e.code())
                } else {
                    full.3.unwrap_or_default()
                }
            });
            *used.entry((key_index, to, action, refusal)).or_insert(0) += 1;
        }
        answer
    }
}
