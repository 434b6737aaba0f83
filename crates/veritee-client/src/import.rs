//! Secret import (flow 3), the customer's side: fetch the TEE's and the provider's
//! keys, validate both (the TEE's evidence against the customer's policy, the
//! provider's statement against the pinned provider key and a fresh nonce), state and
//! sign the metadata, encrypt twice, send, and check the enclave's confirmation.
//! Operations by key id go through an attested [`crate::Session`]
//! ([`crate::Session::crypto`]).

use crate::keys::{AttestedWrappingKey, WrappingKeyFile};
use crate::{B64, ClientError, NodeClient};
use base64::Engine;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use veritee_channel::client::{Appraiser, TenantKey, fresh_nonce};
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::HpkePublicKey;
use veritee_import::ImportError;
use veritee_import::confirmation::{CONFIRMATION_LABEL, Confirmation};
use veritee_import::envelope;
use veritee_import::formats::{self, ImportFormat};
use veritee_import::keys::{KeyCheck, KeyRef, KeyType, Operation};
use veritee_import::metadata::{
    ImportMetadata, KeyRelease, METADATA_VERSION, SignedMetadata, key_id_of,
};
use veritee_import::payload::ImportPayload;
use veritee_import::provider::SignedProviderStatement;
use veritee_import::revocation::RevocationData;
use veritee_import::tee_rsa::{TEE_RSA_KEY_LABEL, TeeRsaKeyStatement};
use veritee_import::validator::{ValidationQuery, check_answer};
use veritee_proto::api::{
    CreatePartitionRequest, DeletePartitionRequest, DisableKeyRequest, ImportKeysResponse,
    ImportRequest, ImportResponse, OfficerList, PartitionList, QuorumProof, QuorumTokenRequest,
    QuorumTokenResponse, RegisterOfficerRequest, paths,
};

/// How old a provider statement may be when validated.
pub const PROVIDER_STATEMENT_MAX_AGE: time::Duration = time::Duration::minutes(10);

/// The two keys as fetched from a node, with the nonce both answers are bound to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportKeysFile {
    /// The node's URL.
    pub node: String,
    /// The nonce, hex.
    pub nonce: String,
    /// The node's answer.
    pub keys: ImportKeysResponse,
    /// When it was fetched, RFC 3339.
    pub fetched_at: String,
}

/// Both keys, validated.
#[derive(Debug)]
pub struct ValidatedImportKeys {
    /// The TEE's key, its evidence verified and appraised.
    pub tee: AttestedWrappingKey,
    /// The host's key, vouched for by the pinned provider.
    pub provider_key: HpkePublicKey,
    /// What was checked, as the metadata will state it.
    pub validations: Vec<String>,
    /// The enclave's RSA import key (SPKI DER), for the CKM_RSA_AES_KEY_WRAP format:
    /// stated by the audit key the evidence binds. `None` from a node that has none.
    pub tee_rsa_key: Option<Vec<u8>>,
}

fn protocol(what: impl core::fmt::Display) -> ClientError {
    ClientError::Protocol(what.to_string())
}

fn refused(e: ImportError) -> ClientError {
    ClientError::Refused(e.to_string())
}

