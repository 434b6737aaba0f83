//! What a client asks of the enclave inside a session, and the answers.
//!
//! These types hold secrets, so they deliberately implement neither `Serialize` nor a
//! revealing `Debug`: the only encoding is [`Request::encode`] / [`Response::encode`],
//! which produce [`SecretBytes`] that the session then encrypts.

use crate::ChannelError;
use crate::secret_cbor::to_cbor;
use serde::{Deserialize, Serialize};
use veritee_crypto::SecretBytes;
use zeroize::Zeroize;

/// Largest encoded request or response.
pub const MAX_OP_LEN: usize = 64 * 1024 * 1024;
pub use veritee_proto::names::{MAX_NAME_LEN, check_name};

/// A secret value: zeroized on drop, never printed.
pub type SecretValue = SecretBytes;

/// A client request.
pub enum Request {
    /// Liveness inside the session.
    Ping,
    /// Store (or replace) a named secret.
    PutSecret {
        /// Object name.
        name: String,
        /// The secret.
        value: SecretValue,
    },
    /// Release a secret to its owner over the session.
    GetSecret {
        /// Object name.
        name: String,
    },
    /// Use a secret as an HMAC-SHA-256 key without releasing it.
    HmacSha256 {
        /// Object name.
        name: String,
        /// Data to authenticate.
        data: Vec<u8>,
    },
    /// The tenant's object names.
    ListSecrets,
    /// Delete a secret.
    DeleteSecret {
        /// Object name.
        name: String,
    },
    /// The tenant's deployed data keys.
    ListKeys,
    /// Make sure this node holds a deployed key (replicating it from a peer if needed);
    /// answers with the key's check value.
    EnsureKey {
        /// Key name.
        name: String,
    },
    /// A ticket to resume this session by later, without a new attestation.
    Ticket,
    /// Cryptographic operations by key id (flow 3), answered one outcome each.
    Crypto(Vec<crate::crypto::CryptoOp>),
    /// Applications (flow 5).
    App(crate::apps::AppRequest),
    /// Serve the request, then issue a ticket for this session, in one round trip: what
    /// a one-shot command that keeps its session for the next one asks. The request
    /// inside is any but another `WithTicket`.
    WithTicket(Box<Request>),
}

impl core::fmt::Debug for Request {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ping => f.write_str("Ping"),
            Self::PutSecret { name, .. } => write!(f, "PutSecret({name}, <redacted>)"),
            Self::GetSecret { name } => write!(f, "GetSecret({name})"),
            Self::HmacSha256 { name, data } => {
                write!(f, "HmacSha256({name}, {} bytes)", data.len())
            }
            Self::ListSecrets => f.write_str("ListSecrets"),
            Self::DeleteSecret { name } => write!(f, "DeleteSecret({name})"),
            Self::ListKeys => f.write_str("ListKeys"),
            Self::EnsureKey { name } => write!(f, "EnsureKey({name})"),
            Self::Ticket => f.write_str("Ticket"),
            Self::Crypto(ops) => write!(f, "Crypto({ops:?})"),
            Self::App(request) => write!(f, "App({request:?})"),
            Self::WithTicket(request) => write!(f, "WithTicket({request:?})"),
        }
    }
}

/// The enclave's answer.
pub enum Response {
    /// Answer to Ping.
    Pong,
    /// A secret was stored.
    Stored,
    /// A released secret.
    Secret(SecretValue),
    /// An HMAC tag.
    Mac(Vec<u8>),
    /// Object names.
    Names(Vec<String>),
    /// Whether something was deleted.
    Deleted(bool),
    /// A key is present on this node; its check value (hex SHA-256).
    KeyReady(String),
    /// A resumption ticket (opaque, sealed by the enclave) and its expiry, Unix seconds.
    Ticket {
        /// The ticket.
        ticket: Vec<u8>,
        /// When the enclave stops accepting it.
        expires_at: i64,
    },
    /// The outcomes of a [`Request::Crypto`] batch, in its order.
    Crypto(Vec<crate::crypto::CryptoOutcome>),
    /// The answer to a [`Request::App`].
    App(crate::apps::AppAnswer),
    /// The answer to a [`Request::WithTicket`]: the request's own answer, and the
    /// ticket ([`Response::Ticket`]) or why none was issued ([`Response::Error`]).
    WithTicket {
        /// The answer to the request.
        response: Box<Response>,
        /// A [`Response::Ticket`] or a [`Response::Error`].
        ticket: Box<Response>,
    },
    /// The request failed; the message names why (never a secret).
    Error {
        /// Stable code: bad_request, not_found, forbidden, internal.
        code: String,
        /// Explanation.
        message: String,
    },
}

