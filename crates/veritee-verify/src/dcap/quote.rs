//! The DCAP quote layout: header, report body and ECDSA signature data, versions 3, 4, 5.
//!
//! Every read is bounded by the quote's own length fields: the body by its type (and, in
//! v5, its size field), the signature data by its 32-bit length. Bytes after the signature
//! data are padding (quote buffers are often handed over at a fixed size, e.g. 8000
//! bytes), counted in [`Quote::padding`]; they must be zero, so that no two quotes that
//! differ there both verify.
//!
//! ```text
//! Quote (integers little-endian)
//!
//! offset  size  field
//! 0x000     48  header (below)
//! 0x030      6  v5 only: body descriptor: u16 body type (1 SGX, 2 TDX 1.0, 3 TDX 1.5),
//!               u32 body size (384, 584, 648)
//! 0x030/36   B  body: SGX report body (384), TD report 1.0 (584) or 1.5 (648)
//!  ...       4  signature data length L
//!  ...       L  ECDSA-256 signature data (below)
//!  ...       *  padding, zero
//!
//! The quote signature covers everything before the signature data length.
//!
//! Header, 48 bytes
//! 0x00   2  version (3, 4, 5)
//! 0x02   2  attestation key type (2 = ECDSA-256 with P-256)
//! 0x04   4  TEE type (0x00000000 SGX, 0x00000081 TDX; reserved zero in v3)
//! 0x08   2  QE SVN
//! 0x0A   2  PCE SVN
//! 0x0C  16  QE vendor id (Intel: 939a7233f79c4ca9940a0db3957f0607)
//! 0x1C  20  user data (QE id in the first 16 bytes)
//!
//! SGX report body (also the QE report), 384 bytes
//! 0x000  16  CPUSVN                      0x0A0  32  reserved
//! 0x010   4  MISCSELECT                  0x0C0  64  CONFIGID
//! 0x014  12  reserved                    0x100   2  ISVPRODID
//! 0x020  16  ISVEXTPRODID                0x102   2  ISVSVN
//! 0x030  16  ATTRIBUTES (byte 0 bit 1:   0x104   2  CONFIGSVN
//!            DEBUG)                      0x106  42  reserved
//! 0x040  32  MRENCLAVE                   0x130  16  ISVFAMILYID
//! 0x060  32  reserved                    0x140  64  REPORTDATA
//! 0x080  32  MRSIGNER
//!
//! TD report body 1.0, 584 bytes (1.5 appends 64: TEE_TCB_SVN2 16, MRSERVICETD 48)
//! 0x000  16  TEE_TCB_SVN                 0x0B8  48  MRCONFIGID
//! 0x010  48  MRSEAM                      0x0E8  48  MROWNER
//! 0x040  48  MRSIGNERSEAM                0x118  48  MROWNERCONFIG
//! 0x070   8  SEAMATTRIBUTES              0x148  48  RTMR0
//! 0x078   8  TDATTRIBUTES (bit 0: DEBUG) 0x178  48  RTMR1
//! 0x080   8  XFAM                        0x1A8  48  RTMR2
//! 0x088  48  MRTD                        0x1D8  48  RTMR3
//!                                        0x208  64  REPORTDATA
//!
//! ECDSA-256 signature data, v3
//!   0    64  quote signature, r || s
//!  64    64  attestation public key, x || y
//! 128   384  QE report (SGX report body)
//! 512    64  QE report signature by the PCK key, r || s
//! 576     2  QE authentication data length N, then N bytes
//!  ..     2  certification data type (5 = PCK certificate chain, PEM)
//!  ..     4  certification data length M, then M bytes
//!
//! ECDSA-256 signature data, v4 and v5
//!   0    64  quote signature, r || s
//!  64    64  attestation public key, x || y
//! 128     2  certification data type (6 = QE report certification data)
//! 130     4  length M, then M bytes:
//!              0  384  QE report
//!            384   64  QE report signature
//!            448    2  QE authentication data length N, then N bytes
//!             ..    2  certification data type (5), 4 length, then the PEM chain
//! ```

use veritee_attest::VerifyError;
use veritee_attest::bytes::Reader;

