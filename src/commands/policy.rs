//! `veritee policy ...`: write and check appraisal policies.

use crate::{Outcome, files};
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use veritee_attest::TeeKind;
use veritee_policy::{AppraisalPolicy, starter_policy};

/// Policy subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Write a commented starter policy to edit.
    Init {
        /// Accept simulated evidence (development only).
        #[arg(long)]
        allow_simulated: bool,
        /// TEE kinds to accept (repeatable; default: every hardware TEE).
        #[arg(long)]
        tee: Vec<TeeKind>,
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Validate a policy and explain any mistake.
    Check {
        /// The policy file (TOML or JSON).
        file: PathBuf,
    },
}

/// Runs a policy subcommand.
pub fn run(cmd: PolicyCommand) -> Result<Outcome> {
    match cmd {
        PolicyCommand::Init {
            allow_simulated,
            tee,
            out,
        } => {
            let text = starter_policy(allow_simulated, &tee);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .with_context(|| {
                    format!("cannot create {} (it must not exist yet)", out.display())
                })?;
            std::io::Write::write_all(&mut file, text.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "wrote a starter policy to {}; edit it, then `veritee policy check {}`",
                out.display(),
                out.display()
            );
            Ok(Outcome::Success)
        }
        PolicyCommand::Check { file } => {
            let text = files::read_text(&file, "policy")?;
            match AppraisalPolicy::parse(&text).and_then(|p| p.check().map(|w| (p, w))) {
                Ok((policy, warnings)) => {
                    let kinds: Vec<String> = policy.tee.iter().map(|k| k.to_string()).collect();
                    println!(
                        "{}: valid policy accepting {}",
                        file.display(),
                        kinds.join(", ")
                    );
                    for w in warnings {
                        println!("warning: {w}");
                    }
                    Ok(Outcome::Success)
                }
                Err(e) => {
                    println!("{}: {e}", file.display());
                    Ok(Outcome::Unusable)
                }
            }
        }
    }
}
