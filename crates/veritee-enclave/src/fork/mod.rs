//! Flow 5: applications that keep their state, and secure fork to a child enclave.
//!
//! A tenant runs, calls, lists and stops its applications inside its attested session
//! ([`veritee_channel::apps`]). A fork is asked the same way and takes effect between
//! two calls: the application's lock is held from the snapshot to the child's answer,
//! so the state the child gets is the state after the last call that returned. Each
//! side then learns its role through the application's `forked(role)` export, if it
//! has one (0 parent, 1 child), run as a call whose output is dropped.
//!
//! ```text
//! parent enclave                     host, host            child enclave (peer node)
//!   snapshot brought up to date (only changed pages encrypted again)
//!   Hello                            ->                    Challenge (evidence: pk_b, nonce_a)
//!   appraise: same measurement
//!   Finish (evidence: enc, nonce_b) + sealed Fork { tenant, child name, module,
//!                                    fresh secret, offer }  ->  appraise: same measurement;
//!                                                          open the offer, start the module,
//!                                    <-                    sealed Accepted { fork id }
//!   { fork id, sealed: pages } x N   ->                    decrypt each page into the child
//!                                    <-                    Received
//!   { fork id, sealed: done }        ->                    every page arrived: the child runs
//!                                    <-                    sealed Done { digest }
//!   new epoch key for the parent's later pages (also after a failure)
//! ```
//!
//! The secret both keep comes from the parent, inside the peer session: its keys are
//! HPKE to the child's evidence-bound key, and the parent's evidence binds its side of
//! the exchange, so only the attested child reads it. Transfer and link keys are
//! derived from it and the snapshot's digest ([`veritee_fork::ForkSecret`]). The pages
//! are encrypted by the snapshot and bound by the sealed manifest; every later step is
//! sealed and numbered in the peer session as well, so the host sees neither which
//! pages go nor which changed since the last fork, and can forge no end or abort. A
//! lost confirmation is reported as such: the child may be running. The child gets
//! its own application id, its own snapshot key at its first fork, and nothing of the
//! parent's session, sealing or channel keys; it checks the parent's measurement before
//! using anything it says, its room before compiling, and caps the parent's limits at
//! its own.

pub(crate) mod durable;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use veritee_channel::apps::{AppAnswer, AppInfo, AppRequest};
use veritee_channel::peer::{Initiator, PeerRequirement, PeerSession, primary_measurement};
use veritee_crypto::aead::AeadKey;
use veritee_crypto::{Confidential, SecretBytes};
use veritee_fork::{AppRuntime, ForkSecret, Restorer, Snapshot};
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};
use veritee_wasm::{App, ForkRole, TaskEngine, TaskLimits};

use crate::host::{HostLink, HostLinkExt, failure};
use crate::import::crypto::GrantedKeys;
use crate::memory_budget::Reservation;
use crate::replication::{PeerEnvelope, PeerReply, cbor, decode_peer};
use crate::service::{EnclaveService, bad, internal, lock};
use veritee_task::messages::NamedKey;

/// Applications one tenant may run on a node at once.
pub const MAX_APPS_PER_TENANT: usize = 8;
/// The linear memory one tenant's applications (and forks arriving for it) may hold in
/// all on a node, by their limits. A snapshot, once taken, holds as much again (the
/// shadow) plus the sealed pages.
pub const MAX_APP_MEMORY_PER_TENANT: u64 = 4 << 30;
/// Forks arriving at once.
const MAX_INCOMING: usize = 4;
/// How long an arriving fork may take between its messages.
const INCOMING_TTL: Duration = Duration::from_secs(120);
/// Bytes of page frames per message through the hosts.
const FRAMES_PER_MESSAGE: usize = 8 << 20;
/// Largest memory a tenant may ask for an application, in MiB.
const MAX_MEMORY_MIB: u32 = 4096;

/// The applications of this enclave, and the forks arriving into it.
#[derive(Default)]
pub(crate) struct Apps {
    running: HashMap<(String, String), Slot>,
    incoming: HashMap<String, Incoming>,
    /// Tenants whose durable applications this process has started again.
    restored: HashSet<String>,
}

/// A running application, and the memory its limit reserves (read without its lock).
struct Slot {
    app: Arc<Mutex<Running>>,
    memory_bytes: u64,
}

impl Slot {
    fn new(running: Running) -> Slot {
        Slot {
            memory_bytes: running.app.limits().memory_bytes,
            app: Arc::new(Mutex::new(running)),
        }
    }
}

/// A running application and what a fork of it needs.
struct Running {
    app: App,
    /// The module as the tenant gave it, for a child to start from.
    module: SecretBytes,
    module_sha256: [u8; 32],
    app_id: [u8; 16],
    /// Made at the first fork, then kept up to date at each.
    snapshot: Option<Snapshot>,
    forked_from: Option<[u8; 32]>,
    forks: u64,
    /// Keys shared with the parent (in a child, first) and each child, in fork order,
    /// for later messages: the application's keys for `key_op`.
    links: Vec<Link>,
    /// Where the application may fork itself to (host function `fork`), if anywhere.
    fork_peer: Option<String>,
    /// Its stored state, if it is durable (see [`durable`]).
    durable: Option<durable::Durable>,
    /// The stored keys it names, in `key_op` order (before its links).
    keys: Vec<NamedKey>,
    /// Those keys as last granted (at every call: a key disabled or revoked since is
    /// withheld).
    granted: Option<Arc<GrantedKeys>>,
    /// Its memory limit, reserved in the enclave's budget...
    memory: Reservation,
    /// ...and as much again for the snapshot's shadow, once there is one.
    shadow: Option<Reservation>,
}

