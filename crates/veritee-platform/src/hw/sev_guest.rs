//! SEV-SNP sealing keys from the AMD Secure Processor, through the `SNP_GET_DERIVED_KEY`
//! ioctl of `/dev/sev-guest` (Linux `include/uapi/linux/sev-guest.h`; the firmware's
//! MSG_KEY_REQ / MSG_KEY_RSP, SEV-SNP ABI specification, "Guest Messages").
//!
//! ```text
//! struct snp_derived_key_req (message version 1, 32 bytes)
//! offset  len  field
//! 0x00      4  ROOT_KEY_SELECT      0: the chip's VCEK, 1: the VM root key (VMRK)
//! 0x04      4  reserved             must be zero
//! 0x08      8  GUEST_FIELD_SELECT   which guest fields are mixed into the key
//! 0x10      4  VMPL                 at least the caller's VMPL
//! 0x14      4  GUEST_SVN            at most the SVN the guest was launched with
//! 0x18      8  TCB_VERSION          at most the committed TCB
//!
//! MSG_KEY_RSP (64 bytes, what the ioctl writes back)
//! 0x00      4  STATUS               0 success, 0x16 invalid parameters
//! 0x04     28  reserved
//! 0x20     32  DERIVED_KEY
//! ```
//!
//! [`SnpPlatform`] attests through configfs-tsm ([`super::tsm`]) and seals with a key
//! the firmware derives from the chip's VCEK, the guest's launch MEASUREMENT, its
//! POLICY and a GUEST_SVN. What is chosen, and why:
//! - **Measurement and policy** are always mixed in: another image, or the same image
//!   launched with a weaker policy (debugging allowed, say), gets another key.
//! - **GUEST_SVN** is the requested security version. The firmware refuses an SVN
//!   above the one the guest was launched with, so a build derives the keys of its own
//!   version and every older one, never a newer one: exactly
//!   [`Platform::sealing_key_at`]'s contract.
//! - **The TCB version is not mixed in**: a firmware update would otherwise make every
//!   sealed blob unreadable. TCB freshness is the verifier's to judge, on the evidence.
//! - **No "signer" key.** SNP's family and image IDs are whatever the owner of an ID
//!   block writes, and the derivation does not mix in the ID key's digest, so a key bound
//!   to them could be derived by any guest claiming the same IDs.
//!   [`SealPolicy::Signer`] is therefore [`PlatformError::Unsupported`] here.
//!
//! The ioctl goes through a [`SevGuestDevice`], so the layouts and the firmware's
//! answers are tested against a fake device that checks requests as the firmware does;
//! [`SevGuestFile`] is the real one (the `sev` crate issues the ioctl: it needs unsafe
//! code, which this crate forbids in its own source).

use super::layout;
use super::tsm::{TsmPlatform, TsmProvider};
use crate::{EnclaveIdentity, Platform, PlatformError, SealPolicy};
use std::path::Path;
use std::sync::Arc;
use veritee_attest::{REPORT_DATA_LEN, ReportData, TeeKind};
use veritee_crypto::Confidential;
use veritee_crypto::aead::AeadKey;

/// The guest device on a real SEV-SNP guest.
pub const DEFAULT_DEVICE: &str = "/dev/sev-guest";
/// Length of `struct snp_derived_key_req` (message version 1).
pub const DERIVED_KEY_REQUEST_LEN: usize = 32;
/// Length of MSG_KEY_RSP.
pub const KEY_RESPONSE_LEN: usize = 64;
/// Length of the derived key.
pub const DERIVED_KEY_LEN: usize = 32;
/// MSG_KEY_RSP STATUS for invalid parameters.
pub const STATUS_INVALID_PARAMS: u32 = 0x16;

