//! Real TEE hardware behind the [`Platform`] trait.
//!
//! | backend | interface | evidence | sealing |
//! |---|---|---|---|
//! | [`tsm::TsmPlatform`] | Linux configfs-tsm (`/sys/kernel/config/tsm/report`, Linux >= 6.7) | TDX quote | unsupported (a node seals under a root a peer releases: `veritee_enclave::sealing_root`) |
//! | [`sev_guest::SnpPlatform`] | configfs-tsm, and `/dev/sev-guest` for keys | SEV-SNP report | firmware-derived key bound to MEASUREMENT, POLICY and GUEST_SVN |
//! | [`gramine::GraminePlatform`] | Gramine's `/dev/attestation` (SGX, DCAP) | SGX quote | MRENCLAVE / MRSIGNER keys, own security version only |
//! | [`occlum::OcclumPlatform`] | Occlum's `/dev/sgx` ioctls (SGX, DCAP) | SGX quote | EGETKEY MRENCLAVE / MRSIGNER keys, own and older security versions |
//! | [`nitro::NitroPlatform`] | `/dev/nsm` (AWS Nitro Enclaves) | COSE-signed attestation document | unsupported (as for TDX) |
//!
//! None keeps a [`crate::MonotonicCounter`]: [`Platform::monotonic_counter`] is
//! [`crate::PlatformError::Unsupported`] on all of them until a TPM NV counter or an
//! attested peer enclave backs it.
//!
//! Every backend takes the path of its interface as a parameter, so tests run them
//! against fake device trees and fake devices; [`HardwareRoots::system`] names the real
//! paths, [`probe`] tells which is present, [`open`] opens the one asked for (or names
//! the device that is missing) and [`detect`] does both. Each backend learns the
//! enclave's identity from evidence it requests over zero report data when it is
//! opened ([`layout`]).

pub mod gramine;
pub mod layout;
pub mod nitro;
pub mod occlum;
pub mod sev_guest;
pub mod snp_certs;
pub mod tsm;

use crate::{Platform, PlatformError};
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where [`detect`] looks for each TEE interface.
#[derive(Clone)]
pub struct HardwareRoots {
    /// The configfs-tsm report directory.
    pub tsm_report: PathBuf,
    /// Options for configfs-tsm requests.
    pub tsm_options: tsm::TsmOptions,
    /// Gramine's attestation pseudo-filesystem.
    pub gramine: PathBuf,
    /// Occlum's SGX device.
    pub occlum: PathBuf,
    /// How to reach Occlum's SGX device: `None` opens `occlum` itself
    /// ([`occlum::OcclumSgxDevice`]) when it is there.
    pub occlum_device: Option<Arc<dyn occlum::OcclumDevice>>,
    /// The Nitro Secure Module device.
    pub nsm: PathBuf,
    /// The SEV-SNP guest device (sealing keys).
    pub sev_guest: PathBuf,
    /// How to issue SEV-SNP guest requests: `None` opens the device itself
    /// ([`sev_guest::SevGuestFile`]) when `sev_guest` exists.
    pub sev_guest_device: Option<Arc<dyn sev_guest::SevGuestDevice>>,
    /// How to talk to the NSM when `nsm` exists: `None` opens the device itself
    /// ([`nitro::NsmDevice`], which needs the `nitro-nsm` feature).
    pub nsm_transport: Option<Arc<dyn nitro::NsmTransport>>,
}

impl core::fmt::Debug for HardwareRoots {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HardwareRoots")
            .field("tsm_report", &self.tsm_report)
            .field("tsm_options", &self.tsm_options)
            .field("gramine", &self.gramine)
            .field("occlum", &self.occlum)
            .field(
                "occlum_device",
                &self.occlum_device.as_ref().map(|_| "custom"),
            )
            .field("nsm", &self.nsm)
            .field(
                "nsm_transport",
                &self.nsm_transport.as_ref().map(|_| "custom"),
            )
            .field("sev_guest", &self.sev_guest)
            .field(
                "sev_guest_device",
                &self.sev_guest_device.as_ref().map(|_| "custom"),
            )
            .finish()
    }
}

