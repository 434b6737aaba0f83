//! An in-memory host: serves an enclave's storage calls from memory and relays peer
//! messages to enclaves in the same process. For tests and tours that play the host
//! (which may keep copies of what it stores, put old bytes back, delete or truncate),
//! never a store for a node: it forgets everything when dropped.

use crate::EnclaveService;
use crate::host::HostLink;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use veritee_proto::ipc::{
    EnclaveCall, EnclaveFailure, EnclaveReply, HostCall, HostResult, LogEntry, ObjectWrite,
};

/// What the host stores: objects and logs, all of it the host's to copy or change.
#[derive(Clone, Default)]
pub struct Storage {
    /// Objects by (namespace, key).
    pub objects: BTreeMap<(String, String), Vec<u8>>,
    /// Logs by name, entries in order.
    pub logs: BTreeMap<String, Vec<Vec<u8>>>,
}

/// Peer enclaves by URL, each with its own host.
pub type Peers = Arc<Mutex<BTreeMap<String, (Arc<EnclaveService>, MemoryHost)>>>;

/// A failure the host reports for the next append to a log whose name starts with
/// `log_prefix`: after storing the entry (a host that keeps what it says it lost) or
/// without storing it.
#[derive(Clone, Debug)]
pub struct AppendFault {
    /// Which logs (`state/`, `audit/`...).
    pub log_prefix: String,
    /// Whether the entry is stored all the same.
    pub store_anyway: bool,
}

/// The host's side of conversations, over shared storage; peers by URL.
#[derive(Clone, Default)]
pub struct MemoryHost {
    /// What it stores (shared by clones).
    pub storage: Arc<Mutex<Storage>>,
    /// Peer enclaves by URL, each with its own host.
    pub peers: Peers,
    /// A failure to report once, at the next matching append (shared by clones).
    pub append_fault: Arc<Mutex<Option<AppendFault>>>,
    /// How long every log append takes, as a slow disk would (shared by clones).
    pub append_delay: Arc<Mutex<Option<std::time::Duration>>>,
    /// Log appends served so far, by log name prefix before the first `/` (shared by
    /// clones): how many store transactions a real host would have committed.
    pub append_calls: Arc<Mutex<BTreeMap<String, u64>>>,
    /// How revocation questions are carried (endpoint, question) to an answer or a
    /// failure; unset, every endpoint is unreachable (shared by clones).
    pub revocation: Arc<Mutex<Option<RevocationRelay>>>,
    /// Every peer message relayed and every reply, in order (shared by clones).
    pub wire: Arc<Mutex<Vec<Vec<u8>>>>,
    /// What the host does to a peer message before relaying it: the bytes to send, or
    /// `None` to lose it; unset, messages go as they are (shared by clones).
    pub peer_tap: Arc<Mutex<Option<PeerTap>>>,
    /// The same for a peer's reply on its way back (shared by clones).
    pub peer_reply_tap: Arc<Mutex<Option<PeerTap>>>,
}

/// Changes or loses a peer message (peer URL, message) on its way.
pub type PeerTap = Box<dyn FnMut(&str, Vec<u8>) -> Option<Vec<u8>> + Send>;

/// Carries a revocation question to its endpoint: the answer, or why none came.
pub type RevocationRelay = Box<dyn FnMut(&str, &[u8]) -> Result<Vec<u8>, String> + Send>;

impl MemoryHost {
    /// Appends `entries` from `seq` and writes `objects`, all or nothing; or reports
    /// the failure set in `append_fault`.
    fn append(
        &self,
        st: &mut Storage,
        log: String,
        seq: u64,
        entries: Vec<Vec<u8>>,
        objects: Vec<ObjectWrite>,
    ) -> Result<HostResult, EnclaveFailure> {
        let kind = log.split('/').next().unwrap_or_default().to_string();
        *self
            .append_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
        let mut fault = self.append_fault.lock().unwrap_or_else(|e| e.into_inner());
        let faulty = fault.take_if(|f| log.starts_with(&f.log_prefix));
        drop(fault);
        let next = st.logs.get(&log).map_or(0, |l| l.len() as u64);
        let stored = seq == next && faulty.as_ref().is_none_or(|f| f.store_anyway);
        if stored {
            st.logs.entry(log.clone()).or_default().extend(entries);
            for o in objects {
                st.objects.insert((o.ns, o.key), o.value);
            }
        }
        if faulty.is_some() {
            return Err(EnclaveFailure {
                kind: veritee_proto::ipc::FailureKind::Unavailable,
                message: format!("the host reports that appending to {log} failed"),
            });
        }
        Ok(if stored {
            HostResult::Written
        } else {
            HostResult::Conflict(format!("expected seq {next}"))
        })
    }
}

