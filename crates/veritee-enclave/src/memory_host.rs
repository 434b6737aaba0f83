//! An in-memory host: serves an enclave's storage calls from memory and relays peer
//! messages to enclaves in the same process. For tests and tours that play the host
//! (which may keep copies of what it stores, put old bytes back, delete or truncate),
//! never a store for a node: it forgets everything when dropped.

use crate::EnclaveService;
use crate::host::HostLink;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use veritee_proto::ipc::{
    EnclaveCall, EnclaveFailure, EnclaveReply, HostCall, HostResult, LogEntry,
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
}

impl HostLink for MemoryHost {
    fn call(&mut self, call: HostCall) -> Result<HostResult, EnclaveFailure> {
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
            } => {
                let mut fault = self.append_fault.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(f) = fault.take_if(|f| log.starts_with(&f.log_prefix)) {
                    if f.store_anyway && seq == st.logs.get(&log).map_or(0, |l| l.len() as u64) {
                        st.logs.entry(log.clone()).or_default().push(entry);
                        for o in objects {
                            st.objects.insert((o.ns, o.key), o.value);
                        }
                    }
                    return Err(EnclaveFailure {
                        kind: veritee_proto::ipc::FailureKind::Unavailable,
                        message: format!("the host reports that appending to {log} failed"),
                    });
                }
                drop(fault);
                let entries = st.logs.entry(log).or_default();
                if seq != entries.len() as u64 {
                    HostResult::Conflict(format!("expected seq {}", entries.len()))
                } else {
                    entries.push(entry);
                    for o in objects {
                        st.objects.insert((o.ns, o.key), o.value);
                    }
                    HostResult::Written
                }
            }
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
                    Ok(EnclaveReply::Message { message }) => HostResult::PeerReply(message),
                    Ok(_) => HostResult::Failed("the peer answered out of turn".into()),
                    Err(f) => HostResult::Failed(f.message),
                }
            }
        })
    }
}
