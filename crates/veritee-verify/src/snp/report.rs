//! The SEV-SNP `ATTESTATION_REPORT` structure (AMD SEV-SNP Firmware ABI specification,
//! table "ATTESTATION_REPORT Structure"), versions 2 to 5.
//!
//! ```text
//! ATTESTATION_REPORT: 0x4A0 (1184) bytes, integers little-endian
//!
//! offset  size  field
//! 0x000      4  VERSION (2 to 5; 4 is laid out as 3)
//! 0x004      4  GUEST_SVN
//! 0x008      8  POLICY: bit 19 DEBUG, bit 17 reserved (one), 7:0 ABI minor, 15:8 ABI major ...
//! 0x010     16  FAMILY_ID
//! 0x020     16  IMAGE_ID
//! 0x030      4  VMPL the report was requested from
//! 0x034      4  SIGNATURE_ALGO: 1 = ECDSA P-384 with SHA-384
//! 0x038      8  CURRENT_TCB (TCB_VERSION, see below)
//! 0x040      8  PLATFORM_INFO: bit 0 SMT_EN, bit 1 TSME_EN, ...
//! 0x048      4  flags: bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY,
//!               bits 4:2 SIGNING_KEY (0 VCEK, 1 VLEK, 7 none)
//! 0x04C      4  reserved
//! 0x050     64  REPORT_DATA (guest-supplied)
//! 0x090     48  MEASUREMENT (launch digest)
//! 0x0C0     32  HOST_DATA
//! 0x0E0     48  ID_KEY_DIGEST (SHA-384 of the ID block key)
//! 0x110     48  AUTHOR_KEY_DIGEST (SHA-384 of the author key)
//! 0x140     32  REPORT_ID
//! 0x160     32  REPORT_ID_MA (migration agent)
//! 0x180      8  REPORTED_TCB: the TCB the VCEK was derived from
//! 0x188      1  CPUID_FAM_ID   (v3 on; reserved in v2)
//! 0x189      1  CPUID_MOD_ID   (v3 on; reserved in v2)
//! 0x18A      1  CPUID_STEP     (v3 on; reserved in v2)
//! 0x18B     21  reserved
//! 0x1A0     64  CHIP_ID (zero when MASK_CHIP_ID; Turin uses the first 8 bytes)
//! 0x1E0      8  COMMITTED_TCB
//! 0x1E8      4  CURRENT build, minor, major, reserved
//! 0x1EC      4  COMMITTED build, minor, major, reserved
//! 0x1F0      8  LAUNCH_TCB
//! 0x1F8      8  LAUNCH_MIT_VECTOR  (v5; reserved before): mitigations verified at launch
//! 0x200      8  CURRENT_MIT_VECTOR (v5; reserved before): mitigations verified now
//! 0x208    152  reserved
//! 0x2A0    512  SIGNATURE: R (72 bytes, little-endian), S (72 bytes, little-endian),
//!               368 reserved; ECDSA P-384/SHA-384 over bytes 0x000..0x2A0
//!
//! TCB_VERSION (8 bytes), before Turin:   BOOT_LOADER, TEE, 4 reserved, SNP, MICROCODE
//! TCB_VERSION (8 bytes), Turin onwards:  FMC, BOOT_LOADER, TEE, SNP, 3 reserved, MICROCODE
//! ```
//!
//! The report does not say which TCB_VERSION layout it uses (a v2 report does not even
//! name its CPU), so the TCB fields are kept raw here and decoded once the product is
//! known from the VEK certificate's issuer (see [`Tcb::decode`]).

use veritee_attest::VerifyError;
use veritee_attest::bytes::Reader;

