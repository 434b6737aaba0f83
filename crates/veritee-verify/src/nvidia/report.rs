//! The NVIDIA Hopper attestation report: an SPDM 1.1 (DMTF DSP0274) GET_MEASUREMENTS
//! request followed by the GPU's signed MEASUREMENTS response, as nvtrust's
//! local_gpu_verifier (`spdm_msrt_req_msg.py`, `spdm_msrt_resp_msg.py`) and trustee's
//! `deps/verifier/src/nvidia` read it.
//!
//! ```text
//! report = request (37 bytes) || response; integers little-endian
//!
//! GET_MEASUREMENTS request
//! offset  size  field
//! 0x00       1  SPDMVersion = 0x11
//! 0x01       1  RequestResponseCode = 0xE0 (GET_MEASUREMENTS)
//! 0x02       1  Param1: bit 0 = a signature is requested (must be set)
//! 0x03       1  Param2: 0xFF all blocks, 1..=0xFE one block, 0 count only
//! 0x04      32  Nonce: the verifier's challenge (the report data)
//! 0x24       1  SlotIDParam: bits 0..3 the certificate slot
//!
//! MEASUREMENTS response (offsets from its start, at 0x25 in the report)
//! 0x00       1  SPDMVersion = 0x11
//! 0x01       1  RequestResponseCode = 0x60 (MEASUREMENTS)
//! 0x02       1  Param1
//! 0x03       1  Param2: bits 0..3 the slot that signed
//! 0x04       1  NumberOfBlocks N
//! 0x05       3  MeasurementRecordLength L1 (u24)
//! 0x08      L1  MeasurementRecord: N blocks, each
//!                 1  Index
//!                 1  MeasurementSpecification = 0x01 (DMTF)
//!                 2  MeasurementSize M
//!                 M  DMTF measurement: 1 value type, 2 value size V, V value bytes (M = 3 + V)
//! 8+L1      32  Nonce: the responder's
//! 40+L1      2  OpaqueLength L2
//! 42+L1     L2  OpaqueData: items of 2 type, 2 size S, S bytes (see [`OpaqueType`])
//! 42+L1+L2  96  Signature: ECDSA P-384, r || s, over SHA-384 of the request and the
//!               response up to here
//! ```
//!
//! Nothing may follow the signature.

use std::collections::BTreeMap;
use veritee_attest::VerifyError;
use veritee_attest::bytes::Reader;

/// SPDM 1.1, the only version Hopper GPUs speak and this parser reads.
pub const SPDM_VERSION_1_1: u8 = 0x11;
/// GET_MEASUREMENTS request code.
pub const GET_MEASUREMENTS: u8 = 0xe0;
/// MEASUREMENTS response code.
pub const MEASUREMENTS: u8 = 0x60;
/// Length of an SPDM nonce.
pub const NONCE_LEN: usize = 32;
/// Length of the request.
pub const REQUEST_LEN: usize = 37;
/// Length of the response's fixed header (up to the measurement record).
pub const RESPONSE_HEADER_LEN: usize = 8;
/// Length of a P-384 `r || s` signature.
pub const SIGNATURE_LEN: usize = 96;
/// Length of a measurement block's header.
pub const BLOCK_HEADER_LEN: usize = 4;
/// Length of a DMTF measurement's header.
pub const DMTF_HEADER_LEN: usize = 3;
/// MeasurementSpecification bit of DMTF-format measurements.
pub const DMTF_SPECIFICATION: u8 = 0x01;
/// Length of the FWID (a SHA-384 digest) in the opaque data.
pub const FWID_LEN: usize = 48;
/// Largest report accepted; real ones are about 4 KiB.
pub const MAX_REPORT_LEN: usize = 64 * 1024;
/// Param2 of a request for every measurement block.
pub const ALL_BLOCKS: u8 = 0xff;

const _: () = assert!(4 + NONCE_LEN + 1 == REQUEST_LEN);
const _: () = assert!(1 + 1 + 1 + 1 + 1 + 3 == RESPONSE_HEADER_LEN);
const _: () = assert!(SIGNATURE_LEN == 2 * 48);

const WHAT: &str = "NVIDIA SPDM attestation report";

