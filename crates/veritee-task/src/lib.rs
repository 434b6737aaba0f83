//! The trusted-task protocol (flow 1 of DESIGN.md), message by message.
//!
//! ```text
//! client                                              provider enclave
//!   TaskInitiation (TTIS): task id, nonce, policy digest,
//!     security context, compartmentalization context  ->
//!                                   <- AttestationSignal: SKEK (X25519), evidence binding
//!                                      SKEK, nonce and the TTIS digest; current load
//!   appraise; pick a provider (first / least loaded)
//!   CKEK = HKDF(task key, task id, "ckek"); DEK_c = HKDF(task key, task id, "dek" || c)
//!   KeyDelivery: HPKE to SKEK { CKEK, KWP_CKEK(DEK_c) for every c }  ->
//!   encrypted uploads: each module and input under its compartment's DEK  ->
//!                                   <- ResultEnvelope: each released output under its DEK,
//!                                      task id + timestamp, HMAC under a key exported
//!                                      from the HPKE session with SKEK
//!   check MAC, task id, time window; decrypt with the DEKs
//! ```
//! The task key never leaves the client; the host relays ciphertext only.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod keys;
pub mod messages;
pub mod results;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

use thiserror::Error;

/// Why a protocol step failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TaskError {
    /// A message is malformed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A result failed authentication or freshness checks.
    #[error("result refused: {0}")]
    ResultRefused(String),
    /// A key delivery is authentic but not from the task's client: its data keys are
    /// not wrapped under the key that client's key-exchange key agrees.
    #[error("key delivery refused: {0}")]
    DeliveryRefused(String),
    /// Evidence or policy refused the provider.
    #[error(transparent)]
    Channel(#[from] veritee_channel::ChannelError),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] veritee_crypto::CryptoError),
}

impl TaskError {
    pub(crate) fn malformed(what: &'static str, reason: impl core::fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

/// Length of a task id.
pub const TASK_ID_LEN: usize = 16;
