//! Intel's TCB info (versions 2 and 3, `SGX` and `TDX`), as signed JSON from the PCS.
//!
//! Version 2 (SGX only) names the 16 SGX components `sgxtcbcomp01svn`..`sgxtcbcomp16svn`;
//! version 3 lists them as `sgxtcbcomponents` and adds, for TDX, `tdxtcbcomponents`,
//! `tdxModule` and `tdxModuleIdentities`. Both parse into one model. Levels are kept in
//! the order Intel's QVL matches them in (its `std::set<TcbLevel, std::greater>`): SGX
//! components, then PCE SVN, then (TDX) TDX components, highest first.

use super::parse_date;
use serde::Deserialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use veritee_attest::{TcbStatus, VerifyError};

/// The TEE a TCB info document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcbInfoId {
    /// `SGX` (or a version 2 document, which has no id).
    Sgx,
    /// `TDX`.
    Tdx,
}

/// One TCB level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbLevel {
    /// Minimum SGX TCB component SVNs (index 0 is component 1).
    pub sgx_components: [u8; 16],
    /// Minimum PCE SVN.
    pub pce_svn: u16,
    /// Minimum TDX TCB component SVNs (TDX TCB info only).
    pub tdx_components: Option<[u8; 16]>,
    /// Date of the TCB level.
    pub tcb_date: OffsetDateTime,
    /// Status of platforms at this level.
    pub status: TcbStatus,
    /// Advisories that apply.
    pub advisory_ids: Vec<String>,
}

/// The identity of the TDX module family (`tdxModule`), used when the module version
/// (TEE_TCB_SVN[1]) is zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxModule {
    /// Expected MRSIGNERSEAM.
    pub mrsigner: [u8; 48],
    /// Expected SEAMATTRIBUTES.
    pub attributes: [u8; 8],
    /// SEAMATTRIBUTES mask.
    pub attributes_mask: [u8; 8],
}

/// One TDX module TCB level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxModuleLevel {
    /// Minimum module ISV SVN (TEE_TCB_SVN[0]).
    pub isvsvn: u8,
    /// Date of the level.
    pub tcb_date: OffsetDateTime,
    /// Status of modules at this level.
    pub status: TcbStatus,
    /// Advisories that apply.
    pub advisory_ids: Vec<String>,
}

/// A TDX module identity (`TDX_01`, `TDX_03`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxModuleIdentity {
    /// `TDX_` and the module major version in two hex digits.
    pub id: String,
    /// The module's signer and attributes.
    pub module: TdxModule,
    /// TCB levels, highest ISV SVN first.
    pub levels: Vec<TdxModuleLevel>,
}