/// The GET_MEASUREMENTS request the verifier sent (through the driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementsRequest {
    /// Param1 (bit 0: signature requested).
    pub param1: u8,
    /// Param2 (which measurements).
    pub param2: u8,
    /// The verifier's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// SlotIDParam.
    pub slot_id: u8,
}

/// One measurement block (DMTF format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementBlock {
    /// The block's index (1-based on Hopper).
    pub index: u8,
    /// DMTFSpecMeasurementValueType.
    pub value_type: u8,
    /// The measurement value.
    pub value: Vec<u8>,
}

/// Opaque data item types NVIDIA defines (trustee `OpaqueDataType`, nvtrust
/// `OPAQUE_DATA_TYPES`), with the names used in claims details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpaqueType(pub u16);

impl OpaqueType {
    /// The driver version, NUL-terminated text.
    pub const DRIVER_VERSION: Self = Self(3);
    /// The VBIOS version, 8 bytes.
    pub const VBIOS_VERSION: Self = Self(6);
    /// The firmware identifier, 48 bytes: must equal the leaf certificate's FWID.
    pub const FWID: Self = Self(20);

    /// The name NVIDIA's tools give the type, if it is one they define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "cert_issuer_name",
            2 => "cert_authority_key_identifier",
            3 => "driver_version",
            4 => "gpu_info",
            5 => "sku",
            6 => "vbios_version",
            7 => "manufacturer_id",
            8 => "tamper_detection",
            9 => "smc",
            10 => "vpr",
            11 => "nvdec0_status",
            12 => "measurement_count",
            13 => "cpr_info",
            14 => "board_id",
            15 => "chip_sku",
            16 => "chip_sku_mod",
            17 => "project",
            18 => "project_sku",
            19 => "project_sku_mod",
            20 => "fwid",
            21 => "protected_pcie_status",
            22 => "switch_pdi",
            23 => "floorswept_ports",
            24 => "position_id",
            25 => "lock_switch_status",
            32 => "gpu_link_conn",
            33 => "sys_enable_status",
            34 => "opaque_data_version",
            35 => "chip_info",
            36 => "feature_flag",
            _ => return None,
        })
    }

    /// Whether the item is NUL-padded text.
    fn is_text(self) -> bool {
        matches!(self.0, 3 | 15 | 16 | 17 | 18 | 35)
    }
}

/// The MEASUREMENTS response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementsResponse {
    /// Param1.
    pub param1: u8,
    /// Param2 (bits 0..3: slot).
    pub param2: u8,
    /// The measurement blocks, in report order.
    pub blocks: Vec<MeasurementBlock>,
    /// The responder's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Opaque data items by type, in report order.
    pub opaque: Vec<(OpaqueType, Vec<u8>)>,
}

/// A parsed report: request, response, signature and the bytes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdmReport {
    /// The request.
    pub request: MeasurementsRequest,
    /// The response.
    pub response: MeasurementsResponse,
    /// Request and response up to the signature: what the signature covers.
    pub signed_bytes: Vec<u8>,
    /// The signature, `r || s`.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Whether `bytes` starts like a report: SPDM 1.x request code 0xE0 at offset 1 and
/// response code 0x60 at offset 38, the same version byte at offsets 0 and 37.
pub fn looks_like(bytes: &[u8]) -> bool {
    matches!(bytes, [v, GET_MEASUREMENTS, ..] if (0x10..=0x1f).contains(v))
        && matches!(bytes.get(REQUEST_LEN..REQUEST_LEN + 2), Some([v, MEASUREMENTS]) if *v == bytes[0])
}

fn u24_le(r: &mut Reader<'_>, field: &str) -> Result<usize, VerifyError> {
    let b = r.array::<3>(field)?;
    Ok(usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16)
}

fn version(byte: u8, what: &str) -> Result<(), VerifyError> {
    if byte != SPDM_VERSION_1_1 {
        return Err(VerifyError::UnsupportedVersion {
            what: format!("SPDM {what} (only 1.1, 0x11, is read)"),
            version: u32::from(byte),
        });
    }
    Ok(())
}

