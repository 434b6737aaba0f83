//! `veritee workload ...`, `veritee sm ...` and `veritee deploy`: TEE-bound workloads
//! (flow 2). The owner builds an encrypted workload and puts its seed in its security
//! module; the orchestrator (`deploy`, or `sm enroll` and `sm authorize` by hand)
//! enrolls targets, puts their authorizations in the workload's slot area and launches
//! it; only the owner reads what it wrote.

use super::appraise::AppraisalArgs;
use super::tenant::load_tenant;
use crate::Outcome;
use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use veritee_client::NodeClient;
use veritee_client::workload::{enroll_target, launch_verified_first, open_launch_output};
use veritee_platform::fsutil::{PRIVATE_MODE, write_new};
use veritee_proto::workload::LaunchResponse;
use veritee_workload::{ComponentKind, ComponentSpec, WorkloadFile, WorkloadId, WorkloadSeed};

/// Workload subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Encrypt modules, configuration and secrets into a workload, under a fresh seed.
    ///
    /// Example: veritee workload build --module examples/workloads/unlock.wat
    ///   --config volume.txt --secret CD1=passphrase.txt --out app.vtwl --seed-out app.seed
    Build {
        /// A WebAssembly module (binary or text); repeatable. Each runs its `run` export.
        #[arg(long, required = true)]
        module: Vec<PathBuf>,
        /// A configuration file (input 0, 1... of every module, before the secrets);
        /// repeatable.
        #[arg(long)]
        config: Vec<PathBuf>,
        /// A secret, `NAME=FILE` (e.g. CD1=passphrase.txt); repeatable.
        #[arg(long, value_name = "NAME=FILE")]
        secret: Vec<String>,
        /// The workload file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Where to write the seed (0600, must not exist): keep it, it opens the
        /// workload and what it writes; `veritee sm put-seed` sends it to your SM.
        #[arg(long)]
        seed_out: PathBuf,
    },
    /// Show a workload's public parts and its slots.
    Inspect {
        /// The workload file.
        file: PathBuf,
    },
    /// Open what a launched workload wrote (the launch's JSON, from `deploy`), with
    /// the seed.
    Output {
        /// The seed file.
        #[arg(long)]
        seed: PathBuf,
        /// The workload file.
        #[arg(long)]
        workload: PathBuf,
        /// The launch answer (JSON).
        #[arg(long)]
        launch: PathBuf,
    },
    /// Launch a workload on one target (its slot must be in the file).
    Launch {
        /// The target node's URL.
        #[arg(long)]
        node: String,
        /// The workload file.
        #[arg(long)]
        workload: PathBuf,
        /// Where to write the launch's answer (JSON; its output is sealed to the seed).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a sealing policy for TPM targets: a TPM's current PCR values (read on a
    /// reference machine in the state its targets boot into) and the signer of the
    /// enclave code that holds the inner key.
    ///
    /// Example: veritee workload tpm-policy --tpm device:/dev/tpmrm0 --pcrs 0,2,4,7
    ///   --signer 6f1c... --out targets.toml
    TpmPolicy {
        /// The TPM, as a TCTI (`device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`).
        #[arg(long, value_name = "TCTI")]
        tpm: String,
        /// The SHA-256 PCRs to name (the targets' --tpm-pcrs).
        #[arg(
            long,
            value_name = "LIST",
            default_value = "0,1,2,3,4,5,6,7",
            value_delimiter = ','
        )]
        pcrs: Vec<u32>,
        /// The signer (hex) of the target enclaves' code; repeatable, at least one.
        #[arg(long, value_name = "HEX", required = true)]
        signer: Vec<String>,
        /// Accept targets whose enclave is simulated (development only).
        #[arg(long)]
        allow_simulated: bool,
        /// The policy file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Deprovision this target (operator): rotate its storage key, so that no
    /// authorization issued before opens on it again.
    RotateStorageKey {
        /// The target node's URL.
        #[arg(long)]
        node: String,
        /// The node's admin token file.
        #[arg(long)]
        admin_token: PathBuf,
    },
}