impl HardwareRoots {
    /// The paths on a real machine.
    pub fn system() -> Self {
        Self::under(Path::new("/"))
    }

    /// The system paths below `prefix` (e.g. a temporary directory holding a fake tree).
    pub fn under(prefix: &Path) -> Self {
        let at = |p: &str| prefix.join(p.trim_start_matches('/'));
        Self {
            tsm_report: at(tsm::DEFAULT_ROOT),
            tsm_options: tsm::TsmOptions::default(),
            gramine: at(gramine::DEFAULT_ROOT),
            occlum: at(occlum::DEFAULT_DEVICE),
            occlum_device: None,
            nsm: at(nitro::DEFAULT_DEVICE),
            nsm_transport: None,
            sev_guest: at(sev_guest::DEFAULT_DEVICE),
            sev_guest_device: None,
        }
    }
}

/// A hardware TEE veritee runs on (the simulator is not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Intel SGX under Gramine or Occlum.
    Sgx,
    /// Intel TDX, through configfs-tsm.
    Tdx,
    /// AMD SEV-SNP: configfs-tsm for evidence, `/dev/sev-guest` for sealing keys.
    Snp,
    /// AWS Nitro Enclaves, through `/dev/nsm`.
    Nitro,
}

impl Backend {
    /// Every backend, in the order [`probe`] looks for them.
    pub const ALL: [Backend; 4] = [Self::Tdx, Self::Snp, Self::Sgx, Self::Nitro];

    /// The name `veritee node --tee` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sgx => "sgx",
            Self::Tdx => "tdx",
            Self::Snp => "snp",
            Self::Nitro => "nitro",
        }
    }

    /// The kind of evidence it gives.
    pub fn tee(self) -> veritee_attest::TeeKind {
        use veritee_attest::TeeKind;
        match self {
            Self::Sgx => TeeKind::Sgx,
            Self::Tdx => TeeKind::Tdx,
            Self::Snp => TeeKind::SevSnp,
            Self::Nitro => TeeKind::Nitro,
        }
    }

    /// The backend `name` names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// Which TEE this program runs in, without opening it: configfs-tsm's provider (TDX,
/// SEV-SNP), Gramine's `/dev/attestation` or Occlum's `/dev/sgx` (SGX), then `/dev/nsm`
/// (Nitro).
///
/// A configfs-tsm directory without a registered provider, or with one veritee does
/// not know, counts as absent and is mentioned in the [`PlatformError::NoHardware`]
/// message, which names every place looked at.
pub fn probe(roots: &HardwareRoots) -> Result<Backend, PlatformError> {
    let mut notes = Vec::new();
    if roots.tsm_report.is_dir() {
        let configfs = tsm::ConfigfsTsm::new(&roots.tsm_report, roots.tsm_options.clone());
        match configfs.provider_name() {
            Ok(name) => match tsm::TsmProvider::from_name(&name) {
                Some(tsm::TsmProvider::TdxGuest) => return Ok(Backend::Tdx),
                Some(tsm::TsmProvider::SevGuest) => return Ok(Backend::Snp),
                None => notes.push(format!(
                    "{} has provider '{name}', which veritee does not support",
                    roots.tsm_report.display()
                )),
            },
            Err(e) => notes.push(format!(
                "{} is present but unusable ({e})",
                roots.tsm_report.display()
            )),
        }
    }
    if roots.gramine.join(gramine::ATTESTATION_TYPE).exists() || occlum_present(roots) {
        return Ok(Backend::Sgx);
    }
    if roots.nsm.exists() {
        return Ok(Backend::Nitro);
    }
    let mut message = format!(
        "looked for {} (configfs-tsm), {} (Gramine SGX), {} (Occlum SGX), {} (Nitro)",
        roots.tsm_report.display(),
        roots.gramine.display(),
        roots.occlum.display(),
        roots.nsm.display()
    );
    for note in notes {
        message.push_str("; ");
        message.push_str(&note);
    }
    Err(PlatformError::NoHardware(message))
}

