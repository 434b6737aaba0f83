//! `veritee audit ...`: a node's signed, hash-chained audit log, and its checkpoints.
//!
//! `checkpoint` saves the node's signed checkpoint (C2SP signed note: log size and
//! head), after checking its key against the node's attested evidence; `export`
//! fetches the log with its attested keys and a checkpoint; `verify` checks a log,
//! online or from an export, names the first broken entry, and with `--checkpoint FILE`
//! proves the log still contains every checkpoint kept earlier: a truncated or rewritten
//! log fails.

use super::appraise::AppraisalArgs;
use crate::Outcome;
use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use veritee_audit::checkpoint::{Checkpoint, check_against_checkpoint, open_checkpoint};
use veritee_platform::fsutil;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Where the log comes from.
#[derive(Debug, Args)]
pub struct NodeSource {
    /// The node's URL.
    #[arg(long)]
    node: String,
    /// File holding the node's admin token.
    #[arg(long)]
    admin_token: PathBuf,
    #[command(flatten)]
    appraisal: AppraisalArgs,
}

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify a node's log online, or an exported log (--file), against checkpoints kept
    /// earlier (--checkpoint).
    ///
    /// Example: veritee audit verify --file audit.json --checkpoint cp-monday.txt
    Verify {
        /// An export written by `veritee audit export`. Its keys were attested when it
        /// was exported, but the file itself is unsigned: alone, it is checked only
        /// against the keys it names. Give --checkpoint (saved from the node) to tie it
        /// to the node's attested checkpoint key.
        #[arg(long, conflicts_with = "node")]
        file: Option<PathBuf>,
        /// The node's URL.
        #[arg(long, requires_all = ["admin_token", "policy"])]
        node: Option<String>,
        /// File holding the node's admin token.
        #[arg(long)]
        admin_token: Option<PathBuf>,
        /// The policy the node's enclave must meet.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// A trust anchor, `[KIND=]FILE`; repeatable.
        #[arg(long, value_name = "[KIND=]FILE")]
        trust_anchor: Vec<String>,
        /// Collateral; repeatable.
        #[arg(long)]
        collateral: Vec<PathBuf>,
        /// A checkpoint saved earlier (`veritee audit checkpoint`, or a key import's);
        /// repeatable. The log must contain it.
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
    },
    /// Save a node's log, its attested keys and a checkpoint to a file.
    Export {
        #[command(flatten)]
        source: NodeSource,
        /// Where to write the export (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Save the node's signed checkpoint of its log, its key checked against the
    /// node's attested evidence. It says the log held at least this much when the
    /// enclave signed it; the host may serve an older one, never a forged or a rewritten
    /// one.
    ///
    /// Example: veritee audit checkpoint --node http://127.0.0.1:8440 --policy policy.toml
    ///   --trust-anchor state/vendor/root.pem --out cp.txt
    Checkpoint {
        /// The node's URL.
        #[arg(long)]
        node: String,
        #[command(flatten)]
        appraisal: AppraisalArgs,
        /// Where to write the checkpoint (a C2SP signed note).
        #[arg(long)]
        out: PathBuf,
    },
}

/// An exported log.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Export {
    node: String,
    log: String,
    /// SPKI DER, base64; attested when exported.
    audit_public_key: String,
    /// Ed25519, hex; attested when exported.
    checkpoint_public_key: String,
    /// The node's checkpoint when the log was exported.
    checkpoint: String,
    entries: Vec<veritee_proto::api::AuditRecord>,
}

/// The key name (origin) of a log's checkpoints: the log is `audit/NODE`.
fn origin_of(log: &str) -> Result<String> {
    let node = log
        .strip_prefix("audit/")
        .with_context(|| format!("{log:?} is not a node's audit log name"))?;
    Ok(format!("veritee.audit/{node}"))
}

/// The node id `node` answers to (`GET /v1/node`; untrusted, see its use).
fn node_id(node: &str) -> Result<String> {
    let url = format!("{}/v1/node", node.trim_end_matches('/'));
    let info: veritee_proto::api::NodeInfo = reqwest::blocking::get(&url)
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .with_context(|| format!("cannot fetch the node's id from {url}"))?;
    Ok(info.node_id)
}

fn checkpoint_key(hex_key: &str) -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut key).context("the checkpoint key is not 32 bytes of hex")?;
    Ok(key)
}

fn fetch(source: &NodeSource) -> Result<Export> {
    let loaded = source.appraisal.load()?;
    let token = crate::files::read_text(&source.admin_token, "admin token")?;
    let client = veritee_client::NodeClient::new(&source.node)?;
    let keys = client
        .attested_node_keys(&loaded.appraiser())
        .context("the node's audit keys are not vouched for by acceptable evidence")?;
    let checkpoint = client.audit_checkpoint()?;
    let first = client.audit_log(&token, 0, 1000)?;
    let log = first.log;
    let mut entries = first.entries;
    let mut last_page = entries.len();
    while last_page == 1000 {
        let page = client.audit_log(&token, entries.len() as u64, 1000)?;
        last_page = page.entries.len();
        entries.extend(page.entries);
    }
    Ok(Export {
        node: source.node.clone(),
        log,
        audit_public_key: B64.encode(keys.audit_public_key),
        checkpoint_public_key: hex::encode(keys.checkpoint_public_key),
        checkpoint,
        entries,
    })
}

