//! The tour's TEE-bound workload part (flow 2): the owner builds an encrypted workload
//! and puts its seed in its security module; the orchestrator enrolls nodes A and B,
//! puts their authorizations in the workload's slot area and launches it on both; a
//! tampered copy and a deprovisioned target are each refused. With swtpm installed,
//! node C is a target with a (software) TPM 2.0: enrolled through its EK chain,
//! TPM2_Certify and ActivateCredential, its seed unsealed by its TPM under a PCR
//! policy, and refused once its PCRs move.

use super::Tour;
use super::fleet::Cli;
use anyhow::{Context, Result, ensure};

const UNLOCK: &str = include_str!("../../../examples/workloads/unlock.wat");
const PASSPHRASE: &str = "correct horse battery staple 0x5eed";

pub(super) fn workload_tour(cli: &Cli, t: &mut Tour, a: &str, b: &str) -> Result<()> {
    t.step("TEE-bound workload: the owner's security module, a node started with --role sm");
    let tpm = software_tpm(cli)?;
    let mut sm_args = vec![
        "--platform",
        "m1",
        "--peer-trust-anchors",
        "vendor/root.pem",
        "--role",
        "sm",
    ];
    if tpm.is_some() {
        // The TPM manufacturer's CA: the SM checks TPM targets' EK certificates under it.
        sm_args.extend(["--tpm-ca", TPM_CA]);
    }
    let (_sm_node, sm) = cli.node("sm", "127.0.0.1:0", &sm_args)?;
    cli.run(&[
        "tenant",
        "register",
        "--node",
        &sm,
        "--admin-token",
        "sm/admin.token",
        "--tenant",
        "tenant.key",
    ])?;

    t.step("Build: a module, its configuration and the secret CD1, encrypted under a fresh seed");
    std::fs::write(cli.path("unlock.wat"), UNLOCK)?;
    std::fs::write(cli.path("volume.txt"), "orders-volume")?;
    std::fs::write(cli.path("passphrase.txt"), PASSPHRASE)?;
    cli.run(&[
        "workload",
        "build",
        "--module",
        "unlock.wat",
        "--config",
        "volume.txt",
        "--secret",
        "CD1=passphrase.txt",
        "--out",
        "app.vtwl",
        "--seed-out",
        "app.seed",
    ])?;

    t.step("Put the seed in the SM: sealed to its attested key, with the policy targets must meet");
    // The sealing policy names the code that may open the workload: enclaves signed by
    // signer.pem (A and B).
    let signer = super::fleet::signer_of(cli, a)?;
    std::fs::write(
        cli.path("targets.toml"),
        veritee_policy::starter_policy(true, &[]).replace(
            "# signers = [\"...\"]",
            &format!("signers = [\"{signer}\"]"),
        ),
    )?;
    println!("    targets.toml: simulated targets whose enclaves signer.pem signed");
    cli.run(&[
        "sm",
        "put-seed",
        "--node",
        &sm,
        "--tenant",
        "tenant.key",
        "--policy",
        "policy.toml",
        "--trust-anchor",
        "vendor/root.pem",
        "--workload",
        "app.vtwl",
        "--seed",
        "app.seed",
        "--sealing-policy",
        "targets.toml",
    ])?;

    t.step(
        "Deploy: the SM enrolls A and B (evidence over its nonce), authorizes each, both launch",
    );
    let deploy = [
        "deploy",
        "--workload",
        "app.vtwl",
        "--sm",
        &sm,
        "--node",
        a,
        "--node",
        b,
        "--out-dir",
        "launches",
    ];
    cli.run(&deploy)?;
    let inspected = cli.run(&["workload", "inspect", "app.vtwl"])?;
    ensure!(
        inspected.contains("slots     2"),
        "the workload should hold two slots"
    );
    println!("    one file, two slots: the encrypted part and its digest did not change");

    t.step("Only the owner reads what the workload wrote: its output is sealed to the seed");
    let out = cli.run(&[
        "workload",
        "output",
        "--seed",
        "app.seed",
        "--workload",
        "app.vtwl",
        "--launch",
        "launches/launch-1.json",
    ])?;
    ensure!(
        out.contains(&format!(
            "volume orders-volume unlocked with a passphrase of {} bytes",
            PASSPHRASE.len()
        )),
        "the workload's output is not what it should be"
    );
    for dir in ["a", "b", "sm", "launches"] {
        ensure!(
            !super::contains(&super::files_under(&cli.path(dir)), PASSPHRASE.as_bytes()),
            "the passphrase reached {dir}"
        );
    }
    for log in ["a.log", "b.log", "sm.log"] {
        let text = std::fs::read(cli.path(log)).unwrap_or_default();
        ensure!(
            !super::contains(&text, PASSPHRASE.as_bytes()),
            "the passphrase reached {log}"
        );
    }
    println!("    the passphrase is in no host's files, store or log, nor in the launch answers");

    t.step("Deploying again gets the same authorizations back: the SM never issues a second");
    let again = cli.run(&deploy)?;
    ensure!(
        again.matches("existing authorization").count() == 2,
        "a second authorization was issued"
    );

    t.step("Verify before secrets: A loads the workload, measures it in fresh evidence, and only then gets the seed");
    let verified = cli.run(&[
        "deploy",
        "--workload",
        "app.vtwl",
        "--sm",
        &sm,
        "--node",
        a,
        "--verify-first",
        "--out-dir",
        "verified",
    ])?;
    ensure!(
        verified.contains("seed released by the SM"),
        "the seed was not released"
    );
    ensure!(
        !super::contains(
            &super::files_under(&cli.path("verified")),
            PASSPHRASE.as_bytes()
        ),
        "the passphrase reached the launch answer"
    );

    t.step("Refusals: a tampered workload, and a deprovisioned target");
    // One bit of the encrypted payload flipped; the slots stay as they are.
    let mut tampered = std::fs::read(cli.path("app.vtwl"))?;
    tampered[60] ^= 1;
    std::fs::write(cli.path("tampered.vtwl"), &tampered)?;
    let refused = cli.run_refused(&[
        "workload",
        "launch",
        "--node",
        a,
        "--workload",
        "tampered.vtwl",
        "--out",
        "tampered.json",
    ])?;
    ensure!(
        refused.contains("HMAC does not match"),
        "tampering not named"
    );
    cli.run(&[
        "workload",
        "rotate-storage-key",
        "--node",
        b,
        "--admin-token",
        "b/admin.token",
    ])?;
    let refused = cli
        .run_refused(&[
            "workload",
            "launch",
            "--node",
            b,
            "--workload",
            "app.vtwl",
            "--out",
            "rotated.json",
        ])
        .context("B launched after its key was rotated")?;
    ensure!(refused.contains("key was rotated"), "rotation not named");
    match tpm {
        Some(tpm) => tpm_tour(cli, t, &sm, &tpm),
        None => {
            println!(
                "    (a target with a TPM 2.0 is shown when swtpm is installed: apt-get install swtpm swtpm-tools)"
            );
            Ok(())
        }
    }
}

