//! The enclave's request handling.

use crate::host::{HostLink, HostLinkExt, failure};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tracing::{debug, warn};
use veritee_attest::ReportData;
use veritee_audit::{AuditBody, entry_hash, genesis_prev, open_entry, sign_entry};
use veritee_channel::client::tenant_id;
use veritee_channel::enclave::{EnclaveSession, PendingSession};
use veritee_channel::ops::{Request, Response, check_name};
use veritee_crypto::SecretBytes;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey, VerificationScheme};
use veritee_platform::{Platform, SealPolicy, sealing};
use veritee_proto::ipc::{EnclaveCall, EnclaveFailure, EnclaveReply, EnclaveStatus, FailureKind};

/// Largest secret a tenant may store.
pub const MAX_SECRET_LEN: usize = 1024 * 1024;
const MAX_PENDING_SESSIONS: usize = 1024;
const MAX_OPEN_SESSIONS: usize = 4096;
const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
const NODE_BINDING_LABEL: &[u8] = b"veritee node v1";
const ENCLAVE_NS: &str = "enclave";
const TENANTS_NS: &str = "tenants";

pub(crate) struct NodeKeys {
    pub(crate) audit_key: EcdsaSigningKey,
    pub(crate) audit_spki: Vec<u8>,
    pub(crate) log: String,
    pub(crate) node_id: String,
    pub(crate) wrapping: veritee_crypto::hpke::HpkeKeyPair,
}

struct AuditHead {
    next_seq: u64,
    prev: String,
}

enum Slot {
    Pending(PendingSession),
    Open(EnclaveSession),
}

/// The enclave: platform, sessions, and the node's keys.
pub struct EnclaveService {
    platform: Box<dyn Platform>,
    seal_policy: SealPolicy,
    pub(crate) peer_anchors: Vec<veritee_attest::ParsedCertificate>,
    pub(crate) responders: Mutex<HashMap<String, (veritee_channel::peer::Responder, Instant)>>,
    pub(crate) uploads: Mutex<crate::data::Uploads>,
    pub(crate) tasks: Mutex<crate::task::Tasks>,
    pub(crate) spool_root: Option<std::path::PathBuf>,
    node: Mutex<Option<Arc<NodeKeys>>>,
    audit: Mutex<Option<AuditHead>>,
    sessions: Mutex<HashMap<String, (Slot, Instant)>>,
    tenants: Mutex<HashMap<String, Vec<u8>>>,
}

