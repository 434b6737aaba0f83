//! Conversations with the enclave: send a call, serve its storage requests from the
//! store, return its reply. The host relays; it neither decrypts nor interprets.

use crate::HostError;
use crate::children::LocalChildren;
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use veritee_proto::frame::{self, HEADER_LEN};
use veritee_proto::ipc::{
    EnclaveCall, EnclaveFailure, EnclaveReply, EnclaveToHost, HostCall, HostResult, HostToEnclave,
    LogEntry,
};
use veritee_store::{Store, StoreError};

/// Talks to the enclave on behalf of requests.
#[derive(Clone)]
pub struct EnclaveLink {
    supervisor: Supervisor,
    store: Arc<dyn Store>,
    next_id: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    peers: Arc<Vec<String>>,
    peer_token: Arc<String>,
    http: reqwest::Client,
    /// Child nodes it may start on this machine (`local:NAME`).
    children: Option<Arc<LocalChildren>>,
}

/// How long a revocation endpoint has to answer.
const REVOCATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Largest answer accepted from a revocation endpoint.
const MAX_REVOCATION_ANSWER: usize = 4096;
/// Largest answer accepted from a peer node.
const MAX_PEER_REPLY: usize = veritee_proto::ipc::MAX_PEER_MESSAGE;

impl core::fmt::Debug for EnclaveLink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EnclaveLink")
            .field("supervisor", &self.supervisor)
            .finish()
    }
}

/// Reads one frame; a relayed message at its end is handed over without a copy
/// ([`frame::decode_with_tail`]).
async fn read_frame<T: serde::de::DeserializeOwned + frame::TrailingBytes>(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<T, HostError> {
    let io =
        |e: std::io::Error| HostError::EnclaveUnavailable(format!("enclave connection lost: {e}"));
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header).await.map_err(io)?;
    let len =
        frame::parse_header(&header).map_err(|e| HostError::EnclaveUnavailable(e.to_string()))?;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.map_err(io)?;
    frame::decode_with_tail(payload)
        .map_err(|e| HostError::EnclaveUnavailable(format!("bad frame from the enclave: {e}")))
}

async fn write_frame<T: serde::Serialize>(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    message: &T,
) -> Result<(), HostError> {
    let bytes = frame::encode(message).map_err(|e| HostError::Internal(e.to_string()))?;
    stream
        .write_all(&bytes)
        .await
        .map_err(|e| HostError::EnclaveUnavailable(format!("enclave connection lost: {e}")))
}

/// Writes a frame for `message`, whose last item (an empty byte string) stands for
/// `tail`: a large tail is written as it lies, after the rest, instead of being copied;
/// a small one is copied, so that the frame takes one write.
async fn write_frame_with_tail<T: serde::Serialize>(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    message: &T,
    tail: &[u8],
) -> Result<(), HostError> {
    let mut head =
        frame::encode_head(message, tail).map_err(|e| HostError::Internal(e.to_string()))?;
    let lost =
        |e: std::io::Error| HostError::EnclaveUnavailable(format!("enclave connection lost: {e}"));
    if tail.len() < frame::MIN_TRAILING_BYTES {
        head.extend_from_slice(tail);
        return stream.write_all(&head).await.map_err(lost);
    }
    stream.write_all(&head).await.map_err(lost)?;
    stream.write_all(tail).await.map_err(lost)
}

fn store_failure(e: StoreError) -> HostResult {
    match e {
        e @ StoreError::Conflict { .. } => HostResult::Conflict(e.to_string()),
        other => HostResult::Failed(other.to_string()),
    }
}

