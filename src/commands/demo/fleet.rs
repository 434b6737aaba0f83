//! The second half of the tour: several nodes on loopback, driven through the real
//! `veritee` command line. Key management (online and offline deployment, restart,
//! replication, encrypted data exchange) and a trusted task across two providers, one
//! of which fails the client's policy.

use super::{NodeProcess, Tour, short};
use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;
use veritee_platform::fsutil;

/// The example task the tour offloads, embedded so the demo runs from any directory.
const EXAMPLE: &[(&str, &str)] = &[
    (
        "task.toml",
        include_str!("../../../examples/tasks/two-owner-statistic/task.toml"),
    ),
    (
        "stats.wat",
        include_str!("../../../examples/tasks/two-owner-statistic/stats.wat"),
    ),
    (
        "data/owner_a.csv",
        include_str!("../../../examples/tasks/two-owner-statistic/data/owner_a.csv"),
    ),
    (
        "data/owner_b.csv",
        include_str!("../../../examples/tasks/two-owner-statistic/data/owner_b.csv"),
    ),
];
const EXAMPLE_EXPECTED: &str =
    include_str!("../../../examples/tasks/two-owner-statistic/expected.txt");

/// Runs `veritee` subcommands in the tour's directory, showing each command line.
pub(super) struct Cli {
    exe: PathBuf,
    cwd: PathBuf,
}

