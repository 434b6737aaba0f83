//! Sealed state that the host cannot roll back, resurrect or rewrite.
//!
//! Every record the enclave keeps (tenants, secrets, key copies, data object metadata,
//! its own keys) is a sealed blob in the host's store. Sealing alone stops the host
//! from reading or altering a blob, not from serving an older one, undoing a delete, or
//! hiding a record. So the enclave keeps, in memory, the authority on what exists: an
//! index from each record to its version, and it refuses a blob of any other version.
//!
//! ```text
//! record      ns / "<key>@<node>.<blob id, 32 hex>"   sealed; AAD names ns, key, node, blob id
//! journal     log "state/<node>", entry n             sealed; AAD names node and n
//!             Transition { counter (even), prev_root, time, audit, changes }
//!             change: Put { ns, key, blob id, SHA-256 of the blob } | Delete | Anchor | Abandoned
//!                     | RollbackAccepted | RollbackAudited
//! root_n      SHA-256("veritee state root v1" || root_{n-1} || entry_n)
//! snapshot    "enclave/<node>" / "state-snapshot"     sealed: the index at some entry n
//! counter     the platform's monotonic counter (simulated: kept with the machine)
//! ```
//!
//! A write seals the new version's blob under a fresh random id (so it never replaces
//! the last good version in place). One transition at a time, the enclave reserves the
//! transition's number: transitions are numbered with even counter values, and the
//! platform counter is advanced to the odd value just below (transition "in flight");
//! it appends the transition (naming each blob's id and SHA-256) to the journal, the
//! blobs in the same host transaction, and advances the counter past the transition's
//! number to the odd value above it (counting this transition and reserving the next
//! one's number in one counter write); only then is it acknowledged, and the old
//! version's blob deleted. Writes
//! that arrive while a transition is being committed share the next one (group
//! commit). So no two different transitions are ever sealed
//! with the same number, even when an append fails after the host kept the entry, or
//! the enclave dies mid-write: the host cannot keep a spare entry to swap in for an
//! acknowledged one later. A record is read only as the blob its transition names.
//!
//! Across a restart the journal rebuilds the index, and the counter says how far it
//! must reach. An even counter: the journal must end exactly there. An odd one: the
//! transition above it was reserved, perhaps in flight, never acknowledged; the journal
//! may end just below (its number is recorded as abandoned) or at it (it is adopted). A store put back to an
//! older copy ends short, and the node refuses to serve (fail closed), naming both
//! numbers. The operator may accept that rollback only explicitly (`veritee node
//! --accept-store-rollback`, honoured at the first load only), and the acceptance is a
//! transition of its own, then an audit entry, then a transition saying it was audited
//! (so a crash in between audits it at the next start).
//!
//! Transitions also carry the enclave's time floor (so time never goes backwards across
//! restarts, see `clock.rs`) and, when the audit module anchors it, the audit log's size
//! and head (so a truncated audit log is caught at start, see `audit.rs`).
//!
//! What this does not cover: data chunks, which are bound to their object's sealed
//! metadata by the stream format instead.

use crate::host::{HostLink, HostLinkExt, failure};
use crate::service::{EnclaveService, internal, lock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use time::OffsetDateTime;
use tracing::warn;
use veritee_crypto::SecretBytes;
use veritee_platform::{MonotonicCounter, sealing};
use veritee_proto::ipc::{EnclaveFailure, FailureKind, ObjectWrite};

/// The platform counter's name for the state journal.
const COUNTER_NAME: &str = "veritee state journal";
/// A snapshot of the index is written after this many transitions, or after one per
/// eight records if there are more ([`snapshot_due`]).
const SNAPSHOT_EVERY: u64 = 1024;
/// Journal entries read per host call at start.
const READ_PAGE: u32 = 1000;
const SNAPSHOT_KEY: &str = "state-snapshot";

/// The audit log's size and head hash, as anchored in a transition.
pub(crate) type AuditAnchor = (u64, [u8; 32]);

#[derive(Serialize, Deserialize, Clone)]
enum Change {
    /// A record's new version.
    Put {
        ns: String,
        key: String,
        /// The id its blob is stored under.
        blob: String,
        /// SHA-256 of the sealed blob.
        digest: serde_bytes::ByteBuf,
    },
    Delete {
        ns: String,
        key: String,
    },
    /// Only the time floor and the audit anchor move.
    Anchor,
    /// The transition in flight when the last run stopped never reached the journal;
    /// its number is spent.
    Abandoned,
    /// The operator accepted a store older than the counter.
    RollbackAccepted {
        store_counter: u64,
        platform_counter: u64,
    },
    /// The acceptance above is in the audit log.
    RollbackAudited,
}

#[derive(Serialize, Deserialize)]
struct Transition {
    /// The counter value this transition brings the platform counter to; a record it
    /// puts has this version.
    counter: u64,
    #[serde(with = "serde_bytes")]
    prev_root: Vec<u8>,
    /// The enclave's time floor, unix seconds.
    time: i64,
    /// The audit log anchored by this transition, if any.
    audit: Option<(u64, serde_bytes::ByteBuf)>,
    /// What changed, in order: the writes of every caller that was waiting while the
    /// transition before was committed (group commit).
    changes: Vec<Change>,
}

/// A snapshot as read back (written as [`SnapshotOut`]).
#[derive(Deserialize)]
struct Snapshot {
    journal_len: u64,
    counter: u64,
    #[serde(with = "serde_bytes")]
    root: Vec<u8>,
    time: i64,
    audit: Option<(u64, serde_bytes::ByteBuf)>,
    records: Vec<(String, String, u64, String, serde_bytes::ByteBuf)>,
    unaudited_rollback: Option<(u64, u64)>,
}

/// A snapshot as written: [`Snapshot`]'s encoding, with the records serialized from
/// the index as it is iterated rather than copied out first (a snapshot grows with
/// the records, and every transient copy of its size is memory the allocator keeps).
#[derive(Serialize)]
struct SnapshotOut<'a> {
    journal_len: u64,
    counter: u64,
    #[serde(with = "serde_bytes")]
    root: &'a [u8],
    time: i64,
    audit: Option<(u64, &'a serde_bytes::Bytes)>,
    records: IndexRecords<'a>,
    unaudited_rollback: Option<(u64, u64)>,
}

/// The index's records as [`Snapshot::records`]' tuples: (ns, key, version, blob id,
/// digest).
struct IndexRecords<'a>(&'a Index);

