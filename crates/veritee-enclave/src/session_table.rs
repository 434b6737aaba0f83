//! The table of pending offers and open sessions, bounded per kind.
//!
//! When a kind is full, the tenant holding the most sessions of that kind gives up its
//! least recently used one: a tenant opening sessions in a loop evicts its own, not
//! everyone's. Each tenant's sessions are kept in last-use order, so an insert into a
//! full table costs a lookup, not a scan of the table (a resumption inserts a session
//! every time, and the scan was a large part of its cost).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use veritee_channel::enclave::{EnclaveSession, PendingSession};

/// Offers not yet accepted, at most.
pub const MAX_PENDING_SESSIONS: usize = 1024;
/// Open sessions, at most.
pub const MAX_OPEN_SESSIONS: usize = 4096;
/// A session unused this long is dropped.
pub const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
/// Sessions (offered or open) one tenant may hold by default (`--tenant-sessions`):
/// past it, the tenant's own least recently used session gives way.
pub const DEFAULT_SESSIONS_PER_TENANT: usize = 256;

/// A session in the table.
pub(crate) enum Slot {
    /// Offered, waiting for the tenant's hello.
    Pending(PendingSession),
    /// Established.
    Open(EnclaveSession),
}

impl Slot {
    pub(crate) fn tenant(&self) -> &str {
        match self {
            Self::Pending(p) => p.tenant_id(),
            Self::Open(s) => s.tenant_id(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Self::Pending(_) => Kind::Pending,
            Self::Open(_) => Kind::Open,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Pending,
    Open,
}

impl Kind {
    fn capacity(self) -> usize {
        match self {
            Self::Pending => MAX_PENDING_SESSIONS,
            Self::Open => MAX_OPEN_SESSIONS,
        }
    }
}

/// The session table: sessions by id, and each tenant's in last-use order.
pub(crate) struct Sessions {
    by_id: HashMap<String, (Slot, Instant)>,
    by_tenant: HashMap<(String, Kind), BTreeSet<(Instant, String)>>,
    held: HashMap<Kind, usize>,
    /// Sessions one tenant may hold, offered and open together (`None`: no limit).
    per_tenant: Option<usize>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            by_id: HashMap::new(),
            by_tenant: HashMap::new(),
            held: HashMap::new(),
            per_tenant: Some(DEFAULT_SESSIONS_PER_TENANT),
        }
    }
}

impl Sessions {
    /// Sessions held.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether a session of this id is held (busy ones are not).
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Takes a session out while it is in use, with when it was last used.
    pub(crate) fn take(&mut self, id: &str) -> Option<(Slot, Instant)> {
        let (slot, last_used) = self.by_id.remove(id)?;
        self.unindex(id, &slot, last_used);
        Some((slot, last_used))
    }

    /// Puts a session back as it was (its idle time runs on).
    pub(crate) fn put_back(&mut self, id: String, slot: Slot, last_used: Instant) {
        self.place(id, slot, last_used);
    }

    /// Sets how many sessions one tenant may hold (`None`: no limit).
    pub(crate) fn set_per_tenant(&mut self, limit: Option<usize>) {
        self.per_tenant = limit;
    }

    /// Adds a session used now, making room if its tenant holds as many as it may (its
    /// own least recently used session goes) or its kind is full.
    pub(crate) fn insert(&mut self, id: String, slot: Slot) {
        let now = Instant::now();
        self.drop_idle(now);
        if let Some(limit) = self.per_tenant {
            while self.held_by(slot.tenant()) >= limit.max(1) {
                self.evict_tenants_oldest(slot.tenant());
            }
        }
        let kind = slot.kind();
        if self.held.get(&kind).copied().unwrap_or(0) >= kind.capacity() {
            self.evict_one(kind);
        }
        self.place(id, slot, now);
    }

    /// Sessions `tenant` holds, offered and open.
    pub(crate) fn held_by(&self, tenant: &str) -> usize {
        [Kind::Pending, Kind::Open]
            .into_iter()
            .filter_map(|kind| self.by_tenant.get(&(tenant.to_string(), kind)))
            .map(BTreeSet::len)
            .sum()
    }

    /// `tenant` gives up its least recently used session, offered or open.
    fn evict_tenants_oldest(&mut self, tenant: &str) {
        let oldest = [Kind::Pending, Kind::Open]
            .into_iter()
            .filter_map(|kind| self.by_tenant.get(&(tenant.to_string(), kind)))
            .filter_map(BTreeSet::first)
            .min()
            .map(|(_, id)| id.clone());
        if let Some(id) = oldest {
            self.take(&id);
        }
    }

    fn place(&mut self, id: String, slot: Slot, last_used: Instant) {
        let kind = slot.kind();
        if let Some((old, old_used)) = self.by_id.remove(&id) {
            self.unindex(&id, &old, old_used);
        }
        self.by_tenant
            .entry((slot.tenant().to_string(), kind))
            .or_default()
            .insert((last_used, id.clone()));
        *self.held.entry(kind).or_default() += 1;
        self.by_id.insert(id, (slot, last_used));
    }

    fn unindex(&mut self, id: &str, slot: &Slot, last_used: Instant) {
        let key = (slot.tenant().to_string(), slot.kind());
        if let Some(order) = self.by_tenant.get_mut(&key) {
            order.remove(&(last_used, id.to_string()));
            if order.is_empty() {
                self.by_tenant.remove(&key);
            }
        }
        if let Some(n) = self.held.get_mut(&slot.kind()) {
            *n = n.saturating_sub(1);
        }
    }

    /// The busiest tenant of `kind` gives up its least recently used session.
    fn evict_one(&mut self, kind: Kind) {
        let victim = self
            .by_tenant
            .iter()
            .filter(|((_, k), _)| *k == kind)
            .max_by_key(|(_, order)| order.len())
            .and_then(|(_, order)| order.first())
            .map(|(_, id)| id.clone());
        if let Some(id) = victim {
            self.take(&id);
        }
    }

    /// Drops every session idle for [`SESSION_IDLE`]: each tenant's oldest first, so
    /// only what expires is visited (and tenants, not sessions, are walked).
    fn drop_idle(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .by_tenant
            .values()
            .flat_map(|order| {
                order
                    .iter()
                    .take_while(|(used, _)| now.duration_since(*used) >= SESSION_IDLE)
                    .map(|(_, id)| id.clone())
            })
            .collect();
        for id in expired {
            self.take(&id);
        }
    }
}
