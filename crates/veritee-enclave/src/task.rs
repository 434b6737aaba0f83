//! Trusted tasks inside the enclave: answer a task initiation with an attestation
//! signal, accept the key delivery, run the compartments over inputs decrypted on
//! demand from the spool, and return results only the client can read.
//!
//! The spool is a directory the host writes the client's encrypted uploads to
//! (`<spool>/<task>/<compartment>/module` and `.../input-<i>`, each in the
//! veritee-stream format under the compartment's DEK). The enclave reads it directly
//! and trusts none of it: every chunk is authenticated when read, and a file cut short
//! fails at its new last chunk.

use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, internal, lock};
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use veritee_crypto::hpke::HpkeKeyPair;
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};
use veritee_stream::{ChunkOpener, Header, StreamKey, TAG_LEN};
use veritee_task::keys::{DeliveredKeys, Key256, open_delivery};
use veritee_task::messages::{TaskInitiation, initiation_digest, signal_binding};
use veritee_task::results::{CompartmentOutput, ResultBody, seal_envelope, seal_log, seal_output};
use veritee_wasm::{
    Access, CompartmentSpec, Input, InputSource, SecurityContext, TaskLimits, TaskSpec,
};
use zeroize::Zeroizing;

const MAX_TASKS: usize = 64;
const TASK_IDLE: Duration = Duration::from_secs(30 * 60);
/// Largest module accepted.
pub const MAX_MODULE_LEN: u64 = 64 * 1024 * 1024;

/// The node's ceiling on what a task may ask for.
pub fn node_limits() -> TaskLimits {
    TaskLimits {
        fuel: 2_000_000_000_000,
        memory_bytes: 1 << 30,
        table_elements: 100_000,
        output_bytes: 64 << 20,
        log_bytes: 64 << 10,
        timeout: Duration::from_secs(600),
    }
}

/// A task between initiation and run.
pub(crate) struct TaskState {
    tenant: String,
    initiation: TaskInitiation,
    digest: [u8; 32],
    skek: HpkeKeyPair,
    keys: Option<DeliveredKeys>,
    created: Instant,
}

/// The in-memory task table.
#[derive(Default)]
pub(crate) struct Tasks(HashMap<String, TaskState>);

fn bad(e: impl core::fmt::Display) -> EnclaveFailure {
    failure(FailureKind::BadRequest, e.to_string())
}

/// A spool file whose header has been read and checked.
struct OpenSpool {
    file: std::fs::File,
    opener: ChunkOpener,
    header_len: u64,
    chunk_size: u64,
    /// The most recently decrypted chunk: (index, plaintext).
    chunk: Option<(u64, Zeroizing<Vec<u8>>)>,
}

/// How often a read waiting for its bytes looks again.
const ARRIVAL_POLL: Duration = Duration::from_millis(2);

fn invalid(e: impl core::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// Waits until `file` holds at least `at_least` bytes; without a deadline, only checks.
fn wait_for(file: &std::fs::File, at_least: u64, deadline: Option<Instant>) -> std::io::Result<()> {
    loop {
        if file.metadata()?.len() >= at_least {
            return Ok(());
        }
        match deadline {
            Some(d) if Instant::now() < d => std::thread::sleep(ARRIVAL_POLL),
            Some(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "it did not arrive before the task's deadline",
                ));
            }
            None => return Err(invalid("it ends early (truncated)")),
        }
    }
}

impl OpenSpool {
    /// Opens `path` and checks its header under `dek`, waiting until `deadline` (if any)
    /// for the file and its header to arrive.
    fn open(path: &Path, dek: &Key256, deadline: Option<Instant>) -> std::io::Result<Self> {
        let waiting = || deadline.is_some_and(|d| Instant::now() < d);
        let file = loop {
            match std::fs::File::open(path) {
                Ok(file) => break file,
                Err(_) if waiting() => std::thread::sleep(ARRIVAL_POLL),
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("{e} (was it uploaded?)"),
                    ));
                }
            }
        };
        let (header, header_len) = loop {
            let have = file.metadata()?.len();
            let mut head = vec![0u8; (veritee_stream::MAX_HEADER_LEN as u64).min(have) as usize];
            file.read_exact_at(&mut head, 0)?;
            match Header::parse(&head) {
                Ok(parsed) => break parsed,
                Err(veritee_stream::StreamError::HeaderTruncated) if waiting() => {
                    std::thread::sleep(ARRIVAL_POLL);
                }
                Err(e) => return Err(invalid(e)),
            }
        };
        let opener = ChunkOpener::new(&StreamKey::new(dek), &header)
            .map_err(|e| invalid(format!("not under this compartment's key: {e}")))?;
        Ok(Self {
            file,
            opener,
            header_len: header_len as u64,
            chunk_size: u64::from(header.chunk_size()),
            chunk: None,
        })
    }
}

