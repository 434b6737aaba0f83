//! A simulated machine: an attestation key certified by the vendor, a sealing root,
//! and a local copy of the vendor's collateral (as a PCCS cache would hold).

use super::{SimEnclave, SimVendor, load_json, load_private_key, pem_private_key, to_json};
use crate::PlatformError;
use crate::fsutil::{self, PRIVATE_MODE, PUBLIC_MODE};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;
use veritee_crypto::Confidential;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};

mod files {
    pub const INFO: &str = "machine.json";
    pub const ATTESTATION_KEY: &str = "attestation.key";
    pub const CERT: &str = "machine.pem";
    pub const PLATFORM_CA: &str = "platform-ca.pem";
    pub const SEALING_ROOT: &str = "sealing-root.key";
    pub const COLLATERAL_DIR: &str = "collateral";
}

/// Public facts about a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineInfo {
    /// The machine id, hex (16 bytes).
    pub machine_id: String,
    /// The platform TCB SVN the machine runs and is certified for.
    pub tcb_svn: u32,
    /// SHA-256 of the vendor root certificate, hex.
    pub vendor_root_sha256: String,
}

pub(crate) struct MachineSecrets {
    /// The machine directory: the simulated platform keeps its monotonic counters here,
    /// beside the sealing root, outside any store the host software manages.
    pub(crate) dir: PathBuf,
    pub(crate) machine_id: [u8; 16],
    pub(crate) tcb_svn: u32,
    pub(crate) attestation_key: EcdsaSigningKey,
    pub(crate) sealing_root: Confidential<[u8; 32]>,
    pub(crate) certificate: Vec<u8>,
    pub(crate) ca_certificates: Vec<Vec<u8>>,
    pub(crate) crls: Vec<Vec<u8>>,
    pub(crate) tcb_infos: Vec<Vec<u8>>,
}

/// A simulated machine backed by a directory.
pub struct SimMachine {
    dir: PathBuf,
    info: MachineInfo,
    inner: Arc<MachineSecrets>,
}

impl core::fmt::Debug for SimMachine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimMachine")
            .field("dir", &self.dir)
            .field("info", &self.info)
            .finish()
    }
}

fn pem_der_blocks(path: &Path, label: &str) -> Result<Vec<Vec<u8>>, PlatformError> {
    Ok(veritee_x509::pem::blocks(&fsutil::read(path)?)
        .map_err(|e| PlatformError::bad_state(path, e))?
        .into_iter()
        .filter(|(l, _)| l == label)
        .map(|(_, der)| der)
        .collect())
}

impl SimMachine {
    /// Manufactures a machine in `dir`: generates its keys and sealing root, has `vendor`
    /// certify it at `tcb_svn` (the vendor's latest when `None`), and caches collateral.
    pub fn init(
        dir: &Path,
        vendor: &mut SimVendor,
        tcb_svn: Option<u32>,
        now: OffsetDateTime,
    ) -> Result<Self, PlatformError> {
        fsutil::create_private_dir(dir)?;
        if dir.join(files::INFO).exists() || dir.join(files::ATTESTATION_KEY).exists() {
            return Err(PlatformError::AlreadyExists(format!(
                "a machine in {}",
                dir.display()
            )));
        }
        let tcb_svn = tcb_svn.unwrap_or_else(|| vendor.latest_tcb_svn());
        let machine_id: [u8; 16] = veritee_crypto::rand::array()?;
        let key = EcdsaSigningKey::generate(EcdsaCurve::P384)?;
        let sealing_root = veritee_crypto::rand::secret_array::<32>()?;
        let cert = vendor.certify_machine(&key.public_key_spki()?, &machine_id, tcb_svn, now)?;
        let root = veritee_x509::ParsedCertificate::from_der_or_pem(&vendor.root_pem()?)
            .map_err(|e| PlatformError::bad_state(&vendor.root_path(), e))?;
        let info = MachineInfo {
            machine_id: hex::encode(machine_id),
            tcb_svn,
            vendor_root_sha256: hex::encode(root.fingerprint()),
        };
        fsutil::write_new(
            &dir.join(files::ATTESTATION_KEY),
            pem_private_key(&key)?.expose(),
            PRIVATE_MODE,
        )?;
        fsutil::write_new(
            &dir.join(files::SEALING_ROOT),
            sealing_root.expose(),
            PRIVATE_MODE,
        )?;
        fsutil::write_new(
            &dir.join(files::CERT),
            veritee_x509::pem::encode("CERTIFICATE", &cert).as_bytes(),
            PUBLIC_MODE,
        )?;
        fsutil::create_private_dir(&dir.join(files::COLLATERAL_DIR))?;
        Self::store_collateral(dir, vendor)?;
        // machine.json last: its presence marks a complete machine.
        fsutil::write_new(&dir.join(files::INFO), &to_json(&info)?, PUBLIC_MODE)?;
        Self::open(dir)
    }

