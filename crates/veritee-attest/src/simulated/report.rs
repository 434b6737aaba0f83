//! The simulated attestation report: a fixed binary layout, signed by the machine.
//!
//! ```text
//! SimReport v1: 0x160 (352) bytes, integers little-endian
//!
//! offset  size  field
//! 0x000      4  magic "VTSR"
//! 0x004      2  version = 1
//! 0x006      2  flags: bit 0 DEBUG, bit 1 SIMULATED (must be set), others zero
//! 0x008      4  platform TCB SVN (firmware level of the machine)
//! 0x00C      2  enclave security version (ISV SVN)
//! 0x00E      2  enclave product id
//! 0x010      8  timestamp: seconds since the Unix epoch, platform clock
//! 0x018     16  machine id
//! 0x028     48  measurement: SHA-384 over the enclave image
//! 0x058     48  signer: SHA-384 of the enclave signer's SubjectPublicKeyInfo, or zeros
//! 0x088     64  report data
//! 0x0C8     56  reserved, zero
//! 0x100     96  signature: ECDSA P-384/SHA-384, r || s, by the machine's attestation
//!               key over bytes 0x000..0x100
//! ```

use crate::bytes::Reader;
use crate::{REPORT_DATA_LEN, ReportData, VerifyError};

/// Magic at offset 0.
pub const MAGIC: [u8; 4] = *b"VTSR";
/// The only version this code writes and reads.
pub const VERSION: u16 = 1;
/// Length of the signed body.
pub const BODY_LEN: usize = 0x100;
/// Length of the signature.
pub const SIGNATURE_LEN: usize = 96;
/// Total length.
pub const REPORT_LEN: usize = BODY_LEN + SIGNATURE_LEN;
/// Length of a measurement or signer digest.
pub const DIGEST_LEN: usize = 48;
/// Length of a machine id.
pub const MACHINE_ID_LEN: usize = 16;
const RESERVED_LEN: usize = 56;

/// Flag: the enclave runs in debug mode.
pub const FLAG_DEBUG: u16 = 1 << 0;
/// Flag: the report comes from the simulated TEE. Always set.
pub const FLAG_SIMULATED: u16 = 1 << 1;
const KNOWN_FLAGS: u16 = FLAG_DEBUG | FLAG_SIMULATED;

const _: () = assert!(
    4 + 2 + 2 + 4 + 2 + 2 + 8 + MACHINE_ID_LEN + 2 * DIGEST_LEN + REPORT_DATA_LEN + RESERVED_LEN
        == BODY_LEN
);
const _: () = assert!(REPORT_LEN == 0x160);

/// The fields of a report body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBody {
    /// Debug enclave.
    pub debug: bool,
    /// Platform TCB SVN.
    pub tcb_svn: u32,
    /// Enclave security version.
    pub security_version: u16,
    /// Enclave product id.
    pub product_id: u16,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// Machine id.
    pub machine_id: [u8; MACHINE_ID_LEN],
    /// SHA-384 over the enclave image.
    pub measurement: [u8; DIGEST_LEN],
    /// SHA-384 of the signer's public key, or zeros.
    pub signer: [u8; DIGEST_LEN],
    /// Report data.
    pub report_data: ReportData,
}

impl ReportBody {
    /// Encodes the signed part.
    pub fn encode(&self) -> [u8; BODY_LEN] {
        let mut out = [0u8; BODY_LEN];
        let flags = FLAG_SIMULATED | if self.debug { FLAG_DEBUG } else { 0 };
        out[0x000..0x004].copy_from_slice(&MAGIC);
        out[0x004..0x006].copy_from_slice(&VERSION.to_le_bytes());
        out[0x006..0x008].copy_from_slice(&flags.to_le_bytes());
        out[0x008..0x00C].copy_from_slice(&self.tcb_svn.to_le_bytes());
        out[0x00C..0x00E].copy_from_slice(&self.security_version.to_le_bytes());
        out[0x00E..0x010].copy_from_slice(&self.product_id.to_le_bytes());
        out[0x010..0x018].copy_from_slice(&self.timestamp.to_le_bytes());
        out[0x018..0x028].copy_from_slice(&self.machine_id);
        out[0x028..0x058].copy_from_slice(&self.measurement);
        out[0x058..0x088].copy_from_slice(&self.signer);
        out[0x088..0x0C8].copy_from_slice(&self.report_data.0);
        out
    }
}

/// A parsed report: body fields, the signed bytes and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    /// The body fields.
    pub body: ReportBody,
    /// Bytes 0x000..0x100, as received (what the signature covers).
    pub signed_bytes: Vec<u8>,
    /// The r || s signature.
    pub signature: [u8; SIGNATURE_LEN],
}

