//! The enclave's audit log: entries signed and hash-chained here, stored by the host.
//!
//! The enclave keeps the log's head (its size and the hash of its last entry) itself,
//! and anchors it in a sealed state transition every [`ANCHOR_EVERY_ENTRIES`] entries
//! or [`ANCHOR_EVERY`], whichever comes first. At start it reads the log back from the
//! host and refuses to continue a log that does not reach the last anchor, or whose
//! entry there is not the one anchored: a host that truncates or rewrites the log is
//! caught, not silently continued.
//!
//! What the anchor cannot show is the newest entries after it (a crash can lose them
//! too). Signed checkpoints close that gap for whoever keeps one: every receipt
//! carries one, `GET /v1/audit/checkpoint` serves one, and `veritee audit verify
//! --checkpoint FILE` proves a log contains the one kept.
//!
//! Operations by key id (flow 3) are audited as counts, not one entry each: at
//! thousands of operations a second an entry each would be a signature and a few
//! hundred stored bytes per operation, more than the operation itself. Each operation
//! is tallied by tenant, key, operation and outcome; the tally becomes entries
//! ("ok: 523 since 2026-12-07T11:00:01Z") at the first request after
//! [`USAGE_WINDOW`], when it holds [`MAX_USAGE_ROWS`] rows, before any other entry (so
//! the log stays in time order), and before a checkpoint or status is served. The
//! request that turns it into entries waits until they are durable, like any other
//! audited request. What a crash (or a host that stops calling) can lose is the tally
//! of the last window, as it can lose any entry after the last anchor.

use crate::host::{HostLink, HostLinkExt, failure};
use crate::service::{EnclaveService, NodeKeys, internal, lock};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use veritee_audit::checkpoint::{Checkpoint, sign_checkpoint};
use veritee_audit::{AuditBody, entry_hash, genesis_prev, open_entry, sign_entry};
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};

/// The head is anchored in sealed state after at most this many entries...
pub const ANCHOR_EVERY_ENTRIES: u64 = 64;
/// ...or this long after the last anchor, at the next entry.
pub const ANCHOR_EVERY: Duration = Duration::from_secs(5);
/// Entries read per host call when checking the log at start.
const READ_PAGE: u32 = 1000;
/// Most entries appended in one host call (group commit).
const MAX_BATCH: usize = 256;
/// Operations are tallied at most this long before their counts become entries.
pub const USAGE_WINDOW: Duration = Duration::from_secs(1);
/// Distinct (tenant, key, operation, outcome) rows a tally holds before it becomes
/// entries: a flood of distinct refusals cannot grow it.
pub const MAX_USAGE_ROWS: usize = MAX_BATCH;

/// An entry waiting to be signed and appended.
struct QueuedEntry {
    ticket: u64,
    /// Whether a caller waits for its outcome (a tally's entries: only the last).
    awaited: bool,
    action: String,
    tenant: String,
    object: String,
    outcome: String,
}

/// One line of the operations tally: what was done, to what, by whom, how it ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Usage {
    /// The audit action (`crypto.encrypt`, `key_op.sign`...).
    pub action: &'static str,
    /// The tenant whose key (or session) it was.
    pub tenant: String,
    /// The key (`partition/key_id`), or what else the operation names.
    pub object: String,
    /// `ok`, or `refused (code): reason`.
    pub outcome: String,
}

/// Operations counted since the window opened.
#[derive(Default)]
struct UsageTally {
    opened: Option<(Instant, OffsetDateTime)>,
    rows: BTreeMap<Usage, u64>,
}

/// Entries waiting for the log, and the outcomes of those already appended.
///
/// Group commit: a caller queues its entry. If no append is in flight, it becomes the
/// leader: it signs everything queued, in order, and appends it in one host call (one
/// store transaction, one sync). Otherwise it waits, without holding the log's head,
/// for the leader to post the outcome of the batch its entry was in, or to become the
/// next leader. So callers that arrive while an append is in flight share the next one
/// instead of each paying its own, and each returns only once its own entry is durable,
/// or with the error that kept it out.
#[derive(Default)]
pub(crate) struct AuditQueue {
    next_ticket: u64,
    pending: Vec<QueuedEntry>,
    appended: HashMap<u64, Result<(), EnclaveFailure>>,
    leading: bool,
    usage: UsageTally,
}

