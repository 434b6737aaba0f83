//! Per-tenant limits: one tenant flooding the node gets `429 Too Many Requests` with
//! `Retry-After`, and the others keep their share.
//!
//! Request rates:
//! A token bucket per tenant: it refills at the configured rate and holds at most two
//! seconds' worth, so a tenant may burst after a pause but not sustain more than the
//! rate. A request is charged to a tenant only once its signature has verified (or, for
//! a session message, to the session's owner), so nobody can spend another tenant's
//! budget with forged requests.
//!
//! Task uploads ([`SpoolQuota`]): how many pieces a tenant may be sending at once, and
//! how many bytes its uploads may hold in the spool, counting those on disk and those
//! on their way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default bytes a tenant's task uploads may hold in a node's spool at once (8 GiB).
pub const DEFAULT_TENANT_SPOOL_BYTES: u64 = 8 << 30;
/// Default task file pieces a tenant may be uploading at once.
pub const DEFAULT_TENANT_UPLOADS: u32 = 8;

/// Default requests per second per tenant for `veritee node`.
pub const DEFAULT_TENANT_REQUESTS_PER_SECOND: u32 = 1000;
/// Seconds of requests a bucket holds.
const BURST_SECONDS: f64 = 2.0;
/// Buckets kept before full ones are forgotten (a full bucket is the same as none).
const MAX_BUCKETS: usize = 100_000;

/// The request budgets of all tenants.
#[derive(Debug)]
pub struct TenantRates {
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl TenantRates {
    /// `per_second` requests per tenant, sustained.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn capacity(&self) -> f64 {
        self.per_second * BURST_SECONDS
    }

    /// Charges one request to `tenant`; if its budget is spent, how long until it may
    /// try again.
    pub fn charge(&self, tenant: &str) -> Result<(), Duration> {
        self.charge_at(tenant, Instant::now())
    }

