//! Bounded memories keyed by a SHA-256 digest of the bytes a result was derived from.
//!
//! Verifying evidence spends most of its time on collateral that does not change from
//! one verification to the next: the vendor's certificate chains, CRLs and signed TCB
//! documents. Whether a signature verifies is a fact of its inputs alone (scheme, key,
//! message, signature): it does not depend on the time, on revocation or on policy.
//! So those verdicts, and the parsed forms of collateral bytes, can be remembered by
//! the digest of what they were computed from, while everything that does depend on
//! time (validity windows, CRL freshness, revocation, TCB grading) is still decided at
//! every verification, at its explicit time. Nothing here ever holds a secret.

use crate::digest::Sha256;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// The SHA-256 digest a memory is keyed by.
pub type Digest = [u8; 32];

/// A map from digests to values that keeps at most `capacity` entries, forgetting the
/// oldest first. Safe to share between threads.
#[derive(Debug)]
pub struct Recent<V> {
    capacity: usize,
    entries: Mutex<Entries<V>>,
}

#[derive(Debug)]
struct Entries<V> {
    values: HashMap<Digest, V>,
    order: VecDeque<Digest>,
}

impl<V: Clone> Recent<V> {
    /// An empty memory of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(Entries {
                values: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        // A panic while holding the lock leaves the map consistent (each operation
        // completes before it returns), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value remembered for `key`, if any.
    pub fn get(&self, key: &Digest) -> Option<V> {
        self.lock().values.get(key).cloned()
    }

    /// Remembers `value` for `key`, forgetting the oldest entries beyond the capacity.
    pub fn insert(&self, key: Digest, value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.values.insert(key, value).is_none() {
            entries.order.push_back(key);
        }
        while entries.order.len() > self.capacity {
            if let Some(oldest) = entries.order.pop_front() {
                entries.values.remove(&oldest);
            }
        }
    }

    /// The value for `key`, computed by `derive` and remembered when not yet known.
    /// Errors are not remembered: the next call derives again.
    pub fn get_or_try_insert<E>(
        &self,
        key: Digest,
        derive: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        // Derived outside the lock: two threads may both derive the same value once,
        // which costs a little work and keeps a slow derivation from blocking others.
        let value = derive()?;
        self.insert(key, value.clone());
        Ok(value)
    }

    /// How many entries are remembered.
    pub fn len(&self) -> usize {
        self.lock().values.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut entries = self.lock();
        entries.values.clear();
        entries.order.clear();
    }
}

/// The digest of `parts` under a `domain` label, each part length-prefixed so that no
/// two different part lists share a digest.
pub fn digest_of(domain: &str, parts: &[&[u8]]) -> Digest {
    let mut hasher = Sha256::default();
    hasher.update(&(domain.len() as u64).to_be_bytes());
    hasher.update(domain.as_bytes());
    for part in parts {
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_are_forgotten_first() {
        let memo = Recent::new(2);
        memo.insert([1; 32], "one");
        memo.insert([2; 32], "two");
        memo.insert([1; 32], "one again");
        assert_eq!(memo.get(&[1; 32]), Some("one again"));
        memo.insert([3; 32], "three");
        assert_eq!(memo.len(), 2);
        assert_eq!(memo.get(&[1; 32]), None);
        assert_eq!(memo.get(&[2; 32]), Some("two"));
        assert_eq!(memo.get(&[3; 32]), Some("three"));
        memo.clear();
        assert!(memo.is_empty());
    }

    #[test]
    fn errors_are_not_remembered() {
        let memo: Recent<u32> = Recent::new(4);
        let failed: Result<u32, &str> = memo.get_or_try_insert([7; 32], || Err("bad bytes"));
        assert_eq!(failed, Err("bad bytes"));
        assert!(memo.is_empty());
        let derived: Result<u32, &str> = memo.get_or_try_insert([7; 32], || Ok(5));
        assert_eq!(derived, Ok(5));
        let remembered: Result<u32, &str> =
            memo.get_or_try_insert([7; 32], || Err("not called again"));
        assert_eq!(remembered, Ok(5));
    }

    #[test]
    fn a_zero_capacity_memory_remembers_nothing() {
        let memo = Recent::new(0);
        memo.insert([1; 32], 1);
        assert_eq!(memo.get(&[1; 32]), None);
    }

    #[test]
    fn part_boundaries_change_the_digest() {
        assert_ne!(
            digest_of("d", &[b"ab", b"c"]),
            digest_of("d", &[b"a", b"bc"])
        );
        assert_ne!(digest_of("d", &[b"abc"]), digest_of("e", &[b"abc"]));
        assert_eq!(digest_of("d", &[b"abc"]), digest_of("d", &[b"abc"]));
    }
}
