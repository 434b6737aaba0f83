//! User data keys (flow 4): the attested wrapping key, import with a signed receipt,
//! sealed per-node copies, and lookup (with replication from a peer when this node has
//! no copy).
//!
//! A key copy keeps, beside the key, everything that decides where it may go: the
//! release relation and the appraisal policy the tenant deployed it under, its check
//! value, and the tenant's own signed import request, which is the key's provenance: a
//! peer that hands this node a key must hand over that request too, so no peer can
//! plant a key the tenant never deployed.

use crate::host::{HostLink, HostLinkExt, failure};
use crate::service::{EnclaveService, bad, internal, tenant_ns};
use serde::{Deserialize, Serialize};
use veritee_attest::ReportData;
use veritee_channel::deploy::{
    self, DATA_KEY_LEN, KeyCheck, RECEIPT_LABEL, ReleasePolicy, WRAPPING_KEY_LABEL,
};
use veritee_crypto::Confidential;
use veritee_proto::api::{ImportKeyRequest, auth, paths};
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind, SignedRequest};
use zeroize::Zeroizing;

/// The tenant's signed request that deployed a key: proof, to any enclave, that the
/// tenant deployed exactly this key under this name, relation and policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Provenance {
    pub(crate) authorization: String,
    pub(crate) method: String,
    pub(crate) path: String,
    #[serde(with = "serde_bytes")]
    pub(crate) body: Vec<u8>,
}

impl From<&SignedRequest> for Provenance {
    fn from(r: &SignedRequest) -> Self {
        Self {
            authorization: r.authorization.clone(),
            method: r.method.clone(),
            path: r.path.clone(),
            body: Vec::new(),
        }
    }
}

/// A user data key as the enclave holds it.
pub(crate) struct UserKey {
    pub(crate) key: Confidential<[u8; DATA_KEY_LEN]>,
    pub(crate) release: ReleasePolicy,
    /// The appraisal policy (JSON) any enclave receiving a replica must meet.
    pub(crate) policy: Vec<u8>,
    pub(crate) check: KeyCheck,
    pub(crate) provenance: Provenance,
}

impl UserKey {
    /// The key's check value, as receipts and listings name it.
    pub(crate) fn check_value(&self) -> String {
        self.check.to_hex()
    }
}

/// The sealed form of a key copy. Private: the only way a key leaves is sealed.
#[derive(Serialize, Deserialize)]
struct KeyRecord {
    release: u8,
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    policy: Vec<u8>,
    #[serde(with = "serde_bytes")]
    salt: Vec<u8>,
    #[serde(with = "serde_bytes")]
    check: Vec<u8>,
    provenance: Provenance,
}

impl Drop for KeyRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

fn copy_key(name: &str) -> String {
    format!("key/{name}")
}

pub(crate) fn encode_key(key: &UserKey) -> Result<Zeroizing<Vec<u8>>, EnclaveFailure> {
    let record = KeyRecord {
        release: key.release.code(),
        key: key.key.expose().to_vec(),
        policy: key.policy.clone(),
        salt: key.check.salt.to_vec(),
        check: key.check.value.to_vec(),
        provenance: key.provenance.clone(),
    };
    // Exactly sized: a buffer that grew would leave copies of the key behind in memory
    // that is never wiped.
    Ok(Zeroizing::new(
        veritee_proto::cbor::to_vec_exact(&record).map_err(internal)?,
    ))
}

pub(crate) fn decode_key(bytes: &[u8]) -> Result<UserKey, String> {
    let record: KeyRecord = veritee_proto::cbor::from_slice(bytes)
        .map_err(|e| format!("malformed key record: {}", e.kind()))?;
    let release = ReleasePolicy::from_code(record.release)
        .ok_or("a key record has an unknown release relation")?;
    if record.key.len() != DATA_KEY_LEN {
        return Err("a key record has a key of the wrong length".into());
    }
    let mut key = Confidential::new([0u8; DATA_KEY_LEN]);
    key.expose_mut().copy_from_slice(&record.key);
    let salt = record
        .salt
        .as_slice()
        .try_into()
        .map_err(|_| "a key record's check salt has the wrong length")?;
    let value = record
        .check
        .as_slice()
        .try_into()
        .map_err(|_| "a key record's check value has the wrong length")?;
    Ok(UserKey {
        key,
        release,
        policy: record.policy.clone(),
        check: KeyCheck { salt, value },
        provenance: record.provenance.clone(),
    })
}

