//! `veritee task run`: offload a task (WebAssembly compartments and their data) to the
//! first acceptable provider, and bring back its results, decrypted.

use super::appraise::AppraisalArgs;
use super::keys::{DEFAULT_KEYRING, read_key_file, write_key_file};
use super::tenant::load_tenant;
use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use veritee_client::task::{Selection, TaskEvent, TaskReport, TaskRequest, run_task};
use veritee_platform::fsutil;
use veritee_task::keys::TaskKey;
use veritee_wasm::TaskManifest;

/// Task subcommands.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Run a task end to end and write its released results to a directory.
    Run(RunArgs),
    /// The tasks a node holds for you, oldest first.
    List {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
    },
    /// Withdraw a task: the enclave forgets it and its keys, and its results are never
    /// released (a running one stops at its guest's next fuel check).
    Cancel {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        /// The task id (32 hex digits, as `veritee task list` shows it).
        id: String,
    },
}

/// `veritee task run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Candidate providers, comma-separated, in order of preference.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// The tenant key file (registered with every candidate).
    #[arg(long)]
    pub tenant: PathBuf,
    #[command(flatten)]
    pub appraisal: AppraisalArgs,
    /// The task manifest (task.toml: see examples/tasks/README.md). A compartment's
    /// optional `keys = ["PARTITION/KEY_ID", "OWNER_TENANT_ID/PARTITION/KEY_ID"]`
    /// names stored keys on the node it uses by index via `key_op`; each key's
    /// metadata must name your tenant (`import send --task-signer`).
    #[arg(long)]
    pub task: PathBuf,
    /// Where to write the results (created; existing result files are not overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Your long-term task key (created 0600 on first use). It never leaves this machine.
    #[arg(long, default_value_t = format!("{DEFAULT_KEYRING}/task.key"))]
    pub task_key: String,
    /// How to pick among acceptable providers: first or least-loaded.
    #[arg(long, default_value = "first")]
    pub select: Selection,
    /// How old, in seconds, a result may be when it arrives.
    #[arg(long, default_value_t = 600)]
    pub window: u32,
    /// Print each step of the protocol.
    #[arg(long)]
    pub explain: bool,
}

/// Loads the task key, creating it on first use.
fn task_key(path: &Path) -> Result<TaskKey> {
    if path.exists() {
        return Ok(TaskKey::new(read_key_file(path)?));
    }
    let key = TaskKey::generate()?;
    write_key_file(path, key.expose())?;
    eprintln!(
        "created your task key at {} (0600); keep it: it decrypts your results",
        path.display()
    );
    Ok(key)
}

/// One line of `--explain` for an event.
fn explain(event: &TaskEvent) -> String {
    match event {
        TaskEvent::Initiated { node } => format!(
            "TTIS -> {node}: task initiation with the appraisal policy, security and \
             compartmentalization contexts, and a fresh nonce"
        ),
        TaskEvent::Accepted {
            node,
            summary,
            load,
        } => format!(
            "attestation signal <- {node}: evidence verified ({summary}), binds the SKEK, \
             the nonce and the initiation; policy accepted; load {load}"
        ),
        TaskEvent::Dropped { node, reason } => {
            format!("dropped {node}: {reason} (nothing secret was sent to it)")
        }
        TaskEvent::Chosen { node } => format!("chose {node}"),
        TaskEvent::KeysDelivered => "key exchange: the per-compartment DEKs, wrapped under the \
             key of your CKEK (an X25519 key from your task key and the task id, named in the \
             signed initiation) and the attested SKEK, then sealed to the SKEK with HPKE"
            .into(),
        TaskEvent::Encrypted { what, bytes } => {
            format!("encrypted {what} ({bytes} bytes) under its compartment's DEK")
        }
        TaskEvent::Uploaded { what, bytes } => {
            format!("uploaded {what} ({bytes} bytes of ciphertext) through the host")
        }
        TaskEvent::Running => "execution: the enclave runs one WebAssembly instance per \
             compartment under the security context"
            .into(),
        TaskEvent::Verified => "results: authenticated with the CKEK-SKEK key (recomputed from \
             your task key alone), task id and timestamp window checked, statuses and outputs \
             decrypted with their DEKs"
            .into(),
    }
}

/// One short progress message for an event.
fn progress(event: &TaskEvent) -> Option<String> {
    Some(match event {
        TaskEvent::Initiated { node } => format!("attesting {node}"),
        TaskEvent::Encrypted { what, .. } => format!("encrypting {what}"),
        TaskEvent::Uploaded { what, bytes } => format!("uploaded {what} ({bytes} bytes)"),
        TaskEvent::Running => "running in the enclave".into(),
        _ => return None,
    })
}

fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Writes the released outputs and a summary; refuses to overwrite.
fn write_results(out: &Path, report: &TaskReport) -> Result<Vec<PathBuf>> {
    fsutil::create_private_dir(out)?;
    let mut written = Vec::new();
    for released in &report.outputs {
        let path = out.join(format!("{}.out", released.name));
        fsutil::write_new(&path, released.output.expose(), fsutil::PRIVATE_MODE)
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        if !released.log.is_empty() {
            let path = out.join(format!("{}.log", released.name));
            fsutil::write_new(&path, released.log.expose(), fsutil::PRIVATE_MODE)
                .with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    let summary = serde_json::json!({
        "task_id": report.task_id,
        "provider": report.provider,
        "timestamp": report.body.timestamp.format(&time::format_description::well_known::Rfc3339)?,
        "compartments": report.results.iter().map(|r| serde_json::json!({
            "name": r.name,
            "exit_code": r.status.exit_code,
            "fuel_used": r.status.fuel_used,
            "released": r.released,
        })).collect::<Vec<_>>(),
    });
    let path = out.join("result.json");
    fsutil::write_new(
        &path,
        format!("{}\n", serde_json::to_string_pretty(&summary)?).as_bytes(),
        fsutil::PRIVATE_MODE,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    Ok(written)
}

/// Runs `veritee task run`.
pub fn run_command(args: RunArgs) -> Result<Outcome> {
    let manifest = TaskManifest::load(&args.task)?;
    let tenant = load_tenant(&args.tenant)?;
    let loaded = args.appraisal.load()?;
    let policy_text = crate::files::read_text(&args.appraisal.policy, "policy")?;
    for name in manifest.manifest.compartments.iter().map(|c| &c.name) {
        let path = args.out.join(format!("{name}.out"));
        if path.exists() {
            bail!("{} exists; choose another --out", path.display());
        }
    }
    let key = task_key(Path::new(&args.task_key))?;
    let request = TaskRequest {
        nodes: &args.nodes,
        tenant: &tenant,
        task_key: &key,
        appraiser: loaded.appraiser(),
        policy_text: &policy_text,
        selection: args.select,
        result_window: time::Duration::seconds(i64::from(args.window)),
    };
    let bar = spinner();
    let mut dropped = 0usize;
    let mut on_event = |event: TaskEvent| {
        if let TaskEvent::Dropped { node, reason } = &event {
            dropped += 1;
            if !args.explain {
                bar.suspend(|| eprintln!("dropped {node}: {reason}"));
            }
        }
        if args.explain {
            bar.suspend(|| println!("  {}", explain(&event)));
        }
        if let Some(message) = progress(&event) {
            bar.set_message(message);
        }
    };
    let result = run_task(&manifest, &request, &mut on_event);
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Rejected);
        }
    };
    let written = write_results(&args.out, &report)?;
    println!(
        "task {} ran on {} ({} provider(s) dropped)",
        report.task_id, report.provider, dropped
    );
    for r in &report.results {
        let state = if r.released {
            "released"
        } else {
            "withheld by the security context"
        };
        println!(
            "  {:<16} exit {:<3} fuel {:<12} {state}",
            r.name, r.status.exit_code, r.status.fuel_used
        );
    }
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(Outcome::Success)
}

/// Runs a task subcommand.
pub fn run(cmd: TaskCommand) -> Result<Outcome> {
    match cmd {
        TaskCommand::Run(args) => run_command(args),
        TaskCommand::List { node, tenant } => {
            let tasks =
                veritee_client::NodeClient::new(&node)?.list_tasks(&load_tenant(&tenant)?)?;
            if tasks.is_empty() {
                eprintln!("no tasks at {node}");
            }
            for task in tasks {
                println!("{}  initiated {} s ago", task.task_id, task.age_secs);
            }
            Ok(Outcome::Success)
        }
        TaskCommand::Cancel { node, tenant, id } => {
            let cancelled =
                veritee_client::NodeClient::new(&node)?.cancel_task(&load_tenant(&tenant)?, &id)?;
            if cancelled.was_running {
                println!("cancelled task {id}: it was running, and its run fails saying so");
            } else {
                println!("cancelled task {id}: it had not run, and its uploads are gone");
            }
            Ok(Outcome::Success)
        }
    }
}
