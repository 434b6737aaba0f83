//! Messages between the host and the enclave process.
//!
//! A conversation is one [`HostToEnclave::Request`] answered by one
//! [`EnclaveToHost::Reply`]; in between, the enclave may ask the host for storage with
//! [`EnclaveToHost::HostCall`], each answered by a [`HostToEnclave::HostResult`]. The
//! host serves storage but never sees what it stores in the clear: the enclave seals
//! before it writes.

use serde::{Deserialize, Serialize};

/// Largest enclave-to-enclave message a host relays (page frames of a fork, a module
/// and its snapshot's manifest fit).
pub const MAX_PEER_MESSAGE: usize = 48 * 1024 * 1024;

/// Host to enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostToEnclave {
    /// Start a conversation.
    Request {
        /// Conversation id, echoed in the reply.
        id: u64,
        /// What is asked.
        call: EnclaveCall,
    },
    /// The answer to the enclave's last [`EnclaveToHost::HostCall`].
    HostResult {
        /// Conversation id.
        id: u64,
        /// The result.
        result: HostResult,
    },
}

impl crate::frame::TrailingBytes for HostToEnclave {
    fn trailing_bytes(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Self::Request {
                call:
                    EnclaveCall::PeerMessage { message } | EnclaveCall::SessionMessage { message, .. },
                ..
            } => Some(message),
            _ => None,
        }
    }
}

impl crate::frame::TrailingBytes for EnclaveToHost {
    fn trailing_bytes(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Self::HostCall {
                call: HostCall::PeerExchange { message, .. },
                ..
            }
            | Self::Reply {
                result: Ok(EnclaveReply::Message { message }),
                ..
            } => Some(message),
            _ => None,
        }
    }
}

/// Enclave to host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnclaveToHost {
    /// The end of a conversation.
    Reply {
        /// Conversation id.
        id: u64,
        /// Outcome.
        result: Result<EnclaveReply, EnclaveFailure>,
    },
    /// A storage request the host must serve before the conversation continues.
    HostCall {
        /// Conversation id.
        id: u64,
        /// The request.
        call: HostCall,
    },
}

/// A tenant's signed request as it reached the host. The enclave checks the signature
/// itself, with its own sealed copy of the tenant's key, over the method, this path and
/// the call's body, and rebuilds the path from the call's fields: a host that changes a
/// field, swaps the tenant or replays the request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRequest {
    /// The `Authorization: Veritee ...` header value (or, for tenant registration, the
    /// tenant's proof-of-possession header).
    pub authorization: String,
    /// The HTTP method.
    pub method: String,
    /// The path and query as the client sent them.
    pub path: String,
}

/// In the host's peer list: it may start a child node on this machine for a fork, as
/// the peer `local:NAME` (a new node process of the same code, reached like any peer).
pub const ANY_LOCAL_CHILD: &str = "local:*";
/// The prefix of such a child's peer name.
pub const LOCAL_CHILD_PREFIX: &str = "local:";

