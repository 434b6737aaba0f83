//! Intel SGX enclaves under Occlum, through its `/dev/sgx` device.
//!
//! Occlum has no key files: an application asks for quotes and sealing keys with
//! `ioctl()`s on `/dev/sgx` (`SGXIOC_GEN_DCAP_QUOTE`, `SGXIOC_GET_KEY`; the calls are
//! in `veritee-occlum-sys`, the only unsafe code this backend needs). `SGXIOC_GET_KEY`
//! passes an `sgx_key_request_t` to EGETKEY as it is, so unlike Gramine's key files it
//! can derive the key of an older ISVSVN: [`Platform::sealing_key_at`] follows the
//! trait's rule in full (own and older versions, never newer; EGETKEY refuses newer).
//!
//! ```text
//! sgx_key_request_t (512 bytes, Intel SGX SDK sgx_key.h)
//! offset  size  field
//! 0x000      2  KEYNAME (u16 LE): 4, seal key
//! 0x002      2  KEYPOLICY (u16 LE): 1 MRENCLAVE, 2 MRSIGNER
//! 0x004      2  ISVSVN (u16 LE)
//! 0x006      2  reserved, zero
//! 0x008     16  CPUSVN
//! 0x018     16  ATTRIBUTEMASK: flags (u64 LE), XFRM (u64 LE)
//! 0x028     32  KEYID
//! 0x048      4  MISCMASK (u32 LE)
//! 0x04C      2  CONFIGSVN (u16 LE)
//! 0x04E    434  reserved, zero
//! ```
//!
//! The request is the SGX SDK's `sgx_seal_data` one: the attribute mask
//! `TSEAL_DEFAULT_FLAGSMASK` binds INITTED and DEBUG (a debug build of the same code
//! gets another key) and the MISCSELECT mask `TSEAL_DEFAULT_MISCMASK`. CPUSVN is the
//! CPU's current one, read from the enclave's own quote at start, as Gramine does: a
//! microcode update that raises it changes the key, so data sealed before must be moved
//! (or its root released by a peer) across such an update.
//!
//! The environment variable that binds the launch configuration
//! (`VERITEE_LAUNCH_CONFIG_SHA256`) must come from `env.default` in Occlum.json, which
//! the build measures into MRENCLAVE, and not be listed in `env.untrusted`, whose values
//! the host sets at `occlum run`.

use super::layout;
use crate::{EnclaveIdentity, Platform, PlatformError, SealPolicy};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use veritee_attest::{REPORT_DATA_LEN, ReportData, TeeKind};
use veritee_crypto::Confidential;
use veritee_crypto::aead::AeadKey;

pub use veritee_occlum_sys::{KEY_LEN, KEY_REQUEST_LEN};

/// Occlum's SGX device inside the LibOS.
pub const DEFAULT_DEVICE: &str = "/dev/sgx";

/// KEYNAME of the seal key.
pub const KEYSELECT_SEAL: u16 = 4;
/// KEYPOLICY bit binding MRENCLAVE.
pub const KEYPOLICY_MRENCLAVE: u16 = 0x0001;
/// KEYPOLICY bit binding MRSIGNER (and ISVPRODID).
pub const KEYPOLICY_MRSIGNER: u16 = 0x0002;
/// The SGX SDK's `TSEAL_DEFAULT_FLAGSMASK`: ATTRIBUTES bits 0 (INITTED), 1 (DEBUG), 3
/// and 56-63 are bound; MODE64BIT, PROVISIONKEY, EINITTOKENKEY, KSS, AEXNOTIFY and the
/// other reserved bits are not.
pub const TSEAL_DEFAULT_FLAGSMASK: u64 = 0xFF00_0000_0000_000B;
/// The SGX SDK's `TSEAL_DEFAULT_MISCMASK`.
pub const TSEAL_DEFAULT_MISCMASK: u32 = 0xF000_0000;
/// The KEYID veritee asks with: fixed, so the same enclave derives the same key after a
/// restart (veritee diversifies keys per blob by HKDF above this one).
pub const KEY_ID: [u8; 32] = *b"veritee occlum sealing key v1\0\0\0";

const KEYNAME_OFFSET: usize = 0x000;
const KEYPOLICY_OFFSET: usize = 0x002;
const ISVSVN_OFFSET: usize = 0x004;
const RESERVED1_OFFSET: usize = 0x006;
const CPUSVN_OFFSET: usize = 0x008;
const ATTRIBUTEMASK_OFFSET: usize = 0x018;
const KEYID_OFFSET: usize = 0x028;
const MISCMASK_OFFSET: usize = 0x048;
const CONFIGSVN_OFFSET: usize = 0x04C;
const RESERVED2_OFFSET: usize = 0x04E;

