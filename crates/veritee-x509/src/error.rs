use thiserror::Error;

/// Why a certificate, CRL or chain was rejected. Each message names the certificate.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum X509Error {
    /// Bytes that are not a well-formed certificate or CRL.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// "certificate", "CRL" or "PEM".
        what: &'static str,
        /// Parser message.
        reason: String,
    },
    /// A certificate outside its validity period.
    #[error("certificate '{subject}' is not valid at {at}: valid from {not_before} to {not_after}")]
    OutsideValidity {
        /// Subject of the certificate.
        subject: String,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
        /// Verification time.
        at: String,
    },
    /// No certificate in the chain or trust anchors issued this one.
    #[error("no issuer found for certificate '{subject}' (issuer '{issuer}')")]
    UnknownIssuer {
        /// Subject of the orphan.
        subject: String,
        /// Its issuer name.
        issuer: String,
    },
    /// The chain ends in a self-signed certificate that is not a trust anchor.
    #[error("certificate chain ends at '{subject}', which is not a trusted root")]
    UntrustedRoot {
        /// Subject of the root.
        subject: String,
    },
    /// A signature over a certificate did not verify.
    #[error("signature on certificate '{subject}' does not verify with the key of '{issuer}'")]
    BadSignature {
        /// Subject of the certificate.
        subject: String,
        /// Issuer whose key was tried.
        issuer: String,
    },
    /// An issuer that is not allowed to issue certificates.
    #[error("certificate '{subject}' is used as an issuer but is not a CA certificate ({reason})")]
    NotACa {
        /// Subject of the would-be CA.
        subject: String,
        /// What is missing.
        reason: &'static str,
    },
    /// A certificate listed in a valid CRL of its issuer.
    #[error("certificate '{subject}' (serial {serial}) is revoked since {revoked_at}")]
    Revoked {
        /// Subject of the certificate.
        subject: String,
        /// Serial number, hex.
        serial: String,
        /// Revocation date.
        revoked_at: String,
    },
    /// Revocation information is required and none was given for an issuer.
    #[error("no CRL from '{issuer}' was provided; revocation of '{subject}' cannot be checked")]
    MissingCrl {
        /// The issuer whose CRL is missing.
        issuer: String,
        /// The certificate it would cover.
        subject: String,
    },
    /// Every CRL from an issuer is outside its validity at the verification time.
    #[error(
        "CRL from '{issuer}' is not valid at {at}: issued {this_update}, next update {next_update}"
    )]
    CrlOutsideValidity {
        /// CRL issuer.
        issuer: String,
        /// thisUpdate.
        this_update: String,
        /// nextUpdate.
        next_update: String,
        /// Verification time.
        at: String,
    },
    /// A CRL's signature did not verify with its issuer's key.
    #[error("signature on the CRL from '{issuer}' does not verify")]
    CrlBadSignature {
        /// CRL issuer.
        issuer: String,
    },
    /// A signature or key algorithm veritee does not accept.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// A critical extension that this verifier does not understand.
    #[error("certificate '{subject}' has an unrecognised critical extension {oid}")]
    UnknownCriticalExtension {
        /// Subject of the certificate.
        subject: String,
        /// Extension OID.
        oid: String,
    },
    /// Path building gave up.
    #[error("certificate chain is longer than {0} certificates")]
    ChainTooLong(usize),
    /// An empty chain.
    #[error("no certificate was provided")]
    EmptyChain,
    /// A path length constraint was exceeded.
    #[error("certificate '{subject}' allows at most {allowed} intermediate CA(s) below it")]
    PathLength {
        /// The constraining CA.
        subject: String,
        /// Its pathLenConstraint.
        allowed: u8,
    },
}

impl X509Error {
    pub(crate) fn malformed(what: &'static str, err: impl core::fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: err.to_string(),
        }
    }
}