impl Serialize for IndexRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|((ns, key), r)| {
            (
                ns.as_str(),
                key.as_str(),
                r.version,
                r.blob.as_str(),
                serde_bytes::Bytes::new(&r.digest),
            )
        }))
    }
}

/// Whether a snapshot is due, `since` transitions after the last one with `records`
/// records. A snapshot costs in proportion to the records; spacing them by an eighth
/// of the records keeps that cost per transition bounded (about eight records' worth)
/// however large the index grows, while a restart replays at most that many entries.
fn snapshot_due(since: u64, records: usize) -> bool {
    since >= SNAPSHOT_EVERY.max(records as u64 / 8)
}

/// A record's current version: the transition that wrote it, and its blob's id and
/// SHA-256.
#[derive(Clone)]
pub(crate) struct RecordVersion {
    version: u64,
    blob: String,
    digest: [u8; 32],
}

/// Each record's current version, by namespace and key.
pub(crate) type Index = BTreeMap<(String, String), RecordVersion>;

/// The journal's end and what goes with it, loaded on first use. The record index is
/// not here: once loaded it lives in `EnclaveService::index` alone, published so that
/// reads need not wait for a transition in flight, and changed only by the holder of
/// the state's lock.
pub(crate) struct State {
    journal_len: u64,
    counter: u64,
    root: [u8; 32],
    audit: Option<AuditAnchor>,
    /// A rollback accepted but not yet known to be in the audit log.
    unaudited_rollback: Option<(u64, u64)>,
    /// The platform counter; taken out while a transition is in flight, so a failure
    /// leaves it out and the next call reloads (see `with_state`).
    platform_counter: Option<Box<dyn MonotonicCounter>>,
    /// The platform counter stands at `counter + 1`: the next transition's number is
    /// reserved already (counting a transition reserves the next one).
    next_reserved: bool,
    /// The journal's length at the last snapshot written or loaded.
    snapshot_len: u64,
}

/// A write waiting for its transition.
enum Op {
    /// A record's new version: its blob, sealed, to be stored with the transition.
    Put {
        ns: String,
        key: String,
        blob: String,
        sealed: Vec<u8>,
        only_if_absent: bool,
        /// Objects stored in the same host transaction as the record (already
        /// encrypted by their writer): written if and only if the record is.
        with: Vec<ObjectWrite>,
    },
    Delete {
        ns: String,
        key: String,
    },
    Anchor(AuditAnchor),
    RollbackAudited(AuditAnchor),
}

/// What became of a write.
enum Outcome {
    /// Written; the blob of the version it replaced, if any.
    Written { replaced: Option<String> },
    /// Not written: the record exists (`put_if_absent`).
    Present,
    /// Deleted, with the blob that was current; `None`: there was no such record.
    Deleted { blob: Option<String> },
    /// Committed.
    Done,
}

/// Writes queued for the next transition, and the outcomes of those a transition
/// committed on their callers' behalf, by ticket.
#[derive(Default)]
pub(crate) struct Commits {
    next_ticket: u64,
    pending: Vec<(u64, Op)>,
    results: std::collections::HashMap<u64, Result<Outcome, EnclaveFailure>>,
}

/// Blob bytes one transition carries at most (beyond its first write), so the host
/// call that stores them stays well inside a frame.
const BATCH_BYTES: usize = 8 * 1024 * 1024;

impl Commits {
    /// The oldest pending writes, up to [`BATCH_BYTES`] of blobs (at least one write).
    fn take_batch(&mut self) -> Vec<(u64, Op)> {
        let mut bytes = 0;
        let mut n = 0;
        for (_, op) in &self.pending {
            let size = match op {
                Op::Put { sealed, .. } => sealed.len(),
                _ => 0,
            };
            if n > 0 && bytes + size > BATCH_BYTES {
                break;
            }
            bytes += size;
            n += 1;
        }
        self.pending.drain(..n).collect()
    }
}

/// Why the state could not be loaded.
enum LoadError {
    /// The host did not answer as asked: try again at the next call.
    Host(EnclaveFailure),
    /// The state is not to be served: every call is told why.
    Refused(String),
}

impl From<String> for LoadError {
    fn from(reason: String) -> Self {
        Self::Refused(reason)
    }
}