/// GUEST_FIELD_SELECT bits (SEV-SNP ABI, MSG_KEY_REQ).
pub mod field {
    /// The guest POLICY.
    pub const GUEST_POLICY: u64 = 1 << 0;
    /// The IMAGE_ID of the ID block.
    pub const IMAGE_ID: u64 = 1 << 1;
    /// The FAMILY_ID of the ID block.
    pub const FAMILY_ID: u64 = 1 << 2;
    /// The launch MEASUREMENT.
    pub const MEASUREMENT: u64 = 1 << 3;
    /// The GUEST_SVN of the request.
    pub const GUEST_SVN: u64 = 1 << 4;
    /// The TCB_VERSION of the request.
    pub const TCB_VERSION: u64 = 1 << 5;
    /// Every bit defined for message version 1; the rest must be zero.
    pub const DEFINED: u64 = (1 << 6) - 1;
}

mod offset {
    pub const ROOT_KEY_SELECT: usize = 0x00;
    pub const RESERVED: usize = 0x04;
    pub const GUEST_FIELD_SELECT: usize = 0x08;
    pub const VMPL: usize = 0x10;
    pub const GUEST_SVN: usize = 0x14;
    pub const TCB_VERSION: usize = 0x18;
    pub const STATUS: usize = 0x00;
    pub const DERIVED_KEY: usize = 0x20;

    const _: () = assert!(TCB_VERSION + 8 == super::DERIVED_KEY_REQUEST_LEN);
    const _: () = assert!(DERIVED_KEY + super::DERIVED_KEY_LEN == super::KEY_RESPONSE_LEN);
    const _: () = assert!(RESERVED + 4 == GUEST_FIELD_SELECT);
}

/// What is asked of the firmware: `struct snp_derived_key_req`, message version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerivedKeyRequest {
    /// 0 for the chip's VCEK, 1 for the VM root key.
    pub root_key_select: u32,
    /// [`field`] bits.
    pub guest_field_select: u64,
    /// The VMPL mixed in; the firmware requires at least the caller's.
    pub vmpl: u32,
    /// The guest SVN mixed in; the firmware requires at most the launch's.
    pub guest_svn: u32,
    /// The TCB version mixed in; the firmware requires at most the committed TCB.
    pub tcb_version: u64,
}

impl DerivedKeyRequest {
    /// The request as the kernel takes it.
    pub fn to_bytes(&self) -> [u8; DERIVED_KEY_REQUEST_LEN] {
        let mut out = [0u8; DERIVED_KEY_REQUEST_LEN];
        let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
        put(offset::ROOT_KEY_SELECT, &self.root_key_select.to_le_bytes());
        put(
            offset::GUEST_FIELD_SELECT,
            &self.guest_field_select.to_le_bytes(),
        );
        put(offset::VMPL, &self.vmpl.to_le_bytes());
        put(offset::GUEST_SVN, &self.guest_svn.to_le_bytes());
        put(offset::TCB_VERSION, &self.tcb_version.to_le_bytes());
        out
    }

    /// Reads a request, refusing a non-zero reserved field (as the firmware does).
    pub fn from_bytes(bytes: &[u8; DERIVED_KEY_REQUEST_LEN]) -> Result<Self, PlatformError> {
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(b)
        };
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        if u32_at(offset::RESERVED) != 0 {
            return Err(PlatformError::InvalidInput(
                "a derived-key request's reserved field must be zero".into(),
            ));
        }
        Ok(Self {
            root_key_select: u32_at(offset::ROOT_KEY_SELECT),
            guest_field_select: u64_at(offset::GUEST_FIELD_SELECT),
            vmpl: u32_at(offset::VMPL),
            guest_svn: u32_at(offset::GUEST_SVN),
            tcb_version: u64_at(offset::TCB_VERSION),
        })
    }
}

/// Builds a MSG_KEY_RSP: `status`, then `key` (zero unless the status is 0).
pub fn key_response(
    status: u32,
    key: &[u8; DERIVED_KEY_LEN],
) -> Confidential<[u8; KEY_RESPONSE_LEN]> {
    let mut out = Confidential::new([0u8; KEY_RESPONSE_LEN]);
    out.expose_mut()[offset::STATUS..offset::STATUS + 4].copy_from_slice(&status.to_le_bytes());
    if status == 0 {
        out.expose_mut()[offset::DERIVED_KEY..].copy_from_slice(key);
    }
    out
}

