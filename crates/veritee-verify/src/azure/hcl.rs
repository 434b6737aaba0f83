//! The HCL (Azure paravisor) attestation report that wraps an SNP report.
//!
//! ```text
//! offset  size  field (little-endian)
//! 0x000      4  signature "HCLA"
//! 0x004      4  version
//! 0x008      4  report size
//! 0x00C      4  request type
//! 0x010      4  status
//! 0x014     12  reserved
//! 0x020   1184  hardware report (SEV-SNP ATTESTATION_REPORT; a TDX report is shorter
//!               and padded to the same size)
//! 0x4C0      4  IGVM request data: data size
//! 0x4C4      4  IGVM request data: version
//! 0x4C8      4  IGVM request data: report type (2 = SNP, 4 = TDX)
//! 0x4CC      4  IGVM request data: report data hash type (1 = SHA-256)
//! 0x4D0      4  IGVM request data: variable data size
//! 0x4D4      n  variable data (JSON); the rest of the report is padding
//! ```
//!
//! Only the hardware report is signed (and, through its report data, the variable
//! data). So every other byte is checked to be what it must be, and no two HCL reports
//! that differ anywhere both verify: the header's version (1 or 2), report size (the
//! end of the variable data), request type (2, the key-release report the vTPM keeps),
//! status (0) and reserved bytes (zero); the IGVM request data's size (20 bytes of its
//! header with the variable data) and version (1); zero padding after the variable
//! data.

use crate::snp::report::REPORT_LEN as SNP_REPORT_LEN;
use veritee_attest::VerifyError;
use veritee_attest::bytes::Reader;

/// The header magic, "HCLA".
pub const HCL_MAGIC: [u8; 4] = *b"HCLA";
/// Header length.
pub const HEADER_LEN: usize = 32;
/// Offset of the IGVM request data.
pub const IGVM_OFFSET: usize = HEADER_LEN + SNP_REPORT_LEN;
/// Offset of the variable data.
pub const VAR_DATA_OFFSET: usize = IGVM_OFFSET + 20;
/// Report type of an SNP hardware report.
pub const REPORT_TYPE_SNP: u32 = 2;
/// Report type of a TDX hardware report (a TDREPORT, 1024 bytes, zero-padded).
pub const REPORT_TYPE_TDX: u32 = 4;
/// Length of a TDREPORT.
pub const TD_REPORT_LEN: usize = 1024;
/// Report data hash type SHA-256.
pub const HASH_TYPE_SHA256: u32 = 1;
/// Request type of the report the vTPM keeps (IGVM key-release request).
pub const REQUEST_TYPE_KEY_RELEASE: u32 = 2;
/// Versions of the HCL report header known.
pub const HEADER_VERSIONS: [u32; 2] = [1, 2];
/// Version of the IGVM request data.
pub const IGVM_DATA_VERSION: u32 = 1;
/// Largest HCL report accepted.
pub const MAX_HCL_LEN: usize = 64 * 1024;

const _: () = assert!(IGVM_OFFSET == 0x4C0);
const _: () = assert!(VAR_DATA_OFFSET == 0x4D4);

const WHAT: &str = "HCL report";

/// The parts of an HCL report the verifier uses.
#[derive(Debug, Clone, Copy)]
pub struct HclReport<'a> {
    /// The hardware report: an SNP report, or a TDREPORT (its zero padding checked
    /// and cut off).
    pub hardware_report: &'a [u8],
    /// The variable data whose SHA-256 the SNP report carries.
    pub var_data: &'a [u8],
}

impl<'a> HclReport<'a> {
    /// Parses an HCL report holding a hardware report of `report_type`
    /// ([`REPORT_TYPE_SNP`] or [`REPORT_TYPE_TDX`]), checking every unsigned field (see
    /// the module documentation). Bytes after the variable data must be zero.
    pub fn parse(bytes: &'a [u8], expected_type: u32) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_HCL_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: bytes.len(),
                limit: MAX_HCL_LEN,
            });
        }
        let mut r = Reader::new(WHAT, bytes);
        if r.array::<4>("signature")? != HCL_MAGIC {
            return Err(VerifyError::malformed(WHAT, "signature is not \"HCLA\""));
        }
        let version = r.u32_le("version")?;
        if !HEADER_VERSIONS.contains(&version) {
            return Err(VerifyError::UnsupportedVersion {
                what: "HCL report header".into(),
                version,
            });
        }
        let report_size = r.u32_le("report size")?;
        let request_type = r.u32_le("request type")?;
        if request_type != REQUEST_TYPE_KEY_RELEASE {
            return Err(VerifyError::malformed(
                WHAT,
                format!(
                    "request type {request_type} is not the key-release report ({REQUEST_TYPE_KEY_RELEASE}) a vTPM keeps"
                ),
            ));
        }
        let status = r.u32_le("status")?;
        if status != 0 {
            return Err(VerifyError::malformed(
                WHAT,
                format!("status {status:#x} is not success (0)"),
            ));
        }
        must_be_zero(r.take(12, "reserved")?, "the header's reserved bytes")?;
        let hardware_report = r.take(SNP_REPORT_LEN, "hardware report")?;
        let data_size = r.u32_le("IGVM data size")?;
        let igvm_version = r.u32_le("IGVM version")?;
        if igvm_version != IGVM_DATA_VERSION {
            return Err(VerifyError::UnsupportedVersion {
                what: "HCL report IGVM request data".into(),
                version: igvm_version,
            });
        }
        let report_type = r.u32_le("IGVM report type")?;
        if report_type != expected_type {
            let name = |t| match t {
                REPORT_TYPE_SNP => "SEV-SNP",
                REPORT_TYPE_TDX => "TDX",
                _ => "known",
            };
            return Err(VerifyError::malformed(
                WHAT,
                format!(
                    "report type {report_type} is not {} ({expected_type})",
                    name(expected_type)
                ),
            ));
        }
        let hardware_report = match report_type {
            REPORT_TYPE_TDX => {
                let (td_report, padding) = hardware_report.split_at(TD_REPORT_LEN);
                must_be_zero(padding, "the padding after the TDREPORT")?;
                td_report
            }
            _ => hardware_report,
        };
        let hash_type = r.u32_le("IGVM report data hash type")?;
        if hash_type != HASH_TYPE_SHA256 {
            return Err(VerifyError::malformed(
                WHAT,
                format!("report data hash type {hash_type} is not SHA-256 (1)"),
            ));
        }
        let var_len = r.u32_le("variable data size")?;
        let var_data = r.take(
            usize::try_from(var_len).unwrap_or(usize::MAX),
            "variable data",
        )?;
        if u64::from(data_size) != u64::from(var_len) + 20 {
            return Err(VerifyError::malformed(
                WHAT,
                format!(
                    "the IGVM data size {data_size} is not its 20-byte header and the {var_len} bytes of variable data"
                ),
            ));
        }
        if usize::try_from(report_size).ok() != Some(r.offset()) {
            return Err(VerifyError::malformed(
                WHAT,
                format!(
                    "the report size {report_size} is not where the variable data ends ({})",
                    r.offset()
                ),
            ));
        }
        must_be_zero(
            r.take(r.remaining(), "padding")?,
            "the padding after the variable data",
        )?;
        Ok(Self {
            hardware_report,
            var_data,
        })
    }
}

fn must_be_zero(bytes: &[u8], what: &str) -> Result<(), VerifyError> {
    match bytes.iter().position(|b| *b != 0) {
        None => Ok(()),
        Some(at) => Err(VerifyError::malformed(
            WHAT,
            format!("{what} must be zero (byte {at} of them is not)"),
        )),
    }
}
