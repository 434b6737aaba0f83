//! Evidence verifiers: one per TEE kind, each yielding normalized
//! [`Claims`](veritee_attest::Claims), and [`Verifiers`], which picks the right one
//! and checks the report data the same way for all of them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod azure;
pub mod coco_sample;
pub mod dcap;
pub mod nitro;
pub mod nvidia;
mod registry;
pub mod simulated;
pub mod snp;
pub mod tpm;

pub use registry::{Verifiers, VerifyRequest};
pub use veritee_attest::{Claims, TcbStatus, TeeKind, Verifier, VerifyError, VerifyInput};