/// Reads a MSG_KEY_RSP: the key, or an error naming the firmware's status.
pub fn read_key_response(
    device: &Path,
    response: &Confidential<[u8; KEY_RESPONSE_LEN]>,
) -> Result<Confidential<[u8; DERIVED_KEY_LEN]>, PlatformError> {
    let bytes = response.expose();
    let mut status = [0u8; 4];
    status.copy_from_slice(&bytes[offset::STATUS..offset::STATUS + 4]);
    match u32::from_le_bytes(status) {
        0 => {
            let mut key = Confidential::new([0u8; DERIVED_KEY_LEN]);
            key.expose_mut()
                .copy_from_slice(&bytes[offset::DERIVED_KEY..]);
            Ok(key)
        }
        STATUS_INVALID_PARAMS => Err(PlatformError::device(
            device,
            "the firmware refused the derived-key request as invalid (status 0x16): a VMPL \
             below the guest's, a GUEST_SVN above its launch SVN, a TCB above the committed \
             one, or a reserved bit set",
        )),
        other => Err(PlatformError::device(
            device,
            format!("the firmware answered the derived-key request with status {other:#x}"),
        )),
    }
}

/// The `SNP_GET_DERIVED_KEY` ioctl: the request bytes in, MSG_KEY_RSP out. An ioctl
/// that fails (the kernel's errno, with the firmware's and the hypervisor's error codes)
/// is a [`PlatformError::Device`]; a request the firmware refuses still comes back as a
/// response, with a non-zero STATUS, as the kernel returns it.
pub trait SevGuestDevice: Send + Sync {
    /// The device's path, for error messages.
    fn path(&self) -> &Path;

    /// Issues `SNP_GET_DERIVED_KEY` with message version 1.
    fn get_derived_key(
        &self,
        request: &[u8; DERIVED_KEY_REQUEST_LEN],
    ) -> Result<Confidential<[u8; KEY_RESPONSE_LEN]>, PlatformError>;
}

/// The real `/dev/sev-guest`.
pub struct SevGuestFile {
    path: std::path::PathBuf,
    firmware: std::sync::Mutex<sev::firmware::guest::Firmware>,
}

impl core::fmt::Debug for SevGuestFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SevGuestFile")
            .field("path", &self.path)
            .finish()
    }
}

impl SevGuestFile {
    /// Opens [`DEFAULT_DEVICE`] (the `sev` crate opens that path and no other).
    pub fn open() -> Result<Self, PlatformError> {
        let path = Path::new(DEFAULT_DEVICE);
        let firmware = sev::firmware::guest::Firmware::open().map_err(PlatformError::io(
            "cannot open the SEV-SNP guest device",
            path,
        ))?;
        Ok(Self {
            path: path.to_path_buf(),
            firmware: std::sync::Mutex::new(firmware),
        })
    }
}

impl SevGuestDevice for SevGuestFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn get_derived_key(
        &self,
        request: &[u8; DERIVED_KEY_REQUEST_LEN],
    ) -> Result<Confidential<[u8; KEY_RESPONSE_LEN]>, PlatformError> {
        use sev::firmware::guest::{DerivedKey, GuestFieldSelect};
        let request = DerivedKeyRequest::from_bytes(request)?;
        let mut fields = GuestFieldSelect::default();
        fields.set_guest_policy(request.guest_field_select & field::GUEST_POLICY != 0);
        fields.set_image_id(request.guest_field_select & field::IMAGE_ID != 0);
        fields.set_family_id(request.guest_field_select & field::FAMILY_ID != 0);
        fields.set_measurement(request.guest_field_select & field::MEASUREMENT != 0);
        fields.set_svn(request.guest_field_select & field::GUEST_SVN != 0);
        fields.set_tcb_version(request.guest_field_select & field::TCB_VERSION != 0);
        let asked = DerivedKey::new(
            request.root_key_select == 1,
            fields,
            request.vmpl,
            request.guest_svn,
            request.tcb_version,
            None,
        );
        // A poisoned lock only means another thread panicked mid-ioctl; the device
        // holds no state between requests.
        let mut firmware = self
            .firmware
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = Confidential::new(firmware.get_derived_key(Some(1), asked).map_err(|e| {
            PlatformError::device(&self.path, format!("SNP_GET_DERIVED_KEY failed: {e}"))
        })?);
        Ok(key_response(0, key.expose()))
    }
}

