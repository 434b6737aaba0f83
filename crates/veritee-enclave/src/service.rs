//! The enclave service: what it holds, and the dispatcher that hands each call from
//! the host to the module of its flow.

use crate::audit::AuditHead;
use crate::clock::TrustedClock;
use crate::host::{HostLink, failure};
use crate::requests::ReplayGuard;
use crate::session_table::Sessions;
use crate::state::StateSlot;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;
use veritee_attest::ReportData;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey, Ed25519SigningKey};
use veritee_crypto::{Confidential, SecretBytes};
use veritee_platform::{Platform, SealPolicy};
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply, EnclaveStatus, FailureKind};

/// The node's long-term keys, kept as sealed records of their own.
pub(crate) struct NodeKeys {
    /// Signs audit entries and receipts.
    pub(crate) audit_key: EcdsaSigningKey,
    /// Its SubjectPublicKeyInfo.
    pub(crate) audit_spki: Vec<u8>,
    /// Signs audit checkpoints (C2SP signed notes take Ed25519).
    pub(crate) checkpoint_key: Ed25519SigningKey,
    /// The audit log's name in the store.
    pub(crate) log: String,
    /// What imported keys are wrapped to.
    pub(crate) wrapping: veritee_crypto::hpke::HpkeKeyPair,
}

impl NodeKeys {
    /// The bytes the node's evidence binds: audit key, then checkpoint key.
    pub(crate) fn bound_public_keys(&self) -> Vec<u8> {
        veritee_channel::node_bound_keys(&self.audit_spki, &self.checkpoint_key.public_key())
    }
}