/// Header length.
pub const HEADER_LEN: usize = 48;
/// v5 body descriptor length (type and size).
pub const BODY_DESCRIPTOR_LEN: usize = 6;
/// SGX report body length (ISV enclave report and QE report).
pub const SGX_REPORT_LEN: usize = 384;
/// TD report body length, TDX 1.0.
pub const TD_REPORT10_LEN: usize = 584;
/// TD report body length, TDX 1.5.
pub const TD_REPORT15_LEN: usize = TD_REPORT10_LEN + 16 + 48;
/// An ECDSA P-256 `r || s` signature.
pub const ECDSA_SIGNATURE_LEN: usize = 64;
/// An ECDSA P-256 public key, `x || y`.
pub const ECDSA_KEY_LEN: usize = 64;
/// Largest quote accepted, padding included (real ones are 4 to 8 KiB).
pub const MAX_QUOTE_LEN: usize = 256 * 1024;

/// Attestation key type: ECDSA-256 with P-256.
pub const ATTESTATION_KEY_ECDSA_P256: u16 = 2;
/// TEE type of SGX quotes.
pub const TEE_TYPE_SGX: u32 = 0x0000_0000;
/// TEE type of TDX quotes.
pub const TEE_TYPE_TDX: u32 = 0x0000_0081;
/// Intel's QE vendor id.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// Certification data type: PCK certificate chain (PEM).
pub const CERT_TYPE_PCK_CHAIN: u16 = 5;
/// Certification data type: QE report certification data.
pub const CERT_TYPE_QE_REPORT: u16 = 6;

/// v5 body type: SGX report body.
pub const BODY_TYPE_SGX: u16 = 1;
/// v5 body type: TD report, TDX 1.0.
pub const BODY_TYPE_TD10: u16 = 2;
/// v5 body type: TD report, TDX 1.5.
pub const BODY_TYPE_TD15: u16 = 3;

const _: () = assert!(2 + 2 + 4 + 2 + 2 + 16 + 20 == HEADER_LEN);
const _: () = assert!(
    16 + 4 + 12 + 16 + 16 + 32 + 32 + 32 + 32 + 64 + 2 + 2 + 2 + 42 + 16 + 64 == SGX_REPORT_LEN
);
const _: () = assert!(16 + 48 + 48 + 8 + 8 + 8 + 48 * 4 + 48 * 4 + 64 == TD_REPORT10_LEN);
const _: () = assert!(TD_REPORT15_LEN == 648);

const WHAT: &str = "DCAP quote";

/// The quote header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteHeader {
    /// Quote version (3, 4, 5).
    pub version: u16,
    /// Attestation key type (2 = ECDSA-256 with P-256).
    pub attestation_key_type: u16,
    /// TEE type (0 SGX, 0x81 TDX).
    pub tee_type: u32,
    /// SVN of the quoting enclave.
    pub qe_svn: u16,
    /// SVN of the provisioning certification enclave.
    pub pce_svn: u16,
    /// QE vendor id.
    pub qe_vendor_id: [u8; 16],
    /// User data (the QE id in the first 16 bytes).
    pub user_data: [u8; 20],
}

impl QuoteHeader {
    /// Parses the 48-byte header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, VerifyError> {
        Ok(Self {
            version: r.u16_le("header version")?,
            attestation_key_type: r.u16_le("attestation key type")?,
            tee_type: r.u32_le("TEE type")?,
            qe_svn: r.u16_le("QE SVN")?,
            pce_svn: r.u16_le("PCE SVN")?,
            qe_vendor_id: r.array("QE vendor id")?,
            user_data: r.array("user data")?,
        })
    }
}

/// An SGX report body: the ISV enclave's report in an SGX quote, and the QE report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgxReport {
    /// CPUSVN.
    pub cpu_svn: [u8; 16],
    /// MISCSELECT, as stored (little-endian).
    pub misc_select: [u8; 4],
    /// ISVEXTPRODID.
    pub isv_ext_prod_id: [u8; 16],
    /// ATTRIBUTES (flags then XFRM).
    pub attributes: [u8; 16],
    /// MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// MRSIGNER.
    pub mr_signer: [u8; 32],
    /// CONFIGID.
    pub config_id: [u8; 64],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// CONFIGSVN.
    pub config_svn: u16,
    /// ISVFAMILYID.
    pub isv_family_id: [u8; 16],
    /// REPORTDATA.
    pub report_data: [u8; 64],
}

