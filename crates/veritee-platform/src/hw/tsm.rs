//! Intel TDX and AMD SEV-SNP evidence through Linux configfs-tsm (Linux >= 6.7).
//!
//! The kernel ABI (Documentation/ABI/testing/configfs-tsm) is a configfs directory:
//!
//! ```text
//! /sys/kernel/config/tsm/report/$name/   mkdir: a new report request; rmdir: drop it
//!     inblob        (WO) up to 64 bytes of report data
//!     privlevel     (WO) SEV-SNP VMPL to report at, >= privlevel_floor, <= 3
//!     provider      (RO) "tdx_guest" or "sev_guest": the format of outblob
//!     generation    (RO) incremented by every write to inblob or an option
//!     outblob       (RO) the TDX quote / SEV-SNP report, generated on first read
//!     auxblob       (RO) SEV-SNP only: the GHCB certificate table (may be empty)
//! ```
//!
//! Each request here gets its own directory with a fresh random name, so no other
//! requester shares it. As the ABI document prescribes, `generation` is read before
//! the first write and after `outblob`: if it moved by anything but our own writes,
//! another writer raced us and the report may be over someone else's data. The request
//! is then retried in a new directory, up to [`MAX_ATTEMPTS`] times. The directory is
//! removed afterwards, also on errors.

use super::layout::{self, OwnEvidence};
use super::{read_bounded, read_text, wait_for, write_attribute};
use crate::{EnclaveIdentity, Platform, PlatformError, SealPolicy};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use veritee_attest::{REPORT_DATA_LEN, ReportData, TeeKind};
use veritee_crypto::aead::AeadKey;

/// The configfs-tsm report directory on a real machine.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";
/// Largest outblob or auxblob the kernel produces (`TSM_REPORT_OUTBLOB_MAX`, 32 KiB).
pub const OUTBLOB_MAX: usize = 32 * 1024;
/// Highest privilege level the ABI accepts (`TSM_REPORT_PRIVLEVEL_MAX`).
pub const PRIVLEVEL_MAX: u8 = 3;
/// Requests tried, each in a new directory, before a generation conflict is an error.
pub const MAX_ATTEMPTS: usize = 3;

/// A configfs-tsm provider veritee understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsmProvider {
    /// Intel TDX: outblob is a DCAP quote.
    TdxGuest,
    /// AMD SEV-SNP: outblob is an attestation report, auxblob a certificate table.
    SevGuest,
}

impl TsmProvider {
    /// The provider named by the kernel's `provider` attribute.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "tdx_guest" => Some(Self::TdxGuest),
            "sev_guest" => Some(Self::SevGuest),
            _ => None,
        }
    }

    /// The kernel's name for the provider.
    pub fn name(self) -> &'static str {
        match self {
            Self::TdxGuest => "tdx_guest",
            Self::SevGuest => "sev_guest",
        }
    }

    /// The TEE whose evidence the provider produces.
    pub fn tee(self) -> TeeKind {
        match self {
            Self::TdxGuest => TeeKind::Tdx,
            Self::SevGuest => TeeKind::SevSnp,
        }
    }

    /// Reads the identity and report data from this provider's outblob.
    pub fn read_outblob(self, outblob: &[u8]) -> Result<OwnEvidence, PlatformError> {
        match self {
            Self::TdxGuest => layout::tdx_quote(outblob),
            Self::SevGuest => layout::snp_report(outblob),
        }
    }
}

/// How requests are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmOptions {
    /// SEV-SNP privilege level (VMPL) to request the report at; `None` leaves the
    /// kernel's default. Written only when set; TDX has no such attribute.
    pub privlevel: Option<u8>,
    /// How long to wait for an attribute file to appear. configfs creates them with the
    /// directory, so on a real machine nothing waits; an emulated tree may lag.
    pub settle: Duration,
}

impl Default for TsmOptions {
    fn default() -> Self {
        Self {
            privlevel: None,
            settle: Duration::from_secs(2),
        }
    }
}

/// One report: the provider's outblob and, for SEV-SNP, its auxblob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmReport {
    /// Who produced it.
    pub provider: TsmProvider,
    /// The TDX quote or SEV-SNP report.
    pub outblob: Vec<u8>,
    /// SEV-SNP's certificate table (see [`super::snp_certs`]), if the host supplied one.
    pub auxblob: Option<Vec<u8>>,
}

/// The configfs-tsm report interface at a given root.
#[derive(Debug, Clone)]
pub struct ConfigfsTsm {
    root: PathBuf,
    options: TsmOptions,
}

/// A request directory, removed when dropped.
struct Entry {
    path: PathBuf,
    removed: bool,
}