/// The TPM manufacturer's CA certificates (root and intermediate), as the SM gets them.
const TPM_CA: &str = "tpm-ca.pem";
/// The PCRs node C's storage key is bound to.
const TPM_PCRS: &str = "0,7,8";

/// A software TPM manufactured under a local CA (standing in for the TPM vendor), and
/// running; none without swtpm.
fn software_tpm(cli: &Cli) -> Result<Option<veritee_tpm::swtpm::SoftwareTpm>> {
    use veritee_tpm::swtpm::{LocalCa, SoftwareTpm, installed};
    if !installed() {
        return Ok(None);
    }
    let ca = LocalCa::new(&cli.path("tpm-vendor")).context("the software TPM's CA")?;
    ca.manufacture(&cli.path("tpm-c"))
        .context("manufacturing the software TPM")?;
    let mut pem = ca.root_pem()?;
    pem.extend(ca.intermediate_pem()?);
    std::fs::write(cli.path(TPM_CA), pem)?;
    println!(
        "    swtpm: a TPM 2.0 made under a local CA ({TPM_CA} stands in for its manufacturer)"
    );
    Ok(Some(SoftwareTpm::start(&cli.path("tpm-c"))?))
}

fn tpm_tour(
    cli: &Cli,
    t: &mut Tour,
    sm: &str,
    tpm: &veritee_tpm::swtpm::SoftwareTpm,
) -> Result<()> {
    t.step("A target with a TPM 2.0: node C on machine m3, its storage key a key of its (software) TPM");
    cli.run(&["platform", "init", "--dir", "m3", "--vendor", "vendor"])?;
    let tcti = tpm.tcti();
    let (_node_c, c) = cli.node(
        "c",
        "127.0.0.1:0",
        &[
            "--platform",
            "m3",
            "--enclave-signer-key",
            "signer.pem",
            "--peer-trust-anchors",
            "vendor/root.pem",
            "--tpm",
            &tcti,
            "--tpm-pcrs",
            TPM_PCRS,
        ],
    )?;
    // The policy names C's PCRs as they are now, and the signer of its enclave, which
    // holds the inner key: the TPM alone opens nothing.
    let signer = super::fleet::signer_of(cli, &c)?;
    cli.run(&[
        "workload",
        "tpm-policy",
        "--tpm",
        &tcti,
        "--pcrs",
        TPM_PCRS,
        "--signer",
        &signer,
        "--allow-simulated",
        "--out",
        "tpm-targets.toml",
    ])?;
    cli.run(&[
        "workload",
        "build",
        "--module",
        "unlock.wat",
        "--config",
        "volume.txt",
        "--secret",
        "CD1=passphrase.txt",
        "--out",
        "tpm-app.vtwl",
        "--seed-out",
        "tpm-app.seed",
    ])?;
    cli.run(&[
        "sm",
        "put-seed",
        "--node",
        sm,
        "--tenant",
        "tenant.key",
        "--policy",
        "policy.toml",
        "--trust-anchor",
        "vendor/root.pem",
        "--workload",
        "tpm-app.vtwl",
        "--seed",
        "tpm-app.seed",
        "--sealing-policy",
        "tpm-targets.toml",
    ])?;

    t.step("Deploy to C: EK chain to the CA, storage key certified by the AK (non-exportable, PCR-bound), C's enclave vouching for it, ActivateCredential; the seed sealed to C's enclave, then to its TPM");
    let deployed = cli.run(&[
        "deploy",
        "--workload",
        "tpm-app.vtwl",
        "--sm",
        sm,
        "--node",
        &c,
        "--out-dir",
        "tpm-launches",
    ])?;
    ensure!(
        deployed.contains("tpm2"),
        "C was not enrolled as a TPM target"
    );
    let out = cli.run(&[
        "workload",
        "output",
        "--seed",
        "tpm-app.seed",
        "--workload",
        "tpm-app.vtwl",
        "--launch",
        "tpm-launches/launch-1.json",
    ])?;
    ensure!(
        out.contains("unlocked with a passphrase"),
        "the TPM target's output is not what it should be"
    );
    for dir in ["c", "sm", "tpm-launches", "tpm-c"] {
        ensure!(
            !super::contains(&super::files_under(&cli.path(dir)), PASSPHRASE.as_bytes()),
            "the passphrase reached {dir}"
        );
    }

    t.step(
        "Refused: C boots into another state (PCR 8 extended); its TPM no longer unseals the seed",
    );
    veritee_tpm::device::TargetTpm::open(&tcti)?.extend_pcr(8, [0x5e; 32])?;
    println!("    PCR 8 extended, as a changed boot component would");
    let refused = cli.run_refused(&[
        "workload",
        "launch",
        "--node",
        &c,
        "--workload",
        "tpm-app.vtwl",
        "--out",
        "tpm-moved.json",
    ])?;
    ensure!(
        refused.contains("TPM did not unseal"),
        "the moved PCRs were not named"
    );
    Ok(())
}
