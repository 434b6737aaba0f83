//! Intel's QE identity (enclave identity version 2, ids `QE` and `TD_QE`), as signed JSON.

use super::parse_date;
use super::tcb_info::{RawIsvSvn, hex_field, parse_status};
use serde::Deserialize;
use time::OffsetDateTime;
use veritee_attest::{TcbStatus, VerifyError};

/// Which quoting enclave an identity describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QeId {
    /// The SGX quoting enclave (`QE`).
    Qe,
    /// The TDX quoting enclave (`TD_QE`).
    TdQe,
}

/// One QE TCB level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeTcbLevel {
    /// Minimum ISV SVN of the QE.
    pub isvsvn: u16,
    /// Date of the level.
    pub tcb_date: OffsetDateTime,
    /// Status of QEs at this level.
    pub status: TcbStatus,
    /// Advisories that apply.
    pub advisory_ids: Vec<String>,
}

/// A parsed QE identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeIdentity {
    /// QE or TD_QE.
    pub id: QeId,
    /// Always 2.
    pub version: u32,
    /// When it was issued.
    pub issue_date: OffsetDateTime,
    /// Not valid after.
    pub next_update: OffsetDateTime,
    /// TCB evaluation data number.
    pub tcb_evaluation_data_number: u32,
    /// Expected MISCSELECT after masking, as stored in the report (little-endian).
    pub miscselect: [u8; 4],
    /// MISCSELECT mask.
    pub miscselect_mask: [u8; 4],
    /// Expected ATTRIBUTES after masking.
    pub attributes: [u8; 16],
    /// ATTRIBUTES mask.
    pub attributes_mask: [u8; 16],
    /// Expected MRSIGNER.
    pub mrsigner: [u8; 32],
    /// Expected ISVPRODID.
    pub isvprodid: u16,
    /// TCB levels, highest ISV SVN first.
    pub levels: Vec<QeTcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQeIdentity {
    id: String,
    version: u32,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
    miscselect: String,
    miscselect_mask: String,
    attributes: String,
    attributes_mask: String,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<RawQeLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQeLevel {
    tcb: RawIsvSvn,
    tcb_date: String,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

const WHAT: &str = "QE identity";

impl QeIdentity {
    /// Parses the `enclaveIdentity` JSON object (the exact text Intel signed).
    pub fn parse(json: &[u8]) -> Result<Self, VerifyError> {
        let raw: RawQeIdentity =
            serde_json::from_slice(json).map_err(|e| VerifyError::malformed(WHAT, e))?;
        if raw.version != 2 {
            return Err(VerifyError::UnsupportedVersion {
                what: WHAT.into(),
                version: raw.version,
            });
        }
        let id = match raw.id.as_str() {
            "QE" => QeId::Qe,
            "TD_QE" => QeId::TdQe,
            other => {
                return Err(VerifyError::Collateral(format!(
                    "QE identity: id '{other}' is not a quoting enclave (QE or TD_QE)"
                )));
            }
        };
        let mut levels = Vec::with_capacity(raw.tcb_levels.len());
        for level in &raw.tcb_levels {
            levels.push(QeTcbLevel {
                isvsvn: level.tcb.isvsvn,
                tcb_date: parse_date(&level.tcb_date, "tcbDate", WHAT)?,
                status: parse_status(&level.tcb_status, WHAT)?,
                advisory_ids: level.advisory_ids.clone(),
            });
        }
        if levels.is_empty() {
            return Err(VerifyError::Collateral("QE identity: no TCB levels".into()));
        }
        levels.sort_by_key(|l| core::cmp::Reverse(l.isvsvn));
        Ok(Self {
            id,
            version: raw.version,
            issue_date: parse_date(&raw.issue_date, "issueDate", WHAT)?,
            next_update: parse_date(&raw.next_update, "nextUpdate", WHAT)?,
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number,
            miscselect: hex_field(&raw.miscselect, "miscselect", WHAT)?,
            miscselect_mask: hex_field(&raw.miscselect_mask, "miscselectMask", WHAT)?,
            attributes: hex_field(&raw.attributes, "attributes", WHAT)?,
            attributes_mask: hex_field(&raw.attributes_mask, "attributesMask", WHAT)?,
            mrsigner: hex_field(&raw.mrsigner, "mrsigner", WHAT)?,
            isvprodid: raw.isvprodid,
            levels,
        })
    }
}
