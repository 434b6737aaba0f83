//! Running a trusted task across candidate providers, client side.

use crate::{ClientError, NodeClient};
use std::io::Read;
use veritee_channel::ChannelError;
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_proto::api::auth::stream_piece_payload;
use veritee_proto::api::{TaskList, TaskListEntry, paths};
use veritee_task::keys::TaskKey;
use veritee_task::messages::{
    AccessContext, AttestationSignal, CompartmentContext, LimitsContext, TaskInitiation,
};
use veritee_task::results::{
    OpenedEnvelope, OpenedResult, ReleasedOutput, ResultBody, open_envelope,
};
use veritee_wasm::LoadedManifest;

/// How long one request of a task may take: longer than any node lets a task run.
pub const TASK_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(900);
/// Bytes per upload request of a task file.
pub const UPLOAD_PIECE: usize = 8 << 20;

/// How to choose among acceptable providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The first acceptable one, in the order given.
    First,
    /// The acceptable one holding the fewest tasks.
    LeastLoaded,
}

impl core::str::FromStr for Selection {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "first" => Ok(Self::First),
            "least-loaded" => Ok(Self::LeastLoaded),
            other => Err(format!("selection {other:?}: use first or least-loaded")),
        }
    }
}

/// What happened, step by step (for `--explain` and progress displays).
#[derive(Debug, Clone)]
pub enum TaskEvent {
    /// The task initiation was sent to a candidate.
    Initiated {
        /// Node URL.
        node: String,
    },
    /// A candidate's attestation signal passed verification and the policy.
    Accepted {
        /// Node URL.
        node: String,
        /// TEE kind and measurement, for display.
        summary: String,
        /// The provider's load.
        load: u32,
    },
    /// A candidate was dropped; nothing secret went to it.
    Dropped {
        /// Node URL.
        node: String,
        /// Why.
        reason: String,
    },
    /// The provider chosen.
    Chosen {
        /// Node URL.
        node: String,
    },
    /// CKEK and the wrapped DEKs were delivered, sealed to the SKEK.
    KeysDelivered,
    /// A file was encrypted under its compartment's DEK.
    Encrypted {
        /// What.
        what: String,
        /// Plaintext bytes.
        bytes: u64,
    },
    /// A file was uploaded.
    Uploaded {
        /// What.
        what: String,
        /// Ciphertext bytes.
        bytes: u64,
    },
    /// The enclave is running the task.
    Running,
    /// The result passed its checks.
    Verified,
}

/// The outcome of a task.
#[derive(Debug)]
pub struct TaskReport {
    /// The task id, hex.
    pub task_id: String,
    /// The provider that ran it.
    pub provider: String,
    /// The authenticated result body.
    pub body: ResultBody,
    /// Every compartment's status, decrypted.
    pub results: Vec<OpenedResult>,
    /// Released outputs and logs, decrypted.
    pub outputs: Vec<ReleasedOutput>,
}

/// Everything a task run needs.
#[derive(Debug)]
pub struct TaskRequest<'a> {
    /// Candidate providers.
    pub nodes: &'a [String],
    /// The tenant.
    pub tenant: &'a TenantKey,
    /// The client's long-term task key.
    pub task_key: &'a TaskKey,
    /// How providers are judged.
    pub appraiser: Appraiser<'a>,
    /// The policy text sent in the initiation.
    pub policy_text: &'a str,
    /// Provider choice.
    pub selection: Selection,
    /// How old a result may be.
    pub result_window: time::Duration,
}

