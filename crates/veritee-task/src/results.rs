//! Results: each compartment's status (exit code, fuel used) and, when released, its
//! output and log, each encrypted under the compartment's DEK with the task id, the
//! compartment, the part and the result's timestamp as associated data; the whole
//! wrapped with the task id and that timestamp and authenticated with the key of the
//! CKEK-SKEK exchange (see `keys`). Nothing the host sees says how a compartment ended.

use crate::keys::Key256;
use crate::{TASK_ID_LEN, TaskError};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::AeadKey;

pub(crate) const MAC_LABEL: &[u8] = b"veritee task result v2";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Clock skew tolerated on result timestamps.
pub const MAX_SKEW: time::Duration = time::Duration::minutes(5);
/// Largest result envelope.
pub const MAX_ENVELOPE_LEN: usize = 256 * 1024 * 1024;

/// One compartment's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompartmentOutput {
    /// Compartment name.
    pub name: String,
    /// Its exit code and fuel used, sealed like the output: base64 of nonce ||
    /// ciphertext || tag over `exit_code (i32 BE) || fuel_used (u64 BE)`.
    pub status: String,
    /// Whether the output is released (false: withheld by the security context).
    pub released: bool,
    /// Output under the compartment's DEK: base64 of nonce || ciphertext || tag (empty
    /// when not released).
    pub output: String,
    /// The compartment's log text, sealed the same way (empty when not released).
    pub log: String,
}

/// How a compartment ended, as the client reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompartmentStatus {
    /// The entry point's return value.
    pub exit_code: i32,
    /// Fuel consumed.
    pub fuel_used: u64,
}

impl CompartmentStatus {
    fn encode(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.exit_code.to_be_bytes());
        out[4..].copy_from_slice(&self.fuel_used.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let exit: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        let fuel: [u8; 8] = bytes.get(4..12)?.try_into().ok()?;
        (bytes.len() == 12).then(|| Self {
            exit_code: i32::from_be_bytes(exit),
            fuel_used: u64::from_be_bytes(fuel),
        })
    }
}

/// A compartment's result, opened by the client.
#[derive(Debug)]
pub struct OpenedResult {
    /// Compartment name.
    pub name: String,
    /// How it ended.
    pub status: CompartmentStatus,
    /// Whether its output was released.
    pub released: bool,
}

/// What the client recovers of a released compartment.
pub struct ReleasedOutput {
    /// Compartment name.
    pub name: String,
    /// Its output.
    pub output: SecretBytes,
    /// Its log text.
    pub log: SecretBytes,
}

impl core::fmt::Debug for ReleasedOutput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReleasedOutput")
            .field("name", &self.name)
            .field("output", &format_args!("<{} bytes>", self.output.len()))
            .field("log", &format_args!("<{} bytes>", self.log.len()))
            .finish()
    }
}

/// The authenticated body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultBody {
    /// The task.
    pub task_id: String,
    /// When the enclave produced it, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// Per compartment.
    pub results: Vec<CompartmentOutput>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    body: &'a RawValue,
    mac: String,
}

/// Which part of a compartment's result a ciphertext is: bound into its associated data
/// so that an output cannot be passed off as a log, one compartment's as another's, or
/// one result's as another's (the timestamp).
#[derive(Clone, Copy)]
pub enum Part {
    /// Exit code and fuel used.
    Status,
    /// The released output.
    Output,
    /// The released log.
    Log,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Status => "status",
            Part::Output => "output",
            Part::Log => "log",
        }
    }
}

/// Where a sealed part belongs: its task, compartment and the result's timestamp.
#[derive(Debug, Clone, Copy)]
pub struct PartOf<'a> {
    /// The task id, hex.
    pub task_id: &'a str,
    /// The compartment.
    pub compartment: &'a str,
    /// The result's timestamp.
    pub timestamp: OffsetDateTime,
}

fn aad(part: Part, of: &PartOf<'_>) -> Vec<u8> {
    format!(
        "veritee task {} v2\0{}\0{}\0{}",
        part.name(),
        of.task_id,
        of.compartment,
        of.timestamp.unix_timestamp_nanos()
    )
    .into_bytes()
}