impl ImportKeysFile {
    /// Validates both keys: nothing may be encrypted to a key that fails.
    pub fn validate(
        &self,
        appraiser: &Appraiser<'_>,
        pinned_provider: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<ValidatedImportKeys, ClientError> {
        let tee_file = WrappingKeyFile {
            node: self.node.clone(),
            node_id: self.keys.tee.node_id.clone(),
            public_key: self.keys.tee.public_key.clone(),
            audit_public_key: self.keys.tee.audit_public_key.clone(),
            checkpoint_public_key: self.keys.tee.checkpoint_public_key.clone(),
            nonce: self.nonce.clone(),
            evidence: self.keys.tee.evidence.clone(),
            fetched_at: self.fetched_at.clone(),
        };
        let tee = tee_file.verify(appraiser)?;
        let nonce =
            hex::decode(&self.nonce).map_err(|_| protocol("import keys: nonce is not hex"))?;
        let signed = SignedProviderStatement {
            statement: B64
                .decode(&self.keys.provider_statement)
                .map_err(|_| protocol("import keys: provider_statement is not base64"))?,
            signature: B64
                .decode(&self.keys.provider_signature)
                .map_err(|_| protocol("import keys: provider_signature is not base64"))?,
        };
        let statement = signed
            .validate(
                pinned_provider,
                &nonce,
                &tee.node_id,
                now,
                PROVIDER_STATEMENT_MAX_AGE,
            )
            .map_err(refused)?;
        let host_key = hex::decode(&statement.host_key)
            .map_err(|_| protocol("provider statement: host_key is not hex"))?;
        let provider_key =
            HpkePublicKey::from_bytes(&host_key).map_err(veritee_channel::ChannelError::from)?;
        let tee_rsa_key = match &self.keys.tee_rsa_key {
            None => None,
            Some(signed) => {
                let signed = B64
                    .decode(signed)
                    .map_err(|_| protocol("import keys: tee_rsa_key is not base64"))?;
                let body =
                    veritee_audit::open_document(&signed, &tee.audit_public_key, TEE_RSA_KEY_LABEL)
                        .map_err(|e| {
                            ClientError::Refused(format!(
                                "the TEE's RSA key is not stated by the attested audit key ({e}); nothing was sent"
                            ))
                        })?;
                Some(TeeRsaKeyStatement::read(body, &tee.node_id).map_err(refused)?)
            }
        };
        let mut validations = vec![
            format!(
                "tee-key {}: {} evidence verified and appraised under the customer's policy, over nonce {}",
                key_id_of(tee.public_key.as_bytes()),
                tee.claims.tee,
                self.nonce
            ),
            format!(
                "provider-key {}: stated by pinned provider {} for node {} over nonce {}",
                key_id_of(&host_key),
                hex::encode(pinned_provider),
                tee.node_id,
                self.nonce
            ),
        ];
        if let Some(rsa) = &tee_rsa_key {
            validations.push(format!(
                "tee-rsa-key {}: stated by the attested audit key of node {}",
                key_id_of(rsa),
                tee.node_id
            ));
        }
        Ok(ValidatedImportKeys {
            tee,
            provider_key,
            validations,
            tee_rsa_key,
        })
    }
}

/// Asks the vendor's validator whether the TEE's machine (the platform id its evidence
/// names) was certified by the vendor, issued to the pinned provider, and is not
/// revoked; the answer is signed by the vendor root in `vendor_root_pem`, over a fresh
/// nonce. Adds the validation to the keys' list, or refuses naming why.
pub fn validate_with_vendor(
    keys: &mut ValidatedImportKeys,
    vendor_url: &str,
    vendor_root_pem: &[u8],
    pinned_provider: &[u8; 32],
) -> Result<(), ClientError> {
    let root = veritee_attest::ParsedCertificate::from_pem_chain(vendor_root_pem)
        .ok()
        .and_then(|mut c| (!c.is_empty()).then(|| c.remove(0)))
        .ok_or_else(|| ClientError::Refused("the vendor root is not a PEM certificate".into()))?;
    let spki = root
        .spki_der()
        .map_err(|e| ClientError::Refused(format!("the vendor root: {e}")))?;
    let machine = keys.tee.claims.platform_id.as_ref().ok_or_else(|| {
        ClientError::Refused("the TEE's evidence names no platform for the vendor to check".into())
    })?;
    let query = ValidationQuery {
        machine_id: hex::encode(&machine.0),
        provider: hex::encode(pinned_provider),
        nonce: hex::encode(fresh_nonce()?),
    };
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    let resp = http
        .post(format!("{}/validate", vendor_url.trim_end_matches('/')))
        .json(&query)
        .send()
        .map_err(|e| ClientError::Transport(format!("the vendor's validator: {e}")))?;
    let status = resp.status();
    // Read no more than an answer can be (plus one byte, so an oversized one is named).
    let mut body = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(resp, veritee_import::validator::MAX_ANSWER_LEN as u64 + 1),
        &mut body,
    )
    .map_err(|e| ClientError::Transport(format!("the vendor's validator: {e}")))?;
    if !status.is_success() {
        return Err(ClientError::Refused(format!(
            "the vendor's validator answered {status}"
        )));
    }
    let statement = check_answer(&spki, &query, &body).map_err(refused)?;
    keys.validations.push(format!(
        "vendor: machine {} certified, not revoked, issued to provider {}, over nonce {}",
        statement.query.machine_id, statement.query.provider, statement.query.nonce
    ));
    Ok(())
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportSpec {
    /// The partition.
    pub partition: String,
    /// The key id in it.
    pub key_id: String,
    /// The key's type.
    pub key_type: KeyType,
    /// What it may be used for.
    pub operations: Vec<Operation>,
    /// Rotate it once its newest version is this many seconds old (at its next use).
    pub rotate_after_secs: Option<u64>,
    /// Which other nodes' enclaves may hold a replica; `None`: this node's alone.
    pub release: Option<KeyRelease>,
    /// Tenants whose signed task initiations may use it (empty: no task may).
    pub task_signers: Vec<String>,
}

/// An import ready to send, and the metadata it states.
#[derive(Debug, Clone)]
pub struct PreparedImport {
    /// The request body.
    pub request: ImportRequest,
    /// The metadata, as signed.
    pub metadata: ImportMetadata,
    /// Their digest (what the confirmation names).
    pub digest: [u8; 32],
}

/// What the TEE layer of an import is made of.
#[derive(Debug, Clone, Copy)]
pub enum TeeLayer<'a> {
    /// Veritee's own format: the key and, optionally, the owner's revocation data.
    Veritee {
        /// The key.
        material: &'a SecretBytes,
        /// How the enclave learns the owner revoked it.
        revocation: Option<&'a RevocationData>,
    },
    /// A standard format, wrapped here from the key.
    Wrap {
        /// [`ImportFormat::RsaAesKeyWrap`] or [`ImportFormat::Hpke`].
        format: ImportFormat,
        /// The key.
        material: &'a SecretBytes,
    },
    /// A standard format, wrapped already by the customer's own tooling (an HSM,
    /// openssl) to the TEE's key: the plaintext never reaches this side at all, and
    /// the enclave's confirmation names the check value of what it unwrapped.
    Wrapped {
        /// [`ImportFormat::RsaAesKeyWrap`] or [`ImportFormat::Hpke`].
        format: ImportFormat,
        /// The wrapped key.
        wrapped: &'a [u8],
    },
}