static ENTRY_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Entry {
    fn create(root: &Path) -> Result<Self, PlatformError> {
        let random: [u8; 8] = veritee_crypto::rand::array()?;
        let name = format!(
            "veritee-{}-{}-{}",
            std::process::id(),
            ENTRY_COUNTER.fetch_add(1, Ordering::Relaxed),
            hex::encode(random)
        );
        let path = root.join(name);
        fs::create_dir(&path).map_err(|e| match e.raw_os_error() {
            // ENXIO: configfs-tsm is built in but no TSM driver has registered.
            Some(6) => PlatformError::device(
                root,
                "no TSM provider is registered (is this a TDX or SEV-SNP guest?)",
            ),
            _ => PlatformError::io("cannot create a report request in", root)(e),
        })?;
        Ok(Self {
            path,
            removed: false,
        })
    }

    fn attr(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// rmdir, as configfs wants. On an ordinary filesystem (an emulated tree) the
    /// directory holds real files, so those are removed with it.
    fn remove(&mut self) -> std::io::Result<()> {
        self.removed = true;
        match fs::remove_dir(&self.path) {
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => fs::remove_dir_all(&self.path),
            other => other,
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if !self.removed
            && let Err(e) = self.remove()
        {
            tracing::warn!(
                "cannot remove configfs-tsm request {}: {e}",
                self.path.display()
            );
        }
    }
}

enum Attempt {
    Done(TsmReport),
    Conflict {
        before: u64,
        after: u64,
        expected: u64,
    },
}

impl ConfigfsTsm {
    /// The interface at `root` (normally [`DEFAULT_ROOT`]).
    pub fn new(root: &Path, options: TsmOptions) -> Self {
        Self {
            root: root.to_path_buf(),
            options,
        }
    }

    /// The report directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The provider's name: creates a request directory, reads `provider`, removes it.
    pub fn provider_name(&self) -> Result<String, PlatformError> {
        let mut entry = Entry::create(&self.root)?;
        let name = self.read_provider(&entry)?;
        entry.remove().map_err(PlatformError::io(
            "cannot remove report request",
            &entry.path,
        ))?;
        Ok(name)
    }

    fn read_provider(&self, entry: &Entry) -> Result<String, PlatformError> {
        let path = entry.attr("provider");
        wait_for(&path, self.options.settle, "the provider attribute")?;
        read_text(&path)
    }

    fn read_generation(&self, entry: &Entry) -> Result<u64, PlatformError> {
        let path = entry.attr("generation");
        wait_for(&path, self.options.settle, "the generation attribute")?;
        let text = read_text(&path)?;
        text.parse().map_err(|_| {
            PlatformError::device(&path, format!("'{text}' is not a generation number"))
        })
    }

    /// Requests a report over `report_data`.
    pub fn report(&self, report_data: &ReportData) -> Result<TsmReport, PlatformError> {
        if let Some(level) = self.options.privlevel
            && level > PRIVLEVEL_MAX
        {
            return Err(PlatformError::InvalidInput(format!(
                "privilege level {level} is above the {PRIVLEVEL_MAX} configfs-tsm accepts"
            )));
        }
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            match self.attempt(report_data)? {
                Attempt::Done(report) => return Ok(report),
                Attempt::Conflict {
                    before,
                    after,
                    expected,
                } => {
                    tracing::warn!(
                        "configfs-tsm generation moved from {before} to {after} (expected {expected}); retrying"
                    );
                    last = Some((before, after, expected));
                }
            }
        }
        let (before, after, expected) = last.unwrap_or_default();
        Err(PlatformError::device(
            &self.root,
            format!(
                "the request's generation moved from {before} to {after} where our writes make {expected}, \
                 in each of {MAX_ATTEMPTS} attempts: another writer changed the request while the report \
                 was generated (or the kernel refused a write)"
            ),
        ))
    }

    fn attempt(&self, report_data: &ReportData) -> Result<Attempt, PlatformError> {
        let mut entry = Entry::create(&self.root)?;
        let name = self.read_provider(&entry)?;
        let provider = TsmProvider::from_name(&name).ok_or_else(|| {
            PlatformError::Unsupported(format!(
                "configfs-tsm provider '{name}' is not supported (veritee knows tdx_guest and sev_guest)"
            ))
        })?;
        let before = self.read_generation(&entry)?;
        let mut writes = 0u64;
        if let Some(level) = self.options.privlevel {
            if provider != TsmProvider::SevGuest {
                return Err(PlatformError::InvalidInput(format!(
                    "a privilege level applies to SEV-SNP only; the provider is {name}"
                )));
            }
            write_attribute(
                &entry.attr("privlevel"),
                format!("{level}\n").as_bytes(),
                true,
            )?;
            writes += 1;
        }
        write_attribute(&entry.attr("inblob"), &report_data.0, true)?;
        writes += 1;

        let outblob_path = entry.attr("outblob");
        wait_for(&outblob_path, self.options.settle, "a report")?;
        let outblob = read_bounded(&outblob_path, OUTBLOB_MAX)?;
        if outblob.is_empty() {
            return Err(PlatformError::device(
                &outblob_path,
                "the provider returned an empty report",
            ));
        }
        let auxblob = match provider {
            TsmProvider::SevGuest => read_optional(&entry.attr("auxblob"))?,
            TsmProvider::TdxGuest => None,
        };
        let after = self.read_generation(&entry)?;
        if let Err(e) = entry.remove() {
            tracing::warn!(
                "cannot remove configfs-tsm request {}: {e}",
                entry.path.display()
            );
        }
        let expected = before.saturating_add(writes);
        if after != expected {
            return Ok(Attempt::Conflict {
                before,
                after,
                expected,
            });
        }
        Ok(Attempt::Done(TsmReport {
            provider,
            outblob,
            auxblob,
        }))
    }
}

/// An auxblob: absent or empty means the host supplied none.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, PlatformError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        _ => {
            let bytes = read_bounded(path, OUTBLOB_MAX)?;
            Ok((!bytes.is_empty()).then_some(bytes))
        }
    }
}