/// Checks that `provenance` is `tenant`'s own signed import of `name`, under the given
/// key, relation and policy (signature by `tenant_spki`, the header's every field);
/// returns why not.
pub(crate) fn check_provenance(
    provenance: &Provenance,
    tenant: &str,
    tenant_spki: &[u8],
    name: &str,
    key: &UserKey,
) -> Result<(), String> {
    let header = auth::parse_header(&provenance.authorization)
        .map_err(|e| format!("its deployment proof is unreadable: {e}"))?;
    if header.tenant_id != tenant || provenance.method != "POST" || provenance.path != paths::keys()
    {
        return Err("its deployment proof is not this tenant's key import".into());
    }
    let message = header.signing_string(
        &provenance.method,
        &provenance.path,
        &auth::body_payload(&provenance.body),
    );
    veritee_crypto::sign::verify(
        veritee_crypto::sign::VerificationScheme::EcdsaP256Sha256Fixed,
        tenant_spki,
        &message,
        &header.signature,
    )
    .map_err(|_| "its deployment proof is not signed by the tenant".to_string())?;
    let request: ImportKeyRequest = serde_json::from_slice(&provenance.body)
        .map_err(|e| format!("its deployment proof holds no key import: {e}"))?;
    use base64::Engine;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(request.wrapped.trim())
        .map_err(|_| "its deployment proof holds no wrapped key".to_string())?;
    let (h, _) = deploy::parse_header(&blob).map_err(|e| format!("its deployment proof: {e}"))?;
    if h.tenant_id != tenant
        || h.name != name
        || h.release != key.release
        || h.policy != key.policy
        || h.check != key.check
    {
        return Err(
            "the key's name, relation, policy or check value differ from what the tenant deployed"
                .into(),
        );
    }
    if !key.check.matches(&key.key) {
        return Err("the key is not the one the tenant deployed (check value differs)".into());
    }
    Ok(())
}

impl EnclaveService {
    pub(crate) fn wrapping_key(
        &self,
        nonce: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        if !(16..=64).contains(&nonce.len()) {
            return Err(bad("the nonce must be 16 to 64 bytes"));
        }
        let node = self.node(link)?;
        let node_id = self.node_id()?;
        let public_key = node.wrapping.public_key().as_bytes().to_vec();
        let evidence = self
            .platform()
            .evidence(&ReportData::binding(
                WRAPPING_KEY_LABEL,
                &deploy::wrapping_key_binding(&public_key, &node.bound_public_keys(), &node_id),
                nonce,
            ))
            .map_err(internal)?;
        Ok(EnclaveReply::WrappingKey {
            public_key,
            audit_public_key: node.audit_spki.clone(),
            checkpoint_public_key: node.checkpoint_key.public_key().to_vec(),
            node_id,
            evidence,
        })
    }