/// A key parent and child share after a fork, and which side this one is on.
#[derive(Clone)]
struct Link {
    key: AeadKey,
    side: ForkRole,
}

/// What a link key's messages are bound to, besides the application's own data.
const LINK_AAD: &[u8] = b"veritee app link v1\0";

/// Every key an application uses through `key_op`: first the stored keys it names
/// (see [`GrantedKeys`]), then its links: key `K + i` is link `i` for `K` stored keys.
struct AppKeys {
    stored: Option<Arc<GrantedKeys>>,
    links: LinkKeys,
}

impl veritee_wasm::KeyService for AppKeys {
    fn count(&self) -> usize {
        self.stored.as_ref().map_or(0, |k| k.count()) + self.links.count()
    }

    fn call(
        &self,
        key_index: usize,
        request: veritee_wasm::KeyRequest<'_>,
    ) -> Result<SecretBytes, veritee_wasm::KeyOpError> {
        let stored = self.stored.as_ref().map_or(0, |k| k.count());
        match &self.stored {
            Some(keys) if key_index < stored => keys.call(key_index, request),
            _ => self.links.call(key_index - stored, request),
        }
    }
}

/// The link keys as the application uses them through `key_op`: link `i` (in a
/// child, link 0 is the one it shares with its parent; a parent's follow in fork
/// order). Encrypt seals a message for the other side (AES-256-GCM, a random nonce,
/// the envelope `nonce || ciphertext || tag`), bound to the sender's side, so a message
/// never opens on the side that sealed it; decrypt opens one from the other side. The
/// keys never enter the application's memory, and nothing else uses them.
struct LinkKeys(Vec<Link>);

impl LinkKeys {
    fn aad(side: ForkRole, aad: &[u8]) -> Vec<u8> {
        let mut out = LINK_AAD.to_vec();
        out.push(side as u8);
        out.extend_from_slice(aad);
        out
    }
}

impl veritee_wasm::KeyService for LinkKeys {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn call(
        &self,
        key_index: usize,
        request: veritee_wasm::KeyRequest<'_>,
    ) -> Result<SecretBytes, veritee_wasm::KeyOpError> {
        use veritee_crypto::aead::{NONCE_LEN, TAG_LEN};
        use veritee_wasm::{KeyOpError, KeyRequest};
        let link = self
            .0
            .get(key_index)
            .ok_or_else(|| KeyOpError::NoSuchKey(format!("there is no link {key_index}")))?;
        let other = match link.side {
            ForkRole::Parent => ForkRole::Child,
            ForkRole::Child => ForkRole::Parent,
        };
        match request {
            KeyRequest::Encrypt { aad, plaintext } => {
                let nonce: [u8; NONCE_LEN] =
                    veritee_crypto::rand::array().map_err(|e| KeyOpError::Failed(e.to_string()))?;
                let sealed = link
                    .key
                    .seal(&nonce, &Self::aad(link.side, aad), plaintext)
                    .map_err(|e| KeyOpError::Failed(e.to_string()))?;
                let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                Ok(SecretBytes::new(out))
            }
            KeyRequest::Decrypt { aad, ciphertext } => {
                if ciphertext.len() < NONCE_LEN + TAG_LEN {
                    return Err(KeyOpError::Failed(format!(
                        "a link message is at least {} bytes (nonce and tag), this one {}",
                        NONCE_LEN + TAG_LEN,
                        ciphertext.len()
                    )));
                }
                let (nonce, sealed) = ciphertext.split_at(NONCE_LEN);
                let nonce: [u8; NONCE_LEN] = nonce
                    .try_into()
                    .map_err(|_| KeyOpError::Failed("the nonce is cut".into()))?;
                link.key
                    .open(&nonce, &Self::aad(other, aad), sealed)
                    .map_err(|_| {
                        KeyOpError::Failed(
                            "the message does not open: not sealed by the other side of this \
                             link with this associated data, or altered"
                                .into(),
                        )
                    })
            }
            other_request => Err(KeyOpError::Forbidden(format!(
                "a link key seals and opens messages between the two sides of a fork; {} is \
                 not among its operations",
                other_request.name()
            ))),
        }
    }
}

/// How an application is started, besides its name and module.
struct RunOptions {
    memory_mib: Option<u32>,
    fork_peer: Option<String>,
    durable: bool,
    keys: Vec<String>,
}

/// A fork arriving: the child's instance, restored page by page.
struct Incoming {
    tenant: String,
    name: String,
    running: Running,
    restorer: Restorer,
    session: PeerSession,
    last: Instant,
}

/// What the parent sends in the peer session's first message. Wiped on drop: it holds
/// the module and the fork secret.
#[derive(Serialize, Deserialize)]
pub(crate) struct ForkOpen {
    tenant: String,
    child: String,
    #[serde(with = "serde_bytes")]
    module: Vec<u8>,
    #[serde(with = "serde_bytes")]
    secret: Vec<u8>,
    #[serde(with = "serde_bytes")]
    offer: Vec<u8>,
    /// The stored keys the application names: the child grants them on its node, at
    /// each call, as the parent did.
    #[serde(default)]
    keys: Vec<String>,
}

impl Drop for ForkOpen {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.module);
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

/// The child's sealed answers.
#[derive(Serialize, Deserialize)]
pub(crate) enum ForkAnswer {
    Accepted { fork: String },
    Done { digest: [u8; 32] },
    Denied { reason: String },
}