/// A parsed TCB info document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbInfo {
    /// SGX or TDX.
    pub id: TcbInfoId,
    /// 2 or 3.
    pub version: u32,
    /// When it was issued.
    pub issue_date: OffsetDateTime,
    /// When the next one is due; not valid after.
    pub next_update: OffsetDateTime,
    /// The platform family it grades.
    pub fmspc: [u8; 6],
    /// PCE id.
    pub pce_id: [u8; 2],
    /// TCB type (only 0 is defined).
    pub tcb_type: u32,
    /// TCB evaluation data number.
    pub tcb_evaluation_data_number: u32,
    /// TDX module family identity (TDX only).
    pub tdx_module: Option<TdxModule>,
    /// TDX module identities per major version (TDX only).
    pub tdx_module_identities: Vec<TdxModuleIdentity>,
    /// TCB levels, in QVL matching order.
    pub levels: Vec<TcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTcbInfo {
    id: Option<String>,
    version: u32,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u32,
    tcb_evaluation_data_number: u32,
    tdx_module: Option<RawTdxModule>,
    #[serde(default)]
    tdx_module_identities: Vec<RawTdxModuleIdentity>,
    tcb_levels: Vec<RawTcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTdxModule {
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTdxModuleIdentity {
    id: String,
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
    tcb_levels: Vec<RawModuleLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawModuleLevel {
    tcb: RawIsvSvn,
    tcb_date: String,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct RawIsvSvn {
    pub(super) isvsvn: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTcbLevel {
    tcb: RawTcb,
    tcb_date: String,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawTcb {
    #[serde(default)]
    sgxtcbcomponents: Option<Vec<RawComponent>>,
    #[serde(default)]
    tdxtcbcomponents: Option<Vec<RawComponent>>,
    pcesvn: u16,
    /// Version 2: `sgxtcbcomp01svn`..`sgxtcbcomp16svn`.
    #[serde(flatten)]
    v2: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RawComponent {
    svn: u8,
}

const WHAT: &str = "TCB info";

fn bad(reason: impl core::fmt::Display) -> VerifyError {
    VerifyError::Collateral(format!("TCB info: {reason}"))
}

/// Decodes a fixed-length hex field of a collateral document.
pub(super) fn hex_field<const N: usize>(
    value: &str,
    field: &str,
    doc: &str,
) -> Result<[u8; N], VerifyError> {
    let bytes = hex::decode(value)
        .map_err(|e| VerifyError::Collateral(format!("{doc}: {field} is not hex: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        VerifyError::Collateral(format!(
            "{doc}: {field} has {} bytes, expected {N}",
            b.len()
        ))
    })
}

/// Parses a TCB status name (Intel's spelling).
pub(super) fn parse_status(name: &str, doc: &str) -> Result<TcbStatus, VerifyError> {
    match name.parse::<TcbStatus>() {
        Ok(TcbStatus::NotReported) | Err(_) => Err(VerifyError::Collateral(format!(
            "{doc}: unrecognised TCB status '{name}'"
        ))),
        Ok(status) => Ok(status),
    }
}

fn components(list: &[RawComponent], what: &str) -> Result<[u8; 16], VerifyError> {
    if list.len() != 16 {
        return Err(bad(format!(
            "{what} has {} components, expected 16",
            list.len()
        )));
    }
    let mut out = [0u8; 16];
    for (o, c) in out.iter_mut().zip(list) {
        *o = c.svn;
    }
    Ok(out)
}

fn v2_components(map: &BTreeMap<String, serde_json::Value>) -> Result<[u8; 16], VerifyError> {
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let key = format!("sgxtcbcomp{:02}svn", i + 1);
        let value = map
            .get(&key)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad(format!("TCB level has no numeric {key}")))?;
        *o = u8::try_from(value).map_err(|_| bad(format!("{key} = {value} is not an SVN")))?;
    }
    Ok(out)
}

fn module(mrsigner: &str, attributes: &str, mask: &str) -> Result<TdxModule, VerifyError> {
    Ok(TdxModule {
        mrsigner: hex_field(mrsigner, "TDX module mrsigner", WHAT)?,
        attributes: hex_field(attributes, "TDX module attributes", WHAT)?,
        attributes_mask: hex_field(mask, "TDX module attributesMask", WHAT)?,
    })
}

impl TcbInfo {
    /// Parses the `tcbInfo` JSON object (the exact text Intel signed).
    pub fn parse(json: &[u8]) -> Result<Self, VerifyError> {
        let raw: RawTcbInfo =
            serde_json::from_slice(json).map_err(|e| VerifyError::malformed(WHAT, e))?;
        let id = match (raw.version, raw.id.as_deref()) {
            (2, None | Some("SGX")) | (3, Some("SGX")) => TcbInfoId::Sgx,
            (3, Some("TDX")) => TcbInfoId::Tdx,
            (2 | 3, Some(other)) => return Err(bad(format!("unknown id '{other}'"))),
            (3, None) => return Err(bad("version 3 without an id")),
            (version, _) => {
                return Err(VerifyError::UnsupportedVersion {
                    what: WHAT.into(),
                    version,
                });
            }
        };
        if raw.tcb_type != 0 {
            return Err(bad(format!(
                "tcbType {} is not supported (only 0)",
                raw.tcb_type
            )));
        }
        let mut levels = Vec::with_capacity(raw.tcb_levels.len());
        for level in &raw.tcb_levels {
            let sgx_components = match (&level.tcb.sgxtcbcomponents, raw.version) {
                (Some(list), 3) => components(list, "sgxtcbcomponents")?,
                (None, 2) => v2_components(&level.tcb.v2)?,
                _ => {
                    return Err(bad(format!(
                        "TCB level layout does not match version {}",
                        raw.version
                    )));
                }
            };
            let tdx_components = match (&level.tcb.tdxtcbcomponents, id) {
                (Some(list), TcbInfoId::Tdx) => Some(components(list, "tdxtcbcomponents")?),
                (None, TcbInfoId::Tdx) => {
                    return Err(bad("TDX TCB level without tdxtcbcomponents"));
                }
                (_, TcbInfoId::Sgx) => None,
            };
            levels.push(TcbLevel {
                sgx_components,
                pce_svn: level.tcb.pcesvn,
                tdx_components,
                tcb_date: parse_date(&level.tcb_date, "TCB level tcbDate", WHAT)?,
                status: parse_status(&level.tcb_status, WHAT)?,
                advisory_ids: level.advisory_ids.clone(),
            });
        }
        if levels.is_empty() {
            return Err(bad("no TCB levels"));
        }
        // Intel's QVL keeps the levels in a set ordered by (SGX components, PCE SVN, TDX
        // components), highest first, and matches the first level the platform meets.
        levels.sort_by(|a, b| {
            (b.sgx_components, b.pce_svn, b.tdx_components).cmp(&(
                a.sgx_components,
                a.pce_svn,
                a.tdx_components,
            ))
        });
        let tdx_module = match (&raw.tdx_module, id) {
            (Some(m), TcbInfoId::Tdx) => {
                Some(module(&m.mrsigner, &m.attributes, &m.attributes_mask)?)
            }
            (None, TcbInfoId::Tdx) => return Err(bad("TDX TCB info without tdxModule")),
            (_, TcbInfoId::Sgx) => None,
        };
        let mut tdx_module_identities = Vec::new();
        for identity in &raw.tdx_module_identities {
            let mut module_levels = Vec::with_capacity(identity.tcb_levels.len());
            for level in &identity.tcb_levels {
                module_levels.push(TdxModuleLevel {
                    isvsvn: u8::try_from(level.tcb.isvsvn).map_err(|_| {
                        bad(format!(
                            "TDX module isvsvn {} is out of range",
                            level.tcb.isvsvn
                        ))
                    })?,
                    tcb_date: parse_date(&level.tcb_date, "TDX module tcbDate", WHAT)?,
                    status: parse_status(&level.tcb_status, WHAT)?,
                    advisory_ids: level.advisory_ids.clone(),
                });
            }
            module_levels.sort_by_key(|l| core::cmp::Reverse(l.isvsvn));
            tdx_module_identities.push(TdxModuleIdentity {
                id: identity.id.clone(),
                module: module(
                    &identity.mrsigner,
                    &identity.attributes,
                    &identity.attributes_mask,
                )?,
                levels: module_levels,
            });
        }
        Ok(Self {
            id,
            version: raw.version,
            issue_date: parse_date(&raw.issue_date, "issueDate", WHAT)?,
            next_update: parse_date(&raw.next_update, "nextUpdate", WHAT)?,
            fmspc: hex_field(&raw.fmspc, "fmspc", WHAT)?,
            pce_id: hex_field(&raw.pce_id, "pceId", WHAT)?,
            tcb_type: raw.tcb_type,
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number,
            tdx_module,
            tdx_module_identities,
            levels,
        })
    }

    /// The TDX module identity for module major version `version` (`TDX_01`...).
    pub fn tdx_module_identity(&self, version: u8) -> Option<&TdxModuleIdentity> {
        let wanted = format!("TDX_{version:02X}");
        self.tdx_module_identities
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(&wanted))
    }
}
