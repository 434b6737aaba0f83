//! Trusted tasks inside the enclave: answer a task initiation with an attestation
//! signal, accept the key delivery, run the compartments over inputs decrypted on
//! demand from the spool, and return results only the client can read.
//!
//! The spool is a directory the host writes the client's encrypted uploads to
//! (`<spool>/<tenant>/<task>/<compartment>/module` and `.../input-<i>`, each in the
//! veritee-stream format under the compartment's DEK, its header's context naming the
//! task, compartment and slot). The enclave reads it directly and trusts none of it:
//! a file for another slot is refused, every chunk is authenticated when read, and a
//! file cut short fails at its new last chunk.

use crate::host::{HostLink, failure};
use crate::import::crypto::{Granted, GrantedKeys};
use crate::service::{EnclaveService, bad, internal, lock};
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_import::keys::KeyRef;
use veritee_proto::api::paths;
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind, SignedRequest};
use veritee_stream::{ChunkOpener, Header, StreamKey, TAG_LEN};
use veritee_task::keys::{DeliveredKeys, Key256, open_delivery};
use veritee_task::messages::{TaskInitiation, initiation_digest, signal_binding, slot_context};
use veritee_task::results::{
    CompartmentOutput, CompartmentStatus, Part, PartOf, ResultBody, seal_envelope, seal_part,
    seal_status,
};
use veritee_wasm::{
    Access, CompartmentSpec, Input, InputSource, KeyService, SecurityContext, TaskLimits, TaskSpec,
};
use zeroize::Zeroizing;

const MAX_TASKS: usize = 64;
/// Tasks one tenant may have waiting: a quarter of the provider's room, so that one
/// tenant initiating in a loop leaves room for others.
pub const MAX_WAITING_TASKS_PER_TENANT: usize = MAX_TASKS / 4;
const TASK_IDLE: Duration = Duration::from_secs(30 * 60);
/// Largest module accepted.
pub const MAX_MODULE_LEN: u64 = 64 * 1024 * 1024;

/// The node's ceiling on what a task may ask for.
pub fn node_limits() -> TaskLimits {
    TaskLimits {
        fuel: 2_000_000_000_000,
        memory_bytes: 1 << 30,
        table_elements: 100_000,
        output_bytes: 64 << 20,
        log_bytes: 64 << 10,
        timeout: Duration::from_secs(600),
    }
}

/// When a task's keys are looked at: its initiation only checks them, its run grants.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Initiation,
    Run,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Initiation => "initiation",
            Self::Run => "run",
        }
    }
}

/// A task between initiation and run.
pub(crate) struct TaskState {
    initiation: TaskInitiation,
    digest: [u8; 32],
    skek: HpkeKeyPair,
    keys: Option<DeliveredKeys>,
    created: Instant,
}

/// A task is its tenant's: ids are scoped per tenant, so no tenant can reach another's.
type TaskId = (String, String);

/// Task ids remembered after their task ended, so none is used twice.
const FINISHED_REMEMBERED: usize = 100_000;

/// How long this enclave reuses the claims its own evidence verified to, for the
/// courtesy check of a task's policy (what it measures does not change while it
/// runs; its collateral's standing is looked at again after this long). The client's
/// own appraisal of fresh evidence is what protects it; this check only spares it a
/// task the provider knows it would refuse.
const OWN_CLAIMS_REUSE: Duration = Duration::from_secs(60);

/// The in-memory task table.
#[derive(Default)]
pub(crate) struct Tasks {
    /// Initiated tasks, not yet run.
    waiting: HashMap<TaskId, TaskState>,
    /// Tasks running now, with the flag that withdraws them.
    running: HashMap<TaskId, Arc<AtomicBool>>,
    /// Ids of tasks that ended (ran, or were withdrawn), oldest first.
    finished: std::collections::HashSet<TaskId>,
    finished_order: std::collections::VecDeque<TaskId>,
    /// This enclave's own claims as its last self-check verified them, and when.
    own_claims: Option<(veritee_attest::Claims, Instant)>,
}

impl Tasks {
    /// Whether a new task `id` may be held: room for it, and an id never used before.
    fn admit(&self, id: &TaskId) -> Result<(), EnclaveFailure> {
        if self.waiting.len() >= MAX_TASKS {
            return Err(failure(
                FailureKind::Unavailable,
                "this provider holds too many tasks; try another",
            ));
        }
        let tenant_waiting = self.waiting.keys().filter(|(t, _)| *t == id.0).count();
        if tenant_waiting >= MAX_WAITING_TASKS_PER_TENANT {
            return Err(failure(
                FailureKind::TooMany,
                format!(
                    "this tenant has {tenant_waiting} tasks waiting here, the most one \
                     tenant may: run or cancel one first"
                ),
            ));
        }
        if self.waiting.contains_key(id)
            || self.running.contains_key(id)
            || self.finished.contains(id)
        {
            return Err(failure(
                FailureKind::Conflict,
                "this task id was used already: a task id is never reused",
            ));
        }
        Ok(())
    }

    fn remember_finished(&mut self, id: TaskId) {
        if self.finished.insert(id.clone()) {
            self.finished_order.push_back(id);
        }
        while self.finished_order.len() > FINISHED_REMEMBERED {
            if let Some(old) = self.finished_order.pop_front() {
                self.finished.remove(&old);
            }
        }
    }
}

/// How often a read waiting for its bytes looks again.
const ARRIVAL_POLL: Duration = Duration::from_millis(2);
/// Chunks decrypted ahead of the guest, per input.
const CHUNKS_AHEAD: usize = 2;