/// Total length of a report.
pub const REPORT_LEN: usize = 0x4A0;
/// Length of the signed part: bytes 0x000..0x2A0.
pub const SIGNED_LEN: usize = 0x2A0;
/// Length of the signature area.
pub const SIGNATURE_AREA_LEN: usize = 512;
/// Length of one little-endian signature component (R or S) as stored.
pub const SIGNATURE_COMPONENT_LEN: usize = 72;
/// Length of a P-384 scalar.
pub const P384_SCALAR_LEN: usize = 48;
/// Length of REPORT_DATA.
pub const REPORT_DATA_LEN: usize = 64;
/// Length of the launch measurement.
pub const MEASUREMENT_LEN: usize = 48;
/// Length of CHIP_ID.
pub const CHIP_ID_LEN: usize = 64;
/// SIGNATURE_ALGO value for ECDSA P-384 with SHA-384.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// Guest policy bit: debugging allowed.
pub const POLICY_DEBUG: u64 = 1 << 19;
/// Versions this parser reads.
pub const SUPPORTED_VERSIONS: [u32; 4] = [2, 3, 4, 5];
/// The first version with the mitigation vectors.
pub const MITIGATION_VECTORS_SINCE: u32 = 5;

const _: () = assert!(SIGNED_LEN + SIGNATURE_AREA_LEN == REPORT_LEN);
const _: () = assert!(
    4 + 4
        + 8
        + 16
        + 16
        + 4
        + 4
        + 8
        + 8
        + 4
        + 4
        + REPORT_DATA_LEN
        + MEASUREMENT_LEN
        + 32
        + 48
        + 48
        + 32
        + 32
        + 8
        + 3
        + 21
        + CHIP_ID_LEN
        + 8
        + 4
        + 4
        + 8
        + 168
        == SIGNED_LEN
);
const _: () = assert!(2 * SIGNATURE_COMPONENT_LEN + 368 == SIGNATURE_AREA_LEN);

/// Which key signed the report (flags bits 4:2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key: per chip and TCB, certified by the ASK.
    Vcek,
    /// Versioned Loaded Endorsement Key: per cloud provider, certified by the ASVK.
    Vlek,
}

impl SigningKey {
    /// The name used in claims.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vcek => "vcek",
            Self::Vlek => "vlek",
        }
    }
}

/// A decoded TCB_VERSION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcb {
    /// FMC SPL (Turin onwards only).
    pub fmc: Option<u8>,
    /// PSP boot loader SPL.
    pub bootloader: u8,
    /// PSP OS (TEE) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

impl Tcb {
    /// Decodes the 8 raw bytes of a TCB_VERSION in the pre-Turin or Turin layout.
    pub fn decode(raw: [u8; 8], turin_layout: bool) -> Self {
        if turin_layout {
            Self {
                fmc: Some(raw[0]),
                bootloader: raw[1],
                tee: raw[2],
                snp: raw[3],
                microcode: raw[7],
            }
        } else {
            Self {
                fmc: None,
                bootloader: raw[0],
                tee: raw[1],
                snp: raw[6],
                microcode: raw[7],
            }
        }
    }
}

impl core::fmt::Display for Tcb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc} ")?;
        }
        write!(
            f,
            "bootloader={} tee={} snp={} microcode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

/// A firmware version: major.minor.build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmwareVersion {
    /// Build number.
    pub build: u8,
    /// Minor version.
    pub minor: u8,
    /// Major version.
    pub major: u8,
}

impl core::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// CPUID family, model and stepping (v3 reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpuid {
    /// Family (combined base + extended), e.g. 0x19.
    pub family: u8,
    /// Model (combined), e.g. 0x01.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// The mitigation vectors of a v5 report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MitigationVectors {
    /// LAUNCH_MIT_VECTOR.
    pub launch: u64,
    /// CURRENT_MIT_VECTOR.
    pub current: u64,
}

