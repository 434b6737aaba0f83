//! What the workspace benches share: a `veritee node` started in the background, and a
//! load generator.
// Each bench compiles this module for itself and uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A node process, killed when dropped.
pub struct Node(pub Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `veritee node` on loopback with its state in `state` (and `store`, else the
/// embedded default); returns it once it serves, with its URL.
/// `extra` are further arguments for `veritee node`.
pub fn start_node(state: &Path, store: Option<&str>, extra: &[&str]) -> (Node, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veritee"));
    command
        // No per-tenant rate limit: one tenant is the whole load here.
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--tenant-requests-per-second",
            "0",
            "--dir",
        ])
        .arg(state);
    if let Some(store) = store {
        command.args(["--store", store]);
    }
    command.args(extra);
    let child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("node");
    let node = Node(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(url) = std::fs::read_to_string(state.join("node.addr")) {
            return (node, url);
        }
        assert!(Instant::now() < deadline, "node did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `op` from `clients` threads for `duration`, each thread building its own state
/// first (outside the timed part); returns every operation's latency.
pub fn run_clients<S: 'static>(
    clients: usize,
    duration: Duration,
    setup: impl Fn() -> S + Send + Sync + 'static,
    op: impl Fn(&mut S) + Send + Sync + 'static,
) -> Vec<Duration> {
    let (setup, op) = (Arc::new(setup), Arc::new(op));
    let barrier = Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (setup, op, barrier) = (Arc::clone(&setup), Arc::clone(&op), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let mut state = setup();
                barrier.wait();
                let start = Instant::now();
                let mut latencies = Vec::new();
                while start.elapsed() < duration {
                    let t = Instant::now();
                    op(&mut state);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("load thread"))
        .collect()
}

/// Serves `app` on a loopback port from a runtime of its own; returns the base URL and
/// the runtime (the server stops when it is dropped).
pub fn serve(app: axum::Router) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rt)
}
