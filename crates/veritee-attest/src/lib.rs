//! The attestation vocabulary shared by veritee's attesters and verifiers.
//!
//! - [`TeeKind`], [`TcbStatus`] and [`Claims`]: what a verified piece of evidence says,
//!   normalized across TEEs so policies and callers never look at vendor formats.
//! - [`Verifier`]: the one trait every verifier implements, taking an explicit
//!   verification time.
//! - [`simulated`]: the wire formats of veritee's simulated TEE, written once here so
//!   that the attester and the verifier cannot drift apart.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod anchors;
pub mod bytes;
mod claims;
pub mod encoding;
mod error;
mod report_data;
pub mod simulated;
mod tee;
mod verifier;

pub use anchors::{AnchorInfo, AnchorSource, TrustAnchors};
pub use claims::{Claims, HexBytes};
pub use error::VerifyError;
pub use report_data::{REPORT_DATA_LEN, ReportData};
pub use tee::{TcbStatus, TeeKind};
pub use verifier::{Verifier, VerifyInput};
pub use veritee_x509::{OffsetDateTime, ParsedCertificate};