impl core::fmt::Debug for Response {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Pong => f.write_str("Pong"),
            Self::Stored => f.write_str("Stored"),
            Self::Secret(_) => f.write_str("Secret(<redacted>)"),
            Self::Mac(t) => write!(f, "Mac({} bytes)", t.len()),
            Self::Names(n) => write!(f, "Names({n:?})"),
            Self::Deleted(d) => write!(f, "Deleted({d})"),
            Self::KeyReady(d) => write!(f, "KeyReady({d})"),
            Self::Ticket { expires_at, .. } => write!(f, "Ticket(expires at {expires_at})"),
            Self::Crypto(outcomes) => write!(f, "Crypto({outcomes:?})"),
            Self::App(answer) => write!(f, "App({answer:?})"),
            Self::WithTicket { response, ticket } => {
                write!(f, "WithTicket({response:?}, {ticket:?})")
            }
            Self::Error { code, message } => write!(f, "Error({code}: {message})"),
        }
    }
}

impl Response {
    /// An error response.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The CBOR shapes, private so nothing outside can serialize a secret by accident.
#[derive(Serialize, Deserialize)]
enum WireRequest {
    Ping,
    PutSecret {
        name: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    GetSecret {
        name: String,
    },
    HmacSha256 {
        name: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    ListSecrets,
    DeleteSecret {
        name: String,
    },
    ListKeys,
    EnsureKey {
        name: String,
    },
    Ticket,
    Crypto(#[serde(with = "serde_bytes")] Vec<u8>),
    App(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The request inside, encoded: nested as bytes, so the shape is not recursive.
    WithTicket(#[serde(with = "serde_bytes")] Vec<u8>),
}

#[derive(Serialize, Deserialize)]
enum WireResponse {
    Pong,
    Stored,
    Secret(#[serde(with = "serde_bytes")] Vec<u8>),
    Mac(#[serde(with = "serde_bytes")] Vec<u8>),
    Names(Vec<String>),
    Deleted(bool),
    KeyReady(String),
    Error {
        code: String,
        message: String,
    },
    Ticket {
        #[serde(with = "serde_bytes")]
        ticket: Vec<u8>,
        expires_at: i64,
    },
    Crypto(#[serde(with = "serde_bytes")] Vec<u8>),
    App(#[serde(with = "serde_bytes")] Vec<u8>),
    WithTicket {
        #[serde(with = "serde_bytes")]
        response: Vec<u8>,
        #[serde(with = "serde_bytes")]
        ticket: Vec<u8>,
    },
}

fn from_cbor<T: serde::de::DeserializeOwned>(bytes: &SecretBytes) -> Result<T, ChannelError> {
    if bytes.len() > MAX_OP_LEN {
        return Err(ChannelError::Malformed(format!(
            "operation of {} bytes is too large",
            bytes.len()
        )));
    }
    veritee_proto::cbor::from_slice(bytes.expose())
        .map_err(|e| ChannelError::Malformed(format!("operation: {}", e.kind())))
}

impl Request {
    /// Encodes for sealing into a session.
    pub fn encode(&self) -> Result<SecretBytes, ChannelError> {
        let mut wire = match self {
            Self::Ping => WireRequest::Ping,
            Self::PutSecret { name, value } => WireRequest::PutSecret {
                name: name.clone(),
                value: value.expose().clone(),
            },
            Self::GetSecret { name } => WireRequest::GetSecret { name: name.clone() },
            Self::HmacSha256 { name, data } => WireRequest::HmacSha256 {
                name: name.clone(),
                data: data.clone(),
            },
            Self::ListSecrets => WireRequest::ListSecrets,
            Self::DeleteSecret { name } => WireRequest::DeleteSecret { name: name.clone() },
            Self::ListKeys => WireRequest::ListKeys,
            Self::EnsureKey { name } => WireRequest::EnsureKey { name: name.clone() },
            Self::Ticket => WireRequest::Ticket,
            Self::Crypto(ops) => {
                WireRequest::Crypto(crate::crypto::encode_batch(ops)?.expose().clone())
            }
            Self::App(request) => {
                WireRequest::App(crate::apps::encode_request(request)?.expose().clone())
            }
            Self::WithTicket(request) => return request.encode_with_ticket(),
        };
        let out = to_cbor(&wire);
        if let WireRequest::PutSecret { value, .. }
        | WireRequest::Crypto(value)
        | WireRequest::App(value) = &mut wire
        {
            value.zeroize();
        }
        out
    }

    /// What [`Request::encode`] gives for `Request::WithTicket` of this request,
    /// without taking the request.
    pub fn encode_with_ticket(&self) -> Result<SecretBytes, ChannelError> {
        if matches!(self, Self::WithTicket(_)) {
            return Err(ChannelError::Malformed(
                "a request with a ticket cannot itself ask for one".into(),
            ));
        }
        let mut wire = WireRequest::WithTicket(self.encode()?.expose().clone());
        let out = to_cbor(&wire);
        if let WireRequest::WithTicket(inner) = &mut wire {
            inner.zeroize();
        }
        out
    }

    /// Decodes an opened session message.
    pub fn decode(bytes: &SecretBytes) -> Result<Self, ChannelError> {
        Self::from_wire(from_cbor::<WireRequest>(bytes)?)
    }

    fn from_wire(wire: WireRequest) -> Result<Self, ChannelError> {
        Ok(match wire {
            WireRequest::Ping => Self::Ping,
            WireRequest::PutSecret { name, value } => Self::PutSecret {
                name,
                value: SecretBytes::new(value),
            },
            WireRequest::GetSecret { name } => Self::GetSecret { name },
            WireRequest::HmacSha256 { name, data } => Self::HmacSha256 { name, data },
            WireRequest::ListSecrets => Self::ListSecrets,
            WireRequest::DeleteSecret { name } => Self::DeleteSecret { name },
            WireRequest::ListKeys => Self::ListKeys,
            WireRequest::EnsureKey { name } => Self::EnsureKey { name },
            WireRequest::Ticket => Self::Ticket,
            WireRequest::Crypto(batch) => {
                Self::Crypto(crate::crypto::decode_batch(&SecretBytes::new(batch))?)
            }
            WireRequest::App(request) => {
                Self::App(crate::apps::decode_request(&SecretBytes::new(request))?)
            }
            // The inner shape is checked before it is decoded, so that nesting is
            // refused at the first level, not recursed into.
            WireRequest::WithTicket(request) => {
                match from_cbor::<WireRequest>(&SecretBytes::new(request))? {
                    WireRequest::WithTicket(_) => {
                        return Err(ChannelError::Malformed(
                            "a request with a ticket cannot itself ask for one".into(),
                        ));
                    }
                    inner => Self::WithTicket(Box::new(Self::from_wire(inner)?)),
                }
            }
        })
    }
}

impl Response {
    /// Encodes for sealing into a session.
    pub fn encode(&self) -> Result<SecretBytes, ChannelError> {
        let mut wire = match self {
            Self::Pong => WireResponse::Pong,
            Self::Stored => WireResponse::Stored,
            Self::Secret(v) => WireResponse::Secret(v.expose().clone()),
            Self::Mac(t) => WireResponse::Mac(t.clone()),
            Self::Names(n) => WireResponse::Names(n.clone()),
            Self::Deleted(d) => WireResponse::Deleted(*d),
            Self::KeyReady(d) => WireResponse::KeyReady(d.clone()),
            Self::Ticket { ticket, expires_at } => WireResponse::Ticket {
                ticket: ticket.clone(),
                expires_at: *expires_at,
            },
            Self::Error { code, message } => WireResponse::Error {
                code: code.clone(),
                message: message.clone(),
            },
            Self::Crypto(outcomes) => {
                WireResponse::Crypto(crate::crypto::encode_outcomes(outcomes)?.expose().clone())
            }
            Self::App(answer) => {
                WireResponse::App(crate::apps::encode_answer(answer)?.expose().clone())
            }
            Self::WithTicket { response, ticket } => {
                check_with_ticket(response, ticket)?;
                WireResponse::WithTicket {
                    response: response.encode()?.expose().clone(),
                    ticket: ticket.encode()?.expose().clone(),
                }
            }
        };
        let out = to_cbor(&wire);
        match &mut wire {
            WireResponse::Secret(v) | WireResponse::Crypto(v) | WireResponse::App(v) => {
                v.zeroize();
            }
            WireResponse::WithTicket { response, ticket } => {
                response.zeroize();
                ticket.zeroize();
            }
            _ => {}
        }
        out
    }

    /// Decodes an opened reply.
    pub fn decode(bytes: &SecretBytes) -> Result<Self, ChannelError> {
        Self::from_wire(from_cbor::<WireResponse>(bytes)?)
    }

    fn from_wire(wire: WireResponse) -> Result<Self, ChannelError> {
        Ok(match wire {
            WireResponse::Pong => Self::Pong,
            WireResponse::Stored => Self::Stored,
            WireResponse::Secret(v) => Self::Secret(SecretBytes::new(v)),
            WireResponse::Mac(t) => Self::Mac(t),
            WireResponse::Names(n) => Self::Names(n),
            WireResponse::Deleted(d) => Self::Deleted(d),
            WireResponse::KeyReady(d) => Self::KeyReady(d),
            WireResponse::Ticket { ticket, expires_at } => Self::Ticket { ticket, expires_at },
            WireResponse::Error { code, message } => Self::Error { code, message },
            WireResponse::Crypto(outcomes) => {
                Self::Crypto(crate::crypto::decode_outcomes(&SecretBytes::new(outcomes))?)
            }
            WireResponse::App(answer) => {
                Self::App(crate::apps::decode_answer(&SecretBytes::new(answer))?)
            }
            WireResponse::WithTicket { response, ticket } => {
                // Both parts' shapes are checked before they are decoded: nesting is
                // refused at the first level, not recursed into.
                let part = |bytes: Vec<u8>| from_cbor::<WireResponse>(&SecretBytes::new(bytes));
                let (response, ticket) = (part(response)?, part(ticket)?);
                if matches!(response, WireResponse::WithTicket { .. })
                    || matches!(ticket, WireResponse::WithTicket { .. })
                {
                    return Err(ChannelError::Malformed(
                        "an answer with a ticket holds another answer with a ticket".into(),
                    ));
                }
                let (response, ticket) = (Self::from_wire(response)?, Self::from_wire(ticket)?);
                check_with_ticket(&response, &ticket)?;
                Self::WithTicket {
                    response: Box::new(response),
                    ticket: Box::new(ticket),
                }
            }
        })
    }
}

/// The two parts of a [`Response::WithTicket`]: an answer that does not itself carry
/// a ticket, and a ticket or the reason there is none.
fn check_with_ticket(response: &Response, ticket: &Response) -> Result<(), ChannelError> {
    if matches!(response, Response::WithTicket { .. }) {
        return Err(ChannelError::Malformed(
            "an answer with a ticket holds another answer with a ticket".into(),
        ));
    }
    if !matches!(ticket, Response::Ticket { .. } | Response::Error { .. }) {
        return Err(ChannelError::Malformed(format!(
            "an answer with a ticket holds {ticket:?} where the ticket goes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_redaction() {
        let r = Request::PutSecret {
            name: "db".into(),
            value: SecretBytes::copy_from(b"canary-5150"),
        };
        assert!(!format!("{r:?}").contains("canary"));
        let back = Request::decode(&r.encode().unwrap()).unwrap();
        match back {
            Request::PutSecret { name, value } => {
                assert_eq!(name, "db");
                assert_eq!(value.expose(), b"canary-5150");
            }
            other => panic!("{other:?}"),
        }
        let s = Response::Secret(SecretBytes::copy_from(b"canary-5150"));
        assert!(!format!("{s:?}").contains("canary"));
        assert!(matches!(
            Response::decode(&s.encode().unwrap()).unwrap(),
            Response::Secret(_)
        ));
        assert!(Request::decode(&SecretBytes::copy_from(b"\xff\x00garbage")).is_err());
    }

    fn malformed(result: Result<impl core::fmt::Debug, ChannelError>) -> String {
        match result {
            Err(ChannelError::Malformed(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    /// A request with a ticket carries its request whole (and as secret as before); one
    /// inside another is refused whichever side built it.
    #[test]
    fn a_request_with_a_ticket_round_trips_and_does_not_nest() {
        let request = Request::WithTicket(Box::new(Request::PutSecret {
            name: "db".into(),
            value: SecretBytes::copy_from(b"canary-5150"),
        }));
        assert!(!format!("{request:?}").contains("canary"));
        match Request::decode(&request.encode().unwrap()).unwrap() {
            Request::WithTicket(inner) => match *inner {
                Request::PutSecret { name, value } => {
                    assert_eq!(name, "db");
                    assert_eq!(value.expose(), b"canary-5150");
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }

        let nested = Request::WithTicket(Box::new(Request::WithTicket(Box::new(Request::Ping))));
        assert!(malformed(nested.encode()).contains("cannot itself ask"));
        // The same nesting built on the wire, as a peer could send it.
        let inner = to_cbor(&WireRequest::WithTicket(
            to_cbor(&WireRequest::Ping).unwrap().expose().clone(),
        ))
        .unwrap();
        let wire = to_cbor(&WireRequest::WithTicket(inner.expose().clone())).unwrap();
        assert!(malformed(Request::decode(&wire)).contains("cannot itself ask"));
        // Deep nesting is refused at the first level, without recursing (the stack).
        let mut deep = to_cbor(&WireRequest::Ping).unwrap().expose().clone();
        for _ in 0..3_000 {
            deep = to_cbor(&WireRequest::WithTicket(deep))
                .unwrap()
                .expose()
                .clone();
        }
        assert!(malformed(Request::decode(&SecretBytes::new(deep))).contains("cannot itself ask"));
        // Bytes inside that are no request at all.
        let junk = to_cbor(&WireRequest::WithTicket(b"\xff\x00".to_vec())).unwrap();
        assert!(Request::decode(&junk).is_err());
    }

    /// An answer with a ticket holds the request's answer and a ticket or an error;
    /// anything else where the ticket goes, or an answer with a ticket inside, is refused.
    #[test]
    fn an_answer_with_a_ticket_holds_an_answer_and_a_ticket_or_an_error() {
        let ticket = Response::Ticket {
            ticket: vec![7; 40],
            expires_at: 1_900_000_000,
        };
        let answer = Response::WithTicket {
            response: Box::new(Response::Secret(SecretBytes::copy_from(b"canary-5150"))),
            ticket: Box::new(ticket),
        };
        assert!(!format!("{answer:?}").contains("canary"));
        match Response::decode(&answer.encode().unwrap()).unwrap() {
            Response::WithTicket { response, ticket } => {
                assert!(
                    matches!(*response, Response::Secret(ref v) if v.expose() == b"canary-5150")
                );
                assert!(matches!(
                    *ticket,
                    Response::Ticket { ref ticket, expires_at: 1_900_000_000 } if ticket == &[7; 40]
                ));
            }
            other => panic!("{other:?}"),
        }
        let refused = Response::WithTicket {
            response: Box::new(Response::Pong),
            ticket: Box::new(Response::error("unavailable", "no ticket key")),
        };
        assert!(matches!(
            Response::decode(&refused.encode().unwrap()).unwrap(),
            Response::WithTicket { ticket, .. } if matches!(*ticket, Response::Error { .. })
        ));

        let encoded = |r: &WireResponse| to_cbor(r).unwrap().expose().clone();
        let pong = encoded(&WireResponse::Pong);
        // A Pong where the ticket goes.
        let wrong_part = to_cbor(&WireResponse::WithTicket {
            response: pong.clone(),
            ticket: pong.clone(),
        })
        .unwrap();
        assert!(malformed(Response::decode(&wrong_part)).contains("where the ticket goes"));
        // An answer with a ticket inside another.
        let inner = encoded(&WireResponse::WithTicket {
            response: pong.clone(),
            ticket: encoded(&WireResponse::Error {
                code: "internal".into(),
                message: "x".into(),
            }),
        });
        let nested = to_cbor(&WireResponse::WithTicket {
            response: inner,
            ticket: pong,
        })
        .unwrap();
        assert!(malformed(Response::decode(&nested)).contains("another answer with a ticket"));
        let built = Response::WithTicket {
            response: Box::new(refused),
            ticket: Box::new(Response::Pong),
        };
        assert!(built.encode().is_err());
    }
}