fn check(export: &Export, kept: &[(PathBuf, String)]) -> Result<Outcome> {
    let key = B64
        .decode(&export.audit_public_key)
        .context("audit_public_key is not base64")?;
    let cp_key = checkpoint_key(&export.checkpoint_public_key)?;
    let origin = origin_of(&export.log)?;
    let mut entries = Vec::with_capacity(export.entries.len());
    for r in &export.entries {
        entries.push((
            r.seq,
            B64.decode(&r.entry)
                .with_context(|| format!("audit entry {} is not base64", r.seq))?,
        ));
    }
    let bodies = match veritee_audit::verify_log(&entries, &key) {
        Ok(bodies) => bodies,
        Err(e) => {
            println!(
                "audit log {} BROKEN at entry {}: {e}",
                export.log,
                e.position()
            );
            return Ok(Outcome::Rejected);
        }
    };
    // The export's own checkpoint, then every one kept earlier.
    let mut checkpoints: Vec<(String, Checkpoint)> = Vec::new();
    let opened = |name: &str, note: &str| -> Result<Checkpoint> {
        open_checkpoint(note, &origin, &origin, &cp_key)
            .with_context(|| format!("checkpoint {name} is not one of this node's"))
    };
    checkpoints.push((
        "of the export".into(),
        opened("of the export", &export.checkpoint)?,
    ));
    for (path, note) in kept {
        let name = path.display().to_string();
        checkpoints.push((name.clone(), opened(&name, note)?));
    }
    for (name, cp) in &checkpoints {
        if let Err(e) = check_against_checkpoint(&entries, cp) {
            println!(
                "audit log {} does NOT contain checkpoint {name} ({} entries): {e}",
                export.log, cp.size
            );
            return Ok(Outcome::Rejected);
        }
    }
    println!(
        "audit log {} verified: {} entries, signed by the enclave's audit key, hash chain intact, {} checkpoint(s) contained",
        export.log,
        bodies.len(),
        checkpoints.len()
    );
    for b in bodies.iter().rev().take(5).rev() {
        println!(
            "  #{:<5} {} {:<18} {} {} ({})",
            b.seq,
            crate::files::rfc3339(b.time),
            b.action,
            b.tenant,
            b.object,
            b.outcome
        );
    }
    Ok(Outcome::Success)
}

/// Runs an audit subcommand.
pub fn run(cmd: AuditCommand) -> Result<Outcome> {
    match cmd {
        AuditCommand::Export { source, out } => {
            let export = fetch(&source)?;
            let json = serde_json::to_vec_pretty(&export).context("cannot encode the export")?;
            std::fs::write(&out, json)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "exported {} audit entries of {} to {}",
                export.entries.len(),
                export.node,
                out.display()
            );
            Ok(Outcome::Success)
        }
        AuditCommand::Checkpoint {
            node,
            appraisal,
            out,
        } => {
            let loaded = appraisal.load()?;
            let client = veritee_client::NodeClient::new(&node)?;
            let keys = client
                .attested_node_keys(&loaded.appraiser())
                .context("the node's checkpoint key is not vouched for by acceptable evidence")?;
            let note = client.audit_checkpoint()?;
            // The log this node's checkpoints name: the origin must come from outside
            // the note (compared with itself it would prove nothing). The attested keys
            // do not name the node, so its id is the one it answers to; a host that lies
            // about it gets the checkpoint refused, never another log's accepted, since
            // the note's origin is signed by the attested key.
            let origin = format!("veritee.audit/{}", node_id(&node)?);
            let cp = open_checkpoint(&note, &origin, &origin, &keys.checkpoint_public_key)
                .context(
                    "the node's checkpoint is not its log's, signed by its attested checkpoint key",
                )?;
            fsutil::write_new(&out, note.as_bytes(), fsutil::PUBLIC_MODE)?;
            println!(
                "checkpoint of {} saved to {}: {} entries, head {}",
                cp.origin,
                out.display(),
                cp.size,
                hex::encode(cp.head)
            );
            Ok(Outcome::Success)
        }
        AuditCommand::Verify {
            file,
            node,
            admin_token,
            policy,
            trust_anchor,
            collateral,
            checkpoint,
        } => {
            let export = match (file, node, admin_token, policy) {
                (Some(file), _, _, _) => {
                    let text = crate::files::read(&file, "audit export")?;
                    serde_json::from_slice(&text)
                        .with_context(|| format!("{} is not an audit export", file.display()))?
                }
                (None, Some(node), Some(admin_token), Some(policy)) => fetch(&NodeSource {
                    node,
                    admin_token,
                    appraisal: AppraisalArgs {
                        policy,
                        trust_anchor,
                        collateral,
                    },
                })?,
                _ => bail!("give --file EXPORT, or --node URL --admin-token FILE --policy FILE"),
            };
            let mut kept = Vec::new();
            for path in checkpoint {
                let note = crate::files::read_text(&path, "checkpoint")?;
                kept.push((path, note));
            }
            check(&export, &kept)
        }
    }
}
