//! Deploying user data keys: the attested wrapping key, wrapping (online or on an
//! offline machine), and import with a checked receipt.
//!
//! A wrapped key file travels by hand between the machine that wraps and the one that
//! imports. Every field that matters is authenticated: the wrapped key's header (node,
//! tenant, name, release relation, replication policy, check value, audit key digest)
//! is the HPKE associated data, and the tenant signs the whole file when it wraps,
//! right after checking the wrapping key's evidence, so the audit key that receipts are
//! checked with is the one that evidence vouched for, never one a courier put in.

use crate::{B64, ClientError, NodeClient};
use base64::Engine;
use veritee_attest::ReportData;
use veritee_channel::ChannelError;
use veritee_channel::client::{Appraiser, TenantKey, fresh_nonce};
use veritee_channel::deploy::{
    self, DATA_KEY_LEN, KeyCheck, RECEIPT_LABEL, Receipt, ReleasePolicy, WrappedKeyHeader,
};
use veritee_crypto::Confidential;
use veritee_proto::api::{ImportKeyRequest, ImportKeyResponse, WrappingKeyResponse, paths};

/// A node's wrapping key as fetched, with what is needed to check it later (offline).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappingKeyFile {
    /// The node it came from.
    pub node: String,
    /// The node id.
    pub node_id: String,
    /// HPKE X25519 public key, hex.
    pub public_key: String,
    /// The enclave's receipt-signing key, SPKI DER, base64.
    pub audit_public_key: String,
    /// The enclave's checkpoint-signing key, Ed25519, hex.
    pub checkpoint_public_key: String,
    /// The nonce the evidence is bound to, hex.
    pub nonce: String,
    /// The evidence, base64.
    pub evidence: String,
    /// When it was fetched, RFC 3339.
    pub fetched_at: String,
}

/// A wrapping key whose evidence was verified and appraised.
#[derive(Debug)]
pub struct AttestedWrappingKey {
    /// The node it came from.
    pub node: String,
    /// The node id the evidence binds.
    pub node_id: String,
    /// The key to encrypt to.
    pub public_key: veritee_crypto::hpke::HpkePublicKey,
    /// The key receipts are signed with.
    pub audit_public_key: Vec<u8>,
    /// The key audit checkpoints are signed with.
    pub checkpoint_public_key: [u8; 32],
    /// The enclave's claims.
    pub claims: veritee_attest::Claims,
}

impl WrappingKeyFile {
    /// Verifies the evidence, checks that its report data binds exactly these keys,
    /// this node id and this nonce, and applies the policy. Nothing may be encrypted to
    /// a key that fails.
    pub fn verify(&self, appraiser: &Appraiser<'_>) -> Result<AttestedWrappingKey, ClientError> {
        let proto = |what: &str| ClientError::Protocol(format!("wrapping key file: {what}"));
        let public = hex::decode(&self.public_key).map_err(|_| proto("public_key is not hex"))?;
        let audit = B64
            .decode(&self.audit_public_key)
            .map_err(|_| proto("audit_public_key is not base64"))?;
        let mut checkpoint = [0u8; 32];
        hex::decode_to_slice(&self.checkpoint_public_key, &mut checkpoint)
            .map_err(|_| proto("checkpoint_public_key is not 32 bytes of hex"))?;
        let nonce = hex::decode(&self.nonce).map_err(|_| proto("nonce is not hex"))?;
        let evidence = B64
            .decode(&self.evidence)
            .map_err(|_| proto("evidence is not base64"))?;
        let bound = deploy::wrapping_key_binding(
            &public,
            &veritee_channel::node_bound_keys(&audit, &checkpoint),
            &self.node_id,
        );
        let claims = appraiser.appraise(
            &evidence,
            &ReportData::binding(deploy::WRAPPING_KEY_LABEL, &bound, &nonce),
        )?;
        Ok(AttestedWrappingKey {
            node: self.node.clone(),
            node_id: self.node_id.clone(),
            public_key: veritee_crypto::hpke::HpkePublicKey::from_bytes(&public)
                .map_err(ChannelError::from)?,
            audit_public_key: audit,
            checkpoint_public_key: checkpoint,
            claims,
        })
    }
}

