//! Tenant requests, checked inside the enclave.
//!
//! The host checks each tenant's signature before it forwards a request, but the host
//! is untrusted: it could forward a request in a tenant's name that the tenant never
//! made, change a field of one it did make, or replay it. So the enclave checks again,
//! on its own terms:
//! - the signature is the tenant's, by the key registered *with the enclave* (a sealed
//!   record), over the method, the path and query, and the body's digest;
//! - the path is the one the call's fields rebuild (`veritee_proto::api::paths`), so
//!   no field can differ from what was signed;
//! - the request names this node and this enclave process's epoch (random per start),
//!   so it is no good at another node or after a restart;
//! - its time is within [`MAX_SKEW_SECS`] of the enclave's trusted time, and its nonce
//!   has not been seen in that window.

use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, lock};
use std::collections::HashMap;
use veritee_crypto::sign::{self, VerificationScheme};
use veritee_proto::api::auth::{self, MAX_SKEW_SECS, SignedHeader};
use veritee_proto::ipc::{EnclaveFailure, FailureKind, SignedRequest};

/// Nonces remembered at most; past it, new requests wait for old ones to age out.
pub const MAX_REMEMBERED_NONCES: usize = 1_000_000;
/// Nonces one tenant may hold of those: one busy tenant never locks the others out.
pub const MAX_NONCES_PER_TENANT: usize = MAX_REMEMBERED_NONCES / 2;

/// Nonces seen within the time window, with their request times.
#[derive(Default)]
pub(crate) struct ReplayGuard {
    seen: HashMap<(String, String), i64>,
    per_tenant: HashMap<String, usize>,
    oldest_kept: i64,
}

impl ReplayGuard {
    /// Records a nonce; false if it was seen already. Forgets nonces whose requests
    /// are too old to be accepted anyway.
    fn first_use(&mut self, tenant: &str, nonce: &str, ts: i64, now: i64) -> Result<bool, String> {
        let horizon = now.saturating_sub(2 * MAX_SKEW_SECS);
        if self.oldest_kept < horizon {
            self.seen.retain(|_, t| *t >= horizon);
            self.per_tenant.clear();
            for (tenant, _) in self.seen.keys() {
                *self.per_tenant.entry(tenant.clone()).or_default() += 1;
            }
            self.oldest_kept = horizon;
        }
        let window = 2 * MAX_SKEW_SECS;
        if self.per_tenant.get(tenant).copied().unwrap_or(0) >= MAX_NONCES_PER_TENANT {
            return Err(format!(
                "tenant {tenant} made {MAX_NONCES_PER_TENANT} requests in the last {window} seconds: try again shortly"
            ));
        }
        if self.seen.len() >= MAX_REMEMBERED_NONCES {
            return Err(format!(
                "{MAX_REMEMBERED_NONCES} requests in the last {window} seconds: try again shortly"
            ));
        }
        let first = self
            .seen
            .insert((tenant.to_string(), nonce.to_string()), ts)
            .is_none();
        if first {
            *self.per_tenant.entry(tenant.to_string()).or_default() += 1;
        }
        Ok(first)
    }
}

fn unauthorized(reason: impl Into<String>) -> EnclaveFailure {
    failure(FailureKind::Unauthorized, reason)
}