/// Security module subcommands.
#[derive(Debug, Subcommand)]
pub enum SmCommand {
    /// Send a workload's seed to your security module, sealed to its attested key,
    /// with the sealing policy targets must meet.
    ///
    /// Example: veritee sm put-seed --node SM_URL --tenant alice.pem --policy sm.toml
    ///   --trust-anchor root.pem --workload app.vtwl --seed app.seed
    ///   --sealing-policy targets.toml
    PutSeed {
        /// The security module's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        /// The policy the security module's enclave must meet, and its anchors.
        #[command(flatten)]
        appraisal: AppraisalArgs,
        /// The workload file.
        #[arg(long)]
        workload: PathBuf,
        /// The seed file.
        #[arg(long)]
        seed: PathBuf,
        /// The policy every target must meet to be authorized (an appraisal policy).
        #[arg(long)]
        sealing_policy: PathBuf,
        /// How long each authorization is valid, in days.
        #[arg(long, default_value_t = 30)]
        validity_days: u64,
    },
    /// Enroll a target (orchestrator): a challenge from the SM, the target's sealed
    /// answer carried back. Prints the target's handle.
    Enroll {
        /// The security module's URL.
        #[arg(long)]
        sm: String,
        /// The target node's URL.
        #[arg(long)]
        target: String,
    },
    /// Get an authorization for an enrolled target and put it in the workload's slot
    /// area (the file is rewritten; its encrypted part is unchanged).
    Authorize {
        /// The security module's URL.
        #[arg(long)]
        sm: String,
        /// The workload file.
        #[arg(long)]
        workload: PathBuf,
        /// The target's handle (from `sm enroll`).
        #[arg(long)]
        target: String,
    },
    /// Forget an enrolled target and the authorizations issued to it.
    Forget {
        /// The security module's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        /// The target's handle.
        #[arg(long)]
        target: String,
    },
    /// What the security module holds: your workloads, the targets, the
    /// authorizations.
    List {
        /// The security module's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
    },
}

/// `veritee deploy`: the orchestrator's whole job.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The workload file (its slot area is updated in place).
    #[arg(long)]
    workload: PathBuf,
    /// The security module's URL.
    #[arg(long)]
    sm: String,
    /// A target node's URL; repeatable.
    #[arg(long, required = true)]
    node: Vec<String>,
    /// Only targets of this TEE kind (as the SM reports it at enrollment).
    #[arg(long, conflicts_with = "verify_first")]
    tee: Option<String>,
    /// Verify before secrets (as SEV launches): each target loads the workload first
    /// and reports its measurement in fresh evidence; the SM releases the seed to it
    /// only once evidence and measurement are right. No slot is used or added.
    #[arg(long)]
    verify_first: bool,
    /// Where to write each launch's answer (`launch-N.json`; outputs sealed to the
    /// seed), created if missing.
    #[arg(long)]
    out_dir: PathBuf,
}

fn read_workload(path: &Path) -> Result<Vec<u8>> {
    let bytes = crate::files::read(path, "workload")?;
    WorkloadFile::parse(&bytes).with_context(|| format!("workload {}", path.display()))?;
    Ok(bytes)
}

fn read_seed(path: &Path) -> Result<WorkloadSeed> {
    let bytes = veritee_crypto::SecretBytes::new(crate::files::read(path, "seed")?);
    WorkloadSeed::from_bytes(bytes.expose()).with_context(|| format!("seed {}", path.display()))
}

/// Replaces `path` by `bytes` (written beside it, then renamed over it).
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

fn component_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no usable file name", path.display()))
}

