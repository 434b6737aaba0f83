//! `veritee verify`: evidence + trust anchors + collateral + time -> claims, and an
//! optional policy appraisal. Prints one JSON object with `--json`.

use crate::{Outcome, files};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;
use veritee_attest::{Claims, TeeKind, TrustAnchors, VerifyError};
use veritee_policy::{Appraisal, AppraisalPolicy};
use veritee_verify::{Verifiers, VerifyRequest};

/// Arguments of `veritee verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The evidence: raw bytes, hex or base64 (detected).
    #[arg(long)]
    evidence: PathBuf,
    /// Collateral files (CRLs, TCB information, certificate chains); repeatable.
    #[arg(long)]
    collateral: Vec<PathBuf>,
    /// A trust anchor, `[KIND=]FILE` (PEM or DER certificates); repeatable. Simulated
    /// evidence needs the simulated vendor's root.pem. Real TEEs use their vendors'
    /// built-in roots unless an anchor is given for that kind (`aws-nitro=FILE`, which
    /// replaces the vendor's roots: for testing); an anchor without a kind vouches for
    /// the hardware kinds whose vendor root it is, and otherwise for simulated evidence
    /// only. The simulated vendor's certificates vouch for simulated evidence only,
    /// whatever kind they are given for.
    #[arg(long, value_name = "[KIND=]FILE")]
    trust_anchor: Vec<String>,
    /// The report data expected in the evidence, hex (shorter values are zero-padded).
    #[arg(long)]
    report_data: Option<String>,
    /// An appraisal policy (TOML or JSON) to apply to the verified claims.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Verification time, RFC 3339 (default: now).
    #[arg(long)]
    at: Option<String>,
    /// The evidence kind, when detection should not guess.
    #[arg(long)]
    tee: Option<TeeKind>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Everything read from the command line before verification.
struct Inputs {
    evidence: Vec<u8>,
    collateral: Vec<Vec<u8>>,
    anchors: TrustAnchors,
    report_data: Option<Vec<u8>>,
    policy: Option<AppraisalPolicy>,
    at: time::OffsetDateTime,
}

fn read_inputs(args: &VerifyArgs) -> Result<Inputs> {
    let raw = files::read(&args.evidence, "evidence")?;
    let mut evidence = veritee_attest::encoding::decode_evidence(&raw)
        .with_context(|| format!("evidence {}", args.evidence.display()))?;
    let mut collateral = args
        .collateral
        .iter()
        .map(|p| files::read(p, "collateral"))
        .collect::<Result<Vec<_>>>()?;
    // A CoCo guest's SNP or NVIDIA document, as it reached a key broker.
    if let Some(document) = veritee_kbs::protocol::coco_document(&evidence) {
        let document = document.with_context(|| format!("evidence {}", args.evidence.display()))?;
        evidence = document.bytes;
        collateral.extend(document.collateral);
    }
    let anchors = files::trust_anchors(&args.trust_anchor)?;
    let policy = match &args.policy {
        Some(path) => Some(
            AppraisalPolicy::parse(&files::read_text(path, "policy")?)
                .with_context(|| format!("policy {}", path.display()))?,
        ),
        None => None,
    };
    Ok(Inputs {
        evidence,
        collateral,
        anchors,
        report_data: args
            .report_data
            .as_deref()
            .map(files::report_data)
            .transpose()?,
        policy,
        at: files::time_or_now(args.at.as_deref())?,
    })
}

