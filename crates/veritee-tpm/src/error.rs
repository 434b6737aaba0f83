//! What can go wrong on either side of a TPM 2.0 enrollment.

use thiserror::Error;

/// Why a TPM enrollment, a credential or a device operation failed. Every variant says
/// which piece of evidence or which input was refused, and why.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TpmError {
    /// The target's TPM returned an error or refused a command.
    #[error("the TPM failed or refused: {0}")]
    Device(String),
    /// A structure is not well-formed: truncated, oversized, with trailing bytes, or
    /// with a field of an unknown value.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure or input.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The EK certificate does not chain to one of the TPM manufacturer CAs given.
    #[error("the EK certificate is not vouched for by a trusted TPM manufacturer CA: {0}")]
    EkCertificate(String),
    /// The EK public area is not the key the EK certificate certifies.
    #[error("the EK public area (ek_public) is not the key of the EK certificate")]
    EkNotCertified,
    /// A key does not have the type, size or attributes its role requires.
    #[error("the {key} is not acceptable: {reason}")]
    KeyAttributes {
        /// Which key: "EK", "AK", "storage key".
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An attestation does not carry this enrollment's nonce.
    #[error("the {what} is not over this enrollment's nonce: its extraData is {found}")]
    WrongNonce {
        /// Which attestation ("certification", "quote").
        what: &'static str,
        /// The extraData it carries, hex.
        found: String,
    },
    /// A signature over an attestation does not verify with the attestation key.
    #[error("the {what} is not signed by the attestation key: {reason}")]
    Signature {
        /// Which attestation ("certification", "quote").
        what: &'static str,
        /// Why the check failed.
        reason: String,
    },
    /// The TPM2_Certify attestation names another object than the storage key given.
    #[error(
        "the certification is over the object named {certified}, not the storage key given (named {expected})"
    )]
    CertifiedOtherKey {
        /// The name the certification carries, hex.
        certified: String,
        /// The storage key's name, hex.
        expected: String,
    },
    /// The storage key's authPolicy is not the PolicyPCR digest of the quoted PCRs.
    #[error(
        "the storage key's authPolicy {found} is not the PCR policy of the quoted PCRs ({expected}): it could be used in another PCR state than the one quoted"
    )]
    PolicyMismatch {
        /// The storage key's authPolicy, hex.
        found: String,
        /// PolicyPCR over the quote's selection and PCR digest, hex.
        expected: String,
    },
    /// The quote does not select the PCRs the way the enrollment needs.
    #[error("the quote's PCR selection is not acceptable: {0}")]
    PcrSelection(String),
    /// The PCR values given do not hash to the quote's PCR digest.
    #[error("the PCR values given do not hash to the quote's pcrDigest: {0}")]
    PcrValues(String),
    /// The quote and the certification were not made by the same TPM in the same boot.
    #[error("the quote and the certification do not come from the same TPM boot: {0}")]
    BootMismatch(String),
    /// An argument of a call is unusable (an empty or too long secret, a name of the
    /// wrong length...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A cryptographic primitive failed (not expected with valid keys).
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
}

impl TpmError {
    /// A [`TpmError::Malformed`].
    pub(crate) fn malformed(what: &'static str, reason: impl core::fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}