impl SpdmReport {
    /// Parses a report (raw bytes, not hex).
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_REPORT_LEN {
            return Err(VerifyError::TooLarge {
                what: WHAT.into(),
                size: bytes.len(),
                limit: MAX_REPORT_LEN,
            });
        }
        let mut r = Reader::new(WHAT, bytes);
        let request = Self::request(&mut r)?;
        let response = Self::response(&mut r, &request)?;
        let signed_len = r.offset();
        let signature = r.array::<SIGNATURE_LEN>("signature")?;
        r.finish()?;
        Ok(Self {
            request,
            response,
            signed_bytes: bytes[..signed_len].to_vec(),
            signature,
        })
    }

    fn request(r: &mut Reader<'_>) -> Result<MeasurementsRequest, VerifyError> {
        let [v, code, param1, param2] = r.array::<4>("request header")?;
        version(v, "GET_MEASUREMENTS request")?;
        if code != GET_MEASUREMENTS {
            return Err(VerifyError::malformed(
                WHAT,
                format!("request code {code:#04x}, not GET_MEASUREMENTS (0xe0)"),
            ));
        }
        if param1 & 1 == 0 {
            return Err(VerifyError::malformed(
                WHAT,
                "the request did not ask for a signature (Param1 bit 0 clear)",
            ));
        }
        let nonce = r.array::<NONCE_LEN>("request nonce")?;
        let [slot_id] = r.array::<1>("request SlotIDParam")?;
        Ok(MeasurementsRequest {
            param1,
            param2,
            nonce,
            slot_id,
        })
    }

    fn response(
        r: &mut Reader<'_>,
        request: &MeasurementsRequest,
    ) -> Result<MeasurementsResponse, VerifyError> {
        let [v, code, param1, param2, count] = r.array::<5>("response header")?;
        version(v, "MEASUREMENTS response")?;
        if code != MEASUREMENTS {
            return Err(VerifyError::malformed(
                WHAT,
                format!("response code {code:#04x}, not MEASUREMENTS (0x60)"),
            ));
        }
        if param2 & 0x0f != request.slot_id & 0x0f {
            return Err(VerifyError::Inconsistent(format!(
                "the response was signed with certificate slot {}, the request asked for slot {}",
                param2 & 0x0f,
                request.slot_id & 0x0f
            )));
        }
        let record_len = u24_le(r, "MeasurementRecordLength")?;
        let record = r.take(record_len, "measurement record")?;
        let blocks = Self::blocks(record, count)?;
        match request.param2 {
            0 if !blocks.is_empty() => {
                return Err(VerifyError::Inconsistent(
                    "the request asked for no measurement, the response has some".into(),
                ));
            }
            ALL_BLOCKS if blocks.is_empty() => {
                return Err(VerifyError::malformed(
                    WHAT,
                    "the response to a request for all measurements has none",
                ));
            }
            one @ 1..=0xfe if blocks.len() != 1 || blocks.first().map(|b| b.index) != Some(one) => {
                return Err(VerifyError::Inconsistent(format!(
                    "the request asked for measurement block {one}, the response does not have exactly that block"
                )));
            }
            _ => {}
        }
        let nonce = r.array::<NONCE_LEN>("response nonce")?;
        let opaque_len = usize::from(r.u16_le("OpaqueLength")?);
        let opaque = Self::opaque(r.take(opaque_len, "opaque data")?)?;
        Ok(MeasurementsResponse {
            param1,
            param2,
            blocks,
            nonce,
            opaque,
        })
    }

    fn blocks(record: &[u8], count: u8) -> Result<Vec<MeasurementBlock>, VerifyError> {
        let mut r = Reader::new("NVIDIA SPDM measurement record", record);
        let mut blocks: Vec<MeasurementBlock> = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let [index, specification] = r.array::<2>("measurement block header")?;
            let size = usize::from(r.u16_le("MeasurementSize")?);
            if specification != DMTF_SPECIFICATION {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!(
                        "measurement block {index} has specification {specification:#04x}, only DMTF (0x01) is read"
                    ),
                ));
            }
            if blocks.iter().any(|b| b.index == index) {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!("measurement block {index} appears twice"),
                ));
            }
            let mut m = Reader::new("NVIDIA DMTF measurement", r.take(size, "measurement")?);
            let [value_type] = m.array::<1>("DMTFSpecMeasurementValueType")?;
            let value_size = usize::from(m.u16_le("DMTFSpecMeasurementValueSize")?);
            let value = m.take(value_size, "DMTFSpecMeasurementValue")?.to_vec();
            m.finish()?;
            blocks.push(MeasurementBlock {
                index,
                value_type,
                value,
            });
        }
        r.finish()?;
        Ok(blocks)
    }

    fn opaque(data: &[u8]) -> Result<Vec<(OpaqueType, Vec<u8>)>, VerifyError> {
        let mut r = Reader::new("NVIDIA SPDM opaque data", data);
        let mut items: Vec<(OpaqueType, Vec<u8>)> = Vec::new();
        while r.remaining() > 0 {
            let kind = OpaqueType(r.u16_le("opaque data type")?);
            let size = usize::from(r.u16_le("opaque data size")?);
            let value = r.take(size, "opaque data value")?.to_vec();
            if items.iter().any(|(k, _)| *k == kind) {
                return Err(VerifyError::malformed(
                    WHAT,
                    format!("opaque data type {} appears twice", kind.0),
                ));
            }
            items.push((kind, value));
        }
        Ok(items)
    }
}