impl EnclaveLink {
    /// A link over `supervisor`'s enclave, serving storage from `store`.
    pub fn new(
        supervisor: Supervisor,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        peers: Vec<String>,
        peer_token: String,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            supervisor,
            store,
            next_id: Arc::new(AtomicU64::new(1)),
            metrics,
            peers: Arc::new(peers),
            peer_token: Arc::new(peer_token),
            http,
            children: None,
        }
    }

    /// Starts child nodes on this machine for forks to `local:NAME`.
    pub fn with_local_children(mut self, children: Arc<LocalChildren>) -> Self {
        self.children = Some(children);
        self
    }

    /// Whether the node has configured peers its enclave may learn tenants from.
    pub fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    /// The child nodes it may start, if it may.
    pub fn local_children(&self) -> Option<&LocalChildren> {
        self.children.as_deref()
    }

    /// The peers the enclave may name: the configured ones, and `local:*` when local
    /// children may be started.
    fn peer_list(&self) -> Vec<String> {
        let mut peers = self.peers.as_ref().clone();
        if self.children.is_some() {
            peers.push(veritee_proto::ipc::ANY_LOCAL_CHILD.to_string());
        }
        peers
    }

    /// Relays an enclave-to-enclave message to a configured peer node, or to a local
    /// child node (started at its first message).
    async fn peer_exchange(&self, peer: &str, message: Vec<u8>) -> HostResult {
        let base = match (
            peer.strip_prefix(veritee_proto::ipc::LOCAL_CHILD_PREFIX),
            &self.children,
        ) {
            (Some(name), Some(children)) => {
                match children.reach(name, &self.store, &self.peer_token).await {
                    Ok(url) => url,
                    Err(e) => return HostResult::Failed(e),
                }
            }
            _ if self.peers.iter().any(|p| p == peer) => peer.to_string(),
            _ => return HostResult::Failed(format!("{peer} is not a configured peer")),
        };
        let url = format!("{}/v1/peer", base.trim_end_matches('/'));
        let sent = self
            .http
            .post(&url)
            .header("content-type", "application/octet-stream")
            .header(
                "authorization",
                format!("{} {}", crate::PEER_SCHEME, self.peer_token),
            )
            .body(message)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return HostResult::Failed(format!("peer {peer} unreachable: {e}")),
        };
        let status = resp.status();
        match resp.bytes().await {
            Ok(body) if status.is_success() && body.len() <= MAX_PEER_REPLY => {
                HostResult::PeerReply(body.to_vec())
            }
            Ok(body) => HostResult::Failed(format!(
                "peer {peer} answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )),
            Err(e) => HostResult::Failed(format!("peer {peer}: {e}")),
        }
    }

    /// Carries an enclave's revocation question to a key owner's endpoint. The answer
    /// is signed by the endpoint and checked in the enclave; what the host can do is
    /// withhold it, which the enclave bounds.
    async fn revocation_query(&self, endpoint: &str, query: Vec<u8>) -> HostResult {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return HostResult::Failed("a revocation endpoint is an http or https URL".into());
        }
        let sent = self
            .http
            .post(endpoint)
            .header("content-type", "application/json")
            .timeout(REVOCATION_TIMEOUT)
            .body(query)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            // Not the error's text: it could echo what the customer's endpoint is.
            Err(_) => return HostResult::Failed("the revocation endpoint is unreachable".into()),
        };
        let status = resp.status();
        match resp.bytes().await {
            Ok(body) if status.is_success() && body.len() <= MAX_REVOCATION_ANSWER => {
                HostResult::RevocationAnswer(body.to_vec())
            }
            Ok(_) => HostResult::Failed(format!("the revocation endpoint answered {status}")),
            Err(_) => HostResult::Failed("the revocation endpoint's answer was cut short".into()),
        }
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Serves one storage request.
    async fn host_call(&self, call: HostCall) -> HostResult {
        let s = &self.store;
        match call {
            HostCall::Get { ns, key } => s.get(&ns, &key).await.map(HostResult::Value),
            HostCall::Put { ns, key, value } => {
                s.put(&ns, &key, &value).await.map(|()| HostResult::Written)
            }
            HostCall::PutIfAbsent { ns, key, value } => s
                .put_if_absent(&ns, &key, &value)
                .await
                .map(HostResult::Created),
            HostCall::List {
                ns,
                prefix,
                after,
                limit,
            } => s
                .list(&ns, &prefix, after.as_deref(), limit as usize)
                .await
                .map(HostResult::Keys),
            HostCall::Delete { ns, key } => s.delete(&ns, &key).await.map(HostResult::Deleted),
            HostCall::LogAppend {
                log,
                seq,
                entry,
                objects,
            } => {
                let objects: Vec<veritee_store::StoredObject> = objects
                    .into_iter()
                    .map(|o| veritee_store::StoredObject {
                        ns: o.ns,
                        key: o.key,
                        value: o.value,
                    })
                    .collect();
                s.log_append_with_objects(&log, seq, &entry, &objects)
                    .await
                    .map(|()| HostResult::Written)
            }
            HostCall::LogAppendEntries { log, seq, entries } => {
                let entries: Vec<Vec<u8>> =
                    entries.into_iter().map(|entry| entry.into_vec()).collect();
                s.log_append_entries(&log, seq, &entries)
                    .await
                    .map(|()| HostResult::Written)
            }
            HostCall::LogRead { log, from, limit } => {
                s.log_read(&log, from, limit as usize).await.map(|entries| {
                    HostResult::Entries(
                        entries
                            .into_iter()
                            .map(|(seq, entry)| LogEntry { seq, entry })
                            .collect(),
                    )
                })
            }
            HostCall::LogLast { log } => s
                .log_last(&log)
                .await
                .map(|last| HostResult::Last(last.map(|(seq, entry)| LogEntry { seq, entry }))),
            HostCall::Peers => Ok(HostResult::PeerList(self.peer_list())),
            HostCall::PeerExchange { peer, message } => {
                Ok(self.peer_exchange(&peer, message).await)
            }
            HostCall::RevocationQuery { endpoint, query } => {
                Ok(self.revocation_query(&endpoint, query).await)
            }
        }
        .unwrap_or_else(store_failure)
    }

    /// One conversation.
    pub async fn call(
        &self,
        call: EnclaveCall,
    ) -> Result<Result<EnclaveReply, EnclaveFailure>, HostError> {
        self.converse(call, None).await
    }

    /// One conversation for a call whose last field is a byte string: `call` holds it
    /// empty, and `tail` is what it holds. The enclave reads the same frame as from
    /// [`Self::call`], but the host does not copy `tail` into it: a relayed message
    /// (a fork's 8 MiB of pages) goes from the HTTP body to the enclave as it lies.
    pub async fn call_with_tail(
        &self,
        call: EnclaveCall,
        tail: &[u8],
    ) -> Result<Result<EnclaveReply, EnclaveFailure>, HostError> {
        self.converse(call, Some(tail)).await
    }

    async fn converse(
        &self,
        call: EnclaveCall,
        tail: Option<&[u8]>,
    ) -> Result<Result<EnclaveReply, EnclaveFailure>, HostError> {
        let started = std::time::Instant::now();
        let mut conn = self.supervisor.connect().await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outcome = async {
            let request = HostToEnclave::Request { id, call };
            match tail {
                None => write_frame(&mut conn.stream, &request).await?,
                Some(tail) => write_frame_with_tail(&mut conn.stream, &request, tail).await?,
            }
            loop {
                match read_frame::<EnclaveToHost>(&mut conn.stream).await? {
                    EnclaveToHost::HostCall { id: got, call } if got == id => {
                        let result = self.host_call(call).await;
                        write_frame(&mut conn.stream, &HostToEnclave::HostResult { id, result })
                            .await?;
                    }
                    EnclaveToHost::Reply { id: got, result } if got == id => return Ok(result),
                    _ => {
                        return Err(HostError::EnclaveUnavailable(
                            "the enclave answered out of turn; connection dropped".into(),
                        ));
                    }
                }
            }
        }
        .await;
        self.metrics
            .enclave_call(started.elapsed(), outcome.is_ok());
        if outcome.is_ok() {
            self.supervisor.release(conn).await;
        }
        outcome
    }
}
