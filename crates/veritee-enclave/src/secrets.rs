//! Named secrets a tenant stores, uses and releases over its attested session, each a
//! sealed record of the tenant's namespace.

use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, tenant_ns};
use veritee_channel::ops::{Response, check_name};
use veritee_crypto::SecretBytes;
use veritee_proto::ipc::{EnclaveFailure, FailureKind};

/// Largest secret a tenant may store.
pub const MAX_SECRET_LEN: usize = 1024 * 1024;

fn secret_key(name: &str) -> String {
    format!("secret/{name}")
}

impl EnclaveService {
    pub(crate) fn checked_name(name: &str) -> Result<(), EnclaveFailure> {
        check_name(name).map_err(bad)
    }

    pub(crate) fn put_secret(
        &self,
        tenant: &str,
        name: &str,
        value: &SecretBytes,
        link: &mut dyn HostLink,
    ) -> Result<Response, EnclaveFailure> {
        Self::checked_name(name)?;
        if value.is_empty() || value.len() > MAX_SECRET_LEN {
            return Err(bad(format!(
                "a secret is 1 to {MAX_SECRET_LEN} bytes, got {}",
                value.len()
            )));
        }
        self.record_put(link, &tenant_ns(tenant), &secret_key(name), value.expose())?;
        self.audit(link, "secret.put", tenant, name, "ok")?;
        Ok(Response::Stored)
    }

    /// A secret, audited under `action` before it is used or released: no unaudited
    /// release or use.
    fn with_secret(
        &self,
        tenant: &str,
        name: &str,
        action: &str,
        link: &mut dyn HostLink,
    ) -> Result<SecretBytes, EnclaveFailure> {
        Self::checked_name(name)?;
        let Some(value) = self.record_get(link, &tenant_ns(tenant), &secret_key(name))? else {
            self.audit(link, action, tenant, name, "refused: not found")?;
            return Err(failure(
                FailureKind::NotFound,
                format!("no secret named {name}"),
            ));
        };
        self.audit(link, action, tenant, name, "ok")?;
        Ok(value)
    }

    pub(crate) fn release_secret(
        &self,
        tenant: &str,
        name: &str,
        link: &mut dyn HostLink,
    ) -> Result<Response, EnclaveFailure> {
        self.with_secret(tenant, name, "secret.release", link)
            .map(Response::Secret)
    }

    pub(crate) fn hmac_with_secret(
        &self,
        tenant: &str,
        name: &str,
        data: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<Response, EnclaveFailure> {
        let key = self.with_secret(tenant, name, "secret.use", link)?;
        Ok(Response::Mac(
            veritee_crypto::mac::hmac_sha256(key.expose(), data).to_vec(),
        ))
    }

    pub(crate) fn list_secrets(
        &self,
        tenant: &str,
        link: &mut dyn HostLink,
    ) -> Result<Response, EnclaveFailure> {
        let names = self
            .record_keys(link, &tenant_ns(tenant), "secret/")?
            .into_iter()
            .filter_map(|k| k.strip_prefix("secret/").map(str::to_string))
            .collect();
        self.audit(link, "secret.list", tenant, "*", "ok")?;
        Ok(Response::Names(names))
    }

    pub(crate) fn delete_secret(
        &self,
        tenant: &str,
        name: &str,
        link: &mut dyn HostLink,
    ) -> Result<Response, EnclaveFailure> {
        Self::checked_name(name)?;
        let deleted = self.record_delete(link, &tenant_ns(tenant), &secret_key(name))?;
        self.audit(
            link,
            "secret.delete",
            tenant,
            name,
            if deleted { "ok" } else { "not found" },
        )?;
        Ok(Response::Deleted(deleted))
    }
}
