//! Where an enclave's identity sits in the evidence its hardware returns.
//!
//! The attester reads its own identity from evidence it just requested, at the fixed
//! offsets below (checked against real evidence in `tests/hw.rs`). Nothing here
//! verifies a signature: that is the verifier's job. These readers only need the
//! evidence to be long enough, and say which field was cut off when it is not.

use crate::{EnclaveIdentity, PlatformError};
use veritee_attest::REPORT_DATA_LEN;

/// Intel DCAP quote header (quote versions 3, 4 and 5), Intel SGX DCAP Quote Library
/// API, "Quote Header":
///
/// ```text
/// offset  size  field
/// 0x00       2  version: 3 (SGX), 4 (SGX or TDX), 5 (TDX, body descriptor follows)
/// 0x02       2  attestation key type (2 = ECDSA P-256)
/// 0x04       4  TEE type: 0x00000000 SGX, 0x00000081 TDX (version 3: reserved, zero)
/// 0x08       2  QE SVN (version 3: reserved)
/// 0x0A       2  PCE SVN
/// 0x0C      16  QE vendor id
/// 0x1C      20  user data
/// 0x30          report body (version 5: body descriptor first, see below)
/// ```
pub const QUOTE_HEADER_LEN: usize = 48;
/// Offset of the TEE type in the quote header.
pub const QUOTE_TEE_TYPE_OFFSET: usize = 4;
/// TEE type of an SGX quote.
pub const TEE_TYPE_SGX: u32 = 0x0000_0000;
/// TEE type of a TDX quote.
pub const TEE_TYPE_TDX: u32 = 0x0000_0081;

/// Quote version 5 puts a body descriptor between header and body:
///
/// ```text
/// offset  size  field
/// 0x30       2  body type: 1 SGX enclave report, 2 TD report (TDX 1.0), 3 TD report (TDX 1.5)
/// 0x32       4  body size
/// 0x36          body
/// ```
pub const QUOTE_V5_BODY_DESCRIPTOR_LEN: usize = 6;

/// SGX enclave report body (384 bytes), Intel SDM Vol. 3D "REPORT", at
/// [`QUOTE_HEADER_LEN`] in a version 3 or 4 quote:
///
/// ```text
/// offset  size  field
/// 0x000     16  CPUSVN
/// 0x010      4  MISCSELECT
/// 0x014     28  reserved
/// 0x030     16  ATTRIBUTES: flags (u64 LE, bit 1 DEBUG), XFRM (u64 LE)
/// 0x040     32  MRENCLAVE
/// 0x060     32  reserved
/// 0x080     32  MRSIGNER
/// 0x0A0     96  reserved
/// 0x100      2  ISVPRODID (u16 LE)
/// 0x102      2  ISVSVN (u16 LE)
/// 0x104     60  reserved
/// 0x140     64  REPORTDATA
/// ```
pub mod sgx {
    /// Length of the enclave report body.
    pub const REPORT_BODY_LEN: usize = 384;
    /// CPUSVN: the security version of the CPU's microcode and firmware.
    pub const CPUSVN_OFFSET: usize = 0x000;
    /// Length of CPUSVN.
    pub const CPUSVN_LEN: usize = 16;
    /// MISCSELECT, u32 little-endian.
    pub const MISCSELECT_OFFSET: usize = 0x010;
    /// ATTRIBUTES.FLAGS, u64 little-endian.
    pub const ATTRIBUTES_OFFSET: usize = 0x030;
    /// ATTRIBUTES.FLAGS bit of a debug enclave.
    pub const ATTRIBUTE_DEBUG: u64 = 1 << 1;
    /// MRENCLAVE: the measurement of the enclave's code.
    pub const MRENCLAVE_OFFSET: usize = 0x040;
    /// MRSIGNER: SHA-256 of the enclave signer's public key.
    pub const MRSIGNER_OFFSET: usize = 0x080;
    /// Length of MRENCLAVE and MRSIGNER.
    pub const MEASUREMENT_LEN: usize = 32;
    /// ISVPRODID, u16 little-endian.
    pub const ISVPRODID_OFFSET: usize = 0x100;
    /// ISVSVN, u16 little-endian.
    pub const ISVSVN_OFFSET: usize = 0x102;
    /// REPORTDATA.
    pub const REPORT_DATA_OFFSET: usize = 0x140;

    const _: () = assert!(REPORT_DATA_OFFSET + super::REPORT_DATA_LEN == REPORT_BODY_LEN);
    const _: () = assert!(MRSIGNER_OFFSET + MEASUREMENT_LEN + 96 == ISVPRODID_OFFSET);
}