impl SgxReport {
    /// Parses exactly [`SGX_REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        let mut r = Reader::new("SGX report body", bytes);
        let cpu_svn = r.array("CPUSVN")?;
        let misc_select = r.array("MISCSELECT")?;
        r.take(12, "reserved")?;
        let isv_ext_prod_id = r.array("ISVEXTPRODID")?;
        let attributes = r.array("ATTRIBUTES")?;
        let mr_enclave = r.array("MRENCLAVE")?;
        r.take(32, "reserved")?;
        let mr_signer = r.array("MRSIGNER")?;
        r.take(32, "reserved")?;
        let config_id = r.array("CONFIGID")?;
        let isv_prod_id = r.u16_le("ISVPRODID")?;
        let isv_svn = r.u16_le("ISVSVN")?;
        let config_svn = r.u16_le("CONFIGSVN")?;
        r.take(42, "reserved")?;
        let isv_family_id = r.array("ISVFAMILYID")?;
        let report_data = r.array("REPORTDATA")?;
        r.finish()?;
        Ok(Self {
            cpu_svn,
            misc_select,
            isv_ext_prod_id,
            attributes,
            mr_enclave,
            mr_signer,
            config_id,
            isv_prod_id,
            isv_svn,
            config_svn,
            isv_family_id,
            report_data,
        })
    }

    /// The DEBUG attribute (ATTRIBUTES.FLAGS bit 1).
    pub fn debug(&self) -> bool {
        self.attributes[0] & 0x02 != 0
    }
}

/// A TD report body (TDX 1.0, or 1.5 with the extra fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport {
    /// TEE_TCB_SVN: [0] TDX module minor SVN, [1] module major version, [2..] further SVNs.
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM: the TDX module's measurement.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM: the TDX module signer (zero for Intel's modules).
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// TDATTRIBUTES.
    pub td_attributes: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// MRTD: the TD's build-time measurement.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// RTMR0..RTMR3.
    pub rtmr: [[u8; 48]; 4],
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// TDX 1.5: TEE_TCB_SVN2 (the current TCB after a TD-preserving module update) and
    /// MRSERVICETD.
    pub tdx15: Option<([u8; 16], [u8; 48])>,
}

impl TdReport {
    /// Parses a TDX 1.0 ([`TD_REPORT10_LEN`]) or 1.5 ([`TD_REPORT15_LEN`]) body.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        let mut r = Reader::new("TD report body", bytes);
        let tee_tcb_svn = r.array("TEE_TCB_SVN")?;
        let mr_seam = r.array("MRSEAM")?;
        let mr_signer_seam = r.array("MRSIGNERSEAM")?;
        let seam_attributes = r.array("SEAMATTRIBUTES")?;
        let td_attributes = r.array("TDATTRIBUTES")?;
        let xfam = r.array("XFAM")?;
        let mr_td = r.array("MRTD")?;
        let mr_config_id = r.array("MRCONFIGID")?;
        let mr_owner = r.array("MROWNER")?;
        let mr_owner_config = r.array("MROWNERCONFIG")?;
        let rtmr = [
            r.array("RTMR0")?,
            r.array("RTMR1")?,
            r.array("RTMR2")?,
            r.array("RTMR3")?,
        ];
        let report_data = r.array("REPORTDATA")?;
        let tdx15 = if r.remaining() == 0 {
            None
        } else {
            Some((r.array("TEE_TCB_SVN2")?, r.array("MRSERVICETD")?))
        };
        r.finish()?;
        Ok(Self {
            tee_tcb_svn,
            mr_seam,
            mr_signer_seam,
            seam_attributes,
            td_attributes,
            xfam,
            mr_td,
            mr_config_id,
            mr_owner,
            mr_owner_config,
            rtmr,
            report_data,
            tdx15,
        })
    }

    /// The DEBUG bit of TDATTRIBUTES (bit 0).
    pub fn debug(&self) -> bool {
        self.td_attributes[0] & 0x01 != 0
    }
}

/// What the quote attests.
#[allow(
    clippy::large_enum_variant,
    reason = "one body per parsed quote; boxing would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteBody {
    /// An SGX enclave.
    Sgx(SgxReport),
    /// A TDX trust domain (TDX 1.0 or 1.5).
    Td(TdReport),
}

