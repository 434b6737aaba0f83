//! Applications (flow 5) inside a session: run, call, list, stop and fork.
//!
//! A module, a call's input, its output and its log are the tenant's secrets: they
//! travel only inside the session, in [`SecretBytes`], and these types print none of
//! them. The only encoding is [`encode_request`] / [`encode_answer`], nested in the
//! session's request and response.

use serde::{Deserialize, Serialize};
use veritee_crypto::SecretBytes;
use zeroize::Zeroize;

use crate::ChannelError;
use crate::secret_cbor::to_cbor;

/// Largest module an application may be (a session message carries it whole).
pub const MAX_APP_MODULE: usize = 8 * 1024 * 1024;

/// What a tenant asks of its applications.
pub enum AppRequest {
    /// Starts application `name` from `module` (WebAssembly binary or text).
    Run {
        /// The application's name, unique per tenant on a node.
        name: String,
        /// The module.
        module: SecretBytes,
        /// Largest linear memory, in MiB (the node's default when `None`).
        memory_mib: Option<u32>,
        /// The peer node the application may fork itself to (host function `fork`);
        /// without one it may not.
        fork_peer: Option<String>,
        /// Whether its state is kept in the node's sealed store after every call, so
        /// that it survives an enclave restart.
        durable: bool,
        /// Stored keys it uses through `key_op`, by their position here, never seeing
        /// their material: `PARTITION/KEY_ID`, `OWNER_TENANT_ID/PARTITION/KEY_ID` or
        /// `deployed/NAME`, as a task's compartment names them (at most 8).
        keys: Vec<String>,
    },
    /// Calls export `export` of application `name` with `input`.
    Call {
        /// The application.
        name: String,
        /// The export, of type `() -> i32`.
        export: String,
        /// Input 0 of the call.
        input: SecretBytes,
    },
    /// The tenant's applications on this node.
    List,
    /// Stops application `name` and forgets its state.
    Stop {
        /// The application.
        name: String,
    },
    /// Forks application `name` into a child enclave on peer node `peer`, where it
    /// runs on as `child`.
    Fork {
        /// The application.
        name: String,
        /// The peer node, as the host knows it.
        peer: String,
        /// The child application's name at the peer.
        child: String,
    },
}

impl core::fmt::Debug for AppRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Run { name, module, .. } => {
                write!(f, "Run({name}, module of {} bytes)", module.len())
            }
            Self::Call {
                name,
                export,
                input,
            } => {
                write!(f, "Call({name}.{export}, {} bytes)", input.len())
            }
            Self::List => f.write_str("List"),
            Self::Stop { name } => write!(f, "Stop({name})"),
            Self::Fork { name, peer, child } => write!(f, "Fork({name} -> {peer}/{child})"),
        }
    }
}

/// One application, as [`AppRequest::List`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    /// Its name.
    pub name: String,
    /// SHA-256 of its module, hex.
    pub module_sha256: String,
    /// Calls served.
    pub calls: u64,
    /// Its linear memory, bytes.
    pub memory_bytes: u64,
    /// The parent's snapshot digest (hex) if it was forked into this node.
    pub forked_from: Option<String>,
    /// Forks made of it from this node.
    pub forks: u64,
    /// Whether its state survives an enclave restart.
    #[serde(default)]
    pub durable: bool,
    /// The stored keys it names, in `key_op` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// The enclave's answer.
pub enum AppAnswer {
    /// The application runs.
    Started {
        /// SHA-256 of its module, hex.
        module_sha256: String,
    },
    /// A call returned.
    Called {
        /// The export's return value.
        exit_code: i32,
        /// What it wrote with `output_write`.
        output: SecretBytes,
        /// What it wrote with `log`.
        log: SecretBytes,
        /// What came of the fork the application asked for during the call, if it did.
        fork: Option<String>,
    },
    /// The tenant's applications.
    Apps(Vec<AppInfo>),
    /// The application was stopped.
    Stopped,
    /// The child runs at the peer.
    Forked {
        /// The snapshot's digest, hex: the child's `forked_from`.
        digest: String,
        /// Pages sent (the ones not all zero).
        pages: u64,
        /// Pages encrypted again for this fork (changed since the last snapshot).
        resealed: u64,
    },
}