impl MeasurementsResponse {
    /// The opaque data item of `kind`, if present.
    pub fn opaque_item(&self, kind: OpaqueType) -> Option<&[u8]> {
        self.opaque
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }

    /// The FWID the GPU reports.
    pub fn fwid(&self) -> Result<&[u8], VerifyError> {
        match self.opaque_item(OpaqueType::FWID) {
            Some(fwid) if fwid.len() == FWID_LEN => Ok(fwid),
            Some(fwid) => Err(VerifyError::malformed(
                WHAT,
                format!("the FWID is {} bytes, not {FWID_LEN}", fwid.len()),
            )),
            None => Err(VerifyError::malformed(
                WHAT,
                "the opaque data has no FWID (type 20)",
            )),
        }
    }

    /// The opaque data as readable strings by NVIDIA's names: text items trimmed of
    /// NUL padding, the VBIOS version formatted as nvtrust does, the rest as hex.
    pub fn opaque_details(&self) -> BTreeMap<String, String> {
        self.opaque
            .iter()
            .map(|(kind, value)| {
                let name = kind
                    .name()
                    .map_or_else(|| format!("opaque_type_{}", kind.0), str::to_string);
                let text = if *kind == OpaqueType::VBIOS_VERSION {
                    vbios_version(value).unwrap_or_else(|| hex::encode(value))
                } else if kind.is_text() {
                    String::from_utf8_lossy(value)
                        .trim_end_matches('\0')
                        .to_string()
                } else {
                    hex::encode(value)
                };
                (name, text)
            })
            .collect()
    }
}

/// nvtrust's VBIOS version format: the first half of the bytes reversed, then the
/// first byte of the second half, as dotted hex: `009f009601000000` -> `96.00.9f.00.01`.
pub fn vbios_version(bytes: &[u8]) -> Option<String> {
    let (first, second) = bytes.split_at_checked(bytes.len() / 2)?;
    let last = second.first()?;
    let mut parts: Vec<String> = first.iter().rev().map(|b| format!("{b:02x}")).collect();
    parts.push(format!("{last:02x}"));
    Some(parts.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vbios_format_matches_nvtrust() {
        assert_eq!(
            vbios_version(&hex::decode("009f009601000000").unwrap()).unwrap(),
            "96.00.9f.00.01"
        );
        assert_eq!(vbios_version(&[]), None);
    }

    #[test]
    fn recognition_needs_both_codes() {
        let mut bytes = vec![0u8; 64];
        bytes[0] = 0x11;
        bytes[1] = 0xe0;
        assert!(!looks_like(&bytes));
        bytes[37] = 0x11;
        bytes[38] = 0x60;
        assert!(looks_like(&bytes));
        bytes[37] = 0x12;
        assert!(!looks_like(&bytes));
        assert!(!looks_like(b"VTEV"));
        assert!(!looks_like(&[0x11, 0xe0]));
    }
}
