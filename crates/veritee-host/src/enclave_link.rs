//! Conversations with the enclave: send a call, serve its storage requests from the
//! store, return its reply. The host relays; it neither decrypts nor interprets.

use crate::HostError;
use crate::children::LocalChildren;
use crate::metrics::Metrics;
use crate::supervisor::Supervisor;
use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
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

async fn write_frame<T: serde::Serialize>(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    message: &T,
) -> Result<(), HostError> {
    let bytes = frame::encode(message).map_err(|e| HostError::Internal(e.to_string()))?;
    stream.write_all(&bytes).await.map_err(connection_lost)
}

/// Peer messages at least this large are relayed as they are read from the enclave:
/// the request to the peer starts before the message's last byte has come.
const STREAMED_PEER_MESSAGE: usize = 1 << 20;
/// How much of a frame is read first, to find whether it is a peer message to stream.
const FRAME_HEAD_READ: usize = 4096;
/// How long a body relayed as it arrives may go without a byte: it holds an enclave
/// connection meanwhile.
const STREAMED_BODY_STALL: std::time::Duration = std::time::Duration::from_secs(20);
/// The pieces a streamed peer message is read and sent in.
const RELAY_CHUNK: usize = 1 << 20;

/// What the enclave sent: a whole message, or a large peer message whose bytes are
/// still on the link (`first` of them read).
enum FromEnclave {
    Whole(EnclaveToHost),
    PeerMessage {
        id: u64,
        peer: String,
        len: usize,
        first: Vec<u8>,
    },
}