fn build(
    modules: &[PathBuf],
    configs: &[PathBuf],
    secrets: &[String],
    out: &Path,
    seed_out: &Path,
) -> Result<()> {
    let mut loaded: Vec<(ComponentKind, String, veritee_crypto::SecretBytes)> = Vec::new();
    let named = modules
        .iter()
        .map(|p| (ComponentKind::Module, p))
        .chain(configs.iter().map(|p| (ComponentKind::Configuration, p)));
    for (kind, path) in named {
        let bytes = crate::files::read(path, kind.name())?;
        loaded.push((
            kind,
            component_name(path)?,
            veritee_crypto::SecretBytes::new(bytes),
        ));
    }
    for spec in secrets {
        let Some((name, file)) = spec.split_once('=') else {
            bail!("--secret {spec:?} is not NAME=FILE");
        };
        let bytes = crate::files::read(Path::new(file), "secret")?;
        loaded.push((
            ComponentKind::Secret,
            name.to_string(),
            veritee_crypto::SecretBytes::new(bytes),
        ));
    }
    let specs: Vec<ComponentSpec<'_>> = loaded
        .iter()
        .map(|(kind, name, data)| ComponentSpec {
            kind: *kind,
            name,
            data: data.expose(),
        })
        .collect();
    let seed = WorkloadSeed::generate()?;
    let id = WorkloadId::generate()?;
    let file = veritee_workload::build(&seed, id, &specs)?;
    write_new(seed_out, seed.expose(), PRIVATE_MODE)
        .with_context(|| format!("seed {}", seed_out.display()))?;
    write_new(out, &file, 0o644).with_context(|| format!("workload {}", out.display()))?;
    let parsed = WorkloadFile::parse(&file)?;
    println!("workload {id}");
    println!("digest   {}", hex::encode(parsed.digest()));
    println!(
        "{} components ({} modules), {} bytes encrypted",
        specs.len(),
        modules.len(),
        parsed.payload_len()
    );
    eprintln!(
        "wrote {} and its seed {} (keep the seed: it opens the workload)",
        out.display(),
        seed_out.display()
    );
    Ok(())
}

fn inspect(path: &Path) -> Result<()> {
    let bytes = crate::files::read(path, "workload")?;
    let file =
        WorkloadFile::parse(&bytes).with_context(|| format!("workload {}", path.display()))?;
    println!("workload  {}", file.id());
    println!("format    version {}", veritee_workload::VERSION);
    println!("digest    {}", hex::encode(file.digest()));
    println!("payload   {} bytes, encrypted", file.payload_len());
    println!("slots     {}", file.slots().len());
    for slot in file.slots() {
        println!(
            "  storage key {}  authorization {}  valid {} .. {}",
            slot.storage_key,
            hex::encode(slot.id),
            unix_text(slot.not_before),
            unix_text(slot.not_after),
        );
    }
    Ok(())
}

fn unix_text(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map(crate::files::rfc3339)
        .unwrap_or_else(|| format!("{seconds} (Unix seconds)"))
}

fn print_output(
    seed: &WorkloadSeed,
    workload: &WorkloadFile<'_>,
    launch: &LaunchResponse,
) -> Result<()> {
    let output = open_launch_output(seed, workload, launch)?;
    for module in output.modules {
        match (module.exit_code, module.error) {
            (Some(code), _) => println!("{}: exit {code} ({} fuel)", module.name, module.fuel_used),
            (None, Some(error)) => println!("{}: stopped: {error}", module.name),
            (None, None) => println!("{}: no result", module.name),
        }
        let text = B64.decode(&module.output).unwrap_or_default();
        if !text.is_empty() {
            println!("  output: {}", String::from_utf8_lossy(&text));
        }
        if !module.log.is_empty() {
            println!("  log: {}", module.log.trim_end());
        }
    }
    Ok(())
}

/// A sealing policy for TPM targets whose PCRs hold `values`, running enclaves signed
/// by one of `signers`. A TPM reports no TCB grading, so the policy accepts
/// "NotReported" for it.
fn tpm_policy(values: &[(u32, Vec<u8>)], signers: &[String], allow_simulated: bool) -> String {
    let quoted: Vec<String> = signers.iter().map(|s| format!("\"{s}\"")).collect();
    let mut policy = format!(
        "# TPM 2.0 targets (flow 2): EK certified by a manufacturer the SM trusts\n\
         # (--tpm-ca), TPM storage key bound to these PCR values, and the enclave that\n\
         # holds the inner key signed by one of these signers.\n\
         version = 1\ntee = [\"tpm2\"]\ntcb_status = [\"NotReported\"]\n\
         allow_simulated = {allow_simulated}\nsigners = [{}]\n\n[measurements]\n",
        quoted.join(", ")
    );
    for (pcr, value) in values {
        policy.push_str(&format!("pcr{pcr} = [\"{}\"]\n", hex::encode(value)));
    }
    policy
}