// The fields are contiguous, in the order drawn above, and end at 512 bytes.
const _: () = assert!(KEYNAME_OFFSET + 2 == KEYPOLICY_OFFSET);
const _: () = assert!(KEYPOLICY_OFFSET + 2 == ISVSVN_OFFSET);
const _: () = assert!(ISVSVN_OFFSET + 2 == RESERVED1_OFFSET);
const _: () = assert!(RESERVED1_OFFSET + 2 == CPUSVN_OFFSET);
const _: () = assert!(CPUSVN_OFFSET + layout::sgx::CPUSVN_LEN == ATTRIBUTEMASK_OFFSET);
const _: () = assert!(ATTRIBUTEMASK_OFFSET + 16 == KEYID_OFFSET);
const _: () = assert!(KEYID_OFFSET + KEY_ID.len() == MISCMASK_OFFSET);
const _: () = assert!(MISCMASK_OFFSET + 4 == CONFIGSVN_OFFSET);
const _: () = assert!(CONFIGSVN_OFFSET + 2 == RESERVED2_OFFSET);
const _: () = assert!(RESERVED2_OFFSET + 434 == KEY_REQUEST_LEN);

const SEAL_SALT: &[u8] = b"veritee-occlum-seal-v1";

/// An `sgx_key_request_t`: the fields veritee sets; the rest is zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest {
    /// KEYNAME.
    pub key_name: u16,
    /// KEYPOLICY.
    pub key_policy: u16,
    /// ISVSVN of the key.
    pub isv_svn: u16,
    /// CPUSVN of the key.
    pub cpu_svn: [u8; layout::sgx::CPUSVN_LEN],
    /// ATTRIBUTEMASK's flags.
    pub attribute_flags_mask: u64,
    /// ATTRIBUTEMASK's XFRM.
    pub attribute_xfrm_mask: u64,
    /// KEYID.
    pub key_id: [u8; 32],
    /// MISCMASK.
    pub misc_mask: u32,
    /// CONFIGSVN.
    pub config_svn: u16,
}

impl KeyRequest {
    /// The request for the seal key of `policy` at `isv_svn` and `cpu_svn`.
    pub fn seal(policy: SealPolicy, isv_svn: u16, cpu_svn: [u8; layout::sgx::CPUSVN_LEN]) -> Self {
        Self {
            key_name: KEYSELECT_SEAL,
            key_policy: match policy {
                SealPolicy::Measurement => KEYPOLICY_MRENCLAVE,
                SealPolicy::Signer => KEYPOLICY_MRSIGNER,
            },
            isv_svn,
            cpu_svn,
            attribute_flags_mask: TSEAL_DEFAULT_FLAGSMASK,
            attribute_xfrm_mask: 0,
            key_id: KEY_ID,
            misc_mask: TSEAL_DEFAULT_MISCMASK,
            config_svn: 0,
        }
    }

    /// The 512 bytes EGETKEY reads.
    pub fn encode(&self) -> [u8; KEY_REQUEST_LEN] {
        let mut out = [0u8; KEY_REQUEST_LEN];
        out[KEYNAME_OFFSET..KEYPOLICY_OFFSET].copy_from_slice(&self.key_name.to_le_bytes());
        out[KEYPOLICY_OFFSET..ISVSVN_OFFSET].copy_from_slice(&self.key_policy.to_le_bytes());
        out[ISVSVN_OFFSET..RESERVED1_OFFSET].copy_from_slice(&self.isv_svn.to_le_bytes());
        out[CPUSVN_OFFSET..ATTRIBUTEMASK_OFFSET].copy_from_slice(&self.cpu_svn);
        out[ATTRIBUTEMASK_OFFSET..ATTRIBUTEMASK_OFFSET + 8]
            .copy_from_slice(&self.attribute_flags_mask.to_le_bytes());
        out[ATTRIBUTEMASK_OFFSET + 8..KEYID_OFFSET]
            .copy_from_slice(&self.attribute_xfrm_mask.to_le_bytes());
        out[KEYID_OFFSET..MISCMASK_OFFSET].copy_from_slice(&self.key_id);
        out[MISCMASK_OFFSET..CONFIGSVN_OFFSET].copy_from_slice(&self.misc_mask.to_le_bytes());
        out[CONFIGSVN_OFFSET..RESERVED2_OFFSET].copy_from_slice(&self.config_svn.to_le_bytes());
        out
    }
}

