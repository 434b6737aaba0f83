//! Bounded LRU cache of compiled modules, keyed by the SHA-256 of a cache scope (whose
//! modules they are: a tenant, in a node) and the module bytes.
//!
//! A handful of entries is the expected working set (the same task code runs again
//! and again), so eviction scans the entries for the least recently used one rather
//! than keeping a linked list.

use std::collections::HashMap;

use wasmtime::Module;

/// Cache counters, for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Modules currently cached.
    pub entries: usize,
    /// Lookups that found a compiled module.
    pub hits: u64,
    /// Lookups that had to compile.
    pub misses: u64,
}

pub(crate) struct ModuleCache {
    capacity: usize,
    clock: u64,
    entries: HashMap<[u8; 32], (Module, u64)>,
    hits: u64,
    misses: u64,
}

impl ModuleCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ModuleCache {
            capacity,
            clock: 0,
            entries: HashMap::new(),
            hits: 0,
            misses: 0,
        }
    }

    pub(crate) fn get(&mut self, key: &[u8; 32]) -> Option<Module> {
        self.clock += 1;
        let clock = self.clock;
        match self.entries.get_mut(key) {
            Some((module, used)) => {
                *used = clock;
                self.hits += 1;
                Some(module.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    pub(crate) fn insert(&mut self, key: [u8; 32], module: Module) {
        if self.capacity == 0 {
            return;
        }
        self.clock += 1;
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (module, self.clock));
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.entries.len(),
            hits: self.hits,
            misses: self.misses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let engine = wasmtime::Engine::default();
        let m = Module::new(&engine, "(module)").unwrap();
        let mut c = ModuleCache::new(2);
        c.insert([1; 32], m.clone());
        c.insert([2; 32], m.clone());
        assert!(c.get(&[1; 32]).is_some()); // 2 is now the oldest
        c.insert([3; 32], m.clone());
        assert!(c.get(&[2; 32]).is_none());
        assert!(c.get(&[1; 32]).is_some());
        assert!(c.get(&[3; 32]).is_some());
        let s = c.stats();
        assert_eq!((s.entries, s.hits, s.misses), (2, 3, 1));
    }
}