/// Enclave side: encrypts one part of a compartment's result under its DEK.
pub fn seal_part(
    part: Part,
    dek: &Key256,
    of: &PartOf<'_>,
    bytes: &[u8],
) -> Result<String, TaskError> {
    let key = AeadKey::from_array(dek.clone());
    Ok(B64.encode(key.seal_with_random_nonce(&aad(part, of), bytes)?))
}

/// Enclave side: encrypts a compartment's status under its DEK.
pub fn seal_status(
    dek: &Key256,
    of: &PartOf<'_>,
    status: CompartmentStatus,
) -> Result<String, TaskError> {
    seal_part(Part::Status, dek, of, &status.encode())
}

fn open_part(
    part: Part,
    key: &Key256,
    of: &PartOf<'_>,
    sealed: &str,
) -> Result<SecretBytes, TaskError> {
    let what = part.name();
    let sealed = B64
        .decode(sealed)
        .map_err(|_| TaskError::malformed("result", format!("{what} is not base64")))?;
    AeadKey::from_array(key.clone())
        .open_with_nonce_prefix(&aad(part, of), &sealed)
        .map_err(|_| {
            TaskError::ResultRefused(format!(
                "the {what} of {} does not decrypt under its data key",
                of.compartment
            ))
        })
}

/// Enclave side: the envelope bytes.
pub fn seal_envelope(body: &ResultBody, mac_key: &Key256) -> Result<Vec<u8>, TaskError> {
    let body_json = serde_json::to_string(body).map_err(|e| TaskError::malformed("result", e))?;
    let mut signed = MAC_LABEL.to_vec();
    signed.extend_from_slice(body_json.as_bytes());
    let mac = veritee_crypto::mac::hmac_sha256(mac_key.expose(), &signed);
    let raw = RawValue::from_string(body_json).map_err(|e| TaskError::malformed("result", e))?;
    serde_json::to_vec(&Envelope {
        body: &raw,
        mac: hex::encode(mac),
    })
    .map_err(|e| TaskError::malformed("result", e))
}

/// What a client recovers from a result envelope.
#[derive(Debug)]
pub struct OpenedEnvelope {
    /// The authenticated body.
    pub body: ResultBody,
    /// Every compartment's status.
    pub results: Vec<OpenedResult>,
    /// Released outputs and logs, decrypted.
    pub outputs: Vec<ReleasedOutput>,
}

