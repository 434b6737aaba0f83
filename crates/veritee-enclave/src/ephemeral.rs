//! Ephemeral enclaves: a node whose state lasts as long as its enclave process.
//!
//! A fork's child started by its parent's host on the same machine
//! (`veritee node --local-children`) runs the parent's code on the parent's TEE, so it
//! would have the parent's sealing keys and monotonic counters: the two would seal
//! alike and fight over one counter. An ephemeral enclave instead seals under a root
//! drawn at random when the process starts and kept only in its memory, and counts in
//! memory. So it has an identity of its own (its node id and keys derive from that
//! root), reads nothing any other process sealed, the parent's included, and nothing it
//! stores outlives it: after a restart it starts afresh, whatever the host kept. There
//! is nothing to roll back, so the counter need not survive either.
//!
//! What it attests to is the code it runs (evidence comes from the TEE as before); that
//! it is ephemeral is the host's choice, like where it runs, and costs the host nothing
//! it could not already do (delete a store).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use veritee_attest::{ReportData, TeeKind};
use veritee_crypto::Confidential;
use veritee_crypto::aead::AeadKey;
use veritee_platform::{EnclaveIdentity, MonotonicCounter, Platform, PlatformError, SealPolicy};

const KEY_SALT: &[u8] = b"veritee ephemeral enclave sealing v1";

/// A platform sealing under a per-process random root and counting in memory, for
/// everything else as `inner` is.
pub struct EphemeralPlatform {
    inner: Box<dyn Platform>,
    root: Confidential<[u8; 32]>,
    counters: Mutex<HashMap<(u8, String), Arc<AtomicU64>>>,
}

impl EphemeralPlatform {
    /// `inner`, with a fresh random sealing root.
    pub fn new(inner: Box<dyn Platform>) -> Result<Self, PlatformError> {
        let root = veritee_crypto::rand::secret_array::<32>()
            .map_err(|e| PlatformError::Unsupported(format!("no randomness for a root: {e}")))?;
        Ok(Self {
            inner,
            root,
            counters: Mutex::new(HashMap::new()),
        })
    }
}

/// A counter in the enclave's memory.
struct MemoryCounter(Arc<AtomicU64>);

impl MonotonicCounter for MemoryCounter {
    fn read(&self) -> Result<u64, PlatformError> {
        Ok(self.0.load(Ordering::SeqCst))
    }

    fn advance_to(&self, value: u64) -> Result<u64, PlatformError> {
        let now = self.0.fetch_max(value, Ordering::SeqCst);
        if value < now {
            return Err(PlatformError::InvalidInput(format!(
                "the counter is at {now}; it never goes back to {value}"
            )));
        }
        Ok(value)
    }
}

impl Platform for EphemeralPlatform {
    fn tee(&self) -> TeeKind {
        self.inner.tee()
    }

    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError> {
        self.inner.evidence(report_data)
    }

    fn sealing_key_at(
        &self,
        policy: SealPolicy,
        security_version: u16,
        label: &[u8],
    ) -> Result<AeadKey, PlatformError> {
        veritee_platform::check_security_version(self.identity(), security_version)?;
        let mut versioned = security_version.to_be_bytes().to_vec();
        versioned.extend_from_slice(label);
        veritee_platform::hw::sealing_key_from(KEY_SALT, self.root.expose(), policy, &versioned)
    }

    fn identity(&self) -> &EnclaveIdentity {
        self.inner.identity()
    }

    fn monotonic_counter(
        &self,
        policy: SealPolicy,
        name: &str,
    ) -> Result<Box<dyn MonotonicCounter>, PlatformError> {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let counter = counters
            .entry((policy.code(), name.to_string()))
            .or_default();
        Ok(Box::new(MemoryCounter(Arc::clone(counter))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_platform::sim::{EnclaveImage, SimMachine, SimVendor};

    fn launched(dir: &std::path::Path) -> Box<dyn Platform> {
        let machine = SimMachine::open(dir).unwrap();
        let image = EnclaveImage::unsigned(b"code", 1, 1, false);
        Box::new(machine.launch(&image).unwrap())
    }

    #[test]
    fn each_process_seals_and_counts_alone() {
        let dir = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let mut vendor = SimVendor::init(&dir.path().join("vendor"), now).unwrap();
        let m = dir.path().join("m");
        SimMachine::init(&m, &mut vendor, None, now).unwrap();
        let plain = launched(&m);
        let a = EphemeralPlatform::new(launched(&m)).unwrap();
        let b = EphemeralPlatform::new(launched(&m)).unwrap();
        let key = |p: &dyn Platform| {
            p.sealing_key(SealPolicy::Measurement, b"label")
                .unwrap()
                .seal(&[0; 12], b"", b"x")
                .unwrap()
        };
        // Same code, same machine: three sealing identities.
        assert_ne!(key(&a), key(&b));
        assert_ne!(key(&a), key(plain.as_ref()));
        assert_eq!(a.identity().measurement, plain.identity().measurement);
        // Counters: in memory, per name, never back.
        let c = a.monotonic_counter(SealPolicy::Measurement, "n").unwrap();
        assert_eq!(c.advance_to(5).unwrap(), 5);
        assert!(c.advance_to(4).is_err());
        let again = a.monotonic_counter(SealPolicy::Measurement, "n").unwrap();
        assert_eq!(again.read().unwrap(), 5);
        let other = b.monotonic_counter(SealPolicy::Measurement, "n").unwrap();
        assert_eq!(other.read().unwrap(), 0);
    }
}
