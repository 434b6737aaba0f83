//! The commented starter policy written by `veritee policy init`.

use veritee_attest::TeeKind;

/// A commented policy a user can edit: accepts `tees` (every hardware TEE when empty),
/// and simulated evidence only when `allow_simulated`.
pub fn starter_policy(allow_simulated: bool, tees: &[TeeKind]) -> String {
    let mut kinds: Vec<TeeKind> = if tees.is_empty() {
        TeeKind::ALL
            .into_iter()
            .filter(|k| k.is_hardware())
            .collect()
    } else {
        tees.to_vec()
    };
    if allow_simulated && !kinds.contains(&TeeKind::Simulated) {
        kinds.push(TeeKind::Simulated);
    }
    let tee_list = kinds
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let all = TeeKind::ALL
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"# veritee appraisal policy: what an acceptable environment is.
# Check it with `veritee policy check FILE`; use it with `--policy FILE`.
version = 1

# TEE kinds accepted. Known kinds: {all}.
tee = [{tee_list}]

# Simulated evidence proves nothing about hardware: keep false outside development.
allow_simulated = {allow_simulated}

# A debug workload's memory is readable by the host.
allow_debug = false

# Platform TCB statuses accepted: UpToDate, SWHardeningNeeded, ConfigurationNeeded,
# ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked,
# NotReported (TEEs without vendor TCB grading, such as Nitro).
tcb_status = ["UpToDate"]

# Lowest security version (ISV SVN, guest SVN) of the workload; 0 accepts any.
min_security_version = 0

# Oldest evidence accepted, as "30s", "10m", "2h" or "1d". Only TEEs that time-stamp
# their evidence (simulated, Nitro) can meet it; others prove freshness by a nonce.
# max_evidence_age = "10m"

# Signers accepted (hex: MRSIGNER, the simulated signer...). Absent: any signer.
# signers = ["..."]

# Measurements accepted, by name: every measurement named here must equal one of the
# listed values. Names: measurement (simulated), mrenclave (sgx), mrtd, rtmr0-rtmr3
# (tdx), launch_measurement (sev-snp), pcr0-pcr8 (aws-nitro), pcr0-pcr23 (tpm2).
[measurements]
# measurement = ["..."]
"#
    )
}
