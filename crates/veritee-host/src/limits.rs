//! Per-tenant request rates: one tenant flooding the node gets `429 Too Many Requests`
//! with `Retry-After`, and the others keep their share.
//!
//! A token bucket per tenant: it refills at the configured rate and holds at most two
//! seconds' worth, so a tenant may burst after a pause but not sustain more than the
//! rate. A request is charged to a tenant only once its signature has verified (or, for
//! a session message, to the session's owner), so nobody can spend another tenant's
//! budget with forged requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}