/// Client side: checks the MAC, the task id and the time window, then decrypts every
/// compartment's status and each released output with its DEK. `dek` maps compartment
/// names to keys.
pub fn open_envelope(
    bytes: &[u8],
    mac_key: &Key256,
    task_id: &[u8; TASK_ID_LEN],
    window: time::Duration,
    now: OffsetDateTime,
    dek: impl Fn(&str) -> Option<Key256>,
) -> Result<OpenedEnvelope, TaskError> {
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(TaskError::ResultRefused("the result is too large".into()));
    }
    let env: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| TaskError::malformed("result", e))?;
    let mut signed = MAC_LABEL.to_vec();
    signed.extend_from_slice(env.body.get().as_bytes());
    let mac =
        hex::decode(&env.mac).map_err(|_| TaskError::malformed("result", "mac is not hex"))?;
    if !veritee_crypto::mac::verify_hmac_sha256(mac_key.expose(), &signed, &mac) {
        return Err(TaskError::ResultRefused(
            "the result's authentication failed: altered, or not from the attested enclave".into(),
        ));
    }
    let body: ResultBody =
        serde_json::from_str(env.body.get()).map_err(|e| TaskError::malformed("result", e))?;
    if body.task_id != hex::encode(task_id) {
        return Err(TaskError::ResultRefused(format!(
            "the result is for task {}, not this task (replayed from an earlier task)",
            body.task_id
        )));
    }
    if body.timestamp < now - window {
        return Err(TaskError::ResultRefused(format!(
            "the result is dated {}, older than the {}-second window",
            body.timestamp,
            window.whole_seconds()
        )));
    }
    if body.timestamp > now + MAX_SKEW {
        return Err(TaskError::ResultRefused(format!(
            "the result is dated {}, in the future",
            body.timestamp
        )));
    }
    let mut outputs = Vec::new();
    let mut results = Vec::with_capacity(body.results.len());
    for r in &body.results {
        let key = dek(&r.name).ok_or_else(|| {
            TaskError::ResultRefused(format!("no data key for compartment {}", r.name))
        })?;
        let of = PartOf {
            task_id: &body.task_id,
            compartment: &r.name,
            timestamp: body.timestamp,
        };
        let status =
            CompartmentStatus::decode(open_part(Part::Status, &key, &of, &r.status)?.expose())
                .ok_or_else(|| TaskError::malformed("result", "a status is not 12 bytes"))?;
        results.push(OpenedResult {
            name: r.name.clone(),
            status,
            released: r.released,
        });
        if r.released {
            outputs.push(ReleasedOutput {
                name: r.name.clone(),
                output: open_part(Part::Output, &key, &of, &r.output)?,
                log: open_part(Part::Log, &key, &of, &r.log)?,
            });
        }
    }
    Ok(OpenedEnvelope {
        body,
        results,
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_crypto::Confidential;

    fn setup() -> (Key256, Key256, [u8; 16], Vec<u8>) {
        let mac = Confidential::new([1u8; 32]);
        let dek = Confidential::new([2u8; 32]);
        let id = [3u8; 16];
        let task = hex::encode(id);
        let timestamp = OffsetDateTime::now_utc();
        let of = PartOf {
            task_id: &task,
            compartment: "c",
            timestamp,
        };
        let status = CompartmentStatus {
            exit_code: 0,
            fuel_used: 10,
        };
        let body = ResultBody {
            task_id: task.clone(),
            timestamp,
            results: vec![CompartmentOutput {
                name: "c".into(),
                status: seal_status(&dek, &of, status).unwrap(),
                released: true,
                output: seal_part(Part::Output, &dek, &of, b"the answer").unwrap(),
                log: seal_part(Part::Log, &dek, &of, b"counted 2 words").unwrap(),
            }],
        };
        let env = seal_envelope(&body, &mac).unwrap();
        (mac, dek, id, env)
    }

    #[test]
    fn genuine_results_open() {
        let (mac, dek, id, env) = setup();
        let opened = open_envelope(
            &env,
            &mac,
            &id,
            time::Duration::minutes(10),
            OffsetDateTime::now_utc(),
            |_| Some(dek.clone()),
        )
        .unwrap();
        assert_eq!(opened.outputs[0].output.expose(), b"the answer");
        assert_eq!(opened.outputs[0].log.expose(), b"counted 2 words");
        assert_eq!(opened.results[0].status.fuel_used, 10);
        // Nothing in the clear says how the compartment ended.
        let text = String::from_utf8(env.clone()).unwrap();
        assert!(
            !text.contains("exit_code") && !text.contains("fuel"),
            "{text}"
        );
    }

    #[test]
    fn altered_replayed_and_stale_results_are_refused() {
        let (mac, dek, id, env) = setup();
        let now = OffsetDateTime::now_utc();
        let w = time::Duration::minutes(10);
        let mut altered = env.clone();
        let pos = altered.windows(8).position(|x| x == b"\"status\"").unwrap() + 12;
        altered[pos] ^= 1;
        assert!(matches!(
            open_envelope(&altered, &mac, &id, w, now, |_| Some(dek.clone())),
            Err(TaskError::ResultRefused(_) | TaskError::Malformed { .. })
        ));
        let err = open_envelope(&env, &mac, &[9u8; 16], w, now, |_| Some(dek.clone())).unwrap_err();
        assert!(err.to_string().contains("replayed"), "{err}");
        let err = open_envelope(&env, &mac, &id, w, now + time::Duration::hours(1), |_| {
            Some(dek.clone())
        })
        .unwrap_err();
        assert!(err.to_string().contains("older than"), "{err}");
        let err = open_envelope(&env, &Confidential::new([9u8; 32]), &id, w, now, |_| {
            Some(dek.clone())
        })
        .unwrap_err();
        assert!(err.to_string().contains("authentication failed"), "{err}");
        assert!(
            open_envelope(&env[..env.len() / 2], &mac, &id, w, now, |_| Some(
                dek.clone()
            ))
            .is_err()
        );
    }
}
