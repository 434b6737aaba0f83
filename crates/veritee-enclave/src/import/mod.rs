//! Secret import and partitions (flow 3): the customer's key arrives encrypted twice,
//! the host has peeled the provider's layer, and the enclave checks the customer's
//! signed metadata, opens the TEE's layer, checks the key against the check value
//! the customer signed, stores it sealed in the customer's partition and answers with
//! a signed confirmation. Operations by key id are in [`crypto`].
//!
//! Records live in the tenant's namespace: `partition/{name}` for each partition,
//! `kms/{partition}/{key id}` for each key (its signed metadata beside the material),
//! so no tenant can name another's key and a key is used only under its partition.

pub(crate) mod crypto;
pub(crate) mod officers;

use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, internal, lock, tenant_ns};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_crypto::rsa::RsaPrivateKey;
use veritee_crypto::{Confidential, SecretBytes};
use veritee_import::confirmation::{CONFIRMATION_LABEL, Confirmation};
use veritee_import::formats::{self, ImportFormat};
use veritee_import::keys::{KeyCheck, KeyRef};
use veritee_import::metadata::{ImportMetadata, SignedMetadata, key_id_of};
use veritee_import::payload::ImportPayload;
use veritee_import::quorum::Action;
use veritee_import::tee_rsa::{TEE_RSA_KEY_BITS, TEE_RSA_KEY_LABEL, TeeRsaKeyStatement};
use veritee_import::{ImportError, envelope};
use veritee_proto::api::{
    CreatePartitionRequest, DeletePartitionRequest, DisableKeyRequest, ImportRequest, paths,
};
use veritee_proto::ipc::{
    EnclaveFailure, EnclaveReply, FailureKind, ImportCall, ImportReply, SignedRequest,
};
use zeroize::Zeroizing;

/// Partitions one tenant may hold.
pub const MAX_PARTITIONS_PER_TENANT: usize = 256;
/// Keys one partition may hold.
pub const MAX_KEYS_PER_PARTITION: usize = 10_000;

fn partition_record(name: &str) -> String {
    format!("partition/{name}")
}

/// A JSON body that may be empty (the tenant then has no officers to show approvals of).
fn optional_body<T: Default + serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, EnclaveFailure> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid {what}: {e}")))
}

pub(crate) fn key_record(partition: &str, key_id: &str) -> String {
    format!("kms/{partition}/{key_id}")
}

fn key_prefix(partition: &str) -> String {
    format!("kms/{partition}/")
}

/// An imported key as sealed: the customer's signed metadata, and its versions (the
/// first is the imported material; later ones were made here by rotation).
#[derive(Serialize, Deserialize)]
pub(crate) struct ImportedKeyRecord {
    #[serde(with = "serde_bytes")]
    pub(crate) metadata: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub(crate) signature: Vec<u8>,
    pub(crate) versions: Vec<VersionRecord>,
    /// Versions below it are refused for decryption and verification.
    pub(crate) minimum_version: u32,
    /// The owner's revocation endpoint, and what it last said.
    pub(crate) revocation: Option<RevocationRecord>,
    /// Enclave time a `key.disable` action disabled it, for good.
    #[serde(default)]
    pub(crate) disabled_at: Option<i64>,
    /// For a replica: the node it was imported into.
    #[serde(default)]
    pub(crate) replica_of: Option<String>,
}

/// Revocation data as sealed with the key, and the endpoint's last verdicts.
#[derive(Serialize, Deserialize)]
pub(crate) struct RevocationRecord {
    pub(crate) endpoint: String,
    #[serde(with = "serde_bytes")]
    pub(crate) endpoint_key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub(crate) token: Vec<u8>,
    pub(crate) interval_secs: u64,
    /// Enclave time of the last "active" answer; `None` until the first.
    pub(crate) last_active: Option<i64>,
    /// Enclave time of the "revoked" answer: the key is disabled for good.
    pub(crate) revoked_at: Option<i64>,
}

impl Drop for RevocationRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
    }
}

/// One version of a key.
#[derive(Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub(crate) version: u32,
    #[serde(with = "serde_bytes")]
    pub(crate) material: Vec<u8>,
    /// When it was made, Unix seconds (enclave time).
    pub(crate) created: i64,
}