/// Runs `veritee verify`.
pub fn run(args: VerifyArgs) -> Result<Outcome> {
    let inputs = match read_inputs(&args) {
        Ok(i) => i,
        Err(e) => {
            report(&args, None, Err(format!("{e:#}")), None);
            return Ok(Outcome::Unusable);
        }
    };
    let verifiers = Verifiers::default();
    let tee = args.tee.or_else(|| verifiers.detect(&inputs.evidence).ok());
    let result = verifiers.verify(&VerifyRequest {
        evidence: &inputs.evidence,
        tee: args.tee,
        collateral: &inputs.collateral,
        trust_anchors: &inputs.anchors,
        expected_report_data: inputs.report_data.as_deref(),
        at: inputs.at,
    });
    match result {
        Ok(claims) => {
            let appraisal = inputs
                .policy
                .as_ref()
                .map(|p| p.evaluate(&claims, inputs.at));
            let accepted = appraisal.as_ref().is_none_or(Appraisal::accepted);
            report(&args, tee, Ok(&claims), appraisal.as_ref());
            Ok(if accepted {
                Outcome::Success
            } else {
                Outcome::Rejected
            })
        }
        Err(err) => {
            let outcome = if err.is_unusable_input() {
                Outcome::Unusable
            } else {
                Outcome::Rejected
            };
            report(&args, tee, Err(describe(&err)), None);
            Ok(outcome)
        }
    }
}

fn describe(err: &VerifyError) -> String {
    err.to_string()
}

fn report(
    args: &VerifyArgs,
    tee: Option<TeeKind>,
    result: Result<&Claims, String>,
    appraisal: Option<&Appraisal>,
) {
    if args.json {
        let mut out = json!({ "verified": result.is_ok() });
        match result {
            Ok(claims) => {
                if let (Value::Object(out), Ok(Value::Object(c))) =
                    (&mut out, serde_json::to_value(claims))
                {
                    out.extend(c);
                }
                out["policy"] = appraisal.map_or(Value::Null, |a| json!(a));
            }
            Err(error) => {
                out["tee"] = tee.map_or(Value::Null, |t| json!(t));
                out["error"] = json!(error);
            }
        }
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return;
    }
    match result {
        Err(error) => println!(
            "NOT VERIFIED{}: {error}",
            tee.map(|t| format!(" ({t})")).unwrap_or_default()
        ),
        Ok(claims) => {
            let sim = if claims.tee == veritee_attest::TeeKind::CocoSample {
                " — UNSIGNED sample evidence: anyone can write it, it proves nothing"
            } else if claims.simulated {
                " — SIMULATED, not real hardware"
            } else {
                ""
            };
            println!("verified {} evidence{sim}", claims.tee);
            for (name, value) in &claims.measurements {
                println!("  {name:<18} {value}");
            }
            if let Some(signer) = &claims.signer {
                println!("  {:<18} {signer}", "signer");
            }
            println!("  {:<18} {}", "tcb_status", claims.tcb_status);
            if !claims.advisory_ids.is_empty() {
                println!("  {:<18} {}", "advisories", claims.advisory_ids.join(", "));
            }
            if let Some(v) = claims.security_version {
                println!("  {:<18} {v}", "security_version");
            }
            println!("  {:<18} {}", "debug", claims.debug);
            println!("  {:<18} {}", "report_data", claims.report_data);
            if let Some(t) = claims.evidence_time {
                println!("  {:<18} {}", "evidence_time", files::rfc3339(t));
            }
            if let Some(anchor) = &claims.trust_anchor {
                let source = match anchor.source {
                    veritee_attest::AnchorSource::BuiltIn => "built-in",
                    veritee_attest::AnchorSource::Given => "given",
                };
                println!(
                    "  {:<18} {} ({source}, for {}, sha256 {})",
                    "trust_anchor", anchor.subject, anchor.kind, anchor.sha256
                );
            }
            if let Some(a) = appraisal {
                print_appraisal(a);
            } else {
                println!("no --policy given: verified, not appraised");
            }
        }
    }
}

/// Prints an appraisal as text.
pub fn print_appraisal(a: &Appraisal) {
    if a.accepted() {
        println!("policy: ACCEPT");
    } else {
        println!("policy: REJECT");
        for f in &a.failed {
            println!("  - {}: {}", f.criterion, f.reason);
        }
    }
}