    fn store_collateral(dir: &Path, vendor: &SimVendor) -> Result<(), PlatformError> {
        let collateral = vendor.collateral()?;
        let cdir = dir.join(files::COLLATERAL_DIR);
        fsutil::replace(
            &dir.join(files::PLATFORM_CA),
            veritee_x509::pem::encode("CERTIFICATE", &collateral.platform_ca).as_bytes(),
            PUBLIC_MODE,
        )?;
        fsutil::replace(
            &cdir.join("root.crl.pem"),
            veritee_x509::pem::encode("X509 CRL", &collateral.root_crl).as_bytes(),
            PUBLIC_MODE,
        )?;
        fsutil::replace(
            &cdir.join("platform-ca.crl.pem"),
            veritee_x509::pem::encode("X509 CRL", &collateral.platform_ca_crl).as_bytes(),
            PUBLIC_MODE,
        )?;
        fsutil::replace(
            &cdir.join("tcb-info.json"),
            &collateral.tcb_info,
            PUBLIC_MODE,
        )
    }

    /// Fetches the vendor's current collateral into the machine's cache.
    pub fn refresh_collateral(&mut self, vendor: &SimVendor) -> Result<(), PlatformError> {
        Self::store_collateral(&self.dir, vendor)?;
        *self = Self::open(&self.dir)?;
        Ok(())
    }

    /// Opens a machine directory.
    pub fn open(dir: &Path) -> Result<Self, PlatformError> {
        let info_path = dir.join(files::INFO);
        if !info_path.exists() {
            return Err(PlatformError::bad_state(
                &info_path,
                "missing: this directory holds no simulated machine (run `veritee platform init --dir DIR --vendor VENDOR`)",
            ));
        }
        let info: MachineInfo = load_json(&info_path)?;
        let mut machine_id = [0u8; 16];
        hex::decode_to_slice(&info.machine_id, &mut machine_id)
            .map_err(|e| PlatformError::bad_state(&info_path, e))?;
        let attestation_key = load_private_key(&dir.join(files::ATTESTATION_KEY))?;
        let root_path = dir.join(files::SEALING_ROOT);
        let root_bytes = veritee_crypto::SecretBytes::new(fsutil::read(&root_path)?);
        let mut sealing_root = Confidential::new([0u8; 32]);
        if root_bytes.len() != 32 {
            return Err(PlatformError::bad_state(
                &root_path,
                format!("{} bytes, expected 32", root_bytes.len()),
            ));
        }
        sealing_root
            .expose_mut()
            .copy_from_slice(root_bytes.expose());
        let certificate = pem_der_blocks(&dir.join(files::CERT), "CERTIFICATE")?
            .into_iter()
            .next()
            .ok_or_else(|| PlatformError::bad_state(&dir.join(files::CERT), "no certificate"))?;
        let cdir = dir.join(files::COLLATERAL_DIR);
        let mut crls = pem_der_blocks(&cdir.join("root.crl.pem"), "X509 CRL")?;
        crls.extend(pem_der_blocks(
            &cdir.join("platform-ca.crl.pem"),
            "X509 CRL",
        )?);
        let inner = MachineSecrets {
            dir: dir.to_path_buf(),
            machine_id,
            tcb_svn: info.tcb_svn,
            attestation_key,
            sealing_root,
            certificate,
            ca_certificates: pem_der_blocks(&dir.join(files::PLATFORM_CA), "CERTIFICATE")?,
            crls,
            tcb_infos: vec![fsutil::read(&cdir.join("tcb-info.json"))?],
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            info,
            inner: Arc::new(inner),
        })
    }

    /// Public facts about the machine.
    pub fn info(&self) -> &MachineInfo {
        &self.info
    }

    /// The machine id.
    pub fn machine_id(&self) -> [u8; 16] {
        self.inner.machine_id
    }

    /// The machine directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads an enclave image, as the hardware would: checks its signature and fixes
    /// its identity. The enclave's measurement is the image's.
    pub fn launch(&self, image: &super::EnclaveImage) -> Result<SimEnclave, PlatformError> {
        SimEnclave::new(Arc::clone(&self.inner), image)
    }
}