/// What the host asks of the enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnclaveCall {
    /// Identity and health.
    Status,
    /// The public key of a tenant the host does not know (one registered at a peer
    /// node), as the enclave knows it or learns it from its attested peers. The tenant
    /// id is the key's digest, so no one can answer with another key.
    TenantKey {
        /// The tenant id.
        tenant: String,
    },
    /// Evidence binding the node's long-term public keys to `nonce`.
    Attest {
        /// The verifier's nonce.
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
    },
    /// Record a tenant's public key inside the enclave: the admin-authenticated request,
    /// with the tenant's own signature over it (proof that it holds the key).
    RegisterTenant {
        /// The tenant's proof of possession.
        request: SignedRequest,
        /// The JSON body (`RegisterTenantRequest`).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// Begin an attested session for a tenant.
    OpenSession {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The JSON body (`OpenSessionRequest`).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// An end-to-end encrypted message within a session.
    SessionMessage {
        /// The session.
        session_id: String,
        /// Ciphertext, opaque to the host.
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    /// The node's wrapping key with evidence binding it (and the audit key) to `nonce`.
    WrappingKey {
        /// The client's nonce.
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
    },
    /// Import a user data key wrapped to the wrapping key.
    ImportKey {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The JSON body (`ImportKeyRequest`).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// Begin storing a data object: the stream header, checked under the tenant's key.
    DataBegin {
        /// The tenant's signed request.
        request: SignedRequest,
        /// Object name.
        object: String,
        /// The stream header (the body).
        #[serde(with = "serde_bytes")]
        header: Vec<u8>,
    },
    /// One chunk of an upload, in order.
    DataChunk {
        /// The tenant's signed request.
        request: SignedRequest,
        /// Object name.
        object: String,
        /// Upload id from [`EnclaveReply::DataUpload`].
        upload_id: String,
        /// Chunk index.
        index: u64,
        /// Whether it is the final chunk.
        last: bool,
        /// Ciphertext and tag (the body).
        #[serde(with = "serde_bytes")]
        chunk: Vec<u8>,
    },
    /// The header and length of a stored object, vouched for under the client's nonce.
    DataOpen {
        /// The tenant's signed request.
        request: SignedRequest,
        /// Object name.
        object: String,
        /// The client's nonce, hex.
        nonce: String,
    },
    /// One stored chunk, checked before it is returned.
    DataRead {
        /// The tenant's signed request.
        request: SignedRequest,
        /// Object name.
        object: String,
        /// Chunk index.
        index: u64,
    },
    /// A task initiation (TTIS), as the client sent it.
    TaskInitiate {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The exact initiation bytes (JSON; the body).
        #[serde(with = "serde_bytes")]
        initiation: Vec<u8>,
    },
    /// The client's key delivery for a task.
    TaskKeys {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The task.
        task_id: String,
        /// The delivery (the body).
        #[serde(with = "serde_bytes")]
        delivery: Vec<u8>,
    },
    /// Run a task whose encrypted files the host has placed in the spool.
    TaskRun {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The task.
        task_id: String,
    },
    /// Withdraw a task: forgotten if not yet run; if running, its reads of inputs
    /// still arriving stop and the run fails.
    TaskCancel {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The task.
        task_id: String,
    },
    /// A message of the mutually attested enclave-to-enclave channel, relayed from a peer node.
    PeerMessage {
        /// Opaque channel bytes.
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    /// A signed checkpoint of the audit log (C2SP signed note).
    AuditCheckpoint,
    /// A session resumed by a ticket, with its first request.
    ResumeSession {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The JSON body (`ResumeSessionRequest`).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// A message of the Confidential Containers KBS protocol (`/kbs/v0/...`).
    Kbs(KbsCall),
    /// Secret import and partitions (flow 3).
    Import(ImportCall),
    /// TEE-bound workloads (flow 2).
    Workload(crate::workload::WorkloadCall),
}

/// The enclave's public facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnclaveStatus {
    /// TEE kind name.
    pub tee: String,
    /// The enclave's measurement, hex.
    pub measurement: String,
    /// The signer, hex, if signed.
    pub signer: Option<String>,
    /// Open sessions.
    pub sessions: u64,
    /// The audit signing key, SubjectPublicKeyInfo DER.
    #[serde(with = "serde_bytes")]
    pub audit_public_key: Vec<u8>,
    /// Number of audit entries.
    pub audit_entries: u64,
    /// The name of this enclave's audit log in the store.
    pub audit_log: String,
    /// The node id (what tenants' signatures name).
    pub node_id: String,
    /// This enclave process's epoch (what tenants' signatures name).
    pub epoch: String,
    /// Transitions of the sealed state journal, and the counter value they reached
    /// (which the platform's monotonic counter must match).
    pub state_transitions: u64,
    /// The counter value of the last transition.
    pub state_counter: u64,
}

/// What the enclave answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnclaveReply {
    /// Answer to [`EnclaveCall::Status`].
    Status(EnclaveStatus),
    /// Answer to [`EnclaveCall::TenantKey`]: the tenant's SPKI DER.
    TenantKey {
        /// SPKI DER.
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
    },
    /// Answer to [`EnclaveCall::Attest`].
    Attestation {
        /// Evidence; report data = binding of the node keys and the nonce.
        #[serde(with = "serde_bytes")]
        evidence: Vec<u8>,
        /// The audit signing key, SPKI DER.
        #[serde(with = "serde_bytes")]
        audit_public_key: Vec<u8>,
        /// The checkpoint signing key, Ed25519.
        #[serde(with = "serde_bytes")]
        checkpoint_public_key: Vec<u8>,
    },
    /// Answer to [`EnclaveCall::RegisterTenant`].
    TenantRegistered {
        /// The tenant id the enclave derived from the key.
        tenant_id: String,
    },
    /// Answer to [`EnclaveCall::WrappingKey`].
    WrappingKey {
        /// HPKE (X25519) public key.
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
        /// The audit (receipt) signing key, SPKI DER.
        #[serde(with = "serde_bytes")]
        audit_public_key: Vec<u8>,
        /// The checkpoint signing key, Ed25519.
        #[serde(with = "serde_bytes")]
        checkpoint_public_key: Vec<u8>,
        /// The node id.
        node_id: String,
        /// Evidence; report data binds the keys, the node id and the nonce.
        #[serde(with = "serde_bytes")]
        evidence: Vec<u8>,
    },
    /// Answer to [`EnclaveCall::DataBegin`].
    DataUpload {
        /// Upload id.
        upload_id: String,
    },
    /// Answer to [`EnclaveCall::DataChunk`].
    DataChunkStored {
        /// Whether the object is now complete and visible.
        complete: bool,
    },
    /// Answer to [`EnclaveCall::DataOpen`].
    DataHeader {
        /// The stream header.
        #[serde(with = "serde_bytes")]
        header: Vec<u8>,
        /// Number of chunks.
        chunks: u64,
        /// The object's current version.
        version: u64,
        /// The enclave's MAC over the object's state and the client's nonce.
        #[serde(with = "serde_bytes")]
        vouch: Vec<u8>,
    },
    /// Answer to [`EnclaveCall::DataRead`].
    DataChunk {
        /// Ciphertext and tag, as stored.
        #[serde(with = "serde_bytes")]
        chunk: Vec<u8>,
        /// Whether it is the final chunk.
        last: bool,
    },
    /// Answer to [`EnclaveCall::TaskInitiate`]: the attestation signal.
    TaskSignal {
        /// SKEK, X25519.
        #[serde(with = "serde_bytes")]
        skek: Vec<u8>,
        /// Evidence binding SKEK, nonce and initiation digest.
        #[serde(with = "serde_bytes")]
        evidence: Vec<u8>,
        /// Tasks held by this enclave.
        load: u32,
    },
    /// Answer to [`EnclaveCall::TaskKeys`].
    TaskKeysAccepted,
    /// Answer to [`EnclaveCall::TaskCancel`].
    TaskCancelled {
        /// Whether the task was running (its run now fails) or only initiated.
        was_running: bool,
    },
    /// Answer to [`EnclaveCall::TaskRun`]: the authenticated result envelope.
    TaskResult {
        /// The envelope (JSON).
        #[serde(with = "serde_bytes")]
        envelope: Vec<u8>,
    },
    /// Answer to [`EnclaveCall::ImportKey`]: a receipt signed with the audit key.
    KeyImported {
        /// The signed receipt.
        #[serde(with = "serde_bytes")]
        receipt: Vec<u8>,
        /// A checkpoint of the audit log that includes the import.
        checkpoint: String,
    },
    /// Answer to [`EnclaveCall::AuditCheckpoint`].
    Checkpoint {
        /// The signed note.
        note: String,
    },
    /// Answer to [`EnclaveCall::OpenSession`].
    SessionOpened {
        /// New session id.
        session_id: String,
        /// The session's enclave public key (HPKE, X25519).
        #[serde(with = "serde_bytes")]
        enclave_public_key: Vec<u8>,
        /// Evidence binding that key and the client's nonce.
        #[serde(with = "serde_bytes")]
        evidence: Vec<u8>,
    },
    /// Answer to [`EnclaveCall::SessionMessage`] or [`EnclaveCall::PeerMessage`].
    Message {
        /// Ciphertext for the client or peer.
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    /// Answer to [`EnclaveCall::ResumeSession`]: the resumed session and the reply to
    /// its first request.
    SessionResumed {
        /// The resumed session's id (both ends derive it).
        session_id: String,
        /// The sealed reply.
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    /// Answer to [`EnclaveCall::Kbs`].
    Kbs(KbsReply),
    /// Answer to [`EnclaveCall::Import`].
    Import(ImportReply),
    /// Answer to [`EnclaveCall::Workload`].
    Workload(crate::workload::WorkloadReply),
}

/// A tenant's import or partition request (flow 3). Each carries the tenant's signed
/// request and the body it signed, which the enclave checks itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportCall {
    /// `POST /v1/import`, with the inner layer the host peeled from its outer one.
    Key {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The JSON body (`ImportRequest`), as signed.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
        /// The inner layer: still encrypted, to the enclave.
        #[serde(with = "serde_bytes")]
        inner: Vec<u8>,
    },
    /// The import as the customer sent it, for a node whose provider layer is peeled
    /// in the enclave: the enclave peels both layers of the tenant-signed body's
    /// `sealed`, the outer one with its own provider-layer key.
    KeyBothLayers {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The JSON body (`ImportRequest`), as signed.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// The enclave's provider-layer public key (X25519), which the provider states as
    /// its host key when the enclave peels the provider layer.
    ProviderLayerKey,
    /// The enclave's RSA import key (for the CKM_RSA_AES_KEY_WRAP format), stated by
    /// its audit key.
    TeeRsaKey,
    /// `POST /v1/partitions`.
    CreatePartition {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The JSON body (`CreatePartitionRequest`).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `DELETE /v1/partitions/{name}`.
    DeletePartition {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The partition.
        name: String,
        /// The body (`DeletePartitionRequest`, or empty).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/partitions/{name}/keys/{key_id}/disable`.
    DisableKey {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The partition.
        partition: String,
        /// The key.
        key_id: String,
        /// The body (`DisableKeyRequest`, or empty).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /v1/officers`.
    RegisterOfficer {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The JSON body (`RegisterOfficerRequest`).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `GET /v1/officers`.
    ListOfficers {
        /// The tenant's signed request (empty body).
        request: SignedRequest,
    },
    /// `POST /v1/quorum-tokens`.
    QuorumToken {
        /// The tenant's signed request.
        request: SignedRequest,
        /// The JSON body (`QuorumTokenRequest`).
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `GET /v1/partitions`.
    ListPartitions {
        /// The tenant's signed request (empty body).
        request: SignedRequest,
    },
}

/// What the enclave answers to an [`ImportCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportReply {
    /// The key is stored.
    Imported {
        /// The confirmation signed by the attested audit key.
        #[serde(with = "serde_bytes")]
        confirmation: Vec<u8>,
        /// A signed checkpoint covering the import.
        checkpoint: String,
    },
    /// The tenant's partitions and their key ids.
    Partitions(Vec<(String, Vec<String>)>),
    /// The tenant's officers: (role, quorum, public keys).
    Officers(Vec<(String, u32, Vec<[u8; 32]>)>),
    /// A quorum token's bytes.
    QuorumToken(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The enclave's provider-layer public key.
    ProviderLayerKey(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The enclave's RSA import key: a `TeeRsaKeyStatement` signed by the audit key
    /// (`veritee_audit::sign_document` layout).
    TeeRsaKey(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Done.
    Done,
}

/// A KBS protocol message, passed through by the host as it came: the enclave parses
/// and authenticates every part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KbsCall {
    /// `POST /kbs/v0/auth`: the guest's Request.
    Auth {
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// `POST /kbs/v0/attest`: the guest's Attestation, in the session its cookie names.
    Attest {
        /// The `kbs-session-id` cookie, when sent.
        session: Option<String>,
        /// The JSON body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
        /// Collateral the node's operator provides for hardware evidence (DCAP
        /// collateral JSON, CRLs): vendor-signed, so the enclave checks it and the
        /// host cannot forge it.
        collateral: Vec<serde_bytes::ByteBuf>,
    },
    /// `GET /kbs/v0/resource/<repo>/<type>/<tag>`: a resource, for an attested session
    /// (cookie) or an attestation token (bearer).
    Resource {
        /// The `kbs-session-id` cookie, when sent.
        session: Option<String>,
        /// The `Authorization: Bearer` token, when sent.
        bearer: Option<String>,
        /// `repo/type/tag`.
        path: String,
    },
    /// An administrator's request (resources, the resource policy).
    Admin {
        /// The `Authorization: Bearer` token, when sent.
        bearer: Option<String>,
        /// The HTTP method.
        method: String,
        /// The path below `/kbs/v0/`.
        path: String,
        /// The body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
}

/// What the enclave answers to a [`KbsCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KbsReply {
    /// A JSON body for the guest or admin, with the session cookie to set, if any.
    Json {
        /// The body.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
        /// The session the cookie names, and when it expires (Unix seconds).
        session: Option<(String, i64)>,
    },
    /// Done, nothing to say (200 with an empty body).
    Done,
}

/// The class of a failure, for mapping onto HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The request is malformed.
    BadRequest,
    /// Authentication failed.
    Unauthorized,
    /// The object or session does not exist (for this tenant).
    NotFound,
    /// The object exists already.
    Conflict,
    /// The enclave cannot serve now.
    Unavailable,
    /// A tenant signature made for another node or an earlier run of the enclave: sign
    /// the request again for the current one.
    StaleSignature,
    /// A bug or a broken invariant.
    Internal,
    /// The tenant holds as many of something (waiting tasks) as one tenant may.
    TooMany,
}

/// A failed conversation. Messages never carry secret material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnclaveFailure {
    /// Class.
    pub kind: FailureKind,
    /// Explanation for the client.
    pub message: String,
}

/// An object written with a log entry ([`HostCall::LogAppend`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectWrite {
    /// Namespace.
    pub ns: String,
    /// Key.
    pub key: String,
    /// Value (sealed).
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// Storage the enclave asks of the host. Values are sealed or public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostCall {
    /// Read one object.
    Get {
        /// Namespace.
        ns: String,
        /// Key.
        key: String,
    },
    /// Write one object (durable before the result).
    Put {
        /// Namespace.
        ns: String,
        /// Key.
        key: String,
        /// Sealed value.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Create one object unless it exists.
    PutIfAbsent {
        /// Namespace.
        ns: String,
        /// Key.
        key: String,
        /// Sealed value.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// List keys.
    List {
        /// Namespace.
        ns: String,
        /// Key prefix.
        prefix: String,
        /// Start after this key.
        after: Option<String>,
        /// Most keys.
        limit: u32,
    },
    /// Delete one object.
    Delete {
        /// Namespace.
        ns: String,
        /// Key.
        key: String,
    },
    /// Append to a log at exactly `seq`, and write `objects` with it: all of it, or
    /// none of it.
    LogAppend {
        /// Log name.
        log: String,
        /// Sequence number.
        seq: u64,
        /// Entry.
        #[serde(with = "serde_bytes")]
        entry: Vec<u8>,
        /// Objects written in the same transaction (sealed records a journal entry names).
        #[serde(default)]
        objects: Vec<ObjectWrite>,
    },
    /// Append several entries to a log, numbered from exactly `seq`, in one transaction:
    /// all of them, or none (group commit: one sync for the lot).
    LogAppendEntries {
        /// Log name.
        log: String,
        /// Sequence number of the first entry.
        seq: u64,
        /// Entries, in order.
        entries: Vec<serde_bytes::ByteBuf>,
    },
    /// The last entry of a log.
    LogLast {
        /// Log name.
        log: String,
    },
    /// Entries of a log from `from` on, in order.
    LogRead {
        /// Log name.
        log: String,
        /// First sequence number.
        from: u64,
        /// Most entries.
        limit: u32,
    },
    /// The peer nodes this node may fetch replicas from (routing only; untrusted), and
    /// [`ANY_LOCAL_CHILD`] if the host may start child nodes on this machine.
    Peers,
    /// Relay an enclave-to-enclave message to a peer node and return its answer.
    PeerExchange {
        /// The peer's URL, from [`HostCall::Peers`].
        peer: String,
        /// Opaque channel bytes.
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
    /// Ask a key owner's revocation endpoint (POST `query`, JSON) and return its
    /// answer. Both are authenticated end to end (a token proof one way, the
    /// endpoint's signature the other): the host only carries them.
    RevocationQuery {
        /// The endpoint's URL.
        endpoint: String,
        /// The question.
        #[serde(with = "serde_bytes")]
        query: Vec<u8>,
    },
}

/// The host's answer to a [`HostCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostResult {
    /// For Get.
    Value(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    /// For Put and LogAppend.
    Written,
    /// For PutIfAbsent.
    Created(bool),
    /// For List.
    Keys(Vec<String>),
    /// For Delete.
    Deleted(bool),
    /// For LogLast: (seq, entry).
    Last(Option<LogEntry>),
    /// For LogRead.
    Entries(Vec<LogEntry>),
    /// For Peers.
    PeerList(Vec<String>),
    /// For PeerExchange.
    PeerReply(#[serde(with = "serde_bytes")] Vec<u8>),
    /// For RevocationQuery: the endpoint's answer.
    RevocationAnswer(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A sequence conflict (someone else appended first).
    Conflict(String),
    /// The store failed.
    Failed(String),
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Sequence number.
    pub seq: u64,
    /// Bytes.
    #[serde(with = "serde_bytes")]
    pub entry: Vec<u8>,
}
