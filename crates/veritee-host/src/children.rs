//! Child nodes on this machine, started on demand: the peer `local:NAME` of a fork.
//!
//! A fork needs a child enclave of the same code that attests to the parent. On a
//! peer node one is already running; here the host starts one: a new node process
//! (its own state directory, store and enclave process) whose only peer is this node,
//! each side's peer token registered at the other. The enclaves then do what they do
//! with any peer (mutual attestation, the same measurement, the transfer), so the host
//! chooses where the child runs, never whether it is believed.
//!
//! How a process is started is the binary's business ([`ChildLauncher`]); this module
//! keeps the running ones, bounds their number, and lets the enclave reach them.

use crate::api::HOST_PEERS_NS;
use std::collections::BTreeMap;
use std::sync::Arc;
use veritee_store::Store;

use veritee_proto::ipc::LOCAL_CHILD_PREFIX;

/// A running child node.
pub struct ChildNode {
    /// Its URL.
    pub url: String,
    /// The token it presents to this node, as a peer.
    pub peer_token: String,
    /// The process, stopped when this is dropped.
    pub process: Box<dyn ChildProcess>,
}

/// A child node's process.
pub trait ChildProcess: Send + Sync {
    /// Whether it still runs.
    fn is_running(&mut self) -> bool;
}

/// Starts child nodes.
pub trait ChildLauncher: Send + Sync {
    /// Starts child `name`, with its own state, this node as its peer, and
    /// `parent_peer_token` registered there; returns once it serves.
    fn launch(&self, name: &str, parent_peer_token: &str) -> Result<ChildNode, String>;
}

/// The child nodes this node started, at most `most` at once.
pub struct LocalChildren {
    launcher: Arc<dyn ChildLauncher>,
    most: usize,
    running: tokio::sync::Mutex<BTreeMap<String, ChildNode>>,
}

impl core::fmt::Debug for LocalChildren {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalChildren")
            .field("most", &self.most)
            .finish()
    }
}

/// Whether `name` may name a peer or a child node: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl LocalChildren {
    /// Children started by `launcher`, at most `most` at once.
    pub fn new(launcher: Arc<dyn ChildLauncher>, most: usize) -> Self {
        Self {
            launcher,
            most,
            running: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Child `name`'s URL, started first if it does not run: its peer token is then
    /// registered in `store` (so it may call this node's `/v1/peer`).
    pub(crate) async fn reach(
        &self,
        name: &str,
        store: &Arc<dyn Store>,
        parent_peer_token: &str,
    ) -> Result<String, String> {
        if !valid_name(name) {
            return Err(format!(
                "{LOCAL_CHILD_PREFIX}{name}: a child's name is 1 to 64 characters of A-Z a-z 0-9 . _ -"
            ));
        }
        let mut running = self.running.lock().await;
        if let Some(child) = running.get_mut(name) {
            if child.process.is_running() {
                return Ok(child.url.clone());
            }
            running.remove(name);
        }
        running.retain(|_, child| child.process.is_running());
        if running.len() >= self.most {
            return Err(format!(
                "this node starts at most {} local children, and {} run",
                self.most,
                running.len()
            ));
        }
        let launcher = Arc::clone(&self.launcher);
        let (owned_name, token) = (name.to_string(), parent_peer_token.to_string());
        let child = tokio::task::spawn_blocking(move || launcher.launch(&owned_name, &token))
            .await
            .map_err(|e| format!("starting child {name}: {e}"))??;
        let digest = hex::encode(veritee_crypto::digest::sha256(
            child.peer_token.trim().as_bytes(),
        ));
        store
            .put(HOST_PEERS_NS, &digest, format!("local-{name}").as_bytes())
            .await
            .map_err(|e| format!("registering child {name} as a peer: {e}"))?;
        tracing::info!(
            child = name,
            url = child.url.as_str(),
            "local child node started"
        );
        let url = child.url.clone();
        running.insert(name.to_string(), child);
        Ok(url)
    }

    /// The children running: name and URL.
    pub async fn list(&self) -> Vec<(String, String)> {
        let mut running = self.running.lock().await;
        running.retain(|_, child| child.process.is_running());
        running
            .iter()
            .map(|(name, child)| (name.clone(), child.url.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Alive(Arc<std::sync::atomic::AtomicBool>);

    impl ChildProcess for Alive {
        fn is_running(&mut self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[derive(Default)]
    struct Counting {
        launched: AtomicUsize,
        alive: Arc<std::sync::atomic::AtomicBool>,
    }

    impl ChildLauncher for Counting {
        fn launch(&self, name: &str, parent: &str) -> Result<ChildNode, String> {
            assert_eq!(parent, "parent-token");
            self.launched.fetch_add(1, Ordering::SeqCst);
            self.alive.store(true, Ordering::SeqCst);
            Ok(ChildNode {
                url: format!("http://127.0.0.1:1/{name}"),
                peer_token: format!("token-of-{name}"),
                process: Box::new(Alive(Arc::clone(&self.alive))),
            })
        }
    }

    #[tokio::test]
    async fn children_start_once_within_the_bound_and_again_when_gone() {
        let launcher = Arc::new(Counting::default());
        let children = LocalChildren::new(Arc::clone(&launcher) as Arc<dyn ChildLauncher>, 1);
        let dir = tempfile::tempdir().unwrap();
        let store = veritee_store::open(&dir.path().display().to_string())
            .await
            .unwrap();
        let url = children.reach("kid", &store, "parent-token").await.unwrap();
        assert_eq!(url, "http://127.0.0.1:1/kid");
        assert_eq!(
            children.reach("kid", &store, "parent-token").await.unwrap(),
            url
        );
        assert_eq!(launcher.launched.load(Ordering::SeqCst), 1);
        // The child's token may call this node.
        let digest = hex::encode(veritee_crypto::digest::sha256(b"token-of-kid"));
        assert_eq!(
            store.get(HOST_PEERS_NS, &digest).await.unwrap().as_deref(),
            Some(&b"local-kid"[..])
        );
        let err = children
            .reach("other", &store, "parent-token")
            .await
            .unwrap_err();
        assert!(err.contains("at most 1 local children"), "{err}");
        for bad in ["", "a/b", "../x", &"x".repeat(65)] {
            let err = children
                .reach(bad, &store, "parent-token")
                .await
                .unwrap_err();
            assert!(err.contains("a child's name"), "{bad}: {err}");
        }
        // Gone: the next contact starts it again, and it is not listed meanwhile.
        launcher.alive.store(false, Ordering::SeqCst);
        assert!(children.list().await.is_empty());
        children
            .reach("other", &store, "parent-token")
            .await
            .unwrap();
        assert_eq!(launcher.launched.load(Ordering::SeqCst), 2);
        assert_eq!(children.list().await.len(), 1);
    }
}
