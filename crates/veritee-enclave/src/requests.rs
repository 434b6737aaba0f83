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
///
/// Each (tenant, nonce) is kept as a 64-bit digest under a key random per enclave
/// start, beside its request time and its tenant's slot: 16 bytes an entry, where two
/// strings took about 250. A tenant cannot aim a nonce at another's (it does not know
/// the key), and two random nonces collide with odds of about 2^-64 per pair. The table
/// is sized for [`MAX_REMEMBERED_NONCES`] when the first nonce arrives (about 34 MiB),
/// so the enclave's memory does not grow with the traffic of the last ten minutes.
pub(crate) struct ReplayGuard {
    /// Digest -> request time (low 32 bits, seconds) and tenant slot (high 32 bits).
    seen: HashMap<u64, u64>,
    key: std::hash::RandomState,
    /// Tenants with nonces in the window: slot by name, and per slot the name and
    /// how many nonces it holds (a slot is freed when that reaches 0).
    slots: HashMap<String, u32>,
    tenants: Vec<(String, usize)>,
    free: Vec<u32>,
    oldest_kept: i64,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self {
            seen: HashMap::new(),
            key: std::hash::RandomState::new(),
            slots: HashMap::new(),
            tenants: Vec::new(),
            free: Vec::new(),
            oldest_kept: 0,
        }
    }
}

impl ReplayGuard {
    fn digest(&self, tenant: &str, nonce: &str) -> u64 {
        use std::hash::BuildHasher;
        self.key.hash_one((tenant, nonce))
    }

    /// How many nonces `tenant` holds in the window.
    fn share(&self, tenant: &str) -> usize {
        self.slots
            .get(tenant)
            .and_then(|&slot| self.tenants.get(slot as usize))
            .map_or(0, |(_, count)| *count)
    }

    /// Forgets the nonces of requests older than `horizon`, and frees the slots of
    /// tenants left with none.
    fn forget_before(&mut self, horizon: i64) {
        let tenants = &mut self.tenants;
        self.seen.retain(|_, entry| {
            let keep = i64::from(*entry as u32) >= horizon;
            if !keep && let Some((_, count)) = tenants.get_mut((*entry >> 32) as usize) {
                *count = count.saturating_sub(1);
            }
            keep
        });
        for (slot, (name, count)) in self.tenants.iter_mut().enumerate() {
            if *count == 0 && !name.is_empty() {
                self.slots.remove(name.as_str());
                name.clear();
                self.free.push(slot as u32);
            }
        }
    }

    fn slot(&mut self, tenant: &str) -> u32 {
        if let Some(&slot) = self.slots.get(tenant) {
            return slot;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.tenants[slot as usize].0 = tenant.to_string();
                slot
            }
            None => {
                self.tenants.push((tenant.to_string(), 0));
                (self.tenants.len() - 1) as u32
            }
        };
        self.slots.insert(tenant.to_string(), slot);
        slot
    }

    /// Records a nonce; false if it was seen already. Forgets nonces whose requests
    /// are too old to be accepted anyway.
    fn first_use(&mut self, tenant: &str, nonce: &str, ts: i64, now: i64) -> Result<bool, String> {
        let horizon = now.saturating_sub(2 * MAX_SKEW_SECS);
        if self.oldest_kept < horizon {
            self.forget_before(horizon);
            self.oldest_kept = horizon;
        }
        let window = 2 * MAX_SKEW_SECS;
        if self.share(tenant) >= MAX_NONCES_PER_TENANT {
            return Err(format!(
                "tenant {tenant} made {MAX_NONCES_PER_TENANT} requests in the last {window} seconds: try again shortly"
            ));
        }
        if self.seen.len() >= MAX_REMEMBERED_NONCES {
            return Err(format!(
                "{MAX_REMEMBERED_NONCES} requests in the last {window} seconds: try again shortly"
            ));
        }
        // Request times are within the skew of the enclave's clock, so they fit in 32
        // bits until 2106; one that does not is refused rather than wrapped.
        let time = u32::try_from(ts)
            .map_err(|_| format!("request time {ts} is outside what this enclave can record"))?;
        if self.seen.capacity() < MAX_REMEMBERED_NONCES {
            self.seen.reserve(MAX_REMEMBERED_NONCES - self.seen.len());
        }
        let digest = self.digest(tenant, nonce);
        if self.seen.contains_key(&digest) {
            return Ok(false);
        }
        let slot = self.slot(tenant);
        self.seen
            .insert(digest, u64::from(slot) << 32 | u64::from(time));
        if let Some((_, count)) = self.tenants.get_mut(slot as usize) {
            *count += 1;
        }
        Ok(true)
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
        assert!(!guard.seen.contains_key(&guard.digest("t", "n")));
        assert_eq!(guard.share("t"), 0);
        assert_eq!(guard.seen.len(), 1);
        // The slots of tenants with no nonce left were freed, and are used again.
        assert!(!guard.slots.contains_key("t") && !guard.slots.contains_key("u"));
        assert_eq!(guard.first_use("w", "m", 5000, 5000), Ok(true));
        assert!(guard.tenants.len() <= 3, "{} slots", guard.tenants.len());
        // A time that does not fit is refused, not wrapped.
        assert!(guard.first_use("w", "x", -1, 5000).is_err());
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