impl core::fmt::Debug for AppAnswer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Started { module_sha256 } => write!(f, "Started({module_sha256})"),
            Self::Called {
                exit_code,
                output,
                log,
                fork,
            } => write!(
                f,
                "Called({exit_code}, {} output bytes, {} log bytes, fork: {fork:?})",
                output.len(),
                log.len()
            ),
            Self::Apps(apps) => write!(f, "Apps({apps:?})"),
            Self::Stopped => f.write_str("Stopped"),
            Self::Forked { digest, pages, .. } => write!(f, "Forked({digest}, {pages} pages)"),
        }
    }
}

#[derive(Serialize, Deserialize)]
enum WireRequest {
    Run {
        name: String,
        #[serde(with = "serde_bytes")]
        module: Vec<u8>,
        memory_mib: Option<u32>,
        fork_peer: Option<String>,
        #[serde(default)]
        durable: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keys: Vec<String>,
    },
    Call {
        name: String,
        export: String,
        #[serde(with = "serde_bytes")]
        input: Vec<u8>,
    },
    List,
    Stop {
        name: String,
    },
    Fork {
        name: String,
        peer: String,
        child: String,
    },
}

#[derive(Serialize, Deserialize)]
enum WireAnswer {
    Started {
        module_sha256: String,
    },
    Called {
        exit_code: i32,
        #[serde(with = "serde_bytes")]
        output: Vec<u8>,
        #[serde(with = "serde_bytes")]
        log: Vec<u8>,
        fork: Option<String>,
    },
    Apps(Vec<AppInfo>),
    Stopped,
    Forked {
        digest: String,
        pages: u64,
        resealed: u64,
    },
}

fn from_cbor<T: serde::de::DeserializeOwned>(
    bytes: &SecretBytes,
    what: &str,
) -> Result<T, ChannelError> {
    veritee_proto::cbor::from_slice(bytes.expose())
        .map_err(|e| ChannelError::Malformed(format!("{what}: {}", e.kind())))
}

/// Encodes a request for the session.
pub fn encode_request(request: &AppRequest) -> Result<SecretBytes, ChannelError> {
    let mut wire = match request {
        AppRequest::Run {
            name,
            module,
            memory_mib,
            fork_peer,
            durable,
            keys,
        } => WireRequest::Run {
            name: name.clone(),
            module: module.expose().clone(),
            memory_mib: *memory_mib,
            fork_peer: fork_peer.clone(),
            durable: *durable,
            keys: keys.clone(),
        },
        AppRequest::Call {
            name,
            export,
            input,
        } => WireRequest::Call {
            name: name.clone(),
            export: export.clone(),
            input: input.expose().clone(),
        },
        AppRequest::List => WireRequest::List,
        AppRequest::Stop { name } => WireRequest::Stop { name: name.clone() },
        AppRequest::Fork { name, peer, child } => WireRequest::Fork {
            name: name.clone(),
            peer: peer.clone(),
            child: child.clone(),
        },
    };
    let out = to_cbor(&wire);
    if let WireRequest::Run { module: bytes, .. } | WireRequest::Call { input: bytes, .. } =
        &mut wire
    {
        bytes.zeroize();
    }
    out
}

/// Decodes a request from the session.
pub fn decode_request(bytes: &SecretBytes) -> Result<AppRequest, ChannelError> {
    Ok(
        match from_cbor::<WireRequest>(bytes, "application request")? {
            WireRequest::Run {
                name,
                module,
                memory_mib,
                fork_peer,
                durable,
                keys,
            } => {
                if module.len() > MAX_APP_MODULE {
                    return Err(ChannelError::Malformed(format!(
                        "a module of {} bytes is larger than the {MAX_APP_MODULE} allowed",
                        module.len()
                    )));
                }
                AppRequest::Run {
                    name,
                    module: SecretBytes::new(module),
                    memory_mib,
                    fork_peer,
                    durable,
                    keys,
                }
            }
            WireRequest::Call {
                name,
                export,
                input,
            } => AppRequest::Call {
                name,
                export,
                input: SecretBytes::new(input),
            },
            WireRequest::List => AppRequest::List,
            WireRequest::Stop { name } => AppRequest::Stop { name },
            WireRequest::Fork { name, peer, child } => AppRequest::Fork { name, peer, child },
        },
    )
}