impl AuditQueue {
    fn take_batch(&mut self) -> Vec<QueuedEntry> {
        let n = self.pending.len().min(MAX_BATCH);
        self.pending.drain(..n).collect()
    }

    /// Queues an entry; its ticket.
    fn queue(
        &mut self,
        awaited: bool,
        action: String,
        tenant: String,
        object: String,
        outcome: String,
    ) -> u64 {
        self.next_ticket += 1;
        self.pending.push(QueuedEntry {
            ticket: self.next_ticket,
            awaited,
            action,
            tenant,
            object,
            outcome,
        });
        self.next_ticket
    }

    /// Turns the tally into queued entries, ahead of whatever is queued next; the
    /// ticket of the last, now awaited, if there were any.
    fn queue_usage(&mut self) -> Option<u64> {
        let (_, since) = self.usage.opened.take()?;
        let since = since
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| since.unix_timestamp().to_string());
        let rows = std::mem::take(&mut self.usage.rows);
        let mut last = None;
        for (usage, count) in rows {
            let outcome = format!("{}: {count} since {since}", usage.outcome);
            last = Some(self.queue(
                false,
                usage.action.into(),
                usage.tenant,
                usage.object,
                outcome,
            ));
        }
        if let Some(entry) = self.pending.last_mut().filter(|e| Some(e.ticket) == last) {
            entry.awaited = true;
        }
        last
    }
}

/// A leader's turn: when it ends, even by unwinding, its batch gets the outcome, the
/// next caller may lead, and waiters wake.
struct LeaderTurn<'s> {
    service: &'s EnclaveService,
    tickets: Vec<u64>,
    outcome: Result<(), EnclaveFailure>,
}

impl Drop for LeaderTurn<'_> {
    fn drop(&mut self) {
        let mut queue = lock(&self.service.audit_queue);
        for ticket in &self.tickets {
            queue.appended.insert(*ticket, self.outcome.clone());
        }
        queue.leading = false;
        self.service.audit_appended.notify_all();
    }
}

/// The log's head as this enclave knows it.
pub(crate) struct AuditHead {
    /// Entries in the log.
    size: u64,
    /// SHA-256 of the last entry (zeros for an empty log).
    head: [u8; 32],
    anchored_size: u64,
    anchored_at: Instant,
}

fn hex32(s: &str) -> Result<[u8; 32], EnclaveFailure> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(internal)?;
    Ok(out)
}

fn audit_refused(reason: String) -> EnclaveFailure {
    failure(
        FailureKind::Unavailable,
        format!("the audit log in the store cannot be continued: {reason}"),
    )
}

impl EnclaveService {
    /// The origin line (and key name) of this node's checkpoints.
    pub(crate) fn checkpoint_origin(&self) -> Result<String, EnclaveFailure> {
        Ok(format!("veritee.audit/{}", self.node_id()?))
    }

    /// Reads the log's tail back from the host and checks it against the anchor.
    fn load_audit_head(
        &self,
        node: &NodeKeys,
        link: &mut dyn HostLink,
    ) -> Result<AuditHead, EnclaveFailure> {
        let anchor = self.audit_anchor(link)?;
        let (anchored_size, anchored_head) = anchor.unwrap_or((0, [0u8; 32]));
        let last = link.log_last(&node.log)?;
        let size = match &last {
            None => 0,
            Some(l) => l
                .seq
                .checked_add(1)
                .ok_or_else(|| audit_refused("its last entry has an impossible number".into()))?,
        };
        if size < anchored_size {
            return Err(audit_refused(format!(
                "it holds {size} entries, but the enclave anchored {anchored_size}: the host truncated it"
            )));
        }
        // Walk from the anchor to the end: every entry ours, numbered and chained.
        let mut expected_prev = anchored_head;
        let mut seq = anchored_size;
        if anchored_size > 0 {
            let at = link.log_read(&node.log, anchored_size - 1, 1)?;
            let matches = at.first().is_some_and(|e| {
                e.seq == anchored_size - 1
                    && hex32(&entry_hash(&e.entry)).ok() == Some(anchored_head)
            });
            if !matches {
                return Err(audit_refused(format!(
                    "entry {} is not the one the enclave anchored: the host rewrote the log",
                    anchored_size - 1
                )));
            }
        }
        while seq < size {
            let page = link.log_read(&node.log, seq, READ_PAGE)?;
            let start = seq;
            // Entries past the last one the host named are not part of this log's head.
            for e in page.into_iter().take_while(|e| e.seq < size) {
                let body = open_entry(e.seq as usize, &e.entry, &node.audit_spki)
                    .map_err(|err| audit_refused(format!("entry {}: {err}", e.seq)))?;
                let prev = if seq == 0 {
                    genesis_prev()
                } else {
                    hex::encode(expected_prev)
                };
                if e.seq != seq || body.seq != seq || body.prev != prev {
                    return Err(audit_refused(format!(
                        "entry {seq} does not follow the one before"
                    )));
                }
                expected_prev = hex32(&entry_hash(&e.entry))?;
                seq += 1;
            }
            if seq == start {
                return Err(audit_refused(format!("entry {seq} is missing")));
            }
        }
        Ok(AuditHead {
            size,
            head: if size == 0 { [0u8; 32] } else { expected_prev },
            anchored_size,
            anchored_at: Instant::now(),
        })
    }