impl Drop for VersionRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.material);
    }
}

impl ImportedKeyRecord {
    pub(crate) fn encode(&self) -> Result<Zeroizing<Vec<u8>>, EnclaveFailure> {
        // Exactly sized: a buffer that grew would leave copies of the material behind in
        // memory that is never wiped.
        Ok(Zeroizing::new(
            veritee_proto::cbor::to_vec_exact(self).map_err(internal)?,
        ))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, EnclaveFailure> {
        veritee_proto::cbor::from_slice(bytes)
            .map_err(|e| internal(format!("malformed key record: {}", e.kind())))
    }
}

/// Maps a format's refusal onto the failure class the host turns into a status.
fn refused(context: &str, e: ImportError) -> EnclaveFailure {
    let kind = match e {
        ImportError::BadSignature(_) => FailureKind::Unauthorized,
        ImportError::Forbidden(_) => FailureKind::Unauthorized,
        ImportError::Crypto(_) => FailureKind::Internal,
        ImportError::Malformed(_) | ImportError::Decrypt(_) => FailureKind::BadRequest,
    };
    failure(kind, format!("{context}: {e}"))
}

impl EnclaveService {
    /// Handles one import or partition call.
    pub(crate) fn import(
        &self,
        call: ImportCall,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let reply = match call {
            ImportCall::Key {
                request,
                body,
                inner,
            } => self.import_secret(&request, &body, Some(&inner), link)?,
            ImportCall::KeyBothLayers { request, body } => {
                self.import_secret(&request, &body, None, link)?
            }
            ImportCall::ProviderLayerKey => ImportReply::ProviderLayerKey(
                self.provider_layer_key(link)?
                    .public_key()
                    .as_bytes()
                    .to_vec(),
            ),
            ImportCall::TeeRsaKey => ImportReply::TeeRsaKey(self.tee_rsa_statement(link)?),
            ImportCall::CreatePartition { request, body } => {
                self.create_partition(&request, &body, link)?
            }
            ImportCall::DeletePartition {
                request,
                name,
                body,
            } => self.delete_partition(&request, &name, &body, link)?,
            ImportCall::ListPartitions { request } => self.list_partitions(&request, link)?,
            ImportCall::RegisterOfficer { request, body } => {
                self.register_officer(&request, &body, link)?
            }
            ImportCall::ListOfficers { request } => self.list_officers(&request, link)?,
            ImportCall::DisableKey {
                request,
                partition,
                key_id,
                body,
            } => self.disable_key_request(&request, &partition, &key_id, &body, link)?,
            ImportCall::QuorumToken { request, body } => {
                self.quorum_token(&request, &body, link)?
            }
        };
        Ok(EnclaveReply::Import(reply))
    }

    /// The key of the provider layer when the enclave peels it: made here, sealed,
    /// and stated by the provider as its host key.
    fn provider_layer_key(&self, link: &mut dyn HostLink) -> Result<HpkeKeyPair, EnclaveFailure> {
        let ns = format!("enclave/{}", self.node_id()?);
        let raw = self.load_or_create(link, &ns, "provider-layer-key", || {
            Ok(SecretBytes::copy_from(
                HpkeKeyPair::generate().private_bytes().expose(),
            ))
        })?;
        let secret: [u8; 32] = raw
            .expose()
            .as_slice()
            .try_into()
            .map_err(|_| internal("the stored provider-layer key has the wrong length"))?;
        HpkeKeyPair::from_private_bytes(&Confidential::new(secret)).map_err(internal)
    }

    /// The RSA key of the CKM_RSA_AES_KEY_WRAP format: made here at its first use,
    /// sealed, kept for good.
    fn tee_rsa_key(&self, link: &mut dyn HostLink) -> Result<Arc<RsaPrivateKey>, EnclaveFailure> {
        if let Some(key) = self.tee_rsa_key.get() {
            return Ok(Arc::clone(key));
        }
        let ns = format!("enclave/{}", self.node_id()?);
        let pkcs8 = self.load_or_create(link, &ns, "tee-rsa-import-key", || {
            RsaPrivateKey::generate(TEE_RSA_KEY_BITS)
                .and_then(|k| k.to_pkcs8())
                .map_err(internal)
        })?;
        let key = Arc::new(RsaPrivateKey::from_pkcs8(pkcs8.expose()).map_err(internal)?);
        Ok(Arc::clone(self.tee_rsa_key.get_or_init(|| key)))
    }

