use thiserror::Error;

/// Host-side failures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HostError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] veritee_store::StoreError),
    /// The enclave process cannot be reached.
    #[error("enclave unavailable: {0}")]
    EnclaveUnavailable(String),
    /// The enclave process could not be started.
    #[error("cannot start the enclave process: {0}")]
    EnclaveStart(String),
    /// The node's configuration cannot be used (a TLS certificate, a listen address).
    #[error("{0}")]
    Config(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}
