//! Running a trusted task across candidate providers, client side.

use crate::{ClientError, NodeClient};
use std::io::{Read, Seek};
use veritee_channel::ChannelError;
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_task::keys::TaskKey;
use veritee_task::messages::{
    AccessContext, AttestationSignal, CompartmentContext, LimitsContext, TaskInitiation,
};
use veritee_task::results::{ReleasedOutput, ResultBody, open_envelope};
use veritee_wasm::LoadedManifest;

/// How long one request of a task may take: longer than any node lets a task run.
pub const TASK_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(900);
/// Bytes per upload request of a task file.
pub const UPLOAD_PIECE: usize = 16 << 20;

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
    /// Uploads `file` in pieces of [`UPLOAD_PIECE`] bytes, each its own signed request
    /// appended at its offset: memory stays bounded, and each piece reaches the host as
    /// one buffer rather than many small writes.
    fn put_file(
        &self,
        tenant: &TenantKey,
        path: &str,
        mut file: std::fs::File,
    ) -> Result<u64, ClientError> {
        let mut offset = 0u64;
        loop {
            // A fresh buffer of the full size each time: the request takes ownership of
            // it, and one growing from empty would be copied as it grows.
            let mut piece = Vec::with_capacity(UPLOAD_PIECE);
            (&mut file)
                .take(UPLOAD_PIECE as u64)
                .read_to_end(&mut piece)
                .map_err(|e| ClientError::Transport(format!("reading the upload: {e}")))?;
            if piece.is_empty() && offset > 0 {
                return Ok(offset);
            }
            let at = format!("{path}?offset={offset}");
            let len = piece.len() as u64;
            let auth = self.signed(tenant, "PUT", &at, &piece)?;
            self.send(
                reqwest::Method::PUT,
                &at,
                Some(("application/octet-stream", piece)),
                Some(auth),
            )?;
            offset += len;
            if len < UPLOAD_PIECE as u64 {
                return Ok(offset);
            }
        }
    }

    fn tenant_post(
        &self,
        tenant: &TenantKey,
        path: &str,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        let auth = self.signed(tenant, "POST", path, &body)?;
        self.send(
            reqwest::Method::POST,
            path,
            Some((content_type, body)),
            Some(auth),
        )
    }
}

/// Encrypts `source` under `dek` into a temporary file in the stream format; returns it
/// rewound, with the plaintext length.
fn encrypt_to_temp(
    dek: &veritee_task::keys::Key256,
    key_id: &str,
    mut source: impl Read,
) -> Result<(std::fs::File, u64), ClientError> {
    let io = |e: std::io::Error| ClientError::Transport(format!("encrypting: {e}"));
    let file = std::io::BufWriter::with_capacity(1 << 20, tempfile::tempfile().map_err(io)?);
    let key = veritee_stream::StreamKey::new(dek);
    let mut writer =
        veritee_stream::EncryptWriter::new(&key, key_id, veritee_stream::DEFAULT_CHUNK_SIZE, file)
            .map_err(io)?;
    let n = std::io::copy(&mut source, &mut writer).map_err(io)?;
    let mut file = writer
        .finish()
        .map_err(io)?
        .into_inner()
        .map_err(|e| io(e.into_error()))?;
    file.rewind().map_err(io)?;
    Ok((file, n))
}

/// The initiation for a manifest (reads the length of every input file).
fn initiation(
    manifest: &LoadedManifest,
    policy_text: &str,
    task_id: &[u8; 16],
    nonce: &[u8; 32],
) -> Result<TaskInitiation, ClientError> {
    let m = &manifest.manifest;
    let mut compartments = Vec::with_capacity(m.compartments.len());
    for c in &m.compartments {
        let mut input_lengths = Vec::with_capacity(c.inputs.len());
        for input in &c.inputs {
            let path = manifest.resolve(&input.file);
            let meta = std::fs::metadata(&path)
                .map_err(|e| ClientError::Transport(format!("{}: {e}", path.display())))?;
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
        });
    }
    Ok(TaskInitiation {
        version: 1,
        task_id: hex::encode(task_id),
        nonce: hex::encode(nonce),
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
    let ttis = initiation(manifest, req.policy_text, &task_id, &nonce)?;
    let ttis_bytes = serde_json::to_vec(&ttis).map_err(|e| ClientError::Protocol(e.to_string()))?;

    let mut acceptable = Vec::new();
    for url in req.nodes {
        events(TaskEvent::Initiated { node: url.clone() });
        let client = NodeClient::with_timeout(url, TASK_REQUEST_TIMEOUT)?;
        let signal: Result<AttestationSignal, ClientError> = client
            .tenant_post(
                req.tenant,
                "/v1/tasks",
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
            Ok((body, outputs)) => {
                return Ok(TaskReport {
                    task_id: hex::encode(task_id),
                    provider: url,
                    body,
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
) -> Result<(ResultBody, Vec<ReleasedOutput>), ClientError> {
    let digest = veritee_task::messages::initiation_digest(ttis_bytes);
    let (delivery, mac_key) =
        veritee_task::keys::seal_delivery(skek, &digest, req.task_key, task_id, names)?;
    client.tenant_post(
        req.tenant,
        &format!("/v1/tasks/{}/keys", ttis.task_id),
        "application/octet-stream",
        delivery,
    )?;
    events(TaskEvent::KeysDelivered);
    let upload = |c_name: &str, slot: &str, path: &std::path::Path, declared: Option<u64>| {
        let dek = req.task_key.dek(task_id, c_name)?;
        let source = std::fs::File::open(path)
            .map_err(|e| ClientError::Transport(format!("{}: {e}", path.display())))?;
        let what = format!("{c_name}/{slot}");
        let (encrypted, plain_len) = encrypt_to_temp(&dek, &what, std::io::BufReader::new(source))?;
        if declared.is_some_and(|d| d != plain_len) {
            return Err(ClientError::Transport(format!(
                "{} changed while the task was being sent",
                path.display()
            )));
        }
        let sealed_len = client.put_file(
            req.tenant,
            &format!("/v1/tasks/{}/files/{c_name}/{slot}", ttis.task_id),
            encrypted,
        )?;
        Ok::<_, ClientError>((what, plain_len, sealed_len))
    };
    // Modules first: the enclave compiles them before it starts.
    for c in &manifest.manifest.compartments {
        let sent = upload(&c.name, "module", &manifest.resolve(&c.module), None)?;
        announce(events, sent);
    }
    // Then the run starts while the inputs are still being uploaded: the enclave reads
    // each chunk as it arrives, so upload and execution overlap.
    events(TaskEvent::Running);
    let run_path = format!("/v1/tasks/{}/run", ttis.task_id);
    let envelope = std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            client.tenant_post(
                req.tenant,
                &run_path,
                "application/octet-stream",
                Vec::new(),
            )
        });
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
                    // The run fails for want of this input; its error is the one to show.
                    Err(_) => break 'inputs,
                }
            }
        }
        // The run's outcome decides: a failed run explains more than the uploads it cut
        // short, and a guest need not read every input to the end to succeed.
        run.join()
            .unwrap_or_else(|_| Err(ClientError::Protocol("the run thread panicked".into())))
    })?;
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