/// Opens `backend`; if its interface is missing, the error names the device or
/// directory that is not there. An interface that is present but cannot be used
/// (Gramine without DCAP, `/dev/nsm` without the `nitro-nsm` feature, a failing quote)
/// gives its own error.
pub fn open(backend: Backend, roots: &HardwareRoots) -> Result<Box<dyn Platform>, PlatformError> {
    let missing = |path: &Path, what: &str| {
        PlatformError::NoHardware(format!(
            "--tee {} needs {what} at {}, which is not there",
            backend.name(),
            path.display()
        ))
    };
    match backend {
        Backend::Tdx | Backend::Snp => {
            if !roots.tsm_report.is_dir() {
                return Err(missing(
                    &roots.tsm_report,
                    "configfs-tsm (Linux 6.7 or later)",
                ));
            }
            let configfs = tsm::ConfigfsTsm::new(&roots.tsm_report, roots.tsm_options.clone());
            let platform = tsm::TsmPlatform::from_configfs(configfs)?;
            let wanted = match backend {
                Backend::Tdx => tsm::TsmProvider::TdxGuest,
                _ => tsm::TsmProvider::SevGuest,
            };
            if platform.provider() != wanted {
                return Err(PlatformError::NoHardware(format!(
                    "--tee {} needs configfs-tsm's {} provider; {} has {}",
                    backend.name(),
                    wanted.name(),
                    roots.tsm_report.display(),
                    platform.provider().name()
                )));
            }
            if backend == Backend::Tdx {
                return Ok(Box::new(platform));
            }
            let device: Arc<dyn sev_guest::SevGuestDevice> = match &roots.sev_guest_device {
                Some(device) => Arc::clone(device),
                // The sev crate opens /dev/sev-guest and no other path.
                None if roots.sev_guest == Path::new(sev_guest::DEFAULT_DEVICE)
                    && roots.sev_guest.exists() =>
                {
                    Arc::new(sev_guest::SevGuestFile::open()?)
                }
                None => {
                    return Err(missing(
                        &roots.sev_guest,
                        "the SEV-SNP guest device (sealing keys come from its SNP_GET_DERIVED_KEY)",
                    ));
                }
            };
            Ok(Box::new(sev_guest::SnpPlatform::new(platform, device)?))
        }
        Backend::Sgx => {
            if roots.gramine.join(gramine::ATTESTATION_TYPE).exists() {
                return Ok(Box::new(gramine::GraminePlatform::open(&roots.gramine)?));
            }
            let device: Arc<dyn occlum::OcclumDevice> = match &roots.occlum_device {
                Some(device) => Arc::clone(device),
                None if occlum_present(roots) => {
                    Arc::new(occlum::OcclumSgxDevice::open(&roots.occlum)?)
                }
                None => {
                    return Err(PlatformError::NoHardware(format!(
                        "--tee sgx needs Gramine's attestation interface at {} or Occlum's SGX \
                         device at {}, which are not there",
                        roots.gramine.display(),
                        roots.occlum.display()
                    )));
                }
            };
            Ok(Box::new(occlum::OcclumPlatform::new(device)?))
        }
        Backend::Nitro => {
            let transport: Arc<dyn nitro::NsmTransport> = match &roots.nsm_transport {
                Some(t) => Arc::clone(t),
                None if roots.nsm.exists() => Arc::new(nitro::NsmDevice::open(&roots.nsm)?),
                None => return Err(missing(&roots.nsm, "the Nitro Secure Module")),
            };
            Ok(Box::new(nitro::NitroPlatform::new(transport)?))
        }
    }
}

