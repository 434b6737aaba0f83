use thiserror::Error;

/// Why a platform operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// Reading or writing platform state failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Platform state exists where a new one was to be created.
    #[error("{0} already exists; refusing to overwrite it")]
    AlreadyExists(String),
    /// Platform state is missing or damaged.
    #[error("{path} is not usable platform state: {reason}")]
    BadState {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] veritee_crypto::CryptoError),
    /// Building a certificate or CRL failed.
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    /// A format error from the evidence layer.
    #[error(transparent)]
    Format(#[from] veritee_attest::VerifyError),
    /// An enclave image failed to load.
    #[error("enclave image rejected: {0}")]
    BadImage(String),
    /// The request cannot be served by this platform.
    #[error("{0}")]
    Unsupported(String),
    /// A sealed blob could not be opened.
    #[error("sealed blob rejected: {0}")]
    Unseal(String),
    /// A caller argument is unusable.
    #[error("{0}")]
    InvalidInput(String),
    /// A TEE device or interface refused a request or answered with something unusable.
    #[error("{device}: {reason}")]
    Device {
        /// The device or interface (a path such as /dev/nsm).
        device: String,
        /// What went wrong.
        reason: String,
    },
    /// No supported TEE interface exists on this machine.
    #[error("no TEE hardware found: {0}")]
    NoHardware(String),
}

impl PlatformError {
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self + use<> {
        let path = path.display().to_string();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn device(device: &std::path::Path, reason: impl core::fmt::Display) -> Self {
        Self::Device {
            device: device.display().to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn bad_state(path: &std::path::Path, reason: impl core::fmt::Display) -> Self {
        Self::BadState {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

impl From<rcgen::Error> for PlatformError {
    fn from(e: rcgen::Error) -> Self {
        Self::Certificate(e.to_string())
    }
}