    pub(crate) fn import_key(
        &self,
        request: &SignedRequest,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::keys(), body, link)?;
        let parsed: ImportKeyRequest =
            serde_json::from_slice(body).map_err(|e| bad(format!("invalid key import: {e}")))?;
        use base64::Engine;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(parsed.wrapped.trim())
            .map_err(|_| bad("wrapped must be base64"))?;
        let node = self.node(link)?;
        let node_id = self.node_id()?;
        let (header, key) =
            deploy::unwrap_key(&node.wrapping, &blob).map_err(|e| bad(e.to_string()))?;
        // The tenant is authenticated; the file is not for this import (400, not 401).
        let refuse = |reason: &str| bad(format!("key {} refused: {reason}", header.name));
        if header.tenant_id != tenant {
            return Err(refuse(
                "it is wrapped for another tenant than the one who signed the import",
            ));
        }
        if header.node_id != node_id {
            return Err(refuse("it is wrapped for another node"));
        }
        if header.audit_key_digest != veritee_crypto::digest::sha256(&node.audit_spki) {
            return Err(refuse(
                "it names another audit key than this enclave's: its receipt would not be checkable",
            ));
        }
        core::str::from_utf8(&header.policy)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                veritee_policy::AppraisalPolicy::parse(text).map_err(|e| e.to_string())
            })
            .map_err(|e| bad(format!("key {}: its replication policy: {e}", header.name)))?;
        let ns = tenant_ns(&tenant);
        let mut provenance = Provenance::from(request);
        provenance.body = body.to_vec();
        let user_key = UserKey {
            key,
            release: header.release,
            policy: header.policy.clone(),
            check: header.check,
            provenance,
        };
        let created =
            self.record_put_if_absent(link, &ns, &copy_key(&header.name), &encode_key(&user_key)?)?;
        // The same file imported again (a retry after an answer was lost, or a failure
        // after the key was stored) gets its receipt; anything else under the name is
        // a conflict.
        let retried = !created
            && self
                .own_key_copy(&tenant, &header.name, link)?
                .is_some_and(|held| {
                    held.check == user_key.check
                        && held.release == user_key.release
                        && held.policy == user_key.policy
                        && veritee_crypto::ct_eq(held.key.expose(), user_key.key.expose())
                });
        if !created && !retried {
            self.audit(
                link,
                "key.import",
                &tenant,
                &header.name,
                "refused: name taken",
            )?;
            return Err(failure(
                FailureKind::Conflict,
                format!(
                    "a key named {} exists already; nothing was overwritten",
                    header.name
                ),
            ));
        }
        let outcome = if retried { "ok: imported again" } else { "ok" };
        self.audit(link, "key.import", &tenant, &header.name, outcome)?;
        // One reading: the receipt's size is the checkpoint's.
        let (checkpoint, audit_size) = self.signed_checkpoint(link, false)?;
        let receipt = deploy::Receipt {
            key: header.name.clone(),
            tenant,
            node: node_id,
            key_check: header.check.to_hex(),
            wrapping_key_id: header.wrapping_key_id,
            audit_size,
            time: crate::clock::rfc3339(self.clock().now()),
        };
        let body = serde_json::to_vec(&receipt).map_err(internal)?;
        let receipt = veritee_audit::sign_document(&node.audit_key, RECEIPT_LABEL, &body)
            .map_err(internal)?;
        Ok(EnclaveReply::KeyImported {
            receipt,
            checkpoint,
        })
    }

    /// This node's copy of a key, or None.
    pub(crate) fn own_key_copy(
        &self,
        tenant: &str,
        name: &str,
        link: &mut dyn HostLink,
    ) -> Result<Option<UserKey>, EnclaveFailure> {
        match self.record_get(link, &tenant_ns(tenant), &copy_key(name))? {
            Some(bytes) => Ok(Some(decode_key(bytes.expose()).map_err(internal)?)),
            None => Ok(None),
        }
    }

    /// A tenant's key: this node's copy, or a replica fetched from a peer enclave.
    pub(crate) fn user_key(
        &self,
        tenant: &str,
        name: &str,
        link: &mut dyn HostLink,
    ) -> Result<UserKey, EnclaveFailure> {
        Self::checked_name(name)?;
        if let Some(k) = self.own_key_copy(tenant, name, link)? {
            return Ok(k);
        }
        if link.peers()?.is_empty() {
            return Err(failure(
                FailureKind::NotFound,
                format!("no key named {name}"),
            ));
        }
        let key = self.fetch_replica(tenant, name, link)?;
        let ns = tenant_ns(tenant);
        if !self.record_put_if_absent(link, &ns, &copy_key(name), &encode_key(&key)?)? {
            // Another call stored a replica meanwhile: that one is this node's copy.
            return self.own_key_copy(tenant, name, link)?.ok_or_else(|| {
                failure(
                    FailureKind::Unavailable,
                    format!("key {name} vanished while being replicated; try again"),
                )
            });
        }
        self.audit(
            link,
            "key.replicate",
            tenant,
            name,
            "ok: obtained from a peer enclave, with the tenant's deployment proof",
        )?;
        Ok(key)
    }

    /// The names of the tenant's keys this node holds, from the sealed index: the host
    /// can neither add one nor hide one. A key deployed at another node is listed here
    /// once this node holds a replica (fetched at its first use).
    pub(crate) fn key_names(
        &self,
        tenant: &str,
        link: &mut dyn HostLink,
    ) -> Result<Vec<String>, EnclaveFailure> {
        let ns = tenant_ns(tenant);
        Ok(self
            .record_keys(link, &ns, "key/")?
            .into_iter()
            .filter_map(|k| k.strip_prefix("key/").map(String::from))
            .collect())
    }
}