    /// The RSA import key's public half, stated by the attested audit key.
    fn tee_rsa_statement(&self, link: &mut dyn HostLink) -> Result<Vec<u8>, EnclaveFailure> {
        if let Some(made) = self.tee_rsa_statement.get() {
            return Ok(made.clone());
        }
        let public_key = self
            .tee_rsa_key(link)?
            .public_key_spki()
            .map_err(internal)?;
        let statement = TeeRsaKeyStatement {
            node_id: self.node_id()?,
            public_key: hex::encode(public_key),
        };
        let body = serde_json::to_vec(&statement).map_err(internal)?;
        let signed =
            veritee_audit::sign_document(&self.node(link)?.audit_key, TEE_RSA_KEY_LABEL, &body)
                .map_err(internal)?;
        Ok(self.tee_rsa_statement.get_or_init(|| signed).clone())
    }

    /// Opens the TEE layer in the format the metadata name: the key material, and
    /// the revocation data veritee's own format may carry. `context` starts a refusal.
    fn open_tee_layer(
        &self,
        metadata: &ImportMetadata,
        digest: &[u8; 32],
        inner: &[u8],
        context: &str,
        link: &mut dyn HostLink,
    ) -> Result<ImportPayload, EnclaveFailure> {
        let refuse = |e: ImportError| refused(context, e);
        if let Some(stated) = &metadata.wrapped_sha256 {
            // The standard formats have no associated data: the customer's signature
            // over this digest is what ties the wrapped key to the metadata.
            if formats::wrapped_digest(inner) != *stated {
                return Err(refuse(ImportError::Malformed(
                    "the wrapped key is not the one its metadata name (its SHA-256 differs): it was swapped or changed".into(),
                )));
            }
        }
        let material = match metadata.format {
            ImportFormat::Veritee => {
                let node = self.node(link)?;
                return envelope::open_tee_layer(&node.wrapping, digest, inner)
                    .and_then(|opened| ImportPayload::decode(&opened))
                    .map_err(refuse);
            }
            ImportFormat::Hpke => formats::hpke_open(&self.node(link)?.wrapping, inner),
            ImportFormat::RsaAesKeyWrap => {
                formats::rsa_aes_key_unwrap(&*self.tee_rsa_key(link)?, inner)
            }
        }
        .map_err(refuse)?;
        Ok(ImportPayload {
            material,
            revocation: None,
        })
    }

    /// The id of the TEE key a format encrypts to.
    fn tee_key_id(
        &self,
        format: ImportFormat,
        link: &mut dyn HostLink,
    ) -> Result<String, EnclaveFailure> {
        Ok(match format {
            ImportFormat::Veritee | ImportFormat::Hpke => {
                key_id_of(self.node(link)?.wrapping.public_key().as_bytes())
            }
            ImportFormat::RsaAesKeyWrap => key_id_of(
                &self
                    .tee_rsa_key(link)?
                    .public_key_spki()
                    .map_err(internal)?,
            ),
        })
    }