/// A fork's later messages: the fork's id (for the child to find it) and one step
/// sealed in the peer session, numbered, so the host can neither read nor forge,
/// reorder or replay a step, nor see which pages are sent or which changed.
#[derive(Serialize, Deserialize)]
pub(crate) struct ForkEnvelope {
    fork: String,
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

impl ForkEnvelope {
    /// The sealed step, for the envelope's decoding to hand it over in place.
    pub(crate) fn sealed_mut(&mut self) -> &mut Vec<u8> {
        &mut self.sealed
    }
}

/// The first byte of a sealed step; page frames follow [`STEP_PAGES`].
const STEP_PAGES: u8 = 0;
/// Every page was sent: the child runs the application if all arrived.
const STEP_DONE: u8 = 1;
/// The parent gave up: the child drops what arrived.
const STEP_ABORT: u8 = 2;

fn not_found(what: String) -> EnclaveFailure {
    failure(FailureKind::NotFound, what)
}

fn limits(memory_mib: Option<u32>) -> Result<TaskLimits, EnclaveFailure> {
    let mut limits = TaskLimits::default();
    if let Some(mib) = memory_mib {
        if mib == 0 || mib > MAX_MEMORY_MIB {
            return Err(bad(format!(
                "memory of {mib} MiB: choose 1 to {MAX_MEMORY_MIB}"
            )));
        }
        limits.memory_bytes = u64::from(mib) << 20;
    }
    Ok(limits)
}

fn wasm_failure(e: veritee_wasm::WasmError) -> EnclaveFailure {
    let kind = match e {
        veritee_wasm::WasmError::Engine(_) => FailureKind::Internal,
        _ => FailureKind::BadRequest,
    };
    failure(kind, e.to_string())
}

fn fork_failure(e: veritee_fork::ForkError) -> EnclaveFailure {
    failure(FailureKind::BadRequest, e.to_string())
}

impl Running {
    /// Gives the application its keys for `key_op`: its stored keys as last granted,
    /// then its links.
    fn install_keys(&mut self) {
        let keys: Arc<dyn veritee_wasm::KeyService> = Arc::new(AppKeys {
            stored: self.granted.clone(),
            links: LinkKeys(self.links.clone()),
        });
        self.app.grant_keys(Some(keys));
    }

    fn info(&self) -> AppInfo {
        AppInfo {
            name: self.app.name().to_owned(),
            module_sha256: hex::encode(self.module_sha256),
            calls: self.app.counters().calls,
            memory_bytes: self.app.memory().len() as u64,
            forked_from: self.forked_from.map(hex::encode),
            forks: self.forks,
            durable: self.durable.is_some(),
            keys: self.keys.iter().map(ToString::to_string).collect(),
        }
    }

    /// Brings the snapshot up to the application's state (made at the first use; only
    /// the pages changed since are encrypted again).
    fn bring_snapshot_up_to_date(&mut self) -> Result<veritee_fork::UpdateStats, EnclaveFailure> {
        let runtime = self.runtime();
        let globals = self.app.globals();
        if self.snapshot.is_none() && self.shadow.is_none() {
            let what = format!("the snapshot of application {}", self.app.name());
            self.shadow = Some(self.memory.another(self.memory.bytes(), &what)?);
        }
        let snapshot = match &mut self.snapshot {
            Some(s) => s,
            empty => {
                // A new snapshot's sealings are a new key's: whatever is stored is
                // stored again.
                if let Some(durable) = &mut self.durable {
                    durable.stored.clear();
                }
                empty.insert(
                    Snapshot::new(self.app_id, self.module_sha256, runtime.clone())
                        .map_err(fork_failure)?,
                )
            }
        };
        snapshot
            .update(self.app.memory(), globals, runtime)
            .map_err(fork_failure)
    }

    fn runtime(&self) -> AppRuntime {
        AppRuntime {
            counters: self.app.counters(),
            limits: self.app.limits().clone(),
        }
    }
}

impl EnclaveService {
    /// Serves one application request from `tenant`'s session.
    pub(crate) fn app_request(
        &self,
        tenant: &str,
        request: AppRequest,
        link: &mut dyn HostLink,
    ) -> Result<AppAnswer, EnclaveFailure> {
        self.restore_apps(tenant, link)?;
        match request {
            AppRequest::Run {
                name,
                module,
                memory_mib,
                fork_peer,
                durable,
                keys,
            } => {
                let options = RunOptions {
                    memory_mib,
                    fork_peer,
                    durable,
                    keys,
                };
                self.app_run(tenant, &name, module, options, link)
            }
            AppRequest::Call {
                name,
                export,
                input,
            } => {
                let slot = self.app_slot(tenant, &name)?;
                let mut running = lock(&slot);
                // Uses since the last call (its `forked` callback's) are counted too.
                let earlier = running.granted.as_ref().map(|g| g.take_usage());
                self.grant_app_keys(tenant, &name, &mut running, link);
                let called = running.app.call(&export, input.expose());
                // Its keys' uses are counted whatever became of the call.
                let now = running.granted.as_ref().map(|g| g.take_usage());
                self.audit_usage(link, earlier.into_iter().chain(now).flatten())?;
                let mut result = called.map_err(wasm_failure)?;
                let fork = self.fork_if_asked(tenant, &name, &mut running, link)?;
                // Answered only once the state the call left is stored.
                self.persist_app(tenant, &name, &mut running, link)
                    .map_err(|e| {
                        failure(
                            e.kind,
                            format!("the call ran, but its state was not stored: {}", e.message),
                        )
                    })?;
                Ok(AppAnswer::Called {
                    exit_code: result.exit_code,
                    output: SecretBytes::new(std::mem::take(&mut result.output)),
                    log: SecretBytes::new(std::mem::take(&mut result.log)),
                    fork,
                })
            }
            AppRequest::List => {
                let slots: Vec<_> = lock(&self.apps)
                    .running
                    .iter()
                    .filter(|((t, _), _)| t == tenant)
                    .map(|(_, slot)| Arc::clone(&slot.app))
                    .collect();
                let mut apps: Vec<AppInfo> = slots.iter().map(|s| lock(s).info()).collect();
                apps.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(AppAnswer::Apps(apps))
            }
            AppRequest::Stop { name } => {
                let removed = lock(&self.apps)
                    .running
                    .remove(&(tenant.to_owned(), name.clone()));
                let Some(removed) = removed else {
                    return Err(not_found(format!("no application {name}")));
                };
                if lock(&removed.app).durable.is_some() {
                    self.forget_app(tenant, &name, link)?;
                }
                self.audit(link, "app.stop", tenant, &name, "ok")?;
                Ok(AppAnswer::Stopped)
            }
            AppRequest::Fork { name, peer, child } => {
                self.app_fork(tenant, &name, &peer, &child, link)
            }
        }
    }