/// Whether Occlum's `/dev/sgx` is there: a character device that answers Occlum's
/// harmless `SGXIOC_GET_DCAP_QUOTE_SIZE`. On an SGX host `/dev/sgx` may be the driver's
/// directory, or (older out-of-tree drivers) a device of the driver's own, which does
/// not answer Occlum's ioctls.
fn occlum_present(roots: &HardwareRoots) -> bool {
    use std::os::unix::fs::FileTypeExt;
    if roots.occlum_device.is_some() {
        return true;
    }
    let is_device = fs::metadata(&roots.occlum).is_ok_and(|m| m.file_type().is_char_device());
    is_device
        && fs::File::open(&roots.occlum)
            .and_then(|device| veritee_occlum_sys::dcap_quote_size(&device))
            .is_ok()
}

/// Finds the TEE this program runs in and opens it: [`probe`], then [`open`].
pub fn detect(roots: &HardwareRoots) -> Result<Box<dyn Platform>, PlatformError> {
    open(probe(roots)?, roots)
}

/// The sealing key for `policy` and `label` from a hardware key `root`: HKDF-SHA384
/// under a per-backend `salt`, so a hardware key never serves directly as veritee's.
/// (Also how a root released by a peer becomes keys: `veritee_enclave::sealing_root`.)
pub fn sealing_key_from(
    salt: &[u8],
    root: &[u8],
    policy: crate::SealPolicy,
    label: &[u8],
) -> Result<veritee_crypto::aead::AeadKey, PlatformError> {
    let mut key = veritee_crypto::Confidential::new([0u8; 32]);
    veritee_crypto::hkdf::derive_into(
        veritee_crypto::hkdf::HkdfHash::Sha384,
        salt,
        root,
        &[&[policy.code()], label],
        key.expose_mut(),
    )?;
    Ok(veritee_crypto::aead::AeadKey::from_array(key))
}

/// Reads at most `limit` bytes of `path`; more is an error naming the limit.
pub(crate) fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, PlatformError> {
    let file = fs::File::open(path).map_err(PlatformError::io("cannot open", path))?;
    let mut out = Vec::new();
    file.take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(PlatformError::io("cannot read", path))?;
    if out.len() > limit {
        return Err(PlatformError::device(
            path,
            format!("holds more than the {limit} bytes accepted"),
        ));
    }
    Ok(out)
}

/// Reads a short text attribute (a name or a number), without surrounding whitespace.
pub(crate) fn read_text(path: &Path) -> Result<String, PlatformError> {
    let bytes = read_bounded(path, 256)?;
    let text =
        String::from_utf8(bytes).map_err(|_| PlatformError::device(path, "is not UTF-8 text"))?;
    Ok(text.trim().to_string())
}

/// Writes `bytes` to an existing attribute or pseudo-file in one `write`, creating it
/// only when `create` (configfs accepts `O_CREAT` on its attributes; Gramine's
/// pseudo-files are opened exactly as its documentation shows, write-only).
pub(crate) fn write_attribute(
    path: &Path,
    bytes: &[u8],
    create: bool,
) -> Result<(), PlatformError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)
        .map_err(PlatformError::io("cannot open for writing", path))?;
    file.write_all(bytes)
        .map_err(PlatformError::io("cannot write", path))
}

/// Waits until `path` exists, for at most `settle`. Kernel and Gramine interfaces create
/// their files at once, so on hardware this returns immediately; the wait only lets an
/// interface emulated in user space (a test's fake device tree) catch up.
pub(crate) fn wait_for(path: &Path, settle: Duration, what: &str) -> Result<(), PlatformError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match fs::symlink_metadata(path) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if start.elapsed() >= settle {
                    return Err(PlatformError::device(
                        path,
                        format!("{what} did not appear within {} ms", settle.as_millis()),
                    ));
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(PlatformError::io("cannot look up", path)(e)),
        }
    }
}
