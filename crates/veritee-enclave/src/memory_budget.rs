//! The memory the enclave lets its workloads hold in all, whoever asks.
//!
//! Per-tenant limits keep one tenant from crowding out another, but several tenants
//! within their limits can still ask for more than the enclave has: an enclave's
//! memory is fixed at launch (the EPC, the guest's memory), and running out of it
//! stops every tenant at once. So each workload reserves what it may come to hold
//! before it starts, and is refused, with the numbers, when the reservations would
//! pass the budget:
//!
//! - an application, its memory limit when it starts (or arrives by a fork), and as
//!   much again when its first snapshot is taken (the snapshot's shadow copy);
//! - a trusted task, its memory limit while it runs.
//!
//! Reservations are released when the workload ends (they are dropped with it). They
//! count limits, not pages in use: what the budget promises is that every workload it
//! admitted can grow to its limit.

use crate::host::failure;
use std::sync::{Arc, Mutex};
use veritee_proto::ipc::{EnclaveFailure, FailureKind};

/// The budget when the node sets none: no limit but the per-tenant ones.
pub const UNLIMITED: u64 = u64::MAX;

/// Memory reserved by the workloads running, against a limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    held: Mutex<u64>,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: Mutex::new(0),
        })
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes reserved now.
    pub fn held(&self) -> u64 {
        *self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `bytes` for `what` (named in the refusal), until the reservation drops.
    pub(crate) fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        what: &str,
    ) -> Result<Reservation, EnclaveFailure> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                *held = total;
                Ok(Reservation {
                    budget: Arc::clone(self),
                    bytes,
                })
            }
            _ => Err(failure(
                FailureKind::TooMany,
                format!(
                    "the node's memory budget is full: {what} asks {} MiB, {} MiB of {} MiB are reserved (applications reserve their memory limit, and as much again once snapshotted; running tasks theirs)",
                    bytes >> 20,
                    *held >> 20,
                    self.limit >> 20
                ),
            )),
        }
    }
}

/// Memory reserved in a [`MemoryBudget`], given back on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Reservation {
    /// Bytes reserved.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Another reservation of `bytes` in the same budget.
    pub(crate) fn another(&self, bytes: u64, what: &str) -> Result<Reservation, EnclaveFailure> {
        self.budget.reserve(bytes, what)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = self.budget.held.lock().unwrap_or_else(|e| e.into_inner());
        *held = held.saturating_sub(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_limit_and_come_back_when_dropped() {
        let budget = MemoryBudget::new(100 << 20);
        let a = budget.reserve(60 << 20, "application a").unwrap();
        let refused = budget.reserve(50 << 20, "application b").unwrap_err();
        assert_eq!(refused.kind, FailureKind::TooMany);
        assert!(
            refused
                .message
                .contains("application b asks 50 MiB, 60 MiB of 100 MiB are reserved"),
            "{}",
            refused.message
        );
        let b = a.another(40 << 20, "the snapshot of a").unwrap();
        assert_eq!(budget.held(), 100 << 20);
        drop(a);
        assert_eq!(budget.held(), 40 << 20);
        drop(b);
        assert_eq!(budget.held(), 0);
        // An ask that would overflow the count is refused, not wrapped.
        assert!(budget.reserve(u64::MAX, "too much").is_err());
        assert_eq!(budget.held(), 0);
    }
}