impl Cli {
    /// Runs this very executable in `cwd`.
    pub(super) fn new(cwd: &Path) -> Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("cannot find the veritee executable")?,
            cwd: cwd.to_path_buf(),
        })
    }

    /// A path in the tour's directory.
    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.cwd.join(name)
    }

    /// Runs a command the tour expects to be refused; shows and returns what it said.
    pub(super) fn run_refused(&self, args: &[&str]) -> Result<String> {
        println!("    $ veritee {}", args.join(" "));
        let out = Command::new(&self.exe)
            .current_dir(&self.cwd)
            .args(args)
            .output()
            .with_context(|| format!("cannot run veritee {}", args[0]))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in text.lines() {
            println!("      {line}");
        }
        ensure!(
            !out.status.success(),
            "`veritee {}` should have been refused",
            args.join(" ")
        );
        Ok(text)
    }

    /// Starts `veritee node --dir NAME` expecting it to refuse to start; returns why.
    pub(super) fn node_refuses(&self, name: &str, extra: &[&str]) -> Result<String> {
        println!(
            "    $ veritee node --dir {name} --tee sim --listen 127.0.0.1:0 {}",
            extra.join(" ")
        );
        let out = Command::new(&self.exe)
            .current_dir(&self.cwd)
            .args([
                "node",
                "--dir",
                name,
                "--tee",
                "sim",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .output()
            .context("cannot start a node")?;
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        for line in text.lines().filter(|l| l.starts_with("error")) {
            println!("      {line}");
        }
        ensure!(!out.status.success(), "node {name} started");
        Ok(text)
    }

    pub(super) fn run(&self, args: &[&str]) -> Result<String> {
        println!("    $ veritee {}", args.join(" "));
        let out = Command::new(&self.exe)
            .current_dir(&self.cwd)
            .args(args)
            .output()
            .with_context(|| format!("cannot run veritee {}", args[0]))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in stdout.lines().chain(stderr.lines()) {
            println!("      {line}");
        }
        if !out.status.success() {
            bail!("`veritee {}` failed", args.join(" "));
        }
        Ok(stdout)
    }

    /// Starts `veritee node --dir NAME` with `extra` arguments; returns it and its URL.
    pub(super) fn node(
        &self,
        name: &str,
        listen: &str,
        extra: &[&str],
    ) -> Result<(NodeProcess, String)> {
        let state = self.cwd.join(name);
        let _ = std::fs::remove_file(state.join("node.addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cwd.join(format!("{name}.log")))
            .with_context(|| format!("cannot create {name}.log"))?;
        println!(
            "    $ veritee node --dir {name} --tee sim --listen {listen} {} &",
            extra.join(" ")
        );
        let child = Command::new(&self.exe)
            .current_dir(&self.cwd)
            .args(["node", "--dir", name, "--tee", "sim", "--listen", listen])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start a node")?;
        let process = NodeProcess(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let url = loop {
            if let Ok(url) = std::fs::read_to_string(state.join("node.addr")) {
                break url;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "node {name} did not start; see {name}.log"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        println!("      {name} at {url}");
        Ok((process, url))
    }
}

fn write_signer(path: &Path) -> Result<()> {
    let key =
        veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P384)?;
    let pem = veritee_crypto::SecretBytes::new(
        veritee_x509::pem::encode("PRIVATE KEY", key.to_pkcs8()?.expose()).into_bytes(),
    );
    fsutil::write_new(path, pem.expose(), fsutil::PRIVATE_MODE)?;
    Ok(())
}

/// Key management and a trusted task across nodes.
pub fn fleet_tour(root: &Path, t: &mut Tour) -> Result<()> {
    let cli = Cli::new(&root.join("fleet"))?;
    std::fs::create_dir_all(&cli.cwd).context("cannot create the fleet directory")?;

    t.step("Fleet: one vendor, two machines, and the enclave developer's signing key");
    cli.run(&["vendor", "init", "--dir", "vendor"])?;
    cli.run(&["platform", "init", "--dir", "m1", "--vendor", "vendor"])?;
    cli.run(&["platform", "init", "--dir", "m2", "--vendor", "vendor"])?;
    write_signer(&cli.cwd.join("signer.pem"))?;
    write_signer(&cli.cwd.join("other-signer.pem"))?;
    std::fs::write(
        cli.cwd.join("policy.toml"),
        veritee_policy::starter_policy(true, &[]),
    )?;
    println!(
        "    signer.pem and other-signer.pem: P-384 keys (0600); policy.toml allows simulated evidence"
    );

    t.step("Node A on machine m1, node B on m2, both running enclaves signed by signer.pem");
    let node_args = |machine: &'static str, signer: &'static str| {
        vec![
            "--platform",
            machine,
            "--enclave-signer-key",
            signer,
            "--peer-trust-anchors",
            "vendor/root.pem",
        ]
    };
    let (node_a, a) = cli.node("a", "127.0.0.1:0", &node_args("m1", "signer.pem"))?;
    let a_listen = a.trim_start_matches("http://").to_string();
    let mut b_args = node_args("m2", "signer.pem");
    b_args.extend(["--peer", &a]);
    let (_node_b, b) = cli.node("b", "127.0.0.1:0", &b_args)?;
    // Only registered peers reach A's enclave: B presents its peer token.
    cli.run(&[
        "peer",
        "add",
        "--node",
        &a,
        "--admin-token",
        "a/admin.token",
        "--name",
        "node-b",
        "--token-file",
        "b/peer.token",
    ])?;
    cli.run(&[
        "tenant",
        "create",
        "--node",
        &a,
        "--admin-token",
        "a/admin.token",
        "--out",
        "tenant.key",
    ])?;
    cli.run(&[
        "tenant",
        "register",
        "--node",
        &b,
        "--admin-token",
        "b/admin.token",
        "--tenant",
        "tenant.key",
    ])?;
    let appraisal = [
        "--policy",
        "policy.toml",
        "--trust-anchor",
        "vendor/root.pem",
    ];

    t.step(
        "Deploy a key online: A's wrapping key is attested, checked, then the key is sealed to it",
    );
    let mut deploy = vec!["keys", "deploy", "--node", &a, "--tenant", "tenant.key"];
    deploy.extend(appraisal);
    deploy.extend(["--generate", "--id", "orders"]);
    cli.run(&deploy)?;

    t.step(
        "Deploy a key offline: wrapping key to a file, wrapped with no network, imported by hand",
    );
    cli.run(&[
        "keys",
        "wrapping-key",
        "--node",
        &a,
        "--out",
        "a-wrapping-key.json",
    ])?;
    std::fs::write(
        cli.cwd.join("archive.key"),
        format!("{}\n", hex::encode(veritee_crypto::rand::array::<32>()?)),
    )?;
    let mut wrap = vec![
        "keys",
        "wrap",
        "--wrapping-key",
        "a-wrapping-key.json",
        "--tenant",
        "tenant.key",
    ];
    wrap.extend(appraisal);
    wrap.extend(["--key-file", "archive.key", "--out", "archive.wrapped"]);
    cli.run(&wrap)?;
    cli.run(&[
        "keys",
        "import",
        "--node",
        &a,
        "--tenant",
        "tenant.key",
        "--file",
        "archive.wrapped",
    ])?;

    t.step("Restart node A: its enclave unseals both keys from the host's store, no client needed");
    drop(node_a);
    let (_node_a, a2) = cli.node("a", &a_listen, &node_args("m1", "signer.pem"))?;
    ensure!(a2 == a, "node A came back at {a2}, not {a}");
    let mut list = vec!["keys", "list", "--node", &a, "--tenant", "tenant.key"];
    list.extend(appraisal);
    let listed = cli.run(&list)?;
    ensure!(
        listed.lines().any(|l| l == "orders") && listed.lines().any(|l| l == "archive"),
        "node A lost its keys across the restart"
    );

    t.step("Replicate: B's enclave asks A's over a mutually attested channel; same signer, so A releases");
    let mut replicate = vec![
        "keys",
        "replicate",
        "--node",
        &b,
        "--tenant",
        "tenant.key",
        "--id",
        "orders",
    ];
    replicate.extend(appraisal);
    cli.run(&replicate)?;

    t.step("Exchange a file under `orders`: streamed in authenticated chunks to A and back, then to B with its replica");
    let report: String = (1..=2000)
        .map(|i| format!("order {i:05}: {} units\n", i * 7 % 113))
        .collect();
    std::fs::write(cli.cwd.join("orders.csv"), &report)?;
    cli.run(&[
        "data",
        "put",
        "--node",
        &a,
        "--tenant",
        "tenant.key",
        "--key",
        "orders",
        "orders.csv",
    ])?;
    cli.run(&[
        "data",
        "get",
        "--node",
        &a,
        "--tenant",
        "tenant.key",
        "--key",
        "orders",
        "orders.csv",
        "--out",
        "orders-back.csv",
    ])?;
    cli.run(&[
        "data",
        "put",
        "--node",
        &b,
        "--tenant",
        "tenant.key",
        "--key",
        "orders",
        "orders.csv",
    ])?;
    ensure!(
        std::fs::read_to_string(cli.cwd.join("orders-back.csv"))? == report,
        "the file did not come back intact"
    );
    let stored = super::files_under(&cli.cwd.join("a"));
    ensure!(
        !super::contains(&stored, b"order 00042"),
        "plaintext reached node A's store"
    );
    println!("    identical after the round trip; node A's store holds ciphertext only");

    super::fork::fork_tour(&cli, t, &a, &b)?;
    super::workload::workload_tour(&cli, t, &a, &b)?;
    task_tour(&cli, t, &a)
}

fn task_tour(cli: &Cli, t: &mut Tour, a: &str) -> Result<()> {
    t.step(
        "Trusted task: node C runs an enclave signed by another key; the client pins signer.pem",
    );
    let (_node_c, c) = cli.node(
        "c",
        "127.0.0.1:0",
        &[
            "--platform",
            "m2",
            "--enclave-signer-key",
            "other-signer.pem",
        ],
    )?;
    cli.run(&[
        "tenant",
        "register",
        "--node",
        &c,
        "--admin-token",
        "c/admin.token",
        "--tenant",
        "tenant.key",
    ])?;
    let signer = signer_of(cli, a)?;
    std::fs::write(
        cli.cwd.join("pinned.toml"),
        veritee_policy::starter_policy(true, &[]).replace(
            "# signers = [\"...\"]",
            &format!("signers = [\"{signer}\"]"),
        ),
    )?;
    println!(
        "    pinned.toml: the starter policy plus signers = [\"{}\"]",
        short(&hex::decode(&signer)?)
    );
    let task = cli.cwd.join("two-owner-statistic");
    for (name, text) in EXAMPLE {
        let path = task.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text)?;
    }
    println!(
        "    two-owner-statistic/: two owners' salary files, each its own compartment; only the aggregate is released"
    );

    t.step("Run it on C or A, whichever passes the policy first: C is dropped before anything secret is sent");
    cli.run(&[
        "task",
        "run",
        "--nodes",
        &format!("{c},{a}"),
        "--tenant",
        "tenant.key",
        "--policy",
        "pinned.toml",
        "--trust-anchor",
        "vendor/root.pem",
        "--task",
        "two-owner-statistic/task.toml",
        "--out",
        "task-results",
        "--explain",
    ])?;
    let released = std::fs::read_to_string(cli.cwd.join("task-results/aggregate.out"))
        .context("the aggregate result is missing")?;
    ensure!(
        released == EXAMPLE_EXPECTED,
        "the task released {released:?}"
    );
    for line in released.lines() {
        println!("    aggregate.out: {line}");
    }
    Ok(())
}

/// The signer a node's enclave attests to (what a client pins in its policy).
pub(super) fn signer_of(cli: &Cli, node: &str) -> Result<String> {
    let verifiers = veritee_verify::Verifiers::default();
    let policy =
        veritee_policy::AppraisalPolicy::parse(&veritee_policy::starter_policy(true, &[]))?;
    let anchors =
        veritee_attest::TrustAnchors::untyped(veritee_attest::ParsedCertificate::from_pem_chain(
            &std::fs::read(cli.cwd.join("vendor/root.pem"))?,
        )?);
    let appraiser = veritee_channel::client::Appraiser {
        verifiers: &verifiers,
        policy: &policy,
        trust_anchors: &anchors,
        collateral: &[],
        at: time::OffsetDateTime::now_utc(),
    };
    let attested = veritee_client::NodeClient::new(node)?
        .fetch_wrapping_key()?
        .verify(&appraiser)?;
    attested
        .claims
        .signer
        .map(|s| s.to_string())
        .context("node A's enclave attests no signer")
}