impl HostLink for MemoryHost {
    fn call(&mut self, call: HostCall) -> Result<HostResult, EnclaveFailure> {
        if matches!(
            call,
            HostCall::LogAppend { .. } | HostCall::LogAppendEntries { .. }
        ) {
            let delay = *self.append_delay.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(delay) = delay {
                std::thread::sleep(delay);
            }
        }
        let mut st = self.storage.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match call {
            HostCall::Get { ns, key } => HostResult::Value(st.objects.get(&(ns, key)).cloned()),
            HostCall::Put { ns, key, value } => {
                st.objects.insert((ns, key), value);
                HostResult::Written
            }
            HostCall::PutIfAbsent { ns, key, value } => {
                let created = !st.objects.contains_key(&(ns.clone(), key.clone()));
                if created {
                    st.objects.insert((ns, key), value);
                }
                HostResult::Created(created)
            }
            HostCall::List {
                ns,
                prefix,
                after,
                limit,
            } => HostResult::Keys(
                st.objects
                    .keys()
                    .filter(|(n, k)| {
                        *n == ns && k.starts_with(&prefix) && after.as_ref().is_none_or(|a| k > a)
                    })
                    .map(|(_, k)| k.clone())
                    .take(limit as usize)
                    .collect(),
            ),
            HostCall::Delete { ns, key } => {
                HostResult::Deleted(st.objects.remove(&(ns, key)).is_some())
            }
            HostCall::LogAppend {
                log,
                seq,
                entry,
                objects,
            } => self.append(&mut st, log, seq, vec![entry], objects)?,
            HostCall::LogAppendEntries { log, seq, entries } => self.append(
                &mut st,
                log,
                seq,
                entries.into_iter().map(|e| e.into_vec()).collect(),
                Vec::new(),
            )?,
            HostCall::LogLast { log } => HostResult::Last(st.logs.get(&log).and_then(|e| {
                e.last().map(|entry| LogEntry {
                    seq: e.len() as u64 - 1,
                    entry: entry.clone(),
                })
            })),
            HostCall::LogRead { log, from, limit } => HostResult::Entries(
                st.logs
                    .get(&log)
                    .map(|e| {
                        e.iter()
                            .enumerate()
                            .skip(from as usize)
                            .take(limit as usize)
                            .map(|(i, entry)| LogEntry {
                                seq: i as u64,
                                entry: entry.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            HostCall::Peers => HostResult::PeerList(
                self.peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys()
                    .cloned()
                    .collect(),
            ),
            HostCall::PeerExchange { peer, message } => {
                drop(st);
                let message = match self
                    .peer_tap
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                {
                    Some(tap) => match tap(&peer, message) {
                        Some(m) => m,
                        None => return Ok(HostResult::Failed(format!("{peer} is unreachable"))),
                    },
                    None => message,
                };
                let mut wire = self.wire.lock().unwrap_or_else(|e| e.into_inner());
                wire.push(message.clone());
                drop(wire);
                let target = self
                    .peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&peer)
                    .cloned();
                let Some((service, mut link)) = target else {
                    return Ok(HostResult::Failed(format!("{peer} is not a peer")));
                };
                match service.handle(EnclaveCall::PeerMessage { message }, &mut link) {
                    Ok(EnclaveReply::Message { message }) => {
                        self.wire
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(message.clone());
                        let tapped = match self
                            .peer_reply_tap
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .as_mut()
                        {
                            Some(tap) => tap(&peer, message),
                            None => Some(message),
                        };
                        match tapped {
                            Some(message) => HostResult::PeerReply(message),
                            None => HostResult::Failed(format!("{peer} did not answer")),
                        }
                    }
                    Ok(_) => HostResult::Failed("the peer answered out of turn".into()),
                    Err(f) => HostResult::Failed(f.message),
                }
            }
            HostCall::RevocationQuery { endpoint, query } => {
                drop(st);
                let mut relay = self.revocation.lock().unwrap_or_else(|e| e.into_inner());
                match relay.as_mut() {
                    Some(carry) => match carry(&endpoint, &query) {
                        Ok(answer) => HostResult::RevocationAnswer(answer),
                        Err(why) => HostResult::Failed(why),
                    },
                    None => HostResult::Failed(format!("{endpoint} is unreachable")),
                }
            }
        })
    }
}