/// A module or input decrypted chunk by chunk from its spool file, on demand.
///
/// A module is uploaded whole before the run and opened at once. An input may still be
/// arriving while the task runs: its plaintext length is the one the initiation
/// declared, it is opened on first read, and each read waits for its chunk (until the
/// task's deadline). Where its final chunk must end follows from that length, so a host
/// that truncates or extends the upload is caught when that chunk does not
/// authenticate as the final one.
struct SpoolInput {
    path: PathBuf,
    dek: Key256,
    len: u64,
    deadline: Option<Instant>,
    state: Mutex<Option<OpenSpool>>,
}

impl SpoolInput {
    /// A module, uploaded whole: opened now, as long as its file says.
    fn module(path: &Path, dek: &Key256) -> std::io::Result<Self> {
        let spool = OpenSpool::open(path, dek, None)?;
        let body = spool.file.metadata()?.len() - spool.header_len;
        let sealed = spool.chunk_size + TAG_LEN as u64;
        let chunks = body.div_ceil(sealed).max(1);
        let last_sealed = body - (chunks - 1) * sealed;
        if last_sealed < TAG_LEN as u64 {
            return Err(invalid("truncated inside its last chunk"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            dek: dek.clone(),
            len: (chunks - 1) * spool.chunk_size + last_sealed - TAG_LEN as u64,
            deadline: None,
            state: Mutex::new(Some(spool)),
        })
    }

    /// An input of `len` plaintext bytes that may still be arriving until `deadline`.
    fn arriving(path: &Path, dek: &Key256, len: u64, deadline: Instant) -> Self {
        Self {
            path: path.to_path_buf(),
            dek: dek.clone(),
            len,
            deadline: Some(deadline),
            state: Mutex::new(None),
        }
    }

    /// The whole plaintext (modules only: they are small).
    fn read_all(&self) -> std::io::Result<Vec<u8>> {
        let mut out = vec![0u8; self.len as usize];
        let mut at = 0;
        while at < out.len() {
            let n = self.read_at(at as u64, &mut out[at..])?;
            if n == 0 {
                break;
            }
            at += n;
        }
        Ok(out)
    }
}

impl InputSource for SpoolInput {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let spool = match &mut *guard {
            Some(spool) => spool,
            empty => empty.insert(OpenSpool::open(&self.path, &self.dek, self.deadline)?),
        };
        let index = offset / spool.chunk_size;
        if spool.chunk.as_ref().is_none_or(|(i, _)| *i != index) {
            let sealed = spool.chunk_size + TAG_LEN as u64;
            let start = spool.header_len + index * sealed;
            let last = index + 1 == self.len.div_ceil(spool.chunk_size).max(1);
            let want = if last {
                self.len - index * spool.chunk_size + TAG_LEN as u64
            } else {
                sealed
            };
            // One buffer per input, reused chunk after chunk: ciphertext in, plaintext
            // out in place.
            let mut buffer = spool
                .chunk
                .take()
                .map_or_else(|| Zeroizing::new(Vec::new()), |(_, b)| b);
            buffer.resize(want as usize, 0);
            wait_for(&spool.file, start + want, self.deadline)?;
            spool.file.read_exact_at(&mut buffer, start)?;
            let plain_len = spool
                .opener
                .open_in_place(index, &mut buffer, last)
                .map_err(invalid)?
                .len();
            buffer.truncate(plain_len);
            spool.chunk = Some((index, buffer));
        }
        let Some((_, plain)) = spool.chunk.as_ref() else {
            return Ok(0);
        };
        let within = (offset - index * spool.chunk_size) as usize;
        let n = buf.len().min(plain.len().saturating_sub(within));
        buf[..n].copy_from_slice(&plain[within..within + n]);
        Ok(n)
    }
}