    /// Imports a key: `inner` is the TEE layer the host peeled, or `None` when the
    /// enclave peels both layers of the body's `sealed`.
    fn import_secret(
        &self,
        request: &SignedRequest,
        body: &[u8],
        inner: Option<&[u8]>,
        link: &mut dyn HostLink,
    ) -> Result<ImportReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::import(), body, link)?;
        let parsed: ImportRequest =
            serde_json::from_slice(body).map_err(|e| bad(format!("invalid import: {e}")))?;
        let field = |name: &str, value: &str| {
            B64.decode(value.trim())
                .map_err(|_| bad(format!("import: {name} must be base64")))
        };
        let signed = SignedMetadata {
            bytes: field("metadata", &parsed.metadata)?,
            signature: field("signature", &parsed.signature)?,
        };
        let spki = self.tenant_key(link, &tenant)?;
        let (metadata, check) = signed
            .open(&spki)
            .map_err(|e| refused("import refused", e))?;
        let what = format!("{}/{}", metadata.partition, metadata.key_id);
        let refuse = |why: String| bad(format!("import of {what} refused: {why}"));
        if metadata.tenant != tenant {
            return Err(refuse(
                "its metadata name another tenant than the one who signed the request".into(),
            ));
        }
        let node_id = self.node_id()?;
        if metadata.node_id != node_id {
            return Err(refuse(format!(
                "it is for node {}, this is node {node_id}",
                metadata.node_id
            )));
        }
        let node = self.node(link)?;
        let tee_key = self.tee_key_id(metadata.format, link)?;
        if metadata.tee_key_id != tee_key {
            return Err(refuse(format!(
                "it is encrypted to TEE key {}, this enclave's is {tee_key}",
                metadata.tee_key_id
            )));
        }
        // From the partition's check to the key's write, no partition change between.
        let _one_at_a_time = lock(&self.import_writes);
        let ns = tenant_ns(&tenant);
        if self
            .record_get(link, &ns, &partition_record(&metadata.partition))?
            .is_none()
        {
            return Err(failure(
                FailureKind::NotFound,
                format!(
                    "import of {what} refused: no partition {} (create it first)",
                    metadata.partition
                ),
            ));
        }
        let digest = signed.digest();
        let peeled_here;
        let inner = match inner {
            Some(inner) => inner,
            None => {
                let provider_layer = self.provider_layer_key(link)?;
                let provider_key = key_id_of(provider_layer.public_key().as_bytes());
                if metadata.provider_key_id != provider_key {
                    return Err(refuse(format!(
                        "it is encrypted to provider key {}, this enclave peels for {provider_key}",
                        metadata.provider_key_id
                    )));
                }
                let sealed = field("sealed", &parsed.sealed)?;
                peeled_here = envelope::peel_provider_layer(&provider_layer, &digest, &sealed)
                    .map_err(|e| refused(&format!("import of {what} refused"), e))?;
                &peeled_here
            }
        };
        let payload = self.open_tee_layer(
            &metadata,
            &digest,
            inner,
            &format!("import of {what} refused"),
            link,
        )?;
        let material = &payload.material;
        let carried = payload.revocation.as_ref().map(|r| r.interval_secs);
        if carried != metadata.revocation_interval_secs {
            return Err(refuse(format!(
                "its metadata state revocation checks every {:?} s, its TEE layer carries {:?}",
                metadata.revocation_interval_secs, carried
            )));
        }
        metadata
            .key_type
            .check_material(material)
            .map_err(|e| refused(&format!("import of {what} refused"), e))?;
        // The customer's check value, or for a key its own tooling wrapped, one made
        // here over what was unwrapped, for the confirmation.
        let key_check = match &check {
            Some(check) if !check.matches(material) => {
                return Err(refuse(
                    "the key is not the one its metadata name (check value differs)".into(),
                ));
            }
            Some(_) => metadata.key_check.clone(),
            None => KeyCheck::new(material)
                .map_err(|e| refused(&format!("import of {what} refused"), e))?
                .to_hex(),
        };
        let record = ImportedKeyRecord {
            metadata: signed.bytes.clone(),
            signature: signed.signature.clone(),
            versions: vec![VersionRecord {
                version: 1,
                material: material.expose().clone(),
                created: self.clock().now().unix_timestamp(),
            }],
            minimum_version: 1,
            revocation: payload.revocation.as_ref().map(|r| RevocationRecord {
                endpoint: r.endpoint.clone(),
                endpoint_key: r.endpoint_key.to_vec(),
                token: r.token.expose().to_vec(),
                interval_secs: r.interval_secs,
                last_active: None,
                revoked_at: None,
            }),
            disabled_at: None,
            replica_of: None,
        };
        let record_key = key_record(&metadata.partition, &metadata.key_id);
        let held = self.record_keys(link, &ns, &key_prefix(&metadata.partition))?;
        if held.len() >= MAX_KEYS_PER_PARTITION && !held.contains(&record_key) {
            return Err(failure(
                FailureKind::TooMany,
                format!(
                    "import of {what} refused: partition {} holds {MAX_KEYS_PER_PARTITION} keys already",
                    metadata.partition
                ),
            ));
        }
        let created = self.record_put_if_absent(link, &ns, &record_key, &record.encode()?)?;
        // The same import again (an answer lost on the way back) gets its confirmation;
        // anything else under the id is a conflict, and nothing is overwritten.
        let retried = !created
            && match self.record_get(link, &ns, &record_key)? {
                Some(bytes) => {
                    let held = ImportedKeyRecord::decode(bytes.expose())?;
                    held.metadata == record.metadata
                        && held.versions.first().is_some_and(|first| {
                            veritee_crypto::ct_eq(&first.material, material.expose())
                        })
                }
                None => false,
            };
        if !created && !retried {
            self.audit(link, "import.key", &tenant, &what, "refused: id taken")?;
            return Err(failure(
                FailureKind::Conflict,
                format!("a key {what} exists already; nothing was overwritten"),
            ));
        }
        let outcome = if retried { "ok: imported again" } else { "ok" };
        self.audit(link, "import.key", &tenant, &what, outcome)?;
        let (checkpoint, audit_size) = self.signed_checkpoint(link, false)?;
        let confirmation = Confirmation {
            key_id: metadata.key_id.clone(),
            partition: metadata.partition.clone(),
            tenant,
            node: node_id,
            key_type: metadata.key_type.as_str().into(),
            key_check,
            operations: metadata
                .operations
                .iter()
                .map(|o| o.as_str().to_string())
                .collect(),
            metadata_digest: hex::encode(digest),
            audit_size,
            time: crate::clock::rfc3339(self.clock().now()),
        };
        let body = serde_json::to_vec(&confirmation).map_err(internal)?;
        let confirmation = veritee_audit::sign_document(&node.audit_key, CONFIRMATION_LABEL, &body)
            .map_err(internal)?;
        Ok(ImportReply::Imported {
            confirmation,
            checkpoint,
        })
    }

    fn create_partition(
        &self,
        request: &SignedRequest,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<ImportReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::partitions(), body, link)?;
        let parsed: CreatePartitionRequest = serde_json::from_slice(body)
            .map_err(|e| bad(format!("invalid partition request: {e}")))?;
        veritee_channel::ops::check_name(&parsed.name)
            .map_err(|e| bad(format!("partition name: {e}")))?;
        if parsed.name == crypto::DEPLOYED_PARTITION {
            return Err(bad(format!(
                "partition name {:?} is reserved: it names the keys deployed by key management",
                crypto::DEPLOYED_PARTITION
            )));
        }
        // One partition or key change at a time (an import must not land in a partition
        // being deleted); the checks come before the officers' approvals are spent.
        let _one_at_a_time = lock(&self.import_writes);
        let ns = tenant_ns(&tenant);
        let held = self.record_keys(link, &ns, "partition/")?;
        if held.len() >= MAX_PARTITIONS_PER_TENANT {
            return Err(failure(
                FailureKind::TooMany,
                format!("this tenant holds {MAX_PARTITIONS_PER_TENANT} partitions already"),
            ));
        }
        if held.contains(&partition_record(&parsed.name)) {
            return Err(failure(
                FailureKind::Conflict,
                format!("partition {} exists already", parsed.name),
            ));
        }
        let how = self.authorize(
            &tenant,
            Action::CreatePartition,
            &parsed.name,
            parsed.quorum.as_ref(),
            link,
        )?;
        let created = crate::clock::rfc3339(self.clock().now());
        if !self.record_put_if_absent(
            link,
            &ns,
            &partition_record(&parsed.name),
            created.as_bytes(),
        )? {
            return Err(failure(
                FailureKind::Conflict,
                format!("partition {} exists already", parsed.name),
            ));
        }
        self.audit(
            link,
            "partition.create",
            &tenant,
            &parsed.name,
            &format!("ok: {how}"),
        )?;
        Ok(ImportReply::Done)
    }

    /// Deletes a partition and every key in it: the keys are gone for good (their
    /// sealed records are removed from the index, so no copy the host kept is served).
    fn delete_partition(
        &self,
        request: &SignedRequest,
        name: &str,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<ImportReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "DELETE", &paths::partition(name), body, link)?;
        veritee_channel::ops::check_name(name).map_err(|e| bad(format!("partition name: {e}")))?;
        let parsed: DeletePartitionRequest = optional_body(body, "partition deletion")?;
        let _one_at_a_time = lock(&self.import_writes);
        let ns = tenant_ns(&tenant);
        if self
            .record_get(link, &ns, &partition_record(name))?
            .is_none()
        {
            return Err(failure(
                FailureKind::NotFound,
                format!("no partition {name}"),
            ));
        }
        let how = self.authorize(
            &tenant,
            Action::DeletePartition,
            name,
            parsed.quorum.as_ref(),
            link,
        )?;
        // The partition goes first: no import lands in it while its keys go.
        self.record_delete(link, &ns, &partition_record(name))?;
        let keys = self.record_keys(link, &ns, &key_prefix(name))?;
        let now = self.clock().now().unix_timestamp();
        for key in &keys {
            // A key other nodes may hold is gone there too: they are told as of a
            // disable.
            if let Some(bytes) = self.record_get(link, &ns, key)? {
                let record = ImportedKeyRecord::decode(bytes.expose())?;
                let metadata = stored_metadata(&record)?;
                if let Some((status, at)) = crypto::shared_status(&record, &metadata, now)? {
                    let key_id = key.strip_prefix(&key_prefix(name)).unwrap_or(key);
                    self.publish_disabled(&tenant, &KeyRef::new(name, key_id), &status, at, link);
                }
            }
            self.record_delete(link, &ns, key)?;
        }
        lock(&self.import_keys).forget_partition(&tenant, name);
        self.audit(
            link,
            "partition.delete",
            &tenant,
            name,
            &format!("ok: {} keys destroyed, {how}", keys.len()),
        )?;
        Ok(ImportReply::Done)
    }

    /// `key.disable` as the tenant asked it (see `disable_key`).
    fn disable_key_request(
        &self,
        request: &SignedRequest,
        partition: &str,
        key_id: &str,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<ImportReply, EnclaveFailure> {
        let path = paths::disable_key(partition, key_id);
        let tenant = self.authenticate(request, "POST", &path, body, link)?;
        let parsed: DisableKeyRequest = optional_body(body, "key disabling")?;
        let key = KeyRef::new(partition, key_id);
        self.disable_key(&tenant, &key, parsed.quorum.as_ref(), link)?;
        Ok(ImportReply::Done)
    }

    fn list_partitions(
        &self,
        request: &SignedRequest,
        link: &mut dyn HostLink,
    ) -> Result<ImportReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "GET", &paths::partitions(), &[], link)?;
        let ns = tenant_ns(&tenant);
        let mut partitions: std::collections::BTreeMap<String, Vec<String>> = self
            .record_keys(link, &ns, "partition/")?
            .into_iter()
            .filter_map(|r| {
                r.strip_prefix("partition/")
                    .map(|n| (n.to_string(), Vec::new()))
            })
            .collect();
        // Keys by partition; a replica fetched from its home node sits in a partition
        // that may not exist here, and is listed under it all the same.
        for record in self.record_keys(link, &ns, "kms/")? {
            if let Some((partition, key_id)) = record
                .strip_prefix("kms/")
                .and_then(|rest| rest.split_once('/'))
            {
                partitions
                    .entry(partition.to_string())
                    .or_default()
                    .push(key_id.to_string());
            }
        }
        Ok(ImportReply::Partitions(partitions.into_iter().collect()))
    }
}

/// Reads an imported key's metadata back from its record (they were checked when it
/// was imported, and sealed since).
pub(crate) fn stored_metadata(
    record: &ImportedKeyRecord,
) -> Result<ImportMetadata, EnclaveFailure> {
    serde_json::from_slice(&record.metadata)
        .map_err(|e| internal(format!("a stored key's metadata are unreadable: {e}")))
}
