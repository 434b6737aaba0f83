//! Starting the enclave on the simulated platform.
//!
//! The simulated "hardware" measures what it loads: the enclave process presents its
//! own executable together with its configuration (trust anchors it will accept peers
//! under), and the measurement covers both, as a Gramine manifest would. A host that
//! starts other code, or passes other trust anchors, gets another measurement, which
//! clients' policies then refuse.

use std::path::Path;
use veritee_platform::sim::{EnclaveImage, SimMachine};
use veritee_platform::{Platform, PlatformError, SealPolicy};

/// Product id of the node enclave under its signer.
pub const NODE_PRODUCT_ID: u16 = 1;
/// Security version of this node enclave.
pub const NODE_SECURITY_VERSION: u16 = 1;

/// What the enclave is launched with; all of it is measured.
#[derive(Debug, Clone, Default)]
pub struct EnclaveConfig {
    /// PEM trust anchors for appraising peer enclaves (the simulated vendor root).
    pub peer_trust_anchors_pem: Vec<u8>,
    /// The Ed25519 key of the KBS administrator, when the node serves the KBS admin
    /// API: measured, so a host that swaps it changes the enclave's measurement.
    pub kbs_admin_key: Option<[u8; 32]>,
    /// Whether the enclave is a security module (flow 2): measured, so an owner's
    /// policy tells a security module from a target node.
    pub security_module: bool,
    /// PEM CAs of the TPM manufacturers a security module accepts TPM targets under:
    /// measured, so an owner's policy names the CAs its SM trusts.
    pub tpm_trust_anchors_pem: Vec<u8>,
}

impl EnclaveConfig {
    fn measured_bytes(&self) -> Vec<u8> {
        let mut out = b"veritee enclave config v1\0".to_vec();
        out.extend_from_slice(&(self.peer_trust_anchors_pem.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.peer_trust_anchors_pem);
        // Appended only when set, so nodes without a KBS admin keep their measurement.
        if let Some(key) = &self.kbs_admin_key {
            out.extend_from_slice(b"kbs admin key\0");
            out.extend_from_slice(key);
        }
        if self.security_module {
            out.extend_from_slice(b"role security module\0");
        }
        if !self.tpm_trust_anchors_pem.is_empty() {
            out.extend_from_slice(b"tpm trust anchors\0");
            out.extend_from_slice(&(self.tpm_trust_anchors_pem.len() as u64).to_le_bytes());
            out.extend_from_slice(&self.tpm_trust_anchors_pem);
        }
        out
    }
}

/// The bytes the platform measures: the executable, then the configuration.
pub fn image_bytes(executable: &Path, config: &EnclaveConfig) -> Result<Vec<u8>, PlatformError> {
    let mut code = std::fs::read(executable).map_err(|source| PlatformError::Io {
        action: "cannot read enclave executable",
        path: executable.display().to_string(),
        source,
    })?;
    code.extend_from_slice(&config.measured_bytes());
    Ok(code)
}

/// Launches the enclave on the simulated machine in `platform_dir`. With a signer key
/// (PKCS#8 P-384, the developer's), the image is signed and state is sealed to the
/// signer (it survives upgrades); otherwise it is sealed to the measurement.
pub fn launch_simulated(
    platform_dir: &Path,
    executable: &Path,
    config: &EnclaveConfig,
    signer: Option<&veritee_crypto::sign::EcdsaSigningKey>,
) -> Result<(Box<dyn Platform>, SealPolicy), PlatformError> {
    let code = image_bytes(executable, config)?;
    let (image, policy) = match signer {
        Some(key) => (
            EnclaveImage::signed(&code, key, NODE_PRODUCT_ID, NODE_SECURITY_VERSION, false)?,
            SealPolicy::Signer,
        ),
        None => (
            EnclaveImage::unsigned(&code, NODE_PRODUCT_ID, NODE_SECURITY_VERSION, false),
            SealPolicy::Measurement,
        ),
    };
    let machine = SimMachine::open(platform_dir)?;
    Ok((Box::new(machine.launch(&image)?), policy))
}