impl EnclaveService {
    /// The spool directory of a task.
    fn spool(&self, task_id: &str) -> Result<PathBuf, EnclaveFailure> {
        let root = self.spool_root.as_ref().ok_or_else(|| {
            failure(
                FailureKind::Unavailable,
                "this node runs no tasks (no spool directory)",
            )
        })?;
        Ok(root.join(task_id))
    }

    pub(crate) fn task_initiate(
        &self,
        tenant: &str,
        bytes: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        self.tenant_key(link, tenant)?;
        self.spool("0")?;
        let initiation = TaskInitiation::parse(bytes).map_err(bad)?;
        let digest = initiation_digest(bytes);
        let nonce = hex::decode(&initiation.nonce).map_err(bad)?;
        let skek = HpkeKeyPair::generate();
        let evidence = self
            .platform()
            .evidence(&signal_binding(
                skek.public_key().as_bytes(),
                &nonce,
                &digest,
            ))
            .map_err(internal)?;
        let mut tasks = lock(&self.tasks);
        let now = Instant::now();
        tasks
            .0
            .retain(|_, t| now.duration_since(t.created) < TASK_IDLE);
        if tasks.0.len() >= MAX_TASKS {
            return Err(failure(
                FailureKind::Unavailable,
                "this provider holds too many tasks; try another",
            ));
        }
        if tasks.0.contains_key(&initiation.task_id) {
            return Err(failure(FailureKind::Conflict, "a task with this id exists"));
        }
        let load = tasks.0.len() as u32;
        let skek_public = skek.public_key().as_bytes().to_vec();
        tasks.0.insert(
            initiation.task_id.clone(),
            TaskState {
                tenant: tenant.into(),
                initiation,
                digest,
                skek,
                keys: None,
                created: now,
            },
        );
        Ok(EnclaveReply::TaskSignal {
            skek: skek_public,
            evidence,
            load,
        })
    }

    pub(crate) fn task_keys(
        &self,
        tenant: &str,
        task_id: &str,
        delivery: &[u8],
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let mut tasks = lock(&self.tasks);
        let task = tasks
            .0
            .get_mut(task_id)
            .filter(|t| t.tenant == tenant)
            .ok_or_else(|| failure(FailureKind::NotFound, "unknown or expired task"))?;
        let keys = open_delivery(&task.skek, &task.digest, delivery).map_err(bad)?;
        for c in &task.initiation.compartments {
            if !keys.deks.iter().any(|(n, _)| n == &c.name) {
                return Err(bad(format!(
                    "the key delivery has no data key for compartment {}",
                    c.name
                )));
            }
        }
        task.keys = Some(keys);
        Ok(EnclaveReply::TaskKeysAccepted)
    }

    pub(crate) fn task_run(
        &self,
        tenant: &str,
        task_id: &str,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let task = {
            let mut tasks = lock(&self.tasks);
            match tasks.0.get(task_id) {
                Some(t) if t.tenant == tenant && t.keys.is_some() => tasks.0.remove(task_id),
                Some(t) if t.tenant == tenant => {
                    return Err(failure(
                        FailureKind::BadRequest,
                        "the task's keys have not been delivered",
                    ));
                }
                _ => None,
            }
        };
        let Some(task) = task else {
            return Err(failure(FailureKind::NotFound, "unknown or expired task"));
        };
        let spool = self.spool(task_id)?;
        let result = self.execute(&task, &spool);
        let _ = std::fs::remove_dir_all(&spool);
        match result {
            Ok(envelope) => {
                self.audit(link, "task.run", tenant, task_id, "ok")?;
                Ok(EnclaveReply::TaskResult { envelope })
            }
            Err(e) => {
                self.audit(
                    link,
                    "task.run",
                    tenant,
                    task_id,
                    &format!("failed: {}", e.message),
                )?;
                Err(e)
            }
        }
    }

