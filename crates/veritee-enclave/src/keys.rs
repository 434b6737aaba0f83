//! User data keys: the attested wrapping key, import with a signed receipt, sealed
//! per-node copies, and lookup (with replication from a peer when this node has no copy).

use crate::host::{HostLink, HostLinkExt, failure};
use crate::service::{EnclaveService, internal, tenant_ns};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use veritee_attest::ReportData;
use veritee_channel::deploy::{
    self, DATA_KEY_LEN, RECEIPT_LABEL, ReleasePolicy, WRAPPING_KEY_LABEL,
};
use veritee_crypto::Confidential;
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};

/// A user data key as the enclave holds it.
pub(crate) struct UserKey {
    pub(crate) key: Confidential<[u8; DATA_KEY_LEN]>,
    pub(crate) release: ReleasePolicy,
}

/// Public facts about a key, readable by every node sharing the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyInfo {
    pub(crate) release: String,
    pub(crate) created: String,
    pub(crate) origin_node: String,
    pub(crate) key_digest: String,
}

pub(crate) fn info_key(name: &str) -> String {
    format!("keyinfo/{name}")
}

pub(crate) fn copy_key(name: &str, node_id: &str) -> String {
    format!("key/{name}/{node_id}")
}

/// The sealed form of a key copy: release policy code, then the key.
fn encode_copy(key: &UserKey) -> Confidential<Vec<u8>> {
    let mut v = Vec::with_capacity(1 + DATA_KEY_LEN);
    v.push(key.release.code());
    v.extend_from_slice(key.key.expose());
    Confidential::new(v)
}

fn decode_copy(bytes: &[u8]) -> Result<UserKey, EnclaveFailure> {
    if bytes.len() != 1 + DATA_KEY_LEN {
        return Err(failure(
            FailureKind::Internal,
            "a stored key copy has the wrong length",
        ));
    }
    let release = ReleasePolicy::from_code(bytes[0]).ok_or_else(|| {
        failure(
            FailureKind::Internal,
            "a stored key copy has an unknown policy",
        )
    })?;
    let mut key = Confidential::new([0u8; DATA_KEY_LEN]);
    key.expose_mut().copy_from_slice(&bytes[1..]);
    Ok(UserKey { key, release })
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl EnclaveService {
    pub(crate) fn wrapping_key(
        &self,
        nonce: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        if !(16..=64).contains(&nonce.len()) {
            return Err(failure(
                FailureKind::BadRequest,
                "the nonce must be 16 to 64 bytes",
            ));
        }
        let node = self.node(link)?;
        let public_key = node.wrapping.public_key().as_bytes().to_vec();
        let mut bound = public_key.clone();
        bound.extend_from_slice(&node.audit_spki);
        let evidence = self
            .platform()
            .evidence(&ReportData::binding(WRAPPING_KEY_LABEL, &bound, nonce))
            .map_err(internal)?;
        Ok(EnclaveReply::WrappingKey {
            public_key,
            audit_public_key: node.audit_spki.clone(),
            evidence,
        })
    }

    pub(crate) fn import_key(
        &self,
        host_tenant: &str,
        blob: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let node = self.node(link)?;
        let (header, key) = deploy::unwrap_key(&node.wrapping, blob)
            .map_err(|e| failure(FailureKind::BadRequest, e.to_string()))?;
        if header.tenant_id != host_tenant {
            return Err(failure(
                FailureKind::Unauthorized,
                "the key is wrapped for another tenant than the one sending it",
            ));
        }
        self.tenant_key(link, &header.tenant_id)?;
        let ns = tenant_ns(&header.tenant_id);
        let digest = deploy::key_digest(&key);
        let info = KeyInfo {
            release: header.release.as_str().into(),
            created: now(),
            origin_node: node.node_id.clone(),
            key_digest: digest.clone(),
        };
        let info_json = serde_json::to_vec(&info).map_err(internal)?;
        if !link.put_if_absent(&ns, &info_key(&header.name), info_json)? {
            self.audit(
                link,
                "key.import",
                &header.tenant_id,
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
        let user_key = UserKey {
            key,
            release: header.release,
        };
        let copy = copy_key(&header.name, &node.node_id);
        link.put(
            &ns,
            &copy,
            self.seal(&ns, &copy, encode_copy(&user_key).expose())?,
        )?;
        self.audit(link, "key.import", &header.tenant_id, &header.name, "ok")?;
        let receipt = deploy::Receipt {
            key: header.name,
            tenant: header.tenant_id,
            key_digest: digest,
            wrapping_key_id: header.wrapping_key_id,
            time: now(),
        };
        let body = serde_json::to_vec(&receipt).map_err(internal)?;
        let receipt = veritee_audit::sign_document(&node.audit_key, RECEIPT_LABEL, &body)
            .map_err(internal)?;
        Ok(EnclaveReply::KeyImported { receipt })
    }

    /// This node's copy of a key, or None.
    pub(crate) fn own_key_copy(
        &self,
        tenant: &str,
        name: &str,
        link: &mut dyn HostLink,
    ) -> Result<Option<UserKey>, EnclaveFailure> {
        let node = self.node(link)?;
        let ns = tenant_ns(tenant);
        let copy = copy_key(name, &node.node_id);
        match link.get(&ns, &copy)? {
            Some(blob) => Ok(Some(decode_copy(self.unseal(&ns, &copy, &blob)?.expose())?)),
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
        let ns = tenant_ns(tenant);
        let info: Option<KeyInfo> = match link.get(&ns, &info_key(name))? {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(internal)?),
            None => None,
        };
        if let Some(info) = &info
            && info.release == ReleasePolicy::Never.as_str()
        {
            return Err(failure(
                FailureKind::NotFound,
                format!(
                    "key {name} lives on node {} and may not be replicated here",
                    info.origin_node
                ),
            ));
        }
        if info.is_none() && link.peers()?.is_empty() {
            return Err(failure(
                FailureKind::NotFound,
                format!("no key named {name}"),
            ));
        }
        let key = self.fetch_replica(tenant, name, link)?;
        let digest = deploy::key_digest(&key.key);
        match &info {
            Some(info) if info.key_digest != digest => {
                return Err(failure(
                    FailureKind::Internal,
                    "the replica does not match the key's recorded digest",
                ));
            }
            Some(_) => {}
            None => {
                // A separate store: record the key's public facts here too.
                let info = KeyInfo {
                    release: key.release.as_str().into(),
                    created: now(),
                    origin_node: "peer".into(),
                    key_digest: digest,
                };
                link.put_if_absent(
                    &ns,
                    &info_key(name),
                    serde_json::to_vec(&info).map_err(internal)?,
                )?;
            }
        }
        let node = self.node(link)?;
        let copy = copy_key(name, &node.node_id);
        link.put(
            &ns,
            &copy,
            self.seal(&ns, &copy, encode_copy(&key).expose())?,
        )?;
        self.audit(
            link,
            "key.replicate",
            tenant,
            name,
            "ok: obtained from a peer enclave",
        )?;
        Ok(key)
    }

    /// The tenant's key names.
    pub(crate) fn key_names(
        &self,
        tenant: &str,
        link: &mut dyn HostLink,
    ) -> Result<Vec<String>, EnclaveFailure> {
        let keys = link.list(&tenant_ns(tenant), "keyinfo/", None, 10_000)?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix("keyinfo/").map(String::from))
            .collect())
    }
}
