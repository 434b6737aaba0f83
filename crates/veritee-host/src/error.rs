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
    /// A body relayed to the enclave as it arrived was cut short, too long, or broken
    /// off by its sender; the enclave got none of it.
    #[error("bad request body: {0}")]
    BadBody(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}