/// Reads the enclave's next frame; a large peer message is left on the link after
/// its head, to be relayed as it is read ([`FromEnclave::PeerMessage`]).
async fn read_from_enclave(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<FromEnclave, HostError> {
    let bad = |e: String| HostError::EnclaveUnavailable(format!("bad frame from the enclave: {e}"));
    let mut header = [0u8; HEADER_LEN];
    stream
        .read_exact(&mut header)
        .await
        .map_err(connection_lost)?;
    let len = frame::parse_header(&header).map_err(|e| bad(e.to_string()))?;
    let mut payload = vec![0u8; len.min(FRAME_HEAD_READ)];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(connection_lost)?;
    if len >= STREAMED_PEER_MESSAGE
        && let Some((header, contents)) = veritee_proto::cbor::trailing_byte_string(&payload, len)
        && let Ok(EnclaveToHost::HostCall {
            id,
            call: HostCall::PeerExchange { peer, message },
        }) = frame::decode(&veritee_proto::cbor::head_with_empty_tail(&payload, header))
        && message.is_empty()
    {
        payload.drain(..contents.min(payload.len()));
        return Ok(FromEnclave::PeerMessage {
            id,
            peer,
            len: len - contents,
            first: payload,
        });
    }
    let read = payload.len();
    payload.resize(len, 0);
    stream
        .read_exact(&mut payload[read..])
        .await
        .map_err(connection_lost)?;
    frame::decode_with_tail(payload)
        .map(FromEnclave::Whole)
        .map_err(|e| bad(e.to_string()))
}

/// A peer message's bytes as they are read from the enclave link, with their length
/// known: the request carries it as its Content-Length, which the peer's host needs
/// to pass the message on as it arrives.
struct RelayedBody {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
    left: u64,
}

impl http_body::Body for RelayedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        match self.chunks.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => {
                self.left = self.left.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
            }
            Poll::Ready(None) if self.left == 0 => Poll::Ready(None),
            Poll::Ready(None) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the enclave's message was cut short",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// A call's last field given apart from the call (which holds it empty): the bytes
/// of a relayed message, whole or as they arrive.
pub enum Tail<'a> {
    /// Nothing apart: the call is whole.
    None,
    /// The bytes, written after the frame's head as they lie.
    Bytes(&'a [u8]),
    /// `len` bytes, written to the enclave as `chunks` yields them, so that a relayed
    /// message crosses the host without waiting for its last byte. Chunks that come
    /// to more or fewer than `len` bytes, or an error, end the conversation with
    /// [`HostError::BadBody`] and drop the enclave connection (the enclave, holding
    /// a frame cut short, reads nothing from it).
    Streamed {
        /// The announced length.
        len: usize,
        /// The bytes.
        chunks: Pin<&'a mut (dyn Stream<Item = Result<Bytes, String>> + Send)>,
    },
}

fn connection_lost(e: std::io::Error) -> HostError {
    HostError::EnclaveUnavailable(format!("enclave connection lost: {e}"))
}

/// Writes a frame for `message`, whose last item (an empty byte string) stands for
/// `tail`: a large tail is written as it lies, or as it arrives, after the rest
/// instead of being copied; a small one is copied, so that the frame takes one write.
async fn write_frame_with_tail<T: serde::Serialize>(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    message: &T,
    tail: Tail<'_>,
) -> Result<(), HostError> {
    let head = |len: usize| {
        frame::encode_head(message, len).map_err(|e| HostError::Internal(e.to_string()))
    };
    match tail {
        Tail::None => write_frame(stream, message).await,
        Tail::Bytes(bytes) if bytes.len() < frame::MIN_TRAILING_BYTES => {
            let mut frame = head(bytes.len())?;
            frame.extend_from_slice(bytes);
            stream.write_all(&frame).await.map_err(connection_lost)
        }
        Tail::Bytes(bytes) => {
            stream
                .write_all(&head(bytes.len())?)
                .await
                .map_err(connection_lost)?;
            stream.write_all(bytes).await.map_err(connection_lost)
        }
        Tail::Streamed { len, mut chunks } => {
            stream
                .write_all(&head(len)?)
                .await
                .map_err(connection_lost)?;
            let mut sent = 0usize;
            loop {
                // A sender that stalls would hold an enclave connection meanwhile.
                let next = tokio::time::timeout(STREAMED_BODY_STALL, chunks.next())
                    .await
                    .map_err(|_| {
                        HostError::BadBody(format!(
                            "the body stalled for {} s after {sent} of the {len} bytes announced",
                            STREAMED_BODY_STALL.as_secs()
                        ))
                    })?;
                let Some(chunk) = next else { break };
                let chunk = chunk.map_err(HostError::BadBody)?;
                sent = sent.saturating_add(chunk.len());
                if sent > len {
                    return Err(HostError::BadBody(format!(
                        "the body is longer than the {len} bytes announced"
                    )));
                }
                stream.write_all(&chunk).await.map_err(connection_lost)?;
            }
            if sent != len {
                return Err(HostError::BadBody(format!(
                    "the body ended after {sent} of the {len} bytes announced"
                )));
            }
            Ok(())
        }
    }
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
    async fn peer_exchange(&self, peer: &str, message: reqwest::Body) -> HostResult {
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

    /// Relays a peer message of `len` bytes (`first` of them read) to `peer` as the
    /// rest is read from the enclave link. The whole message is read off the link
    /// whatever the peer does, so that the link stays in step; only the link failing
    /// is an error.
    async fn relay_peer_message(
        &self,
        link: &mut (impl tokio::io::AsyncRead + Unpin),
        peer: &str,
        len: usize,
        first: Vec<u8>,
    ) -> Result<HostResult, HostError> {
        let (chunks, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
        let body = RelayedBody {
            chunks: receiver,
            left: len as u64,
        };
        let sent = self.peer_exchange(peer, reqwest::Body::wrap(body));
        let read = async move {
            let mut to_peer = Some(chunks);
            let mut left = len;
            let mut chunk = first;
            loop {
                left = left.saturating_sub(chunk.len());
                if let Some(sender) = &to_peer
                    && !chunk.is_empty()
                    && sender.send(Bytes::from(chunk)).await.is_err()
                {
                    // The request failed: the rest is read and dropped.
                    to_peer = None;
                }
                if left == 0 {
                    return Ok(());
                }
                chunk = vec![0u8; left.min(RELAY_CHUNK)];
                link.read_exact(&mut chunk).await.map_err(connection_lost)?;
            }
        };
        let (result, read): (HostResult, Result<(), HostError>) = tokio::join!(sent, read);
        read?;
        Ok(result)
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
                Ok(self.peer_exchange(&peer, message.into()).await)
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
        self.call_with_tail(call, Tail::None).await
    }

    /// One conversation for a call whose last field is a byte string: `call` holds it
    /// empty, and `tail` is what it holds. The enclave reads the same frame as from
    /// [`Self::call`], but the host does not copy the bytes into it: a relayed message
    /// (a fork's 8 MiB of pages) goes from the HTTP body to the enclave as it lies, or
    /// as it arrives.
    pub async fn call_with_tail(
        &self,
        call: EnclaveCall,
        tail: Tail<'_>,
    ) -> Result<Result<EnclaveReply, EnclaveFailure>, HostError> {
        let started = std::time::Instant::now();
        let mut conn = self.supervisor.connect().await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outcome = async {
            let request = HostToEnclave::Request { id, call };
            write_frame_with_tail(&mut conn.stream, &request, tail).await?;
            loop {
                match read_from_enclave(&mut conn.stream).await? {
                    FromEnclave::Whole(EnclaveToHost::HostCall { id: got, call }) if got == id => {
                        let result = self.host_call(call).await;
                        write_frame(&mut conn.stream, &HostToEnclave::HostResult { id, result })
                            .await?;
                    }
                    FromEnclave::PeerMessage {
                        id: got,
                        peer,
                        len,
                        first,
                    } if got == id => {
                        let result = self
                            .relay_peer_message(&mut conn.stream, &peer, len, first)
                            .await?;
                        write_frame(&mut conn.stream, &HostToEnclave::HostResult { id, result })
                            .await?;
                    }
                    FromEnclave::Whole(EnclaveToHost::Reply { id: got, result }) if got == id => {
                        return Ok(result);
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn relayed() -> HostToEnclave {
        HostToEnclave::Request {
            id: 1,
            call: EnclaveCall::PeerMessage {
                message: Vec::new(),
            },
        }
    }

    async fn streamed(
        len: usize,
        chunks: impl Stream<Item = Result<Bytes, String>> + Send,
    ) -> Result<Vec<u8>, HostError> {
        let mut out = Vec::new();
        let chunks = std::pin::pin!(chunks);
        write_frame_with_tail(&mut out, &relayed(), Tail::Streamed { len, chunks }).await?;
        Ok(out)
    }

    fn pieces(parts: &[&'static [u8]]) -> Vec<Result<Bytes, String>> {
        parts.iter().map(|p| Ok(Bytes::from_static(p))).collect()
    }

    /// A body relayed as it arrives makes the frame the whole message would; one that
    /// ends early, runs long, fails or stalls is refused, naming what happened.
    #[tokio::test(start_paused = true)]
    async fn a_streamed_body_is_the_whole_frame_or_refused() {
        let whole = HostToEnclave::Request {
            id: 1,
            call: EnclaveCall::PeerMessage {
                message: b"abcdef".to_vec(),
            },
        };
        let out = streamed(6, stream::iter(pieces(&[b"ab", b"", b"cdef"])))
            .await
            .unwrap();
        assert_eq!(out, frame::encode(&whole).unwrap());

        let refusal = |r: Result<Vec<u8>, HostError>| match r {
            Err(HostError::BadBody(m)) => m,
            other => panic!("{other:?}"),
        };
        let short = refusal(streamed(6, stream::iter(pieces(&[b"abc"]))).await);
        assert!(short.contains("ended after 3 of the 6"), "{short}");
        let long = refusal(streamed(2, stream::iter(pieces(&[b"abc"]))).await);
        assert!(long.contains("longer than the 2"), "{long}");
        let broken = refusal(
            streamed(
                6,
                stream::iter([Ok(Bytes::from_static(b"ab")), Err("reset".to_string())]),
            )
            .await,
        );
        assert_eq!(broken, "reset");
        let stalled =
            refusal(streamed(6, stream::iter(pieces(&[b"ab"])).chain(stream::pending())).await);
        assert!(stalled.contains("stalled"), "{stalled}");
    }
}
