//! Policy parsing, validation and evaluation.

use std::collections::BTreeMap;
use time::macros::datetime;
use veritee_attest::{Claims, HexBytes, TcbStatus, TeeKind};
use veritee_policy::{AppraisalPolicy, Decision, PolicyError, starter_policy};

const AT: time::OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

fn claims() -> Claims {
    Claims {
        tee: TeeKind::Simulated,
        simulated: true,
        measurements: BTreeMap::from([("measurement".to_string(), HexBytes(vec![0xaa; 48]))]),
        signer: Some(HexBytes(vec![0xbb; 48])),
        security_version: Some(3),
        tcb_status: TcbStatus::UpToDate,
        advisory_ids: vec![],
        debug: false,
        report_data: HexBytes(vec![0; 64]),
        platform_id: None,
        evidence_time: Some(AT - time::Duration::minutes(1)),
        details: BTreeMap::new(),
        trust_anchor: None,
    }
}

fn permissive() -> AppraisalPolicy {
    AppraisalPolicy::parse(&format!(
        r#"
version = 1
tee = ["simulated"]
allow_simulated = true
tcb_status = ["UpToDate"]
min_security_version = 2
max_evidence_age = "10m"
signers = ["{}"]
[measurements]
measurement = ["{}"]
"#,
        "bb".repeat(48),
        "aa".repeat(48)
    ))
    .unwrap()
}

#[test]
fn matching_claims_are_accepted() {
    let appraisal = permissive().evaluate(&claims(), AT);
    assert_eq!(appraisal.decision, Decision::Accept, "{appraisal:?}");
    assert!(appraisal.failed.is_empty());
}

#[test]
fn every_failed_criterion_is_named() {
    let mut c = claims();
    c.debug = true;
    c.tcb_status = TcbStatus::OutOfDate;
    c.advisory_ids = vec!["VSIM-SA-2026-0001".into()];
    c.security_version = Some(1);
    c.signer = Some(HexBytes(vec![0xcc; 48]));
    c.measurements
        .insert("measurement".into(), HexBytes(vec![0xdd; 48]));
    c.evidence_time = Some(AT - time::Duration::hours(1));
    let appraisal = permissive().evaluate(&c, AT);
    assert_eq!(appraisal.decision, Decision::Reject);
    let criteria: Vec<&str> = appraisal
        .failed
        .iter()
        .map(|f| f.criterion.as_str())
        .collect();
    assert_eq!(
        criteria,
        [
            "allow_debug",
            "tcb_status",
            "min_security_version",
            "signers",
            "measurements.measurement",
            "max_evidence_age"
        ]
    );
    let text = serde_json::to_string(&appraisal).unwrap();
    assert!(text.contains("VSIM-SA-2026-0001"), "{text}");
    assert!(text.contains("3600s old"), "{text}");
}

#[test]
fn default_policies_reject_simulated_evidence() {
    let appraisal = AppraisalPolicy::default_hardware().evaluate(&claims(), AT);
    let criteria: Vec<&str> = appraisal
        .failed
        .iter()
        .map(|f| f.criterion.as_str())
        .collect();
    assert_eq!(criteria, ["tee", "allow_simulated"]);
    // The starter policy, as written by `policy init` without --allow-simulated.
    let starter = AppraisalPolicy::parse(&starter_policy(false, &[])).unwrap();
    assert!(!starter.evaluate(&claims(), AT).accepted());
    // A policy that lists no simulated kind but sets nothing else: rejected too.
    let tdx_only = AppraisalPolicy::parse("version = 1\ntee = [\"tdx\"]\n").unwrap();
    assert!(!tdx_only.allow_simulated);
    assert!(!tdx_only.evaluate(&claims(), AT).accepted());
    // With --allow-simulated the starter accepts it.
    let dev = AppraisalPolicy::parse(&starter_policy(true, &[])).unwrap();
    assert!(
        dev.evaluate(&claims(), AT).accepted(),
        "{:?}",
        dev.evaluate(&claims(), AT)
    );
}

#[test]
fn starter_policy_round_trips_and_names_chosen_kinds() {
    let text = starter_policy(false, &[TeeKind::Tdx, TeeKind::SevSnp]);
    let policy = AppraisalPolicy::parse(&text).unwrap();
    assert_eq!(policy.tee, vec![TeeKind::Tdx, TeeKind::SevSnp]);
    assert!(text.lines().filter(|l| l.starts_with('#')).count() > 10);
    let again = AppraisalPolicy::parse(&policy.to_toml()).unwrap();
    assert_eq!(again, policy);
}

#[test]
fn missing_time_and_missing_measurement_are_explained() {
    let mut c = claims();
    c.evidence_time = None;
    c.measurements.clear();
    c.measurements.insert("mrtd".into(), HexBytes(vec![1; 48]));
    let appraisal = permissive().evaluate(&c, AT);
    let reasons: Vec<&str> = appraisal.failed.iter().map(|f| f.reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no measurement named `measurement` (it has: mrtd)")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("carries no time")),
        "{reasons:?}"
    );
}

#[test]
fn mistakes_are_explained() {
    let cases = [
        ("version = 1\ntees = [\"tdx\"]\n", "unknown field `tees`"),
        ("version = 1\ntee = [\"tdx2\"]\n", "unknown variant `tdx2`"),
        ("version = 2\ntee = [\"tdx\"]\n", "version 2 is unknown"),
        ("version = 1\ntee = []\n", "`tee` is empty"),
        ("version = 1\ntee = [\"simulated\"]\n", "allow_simulated"),
        (
            "version = 1\ntee = [\"tdx\"]\ntcb_status = []\n",
            "`tcb_status` is empty",
        ),
        (
            "version = 1\ntee = [\"tdx\"]\ntcb_status = [\"Fine\"]\n",
            "unknown variant `Fine`",
        ),
        (
            "version = 1\ntee = [\"tdx\"]\n[measurements]\nmrtd = []\n",
            "empty allow-list",
        ),
        (
            "version = 1\ntee = [\"tdx\"]\n[measurements]\nmrtd = [\"zz\"]\n",
            "Invalid character",
        ),
        (
            "version = 1\ntee = [\"tdx\"]\nmax_evidence_age = \"5y\"\n",
            "unknown unit",
        ),
        ("version = 1\ntee = [\"tdx\"\n", "line 2"),
        (
            "{\"version\": 1, \"tee\": [\"tdx\"], \"allow_debug\": \"yes\"}",
            "invalid type",
        ),
    ];
    for (text, expected) in cases {
        let err = AppraisalPolicy::parse(text).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "policy {text:?}: got {err:?}, expected {expected:?}"
        );
    }
    assert!(matches!(
        AppraisalPolicy::parse(&"#".repeat(2 * 1024 * 1024)),
        Err(PolicyError::Invalid(_))
    ));
}

#[test]
fn permissive_choices_are_warned_about() {
    let warnings = AppraisalPolicy::parse(&starter_policy(true, &[]))
        .unwrap()
        .check()
        .unwrap();
    assert!(
        warnings.iter().any(|w| w.contains("any code")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("development only")),
        "{warnings:?}"
    );
    assert!(
        permissive()
            .check()
            .unwrap()
            .iter()
            .all(|w| !w.contains("any code"))
    );
}

#[test]
fn json_policies_parse_too() {
    let p = AppraisalPolicy::parse(r#"{"version": 1, "tee": ["nitro"], "tcb_status": ["NotReported"], "max_evidence_age": 300}"#)
        .unwrap();
    assert_eq!(p.max_evidence_age.unwrap().0, 300);
}
