//! `veritee node --local-children N`: child nodes started on this machine for forks to
//! `local:NAME` (see `veritee_host::children`).
//!
//! A child is `veritee node` again: the parent's arguments that decide what the enclave
//! is (TEE, platform, signer, measured files), so it runs the same code and the fork's
//! attestation accepts it; its own state directory (DIR/children/NAME) and store, a
//! loopback port, and the parent as its only peer, each one's peer token registered at
//! the other. It is ephemeral (`--ephemeral`): on the parent's machine it would
//! otherwise share the parent's sealing keys and counters. It stops when the parent
//! process does, killed or not (`--exit-with`).

use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use veritee_host::children::{ChildLauncher, ChildNode, ChildProcess};

/// How long a child has to serve after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of the parent's `veritee node` that a child does not take over: where it
/// keeps its state and listens, whom it peers with, and what is the parent's alone
/// (its store, TLS identity, counter TPM, children).
const NOT_INHERITED_WITH_VALUE: &[&str] = &[
    "--dir",
    "--listen",
    "--peer",
    "--store",
    "--tls-cert",
    "--tls-key",
    "--counter-tpm",
    "--counter-tpm-ca",
    "--counter-tpm-crl",
    "--local-children",
    "--exit-with",
];
const NOT_INHERITED_FLAGS: &[&str] = &[
    "--tls-self-signed",
    "--accept-store-rollback",
    "--ephemeral",
];

/// The parent's `veritee node` arguments a child takes over (see above), from its
/// command line after `node`.
pub fn inherited_args(node_args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in node_args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let text = arg.to_string_lossy();
        let name = text.split('=').next().unwrap_or_default();
        if NOT_INHERITED_WITH_VALUE.contains(&name) {
            skip_value = !text.contains('=');
            continue;
        }
        if NOT_INHERITED_FLAGS.contains(&name) {
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// Starts children as `veritee node` processes.
pub struct ProcessLauncher {
    program: PathBuf,
    inherited: Vec<OsString>,
    dir: PathBuf,
    /// The parent's URL, known once it listens.
    parent_url: Arc<OnceLock<String>>,
}

impl ProcessLauncher {
    /// Children of the node in `dir`, run by `program` with `inherited` arguments.
    pub fn new(
        program: PathBuf,
        inherited: Vec<OsString>,
        dir: &Path,
        parent_url: Arc<OnceLock<String>>,
    ) -> Self {
        Self {
            program,
            inherited,
            dir: dir.join("children"),
            parent_url,
        }
    }

    fn start(&self, name: &str, parent_peer_token: &str) -> Result<ChildNode> {
        let parent = self
            .parent_url
            .get()
            .context("the parent node is not serving yet")?;
        let dir = self.dir.join(name);
        veritee_platform::fsutil::create_private_dir(&dir)?;
        // A URL left from an earlier run is not this one's.
        let _ = std::fs::remove_file(dir.join("node.addr"));
        let log = std::fs::File::create(dir.join("node.log")).context("the child's log")?;
        let mut command = Command::new(&self.program);
        command
            .arg("node")
            .arg("--dir")
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0", "--peer", parent])
            .arg("--exit-with")
            .arg(std::process::id().to_string())
            .arg("--ephemeral")
            .args(&self.inherited)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("the child's log")?)
            .stderr(log);
        let child = command.spawn().context("cannot start the child node")?;
        let mut process = ChildHandle(Mutex::new(child));
        let url = wait_for_url(&dir, &mut process)?;
        let admin = read_token(&dir, "admin.token")?;
        let peer_token = read_token(&dir, "peer.token")?;
        veritee_client::NodeClient::new(&url)?
            .register_peer(&admin, "parent", parent_peer_token)
            .context("registering the parent at the child")?;
        Ok(ChildNode {
            url,
            peer_token,
            process: Box::new(process),
        })
    }
}

impl ChildLauncher for ProcessLauncher {
    fn launch(&self, name: &str, parent_peer_token: &str) -> Result<ChildNode, String> {
        self.start(name, parent_peer_token)
            .map_err(|e| format!("starting local child {name}: {e:#}"))
    }
}

fn read_token(dir: &Path, file: &str) -> Result<String> {
    Ok(std::fs::read_to_string(dir.join(file))
        .with_context(|| format!("the child's {file}"))?
        .trim()
        .to_string())
}

/// The child's URL, once it has written it; refuses a child that stopped first.
fn wait_for_url(dir: &Path, process: &mut ChildHandle) -> Result<String> {
    let started = Instant::now();
    loop {
        if let Ok(url) = std::fs::read_to_string(dir.join("node.addr")) {
            return Ok(url.trim().to_string());
        }
        if !process.is_running() {
            let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
            let last = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            bail!(
                "the child node stopped before serving ({}); see {}",
                last.trim(),
                dir.join("node.log").display()
            );
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "the child node did not serve within {} s; see {}",
                START_TIMEOUT.as_secs(),
                dir.join("node.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child node's process: stopped (SIGTERM, then killed after the grace) on drop.
struct ChildHandle(Mutex<Child>);

impl ChildProcess for ChildHandle {
    fn is_running(&mut self) -> bool {
        let child = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        matches!(child.try_wait(), Ok(None))
    }
}

impl Drop for ChildHandle {
    fn drop(&mut self) {
        let child = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Resolves once process `pid` no longer runs (checked every second): a child node
/// stops with the parent that started it, however the parent ended.
pub async fn process_gone(pid: u32) {
    let path = PathBuf::from(format!("/proc/{pid}"));
    while path.exists() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_takes_over_what_makes_the_enclave_and_nothing_of_the_parents_own() {
        let args: Vec<OsString> = [
            "--dir",
            "/state",
            "--listen=127.0.0.1:9",
            "--platform",
            "/m1",
            "--peer",
            "http://b",
            "--instance",
            "a",
            "--tls-self-signed",
            "--store",
            "postgres://x",
            "--local-children",
            "2",
            "--release-sealing-roots",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let kept: Vec<String> = inherited_args(&args)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            kept,
            [
                "--platform",
                "/m1",
                "--instance",
                "a",
                "--release-sealing-roots"
            ]
        );
    }
}
