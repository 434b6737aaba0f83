//! The enclave's only way to storage: calls into the host within a conversation.

use veritee_proto::ipc::{
    EnclaveFailure, FailureKind, HostCall, HostResult, LogEntry, ObjectWrite,
};

/// A channel to the host for the current conversation.
pub trait HostLink {
    /// Performs one host call.
    fn call(&mut self, call: HostCall) -> Result<HostResult, EnclaveFailure>;
}

/// A failure of the given kind.
pub fn failure(kind: FailureKind, message: impl Into<String>) -> EnclaveFailure {
    EnclaveFailure {
        kind,
        message: message.into(),
    }
}

fn unexpected(call: &str, got: HostResult) -> EnclaveFailure {
    match got {
        HostResult::Failed(m) => failure(
            FailureKind::Unavailable,
            format!("the host failed during {call}: {m}"),
        ),
        HostResult::Conflict(m) => failure(FailureKind::Conflict, m),
        other => failure(
            FailureKind::Internal,
            format!(
                "host answered {call} with an unexpected {}",
                variant(&other)
            ),
        ),
    }
}

fn variant(r: &HostResult) -> &'static str {
    match r {
        HostResult::Value(_) => "Value",
        HostResult::Written => "Written",
        HostResult::Created(_) => "Created",
        HostResult::Keys(_) => "Keys",
        HostResult::Deleted(_) => "Deleted",
        HostResult::Last(_) => "Last",
        HostResult::Entries(_) => "Entries",
        HostResult::PeerList(_) => "PeerList",
        HostResult::PeerReply(_) => "PeerReply",
        HostResult::RevocationAnswer(_) => "RevocationAnswer",
        HostResult::Conflict(_) => "Conflict",
        HostResult::Failed(_) => "Failed",
    }
}

/// Typed helpers over [`HostLink`].
pub trait HostLinkExt: HostLink {
    /// Reads an object.
    fn get(&mut self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, EnclaveFailure> {
        match self.call(HostCall::Get {
            ns: ns.into(),
            key: key.into(),
        })? {
            HostResult::Value(v) => Ok(v),
            other => Err(unexpected("get", other)),
        }
    }

    /// Writes an object durably.
    fn put(&mut self, ns: &str, key: &str, value: Vec<u8>) -> Result<(), EnclaveFailure> {
        match self.call(HostCall::Put {
            ns: ns.into(),
            key: key.into(),
            value,
        })? {
            HostResult::Written => Ok(()),
            other => Err(unexpected("put", other)),
        }
    }

    /// Creates an object unless present; true if created.
    fn put_if_absent(
        &mut self,
        ns: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<bool, EnclaveFailure> {
        match self.call(HostCall::PutIfAbsent {
            ns: ns.into(),
            key: key.into(),
            value,
        })? {
            HostResult::Created(c) => Ok(c),
            other => Err(unexpected("put_if_absent", other)),
        }
    }

    /// Lists keys.
    fn list(
        &mut self,
        ns: &str,
        prefix: &str,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<String>, EnclaveFailure> {
        match self.call(HostCall::List {
            ns: ns.into(),
            prefix: prefix.into(),
            after,
            limit,
        })? {
            HostResult::Keys(k) => Ok(k),
            other => Err(unexpected("list", other)),
        }
    }

    /// Deletes an object.
    fn delete(&mut self, ns: &str, key: &str) -> Result<bool, EnclaveFailure> {
        match self.call(HostCall::Delete {
            ns: ns.into(),
            key: key.into(),
        })? {
            HostResult::Deleted(d) => Ok(d),
            other => Err(unexpected("delete", other)),
        }
    }

    /// Appends a log entry at `seq` and writes `objects` with it, atomically.
    fn log_append_with(
        &mut self,
        log: &str,
        seq: u64,
        entry: Vec<u8>,
        objects: Vec<ObjectWrite>,
    ) -> Result<(), EnclaveFailure> {
        match self.call(HostCall::LogAppend {
            log: log.into(),
            seq,
            entry,
            objects,
        })? {
            HostResult::Written => Ok(()),
            other => Err(unexpected("log_append", other)),
        }
    }

    /// Appends `entries` to a log as numbers `seq`, `seq + 1`...: all of them or none.
    fn log_append_entries(
        &mut self,
        log: &str,
        seq: u64,
        entries: Vec<Vec<u8>>,
    ) -> Result<(), EnclaveFailure> {
        match self.call(HostCall::LogAppendEntries {
            log: log.into(),
            seq,
            entries: entries
                .into_iter()
                .map(serde_bytes::ByteBuf::from)
                .collect(),
        })? {
            HostResult::Written => Ok(()),
            other => Err(unexpected("log_append_entries", other)),
        }
    }

    /// The last log entry.
    fn log_last(&mut self, log: &str) -> Result<Option<LogEntry>, EnclaveFailure> {
        match self.call(HostCall::LogLast { log: log.into() })? {
            HostResult::Last(l) => Ok(l),
            other => Err(unexpected("log_last", other)),
        }
    }

    /// Entries of a log from `from` on (at most `limit`).
    fn log_read(
        &mut self,
        log: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, EnclaveFailure> {
        match self.call(HostCall::LogRead {
            log: log.into(),
            from,
            limit,
        })? {
            HostResult::Entries(e) => Ok(e),
            other => Err(unexpected("log_read", other)),
        }
    }

    /// The configured peer nodes.
    fn peers(&mut self) -> Result<Vec<String>, EnclaveFailure> {
        let mut peers = self.peer_list()?;
        peers.retain(|p| p != veritee_proto::ipc::ANY_LOCAL_CHILD);
        Ok(peers)
    }

    /// Whether the host may route a fork to `peer`: one of its peers, or a child node
    /// it starts on this machine (`local:NAME`) if it may start them.
    fn may_fork_to(&mut self, peer: &str) -> Result<bool, EnclaveFailure> {
        let peers = self.peer_list()?;
        Ok(peers.iter().any(|p| p == peer)
            || (peer.starts_with(veritee_proto::ipc::LOCAL_CHILD_PREFIX)
                && peers
                    .iter()
                    .any(|p| p == veritee_proto::ipc::ANY_LOCAL_CHILD)))
    }

    /// The host's peer list as it gives it.
    fn peer_list(&mut self) -> Result<Vec<String>, EnclaveFailure> {
        match self.call(HostCall::Peers)? {
            HostResult::PeerList(p) => Ok(p),
            other => Err(unexpected("peers", other)),
        }
    }

    /// Sends an enclave-to-enclave message to a peer and returns its answer.
    fn peer_exchange(&mut self, peer: &str, message: Vec<u8>) -> Result<Vec<u8>, EnclaveFailure> {
        match self.call(HostCall::PeerExchange {
            peer: peer.into(),
            message,
        })? {
            HostResult::PeerReply(r) => Ok(r),
            other => Err(unexpected("peer_exchange", other)),
        }
    }

    /// Asks a revocation endpoint through the host; the answer is checked by the caller.
    fn revocation_query(
        &mut self,
        endpoint: &str,
        query: Vec<u8>,
    ) -> Result<Vec<u8>, EnclaveFailure> {
        match self.call(HostCall::RevocationQuery {
            endpoint: endpoint.into(),
            query,
        })? {
            HostResult::RevocationAnswer(a) => Ok(a),
            other => Err(unexpected("revocation_query", other)),
        }
    }
}

impl<T: HostLink + ?Sized> HostLinkExt for T {}
