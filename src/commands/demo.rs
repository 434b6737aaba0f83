//! `veritee demo`: a guided tour on the simulated TEE. Each step prints what happened;
//! a step that does not behave as the tour expects stops it with an error.

use crate::Outcome;
use crate::commands::verify::print_appraisal;
use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use veritee_attest::{ParsedCertificate, ReportData, TcbStatus, VerifyError};
use veritee_platform::Platform;
use veritee_platform::sim::{EnclaveImage, SimMachine, SimVendor};
use veritee_policy::{AppraisalPolicy, starter_policy};
use veritee_verify::{Verifiers, VerifyRequest};

/// Arguments of `veritee demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the tour's files in this directory (created) instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
}

const ENCLAVE_V1: &[u8] = b"(module (func (export \"answer\") (result i32) i32.const 42))";
const ENCLAVE_V2: &[u8] = b"(module (func (export \"answer\") (result i32) i32.const 43))";

struct Tour {
    step: usize,
}

impl Tour {
    fn step(&mut self, title: &str) {
        self.step += 1;
        println!("\n[{}] {title}", self.step);
    }
}

fn short(bytes: &[u8]) -> String {
    let h = hex::encode(bytes);
    if h.len() > 24 {
        format!("{}…", &h[..24])
    } else {
        h
    }
}

/// Runs the tour.
pub fn run(args: DemoArgs) -> Result<Outcome> {
    let temp;
    let root: PathBuf = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    println!("veritee demo: attestation on the simulated TEE");
    println!("working directory: {}", root.display());
    tour(&root, args.dir.is_some())?;
    println!(
        "\nTour complete: vendor -> machine -> evidence -> verification -> policy accept and reject."
    );
    Ok(Outcome::Success)
}