/// A key wrapped for one node, signed whole by the tenant that wrapped it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKeyFile {
    /// Format version, 2.
    pub version: u32,
    /// The node's URL (where to import it; not a security property).
    pub node: String,
    /// The node id the key is wrapped for.
    pub node_id: String,
    /// The key name.
    pub key: String,
    /// The tenant.
    pub tenant: String,
    /// The key's salted, keyed check value (`salt:value`, hex).
    pub key_check: String,
    /// Who may receive a replica: same-signer, same-measurement, never.
    pub release: String,
    /// The attested receipt key (SPKI DER, base64), from the wrapping key's evidence.
    pub audit_public_key: String,
    /// The attested checkpoint key (Ed25519, hex), from the same evidence.
    pub checkpoint_public_key: String,
    /// The wrapped key, base64.
    pub wrapped: String,
    /// The tenant's signature over every field above (ECDSA P-256, base64).
    pub signature: String,
}

const FILE_SIGNATURE_LABEL: &[u8] = b"veritee wrapped key file v2";
const FILE_VERSION: u32 = 2;

impl WrappedKeyFile {
    /// The bytes the tenant signs: every field, length-prefixed.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = FILE_SIGNATURE_LABEL.to_vec();
        out.extend_from_slice(&self.version.to_be_bytes());
        for field in [
            &self.node,
            &self.node_id,
            &self.key,
            &self.tenant,
            &self.key_check,
            &self.release,
            &self.audit_public_key,
            &self.checkpoint_public_key,
            &self.wrapped,
        ] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    /// Checks the tenant's signature and that the wrapped key's own header says what
    /// the file says; returns the wrapped bytes.
    pub fn check(&self, tenant: &TenantKey) -> Result<Vec<u8>, ClientError> {
        let refuse = |why: &str| {
            ClientError::Protocol(format!(
                "wrapped key file for {} refused: {why}; nothing was sent",
                self.key
            ))
        };
        if self.version != FILE_VERSION {
            return Err(refuse(&format!(
                "version {} (this build reads {FILE_VERSION})",
                self.version
            )));
        }
        let signature = B64
            .decode(&self.signature)
            .map_err(|_| refuse("its signature is not base64"))?;
        veritee_crypto::sign::verify(
            veritee_crypto::sign::VerificationScheme::EcdsaP256Sha256Fixed,
            &tenant.public_key_spki()?,
            &self.signed_bytes(),
            &signature,
        )
        .map_err(|_| {
            refuse(
                "it is not signed by this tenant's key, or a field was changed after it was signed",
            )
        })?;
        let wrapped = B64
            .decode(&self.wrapped)
            .map_err(|_| refuse("wrapped is not base64"))?;
        let (header, _) = deploy::parse_header(&wrapped).map_err(|e| refuse(&e.to_string()))?;
        let audit = B64
            .decode(&self.audit_public_key)
            .map_err(|_| refuse("audit_public_key is not base64"))?;
        if header.tenant_id != self.tenant
            || header.name != self.key
            || header.node_id != self.node_id
            || header.check.to_hex() != self.key_check
            || header.release.as_str() != self.release
            || header.audit_key_digest != veritee_crypto::digest::sha256(&audit)
        {
            return Err(refuse("the wrapped key's header disagrees with the file"));
        }
        Ok(wrapped)
    }
}

/// Wraps `key` for the attested node under `name` and signs the file with the tenant
/// key. `policy` (an appraisal policy, JSON) is what any enclave receiving a replica of
/// the key must meet.
pub fn wrap_for_node(
    attested: &AttestedWrappingKey,
    tenant: &TenantKey,
    name: &str,
    release: ReleasePolicy,
    policy: Vec<u8>,
    key: &Confidential<[u8; DATA_KEY_LEN]>,
) -> Result<WrappedKeyFile, ClientError> {
    let check = KeyCheck::new(key)?;
    let header = WrappedKeyHeader {
        release,
        wrapping_key_id: deploy::wrapping_key_id(attested.public_key.as_bytes()),
        tenant_id: tenant.tenant_id()?,
        node_id: attested.node_id.clone(),
        audit_key_digest: veritee_crypto::digest::sha256(&attested.audit_public_key),
        check,
        policy,
        name: name.to_string(),
    };
    let wrapped = deploy::wrap_key(&attested.public_key, &header, key)?;
    let mut file = WrappedKeyFile {
        version: FILE_VERSION,
        node: attested.node.clone(),
        node_id: attested.node_id.clone(),
        key: name.to_string(),
        tenant: header.tenant_id.clone(),
        key_check: check.to_hex(),
        release: release.as_str().to_string(),
        audit_public_key: B64.encode(&attested.audit_public_key),
        checkpoint_public_key: hex::encode(attested.checkpoint_public_key),
        wrapped: B64.encode(wrapped),
        signature: String::new(),
    };
    file.signature = B64.encode(tenant.sign(&file.signed_bytes())?);
    Ok(file)
}

