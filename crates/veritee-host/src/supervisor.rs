//! Starts the enclave process, restarts it when it dies, and hands out connections.

use crate::HostError;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, Notify};
use tracing::{error, info, warn};

/// The environment variable glibc reads its allocator's settings from.
pub const GLIBC_TUNABLES: &str = "GLIBC_TUNABLES";
/// The allocator setting of a node's processes, unless the operator gives one: glibc's
/// default mmap threshold (128 KiB), fixed. Left dynamic, glibc raises it to the
/// largest block freed (up to 32 MiB) and from then on serves blocks that size from
/// the heap, which keeps their pages: under load the enclave grew by every large
/// transient buffer, about 4x what its data needs (BENCHMARKS.md, "Where the memory
/// of key deployments goes"). Each such block is then mapped afresh, so it is also
/// asked for in transparent huge pages (`hugetlb=1`: `madvise`, where the kernel
/// leaves it to the program): a fork's 8 MiB page messages then fault in 2 MiB at a
/// time instead of 4 KiB (BENCHMARKS.md, "Secure fork (issue 16): the hop thinned").
/// glibc asks the same for its heap as it grows it. Other C libraries ignore it.
pub const FIXED_MMAP_THRESHOLD: &str = "glibc.malloc.mmap_threshold=131072:glibc.malloc.hugetlb=1";
/// How long to wait for a (re)started enclave to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request waits for a restarting enclave.
pub const REQUEST_WAIT: Duration = Duration::from_secs(30);
/// Most idle connections kept.
pub const MAX_IDLE: usize = 64;

/// The enclave process's command line; the supervisor appends `--socket PATH`.
#[derive(Debug, Clone)]
pub struct EnclaveCommand {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// The socket the enclave listens on.
    pub socket: PathBuf,
    /// Where to record the enclave's process id (for operators and tests).
    pub pid_file: Option<PathBuf>,
}

struct Inner {
    command: EnclaveCommand,
    generation: AtomicU64,
    up: AtomicBool,
    restarts: AtomicU64,
    ready: Notify,
    idle: Mutex<Vec<(u64, BufReader<UnixStream>)>>,
    child: Mutex<Option<Child>>,
    stopping: AtomicBool,
}

/// The enclave process's keeper.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Supervisor")
            .field("up", &self.is_up())
            .field("restarts", &self.restarts())
            .finish()
    }
}

/// A connection to the enclave, tagged with the process generation it belongs to.
#[derive(Debug)]
pub struct Connection {
    /// The stream, read through a buffer so that a frame (header and body, written at
    /// once by the enclave) usually takes one `read` instead of two; writes go straight
    /// through. A connection is pooled only between conversations, when nothing is
    /// left in the buffer.
    pub stream: BufReader<UnixStream>,
    generation: u64,
}