impl NodeClient {
    /// Encrypts `file` in the stream format and uploads it as it goes, in signed pieces
    /// appended at their offsets, the piece at `offset` to `path_at(offset)`: the first piece reaches the node while
    /// the rest is still being encrypted, memory stays bounded, and nothing is written
    /// to local disk. Returns the ciphertext length.
    ///
    /// One thread seals and signs the next piece while this one sends the last. Each
    /// piece is signed over its length, not its digest (see [`stream_piece_payload`]):
    /// the enclave authenticates every chunk of it. The sealing thread runs at
    /// background priority: bulk encryption should yield to anything else on the
    /// client's machine, including, when client and node share one (the demo, a
    /// benchmark), the task it feeds.
    fn put_encrypted(
        &self,
        tenant: &TenantKey,
        path_at: &(dyn Fn(u64) -> String + Sync),
        file: OutgoingFile<'_>,
    ) -> Result<u64, ClientError> {
        let (pieces, ready) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>, String, String)>(0);
        std::thread::scope(|scope| {
            let sealing = scope.spawn(move || {
                background_priority();
                seal_pieces(file, |offset, piece| {
                    let at = path_at(offset);
                    let payload = stream_piece_payload(piece.len() as u64);
                    let auth = self.signed_payload(tenant, "PUT", &at, &payload)?;
                    // A closed channel: the sender stopped on an error it reports.
                    Ok(pieces.send((offset, piece, at, auth)).is_ok())
                })
            });
            let mut sent = 0u64;
            let sending = || {
                for (offset, piece, at, auth) in ready {
                    let len = piece.len() as u64;
                    self.send(
                        reqwest::Method::PUT,
                        &at,
                        Some(("application/octet-stream", piece)),
                        Some(auth),
                    )?;
                    sent = offset + len;
                }
                Ok::<_, ClientError>(())
            };
            let sent_result = sending();
            let sealed = sealing.join().unwrap_or_else(|_| {
                Err(ClientError::Protocol("the sealing thread panicked".into()))
            });
            // A source that could not be read explains a stopped upload best.
            sealed?;
            sent_result?;
            Ok(sent)
        })
    }

    fn tenant_post(
        &self,
        tenant: &TenantKey,
        path: &str,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        self.send_signed(
            tenant,
            reqwest::Method::POST,
            path,
            Some((content_type, body)),
        )
    }
}

/// Lowers the calling thread's priority (nice 10). On Linux, nice is per thread, so
/// only the sealing thread is affected; elsewhere it would be the whole process, so
/// nothing is done. Failing to lower it is harmless.
fn background_priority() {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::process::nice(10);
    }
}

/// Sealed chunks per upload piece. A piece holds whole chunks (and, first, the stream
/// header), each read from the source into the piece and sealed where it lies.
const CHUNKS_PER_PIECE: usize = UPLOAD_PIECE / veritee_stream::DEFAULT_CHUNK_SIZE as usize;

/// A local file on its way to a task, encrypted under its compartment's DEK.
struct OutgoingFile<'a> {
    dek: &'a veritee_task::keys::Key256,
    /// The stream header's key id: `compartment/slot`.
    key_id: &'a str,
    /// The stream header's authenticated context: the task, compartment and slot it
    /// fills ([`veritee_task::messages::slot_context`]).
    context: &'a [u8],
    /// Where it is read from, for messages.
    name: &'a str,
    source: &'a mut (dyn Read + Send),
    /// Its plaintext length: for an input, the one the initiation declared.
    len: u64,
}

/// Encrypts `file` in the stream format, handing each full piece and its offset to
/// `emit` (which returns false to stop early). A source shorter or longer than its
/// stated length is an error: the enclave expects exactly the length the initiation
/// declared.
fn seal_pieces(
    file: OutgoingFile<'_>,
    mut emit: impl FnMut(u64, Vec<u8>) -> Result<bool, ClientError>,
) -> Result<(), ClientError> {
    let OutgoingFile {
        dek,
        key_id,
        context,
        name: source_name,
        source,
        len: plain_len,
    } = file;
    let io = |e: std::io::Error| task_file(source_name, format!("cannot read it: {e}"));
    let stream = |e: veritee_stream::StreamError| ClientError::Protocol(e.to_string());
    let chunk_size = veritee_stream::DEFAULT_CHUNK_SIZE as u64;
    let key = veritee_stream::StreamKey::new(dek);
    let mut sealer =
        veritee_stream::ChunkSealer::with_context(&key, key_id, context, chunk_size as u32)
            .map_err(stream)?;
    let chunks = plain_len.div_ceil(chunk_size).max(1);
    let header = sealer.header().to_bytes();
    let sealed_chunk = chunk_size as usize + veritee_stream::TAG_LEN;
    let mut offset = 0u64;
    let mut piece = Vec::with_capacity(header.len() + CHUNKS_PER_PIECE * sealed_chunk);
    piece.extend_from_slice(&header);
    // Where the piece's chunks start (after the header, in the first piece).
    let mut chunks_from = piece.len();
    for index in 0..chunks {
        let last = index + 1 == chunks;
        let want = if last {
            plain_len - index * chunk_size
        } else {
            chunk_size
        };
        let start = piece.len();
        // Into the piece's spare capacity: read_to_end does not zero it first.
        source.take(want).read_to_end(&mut piece).map_err(io)?;
        if ((piece.len() - start) as u64) < want {
            return Err(changed_while_sending(source_name, "shorter"));
        }
        // Room for the chunk's tag: the piece is laid out as it is sent.
        piece.resize(piece.len() + veritee_stream::TAG_LEN, 0);
        if last || piece.len() + sealed_chunk > piece.capacity() {
            // The piece's chunks sealed together, side by side on every core. The
            // pool's threads take the priority of the thread that starts it: this one
            // when it is the process's first to seal (as in `veritee task run`).
            sealer
                .seal_laid_out(&mut piece[chunks_from..], last)
                .map_err(stream)?;
            chunks_from = 0;
            let len = piece.len() as u64;
            let full = std::mem::replace(
                &mut piece,
                Vec::with_capacity(CHUNKS_PER_PIECE * sealed_chunk),
            );
            if !emit(offset, full)? {
                return Ok(());
            }
            offset += len;
        }
    }
    if source.read(&mut [0u8; 1]).map_err(io)? != 0 {
        return Err(changed_while_sending(source_name, "longer"));
    }
    Ok(())
}