const SEAL_SALT: &[u8] = b"veritee-snp-seal-v1";
/// The root key veritee seals under: the chip's VCEK-derived root, so a blob opens on
/// this machine only.
const ROOT_KEY_VCEK: u32 = 0;

/// An SEV-SNP guest: evidence through configfs-tsm, sealing through `/dev/sev-guest`.
pub struct SnpPlatform {
    attester: TsmPlatform,
    device: Arc<dyn SevGuestDevice>,
    vmpl: u32,
}

impl core::fmt::Debug for SnpPlatform {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SnpPlatform")
            .field("attester", &self.attester)
            .field("device", &self.device.path())
            .field("vmpl", &self.vmpl)
            .finish()
    }
}

impl SnpPlatform {
    /// An SNP guest attesting through `attester` (a configfs-tsm `sev_guest` provider)
    /// and sealing through `device`; reads the guest's VMPL from a report over zero
    /// report data, and checks the device answers.
    pub fn new(
        attester: TsmPlatform,
        device: Arc<dyn SevGuestDevice>,
    ) -> Result<Self, PlatformError> {
        if attester.provider() != TsmProvider::SevGuest {
            return Err(PlatformError::InvalidInput(format!(
                "SEV-SNP sealing needs an SEV-SNP guest; configfs-tsm's provider is {}",
                attester.provider().name()
            )));
        }
        let report = attester.evidence(&ReportData([0; REPORT_DATA_LEN]))?;
        let vmpl = layout::snp_vmpl(&report)?;
        let platform = Self {
            attester,
            device,
            vmpl,
        };
        // A device that cannot derive keys is found now, not at the first seal.
        platform.derived_key(platform.identity().security_version)?;
        Ok(platform)
    }

    /// The guest's VMPL, read from its report.
    pub fn vmpl(&self) -> u32 {
        self.vmpl
    }

    fn derived_key(
        &self,
        security_version: u16,
    ) -> Result<Confidential<[u8; DERIVED_KEY_LEN]>, PlatformError> {
        let request = DerivedKeyRequest {
            root_key_select: ROOT_KEY_VCEK,
            guest_field_select: field::GUEST_POLICY | field::MEASUREMENT | field::GUEST_SVN,
            vmpl: self.vmpl,
            guest_svn: u32::from(security_version),
            tcb_version: 0,
        };
        let response = self.device.get_derived_key(&request.to_bytes())?;
        read_key_response(self.device.path(), &response)
    }
}

impl Platform for SnpPlatform {
    fn tee(&self) -> TeeKind {
        TeeKind::SevSnp
    }

    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError> {
        self.attester.evidence(report_data)
    }

    fn sealing_key_at(
        &self,
        policy: SealPolicy,
        security_version: u16,
        label: &[u8],
    ) -> Result<AeadKey, PlatformError> {
        if policy == SealPolicy::Signer {
            return Err(PlatformError::Unsupported(
                "SEV-SNP derives no key bound to a signer: the family and image IDs are whatever \
                 an ID block's owner writes and the ID key's digest is not mixed in; seal to the \
                 measurement"
                    .into(),
            ));
        }
        crate::check_security_version(self.identity(), security_version)?;
        let root = self.derived_key(security_version)?;
        super::sealing_key_from(SEAL_SALT, root.expose(), policy, label)
    }

    fn identity(&self) -> &EnclaveIdentity {
        self.attester.identity()
    }
}
