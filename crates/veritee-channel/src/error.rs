use thiserror::Error;

/// Why a session step failed. Messages carry no key or plaintext material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A session message is malformed.
    #[error("malformed session message: {0}")]
    Malformed(String),
    /// A message failed authentication: altered, replayed, reordered or for another session.
    #[error("session message rejected: {0}")]
    Rejected(String),
    /// The peer's evidence did not verify.
    #[error("evidence rejected: {0}")]
    Evidence(#[from] veritee_attest::VerifyError),
    /// The peer's evidence verified but the policy refused it.
    #[error("policy rejected the peer: {0}")]
    Policy(String),
    /// The tenant's signature over the session did not verify.
    #[error("tenant authentication failed")]
    TenantAuthentication,
    /// The platform could not produce evidence.
    #[error("platform: {0}")]
    Platform(#[from] veritee_platform::PlatformError),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] veritee_crypto::CryptoError),
    /// A message arrived in a state that does not accept it.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A stored resumption ([`crate::stored`]) is not what this client writes.
    #[error("stored resumption refused: {0}")]
    StoredResumption(String),
}