fn tour(root: &Path, kept: bool) -> Result<()> {
    let mut t = Tour { step: 0 };
    let now = OffsetDateTime::now_utc();
    let verifiers = Verifiers::default();

    t.step(
        "Vendor: a simulated hardware vendor with a root CA, a platform CA and a TCB signing key",
    );
    let mut vendor = SimVendor::init(&root.join("vendor"), now)?;
    let anchors = ParsedCertificate::from_pem_chain(&vendor.root_pem()?)?;
    println!(
        "    trust anchor {} (sha256 {})",
        vendor.root_path().display(),
        short(&anchors[0].fingerprint())
    );
    println!(
        "    publishes CRLs and TCB info: SVN {} is up to date",
        vendor.latest_tcb_svn()
    );

    t.step("Machines: two simulated machines certified by the vendor");
    let machine_a = SimMachine::init(&root.join("machine-a"), &mut vendor, None, now)?;
    let machine_b = SimMachine::init(&root.join("machine-b"), &mut vendor, Some(1), now)?;
    println!(
        "    machine-a {} at TCB SVN {}",
        machine_a.info().machine_id,
        machine_a.info().tcb_svn
    );
    println!(
        "    machine-b {} at TCB SVN {} (behind on firmware)",
        machine_b.info().machine_id,
        machine_b.info().tcb_svn
    );

    t.step("Enclave: the code to run, measured by the platform when it is loaded");
    std::fs::write(root.join("enclave.wat"), ENCLAVE_V1).context("cannot write enclave.wat")?;
    let image = EnclaveImage::unsigned(ENCLAVE_V1, 1, 1, false);
    println!("    enclave.wat measurement {}", short(&image.measurement));
    let enclave = machine_a.launch(&image)?;

    t.step("Client: a fresh nonce, so old evidence cannot be replayed");
    let nonce: [u8; 32] = veritee_crypto::rand::array()?;
    let report_data = ReportData::from_slice_padded(&nonce)?;
    println!("    nonce {}", hex::encode(nonce));

    t.step("Attest: machine-a signs a report binding the nonce to the enclave's measurement");
    let evidence = enclave.evidence(&report_data)?;
    std::fs::write(root.join("evidence.bin"), &evidence).context("cannot write evidence.bin")?;
    println!(
        "    {} bytes of evidence: report + machine certificate + CRLs + TCB info",
        evidence.len()
    );

    let verify = |evidence: &[u8], expected: &[u8], collateral: &[Vec<u8>]| {
        verifiers.verify(&VerifyRequest {
            evidence,
            tee: None,
            collateral,
            trust_anchors: &anchors,
            expected_report_data: Some(expected),
            at: OffsetDateTime::now_utc(),
        })
    };

    t.step(
        "Verify: certificate chain to the vendor root, CRLs, report signature, TCB level, nonce",
    );
    let claims = verify(&evidence, &nonce, &[])?;
    println!(
        "    tee {} (simulated: {}), tcb {}, debug {}",
        claims.tee, claims.simulated, claims.tcb_status, claims.debug
    );
    println!(
        "    measurement {}",
        short(claims.measurement("measurement").unwrap_or_default())
    );

    t.step("Appraise with a policy that pins the measurement and allows simulated evidence");
    let pinned = format!(
        "{}measurement = [\"{}\"]\n",
        starter_policy(true, &[]).replace("# measurement = [\"...\"]\n", ""),
        hex::encode(image.measurement)
    );
    std::fs::write(root.join("policy.toml"), &pinned).context("cannot write policy.toml")?;
    let policy = AppraisalPolicy::parse(&pinned)?;
    let appraisal = policy.evaluate(&claims, now);
    print_appraisal(&appraisal);
    ensure!(
        appraisal.accepted(),
        "the pinned policy should accept the genuine enclave"
    );

    t.step("Appraise with the default policy, which accepts hardware TEEs only");
    let appraisal = AppraisalPolicy::default_hardware().evaluate(&claims, now);
    print_appraisal(&appraisal);
    ensure!(
        !appraisal.accepted(),
        "the default policy must reject simulated evidence"
    );

    t.step("An outdated machine: machine-b runs TCB SVN 1");
    let outdated = verify(
        &machine_b.launch(&image)?.evidence(&report_data)?,
        &nonce,
        &[],
    )?;
    let appraisal = policy.evaluate(&outdated, now);
    print_appraisal(&appraisal);
    ensure!(
        outdated.tcb_status == TcbStatus::OutOfDate && !appraisal.accepted(),
        "machine-b should be out of date"
    );

    t.step("Changed code: the same machine runs a modified enclave");
    let changed = verify(
        &machine_a
            .launch(&EnclaveImage::unsigned(ENCLAVE_V2, 1, 1, false))?
            .evidence(&report_data)?,
        &nonce,
        &[],
    )?;
    let appraisal = policy.evaluate(&changed, now);
    print_appraisal(&appraisal);
    ensure!(
        !appraisal.accepted(),
        "changed code must fail the measurement"
    );

    t.step("Replay: the old evidence offered against a new nonce");
    let new_nonce: [u8; 32] = veritee_crypto::rand::array()?;
    match verify(&evidence, &new_nonce, &[]) {
        Err(e @ VerifyError::ReportDataMismatch { .. }) => println!("    NOT VERIFIED: {e}"),
        other => bail!("a replay must be refused, got {other:?}"),
    }

    t.step("Revocation: the vendor revokes machine-a; verifiers fetch the new CRL");
    vendor.revoke_machine(&machine_a.machine_id(), OffsetDateTime::now_utc())?;
    let fresh: Vec<Vec<u8>> = vendor
        .collateral_paths()
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
        .collect::<Result<_>>()?;
    match verify(&evidence, &nonce, &fresh) {
        Err(e) => println!("    NOT VERIFIED: {e}"),
        Ok(_) => bail!("evidence from a revoked machine must be refused"),
    }

    if !kept {
        println!(
            "\n(run `veritee demo --dir DIR` to keep these files and try the command line on them)"
        );
        return Ok(());
    }
    println!("\nTry it from the command line:");
    println!(
        "    veritee verify --evidence {} --trust-anchor {} --report-data {} --policy {} --json",
        root.join("evidence.bin").display(),
        vendor.root_path().display(),
        hex::encode(nonce),
        root.join("policy.toml").display()
    );
    println!(
        "    (machine-a is revoked now: add --collateral {} to see it refused)",
        vendor.collateral_paths()[1].display()
    );
    Ok(())
}