/// The enclave: platform, sessions, and the node's keys.
pub struct EnclaveService {
    platform: Box<dyn Platform>,
    seal_policy: SealPolicy,
    /// Random per start: tenants' signatures name it, so none survives a restart.
    epoch: Option<[u8; 16]>,
    /// Random per start: seals session tickets, so none survives a restart.
    pub(crate) ticket_key: Option<veritee_channel::resume::TicketKey>,
    node_id: OnceLock<String>,
    accept_rollback: std::sync::atomic::AtomicBool,
    pub(crate) peer_anchors: veritee_attest::TrustAnchors,
    pub(crate) responders: Mutex<HashMap<String, (veritee_channel::peer::Responder, Instant)>>,
    pub(crate) uploads: Mutex<crate::data::Uploads>,
    pub(crate) tasks: Mutex<crate::task::Tasks>,
    pub(crate) spool_root: Option<std::path::PathBuf>,
    pub(crate) node: Mutex<Option<Arc<NodeKeys>>>,
    pub(crate) audit: Mutex<Option<AuditHead>>,
    pub(crate) audit_queue: Mutex<crate::audit::AuditQueue>,
    /// Signalled whenever a batch of queued audit entries has been appended (or failed).
    pub(crate) audit_appended: std::sync::Condvar,
    pub(crate) sessions: Mutex<Sessions>,
    pub(crate) tenants: Mutex<HashMap<String, Vec<u8>>>,
    pub(crate) state: Mutex<StateSlot>,
    /// The loaded state's record index, kept here rather than in `state` so that
    /// reads need not wait for a transition in flight (which holds `state`); changed
    /// only under `state`'s lock; `None` while it is not loaded.
    pub(crate) index: std::sync::RwLock<Option<crate::state::Index>>,
    pub(crate) clock: TrustedClock,
    pub(crate) replays: Mutex<ReplayGuard>,
    /// A rollback the operator accepted at load, not yet written to the audit log.
    pub(crate) pending_rollback: Mutex<Option<(u64, u64)>>,
    /// Held while a data object's new version is checked and committed.
    pub(crate) data_commits: Mutex<()>,
    /// Writes waiting for the next sealed state transition.
    pub(crate) commits: Mutex<crate::state::Commits>,
    /// The KBS protocol's sessions and keys.
    pub(crate) kbs: Mutex<crate::kbs::KbsState>,
    /// Imported keys unsealed for operations (flow 3).
    pub(crate) import_keys: Mutex<crate::import::crypto::KeyCache>,
    /// Keys disabled since start, for running tasks' grants.
    pub(crate) disabled_keys: Arc<crate::import::crypto::DisabledKeys>,
    /// What applications and tasks may reserve in all.
    pub(crate) memory_budget: Arc<crate::memory_budget::MemoryBudget>,
    /// The signed statement of the RSA import key, made once: unsealing and checking a
    /// 3072-bit key at every `GET /v1/import` would cost each import milliseconds.
    pub(crate) tee_rsa_statement: std::sync::OnceLock<Vec<u8>>,
    /// The RSA import key once unsealed (as the node's other keys are kept).
    pub(crate) tee_rsa_key: std::sync::OnceLock<std::sync::Arc<veritee_crypto::rsa::RsaPrivateKey>>,
    /// Held while an imported key's record is read, changed and written back.
    pub(crate) import_writes: Mutex<()>,
    /// Quorum tokens issued and not yet used (flow 3's officers).
    pub(crate) quorum_tokens: Mutex<crate::import::officers::PendingTokens>,
    /// Running applications and forks arriving (flow 5).
    pub(crate) apps: Mutex<crate::fork::Apps>,
    /// Whether this enclave is a security module (flow 2; measured at launch).
    security_module: bool,
    /// Enrollment challenges waiting for targets' answers (flow 2, security module).
    pub(crate) workload_challenges: Mutex<crate::workload::PendingChallenges>,
    /// Held while a seed, target, authorization or storage key record is read, changed
    /// and written back (flow 2).
    pub(crate) workload_writes: Mutex<()>,
    /// Workloads loaded and waiting for their seed (flow 2, verify-before-secrets).
    pub(crate) pending_workloads: Mutex<crate::workload::PendingWorkloads>,
    /// The target's TPM, when it has one (flow 2, TPM targets).
    pub(crate) tpm_target: Option<crate::workload::TpmTargetConfig>,
    /// TPM manufacturers' CAs a security module checks EK certificates under: bound to
    /// TPM evidence only (part of the measured configuration).
    pub(crate) tpm_anchors: Vec<veritee_attest::ParsedCertificate>,
    /// The TPM manufacturers' CRLs the security module applies to EK certificates
    /// (vendor-signed, so given by the host, not measured).
    pub(crate) tpm_crls: Vec<veritee_x509::ParsedCrl>,
    /// TPM targets whose credential awaits activation (flow 2, security module).
    pub(crate) pending_activations: Mutex<crate::workload::PendingActivations>,
    /// EK certificates whose chain verified (flow 2, security module).
    pub(crate) verified_eks: Mutex<veritee_tpm::cache::VerifiedEkCache>,
    /// Where the sealing root comes from, on a TEE that gives no sealing key.
    pub(crate) root_source: Option<crate::sealing_root::RootSource>,
    /// Whether this enclave releases sealing roots to attested peers (measured).
    pub(crate) releases_sealing_roots: bool,
}

impl core::fmt::Debug for EnclaveService {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EnclaveService")
            .field("seal_policy", &self.seal_policy)
            .field("epoch", &self.epoch.map(hex::encode))
            .finish()
    }
}

/// Locks, recovering from a panicked holder: the protected maps stay consistent because
/// every critical section only inserts or removes whole entries.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn internal(e: impl core::fmt::Display) -> EnclaveFailure {
    failure(FailureKind::Internal, e.to_string())
}

pub(crate) fn bad(e: impl core::fmt::Display) -> EnclaveFailure {
    failure(FailureKind::BadRequest, e.to_string())
}

pub(crate) fn tenant_ns(tenant: &str) -> String {
    format!("t/{tenant}")
}