impl SimReport {
    /// Parses exactly [`REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        const WHAT: &str = "simulated report";
        if bytes.len() != REPORT_LEN {
            return Err(VerifyError::malformed(
                WHAT,
                format!("{} bytes, expected {REPORT_LEN}", bytes.len()),
            ));
        }
        let mut r = Reader::new(WHAT, bytes);
        if r.array::<4>("magic")? != MAGIC {
            return Err(VerifyError::malformed(WHAT, "bad magic, expected \"VTSR\""));
        }
        let version = r.u16_le("version")?;
        if version != VERSION {
            return Err(VerifyError::UnsupportedVersion {
                what: WHAT.into(),
                version: version.into(),
            });
        }
        let flags = r.u16_le("flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(VerifyError::malformed(
                WHAT,
                format!("unknown flag bits {:#06x}", flags & !KNOWN_FLAGS),
            ));
        }
        if flags & FLAG_SIMULATED == 0 {
            return Err(VerifyError::malformed(
                WHAT,
                "the SIMULATED flag is clear; simulated reports always set it",
            ));
        }
        let tcb_svn = r.u32_le("tcb_svn")?;
        let security_version = r.u16_le("security_version")?;
        let product_id = r.u16_le("product_id")?;
        let timestamp = r.u64_le("timestamp")?;
        let machine_id = r.array("machine_id")?;
        let measurement = r.array("measurement")?;
        let signer = r.array("signer")?;
        let report_data = ReportData(r.array("report_data")?);
        if r.take(RESERVED_LEN, "reserved")?.iter().any(|b| *b != 0) {
            return Err(VerifyError::malformed(
                WHAT,
                "reserved bytes 0x0C8..0x100 are not zero",
            ));
        }
        let signature = r.array("signature")?;
        r.finish()?;
        Ok(Self {
            body: ReportBody {
                debug: flags & FLAG_DEBUG != 0,
                tcb_svn,
                security_version,
                product_id,
                timestamp,
                machine_id,
                measurement,
                signer,
                report_data,
            },
            signed_bytes: bytes[..BODY_LEN].to_vec(),
            signature,
        })
    }

    /// Assembles a report from a body and its signature.
    pub fn assemble(body: &[u8; BODY_LEN], signature: &[u8]) -> Result<Vec<u8>, VerifyError> {
        if signature.len() != SIGNATURE_LEN {
            return Err(VerifyError::InvalidInput(format!(
                "report signature must be {SIGNATURE_LEN} bytes, got {}",
                signature.len()
            )));
        }
        let mut out = Vec::with_capacity(REPORT_LEN);
        out.extend_from_slice(body);
        out.extend_from_slice(signature);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> ReportBody {
        ReportBody {
            debug: true,
            tcb_svn: 3,
            security_version: 7,
            product_id: 9,
            timestamp: 1_700_000_000,
            machine_id: [1; 16],
            measurement: [2; 48],
            signer: [3; 48],
            report_data: ReportData([4; 64]),
        }
    }

    #[test]
    fn round_trip_and_golden_offsets() {
        let b = body();
        let bytes = SimReport::assemble(&b.encode(), &[5; 96]).unwrap();
        assert_eq!(bytes.len(), REPORT_LEN);
        assert_eq!(&bytes[0..4], b"VTSR");
        assert_eq!(bytes[6], 0b11);
        assert_eq!(bytes[0x28], 2);
        assert_eq!(bytes[0x88], 4);
        assert_eq!(bytes[0x100], 5);
        let parsed = SimReport::parse(&bytes).unwrap();
        assert_eq!(parsed.body, b);
        assert_eq!(parsed.signature, [5; 96]);
    }

    #[test]
    fn rejects_bad_layouts() {
        let good = SimReport::assemble(&body().encode(), &[5; 96]).unwrap();
        assert!(SimReport::parse(&good[..REPORT_LEN - 1]).is_err());
        let mut long = good.clone();
        long.push(0);
        assert!(SimReport::parse(&long).is_err());
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(
            SimReport::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
        let mut bad = good.clone();
        bad[4] = 2;
        assert!(matches!(
            SimReport::parse(&bad),
            Err(VerifyError::UnsupportedVersion { version: 2, .. })
        ));
        let mut bad = good.clone();
        bad[6] = 0b01;
        assert!(
            SimReport::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("SIMULATED")
        );
        let mut bad = good.clone();
        bad[7] = 0x80;
        assert!(
            SimReport::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("unknown flag")
        );
        let mut bad = good;
        bad[0xD0] = 1;
        assert!(
            SimReport::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("reserved")
        );
    }
}
