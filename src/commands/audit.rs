//! `veritee audit verify`: check a node's signed, hash-chained audit log.

use super::appraise::AppraisalArgs;
use crate::Outcome;
use anyhow::{Context, Result};
use base64::Engine;
use clap::Subcommand;
use std::path::PathBuf;

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Fetch a node's audit log (admin) and verify it against the audit key the node's
    /// attested enclave vouches for; names the first broken entry.
    Verify {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// File holding the node's admin token.
        #[arg(long)]
        admin_token: PathBuf,
        #[command(flatten)]
        appraisal: AppraisalArgs,
    },
}

/// Runs an audit subcommand.
pub fn run(cmd: AuditCommand) -> Result<Outcome> {
    match cmd {
        AuditCommand::Verify {
            node,
            admin_token,
            appraisal,
        } => {
            let loaded = appraisal.load()?;
            let token = crate::files::read_text(&admin_token, "admin token")?;
            let client = veritee_client::NodeClient::new(&node)?;
            let key = client
                .attested_audit_key(&loaded.appraiser())
                .context("the node's audit key is not vouched for by acceptable evidence")?;
            let mut entries = Vec::new();
            loop {
                let page = client.audit_log(&token, entries.len() as u64, 1000)?;
                let n = page.entries.len();
                for r in page.entries {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(&r.entry)
                        .with_context(|| format!("audit entry {} is not base64", r.seq))?;
                    entries.push((r.seq, bytes));
                }
                if n < 1000 {
                    break;
                }
            }
            match veritee_audit::verify_log(&entries, &key) {
                Ok(bodies) => {
                    println!(
                        "audit log verified: {} entries, signed by the attested enclave, hash chain intact",
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
                    println!("audit log BROKEN at entry {}: {e}", e.position());
                    Ok(Outcome::Rejected)
                }
            }
        }
    }
}