/// What the state holds: loaded, or refused for a reason every call is told.
pub(crate) enum StateSlot {
    Unloaded,
    Loaded(Box<State>),
    Refused(String),
}

fn journal_log(node: &str) -> String {
    format!("state/{node}")
}

fn node_ns(node: &str) -> String {
    format!("enclave/{node}")
}

fn physical_key(key: &str, node: &str, blob: &str) -> String {
    format!("{key}@{node}.{blob}")
}

fn record_aad(ns: &str, key: &str, node: &str, blob: &str) -> Vec<u8> {
    format!("veritee record v2\0{ns}\0{key}\0{node}\0{blob}").into_bytes()
}

fn journal_aad(node: &str, seq: u64) -> Vec<u8> {
    format!("veritee journal v1\0{node}\0{seq}").into_bytes()
}

fn snapshot_aad(node: &str) -> Vec<u8> {
    format!("veritee snapshot v1\0{node}").into_bytes()
}

fn next_root(prev: &[u8; 32], entry: &[u8]) -> [u8; 32] {
    let mut h = veritee_crypto::digest::Sha256::default();
    h.update(b"veritee state root v1");
    h.update(prev);
    h.update(entry);
    h.finish()
}

fn cbor<T: Serialize>(v: &T) -> Result<Vec<u8>, EnclaveFailure> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(internal)?;
    Ok(out)
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn digest32(bytes: &serde_bytes::ByteBuf, what: &str) -> Result<[u8; 32], String> {
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("{what} is not 32 bytes"))
}

fn anchor_bytes(a: &Option<(u64, serde_bytes::ByteBuf)>) -> Result<Option<AuditAnchor>, String> {
    match a {
        None => Ok(None),
        Some((size, head)) => Ok(Some((*size, digest32(head, "an audit anchor's head")?))),
    }
}

fn rolled_back(store: u64, platform: u64) -> String {
    format!(
        "the store was rolled back: its state journal ends at counter value {store}, but this machine's monotonic counter is at {platform}. \
         The node refuses to serve an older state. Put back the newest copy of the store, \
         or start the node with --accept-store-rollback to accept the loss (audited)"
    )
}

fn ahead(store: u64, platform: u64) -> String {
    format!(
        "the state journal (at counter value {store}) is ahead of this machine's monotonic counter ({platform}) by more than the one transition that may have been in flight: the counter was reset or belongs to another machine"
    )
}

fn counter_failure(e: veritee_platform::PlatformError) -> EnclaveFailure {
    failure(
        FailureKind::Unavailable,
        format!("the platform's monotonic counter cannot be advanced: {e}"),
    )
}

/// Applies a record's change (a put or a delete) to an index; other changes leave it.
fn apply_to_index(index: &mut Index, counter: u64, change: &Change) -> Result<(), String> {
    match change {
        Change::Put {
            ns,
            key,
            blob,
            digest,
        } => {
            let current = RecordVersion {
                version: counter,
                blob: blob.clone(),
                digest: digest32(digest, "a record's digest")?,
            };
            index.insert((ns.clone(), key.clone()), current);
        }
        Change::Delete { ns, key } => {
            index.remove(&(ns.clone(), key.clone()));
        }
        _ => {}
    }
    Ok(())
}

fn read_index(index: &RwLock<Option<Index>>) -> RwLockReadGuard<'_, Option<Index>> {
    index.read().unwrap_or_else(|e| e.into_inner())
}

fn write_index(index: &RwLock<Option<Index>>) -> RwLockWriteGuard<'_, Option<Index>> {
    index.write().unwrap_or_else(|e| e.into_inner())
}

fn overflow() -> EnclaveFailure {
    internal("the state counter is exhausted")
}

impl EnclaveService {
    fn state_failure(reason: &str) -> EnclaveFailure {
        failure(FailureKind::Unavailable, reason.to_string())
    }

    /// Runs `f` on the loaded state, loading it (and checking it against the platform
    /// counter) on first use.
    fn with_state<T>(
        &self,
        link: &mut dyn HostLink,
        f: impl FnOnce(&mut State, &mut dyn HostLink) -> Result<T, EnclaveFailure>,
    ) -> Result<T, EnclaveFailure> {
        self.with_loaded(&mut lock(&self.state), link, f)
    }

    /// As [`Self::with_state`], with the state's lock held already.
    fn with_loaded<T>(
        &self,
        slot: &mut StateSlot,
        link: &mut dyn HostLink,
        f: impl FnOnce(&mut State, &mut dyn HostLink) -> Result<T, EnclaveFailure>,
    ) -> Result<T, EnclaveFailure> {
        if matches!(*slot, StateSlot::Unloaded) {
            match self.load_state(link) {
                Ok((state, records)) => {
                    if let Some((store, platform)) = state.unaudited_rollback {
                        self.note_rollback(store, platform);
                    }
                    *write_index(&self.index) = Some(records);
                    *slot = StateSlot::Loaded(Box::new(state));
                }
                Err(LoadError::Host(e)) => return Err(e),
                Err(LoadError::Refused(reason)) => {
                    warn!("sealed state refused: {reason}");
                    *slot = StateSlot::Refused(reason);
                }
            }
        }
        match &mut *slot {
            StateSlot::Loaded(state) => {
                let result = f(state, link);
                if state.platform_counter.is_none() {
                    // A transition was in flight when it failed: reload at the next
                    // call, which reconciles the journal with the counter first.
                    *write_index(&self.index) = None;
                    *slot = StateSlot::Unloaded;
                }
                result
            }
            StateSlot::Refused(reason) => Err(Self::state_failure(reason)),
            StateSlot::Unloaded => Err(internal("sealed state not loaded")),
        }
    }