impl EnclaveService {
    /// An enclave on `platform`, sealing with `seal_policy`.
    pub fn new(platform: Box<dyn Platform>, seal_policy: SealPolicy) -> Self {
        // Without randomness there is no epoch, and every signed request is refused (a
        // fixed epoch would let requests signed for an earlier run be replayed).
        let epoch = veritee_crypto::rand::array::<16>().ok();
        Self {
            platform,
            seal_policy,
            epoch,
            ticket_key: veritee_channel::resume::TicketKey::generate().ok(),
            node_id: OnceLock::new(),
            accept_rollback: std::sync::atomic::AtomicBool::new(false),
            peer_anchors: veritee_attest::TrustAnchors::none(),
            responders: Mutex::new(HashMap::new()),
            uploads: Mutex::new(crate::data::Uploads::default()),
            tasks: Mutex::new(crate::task::Tasks::default()),
            spool_root: None,
            node: Mutex::new(None),
            audit: Mutex::new(None),
            audit_queue: Mutex::new(crate::audit::AuditQueue::default()),
            audit_appended: std::sync::Condvar::new(),
            sessions: Mutex::new(Sessions::default()),
            tenants: Mutex::new(HashMap::new()),
            state: Mutex::new(StateSlot::Unloaded),
            index: std::sync::RwLock::new(None),
            clock: TrustedClock::default(),
            replays: Mutex::new(ReplayGuard::default()),
            pending_rollback: Mutex::new(None),
            data_commits: Mutex::new(()),
            commits: Mutex::new(crate::state::Commits::default()),
            kbs: Mutex::new(crate::kbs::KbsState::default()),
            import_keys: Mutex::new(crate::import::crypto::KeyCache::default()),
            disabled_keys: Arc::default(),
            memory_budget: crate::memory_budget::MemoryBudget::new(crate::memory_budget::UNLIMITED),
            tee_rsa_statement: std::sync::OnceLock::new(),
            tee_rsa_key: std::sync::OnceLock::new(),
            import_writes: Mutex::new(()),
            quorum_tokens: Mutex::new(crate::import::officers::PendingTokens::default()),
            apps: Mutex::new(crate::fork::Apps::default()),
            security_module: false,
            workload_challenges: Mutex::new(crate::workload::PendingChallenges::default()),
            workload_writes: Mutex::new(()),
            pending_workloads: Mutex::new(crate::workload::PendingWorkloads::default()),
            tpm_target: None,
            tpm_anchors: Vec::new(),
            tpm_crls: Vec::new(),
            pending_activations: Mutex::new(crate::workload::PendingActivations::default()),
            verified_eks: Mutex::new(veritee_tpm::cache::VerifiedEkCache::default()),
            root_source: None,
            releases_sealing_roots: false,
        }
    }

    /// Seals under the root `release` names, released by a peer that meets its policy
    /// (part of the measured configuration): for a platform wrapped in a
    /// [`crate::sealing_root::ReleasedRootPlatform`] over the same root. The root is
    /// fetched before the first access to sealed state.
    pub fn with_released_root(mut self, release: crate::sealing_root::RootRelease) -> Self {
        self.root_source = Some(crate::sealing_root::RootSource {
            release,
            fetching: Mutex::new(()),
            unrecorded_check: Mutex::new(None),
        });
        self
    }

    /// Makes this enclave release sealing roots to attested peers that ask (part of the
    /// measured configuration: see [`crate::sealing_root`]).
    pub fn releasing_sealing_roots(mut self) -> Self {
        self.releases_sealing_roots = true;
        self
    }

    /// Whether this enclave releases sealing roots.
    pub fn releases_sealing_roots(&self) -> bool {
        self.releases_sealing_roots
    }

    /// Trust anchors under which peer enclaves are appraised (part of the measured
    /// configuration). Without them, replication between nodes is off.
    pub fn with_peer_anchors(mut self, anchors: veritee_attest::TrustAnchors) -> Self {
        self.peer_anchors = anchors;
        self
    }

    /// The Ed25519 key whose tokens the KBS admin API accepts (part of the measured
    /// launch configuration). Without it, the KBS admin API is off.
    pub fn with_kbs_admin_key(self, key: [u8; 32]) -> Self {
        lock(&self.kbs).admin_key = Some(key);
        self
    }

    /// Makes this enclave a security module (flow 2): it holds workload seeds, enrolls
    /// targets and issues authorizations, and runs no workload itself. The launcher
    /// measures this choice (see [`crate::launch::EnclaveConfig`]).
    pub fn as_security_module(mut self) -> Self {
        self.security_module = true;
        self
    }

    /// Makes this enclave a TPM target (flow 2): its storage key is a key of the TPM
    /// reached through `tcti`, bound to SHA-256 PCRs `pcrs` at their values when the
    /// key is created.
    pub fn with_tpm_target(mut self, tcti: impl Into<String>, pcrs: Vec<u32>) -> Self {
        self.tpm_target = Some(crate::workload::TpmTargetConfig {
            tcti: tcti.into(),
            pcrs,
            busy: Mutex::new(()),
        });
        self
    }

