//! `veritee vendor ...`: the simulated vendor.

use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::PathBuf;
use time::OffsetDateTime;
use veritee_platform::sim::{SimMachine, SimVendor};

/// Vendor subcommands.
#[derive(Debug, Subcommand)]
pub enum VendorCommand {
    /// Create a simulated vendor; writes its root certificate to DIR/root.pem.
    Init {
        /// Directory for the vendor's keys and state (created; must not hold a vendor).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Revoke a machine's certificate and publish a new CRL.
    Revoke {
        /// The vendor directory.
        #[arg(long)]
        dir: PathBuf,
        /// The machine's directory (its id is read from it)...
        #[arg(
            long,
            conflicts_with = "machine_id",
            required_unless_present = "machine_id"
        )]
        platform: Option<PathBuf>,
        /// ...or its machine id (32 hex digits).
        #[arg(long)]
        machine_id: Option<String>,
    },
    /// Publish a TCB recovery: SVN becomes the only up-to-date level.
    Tcb {
        /// The vendor directory.
        #[arg(long)]
        dir: PathBuf,
        /// The new up-to-date platform TCB SVN.
        #[arg(long)]
        latest_svn: u32,
    },
    /// Re-issue the CRLs and TCB information with fresh dates (they expire after 30 days).
    Publish {
        /// The vendor directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Runs a vendor subcommand.
pub fn run(cmd: VendorCommand) -> Result<Outcome> {
    let now = OffsetDateTime::now_utc();
    match cmd {
        VendorCommand::Init { dir } => {
            let vendor = SimVendor::init(&dir, now)?;
            println!("simulated vendor created in {}", dir.display());
            println!("trust anchor: {}", vendor.root_path().display());
            println!("collateral:   {}", paths(&vendor.collateral_paths()));
        }
        VendorCommand::Revoke {
            dir,
            platform,
            machine_id,
        } => {
            let mut vendor = SimVendor::open(&dir)?;
            let id = match (platform, machine_id) {
                (Some(p), _) => SimMachine::open(&p)?.machine_id(),
                (None, Some(hex_id)) => {
                    let mut id = [0u8; 16];
                    hex::decode_to_slice(hex_id.trim(), &mut id)
                        .with_context(|| format!("--machine-id {hex_id:?} is not 32 hex digits"))?;
                    id
                }
                (None, None) => bail!("give --platform DIR or --machine-id HEX"),
            };
            let n = vendor.revoke_machine(&id, now)?;
            println!(
                "revoked {n} certificate(s) of machine {}; new CRL in {}",
                hex::encode(id),
                dir.display()
            );
        }
        VendorCommand::Tcb { dir, latest_svn } => {
            let mut vendor = SimVendor::open(&dir)?;
            let advisory = vendor.set_latest_tcb_svn(latest_svn, now)?;
            println!(
                "TCB SVN {latest_svn} is now the up-to-date level; lower levels are OutOfDate under {advisory}"
            );
        }
        VendorCommand::Publish { dir } => {
            let mut vendor = SimVendor::open(&dir)?;
            vendor.publish(now)?;
            println!(
                "published fresh collateral: {}",
                paths(&vendor.collateral_paths())
            );
        }
    }
    Ok(Outcome::Success)
}

fn paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}