fn changed_while_sending(source_name: &str, how: &str) -> ClientError {
    task_file(
        source_name,
        format!("now {how} than when the task began: it changed while being sent"),
    )
}

fn task_file(path: impl core::fmt::Display, reason: impl Into<String>) -> ClientError {
    ClientError::TaskFile {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// The initiation for a manifest (reads the length of every input file).
fn initiation(
    manifest: &LoadedManifest,
    policy_text: &str,
    task_id: &[u8; 16],
    nonce: &[u8; 32],
    client_kx: &[u8; 32],
) -> Result<TaskInitiation, ClientError> {
    let m = &manifest.manifest;
    let mut compartments = Vec::with_capacity(m.compartments.len());
    for c in &m.compartments {
        let mut input_lengths = Vec::with_capacity(c.inputs.len());
        for input in &c.inputs {
            let path = manifest.resolve(&input.file);
            let meta =
                std::fs::metadata(&path).map_err(|e| task_file(path.display(), e.to_string()))?;
            input_lengths.push(meta.len());
        }
        compartments.push(CompartmentContext {
            name: c.name.clone(),
            entry: c
                .entry
                .clone()
                .unwrap_or_else(|| veritee_wasm::DEFAULT_ENTRY.to_string()),
            inputs: c.inputs.iter().map(|i| i.name.clone()).collect(),
            input_lengths,
            keys: c.keys.clone(),
        });
    }
    // A misspelt key is refused here, before any provider is asked.
    for c in &compartments {
        c.named_keys()?;
    }
    Ok(TaskInitiation {
        version: veritee_task::messages::INITIATION_VERSION,
        task_id: hex::encode(task_id),
        nonce: hex::encode(nonce),
        client_kx: hex::encode(client_kx),
        policy: policy_text.to_string(),
        security_context: m
            .security
            .iter()
            .map(|(name, a)| {
                (
                    name.clone(),
                    AccessContext {
                        may_read: a.may_read.clone(),
                        releases: a.releases,
                    },
                )
            })
            .collect(),
        compartments,
        limits: LimitsContext {
            fuel: m.limits.fuel,
            memory_bytes: m.limits.memory_bytes,
            output_bytes: m.limits.output_bytes,
            timeout_ms: m.limits.timeout_ms,
        },
    })
}

/// Runs a task end to end: initiation to every candidate, appraisal, selection, key
/// delivery, encrypted uploads, execution, result verification and decryption.
pub fn run_task(
    manifest: &LoadedManifest,
    req: &TaskRequest<'_>,
    events: &mut dyn FnMut(TaskEvent),
) -> Result<TaskReport, ClientError> {
    let task_id: [u8; 16] = veritee_crypto::rand::array().map_err(ChannelError::from)?;
    let nonce: [u8; 32] = veritee_crypto::rand::array().map_err(ChannelError::from)?;
    let client_kx = req.task_key.ckek_public(&task_id)?;
    let ttis = initiation(manifest, req.policy_text, &task_id, &nonce, &client_kx)?;
    let ttis_bytes = serde_json::to_vec(&ttis).map_err(|e| ClientError::Protocol(e.to_string()))?;

    let mut acceptable = Vec::new();
    for url in req.nodes {
        events(TaskEvent::Initiated { node: url.clone() });
        let client = NodeClient::with_timeout(url, TASK_REQUEST_TIMEOUT)?;
        let signal: Result<AttestationSignal, ClientError> = client
            .tenant_post(
                req.tenant,
                &paths::tasks(),
                "application/json",
                ttis_bytes.clone(),
            )
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| ClientError::Protocol(e.to_string()))
            });
        match signal.and_then(|s| {
            s.appraise(&ttis, &ttis_bytes, &req.appraiser)
                .map(|(skek, claims)| (s.load, skek, claims))
                .map_err(ClientError::from)
        }) {
            Ok((load, skek, claims)) => {
                let summary = format!(
                    "{} {}",
                    claims.tee,
                    claims
                        .measurements
                        .iter()
                        .next()
                        .map(|(n, v)| format!(
                            "{n} {}",
                            &v.to_string()[..16.min(v.to_string().len())]
                        ))
                        .unwrap_or_default()
                );
                events(TaskEvent::Accepted {
                    node: url.clone(),
                    summary,
                    load,
                });
                acceptable.push((url.clone(), client, skek, load));
            }
            Err(e) => events(TaskEvent::Dropped {
                node: url.clone(),
                reason: e.to_string(),
            }),
        }
    }
    if acceptable.is_empty() {
        return Err(ClientError::NoAcceptableProvider);
    }
    if req.selection == Selection::LeastLoaded {
        acceptable.sort_by_key(|(_, _, _, load)| *load);
    }

    let names: Vec<&str> = manifest
        .manifest
        .compartments
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mut last_error = None;
    for (url, client, skek, _) in acceptable {
        events(TaskEvent::Chosen { node: url.clone() });
        match run_on(
            manifest,
            req,
            &client,
            &skek,
            &ttis,
            &ttis_bytes,
            &task_id,
            &names,
            events,
        ) {
            Ok(OpenedEnvelope {
                body,
                results,
                outputs,
            }) => {
                return Ok(TaskReport {
                    task_id: hex::encode(task_id),
                    provider: url,
                    body,
                    results,
                    outputs,
                });
            }
            // A provider that became unreachable: fall back to the next one.
            Err(e @ (ClientError::Transport(_) | ClientError::Node { status: 503, .. })) => {
                events(TaskEvent::Dropped {
                    node: url.clone(),
                    reason: format!("failed during the task, falling back: {e}"),
                });
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or(ClientError::NoAcceptableProvider))
}

/// Withdraws a task whose upload failed; true if the node still held it (so its run,
/// if any, now fails for that reason), false if it was already over.
fn withdraw(client: &NodeClient, tenant: &TenantKey, task_id: &str) -> bool {
    client.cancel_task(tenant, task_id).is_ok()
}

/// Whether a cancelled task was running (its run then fails, saying it was withdrawn)
/// or waiting (it is forgotten, with its uploads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled {
    /// It had started.
    pub was_running: bool,
}