/// TDX TD report body, Intel TDX DCAP Quote Generation Library, "TD Quote Body"
/// (584 bytes for TDX 1.0; TDX 1.5 appends TEE_TCB_SVN2 and MRSERVICETD):
///
/// ```text
/// offset  size  field
/// 0x000     16  TEE_TCB_SVN
/// 0x010     48  MRSEAM
/// 0x040     48  MRSIGNERSEAM
/// 0x070      8  SEAMATTRIBUTES
/// 0x078      8  TDATTRIBUTES (u64 LE, bit 0 DEBUG)
/// 0x080      8  XFAM
/// 0x088     48  MRTD: the measurement of the initial TD image
/// 0x0B8     48  MRCONFIGID
/// 0x0E8     48  MROWNER
/// 0x118     48  MROWNERCONFIG
/// 0x148    192  RTMR0..RTMR3
/// 0x208     64  REPORTDATA
/// ```
pub mod tdx {
    /// Length of a TDX 1.0 report body: the part every TDX quote body starts with.
    pub const REPORT_BODY_LEN: usize = 584;
    /// TDATTRIBUTES, u64 little-endian.
    pub const TD_ATTRIBUTES_OFFSET: usize = 0x078;
    /// TDATTRIBUTES bit of a debuggable TD.
    pub const TD_ATTRIBUTE_DEBUG: u64 = 1;
    /// MRTD.
    pub const MRTD_OFFSET: usize = 0x088;
    /// Length of MRTD (and of MRCONFIGID).
    pub const MRTD_LEN: usize = 48;
    /// MRCONFIGID: set by whoever launches the TD, for the configuration it runs.
    pub const MRCONFIGID_OFFSET: usize = 0x0B8;
    /// REPORTDATA.
    pub const REPORT_DATA_OFFSET: usize = 0x208;

    const _: () = assert!(REPORT_DATA_OFFSET + super::REPORT_DATA_LEN == REPORT_BODY_LEN);
    const _: () = assert!(MRTD_OFFSET + MRTD_LEN * 4 + 192 == REPORT_DATA_OFFSET);
    const _: () = assert!(MRTD_OFFSET + MRTD_LEN == MRCONFIGID_OFFSET);
}

/// SEV-SNP ATTESTATION_REPORT (1184 bytes), AMD SEV-SNP Firmware ABI Specification,
/// Table 22 (the layout configfs-tsm's `sev_guest` provider returns):
///
/// ```text
/// offset  size  field
/// 0x000      4  VERSION
/// 0x004      4  GUEST_SVN (u32 LE)
/// 0x008      8  POLICY (u64 LE, bit 19 DEBUG allowed)
/// 0x010     16  FAMILY_ID
/// 0x020     16  IMAGE_ID
/// 0x030      4  VMPL
/// 0x034      4  SIGNATURE_ALGO
/// 0x038      8  CURRENT_TCB
/// 0x040      8  PLATFORM_INFO
/// 0x048      8  flags, reserved
/// 0x050     64  REPORT_DATA
/// 0x090     48  MEASUREMENT: launch digest of the guest
/// 0x0C0     32  HOST_DATA
/// 0x0E0     48  ID_KEY_DIGEST
/// 0x110     48  AUTHOR_KEY_DIGEST
/// 0x140    352  REPORT_ID ... reserved
/// 0x2A0    512  SIGNATURE
/// ```
pub mod snp {
    /// Length of an attestation report.
    pub const REPORT_LEN: usize = 0x4A0;
    /// GUEST_SVN, u32 little-endian.
    pub const GUEST_SVN_OFFSET: usize = 0x004;
    /// POLICY, u64 little-endian.
    pub const POLICY_OFFSET: usize = 0x008;
    /// POLICY bit that allows a debugger to attach.
    pub const POLICY_DEBUG: u64 = 1 << 19;
    /// VMPL, u32 little-endian: the privilege level the report was requested at.
    pub const VMPL_OFFSET: usize = 0x030;
    /// HOST_DATA: set by whoever launches the guest, for the configuration it runs.
    pub const HOST_DATA_OFFSET: usize = 0x0C0;
    /// Length of HOST_DATA.
    pub const HOST_DATA_LEN: usize = 32;
    /// REPORT_DATA.
    pub const REPORT_DATA_OFFSET: usize = 0x050;
    /// MEASUREMENT.
    pub const MEASUREMENT_OFFSET: usize = 0x090;
    /// Length of MEASUREMENT.
    pub const MEASUREMENT_LEN: usize = 48;
    /// SIGNATURE, the last field.
    pub const SIGNATURE_OFFSET: usize = 0x2A0;

    const _: () = assert!(REPORT_DATA_OFFSET + super::REPORT_DATA_LEN == MEASUREMENT_OFFSET);
    const _: () = assert!(SIGNATURE_OFFSET + 512 == REPORT_LEN);
    const _: () = assert!(MEASUREMENT_OFFSET + MEASUREMENT_LEN == HOST_DATA_OFFSET);
}