impl EnclaveService {
    /// Checks a tenant's request for `method` `path` with `body`; returns the tenant.
    pub(crate) fn authenticate(
        &self,
        request: &SignedRequest,
        method: &str,
        path: &str,
        body: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<String, EnclaveFailure> {
        let header = auth::parse_header(&request.authorization)
            .map_err(|e| unauthorized(format!("tenant signature: {e}")))?;
        let spki = self.tenant_key(link, &header.tenant_id)?;
        self.check_signed(request, &header, method, path, body, &spki)?;
        Ok(header.tenant_id)
    }

    /// As [`EnclaveService::authenticate`], with the key given (tenant registration,
    /// where the request proves possession of the key being registered).
    pub(crate) fn authenticate_with(
        &self,
        request: &SignedRequest,
        method: &str,
        path: &str,
        body: &[u8],
        tenant: &str,
        spki: &[u8],
    ) -> Result<(), EnclaveFailure> {
        let header = auth::parse_header(&request.authorization)
            .map_err(|e| unauthorized(format!("tenant proof of possession: {e}")))?;
        if header.tenant_id != tenant {
            return Err(unauthorized(
                "the proof of possession is signed for another tenant than the key registered",
            ));
        }
        self.check_signed(request, &header, method, path, body, spki)
    }

    fn check_signed(
        &self,
        request: &SignedRequest,
        header: &SignedHeader,
        method: &str,
        path: &str,
        body: &[u8],
        spki: &[u8],
    ) -> Result<(), EnclaveFailure> {
        if request.method != method || request.path != path {
            return Err(unauthorized(format!(
                "the request the tenant signed ({} {}) is not the one asked of the enclave ({method} {path})",
                request.method, request.path
            )));
        }
        let node = self.node_id()?;
        if header.audience.node != node {
            return Err(failure(
                FailureKind::StaleSignature,
                format!(
                    "the request is signed for node {}, this is node {node}",
                    header.audience.node
                ),
            ));
        }
        if header.audience.epoch != self.epoch()? {
            return Err(failure(
                FailureKind::StaleSignature,
                "the request is signed for an earlier run of this node's enclave (it restarted): fetch /v1/node and sign again",
            ));
        }
        let message = header.signing_string(method, path, &auth::body_payload(body));
        sign::verify(
            VerificationScheme::EcdsaP256Sha256Fixed,
            spki,
            &message,
            &header.signature,
        )
        .map_err(|_| {
            unauthorized(format!(
                "the tenant signature does not verify with tenant {}'s registered key: the request was altered or not made by the tenant",
                header.tenant_id
            ))
        })?;
        // After the signature: unauthenticated junk never fills the nonce table.
        let now = self.clock().now().unix_timestamp();
        // abs_diff: a signed time anywhere in i64's range is compared without overflow.
        if now.abs_diff(header.ts) > MAX_SKEW_SECS.unsigned_abs() {
            return Err(unauthorized(format!(
                "the request is dated {} s away from the enclave's time (at most {MAX_SKEW_SECS})",
                i128::from(header.ts) - i128::from(now)
            )));
        }
        let first = lock(&self.replays)
            .first_use(&header.tenant_id, &header.nonce, header.ts, now)
            .map_err(|e| failure(FailureKind::Unavailable, e))?;
        if !first {
            return Err(unauthorized(
                "this request was seen before (replayed): every request carries a fresh nonce",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_good_once_and_forgotten_when_too_old_to_matter() {
        let mut guard = ReplayGuard::default();
        assert_eq!(guard.first_use("t", "n", 1000, 1000), Ok(true));
        assert_eq!(guard.first_use("t", "n", 1000, 1001), Ok(false));
        // Another tenant's identical nonce is its own.
        assert_eq!(guard.first_use("u", "n", 1000, 1001), Ok(true));
        // Long after, the entry is gone (a request that old is refused by its time).
        assert_eq!(guard.first_use("v", "m", 5000, 5000), Ok(true));
        assert!(!guard.seen.contains_key(&("t".to_string(), "n".to_string())));
        assert_eq!(guard.per_tenant.get("t"), None);
    }

    #[test]
    fn one_busy_tenant_cannot_fill_the_table_for_the_others() {
        let mut guard = ReplayGuard::default();
        for i in 0..MAX_NONCES_PER_TENANT {
            assert_eq!(
                guard.first_use("busy", &i.to_string(), 1000, 1000),
                Ok(true)
            );
        }
        let err = guard
            .first_use("busy", "one more", 1000, 1000)
            .expect_err("over its share");
        assert!(err.contains("tenant busy"), "{err}");
        assert_eq!(guard.first_use("quiet", "n", 1000, 1000), Ok(true));
        // Its share comes back as its requests age out.
        assert_eq!(guard.first_use("busy", "later", 5000, 5000), Ok(true));
    }
}
