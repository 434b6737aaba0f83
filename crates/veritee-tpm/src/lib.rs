//! TPM 2.0 targets of flow 2 (TEE-bound workloads).
//!
//! A target with a TPM 2.0 enrolls at a security module (SM) with:
//! - its endorsement key (EK) certificate, which must chain to a TPM manufacturer's CA
//!   (in tests and the demo, swtpm's local CA stands in for the manufacturer);
//! - an attestation key (AK), restricted to signing what the TPM itself produced;
//! - a storage key, non-exportable (fixedTPM, fixedParent) and usable only under a PCR
//!   policy, which the AK certifies with TPM2_Certify over the SM's nonce;
//! - a quote of the PCRs that policy names, over the same nonce;
//! - then the answer to a MakeCredential challenge that only the TPM holding the EK,
//!   with that AK loaded, can open (TPM2_ActivateCredential).
//!
//! [`enrollment`] is what the SM checks (pure Rust, no TPM needed); [`credential`]
//! makes the MakeCredential challenge in software; [`device`] (feature `device`) is
//! the target's side, driving its TPM through `tss-esapi`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
#[cfg(feature = "device")]
pub mod counter;
pub mod credential;
#[cfg(feature = "device")]
pub mod device;
pub mod enrollment;
mod error;
pub mod policy;
pub mod swtpm;

pub use error::TpmError;