/// Occlum's `/dev/sgx`: a trait so the backend is tested against a device that
/// answers as the LibOS does.
pub trait OcclumDevice: Send + Sync {
    /// `SGXIOC_GET_KEY`: the key EGETKEY derives for `request`.
    fn get_key(
        &self,
        request: &[u8; KEY_REQUEST_LEN],
    ) -> Result<Confidential<[u8; KEY_LEN]>, PlatformError>;

    /// `SGXIOC_GEN_DCAP_QUOTE`: a DCAP quote over `report_data`.
    fn dcap_quote(&self, report_data: &[u8; REPORT_DATA_LEN]) -> Result<Vec<u8>, PlatformError>;
}

/// The real `/dev/sgx` inside Occlum.
#[derive(Debug)]
pub struct OcclumSgxDevice {
    file: std::fs::File,
    path: PathBuf,
}

impl OcclumSgxDevice {
    /// Opens the device at `path`.
    pub fn open(path: &Path) -> Result<Self, PlatformError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(PlatformError::io("cannot open", path))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl OcclumDevice for OcclumSgxDevice {
    fn get_key(
        &self,
        request: &[u8; KEY_REQUEST_LEN],
    ) -> Result<Confidential<[u8; KEY_LEN]>, PlatformError> {
        let mut key = Confidential::new([0u8; KEY_LEN]);
        veritee_occlum_sys::get_key(&self.file, request, key.expose_mut())
            .map_err(|e| PlatformError::device(&self.path, e))?;
        Ok(key)
    }

    fn dcap_quote(&self, report_data: &[u8; REPORT_DATA_LEN]) -> Result<Vec<u8>, PlatformError> {
        veritee_occlum_sys::dcap_quote(&self.file, report_data)
            .map_err(|e| PlatformError::device(&self.path, e))
    }
}

/// An SGX enclave running under Occlum with DCAP attestation.
pub struct OcclumPlatform {
    device: Arc<dyn OcclumDevice>,
    identity: EnclaveIdentity,
    cpu_svn: [u8; layout::sgx::CPUSVN_LEN],
}

impl core::fmt::Debug for OcclumPlatform {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OcclumPlatform")
            .field("identity", &self.identity)
            .finish()
    }
}

impl OcclumPlatform {
    /// Opens the enclave's platform through `device`: a quote over zero report data
    /// gives MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN, the debug attribute and CPUSVN.
    pub fn new(device: Arc<dyn OcclumDevice>) -> Result<Self, PlatformError> {
        let quote = device.dcap_quote(&[0; REPORT_DATA_LEN])?;
        let own = layout::sgx_quote(&quote)?;
        let cpu_svn = layout::sgx_cpu_svn(&quote)?;
        Ok(Self {
            device,
            identity: own.identity,
            cpu_svn,
        })
    }
}

impl Platform for OcclumPlatform {
    fn tee(&self) -> TeeKind {
        TeeKind::Sgx
    }

    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError> {
        let quote = self.device.dcap_quote(&report_data.0)?;
        let own = layout::sgx_quote(&quote)?;
        layout::note_report_data("Occlum SGX quote", &report_data.0, &own.report_data);
        Ok(quote)
    }

    fn sealing_key_at(
        &self,
        policy: SealPolicy,
        security_version: u16,
        label: &[u8],
    ) -> Result<AeadKey, PlatformError> {
        crate::check_security_version(&self.identity, security_version)?;
        let request = KeyRequest::seal(policy, security_version, self.cpu_svn);
        let raw = self.device.get_key(&request.encode())?;
        super::sealing_key_from(SEAL_SALT, raw.expose(), policy, label)
    }

    fn identity(&self) -> &EnclaveIdentity {
        &self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_encodes_where_egetkey_reads_it() {
        let request = KeyRequest::seal(SealPolicy::Signer, 0x0203, [0x5a; 16]);
        let bytes = request.encode();
        assert_eq!(&bytes[0..8], &[4, 0, 2, 0, 3, 2, 0, 0]);
        assert_eq!(&bytes[8..24], &[0x5a; 16]);
        assert_eq!(&bytes[24..32], &TSEAL_DEFAULT_FLAGSMASK.to_le_bytes());
        assert_eq!(&bytes[32..40], &[0; 8]);
        assert_eq!(&bytes[40..72], &KEY_ID);
        assert_eq!(&bytes[72..76], &[0, 0, 0, 0xf0]);
        assert!(bytes[76..].iter().all(|&b| b == 0));
        // The SDK's masks, byte for byte: flags 0xFF0000000000000B, MISCSELECT 0xF0000000.
        assert_eq!(&bytes[24..32], &[0x0b, 0, 0, 0, 0, 0, 0, 0xff]);
        assert_eq!(KEY_ID.len(), 32);
    }
}