    fn execute(&self, task: &TaskState, spool: &Path) -> Result<Vec<u8>, EnclaveFailure> {
        let Some(keys) = &task.keys else {
            return Err(failure(
                FailureKind::BadRequest,
                "the task's keys have not been delivered",
            ));
        };
        let dek = |name: &str| keys.deks.iter().find(|(n, _)| n == name).map(|(_, k)| k);
        let init = &task.initiation;
        let ceiling = node_limits();
        let asked = &init.limits;
        let limits = TaskLimits {
            fuel: asked.fuel.unwrap_or(10_000_000_000).min(ceiling.fuel),
            memory_bytes: asked
                .memory_bytes
                .unwrap_or(256 << 20)
                .min(ceiling.memory_bytes),
            output_bytes: asked
                .output_bytes
                .unwrap_or(16 << 20)
                .min(ceiling.output_bytes),
            timeout: asked
                .timeout_ms
                .map_or(Duration::from_secs(60), Duration::from_millis)
                .min(ceiling.timeout),
            ..ceiling
        };
        // Inputs may still be arriving: a read waits for its chunk until the task's own
        // wall-clock limit, which also bounds the run itself.
        let deadline = Instant::now() + limits.timeout;
        let mut compartments = Vec::with_capacity(init.compartments.len());
        for c in &init.compartments {
            veritee_channel::ops::check_name(&c.name).map_err(bad)?;
            let key = dek(&c.name).ok_or_else(|| bad(format!("no data key for {}", c.name)))?;
            let dir = spool.join(&c.name);
            let module = SpoolInput::module(&dir.join("module"), key)
                .map_err(|e| bad(format!("the module of {}: {e}", c.name)))?;
            if module.len > MAX_MODULE_LEN {
                return Err(bad(format!(
                    "the module of {} is larger than {MAX_MODULE_LEN} bytes",
                    c.name
                )));
            }
            let module = module
                .read_all()
                .map_err(|e| bad(format!("the module of {} does not decrypt: {e}", c.name)))?;
            let mut inputs = Vec::with_capacity(c.inputs.len());
            for (i, (name, len)) in c.inputs.iter().zip(&c.input_lengths).enumerate() {
                let path = dir.join(format!("input-{i}"));
                let source = SpoolInput::arriving(&path, key, *len, deadline);
                inputs.push(Input::from_source(name.clone(), Arc::new(source)));
            }
            compartments.push(CompartmentSpec {
                name: c.name.clone(),
                module: module.into(),
                inputs,
                entry: c.entry.clone(),
            });
        }
        let security = SecurityContext {
            compartments: init
                .security_context
                .iter()
                .map(|(name, a)| {
                    (
                        name.clone(),
                        Access {
                            may_read: a.may_read.iter().cloned().collect(),
                            releases: a.releases,
                        },
                    )
                })
                .collect(),
        };
        let spec = TaskSpec {
            compartments,
            security,
        };
        let outcome = veritee_wasm::run_task(&spec, &limits)
            .map_err(|e| bad(format!("the task failed: {e}")))?;
        let mut results = Vec::with_capacity(outcome.compartments.len());
        for r in &outcome.compartments {
            let key = dek(&r.name).ok_or_else(|| internal("a result without a data key"))?;
            // Output and log are released together or not at all (the engine already
            // dropped both for a compartment the security context keeps in).
            let (released, output, log) = match &r.output {
                Some(bytes) => (
                    true,
                    seal_output(key, &init.task_id, &r.name, bytes).map_err(internal)?,
                    seal_log(
                        key,
                        &init.task_id,
                        &r.name,
                        r.log.as_deref().unwrap_or_default(),
                    )
                    .map_err(internal)?,
                ),
                None => (false, String::new(), String::new()),
            };
            results.push(CompartmentOutput {
                name: r.name.clone(),
                exit_code: r.exit_code,
                fuel_used: r.fuel_used,
                released,
                output,
                log,
            });
        }
        let body = ResultBody {
            task_id: init.task_id.clone(),
            timestamp: OffsetDateTime::now_utc(),
            results,
        };
        seal_envelope(&body, &keys.result_mac_key).map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use veritee_crypto::Confidential;

    const CHUNK: u32 = 4096;

    fn sealed(plain: &[u8], dek: &Key256) -> Vec<u8> {
        let mut w =
            veritee_stream::EncryptWriter::new(&StreamKey::new(dek), "t", CHUNK, Vec::new())
                .expect("writer");
        w.write_all(plain).expect("write");
        w.finish().expect("finish")
    }

    fn setup(len: usize) -> (tempfile::TempDir, PathBuf, Key256, Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("input-0");
        let dek = Confidential::new([7u8; 32]);
        let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let stream = sealed(&plain, &dek);
        (dir, path, dek, plain, stream)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(300)
    }

    #[test]
    fn an_input_reads_back_whole_and_at_any_offset() {
        let (_dir, path, dek, plain, stream) = setup(3 * CHUNK as usize + 100);
        std::fs::write(&path, &stream).expect("write");
        let input = SpoolInput::arriving(&path, &dek, plain.len() as u64, soon());
        assert_eq!(input.read_all().expect("read"), plain);
        let mut buf = [0u8; 50];
        let n = input.read_at(CHUNK as u64 - 10, &mut buf).expect("read_at");
        assert_eq!(
            &buf[..n],
            &plain[CHUNK as usize - 10..CHUNK as usize - 10 + n]
        );
    }

    #[test]
    fn an_input_still_arriving_is_waited_for() {
        let (_dir, path, dek, plain, stream) = setup(5 * CHUNK as usize);
        let (first, rest) = stream.split_at(stream.len() / 2);
        std::fs::write(&path, first).expect("write");
        let late = {
            let (path, rest) = (path.clone(), rest.to_vec());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("open");
                f.write_all(&rest).expect("append");
            })
        };
        let input = SpoolInput::arriving(&path, &dek, plain.len() as u64, soon());
        assert_eq!(input.read_all().expect("read"), plain);
        late.join().expect("thread");
    }

    #[test]
    fn a_wrong_declared_length_or_an_altered_chunk_is_an_error() {
        let (_dir, path, dek, plain, stream) = setup(2 * CHUNK as usize + 500);
        std::fs::write(&path, &stream).expect("write");
        let len = plain.len() as u64;
        // Declared longer: the bytes never come.
        let e = SpoolInput::arriving(&path, &dek, len + 1, soon())
            .read_all()
            .expect_err("longer");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        // Declared shorter: the final chunk is not where it must end.
        let e = SpoolInput::arriving(&path, &dek, len - 100, soon())
            .read_all()
            .expect_err("shorter");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        // One flipped byte in the second chunk.
        let mut altered = stream.clone();
        let at = altered.len() - 600;
        altered[at] ^= 1;
        std::fs::write(&path, &altered).expect("write");
        let e = SpoolInput::arriving(&path, &dek, len, soon())
            .read_all()
            .expect_err("altered");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        // Another key.
        std::fs::write(&path, &stream).expect("write");
        let other = Confidential::new([8u8; 32]);
        let e = SpoolInput::arriving(&path, &other, len, soon())
            .read_all()
            .expect_err("other key");
        assert!(
            e.to_string().contains("not under this compartment's key"),
            "{e}"
        );
        // Never uploaded.
        let e = SpoolInput::arriving(&path.with_file_name("input-9"), &dek, len, soon())
            .read_all()
            .expect_err("missing");
        assert!(e.to_string().contains("was it uploaded"), "{e}");
    }

    #[test]
    fn a_module_is_as_long_as_its_file() {
        let (_dir, path, dek, plain, stream) = setup(CHUNK as usize + 1);
        std::fs::write(&path, &stream).expect("write");
        let module = SpoolInput::module(&path, &dek).expect("module");
        assert_eq!(module.len, plain.len() as u64);
        assert_eq!(module.read_all().expect("read"), plain);
        std::fs::write(&path, &stream[..stream.len() - 20]).expect("truncate");
        let cut = SpoolInput::module(&path, &dek).expect("a truncated module still opens");
        let e = cut.read_all().expect_err("but does not decrypt");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    }
}
