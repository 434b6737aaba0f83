//! Intel SGX enclaves under Gramine, through its `/dev/attestation` pseudo-filesystem
//! (Gramine documentation, "Attestation and Secret Provisioning", low-level interface):
//!
//! ```text
//! /dev/attestation/
//!     attestation_type          (R)  "none", "epid" or "dcap"; veritee needs "dcap"
//!     user_report_data          (W)  64 bytes that the next report or quote embeds
//!     quote                     (R)  an SGX DCAP quote over the last user_report_data
//!     keys/_sgx_mrenclave       (R)  16-byte SGX sealing key bound to MRENCLAVE
//!     keys/_sgx_mrsigner        (R)  16-byte SGX sealing key bound to MRSIGNER
//! ```
//!
//! The files are per process, so threads of this process must not interleave a write of
//! `user_report_data` with another's read of `quote`: a process-wide lock serializes
//! requests. Gramine warns against using its sealing keys directly for the application's
//! own cryptography as well as for encrypted mounts; veritee never uses them directly but
//! derives a key per policy and label with HKDF-SHA384.
//!
//! Gramine requests its keys with EGETKEY at the enclave's own ISVSVN (and CPUSVN), so
//! they are already bound to the security version, but only to the current one: an
//! enclave here can derive the key of its own version only, and
//! [`Platform::sealing_key_at`] at any other version is [`PlatformError::Unsupported`].
//! A new build therefore cannot open what an older build sealed through this backend;
//! data that must survive an upgrade has to be re-sealed or released by a key broker.

use super::layout;
use super::{read_bounded, read_text, write_attribute};
use crate::{EnclaveIdentity, Platform, PlatformError, SealPolicy};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use veritee_attest::{REPORT_DATA_LEN, ReportData, TeeKind};
use veritee_crypto::aead::AeadKey;

/// Gramine's attestation pseudo-filesystem.
pub const DEFAULT_ROOT: &str = "/dev/attestation";
/// The file naming the attestation scheme.
pub const ATTESTATION_TYPE: &str = "attestation_type";
/// Largest quote accepted (a DCAP quote with its PCK chain is about 5 KiB).
pub const QUOTE_MAX: usize = 64 * 1024;
/// Length of Gramine's SGX sealing keys.
pub const SEALING_KEY_LEN: usize = 16;
/// The key file bound to MRENCLAVE.
pub const MRENCLAVE_KEY: &str = "keys/_sgx_mrenclave";
/// The key file bound to MRSIGNER.
pub const MRSIGNER_KEY: &str = "keys/_sgx_mrsigner";

const SEAL_SALT: &[u8] = b"veritee-gramine-seal-v1";

/// Serializes write(user_report_data) + read(quote) within this process.
static QUOTE_LOCK: Mutex<()> = Mutex::new(());

/// An SGX enclave running under Gramine with DCAP attestation.
#[derive(Debug, Clone)]
pub struct GraminePlatform {
    root: PathBuf,
    identity: EnclaveIdentity,
}

impl GraminePlatform {
    /// Opens `/dev/attestation` at `root`: checks the attestation type is DCAP and
    /// requests a quote over zero report data to learn MRENCLAVE, MRSIGNER, ISVPRODID,
    /// ISVSVN and the debug attribute.
    pub fn open(root: &Path) -> Result<Self, PlatformError> {
        let kind = attestation_type(root)?;
        if kind != "dcap" {
            return Err(PlatformError::Unsupported(format!(
                "Gramine's attestation type is '{kind}'; veritee needs DCAP quotes: set \
                 sgx.remote_attestation = \"dcap\" in the enclave's manifest"
            )));
        }
        let platform = Self {
            root: root.to_path_buf(),
            identity: EnclaveIdentity {
                measurement: Vec::new(),
                signer: None,
                product_id: 0,
                security_version: 0,
                debug: false,
                launch_config: None,
            },
        };
        let quote = platform.quote(&ReportData([0; REPORT_DATA_LEN]))?;
        let own = layout::sgx_quote(&quote)?;
        Ok(Self {
            identity: own.identity,
            ..platform
        })
    }

    fn quote(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError> {
        // A poisoned lock only means another thread panicked between the two file
        // operations; the next write of user_report_data starts over cleanly.
        let _guard = QUOTE_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        write_attribute(&self.root.join("user_report_data"), &report_data.0, false)?;
        let quote = read_bounded(&self.root.join("quote"), QUOTE_MAX)?;
        if quote.is_empty() {
            return Err(PlatformError::device(
                &self.root.join("quote"),
                "Gramine returned an empty quote",
            ));
        }
        Ok(quote)
    }
}

/// Reads a key file into memory that is wiped after use, without reallocating (which
/// would leave copies behind); one byte more than a key is read to detect long files.
fn read_key(path: &Path) -> Result<veritee_crypto::SecretBytes, PlatformError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(PlatformError::io("cannot open", path))?;
    let mut raw = veritee_crypto::SecretBytes::new(Vec::with_capacity(SEALING_KEY_LEN + 1));
    file.take(SEALING_KEY_LEN as u64 + 1)
        .read_to_end(raw.expose_mut())
        .map_err(PlatformError::io("cannot read", path))?;
    Ok(raw)
}

/// The attestation scheme Gramine was configured with ("none", "epid" or "dcap").
pub fn attestation_type(root: &Path) -> Result<String, PlatformError> {
    read_text(&root.join(ATTESTATION_TYPE))
}

impl Platform for GraminePlatform {
    fn tee(&self) -> TeeKind {
        TeeKind::Sgx
    }

    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError> {
        let quote = self.quote(report_data)?;
        let own = layout::sgx_quote(&quote)?;
        layout::note_report_data("Gramine SGX quote", &report_data.0, &own.report_data);
        Ok(quote)
    }

    fn sealing_key_at(
        &self,
        policy: SealPolicy,
        security_version: u16,
        label: &[u8],
    ) -> Result<AeadKey, PlatformError> {
        crate::check_security_version(&self.identity, security_version)?;
        let own = self.identity.security_version;
        if security_version != own {
            return Err(PlatformError::Unsupported(format!(
                "Gramine's key files give only the sealing key of this enclave's own security \
                 version (ISVSVN {own}); the key of security version {security_version} would \
                 need EGETKEY with an older ISVSVN, which /dev/attestation does not offer"
            )));
        }
        let path = self.root.join(match policy {
            SealPolicy::Measurement => MRENCLAVE_KEY,
            SealPolicy::Signer => MRSIGNER_KEY,
        });
        let raw = read_key(&path)?;
        if raw.len() != SEALING_KEY_LEN {
            return Err(PlatformError::bad_state(
                &path,
                format!(
                    "a Gramine sealing key is {SEALING_KEY_LEN} bytes, this holds {}",
                    raw.len()
                ),
            ));
        }
        super::sealing_key_from(SEAL_SALT, raw.expose(), policy, label)
    }

    fn identity(&self) -> &EnclaveIdentity {
        &self.identity
    }
}
