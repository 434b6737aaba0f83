//! `veritee audit ...`: a node's signed, hash-chained audit log.
//!
//! `export` fetches the log together with the audit key, after checking that the key is
//! vouched for by the node's attested enclave; `verify` checks a log, online or from an
//! export, and names the first broken entry.

use super::appraise::AppraisalArgs;
use crate::Outcome;
use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// Verify a node's log online, or an exported log (--file).
    Verify {
        /// An export written by `veritee audit export`.
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
        /// Trust anchors; repeatable.
        #[arg(long)]
        trust_anchor: Vec<PathBuf>,
        /// Collateral; repeatable.
        #[arg(long)]
        collateral: Vec<PathBuf>,
    },
    /// Save a node's log and its attested audit key to a file.
    Export {
        #[command(flatten)]
        source: NodeSource,
        /// Where to write the export (JSON).
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
    entries: Vec<veritee_proto::api::AuditRecord>,
}

fn fetch(source: &NodeSource) -> Result<Export> {
    let loaded = source.appraisal.load()?;
    let token = crate::files::read_text(&source.admin_token, "admin token")?;
    let client = veritee_client::NodeClient::new(&source.node)?;
    let key = client
        .attested_audit_key(&loaded.appraiser())
        .context("the node's audit key is not vouched for by acceptable evidence")?;
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
        audit_public_key: B64.encode(key),
        entries,
    })
}

fn check(export: &Export) -> Result<Outcome> {
    let key = B64
        .decode(&export.audit_public_key)
        .context("audit_public_key is not base64")?;
    let mut entries = Vec::with_capacity(export.entries.len());
    for r in &export.entries {
        entries.push((
            r.seq,
            B64.decode(&r.entry)
                .with_context(|| format!("audit entry {} is not base64", r.seq))?,
        ));
    }
    match veritee_audit::verify_log(&entries, &key) {
        Ok(bodies) => {
            println!(
                "audit log {} verified: {} entries, signed by the enclave's audit key, hash chain intact",
                export.log,
                bodies.len()
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
        Err(e) => {
            println!(
                "audit log {} BROKEN at entry {}: {e}",
                export.log,
                e.position()
            );
            Ok(Outcome::Rejected)
        }
    }
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
        AuditCommand::Verify {
            file,
            node,
            admin_token,
            policy,
            trust_anchor,
            collateral,
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
            check(&export)
        }
    }
}
