//! TCB level matching and status convergence, as Intel's QVL does them.
//!
//! - Platform: the first level (in QVL order, see [`TcbInfo`]) whose 16 SGX components
//!   and PCE SVN the PCK certificate meets; for TDX also the TD report's TEE_TCB_SVN
//!   against `tdxtcbcomponents`, where a non-zero module version (TEE_TCB_SVN[1]) leaves
//!   components 0 and 1 to the TDX module identity (QVL `isTdxTcbHigherOrEqual`).
//! - TDX module: for a module version v > 0, identity `TDX_<v>` and its first level
//!   whose ISV SVN TEE_TCB_SVN[0] meets (statuses UpToDate, OutOfDate, Revoked).
//! - QE: the first QE identity level whose ISV SVN the QE report meets.
//! - Convergence (QVL `convergeTcbStatusWithQeTcbStatus`/`...WithTdxModuleStatus`): an
//!   OutOfDate component turns UpToDate/SWHardeningNeeded into OutOfDate and
//!   ConfigurationNeeded/ConfigurationAndSWHardeningNeeded into
//!   OutOfDateConfigurationNeeded; a Revoked component makes it Revoked. A QE level
//!   that is neither UpToDate nor Revoked counts as OutOfDate (QVL's
//!   `STATUS_SGX_ENCLAVE_REPORT_ISVSVN_OUT_OF_DATE`).
//! - TDX 1.5: the current TCB (TEE_TCB_SVN2) must be appraisable too; when the launch
//!   TCB is out of date and the current one is not, QVL says TDRelaunchAdvised. veritee's
//!   status vocabulary has no such value, so the (more conservative) launch status is
//!   kept and `td_relaunch_advised` is reported in the claims' details.
//!
//! Advisory ids are the platform level's, then the QE level's, then the module level's;
//! the TCB date is the oldest of the three (QVL `finalizeTcbEvaluation`).

use super::pck::PckExtensions;
use super::qe_identity::{QeIdentity, QeTcbLevel};
use super::tcb_info::{TcbInfo, TcbLevel, TdxModuleIdentity, TdxModuleLevel};
use time::OffsetDateTime;
use veritee_attest::{TcbStatus, VerifyError};

/// The outcome of TCB appraisal.
#[derive(Debug, Clone)]
pub(crate) struct Appraisal {
    pub(crate) status: TcbStatus,
    pub(crate) advisory_ids: Vec<String>,
    pub(crate) tcb_date: OffsetDateTime,
    pub(crate) platform_status: TcbStatus,
    pub(crate) qe_status: TcbStatus,
    /// `TDX_01 isvsvn 6 UpToDate`.
    pub(crate) tdx_module: Option<String>,
    /// TDX 1.5: the status of the current TCB and whether a relaunch is advised.
    pub(crate) current_tcb: Option<(TcbStatus, bool)>,
}

fn meets(have: &[u8; 16], need: &[u8; 16], from: usize) -> bool {
    have.iter().zip(need).skip(from).all(|(h, n)| h >= n)
}

/// The components of `have` below what every level needs, named for the error message.
fn shortfalls(info: &TcbInfo, pck: &PckExtensions, tee_tcb_svn: Option<&[u8; 16]>) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..16 {
        let lowest = info
            .levels
            .iter()
            .filter_map(|l| l.sgx_components.get(i))
            .min();
        if let (Some(&have), Some(&need)) = (pck.sgx_components.get(i), lowest)
            && have < need
        {
            out.push(format!(
                "PCK SGX TCB component {} is {have}, every level requires at least {need}",
                i + 1
            ));
        }
    }
    if let Some(need) = info.levels.iter().map(|l| l.pce_svn).min()
        && pck.pce_svn < need
    {
        out.push(format!(
            "PCK PCE SVN is {}, every level requires at least {need}",
            pck.pce_svn
        ));
    }
    if let Some(tee) = tee_tcb_svn {
        let from = if tee[1] > 0 { 2 } else { 0 };
        for i in from..16 {
            let lowest = info
                .levels
                .iter()
                .filter_map(|l| l.tdx_components.and_then(|c| c.get(i).copied()))
                .min();
            if let (Some(&have), Some(need)) = (tee.get(i), lowest)
                && have < need
            {
                out.push(format!(
                    "TEE_TCB_SVN[{i}] is {have}, every level requires at least {need}"
                ));
            }
        }
    }
    out
}

