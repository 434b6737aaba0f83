use thiserror::Error;

/// What went wrong in a cryptographic operation.
///
/// Messages deliberately carry no key or plaintext material: errors end up in logs.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key had the wrong length for its algorithm.
    #[error("{what} must be {expected} bytes long, got {actual}")]
    KeyLength {
        /// Which key.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// A key could not be parsed or is not valid for its algorithm.
    #[error("invalid {0}")]
    InvalidKey(&'static str),
    /// Authenticated decryption failed: wrong key, wrong associated data, or altered ciphertext.
    #[error(
        "decryption failed: the ciphertext, its associated data or the key is not the one it was sealed with"
    )]
    Decrypt,
    /// A ciphertext is shorter than its fixed overhead.
    #[error("ciphertext too short: {actual} bytes, at least {minimum} needed")]
    CiphertextTooShort {
        /// Minimum length.
        minimum: usize,
        /// Length given.
        actual: usize,
    },
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Key unwrapping failed (RFC 5649 integrity check).
    #[error("key unwrap failed: the wrapped key was altered or wrapped under another key")]
    Unwrap,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// An operation failed inside the underlying library for a reason it does not detail.
    #[error("{0} failed")]
    Operation(&'static str),
    /// An RSA key's modulus is not of a size this operation accepts.
    #[error("{what} of {bits} bits: {minimum} to {maximum} bits accepted")]
    KeyBits {
        /// Which key.
        what: &'static str,
        /// Its modulus size.
        bits: usize,
        /// Smallest size accepted.
        minimum: usize,
        /// Largest size accepted.
        maximum: usize,
    },
    /// An input is longer or shorter than its operation accepts.
    #[error("{what} of {actual} bytes: {minimum} to {maximum} bytes accepted")]
    InputLength {
        /// Which input.
        what: &'static str,
        /// Shortest accepted.
        minimum: usize,
        /// Longest accepted.
        maximum: usize,
        /// Length given.
        actual: usize,
    },
    /// A requested output length is out of range.
    #[error("{what}: output length {requested} is out of range (at most {maximum})")]
    OutputLength {
        /// Which operation.
        what: &'static str,
        /// Requested length.
        requested: usize,
        /// Largest allowed.
        maximum: usize,
    },
}
