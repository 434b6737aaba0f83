//! Results: each released output encrypted under its compartment's DEK, the whole
//! wrapped with the task id and a timestamp and authenticated with a key exported from
//! the HPKE session with the SKEK.

use crate::keys::Key256;
use crate::{TASK_ID_LEN, TaskError};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use veritee_crypto::SecretBytes;
use veritee_crypto::aead::AeadKey;

const MAC_LABEL: &[u8] = b"veritee task result v1";
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
    /// The entry point's return value.
    pub exit_code: i32,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Whether the output is released (false: withheld by the security context).
    pub released: bool,
    /// Output under the compartment's DEK: base64 of nonce || ciphertext || tag (empty
    /// when not released).
    pub output: String,
    /// The compartment's log text, sealed the same way (empty when not released).
    pub log: String,
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
/// so that an output cannot be passed off as a log, or one compartment's as another's.
#[derive(Clone, Copy)]
enum Part {
    Output,
    Log,
}

fn aad(part: Part, task_id: &str, compartment: &str) -> Vec<u8> {
    let part = match part {
        Part::Output => "output",
        Part::Log => "log",
    };
    format!("veritee task {part} v1\0{task_id}\0{compartment}").into_bytes()
}

fn seal_part(
    part: Part,
    dek: &Key256,
    task_id: &str,
    compartment: &str,
    bytes: &[u8],
) -> Result<String, TaskError> {
    let key = AeadKey::from_array(dek.clone());
    Ok(B64.encode(key.seal_with_random_nonce(&aad(part, task_id, compartment), bytes)?))
}

/// Enclave side: encrypts an output under its DEK.
pub fn seal_output(
    dek: &Key256,
    task_id: &str,
    compartment: &str,
    output: &[u8],
) -> Result<String, TaskError> {
    seal_part(Part::Output, dek, task_id, compartment, output)
}

/// Enclave side: encrypts a log under its DEK.
pub fn seal_log(
    dek: &Key256,
    task_id: &str,
    compartment: &str,
    log: &[u8],
) -> Result<String, TaskError> {
    seal_part(Part::Log, dek, task_id, compartment, log)
}

fn open_part(
    part: Part,
    key: &Key256,
    task_id: &str,
    compartment: &str,
    sealed: &str,
) -> Result<SecretBytes, TaskError> {
    let what = match part {
        Part::Output => "output",
        Part::Log => "log",
    };
    let sealed = B64
        .decode(sealed)
        .map_err(|_| TaskError::malformed("result", format!("{what} is not base64")))?;
    AeadKey::from_array(key.clone())
        .open_with_nonce_prefix(&aad(part, task_id, compartment), &sealed)
        .map_err(|_| {
            TaskError::ResultRefused(format!("the {what} of {compartment} does not decrypt"))
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

/// Client side: checks the MAC, the task id and the time window, then decrypts each
/// released output with its DEK. `deks` maps compartment names to keys.
pub fn open_envelope(
    bytes: &[u8],
    mac_key: &Key256,
    task_id: &[u8; TASK_ID_LEN],
    window: time::Duration,
    now: OffsetDateTime,
    dek: impl Fn(&str) -> Option<Key256>,
) -> Result<(ResultBody, Vec<ReleasedOutput>), TaskError> {
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
    for r in body.results.iter().filter(|r| r.released) {
        let key = dek(&r.name).ok_or_else(|| {
            TaskError::ResultRefused(format!("no data key for compartment {}", r.name))
        })?;
        outputs.push(ReleasedOutput {
            name: r.name.clone(),
            output: open_part(Part::Output, &key, &body.task_id, &r.name, &r.output)?,
            log: open_part(Part::Log, &key, &body.task_id, &r.name, &r.log)?,
        });
    }
    Ok((body, outputs))
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
        let body = ResultBody {
            task_id: task.clone(),
            timestamp: OffsetDateTime::now_utc(),
            results: vec![CompartmentOutput {
                name: "c".into(),
                exit_code: 0,
                fuel_used: 10,
                released: true,
                output: seal_output(&dek, &task, "c", b"the answer").unwrap(),
                log: seal_log(&dek, &task, "c", b"counted 2 words").unwrap(),
            }],
        };
        let env = seal_envelope(&body, &mac).unwrap();
        (mac, dek, id, env)
    }

    #[test]
    fn genuine_results_open() {
        let (mac, dek, id, env) = setup();
        let (_, outs) = open_envelope(
            &env,
            &mac,
            &id,
            time::Duration::minutes(10),
            OffsetDateTime::now_utc(),
            |_| Some(dek.clone()),
        )
        .unwrap();
        assert_eq!(outs[0].output.expose(), b"the answer");
        assert_eq!(outs[0].log.expose(), b"counted 2 words");
    }

    #[test]
    fn altered_replayed_and_stale_results_are_refused() {
        let (mac, dek, id, env) = setup();
        let now = OffsetDateTime::now_utc();
        let w = time::Duration::minutes(10);
        let mut altered = env.clone();
        let pos = altered.windows(5).position(|x| x == b"\"exit").unwrap() + 12;
        altered[pos] = b'7';
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
