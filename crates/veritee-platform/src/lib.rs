//! The attester side of veritee: what a TEE gives the enclave running in it.
//!
//! A [`Platform`] produces evidence over 64 bytes of report data, derives sealing keys
//! bound to the enclave's measurement or signer, and states the enclave's identity.
//! [`sim`] is the simulated TEE (vendor, machines, enclaves); [`hw`] holds the
//! real-hardware backends (configfs-tsm for TDX and SEV-SNP, Gramine for SGX, the NSM
//! for Nitro) and [`hw::detect`], which finds the one this program runs in. [`sealing`] turns sealing keys into a blob format.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod fsutil;
pub mod hw;
pub mod sealing;
pub mod sim;

pub use error::PlatformError;

use veritee_attest::{ReportData, TeeKind};
use veritee_crypto::aead::AeadKey;

/// What a sealing key is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SealPolicy {
    /// Only an enclave with the same measurement (the same code) gets the key.
    Measurement,
    /// Any enclave from the same signer and product gets the key: survives upgrades.
    Signer,
}

impl SealPolicy {
    /// The byte that names the policy in sealed blobs and key derivation.
    pub fn code(self) -> u8 {
        match self {
            Self::Measurement => 1,
            Self::Signer => 2,
        }
    }

    /// The policy named by `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Measurement),
            2 => Some(Self::Signer),
            _ => None,
        }
    }
}

/// An enclave's identity as its platform sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveIdentity {
    /// The measurement of the enclave's code.
    pub measurement: Vec<u8>,
    /// The signer's identity, if the enclave is signed.
    pub signer: Option<Vec<u8>>,
    /// Product id under the signer.
    pub product_id: u16,
    /// The enclave's security version.
    pub security_version: u16,
    /// Whether the enclave runs in debug mode.
    pub debug: bool,
}

/// A TEE as seen from inside an enclave.
pub trait Platform: Send + Sync {
    /// The kind of TEE.
    fn tee(&self) -> TeeKind;

    /// Evidence binding `report_data` to this enclave and platform.
    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError>;

    /// A 256-bit sealing key bound to `policy`, diversified by `label`.
    fn sealing_key(&self, policy: SealPolicy, label: &[u8]) -> Result<AeadKey, PlatformError>;

    /// The enclave's identity.
    fn identity(&self) -> &EnclaveIdentity;
}