    /// Loads the state now if it is not loaded: a call that begins with it reports a
    /// refused state at once, and a rollback accepted at load is audited before the
    /// call does anything else.
    pub(crate) fn ensure_state(&self, link: &mut dyn HostLink) -> Result<(), EnclaveFailure> {
        if read_index(&self.index).is_some() {
            return Ok(());
        }
        self.with_state(link, |_, _| Ok(()))
    }

    /// Rebuilds the index from the snapshot and the journal, and checks that the journal
    /// reaches the platform counter (see the module documentation).
    fn load_state(&self, link: &mut dyn HostLink) -> Result<(State, Index), LoadError> {
        let node = self.node_id().map_err(LoadError::Host)?;
        let counter = self
            .platform()
            .monotonic_counter(self.seal_policy(), COUNTER_NAME)
            .map_err(|e| {
                format!("this platform offers no monotonic counter for rollback protection: {e}")
            })?;
        let platform_now = counter
            .read()
            .map_err(|e| format!("the monotonic counter cannot be read: {e}"))?;
        let mut records = Index::new();
        let mut state = State {
            journal_len: 0,
            counter: 0,
            root: [0u8; 32],
            audit: None,
            unaudited_rollback: None,
            platform_counter: None,
            next_reserved: false,
            snapshot_len: 0,
        };
        let ns = node_ns(&node);
        let aad = snapshot_aad(&node);
        if let Some(blob) = link.get(&ns, SNAPSHOT_KEY).map_err(LoadError::Host)? {
            let plain = sealing::unseal(self.platform(), &aad, &blob)
                .map_err(|e| format!("the state snapshot does not unseal ({e}): it was altered or sealed by another enclave"))?;
            let snap: Snapshot = ciborium::from_reader(plain.expose().as_slice())
                .map_err(|e| format!("the state snapshot is malformed: {e}"))?;
            state.journal_len = snap.journal_len;
            state.snapshot_len = snap.journal_len;
            state.counter = snap.counter;
            state.root = snap
                .root
                .as_slice()
                .try_into()
                .map_err(|_| "the state snapshot's root is not 32 bytes".to_string())?;
            state.audit = anchor_bytes(&snap.audit)?;
            state.unaudited_rollback = snap.unaudited_rollback;
            self.clock().observe(
                OffsetDateTime::from_unix_timestamp(snap.time)
                    .unwrap_or(crate::clock::RELEASE_FLOOR),
            );
            for (ns, key, version, blob, digest) in snap.records {
                let digest = digest32(&digest, "a snapshot record's digest")?;
                records.insert(
                    (ns, key),
                    RecordVersion {
                        version,
                        blob,
                        digest,
                    },
                );
            }
        }
        let log = journal_log(&node);
        loop {
            let page = link
                .log_read(&log, state.journal_len, READ_PAGE)
                .map_err(LoadError::Host)?;
            let done = page.len() < READ_PAGE as usize;
            for entry in page {
                if entry.seq != state.journal_len {
                    return Err(format!(
                        "the state journal has entry {} where entry {} belongs: entries were removed or reordered",
                        entry.seq, state.journal_len
                    )
                    .into());
                }
                let plain = sealing::unseal(
                    self.platform(),
                    &journal_aad(&node, entry.seq),
                    &entry.entry,
                )
                .map_err(|e| {
                    format!(
                        "state journal entry {} does not unseal ({e}): altered, moved or foreign",
                        entry.seq
                    )
                })?;
                let t: Transition = ciborium::from_reader(plain.expose().as_slice())
                    .map_err(|e| format!("state journal entry {} is malformed: {e}", entry.seq))?;
                if t.prev_root != state.root {
                    return Err(format!(
                        "state journal entry {} does not follow the one before (its root differs)",
                        entry.seq
                    )
                    .into());
                }
                if t.counter <= state.counter || !t.counter.is_multiple_of(2) {
                    return Err(format!(
                        "state journal entry {} is numbered {} after {}: not a transition this enclave wrote",
                        entry.seq, t.counter, state.counter
                    )
                    .into());
                }
                Self::apply(&mut state, Some(&mut records), &t)?;
                state.root = next_root(&state.root, &entry.entry);
                state.journal_len += 1;
                self.clock().observe(
                    OffsetDateTime::from_unix_timestamp(t.time)
                        .unwrap_or(crate::clock::RELEASE_FLOOR),
                );
            }
            if done {
                break;
            }
        }
        let store = state.counter;
        let in_flight = !platform_now.is_multiple_of(2);
        // The counter value the journal must end at, and the one it may end at instead
        // when a transition was in flight.
        let (expected, adoptable) = if in_flight {
            let spent = platform_now
                .checked_add(1)
                .ok_or_else(|| "the monotonic counter is exhausted".to_string())?;
            (platform_now - 1, Some(spent))
        } else {
            (platform_now, None)
        };
        if Some(store) == adoptable {
            // The transition in flight reached the journal but was never counted, so
            // never acknowledged; counting it now is as good as not. Its number was
            // reserved once, so it is the only transition ever sealed under it,
            // whatever came before it (a rollback acceptance jumps).
            counter
                .advance_to(store)
                .map_err(|e| format!("the monotonic counter cannot be advanced: {e}"))?;
            state.platform_counter = Some(counter);
        } else if store == expected {
            if let Some(spent) = adoptable {
                // It never reached the journal (or the host withholds it, which only
                // loses a write that was never acknowledged): its number is spent.
                self.append_and_count(
                    &mut state,
                    link,
                    (counter, spent),
                    vec![Change::Abandoned],
                    Vec::new(),
                    None,
                )
                .map_err(LoadError::Host)?;
            } else {
                state.platform_counter = Some(counter);
            }
        } else if store > expected {
            return Err(ahead(store, platform_now).into());
        } else {
            // Honoured once per process: a later reload never accepts a rollback.
            if !self.take_rollback_acceptance() {
                return Err(rolled_back(store, platform_now).into());
            }
            // Above the platform's value and above the transition that may have been
            // in flight, so nothing sealed before can be swapped in for the acceptance.
            let spent = adoptable.unwrap_or(platform_now);
            let next = spent
                .checked_add(2)
                .ok_or_else(|| "the state counter is exhausted".to_string())?;
            let counter = Self::reserve(counter, next - 1).map_err(LoadError::Host)?;
            let change = Change::RollbackAccepted {
                store_counter: store,
                platform_counter: platform_now,
            };
            self.append_and_count(
                &mut state,
                link,
                (counter, next),
                vec![change],
                Vec::new(),
                None,
            )
            .map_err(LoadError::Host)?;
        }
        // A rollback check passed: the operator's acceptance, if given, is spent too.
        self.take_rollback_acceptance();
        Ok((state, records))
    }