/// The platform TCB level: SGX components and PCE SVN from the PCK certificate, TDX
/// components from the TD report.
pub(crate) fn platform_level<'t>(
    info: &'t TcbInfo,
    pck: &PckExtensions,
    tee_tcb_svn: Option<&[u8; 16]>,
) -> Result<&'t TcbLevel, VerifyError> {
    let found = info.levels.iter().find(|level| {
        let sgx =
            meets(&pck.sgx_components, &level.sgx_components, 0) && pck.pce_svn >= level.pce_svn;
        match (tee_tcb_svn, &level.tdx_components) {
            (None, _) => sgx,
            (Some(tee), Some(tdx)) => sgx && meets(tee, tdx, if tee[1] > 0 { 2 } else { 0 }),
            (Some(_), None) => false,
        }
    });
    found.ok_or_else(|| {
        let why = shortfalls(info, pck, tee_tcb_svn);
        let why = if why.is_empty() {
            format!(
                "no single level is met by SGX components {:?}, PCE SVN {}{}",
                pck.sgx_components,
                pck.pce_svn,
                tee_tcb_svn
                    .map(|t| format!(", TEE_TCB_SVN {}", hex::encode(t)))
                    .unwrap_or_default()
            )
        } else {
            why.join("; ")
        };
        VerifyError::NoMatchingTcbLevel(format!(
            "TCB info for FMSPC {}: {why}",
            hex::encode(info.fmspc)
        ))
    })
}

/// The QE TCB level for the QE report's ISV SVN.
pub(crate) fn qe_level(identity: &QeIdentity, isvsvn: u16) -> Result<&QeTcbLevel, VerifyError> {
    let level = identity
        .levels
        .iter()
        .find(|l| isvsvn >= l.isvsvn)
        .ok_or_else(|| {
            VerifyError::NoMatchingTcbLevel(format!(
                "QE ISV SVN {isvsvn} is below every QE identity level (lowest {})",
                identity
                    .levels
                    .iter()
                    .map(|l| l.isvsvn)
                    .min()
                    .unwrap_or_default()
            ))
        })?;
    match level.status {
        TcbStatus::UpToDate
        | TcbStatus::OutOfDate
        | TcbStatus::ConfigurationNeeded
        | TcbStatus::Revoked
        | TcbStatus::OutOfDateConfigurationNeeded => Ok(level),
        other => Err(VerifyError::Collateral(format!(
            "QE identity: TCB status {other} is not valid for a QE level"
        ))),
    }
}

/// A TDX module identity and the level the module meets.
pub(crate) type ModuleMatch<'t> = Option<(&'t TdxModuleIdentity, &'t TdxModuleLevel)>;

/// The TDX module identity and level for TEE_TCB_SVN; `None` for module version 0.
pub(crate) fn module_level<'t>(
    info: &'t TcbInfo,
    tee_tcb_svn: &[u8; 16],
) -> Result<ModuleMatch<'t>, VerifyError> {
    let version = tee_tcb_svn[1];
    if version == 0 {
        return Ok(None);
    }
    let identity = module_identity(info, version)?;
    let level = identity
        .levels
        .iter()
        .find(|l| tee_tcb_svn[0] >= l.isvsvn)
        .ok_or_else(|| {
            VerifyError::NoMatchingTcbLevel(format!(
                "TDX module {} ISV SVN {} is below every module level (lowest {})",
                identity.id,
                tee_tcb_svn[0],
                identity
                    .levels
                    .iter()
                    .map(|l| l.isvsvn)
                    .min()
                    .unwrap_or_default()
            ))
        })?;
    match level.status {
        TcbStatus::UpToDate | TcbStatus::OutOfDate | TcbStatus::Revoked => {
            Ok(Some((identity, level)))
        }
        other => Err(VerifyError::Collateral(format!(
            "TCB info: TCB status {other} is not valid for a TDX module level"
        ))),
    }
}

/// The TDX module identity `TDX_<version>`.
pub(crate) fn module_identity(
    info: &TcbInfo,
    version: u8,
) -> Result<&TdxModuleIdentity, VerifyError> {
    info.tdx_module_identity(version).ok_or_else(|| {
        VerifyError::Inconsistent(format!(
            "the TD report names TDX module version {version}, and the TCB info for FMSPC {} has no identity TDX_{version:02X}",
            hex::encode(info.fmspc)
        ))
    })
}

/// Intel's convergence of a platform status with a component's status.
pub(crate) fn converge(platform: TcbStatus, component: TcbStatus) -> TcbStatus {
    use TcbStatus::*;
    match (component, platform) {
        (Revoked, _) => Revoked,
        (OutOfDate, UpToDate | SwHardeningNeeded) => OutOfDate,
        (OutOfDate, ConfigurationNeeded | ConfigurationAndSwHardeningNeeded) => {
            OutOfDateConfigurationNeeded
        }
        _ => platform,
    }
}

/// How a QE level's status counts in convergence.
fn qe_component(status: TcbStatus) -> TcbStatus {
    match status {
        TcbStatus::UpToDate => TcbStatus::UpToDate,
        TcbStatus::Revoked => TcbStatus::Revoked,
        _ => TcbStatus::OutOfDate,
    }
}