/// What an attester reads back from its own evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnEvidence {
    /// The enclave's identity.
    pub identity: EnclaveIdentity,
    /// The report data the evidence carries.
    pub report_data: [u8; REPORT_DATA_LEN],
}

fn field<'a>(
    bytes: &'a [u8],
    offset: usize,
    len: usize,
    what: &str,
    name: &str,
) -> Result<&'a [u8], PlatformError> {
    offset
        .checked_add(len)
        .and_then(|end| bytes.get(offset..end))
        .ok_or_else(|| {
            PlatformError::Format(veritee_attest::VerifyError::malformed(
                what,
                format!(
                    "{} bytes is too short: {name} needs bytes {offset:#x}..{:#x}",
                    bytes.len(),
                    offset.saturating_add(len)
                ),
            ))
        })
}

fn array<const N: usize>(
    bytes: &[u8],
    offset: usize,
    what: &str,
    name: &str,
) -> Result<[u8; N], PlatformError> {
    let mut out = [0u8; N];
    out.copy_from_slice(field(bytes, offset, N, what, name)?);
    Ok(out)
}

fn u16_le(bytes: &[u8], offset: usize, what: &str, name: &str) -> Result<u16, PlatformError> {
    array::<2>(bytes, offset, what, name).map(u16::from_le_bytes)
}

fn u32_le(bytes: &[u8], offset: usize, what: &str, name: &str) -> Result<u32, PlatformError> {
    array::<4>(bytes, offset, what, name).map(u32::from_le_bytes)
}

fn u64_le(bytes: &[u8], offset: usize, what: &str, name: &str) -> Result<u64, PlatformError> {
    array::<8>(bytes, offset, what, name).map(u64::from_le_bytes)
}

fn malformed(what: &str, reason: impl Into<String>) -> PlatformError {
    PlatformError::Format(veritee_attest::VerifyError::malformed(what, reason.into()))
}

/// Offset of the report body in a DCAP quote of `tee_type`, after checking the header.
fn quote_body_offset(quote: &[u8], what: &str, tee_type: u32) -> Result<usize, PlatformError> {
    let version = u16_le(quote, 0, what, "version")?;
    let found_tee = u32_le(quote, QUOTE_TEE_TYPE_OFFSET, what, "TEE type")?;
    if found_tee != tee_type {
        return Err(malformed(
            what,
            format!("TEE type is {found_tee:#x}, expected {tee_type:#x}"),
        ));
    }
    match version {
        3 | 4 => Ok(QUOTE_HEADER_LEN),
        5 => Ok(QUOTE_HEADER_LEN + QUOTE_V5_BODY_DESCRIPTOR_LEN),
        other => Err(PlatformError::Format(
            veritee_attest::VerifyError::UnsupportedVersion {
                what: what.to_string(),
                version: u32::from(other),
            },
        )),
    }
}

/// Reads MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN, the debug attribute and the report
/// data from an SGX DCAP quote (version 3 or 4).
pub fn sgx_quote(quote: &[u8]) -> Result<OwnEvidence, PlatformError> {
    const WHAT: &str = "SGX quote";
    let body = quote_body_offset(quote, WHAT, TEE_TYPE_SGX)?;
    field(quote, body, sgx::REPORT_BODY_LEN, WHAT, "report body")?;
    let attributes = u64_le(quote, body + sgx::ATTRIBUTES_OFFSET, WHAT, "ATTRIBUTES")?;
    Ok(OwnEvidence {
        identity: EnclaveIdentity {
            measurement: field(
                quote,
                body + sgx::MRENCLAVE_OFFSET,
                sgx::MEASUREMENT_LEN,
                WHAT,
                "MRENCLAVE",
            )?
            .to_vec(),
            signer: Some(
                field(
                    quote,
                    body + sgx::MRSIGNER_OFFSET,
                    sgx::MEASUREMENT_LEN,
                    WHAT,
                    "MRSIGNER",
                )?
                .to_vec(),
            ),
            product_id: u16_le(quote, body + sgx::ISVPRODID_OFFSET, WHAT, "ISVPRODID")?,
            security_version: u16_le(quote, body + sgx::ISVSVN_OFFSET, WHAT, "ISVSVN")?,
            debug: attributes & sgx::ATTRIBUTE_DEBUG != 0,
            launch_config: None,
        },
        report_data: array(quote, body + sgx::REPORT_DATA_OFFSET, WHAT, "REPORTDATA")?,
    })
}