    /// Applies a transition to the state, and its record changes to `records` (`None`
    /// while loading, where the transitions written carry none).
    fn apply(
        state: &mut State,
        mut records: Option<&mut Index>,
        t: &Transition,
    ) -> Result<(), String> {
        for change in &t.changes {
            Self::apply_change(state, records.as_deref_mut(), t.counter, change)?;
        }
        if let Some(anchor) = anchor_bytes(&t.audit)? {
            state.audit = Some(anchor);
        }
        state.counter = t.counter;
        Ok(())
    }

    fn apply_change(
        state: &mut State,
        records: Option<&mut Index>,
        counter: u64,
        change: &Change,
    ) -> Result<(), String> {
        match change {
            Change::Put { .. } | Change::Delete { .. } => apply_to_index(
                records.ok_or("a record changed before the index was loaded")?,
                counter,
                change,
            )?,
            Change::RollbackAccepted {
                store_counter,
                platform_counter,
            } => state.unaudited_rollback = Some((*store_counter, *platform_counter)),
            Change::RollbackAudited => state.unaudited_rollback = None,
            Change::Anchor | Change::Abandoned => {}
        }
        Ok(())
    }

    /// Moves the platform counter to `reserved` (odd): the transition numbered
    /// `reserved + 1` is in flight from here until it is counted.
    fn reserve(
        counter: Box<dyn MonotonicCounter>,
        reserved: u64,
    ) -> Result<Box<dyn MonotonicCounter>, EnclaveFailure> {
        counter.advance_to(reserved).map_err(counter_failure)?;
        Ok(counter)
    }

    /// Reserves the next transition's number, taking the counter out of `state` until
    /// the transition is counted (so a failure in between makes the next call reload).
    fn begin_transition(
        state: &mut State,
    ) -> Result<(u64, Box<dyn MonotonicCounter>), EnclaveFailure> {
        let next = state.counter.checked_add(2).ok_or_else(overflow)?;
        let counter = state
            .platform_counter
            .take()
            .ok_or_else(|| internal("the monotonic counter is not open"))?;
        if std::mem::take(&mut state.next_reserved) {
            return Ok((next, counter));
        }
        Ok((next, Self::reserve(counter, next - 1)?))
    }

    /// Appends transition `number` (whose number is reserved) and counts it; on success
    /// it is durable and counted, and the counter is back in `state`. Counting moves the
    /// counter to `number + 1`, which also reserves the next transition's number: one
    /// counter write per transition. The counter never rests on an even value, so a
    /// restart always finds a transition "in flight" and spends its number (abandoned)
    /// unless the journal holds it.
    fn append_and_count(
        &self,
        state: &mut State,
        link: &mut dyn HostLink,
        (counter, number): (Box<dyn MonotonicCounter>, u64),
        changes: Vec<Change>,
        objects: Vec<ObjectWrite>,
        audit: Option<AuditAnchor>,
    ) -> Result<(), EnclaveFailure> {
        let node = self.node_id()?;
        let t = Transition {
            counter: number,
            prev_root: state.root.to_vec(),
            time: unix(self.clock().floor()),
            audit: audit.map(|(size, head)| (size, serde_bytes::ByteBuf::from(head.to_vec()))),
            changes,
        };
        let entry = sealing::seal(
            self.platform(),
            self.seal_policy(),
            &journal_aad(&node, state.journal_len),
            &cbor(&t)?,
        )
        .map_err(internal)?;
        link.log_append_with(
            &journal_log(&node),
            state.journal_len,
            entry.clone(),
            objects,
        )?;
        let reserved = number.checked_add(1).ok_or_else(overflow)?;
        counter.advance_to(reserved).map_err(counter_failure)?;
        state.platform_counter = Some(counter);
        state.next_reserved = true;
        // Held only while the index changes: a read waits for no more than that.
        Self::apply(state, write_index(&self.index).as_mut(), &t).map_err(internal)?;
        state.root = next_root(&state.root, &entry);
        state.journal_len += 1;
        let since = state.journal_len - state.snapshot_len;
        if read_index(&self.index)
            .as_ref()
            .is_some_and(|index| snapshot_due(since, index.len()))
        {
            self.write_snapshot(state, link, &node);
        }
        Ok(())
    }

