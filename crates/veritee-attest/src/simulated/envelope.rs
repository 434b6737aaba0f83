//! The simulated evidence envelope: a report plus what is needed to verify it.
//!
//! ```text
//! SimEvidence v1, integers little-endian
//!
//! offset  size  field
//! 0x000      4  magic "VTEV"
//! 0x004      2  version = 1
//! 0x006      2  section count N, 2..=MAX_SECTIONS
//! 0x008         N sections, each:
//!                 2  type: 1 report, 2 machine certificate (DER), 3 CA certificate (DER),
//!                         4 CRL (DER), 5 TCB info document (JSON)
//!                 4  length L, at most MAX_SECTION_LEN
//!                 L  bytes
//! ```
//! Exactly one report and one machine certificate; any number of the others. The
//! collateral inside is vendor-signed, so a host that carries it cannot forge it; a
//! verifier may be given fresher collateral beside the envelope.

use crate::VerifyError;
use crate::bytes::Reader;

/// Magic at offset 0.
pub const MAGIC: [u8; 4] = *b"VTEV";
/// The only version this code writes and reads.
pub const VERSION: u16 = 1;
/// Most sections accepted.
pub const MAX_SECTIONS: u16 = 32;
/// Largest section accepted.
pub const MAX_SECTION_LEN: usize = 256 * 1024;
/// Largest envelope accepted.
pub const MAX_ENVELOPE_LEN: usize = 1024 * 1024;

const WHAT: &str = "simulated evidence";

/// Section types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum SectionType {
    /// The signed report.
    Report = 1,
    /// The machine's attestation certificate.
    MachineCertificate = 2,
    /// An intermediate CA certificate.
    CaCertificate = 3,
    /// A CRL.
    Crl = 4,
    /// A signed TCB info document.
    TcbInfo = 5,
}

impl SectionType {
    fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::Report,
            2 => Self::MachineCertificate,
            3 => Self::CaCertificate,
            4 => Self::Crl,
            5 => Self::TcbInfo,
            _ => return None,
        })
    }
}

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimEvidence {
    /// The report bytes.
    pub report: Vec<u8>,
    /// The machine certificate (DER).
    pub machine_certificate: Vec<u8>,
    /// CA certificates (DER).
    pub ca_certificates: Vec<Vec<u8>>,
    /// CRLs (DER).
    pub crls: Vec<Vec<u8>>,
    /// TCB info documents (JSON).
    pub tcb_infos: Vec<Vec<u8>>,
}

impl SimEvidence {
    /// Whether `bytes` starts like an envelope.
    pub fn recognizes(bytes: &[u8]) -> bool {
        bytes.starts_with(&MAGIC)
    }

