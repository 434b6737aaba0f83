//! Why a snapshot could not be updated, or a transfer not be opened.

/// What went wrong, named so that an operator can tell a damaged transfer from a
/// forged one; messages never quote memory or key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForkError {
    /// The manifest or offer is cut short.
    #[error("fork {what} is truncated: {needed} more bytes were expected")]
    Truncated {
        /// Which part.
        what: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// A field is out of range or inconsistent.
    #[error("fork manifest is malformed: {0}")]
    Malformed(String),
    /// Bytes follow the end of the manifest.
    #[error("fork manifest has {0} bytes after its end")]
    TrailingBytes(usize),
    /// The manifest's version is not one this build reads.
    #[error("fork manifest version {0} is not supported (this build reads version 1)")]
    Version(u16),
    /// The offer does not open under the key of this exchange: it was made for another
    /// child or another snapshot, or was changed on the way.
    #[error(
        "fork offer does not open: it was made for another exchange or snapshot, or was altered"
    )]
    OfferDoesNotOpen,
    /// The manifest inside does not hash to the digest the key was derived for.
    #[error("fork manifest does not match the snapshot digest it was sent under")]
    DigestMismatch,
    /// A page frame arrived out of order, twice, or for a page that is not sent.
    #[error("fork page {index}: {reason}")]
    PageOrder {
        /// The page index the frame named.
        index: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A page does not open: it is from another snapshot, or was altered.
    #[error("fork page {0} does not open: it is from another snapshot or was altered")]
    PageDoesNotOpen(u64),
    /// The transfer ended before every sealed page arrived.
    #[error("fork transfer is incomplete: {received} of {expected} sealed pages arrived")]
    Incomplete {
        /// Sealed pages received.
        received: usize,
        /// Sealed pages the manifest lists.
        expected: usize,
    },
    /// The memory given to restore into is not the snapshot's size.
    #[error("restoring {expected} bytes of memory into a buffer of {actual}")]
    MemorySize {
        /// The snapshot's memory length.
        expected: usize,
        /// The buffer's length.
        actual: usize,
    },
    /// The application's state does not fit a snapshot (memory shrank, too large).
    #[error("cannot snapshot: {0}")]
    State(String),
    /// A cryptographic primitive failed (randomness, key derivation).
    #[error("fork cryptography failed: {0}")]
    Crypto(#[from] veritee_crypto::CryptoError),
}