    /// Commits `op` in a transition and returns its outcome. Writes queue up while a
    /// transition is being committed, and the next caller to take the state commits
    /// all of them in one (group commit): under load the counter's two syncs and the
    /// journal append are shared, not paid by each write in turn.
    fn submit(&self, link: &mut dyn HostLink, op: Op) -> Result<Outcome, EnclaveFailure> {
        let ticket = {
            let mut commits = lock(&self.commits);
            commits.next_ticket += 1;
            let ticket = commits.next_ticket;
            commits.pending.push((ticket, op));
            ticket
        };
        let mut slot = lock(&self.state);
        // A caller before us may have committed our change already.
        if let Some(result) = lock(&self.commits).results.remove(&ticket) {
            return result;
        }
        let result = self.with_loaded(&mut slot, link, |state, link| {
            loop {
                // Batches are bounded in bytes: ours may come after older ones.
                let batch = lock(&self.commits).take_batch();
                if batch.is_empty() {
                    return Err(internal("a queued change was lost"));
                }
                let outcomes = self.commit_batch(state, link, batch);
                let failed = outcomes.iter().find_map(|(_, o)| o.as_ref().err().cloned());
                let mut commits = lock(&self.commits);
                commits.results.extend(outcomes);
                if let Some(own) = commits.results.remove(&ticket) {
                    return own;
                }
                if let Some(e) = failed {
                    // The state needs reloading before anything more is committed.
                    return Err(e);
                }
            }
        });
        if result.is_err() {
            // Not committed if it never left the queue (the state did not load).
            lock(&self.commits).pending.retain(|(t, _)| *t != ticket);
        }
        result
    }

    /// Commits every op of `batch` that applies in one transition, in order: an op
    /// sees the ones before it. Each gets its outcome; if the transition fails, every
    /// op that needed it fails with it.
    fn commit_batch(
        &self,
        state: &mut State,
        link: &mut dyn HostLink,
        batch: Vec<(u64, Op)>,
    ) -> Vec<(u64, Result<Outcome, EnclaveFailure>)> {
        // Record versions as the batch leaves them (None: deleted).
        let mut view: std::collections::HashMap<(String, String), Option<String>> =
            std::collections::HashMap::new();
        let mut changes = Vec::new();
        let mut objects = Vec::new();
        let mut audit = None;
        let mut outcomes = Vec::with_capacity(batch.len());
        let node = match self.node_id() {
            Ok(node) => node,
            Err(e) => {
                return batch
                    .into_iter()
                    .map(|(t, _)| (t, Err(e.clone())))
                    .collect();
            }
        };
        for (ticket, op) in batch {
            let current = |id: &(String, String)| -> Option<String> {
                match view.get(id) {
                    Some(seen) => seen.clone(),
                    // The index cannot change under us: we hold the state's lock.
                    None => read_index(&self.index)
                        .as_ref()
                        .and_then(|index| index.get(id))
                        .map(|r| r.blob.clone()),
                }
            };
            let outcome = match op {
                Op::Put {
                    ns,
                    key,
                    blob,
                    sealed,
                    only_if_absent,
                    with,
                } => {
                    let id = (ns.clone(), key.clone());
                    let old = current(&id);
                    if only_if_absent && old.is_some() {
                        Outcome::Present
                    } else {
                        view.insert(id, Some(blob.clone()));
                        let digest = veritee_crypto::digest::sha256(&sealed);
                        objects.push(ObjectWrite {
                            ns: ns.clone(),
                            key: physical_key(&key, &node, &blob),
                            value: sealed,
                        });
                        objects.extend(with);
                        changes.push(Change::Put {
                            ns,
                            key,
                            blob,
                            digest: serde_bytes::ByteBuf::from(digest.to_vec()),
                        });
                        Outcome::Written { replaced: old }
                    }
                }
                Op::Delete { ns, key } => {
                    let id = (ns.clone(), key.clone());
                    match current(&id) {
                        None => Outcome::Deleted { blob: None },
                        Some(old) => {
                            view.insert(id, None);
                            changes.push(Change::Delete { ns, key });
                            Outcome::Deleted { blob: Some(old) }
                        }
                    }
                }
                Op::Anchor(anchor) => {
                    audit = Some(anchor);
                    changes.push(Change::Anchor);
                    Outcome::Done
                }
                Op::RollbackAudited(anchor) => {
                    audit = Some(anchor);
                    changes.push(Change::RollbackAudited);
                    Outcome::Done
                }
            };
            outcomes.push((ticket, outcome));
        }
        let committed = if changes.is_empty() {
            Ok(())
        } else {
            Self::begin_transition(state).and_then(|(number, counter)| {
                self.append_and_count(state, link, (counter, number), changes, objects, audit)
            })
        };
        // If the transition failed, so does every op of the batch: even one that changed
        // nothing was answered against changes that did not happen.
        outcomes
            .into_iter()
            .map(|(ticket, outcome)| match &committed {
                Err(e) => (ticket, Err(e.clone())),
                Ok(()) => (ticket, Ok(outcome)),
            })
            .collect()
    }