/// Runs a workload subcommand.
pub fn run(cmd: WorkloadCommand) -> Result<Outcome> {
    match cmd {
        WorkloadCommand::Build {
            module,
            config,
            secret,
            out,
            seed_out,
        } => build(&module, &config, &secret, &out, &seed_out)?,
        WorkloadCommand::Inspect { file } => inspect(&file)?,
        WorkloadCommand::Output {
            seed,
            workload,
            launch,
        } => {
            let bytes = read_workload(&workload)?;
            let file = WorkloadFile::parse(&bytes)?;
            let launch: LaunchResponse =
                serde_json::from_str(&crate::files::read_text(&launch, "launch answer")?)
                    .context("the launch answer is not a launch's JSON")?;
            print_output(&read_seed(&seed)?, &file, &launch)?;
        }
        WorkloadCommand::Launch {
            node,
            workload,
            out,
        } => {
            let bytes = read_workload(&workload)?;
            let launch = NodeClient::new(&node)?.launch_workload(&bytes)?;
            write_new(&out, &serde_json::to_vec_pretty(&launch)?, 0o644)?;
            println!(
                "launched {} on {node}; its answer (sealed to the seed) is in {}",
                launch.workload_id,
                out.display()
            );
        }
        WorkloadCommand::TpmPolicy {
            tpm,
            pcrs,
            signer,
            allow_simulated,
            out,
        } => {
            let values = veritee_tpm::device::TargetTpm::open(&tpm)?.read_pcrs(&pcrs)?;
            let policy = tpm_policy(&values, &signer, allow_simulated);
            veritee_policy::AppraisalPolicy::parse(&policy)
                .context("the policy written would not parse (a signer is hex)")?;
            write_new(&out, policy.as_bytes(), 0o644)?;
            let names: Vec<u32> = values.iter().map(|(pcr, _)| *pcr).collect();
            println!(
                "{}: TPM targets whose SHA-256 PCRs {names:?} hold the values {tpm} holds now, running enclaves signed by {}",
                out.display(),
                signer.join(", ")
            );
        }
        WorkloadCommand::RotateStorageKey { node, admin_token } => {
            let token = crate::files::read_text(&admin_token, "admin token")?;
            let rotated = NodeClient::new(&node)?.rotate_storage_key(&token)?;
            println!(
                "storage key {} (was {})",
                rotated.storage_key_id,
                rotated.previous.as_deref().unwrap_or("none")
            );
        }
    }
    Ok(Outcome::Success)
}