    /// Runs `f` with the loaded audit head.
    fn with_audit_head<T>(
        &self,
        link: &mut dyn HostLink,
        f: impl FnOnce(&NodeKeys, &mut AuditHead, &mut dyn HostLink) -> Result<T, EnclaveFailure>,
    ) -> Result<T, EnclaveFailure> {
        let node = self.node(link)?;
        let mut slot = lock(&self.audit);
        if slot.is_none() {
            *slot = Some(self.load_audit_head(&node, link)?);
        }
        let Some(head) = slot.as_mut() else {
            return Err(internal("audit head missing"));
        };
        let result = f(&node, head, link);
        if result.is_err() {
            // Our view of the log may be stale, or the host interfered: re-read it.
            *slot = None;
        }
        result
    }

    /// Appends a signed entry to the audit log (durable before it returns). Concurrent
    /// callers share appends (see [`AuditQueue`]).
    pub(crate) fn audit(
        &self,
        link: &mut dyn HostLink,
        action: &str,
        tenant: &str,
        object: &str,
        outcome: &str,
    ) -> Result<(), EnclaveFailure> {
        let mut queue = lock(&self.audit_queue);
        // Operations tallied so far happened before this entry's event.
        queue.queue_usage();
        let ticket = queue.queue(
            true,
            action.into(),
            tenant.into(),
            object.into(),
            outcome.into(),
        );
        self.await_appended(link, queue, ticket)
    }

    /// Counts operations in the tally (see the module's documentation); once its
    /// window has passed or it is full, turns it into entries and returns when they
    /// are durable.
    pub(crate) fn audit_usage(
        &self,
        link: &mut dyn HostLink,
        used: impl IntoIterator<Item = (Usage, u64)>,
    ) -> Result<(), EnclaveFailure> {
        let mut queue = lock(&self.audit_queue);
        for (usage, count) in used {
            if queue.usage.opened.is_none() {
                queue.usage.opened = Some((Instant::now(), self.clock().now()));
            }
            *queue.usage.rows.entry(usage).or_insert(0) += count;
        }
        let due = queue
            .usage
            .opened
            .is_some_and(|(at, _)| at.elapsed() >= USAGE_WINDOW)
            || queue.usage.rows.len() >= MAX_USAGE_ROWS;
        if !due {
            return Ok(());
        }
        match queue.queue_usage() {
            Some(ticket) => self.await_appended(link, queue, ticket),
            None => Ok(()),
        }
    }

    /// Turns whatever the tally holds into entries now, durable when this returns.
    pub(crate) fn flush_usage(&self, link: &mut dyn HostLink) -> Result<(), EnclaveFailure> {
        let mut queue = lock(&self.audit_queue);
        match queue.queue_usage() {
            Some(ticket) => self.await_appended(link, queue, ticket),
            None => Ok(()),
        }
    }

