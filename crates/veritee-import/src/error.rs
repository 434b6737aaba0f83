//! What can be wrong with an import or an operation.

/// An import or operation refused, naming why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    /// A field is missing, malformed or out of range.
    #[error("{0}")]
    Malformed(String),
    /// A signature does not verify.
    #[error("{0}")]
    BadSignature(String),
    /// Decryption failed: a layer was not made for this key or these metadata.
    #[error("{0}")]
    Decrypt(String),
    /// The key may not be used so.
    #[error("{0}")]
    Forbidden(String),
    /// A primitive failed.
    #[error("cryptography: {0}")]
    Crypto(#[from] veritee_crypto::CryptoError),
}