fn invalid(e: impl core::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// The error of a read the client's withdrawal of its task stopped.
fn withdrawn_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Interrupted,
        "the client withdrew the task while it was arriving",
    )
}

/// Waits until `file` holds at least `at_least` bytes; without a deadline, only checks.
/// Gives up early once `stop` is set (nobody wants the bytes any more) or the task is
/// withdrawn.
fn wait_for(
    file: &std::fs::File,
    at_least: u64,
    layout: &Layout,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    loop {
        if file.metadata()?.len() >= at_least {
            return Ok(());
        }
        match layout.deadline {
            _ if layout.withdrawn.load(Ordering::Relaxed) => return Err(withdrawn_error()),
            _ if stop.load(Ordering::Relaxed) => {
                return Err(std::io::Error::other("the read was abandoned"));
            }
            Some(d) if Instant::now() < d => std::thread::sleep(ARRIVAL_POLL),
            Some(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "it did not arrive before the task's deadline",
                ));
            }
            None => return Err(invalid("it ends early (truncated)")),
        }
    }
}

/// Where a spool file's chunks lie and how long to wait for them: everything needed
/// to find and open chunk `i`.
#[derive(Clone)]
struct Layout {
    header_len: u64,
    chunk_size: u64,
    /// Plaintext length: fixes which chunk is the final one and where it ends.
    len: u64,
    deadline: Option<Instant>,
    /// Set when the client withdraws the task: waiting stops.
    withdrawn: Arc<AtomicBool>,
}

impl Layout {
    fn chunks(&self) -> u64 {
        self.len.div_ceil(self.chunk_size).max(1)
    }

    /// Reads chunk `index` into `buffer` (reused: ciphertext in, plaintext out in place),
    /// waiting for it to arrive, and opens it.
    fn load(
        &self,
        file: &std::fs::File,
        opener: &mut ChunkOpener,
        index: u64,
        buffer: &mut Zeroizing<Vec<u8>>,
        stop: &AtomicBool,
    ) -> std::io::Result<()> {
        let sealed = self.chunk_size + TAG_LEN as u64;
        let start = self.header_len + index * sealed;
        let last = index + 1 == self.chunks();
        let want = if last {
            self.len - index * self.chunk_size + TAG_LEN as u64
        } else {
            sealed
        };
        buffer.resize(want as usize, 0);
        wait_for(file, start + want, self, stop)?;
        file.read_exact_at(buffer, start)?;
        let plain_len = opener
            .open_in_place(index, buffer, last)
            .map_err(invalid)?
            .len();
        buffer.truncate(plain_len);
        Ok(())
    }
}

/// A spool file whose header has been read and checked.
struct OpenSpool {
    file: std::fs::File,
    key: StreamKey,
    header: Header,
    opener: ChunkOpener,
    layout: Layout,
    /// The chunk the guest reads now: (index, plaintext).
    chunk: Option<(u64, Zeroizing<Vec<u8>>)>,
    /// Chunks decrypted ahead, while the guest reads in order.
    ahead: Option<ReadAhead>,
}

/// What a spool file must be: under the compartment's DEK, and bound (by its stream
/// header's authenticated context) to the task, compartment and slot it fills.
#[derive(Clone)]
struct SlotKey {
    dek: Key256,
    context: Vec<u8>,
}

impl OpenSpool {
    /// Opens `path` and checks its header under the slot's key and context, waiting
    /// until `deadline` (if any) for the file and its header to arrive.
    fn open(
        path: &Path,
        slot: &SlotKey,
        deadline: Option<Instant>,
        withdrawn: &Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let waiting = || {
            if withdrawn.load(Ordering::Relaxed) {
                return Err(withdrawn_error());
            }
            Ok(deadline.is_some_and(|d| Instant::now() < d))
        };
        let file = loop {
            match std::fs::File::open(path) {
                Ok(file) => break file,
                Err(_) if waiting()? => std::thread::sleep(ARRIVAL_POLL),
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("{e} (was it uploaded?)"),
                    ));
                }
            }
        };
        let (header, header_len) = loop {
            let have = file.metadata()?.len();
            let mut head = vec![0u8; (veritee_stream::MAX_HEADER_LEN as u64).min(have) as usize];
            file.read_exact_at(&mut head, 0)?;
            match Header::parse(&head) {
                Ok(parsed) => break parsed,
                Err(veritee_stream::StreamError::HeaderTruncated) if waiting()? => {
                    std::thread::sleep(ARRIVAL_POLL);
                }
                Err(e) => return Err(invalid(e)),
            }
        };
        let key = StreamKey::new(&slot.dek);
        let opener = ChunkOpener::new(&key, &header)
            .map_err(|e| invalid(format!("not under this compartment's key: {e}")))?;
        // Authenticated now that the header tag checked: a file made for another slot
        // (swapped, duplicated or reordered by the host) is refused here.
        if header.context() != slot.context.as_slice() {
            return Err(invalid(format!(
                "it is not this slot's file: its authenticated context names {:?}",
                String::from_utf8_lossy(header.context()).replace('\0', "/")
            )));
        }
        Ok(Self {
            file,
            key,
            layout: Layout {
                header_len: header_len as u64,
                chunk_size: u64::from(header.chunk_size()),
                len: 0,
                deadline,
                withdrawn: Arc::clone(withdrawn),
            },
            header,
            opener,
            chunk: None,
            ahead: None,
        })
    }

    /// Makes chunk `index` the current one: from the read-ahead when the guest reads in
    /// order (starting one on the first such step), directly otherwise.
    fn seek(&mut self, index: u64) -> std::io::Result<()> {
        let previous = self.chunk.as_ref().map(|(i, _)| *i);
        let in_order = previous.map_or(index == 0, |p| index == p + 1);
        if self.ahead.as_ref().is_some_and(|a| a.next != index) {
            self.ahead = None;
        }
        if self.ahead.is_none() && in_order && index + 1 < self.layout.chunks() {
            self.ahead = Some(ReadAhead::start(self, index)?);
        }
        let spent = self.chunk.take().map(|(_, b)| b);
        let plain = match &mut self.ahead {
            Some(ahead) => ahead.take(spent).inspect_err(|_| {
                // A retry reads directly, and meets the same error again.
                self.ahead = None;
            })?,
            None => {
                let mut buffer = spent.unwrap_or_default();
                self.layout.load(
                    &self.file,
                    &mut self.opener,
                    index,
                    &mut buffer,
                    &AtomicBool::new(false),
                )?;
                buffer
            }
        };
        self.chunk = Some((index, plain));
        Ok(())
    }
}