    fn charge_at(&self, tenant: &str, now: Instant) -> Result<(), Duration> {
        let capacity = self.capacity();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(tenant) {
            let per_second = self.per_second;
            buckets.retain(|_, b| refilled(b, now, per_second, capacity) < capacity);
        }
        let bucket = buckets.entry(tenant.to_string()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = refilled(bucket, now, self.per_second, capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

/// The spool each tenant may fill, and the uploads it may run at once.
#[derive(Debug)]
pub struct SpoolQuota {
    max_bytes: u64,
    max_uploads: u32,
    in_flight: Mutex<HashMap<String, InFlight>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct InFlight {
    uploads: u32,
    bytes: u64,
}

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolRefusal {
    /// The tenant is already sending as many pieces as it may.
    #[error("this tenant already has {limit} uploads in progress on this node (its limit)")]
    Uploads {
        /// The limit.
        limit: u32,
    },
    /// The piece would take the tenant's spool past its size.
    #[error(
        "this tenant's task uploads hold {held} bytes on this node; {asked} more would pass its {limit}-byte limit (run or cancel a task to make room)"
    )]
    Bytes {
        /// The limit.
        limit: u64,
        /// What the tenant's uploads hold, on disk and on their way.
        held: u64,
        /// What the piece asked for.
        asked: u64,
    },
}

/// One upload's place in its tenant's quota; given back when dropped.
#[derive(Debug)]
pub struct UploadPermit {
    quota: Arc<SpoolQuota>,
    tenant: String,
    bytes: u64,
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        let mut in_flight = self.quota.lock();
        if let Some(entry) = in_flight.get_mut(&self.tenant) {
            entry.uploads = entry.uploads.saturating_sub(1);
            entry.bytes = entry.bytes.saturating_sub(self.bytes);
            if entry.uploads == 0 {
                in_flight.remove(&self.tenant);
            }
        }
    }
}

impl SpoolQuota {
    /// At most `max_bytes` spooled and `max_uploads` pieces in progress per tenant.
    pub fn new(max_bytes: u64, max_uploads: u32) -> Self {
        Self {
            max_bytes,
            max_uploads: max_uploads.max(1),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, InFlight>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves one piece of `declared` bytes for `tenant`, whose spool holds `stored`
    /// bytes on disk. A piece still being written counts in both while it lasts: the
    /// quota errs on the side of the other tenants.
    pub fn reserve(
        self: &Arc<Self>,
        tenant: &str,
        stored: u64,
        declared: u64,
    ) -> Result<UploadPermit, SpoolRefusal> {
        let mut in_flight = self.lock();
        let entry = in_flight.get(tenant).copied().unwrap_or_default();
        if entry.uploads >= self.max_uploads {
            return Err(SpoolRefusal::Uploads {
                limit: self.max_uploads,
            });
        }
        let held = stored.saturating_add(entry.bytes);
        if held.saturating_add(declared) > self.max_bytes {
            return Err(SpoolRefusal::Bytes {
                limit: self.max_bytes,
                held,
                asked: declared,
            });
        }
        in_flight.insert(
            tenant.to_string(),
            InFlight {
                uploads: entry.uploads + 1,
                bytes: entry.bytes + declared,
            },
        );
        Ok(UploadPermit {
            quota: Arc::clone(self),
            tenant: tenant.to_string(),
            bytes: declared,
        })
    }
}

/// Bytes of the files under `dir` (0 if it does not exist); links are not followed.
pub fn bytes_under(dir: &std::path::Path) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut total = 0u64;
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total = total.saturating_add(bytes_under(&entry.path())?);
        } else if kind.is_file() {
            total = total.saturating_add(entry.metadata()?.len());
        }
    }
    Ok(total)
}

fn refilled(bucket: &Bucket, now: Instant, per_second: f64, capacity: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_past_its_rate_waits_and_the_others_do_not() {
        let rates = TenantRates::new(10);
        let t0 = Instant::now();
        // Two seconds' worth at once, then refused, saying for how long.
        for i in 0..20 {
            assert!(rates.charge_at("flood", t0).is_ok(), "request {i}");
        }
        let wait = rates.charge_at("flood", t0).expect_err("over the rate");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another tenant is untouched.
        assert!(rates.charge_at("quiet", t0).is_ok());
        // After the wait, one more request; the rate, not the burst, is sustained.
        assert!(rates.charge_at("flood", t0 + wait).is_ok());
        assert!(rates.charge_at("flood", t0 + wait).is_err());
        let later = t0 + Duration::from_secs(10);
        for _ in 0..20 {
            assert!(rates.charge_at("flood", later).is_ok());
        }
        assert!(
            rates.charge_at("flood", later).is_err(),
            "the bucket holds 2 s"
        );
    }

    #[test]
    fn a_tenants_uploads_and_spool_are_bounded_and_the_others_are_not() {
        let quota = Arc::new(SpoolQuota::new(1000, 2));
        let first = quota.reserve("busy", 0, 400).expect("first");
        let second = quota.reserve("busy", 0, 400).expect("second");
        assert_eq!(
            quota.reserve("busy", 0, 1).expect_err("a third at once"),
            SpoolRefusal::Uploads { limit: 2 }
        );
        // Another tenant has its own.
        let theirs = quota.reserve("quiet", 900, 100).expect("quiet");
        drop(first);
        // What is on disk counts with what is on its way.
        assert_eq!(
            quota.reserve("busy", 500, 101).expect_err("past the bytes"),
            SpoolRefusal::Bytes {
                limit: 1000,
                held: 900,
                asked: 101
            }
        );
        let third = quota
            .reserve("busy", 500, 100)
            .expect("exactly at the limit");
        drop((second, third, theirs));
        assert!(quota.lock().is_empty(), "every permit given back");
        assert!(quota.reserve("busy", 0, 1000).is_ok());
        assert!(
            quota.reserve("busy", 1001, 0).is_err(),
            "over on disk alone"
        );
    }

    #[test]
    fn spool_bytes_are_counted_through_subdirectories() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(bytes_under(&dir.path().join("none")).expect("missing"), 0);
        let task = dir.path().join("task/c");
        std::fs::create_dir_all(&task).expect("dirs");
        std::fs::write(task.join("module"), [0u8; 300]).expect("write");
        std::fs::write(task.join("input-0"), [0u8; 12]).expect("write");
        std::fs::write(dir.path().join("loose"), [0u8; 5]).expect("write");
        assert_eq!(bytes_under(dir.path()).expect("sum"), 317);
    }
}