    /// The end of a call, the snapshot point: forks the application if it asked to
    /// (host function `fork`), to the peer its tenant named, as `NAME-N` for its N-th
    /// fork; says what came of it.
    fn fork_if_asked(
        &self,
        tenant: &str,
        name: &str,
        running: &mut Running,
        link: &mut dyn HostLink,
    ) -> Result<Option<String>, EnclaveFailure> {
        if !running.app.take_fork_request() {
            return Ok(None);
        }
        let Some(peer) = running.fork_peer.clone() else {
            return Ok(None);
        };
        let child = format!("{name}-{}", running.forks + 1);
        Ok(Some(
            match self.fork_running(tenant, name, running, &peer, &child, link) {
                Ok(_) => format!("forked to {peer} as {child}"),
                Err(e) => format!("fork to {peer} refused: {}", e.message),
            },
        ))
    }

    fn app_slot(&self, tenant: &str, name: &str) -> Result<Arc<Mutex<Running>>, EnclaveFailure> {
        lock(&self.apps)
            .running
            .get(&(tenant.to_owned(), name.to_owned()))
            .map(|slot| Arc::clone(&slot.app))
            .ok_or_else(|| not_found(format!("no application {name}")))
    }

    /// Reserves the memory limit of application `name` in the enclave's budget.
    fn reserve_app_memory(&self, name: &str, bytes: u64) -> Result<Reservation, EnclaveFailure> {
        self.memory_budget
            .reserve(bytes, &format!("application {name}"))
    }