/// A parsed attestation report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpReport {
    /// VERSION (2 to 5).
    pub version: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// POLICY.
    pub policy: u64,
    /// FAMILY_ID.
    pub family_id: [u8; 16],
    /// IMAGE_ID.
    pub image_id: [u8; 16],
    /// VMPL.
    pub vmpl: u32,
    /// CURRENT_TCB, raw.
    pub current_tcb: [u8; 8],
    /// PLATFORM_INFO.
    pub platform_info: u64,
    /// AUTHOR_KEY_EN.
    pub author_key_en: bool,
    /// MASK_CHIP_KEY.
    pub mask_chip_key: bool,
    /// SIGNING_KEY.
    pub signing_key: SigningKey,
    /// REPORT_DATA.
    pub report_data: [u8; REPORT_DATA_LEN],
    /// MEASUREMENT.
    pub measurement: [u8; MEASUREMENT_LEN],
    /// HOST_DATA.
    pub host_data: [u8; 32],
    /// ID_KEY_DIGEST.
    pub id_key_digest: [u8; 48],
    /// AUTHOR_KEY_DIGEST.
    pub author_key_digest: [u8; 48],
    /// REPORT_ID.
    pub report_id: [u8; 32],
    /// REPORT_ID_MA.
    pub report_id_ma: [u8; 32],
    /// REPORTED_TCB, raw.
    pub reported_tcb: [u8; 8],
    /// CPUID fields (v3 on).
    pub cpuid: Option<Cpuid>,
    /// CHIP_ID.
    pub chip_id: [u8; CHIP_ID_LEN],
    /// COMMITTED_TCB, raw.
    pub committed_tcb: [u8; 8],
    /// Current firmware version.
    pub current_version: FirmwareVersion,
    /// Committed firmware version.
    pub committed_version: FirmwareVersion,
    /// LAUNCH_TCB, raw.
    pub launch_tcb: [u8; 8],
    /// LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR (v5 on): which mitigations the
    /// firmware verified at launch, and now. Their bits are the platform's to define,
    /// so they are reported, not judged.
    pub mitigation_vectors: Option<MitigationVectors>,
    /// Signature as fixed big-endian `r || s` (96 bytes), ready for aws-lc-rs.
    pub signature: [u8; 2 * P384_SCALAR_LEN],
}

const WHAT: &str = "SEV-SNP attestation report";

fn version_of(r: &mut Reader<'_>) -> Result<FirmwareVersion, VerifyError> {
    let [build, minor, major, _reserved] = r.array::<4>("firmware version")?;
    Ok(FirmwareVersion {
        build,
        minor,
        major,
    })
}

/// Converts a 72-byte little-endian signature component into a 48-byte big-endian
/// scalar; the 24 high bytes must be zero.
fn component(le: &[u8], name: &str) -> Result<[u8; P384_SCALAR_LEN], VerifyError> {
    let (low, high) = le.split_at(P384_SCALAR_LEN.min(le.len()));
    if low.len() != P384_SCALAR_LEN || high.iter().any(|b| *b != 0) {
        return Err(VerifyError::Signature(format!(
            "the report signature's {name} component does not fit a P-384 scalar (non-zero high bytes)"
        )));
    }
    let mut be = [0u8; P384_SCALAR_LEN];
    for (dst, src) in be.iter_mut().zip(low.iter().rev()) {
        *dst = *src;
    }
    Ok(be)
}

impl SnpReport {
    /// Whether `bytes` looks like a report: the right length, a plausible version and
    /// the ECDSA signature algorithm.
    pub fn recognizes(bytes: &[u8]) -> bool {
        if bytes.len() != REPORT_LEN {
            return false;
        }
        let word = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        matches!(word(0), Some(1..=15)) && word(0x34) == Some(SIG_ALGO_ECDSA_P384_SHA384)
    }