    /// The TPM manufacturers' CAs this security module checks TPM targets' EK
    /// certificates under (measured at launch, as peer anchors are).
    pub fn with_tpm_anchors(mut self, anchors: Vec<veritee_attest::ParsedCertificate>) -> Self {
        self.tpm_anchors = anchors;
        self
    }

    /// The TPM manufacturers' CRLs this security module applies to TPM targets' EK
    /// certificates: one a CRL revokes is refused. Signed by the CAs that issue them, so
    /// they need not be measured: a host can withhold one, not forge it.
    pub fn with_tpm_crls(mut self, crls: Vec<veritee_x509::ParsedCrl>) -> Self {
        self.tpm_crls = crls;
        self
    }

    /// How many sessions, offered and open, one tenant may hold (`None`: no limit; the
    /// default is [`crate::DEFAULT_SESSIONS_PER_TENANT`]). Past it the tenant's own least
    /// recently used session gives way: a returning client opens a session each time, so
    /// refusing new ones would lock a busy tenant out, and recycling its own keeps every
    /// other tenant's room.
    pub fn with_tenant_session_limit(self, limit: Option<usize>) -> Self {
        lock(&self.sessions).set_per_tenant(limit);
        self
    }

    /// Limits the memory applications and tasks may reserve in all to `bytes` (see
    /// [`crate::memory_budget`]); without it, only the per-tenant limits apply.
    pub fn with_memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = crate::memory_budget::MemoryBudget::new(bytes);
        self
    }

    /// The memory budget: its limit and what is reserved now.
    pub fn memory_budget(&self) -> &crate::memory_budget::MemoryBudget {
        &self.memory_budget
    }

    /// Whether this enclave is a security module.
    pub fn is_security_module(&self) -> bool {
        self.security_module
    }

    /// The directory the host writes task uploads to (tasks are off without one).
    pub fn with_spool(mut self, dir: std::path::PathBuf) -> Self {
        self.spool_root = Some(dir);
        self
    }

    /// Reads the host's time from `host` instead of the system clock (the host sets
    /// both; this lets a test play a host that sets it back). The enclave's time never
    /// goes earlier than it has seen, whatever this says.
    pub fn with_host_clock(mut self, host: crate::clock::HostClock) -> Self {
        self.clock = TrustedClock::with_host(host);
        self
    }

    /// Accepts a store older than the platform's monotonic counter at the first load
    /// of the state only (the operator's explicit choice; it is audited). Without it
    /// such a node refuses to serve.
    pub fn accepting_store_rollback(self) -> Self {
        self.accept_rollback
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self
    }

    /// The platform the enclave runs on.
    pub fn platform(&self) -> &dyn Platform {
        self.platform.as_ref()
    }

    pub(crate) fn seal_policy(&self) -> SealPolicy {
        self.seal_policy
    }

    pub(crate) fn clock(&self) -> &TrustedClock {
        &self.clock
    }

    /// Whether the operator accepted a rollback; true at most once per process.
    pub(crate) fn take_rollback_acceptance(&self) -> bool {
        self.accept_rollback
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn note_rollback(&self, store: u64, platform: u64) {
        *lock(&self.pending_rollback) = Some((store, platform));
    }

    /// This enclave process's epoch, hex.
    pub(crate) fn epoch(&self) -> Result<String, EnclaveFailure> {
        self.epoch.map(hex::encode).ok_or_else(|| {
            failure(
                FailureKind::Unavailable,
                "this enclave has no epoch: the platform's randomness failed at start",
            )
        })
    }

    /// The node id: names this enclave's sealing identity on its machine, so nodes
    /// sharing one database keep their own records, and reveals nothing of the key.
    pub(crate) fn node_id(&self) -> Result<String, EnclaveFailure> {
        if let Some(id) = self.node_id.get() {
            return Ok(id.clone());
        }
        let id_key = self
            .platform
            .sealing_key(self.seal_policy, b"veritee node id")
            .map_err(internal)?;
        let id = hex::encode(
            &veritee_crypto::mac::hmac_sha256(id_key.expose().expose(), b"node id")[..8],
        );
        Ok(self.node_id.get_or_init(|| id).clone())
    }

    /// The node's keys, loaded from (or created in) sealed state on first use.
    pub(crate) fn node(&self, link: &mut dyn HostLink) -> Result<Arc<NodeKeys>, EnclaveFailure> {
        let mut slot = lock(&self.node);
        if let Some(keys) = slot.as_ref() {
            return Ok(Arc::clone(keys));
        }
        let node_id = self.node_id()?;
        let ns = format!("enclave/{node_id}");
        let audit_der = self.load_or_create(link, &ns, "audit-key", || {
            EcdsaSigningKey::generate(EcdsaCurve::P256)
                .and_then(|k| k.to_pkcs8())
                .map_err(internal)
        })?;
        let audit_key =
            EcdsaSigningKey::from_pkcs8(EcdsaCurve::P256, audit_der.expose()).map_err(internal)?;
        let checkpoint_der = self.load_or_create(link, &ns, "checkpoint-key", || {
            Ed25519SigningKey::generate()
                .and_then(|k| k.to_pkcs8())
                .map_err(internal)
        })?;
        let checkpoint_key =
            Ed25519SigningKey::from_pkcs8(checkpoint_der.expose()).map_err(internal)?;
        let wrapping_raw = self.load_or_create(link, &ns, "wrapping-key", || {
            Ok(SecretBytes::copy_from(
                veritee_crypto::hpke::HpkeKeyPair::generate()
                    .private_bytes()
                    .expose(),
            ))
        })?;
        if wrapping_raw.len() != 32 {
            return Err(internal("the stored wrapping key has the wrong length"));
        }
        let mut wrapping_secret = Confidential::new([0u8; 32]);
        wrapping_secret
            .expose_mut()
            .copy_from_slice(wrapping_raw.expose());
        let wrapping = veritee_crypto::hpke::HpkeKeyPair::from_private_bytes(&wrapping_secret)
            .map_err(internal)?;
        let audit_spki = audit_key.public_key_spki().map_err(internal)?;
        let keys = Arc::new(NodeKeys {
            audit_key,
            audit_spki,
            checkpoint_key,
            log: format!("audit/{node_id}"),
            wrapping,
        });
        *slot = Some(Arc::clone(&keys));
        Ok(keys)
    }

    /// A node secret kept as a sealed record, created on first use. Creation races
    /// between conversations are settled by the index: the loser reads the winner's.
    pub(crate) fn load_or_create(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
        create: impl FnOnce() -> Result<SecretBytes, EnclaveFailure>,
    ) -> Result<SecretBytes, EnclaveFailure> {
        if let Some(value) = self.record_get(link, ns, key)? {
            return Ok(value);
        }
        let fresh = create()?;
        if self.record_put_if_absent(link, ns, key, fresh.expose())? {
            return Ok(fresh);
        }
        self.record_get(link, ns, key)?.ok_or_else(|| {
            failure(
                FailureKind::Unavailable,
                format!("{ns}/{key} vanished while being created"),
            )
        })
    }

    /// Handles one conversation.
    pub fn handle(
        &self,
        call: EnclaveCall,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        // Without its sealing root the enclave can open nothing; a refused state is
        // reported at once, and a rollback accepted at load is audited before anything
        // else is done.
        self.ensure_sealing_root(link)?;
        self.ensure_state(link)?;
        self.record_sealing_root_check(link)?;
        self.audit_pending_rollback(link)?;
        // A security module holds every seed it is given: it runs nobody's code and
        // keeps nobody's keys besides, so that nothing else shares its enclave.
        if self.security_module
            && !matches!(
                call,
                EnclaveCall::Status
                    | EnclaveCall::Attest { .. }
                    | EnclaveCall::RegisterTenant { .. }
                    | EnclaveCall::WrappingKey { .. }
                    | EnclaveCall::AuditCheckpoint
                    | EnclaveCall::Workload(_)
            )
        {
            return Err(failure(
                FailureKind::NotFound,
                "this node is a security module: it serves only TEE-bound workloads (flow 2)",
            ));
        }
        match call {
            EnclaveCall::Status => self.status(link),
            EnclaveCall::TenantKey { tenant } => {
                // The host names the tenant: only a well-formed id reaches the peers.
                if !veritee_proto::names::is_tenant_id(&tenant) {
                    return Err(bad(format!(
                        "{tenant:?} is not a tenant id (32 lowercase hex digits)"
                    )));
                }
                Ok(EnclaveReply::TenantKey {
                    public_key: self.tenant_key(link, &tenant)?,
                })
            }
            EnclaveCall::Attest { nonce } => self.attest(&nonce, link),
            EnclaveCall::RegisterTenant { request, body } => {
                self.register_tenant(&request, &body, link)
            }
            EnclaveCall::OpenSession { request, body } => self.open_session(&request, &body, link),
            EnclaveCall::SessionMessage {
                session_id,
                message,
            } => self.session_message(&session_id, &message, link),
            EnclaveCall::WrappingKey { nonce } => self.wrapping_key(&nonce, link),
            EnclaveCall::ImportKey { request, body } => self.import_key(&request, &body, link),
            EnclaveCall::PeerMessage { message } => self.peer_message(message, link),
            EnclaveCall::AuditCheckpoint => self.checkpoint(link),
            EnclaveCall::ResumeSession { request, body } => {
                self.resume_session(&request, &body, link)
            }
            EnclaveCall::TaskInitiate {
                request,
                initiation,
            } => self.task_initiate(&request, &initiation, link),
            EnclaveCall::TaskKeys {
                request,
                task_id,
                delivery,
            } => self.task_keys(&request, &task_id, &delivery, link),
            EnclaveCall::TaskRun { request, task_id } => self.task_run(&request, &task_id, link),
            EnclaveCall::TaskCancel { request, task_id } => {
                self.task_cancel(&request, &task_id, link)
            }
            EnclaveCall::DataBegin {
                request,
                object,
                header,
            } => self.data_begin(&request, &object, &header, link),
            EnclaveCall::DataChunk {
                request,
                object,
                upload_id,
                index,
                last,
                chunk,
            } => self.data_chunk(&request, &object, &upload_id, index, last, &chunk, link),
            EnclaveCall::DataOpen {
                request,
                object,
                nonce,
            } => self.data_open(&request, &object, &nonce, link),
            EnclaveCall::Kbs(call) => self.kbs(call, link),
            EnclaveCall::Import(call) => self.import(call, link),
            EnclaveCall::Workload(call) => self.workload(call, link),
            EnclaveCall::DataRead {
                request,
                object,
                index,
            } => self.data_read(&request, &object, index, link),
        }
    }

    fn status(&self, link: &mut dyn HostLink) -> Result<EnclaveReply, EnclaveFailure> {
        let node = self.node(link)?;
        let identity = self.platform.identity();
        // What the status reports of the log includes the operations tallied so far.
        self.flush_usage(link)?;
        let audit_entries = self.audit_size(link)?;
        let (state_transitions, state_counter) = self.state_position(link)?;
        Ok(EnclaveReply::Status(EnclaveStatus {
            tee: self.platform.tee().to_string(),
            measurement: hex::encode(&identity.measurement),
            signer: identity.signer.as_ref().map(hex::encode),
            sessions: lock(&self.sessions).len() as u64,
            audit_public_key: node.audit_spki.clone(),
            audit_entries,
            audit_log: node.log.clone(),
            node_id: self.node_id()?,
            epoch: self.epoch()?,
            state_transitions,
            state_counter,
        }))
    }

    fn attest(
        &self,
        nonce: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        if !(16..=64).contains(&nonce.len()) {
            return Err(bad("the nonce must be 16 to 64 bytes"));
        }
        let node = self.node(link)?;
        let evidence = self
            .platform
            .evidence(&ReportData::binding(
                veritee_channel::NODE_BINDING_LABEL,
                &node.bound_public_keys(),
                nonce,
            ))
            .map_err(internal)?;
        Ok(EnclaveReply::Attestation {
            evidence,
            audit_public_key: node.audit_spki.clone(),
            checkpoint_public_key: node.checkpoint_key.public_key().to_vec(),
        })
    }
}