/// Runs a security module subcommand.
pub fn run_sm(cmd: SmCommand) -> Result<Outcome> {
    match cmd {
        SmCommand::PutSeed {
            node,
            tenant,
            appraisal,
            workload,
            seed,
            sealing_policy,
            validity_days,
        } => {
            let tenant = load_tenant(&tenant)?;
            let loaded = appraisal.load()?;
            let client = NodeClient::new(&node)?;
            let sm = client.fetch_wrapping_key()?.verify(&loaded.appraiser()).context(
                "the security module's key was refused: the seed is not sent to an enclave that fails your policy",
            )?;
            let policy = crate::files::read_text(&sealing_policy, "sealing policy")?;
            veritee_policy::AppraisalPolicy::parse(&policy)
                .with_context(|| format!("sealing policy {}", sealing_policy.display()))?;
            let bytes = read_workload(&workload)?;
            let file = WorkloadFile::parse(&bytes)?;
            let put = client.sm_put_seed(
                &tenant,
                &sm,
                &file,
                &read_seed(&seed)?,
                &policy,
                validity_days.saturating_mul(24 * 3600),
            )?;
            println!(
                "seed of workload {} {}",
                put.workload_id,
                if put.created {
                    "stored in the security module"
                } else {
                    "was already there (nothing changed)"
                }
            );
        }
        SmCommand::Enroll { sm, target } => {
            let enrolled = enroll_target(&NodeClient::new(&sm)?, &NodeClient::new(&target)?)?;
            println!(
                "target {} ({}){}",
                enrolled.target,
                enrolled.tee,
                if enrolled.new {
                    ""
                } else {
                    ", enrolled before"
                }
            );
        }
        SmCommand::Authorize {
            sm,
            workload,
            target,
        } => {
            let bytes = read_workload(&workload)?;
            let file = WorkloadFile::parse(&bytes)?;
            let (slot, issued) = NodeClient::new(&sm)?.sm_authorize(&file.id(), &target)?;
            let storage_key = slot.storage_key;
            replace(&workload, &file.with_slot(slot)?)?;
            println!(
                "{} authorization for storage key {storage_key} put in {}",
                if issued { "new" } else { "existing" },
                workload.display()
            );
        }
        SmCommand::Forget {
            node,
            tenant,
            target,
        } => {
            let answer = NodeClient::new(&node)?.sm_forget(&load_tenant(&tenant)?, &target)?;
            println!(
                "forgot target {target} and {} authorizations",
                answer["authorizations_removed"]
            );
        }
        SmCommand::List { node, tenant } => {
            let state = NodeClient::new(&node)?.sm_state(&load_tenant(&tenant)?)?;
            println!("workloads ({})", state.workloads.len());
            for w in &state.workloads {
                println!(
                    "  {}  digest {}  valid {} days",
                    w.workload_id,
                    w.workload_digest,
                    w.validity_seconds / (24 * 3600)
                );
            }
            println!("targets ({})", state.targets.len());
            for t in &state.targets {
                println!(
                    "  {}  {}  storage key {}  enrolled {}",
                    t.target,
                    t.tee,
                    t.storage_key_id,
                    unix_text(u64::try_from(t.enrolled_at).unwrap_or(0))
                );
            }
            println!("authorizations ({})", state.authorizations.len());
            for a in &state.authorizations {
                println!(
                    "  {} -> {}  until {}",
                    a.workload_id,
                    a.target,
                    unix_text(a.not_after)
                );
            }
        }
    }
    Ok(Outcome::Success)
}

fn write_launch(dir: &Path, n: usize, launch: &LaunchResponse) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("launch-{n}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(launch)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Runs `veritee deploy`: enroll each target, authorize it, insert its slot, launch;
/// or, with `--verify-first`, have the SM release the seed to each measured target.
pub fn deploy(args: DeployArgs) -> Result<Outcome> {
    let sm = NodeClient::new(&args.sm)?;
    if args.verify_first {
        let bytes = read_workload(&args.workload)?;
        for (i, url) in args.node.iter().enumerate() {
            let launch = launch_verified_first(&sm, &NodeClient::new(url)?, &bytes)
                .with_context(|| format!("launching on {url}"))?;
            let path = write_launch(&args.out_dir, i + 1, &launch)?;
            println!(
                "launch {url}: measured, seed released by the SM, ran; its answer (sealed to the seed) is in {}",
                path.display()
            );
        }
        return Ok(Outcome::Success);
    }
    let mut bytes = read_workload(&args.workload)?;
    let id = WorkloadFile::parse(&bytes)?.id();
    let mut targets = Vec::new();
    for url in &args.node {
        let node = NodeClient::new(url)?;
        let enrolled = enroll_target(&sm, &node).with_context(|| format!("enrolling {url}"))?;
        if let Some(tee) = &args.tee
            && &enrolled.tee != tee
        {
            println!("skip   {url}: its TEE is {}, not {tee}", enrolled.tee);
            continue;
        }
        let (slot, issued) = sm
            .sm_authorize(&id, &enrolled.target)
            .with_context(|| format!("authorizing {url}"))?;
        println!(
            "target {url}: {}, handle {}, {} authorization",
            enrolled.tee,
            enrolled.target,
            if issued { "new" } else { "existing" }
        );
        bytes = WorkloadFile::parse(&bytes)?.with_slot(slot)?;
        targets.push((url.clone(), node));
    }
    if targets.is_empty() {
        bail!("no target was authorized: nothing to launch");
    }
    replace(&args.workload, &bytes)?;
    for (i, (url, node)) in targets.iter().enumerate() {
        let launch = node
            .launch_workload(&bytes)
            .with_context(|| format!("launching on {url}"))?;
        let path = write_launch(&args.out_dir, i + 1, &launch)?;
        println!(
            "launch {url}: ran; its answer (sealed to the seed) is in {}",
            path.display()
        );
    }
    Ok(Outcome::Success)
}
