//! `veritee platform ...`: simulated machines.

use crate::Outcome;
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use time::OffsetDateTime;
use veritee_platform::sim::{SimMachine, SimVendor};

/// Platform subcommands.
#[derive(Debug, Subcommand)]
pub enum PlatformCommand {
    /// Manufacture a simulated machine certified by a vendor.
    Init {
        /// Directory for the machine's keys, certificate and collateral cache.
        #[arg(long)]
        dir: PathBuf,
        /// The vendor directory (from `veritee vendor init`).
        #[arg(long)]
        vendor: PathBuf,
        /// The machine's platform TCB SVN (default: the vendor's latest).
        #[arg(long)]
        tcb_svn: Option<u32>,
    },
    /// Fetch the vendor's current CRLs and TCB information into the machine's cache.
    Refresh {
        /// The machine directory.
        #[arg(long)]
        dir: PathBuf,
        /// The vendor directory.
        #[arg(long)]
        vendor: PathBuf,
    },
}

/// Runs a platform subcommand.
pub fn run(cmd: PlatformCommand) -> Result<Outcome> {
    match cmd {
        PlatformCommand::Init {
            dir,
            vendor,
            tcb_svn,
        } => {
            let mut vendor = SimVendor::open(&vendor)?;
            let machine = SimMachine::init(&dir, &mut vendor, tcb_svn, OffsetDateTime::now_utc())?;
            println!(
                "simulated machine {} (TCB SVN {}) created in {}",
                machine.info().machine_id,
                machine.info().tcb_svn,
                dir.display()
            );
        }
        PlatformCommand::Refresh { dir, vendor } => {
            let vendor = SimVendor::open(&vendor)?;
            let mut machine = SimMachine::open(&dir)?;
            machine.refresh_collateral(&vendor)?;
            println!(
                "collateral of machine {} refreshed",
                machine.info().machine_id
            );
        }
    }
    Ok(Outcome::Success)
}
