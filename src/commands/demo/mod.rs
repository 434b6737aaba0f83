//! `veritee demo`: a guided tour on the simulated TEE. Each step prints what happened;
//! a step that does not behave as the tour expects stops it with an error.

mod attacks;
mod fleet;
mod fork;
mod import;
mod workload;

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
    let mut t = node_tour(&root)?;
    fleet::fleet_tour(&root, &mut t)?;
    attacks::attack_tour(&root, &mut t)?;
    println!(
        "\nTour complete: vendor -> machine -> evidence -> verification -> policy accept and reject,"
    );
    println!(
        "then a provider node: attested session, secrets kept in the enclave, ciphertext only on the host;"
    );
    println!("a CoCo guest fetching its disk key from the node's key broker (the KBS protocol);");
    println!(
        "keys lent to the enclave through two validated layers and used by id, never seen by the host;"
    );
    println!(
        "keys deployed online and offline, kept across a restart, replicated between enclaves;"
    );
    println!("and a task run only where the policy allows, its result released in aggregate;");
    println!(
        "an encrypted workload opened only by the targets its owner's security module authorized;"
    );
    println!(
        "and a host that forges evidence, replays requests, swaps inputs or rolls the store back,"
    );
    println!("and a courier who alters a key file, each refused with the reason.");
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

    let typed_anchors = veritee_attest::TrustAnchors::untyped(anchors.clone());
    let verify = |evidence: &[u8], expected: &[u8], collateral: &[Vec<u8>]| {
        verifiers.verify(&VerifyRequest {
            evidence,
            tee: None,
            collateral,
            trust_anchors: &typed_anchors,
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

/// Kills the background node when the tour ends, however it ends.
struct NodeProcess(std::process::Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

fn node_tour(root: &Path) -> Result<Tour> {
    use veritee_channel::client::{Appraiser, TenantKey};
    use veritee_crypto::SecretBytes;

    let mut t = Tour { step: 12 };
    t.step("Provider node: `veritee node` starts in the background on loopback (host process + enclave process)");
    let state = root.join("node");
    let log_path = root.join("node.log");
    // The node is also a CoCo key broker, administered with this Ed25519 key.
    let kbs_admin = veritee_crypto::sign::Ed25519SigningKey::generate()?;
    let admin_pub = root.join("kbs-admin.pub");
    std::fs::write(
        &admin_pub,
        veritee_kbs::token::admin_public_key_to_pem(&kbs_admin.public_key())?,
    )
    .context("cannot write kbs-admin.pub")?;
    let admin_pub = admin_pub.display().to_string();
    let (_node, url) =
        fleet::Cli::new(root)?.node("node", "127.0.0.1:0", &["--kbs-admin-key", &admin_pub])?;

    t.step("Tenant: a P-256 identity key, registered with the node's admin token");
    let token = std::fs::read_to_string(state.join("admin.token"))
        .context("cannot read the admin token")?;
    let tenant = TenantKey::generate()?;
    let (client, exchanges) = veritee_client::NodeClient::new(&url)?.recording();
    println!("    tenant {}", client.register_tenant(&token, &tenant)?);

    t.step("Attested session: fresh nonce -> evidence binding the enclave's session key -> policy -> HPKE keys");
    let anchors = veritee_attest::TrustAnchors::untyped(ParsedCertificate::from_pem_chain(
        &std::fs::read(state.join("vendor/root.pem")).context("node vendor root")?,
    )?);
    let verifiers = Verifiers::default();
    let policy = AppraisalPolicy::parse(&starter_policy(true, &[]))?;
    let appraiser = Appraiser {
        verifiers: &verifiers,
        policy: &policy,
        trust_anchors: &anchors,
        collateral: &[],
        at: OffsetDateTime::now_utc(),
    };
    let mut session = client.open_session(&tenant, &appraiser)?;
    println!(
        "    session {} with enclave {} ({})",
        session.id(),
        short(
            session
                .claims()
                .measurement("measurement")
                .unwrap_or_default()
        ),
        session.claims().tee
    );

    t.step(
        "Secrets: store one in the enclave, read it back, and use it (HMAC) without releasing it",
    );
    let canary = format!(
        "demo-canary-{}",
        hex::encode(veritee_crypto::rand::array::<8>()?)
    );
    session.put_secret("db-password", SecretBytes::copy_from(canary.as_bytes()))?;
    let back = session.get_secret("db-password")?;
    ensure!(
        back.expose() == canary.as_bytes(),
        "the secret did not come back intact"
    );
    let tag = session.hmac("db-password", b"hello")?;
    println!(
        "    stored and read back {} bytes; HMAC(db-password, \"hello\") = {}",
        back.len(),
        short(&tag)
    );

    t.step("Key broker: a Confidential Containers guest (CoCo's sample TEE) fetches a disk key");
    let disk_key = format!(
        "demo-disk-key-{}",
        hex::encode(veritee_crypto::rand::array::<8>()?)
    );
    let kbs_token = veritee_kbs::token::mint_admin_token(
        &kbs_admin,
        OffsetDateTime::now_utc(),
        time::Duration::minutes(10),
    )?;
    client.kbs_set_policy(
        &kbs_token,
        "version = 1\ntee = [\"coco-sample\"]\nallow_simulated = true\ntcb_status = [\"NotReported\"]\n",
    )?;
    let wrapping = client.fetch_wrapping_key()?.verify(&appraiser)?;
    client.kbs_put_sealed_resource(
        &kbs_token,
        "default/key/disk",
        disk_key.as_bytes(),
        &wrapping,
    )?;
    println!(
        "    admin: resource policy set; default/key/disk stored, sealed to the attested enclave"
    );
    let guest_key = veritee_kbs::jwe::TeeKeyPair::generate_ec(veritee_kbs::jwe::Curve::P256)?;
    let kbs_session = client.kbs_attest_sample(&guest_key)?;
    let released = client.kbs_get_resource(&kbs_session, &guest_key, "default/key/disk")?;
    ensure!(
        released.as_slice() == disk_key.as_bytes(),
        "the disk key did not come back intact"
    );
    println!(
        "    guest: auth -> attest (EAR token) -> resource, a JWE to its own P-256 key; {} bytes opened",
        released.len()
    );
    println!(
        "    (the sample TEE proves nothing: only a policy naming \"coco-sample\" lets it in)"
    );

    let imported = import::import_tour(&mut t, &state, &client, &tenant, &appraiser)?;

    t.step("What the host saw");
    let seen = exchanges.lock().map(|e| e.clone()).unwrap_or_default();
    for x in &seen {
        let body = if x.request_body.is_empty() {
            &x.response_body
        } else {
            &x.request_body
        };
        println!(
            "    {:<52} {:>5} bytes in, {:>5} out: {}",
            x.request_line,
            x.request_body.len(),
            x.response_body.len(),
            short(body)
        );
    }
    let mut secrets = vec![canary.as_bytes(), disk_key.as_bytes()];
    secrets.extend(imported.iter().map(Vec::as_slice));
    let on_wire = seen.iter().any(|x| {
        secrets
            .iter()
            .any(|s| contains(&x.request_body, s) || contains(&x.response_body, s))
    });
    let stored = files_under(&state);
    let in_store = secrets.iter().any(|s| contains(&stored, s));
    let logs = std::fs::read(&log_path).unwrap_or_default();
    let in_logs = secrets.iter().any(|s| contains(&logs, s));
    println!(
        "    the secret, the disk key or an imported key appears on the wire: {on_wire}; in the host's store: {in_store}; in the logs: {in_logs}"
    );
    ensure!(
        !on_wire && !in_store && !in_logs,
        "a plaintext secret reached the host"
    );

    t.step("Audit: every action above was signed inside the enclave and chained by hash");
    let key = client.attested_node_keys(&appraiser)?.audit_public_key;
    let log = client.audit_log(&token, 0, 1000)?;
    let entries = log
        .entries
        .iter()
        .map(|r| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(&r.entry)
                .map(|b| (r.seq, b))
                .context("audit entry is not base64")
        })
        .collect::<Result<Vec<_>>>()?;
    let bodies = veritee_audit::verify_log(&entries, &key)?;
    for b in &bodies {
        println!("    #{} {} {} ({})", b.seq, b.action, b.object, b.outcome);
    }
    Ok(t)
}