    fn write_snapshot(&self, state: &mut State, link: &mut dyn HostLink, node: &str) {
        let index = read_index(&self.index);
        // Not published yet: a transition written while loading. A snapshot without
        // the records would lose them; the next one will have them.
        let Some(records) = index.as_ref() else {
            return;
        };
        let snap = SnapshotOut {
            journal_len: state.journal_len,
            counter: state.counter,
            root: &state.root,
            time: unix(self.clock().floor()),
            audit: state
                .audit
                .as_ref()
                .map(|(size, head)| (*size, serde_bytes::Bytes::new(head))),
            records: IndexRecords(records),
            unaudited_rollback: state.unaudited_rollback,
        };
        let encoded = cbor(&snap);
        drop(index);
        // A snapshot only shortens the next start; failing to write one loses nothing.
        let written = encoded.and_then(|bytes| {
            let blob = sealing::seal(
                self.platform(),
                self.seal_policy(),
                &snapshot_aad(node),
                &bytes,
            )
            .map_err(internal)?;
            link.put(&node_ns(node), SNAPSHOT_KEY, blob)
        });
        match written {
            Ok(()) => state.snapshot_len = state.journal_len,
            Err(e) => warn!("cannot write a state snapshot: {}", e.message),
        }
    }

    /// The current version of record `ns`/`key`, if any.
    fn current(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
    ) -> Result<Option<RecordVersion>, EnclaveFailure> {
        self.with_index(link, |index| {
            index.get(&(ns.to_string(), key.to_string())).cloned()
        })
    }

    /// Runs `f` on the record index, loading the state first if it is not loaded. A
    /// read does not wait for a transition in flight: the index is published.
    fn with_index<T>(
        &self,
        link: &mut dyn HostLink,
        f: impl FnOnce(&Index) -> T,
    ) -> Result<T, EnclaveFailure> {
        if let Some(index) = read_index(&self.index).as_ref() {
            return Ok(f(index));
        }
        // Loading publishes it, and nothing unpublishes it while the state's lock is held.
        self.with_state(link, |_, _| {
            read_index(&self.index)
                .as_ref()
                .map(f)
                .ok_or_else(|| internal("the record index is not published"))
        })
    }

    /// The digest of a record's current sealed blob, or None: names one version of
    /// it, for caches of what was unsealed from it.
    pub(crate) fn record_digest(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
    ) -> Result<Option<[u8; 32]>, EnclaveFailure> {
        Ok(self.current(link, ns, key)?.map(|r| r.digest))
    }

    /// Reads a record: the blob the index names, or nothing if the index has none.
    pub(crate) fn record_get(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
    ) -> Result<Option<SecretBytes>, EnclaveFailure> {
        let node = self.node_id()?;
        for _ in 0..3 {
            let Some(current) = self.current(link, ns, key)? else {
                return Ok(None);
            };
            let version = current.version;
            let Some(blob) = link.get(ns, &physical_key(key, &node, &current.blob))? else {
                // A write may have replaced this version meanwhile; look again.
                if self.current(link, ns, key)?.map(|r| r.version) != Some(version) {
                    continue;
                }
                return Err(failure(
                    FailureKind::Internal,
                    format!(
                        "record {ns}/{key} (version {version}) is missing from the store: the host deleted it"
                    ),
                ));
            };
            if !veritee_crypto::ct_eq(&veritee_crypto::digest::sha256(&blob), &current.digest) {
                return Err(failure(
                    FailureKind::Internal,
                    format!(
                        "record {ns}/{key} is not the blob its current version {version} wrote: the host altered it or served another"
                    ),
                ));
            }
            return sealing::unseal(
                self.platform(),
                &record_aad(ns, key, &node, &current.blob),
                &blob,
            )
            .map(Some)
            .map_err(|e| {
                failure(
                    FailureKind::Internal,
                    format!(
                        "record {ns}/{key} does not unseal as its current version {version} ({e}): the host altered it or served another version"
                    ),
                )
            });
        }
        Err(failure(
            FailureKind::Unavailable,
            format!("record {ns}/{key} keeps changing; try again"),
        ))
    }

    /// Writes a record (a new version); durable and counted when it returns.
    pub(crate) fn record_put(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
        plaintext: &[u8],
    ) -> Result<(), EnclaveFailure> {
        self.record_write(link, ns, key, plaintext, false, Vec::new())
            .map(|_| ())
    }

    /// Creates a record unless one exists; true if created.
    pub(crate) fn record_put_if_absent(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
        plaintext: &[u8],
    ) -> Result<bool, EnclaveFailure> {
        self.record_write(link, ns, key, plaintext, true, Vec::new())
    }

    /// Writes a record (a new version) and `with`, objects its writer encrypted, in
    /// one host transaction: both are stored, or neither.
    pub(crate) fn record_put_with(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
        plaintext: &[u8],
        with: Vec<ObjectWrite>,
    ) -> Result<(), EnclaveFailure> {
        self.record_write(link, ns, key, plaintext, false, with)
            .map(|_| ())
    }