/// States, signs and double-encrypts `material` (with the owner's `revocation` data,
/// if any) for the validated keys, in veritee's own format.
pub fn prepare_import(
    keys: &ValidatedImportKeys,
    tenant: &TenantKey,
    spec: &ImportSpec,
    material: &SecretBytes,
    revocation: Option<&RevocationData>,
) -> Result<PreparedImport, ClientError> {
    prepare_import_as(
        keys,
        tenant,
        spec,
        TeeLayer::Veritee {
            material,
            revocation,
        },
    )
}

/// States and signs the metadata, and encrypts the TEE layer `layer` (made here in
/// its format, or given wrapped) to the provider.
pub fn prepare_import_as(
    keys: &ValidatedImportKeys,
    tenant: &TenantKey,
    spec: &ImportSpec,
    layer: TeeLayer<'_>,
) -> Result<PreparedImport, ClientError> {
    let standard = |format: ImportFormat| {
        if format.is_veritee() {
            Err(refused(ImportError::Malformed(
                "veritee's own format is TeeLayer::Veritee: it carries revocation data, which the standard formats cannot".into(),
            )))
        } else {
            Ok(format)
        }
    };
    let checked = |material: &SecretBytes| -> Result<String, ClientError> {
        spec.key_type.check_material(material).map_err(refused)?;
        Ok(KeyCheck::new(material).map_err(refused)?.to_hex())
    };
    // A standard format's TEE layer is made before the metadata, which carry its digest.
    let (format, key_check, revocation, inner) = match layer {
        TeeLayer::Veritee {
            material,
            revocation,
        } => {
            if let Some(r) = revocation {
                r.check().map_err(refused)?;
            }
            (ImportFormat::Veritee, checked(material)?, revocation, None)
        }
        TeeLayer::Wrap { format, material } => {
            let format = standard(format)?;
            let key_check = checked(material)?;
            let inner = match format {
                ImportFormat::Hpke => formats::hpke_seal(&keys.tee.public_key, material),
                _ => formats::rsa_aes_key_wrap(tee_rsa_key(keys)?, material),
            }
            .map_err(refused)?;
            (format, key_check, None, Some(inner))
        }
        TeeLayer::Wrapped { format, wrapped } => (
            standard(format)?,
            String::new(),
            None,
            Some(wrapped.to_vec()),
        ),
    };
    let tee_key_id = match format {
        ImportFormat::RsaAesKeyWrap => key_id_of(tee_rsa_key(keys)?),
        _ => key_id_of(keys.tee.public_key.as_bytes()),
    };
    let metadata = ImportMetadata {
        version: METADATA_VERSION,
        tenant: tenant.tenant_id()?,
        node_id: keys.tee.node_id.clone(),
        partition: spec.partition.clone(),
        key_id: spec.key_id.clone(),
        key_type: spec.key_type,
        operations: spec.operations.clone(),
        key_check,
        tee_key_id,
        provider_key_id: key_id_of(keys.provider_key.as_bytes()),
        validations: keys.validations.clone(),
        rotate_after_secs: spec.rotate_after_secs,
        revocation_interval_secs: revocation.map(|r| r.interval_secs),
        task_signers: spec.task_signers.clone(),
        created: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(protocol)?,
        format,
        wrapped_sha256: inner.as_deref().map(formats::wrapped_digest),
        release: spec.release,
    };
    let signed = SignedMetadata::sign(&metadata, |bytes| {
        tenant
            .sign(bytes)
            .map_err(|e| ImportError::BadSignature(e.to_string()))
    })
    .map_err(refused)?;
    let digest = signed.digest();
    let sealed = match (&inner, layer) {
        (Some(inner), _) => envelope::seal_provider_layer(&keys.provider_key, &digest, inner),
        (None, TeeLayer::Veritee { material, .. }) => {
            let payload = ImportPayload {
                material: SecretBytes::copy_from(material.expose()),
                revocation: revocation.map(|r| RevocationData {
                    endpoint: r.endpoint.clone(),
                    endpoint_key: r.endpoint_key,
                    token: veritee_crypto::Confidential::new(*r.token.expose()),
                    interval_secs: r.interval_secs,
                }),
            }
            .encode()
            .map_err(refused)?;
            envelope::seal(&keys.tee.public_key, &keys.provider_key, &digest, &payload)
        }
        (None, _) => return Err(protocol("a standard format's TEE layer was not made")),
    }
    .map_err(refused)?;
    Ok(PreparedImport {
        request: ImportRequest {
            metadata: B64.encode(&signed.bytes),
            signature: B64.encode(&signed.signature),
            sealed: B64.encode(sealed),
        },
        metadata,
        digest,
    })
}