    /// Room for `tenant`'s application `name` of `memory_bytes` of memory, or why
    /// there is none.
    fn check_room(
        apps: &Apps,
        tenant: &str,
        name: &str,
        memory_bytes: u64,
    ) -> Result<(), EnclaveFailure> {
        veritee_channel::ops::check_name(name).map_err(bad)?;
        if apps
            .running
            .contains_key(&(tenant.to_owned(), name.to_owned()))
        {
            return Err(failure(
                FailureKind::Conflict,
                format!("application {name} already runs"),
            ));
        }
        if apps
            .incoming
            .values()
            .any(|i| i.tenant == tenant && i.name == name)
        {
            return Err(failure(
                FailureKind::Conflict,
                format!(
                    "a fork into {name} is still arriving (an abandoned one ends within {} s)",
                    INCOMING_TTL.as_secs()
                ),
            ));
        }
        let count = apps.running.keys().filter(|(t, _)| t == tenant).count();
        if count >= MAX_APPS_PER_TENANT {
            return Err(failure(
                FailureKind::TooMany,
                format!("{count} applications run already, the most a tenant may run"),
            ));
        }
        let held: u64 = apps
            .running
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, slot)| slot.memory_bytes)
            .chain(
                apps.incoming
                    .values()
                    .filter(|i| i.tenant == tenant)
                    .map(|i| i.running.app.limits().memory_bytes),
            )
            .sum();
        if held.saturating_add(memory_bytes) > MAX_APP_MEMORY_PER_TENANT {
            return Err(failure(
                FailureKind::TooMany,
                format!(
                    "a tenant's applications may hold {} MiB of memory in all: {} MiB are held, this one asks {} MiB",
                    MAX_APP_MEMORY_PER_TENANT >> 20,
                    held >> 20,
                    memory_bytes >> 20
                ),
            ));
        }
        Ok(())
    }

    /// Grants `running`'s stored keys again, as of now: one disabled, revoked or
    /// suspended since is withheld until it is usable again.
    fn grant_app_keys(
        &self,
        tenant: &str,
        name: &str,
        running: &mut Running,
        link: &mut dyn HostLink,
    ) {
        if running.keys.is_empty() {
            return;
        }
        let keys = self.workload_keys(tenant, &running.keys, link);
        let user = format!("application {name} of tenant {tenant}");
        running.granted = Some(Arc::new(GrantedKeys::new(
            keys,
            Arc::clone(&self.disabled_keys),
            user,
        )));
        running.install_keys();
    }

    /// Checks the stored keys an application is started with: each named well, and
    /// each granted now (the first refused refuses the run, named); every grant audited.
    fn check_app_keys(
        &self,
        tenant: &str,
        name: &str,
        keys: &[String],
        link: &mut dyn HostLink,
    ) -> Result<Vec<NamedKey>, EnclaveFailure> {
        let named =
            NamedKey::parse_list(keys).map_err(|e| bad(format!("application {name}: {e}")))?;
        for (n, granted) in named.iter().zip(self.workload_keys(tenant, &named, link)) {
            let object = format!("{}/{}", granted.owner, granted.key);
            if let Err(why) = granted.loaded {
                self.audit(
                    link,
                    "app.key",
                    tenant,
                    &object,
                    &format!("refused: application {name}: {why}"),
                )?;
                return Err(failure(
                    FailureKind::Unauthorized,
                    format!("application {name} is refused: it names key {n}: {why}"),
                ));
            }
            self.audit(
                link,
                "app.key",
                tenant,
                &object,
                &format!("ok: granted to application {name}"),
            )?;
        }
        Ok(named)
    }

    fn app_run(
        &self,
        tenant: &str,
        name: &str,
        module: SecretBytes,
        options: RunOptions,
        link: &mut dyn HostLink,
    ) -> Result<AppAnswer, EnclaveFailure> {
        let RunOptions {
            memory_mib,
            fork_peer,
            durable,
            keys,
        } = options;
        let limits = limits(memory_mib)?;
        Self::check_room(&lock(&self.apps), tenant, name, limits.memory_bytes)?;
        if let Some(peer) = &fork_peer {
            check_peer(peer, link)?;
        }
        let keys = self.check_app_keys(tenant, name, &keys, link)?;
        let memory = self.reserve_app_memory(name, limits.memory_bytes)?;
        let module_sha256 = veritee_crypto::digest::sha256(module.expose());
        let mut app = start(tenant, name, module.expose(), &limits)?;
        app.allow_fork(fork_peer.is_some());
        let running = Running {
            keys,
            granted: None,
            memory,
            shadow: None,
            app,
            module,
            module_sha256,
            app_id: veritee_crypto::rand::array().map_err(internal)?,
            snapshot: None,
            forked_from: None,
            forks: 0,
            links: Vec::new(),
            fork_peer,
            durable: durable.then(durable::Durable::new).transpose()?,
        };
        let mut running = running;
        if durable {
            // Stored before it is announced: an enclave restarted at once finds it.
            self.store_app_module(tenant, name, running.module.expose(), link)?;
            self.persist_app(tenant, name, &mut running, link)?;
        }
        {
            let mut apps = lock(&self.apps);
            Self::check_room(&apps, tenant, name, limits.memory_bytes)?;
            apps.running
                .insert((tenant.to_owned(), name.to_owned()), Slot::new(running));
        }
        let digest = hex::encode(module_sha256);
        self.audit(link, "app.run", tenant, name, &format!("module {digest}"))?;
        Ok(AppAnswer::Started {
            module_sha256: digest,
        })
    }

    /// Parent: forks `tenant`'s application `name` to `peer`, where it runs as `child`.
    fn app_fork(
        &self,
        tenant: &str,
        name: &str,
        peer: &str,
        child: &str,
        link: &mut dyn HostLink,
    ) -> Result<AppAnswer, EnclaveFailure> {
        let slot = self.app_slot(tenant, name)?;
        let mut running = lock(&slot);
        let answer = self.fork_running(tenant, name, &mut running, peer, child, link)?;
        // Its forks and link keys are part of its stored state.
        self.persist_app(tenant, name, &mut running, link)?;
        Ok(answer)
    }

    /// Forks `running` (`tenant`'s application `name`, locked by the caller) to `peer`.
    fn fork_running(
        &self,
        tenant: &str,
        name: &str,
        running: &mut Running,
        peer: &str,
        child: &str,
        link: &mut dyn HostLink,
    ) -> Result<AppAnswer, EnclaveFailure> {
        veritee_channel::ops::check_name(child).map_err(bad)?;
        if running.app.is_stopped() {
            return Err(failure(
                FailureKind::Conflict,
                format!("application {name} was stopped mid-call; its state is not forked"),
            ));
        }
        check_peer(peer, link)?;
        let stats = running.bring_snapshot_up_to_date()?;
        let Some(snapshot) = &mut running.snapshot else {
            return Err(internal("the snapshot just brought up to date is gone"));
        };

        let verifiers = veritee_verify::Verifiers::default();
        let policy = self.peer_policy();
        let mut appraiser = self.peer_appraiser(&verifiers, &policy, true)?;
        // The child continues the parent's state: it must be the same code, whoever
        // signed it.
        appraiser.requirement = PeerRequirement::SameMeasurement;
        let (initiator, hello) = Initiator::start().map_err(internal)?;
        let challenge =
            match decode_peer(&link.peer_exchange(peer, cbor(&PeerEnvelope::Hello(hello))?)?)? {
                PeerReply::Challenge(c) => c,
                _ => return Err(bad("the peer answered a hello out of turn")),
            };
        let appraised = initiator
            .on_challenge(&challenge, self.platform(), &appraiser)
            .map_err(|e| failure(FailureKind::Unauthorized, format!("child refused: {e}")))
            .and_then(|(session, claims, finish)| {
                self.check_peer_collateral(&claims)?;
                Ok((session, finish))
            });
        let (mut session, finish) = match appraised {
            Ok(appraised) => appraised,
            Err(e) => {
                let outcome = format!("to {peer} as {child}: not done: {}", e.message);
                self.audit(link, "app.fork", tenant, name, &outcome)?;
                return Err(e);
            }
        };

        let secret = veritee_crypto::rand::secret_array::<32>().map_err(internal)?;
        let offer = snapshot
            .offer(&ForkSecret::new(secret.clone()))
            .map_err(fork_failure)?;
        let digest = offer.digest();
        let open = ForkOpen {
            tenant: tenant.to_owned(),
            child: child.to_owned(),
            module: running.module.expose().clone(),
            secret: secret.expose().to_vec(),
            offer: offer.as_bytes().to_vec(),
            keys: running.keys.iter().map(ToString::to_string).collect(),
        };
        // Exactly sized: a buffer grown out of would leave a copy of the module and the
        // secret behind, unwiped.
        let plain = zeroize::Zeroizing::new(
            veritee_proto::cbor::to_vec_exact(&crate::replication::FetchRequest::Fork(open))
                .map_err(internal)?,
        );
        let request = session.seal(&plain).map_err(internal)?;
        let finish = PeerEnvelope::Finish { finish, request };
        let sent = match self.fork_answer(&mut session, peer, finish, link) {
            Ok(ForkAnswer::Accepted { fork }) => {
                let sent = self.fork_transfer(snapshot, &mut session, peer, &fork, &digest, link);
                if matches!(sent, Err(Transfer::Failed(_))) {
                    // Best effort: a child that never hears it drops the fork when it
                    // expires.
                    if let Ok(message) = step(&mut session, &fork, &[STEP_ABORT]) {
                        let _ = link.peer_exchange(peer, message);
                    }
                }
                sent.map_err(|e| match e {
                    Transfer::Failed(f) => f,
                    Transfer::Unconfirmed(f) => failure(
                        f.kind,
                        format!(
                            "every page was sent but the child's confirmation did not come back \
                             ({}): {child} may be running on {peer}; look there with `app list`",
                            f.message
                        ),
                    ),
                })
            }
            Ok(ForkAnswer::Denied { reason }) => Err(failure(
                FailureKind::Unauthorized,
                format!("child refused: {reason}"),
            )),
            Ok(ForkAnswer::Done { .. }) => Err(bad("the child answered out of turn")),
            Err(e) => Err(e),
        };
        // Whatever came of it, the offer and its keys went out: from here on the
        // parent's pages go under a key no child has.
        let rekeyed = snapshot.rekey().map_err(fork_failure);
        if let Err(e) = sent {
            let outcome = format!("to {peer} as {child}: not done: {}", e.message);
            self.audit(link, "app.fork", tenant, name, &outcome)?;
            return Err(e);
        }
        rekeyed?;
        let pages = snapshot.sealed_pages() as u64;
        running.forks += 1;
        // The application's own answer to learning its side; the fork stands either way.
        let _ = running.app.notify_forked(ForkRole::Parent);
        running.links.push(Link {
            key: ForkSecret::new(secret)
                .link_key(&digest)
                .map_err(fork_failure)?,
            side: ForkRole::Parent,
        });
        running.install_keys();
        let digest = hex::encode(digest);
        self.audit(
            link,
            "app.fork",
            tenant,
            name,
            &format!("to {peer} as {child}, snapshot {digest}"),
        )?;
        Ok(AppAnswer::Forked {
            digest,
            pages,
            resealed: stats.sealed as u64,
        })
    }

    /// Sends the snapshot's pages and the end mark; the child's sealed answer must
    /// confirm the snapshot `digest`.
    fn fork_transfer(
        &self,
        snapshot: &Snapshot,
        session: &mut PeerSession,
        peer: &str,
        fork: &str,
        digest: &[u8; 32],
        link: &mut dyn HostLink,
    ) -> Result<(), Transfer> {
        // The next message is taken from the snapshot and sealed on a thread of its own
        // while this one is on its way and the child restores it, one message ahead at
        // most (the channel holds none: a message waits in its sender until it is
        // taken). The messages and their order are those of one thread; if the exchange
        // fails, the sender finds the channel closed and stops.
        std::thread::scope(|scope| {
            let (messages, next) = std::sync::mpsc::sync_channel(0);
            let sealer = &mut *session;
            let spawned = std::thread::Builder::new()
                .name("fork-sealer".into())
                .spawn_scoped(scope, move || {
                    let mut from = Some(0);
                    while let Some(at) = from {
                        let mut plain = vec![STEP_PAGES];
                        from = snapshot.frames_into(at, FRAMES_PER_MESSAGE, &mut plain);
                        if plain.len() == 1 {
                            continue;
                        }
                        let message = step(sealer, fork, &plain);
                        drop(plain);
                        let failed = message.is_err();
                        if messages.send(message).is_err() || failed {
                            return;
                        }
                    }
                });
            if let Err(e) = spawned {
                return Err(Transfer::Failed(internal(format!(
                    "cannot start the fork's sealing thread: {e}"
                ))));
            }
            for message in next {
                let reply = link
                    .peer_exchange(peer, message.map_err(Transfer::Failed)?)
                    .and_then(|r| decode_peer(&r))
                    .map_err(Transfer::Failed)?;
                if !matches!(reply, PeerReply::Received) {
                    return Err(Transfer::Failed(bad(
                        "the child answered pages out of turn",
                    )));
                }
            }
            Ok(())
        })?;
        // From here the child may run the application even if its answer is lost.
        let done = step(session, fork, &[STEP_DONE]).map_err(Transfer::Failed)?;
        match self.fork_reply(session, peer, done, link) {
            Ok(ForkAnswer::Done { digest: theirs }) if theirs == *digest => Ok(()),
            Ok(ForkAnswer::Denied { reason }) => Err(Transfer::Failed(failure(
                FailureKind::BadRequest,
                format!("child refused: {reason}"),
            ))),
            Ok(_) => Err(Transfer::Failed(bad(
                "the child confirmed another snapshot",
            ))),
            Err(e) => Err(Transfer::Unconfirmed(e)),
        }
    }

    /// Sends `envelope` to `peer` and opens the child's sealed answer.
    fn fork_answer(
        &self,
        session: &mut PeerSession,
        peer: &str,
        envelope: PeerEnvelope,
        link: &mut dyn HostLink,
    ) -> Result<ForkAnswer, EnclaveFailure> {
        self.fork_reply(session, peer, cbor(&envelope)?, link)
    }

    /// Sends `message` to `peer` and opens the child's sealed answer.
    fn fork_reply(
        &self,
        session: &mut PeerSession,
        peer: &str,
        message: Vec<u8>,
        link: &mut dyn HostLink,
    ) -> Result<ForkAnswer, EnclaveFailure> {
        let PeerReply::Response(sealed) = decode_peer(&link.peer_exchange(peer, message)?)? else {
            return Err(bad("the child answered out of turn"));
        };
        let plain = session.open(&sealed).map_err(|e| {
            failure(
                FailureKind::Unauthorized,
                format!("the child's answer does not open: {e}"),
            )
        })?;
        veritee_proto::cbor::from_slice(plain.expose())
            .map_err(|e| bad(format!("the child's answer is malformed: {}", e.kind())))
    }

    /// Child: the parent's first message, inside the peer session just established.
    pub(crate) fn fork_accept(
        &self,
        open: ForkOpen,
        claims: &veritee_attest::Claims,
        mut session: PeerSession,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        // Nothing a parent of other code says is used, not even in the audit log.
        let own = self.platform().identity();
        if claims.tee != self.platform().tee()
            || claims.measurement(primary_measurement(claims.tee))
                != Some(own.measurement.as_slice())
        {
            let answer = ForkAnswer::Denied {
                reason: "the parent runs different code (measurement differs)".into(),
            };
            return Ok(EnclaveReply::Message {
                message: seal_answer(&mut session, &answer)?,
            });
        }
        // Room is checked before the module is compiled and its memory grown.
        let room = {
            let mut apps = lock(&self.apps);
            apps.incoming.retain(|_, i| i.last.elapsed() < INCOMING_TTL);
            if apps.incoming.len() >= MAX_INCOMING {
                Err(failure(
                    FailureKind::TooMany,
                    "too many forks arriving at once",
                ))
            } else {
                // The child's memory is known once the offer is open: checked again then.
                Self::check_room(&apps, &open.tenant, &open.child, 0)
            }
        };
        let answer = match room.and_then(|()| self.fork_begin(&open)) {
            Ok((running, restorer)) => {
                let fork = hex::encode(veritee_crypto::rand::array::<16>().map_err(internal)?);
                let reply =
                    seal_answer(&mut session, &ForkAnswer::Accepted { fork: fork.clone() })?;
                let mut apps = lock(&self.apps);
                let memory_bytes = running.app.limits().memory_bytes;
                Self::check_room(&apps, &open.tenant, &open.child, memory_bytes)?;
                apps.incoming.insert(
                    fork,
                    Incoming {
                        tenant: open.tenant.clone(),
                        name: open.child.clone(),
                        running,
                        restorer,
                        session,
                        last: Instant::now(),
                    },
                );
                return Ok(EnclaveReply::Message { message: reply });
            }
            Err(f) => {
                self.audit(
                    link,
                    "app.fork.child",
                    &open.tenant,
                    &open.child,
                    &format!("refused: {}", f.message),
                )?;
                ForkAnswer::Denied { reason: f.message }
            }
        };
        Ok(EnclaveReply::Message {
            message: seal_answer(&mut session, &answer)?,
        })
    }

    /// Opens the parent's offer and starts the child's instance from it.
    fn fork_begin(&self, open: &ForkOpen) -> Result<(Running, Restorer), EnclaveFailure> {
        let secret: [u8; 32] = open
            .secret
            .as_slice()
            .try_into()
            .map_err(|_| bad("the fork secret is not 32 bytes"))?;
        let secret = ForkSecret::new(Confidential::new(secret));
        let restorer = Restorer::open(&secret, &open.offer).map_err(fork_failure)?;
        let state = restorer.state().clone();
        let memory = self.reserve_app_memory(
            &open.child,
            child_limits(&state.runtime.limits).memory_bytes,
        )?;
        let (app, module_sha256) = start_from(&open.tenant, &open.child, &open.module, &state)?;
        let keys = NamedKey::parse_list(&open.keys).map_err(bad)?;
        let mut running = Running {
            keys,
            granted: None,
            memory,
            shadow: None,
            app,
            module: SecretBytes::copy_from(&open.module),
            module_sha256,
            app_id: veritee_crypto::rand::array().map_err(internal)?,
            snapshot: None,
            forked_from: Some(state.digest),
            forks: 0,
            links: vec![Link {
                key: secret.link_key(&state.digest).map_err(fork_failure)?,
                side: ForkRole::Child,
            }],
            // A fork target is the tenant's choice on a node; a child starts without.
            fork_peer: None,
            // Durability is the tenant's choice on a node too.
            durable: None,
        };
        running.install_keys();
        Ok((running, restorer))
    }

    /// Child: page frames or the end of an arriving fork.
    pub(crate) fn fork_message(
        &self,
        envelope: ForkEnvelope,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let fork = envelope.fork;
        let Some(mut incoming) = lock(&self.apps).incoming.remove(&fork) else {
            return Err(not_found(format!("no fork {fork} is arriving")));
        };
        // Whatever goes wrong from here ends the fork: the instance is dropped with
        // what it had.
        if incoming.last.elapsed() >= INCOMING_TTL {
            return Err(not_found(format!("fork {fork} expired")));
        }
        let plain = incoming.session.open(&envelope.sealed).map_err(|e| {
            failure(
                FailureKind::Unauthorized,
                format!("fork {fork}: a step does not open: {e}"),
            )
        })?;
        match plain.expose().split_first() {
            Some((&STEP_PAGES, frames)) => {
                let memory = incoming.running.app.memory_mut();
                incoming
                    .restorer
                    .push(frames, memory)
                    .map_err(fork_failure)?;
                incoming.last = Instant::now();
                lock(&self.apps).incoming.insert(fork, incoming);
                Ok(EnclaveReply::Message {
                    message: cbor(&PeerReply::Received)?,
                })
            }
            Some((&STEP_DONE, [])) => self.fork_done(incoming, link),
            Some((&STEP_ABORT, [])) => Ok(EnclaveReply::Message {
                message: cbor(&PeerReply::Received)?,
            }),
            _ => Err(bad(format!("fork {fork}: an unknown step"))),
        }
    }

    /// Child: every page was sent; runs the application if every one arrived.
    fn fork_done(
        &self,
        incoming: Incoming,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let Incoming {
            tenant,
            name,
            mut running,
            restorer,
            mut session,
            ..
        } = incoming;
        let answer = match restorer.finish(running.app.memory_mut()) {
            Ok(state) => {
                // The application's own answer; the fork stands either way.
                let _ = running.app.notify_forked(ForkRole::Child);
                let mut apps = lock(&self.apps);
                let memory_bytes = running.app.limits().memory_bytes;
                match Self::check_room(&apps, &tenant, &name, memory_bytes) {
                    Ok(()) => {
                        apps.running
                            .insert((tenant.clone(), name.clone()), Slot::new(running));
                        drop(apps);
                        self.audit(
                            link,
                            "app.fork.child",
                            &tenant,
                            &name,
                            &format!("from snapshot {}", hex::encode(state.digest)),
                        )?;
                        ForkAnswer::Done {
                            digest: state.digest,
                        }
                    }
                    Err(f) => ForkAnswer::Denied { reason: f.message },
                }
            }
            Err(e) => ForkAnswer::Denied {
                reason: e.to_string(),
            },
        };
        Ok(EnclaveReply::Message {
            message: seal_answer(&mut session, &answer)?,
        })
    }
}