/// Reads CPUSVN from an SGX DCAP quote (version 3 or 4): what an SGX key request names
/// to derive keys at the CPU's current security version.
pub fn sgx_cpu_svn(quote: &[u8]) -> Result<[u8; sgx::CPUSVN_LEN], PlatformError> {
    const WHAT: &str = "SGX quote";
    let body = quote_body_offset(quote, WHAT, TEE_TYPE_SGX)?;
    array(quote, body + sgx::CPUSVN_OFFSET, WHAT, "CPUSVN")
}

/// Reads MRTD, the debug attribute and the report data from a TDX DCAP quote
/// (version 4, or 5 with a TD report body). A TD has no signer, product or security
/// version of its own: those are left empty.
pub fn tdx_quote(quote: &[u8]) -> Result<OwnEvidence, PlatformError> {
    const WHAT: &str = "TDX quote";
    let body = quote_body_offset(quote, WHAT, TEE_TYPE_TDX)?;
    if body != QUOTE_HEADER_LEN {
        let body_type = u16_le(quote, QUOTE_HEADER_LEN, WHAT, "body type")?;
        if !(2..=3).contains(&body_type) {
            return Err(malformed(
                WHAT,
                format!("body type {body_type} is not a TD report"),
            ));
        }
    }
    field(quote, body, tdx::REPORT_BODY_LEN, WHAT, "TD report body")?;
    let attributes = u64_le(
        quote,
        body + tdx::TD_ATTRIBUTES_OFFSET,
        WHAT,
        "TDATTRIBUTES",
    )?;
    Ok(OwnEvidence {
        identity: EnclaveIdentity {
            measurement: field(quote, body + tdx::MRTD_OFFSET, tdx::MRTD_LEN, WHAT, "MRTD")?
                .to_vec(),
            signer: None,
            product_id: 0,
            security_version: 0,
            debug: attributes & tdx::TD_ATTRIBUTE_DEBUG != 0,
            launch_config: Some(
                field(
                    quote,
                    body + tdx::MRCONFIGID_OFFSET,
                    tdx::MRTD_LEN,
                    WHAT,
                    "MRCONFIGID",
                )?
                .to_vec(),
            ),
        },
        report_data: array(quote, body + tdx::REPORT_DATA_OFFSET, WHAT, "REPORTDATA")?,
    })
}

/// Reads MEASUREMENT, GUEST_SVN, the debug policy bit and the report data from an
/// SEV-SNP attestation report. The guest's signer (ID and author keys) is optional in
/// SNP and left empty here; a GUEST_SVN above `u16::MAX` is reported as `u16::MAX`.
pub fn snp_report(report: &[u8]) -> Result<OwnEvidence, PlatformError> {
    const WHAT: &str = "SEV-SNP report";
    field(report, 0, snp::REPORT_LEN, WHAT, "the whole report")?;
    let version = u32_le(report, 0, WHAT, "VERSION")?;
    if version < 2 {
        return Err(PlatformError::Format(
            veritee_attest::VerifyError::UnsupportedVersion {
                what: WHAT.to_string(),
                version,
            },
        ));
    }
    let policy = u64_le(report, snp::POLICY_OFFSET, WHAT, "POLICY")?;
    let svn = u32_le(report, snp::GUEST_SVN_OFFSET, WHAT, "GUEST_SVN")?;
    Ok(OwnEvidence {
        identity: EnclaveIdentity {
            measurement: field(
                report,
                snp::MEASUREMENT_OFFSET,
                snp::MEASUREMENT_LEN,
                WHAT,
                "MEASUREMENT",
            )?
            .to_vec(),
            signer: None,
            product_id: 0,
            security_version: u16::try_from(svn).unwrap_or(u16::MAX),
            debug: policy & snp::POLICY_DEBUG != 0,
            launch_config: Some(
                field(
                    report,
                    snp::HOST_DATA_OFFSET,
                    snp::HOST_DATA_LEN,
                    WHAT,
                    "HOST_DATA",
                )?
                .to_vec(),
            ),
        },
        report_data: array(report, snp::REPORT_DATA_OFFSET, WHAT, "REPORT_DATA")?,
    })
}

/// The VMPL an SEV-SNP report was requested at.
pub fn snp_vmpl(report: &[u8]) -> Result<u32, PlatformError> {
    const WHAT: &str = "SEV-SNP report";
    field(report, 0, snp::REPORT_LEN, WHAT, "the whole report")?;
    u32_le(report, snp::VMPL_OFFSET, WHAT, "VMPL")
}

/// Logs (never fails on) evidence that carries other report data than was asked for:
/// the verifier rejects such evidence anyway, this only makes the cause visible early.
pub(crate) fn note_report_data(what: &str, asked: &[u8; REPORT_DATA_LEN], found: &[u8]) {
    if asked.as_slice() != found {
        tracing::warn!(
            "{what} carries report data {} instead of the {} written; it will not verify for this request",
            hex::encode(found),
            hex::encode(asked)
        );
    }
}