/// What a checked import returns.
#[derive(Debug)]
pub struct ImportedKey {
    /// The receipt the enclave signed.
    pub receipt: Receipt,
    /// The signed receipt as the enclave made it, to keep as proof.
    pub signed_receipt: Vec<u8>,
    /// The audit checkpoint the enclave signed with it, already checked.
    pub checkpoint: veritee_audit::checkpoint::Checkpoint,
    /// The checkpoint's signed note, to keep for `veritee audit verify --checkpoint`.
    pub checkpoint_note: String,
}

/// Imports a wrapped key file into its node and checks the enclave's receipt and
/// checkpoint with the keys the file's (tenant-signed) attested fields name.
pub fn import_wrapped_key(
    client: &NodeClient,
    tenant: &TenantKey,
    file: &WrappedKeyFile,
) -> Result<ImportedKey, ClientError> {
    let wrapped = file.check(tenant)?;
    let body = serde_json::to_vec(&ImportKeyRequest {
        wrapped: B64.encode(&wrapped),
    })
    .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let resp: ImportKeyResponse = NodeClient::json(&client.send_signed(
        tenant,
        reqwest::Method::POST,
        &paths::keys(),
        Some(("application/json", body)),
    )?)?;
    let receipt_bytes = B64
        .decode(&resp.receipt)
        .map_err(|e| ClientError::Protocol(format!("the node's receipt is not base64: {e}")))?;
    let audit = B64.decode(&file.audit_public_key).map_err(|e| {
        ClientError::Protocol(format!(
            "the wrapped key file's audit_public_key is not base64: {e}"
        ))
    })?;
    let receipt = verify_receipt(&receipt_bytes, &audit, file)?;
    let (header, _) = deploy::parse_header(&wrapped)?;
    if receipt.wrapping_key_id != header.wrapping_key_id {
        return Err(ClientError::Protocol(
            "the receipt names another wrapping key than the one the key was wrapped to".into(),
        ));
    }
    let mut checkpoint_key = [0u8; 32];
    hex::decode_to_slice(&file.checkpoint_public_key, &mut checkpoint_key).map_err(|_| {
        ClientError::Protocol("checkpoint_public_key is not 32 bytes of hex".into())
    })?;
    let origin = format!("veritee.audit/{}", file.node_id);
    let checkpoint = veritee_audit::checkpoint::open_checkpoint(
        &resp.checkpoint,
        &origin,
        &origin,
        &checkpoint_key,
    )
    .map_err(|e| ClientError::Protocol(format!("the receipt's audit checkpoint: {e}")))?;
    if checkpoint.size < receipt.audit_size {
        return Err(ClientError::Protocol(format!(
            "the receipt's audit checkpoint ({} entries) does not cover the import (entry {})",
            checkpoint.size, receipt.audit_size
        )));
    }
    Ok(ImportedKey {
        receipt,
        signed_receipt: receipt_bytes,
        checkpoint,
        checkpoint_note: resp.checkpoint,
    })
}

/// Checks a receipt's signature and that it names what was deployed.
pub fn verify_receipt(
    receipt: &[u8],
    audit_public_key: &[u8],
    file: &WrappedKeyFile,
) -> Result<Receipt, ClientError> {
    let body = veritee_audit::open_document(receipt, audit_public_key, RECEIPT_LABEL)
        .map_err(|e| ClientError::Protocol(format!("receipt: {e}")))?;
    let r: Receipt =
        serde_json::from_slice(body).map_err(|e| ClientError::Protocol(format!("receipt: {e}")))?;
    if r.key != file.key
        || r.tenant != file.tenant
        || r.node != file.node_id
        || !veritee_crypto::ct_eq(r.key_check.as_bytes(), file.key_check.as_bytes())
    {
        return Err(ClientError::Protocol(
            "the receipt does not name the key, tenant, node and check value that were deployed"
                .into(),
        ));
    }
    Ok(r)
}

impl NodeClient {
    /// Fetches the wrapping key with evidence over a fresh nonce (verify it with
    /// [`WrappingKeyFile::verify`] before using it).
    pub fn fetch_wrapping_key(&self) -> Result<WrappingKeyFile, ClientError> {
        let nonce = fresh_nonce()?;
        let resp: WrappingKeyResponse = Self::json(&self.send(
            reqwest::Method::GET,
            &format!("/v1/keys/wrapping-key?nonce={}", hex::encode(nonce)),
            None,
            None,
        )?)?;
        Ok(WrappingKeyFile {
            node: self.base_url().to_string(),
            node_id: resp.node_id,
            public_key: resp.public_key,
            audit_public_key: resp.audit_public_key,
            checkpoint_public_key: resp.checkpoint_public_key,
            nonce: hex::encode(nonce),
            evidence: resp.evidence,
            fetched_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        })
    }
}
