//! Why a workload could not be built, read, authorized or opened.

/// What went wrong, named so that an owner can tell a damaged file from a forged one
/// or a slot for another target; messages never quote payload or key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// The file or a part of it is cut short.
    #[error("workload {what} is truncated: {needed} more bytes were expected")]
    Truncated {
        /// Which part.
        what: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// The bytes are not a workload file.
    #[error("not a workload file (magic {0:?}, expected \"VTWL\")")]
    Magic([u8; 4]),
    /// The file's version is not one this build reads.
    #[error("workload format version {0} is not supported (this build reads version 1)")]
    Version(u16),
    /// A field is out of range or inconsistent.
    #[error("workload is malformed: {0}")]
    Malformed(String),
    /// Bytes follow the end of the slot area.
    #[error("workload has {0} bytes after its slot area")]
    TrailingBytes(usize),
    /// Something exceeds a limit of the format.
    #[error("workload {what} is too large: {actual} (at most {maximum})")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its size.
        actual: u64,
        /// The limit.
        maximum: u64,
    },
    /// The HMAC over header and payload does not match: the workload was altered, or
    /// the seed is not this workload's.
    #[error(
        "workload HMAC does not match: the payload was altered or the seed is not this workload's"
    )]
    Hmac,
    /// The payload does not decrypt under the seed's key.
    #[error("workload payload does not decrypt: it was altered or the seed is not this workload's")]
    Decrypt,
    /// A component's bytes do not hash to the value its integrity table holds.
    #[error("workload component {kind} {name:?} does not match its hash")]
    ComponentHash {
        /// The component's kind.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// No slot of the workload is for the given storage key.
    #[error(
        "workload has no authorization for this target (storage key {0}): it was never authorized, or its key was rotated"
    )]
    NoSlot(String),
    /// An authorization names another workload.
    #[error("authorization is for workload {found}, not {expected}")]
    WrongWorkload {
        /// The workload the file is.
        expected: String,
        /// The workload the slot names.
        found: String,
    },
    /// The authorization is outside its validity window at the given time.
    #[error(
        "authorization is not valid at {now} (valid from {not_before} to {not_after}, Unix seconds)"
    )]
    OutsideWindow {
        /// The time it was checked at.
        now: u64,
        /// Its first valid second.
        not_before: u64,
        /// Its last valid second.
        not_after: u64,
    },
    /// The sealed seed does not open under the storage key: the slot was made for
    /// another key, or altered.
    #[error(
        "authorization does not open under this target's storage key: it was made for another key, or altered"
    )]
    SealedSeed,
    /// The TPM did not unseal the seed.
    #[error(
        "the TPM did not unseal the authorization (its PCRs moved since enrollment, the slot was altered, or the storage key is another): {0}"
    )]
    Tpm(String),
    /// Too many slots, components, or a name the format does not allow.
    #[error("{0}")]
    Invalid(String),
    /// The platform's randomness or a primitive failed.
    #[error("cryptography failed: {0}")]
    Crypto(#[from] veritee_crypto::CryptoError),
}