    /// Encodes the envelope.
    pub fn encode(&self) -> Result<Vec<u8>, VerifyError> {
        let mut sections: Vec<(SectionType, &[u8])> = vec![
            (SectionType::Report, &self.report),
            (SectionType::MachineCertificate, &self.machine_certificate),
        ];
        sections.extend(
            self.ca_certificates
                .iter()
                .map(|c| (SectionType::CaCertificate, c.as_slice())),
        );
        sections.extend(self.crls.iter().map(|c| (SectionType::Crl, c.as_slice())));
        sections.extend(
            self.tcb_infos
                .iter()
                .map(|c| (SectionType::TcbInfo, c.as_slice())),
        );
        let count = u16::try_from(sections.len())
            .ok()
            .filter(|n| *n <= MAX_SECTIONS)
            .ok_or_else(|| {
                VerifyError::InvalidInput(format!("more than {MAX_SECTIONS} evidence sections"))
            })?;
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        for (kind, bytes) in sections {
            if bytes.len() > MAX_SECTION_LEN {
                return Err(VerifyError::TooLarge {
                    what: format!("{kind:?} section"),
                    size: bytes.len(),
                    limit: MAX_SECTION_LEN,
                });
            }
            out.extend_from_slice(&(kind as u16).to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        if out.len() > MAX_ENVELOPE_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: out.len(),
                limit: MAX_ENVELOPE_LEN,
            });
        }
        Ok(out)
    }

    /// Decodes an envelope, enforcing every limit before allocating.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: bytes.len(),
                limit: MAX_ENVELOPE_LEN,
            });
        }
        let mut r = Reader::new(WHAT, bytes);
        if r.array::<4>("magic")? != MAGIC {
            return Err(VerifyError::malformed(WHAT, "bad magic, expected \"VTEV\""));
        }
        let version = r.u16_le("version")?;
        if version != VERSION {
            return Err(VerifyError::UnsupportedVersion {
                what: WHAT.into(),
                version: version.into(),
            });
        }
        let count = r.u16_le("section count")?;
        if !(2..=MAX_SECTIONS).contains(&count) {
            return Err(VerifyError::malformed(
                WHAT,
                format!("{count} sections; between 2 and {MAX_SECTIONS} expected"),
            ));
        }
        let mut out = SimEvidence::default();
        let (mut reports, mut machine_certs) = (0, 0);
        for index in 0..count {
            let kind = r.u16_le("section type")?;
            let len = r.u32_le("section length")? as usize;
            if len > MAX_SECTION_LEN {
                return Err(VerifyError::TooLarge {
                    what: format!("section {index}"),
                    size: len,
                    limit: MAX_SECTION_LEN,
                });
            }
            let body = r.take(len, "section body")?.to_vec();
            match SectionType::from_u16(kind) {
                Some(SectionType::Report) => {
                    reports += 1;
                    out.report = body;
                }
                Some(SectionType::MachineCertificate) => {
                    machine_certs += 1;
                    out.machine_certificate = body;
                }
                Some(SectionType::CaCertificate) => out.ca_certificates.push(body),
                Some(SectionType::Crl) => out.crls.push(body),
                Some(SectionType::TcbInfo) => out.tcb_infos.push(body),
                None => {
                    return Err(VerifyError::malformed(
                        WHAT,
                        format!("section {index} has unknown type {kind}"),
                    ));
                }
            }
        }
        r.finish()?;
        if reports != 1 || machine_certs != 1 {
            return Err(VerifyError::malformed(
                WHAT,
                format!(
                    "{reports} report and {machine_certs} machine certificate sections; exactly one of each expected"
                ),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SimEvidence {
        SimEvidence {
            report: vec![1; 10],
            machine_certificate: vec![2; 5],
            ca_certificates: vec![vec![3; 4]],
            crls: vec![vec![4; 3], vec![5; 2]],
            tcb_infos: vec![b"{}".to_vec()],
        }
    }

    #[test]
    fn round_trip() {
        let e = sample();
        assert_eq!(SimEvidence::parse(&e.encode().unwrap()).unwrap(), e);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                SimEvidence::parse(&bytes[..cut]).is_err(),
                "cut at {cut} accepted"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(
            SimEvidence::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
    }

    #[test]
    fn limits_and_duplicates() {
        let mut bytes = sample().encode().unwrap();
        // Claim a huge first section.
        bytes[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            SimEvidence::parse(&bytes),
            Err(VerifyError::TooLarge { .. })
        ));
        // With an empty report, the machine certificate section's type sits at offset 14;
        // turning it into a second report must be refused.
        let mut e = sample();
        e.report.clear();
        let mut two_reports = e.encode().unwrap();
        assert_eq!(two_reports[14], SectionType::MachineCertificate as u8);
        two_reports[14] = SectionType::Report as u8;
        assert!(
            SimEvidence::parse(&two_reports)
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
        assert!(SimEvidence::parse(&vec![0; MAX_ENVELOPE_LEN + 1]).is_err());
        let mut bad_type = sample().encode().unwrap();
        bad_type[8] = 9;
        assert!(
            SimEvidence::parse(&bad_type)
                .unwrap_err()
                .to_string()
                .contains("unknown type 9")
        );
    }
}
