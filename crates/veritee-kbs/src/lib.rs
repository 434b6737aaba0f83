//! The Confidential Containers Key Broker Service protocol (attestation protocol 0.4.0),
//! as veritee's enclave speaks it, so that CoCo guests (attestation-agent,
//! confidential-data-hub, `kbs-client`) fetch secrets from a veritee node.
//!
//! The protocol's messages are `kbs_types`' own types; this crate adds what a key
//! broker does with them: the challenge and the binding of the guest's runtime data to
//! its evidence ([`protocol`]), the EAR attestation token and the admin's bearer token
//! ([`token`]), the JWE that carries a resource to the guest's TEE key ([`jwe`]),
//! resource paths ([`resource`]) and RFC 7807 problem documents ([`problem`]).
//! Nothing here does I/O or keeps state: the enclave's `kbs` module does.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod jwe;
pub mod problem;
pub mod protocol;
pub mod resource;
pub mod token;

pub use kbs_types;

use thiserror::Error;

/// Why a KBS message or key is refused. Messages never carry secret material.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KbsError {
    /// A message does not parse or says something the protocol does not allow.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message or field.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A message or value is larger than this broker takes.
    #[error("{what} is {size} bytes; at most {limit} are accepted")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The guest speaks another protocol version.
    #[error(
        "KBS protocol version {got:?} is not spoken here; this broker speaks {}",
        protocol::PROTOCOL_VERSION
    )]
    Version {
        /// The version the guest asked for.
        got: String,
    },
    /// The guest's TEE key cannot be used.
    #[error("the TEE public key is refused: {0}")]
    TeeKey(String),
    /// A JWE does not open.
    #[error("the JWE is refused: {0}")]
    Jwe(String),
    /// A token (attestation or admin) is refused.
    #[error("the token is refused: {0}")]
    Token(String),
    /// The evidence's kind is one this broker does not verify (yet).
    #[error("{0}")]
    Unsupported(String),
    /// A cryptographic operation failed (randomness, key generation).
    #[error("cryptographic failure: {0}")]
    Crypto(String),
}

impl KbsError {
    pub(crate) fn malformed(what: &'static str, reason: impl core::fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn crypto(what: impl core::fmt::Display) -> Self {
        Self::Crypto(what.to_string())
    }
}
