//! The attester side of veritee: what a TEE gives the enclave running in it.
//!
//! A [`Platform`] produces evidence over 64 bytes of report data, derives sealing keys
//! bound to the enclave's measurement or signer and its security version, states the
//! enclave's identity, and may keep [`MonotonicCounter`]s for it.
//! [`sim`] is the simulated TEE (vendor, machines, enclaves); [`hw`] holds the
//! real-hardware backends (configfs-tsm for TDX and SEV-SNP, Gramine or Occlum for SGX, the NSM
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
    /// What whoever launched the TEE bound into its evidence for the configuration it
    /// launched it with: SEV-SNP's HOST_DATA, TDX's MRCONFIGID. `None` where the
    /// platform has no such field (there the configuration is part of the measurement).
    pub launch_config: Option<Vec<u8>>,
}

/// A counter the platform keeps outside the host's storage that never goes backwards.
///
/// Sealed state alone cannot tell a current copy from an older one the host put back
/// (a rollback): both decrypt. Recording a version in a counter like this one, and
/// refusing state older than the counter, closes that gap across restarts.
pub trait MonotonicCounter: Send + Sync {
    /// Current value (0 for a counter never advanced).
    fn read(&self) -> Result<u64, PlatformError>;

    /// Raises the counter to `value` and returns the new value; durable before it returns.
    /// `value` below the current value is an error ([`PlatformError::InvalidInput`])
    /// naming both; equal is a no-op.
    fn advance_to(&self, value: u64) -> Result<u64, PlatformError>;
}

/// The error for a sealing key asked for at a security version above the enclave's own:
/// what every [`Platform::sealing_key_at`] returns for a newer version.
pub fn check_security_version(
    identity: &EnclaveIdentity,
    requested: u16,
) -> Result<(), PlatformError> {
    let own = identity.security_version;
    if requested > own {
        return Err(PlatformError::InvalidInput(format!(
            "the sealing key of security version {requested} belongs to a newer build; this \
             build is security version {own} and cannot derive a newer build's key"
        )));
    }
    Ok(())
}

/// A TEE as seen from inside an enclave.
pub trait Platform: Send + Sync {
    /// The kind of TEE.
    fn tee(&self) -> TeeKind;

    /// Evidence binding `report_data` to this enclave and platform.
    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError>;

    /// A 256-bit sealing key bound to `policy` and to `security_version`, diversified
    /// by `label`.
    ///
    /// Like SGX EGETKEY's ISVSVN: each security version has its own key, and an enclave
    /// can derive the keys of its own version and of every older one, never of a newer
    /// one. So a patched build reads what vulnerable builds before it sealed, while a
    /// vulnerable build, even one with the same signer, cannot read what a patched build
    /// sealed. `security_version` above [`EnclaveIdentity::security_version`] is an
    /// error ([`PlatformError::InvalidInput`]) naming both versions; a backend that can
    /// only produce the key of its own version returns [`PlatformError::Unsupported`]
    /// for any other.
    fn sealing_key_at(
        &self,
        policy: SealPolicy,
        security_version: u16,
        label: &[u8],
    ) -> Result<AeadKey, PlatformError>;

    /// A 256-bit sealing key bound to `policy` and to this enclave's own security
    /// version, diversified by `label`: [`Platform::sealing_key_at`] at
    /// `identity().security_version`.
    ///
    /// This is the key to seal new data with: sealing under the current version keeps
    /// older (possibly vulnerable) builds from reading it.
    fn sealing_key(&self, policy: SealPolicy, label: &[u8]) -> Result<AeadKey, PlatformError> {
        self.sealing_key_at(policy, self.identity().security_version, label)
    }

    /// The enclave's identity.
    fn identity(&self) -> &EnclaveIdentity;

    /// The monotonic counter `name` of the sealing identity `policy` names: the
    /// measurement, or the signer and product (the identity [`Platform::sealing_key`]
    /// binds, without the security version, so an upgrade keeps its counters).
    /// Different identities and different names get independent counters.
    ///
    /// The default is [`PlatformError::Unsupported`]: no TEE veritee runs on offers one
    /// directly. On hardware a TPM NV counter (an NV index of type counter, bound to the
    /// enclave by a policy) or an attested peer enclave that keeps the counter would
    /// provide it.
    fn monotonic_counter(
        &self,
        policy: SealPolicy,
        name: &str,
    ) -> Result<Box<dyn MonotonicCounter>, PlatformError> {
        Err(PlatformError::Unsupported(format!(
            "the {} platform keeps no monotonic counter (asked for '{name}' of the \
             {policy:?} sealing identity): on hardware a TPM NV counter or an attested peer \
             enclave that keeps the counter would provide one, and this backend has neither",
            self.tee()
        )))
    }
}