fn tee_rsa_key(keys: &ValidatedImportKeys) -> Result<&[u8], ClientError> {
    keys.tee_rsa_key.as_deref().ok_or_else(|| {
        ClientError::Refused(
            "this node states no RSA import key: use the veritee or hpke format".into(),
        )
    })
}

/// Checks the enclave's confirmation (signed by the attested audit key) names exactly
/// the import that was sent.
pub fn verify_confirmation(
    confirmation: &[u8],
    audit_public_key: &[u8],
    import: &PreparedImport,
) -> Result<Confirmation, ClientError> {
    let body = veritee_audit::open_document(confirmation, audit_public_key, CONFIRMATION_LABEL)
        .map_err(|e| protocol(format!("confirmation: {e}")))?;
    let c: Confirmation =
        serde_json::from_slice(body).map_err(|e| protocol(format!("confirmation: {e}")))?;
    let m = &import.metadata;
    if c.key_id != m.key_id
        || c.partition != m.partition
        || c.tenant != m.tenant
        || c.node != m.node_id
        || !(c.key_check == m.key_check
            || m.key_check.is_empty() && KeyCheck::from_hex(&c.key_check).is_ok())
        || c.key_type != m.key_type.as_str()
        || !c
            .operations
            .iter()
            .map(String::as_str)
            .eq(m.operations.iter().map(|o| o.as_str()))
        || c.metadata_digest != hex::encode(import.digest)
    {
        return Err(protocol(
            "the confirmation does not name the key, partition, tenant, node, type, operations and metadata that were sent",
        ));
    }
    Ok(c)
}

/// An import the enclave confirmed.
#[derive(Debug, Clone)]
pub struct ImportedKey {
    /// The checked confirmation.
    pub confirmation: Confirmation,
    /// The signed audit checkpoint that records it.
    pub checkpoint: String,
}

impl NodeClient {
    /// Fetches the TEE's and the provider's keys over a fresh nonce (validate them
    /// with [`ImportKeysFile::validate`] before use).
    pub fn fetch_import_keys(&self) -> Result<ImportKeysFile, ClientError> {
        let nonce = fresh_nonce()?;
        let keys: ImportKeysResponse = Self::json(&self.send(
            reqwest::Method::GET,
            &format!("{}?nonce={}", paths::import(), hex::encode(nonce)),
            None,
            None,
        )?)?;
        Ok(ImportKeysFile {
            node: self.base_url().to_string(),
            nonce: hex::encode(nonce),
            keys,
            fetched_at: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
        })
    }