/// A TDX trust domain or SEV-SNP guest, attested through configfs-tsm.
#[derive(Debug, Clone)]
pub struct TsmPlatform {
    configfs: ConfigfsTsm,
    provider: TsmProvider,
    identity: EnclaveIdentity,
}

impl TsmPlatform {
    /// Opens the interface at `root` with default options; requests a report over zero
    /// report data to learn the provider and the guest's measurement.
    pub fn open(root: &Path) -> Result<Self, PlatformError> {
        Self::from_configfs(ConfigfsTsm::new(root, TsmOptions::default()))
    }

    /// Opens the interface at `root` with `options`.
    pub fn open_with(root: &Path, options: TsmOptions) -> Result<Self, PlatformError> {
        Self::from_configfs(ConfigfsTsm::new(root, options))
    }

    /// Opens an interface already described.
    pub fn from_configfs(configfs: ConfigfsTsm) -> Result<Self, PlatformError> {
        let report = configfs.report(&ReportData([0; REPORT_DATA_LEN]))?;
        let own = report.provider.read_outblob(&report.outblob)?;
        Ok(Self {
            configfs,
            provider: report.provider,
            identity: own.identity,
        })
    }

    /// The provider found when opening.
    pub fn provider(&self) -> TsmProvider {
        self.provider
    }

    /// A full report over `report_data`, with SEV-SNP's certificate table.
    pub fn report(&self, report_data: &ReportData) -> Result<TsmReport, PlatformError> {
        let report = self.configfs.report(report_data)?;
        if report.provider != self.provider {
            return Err(PlatformError::device(
                self.configfs.root(),
                format!(
                    "the provider changed from {} to {} since the platform was opened",
                    self.provider.name(),
                    report.provider.name()
                ),
            ));
        }
        let own = report.provider.read_outblob(&report.outblob)?;
        layout::note_report_data(report.provider.name(), &report_data.0, &own.report_data);
        Ok(report)
    }
}

impl Platform for TsmPlatform {
    fn tee(&self) -> TeeKind {
        self.provider.tee()
    }

    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError> {
        Ok(self.report(report_data)?.outblob)
    }

    fn sealing_key_at(
        &self,
        _policy: SealPolicy,
        _security_version: u16,
        _label: &[u8],
    ) -> Result<AeadKey, PlatformError> {
        Err(PlatformError::Unsupported(match self.provider {
            TsmProvider::TdxGuest => "TDX gives a trust domain no sealing key: the TDX module derives no keys \
                 for guests. Seal with a key released to this TD after attestation (a key broker), or keep \
                 state in an encrypted volume unlocked the same way"
                .into(),
            TsmProvider::SevGuest => "SEV-SNP sealing keys come from /dev/sev-guest's SNP_GET_DERIVED_KEY, \
                 not from configfs-tsm: open the guest as hw::sev_guest::SnpPlatform (hw::open with \
                 Backend::Snp), which attests through configfs-tsm and seals through the device"
                .into(),
        }))
    }

    fn identity(&self) -> &EnclaveIdentity {
        &self.identity
    }
}