/// Decrypts an input's chunks in order on a thread of its own, a few ahead of the
/// guest, so the guest's thread spends its time in the guest. Dropping it stops the
/// thread and waits for it.
struct ReadAhead {
    /// The index the next chunk from `ready` has.
    next: u64,
    ready: Option<std::sync::mpsc::Receiver<std::io::Result<Zeroizing<Vec<u8>>>>>,
    /// Buffers the guest is done with, back to the thread for reuse.
    spent: std::sync::mpsc::Sender<Zeroizing<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReadAhead {
    fn start(spool: &OpenSpool, first: u64) -> std::io::Result<Self> {
        let file = spool.file.try_clone()?;
        let mut opener = ChunkOpener::new(&spool.key, &spool.header).map_err(invalid)?;
        let layout = spool.layout.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = std::sync::mpsc::sync_channel(CHUNKS_AHEAD);
        let (spent, spent_rx) = std::sync::mpsc::channel::<Zeroizing<Vec<u8>>>();
        let halt = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("veritee-read-ahead".into())
            .spawn(move || {
                for index in first..layout.chunks() {
                    let mut buffer = spent_rx.try_recv().unwrap_or_default();
                    let loaded = layout.load(&file, &mut opener, index, &mut buffer, &halt);
                    let failed = loaded.is_err();
                    if ready_tx.send(loaded.map(|()| buffer)).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(Self {
            next: first,
            ready: Some(ready),
            spent,
            stop,
            thread: Some(thread),
        })
    }

    /// The next chunk's plaintext, handing back the buffer of the one before.
    fn take(&mut self, spent: Option<Zeroizing<Vec<u8>>>) -> std::io::Result<Zeroizing<Vec<u8>>> {
        if let Some(buffer) = spent {
            // The thread may have finished; the buffer is then simply dropped.
            let _ = self.spent.send(buffer);
        }
        let chunk = self
            .ready
            .as_ref()
            .and_then(|r| r.recv().ok())
            .unwrap_or_else(|| Err(std::io::Error::other("the read-ahead stopped")))?;
        self.next += 1;
        Ok(chunk)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // A thread blocked handing over a chunk sees the channel close.
        self.ready = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A module or input decrypted chunk by chunk from its spool file, on demand.
///
/// A module is uploaded whole before the run and opened at once. An input may still be
/// arriving while the task runs: its plaintext length is the one the initiation
/// declared, it is opened on first read, and each read waits for its chunk (until the
/// task's deadline). Where its final chunk must end follows from that length, so a host
/// that truncates or extends the upload is caught when that chunk does not
/// authenticate as the final one.
struct SpoolInput {
    path: PathBuf,
    slot: SlotKey,
    len: u64,
    deadline: Option<Instant>,
    withdrawn: Arc<AtomicBool>,
    state: Mutex<Option<OpenSpool>>,
}

impl SpoolInput {
    /// A module, uploaded whole: opened now, as long as its file says.
    fn module(path: &Path, slot: &SlotKey) -> std::io::Result<Self> {
        let withdrawn = Arc::new(AtomicBool::new(false));
        let mut spool = OpenSpool::open(path, slot, None, &withdrawn)?;
        // The host may shrink the file after its header was read.
        let body = spool
            .file
            .metadata()?
            .len()
            .checked_sub(spool.layout.header_len)
            .ok_or_else(|| invalid("shorter than its own header"))?;
        let sealed = spool.layout.chunk_size + TAG_LEN as u64;
        let chunks = body.div_ceil(sealed).max(1);
        let last_sealed = body - (chunks - 1) * sealed;
        if last_sealed < TAG_LEN as u64 {
            return Err(invalid("truncated inside its last chunk"));
        }
        let len = (chunks - 1) * spool.layout.chunk_size + last_sealed - TAG_LEN as u64;
        spool.layout.len = len;
        Ok(Self {
            path: path.to_path_buf(),
            slot: slot.clone(),
            len,
            deadline: None,
            withdrawn,
            state: Mutex::new(Some(spool)),
        })
    }

    /// An input of `len` plaintext bytes that may still be arriving until `deadline`,
    /// or until `withdrawn` is set.
    fn arriving(
        path: &Path,
        slot: &SlotKey,
        len: u64,
        deadline: Instant,
        withdrawn: &Arc<AtomicBool>,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            slot: slot.clone(),
            len,
            deadline: Some(deadline),
            withdrawn: Arc::clone(withdrawn),
            state: Mutex::new(None),
        }
    }

    /// The whole plaintext (modules only: they are small).
    fn read_all(&self) -> std::io::Result<Vec<u8>> {
        let mut out = vec![0u8; self.len as usize];
        let mut at = 0;
        while at < out.len() {
            let n = self.read_at(at as u64, &mut out[at..])?;
            if n == 0 {
                break;
            }
            at += n;
        }
        Ok(out)
    }
}

impl InputSource for SpoolInput {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let spool = match &mut *guard {
            Some(spool) => spool,
            empty => {
                let mut spool =
                    OpenSpool::open(&self.path, &self.slot, self.deadline, &self.withdrawn)?;
                spool.layout.len = self.len;
                empty.insert(spool)
            }
        };
        let index = offset / spool.layout.chunk_size;
        if spool.chunk.as_ref().is_none_or(|(i, _)| *i != index) {
            spool.seek(index)?;
        }
        let Some((_, plain)) = spool.chunk.as_ref() else {
            return Ok(0);
        };
        let within = (offset - index * spool.layout.chunk_size) as usize;
        let n = buf.len().min(plain.len().saturating_sub(within));
        buf[..n].copy_from_slice(&plain[within..within + n]);
        Ok(n)
    }
}

impl EnclaveService {
    /// The spool directory of a tenant's task: tenants' uploads never share a path.
    /// The directory the host spools a task's uploads to.
    fn spool(&self, tenant: &str, task_id: &str) -> Result<PathBuf, EnclaveFailure> {
        Ok(self.spool_root()?.join(tenant).join(task_id))
    }

    /// The spool root: a node without one runs no tasks.
    fn spool_root(&self) -> Result<&Path, EnclaveFailure> {
        self.spool_root.as_deref().ok_or_else(|| {
            failure(
                FailureKind::Unavailable,
                "this node runs no tasks (no spool directory)",
            )
        })
    }

    /// Why this enclave's own evidence does not meet `policy_text`, if it does not: a
    /// provider declines a task whose policy it cannot meet before the client learns
    /// anything more (the client appraises regardless).
    fn own_policy_refusal(
        &self,
        policy_text: &str,
        evidence: &[u8],
        binding: &veritee_attest::ReportData,
    ) -> Option<String> {
        let policy = match veritee_policy::AppraisalPolicy::parse(policy_text) {
            Ok(p) => p,
            Err(e) => return Some(format!("the task's policy is unusable: {e}")),
        };
        if self.peer_anchors.is_empty() {
            // Without anchors this enclave cannot judge its own evidence as a client
            // would; it says nothing, and the client appraises it regardless.
            return None;
        }
        let at = self.clock().now();
        let reused = lock(&self.tasks)
            .own_claims
            .as_ref()
            .filter(|(_, verified)| verified.elapsed() < OWN_CLAIMS_REUSE)
            .map(|(claims, _)| claims.clone());
        let claims = match reused {
            // The evidence at hand was made just now, like the one verified earlier.
            Some(mut claims) => {
                if claims.evidence_time.is_some() {
                    claims.evidence_time = Some(at);
                }
                claims
            }
            None => {
                match veritee_verify::Verifiers::default().verify(&veritee_verify::VerifyRequest {
                    evidence,
                    tee: None,
                    collateral: &[],
                    trust_anchors: &self.peer_anchors,
                    expected_report_data: Some(&binding.0),
                    at,
                }) {
                    Ok(claims) => {
                        lock(&self.tasks).own_claims = Some((claims.clone(), Instant::now()));
                        claims
                    }
                    Err(e) => {
                        return Some(format!(
                            "this provider cannot verify its own evidence to check the task's policy: {e}"
                        ));
                    }
                }
            }
        };
        let appraisal = policy.evaluate(&claims, at);
        (!appraisal.accepted()).then(|| {
            appraisal
                .failed
                .iter()
                .map(|f| format!("{}: {}", f.criterion, f.reason))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    pub(crate) fn task_initiate(
        &self,
        request: &SignedRequest,
        bytes: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::tasks(), bytes, link)?;
        self.spool_root()?;
        let initiation = TaskInitiation::parse(bytes).map_err(bad)?;
        // Refused now rather than after the client has uploaded its inputs; granted
        // (looked at again) only when the task runs.
        self.grant_keys(
            &tenant,
            &initiation.task_id,
            &initiation,
            Stage::Initiation,
            link,
        )?;
        let digest = initiation_digest(bytes);
        let nonce = hex::decode(&initiation.nonce).map_err(bad)?;
        let skek = HpkeKeyPair::generate();
        let id = (tenant.clone(), initiation.task_id.clone());
        let load = {
            let mut tasks = lock(&self.tasks);
            let now = Instant::now();
            tasks
                .waiting
                .retain(|_, t| now.duration_since(t.created) < TASK_IDLE);
            tasks.admit(&id)?;
            // Tasks held: initiated and running alike.
            (tasks.waiting.len() + tasks.running.len()) as u32
        };
        let binding = signal_binding(skek.public_key().as_bytes(), &nonce, &digest, load);
        let evidence = self.platform().evidence(&binding).map_err(internal)?;
        if let Some(reason) = self.own_policy_refusal(&initiation.policy, &evidence, &binding) {
            return Err(failure(
                FailureKind::Unauthorized,
                format!(
                    "this provider declines the task: its own evidence does not meet the task's policy: {reason}"
                ),
            ));
        }
        let skek_public = skek.public_key().as_bytes().to_vec();
        // Checked again: the lock was released while the evidence was made.
        let mut tasks = lock(&self.tasks);
        tasks.admit(&id)?;
        tasks.waiting.insert(
            id,
            TaskState {
                initiation,
                digest,
                skek,
                keys: None,
                created: Instant::now(),
            },
        );
        Ok(EnclaveReply::TaskSignal {
            skek: skek_public,
            evidence,
            load,
        })
    }

    pub(crate) fn task_keys(
        &self,
        request: &SignedRequest,
        task_id: &str,
        delivery: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant =
            self.authenticate(request, "POST", &paths::task_keys(task_id), delivery, link)?;
        let mut tasks = lock(&self.tasks);
        let task = tasks
            .waiting
            .get_mut(&(tenant, task_id.to_string()))
            .ok_or_else(|| failure(FailureKind::NotFound, "unknown or expired task"))?;
        let ckek = task.initiation.client_kx_bytes().map_err(bad)?;
        let keys = open_delivery(&task.skek, &task.digest, &ckek, delivery).map_err(bad)?;
        for c in &task.initiation.compartments {
            if !keys.deks.iter().any(|(n, _)| n == &c.name) {
                return Err(bad(format!(
                    "the key delivery has no data key for compartment {}",
                    c.name
                )));
            }
        }
        task.keys = Some(keys);
        Ok(EnclaveReply::TaskKeysAccepted)
    }

    pub(crate) fn task_run(
        &self,
        request: &SignedRequest,
        task_id: &str,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::task_run(task_id), b"", link)?;
        let id = (tenant.clone(), task_id.to_string());
        let withdrawn = Arc::new(AtomicBool::new(false));
        let task = {
            let mut tasks = lock(&self.tasks);
            match tasks.waiting.get(&id) {
                Some(t) if t.keys.is_some() => {
                    tasks.running.insert(id.clone(), Arc::clone(&withdrawn));
                    tasks.waiting.remove(&id)
                }
                Some(_) => {
                    return Err(failure(
                        FailureKind::BadRequest,
                        "the task's keys have not been delivered",
                    ));
                }
                None => None,
            }
        };
        let Some(task) = task else {
            return Err(failure(FailureKind::NotFound, "unknown or expired task"));
        };
        let result = self.spool(&tenant, task_id).and_then(|spool| {
            let result = self
                .grant_keys(&tenant, task_id, &task.initiation, Stage::Run, link)
                .and_then(|granted| {
                    let result = self.execute(&tenant, &task, &spool, &withdrawn, &granted);
                    // The keys' uses are counted whatever became of the run.
                    let used = granted.values().flat_map(|g| g.take_usage());
                    self.audit_usage(link, used)?;
                    result
                });
            let _ = std::fs::remove_dir_all(&spool);
            result
        });
        {
            let mut tasks = lock(&self.tasks);
            tasks.running.remove(&id);
            tasks.remember_finished(id);
        }
        match result {
            Ok(envelope) => {
                self.audit(link, "task.run", &tenant, task_id, "ok")?;
                Ok(EnclaveReply::TaskResult { envelope })
            }
            Err(e) => {
                self.audit(
                    link,
                    "task.run",
                    &tenant,
                    task_id,
                    &format!("failed: {}", e.message),
                )?;
                Err(e)
            }
        }
    }

    /// Withdraws a task of the signing tenant: one not yet run is forgotten; a running
    /// one stops waiting for inputs still arriving and its guest is stopped at its next
    /// fuel yield, and its run fails saying so.
    pub(crate) fn task_cancel(
        &self,
        request: &SignedRequest,
        task_id: &str,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let tenant = self.authenticate(request, "POST", &paths::task_cancel(task_id), b"", link)?;
        let id = (tenant, task_id.to_string());
        let mut tasks = lock(&self.tasks);
        if let Some(withdrawn) = tasks.running.get(&id) {
            withdrawn.store(true, Ordering::Relaxed);
            return Ok(EnclaveReply::TaskCancelled { was_running: true });
        }
        if tasks.waiting.remove(&id).is_some() {
            tasks.remember_finished(id);
            return Ok(EnclaveReply::TaskCancelled { was_running: false });
        }
        Err(failure(FailureKind::NotFound, "unknown or expired task"))
    }

    /// The stored keys each compartment names, loaded as session operations load
    /// them, in the owner's namespace, and granted only if their metadata allow tasks
    /// that `signer` initiated: the first that is not refuses the whole task, named.
    /// One audit entry for the key refused, and when the task runs, one per key granted.
    fn grant_keys(
        &self,
        signer: &str,
        task_id: &str,
        init: &TaskInitiation,
        stage: Stage,
        link: &mut dyn HostLink,
    ) -> Result<HashMap<String, Arc<GrantedKeys>>, EnclaveFailure> {
        let mut granted = HashMap::new();
        let mut audited = Vec::new();
        for c in &init.compartments {
            let named = c.named_keys().map_err(bad)?;
            if named.is_empty() {
                continue;
            }
            let mut keys = Vec::with_capacity(named.len());
            for n in &named {
                let owner = n.owner_or(signer);
                let key = KeyRef::new(&n.partition, &n.key_id);
                let object = format!("{owner}/{key}");
                match self.task_key(owner, &key, signer, link) {
                    Ok(loaded) => {
                        keys.push(Granted {
                            owner: owner.to_string(),
                            key,
                            loaded: Ok(loaded),
                        });
                        audited.push((object, c.name.as_str()));
                    }
                    Err(f) => {
                        self.audit(
                            link,
                            "task.key",
                            signer,
                            &object,
                            &format!(
                                "refused at {}: task {task_id}, compartment {}: {}",
                                stage.as_str(),
                                c.name,
                                f.message
                            ),
                        )?;
                        return Err(failure(
                            f.kind,
                            format!(
                                "the task is refused: compartment {} names key {n}: {}",
                                c.name, f.message
                            ),
                        ));
                    }
                }
            }
            let user = format!("task {task_id} of tenant {signer}, compartment {}", c.name);
            granted.insert(
                c.name.clone(),
                Arc::new(GrantedKeys::new(
                    keys,
                    Arc::clone(&self.disabled_keys),
                    user,
                )),
            );
        }
        if stage == Stage::Initiation {
            return Ok(HashMap::new());
        }
        for (object, compartment) in audited {
            self.audit(
                link,
                "task.key",
                signer,
                &object,
                &format!("ok: granted to task {task_id}, compartment {compartment}"),
            )?;
        }
        Ok(granted)
    }

    fn execute(
        &self,
        tenant: &str,
        task: &TaskState,
        spool: &Path,
        withdrawn: &Arc<AtomicBool>,
        granted: &HashMap<String, Arc<GrantedKeys>>,
    ) -> Result<Vec<u8>, EnclaveFailure> {
        let Some(keys) = &task.keys else {
            return Err(failure(
                FailureKind::BadRequest,
                "the task's keys have not been delivered",
            ));
        };
        let dek = |name: &str| keys.deks.iter().find(|(n, _)| n == name).map(|(_, k)| k);
        let init = &task.initiation;
        let ceiling = node_limits();
        let asked = &init.limits;
        let limits = TaskLimits {
            fuel: asked.fuel.unwrap_or(10_000_000_000).min(ceiling.fuel),
            memory_bytes: asked
                .memory_bytes
                .unwrap_or(256 << 20)
                .min(ceiling.memory_bytes),
            output_bytes: asked
                .output_bytes
                .unwrap_or(16 << 20)
                .min(ceiling.output_bytes),
            timeout: asked
                .timeout_ms
                .map_or(Duration::from_secs(60), Duration::from_millis)
                .min(ceiling.timeout),
            ..ceiling
        };
        // Inputs may still be arriving: a read waits for its chunk until the task's own
        // wall-clock limit, which also bounds the run itself.
        // Every compartment may grow to the limit; held until the task ends.
        let compartments_bytes = limits
            .memory_bytes
            .saturating_mul(init.compartments.len() as u64);
        let _memory = self
            .memory_budget
            .reserve(compartments_bytes, &format!("task {}", init.task_id))?;
        let deadline = Instant::now() + limits.timeout;
        let mut compartments = Vec::with_capacity(init.compartments.len());
        for c in &init.compartments {
            veritee_channel::ops::check_name(&c.name).map_err(bad)?;
            let key = dek(&c.name).ok_or_else(|| bad(format!("no data key for {}", c.name)))?;
            let dir = spool.join(&c.name);
            let slot = |name: &str| SlotKey {
                dek: key.clone(),
                context: slot_context(&init.task_id, &c.name, name),
            };
            let module = SpoolInput::module(&dir.join("module"), &slot("module"))
                .map_err(|e| bad(format!("the module of {}: {e}", c.name)))?;
            if module.len > MAX_MODULE_LEN {
                return Err(bad(format!(
                    "the module of {} is larger than {MAX_MODULE_LEN} bytes",
                    c.name
                )));
            }
            let module = module
                .read_all()
                .map_err(|e| bad(format!("the module of {} does not decrypt: {e}", c.name)))?;
            let mut inputs = Vec::with_capacity(c.inputs.len());
            for (i, (name, len)) in c.inputs.iter().zip(&c.input_lengths).enumerate() {
                let name_of_slot = format!("input-{i}");
                let path = dir.join(&name_of_slot);
                let source =
                    SpoolInput::arriving(&path, &slot(&name_of_slot), *len, deadline, withdrawn);
                inputs.push(Input::from_source(name.clone(), Arc::new(source)));
            }
            compartments.push(CompartmentSpec {
                name: c.name.clone(),
                module: module.into(),
                inputs,
                entry: c.entry.clone(),
                keys: granted
                    .get(&c.name)
                    .map(|g| Arc::clone(g) as Arc<dyn KeyService>),
            });
        }
        let security = SecurityContext {
            compartments: init
                .security_context
                .iter()
                .map(|(name, a)| {
                    (
                        name.clone(),
                        Access {
                            may_read: a.may_read.iter().cloned().collect(),
                            releases: a.releases,
                        },
                    )
                })
                .collect(),
        };
        let spec = TaskSpec {
            compartments,
            security,
        };
        // Compiled modules are reused within the tenant only: a faster start must not
        // tell one tenant that another ran the same (possibly confidential) code.
        let outcome = veritee_wasm::TaskEngine::global()
            .and_then(|engine| {
                engine.run_in_cache_scope(&spec, &limits, withdrawn, tenant.as_bytes())
            })
            .map_err(|e| match e {
                // The parser's message may quote the module's text: confidential code.
                veritee_wasm::WasmError::MalformedModule { compartment, .. } => bad(format!(
                    "the task failed: compartment {compartment}: malformed module"
                )),
                other => bad(format!("the task failed: {other}")),
            })?;
        let timestamp = self.clock().now();
        let mut results = Vec::with_capacity(outcome.compartments.len());
        for r in &outcome.compartments {
            let key = dek(&r.name).ok_or_else(|| internal("a result without a data key"))?;
            let of = PartOf {
                task_id: &init.task_id,
                compartment: &r.name,
                timestamp,
            };
            let status = seal_status(
                key,
                &of,
                CompartmentStatus {
                    exit_code: r.exit_code,
                    fuel_used: r.fuel_used,
                },
            )
            .map_err(internal)?;
            // Output and log are released together or not at all (the engine already
            // dropped both for a compartment the security context keeps in).
            let (released, output, log) = match &r.output {
                Some(bytes) => (
                    true,
                    seal_part(Part::Output, key, &of, bytes).map_err(internal)?,
                    seal_part(Part::Log, key, &of, r.log.as_deref().unwrap_or_default())
                        .map_err(internal)?,
                ),
                None => (false, String::new(), String::new()),
            };
            results.push(CompartmentOutput {
                name: r.name.clone(),
                status,
                released,
                output,
                log,
            });
        }
        let body = ResultBody {
            task_id: init.task_id.clone(),
            timestamp,
            results,
        };
        seal_envelope(&body, &keys.result_mac_key).map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use veritee_crypto::Confidential;

    const CHUNK: u32 = 4096;

    fn context(slot: &str) -> Vec<u8> {
        slot_context("00", "c", slot)
    }

    /// The key and context of slot `input-0` of compartment `c` of task `00`.
    fn slot(dek: &Key256) -> SlotKey {
        SlotKey {
            dek: dek.clone(),
            context: context("input-0"),
        }
    }

    fn sealed_for(plain: &[u8], dek: &Key256, slot: &str) -> Vec<u8> {
        let mut w = veritee_stream::EncryptWriter::with_context(
            &StreamKey::new(dek),
            "t",
            &context(slot),
            CHUNK,
            Vec::new(),
        )
        .expect("writer");
        w.write_all(plain).expect("write");
        w.finish().expect("finish")
    }

    fn sealed(plain: &[u8], dek: &Key256) -> Vec<u8> {
        sealed_for(plain, dek, "input-0")
    }

    fn setup(len: usize) -> (tempfile::TempDir, PathBuf, Key256, Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("input-0");
        let dek = Confidential::new([7u8; 32]);
        let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let stream = sealed(&plain, &dek);
        (dir, path, dek, plain, stream)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(300)
    }

    /// Input 0 under `dek`, `len` bytes declared, arriving for a short while.
    fn arriving(path: &Path, dek: &Key256, len: u64) -> SpoolInput {
        SpoolInput::arriving(path, &slot(dek), len, soon(), &Arc::default())
    }

    #[test]
    fn an_input_reads_back_whole_and_at_any_offset() {
        let (_dir, path, dek, plain, stream) = setup(3 * CHUNK as usize + 100);
        std::fs::write(&path, &stream).expect("write");
        let input = arriving(&path, &dek, plain.len() as u64);
        assert_eq!(input.read_all().expect("read"), plain);
        let mut buf = [0u8; 50];
        let n = input.read_at(CHUNK as u64 - 10, &mut buf).expect("read_at");
        assert_eq!(
            &buf[..n],
            &plain[CHUNK as usize - 10..CHUNK as usize - 10 + n]
        );
    }

    #[test]
    fn an_input_still_arriving_is_waited_for() {
        let (_dir, path, dek, plain, stream) = setup(5 * CHUNK as usize);
        let (first, rest) = stream.split_at(stream.len() / 2);
        std::fs::write(&path, first).expect("write");
        let late = {
            let (path, rest) = (path.clone(), rest.to_vec());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("open");
                f.write_all(&rest).expect("append");
            })
        };
        let input = arriving(&path, &dek, plain.len() as u64);
        assert_eq!(input.read_all().expect("read"), plain);
        late.join().expect("thread");
    }

    #[test]
    fn a_wrong_declared_length_or_an_altered_chunk_is_an_error() {
        let (_dir, path, dek, plain, stream) = setup(2 * CHUNK as usize + 500);
        std::fs::write(&path, &stream).expect("write");
        let len = plain.len() as u64;
        // Declared longer: the bytes never come.
        let e = arriving(&path, &dek, len + 1)
            .read_all()
            .expect_err("longer");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        // Declared shorter: the final chunk is not where it must end.
        let e = arriving(&path, &dek, len - 100)
            .read_all()
            .expect_err("shorter");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        // One flipped byte in the second chunk.
        let mut altered = stream.clone();
        let at = altered.len() - 600;
        altered[at] ^= 1;
        std::fs::write(&path, &altered).expect("write");
        let e = arriving(&path, &dek, len).read_all().expect_err("altered");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        // Another key.
        std::fs::write(&path, &stream).expect("write");
        let other = Confidential::new([8u8; 32]);
        let e = SpoolInput::arriving(&path, &slot(&other), len, soon(), &Arc::default())
            .read_all()
            .expect_err("other key");
        assert!(
            e.to_string().contains("not under this compartment's key"),
            "{e}"
        );
        // Never uploaded.
        let e = arriving(&path.with_file_name("input-9"), &dek, len)
            .read_all()
            .expect_err("missing");
        assert!(e.to_string().contains("was it uploaded"), "{e}");
    }

    #[test]
    fn a_file_made_for_another_slot_is_refused() {
        // The host swaps two inputs of one compartment (same key, same length), or
        // puts the module where an input goes: the authenticated context says so.
        let (_dir, path, dek, plain, _) = setup(CHUNK as usize + 1);
        for other in ["input-1", "module"] {
            std::fs::write(&path, sealed_for(&plain, &dek, other)).expect("write");
            let e = arriving(&path, &dek, plain.len() as u64)
                .read_all()
                .expect_err("another slot's file");
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
            assert!(e.to_string().contains("not this slot's file"), "{e}");
            assert!(e.to_string().contains(other), "{e}");
        }
        // A file of another task (same compartment and slot names) under the same key.
        let mut w = veritee_stream::EncryptWriter::with_context(
            &StreamKey::new(&dek),
            "t",
            &slot_context("ff", "c", "input-0"),
            CHUNK,
            Vec::new(),
        )
        .expect("writer");
        w.write_all(&plain).expect("write");
        std::fs::write(&path, w.finish().expect("finish")).expect("write");
        let e = arriving(&path, &dek, plain.len() as u64)
            .read_all()
            .expect_err("another task's file");
        assert!(e.to_string().contains("not this slot's file"), "{e}");
    }

    #[test]
    fn reads_in_order_out_of_order_and_back_again_agree() {
        let chunk = CHUNK as usize;
        let (_dir, path, dek, plain, stream) = setup(6 * chunk + 7);
        std::fs::write(&path, &stream).expect("write");
        let input = arriving(&path, &dek, plain.len() as u64);
        // In order (read-ahead), a jump back, a jump forward, in order again, the end.
        for at in [
            0,
            chunk,
            2 * chunk + 5,
            100,
            4 * chunk,
            5 * chunk,
            6 * chunk,
            1,
        ] {
            let mut buf = vec![0u8; chunk];
            let n = input.read_at(at as u64, &mut buf).expect("read_at");
            assert!(n > 0);
            assert_eq!(&buf[..n], &plain[at..at + n], "at {at}");
        }
    }

    #[test]
    fn an_abandoned_input_stops_its_read_ahead_at_once() {
        let (_dir, path, dek, plain, stream) = setup(4 * CHUNK as usize);
        // Only the header and the first two chunks ever arrive.
        let arrived = stream.len() - 2 * (CHUNK as usize + TAG_LEN);
        std::fs::write(&path, &stream[..arrived]).expect("write");
        let far = Instant::now() + Duration::from_secs(600);
        let input =
            SpoolInput::arriving(&path, &slot(&dek), plain.len() as u64, far, &Arc::default());
        let mut buf = vec![0u8; CHUNK as usize];
        input.read_at(0, &mut buf).expect("first chunk");
        input
            .read_at(u64::from(CHUNK), &mut buf)
            .expect("second chunk");
        // The read-ahead now waits for chunk 2, due in ten minutes; dropping the input
        // (the task ended) must not wait that long.
        let t = Instant::now();
        drop(input);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn a_withdrawn_task_stops_waiting_for_its_inputs() {
        let (_dir, path, dek, plain, stream) = setup(4 * CHUNK as usize);
        let far = Instant::now() + Duration::from_secs(600);
        let withdraw_soon = |flag: &Arc<AtomicBool>| {
            let flag = Arc::clone(flag);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                flag.store(true, Ordering::Relaxed);
            })
        };
        // Half uploaded: the read of a missing chunk stops waiting.
        std::fs::write(&path, &stream[..stream.len() / 2]).expect("write");
        let flag = Arc::new(AtomicBool::new(false));
        let input = SpoolInput::arriving(&path, &slot(&dek), plain.len() as u64, far, &flag);
        let setter = withdraw_soon(&flag);
        let t = Instant::now();
        let e = input.read_all().expect_err("withdrawn");
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "{e}");
        assert!(e.to_string().contains("withdrew"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        setter.join().expect("setter");
        // Never uploaded at all: opening it stops waiting too.
        let flag = Arc::new(AtomicBool::new(false));
        let missing = path.with_file_name("input-7");
        let input = SpoolInput::arriving(&missing, &slot(&dek), 10, far, &flag);
        let setter = withdraw_soon(&flag);
        let e = input.read_all().expect_err("withdrawn");
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        setter.join().expect("setter");
    }

    #[test]
    fn a_failed_read_fails_the_same_way_when_retried() {
        let (_dir, path, dek, plain, stream) = setup(3 * CHUNK as usize);
        let mut altered = stream.clone();
        let at = altered.len() - 100;
        altered[at] ^= 1;
        std::fs::write(&path, &altered).expect("write");
        let input = arriving(&path, &dek, plain.len() as u64);
        let mut buf = vec![0u8; CHUNK as usize];
        input.read_at(0, &mut buf).expect("chunk 0");
        input.read_at(u64::from(CHUNK), &mut buf).expect("chunk 1");
        for _ in 0..2 {
            let e = input
                .read_at(2 * u64::from(CHUNK), &mut buf)
                .expect_err("chunk 2 altered");
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        }
    }

    #[test]
    fn a_module_is_as_long_as_its_file() {
        let (_dir, path, dek, plain, stream) = setup(CHUNK as usize + 1);
        std::fs::write(&path, &stream).expect("write");
        let module = SpoolInput::module(&path, &slot(&dek)).expect("module");
        assert_eq!(module.len, plain.len() as u64);
        assert_eq!(module.read_all().expect("read"), plain);
        std::fs::write(&path, &stream[..stream.len() - 20]).expect("truncate");
        let cut = SpoolInput::module(&path, &slot(&dek)).expect("a truncated module still opens");
        let e = cut.read_all().expect_err("but does not decrypt");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    }
}
