//! X.509 certificate chains and CRLs for attestation, validated at an explicit time.
//!
//! Attestation PKIs are not the web PKI: their leaves carry vendor extensions instead
//! of DNS names, their CRLs are delivered as collateral, and verification must happen
//! at a chosen instant, not at the wall clock. So this crate parses with RustCrypto's
//! `x509-cert`, checks signatures with aws-lc-rs, and does path building, validity,
//! CA constraints and CRL checks itself, in one short file ([`chain`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod algorithm;
mod cert;
pub mod chain;
mod crl;
mod error;
pub mod pem;

pub use cert::ParsedCertificate;
pub use chain::{RevocationPolicy, VerifiedChain, verify_chain};
pub use crl::ParsedCrl;
pub use error::X509Error;
pub use time::OffsetDateTime;

/// Decodes an X.509 `Time` into an `OffsetDateTime`.
pub(crate) fn to_datetime(t: &x509_cert::time::Time) -> OffsetDateTime {
    let secs = t.to_unix_duration().as_secs();
    // X.509 times are bounded to years 1950..=9999, which always fit.
    OffsetDateTime::from_unix_timestamp(secs as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats a time for error messages (RFC 3339).
pub(crate) fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