    /// Waits for the append of `ticket`, leading appends while none is in flight.
    fn await_appended<'s>(
        &'s self,
        link: &mut dyn HostLink,
        mut queue: std::sync::MutexGuard<'s, AuditQueue>,
        ticket: u64,
    ) -> Result<(), EnclaveFailure> {
        loop {
            if let Some(done) = queue.appended.remove(&ticket) {
                return done;
            }
            if queue.leading {
                queue = self
                    .audit_appended
                    .wait(queue)
                    .unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Lead: every queued entry (ours among them, or older ones first) goes out
            // in the next append. The queue stays open to newcomers meanwhile.
            queue.leading = true;
            let batch = queue.take_batch();
            drop(queue);
            let mut turn = LeaderTurn {
                service: self,
                tickets: batch
                    .iter()
                    .filter(|e| e.awaited)
                    .map(|e| e.ticket)
                    .collect(),
                outcome: Err(internal("the audit append did not finish")),
            };
            turn.outcome = self.with_audit_head(link, |node, h, link| {
                self.append_batch(node, h, link, &batch)
            });
            drop(turn);
            queue = lock(&self.audit_queue);
        }
    }

    /// Signs `batch` in order, chained from the head, and appends it in one host call.
    fn append_batch(
        &self,
        node: &NodeKeys,
        h: &mut AuditHead,
        link: &mut dyn HostLink,
        batch: &[QueuedEntry],
    ) -> Result<(), EnclaveFailure> {
        let mut entries = Vec::with_capacity(batch.len());
        let (mut size, mut head) = (h.size, h.head);
        for queued in batch {
            // Read under the log's lock, so entries are in time order too.
            let time = self.clock().now();
            let entry = sign_entry(
                &node.audit_key,
                &AuditBody {
                    seq: size,
                    prev: if size == 0 {
                        genesis_prev()
                    } else {
                        hex::encode(head)
                    },
                    time,
                    action: queued.action.clone(),
                    tenant: queued.tenant.clone(),
                    object: queued.object.clone(),
                    outcome: queued.outcome.clone(),
                },
            )
            .map_err(internal)?;
            head = hex32(&entry_hash(&entry))?;
            size += 1;
            entries.push(entry);
        }
        link.log_append_entries(&node.log, h.size, entries)?;
        h.size = size;
        h.head = head;
        if h.size - h.anchored_size >= ANCHOR_EVERY_ENTRIES
            || h.anchored_at.elapsed() >= ANCHOR_EVERY
        {
            self.anchor_audit(link, (h.size, h.head))?;
            h.anchored_size = h.size;
            h.anchored_at = Instant::now();
        }
        Ok(())
    }

    /// Entries in the log.
    pub(crate) fn audit_size(&self, link: &mut dyn HostLink) -> Result<u64, EnclaveFailure> {
        self.with_audit_head(link, |_, h, _| Ok(h.size))
    }

    /// A signed checkpoint of the log as it stands (C2SP signed note), and the size it
    /// names: what a client keeps to detect a truncated or rewritten log later. With
    /// `anchor`, the head is anchored in sealed state first, so the enclave itself also
    /// refuses to continue a log cut below it; without (a key receipt's checkpoint, on
    /// the hot path), the periodic anchor covers it soon after, and until then the
    /// checkpoint's holder is the one who would catch a cut: a log continued after one
    /// disagrees with the checkpoint.
    pub(crate) fn signed_checkpoint(
        &self,
        link: &mut dyn HostLink,
        anchor: bool,
    ) -> Result<(String, u64), EnclaveFailure> {
        let origin = self.checkpoint_origin()?;
        self.with_audit_head(link, |node, h, link| {
            if anchor && h.anchored_size != h.size {
                self.anchor_audit(link, (h.size, h.head))?;
                h.anchored_size = h.size;
                h.anchored_at = Instant::now();
            }
            let note = sign_checkpoint(
                &node.checkpoint_key,
                &origin,
                &Checkpoint {
                    origin: origin.clone(),
                    size: h.size,
                    head: h.head,
                },
            )
            .map_err(internal)?;
            Ok((note, h.size))
        })
    }

    pub(crate) fn checkpoint(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        self.flush_usage(link)?;
        Ok(EnclaveReply::Checkpoint {
            note: self.signed_checkpoint(link, true)?.0,
        })
    }

    /// Writes the audit entry of a store rollback the operator accepted at load.
    pub(crate) fn audit_pending_rollback(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        let Some((store, platform)) = *lock(&self.pending_rollback) else {
            return Ok(());
        };
        self.audit(
            link,
            "state.rollback-accepted",
            "node",
            "store",
            &format!(
                "accepted by the operator: the store's state journal ended at {store}, the platform counter was at {platform}"
            ),
        )?;
        // Until this transition is counted, every start audits the acceptance again: a
        // host that kills the enclave in between gets a second entry, never none.
        self.with_audit_head(link, |_, h, link| {
            self.rollback_audited(link, (h.size, h.head))?;
            h.anchored_size = h.size;
            h.anchored_at = Instant::now();
            Ok(())
        })?;
        *lock(&self.pending_rollback) = None;
        Ok(())
    }
}