impl Supervisor {
    /// Starts the enclave and waits until it accepts connections.
    pub async fn start(command: EnclaveCommand) -> Result<Self, HostError> {
        if let Some(dir) = command.socket.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                HostError::EnclaveStart(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let inner = Arc::new(Inner {
            command,
            generation: AtomicU64::new(0),
            up: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            ready: Notify::new(),
            idle: Mutex::new(Vec::new()),
            child: Mutex::new(None),
            stopping: AtomicBool::new(false),
        });
        let supervisor = Self { inner };
        supervisor.spawn_enclave().await?;
        let watcher = supervisor.clone();
        tokio::spawn(async move { watcher.watch().await });
        Ok(supervisor)
    }

    async fn spawn_enclave(&self) -> Result<(), HostError> {
        let c = &self.inner.command;
        let _ = std::fs::remove_file(&c.socket);
        let mut command = Command::new(&c.program);
        command
            .args(&c.args)
            .arg("--socket")
            .arg(&c.socket)
            .kill_on_drop(true);
        if std::env::var_os(GLIBC_TUNABLES).is_none() {
            command.env(GLIBC_TUNABLES, FIXED_MMAP_THRESHOLD);
        }
        let child = command
            .spawn()
            .map_err(|e| HostError::EnclaveStart(format!("{}: {e}", c.program.display())))?;
        let pid = child.id();
        if let (Some(path), Some(pid)) = (&c.pid_file, pid)
            && let Err(e) = std::fs::write(path, format!("{pid}\n"))
        {
            warn!("cannot write {}: {e}", path.display());
        }
        *self.inner.child.lock().await = Some(child);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if UnixStream::connect(&c.socket).await.is_ok() {
                break;
            }
            if let Some(child) = self.inner.child.lock().await.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(HostError::EnclaveStart(format!(
                    "the enclave process exited during start-up ({status})"
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(HostError::EnclaveStart(format!(
                    "the enclave did not open {} within {START_TIMEOUT:?}",
                    c.socket.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.idle.lock().await.clear();
        self.inner.up.store(true, Ordering::SeqCst);
        self.inner.ready.notify_waiters();
        info!(pid, "enclave process running");
        Ok(())
    }

    /// Restarts the enclave whenever it exits.
    async fn watch(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let status = {
                let mut guard = self.inner.child.lock().await;
                match guard.as_mut() {
                    Some(child) => {
                        // Poll so the lock is not held across a long wait.
                        match child.try_wait() {
                            Ok(Some(status)) => Some(status),
                            Ok(None) => None,
                            Err(e) => {
                                error!("cannot watch the enclave process: {e}");
                                None
                            }
                        }
                    }
                    None => None,
                }
            };
            let Some(status) = status else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if self.inner.stopping.load(Ordering::SeqCst) {
                return;
            }
            self.inner.up.store(false, Ordering::SeqCst);
            self.inner.idle.lock().await.clear();
            let restarts = self.inner.restarts.fetch_add(1, Ordering::SeqCst) + 1;
            error!(%status, restarts, "the enclave process died; restarting it");
            loop {
                tokio::time::sleep(backoff).await;
                match self.spawn_enclave().await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        break;
                    }
                    Err(e) => {
                        warn!("enclave restart failed: {e}");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }

    /// Whether the enclave is up.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::SeqCst)
    }

    /// How often the enclave was restarted.
    pub fn restarts(&self) -> u64 {
        self.inner.restarts.load(Ordering::SeqCst)
    }

    /// The enclave process id, if running.
    pub async fn pid(&self) -> Option<u32> {
        self.inner.child.lock().await.as_ref().and_then(Child::id)
    }

    /// A connection: an idle one of the current process, or a new one. Waits for a
    /// restarting enclave up to [`REQUEST_WAIT`].
    pub async fn connect(&self) -> Result<Connection, HostError> {
        let deadline = tokio::time::Instant::now() + REQUEST_WAIT;
        loop {
            if self.is_up() {
                let generation = self.inner.generation.load(Ordering::SeqCst);
                if let Some((g, stream)) = self.inner.idle.lock().await.pop()
                    && g == generation
                {
                    return Ok(Connection { stream, generation });
                }
                match UnixStream::connect(&self.inner.command.socket).await {
                    Ok(stream) => {
                        // Best effort: a smaller buffer only makes large frames slower.
                        let _ = rustix::net::sockopt::set_socket_send_buffer_size(
                            &stream,
                            veritee_proto::frame::LINK_SEND_BUFFER,
                        );
                        return Ok(Connection {
                            stream: BufReader::with_capacity(
                                veritee_proto::frame::LINK_READ_BUFFER,
                                stream,
                            ),
                            generation,
                        });
                    }
                    Err(e) => warn!("cannot connect to the enclave: {e}"),
                }
            }
            let wait = tokio::time::timeout_at(deadline, self.inner.ready.notified());
            if wait.await.is_err() {
                return Err(HostError::EnclaveUnavailable(
                    "the enclave process is restarting; try again shortly".into(),
                ));
            }
        }
    }

    /// Returns a healthy connection for reuse.
    pub async fn release(&self, connection: Connection) {
        if connection.generation == self.inner.generation.load(Ordering::SeqCst) {
            let mut idle = self.inner.idle.lock().await;
            if idle.len() < MAX_IDLE {
                idle.push((connection.generation, connection.stream));
            }
        }
    }

    /// Stops the enclave process.
    pub async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        if let Some(mut child) = self.inner.child.lock().await.take() {
            let _ = child.kill().await;
        }
        self.inner.up.store(false, Ordering::SeqCst);
    }
}
