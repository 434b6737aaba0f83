//! Tenants: their public keys, registered inside the enclave and kept as sealed
//! records, against which every tenant request is checked.

use crate::host::{HostLink, HostLinkExt, failure};
use crate::service::{EnclaveService, bad, lock};
use veritee_channel::client::tenant_id;
use veritee_crypto::sign::VerificationScheme;
use veritee_proto::api::{RegisterTenantRequest, paths};
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind, SignedRequest};

const TENANTS_NS: &str = "tenants";
/// Largest public key accepted.
const MAX_SPKI_LEN: usize = 512;

impl EnclaveService {
    /// Registers a tenant's key. The host (the node's admin) asks, but the request must
    /// also carry the tenant's signature made with that very key: nobody registers a
    /// key they do not hold, and nothing is recorded in a tenant's name without it.
    pub(crate) fn register_tenant(
        &self,
        request: &SignedRequest,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let parsed: RegisterTenantRequest = serde_json::from_slice(body)
            .map_err(|e| bad(format!("invalid tenant registration: {e}")))?;
        use base64::Engine;
        let spki = base64::engine::general_purpose::STANDARD
            .decode(parsed.public_key.trim())
            .map_err(|_| bad("public_key must be base64"))?;
        if spki.len() > MAX_SPKI_LEN
            || veritee_crypto::sign::check_public_key(
                VerificationScheme::EcdsaP256Sha256Fixed,
                &spki,
            )
            .is_err()
        {
            return Err(bad(
                "the tenant key must be an ECDSA P-256 public key (SPKI DER)",
            ));
        }
        let id = tenant_id(&spki);
        self.authenticate_with(request, "POST", &paths::tenants(), body, &id, &spki)?;
        let created = self.record_put_if_absent(link, TENANTS_NS, &id, &spki)?;
        if !created {
            // Same key, same id: registering again is harmless and answers the same.
            let existing = self.tenant_key(link, &id)?;
            if existing != spki {
                return Err(failure(
                    FailureKind::Conflict,
                    "a different key is registered under this tenant id",
                ));
            }
        }
        lock(&self.tenants).insert(id.clone(), spki);
        self.audit(
            link,
            "tenant.register",
            &id,
            &id,
            if created {
                "ok"
            } else {
                "ok: already registered"
            },
        )?;
        Ok(EnclaveReply::TenantRegistered { tenant_id: id })
    }

    /// A tenant's public key: this node's record, or one fetched from a peer enclave.
    pub(crate) fn tenant_key(
        &self,
        link: &mut dyn HostLink,
        id: &str,
    ) -> Result<Vec<u8>, EnclaveFailure> {
        if let Some(spki) = self.own_tenant_copy(id, link)? {
            return Ok(spki);
        }
        if link.peers()?.is_empty() {
            return Err(failure(
                FailureKind::NotFound,
                format!("unknown tenant {id}"),
            ));
        }
        let spki = self.fetch_tenant_from_peers(id, link)?;
        // The id is the key's digest: a peer cannot substitute another key for it.
        if tenant_id(&spki) != id {
            return Err(failure(
                FailureKind::Unauthorized,
                "a peer answered with a key that is not this tenant's",
            ));
        }
        self.record_put_if_absent(link, TENANTS_NS, id, &spki)?;
        lock(&self.tenants).insert(id.to_string(), spki.clone());
        Ok(spki)
    }

    /// This node's own record of a tenant, without asking peers.
    pub(crate) fn own_tenant_copy(
        &self,
        id: &str,
        link: &mut dyn HostLink,
    ) -> Result<Option<Vec<u8>>, EnclaveFailure> {
        if let Some(k) = lock(&self.tenants).get(id) {
            return Ok(Some(k.clone()));
        }
        let Some(spki) = self.record_get(link, TENANTS_NS, id)? else {
            return Ok(None);
        };
        let spki = spki.expose().clone();
        if tenant_id(&spki) != id {
            return Err(failure(
                FailureKind::Internal,
                "a stored tenant record does not match its id",
            ));
        }
        lock(&self.tenants).insert(id.to_string(), spki.clone());
        Ok(Some(spki))
    }
}