    fn record_write(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
        plaintext: &[u8],
        only_if_absent: bool,
        with: Vec<ObjectWrite>,
    ) -> Result<bool, EnclaveFailure> {
        let node = self.node_id()?;
        // Sealed here, outside the transition: other writes' transitions go on meanwhile.
        let blob_id = hex::encode(veritee_crypto::rand::array::<16>().map_err(internal)?);
        let blob = sealing::seal(
            self.platform(),
            self.seal_policy(),
            &record_aad(ns, key, &node, &blob_id),
            plaintext,
        )
        .map_err(internal)?;
        let op = Op::Put {
            ns: ns.into(),
            key: key.into(),
            blob: blob_id,
            sealed: blob,
            only_if_absent,
            with,
        };
        match self.submit(link, op)? {
            Outcome::Written { replaced } => {
                // The old version is unreachable now; removing it is housekeeping.
                if let Some(old) = replaced {
                    let _ = link.delete(ns, &physical_key(key, &node, &old));
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Deletes a record; true if it existed.
    pub(crate) fn record_delete(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
    ) -> Result<bool, EnclaveFailure> {
        let node = self.node_id()?;
        let op = Op::Delete {
            ns: ns.into(),
            key: key.into(),
        };
        match self.submit(link, op)? {
            Outcome::Deleted { blob: Some(blob) } => {
                let _ = link.delete(ns, &physical_key(key, &node, &blob));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The keys of records in `ns` starting with `prefix`, in order: from the index,
    /// so the host can neither hide a record nor add one.
    pub(crate) fn record_keys(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        prefix: &str,
    ) -> Result<Vec<String>, EnclaveFailure> {
        self.with_index(link, |index| {
            index
                .range((ns.to_string(), prefix.to_string())..)
                .take_while(|((n, k), _)| n == ns && k.starts_with(prefix))
                .map(|((_, k), _)| k.clone())
                .collect()
        })
    }

    /// Records the audit log's size and head (and the time floor) in a transition.
    pub(crate) fn anchor_audit(
        &self,
        link: &mut dyn HostLink,
        anchor: AuditAnchor,
    ) -> Result<(), EnclaveFailure> {
        self.submit(link, Op::Anchor(anchor)).map(|_| ())
    }

    /// Records that the audit log (anchored at `anchor`) holds the entry of the rollback
    /// accepted at load.
    pub(crate) fn rollback_audited(
        &self,
        link: &mut dyn HostLink,
        anchor: AuditAnchor,
    ) -> Result<(), EnclaveFailure> {
        self.submit(link, Op::RollbackAudited(anchor)).map(|_| ())
    }

    /// The audit anchor of the loaded state.
    pub(crate) fn audit_anchor(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<Option<AuditAnchor>, EnclaveFailure> {
        self.with_state(link, |state, _| Ok(state.audit))
    }

    /// The state journal's length and counter, for status.
    pub(crate) fn state_position(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<(u64, u64), EnclaveFailure> {
        self.with_state(link, |state, _| Ok((state.journal_len, state.counter)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_written_from_the_index_reads_back_as_a_snapshot() {
        let mut index = Index::new();
        for (ns, key, version) in [("t/a", "k1", 2), ("t/a", "k2", 4), ("t/b", "k1", 6)] {
            index.insert(
                (ns.to_string(), key.to_string()),
                RecordVersion {
                    version,
                    blob: format!("blob{version}"),
                    digest: [version as u8; 32],
                },
            );
        }
        let out = SnapshotOut {
            journal_len: 7,
            counter: 6,
            root: &[9; 32],
            time: 1_700_000_000,
            audit: Some((3, serde_bytes::Bytes::new(&[5; 32]))),
            records: IndexRecords(&index),
            unaudited_rollback: Some((1, 2)),
        };
        let bytes = cbor(&out).expect("encoded");
        let snap: Snapshot = ciborium::from_reader(bytes.as_slice()).expect("decoded");
        assert_eq!(
            (snap.journal_len, snap.counter, snap.time),
            (7, 6, 1_700_000_000)
        );
        assert_eq!(snap.root, vec![9; 32]);
        assert_eq!(
            snap.audit,
            Some((3, serde_bytes::ByteBuf::from(vec![5; 32])))
        );
        assert_eq!(snap.unaudited_rollback, Some((1, 2)));
        let records: Vec<_> = snap
            .records
            .into_iter()
            .map(|(ns, key, version, blob, digest)| (ns, key, version, blob, digest.into_vec()))
            .collect();
        assert_eq!(
            records,
            vec![
                ("t/a".into(), "k1".into(), 2, "blob2".into(), vec![2; 32]),
                ("t/a".into(), "k2".into(), 4, "blob4".into(), vec![4; 32]),
                ("t/b".into(), "k1".into(), 6, "blob6".into(), vec![6; 32]),
            ]
        );
    }

    #[test]
    fn snapshots_are_spaced_by_the_larger_of_1024_transitions_and_an_eighth_of_the_records() {
        assert!(!snapshot_due(1023, 0));
        assert!(snapshot_due(1024, 0));
        assert!(snapshot_due(1024, 8192));
        assert!(!snapshot_due(1024, 8200));
        assert!(!snapshot_due(12_499, 100_000));
        assert!(snapshot_due(12_500, 100_000));
    }
}