/// A parsed quote. Slices borrow from the quote bytes.
#[derive(Debug, Clone)]
pub struct Quote<'a> {
    /// The header.
    pub header: QuoteHeader,
    /// v5 body type (1, 2, 3); `None` for v3/v4, whose body follows from the TEE type.
    pub body_type: Option<u16>,
    /// The report body.
    pub body: QuoteBody,
    /// Header, descriptor and body: what the quote signature covers.
    pub signed: &'a [u8],
    /// The quote signature by the attestation key, `r || s`.
    pub signature: [u8; ECDSA_SIGNATURE_LEN],
    /// The attestation public key, `x || y`.
    pub attestation_key: [u8; ECDSA_KEY_LEN],
    /// The QE report, as signed by the PCK key.
    pub qe_report_bytes: &'a [u8],
    /// The QE report, parsed.
    pub qe_report: SgxReport,
    /// QE report signature by the PCK key, `r || s`.
    pub qe_report_signature: [u8; ECDSA_SIGNATURE_LEN],
    /// QE authentication data.
    pub qe_auth_data: &'a [u8],
    /// The PCK certificate chain (PEM, leaf first), from certification data type 5.
    pub pck_chain_pem: &'a [u8],
    /// Bytes after the signature data, ignored.
    pub padding: usize,
}

/// Reads `u16 type, u32 length, data` certification data.
fn certification_data<'a>(r: &mut Reader<'a>) -> Result<(u16, &'a [u8]), VerifyError> {
    let cert_type = r.u16_le("certification data type")?;
    let len = r.u32_le("certification data length")?;
    let len = usize::try_from(len)
        .map_err(|_| VerifyError::malformed(WHAT, "certification data length overflows"))?;
    Ok((cert_type, r.take(len, "certification data")?))
}

/// The QE report, its signature, QE authentication data and the PCK chain: laid out
/// directly in v3 signature data, inside certification data type 6 in v4/v5.
struct QeReportData<'a> {
    report: &'a [u8],
    signature: [u8; ECDSA_SIGNATURE_LEN],
    auth_data: &'a [u8],
    pck_chain: &'a [u8],
}

fn qe_report_data<'a>(r: &mut Reader<'a>) -> Result<QeReportData<'a>, VerifyError> {
    let report = r.take(SGX_REPORT_LEN, "QE report")?;
    let signature = r.array("QE report signature")?;
    let auth_len = usize::from(r.u16_le("QE authentication data length")?);
    let auth_data = r.take(auth_len, "QE authentication data")?;
    let (cert_type, pck_chain) = certification_data(r)?;
    if cert_type != CERT_TYPE_PCK_CHAIN {
        return Err(VerifyError::UnsupportedVersion {
            what: "QE certification data type (only 5, the PCK certificate chain, is supported)"
                .into(),
            version: cert_type.into(),
        });
    }
    Ok(QeReportData {
        report,
        signature,
        auth_data,
        pck_chain,
    })
}