impl core::fmt::Debug for EnclaveService {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EnclaveService")
            .field("seal_policy", &self.seal_policy)
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

fn object_aad(ns: &str, key: &str) -> Vec<u8> {
    let mut aad = b"veritee object v1\0".to_vec();
    aad.extend_from_slice(ns.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key.as_bytes());
    aad
}

pub(crate) fn tenant_ns(tenant: &str) -> String {
    format!("t/{tenant}")
}

impl EnclaveService {
    /// An enclave on `platform`, sealing with `seal_policy`.
    pub fn new(platform: Box<dyn Platform>, seal_policy: SealPolicy) -> Self {
        Self {
            platform,
            seal_policy,
            peer_anchors: Vec::new(),
            responders: Mutex::new(HashMap::new()),
            uploads: Mutex::new(crate::data::Uploads::default()),
            tasks: Mutex::new(crate::task::Tasks::default()),
            spool_root: None,
            node: Mutex::new(None),
            audit: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Trust anchors under which peer enclaves are appraised (part of the measured
    /// configuration). Without them, replication between nodes is off.
    pub fn with_peer_anchors(mut self, anchors: Vec<veritee_attest::ParsedCertificate>) -> Self {
        self.peer_anchors = anchors;
        self
    }

    /// The directory the host writes task uploads to (tasks are off without one).
    pub fn with_spool(mut self, dir: std::path::PathBuf) -> Self {
        self.spool_root = Some(dir);
        self
    }

    /// The platform the enclave runs on.
    pub fn platform(&self) -> &dyn Platform {
        self.platform.as_ref()
    }

    pub(crate) fn seal(
        &self,
        ns: &str,
        key: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EnclaveFailure> {
        sealing::seal(
            self.platform.as_ref(),
            self.seal_policy,
            &object_aad(ns, key),
            plaintext,
        )
        .map_err(internal)
    }

    pub(crate) fn unseal(
        &self,
        ns: &str,
        key: &str,
        blob: &[u8],
    ) -> Result<SecretBytes, EnclaveFailure> {
        sealing::unseal(self.platform.as_ref(), &object_aad(ns, key), blob).map_err(|e| {
            failure(
                FailureKind::Internal,
                format!("stored object {ns}/{key} does not unseal here ({e}); it was altered, moved, or sealed by another enclave"),
            )
        })
    }

    /// The node's keys, loaded from (or created in) storage on first use.
    pub(crate) fn node(&self, link: &mut dyn HostLink) -> Result<Arc<NodeKeys>, EnclaveFailure> {
        let mut slot = lock(&self.node);
        if let Some(keys) = slot.as_ref() {
            return Ok(Arc::clone(keys));
        }
        // A per-machine, per-identity namespace: nodes sharing one database keep
        // their own keys and logs, and the id reveals nothing of the sealing key.
        let id_key = self
            .platform
            .sealing_key(self.seal_policy, b"veritee node id")
            .map_err(internal)?;
        let node_id = hex::encode(
            &veritee_crypto::mac::hmac_sha256(id_key.expose().expose(), b"node id")[..8],
        );
        let ns = format!("{ENCLAVE_NS}/{node_id}");
        let audit_der = self.load_or_create(link, &ns, "audit-key", || {
            EcdsaSigningKey::generate(EcdsaCurve::P256)
                .and_then(|k| k.to_pkcs8())
                .map_err(internal)
        })?;
        let audit_key =
            EcdsaSigningKey::from_pkcs8(EcdsaCurve::P256, audit_der.expose()).map_err(internal)?;
        let wrapping_raw = self.load_or_create(link, &ns, "wrapping-key", || {
            Ok(SecretBytes::copy_from(
                veritee_crypto::hpke::HpkeKeyPair::generate()
                    .private_bytes()
                    .expose(),
            ))
        })?;
        let mut wrapping_secret = veritee_crypto::Confidential::new([0u8; 32]);
        if wrapping_raw.len() != 32 {
            return Err(failure(
                FailureKind::Internal,
                "the stored wrapping key has the wrong length",
            ));
        }
        wrapping_secret
            .expose_mut()
            .copy_from_slice(wrapping_raw.expose());
        let wrapping = veritee_crypto::hpke::HpkeKeyPair::from_private_bytes(&wrapping_secret)
            .map_err(internal)?;
        let audit_spki = audit_key.public_key_spki().map_err(internal)?;
        let keys = Arc::new(NodeKeys {
            audit_key,
            audit_spki,
            log: format!("audit/{node_id}"),
            node_id,
            wrapping,
        });
        *slot = Some(Arc::clone(&keys));
        Ok(keys)
    }

    /// A node secret sealed in the store, created on first use. Creation races between
    /// conversations are settled by put-if-absent: the loser reads the winner's.
    fn load_or_create(
        &self,
        link: &mut dyn HostLink,
        ns: &str,
        key: &str,
        create: impl FnOnce() -> Result<SecretBytes, EnclaveFailure>,
    ) -> Result<SecretBytes, EnclaveFailure> {
        if let Some(blob) = link.get(ns, key)? {
            return self.unseal(ns, key, &blob);
        }
        let fresh = create()?;
        if link.put_if_absent(ns, key, self.seal(ns, key, fresh.expose())?)? {
            return Ok(fresh);
        }
        match link.get(ns, key)? {
            Some(blob) => self.unseal(ns, key, &blob),
            None => Err(failure(
                FailureKind::Unavailable,
                format!("{ns}/{key} vanished while being created"),
            )),
        }
    }

    /// Appends a signed entry to the audit log.
    pub(crate) fn audit(
        &self,
        link: &mut dyn HostLink,
        action: &str,
        tenant: &str,
        object: &str,
        outcome: &str,
    ) -> Result<(), EnclaveFailure> {
        let node = self.node(link)?;
        let mut head = lock(&self.audit);
        if head.is_none() {
            *head = Some(match link.log_last(&node.log)? {
                None => AuditHead {
                    next_seq: 0,
                    prev: genesis_prev(),
                },
                Some(last) => {
                    let body = open_entry(0, &last.entry, &node.audit_spki).map_err(|e| {
                        failure(
                            FailureKind::Internal,
                            format!("the stored audit log does not end with an entry of ours: {e}"),
                        )
                    })?;
                    if body.seq != last.seq {
                        return Err(failure(
                            FailureKind::Internal,
                            "the stored audit log's last entry is misnumbered",
                        ));
                    }
                    AuditHead {
                        next_seq: last.seq + 1,
                        prev: entry_hash(&last.entry),
                    }
                }
            });
        }
        let Some(h) = head.as_mut() else {
            return Err(failure(FailureKind::Internal, "audit head missing"));
        };
        let entry = sign_entry(
            &node.audit_key,
            &AuditBody {
                seq: h.next_seq,
                prev: h.prev.clone(),
                time: OffsetDateTime::now_utc(),
                action: action.into(),
                tenant: tenant.into(),
                object: object.into(),
                outcome: outcome.into(),
            },
        )
        .map_err(internal)?;
        match link.log_append(&node.log, h.next_seq, entry.clone()) {
            Ok(()) => {
                h.next_seq += 1;
                h.prev = entry_hash(&entry);
                Ok(())
            }
            Err(e) => {
                // Our view of the log is stale or the host interfered: re-read next time.
                *head = None;
                Err(e)
            }
        }
    }

    /// Handles one conversation.
    pub fn handle(
        &self,
        call: EnclaveCall,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        match call {
            EnclaveCall::Status => self.status(link),
            EnclaveCall::Attest { nonce } => self.attest(&nonce, link),
            EnclaveCall::RegisterTenant {
                tenant_id,
                public_key,
            } => self.register_tenant(&tenant_id, &public_key, link),
            EnclaveCall::OpenSession { tenant_id, nonce } => {
                self.open_session(&tenant_id, &nonce, link)
            }
            EnclaveCall::SessionMessage {
                session_id,
                message,
            } => self.session_message(&session_id, &message, link),
            EnclaveCall::WrappingKey { nonce } => self.wrapping_key(&nonce, link),
            EnclaveCall::ImportKey { tenant_id, blob } => self.import_key(&tenant_id, &blob, link),
            EnclaveCall::PeerMessage { message } => self.peer_message(&message, link),
            EnclaveCall::TaskInitiate {
                tenant_id,
                initiation,
            } => self.task_initiate(&tenant_id, &initiation, link),
            EnclaveCall::TaskKeys {
                tenant_id,
                task_id,
                delivery,
            } => self.task_keys(&tenant_id, &task_id, &delivery),
            EnclaveCall::TaskRun { tenant_id, task_id } => {
                self.task_run(&tenant_id, &task_id, link)
            }
            EnclaveCall::TaskCancel { tenant_id, task_id } => {
                self.task_cancel(&tenant_id, &task_id)
            }
            EnclaveCall::DataBegin {
                tenant_id,
                object,
                header,
            } => self.data_begin(&tenant_id, &object, &header, link),
            EnclaveCall::DataChunk {
                tenant_id,
                upload_id,
                index,
                last,
                chunk,
            } => self.data_chunk(&tenant_id, &upload_id, index, last, &chunk, link),
            EnclaveCall::DataOpen { tenant_id, object } => {
                self.data_open(&tenant_id, &object, link)
            }
            EnclaveCall::DataRead {
                tenant_id,
                object,
                index,
            } => self.data_read(&tenant_id, &object, index, link),
        }
    }

    fn status(&self, link: &mut dyn HostLink) -> Result<EnclaveReply, EnclaveFailure> {
        let node = self.node(link)?;
        let identity = self.platform.identity();
        let audit_entries = lock(&self.audit).as_ref().map_or(0, |h| h.next_seq);
        Ok(EnclaveReply::Status(EnclaveStatus {
            tee: self.platform.tee().to_string(),
            measurement: hex::encode(&identity.measurement),
            signer: identity.signer.as_ref().map(hex::encode),
            sessions: lock(&self.sessions).len() as u64,
            audit_public_key: node.audit_spki.clone(),
            audit_entries,
            audit_log: node.log.clone(),
        }))
    }

    fn attest(
        &self,
        nonce: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        if !(16..=64).contains(&nonce.len()) {
            return Err(failure(
                FailureKind::BadRequest,
                "the nonce must be 16 to 64 bytes",
            ));
        }
        let node = self.node(link)?;
        let evidence = self
            .platform
            .evidence(&ReportData::binding(
                NODE_BINDING_LABEL,
                &node.audit_spki,
                nonce,
            ))
            .map_err(internal)?;
        Ok(EnclaveReply::Attestation {
            evidence,
            audit_public_key: node.audit_spki.clone(),
        })
    }

    fn register_tenant(
        &self,
        id: &str,
        spki: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        if spki.len() > 512
            || veritee_crypto::sign::check_public_key(
                VerificationScheme::EcdsaP256Sha256Fixed,
                spki,
            )
            .is_err()
        {
            return Err(failure(
                FailureKind::BadRequest,
                "the tenant key must be an ECDSA P-256 public key (SPKI DER)",
            ));
        }
        if tenant_id(spki) != id {
            return Err(failure(
                FailureKind::BadRequest,
                "the tenant id does not match the tenant's key",
            ));
        }
        // Each node keeps its own sealed copy: nodes sharing a store cannot open each
        // other's, and a copy from another node arrives over the attested peer channel.
        let record = self.tenant_record_key(link, id)?;
        let sealed = self.seal(TENANTS_NS, &record, spki)?;
        if !link.put_if_absent(TENANTS_NS, &record, sealed)? {
            let existing = self.tenant_key(link, id)?;
            if existing != spki {
                return Err(failure(
                    FailureKind::Conflict,
                    "a different key is registered under this tenant id",
                ));
            }
        }
        lock(&self.tenants).insert(id.to_string(), spki.to_vec());
        self.audit(link, "tenant.register", id, id, "ok")?;
        Ok(EnclaveReply::TenantRegistered)
    }

    pub(crate) fn tenant_key(
        &self,
        link: &mut dyn HostLink,
        id: &str,
    ) -> Result<Vec<u8>, EnclaveFailure> {
        if let Some(k) = lock(&self.tenants).get(id) {
            return Ok(k.clone());
        }
        let record = self.tenant_record_key(link, id)?;
        let spki = match link.get(TENANTS_NS, &record)? {
            Some(blob) => self.unseal(TENANTS_NS, &record, &blob)?.expose().clone(),
            None => {
                if link.peers()?.is_empty() {
                    return Err(failure(
                        FailureKind::NotFound,
                        format!("unknown tenant {id}"),
                    ));
                }
                let spki = self.fetch_tenant_from_peers(id, link)?;
                let sealed = self.seal(TENANTS_NS, &record, &spki)?;
                link.put_if_absent(TENANTS_NS, &record, sealed)?;
                spki
            }
        };
        if tenant_id(&spki) != id {
            return Err(failure(
                FailureKind::Internal,
                "a stored tenant record does not match its id",
            ));
        }
        lock(&self.tenants).insert(id.to_string(), spki.clone());
        Ok(spki)
    }

    /// This node's own record of a tenant, without asking peers.
    pub(crate) fn own_tenant_copy(
        &self,
        id: &str,
        link: &mut dyn HostLink,
    ) -> Result<Option<Vec<u8>>, EnclaveFailure> {
        if let Some(k) = lock(&self.tenants).get(id) {
            return Ok(Some(k.clone()));
        }
        let record = self.tenant_record_key(link, id)?;
        match link.get(TENANTS_NS, &record)? {
            Some(blob) => Ok(Some(
                self.unseal(TENANTS_NS, &record, &blob)?.expose().clone(),
            )),
            None => Ok(None),
        }
    }

    /// Where this node keeps its sealed copy of a tenant's key.
    fn tenant_record_key(
        &self,
        link: &mut dyn HostLink,
        id: &str,
    ) -> Result<String, EnclaveFailure> {
        Ok(format!("{id}/{}", self.node(link)?.node_id))
    }

    fn insert_session(&self, id: String, slot: Slot) {
        let mut sessions = lock(&self.sessions);
        let now = Instant::now();
        sessions.retain(|_, (_, last)| now.duration_since(*last) < SESSION_IDLE);
        let (pending, open) = sessions.values().fold((0, 0), |(p, o), (s, _)| match s {
            Slot::Pending(_) => (p + 1, o),
            Slot::Open(_) => (p, o + 1),
        });
        let full = match slot {
            Slot::Pending(_) => pending >= MAX_PENDING_SESSIONS,
            Slot::Open(_) => open >= MAX_OPEN_SESSIONS,
        };
        if full {
            let is_pending = matches!(slot, Slot::Pending(_));
            let oldest = sessions
                .iter()
                .filter(|(_, (s, _))| matches!(s, Slot::Pending(_)) == is_pending)
                .min_by_key(|(_, (_, last))| *last)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                sessions.remove(&k);
            }
        }
        sessions.insert(id, (slot, now));
    }

    fn open_session(
        &self,
        tenant: &str,
        nonce: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        self.tenant_key(link, tenant)?;
        let (pending, offer) = PendingSession::offer(tenant, nonce, self.platform.as_ref())
            .map_err(|e| failure(FailureKind::BadRequest, e.to_string()))?;
        self.insert_session(offer.session_id.clone(), Slot::Pending(pending));
        Ok(EnclaveReply::SessionOpened {
            session_id: offer.session_id,
            enclave_public_key: offer.enclave_public_key,
            evidence: offer.evidence,
        })
    }

    fn session_message(
        &self,
        id: &str,
        message: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        // The session leaves the map while it is in use: a concurrent message for it is
        // refused rather than interleaved.
        let Some((slot, _)) = lock(&self.sessions).remove(id) else {
            return Err(failure(
                FailureKind::NotFound,
                "unknown, expired or busy session",
            ));
        };
        let (mut session, plaintext) = match slot {
            Slot::Pending(pending) => {
                let tenant = pending.tenant_id().to_string();
                let spki = self.tenant_key(link, &tenant)?;
                match pending.accept(message, &spki) {
                    Ok(accepted) => {
                        self.audit(link, "session.establish", &tenant, id, "ok")?;
                        accepted
                    }
                    Err(e) => {
                        warn!(session = id, "session establishment refused: {e}");
                        self.audit(
                            link,
                            "session.establish",
                            &tenant,
                            id,
                            &format!("refused: {e}"),
                        )?;
                        return Err(failure(
                            FailureKind::Unauthorized,
                            format!("session refused: {e}"),
                        ));
                    }
                }
            }
            Slot::Open(mut open) => match open.open_request(message) {
                Ok(plaintext) => (open, plaintext),
                Err(e) => {
                    let tenant = open.tenant_id().to_string();
                    self.audit(
                        link,
                        "session.message",
                        &tenant,
                        id,
                        &format!("refused, session closed: {e}"),
                    )?;
                    return Err(failure(
                        FailureKind::BadRequest,
                        format!("session message refused and session closed: {e}"),
                    ));
                }
            },
        };
        let response = match Request::decode(&plaintext) {
            Ok(request) => self.serve(session.tenant_id().to_string(), request, link),
            Err(e) => Response::error("bad_request", e.to_string()),
        };
        let encoded = response.encode().map_err(internal)?;
        let reply = session.seal_reply(encoded.expose()).map_err(internal)?;
        self.insert_session(id.to_string(), Slot::Open(session));
        Ok(EnclaveReply::Message { message: reply })
    }

    /// Executes one tenant request. Failures become encrypted error responses.
    fn serve(&self, tenant: String, request: Request, link: &mut dyn HostLink) -> Response {
        debug!(tenant = tenant.as_str(), request = ?request, "serving");
        let result = match request {
            Request::Ping => Ok(Response::Pong),
            Request::PutSecret { name, value } => self.put_secret(&tenant, &name, &value, link),
            Request::GetSecret { name } => {
                self.with_secret(&tenant, &name, "secret.release", link, |v| {
                    Ok(Response::Secret(SecretBytes::copy_from(v.expose())))
                })
            }
            Request::HmacSha256 { name, data } => {
                self.with_secret(&tenant, &name, "secret.use", link, |v| {
                    Ok(Response::Mac(
                        veritee_crypto::mac::hmac_sha256(v.expose(), &data).to_vec(),
                    ))
                })
            }
            Request::ListSecrets => self.list_secrets(&tenant, link),
            Request::DeleteSecret { name } => self.delete_secret(&tenant, &name, link),
            Request::ListKeys => self.key_names(&tenant, link).map(Response::Names),
            Request::EnsureKey { name } => self
                .user_key(&tenant, &name, link)
                .map(|k| Response::KeyReady(veritee_channel::deploy::key_digest(&k.key))),
        };
        result.unwrap_or_else(|f| {
            let code = match f.kind {
                FailureKind::BadRequest => "bad_request",
                FailureKind::NotFound => "not_found",
                FailureKind::Unauthorized => "forbidden",
                FailureKind::Conflict => "conflict",
                FailureKind::Unavailable => "unavailable",
                FailureKind::Internal => "internal",
            };
            Response::error(code, f.message)
        })
    }

    pub(crate) fn checked_name(name: &str) -> Result<(), EnclaveFailure> {
        check_name(name).map_err(|m| failure(FailureKind::BadRequest, m))
    }

    fn put_secret(
        &self,
        tenant: &str,
        name: &str,
        value: &SecretBytes,
        link: &mut dyn HostLink,
    ) -> Result<Response, EnclaveFailure> {
        Self::checked_name(name)?;
        if value.is_empty() || value.len() > MAX_SECRET_LEN {
            return Err(failure(
                FailureKind::BadRequest,
                format!(
                    "a secret is 1 to {MAX_SECRET_LEN} bytes, got {}",
                    value.len()
                ),
            ));
        }
        let (ns, key) = (tenant_ns(tenant), format!("secret/{name}"));
        let sealed = self.seal(&ns, &key, value.expose())?;
        link.put(&ns, &key, sealed)?;
        self.audit(link, "secret.put", tenant, name, "ok")?;
        Ok(Response::Stored)
    }

    fn with_secret(
        &self,
        tenant: &str,
        name: &str,
        action: &str,
        link: &mut dyn HostLink,
        f: impl FnOnce(&SecretBytes) -> Result<Response, EnclaveFailure>,
    ) -> Result<Response, EnclaveFailure> {
        Self::checked_name(name)?;
        let (ns, key) = (tenant_ns(tenant), format!("secret/{name}"));
        let Some(blob) = link.get(&ns, &key)? else {
            self.audit(link, action, tenant, name, "refused: not found")?;
            return Err(failure(
                FailureKind::NotFound,
                format!("no secret named {name}"),
            ));
        };
        let value = self.unseal(&ns, &key, &blob)?;
        // Audit before the secret goes anywhere: no unaudited release or use.
        self.audit(link, action, tenant, name, "ok")?;
        f(&value)
    }

    fn list_secrets(
        &self,
        tenant: &str,
        link: &mut dyn HostLink,
    ) -> Result<Response, EnclaveFailure> {
        let ns = tenant_ns(tenant);
        let mut names = Vec::new();
        let mut after = None;
        loop {
            let keys = link.list(&ns, "secret/", after.clone(), 1000)?;
            let done = keys.len() < 1000;
            after = keys.last().cloned();
            names.extend(
                keys.into_iter()
                    .filter_map(|k| k.strip_prefix("secret/").map(str::to_string)),
            );
            if done || names.len() >= 100_000 {
                break;
            }
        }
        self.audit(link, "secret.list", tenant, "*", "ok")?;
        Ok(Response::Names(names))
    }

    fn delete_secret(
        &self,
        tenant: &str,
        name: &str,
        link: &mut dyn HostLink,
    ) -> Result<Response, EnclaveFailure> {
        Self::checked_name(name)?;
        let deleted = link.delete(&tenant_ns(tenant), &format!("secret/{name}"))?;
        self.audit(
            link,
            "secret.delete",
            tenant,
            name,
            if deleted { "ok" } else { "not found" },
        )?;
        Ok(Response::Deleted(deleted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_aad_separates_namespace_and_key() {
        assert_ne!(object_aad("t/a", "secret/b"), object_aad("t/a/secret", "b"));
        assert_ne!(
            object_aad("t/alice", "secret/x"),
            object_aad("t/bob", "secret/x")
        );
    }
}