impl NodeClient {
    /// The tenant's tasks this node holds, oldest first.
    pub fn list_tasks(&self, tenant: &TenantKey) -> Result<Vec<TaskListEntry>, ClientError> {
        let body = self.send_signed(tenant, reqwest::Method::GET, &paths::tasks(), None)?;
        let list: TaskList =
            serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(list.tasks)
    }

    /// Withdraws one of the tenant's tasks: the enclave forgets it and its keys (a
    /// running one at its guest's next fuel check), and its results are never released.
    pub fn cancel_task(&self, tenant: &TenantKey, task_id: &str) -> Result<Cancelled, ClientError> {
        let body = self.tenant_post(
            tenant,
            &paths::task_cancel(task_id),
            "application/octet-stream",
            Vec::new(),
        )?;
        #[derive(serde::Deserialize)]
        struct Answer {
            cancelled: bool,
            was_running: bool,
        }
        let answer: Answer =
            serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if !answer.cancelled {
            return Err(ClientError::Protocol(format!(
                "the node did not cancel task {task_id}"
            )));
        }
        Ok(Cancelled {
            was_running: answer.was_running,
        })
    }
}

/// Reports an encrypted and uploaded file: (what, plaintext bytes, ciphertext bytes).
fn announce(events: &mut dyn FnMut(TaskEvent), (what, plain, sealed): (String, u64, u64)) {
    events(TaskEvent::Encrypted {
        what: what.clone(),
        bytes: plain,
    });
    events(TaskEvent::Uploaded {
        what,
        bytes: sealed,
    });
}

