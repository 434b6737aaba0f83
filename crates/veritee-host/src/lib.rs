//! The host side of a provider node: untrusted by design.
//!
//! It owns the network, the storage and the enclave process's life; it relays what
//! clients send to the enclave and what the enclave stores, and sees only ciphertext
//! and sealed blobs. It authenticates tenants (no anonymous writes) with signed
//! requests, but never decides anything that protects a secret: the enclave
//! authenticates tenants again inside each session.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod auth;
pub mod children;
pub mod enclave_link;
mod error;
pub mod limits;
pub mod metrics;
mod openapi;
pub mod provider;
pub mod supervisor;
pub mod tls;

pub use api::{AppState, HOST_PEERS_NS, PEER_SCHEME, RegisterPeerRequest, router};
pub use error::HostError;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// How to run a node's host.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Store location: a directory (embedded) or a `postgres://` URL.
    pub store: String,
    /// How to start the enclave process.
    pub enclave: supervisor::EnclaveCommand,
    /// SHA-256 of the admin token.
    pub admin_token_sha256: [u8; 32],
    /// Peer nodes' URLs, for replicating keys between enclaves.
    pub peers: Vec<String>,
    /// Where task uploads are spooled for the enclave (tasks are off without one).
    pub spool: Option<PathBuf>,
    /// The token this node presents to its peers' `/v1/peer`.
    pub peer_token: String,
    /// HTTPS: the certificate and key to serve. Without it the node serves plain
    /// HTTP, which it does on loopback only.
    pub tls: Option<Arc<tls::TlsIdentity>>,
    /// Requests per second each tenant may make (429 past it); `None`: no limit.
    pub tenant_requests_per_second: Option<u32>,
    /// Bytes each tenant's task uploads may hold in the spool (429 past it); `None`: no
    /// limit.
    pub tenant_spool_bytes: Option<u64>,
    /// Task file pieces each tenant may upload at once (429 past it); `None`: no limit.
    pub tenant_uploads: Option<u32>,
    /// KBS handshakes (`/kbs/v0/auth`) each client address may start per second (429
    /// past it); `None`: no limit.
    pub kbs_auth_per_second: Option<u32>,
    /// Whether Trustee's set-resource, the resource in the clear, is accepted.
    pub kbs_plaintext_resources: bool,
    /// Collateral for hardware evidence sent to the KBS, passed to the enclave.
    pub kbs_collateral: Vec<Vec<u8>>,
    /// The provider's keys for secret import (flow 3); without them, no imports.
    pub provider: Option<Arc<provider::ProviderKeys>>,
    /// The TEE the enclave runs on ("sim", "sgx", "tdx", "snp", "nitro"), and a warning
    /// shown in `/healthz` when the node fell back to the simulator.
    pub tee: (String, Option<String>),
    /// Child nodes it may start on this machine for forks (`local:NAME`); `None`: none.
    pub local_children: Option<Arc<children::LocalChildren>>,
}

/// A running node.
pub struct RunningNode {
    /// The bound address.
    pub addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// Shared state (for tests and tools).
    pub state: Arc<AppState>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Set to true to stop taking connections and let those open finish.
    stop: tokio::sync::watch::Sender<bool>,
}

/// Resolves once `stop` says true. A node whose handle was dropped without a drain
/// keeps serving (its sender is gone, not set).
pub(crate) async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl core::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RunningNode")
            .field("addr", &self.addr)
            .finish()
    }
}

impl RunningNode {
    /// Waits until the server stops.
    pub async fn wait(self) -> Result<(), HostError> {
        let _keep_serving = self.stop;
        self.server
            .await
            .map_err(|e| HostError::Internal(format!("server task failed: {e}")))?
            .map_err(|e| HostError::Internal(format!("server failed: {e}")))
    }

    /// Stops the server and the enclave process at once: requests in progress are cut.
    pub async fn shutdown(self) {
        self.server.abort();
        self.state.supervisor.shutdown().await;
    }

    /// Stops taking connections, lets the requests in progress finish (for at most
    /// `grace`), then stops the enclave process: what SIGTERM does. A request is
    /// answered only once what it wrote (secrets, audit entries) is durable, so once
    /// the requests are done there is nothing left to flush. Returns whether every
    /// request finished within `grace` (those that did not are cut).
    pub async fn drain(self, grace: std::time::Duration) -> bool {
        // Nobody listening means the server is gone already.
        let _ = self.stop.send(true);
        let mut server = self.server;
        let finished = tokio::time::timeout(grace, &mut server).await.is_ok();
        if !finished {
            tracing::warn!(
                "requests still in progress after {} s of draining are cut",
                grace.as_secs()
            );
            server.abort();
        }
        self.state.supervisor.shutdown().await;
        finished
    }
}

