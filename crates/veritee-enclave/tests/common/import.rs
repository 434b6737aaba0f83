//! Secret import (flow 3) as the customer makes it, in process: the enclave's keys,
//! metadata, both layers (and the host's peeling), and operations in a session.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use veritee_channel::client::TenantKey;
use veritee_channel::crypto::{CryptoOp, CryptoOutcome};
use veritee_channel::ops::{Request, Response};
use veritee_crypto::SecretBytes;
use veritee_crypto::hpke::{HpkeKeyPair, HpkePublicKey};
use veritee_enclave::EnclaveService;
use veritee_import::confirmation::{CONFIRMATION_LABEL, Confirmation};
use veritee_import::envelope;
use veritee_import::keys::{KeyCheck, KeyType, Operation};
use veritee_import::metadata::{
    ImportMetadata, METADATA_SIGNATURE_LABEL, METADATA_VERSION, SignedMetadata, key_id_of,
};
use veritee_import::payload::ImportPayload;
use veritee_proto::api::{CreatePartitionRequest, ImportRequest, paths};
use veritee_proto::ipc::{
    EnclaveCall, EnclaveFailure, EnclaveReply, ImportCall, ImportReply, SignedRequest,
};

/// The enclave's import key, node id and audit key, as the customer gets them.
pub struct NodeKeys {
    pub tee: HpkePublicKey,
    pub node_id: String,
    pub audit_spki: Vec<u8>,
}

pub fn node_keys(service: &EnclaveService, host: &mut MemoryHost) -> NodeKeys {
    match service
        .handle(EnclaveCall::WrappingKey { nonce: vec![7; 32] }, host)
        .expect("wrapping key")
    {
        EnclaveReply::WrappingKey {
            public_key,
            node_id,
            audit_public_key,
            ..
        } => NodeKeys {
            tee: HpkePublicKey::from_bytes(&public_key).expect("key"),
            node_id,
            audit_spki: audit_public_key,
        },
        other => panic!("{other:?}"),
    }
}

/// One import as the customer makes it, and as the host receives it.
#[derive(Clone)]
pub struct Import {
    pub metadata: ImportMetadata,
    pub signed: SignedMetadata,
    pub body: Vec<u8>,
    /// What the host's peeling gives: the layer to the TEE.
    pub inner: Vec<u8>,
}

pub fn metadata_for(
    keys: &NodeKeys,
    provider: &HpkeKeyPair,
    tenant: &TenantKey,
    (partition, key_id): (&str, &str),
    key_type: KeyType,
    operations: &[Operation],
    material: &SecretBytes,
) -> ImportMetadata {
    ImportMetadata {
        version: METADATA_VERSION,
        tenant: tenant.tenant_id().expect("id"),
        node_id: keys.node_id.clone(),
        partition: partition.into(),
        key_id: key_id.into(),
        key_type,
        operations: operations.to_vec(),
        key_check: KeyCheck::new(material).expect("check").to_hex(),
        tee_key_id: key_id_of(keys.tee.as_bytes()),
        provider_key_id: key_id_of(provider.public_key().as_bytes()),
        validations: vec!["tee-key: evidence verified (test)".into()],
        rotate_after_secs: None,
        revocation_interval_secs: None,
        task_signers: Vec::new(),
        created: "2026-12-06T08:00:00Z".into(),
        format: veritee_import::formats::ImportFormat::Veritee,
        wrapped_sha256: None,
        release: None,
    }
}

/// Signs `metadata` as stated (checked or not) and sends `inner`, a TEE layer made in
/// a standard format, under the provider layer: the import as the host peeled it.
pub fn seal_wrapped(
    provider: &HpkeKeyPair,
    tenant: &TenantKey,
    metadata: ImportMetadata,
    inner: &[u8],
) -> Import {
    let signed = signed_as_stated(tenant, &metadata);
    let outer = envelope::seal_provider_layer(&provider.public_key(), &signed.digest(), inner)
        .expect("seal");
    as_sent(provider, metadata, signed, &outer)
}

pub fn seal_import(
    keys: &NodeKeys,
    provider: &HpkeKeyPair,
    tenant: &TenantKey,
    metadata: ImportMetadata,
    material: &SecretBytes,
) -> Import {
    let payload = ImportPayload {
        material: SecretBytes::copy_from(material.expose()),
        revocation: None,
    };
    seal_payload(
        keys,
        provider,
        tenant,
        metadata,
        &payload.encode().expect("payload"),
    )
}

/// As [`seal_import`], with the TEE layer's plaintext given (revocation data, or bytes
/// that are no payload at all).
pub fn seal_payload(
    keys: &NodeKeys,
    provider: &HpkeKeyPair,
    tenant: &TenantKey,
    metadata: ImportMetadata,
    payload: &SecretBytes,
) -> Import {
    let signed = signed_as_stated(tenant, &metadata);
    let outer =
        envelope::seal(&keys.tee, &provider.public_key(), &signed.digest(), payload).expect("seal");
    as_sent(provider, metadata, signed, &outer)
}

/// Signs `metadata` as stated, checked or not: the enclave must not rely on the
/// client's checks.
fn signed_as_stated(tenant: &TenantKey, metadata: &ImportMetadata) -> SignedMetadata {
    let bytes = serde_json::to_vec(metadata).expect("json");
    let mut signed_bytes = METADATA_SIGNATURE_LABEL.to_vec();
    signed_bytes.extend_from_slice(&bytes);
    SignedMetadata {
        bytes,
        signature: tenant.sign(&signed_bytes).expect("sign"),
    }
}

