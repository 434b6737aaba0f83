//! The simulated TEE: a vendor that certifies machines, machines that run enclaves.
//!
//! It behaves like real hardware wherever the code above it can tell: a vendor PKI
//! (root CA, platform CA, TCB signing key), per-machine attestation keys certified with
//! the machine id and TCB level in extensions, vendor-signed CRLs and TCB information,
//! a versioned binary report signed by the machine, a per-machine sealing root, and a
//! measurement that is the hash of the enclave's code, and monotonic counters kept with
//! the machine. Its evidence always says it is simulated. State lives in directories the
//! user names; private keys are 0600.

mod counter;
mod enclave;
mod machine;
mod vendor;

pub use enclave::{EnclaveImage, SimEnclave};
pub use machine::{MachineInfo, SimMachine};
pub use vendor::{Collateral, MachineStanding, SimVendor};

use crate::PlatformError;
use std::path::Path;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};

/// Validity of CRLs and TCB information the vendor publishes.
pub const COLLATERAL_VALIDITY: time::Duration = time::Duration::days(30);

pub(crate) fn pem_private_key(
    key: &EcdsaSigningKey,
) -> Result<veritee_crypto::SecretBytes, PlatformError> {
    let der = key.to_pkcs8()?;
    Ok(veritee_crypto::SecretBytes::new(
        veritee_x509::pem::encode("PRIVATE KEY", der.expose()).into_bytes(),
    ))
}

pub(crate) fn load_private_key(path: &Path) -> Result<EcdsaSigningKey, PlatformError> {
    let text = veritee_crypto::SecretBytes::new(crate::fsutil::read(path)?);
    let blocks =
        veritee_x509::pem::blocks(text.expose()).map_err(|e| PlatformError::bad_state(path, e))?;
    let der = blocks
        .into_iter()
        .find(|(label, _)| label == "PRIVATE KEY")
        .map(|(_, der)| veritee_crypto::SecretBytes::new(der))
        .ok_or_else(|| PlatformError::bad_state(path, "no PRIVATE KEY block"))?;
    EcdsaSigningKey::from_pkcs8(EcdsaCurve::P384, der.expose())
        .map_err(|e| PlatformError::bad_state(path, e))
}

pub(crate) fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, PlatformError> {
    let bytes = crate::fsutil::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| PlatformError::bad_state(path, e))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, PlatformError> {
    serde_json::to_vec_pretty(value).map_err(|e| PlatformError::InvalidInput(e.to_string()))
}