impl<'a> Quote<'a> {
    /// Parses a quote; trailing zero padding after the signature data is tolerated.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_QUOTE_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: bytes.len(),
                limit: MAX_QUOTE_LEN,
            });
        }
        let mut r = Reader::new(WHAT, bytes);
        let header = QuoteHeader::parse(&mut r)?;
        if !(3..=5).contains(&header.version) {
            return Err(VerifyError::UnsupportedVersion {
                what: WHAT.into(),
                version: header.version.into(),
            });
        }
        if header.attestation_key_type != ATTESTATION_KEY_ECDSA_P256 {
            return Err(VerifyError::UnsupportedVersion {
                what: "quote attestation key type (only 2, ECDSA-256 with P-256, is supported)"
                    .into(),
                version: header.attestation_key_type.into(),
            });
        }
        let tee_type = match (header.version, header.tee_type) {
            (3..=5, TEE_TYPE_SGX) => TEE_TYPE_SGX,
            (4 | 5, TEE_TYPE_TDX) => TEE_TYPE_TDX,
            (version, other) => {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!("TEE type {other:#010x} is not valid in a version {version} quote"),
                ));
            }
        };
        let (body_type, body_len) = if header.version == 5 {
            let body_type = r.u16_le("body type")?;
            let size = r.u32_le("body size")?;
            let (expected_tee, len) = match body_type {
                BODY_TYPE_SGX => (TEE_TYPE_SGX, SGX_REPORT_LEN),
                BODY_TYPE_TD10 => (TEE_TYPE_TDX, TD_REPORT10_LEN),
                BODY_TYPE_TD15 => (TEE_TYPE_TDX, TD_REPORT15_LEN),
                other => {
                    return Err(VerifyError::UnsupportedVersion {
                        what: "quote v5 body type (1 SGX, 2 TDX 1.0, 3 TDX 1.5 are supported)"
                            .into(),
                        version: other.into(),
                    });
                }
            };
            if expected_tee != tee_type {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!("body type {body_type} does not match TEE type {tee_type:#010x}"),
                ));
            }
            if usize::try_from(size).ok() != Some(len) {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!(
                        "body type {body_type} has {len} bytes, the body size field says {size}"
                    ),
                ));
            }
            (Some(body_type), len)
        } else if tee_type == TEE_TYPE_SGX {
            (None, SGX_REPORT_LEN)
        } else {
            (None, TD_REPORT10_LEN)
        };
        let body_bytes = r.take(body_len, "report body")?;
        let body = if tee_type == TEE_TYPE_SGX {
            QuoteBody::Sgx(SgxReport::parse(body_bytes)?)
        } else {
            QuoteBody::Td(TdReport::parse(body_bytes)?)
        };
        let signed_len = r.offset();
        let signed = bytes
            .get(..signed_len)
            .ok_or_else(|| VerifyError::malformed(WHAT, "signed part out of range"))?;

        let sig_len = r.u32_le("signature data length")?;
        let sig_len = usize::try_from(sig_len)
            .map_err(|_| VerifyError::malformed(WHAT, "signature data length overflows"))?;
        let sig_data = r.take(sig_len, "signature data")?;
        let padding = r.remaining();
        let after = r.take(padding, "padding")?;
        if let Some(at) = after.iter().position(|b| *b != 0) {
            return Err(VerifyError::malformed(
                WHAT,
                format!(
                    "the padding after the signature data must be zero (byte {} of the quote is not)",
                    r.offset() - padding + at
                ),
            ));
        }

        let mut s = Reader::new("DCAP quote signature data", sig_data);
        let signature = s.array("quote signature")?;
        let attestation_key = s.array("attestation key")?;
        let qe = if header.version == 3 {
            qe_report_data(&mut s)?
        } else {
            let (cert_type, inner) = certification_data(&mut s)?;
            if cert_type != CERT_TYPE_QE_REPORT {
                return Err(VerifyError::UnsupportedVersion {
                    what: "quote certification data type (v4/v5 quotes need 6, QE report certification data)"
                        .into(),
                    version: cert_type.into(),
                });
            }
            let mut q = Reader::new("QE report certification data", inner);
            let qe = qe_report_data(&mut q)?;
            q.finish()?;
            qe
        };
        s.finish()?;
        Ok(Self {
            header,
            body_type,
            body,
            signed,
            signature,
            attestation_key,
            qe_report_bytes: qe.report,
            qe_report: SgxReport::parse(qe.report)?,
            qe_report_signature: qe.signature,
            qe_auth_data: qe.auth_data,
            pck_chain_pem: qe.pck_chain,
            padding,
        })
    }

    /// Whether this is a TDX quote.
    pub fn is_tdx(&self) -> bool {
        matches!(self.body, QuoteBody::Td(_))
    }

    /// The 64 bytes of report data the workload bound.
    pub fn report_data(&self) -> &[u8; 64] {
        match &self.body {
            QuoteBody::Sgx(report) => &report.report_data,
            QuoteBody::Td(report) => &report.report_data,
        }
    }
}

/// A cheap look at the header: `Some(true)` for a TDX quote, `Some(false)` for SGX,
/// `None` when `bytes` does not start like an ECDSA-256 DCAP quote of version 3 to 5.
pub fn sniff(bytes: &[u8]) -> Option<bool> {
    let field = |range: core::ops::Range<usize>| bytes.get(range);
    let u16_at = |at: usize| field(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let version = u16_at(0)?;
    let key_type = u16_at(2)?;
    let tee = field(4..8).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))?;
    if bytes.len() < HEADER_LEN || key_type != ATTESTATION_KEY_ECDSA_P256 {
        return None;
    }
    match (version, tee) {
        (3 | 4, TEE_TYPE_SGX) => Some(false),
        (4, TEE_TYPE_TDX) => Some(true),
        (5, TEE_TYPE_SGX | TEE_TYPE_TDX) => match (u16_at(HEADER_LEN)?, tee) {
            (BODY_TYPE_SGX, TEE_TYPE_SGX) => Some(false),
            (BODY_TYPE_TD10 | BODY_TYPE_TD15, TEE_TYPE_TDX) => Some(true),
            _ => None,
        },
        _ => None,
    }
}