/// Encodes an answer for the session.
pub fn encode_answer(answer: &AppAnswer) -> Result<SecretBytes, ChannelError> {
    let mut wire = match answer {
        AppAnswer::Started { module_sha256 } => WireAnswer::Started {
            module_sha256: module_sha256.clone(),
        },
        AppAnswer::Called {
            exit_code,
            output,
            log,
            fork,
        } => WireAnswer::Called {
            exit_code: *exit_code,
            output: output.expose().clone(),
            log: log.expose().clone(),
            fork: fork.clone(),
        },
        AppAnswer::Apps(apps) => WireAnswer::Apps(apps.clone()),
        AppAnswer::Stopped => WireAnswer::Stopped,
        AppAnswer::Forked {
            digest,
            pages,
            resealed,
        } => WireAnswer::Forked {
            digest: digest.clone(),
            pages: *pages,
            resealed: *resealed,
        },
    };
    let out = to_cbor(&wire);
    if let WireAnswer::Called { output, log, .. } = &mut wire {
        output.zeroize();
        log.zeroize();
    }
    out
}

/// Decodes an answer from the session.
pub fn decode_answer(bytes: &SecretBytes) -> Result<AppAnswer, ChannelError> {
    Ok(
        match from_cbor::<WireAnswer>(bytes, "application answer")? {
            WireAnswer::Started { module_sha256 } => AppAnswer::Started { module_sha256 },
            WireAnswer::Called {
                exit_code,
                output,
                log,
                fork,
            } => AppAnswer::Called {
                exit_code,
                output: SecretBytes::new(output),
                log: SecretBytes::new(log),
                fork,
            },
            WireAnswer::Apps(apps) => AppAnswer::Apps(apps),
            WireAnswer::Stopped => AppAnswer::Stopped,
            WireAnswer::Forked {
                digest,
                pages,
                resealed,
            } => AppAnswer::Forked {
                digest,
                pages,
                resealed,
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_and_print_no_secret() {
        let run = AppRequest::Run {
            name: "kv".into(),
            module: SecretBytes::copy_from(b"canary-module"),
            memory_mib: Some(64),
            fork_peer: None,
            durable: false,
            keys: vec!["p/k".into()],
        };
        assert!(!format!("{run:?}").contains("canary"));
        match decode_request(&encode_request(&run).unwrap()).unwrap() {
            AppRequest::Run {
                name,
                module,
                memory_mib,
                keys,
                ..
            } => {
                assert_eq!((name.as_str(), memory_mib), ("kv", Some(64)));
                assert_eq!(module.expose(), b"canary-module");
                assert_eq!(keys, ["p/k"]);
            }
            other => panic!("{other:?}"),
        }
        let called = AppAnswer::Called {
            exit_code: 3,
            output: SecretBytes::copy_from(b"canary-output"),
            log: SecretBytes::copy_from(b"canary-log"),
            fork: None,
        };
        assert!(!format!("{called:?}").contains("canary"));
        assert!(matches!(
            decode_answer(&encode_answer(&called).unwrap()).unwrap(),
            AppAnswer::Called { exit_code: 3, .. }
        ));
    }

    #[test]
    fn truncated_trailing_and_oversized_requests_are_refused() {
        let call = encode_request(&AppRequest::Call {
            name: "kv".into(),
            export: "get".into(),
            input: SecretBytes::copy_from(b"key"),
        })
        .unwrap();
        let bytes = call.expose();
        for cut in 0..bytes.len() {
            assert!(decode_request(&SecretBytes::copy_from(&bytes[..cut])).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_request(&SecretBytes::new(long)).is_err());
        let big = encode_request(&AppRequest::Run {
            name: "kv".into(),
            module: SecretBytes::new(vec![0; MAX_APP_MODULE + 1]),
            memory_mib: None,
            fork_peer: None,
            durable: false,
            keys: Vec::new(),
        })
        .unwrap();
        let err = decode_request(&big).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("larger than")));
    }
}