fn relaunch_advised(launch: TcbStatus, current: TcbStatus) -> bool {
    use TcbStatus::*;
    matches!(launch, OutOfDate | OutOfDateConfigurationNeeded)
        && matches!(
            current,
            UpToDate | SwHardeningNeeded | ConfigurationNeeded | ConfigurationAndSwHardeningNeeded
        )
}

fn push_unique(out: &mut Vec<String>, ids: &[String]) {
    for id in ids {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
}

/// The TDX part of an appraisal for one TEE_TCB_SVN: platform level, module level and
/// their converged status.
fn tdx_status<'t>(
    info: &'t TcbInfo,
    pck: &PckExtensions,
    tee: &[u8; 16],
) -> Result<(&'t TcbLevel, ModuleMatch<'t>, TcbStatus), VerifyError> {
    let platform = platform_level(info, pck, Some(tee))?;
    let module = module_level(info, tee)?;
    let status = module.map_or(platform.status, |(_, m)| {
        converge(platform.status, m.status)
    });
    Ok((platform, module, status))
}

/// Appraises the platform, QE and (TDX) module TCB.
///
/// `td` is the TD report's TEE_TCB_SVN and, for TDX 1.5, TEE_TCB_SVN2.
pub(crate) fn appraise(
    info: &TcbInfo,
    identity: &QeIdentity,
    pck: &PckExtensions,
    qe_isvsvn: u16,
    td: Option<(&[u8; 16], Option<&[u8; 16]>)>,
) -> Result<Appraisal, VerifyError> {
    let qe = qe_level(identity, qe_isvsvn)?;
    let mut dates = vec![qe.tcb_date];
    let mut module_advisories: &[String] = &[];
    let (platform, launch_status, tdx_module, current_tcb) = match td {
        None => {
            let platform = platform_level(info, pck, None)?;
            (platform, platform.status, None, None)
        }
        Some((tee, tee2)) => {
            let (platform, module, status) = tdx_status(info, pck, tee)?;
            let module_text = module.map(|(identity, level)| {
                dates.push(level.tcb_date);
                module_advisories = &level.advisory_ids;
                format!("{} isvsvn {} {}", identity.id, tee[0], level.status)
            });
            let current = match tee2 {
                Some(tee2) if tee2 != tee => {
                    let (_, _, current) = tdx_status(info, pck, tee2).map_err(|e| match e {
                        VerifyError::NoMatchingTcbLevel(why) => VerifyError::NoMatchingTcbLevel(
                            format!("current TCB (TEE_TCB_SVN2): {why}"),
                        ),
                        other => other,
                    })?;
                    Some((current, relaunch_advised(status, current)))
                }
                Some(_) => Some((status, false)),
                None => None,
            };
            (platform, status, module_text, current)
        }
    };
    dates.push(platform.tcb_date);
    let mut advisory_ids = Vec::new();
    push_unique(&mut advisory_ids, &platform.advisory_ids);
    push_unique(&mut advisory_ids, &qe.advisory_ids);
    push_unique(&mut advisory_ids, module_advisories);
    let status = converge(launch_status, qe_component(qe.status));
    Ok(Appraisal {
        status,
        advisory_ids,
        tcb_date: dates.into_iter().min().unwrap_or(platform.tcb_date),
        platform_status: platform.status,
        qe_status: qe.status,
        tdx_module,
        current_tcb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcbStatus::*;

    #[test]
    fn convergence_matches_qvl() {
        for (platform, component, expected) in [
            (UpToDate, OutOfDate, OutOfDate),
            (SwHardeningNeeded, OutOfDate, OutOfDate),
            (ConfigurationNeeded, OutOfDate, OutOfDateConfigurationNeeded),
            (
                ConfigurationAndSwHardeningNeeded,
                OutOfDate,
                OutOfDateConfigurationNeeded,
            ),
            (
                OutOfDateConfigurationNeeded,
                OutOfDate,
                OutOfDateConfigurationNeeded,
            ),
            (ConfigurationNeeded, Revoked, Revoked),
            (UpToDate, UpToDate, UpToDate),
            (SwHardeningNeeded, UpToDate, SwHardeningNeeded),
        ] {
            assert_eq!(
                converge(platform, component),
                expected,
                "{platform} with {component}"
            );
        }
        assert_eq!(
            converge(UpToDate, qe_component(ConfigurationNeeded)),
            OutOfDate
        );
        assert!(relaunch_advised(OutOfDate, UpToDate));
        assert!(!relaunch_advised(OutOfDate, OutOfDate));
        assert!(!relaunch_advised(UpToDate, UpToDate));
    }
}