/// Opens the store, starts the enclave, binds the listener and serves.
pub async fn start(config: NodeConfig) -> Result<RunningNode, HostError> {
    if config.tls.is_none() && !tls::plain_http_allowed(&config.listen) {
        return Err(HostError::Config(format!(
            "plain HTTP is served on loopback only, and {} is not: give a TLS certificate \
             and key, or let the node generate a self-signed one",
            config.listen
        )));
    }
    let store = veritee_store::open(&config.store).await?;
    let supervisor = supervisor::Supervisor::start(config.enclave.clone()).await?;
    let mut state = AppState::new(
        store,
        supervisor,
        config.admin_token_sha256,
        config.peers.clone(),
        config.peer_token.clone(),
    );
    if let Some(rate) = config.tenant_requests_per_second {
        state = state.with_tenant_rate(rate);
    }
    if let Some(rate) = config.kbs_auth_per_second {
        state = state.with_kbs_auth_rate(rate);
    }
    if config.tenant_spool_bytes.is_some() || config.tenant_uploads.is_some() {
        state = state.with_spool_quota(
            config.tenant_spool_bytes.unwrap_or(u64::MAX),
            config.tenant_uploads.unwrap_or(u32::MAX),
        );
    }
    if config.kbs_plaintext_resources {
        state = state.with_kbs_plaintext_resources();
    }
    state = state.with_tee(&config.tee.0, config.tee.1.clone());
    if let Some(children) = &config.local_children {
        state = state.with_local_children(Arc::clone(children));
    }
    state = state.with_kbs_collateral(config.kbs_collateral.clone());
    if let Some(keys) = &config.provider {
        state = state.with_provider(Arc::clone(keys));
    }
    if let Some(spool) = &config.spool {
        std::fs::create_dir_all(spool)
            .map_err(|e| HostError::Internal(format!("cannot create {}: {e}", spool.display())))?;
        state = state.with_spool(spool.clone());
    }
    let state = Arc::new(state);
    // The enclave checks its sealed state (and the platform's counter) on its first
    // conversation: a node whose store was rolled back does not start serving.
    match state
        .enclave
        .call(veritee_proto::ipc::EnclaveCall::Status)
        .await?
    {
        Ok(_) => {}
        Err(failure) => {
            state.supervisor.shutdown().await;
            return Err(HostError::EnclaveStart(format!(
                "the enclave refuses to serve: {}",
                failure.message
            )));
        }
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| HostError::Internal(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| HostError::Internal(format!("no local address: {e}")))?;
    let app = router(Arc::clone(&state));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (scheme, server) = match config.tls {
        Some(identity) => (
            "https",
            tokio::spawn(async move { tls::serve(listener, app, &identity, stop_rx).await }),
        ),
        None => (
            "http",
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(stopped(stop_rx))
                .await
            }),
        ),
    };
    tracing::info!(%addr, scheme, "node listening");
    Ok(RunningNode {
        addr,
        scheme,
        state,
        server,
        stop,
    })
}

/// Where the node keeps its files.
pub fn socket_path(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("run").join("enclave.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_http_off_loopback_is_refused_before_anything_starts() {
        let config = NodeConfig {
            listen: "0.0.0.0:0".parse().expect("addr"),
            store: "/nonexistent/store".into(),
            enclave: supervisor::EnclaveCommand {
                program: "/nonexistent/veritee".into(),
                args: Vec::new(),
                socket: "/nonexistent/enclave.sock".into(),
                pid_file: None,
            },
            admin_token_sha256: [0; 32],
            peers: Vec::new(),
            spool: None,
            peer_token: String::new(),
            tls: None,
            tenant_requests_per_second: None,
            tenant_spool_bytes: None,
            tenant_uploads: None,
            kbs_auth_per_second: None,
            kbs_plaintext_resources: false,
            kbs_collateral: Vec::new(),
            provider: None,
            tee: ("sim".into(), None),
            local_children: None,
        };
        let e = start(config)
            .await
            .expect_err("plain HTTP on every interface");
        assert!(e.to_string().contains("loopback only"), "{e}");
    }
}