    /// Sends a prepared import and checks the confirmation with the attested audit key.
    pub fn send_import(
        &self,
        tenant: &TenantKey,
        keys: &ValidatedImportKeys,
        import: &PreparedImport,
    ) -> Result<ImportedKey, ClientError> {
        let body = serde_json::to_vec(&import.request).map_err(protocol)?;
        let resp: ImportResponse = Self::json(&self.send_signed(
            tenant,
            reqwest::Method::POST,
            &paths::import(),
            Some(("application/json", body)),
        )?)?;
        let confirmation = B64
            .decode(&resp.confirmation)
            .map_err(|_| protocol("confirmation is not base64"))?;
        Ok(ImportedKey {
            confirmation: verify_confirmation(&confirmation, &keys.tee.audit_public_key, import)?,
            checkpoint: resp.checkpoint,
        })
    }

    /// Creates a partition (with the partition officers' approvals, once the tenant
    /// has partition officers).
    pub fn create_partition(
        &self,
        tenant: &TenantKey,
        name: &str,
        quorum: Option<QuorumProof>,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&CreatePartitionRequest {
            name: name.into(),
            quorum,
        })
        .map_err(protocol)?;
        self.send_signed(
            tenant,
            reqwest::Method::POST,
            &paths::partitions(),
            Some(("application/json", body)),
        )?;
        Ok(())
    }

    /// Disables an imported key for good (with the security officers' approvals, once
    /// the tenant has security officers).
    pub fn disable_key(
        &self,
        tenant: &TenantKey,
        key: &KeyRef,
        quorum: Option<QuorumProof>,
    ) -> Result<(), ClientError> {
        let body = match quorum {
            Some(q) => Some((
                "application/json",
                serde_json::to_vec(&DisableKeyRequest { quorum: Some(q) }).map_err(protocol)?,
            )),
            None => None,
        };
        self.send_signed(
            tenant,
            reqwest::Method::POST,
            &paths::disable_key(&key.partition, &key.key_id),
            body,
        )?;
        Ok(())
    }

    /// Deletes a partition and every key in it (with the partition officers'
    /// approvals, once the tenant has partition officers).
    pub fn delete_partition(
        &self,
        tenant: &TenantKey,
        name: &str,
        quorum: Option<QuorumProof>,
    ) -> Result<(), ClientError> {
        let body = match quorum {
            Some(q) => Some((
                "application/json",
                serde_json::to_vec(&DeletePartitionRequest { quorum: Some(q) })
                    .map_err(protocol)?,
            )),
            None => None,
        };
        self.send_signed(
            tenant,
            reqwest::Method::DELETE,
            &paths::partition(name),
            body,
        )?;
        Ok(())
    }

    /// Asks the enclave for a quorum token for `action` on `target`: the bytes each
    /// officer signs.
    pub fn quorum_token(
        &self,
        tenant: &TenantKey,
        action: &str,
        target: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let body = serde_json::to_vec(&QuorumTokenRequest {
            action: action.into(),
            target: target.into(),
        })
        .map_err(protocol)?;
        let resp: QuorumTokenResponse = Self::json(&self.send_signed(
            tenant,
            reqwest::Method::POST,
            &paths::quorum_tokens(),
            Some(("application/json", body)),
        )?)?;
        hex::decode(&resp.token).map_err(|_| protocol("the quorum token is not hex"))
    }

    /// Registers an officer of `role` and sets the role's quorum.
    pub fn register_officer(
        &self,
        tenant: &TenantKey,
        role: &str,
        public_key: &[u8; 32],
        quorum: u32,
        approvals: Option<QuorumProof>,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&RegisterOfficerRequest {
            role: role.into(),
            public_key: hex::encode(public_key),
            quorum,
            approvals,
        })
        .map_err(protocol)?;
        self.send_signed(
            tenant,
            reqwest::Method::POST,
            &paths::officers(),
            Some(("application/json", body)),
        )?;
        Ok(())
    }

    /// The tenant's officers by role.
    pub fn list_officers(&self, tenant: &TenantKey) -> Result<OfficerList, ClientError> {
        Self::json(&self.send_signed(tenant, reqwest::Method::GET, &paths::officers(), None)?)
    }

    /// The tenant's partitions and the key ids in each.
    pub fn list_partitions(&self, tenant: &TenantKey) -> Result<PartitionList, ClientError> {
        Self::json(&self.send_signed(tenant, reqwest::Method::GET, &paths::partitions(), None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
    use veritee_import::keys::{KeyType, Operation};

    fn sent() -> PreparedImport {
        let metadata = ImportMetadata {
            version: METADATA_VERSION,
            tenant: "ab".repeat(16),
            node_id: "0011223344556677".into(),
            partition: "payments".into(),
            key_id: "signing".into(),
            key_type: KeyType::EcdsaP256,
            operations: vec![Operation::Sign, Operation::Verify],
            key_check: format!("{}:{}", "11".repeat(16), "22".repeat(16)),
            tee_key_id: "33".repeat(16),
            provider_key_id: "44".repeat(16),
            validations: vec![],
            created: "2026-12-06T10:00:00Z".into(),
            rotate_after_secs: None,
            revocation_interval_secs: None,
            format: ImportFormat::Veritee,
            wrapped_sha256: None,
            release: None,
            task_signers: Vec::new(),
        };
        PreparedImport {
            request: ImportRequest {
                metadata: String::new(),
                signature: String::new(),
                sealed: String::new(),
            },
            metadata,
            digest: [7u8; 32],
        }
    }

    fn confirmation_of(import: &PreparedImport) -> Confirmation {
        let m = &import.metadata;
        Confirmation {
            key_id: m.key_id.clone(),
            partition: m.partition.clone(),
            tenant: m.tenant.clone(),
            node: m.node_id.clone(),
            key_type: m.key_type.as_str().into(),
            key_check: m.key_check.clone(),
            operations: m.operations.iter().map(|o| o.as_str().into()).collect(),
            metadata_digest: hex::encode(import.digest),
            audit_size: 12,
            time: "2026-12-06T10:00:01Z".into(),
        }
    }

    fn signed(key: &EcdsaSigningKey, c: &Confirmation) -> Vec<u8> {
        let body = serde_json::to_vec(c).unwrap();
        veritee_audit::sign_document(key, CONFIRMATION_LABEL, &body).unwrap()
    }

    #[test]
    fn a_confirmation_must_be_the_enclaves_and_name_exactly_what_was_sent() {
        let audit = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let spki = audit.public_key_spki().unwrap();
        let import = sent();
        let good = confirmation_of(&import);
        let ok = verify_confirmation(&signed(&audit, &good), &spki, &import).unwrap();
        assert_eq!(ok, good);

        // Each field the enclave could misstate, changed alone: refused.
        let changes: [fn(&mut Confirmation); 8] = [
            |c| c.key_id = "other".into(),
            |c| c.partition = "other".into(),
            |c| c.tenant = "cd".repeat(16),
            |c| c.node = "99".into(),
            |c| c.key_type = "aes-256-gcm".into(),
            |c| c.key_check.push('0'),
            |c| c.operations = vec!["sign".into(), "verify".into(), "decrypt".into()],
            |c| c.metadata_digest = hex::encode([8u8; 32]),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut c = good.clone();
            change(&mut c);
            let err = verify_confirmation(&signed(&audit, &c), &spki, &import).unwrap_err();
            assert!(
                err.to_string().contains("does not name"),
                "change {i}: {err}"
            );
        }

        // Another key's signature, a flipped byte anywhere, a truncation, another
        // document's label, garbage: refused before anything is read.
        let other = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        assert!(verify_confirmation(&signed(&other, &good), &spki, &import).is_err());
        let bytes = signed(&audit, &good);
        for i in (0..bytes.len()).step_by(7) {
            let mut flipped = bytes.clone();
            flipped[i] ^= 1;
            assert!(
                verify_confirmation(&flipped, &spki, &import).is_err(),
                "byte {i} flipped"
            );
        }
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(verify_confirmation(&bytes[..cut], &spki, &import).is_err());
        }
        let body = serde_json::to_vec(&good).unwrap();
        let relabelled =
            veritee_audit::sign_document(&audit, b"veritee receipt v1", &body).unwrap();
        assert!(verify_confirmation(&relabelled, &spki, &import).is_err());
        let not_json = veritee_audit::sign_document(&audit, CONFIRMATION_LABEL, b"{").unwrap();
        assert!(verify_confirmation(&not_json, &spki, &import).is_err());
    }
}
