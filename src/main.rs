//! `veritee`: attest, verify and appraise trusted execution environments.
//!
//! Exit status: 0 success (for `verify`: verified and, with `--policy`, accepted),
//! 1 evidence rejected, 2 unusable input or failure.
#![forbid(unsafe_code)]

#[macro_use]
mod output;
mod commands;
mod files;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Confidential computing you can check: attest, verify and appraise TEEs.
#[derive(Debug, Parser)]
#[command(name = "veritee", version, about, long_about = None)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Trust a node's HTTPS certificate by its SHA-256 fingerprint (as `veritee node`
    /// prints it; repeatable, for several nodes). Pinned, no other certificate is
    /// trusted.
    #[arg(
        long,
        global = true,
        value_name = "SHA256",
        env = "VERITEE_NODE_FINGERPRINT"
    )]
    node_fingerprint: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the simulated TEE vendor (root CA, revocation, TCB information).
    #[command(subcommand)]
    Vendor(commands::vendor::VendorCommand),
    /// Manage simulated machines certified by a vendor.
    #[command(subcommand)]
    Platform(commands::platform::PlatformCommand),
    /// Produce evidence for an enclave over the given report data.
    Attest(commands::attest::AttestArgs),
    /// Verify evidence and, with --policy, appraise it.
    Verify(commands::verify::VerifyArgs),
    /// Write or check an appraisal policy.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Run a provider node: HTTP API, storage, and its enclave process.
    Node(commands::node::NodeArgs),
    /// The enclave process of a node (started by `veritee node`).
    #[command(hide = true)]
    Enclave(commands::node::EnclaveArgs),
    /// Tenants of a node.
    #[command(subcommand)]
    Tenant(commands::tenant::TenantCommand),
    /// Peer nodes whose enclaves may reach a node's enclave.
    #[command(subcommand)]
    Peer(commands::peer::PeerCommand),
    /// Secrets kept by a node's enclave, over an attested session.
    #[command(subcommand)]
    Secret(commands::secret::SecretCommand),
    /// Deploy user data keys into a node's enclave (online or offline) and replicate them.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Exchange files with a node's enclave under a deployed key.
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// Offload a task to an attested provider and get its results back.
    #[command(subcommand)]
    Task(commands::task::TaskCommand),
    /// A node's signed audit log.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// A node's Confidential Containers key broker (the KBS protocol under /kbs/v0/).
    #[command(subcommand)]
    Kbs(commands::kbs::KbsCommand),
    /// Import a key into a node's enclave, encrypted to its attested TEE key and its
    /// provider's key (secret import, flow 3).
    #[command(subcommand)]
    Import(commands::import::ImportCommand),
    /// A tenant's partitions, where imported keys live.
    #[command(subcommand)]
    Partition(commands::import::PartitionCommand),
    /// Use imported keys by id: encrypt, decrypt, sign, verify, HMAC, hash, translate.
    #[command(subcommand)]
    Crypto(commands::crypto::CryptoCommand),
    /// Officers and quorums over your key service: register, request, approve, list.
    #[command(subcommand)]
    Officer(commands::officer::OfficerCommand),
    /// A revocation endpoint for your imported keys, which their enclaves ask.
    #[command(subcommand)]
    Revocation(commands::revocation::RevocationCommand),
    /// Long-running applications in a node's enclave, and secure fork to a peer's
    /// enclave: run, call, list, stop, fork (flow 5).
    #[command(subcommand)]
    App(commands::app::AppCommand),
    /// TEE-bound workloads: build, inspect, launch, read what they wrote (flow 2).
    #[command(subcommand)]
    Workload(commands::workload::WorkloadCommand),
    /// Your security module: put seeds, enroll targets, authorize, forget, list.
    #[command(subcommand)]
    Sm(commands::workload::SmCommand),
    /// Orchestrate a workload: enroll each target at the security module, authorize
    /// it, put its slot in the workload, and launch it there.
    Deploy(commands::workload::DeployArgs),
    /// A guided tour on the simulated TEE, in a temporary directory.
    Demo(commands::demo::DemoArgs),
}

/// How a command ended, as an exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; for verify: verified and accepted.
    Success,
    /// Evidence verified false or the policy rejected it.
    Rejected,
    /// The input could not be used.
    Unusable,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(match o {
            Outcome::Success => 0,
            Outcome::Rejected => 1,
            Outcome::Unusable => 2,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log that cannot be written (a full disk under it) is lost, and the request
        // goes on: reporting the failure would print to that same stderr, which panics.
        .log_internal_errors(false);
    if matches!(&cli.command, Command::Node(args) if args.log_json) {
        logs.json().init();
    } else {
        logs.init();
    }

    for pin in &cli.node_fingerprint {
        match veritee_client::transport::parse_fingerprint(pin) {
            Ok(fingerprint) => veritee_client::transport::pin_certificate(fingerprint),
            Err(err) => {
                eprintln!("error: --node-fingerprint: {err}");
                return Outcome::Unusable.into();
            }
        }
    }
    let result = match cli.command {
        Command::Vendor(cmd) => commands::vendor::run(cmd),
        Command::Platform(cmd) => commands::platform::run(cmd),
        Command::Attest(args) => commands::attest::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Policy(cmd) => commands::policy::run(cmd),
        Command::Node(args) => commands::node::run(args),
        Command::Enclave(args) => commands::node::run_enclave(args),
        Command::Tenant(cmd) => commands::tenant::run(cmd),
        Command::Peer(cmd) => commands::peer::run(cmd),
        Command::Secret(cmd) => commands::secret::run(cmd),
        Command::Audit(cmd) => commands::audit::run(cmd),
        Command::Kbs(cmd) => commands::kbs::run(cmd),
        Command::Import(cmd) => commands::import::run(cmd),
        Command::Partition(cmd) => commands::import::run_partition(cmd),
        Command::Crypto(cmd) => commands::crypto::run(cmd),
        Command::Revocation(cmd) => commands::revocation::run(cmd),
        Command::Officer(cmd) => commands::officer::run(cmd),
        Command::Keys(cmd) => commands::keys::run(cmd),
        Command::Data(cmd) => commands::data::run(cmd),
        Command::Task(cmd) => commands::task::run(cmd),
        Command::App(cmd) => commands::app::run(cmd),
        Command::Workload(cmd) => commands::workload::run(cmd),
        Command::Sm(cmd) => commands::workload::run_sm(cmd),
        Command::Deploy(args) => commands::workload::deploy(args),
        Command::Demo(args) => commands::demo::run(args),
    };
    match result {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            Outcome::Unusable.into()
        }
    }
}