#[allow(clippy::too_many_arguments)]
fn run_on(
    manifest: &LoadedManifest,
    req: &TaskRequest<'_>,
    client: &NodeClient,
    skek: &veritee_crypto::hpke::HpkePublicKey,
    ttis: &TaskInitiation,
    ttis_bytes: &[u8],
    task_id: &[u8; 16],
    names: &[&str],
    events: &mut dyn FnMut(TaskEvent),
) -> Result<OpenedEnvelope, ClientError> {
    let digest = veritee_task::messages::initiation_digest(ttis_bytes);
    let delivery = veritee_task::keys::seal_delivery(skek, &digest, req.task_key, task_id, names)?;
    client.tenant_post(
        req.tenant,
        &paths::task_keys(&ttis.task_id),
        "application/octet-stream",
        delivery,
    )?;
    events(TaskEvent::KeysDelivered);
    let upload = |c_name: &str, slot: &str, path: &std::path::Path, declared: Option<u64>| {
        let dek = req.task_key.dek(task_id, c_name)?;
        let unreadable = |e: std::io::Error| task_file(path.display(), e.to_string());
        let mut source = std::fs::File::open(path).map_err(unreadable)?;
        let plain_len = match declared {
            Some(len) => len,
            None => source.metadata().map_err(unreadable)?.len(),
        };
        let what = format!("{c_name}/{slot}");
        let context = veritee_task::messages::slot_context(&ttis.task_id, c_name, slot);
        let sealed_len = client.put_encrypted(
            req.tenant,
            &|offset| paths::task_file(&ttis.task_id, c_name, slot, offset),
            OutgoingFile {
                dek: &dek,
                key_id: &what,
                context: &context,
                name: &path.display().to_string(),
                source: &mut source,
                len: plain_len,
            },
        )?;
        Ok::<_, ClientError>((what, plain_len, sealed_len))
    };
    // Modules first: the enclave compiles them before it starts.
    for c in &manifest.manifest.compartments {
        let sent =
            upload(&c.name, "module", &manifest.resolve(&c.module), None).inspect_err(|_| {
                withdraw(client, req.tenant, &ttis.task_id);
            })?;
        announce(events, sent);
    }
    // Then the run starts while the inputs are still being uploaded: the enclave reads
    // each chunk as it arrives, so upload and execution overlap.
    events(TaskEvent::Running);
    let run_path = paths::task_run(&ttis.task_id);
    let envelope = std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            client.tenant_post(
                req.tenant,
                &run_path,
                "application/octet-stream",
                Vec::new(),
            )
        });
        // An upload that fails withdraws the task, so that the run stops waiting for
        // the input instead of waiting out the task's deadline; that upload's error is
        // then the one to show.
        let mut withdrawn_for = None;
        'inputs: for (c, context) in manifest
            .manifest
            .compartments
            .iter()
            .zip(&ttis.compartments)
        {
            for (i, (input, declared)) in c.inputs.iter().zip(&context.input_lengths).enumerate() {
                let path = manifest.resolve(&input.file);
                match upload(&c.name, &format!("input-{i}"), &path, Some(*declared)) {
                    Ok(sent) => announce(events, sent),
                    Err(e) => {
                        if withdraw(client, req.tenant, &ttis.task_id) {
                            withdrawn_for = Some(e);
                        }
                        // Otherwise the run had already ended (a guest that failed, or
                        // stopped early): its outcome explains more than this upload.
                        break 'inputs;
                    }
                }
            }
        }
        let run = run
            .join()
            .unwrap_or_else(|_| Err(ClientError::Protocol("the run thread panicked".into())));
        // A guest need not read every input to the end to succeed.
        run.map_err(|run_error| withdrawn_for.unwrap_or(run_error))
    })?;
    // The results key comes from the task key and the attested SKEK alone.
    let mac_key = req.task_key.result_key(task_id, skek, &digest)?;
    let result = open_envelope(
        &envelope,
        &mac_key,
        task_id,
        req.result_window,
        time::OffsetDateTime::now_utc(),
        |name| req.task_key.dek(task_id, name).ok(),
    )?;
    events(TaskEvent::Verified);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_crypto::Confidential;

    const CHUNK: usize = veritee_stream::DEFAULT_CHUNK_SIZE as usize;

    fn dek() -> veritee_task::keys::Key256 {
        Confidential::new([0x42; 32])
    }

    /// A test input under `dek`, `len` bytes declared.
    fn outgoing<'a>(
        dek: &'a veritee_task::keys::Key256,
        source: &'a mut (dyn Read + Send),
        len: u64,
    ) -> OutgoingFile<'a> {
        OutgoingFile {
            dek,
            key_id: "c/input-0",
            context: b"test context",
            name: "input.txt",
            source,
            len,
        }
    }

    /// Seals `plain` declared as `declared` bytes; the pieces with their offsets.
    fn pieces(plain: &[u8], declared: u64) -> Result<Vec<(u64, Vec<u8>)>, ClientError> {
        let mut out = Vec::new();
        seal_pieces(outgoing(&dek(), &mut &plain[..], declared), |at, piece| {
            out.push((at, piece));
            Ok(true)
        })?;
        Ok(out)
    }

    fn decrypt(stream: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        let key = veritee_stream::StreamKey::new(&dek());
        let mut reader = veritee_stream::DecryptReader::new(&key, stream)?;
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain)?;
        Ok(plain)
    }

    #[test]
    fn pieces_join_into_one_stream_at_their_offsets() {
        // Two full pieces and a short third, the last chunk partial.
        let plain: Vec<u8> = (0..2 * UPLOAD_PIECE + 3 * CHUNK + 5)
            .map(|i| (i % 251) as u8)
            .collect();
        let pieces = pieces(&plain, plain.len() as u64).unwrap();
        assert_eq!(pieces.len(), 3);
        let mut stream = Vec::new();
        for (at, piece) in &pieces {
            assert_eq!(*at, stream.len() as u64, "offsets follow each other");
            stream.extend_from_slice(piece);
        }
        // Whole chunks per piece: every piece after the first is a multiple of a chunk.
        assert_eq!(
            pieces[1].1.len(),
            CHUNKS_PER_PIECE * (CHUNK + veritee_stream::TAG_LEN)
        );
        assert_eq!(decrypt(&stream).unwrap(), plain);
    }

    #[test]
    fn empty_and_exact_multiple_inputs() {
        for len in [0, CHUNK, UPLOAD_PIECE] {
            let plain = vec![9u8; len];
            let pieces = pieces(&plain, len as u64).unwrap();
            let stream: Vec<u8> = pieces.into_iter().flat_map(|(_, p)| p).collect();
            assert_eq!(decrypt(&stream).unwrap(), plain, "{len} bytes");
        }
    }

    #[test]
    fn a_source_that_changed_length_is_refused() {
        let plain = vec![1u8; CHUNK + 10];
        let shorter = pieces(&plain, plain.len() as u64 + 1).unwrap_err();
        assert!(shorter.to_string().contains("shorter"), "{shorter}");
        let longer = pieces(&plain, plain.len() as u64 - 1).unwrap_err();
        assert!(longer.to_string().contains("longer"), "{longer}");
    }

    #[test]
    fn a_stopped_receiver_stops_the_sealing() {
        let plain = vec![0u8; 3 * UPLOAD_PIECE];
        let mut seen = 0;
        seal_pieces(
            outgoing(&dek(), &mut &plain[..], plain.len() as u64),
            |_, _| {
                seen += 1;
                Ok(false)
            },
        )
        .unwrap();
        assert_eq!(seen, 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn background_priority_lowers_only_the_calling_thread() {
        let ours = rustix::process::getpriority_process(None).unwrap();
        let theirs = std::thread::spawn(|| {
            background_priority();
            rustix::process::getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(theirs, (ours + 10).min(19));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), ours);
    }

    #[test]
    fn a_piece_altered_in_transit_fails_its_chunk() {
        let plain = vec![3u8; 2 * CHUNK];
        let mut stream: Vec<u8> = pieces(&plain, plain.len() as u64)
            .unwrap()
            .into_iter()
            .flat_map(|(_, p)| p)
            .collect();
        let at = stream.len() - 100;
        stream[at] ^= 1;
        let err = decrypt(&stream).unwrap_err();
        assert!(err.to_string().contains("chunk 1"), "{err}");
    }
}