    /// Parses exactly [`REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > REPORT_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: bytes.len(),
                limit: REPORT_LEN,
            });
        }
        if bytes.len() != REPORT_LEN {
            return Err(VerifyError::malformed(
                WHAT,
                format!("{} bytes, expected {REPORT_LEN}", bytes.len()),
            ));
        }
        let mut r = Reader::new(WHAT, bytes);
        let version = r.u32_le("VERSION")?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(VerifyError::UnsupportedVersion {
                what: WHAT.into(),
                version,
            });
        }
        let guest_svn = r.u32_le("GUEST_SVN")?;
        let policy = r.u64_le("POLICY")?;
        let family_id = r.array("FAMILY_ID")?;
        let image_id = r.array("IMAGE_ID")?;
        let vmpl = r.u32_le("VMPL")?;
        let sig_algo = r.u32_le("SIGNATURE_ALGO")?;
        if sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(VerifyError::malformed(
                WHAT,
                format!("SIGNATURE_ALGO {sig_algo} is not 1 (ECDSA P-384 with SHA-384)"),
            ));
        }
        let current_tcb = r.array("CURRENT_TCB")?;
        let platform_info = r.u64_le("PLATFORM_INFO")?;
        let flags = r.u32_le("flags")?;
        let signing_key = match (flags >> 2) & 0b111 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            other => {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!("SIGNING_KEY {other} names no endorsement key (0 VCEK, 1 VLEK)"),
                ));
            }
        };
        r.take(4, "reserved")?;
        let report_data = r.array("REPORT_DATA")?;
        let measurement = r.array("MEASUREMENT")?;
        let host_data = r.array("HOST_DATA")?;
        let id_key_digest = r.array("ID_KEY_DIGEST")?;
        let author_key_digest = r.array("AUTHOR_KEY_DIGEST")?;
        let report_id = r.array("REPORT_ID")?;
        let report_id_ma = r.array("REPORT_ID_MA")?;
        let reported_tcb = r.array("REPORTED_TCB")?;
        let [family, model, stepping] = r.array::<3>("CPUID")?;
        let cpuid = (version >= 3).then_some(Cpuid {
            family,
            model,
            stepping,
        });
        r.take(21, "reserved")?;
        let chip_id = r.array("CHIP_ID")?;
        let committed_tcb = r.array("COMMITTED_TCB")?;
        let current_version = version_of(&mut r)?;
        let committed_version = version_of(&mut r)?;
        let launch_tcb = r.array("LAUNCH_TCB")?;
        let launch_mit = r.u64_le("LAUNCH_MIT_VECTOR")?;
        let current_mit = r.u64_le("CURRENT_MIT_VECTOR")?;
        let mitigation_vectors =
            (version >= MITIGATION_VECTORS_SINCE).then_some(MitigationVectors {
                launch: launch_mit,
                current: current_mit,
            });
        r.take(152, "reserved")?;
        debug_assert_eq!(r.offset(), SIGNED_LEN);
        let sig_r = component(r.take(SIGNATURE_COMPONENT_LEN, "SIGNATURE R")?, "R")?;
        let sig_s = component(r.take(SIGNATURE_COMPONENT_LEN, "SIGNATURE S")?, "S")?;
        // Outside the signed bytes: must be zero, so that no two reports that differ
        // here both verify.
        let reserved = r.take(
            SIGNATURE_AREA_LEN - 2 * SIGNATURE_COMPONENT_LEN,
            "signature reserved",
        )?;
        if let Some(at) = reserved.iter().position(|b| *b != 0) {
            return Err(VerifyError::malformed(
                "SNP attestation report",
                format!(
                    "the reserved bytes after the signature must be zero (byte {:#x} is not)",
                    SIGNED_LEN + 2 * SIGNATURE_COMPONENT_LEN + at
                ),
            ));
        }
        r.finish()?;
        let mut signature = [0u8; 2 * P384_SCALAR_LEN];
        signature[..P384_SCALAR_LEN].copy_from_slice(&sig_r);
        signature[P384_SCALAR_LEN..].copy_from_slice(&sig_s);
        Ok(Self {
            version,
            guest_svn,
            policy,
            family_id,
            image_id,
            vmpl,
            current_tcb,
            platform_info,
            author_key_en: flags & 1 != 0,
            mask_chip_key: flags & 2 != 0,
            signing_key,
            report_data,
            measurement,
            host_data,
            id_key_digest,
            author_key_digest,
            report_id,
            report_id_ma,
            reported_tcb,
            cpuid,
            chip_id,
            committed_tcb,
            current_version,
            committed_version,
            launch_tcb,
            mitigation_vectors,
            signature,
        })
    }

    /// Whether the guest policy allows debugging (the host can read guest memory).
    pub fn debug(&self) -> bool {
        self.policy & POLICY_DEBUG != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_components_are_reversed_and_bounded() {
        let mut le = [0u8; SIGNATURE_COMPONENT_LEN];
        le[0] = 0x01;
        le[47] = 0xab;
        let be = component(&le, "R").unwrap();
        assert_eq!(be[0], 0xab);
        assert_eq!(be[47], 0x01);
        le[48] = 1;
        assert!(matches!(
            component(&le, "R"),
            Err(VerifyError::Signature(_))
        ));
    }

    #[test]
    fn tcb_layouts() {
        let raw = [3, 0, 0, 0, 0, 0, 8, 115];
        assert_eq!(
            Tcb::decode(raw, false).to_string(),
            "bootloader=3 tee=0 snp=8 microcode=115"
        );
        let turin = [1, 2, 3, 4, 0, 0, 0, 9];
        assert_eq!(
            Tcb::decode(turin, true).to_string(),
            "fmc=1 bootloader=2 tee=3 snp=4 microcode=9"
        );
    }

    #[test]
    fn wrong_lengths_and_versions() {
        assert!(matches!(
            SnpReport::parse(&[0u8; 10]),
            Err(VerifyError::Malformed { .. })
        ));
        assert!(matches!(
            SnpReport::parse(&[0u8; REPORT_LEN + 1]),
            Err(VerifyError::TooLarge { .. })
        ));
        let mut bytes = [0u8; REPORT_LEN];
        for version in [0u8, 1, 6, 0xff] {
            bytes[0] = version;
            assert!(matches!(
                SnpReport::parse(&bytes),
                Err(VerifyError::UnsupportedVersion { version: v, .. }) if v == u32::from(version)
            ));
        }
    }

    /// A report of `version` with every field set, unsigned (the layout alone).
    fn report(version: u32) -> [u8; REPORT_LEN] {
        let mut bytes = [0u8; REPORT_LEN];
        bytes[..4].copy_from_slice(&version.to_le_bytes());
        bytes[0x34] = 1;
        bytes[0x188..0x18B].copy_from_slice(&[0x1a, 0x02, 0x01]);
        bytes[0x1F0..0x1F8].copy_from_slice(&[1, 2, 3, 4, 0, 0, 0, 9]);
        bytes[0x1F8..0x200].copy_from_slice(&0x0000_0000_0000_0005u64.to_le_bytes());
        bytes[0x200..0x208].copy_from_slice(&0x0000_0000_0000_0007u64.to_le_bytes());
        bytes
    }

    #[test]
    fn versions_four_and_five_read_their_fields_and_only_theirs() {
        let v5 = SnpReport::parse(&report(5)).unwrap();
        assert_eq!(
            v5.mitigation_vectors,
            Some(MitigationVectors {
                launch: 5,
                current: 7
            })
        );
        assert_eq!(v5.launch_tcb, [1, 2, 3, 4, 0, 0, 0, 9]);
        assert_eq!(v5.cpuid.map(|c| c.family), Some(0x1a));
        // Version 4 is laid out as 3: no vectors, whatever those bytes hold.
        let v4 = SnpReport::parse(&report(4)).unwrap();
        assert_eq!(v4.mitigation_vectors, None);
        assert_eq!(v4.cpuid.map(|c| c.model), Some(0x02));
        let v2 = SnpReport::parse(&report(2)).unwrap();
        assert_eq!((v2.cpuid, v2.mitigation_vectors), (None, None));
    }
}