/// Why a transfer ended early: before the end mark went out, or after (the child may
/// be running).
enum Transfer {
    Failed(EnclaveFailure),
    Unconfirmed(EnclaveFailure),
}

/// A fork step sealed in the peer session, in its envelope.
fn step(session: &mut PeerSession, fork: &str, plain: &[u8]) -> Result<Vec<u8>, EnclaveFailure> {
    let sealed = session.seal(plain).map_err(internal)?;
    cbor(&PeerEnvelope::Fork(ForkEnvelope {
        fork: fork.to_owned(),
        sealed,
    }))
}

fn seal_answer(session: &mut PeerSession, answer: &ForkAnswer) -> Result<Vec<u8>, EnclaveFailure> {
    let mut plain = Vec::new();
    ciborium::into_writer(answer, &mut plain).map_err(internal)?;
    let sealed = session.seal(&plain).map_err(internal)?;
    cbor(&PeerReply::Response(sealed))
}

/// Refuses a peer the host was not configured with (a clear error rather than a
/// failed relay).
fn check_peer(peer: &str, link: &mut dyn HostLink) -> Result<(), EnclaveFailure> {
    if !link.may_fork_to(peer)? {
        return Err(not_found(format!(
            "{peer} is not one of this node's peers (nor a local child it may start: veritee node --local-children N)"
        )));
    }
    Ok(())
}