/// The request body for `outer`, and the inner layer the host's peeling gives.
fn as_sent(
    provider: &HpkeKeyPair,
    metadata: ImportMetadata,
    signed: SignedMetadata,
    outer: &[u8],
) -> Import {
    let body = serde_json::to_vec(&ImportRequest {
        metadata: B64.encode(&signed.bytes),
        signature: B64.encode(&signed.signature),
        sealed: B64.encode(outer),
    })
    .expect("json");
    let inner = envelope::peel_provider_layer(provider, &signed.digest(), outer).expect("peel");
    Import {
        metadata,
        signed,
        body,
        inner,
    }
}

pub fn send(
    service: &EnclaveService,
    host: &mut MemoryHost,
    request: SignedRequest,
    body: &[u8],
    inner: &[u8],
) -> Result<EnclaveReply, EnclaveFailure> {
    service.handle(
        EnclaveCall::Import(ImportCall::Key {
            request,
            body: body.to_vec(),
            inner: inner.to_vec(),
        }),
        host,
    )
}

/// Sends `import` signed by `tenant`.
pub fn send_import(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    import: &Import,
) -> Result<EnclaveReply, EnclaveFailure> {
    let aud = audience(service, host);
    let request = sign(&aud, tenant, "POST", &paths::import(), &import.body);
    send(service, host, request, &import.body, &import.inner)
}

pub fn create_partition(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    name: &str,
) {
    try_create_partition(service, host, tenant, name, None).expect("create partition");
}

/// Creates a partition with a quorum proof (or none); the enclave's answer.
pub fn try_create_partition(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    name: &str,
    quorum: Option<veritee_proto::api::QuorumProof>,
) -> Result<EnclaveReply, EnclaveFailure> {
    let aud = audience(service, host);
    let body = serde_json::to_vec(&CreatePartitionRequest {
        name: name.into(),
        quorum,
    })
    .expect("json");
    let request = sign(&aud, tenant, "POST", &paths::partitions(), &body);
    service.handle(
        EnclaveCall::Import(ImportCall::CreatePartition { request, body }),
        host,
    )
}

pub fn confirmation(reply: EnclaveReply, audit_spki: &[u8]) -> Confirmation {
    let EnclaveReply::Import(ImportReply::Imported { confirmation, .. }) = reply else {
        panic!("not a confirmation: {reply:?}");
    };
    let body = veritee_audit::open_document(&confirmation, audit_spki, CONFIRMATION_LABEL)
        .expect("confirmation signed by the attested audit key");
    serde_json::from_slice(body).expect("confirmation")
}

pub fn one(
    session: &mut Session,
    service: &EnclaveService,
    host: &mut MemoryHost,
    op: CryptoOp,
) -> CryptoOutcome {
    match session.call(service, host, &Request::Crypto(vec![op])) {
        Response::Crypto(mut outcomes) if outcomes.len() == 1 => outcomes.remove(0),
        other => panic!("{other:?}"),
    }
}

pub fn refusal(outcome: CryptoOutcome) -> (String, String) {
    match outcome {
        CryptoOutcome::Error { code, message } => (code, message),
        other => panic!("not refused: {other:?}"),
    }
}

/// Disables `partition/key_id` as `tenant` alone (a tenant without security officers).
pub fn disable_alone(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    (partition, key_id): (&str, &str),
) -> Result<EnclaveReply, EnclaveFailure> {
    let aud = audience(service, host);
    service.handle(
        EnclaveCall::Import(ImportCall::DisableKey {
            request: sign(
                &aud,
                tenant,
                "POST",
                &paths::disable_key(partition, key_id),
                b"",
            ),
            partition: partition.into(),
            key_id: key_id.into(),
            body: Vec::new(),
        }),
        host,
    )
}

/// The tenant's partitions and their keys, as the enclave lists them.
pub fn list_partitions(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
) -> Vec<(String, Vec<String>)> {
    let aud = audience(service, host);
    let request = sign(&aud, tenant, "GET", &paths::partitions(), &[]);
    match service.handle(
        EnclaveCall::Import(ImportCall::ListPartitions { request }),
        host,
    ) {
        Ok(EnclaveReply::Import(ImportReply::Partitions(list))) => list,
        other => panic!("no list: {other:?}"),
    }
}

/// Imports `material` as an AES-256 key of `tenant`, `partition/key_id`, for encryption
/// and decryption; `adjust` changes its metadata before they are signed.
pub fn import_aes_with(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    at: (&str, &str),
    material: &[u8],
    adjust: impl FnOnce(&mut ImportMetadata),
) {
    let keys = node_keys(service, host);
    let provider = HpkeKeyPair::generate();
    let material = SecretBytes::copy_from(material);
    let mut meta = metadata_for(
        &keys,
        &provider,
        tenant,
        at,
        KeyType::Aes256Gcm,
        &[Operation::Encrypt, Operation::Decrypt],
        &material,
    );
    adjust(&mut meta);
    let import = seal_import(&keys, &provider, tenant, meta, &material);
    send_import(service, host, tenant, &import).expect("import");
}