/// The limits a child runs under: the parent's, within what this node gives any
/// application (the enclave decides; the parent only asks).
fn child_limits(parent: &TaskLimits) -> TaskLimits {
    let most = TaskLimits::default();
    TaskLimits {
        fuel: parent.fuel.min(most.fuel),
        memory_bytes: parent.memory_bytes.min(u64::from(MAX_MEMORY_MIB) << 20),
        table_elements: parent.table_elements.min(most.table_elements),
        output_bytes: parent.output_bytes.min(most.output_bytes),
        log_bytes: parent.log_bytes.min(most.log_bytes),
        timeout: parent.timeout.min(most.timeout),
    }
}

/// Starts `module` as `tenant`'s application `name` in the state a restorer opened
/// (before its pages): the module must be the one the snapshot names, the limits are
/// its, within this node's. Returns the application and the module's SHA-256.
fn start_from(
    tenant: &str,
    name: &str,
    module: &[u8],
    state: &veritee_fork::ForkedState,
) -> Result<(App, [u8; 32]), EnclaveFailure> {
    let module_sha256 = veritee_crypto::digest::sha256(module);
    if module_sha256 != state.module_sha256 {
        return Err(bad("the module is not the one the snapshot names"));
    }
    let mut app = start(tenant, name, module, &child_limits(&state.runtime.limits))?;
    app.restore(state.memory_len, &state.globals, state.runtime.counters)
        .map_err(wasm_failure)?;
    Ok((app, module_sha256))
}

/// Prepares and starts `module` as `tenant`'s application `name`, its compiled form
/// cached for that tenant only.
fn start(
    tenant: &str,
    name: &str,
    module: &[u8],
    limits: &TaskLimits,
) -> Result<App, EnclaveFailure> {
    let prepared = veritee_wasm::rewrite::prepare(name, module).map_err(wasm_failure)?;
    let engine = TaskEngine::global().map_err(wasm_failure)?;
    App::start_in_cache_scope(engine, tenant.as_bytes(), name, &prepared, limits)
        .map_err(wasm_failure)
}
